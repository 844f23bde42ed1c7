//! Growth (issue 36): the API's cost as the store grows. Local mode on a 10,000-item
//! catalog is measured three times in one run: on an empty store; on a small one (a
//! hundredth of the full, a fiftieth of its resources: every listing measured answers a
//! full page, as it does on the full store, so the two differ only in how much lies
//! around the page);
//! and on one loaded with 1,000,000 requests (each with a timeline of four events),
//! 100,000 resources (each with a history of two changes) and 1,000,000 audit entries,
//! written straight through the stores (not the API). Each call is measured at 256 and at
//! 1,024 connections; the figures are printed side by side with the ratios of the p95s,
//! and the bytes the full store takes per request.
//!
//! Run: `cargo bench -p orchestrator-tests --bench growth` (`BENCH_KEEP=DIR` keeps the full
//! store in DIR)
//! (`BENCH_REQUESTS`, `BENCH_RESOURCES`, `BENCH_AUDIT`, `BENCH_ITEMS`, `BENCH_CALLS` for
//! other sizes). Target: every full-store figure within 1.5× of the empty one; POST
//! /requests p95 at 1,024 connections near 50 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator_tests::load::{Figures, MakeCall, measure};
use serde_json::{Value, json};
use shared::access::Principal;
use shared::adapters::local::{Db, SqliteAuditLog, SqliteRequestStore, SqliteResourceStore};
use shared::config::Config;
use shared::ports::{AuditLog, RequestStore, ResourceStore};
use shared::requests::model::{
    AuditEntry, EventKind, Request, RequestEvent, RequestId, RequestStatus, TargetKind,
};
use shared::resources::model::{ChangeKind, Resource, ResourceStatus};
use time::OffsetDateTime;

/// Teams the generated data spreads over; each requester makes about 100 requests.
const TEAMS: usize = 50;
const PER_REQUESTER: usize = 100;

#[derive(Clone, Copy)]
struct Sizes {
    requests: usize,
    resources: usize,
    audit: usize,
    items: usize,
    calls: usize,
}

fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let sizes = if quick {
        Sizes {
            requests: 2_000,
            resources: 200,
            audit: 2_000,
            items: 50,
            calls: 300,
        }
    } else {
        Sizes {
            requests: size("BENCH_REQUESTS", 1_000_000),
            resources: size("BENCH_RESOURCES", 100_000),
            audit: size("BENCH_AUDIT", 1_000_000),
            items: size("BENCH_ITEMS", 10_000),
            calls: size("BENCH_CALLS", 20_000),
        }
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let catalog = dir.path().join("catalog");
    for f in orchestrator_tests::generated_catalog(sizes.items, 10) {
        let path = catalog.join(&f.path);
        std::fs::create_dir_all(path.parent().expect("files are in folders")).expect("mkdir");
        std::fs::write(path, &f.bytes).expect("write");
    }

    let empty = run("empty", &catalog, &dir.path().join("empty"), &sizes).await;
    // A hundredth of the requests and audit entries; a fiftieth of the resources, so a
    // team's ready resources fill a page there too.
    let small_sizes = Sizes {
        requests: sizes.requests / 100,
        resources: sizes.resources / 50,
        audit: sizes.audit / 100,
        ..sizes
    };
    let small_dir = dir.path().join("small");
    load(&small_dir, &small_sizes).await;
    let small = run("small", &catalog, &small_dir, &sizes).await;

    // `BENCH_KEEP=DIR` keeps the full store in DIR (for wrk against `orchestrator serve`).
    let full_dir = match std::env::var("BENCH_KEEP") {
        Ok(keep) => {
            let _ = std::fs::remove_dir_all(&keep);
            std::path::PathBuf::from(keep)
        }
        Err(_) => dir.path().join("full"),
    };
    let started = Instant::now();
    load(&full_dir, &sizes).await;
    let loaded = started.elapsed();
    let bytes = dir_bytes(&full_dir);
    println!(
        "loaded {} requests ({} events), {} resources ({} changes), {} audit entries in {:.1} s; the store takes {:.1} MiB, {:.0} bytes per request (everything stored over the requests)",
        sizes.requests,
        sizes.requests * 4,
        sizes.resources,
        sizes.resources * 2,
        sizes.audit,
        loaded.as_secs_f64(),
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / sizes.requests.max(1) as f64,
    );
    let full = run("full", &catalog, &full_dir, &sizes).await;

    println!();
    println!(
        "| call | connections | empty store | small store (1 %) | full store | p95 full/empty | p95 full/small |"
    );
    println!("|---|---|---|---|---|---|---|");
    let short = |f: &Figures| {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "p50 {:.1} / p95 {:.1} / p99 {:.1} ms, {:.0} req/s{}",
            ms(f.p50),
            ms(f.p95),
            ms(f.p99),
            f.per_second,
            if f.errors > 0 {
                format!(", {} errors", f.errors)
            } else {
                String::new()
            }
        )
    };
    let ratio = |a: &Figures, b: &Figures| a.p95.as_secs_f64() / b.p95.as_secs_f64().max(1e-9);
    for (((name, e), (_, m)), (_, f)) in empty.iter().zip(&small).zip(&full) {
        println!(
            "| {name} | {} | {} | {} | {} | {:.2}× | {:.2}× |",
            e.connections,
            short(e),
            short(m),
            short(f),
            ratio(f, e),
            ratio(f, m),
        );
    }
}

