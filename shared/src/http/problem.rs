//! Errors as RFC 9457 problem details (`application/problem+json`). Client errors say
//! what is wrong and how to fix it; server errors say nothing of the internals.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::catalog::schema::Violation;
use crate::ports::StoreError;
use crate::requests::service::RequestError;

/// An error, as RFC 9457 problem details.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// The problem type, a slug under https://orchestrator.dev/problems/.
    #[serde(rename = "type", serialize_with = "problem_type")]
    #[schema(rename = "type", value_type = String)]
    pub slug: &'static str,
    #[schema(value_type = String)]
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Every violation, for validation errors: JSON pointer, rule, message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Violation>,
    /// Extension members (RFC 9457 section 3.2), such as a drift report or a lock holder.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub extensions: Option<Box<serde_json::Map<String, serde_json::Value>>>,
    #[serde(skip)]
    retry_after: Option<u32>,
    #[serde(skip)]
    www_authenticate: Option<&'static str>,
}

/// A `status` query parameter: one of `all` by its name (`name`), or a 400 that lists
/// them (the requests and resources lists share it).
pub fn status_filter<T: Copy>(
    given: Option<&str>,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<Option<T>, Problem> {
    choice("status", "status", given, all, name)
}

/// The value of query parameter `parameter` among `all` (by `name`), if given: one not
/// among them is refused, naming the parameter and listing the `what`s it may be.
pub fn choice<T: Copy>(
    parameter: &str,
    what: &str,
    given: Option<&str>,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<Option<T>, Problem> {
    let Some(given) = given else {
        return Ok(None);
    };
    all.iter()
        .copied()
        .find(|s| name(*s) == given)
        .map(Some)
        .ok_or_else(|| {
            let known: Vec<&str> = all.iter().map(|s| name(*s)).collect();
            Problem::invalid_parameter(
                parameter,
                format!("unknown {what} `{given}`; one of {}", known.join(", ")),
            )
        })
}

pub fn page_limit(limit: Option<usize>, max: usize) -> Result<usize, Problem> {
    match limit {
        None => Ok(50.min(max)),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(Problem::invalid_parameter(
            "limit",
            format!("{n} is not from 1 to {max}"),
        )),
    }
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            slug,
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            extensions: None,
            retry_after: None,
            www_authenticate: None,
        }
    }

    /// A 400 naming query parameter `name` (in the detail and as `parameter`).
    pub fn invalid_parameter(name: &str, detail: impl std::fmt::Display) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            "Invalid query parameter",
            format!("query parameter `{name}`: {detail}"),
        )
        .with("parameter", name)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn unauthorized(detail: impl Into<String>, invalid_token: bool) -> Self {
        let mut p = Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        );
        p.www_authenticate = Some(if invalid_token {
            "Bearer error=\"invalid_token\""
        } else {
            "Bearer"
        });
        p
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        );
        p.retry_after = Some(5);
        p
    }

    /// A failure whose details stay in the logs.
    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "something went wrong on our side; the request id in the response headers identifies it in the logs",
        )
    }

    pub fn with_errors(mut self, errors: Vec<Violation>) -> Self {
        self.errors = errors;
        self
    }

    /// Adds an extension member.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.extensions.get_or_insert_default().insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or_default(),
        );
        self
    }

    pub fn conflict(slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::CONFLICT, slug, title, detail)
    }
}

fn problem_type<S: serde::Serializer>(slug: &&'static str, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("https://orchestrator.dev/problems/{slug}"))
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "storage unavailable");
                Problem::unavailable("storage is briefly unavailable; retry shortly")
            }
            StoreError::NotFound => Problem::not_found("no such record"),
            other => {
                tracing::error!(error = %other, "storage failure");
                Problem::internal()
            }
        }
    }
}

impl From<RequestError> for Problem {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::UnknownTarget(_) => Problem::new(
                StatusCode::NOT_FOUND,
                "unknown-target",
                "Unknown item or bundle",
                e.to_string(),
            ),
            RequestError::Forbidden(detail) => Problem::forbidden(detail),
            RequestError::NotFound(_) => Problem::not_found(e.to_string()),
            RequestError::InvalidFields(violations) => {
                let count = violations.len();
                let errors = violations
                    .into_iter()
                    .map(|v| Violation {
                        pointer: format!("/fields{}", v.pointer),
                        ..v
                    })
                    .collect();
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-fields",
                    "Invalid fields",
                    format!("{count} field value(s) do not satisfy the form; see `errors`"),
                )
                .with_errors(errors)
            }
            RequestError::IdempotencyMismatch => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was already used with a different request body; use a new key",
            ),
            RequestError::Frozen(why) => Problem::new(
                StatusCode::CONFLICT,
                "change-frozen",
                "Frozen by a change calendar",
                why.clone(),
            ),
            RequestError::Deprecated {
                ref replaced_by, ..
            } => {
                let replacement = replaced_by.clone();
                let problem = Problem::new(
                    StatusCode::CONFLICT,
                    "deprecated",
                    "Deprecated",
                    e.to_string(),
                );
                match replacement {
                    Some(r) => problem.with("replacedBy", r),
                    None => problem,
                }
            }
            RequestError::InvalidTransition { .. } => Problem::new(
                StatusCode::CONFLICT,
                "invalid-transition",
                "Conflict",
                e.to_string(),
            ),
            RequestError::Store(store) => store.into(),
        }
    }
}

/// Query parameters whose rejections are problems naming the parameter (`parameter`),
/// never axum's plain-text ones: `?limit=-1` is a 400 that says `limit` and why.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(pairs)
            .map(QueryParams)
            .map_err(|e| {
                let parameter = e.path().to_string();
                let why = e.inner().to_string();
                // A missing parameter is reported at the top; serde names it in `why`.
                let detail = if parameter == "." {
                    format!("the query string is not valid: {why}")
                } else {
                    format!("query parameter `{parameter}`: {why}")
                };
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-parameter",
                    "Invalid query parameter",
                    detail,
                )
                .with("parameter", parameter)
            })
    }
}

/// A JSON request body whose rejections are problems (400 malformed, 413 too large,
/// 415 not JSON), never axum's plain-text ones.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The common case, parsed plainly: axum's extractor tracks the path to every
        // value it reads, for the message of an error that seldom comes. Every other
        // content type (parameters, `+json`, none) is axum's to judge.
        let plain = req
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"application/json"));
        let parsed = if plain {
            let bytes = axum::body::Bytes::from_request(req, state)
                .await
                .map_err(|e| json_rejection(e.into()))?;
            match serde_json::from_slice(&bytes) {
                Ok(value) => return Ok(JsonBody(value)),
                // Parsed again with paths, for axum's message (the same parser fails
                // the same way).
                Err(_) => axum::Json::<T>::from_bytes(&bytes),
            }
        } else {
            axum::Json::<T>::from_request(req, state).await
        };
        parsed
            .map(|axum::Json(value)| JsonBody(value))
            .map_err(json_rejection)
    }
}

fn json_rejection(rejection: JsonRejection) -> Problem {
    let status = rejection.status();
    let detail = rejection.body_text();
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            status,
            "too-large",
            "Body too large",
            "the request body is larger than the 256 KiB limit",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::new(
            status,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        // Well-formed JSON of the wrong shape (unknown or mistyped fields) is 422.
        StatusCode::UNPROCESSABLE_ENTITY => {
            Problem::new(status, "invalid-body", "Invalid body", detail)
        }
        _ => Problem::bad_request(detail),
    }
}
