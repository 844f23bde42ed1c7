//! The ports' behaviour suites against the AWS adapters, on moto server on loopback (the
//! same suites `ports_local` runs against the embedded adapters). Each test works under a
//! fresh prefix, so tests sharing one moto never see each other's data.

use std::time::Duration;

use aws::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_secretsmanager::Client as SecretsClient;
use orchestrator_tests::moto::{create_queues, create_table, moto};
use shared::ports::{Secrets, StoreError};
use shared::testkit;

const REGION: &str = "eu-west-1";

async fn aws() -> Option<SdkConfig> {
    let moto = moto().await?;
    Some(aws::for_endpoint(&moto.endpoint, REGION).await)
}

fn prefix() -> String {
    format!("orchestrator-tests/{}/", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn dynamodb_passes_the_state_store_suite() {
    let Some(config) = aws().await else { return };
    let table = create_table(&config).await;
    testkit::state::run(&aws::DynamoStateStore::new(&config, table)).await;
}

#[tokio::test]
async fn dynamodb_keeps_catalog_versions_past_the_item_size_limit() {
    let Some(config) = aws().await else { return };
    let table = create_table(&config).await;
    testkit::catalog_versions::run(&aws::DynamoStateStore::new(&config, table)).await;
}

#[tokio::test]
async fn dynamodb_passes_the_request_store_suite() {
    let Some(config) = aws().await else { return };
    let table = create_table(&config).await;
    testkit::requests::run(&aws::DynamoRequestStore::new(&config, table)).await;
}

#[tokio::test]
async fn dynamodb_passes_the_audit_suite() {
    let Some(config) = aws().await else { return };
    let table = create_table(&config).await;
    testkit::audit::run(&aws::DynamoAuditLog::new(&config, table)).await;
}

#[tokio::test]
async fn the_dynamodb_state_store_lists_in_key_order_up_to_its_limit() {
    use shared::ports::StateStore;
    let Some(config) = aws().await else { return };
    let store = aws::DynamoStateStore::new(&config, create_table(&config).await);
    for n in 0..25 {
        let key = format!("exec/{n:03}");
        store
            .put("executions", &key, &serde_json::json!({"n": n}), None)
            .await
            .unwrap();
    }
    let all = store.list("executions", "", 100).await.unwrap();
    assert_eq!(all.len(), 25);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "in key order");
    let first = store.list("executions", "exec/", 10).await.unwrap();
    assert_eq!(
        first.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        (0..10).map(|n| format!("exec/{n:03}")).collect::<Vec<_>>()
    );
    assert_eq!(first[3].1.value, serde_json::json!({"n": 3}));
}

#[tokio::test]
async fn sqs_passes_the_queue_suite() {
    let Some(config) = aws().await else { return };
    let (url, dlq) = create_queues(&config, testkit::queue::MAX_RECEIVES).await;
    let queue = aws::SqsQueue::new(&config, url, dlq);
    // moto deletes a message by any receipt it was ever given; SQS documents that a
    // delete by a stale receipt succeeds without deleting (the suite holds the embedded
    // queue to that), so that one step is left out here.
    let moto = testkit::queue::Departures {
        stale_receipt_deletes: true,
    };
    testkit::queue::run_with(&queue, &testkit::Sleep, &moto).await;
}

#[tokio::test]
async fn a_reconciliation_pass_on_dynamodb_and_sqs_resumes_and_counts_each_batch_once() {
    let Some(config) = aws().await else { return };
    let table = create_table(&config).await;
    let (url, dlq) = create_queues(&config, testkit::queue::MAX_RECEIVES).await;
    testkit::reconcile::run(
        std::sync::Arc::new(aws::DynamoResourceStore::new(&config, table.clone())),
        std::sync::Arc::new(aws::DynamoStateStore::new(&config, table)),
        std::sync::Arc::new(aws::SqsQueue::new(&config, url, dlq)),
    )
    .await;
}

#[tokio::test]
async fn s3_passes_the_archive_suite() {
    let Some(config) = aws().await else { return };
    let bucket = format!("exports-{}", uuid::Uuid::new_v4().simple());
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("moto creates the bucket");
    let archive = aws::S3Archive::new(&config, bucket.clone(), "orchestrator/exports/");
    testkit::archive::run(&archive).await;
    // Under the prefix, as the location says.
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert!(listed.contents().iter().all(|o| {
        o.key()
            .unwrap_or_default()
            .starts_with("orchestrator/exports/suite/")
    }));
    assert_eq!(
        shared::ports::Archive::location(&archive),
        format!("s3://{bucket}/orchestrator/exports/")
    );
}

async fn create_secret(config: &SdkConfig, id: &str, value: &str) {
    SecretsClient::new(config)
        .create_secret()
        .name(id)
        .secret_string(value)
        .send()
        .await
        .expect("moto creates the secret");
}

#[tokio::test]
async fn secrets_manager_passes_the_secrets_suite() {
    let Some(config) = aws().await else { return };
    let prefix = prefix();
    let (name, value) = testkit::secrets::KNOWN;
    create_secret(&config, &format!("{prefix}{name}"), value).await;
    let secrets = aws::SecretsManager::new(&config, prefix, aws::secrets::DEFAULT_TTL);
    testkit::secrets::run(&secrets).await;
}

#[tokio::test]
async fn secrets_manager_keeps_a_value_for_its_ttl_then_reads_the_rotated_one() {
    let Some(config) = aws().await else { return };
    let prefix = prefix();
    let id = format!("{prefix}jira-token");
    create_secret(&config, &id, "first").await;
    let ttl = Duration::from_millis(400);
    let secrets = aws::SecretsManager::new(&config, prefix.clone(), ttl);
    assert_eq!(
        secrets.get("jira-token").await.unwrap().unwrap().expose(),
        "first"
    );
    // Absent, then created: the absence is remembered for the TTL too.
    assert!(secrets.get("github-token").await.unwrap().is_none());
    create_secret(&config, &format!("{prefix}github-token"), "gh").await;

    SecretsClient::new(&config)
        .put_secret_value()
        .secret_id(&id)
        .secret_string("rotated")
        .send()
        .await
        .unwrap();
    assert_eq!(
        secrets.get("jira-token").await.unwrap().unwrap().expose(),
        "first",
        "read from memory within the TTL"
    );
    assert!(secrets.get("github-token").await.unwrap().is_none());
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert_eq!(
        secrets.get("jira-token").await.unwrap().unwrap().expose(),
        "rotated"
    );
    assert_eq!(
        secrets.get("github-token").await.unwrap().unwrap().expose(),
        "gh"
    );
}

#[tokio::test]
async fn an_unreachable_secrets_manager_is_unavailable_and_says_which_secret() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let config = aws::for_endpoint(&format!("http://127.0.0.1:{port}"), REGION).await;
    let secrets = aws::SecretsManager::new(&config, "orchestrator/", Duration::from_secs(60));
    match secrets.get("jira-token").await {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("`orchestrator/jira-token`"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn dynamodb_passes_the_resource_store_suite() {
    let Some(config) = aws().await else { return };
    let table = create_table(&config).await;
    testkit::resources::run(&aws::DynamoResourceStore::new(&config, table)).await;
}

#[tokio::test]
async fn an_idempotency_key_names_its_request_until_its_ttl_then_is_free_again() {
    use shared::ports::{Created, RequestStore};
    use testkit::requests::{event, request};
    let Some(config) = aws().await else { return };
    let table = create_table(&config).await;
    let store = aws::DynamoRequestStore::new(&config, table.clone())
        .with_idempotency_ttl(Duration::from_secs(60));
    let t0 = time::OffsetDateTime::now_utc();
    // Alice submits with key `k`, `seconds` after t0: the id of the request the key names.
    let submit = |seconds: i64| {
        let store = &store;
        async move {
            let r = request(
                "alice",
                "data",
                "postgres",
                t0 + time::Duration::seconds(seconds),
                Some("k"),
            );
            match store
                .create(
                    &r,
                    &event(&r, shared::requests::model::EventKind::Submitted),
                    testkit::requests::HANDOFF,
                )
                .await
                .unwrap()
            {
                Created::New { .. } => r.id,
                Created::Existing(existing) => existing.id,
            }
        }
    };
    let first = submit(0).await;
    assert_eq!(
        submit(59).await,
        first,
        "within the TTL the key names the first request"
    );
    // The reference carries its expiry as epoch seconds (DynamoDB's TTL reads a number).
    let reference = aws_sdk_dynamodb::Client::new(&config)
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("idem#alice#k".into()))
        .key("sk", AttributeValue::S("ref".into()))
        .send()
        .await
        .unwrap();
    let expires = reference.item().unwrap()["expiresAt"]
        .as_n()
        .unwrap()
        .clone();
    assert_eq!(expires, (t0.unix_timestamp() + 60).to_string());
    // Past it (before DynamoDB gets round to deleting the reference) the key is free.
    let later = submit(61).await;
    assert_ne!(later, first, "past the TTL the key makes a new request");
    assert_eq!(store.get(&later).await.unwrap().unwrap().id, later);
    assert_eq!(
        submit(62).await,
        later,
        "the renewed key names the later request"
    );
}

#[tokio::test]
async fn expiring_state_records_carry_their_ttl_and_are_gone_once_past_it() {
    use shared::ports::StateStore;
    let Some(config) = aws().await else { return };
    let table = create_table(&config).await;
    let store = aws::DynamoStateStore::new(&config, table.clone())
        .expiring("deliveries", Duration::from_secs(3));
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    store
        .put("deliveries", "d-1", &serde_json::json!({"ok": true}), None)
        .await
        .unwrap();
    store
        .put("executions", "e-1", &serde_json::json!(1), None)
        .await
        .unwrap();
    let item = |sk: &'static str, pk: &'static str| {
        let client = aws_sdk_dynamodb::Client::new(&config);
        let table = table.clone();
        async move {
            client
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(pk.into()))
                .key("sk", AttributeValue::S(sk.into()))
                .send()
                .await
                .unwrap()
                .item()
                .cloned()
                .unwrap()
        }
    };
    let expires: i64 = item("d-1", "state#deliveries").await["expiresAt"]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    assert!((before + 3..=before + 4).contains(&expires), "{expires}");
    assert!(
        !item("e-1", "state#executions")
            .await
            .contains_key("expiresAt"),
        "other tables never expire"
    );
    assert!(store.get("deliveries", "d-1").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(4100)).await;
    // Past its time (DynamoDB deletes it some time later): absent to readers, and the
    // key can be written afresh.
    assert!(store.get("deliveries", "d-1").await.unwrap().is_none());
    assert!(store.list("deliveries", "", 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .put(
                "deliveries",
                "d-1",
                &serde_json::json!({"again": true}),
                None
            )
            .await
            .unwrap(),
        1
    );
    assert!(store.get("executions", "e-1").await.unwrap().is_some());
}

#[tokio::test]
async fn step_functions_passes_the_workflows_suite() {
    let Some(config) = aws().await else { return };
    let (url, dlq) = create_queues(&config, testkit::queue::MAX_RECEIVES).await;
    let queue = aws::SqsQueue::new(&config, url.clone(), dlq);
    // Machine names are per account and region: a fresh prefix keeps tests apart.
    let workflows = aws::StepFunctions::new(
        &config,
        REGION,
        "123456789012",
        format!("t{}-", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        "arn:aws:iam::123456789012:role/orchestrator-states",
        vec![("${QueueUrl}".to_owned(), url)],
    );
    let moto = testkit::workflows::Departures {
        heartbeat_needs_heartbeat_seconds: true,
        ended_token_is_invalid: true,
        failure_cause_dropped: true,
        stop_leaves_callback_waiting: true,
        heartbeat_timeout_is_states_timeout: true,
        no_redrive: true,
    };
    testkit::workflows::run_with(&workflows, &queue, &testkit::Sleep, &moto).await;
}

#[tokio::test]
async fn step_functions_takes_every_generated_state_machine_and_updates_in_place() {
    use shared::ports::Workflows;
    let Some(config) = aws().await else { return };
    let (url, _) = create_queues(&config, testkit::queue::MAX_RECEIVES).await;
    let workflows = aws::StepFunctions::new(
        &config,
        REGION,
        "123456789012",
        format!("t{}-", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        "arn:aws:iam::123456789012:role/orchestrator-states",
        vec![(
            shared::bundle::asl::QUEUE_PLACEHOLDER.to_owned(),
            url.clone(),
        )],
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../statemachines");
    let mut deployed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let definition: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".asl.json");
        let arn = workflows.deploy(name, &definition).await.unwrap();
        // Deploying again (every ingestion does) updates the machine in place.
        assert_eq!(workflows.deploy(name, &definition).await.unwrap(), arn);
        deployed += 1;
    }
    assert!(deployed >= 10, "{deployed} machines");

    // An updated definition runs for executions started after the update.
    let pass = |result: &str| serde_json::json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": result, "End": true}}});
    workflows.deploy("updated", &pass("first")).await.unwrap();
    workflows.deploy("updated", &pass("second")).await.unwrap();
    let arn = workflows
        .start("updated", "e1", &serde_json::json!({}))
        .await
        .unwrap();
    for _ in 0..100 {
        let summary = workflows.describe(&arn).await.unwrap().unwrap();
        if summary.status != "RUNNING" {
            assert_eq!(summary.output, Some(serde_json::json!("second")));
            let history = workflows.history(&arn).await.unwrap();
            assert_eq!(history[0]["type"], "ExecutionStarted");
            assert_eq!(history.last().unwrap()["type"], "ExecutionSucceeded");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the execution did not end");
}

/// moto has no RedriveExecution: the adapter's call is checked against a stand-in for the
/// Step Functions JSON API, with the shape the API reference gives (`executionArn`, and a
/// `clientToken` that makes a retried call redrive once).
#[tokio::test]
async fn step_functions_redrive_calls_redrive_execution_once_per_failure() {
    use shared::ports::{WorkflowError, Workflows};
    use wiremock::matchers::{body_partial_json, header, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let api = MockServer::start().await;
    let arn = "arn:aws:states:eu-west-1:123456789012:execution:bundle-app:0190f0f0-0000-7000-8000-000000000001";
    Mock::given(method("POST"))
        .and(header("x-amz-target", "AWSStepFunctions.DescribeExecution"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "executionArn": arn,
            "stateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:bundle-app",
            "name": "0190f0f0-0000-7000-8000-000000000001",
            "status": "FAILED",
            "startDate": 1.8e9,
            "stopDate": 1.8e9,
            "redriveCount": 2,
            "input": "{}",
        })))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "AWSStepFunctions.RedriveExecution"))
        .and(body_partial_json(serde_json::json!({
            "executionArn": arn,
            "clientToken": "redrive-2-0190f0f0-0000-7000-8000-000000000001",
        })))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"redriveDate": 1.8e9})),
        )
        .expect(1)
        .up_to_n_times(1)
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "AWSStepFunctions.RedriveExecution"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "__type": "ExecutionNotRedrivable",
            "message": "Execution is RUNNING and cannot be redriven",
        })))
        .mount(&api)
        .await;
    let config = aws::for_endpoint(&api.uri(), REGION).await;
    let workflows = aws::StepFunctions::new(
        &config,
        REGION,
        "123456789012",
        String::new(),
        "arn:aws:iam::123456789012:role/orchestrator-states",
        vec![],
    );
    workflows.redrive(arn).await.unwrap();
    match workflows.redrive(arn).await {
        Err(WorkflowError::NotRedrivable(why)) => assert!(why.contains("RUNNING"), "{why}"),
        other => panic!("expected NotRedrivable, got {other:?}"),
    }
}

