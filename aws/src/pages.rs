//! Lists read newest first from a DynamoDB Query, a page at a time by cursor: the shared
//! loop of the audit log and the request store.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use shared::ports::{Page, StoreError};

use crate::items::Table;
use crate::state::unavailable;

/// Runs `query` (key condition, filters and values set) newest first until it has one
/// more item than `limit` (which tells there is a next page) or reaches the end; the next
/// cursor is `cursor_of` the last item returned.
pub(crate) async fn newest_first<T>(
    query: QueryFluentBuilder,
    limit: usize,
    read: impl Fn(&HashMap<String, AttributeValue>) -> Result<T, StoreError>,
    cursor_of: impl Fn(&T) -> String,
    skip: Option<&str>,
) -> Result<Page<T>, StoreError> {
    let mut items: Vec<T> = Vec::new();
    let mut start = None;
    loop {
        let out = query
            .clone()
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| unavailable("Query", &e))?;
        for item in out.items() {
            let item = read(item)?;
            if skip.is_none_or(|skip| cursor_of(&item) != skip) {
                items.push(item);
            }
        }
        match out.last_evaluated_key() {
            Some(last) if !last.is_empty() && items.len() <= limit => start = Some(last.clone()),
            _ => break,
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

/// A newest-first listing through one index of `table`: the partition to read, from
/// below a cursor, with filters on other attributes added one by one.
pub(crate) struct Listing {
    index: &'static str,
    condition: String,
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
        let mut condition = format!("{index}pk = :p");
        let mut values = HashMap::from([(":p".to_owned(), AttributeValue::S(partition))]);
        let mut skip = None;
        match (from, below) {
            (None, None) => {}
            (None, Some(below)) => {
                condition.push_str(&format!(" AND {index}sk < :below"));
                values.insert(":below".to_owned(), AttributeValue::S(below.to_owned()));
            }
            (Some(from), None) => {
                condition.push_str(&format!(" AND {index}sk >= :from"));
                values.insert(":from".to_owned(), AttributeValue::S(from.to_owned()));
            }
            // A key condition takes one comparison per key: both ends, then drop `below`.
            (Some(from), Some(below)) => {
                condition.push_str(&format!(" AND {index}sk BETWEEN :from AND :below"));
                values.insert(":from".to_owned(), AttributeValue::S(from.to_owned()));
                values.insert(":below".to_owned(), AttributeValue::S(below.to_owned()));
                skip = Some(below.to_owned());
            }
        }
        Listing {
            index,
            condition,
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
    pub(crate) async fn page<T>(
        self,
        table: &Table,
        limit: usize,
        read: impl Fn(&HashMap<String, AttributeValue>) -> Result<T, StoreError>,
        cursor_of: impl Fn(&T) -> String,
    ) -> Result<Page<T>, StoreError> {
        let query = table
            .client
            .query()
            .table_name(&table.name)
            .index_name(self.index)
            .key_condition_expression(self.condition)
            .set_filter_expression((!self.filters.is_empty()).then(|| self.filters.join(" AND ")))
            .set_expression_attribute_names((!self.names.is_empty()).then_some(self.names))
            .set_expression_attribute_values(Some(self.values));
        let skip = self.skip;
        newest_first(query, limit, read, cursor_of, skip.as_deref()).await
    }
}
