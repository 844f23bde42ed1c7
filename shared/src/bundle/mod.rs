//! Bundles: stacks of catalog items provisioned together in dependency order.

pub mod graph;
