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
use shared::requests::model::AuditEntry;

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
}
