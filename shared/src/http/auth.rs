//! Authentication: a bearer JWT with `sub`, `email` and `groups` claims. In local mode the
//! service checks the signature itself (an HS256 secret, or RS256 keys from a JWKS file);
//! on AWS, API Gateway's JWT authorizer does.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::problem::Problem;
use crate::requests::model::Principal;
use crate::secret::SecretString;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    exp: u64,
}

struct Key {
    kid: Option<String>,
    key: DecodingKey,
}

pub struct Authenticator {
    keys: Vec<Key>,
    validation: Validation,
}

/// The caller of a request, once known: set by whatever authenticated it (the audit
/// middleware, or on AWS the gateway's authorizer, whose checked claims the api Lambda
/// puts here), and read by [`Caller`] instead of checking the token again. Only code
/// sets request extensions; a client cannot.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

/// The caller of a request: the one already [`Authenticated`], else the bearer token's.
pub fn caller_of(
    auth: &Authenticator,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> Result<Principal, Problem> {
    if let Some(Authenticated(principal)) = extensions.get::<Authenticated>() {
        return Ok(principal.clone());
    }
    auth.authenticate(headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()))
}

impl Authenticator {
    /// Tokens signed with a shared HS256 secret (local mode's dev tokens).
    pub fn hs256(secret: &SecretString) -> Self {
        Authenticator {
            keys: vec![Key {
                kid: None,
                key: DecodingKey::from_secret(secret.expose().as_bytes()),
            }],
            validation: Self::validation(Algorithm::HS256),
        }
    }

    /// No tokens at all: callers are authenticated in front of the service (API
    /// Gateway's JWT authorizer) and arrive [`Authenticated`]; anything else is refused.
    pub fn gateway() -> Self {
        Authenticator {
            keys: Vec::new(),
            validation: Self::validation(Algorithm::RS256),
        }
    }

    /// Tokens signed with RS256 keys listed in a JWKS document.
    pub fn from_jwks(jwks: &str) -> Result<Self, String> {
        let set: JwkSet =
            serde_json::from_str(jwks).map_err(|e| format!("not a JWKS document: {e}"))?;
        let keys = set
            .keys
            .iter()
            .map(|jwk| {
                DecodingKey::from_jwk(jwk)
                    .map(|key| Key {
                        kid: jwk.common.key_id.clone(),
                        key,
                    })
                    .map_err(|e| format!("unusable key in the JWKS: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err("the JWKS has no keys".to_owned());
        }
        Ok(Authenticator {
            keys,
            validation: Self::validation(Algorithm::RS256),
        })
    }

    fn validation(alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = 30;
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp", "sub"]);
        v
    }

    /// The caller named by an `Authorization: Bearer` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, Problem> {
        if self.keys.is_empty() {
            return Err(Problem::unauthorized(
                "this deployment authenticates callers at its API gateway; call it through the gateway",
                authorization.is_some(),
            ));
        }
        let Some(value) = authorization else {
            return Err(Problem::unauthorized(
                "send a bearer token: `Authorization: Bearer <token>`",
                false,
            ));
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| {
                Problem::unauthorized("the Authorization header must be `Bearer <token>`", true)
            })?;
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|_| Problem::unauthorized("the bearer token is not a JWT", true))?
            .kid;
        let candidates = self
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.is_none() || k.kid == kid);
        let mut last = None;
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, &self.validation) {
                Ok(data) => {
                    let c = data.claims;
                    return Ok(Principal {
                        sub: c.sub,
                        email: c.email,
                        groups: c.groups,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        let detail = match last.as_ref().map(|e| e.kind()) {
            Some(jsonwebtoken::errors::ErrorKind::ExpiredSignature) => "the token has expired",
            _ => "the token is not valid here (signature, algorithm or claims)",
        };
        Err(Problem::unauthorized(detail, true))
    }
}

/// A token local mode accepts, signed with the HS256 dev secret.
pub fn dev_token(
    secret: &SecretString,
    sub: &str,
    email: Option<&str>,
    groups: &[String],
    valid_for: std::time::Duration,
) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = Claims {
        sub: sub.to_owned(),
        email: email.map(str::to_owned),
        groups: groups.to_vec(),
        exp: now + valid_for.as_secs(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
    .map_err(|e| e.to_string())
}

/// The authenticated caller of a handler.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        caller_of(&state.auth, &parts.headers, &parts.extensions).map(Caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_tokens_round_trip_and_wrong_secrets_fail() {
        let secret = SecretString::new("s3cret-s3cret-s3cret-s3cret-s3cret");
        let token = dev_token(
            &secret,
            "alice",
            Some("a@x"),
            &["devs".into()],
            std::time::Duration::from_secs(60),
        )
        .unwrap();
        let who = Authenticator::hs256(&secret)
            .authenticate(Some(&format!("Bearer {token}")))
            .unwrap();
        assert_eq!(
            (who.sub.as_str(), who.groups.as_slice()),
            ("alice", ["devs".to_owned()].as_slice())
        );
        let other = Authenticator::hs256(&SecretString::new("another-secret-another-secret"));
        assert_eq!(
            other
                .authenticate(Some(&format!("Bearer {token}")))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(other.authenticate(None).unwrap_err().status, 401);
        assert_eq!(
            other.authenticate(Some("Basic abc")).unwrap_err().status,
            401
        );
    }
}
