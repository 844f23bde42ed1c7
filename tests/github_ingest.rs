//! Catalog ingestion from GitHub (`POST /webhooks/github`): push payloads in GitHub's
//! documented format, signed as GitHub signs them; wiremock stands in for GitHub's REST
//! API (Git trees and blobs, commit statuses) and checks the requests' shapes.

use std::collections::BTreeMap;

use orchestrator_tests::app::App;
use orchestrator_tests::github_repo::{
    HOOK_SECRET, REPO, TOKEN, example_files, expect_status, push_event, serve_commit, sha,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::config::{Config, GithubCatalogConfig};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Calls of the Git Trees API so far (full synchronisations).
async fn tree_calls(github: &MockServer) -> usize {
    github
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().contains("/git/trees/"))
        .count()
}

/// Calls of the contents API so far (files fetched one by one).
async fn content_calls(github: &MockServer) -> Vec<String> {
    github
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().contains("/contents/"))
        .map(|r| r.url.path().to_owned())
        .collect()
}

struct Setup {
    app: App,
    github: MockServer,
    config: Config,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let github = MockServer::start().await;
    let catalog = dir.path().join("catalog");
    orchestrator_tests::copy_dir(&orchestrator_tests::example_catalog(), &catalog);
    let secrets = dir.path().join("secrets.json");
    std::fs::write(
        &secrets,
        json!({"github-token": TOKEN, "github-webhook": HOOK_SECRET}).to_string(),
    )
    .unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: catalog,
        data_dir: dir.path().join("data"),
        secrets_file: Some(secrets),
        worker: false,
        ..Config::default()
    };
    config.github.api_url = github.uri();
    config.github.catalog = Some(GithubCatalogConfig {
        repository: REPO.to_owned(),
        path: "catalog".to_owned(),
        ..GithubCatalogConfig::default()
    });
    Setup {
        app: App::start(&config).await,
        github,
        config,
        _dir: dir,
    }
}

