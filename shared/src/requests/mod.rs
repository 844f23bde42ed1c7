//! Requests: what a requester asked for, its lifecycle, and its timeline.

pub mod components;
pub mod model;
pub mod service;
