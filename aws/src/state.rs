//! The state store on DynamoDB (the single table of docs/dynamodb.md): record `key` of
//! `table` is the item `pk = "state#<table>"`, `sk = <key>`, with the JSON value in `v` and
//! the version in `ver`. Every write is conditional on the version read; listing is a
//! Query on the partition with `begins_with` on the sort key, so keys come in order.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use shared::ports::{StateStore, StoreError, Versioned};

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct DynamoStateStore {
    client: Client,
    table: String,
    /// State tables whose records expire (DynamoDB's TTL on `expiresAt`), and after how
    /// long a write.
    expiring: HashMap<String, Duration>,
}

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether `item` has an `expiresAt` not after now: gone as far as readers go, though
/// DynamoDB deletes it only some time later.
fn expired(item: &HashMap<String, AttributeValue>) -> bool {
    item.get("expiresAt")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|at| at <= epoch_now())
}

impl DynamoStateStore {
    /// The store in the DynamoDB table `table` (partition key `pk`, sort key `sk`).
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        DynamoStateStore {
            client: Client::new(config),
            table: table.into(),
            expiring: HashMap::new(),
        }
    }

    /// Records of the state table `table` expire `ttl` after their last write (webhook
    /// delivery records: a replay older than that is handled as new).
    pub fn expiring(mut self, table: &str, ttl: Duration) -> Self {
        self.expiring.insert(table.to_owned(), ttl);
        self
    }

    fn partition(table: &str) -> AttributeValue {
        AttributeValue::S(format!("state#{table}"))
    }

    fn key(table: &str, key: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), Self::partition(table)),
            ("sk".to_owned(), AttributeValue::S(key.to_owned())),
        ])
    }

    /// Whether the record exists now (after a conditional write failed: conflict or gone).
    async fn exists(&self, table: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self.get(table, key).await?.is_some())
    }
}

pub(crate) fn unavailable<E, R>(operation: &str, e: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(format!("DynamoDB {operation}: {}", DisplayErrorContext(e)))
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// The value and version of an item, or why it is unreadable.
fn versioned(item: &HashMap<String, AttributeValue>) -> Result<Versioned, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("state item without {what}"));
    let text = item
        .get("v")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| corrupt("a value"))?;
    let version = item
        .get("ver")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| corrupt("a version"))?;
    let value = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("state value is not JSON: {e}")))?;
    Ok(Versioned { value, version })
}

#[async_trait]
impl StateStore for DynamoStateStore {
    async fn get(&self, table: &str, key: &str) -> Result<Option<Versioned>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(table, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", &e))?;
        out.item()
            .filter(|item| !expired(item))
            .map(versioned)
            .transpose()
    }

    async fn put(
        &self,
        table: &str,
        key: &str,
        value: &Value,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        let next = expected.unwrap_or(0) + 1;
        let mut item = Self::key(table, key);
        item.insert("v".to_owned(), AttributeValue::S(value.to_string()));
        item.insert("ver".to_owned(), number(next));
        if let Some(ttl) = self.expiring.get(table) {
            item.insert("expiresAt".to_owned(), number(epoch_now() + ttl.as_secs()));
        }
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match expected {
            None => request
                .condition_expression("attribute_not_exists(pk) OR expiresAt <= :now")
                .expression_attribute_values(":now", number(epoch_now())),
            Some(version) => request
                .condition_expression("ver = :expected")
                .expression_attribute_values(":expected", number(version)),
        };
        match request.send().await {
            Ok(_) => Ok(next),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::VersionConflict {
                    expected: expected.unwrap_or(0),
                })
            }
            Err(e) => Err(unavailable("PutItem", &e)),
        }
    }

    async fn delete(&self, table: &str, key: &str, expected: u64) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(table, key)))
            .condition_expression("ver = :expected")
            .expression_attribute_values(":expected", number(expected))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                if self.exists(table, key).await? {
                    Err(StoreError::VersionConflict { expected })
                } else {
                    Err(StoreError::NotFound)
                }
            }
            Err(e) => Err(unavailable("DeleteItem", &e)),
        }
    }

    async fn list(
        &self,
        table: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        while found.len() < limit {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":pk", Self::partition(table))
                .limit(i32::try_from(limit - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            // DynamoDB refuses an empty string in a key condition: no prefix, no condition.
            query = if prefix.is_empty() {
                query.key_condition_expression("pk = :pk")
            } else {
                query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            };
            let out = query.send().await.map_err(|e| unavailable("Query", &e))?;
            for item in out.items().iter().filter(|item| !expired(item)) {
                let key = item
                    .get("sk")
                    .and_then(|k| k.as_s().ok())
                    .ok_or_else(|| StoreError::Corrupt("state item without a key".to_owned()))?;
                found.push((key.clone(), versioned(item)?));
            }
            match out.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}
