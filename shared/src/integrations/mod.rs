//! Clients of third-party systems the orchestrator fulfils requests through.

pub mod github;
pub mod jira;
