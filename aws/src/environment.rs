//! The `environment` template scope from Parameter Store: every `String` and `StringList`
//! parameter under a path (`/orchestrator/<stage>/environment/`), read at start. A
//! parameter `.../accounts/prod` is `environment.accounts.prod`; a `StringList` is a list.
//! `SecureString` parameters are skipped, with a warning: the scope is shown in plans, and
//! secrets belong in the `secrets` scope.

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
