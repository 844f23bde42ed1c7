//! The API in local mode, black-box: the app starts on port 0 with a fresh data directory
//! and the example catalog, and the tests talk HTTP to it.

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use shared::adapters::local::LocalSecrets;
use shared::config::Config;
use shared::local::Running;

struct App {
    running: Running,
    base: String,
    client: Client,
    alice: String,
    bob: String,
    dave: String,
    carol: String,
    _dirs: Vec<tempfile::TempDir>,
}

impl App {
    async fn start() -> App {
        Self::start_with_catalog(orchestrator_tests::example_catalog(), vec![]).await
    }

    async fn start_with_catalog(
        catalog: std::path::PathBuf,
        mut dirs: Vec<tempfile::TempDir>,
    ) -> App {
        let data = tempfile::tempdir().unwrap();
        let config = Config {
            listen: "127.0.0.1:0".to_owned(),
            catalog_dir: catalog,
            data_dir: data.path().to_owned(),
            // The API alone: requests stay as submitted, whatever the machine's load.
            worker: false,
            ..Config::default()
        };
        let running = shared::local::start(&config).await.unwrap();
        let secret = shared::local::dev_secret(&config, &LocalSecrets::from_pairs([]))
            .await
            .unwrap();
        let token = |sub: &str, groups: &[&str]| {
            let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            shared::http::auth::dev_token(
                &secret,
                sub,
                None,
                &groups,
                std::time::Duration::from_secs(600),
            )
            .unwrap()
        };
        dirs.push(data);
        App {
            base: format!("http://{}", running.addr),
            running,
            client: Client::new(),
            alice: token("alice", &["developers"]),
            bob: token("bob", &["developers", "messaging"]),
            dave: token("dave", &["developers", "compute"]),
            carol: token("carol", &["platform-admins"]),
            _dirs: dirs,
        }
    }

    fn call(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
    }

    async fn get(&self, path: &str, token: &str) -> Response {
        self.call(Method::GET, path, token).send().await.unwrap()
    }

    /// `GET path` as `token`, its body as JSON.
    async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get(path, token).await.json().await.unwrap()
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(Method::POST, path, token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Submits a valid kafka-topic request as `token`, returning the request.
    async fn submit_kafka(&self, token: &str, topic: &str) -> Value {
        let response = self.post("/requests", token, kafka(topic)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        response.json().await.unwrap()
    }
}

fn kafka(topic: &str) -> Value {
    json!({"item": "kafka-topic", "fields": {"topicName": topic, "producerPrincipal": "arn:aws:iam::123456789012:role/orders"}})
}

async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("https://orchestrator.dev/problems/")
    );
    body
}

