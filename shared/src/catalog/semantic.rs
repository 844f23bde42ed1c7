//! Checks across documents that no schema can express: unique names, owners, templates
//! that read only variables that will exist, bundle graphs, and the item contracts that
//! bundles rely on.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::document::{
    ActionConfig, CatalogBundle, CatalogItem, Lifecycle, Metadata, Mode, Presentation,
};
use super::finding::{Finding, did_you_mean};
use super::load::{Catalog, Located, TEAMS_FILE};
use super::locator::Locator;
use super::yaml::{Pos, escape_token};
use crate::graph::DependencyGraph;
use crate::template::refs::{TemplateProblem, VariableRef, analyze};
use crate::template::{
    BUNDLE_KEYS, BUNDLE_SCOPES, ITEM_SCOPES, REQUEST_KEYS, RESOURCE_KEYS, SCOPES, SYSTEM_KEYS,
};

/// The keys of the `metadata` scope.
const METADATA_KEYS: &[&str] = &[
    "name",
    "title",
    "description",
    "owner",
    "category",
    "tags",
    "lifecycle",
    "replacedBy",
    "accessGroups",
    "links",
];

/// Header names whose values are credentials: they must come from the secrets scope.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "private-token",
];

/// What the checks learn about an item's form, for the bundles that use the item.
struct ItemForm<'c> {
    item: &'c Located<CatalogItem>,
    /// The compiled form, when its schema is valid.
    validator: Option<jsonschema::Validator>,
    fields: BTreeSet<String>,
}

type ItemIndex<'c> = HashMap<&'c str, ItemForm<'c>>;

/// Runs every cross-document check. Items, then bundles (which read the items' forms),
/// are checked in parallel.
pub fn check(catalog: &Catalog) -> Vec<Finding> {
    check_with_forms(catalog).0
}

/// As [`check`], and the forms it compiled on the way (those whose schema is valid), by
/// item or bundle name: what a snapshot serves requests against, compiled once.
pub fn check_with_forms(
    catalog: &Catalog,
) -> (Vec<Finding>, HashMap<String, jsonschema::Validator>) {
    let mut findings = Vec::new();
    check_names(catalog, &mut findings);
    check_owners(catalog, &mut findings);
    check_subscriptions(catalog, &mut findings);
    check_stack_templates(catalog, &mut findings);
    super::regions::check(catalog, &mut findings);
    let teams: Option<Vec<&str>> = catalog
        .teams
        .as_ref()
        .map(|t| t.doc.spec.teams.keys().map(String::as_str).collect());
    let teams = teams.as_deref();
    let checked = crate::parallel::map(&catalog.items, 32, |item| {
        let mut found = Vec::new();
        let form = check_presentation(item, &item.doc.spec.presentation, &mut found);
        check_item(item, &form.fields, &mut found);
        super::approvals::check(
            item,
            &item.doc.spec.approvals,
            &form.fields,
            teams,
            &mut found,
        );
        (found, form)
    });
    let mut index: ItemIndex = HashMap::with_capacity(checked.len());
    for (item, (found, form)) in catalog.items.iter().zip(checked) {
        findings.extend(found);
        // With duplicate names (reported above) the first document wins.
        index
            .entry(item.doc.metadata.name.as_str())
            .or_insert(ItemForm {
                item,
                validator: form.validator,
                fields: form.fields,
            });
    }
    let checked = crate::parallel::map(&catalog.bundles, 16, |bundle| {
        let mut found = Vec::new();
        let form = check_presentation(bundle, &bundle.doc.spec.presentation, &mut found);
        check_bundle(bundle, catalog, &index, &form.fields, &mut found);
        super::approvals::check(
            bundle,
            &bundle.doc.spec.approvals,
            &form.fields,
            teams,
            &mut found,
        );
        (found, form.validator)
    });
    let mut forms: HashMap<String, jsonschema::Validator> = index
        .into_iter()
        .filter_map(|(name, form)| Some((name.to_owned(), form.validator?)))
        .collect();
    for (bundle, (found, validator)) in catalog.bundles.iter().zip(checked) {
        findings.extend(found);
        if let Some(validator) = validator {
            forms
                .entry(bundle.doc.metadata.name.clone())
                .or_insert(validator);
        }
    }
    super::calendar::check(catalog, &mut findings);
    check_slas(catalog, &mut findings);
    check_replacements(catalog, &mut findings);
    (findings, forms)
}

/// The service level targets' business hours resolve (a time zone that exists, a day that
/// ends after it starts, holidays that are dates).
fn check_slas(catalog: &Catalog, findings: &mut Vec<Finding>) {
    for item in &catalog.items {
        if let Some(sla) = &item.doc.spec.sla {
            for (pointer, why) in super::sla::check(sla, "/spec/sla") {
                findings.push(item.error_at(&pointer, why));
            }
        }
    }
    for bundle in &catalog.bundles {
        if let Some(sla) = &bundle.doc.spec.sla {
            for (pointer, why) in super::sla::check(sla, "/spec/sla") {
                findings.push(bundle.error_at(&pointer, why));
            }
        }
    }
}

