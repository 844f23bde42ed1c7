//! One SQLite database for local mode: opened once, WAL journal, schema migrations by
//! `user_version`, and an async face over the synchronous driver.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::Connection;

use crate::ports::StoreError;

/// Each entry migrates the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    owner TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    idempotency_key TEXT,
    ticket_key TEXT,
    record TEXT NOT NULL
);
CREATE UNIQUE INDEX requests_by_idempotency_key ON requests(requester, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX requests_by_requester ON requests(requester, id);
CREATE INDEX requests_by_owner ON requests(owner, id);
CREATE UNIQUE INDEX requests_by_ticket ON requests(ticket_key) WHERE ticket_key IS NOT NULL;
CREATE TABLE request_events (
    request_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (request_id, seq)
);
CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    actor TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX audit_by_actor ON audit(actor, id);
CREATE TABLE queue_messages (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT
);
CREATE INDEX queue_messages_visible ON queue_messages(queue, visible_at);
"#,
    r#"
CREATE TABLE state (
    tbl TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (tbl, key)
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE wf_definitions (
    hash TEXT PRIMARY KEY,
    definition TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE wf_machines (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE wf_executions (
    arn TEXT PRIMARY KEY,
    machine TEXT NOT NULL,
    hash TEXT NOT NULL,
    status TEXT NOT NULL,
    wake_at INTEGER,
    record TEXT NOT NULL
);
CREATE INDEX wf_executions_wake ON wf_executions(wake_at) WHERE wake_at IS NOT NULL;
CREATE TABLE wf_history (
    execution TEXT NOT NULL,
    id INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (execution, id)
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    requester TEXT NOT NULL,
    item TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX resources_by_status ON resources(status, id);
CREATE INDEX resources_by_owner ON resources(owner, id);
CREATE INDEX resources_by_requester ON resources(requester, id);
CREATE TABLE resource_changes (
    resource_id TEXT NOT NULL,
    serial INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (resource_id, serial)
) WITHOUT ROWID;
"#,
    // Small rows read and written by their primary key: clustered on it (one b-tree
    // instead of a rowid table and the key's index).
    r#"
CREATE TABLE queue_messages_v5 (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT
) WITHOUT ROWID;
INSERT INTO queue_messages_v5 (id, queue, body, sent_at, visible_at, receive_count, receipt)
    SELECT id, queue, body, sent_at, visible_at, receive_count, receipt FROM queue_messages;
DROP TABLE queue_messages;
ALTER TABLE queue_messages_v5 RENAME TO queue_messages;
CREATE INDEX queue_messages_visible ON queue_messages(queue, visible_at);
CREATE TABLE request_events_v5 (
    request_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (request_id, seq)
) WITHOUT ROWID;
INSERT INTO request_events_v5 (request_id, seq, record)
    SELECT request_id, seq, record FROM request_events;
DROP TABLE request_events;
ALTER TABLE request_events_v5 RENAME TO request_events;
CREATE TABLE audit_v5 (
    id TEXT PRIMARY KEY,
    actor TEXT NOT NULL,
    record TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO audit_v5 (id, actor, record) SELECT id, actor, record FROM audit;
DROP TABLE audit;
ALTER TABLE audit_v5 RENAME TO audit;
CREATE INDEX audit_by_actor ON audit(actor, id);
"#,
    // Requests too are read and written by their key: clustered on it, a new request
    // writes three b-trees (the table and its two listing indexes) instead of four.
    r#"
CREATE TABLE requests_v6 (
    id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    owner TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    idempotency_key TEXT,
    ticket_key TEXT,
    record TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO requests_v6 (id, requester, owner, target, status, version, idempotency_key, ticket_key, record)
    SELECT id, requester, owner, target, status, version, idempotency_key, ticket_key, record FROM requests;
DROP TABLE requests;
ALTER TABLE requests_v6 RENAME TO requests;
CREATE UNIQUE INDEX requests_by_idempotency_key ON requests(requester, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX requests_by_requester ON requests(requester, id);
CREATE INDEX requests_by_owner ON requests(owner, id);
CREATE UNIQUE INDEX requests_by_ticket ON requests(ticket_key) WHERE ticket_key IS NOT NULL;
"#,
];

/// A job runs on the connection and returns how to answer its caller once the batch it
/// ran in is settled (`true`: committed).
type Job = Box<dyn FnOnce(&mut Connection) -> Box<dyn FnOnce(bool) + Send> + Send>;

/// How many prepared statements the connection keeps: more than the stores use.
const STATEMENT_CACHE: usize = 128;

/// Jobs run together in one transaction, at most this many.
const MAX_BATCH: usize = 128;

/// A handle on the database; clones share it. One thread owns the connection and runs
/// the jobs sent to it in order: no lock for callers to contend on, and no thread per
/// call (SQLite has one writer at a time anyway). Jobs waiting together are committed
/// together (group commit), and each caller is answered only after that commit; a job
/// that needs atomicity of its own uses a savepoint.
#[derive(Clone)]
pub struct Db {
    jobs: mpsc::Sender<Job>,
}

impl Db {
    /// Opens (creating if needed) `orchestrator.db` in `dir`.
    pub fn open(dir: &Path) -> Result<Db, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        let path = dir.join("orchestrator.db");
        let conn = Connection::open(&path).map_err(unavailable)?;
        Self::setup(conn, Some(&path))
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<Db, StoreError> {
        Self::setup(Connection::open_in_memory().map_err(unavailable)?, None)
    }

    /// `file`: the database's file, which is then in WAL mode and checkpointed by a
    /// thread of its own (`None`: in memory).
    fn setup(mut conn: Connection, file: Option<&Path>) -> Result<Db, StoreError> {
        if let Some(file) = file {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(unavailable)?;
            // With WAL, NORMAL is durable across process crashes (not power loss).
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(unavailable)?;
            // Every job of a group commit runs in a savepoint of its own, and a
            // savepoint keeps each page's old image in a sub-journal. SQLite holds that
            // journal in memory only up to 64 KiB and then spills it to a temporary
            // file, for the rest of the transaction: under load, `pwrite`s to that file
            // were 15% of the server's CPU, twice the WAL's own writes. A savepoint's
            // journal is emptied when it is released, so in memory it stays the size of
            // one job.
            conn.pragma_update(None, "temp_store", "MEMORY")
                .map_err(unavailable)?;
            super::checkpoint::start(&mut conn, file)?;
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(unavailable)?;
        // Every statement the stores use stays prepared (the default keeps 16).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // A prepared statement keeps its plan whatever is bound to it. Without this,
        // SQLite re-prepares a statement whenever a new value is bound to its `LIMIT ?`
        // (the bundled 3.54 does), which made the queue's receive, whose limit follows
        // the worker's free slots, parse and plan itself again on most calls: a fifth of
        // the instructions of a POST /requests.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(unavailable)?;

        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(unavailable)?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(StoreError::Unavailable(format!(
                "the database is at schema version {version}, newer than this build knows ({}); \
                 upgrade the orchestrator",
                MIGRATIONS.len()
            )));
        }
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction().map_err(unavailable)?;
            tx.execute_batch(migration).map_err(unavailable)?;
            tx.pragma_update(None, "user_version", sql_int(i + 1))
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
        }
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite".to_owned())
            .spawn(move || {
                // Ends when every handle is dropped.
                while let Ok(first) = queue.recv() {
                    run_batch(&mut conn, first, &queue);
                }
            })
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the database thread: {e}"))
            })?;
        Ok(Db { jobs })
    }

    /// Like [`call`](Self::call), and `f` is atomic: its writes are kept only if it
    /// returns `Ok` (a savepoint inside the batch's transaction, so one job's failure
    /// never takes a part of it into the commit it shares with others).
    pub async fn atomic<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.call(move |conn| in_savepoint(conn, f)).await
    }

    /// Runs `f` on the database thread and waits for its result without blocking the
    /// async runtime.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // A panicking job must not take the database thread down with it.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(
                        "a database job panicked".to_owned(),
                    ))
                });
            Box::new(move |committed: bool| {
                let answer = match result {
                    Ok(_) if !committed => Err(StoreError::Unavailable(
                        "the database could not commit".to_owned(),
                    )),
                    other => other,
                };
                let _ = reply.send(answer);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Unavailable("the database thread has stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the database thread dropped a job".to_owned()))?
    }
}

