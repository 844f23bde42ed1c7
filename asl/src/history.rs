//! Execution history in the shape of Step Functions' GetExecutionHistory: each event has a
//! `timestamp`, a `type`, an `id`, the `previousEventId`, and one `...EventDetails` object.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: u64,
    pub previous_event_id: u64,
    /// `{"<detailsKey>": {...}}`, or empty for events without details.
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl HistoryEvent {
    /// The details object, if the event has one.
    pub fn detail(&self) -> Option<&Value> {
        self.details.values().next()
    }
}

/// Hands out event ids and builds events.
#[derive(Debug)]
pub struct Recorder {
    pub events: Vec<HistoryEvent>,
    pub last_id: u64,
    pub now: OffsetDateTime,
}

impl Recorder {
    pub fn new(last_id: u64, now: OffsetDateTime) -> Recorder {
        Recorder {
            events: Vec::new(),
            last_id,
            now,
        }
    }

    /// Records an event after `previous` and returns its id.
    pub fn record(&mut self, kind: &str, previous: u64, details: Option<Value>) -> u64 {
        self.last_id += 1;
        let mut map = Map::new();
        if let Some(d) = details {
            map.insert(details_key(kind), d);
        }
        self.events.push(HistoryEvent {
            timestamp: self.now,
            kind: kind.to_owned(),
            id: self.last_id,
            previous_event_id: previous,
            details: map,
        });
        self.last_id
    }
}

/// The details field's name for an event type, as GetExecutionHistory names it.
fn details_key(kind: &str) -> String {
    const STATES: [&str; 8] = [
        "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map",
    ];
    for s in STATES {
        if let Some(rest) = kind.strip_prefix(s) {
            match rest {
                "StateEntered" => return "stateEnteredEventDetails".into(),
                "StateExited" => return "stateExitedEventDetails".into(),
                _ => {}
            }
        }
    }
    let mut chars = kind.chars();
    let first = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or_default();
    format!("{first}{}EventDetails", chars.as_str())
}

/// A JSON payload as history stores it: a string, with `…Details.truncated`.
pub fn payload(v: &Value) -> Value {
    Value::String(serde_json::to_string(v).unwrap_or_default())
}

pub fn entered(name: &str, input: &Value) -> Value {
    json!({"name": name, "input": payload(input), "inputDetails": {"truncated": false}})
}

pub fn exited(name: &str, output: &Value) -> Value {
    json!({"name": name, "output": payload(output), "outputDetails": {"truncated": false}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_keys_follow_the_api() {
        assert_eq!(details_key("TaskStateEntered"), "stateEnteredEventDetails");
        assert_eq!(details_key("MapStateExited"), "stateExitedEventDetails");
        assert_eq!(details_key("TaskScheduled"), "taskScheduledEventDetails");
        assert_eq!(
            details_key("ExecutionFailed"),
            "executionFailedEventDetails"
        );
        assert_eq!(
            details_key("MapIterationStarted"),
            "mapIterationStartedEventDetails"
        );
    }
}
