//! Approval gates end to end in local mode: a policy's stages are callback tasks of the
//! request's state machine; approvers see what awaits them, decide, and the request goes
//! on (or is rejected) only then.

use std::time::Duration;

use orchestrator_tests::app::{App, sandbox_config};
use orchestrator_tests::things::{Faults, Things, thing_item};
use reqwest::Method;
use serde_json::{Value, json};

/// `thing` with an `environment` field, and a policy for prod: the owning team, then two
/// of the security group.
fn gated_thing() -> String {
    thing_item("5s")
        .replace(
            "        name:\n          type: string\n",
            "        name:\n          type: string\n        environment:\n          type: string\n          enum: [dev, prod]\n          default: dev\n",
        )
        .replace(
            "  fulfillment:\n",
            "  approvals:\n    - name: prod things\n      when:\n        - path: $.fields.environment\n          equals: prod\n      stages:\n        - name: owners\n          approvers:\n            owner: true\n        - name: security\n          approvers:\n            groups: [security]\n          require: 2\n  fulfillment:\n",
        )
}

async fn start() -> (App, Things, shared::config::Config, tempfile::TempDir) {
    let target = Things::start(Faults::none()).await;
    let (app, config, dir) =
        orchestrator_tests::things::local_app(&target, &[("items/thing.yaml", gated_thing())])
            .await;
    (app, target, config, dir)
}

