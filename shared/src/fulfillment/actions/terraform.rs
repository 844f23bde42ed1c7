//! `terraform`: declare an item as a Terraform root module in an infrastructure
//! repository, through a pull request.
//!
//! The repository mapping (`repository`, `baseBranch`, `directory`) says where the item's
//! root module lives. The action writes, with the hcl-rs library, never by pasting text:
//! - `main.tf`: the `module` block, each input read from a variable;
//! - `variables.tf`: one typed variable per input;
//! - `terraform.tfvars`: the inputs' values, as literals (a `${` in a value is escaped, so
//!   a field can never become a Terraform expression);
//! - `providers.tf`: `terraform { required_providers, backend }` and the provider blocks;
//! - `outputs.tf`: the module outputs the root module passes on.
//!
//! Through GitHub's REST API it creates a branch from the base branch, commits each file
//! (the contents API; unchanged files are skipped, so a retry converges), opens the pull
//! request (or finds the one a lost answer opened), labels it, optionally enables
//! auto-merge (GraphQL, which REST lacks) and optionally waits until it is merged.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use hcl::expr::{Expression, Traversal, Variable};
use hcl::{Block, Body, Identifier};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{ActionError, ActionKind, Invocation, Step, config, exchange};
use crate::catalog::document::TerraformAction;
use crate::integrations::github::{GithubApi, Repo, branch, file_path, repo};
use crate::secret::SecretString;

/// How often a pull request is checked while the action waits for its merge.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// The generated files: name and text, in a stable order.
pub type Files = Vec<(String, String)>;

fn ident(name: &str, what: &str) -> Result<Identifier, ActionError> {
    Identifier::new(name)
        .map_err(|_| ActionError::permanent(format!("{what} `{name}` is not a Terraform name")))
}

/// A JSON value as an HCL literal expression (strings stay literal: `${` is escaped).
fn literal(value: &Value) -> Expression {
    match value {
        Value::Null => Expression::Null,
        Value::Bool(b) => Expression::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Expression::Number(i.into()),
            (_, Some(u), _) => Expression::Number(u.into()),
            (_, _, Some(f)) => {
                hcl::Number::from_f64(f).map_or(Expression::Null, Expression::Number)
            }
            _ => Expression::Null,
        },
        Value::String(s) => Expression::String(s.clone()),
        Value::Array(items) => Expression::Array(items.iter().map(literal).collect()),
        Value::Object(map) => Expression::Object(
            map.iter()
                .map(|(k, v)| {
                    // A key that is a name is written bare, as people write them.
                    let key = match Identifier::new(k.as_str()) {
                        Ok(id) => hcl::ObjectKey::Identifier(id),
                        Err(_) => hcl::ObjectKey::Expression(Expression::String(k.clone())),
                    };
                    (key, literal(v))
                })
                .collect(),
        ),
    }
}

/// The Terraform type of a variable holding `value`.
fn type_of(value: &Value) -> Expression {
    let raw = |text: &str| Expression::Variable(Variable::unchecked(text));
    let call = |name: &str, arg: &str| {
        Expression::FuncCall(Box::new(
            hcl::expr::FuncCall::builder(name).arg(raw(arg)).build(),
        ))
    };
    match value {
        Value::String(_) => raw("string"),
        Value::Number(_) => raw("number"),
        Value::Bool(_) => raw("bool"),
        Value::Array(items) if items.iter().all(Value::is_string) => call("list", "string"),
        Value::Object(map) if map.values().all(Value::is_string) => call("map", "string"),
        _ => raw("any"),
    }
}

fn traversal(root: &str, attrs: &[&Identifier]) -> Expression {
    let mut builder = Traversal::builder(Variable::unchecked(root));
    for attr in attrs {
        builder = builder.attr((*attr).clone());
    }
    Expression::from(builder.build())
}

fn attributes(
    block: hcl::BlockBuilder,
    args: &Map<String, Value>,
    what: &str,
) -> Result<hcl::BlockBuilder, ActionError> {
    let mut block = block;
    for (name, value) in args {
        block = block.add_attribute((ident(name, what)?, literal(value)));
    }
    Ok(block)
}

