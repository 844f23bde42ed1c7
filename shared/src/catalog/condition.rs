//! Reading JSON documents with JSONPath, and the conditions the catalog writes on them
//! (an action's polling, an approval policy's `when`).

use serde_json::Value;
use serde_json_path::JsonPath;

use super::document::Condition;

/// A JSONPath that does not parse (the catalog's validation catches these first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{path}` is not valid JSONPath: {why}")]
pub struct BadPath {
    pub path: String,
    pub why: String,
}

/// The value at `path`: one node as itself, several as an array, none as `None`.
pub fn select(document: &Value, path: &str) -> Result<Option<Value>, BadPath> {
    let parsed = JsonPath::parse(path).map_err(|e| BadPath {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    let nodes = parsed.query(document).all();
    Ok(match nodes.as_slice() {
        [] => None,
        [one] => Some((*one).clone()),
        many => Some(Value::Array(many.iter().map(|v| (*v).clone()).collect())),
    })
}

impl Condition {
    /// Whether it holds on `document`: nothing at `path` never holds; every test given
    /// must hold; a bound holds only on a number.
    pub fn holds(&self, document: &Value) -> Result<bool, BadPath> {
        let Some(value) = select(document, &self.path)? else {
            return Ok(false);
        };
        if self.equals.as_ref().is_some_and(|e| *e != value) {
            return Ok(false);
        }
        if self.one_of.as_ref().is_some_and(|o| !o.contains(&value)) {
            return Ok(false);
        }
        let number = value.as_f64();
        if let Some(bound) = self.greater_than
            && !number.is_some_and(|n| n > bound)
        {
            return Ok(false);
        }
        if let Some(bound) = self.less_than
            && !number.is_some_and(|n| n < bound)
        {
            return Ok(false);
        }
        Ok(true)
    }
}

/// Whether every condition (a policy's or a calendar's `when`) holds on a request's
/// `fields` (read as `$.fields...`); none holds everywhere.
pub fn all_hold(conditions: &[Condition], fields: &serde_json::Map<String, Value>) -> bool {
    if conditions.is_empty() {
        return true;
    }
    let document = serde_json::json!({ "fields": fields });
    conditions
        .iter()
        .all(|c| c.holds(&document).unwrap_or(false))
}

impl super::document::ApprovalPolicy {
    /// Whether it applies to a request with `fields`: every `when` condition holds.
    pub fn applies_to(&self, fields: &serde_json::Map<String, Value>) -> bool {
        all_hold(&self.when, fields)
    }
}

impl super::document::CalendarScope {
    /// Whether it names `target` (an item or bundle owned by `owner`), whatever the
    /// request's operation and fields.
    pub fn names(&self, target: &str, owner: &str) -> bool {
        let named = self.items.is_empty() && self.bundles.is_empty()
            || self.items.iter().any(|i| i == target)
            || self.bundles.iter().any(|b| b == target);
        named && (self.teams.is_empty() || self.teams.iter().any(|t| t == owner))
    }
}

impl super::document::Approvers {
    /// Who they are, in words: `team database, group security, alice` (`owner`: the
    /// owning team's name, or how to call it).
    pub fn describe(&self, owner: &str) -> String {
        let mut parts = Vec::new();
        if self.owner {
            parts.push(format!("team {owner}"));
        }
        parts.extend(self.teams.iter().map(|t| format!("team {t}")));
        parts.extend(self.groups.iter().map(|g| format!("group {g}")));
        parts.extend(self.users.iter().cloned());
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_test_given_must_hold() {
        let doc = json!({"fields": {"environment": "prod", "storageGb": 800}});
        let c = |v: Value| -> Condition { serde_json::from_value(v).unwrap() };
        assert!(
            c(json!({"path": "$.fields.environment", "equals": "prod"}))
                .holds(&doc)
                .unwrap()
        );
        assert!(
            c(json!({"path": "$.fields.storageGb", "greaterThan": 500}))
                .holds(&doc)
                .unwrap()
        );
        assert!(
            !c(json!({"path": "$.fields.storageGb", "greaterThan": 800}))
                .holds(&doc)
                .unwrap()
        );
        assert!(
            c(json!({"path": "$.fields.storageGb", "greaterThan": 500, "lessThan": 1000}))
                .holds(&doc)
                .unwrap()
        );
        assert!(
            !c(json!({"path": "$.fields.environment", "greaterThan": 1}))
                .holds(&doc)
                .unwrap()
        );
        assert!(
            !c(json!({"path": "$.fields.missing", "equals": null}))
                .holds(&doc)
                .unwrap()
        );
        assert!(
            c(json!({"path": "$.fields[", "equals": 1}))
                .holds(&doc)
                .is_err()
        );
    }
}
