//! Choice rules: every comparison operator (and its `...Path` form), `And`, `Or`, `Not`.
//! A comparison between values of the wrong types is false, as in Step Functions; a
//! `Variable` that is not in the input is a `States.Runtime` error, except for `IsPresent`.

use serde_json::Value;

use crate::Failure;
use crate::paths::{check_path, parse_timestamp, select};

#[derive(Debug, Clone)]
pub enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Test {
        variable: String,
        comparison: Comparison,
        operand: Operand,
    },
}

#[derive(Debug, Clone)]
pub enum Operand {
    Value(Value),
    Path(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

use Comparison::*;

/// Every operator with its name in a definition.
const OPERATORS: [(&str, Comparison); 23] = [
    ("StringEquals", StringEquals),
    ("StringLessThan", StringLessThan),
    ("StringGreaterThan", StringGreaterThan),
    ("StringLessThanEquals", StringLessThanEquals),
    ("StringGreaterThanEquals", StringGreaterThanEquals),
    ("StringMatches", StringMatches),
    ("NumericEquals", NumericEquals),
    ("NumericLessThan", NumericLessThan),
    ("NumericGreaterThan", NumericGreaterThan),
    ("NumericLessThanEquals", NumericLessThanEquals),
    ("NumericGreaterThanEquals", NumericGreaterThanEquals),
    ("BooleanEquals", BooleanEquals),
    ("TimestampEquals", TimestampEquals),
    ("TimestampLessThan", TimestampLessThan),
    ("TimestampGreaterThan", TimestampGreaterThan),
    ("TimestampLessThanEquals", TimestampLessThanEquals),
    ("TimestampGreaterThanEquals", TimestampGreaterThanEquals),
    ("IsNull", IsNull),
    ("IsPresent", IsPresent),
    ("IsNumeric", IsNumeric),
    ("IsString", IsString),
    ("IsBoolean", IsBoolean),
    ("IsTimestamp", IsTimestamp),
];

impl Comparison {
    fn by_name(name: &str) -> Option<Comparison> {
        OPERATORS.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
    }

    fn is_type_test(self) -> bool {
        matches!(
            self,
            IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp
        )
    }
}

impl Rule {
    /// Parses a rule; `top` allows `Next` (a rule inside `And`/`Or`/`Not` has none).
    pub fn parse(v: &Value, top: bool) -> Result<Rule, String> {
        let Some(obj) = v.as_object() else {
            return Err("a choice rule must be an object".to_owned());
        };
        let mut operator: Option<(&str, &Value)> = None;
        let mut variable = None;
        for (k, val) in obj {
            match k.as_str() {
                "Next" if top => {}
                "Comment" => {}
                "Variable" => variable = Some(val),
                _ => {
                    let known = ["And", "Or", "Not"].contains(&k.as_str())
                        || Comparison::by_name(k.strip_suffix("Path").unwrap_or(k)).is_some();
                    if !known {
                        return Err(format!("`{k}` is not a choice operator"));
                    }
                    if operator.is_some() {
                        return Err("a choice rule has exactly one operator".to_owned());
                    }
                    operator = Some((k, val));
                }
            }
        }
        let Some((op, operand)) = operator else {
            return Err("a choice rule needs an operator such as StringEquals or And".to_owned());
        };
        let list = |operand: &Value| -> Result<Vec<Rule>, String> {
            match operand.as_array() {
                Some(items) if !items.is_empty() => {
                    items.iter().map(|r| Rule::parse(r, false)).collect()
                }
                _ => Err(format!("{op} needs a non-empty list of rules")),
            }
        };
        match op {
            "And" | "Or" | "Not" if variable.is_some() => Err(format!("{op} takes no Variable")),
            "And" => Ok(Rule::And(list(operand)?)),
            "Or" => Ok(Rule::Or(list(operand)?)),
            "Not" => Ok(Rule::Not(Box::new(Rule::parse(operand, false)?))),
            _ => {
                let Some(variable) = variable.and_then(Value::as_str) else {
                    return Err(format!("{op} needs a Variable path"));
                };
                check_path(variable).map_err(|e| format!("Variable: {e}"))?;
                let (comparison, operand) = match op.strip_suffix("Path") {
                    Some(base) if Comparison::by_name(base).is_some_and(|c| !c.is_type_test()) => {
                        let path = operand.as_str().ok_or(format!("{op} needs a path"))?;
                        check_path(path).map_err(|e| format!("{op}: {e}"))?;
                        (Comparison::by_name(base), Operand::Path(path.to_owned()))
                    }
                    _ => (Comparison::by_name(op), Operand::Value(operand.clone())),
                };
                let comparison = comparison.ok_or(format!("`{op}` is not a choice operator"))?;
                if let Operand::Value(v) = &operand {
                    check_operand(comparison, v).map_err(|e| format!("{op}: {e}"))?;
                }
                Ok(Rule::Test {
                    variable: variable.to_owned(),
                    comparison,
                    operand,
                })
            }
        }
    }

    pub fn matches(&self, input: &Value, context: &Value) -> Result<bool, Failure> {
        match self {
            Rule::And(rules) => {
                for r in rules {
                    if !r.matches(input, context)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rules) => {
                for r in rules {
                    if r.matches(input, context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(r) => Ok(!r.matches(input, context)?),
            Rule::Test {
                variable,
                comparison,
                operand,
            } => {
                let value = select(variable, input, context);
                if *comparison == IsPresent {
                    let present = value.is_ok();
                    return Ok(
                        present == (operand_value(operand, input, context)? == Value::Bool(true))
                    );
                }
                let value = value.map_err(|_| {
                    Failure::runtime(format!(
                        "Invalid path '{variable}': The choice state's condition path references an invalid value."
                    ))
                })?;
                let expected = operand_value(operand, input, context)?;
                Ok(compare(*comparison, &value, &expected))
            }
        }
    }
}

fn operand_value(operand: &Operand, input: &Value, context: &Value) -> Result<Value, Failure> {
    match operand {
        Operand::Value(v) => Ok(v.clone()),
        Operand::Path(p) => select(p, input, context).map_err(|_| {
            Failure::runtime(format!(
                "Invalid path '{p}': The choice state's condition path references an invalid value."
            ))
        }),
    }
}

fn check_operand(c: Comparison, v: &Value) -> Result<(), String> {
    let ok = match c {
        StringEquals
        | StringLessThan
        | StringGreaterThan
        | StringLessThanEquals
        | StringGreaterThanEquals
        | StringMatches => v.is_string(),
        NumericEquals
        | NumericLessThan
        | NumericGreaterThan
        | NumericLessThanEquals
        | NumericGreaterThanEquals => v.is_number(),
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => v.as_str().and_then(parse_timestamp).is_some(),
        _ => v.is_boolean(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("the value {v} has the wrong type"))
    }
}

fn compare(c: Comparison, value: &Value, expected: &Value) -> bool {
    use std::cmp::Ordering::*;
    let order = |o: std::cmp::Ordering| match c {
        StringEquals | NumericEquals | TimestampEquals => o == Equal,
        StringLessThan | NumericLessThan | TimestampLessThan => o == Less,
        StringGreaterThan | NumericGreaterThan | TimestampGreaterThan => o == Greater,
        StringLessThanEquals | NumericLessThanEquals | TimestampLessThanEquals => o != Greater,
        StringGreaterThanEquals | NumericGreaterThanEquals | TimestampGreaterThanEquals => {
            o != Less
        }
        _ => false,
    };
    match c {
        StringEquals
        | StringLessThan
        | StringGreaterThan
        | StringLessThanEquals
        | StringGreaterThanEquals => match (value.as_str(), expected.as_str()) {
            (Some(a), Some(b)) => order(a.cmp(b)),
            _ => false,
        },
        StringMatches => match (value.as_str(), expected.as_str()) {
            (Some(a), Some(p)) => wildcard(p, a),
            _ => false,
        },
        NumericEquals
        | NumericLessThan
        | NumericGreaterThan
        | NumericLessThanEquals
        | NumericGreaterThanEquals => match (value.as_f64(), expected.as_f64()) {
            (Some(a), Some(b)) if value.is_number() => a.partial_cmp(&b).is_some_and(order),
            _ => false,
        },
        BooleanEquals => value.is_boolean() && value == expected,
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => {
            match (
                value.as_str().and_then(parse_timestamp),
                expected.as_str().and_then(parse_timestamp),
            ) {
                (Some(a), Some(b)) => order(a.cmp(&b)),
                _ => false,
            }
        }
        IsNull => value.is_null() == (expected == &Value::Bool(true)),
        IsNumeric => value.is_number() == (expected == &Value::Bool(true)),
        IsString => value.is_string() == (expected == &Value::Bool(true)),
        IsBoolean => value.is_boolean() == (expected == &Value::Bool(true)),
        IsTimestamp => {
            value.as_str().and_then(parse_timestamp).is_some() == (expected == &Value::Bool(true))
        }
        IsPresent => false,
    }
}

/// `StringMatches`: `*` matches any run of characters; `\*` is a literal star and `\\` a
/// literal backslash. Nothing else is special.
fn wildcard(pattern: &str, text: &str) -> bool {
    #[derive(PartialEq)]
    enum Tok {
        Star,
        Char(char),
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => toks.push(Tok::Char(n)),
                None => toks.push(Tok::Char('\\')),
            },
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Char(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Greedy matching with backtracking to the last star.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(rule: Value, input: Value) -> bool {
        Rule::parse(&rule, false)
            .unwrap()
            .matches(&input, &json!({}))
            .unwrap()
    }

    #[test]
    fn every_kind_of_comparison_decides_as_step_functions_does() {
        let input =
            json!({"s": "abc", "n": 5, "b": true, "t": "2026-01-02T03:04:05Z", "z": null, "m": 5});
        assert!(check(
            json!({"Variable": "$.s", "StringEquals": "abc"}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.s", "StringLessThan": "abd"}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.s", "StringGreaterThanEquals": "abc"}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.n", "NumericGreaterThan": 4.5}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.n", "NumericEqualsPath": "$.m"}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.b", "BooleanEquals": true}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.t", "TimestampLessThan": "2026-01-02T03:04:06Z"}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.t", "TimestampEquals": "2026-01-02T04:04:05+01:00"}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.z", "IsNull": true}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.q", "IsPresent": false}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.t", "IsTimestamp": true}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.s", "IsString": true}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.n", "IsNumeric": true}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.b", "IsBoolean": true}),
            input.clone()
        ));
        // Wrong types compare false.
        assert!(!check(
            json!({"Variable": "$.s", "NumericEquals": 1}),
            input.clone()
        ));
        assert!(check(
            json!({"And": [{"Variable": "$.n", "NumericLessThanEquals": 5}, {"Not": {"Variable": "$.s", "StringEquals": "x"}}]}),
            input.clone()
        ));
        assert!(check(
            json!({"Or": [{"Variable": "$.n", "NumericLessThan": 0}, {"Variable": "$.b", "BooleanEquals": true}]}),
            input
        ));
    }

    #[test]
    fn string_matches_has_only_the_star_as_wildcard() {
        assert!(wildcard("log-*.txt", "log-2026.txt"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a*b*c", "aXbYbc"));
        assert!(!wildcard("a?c", "abc"));
        assert!(wildcard("a?c", "a?c"));
        assert!(wildcard("a\\*c", "a*c"));
        assert!(!wildcard("a\\*c", "abc"));
        assert!(wildcard("[ab]", "[ab]"));
    }

    #[test]
    fn a_missing_variable_is_a_runtime_error() {
        let rule = Rule::parse(&json!({"Variable": "$.x", "StringEquals": "a"}), false).unwrap();
        assert_eq!(
            rule.matches(&json!({}), &json!({})).unwrap_err().error,
            "States.Runtime"
        );
    }

    #[test]
    fn malformed_rules_are_refused() {
        assert!(Rule::parse(&json!({"Variable": "$.x", "StringEquals": 1}), false).is_err());
        assert!(Rule::parse(&json!({"Variable": "$.x", "Bogus": 1}), false).is_err());
        assert!(Rule::parse(&json!({"Variable": "x", "IsNull": true}), false).is_err());
        assert!(Rule::parse(&json!({"And": []}), false).is_err());
    }
}
