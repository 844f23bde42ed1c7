//! `rest`: one HTTP call to an API, with optional polling of a status URL for APIs that
//! provision asynchronously.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::{
    ActionError, ActionKind, Invocation, Step, config, exchange, header, holds, select,
    shown_headers,
};
use crate::catalog::document::{HttpMethod, RestAction, RestAuth};

/// How often a status URL is polled when the item does not say.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

pub struct Rest {
    pub http: reqwest::Client,
    /// Signs calls whose `auth` is `awsSigv4` (`None`: the deployment has no AWS
    /// credentials, and such calls fail).
    pub signer: Option<std::sync::Arc<dyn super::AwsSigner>>,
}

impl Rest {
    /// Signs `call` when `auth` asks for AWS Signature Version 4.
    async fn signed(
        &self,
        call: reqwest::RequestBuilder,
        auth: Option<&RestAuth>,
    ) -> Result<reqwest::RequestBuilder, ActionError> {
        let Some(RestAuth::AwsSigv4(sigv4)) = auth else {
            return Ok(call);
        };
        let signer = self.signer.as_ref().ok_or_else(|| {
            ActionError::permanent(
                "auth.awsSigv4: this deployment has no AWS credentials to sign with (local mode: set aws.endpointUrl or AWS credentials)",
            )
        })?;
        let (client, request) = call.build_split();
        let mut request = request
            .map_err(|e| ActionError::permanent(format!("the call cannot be built: {e}")))?;
        signer
            .sign(&mut request, &sigv4.service, sigv4.region.as_deref())
            .await?;
        Ok(reqwest::RequestBuilder::from_parts(client, request))
    }
}

#[async_trait]
impl ActionKind for Rest {
    fn url_pointers(&self) -> &'static [&'static str] {
        &["/url", "/poll/url"]
    }

    fn describe(&self, run: &Invocation, with: &Value) -> Result<Value, ActionError> {
        let rest: RestAction = config(with)?;
        let mut url = parse_url(&rest.url)?;
        if !rest.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&rest.query);
        }
        let mut shown = shown_headers(&headers(&rest, run)?);
        match &rest.auth {
            Some(RestAuth::Basic { username, password }) => {
                shown.insert(
                    "authorization".to_owned(),
                    json!(format!("Basic base64({username}:{password})")),
                );
            }
            Some(RestAuth::AwsSigv4(sigv4)) => {
                shown.insert(
                    "authorization".to_owned(),
                    json!(format!(
                        "AWS4-HMAC-SHA256 (signed for {} in {} with the worker's AWS credentials)",
                        sigv4.service,
                        sigv4.region.as_deref().unwrap_or("the deployment's region")
                    )),
                );
            }
            _ => {}
        }
        let mut call = json!({
            "method": method(&rest).as_str(),
            "url": url.as_str(),
            "headers": shown,
            "body": rest.body,
        });
        if let Some(poll) = &rest.poll {
            let status_url = match (&poll.url, &poll.url_from) {
                (Some(url), _) => json!(url),
                (None, Some(path)) => json!(format!("(the URL at {path} in the response)")),
                (None, None) => json!("(the response's Location header)"),
            };
            call["poll"] = json!({
                "method": "GET",
                "url": status_url,
                "every": format!("{}s", interval(&rest).as_secs()),
                "until": poll.until,
                "failWhen": poll.fail_when,
            });
        }
        Ok(call)
    }

    async fn start(&self, run: &Invocation, with: &Value) -> Result<Step, ActionError> {
        let rest: RestAction = config(with)?;
        let method = method(&rest);
        let url = parse_url(&rest.url)?;
        let mut call = self
            .http
            .request(method.clone(), url.clone())
            .timeout(run.call_timeout)
            .headers(headers(&rest, run)?);
        if !rest.query.is_empty() {
            call = call.query(&rest.query);
        }
        if let Some(body) = &rest.body {
            call = call.json(body);
        }
        let call = self.signed(call, rest.auth.as_ref()).await?;
        let what = format!("{method} {}", url_for_humans(&url));
        let (document, response_headers) = exchange(call, &what, &rest.success_status).await?;
        let Some(poll) = &rest.poll else {
            return Ok(Step::Done(document));
        };
        let status_url = match (&poll.url, &poll.url_from) {
            (Some(url), _) => url.clone(),
            (None, Some(path)) => match select(&document, path)? {
                Some(Value::String(found)) => found,
                _ => {
                    return Err(ActionError::permanent(format!(
                        "poll.urlFrom: `{path}` found no URL in the response"
                    )));
                }
            },
            (None, None) => response_headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| {
                    ActionError::permanent(
                        "poll: the response has no Location header; set poll.url or poll.urlFrom",
                    )
                })?,
        };
        // A relative status URL is relative to the URL that was called.
        let status_url = url.join(&status_url).map_err(|e| {
            ActionError::permanent(format!("poll: `{status_url}` is not a URL: {e}"))
        })?;
        Ok(Step::pending(
            json!({ "statusUrl": status_url.as_str() }),
            interval(&rest),
        ))
    }

    async fn poll(
        &self,
        run: &Invocation,
        with: &Value,
        state: &Value,
    ) -> Result<Step, ActionError> {
        let rest: RestAction = config(with)?;
        let Some(poll) = &rest.poll else {
            return Err(ActionError::permanent("this action has no poll section"));
        };
        let url = parse_url(state["statusUrl"].as_str().unwrap_or_default())?;
        let call = self
            .http
            .get(url.clone())
            .timeout(run.call_timeout)
            .headers(headers(&rest, run)?);
        let call = self.signed(call, rest.auth.as_ref()).await?;
        let what = format!("GET {}", url_for_humans(&url));
        let (document, _) = exchange(call, &what, &[]).await?;
        if let Some(fail) = &poll.fail_when
            && holds(fail, &document)?
        {
            let seen = select(&document, &fail.path)
                .ok()
                .flatten()
                .unwrap_or(Value::Null);
            return Err(ActionError::permanent(format!(
                "the status at {} reports failure: {} is {seen}",
                url_for_humans(&url),
                fail.path
            )));
        }
        if holds(&poll.until, &document)? {
            return Ok(Step::Done(document));
        }
        Ok(Step::pending(state.clone(), interval(&rest)))
    }
}

