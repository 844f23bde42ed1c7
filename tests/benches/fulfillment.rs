//! The fulfillment engine's speed (issue 4), printed as figures:
//! - template rendering of realistic action configurations (renders per second): the
//!   example rds-postgres `create` REST call, and the eks-cluster terraform action
//!   rendered and turned into its HCL files;
//! - the worker's own overhead per action: requests of an item with ten no-op actions go
//!   through the SQLite queue, the engine (execution records, circuit breaker) and the
//!   request store in local mode, and the actions per second are counted.
//!
//! Run: `cargo bench -p orchestrator-tests --bench fulfillment`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::access::Principal;
use shared::adapters::local::LocalSecrets;
use shared::catalog::document::{Action, ActionType};
use shared::catalog::snapshot::{CatalogSnapshot, TargetRef};
use shared::fulfillment::actions::Invocation;
use shared::fulfillment::engine::{render_with, standard_kinds};
use shared::requests::model::RequestStatus;
use shared::template::render::Renderer;

const ACTIONS_PER_ITEM: usize = 10;

fn item_action(dir: &std::path::Path, item: &str, action: &str) -> (Value, Action) {
    let snapshot = CatalogSnapshot::from_dir(dir).expect("example catalog");
    let Some(TargetRef::Item(found)) = snapshot.target(item) else {
        panic!("no item {item}");
    };
    let metadata = serde_json::to_value(&found.doc.metadata).expect("metadata");
    let automated = found
        .doc
        .spec
        .fulfillment
        .automated
        .as_ref()
        .expect("automated");
    let action = automated
        .actions
        .iter()
        .find(|a| a.id == action)
        .expect("action")
        .clone();
    (metadata, action)
}

