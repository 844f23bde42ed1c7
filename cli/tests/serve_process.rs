//! `orchestrator serve` as a process: signals, and a crash in the middle of a flow.
// Helpers here fail the test loudly on unexpected errors, which is what a test wants.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orchestrator_tests::jira_stub::{already_has_issue, no_existing_issue};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BIN: &str = env!("CARGO_BIN_EXE_orchestrator");

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/catalog")
}

struct Serve {
    child: Child,
    base: String,
    /// Every line the server logged so far.
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Serve {
    // A failing test must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        .env("ORCHESTRATOR_SECRET_JIRA_WEBHOOK", "h00k")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(jira) = jira {
        command
            .env("ORCHESTRATOR_JIRA_URL", jira)
            .env("ORCHESTRATOR_JIRA_EMAIL", "bot@acme.example");
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            kept.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        let log: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if log["fields"]["message"] == "orchestrator listening" {
            let addr = log["fields"]["addr"].as_str().unwrap().to_owned();
            return Serve {
                child,
                base: format!("http://{addr}"),
                logs,
            };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not start");
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
