//! A durable queue on SQLite with SQS semantics: at-least-once delivery, a visibility
//! timeout per receive, a receive count, and a dead-letter queue after `max_receives`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;
use tokio::sync::Notify;

use super::db::{Db, ExecCached, sql_int, unavailable};
use crate::ports::{Clock, Message, Queue, StoreError};

pub struct SqliteQueue {
    db: Db,
    /// Woken when a message is sent (by this handle or by the workflow engine's outbox).
    arrived: Arc<Notify>,
    name: String,
    dead_letter: String,
    max_receives: u32,
    clock: Arc<dyn Clock>,
}

impl SqliteQueue {
    /// The queue `name`; a message received `max_receives` times without being deleted
    /// moves to `<name>-dlq` on its next receive (SQS's redrive policy).
    pub fn new(db: Db, name: &str, max_receives: u32, clock: Arc<dyn Clock>) -> Self {
        SqliteQueue {
            db,
            arrived: Arc::new(Notify::new()),
            name: name.to_owned(),
            dead_letter: format!("{name}-dlq"),
            max_receives: max_receives.max(1),
            clock,
        }
    }

    /// Makes every message being worked on visible again. Local mode calls this at start:
    /// one process owns the data directory, so deliveries in flight belong to a previous
    /// life of the process and would otherwise wait out their visibility timeout.
    pub async fn release_in_flight(&self) -> Result<usize, StoreError> {
        let (queue, now) = (self.name.clone(), self.now_ms());
        self.db
            .call(move |conn| {
                conn.exec(
                    "UPDATE queue_messages SET visible_at = ?2, receipt = NULL
                     WHERE queue = ?1 AND receipt IS NOT NULL AND visible_at > ?2",
                    params![queue, now],
                )
                .map_err(unavailable)
            })
            .await
    }

    fn now_ms(&self) -> i64 {
        unix_ms(self.clock.now())
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handle that puts messages on this queue from inside another store's
    /// transaction (the request store's handoff, the workflow engine's task messages),
    /// and wakes a waiting receiver once it has committed.
    pub fn outbox(&self) -> Outbox {
        Outbox {
            queue: self.name.clone(),
            arrived: self.arrived.clone(),
        }
    }
}

/// Puts messages on a queue inside the transaction of a store that shares its database:
/// the message is sent if and only if the store's write commits (a transactional
/// outbox, whose relay is the queue itself).
#[derive(Clone)]
pub struct Outbox {
    queue: String,
    arrived: Arc<Notify>,
}

impl Outbox {
    /// Puts message `id` on the queue, visible `delay` after `now_ms`, inside the
    /// transaction `conn` is in.
    pub fn put(
        &self,
        conn: &rusqlite::Connection,
        id: &str,
        body: &str,
        now_ms: i64,
        delay: Duration,
    ) -> Result<(), StoreError> {
        insert_message(conn, id, &self.queue, body, now_ms, delay)
    }

    /// Wakes a waiting receiver; call once the transaction has committed.
    pub fn notify(&self) {
        self.arrived.notify_one();
    }
}

/// Milliseconds since the Unix epoch, as the queue stores times.
pub fn unix_ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Puts a message on `queue`, visible `delay` after `now_ms`, inside the caller's
/// transaction: the queue's send, and an [`Outbox`]'s.
fn insert_message(
    conn: &rusqlite::Connection,
    id: &str,
    queue: &str,
    body: &str,
    now_ms: i64,
    delay: Duration,
) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO queue_messages (id, queue, body, sent_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, queue, body, now_ms, now_ms.saturating_add(millis(delay))],
    )
    .map_err(unavailable)?;
    Ok(())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A new message id (time-ordered).
pub fn new_message_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A receipt handle names its message and this one delivery of it, so deleting or
/// hiding by receipt is a primary-key lookup, and a stale receipt (from an earlier
/// delivery) matches nothing.
fn receipt_for(id: &str) -> String {
    format!("{id}/{}", uuid::Uuid::new_v4().simple())
}