fn context(metadata: Value, fields: Value) -> Value {
    json!({
        "fields": fields,
        "metadata": metadata,
        "request": {"id": "01a1fd2f-a151-76dc-bffb-704adac3a714", "requester": "alice",
                    "email": "alice@acme.example", "groups": ["developers"],
                    "createdAt": "2026-11-21T10:00:00Z"},
        "system": {"now": "2026-11-21T10:00:00Z", "region": "eu-west-1", "stage": "prod", "version": "0.1.0"},
        "environment": {"dbaasApiUrl": "https://dbaas.acme.example/api", "terraformStateBucket": "acme-tf-state",
                        "inventoryApiUrl": "https://inventory.acme.example"},
        "secrets": {}, "outputs": {},
    })
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn renders(quick: bool) {
    let example = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../examples/catalog");
    let kinds = standard_kinds(
        None,
        &Default::default(),
        Arc::new(LocalSecrets::from_pairs([])),
        None,
    )
    .expect("kinds");
    let renderer = Renderer::new();
    let n = if quick { 200 } else { 50_000 };

    let (metadata, create) = item_action(&example, "rds-postgres", "create");
    let ctx = context(
        metadata,
        json!({"databaseName": "orders", "environment": "prod", "engineVersion": "17",
               "instanceClass": "db.r7g.large", "storageGb": 200, "multiAz": true,
               "vpcId": "vpc-0123abcd", "subnetIds": ["subnet-0123abcd", "subnet-4567cdef"]}),
    );
    let rest = &kinds[&ActionType::Rest];
    let secrets = json!({"dbaasApiToken": "t0ken"});
    let started = Instant::now();
    for _ in 0..n {
        let with = render_with(
            &renderer,
            rest.as_ref(),
            &create,
            "actions",
            &ctx,
            secrets.clone(),
            json!({}),
        )
        .expect("renders");
        std::hint::black_box(with);
    }
    let elapsed = started.elapsed();
    println!(
        "render rds-postgres/create (REST: URL, 2 headers, 12-leaf body, poll): {n} renders in {:.0} ms = {:.0} renders/s ({:.1} µs each)",
        elapsed.as_secs_f64() * 1e3,
        per_second(n, elapsed),
        elapsed.as_secs_f64() * 1e6 / n as f64
    );

    let (metadata, pr) = item_action(&example, "eks-cluster", "pullRequest");
    let ctx = context(
        metadata,
        json!({"clusterName": "payments", "environment": "prod", "kubernetesVersion": "1.34",
               "nodeInstanceType": "m7i.large", "minNodes": 2, "maxNodes": 6, "costCenter": "CC-1234"}),
    );
    let terraform = &kinds[&ActionType::Terraform];
    let run = Invocation {
        idempotency_key: "r/main/actions/pullRequest".into(),
        delivery_id: "d".into(),
        started_at: "2026-11-21T10:00:00Z".into(),
        request_id: shared::requests::model::RequestId::new_at(time::OffsetDateTime::UNIX_EPOCH),
        resource_id: "r-1".to_owned(),
        owner: "platform".to_owned(),
        requester: "alice".into(),
        item: "eks-cluster".into(),
        action_id: "pullRequest".into(),
        attempt: 1,
        call_timeout: Duration::from_secs(30),
    };
    let n = n / 5;
    let started = Instant::now();
    for _ in 0..n {
        let with = render_with(
            &renderer,
            terraform.as_ref(),
            &pr,
            "actions",
            &ctx,
            json!({}),
            json!({}),
        )
        .expect("renders");
        let described = terraform.describe(&run, &with).expect("files");
        std::hint::black_box(described);
    }
    let elapsed = started.elapsed();
    println!(
        "render eks-cluster/pullRequest and write its 5 HCL files: {n} in {:.0} ms = {:.0} per second ({:.1} µs each)",
        elapsed.as_secs_f64() * 1e3,
        per_second(n, elapsed),
        elapsed.as_secs_f64() * 1e6 / n as f64
    );
}

fn noop_item() -> String {
    let mut actions = String::new();
    for i in 1..=ACTIONS_PER_ITEM {
        actions.push_str(&format!(
            "        - id: step{i}
          type: rest
          with:
            method: POST
            url: \"{{{{environment.dbApi}}}}/steps/{i}\"
            body:
              name: \"{{{{fields.dbName}}}}\"
              requester: \"{{{{request.requester}}}}\"
          outputs:
            endpoint: \"$.endpoint\"
"
        ));
    }
    orchestrator_tests::ITEM.replace(
        &orchestrator_tests::ITEM[orchestrator_tests::ITEM
            .find("        - id: create")
            .expect("action")..],
        &actions,
    )
}

async fn worker_overhead(quick: bool) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let local = orchestrator_tests::harness::local_with_noop_actions(
        dir.path(),
        &[("items/postgres.yaml", noop_item())],
    );
    let (requests, worker) = (local.requests, local.worker);
    let who = Principal {
        sub: "alice".into(),
        email: None,
        groups: vec![],
    };
    let n = if quick { 5 } else { 500 };
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let fields = json!({"dbName": format!("db{i}")});
        let (request, _) = requests
            .submit(
                &who,
                "postgres",
                fields.as_object().cloned().unwrap_or_default(),
                None,
            )
            .await
            .expect("submitted");
        ids.push(request.id);
    }
    let started = Instant::now();
    loop {
        let batch = requests
            .queue
            .receive(10, Duration::from_secs(60))
            .await
            .expect("receive");
        if batch.is_empty() {
            break;
        }
        for message in &batch {
            worker.process(message).await;
        }
    }
    let elapsed = started.elapsed();
    for id in &ids {
        let request = requests.store.get(id).await.expect("read").expect("stored");
        assert_eq!(
            request.status,
            RequestStatus::Completed,
            "{:?}",
            request.reason
        );
    }
    let actions = n * ACTIONS_PER_ITEM;
    println!(
        "worker: {n} requests x {ACTIONS_PER_ITEM} no-op actions through queue, engine and store in {:.0} ms = {:.0} actions/s ({:.0} µs each), {:.0} requests/s",
        elapsed.as_secs_f64() * 1e3,
        per_second(actions, elapsed),
        elapsed.as_secs_f64() * 1e6 / actions as f64,
        per_second(n, elapsed),
    );
}

fn main() {
    // `cargo test --benches` runs this too; one quick round is enough there.
    let quick = std::env::args().any(|a| a == "--test");
    renders(quick);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(worker_overhead(quick));
}
