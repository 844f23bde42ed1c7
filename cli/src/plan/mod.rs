//! `orchestrator plan`: what a request would do, with no side effect and no call made:
//! a new request for an item ([`item`]), or a change or deletion of a resource that local
//! mode recorded ([`resource`], `--resource`).

mod args;
mod item;
mod resource;

use std::process::ExitCode;

pub use args::PlanArgs;

/// Exit codes: 0 a good plan, 1 the plan shows errors (or the fields are invalid), 2
/// usage or I/O errors.
pub fn plan(args: PlanArgs) -> ExitCode {
    let inputs = match args::load(&args) {
        Ok(inputs) => inputs,
        Err(code) => return code,
    };
    match (&args.resource, &args.item) {
        (Some(resource), _) => resource::plan(&args, resource, inputs),
        (None, Some(name)) => item::plan(&args, name, inputs),
        (None, None) => args::fail("name an item, or a resource with --resource"),
    }
}
