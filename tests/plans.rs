//! Dry runs: `POST /requests?dryRun=true` renders every action as it would run, with every
//! scope, secrets as `***` and outputs of earlier actions as `(known after ID)`, and has no
//! side effect: nothing stored, nothing called.

use std::path::Path;

use orchestrator_tests::app::App;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::config::Config;
use wiremock::{MockServer, ResponseTemplate};

const DBAAS_TOKEN: &str = "dbaas-t0ken-plan-4e1a";

fn config(dir: &Path, api: &str) -> Config {
    let secrets = dir.join("secrets.json");
    std::fs::write(
        &secrets,
        json!({"dbaasApiToken": DBAAS_TOKEN, "github-token": "ghp_plan_s3cret"}).to_string(),
    )
    .unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".to_owned(),
        // The DBRE team's GitHub Actions table, whose dispatch the plans show.
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
    config.environment = json!({
        "dbaasApiUrl": format!("{api}/dbaas"),
        "accountAlias": "acme",
        "terraformStateBucket": "acme-tf-state",
        "inventoryApiUrl": format!("{api}/inventory"),
    })
    .as_object()
    .unwrap()
    .clone();
    config
}

async fn plan(app: &App, body: &Value) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        "/requests?dryRun=true",
        &app.token,
        Some(body),
    )
    .await
}

fn rds(name: &str) -> Value {
    json!({"item": "rds-postgres", "fields": {
        "databaseName": name, "environment": "dev", "engineVersion": "17",
        "instanceClass": "db.t4g.medium", "vpcId": "vpc-0123abcd",
        "subnetIds": ["subnet-0123abcd", "subnet-4567cdef"]}})
}

