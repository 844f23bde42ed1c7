//! Insights: what the requests' stored lead times say, in figures a platform team reads:
//! how long its items take, where the time goes, and what automation saved.

pub mod service;
pub mod stats;
