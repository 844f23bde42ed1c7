//! The fault suite: many requests of an item and of a three-component bundle (a parallel
//! pair, then one that needs both) against a flaky target that honours `Idempotency-Key`
//! (503 and 429 with `Retry-After`, answers slower than the attempt's timeout), with
//! `orchestrator serve` SIGKILLed halfway through the submissions and restarted on the
//! same data. Afterwards every request has ended, none was lost or duplicated, and the
//! target holds exactly what completed requests own: no orphans, every rolled-back thing
//! deleted. Some bundles are made to fail in one branch.
//!
//! Run twice at once: with attempts that outlast the slow answers, and with a short
//! `attemptTimeout` that cuts them off (their outcome unknown until the retry with the
//! same key learns it). `FAULT_REQUESTS` sets how many requests each run submits (60 by
//! default; the figures in docs/benchmarks.md are for 1,000):
//!
//! ```text
//! FAULT_REQUESTS=1000 cargo test --release -p orchestrator-cli --test faults -- --nocapture
//! ```
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use orchestrator_tests::process::{Serve, start};
use orchestrator_tests::things::{Faults, Things, thing_item, things_bundle};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_orchestrator");

/// One bundle in this many is made to fail in a branch (2 %).
const FAILING_BUNDLE_EVERY: usize = 50;

/// At most this many submissions in flight.
const SUBMITTERS: usize = 32;

fn serve(config: &Path) -> Serve {
    let mut command = Command::new(BIN);
    command.arg("serve").arg("--config").arg(config);
    start(command)
}

fn token(config: &Path) -> String {
    let out = Command::new(BIN)
        .args([
            "dev-token",
            "--sub",
            "faults",
            "--groups",
            "developers",
            "--config",
        ])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// What one request is.
#[derive(Debug, Clone)]
enum Kind {
    Item,
    Bundle { fails: bool },
}

/// The `i`th request: 80 % items, 20 % bundles, one bundle in fifty failing in a branch.
fn request(i: usize) -> (Kind, Value) {
    if i % 5 == 4 {
        let bundle = i / 5;
        let fails = bundle.is_multiple_of(FAILING_BUNDLE_EVERY);
        let b = if fails {
            format!("fail-b{i}")
        } else {
            format!("b{i}")
        };
        (
            Kind::Bundle { fails },
            json!({"bundle": "trio", "fields": {"a": format!("a{i}"), "b": b, "c": format!("c{i}")}}),
        )
    } else {
        (
            Kind::Item,
            json!({"item": "thing", "fields": {"name": format!("t{i}")}}),
        )
    }
}

/// The figures of one run.
#[derive(Debug)]
#[allow(dead_code)] // Read through Debug, in the report.
struct Figures {
    label: &'static str,
    requests: usize,
    completed: usize,
    failed: usize,
    made: u64,
    removed: u64,
    alive: usize,
    orphans: usize,
    faults_answered: u64,
    slow_answers: u64,
    calls: u64,
    /// Requests accepted and not ended when the server was killed.
    open_at_kill: usize,
    seconds: f64,
}

/// Submits `i` until the server takes it (the same Idempotency-Key every time, so a
/// retry across the crash cannot make a second request); returns its id.
async fn submit(client: &reqwest::Client, base: &RwLock<String>, token: &str, i: usize) -> String {
    let (_, body) = request(i);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let url = format!("{}/requests", base.read().unwrap());
        let sent = client
            .post(url)
            .bearer_auth(token)
            .header("idempotency-key", format!("fault-{i}"))
            .json(&body)
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            if status == 200 || status == 202 {
                return answer["id"].as_str().unwrap().to_owned();
            }
            assert!(
                status.is_server_error(),
                "request {i} refused: {status} {answer}"
            );
        }
        assert!(Instant::now() < deadline, "request {i} was never accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ended(request: &Value) -> bool {
    ["completed", "failed", "rejected", "cancelled"]
        .contains(&request["status"].as_str().unwrap_or_default())
}

/// Every request of the caller, by id, paging through `GET /requests`.
async fn all_requests(
    client: &reqwest::Client,
    base: &str,
    token: &str,
) -> Option<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/requests?limit=200");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        for r in page["items"].as_array()? {
            out.insert(r["id"].as_str()?.to_owned(), r.clone());
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Some(out),
        }
    }
}

