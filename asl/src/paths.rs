//! Paths and payload templates: `InputPath`/`OutputPath` selection, `ResultPath` merging,
//! and `Parameters`/`ResultSelector`/`ItemSelector` templates whose `key.$` fields hold a
//! path (into the input, or with `$$.` into the context object) or an intrinsic function.
//! JSONPath evaluation is serde_json_path (RFC 9535); a definite path yields its value, an
//! indefinite one (wildcards, filters, slices, unions, descent) the array of its matches.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

use crate::Failure;
use crate::intrinsics;

/// Whether `p` is a path this runner evaluates (`$...` or `$$...`).
pub fn check_path(p: &str) -> Result<(), String> {
    let query = as_query(p).ok_or_else(|| format!("`{p}` is not a path (it must start with $)"))?;
    JsonPath::parse(&query)
        .map(|_| ())
        .map_err(|e| format!("`{p}` is not a valid JSONPath: {e}"))
}

/// Whether `p` is a reference path: a path to one node, no wildcards or filters.
pub fn check_reference(p: &str) -> Result<(), String> {
    check_path(p)?;
    if p.starts_with("$$") {
        return Err(format!("`{p}` cannot point into the context object here"));
    }
    if !is_definite(p) {
        return Err(format!(
            "`{p}` must point to one node (no wildcards, filters or slices)"
        ));
    }
    segments(p).map(|_| ())
}

/// Checks a payload template's `.$` fields.
pub fn check_template(template: &Value, field: &str) -> Result<(), String> {
    match template {
        Value::Object(map) => {
            for (k, v) in map {
                if let Some(key) = k.strip_suffix(".$") {
                    let Some(expr) = v.as_str() else {
                        return Err(format!(
                            "{field}.{k}: the value of a `.$` field must be a string"
                        ));
                    };
                    let checked = if expr.starts_with("States.") {
                        intrinsics::parse(expr).map(|_| ())
                    } else {
                        check_path(expr)
                    };
                    checked.map_err(|e| format!("{field}.{key}.$: {e}"))?;
                } else {
                    check_template(v, &format!("{field}.{k}"))?;
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_template(v, &format!("{field}[{i}]"))),
        _ => Ok(()),
    }
}

fn as_query(p: &str) -> Option<String> {
    if let Some(rest) = p.strip_prefix("$$") {
        Some(format!("${rest}"))
    } else if p.starts_with('$') {
        Some(p.to_owned())
    } else {
        None
    }
}

/// A path without wildcards, filters, slices, unions or descent.
fn is_definite(p: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut prev = '\0';
    let mut depth = 0;
    for c in p.chars() {
        match quote {
            Some(q) if c == q && prev != '\\' => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' => depth += 1,
                ']' => depth -= 1,
                '*' | '?' => return false,
                ':' | ',' if depth > 0 => return false,
                '.' if prev == '.' => return false,
                _ => {}
            },
        }
        prev = c;
    }
    true
}

/// The value at `path` in `input` (or, for `$$.`, in `context`).
pub fn select(path: &str, input: &Value, context: &Value) -> Result<Value, Failure> {
    let (doc, query) = match path.strip_prefix("$$") {
        Some(rest) => (context, format!("${rest}")),
        None => (input, path.to_owned()),
    };
    let compiled = JsonPath::parse(&query)
        .map_err(|e| Failure::runtime(format!("invalid path '{path}': {e}")))?;
    let nodes = compiled.query(doc);
    if is_definite(path) {
        match nodes.at_most_one() {
            Ok(Some(v)) => Ok(v.clone()),
            _ => Err(Failure::runtime(format!(
                "The JSONPath '{path}' could not be found in the input '{}'",
                compact(doc)
            ))),
        }
    } else {
        Ok(Value::Array(nodes.all().into_iter().cloned().collect()))
    }
}

/// `InputPath` or `OutputPath` applied: `$` keeps, a path selects, `null` gives `{}`.
pub fn apply_filter(
    field: &crate::definition::PathField,
    value: Value,
    context: &Value,
    name: &str,
) -> Result<Value, Failure> {
    use crate::definition::PathField;
    match field {
        PathField::Default => Ok(value),
        PathField::Null => Ok(Value::Object(Map::new())),
        PathField::Path(p) if p == "$" => Ok(value),
        PathField::Path(p) => select(p, &value, context).map_err(|_| {
            Failure::runtime(format!(
                "Invalid path '{p}' : No results for path: {p}"
            ))
            .with_cause(format!(
                "An error occurred while executing the state '{name}'. Invalid path '{p}': the path could not be found in the input '{}'",
                compact(&value)
            ))
        }),
    }
}

/// `ResultPath` applied: where `result` goes in `input`.
pub fn apply_result_path(
    field: &crate::definition::PathField,
    input: Value,
    result: Value,
    name: &str,
) -> Result<Value, Failure> {
    use crate::definition::PathField;
    let path = match field {
        PathField::Default => return Ok(result),
        PathField::Null => return Ok(input),
        PathField::Path(p) if p == "$" => return Ok(result),
        PathField::Path(p) => p,
    };
    let fail = || {
        Failure::new(
            "States.ResultPathMatchFailure",
            format!(
                "An error occurred while executing the state '{name}'. Unable to apply ReferencePath {path} to input {}",
                compact(&input)
            ),
        )
    };
    let segs = segments(path).map_err(|_| fail())?;
    let mut out = input.clone();
    let mut at = &mut out;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        at = match seg {
            Seg::Key(k) => {
                let Value::Object(map) = at else {
                    return Err(fail());
                };
                if last {
                    map.insert(k.clone(), result);
                    return Ok(out);
                }
                map.entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
            }
            Seg::Index(n) => {
                let Some(slot) = at.as_array_mut().and_then(|a| a.get_mut(*n)) else {
                    return Err(fail());
                };
                if last {
                    *slot = result;
                    return Ok(out);
                }
                slot
            }
        };
    }
    Ok(result)
}

