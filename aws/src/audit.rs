//! The audit log on DynamoDB (docs/dynamodb.md): one item per entry,
//! `pk = "audit#<shard>"` (one of [`SHARDS`] chosen from the id, so appends spread over
//! as many partitions), `sk = <entry id>` (UUIDv7, so the sort key orders by time), the
//! entry as JSON in `v`; GSI `gsi1` (`gsi1pk = "audit-actor#<actor>"`,
//! `gsi1sk = <entry id>`) lists one actor's entries. Both lists read newest first (the
//! whole log by merging its shards); the cursor is the last id returned. Reads through
//! the GSI are eventually consistent.

use async_trait::async_trait;
use aws_config::SdkConfig;
use shared::ports::{AuditLog, AuditQuery, Page, StoreError};
use shared::requests::model::{AuditEntry, RequestId};

use crate::items::{Table, json, key, parse, refused, s};
use crate::pages::Listing;
#[cfg(doc)]
use crate::shards::SHARDS;
use crate::shards::{partition_of, partitions};
use crate::state::unavailable;

/// The sharded list every entry is in.
const LOG: &str = "audit";
/// The largest page a caller gets, whatever it asks for (as the embedded log).
const MAX_PAGE: usize = 500;

pub struct DynamoAuditLog {
    table: Table,
}

impl DynamoAuditLog {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        DynamoAuditLog {
            table: Table::new(config, table),
        }
    }
}

fn actor_key(actor: &str) -> String {
    format!("audit-actor#{actor}")
}

#[async_trait]
impl AuditLog for DynamoAuditLog {
    async fn append(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut item = key(partition_of(LOG, &entry.id), &entry.id);
        item.extend([
            ("gsi1pk".to_owned(), s(actor_key(&entry.actor))),
            ("gsi1sk".to_owned(), s(entry.id.clone())),
            ("v".to_owned(), s(json(entry)?)),
        ]);
        // Append-only: an id is written once, always to its shard (a retried append is a
        // no-op).
        match self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if refused(&e) => Ok(()),
            Err(e) => Err(unavailable("PutItem", &e)),
        }
    }

    async fn list(&self, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let cursor = query.cursor.as_deref();
        let listing = match &query.actor {
            Some(actor) => Listing::new("gsi1", actor_key(actor), cursor, None),
            None => Listing::merged(None, partitions(LOG), cursor, None),
        };
        listing
            .page(
                &self.table,
                limit,
                |item| parse(item, "audit entry"),
                |e: &AuditEntry| e.id.clone(),
            )
            .await
    }

    async fn older_than(
        &self,
        before: time::OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        // Ids are UUIDv7: every entry recorded before `before` sorts below its floor. Each
        // shard gives its oldest share of the batch (retention needs old entries, not the
        // very oldest of all).
        let below = RequestId::floor(before).to_string();
        let shards = partitions(LOG);
        let share = limit.max(1).div_ceil(shards.len());
        let reads = shards.into_iter().map(|p| {
            self.table
                .client
                .query()
                .table_name(&self.table.name)
                .consistent_read(true)
                .key_condition_expression("pk = :p AND sk < :below")
                .expression_attribute_values(":p", s(p))
                .expression_attribute_values(":below", s(below.clone()))
                .scan_index_forward(true)
                .limit(i32::try_from(share).unwrap_or(i32::MAX))
                .send()
        });
        let mut entries = Vec::new();
        for out in futures::future::try_join_all(reads)
            .await
            .map_err(|e| unavailable("Query", &e))?
        {
            for item in out.items() {
                entries.push(parse::<AuditEntry>(item, "audit entry")?);
            }
        }
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        entries.truncate(limit.max(1));
        Ok(entries)
    }

    async fn remove(&self, ids: &[String]) -> Result<(), StoreError> {
        self.table
            .delete_all(
                ids.iter()
                    .map(|id| key(partition_of(LOG, id), id))
                    .collect(),
            )
            .await
    }
}
