//! Static analysis of a template: which variables it reads and which helpers it calls.
//!
//! The catalog validator uses this to check, before a document merges, that every
//! template parses and names only variables that will exist when it is rendered.

use handlebars::template::{HelperTemplate, Parameter, TemplateElement};
use handlebars::{Path, PathSeg, Template};

use super::{BLOCK_HELPERS, HELPERS};

/// A variable a template reads, as path segments: `fields.appName` is `["fields", "appName"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableRef {
    pub segments: Vec<String>,
    /// As written in the template.
    pub raw: String,
    /// Read only where its absence is handled: inside `{{#if x}}` (or `#with`, `#each`,
    /// or the `else` of `#unless`) on it or a parent, or as the value of `default`.
    pub guarded: bool,
}

/// What is wrong with a template, independent of where it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateProblem {
    Syntax(String),
    UnknownHelper(String),
    Unsupported(String),
    /// A scoped variable read inside a block that changed the context (`#each`, `#with`):
    /// Handlebars would look it up in the current element, not at the root.
    ShadowedScope {
        raw: String,
        block: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    pub variables: Vec<VariableRef>,
    pub problems: Vec<TemplateProblem>,
    /// While walking: the paths that enclosing blocks guard.
    guards: Vec<String>,
}

/// Whether a string holds template syntax at all. Most catalog strings do not, and they
/// need no parsing.
pub fn is_template(text: &str) -> bool {
    text.contains("{{")
}

/// Parses a template and lists the variables it reads and the problems it has.
pub fn analyze(text: &str) -> Analysis {
    let mut analysis = Analysis::default();
    if !is_template(text) {
        return analysis;
    }
    if let Some(variables) = simple_variables(text) {
        analysis.variables = variables;
        return analysis;
    }
    match Template::compile(text) {
        Ok(template) => walk(&template.elements, None, &mut analysis),
        Err(e) => analysis
            .problems
            .push(TemplateProblem::Syntax(syntax_message(&e))),
    }
    analysis
}

/// The variables of a template made only of text and `{{scope.path}}` expressions (most
/// catalog templates), found without the full parser, which is an order of magnitude
/// slower. `None` for anything else (helpers, blocks, comments, escapes, one-segment
/// names that could be helpers or keywords), which then goes through the parser.
fn simple_variables(text: &str) -> Option<Vec<VariableRef>> {
    let mut variables = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if rest[..open].contains("}}") || rest[..open].contains('\\') {
            return None;
        }
        let inner = &rest[open + 2..];
        let close = inner.find("}}")?;
        let expr = &inner[..close];
        let segments: Vec<&str> = expr.split('.').collect();
        let identifier = |s: &&str| {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if segments.len() < 2 || !segments.iter().all(identifier) {
            return None;
        }
        variables.push(VariableRef {
            segments: segments.into_iter().map(str::to_owned).collect(),
            raw: expr.to_owned(),
            guarded: false,
        });
        rest = &inner[close + 2..];
    }
    if rest.contains("}}") || rest.contains('\\') {
        return None;
    }
    Some(variables)
}

fn syntax_message(e: &handlebars::TemplateError) -> String {
    // The error's Display repeats the whole template with a caret; keep the reason and
    // the position, which the finding's location and message already frame.
    let reason = e.reason().to_string();
    match e.pos() {
        Some((line, col)) => format!("{reason} (template line {line}, column {col})"),
        None => reason,
    }
}

/// Walks template elements. `block` names the enclosing context-changing block, if any.
fn walk(elements: &[TemplateElement], block: Option<&str>, out: &mut Analysis) {
    for element in elements {
        match element {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                helper(h, block, out);
            }
            TemplateElement::HelperBlock(h) => {
                helper(h, block, out);
                let name = match &h.name {
                    Parameter::Name(n) => n.as_str(),
                    _ => "",
                };
                let inner = if name == "each" || name == "with" {
                    Some(name)
                } else {
                    block
                };
                // The path the block tests is present in its body (`if`, `with`, `each`) or
                // in its `else` (`unless`).
                let guard = match h.params.first() {
                    Some(Parameter::Path(Path::Relative((_, raw)))) => {
                        Some(raw.trim_start_matches("@root.").to_owned())
                    }
                    _ => None,
                };
                let guards_body = matches!(name, "if" | "with" | "each");
                if let Some(t) = &h.template {
                    walk_guarded(
                        &t.elements,
                        inner,
                        guard.as_ref().filter(|_| guards_body),
                        out,
                    );
                }
                if let Some(t) = &h.inverse {
                    walk_guarded(
                        &t.elements,
                        block,
                        guard.as_ref().filter(|_| name == "unless"),
                        out,
                    );
                }
            }
            TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => out
                .problems
                .push(TemplateProblem::Unsupported("decorators".to_owned())),
            TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => out
                .problems
                .push(TemplateProblem::Unsupported("partials".to_owned())),
            _ => out.problems.push(TemplateProblem::Unsupported(
                "this template construct".to_owned(),
            )),
        }
    }
}