#[tokio::test]
async fn the_portal_is_served_at_the_root_next_to_the_api() {
    let portal = tempfile::tempdir().unwrap();
    std::fs::create_dir(portal.path().join("assets")).unwrap();
    std::fs::write(
        portal.path().join("index.html"),
        "<!doctype html><title>Developer portal</title><script src=\"./assets/app.js\"></script>",
    )
    .unwrap();
    std::fs::write(portal.path().join("assets/app.js"), "console.log('portal')").unwrap();
    std::fs::write(portal.path().join("secret.txt"), "not an asset").unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: orchestrator_tests::example_catalog(),
        data_dir: data.path().to_owned(),
        worker: false,
        portal_dir: portal.path().to_owned(),
        ..Config::default()
    };
    let running = shared::local::start(&config).await.unwrap();
    let base = format!("http://{}", running.addr);
    let client = Client::new();
    let get = |path: &str| client.get(format!("{base}{path}")).send();

    // The page needs no token (the portal signs in against the API), and may only load
    // what this origin serves.
    let page = get("/").await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<title>Developer portal</title>")
    );
    let script = get("/assets/app.js").await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    // Only the build's assets: nothing beside or above them.
    for path in [
        "/assets/../secret.txt",
        "/assets/%2e%2e/secret.txt",
        "/secret.txt",
    ] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            !response.text().await.unwrap().contains("not an asset"),
            "{path}"
        );
    }
    let settings: Value = get("/config.json").await.unwrap().json().await.unwrap();
    assert_eq!(settings, json!({"apiUrl": "", "sandbox": false}));
    // The API is where it was, and still wants its token.
    assert_eq!(
        get("/catalog/items").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get("/no/such/endpoint").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    running.stop().await.unwrap();

    // Not built: the root says how to build it; the API works regardless.
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: data.path().to_owned(),
        portal_dir: portal.path().join("missing"),
        ..config
    };
    let running = shared::local::start(&config).await.unwrap();
    let base = format!("http://{}", running.addr);
    let page = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = page.text().await.unwrap();
    assert!(text.contains("npm run build --prefix portal"), "{text}");
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let app = App::start().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().contains_key("x-request-id"));
    let ready = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn the_api_needs_a_valid_bearer_token() {
    let app = App::start().await;
    let none = app
        .client
        .get(format!("{}/catalog/items", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    problem(none, StatusCode::UNAUTHORIZED).await;
    let forged = app
        .get(
            "/catalog/items",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJl",
        )
        .await;
    problem(forged, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn the_catalog_can_be_browsed_and_filtered() {
    let app = App::start().await;
    let all: Value = app.get_json("/catalog/items", &app.alice).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 14);
    assert!(
        all["catalogVersion"]
            .as_str()
            .unwrap()
            .starts_with("local-")
    );
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let db: Value = app
        .get_json("/catalog/items?category=database", &app.alice)
        .await;
    assert_eq!(names(&db), ["dynamodb-table", "rds-postgres"]);
    let tagged: Value = app.get_json("/catalog/items?tag=kafka", &app.alice).await;
    assert_eq!(names(&tagged), ["kafka-topic"]);
    let owned: Value = app
        .get_json("/catalog/items?owner=compute&q=AUTO", &app.alice)
        .await;
    assert_eq!(names(&owned), ["ec2-autoscaling-group"]);

    // A page at a time in name order, the cursor bound to the filters.
    let mut paged = Vec::new();
    let mut path = "/catalog/items?limit=4".to_owned();
    loop {
        let page: Value = app.get_json(&path, &app.alice).await;
        assert!(page["items"].as_array().unwrap().len() <= 4);
        paged.extend(names(&page));
        match page["next"].as_str() {
            Some(cursor) => path = format!("/catalog/items?limit=4&cursor={cursor}"),
            None => break,
        }
    }
    let mut sorted = names(&all);
    sorted.sort();
    assert_eq!(paged, sorted);
    assert_eq!(names(&all), sorted, "the whole list is in name order too");
    let first: Value = app.get_json("/catalog/items?limit=1", &app.alice).await;
    let cursor = first["next"].as_str().unwrap();
    let refused = app
        .get(
            &format!("/catalog/items?limit=1&category=database&cursor={cursor}"),
            &app.alice,
        )
        .await;
    assert_eq!(
        problem(refused, StatusCode::BAD_REQUEST).await["parameter"],
        "cursor"
    );
    for bad in ["limit=0", "limit=501", "cursor=nope"] {
        let response = app
            .get(&format!("/catalog/bundles?{bad}"), &app.alice)
            .await;
        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["parameter"], bad.split('=').next().unwrap(), "{bad}");
    }
    // The filters' choices, from every item and bundle, without listing them.
    let facets: Value = app.get_json("/catalog/facets", &app.alice).await;
    let categories = facets["categories"].as_array().unwrap();
    assert!(categories.contains(&json!("database")), "{facets}");
    assert!(
        facets["owners"]
            .as_array()
            .unwrap()
            .contains(&json!("compute"))
    );
    assert!(facets["tags"].as_array().unwrap().contains(&json!("kafka")));

    let item: Value = app
        .get_json("/catalog/items/rds-postgres", &app.alice)
        .await;
    assert_eq!(item["mode"], "automated");
    assert_eq!(item["manualFallback"], true);
    assert_eq!(
        item["form"]["schema"]["properties"]["engineVersion"]["default"],
        "17"
    );
    assert_eq!(item["form"]["uiSchema"]["ui:order"][0], "databaseName");

    let bundle: Value = app.get_json("/catalog/bundles/app-stack", &app.alice).await;
    assert_eq!(
        bundle["components"][1],
        json!({"id": "database", "item": "rds-postgres", "dependsOn": ["cluster"]})
    );
    let graph = bundle["graph"].as_str().unwrap();
    assert!(graph.starts_with("flowchart TD\n"), "{graph}");
    assert!(graph.contains("  c_cluster --> c_database\n"), "{graph}");
    let definition: Value = app
        .get_json("/catalog/bundles/app-stack/definition", &app.alice)
        .await;
    assert_eq!(definition["StartAt"], "Start");
    assert_eq!(
        definition["States"]["Provision cluster"]["Next"],
        "Provision database"
    );
    problem(
        app.get("/catalog/bundles/nope/definition", &app.alice)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let bundles: Value = app
        .get_json("/catalog/bundles?owner=messaging", &app.alice)
        .await;
    assert_eq!(names(&bundles), ["event-pipeline"]);

    problem(
        app.get("/catalog/items/nope", &app.alice).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/no/such/route", &app.alice).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_request_is_accepted_with_defaults_applied_and_has_a_timeline() {
    let app = App::start().await;
    let response = app.post("/requests", &app.alice, kafka("orders.v1")).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let request: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/requests/{}", request["id"].as_str().unwrap())
    );
    assert_eq!(request["status"], "submitted");
    assert_eq!(request["owner"], "messaging");
    assert_eq!(request["fields"]["partitions"], 6, "defaults are applied");
    assert!(request.get("fingerprint").is_none());

    let fetched: Value = app.get_json(&location, &app.alice).await;
    assert_eq!(fetched["id"], request["id"]);
    let events: Value = app
        .get_json(&format!("{location}/events"), &app.alice)
        .await;
    assert_eq!(events["events"][0]["kind"], "submitted");
    assert_eq!(events["events"][0]["actor"], "alice");
    let mine: Value = app.get_json("/requests", &app.alice).await;
    assert_eq!(mine["items"][0]["id"], request["id"]);
}

#[tokio::test]
async fn invalid_fields_are_listed_with_pointers_and_rules() {
    let app = App::start().await;
    let body = json!({"item": "kafka-topic", "fields": {"topicName": "Bad Name", "partitions": 0}});
    let p = problem(
        app.post("/requests", &app.alice, body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let errors: Vec<(String, String)> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap().to_owned(),
                e["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        errors.contains(&("/fields".to_owned(), "required".to_owned())),
        "{errors:?}"
    );
    assert!(
        errors.contains(&("/fields/topicName".to_owned(), "pattern".to_owned())),
        "{errors:?}"
    );
    assert!(
        errors.contains(&("/fields/partitions".to_owned(), "minimum".to_owned())),
        "{errors:?}"
    );
    let missing = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["rule"] == "required")
        .unwrap();
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains("`producerPrincipal`")
    );

    // Conditional fields: prod clusters need a cost center.
    let eks =
        json!({"item": "eks-cluster", "fields": {"clusterName": "pay", "environment": "prod"}});
    let p = problem(
        app.post("/requests", &app.alice, eks).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("costCenter"),
        "{p}"
    );

    problem(
        app.post("/requests", &app.alice, json!({"item": "nope"}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let both = json!({"item": "kafka-topic", "bundle": "app-stack"});
    problem(
        app.post("/requests", &app.alice, both).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn a_bad_query_parameter_is_a_problem_that_names_it() {
    let app = App::start().await;
    for (method, path, parameter) in [
        (Method::GET, "/requests?limit=-1", "limit"),
        (
            Method::GET,
            "/requests?limit=99999999999999999999999",
            "limit",
        ),
        (Method::GET, "/resources?limit=many", "limit"),
        (Method::POST, "/requests?dryRun=510510", "dryRun"),
        (Method::DELETE, "/resources/r-1?force=yes", "force"),
        (Method::GET, "/requests?status=done", "status"),
        (Method::GET, "/requests?status=", "status"),
        (Method::GET, "/requests?cursor=0193a1b2-made-up", "cursor"),
        (Method::GET, "/resources?cursor=x.y", "cursor"),
        (Method::GET, "/audit?cursor=.", "cursor"),
    ] {
        let response = app
            .call(method.clone(), path, &app.carol)
            .json(&json!({"item": "kafka-topic", "fields": {}}))
            .send()
            .await
            .unwrap();
        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["parameter"], parameter, "{method} {path}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("`{parameter}`"))),
            "{method} {path}: {body}"
        );
    }
}

#[tokio::test]
async fn malformed_oversized_and_non_json_bodies_get_clear_4xx() {
    let app = App::start().await;
    let send = |body: Vec<u8>, content_type: &str| {
        app.call(Method::POST, "/requests", &app.alice)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    problem(
        send(b"{\"item\": ".to_vec(), "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        send(b"[1, 2]".to_vec(), "application/json").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let unknown = serde_json::to_vec(&json!({"item": "kafka-topic", "feilds": {}})).unwrap();
    let p = problem(
        send(unknown, "application/json").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("feilds"), "{p}");
    // A mistyped value is named by its path.
    let mistyped = serde_json::to_vec(&json!({"item": "kafka-topic", "fields": 5})).unwrap();
    let p = problem(
        send(mistyped, "application/json").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("fields: invalid type"),
        "{p}"
    );
    problem(
        send(b"item=x".to_vec(), "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    let huge = format!(
        "{{\"item\": \"kafka-topic\", \"fields\": {{\"topicName\": \"{}\"}}}}",
        "x".repeat(300 * 1024)
    );
    problem(
        send(huge.into_bytes(), "application/json").await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    // Nothing was stored by any of these.
    let mine: Value = app.get_json("/requests", &app.alice).await;
    assert_eq!(mine["items"], json!([]));
    // JSON with a charset is JSON.
    let ok = send(
        serde_json::to_vec(&kafka("orders.v1")).unwrap(),
        "application/json; charset=utf-8",
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_original_and_refuses_a_different_body() {
    let app = App::start().await;
    let send = |body: Value| {
        app.call(Method::POST, "/requests", &app.alice)
            .header("idempotency-key", "abc-1")
            .json(&body)
            .send()
    };
    let first = send(kafka("orders.v1")).await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    let replay = send(kafka("orders.v1")).await.unwrap();
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["id"], first["id"]);
    problem(
        send(kafka("payments.v1")).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let mine: Value = app.get_json("/requests", &app.alice).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    // Another requester's key space is separate.
    let bob = app
        .call(Method::POST, "/requests", &app.bob)
        .header("idempotency-key", "abc-1")
        .json(&kafka("payments.v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(bob.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn requests_are_visible_to_the_requester_the_owner_team_and_admins_only() {
    let app = App::start().await;
    let request = app.submit_kafka(&app.alice, "orders.v1").await;
    let path = format!("/requests/{}", request["id"].as_str().unwrap());
    assert_eq!(app.get(&path, &app.alice).await.status(), StatusCode::OK);
    assert_eq!(
        app.get(&path, &app.bob).await.status(),
        StatusCode::OK,
        "bob is in the owner team (messaging)"
    );
    assert_eq!(
        app.get(&path, &app.carol).await.status(),
        StatusCode::OK,
        "carol is an admin"
    );
    problem(app.get(&path, &app.dave).await, StatusCode::NOT_FOUND).await;
    problem(
        app.get(&format!("{path}/events"), &app.dave).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Text that is no request id names no request: the same 404, saying which.
    let nothing = problem(
        app.get("/requests/not-a-request", &app.carol).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(nothing["detail"], "no request not-a-request", "{nothing}");

    // Listing: mine by default; an owner team's with membership; others' never.
    let bobs: Value = app.get_json("/requests", &app.bob).await;
    assert_eq!(bobs["items"], json!([]));
    let team: Value = app.get_json("/requests?owner=messaging", &app.bob).await;
    assert_eq!(team["items"][0]["id"], request["id"]);
    problem(
        app.get("/requests?owner=messaging", &app.dave).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.get("/requests?requester=alice", &app.dave).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let all: Value = app.get_json("/requests?requester=alice", &app.carol).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let filtered: Value = app.get_json("/requests?status=completed", &app.alice).await;
    assert_eq!(filtered["items"], json!([]));
    problem(
        app.get("/requests?status=done", &app.alice).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn access_groups_limit_who_may_request_an_item() {
    let catalog = tempfile::tempdir().unwrap();
    orchestrator_tests::copy_dir(&orchestrator_tests::example_catalog(), catalog.path());
    let item = catalog.path().join("items/messaging/kafka-topic.yaml");
    let text = std::fs::read_to_string(&item).unwrap();
    std::fs::write(
        &item,
        text.replace(
            "  lifecycle: production\n",
            "  lifecycle: production\n  accessGroups: [streaming]\n",
        ),
    )
    .unwrap();
    let app = App::start_with_catalog(catalog.path().to_owned(), vec![catalog]).await;
    let listed: Value = app.get_json("/catalog/items/kafka-topic", &app.alice).await;
    assert_eq!(listed["requestable"], false);
    let p = problem(
        app.post("/requests", &app.alice, kafka("orders.v1")).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("streaming"));
    assert_eq!(
        app.post("/requests", &app.carol, kafka("orders.v1"))
            .await
            .status(),
        StatusCode::ACCEPTED,
        "admins may"
    );
}

#[tokio::test]
async fn a_request_can_be_cancelled_by_its_requester_once() {
    let app = App::start().await;
    let request = app.submit_kafka(&app.alice, "orders.v1").await;
    let path = format!("/requests/{}/cancel", request["id"].as_str().unwrap());
    problem(
        app.post(&path, &app.dave, json!({})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let cancelled = app
        .post(&path, &app.alice, json!({"reason": "wrong topic"}))
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(
        (cancelled["status"].as_str(), cancelled["reason"].as_str()),
        (Some("cancelled"), Some("wrong topic"))
    );
    let again = app
        .call(Method::POST, &path, &app.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "cancelling twice changes nothing"
    );
    let events: Value = app
        .get(
            &format!("/requests/{}/events", request["id"].as_str().unwrap()),
            &app.alice,
        )
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["submitted", "cancelled"]);
}

#[tokio::test]
async fn every_state_changing_call_is_audited_for_admins() {
    let app = App::start().await;
    let request = app.submit_kafka(&app.alice, "orders.v1").await;
    problem(
        app.post("/requests", &app.alice, json!({"item": "nope"}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let denied = app
        .client
        .post(format!("{}/requests", app.base))
        .json(&kafka("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    app.get("/catalog/items", &app.alice).await; // reads are not audited

    problem(app.get("/audit", &app.alice).await, StatusCode::FORBIDDEN).await;
    let audit: Value = app.get_json("/audit", &app.carol).await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{entries:#?}");
    let accepted = entries.iter().find(|e| e["outcome"] == 202).unwrap();
    assert_eq!(accepted["actor"], "alice");
    assert_eq!(accepted["action"], "POST /requests");
    assert_eq!(accepted["target"], request["id"]);
    assert_eq!(accepted["source"], "127.0.0.1");
    assert!(!accepted["correlationId"].as_str().unwrap().is_empty());
    assert!(
        entries
            .iter()
            .any(|e| e["outcome"] == 404 && e["actor"] == "alice")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["outcome"] == 401 && e["actor"] == "anonymous")
    );
    let alices: Value = app.get_json("/audit?actor=alice", &app.carol).await;
    assert_eq!(alices["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn requests_survive_a_restart_on_the_same_data_directory() {
    use orchestrator_tests::app::App as Harness;
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: orchestrator_tests::example_catalog(),
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    let first = Harness::start(&config).await;
    let (status, created) = first.submit(&kafka("orders.v1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    first.running.stop().await.unwrap();
    let second = Harness::start(&config).await;
    let id = created["id"].as_str().unwrap();
    // With the token signed before the restart: the dev secret lives in the data directory.
    let (status, fetched) = second
        .call(Method::GET, &format!("/requests/{id}"), &first.token, None)
        .await;
    assert_eq!(
        (status, &fetched["id"]),
        (StatusCode::OK, &created["id"]),
        "the dev token and the request both survive"
    );
    // The call's audit entry, queued without waiting, was settled by the stop.
    let admin = second
        .token_for(&config, "carol", &["platform-admins"])
        .await;
    let (_, audit) = second
        .call(Method::GET, "/audit?actor=alice", &admin, None)
        .await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["action"], "POST /requests");
    assert_eq!(entries[0]["target"], created["id"]);
    assert_eq!(entries[0]["outcome"], 202);
    second.running.stop().await.unwrap();
}

/// Validates `instance` against the OpenAPI document's schema `name`.
fn assert_matches_schema(spec: &Value, name: &str, instance: &Value) {
    let schema =
        json!({"$ref": format!("#/components/schemas/{name}"), "components": spec["components"]});
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "response does not match schema {name}: {errors:#?}\n{instance:#}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_what_is_served() {
    let app = App::start().await;
    let spec: Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // Every documented operation is routed (never the fallback's "no such endpoint").
    let request = app.submit_kafka(&app.alice, "orders.v1").await;
    let id = request["id"].as_str().unwrap();
    let mut operations = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", id).replace("{name}", "kafka-topic");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .call(method.clone(), &concrete, &app.carol)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!(
                !(status == StatusCode::NOT_FOUND && body["detail"] == "no such endpoint"),
                "{method} {path} is documented but not routed"
            );
            operations += 1;
        }
    }
    assert_eq!(operations, 37);
    for path in [
        "/catalog/items",
        "/requests",
        "/requests/{id}",
        "/requests/{id}/cancel",
        "/requests/{id}/redrive",
        "/requests/{id}/comments",
        "/requests/{id}/resolve",
        "/requests/{id}/events",
        "/requests/{id}/execution",
        "/catalog/items/{name}/mode",
        "/catalog/bundles/{name}/definition",
        "/audit",
        "/webhooks/jira",
        "/webhooks/github",
        "/resources",
        "/resources/{id}",
        "/resources/{id}/history",
        "/resources/{id}/changes",
        "/resources/{id}/verify",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} is not documented"
        );
    }

    // Responses match the schemas the document gives them.
    let other = app.submit_kafka(&app.alice, "payments.v1").await;
    let other_id = other["id"].as_str().unwrap();
    let get = |path: String, token: String| {
        let app = &app;
        async move { app.get(&path, &token).await.json::<Value>().await.unwrap() }
    };
    assert_matches_schema(&spec, "RequestView", &other);
    assert_matches_schema(
        &spec,
        "RequestView",
        &get(format!("/requests/{other_id}"), app.alice.clone()).await,
    );
    assert_matches_schema(
        &spec,
        "RequestPage",
        &get("/requests".into(), app.alice.clone()).await,
    );
    assert_matches_schema(
        &spec,
        "Timeline",
        &get(format!("/requests/{other_id}/events"), app.alice.clone()).await,
    );
    // A timeline entry's kind is one of a documented set, and its component and detail
    // are typed fields beside the message.
    let kinds = &spec["components"]["schemas"]["EventKind"]["enum"];
    for kind in [
        "submitted",
        "ticket_created",
        "component_completed",
        "action_retry",
    ] {
        assert!(
            kinds.as_array().is_some_and(|k| k.contains(&json!(kind))),
            "{kind} in {kinds}"
        );
    }
    // Every operation that takes a bearer token documents the 401 it answers without one.
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("security").is_some() {
                assert_eq!(
                    operation["responses"]["401"]["content"]["application/problem+json"]["schema"]
                        ["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path}"
                );
            }
        }
    }
    let event = &spec["components"]["schemas"]["RequestEvent"]["properties"];
    assert_eq!(
        event["kind"]["$ref"], "#/components/schemas/EventKind",
        "{event}"
    );
    assert!(
        event.get("component").is_some() && event.get("detail").is_some(),
        "{event}"
    );
    assert_matches_schema(
        &spec,
        "Listing",
        &get("/catalog/items".into(), app.alice.clone()).await,
    );
    assert_matches_schema(
        &spec,
        "ResourcePage",
        &get("/resources".into(), app.alice.clone()).await,
    );
    assert_matches_schema(
        &spec,
        "AuditPage",
        &get("/audit".into(), app.carol.clone()).await,
    );
    let invalid = app
        .post(
            "/requests",
            &app.alice,
            json!({"item": "kafka-topic", "fields": {"partitions": 0}}),
        )
        .await;
    assert_matches_schema(&spec, "Problem", &invalid.json().await.unwrap());
}

#[tokio::test]
async fn with_a_jwks_file_rs256_tokens_are_accepted_and_dev_tokens_are_not() {
    use base64::Engine;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;

    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                                "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be())}]});
    let dir = tempfile::tempdir().unwrap();
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: orchestrator_tests::example_catalog(),
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.auth.jwks_file = Some(jwks_file);
    let running = shared::local::start(&config).await.unwrap();

    let pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("k1".to_owned());
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims =
        json!({"sub": "erin", "email": "erin@acme.example", "groups": ["developers"], "exp": exp});
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let client = Client::new();
    let url = format!("http://{}/catalog/items", running.addr);
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // A token signed with the dev secret is not accepted when a JWKS is configured.
    let dev = shared::http::auth::dev_token(
        &shared::secret::SecretString::new("some-dev-secret-some-dev-secret"),
        "mallory",
        None,
        &[],
        std::time::Duration::from_secs(600),
    )
    .unwrap();
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(&dev)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Nor an expired one.
    let expired = json!({"sub": "erin", "exp": 1_000_000_000});
    let old = jsonwebtoken::encode(
        &header,
        &expired,
        &jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let response = client.get(&url).bearer_auth(&old).send().await.unwrap();
    let p = problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(p["detail"], "the token has expired");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_second_server_on_the_same_data_directory_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: orchestrator_tests::example_catalog(),
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    let first = shared::local::start(&config).await.unwrap();
    let err = shared::local::start(&config).await.err().unwrap();
    assert!(err.contains("already serving the data directory"), "{err}");
    first.stop().await.unwrap();
    // Once the first has stopped, the directory is free again.
    shared::local::start(&config)
        .await
        .unwrap()
        .stop()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_request_list_pages_with_a_cursor_and_owner_teams_may_cancel() {
    let app = App::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.submit_kafka(&app.alice, &format!("topic.{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut path = "/requests?limit=2".to_owned();
    loop {
        let page: Value = app.get_json(&path, &app.alice).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(cursor) => path = format!("/requests?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once");
    // A cursor pages only the list and filters it came from: with another filter it is
    // refused, not read as a position in a different list.
    let first: Value = app.get_json("/requests?limit=2", &app.alice).await;
    let cursor = first["next"].as_str().unwrap();
    let elsewhere = app
        .get(
            &format!("/requests?limit=2&status=failed&cursor={cursor}"),
            &app.alice,
        )
        .await;
    let body = problem(elsewhere, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["parameter"], "cursor", "{body}");
    // Bob is in the owner team (messaging): he may cancel Alice's request.
    let cancelled = app
        .post(&format!("/requests/{}/cancel", ids[0]), &app.bob, json!({}))
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
}

/// Polls `GET path` as `token` until it answers `status` (a reload takes up to a second).
async fn eventually(app: &App, path: &str, token: &str, status: StatusCode) {
    for _ in 0..100 {
        if app.get(path, token).await.status() == status {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("GET {path} never answered {status}");
}

#[tokio::test]
async fn an_edit_of_the_catalog_directory_goes_live_whole_and_a_broken_one_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog");
    orchestrator_tests::copy_dir(&orchestrator_tests::example_catalog(), &catalog);
    let app = App::start_with_catalog(catalog.clone(), vec![dir]).await;
    let before = app.submit_kafka(&app.alice, "before.v1").await;

    // A new item, saved: served within a second, and new requests record the new version.
    let queue = std::fs::read_to_string(catalog.join("items/messaging/sqs-queue.yaml")).unwrap();
    let fifo = queue.replacen("name: sqs-queue", "name: sqs-fifo-queue", 1);
    assert_ne!(fifo, queue);
    std::fs::write(catalog.join("items/messaging/sqs-fifo-queue.yaml"), &fifo).unwrap();
    eventually(
        &app,
        "/catalog/items/sqs-fifo-queue",
        &app.alice,
        StatusCode::OK,
    )
    .await;
    let after = app.submit_kafka(&app.alice, "after.v1").await;
    assert_ne!(
        before["catalogVersion"], after["catalogVersion"],
        "requests record the catalog version they were made against"
    );

    // A broken edit (a removal that breaks a bundle, then a file that is not YAML) is
    // refused whole: what was live stays live.
    let app_stack = catalog.join("items/compute/eks-cluster.yaml");
    let cluster = std::fs::read_to_string(&app_stack).unwrap();
    std::fs::remove_file(&app_stack).unwrap();
    std::fs::write(
        catalog.join("items/messaging/broken.yaml"),
        "kind: [unclosed",
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert_eq!(
        app.get("/catalog/items/eks-cluster", &app.alice)
            .await
            .status(),
        StatusCode::OK,
        "the previous version stays live"
    );
    assert_eq!(
        app.get("/catalog/bundles/app-stack", &app.alice)
            .await
            .status(),
        StatusCode::OK
    );
    let during = app.submit_kafka(&app.alice, "during.v1").await;
    assert_eq!(during["catalogVersion"], after["catalogVersion"]);

    // Repaired: live again, with the last edit's content.
    std::fs::remove_file(catalog.join("items/messaging/broken.yaml")).unwrap();
    std::fs::write(&app_stack, cluster.replace("title: ", "title: Managed ")).unwrap();
    let mut reloaded = false;
    for _ in 0..100 {
        let item = app.get_json("/catalog/items/eks-cluster", &app.alice).await;
        if item["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Managed "))
        {
            reloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(reloaded, "the repaired catalog went live");
    app.running.stop().await.unwrap();
}
