//! The ports' behaviour suites against the embedded adapters (SQLite on disk).

use std::sync::Arc;

use shared::adapters::local::{
    Db, SqliteAuditLog, SqliteQueue, SqliteRequestStore, SqliteStateStore,
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
async fn the_sqlite_state_store_passes_the_state_store_suite() {
    let (_dir, db) = db();
    testkit::state::run(&SqliteStateStore::new(db)).await;
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
