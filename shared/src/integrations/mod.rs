//! Clients of third-party systems the orchestrator fulfils requests through.

pub mod jira;
