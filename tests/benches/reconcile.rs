//! Drift reconciliation speed (issues 7 and 36), printed as figures: 100,000 recorded
//! `volume` resources in local mode's store, verified by one fanned-out reconciliation
//! pass (the reconciler enqueues them in batches, the worker verifies the batches) against
//! a stand-in of the volume API (an axum server on loopback answering `GET /volumes/{id}`),
//! where one resource in a hundred has drifted. Reports how long the pass took to enqueue
//! everything and to finish, its rate, the most calls the stand-in saw at the same time
//! (the bound per target host), and the process's peak resident memory.
//!
//! Run: `cargo bench -p orchestrator-tests --bench reconcile` (`BENCH_RESOURCES=N` for
//! another count, `BENCH_PER_HOST=N` for another bound per host than the default 32).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use serde_json::{Map, Value, json};
use shared::adapters::local::{Db, SqliteResourceStore};
use shared::config::Config;
use shared::ports::ResourceStore;
use shared::resources::model::{ChangeKind, Resource};

/// Calls in flight at the stand-in, and the most there ever were.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

/// The size the stand-in reports: `drift-` volumes report another than recorded.
async fn volume(State(calls): State<Arc<InFlight>>, Path(id): Path<String>) -> axum::Json<Value> {
    let now = calls.now.fetch_add(1, Ordering::SeqCst) + 1;
    calls.most.fetch_max(now, Ordering::SeqCst);
    // A target that takes a moment to answer, as a real one does.
    tokio::time::sleep(Duration::from_millis(2)).await;
    calls.now.fetch_sub(1, Ordering::SeqCst);
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
        inputs: json!({"name": format!("v{i}"), "size": 10})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        outputs,
        ..Resource::provisioned(
            &format!("{i:08}"),
            "volume",
            "bench",
            "database",
            "bench",
            shared::requests::model::RequestId::new_at(time::OffsetDateTime::UNIX_EPOCH),
            now,
        )
    }
}

/// Records `count` resources straight into the store of `data`.
async fn record(data: &std::path::Path, count: usize) {
    let store: Arc<dyn ResourceStore> =
        Arc::new(SqliteResourceStore::new(Db::open(data).expect("database")));
    let now = time::OffsetDateTime::now_utc();
    for chunk in (0..count).collect::<Vec<_>>().chunks(5_000) {
        let mut writes = tokio::task::JoinSet::new();
        for &i in chunk {
            let store = store.clone();
            writes.spawn(async move {
                let r = resource(i, now);
                let change = r.change(ChangeKind::Provisioned, "bench");
                store.create(&r, &change).await.expect("create");
            });
        }
        while writes.join_next().await.is_some() {}
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let count: usize = std::env::var("BENCH_RESOURCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 200 } else { 100_000 });
    let per_host: usize = std::env::var("BENCH_PER_HOST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let calls = Arc::new(InFlight::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route("/volumes/{id}", axum::routing::get(volume))
            .with_state(calls.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let loading = Instant::now();
        record(&data, count).await;
        println!("recorded {count} resources in {:.2?}", loading.elapsed());

        let mut config = Config {
            listen: "127.0.0.1:0".to_owned(),
            catalog_dir: orchestrator_tests::volume_catalog(dir.path()),
            data_dir: data,
            ..Config::default()
        };
        config.environment.insert("api".into(), json!(target));
        config.resources.reconcile_seconds = 1;
        config.resources.reconcile_per_host = per_host;
        let local = orchestrator_tests::load::start_local(&config, 4).await;
        let secret = shared::local::dev_secret(
            &config,
            &shared::adapters::local::LocalSecrets::from_pairs([]),
        )
        .await
        .expect("dev secret");
        let admin = shared::http::auth::dev_token(
            &secret,
            "bench-admin",
            None,
            &[config.auth.admin_group.clone()],
            Duration::from_secs(3600),
        )
        .expect("token");
        let before = peak_rss_kib();
        let (pass, done_at) = loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let state: Value = local
                .client
                .get(format!("{}/reconciliation", local.base))
                .bearer_auth(&admin)
                .send()
                .await
                .expect("reconciliation")
                .json()
                .await
                .expect("json");
            let finished = ["current", "last"]
                .into_iter()
                .map(|k| &state[k])
                .find(|p| p["complete"] == true && p["enqueued"].as_u64() == Some(count as u64));
            if let Some(pass) = finished {
                break (pass.clone(), time::OffsetDateTime::now_utc());
            }
        };
        let at = |field: &str| {
            time::OffsetDateTime::parse(
                pass[field].as_str().expect("a time"),
                &time::format_description::well_known::Rfc3339,
            )
            .expect("rfc3339")
        };
        let started = at("startedAt");
        let listed = (at("listedAt") - started).as_seconds_f64();
        let elapsed = (done_at - started).as_seconds_f64();
        let report = &pass["report"];
        println!(
            "pass over {count}: enqueued in {listed:.2} s, verified in {elapsed:.2} s ({:.0}/s, observed every 100 ms): {} matched, {} drifted, {} skipped, {} failed; at most {} calls at once at the target (bound {per_host}); peak RSS {} MiB (before the pass {} MiB)",
            count as f64 / elapsed,
            report["matched"],
            report["drifted"],
            report["skipped"],
            report["failed"],
            calls.most.load(Ordering::SeqCst),
            peak_rss_kib() / 1024,
            before / 1024,
        );
        assert_eq!(report["checked"], count);
        assert_eq!(report["drifted"], count.div_ceil(100));
        assert_eq!(report["failed"], 0);
        assert!(calls.most.load(Ordering::SeqCst) <= per_host);
        local.running.stop().await.expect("stops");
    });
}
