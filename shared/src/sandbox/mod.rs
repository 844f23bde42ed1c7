//! The sandbox: stand-ins on loopback for the systems the orchestrator fulfils through,
//! so every example item completes on a machine with none of them. Started only by
//! `orchestrator serve --sandbox`.

pub mod github;
pub mod history;
pub mod jira;
pub mod services;

pub use jira::{SandboxJira, start_jira};
