//! `orchestrator plan ITEM`: what a request for an item would do, with no side effect.
//! Catalog authors run it in their pull requests to see the exact calls an item makes.

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Map, Value};
use shared::access::Roles;
use shared::adapters::local::{Db, LocalCatalog, LocalSecrets, SqliteQueue, SqliteRequestStore};
use shared::catalog::schema::Violation;
use shared::catalog::snapshot::{CatalogSnapshot, TargetRef};
use shared::config::Config;
use shared::fulfillment::engine::standard_kinds;
use shared::fulfillment::plan::{Plan, Planner};
use shared::ports::{Clock, SystemClock};
use shared::requests::service::{RequestError, RequestService};

use super::args::{
    Inputs, PlanArgs, action_text, fail, indent, invalid, placeholders, pretty, principal, report,
};

/// Exit codes: 0 a good plan, 1 the plan shows errors (or the fields are invalid), 2
/// usage or I/O errors.
pub(crate) fn plan(args: &PlanArgs, name: &str, inputs: Inputs) -> ExitCode {
    let Inputs {
        mut config,
        snapshot,
        fields: submitted,
    } = inputs;
    let item = match snapshot.target(name) {
        Some(TargetRef::Item(item)) => item.doc.clone(),
        Some(TargetRef::Bundle(_)) => {
            return fail("plans of bundles are not supported by this version yet");
        }
        None => return fail(&format!("no item `{name}` in the catalog")),
    };
    let warnings = placeholders(&mut config, args, &item);
    let built = build(&config, snapshot, args, submitted, &item);
    let mut plan = match built {
        Ok(plan) => plan,
        Err(Built::Invalid(violations)) => return invalid(args, &violations),
        Err(Built::Other(e)) => return fail(&e),
    };
    plan.warnings.extend(warnings);
    let good = plan.errors.is_empty();
    report(
        args.format,
        serde_json::to_value(&plan),
        || text(&plan),
        good,
    )
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
        notices: None,
    };
    let who = principal(args);
    let request = match service.prepare(&who, &item.metadata.name, submitted, None) {
        Ok(r) => r,
        Err(RequestError::InvalidFields(v)) => return Err(Built::Invalid(v)),
        Err(e) => return Err(other(&e)),
    };
    // Describing an action reads no secret: an empty store is all the runners get.
    let secrets = Arc::new(LocalSecrets::from_pairs([]));
    let mut kinds = standard_kinds(None, &config.github, secrets, None).map_err(|e| other(&e))?;
    kinds.extend(super::aws_kinds(config));
    let planner = Planner::new(config, kinds);
    Ok(planner.plan_request(&request, item, None, clock.now()))
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
    if !plan.approvals.is_empty() {
        out.push_str("\nApprovals, before anything runs:\n");
        for (n, a) in plan.approvals.iter().enumerate() {
            out.push_str(&format!(
                "{:>2}. {} / {}: {} of {}, within {}{}\n",
                n + 1,
                a.policy,
                a.stage,
                match a.require {
                    shared::catalog::document::Require::Any => "one".to_owned(),
                    shared::catalog::document::Require::All => "all".to_owned(),
                    shared::catalog::document::Require::Count(c) => c.to_string(),
                },
                a.approvers.describe(&a.owner),
                a.expires,
                a.escalate_to
                    .as_ref()
                    .map(|e| format!(", then {}", e.describe(&a.owner)))
                    .unwrap_or_default()
            ));
        }
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
