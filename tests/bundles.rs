//! Bundles end to end in local mode: the application stack's state machine runs on the
//! local workflow engine, components run in dependency order with each one's outputs
//! passed to the next, the timeline follows each component, and a late failure rolls the
//! completed components back in reverse order.

use std::time::Duration;

use orchestrator_tests::app::{App, sandbox_config};
use serde_json::{Value, json};

/// Local mode with AWS actions on moto (the application stack's secret and role are made
/// in AWS), or `None` without moto.
async fn with_aws(mut config: shared::config::Config) -> Option<(App, aws::SdkConfig)> {
    let moto = orchestrator_tests::moto::moto().await?;
    config.aws.endpoint_url = Some(moto.endpoint.clone());
    let sdk = aws::for_endpoint(&moto.endpoint, "us-east-1").await;
    let app = App::start_with_aws(&config, &sdk).await;
    Some((app, sdk))
}

/// The request, once it reached `status` (bundles take longer than one item).
async fn settle(app: &App, id: &str, status: &str) -> Value {
    app.wait_within(id, status, Duration::from_secs(30)).await
}

/// The timeline's `(kind, message, component)` entries, in order (`component` empty for
/// the request's own entries).
async fn timeline(app: &App, id: &str) -> Vec<(String, String, String)> {
    let timeline = app.get(&format!("/requests/{id}/events")).await;
    timeline["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["message"].as_str().unwrap_or_default().to_owned(),
                e["component"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The first entry of `kind` whose message starts with `message_start`. A message that
/// starts with a component's label (`db: `) must be an entry about that component.
fn position(events: &[(String, String, String)], kind: &str, message_start: &str) -> usize {
    let component = message_start.split_once(": ").map(|(c, _)| c);
    events
        .iter()
        .position(|(k, m, c)| {
            k == kind && m.starts_with(message_start) && component.is_none_or(|label| c == label)
        })
        .unwrap_or_else(|| panic!("no `{kind}` event starting `{message_start}` in {events:#?}"))
}

/// The parsed `MessageBody` of every task the execution sent, by state name.
fn task_messages(history: &Value) -> Vec<(String, Value)> {
    let events = history["events"].as_array().expect("events");
    let mut out = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if event["type"] != "TaskScheduled" {
            continue;
        }
        let parameters: Value = serde_json::from_str(
            event["taskScheduledEventDetails"]["parameters"]
                .as_str()
                .expect("parameters"),
        )
        .expect("JSON parameters");
        // The state is the one entered last before this event.
        let state = events[..i]
            .iter()
            .rev()
            .find(|e| e["type"] == "TaskStateEntered")
            .and_then(|e| e["stateEnteredEventDetails"]["name"].as_str())
            .unwrap_or_default()
            .to_owned();
        out.push((state, parameters["MessageBody"].clone()));
    }
    out
}

#[tokio::test]
async fn the_application_stack_is_provisioned_in_order_with_outputs_passed_along() {
    let dir = tempfile::tempdir().unwrap();
    let config = sandbox_config(
        dir.path(),
        orchestrator_tests::fast_example_catalog(dir.path()),
    );
    let Some((app, sdk)) = with_aws(config.clone()).await else {
        return;
    };
    let name = orchestrator_tests::app_name();
    let (status, created) = app
        .submit(&orchestrator_tests::app_stack_request(&name))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let done = settle(&app, &id, "completed").await;

    // The bundle's outputs, rendered from its components' outputs.
    let outputs = &done["outputs"];
    for name in [
        "clusterEndpoint",
        "databaseEndpoint",
        "appSecretArn",
        "appRoleArn",
    ] {
        assert!(
            outputs[name].as_str().is_some_and(|v| !v.is_empty()),
            "{name} missing from {outputs}"
        );
    }

    // The timeline follows each component, in dependency order.
    let events = timeline(&app, &id).await;
    let started = position(&events, "execution_started", "provisioning 4 components");
    let cluster = position(&events, "component_completed", "cluster: completed");
    let database_started = position(&events, "component_started", "database: ");
    let database = position(&events, "component_completed", "database: completed");
    let secret_started = position(&events, "component_started", "appSecret: ");
    let secret = position(&events, "component_completed", "appSecret: completed");
    let role_started = position(&events, "component_started", "appRole: ");
    assert!(started < cluster && cluster < database_started);
    assert!(database < secret_started && secret_started < secret);
    assert!(secret < role_started);
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("completed"));

    // The execution, as Step Functions' history: each component's task got the outputs
    // of the components it depends on.
    let history = app.get(&format!("/requests/{id}/execution")).await;
    assert_eq!(history["execution"]["status"], "SUCCEEDED", "{history:#}");
    assert_eq!(history["execution"]["name"], id.as_str());
    let mut messages = task_messages(&history);
    // A dev stack needs no approval: the production policy's stages pass at once.
    let approvals: Vec<(String, Value)> = messages
        .iter()
        .filter(|(s, _)| s.starts_with("Approval "))
        .cloned()
        .collect();
    assert_eq!(approvals.len(), 2, "{messages:?}");
    assert!(approvals.iter().all(|(_, m)| m["task"] == "approve"));
    assert!(
        !app.event_kinds(&id)
            .await
            .contains(&"approval_requested".to_owned())
    );
    messages.retain(|(s, _)| !s.starts_with("Approval "));
    let order: Vec<&str> = messages.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        order,
        [
            "Provision cluster",
            "Provision database",
            "Provision appSecret",
            "Provision appRole",
            "Complete"
        ]
    );
    let to_role = &messages[3].1;
    assert_eq!(
        to_role["components"]["appSecret"]["outputs"]["secretArn"],
        outputs["appSecretArn"]
    );

    // In AWS: the secret, generated there, and the role, made by a CloudFormation stack,
    // which its service account alone may assume and which may read the secret.
    let secret_arn = outputs["appSecretArn"].as_str().unwrap();
    let secret = aws_sdk_secretsmanager::Client::new(&sdk)
        .describe_secret()
        .secret_id(secret_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        secret.name(),
        Some(format!("apps/{name}-dev/app-key").as_str())
    );
    let stacks = aws_sdk_cloudformation::Client::new(&sdk)
        .describe_stacks()
        .send()
        .await
        .unwrap();
    let role_stack = stacks
        .stacks()
        .iter()
        .find(|s| {
            s.outputs().iter().any(|o| {
                o.output_key() == Some("RoleArn")
                    && o.output_value() == outputs["appRoleArn"].as_str()
            })
        })
        .expect("the role's stack");
    let parameter = |key: &str| {
        role_stack
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some(key))
            .and_then(|p| p.parameter_value())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        parameter("SecretArns").contains(secret_arn),
        "{role_stack:?}"
    );
    assert_eq!(parameter("ServiceAccount"), name);
    assert_eq!(
        messages[1].1["components"]["cluster"]["outputs"]["endpoint"],
        outputs["clusterEndpoint"]
    );
    assert!(
        messages[0].1["components"]
            .as_object()
            .is_some_and(|c| c.is_empty()),
        "the first component has nothing before it"
    );
    let output = history["execution"]["output"].clone();
    assert_eq!(output["outputs"], *outputs, "the execution's output");

    // Only the requester (and admins) see the execution.
    let bob = app.token_for(&config, "bob", &["developers"]).await;
    let (status, _) = app
        .call(
            reqwest::Method::GET,
            &format!("/requests/{id}/execution"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 404);
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_late_failure_rolls_back_the_completed_components_in_reverse_order() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::fast_example_catalog(dir.path());
    orchestrator_tests::with_cluster_rollback(&catalog);
    let target = orchestrator_tests::cluster_teardown().await;
    let mut config = sandbox_config(dir.path(), catalog);
    config
        .environment
        .insert("teardownUrl".into(), json!(target.uri()));
    let Some((app, sdk)) = with_aws(config).await else {
        return;
    };
    let name = orchestrator_tests::app_name();
    orchestrator_tests::clash_with_app_secret(&sdk, &name).await;
    let (status, created) = app
        .submit(&orchestrator_tests::app_stack_request(&name))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let failed = settle(&app, &id, "failed").await;
    orchestrator_tests::assert_clashing_secret_rolled_back(&failed);
    // The portal's component graph: where each component ended, from the timeline.
    assert_eq!(
        component_states(&app, &id).await,
        [
            ("cluster", "rolled_back"),
            ("database", "rolled_back"),
            ("appSecret", "failed"),
            ("appRole", "not_started")
        ]
        .map(|(c, s)| (c.to_owned(), s.to_owned()))
    );

    let events = timeline(&app, &id).await;
    let secret_failed = position(&events, "component_failed", "appSecret: ");
    let database_undone = position(&events, "component_rolled_back", "database: rolled back");
    let cluster_undone = position(&events, "component_rolled_back", "cluster: rolled back");
    assert!(
        secret_failed < database_undone && database_undone < cluster_undone,
        "reverse dependency order: {events:#?}"
    );
    assert!(
        !events
            .iter()
            .any(|(k, _, c)| k == "component_rolled_back" && c == "appSecret"),
        "the component that failed had nothing to undo"
    );

    let history = app.get(&format!("/requests/{id}/execution")).await;
    assert_eq!(history["execution"]["status"], "FAILED", "{history:#}");
    assert_eq!(
        history["execution"]["error"],
        "Orchestrator.ComponentFailed"
    );
    let order: Vec<String> = task_messages(&history)
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    let undo_database = order.iter().position(|s| s == "Undo database").unwrap();
    let undo_cluster = order.iter().position(|s| s == "Undo cluster").unwrap();
    assert!(undo_database < undo_cluster, "{order:?}");
    app.running.stop().await.unwrap();
}

