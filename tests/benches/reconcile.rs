//! Drift reconciliation speed (issue 7), printed as figures: 10,000 recorded `volume`
//! resources in SQLite, verified by one reconciliation pass against a local stand-in of
//! the volume API (an axum server on loopback answering `GET /volumes/{id}`), where one
//! resource in a hundred has drifted. Reports the pass's time, its rate, and the process's
//! peak resident memory.
//!
//! Run: `cargo bench -p orchestrator-tests --bench reconcile` (`BENCH_RESOURCES=N` for
//! another count, `BENCH_CONCURRENCY=N` for another bound than 16 and 64).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::Path;
use serde_json::{Map, Value, json};
use shared::adapters::local::{
    Db, LocalCatalog, LocalSecrets, SqliteResourceStore, SqliteStateStore,
};
use shared::catalog::snapshot::CatalogSnapshot;
use shared::fulfillment::SystemInfo;
use shared::fulfillment::engine::Engine;
use shared::ports::{Clock, ResourceStore, SystemClock};
use shared::resources::model::{
    ChangeKind, Resource, ResourceChange, ResourceKind, ResourceStatus,
};
use shared::resources::reconcile::Reconciler;
use shared::resources::service::{DEFAULT_LEASE, Resources};
use shared::resources::verify::Verifier;

/// The size the stand-in reports: `drift-` volumes report another than recorded.
async fn volume(Path(id): Path<String>) -> axum::Json<Value> {
    let size = if id.starts_with("drift-") { 99 } else { 10 };
    axum::Json(json!({"id": id, "size": size}))
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn resource(i: usize, now: time::OffsetDateTime) -> Resource {
    let volume = if i.is_multiple_of(100) {
        format!("drift-{i}")
    } else {
        format!("vol-{i}")
    };
    let mut outputs = Map::new();
    outputs.insert("volumeId".into(), json!(volume));
    Resource {
        id: format!("{:08}", i),
        kind: ResourceKind::Item,
        item: "volume".into(),
        catalog_version: "bench".into(),
        owner: "database".into(),
        requester: "bench".into(),
        inputs: json!({"name": format!("v{i}"), "size": 10})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        outputs,
        status: ResourceStatus::Ready,
        serial: 1,
        lineage: format!("lineage-{i}"),
        request_id: shared::requests::model::RequestId::new_at(time::OffsetDateTime::UNIX_EPOCH),
        stack: None,
        component: None,
        members: Vec::new(),
        lock: None,
        drift: Vec::new(),
        verified_at: None,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let count: usize = std::env::var("BENCH_RESOURCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 200 } else { 10_000 });
    let bounds: Vec<usize> = match std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => vec![n],
        None if quick => vec![16],
        None => vec![16, 64],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new().route("/volumes/{id}", axum::routing::get(volume));
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().expect("tempdir");
        let catalog_dir = orchestrator_tests::volume_catalog(dir.path());
        let snapshot = CatalogSnapshot::from_dir(&catalog_dir).expect("catalog");
        let db = Db::open(&dir.path().join("data")).expect("database");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store: Arc<dyn ResourceStore> = Arc::new(SqliteResourceStore::new(db.clone()));
        let state = Arc::new(SqliteStateStore::new(db));
        let catalog = Arc::new(LocalCatalog::new(snapshot));
        let engine = Arc::new(
            Engine::standard(None, &Default::default(), state.clone(), Arc::new(LocalSecrets::from_pairs([])), clock.clone())
                .expect("engine"),
        );
        let now = clock.now();
        let loading = Instant::now();
        let mut writes = tokio::task::JoinSet::new();
        for i in 0..count {
            let store = store.clone();
            writes.spawn(async move {
                let r = resource(i, now);
                let change = ResourceChange {
                    resource_id: r.id.clone(),
                    serial: 1,
                    kind: ChangeKind::Provisioned,
                    at: now,
                    actor: "bench".into(),
                    request_id: None,
                    status: r.status,
                    inputs: Some(r.inputs.clone()),
                    outputs: None,
                    drift: Vec::new(),
                    message: None,
                };
                store.create(&r, &change).await.expect("create");
            });
        }
        while writes.join_next().await.is_some() {}
        println!("recorded {count} resources in {:.2?}", loading.elapsed());
        let resources = Arc::new(Resources {
            store: store.clone(),
            state,
            catalog: catalog.clone(),
            clock,
            lease: DEFAULT_LEASE,
            notices: None,
        });
        let verifier = Arc::new(Verifier {
            engine,
            system: SystemInfo {
                region: "bench".into(),
                stage: "bench".into(),
                environment: json!({"api": target}).as_object().cloned().unwrap_or_default().into(),
            },
            catalog,
            store,
        });
        let before = peak_rss_kib();
        for concurrency in bounds {
            let reconciler = Reconciler {
                resources: resources.clone(),
                verifier: verifier.clone(),
                concurrency,
                outcomes: None,
            };
            let started = Instant::now();
            let report = reconciler.run_once().await.expect("pass");
            let elapsed = started.elapsed();
            println!(
                "concurrency {concurrency}: verified {} resources in {:.2?} ({:.0}/s): {} matched, {} drifted, {} recovered, {} skipped, {} failed; peak RSS {} MiB (before the passes {} MiB)",
                report.checked,
                elapsed,
                report.checked as f64 / elapsed.as_secs_f64(),
                report.matched,
                report.drifted,
                report.recovered,
                report.skipped,
                report.failed,
                peak_rss_kib() / 1024,
                before / 1024,
            );
            assert_eq!(report.checked, count);
            assert_eq!(report.drifted, count.div_ceil(100));
            assert_eq!(report.failed, 0);
        }
    });
}
