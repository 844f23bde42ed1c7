//! The SAM template (`infra/template.yaml`) agrees with the code it deploys: every
//! variable it sets is one the configuration reads, and every one the Lambdas need is set;
//! its routes lead to endpoints the API serves, with exactly the public ones left without
//! the JWT authorizer; its table is the one the DynamoDB adapters are tested on; the queue's
//! redrive count is the one the worker is told; the failed-executions alarm watches the
//! metric the worker writes. (`infra/check` validates, expands and lints the template
//! itself.)

use std::collections::BTreeSet;

use shared::config::{CONFIG_JSON, ENV_OVERRIDES};

fn template() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    std::fs::read_to_string(path).expect("infra/template.yaml")
}

/// The value after `key:` on each line that has it (trimmed, quotes kept).
fn values_of<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let key = format!("{key}:");
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix(key.as_str()))
        .map(str::trim)
        .collect()
}

#[test]
fn every_variable_the_template_sets_is_read_by_the_configuration_and_none_needed_is_missing() {
    let text = template();
    let set: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let name = l.split(':').next()?;
            name.starts_with("ORCHESTRATOR_").then_some(name)
        })
        .collect();
    let read: BTreeSet<&str> = ENV_OVERRIDES
        .iter()
        .map(|(name, _)| *name)
        .chain([CONFIG_JSON])
        .collect();
    let unknown: Vec<_> = set.difference(&read).collect();
    assert!(
        unknown.is_empty(),
        "the template sets variables nothing reads: {unknown:?}"
    );
    for needed in [
        "ORCHESTRATOR_TABLE",
        "ORCHESTRATOR_ACTION_QUEUE_URL",
        "ORCHESTRATOR_DEAD_LETTER_QUEUE_URL",
        "ORCHESTRATOR_MAX_RECEIVES",
        "ORCHESTRATOR_ACCOUNT_ID",
        "ORCHESTRATOR_STATES_ROLE_ARN",
        "ORCHESTRATOR_STATE_MACHINE_PREFIX",
        "ORCHESTRATOR_SECRETS_PREFIX",
        "ORCHESTRATOR_REGION",
        "ORCHESTRATOR_STAGE",
        "ORCHESTRATOR_METRICS_NAMESPACE",
        CONFIG_JSON,
    ] {
        assert!(set.contains(needed), "the template does not set {needed}");
    }
}

/// `(method, path, public)` of every HttpApi event in the template.
fn routes(text: &str) -> Vec<(String, String, bool)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != "Type: HttpApi" {
            continue;
        }
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with("Type:") && !l.trim().is_empty())
            .copied()
            .collect();
        let field = |key: &str| {
            values_of(&block.join("\n"), key)
                .first()
                .map(|v| v.to_string())
                .unwrap_or_else(|| panic!("an HttpApi event without {key}: {block:#?}"))
        };
        let public = block.iter().any(|l| l.trim() == "Auth: {Authorizer: NONE}");
        out.push((field("Method"), field("Path"), public));
    }
    out
}

#[test]
fn the_routes_lead_to_served_endpoints_and_only_the_public_ones_skip_the_authorizer() {
    let text = template();
    let routes = routes(&text);
    let public: BTreeSet<String> = routes
        .iter()
        .filter(|(_, _, public)| *public)
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    let expected: BTreeSet<String> = [
        "GET /healthz",
        "GET /readyz",
        "GET /openapi.json",
        "POST /webhooks/jira",
        "POST /webhooks/github",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(
        public, expected,
        "health, the API's description and the webhooks (which carry their own secrets) are the only public routes"
    );
    assert!(
        routes
            .iter()
            .any(|(m, p, public)| m == "ANY" && p == "/{proxy+}" && !public),
        "everything else goes to the api function behind the authorizer"
    );
    let spec = serde_json::to_value(shared::http::openapi()).unwrap();
    for (method, path, _) in &routes {
        if path == "/{proxy+}" || path == "/openapi.json" {
            continue;
        }
        let operation = &spec["paths"][path.as_str()][method.to_lowercase()];
        assert!(
            operation.is_object(),
            "the template routes {method} {path}, which the API does not serve"
        );
    }
}

#[test]
fn the_table_is_the_single_table_design_the_adapters_are_tested_on() {
    let text = template();
    let attributes: BTreeSet<&str> = values_of(&text, "- {AttributeName")
        .into_iter()
        .filter_map(|v| v.split(',').next())
        .collect();
    let expected: BTreeSet<&str> = [
        "pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk",
    ]
    .into();
    assert_eq!(attributes, expected, "docs/dynamodb.md's keys");
    let indexes: Vec<&str> = values_of(&text, "- IndexName");
    assert_eq!(indexes, ["gsi1", "gsi2", "gsi3"]);
    // TTL on the attribute the stores write (idempotency keys, webhook deliveries).
    assert!(text.contains(
        "TimeToLiveSpecification:\n        AttributeName: expiresAt\n        Enabled: true"
    ));
    assert!(text.contains("PointInTimeRecoveryEnabled: true"));
    assert!(text.contains("BillingMode: PAY_PER_REQUEST"));
}

/// The lines of resource `name`: from its heading to the next blank line.
fn resource<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("\n  {name}:\n"))
        .unwrap_or_else(|| panic!("the template has no {name}"));
    let block = &text[start + 1..];
    &block[..block.find("\n\n").unwrap_or(block.len())]
}

