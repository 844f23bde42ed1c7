//! The audit log on DynamoDB (docs/dynamodb.md): one item per entry, `pk = "audit"`,
//! `sk = <entry id>` (UUIDv7, so the sort key orders by time), the entry as JSON in `v`;
//! GSI `gsi1` (`gsi1pk = "audit-actor#<actor>"`, `gsi1sk = <entry id>`) lists one actor's
//! entries. Both lists read newest first; the cursor is the last id returned.
//!
//! One partition takes about 1,000 writes a second, far above the rate of state-changing
//! API calls an orchestrator sees; reads through the GSI are eventually consistent.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use shared::ports::{AuditLog, AuditQuery, Page, StoreError};
use shared::requests::model::AuditEntry;

use crate::items::parse;
use crate::pages::newest_first;
use crate::state::unavailable;

const PARTITION: &str = "audit";
/// The largest page a caller gets, whatever it asks for (as the embedded log).
const MAX_PAGE: usize = 500;

pub struct DynamoAuditLog {
    client: Client,
    table: String,
}

impl DynamoAuditLog {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        DynamoAuditLog {
            client: Client::new(config),
            table: table.into(),
        }
    }
}

fn actor_key(actor: &str) -> AttributeValue {
    AttributeValue::S(format!("audit-actor#{actor}"))
}

#[async_trait]
impl AuditLog for DynamoAuditLog {
    async fn append(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let record = serde_json::to_string(entry)
            .map_err(|e| StoreError::Corrupt(format!("audit entry: {e}")))?;
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(PARTITION.to_owned())),
            ("sk".to_owned(), AttributeValue::S(entry.id.clone())),
            ("gsi1pk".to_owned(), actor_key(&entry.actor)),
            ("gsi1sk".to_owned(), AttributeValue::S(entry.id.clone())),
            ("v".to_owned(), AttributeValue::S(record)),
        ]);
        // Append-only: an id is written once (a retried append is a no-op).
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable("PutItem", &e)),
        }
    }

    async fn list(&self, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let (index, partition_name, sort_name, partition) = match &query.actor {
            Some(actor) => (Some("gsi1"), "gsi1pk", "gsi1sk", actor_key(actor)),
            None => (None, "pk", "sk", AttributeValue::S(PARTITION.to_owned())),
        };
        let mut condition = format!("{partition_name} = :p");
        let mut values = HashMap::from([(":p".to_owned(), partition)]);
        if let Some(cursor) = &query.cursor {
            condition.push_str(&format!(" AND {sort_name} < :cursor"));
            values.insert(":cursor".to_owned(), AttributeValue::S(cursor.clone()));
        }
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_owned))
            .consistent_read(index.is_none())
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values));
        newest_first(
            request,
            limit,
            |item| parse(item, "audit entry"),
            |e: &AuditEntry| e.id.clone(),
            None,
        )
        .await
    }
}
