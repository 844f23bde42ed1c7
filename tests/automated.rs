//! Automated fulfillment end to end: local mode runs the example catalog's REST items
//! against wiremock targets that check the exact requests, through retries, permanent
//! failures, rollback and the manual fallback, and no secret leaks anywhere.

use std::path::Path;

use orchestrator_tests::app::{App, sandbox_config};
use orchestrator_tests::jira_stub::{creates_issue, no_existing_issue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::config::Config;
use wiremock::matchers::{body_json, header, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const API_TOKEN: &str = "msg-api-t0ken-8c1f";
const DBAAS_TOKEN: &str = "dbaas-t0ken-77ab";

fn config(dir: &Path, api: &str, jira: Option<&str>) -> Config {
    let secrets = dir.join("secrets.json");
    std::fs::write(
        &secrets,
        json!({"messagingApiToken": API_TOKEN, "dbaasApiToken": DBAAS_TOKEN,
               "jira-token": "jira-t0ken", "jira-webhook": "hook"})
        .to_string(),
    )
    .unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: {
            let catalog = orchestrator_tests::fast_example_catalog(dir);
            orchestrator_tests::with_platform_api_items(&catalog);
            catalog
        },
        data_dir: dir.join("data"),
        secrets_file: Some(secrets),
        ..Config::default()
    };
    config.environment = json!({"messagingApiUrl": format!("{api}/messaging"), "dbaasApiUrl": api})
        .as_object()
        .unwrap()
        .clone();
    if let Some(jira) = jira {
        config.jira.url = Some(jira.to_owned());
        config.jira.email = Some("orchestrator@acme.example".to_owned());
    }
    config
}

fn rds_request() -> Value {
    json!({"item": "rds-postgres", "fields": {
        "databaseName": "orders", "environment": "dev", "engineVersion": "17",
        "instanceClass": "db.t4g.medium", "vpcId": "vpc-0123abcd",
        "subnetIds": ["subnet-0123abcd", "subnet-4567cdef"]}})
}

fn queue_request(name: &str) -> Value {
    json!({"item": "sqs-queue", "fields": {"queueName": name}})
}

fn created_queue(name: &str) -> Value {
    json!({"url": format!("https://sqs.eu-west-1.amazonaws.com/123456789012/{name}"),
           "arn": format!("arn:aws:sqs:eu-west-1:123456789012:{name}"),
           "deadLetterQueue": {"arn": format!("arn:aws:sqs:eu-west-1:123456789012:{name}-dlq")}})
}

/// The exact call sqs-queue.yaml describes.
fn queue_call(name: &str) -> wiremock::MockBuilder {
    Mock::given(method("PUT"))
        .and(path(format!("/messaging/queues/{name}")))
        .and(header(
            "authorization",
            format!("Bearer {API_TOKEN}").as_str(),
        ))
        .and(header("content-type", "application/json"))
        .and(header_exists("idempotency-key"))
        .and(body_json(json!({
            "fifo": false,
            "visibilityTimeoutSeconds": 30,
            "redrive": {"maxReceiveCount": 5},
            "tags": {"requester": "alice"}
        })))
}

/// Every place a secret could leak to: API responses and the database files.
async fn assert_no_secret_anywhere(app: &App, id: &str, data: &Path) {
    let mut seen = String::new();
    for path in [
        format!("/requests/{id}"),
        format!("/requests/{id}/events"),
        "/requests".to_owned(),
    ] {
        seen.push_str(&app.get(&path).await.to_string());
    }
    for entry in std::fs::read_dir(data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        seen.push_str(&String::from_utf8_lossy(&bytes));
    }
    for secret in [API_TOKEN, DBAAS_TOKEN] {
        assert!(!seen.contains(secret), "secret `{secret}` leaked");
    }
}

#[tokio::test]
async fn a_rest_item_is_provisioned_and_its_outputs_recorded() {
    let api = MockServer::start().await;
    queue_call("orders")
        .respond_with(ResponseTemplate::new(200).set_body_json(created_queue("orders")))
        .expect(1)
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), &api.uri(), None)).await;

    let (status, body) = app.submit(&queue_request("orders")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap();
    let done = app.wait_for(id, "completed").await;
    assert_eq!(
        done["outputs"],
        json!({"queueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
               "queueArn": "arn:aws:sqs:eu-west-1:123456789012:orders",
               "deadLetterQueueArn": "arn:aws:sqs:eu-west-1:123456789012:orders-dlq"})
    );
    assert_eq!(
        app.event_kinds(id).await,
        [
            "submitted",
            "fulfillment_started",
            "execution_started",
            "action_started",
            "action_succeeded",
            "completed"
        ]
    );
    // Like a bundle, the item ran as an execution: its one component, then completion.
    let execution = app.get(&format!("/requests/{id}/execution")).await;
    assert_eq!(execution["execution"]["status"], "SUCCEEDED", "{execution}");
    assert!(
        execution["execution"]["stateMachineArn"]
            .as_str()
            .is_some_and(|arn| arn.ends_with(":stateMachine:item-sqs-queue")),
        "{execution}"
    );
    let entered: Vec<&str> = execution["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "TaskStateEntered")
        .map(|e| e["stateEnteredEventDetails"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(entered.len(), 2, "{entered:?}");
    assert!(entered[0].starts_with("Provision"), "{entered:?}");
    assert_eq!(entered[1], "Complete");
    // The idempotency key is stable: request, component, list and action.
    let calls = api.received_requests().await.unwrap();
    assert_eq!(
        calls[0].headers["idempotency-key"].to_str().unwrap(),
        format!("{id}/main/actions/create")
    );
    assert_no_secret_anywhere(&app, id, &dir.path().join("data")).await;
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn retryable_failures_are_retried_with_every_attempt_on_the_timeline() {
    let api = MockServer::start().await;
    // 503, then 429 with Retry-After, then success.
    queue_call("retry")
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(1)
        .mount(&api)
        .await;
    queue_call("retry")
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .mount(&api)
        .await;
    queue_call("retry")
        .respond_with(ResponseTemplate::new(200).set_body_json(created_queue("retry")))
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), &api.uri(), None)).await;
    let (_, body) = app.submit(&queue_request("retry")).await;
    let id = body["id"].as_str().unwrap();
    app.wait_for(id, "completed").await;
    let timeline = app.get(&format!("/requests/{id}/events")).await;
    let retries: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "action_retry")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(retries.len(), 2, "{timeline:#}");
    assert!(
        retries[0].contains("attempt 1 of 3") && retries[0].contains("503"),
        "{}",
        retries[0]
    );
    assert!(
        retries[1].contains("attempt 2 of 3") && retries[1].contains("429"),
        "{}",
        retries[1]
    );
    assert_eq!(api.received_requests().await.unwrap().len(), 3);
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_permanent_failure_fails_at_once_and_says_why() {
    let api = MockServer::start().await;
    queue_call("taken")
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"message": "queue exists"})))
        .expect(1)
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), &api.uri(), None)).await;
    let (_, body) = app.submit(&queue_request("taken")).await;
    let id = body["id"].as_str().unwrap();
    let failed = app.wait_for(id, "failed").await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("action `create` failed"), "{reason}");
    assert!(
        reason.contains("409") && reason.contains("queue exists"),
        "{reason}"
    );
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn when_the_target_is_down_retries_run_out_and_the_breaker_opens_and_holds_calls_back() {
    // Nothing listens here: every attempt is a refused connection.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), &closed, None)).await;
    let (_, body) = app.submit(&queue_request("down-a")).await;
    let id = body["id"].as_str().unwrap().to_owned();
    let failed = app.wait_for(&id, "failed").await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains("after 3 attempts") && reason.contains("could not connect"),
        "{reason}"
    );
    // 3 + 2 consecutive failures open the breaker (threshold 5): the next request's third
    // attempt makes no call and waits for the breaker, rather than failing for a target
    // that may be back soon.
    let (_, body) = app.submit(&queue_request("down-b")).await;
    let id = body["id"].as_str().unwrap();
    let mut waiting = None;
    for _ in 0..200 {
        let timeline = app.get(&format!("/requests/{id}/events")).await;
        waiting = timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "circuit_open")
            .cloned();
        if waiting.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let waiting = waiting.expect("a circuit_open entry");
    let message = waiting["message"].as_str().unwrap();
    assert!(
        message.contains("circuit breaker")
            && message.contains("open until")
            && message.contains("waiting"),
        "{message}"
    );
    assert_eq!(app.request(id).await["status"], "in_progress");
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn with_fallback_manual_a_failed_automation_opens_a_jira_ticket() {
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/postgres/instances"))
        .and(header(
            "authorization",
            format!("Bearer {DBAAS_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(400).set_body_string("instance class retired"))
        .expect(1)
        .mount(&api)
        .await;
    let jira = MockServer::start().await;
    no_existing_issue(&jira).await;
    creates_issue("DBRE-7").expect(1).mount(&jira).await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), &api.uri(), Some(&jira.uri()))).await;
    let (status, body) = app.submit(&rds_request()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap();
    let waiting = app.wait_for(id, "awaiting_fulfillment").await;
    assert_eq!(waiting["ticket"]["key"], "DBRE-7");
    let timeline = app.get(&format!("/requests/{id}/events")).await;
    let fallback = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "fallback")
        .expect("a fallback event");
    let message = fallback["message"].as_str().unwrap();
    assert!(
        message.contains("400") && message.contains("instance class retired"),
        "{message}"
    );
    // The person finishes the issue: the execution's task is answered with the values
    // they filled in, and the request completes with them.
    let done = json!({"webhookEvent": "jira:issue_updated", "issue": {"key": "DBRE-7",
        "fields": {"status": {"name": "Done", "statusCategory": {"key": "done"}},
                   "resolution": {"name": "Done"},
                   "customfield_10301": "db-manual-1",
                   "customfield_10302": "orders.db.acme.internal",
                   "customfield_10303": "5432"}}});
    let answered = app
        .client
        .post(format!("{}/webhooks/jira?secret=hook", app.base))
        .json(&done)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), StatusCode::NO_CONTENT);
    let completed = app.wait_for(id, "completed").await;
    assert_eq!(completed["outputs"]["instanceId"], "db-manual-1");
    assert_eq!(completed["outputs"]["endpoint"], "orders.db.acme.internal");
    let kinds = app.event_kinds(id).await;
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("completed"),
        "{kinds:?}"
    );
    let execution = app.get(&format!("/requests/{id}/execution")).await;
    assert_eq!(execution["execution"]["status"], "SUCCEEDED", "{execution}");
    assert_no_secret_anywhere(&app, id, &dir.path().join("data")).await;
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_missing_secret_fails_the_request_naming_the_secret_not_a_value() {
    let api = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &api.uri(), None);
    std::fs::write(config.secrets_file.as_ref().unwrap(), "{}").unwrap();
    let app = App::start(&config).await;
    let (_, body) = app.submit(&queue_request("nosecret")).await;
    let id = body["id"].as_str().unwrap();
    let failed = app.wait_for(id, "failed").await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains("secret `messagingApiToken` is not configured"),
        "{reason}"
    );
    assert!(api.received_requests().await.unwrap().is_empty());
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn in_the_sandbox_rest_polling_and_signed_webhook_items_complete() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::fast_example_catalog(dir.path());
    orchestrator_tests::with_platform_api_items(&catalog);
    let config = sandbox_config(dir.path(), catalog);
    let app = App::start(&config).await;
    let submissions = [
        json!({"item": "sqs-queue", "fields": {"queueName": "orders"}}),
        json!({"item": "sns-topic", "fields": {"topicName": "orders-events"}}),
        rds_request(),
    ];
    let mut ids = Vec::new();
    for body in &submissions {
        let (status, created) = app.submit(body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let queue = app.wait_for(&ids[0], "completed").await;
    assert_eq!(
        queue["outputs"]["queueArn"],
        "arn:aws:sqs:eu-west-1:000000000000:orders"
    );
    // The receiver verified the signature before it answered with the topic.
    let topic = app.wait_for(&ids[1], "completed").await;
    assert_eq!(
        topic["outputs"]["topicArn"],
        "arn:aws:sns:eu-west-1:000000000000:orders-events"
    );
    // The database API is asynchronous: accepted, polled, then available.
    let db = app.wait_for(&ids[2], "completed").await;
    assert_eq!(db["outputs"]["endpoint"], "orders-dev.db.sandbox.local");
    assert_eq!(db["outputs"]["port"], 5432);
    let kinds = app.event_kinds(&ids[2]).await;
    assert!(kinds.contains(&"action_waiting".to_owned()), "{kinds:?}");
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn an_admin_forces_an_item_to_manual_until_the_override_is_lifted() {
    let api = MockServer::start().await;
    let jira = MockServer::start().await;
    no_existing_issue(&jira).await;
    creates_issue("DBRE-9").expect(1).mount(&jira).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &api.uri(), Some(&jira.uri()));
    let app = App::start(&config).await;
    let admin = app.token_for(&config, "root", &["platform-admins"]).await;
    let url = "/catalog/items/rds-postgres/mode";
    let change = json!({"mode": "manual", "reason": "DBaaS API outage INC-42"});

    // Developers may not; a bad body says where; admins may.
    let (denied, _) = app.call(Method::PUT, url, &app.token, Some(&change)).await;
    assert_eq!(denied, StatusCode::FORBIDDEN);
    let (bad, _) = app
        .call(
            Method::PUT,
            url,
            &admin,
            Some(&json!({"mode": "automated", "reason": "x"})),
        )
        .await;
    assert_eq!(bad, StatusCode::BAD_REQUEST);
    let (set, _) = app.call(Method::PUT, url, &admin, Some(&change)).await;
    assert_eq!(set, StatusCode::OK);
    let item = app.get("/catalog/items/rds-postgres").await;
    assert_eq!(item["mode"], "manual");
    assert_eq!(item["declaredMode"], "automated");
    assert_eq!(item["modeOverride"]["reason"], "DBaaS API outage INC-42");
    assert_eq!(item["modeOverride"]["by"], "root");

    // Requests now go to JIRA; the DBaaS API is never called.
    let (_, body) = app.submit(&rds_request()).await;
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        app.wait_for(id, "awaiting_fulfillment").await["ticket"]["key"],
        "DBRE-9"
    );
    assert!(api.received_requests().await.unwrap().is_empty());
    assert!(
        app.event_kinds(id)
            .await
            .contains(&"mode_forced".to_owned())
    );

    // The change is audited.
    let (_, audit) = app.call(Method::GET, "/audit", &admin, None).await;
    assert!(
        audit
            .to_string()
            .contains("/catalog/items/rds-postgres/mode"),
        "{audit}"
    );

    // It survives a restart, and lifting it restores the catalog's mode.
    app.running.stop().await.unwrap();
    let app = App::start(&config).await;
    assert_eq!(
        app.get("/catalog/items/rds-postgres").await["mode"],
        "manual"
    );
    let (lifted, _) = app.call(Method::DELETE, url, &admin, None).await;
    assert_eq!(lifted, StatusCode::NO_CONTENT);
    let (again, _) = app.call(Method::DELETE, url, &admin, None).await;
    assert_eq!(again, StatusCode::NOT_FOUND);
    let item = app.get("/catalog/items/rds-postgres").await;
    assert_eq!(item["mode"], "automated");
    assert!(item.get("modeOverride").is_none());
    app.running.stop().await.unwrap();
}

