//! The normative JSON Schemas of the catalog documents, compiled once, and the translation
//! of their validation errors into findings an author can act on.

use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::{Map, Value};

use super::document::Kind;
use super::finding::did_you_mean;
use super::yaml::escape_token;

pub const ITEM_SCHEMA: &str = include_str!("../../../schemas/catalog-item.schema.json");
pub const BUNDLE_SCHEMA: &str = include_str!("../../../schemas/catalog-bundle.schema.json");
pub const TEAMS_SCHEMA: &str = include_str!("../../../schemas/teams.schema.json");
pub const CALENDAR_SCHEMA: &str = include_str!("../../../schemas/change-calendar.schema.json");

struct Compiled {
    schema: Value,
    validator: Validator,
}

fn compile(text: &str) -> Compiled {
    // The schemas are part of this crate; a test proves they parse and compile.
    let schema: Value = serde_json::from_str(text).expect("embedded schema is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("embedded schema compiles");
    Compiled { schema, validator }
}

static ITEM: LazyLock<Compiled> = LazyLock::new(|| compile(ITEM_SCHEMA));
static BUNDLE: LazyLock<Compiled> = LazyLock::new(|| compile(BUNDLE_SCHEMA));
static TEAMS: LazyLock<Compiled> = LazyLock::new(|| compile(TEAMS_SCHEMA));
static CALENDAR: LazyLock<Compiled> = LazyLock::new(|| compile(CALENDAR_SCHEMA));

fn compiled(kind: Kind) -> &'static Compiled {
    match kind {
        Kind::CatalogItem => &ITEM,
        Kind::CatalogBundle => &BUNDLE,
        Kind::Teams => &TEAMS,
        Kind::ChangeCalendar => &CALENDAR,
    }
}

/// The schema of a kind of document, as JSON.
pub fn schema_of(kind: Kind) -> &'static Value {
    &compiled(kind).schema
}

/// A schema violation: where (JSON pointer into the instance), which rule (the JSON
/// Schema keyword that failed), and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Violation {
    pub pointer: String,
    pub rule: String,
    pub message: String,
}

/// Validates a document against the schema of its kind, returning every violation.
pub fn validate(kind: Kind, document: &Value) -> Vec<Violation> {
    let compiled = compiled(kind);
    violations(
        &compiled.schema,
        &compiled.validator,
        document,
        "the document",
    )
}

/// Every violation of `instance` against a compiled schema, explained; `root` names the
/// instance itself in messages ("the document", "the request").
pub fn violations(
    schema: &Value,
    validator: &Validator,
    instance: &Value,
    root: &str,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for error in validator.iter_errors(instance) {
        explain(schema, &error, root, &mut out);
    }
    out
}

/// The subschema holding the keyword that failed.
fn keyword_parent<'s>(schema: &'s Value, error: &ValidationError<'_>) -> Option<&'s Value> {
    let path = error.schema_path().as_str();
    let parent = &path[..path.rfind('/')?];
    schema.pointer(parent)
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Number(_) => "a number".to_owned(),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

fn field_name(pointer: &str, root: &str) -> String {
    match pointer.rsplit('/').next() {
        Some(last) if !pointer.is_empty() => format!("`{last}`"),
        _ => root.to_owned(),
    }
}

fn explain(schema: &Value, error: &ValidationError<'_>, root: &str, out: &mut Vec<Violation>) {
    let pointer = error.instance_path().as_str().to_owned();
    let rule = error.kind().keyword().to_owned();
    let at = field_name(&pointer, root);
    let message = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            let allowed: Vec<&str> = keyword_parent(schema, error)
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object)
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            for key in unexpected {
                let hint = did_you_mean(key, allowed.iter().copied());
                let listing = if allowed.is_empty() || !hint.is_empty() {
                    String::new()
                } else {
                    format!("; allowed here: {}", allowed.join(", "))
                };
                out.push(Violation {
                    pointer: format!("{pointer}/{}", escape_token(key)),
                    rule: rule.clone(),
                    message: format!("unknown field `{key}` in {at}{hint}{listing}"),
                });
            }
            return;
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let what = keyword_parent(schema, error)
                .and_then(|s| s.pointer(&format!("/properties/{}/description", escape_token(name))))
                .and_then(Value::as_str)
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            format!("{at} is missing the required field `{name}`{what}")
        }
        ValidationErrorKind::Type { kind } => {
            format!(
                "{at} must be {}, not {}",
                type_name(&format!("{kind:?}")),
                describe(error.instance())
            )
        }
        ValidationErrorKind::Enum { options } => {
            let given = error.instance();
            let choices: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|o| o.as_str().map_or(o.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let hint = given
                .as_str()
                .map(|g| did_you_mean(g, choices.iter().map(String::as_str)))
                .unwrap_or_default();
            format!(
                "{at} is {given}, expected one of: {}{hint}",
                choices.join(", ")
            )
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("{at} must be {expected_value}, not {}", error.instance())
        }
        ValidationErrorKind::Pattern { pattern } => {
            let explanation = keyword_parent(schema, error)
                .and_then(|s| s.get("description"))
                .and_then(Value::as_str)
                .map_or_else(|| format!("it must match {pattern}"), str::to_owned);
            format!(
                "{at} is {}, which is not allowed here: {explanation}",
                error.instance()
            )
        }
        _ => format!("{at}: {error}"),
    };
    out.push(Violation {
        pointer,
        rule,
        message,
    });
}

