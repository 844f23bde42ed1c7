//! The Lambdas' handlers driven by real event payloads (API Gateway HTTP API v2, SQS,
//! EventBridge scheduled events; `fixtures/lambda/`) against their AWS adapters on moto,
//! and a bundle end to end: submitted through the api handler, its execution run by Step
//! Functions on moto, its tasks taken off SQS by the worker handler, which runs the actions
//! against stand-in targets and answers with SendTaskSuccess.

use std::sync::Arc;
use std::time::Duration;

use aws::SdkConfig;
use axum::body::Body;
use functions::{Deployment, api, schedule, worker};
use http_body_util::BodyExt;
use lambda_runtime::{Context, LambdaEvent};
use orchestrator_tests::github_repo;
use orchestrator_tests::moto::{create_queues, create_table, moto};
use serde_json::{Value, json};
use shared::catalog::snapshot::CatalogSnapshot;
use shared::config::Config;
use shared::ports::CatalogStore;
use shared::testkit::metrics::Captured;
use tower::ServiceExt;
use wiremock::MockServer;

const REGION: &str = "eu-west-1";
const MAX_RECEIVES: u32 = 5;

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/lambda")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every metric line the functions in this test binary wrote, in Embedded Metric Format
/// (the sink `Deployment::from_lambda_environment` installs writes them to stdout).
fn metrics() -> &'static Captured {
    static METRICS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| {
        let captured = Captured::default();
        shared::metrics::install(Box::new(shared::metrics::Emf::to(
            "Orchestrator/test",
            Box::new(captured.clone()),
        )));
        captured
    })
}

/// A deployment on fresh AWS resources on moto, serving the example catalog (as if
/// ingested), its provisioning targets stood in for by the sandbox's services.
struct Stack {
    /// The api function's process.
    deployment: Arc<Deployment>,
    /// The worker function's process (the api's, unless a test starts another).
    worker: Arc<Deployment>,
    config: Config,
    app: axum::Router,
    sdk: SdkConfig,
    queue_url: String,
    _dir: tempfile::TempDir,
}

async fn stack() -> Option<Stack> {
    stack_with(|_| {}, serde_json::Map::new(), None).await
}