const PROBE: &str = r#"apiVersion: orchestrator.dev/v1
kind: CatalogItem
metadata:
  name: probe
  title: Injection probe
  description: Sends its one free-text field everywhere a template can put it.
  owner: platform
  category: platform
spec:
  presentation:
    schema:
      type: object
      required: [name]
      properties:
        name:
          type: string
        label:
          type: string
          default: plain
  outputs:
    echoed:
      description: What the API saw.
  fulfillment:
    mode: automated
    automated:
      actions:
        - id: send
          type: rest
          with:
            method: POST
            url: "{{environment.probeUrl}}/things/{{fields.name}}/x?inline={{fields.name}}"
            query:
              q: "{{fields.name}}"
            headers:
              X-Label: "{{fields.label}}"
            body:
              name: "{{fields.name}}"
              nested: ["{{fields.name}}"]
          outputs:
            echoed: "$.echoed"
"#;

async fn probe_app(dir: &Path, api: &str) -> (App, Config) {
    let mut config = config(dir, api, None);
    std::fs::write(config.catalog_dir.join("items/probe.yaml"), PROBE).unwrap();
    config
        .environment
        .insert("probeUrl".into(), json!(format!("{api}/probe")));
    (App::start(&config).await, config)
}

#[tokio::test]
async fn field_values_cannot_change_a_requests_structure_or_url_path() {
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"echoed": true})))
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = probe_app(dir.path(), &api.uri()).await;
    let nasty = "a/../b?x=1&y=2#frag {{secrets.messagingApiToken}} \"q\" 'q' %2e\nline";
    let (status, body) = app
        .submit(&json!({"item": "probe", "fields": {"name": nasty}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap();
    app.wait_for(id, "completed").await;
    let calls = api.received_requests().await.unwrap();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    // One path segment holding the whole value, and the literal `/x` after it.
    let segments: Vec<&str> = call.url.path_segments().unwrap().collect();
    assert_eq!(segments.len(), 4, "{}", call.url);
    assert_eq!(segments[0..2], ["probe", "things"]);
    assert_eq!(segments[3], "x");
    let decoded = percent_encoding::percent_decode_str(segments[2])
        .decode_utf8()
        .unwrap();
    assert_eq!(decoded, nasty);
    // Query values decode back to the value; no parameter was added.
    let pairs: Vec<(String, String)> = call.url.query_pairs().into_owned().collect();
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["inline", "q"], "{}", call.url);
    assert!(pairs.iter().all(|(_, v)| v == nasty), "{pairs:?}");
    assert!(call.url.fragment().is_none());
    // The body is JSON with the value as a string, not re-parsed template text.
    let sent: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(sent, json!({"name": nasty, "nested": [nasty]}));
    // `{{secrets...}}` inside a value stays text: values are never rendered again.
    assert!(!String::from_utf8_lossy(&call.body).contains(API_TOKEN));
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_value_that_would_break_a_header_or_the_path_fails_with_a_clear_reason() {
    let api = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = probe_app(dir.path(), &api.uri()).await;
    let (_, body) = app
        .submit(&json!({"item": "probe", "fields": {"name": "ok", "label": "a\r\nX-Admin: yes"}}))
        .await;
    let failed = app.wait_for(body["id"].as_str().unwrap(), "failed").await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("header `X-Label`"), "{reason}");
    let (_, body) = app
        .submit(&json!({"item": "probe", "fields": {"name": ".."}}))
        .await;
    let failed = app.wait_for(body["id"].as_str().unwrap(), "failed").await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains("change the URL's path") && reason.contains("actions/send/with/url"),
        "{reason}"
    );
    assert!(api.received_requests().await.unwrap().is_empty());
    app.running.stop().await.unwrap();
}

