//! The `orchestrator` binary, run as a user runs it: exit codes, output formats, files.
// Helpers here fail the test loudly on unexpected errors, which is what a test wants.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn example() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../examples/catalog")
}

fn orchestrator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A copy of the example catalog to break.
fn copy_of_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    orchestrator_tests::copy_dir(&example(), dir.path());
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn validate_exits_zero_on_the_example_catalog() {
    let dir = example();
    let out = orchestrator(&["catalog", "validate", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("valid: 18 documents, 0 errors, 0 warnings"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn validate_json_lists_every_finding_with_its_location_and_exits_one() {
    let dir = copy_of_example();
    let rds = dir.path().join("items/database/rds-postgres.yaml");
    edit(&rds, "  owner: database", "  owner: dba");
    edit(&rds, "{{fields.instanceClass}}", "{{fields.instanceClas}}");
    let out = orchestrator(&[
        "catalog",
        "validate",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["documents"], 18);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{findings:#?}");
    let first = &findings[0];
    assert_eq!(first["file"], "items/database/rds-postgres.yaml");
    assert_eq!(first["line"], 10);
    assert_eq!(first["column"], 3);
    assert_eq!(first["pointer"], "/metadata/owner");
    assert_eq!(first["severity"], "error");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("owner `dba` is not a team")
    );
    assert_eq!(
        findings[1]["pointer"],
        "/spec/fulfillment/automated/actions/0/with/body/instanceClass"
    );
}

#[test]
fn validate_github_prints_workflow_commands_relative_to_the_repository() {
    let dir = copy_of_example();
    edit(
        &dir.path().join("bundles/app-stack.yaml"),
        "dependsOn: [cluster, database, appSecret]",
        "dependsOn: [cluster]",
    );
    // Run from the repository root, as a workflow does, so paths are repository-relative.
    let out = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .current_dir(dir.path())
        .args(["catalog", "validate", ".", "--format", "github"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let line = text.lines().next().unwrap();
    assert!(
        line.starts_with(
            "::error file=bundles/app-stack.yaml,line=80,col=13,title=catalog error::template"
        ),
        "{line}"
    );
    assert!(line.contains("add `appSecret` to dependsOn"), "{line}");
    assert_eq!(
        text.lines().count(),
        3,
        "two findings and the summary: {text}"
    );
}

#[test]
fn validate_exits_two_on_usage_and_io_errors() {
    assert_eq!(
        orchestrator(&["catalog", "validate", "/no/such/dir"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        orchestrator(&["catalog", "validate"]).status.code(),
        Some(2)
    );
    let dir = example();
    let out = orchestrator(&[
        "catalog",
        "validate",
        dir.to_str().unwrap(),
        "--format",
        "xml",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn warnings_alone_keep_the_exit_code_zero() {
    let dir = copy_of_example();
    edit(
        &dir.path().join("items/database/rds-postgres.yaml"),
        "        credentialsSecretArn: customfield_10304\n",
        "",
    );
    let out = orchestrator(&["catalog", "validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("warning: output `credentialsSecretArn` is declared"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn form_prints_a_schema_and_ui_schema_for_react_jsonschema_form() {
    let dir = example();
    let out = orchestrator(&["catalog", "form", dir.to_str().unwrap(), "rds-postgres"]);
    assert_eq!(out.status.code(), Some(0));
    let form: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(form["schema"]["type"], "object");
    assert_eq!(form["schema"]["title"], "RDS PostgreSQL database");
    assert_eq!(
        form["schema"]["properties"]["engineVersion"]["default"],
        "17"
    );
    assert_eq!(form["uiSchema"]["ui:order"][0], "databaseName");
    assert_eq!(
        form["uiSchema"]["ui:order"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        "*"
    );
    assert_eq!(form["uiSchema"]["storageGb"]["ui:widget"], "updown");

    let bundle = orchestrator(&["catalog", "form", dir.to_str().unwrap(), "event-pipeline"]);
    let form: Value = serde_json::from_slice(&bundle.stdout).unwrap();
    assert_eq!(form["uiSchema"]["filterPolicy"]["ui:widget"], "textarea");

    let missing = orchestrator(&["catalog", "form", dir.to_str().unwrap(), "nope"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn codeowners_check_passes_on_the_example_and_names_the_wrong_owner() {
    let dir = example();
    assert_eq!(
        orchestrator(&["catalog", "codeowners", "check", dir.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );

    let copy = copy_of_example();
    let codeowners = copy.path().join(".github/CODEOWNERS");
    let text = std::fs::read_to_string(&codeowners).unwrap();
    let rewritten: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("/items/database/") {
                "/items/database/ @acme-corp/compute-platform".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert_ne!(rewritten.join("\n") + "\n", text);
    std::fs::write(&codeowners, rewritten.join("\n") + "\n").unwrap();
    let out = orchestrator(&[
        "catalog",
        "codeowners",
        "check",
        copy.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{findings:#?}");
    for f in findings {
        assert!(f["file"].as_str().unwrap().starts_with("items/database/"));
        assert!(f["message"].as_str().unwrap().contains(
            "@acme-corp/compute-platform, but its owner team `database` is @acme-corp/dbre"
        ));
    }
}

#[test]
fn codeowners_generate_writes_a_file_that_check_accepts() {
    let copy = copy_of_example();
    std::fs::remove_file(copy.path().join(".github/CODEOWNERS")).unwrap();
    let dir = copy.path().to_str().unwrap();
    assert_eq!(
        orchestrator(&["catalog", "codeowners", "check", dir])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        orchestrator(&["catalog", "codeowners", "generate", dir])
            .status
            .code(),
        Some(0)
    );
    let generated = std::fs::read_to_string(copy.path().join(".github/CODEOWNERS")).unwrap();
    assert_eq!(
        generated,
        std::fs::read_to_string(example().join(".github/CODEOWNERS")).unwrap()
    );
    assert_eq!(
        orchestrator(&["catalog", "codeowners", "check", dir])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn the_example_codeowners_is_what_generate_writes() {
    // Keeps the checked-in file true to the catalog: regenerate it after moving documents.
    let dir = example();
    let out = orchestrator(&[
        "catalog",
        "codeowners",
        "generate",
        dir.to_str().unwrap(),
        "--stdout",
    ]);
    assert_eq!(
        stdout(&out),
        std::fs::read_to_string(dir.join(".github/CODEOWNERS")).unwrap()
    );
}

#[test]
fn plan_prints_every_call_of_an_item_and_exits_by_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    let fields = dir.path().join("fields.yaml");
    std::fs::write(&fields, "queueName: orders\nfifo: false\n").unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "environment:\n  messagingApiUrl: https://messaging.acme.example/api\n",
    )
    .unwrap();
    // The messaging team's API-backed queue: a `rest` item, whose calls the plan shows.
    let copy = copy_of_example();
    orchestrator_tests::with_platform_api_items(copy.path());
    let catalog = copy.path().to_path_buf();
    let (catalog, fields_s, config_s) = (
        catalog.to_str().unwrap(),
        fields.to_str().unwrap(),
        config.to_str().unwrap(),
    );

    let out = orchestrator(&[
        "plan",
        "sqs-queue",
        "--fields",
        fields_s,
        "--catalog",
        catalog,
        "--config",
        config_s,
        "--as",
        "bob",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let sends = &plan["actions"][0]["sends"];
    assert_eq!(sends["method"], "PUT");
    assert_eq!(
        sends["url"],
        "https://messaging.acme.example/api/queues/orders"
    );
    assert_eq!(sends["headers"]["authorization"], "Bearer ***");
    assert_eq!(sends["body"]["tags"]["requester"], "bob");

    // People read the text form; without a configuration, environment values are shown as
    // placeholders and said to be.
    let out = orchestrator(&[
        "plan",
        "sqs-queue",
        "--fields",
        fields_s,
        "--catalog",
        catalog,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("PUT https://messagingapiurl.environment.invalid/queues/orders"),
        "{text}"
    );
    assert!(text.contains("authorization: Bearer ***"), "{text}");
    assert!(
        text.contains("warning: environment.messagingApiUrl is not configured"),
        "{text}"
    );

    // Invalid fields: the file and the field, exit 1.
    std::fs::write(&fields, "queueName: 42\n").unwrap();
    let out = orchestrator(&[
        "plan",
        "sqs-queue",
        "--fields",
        fields_s,
        "--catalog",
        catalog,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fields.yaml: /queueName"), "{err}");

    // An unknown item: a usage error.
    let out = orchestrator(&["plan", "nope", "--fields", fields_s, "--catalog", catalog]);
    assert_eq!(out.status.code(), Some(2));
}

/// `plan --resource`: a resource local mode recorded, planned for a change and a
/// deletion from the command line with the API's use case; nothing is called or stored.
#[tokio::test(flavor = "multi_thread")]
async fn plan_resource_shows_the_input_diff_and_the_calls_of_a_change_and_a_deletion() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let dir = tempfile::tempdir().unwrap();
    let api = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"id": "vol-data", "accessKey": "k"})),
        )
        .mount(&api)
        .await;
    let catalog = orchestrator_tests::volume_catalog(dir.path());
    let data = dir.path().join("data");
    let mut config = shared::config::Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: catalog.clone(),
        data_dir: data.clone(),
        ..Default::default()
    };
    config.environment = serde_json::json!({"api": api.uri()})
        .as_object()
        .unwrap()
        .clone();
    config.resources.reconcile_seconds = 0;
    let app = orchestrator_tests::app::App::start(&config).await;
    let (_, body) = app
        .submit(&serde_json::json!({"item": "volume", "fields": {"name": "data", "size": 20}}))
        .await;
    let id = body["id"].as_str().unwrap().to_owned();
    app.wait_for(&id, "completed").await;
    app.running.stop().await.unwrap();
    let calls_before = api.received_requests().await.unwrap().len();

    let settings = dir.path().join("config.json");
    std::fs::write(
        &settings,
        serde_json::json!({"catalogDir": catalog, "dataDir": data, "environment": {"api": api.uri()}})
            .to_string(),
    )
    .unwrap();
    let fields = dir.path().join("fields.yaml");
    std::fs::write(&fields, "name: data\nsize: 50\n").unwrap();
    let (settings_s, fields_s) = (settings.to_str().unwrap(), fields.to_str().unwrap());
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "--resource", &id, "--config", settings_s];
        args.extend_from_slice(extra);
        orchestrator(&args)
    };

    let out = plan(&["--fields", fields_s, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["operation"], "update");
    assert_eq!(json["resource"], id.as_str());
    assert_eq!(
        json["changes"],
        serde_json::json!([{"field": "size", "before": 20, "after": 50}])
    );
    assert_eq!(json["actions"][0]["id"], "put");
    assert_eq!(
        json["actions"][0]["sends"]["url"],
        format!("{}/volumes/data", api.uri())
    );
    assert_eq!(json["verification"]["outcome"], "skipped");
    assert_eq!(json["errors"], serde_json::json!([]));

    // The same plan for people.
    let out = plan(&["--fields", fields_s]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("size: 20 -> 50"), "{text}");
    assert!(
        text.contains(&format!("PUT {}/volumes/data", api.uri())),
        "{text}"
    );

    // A deletion runs the item's deprovision actions with the recorded outputs.
    let out = plan(&["--delete", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["operation"], "delete");
    assert_eq!(
        json["actions"][0]["sends"]["url"],
        format!("{}/volumes/vol-data", api.uri())
    );

    // Fields the form refuses: the file and the pointer, exit 1.
    std::fs::write(&fields, "name: data\nsize: big\n").unwrap();
    let out = plan(&["--fields", fields_s]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fields.yaml: /size"), "{err}");

    // No such resource: a usage error that names it.
    let out = orchestrator(&[
        "plan",
        "--resource",
        "nope",
        "--fields",
        fields_s,
        "--config",
        settings_s,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no resource `nope`"));

    // Nothing was called: a plan only describes.
    assert_eq!(api.received_requests().await.unwrap().len(), calls_before);
}

#[tokio::test]
async fn an_admin_exports_the_audit_log_since_a_date_as_json_lines() {
    use shared::ports::AuditLog;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let now = time::OffsetDateTime::now_utc();
    let mut recent = Vec::new();
    {
        let log = shared::adapters::local::SqliteAuditLog::new(
            shared::adapters::local::Db::open(&data).unwrap(),
        );
        for (n, age) in [40, 39, 38, 0, 0, 0].into_iter().enumerate() {
            let at = now - std::time::Duration::from_secs(age * 24 * 3600 + 3600 - n as u64);
            let id = shared::requests::model::RequestId::new_at(at).to_string();
            log.append(&shared::requests::model::AuditEntry {
                id: id.clone(),
                at,
                actor: "alice".to_owned(),
                action: "POST /requests".to_owned(),
                target: Some(format!("r{n}")),
                source: None,
                outcome: 202,
                detail: None,
                correlation_id: format!("c{n}"),
            })
            .await
            .unwrap();
            if age == 0 {
                recent.push(id);
            }
        }
        log.list(&Default::default()).await.unwrap();
    }
    let (app, admin) = api_of(data).await;
    let since = (now - std::time::Duration::from_secs(30 * 24 * 3600))
        .date()
        .to_string();
    let export = |since: String, token: String| {
        client(
            &app,
            vec!["audit".into(), "export".into(), "--since".into(), since],
            token,
        )
    };
    let out = export(since.clone(), admin).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = lines.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, recent, "the entries since the date, oldest first");
    assert_eq!(lines[0]["action"], "POST /requests");

    // A developer is refused, with the API's reason; a date that is none is a usage error.
    let out = export(since, app.token.clone()).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("403") && stderr.contains("admins"),
        "{stderr}"
    );
    let out = export("last tuesday".to_owned(), app.token.clone()).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_generated_history_shows_what_automation_saved_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let history = |data: &Path| {
        Command::new(env!("CARGO_BIN_EXE_orchestrator"))
            .args(["sandbox", "history", "--weeks", "30", "--catalog"])
            .arg(example())
            .arg("--data")
            .arg(data)
            .output()
            .unwrap()
    };
    let out = history(&data);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("generated-history"));
    // Once: a second run leaves the history as it is.
    let again = history(&data);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds"));

    let (app, admin) = api_of(data).await;
    let report = |mut args: Vec<String>, token: String| {
        args.insert(0, "report".into());
        client(&app, args, token)
    };
    let from = (time::OffsetDateTime::now_utc() - time::Duration::weeks(31))
        .date()
        .to_string();

    let out = report(vec!["--from".into(), from.clone()], admin.clone()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let markdown = stdout(&out);
    assert!(
        markdown.starts_with("# Lead time, requests submitted"),
        "{markdown}"
    );
    assert!(
        markdown.contains("## From manual to automated"),
        "{markdown}"
    );
    // Every generated item went from days by hand to minutes: a reduction over 90 %.
    let switches: Vec<&str> = markdown
        .split("## From manual to automated")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| item"))
        .collect();
    assert_eq!(switches.len(), 4, "{markdown}");
    for row in switches {
        let reduction: f64 = row
            .split('|')
            .nth(5)
            .unwrap()
            .trim()
            .trim_end_matches(" %")
            .parse()
            .unwrap();
        assert!(reduction > 90.0, "{row}");
    }

    let out = report(
        vec![
            "--from".into(),
            from.clone(),
            "--group-by".into(),
            "mode".into(),
            "--format".into(),
            "csv".into(),
        ],
        admin.clone(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let csv = stdout(&out);
    let groups: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(groups, ["all", "automated", "manual"], "{csv}");

    // A developer sees only their own requests: none of the generated ones.
    let out = report(
        vec![
            "--from".into(),
            from.clone(),
            "--format".into(),
            "csv".into(),
        ],
        app.token.clone(),
    )
    .await;
    assert!(
        stdout(&out).lines().nth(1).unwrap().starts_with("all,0,"),
        "{}",
        stdout(&out)
    );
    // The API's refusals exit 1 with its reason; flags that are no dates exit 2.
    let out = report(vec!["--team".into(), "database".into()], app.token.clone()).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
    let out = report(vec!["--from".into(), "last week".into()], admin).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from"));
    app.running.stop().await.unwrap();
}

/// Local mode on `data` (the example catalog, no worker), and an admin's token.
async fn api_of(data: PathBuf) -> (orchestrator_tests::app::App, String) {
    let config = shared::config::Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: example(),
        data_dir: data,
        worker: false,
        ..Default::default()
    };
    let app = orchestrator_tests::app::App::start(&config).await;
    let admin = app.token_for(&config, "root", &["platform-admins"]).await;
    (app, admin)
}

/// `orchestrator ARGS --url <app>` with `token` in ORCHESTRATOR_TOKEN, off the runtime's
/// threads (the app answers on them).
async fn client(app: &orchestrator_tests::app::App, args: Vec<String>, token: String) -> Output {
    let base = app.base.clone();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_orchestrator"))
            .args(args)
            .args(["--url", &base])
            .env("ORCHESTRATOR_TOKEN", token)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}