/// The size of everything under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The requester of the `n`th record of `of`: `of / 100` people.
fn principal(n: usize, of: usize) -> Principal {
    let people = (of / PER_REQUESTER).max(1);
    Principal {
        sub: format!("user-{}", n % people),
        email: Some(format!("user-{}@example.com", n % people)),
        groups: vec![format!("team-{}", n % TEAMS)],
    }
}

fn event(request: &Request, seq: u64, kind: EventKind, at: OffsetDateTime) -> RequestEvent {
    RequestEvent {
        request_id: request.id,
        seq,
        at,
        actor: "worker".to_owned(),
        kind,
        status: request.status,
        component: None,
        message: Some(format!("{} of {}", kind.as_str(), request.target)),
        detail: Default::default(),
    }
}

/// Loads the full store straight through the stores, in batches that share commits.
async fn load(data: &std::path::Path, sizes: &Sizes) {
    let db = Db::open(data).expect("database");
    let requests: Arc<dyn RequestStore> = Arc::new(SqliteRequestStore::new(db.clone()));
    let resources: Arc<dyn ResourceStore> = Arc::new(SqliteResourceStore::new(db.clone()));
    let audit: Arc<dyn AuditLog> = Arc::new(SqliteAuditLog::new(db));
    let now = OffsetDateTime::now_utc();
    // A year of history, oldest first.
    let span = Duration::from_secs(365 * 24 * 3600);
    let at = |n: usize, of: usize| now - span + span.mul_f64(n as f64 / of.max(1) as f64);

    let started = Instant::now();
    for chunk in (0..sizes.requests).collect::<Vec<_>>().chunks(4_000) {
        let mut writes = tokio::task::JoinSet::new();
        for &n in chunk {
            let store = requests.clone();
            let created = at(n, sizes.requests);
            let requester = principal(n, sizes.requests);
            writes.spawn(async move {
                let status = match n % 10 {
                    0 => RequestStatus::Failed,
                    1 => RequestStatus::Cancelled,
                    2 => RequestStatus::Rejected,
                    _ => RequestStatus::Completed,
                };
                let fields = json!({"name": format!("app-{n}"), "environment": "dev", "size": 2})
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                let mut request = Request {
                    fingerprint: format!("{n:016x}"),
                    ..Request::submitted(
                        TargetKind::Item,
                        &format!("item-{}", n % 10_000),
                        "bench",
                        &format!("team-{}", n % TEAMS),
                        &requester,
                        fields,
                        created,
                    )
                };
                store
                    .create(
                        &request,
                        &event(&request, 1, EventKind::Submitted, created),
                        "",
                    )
                    .await
                    .expect("create");
                let later = created + Duration::from_secs(2);
                store
                    .append(
                        &request.id,
                        &[
                            event(&request, 2, EventKind::FulfillmentStarted, later),
                            event(&request, 3, EventKind::ActionSucceeded, later),
                        ],
                    )
                    .await
                    .expect("append");
                request.status = status;
                request.version = 2;
                request.updated_at = later;
                let end = match status {
                    RequestStatus::Failed => EventKind::Failed,
                    RequestStatus::Cancelled => EventKind::Cancelled,
                    RequestStatus::Rejected => EventKind::Rejected,
                    _ => EventKind::Completed,
                };
                store
                    .update(&request, &event(&request, 4, end, later))
                    .await
                    .expect("update");
            });
        }
        while writes.join_next().await.is_some() {}
    }
    println!(
        "requests written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    for chunk in (0..sizes.resources).collect::<Vec<_>>().chunks(4_000) {
        let mut writes = tokio::task::JoinSet::new();
        for &n in chunk {
            let store = resources.clone();
            let created = at(n, sizes.resources);
            let requester = principal(n, sizes.resources).sub;
            writes.spawn(async move {
                let mut resource = Resource {
                    inputs: json!({"name": format!("app-{n}"), "environment": "dev"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    outputs: json!({"id": format!("thing-{n}"), "endpoint": format!("https://things.example/{n}")})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    ..Resource::provisioned(
                        &format!("res-{n:08}"),
                        &format!("item-{}", n % 10_000),
                        "bench",
                        &format!("team-{}", n % TEAMS),
                        &requester,
                        RequestId::new_at(created),
                        created,
                    )
                };
                let change = |r: &Resource, kind| r.change(kind, "worker");
                store
                    .create(&resource, &change(&resource, ChangeKind::Provisioned))
                    .await
                    .expect("create");
                resource.version = 2;
                resource.serial = 2;
                resource.updated_at = created + Duration::from_secs(60);
                if n % 7 == 0 {
                    resource.status = ResourceStatus::Drifted;
                }
                store
                    .update(&resource, Some(&change(&resource, ChangeKind::Updated)))
                    .await
                    .expect("update");
            });
        }
        while writes.join_next().await.is_some() {}
    }
    println!(
        "resources written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    for chunk in (0..sizes.audit).collect::<Vec<_>>().chunks(10_000) {
        for &n in chunk {
            let when = at(n, sizes.audit);
            audit
                .append(&AuditEntry {
                    id: uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                        uuid::NoContext,
                        when.unix_timestamp() as u64,
                        when.nanosecond(),
                    ))
                    .to_string(),
                    at: when,
                    actor: principal(n, sizes.audit).sub,
                    action: "POST /requests".to_owned(),
                    target: Some(format!("req-{n}")),
                    source: Some("10.0.0.1".to_owned()),
                    outcome: 201,
                    detail: None,
                    correlation_id: format!("corr-{n}"),
                })
                .await
                .expect("append");
        }
        // Entries are queued on the database's thread: a list waits for them.
        audit
            .list(&shared::ports::AuditQuery {
                limit: 1,
                ..Default::default()
            })
            .await
            .expect("list");
    }
    println!(
        "audit entries written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Starts local mode on `data` and measures every call at 256 and 1,024 connections.
async fn run(
    label: &str,
    catalog: &std::path::Path,
    data: &std::path::Path,
    sizes: &Sizes,
) -> Vec<(String, Figures)> {
    let config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: catalog.to_owned(),
        data_dir: data.to_owned(),
        // The API alone: requests posted wait in the queue.
        worker: false,
        ..Config::default()
    };
    let local = orchestrator_tests::load::start_local(&config, 1_024).await;
    let secret = shared::local::dev_secret(
        &config,
        &shared::adapters::local::LocalSecrets::from_pairs([]),
    )
    .await
    .expect("dev secret");
    let token = |sub: &str, groups: &[String]| {
        shared::http::auth::dev_token(&secret, sub, None, groups, Duration::from_secs(7200))
            .expect("token")
    };
    let requester = token("user-7", &["developers".to_owned()]);
    let member = token("user-8", &["team-7".to_owned()]);
    let admin = token("root", std::slice::from_ref(&config.auth.admin_group));
    let base = local.base.clone();
    // Warm up: the first calls of a process pay for its caches and connections.
    let (client, url, warm) = (
        local.client.clone(),
        format!("{base}/requests?limit=20"),
        requester.clone(),
    );
    let make: MakeCall = Arc::new(move |_| client.get(&url).bearer_auth(&warm));
    measure(256, 2_000, make).await;

    // A cursor deep in the admin's list of failed requests (as deep as it goes, at most
    // 10,000 requests in).
    let mut deep = None;
    for _ in 0..50 {
        let mut url = format!("{base}/requests?status=failed&limit=200");
        if let Some(cursor) = &deep {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = local
            .client
            .get(url)
            .bearer_auth(&admin)
            .send()
            .await
            .expect("a page")
            .json()
            .await
            .expect("json");
        match page["next"].as_str() {
            Some(next) => deep = Some(next.to_owned()),
            None => break,
        }
    }
    let deep = deep.map(|c| format!("&cursor={c}")).unwrap_or_default();

    let gets: Vec<(&str, String, &String)> = vec![
        (
            "GET /requests (a requester's own)",
            "/requests?limit=20".to_owned(),
            &requester,
        ),
        (
            "GET /requests?owner= (a team member)",
            "/requests?owner=team-7&limit=20".to_owned(),
            &member,
        ),
        (
            "GET /requests?status=failed (admin)",
            "/requests?status=failed&limit=20".to_owned(),
            &admin,
        ),
        (
            "GET /requests?status=failed&cursor=(deep) (admin)",
            format!("/requests?status=failed&limit=20{deep}"),
            &admin,
        ),
        (
            "GET /resources?owner=&status=ready (admin)",
            "/resources?owner=team-7&status=ready&limit=20".to_owned(),
            &admin,
        ),
        (
            "GET /audit?actor= (admin)",
            "/audit?actor=user-7&limit=20".to_owned(),
            &admin,
        ),
        (
            "GET /catalog/items?q= (text query)",
            "/catalog/items?q=generated&limit=50".to_owned(),
            &requester,
        ),
    ];
    let mut figures = Vec::new();
    for connections in [256, 1_024] {
        let (client, url, token) = (
            local.client.clone(),
            format!("{base}/requests"),
            requester.clone(),
        );
        let offset = connections * 1_000_000;
        let post: MakeCall = Arc::new(move |n| {
            client.post(&url).bearer_auth(&token).json(&json!({
                "item": "item-1",
                "fields": {"name": format!("bench-{}", offset + n), "environment": "dev"}
            }))
        });
        let measured = measure(connections, sizes.calls, post).await;
        println!("{label:>5} POST /requests {measured}");
        figures.push(("POST /requests".to_owned(), measured));
        for (name, path, token) in &gets {
            let (client, url, token) = (
                local.client.clone(),
                format!("{base}{path}"),
                (*token).clone(),
            );
            let make: MakeCall = Arc::new(move |_| client.get(&url).bearer_auth(&token));
            let measured = measure(connections, sizes.calls, make).await;
            println!("{label:>5} {name} {measured}");
            figures.push(((*name).to_owned(), measured));
        }
    }
    local.running.stop().await.expect("clean stop");
    figures
}
