//! Catalog ingestion from GitHub: a push to the catalog repository's branch becomes the
//! new catalog version, whole, or is rejected whole (the live catalog stays on the last
//! good version), and the author sees which on the commit (`orchestrator/catalog`).
//!
//! Each accepted push is synchronised from the pushed tree itself (the Git Trees API,
//! then each file's blob), so the version served is exactly the commit's catalog,
//! whatever the payload lists or leaves out (GitHub caps the commits a push event
//! lists, and forced pushes rewrite history). Ingestions run one at a time.

pub mod versions;

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::catalog::load::SourceFile;
use crate::catalog::snapshot::CatalogSnapshot;
use crate::catalog::{Severity, validate_files};
use crate::config::GithubCatalogConfig;
use crate::integrations::github::GithubApi;
use crate::ports::{CatalogStore, Clock, StateStore, StoreError, Workflows};

/// GitHub lists at most this many commits in a push event; a push listing as many may
/// have more, so it is synchronised in full.
const MAX_LISTED_COMMITS: usize = 2048;

/// What a push changed in the catalog, by path: `Some` content kept from the live
/// version, `None` to fetch at the pushed commit.
enum Changes {
    Files(BTreeMap<String, Option<String>>),
    /// No catalog file changed.
    None,
}

/// The commit status context authors see on their commits.
pub const STATUS_CONTEXT: &str = "orchestrator/catalog";

/// Which version is live (key `live`).
const LIVE: &str = "catalog-live";

/// A kept version, as `GET /catalog/versions` lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub sha: String,
    #[serde(with = "crate::timestamp")]
    pub at: time::OffsetDateTime,
    pub summary: String,
    pub files: usize,
    pub live: bool,
}

/// The commit SHA of the version ingestion made live, if any (one read: what a process
/// compares with the version it serves).
pub async fn live_version(state: &dyn StateStore) -> Result<Option<String>, String> {
    let Some(live) = state.get(LIVE, "live").await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    live.value
        .get("sha")
        .and_then(Value::as_str)
        .map(|sha| Some(sha.to_owned()))
        .ok_or_else(|| "the live catalog version record has no sha".to_owned())
}

/// The catalog version that was live when the process stopped, if ingestion ever made
/// one live: its files, validated again.
pub async fn restore(state: &dyn StateStore) -> Result<Option<CatalogSnapshot>, String> {
    let Some(live) = state.get(LIVE, "live").await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let Some(sha) = live.value.get("sha").and_then(Value::as_str) else {
        return Err("the live catalog version record has no sha".to_owned());
    };
    let (_, files) = versions::load(state, sha)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the live catalog version {sha} is not kept"))?;
    CatalogSnapshot::from_report(sha.to_owned(), validate_files(&files))
        .map(Some)
        .map_err(|e| format!("catalog version {sha}: {e}"))
}

/// Ingestion reports, by id (the delivery's `X-GitHub-Delivery`): a delivery with a
/// report was handled, and its replay is not.
pub const INGESTIONS: &str = "catalog-ingestions";

/// GitHub's push event, the fields ingestion reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Push {
    #[serde(rename = "ref")]
    pub reference: String,
    pub before: String,
    pub after: String,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub forced: bool,
    pub repository: Repository,
    #[serde(default)]
    pub commits: Vec<Value>,
    pub head_commit: Option<HeadCommit>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HeadCommit {
    /// When the commit was made (RFC 3339).
    #[serde(with = "crate::timestamp")]
    pub timestamp: time::OffsetDateTime,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub full_name: String,
}

/// What a push means for the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not the catalog's: why.
    Ignore(String),
    /// The branch moved to this commit: synchronise the catalog from it.
    Sync(String),
}