/// Runs `first` and every job that arrives while the transaction is open (up to
/// `MAX_BATCH`) in one transaction, then answers their callers once it is settled. Jobs
/// that arrive during a batch join it, so under load batches grow instead of commits
/// multiplying: each commit writes every page it dirtied to the journal, which is most of
/// a small write's cost.
fn run_batch(conn: &mut Connection, first: Job, queue: &mpsc::Receiver<Job>) {
    let began = conn.exec("BEGIN IMMEDIATE", []).is_ok();
    let mut answers = vec![first(conn)];
    while answers.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => answers.push(job(conn)),
            Err(_) => break,
        }
    }
    let committed = began && conn.exec("COMMIT", []).is_ok();
    if began && !committed {
        let _ = conn.exec("ROLLBACK", []);
    }
    for answer in answers {
        answer(committed);
    }
}

/// Runs `f` inside a savepoint: released when `f` returns `Ok`, rolled back when it
/// returns an error or panics. The three statements go through the statement cache
/// (rusqlite's `Savepoint` runs each as a new statement, parsed on every call).
fn in_savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    /// Rolls the savepoint back unless it was released (an error, or a panic unwinding).
    struct Open<'c>(Option<&'c Connection>);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            if let Some(conn) = self.0 {
                let _ = conn.exec("ROLLBACK TO job", []);
                let _ = conn.exec("RELEASE job", []);
            }
        }
    }
    conn.exec("SAVEPOINT job", []).map_err(unavailable)?;
    let mut open = Open(Some(conn));
    let result = f(conn)?;
    open.0 = None;
    conn.exec("RELEASE job", []).map_err(unavailable)?;
    Ok(result)
}

