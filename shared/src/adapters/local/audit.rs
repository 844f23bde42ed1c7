//! The audit log on SQLite: append-only rows, listed newest first.

use async_trait::async_trait;
use rusqlite::params;

use super::db::{
    ABOVE_EVERY_ID, Db, ExecCached, decode, encode, equalities, list_page, unavailable,
};
use crate::ports::{AuditLog, AuditQuery, Page, StoreError};
use crate::requests::model::{AuditEntry, RequestId};

pub struct SqliteAuditLog {
    db: Db,
}

impl SqliteAuditLog {
    pub fn new(db: Db) -> Self {
        SqliteAuditLog { db }
    }
}

/// The listing's statement: by actor through its index, or everything by the key; the
/// cursor and the limit follow as the last two parameters.
pub(super) fn list_statement(q: &AuditQuery) -> (String, Vec<String>) {
    let (filters, values) = equalities([("actor", q.actor.clone())]);
    let n = values.len();
    let sql = format!(
        "SELECT record FROM audit WHERE {filters}id < ?{} ORDER BY id DESC LIMIT ?{}",
        n + 1,
        n + 2
    );
    (sql, values)
}

#[async_trait]
impl AuditLog for SqliteAuditLog {
    /// Queues the entry on the database thread without waiting for its commit: a later
    /// `list` (on the same thread) sees it all the same, and the call it records is
    /// answered without a second wait for the database. The entry is committed with
    /// the next batch (within a millisecond under load); a crash before that loses it,
    /// and a shutdown waits for it ([`Db::flush`]).
    async fn append(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let (id, actor, record) = (entry.id.clone(), entry.actor.clone(), encode(entry)?);
        self.db.send("an audit entry", move |conn| {
            conn.exec(
                "INSERT INTO audit (id, actor, record) VALUES (?1, ?2, ?3)",
                params![id, actor, record],
            )
            .map(|_| ())
            .map_err(unavailable)
        })
    }

    async fn list(&self, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
        let q = query.clone();
        let limit = q.limit.clamp(1, 500);
        self.db
            .call(move |conn| {
                let (sql, mut values) = list_statement(&q);
                values.push(
                    q.cursor
                        .clone()
                        .unwrap_or_else(|| ABOVE_EVERY_ID.to_owned()),
                );
                list_page(conn, &sql, &values, limit, |e: &AuditEntry| e.id.clone())
            })
            .await
    }

    async fn older_than(
        &self,
        before: time::OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        // Ids are UUIDv7: every entry recorded before `before` sorts below its floor.
        let below = RequestId::floor(before).to_string();
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.db
            .call(move |conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT record FROM audit WHERE id < ?1 ORDER BY id LIMIT ?2")
                    .map_err(unavailable)?;
                let rows = stmt
                    .query_map(params![below, limit], |r| r.get::<_, String>(0))
                    .map_err(unavailable)?;
                rows.map(|row| decode(&row.map_err(unavailable)?)).collect()
            })
            .await
    }

    async fn remove(&self, ids: &[String]) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.db
            .call(move |tx| {
                for id in &ids {
                    tx.exec("DELETE FROM audit WHERE id = ?1", [id])
                        .map_err(unavailable)?;
                }
                Ok(())
            })
            .await
    }
}
