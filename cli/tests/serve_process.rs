//! `orchestrator serve` as a process: signals, and a crash in the middle of a flow.
// Helpers here fail the test loudly on unexpected errors, which is what a test wants.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use orchestrator_tests::jira_stub::{already_has_issue, no_existing_issue};
use orchestrator_tests::process::{Serve, start};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BIN: &str = env!("CARGO_BIN_EXE_orchestrator");

fn example() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../examples/catalog")
}

/// Starts `serve` on a free port and waits for its "listening" log line.
fn serve(data: &Path, jira: Option<&str>) -> Serve {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--catalog"])
        .arg(example())
        .arg("--data")
        .arg(data)
        .env("ORCHESTRATOR_SECRET_JIRA_TOKEN", "t0ken")
        .env("ORCHESTRATOR_SECRET_JIRA_WEBHOOK", "h00k");
    if let Some(jira) = jira {
        command
            .env("ORCHESTRATOR_JIRA_URL", jira)
            .env("ORCHESTRATOR_JIRA_EMAIL", "bot@acme.example");
    }
    start(command)
}

fn token(data: &Path) -> String {
    let out = Command::new(BIN)
        .args([
            "dev-token",
            "--sub",
            "alice",
            "--groups",
            "developers",
            "--data",
        ])
        .arg(data)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn kafka() -> Value {
    json!({"item": "kafka-topic", "fields": {"topicName": "orders.v1", "producerPrincipal": "arn:aws:iam::123456789012:role/orders"}})
}

#[tokio::test]
async fn sigterm_stops_serving_and_exits_zero() {
    let data = tempfile::tempdir().unwrap();
    let mut server = serve(data.path(), None);
    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let term = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_process_killed_mid_ticket_resumes_after_restart_without_a_second_ticket() {
    let data = tempfile::tempdir().unwrap();
    let jira = MockServer::start().await;
    no_existing_issue(&jira).await;
    // JIRA takes its time creating the issue: the process dies while it does.
    Mock::given(method("POST"))
        .and(path("/rest/api/2/issue"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": "1", "key": "MSG-1"}))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&jira)
        .await;
    let mut first = serve(data.path(), Some(&jira.uri()));
    let client = reqwest::Client::new();
    let token = token(data.path());
    let created: Value = client
        .post(format!("{}/requests", first.base))
        .bearer_auth(&token)
        .json(&kafka())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !jira
        .received_requests()
        .await
        .unwrap()
        .iter()
        .any(|r| r.method.as_str() == "POST")
    {
        assert!(Instant::now() < deadline, "the worker never called JIRA");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.child.kill().unwrap(); // SIGKILL: no chance to record the ticket
    first.child.wait().unwrap();

    // JIRA did create MSG-1. After the restart the worker must find it, not create another.
    jira.reset().await;
    already_has_issue(&jira, &id, "MSG-1").await;
    let mut second = serve(data.path(), Some(&jira.uri()));
    let deadline = Instant::now() + Duration::from_secs(15);
    let request = loop {
        let request: Value = client
            .get(format!("{}/requests/{id}", second.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if request["status"] == "awaiting_fulfillment" {
            break request;
        }
        assert!(
            Instant::now() < deadline,
            "the request did not resume: {request}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(request["ticket"]["key"], "MSG-1");
    second.child.kill().unwrap();
    second.child.wait().unwrap();

    // Neither the JIRA token nor the webhook secret appears in any log line.
    let logged: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|s| s.logs.lock().unwrap().clone())
        .collect();
    assert!(logged.len() > 5, "the servers logged: {logged:#?}");
    assert!(
        logged
            .iter()
            .any(|l| l.contains("JIRA issue opened") || l.contains("request_id"))
    );
    for secret in ["t0ken", "h00k"] {
        assert!(
            !logged.iter().any(|l| l.contains(secret)),
            "`{secret}` appears in the logs"
        );
    }
}

/// The timeline of request `id`, as (kind, message) pairs.
async fn timeline(server: &Serve, token: &str, id: &str) -> Vec<(String, String)> {
    let events: Value = reqwest::Client::new()
        .get(format!("{}/requests/{id}/events", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    events["events"]
        .as_array()
        .or(events.as_array())
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_bundle_killed_mid_execution_resumes_after_restart_and_schedules_each_task_once() {
    let data = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::chain_catalog(data.path(), 4);
    let api = orchestrator_tests::slow_database_api(Duration::from_millis(300)).await;
    let config = data.path().join("config.yaml");
    std::fs::write(&config, format!("environment:\n  dbApi: {}\n", api.uri())).unwrap();
    let process = |dir: &Path| {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--catalog")
            .arg(&catalog)
            .arg("--data")
            .arg(dir);
        start(command)
    };
    let mut first = process(&data.path().join("data"));
    let token = token(&data.path().join("data"));
    let created: Value = reqwest::Client::new()
        .post(format!("{}/requests", first.base))
        .bearer_auth(&token)
        .json(&json!({"bundle": "chain", "fields": {"app": "orders"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    // Kill it (SIGKILL: nothing is flushed) once a component has completed and the next
    // one's action is under way.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = timeline(&first, &token, &id).await;
        if events.iter().any(|(k, _)| k == "component_completed")
            && api.received_requests().await.unwrap().len() >= 2
        {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {events:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let at_kill = api.received_requests().await.unwrap().len();
    assert!(
        at_kill < 4,
        "killed before the last component ({at_kill} calls)"
    );

    let second = process(&data.path().join("data"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request: Value = reqwest::Client::new()
            .get(format!("{}/requests/{id}", second.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if request["status"] == "completed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bundle did not finish after the restart: {request}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let history: Value = reqwest::Client::new()
        .get(format!("{}/requests/{id}/execution", second.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["execution"]["status"], "SUCCEEDED");
    let scheduled: Vec<String> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "TaskStateEntered")
        .map(|e| {
            e["stateEnteredEventDetails"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        scheduled,
        [
            "Provision c0",
            "Provision c1",
            "Provision c2",
            "Provision c3",
            "Complete"
        ],
        "each task was scheduled once across the kill"
    );
    // Completed components are not provisioned again: at most the one under way when
    // the process died runs twice (at-least-once delivery, with its idempotency key).
    let calls = api.received_requests().await.unwrap().len();
    assert!((4..=5).contains(&calls), "{calls} database calls");
    let completed = timeline(&second, &token, &id)
        .await
        .into_iter()
        .filter(|(k, _)| k == "component_completed")
        .count();
    assert!(
        (4..=5).contains(&completed),
        "{completed} completions noted"
    );
}

/// Distinctive secret values: none may appear in any log line, API answer or stored byte.
const SECRETS: [(&str, &str); 5] = [
    ("dbaasApiToken", "dbaas-s3cret-91c7e2"),
    ("messagingWebhookKey", "hook-s3cret-5d08aa"),
    ("github-token", "ghp_s3cretToken77f1"),
    ("inventoryApiToken", "inv-s3cret-0b3e4c"),
    ("jira-token", "jira-s3cret-c4d5e6"),
];

async fn mock_targets(server: &MockServer) {
    // The DBaaS API: down once, then accepts and provisions asynchronously.
    Mock::given(method("POST"))
        .and(path("/dbaas/v2/postgres/instances"))
        .respond_with(ResponseTemplate::new(503).set_body_string("maintenance"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    let instance = json!({"id": "db-7", "status": "available",
        "endpoint": {"address": "orders-dev.db.acme.internal", "port": 5432},
        "masterUserSecret": {"arn": "arn:aws:secretsmanager:eu-west-1:1:secret:orders"}});
    Mock::given(method("POST"))
        .and(path("/dbaas/v2/postgres/instances"))
        .respond_with(
            ResponseTemplate::new(202)
                .insert_header("location", "/dbaas/v2/postgres/instances/db-7")
                .set_body_json(json!({"id": "db-7", "status": "creating"})),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/dbaas/v2/postgres/instances/db-7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(instance))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/automation/hooks/sns-topic"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"topicArn": "arn:aws:sns:eu-west-1:1:orders-events"})),
        )
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/github/repos/acme-corp/dbre-automation/actions/workflows/dynamodb-table.yml/dispatches"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"workflow_run_id": 5})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/github/repos/acme-corp/dbre-automation/actions/runs/5",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 5,
            "status": "completed", "conclusion": "success",
            "html_url": "https://github.com/acme-corp/dbre-automation/actions/runs/5"})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/inventory/v1/dynamodb-tables/orders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"arn": "arn:aws:dynamodb:eu-west-1:1:table/orders", "streamArn": null}),
        ))
        .mount(server)
        .await;
}

/// The issue's secret test: full automated requests (REST with a retry and polling, a
/// signed webhook, a GitHub workflow) with known secret values, at debug log level; then
/// every log line, every API answer and every byte of the data directory is searched.
#[tokio::test]
async fn no_secret_reaches_a_log_line_an_answer_or_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let targets = MockServer::start().await;
    mock_targets(&targets).await;
    let secrets: serde_json::Map<String, Value> = SECRETS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let secrets_file = dir.path().join("secrets.json");
    std::fs::write(&secrets_file, Value::Object(secrets).to_string()).unwrap();
    let api = targets.uri();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "secretsFile: {}\ngithub:\n  apiUrl: {api}/github\nenvironment:\n  dbaasApiUrl: {api}/dbaas\n  messagingAutomationUrl: {api}/automation\n  inventoryApiUrl: {api}/inventory\n",
            secrets_file.display()
        ),
    )
    .unwrap();
    let catalog = orchestrator_tests::fast_example_catalog(dir.path());
    orchestrator_tests::with_platform_api_items(&catalog);
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--catalog"])
        .arg(&catalog)
        .arg("--data")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env("ORCHESTRATOR_LOG", "debug");
    let server = start(command);
    let client = reqwest::Client::new();
    let token = token(&data);
    let submissions = [
        json!({"item": "rds-postgres", "fields": {"databaseName": "orders", "environment": "dev",
            "engineVersion": "17", "instanceClass": "db.t4g.medium", "vpcId": "vpc-0123abcd",
            "subnetIds": ["subnet-0123abcd", "subnet-4567cdef"]}}),
        json!({"item": "sns-topic", "fields": {"topicName": "orders-events"}}),
        json!({"item": "dynamodb-table", "fields": {"tableName": "orders", "partitionKey": "pk"}}),
    ];
    let mut answers = String::new();
    let mut ids = Vec::new();
    for body in &submissions {
        let dry = client
            .post(format!("{}/requests?dryRun=true", server.base))
            .bearer_auth(&token)
            .json(body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        answers.push_str(&dry);
        let created: Value = client
            .post(format!("{}/requests", server.base))
            .bearer_auth(&token)
            .json(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(
            created["id"]
                .as_str()
                .unwrap_or_else(|| panic!("not accepted: {created}"))
                .to_owned(),
        );
    }
    let get = |path: String| {
        let (client, token, base) = (client.clone(), token.clone(), server.base.clone());
        async move {
            client
                .get(format!("{base}{path}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let request: Value =
                serde_json::from_str(&get(format!("/requests/{id}")).await).unwrap();
            if request["status"] == "completed" {
                break;
            }
            assert!(Instant::now() < deadline, "not completed: {request}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        answers.push_str(&get(format!("/requests/{id}")).await);
        answers.push_str(&get(format!("/requests/{id}/events")).await);
    }
    answers.push_str(&get("/requests".to_owned()).await);
    let timeline = get(format!("/requests/{}/events", ids[0])).await;
    assert!(
        timeline.contains("action_retry"),
        "the 503 was retried: {timeline}"
    );

    let logged = server.logs.lock().unwrap().join("\n");
    assert!(logged.contains("request_id"), "{logged}");
    let mut stored = String::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        stored.push_str(&String::from_utf8_lossy(&bytes));
    }
    assert!(
        stored.contains("orders-dev.db.acme.internal"),
        "the outputs were stored"
    );
    for (name, value) in SECRETS {
        assert!(
            !logged.contains(value),
            "secret `{name}` appears in the logs"
        );
        assert!(
            !answers.contains(value),
            "secret `{name}` appears in an API answer"
        );
        assert!(
            !stored.contains(value),
            "secret `{name}` appears in the data directory"
        );
    }
    // The targets did get them: the test would prove nothing otherwise.
    let received = targets.received_requests().await.unwrap();
    let auth: Vec<String> = received
        .iter()
        .filter_map(|r| {
            r.headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .collect();
    assert!(
        auth.contains(&"Bearer dbaas-s3cret-91c7e2".to_owned()),
        "{auth:?}"
    );
    assert!(
        auth.contains(&"Bearer ghp_s3cretToken77f1".to_owned()),
        "{auth:?}"
    );
}

#[tokio::test]
async fn a_broken_catalog_edit_is_logged_with_its_file_and_line_and_not_served() {
    let data = tempfile::tempdir().unwrap();
    let catalog = data.path().join("catalog");
    orchestrator_tests::copy_dir(&example(), &catalog);
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--catalog"])
        .arg(&catalog)
        .arg("--data")
        .arg(data.path().join("data"));
    let server = start(command);
    std::fs::write(
        catalog.join("items/messaging/broken.yaml"),
        "apiVersion: orchestrator.dev/v1\nkind: [unclosed\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let found = server
            .logs
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains("the catalog edit does not validate"))
            .cloned();
        if let Some(line) = found {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no log line about the broken edit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let logged: Value = serde_json::from_str(&line).unwrap();
    let errors = logged["fields"]["errors"].as_str().unwrap();
    // file:line:column, then what is wrong.
    assert!(
        errors.contains("items/messaging/broken.yaml:3:1: YAML syntax error"),
        "{line}"
    );
    assert_eq!(logged["level"], "WARN");
    let items: Value = reqwest::Client::new()
        .get(format!("{}/catalog/items", server.base))
        .bearer_auth(token(&data.path().join("data")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(items.to_string().contains("kafka-topic"), "still served");
}