#[test]
fn the_backlog_alarm_watches_the_action_queue_and_waits_longer_than_any_healthy_message() {
    let text = template();
    let alarm = resource(&text, "ActionBacklogAlarm");
    assert_eq!(values_of(alarm, "Namespace"), ["AWS/SQS"]);
    assert_eq!(
        values_of(alarm, "MetricName"),
        ["ApproximateAgeOfOldestMessage"]
    );
    assert!(alarm.contains("!GetAtt ActionQueue.QueueName"));
    let threshold: u64 = values_of(alarm, "Threshold")[0].parse().unwrap();
    let visibility: u64 = values_of(resource(&text, "ActionQueue"), "VisibilityTimeout")[0]
        .parse()
        .unwrap();
    // A delayed message, or one received up to three times (after which SQS leaves it
    // out of the age), each taking the whole visibility timeout.
    let healthy = shared::worker::MAX_DELAY.as_secs().max(3 * visibility);
    assert!(
        threshold >= 2 * healthy,
        "the alarm ({threshold} s) must not fire on a message that is only waiting its turn ({healthy} s)"
    );
    assert_eq!(values_of(alarm, "AlarmActions"), ["[!Ref AlarmTopic]"]);
}

#[test]
fn the_worker_is_told_the_queues_redrive_count_and_the_alarm_watches_its_metric() {
    let text = template();
    assert_eq!(values_of(&text, "maxReceiveCount"), ["!Ref MaxReceives"]);
    assert_eq!(
        values_of(&text, "ORCHESTRATOR_MAX_RECEIVES"),
        ["!Ref MaxReceives"]
    );
    let namespace = values_of(&text, "ORCHESTRATOR_METRICS_NAMESPACE");
    assert_eq!(namespace.len(), 1);
    assert!(
        values_of(&text, "Namespace").contains(&namespace[0]),
        "an alarm reads the namespace the functions write to"
    );
    assert!(values_of(&text, "MetricName").contains(&shared::metrics::EXECUTIONS_FAILED));
}

#[test]
fn the_reconciler_sweeps_the_span_its_schedule_leaves_between_passes() {
    // Each pass re-sends the stale requests that came of age since the one before, which
    // it knows only from this constant: a schedule that drifted from it would leave gaps.
    let minutes = functions::schedule::EVERY.as_secs() / 60;
    assert_eq!(
        values_of(&template(), "Schedule"),
        [format!("rate({minutes} minutes)").as_str()]
    );
}

#[test]
fn the_insights_dashboard_reads_the_lead_time_metrics_the_functions_write() {
    let text = template();
    let dashboard = resource(&text, "InsightsDashboard");
    let namespace = values_of(&text, "ORCHESTRATOR_METRICS_NAMESPACE")[0];
    assert!(
        dashboard.contains(&format!("Namespace: {namespace}")),
        "the dashboard searches the functions' namespace"
    );
    for metric in [
        shared::metrics::LEAD_TIME,
        shared::metrics::LEAD_TIME_PERSON,
        shared::metrics::LEAD_TIME_AUTOMATED,
        shared::metrics::SLA_BREACHES,
    ] {
        assert!(
            dashboard.contains(&format!("MetricName=\\\"{metric}\\\"")),
            "the dashboard shows {metric}"
        );
    }
    // The dimensions the code writes them with.
    assert!(dashboard.contains("Mode,Target}"));
    assert!(dashboard.contains("Sla,Target}"));
}