/// A deprecated item or bundle points at a replacement that exists, is not itself, and
/// is not deprecated; only a deprecated one names one.
fn check_replacements(catalog: &Catalog, findings: &mut Vec<Finding>) {
    for item in &catalog.items {
        if let Some((error, why)) = replacement_problem(catalog, &item.doc.metadata) {
            findings.push(match error {
                true => item.error("/metadata/replacedBy", why),
                false => item.warning("/metadata/replacedBy", why),
            });
        }
    }
    for bundle in &catalog.bundles {
        if let Some((error, why)) = replacement_problem(catalog, &bundle.doc.metadata) {
            findings.push(match error {
                true => bundle.error("/metadata/replacedBy", why),
                false => bundle.warning("/metadata/replacedBy", why),
            });
        }
    }
}

/// What is wrong with `metadata`'s `replacedBy`, if anything: whether it is an error,
/// and why.
fn replacement_problem(catalog: &Catalog, metadata: &Metadata) -> Option<(bool, String)> {
    let replacement = metadata.replaced_by.as_ref()?;
    if metadata.lifecycle != Lifecycle::Deprecated {
        return Some((
            true,
            format!(
                "replacedBy names what replaces a deprecated offering: add `lifecycle: deprecated` to `{}` or remove it",
                metadata.name
            ),
        ));
    }
    if *replacement == metadata.name {
        return Some((true, format!("`{}` cannot replace itself", metadata.name)));
    }
    let lifecycle = catalog
        .item(replacement)
        .map(|i| i.doc.metadata.lifecycle)
        .or_else(|| {
            catalog
                .bundles
                .iter()
                .find(|b| b.doc.metadata.name == *replacement)
                .map(|b| b.doc.metadata.lifecycle)
        });
    match lifecycle {
        None => {
            let names = catalog
                .items
                .iter()
                .map(|i| i.doc.metadata.name.as_str())
                .chain(catalog.bundles.iter().map(|b| b.doc.metadata.name.as_str()));
            Some((
                true,
                format!(
                    "replacedBy `{replacement}` is no item or bundle of the catalog{}",
                    did_you_mean(replacement, names)
                ),
            ))
        }
        Some(Lifecycle::Deprecated) => Some((
            false,
            format!("replacedBy `{replacement}` is deprecated too"),
        )),
        Some(_) => None,
    }
}

fn check_names(catalog: &Catalog, findings: &mut Vec<Finding>) {
    // Positions are looked up only for a clash: most documents never need theirs.
    let mut seen: HashMap<&str, &dyn Locator> = HashMap::new();
    let named = catalog
        .items
        .iter()
        .map(|i| (i.doc.metadata.name.as_str(), i as &dyn Locator, "item"))
        .chain(
            catalog
                .bundles
                .iter()
                .map(|b| (b.doc.metadata.name.as_str(), b as &dyn Locator, "bundle")),
        );
    for (name, doc, what) in named {
        if let Some(first) = seen.get(name) {
            findings.push(doc.error_at(
                "/metadata/name",
                format!(
                    "name `{name}` is already used by {} (line {}); names are unique across \
                     the catalog's items and bundles, so rename this {what}",
                    first.file_name(),
                    first.pos_of("/metadata/name").line
                ),
            ));
        } else {
            seen.insert(name, doc);
        }
    }
}

/// Each `cloudformation` action's template: it is one of the catalog's, every parameter
/// given is one the template declares, and every parameter without a default is given.
fn check_stack_templates(catalog: &Catalog, findings: &mut Vec<Finding>) {
    use crate::catalog::document::{ActionConfig, StackOperation};
    let names: Vec<&str> = catalog.templates.keys().map(String::as_str).collect();
    for item in &catalog.items {
        let Some(automated) = &item.doc.spec.fulfillment.automated else {
            continue;
        };
        for (list, actions) in automated.lists() {
            for (i, action) in actions.iter().enumerate() {
                let ActionConfig::Cloudformation(stack) = &action.config else {
                    continue;
                };
                let at = format!("/spec/fulfillment/automated/{list}/{i}/with");
                let Some(path) = &stack.template else {
                    continue;
                };
                let Some(template) = catalog.templates.get(path) else {
                    findings.push(item.error(
                        format!("{at}/template"),
                        format!(
                            "there is no template `{path}` in the catalog (templates live under templates/){}",
                            did_you_mean(path, names.iter().copied())
                        ),
                    ));
                    continue;
                };
                if stack.operation == StackOperation::Delete {
                    continue;
                }
                let declared = template
                    .get("Parameters")
                    .and_then(serde_json::Value::as_object);
                let declared_names: Vec<&str> = declared
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                for name in stack.parameters.keys() {
                    if !declared_names.contains(&name.as_str()) {
                        findings.push(item.error(
                            format!("{at}/parameters/{}", super::yaml::escape_token(name)),
                            format!(
                                "`{path}` declares no parameter `{name}`{}",
                                did_you_mean(name, declared_names.iter().copied())
                            ),
                        ));
                    }
                }
                let missing: Vec<&str> = declared
                    .into_iter()
                    .flatten()
                    .filter(|(name, spec)| {
                        spec.get("Default").is_none() && !stack.parameters.contains_key(*name)
                    })
                    .map(|(name, _)| name.as_str())
                    .collect();
                if !missing.is_empty() {
                    findings.push(item.error(
                        format!("{at}/template"),
                        format!(
                            "`{path}` needs the parameters {} (they have no default): give them in `parameters`",
                            missing.join(", ")
                        ),
                    ));
                }
            }
        }
    }
}

