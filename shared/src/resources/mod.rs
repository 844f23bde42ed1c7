//! Resource state: what was provisioned, day-2 changes, verification and drift.

pub mod change;
pub mod completed;
pub mod model;
pub mod reconcile;
pub mod service;
pub mod verify;
