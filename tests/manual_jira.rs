//! Manual fulfillment end to end: local mode with a wiremock JIRA that checks the request
//! shapes JIRA's REST API documents, and the JIRA webhook driving completion.

use std::sync::Arc;
use std::time::Duration;

use orchestrator_tests::app::App;
use orchestrator_tests::jira_stub::{already_has_issue, creates_issue, no_existing_issue};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::config::Config;
use shared::ports::{Clock, Queue};
use shared::requests::model::{EventKind, Request, RequestStatus, Transition};
use shared::requests::service::RequestError;
use shared::testkit::{ManualClock, TimeControl};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "jira-api-t0ken";
const HOOK: &str = "hook-s3cret";

fn config(jira: &str, data: &std::path::Path) -> Config {
    let secrets = data.join("secrets.json");
    if !secrets.exists() {
        std::fs::create_dir_all(data).unwrap();
        std::fs::write(
            &secrets,
            json!({"jira-token": TOKEN, "jira-webhook": HOOK}).to_string(),
        )
        .unwrap();
    }
    let mut config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: orchestrator_tests::example_catalog(),
        data_dir: data.to_owned(),
        secrets_file: Some(secrets),
        ..Config::default()
    };
    config.jira.url = Some(jira.to_owned());
    config.jira.email = Some("orchestrator@acme.example".to_owned());
    config
}

async fn start(config: Config) -> App {
    App::start(&config).await
}

/// What these tests do beyond the shared harness.
trait JiraApp {
    async fn submit_kafka(&self) -> String;
    async fn webhook(&self, query_secret: &str, payload: Value) -> StatusCode;
}

impl JiraApp for App {
    async fn submit_kafka(&self) -> String {
        let (status, request) = self
            .submit(&json!({"item": "kafka-topic", "fields": {
                "topicName": "orders.v1",
                "producerPrincipal": "arn:aws:iam::123456789012:role/orders",
                "consumerPrincipals": ["arn:aws:iam::123456789012:role/billing"]
            }}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        request["id"].as_str().unwrap().to_owned()
    }

    async fn webhook(&self, query_secret: &str, payload: Value) -> StatusCode {
        self.client
            .post(format!("{}/webhooks/jira?secret={query_secret}", self.base))
            .json(&payload)
            .send()
            .await
            .unwrap()
            .status()
    }
}

fn basic_auth() -> String {
    let raw = format!("orchestrator@acme.example:{TOKEN}");
    // Base64 by hand (the standard alphabet, with padding), to check the exact header.
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = raw.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

fn issue_payload(
    key: &str,
    status_category: &str,
    resolution: Option<&str>,
    extra: Value,
) -> Value {
    let mut fields = json!({
        "status": {"name": "Closed", "statusCategory": {"key": status_category}},
        "resolution": resolution.map(|r| json!({"name": r})),
    });
    if let (Value::Object(f), Value::Object(e)) = (&mut fields, extra) {
        f.extend(e);
    }
    json!({"webhookEvent": "jira:issue_updated", "issue": {"key": key, "fields": fields}})
}

#[tokio::test]
async fn a_manual_request_opens_a_jira_issue_and_completes_when_it_is_done() {
    let jira = MockServer::start().await;
    no_existing_issue(&jira).await;
    Mock::given(method("POST"))
        .and(path("/rest/api/2/issue"))
        .and(header("authorization", basic_auth().as_str()))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(json!({"fields": {
            "project": {"key": "MSG"},
            "issuetype": {"name": "Service Request"},
            "summary": "Kafka topic orders.v1",
            "components": [{"name": "MSK"}],
        }})))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": "10001", "key": "MSG-1", "self": "x"})),
        )
        .expect(1)
        .mount(&jira)
        .await;
    let data = tempfile::tempdir().unwrap();
    let app = start(config(&jira.uri(), data.path())).await;
    let id = app.submit_kafka().await;
    let request = app.wait_for(&id, "awaiting_fulfillment").await;
    assert_eq!(request["ticket"]["key"], "MSG-1");
    assert_eq!(
        request["ticket"]["url"],
        format!("{}/browse/MSG-1", jira.uri())
    );

    // The exact issue body: rendered templates, labels tying it to the request.
    let sent: Vec<Value> = jira
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let fields = &sent[0]["fields"];
    assert_eq!(
        fields["labels"],
        json!([
            "self-service",
            "kafka",
            "orchestrator",
            format!("orchestrator-{id}")
        ])
    );
    let description = fields["description"].as_str().unwrap();
    assert!(
        description.contains("Partitions: 6, retention 168h, cleanup delete"),
        "{description}"
    );
    assert!(
        description.contains("Consumers: arn:aws:iam::123456789012:role/billing"),
        "{description}"
    );
    assert!(
        description.contains(&format!("(request {id})")),
        "{description}"
    );
    let search = jira
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "GET")
        .unwrap();
    assert_eq!(
        search
            .url
            .query_pairs()
            .find(|(k, _)| k == "jql")
            .unwrap()
            .1,
        format!("labels = \"orchestrator-{id}\"")
    );