fn text(body: Body) -> Result<String, ActionError> {
    hcl::to_string(&body)
        .map(|text| align(&text))
        .map_err(|e| ActionError::permanent(format!("cannot write the Terraform files: {e}")))
}

/// Where the key of an attribute line ends (`key = ...`, the key a name or a quoted
/// string), if the line is one.
fn key_end(line: &str) -> Option<usize> {
    let end = if let Some(rest) = line.strip_prefix('"') {
        let mut escaped = false;
        let close = rest.char_indices().find(|&(_, c)| {
            let done = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            done
        })?;
        close.0 + 2
    } else {
        line.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))?
    };
    (end > 0 && line[end..].starts_with(" = ")).then_some(end)
}

/// Aligns the `=` of consecutive attributes at one level, as `terraform fmt` does, so the
/// files need no reformatting in the repository.
fn align(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let shape = |line: &str| {
        let body = line.trim_start();
        key_end(body).map(|end| (line.len() - body.len(), end))
    };
    let mut out = String::with_capacity(text.len() + 64);
    let mut i = 0;
    while i < lines.len() {
        let Some((indent, _)) = shape(lines[i]) else {
            out.push_str(lines[i]);
            out.push('\n');
            i += 1;
            continue;
        };
        let mut j = i;
        let mut width = 0;
        while j < lines.len()
            && let Some((ind, end)) = shape(lines[j])
            && ind == indent
        {
            width = width.max(end);
            j += 1;
        }
        for line in &lines[i..j] {
            let body = &line[indent..];
            let end = key_end(body).unwrap_or(0);
            out.push_str(&line[..indent + end]);
            out.push_str(&" ".repeat(width - end));
            out.push_str(&body[end..]);
            out.push('\n');
        }
        i = j;
    }
    out
}

/// The root module's files for a rendered configuration.
pub fn root_module(cfg: &TerraformAction, header: &str) -> Result<Files, ActionError> {
    let module_name = ident(cfg.module.name.as_deref().unwrap_or("this"), "module name")?;
    let comment = |text: String| {
        format!(
            "# {header}\n# Generated by the orchestrator; changes here are overwritten.\n\n{text}"
        )
    };
    let mut files = Files::new();

    let mut module = Block::builder("module")
        .add_label(module_name.as_str())
        .add_attribute(("source", Expression::String(cfg.module.source.clone())));
    if let Some(version) = &cfg.module.version {
        module = module.add_attribute(("version", Expression::String(version.clone())));
    }
    let mut variables = Body::builder();
    let mut values = Body::builder();
    for (name, value) in &cfg.module.inputs {
        let id = ident(name, "module input")?;
        module = module.add_attribute((id.clone(), traversal("var", &[&id])));
        variables = variables.add_block(
            Block::builder("variable")
                .add_label(id.as_str())
                .add_attribute(("type", type_of(value)))
                .build(),
        );
        values = values.add_attribute((id, literal(value)));
    }
    files.push((
        "main.tf".to_owned(),
        comment(text(Body::builder().add_block(module.build()).build())?),
    ));
    files.push(("variables.tf".to_owned(), comment(text(variables.build())?)));
    files.push((
        "terraform.tfvars".to_owned(),
        comment(text(values.build())?),
    ));

    if !cfg.required_providers.is_empty() || cfg.backend.is_some() || !cfg.providers.is_empty() {
        let mut terraform = Block::builder("terraform");
        if !cfg.required_providers.is_empty() {
            let mut required = Block::builder("required_providers");
            for (name, spec) in &cfg.required_providers {
                required = required.add_attribute((ident(name, "provider")?, literal(spec)));
            }
            terraform = terraform.add_block(required.build());
        }
        if let Some(backend) = &cfg.backend {
            let block = Block::builder("backend").add_label(backend.kind.as_str());
            terraform = terraform
                .add_block(attributes(block, &backend.config, "backend argument")?.build());
        }
        let mut body = Body::builder().add_block(terraform.build());
        for (name, args) in &cfg.providers {
            let args = args.as_object().cloned().unwrap_or_default();
            let block = Block::builder("provider").add_label(ident(name, "provider")?.as_str());
            body = body.add_block(attributes(block, &args, "provider argument")?.build());
        }
        files.push(("providers.tf".to_owned(), comment(text(body.build())?)));
    }

    if !cfg.outputs.is_empty() {
        let mut body = Body::builder();
        for name in &cfg.outputs {
            let id = ident(name, "output")?;
            body = body.add_block(
                Block::builder("output")
                    .add_label(id.as_str())
                    .add_attribute(("value", traversal("module", &[&module_name, &id])))
                    .build(),
            );
        }
        files.push(("outputs.tf".to_owned(), comment(text(body.build())?)));
    }
    Ok(files)
}