/// A payload template resolved against `input` and the context.
pub fn resolve(template: &Value, input: &Value, context: &Value) -> Result<Value, Failure> {
    match template {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                match (k.strip_suffix(".$"), v.as_str()) {
                    (Some(key), Some(expr)) => {
                        let value = if expr.starts_with("States.") {
                            intrinsics::evaluate(expr, input, context)?
                        } else {
                            select(expr, input, context).map_err(|_| {
                                Failure::runtime(format!(
                                    "The JSONPath '{expr}' specified for the field '{k}' could not be found in the input '{}'",
                                    compact(input)
                                ))
                            })?
                        };
                        out.insert(key.to_owned(), value);
                    }
                    _ => {
                        out.insert(k.clone(), resolve(v, input, context)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|v| resolve(v, input, context))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// One step of a reference path.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `$.a.b`, `$['a b']`, `$.a[0]` as steps.
fn segments(path: &str) -> Result<Vec<Seg>, String> {
    let bad = || format!("`{path}` is not a reference path");
    let mut rest = path.strip_prefix('$').ok_or_else(bad)?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad());
            }
            out.push(Seg::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']').ok_or_else(bad)?;
            let inner = r[..close].trim();
            if let Some(q) = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
            {
                out.push(Seg::Key(q.to_owned()));
            } else {
                out.push(Seg::Index(inner.parse().map_err(|_| bad())?));
            }
            rest = &r[close + 1..];
        } else {
            return Err(bad());
        }
    }
    Ok(out)
}

/// A value in one line, for messages.
pub fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// An RFC 3339 timestamp, as Step Functions accepts them.
pub fn parse_timestamp(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::PathField;
    use serde_json::json;

    #[test]
    fn definite_paths_give_values_and_indefinite_ones_arrays() {
        let doc = json!({"a": [{"b": 1}, {"b": 2}], "c": {"d e": 3}});
        let ctx = json!({"Execution": {"Id": "x"}});
        assert_eq!(select("$.a[1].b", &doc, &ctx).unwrap(), json!(2));
        assert_eq!(select("$.a[*].b", &doc, &ctx).unwrap(), json!([1, 2]));
        assert_eq!(select("$.a[?(@.b > 1)].b", &doc, &ctx).unwrap(), json!([2]));
        assert_eq!(select("$.a[?(@.b > 5)]", &doc, &ctx).unwrap(), json!([]));
        assert_eq!(select("$.c['d e']", &doc, &ctx).unwrap(), json!(3));
        assert_eq!(select("$$.Execution.Id", &doc, &ctx).unwrap(), json!("x"));
        assert!(select("$.nope", &doc, &ctx).is_err());
    }

    #[test]
    fn result_path_creates_objects_and_refuses_to_descend_into_other_values() {
        let input = json!({"a": 1});
        let set =
            |p: &str| apply_result_path(&PathField::Path(p.into()), input.clone(), json!("r"), "S");
        assert_eq!(set("$.x.y").unwrap(), json!({"a": 1, "x": {"y": "r"}}));
        assert_eq!(set("$").unwrap(), json!("r"));
        assert_eq!(
            set("$.a.b").unwrap_err().error,
            "States.ResultPathMatchFailure"
        );
        assert_eq!(
            apply_result_path(&PathField::Null, input.clone(), json!(1), "S").unwrap(),
            input
        );
    }

    #[test]
    fn templates_resolve_paths_context_and_intrinsics() {
        let t = json!({"a.$": "$.x", "b": {"c.$": "$$.State.Name"}, "d.$": "States.Format('{}-{}', $.x, $.y)", "e": [1]});
        let out = resolve(
            &t,
            &json!({"x": "p", "y": 2}),
            &json!({"State": {"Name": "S"}}),
        );
        assert_eq!(
            out.unwrap(),
            json!({"a": "p", "b": {"c": "S"}, "d": "p-2", "e": [1]})
        );
    }
}