/// Executes a statement through the connection's prepared-statement cache (SQL is parsed
/// once per connection, not once per call).
pub trait ExecCached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;

    /// The first row a query returns, if any, read by `f`.
    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError>;
}

impl ExecCached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        use rusqlite::OptionalExtension;
        self.prepare_cached(sql)
            .and_then(|mut s| s.query_row(params, f).optional())
            .map_err(unavailable)
    }
}

/// An unsigned number as SQLite's integer (saturating: counts and versions never get near).
pub fn sql_int<T: TryInto<i64>>(n: T) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// Maps a driver error to a transient store error.
pub fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A page from rows fetched with `LIMIT limit + 1`: the extra row only says there is a
/// next page, which starts after the last item kept.
pub fn paginate<T>(
    rows: impl Iterator<Item = rusqlite::Result<String>>,
    limit: usize,
    cursor_of: impl Fn(&T) -> String,
) -> Result<crate::ports::Page<T>, StoreError>
where
    T: serde::de::DeserializeOwned,
{
    let mut items: Vec<T> = Vec::new();
    for row in rows {
        let item: T = decode(&row.map_err(unavailable)?)?;
        if items.len() == limit {
            let next = items.last().map(&cursor_of);
            return Ok(crate::ports::Page { items, next });
        }
        items.push(item);
    }
    Ok(crate::ports::Page { items, next: None })
}

