//! `orchestrator plan`: what a request for an item would do, with no side effect. Catalog
//! authors run it in their pull requests to see the exact calls an item makes; with
//! `--resource`, what a change (or `--delete`, a deletion) of a resource that local mode
//! recorded would do, planned by the same use case as `POST /resources/{id}/changes`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use serde_json::{Map, Value};
use shared::access::Principal;
use shared::access::Roles;
use shared::adapters::local::{Db, LocalCatalog, LocalSecrets, SqliteQueue, SqliteRequestStore};
use shared::catalog::schema::Violation;
use shared::catalog::snapshot::{CatalogSnapshot, TargetRef};
use shared::config::Config;
use shared::fulfillment::engine::standard_kinds;
use shared::fulfillment::plan::{Plan, PlannedAction, Planner, referenced};
use shared::ports::{Clock, SystemClock};
use shared::requests::service::{RequestError, RequestService};

#[derive(Args)]
pub struct PlanArgs {
    /// The item to plan a request for.
    #[arg(required_unless_present = "resource", conflicts_with = "resource")]
    pub(crate) item: Option<String>,
    /// Plan a change of this resource instead (one local mode recorded in the data
    /// directory): its new inputs are `--fields`.
    #[arg(long)]
    pub(crate) resource: Option<String>,
    /// With `--resource`: plan its deletion (no `--fields`).
    #[arg(long, requires = "resource", conflicts_with = "fields")]
    pub(crate) delete: bool,
    /// The form's values: a YAML or JSON object.
    #[arg(long, required_unless_present = "delete")]
    pub(crate) fields: Option<PathBuf>,
    /// Local mode's data directory, where `--resource` is read (default: the
    /// configuration's dataDir).
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// The catalog repository (default: the configuration's catalogDir).
    #[arg(long)]
    pub(crate) catalog: Option<PathBuf>,
    /// Configuration (for `environment`, `region`, `stage`, `github.apiUrl`, ...); without
    /// it, `environment` values show as placeholders.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Who requests (the `request.requester` variable).
    #[arg(long = "as", default_value = "plan-user")]
    pub(crate) requester: String,
    /// The requester's groups, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) groups: Vec<String>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub(crate) format: PlanFormat,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum PlanFormat {
    /// Each call as it would be sent, for people.
    Text,
    /// The plan document that `POST /requests?dryRun=true` returns.
    Json,
}

pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn read_fields(path: &PathBuf) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let docs = shared::catalog::yaml::load_documents(&text, Default::default()).map_err(|e| {
        format!(
            "{}:{}:{}: {}",
            path.display(),
            e.pos.line,
            e.pos.column,
            e.message
        )
    })?;
    match docs.into_iter().next().map(|d| d.value) {
        Some(Value::Object(map)) => Ok(map),
        None => Ok(Map::new()),
        Some(_) => Err(format!("{}: the fields must be an object", path.display())),
    }
}