pub struct Terraform {
    pub api: Arc<GithubApi>,
}

/// A mapping with the token to act on it.
struct Target {
    at: Mapping,
    token: SecretString,
}

fn default_branch(run: &Invocation) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!(
        "orchestrator/{}-{}",
        safe(&run.request_id.to_string()),
        safe(&run.action_id)
    )
}

/// The checked repository mapping: repository, branch and directory.
struct Mapping {
    cfg: TerraformAction,
    repo: Repo,
    branch: String,
    directory: Vec<String>,
}

fn mapping(run: &Invocation, with: &Value) -> Result<Mapping, ActionError> {
    let cfg: TerraformAction = config(with)?;
    let repo = repo(&cfg.repository).map_err(ActionError::permanent)?;
    branch(&cfg.base_branch).map_err(ActionError::permanent)?;
    let head = match &cfg.branch {
        Some(b) => branch(b).map_err(ActionError::permanent)?.to_owned(),
        None => default_branch(run),
    };
    let directory = file_path(&cfg.directory)
        .map_err(|e| ActionError::permanent(format!("directory: {e}")))?
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok(Mapping {
        cfg,
        repo,
        branch: head,
        directory,
    })
}

impl Terraform {
    async fn target(&self, run: &Invocation, with: &Value) -> Result<Target, ActionError> {
        let m = mapping(run, with)?;
        let token = self
            .api
            .token(m.cfg.token.as_deref())
            .await
            .map_err(ActionError::permanent)?;
        Ok(Target { at: m, token })
    }