/// Parses a JSON record read back from the database.
pub fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Serializes a record for storage.
pub fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    // Room for a whole request record up front: serde_json starts at 128 bytes and a
    // record took three reallocations to fit.
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // serde_json writes UTF-8 only.
    String::from_utf8(out).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_twice_migrates_once_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let db = Db::open(dir.path()).unwrap();
            db.call(|c| {
                c.execute(
                    "INSERT INTO audit (id, actor, record) VALUES ('a', 'me', '{}')",
                    [],
                )
                .map_err(unavailable)
            })
            .await
            .unwrap();
        });
        let db = Db::open(dir.path()).unwrap();
        let n: i64 = rt
            .block_on(db.call(|c| {
                c.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
                    .map_err(unavailable)
            }))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_database_of_schema_4_keeps_its_requests_queue_timelines_and_audit() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut conn = Connection::open(dir.path().join("orchestrator.db")).unwrap();
            let tx = conn.transaction().unwrap();
            for migration in &MIGRATIONS[..4] {
                tx.execute_batch(migration).unwrap();
            }
            tx.pragma_update(None, "user_version", 4).unwrap();
            tx.execute_batch(
                "INSERT INTO queue_messages (id, queue, body, sent_at, visible_at, receive_count, receipt)
                     VALUES ('m1', 'fulfill', '{\"requestId\":\"r1\"}', 1, 2, 3, 'm1/x');
                 INSERT INTO request_events (request_id, seq, record) VALUES ('r1', 1, '{}'), ('r1', 2, '{\"a\":1}');
                 INSERT INTO audit (id, actor, record) VALUES ('a1', 'alice', '{}');
                 INSERT INTO requests (id, requester, owner, target, status, version, idempotency_key, ticket_key, record)
                     VALUES ('r1', 'alice', 'data', 'pg', 'awaiting_fulfillment', 3, 'k1', 'OPS-1', '{\"id\":\"r1\"}');",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let db = Db::open(dir.path()).unwrap();
        let rows = rt
            .block_on(db.call(|c| {
                let message = c
                    .row(
                        "SELECT queue, body, sent_at, visible_at, receive_count, receipt FROM queue_messages WHERE id = 'm1'",
                        [],
                        |r| {
                            Ok(format!(
                                "{} {} {} {} {} {}",
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, i64>(2)?,
                                r.get::<_, i64>(3)?,
                                r.get::<_, i64>(4)?,
                                r.get::<_, String>(5)?
                            ))
                        },
                    )?
                    .unwrap_or_default();
                let events = c
                    .row(
                        "SELECT group_concat(seq || ':' || record, ' ') FROM request_events WHERE request_id = 'r1'",
                        [],
                        |r| r.get::<_, String>(0),
                    )?
                    .unwrap_or_default();
                let audit = c
                    .row("SELECT actor FROM audit WHERE id = 'a1'", [], |r| {
                        r.get::<_, String>(0)
                    })?
                    .unwrap_or_default();
                let version: i64 = c
                    .pragma_query_value(None, "user_version", |r| r.get(0))
                    .map_err(unavailable)?;
                // Found through each of its indexes.
                let request = c
                    .row(
                        "SELECT owner || ' ' || target || ' ' || status || ' ' || version || ' ' || record
                         FROM requests WHERE requester = 'alice' AND idempotency_key = 'k1'
                           AND id IN (SELECT id FROM requests WHERE ticket_key = 'OPS-1')
                           AND id IN (SELECT id FROM requests WHERE owner = 'data')",
                        [],
                        |r| r.get::<_, String>(0),
                    )?
                    .unwrap_or_default();
                let clustered = c.prepare("SELECT rowid FROM requests").is_err();
                Ok((message, events, audit, version, request, clustered))
            }))
            .unwrap();
        assert_eq!(
            rows,
            (
                r#"fulfill {"requestId":"r1"} 1 2 3 m1/x"#.to_owned(),
                r#"1:{} 2:{"a":1}"#.to_owned(),
                "alice".to_owned(),
                i64::try_from(MIGRATIONS.len()).unwrap(),
                r#"data pg awaiting_fulfillment 3 {"id":"r1"}"#.to_owned(),
                true
            )
        );
    }

    fn count(rt: &tokio::runtime::Runtime, db: &Db) -> i64 {
        rt.block_on(db.call(|c| {
            c.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
                .map_err(unavailable)
        }))
        .unwrap()
    }

    fn insert(c: &Connection, id: &str) -> Result<(), StoreError> {
        c.exec(
            "INSERT INTO audit (id, actor, record) VALUES (?1, 'me', '{}')",
            [id],
        )
        .map(|_| ())
        .map_err(unavailable)
    }

    #[test]
    fn an_atomic_job_keeps_all_of_its_writes_or_none_and_never_takes_others_with_it() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let db = Db::in_memory().unwrap();
        rt.block_on(async {
            // Sent together, so that they share batches: the failed and the panicking
            // job each wrote a row before they gave up.
            let (ok, failed, panicked, plain) = tokio::join!(
                db.atomic(|c| {
                    insert(c, "kept-1")?;
                    insert(c, "kept-2")
                }),
                db.atomic(|c| {
                    insert(c, "lost-1")?;
                    Err::<(), _>(StoreError::NotFound)
                }),
                db.atomic(|c| -> Result<(), StoreError> {
                    insert(c, "lost-2")?;
                    panic!("a job that panics half-way")
                }),
                db.call(|c| insert(c, "kept-3")),
            );
            ok.unwrap();
            assert!(matches!(failed, Err(StoreError::NotFound)));
            assert!(matches!(panicked, Err(StoreError::Unavailable(_))));
            plain.unwrap();
        });
        assert_eq!(count(&rt, &db), 3);
        // A savepoint's name may repeat: an atomic job after a failed one still works.
        rt.block_on(db.atomic(|c| insert(c, "kept-4"))).unwrap();
        assert_eq!(count(&rt, &db), 4);
    }
}
