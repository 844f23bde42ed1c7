//! A catalog repository on GitHub, stood in for by wiremock: the commits ingestion
//! fetches (Git trees and blobs, contents by path) and the push events GitHub delivers,
//! in the shapes GitHub documents.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const REPO: &str = "acme/platform-catalog";
pub const HOOK_SECRET: &str = "hook-s3cret";
pub const TOKEN: &str = "ghs_ingestT0ken";

/// The example catalog's files, as the repository holds them under `catalog/`.
pub fn example_files() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(
                    format!("catalog/{relative}"),
                    std::fs::read_to_string(&path).unwrap(),
                );
            }
        }
    }
    let root = crate::example_catalog();
    let mut files = BTreeMap::new();
    walk(&root, &root, &mut files);
    files.insert("README.md".to_owned(), "# not the catalog".to_owned());
    files
}

/// GitHub's API for commit `sha` holding `files`: its recursive tree and each blob.
pub async fn serve_commit(github: &MockServer, sha: &str, files: &BTreeMap<String, String>) {
    let mut tree = Vec::new();
    for (i, (file, text)) in files.iter().enumerate() {
        let blob = format!("{sha}b{i:04}");
        tree.push(json!({"path": file, "mode": "100644", "type": "blob", "sha": blob, "size": text.len()}));
        // The same file by path at the commit (a push applied on top of the live version).
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/contents/{file}")))
            .and(query_param("ref", sha))
            .and(header("accept", "application/vnd.github.raw+json"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_string(text.clone()))
            .mount(github)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/git/blobs/{blob}")))
            .and(header("accept", "application/vnd.github.raw+json"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_string(text.clone()))
            .mount(github)
            .await;
    }
    tree.push(json!({"path": "catalog", "mode": "040000", "type": "tree", "sha": "t1"}));
    Mock::given(method("GET"))
        .and(path(format!("/repos/{REPO}/git/trees/{sha}")))
        .and(query_param("recursive", "1"))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"sha": sha, "tree": tree, "truncated": false})),
        )
        .expect(..=1)
        .mount(github)
        .await;
}

/// Expects one commit status on `sha` in `state`.
pub async fn expect_status(github: &MockServer, sha: &str, state: &str) {
    Mock::given(method("POST"))
        .and(path(format!("/repos/{REPO}/statuses/{sha}")))
        .and(body_partial_json(
            json!({"state": state, "context": "orchestrator/catalog"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .expect(1)
        .mount(github)
        .await;
}

/// A push event as GitHub documents it (the fields a real delivery carries).
pub fn push_event(reference: &str, before: &str, after: &str) -> Value {
    let commit = json!({
        "id": after, "tree_id": "f".repeat(40), "distinct": true,
        "message": "Catalog: new title", "timestamp": "2026-11-21T10:00:00Z",
        "url": format!("https://github.com/{REPO}/commit/{after}"),
        "author": {"name": "Dana", "email": "dana@acme.example", "username": "dana"},
        "committer": {"name": "Dana", "email": "dana@acme.example", "username": "dana"},
        "added": [], "removed": [], "modified": ["catalog/items/messaging/kafka-topic.yaml"]
    });
    json!({
        "ref": reference, "before": before, "after": after,
        "created": false, "deleted": false, "forced": false, "base_ref": null,
        "compare": format!("https://github.com/{REPO}/compare/{}...{}", &before[..12], &after[..12]),
        "commits": [commit], "head_commit": commit,
        "repository": {"id": 1, "name": "platform-catalog", "full_name": REPO,
                       "private": true, "default_branch": "main"},
        "pusher": {"name": "dana", "email": "dana@acme.example"},
        "sender": {"login": "dana", "id": 7}
    })
}

/// A commit SHA made of `c`.
pub fn sha(c: char) -> String {
    c.to_string().repeat(40)
}