/// Each team's notification subscriptions: one channel each, names unique within the
/// team, and filters that name items, bundles and teams the catalog has.
fn check_subscriptions(catalog: &Catalog, findings: &mut Vec<Finding>) {
    let Some(teams) = &catalog.teams else {
        return;
    };
    let known_teams: Vec<&str> = teams.doc.spec.teams.keys().map(String::as_str).collect();
    let targets: Vec<&str> = catalog
        .items
        .iter()
        .map(|i| i.doc.metadata.name.as_str())
        .chain(catalog.bundles.iter().map(|b| b.doc.metadata.name.as_str()))
        .collect();
    for (team, spec) in &teams.doc.spec.teams {
        let mut names = BTreeSet::new();
        for (n, sub) in spec.notifications.iter().enumerate() {
            let at = format!(
                "/spec/teams/{}/notifications/{n}",
                super::yaml::escape_token(team)
            );
            if !names.insert(sub.name.as_str()) {
                findings.push(teams.error(
                    format!("{at}/name"),
                    format!("team `{team}` has two subscriptions named `{}`", sub.name),
                ));
            }
            for (pointer, why) in sub.problems() {
                findings.push(teams.error(format!("{at}{pointer}"), why));
            }
            for (i, target) in sub.targets.iter().enumerate() {
                if !targets.contains(&target.as_str()) {
                    findings.push(teams.error(
                        format!("{at}/targets/{i}"),
                        format!(
                            "`{target}` is not an item or bundle of the catalog{}",
                            did_you_mean(target, targets.iter().copied())
                        ),
                    ));
                }
            }
            for (i, other) in sub.teams.iter().enumerate() {
                if !known_teams.contains(&other.as_str()) {
                    findings.push(teams.error(
                        format!("{at}/teams/{i}"),
                        format!(
                            "`{other}` is not a team of {TEAMS_FILE}{}",
                            did_you_mean(other, known_teams.iter().copied())
                        ),
                    ));
                }
            }
        }
    }
}

fn check_owners(catalog: &Catalog, findings: &mut Vec<Finding>) {
    let Some(teams) = &catalog.teams else {
        if !catalog.items.is_empty() || !catalog.bundles.is_empty() {
            findings.push(Finding::new(
                TEAMS_FILE,
                Pos::default(),
                "",
                super::Severity::Warning,
                format!(
                    "the catalog has no valid {TEAMS_FILE}: owners cannot be checked and CODEOWNERS \
                     cannot be generated; add one (or fix it) listing each team and its GitHub team"
                ),
            ));
        }
        return;
    };
    let known: Vec<&str> = teams.doc.spec.teams.keys().map(String::as_str).collect();
    if let Some(admins) = &teams.doc.spec.admins
        && !known.contains(&admins.as_str())
    {
        findings.push(teams.error(
            "/spec/admins",
            format!(
                "admins names `{admins}`, which is not one of the teams below{}",
                did_you_mean(admins, known.iter().copied())
            ),
        ));
    }
    let owners = catalog
        .items
        .iter()
        .map(|i| (&i.doc.metadata.owner, i as &dyn Locator))
        .chain(
            catalog
                .bundles
                .iter()
                .map(|b| (&b.doc.metadata.owner, b as &dyn Locator)),
        );
    for (owner, doc) in owners {
        if !known.contains(&owner.as_str()) {
            findings.push(doc.error_at(
                "/metadata/owner",
                format!(
                    "owner `{owner}` is not a team in {TEAMS_FILE}{}; known teams: {}",
                    did_you_mean(owner, known.iter().copied()),
                    known.join(", ")
                ),
            ));
        }
    }
}

/// The names of a form's fields: its properties, including those that appear only under
/// a condition (if/then/else, dependentSchemas, allOf/anyOf/oneOf).
pub fn form_fields(schema: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![schema];
    while let Some(s) = stack.pop() {
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            out.extend(props.keys().cloned());
        }
        for key in ["if", "then", "else"] {
            stack.extend(s.get(key));
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(list) = s.get(key).and_then(Value::as_array) {
                stack.extend(list);
            }
        }
        if let Some(map) = s.get("dependentSchemas").and_then(Value::as_object) {
            stack.extend(map.values());
        }
    }
    out
}

/// A checked presentation: its field names, and the compiled form when the schema is valid.
struct Form {
    validator: Option<jsonschema::Validator>,
    fields: BTreeSet<String>,
}

