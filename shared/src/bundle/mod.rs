//! Bundles: stacks of catalog items provisioned together in dependency order, compiled to
//! state machines whose tasks reach the worker through the action queue.

pub mod asl;
pub mod schedule;
pub mod task;
