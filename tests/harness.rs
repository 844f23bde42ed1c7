//! Local mode assembled by hand around a worker whose REST actions do nothing, for the
//! benchmarks: what they measure is the orchestrator's own work (queue, engine records,
//! request store, workflow engine), not a target's.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use shared::access::Roles;
use shared::adapters::local::{
    Db, LocalCatalog, LocalSecrets, LocalWorkflows, QueueTarget, SqliteQueue, SqliteRequestStore,
    SqliteStateStore,
};
use shared::catalog::document::ActionType;
use shared::catalog::snapshot::CatalogSnapshot;
use shared::fulfillment::actions::{ActionError, ActionKind, Invocation, Step};
use shared::fulfillment::engine::Engine;
use shared::ports::{Clock, SystemClock};
use shared::requests::service::RequestService;
use shared::worker::Worker;

/// An action that does nothing and succeeds, answering `{"endpoint": <its url>}`.
pub struct NoOp;

#[async_trait]
impl ActionKind for NoOp {
    fn target(&self, _: &Value) -> Option<String> {
        // A host, so the circuit breaker's reads and writes are counted too.
        Some("noop.local".to_owned())
    }

    async fn start(&self, _: &Invocation, with: &Value) -> Result<Step, ActionError> {
        Ok(Step::Done(json!({"endpoint": with["url"]})))
    }
}

pub struct Local {
    pub requests: Arc<RequestService>,
    pub worker: Arc<Worker>,
    pub workflows: LocalWorkflows,
    pub snapshot: Arc<CatalogSnapshot>,
}

/// Local mode on `dir` (durable SQLite) serving the catalog of `files` (paths relative
/// to the catalog root; `teams.yaml` is added), with every REST action a [`NoOp`].
pub fn local_with_noop_actions(dir: &Path, files: &[(&str, String)]) -> Local {
    let catalog = crate::write_catalog(dir, files);
    let snapshot = CatalogSnapshot::from_dir(&catalog).expect("valid catalog");
    let db = Db::open(&dir.join("data")).expect("database");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let queue = Arc::new(SqliteQueue::new(db.clone(), "actions", 5, clock.clone()));
    let url = shared::local::ACTION_QUEUE_URL;
    let workflows = LocalWorkflows::new(
        db.clone(),
        clock.clone(),
        "local",
        vec![(
            shared::bundle::asl::QUEUE_PLACEHOLDER.to_owned(),
            url.to_owned(),
        )],
        vec![QueueTarget {
            url: url.to_owned(),
            outbox: queue.outbox(),
        }],
    );
    let requests = Arc::new(RequestService {
        catalog: Arc::new(LocalCatalog::new(snapshot)),
        store: Arc::new(SqliteRequestStore::new(db.clone())),
        queue,
        clock: clock.clone(),
        roles: Roles {
            admin_group: "platform-admins".into(),
        },
        ended: None,
        notices: None,
    });
    let mut engine = Engine::standard(
        None,
        &Default::default(),
        Arc::new(SqliteStateStore::new(db.clone())),
        Arc::new(LocalSecrets::from_pairs([])),
        clock.clone(),
    )
    .expect("engine");
    engine.kinds.insert(ActionType::Rest, Arc::new(NoOp));
    let resources = Arc::new(shared::resources::service::Resources {
        store: Arc::new(shared::adapters::local::SqliteResourceStore::new(db)),
        state: engine.state.clone(),
        catalog: requests.catalog.clone(),
        clock,
        lease: shared::resources::service::DEFAULT_LEASE,
        notices: None,
    });
    let state = engine.state.clone();
    let engine = Arc::new(engine);
    let system = shared::fulfillment::SystemInfo {
        region: "eu-west-1".into(),
        stage: "bench".into(),
        environment: json!({"dbApi": "https://db.acme.example"})
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into(),
    };
    let checks = Arc::new(shared::resources::reconcile::Checks {
        resources: resources.clone(),
        verifier: Arc::new(shared::resources::verify::Verifier {
            engine: engine.clone(),
            system: system.clone(),
            catalog: requests.catalog.clone(),
            store: resources.store.clone(),
            per_host: Default::default(),
        }),
        concurrency: 16,
    });
    let worker = Arc::new(Worker {
        checks,
        notifier: None,
        requests: requests.clone(),
        jira: None,
        engine,
        system,
        max_receives: 5,
        workflows: Arc::new(workflows.clone()),
        resources,
        approvals: Arc::new(shared::approvals::service::Approvals {
            requests: requests.clone(),
            state: state.clone(),
            workflows: Arc::new(workflows.clone()),
        }),
    });
    let snapshot = shared::ports::CatalogStore::current(requests.catalog.as_ref());
    Local {
        requests,
        worker,
        workflows,
        snapshot,
    }
}