fn method(rest: &RestAction) -> reqwest::Method {
    match rest.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Patch => reqwest::Method::PATCH,
        HttpMethod::Delete => reqwest::Method::DELETE,
    }
}

fn interval(rest: &RestAction) -> Duration {
    rest.poll
        .as_ref()
        .and_then(|p| p.interval)
        .map_or(DEFAULT_POLL_INTERVAL, |d| d.as_duration())
}

pub fn parse_url(text: &str) -> Result<url::Url, ActionError> {
    let url = url::Url::parse(text)
        .map_err(|e| ActionError::permanent(format!("`{}` is not a URL: {e}", truncate(text))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ActionError::permanent(format!(
            "`{}` is not an http(s) URL",
            truncate(text)
        )));
    }
    Ok(url)
}

fn truncate(text: &str) -> String {
    text.chars().take(200).collect()
}

/// A URL for messages: scheme, host and path, without the query (which may hold keys).
pub fn url_for_humans(url: &url::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    shown.to_string()
}

/// The call's headers: the item's, its authentication, and the idempotency key (unless
/// the item sets its own).
fn headers(rest: &RestAction, run: &Invocation) -> Result<HeaderMap, ActionError> {
    let mut map = HeaderMap::new();
    let mut put = |name: &str, value: &str| -> Result<(), ActionError> {
        let (name, value) = header(name, value)?;
        map.insert(name, value);
        Ok(())
    };
    put("Idempotency-Key", &run.idempotency_key)?;
    for (name, value) in &rest.headers {
        put(name, value)?;
    }
    match &rest.auth {
        Some(RestAuth::Bearer(token)) => put("Authorization", &format!("Bearer {token}"))?,
        Some(RestAuth::Basic { username, password }) => {
            use base64::Engine as _;
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            put("Authorization", &format!("Basic {encoded}"))?;
        }
        Some(RestAuth::ApiKey { header, value }) => put(header, value)?,
        // Signed when the call is built (the signature covers the final request).
        Some(RestAuth::AwsSigv4(_)) | None => {}
    }
    if let Some(value) = map.get_mut(reqwest::header::AUTHORIZATION) {
        value.set_sensitive(true);
    }
    Ok(map)
}
