//! Resource state end to end in local mode: records of what was provisioned, day-2
//! changes (plan, then apply) and deletions, verification before every change, drift
//! found by the reconciler, locks between concurrent changes, and a lease taken over
//! after a worker stopped holding it. The provisioning API is a wiremock server whose
//! answers the test changes behind the orchestrator's back.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestrator_tests::app::App;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::config::Config;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ACCESS_KEY: &str = "vol-access-k3y-5e1f";

/// What the volume API reports about `/volumes/{id}`: the test changes it at will. A
/// volume it was not told about reports the size it was last PUT with.
#[derive(Clone, Default)]
struct Reality {
    told: Arc<Mutex<Option<Value>>>,
    put: Arc<Mutex<std::collections::HashMap<String, Value>>>,
}

impl Respond for Reality {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request.url.path().rsplit('/').next().unwrap_or_default();
        let told = self.told.lock().unwrap().clone();
        let body = told.unwrap_or_else(|| {
            self.put
                .lock()
                .unwrap()
                .get(id)
                .cloned()
                .unwrap_or(json!({}))
        });
        ResponseTemplate::new(200).set_body_json(body)
    }
}

impl Reality {
    fn new(value: Value) -> Reality {
        let reality = Reality::default();
        reality.set(value);
        reality
    }

    fn set(&self, value: Value) {
        *self.told.lock().unwrap() = Some(value);
    }
}

/// A volume API: PUT creates or resizes `name` (id `vol-NAME`), GET reads `reality`,
/// DELETE answers 204.
async fn volume_api(reality: &Reality, put_delay: Duration) -> MockServer {
    let api = MockServer::start().await;
    let put = reality.put.clone();
    Mock::given(method("PUT"))
        .respond_with(move |req: &Request| {
            let name = req
                .url
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            put.lock().unwrap().insert(format!("vol-{name}"), body);
            ResponseTemplate::new(200)
                .set_delay(put_delay)
                .set_body_json(json!({"id": format!("vol-{name}"), "accessKey": ACCESS_KEY}))
        })
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .respond_with(reality.clone())
        .mount(&api)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&api)
        .await;
    api
}

fn config(dir: &Path, api: &str) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: orchestrator_tests::volume_catalog(dir),
        data_dir: dir.join("data"),
        ..Config::default()
    };
    config.environment = json!({"api": api}).as_object().unwrap().clone();
    config.resources.reconcile_seconds = 0;
    config
}

