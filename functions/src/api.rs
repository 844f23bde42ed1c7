//! The api (and ingest) Lambda's HTTP side: the same axum Router as local mode, behind
//! API Gateway's HTTP API (payload format 2.0). Two things come from the gateway rather
//! than the connection: the caller, whose JWT the gateway's authorizer has checked (its
//! claims are in the request context), and the source address. And the catalog this
//! process serves is brought up to the live version now and then, since ingestion runs
//! in another function.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use shared::access::Principal;
use shared::http::auth::Authenticated;

use crate::Deployment;

/// What the gateway middleware needs.
#[derive(Clone)]
struct Gateway {
    deployment: Arc<Deployment>,
    groups_claim: String,
}

/// The api and ingest functions' whole life: start, then serve API Gateway's events.
pub async fn serve() -> Result<(), lambda_http::Error> {
    let deployment = Deployment::from_lambda_environment().await?;
    lambda_http::run(app(Arc::new(deployment))).await
}

/// The router the api and ingest functions serve.
pub fn app(deployment: Arc<Deployment>) -> axum::Router {
    let groups_claim = deployment.config.aws.groups_claim.clone();
    let router = shared::http::router(deployment.assembly.app.clone());
    let gateway = Gateway {
        deployment,
        groups_claim,
    };
    router.layer(axum::middleware::from_fn_with_state(gateway, from_gateway))
}

/// A claim the HTTP API's authorizer passed on, as a list. The gateway flattens claims to
/// strings: an array claim arrives as `[a b c]`; a plain string may also list several
/// names, separated by commas.
fn claim_list(value: &str) -> Vec<String> {
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|s| s.trim_matches('"'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn from_gateway(
    State(gateway): State<Gateway>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() {
        let source = context
            .http
            .source_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let claims = context
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| jwt.claims.clone());
        if let Some(ip) = source {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(ip, 0)));
        }
        if let Some(claims) = claims
            && let Some(sub) = claims.get("sub").filter(|s| !s.is_empty())
        {
            let principal = Principal {
                sub: sub.clone(),
                email: claims.get("email").cloned(),
                groups: claims
                    .get(&gateway.groups_claim)
                    .map(|g| claim_list(g))
                    .unwrap_or_default(),
            };
            request.extensions_mut().insert(Authenticated(principal));
        }
    }
    gateway.deployment.refresh_catalog_when_due().await;
    gateway.deployment.refresh_environment_when_due().await;
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::claim_list;

    #[test]
    fn gateway_claims_are_read_as_lists() {
        assert_eq!(
            claim_list("[platform-admins developers]"),
            ["platform-admins", "developers"]
        );
        assert_eq!(claim_list("a,b"), ["a", "b"]);
        assert_eq!(claim_list("solo"), ["solo"]);
        assert!(claim_list("[]").is_empty());
    }
}
