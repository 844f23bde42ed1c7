//! The audit log on SQLite: append-only rows, listed newest first.

use async_trait::async_trait;
use rusqlite::params;

use super::db::{Db, ExecCached, encode, paginate, sql_int, unavailable};
use crate::ports::{AuditLog, AuditQuery, Page, StoreError};
use crate::requests::model::AuditEntry;

pub struct SqliteAuditLog {
    db: Db,
}

impl SqliteAuditLog {
    pub fn new(db: Db) -> Self {
        SqliteAuditLog { db }
    }
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
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT record FROM audit WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR id < ?2)
                         ORDER BY id DESC LIMIT ?3",
                    )
                    .map_err(unavailable)?;
                let rows = stmt
                    .query_map(params![q.actor, q.cursor, sql_int(limit + 1)], |r| r.get::<_, String>(0))
                    .map_err(unavailable)?;
                paginate(rows, limit, |e: &AuditEntry| e.id.clone())
            })
            .await
    }
}
