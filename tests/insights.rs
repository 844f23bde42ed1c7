//! Lead time insights end to end in local mode: a request that ends carries its lead
//! time, and `GET /insights/lead-time` reads the figures of what the caller may see,
//! refusing what it cannot answer with a problem that names the parameter.

use orchestrator_tests::things::{Faults, Things, local_app, thing_item};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn ended_requests_carry_their_lead_time_and_the_insights_count_what_the_caller_may_see() {
    let target = Things::start(Faults::none()).await;
    let (app, config, _dir) = local_app(&target, &[("items/thing.yaml", thing_item("5s"))]).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, body) = app
            .submit(&json!({"item": "thing", "fields": {"name": format!("t{n}")}}))
            .await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let request = app.wait_for(id, "completed").await;
        let lead = &request["leadTime"];
        assert_eq!(lead["mode"], "automated", "{request:#}");
        let total = lead["totalMs"].as_u64().unwrap();
        let parts: u64 = [
            "queuedMs",
            "approvalMs",
            "scheduledMs",
            "personMs",
            "automatedMs",
            "pausedMs",
        ]
        .iter()
        .map(|p| lead[p].as_u64().unwrap())
        .sum();
        assert_eq!(parts, total, "{lead}");
        assert!(lead["firstResponseMs"].is_u64(), "{lead}");
    }

    // The requester sees their own, grouped as asked.
    let (status, mine) = app
        .call(
            Method::GET,
            "/insights/lead-time?groupBy=mode",
            &app.token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["overall"]["ended"], 3, "{mine:#}");
    assert_eq!(mine["overall"]["completed"], 3);
    assert_eq!(mine["overall"]["successRate"], 1.0);
    assert_eq!(mine["groups"][0]["key"], "automated");
    assert_eq!(mine["groups"][0]["ended"], 3);
    assert!(
        mine["overall"]["leadTime"]["p50Ms"].as_u64().unwrap()
            <= mine["overall"]["leadTime"]["p99Ms"].as_u64().unwrap()
    );
    assert_eq!(mine["truncated"], false);

    // A member of the owning team sees the team's; someone else sees nothing of it, and
    // may not ask for a team they are not in.
    let member = app.token_for(&config, "dbadmin", &["database"]).await;
    let (_, team) = app
        .call(
            Method::GET,
            "/insights/lead-time?team=database&groupBy=item&outcome=completed",
            &member,
            None,
        )
        .await;
    assert_eq!(team["overall"]["ended"], 3, "{team:#}");
    assert_eq!(team["groups"][0]["key"], "thing");
    let stranger = app.token_for(&config, "eve", &["developers"]).await;
    let (_, none) = app
        .call(Method::GET, "/insights/lead-time", &stranger, None)
        .await;
    assert_eq!(none["overall"]["ended"], 0, "{none:#}");
    let (status, refused) = app
        .call(
            Method::GET,
            "/insights/lead-time?team=database",
            &stranger,
            None,
        )
        .await;
    assert_eq!(status, 403, "{refused}");
    let (_, failed) = app
        .call(
            Method::GET,
            "/insights/lead-time?outcome=failed",
            &app.token,
            None,
        )
        .await;
    assert_eq!(failed["overall"]["ended"], 0, "{failed:#}");
    let (_, before) = app
        .call(
            Method::GET,
            "/insights/lead-time?from=2020-01-01&to=2020-02-01",
            &app.token,
            None,
        )
        .await;
    assert_eq!(before["overall"]["ended"], 0, "{before:#}");
}

#[tokio::test]
async fn what_the_insights_cannot_answer_is_refused_naming_the_parameter() {
    let target = Things::start(Faults::none()).await;
    let (app, _config, _dir) = local_app(&target, &[("items/thing.yaml", thing_item("5s"))]).await;
    for (query, parameter) in [
        ("colour=blue", "colour"),
        ("groupBy=colour", "groupBy"),
        ("mode=robots", "mode"),
        ("outcome=in_progress", "outcome"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-02-01&to=2026-01-01", "to"),
        ("from=2023-01-01&to=2026-01-01", "from"),
    ] {
        let (status, problem) = app
            .call(
                Method::GET,
                &format!("/insights/lead-time?{query}"),
                &app.token,
                None,
            )
            .await;
        assert_eq!(status, 400, "{query}: {problem}");
        assert_eq!(
            problem["parameter"],
            Value::from(parameter),
            "{query}: {problem:#}"
        );
    }
}
