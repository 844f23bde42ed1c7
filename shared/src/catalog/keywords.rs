//! Unknown keywords in a form's JSON Schema. JSON Schema ignores keywords it does not
//! know, so `patern:` or `requried:` would silently switch a check off in the portal and
//! in the orchestrator alike. Custom annotations are welcome under an `x-` prefix.

use serde_json::Value;

use super::finding::{Severity, did_you_mean};
use super::yaml::escape_token;

/// The keywords of JSON Schema draft 2020-12 (core, applicator, unevaluated, validation,
/// meta-data, format and content vocabularies).
const KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "$ref",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$vocabulary",
    "$comment",
    "$defs",
    "prefixItems",
    "items",
    "contains",
    "additionalProperties",
    "properties",
    "patternProperties",
    "dependentSchemas",
    "propertyNames",
    "if",
    "then",
    "else",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "unevaluatedItems",
    "unevaluatedProperties",
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxContains",
    "minContains",
    "maxProperties",
    "minProperties",
    "required",
    "dependentRequired",
    "title",
    "description",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "examples",
    "format",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
];

/// Keywords whose value is one subschema.
const SCHEMA_VALUED: &[&str] = &[
    "items",
    "contains",
    "additionalProperties",
    "propertyNames",
    "if",
    "then",
    "else",
    "not",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
];

/// Keywords whose value is a list of subschemas.
const SCHEMA_LISTS: &[&str] = &["prefixItems", "allOf", "anyOf", "oneOf"];

/// Keywords whose value maps names to subschemas.
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "dependentSchemas",
    "$defs",
];

/// Keywords of earlier drafts that 2020-12 validators ignore, with what replaces them.
const LEGACY: &[(&str, &str)] = &[
    ("dependencies", "dependentSchemas or dependentRequired"),
    ("definitions", "$defs"),
    ("additionalItems", "items (with prefixItems)"),
];

/// A problem with a keyword: where (pointer relative to the schema), how bad, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordProblem {
    pub pointer: String,
    pub severity: Severity,
    pub message: String,
}

/// Lists every keyword of `schema` (and its subschemas) that JSON Schema 2020-12 ignores.
pub fn check(schema: &Value) -> Vec<KeywordProblem> {
    let mut out = Vec::new();
    let mut stack = vec![(schema, String::new())];
    while let Some((schema, pointer)) = stack.pop() {
        let Value::Object(map) = schema else {
            continue; // `true` / `false` schemas, or a type error the meta-schema reports.
        };
        for (key, value) in map {
            let here = format!("{pointer}/{}", escape_token(key));
            if SCHEMA_VALUED.contains(&key.as_str()) {
                stack.push((value, here));
            } else if SCHEMA_LISTS.contains(&key.as_str()) {
                if let Value::Array(list) = value {
                    stack.extend(
                        list.iter()
                            .enumerate()
                            .map(|(i, s)| (s, format!("{here}/{i}"))),
                    );
                }
            } else if SCHEMA_MAPS.contains(&key.as_str()) {
                if let Value::Object(entries) = value {
                    stack.extend(
                        entries
                            .iter()
                            .map(|(k, s)| (s, format!("{here}/{}", escape_token(k)))),
                    );
                }
            } else if KEYWORDS.contains(&key.as_str()) || key.starts_with("x-") {
                // A value, not a schema: nothing beneath to check.
            } else if let Some((_, instead)) = LEGACY.iter().find(|(k, _)| k == key) {
                out.push(KeywordProblem {
                    pointer: here,
                    severity: Severity::Warning,
                    message: format!(
                        "`{key}` is not a JSON Schema 2020-12 keyword, so the orchestrator ignores it; use {instead}"
                    ),
                });
            } else {
                out.push(KeywordProblem {
                    pointer: here,
                    severity: Severity::Error,
                    message: format!(
                        "`{key}` is not a JSON Schema keyword and would be silently ignored{}; \
                         prefix custom annotations with `x-`",
                        did_you_mean(key, KEYWORDS.iter().copied())
                    ),
                });
            }
        }
    }
    out.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typos_are_found_at_any_depth_with_suggestions() {
        let schema = json!({
            "type": "object",
            "requried": ["a"],
            "properties": {
                "a": {"type": "string", "patern": "^x"},
                "b": {"type": "array", "items": {"minLenght": 2}}
            },
            "allOf": [{"if": {"properties": {"a": {"const": "x"}}}, "then": {"requierd": ["b"]}}]
        });
        let problems = check(&schema);
        let found: Vec<(&str, bool)> = problems
            .iter()
            .map(|p| (p.pointer.as_str(), p.message.contains("did you mean")))
            .collect();
        assert_eq!(
            found,
            [
                ("/allOf/0/then/requierd", true),
                ("/properties/a/patern", true),
                ("/properties/b/items/minLenght", true),
                ("/requried", true),
            ]
        );
    }

    #[test]
    fn property_names_extensions_and_values_are_not_keywords() {
        let schema = json!({
            "type": "object",
            "x-portal-section": "Network",
            "properties": {"patern": {"type": "string", "default": {"anything": 1}, "examples": [{"x": 1}]}},
            "$defs": {"requried": {"type": "string"}}
        });
        assert_eq!(check(&schema), vec![]);
    }

    #[test]
    fn draft_07_keywords_are_warnings_that_name_the_replacement() {
        let problems = check(&json!({"type": "object", "dependencies": {"a": ["b"]}}));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].severity, Severity::Warning);
        assert!(problems[0].message.contains("dependentSchemas"));
    }
}
