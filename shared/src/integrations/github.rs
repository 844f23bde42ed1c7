//! GitHub's REST API (and the one GraphQL mutation REST lacks), as the github-workflow
//! and terraform actions use it. URLs are built from segments, each percent-encoded, so a
//! repository, branch or file name can never change which endpoint is called; names that
//! GitHub would not accept are refused before any call.

use std::sync::Arc;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::{Method, RequestBuilder};

use crate::ports::Secrets;
use crate::secret::SecretString;

/// The REST API version every call asks for.
pub const API_VERSION: &str = "2022-11-28";

/// Where the GitHub API is and how to sign in to it.
pub struct GithubApi {
    pub http: reqwest::Client,
    /// The REST base: `https://api.github.com`, or `https://HOST/api/v3` for GitHub
    /// Enterprise Server.
    pub base: url::Url,
    pub secrets: Arc<dyn Secrets>,
    /// The secret holding the default token, used when an action does not name its own.
    pub token_secret: String,
}

/// An `owner/name` repository, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub owner: String,
    pub name: String,
}

impl std::fmt::Display for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Parses `owner/name` as GitHub spells repositories.
pub fn repo(text: &str) -> Result<Repo, String> {
    let bad = || format!("`{text}` is not a repository: expected owner/name");
    let (owner, name) = text.split_once('/').ok_or_else(bad)?;
    let ok =
        |part: &str| !part.is_empty() && part != "." && part != ".." && part.chars().all(name_char);
    if !ok(owner) || !ok(name) {
        return Err(bad());
    }
    Ok(Repo {
        owner: owner.to_owned(),
        name: name.to_owned(),
    })
}

/// Checks a branch name against git's rules for ref names (`git check-ref-format`).
pub fn branch(text: &str) -> Result<&str, String> {
    let bad = |why: &str| Err(format!("`{text}` is not a usable branch name: {why}"));
    if text.is_empty() || text.len() > 200 {
        return bad("it must have 1 to 200 characters");
    }
    if text.starts_with(['-', '/']) || text.ends_with(['/', '.']) || text.ends_with(".lock") {
        return bad("it may not start with - or /, nor end with /, . or .lock");
    }
    if text.contains("..") || text.contains("//") || text.contains("@{") || text == "@" {
        return bad("it may not contain .., //, or @{");
    }
    if text
        .chars()
        .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c))
    {
        return bad("it may not contain spaces, control characters or any of ~^:?*[\\");
    }
    if text.split('/').any(|part| part.starts_with('.')) {
        return bad("no part of it may start with .");
    }
    Ok(text)
}

/// Splits a file path in a repository into segments, refusing empty, `.` and `..` parts.
pub fn file_path(text: &str) -> Result<Vec<&str>, String> {
    let trimmed = text.trim_matches('/');
    let parts: Vec<&str> = trimmed.split('/').collect();
    let bad = parts.iter().any(|p| {
        p.is_empty() || *p == "." || *p == ".." || p.chars().any(|c| c.is_control() || c == '\\')
    });
    if trimmed.is_empty() || bad {
        return Err(format!(
            "`{text}` is not a path in a repository: its parts may not be empty, `.` or `..`"
        ));
    }
    Ok(parts)
}

impl GithubApi {
    pub fn new(
        http: reqwest::Client,
        base: &str,
        secrets: Arc<dyn Secrets>,
        token_secret: &str,
    ) -> Result<GithubApi, super::ClientError> {
        let bad = |why: String| super::ClientError::BadUrl {
            setting: "github.apiUrl",
            value: base.to_owned(),
            why,
        };
        let base = url::Url::parse(base.trim_end_matches('/'))
            .map_err(|e| bad(format!("is not a URL: {e}")))?;
        if base.cannot_be_a_base() {
            return Err(bad("cannot be a base URL".to_owned()));
        }
        Ok(GithubApi {
            http,
            base,
            secrets,
            token_secret: token_secret.to_owned(),
        })
    }