fn walk_guarded(
    elements: &[TemplateElement],
    block: Option<&str>,
    guard: Option<&String>,
    out: &mut Analysis,
) {
    if let Some(g) = guard {
        out.guards.push(g.clone());
    }
    walk(elements, block, out);
    if guard.is_some() {
        out.guards.pop();
    }
}

fn helper(h: &HelperTemplate, block: Option<&str>, out: &mut Analysis) {
    let has_args = !h.params.is_empty() || !h.hash.is_empty();
    match &h.name {
        Parameter::Name(name) => check_helper(name, h.block, out),
        // `{{name}}` parses as a path; it is a helper call when it names one.
        Parameter::Path(Path::Relative((segs, raw))) if has_args || is_helper_name(raw, segs) => {
            check_helper(raw, h.block, out)
        }
        other => parameter(other, block, out),
    }
    // `default`'s value, and what `#if` / `#unless` test, may be absent: handling that is
    // what they are for.
    let defaulted = matches!(&h.name, Parameter::Name(n) if n == "default" || (h.block && (n == "if" || n == "unless")));
    for (i, p) in h.params.iter().enumerate() {
        if defaulted
            && i == 0
            && let Parameter::Path(Path::Relative((_, raw))) = p
        {
            out.guards.push(raw.trim_start_matches("@root.").to_owned());
            parameter(p, block, out);
            out.guards.pop();
            continue;
        }
        parameter(p, block, out);
    }
    for p in h.hash.values() {
        parameter(p, block, out);
    }
}

fn is_helper_name(raw: &str, segs: &[PathSeg]) -> bool {
    segs.len() == 1 && HELPERS.contains(&raw)
}

fn check_helper(name: &str, is_block: bool, out: &mut Analysis) {
    let known = if is_block {
        BLOCK_HELPERS.contains(&name)
    } else {
        HELPERS.contains(&name)
    };
    if !known {
        out.problems
            .push(TemplateProblem::UnknownHelper(name.to_owned()));
    }
}

fn parameter(p: &Parameter, block: Option<&str>, out: &mut Analysis) {
    match p {
        Parameter::Path(Path::Relative((segs, raw))) => variable(segs, raw, block, out),
        Parameter::Subexpression(sub) => {
            if let TemplateElement::Expression(h) = sub.as_element() {
                helper(h, block, out);
            }
        }
        // Local data such as @index, literals and bare helper names carry no variable.
        _ => {}
    }
}

