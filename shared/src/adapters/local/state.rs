//! The state store on SQLite: one table of versioned JSON records keyed by table and key.

use async_trait::async_trait;
use rusqlite::params;
use serde_json::Value;

use super::db::{Db, ExecCached, decode, encode, sql_int, unavailable};
use crate::ports::{StateStore, StoreError, Versioned};

pub struct SqliteStateStore {
    db: Db,
}

impl SqliteStateStore {
    pub fn new(db: Db) -> Self {
        SqliteStateStore { db }
    }
}

fn version_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl StateStore for SqliteStateStore {
    async fn get(&self, table: &str, key: &str) -> Result<Option<Versioned>, StoreError> {
        let (table, key) = (table.to_owned(), key.to_owned());
        let row = self
            .db
            .call(move |conn| {
                conn.row(
                    "SELECT value, version FROM state WHERE tbl = ?1 AND key = ?2",
                    params![table, key],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
            })
            .await?;
        row.map(|(value, version)| {
            Ok(Versioned {
                value: decode(&value)?,
                version: version_of(version),
            })
        })
        .transpose()
    }

    async fn put(
        &self,
        table: &str,
        key: &str,
        value: &Value,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        let (table, key, text) = (table.to_owned(), key.to_owned(), encode(value)?);
        self.db
            .call(move |conn| {
                let changed = match expected {
                    None => conn
                        .exec(
                            "INSERT INTO state (tbl, key, value, version) VALUES (?1, ?2, ?3, 1)
                             ON CONFLICT DO NOTHING",
                            params![table, key, text],
                        )
                        .map_err(unavailable)?,
                    Some(v) => conn
                        .exec(
                            "UPDATE state SET value = ?3, version = version + 1
                             WHERE tbl = ?1 AND key = ?2 AND version = ?4",
                            params![table, key, text, sql_int(v)],
                        )
                        .map_err(unavailable)?,
                };
                let expected = expected.unwrap_or(0);
                if changed == 0 {
                    Err(StoreError::VersionConflict { expected })
                } else {
                    Ok(expected + 1)
                }
            })
            .await
    }

    async fn delete(&self, table: &str, key: &str, expected: u64) -> Result<(), StoreError> {
        let (table, key) = (table.to_owned(), key.to_owned());
        self.db
            .call(move |conn| {
                let changed = conn
                    .exec(
                        "DELETE FROM state WHERE tbl = ?1 AND key = ?2 AND version = ?3",
                        params![table, key, sql_int(expected)],
                    )
                    .map_err(unavailable)?;
                if changed > 0 {
                    return Ok(());
                }
                let exists = conn
                    .row(
                        "SELECT 1 FROM state WHERE tbl = ?1 AND key = ?2",
                        params![table, key],
                        |_| Ok(()),
                    )?
                    .is_some();
                Err(if exists {
                    StoreError::VersionConflict { expected }
                } else {
                    StoreError::NotFound
                })
            })
            .await
    }

    async fn list(
        &self,
        table: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        let (table, prefix) = (table.to_owned(), prefix.to_owned());
        let rows: Vec<(String, String, i64)> = self
            .db
            .call(move |conn| {
                // `key >= prefix AND substr(key, 1, n) = prefix` uses the primary key and
                // treats LIKE's wildcards in keys as plain characters.
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT key, value, version FROM state
                         WHERE tbl = ?1 AND key >= ?2 AND substr(key, 1, length(?2)) = ?2
                         ORDER BY key LIMIT ?3",
                    )
                    .map_err(unavailable)?;
                let rows = stmt
                    .query_map(params![table, prefix, sql_int(limit)], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .map_err(unavailable)?;
                rows.collect::<Result<_, _>>().map_err(unavailable)
            })
            .await?;
        rows.into_iter()
            .map(|(key, value, version)| {
                Ok((
                    key,
                    Versioned {
                        value: decode(&value)?,
                        version: version_of(version),
                    },
                ))
            })
            .collect()
    }
}