async fn pending(app: &App, token: &str) -> Vec<Value> {
    let (status, body) = app.call(Method::GET, "/approvals", token, None).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Waits until `token`'s caller has approval `id` awaiting them.
async fn awaiting(app: &App, token: &str, id: &str) -> Value {
    for _ in 0..200 {
        if let Some(a) = pending(app, token)
            .await
            .into_iter()
            .find(|a| a["id"] == id)
        {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("approval {id} never awaited the caller");
}

#[tokio::test]
async fn a_prod_request_waits_for_two_stages_of_approval_and_a_dev_one_does_not() {
    let (app, target, config, _dir) = start().await;
    // The requester is a member of the owning team: still not an approver of their own.
    let alice = app
        .token_for(&config, "alice", &["developers", "database"])
        .await;
    let bob = app.token_for(&config, "bob", &["database"]).await;
    let carol = app.token_for(&config, "carol", &["security"]).await;
    let dave = app.token_for(&config, "dave", &["security"]).await;

    // The plan says which approvals a request would need.
    let plan_of = |environment: &str| json!({"item": "thing", "fields": {"name": "x", "environment": environment}});
    let (status, plan) = app
        .call(
            Method::POST,
            "/requests?dryRun=true",
            &alice,
            Some(&plan_of("prod")),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(
        plan["approvals"],
        json!([
            {"policy": "prod things", "stage": "owners", "owner": "database", "approvers": {"owner": true}, "require": "any", "expires": "7d"},
            {"policy": "prod things", "stage": "security", "owner": "database", "approvers": {"groups": ["security"]}, "require": 2, "expires": "7d"},
        ])
    );
    let (_, plan) = app
        .call(
            Method::POST,
            "/requests?dryRun=true",
            &alice,
            Some(&plan_of("dev")),
        )
        .await;
    assert!(plan.get("approvals").is_none(), "{plan}");

    // dev: the policy does not apply.
    let (status, dev) = app
        .call(
            Method::POST,
            "/requests",
            &alice,
            Some(&json!({"item": "thing", "fields": {"name": "d1"}})),
        )
        .await;
    assert_eq!(status, 202, "{dev}");
    app.wait_for(dev["id"].as_str().unwrap(), "completed").await;

    let (status, prod) = app
        .call(
            Method::POST,
            "/requests",
            &alice,
            Some(&json!({"item": "thing", "fields": {"name": "p1", "environment": "prod"}})),
        )
        .await;
    assert_eq!(status, 202, "{prod}");
    let id = prod["id"].as_str().unwrap().to_owned();
    let waiting = app.wait_for(&id, "awaiting_approval").await;
    assert_eq!(target.census().made, 1, "nothing runs before the approvals");

    let first = format!("{id}.1");
    let stage = awaiting(&app, &bob, &first).await;
    // Filters narrow the list; an unknown one is refused, naming it.
    let (_, mine) = app
        .call(
            Method::GET,
            &format!("/approvals?request={id}&target=thing"),
            &bob,
            None,
        )
        .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
    let (_, none) = app
        .call(Method::GET, "/approvals?target=other", &bob, None)
        .await;
    assert!(none["items"].as_array().unwrap().is_empty(), "{none}");
    let (status, problem) = app
        .call(Method::GET, "/approvals?colour=red", &bob, None)
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["parameter"], "colour", "{problem}");
    assert_eq!(stage["policy"], "prod things");
    assert_eq!(stage["stage"], "owners");
    assert!(stage.get("taskToken").is_none(), "the token is never shown");
    assert!(pending(&app, &alice).await.is_empty(), "{waiting:#}");

    // The requester cannot approve, nor can someone outside the stage.
    let approve = |n: &str| format!("/approvals/{n}/approve");
    let (status, problem) = app.call(Method::POST, &approve(&first), &alice, None).await;
    assert_eq!(status, 403, "{problem}");
    let (status, _) = app.call(Method::POST, &approve(&first), &carol, None).await;
    assert_eq!(status, 404, "carol is not an approver of the first stage");
    let (status, decided) = app
        .call(
            Method::POST,
            &approve(&first),
            &bob,
            Some(&json!({"comment": "looks right"})),
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "approved");
    let (status, _) = app.call(Method::POST, &approve(&first), &bob, None).await;
    assert_eq!(status, 409, "approving twice");

    // The second stage needs two of security.
    let second = format!("{id}.2");
    awaiting(&app, &carol, &second).await;
    // The first stage's task delivered again (at least once): it learns its decision and
    // is not opened again.
    let again =
        json!({"task": "approve", "taskToken": "delivered-again", "requestId": id, "approval": 1});
    app.running
        .state
        .requests
        .queue
        .send(&again.to_string(), Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        pending(&app, &bob).await.is_empty(),
        "the first stage stays approved"
    );
    let (status, one) = app
        .call(Method::POST, &approve(&second), &carol, None)
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["status"], "pending");
    let (status, _) = app
        .call(Method::POST, &approve(&second), &carol, None)
        .await;
    assert_eq!(status, 409, "the same approver does not count twice");
    let (status, two) = app.call(Method::POST, &approve(&second), &dave, None).await;
    assert_eq!(status, 200, "{two}");
    assert_eq!(two["status"], "approved");

    let done = app.wait_for(&id, "completed").await;
    assert_eq!(target.census().made, 2);
    let shown = app.request(&id).await;
    let stages = shown["approvals"]
        .as_array()
        .expect("stages on the request");
    assert_eq!(stages.len(), 2, "{done:#}");
    assert_eq!(stages[0]["decisions"][0]["by"], "bob");
    assert_eq!(stages[0]["decisions"][0]["comment"], "looks right");
    assert_eq!(stages[1]["decisions"].as_array().unwrap().len(), 2);

    let kinds = app.event_kinds(&id).await;
    for kind in [
        "approval_requested",
        "approved",
        "approval_given",
        "completed",
    ] {
        assert!(
            kinds.contains(&kind.to_owned()),
            "{kind} missing from {kinds:?}"
        );
    }
    // The execution's history shows the stages as tasks.
    let history = app.get(&format!("/requests/{id}/execution")).await;
    let entered: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["stateEnteredEventDetails"]["name"].as_str())
        .collect();
    assert!(
        entered.starts_with(&[
            "Start",
            "Approval 1",
            "Approval 2",
            "Scheduled?",
            "Provision main"
        ]),
        "{entered:?}"
    );
    app.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_denial_needs_a_reason_and_rejects_the_request_with_it() {
    let (app, target, config, _dir) = start().await;
    let bob = app.token_for(&config, "bob", &["database"]).await;
    let (status, prod) = app
        .submit(&json!({"item": "thing", "fields": {"name": "p2", "environment": "prod"}}))
        .await;
    assert_eq!(status, 202, "{prod}");
    let id = prod["id"].as_str().unwrap().to_owned();
    let first = format!("{id}.1");
    awaiting(&app, &bob, &first).await;
    let deny = format!("/approvals/{first}/deny");
    let (status, problem) = app.call(Method::POST, &deny, &bob, None).await;
    assert_eq!(status, 422, "{problem}");
    let (status, problem) = app
        .call(Method::POST, &deny, &bob, Some(&json!({"reason": " "})))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        app.request(&id).await["status"],
        "awaiting_approval",
        "nothing changed"
    );
    let (status, denied) = app
        .call(
            Method::POST,
            &deny,
            &bob,
            Some(&json!({"reason": "prod is frozen this week"})),
        )
        .await;
    assert_eq!(status, 200, "{denied}");
    let rejected = app.wait_for(&id, "rejected").await;
    let reason = rejected["reason"].as_str().unwrap();
    assert!(
        reason.contains("bob denied") && reason.contains("prod is frozen this week"),
        "{reason}"
    );
    assert_eq!(target.census().made, 0, "nothing ran");

    // An admin who is not an approver decides only on the approvers' behalf.
    let (status, other) = app
        .submit(&json!({"item": "thing", "fields": {"name": "p3", "environment": "prod"}}))
        .await;
    assert_eq!(status, 202, "{other}");
    let id = other["id"].as_str().unwrap().to_owned();
    let root = app.token_for(&config, "root", &["platform-admins"]).await;
    let stage = format!("{id}.1");
    awaiting(&app, &root, &stage).await;
    let approve = format!("/approvals/{stage}/approve");
    let (status, problem) = app.call(Method::POST, &approve, &root, None).await;
    assert_eq!(status, 403, "{problem}");
    let (status, decided) = app
        .call(
            Method::POST,
            &approve,
            &root,
            Some(&json!({"onBehalf": "bob is on leave; agreed by phone"})),
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(
        decided["decisions"][0]["onBehalf"],
        "bob is on leave; agreed by phone"
    );
    let (status, audit) = app.call(Method::GET, "/audit?limit=50", &root, None).await;
    assert_eq!(status, 200, "{audit}");
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "root"
                && e["action"] == "POST /approvals/{id}/approve"
                && e["target"] == stage.as_str()),
        "the decision on the approvers' behalf is audited: {audit:#}"
    );
    app.running.stop().await.unwrap();
}

