//! The fulfillment engine: the actions an item runs (one file per type), their durable
//! execution with retries and circuit breakers, the variables and secrets they read,
//! which mode an item is in, a manual item's JIRA ticket, and plans. It knows requests
//! but neither the worker that drives it nor the resource records.

pub mod actions;
pub mod breaker;
pub mod engine;
pub mod manual;
pub mod mode;
pub mod plan;
pub mod unknown;
pub mod vars;

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::catalog::document::Metadata;
use crate::requests::model::Request;

/// Deployment facts: the `system` scope's region and stage, and the `environment` scope
/// (per-deployment configuration such as API URLs and the account id).
#[derive(Debug, Clone, Default)]
pub struct SystemInfo {
    pub region: String,
    pub stage: String,
    pub environment: Environment,
}

/// The `environment` scope, one for everything in a process that renders templates (its
/// clones share it), replaced whole when its source changes (Parameter Store, reloaded).
#[derive(Debug, Clone, Default)]
pub struct Environment(std::sync::Arc<std::sync::RwLock<serde_json::Map<String, Value>>>);

impl Environment {
    pub fn new(scope: serde_json::Map<String, Value>) -> Self {
        Environment(std::sync::Arc::new(std::sync::RwLock::new(scope)))
    }

    /// The scope as it stands.
    pub fn current(&self) -> serde_json::Map<String, Value> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the scope: the keys whose values changed, came or went (never the values,
    /// which logs may show).
    pub fn replace(&self, scope: serde_json::Map<String, Value>) -> Vec<String> {
        let mut held = self.0.write().unwrap_or_else(|p| p.into_inner());
        let mut changed: Vec<String> = scope
            .iter()
            .filter(|(k, v)| held.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .chain(held.keys().filter(|k| !scope.contains_key(*k)).cloned())
            .collect();
        changed.sort();
        *held = scope;
        changed
    }
}

impl From<serde_json::Map<String, Value>> for Environment {
    fn from(scope: serde_json::Map<String, Value>) -> Self {
        Environment::new(scope)
    }
}

/// The variables templates read for a request: `fields`, `metadata`, `request`, `system`,
/// `environment`.
pub fn context(
    request: &Request,
    metadata: &Metadata,
    system: &SystemInfo,
    now: time::OffsetDateTime,
) -> Value {
    json!({
        "fields": request.fields,
        "metadata": metadata,
        "request": {
            "id": request.id,
            "requester": request.requester.sub,
            "email": request.requester.email,
            "groups": request.requester.groups,
            "createdAt": request.created_at.format(&Rfc3339).unwrap_or_default(),
        },
        "system": system_scope(system, now),
        "environment": system.environment.current(),
    })
}

/// The `bundle` scope of a bundle request's templates: the bundle's name, its form's
/// values, and the component being run (none for the bundle's own outputs).
pub fn bundle_scope(
    name: &str,
    fields: &serde_json::Map<String, Value>,
    component: Option<&str>,
) -> Value {
    let mut scope = json!({ "name": name, "fields": fields });
    if let Some(component) = component {
        scope["component"] = json!(component);
    }
    scope
}

/// The `system` scope at `now`.
pub fn system_scope(system: &SystemInfo, now: time::OffsetDateTime) -> Value {
    json!({
        "now": now.format(&Rfc3339).unwrap_or_default(),
        "region": system.region,
        "stage": system.stage,
        "version": env!("CARGO_PKG_VERSION"),
    })
}
