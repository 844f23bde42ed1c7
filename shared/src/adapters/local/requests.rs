//! The request store on SQLite: one row per request (the record as JSON beside the
//! columns that queries filter on) and one row per timeline event.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::db::{
    ABOVE_EVERY_ID, Db, ExecCached, decode, encode, equalities, list_page, sql_int, unavailable,
};
use super::queue::{Outbox, new_message_id, unix_ms};
use crate::ports::{Created, Page, RequestQuery, RequestStore, StoreError};
use crate::requests::model::{Request, RequestEvent, RequestId};

pub struct SqliteRequestStore {
    db: Db,
    /// The action queue, when it lives in the same database: a new request's handoff
    /// message is written in the transaction that stores the request.
    outbox: Option<Outbox>,
}

impl SqliteRequestStore {
    /// A store that leaves handoff messages to its caller.
    pub fn new(db: Db) -> Self {
        SqliteRequestStore { db, outbox: None }
    }

    /// A store that puts each new request's handoff message on the queue of `outbox`
    /// (which must be on the same database) in the transaction that stores it.
    pub fn with_outbox(db: Db, outbox: Outbox) -> Self {
        SqliteRequestStore {
            db,
            outbox: Some(outbox),
        }
    }
}

fn read_request(text: String) -> Result<Request, StoreError> {
    decode(&text)
}

/// A request as its row in `requests`: the columns the indexes and lookups use, and the
/// whole record as JSON. The database job takes this rather than a copy of the request.
struct RequestRow {
    id: String,
    requester: String,
    owner: String,
    target: String,
    status: &'static str,
    version: i64,
    idempotency_key: Option<String>,
    ticket_key: Option<String>,
    record: String,
}

impl RequestRow {
    fn of(request: &Request) -> Result<Self, StoreError> {
        Ok(Self {
            id: request.id.to_string(),
            requester: request.requester.sub.clone(),
            owner: request.owner.clone(),
            target: request.target.clone(),
            status: request.status.as_str(),
            version: sql_int(request.version),
            idempotency_key: request.idempotency_key.clone(),
            ticket_key: request.ticket.as_ref().map(|t| t.key.clone()),
            record: encode(request)?,
        })
    }
}

