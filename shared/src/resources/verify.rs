//! Verification: an item's `verify` actions read the real thing, and each output they
//! name is compared with the value recorded under that name (an output of the resource,
//! else one of its inputs). Verification only reads: it runs outside the engine's
//! durable records, honours circuit breakers, and never shows a secret.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::model::{Drift, Resource, ResourceKind, sensitive_marker};
use crate::catalog::document::Metadata;
use crate::fulfillment::SystemInfo;
use crate::fulfillment::actions::{ActionError, Invocation, Step, select};
use crate::fulfillment::engine::{CALL_TIMEOUT, Engine, action_with, render_with};
use crate::fulfillment::vars::{Redactor, SecretError, resolve_secrets, scope_keys};
use crate::ports::{CatalogStore, ResourceStore, StoreError};

/// What a verification found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verification {
    /// Every attribute read matches the record.
    Matched,
    /// These attributes differ.
    Drifted(Vec<Drift>),
    /// Not checked: the item has no `verify` actions, or a breaker is open.
    Skipped(String),
    /// The check itself failed (the target refused or could not be reached).
    Failed(String),
}

pub struct Verifier {
    pub engine: Arc<Engine>,
    pub system: SystemInfo,
    pub catalog: Arc<dyn CatalogStore>,
    pub store: Arc<dyn ResourceStore>,
    /// How many verify calls go to one target host at the same time from this process.
    pub per_host: HostSlots,
}

/// A bound on the calls running against each target host at the same time, so a pass
/// over many resources of one target never hammers it however many batches run.
pub struct HostSlots {
    limit: usize,
    hosts: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

impl HostSlots {
    pub fn new(limit: usize) -> Self {
        HostSlots {
            limit: limit.max(1),
            hosts: Default::default(),
        }
    }

    /// Waits for a slot of `host`, held until the permit is dropped.
    pub async fn acquire(&self, host: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let slots = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            hosts
                .entry(host.to_owned())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.limit)))
                .clone()
        };
        slots.acquire_owned().await.ok()
    }
}

impl Default for HostSlots {
    fn default() -> Self {
        HostSlots::new(crate::config::ResourcesConfig::default().reconcile_per_host)
    }
}

/// The variables a resource's actions read: its inputs as `fields`, the `resource` scope,
/// and the request scope of the request that provisioned it.
pub fn resource_context(
    resource: &Resource,
    metadata: &Metadata,
    system: &SystemInfo,
    now: time::OffsetDateTime,
) -> Value {
    use time::format_description::well_known::Rfc3339;
    json!({
        "fields": resource.inputs,
        "metadata": metadata,
        "request": {
            "id": resource.request_id,
            "requester": resource.requester,
            "email": Value::Null,
            "groups": [],
            "createdAt": resource.created_at.format(&Rfc3339).unwrap_or_default(),
        },
        "system": crate::fulfillment::system_scope(system, now),
        "environment": system.environment.current(),
        "resource": resource.scope(),
    })
}