/// A stack whose example catalog is changed by `edit` before it goes live, with
/// `environment` added to the template variables (target URLs), and ingesting from the
/// catalog repository `catalog_repo` stands in for when given (which is then the only
/// GitHub the stack knows).
async fn stack_with(
    edit: impl FnOnce(&std::path::Path),
    environment: serde_json::Map<String, Value>,
    catalog_repo: Option<&MockServer>,
) -> Option<Stack> {
    if std::env::var_os("RUST_LOG").is_some() {
        functions::init_logs();
    }
    metrics();
    let moto = moto().await?;
    let sdk = aws::for_endpoint(&moto.endpoint, REGION).await;
    let table = create_table(&sdk).await;
    let (queue_url, dlq_url) = create_queues(&sdk, MAX_RECEIVES).await;
    let prefix = format!("t{}/", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let services = shared::sandbox::services::start().await.unwrap();
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    // JIRA for the actions that open a ticket (the webhook back to the api is not wired:
    // nothing here resolves a ticket).
    let jira = shared::sandbox::jira::start_jira("http://127.0.0.1:9/webhooks/jira".into())
        .await
        .unwrap();
    let (github_url, github_token) = match catalog_repo {
        Some(repo) => (repo.uri(), github_repo::TOKEN.to_owned()),
        None => (
            services.github_api_url.clone(),
            services.github_token.clone(),
        ),
    };
    let github = ("github-token".to_owned(), github_token);
    let hook = (
        "github-webhook".to_owned(),
        github_repo::HOOK_SECRET.to_owned(),
    );
    let jira_token = ("jira-token".to_owned(), "sandbox-jira-token".to_owned());
    for (name, value) in services.secrets.iter().chain([&github, &hook, &jira_token]) {
        secrets
            .create_secret()
            .name(format!("{prefix}{name}"))
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }
    let mut variables = services.environment.clone();
    variables.extend(environment);
    let mut environment: Vec<(String, String)> = vec![
        ("ORCHESTRATOR_REGION".into(), REGION.into()),
        ("ORCHESTRATOR_TABLE".into(), table),
        ("ORCHESTRATOR_ACTION_QUEUE_URL".into(), queue_url.clone()),
        ("ORCHESTRATOR_DEAD_LETTER_QUEUE_URL".into(), dlq_url),
        ("ORCHESTRATOR_MAX_RECEIVES".into(), MAX_RECEIVES.to_string()),
        ("ORCHESTRATOR_ACCOUNT_ID".into(), "123456789012".into()),
        (
            "ORCHESTRATOR_STATES_ROLE_ARN".into(),
            "arn:aws:iam::123456789012:role/orchestrator-states".into(),
        ),
        (
            "ORCHESTRATOR_STATE_MACHINE_PREFIX".into(),
            prefix.replace('/', "-"),
        ),
        ("ORCHESTRATOR_SECRETS_PREFIX".into(), prefix),
    ];
    let document = json!({
        "environment": variables,
        "stage": "dev",
        "github": {
            "apiUrl": github_url,
            "catalog": catalog_repo.map(|_| json!({"repository": github_repo::REPO, "path": "catalog"})),
        },
        "jira": {"url": jira.url, "email": "orchestrator@example.com"},
    });
    environment.push(("ORCHESTRATOR_CONFIG_JSON".into(), document.to_string()));
    let config = Config::from_environment(environment).unwrap();
    let deployment = Arc::new(Deployment::start(config.clone(), &sdk).await.unwrap());
    // What an ingestion would have made live.
    let dir = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::fast_example_catalog(dir.path());
    orchestrator_tests::with_platform_api_items(&catalog);
    edit(&catalog);
    let snapshot = CatalogSnapshot::from_dir(&catalog).unwrap();
    shared::ingest::deploy(deployment.assembly.app.workflows.as_ref(), &snapshot)
        .await
        .unwrap();
    deployment.catalog.publish(snapshot);
    let app = api::app(deployment.clone());
    Some(Stack {
        worker: deployment.clone(),
        deployment,
        config,
        app,
        sdk,
        queue_url,
        _dir: dir,
    })
}

impl Stack {
    /// The api handler's answer to an HTTP API v2 event (see [`http_event`]).
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        sub: Option<&str>,
    ) -> (u16, Value) {
        send(&self.app, http_event(method, path, body, sub)).await
    }
}

/// An HTTP API v2 event for `method path` with `body`, from `sub` (authorized by the
/// gateway) or from nobody.
fn http_event(method: &str, path: &str, body: Option<Value>, sub: Option<&str>) -> Value {
    let mut event = fixture("apigw-http-v2.json");
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    event["rawPath"] = json!(raw_path);
    event["rawQueryString"] = json!(query);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(raw_path);
    match sub {
        Some(sub) => event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(sub),
        None => {
            event["requestContext"]
                .as_object_mut()
                .unwrap()
                .remove("authorizer");
        }
    }
    if let Some(body) = body {
        event["body"] = json!(body.to_string());
        event["headers"]["content-type"] = json!("application/json");
        event["headers"]["content-length"] = json!(body.to_string().len().to_string());
    }
    event
}

