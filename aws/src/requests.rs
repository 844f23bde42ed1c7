//! The request store on DynamoDB (docs/dynamodb.md).
//!
//! - A request is the item `pk = "req#<id>"`, `sk = "req"`: the request as JSON in `v`, its
//!   version in `ver`, `status` and `target` for filters, the timeline's counter in
//!   `events`, and index keys: `gsi1` by requester, `gsi2` by owner, `gsi3` all requests
//!   (write-sharded: `requests#<shard>`, merged when read), each sorted by the id (UUIDv7:
//!   time order).
//! - Its events are items `sk = "ev#<n>"` in the same partition. A writer reserves `n` by
//!   adding to the counter first, so notes written side by side never collide; the
//!   timeline is read in order and numbered from 1 (a number reserved by a write that then
//!   failed leaves no gap).
//! - An idempotency key is the item `pk = "idem#<requester>#<key>"` naming the request,
//!   written in the same transaction as the request; a JIRA issue is `pk = "ticket#<key>"`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use shared::ports::{Created, Page, RequestQuery, RequestStore, StoreError};
use shared::requests::model::{Request, RequestEvent, RequestId};

use crate::items::{Item, Table, json, key, n, parse, refused, s};
use crate::pages::Listing;
use crate::shards::{self, partition_of};
use crate::state::unavailable;

const MAX_PAGE: usize = 500;
/// The sharded list (`gsi3`) every request is in.
const ALL: &str = "requests";

/// How long an idempotency key names its request: a day, as payment APIs keep theirs.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

pub struct DynamoRequestStore {
    table: Table,
    idempotency_ttl: Duration,
}

fn partition(id: &RequestId) -> String {
    format!("req#{id}")
}

fn status_of(request: &Request) -> String {
    request.status.as_str().to_owned()
}

fn event_key(id: &RequestId, seq: u64) -> Item {
    key(partition(id), &format!("ev#{seq:012}"))
}

/// Seconds since the epoch, as DynamoDB's TTL reads `expiresAt`.
fn epoch(at: time::OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp()).unwrap_or(0)
}

impl DynamoRequestStore {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        DynamoRequestStore {
            table: Table::new(config, table),
            idempotency_ttl: IDEMPOTENCY_TTL,
        }
    }

    /// How long an idempotency key keeps naming its request ([`IDEMPOTENCY_TTL`] unless
    /// set): after that, DynamoDB's TTL removes the reference and the key is free again.
    pub fn with_idempotency_ttl(mut self, ttl: Duration) -> Self {
        self.idempotency_ttl = ttl;
        self
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        self.table.put(item, condition, None)
    }

    fn event_put(&self, event: &RequestEvent, seq: u64) -> Result<TransactWriteItem, StoreError> {
        let mut item = event_key(&event.request_id, seq);
        item.insert("v".to_owned(), s(json(event)?));
        self.put(item, Some("attribute_not_exists(pk)"))
    }

    /// Reserves `count` timeline numbers of request `id`: the last one. `NotFound` when
    /// there is no such request.
    async fn reserve(&self, id: &RequestId, count: u64) -> Result<u64, StoreError> {
        let out = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(partition(id), "req")))
            .update_expression("ADD events :n")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":n", n(count))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match out {
            Ok(out) => out
                .attributes()
                .and_then(|a| a.get("events"))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| StoreError::Corrupt("request without an event counter".to_owned())),
            Err(e) if refused(&e) => Err(StoreError::NotFound),
            Err(e) => Err(unavailable("UpdateItem", &e)),
        }
    }

    /// The request a reference names; one whose `expiresAt` is not after `now` names
    /// none.
    async fn by_reference(
        &self,
        pk: String,
        now: Option<u64>,
    ) -> Result<Option<Request>, StoreError> {
        let Some(item) = self.table.get(pk, "ref").await? else {
            return Ok(None);
        };
        let expires = item
            .get("expiresAt")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(now), Some(expires)) = (now, expires)
            && expires <= now
        {
            return Ok(None);
        }
        let id: RequestId = item
            .get("rid")
            .and_then(|v| v.as_s().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Corrupt("reference without a request id".to_owned()))?;
        self.get(&id).await
    }

    fn request_item(&self, request: &Request) -> Result<Item, StoreError> {
        let id = request.id.to_string();
        let mut item = key(partition(&request.id), "req");
        item.extend([
            ("v".to_owned(), s(json(request)?)),
            ("ver".to_owned(), n(request.version)),
            ("status".to_owned(), s(status_of(request))),
            ("target".to_owned(), s(request.target.clone())),
            ("events".to_owned(), n(1)),
            (
                "gsi1pk".to_owned(),
                s(format!("requester#{}", request.requester.sub)),
            ),
            ("gsi1sk".to_owned(), s(id.clone())),
            ("gsi2pk".to_owned(), s(format!("owner#{}", request.owner))),
            ("gsi2sk".to_owned(), s(id.clone())),
            ("gsi3pk".to_owned(), s(partition_of(ALL, &id))),
            ("gsi3sk".to_owned(), s(id)),
        ]);
        Ok(item)
    }
}