#[tokio::test]
async fn sns_delivers_a_notification_with_its_subject_and_attributes() {
    use shared::notifications::deliver::{Deliverer, DeliveryError};
    use shared::notifications::message::{Notification, Portal};
    let Some(config) = aws().await else { return };
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let topic = sns
        .create_topic()
        .name(format!("notices-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let queue = sqs
        .create_queue()
        .queue_name(format!("heard-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = orchestrator_tests::moto::queue_arn(&sqs, &queue).await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .unwrap();

    let resource: shared::resources::model::Resource = serde_json::from_value(serde_json::json!({
        "id": "res-1", "kind": "item", "item": "rds-postgres", "catalogVersion": "v1",
        "owner": "database", "requester": "alice", "inputs": {}, "outputs": {},
        "status": "drifted", "serial": 2, "lineage": "l",
        "requestId": "0190a0f0-0000-7000-8000-000000000000",
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        "version": 2
    }))
    .unwrap();
    let notification = Notification::of_drift(
        "n-1".to_owned(),
        time::OffsetDateTime::UNIX_EPOCH,
        &resource,
        &["size".to_owned()],
        &Portal(None),
    );
    let deliverer = Deliverer {
        http: reqwest::Client::new(),
        secrets: std::sync::Arc::new(shared::adapters::local::secrets::LocalSecrets::from_pairs(
            [],
        )),
        publisher: Some(std::sync::Arc::new(aws::SnsTopics::new(&config))),
    };
    let subscription = |arn: &str| -> shared::catalog::subscription::Subscription {
        serde_json::from_value(serde_json::json!({
            "name": "bus", "events": ["drift"], "sns": {"topicArn": arn}
        }))
        .unwrap()
    };
    assert_eq!(
        deliverer
            .deliver(&subscription(&topic), &notification)
            .await,
        Ok("sns")
    );
    let mut heard = Vec::new();
    for _ in 0..50 {
        heard = sqs
            .receive_message()
            .queue_url(&queue)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if !heard.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SNS wraps it: the subject, the message (the notification's JSON), the attributes.
    let envelope: serde_json::Value =
        serde_json::from_str(heard[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(envelope["TopicArn"], topic.as_str());
    assert!(
        envelope["Subject"]
            .as_str()
            .unwrap()
            .starts_with("Drift: resource res-1")
    );
    let message: serde_json::Value =
        serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message["type"], "notification.drift");
    assert_eq!(message["resource"]["owner"], "database");
    assert_eq!(envelope["MessageAttributes"]["topic"]["Value"], "drift");
    assert_eq!(envelope["MessageAttributes"]["owner"]["Value"], "database");

    // A topic that is not there is not worth retrying.
    let missing = topic.replace("notices-", "gone-");
    match deliverer
        .deliver(&subscription(&missing), &notification)
        .await
    {
        Err(DeliveryError::GiveUp(why)) => assert!(why.contains("SNS"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// The AWS action kinds' way into accounts, on `config` (moto).
fn accounts(config: &SdkConfig) -> std::sync::Arc<aws::actions::accounts::Accounts> {
    std::sync::Arc::new(aws::actions::accounts::Accounts::new(
        config.clone(),
        aws::actions::accounts::TargetRole {
            name: "orchestrator-target".to_owned(),
            external_id: Some("ext-42".to_owned()),
        },
    ))
}

fn invocation(key: &str) -> shared::fulfillment::actions::Invocation {
    shared::fulfillment::actions::Invocation {
        idempotency_key: key.to_owned(),
        delivery_id: key.to_owned(),
        started_at: "2026-12-07T00:00:00Z".to_owned(),
        request_id: shared::requests::model::RequestId::new_at(time::OffsetDateTime::now_utc()),
        resource_id: "r-1".to_owned(),
        owner: "platform".to_owned(),
        requester: "alice".to_owned(),
        item: "app-secret".to_owned(),
        action_id: "create".to_owned(),
        attempt: 1,
        call_timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn the_secrets_manager_action_creates_a_generated_secret_it_never_returns_and_deletes_it() {
    use shared::fulfillment::actions::{ActionError, ActionKind, Step};
    let Some(config) = aws().await else { return };
    let kind = aws::actions::secrets_manager::SecretsManagerKind::new(accounts(&config));
    let name = format!("app/{}", uuid::Uuid::new_v4().simple());
    let run = invocation(&format!("{name}/create"));
    let with = serde_json::json!({
        "secret": name, "description": "the app's database password",
        "generate": {"length": 40, "excludePunctuation": true},
        "tags": {"team": "platform"},
    });
    let Step::Done(made) = kind.start(&run, &with).await.unwrap() else {
        panic!("create is synchronous")
    };
    let arn = made["arn"].as_str().unwrap().to_owned();
    assert_eq!(made["name"], name.as_str());
    assert!(made["versionId"].is_string(), "{made}");
    // The value is in Secrets Manager, generated as asked, and nowhere in the result.
    let secrets = SecretsClient::new(&config);
    let value = secrets
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .unwrap()
        .secret_string
        .unwrap();
    assert_eq!(value.len(), 40);
    assert!(
        value.chars().all(|c| c.is_ascii_alphanumeric()),
        "no punctuation"
    );
    assert!(!made.to_string().contains(&value));
    let described = secrets
        .describe_secret()
        .secret_id(&arn)
        .send()
        .await
        .unwrap();
    let tags: std::collections::BTreeMap<_, _> = described
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect();
    assert_eq!(tags["orchestrator:request"], run.request_id.to_string());
    assert_eq!(tags["orchestrator:item"], "app-secret");
    assert_eq!(tags["orchestrator:owner"], "platform");
    assert_eq!(tags["team"], "platform");
    // Its plan shows the calls and never a value.
    let plan = kind.describe(&run, &with).unwrap();
    assert_eq!(plan["calls"][1]["call"], "CreateSecret");

    // Another attempt (its answer lost) finds the secret it made; another request's
    // attempt is refused.
    let Step::Done(again) = kind.start(&run, &with).await.unwrap() else {
        panic!()
    };
    assert_eq!(again["arn"], arn.as_str());
    match kind.start(&invocation("someone else"), &with).await {
        Err(ActionError::Permanent { message }) => {
            assert!(message.contains("ResourceExistsException"), "{message}")
        }
        other => panic!("{other:?}"),
    }

    // A new value, as a new version.
    let rotate = serde_json::json!({"operation": "rotate-value", "secret": arn});
    let Step::Done(rotated) = kind
        .start(&invocation(&format!("{name}/rotate")), &rotate)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_ne!(rotated["versionId"], made["versionId"]);

    // Deleted at once; deleting again finds it gone, which is what was asked.
    let delete = serde_json::json!({"operation": "delete", "secret": arn, "recoveryWindowDays": 0});
    for _ in 0..2 {
        let Step::Done(gone) = kind.start(&run, &delete).await.unwrap() else {
            panic!()
        };
        assert_eq!(gone["deleted"], true);
    }
    assert!(
        secrets
            .describe_secret()
            .secret_id(&arn)
            .send()
            .await
            .is_err()
    );
}

/// Rotation is set once the secret exists (`RotateSecret`, with the documented
/// `RotationLambdaARN`, `RotationRules.AutomaticallyAfterDays` and `RotateImmediately`),
/// against a stand-in of Secrets Manager's JSON API: moto invokes the rotation function,
/// which needs Docker. On moto, a function that does not exist fails the action with AWS's
/// reason.
#[tokio::test]
async fn the_secrets_manager_action_sets_rotation_on_the_secret_it_made() {
    use shared::fulfillment::actions::{ActionError, ActionKind, Step};
    use wiremock::matchers::{header, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let standin = MockServer::start().await;
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:apps/billing/key-AbCdEf";
    for (target, answer) in [
        (
            "GetRandomPassword",
            serde_json::json!({"RandomPassword": "x".repeat(40)}),
        ),
        (
            "CreateSecret",
            serde_json::json!({"ARN": arn, "Name": "apps/billing/key", "VersionId": "v1"}),
        ),
        (
            "RotateSecret",
            serde_json::json!({"ARN": arn, "Name": "apps/billing/key", "VersionId": "v2"}),
        ),
    ] {
        Mock::given(method("POST"))
            .and(header(
                "x-amz-target",
                format!("secretsmanager.{target}").as_str(),
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "application/x-amz-json-1.1")
                    .set_body_json(answer),
            )
            .expect(1)
            .mount(&standin)
            .await;
    }
    let sdk = aws::for_endpoint(&standin.uri(), "eu-west-1").await;
    let kind = aws::actions::secrets_manager::SecretsManagerKind::new(accounts(&sdk));
    let rotator = "arn:aws:lambda:eu-west-1:123456789012:function:rotate-billing";
    let with = serde_json::json!({
        "secret": "apps/billing/key",
        "rotation": {"lambdaArn": rotator, "everyDays": 30},
    });
    let run = invocation("apps/billing/key/create");
    let plan = kind.describe(&run, &with).unwrap();
    assert_eq!(plan["calls"][2]["call"], "RotateSecret", "{plan}");
    let Step::Done(made) = kind.start(&run, &with).await.unwrap() else {
        panic!("create is synchronous")
    };
    assert_eq!(
        made["rotation"],
        serde_json::json!({"enabled": true, "everyDays": 30})
    );
    let requests = standin.received_requests().await.unwrap();
    let rotate = requests
        .iter()
        .find(|r| {
            r.headers.get("x-amz-target").and_then(|v| v.to_str().ok())
                == Some("secretsmanager.RotateSecret")
        })
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&rotate.body).unwrap();
    assert_eq!(body["SecretId"], "apps/billing/key");
    assert_eq!(body["RotationLambdaARN"], rotator);
    assert_eq!(body["RotationRules"]["AutomaticallyAfterDays"], 30);
    assert_eq!(body["RotateImmediately"], false);
    standin.verify().await;

    // On moto: a rotation function that does not exist is AWS's refusal, named.
    let Some(config) = aws().await else { return };
    let kind = aws::actions::secrets_manager::SecretsManagerKind::new(accounts(&config));
    let name = format!("apps/{}", uuid::Uuid::new_v4().simple());
    let with = serde_json::json!({
        "secret": name,
        "rotation": {"lambdaArn": rotator, "everyDays": 30},
    });
    match kind.start(&invocation(&name), &with).await {
        Err(ActionError::Permanent { message }) => assert!(
            message.starts_with("RotateSecret: ResourceNotFoundException"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_ssm_parameter_action_puts_every_type_and_deletes() {
    use shared::fulfillment::actions::{ActionKind, Step};
    let Some(config) = aws().await else { return };
    let kind = aws::actions::ssm::SsmParameterKind::new(accounts(&config));
    let ssm = aws_sdk_ssm::Client::new(&config);
    let base = format!("/orchestrator/test/{}", uuid::Uuid::new_v4().simple());
    let run = invocation(&base);
    let cases = [
        (
            "String",
            serde_json::json!("https://api.internal"),
            "https://api.internal",
        ),
        ("StringList", serde_json::json!(["a", "b"]), "a,b"),
        ("SecureString", serde_json::json!("s3cret"), "s3cret"),
    ];
    for (kind_name, value, stored) in cases {
        let name = format!("{base}/{kind_name}");
        let with = serde_json::json!({"name": name, "type": kind_name, "value": value});
        let Step::Done(put) = kind.start(&run, &with).await.unwrap() else {
            panic!()
        };
        assert_eq!(put["type"], kind_name);
        assert_eq!(put["version"], 1);
        // Putting again overwrites: another attempt lands the same value.
        let Step::Done(again) = kind.start(&run, &with).await.unwrap() else {
            panic!()
        };
        assert_eq!(again["version"], 2);
        let read = ssm
            .get_parameter()
            .name(&name)
            .with_decryption(true)
            .send()
            .await
            .unwrap()
            .parameter
            .unwrap();
        assert_eq!(read.value(), Some(stored));
        if kind_name == "SecureString" {
            let plan = kind.describe(&run, &with).unwrap();
            assert!(!plan.to_string().contains("s3cret"), "{plan}");
        }
        let tags = ssm
            .list_tags_for_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(&name)
            .send()
            .await
            .unwrap();
        assert!(
            tags.tag_list()
                .iter()
                .any(|t| t.key() == "orchestrator:request"),
            "{tags:?}"
        );
        let delete = serde_json::json!({"operation": "delete", "name": name});
        for _ in 0..2 {
            assert!(matches!(kind.start(&run, &delete).await, Ok(Step::Done(_))));
        }
        assert!(ssm.get_parameter().name(&name).send().await.is_err());
    }
}

#[tokio::test]
async fn an_action_naming_an_account_runs_there_through_the_assumed_role() {
    use shared::fulfillment::actions::{ActionError, ActionKind, Step};
    let Some(config) = aws().await else { return };
    let kind = aws::actions::secrets_manager::SecretsManagerKind::new(accounts(&config));
    let name = format!("apps/{}", uuid::Uuid::new_v4().simple());
    let with = serde_json::json!({"secret": name, "account": "111122223333"});
    let Step::Done(made) = kind.start(&invocation(&name), &with).await.unwrap() else {
        panic!()
    };
    let arn = made["arn"].as_str().unwrap();
    assert!(
        arn.contains(":111122223333:secret:"),
        "made in the named account: {arn}"
    );
    // A second action there reuses the role's credentials.
    let again = serde_json::json!({"operation": "delete", "secret": arn, "account": "111122223333", "recoveryWindowDays": 0});
    assert!(matches!(
        kind.start(&invocation(&name), &again).await,
        Ok(Step::Done(_))
    ));
    // Not an account id: refused before any call.
    let bad = serde_json::json!({"secret": name, "account": "12345"});
    match kind.start(&invocation(&name), &bad).await {
        Err(ActionError::Permanent { message }) => {
            assert!(message.contains("12-digit"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_environment_scope_is_loaded_from_a_parameter_store_path() {
    use aws_sdk_ssm::types::ParameterType;
    let Some(config) = aws().await else { return };
    let ssm = aws_sdk_ssm::Client::new(&config);
    let path = format!(
        "/orchestrator/{}/environment",
        uuid::Uuid::new_v4().simple()
    );
    let put = |name: &str, value: &str, kind: ParameterType| {
        let ssm = ssm.clone();
        let name = format!("{path}/{name}");
        let value = value.to_owned();
        async move {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(kind)
                .send()
                .await
                .unwrap();
        }
    };
    put(
        "dbaasApiUrl",
        "https://dbaas.internal",
        ParameterType::String,
    )
    .await;
    put("accounts/prod", "111122223333", ParameterType::String).await;
    put("subnets", "subnet-a,subnet-b", ParameterType::StringList).await;
    put("apiToken", "s3cret", ParameterType::SecureString).await;
    let loaded = aws::environment::load(&config, &format!("{path}/"))
        .await
        .unwrap();
    assert_eq!(
        serde_json::Value::Object(loaded),
        serde_json::json!({
            "dbaasApiUrl": "https://dbaas.internal",
            "accounts": {"prod": "111122223333"},
            "subnets": ["subnet-a", "subnet-b"],
        }),
        "a SecureString is not part of the scope"
    );

    // Read again while the process runs: a changed parameter, a new one; the
    // configuration's own keys still win.
    let own = serde_json::json!({"dbaasApiUrl": "https://configured"})
        .as_object()
        .cloned()
        .unwrap();
    let source = aws::environment::Source::new(&config, &path, own);
    let scope = shared::fulfillment::Environment::new(source.load().await.unwrap());
    assert_eq!(scope.current()["dbaasApiUrl"], "https://configured");
    assert!(source.reload(&scope).await.is_empty(), "nothing changed");
    ssm.put_parameter()
        .name(format!("{path}/accounts/prod"))
        .value("999988887777")
        .r#type(ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    put("queueUrl", "https://sqs/q", ParameterType::String).await;
    assert_eq!(source.reload(&scope).await, ["accounts", "queueUrl"]);
    let now = scope.current();
    assert_eq!(now["accounts"]["prod"], "999988887777");
    assert_eq!(now["queueUrl"], "https://sqs/q");
    assert_eq!(now["dbaasApiUrl"], "https://configured");
}

/// An attempt that finds the stack an earlier attempt of the same resource left rolled
/// back (ROLLBACK_COMPLETE, which can only be deleted) deletes it and makes it again; a
/// stack the action names is not the resource's to delete, and is refused.
#[tokio::test]
async fn a_stack_left_rolled_back_by_an_earlier_attempt_is_deleted_and_made_again() {
    use shared::fulfillment::actions::{ActionError, ActionKind, Step};
    let (standin, cloudformation) =
        orchestrator_tests::cloudformation_standin::start_failing().await;
    let sdk = aws::for_endpoint(&standin.uri(), "eu-west-1").await;
    let kind = aws::actions::cloudformation::CloudformationKind::new(accounts(&sdk), None);
    let with = serde_json::json!({
        "template": "templates/bucket.yaml",
        "templateBody": {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}},
    });
    let run = invocation("r-1/main/actions/stack");
    let first = settle_stack(&kind, &run, &with).await;
    assert!(
        matches!(&first, Err(ActionError::Permanent { message }) if message.contains("CREATE_FAILED")),
        "{first:?}"
    );
    // The next attempt (a redrive) clears what the first left, then makes the stack.
    let again = settle_stack(&kind, &run, &with).await;
    let Ok(Step::Done(made)) = again else {
        panic!("{again:?}")
    };
    assert_eq!(made["status"], "CREATE_COMPLETE");
    let calls = cloudformation.actions();
    let order: Vec<&str> = calls
        .iter()
        .map(String::as_str)
        .filter(|a| ["CreateStack", "DeleteStack"].contains(a))
        .collect();
    assert_eq!(order, ["CreateStack", "DeleteStack", "CreateStack"]);
    let sent = cloudformation.calls.lock().unwrap().clone();
    let tokens: Vec<&str> = sent
        .iter()
        .filter(|(a, _)| a == "CreateStack")
        .map(|(_, p)| p["ClientRequestToken"].as_str())
        .collect();
    assert_ne!(
        tokens[0], tokens[1],
        "a new creation, not the first one repeated"
    );

    // A stack the action names may be someone else's: refused, not deleted.
    let (standin, _) = orchestrator_tests::cloudformation_standin::start_failing().await;
    let sdk = aws::for_endpoint(&standin.uri(), "eu-west-1").await;
    let kind = aws::actions::cloudformation::CloudformationKind::new(accounts(&sdk), None);
    let mut named = with.clone();
    named["stackName"] = serde_json::json!("shared-bucket");
    let _ = settle_stack(&kind, &run, &named).await;
    match kind.start(&run, &named).await {
        Err(ActionError::Permanent { message }) => {
            assert!(message.contains("ROLLBACK_COMPLETE"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// A CloudFormation action's outcome: `start`, then each look until it settles.
async fn settle_stack(
    kind: &aws::actions::cloudformation::CloudformationKind,
    run: &shared::fulfillment::actions::Invocation,
    with: &serde_json::Value,
) -> Result<shared::fulfillment::actions::Step, shared::fulfillment::actions::ActionError> {
    use shared::fulfillment::actions::{ActionKind, Step};
    let mut step = kind.start(run, with).await;
    for _ in 0..20 {
        match step {
            Ok(Step::Pending { state, .. }) => step = kind.poll(run, with, &state).await,
            other => return other,
        }
    }
    step
}

/// Every value attribute `name` takes in the table, by a scan.
async fn values_of(config: &SdkConfig, table: &str, name: &str) -> Vec<String> {
    let out = aws_sdk_dynamodb::Client::new(config)
        .scan()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let mut values: Vec<String> = out
        .items()
        .iter()
        .filter_map(|item| item.get(name)?.as_s().ok().cloned())
        .collect();
    values.sort();
    values.dedup();
    values
}

#[tokio::test]
async fn the_audit_log_spreads_its_writes_over_shards_and_still_reads_older_entries() {
    use shared::ports::{AuditLog, AuditQuery};
    use shared::requests::model::AuditEntry;
    let Some(config) = aws().await else { return };
    let table = create_table(&config).await;
    let log = aws::DynamoAuditLog::new(&config, table.clone());
    let entry = |target: String| AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: time::OffsetDateTime::now_utc(),
        actor: "alice".to_owned(),
        action: "POST /requests".to_owned(),
        target: Some(target),
        source: None,
        outcome: 202,
        correlation_id: "c".to_owned(),
        detail: None,
    };
    // An entry written before sharding, in the one partition the log had then.
    let before = entry("before".to_owned());
    aws_sdk_dynamodb::Client::new(&config)
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("audit".to_owned()))
        .item("sk", AttributeValue::S(before.id.clone()))
        .item(
            "v",
            AttributeValue::S(serde_json::to_string(&before).unwrap()),
        )
        .send()
        .await
        .unwrap();
    for i in 0..64 {
        log.append(&entry(format!("e{i}"))).await.unwrap();
    }
    let partitions = values_of(&config, &table, "pk").await;
    assert!(partitions.len() >= 9, "{partitions:?}");
    assert!(partitions.iter().all(|p| p.starts_with("audit")));
    let page = log
        .list(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 65);
    assert_eq!(page.items[0].target.as_deref(), Some("e63"));
    assert_eq!(
        page.items[64].id, before.id,
        "the older entry is read, oldest"
    );
}

#[tokio::test]
async fn the_list_of_all_requests_is_write_sharded_and_reads_older_requests() {
    use shared::ports::{RequestQuery, RequestStore};
    use testkit::requests::{event, request};
    let Some(config) = aws().await else { return };
    let table = create_table(&config).await;
    let store = aws::DynamoRequestStore::new(&config, table.clone());
    let t0 = time::OffsetDateTime::now_utc();
    let mut ids = Vec::new();
    for i in 0..48 {
        let r = request(
            "alice",
            "data",
            "postgres",
            t0 + time::Duration::milliseconds(i),
            None,
        );
        let submitted = event(&r, shared::requests::model::EventKind::Submitted);
        store
            .create(&r, &submitted, testkit::requests::HANDOFF)
            .await
            .unwrap();
        ids.push(r.id);
    }
    // The oldest as written before sharding: in the one partition the index had then.
    aws_sdk_dynamodb::Client::new(&config)
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("req#{}", ids[0])))
        .key("sk", AttributeValue::S("req".to_owned()))
        .update_expression("SET gsi3pk = :all")
        .expression_attribute_values(":all", AttributeValue::S("requests".to_owned()))
        .send()
        .await
        .unwrap();
    let partitions = values_of(&config, &table, "gsi3pk").await;
    assert!(partitions.len() >= 9, "{partitions:?}");
    let mut query = RequestQuery {
        limit: 5,
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = store.list(&query).await.unwrap();
        seen.extend(page.items.iter().map(|r| r.id));
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(
        seen, ids,
        "newest first across shards, the unsharded one last"
    );
}