async fn run(label: &'static str, requests: usize, attempt_timeout: &str, seed: u64) -> Figures {
    let began = Instant::now();
    let target = Things::start(Faults {
        unavailable: 0.10,
        throttled: 0.05,
        slow: 0.03,
        slow_delay: Duration::from_millis(1500),
        retry_after: 1,
        named_delay: Duration::ZERO,
        seed,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::write_catalog(
        dir.path(),
        &[
            ("items/thing.yaml", thing_item(attempt_timeout)),
            (
                "bundles/trio.yaml",
                things_bundle(
                    "trio",
                    &[("a", &[]), ("b", &[]), ("c", &["a", "b"])],
                    "rollback",
                ),
            ),
        ],
    );
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        json!({
            "listen": "127.0.0.1:0",
            "catalogDir": catalog,
            "dataDir": dir.path().join("data"),
            "portalDir": dir.path().join("no-portal"),
            "environment": {"thingsUrl": target.uri()},
        })
        .to_string(),
    )
    .unwrap();
    let token = token(&config);
    let first = serve(&config);
    let base = Arc::new(RwLock::new(first.base.clone()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Submit, and SIGKILL the server once half the requests are in.
    let accepted = Arc::new(tokio::sync::Mutex::new(HashMap::new()));
    let slots = Arc::new(tokio::sync::Semaphore::new(SUBMITTERS));
    let (halfway_tx, halfway_rx) = tokio::sync::oneshot::channel::<()>();
    let halfway_tx = Arc::new(std::sync::Mutex::new(Some(halfway_tx)));
    let mut submitters = tokio::task::JoinSet::new();
    for i in 0..requests {
        let permit = slots.clone().acquire_owned().await.unwrap();
        let (client, base, token, accepted, halfway_tx) = (
            client.clone(),
            base.clone(),
            token.clone(),
            accepted.clone(),
            halfway_tx.clone(),
        );
        submitters.spawn(async move {
            let id = submit(&client, &base, &token, i).await;
            let mut accepted = accepted.lock().await;
            accepted.insert(i, id);
            if accepted.len() == requests / 2
                && let Some(tx) = halfway_tx.lock().unwrap().take()
            {
                let _ = tx.send(());
            }
            drop(permit);
        });
        if i == requests / 2 {
            // Wait for the kill before submitting the second half.
            break;
        }
    }
    let _ = halfway_rx.await;
    let open_at_kill = all_requests(&client, &first.base, &token)
        .await
        .map_or(0, |listed| listed.values().filter(|r| !ended(r)).count());
    let first_logs = first.logs.clone();
    first.kill();
    let second = serve(&config);
    *base.write().unwrap() = second.base.clone();
    for i in requests / 2 + 1..requests {
        let permit = slots.clone().acquire_owned().await.unwrap();
        let (client, base, token, accepted) = (
            client.clone(),
            base.clone(),
            token.clone(),
            accepted.clone(),
        );
        submitters.spawn(async move {
            let id = submit(&client, &base, &token, i).await;
            accepted.lock().await.insert(i, id);
            drop(permit);
        });
    }
    while let Some(done) = submitters.join_next().await {
        done.unwrap();
    }
    let accepted = accepted.lock().await.clone();
    assert_eq!(accepted.len(), requests, "every request was accepted");

    // Wait for every request to end.
    let deadline = Instant::now() + Duration::from_secs(900);
    let listed = loop {
        if let Some(listed) = all_requests(&client, &second.base, &token).await {
            let open = listed.values().filter(|r| !ended(r)).count();
            if open == 0 {
                break listed;
            }
            assert!(
                Instant::now() < deadline,
                "{label}: {open} requests still open: {:?}",
                listed
                    .values()
                    .filter(|r| !ended(r))
                    .map(|r| (r["id"].clone(), r["status"].clone()))
                    .take(5)
                    .collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // None lost, none duplicated: exactly the accepted requests, one per key.
    let ids: std::collections::BTreeSet<&String> = accepted.values().collect();
    assert_eq!(ids.len(), requests, "{label}: two keys gave one request");
    assert_eq!(
        listed.len(),
        requests,
        "{label}: requests listed besides the accepted ones"
    );
    for id in &ids {
        assert!(listed.contains_key(*id), "{label}: request {id} was lost");
    }

    // Each ends as designed; the target holds exactly what completed requests own.
    let census = target.census();
    let mut owned: HashMap<&str, usize> = HashMap::new();
    for thing in census.things.values() {
        *owned.entry(thing.request.as_str()).or_default() += 1;
    }
    let (mut completed, mut failed, mut orphans) = (0, 0, 0);
    for (i, id) in &accepted {
        let status = listed[id]["status"].as_str().unwrap_or_default();
        let (kind, _) = request(*i);
        let (expected_status, expected_things) = match kind {
            Kind::Item => ("completed", 1),
            Kind::Bundle { fails: false } => ("completed", 3),
            Kind::Bundle { fails: true } => ("failed", 0),
        };
        assert_eq!(
            status, expected_status,
            "{label}: request {i} ({id}) ended {status}: {:#}",
            listed[id]
        );
        match status {
            "completed" => completed += 1,
            _ => failed += 1,
        }
        let held = owned.remove(id.as_str()).unwrap_or(0);
        if held < expected_things {
            let timeline: Value = client
                .get(format!("{}/requests/{id}/events", second.base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let removed: Vec<_> = census
                .removals
                .iter()
                .filter(|(_, thing)| thing.request == *id)
                .collect();
            let failed: Vec<_> = listed
                .values()
                .filter(|r| r["status"] != "completed")
                .map(|r| r["id"].clone())
                .collect();
            let logged: Vec<String> = [&first_logs, &second.logs]
                .iter()
                .flat_map(|logs| logs.lock().unwrap().clone())
                .filter(|line| line.contains(id.as_str()))
                .collect();
            panic!(
                "{label}: request {i} ({id}) ended {status} but the target holds {held} of its \
                 {expected_things} things; removed: {removed:?}; requests not completed: \
                 {failed:?}; every removal: {:?}; its timeline: {timeline:#}; its logs:\n{}",
                census.removals,
                logged.join("\n")
            );
        }
        orphans += held - expected_things;
    }
    // Things no request owns at all.
    orphans += owned.values().sum::<usize>();
    let alive = census.things.len();
    second.kill();
    Figures {
        label,
        requests,
        completed,
        failed,
        made: census.made,
        removed: census.removed,
        alive,
        orphans,
        faults_answered: census.refused_for_faults,
        slow_answers: census.slow_answers,
        calls: census.calls,
        open_at_kill,
        seconds: began.elapsed().as_secs_f64(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_faults_and_a_crash_every_request_ends_and_nothing_is_orphaned() {
    let requests: usize = std::env::var("FAULT_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    let (long, short) = tokio::join!(
        run("attempts outlast slow answers", requests, "30s", 7),
        run("short attemptTimeout (1s)", requests, "1s", 11),
    );
    for figures in [&long, &short] {
        println!("{figures:?}");
        assert_eq!(figures.orphans, 0, "{figures:?}");
        assert!(
            figures.open_at_kill > 0,
            "the kill found work under way: {figures:?}"
        );
        assert_eq!(
            figures.made - figures.removed,
            figures.alive as u64,
            "every rolled-back thing was deleted: {figures:?}"
        );
    }
}