/// The answer of the api handler serving `app` to HTTP API v2 `event`.
async fn send(app: &axum::Router, event: Value) -> (u16, Value) {
    let request = lambda_http::request::from_str(&event.to_string()).expect("an HTTP API v2 event");
    let (parts, body) = request.into_parts();
    let request = axum::http::Request::from_parts(parts, Body::from(body.to_vec()));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

impl Stack {
    /// Request `id`'s timeline, for failure messages.
    async fn timeline(&self, id: &str) -> Value {
        let path = format!("/requests/{id}/events");
        self.call("GET", &path, None, Some("alice")).await.1
    }

    /// Request `id`'s execution and history, as the API reads them from Step Functions.
    async fn execution(&self, id: &str) -> Value {
        let path = format!("/requests/{id}/execution");
        let (status, execution) = self.call("GET", &path, None, Some("alice")).await;
        assert_eq!(status, 200, "{execution}");
        execution
    }

    /// Submits `body` as alice through the api handler: the accepted request.
    async fn submit(&self, body: Value) -> Value {
        let (status, created) = self
            .call("POST", "/requests", Some(body), Some("alice"))
            .await;
        assert_eq!(status, 202, "{created}");
        created
    }

    /// Receives what is on the action queue and hands it to the worker handler as an SQS
    /// event; the batch response's failures.
    async fn work_once(&self) -> Option<Vec<String>> {
        use aws_sdk_sqs::types::MessageSystemAttributeName;
        let received = aws_sdk_sqs::Client::new(&self.sdk)
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        let messages = received.messages();
        if messages.is_empty() {
            return None;
        }
        // moto registers a callback task's heartbeat a moment after it sends the task's
        // message, and refuses a heartbeat before that as an invalid token (AWS takes the
        // token as soon as the message exists). Lambda's event source takes longer than
        // this to deliver a batch anyway.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let template = fixture("sqs.json")["Records"][0].clone();
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let mut record = template.clone();
                record["messageId"] = json!(m.message_id());
                record["receiptHandle"] = json!(m.receipt_handle());
                record["body"] = json!(m.body());
                record["md5OfBody"] = json!(m.md5_of_body());
                if let Some(attributes) = m.attributes() {
                    for (name, value) in attributes {
                        record["attributes"][name.as_str()] = json!(value);
                    }
                }
                record
            })
            .collect();
        let event = serde_json::from_value(json!({"Records": records})).unwrap();
        let response =
            worker::handle(&self.worker, LambdaEvent::new(event, Context::default())).await;
        Some(
            response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect(),
        )
    }

    /// Runs the worker on the queue until request `id` ends; its last state.
    async fn work_until_done(&self, id: &str) -> Value {
        for _ in 0..600 {
            let (_, request) = self
                .call("GET", &format!("/requests/{id}"), None, Some("alice"))
                .await;
            let status = request["status"].as_str().unwrap_or_default();
            if ["completed", "failed", "rejected", "cancelled"].contains(&status) {
                return request;
            }
            if self.work_once().await.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("request {id} did not end: {:#}", self.timeline(id).await);
    }
}

