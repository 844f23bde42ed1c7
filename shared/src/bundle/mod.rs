//! Bundles: stacks of catalog items provisioned together in dependency order.

pub mod asl;
pub mod graph;
pub mod schedule;
