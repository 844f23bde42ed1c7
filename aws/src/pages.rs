//! Lists read newest first from DynamoDB Queries, a page at a time by cursor: the shared
//! loop of the audit log, the request store and the resource store. A list kept in one
//! partition is one Query; a write-sharded list ([`crate::shards`]) is one Query per
//! shard, merged by sort key, so its pages and cursors are those of one list.

use std::collections::{HashMap, VecDeque};

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::try_join_all;
use shared::ports::{Page, StoreError};

use crate::items::{Item, Table};
use crate::state::unavailable;

/// The most items one Query is asked for while a filter keeps finding none.
const LARGEST_CHUNK: usize = 1000;

/// One partition's items newest first, read a chunk at a time as the merge needs them.
struct Source<T> {
    query: QueryFluentBuilder,
    read: VecDeque<T>,
    start: Option<Item>,
    exhausted: bool,
}

impl<T> Source<T> {
    /// Reads until this source has an item to offer or has none left, asking DynamoDB
    /// for `chunk` items first. Filters apply after DynamoDB's limit, so a chunk may
    /// bring none: each empty chunk makes the next one four times larger, up to
    /// [`LARGEST_CHUNK`], so a rare filter value costs few round trips.
    async fn fill(
        &mut self,
        chunk: usize,
        read: &(impl Fn(&Item) -> Result<T, StoreError> + Sync),
        keep: &(impl Fn(&T) -> bool + Sync),
    ) -> Result<(), StoreError> {
        let mut chunk = chunk;
        while self.read.is_empty() && !self.exhausted {
            let out = self
                .query
                .clone()
                .scan_index_forward(false)
                .limit(i32::try_from(chunk).unwrap_or(i32::MAX))
                .set_exclusive_start_key(self.start.take())
                .send()
                .await
                .map_err(|e| unavailable("Query", &e))?;
            for item in out.items() {
                let item = read(item)?;
                if keep(&item) {
                    self.read.push_back(item);
                }
            }
            match out.last_evaluated_key() {
                Some(last) if !last.is_empty() => self.start = Some(last.clone()),
                _ => self.exhausted = true,
            }
            chunk = (chunk * 4).min(LARGEST_CHUNK).max(chunk);
        }
        Ok(())
    }
}

/// The first `limit` items of `queries` (each one partition, key condition, filters and
/// values set) merged newest first by `cursor_of`, which must be the sort key, and the
/// next cursor when there are more. Items whose cursor is `skip` are dropped.
///
/// Each partition is read in chunks sized to its share of the page, all partitions at
/// once; a partition that runs out of read items before the page is full reads its next
/// chunk. Every item of the page comes from within the first `limit + 1` of its
/// partition, so no partition is read further than one list would be.
async fn newest_first<T: Send>(
    queries: Vec<QueryFluentBuilder>,
    limit: usize,
    read: impl Fn(&Item) -> Result<T, StoreError> + Sync,
    cursor_of: impl Fn(&T) -> String + Sync,
    skip: Option<&str>,
) -> Result<Page<T>, StoreError> {
    let keep = |item: &T| skip.is_none_or(|skip| cursor_of(item) != skip);
    let first_chunk = match queries.len() {
        // One partition: read the whole page (and one more, to know of a next) at once.
        0 | 1 => limit + 1,
        // Twice a partition's even share, so a page seldom needs a second round.
        n => ((limit + 1) * 2).div_ceil(n).max(2),
    };
    let mut sources: Vec<Source<T>> = queries
        .into_iter()
        .map(|query| Source {
            query,
            read: VecDeque::new(),
            start: None,
            exhausted: false,
        })
        .collect();
    let mut items: Vec<T> = Vec::new();
    while items.len() <= limit {
        // No source needs more than what is left of the page.
        let chunk = first_chunk.min(limit + 1 - items.len());
        try_join_all(
            sources
                .iter_mut()
                .filter(|s| s.read.is_empty() && !s.exhausted)
                .map(|s| s.fill(chunk, &read, &keep)),
        )
        .await?;
        let newest = sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.read.front().map(|item| (cursor_of(item), i)))
            .max();
        match newest.and_then(|(_, i)| sources[i].read.pop_front()) {
            Some(item) => items.push(item),
            None => break,
        }
    }
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(&cursor_of)
    } else {
        None
    };
    Ok(Page { items, next })
}