/// A bundle whose one component is fulfilled by a person: the example Kafka topic.
const MANUAL_BUNDLE: &str = r#"apiVersion: orchestrator.dev/v1
kind: CatalogBundle
metadata:
  name: streams
  title: Streams
  description: A Kafka topic, by a person.
  owner: messaging
  category: messaging
spec:
  presentation:
    schema:
      type: object
      required: [topic]
      properties:
        topic:
          type: string
  components:
    - id: topic
      item: kafka-topic
      inputs:
        topicName: "{{fields.topic}}"
        partitions: 6
        retentionHours: 24
        producerPrincipal: "arn:aws:iam::123456789012:role/orders"
  outputs:
    brokers:
      value: "{{components.topic.outputs.bootstrapBrokers}}"
      description: Where to connect.
"#;

#[tokio::test]
async fn a_component_fulfilled_by_a_person_is_answered_by_its_jira_issue() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::fast_example_catalog(dir.path());
    std::fs::write(catalog.join("bundles/streams.yaml"), MANUAL_BUNDLE).unwrap();
    let config = sandbox_config(dir.path(), catalog);
    let app = App::start(&config).await;
    let jira = app.running.jira_url.clone().unwrap();
    let submit = |topic: &str| json!({"bundle": "streams", "fields": {"topic": topic}});

    let (_, created) = app.submit(&submit("orders.v1")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let key = wait_for_ticket(&app, &id).await;
    assert_eq!(app.request(&id).await["status"], "in_progress");
    let progress = app.get(&format!("/requests/{id}/events")).await;
    let component = &progress["components"][0];
    assert_eq!(
        (&component["id"], &component["item"], &component["status"]),
        (
            &json!("topic"),
            &json!("kafka-topic"),
            &json!("awaiting_fulfillment")
        ),
        "{progress:#}"
    );
    assert_eq!(component["ticket"]["key"], key.as_str());
    assert!(
        component["ticket"]["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/browse/{key}"))),
        "{component}"
    );
    // The sandbox's calls are also served on the orchestrator's own port (the portal's
    // Sandbox page uses them there).
    let listed = app.get("/sandbox/jira/issues").await;
    assert_eq!(listed["issues"][0]["key"], key.as_str(), "{listed}");
    let resolve = |base: &str, key: String, body: Value| {
        let client = app.client.clone();
        let url = format!("{base}/sandbox/jira/issues/{key}/resolve");
        async move {
            let resolved: Value = client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(resolved["webhookStatus"], 204, "{resolved}");
        }
    };
    resolve(
        &app.base,
        key.clone(),
        json!({"resolution": "Done", "fields": {"customfield_10401": "orders.v1", "customfield_10402": "sandbox-broker:9098"}}),
    )
    .await;
    let done = settle(&app, &id, "completed").await;
    assert_eq!(done["outputs"]["brokers"], "sandbox-broker:9098");
    assert_eq!(
        component_states(&app, &id).await,
        [("topic".to_owned(), "completed".to_owned())]
    );
    let events = timeline(&app, &id).await;
    position(
        &events,
        "component_completed",
        &format!("topic: JIRA issue {key} is done"),
    );
    // The entry the JIRA webhook wrote names its component and its ticket, with the
    // issue's address kept from when it was opened.
    let timeline = app.get(&format!("/requests/{id}/events")).await;
    let done = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "component_completed")
        .unwrap();
    assert_eq!(done["actor"], "jira", "{done}");
    assert_eq!(done["component"], "topic", "{done}");
    assert_eq!(done["detail"]["ticket"]["key"], key.as_str(), "{done}");
    assert!(
        done["detail"]["ticket"]["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/browse/{key}"))),
        "{done}"
    );
    assert!(
        done["detail"]["outputs"]
            .as_array()
            .is_some_and(|names| names.contains(&json!("bootstrapBrokers"))),
        "the names of the outputs the person gave: {done}"
    );

    // Declined: the component fails, and the request is rejected with the reason.
    let (_, created) = app.submit(&submit("payments.v1")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let key = wait_for_ticket(&app, &id).await;
    resolve(
        &jira,
        key,
        json!({"resolution": "Won't Do", "comment": "Use the existing payments topic."}),
    )
    .await;
    let rejected = settle(&app, &id, "rejected").await;
    assert!(
        rejected["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("topic: ") && r.contains("existing payments topic")),
        "{rejected}"
    );
    assert_eq!(
        component_states(&app, &id).await,
        [("topic".to_owned(), "rejected".to_owned())]
    );
    app.running.stop().await.unwrap();
}

/// Each component's state as `GET /requests/{id}/events` reports it, in bundle order.
async fn component_states(app: &App, id: &str) -> Vec<(String, String)> {
    let timeline = app.get(&format!("/requests/{id}/events")).await;
    timeline["components"]
        .as_array()
        .unwrap_or_else(|| panic!("a bundle's timeline lists its components: {timeline}"))
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_owned(),
                c["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The key of the JIRA issue the request's component opened, read from the entry's
/// detail; the component's row shows the same ticket.
async fn wait_for_ticket(app: &App, id: &str) -> String {
    for _ in 0..300 {
        let timeline = app.get(&format!("/requests/{id}/events")).await;
        let opened = timeline["events"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["kind"] == "ticket_created");
        if let Some(entry) = opened {
            assert_eq!(entry["component"], "topic", "{entry}");
            let key = entry["detail"]["ticket"]["key"]
                .as_str()
                .expect("the entry names its ticket")
                .to_owned();
            assert!(
                entry["detail"]["ticket"]["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(&key))
            );
            assert_eq!(timeline["components"][0]["ticket"]["key"], key.as_str());
            return key;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no ticket for {id}: {:#?}", timeline(app, id).await);
}

#[tokio::test]
async fn a_bundle_under_way_when_the_process_stops_finishes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::chain_catalog(dir.path(), 3);
    let api = orchestrator_tests::slow_database_api(Duration::from_millis(150)).await;
    let mut config = shared::config::Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: catalog,
        data_dir: dir.path().join("data"),
        ..shared::config::Config::default()
    };
    config.environment.insert("dbApi".into(), json!(api.uri()));
    let app = App::start(&config).await;
    let (status, created) = app
        .submit(&json!({"bundle": "chain", "fields": {"app": "orders"}}))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    // Stop once the first component is done and the second is on its way.
    for _ in 0..600 {
        let events = timeline(&app, &id).await;
        if events.iter().any(|(k, _, _)| k == "component_completed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = timeline(&app, &id).await;
    app.running.stop().await.unwrap();
    assert!(
        !before.iter().any(|(k, _, _)| k == "completed"),
        "stopped before the bundle finished"
    );
    let created_before = api.received_requests().await.unwrap().len();
    assert!(
        created_before < 3,
        "the last component was left for the next process ({created_before} created)"
    );

    let app = App::start(&config).await;
    let done = settle(&app, &id, "completed").await;
    assert_eq!(done["status"], "completed");
    let events = timeline(&app, &id).await;
    for component in ["c0", "c1", "c2"] {
        let runs = events
            .iter()
            .filter(|(k, _, c)| k == "component_started" && c == component)
            .count();
        assert_eq!(runs, 1, "{component} started once: {events:#?}");
    }
    let history = app.get(&format!("/requests/{id}/execution")).await;
    assert_eq!(history["execution"]["status"], "SUCCEEDED");
    let order: Vec<String> = task_messages(&history)
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        order,
        ["Provision c0", "Provision c1", "Provision c2", "Complete"],
        "each task was scheduled once across the restart"
    );
    assert_eq!(
        api.received_requests().await.unwrap().len(),
        3,
        "each database created once"
    );
    app.running.stop().await.unwrap();
}

/// The `bundle` scope at run time: an item's actions read the bundle they run in (its
/// name, its form's values, their component), component inputs read it too, and so do
/// the bundle's outputs.
#[tokio::test]
async fn the_bundle_scope_names_the_bundle_its_form_and_the_component() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let api = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "v-1", "accessKey": "k"})),
        )
        .mount(&api)
        .await;
    let item = orchestrator_tests::VOLUME.replace(
        "            body:\n              size: \"{{fields.size}}\"\n",
        "            body:\n              size: \"{{fields.size}}\"\n              bundle: \"{{bundle.name}}\"\n              component: \"{{bundle.component}}\"\n              app: \"{{bundle.fields.app}}\"\n",
    );
    assert_ne!(
        item,
        orchestrator_tests::VOLUME,
        "the item reads the bundle scope"
    );
    let bundle = orchestrator_tests::PLATFORM.replace(
        "name: \"{{fields.app}}-db\"",
        "name: \"{{bundle.fields.app}}-{{bundle.component}}\"",
    ) + "  outputs:\n    stack:\n      value: \"{{bundle.name}} of {{bundle.fields.app}}\"\n      description: Which stack.\n";
    let dir = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::write_catalog(
        dir.path(),
        &[
            ("items/volume.yaml", item),
            ("bundles/platform.yaml", bundle),
        ],
    );
    let mut config = sandbox_config(dir.path(), catalog);
    config.sandbox = false;
    config.environment = json!({"api": api.uri()}).as_object().unwrap().clone();
    let app = App::start(&config).await;
    let (status, created) = app
        .submit(&json!({"bundle": "platform", "fields": {"app": "shop"}}))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let done = app.wait_for(&id, "completed").await;
    assert_eq!(done["outputs"]["stack"], "platform of shop", "{done}");

    let bodies: Vec<(String, Value)> = api
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.url.path().to_owned(),
                serde_json::from_slice(&r.body).unwrap(),
            )
        })
        .collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    for (component, path) in [
        ("net", "/volumes/shop-net"),
        ("db", "/volumes/shop-db"),
        ("app", "/volumes/shop-app"),
    ] {
        let (_, body) = bodies
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("no PUT of {path}: {bodies:?}"));
        assert_eq!(body["bundle"], "platform", "{body}");
        assert_eq!(body["component"], component, "{body}");
        assert_eq!(body["app"], "shop", "{body}");
    }
    app.running.stop().await.unwrap();
}