/// Checks a presentation section.
fn check_presentation(
    doc: &dyn Locator,
    presentation: &Presentation,
    findings: &mut Vec<Finding>,
) -> Form {
    const BASE: &str = "/spec/presentation";
    let schema = &presentation.schema;
    let form = match jsonschema::draft202012::new(schema) {
        Ok(form) => Some(form),
        Err(e) => {
            let inner = e.instance_path().as_str();
            findings.push(doc.error_at(
                &format!("{BASE}/schema{inner}"),
                format!("the form is not a valid JSON Schema (draft 2020-12): {e}"),
            ));
            None
        }
    };
    for problem in super::keywords::check(schema) {
        let pointer = format!("{BASE}/schema{}", problem.pointer);
        findings.push(match problem.severity {
            super::Severity::Error => doc.error_at(&pointer, problem.message),
            super::Severity::Warning => doc.warning_at(&pointer, problem.message),
        });
    }
    let fields = form_fields(schema);
    let names = || fields.iter().map(String::as_str);
    for (i, name) in presentation.ui.order.iter().enumerate() {
        if !fields.contains(name) && name != "*" {
            findings.push(doc.error_at(
                &format!("{BASE}/ui/order/{i}"),
                format!(
                    "ui.order names `{name}`, which is not a field of the form{}",
                    did_you_mean(name, names())
                ),
            ));
        }
    }
    for name in presentation.ui.fields.keys() {
        if !fields.contains(name) {
            findings.push(doc.error_at(
                &format!("{BASE}/ui/fields/{}", escape_token(name)),
                format!(
                    "ui.fields has hints for `{name}`, which is not a field of the form{}",
                    did_you_mean(name, names())
                ),
            ));
        }
    }
    // Defaults must satisfy their own field's schema, or the form starts out invalid.
    if let (Some(form), Some(props)) = (&form, schema.get("properties").and_then(Value::as_object))
    {
        let defaults: serde_json::Map<String, Value> = props
            .iter()
            .filter_map(|(k, p)| p.get("default").map(|d| (k.clone(), d.clone())))
            .collect();
        let instance = Value::Object(defaults);
        for error in form.iter_errors(&instance) {
            let path = error.instance_path().as_str();
            if let Some(field) = path.split('/').nth(1) {
                findings.push(doc.error_at(
                    &format!("{BASE}/schema/properties/{field}/default"),
                    format!("the default of `{field}` does not satisfy its own schema: {error}"),
                ));
            }
        }
    }
    for name in &fields {
        if !is_identifier(name) {
            findings.push(doc.warning_at(
                &format!("{BASE}/schema/properties/{}", escape_token(name)),
                format!(
                    "field `{name}` is not a plain identifier, so templates must write it as fields.[{name}]; \
                     prefer letters, digits and underscores"
                ),
            ));
        }
    }
    Form {
        validator: form,
        fields,
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Calls `f` with the pointer and text of every string leaf under `value`.
fn string_leaves<'v>(value: &'v Value, pointer: String, f: &mut dyn FnMut(String, &'v str)) {
    match value {
        Value::String(s) => f(pointer, s),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                string_leaves(v, format!("{pointer}/{i}"), f);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                string_leaves(v, format!("{pointer}/{}", escape_token(k)), f);
            }
        }
        _ => {}
    }
}

/// Checks every template under `pointer`: syntax, helpers, and each variable against
/// `resolve`, which says what is wrong with a variable in this place (or `None`).
fn check_templates(
    doc: &dyn Locator,
    pointer: &str,
    resolve: &dyn Fn(&VariableRef) -> Option<String>,
    optional: &BTreeSet<String>,
    findings: &mut Vec<Finding>,
) {
    let Some(value) = doc.raw().pointer(pointer) else {
        return;
    };
    string_leaves(value, pointer.to_owned(), &mut |at, text| {
        let analysis = analyze(text);
        // Quote short templates; the location already leads to long ones.
        let quoted = if text.len() <= 80 && !text.contains('\n') {
            format!("`{text}`")
        } else {
            "at this location".to_owned()
        };
        for problem in analysis.problems {
            let message = match problem {
                TemplateProblem::Syntax(reason) => {
                    format!("template {quoted} does not parse: {reason}")
                }
                TemplateProblem::UnknownHelper(name) => format!(
                    "template {quoted} calls unknown helper `{name}`{}; see docs/catalog-format.md for the helpers",
                    did_you_mean(
                        &name,
                        crate::template::HELPERS
                            .iter()
                            .chain(crate::template::BLOCK_HELPERS)
                            .copied()
                    )
                ),
                TemplateProblem::Unsupported(what) => {
                    format!("template {quoted} uses {what}, which catalog templates do not support")
                }
                TemplateProblem::ShadowedScope { raw, block } => format!(
                    "template {quoted} reads `{raw}` inside #{block}, where it is looked up in the current element; \
                     write `@root.{raw}` to read the scope"
                ),
            };
            findings.push(doc.error_at(&at, message));
        }
        for variable in &analysis.variables {
            if let Some(problem) = resolve(variable) {
                findings.push(doc.error_at(
                    &at,
                    format!("template {quoted} reads `{}`: {problem}", variable.raw),
                ));
            } else if let [scope, field, ..] = variable.segments.as_slice()
                && scope == "fields"
                && !variable.guarded
                && optional.contains(field)
            {
                findings.push(doc.warning_at(
                    &at,
                    format!(
                        "template {quoted} reads the optional field `{field}`: a request without it fails to \
                         render; write {{{{#if fields.{field}}}}}…{{{{/if}}}} or {{{{default fields.{field} …}}}}, \
                         or give the field a default"
                    ),
                ));
            }
        }
    });
}