/// A newest-first listing of one or more partitions of the table or one of its indexes,
/// from below a cursor, with filters on other attributes added one by one.
pub(crate) struct Listing {
    /// `None` for the table itself (keys `pk`, `sk`, read consistently).
    index: Option<&'static str>,
    partitions: Vec<String>,
    sort_condition: String,
    filters: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    /// The upper bound, when a key condition cannot exclude it (`BETWEEN` includes both
    /// ends): the item with this key is dropped from the page.
    skip: Option<String>,
}

impl Listing {
    /// Items of partition `partition` of index `index` (keys `<index>pk`, `<index>sk`),
    /// those sorting before `below` and, when `from` is given, not before `from`.
    pub(crate) fn new(
        index: &'static str,
        partition: String,
        below: Option<&str>,
        from: Option<&str>,
    ) -> Self {
        Self::merged(Some(index), vec![partition], below, from)
    }

    /// As [`Listing::new`], over several `partitions` of `index` (the table's own keys
    /// when `None`) merged into one list.
    pub(crate) fn merged(
        index: Option<&'static str>,
        partitions: Vec<String>,
        below: Option<&str>,
        from: Option<&str>,
    ) -> Self {
        let sort = format!("{}sk", index.unwrap_or(""));
        let mut sort_condition = String::new();
        let mut values = HashMap::new();
        let mut skip = None;
        match (from, below) {
            (None, None) => {}
            (None, Some(below)) => {
                sort_condition = format!(" AND {sort} < :below");
                values.insert(":below".to_owned(), AttributeValue::S(below.to_owned()));
            }
            (Some(from), None) => {
                sort_condition = format!(" AND {sort} >= :from");
                values.insert(":from".to_owned(), AttributeValue::S(from.to_owned()));
            }
            // A key condition takes one comparison per key: both ends, then drop `below`.
            (Some(from), Some(below)) => {
                sort_condition = format!(" AND {sort} BETWEEN :from AND :below");
                values.insert(":from".to_owned(), AttributeValue::S(from.to_owned()));
                values.insert(":below".to_owned(), AttributeValue::S(below.to_owned()));
                skip = Some(below.to_owned());
            }
        }
        Listing {
            index,
            partitions,
            sort_condition,
            filters: Vec::new(),
            names: HashMap::new(),
            values,
            skip,
        }
    }

    /// Only items whose `attribute` compares to `value` by `operator` (`=`, `<>`).
    pub(crate) fn filter(mut self, attribute: &str, operator: &str, value: String) -> Self {
        let n = self.filters.len();
        self.filters.push(format!("#f{n} {operator} :f{n}"));
        self.names.insert(format!("#f{n}"), attribute.to_owned());
        self.values
            .insert(format!(":f{n}"), AttributeValue::S(value));
        self
    }

    /// A page of at most `limit`, read by `read`, the next cursor `cursor_of` its last.
    pub(crate) async fn page<T: Send>(
        self,
        table: &Table,
        limit: usize,
        read: impl Fn(&Item) -> Result<T, StoreError> + Sync,
        cursor_of: impl Fn(&T) -> String + Sync,
    ) -> Result<Page<T>, StoreError> {
        let partition = format!("{}pk", self.index.unwrap_or(""));
        let condition = format!("{partition} = :p{}", self.sort_condition);
        let filter = (!self.filters.is_empty()).then(|| self.filters.join(" AND "));
        let names = (!self.names.is_empty()).then_some(self.names);
        let queries = self
            .partitions
            .into_iter()
            .map(|p| {
                let mut values = self.values.clone();
                values.insert(":p".to_owned(), AttributeValue::S(p));
                table
                    .client
                    .query()
                    .table_name(&table.name)
                    .set_index_name(self.index.map(str::to_owned))
                    // Only the table reads consistently; an index is always eventual.
                    .consistent_read(self.index.is_none())
                    .key_condition_expression(condition.clone())
                    .set_filter_expression(filter.clone())
                    .set_expression_attribute_names(names.clone())
                    .set_expression_attribute_values(Some(values))
            })
            .collect();
        newest_first(queries, limit, read, cursor_of, self.skip.as_deref()).await
    }
}
