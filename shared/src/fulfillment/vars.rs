//! The variables an action's templates read, and the secrets among them.
//!
//! Secrets are resolved lazily: only the names an action's templates mention are read
//! from the secrets port, and every value read is handed to a [`Redactor`] that replaces
//! it with `***` wherever text leaves the engine (events, errors, logs, stored outputs).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::ports::{Secrets, StoreError};
use crate::template::refs::{analyze, is_template};

/// What a redacted secret reads as.
pub const REDACTED: &str = "***";

/// The keys of `scope` that the templates in `value`'s string leaves read: for
/// `secrets`, the names in `{{secrets.NAME}}`; for `outputs`, the action ids.
pub fn scope_keys(value: &Value, scope: &str) -> BTreeSet<String> {
    fn walk(value: &Value, scope: &str, out: &mut BTreeSet<String>) {
        match value {
            Value::String(text) if is_template(text) => {
                for var in analyze(text).variables {
                    if let [first, key, ..] = var.segments.as_slice()
                        && first == scope
                    {
                        out.insert(key.clone());
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, scope, out)),
            Value::Object(map) => map.values().for_each(|v| walk(v, scope, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(value, scope, &mut out);
    out
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret `{0}` is not configured")]
    Missing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads the named secrets: the `secrets` scope as a JSON object, and the redactor that
/// hides their values.
pub async fn resolve_secrets(
    secrets: &dyn Secrets,
    names: &BTreeSet<String>,
    redactor: &mut Redactor,
) -> Result<Value, SecretError> {
    let mut scope = Map::new();
    for name in names {
        let value = secrets
            .get(name)
            .await?
            .ok_or_else(|| SecretError::Missing(name.clone()))?;
        redactor.add(value.expose());
        scope.insert(name.clone(), Value::String(value.expose().to_owned()));
    }
    Ok(Value::Object(scope))
}

/// Replaces known secret values with `***` in text and JSON.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is hidden whole.
    values: Vec<String>,
}

impl Redactor {
    pub fn add(&mut self, value: &str) {
        if value.is_empty() || self.values.iter().any(|v| v == value) {
            return;
        }
        // Also the forms a value takes on the wire: in a URL and inside a JSON string.
        let mut forms = vec![value.to_owned()];
        let encoded =
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        forms.push(encoded);
        if let Ok(quoted) = serde_json::to_string(value) {
            forms.push(quoted[1..quoted.len() - 1].to_owned());
        }
        for form in forms {
            if !self.values.contains(&form) {
                self.values.push(form);
            }
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), REDACTED);
            }
        }
        out
    }

    pub fn value(&self, value: &Value) -> Value {
        if self.values.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.text(k), self.value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scope_keys_are_found_in_every_leaf() {
        let with = json!({"url": "{{environment.api}}/x?k={{secrets.apiKey}}",
                          "headers": {"Authorization": "Bearer {{secrets.token}}"},
                          "body": [{"x": "{{#if fields.a}}{{secrets.other}}{{/if}}"}, 3]});
        assert_eq!(
            scope_keys(&with, "secrets").into_iter().collect::<Vec<_>>(),
            ["apiKey", "other", "token"]
        );
    }

    #[test]
    fn redaction_hides_values_in_text_json_and_url_forms() {
        let mut r = Redactor::default();
        r.add("s3cr\"t/+");
        r.add("s3cr");
        r.add("");
        assert_eq!(r.text("a s3cr\"t/+ b s3cr c"), "a *** b *** c");
        assert_eq!(r.text("q=s3cr%22t%2F%2B"), "q=***");
        assert_eq!(r.text(r#"{"k":"s3cr\"t/+"}"#), r#"{"k":"***"}"#);
        assert_eq!(
            r.value(&json!({"a": ["x s3cr y"], "s3cr": 1})),
            json!({"a": ["x *** y"], "***": 1})
        );
    }
}
