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
use crate::access::Principal;
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
    verified: Verified,
}

/// Tokens already verified, with what they said: a client sends the same token with
/// every call until it expires, and checking it again (base64, JSON, the signature) was
/// a tenth of the work of a POST /requests. Keyed by the whole token, signature
/// included, so only the very token that was verified is found; an entry is used only
/// until the token's `exp` (with the same leeway as the check).
struct Verified {
    tokens: std::sync::Mutex<std::collections::HashMap<Box<str>, (Principal, u64)>>,
}

/// Verified tokens kept at most; when full, the cache starts again empty.
const VERIFIED_TOKENS: usize = 4_096;

/// Seconds a token is accepted after its `exp` (clock skew between issuer and service).
const LEEWAY_SECS: u64 = 30;

impl Verified {
    fn new() -> Self {
        Verified {
            tokens: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Box<str>, (Principal, u64)>> {
        // The map holds only verified tokens; a panic elsewhere cannot leave it wrong.
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The caller of `token` if it was verified and has not expired since.
    fn get(&self, token: &str) -> Option<Principal> {
        let mut tokens = self.lock();
        let (principal, exp) = tokens.get(token)?;
        if now_secs() <= exp.saturating_add(LEEWAY_SECS) {
            return Some(principal.clone());
        }
        tokens.remove(token);
        None
    }

    fn keep(&self, token: &str, principal: &Principal, exp: u64) {
        let mut tokens = self.lock();
        if tokens.len() >= VERIFIED_TOKENS {
            tokens.clear();
        }
        tokens.insert(token.into(), (principal.clone(), exp));
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
            verified: Verified::new(),
        }
    }

    /// No tokens at all: callers are authenticated in front of the service (API
    /// Gateway's JWT authorizer) and arrive [`Authenticated`]; anything else is refused.
    pub fn gateway() -> Self {
        Authenticator {
            keys: Vec::new(),
            validation: Self::validation(Algorithm::RS256),
            verified: Verified::new(),
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
            verified: Verified::new(),
        })
    }

    fn validation(alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = LEEWAY_SECS;
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
        if let Some(principal) = self.verified.get(token) {
            return Ok(principal);
        }
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
                    let principal = Principal {
                        sub: c.sub,
                        email: c.email,
                        groups: c.groups,
                    };
                    self.verified.keep(token, &principal, c.exp);
                    return Ok(principal);
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
    let now = now_secs();
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

    fn who(sub: &str) -> Principal {
        Principal {
            sub: sub.to_owned(),
            email: None,
            groups: Vec::new(),
        }
    }

    #[test]
    fn a_verified_token_is_remembered_only_as_itself_and_only_until_it_expires() {
        let secret = SecretString::new("s3cret-s3cret-s3cret-s3cret-s3cret");
        let auth = Authenticator::hs256(&secret);
        let token = dev_token(
            &secret,
            "alice",
            None,
            &[],
            std::time::Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {token}")))
                .unwrap()
                .sub,
            "alice"
        );
        assert!(auth.verified.get(&token).is_some());
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {token}")))
                .unwrap()
                .sub,
            "alice"
        );
        // The same claims with another signature are checked, and refused.
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        let forged = format!("{signed}.{flipped}{}", &signature[1..]);
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {forged}")))
                .unwrap_err()
                .status,
            401
        );

        // Past its expiry and the leeway, a remembered token is forgotten.
        let now = now_secs();
        auth.verified
            .keep("old", &who("bob"), now - LEEWAY_SECS - 1);
        assert!(auth.verified.get("old").is_none());
        assert!(!auth.verified.lock().contains_key("old"));
        auth.verified
            .keep("recent", &who("bob"), now - LEEWAY_SECS + 5);
        assert_eq!(auth.verified.get("recent").unwrap().sub, "bob");
    }

    #[test]
    fn the_verified_tokens_are_bounded() {
        let verified = Verified::new();
        let exp = now_secs() + 60;
        for i in 0..VERIFIED_TOKENS + 10 {
            verified.keep(&format!("t{i}"), &who("x"), exp);
        }
        assert!(verified.lock().len() <= VERIFIED_TOKENS);
        assert!(verified.get(&format!("t{}", VERIFIED_TOKENS + 9)).is_some());
    }
}
