//! The `environment` template scope from Parameter Store: every `String` and `StringList`
//! parameter under a path (`/orchestrator/<stage>/environment/`), read at start. A
//! parameter `.../accounts/prod` is `environment.accounts.prod`; a `StringList` is a list.
//! `SecureString` parameters are skipped, with a warning: the scope is shown in plans, and
//! secrets belong in the `secrets` scope. A [`Source`] reads it again while the process
//! runs, so a parameter changed in Parameter Store reaches the next request.

use aws_config::SdkConfig;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::DisplayErrorContext;
use aws_sdk_ssm::types::ParameterType;
use serde_json::{Map, Value};

/// The parameters under `path`, as the `environment` scope's keys.
pub async fn load(sdk: &SdkConfig, path: &str) -> Result<Map<String, Value>, String> {
    let client = Client::new(sdk);
    let prefix = if path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    };
    let mut scope = Map::new();
    let mut pages = client
        .get_parameters_by_path()
        .path(prefix.trim_end_matches('/'))
        .recursive(true)
        .with_decryption(false)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            format!(
                "cannot read the environment from Parameter Store at {prefix}: {}",
                DisplayErrorContext(&e)
            )
        })?;
        for parameter in page.parameters() {
            let (Some(name), Some(value)) = (parameter.name(), parameter.value()) else {
                continue;
            };
            let Some(key) = name.strip_prefix(&prefix) else {
                continue;
            };
            let value = match parameter.r#type() {
                Some(ParameterType::SecureString) => {
                    tracing::warn!(
                        parameter = name,
                        "skipped a SecureString: the environment scope is not secret; put secrets in the secrets scope"
                    );
                    continue;
                }
                Some(ParameterType::StringList) => Value::Array(
                    value
                        .split(',')
                        .map(|v| Value::String(v.to_owned()))
                        .collect(),
                ),
                _ => Value::String(value.to_owned()),
            };
            insert(&mut scope, key, value);
        }
    }
    Ok(scope)
}

/// Puts `value` at the `/`-separated `key` (`accounts/prod`), making objects on the way.
fn insert(scope: &mut Map<String, Value>, key: &str, value: Value) {
    let mut parts = key.split('/').filter(|p| !p.is_empty()).peekable();
    let mut here = scope;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            here.insert(part.to_owned(), value);
            return;
        }
        let next = here
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(map) = next else { return };
        here = map;
    }
}

/// Adds `loaded` to `environment` where it has no key of its own: what the deployment's
/// configuration says wins over Parameter Store.
pub fn merge(environment: &mut Map<String, Value>, loaded: Map<String, Value>) {
    for (key, value) in loaded {
        environment.entry(key).or_insert(value);
    }
}

/// Where a process's `environment` scope comes from: the configuration's own keys, then
/// the parameters under a path.
pub struct Source {
    sdk: SdkConfig,
    path: String,
    own: Map<String, Value>,
}

impl Source {
    /// `own`: the configuration's keys, which win over Parameter Store's.
    pub fn new(sdk: &SdkConfig, path: &str, own: Map<String, Value>) -> Self {
        Source {
            sdk: sdk.clone(),
            path: path.to_owned(),
            own,
        }
    }

    /// The scope as it stands in Parameter Store now.
    pub async fn load(&self) -> Result<Map<String, Value>, String> {
        let mut scope = self.own.clone();
        merge(&mut scope, load(&self.sdk, &self.path).await?);
        Ok(scope)
    }

    /// Reads the scope again into `scope`: the keys that changed (logged, without their
    /// values). A failed read keeps the scope in hand.
    pub async fn reload(&self, scope: &shared::fulfillment::Environment) -> Vec<String> {
        match self.load().await {
            Ok(now) => {
                let changed = scope.replace(now);
                if !changed.is_empty() {
                    tracing::info!(path = %self.path, keys = ?changed, "the environment scope changed in Parameter Store");
                }
                changed
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the environment scope again; keeping the one in hand");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_keys_become_objects_and_the_configuration_wins() {
        let mut loaded = Map::new();
        insert(&mut loaded, "dbaasApiUrl", json!("https://dbaas"));
        insert(&mut loaded, "accounts/prod", json!("111122223333"));
        insert(&mut loaded, "accounts/dev", json!("444455556666"));
        insert(&mut loaded, "region", json!("eu-west-1"));
        let mut environment = json!({"region": "us-east-1"}).as_object().cloned().unwrap();
        merge(&mut environment, loaded);
        assert_eq!(
            Value::Object(environment),
            json!({"region": "us-east-1", "dbaasApiUrl": "https://dbaas",
                   "accounts": {"prod": "111122223333", "dev": "444455556666"}})
        );
    }
}