/// Only pushes to the configured repository and branch count; tag pushes and branch
/// deletions do not.
pub fn decide(push: &Push, config: &GithubCatalogConfig) -> Decision {
    if !push
        .repository
        .full_name
        .eq_ignore_ascii_case(&config.repository)
    {
        return Decision::Ignore(format!(
            "a push to {}, not to the catalog's repository {}",
            push.repository.full_name, config.repository
        ));
    }
    if push.reference.starts_with("refs/tags/") {
        return Decision::Ignore(format!("a tag push ({})", push.reference));
    }
    let branch = format!("refs/heads/{}", config.branch);
    if push.reference != branch {
        return Decision::Ignore(format!("a push to {}, not to {branch}", push.reference));
    }
    if push.deleted || push.after.chars().all(|c| c == '0') {
        return Decision::Ignore("the branch was deleted".to_owned());
    }
    Decision::Sync(push.after.clone())
}

/// What became of a push, kept at `GET /catalog/ingestions/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Ingestion {
    pub id: String,
    pub repository: String,
    pub sha: String,
    /// `live`, `rejected`, `ignored`, `superseded` (valid and kept, but a later commit
    /// is live) or `failed` (GitHub or storage did not answer).
    pub outcome: String,
    pub summary: String,
    /// Every finding of the validation, `file:line:column: message`.
    pub findings: Vec<String>,
    pub files: usize,
    #[serde(with = "crate::timestamp")]
    pub at: time::OffsetDateTime,
}

pub struct Ingest {
    pub config: GithubCatalogConfig,
    pub github: GithubApi,
    pub catalog: Arc<dyn CatalogStore>,
    pub workflows: Arc<dyn Workflows>,
    pub state: Arc<dyn StateStore>,
    pub clock: Arc<dyn Clock>,
    /// One ingestion at a time: versions never interleave.
    running: tokio::sync::Mutex<()>,
}

