//! Clients of third-party systems the orchestrator fulfils requests through.

pub mod github;
pub mod jira;

/// Why a client could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// A setting that must be a base URL is not one.
    #[error("{setting} `{value}` {why}")]
    BadUrl {
        setting: &'static str,
        value: String,
        why: String,
    },
}