#[tokio::test]
async fn a_dry_run_shows_every_call_with_secrets_redacted_and_changes_nothing() {
    let api = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), &api.uri())).await;

    let (status, plan) = plan(&app, &rds("orders")).await;
    assert_eq!(status, StatusCode::OK, "{plan:#}");
    assert_eq!(plan["dryRun"], true);
    assert_eq!(plan["mode"], "automated");
    assert_eq!(plan["errors"], json!([]), "{plan:#}");
    let create = &plan["actions"][0];
    assert_eq!(create["id"], "create");
    let sends = &create["sends"];
    assert_eq!(sends["method"], "POST");
    assert_eq!(
        sends["url"],
        format!("{}/dbaas/v2/postgres/instances", api.uri())
    );
    assert_eq!(sends["headers"]["authorization"], "Bearer ***");
    // Typed leaves stay typed; the defaults of the form are applied.
    assert_eq!(sends["body"]["allocatedStorage"], 100, "{sends:#}");
    assert_eq!(
        sends["body"]["network"]["subnetIds"],
        json!(["subnet-0123abcd", "subnet-4567cdef"])
    );
    assert_eq!(sends["body"]["tags"]["owner"], "alice");
    assert_eq!(sends["poll"]["url"], "(the response's Location header)");
    assert_eq!(create["outputs"]["instanceId"], "(known after create)");
    // The rollback reads the create's output, which the plan cannot know.
    let undo = &plan["rollback"][0];
    assert_eq!(
        undo["sends"]["url"],
        format!(
            "{}/dbaas/v2/postgres/instances/%28known%20after%20create%29?skipFinalSnapshot=true",
            api.uri()
        )
    );
    assert_eq!(plan["outputs"]["endpoint"], "(known after create)");
    assert_eq!(plan["secrets"], json!(["dbaasApiToken"]));
    // fallback: manual: the ticket a person would get.
    assert!(
        plan["ticket"]["when"]
            .as_str()
            .unwrap()
            .contains("fallback"),
        "{plan:#}"
    );
    assert!(
        plan["ticket"]["fields"]["summary"]
            .as_str()
            .unwrap()
            .contains("orders")
    );

    let text = plan.to_string();
    assert!(!text.contains(DBAAS_TOKEN));
    // Nothing was stored and nothing was called.
    let mine = app.get("/requests").await;
    assert_eq!(mine["items"], json!([]));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    api.verify().await;
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_dry_run_checks_fields_like_a_submission_and_names_missing_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), "http://127.0.0.1:9");
    std::fs::write(config.secrets_file.as_ref().unwrap(), "{}").unwrap();
    config.catalog_dir = orchestrator_tests::example_catalog();
    let app = App::start(&config).await;

    let (status, problem) = plan(
        &app,
        &json!({"item": "rds-postgres", "fields": {"databaseName": 7}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["errors"].to_string().contains("/databaseName"),
        "{problem}"
    );

    let (status, plan) = plan(&app, &rds("orders")).await;
    assert_eq!(status, StatusCode::OK);
    let warnings = plan["warnings"].to_string();
    assert!(
        warnings.contains("secret `dbaasApiToken` is not set"),
        "{warnings}"
    );
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn field_values_are_data_in_a_plan_never_templates() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), "http://127.0.0.1:9")).await;
    let hostile = "x/../../admin?drop=1&y=#frag {{secrets.dbaasApiToken}}\"\n";
    let (status, plan) = plan(
        &app,
        &json!({"item": "dynamodb-table", "fields": {
        "tableName": "orders", "partitionKey": hostile}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let dispatch = &plan["actions"][0]["sends"];
    assert_eq!(
        dispatch["body"]["inputs"]["partition_key"], hostile,
        "{dispatch:#}"
    );
    assert!(!plan.to_string().contains(DBAAS_TOKEN));
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn terraform_and_workflow_plans_show_the_files_and_the_dispatch() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), "http://127.0.0.1:9")).await;

    let (status, plan) = plan(
        &app,
        &json!({"item": "eks-cluster", "fields": {
        "clusterName": "payments", "environment": "dev", "kubernetesVersion": "1.34"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{plan:#}");
    assert_eq!(plan["errors"], json!([]), "{plan:#}");
    let pr = &plan["actions"][0]["sends"];
    assert_eq!(pr["repository"], "acme-corp/infra-live");
    let files = pr["files"].as_object().unwrap();
    let names: Vec<&String> = files.keys().collect();
    assert_eq!(
        names,
        [
            "eks/dev/payments/main.tf",
            "eks/dev/payments/variables.tf",
            "eks/dev/payments/terraform.tfvars",
            "eks/dev/payments/providers.tf",
            "eks/dev/payments/outputs.tf"
        ]
    );
    let tfvars = files["eks/dev/payments/terraform.tfvars"].as_str().unwrap();
    assert!(tfvars.contains("min_size           = 2"), "{tfvars}");
    assert!(tfvars.contains("CostCenter"), "{tfvars}");
    assert!(
        pr["calls"]
            .to_string()
            .contains("enablePullRequestAutoMerge"),
        "{pr:#}"
    );
    assert_eq!(pr["headers"]["authorization"], "Bearer ***");
    // The apply reads the pull request's URL, known only once it is opened.
    let apply = &plan["actions"][1]["sends"];
    assert_eq!(
        apply["url"],
        "https://api.github.com/repos/acme-corp/infra-live/actions/workflows/terraform-apply.yml/dispatches"
    );
    assert_eq!(
        apply["body"]["inputs"]["pull_request"],
        "(known after pullRequest)"
    );
    assert_eq!(
        apply["body"]["inputs"]["correlation_id"],
        "(assigned when the action starts)"
    );
    assert!(!plan.to_string().contains("ghp_plan_s3cret"));
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn an_admin_override_plans_the_ticket_instead_of_the_automation() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "http://127.0.0.1:9");
    let app = App::start(&config).await;
    let admin = app.token_for(&config, "root", &["platform-admins"]).await;
    let change = json!({"mode": "manual", "reason": "DBaaS outage"});
    let (set, _) = app
        .call(
            Method::PUT,
            "/catalog/items/rds-postgres/mode",
            &admin,
            Some(&change),
        )
        .await;
    assert_eq!(set, StatusCode::OK);
    let (_, plan) = plan(&app, &rds("orders")).await;
    assert_eq!(plan["mode"], "manual");
    assert_eq!(plan["actions"], json!([]));
    assert!(
        plan["forcedManual"]
            .as_str()
            .unwrap()
            .contains("DBaaS outage")
    );
    assert_eq!(plan["ticket"]["when"], "now");
    app.running.stop().await.unwrap();
}