/// Exit codes: 0 a good plan, 1 the plan shows errors (or the fields are invalid), 2
/// usage or I/O errors.
pub fn plan(args: PlanArgs) -> ExitCode {
    let mut config = match Config::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    if let Some(dir) = &args.catalog {
        config.catalog_dir = dir.clone();
    }
    let snapshot = match CatalogSnapshot::from_dir(&config.catalog_dir) {
        Ok(s) => s,
        Err(e) => return fail(&format!("catalog {}: {e}", config.catalog_dir.display())),
    };
    if let Some(data) = &args.data {
        config.data_dir = data.clone();
    }
    let submitted = match &args.fields {
        Some(path) => match read_fields(path) {
            Ok(f) => f,
            Err(e) => return fail(&e),
        },
        None => Map::new(),
    };
    if let Some(resource) = &args.resource {
        return crate::plan_change::plan_change(&config, snapshot, &args, resource, submitted);
    }
    let name = args.item.clone().unwrap_or_default();
    let item = match snapshot.target(&name) {
        Some(TargetRef::Item(item)) => item.doc.clone(),
        Some(TargetRef::Bundle(_)) => {
            return fail("plans of bundles are not supported by this version yet");
        }
        None => return fail(&format!("no item `{name}` in the catalog")),
    };
    let warnings = placeholders(&mut config, &args, &item);
    let built = build(&config, snapshot, &args, submitted, &item);
    let mut plan = match built {
        Ok(plan) => plan,
        Err(Built::Invalid(violations)) => return invalid(&args, &violations),
        Err(Built::Other(e)) => return fail(&e),
    };
    plan.warnings.extend(warnings);
    match args.format {
        PlanFormat::Json => match serde_json::to_string_pretty(&plan) {
            Ok(text) => println!("{text}"),
            Err(e) => return fail(&e.to_string()),
        },
        PlanFormat::Text => print!("{}", text(&plan)),
    }
    if plan.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Without `--config`, the `environment` values `item` reads are placeholders (URLs under
/// `.invalid`): the warnings that say so.
pub(crate) fn placeholders(
    config: &mut Config,
    args: &PlanArgs,
    item: &shared::catalog::CatalogItem,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if args.config.is_some() {
        return warnings;
    }
    for key in referenced(item, "environment") {
        // A URL's placeholder must still be a URL: a host under `.invalid` (RFC 2606).
        let placeholder = if key.ends_with("Url") || key.ends_with("URL") {
            format!("https://{}.environment.invalid", key.to_lowercase())
        } else {
            format!("(environment.{key})")
        };
        config
            .environment
            .entry(key.clone())
            .or_insert(Value::String(placeholder));
        warnings.push(format!(
            "environment.{key} is not configured (pass --config); shown as a placeholder"
        ));
    }
    warnings
}

/// Fields that do not satisfy the form: each violation with the file and its pointer.
pub(crate) fn invalid(args: &PlanArgs, violations: &[Violation]) -> ExitCode {
    let file = args
        .fields
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    for v in violations {
        eprintln!("{file}: {}: {}", v.pointer, v.message);
    }
    ExitCode::from(1)
}

enum Built {
    Invalid(Vec<Violation>),
    Other(String),
}

/// Checks the fields exactly as a submission would, then plans.
fn build(
    config: &Config,
    snapshot: CatalogSnapshot,
    args: &PlanArgs,
    submitted: Map<String, Value>,
    item: &shared::catalog::CatalogItem,
) -> Result<Plan, Built> {
    let other = |e: &dyn std::fmt::Display| Built::Other(e.to_string());
    let db = Db::in_memory().map_err(|e| other(&e))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let service = RequestService {
        catalog: Arc::new(LocalCatalog::new(snapshot)),
        store: Arc::new(SqliteRequestStore::new(db.clone())),
        queue: Arc::new(SqliteQueue::new(db, "plan", 1, clock.clone())),
        clock: clock.clone(),
        roles: Roles {
            admin_group: config.auth.admin_group.clone(),
        },
        ended: None,
    };
    let who = principal(args);
    let request = match service.prepare(&who, &item.metadata.name, submitted, None) {
        Ok(r) => r,
        Err(RequestError::InvalidFields(v)) => return Err(Built::Invalid(v)),
        Err(e) => return Err(other(&e)),
    };
    // Describing an action reads no secret: an empty store is all the runners get.
    let secrets = Arc::new(LocalSecrets::from_pairs([]));
    let kinds = standard_kinds(None, &config.github, secrets).map_err(|e| other(&e))?;
    let planner = Planner::new(config, kinds);
    Ok(planner.plan_request(&request, item, None, clock.now()))
}

/// Who the plan is for (`--as`, `--groups`).
pub(crate) fn principal(args: &PlanArgs) -> Principal {
    Principal {
        sub: args.requester.clone(),
        email: None,
        groups: args.groups.clone(),
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

pub(crate) fn action_text(out: &mut String, n: usize, a: &PlannedAction) {
    out.push_str(&format!("\n{n}. {} ({})\n", a.id, a.kind));
    if let Some(error) = &a.error {
        out.push_str(&format!("   ERROR: {error}\n"));
        return;
    }
    let Some(sends) = &a.sends else { return };
    let mut rest = sends.clone();
    if let (Some(method), Some(url)) = (sends["method"].as_str(), sends["url"].as_str()) {
        out.push_str(&format!("   {method} {url}\n"));
        if let Some(headers) = sends["headers"].as_object() {
            for (name, value) in headers {
                out.push_str(&format!(
                    "   {name}: {}\n",
                    value.as_str().unwrap_or_default()
                ));
            }
        }
        if !sends["body"].is_null() {
            out.push_str(&indent(&pretty(&sends["body"]), "   "));
        }
        if let Some(map) = rest.as_object_mut() {
            for key in ["method", "url", "headers", "body"] {
                map.remove(key);
            }
        }
    }
    let files = rest
        .as_object_mut()
        .and_then(|m| m.remove("files"))
        .unwrap_or(Value::Null);
    if rest.as_object().is_some_and(|m| !m.is_empty()) {
        out.push_str(&indent(&pretty(&rest), "   "));
    }
    if let Some(files) = files.as_object() {
        for (path, content) in files {
            out.push_str(&format!("   --- {path}\n"));
            out.push_str(&indent(content.as_str().unwrap_or_default(), "   "));
        }
    }
    if !a.outputs.is_empty() {
        let names: Vec<&str> = a.outputs.keys().map(String::as_str).collect();
        out.push_str(&format!("   outputs: {}\n", names.join(", ")));
    }
}

/// The plan for people: each call as it would go out.
fn text(plan: &Plan) -> String {
    let mut out = format!(
        "Plan for a request of {} ({}); no call is made.\n",
        plan.item,
        if plan.mode == shared::catalog::document::Mode::Automated {
            "automated"
        } else {
            "manual"
        }
    );
    if let Some(forced) = &plan.forced_manual {
        out.push_str(&format!("{forced}\n"));
    }
    for (title, list) in [
        ("Actions", &plan.actions),
        ("Rollback, if an action fails for good", &plan.rollback),
    ] {
        if list.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{title}:\n"));
        for (n, action) in list.iter().enumerate() {
            action_text(&mut out, n + 1, action);
        }
    }
    if let Some(ticket) = &plan.ticket {
        out.push_str(&format!(
            "\nJIRA ticket ({}):\n{}",
            ticket["when"].as_str().unwrap_or_default(),
            indent(&pretty(&ticket["fields"]), "   ")
        ));
    }
    if !plan.outputs.is_empty() {
        out.push_str("\nOutputs:\n");
        for (name, from) in &plan.outputs {
            out.push_str(&format!(
                "   {name}: {}\n",
                from.as_str().unwrap_or_default()
            ));
        }
    }
    if !plan.secrets.is_empty() {
        out.push_str(&format!(
            "\nSecrets read (shown as ***): {}\n",
            plan.secrets.join(", ")
        ));
    }
    for w in &plan.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    for e in &plan.errors {
        out.push_str(&format!("error: {e}\n"));
    }
    out
}