/// A target slower than the attempt's time: each call is cut off at `attemptTimeout` (not
/// the target's 5 s), its outcome is unknown, so it is tried again with the same key until
/// the attempts run out, past the action's `timeout`; then the action fails and says the
/// outcome is unknown. (It used to fail at once at the action's timeout, with no retry,
/// leaving whatever the slow call made behind.)
#[tokio::test]
async fn a_target_slower_than_the_attempt_timeout_is_cut_off_retried_and_reported_unknown() {
    // Answers, but only after each attempt's time is up.
    let api = MockServer::start().await;
    queue_call("slow")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(created_queue("slow"))
                .set_delay(std::time::Duration::from_secs(5)),
        )
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &api.uri(), None);
    let item = config.catalog_dir.join("items/messaging/sqs-queue.yaml");
    let text = std::fs::read_to_string(&item).unwrap().replacen(
        "          retry:\n            maxAttempts: 3",
        "          timeout: 1s\n          attemptTimeout: 1s\n          retry:\n            maxAttempts: 3",
        1,
    );
    std::fs::write(&item, text).unwrap();
    let app = App::start(&config).await;
    let started = std::time::Instant::now();
    let (_, body) = app.submit(&queue_request("slow")).await;
    let id = body["id"].as_str().unwrap();
    let failed = app
        .wait_within(id, "failed", std::time::Duration::from_secs(30))
        .await;
    let reason = failed["reason"].as_str().unwrap();
    // Three attempts, each cut off after 1 s rather than waiting 5 s for the target.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{reason}"
    );
    assert_eq!(
        api.received_requests().await.unwrap().len(),
        3,
        "every attempt was made"
    );
    let timeline = app.get(&format!("/requests/{id}/events")).await.to_string();
    assert!(timeline.contains("outcome_unknown"), "{timeline}");
    assert!(
        reason.contains("outcome unknown after 3 attempts"),
        "{reason}"
    );
    app.running.stop().await.unwrap();
}

