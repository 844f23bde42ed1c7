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
    // Every filter of the request listing reads an index, newest first (issue 36): an
    // admin's status filter, or one item's requests, no longer scan the table.
    r#"
CREATE INDEX requests_by_status ON requests(status, id);
CREATE INDEX requests_by_target ON requests(target, id);
CREATE INDEX resources_by_item ON resources(item, id);
"#,
    // A person's or a team's list with a status filter (the portal's "my requests, in
    // progress"): with only (owner, id), SQLite read the team's rows newest first and
    // dropped those of other statuses, a cost that grew with the team's history (the
    // growth benchmark: GET /resources?owner=&status= 2.6× slower on a 100× larger store).
    r#"
CREATE INDEX requests_by_owner_status ON requests(owner, status, id);
CREATE INDEX requests_by_requester_status ON requests(requester, status, id);
CREATE INDEX resources_by_owner_status ON resources(owner, status, id);
CREATE INDEX resources_by_requester_status ON resources(requester, status, id);
"#,
];

/// The part of a listing's statement that differs by the filters given: `column = ?n AND `
/// for each, numbered from 1, and their values. Each shape is then a statement of its own
/// (prepared once), so SQLite reads the filter's index; `?1 IS NULL OR column = ?1` made
/// it read the whole key range instead.
pub(super) fn equalities<const N: usize>(
    filters: [(&str, Option<String>); N],
) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut values = Vec::new();
    for (column, value) in filters {
        if let Some(value) = value {
            values.push(value);
            sql.push_str(&format!("{column} = ?{} AND ", values.len()));
        }
    }
    (sql, values)
}

/// The upper bound of ids when there is no cursor: ids are lower-case hex, dashes and
/// dots, all below it.
pub(super) const ABOVE_EVERY_ID: &str = "~";

/// A job runs on the connection and says what its batch must do next; without one (no
/// transaction could begin), it only answers its caller.
type Job = Box<dyn FnOnce(Option<&mut Connection>) -> Ran + Send>;

/// What a job left for the batch it ran in.
struct Ran {
    /// Answers the job's caller once the batch is settled (`true`: committed).
    answer: Box<dyn FnOnce(bool) + Send>,
    /// The job failed after it had written, or its failure ended the transaction
    /// (SQLite rolls one back itself after some errors): the batch must not go on.
    spoiled: bool,
}

/// How many prepared statements the connection keeps: more than the stores use.
const STATEMENT_CACHE: usize = 128;

/// Jobs run together in one transaction, at most this many.
const MAX_BATCH: usize = 128;

/// A handle on the database; clones share it. One thread owns the connection and runs
/// the jobs sent to it in order: no lock for callers to contend on, and no thread per
/// call (SQLite has one writer at a time anyway). Jobs waiting together are committed
/// together (group commit), and each caller is answered only after that commit.
///
/// Every job is atomic: its writes are committed only if it returns `Ok`. A job that fails
/// (or panics) before it writes costs its batch nothing; one that fails after writing
/// (or whose failure ended the transaction) rolls the whole batch back, and the other
/// jobs in it are answered with a transient error (their callers retry). Jobs check before they write, so only a fault (a full
/// disk, a bug) does that. A savepoint per job would spare the others, but it copies
/// every page a job touches into a sub-journal first: that was a third of the database
/// thread's time for a new request.
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
            // A statement that may have to undo its own writes (one that changes many
            // rows, say) keeps each page's old image in a statement journal. SQLite holds
            // such a journal in memory only up to 64 KiB and then spills it to a
            // temporary file: when every job had a savepoint (which journals the same
            // way), `pwrite`s to that file were 15% of the server's CPU under load.
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

    /// Runs `f` on the database thread and waits for its result without blocking the
    /// async runtime. `f`'s writes are kept only if it returns `Ok` (see [`Db`]); SQLite's
    /// count of changed rows tells whether it wrote, so `f` writes with `INSERT`,
    /// `UPDATE` and `DELETE` only.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send_job(job(f, move |answer| {
            let _ = reply.send(answer);
        }))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the database thread dropped a job".to_owned()))?
    }

    /// Like [`call`](Self::call), without waiting: `Ok` once `f` is queued. Jobs run in
    /// the order they are sent, so whatever is asked of the database afterwards sees
    /// `f`'s writes. A failure is logged, naming `what`.
    pub fn send<F>(&self, what: &'static str, f: F) -> Result<(), StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<(), StoreError> + Send + 'static,
    {
        self.send_job(job(f, move |answer| {
            if let Err(e) = answer {
                tracing::error!(error = %e, "could not write {what}");
            }
        }))
    }

    /// Waits until every job sent so far is settled (those from [`send`](Self::send)
    /// included): before the process exits.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.call(|_| Ok(())).await
    }

    fn send_job(&self, job: Job) -> Result<(), StoreError> {
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Unavailable("the database thread has stopped".to_owned()))
    }
}

