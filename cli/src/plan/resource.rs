//! `orchestrator plan --resource ID`: what a change (or, with `--delete`, a deletion) of a
//! resource that local mode recorded would do, with no side effect. The plan comes from the day-2 use
//! case the API runs (`shared::resources::change`); the resource is read from the data
//! directory, and nothing is verified, locked or stored.

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Map, Value};
use shared::access::Roles;
use shared::adapters::local::{
    Db, LocalCatalog, LocalSecrets, SqliteQueue, SqliteRequestStore, SqliteResourceStore,
    SqliteStateStore,
};
use shared::catalog::snapshot::CatalogSnapshot;
use shared::config::Config;
use shared::fulfillment::engine::{Engine, standard_kinds};
use shared::fulfillment::plan::Planner;
use shared::ports::{Clock, ResourceStore, StateStore, SystemClock};
use shared::requests::model::Operation;
use shared::requests::service::{RequestError, RequestService};
use shared::resources::change::{ChangeError, ChangePlan, Changes};
use shared::resources::service::Resources;
use shared::resources::verify::{Verification, Verifier};

use super::args::{Inputs, PlanArgs, action_text, fail, invalid, placeholders, principal, report};

/// Exit codes as `plan ITEM`'s: 0 a good plan, 1 the plan shows errors (or the fields are
/// invalid), 2 usage or I/O errors (no such resource, say).
pub(crate) fn plan(args: &PlanArgs, id: &str, inputs: Inputs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&e.to_string()),
    };
    runtime.block_on(plan_async(
        inputs.config,
        inputs.snapshot,
        args,
        id,
        inputs.fields,
    ))
}

async fn plan_async(
    mut config: Config,
    snapshot: CatalogSnapshot,
    args: &PlanArgs,
    id: &str,
    fields: Map<String, Value>,
) -> ExitCode {
    let db_file = config.data_dir.join("orchestrator.db");
    if !db_file.exists() {
        return fail(&format!(
            "no local-mode data in {} (pass --data or --config with its dataDir)",
            config.data_dir.display()
        ));
    }
    let db = match Db::open(&config.data_dir) {
        Ok(db) => db,
        Err(e) => return fail(&e.to_string()),
    };
    let store = Arc::new(SqliteResourceStore::new(db.clone()));
    let resource = match store.get(id).await {
        Ok(Some(resource)) => resource,
        Ok(None) => {
            return fail(&format!(
                "no resource `{id}` in {}",
                config.data_dir.display()
            ));
        }
        Err(e) => return fail(&e.to_string()),
    };
    let mut warnings = Vec::new();
    if let Some(item) = snapshot.catalog.item(&resource.item) {
        let doc = item.doc.clone();
        warnings = placeholders(&mut config, args, &doc);
    }
    let changes = match assemble(&config, snapshot, db, store) {
        Ok(changes) => changes,
        Err(e) => return fail(&e),
    };
    let (operation, fields) = if args.delete {
        (Operation::Delete, resource.inputs.clone())
    } else {
        (Operation::Update, fields)
    };
    let skipped = Verification::Skipped(
        "the command-line plan does not verify; applying through the API verifies first".to_owned(),
    );
    let mut plan = match changes
        .preview(&principal(args), &resource, operation, fields, &skipped)
        .await
    {
        Ok(plan) => plan,
        Err(ChangeError::Request(RequestError::InvalidFields(violations))) => {
            return invalid(args, &violations);
        }
        Err(e) => return fail(&e.to_string()),
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

/// The use case on local mode's records, with runners that describe and never call.
fn assemble(
    config: &Config,
    snapshot: CatalogSnapshot,
    db: Db,
    store: Arc<SqliteResourceStore>,
) -> Result<Changes, String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let catalog = Arc::new(LocalCatalog::new(snapshot));
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::new(db.clone()));
    // Describing an action reads no secret: an empty store is all the runners get.
    let secrets = Arc::new(LocalSecrets::from_pairs([]));
    let mut kinds =
        standard_kinds(None, &config.github, secrets.clone(), None).map_err(|e| e.to_string())?;
    kinds.extend(super::aws_kinds(config));
    let planner = Arc::new(Planner::new(config, kinds.clone()));
    let engine = Arc::new(Engine::new(kinds, state.clone(), secrets, clock.clone()));
    let requests = Arc::new(RequestService {
        catalog: catalog.clone(),
        store: Arc::new(SqliteRequestStore::new(db.clone())),
        // Nothing is submitted: the queue is never written.
        queue: Arc::new(SqliteQueue::new(db, "plan", 1, clock.clone())),
        clock: clock.clone(),
        roles: Roles {
            admin_group: config.auth.admin_group.clone(),
        },
        ended: None,
        notices: None,
    });
    let resources = Arc::new(Resources {
        store: store.clone(),
        state: state.clone(),
        catalog: catalog.clone(),
        clock,
        lease: std::time::Duration::from_secs(config.resources.lease_seconds.max(1)),
        notices: None,
    });
    let verifier = Arc::new(Verifier {
        engine,
        system: planner.system.clone(),
        catalog,
        store,
        per_host: Default::default(),
    });
    Ok(Changes {
        requests,
        resources,
        verifier,
        planner,
        state,
    })
}

/// The plan for people: the inputs that change, then each call as it would go out.
fn text(plan: &ChangePlan) -> String {
    let mut out = format!(
        "Plan for the {} of resource {} ({}, serial {}); no call is made.\n",
        match plan.operation {
            Operation::Delete => "deletion",
            _ => "change",
        },
        plan.resource,
        plan.item,
        plan.serial
    );
    if !plan.changes.is_empty() {
        out.push_str("\nInputs:\n");
        for change in &plan.changes {
            out.push_str(&format!(
                "   {}: {} -> {}\n",
                change.field, change.before, change.after
            ));
        }
    }
    if !plan.actions.is_empty() {
        out.push_str("\nActions:\n");
        for (n, action) in plan.actions.iter().enumerate() {
            action_text(&mut out, n + 1, action);
        }
    }
    if let Some(ticket) = &plan.ticket {
        out.push_str(&format!(
            "\nJIRA ticket:\n{}\n",
            serde_json::to_string_pretty(ticket).unwrap_or_default()
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