    fn url<'a>(&self, t: &'a Target, tail: impl IntoIterator<Item = &'a str>) -> url::Url {
        let head = ["repos", t.at.repo.owner.as_str(), t.at.repo.name.as_str()];
        self.api.url(head.into_iter().chain(tail))
    }

    async fn send(
        &self,
        t: &Target,
        method: Method,
        url: url::Url,
        body: Option<Value>,
        what: &str,
        success: &[u16],
    ) -> Result<Value, ActionError> {
        let mut call = self.api.call(method, url, &t.token);
        if let Some(body) = body {
            call = call.json(&body);
        }
        exchange(call, &format!("{what} in {}", t.at.repo), success)
            .await
            .map(|(document, _)| document)
    }

    /// Creates the branch from the base branch, unless an earlier attempt did.
    async fn branch(&self, t: &Target) -> Result<(), ActionError> {
        let head_ref = format!("heads/{}", t.at.branch);
        let found = self
            .send(
                t,
                Method::GET,
                self.url(t, ["git", "ref"].into_iter().chain(head_ref.split('/'))),
                None,
                "reading the branch",
                &[200, 404],
            )
            .await?;
        if found.get("object").is_some() {
            return Ok(());
        }
        let base_ref = format!("heads/{}", t.at.cfg.base_branch);
        let base = self
            .send(
                t,
                Method::GET,
                self.url(t, ["git", "ref"].into_iter().chain(base_ref.split('/'))),
                None,
                &format!("reading branch {}", t.at.cfg.base_branch),
                &[],
            )
            .await?;
        let Some(sha) = base.pointer("/object/sha").and_then(Value::as_str) else {
            return Err(ActionError::permanent(format!(
                "branch {} of {} has no commit",
                t.at.cfg.base_branch, t.at.repo
            )));
        };
        let body = json!({ "ref": format!("refs/heads/{}", t.at.branch), "sha": sha });
        self.send(
            t,
            Method::POST,
            self.url(t, ["git", "refs"]),
            Some(body),
            &format!("creating branch {}", t.at.branch),
            &[],
        )
        .await?;
        Ok(())
    }

    /// Commits one file to the branch, unless it already holds exactly this text.
    async fn commit(
        &self,
        t: &Target,
        name: &str,
        content: &str,
        message: &str,
    ) -> Result<(), ActionError> {
        let mut segments: Vec<&str> = t.at.directory.iter().map(String::as_str).collect();
        segments.push(name);
        let path = segments.join("/");
        let mut url = self.url(t, ["contents"].into_iter().chain(segments.iter().copied()));
        let mut read = url.clone();
        read.query_pairs_mut().append_pair("ref", &t.at.branch);
        let existing = self
            .send(
                t,
                Method::GET,
                read,
                None,
                &format!("reading {path}"),
                &[200, 404],
            )
            .await?;
        let mut body = json!({
            "message": message,
            "content": base64::engine::general_purpose::STANDARD.encode(content),
            "branch": t.at.branch,
        });
        if let Some(sha) = existing.get("sha").and_then(Value::as_str) {
            let stored: String = existing["content"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            let same = base64::engine::general_purpose::STANDARD
                .decode(stored)
                .is_ok_and(|bytes| bytes == content.as_bytes());
            if same {
                return Ok(());
            }
            body["sha"] = json!(sha);
        }
        url.set_query(None);
        self.send(
            t,
            Method::PUT,
            url,
            Some(body),
            &format!("committing {path}"),
            &[],
        )
        .await?;
        Ok(())
    }

    /// The pull request from the branch: the one that exists, else a new one.
    async fn pull_request(&self, t: &Target) -> Result<Value, ActionError> {
        let mut list = self.url(t, ["pulls"]);
        list.query_pairs_mut()
            .append_pair("head", &format!("{}:{}", t.at.repo.owner, t.at.branch))
            .append_pair("state", "all");
        let open = self
            .send(t, Method::GET, list, None, "listing pull requests", &[])
            .await?;
        if let Some(existing) = open.as_array().and_then(|prs| prs.first()) {
            return Ok(existing.clone());
        }
        let pr = &t.at.cfg.pull_request;
        let mut body = json!({
            "title": pr.title,
            "head": t.at.branch,
            "base": t.at.cfg.base_branch,
            "draft": pr.draft,
        });
        if let Some(text) = &pr.body {
            body["body"] = json!(text);
        }
        self.send(
            t,
            Method::POST,
            self.url(t, ["pulls"]),
            Some(body),
            "opening the pull request",
            &[],
        )
        .await
    }

    async fn enable_auto_merge(&self, t: &Target, node_id: &str) -> Result<(), ActionError> {
        let query = "mutation($pr: ID!) { enablePullRequestAutoMerge(input: {pullRequestId: $pr, mergeMethod: SQUASH}) { pullRequest { number } } }";
        let body = json!({ "query": query, "variables": { "pr": node_id } });
        let answer = self
            .send(
                t,
                Method::POST,
                self.api.graphql_url(),
                Some(body),
                "enabling auto-merge",
                &[],
            )
            .await?;
        if let Some(errors) = answer.get("errors").and_then(Value::as_array) {
            let messages: Vec<&str> = errors
                .iter()
                .filter_map(|e| e["message"].as_str())
                .collect();
            return Err(ActionError::permanent(format!(
                "GitHub refused auto-merge on {}: {}",
                t.at.repo,
                messages.join("; ")
            )));
        }
        Ok(())
    }

    fn interval(t: &Target) -> Duration {
        t.at.cfg
            .poll_interval
            .map_or(DEFAULT_POLL_INTERVAL, |d| d.as_duration())
    }

    fn document(t: &Target, files: &Files, pr: &Value) -> Value {
        let directory = t.at.directory.join("/");
        json!({
            "repository": t.at.repo.to_string(),
            "branch": t.at.branch,
            "baseBranch": t.at.cfg.base_branch,
            "directory": directory,
            "files": files.iter().map(|(name, _)| format!("{directory}/{name}")).collect::<Vec<_>>(),
            "pullRequest": {
                "number": pr["number"],
                "url": pr["html_url"],
                "merged": pr["merged"].as_bool().unwrap_or(false),
            },
            "module": t.at.cfg.module,
        })
    }

    /// The header comment naming what the files are for.
    fn header(run: &Invocation) -> String {
        format!(
            "{} for request {} (action {})",
            run.item, run.request_id, run.action_id
        )
    }
}