fn variable(segs: &[PathSeg], raw: &str, block: Option<&str>, out: &mut Analysis) {
    // `../x` climbs out of the enclosing block; `this.x` and `./x` stay in it.
    let mut ups = 0;
    let mut rest = raw;
    while let Some(r) = rest.strip_prefix("../") {
        ups += 1;
        rest = r;
    }
    let mut named: Vec<String> = segs
        .iter()
        .filter_map(|seg| match seg {
            PathSeg::Named(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    if named.first().is_some_and(|s| s == "@root") {
        named.remove(0);
        ups = usize::MAX;
    }
    if named.is_empty() {
        return; // `this`, `..`: the current element.
    }
    match block {
        // At the root, or climbing out of the block: a scoped variable.
        None => {}
        Some(_) if ups > 0 => {}
        // Inside #each / #with: relative to the element, unless it names a scope.
        Some(block) => {
            if super::SCOPES.contains(&named[0].as_str()) {
                out.problems.push(TemplateProblem::ShadowedScope {
                    raw: raw.to_owned(),
                    block: block.to_owned(),
                });
            }
            return;
        }
    }
    let path = named.join(".");
    let guarded = out
        .guards
        .iter()
        .any(|g| path == *g || path.starts_with(&format!("{g}.")));
    out.variables.push(VariableRef {
        segments: named,
        raw: raw.to_owned(),
        guarded,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<String> {
        let a = analyze(text);
        assert!(a.problems.is_empty(), "{:?}", a.problems);
        a.variables
            .into_iter()
            .map(|v| v.segments.join("."))
            .collect()
    }

    #[test]
    fn the_fast_path_agrees_with_the_parser_or_defers_to_it() {
        let cases = [
            "{{fields.a}}",
            "x-{{fields.a}}-{{request.id}}.y",
            "{{environment.api}}/v1/{{fields.name}}?q={{fields.q_1}}",
            "{{ fields.a }}",
            "{{fields}}",
            "{{else}}",
            "{{fields.a}} }} {{fields.b}}",
            "\\{{fields.a}}",
            "{{{fields.a}}}",
            "{{!comment}}{{fields.a}}",
            "{{fields.a.[b c]}}",
            "{{fields.a",
            "{{fields..a}}",
            "{{@root.fields.a}}",
        ];
        for text in cases {
            if let Some(fast) = simple_variables(text) {
                let full = match Template::compile(text) {
                    Ok(t) => {
                        let mut a = Analysis::default();
                        walk(&t.elements, None, &mut a);
                        a
                    }
                    Err(e) => panic!("fast path accepted {text:?}, which does not parse: {e}"),
                };
                assert!(full.problems.is_empty(), "{text:?}: {:?}", full.problems);
                assert_eq!(fast, full.variables, "{text:?}");
            }
        }
        assert!(simple_variables("{{fields.a}}-{{request.id}}").is_some());
        assert!(simple_variables("{{lower fields.a}}").is_none());
    }

    #[test]
    fn reads_guarded_by_if_default_or_unless_else_are_marked() {
        let guarded = |text: &str| -> Vec<(String, bool)> {
            analyze(text)
                .variables
                .into_iter()
                .map(|v| (v.segments.join("."), v.guarded))
                .collect()
        };
        assert_eq!(
            guarded("{{#if fields.a}}{{fields.a}}{{fields.a.b}}{{else}}{{fields.a}}{{/if}}"),
            [
                ("fields.a".into(), true),
                ("fields.a".into(), true),
                ("fields.a.b".into(), true),
                ("fields.a".into(), false)
            ]
        );
        assert_eq!(
            guarded("{{default fields.x 'y'}} {{lower fields.x}}"),
            [("fields.x".into(), true), ("fields.x".into(), false)]
        );
        assert_eq!(
            guarded("{{#unless fields.u}}none{{else}}{{fields.u}}{{/unless}}"),
            [("fields.u".into(), true), ("fields.u".into(), true)]
        );
    }

    #[test]
    fn plain_text_has_no_variables() {
        assert_eq!(analyze("just text"), Analysis::default());
    }

    #[test]
    fn variables_are_found_in_expressions_helpers_and_subexpressions() {
        assert_eq!(
            vars(
                "{{fields.a}}-{{default fields.b 'x'}}-{{lower (upper components.db.outputs.host)}}"
            ),
            ["fields.a", "fields.b", "components.db.outputs.host"]
        );
    }

    #[test]
    fn each_blocks_read_relative_to_the_element_and_parents_explicitly() {
        assert_eq!(
            vars(
                "{{#each fields.tags}}{{this}}-{{@index}}-{{name}}-{{this.x}}-{{../fields.env}}{{/each}}"
            ),
            ["fields.tags", "fields.env"]
        );
    }

    #[test]
    fn a_scope_read_inside_each_without_parent_is_reported() {
        let a = analyze("{{#each fields.tags}}{{fields.env}}{{/each}}");
        assert!(matches!(
            a.problems[0],
            TemplateProblem::ShadowedScope { .. }
        ));
    }

    #[test]
    fn syntax_errors_and_unknown_helpers_are_problems() {
        assert!(matches!(
            analyze("{{fields.a").problems[0],
            TemplateProblem::Syntax(_)
        ));
        assert_eq!(
            analyze("{{lowr fields.a}}").problems,
            [TemplateProblem::UnknownHelper("lowr".into())]
        );
        assert!(matches!(
            analyze("{{> partial}}").problems[0],
            TemplateProblem::Unsupported(_)
        ));
    }
}