async fn provision(app: &App, name: &str, size: u64) -> String {
    let (status, body) = app
        .submit(&json!({"item": "volume", "fields": {"name": name, "size": size}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    app.wait_for(&id, "completed").await;
    // An item's resource is named after the request that provisioned it.
    id
}

async fn change(app: &App, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        &format!("/resources/{id}/changes"),
        token,
        Some(&body),
    )
    .await
}

async fn history_kinds(app: &App, id: &str) -> Vec<(u64, String)> {
    let history = app.get(&format!("/resources/{id}/history")).await;
    history["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["serial"].as_u64().unwrap(),
                c["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn wait_as(app: &App, token: &str, id: &str, status: &str) {
    for _ in 0..300 {
        let (_, request) = app
            .call(Method::GET, &format!("/requests/{id}"), token, None)
            .await;
        if request["status"] == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("request {id} never became {status}");
}

async fn wait_for_resource(app: &App, id: &str, status: &str) -> Value {
    for _ in 0..300 {
        let resource = app.get(&format!("/resources/{id}")).await;
        if resource["status"] == status {
            return resource;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "resource never became {status}: {}",
        app.get(&format!("/resources/{id}")).await
    );
}

#[tokio::test]
async fn a_resource_is_recorded_planned_changed_and_deleted_with_its_history() {
    let reality = Reality::new(json!({"size": 20}));
    let api = volume_api(&reality, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), &api.uri())).await;
    let id = provision(&app, "orders", 20).await;

    let resource = app.get(&format!("/resources/{id}")).await;
    assert_eq!(resource["item"], "volume");
    assert_eq!(resource["status"], "ready");
    assert_eq!(resource["serial"], 1);
    assert_eq!(resource["inputs"], json!({"name": "orders", "size": 20}));
    // The sensitive output is recorded as a reference, never in clear.
    assert_eq!(
        resource["outputs"],
        json!({"volumeId": "vol-orders", "accessKey": {"sensitive": true}})
    );
    let mine = app.get("/resources").await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");

    // The plan: the input diff, the rendered call, the verification; nothing runs.
    let (status, plan) = change(
        &app,
        &app.token,
        &id,
        json!({"fields": {"name": "orders", "size": 30}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(
        plan["changes"],
        json!([{"field": "size", "before": 20, "after": 30}])
    );
    assert_eq!(plan["actions"][0]["sends"]["method"], "PUT");
    assert_eq!(plan["actions"][0]["sends"]["body"], json!({"size": 30}));
    assert_eq!(plan["verification"]["outcome"], "matched");
    assert!(plan["errors"].as_array().unwrap().is_empty(), "{plan}");
    // Invalid values are refused with the pointer into the fields.
    let (status, problem) = change(
        &app,
        &app.token,
        &id,
        json!({"fields": {"name": "orders", "size": "big"}, "apply": true}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/fields/size");

    // Apply: the item's action runs again with the new values.
    let (status, accepted) = change(
        &app,
        &app.token,
        &id,
        json!({"fields": {"name": "orders", "size": 30}, "apply": true}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["request"]["operation"], "update");
    let change_id = accepted["request"]["id"].as_str().unwrap().to_owned();
    app.wait_for(&change_id, "completed").await;
    let resource = app.get(&format!("/resources/{id}")).await;
    assert_eq!(resource["inputs"]["size"], 30);
    assert_eq!(resource["serial"], 2);
    assert_eq!(resource["status"], "ready");
    assert!(resource.get("lock").is_none(), "released: {resource}");

    // Delete: the deprovision action, then a tombstone; the history stays.
    reality.set(json!({"size": 30}));
    let (status, accepted) = app
        .call(
            Method::DELETE,
            &format!("/resources/{id}"),
            &app.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let delete_id = accepted["request"]["id"].as_str().unwrap().to_owned();
    app.wait_for(&delete_id, "completed").await;
    let deleted = app.get(&format!("/resources/{id}")).await;
    assert_eq!(deleted["status"], "deleted");
    let requests = api.received_requests().await.unwrap();
    assert!(
        requests
            .iter()
            .any(|r| r.method == wiremock::http::Method::DELETE
                && r.url.path() == "/volumes/vol-orders"),
        "the deprovision call was made"
    );
    assert!(
        app.get("/resources").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let tombstones = app.get("/resources?status=deleted").await;
    assert_eq!(tombstones["items"][0]["id"], id.as_str());
    let history = app.get(&format!("/resources/{id}/history")).await;
    assert_eq!(
        history_kinds(&app, &id).await,
        [
            (1, "provisioned".to_owned()),
            (2, "updated".to_owned()),
            (3, "deleted".to_owned())
        ]
    );
    assert_eq!(history["changes"][1]["requestId"], change_id.as_str());
    assert_eq!(history["changes"][2]["requestId"], delete_id.as_str());
    // A tombstone cannot change any more.
    let (status, _) = change(
        &app,
        &app.token,
        &id,
        json!({"fields": {"name": "orders", "size": 1}}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The sensitive output never appears in an answer about the resource or its requests.
    let mut seen = String::new();
    for p in [
        format!("/resources/{id}"),
        format!("/resources/{id}/history"),
        format!("/requests/{id}"),
    ] {
        seen.push_str(&app.get(&p).await.to_string());
    }
    assert!(!seen.contains(ACCESS_KEY), "the access key leaked");
}

#[tokio::test]
async fn drift_refuses_a_change_the_reconciler_flags_it_and_an_admin_may_force_it() {
    let reality = Reality::new(json!({"size": 20}));
    let api = volume_api(&reality, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), &api.uri());
    config.resources.reconcile_seconds = 1;
    // Drift found is told to whoever subscribed (here a signed webhook).
    Mock::given(method("POST"))
        .and(wiremock::matchers::path("/notify"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&api)
        .await;
    let secrets = dir.path().join("secrets.json");
    std::fs::write(&secrets, r#"{"notify-key": "k"}"#).unwrap();
    config.secrets_file = Some(secrets);
    config.notifications.subscriptions = vec![
        serde_json::from_value(json!({
            "name": "drift-hook", "events": ["drift"],
            "webhook": {"url": format!("{}/notify", api.uri()), "signingSecret": "notify-key"},
        }))
        .unwrap(),
    ];
    let app = App::start(&config).await;
    let id = provision(&app, "ledger", 20).await;

    // Someone resizes the volume behind the orchestrator's back.
    reality.set(json!({"size": 99}));
    let drifted = wait_for_resource(&app, &id, "drifted").await;
    let report = json!([{"attribute": "size", "recorded": 20, "actual": 99}]);
    assert_eq!(drifted["drift"], report);
    let mut told = Vec::new();
    for _ in 0..100 {
        told = api
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path() == "/notify")
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .collect();
        if !told.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(told.len(), 1, "one notice for one drift found: {told:?}");
    assert_eq!(told[0]["type"], "notification.drift");
    assert_eq!(told[0]["resource"]["id"], id.as_str());
    assert_eq!(told[0]["drift"], json!(["size"]), "where, never the values");
    let listed = app.get("/resources?status=drifted").await;
    assert_eq!(listed["items"][0]["id"], id.as_str(), "{listed}");
    let history = app.get(&format!("/resources/{id}/history")).await;
    assert_eq!(history["changes"][1]["kind"], "drift_detected");
    assert_eq!(history["changes"][1]["actor"], "reconciler");
    assert_eq!(history["changes"][1]["drift"], report);

    // The next change is refused with the exact report.
    let body = json!({"fields": {"name": "ledger", "size": 40}, "apply": true});
    let (status, problem) = change(&app, &app.token, &id, body.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["type"],
        "https://orchestrator.dev/problems/resource-drifted"
    );
    assert_eq!(problem["drift"], report);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("size (recorded 20, actual 99)")
    );
    // Only an admin may force it.
    let mut forced = body.clone();
    forced["force"] = json!(true);
    let (status, _) = change(&app, &app.token, &id, forced.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = app.token_for(&config, "root", &["platform-admins"]).await;
    let (status, accepted) = change(&app, &admin, &id, forced).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let request = accepted["request"]["id"].as_str().unwrap().to_owned();
    reality.set(json!({"size": 40}));
    wait_as(&app, &admin, &request, "completed").await;
    let (_, timeline) = app
        .call(
            Method::GET,
            &format!("/requests/{request}/events"),
            &admin,
            None,
        )
        .await;
    assert!(
        timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "forced"),
        "{timeline}"
    );
    let resource = app.get(&format!("/resources/{id}")).await;
    assert_eq!(resource["status"], "ready");
    assert_eq!(resource["inputs"]["size"], 40);
    // The forced change is in the audit log with what it overrode.
    let (_, audit) = app.call(Method::GET, "/audit", &admin, None).await;
    let entry = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["outcome"] == 202 && e["detail"].is_string())
        .unwrap_or_else(|| panic!("no forced entry: {audit}"));
    assert_eq!(entry["actor"], "root");
    assert_eq!(entry["target"], id.as_str());
    assert!(
        entry["detail"]
            .as_str()
            .unwrap()
            .contains("size (recorded 20, actual 99)")
    );

    // Drift that goes away is resolved by the reconciler.
    reality.set(json!({"size": 41}));
    wait_for_resource(&app, &id, "drifted").await;
    reality.set(json!({"size": 40}));
    wait_for_resource(&app, &id, "ready").await;
    let kinds: Vec<String> = history_kinds(&app, &id)
        .await
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    assert_eq!(
        kinds,
        [
            "provisioned",
            "drift_detected",
            "updated",
            "drift_detected",
            "drift_resolved"
        ]
    );

    // The passes that found all this are shown to admins, and only to them.
    let (status, problem) = app
        .call(Method::GET, "/reconciliation", &app.token, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let mut last = Value::Null;
    for _ in 0..100 {
        let (status, shown) = app.call(Method::GET, "/reconciliation", &admin, None).await;
        assert_eq!(status, StatusCode::OK, "{shown}");
        last = shown["last"].clone();
        if last["complete"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["complete"], true, "{last}");
    assert_eq!(last["enqueued"], 1, "{last}");
    assert_eq!(last["batches"], 1, "{last}");
    assert_eq!(last["batchesDone"], 1, "{last}");
    assert_eq!(last["report"]["checked"], 1, "{last}");
    assert_eq!(last["report"]["failed"], 0, "{last}");
}

#[tokio::test]
async fn of_two_concurrent_changes_exactly_one_wins_and_the_other_is_told_who_holds_the_lock() {
    let reality = Reality::new(json!({"size": 20}));
    let api = volume_api(&reality, Duration::from_millis(800)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), &api.uri())).await;
    let id = provision(&app, "cache", 20).await;

    let one = json!({"fields": {"name": "cache", "size": 21}, "apply": true});
    let two = json!({"fields": {"name": "cache", "size": 22}, "apply": true});
    let (a, b) = tokio::join!(
        change(&app, &app.token, &id, one),
        change(&app, &app.token, &id, two)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::ACCEPTED, StatusCode::CONFLICT],
        "{a:?} {b:?}"
    );
    let (winner, loser) = if a.0 == StatusCode::ACCEPTED {
        (a.1, b.1)
    } else {
        (b.1, a.1)
    };
    let holder = winner["request"]["id"].as_str().unwrap();
    assert_eq!(
        loser["type"],
        "https://orchestrator.dev/problems/resource-locked"
    );
    assert_eq!(loser["lock"]["requestId"], holder);
    assert_eq!(loser["lock"]["holder"], "alice");
    assert!(loser["detail"].as_str().unwrap().contains(holder));
    app.wait_for(holder, "completed").await;
    // Released: the next change goes through.
    let (status, _) = change(
        &app,
        &app.token,
        &id,
        json!({"fields": {"name": "cache", "size": 23}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_lock_whose_worker_stopped_expires_and_a_retry_takes_it_over() {
    let reality = Reality::new(json!({"size": 5}));
    let api = volume_api(&reality, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), &api.uri());
    config.resources.lease_seconds = 1;
    let app = App::start(&config).await;
    let id = provision(&app, "tmp", 5).await;
    app.running.stop().await.unwrap();

    // A process that takes changes but whose worker never gets to them (as if it
    // crashed holding the lock).
    config.worker = false;
    let api_only = App::start(&config).await;
    let (status, first) = change(
        &api_only,
        &api_only.token,
        &id,
        json!({"fields": {"name": "tmp", "size": 6}, "apply": true}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let stale = first["request"]["id"].as_str().unwrap().to_owned();
    let (status, _) = change(
        &api_only,
        &api_only.token,
        &id,
        json!({"fields": {"name": "tmp", "size": 7}, "apply": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "held while the lease runs");
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let (status, second) = change(
        &api_only,
        &api_only.token,
        &id,
        json!({"fields": {"name": "tmp", "size": 7}, "apply": true}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "the expired lease is taken over: {second}"
    );
    let retry = second["request"]["id"].as_str().unwrap().to_owned();
    api_only.running.stop().await.unwrap();

    // The worker comes back: the change that lost its lock stops, the retry applies.
    config.worker = true;
    let app = App::start(&config).await;
    let failed = app.wait_for(&stale, "failed").await;
    assert!(
        failed["reason"].as_str().unwrap().contains("lost its lock"),
        "{failed}"
    );
    app.wait_for(&retry, "completed").await;
    let resource = app.get(&format!("/resources/{id}")).await;
    assert_eq!(resource["inputs"]["size"], 7);
    assert_eq!(resource["status"], "ready");
    let kinds: Vec<String> = history_kinds(&app, &id)
        .await
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    assert_eq!(kinds, ["provisioned", "updated"]);
}

#[tokio::test]
async fn deleting_a_stack_deprovisions_its_components_dependents_first() {
    let reality = Reality::default();
    let api = volume_api(&reality, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config(dir.path(), &api.uri())).await;
    let (status, body) = app
        .submit(&json!({"bundle": "platform", "fields": {"app": "shop"}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    app.wait_for(&id, "completed").await;

    let stack = app.get(&format!("/resources/{id}")).await;
    assert_eq!(stack["kind"], "stack");
    let members: Vec<&str> = stack["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["component"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["net", "db", "app"]);
    let db = app.get(&format!("/resources/{id}.db")).await;
    assert_eq!(db["stack"], id.as_str());
    assert_eq!(db["inputs"], json!({"name": "shop-db", "size": 2}));
    assert_eq!(db["outputs"]["volumeId"], "vol-shop-db");
    assert_eq!(
        app.get("/resources").await["items"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // A component goes with its stack, not alone; it may be changed on its own.
    let (status, problem) = app
        .call(
            Method::DELETE,
            &format!("/resources/{id}.db"),
            &app.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, accepted) = change(
        &app,
        &app.token,
        &format!("{id}.db"),
        json!({"fields": {"name": "shop-db", "size": 4}, "apply": true}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let resize = accepted["request"]["id"].as_str().unwrap().to_owned();
    app.wait_for(&resize, "completed").await;
    let db = app.get(&format!("/resources/{id}.db")).await;
    assert_eq!(
        (db["inputs"]["size"].as_u64(), db["serial"].as_u64()),
        (Some(4), Some(2))
    );

    let (status, plan) = app
        .call(
            Method::DELETE,
            &format!("/resources/{id}?dryRun=true"),
            &app.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let planned: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(planned, ["app/delete", "db/delete", "net/delete"]);

    let (status, accepted) = app
        .call(
            Method::DELETE,
            &format!("/resources/{id}"),
            &app.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let request = accepted["request"]["id"].as_str().unwrap().to_owned();
    app.wait_for(&request, "completed").await;
    let deletes: Vec<String> = api
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method == wiremock::http::Method::DELETE)
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(
        deletes,
        [
            "/volumes/vol-shop-app",
            "/volumes/vol-shop-db",
            "/volumes/vol-shop-net"
        ]
    );
    for member in ["", ".net", ".db", ".app"] {
        let r = app.get(&format!("/resources/{id}{member}")).await;
        assert_eq!(r["status"], "deleted", "{r}");
    }
}

#[tokio::test]
async fn a_deprecated_item_takes_no_new_requests_but_its_resources_still_change() {
    let reality = Reality::new(json!({"size": 20}));
    let api = volume_api(&reality, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &api.uri());
    let app = App::start(&config).await;
    let id = provision(&app, "orders", 20).await;

    // The platform team deprecates the item in favour of the bundle; the edit goes live.
    let item = edit_volume(
        &app,
        &config,
        (
            "\n  owner: ",
            "\n  lifecycle: deprecated\n  replacedBy: platform\n  owner: ",
        ),
        |item| item["lifecycle"] == "deprecated",
    )
    .await;
    assert_eq!(item["requestable"], false);
    assert_eq!(item["replacedBy"], "platform");

    // A new request, and its dry run, are refused with a pointer to the replacement.
    for path in ["/requests", "/requests?dryRun=true"] {
        let (status, problem) = app
            .call(
                Method::POST,
                path,
                &app.token,
                Some(&json!({"item": "volume", "fields": {"name": "more", "size": 5}})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {problem}");
        assert_eq!(
            problem["type"],
            "https://orchestrator.dev/problems/deprecated"
        );
        assert_eq!(problem["replacedBy"], "platform");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("request `platform` instead")
        );
    }
    let mine = app.get("/requests").await;
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        1,
        "nothing stored: {mine}"
    );

    // What it made is still changed as before.
    let (status, accepted) = change(
        &app,
        &app.token,
        &id,
        json!({"fields": {"name": "orders", "size": 30}, "apply": true}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let change_id = accepted["request"]["id"].as_str().unwrap().to_owned();
    app.wait_for(&change_id, "completed").await;
    let resource = app.get(&format!("/resources/{id}")).await;
    assert_eq!(resource["inputs"]["size"], 30);
    app.running.stop().await.unwrap();
}

/// Edits the volume item's file (the first `from` becomes `to`) and waits until the
/// catalog API shows the edit (`live`); returns the item as served.
async fn edit_volume(
    app: &App,
    config: &Config,
    (from, to): (&str, &str),
    live: impl Fn(&Value) -> bool,
) -> Value {
    let file = config.catalog_dir.join("items/volume.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replacen(from, to, 1);
    assert_ne!(edited, text, "the edit changes the file");
    std::fs::write(&file, edited).unwrap();
    for _ in 0..100 {
        let item = app.get("/catalog/items/volume").await;
        if live(&item) {
            return item;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the edit of the volume item never went live");
}

#[tokio::test]
async fn resources_record_their_item_s_definition_and_those_made_by_an_older_one_are_listed() {
    let reality = Reality::new(json!({"size": 20}));
    let api = volume_api(&reality, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &api.uri());
    let app = App::start(&config).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(provision(&app, name, 20).await);
    }
    let first = app.get(&format!("/resources/{}", ids[0])).await;
    let digest = first["itemDigest"].as_str().unwrap().to_owned();
    assert_eq!(digest.len(), 16, "{first}");
    assert_eq!(first["outdated"], false);
    assert!(outdated_ids(&app).await.is_empty());

    // A new definition of the item: every resource made by the old one is outdated.
    edit_volume(
        &app,
        &config,
        (
            "description: A storage volume.",
            "description: A storage volume, encrypted.",
        ),
        |item| item["description"] == "A storage volume, encrypted.",
    )
    .await;
    let mut all = ids.clone();
    all.sort();
    assert_eq!(outdated_ids(&app).await, all);
    // The item's page counts them (of the resources the caller may see).
    let item = app.get("/catalog/items/volume").await;
    assert_eq!(
        item["resources"],
        json!({"counted": 3, "outdated": 3, "more": false})
    );
    assert_eq!(
        app.get(&format!("/resources/{}", ids[1])).await["outdated"],
        true
    );

    // A change applies the live definition: that one is current again, with its digest.
    let (status, accepted) = change(
        &app,
        &app.token,
        &ids[0],
        json!({"fields": {"name": "a", "size": 30}, "apply": true}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    app.wait_for(accepted["request"]["id"].as_str().unwrap(), "completed")
        .await;
    let changed = app.get(&format!("/resources/{}", ids[0])).await;
    assert_eq!(changed["outdated"], false, "{changed}");
    assert_ne!(changed["itemDigest"], digest.as_str());
    let mut rest = ids[1..].to_vec();
    rest.sort();
    assert_eq!(outdated_ids(&app).await, rest);
    assert_eq!(
        app.get("/catalog/items/volume").await["resources"]["outdated"],
        2
    );
    // A page of one goes on by cursor, with the filter it was issued for.
    let page = app.get("/resources?outdated=true&limit=1").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["next"].as_str().unwrap();
    let more = app
        .get(&format!("/resources?outdated=true&limit=1&cursor={next}"))
        .await;
    assert_eq!(more["items"].as_array().unwrap().len(), 1, "{more}");
    app.running.stop().await.unwrap();
}

/// The ids of the volumes `?outdated=true` lists, sorted.
async fn outdated_ids(app: &App) -> Vec<String> {
    let page = app.get("/resources?outdated=true&item=volume").await;
    let mut ids: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}