    // JIRA says done: the request completes with the outputs the fulfiller entered.
    assert_eq!(
        app.webhook(
            "wrong",
            issue_payload("MSG-1", "done", Some("Done"), json!({}))
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    let done = issue_payload(
        "MSG-1",
        "done",
        Some("Done"),
        json!({"customfield_10401": "orders.v1", "customfield_10402": "b-1.msk:9098"}),
    );
    assert_eq!(
        app.webhook(HOOK, done.clone()).await,
        StatusCode::NO_CONTENT
    );
    let request = app.wait_for(&id, "completed").await;
    assert_eq!(
        request["outputs"],
        json!({"topicName": "orders.v1", "bootstrapBrokers": "b-1.msk:9098"})
    );
    assert_eq!(
        app.webhook(HOOK, done).await,
        StatusCode::NO_CONTENT,
        "a repeated delivery is harmless"
    );
    let events: Value = app
        .client
        .get(format!("{}/requests/{id}/events", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "submitted",
            "fulfillment_started",
            "ticket_created",
            "completed"
        ]
    );
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_ticket_resolved_as_wont_do_rejects_the_request_with_the_last_comment() {
    let jira = MockServer::start().await;
    no_existing_issue(&jira).await;
    creates_issue("MSG-2").mount(&jira).await;
    let data = tempfile::tempdir().unwrap();
    let app = start(config(&jira.uri(), data.path())).await;
    let id = app.submit_kafka().await;
    app.wait_for(&id, "awaiting_fulfillment").await;
    let progress = issue_payload("MSG-2", "indeterminate", None, json!({}));
    assert_eq!(app.webhook(HOOK, progress).await, StatusCode::NO_CONTENT);
    assert_eq!(
        app.request(&id).await["status"],
        "awaiting_fulfillment",
        "work in progress changes nothing"
    );
    let comments = json!({"comment": {"comments": [{"body": "Looking"}, {"body": "Use the shared orders topic instead."}]}});
    assert_eq!(
        app.webhook(
            HOOK,
            issue_payload("MSG-2", "done", Some("Won't Do"), comments)
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let request = app.wait_for(&id, "rejected").await;
    assert_eq!(request["reason"], "Use the shared orders topic instead.");
    // Issues the orchestrator did not open are acknowledged and ignored.
    assert_eq!(
        app.webhook(
            HOOK,
            issue_payload("OTHER-1", "done", Some("Done"), json!({}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_jira_outage_is_retried_until_jira_recovers() {
    let jira = MockServer::start().await;
    no_existing_issue(&jira).await;
    Mock::given(method("POST"))
        .and(path("/rest/api/2/issue"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "0"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&jira)
        .await;
    creates_issue("MSG-3").expect(1).mount(&jira).await;
    let data = tempfile::tempdir().unwrap();
    let app = start(config(&jira.uri(), data.path())).await;
    let id = app.submit_kafka().await;
    let request = app.wait_for(&id, "awaiting_fulfillment").await;
    assert_eq!(request["ticket"]["key"], "MSG-3");
    let posts = jira
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(posts, 3, "two refused attempts, then the one that worked");
}

#[tokio::test]
async fn a_permanent_jira_error_fails_the_request_with_jiras_messages() {
    let jira = MockServer::start().await;
    no_existing_issue(&jira).await;
    Mock::given(method("POST"))
        .and(path("/rest/api/2/issue"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "errorMessages": [],
            "errors": {"components": "Component name 'MSK' is not valid"}
        })))
        .expect(1)
        .mount(&jira)
        .await;
    let data = tempfile::tempdir().unwrap();
    let app = start(config(&jira.uri(), data.path())).await;
    let id = app.submit_kafka().await;
    let request = app.wait_for(&id, "failed").await;
    let reason = request["reason"].as_str().unwrap();
    assert!(
        reason.contains("components: Component name 'MSK' is not valid"),
        "{reason}"
    );
    assert!(!reason.contains(TOKEN));
}

#[tokio::test]
async fn after_a_restart_the_request_resumes_and_its_issue_is_created_once() {
    // First life: JIRA is down (nothing listens), so the request waits in the queue.
    let data = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_jira = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let first = start(config(&dead_jira, data.path())).await;
    let id = first.submit_kafka().await;
    first.running.stop().await.unwrap();

    // Second life on the same data: JIRA is back and already holds an issue for the request
    // (the first life created it just before going down): it is found, not created again.
    let jira = MockServer::start().await;
    already_has_issue(&jira, &id, "MSG-9").await;
    let second = start(config(&jira.uri(), data.path())).await;
    let request = second.wait_for(&id, "awaiting_fulfillment").await;
    assert_eq!(request["ticket"]["key"], "MSG-9");
    second.running.stop().await.unwrap();
}

#[tokio::test]
async fn in_the_sandbox_a_ticket_can_be_resolved_by_an_http_call() {
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: orchestrator_tests::example_catalog(),
        data_dir: data.path().to_owned(),
        sandbox: true,
        ..Config::default()
    };
    let app = start(config).await;
    let jira = app.running.jira_url.clone().unwrap();
    let id = app.submit_kafka().await;
    let request = app.wait_for(&id, "awaiting_fulfillment").await;
    let key = request["ticket"]["key"].as_str().unwrap().to_owned();
    assert_eq!(key, "MSG-1");

    let listed: Value = app
        .client
        .get(format!("{jira}/sandbox/jira/issues"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sandbox"], true);
    assert_eq!(listed["issues"][0]["key"], key.as_str());
    assert_eq!(listed["issues"][0]["status"], "To Do");

    let resolved: Value = app
        .client
        .post(format!("{jira}/sandbox/jira/issues/{key}/resolve"))
        .json(&json!({"resolution": "Done", "fields": {"customfield_10401": "orders.v1", "customfield_10402": "sandbox-broker:9098"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            resolved["sandbox"].as_bool(),
            resolved["webhookStatus"].as_u64()
        ),
        (Some(true), Some(204))
    );
    let request = app.wait_for(&id, "completed").await;
    assert_eq!(
        request["outputs"]["bootstrapBrokers"],
        "sandbox-broker:9098"
    );

    // A second request, declined in the sandbox with a comment.
    let second = app.submit_kafka().await;
    let key = app.wait_for(&second, "awaiting_fulfillment").await["ticket"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    app.client
        .post(format!("{jira}/sandbox/jira/issues/{key}/resolve"))
        .json(&json!({"resolution": "Won't Do", "comment": "Duplicate of MSG-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.wait_for(&second, "rejected").await["reason"],
        "Duplicate of MSG-1"
    );
    app.running.stop().await.unwrap();
}

/// Submits a kafka-topic request as alice through a request service on `app`'s database
/// whose store has no outbox and whose queue no worker reads: the request is stored, and
/// only the test acts on it. Returns that service and the request.
async fn submit_unseen(
    app: &App,
    data: &std::path::Path,
    topic: &str,
) -> (shared::requests::service::RequestService, Request) {
    let state = &app.running.state;
    let unseen = shared::requests::service::RequestService {
        catalog: state.requests.catalog.clone(),
        store: Arc::new(shared::adapters::local::SqliteRequestStore::new(
            shared::adapters::local::Db::open(data).unwrap(),
        )),
        queue: Arc::new(shared::adapters::local::SqliteQueue::new(
            shared::adapters::local::Db::in_memory().unwrap(),
            "unread",
            5,
            state.requests.clock.clone(),
        )),
        clock: state.requests.clock.clone(),
        roles: state.requests.roles.clone(),
        ended: state.requests.ended.clone(),
        notices: None,
    };
    let alice = shared::access::Principal {
        sub: "alice".into(),
        email: None,
        groups: vec![],
    };
    let fields =
        json!({"topicName": topic, "producerPrincipal": "arn:aws:iam::123456789012:role/orders"});
    let (request, _) = unseen
        .submit(
            &alice,
            "kafka-topic",
            fields.as_object().unwrap().clone(),
            None,
        )
        .await
        .unwrap();
    (unseen, request)
}

/// A worker over `app`'s request store whose sweep reads the time off `clock` and sends
/// to `queue`.
fn sweeper(app: &App, clock: Arc<ManualClock>, queue: Arc<dyn Queue>) -> shared::worker::Worker {
    let state = &app.running.state;
    let requests = shared::requests::service::RequestService {
        catalog: state.requests.catalog.clone(),
        store: state.requests.store.clone(),
        queue,
        clock: clock.clone(),
        roles: state.requests.roles.clone(),
        ended: state.requests.ended.clone(),
        notices: None,
    };
    shared::worker::Worker {
        notifier: None,
        requests: Arc::new(requests),
        jira: None,
        engine: Arc::new(
            shared::fulfillment::engine::Engine::standard(
                None,
                &Default::default(),
                Arc::new(shared::adapters::local::SqliteStateStore::new(
                    shared::adapters::local::Db::in_memory().unwrap(),
                )),
                Arc::new(shared::adapters::local::LocalSecrets::from_pairs([])),
                clock,
            )
            .unwrap(),
        ),
        system: shared::fulfillment::SystemInfo {
            region: "r".into(),
            stage: "s".into(),
            environment: Default::default(),
        },
        max_receives: 5,
        workflows: state.workflows.clone(),
        resources: state.resources.clone(),
        approvals: state.worker.approvals.clone(),
        checks: state.worker.checks.clone(),
    }
}

#[tokio::test]
async fn the_sweep_re_enqueues_a_request_whose_queue_message_was_lost() {
    let jira = MockServer::start().await;
    no_existing_issue(&jira).await;
    creates_issue("MSG-4").expect(1).mount(&jira).await;
    let data = tempfile::tempdir().unwrap();
    let app = start(config(&jira.uri(), data.path())).await;
    // A request stored without its message, as after a crash between the two writes
    // where the store and the queue share no transaction (on AWS; local mode's store
    // writes both at once).
    let (_, request) = submit_unseen(&app, data.path(), "lost.v1").await;
    let id = request.id.to_string();
    let clock = Arc::new(ManualClock::new(request.created_at));
    let worker = sweeper(
        &app,
        clock.clone(),
        app.running.state.requests.queue.clone(),
    );
    let minute = Duration::from_secs(60);
    clock.advance(minute).await;
    assert_eq!(
        worker.sweep(minute).await.unwrap(),
        0,
        "a request a minute old is left alone"
    );
    clock.advance(minute + Duration::from_secs(1)).await;
    assert_eq!(
        worker.sweep(minute).await.unwrap(),
        1,
        "two minutes old, it is sent again"
    );
    let request = app.wait_for(&id, "awaiting_fulfillment").await;
    assert_eq!(request["ticket"]["key"], "MSG-4");
    // Four minutes old: a request still submitted would be sent again now.
    clock.advance(2 * minute).await;
    assert_eq!(
        worker.sweep(2 * minute).await.unwrap(),
        0,
        "a request handled is no longer swept"
    );
}

#[tokio::test]
async fn a_request_waiting_behind_a_backlog_is_sent_again_only_as_its_age_doubles() {
    // The sweep cannot tell a lost message from one still queued behind a backlog: every
    // sweep re-sending every stale request would grow the backlog by itself each minute.
    let jira = MockServer::start().await;
    let data = tempfile::tempdir().unwrap();
    let app = start(config(&jira.uri(), data.path())).await;
    let (_, request) = submit_unseen(&app, data.path(), "backlog.v1").await;
    // Half a minute off the sweeps' beat, so no age falls on the edge of a span.
    let clock = Arc::new(ManualClock::new(
        request.created_at + Duration::from_secs(30),
    ));
    let unread = Arc::new(shared::adapters::local::SqliteQueue::new(
        shared::adapters::local::Db::in_memory().unwrap(),
        "unread",
        5,
        clock.clone(),
    ));
    let worker = sweeper(&app, clock.clone(), unread.clone());
    // Local mode's sweeps, a minute apart, for an hour; then the reconciler's, five apart,
    // for the rest of a day.
    let mut sends = Vec::new();
    for (every, times) in [(60, 60), (300, 276)] {
        let every = Duration::from_secs(every);
        for _ in 0..times {
            clock.advance(every).await;
            if worker.sweep(every).await.unwrap() == 1 {
                sends.push((clock.now() - request.created_at).whole_minutes());
            }
        }
    }
    assert_eq!(
        sends,
        [2, 4, 8, 16, 32, 65, 130, 260, 515, 1025],
        "minutes of age at each send"
    );
    let queued = unread.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(queued.len(), 10);
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn against_jira_data_center_the_search_falls_back_to_the_older_endpoint() {
    // Data Center has no /search/jql: the client falls back to /search, and remembers.
    let jira = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/rest/api/2/search/jql"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&jira)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/2/search"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"startAt": 0, "total": 0, "issues": []})),
        )
        .expect(2)
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/2/issue"))
        .and(header("authorization", "Bearer pat-t0ken"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "1", "key": "DC-1"})))
        .mount(&jira)
        .await;
    let client = shared::integrations::jira::JiraClient::new(
        &jira.uri(),
        shared::integrations::jira::JiraAuth::Bearer(shared::secret::SecretString::new(
            "pat-t0ken",
        )),
    )
    .unwrap();
    assert_eq!(client.find_by_label("orchestrator-x").await.unwrap(), None);
    assert_eq!(client.find_by_label("orchestrator-y").await.unwrap(), None);
    let fields = json!({"project": {"key": "DC"}, "issuetype": {"name": "Task"}, "summary": "s"});
    let issue = client
        .create_issue(fields.as_object().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(issue.url, format!("{}/browse/DC-1", jira.uri()));
}

#[tokio::test]
async fn a_transition_from_a_stale_copy_reads_again_and_leaves_a_cancelled_request_alone() {
    // The worker fails a provision from the copy it read (saving a second read): if the
    // request was cancelled meanwhile, the write conflicts, the transition reads again
    // and refuses; the request stays cancelled, with no `failed` on its timeline.
    let jira = MockServer::start().await;
    let data = tempfile::tempdir().unwrap();
    let app = start(config(&jira.uri(), data.path())).await;
    let (quiet, copy) = submit_unseen(&app, data.path(), "stale.v1").await;
    quiet
        .apply(copy.id, Transition::to(RequestStatus::Cancelled, "alice"))
        .await
        .unwrap();
    let refused = quiet
        .apply(
            copy.id,
            Transition::ended(RequestStatus::Failed, "worker", "too late").from(copy.clone()),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(RequestError::InvalidTransition {
                status: RequestStatus::Cancelled,
                next: RequestStatus::Failed,
            })
        ),
        "{refused:?}"
    );
    let stored = quiet.store.get(&copy.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RequestStatus::Cancelled);
    assert_eq!(stored.reason, None);
    let kinds: Vec<EventKind> = quiet
        .store
        .events(&copy.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(!kinds.contains(&EventKind::Failed), "{kinds:?}");
    app.running.stop().await.unwrap();
}

/// Comments: the requester's goes onto the timeline and, in JIRA's documented shape
/// (`POST /rest/api/2/issue/{key}/comment`, a plain-text `body`), onto the ticket; a
/// comment made in JIRA comes back onto the timeline, the orchestrator's own excepted.
/// Someone with no part in the request cannot comment; an empty comment says why not.
#[tokio::test]
async fn comments_go_to_the_ticket_and_come_back_from_it() {
    let jira = MockServer::start().await;
    no_existing_issue(&jira).await;
    creates_issue("MSG-1").mount(&jira).await;
    Mock::given(method("POST"))
        .and(path("/rest/api/2/issue/MSG-1/comment"))
        .and(header("authorization", basic_auth().as_str()))
        .and(body_partial_json(
            json!({"body": "[from the developer portal] alice: please use 12 partitions"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "10100"})))
        .expect(1)
        .mount(&jira)
        .await;
    let data = tempfile::tempdir().unwrap();
    let config = config(&jira.uri(), data.path());
    let app = start(config.clone()).await;
    let id = app.submit_kafka().await;
    app.wait_for(&id, "awaiting_fulfillment").await;

    let path = format!("/requests/{id}/comments");
    let (status, problem) = app
        .call(
            reqwest::Method::POST,
            &path,
            &app.token,
            Some(&json!({"text": "  "})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "text");
    let bob = app.token_for(&config, "bob", &["developers"]).await;
    let (status, _) = app
        .call(
            reqwest::Method::POST,
            &path,
            &bob,
            Some(&json!({"text": "hi"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, copied) = app
        .call(
            reqwest::Method::POST,
            &path,
            &app.token,
            Some(&json!({"text": "please use 12 partitions"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{copied}");
    assert_eq!(copied["jira"], json!([{"key": "MSG-1", "added": true}]));

    // JIRA's comment_created: a person's comes back; the orchestrator's own does not.
    let comment = |author: &str, body: &str| {
        json!({"webhookEvent": "comment_created", "issue": {"key": "MSG-1"},
               "comment": {"body": body, "author": {"displayName": author}}})
    };
    assert_eq!(
        app.webhook(HOOK, comment("Dana", "done: 12 partitions"))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.webhook(
            HOOK,
            comment(
                "Bot",
                "[from the developer portal] alice: please use 12 partitions"
            )
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let timeline = app.get(&format!("/requests/{id}/events")).await;
    let comments: Vec<(String, String)> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "comment")
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        comments,
        [
            ("alice".to_owned(), "please use 12 partitions".to_owned()),
            (
                "jira:Dana".to_owned(),
                "Dana on MSG-1: done: 12 partitions".to_owned()
            ),
        ]
    );
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_ticket_left_open_past_its_service_levels_is_flagged_once_and_counted_at_the_end() {
    let jira = MockServer::start().await;
    no_existing_issue(&jira).await;
    creates_issue("MSG-7").expect(1).mount(&jira).await;
    let data = tempfile::tempdir().unwrap();
    let app = start(config(&jira.uri(), data.path())).await;
    let id = app.submit_kafka().await;
    let request = app.wait_for(&id, "awaiting_fulfillment").await;
    // The example's kafka-topic promises a first response in 4 and the topic in 17
    // working hours, in London office hours: the clocks show on the request.
    let clocks = request["sla"].as_array().unwrap();
    assert_eq!(clocks.len(), 2, "{request:#}");
    assert_eq!(clocks[0]["target"], "fulfil");
    assert_eq!(clocks[0]["targetMs"], 17 * 3_600_000u64);
    assert_eq!(clocks[0]["businessHours"], "platform office hours");
    assert_eq!(clocks[1]["target"], "firstResponse");
    assert!(
        ["running", "paused"].contains(&clocks[1]["state"].as_str().unwrap()),
        "{clocks:?}"
    );

    // The watch, on a clock the test moves.
    let state = &app.running.state;
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let watch = shared::requests::sla::SlaWatch {
        requests: Arc::new(shared::requests::service::RequestService {
            catalog: state.requests.catalog.clone(),
            store: state.requests.store.clone(),
            queue: state.requests.queue.clone(),
            clock: clock.clone(),
            roles: state.requests.roles.clone(),
            ended: state.requests.ended.clone(),
            notices: None,
        }),
    };
    // An hour on: at most an hour of working time, under 80 % of either target.
    clock.advance(Duration::from_secs(3600)).await;
    let report = watch.run_once().await.unwrap();
    assert_eq!((report.at_risk, report.breached), (0, 0), "{report:?}");
    // Two weeks on: ten working days, past both.
    clock.advance(Duration::from_secs(14 * 86_400)).await;
    let report = watch.run_once().await.unwrap();
    assert_eq!((report.at_risk, report.breached), (2, 2), "{report:?}");
    let mut raised = sla_entries(&app, &id).await;
    raised.sort();
    assert_eq!(
        raised,
        [
            "sla_at_risk firstResponse",
            "sla_at_risk fulfil",
            "sla_breached firstResponse",
            "sla_breached fulfil"
        ]
    );
    // Once each: the next pass finds them said.
    let report = watch.run_once().await.unwrap();
    assert_eq!((report.at_risk, report.breached), (0, 0));
    assert_eq!(sla_entries(&app, &id).await.len(), 4);

    // Done at last: the lead time records the misses, and the insights count them.
    let done = issue_payload(
        "MSG-7",
        "done",
        Some("Done"),
        json!({"customfield_10401": "orders.v1", "customfield_10402": "b-1.msk:9098"}),
    );
    assert_eq!(app.webhook(HOOK, done).await, StatusCode::NO_CONTENT);
    let request = app.wait_for(&id, "completed").await;
    assert_eq!(request["leadTime"]["mode"], "manual");
    assert_eq!(
        request["leadTime"]["breached"],
        json!(["fulfil", "firstResponse"])
    );
    let insights = app.get("/insights/lead-time").await;
    assert_eq!(insights["overall"]["breached"], 1, "{insights:#}");
    app.running.stop().await.unwrap();
}

/// The service level entries of a request's timeline: `kind target`.
async fn sla_entries(app: &App, id: &str) -> Vec<String> {
    let events = app.get(&format!("/requests/{id}/events")).await;
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("sla_"))
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap(),
                e["detail"]["sla"].as_str().unwrap()
            )
        })
        .collect()
}