/// A `jira` action that waits for its issue: a negative resolution fails the step with the
/// last comment as the reason (JIRA's default list, or the action's own), a positive one
/// finishes it with the resolution.
#[tokio::test]
async fn a_jira_step_resolved_as_wont_do_fails_and_one_resolved_as_done_succeeds() {
    use shared::fulfillment::actions::jira::Jira;
    use shared::fulfillment::actions::{ActionError, ActionKind, Invocation, Step};
    use shared::integrations::jira::{JiraAuth, JiraClient};
    use wiremock::matchers::{path_regex, query_param};

    let jira = MockServer::start().await;
    let resolved = |key: &str, resolution: &str, comment: Option<&str>| {
        let comments: Vec<Value> = comment.map(|c| json!({"body": c})).into_iter().collect();
        Mock::given(method("GET"))
            // The client percent-encodes the key (`OPS%2D1`), which JIRA decodes.
            .and(path_regex(format!(
                "^/rest/api/2/issue/{}$",
                key.replace('-', "(-|%2D)")
            )))
            .and(query_param("fields", "status,resolution,comment"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "key": key,
                "fields": {
                    "status": {"name": "Closed", "statusCategory": {"key": "done"}},
                    "resolution": {"name": resolution},
                    "comment": {"comments": comments}
                }
            })))
    };
    resolved(
        "OPS-1",
        "Won't Do",
        Some("We do not open ports to the internet."),
    )
    .mount(&jira)
    .await;
    resolved("OPS-2", "Done", None).mount(&jira).await;
    resolved("OPS-3", "Out of Scope", None).mount(&jira).await;
    let client = JiraClient::new(
        &jira.uri(),
        JiraAuth::Bearer(shared::secret::SecretString::new("pat")),
    )
    .unwrap();
    let kind = Jira {
        client: Some(std::sync::Arc::new(client)),
    };
    let run = Invocation {
        idempotency_key: "r/main/actions/ask".into(),
        delivery_id: "d".into(),
        started_at: "2026-12-07T10:00:00Z".into(),
        request_id: shared::requests::model::RequestId::new_at(time::OffsetDateTime::now_utc()),
        resource_id: "r-1".to_owned(),
        owner: "platform".to_owned(),
        requester: "alice".into(),
        item: "firewall-rule".into(),
        action_id: "ask".into(),
        attempt: 1,
        call_timeout: std::time::Duration::from_secs(5),
    };
    let ticket = json!({"project": "OPS", "issueType": "Task", "summary": "Open a port"});
    let waits = json!({"ticket": ticket, "waitForResolution": true});
    let state = |key: &str| json!({"key": key, "url": format!("{}/browse/{key}", jira.uri())});

    match kind.poll(&run, &waits, &state("OPS-1")).await {
        Err(ActionError::Permanent { message }) => {
            assert!(
                message.contains("OPS-1 was resolved as Won't Do"),
                "{message}"
            );
            assert!(message.contains("We do not open ports"), "{message}");
        }
        other => panic!("a Won't Do must fail the step: {other:?}"),
    }
    match kind.poll(&run, &waits, &state("OPS-2")).await {
        Ok(Step::Done(document)) => assert_eq!(document["resolution"], "Done"),
        other => panic!("Done finishes the step: {other:?}"),
    }
    // An action names its own negative resolutions; then they alone fail it.
    let own = json!({"ticket": ticket, "waitForResolution": true,
                     "negativeResolutions": ["Out of Scope"]});
    match kind.poll(&run, &own, &state("OPS-3")).await {
        Err(ActionError::Permanent { message }) => {
            assert!(message.contains("resolved as Out of Scope"), "{message}");
            assert!(
                message.contains("the ticket was resolved as Out of Scope"),
                "{message}"
            );
        }
        other => panic!("its own negative resolution fails the step: {other:?}"),
    }
    assert!(matches!(
        kind.poll(&run, &own, &state("OPS-1")).await,
        Ok(Step::Done(_))
    ));
}

/// A call that gets no answer within `attemptTimeout` has an unknown outcome: it is tried
/// again with the same Idempotency-Key, even past the action's `timeout`, so a target that
/// made the thing answers for it instead of leaving an orphan. When no attempt answers,
/// the request says the outcome is unknown, with the key and the target to look at.
#[tokio::test]
async fn a_call_without_an_answer_is_retried_with_its_key_and_an_unknown_outcome_is_reported() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use wiremock::{Request, Respond};

    /// Answers the first `slow` calls too late, then at once; keeps every call's key.
    struct Slow {
        slow: usize,
        calls: AtomicUsize,
        keys: Arc<Mutex<Vec<String>>>,
    }
    impl Respond for Slow {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let key = request
                .headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            self.keys.lock().unwrap().push(key);
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let answer =
                ResponseTemplate::new(200).set_body_json(json!({"id": "vol-1", "accessKey": "k"}));
            if n < self.slow {
                answer.set_delay(std::time::Duration::from_secs(3))
            } else {
                answer
            }
        }
    }

    for (slow, ends) in [(1, "completed"), (usize::MAX, "failed")] {
        let api = MockServer::start().await;
        let keys = Arc::new(Mutex::new(Vec::new()));
        Mock::given(method("PUT"))
            .respond_with(Slow {
                slow,
                calls: AtomicUsize::new(0),
                keys: keys.clone(),
            })
            .mount(&api)
            .await;
        // A short overall timeout: the retry that learns the outcome runs past it.
        let item = orchestrator_tests::VOLUME.replace(
            "          outputs:\n            volumeId: \"$.id\"",
            "          attemptTimeout: 300ms\n          timeout: 200ms\n          retry:\n            maxAttempts: 2\n            interval: 100ms\n          outputs:\n            volumeId: \"$.id\"",
        );
        assert_ne!(item, orchestrator_tests::VOLUME);
        let dir = tempfile::tempdir().unwrap();
        let catalog = orchestrator_tests::write_catalog(dir.path(), &[("items/volume.yaml", item)]);
        let mut config = sandbox_config(dir.path(), catalog);
        config.sandbox = false;
        config.environment = json!({"api": api.uri()}).as_object().unwrap().clone();
        let app = App::start(&config).await;
        let (status, created) = app
            .submit(&json!({"item": "volume", "fields": {"name": "data", "size": 1}}))
            .await;
        assert_eq!(status, 202, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let done = app
            .wait_within(&id, ends, std::time::Duration::from_secs(20))
            .await;

        let keys = keys.lock().unwrap().clone();
        assert_eq!(keys.len(), 2, "one retry: {keys:?}");
        assert!(
            !keys[0].is_empty() && keys[0] == keys[1],
            "the same key: {keys:?}"
        );
        let timeline = app.get(&format!("/requests/{id}/events")).await;
        let events = timeline["events"].as_array().unwrap();
        let retry = events
            .iter()
            .find(|e| e["kind"] == "action_retry")
            .unwrap_or_else(|| panic!("{timeline:#}"));
        assert_eq!(
            retry["detail"]["idempotencyKey"],
            keys[0].as_str(),
            "{retry}"
        );
        if ends == "failed" {
            let unknown = events
                .iter()
                .find(|e| e["kind"] == "outcome_unknown")
                .unwrap_or_else(|| panic!("{timeline:#}"));
            assert_eq!(unknown["detail"]["idempotencyKey"], keys[0].as_str());
            assert_eq!(unknown["detail"]["action"], "put");
            assert!(
                unknown["detail"]["target"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("127.0.0.1"))
            );
            let reason = done["reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains("outcome unknown after 2 attempts"),
                "{reason}"
            );
            assert!(reason.contains(&keys[0]), "{reason}");
        } else {
            assert_eq!(done["outputs"]["volumeId"], "vol-1", "{done}");
        }
        app.running.stop().await.unwrap();
    }
}