#[async_trait]
impl RequestStore for SqliteRequestStore {
    async fn create(
        &self,
        request: &Request,
        event: &RequestEvent,
        handoff: &str,
    ) -> Result<Created, StoreError> {
        // Serialization happens here, off the database thread, which only runs SQL.
        let row = RequestRow::of(request)?;
        let event_record = encode(event)?;
        let created_at = unix_ms(request.created_at);
        let outbox = self
            .outbox
            .clone()
            .map(|outbox| (outbox, handoff.to_owned()));
        let existing = self
            .db
            .call(move |tx| {
                if let Some(key) = &row.idempotency_key {
                    let existing: Option<String> = tx.row(
                        "SELECT record FROM requests WHERE requester = ?1 AND idempotency_key = ?2",
                        params![row.requester, key],
                        |r| r.get(0),
                    )?;
                    if existing.is_some() {
                        return Ok(existing);
                    }
                }
                tx.exec(
                    "INSERT INTO requests (id, requester, owner, target, status, version, idempotency_key, ticket_key, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        row.id,
                        row.requester,
                        row.owner,
                        row.target,
                        row.status,
                        row.version,
                        row.idempotency_key,
                        row.ticket_key,
                        row.record,
                    ],
                )
                .map_err(unavailable)?;
                tx.exec(
                    "INSERT INTO request_events (request_id, seq, record) VALUES (?1, ?2, ?3)",
                    params![row.id, 1, event_record],
                )
                .map_err(unavailable)?;
                if let Some((outbox, handoff)) = &outbox {
                    outbox.put(
                        tx,
                        &new_message_id(),
                        handoff,
                        created_at,
                        std::time::Duration::ZERO,
                    )?;
                }
                Ok(None)
            })
            .await?;
        match existing {
            Some(text) => Ok(Created::Existing(Box::new(read_request(text)?))),
            None => {
                if let Some(outbox) = &self.outbox {
                    outbox.notify();
                }
                Ok(Created::New {
                    handed_off: self.outbox.is_some(),
                })
            }
        }
    }

    async fn get(&self, id: &RequestId) -> Result<Option<Request>, StoreError> {
        let id = id.to_string();
        let record = self
            .db
            .call(move |conn| {
                conn.row("SELECT record FROM requests WHERE id = ?1", [id], |r| {
                    r.get::<_, String>(0)
                })
            })
            .await?;
        record.map(read_request).transpose()
    }

    async fn update(&self, request: &Request, event: &RequestEvent) -> Result<(), StoreError> {
        let row = RequestRow::of(request)?;
        let event_record = encode(event)?;
        let expected = request.version.saturating_sub(1);
        self.db
            .call(move |tx| {
                let changed = tx
                    .exec(
                        "UPDATE requests SET status = ?2, version = ?3, ticket_key = ?4, record = ?5
                         WHERE id = ?1 AND version = ?6",
                        params![
                            row.id,
                            row.status,
                            row.version,
                            row.ticket_key,
                            row.record,
                            sql_int(expected),
                        ],
                    )
                    .map_err(unavailable)?;
                if changed == 0 {
                    let exists = tx
                        .row(
                            "SELECT 1 FROM requests WHERE id = ?1",
                            [&row.id],
                            |_| Ok(()),
                        )?
                        .is_some();
                    return Err(if exists {
                        StoreError::VersionConflict { expected }
                    } else {
                        StoreError::NotFound
                    });
                }
                insert_event(tx, &row.id, &event_record)?;
                Ok(())
            })
            .await
    }

    async fn append(&self, id: &RequestId, events: &[RequestEvent]) -> Result<(), StoreError> {
        let id = id.to_string();
        let records = events.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        self.db
            .call(move |tx| {
                let exists = tx
                    .prepare_cached("SELECT 1 FROM requests WHERE id = ?1")
                    .and_then(|mut s| s.exists([&id]))
                    .map_err(unavailable)?;
                if !exists {
                    return Err(StoreError::NotFound);
                }
                for record in &records {
                    insert_event(tx, &id, record)?;
                }
                Ok(())
            })
            .await
    }

    async fn list(&self, query: &RequestQuery) -> Result<Page<Request>, StoreError> {
        let q = query.clone();
        let limit = q.limit.clamp(1, 500);
        // Ids are lower-case hex and dashes: "" and "~" bound them all. Plain bounds (not
        // `?5 IS NULL OR ...`) let SQLite read just the range of the key.
        let (from, below) = q.id_bounds();
        let from = from.unwrap_or_default();
        let below = below.unwrap_or_else(|| ABOVE_EVERY_ID.to_owned());
        self.db
            .call(move |conn| {
                let (sql, mut values) = list_statement(&q);
                values.extend([from, below]);
                list_page(conn, &sql, &values, limit, |r: &Request| r.id.to_string())
            })
            .await
    }

    async fn events(&self, id: &RequestId) -> Result<Vec<RequestEvent>, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT seq, record FROM request_events WHERE request_id = ?1 ORDER BY seq",
                    )
                    .map_err(unavailable)?;
                let rows = stmt
                    .query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                    .map_err(unavailable)?;
                rows.map(|row| {
                    let (seq, record) = row.map_err(unavailable)?;
                    let mut event: RequestEvent = decode(&record)?;
                    event.seq = u64::try_from(seq).unwrap_or(0);
                    Ok(event)
                })
                .collect()
            })
            .await
    }

    async fn replace_timeline(
        &self,
        id: &RequestId,
        marker: &RequestEvent,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let record = encode(marker)?;
        self.db
            .call(move |tx| {
                let exists = tx
                    .prepare_cached("SELECT 1 FROM requests WHERE id = ?1")
                    .and_then(|mut s| s.exists([&id]))
                    .map_err(unavailable)?;
                if !exists {
                    return Err(StoreError::NotFound);
                }
                tx.exec("DELETE FROM request_events WHERE request_id = ?1", [&id])
                    .map_err(unavailable)?;
                insert_event(tx, &id, &record)
            })
            .await
    }

    async fn find_by_ticket(&self, key: &str) -> Result<Option<Request>, StoreError> {
        let key = key.to_owned();
        self.db
            .call(move |conn| {
                conn.row(
                    "SELECT record FROM requests WHERE ticket_key = ?1",
                    [key],
                    |r| r.get::<_, String>(0),
                )?
                .map(read_request)
                .transpose()
            })
            .await
    }
}

/// The listing's statement for the filters `q` sets, and their values: one statement per
/// shape (at most 16, each prepared once), so that SQLite reads an index for the filter
/// instead of scanning for `?1 IS NULL OR ...`. The id bounds and the limit follow as the
/// last three parameters.
pub(super) fn list_statement(q: &RequestQuery) -> (String, Vec<String>) {
    let (filters, values) = equalities([
        ("requester", q.requester.clone()),
        ("owner", q.owner.clone()),
        ("status", q.status.map(|s| s.as_str().to_owned())),
        ("target", q.target.clone()),
    ]);
    let n = values.len();
    let sql = format!(
        "SELECT record FROM requests WHERE {filters}id >= ?{} AND id < ?{} ORDER BY id DESC LIMIT ?{}",
        n + 1,
        n + 2,
        n + 3
    );
    (sql, values)
}

/// Appends an event to a request's timeline, numbered after the last one (the store
/// numbers events, so that notes written at the same time never collide).
fn insert_event(conn: &Connection, request: &str, record: &str) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO request_events (request_id, seq, record)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM request_events WHERE request_id = ?1), ?2)",
        params![request, record],
    )
    .map(|_| ())
    .map_err(unavailable)
}