/// Delivers `payload` as GitHub would, signed with `secret` (or unsigned).
async fn deliver(
    app: &App,
    event: &str,
    delivery: &str,
    payload: &Value,
    secret: Option<&str>,
) -> (StatusCode, Value) {
    let body = payload.to_string();
    let mut call = app
        .client
        .post(format!("{}/webhooks/github", app.base))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("user-agent", "GitHub-Hookshot/abc123");
    if let Some(secret) = secret {
        call = call.header(
            "x-hub-signature-256",
            shared::signing::sign(secret.as_bytes(), body.as_bytes()),
        );
    }
    let response = call.body(body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_push_to_the_branch_becomes_the_catalog_and_the_commit_says_so() {
    let s = setup().await;
    let mut files = example_files();
    let kafka = "catalog/items/messaging/kafka-topic.yaml";
    let edited = files[kafka].replacen("title: ", "title: Streaming ", 1);
    files.insert(kafka.to_owned(), edited);
    serve_commit(&s.github, &sha('b'), &files).await;
    expect_status(&s.github, &sha('b'), "success").await;

    let push = push_event("refs/heads/main", &sha('a'), &sha('b'));
    let (status, body) = deliver(&s.app, "push", "d-1", &push, Some(HOOK_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ingestion"]["outcome"], "live", "{body}");
    let item = s.app.get("/catalog/items/kafka-topic").await;
    assert!(
        item["title"].as_str().unwrap().starts_with("Streaming "),
        "{item}"
    );
    // Requests record the version (the commit) they were made against.
    let (_, request) = s
        .app
        .submit(
            &json!({"item": "kafka-topic", "fields": {"topicName": "orders.v1",
            "producerPrincipal": "arn:aws:iam::123456789012:role/orders"}}),
        )
        .await;
    assert_eq!(request["catalogVersion"], sha('b'));

    // A replay of the same delivery is answered with its report and fetches nothing
    // (the tree mock expects one call).
    let (status, replay) = deliver(&s.app, "push", "d-1", &push, Some(HOOK_SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replay["duplicate"], true);
    assert_eq!(replay["ingestion"]["outcome"], "live");
    s.app.running.stop().await.unwrap();

    // After a restart the ingested version is served, not the directory's.
    let app = App::start(&s.config).await;
    let item = app.get("/catalog/items/kafka-topic").await;
    assert!(
        item["title"].as_str().unwrap().starts_with("Streaming "),
        "{item}"
    );
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn an_invalid_push_is_rejected_whole_and_the_live_catalog_stays() {
    let s = setup().await;
    let mut files = example_files();
    // The cluster item is removed while the app-stack bundle still uses it, and another
    // file is not YAML at all.
    files.remove("catalog/items/compute/eks-cluster.yaml");
    files.insert(
        "catalog/items/messaging/broken.yaml".to_owned(),
        "kind: [unclosed".to_owned(),
    );
    serve_commit(&s.github, &sha('c'), &files).await;
    expect_status(&s.github, &sha('c'), "failure").await;
    let before = s.app.get("/catalog/items/eks-cluster").await;

    let push = push_event("refs/heads/main", &sha('a'), &sha('c'));
    let (status, body) = deliver(&s.app, "push", "d-2", &push, Some(HOOK_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = &body["ingestion"];
    assert_eq!(report["outcome"], "rejected", "{body}");
    let findings = report["findings"].to_string();
    assert!(
        findings.contains("items/messaging/broken.yaml:"),
        "{findings}"
    );
    assert!(findings.contains("eks-cluster"), "{findings}");
    assert_eq!(s.app.get("/catalog/items/eks-cluster").await, before);
    // The report stays for the authors to read.
    assert_eq!(s.app.get("/catalog/ingestions/d-2").await, *report);
    s.app.running.stop().await.unwrap();
}

#[tokio::test]
async fn unsigned_or_foreign_deliveries_change_nothing_and_other_refs_are_ignored() {
    let s = setup().await;
    let push = push_event("refs/heads/main", &sha('a'), &sha('d'));
    // No GitHub call is expected for any of these.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&s.github)
        .await;
    for secret in [None, Some("not-the-secret")] {
        let (status, body) = deliver(&s.app, "push", "d-3", &push, secret).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("X-Hub-Signature-256")
        );
    }
    let (status, body) = deliver(
        &s.app,
        "ping",
        "d-4",
        &json!({"zen": "Keep it logically awesome."}),
        Some(HOOK_SECRET),
    )
    .await;
    assert_eq!(
        (status, body["pong"].clone()),
        (StatusCode::OK, json!(true))
    );
    let (status, body) = deliver(
        &s.app,
        "issues",
        "d-5",
        &json!({"action": "opened"}),
        Some(HOOK_SECRET),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let tag = push_event("refs/tags/v1.2.0", &sha('0'), &sha('e'));
    let (_, body) = deliver(&s.app, "push", "d-6", &tag, Some(HOOK_SECRET)).await;
    assert_eq!(body["ingestion"]["outcome"], "ignored");
    assert!(
        body["ingestion"]["summary"]
            .as_str()
            .unwrap()
            .contains("tag push")
    );
    let mut deletion = push_event("refs/heads/main", &sha('a'), &sha('0'));
    deletion["deleted"] = json!(true);
    let (_, body) = deliver(&s.app, "push", "d-7", &deletion, Some(HOOK_SECRET)).await;
    assert!(
        body["ingestion"]["summary"]
            .as_str()
            .unwrap()
            .contains("deleted")
    );
    let other = push_event("refs/heads/feature/x", &sha('a'), &sha('f'));
    let (_, body) = deliver(&s.app, "push", "d-8", &other, Some(HOOK_SECRET)).await;
    assert_eq!(body["ingestion"]["outcome"], "ignored");
    s.app.running.stop().await.unwrap();
}

/// The example catalog with kafka-topic's title starting with `prefix`.
fn titled(prefix: &str) -> BTreeMap<String, String> {
    let mut files = example_files();
    let kafka = "catalog/items/messaging/kafka-topic.yaml";
    let edited = files[kafka].replacen("title: ", &format!("title: {prefix} "), 1);
    files.insert(kafka.to_owned(), edited);
    files
}

async fn kafka_title(app: &App) -> String {
    app.get("/catalog/items/kafka-topic").await["title"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn admins_list_versions_roll_back_to_one_and_sync_from_the_branch() {
    let s = setup().await;
    for (sha_char, prefix, delivery) in [('b', "Streaming", "d-10"), ('d', "Events", "d-11")] {
        serve_commit(&s.github, &sha(sha_char), &titled(prefix)).await;
        expect_status(&s.github, &sha(sha_char), "success").await;
        let push = push_event("refs/heads/main", &sha('a'), &sha(sha_char));
        let (_, body) = deliver(&s.app, "push", delivery, &push, Some(HOOK_SECRET)).await;
        assert_eq!(body["ingestion"]["outcome"], "live", "{body}");
    }
    assert!(kafka_title(&s.app).await.starts_with("Events "));
    let admin = s
        .app
        .token_for(&s.config, "carol", &["platform-admins"])
        .await;

    let (status, listed) = s
        .app
        .call(reqwest::Method::GET, "/catalog/versions", &admin, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["serving"], sha('d'));
    let versions = listed["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{listed}");
    let live: Vec<&Value> = versions.iter().filter(|v| v["live"] == true).collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["sha"], sha('d'));

    // Back to the earlier version.
    let activate = format!("/catalog/versions/{}/activate", sha('b'));
    let (status, _) = s
        .app
        .call(reqwest::Method::POST, &activate, &s.app.token, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "developers may not");
    let (status, body) = s
        .app
        .call(reqwest::Method::POST, &activate, &admin, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(kafka_title(&s.app).await.starts_with("Streaming "));
    let unknown = format!("/catalog/versions/{}/activate", sha('9'));
    let (status, _) = s
        .app
        .call(reqwest::Method::POST, &unknown, &admin, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A full sync from the branch's head.
    Mock::given(method("GET"))
        .and(path(format!("/repos/{REPO}/branches/main")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"name": "main", "commit": {"sha": sha('e')}, "protected": true}),
            ),
        )
        .expect(1)
        .mount(&s.github)
        .await;
    serve_commit(&s.github, &sha('e'), &titled("Topics")).await;
    expect_status(&s.github, &sha('e'), "success").await;
    let (status, body) = s
        .app
        .call(reqwest::Method::POST, "/catalog/sync", &admin, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ingestion"]["outcome"], "live", "{body}");
    assert!(kafka_title(&s.app).await.starts_with("Topics "));

    // Each of those changes is in the audit log.
    let (_, audit) = s
        .app
        .call(reqwest::Method::GET, "/audit", &admin, None)
        .await;
    let audited = audit.to_string();
    assert!(
        audited.contains("/catalog/sync") && audited.contains("/activate"),
        "{audited}"
    );
    s.app.running.stop().await.unwrap();
}

#[tokio::test]
async fn of_two_pushes_handled_at_once_the_later_commit_wins_whatever_the_order() {
    for older_first in [true, false] {
        let s = setup().await;
        serve_commit(&s.github, &sha('b'), &titled("Older")).await;
        serve_commit(&s.github, &sha('d'), &titled("Newer")).await;
        for c in ['b', 'd'] {
            expect_status(&s.github, &sha(c), "success").await;
        }
        let mut older = push_event("refs/heads/main", &sha('a'), &sha('b'));
        older["head_commit"]["timestamp"] = json!("2026-11-21T10:00:00+01:00");
        let mut newer = push_event("refs/heads/main", &sha('b'), &sha('d'));
        newer["head_commit"]["timestamp"] = json!("2026-11-21T10:30:00Z");
        let (first, second) = if older_first {
            ((&older, "d-older"), (&newer, "d-newer"))
        } else {
            ((&newer, "d-newer"), (&older, "d-older"))
        };
        let (a, b) = tokio::join!(
            deliver(&s.app, "push", first.1, first.0, Some(HOOK_SECRET)),
            deliver(&s.app, "push", second.1, second.0, Some(HOOK_SECRET)),
        );
        let outcomes = [
            a.1["ingestion"]["outcome"].clone(),
            b.1["ingestion"]["outcome"].clone(),
        ];
        assert!(outcomes.contains(&json!("live")), "{outcomes:?}");
        assert!(
            kafka_title(&s.app).await.starts_with("Newer "),
            "{outcomes:?}"
        );
        // The older one is kept all the same, for a roll back.
        let admin = s
            .app
            .token_for(&s.config, "carol", &["platform-admins"])
            .await;
        let (_, listed) = s
            .app
            .call(reqwest::Method::GET, "/catalog/versions", &admin, None)
            .await;
        assert_eq!(listed["serving"], sha('d'));
        assert_eq!(listed["versions"].as_array().unwrap().len(), 2);
        s.app.running.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_push_on_top_of_the_live_version_fetches_only_what_its_commits_changed() {
    let s = setup().await;
    serve_commit(&s.github, &sha('b'), &example_files()).await;
    expect_status(&s.github, &sha('b'), "success").await;
    let first = push_event("refs/heads/main", &sha('a'), &sha('b'));
    let (_, body) = deliver(&s.app, "push", "d-20", &first, Some(HOOK_SECRET)).await;
    assert_eq!(body["ingestion"]["outcome"], "live", "{body}");
    assert_eq!(
        tree_calls(&s.github).await,
        1,
        "the first push is a full synchronisation"
    );

    // The next push starts from the live commit and lists its changes: only the changed
    // file is fetched, at the new commit; a file outside the catalog's path is not.
    serve_commit(&s.github, &sha('d'), &titled("Events")).await;
    expect_status(&s.github, &sha('d'), "success").await;
    let mut next = push_event("refs/heads/main", &sha('b'), &sha('d'));
    next["commits"][0]["modified"] =
        json!(["catalog/items/messaging/kafka-topic.yaml", "README.md"]);
    let (_, body) = deliver(&s.app, "push", "d-21", &next, Some(HOOK_SECRET)).await;
    assert_eq!(body["ingestion"]["outcome"], "live", "{body}");
    assert!(kafka_title(&s.app).await.starts_with("Events "));
    assert_eq!(tree_calls(&s.github).await, 1, "no full synchronisation");
    assert_eq!(
        content_calls(&s.github).await,
        [format!(
            "/repos/{REPO}/contents/catalog/items/messaging/kafka-topic.yaml"
        )]
    );

    // A push that changes nothing of the catalog changes nothing.
    let mut docs = push_event("refs/heads/main", &sha('d'), &sha('e'));
    docs["commits"][0]["modified"] = json!(["README.md", "docs/guide.md"]);
    let (_, body) = deliver(&s.app, "push", "d-22", &docs, Some(HOOK_SECRET)).await;
    assert_eq!(body["ingestion"]["outcome"], "unchanged", "{body}");

    // A removal of an item a bundle still uses: the whole catalog is validated, so the
    // push is rejected, and the item stays served.
    expect_status(&s.github, &sha('f'), "failure").await;
    let mut removal = push_event("refs/heads/main", &sha('d'), &sha('f'));
    removal["commits"][0]["modified"] = json!([]);
    removal["commits"][0]["removed"] = json!(["catalog/items/messaging/sns-sqs-subscription.yaml"]);
    let (_, body) = deliver(&s.app, "push", "d-23", &removal, Some(HOOK_SECRET)).await;
    assert_eq!(body["ingestion"]["outcome"], "rejected", "{body}");
    assert!(
        body["ingestion"]["findings"][0]
            .as_str()
            .unwrap()
            .starts_with("bundles/event-pipeline.yaml:"),
        "{body}"
    );
    let (status, _) = s
        .app
        .call(
            reqwest::Method::GET,
            "/catalog/items/sns-sqs-subscription",
            &s.app.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tree_calls(&s.github).await, 1, "a removal fetches nothing");
    s.app.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_forced_push_or_one_listing_githubs_maximum_of_commits_is_synchronised_in_full() {
    let s = setup().await;
    serve_commit(&s.github, &sha('b'), &example_files()).await;
    expect_status(&s.github, &sha('b'), "success").await;
    let first = push_event("refs/heads/main", &sha('a'), &sha('b'));
    deliver(&s.app, "push", "d-30", &first, Some(HOOK_SECRET)).await;

    serve_commit(&s.github, &sha('d'), &titled("Forced")).await;
    expect_status(&s.github, &sha('d'), "success").await;
    let mut forced = push_event("refs/heads/main", &sha('b'), &sha('d'));
    forced["forced"] = json!(true);
    let (_, body) = deliver(&s.app, "push", "d-31", &forced, Some(HOOK_SECRET)).await;
    assert_eq!(body["ingestion"]["outcome"], "live", "{body}");
    assert_eq!(tree_calls(&s.github).await, 2);
    assert!(kafka_title(&s.app).await.starts_with("Forced "));

    serve_commit(&s.github, &sha('e'), &titled("Many")).await;
    expect_status(&s.github, &sha('e'), "success").await;
    let mut many = push_event("refs/heads/main", &sha('d'), &sha('e'));
    let commit = many["commits"][0].clone();
    many["commits"] = Value::Array(vec![commit; 2048]);
    let (_, body) = deliver(&s.app, "push", "d-32", &many, Some(HOOK_SECRET)).await;
    assert_eq!(body["ingestion"]["outcome"], "live", "{body}");
    assert_eq!(
        tree_calls(&s.github).await,
        3,
        "the listed commits may not be all"
    );
    assert!(kafka_title(&s.app).await.starts_with("Many "));
    assert!(content_calls(&s.github).await.is_empty());
    s.app.running.stop().await.unwrap();
}