/// An item with `onFailure: pause` keeps what its actions made when one fails, and its
/// request waits, paused, for an admin to redrive it from the failed action.
#[tokio::test]
async fn an_item_that_pauses_is_redriven_from_its_failed_action() {
    use orchestrator_tests::things::{Faults, Things, thing_item};
    let target = Things::start(Faults::none()).await;
    // A second action that reads the first's output: only it fails.
    let item = thing_item("5s")
        .replace(
            "      rollback:\n",
            "        - id: label\n          type: rest\n          with:\n            method: POST\n            url: \"{{environment.thingsUrl}}/things\"\n            body:\n              name: \"{{fields.label}}\"\n              request: \"{{request.id}}\"\n      onFailure: pause\n      rollback:\n",
        )
        .replace(
            "        name:\n          type: string\n",
            "        name:\n          type: string\n        label:\n          type: string\n",
        );
    let (app, config, _dir) =
        orchestrator_tests::things::local_app(&target, &[("items/thing.yaml", item)]).await;
    let (status, created) = app
        .submit(&json!({"item": "thing", "fields": {"name": "box", "label": "fail-label"}}))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let paused = app
        .wait_within(&id, "paused", std::time::Duration::from_secs(20))
        .await;
    assert!(
        paused["reason"]
            .as_str()
            .is_some_and(|r| r.contains("fail-label")),
        "{paused:#}"
    );
    assert_eq!(
        target.census().things.len(),
        1,
        "the box is kept, not rolled back"
    );

    target.stop_refusing();
    let admin = app.token_for(&config, "root", &["platform-admins"]).await;
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            &format!("/requests/{id}/redrive"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.wait_within(&id, "completed", std::time::Duration::from_secs(20))
        .await;
    let census = target.census();
    assert_eq!(census.made, 2, "the box was not made again: {census:?}");
    assert_eq!(census.things.len(), 2);
    app.running.stop().await.unwrap();
}

/// An action whose every attempt got no answer in time ends with its outcome unknown,
/// and the thing it made has no record. Once the request has ended, the call is tried
/// again with the same key, and what it made is rolled back: by the reconciler on its
/// own, or at once by an admin.
#[tokio::test]
async fn an_unknown_outcome_is_resolved_by_the_reconciler_or_an_admin() {
    use orchestrator_tests::things::{Faults, Things, thing_item};
    for by_admin in [false, true] {
        let target = Things::start(Faults {
            slow: 1.0,
            slow_delay: std::time::Duration::from_millis(800),
            ..Faults::none()
        })
        .await;
        let item = thing_item("200ms").replace("maxAttempts: 12", "maxAttempts: 2");
        let dir = tempfile::tempdir().unwrap();
        let catalog = orchestrator_tests::write_catalog(dir.path(), &[("items/thing.yaml", item)]);
        let mut config = sandbox_config(dir.path(), catalog);
        config.sandbox = false;
        config.resources.reconcile_seconds = if by_admin { 0 } else { 1 };
        config.environment = json!({"thingsUrl": target.uri()})
            .as_object()
            .unwrap()
            .clone();
        let app = App::start(&config).await;
        let (status, created) = app
            .submit(&json!({"item": "thing", "fields": {"name": "box"}}))
            .await;
        assert_eq!(status, 202, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        app.wait_within(&id, "failed", std::time::Duration::from_secs(20))
            .await;
        assert!(
            app.event_kinds(&id)
                .await
                .contains(&"outcome_unknown".to_owned())
        );
        assert_eq!(target.census().things.len(), 1, "the call made the box");

        target.calm();
        if by_admin {
            let path = format!("/requests/{id}/resolve");
            let (status, _) = app
                .call(reqwest::Method::POST, &path, &app.token, None)
                .await;
            assert_eq!(status, 403);
            let admin = app.token_for(&config, "root", &["platform-admins"]).await;
            let (status, body) = app
                .call(
                    reqwest::Method::POST,
                    &path,
                    &admin,
                    Some(&json!({"verdict": "retry"})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                body["resolutions"],
                json!([{"component": "main", "action": "create", "outcome": "rolled_back",
                        "detail": "the retry found what the call had made"}])
            );
            // Nothing is left to resolve.
            let (_, again) = app.call(reqwest::Method::POST, &path, &admin, None).await;
            assert_eq!(again["resolutions"], json!([]));
        } else {
            for _ in 0..200 {
                if app
                    .event_kinds(&id)
                    .await
                    .contains(&"outcome_resolved".to_owned())
                {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        let timeline = app.get(&format!("/requests/{id}/events")).await;
        let resolved = timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "outcome_resolved")
            .unwrap_or_else(|| panic!("resolved (by admin: {by_admin}): {timeline:#}"));
        assert_eq!(resolved["detail"]["action"], "create");
        assert_eq!(
            resolved["actor"],
            if by_admin { "root" } else { "reconciler" }
        );
        let census = target.census();
        assert!(
            census.things.is_empty(),
            "the box was rolled back: {census:?}"
        );
        assert_eq!(
            census.made, 1,
            "the retry found the box, it made no second one"
        );
        app.running.stop().await.unwrap();
    }
}

/// An item whose secret AWS generates: provisioned in Secrets Manager (moto), its ARN
/// recorded as a sensitive output, its value nowhere in the orchestrator; deleting the
/// resource deletes the secret.
#[tokio::test]
async fn a_secret_generated_in_secrets_manager_is_recorded_by_arn_only_and_deleted_with_its_resource()
 {
    let Some(moto) = orchestrator_tests::moto::moto().await else {
        return;
    };
    let sdk = aws::for_endpoint(&moto.endpoint, "eu-west-1").await;
    let name = format!("apps/{}", uuid::Uuid::new_v4().simple());
    let item = format!(
        "\
apiVersion: orchestrator.dev/v1
kind: CatalogItem
metadata:
  name: app-secret
  title: Application secret
  description: A secret for an application, generated by AWS.
  owner: database
  category: security
spec:
  presentation:
    schema:
      type: object
      required: [app]
      properties:
        app:
          type: string
  outputs:
    secretArn:
      description: The secret's ARN; the application reads the value itself.
      sensitive: true
    secretName:
      description: The secret's name.
  fulfillment:
    mode: automated
    automated:
      actions:
        - id: create
          type: secrets-manager
          with:
            secret: \"{name}/{{{{fields.app}}}}\"
            generate:
              length: 48
            tags:
              app: \"{{{{fields.app}}}}\"
          outputs:
            secretArn: $.arn
            secretName: $.name
      deprovision:
        - id: delete
          type: secrets-manager
          with:
            operation: delete
            secret: \"{{{{resource.outputs.secretName}}}}\"
            recoveryWindowDays: 0
"
    );
    let dir = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::write_catalog(dir.path(), &[("items/app-secret.yaml", item)]);
    let mut config = sandbox_config(dir.path(), catalog);
    config.sandbox = false;
    let app = App::start_with_aws(&config, &sdk).await;
    let (status, accepted) = app
        .submit(&json!({"item": "app-secret", "fields": {"app": "billing"}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let done = app.wait_for(&id, "completed").await;
    assert_eq!(
        done["outputs"]["secretArn"],
        json!({"sensitive": true}),
        "{done}"
    );
    assert_eq!(done["outputs"]["secretName"], format!("{name}/billing"));

    // The value is in Secrets Manager and in no response and no stored record.
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let value = secrets
        .get_secret_value()
        .secret_id(format!("{name}/billing"))
        .send()
        .await
        .unwrap()
        .secret_string
        .unwrap();
    assert_eq!(value.len(), 48);
    let mut seen = String::new();
    for path in [
        format!("/requests/{id}"),
        format!("/requests/{id}/events"),
        format!("/requests/{id}/execution"),
        format!("/resources/{id}"),
        format!("/resources/{id}/history"),
    ] {
        seen.push_str(&app.get(&path).await.to_string());
    }
    for entry in std::fs::read_dir(&config.data_dir).unwrap() {
        seen.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.unwrap().path()).unwrap(),
        ));
    }
    assert!(!seen.contains(&value), "the generated value leaked");

    // Deleting the resource deletes the secret.
    let (status, deleting) = app
        .call(
            Method::DELETE,
            &format!("/resources/{id}"),
            &app.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deleting}");
    let deletion = deleting["request"]["id"].as_str().unwrap().to_owned();
    app.wait_for(&deletion, "completed").await;
    assert!(
        secrets
            .describe_secret()
            .secret_id(format!("{name}/billing"))
            .send()
            .await
            .is_err(),
        "the secret is gone"
    );
    app.running.stop().await.unwrap();
}

/// A `rest` call with `auth: awsSigv4` reaches its API signed with AWS Signature
/// Version 4 for the service and region the item names: the test signs the same request
/// again with the same credentials and gets the same signature.
#[tokio::test]
async fn a_rest_call_to_an_iam_authorized_api_is_signed_with_sigv4() {
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/prod/tables"))
        .and(header_exists("authorization"))
        .and(header_exists("x-amz-date"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "tbl-1"})))
        .mount(&api)
        .await;
    let item = orchestrator_tests::ITEM.to_owned();
    let item = item[..item.find("  fulfillment:\n").unwrap()].to_owned()
        + "  fulfillment:
    mode: automated
    automated:
      actions:
        - id: create
          type: rest
          with:
            method: POST
            url: \"{{environment.api}}/prod/tables\"
            body:
              name: \"{{fields.dbName}}\"
            auth:
              awsSigv4:
                service: execute-api
                region: eu-central-1
          outputs:
            endpoint: $.id
";
    let dir = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::write_catalog(dir.path(), &[("items/postgres.yaml", item)]);
    let mut config = sandbox_config(dir.path(), catalog);
    config.sandbox = false;
    config.environment = json!({"api": api.uri()}).as_object().unwrap().clone();
    let sdk = aws::for_endpoint("http://127.0.0.1:9", "eu-west-1").await;
    let app = App::start_with_aws(&config, &sdk).await;
    // The plan says how the call is signed, and signs nothing.
    let (status, plan) = app
        .call(
            Method::POST,
            "/requests?dryRun=true",
            &app.token,
            Some(&json!({"item": "postgres", "fields": {"dbName": "orders"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let shown = plan["actions"][0]["sends"]["headers"]["authorization"].to_string();
    assert!(
        shown.contains("signed for execute-api in eu-central-1"),
        "{plan:#}"
    );

    let (status, accepted) = app
        .submit(&json!({"item": "postgres", "fields": {"dbName": "orders"}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    app.wait_for(accepted["id"].as_str().unwrap(), "completed")
        .await;

    let received = api.received_requests().await.unwrap();
    let call = received
        .iter()
        .find(|r| r.url.path() == "/prod/tables")
        .unwrap();
    let authorization = call.headers["authorization"].to_str().unwrap();
    let date = call.headers["x-amz-date"].to_str().unwrap();
    let scope = format!(
        "Credential=testing/{}/eu-central-1/execute-api/aws4_request",
        &date[..8]
    );
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 "),
        "{authorization}"
    );
    assert!(authorization.contains(&scope), "{authorization}");
    let signed: Vec<&str> = authorization
        .split("SignedHeaders=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .split(';')
        .collect();
    for needed in ["host", "x-amz-date", "idempotency-key", "content-type"] {
        assert!(signed.contains(&needed), "{needed} is signed: {signed:?}");
    }
    // Sign the same request again, at the same time, with the same credentials.
    let at = time::PrimitiveDateTime::parse(
        date,
        time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
    )
    .unwrap()
    .assume_utc();
    let identity =
        aws_credential_types::Credentials::new("testing", "testing", None, None, "t").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-central-1")
        .name("execute-api")
        .time(std::time::SystemTime::from(at))
        .settings(aws_sigv4::http_request::SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers: Vec<(String, String)> = call
        .headers
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            signed.contains(&k) && k != "x-amz-date" && k != "host"
        })
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    // wiremock's URL names no port: the signed host is the Host header.
    let url = format!(
        "http://{}{}",
        call.headers["host"].to_str().unwrap(),
        call.url.path()
    );
    let signable = aws_sigv4::http_request::SignableRequest::new(
        "POST",
        &url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        aws_sigv4::http_request::SignableBody::Bytes(&call.body),
    )
    .unwrap();
    let (_, signature) = aws_sigv4::http_request::sign(signable, &params)
        .unwrap()
        .into_parts();
    assert!(
        authorization.ends_with(&format!("Signature={signature}")),
        "{authorization} vs {signature}"
    );
    app.running.stop().await.unwrap();
}

/// Local mode on a catalog of the bucket item `item` and its template, its AWS actions
/// reaching AWS through `sdk` (moto or a stand-in); `edit` adjusts the configuration.
async fn bucket_app(
    dir: &Path,
    item: String,
    sdk: &aws::SdkConfig,
    edit: impl FnOnce(&mut Config),
) -> App {
    let catalog = orchestrator_tests::write_catalog(
        dir,
        &[
            ("items/bucket.yaml", item),
            (
                "templates/bucket.yaml",
                orchestrator_tests::BUCKET_TEMPLATE.to_owned(),
            ),
        ],
    );
    let mut config = sandbox_config(dir, catalog);
    config.sandbox = false;
    edit(&mut config);
    App::start_with_aws(&config, sdk).await
}

/// A platform team's CloudFormation template offered with only YAML: a request deploys
/// it through a change set on CloudFormation (moto), the item's outputs come from the
/// stack's, everything is tagged, and deleting the resource deletes the stack.
#[tokio::test]
async fn a_cloudformation_template_is_deployed_as_a_stack_and_deleted_with_its_resource() {
    let Some(moto) = orchestrator_tests::moto::moto().await else {
        return;
    };
    let sdk = aws::for_endpoint(&moto.endpoint, "eu-west-1").await;
    let dir = tempfile::tempdir().unwrap();
    let item = orchestrator_tests::bucket_item(
        "              BucketName: \"orch-{{fields.name}}\"\n              Versioning: Enabled",
    );
    let app = bucket_app(dir.path(), item, &sdk, |_| {}).await;
    let name = format!("b{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    // The plan shows the change set, and calls nothing.
    let (status, plan) = app
        .call(
            Method::POST,
            "/requests?dryRun=true",
            &app.token,
            Some(&json!({"item": "bucket", "fields": {"name": name}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let change_set = &plan["actions"][0]["sends"]["changeSet"];
    assert_eq!(
        change_set["resources"]["Bucket"], "AWS::S3::Bucket",
        "{plan:#}"
    );
    assert_eq!(
        change_set["parameters"]["BucketName"],
        format!("orch-{name}")
    );
    assert_eq!(change_set["tags"]["cost-center"], "42");

    let (status, accepted) = app
        .submit(&json!({"item": "bucket", "fields": {"name": name}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let done = app
        .wait_within(&id, "completed", std::time::Duration::from_secs(60))
        .await;
    let stack = done["outputs"]["stackName"].as_str().unwrap().to_owned();
    assert_eq!(
        stack,
        format!("orchestrator-bucket-{}", id.replace('-', ""))
    );
    assert!(
        done["outputs"]["bucketArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(&format!(":orch-{name}"))),
        "{done}"
    );

    // The stack's events are on the timeline, typed, oldest first (moto records the
    // stack's own events, not its resources').
    let timeline = app.get(&format!("/requests/{id}/events")).await;
    let progress: Vec<(&Value, &Value)> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "action_progress")
        .map(|e| {
            let event = &e["detail"]["targetEvent"];
            assert_eq!(e["detail"]["action"], "stack");
            (&event["resource"], &event["status"])
        })
        .collect();
    assert_eq!(
        progress,
        [
            (&json!(stack), &json!("CREATE_IN_PROGRESS")),
            (&json!(stack), &json!("CREATE_COMPLETE"))
        ],
        "{timeline:#}"
    );

    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let described = cfn
        .describe_stacks()
        .stack_name(&stack)
        .send()
        .await
        .unwrap();
    let found = &described.stacks()[0];
    assert_eq!(found.stack_status().unwrap().as_str(), "CREATE_COMPLETE");
    let tags: std::collections::BTreeMap<_, _> = found
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect();
    assert_eq!(tags["orchestrator:request"], id.as_str());
    assert_eq!(tags["orchestrator:item"], "bucket");
    assert_eq!(tags["orchestrator:owner"], "database");
    assert_eq!(tags["cost-center"], "42");

    // A day-2 change: its plan asks CloudFormation what an update change set would do
    // (moto diffs templates only, so the resource changes themselves are checked against
    // a stand-in in tests/cloudformation.rs), then the change updates the same stack.
    let renamed = format!("{name}-2");
    let (status, planned) = app
        .call(
            Method::POST,
            &format!("/resources/{id}/changes"),
            &app.token,
            Some(&json!({"fields": {"name": renamed}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{planned}");
    let preview = &planned["actions"][0]["preview"];
    assert_eq!(preview["stackName"], stack.as_str(), "{planned:#}");
    assert!(preview["changes"].is_array(), "{planned:#}");
    // The preview left no change set behind.
    let sets = cfn
        .list_change_sets()
        .stack_name(&stack)
        .send()
        .await
        .unwrap();
    assert!(
        sets.summaries()
            .iter()
            .all(|s| !s.change_set_name().unwrap_or_default().contains("preview")),
        "{sets:?}"
    );
    let (status, changing) = app
        .call(
            Method::POST,
            &format!("/resources/{id}/changes"),
            &app.token,
            Some(&json!({"fields": {"name": renamed}, "apply": true})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{changing}");
    let changed = changing["request"]["id"].as_str().unwrap().to_owned();
    app.wait_within(&changed, "completed", std::time::Duration::from_secs(60))
        .await;
    let described = cfn
        .describe_stacks()
        .stack_name(&stack)
        .send()
        .await
        .unwrap();
    let found = &described.stacks()[0];
    assert_eq!(found.stack_status().unwrap().as_str(), "UPDATE_COMPLETE");
    assert!(
        found
            .parameters()
            .iter()
            .any(|p| p.parameter_value() == Some(&format!("orch-{renamed}"))),
        "{found:?}"
    );
    // The resource's outputs are the updated stack's.
    let arn = found
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some("BucketArn"))
        .and_then(|o| o.output_value())
        .unwrap();
    let resource = app.get(&format!("/resources/{id}")).await;
    assert_eq!(resource["outputs"]["bucketArn"], arn, "{resource}");
    assert_eq!(resource["outputs"]["stackName"], stack.as_str());
    assert_eq!(resource["inputs"]["name"], renamed.as_str());

    let (status, deleting) = app
        .call(
            Method::DELETE,
            &format!("/resources/{id}"),
            &app.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deleting}");
    let deletion = deleting["request"]["id"].as_str().unwrap().to_owned();
    app.wait_within(&deletion, "completed", std::time::Duration::from_secs(60))
        .await;
    let gone = cfn.describe_stacks().stack_name(&stack).send().await;
    let status = gone
        .ok()
        .and_then(|d| d.stacks().first().and_then(|s| s.stack_status().cloned()));
    assert!(
        status.is_none()
            || status == Some(aws_sdk_cloudformation::types::StackStatus::DeleteComplete),
        "{status:?}"
    );
    app.running.stop().await.unwrap();
}

/// The example catalog's AWS-native items in the sandbox, as `scripts/run` serves them
/// with moto: an S3 bucket, an SQS queue (FIFO, with its dead-letter queue), an SNS topic
/// and a DynamoDB table from the platform teams' CloudFormation templates, a generated secret and an
/// application setting, each provisioned in (emulated) AWS.
#[tokio::test]
async fn the_example_aws_native_items_provision_in_the_sandbox_on_moto() {
    let Some(moto) = orchestrator_tests::moto::moto().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::fast_example_catalog(dir.path());
    let mut config = sandbox_config(dir.path(), catalog);
    config.aws.endpoint_url = Some(moto.endpoint.clone());
    let sdk = aws::for_endpoint(&moto.endpoint, "us-east-1").await;
    let app = App::start_with_aws(&config, &sdk).await;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let requests = [
        json!({"item": "s3-bucket-stack", "fields": {"bucketName": format!("assets-{suffix}")}}),
        json!({"item": "generated-secret", "fields": {"app": format!("billing-{suffix}"), "name": "db-password"}}),
        json!({"item": "app-parameter", "fields": {"app": format!("billing-{suffix}"), "name": "feature-flags", "value": "dark-mode"}}),
        json!({"item": "sqs-queue", "fields": {"queueName": format!("orders-{suffix}"), "fifo": true}}),
        json!({"item": "sns-topic", "fields": {"topicName": format!("orders-{suffix}")}}),
        json!({"item": "dynamodb-table", "fields": {"tableName": format!("orders-{suffix}"), "partitionKey": "pk", "streams": true}}),
    ];
    for body in requests {
        let (status, accepted) = app.submit(&body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        let done = app
            .wait_within(
                accepted["id"].as_str().unwrap(),
                "completed",
                std::time::Duration::from_secs(60),
            )
            .await;
        assert!(
            done["outputs"].as_object().is_some_and(|o| !o.is_empty()),
            "{done}"
        );
    }
    let bucket = aws_sdk_cloudformation::Client::new(&sdk)
        .describe_stacks()
        .send()
        .await
        .unwrap();
    assert!(
        bucket.stacks().iter().any(|s| s
            .outputs()
            .iter()
            .any(|o| o.output_value() == Some(&format!("sandbox-assets-{suffix}")))),
        "the bucket's stack is in CloudFormation"
    );
    // The queue and its dead-letter queue are in SQS, the topic in SNS, the table (with
    // its stream) in DynamoDB.
    let table = aws_sdk_dynamodb::Client::new(&sdk)
        .describe_table()
        .table_name(format!("orders-{suffix}"))
        .send()
        .await
        .unwrap();
    assert!(
        table.table().and_then(|t| t.latest_stream_arn()).is_some(),
        "{table:?}"
    );
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queues = sqs
        .list_queues()
        .queue_name_prefix(format!("orders-{suffix}"))
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = queues
        .queue_urls()
        .iter()
        .filter_map(|u| u.rsplit('/').next().map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("orders-{suffix}-dlq.fifo"),
            format!("orders-{suffix}.fifo")
        ]
    );
    let topics = aws_sdk_sns::Client::new(&sdk)
        .list_topics()
        .send()
        .await
        .unwrap();
    assert!(
        topics.topics().iter().any(|t| t
            .topic_arn()
            .is_some_and(|a| a.ends_with(&format!(":orders-{suffix}")))),
        "{topics:?}"
    );
    app.running.stop().await.unwrap();
}

/// A stack's drift, found by CloudFormation's drift detection (a stand-in: moto has
/// none), is the resource's drift, property by property; and the plan of a day-2 change
/// shows the resource changes of the update's change set, which it leaves behind.
#[tokio::test]
async fn a_stacks_drift_and_a_changes_resource_changes_come_from_cloudformation() {
    let (standin, cloudformation) = orchestrator_tests::cloudformation_standin::start().await;
    let sdk = aws::for_endpoint(&standin.uri(), "eu-west-1").await;
    let dir = tempfile::tempdir().unwrap();
    let item = orchestrator_tests::bucket_item(
        "              BucketName: \"orch-{{fields.name}}\"\n              Versioning: Enabled",
    )
    .replace(
        "      rollback:\n",
        "      verify:\n        - id: drift\n          type: cloudformation\n          with:\n            operation: detect-drift\n      rollback:\n",
    );
    // CloudFormation makes the stack's resources as a service role, not as the worker.
    let app = bucket_app(dir.path(), item, &sdk, |config| {
        config.aws.stack_role_name = Some("orchestrator-stacks".to_owned());
        config.aws.account_id = "123456789012".to_owned();
    })
    .await;
    let (status, accepted) = app
        .submit(&json!({"item": "bucket", "fields": {"name": "standin"}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    app.wait_within(&id, "completed", std::time::Duration::from_secs(30))
        .await;

    let (status, verified) = app
        .call(
            Method::POST,
            &format!("/resources/{id}/verify"),
            &app.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["outcome"], "drifted", "{verified}");
    let drift = &verified["drift"][0];
    assert_eq!(drift["attribute"], "Bucket/VersioningConfiguration/Status");
    assert_eq!(drift["recorded"], "Enabled");
    assert_eq!(drift["actual"], "Suspended");
    let resource = app.get(&format!("/resources/{id}")).await;
    assert_eq!(
        resource["drift"][0]["attribute"], "Bucket/VersioningConfiguration/Status",
        "{resource}"
    );

    let (status, planned) = app
        .call(
            Method::POST,
            &format!("/resources/{id}/changes"),
            &app.token,
            Some(&json!({"fields": {"name": "renamed"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{planned}");
    let change = &planned["actions"][0]["preview"]["changes"][0];
    assert_eq!(change["action"], "Modify", "{planned:#}");
    assert_eq!(change["logicalId"], "Bucket");
    assert_eq!(change["replacement"], "True");
    assert_eq!(change["properties"], json!(["BucketName"]));
    let calls = cloudformation.actions();
    let made = calls.iter().filter(|a| *a == "CreateChangeSet").count();
    let removed = calls.iter().filter(|a| *a == "DeleteChangeSet").count();
    assert_eq!((made, removed), (1, 1), "{calls:?}");
    assert!(!calls.iter().any(|a| a == "ExecuteChangeSet"), "{calls:?}");
    // The preview's change set was of the new values.
    let sent = cloudformation.calls.lock().unwrap().clone();
    let (_, preview) = sent.iter().find(|(a, _)| a == "CreateChangeSet").unwrap();
    assert_eq!(preview["ChangeSetType"], "UPDATE");
    let role = "arn:aws:iam::123456789012:role/orchestrator-stacks";
    assert_eq!(preview["RoleARN"], role);
    let (_, created) = sent.iter().find(|(a, _)| a == "CreateStack").unwrap();
    assert_eq!(created["RoleARN"], role);
    assert!(
        preview
            .iter()
            .any(|(k, v)| k.starts_with("Parameters.member.") && v == "orch-renamed"),
        "{preview:?}"
    );
    app.running.stop().await.unwrap();
}

/// A stack that fails (its bucket cannot be created, and CloudFormation rolls it back)
/// fails the request with the first resource that failed and CloudFormation's reason,
/// and each resource's events are on the timeline, typed (a stand-in: moto refuses
/// `CreateStack` instead of failing a stack).
#[tokio::test]
async fn a_failing_stack_reports_its_first_failed_resource_and_its_events() {
    let (standin, _) = orchestrator_tests::cloudformation_standin::start_failing().await;
    let sdk = aws::for_endpoint(&standin.uri(), "eu-west-1").await;
    let dir = tempfile::tempdir().unwrap();
    let item = orchestrator_tests::bucket_item("              BucketName: \"{{fields.name}}\"");
    let app = bucket_app(dir.path(), item, &sdk, |_| {}).await;
    let (status, accepted) = app
        .submit(&json!({"item": "bucket", "fields": {"name": "standin-bucket"}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let failed = app
        .wait_within(&id, "failed", std::time::Duration::from_secs(30))
        .await;
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("ended ROLLBACK_COMPLETE: Bucket (AWS::S3::Bucket) CREATE_FAILED: standin-bucket already exists"),
        "{failed}"
    );
    let timeline = app.get(&format!("/requests/{id}/events")).await;
    let progress: Vec<(&Value, &Value)> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "action_progress")
        .map(|e| {
            let event = &e["detail"]["targetEvent"];
            (&event["resource"], &event["status"])
        })
        .collect();
    let bucket: Vec<&Value> = progress
        .iter()
        .filter(|(r, _)| **r == "Bucket")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(
        bucket,
        ["CREATE_IN_PROGRESS", "CREATE_FAILED", "DELETE_COMPLETE"],
        "oldest first: {timeline:#}"
    );
    let failure = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["detail"]["targetEvent"]["status"] == "CREATE_FAILED")
        .unwrap();
    assert_eq!(
        failure["detail"]["targetEvent"]["reason"],
        "standin-bucket already exists"
    );
    assert_eq!(
        failure["detail"]["targetEvent"]["resourceType"],
        "AWS::S3::Bucket"
    );
    app.running.stop().await.unwrap();
}
