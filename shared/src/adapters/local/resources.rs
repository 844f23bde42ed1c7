//! The resource store on SQLite: one row per resource (the record as JSON beside the
//! columns that queries filter on) and one row per entry of its history.

use async_trait::async_trait;
use rusqlite::params;

use super::db::{
    ABOVE_EVERY_ID, Db, ExecCached, decode, encode, equalities, list_page, sql_int, unavailable,
};
use crate::ports::{Page, ResourceQuery, ResourceStore, StoreError};
use crate::resources::model::{Resource, ResourceChange};

pub struct SqliteResourceStore {
    db: Db,
}

impl SqliteResourceStore {
    pub fn new(db: Db) -> Self {
        SqliteResourceStore { db }
    }
}

/// The listing's statement for the filters `q` sets, and their values, one statement per
/// shape (see `equalities`); without a status, deleted resources are left out. The cursor
/// and the limit follow as the last two parameters.
pub(super) fn list_statement(q: &ResourceQuery) -> (String, Vec<String>) {
    let (filters, values) = equalities([
        ("owner", q.owner.clone()),
        ("requester", q.requester.clone()),
        ("item", q.item.clone()),
        ("status", q.status.map(|s| s.as_str().to_owned())),
    ]);
    let live = if q.status.is_none() {
        "status <> 'deleted' AND "
    } else {
        ""
    };
    let n = values.len();
    let sql = format!(
        "SELECT record FROM resources WHERE {filters}{live}id < ?{} ORDER BY id DESC LIMIT ?{}",
        n + 1,
        n + 2
    );
    (sql, values)
}

#[async_trait]
impl ResourceStore for SqliteResourceStore {
    async fn create(
        &self,
        resource: &Resource,
        change: &ResourceChange,
    ) -> Result<bool, StoreError> {
        let r = resource.clone();
        let record = encode(&r)?;
        let change_record = encode(change)?;
        let serial = change.serial;
        self.db
            .call(move |tx| {
                let inserted = tx
                    .exec(
                        "INSERT INTO resources (id, owner, requester, item, status, version, record)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                        params![
                            r.id,
                            r.owner,
                            r.requester,
                            r.item,
                            r.status.as_str(),
                            sql_int(r.version),
                            record
                        ],
                    )
                    .map_err(unavailable)?;
                if inserted == 0 {
                    return Ok(false);
                }
                tx.exec(
                    "INSERT INTO resource_changes (resource_id, serial, record) VALUES (?1, ?2, ?3)",
                    params![r.id, sql_int(serial), change_record],
                )
                .map_err(unavailable)?;
                Ok(true)
            })
            .await
    }

    async fn get(&self, id: &str) -> Result<Option<Resource>, StoreError> {
        let id = id.to_owned();
        let record = self
            .db
            .call(move |conn| {
                conn.row("SELECT record FROM resources WHERE id = ?1", [id], |r| {
                    r.get::<_, String>(0)
                })
            })
            .await?;
        record.map(|text| decode(&text)).transpose()
    }

    async fn update(
        &self,
        resource: &Resource,
        change: Option<&ResourceChange>,
    ) -> Result<(), StoreError> {
        let r = resource.clone();
        let record = encode(&r)?;
        let change = change
            .map(|c| encode(c).map(|text| (c.serial, text)))
            .transpose()?;
        let expected = r.version.saturating_sub(1);
        self.db
            .call(move |tx| {
                let changed = tx
                    .exec(
                        "UPDATE resources SET status = ?2, version = ?3, record = ?4
                         WHERE id = ?1 AND version = ?5",
                        params![
                            r.id,
                            r.status.as_str(),
                            sql_int(r.version),
                            record,
                            sql_int(expected)
                        ],
                    )
                    .map_err(unavailable)?;
                if changed == 0 {
                    let exists = tx
                        .prepare_cached("SELECT 1 FROM resources WHERE id = ?1")
                        .and_then(|mut s| s.exists([&r.id]))
                        .map_err(unavailable)?;
                    return Err(if exists {
                        StoreError::VersionConflict { expected }
                    } else {
                        StoreError::NotFound
                    });
                }
                if let Some((serial, text)) = change {
                    tx.exec(
                        "INSERT INTO resource_changes (resource_id, serial, record) VALUES (?1, ?2, ?3)",
                        params![r.id, sql_int(serial), text],
                    )
                    .map_err(|e| StoreError::Corrupt(format!("history entry {serial}: {e}")))?;
                }
                Ok(())
            })
            .await
    }

    async fn list(&self, query: &ResourceQuery) -> Result<Page<Resource>, StoreError> {
        let q = query.clone();
        let limit = q.limit.clamp(1, 1000);
        self.db
            .call(move |conn| {
                let (sql, mut values) = list_statement(&q);
                values.push(
                    q.cursor
                        .clone()
                        .unwrap_or_else(|| ABOVE_EVERY_ID.to_owned()),
                );
                list_page(conn, &sql, &values, limit, |r: &Resource| r.id.clone())
            })
            .await
    }

    async fn history(&self, id: &str) -> Result<Vec<ResourceChange>, StoreError> {
        let id = id.to_owned();
        let rows: Vec<String> = self
            .db
            .call(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT record FROM resource_changes WHERE resource_id = ?1 ORDER BY serial",
                    )
                    .map_err(unavailable)?;
                let rows = stmt.query_map([id], |r| r.get(0)).map_err(unavailable)?;
                rows.collect::<Result<_, _>>().map_err(unavailable)
            })
            .await?;
        rows.iter().map(|text| decode(text)).collect()
    }
}