/// The job that runs `f` and gives its result to `answer` once the batch it ran in is
/// settled.
fn job<R, F>(f: F, answer: impl FnOnce(Result<R, StoreError>) + Send + 'static) -> Job
where
    R: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
{
    Box::new(move |conn| {
        let Some(conn) = conn else {
            return Ran {
                answer: Box::new(move |_| {
                    answer(Err(StoreError::Unavailable(
                        "the database could not begin a transaction".to_owned(),
                    )));
                }),
                spoiled: false,
            };
        };
        let changes = conn.total_changes();
        // A panicking job must not take the database thread down with it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "a database job panicked".to_owned(),
                ))
            });
        let spoiled = result.is_err() && (conn.total_changes() != changes || conn.is_autocommit());
        Ran {
            answer: Box::new(move |committed: bool| {
                answer(match result {
                    Ok(_) if !committed => Err(StoreError::Unavailable(
                        "the database could not commit".to_owned(),
                    )),
                    other => other,
                });
            }),
            spoiled,
        }
    })
}

/// Runs `first` and every job that arrives while the transaction is open (up to
/// `MAX_BATCH`) in one transaction, then answers their callers once it is settled. Jobs
/// that arrive during a batch join it, so under load batches grow instead of commits
/// multiplying: each commit writes every page it dirtied to the journal, which is most of
/// a small write's cost. A job that fails after writing ends its batch, rolled back.
fn run_batch(conn: &mut Connection, first: Job, queue: &mpsc::Receiver<Job>) {
    if let Err(e) = conn.exec("BEGIN IMMEDIATE", []) {
        // Not run: outside a transaction its writes would commit one by one. The jobs
        // behind it try again with a batch of their own.
        tracing::error!(error = %e, "the database could not begin a transaction");
        (first(None).answer)(false);
        return;
    }
    let mut answers = Vec::new();
    let mut spoiled = false;
    let mut next = Some(first);
    while let Some(job) = next.take() {
        let ran = job(Some(&mut *conn));
        answers.push(ran.answer);
        spoiled = ran.spoiled;
        if !spoiled && answers.len() < MAX_BATCH {
            next = queue.try_recv().ok();
        }
    }
    let committed = !spoiled && conn.exec("COMMIT", []).is_ok();
    if !committed {
        let _ = conn.exec("ROLLBACK", []);
    }
    for answer in answers {
        answer(committed);
    }
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
fn paginate<T>(
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

/// A listing's page: `sql` run with `values`, then the limit (one more row than `limit`,
/// to know whether a next page exists) as its last parameter.
pub(super) fn list_page<T>(
    conn: &Connection,
    sql: &str,
    values: &[String],
    limit: usize,
    cursor_of: impl Fn(&T) -> String,
) -> Result<crate::ports::Page<T>, StoreError>
where
    T: serde::de::DeserializeOwned,
{
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let fetch = sql_int(limit + 1);
    let mut bound: Vec<&dyn rusqlite::ToSql> =
        values.iter().map(|v| v as &dyn rusqlite::ToSql).collect();
    bound.push(&fetch);
    let rows = stmt
        .query_map(bound.as_slice(), |r| r.get::<_, String>(0))
        .map_err(unavailable)?;
    paginate(rows, limit, cursor_of)
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

    /// SQLite's plan of `sql` (with `values` parameters), one line per step.
    fn query_plan(conn: &Connection, sql: &str, values: usize) -> Vec<String> {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("the statement prepares");
        let blanks = vec![""; values];
        let bound: Vec<&dyn rusqlite::ToSql> =
            blanks.iter().map(|v| v as &dyn rusqlite::ToSql).collect();
        stmt.query_map(bound.as_slice(), |r| r.get::<_, String>(3))
            .expect("the plan is read")
            .map(|r| r.expect("a plan row"))
            .collect()
    }

    /// Every filter shape the listings allow (requests, resources, the audit log) reads
    /// an index of a filtered column (the key without filters), never the whole table,
    /// and needs no sort: newest first is the index's own order.
    #[tokio::test]
    async fn every_listing_shape_reads_an_index() {
        use crate::ports::{AuditQuery, RequestQuery, ResourceQuery};
        let text = |on: bool, v: &str| on.then(|| v.to_owned());
        let mut statements = Vec::new();
        for mask in 0..16u8 {
            let bit = |b: u8| mask & (1 << b) != 0;
            let (sql, values) = super::super::requests::list_statement(&RequestQuery {
                requester: text(bit(0), "alice"),
                owner: text(bit(1), "platform"),
                status: bit(2).then_some(crate::requests::model::RequestStatus::Completed),
                target: text(bit(3), "sqs-queue"),
                limit: 20,
                ..Default::default()
            });
            statements.push((sql, values.len(), values.len() + 3));
            let (sql, values) = super::super::resources::list_statement(&ResourceQuery {
                owner: text(bit(0), "platform"),
                requester: text(bit(1), "alice"),
                item: text(bit(2), "sqs-queue"),
                status: bit(3).then_some(crate::resources::model::ResourceStatus::Ready),
                limit: 20,
                ..Default::default()
            });
            statements.push((sql, values.len(), values.len() + 2));
        }
        for actor in [None, Some("alice".to_owned())] {
            let (sql, values) = super::super::audit::list_statement(&AuditQuery {
                actor,
                limit: 20,
                ..Default::default()
            });
            statements.push((sql, values.len(), values.len() + 2));
        }
        let db = Db::in_memory().unwrap();
        db.call(move |conn| {
            for (sql, filters, parameters) in &statements {
                let steps = query_plan(conn, sql, *parameters);
                assert!(
                    steps.iter().all(|s| !s.starts_with("SCAN")),
                    "{sql}: {steps:?}"
                );
                assert!(
                    steps.iter().all(|s| !s.contains("TEMP B-TREE")),
                    "{sql}: {steps:?}"
                );
                // A filter is read through its own index, not the whole key's range.
                if *filters > 0 {
                    assert!(
                        steps
                            .iter()
                            .any(|s| s.contains("USING INDEX") && s.contains("_by_")),
                        "{sql}: {steps:?}"
                    );
                }
            }
            Ok(())
        })
        .await
        .unwrap();
    }

    #[test]
    fn opening_twice_migrates_once_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
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
        let rt = runtime();
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

    fn insert(c: &Connection, id: &str) -> Result<(), StoreError> {
        c.exec(
            "INSERT INTO audit (id, actor, record) VALUES (?1, 'me', '{}')",
            [id],
        )
        .map(|_| ())
        .map_err(unavailable)
    }

    /// Polls `f` once: far enough for a [`Db::call`] to have sent its job.
    async fn sent<F: std::future::Future>(f: std::pin::Pin<&mut F>) {
        let mut f = f;
        std::future::poll_fn(|cx| {
            let _ = f.as_mut().poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
    }

    fn ids(rt: &tokio::runtime::Runtime, db: &Db) -> Vec<String> {
        rt.block_on(db.call(|c| {
            let mut stmt = c
                .prepare("SELECT id FROM audit ORDER BY id")
                .map_err(unavailable)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(unavailable)?;
            rows.collect::<Result<_, _>>().map_err(unavailable)
        }))
        .unwrap()
    }

    /// A job that holds the database thread until `open` is sent, then inserts `id`: the
    /// jobs sent meanwhile share its batch.
    fn holding<'d>(
        db: &'d Db,
        id: &'static str,
    ) -> (
        mpsc::Sender<()>,
        impl std::future::Future<Output = Result<(), StoreError>> + 'd,
    ) {
        let (open, gate) = mpsc::channel::<()>();
        let held = db.call(move |c| {
            let _ = gate.recv();
            insert(c, id)
        });
        (open, held)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn failed_before_writing(c: &mut Connection) -> Result<(), StoreError> {
        c.row("SELECT 1 FROM audit WHERE id = 'nobody'", [], |_| Ok(()))?;
        Err(StoreError::NotFound)
    }

    #[test]
    fn a_job_keeps_all_of_its_writes_or_none_and_only_a_fault_after_writing_costs_its_batch() {
        let rt = runtime();
        let db = Db::in_memory().unwrap();
        rt.block_on(async {
            let (open, held) = holding(&db, "held-1");
            let mut held = std::pin::pin!(held);
            let mut clean = std::pin::pin!(db.call(failed_before_writing));
            let mut kept = std::pin::pin!(db.call(|c| {
                insert(c, "kept-1")?;
                insert(c, "kept-2")
            }));
            sent(held.as_mut()).await;
            sent(clean.as_mut()).await;
            sent(kept.as_mut()).await;
            open.send(()).unwrap();
            held.await.unwrap();
            assert!(matches!(clean.await, Err(StoreError::NotFound)));
            kept.await.unwrap();
        });
        assert_eq!(ids(&rt, &db), ["held-1", "kept-1", "kept-2"]);

        rt.block_on(async {
            let (open, held) = holding(&db, "lost-1");
            let mut held = std::pin::pin!(held);
            let mut failed = std::pin::pin!(db.call(|c| {
                insert(c, "lost-2")?;
                Err::<(), _>(StoreError::Corrupt("half-way".to_owned()))
            }));
            let mut panicked = std::pin::pin!(db.call(|c| -> Result<(), StoreError> {
                insert(c, "lost-3")?;
                panic!("a job that panics half-way")
            }));
            let mut after = std::pin::pin!(db.call(|c| insert(c, "kept-3")));
            sent(held.as_mut()).await;
            sent(failed.as_mut()).await;
            sent(panicked.as_mut()).await;
            sent(after.as_mut()).await;
            open.send(()).unwrap();
            // The job before the fault shared its batch: rolled back, and told so.
            assert!(matches!(held.await, Err(StoreError::Unavailable(_))));
            assert!(matches!(failed.await, Err(StoreError::Corrupt(_))));
            // The panic ran in a batch of its own (the fault ended the first), and took
            // only itself back.
            assert!(
                matches!(panicked.await, Err(StoreError::Unavailable(m)) if m.contains("panicked"))
            );
            after.await.unwrap();
        });
        assert_eq!(ids(&rt, &db), ["held-1", "kept-1", "kept-2", "kept-3"]);

        // A failure after which the transaction is gone (as SQLite does itself after a
        // full disk, say): the jobs after it must not run outside the transaction.
        rt.block_on(async {
            let (open, held) = holding(&db, "lost-4");
            let mut held = std::pin::pin!(held);
            let mut ended = std::pin::pin!(db.call(|c| {
                c.execute_batch("ROLLBACK").map_err(unavailable)?;
                Err::<(), _>(StoreError::Unavailable("disk full".to_owned()))
            }));
            let mut after = std::pin::pin!(db.call(|c| insert(c, "kept-4")));
            sent(held.as_mut()).await;
            sent(ended.as_mut()).await;
            sent(after.as_mut()).await;
            open.send(()).unwrap();
            assert!(matches!(held.await, Err(StoreError::Unavailable(_))));
            assert!(matches!(ended.await, Err(StoreError::Unavailable(m)) if m == "disk full"));
            after.await.unwrap();
        });
        assert_eq!(
            ids(&rt, &db),
            ["held-1", "kept-1", "kept-2", "kept-3", "kept-4"]
        );
    }

    #[test]
    fn a_job_sent_without_waiting_is_seen_by_the_next_and_settled_by_a_flush() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        rt.block_on(async {
            let db = Db::open(dir.path()).unwrap();
            db.send("a test row", |c| insert(c, "sent-1")).unwrap();
            assert_eq!(
                db.call(|c| c.row("SELECT id FROM audit", [], |r| r.get::<_, String>(0)))
                    .await
                    .unwrap()
                    .as_deref(),
                Some("sent-1")
            );
            // A failure is the sender's to log; the database goes on.
            db.send("a duplicate row", |c| insert(c, "sent-1")).unwrap();
            db.send("a test row", |c| insert(c, "sent-2")).unwrap();
            db.flush().await.unwrap();
        });
        // Committed: another connection on the file sees both rows.
        let conn = Connection::open(dir.path().join("orchestrator.db")).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }
}