#[tokio::test]
async fn the_api_handler_serves_http_api_events_as_the_gateway_authorized_them() {
    let Some(stack) = stack().await else { return };
    let (status, items) = stack
        .call("GET", "/catalog/items", None, Some("alice"))
        .await;
    assert_eq!(status, 200, "{items}");
    let names: Vec<&str> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(names.contains(&"rds-postgres"), "{names:?}");
    // A call the gateway let through without an authorizer (there is none on the
    // webhook routes) has no caller: the API refuses it rather than trusting a header.
    let (status, problem) = stack.call("GET", "/requests", None, None).await;
    assert_eq!(status, 401, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("gateway"),
        "{problem}"
    );

    // A request is stored in DynamoDB and its work put on SQS.
    let created = stack
        .submit(json!({"item": "sqs-queue", "fields": {"queueName": "orders"}}))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["requester"]["sub"], "alice");
    let (_, mine) = stack.call("GET", "/requests", None, Some("alice")).await;
    assert_eq!(mine["items"][0]["id"], json!(id));
    let (status, _) = stack
        .call("GET", &format!("/requests/{id}"), None, Some("mallory"))
        .await;
    assert_eq!(status, 404, "another developer does not see it");
    // The audit entry has the caller the gateway named and the source address it saw.
    let (status, audit) = stack.call("GET", "/audit", None, Some("root")).await;
    assert_eq!(status, 403, "{audit}");
    let store = aws::DynamoAuditLog::new(&stack.sdk, stack.deployment.config.aws.table.clone());
    let entries = shared::ports::AuditLog::list(
        &store,
        &shared::ports::AuditQuery {
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let entry = entries
        .items
        .iter()
        .find(|e| e.action == "POST /requests")
        .expect("audited");
    assert_eq!(
        (entry.actor.as_str(), entry.source.as_deref()),
        ("alice", Some("203.0.113.7"))
    );

    let completed = stack.work_until_done(id).await;
    assert_eq!(completed["status"], "completed", "{completed}");
}

#[tokio::test]
async fn a_bundle_runs_on_step_functions_with_the_worker_handler_answering_its_tasks() {
    let Some(stack) = stack().await else { return };
    // The database component may fall back to a person, so its task has no
    // HeartbeatSeconds and the worker sends it no heartbeat (Step Functions would refuse it).
    let name = orchestrator_tests::app_name();
    let created = stack
        .submit(orchestrator_tests::app_stack_request(&name))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let done = stack.work_until_done(&id).await;
    assert_eq!(
        done["status"],
        "completed",
        "{done}\n{:#}",
        stack.timeline(&id).await
    );

    // The execution on Step Functions (moto) succeeded, and the API reads it from there.
    let execution = stack.execution(&id).await;
    assert_eq!(execution["execution"]["status"], "SUCCEEDED", "{execution}");
    let kinds: Vec<&str> = execution["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(kinds.contains(&"TaskSucceeded"), "{kinds:?}");
    // The stack and its components are recorded in DynamoDB.
    let (_, resources) = stack.call("GET", "/resources", None, Some("alice")).await;
    let items = resources["items"].as_array().unwrap();
    let stack_record = items
        .iter()
        .find(|r| r["kind"] == "stack")
        .unwrap_or_else(|| panic!("{resources}"));
    assert_eq!(stack_record["status"], "ready");
    assert_eq!(
        stack_record["members"].as_array().unwrap().len(),
        4,
        "{stack_record}"
    );
}

#[tokio::test]
async fn the_reconciler_handler_runs_a_pass_on_a_scheduled_event() {
    let Some(stack) = stack().await else { return };
    let created = stack
        .submit(json!({"item": "sqs-queue", "fields": {"queueName": "audit-events"}}))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(stack.work_until_done(id).await["status"], "completed");
    let pass = || async {
        let event = serde_json::from_value(fixture("eventbridge-scheduled.json")).unwrap();
        let report = schedule::handle(
            &stack.deployment,
            LambdaEvent::new(event, Context::default()),
        )
        .await
        .unwrap();
        serde_json::to_value(&report).unwrap()
    };
    // The first step enqueues the one resource for the worker, on SQS.
    let report = pass().await;
    assert_eq!(report["requeued"], 0, "{report}");
    assert_eq!(report["drift"]["enqueued"], 1, "{report}");
    assert_eq!(report["drift"]["current"]["listing"], "done", "{report}");
    assert_eq!(report["drift"]["current"]["batches"], 1, "{report}");
    // The worker Lambda verifies the batch.
    while stack.work_once().await.is_some() {}
    // The next step finds the pass's batches all verified: it keeps its figures as the
    // last pass and starts another.
    let report = pass().await;
    let last = &report["drift"]["last"];
    assert_eq!(last["complete"], true, "{report}");
    assert_eq!(last["report"]["checked"], 1, "{report}");
    assert_eq!(last["report"]["drifted"], 0, "{report}");
    assert_eq!(last["report"]["failed"], 0, "{report}");
    assert_ne!(report["drift"]["current"]["id"], last["id"], "{report}");
    assert!(metrics().sum("ResourcesChecked", &[]) >= 1);
}

#[tokio::test]
async fn a_failing_bundle_rolls_back_on_step_functions_and_its_execution_fails() {
    let target = orchestrator_tests::cluster_teardown().await;
    let mut environment = serde_json::Map::new();
    environment.insert("teardownUrl".into(), json!(target.uri()));
    let Some(stack) =
        stack_with(orchestrator_tests::with_cluster_rollback, environment, None).await
    else {
        return;
    };
    let name = orchestrator_tests::app_name();
    orchestrator_tests::clash_with_app_secret(&stack.sdk, &name).await;
    let created = stack
        .submit(orchestrator_tests::app_stack_request(&name))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let failed = stack.work_until_done(&id).await;
    let timeline = stack.timeline(&id).await;
    assert_eq!(failed["status"], "failed", "{failed}\n{timeline:#}");
    orchestrator_tests::assert_clashing_secret_rolled_back(&failed);
    // Undone in reverse dependency order, by the undo tasks of the execution on moto.
    let rolled_back: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "component_rolled_back")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(
        rolled_back,
        ["database: rolled back", "cluster: rolled back"],
        "{timeline:#}"
    );

    let execution = stack.execution(&id).await;
    assert_eq!(execution["execution"]["status"], "FAILED", "{execution}");
    let entered: Vec<&str> = execution["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "TaskStateEntered")
        .filter_map(|e| e["stateEnteredEventDetails"]["name"].as_str())
        .collect();
    let undo_database = entered.iter().position(|s| *s == "Undo database");
    let undo_cluster = entered.iter().position(|s| *s == "Undo cluster");
    assert!(
        undo_database.is_some() && undo_database < undo_cluster,
        "{entered:?}"
    );
    // What CloudWatch would count from the functions' log lines.
    let metrics = metrics();
    assert!(metrics.sum("ExecutionsFailed", &[]) >= 1);
    assert!(metrics.sum("Requests", &[("Status", "failed")]) >= 1);
    assert!(
        metrics.sum(
            "Actions",
            &[("ActionType", "secrets-manager"), ("Outcome", "failed")]
        ) >= 1,
        "Secrets Manager's refusal"
    );
    assert!(
        metrics.sum(
            "Actions",
            &[("ActionType", "rest"), ("Outcome", "succeeded")]
        ) >= 1
    );
    // Nothing of the failed stack is recorded as provisioned.
    let (_, resources) = stack.call("GET", "/resources", None, Some("alice")).await;
    assert_eq!(resources["items"], json!([]), "{resources}");
    target.verify().await;
}

#[tokio::test]
async fn a_version_ingested_by_the_ingest_function_reaches_a_worker_that_started_before_it() {
    let repo = MockServer::start().await;
    let Some(mut stack) = stack_with(|_| {}, serde_json::Map::new(), Some(&repo)).await else {
        return;
    };
    // A worker process that started before any ingestion: it serves the empty catalog.
    let worker = Deployment::start(stack.config.clone(), &stack.sdk).await;
    stack.worker = Arc::new(worker.unwrap());
    assert_eq!(stack.worker.catalog.current().version, "empty");

    // The commit adds an item, with notes that take the catalog past DynamoDB's 400 KB
    // item limit: the version is kept in chunks.
    let mut files = github_repo::example_files();
    let sns = &files["catalog/items/messaging/sns-topic.yaml"];
    let notes = "# Runbook line kept with the item for its operators.\n".repeat(9_000);
    let fifo = format!(
        "{}{notes}",
        sns.replace("name: sns-topic", "name: sns-fifo-topic")
    );
    files.insert("catalog/items/messaging/sns-fifo-topic.yaml".into(), fifo);
    let sha = github_repo::sha('b');
    github_repo::serve_commit(&repo, &sha, &files).await;
    github_repo::expect_status(&repo, &sha, "success").await;

    // The ingest function's process takes GitHub's delivery.
    let ingest = Arc::new(
        Deployment::start(stack.config.clone(), &stack.sdk)
            .await
            .unwrap(),
    );
    let push = github_repo::push_event("refs/heads/main", &github_repo::sha('a'), &sha);
    let mut event = http_event("POST", "/webhooks/github", Some(push.clone()), None);
    let signature = shared::signing::sign(
        github_repo::HOOK_SECRET.as_bytes(),
        push.to_string().as_bytes(),
    );
    event["headers"]["x-github-event"] = json!("push");
    event["headers"]["x-github-delivery"] = json!("delivery-1");
    event["headers"]["x-hub-signature-256"] = json!(signature);
    let (status, delivered) = send(&api::app(ingest), event).await;
    assert_eq!(status, 200, "{delivered}");
    assert_eq!(delivered["ingestion"]["outcome"], "live", "{delivered}");
    let state = stack.deployment.assembly.app.state.as_ref();
    let kept = shared::ingest::versions::header(state, &sha).await.unwrap();
    let kept = kept.expect("the version is kept in DynamoDB");
    assert!(kept.chunks >= 2, "{} chunk(s)", kept.chunks);

    // The api function looks at the live version once its refresh is due; the request
    // for the new item names the version it was made against.
    assert!(stack.deployment.refresh_catalog().await.unwrap());
    let created = stack
        .submit(json!({"item": "sns-fifo-topic", "fields": {"topicName": "orders-fifo"}}))
        .await;
    assert_eq!(created["catalogVersion"], sha.as_str());
    let id = created["id"].as_str().unwrap();
    // The worker, warm since before the ingestion, works on the live version.
    let done = stack.work_until_done(id).await;
    assert_eq!(
        done["status"],
        "completed",
        "{done}\n{:#}",
        stack.timeline(id).await
    );
    assert_eq!(stack.worker.catalog.current().version, sha);
}