/// The message id in a receipt handle (`None` for a handle this queue never issued).
fn message_of(receipt: &str) -> Option<&str> {
    receipt.split_once('/').map(|(id, _)| id)
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<String, StoreError> {
        let (queue, body, now) = (self.name.clone(), body.to_owned(), self.now_ms());
        let id = new_message_id();
        let sent = id.clone();
        self.db
            .call(move |conn| insert_message(conn, &sent, &queue, &body, now, delay))
            .await?;
        self.arrived.notify_one();
        Ok(id)
    }

    async fn wait(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.arrived.notified()).await;
    }

    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Message>, StoreError> {
        let (queue, dlq, max_receives, now) = (
            self.name.clone(),
            self.dead_letter.clone(),
            self.max_receives,
            self.now_ms(),
        );
        let hidden_until = now.saturating_add(millis(visibility));
        self.db
            .call(move |tx| {
                let mut out = Vec::new();
                let mut select = tx
                    .prepare_cached(
                        "SELECT id, body, receive_count FROM queue_messages
                         WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, id LIMIT ?3",
                    )
                    .map_err(unavailable)?;
                // Dead-lettered messages do not count toward `max`: they leave the queue,
                // and the next round looks further. Rounds read only what they may hand
                // out (the worker mostly asks for one message at a time).
                loop {
                    let wanted = max - out.len();
                    let candidates: Vec<(String, String, u32)> = select
                        .query_map(params![queue, now, sql_int(wanted)], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })
                        .map_err(unavailable)?
                        .collect::<Result<_, _>>()
                        .map_err(unavailable)?;
                    let exhausted = candidates.len() < wanted;
                    for (id, body, count) in candidates {
                        if count >= max_receives {
                            tx.exec(
                                "UPDATE queue_messages SET queue = ?2, receipt = NULL, visible_at = ?3 WHERE id = ?1",
                                params![id, dlq, now],
                            )
                            .map_err(unavailable)?;
                            continue;
                        }
                        let receipt = receipt_for(&id);
                        tx.exec(
                            "UPDATE queue_messages SET receive_count = ?2, receipt = ?3, visible_at = ?4 WHERE id = ?1",
                            params![id, count + 1, receipt, hidden_until],
                        )
                        .map_err(unavailable)?;
                        out.push(Message {
                            id,
                            receipt,
                            body,
                            receive_count: count + 1,
                        });
                    }
                    if exhausted || out.len() == max {
                        break;
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn delete(&self, receipt: &str) -> Result<(), StoreError> {
        let Some(id) = message_of(receipt).map(str::to_owned) else {
            return Err(StoreError::NotFound);
        };
        let (queue, receipt) = (self.name.clone(), receipt.to_owned());
        let deleted = self
            .db
            .call(move |conn| {
                conn.exec(
                    "DELETE FROM queue_messages WHERE id = ?1 AND queue = ?2 AND receipt = ?3",
                    params![id, queue, receipt],
                )
                .map_err(unavailable)
            })
            .await?;
        if deleted == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn change_visibility(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), StoreError> {
        let Some(id) = message_of(receipt).map(str::to_owned) else {
            return Err(StoreError::NotFound);
        };
        let (queue, receipt) = (self.name.clone(), receipt.to_owned());
        let visible_at = self.now_ms().saturating_add(millis(visibility));
        let changed = self
            .db
            .call(move |conn| {
                conn.exec(
                    "UPDATE queue_messages SET visible_at = ?4 WHERE id = ?1 AND queue = ?2 AND receipt = ?3",
                    params![id, queue, receipt, visible_at],
                )
                .map_err(unavailable)
            })
            .await?;
        if changed == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<Message>, StoreError> {
        let dlq = self.dead_letter.clone();
        self.db
            .call(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT id, body, receive_count FROM queue_messages WHERE queue = ?1 ORDER BY sent_at, id LIMIT ?2",
                    )
                    .map_err(unavailable)?;
                let rows = stmt
                    .query_map(params![dlq, sql_int(limit)], |r| {
                        Ok(Message {
                            id: r.get(0)?,
                            receipt: String::new(),
                            body: r.get(1)?,
                            receive_count: r.get(2)?,
                        })
                    })
                    .map_err(unavailable)?;
                rows.collect::<Result<_, _>>().map_err(unavailable)
            })
            .await
    }
}