/// A failure in one branch of a parallel pair: the sibling in flight runs to its end (it
/// is not cut off mid-call), the component after it in its branch is not started, and
/// then everything that made something is rolled back, so the target keeps nothing. The
/// execution fails with the first component's own error.
#[tokio::test]
async fn a_failed_branch_lets_its_sibling_settle_then_rolls_back_everything_it_made() {
    use orchestrator_tests::things::{Faults, Things, thing_item, things_bundle};
    let target = Things::start(Faults::none()).await;
    let (app, _config, _dir) = orchestrator_tests::things::local_app(
        &target,
        &[
            ("items/thing.yaml", thing_item("5s")),
            (
                "bundles/pair.yaml",
                things_bundle(
                    "pair",
                    &[("a", &[]), ("b", &[]), ("c", &["b"]), ("d", &["a", "c"])],
                    "rollback",
                ),
            ),
        ],
    )
    .await;
    let (status, created) = app
        .submit(&json!({"bundle": "pair", "fields": {"a": "fail-a", "b": "slow-b"}}))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let failed = settle(&app, &id, "failed").await;
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("fail-a") && !r.contains("not started")),
        "the reason is a's own failure: {failed:#}"
    );

    assert_eq!(
        component_states(&app, &id).await,
        [
            ("a", "failed"),
            ("b", "rolled_back"),
            ("c", "not_started"),
            ("d", "not_started")
        ]
        .map(|(c, s)| (c.to_owned(), s.to_owned()))
    );
    let census = target.census();
    assert_eq!(census.made, 1, "only b made something: {census:?}");
    assert!(census.things.is_empty(), "nothing is left: {census:?}");

    let events = timeline(&app, &id).await;
    let b_done = position(&events, "component_completed", "b: completed");
    let b_undone = position(&events, "component_rolled_back", "b: rolled back");
    assert!(b_done < b_undone, "{events:#?}");
    let skipped = position(&events, "component_not_started", "c: ");
    assert!(events[skipped].1.contains("`a` failed"), "{events:#?}");

    let history = app.get(&format!("/requests/{id}/execution")).await;
    assert_eq!(history["execution"]["status"], "FAILED", "{history:#}");
    assert_eq!(
        history["execution"]["error"],
        "Orchestrator.ComponentFailed"
    );
    app.running.stop().await.unwrap();
}

