//! Requests: what a requester asked for, its lifecycle, and its timeline.

pub mod components;
pub mod durations;
pub mod lead_time;
pub mod model;
pub mod service;
pub mod sla;
