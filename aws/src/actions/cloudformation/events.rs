//! A stack's events on the request's timeline as they happen: each look at a stack in
//! progress reads the events CloudFormation recorded since the last look (since the
//! action started, on the first), oldest first.

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::primitives::{DateTime, DateTimeFormat};
use aws_sdk_cloudformation::types::StackEvent;
use shared::requests::model::TargetEvent;

/// The most events one look reports (a look every few seconds keeps up with any stack).
const MAX_PER_LOOK: usize = 50;

/// Clocks differ: events up to this long before the action started are its own.
const SKEW_SECS: i64 = 5;

/// What a look found: the new events, oldest first, and the newest event's id.
pub(super) struct Look {
    pub events: Vec<TargetEvent>,
    pub last: Option<String>,
}

fn event(e: &StackEvent) -> TargetEvent {
    TargetEvent {
        resource: e.logical_resource_id().unwrap_or("?").to_owned(),
        resource_type: e.resource_type().map(str::to_owned),
        status: e
            .resource_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        reason: e.resource_status_reason().map(str::to_owned),
        at: e
            .timestamp()
            .and_then(|t| t.fmt(DateTimeFormat::DateTime).ok()),
    }
}

/// The events of `stack` newer than the event `last` (none: than `started`, RFC 3339).
/// A stack whose events cannot be read has none to report: the look goes on.
pub(super) async fn since(client: &Client, stack: &str, last: Option<&str>, started: &str) -> Look {
    let since = DateTime::from_str(started, DateTimeFormat::DateTime)
        .map(|t| t.secs() - SKEW_SECS)
        .unwrap_or(i64::MIN);
    let Ok(page) = client
        .describe_stack_events()
        .stack_name(stack)
        .send()
        .await
    else {
        return Look {
            events: Vec::new(),
            last: last.map(str::to_owned),
        };
    };
    // Newest first: take until the last one reported, or one from before the action;
    // report the oldest first, the rest at the next look.
    let mut fresh: Vec<&StackEvent> = page
        .stack_events()
        .iter()
        .take_while(|e| last.is_none_or(|l| e.event_id() != Some(l)))
        .filter(|e| e.timestamp().is_none_or(|t| t.secs() >= since))
        .collect();
    fresh.reverse();
    fresh.truncate(MAX_PER_LOOK);
    let newest = fresh
        .last()
        .and_then(|e| e.event_id())
        .map(str::to_owned)
        .or_else(|| last.map(str::to_owned));
    Look {
        events: fresh.into_iter().map(event).collect(),
        last: newest,
    }
}