/// Fields a request may leave out: neither required (at the top level) nor defaulted.
fn optional_fields(schema: &Value, fields: &BTreeSet<String>) -> BTreeSet<String> {
    let required: BTreeSet<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let props = schema.get("properties").and_then(Value::as_object);
    fields
        .iter()
        .filter(|f| !required.contains(f.as_str()))
        .filter(|f| {
            props
                .and_then(|p| p.get(f.as_str()))
                .is_none_or(|p| p.get("default").is_none())
        })
        .cloned()
        .collect()
}

fn unknown_scope(scope: &str, allowed: &[&str]) -> String {
    if SCOPES.contains(&scope) {
        return format!(
            "the `{scope}` scope is not available here; available: {}",
            allowed.join(", ")
        );
    }
    format!(
        "there is no scope `{scope}`{}; templates read from {}",
        did_you_mean(scope, allowed.iter().copied()),
        allowed.join(", ")
    )
}

fn check_key(scope: &str, key: Option<&String>, keys: &[&str]) -> Option<String> {
    let key = key?;
    (!keys.contains(&key.as_str())).then(|| {
        format!(
            "`{scope}` has no `{key}`{}; it has {}",
            did_you_mean(key, keys.iter().copied()),
            keys.join(", ")
        )
    })
}

fn check_field(key: Option<&String>, fields: &BTreeSet<String>) -> Option<String> {
    let key = key?;
    (!fields.contains(key)).then(|| {
        format!(
            "the form has no field `{key}`{}",
            did_you_mean(key, fields.iter().map(String::as_str))
        )
    })
}

/// The checks of the scopes that mean the same wherever they are read.
fn check_common(v: &VariableRef, fields: &BTreeSet<String>) -> Option<Option<String>> {
    let key = v.segments.get(1);
    Some(match v.segments[0].as_str() {
        "fields" => check_field(key, fields),
        "metadata" => check_key("metadata", key, METADATA_KEYS),
        "request" => check_key("request", key, REQUEST_KEYS),
        "system" => check_key("system", key, SYSTEM_KEYS),
        "environment" => None,
        _ => return None,
    })
}

/// Every JSONPath an action holds parses as RFC 9535 JSONPath.
fn check_json_paths(
    item: &Located<CatalogItem>,
    base: &str,
    action: &crate::catalog::document::Action,
    findings: &mut Vec<Finding>,
) {
    let mut paths: Vec<(String, &str)> = action
        .outputs
        .iter()
        .map(|(name, path)| {
            (
                format!("{base}/outputs/{}", escape_token(name)),
                path.as_str(),
            )
        })
        .collect();
    if let crate::catalog::document::ActionConfig::Rest(rest) = &action.config
        && let Some(poll) = &rest.poll
    {
        paths.push((format!("{base}/with/poll/until/path"), &poll.until.path));
        if let Some(fail) = &poll.fail_when {
            paths.push((format!("{base}/with/poll/failWhen/path"), &fail.path));
        }
        if let Some(from) = &poll.url_from {
            paths.push((format!("{base}/with/poll/urlFrom"), from));
        }
    }
    for (pointer, path) in paths {
        if let Err(e) = serde_json_path::JsonPath::parse(path) {
            findings.push(item.error(
                pointer,
                format!("`{path}` is not a valid JSONPath (RFC 9535): {e}"),
            ));
        }
    }
}

