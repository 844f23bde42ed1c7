//! The orchestrator's library: the domain and its ports, shared by the command-line tool,
//! local mode and the Lambda functions.

pub mod access;
pub mod adapters;
pub mod approvals;
pub mod assembly;
pub mod bundle;
pub mod catalog;
pub mod config;
pub mod fulfillment;
pub mod graph;
pub mod http;
pub mod ingest;
pub mod insights;
pub mod integrations;
pub mod local;
pub mod metrics;
pub mod notifications;
pub mod parallel;
pub mod ports;
pub mod requests;
pub mod resources;
pub mod retention;
pub mod sandbox;
pub mod secret;
pub mod signing;
pub mod template;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod timestamp;
pub mod worker;
