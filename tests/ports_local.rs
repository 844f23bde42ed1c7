//! The ports' behaviour suites against the embedded adapters (SQLite on disk).

use std::sync::Arc;

use shared::adapters::local::{
    Db, LocalSecrets, SqliteAuditLog, SqliteQueue, SqliteRequestStore, SqliteResourceStore,
    SqliteStateStore,
};
use shared::testkit::{self, ManualClock};

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    (dir, db)
}

#[tokio::test]
async fn the_sqlite_request_store_passes_the_request_store_suite() {
    let (_dir, db) = db();
    testkit::requests::run(&SqliteRequestStore::new(db)).await;
}

#[tokio::test]
async fn the_sqlite_request_store_with_an_outbox_passes_the_suite_too() {
    let (_dir, db) = db();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let queue = SqliteQueue::new(db.clone(), "actions", 5, clock);
    testkit::requests::run(&SqliteRequestStore::with_outbox(db, queue.outbox())).await;
}

/// A new request and its handoff message are written together: the message is on the
/// queue exactly when the request is stored, once, and a replay or a failed write sends
/// none.
#[tokio::test]
async fn the_outbox_sends_a_new_requests_handoff_in_the_transaction_that_stores_it() {
    use shared::ports::{Created, Queue, RequestStore};
    use testkit::requests::{event, request};
    let (_dir, db) = db();
    let now = time::OffsetDateTime::now_utc();
    let clock = Arc::new(ManualClock::new(now));
    let queue = SqliteQueue::new(db.clone(), "actions", 5, clock);
    let store = SqliteRequestStore::with_outbox(db, queue.outbox());
    let visibility = std::time::Duration::from_secs(30);

    let first = request("alice", "data", "postgres", now, Some("key-1"));
    let created = store
        .create(
            &first,
            &event(&first, shared::requests::model::EventKind::Submitted),
            r#"{"requestId":"first"}"#,
        )
        .await
        .unwrap();
    assert_eq!(created, Created::New { handed_off: true });
    // Woken at once, not after a poll interval.
    tokio::time::timeout(
        std::time::Duration::from_secs(1),
        queue.wait(std::time::Duration::from_secs(60)),
    )
    .await
    .expect("the outbox wakes a waiting receiver");

    // An idempotent replay is not handed off again.
    let replay = request("alice", "data", "postgres", now, Some("key-1"));
    let created = store
        .create(
            &replay,
            &event(&replay, shared::requests::model::EventKind::Submitted),
            r#"{"requestId":"replay"}"#,
        )
        .await
        .unwrap();
    assert!(matches!(created, Created::Existing(_)));
    // A write that fails (the same id twice) leaves no message behind.
    let mut same_id = first.clone();
    same_id.idempotency_key = None;
    let failed = store
        .create(
            &same_id,
            &event(&same_id, shared::requests::model::EventKind::Submitted),
            r#"{"requestId":"failed"}"#,
        )
        .await;
    assert!(
        failed.is_err(),
        "a second request with the same id is refused"
    );

    let bodies: Vec<String> = queue
        .receive(10, visibility)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, vec![r#"{"requestId":"first"}"#.to_owned()]);
}

#[tokio::test]
async fn the_sqlite_resource_store_passes_the_resource_store_suite() {
    let (_dir, db) = db();
    testkit::resources::run(&SqliteResourceStore::new(db)).await;
}

#[tokio::test]
async fn the_sqlite_state_store_passes_the_state_store_suite() {
    let (_dir, db) = db();
    testkit::state::run(&SqliteStateStore::new(db)).await;
}

#[tokio::test]
async fn the_sqlite_state_store_keeps_catalog_versions_of_any_size() {
    let (_dir, db) = db();
    testkit::catalog_versions::run(&SqliteStateStore::new(db)).await;
}

#[tokio::test]
async fn local_secrets_pass_the_secrets_suite() {
    let (name, value) = testkit::secrets::KNOWN;
    let secrets = LocalSecrets::from_pairs([(name.to_owned(), value.to_owned())]);
    testkit::secrets::run(&secrets).await;
}

#[tokio::test]
async fn the_sqlite_audit_log_passes_the_audit_suite() {
    let (_dir, db) = db();
    testkit::audit::run(&SqliteAuditLog::new(db)).await;
}

#[tokio::test]
async fn the_sqlite_queue_passes_the_queue_suite() {
    let (_dir, db) = db();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let queue = SqliteQueue::new(db, "actions", testkit::queue::MAX_RECEIVES, clock.clone());
    testkit::queue::run(&queue, clock.as_ref()).await;
}

#[tokio::test]
async fn a_reconciliation_pass_on_the_embedded_adapters_resumes_and_counts_each_batch_once() {
    let (_dir, db) = db();
    let clock = Arc::new(shared::ports::SystemClock);
    testkit::reconcile::run(
        Arc::new(SqliteResourceStore::new(db.clone())),
        Arc::new(SqliteStateStore::new(db.clone())),
        Arc::new(SqliteQueue::new(
            db,
            "actions",
            testkit::queue::MAX_RECEIVES,
            clock,
        )),
    )
    .await;
}

#[tokio::test]
async fn a_directory_passes_the_archive_suite_and_refuses_keys_outside_it() {
    use shared::ports::Archive;
    let dir = tempfile::tempdir().unwrap();
    let archive = shared::adapters::local::DirArchive::new(dir.path().join("exports"));
    testkit::archive::run(&archive).await;
    for key in ["../escape.jsonl", "/etc/passwd", "a/../../b", ""] {
        assert!(
            matches!(
                archive.put(key, b"x").await,
                Err(shared::ports::StoreError::Corrupt(_))
            ),
            "{key}"
        );
    }
    // Nothing half written is left beside the exports.
    let mut names = Vec::new();
    let mut folders = vec![dir.path().to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap().flatten() {
            if entry.path().is_dir() {
                folders.push(entry.path());
            } else {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    assert!(names.iter().all(|n| n.ends_with(".jsonl")), "{names:?}");
}

/// A message dead-lettered during a receive does not take the place of a live one, even
/// when the receive asks for a single message (as the worker mostly does).
#[tokio::test]
async fn a_message_dead_lettered_on_receive_leaves_its_place_to_the_next() {
    use shared::ports::Queue;
    use shared::testkit::TimeControl;
    let (_dir, db) = db();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let queue = SqliteQueue::new(db, "actions", 1, clock.clone());
    let visibility = std::time::Duration::from_secs(2);
    queue
        .send("spent", std::time::Duration::ZERO)
        .await
        .unwrap();
    let first = queue.receive(1, visibility).await.unwrap();
    assert_eq!(first[0].body, "spent");
    clock.advance(visibility * 2).await;
    // Sent after `spent` became visible again, so `spent` comes first in line.
    queue.send("live", std::time::Duration::ZERO).await.unwrap();
    let got = queue.receive(1, visibility).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["live"]
    );
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(
        dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["spent"]
    );
}

#[tokio::test]
async fn queued_messages_survive_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    {
        let queue = SqliteQueue::new(Db::open(dir.path()).unwrap(), "actions", 3, clock.clone());
        shared::ports::Queue::send(&queue, "durable", std::time::Duration::ZERO)
            .await
            .unwrap();
    }
    let queue = SqliteQueue::new(Db::open(dir.path()).unwrap(), "actions", 3, clock);
    let got = shared::ports::Queue::receive(&queue, 10, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["durable"]
    );
}

mod workflows {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::{Value, json};
    use shared::adapters::local::{Db, LocalWorkflows, QueueTarget, SqliteQueue};
    use shared::ports::{Queue, Workflows};
    use shared::testkit::{self, ManualClock, TimeControl};

    const URL: &str = "https://sqs.local/000000000000/actions";

    fn engine(db: &Db, clock: Arc<ManualClock>) -> (LocalWorkflows, SqliteQueue) {
        let queue = SqliteQueue::new(db.clone(), "actions", 5, clock.clone());
        let workflows = LocalWorkflows::new(
            db.clone(),
            clock,
            "local",
            vec![("${QueueUrl}".to_owned(), URL.to_owned())],
            vec![QueueTarget {
                url: URL.to_owned(),
                outbox: queue.outbox(),
            }],
        );
        (workflows, queue)
    }

    /// Manual time: moving the clock fires the timers that came due, as the timer loop
    /// would.
    struct Timers {
        clock: Arc<ManualClock>,
        workflows: LocalWorkflows,
    }

    #[async_trait::async_trait]
    impl TimeControl for Timers {
        async fn advance(&self, by: Duration) {
            self.clock.advance(by).await;
            self.workflows.fire_due_timers().await.unwrap();
        }
    }

    #[tokio::test]
    async fn the_local_engine_passes_the_workflows_suite() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let (workflows, queue) = engine(&db, clock.clone());
        let timers = Timers {
            clock,
            workflows: workflows.clone(),
        };
        testkit::workflows::run(&workflows, &queue, &timers).await;
    }

    /// Two tasks in sequence; the first one's answer is recorded before the "crash".
    fn two_steps() -> Value {
        let task = |next: Option<&str>| {
            let mut t = json!({
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": "${QueueUrl}", "MessageBody": {"token.$": "$$.Task.Token", "state.$": "$$.State.Name"}},
                "ResultPath": "$.last",
            });
            match next {
                Some(n) => t["Next"] = json!(n),
                None => t["End"] = json!(true),
            }
            t
        };
        json!({"StartAt": "One", "States": {"One": task(Some("Wait")), "Wait": {"Type": "Wait", "Seconds": 60, "Next": "Two"}, "Two": task(None)}})
    }

    async fn take(queue: &SqliteQueue) -> Value {
        let got = queue.receive(10, Duration::from_secs(30)).await.unwrap();
        assert_eq!(got.len(), 1, "exactly one task message: {got:?}");
        queue.delete(&got[0].receipt).await.unwrap();
        serde_json::from_str(&got[0].body).unwrap()
    }

    #[tokio::test]
    async fn a_new_process_resumes_running_executions_without_rerunning_finished_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let arn = {
            let db = Db::open(dir.path()).unwrap();
            let (workflows, queue) = engine(&db, clock.clone());
            workflows.deploy("steps", &two_steps()).await.unwrap();
            let arn = workflows.start("steps", "req", &json!({})).await.unwrap();
            let first = take(&queue).await;
            assert_eq!(first["state"], "One");
            workflows
                .send_task_success(first["token"].as_str().unwrap(), &json!("one done"))
                .await
                .unwrap();
            arn
            // Everything is dropped here: the process is gone, mid-Wait.
        };
        clock.advance(Duration::from_secs(61)).await;
        let db = Db::open(dir.path()).unwrap();
        let (workflows, queue) = engine(&db, clock.clone());
        assert_eq!(
            workflows.describe(&arn).await.unwrap().unwrap().status,
            "RUNNING"
        );
        // The timer loop of the new process finds the wait over.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let timers = tokio::spawn(workflows.clone().run_timers(stopped));
        let second = {
            let mut found = None;
            for _ in 0..200 {
                let got = queue.receive(10, Duration::from_secs(30)).await.unwrap();
                if let Some(m) = got.into_iter().next() {
                    queue.delete(&m.receipt).await.unwrap();
                    found = Some(serde_json::from_str::<Value>(&m.body).unwrap());
                    break;
                }
                queue.wait(Duration::from_millis(20)).await;
            }
            found.expect("the second task was sent after the restart")
        };
        assert_eq!(second["state"], "Two", "the first task did not run again");
        workflows
            .send_task_success(second["token"].as_str().unwrap(), &json!("two done"))
            .await
            .unwrap();
        let done = workflows.describe(&arn).await.unwrap().unwrap();
        assert_eq!(done.status, "SUCCEEDED");
        assert_eq!(done.output, Some(json!({"last": "two done"})));
        let history = workflows.history(&arn).await.unwrap();
        let scheduled = history
            .iter()
            .filter(|e| e["type"] == "TaskScheduled")
            .count();
        assert_eq!(scheduled, 2, "each task was scheduled once");
        let _ = stop.send(true);
        timers.await.unwrap();
    }

    /// Every statement the local adapters run under their behaviour suites (requests,
    /// resources, the audit log, the state store, the queue and the workflow engine, all
    /// on one database) reads its tables through a key or an index: SQLite's query plan of
    /// each, with its values, never scans a table whole. The listings' every filter shape
    /// is checked on its own in `db.rs`.
    #[tokio::test]
    async fn every_statement_the_suites_run_reads_an_index() {
        use shared::adapters::local::{
            SqliteAuditLog, SqliteRequestStore, SqliteResourceStore, SqliteStateStore,
        };
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        // Every statement the adapters run, with its values (SQLite's expanded text).
        let traced = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
        let into = traced.clone();
        db.call(move |conn| {
            conn.trace_v2(
                rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT,
                Some(move |event: rusqlite::trace::TraceEvent<'_>| {
                    if let rusqlite::trace::TraceEvent::Stmt(statement, _) = event
                        && let Some(sql) = statement.expanded_sql()
                    {
                        into.lock().unwrap().insert(sql);
                    }
                }),
            )
            .map_err(|e| shared::ports::StoreError::Unavailable(e.to_string()))
        })
        .await
        .unwrap();
        testkit::requests::run(&SqliteRequestStore::new(db.clone())).await;
        testkit::resources::run(&SqliteResourceStore::new(db.clone())).await;
        testkit::audit::run(&SqliteAuditLog::new(db.clone())).await;
        testkit::state::run(&SqliteStateStore::new(db.clone())).await;
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let queue = SqliteQueue::new(
            db.clone(),
            "suite",
            testkit::queue::MAX_RECEIVES,
            clock.clone(),
        );
        testkit::queue::run(&queue, clock.as_ref()).await;
        let (workflows, queue) = engine(&db, clock.clone());
        let timers = Timers {
            clock,
            workflows: workflows.clone(),
        };
        testkit::workflows::run(&workflows, &queue, &timers).await;
        let statements = std::mem::take(&mut *traced.lock().unwrap());
        let scans = db
            .call(move |conn| {
                conn.trace_v2(
                    rusqlite::trace::TraceEventCodes::empty(),
                    None::<fn(rusqlite::trace::TraceEvent<'_>)>,
                )
                .map_err(|e| shared::ports::StoreError::Unavailable(e.to_string()))?;
                let plan_of = |sql: &str| -> Vec<String> {
                    let mut plan = conn
                        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    plan.query_map([], |row| row.get::<usize, String>(3))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect()
                };
                // The check sees a scan where there is one.
                let canary = plan_of("SELECT record FROM audit WHERE record LIKE '%x%'");
                assert!(canary.iter().any(|s| s.starts_with("SCAN")), "{canary:?}");
                let mut scans = Vec::new();
                let mut checked = 0;
                for sql in &statements {
                    let head = sql.trim_start().to_ascii_uppercase();
                    if !["SELECT", "UPDATE", "DELETE", "WITH", "INSERT"]
                        .iter()
                        .any(|verb| head.starts_with(verb))
                    {
                        continue;
                    }
                    checked += 1;
                    for step in plan_of(sql) {
                        if step.starts_with("SCAN") {
                            scans.push(format!("{step}  <=  {sql}"));
                        }
                    }
                }
                assert!(checked > 50, "the suites ran {checked} statements");
                Ok(scans)
            })
            .await
            .unwrap();
        assert!(
            scans.is_empty(),
            "{} scans:\n{}",
            scans.len(),
            scans.join("\n")
        );
    }
}
