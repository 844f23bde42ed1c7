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

/// The AWS action kinds, to describe AWS actions with: they reach no AWS (no
/// credentials), so a plan calls nothing there either.
fn aws_kinds(
    config: &shared::config::Config,
) -> Vec<(
    shared::catalog::document::ActionType,
    std::sync::Arc<dyn shared::fulfillment::actions::ActionKind>,
)> {
    let region = if config.region == "local" {
        "us-east-1"
    } else {
        config.region.as_str()
    };
    aws::actions::all(&aws::offline(region), &config.aws).kinds
}
