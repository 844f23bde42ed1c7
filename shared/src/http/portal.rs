//! The developer portal's files, served by local mode next to the API: `index.html` at
//! `/`, the built bundle under `/assets/`, and `/config.json`, which tells the portal where
//! the API is (here: the same origin) and whether the sandbox is on. On AWS the same files
//! are static objects behind CloudFront with their own `config.json`.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower_http::services::ServeDir;

/// What pages may load: only this origin's scripts, styles (inline ones too: the graph's
/// SVG carries its own) and API. Nothing from a CDN, and no framing. `unsafe-eval` is for
/// Ajv, which compiles each form's JSON Schema (known only at run time) into a function;
/// no other script may be evaluated from a string, and inline scripts stay refused.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// The portal's routes, serving the build in `dir` (`portal/dist`).
pub fn routes(dir: &Path, sandbox: bool) -> Router {
    let index = dir.join("index.html");
    let config = json!({"apiUrl": "", "sandbox": sandbox}).to_string();
    Router::new()
        .route("/", get(move || page(index.clone())))
        .route(
            "/config.json",
            get(move || {
                let config = config.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], config) }
            }),
        )
        .nest_service("/assets", ServeDir::new(dir.join("assets")))
}

async fn page(index: PathBuf) -> Response {
    match tokio::fs::read_to_string(&index).await {
        Ok(html) => {
            let mut response = Html(html).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        Err(e) => {
            tracing::warn!(path = %index.display(), error = %e, "the portal is not built");
            let text = format!(
                "<!doctype html><html lang=\"en\"><title>Portal not built</title>\
                 <main><h1>The portal is not built</h1><p>{} could not be read ({e}). \
                 Build it with <code>npm ci --prefix portal &amp;&amp; npm run build --prefix portal</code> \
                 (<code>scripts/run</code> does), or point <code>portalDir</code> \
                 (<code>ORCHESTRATOR_PORTAL_DIR</code>) at a build. The API is served \
                 regardless: <a href=\"/openapi.json\">/openapi.json</a>.</p></main></html>",
                html_escape(&index.display().to_string())
            );
            (StatusCode::SERVICE_UNAVAILABLE, Html(text)).into_response()
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
