//! Secrets from AWS Secrets Manager, read when first asked for and kept in memory for a
//! while (a Lambda's invocations share them; a rotated value is seen within the TTL).
//!
//! Secret `NAME` is the Secrets Manager secret `<prefix>NAME` (with the prefix
//! `orchestrator/prod/`, `jira-token` is `orchestrator/prod/jira-token`), read as its
//! string value. A missing secret is `None`, remembered for the same TTL as a value.
//! Errors name the secret, never a value.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use shared::ports::{Secrets, StoreError};
use shared::secret::SecretString;

/// How long a read value (or absence) is trusted when nothing else is configured.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

pub struct SecretsManager {
    client: Client,
    prefix: String,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    read_at: Instant,
    value: Option<SecretString>,
}

impl SecretsManager {
    pub fn new(config: &SdkConfig, prefix: impl Into<String>, ttl: Duration) -> Self {
        SecretsManager {
            client: Client::new(config),
            prefix: prefix.into(),
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, name: &str) -> Option<Option<SecretString>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(name)
            .filter(|c| c.read_at.elapsed() < self.ttl)
            .map(|c| c.value.clone())
    }

    fn remember(&self, name: &str, value: Option<SecretString>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(
            name.to_owned(),
            Cached {
                read_at: Instant::now(),
                value,
            },
        );
    }
}

#[async_trait]
impl Secrets for SecretsManager {
    async fn get(&self, name: &str) -> Result<Option<SecretString>, StoreError> {
        if let Some(hit) = self.cached(name) {
            return Ok(hit);
        }
        // Concurrent misses of one name may both read it: reads are idempotent, and a
        // lock held across the call would queue every other secret behind a slow one.
        let id = format!("{}{name}", self.prefix);
        let value = match self.client.get_secret_value().secret_id(&id).send().await {
            Ok(out) => out.secret_string().map(SecretString::new).or_else(|| {
                out.secret_binary()
                    .and_then(|b| std::str::from_utf8(b.as_ref()).ok())
                    .map(SecretString::new)
            }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                None
            }
            Err(e) => {
                // The SDK's error names the request and the service's message, never the
                // value (there is none in a failed read).
                return Err(StoreError::Unavailable(format!(
                    "Secrets Manager could not read secret `{id}`: {}",
                    DisplayErrorContext(&e)
                )));
            }
        };
        self.remember(name, value.clone());
        Ok(value)
    }
}