/// Whether a recorded value and an actual one agree: equal JSON, or the same scalar
/// written differently (`20` and `"20"`, `true` and `"true"`).
fn same(recorded: &Value, actual: &Value) -> bool {
    if recorded == actual {
        return true;
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    matches!((text(recorded), text(actual)), (Some(a), Some(b)) if a == b)
}

impl Verifier {
    /// Verifies a resource; a stack through its components (attributes named
    /// `component.attribute`).
    pub async fn verify(&self, resource: &Resource) -> Result<Verification, StoreError> {
        if resource.kind == ResourceKind::Item {
            return self.verify_item(resource).await;
        }
        let mut drift = Vec::new();
        let mut checked = 0;
        for member in &resource.members {
            let Some(component) = self.store.get(&member.resource_id).await? else {
                continue;
            };
            match self.verify_item(&component).await? {
                Verification::Matched => checked += 1,
                Verification::Drifted(found) => {
                    checked += 1;
                    drift.extend(found.into_iter().map(|d| Drift {
                        attribute: format!("{}.{}", member.component, d.attribute),
                        ..d
                    }));
                }
                Verification::Skipped(_) => {}
                Verification::Failed(why) => {
                    return Ok(Verification::Failed(format!("{}: {why}", member.component)));
                }
            }
        }
        Ok(match (drift.is_empty(), checked) {
            (false, _) => Verification::Drifted(drift),
            (true, 0) => Verification::Skipped("no component can be verified".to_owned()),
            (true, _) => Verification::Matched,
        })
    }

    async fn verify_item(&self, resource: &Resource) -> Result<Verification, StoreError> {
        let snapshot = self.catalog.current();
        let Some(item) = snapshot.catalog.item(&resource.item) else {
            return Ok(Verification::Skipped(format!(
                "`{}` is no longer in the catalog",
                resource.item
            )));
        };
        let actions = match &item.doc.spec.fulfillment.automated {
            Some(automated) if !automated.verify.is_empty() => &automated.verify,
            _ => {
                return Ok(Verification::Skipped(format!(
                    "`{}` has no verify actions",
                    resource.item
                )));
            }
        };
        let context = resource_context(
            resource,
            &item.doc.metadata,
            &self.system,
            self.engine.clock.now(),
        );
        let mut earlier = Map::new();
        let mut actual = Map::new();
        // What the targets themselves report as drifted (a stack's drift detection).
        let mut reported = Vec::new();
        let mut redactor = Redactor::default();
        for action in actions {
            let kind_type = action.config.action_type();
            let Some(kind) = self.engine.kinds.get(&kind_type).cloned() else {
                return Ok(Verification::Failed(format!(
                    "no runner for {} actions",
                    kind_type.as_str()
                )));
            };
            let secrets = match resolve_secrets(
                self.engine.secrets.as_ref(),
                &scope_keys(&action_with(action), "secrets"),
                &mut redactor,
            )
            .await
            {
                Ok(secrets) => secrets,
                Err(SecretError::Store(e)) => return Err(e),
                Err(e) => return Ok(Verification::Failed(format!("verify `{}`: {e}", action.id))),
            };
            let with = match render_with(
                &self.engine.renderer,
                kind.as_ref(),
                action,
                "verify",
                &context,
                secrets,
                Value::Object(earlier.clone()),
            ) {
                Ok(with) => with,
                Err(e) => return Ok(Verification::Failed(redactor.text(&e.to_string()))),
            };
            let host = kind.target(&with);
            if let Some(host) = &host
                && let Err(open) = self.engine.breakers.check(host).await?
            {
                return Ok(Verification::Skipped(format!(
                    "the circuit breaker of {} is open until {}",
                    open.host, open.until
                )));
            }
            let invocation = Invocation {
                idempotency_key: format!("verify/{}/{}", resource.id, action.id),
                delivery_id: uuid::Uuid::now_v7().to_string(),
                started_at: crate::resources::service::rfc3339(self.engine.clock.now()),
                request_id: resource.request_id,
                resource_id: resource.id.clone(),
                owner: resource.owner.clone(),
                requester: resource.requester.clone(),
                item: resource.item.clone(),
                action_id: action.id.clone(),
                attempt: 1,
                call_timeout: CALL_TIMEOUT,
            };
            let slot = match &host {
                Some(host) => self.per_host.acquire(host).await,
                None => None,
            };
            let started = kind.start(&invocation, &with).await;
            drop(slot);
            let document = match started {
                Ok(Step::Done(document)) => {
                    if let Some(host) = &host {
                        self.engine.breakers.success(host).await?;
                    }
                    document
                }
                Ok(Step::Pending { .. }) => {
                    return Ok(Verification::Failed(format!(
                        "verify `{}` did not answer at once; verify actions must read synchronously",
                        action.id
                    )));
                }
                Err(e) => {
                    if let (
                        Some(host),
                        ActionError::Retryable { .. } | ActionError::Unknown { .. },
                    ) = (&host, &e)
                    {
                        self.engine.breakers.failure(host).await?;
                    }
                    return Ok(Verification::Failed(
                        redactor.text(&format!("verify `{}`: {e}", action.id)),
                    ));
                }
            };
            reported.extend(kind.reported_drift(&document).into_iter().map(|d| Drift {
                attribute: d.attribute,
                recorded: redactor.value(&d.expected),
                actual: redactor.value(&d.actual),
            }));
            let mut outputs = Map::new();
            for (name, path) in &action.outputs {
                let value = select(&document, path)
                    .ok()
                    .flatten()
                    .unwrap_or(Value::Null);
                outputs.insert(name.clone(), redactor.value(&value));
            }
            actual.extend(outputs.clone());
            earlier.insert(action.id.clone(), Value::Object(outputs));
        }
        let marker = sensitive_marker();
        let mut drift = reported;
        for (name, value) in actual {
            let recorded = resource
                .outputs
                .get(&name)
                .filter(|v| **v != marker)
                .or_else(|| resource.inputs.get(&name));
            if let Some(recorded) = recorded
                && !same(recorded, &value)
            {
                drift.push(Drift {
                    attribute: name,
                    recorded: recorded.clone(),
                    actual: value,
                });
            }
        }
        Ok(if drift.is_empty() {
            Verification::Matched
        } else {
            Verification::Drifted(drift)
        })
    }
}

/// What a verification found, as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationView {
    /// `matched`, `drifted`, `skipped` or `failed`.
    pub outcome: String,
    pub drift: Vec<Drift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<&Verification> for VerificationView {
    fn from(v: &Verification) -> Self {
        let (outcome, drift, reason) = match v {
            Verification::Matched => ("matched", Vec::new(), None),
            Verification::Drifted(drift) => ("drifted", drift.clone(), None),
            Verification::Skipped(why) => ("skipped", Vec::new(), Some(why.clone())),
            Verification::Failed(why) => ("failed", Vec::new(), Some(why.clone())),
        };
        VerificationView {
            outcome: outcome.to_owned(),
            drift,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_written_differently_are_the_same() {
        assert!(same(&json!(20), &json!("20")));
        assert!(same(&json!(true), &json!("true")));
        assert!(same(&json!({"a": 1}), &json!({"a": 1})));
        assert!(!same(&json!("db.t3.small"), &json!("db.t3.large")));
        assert!(!same(&json!(1), &Value::Null));
    }
}