#[async_trait]
impl RequestStore for DynamoRequestStore {
    /// The handoff is the caller's to send: DynamoDB and SQS share no transaction.
    async fn create(
        &self,
        request: &Request,
        event: &RequestEvent,
        _handoff: &str,
    ) -> Result<Created, StoreError> {
        let mut items = vec![
            self.put(
                self.request_item(request)?,
                Some("attribute_not_exists(pk)"),
            )?,
            self.event_put(event, 1)?,
        ];
        let idempotency = request
            .idempotency_key
            .as_ref()
            .map(|k| format!("idem#{}#{k}", request.requester.sub));
        if let Some(pk) = &idempotency {
            let now = epoch(request.created_at);
            let expires = now + self.idempotency_ttl.as_secs();
            let mut reference = key(pk.clone(), "ref");
            reference.insert("rid".to_owned(), s(request.id.to_string()));
            reference.insert("expiresAt".to_owned(), n(expires));
            // TTL deletes lag (up to days): a reference past its time is free already.
            let values = HashMap::from([(":now".to_owned(), n(now))]);
            items.push(self.table.put(
                reference,
                Some("attribute_not_exists(pk) OR expiresAt <= :now"),
                Some(values),
            )?);
        }
        if self.table.transact(items).await? {
            return Ok(Created::New { handed_off: false });
        }
        // Refused: the key was used (or, never in practice, the id was).
        match idempotency {
            Some(pk) => match self
                .by_reference(pk, Some(epoch(request.created_at)))
                .await?
            {
                Some(existing) => Ok(Created::Existing(Box::new(existing))),
                None => Err(StoreError::VersionConflict { expected: 0 }),
            },
            None => Err(StoreError::VersionConflict { expected: 0 }),
        }
    }

    async fn get(&self, id: &RequestId) -> Result<Option<Request>, StoreError> {
        self.table
            .get(partition(id), "req")
            .await?
            .map(|item| parse(&item, "request"))
            .transpose()
    }