/// `onFailure: pause`: the failed component stops the bundle with what completed kept;
/// once the cause is fixed, an admin redrives the request and it resumes from the failed
/// component without making the completed ones again.
#[tokio::test]
async fn a_paused_bundle_keeps_what_completed_and_an_admin_redrives_it_from_the_failed_component() {
    use orchestrator_tests::things::{Faults, Things, thing_item, things_bundle};
    let target = Things::start(Faults::none()).await;
    let (app, config, _dir) = orchestrator_tests::things::local_app(
        &target,
        &[
            ("items/thing.yaml", thing_item("5s")),
            (
                "bundles/chain.yaml",
                things_bundle(
                    "chain",
                    &[("a", &[]), ("b", &["a"]), ("c", &["b"])],
                    "pause",
                ),
            ),
        ],
    )
    .await;
    let (status, created) = app
        .submit(&json!({"bundle": "chain", "fields": {"b": "fail-b"}}))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let paused = settle(&app, &id, "paused").await;
    assert!(
        paused["reason"]
            .as_str()
            .is_some_and(|r| r.contains("fail-b")),
        "{paused:#}"
    );
    // The execution stops at the failed component; nothing was rolled back.
    for _ in 0..100 {
        let history = app.get(&format!("/requests/{id}/execution")).await;
        if history["execution"]["status"] == "FAILED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        component_states(&app, &id).await,
        [("a", "completed"), ("b", "failed"), ("c", "pending")]
            .map(|(c, s)| (c.to_owned(), s.to_owned()))
    );
    assert_eq!(target.census().things.len(), 1, "a's thing is kept");

    // Only admins redrive.
    let path = format!("/requests/{id}/redrive");
    let (status, problem) = app
        .call(reqwest::Method::POST, &path, &app.token, None)
        .await;
    assert_eq!(status, 403, "{problem}");
    let admin = app.token_for(&config, "root", &["platform-admins"]).await;

    target.stop_refusing();
    let (status, resumed) = app.call(reqwest::Method::POST, &path, &admin, None).await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["status"], "in_progress");
    let done = settle(&app, &id, "completed").await;
    assert!(done.get("reason").is_none_or(Value::is_null), "{done:#}");

    let census = target.census();
    assert_eq!(census.made, 3, "a was not made again: {census:?}");
    assert_eq!(census.things.len(), 3);
    let events = timeline(&app, &id).await;
    let paused_at = position(&events, "paused", "b: ");
    let redriven = position(&events, "redriven", "redriven by root");
    assert_eq!(events[redriven].2, "b", "the entry names the component");
    assert!(paused_at < redriven);
    assert_eq!(
        events
            .iter()
            .filter(|(k, m, _)| k == "component_completed" && m.starts_with("a: "))
            .count(),
        1,
        "a completed once: {events:#?}"
    );
    let history = app.get(&format!("/requests/{id}/execution")).await;
    assert_eq!(history["execution"]["status"], "SUCCEEDED");
    assert_eq!(history["execution"]["redriveCount"], 1);
    assert!(
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "ExecutionRedriven")
    );

    // A request that is not paused is not redriven.
    let (status, problem) = app.call(reqwest::Method::POST, &path, &admin, None).await;
    assert_eq!(status, 409, "{problem}");
    app.running.stop().await.unwrap();
}

