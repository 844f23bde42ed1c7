//! Approval gates: the stages of a request's approval policies (`spec.approvals` of its
//! item or bundle), each a callback task of its state machine that the worker opens here
//! and a decision answers (`POST /approvals/{id}/approve` or `/deny`). Stages are kept in
//! the state store, one record per stage of a request.

pub mod model;
pub mod service;