#[async_trait]
impl ActionKind for Terraform {
    fn url_pointers(&self) -> &'static [&'static str] {
        &[]
    }

    fn target(&self, _: &Value) -> Option<String> {
        self.api.host()
    }

    fn describe(&self, run: &Invocation, with: &Value) -> Result<Value, ActionError> {
        let m = mapping(run, with)?;
        let files = root_module(&m.cfg, &Self::header(run))?;
        let directory = m.directory.join("/");
        let repo = format!("/repos/{}", m.repo);
        let mut calls = vec![
            format!("GET {repo}/git/ref/heads/{}", m.cfg.base_branch),
            format!("POST {repo}/git/refs (refs/heads/{})", m.branch),
        ];
        calls.extend(
            files
                .iter()
                .map(|(name, _)| format!("PUT {repo}/contents/{directory}/{name}")),
        );
        calls.push(format!("POST {repo}/pulls"));
        let pr = &m.cfg.pull_request;
        if !pr.labels.is_empty() {
            calls.push(format!("POST {repo}/issues/(number)/labels"));
        }
        if pr.auto_merge {
            calls.push("POST /graphql (enablePullRequestAutoMerge)".to_owned());
        }
        if m.cfg.wait_for_merge {
            calls.push(format!("GET {repo}/pulls/(number) until merged"));
        }
        Ok(json!({
            "api": self.api.url([]).as_str(),
            "headers": self.api.shown_headers(),
            "repository": m.repo.to_string(),
            "baseBranch": m.cfg.base_branch,
            "branch": m.branch,
            "directory": directory,
            "files": files.iter().map(|(name, text)| (format!("{directory}/{name}"), json!(text))).collect::<Map<_, _>>(),
            "pullRequest": {
                "title": pr.title,
                "body": pr.body,
                "labels": pr.labels,
                "draft": pr.draft,
                "autoMerge": pr.auto_merge,
            },
            "calls": calls,
        }))
    }

    async fn start(&self, run: &Invocation, with: &Value) -> Result<Step, ActionError> {
        let t = self.target(run, with).await?;
        let files = root_module(&t.at.cfg, &Self::header(run))?;
        self.branch(&t).await?;
        let message = format!(
            "{}\n\nOrchestrator request {}",
            t.at.cfg.pull_request.title, run.request_id
        );
        for (name, content) in &files {
            self.commit(&t, name, content, &message).await?;
        }
        let pr = self.pull_request(&t).await?;
        let number = pr["number"].as_u64().ok_or_else(|| {
            ActionError::permanent(format!(
                "GitHub's pull request in {} has no number",
                t.at.repo
            ))
        })?;
        let labels = &t.at.cfg.pull_request.labels;
        if !labels.is_empty() {
            let url = self.url(&t, ["issues", &number.to_string(), "labels"]);
            self.send(
                &t,
                Method::POST,
                url,
                Some(json!({ "labels": labels })),
                "labelling the pull request",
                &[],
            )
            .await?;
        }
        if t.at.cfg.pull_request.auto_merge
            && pr["merged"] != true
            && let Some(node) = pr["node_id"].as_str()
        {
            self.enable_auto_merge(&t, node).await?;
        }
        let document = Self::document(&t, &files, &pr);
        if t.at.cfg.wait_for_merge && pr["merged"] != true {
            return Ok(Step::pending(
                json!({ "number": number, "document": document }),
                Self::interval(&t),
            ));
        }
        Ok(Step::Done(document))
    }

    async fn poll(
        &self,
        run: &Invocation,
        with: &Value,
        state: &Value,
    ) -> Result<Step, ActionError> {
        let t = self.target(run, with).await?;
        let number = state["number"].to_string();
        let pr = self
            .send(
                &t,
                Method::GET,
                self.url(&t, ["pulls", &number]),
                None,
                &format!("reading pull request #{number}"),
                &[],
            )
            .await?;
        let mut document = state["document"].clone();
        if pr["merged"] == true {
            document["pullRequest"]["merged"] = json!(true);
            document["pullRequest"]["mergeCommitSha"] = pr["merge_commit_sha"].clone();
            return Ok(Step::Done(document));
        }
        if pr["state"] == "closed" {
            return Err(ActionError::permanent(format!(
                "pull request {} was closed without being merged",
                pr["html_url"].as_str().unwrap_or_default()
            )));
        }
        Ok(Step::pending(state.clone(), Self::interval(&t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(inputs: Value) -> TerraformAction {
        serde_json::from_value(json!({
            "repository": "acme/infra",
            "directory": "s3/dev/b",
            "module": {"source": "app.terraform.io/acme/s3/aws", "version": "~> 4.2", "inputs": inputs},
            "requiredProviders": {"aws": {"source": "hashicorp/aws", "version": "~> 6.0"}},
            "providers": {"aws": {"region": "eu-west-1"}},
            "backend": {"type": "s3", "config": {"bucket": "acme-tf-state", "key": "s3/dev/b.tfstate", "use_lockfile": true}},
            "outputs": ["bucket_arn"],
            "pullRequest": {"title": "t"}
        }))
        .unwrap()
    }

    fn file<'a>(files: &'a Files, name: &str) -> &'a str {
        &files.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn the_files_parse_back_and_the_values_stay_literal() {
        let hostile =
            "${file(\"/etc/passwd\")} %{ if true }x%{ endif } \"quoted\"\nnext line \\ end";
        let inputs = json!({
            "bucket": hostile,
            "days": 90,
            "ratio": 0.5,
            "versioning": true,
            "subnets": ["a", "b"],
            "tags": {"Owner": "alice", "weird key \"": "v"},
            "nested": {"list": [1, {"x": null}]}
        });
        let cfg = action(inputs.clone());
        let files = root_module(&cfg, "s3-bucket for request r1 (action declare)").unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "main.tf",
                "variables.tf",
                "terraform.tfvars",
                "providers.tf",
                "outputs.tf"
            ]
        );
        for (name, text) in &files {
            hcl::parse(text).unwrap_or_else(|e| panic!("{name} does not parse: {e}\n{text}"));
        }
        // Evaluated with no variables at all: a `${...}` that were an expression would fail.
        let values: Value =
            hcl::eval::from_str(file(&files, "terraform.tfvars"), &hcl::eval::Context::new())
                .unwrap();
        assert_eq!(values, inputs);

        let main = hcl::parse(file(&files, "main.tf")).unwrap();
        let module = main.blocks().next().unwrap();
        assert_eq!(module.identifier(), "module");
        let attrs: Vec<(String, String)> = module
            .body()
            .attributes()
            .map(|a| (a.key().to_owned(), a.expr().to_string()))
            .collect();
        assert_eq!(
            attrs[0],
            (
                "source".to_owned(),
                "\"app.terraform.io/acme/s3/aws\"".to_owned()
            )
        );
        assert!(
            attrs.contains(&("bucket".to_owned(), "var.bucket".to_owned())),
            "{attrs:?}"
        );
        let variables = file(&files, "variables.tf");
        assert!(
            variables.contains("variable \"days\"") && variables.contains("type = number"),
            "{variables}"
        );
        assert!(variables.contains("type = list(string)"), "{variables}");
        let providers = file(&files, "providers.tf");
        assert!(providers.contains("backend \"s3\""), "{providers}");
        assert!(providers.contains("provider \"aws\""), "{providers}");
        assert!(file(&files, "outputs.tf").contains("module.this.bucket_arn"));
    }

    #[test]
    fn names_terraform_cannot_hold_are_refused() {
        let cfg = action(json!({"bad name": 1}));
        let err = root_module(&cfg, "h").unwrap_err();
        assert!(err.to_string().contains("module input `bad name`"), "{err}");
    }
}