fn check_item(item: &Located<CatalogItem>, fields: &BTreeSet<String>, findings: &mut Vec<Finding>) {
    let spec = &item.doc.spec;
    let fulfillment = &spec.fulfillment;
    match (fulfillment.mode, &fulfillment.manual, &fulfillment.automated) {
        (Mode::Automated, _, None) => findings.push(item.error(
            "/spec/fulfillment/mode",
            "mode is automated but there is no `automated` section with actions; add it, or set mode: manual",
        )),
        (Mode::Manual, None, _) => findings.push(item.error(
            "/spec/fulfillment/mode",
            "mode is manual but there is no `manual` section with a JIRA ticket; add it, or set mode: automated",
        )),
        _ => {}
    }
    if fulfillment.fallback.is_some() {
        if fulfillment.mode == Mode::Manual {
            findings.push(item.error(
                "/spec/fulfillment/fallback",
                "`fallback: manual` applies to automated items; this item is already manual",
            ));
        } else if fulfillment.manual.is_none() {
            findings.push(item.error(
                "/spec/fulfillment/fallback",
                "`fallback: manual` needs a `manual` section with the JIRA ticket to open",
            ));
        }
    }
    let declared: Vec<&str> = spec.outputs.keys().map(String::as_str).collect();
    let optional = optional_fields(&spec.presentation.schema, fields);

    if let Some(manual) = &fulfillment.manual {
        let base = "/spec/fulfillment/manual";
        let resolve = |v: &VariableRef| {
            item_variable(v, fields, &declared, &HashMap::new(), "the manual ticket")
        };
        check_templates(
            item,
            &format!("{base}/ticket"),
            &resolve,
            &optional,
            findings,
        );
        for name in manual.outputs.keys() {
            if !declared.contains(&name.as_str()) {
                findings.push(item.error(
                    format!("{base}/outputs/{name}"),
                    format!("`{name}` is not a declared output of the item{}; declare it under spec.outputs", did_you_mean(name, declared.iter().copied())),
                ));
            }
        }
        for name in &declared {
            if !manual.outputs.contains_key(*name) {
                findings.push(item.finding(
                    format!("{base}/outputs"),
                    severity_for(fulfillment.mode == Mode::Manual),
                    format!("output `{name}` is declared, but the manual section does not say which JIRA field provides it; add `{name}: customfield_…` under outputs"),
                ));
            }
        }
    }

    let Some(automated) = &fulfillment.automated else {
        return;
    };
    let mut ids: HashMap<&str, String> = HashMap::new();
    for (list, actions) in automated.lists() {
        for (i, action) in actions.iter().enumerate() {
            let pointer = format!("/spec/fulfillment/automated/{list}/{i}/id");
            if let Some(first) = ids.get(action.id.as_str()) {
                findings.push(item.error(
                    pointer,
                    format!("action id `{}` is already used at {first}; action ids are unique within an item", action.id),
                ));
            } else {
                ids.insert(&action.id, format!("{list}[{i}]"));
            }
        }
    }
    // Which actions' outputs each list may read: earlier actions of its own list, and the
    // provisioning actions for rollback (it undoes what they did).
    let mut provisioning: HashMap<&str, Vec<&str>> = HashMap::new();
    for (list, actions) in automated.lists() {
        let mut available = if list == "rollback" {
            provisioning.clone()
        } else {
            HashMap::new()
        };
        for (i, action) in actions.iter().enumerate() {
            let base = format!("/spec/fulfillment/automated/{list}/{i}");
            let place = format!("action `{}`", action.id);
            let resolve = |v: &VariableRef| item_variable(v, fields, &declared, &available, &place);
            check_templates(item, &format!("{base}/with"), &resolve, &optional, findings);
            check_action_secrets(item, &base, &action.config, findings);
            check_json_paths(item, &base, action, findings);
            available.insert(
                &action.id,
                action.outputs.keys().map(String::as_str).collect(),
            );
        }
        if list == "actions" {
            provisioning = available;
        }
    }
    let produced: BTreeSet<&str> = automated
        .actions
        .iter()
        .flat_map(|a| a.outputs.keys().map(String::as_str))
        .collect();
    for name in &declared {
        if !produced.contains(name) {
            findings.push(item.finding(
                format!("/spec/outputs/{name}"),
                severity_for(fulfillment.mode == Mode::Automated),
                format!("output `{name}` is declared, but no automated action produces it; add `{name}: $.…` to the outputs of the action that yields it"),
            ));
        }
    }
}

fn severity_for(active: bool) -> super::Severity {
    if active {
        super::Severity::Error
    } else {
        super::Severity::Warning
    }
}

/// Resolves a variable read by an item's fulfillment.
fn item_variable(
    v: &VariableRef,
    fields: &BTreeSet<String>,
    declared_outputs: &[&str],
    earlier: &HashMap<&str, Vec<&str>>,
    place: &str,
) -> Option<String> {
    if let Some(result) = check_common(v, fields) {
        return result;
    }
    let key = v.segments.get(1);
    match v.segments[0].as_str() {
        "secrets" => None,
        "bundle" => check_key("bundle", key, BUNDLE_KEYS),
        "resource" => {
            let problem = check_key("resource", key, RESOURCE_KEYS);
            if problem.is_some() {
                return problem;
            }
            match (key.map(String::as_str), v.segments.get(2)) {
                (Some("outputs"), Some(name)) if !declared_outputs.contains(&name.as_str()) => {
                    Some(format!(
                        "the item declares no output `{name}`{}",
                        did_you_mean(name, declared_outputs.iter().copied())
                    ))
                }
                (Some("inputs"), Some(name)) => check_field(Some(name), fields),
                _ => None,
            }
        }
        "outputs" => {
            let id = key?;
            let Some(names) = earlier.get(id.as_str()) else {
                return Some(format!(
                    "no action `{id}` runs before {place}{}; `outputs` holds the outputs of earlier actions",
                    did_you_mean(id, earlier.keys().copied())
                ));
            };
            let name = v.segments.get(2)?;
            (!names.contains(&name.as_str())).then(|| {
                format!(
                    "action `{id}` declares no output `{name}`{}",
                    did_you_mean(name, names.iter().copied())
                )
            })
        }
        "components" => Some(
            "the `components` scope is only available in a bundle's component inputs; \
             an item receives other components' values through its fields"
                .to_owned(),
        ),
        other => Some(unknown_scope(other, ITEM_SCOPES)),
    }
}

