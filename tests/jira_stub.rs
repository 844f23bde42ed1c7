//! A wiremock stand-in for JIRA's REST API, with the responses its documentation gives
//! (`POST /rest/api/2/issue` answers 201 with the key; `/search/jql` lists issues).

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The label search finds no issue (for any request).
pub async fn no_existing_issue(jira: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/rest/api/2/search/jql"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"issues": []})))
        .mount(jira)
        .await;
}

/// Creating an issue succeeds with `key`; add matchers or `.expect(n)` before mounting.
pub fn creates_issue(key: &str) -> Mock {
    Mock::given(method("POST"))
        .and(path("/rest/api/2/issue"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "1", "key": key})))
}

/// JIRA already holds `key` for request `id` (an earlier attempt created it), and no
/// other issue may be created.
pub async fn already_has_issue(jira: &MockServer, id: &str, key: &str) {
    Mock::given(method("GET"))
        .and(path("/rest/api/2/search/jql"))
        .and(query_param(
            "jql",
            format!("labels = \"orchestrator-{id}\""),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"issues": [{"id": "9", "key": key}]})),
        )
        .mount(jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/2/issue"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(jira)
        .await;
}
