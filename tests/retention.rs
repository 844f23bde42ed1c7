//! Retention in local mode, black-box: audit entries and ended requests' timelines past
//! their configured days are exported as JSON Lines to the export directory and only then
//! removed; what is younger, and the timelines of requests still running, stay; an export
//! that cannot be written removes nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use orchestrator_tests::app::App;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use shared::adapters::local::{Db, SqliteAuditLog, SqliteRequestStore};
use shared::config::Config;
use shared::ports::{AuditLog, AuditQuery, RequestStore};
use shared::requests::model::{AuditEntry, EventKind, RequestId, RequestStatus};
use shared::testkit::requests::{event, request};
use time::OffsetDateTime;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// An audit entry recorded at `at` (its id a UUIDv7 of that time).
fn entry(at: OffsetDateTime, n: usize) -> AuditEntry {
    AuditEntry {
        id: RequestId::backdated(at).to_string(),
        at,
        actor: format!("user-{}", n % 3),
        action: "POST /requests".to_owned(),
        target: Some(format!("r{n}")),
        source: Some("10.0.0.1".to_owned()),
        outcome: 202,
        detail: None,
        correlation_id: format!("old-{n}"),
    }
}

/// What the data directory holds before local mode starts: the ids of old and young
/// audit entries, and of old ended, old running and young ended requests.
struct Seeded {
    old_audit: Vec<String>,
    young_audit: Vec<String>,
    old_ended: Vec<String>,
    old_running: String,
    young_ended: String,
}

/// A request made at `at`, with a timeline of four events, left in `status`.
async fn stored_request(
    store: &SqliteRequestStore,
    at: OffsetDateTime,
    status: RequestStatus,
) -> String {
    // An item without service levels: no watch adds to a running request's timeline.
    let mut r = request("alice", "messaging", "sns-topic", at, None);
    r.id = RequestId::backdated(at);
    store
        .create(&r, &event(&r, EventKind::Submitted), "")
        .await
        .unwrap();
    r.version = 2;
    r.updated_at = at + Duration::from_secs(1);
    r.status = RequestStatus::InProgress;
    store
        .update(&r, &event(&r, EventKind::FulfillmentStarted))
        .await
        .unwrap();
    store
        .append(&r.id, &[event(&r, EventKind::ActionSucceeded)])
        .await
        .unwrap();
    if status != RequestStatus::InProgress {
        r.version = 3;
        r.status = status;
        store
            .update(&r, &event(&r, EventKind::reaching(status)))
            .await
            .unwrap();
    }
    r.id.to_string()
}

async fn seed(data: &Path) -> Seeded {
    let db = Db::open(data).unwrap();
    let audit = SqliteAuditLog::new(db.clone());
    let requests = SqliteRequestStore::new(db);
    let now = OffsetDateTime::now_utc();
    let mut seeded = Seeded {
        old_audit: Vec::new(),
        young_audit: Vec::new(),
        old_ended: Vec::new(),
        old_running: String::new(),
        young_ended: String::new(),
    };
    for n in 0..30 {
        let e = entry(now - 90 * DAY + Duration::from_secs(n as u64), n);
        audit.append(&e).await.unwrap();
        seeded.old_audit.push(e.id);
    }
    for n in 0..5 {
        let e = entry(now - DAY + Duration::from_secs(n as u64), 100 + n);
        audit.append(&e).await.unwrap();
        seeded.young_audit.push(e.id);
    }
    // Appends are queued: a read waits for them.
    audit
        .list(&AuditQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    for (n, status) in [
        RequestStatus::Completed,
        RequestStatus::Failed,
        RequestStatus::Cancelled,
        RequestStatus::Rejected,
    ]
    .into_iter()
    .cycle()
    .take(12)
    .enumerate()
    {
        let at = now - 100 * DAY + Duration::from_secs(60 * n as u64);
        seeded
            .old_ended
            .push(stored_request(&requests, at, status).await);
    }
    seeded.old_running =
        stored_request(&requests, now - 100 * DAY, RequestStatus::InProgress).await;
    seeded.young_ended = stored_request(&requests, now - 2 * DAY, RequestStatus::Completed).await;
    seeded
}

fn config(dir: &Path, exports: PathBuf) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: orchestrator_tests::example_catalog(),
        data_dir: dir.join("data"),
        ..Config::default()
    };
    config.resources.reconcile_seconds = 0;
    config.retention.timeline_days = 30;
    config.retention.audit_days = 60;
    config.retention.export_dir = Some(exports);
    config.retention.every_seconds = 1;
    config
}