/// Credentials must come from the secrets scope, never be written into the catalog.
fn check_action_secrets(
    item: &Located<CatalogItem>,
    base: &str,
    config: &ActionConfig,
    findings: &mut Vec<Finding>,
) {
    let names_secret = |text: &str| {
        let vars = analyze(text).variables;
        !vars.is_empty() && vars.iter().all(|v| v.segments[0] == "secrets")
    };
    match config {
        ActionConfig::Webhook(w) if !names_secret(&w.signing_secret) => findings.push(item.error(
            format!("{base}/with/signingSecret"),
            "signingSecret must come from the secrets scope, as {{secrets.<name>}}: a key written into the \
             catalog is a leaked key",
        )),
        ActionConfig::Rest(r) => {
            for (name, value) in &r.headers {
                let lower = name.to_ascii_lowercase();
                let is_credential = CREDENTIAL_HEADERS.contains(&lower.as_str()) || lower.contains("token");
                if is_credential && !value.contains("{{secrets.") {
                    findings.push(item.error(
                        format!("{base}/with/headers/{}", escape_token(name)),
                        format!("header `{name}` carries a credential, so its value must come from the secrets scope ({{{{secrets.<name>}}}}), never be written into the catalog"),
                    ));
                }
            }
        }
        _ => {}
    }
}

fn check_bundle(
    bundle: &Located<CatalogBundle>,
    catalog: &Catalog,
    index: &ItemIndex,
    bundle_fields: &BTreeSet<String>,
    findings: &mut Vec<Finding>,
) {
    let spec = &bundle.doc.spec;
    let components = &spec.components;
    let optional = optional_fields(&spec.presentation.schema, bundle_fields);
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, c) in components.iter().enumerate() {
        if ids.contains_key(c.id.as_str()) {
            findings.push(bundle.error(
                format!("/spec/components/{i}/id"),
                format!(
                    "component id `{}` is used twice; component ids are unique within a bundle",
                    c.id
                ),
            ));
        } else {
            ids.insert(&c.id, i);
        }
    }
    let id_names = || components.iter().map(|c| c.id.as_str());
    let mut deps = Vec::with_capacity(components.len());
    for (i, c) in components.iter().enumerate() {
        let mut mine = Vec::new();
        for (j, dep) in c.depends_on.iter().enumerate() {
            match ids.get(dep.as_str()) {
                Some(&d) => mine.push(d),
                None => findings.push(bundle.error(
                    format!("/spec/components/{i}/dependsOn/{j}"),
                    format!(
                        "`{}` depends on `{dep}`, which is not a component of this bundle{}",
                        c.id,
                        did_you_mean(dep, id_names())
                    ),
                )),
            }
        }
        deps.push(mine);
    }
    let graph = DependencyGraph::new(deps);
    let cycle = graph.find_cycle();
    if let Some(cycle) = &cycle {
        let names: Vec<&str> = cycle.iter().map(|&i| components[i].id.as_str()).collect();
        findings.push(bundle.error(
            format!("/spec/components/{}/dependsOn", cycle[0]),
            format!(
                "dependency cycle: {}; remove one of these dependencies",
                names.join(" → ")
            ),
        ));
    }
    for (i, component) in components.iter().enumerate() {
        let base = format!("/spec/components/{i}");
        let Some(form) = index.get(component.item.as_str()) else {
            let hint = did_you_mean(
                &component.item,
                catalog.items.iter().map(|i| i.doc.metadata.name.as_str()),
            );
            let what = if catalog.bundle(&component.item).is_some() {
                "; bundles cannot be nested"
            } else {
                ""
            };
            findings.push(bundle.error(
                format!("{base}/item"),
                format!(
                    "component `{}` uses item `{}`, which is not in the catalog{hint}{what}",
                    component.id, component.item
                ),
            ));
            continue;
        };
        if form.item.doc.metadata.lifecycle == Lifecycle::Deprecated {
            findings.push(bundle.warning(
                format!("{base}/item"),
                format!(
                    "item `{}` is deprecated; plan to replace it in this bundle",
                    component.item
                ),
            ));
        }
        let ancestors = if cycle.is_none() {
            graph.ancestors(i)
        } else {
            vec![true; components.len()]
        };
        // Another component may fail after this one completed unless it is one this one
        // waits for.
        let undone_later = (0..components.len()).any(|j| j != i && !ancestors[j]);
        if undone_later {
            check_rollback_contract(bundle, &base, component, form.item, findings);
        }
        check_component_inputs(bundle, &base, component, form, findings);
        let resolve = |v: &VariableRef| {
            bundle_variable(
                v,
                bundle_fields,
                index,
                bundle,
                &ids,
                |j| ancestors[j],
                Some(&component.id),
            )
        };
        check_templates(
            bundle,
            &format!("{base}/inputs"),
            &resolve,
            &optional,
            findings,
        );
    }
    for name in spec.outputs.keys() {
        let resolve = |v: &VariableRef| {
            bundle_variable(v, bundle_fields, index, bundle, &ids, |_| true, None)
        };
        check_templates(
            bundle,
            &format!("/spec/outputs/{name}/value"),
            &resolve,
            &optional,
            findings,
        );
    }
}

/// A bundle rolled back whole when a part fails can only undo what its items know how to:
/// an automated item without `rollback` actions, with a component that may fail after it,
/// would keep what it provisioned.
fn check_rollback_contract(
    bundle: &Located<CatalogBundle>,
    base: &str,
    component: &super::document::Component,
    item: &Located<CatalogItem>,
    findings: &mut Vec<Finding>,
) {
    let fulfillment = &item.doc.spec.fulfillment;
    if bundle.doc.spec.on_failure != super::document::OnFailure::Rollback
        || fulfillment.mode != super::document::Mode::Automated
    {
        return;
    }
    if fulfillment
        .automated
        .as_ref()
        .is_some_and(|a| a.rollback.is_empty())
    {
        findings.push(bundle.warning(
            format!("{base}/item"),
            format!(
                "component `{}` uses item `{}` ({}), which has no rollback actions: when a later \
                 component fails, this bundle (onFailure: rollback) keeps what `{}` provisioned; \
                 give the item `rollback` actions, or set onFailure: stop",
                component.id, component.item, item.file, component.id
            ),
        ));
    }
}