    /// The host calls go to, for circuit breakers.
    pub fn host(&self) -> Option<String> {
        crate::fulfillment::actions::host_of(self.base.as_str())
    }

    /// The URL of `segments` under the API base, each segment percent-encoded.
    pub fn url<'a>(&self, segments: impl IntoIterator<Item = &'a str>) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// The GraphQL endpoint next to this REST base (`/graphql` on github.com,
    /// `/api/graphql` beside `/api/v3` on GitHub Enterprise Server).
    pub fn graphql_url(&self) -> url::Url {
        let mut url = self.base.clone();
        let path = url.path().trim_end_matches('/');
        let graphql = match path.strip_suffix("/v3") {
            Some(api) => format!("{api}/graphql"),
            None => format!("{path}/graphql"),
        };
        url.set_path(&graphql);
        url
    }

    /// The token: the action's own (already resolved from secrets) or the configured one.
    pub async fn token(&self, own: Option<&str>) -> Result<SecretString, String> {
        if let Some(token) = own {
            if token.is_empty() {
                return Err("the action's token rendered empty".to_owned());
            }
            return Ok(SecretString::new(token));
        }
        let name = &self.token_secret;
        match self.secrets.get(name).await {
            Ok(Some(token)) => Ok(token),
            Ok(None) => Err(format!(
                "the GitHub token secret `{name}` (github.tokenSecret) is not set"
            )),
            Err(e) => Err(format!("cannot read the GitHub token: {e}")),
        }
    }

    /// The headers every call carries, as a plan shows them.
    pub fn shown_headers(&self) -> serde_json::Value {
        serde_json::json!({
            "accept": "application/vnd.github+json",
            "x-github-api-version": API_VERSION,
            "authorization": "Bearer ***",
        })
    }

    /// A call with GitHub's media type, API version and the token (marked sensitive).
    pub fn call(&self, method: Method, url: url::Url, token: &SecretString) -> RequestBuilder {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer -"));
        auth.set_sensitive(true);
        self.http
            .request(method, url)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header(AUTHORIZATION, auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(base: &str) -> GithubApi {
        GithubApi::new(
            reqwest::Client::new(),
            base,
            Arc::new(crate::adapters::local::LocalSecrets::from_pairs([])),
            "github-token",
        )
        .unwrap()
    }

    #[test]
    fn repositories_branches_and_paths_are_checked() {
        assert_eq!(
            repo("acme-corp/infra.live").unwrap().to_string(),
            "acme-corp/infra.live"
        );
        for bad in [
            "acme", "a/b/c", "../x", "a/..", "a/b?x=1", "a/b#c", "/b", "a/",
        ] {
            assert!(repo(bad).is_err(), "{bad}");
        }
        assert!(branch("orchestrator/req-1/declare").is_ok());
        for bad in [
            "a..b",
            "a b",
            "-x",
            "x/",
            "x.lock",
            "a~1",
            "a:b",
            "a/.hidden",
            "a\nb",
        ] {
            assert!(branch(bad).is_err(), "{bad}");
        }
        assert_eq!(
            file_path("s3/dev/b/main.tf").unwrap(),
            ["s3", "dev", "b", "main.tf"]
        );
        for bad in ["", "a/../b", "a//b", "./a", "a\\b"] {
            assert!(file_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn segments_are_encoded_and_graphql_sits_beside_rest() {
        let github = api("https://api.github.com");
        let url = github.url(["repos", "o", "r", "contents", "a b?#", "x%2F"]);
        assert_eq!(
            url.as_str(),
            "https://api.github.com/repos/o/r/contents/a%20b%3F%23/x%252F"
        );
        assert_eq!(
            github.graphql_url().as_str(),
            "https://api.github.com/graphql"
        );
        let ghes = api("https://ghe.acme.example/api/v3/");
        assert_eq!(
            ghes.url(["repos", "o", "r"]).as_str(),
            "https://ghe.acme.example/api/v3/repos/o/r"
        );
        assert_eq!(
            ghes.graphql_url().as_str(),
            "https://ghe.acme.example/api/graphql"
        );
    }
}