/// Why a push could not be ingested now (GitHub should deliver it again).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Ingest {
    pub fn new(
        config: GithubCatalogConfig,
        github: GithubApi,
        catalog: Arc<dyn CatalogStore>,
        workflows: Arc<dyn Workflows>,
        state: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
    ) -> Ingest {
        Ingest {
            config,
            github,
            catalog,
            workflows,
            state,
            clock,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// The report of a delivery handled before (so a replay is not handled again).
    pub async fn report(&self, delivery: &str) -> Result<Option<Ingestion>, StoreError> {
        self.state
            .get(INGESTIONS, delivery)
            .await?
            .map(|v| {
                serde_json::from_value(v.value).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .transpose()
    }

    /// Handles a push delivery: ingests it, or says why not, and keeps the report.
    pub async fn push(&self, delivery: &str, push: &Push) -> Result<Ingestion, IngestError> {
        let mut report = Ingestion {
            id: delivery.to_owned(),
            repository: push.repository.full_name.clone(),
            sha: push.after.clone(),
            outcome: "ignored".to_owned(),
            summary: String::new(),
            findings: Vec::new(),
            files: 0,
            at: self.clock.now(),
        };
        match decide(push, &self.config) {
            Decision::Ignore(why) => report.summary = why,
            Decision::Sync(sha) => {
                let committed = push.head_commit.as_ref().map(|c| c.timestamp);
                let _one = self.running.lock().await;
                self.sync(&sha, committed, Some(push), &mut report).await;
            }
        }
        let value =
            serde_json::to_value(&report).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match self.state.put(INGESTIONS, delivery, &value, None).await {
            // The same delivery, handled at the same time: the same report.
            Ok(_) | Err(StoreError::VersionConflict { .. }) => Ok(report),
            Err(e) => Err(e.into()),
        }
    }

    /// Synchronises from commit `sha`, made at `committed` (when known): a push older
    /// than the live version's commit is kept but not served, so that of two pushes
    /// handled out of order the later commit wins.
    async fn sync(
        &self,
        sha: &str,
        committed: Option<time::OffsetDateTime>,
        push: Option<&Push>,
        report: &mut Ingestion,
    ) {
        let fetched = match self.incremental(push).await {
            Some(Changes::Files(changed)) => self.apply(sha, changed).await,
            Some(Changes::None) => {
                report.outcome = "unchanged".to_owned();
                report.summary = "the push changed no file of the catalog".to_owned();
                return;
            }
            None => self.fetch(sha).await,
        };
        let files = match fetched {
            Ok(files) => files,
            Err(why) => {
                report.outcome = "failed".to_owned();
                report.summary = why;
                self.set_status(sha, "error", &report.summary).await;
                return;
            }
        };
        report.files = files.len();
        let validation = validate_files(&files);
        report.findings = validation
            .findings
            .iter()
            .map(|f| {
                let severity = if f.severity == Severity::Error {
                    "error"
                } else {
                    "warning"
                };
                format!(
                    "{}:{}:{}: {severity}: {}",
                    f.file, f.line, f.column, f.message
                )
            })
            .collect();
        let errors = validation
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        if errors > 0 {
            let first = validation
                .findings
                .iter()
                .find(|f| f.severity == Severity::Error)
                .map(|f| format!("{}:{}: {}", f.file, f.line, f.message))
                .unwrap_or_default();
            report.outcome = "rejected".to_owned();
            report.summary = format!(
                "{errors} error(s); the catalog stays at {}. First: {first}",
                self.catalog.current().version
            );
            self.set_status(sha, "failure", &report.summary).await;
            return;
        }
        let snapshot = match CatalogSnapshot::from_report(sha.to_owned(), validation) {
            Ok(snapshot) => snapshot,
            Err(e) => {
                report.outcome = "rejected".to_owned();
                report.summary = e.to_string();
                self.set_status(sha, "failure", &report.summary).await;
                return;
            }
        };
        let (items, bundles) = (snapshot.catalog.items.len(), snapshot.catalog.bundles.len());
        // The state machines first: a request for a new bundle finds its machine.
        if let Err(why) = deploy(self.workflows.as_ref(), &snapshot).await {
            report.outcome = "failed".to_owned();
            report.summary = why;
            self.set_status(sha, "error", &report.summary).await;
            return;
        }
        let summary = format!("live: {items} items, {bundles} bundles");
        // Kept first: what is served is always a version a restart finds again.
        let kept = match self.keep(sha, &files, &summary, committed).await {
            Ok(kept) => kept,
            Err(e) => {
                report.outcome = "failed".to_owned();
                report.summary = format!("the version could not be stored: {e}");
                self.set_status(sha, "error", &report.summary).await;
                return;
            }
        };
        if let Some(later) = kept {
            report.outcome = "superseded".to_owned();
            report.summary =
                format!("valid, and kept; not served: the later commit {later} is live");
            self.set_status(sha, "success", &report.summary).await;
            return;
        }
        self.catalog.publish(snapshot);
        report.outcome = "live".to_owned();
        report.summary = summary;
        tracing::info!(sha, items, bundles, "catalog version from GitHub is live");
        self.set_status(sha, "success", &report.summary).await;
    }

    /// The kept versions, newest first, and which is live.
    pub async fn versions(&self) -> Result<Vec<VersionInfo>, StoreError> {
        let live = self.live().await?;
        let mut listed = Vec::new();
        for (sha, kept) in versions::list(self.state.as_ref()).await? {
            listed.push(VersionInfo {
                live: live.as_deref() == Some(sha.as_str()),
                files: kept.files(),
                sha,
                at: kept.at,
                summary: kept.summary,
            });
        }
        listed.sort_by_key(|v| std::cmp::Reverse(v.at));
        Ok(listed)
    }

    async fn live(&self) -> Result<Option<String>, StoreError> {
        Ok(self.state.get(LIVE, "live").await?.and_then(|v| {
            v.value
                .get("sha")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }))
    }

    /// Serves kept version `sha` again (rolling the catalog back or forward); `None` when
    /// no such version was kept. The version is validated again first.
    pub async fn activate(&self, sha: &str) -> Result<Option<Result<String, String>>, StoreError> {
        let _one = self.running.lock().await;
        let Some((kept, files)) = versions::load(self.state.as_ref(), sha).await? else {
            return Ok(None);
        };
        let summary = kept.summary;
        let snapshot = match CatalogSnapshot::from_report(sha.to_owned(), validate_files(&files)) {
            Ok(snapshot) => snapshot,
            Err(e) => return Ok(Some(Err(format!("version {sha} no longer validates: {e}")))),
        };
        if let Err(why) = deploy(self.workflows.as_ref(), &snapshot).await {
            return Ok(Some(Err(why)));
        }
        let expected = self.state.get(LIVE, "live").await?.map(|v| v.version);
        self.state
            .put(LIVE, "live", &json!({ "sha": sha }), expected)
            .await?;
        self.catalog.publish(snapshot);
        tracing::warn!(sha, "catalog version activated");
        Ok(Some(Ok(summary)))
    }

    /// A full synchronisation from the branch's head (an admin's `POST /catalog/sync`).
    pub async fn sync_head(&self, id: &str) -> Result<Ingestion, IngestError> {
        let mut report = Ingestion {
            id: id.to_owned(),
            repository: self.config.repository.clone(),
            sha: String::new(),
            outcome: "failed".to_owned(),
            summary: String::new(),
            findings: Vec::new(),
            files: 0,
            at: self.clock.now(),
        };
        match self.head().await {
            Ok(sha) => {
                report.sha = sha.clone();
                let _one = self.running.lock().await;
                self.sync(&sha, None, None, &mut report).await;
            }
            Err(why) => report.summary = why,
        }
        let value =
            serde_json::to_value(&report).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.state.put(INGESTIONS, id, &value, None).await?;
        Ok(report)
    }

    /// The commit the branch points at.
    async fn head(&self) -> Result<String, String> {
        let (owner, name) = self.repository()?;
        let token = self.github.token(None).await?;
        let url = self
            .github
            .url(["repos", owner, name, "branches", &self.config.branch]);
        let branch: Value = self
            .github
            .call(Method::GET, url, &token)
            .send()
            .await
            .map_err(|e| format!("GitHub did not answer for the branch: {e}"))?
            .error_for_status()
            .map_err(|e| format!("GitHub refused the branch `{}`: {e}", self.config.branch))?
            .json()
            .await
            .map_err(|e| format!("the branch is not JSON: {e}"))?;
        branch["commit"]["sha"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "GitHub's answer for the branch names no commit".to_owned())
    }

    /// Keeps version `sha` and marks it live, unless the live version's commit is later
    /// than `committed`: then that commit's SHA, and the version is only kept.
    async fn keep(
        &self,
        sha: &str,
        files: &[SourceFile],
        summary: &str,
        committed: Option<time::OffsetDateTime>,
    ) -> Result<Option<String>, StoreError> {
        let keep = versions::Keep {
            at: self.clock.now(),
            summary,
            committed,
        };
        versions::keep(self.state.as_ref(), sha, files, keep).await?;
        if let (Some(live), Some(committed)) = (self.live().await?, committed)
            && live != sha
            && let Ok(Some(current)) = versions::header(self.state.as_ref(), &live).await
            && current.committed.is_some_and(|at| at > committed)
        {
            return Ok(Some(live));
        }
        let live = json!({ "sha": sha });
        let expected = self.state.get(LIVE, "live").await?.map(|v| v.version);
        self.state.put(LIVE, "live", &live, expected).await?;
        Ok(None)
    }

    /// What the push changed under the catalog's path, on top of the live version, when
    /// the payload can be trusted to list it all; `None` when only a full
    /// synchronisation is safe: a forced push, a push listing as many commits as GitHub
    /// lists at most, a push that does not start from the live version, or no live
    /// version yet.
    async fn incremental(&self, push: Option<&Push>) -> Option<Changes> {
        let push = push?;
        if push.forced || push.commits.len() >= MAX_LISTED_COMMITS {
            return None;
        }
        let live = self.live().await.ok()??;
        if live != push.before {
            return None;
        }
        let (_, kept) = versions::load(self.state.as_ref(), &live).await.ok()??;
        let mut files: BTreeMap<String, Option<String>> = kept
            .into_iter()
            .map(|f| (f.path, String::from_utf8(f.bytes).ok()))
            .collect();
        let mut changed = false;
        // Commits are listed oldest first: a later commit's change to a path wins.
        for commit in &push.commits {
            let list = |key: &str| -> Vec<String> {
                commit[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            };
            for path in list("added").into_iter().chain(list("modified")) {
                if let Some(relative) = self.catalog_path(&path) {
                    files.insert(relative, None);
                    changed = true;
                }
            }
            for path in list("removed") {
                if let Some(relative) = self.catalog_path(&path) {
                    files.remove(&relative);
                    changed = true;
                }
            }
        }
        Some(if changed {
            Changes::Files(files)
        } else {
            Changes::None
        })
    }

    /// `path` relative to the catalog's directory, when it is a catalog file there.
    fn catalog_path(&self, path: &str) -> Option<String> {
        let relative = match self.config.path.trim_matches('/') {
            "" => path,
            dir => path.strip_prefix(dir)?.strip_prefix('/')?,
        };
        let hidden = relative.split('/').any(|part| part.starts_with('.'));
        let yaml = relative.ends_with(".yaml") || relative.ends_with(".yml");
        (yaml && !hidden).then(|| relative.to_owned())
    }

    /// The live version's files with the changed ones (`None`) fetched at `sha`.
    async fn apply(
        &self,
        sha: &str,
        files: BTreeMap<String, Option<String>>,
    ) -> Result<Vec<SourceFile>, String> {
        let (owner, name) = self.repository()?;
        let token = self.github.token(None).await?;
        let mut out = Vec::with_capacity(files.len());
        for (relative, text) in files {
            let bytes = match text {
                Some(text) => text.into_bytes(),
                None => {
                    let full = match self.config.path.trim_matches('/') {
                        "" => relative.clone(),
                        dir => format!("{dir}/{relative}"),
                    };
                    let mut segments = vec!["repos", owner, name, "contents"];
                    segments.extend(full.split('/'));
                    let mut url = self.github.url(segments);
                    url.query_pairs_mut().append_pair("ref", sha);
                    self.raw(url, &token, &full).await?
                }
            };
            out.push(SourceFile {
                path: relative,
                bytes,
            });
        }
        Ok(out)
    }

    /// A file's bytes (GitHub's raw media type).
    async fn raw(
        &self,
        url: url::Url,
        token: &crate::secret::SecretString,
        what: &str,
    ) -> Result<Vec<u8>, String> {
        let mut raw = reqwest::header::HeaderMap::new();
        raw.insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_static("application/vnd.github.raw+json"),
        );
        Ok(self
            .github
            .call(Method::GET, url, token)
            // The file itself, not its JSON description (replacing the default Accept).
            .headers(raw)
            .send()
            .await
            .map_err(|e| format!("GitHub did not answer for {what}: {e}"))?
            .error_for_status()
            .map_err(|e| format!("GitHub refused {what}: {e}"))?
            .bytes()
            .await
            .map_err(|e| format!("reading {what}: {e}"))?
            .to_vec())
    }

    fn repository(&self) -> Result<(&str, &str), String> {
        self.config.repository.split_once('/').ok_or_else(|| {
            format!(
                "github.catalog.repository `{}` is not owner/name",
                self.config.repository
            )
        })
    }

    /// The catalog's files in commit `sha`: its tree, then each YAML file's blob.
    async fn fetch(&self, sha: &str) -> Result<Vec<SourceFile>, String> {
        let (owner, name) = self.repository()?;
        let token = self.github.token(None).await?;
        let mut url = self.github.url(["repos", owner, name, "git", "trees", sha]);
        url.query_pairs_mut().append_pair("recursive", "1");
        let tree: Value = self
            .github
            .call(Method::GET, url, &token)
            .send()
            .await
            .map_err(|e| format!("GitHub did not answer for the tree of {sha}: {e}"))?
            .error_for_status()
            .map_err(|e| format!("GitHub refused the tree of {sha}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("the tree of {sha} is not JSON: {e}"))?;
        if tree["truncated"] == true {
            return Err(format!(
                "the tree of {sha} is too large for one listing; the catalog was not changed"
            ));
        }
        let mut files = Vec::new();
        for entry in tree["tree"].as_array().into_iter().flatten() {
            let (Some(path), Some(blob)) = (entry["path"].as_str(), entry["sha"].as_str()) else {
                continue;
            };
            let Some(relative) = self.catalog_path(path) else {
                continue;
            };
            if entry["type"] != "blob" {
                continue;
            }
            let url = self
                .github
                .url(["repos", owner, name, "git", "blobs", blob]);
            let bytes = self.raw(url, &token, path).await?;
            files.push(SourceFile {
                path: relative,
                bytes,
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Sets the commit status authors see; a failure to set it is logged, not fatal.
    async fn set_status(&self, sha: &str, state: &str, description: &str) {
        let Ok((owner, name)) = self.repository() else {
            return;
        };
        let token = match self.github.token(None).await {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(error = %e, "cannot set the commit status");
                return;
            }
        };
        // GitHub keeps 140 characters of a status description.
        let description: String = description.chars().take(140).collect();
        let url = self.github.url(["repos", owner, name, "statuses", sha]);
        let sent = self
            .github
            .call(Method::POST, url, &token)
            .json(&json!({
                "state": state,
                "description": description,
                "context": STATUS_CONTEXT,
            }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        if let Err(e) = sent {
            tracing::warn!(sha, error = %e, "GitHub did not take the commit status");
        }
    }
}

/// Deploys the state machine of every bundle and automated item of `snapshot`
/// (executions under way keep the definition they started with).
pub async fn deploy(workflows: &dyn Workflows, snapshot: &CatalogSnapshot) -> Result<(), String> {
    let definitions = crate::bundle::asl::all_definitions(&snapshot.catalog)
        .map_err(|e| format!("the catalog's state machines do not compile: {e}"))?;
    workflows
        .deploy_all(&definitions)
        .await
        .map_err(|(name, e)| format!("cannot deploy the state machine `{name}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(reference: &str, repository: &str) -> Push {
        serde_json::from_value(json!({
            "ref": reference, "before": "a".repeat(40), "after": "b".repeat(40),
            "created": false, "deleted": false, "forced": false,
            "repository": {"full_name": repository}, "commits": []
        }))
        .unwrap()
    }

    #[test]
    fn only_the_catalog_branch_counts() {
        let config = GithubCatalogConfig {
            repository: "acme/platform-catalog".to_owned(),
            ..GithubCatalogConfig::default()
        };
        assert_eq!(
            decide(&push("refs/heads/main", "acme/platform-catalog"), &config),
            Decision::Sync("b".repeat(40))
        );
        assert!(matches!(
            decide(&push("refs/heads/feature", "acme/platform-catalog"), &config),
            Decision::Ignore(why) if why.contains("not to refs/heads/main")
        ));
        assert!(matches!(
            decide(&push("refs/tags/v1", "acme/platform-catalog"), &config),
            Decision::Ignore(why) if why.contains("tag push")
        ));
        assert!(matches!(
            decide(&push("refs/heads/main", "acme/other"), &config),
            Decision::Ignore(why) if why.contains("acme/other")
        ));
        let mut deleted = push("refs/heads/main", "acme/platform-catalog");
        deleted.deleted = true;
        deleted.after = "0".repeat(40);
        assert!(matches!(
            decide(&deleted, &config),
            Decision::Ignore(why) if why.contains("deleted")
        ));
    }
}