fn check_component_inputs(
    bundle: &Located<CatalogBundle>,
    base: &str,
    component: &super::document::Component,
    form: &ItemForm,
    findings: &mut Vec<Finding>,
) {
    let schema = &form.item.doc.spec.presentation.schema;
    let fields = &form.fields;
    for name in component.inputs.keys() {
        if !fields.contains(name) {
            findings.push(bundle.error(
                format!("{base}/inputs/{}", escape_token(name)),
                format!(
                    "item `{}` has no field `{name}`{}; its fields are {}",
                    component.item,
                    did_you_mean(name, fields.iter().map(String::as_str)),
                    fields.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for name in required.filter_map(Value::as_str) {
        let has_default = props
            .and_then(|p| p.get(name))
            .is_some_and(|p| p.get("default").is_some());
        if !component.inputs.contains_key(name) && !has_default {
            let at = if component.inputs.is_empty() {
                base.to_owned()
            } else {
                format!("{base}/inputs")
            };
            findings.push(bundle.error(
                at,
                format!("component `{}` does not set `{name}`, which item `{}` requires; add it under inputs", component.id, component.item),
            ));
        }
    }
    // Inputs written as plain values (not templates) can be checked against the item's form now.
    let Some(validator) = &form.validator else {
        return;
    };
    let literal: serde_json::Map<String, Value> = component
        .inputs
        .iter()
        .filter(|(_, v)| !contains_template(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let instance = Value::Object(literal);
    for error in validator.iter_errors(&instance) {
        let path = error.instance_path().as_str();
        if path.split('/').nth(1).is_some() {
            findings.push(bundle.error(
                format!("{base}/inputs{path}"),
                format!(
                    "input does not satisfy item `{}`'s form: {error}",
                    component.item
                ),
            ));
        }
    }
}

fn contains_template(value: &Value) -> bool {
    match value {
        Value::String(s) => crate::template::refs::is_template(s),
        Value::Array(a) => a.iter().any(contains_template),
        Value::Object(o) => o.values().any(contains_template),
        _ => false,
    }
}

/// Resolves a variable read in a bundle (component inputs or bundle outputs).
fn bundle_variable(
    v: &VariableRef,
    fields: &BTreeSet<String>,
    items: &ItemIndex,
    bundle: &Located<CatalogBundle>,
    index: &HashMap<&str, usize>,
    is_ancestor: impl Fn(usize) -> bool,
    component: Option<&str>,
) -> Option<String> {
    // Where the template is: a component's inputs, or the bundle's outputs.
    let place = component.unwrap_or("the bundle's outputs");
    if let Some(result) = check_common(v, fields) {
        return result;
    }
    let key = v.segments.get(1);
    match v.segments[0].as_str() {
        "bundle" => match (key.map(String::as_str), v.segments.get(2)) {
            (Some("fields"), name) => check_field(name, fields),
            (Some("component"), _) if component.is_none() => Some(
                "`bundle.component` names the component being run; the bundle's outputs have none"
                    .to_owned(),
            ),
            _ => check_key("bundle", key, BUNDLE_KEYS),
        },
        "components" => {
            let id = key?;
            let components = &bundle.doc.spec.components;
            let Some(&j) = index.get(id.as_str()) else {
                return Some(format!(
                    "there is no component `{id}` in this bundle{}",
                    did_you_mean(id, components.iter().map(|c| c.id.as_str()))
                ));
            };
            if !is_ancestor(j) {
                return Some(format!(
                    "{place} does not depend on `{id}`, so its outputs may not exist yet; add `{id}` to dependsOn"
                ));
            }
            match v.segments.get(2).map(String::as_str) {
                None => return None,
                Some("outputs") => {}
                Some(other) => return Some(format!("a component exposes only `outputs`, not `{other}`")),
            }
            let name = v.segments.get(3)?;
            let item = items.get(components[j].item.as_str())?.item;
            let outputs = &item.doc.spec.outputs;
            (!outputs.contains_key(name)).then(|| {
                format!(
                    "item `{}` declares no output `{name}`{}; its outputs are {}",
                    item.doc.metadata.name,
                    did_you_mean(name, outputs.keys().map(String::as_str)),
                    if outputs.is_empty() { "none".to_owned() } else { outputs.keys().cloned().collect::<Vec<_>>().join(", ") }
                )
            })
        }
        "secrets" => Some(
            "secrets cannot be passed between components: inputs are stored in the execution history; \
             read the secret in the item's own actions instead"
                .to_owned(),
        ),
        "outputs" => Some("in a bundle, read outputs as components.<id>.outputs.<name>".to_owned()),
        other => Some(unknown_scope(other, BUNDLE_SCOPES)),
    }
}
