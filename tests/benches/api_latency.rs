//! Latency of local mode under load: `GET /catalog/items` and `POST /requests` with 256
//! concurrent connections, reporting p50 / p95 / p99 and requests per second.
//! Run: `cargo bench -p orchestrator-tests --bench api_latency`. Target (issue 3): p95
//! under 20 ms on a 2-core machine. The load generator shares the machine with the
//! server, as it must here; the figures are conservative for that reason.

use std::sync::Arc;

use serde_json::json;
use shared::config::Config;

const CONNECTIONS: usize = 256;

struct Scenario {
    name: &'static str,
    requests: usize,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let data = tempfile::tempdir().expect("temporary directory");
    let config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: orchestrator_tests::example_catalog(),
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    let orchestrator_tests::load::Local {
        running,
        base,
        token,
        client,
    } = orchestrator_tests::load::start_local(&config, CONNECTIONS).await;
    let scale = if quick { 100 } else { 1 };
    for scenario in [
        Scenario {
            name: "GET /catalog/items",
            requests: 40_000 / scale,
        },
        Scenario {
            name: "POST /requests",
            requests: 20_000 / scale,
        },
    ] {
        run(
            &client,
            &base,
            &token,
            &scenario,
            CONNECTIONS.min(scenario.requests),
        )
        .await;
    }
    running.stop().await.expect("clean stop");
}

async fn run(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    scenario: &Scenario,
    connections: usize,
) {
    let (client, base, token, name) = (
        client.clone(),
        base.to_owned(),
        token.to_owned(),
        scenario.name,
    );
    let make: orchestrator_tests::load::MakeCall = Arc::new(move |n| {
        let request = if name.starts_with("GET") {
            client.get(format!("{base}/catalog/items"))
        } else {
            client.post(format!("{base}/requests")).json(&json!({
                "item": "kafka-topic",
                "fields": {"topicName": format!("bench.topic-{n}"), "producerPrincipal": "arn:aws:iam::123456789012:role/bench"}
            }))
        };
        request.bearer_auth(&token)
    });
    let figures = orchestrator_tests::load::measure(connections, scenario.requests, make).await;
    println!("{:<20} {figures}", scenario.name);
}