/// At-least-once delivery: a Complete task delivered again after it completed the
/// request (its first delivery could not answer: a crash, a storage error), and an Undo
/// that arrives for a completed request, leave the request and everything it made as
/// they are. The fault suite found a request that completed, then lost its things when a
/// second delivery of Complete failed on the ended request and the machine rolled back.
#[tokio::test]
async fn a_task_delivered_again_after_the_request_completed_takes_nothing_away() {
    use orchestrator_tests::things::{Faults, Things, thing_item, things_bundle};
    use shared::bundle::task::{TaskKind, TaskMessage};
    let target = Things::start(Faults::none()).await;
    let (app, _config, _dir) = orchestrator_tests::things::local_app(
        &target,
        &[
            ("items/thing.yaml", thing_item("5s")),
            (
                "bundles/trio.yaml",
                things_bundle(
                    "trio",
                    &[("a", &[]), ("b", &[]), ("c", &["a", "b"])],
                    "rollback",
                ),
            ),
        ],
    )
    .await;
    let (status, created) = app.submit(&json!({"bundle": "trio", "fields": {}})).await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let completed = settle(&app, &id, "completed").await;
    let events_before = timeline(&app, &id).await.len();
    assert_eq!(target.census().things.len(), 3);

    let worker = &app.running.state.worker;
    for (n, (task, component)) in [
        (TaskKind::Complete, None),
        (TaskKind::Undo, Some("a")),
        (TaskKind::Undo, Some("c")),
    ]
    .into_iter()
    .enumerate()
    {
        let message = TaskMessage {
            task,
            task_token: format!("delivered-again-{n}"),
            request_id: id.parse().unwrap(),
            component: component.map(str::to_owned),
            item: component.map(|_| "thing".to_owned()),
            components: Some(serde_json::Map::new()),
            error: None,
            heartbeat: false,
            approval: None,
            escalated: false,
        };
        worker
            .process(&shared::ports::Message {
                id: format!("m{n}"),
                receipt: format!("r{n}"),
                body: serde_json::to_string(&message).unwrap(),
                receive_count: 2,
            })
            .await;
    }
    let census = target.census();
    assert_eq!(census.things.len(), 3, "nothing taken away: {census:?}");
    assert!(census.removals.is_empty(), "{census:?}");
    let after = app.get(&format!("/requests/{id}")).await;
    assert_eq!(after["status"], "completed");
    assert_eq!(after["outputs"], completed["outputs"]);
    assert_eq!(timeline(&app, &id).await.len(), events_before);
    app.running.stop().await.unwrap();
}