/// A stage nobody decides in time escalates when its policy says so, and is rejected
/// when the escalation expires too; a decision after expiry is refused.
#[tokio::test]
async fn an_undecided_stage_escalates_and_then_expires_into_a_rejection() {
    let target = Things::start(Faults::none()).await;
    let item = gated_thing().replace(
        "        - name: owners\n          approvers:\n            owner: true\n        - name: security\n          approvers:\n            groups: [security]\n          require: 2\n",
        "        - name: owners\n          approvers:\n            owner: true\n          expires: 1s\n          escalate:\n            approvers:\n              users: [boss]\n            expires: 2s\n",
    );
    let (app, config, _dir) =
        orchestrator_tests::things::local_app(&target, &[("items/thing.yaml", item)]).await;
    let bob = app.token_for(&config, "bob", &["database"]).await;
    let boss = app.token_for(&config, "boss", &[]).await;

    // Escalated, then approved by the escalation's approver.
    let (_, first) = app
        .submit(&json!({"item": "thing", "fields": {"name": "e1", "environment": "prod"}}))
        .await;
    let id = first["id"].as_str().unwrap().to_owned();
    let stage = format!("{id}.1");
    awaiting(&app, &bob, &stage).await;
    let escalated = awaiting(&app, &boss, &stage).await;
    assert_eq!(escalated["escalated"], true);
    assert!(
        pending(&app, &bob).await.is_empty(),
        "the owners' time is over"
    );
    let (status, problem) = app
        .call(
            Method::POST,
            &format!("/approvals/{stage}/approve"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 404, "{problem}");
    let (status, decided) = app
        .call(
            Method::POST,
            &format!("/approvals/{stage}/approve"),
            &boss,
            None,
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    app.wait_for(&id, "completed").await;
    assert!(
        app.event_kinds(&id)
            .await
            .contains(&"approval_escalated".to_owned())
    );

    // Nobody at all: rejected, and a late decision is refused.
    let (_, second) = app
        .submit(&json!({"item": "thing", "fields": {"name": "e2", "environment": "prod"}}))
        .await;
    let id = second["id"].as_str().unwrap().to_owned();
    let rejected = app
        .wait_within(&id, "rejected", Duration::from_secs(20))
        .await;
    let reason = rejected["reason"].as_str().unwrap();
    assert!(reason.contains("expired undecided"), "{reason}");
    let (status, problem) = app
        .call(
            Method::POST,
            &format!("/approvals/{id}.1/approve"),
            &boss,
            None,
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(target.census().made, 1);
    app.running.stop().await.unwrap();
}

/// A scheduled request waits, visibly, until its `notBefore`, then runs; one can be
/// cancelled while it waits; a time that is not RFC 3339 is refused, naming the field.
#[tokio::test]
async fn a_scheduled_request_waits_for_its_time_and_can_be_cancelled_until_then() {
    let (app, target, _config, _dir) = start().await;
    let at = |seconds: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let (status, problem) = app
        .submit(&json!({"item": "thing", "fields": {"name": "s0"}, "notBefore": "tomorrow"}))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["field"], "notBefore");

    let (status, soon) = app
        .submit(&json!({"item": "thing", "fields": {"name": "s1"}, "notBefore": at(2)}))
        .await;
    assert_eq!(status, 202, "{soon}");
    assert!(soon["notBefore"].is_string(), "{soon}");
    let id = soon["id"].as_str().unwrap().to_owned();
    let (status, later) = app
        .submit(&json!({"item": "thing", "fields": {"name": "s2"}, "notBefore": at(3600)}))
        .await;
    assert_eq!(status, 202, "{later}");
    let later = later["id"].as_str().unwrap().to_owned();

    // Waiting: on the timeline, nothing made yet.
    for _ in 0..100 {
        if app.event_kinds(&id).await.contains(&"scheduled".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.event_kinds(&id).await.contains(&"scheduled".to_owned()));
    assert_eq!(target.census().made, 0, "nothing runs before its time");
    let (status, cancelled) = app
        .call(
            Method::POST,
            &format!("/requests/{later}/cancel"),
            &app.token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");

    app.wait_within(&id, "completed", Duration::from_secs(20))
        .await;
    let census = target.census();
    assert_eq!(census.made, 1, "only the first ran: {census:?}");
    let history = app.get(&format!("/requests/{id}/execution")).await;
    assert!(
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["stateEnteredEventDetails"]["name"] == "Wait until scheduled"),
        "the execution waited in a Wait state"
    );
    app.running.stop().await.unwrap();
}

/// A change calendar, in UTC, with its times `from` and `to` seconds from now.
fn calendar(name: &str, from: i64, to: i64, on_conflict: &str) -> String {
    let civil = |s: i64| {
        let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(s);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    format!(
        "apiVersion: orchestrator.dev/v1\nkind: ChangeCalendar\nmetadata:\n  name: {name}\n  title: Freeze\n  owner: database\nspec:\n  timeZone: UTC\n  scope:\n    items: [thing]\n    when:\n      - path: $.fields.environment\n        equals: prod\n  freezes:\n    - name: Launch week\n      from: \"{}\"\n      to: \"{}\"\n      onConflict: {on_conflict}\n",
        civil(from),
        civil(to)
    )
}

/// A freeze that refuses says which and until when, an admin may override it with a
/// reason, and a request it does not cover goes through; a freeze that waits accepts
/// the request, which runs when the freeze ends.
#[tokio::test]
async fn a_freeze_refuses_or_holds_covered_requests_and_an_admin_may_override_it() {
    let target = Things::start(Faults::none()).await;
    let ungated = gated_thing().replace("  approvals:\n", "  unused:\n");
    let ungated = ungated[..ungated.find("  unused:\n").unwrap()].to_owned()
        + &ungated[ungated.find("  fulfillment:\n").unwrap()..];
    let dir = tempfile::tempdir().unwrap();
    let catalog = orchestrator_tests::write_catalog(
        dir.path(),
        &[
            ("items/thing.yaml", ungated),
            (
                "calendars/refuse.yaml",
                calendar("refuse", -3600, 3600, "refuse"),
            ),
        ],
    );
    let mut config = sandbox_config(dir.path(), catalog.clone());
    config.sandbox = false;
    config.environment = json!({"thingsUrl": target.uri()})
        .as_object()
        .unwrap()
        .clone();
    let app = App::start(&config).await;
    let prod =
        |name: &str| json!({"item": "thing", "fields": {"name": name, "environment": "prod"}});
    // The plan shows the conflict.
    let (status, plan) = app
        .call(
            Method::POST,
            "/requests?dryRun=true",
            &app.token,
            Some(&prod("f0")),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert!(
        plan["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("would be refused") && w.contains("Launch week"))),
        "{plan:#}"
    );
    let (status, problem) = app.submit(&prod("f1")).await;
    assert_eq!(status, 409, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("Launch week") && detail.contains("frozen until"),
        "{detail}"
    );
    let (status, dev) = app
        .submit(&json!({"item": "thing", "fields": {"name": "f2"}}))
        .await;
    assert_eq!(status, 202, "dev is not covered: {dev}");

    let mut overridden = prod("f3");
    overridden["calendarOverride"] = json!("hotfix for INC-7");
    let (status, _) = app.submit(&overridden).await;
    assert_eq!(status, 403, "only admins override");
    let root = app.token_for(&config, "root", &["platform-admins"]).await;
    let (status, accepted) = app
        .call(Method::POST, "/requests", &root, Some(&overridden))
        .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["calendarOverride"], "hotfix for INC-7");
    let path = format!("/requests/{}", accepted["id"].as_str().unwrap());
    let mut status = Value::Null;
    for _ in 0..200 {
        status = app.call(Method::GET, &path, &root, None).await.1["status"].clone();
        if status == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "completed");
    app.running.stop().await.unwrap();

    // The same freeze, waiting instead, ending in three seconds.
    std::fs::remove_file(catalog.join("calendars/refuse.yaml")).unwrap();
    std::fs::write(
        catalog.join("calendars/wait.yaml"),
        calendar("wait", -3600, 3, "wait"),
    )
    .unwrap();
    let app = App::start(&config).await;
    let (status, held) = app.submit(&prod("f4")).await;
    assert_eq!(status, 202, "{held}");
    assert!(held["notBefore"].is_string(), "{held}");
    assert!(
        held["waitingFor"]
            .as_str()
            .is_some_and(|w| w.contains("Launch week")),
        "{held}"
    );
    let id = held["id"].as_str().unwrap().to_owned();
    let made = target.census().made;
    app.wait_within(&id, "completed", Duration::from_secs(20))
        .await;
    assert_eq!(target.census().made, made + 1);
    let timeline = app.get(&format!("/requests/{id}/events")).await;
    assert!(
        timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "scheduled"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("waits out the freeze"))),
        "{timeline:#}"
    );
    app.running.stop().await.unwrap();
}

/// What a receiver got so far at `path`, as JSON bodies with their headers.
async fn received(
    receiver: &wiremock::MockServer,
    path: &str,
) -> Vec<(Value, reqwest::header::HeaderMap)> {
    receiver
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == path)
        .map(|r| {
            let mut headers = reqwest::header::HeaderMap::new();
            for (k, v) in r.headers.iter() {
                if let (Ok(k), Ok(v)) = (
                    reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()),
                    reqwest::header::HeaderValue::from_bytes(v.as_bytes()),
                ) {
                    headers.insert(k, v);
                }
            }
            (
                serde_json::from_slice(&r.body).unwrap_or(Value::Null),
                headers,
            )
        })
        .collect()
}

/// Waits until `path` received a body that `wanted` accepts, and returns it.
async fn delivered(
    receiver: &wiremock::MockServer,
    path: &str,
    wanted: impl Fn(&Value) -> bool,
) -> (Value, reqwest::header::HeaderMap) {
    for _ in 0..300 {
        if let Some(found) = received(receiver, path)
            .await
            .into_iter()
            .find(|(body, _)| wanted(body))
        {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got: Vec<Value> = received(receiver, path)
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    panic!("nothing wanted reached {path}; got {got:#?}");
}

#[tokio::test]
async fn approvers_and_subscribers_are_told_through_slack_and_a_signed_webhook() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let target = Things::start(Faults::none()).await;
    let receiver = MockServer::start().await;
    // Slack's incoming webhooks take JSON and answer `ok`.
    Mock::given(method("POST"))
        .and(path("/services/T000/B000/XXXX"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&receiver)
        .await;
    // The webhook is down for its first delivery: it comes again, the same.
    Mock::given(method("POST"))
        .and(path("/hooks/orchestrator"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/orchestrator"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(&receiver)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let teams = format!(
        "{}      notifications:\n        - name: dba-slack\n          events: [approval_needed, completed]\n          slack:\n            urlSecret: slack-dba\n",
        orchestrator_tests::TEAMS
    );
    let catalog = orchestrator_tests::write_catalog(
        dir.path(),
        &[("items/thing.yaml", gated_thing()), ("teams.yaml", teams)],
    );
    let secrets = dir.path().join("secrets.json");
    let slack_url = format!("{}/services/T000/B000/XXXX", receiver.uri());
    std::fs::write(
        &secrets,
        json!({"slack-dba": slack_url, "hook-key": "It's a Secret to Everybody"}).to_string(),
    )
    .unwrap();
    let mut config = sandbox_config(dir.path(), catalog);
    config.sandbox = false;
    config.secrets_file = Some(secrets);
    config.environment = json!({"thingsUrl": target.uri()})
        .as_object()
        .cloned()
        .unwrap();
    config.notifications.subscriptions = vec![serde_json::from_value(json!({
        "name": "audit-hook",
        "events": ["approval_needed", "approved", "denied", "completed", "failed", "comment"],
        "webhook": {"url": format!("{}/hooks/orchestrator", receiver.uri()), "signingSecret": "hook-key"},
    }))
    .unwrap()];
    let app = App::start(&config).await;
    let alice = app.token_for(&config, "alice", &["developers"]).await;
    let bob = app.token_for(&config, "bob", &["database"]).await;
    let carol = app.token_for(&config, "carol", &["security"]).await;
    let dave = app.token_for(&config, "dave", &["security"]).await;

    let (status, prod) = app
        .call(
            Method::POST,
            "/requests",
            &alice,
            Some(&json!({"item": "thing", "fields": {"name": "p1", "environment": "prod"}})),
        )
        .await;
    assert_eq!(status, 202, "{prod}");
    let id = prod["id"].as_str().unwrap().to_owned();

    // The owning team hears on Slack that its approval awaits, with a link to decide.
    let (slack, _) = delivered(&receiver, "/services/T000/B000/XXXX", |b| {
        b["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Approval needed"))
    })
    .await;
    let text = slack["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(text.contains(&id), "{text}");
    assert!(text.contains("awaits team database"), "{text}");
    assert!(
        text.contains("/#/approvals|Approve or deny in the portal>"),
        "{text}"
    );

    // The signed webhook gets the notification itself, signed as `webhook` actions are;
    // its first delivery failed and the retry carries the same id.
    let (hook, headers) = delivered(&receiver, "/hooks/orchestrator", |b| {
        b["type"] == "notification.approval_needed"
    })
    .await;
    assert_eq!(hook["request"]["id"], id.as_str());
    assert_eq!(hook["request"]["owner"], "database");
    assert_eq!(hook["approval"]["approvers"], json!({"owner": true}));
    assert_eq!(hook["approval"]["id"], format!("{id}.1"));
    assert!(
        hook["link"].as_str().unwrap().ends_with("/#/approvals"),
        "{hook}"
    );
    let raw = serde_json::to_vec(&hook).unwrap();
    let signature = headers["x-orchestrator-signature-256"].to_str().unwrap();
    assert!(
        shared::signing::verify(b"It's a Secret to Everybody", &raw, signature),
        "the body is signed with the subscription's secret"
    );
    assert_eq!(
        headers["x-orchestrator-event"],
        "notification.approval_needed"
    );
    let delivery = headers["x-orchestrator-delivery"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut tries = 0;
    for _ in 0..100 {
        tries = received(&receiver, "/hooks/orchestrator")
            .await
            .into_iter()
            .filter(|(b, _)| b["id"] == delivery.as_str())
            .count();
        if tries >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(tries, 2, "one failed delivery, then the retry");

    // Decisions and the outcome reach the subscribers too.
    let approve = |n: &str| format!("/approvals/{n}/approve");
    let first = format!("{id}.1");
    awaiting(&app, &bob, &first).await;
    let (status, _) = app.call(Method::POST, &approve(&first), &bob, None).await;
    assert_eq!(status, 200);
    delivered(&receiver, "/hooks/orchestrator", |b| {
        b["type"] == "notification.approved" && b["approval"]["stage"] == "owners"
    })
    .await;
    // The security group's stage: the webhook (which hears of all) names who decides.
    let (second, _) = delivered(&receiver, "/hooks/orchestrator", |b| {
        b["type"] == "notification.approval_needed" && b["approval"]["stage"] == "security"
    })
    .await;
    assert_eq!(second["approval"]["approversDescribed"], "group security");
    let second = format!("{id}.2");
    awaiting(&app, &carol, &second).await;
    app.call(Method::POST, &approve(&second), &carol, None)
        .await;
    app.call(Method::POST, &approve(&second), &dave, None).await;
    app.wait_for(&id, "completed").await;
    delivered(&receiver, "/services/T000/B000/XXXX", |b| {
        b["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Completed"))
    })
    .await;

    // A denial: the reason goes out, and the request's end as a failure.
    let (_, denied) = app
        .call(
            Method::POST,
            "/requests",
            &alice,
            Some(&json!({"item": "thing", "fields": {"name": "p2", "environment": "prod"}})),
        )
        .await;
    let id2 = denied["id"].as_str().unwrap().to_owned();
    awaiting(&app, &bob, &format!("{id2}.1")).await;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/approvals/{id2}.1/deny"),
            &bob,
            Some(&json!({"reason": "not in prod this quarter"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (denial, _) = delivered(&receiver, "/hooks/orchestrator", |b| {
        b["type"] == "notification.denied" && b["request"]["id"] == id2.as_str()
    })
    .await;
    assert!(
        denial["message"]
            .as_str()
            .unwrap()
            .contains("not in prod this quarter"),
        "{denial}"
    );
    delivered(&receiver, "/hooks/orchestrator", |b| {
        b["type"] == "notification.failed" && b["request"]["id"] == id2.as_str()
    })
    .await;

    // No notification carries a secret: not the Slack URL, not the signing key.
    for (body, _) in received(&receiver, "/hooks/orchestrator").await {
        let text = body.to_string();
        assert!(
            !text.contains("XXXX") && !text.contains("Secret to Everybody"),
            "{text}"
        );
    }
    let timeline = app.request(&id).await.to_string();
    assert!(!timeline.contains("XXXX"), "{timeline}");
}

/// `thing` with an `environment` field and a policy on deleting prod ones: the owning
/// team, escalating to `boss` after `expires`.
fn thing_with_deletion_policy(expires: &str) -> String {
    thing_item("5s")
        .replace(
            "        name:\n          type: string\n",
            "        name:\n          type: string\n        environment:\n          type: string\n          enum: [dev, prod]\n          default: dev\n",
        )
        .replace(
            "  fulfillment:\n",
            &format!("  approvals:\n    - name: prod deletions\n      operations: [delete]\n      when:\n        - path: $.fields.environment\n          equals: prod\n      stages:\n        - name: owners\n          approvers:\n            owner: true\n          expires: {expires}\n          escalate:\n            approvers:\n              users: [boss]\n            expires: {expires}\n  fulfillment:\n"),
        )
}

/// Day-2 deletions go through the policies and calendars that name them: the deletion
/// holds its resource's lock while it awaits approval and its window, runs once both
/// allow it, and a denial or an expiry rejects it and frees the lock.
#[tokio::test]
async fn a_prod_deletion_waits_for_its_approval_and_window_holding_the_lock() {
    let target = Things::start(Faults::none()).await;
    let dir = tempfile::tempdir().unwrap();
    let window = calendar("deletions", -3600, 6, "wait").replace(
        "    items: [thing]\n",
        "    items: [thing]\n    operations: [delete]\n",
    );
    let catalog = orchestrator_tests::write_catalog(
        dir.path(),
        &[
            ("items/thing.yaml", thing_with_deletion_policy("1h")),
            (
                "items/quick.yaml",
                thing_with_deletion_policy("2s")
                    .replace("  name: thing\n", "  name: quick-thing\n"),
            ),
            ("calendars/deletions.yaml", window),
        ],
    );
    let mut config = sandbox_config(dir.path(), catalog);
    config.sandbox = false;
    config.environment = json!({"thingsUrl": target.uri()})
        .as_object()
        .unwrap()
        .clone();
    let app = App::start(&config).await;
    let alice = app.token_for(&config, "alice", &["developers"]).await;
    let bob = app.token_for(&config, "bob", &["database"]).await;
    let provision = |item: &str, name: &str| {
        let app = &app;
        let alice = alice.clone();
        let body = json!({"item": item, "fields": {"name": name, "environment": "prod"}});
        async move {
            let (status, made) = app
                .call(Method::POST, "/requests", &alice, Some(&body))
                .await;
            assert_eq!(status, 202, "provisioning is not gated: {made}");
            let id = made["id"].as_str().unwrap().to_owned();
            app.wait_for(&id, "completed").await;
            id
        }
    };
    let delete = |id: String| {
        let app = &app;
        let alice = alice.clone();
        async move {
            let (status, accepted) = app
                .call(Method::DELETE, &format!("/resources/{id}"), &alice, None)
                .await;
            assert_eq!(status, 202, "{accepted}");
            accepted
        }
    };

    // In the window's freeze: approved, then it waits for the freeze's end, locked.
    let first = provision("thing", "p1").await;
    // The plan says what the deletion would wait for.
    let (status, plan) = app
        .call(
            Method::DELETE,
            &format!("/resources/{first}?dryRun=true"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["approvals"][0]["stage"], "owners", "{plan}");
    assert!(
        plan["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("Launch week"))),
        "{plan}"
    );
    let accepted = delete(first.clone()).await;
    let deletion = accepted["request"]["id"].as_str().unwrap().to_owned();
    assert!(
        accepted["request"]["waitingFor"]
            .as_str()
            .is_some_and(|w| w.contains("Launch week")),
        "{accepted}"
    );
    app.wait_for(&deletion, "awaiting_approval").await;
    let resource = app.get(&format!("/resources/{first}")).await;
    assert_eq!(
        resource["lock"]["requestId"],
        deletion.as_str(),
        "{resource}"
    );
    let (status, locked) = app
        .call(Method::DELETE, &format!("/resources/{first}"), &alice, None)
        .await;
    assert_eq!(status, 409, "the waiting deletion holds the lock: {locked}");
    let stage = format!("{deletion}.1");
    awaiting(&app, &bob, &stage).await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/approvals/{stage}/approve"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let removed = target.census().removed;
    app.wait_within(&deletion, "completed", Duration::from_secs(20))
        .await;
    assert_eq!(target.census().removed, removed + 1);
    let timeline = app.get(&format!("/requests/{deletion}/events")).await;
    let kinds: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    let at = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k}: {kinds:?}"))
    };
    assert!(at("approval_requested") < at("approved"), "{kinds:?}");
    assert!(
        at("approved") < at("scheduled"),
        "approval first, then the window: {kinds:?}"
    );
    assert_eq!(
        app.get(&format!("/resources/{first}")).await["status"],
        "deleted"
    );

    // A denial rejects the deletion with its reason and frees the lock.
    let second = provision("thing", "p2").await;
    let deletion = delete(second.clone()).await["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stage = format!("{deletion}.1");
    awaiting(&app, &bob, &stage).await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/approvals/{stage}/deny"),
            &bob,
            Some(&json!({"reason": "still serving traffic"})),
        )
        .await;
    assert_eq!(status, 200);
    let rejected = app.wait_for(&deletion, "rejected").await;
    assert!(
        rejected["reason"]
            .as_str()
            .is_some_and(|r| r.contains("still serving traffic")),
        "{rejected}"
    );
    let resource = app.get(&format!("/resources/{second}")).await;
    assert_eq!(resource["status"], "ready");
    assert!(resource.get("lock").is_none(), "released: {resource}");

    // Nobody decides: it escalates to boss, then expires into a rejection.
    let third = provision("quick-thing", "p3").await;
    let deletion = delete(third.clone()).await["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let boss = app.token_for(&config, "boss", &["managers"]).await;
    let escalated = awaiting(&app, &boss, &format!("{deletion}.1")).await;
    assert_eq!(escalated["escalated"], true);
    let rejected = app
        .wait_within(&deletion, "rejected", Duration::from_secs(20))
        .await;
    assert!(
        rejected["reason"]
            .as_str()
            .is_some_and(|r| r.contains("expired")),
        "{rejected}"
    );
    assert!(
        app.get(&format!("/resources/{third}"))
            .await
            .get("lock")
            .is_none()
    );
    app.running.stop().await.unwrap();
}

/// `GET /approvals` reads an index of the pending stages, not every stage ever opened: a
/// decided stage leaves it; an entry left stale (a crash between the two writes) is
/// skipped and removed; and a store from before the index gets it built once from the
/// stage records, so nothing pending is lost in an upgrade.
#[tokio::test]
async fn the_approvals_awaiting_a_caller_come_from_the_pending_index() {
    let (app, _target, config, _dir) = start().await;
    let bob = app.token_for(&config, "bob", &["database"]).await;
    let mut stages = Vec::new();
    for name in ["i1", "i2"] {
        let (status, prod) = app
            .submit(&json!({"item": "thing", "fields": {"name": name, "environment": "prod"}}))
            .await;
        assert_eq!(status, 202, "{prod}");
        let stage = format!("{}.1", prod["id"].as_str().unwrap());
        awaiting(&app, &bob, &stage).await;
        stages.push(stage);
    }
    let state = app.running.state.state.clone();
    let indexed = || async {
        state
            .list("approvals-pending", "", 100)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>()
    };
    assert_eq!(indexed().await, stages);

    // Deciding a stage takes it off the index (a denial: no stage follows).
    let (status, decided) = app
        .call(
            Method::POST,
            &format!("/approvals/{}/deny", stages[0]),
            &bob,
            Some(&json!({"reason": "not this week"})),
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(indexed().await, stages[1..]);

    // A stale entry (its stage decided) is skipped and removed.
    state
        .put("approvals-pending", &stages[0], &json!({}), None)
        .await
        .unwrap();
    let listed: Vec<Value> = pending(&app, &bob).await;
    assert_eq!(
        listed.iter().map(|a| a["id"].clone()).collect::<Vec<_>>(),
        [json!(stages[1])]
    );
    assert_eq!(indexed().await, stages[1..]);

    // A store from before the index: no entries, no marker. The pending stage is found.
    let entry = state
        .get("approvals-pending", &stages[1])
        .await
        .unwrap()
        .unwrap();
    state
        .delete("approvals-pending", &stages[1], entry.version)
        .await
        .unwrap();
    let marker = state
        .get("approvals-pending-built", "built")
        .await
        .unwrap()
        .unwrap();
    state
        .delete("approvals-pending-built", "built", marker.version)
        .await
        .unwrap();
    let listed = pending(&app, &bob).await;
    assert_eq!(
        listed.iter().map(|a| a["id"].clone()).collect::<Vec<_>>(),
        [json!(stages[1])]
    );
    assert_eq!(indexed().await, stages[1..]);
    app.running.stop().await.unwrap();
}
