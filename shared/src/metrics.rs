//! Operational metrics: requests by status, action outcomes, circuit breakers opened,
//! drift found, executions failed, lead times and service levels missed.
//!
//! The code counts through [`count`]; where the counts go is decided once per process by
//! [`install`]. The Lambdas install [`Emf`], which writes each count to stdout in
//! CloudWatch's Embedded Metric Format, so CloudWatch Logs turns the log line into a metric
//! without an API call on the request path. Local mode installs nothing and counting costs
//! a load and a branch.
//!
//! Dimensions are few and bounded (a status, an action type, an outcome, a host): never a
//! request id or anything a requester types.

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// Requests that reached a status (dimension `Status`).
pub const REQUESTS: &str = "Requests";
/// Actions that ended (dimensions `ActionType`, `Outcome`: succeeded or failed).
pub const ACTIONS: &str = "Actions";
/// Circuit breakers that opened (dimension `Host`).
pub const BREAKERS_OPENED: &str = "BreakersOpened";
/// Resources found drifted by a reconciliation pass.
pub const DRIFT_FOUND: &str = "DriftFound";
/// Resources a reconciliation pass verified.
pub const RESOURCES_CHECKED: &str = "ResourcesChecked";
/// Executions of a bundle's or an item's state machine that failed.
pub const EXECUTIONS_FAILED: &str = "ExecutionsFailed";
/// Notifications delivered (dimension `Channel`: slack, webhook or sns).
pub const NOTIFICATIONS_SENT: &str = "NotificationsSent";
/// Notifications given up on: not queued, or refused or unanswered through every retry.
pub const NOTIFICATIONS_FAILED: &str = "NotificationsFailed";
/// A request's lead time when it ends, in milliseconds (dimensions `Target`: the item or
/// bundle, `Mode`: automated, manual, mixed or none).
pub const LEAD_TIME: &str = "LeadTime";
/// The part of it a person worked through JIRA (same dimensions).
pub const LEAD_TIME_PERSON: &str = "LeadTimePerson";
/// The part of it automation worked (same dimensions).
pub const LEAD_TIME_AUTOMATED: &str = "LeadTimeAutomated";
/// Requests that went past a service level target (dimensions `Target`, `Sla`: fulfil or
/// firstResponse).
pub const SLA_BREACHES: &str = "SlaBreaches";

/// What a metric's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One value of a metric: its name, its dimensions, how many (or how long) and in
/// which unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Count<'a> {
    pub name: &'a str,
    pub dimensions: &'a [(&'a str, &'a str)],
    pub value: u64,
    pub unit: Unit,
}

/// Where counts go.
pub trait Sink: Send + Sync {
    fn record(&self, count: &Count<'_>);
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Sends this process's counts to `sink` from now on. Only the first call counts: a
/// process has one place its metrics go. `false` if a sink was installed already.
pub fn install(sink: Box<dyn Sink>) -> bool {
    SINK.set(sink).is_ok()
}

/// Counts `value` of metric `name` with `dimensions`, if a sink is installed.
pub fn count(name: &str, dimensions: &[(&str, &str)], value: u64) {
    record(name, dimensions, value, Unit::Count);
}

/// Records a duration of `ms` milliseconds as metric `name` with `dimensions` (CloudWatch
/// keeps its percentiles), if a sink is installed.
pub fn milliseconds(name: &str, dimensions: &[(&str, &str)], ms: u64) {
    record(name, dimensions, ms, Unit::Milliseconds);
}

fn record(name: &str, dimensions: &[(&str, &str)], value: u64, unit: Unit) {
    if let Some(sink) = SINK.get() {
        sink.record(&Count {
            name,
            dimensions,
            value,
            unit,
        });
    }
}

/// CloudWatch Embedded Metric Format: one JSON line per count, with the `_aws` metadata
/// that names the namespace, the dimension set and the metric, and the values at the root.
pub struct Emf {
    namespace: String,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Emf {
    /// Writes to stdout, where Lambda's log capture picks it up.
    pub fn stdout(namespace: impl Into<String>) -> Emf {
        Emf::to(namespace, Box::new(std::io::stdout()))
    }

    pub fn to(namespace: impl Into<String>, out: Box<dyn Write + Send>) -> Emf {
        Emf {
            namespace: namespace.into(),
            out: Mutex::new(out),
        }
    }

    /// The log line of `count` at `millis` since the epoch.
    pub fn line(&self, count: &Count<'_>, millis: u128) -> Value {
        let names: Vec<&str> = count.dimensions.iter().map(|(k, _)| *k).collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": u64::try_from(millis).unwrap_or(u64::MAX),
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [names],
                    "Metrics": [{"Name": count.name, "Unit": count.unit.as_str()}],
                }],
            }),
        );
        for (name, value) in count.dimensions {
            root.insert((*name).into(), json!(value));
        }
        root.insert(count.name.into(), json!(count.value));
        Value::Object(root)
    }
}

impl Sink for Emf {
    fn record(&self, count: &Count<'_>) {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut line = self.line(count, millis).to_string();
        line.push('\n');
        // One write per line, so log lines written beside it are never interleaved.
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::metrics::Captured;

    #[test]
    fn a_count_is_one_line_of_embedded_metric_format() {
        let captured = Captured::default();
        let emf = Emf::to("Orchestrator/dev", Box::new(captured.clone()));
        emf.record(&Count {
            name: ACTIONS,
            dimensions: &[("ActionType", "rest"), ("Outcome", "failed")],
            value: 1,
            unit: Unit::Count,
        });
        emf.record(&Count {
            name: DRIFT_FOUND,
            dimensions: &[],
            value: 3,
            unit: Unit::Count,
        });
        emf.record(&Count {
            name: LEAD_TIME,
            dimensions: &[("Target", "postgres"), ("Mode", "automated")],
            value: 61_000,
            unit: Unit::Milliseconds,
        });
        let lines = captured.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        // The shape CloudWatch's specification asks for: the metadata under `_aws`, each
        // dimension and metric a member of the root.
        let first = &lines[0];
        let directive = &first["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Orchestrator/dev");
        assert_eq!(directive["Dimensions"], json!([["ActionType", "Outcome"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Actions", "Unit": "Count"}])
        );
        assert!(first["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(first["ActionType"], "rest");
        assert_eq!(first["Outcome"], "failed");
        assert_eq!(first["Actions"], 1);
        // No dimensions: one empty dimension set, the metric across the namespace.
        assert_eq!(
            lines[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert_eq!(lines[1]["DriftFound"], 3);
        // A duration is in milliseconds.
        assert_eq!(
            lines[2]["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "LeadTime", "Unit": "Milliseconds"}])
        );
        assert_eq!(lines[2]["LeadTime"], 61_000);
        assert_eq!(lines[2]["Mode"], "automated");
    }
}
