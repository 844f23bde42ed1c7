//! Lists read newest first from a DynamoDB Query, a page at a time by cursor: the shared
//! loop of the audit log and the request store.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use shared::ports::{Page, StoreError};

use crate::state::unavailable;

/// Runs `query` (key condition, filters and values set) newest first until it has one
/// more item than `limit` (which tells there is a next page) or reaches the end; the next
/// cursor is `cursor_of` the last item returned.
pub(crate) async fn newest_first<T>(
    query: QueryFluentBuilder,
    limit: usize,
    read: impl Fn(&HashMap<String, AttributeValue>) -> Result<T, StoreError>,
    cursor_of: impl Fn(&T) -> String,
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
            items.push(read(item)?);
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
