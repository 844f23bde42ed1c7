//! The orchestrator's library: the domain and its ports, shared by the command-line tool,
//! local mode and the Lambda functions.

pub mod bundle;
pub mod catalog;
pub mod parallel;
pub mod template;