/// Every JSON line of every file under `dir` whose path contains `kind`.
fn exported(dir: &Path, kind: &str) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.to_string_lossy().contains(kind) {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(text.ends_with('\n'), "whole lines: {}", path.display());
                for line in text.lines() {
                    out.push((path.clone(), serde_json::from_str(line).unwrap()));
                }
            }
        }
    }
    out
}

async fn audit_ids(app: &App, admin: &str) -> Vec<String> {
    let (status, page) = app.call(Method::GET, "/audit?limit=500", admin, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn timeline(app: &App, admin: &str, id: &str) -> Vec<Value> {
    let (status, events) = app
        .call(Method::GET, &format!("/requests/{id}/events"), admin, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    events["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{events}"))
        .clone()
}

#[tokio::test]
async fn what_is_past_its_days_is_exported_then_removed_and_the_rest_stays() {
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    let config = config(dir.path(), exports.clone());
    let seeded = seed(&config.data_dir).await;
    let app = App::start(&config).await;
    let admin = app.token_for(&config, "root", &["platform-admins"]).await;

    // Wait for the steps to have gone through everything old.
    let mut audit = Vec::new();
    for _ in 0..300 {
        audit = audit_ids(&app, &admin).await;
        let archived = timeline(&app, &admin, seeded.old_ended.last().unwrap()).await;
        if audit.iter().all(|id| !seeded.old_audit.contains(id))
            && archived.len() == 1
            && exported(&exports, "timelines").len() == 12
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Audit: the old entries are in the export, whole, and gone from the log; the young
    // ones stay.
    assert!(
        audit.iter().all(|id| !seeded.old_audit.contains(id)),
        "{audit:?}"
    );
    for id in &seeded.young_audit {
        assert!(audit.contains(id), "{id} is younger than 60 days");
    }
    let lines = exported(&exports, "audit");
    let mut ids: Vec<String> = lines
        .iter()
        .map(|(_, e)| e["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, seeded.old_audit, "each old entry exported once");
    assert_eq!(lines[0].1["action"], "POST /requests");
    assert_eq!(lines[0].1["source"], "10.0.0.1");

    // Timelines: each old ended request keeps its record and one marker event naming
    // the export, which holds the request and its four events.
    let lines = exported(&exports, "timelines");
    let files: std::collections::BTreeSet<&PathBuf> = lines.iter().map(|(p, _)| p).collect();
    assert_eq!(lines.len(), 12, "{files:?}");
    for id in &seeded.old_ended {
        let events = timeline(&app, &admin, id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["kind"], "timeline_archived");
        assert_eq!(events[0]["actor"], "retention");
        let archive = events[0]["detail"]["archive"].as_str().unwrap();
        let file = archive.strip_prefix("file://").unwrap();
        let (_, line) = lines
            .iter()
            .find(|(path, line)| path == Path::new(file) && line["request"]["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} is not in {archive}"));
        let kinds: Vec<&str> = line["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        assert_eq!(
            kinds[..3],
            ["submitted", "fulfillment_started", "action_succeeded"]
        );
        let (status, request) = app
            .call(Method::GET, &format!("/requests/{id}"), &admin, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            request["status"], line["request"]["status"],
            "the request stays"
        );
    }
    // A request still running, and a young one, keep their timelines.
    assert_eq!(timeline(&app, &admin, &seeded.old_running).await.len(), 3);
    assert_eq!(timeline(&app, &admin, &seeded.young_ended).await.len(), 4);
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn an_export_that_cannot_be_written_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the export directory should be: every export fails.
    let exports = dir.path().join("exports");
    std::fs::write(&exports, "not a directory").unwrap();
    let config = config(dir.path(), exports);
    let seeded = seed(&config.data_dir).await;
    let app = App::start(&config).await;
    let admin = app.token_for(&config, "root", &["platform-admins"]).await;
    // Steps run every second: give them a few.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let audit = audit_ids(&app, &admin).await;
    for id in seeded.old_audit.iter().chain(&seeded.young_audit) {
        assert!(audit.contains(id), "{id} was removed without an export");
    }
    for id in &seeded.old_ended {
        assert_eq!(timeline(&app, &admin, id).await.len(), 4, "{id}");
    }
    app.running.stop().await.unwrap();
}