    async fn update(&self, request: &Request, event: &RequestEvent) -> Result<(), StoreError> {
        let previous = request.version.saturating_sub(1);
        let seq = self.reserve(&request.id, 1).await?;
        let update = Update::builder()
            .table_name(&self.table.name)
            .set_key(Some(key(partition(&request.id), "req")))
            .update_expression("SET v = :v, ver = :ver, #status = :status")
            .condition_expression("ver = :previous")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":v", s(json(request)?))
            .expression_attribute_values(":ver", n(request.version))
            .expression_attribute_values(":status", s(status_of(request)))
            .expression_attribute_values(":previous", n(previous))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().update(update).build(),
            self.event_put(event, seq)?,
        ];
        if let Some(ticket) = &request.ticket {
            let mut reference = key(format!("ticket#{}", ticket.key), "ref");
            reference.insert("rid".to_owned(), s(request.id.to_string()));
            // One issue, one request: the reference is written once, or again by its own.
            let values = HashMap::from([(":rid".to_owned(), s(request.id.to_string()))]);
            items.push(self.table.put(
                reference,
                Some("attribute_not_exists(pk) OR rid = :rid"),
                Some(values),
            )?);
        }
        if self.table.transact(items).await? {
            Ok(())
        } else {
            Err(StoreError::VersionConflict { expected: previous })
        }
    }

    async fn append(&self, id: &RequestId, events: &[RequestEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let count = u64::try_from(events.len()).unwrap_or(u64::MAX);
        let last = self.reserve(id, count).await?;
        let first = last + 1 - count;
        // At most 100 items per transaction; notes come a few at a time.
        for (chunk_index, chunk) in events.chunks(100).enumerate() {
            let base = first + 100 * u64::try_from(chunk_index).unwrap_or(0);
            let items = chunk
                .iter()
                .zip(base..)
                .map(|(event, seq)| self.event_put(event, seq))
                .collect::<Result<Vec<_>, _>>()?;
            if !self.table.transact(items).await? {
                return Err(StoreError::VersionConflict { expected: 0 });
            }
        }
        Ok(())
    }

    async fn list(&self, query: &RequestQuery) -> Result<Page<Request>, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let (index, partitions) = match (&query.requester, &query.owner) {
            (Some(sub), _) => ("gsi1", vec![format!("requester#{sub}")]),
            (None, Some(team)) => ("gsi2", vec![format!("owner#{team}")]),
            (None, None) => ("gsi3", shards::partitions(ALL)),
        };
        let (from, below) = query.id_bounds();
        if let (Some(from), Some(below)) = (&from, &below)
            && below <= from
        {
            // An empty range: DynamoDB refuses a `BETWEEN` whose ends are reversed.
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let mut listing =
            Listing::merged(Some(index), partitions, below.as_deref(), from.as_deref());
        if let (Some(_), Some(team)) = (&query.requester, &query.owner) {
            listing = listing.filter("gsi2pk", "=", format!("owner#{team}"));
        }
        if let Some(status) = query.status {
            listing = listing.filter("status", "=", status.as_str().to_owned());
        }
        if let Some(target) = &query.target {
            listing = listing.filter("target", "=", target.clone());
        }
        listing
            .page(
                &self.table,
                limit,
                |item| parse(item, "request"),
                |r: &Request| r.id.to_string(),
            )
            .await
    }

    async fn events(&self, id: &RequestId) -> Result<Vec<RequestEvent>, StoreError> {
        self.table
            .partition(partition(id), "ev#")
            .await?
            .iter()
            .zip(1..)
            .map(|(item, seq)| {
                let mut event: RequestEvent = parse(item, "request event")?;
                event.seq = seq;
                Ok(event)
            })
            .collect()
    }

    async fn replace_timeline(
        &self,
        id: &RequestId,
        marker: &RequestEvent,
    ) -> Result<(), StoreError> {
        // The marker first, then the events before it: stopped in between, the timeline
        // still ends with the marker, and replacing it again removes the rest.
        let seq = self.reserve(id, 1).await?;
        if !self
            .table
            .transact(vec![self.event_put(marker, seq)?])
            .await?
        {
            return Err(StoreError::VersionConflict { expected: 0 });
        }
        let marker_key = event_key(id, seq);
        let earlier: Vec<Item> = self
            .table
            .partition(partition(id), "ev#")
            .await?
            .into_iter()
            .filter_map(|item| {
                let key: Item = ["pk", "sk"]
                    .into_iter()
                    .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
                    .collect();
                (key != marker_key).then_some(key)
            })
            .collect();
        self.table.delete_all(earlier).await
    }

    async fn find_by_ticket(&self, key: &str) -> Result<Option<Request>, StoreError> {
        self.by_reference(format!("ticket#{key}"), None).await
    }
}
