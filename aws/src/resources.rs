//! The resource store on DynamoDB (docs/dynamodb.md).
//!
//! - A resource is the item `pk = "res#<id>"`, `sk = "res"`: the record as JSON in `v`,
//!   its version in `ver`, `status` and `item` for filters, and index keys: `gsi1` by
//!   requester, `gsi2` by owner team, `gsi3` all live resources (`resources`) or all
//!   tombstones (`resources#deleted`), so listing the live ones never reads the deleted,
//!   each list write-sharded (`resources#<shard>`, merged when read). Each `gsiNsk` is
//!   the id.
//! - Its history entries are items `sk = "ch#<serial>"` in the same partition, written in
//!   the transaction that writes the record.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use shared::ports::{Page, ResourceQuery, ResourceStore, StoreError};
use shared::resources::model::{Resource, ResourceChange, ResourceStatus};

use crate::items::{Item, Table, json, key, n, parse, s};
use crate::pages::Listing;
use crate::shards::{self, partition_of};

const MAX_PAGE: usize = 1000;
const LIVE: &str = "resources";
const TOMBSTONES: &str = "resources#deleted";

pub struct DynamoResourceStore {
    table: Table,
}

fn partition(id: &str) -> String {
    format!("res#{id}")
}

/// The sharded `gsi3` list a resource in `status` is in.
fn list_of(status: ResourceStatus) -> &'static str {
    if status == ResourceStatus::Deleted {
        TOMBSTONES
    } else {
        LIVE
    }
}

/// The `gsi3` partition `resource` is listed in: its list's shard.
fn listed_in(resource: &Resource) -> String {
    partition_of(list_of(resource.status), &resource.id)
}

impl DynamoResourceStore {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        DynamoResourceStore {
            table: Table::new(config, table),
        }
    }

    fn change_put(&self, change: &ResourceChange) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(
            partition(&change.resource_id),
            &format!("ch#{:012}", change.serial),
        );
        item.insert("v".to_owned(), s(json(change)?));
        self.table.put(item, Some("attribute_not_exists(pk)"), None)
    }

    fn record(resource: &Resource) -> Result<Item, StoreError> {
        let mut item = key(partition(&resource.id), "res");
        item.extend([
            ("v".to_owned(), s(json(resource)?)),
            ("ver".to_owned(), n(resource.version)),
            ("status".to_owned(), s(resource.status.as_str())),
            ("item".to_owned(), s(resource.item.clone())),
            (
                "gsi1pk".to_owned(),
                s(format!("res-requester#{}", resource.requester)),
            ),
            ("gsi1sk".to_owned(), s(resource.id.clone())),
            (
                "gsi2pk".to_owned(),
                s(format!("res-owner#{}", resource.owner)),
            ),
            ("gsi2sk".to_owned(), s(resource.id.clone())),
            ("gsi3pk".to_owned(), s(listed_in(resource))),
            ("gsi3sk".to_owned(), s(resource.id.clone())),
        ]);
        Ok(item)
    }
}

#[async_trait]
impl ResourceStore for DynamoResourceStore {
    async fn create(
        &self,
        resource: &Resource,
        change: &ResourceChange,
    ) -> Result<bool, StoreError> {
        let items = vec![
            self.table.put(
                Self::record(resource)?,
                Some("attribute_not_exists(pk)"),
                None,
            )?,
            self.change_put(change)?,
        ];
        self.table.transact(items).await
    }

    async fn get(&self, id: &str) -> Result<Option<Resource>, StoreError> {
        self.table
            .get(partition(id), "res")
            .await?
            .map(|item| parse(&item, "resource"))
            .transpose()
    }

    async fn update(
        &self,
        resource: &Resource,
        change: Option<&ResourceChange>,
    ) -> Result<(), StoreError> {
        let previous = resource.version.saturating_sub(1);
        let update = Update::builder()
            .table_name(&self.table.name)
            .set_key(Some(key(partition(&resource.id), "res")))
            .update_expression("SET v = :v, ver = :ver, #status = :status, gsi3pk = :listed")
            .condition_expression("ver = :previous")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":v", s(json(resource)?))
            .expression_attribute_values(":ver", n(resource.version))
            .expression_attribute_values(":status", s(resource.status.as_str()))
            .expression_attribute_values(":listed", s(listed_in(resource)))
            .expression_attribute_values(":previous", n(previous))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if let Some(change) = change {
            items.push(self.change_put(change)?);
        }
        if self.table.transact(items).await? {
            return Ok(());
        }
        // Refused: another write came first, or there is no such resource.
        match self.table.get(partition(&resource.id), "res").await? {
            Some(_) => Err(StoreError::VersionConflict { expected: previous }),
            None => Err(StoreError::NotFound),
        }
    }

    async fn list(&self, query: &ResourceQuery) -> Result<Page<Resource>, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let (index, partitions) = match (&query.requester, &query.owner) {
            (Some(sub), _) => ("gsi1", vec![format!("res-requester#{sub}")]),
            (None, Some(team)) => ("gsi2", vec![format!("res-owner#{team}")]),
            (None, None) => (
                "gsi3",
                shards::partitions(list_of(query.status.unwrap_or(ResourceStatus::Ready))),
            ),
        };
        let mut listing = Listing::merged(Some(index), partitions, query.cursor.as_deref(), None);
        if let (Some(_), Some(team)) = (&query.requester, &query.owner) {
            listing = listing.filter("gsi2pk", "=", format!("res-owner#{team}"));
        }
        listing = match query.status {
            Some(status) => listing.filter("status", "=", status.as_str().to_owned()),
            // Tombstones only when asked for.
            None => listing.filter("status", "<>", ResourceStatus::Deleted.as_str().to_owned()),
        };
        if let Some(item) = &query.item {
            listing = listing.filter("item", "=", item.clone());
        }
        listing
            .page(
                &self.table,
                limit,
                |item| parse(item, "resource"),
                |r: &Resource| r.id.clone(),
            )
            .await
    }

    async fn history(&self, id: &str) -> Result<Vec<ResourceChange>, StoreError> {
        self.table
            .partition(partition(id), "ch#")
            .await?
            .iter()
            .map(|item| parse(item, "resource change"))
            .collect()
    }
}
