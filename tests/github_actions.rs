//! The github-workflow and terraform actions end to end: local mode runs the example
//! catalog's GitHub items against a wiremock GitHub that checks the requests GitHub's REST
//! documentation specifies (workflow dispatch, runs, git refs, contents, pulls, labels, the
//! auto-merge mutation), and against the sandbox's stand-in.

use std::path::Path;

use base64::Engine as _;
use orchestrator_tests::app::{App, sandbox_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::config::Config;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const GITHUB_TOKEN: &str = "ghp_t0kenForTests9f3";
const INVENTORY_TOKEN: &str = "inv-t0ken-51d2";
const OWNER_REPO: &str = "/repos/acme-corp/dbre-automation";

fn config(dir: &Path, github: &str, inventory: &str) -> Config {
    let secrets = dir.join("secrets.json");
    std::fs::write(
        &secrets,
        json!({"github-token": GITHUB_TOKEN, "inventoryApiToken": INVENTORY_TOKEN}).to_string(),
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
        region: "eu-west-1".to_owned(),
        ..Config::default()
    };
    config.github.api_url = github.to_owned();
    config.environment = json!({
        "inventoryApiUrl": format!("{inventory}/inventory"),
        "accountAlias": "acme",
        "terraformStateBucket": "acme-tf-state",
    })
    .as_object()
    .unwrap()
    .clone();
    config
}

fn table_request() -> Value {
    json!({"item": "dynamodb-table", "fields": {"tableName": "orders", "partitionKey": "pk", "streams": true}})
}

/// The headers GitHub's REST documentation asks every call to carry.
fn assert_github_headers(request: &Request) {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("accept"), "application/vnd.github+json");
    assert_eq!(header("x-github-api-version"), "2022-11-28");
    assert_eq!(header("authorization"), format!("Bearer {GITHUB_TOKEN}"));
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn run(id: u64, status: &str, conclusion: Value, title: &str) -> Value {
    json!({"id": id, "name": "dynamodb-table.yml", "display_title": title, "status": status,
           "conclusion": conclusion, "run_number": 7, "head_sha": "abc123",
           "html_url": format!("https://github.com/acme-corp/dbre-automation/actions/runs/{id}")})
}

async fn inventory() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/inventory/v1/dynamodb-tables/orders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "arn": "arn:aws:dynamodb:eu-west-1:123456789012:table/orders",
            "streamArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/1"})))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_workflow_is_dispatched_with_its_inputs_and_followed_to_success() {
    let github = MockServer::start().await;
    let dispatch = format!("{OWNER_REPO}/actions/workflows/dynamodb-table.yml/dispatches");
    Mock::given(method("POST"))
        .and(path(dispatch.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "workflow_run_id": 42,
            "run_url": "https://api.github.com/repos/acme-corp/dbre-automation/actions/runs/42",
            "html_url": "https://github.com/acme-corp/dbre-automation/actions/runs/42"})))
        .expect(1)
        .mount(&github)
        .await;
    let run_path = format!("{OWNER_REPO}/actions/runs/42");
    Mock::given(method("GET"))
        .and(path(run_path.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(run(
            42,
            "in_progress",
            Value::Null,
            "t",
        )))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path(run_path.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(run(
            42,
            "completed",
            json!("success"),
            "t",
        )))
        .mount(&github)
        .await;
    let inventory = inventory().await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), &github.uri(), &inventory.uri())).await;

    let (status, created) = app.submit(&table_request()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap();
    let done = app.wait_for(id, "completed").await;
    assert_eq!(
        done["outputs"],
        json!({"tableArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/orders",
               "streamArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/1",
               "runUrl": "https://github.com/acme-corp/dbre-automation/actions/runs/42"})
    );

    // The dispatch is exactly what GitHub documents: ref, string inputs, and the ask for
    // the run's id; the correlation input carries the execution's delivery id.
    let requests = github.received_requests().await.unwrap();
    let sent = requests.iter().find(|r| r.url.path() == dispatch).unwrap();
    assert_github_headers(sent);
    let sent = body(sent);
    let correlation = sent["inputs"]["correlation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(correlation.len(), 36, "{sent}");
    assert_eq!(
        sent,
        json!({"ref": "main", "return_run_details": true, "inputs": {
            "table_name": "orders", "partition_key": "pk", "sort_key": "", "ttl_attribute": "",
            "streams": "true", "request_id": id, "correlation_id": correlation}})
    );
    let polls = requests.iter().filter(|r| r.url.path() == run_path).count();
    assert!(
        polls >= 2,
        "the run was checked until it completed: {polls}"
    );
    let kinds = app.event_kinds(id).await;
    assert!(kinds.contains(&"action_waiting".to_owned()), "{kinds:?}");
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn without_run_details_the_run_is_found_by_its_correlation_id_and_a_failed_run_fails() {
    let github = MockServer::start().await;
    let dispatch = format!("{OWNER_REPO}/actions/workflows/dynamodb-table.yml/dispatches");
    // An older GitHub Enterprise Server: it refuses the new parameter, then accepts.
    Mock::given(method("POST"))
        .and(path(dispatch.as_str()))
        .and(|r: &Request| body(r).get("return_run_details").is_some())
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Invalid request.\n\n\"return_run_details\" is not a permitted key."})))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path(dispatch.as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&github)
        .await;
    // The run list shows the run by its run-name, which holds the correlation id.
    Mock::given(method("GET"))
        .and(path(format!(
            "{OWNER_REPO}/actions/workflows/dynamodb-table.yml/runs"
        )))
        .and(query_param("event", "workflow_dispatch"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total_count": 0, "workflow_runs": []})),
        )
        .mount(&github)
        .await;
    let inventory = inventory().await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), &github.uri(), &inventory.uri())).await;
    let (_, created) = app.submit(&table_request()).await;
    let id = created["id"].as_str().unwrap().to_owned();

    // Learn the correlation id from the dispatch, then list a run that carries it, one
    // that does not, and let the one that does conclude in failure.
    let correlation = loop {
        let requests = github.received_requests().await.unwrap();
        if let Some(sent) = requests
            .iter()
            .find(|r| r.url.path() == dispatch && body(r).get("return_run_details").is_none())
        {
            break body(sent)["inputs"]["correlation_id"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    github.reset().await;
    Mock::given(method("GET"))
        .and(path(format!(
            "{OWNER_REPO}/actions/workflows/dynamodb-table.yml/runs"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"total_count": 2, "workflow_runs": [
                run(77, "completed", json!("success"), "someone else's run"),
                run(78, "completed", json!("failure"), &format!("dynamodb orders {correlation}")),
            ]}),
        ))
        .mount(&github)
        .await;

    app.wait_for(&id, "failed").await;
    let timeline = app.get(&format!("/requests/{id}/events")).await.to_string();
    assert!(
        timeline.contains("actions/runs/78") && timeline.contains("concluded `failure`"),
        "{timeline}"
    );
    assert!(!timeline.contains(GITHUB_TOKEN));
    app.running.stop().await.unwrap();
}

/// Every call of the terraform action, in the order GitHub's documentation has them.
#[tokio::test]
async fn a_terraform_item_becomes_a_pull_request_with_parseable_files() {
    let github = MockServer::start().await;
    let repo = "/repos/acme-corp/infra-live";
    Mock::given(method("GET"))
        .and(path(format!("{repo}/git/ref/heads/main")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ref": "refs/heads/main", "object": {"type": "commit", "sha": "base5ha"}})))
        .mount(&github)
        .await;
    // The new branch and its files do not exist yet.
    Mock::given(method("GET"))
        .and(|r: &Request| {
            r.url.path().contains("/git/ref/heads/orchestrator/")
                || r.url.path().contains("/contents/")
        })
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{repo}/git/refs")))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"ref": "x", "object": {"sha": "base5ha"}})),
        )
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("PUT"))
        .and(|r: &Request| {
            r.url
                .path()
                .starts_with("/repos/acme-corp/infra-live/contents/s3/dev/logs/")
        })
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"content": {}, "commit": {"sha": "c1"}})),
        )
        .expect(5)
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{repo}/pulls")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{repo}/pulls")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "number": 314, "node_id": "PR_kwDO314", "state": "open", "merged": false,
            "html_url": "https://github.com/acme-corp/infra-live/pull/314"})))
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{repo}/issues/314/labels")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"name": "s3"}])))
        .expect(1)
        .mount(&github)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), &github.uri(), "http://127.0.0.1:9")).await;
    let (status, created) = app
        .submit(
            &json!({"item": "s3-bucket", "fields": {"bucketName": "logs", "environment": "dev"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap();
    let done = app.wait_for(id, "completed").await;
    assert_eq!(
        done["outputs"],
        json!({"bucketName": "acme-logs", "pullRequestUrl": "https://github.com/acme-corp/infra-live/pull/314"})
    );

    let requests = github.received_requests().await.unwrap();
    for r in &requests {
        assert_github_headers(r);
    }
    let branch = format!("orchestrator/{id}-declare");
    let create_ref = requests
        .iter()
        .find(|r| r.url.path() == format!("{repo}/git/refs"))
        .unwrap();
    assert_eq!(
        body(create_ref),
        json!({"ref": format!("refs/heads/{branch}"), "sha": "base5ha"})
    );

    let mut files = std::collections::BTreeMap::new();
    for put in requests.iter().filter(|r| r.method.as_str() == "PUT") {
        let sent = body(put);
        assert_eq!(sent["branch"], branch.as_str());
        assert!(
            sent["message"]
                .as_str()
                .unwrap()
                .starts_with("S3 bucket logs (dev)"),
            "{sent}"
        );
        let text = base64::engine::general_purpose::STANDARD
            .decode(sent["content"].as_str().unwrap())
            .unwrap();
        let name = put.url.path().rsplit('/').next().unwrap().to_owned();
        files.insert(name, String::from_utf8(text).unwrap());
    }
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            "main.tf",
            "outputs.tf",
            "providers.tf",
            "terraform.tfvars",
            "variables.tf"
        ]
    );
    for (name, text) in &files {
        assert!(text.contains(id), "{name} names the request");
    }
    let squashed = |name: &str| files[name].split_whitespace().collect::<Vec<_>>().join(" ");
    let main = squashed("main.tf");
    assert!(main.contains("module \"this\" { source = \"app.terraform.io/acme-corp/s3-bucket/aws\" version = \"~> 4.2\" bucket = var.bucket"), "{main}");
    let providers = squashed("providers.tf");
    assert!(
        providers
            .contains("backend \"s3\" { bucket = \"acme-tf-state\" key = \"s3/dev/logs.tfstate\""),
        "{providers}"
    );
    assert!(
        providers.contains("provider \"aws\" { region = \"eu-west-1\" }"),
        "{providers}"
    );
    // The values: typed, and literal; the files are formatted as `terraform fmt` would.
    let values = &files["terraform.tfvars"];
    assert!(
        values.contains("\nbucket                             = \"acme-logs\"\n"),
        "{values}"
    );
    assert!(
        values.contains("\nnoncurrent_version_expiration_days = 90\n"),
        "{values}"
    );
    assert!(
        values.contains("\nversioning                         = true\n"),
        "{values}"
    );
    let list = requests
        .iter()
        .find(|r| r.method.as_str() == "GET" && r.url.path() == format!("{repo}/pulls"))
        .unwrap();
    let query: std::collections::HashMap<_, _> = list.url.query_pairs().into_owned().collect();
    assert_eq!(query["head"], format!("acme-corp:{branch}"));
    let open = requests
        .iter()
        .find(|r| r.method.as_str() == "POST" && r.url.path() == format!("{repo}/pulls"))
        .unwrap();
    assert_eq!(
        body(open),
        json!({"title": "S3 bucket logs (dev)", "head": branch, "base": "main", "draft": false,
               "body": format!("Requested by alice (request {id}).")})
    );
    let labels = requests
        .iter()
        .find(|r| r.url.path().ends_with("/labels"))
        .unwrap();
    assert_eq!(body(labels), json!({"labels": ["s3", "self-service"]}));
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn in_the_sandbox_every_github_item_completes() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::fast_example_catalog(dir.path());
    orchestrator_tests::with_platform_api_items(&catalog);
    let config = sandbox_config(dir.path(), catalog);
    let app = App::start(&config).await;
    let submissions = [
        json!({"item": "s3-bucket", "fields": {"bucketName": "assets", "environment": "dev"}}),
        table_request(),
        json!({"item": "eks-cluster", "fields": {"clusterName": "payments", "environment": "dev", "kubernetesVersion": "1.34"}}),
    ];
    let mut ids = Vec::new();
    for body in &submissions {
        let (status, created) = app.submit(body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let bucket = app.wait_for(&ids[0], "completed").await;
    assert_eq!(bucket["outputs"]["bucketName"], "sandbox-assets");
    assert!(
        bucket["outputs"]["pullRequestUrl"]
            .as_str()
            .unwrap()
            .contains("/infra-live/pull/")
    );
    let table = app.wait_for(&ids[1], "completed").await;
    assert_eq!(
        table["outputs"]["tableArn"],
        "arn:aws:dynamodb:eu-west-1:000000000000:table/orders"
    );
    // The cluster: a pull request merged by auto-merge, then the apply workflow, then the
    // inventory's description.
    let cluster = app.wait_for(&ids[2], "completed").await;
    assert_eq!(
        cluster["outputs"]["endpoint"],
        "https://payments.eks.sandbox.local"
    );
    app.running.stop().await.unwrap();
}