fn type_name(debug: &str) -> &'static str {
    let lower = debug.to_ascii_lowercase();
    if lower.contains("object") {
        "a mapping"
    } else if lower.contains("array") {
        "a list"
    } else if lower.contains("string") {
        "a string"
    } else if lower.contains("integer") {
        "an integer"
    } else if lower.contains("number") {
        "a number"
    } else if lower.contains("boolean") {
        "a boolean"
    } else {
        "of another type"
    }
}

/// Converts rendered values to the types the form declares for them: a template renders
/// `{{eq fields.environment 'prod'}}` as `"true"` where the item wants a boolean, and
/// `{{components.database.outputs.port}}` as a number where it wants text. Nested objects
/// and arrays follow `properties`, `additionalProperties` and `items`. Values that do not
/// convert are left for the form's check to report.
pub fn coerce(fields: &mut Map<String, Value>, schema: &Value) {
    for (name, value) in fields.iter_mut() {
        if let Some(property) = property_schema(schema, name) {
            coerce_value(value, property);
        }
    }
}

fn property_schema<'s>(schema: &'s Value, name: &str) -> Option<&'s Value> {
    schema
        .get("properties")
        .and_then(|p| p.get(name))
        .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
}

fn coerce_value(value: &mut Value, schema: &Value) {
    let kind = schema.get("type").and_then(Value::as_str);
    let converted = match (kind, &mut *value) {
        (Some("object"), Value::Object(fields)) => {
            coerce(fields, schema);
            None
        }
        (Some("array"), Value::Array(items)) => {
            if let Some(item) = schema.get("items") {
                items.iter_mut().for_each(|v| coerce_value(v, item));
            }
            None
        }
        (Some("string"), Value::Number(n)) => Some(Value::String(n.to_string())),
        (Some("string"), Value::Bool(b)) => Some(Value::String(b.to_string())),
        (Some("boolean"), Value::String(text)) => match text.as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        (Some("integer"), Value::String(text)) => text.trim().parse::<i64>().ok().map(Value::from),
        (Some("number"), Value::String(text)) => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        _ => None,
    };
    if let Some(converted) = converted {
        *value = converted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn embedded_schemas_compile() {
        for kind in Kind::ALL {
            assert!(schema_of(kind).is_object());
        }
    }

    #[test]
    fn definitions_shared_between_schemas_are_identical() {
        let item = schema_of(Kind::CatalogItem)["$defs"].as_object().unwrap();
        for kind in [Kind::CatalogBundle, Kind::Teams] {
            for (name, def) in schema_of(kind)["$defs"].as_object().unwrap() {
                if let Some(original) = item.get(name) {
                    assert_eq!(
                        def, original,
                        "$defs/{name} of {kind:?} drifted from the item schema"
                    );
                }
            }
        }
    }

    #[test]
    fn rendered_text_takes_the_declared_type() {
        let schema = json!({"properties": {
            "multiAz": {"type": "boolean"}, "size": {"type": "integer"},
            "ratio": {"type": "number"}, "name": {"type": "string"},
            "values": {"type": "object", "additionalProperties": {"type": "string"}},
            "ports": {"type": "array", "items": {"type": "integer"}}
        }});
        let mut fields = json!({"multiAz": "true", "size": "20", "ratio": "0.5", "name": 42,
                                "values": {"DB_PORT": 5432, "TLS": true}, "ports": ["80", 443], "other": "x"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        coerce(&mut fields, &schema);
        assert_eq!(
            Value::Object(fields),
            json!({"multiAz": true, "size": 20, "ratio": 0.5, "name": "42",
                   "values": {"DB_PORT": "5432", "TLS": "true"}, "ports": [80, 443], "other": "x"})
        );
        let mut bad = json!({"size": "twenty"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        coerce(&mut bad, &schema);
        assert_eq!(bad["size"], "twenty", "left for the form check to report");
    }
}
