//! What `orchestrator plan` is told, and what its two plans share: reading the
//! configuration, the catalog and the fields, placeholders for `environment`, exit codes,
//! and how a planned call is printed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{Map, Value};
use shared::access::Principal;
use shared::catalog::schema::Violation;
use shared::catalog::snapshot::CatalogSnapshot;
use shared::config::Config;
use shared::fulfillment::plan::{PlannedAction, referenced};

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

pub(crate) fn read_fields(path: &std::path::Path) -> Result<Map<String, Value>, String> {
    match shared::catalog::yaml::read_file(path)? {
        Some(Value::Object(map)) => Ok(map),
        None => Ok(Map::new()),
        Some(_) => Err(format!("{}: the fields must be an object", path.display())),
    }
}

/// What both plans start from: the configuration (with `--catalog` and `--data`), the
/// catalog, and the fields file's values (none without `--fields`).
pub(crate) struct Inputs {
    pub config: Config,
    pub snapshot: CatalogSnapshot,
    pub fields: Map<String, Value>,
}

pub(crate) fn load(args: &PlanArgs) -> Result<Inputs, ExitCode> {
    let mut config =
        Config::load(args.config.as_deref(), std::env::vars()).map_err(|e| fail(&e))?;
    if let Some(dir) = &args.catalog {
        config.catalog_dir = dir.clone();
    }
    if let Some(data) = &args.data {
        config.data_dir = data.clone();
    }
    let snapshot = CatalogSnapshot::from_dir(&config.catalog_dir)
        .map_err(|e| fail(&format!("catalog {}: {e}", config.catalog_dir.display())))?;
    let fields = match &args.fields {
        Some(path) => read_fields(path).map_err(|e| fail(&e))?,
        None => Map::new(),
    };
    Ok(Inputs {
        config,
        snapshot,
        fields,
    })
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

/// Prints a plan as `format` asks (`text` renders it for people) and exits 0 for a good
/// plan, 1 for one that shows errors.
pub(crate) fn report(
    format: PlanFormat,
    plan: serde_json::Result<Value>,
    text: impl FnOnce() -> String,
    good: bool,
) -> ExitCode {
    match format {
        PlanFormat::Json => match plan.and_then(|plan| serde_json::to_string_pretty(&plan)) {
            Ok(json) => println!("{json}"),
            Err(e) => return fail(&e.to_string()),
        },
        PlanFormat::Text => print!("{}", text()),
    }
    if good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
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

/// Who the plan is for (`--as`, `--groups`).
pub(crate) fn principal(args: &PlanArgs) -> Principal {
    Principal {
        sub: args.requester.clone(),
        email: None,
        groups: args.groups.clone(),
    }
}

pub(crate) fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

pub(crate) fn pretty(value: &Value) -> String {
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
