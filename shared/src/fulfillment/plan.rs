//! Plans: what a request would do, with no side effect. Every action of the item is
//! rendered with every scope and described as the exact call it would make; secrets read
//! `***` (they are never resolved), outputs of earlier actions read `(known after ID)`.
//! `POST /requests?dryRun=true` and `orchestrator plan` both print this.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::actions::{AT_RUN_TIME, Invocation};
use super::engine::{CALL_TIMEOUT, Kinds, action_with, render_with};
use super::manual::{issue_fields, request_label};
use super::mode::ModeOverride;
use super::vars::{REDACTED, scope_keys};
use crate::catalog::CatalogItem;
use crate::catalog::document::{Action, Fallback, ManualFulfillment, Mode};
use crate::requests::model::RequestId;
use crate::template::render::{RenderFailure, Renderer};

/// One action as it would run.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedAction {
    /// `actions` or `rollback`.
    pub list: String,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The call it would make (method, URL, headers, body; files for terraform).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub sends: Option<Value>,
    /// Its outputs, known once it ran.
    #[schema(value_type = Object)]
    pub outputs: Map<String, Value>,
    /// Why it cannot be planned (and would fail): a template or configuration error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the target says the action would change, asked in day-2 plans of kinds that
    /// can tell: a CloudFormation update's resource changes (`action`, `logicalId`,
    /// `type`, `replacement`, the properties it touches).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub preview: Option<Value>,
    /// The configuration as rendered, when it reads no secret and no earlier output
    /// (only those can be previewed: a plan has placeholders there).
    #[serde(skip)]
    pub rendered: Option<Rendered>,
}

/// An action's configuration as a plan rendered it, and the invocation it was for.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub kind: crate::catalog::document::ActionType,
    pub invocation: Invocation,
    pub with: Value,
}

/// What a request would do.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub dry_run: bool,
    pub item: String,
    /// How the request would be fulfilled: `automated` or `manual`.
    #[schema(value_type = String)]
    pub mode: Mode,
    /// An admin's override that forces `manual`, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced_manual: Option<String>,
    /// The field values, defaults applied.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    pub actions: Vec<PlannedAction>,
    /// What would run if an action failed for good.
    pub rollback: Vec<PlannedAction>,
    /// The JIRA issue a person would get (manual mode, or the fallback).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub ticket: Option<Value>,
    /// The item's outputs and where each comes from.
    #[schema(value_type = Object)]
    pub outputs: Map<String, Value>,
    /// The secrets the actions read (their values are never shown).
    pub secrets: Vec<String>,
    pub warnings: Vec<String>,
    /// Problems that would fail the request; empty when the plan is good.
    pub errors: Vec<String>,
    /// The approval stages the request would wait for, in order, before anything runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<PlannedApproval>,
}

/// An approval stage a request would need.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedApproval {
    pub policy: String,
    pub stage: String,
    /// The owning team (the approvers when `approvers.owner`).
    pub owner: String,
    pub approvers: crate::catalog::document::Approvers,
    #[schema(value_type = Object)]
    pub require: crate::catalog::document::Require,
    /// How long approvers have, e.g. `7d`.
    pub expires: String,
    /// Who decides when it expires undecided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<crate::catalog::document::Approvers>,
}

/// The stages of `policies` that gate `operation` and apply to `fields`.
pub fn approvals_needed(
    policies: &[crate::catalog::document::ApprovalPolicy],
    owner: &str,
    operation: crate::catalog::document::Operation,
    fields: &Map<String, Value>,
) -> Vec<PlannedApproval> {
    crate::catalog::document::approval_stages(policies, operation)
        .into_iter()
        .filter(|(policy, _)| policy.applies_to(fields))
        .map(|(policy, stage)| PlannedApproval {
            policy: policy.name.clone(),
            stage: stage.name.clone(),
            owner: owner.to_owned(),
            approvers: stage.approvers.clone(),
            require: stage.require,
            expires: stage
                .expires
                .map_or_else(|| "7d".to_owned(), |e| e.to_string()),
            escalate_to: stage.escalate.as_ref().map(|e| e.approvers.clone()),
        })
        .collect()
}

/// Plans requests in a deployment: the action runners (which describe, never call) and
/// the deployment's `system` and `environment` scopes.
pub struct Planner {
    pub kinds: Kinds,
    pub renderer: Renderer,
    pub system: super::SystemInfo,
}

impl Planner {
    /// The planner of a deployment configured by `config`, describing with `kinds`.
    pub fn new(config: &crate::config::Config, kinds: Kinds) -> Planner {
        Planner {
            kinds,
            renderer: Renderer::new(),
            system: super::SystemInfo {
                region: config.region.clone(),
                stage: config.stage.clone(),
                environment: config.environment.clone().into(),
            },
        }
    }

    /// The plan of `request` (prepared, not stored) for `item`.
    pub fn plan_request(
        &self,
        request: &crate::requests::model::Request,
        item: &CatalogItem,
        forced_manual: Option<&ModeOverride>,
        now: time::OffsetDateTime,
    ) -> Plan {
        let context = super::context(request, &item.metadata, &self.system, now);
        plan(
            &self.kinds,
            &self.renderer,
            &PlanFor {
                item,
                request_id: request.id,
                resource_id: request
                    .resource
                    .clone()
                    .unwrap_or_else(|| request.id.to_string()),
                owner: &request.owner,
                requester: &request.requester.sub,
                fields: &request.fields,
                context: &context,
                forced_manual,
                operation: request.operation,
            },
        )
    }
}

/// The fields of the JIRA issue a person would get for a request of `item` (or a change
/// of one of its resources), rendered with `context` and the item's secrets as `***`.
pub fn ticket_preview(
    renderer: &Renderer,
    item: &CatalogItem,
    manual: &ManualFulfillment,
    request_id: RequestId,
    context: &Value,
) -> Result<Map<String, Value>, RenderFailure> {
    let mut context = context.clone();
    context["secrets"] = placeholders(&referenced(item, "secrets"));
    issue_fields(
        &manual.ticket,
        &request_label(request_id),
        renderer,
        &context,
    )
}

/// The request a plan is for: its id is a preview, as submission assigns the real one.
pub struct PlanFor<'a> {
    pub item: &'a CatalogItem,
    pub request_id: RequestId,
    /// The resource the request would make or change.
    pub resource_id: String,
    /// The team that would own it.
    pub owner: &'a str,
    pub requester: &'a str,
    pub fields: &'a Map<String, Value>,
    /// The variables of every scope but `secrets` and `outputs`.
    pub context: &'a Value,
    pub forced_manual: Option<&'a ModeOverride>,
    /// What the request does (approval policies gate some operations only).
    pub operation: crate::catalog::document::Operation,
}

pub fn known_after(action: &str) -> Value {
    Value::String(format!("(known after {action})"))
}

/// Every referenced key of `scope` across an item's templates.
pub fn referenced(item: &CatalogItem, scope: &str) -> BTreeSet<String> {
    let fulfillment = &item.spec.fulfillment;
    let mut keys = BTreeSet::new();
    if let Some(automated) = &fulfillment.automated {
        for (_, list) in automated.lists() {
            for action in list {
                keys.extend(scope_keys(&action_with(action), scope));
            }
        }
    }
    if let Some(manual) = &fulfillment.manual
        && let Ok(ticket) = serde_json::to_value(&manual.ticket)
    {
        keys.extend(scope_keys(&ticket, scope));
    }
    keys
}

fn placeholders(keys: &BTreeSet<String>) -> Value {
    Value::Object(keys.iter().map(|k| (k.clone(), json!(REDACTED))).collect())
}

/// Plans one action list; `earlier` holds the placeholder outputs of actions before it.
pub fn plan_list(
    kinds: &Kinds,
    renderer: &Renderer,
    p: &PlanFor<'_>,
    list: &str,
    actions: &[Action],
    earlier: &mut Map<String, Value>,
) -> Vec<PlannedAction> {
    let mut planned = Vec::new();
    for action in actions {
        let kind_type = action.config.action_type();
        let outputs: Map<String, Value> = action
            .outputs
            .keys()
            .map(|name| (name.clone(), known_after(&action.id)))
            .collect();
        let mut entry = PlannedAction {
            list: list.to_owned(),
            id: action.id.clone(),
            kind: kind_type.as_str().to_owned(),
            sends: None,
            outputs: outputs.clone(),
            error: None,
            preview: None,
            rendered: None,
        };
        let config = action_with(action);
        let secrets = placeholders(&scope_keys(&config, "secrets"));
        // Placeholders stand where secrets and earlier outputs go: such a configuration
        // is shown, never sent.
        let sendable =
            scope_keys(&config, "secrets").is_empty() && scope_keys(&config, "outputs").is_empty();
        let invocation = Invocation {
            idempotency_key: format!("{}/main/{list}/{}", p.request_id, action.id),
            delivery_id: AT_RUN_TIME.to_owned(),
            started_at: AT_RUN_TIME.to_owned(),
            request_id: p.request_id,
            resource_id: p.resource_id.clone(),
            owner: p.owner.to_owned(),
            requester: p.requester.to_owned(),
            item: p.item.metadata.name.clone(),
            action_id: action.id.clone(),
            attempt: 1,
            call_timeout: CALL_TIMEOUT,
        };
        let described = match kinds.get(&kind_type) {
            None => Err(format!("no runner for {} actions", kind_type.as_str())),
            Some(kind) => render_with(
                renderer,
                kind.as_ref(),
                action,
                list,
                p.context,
                secrets,
                Value::Object(earlier.clone()),
            )
            .map_err(|e| e.to_string())
            .and_then(|with| {
                let sends = kind
                    .describe(&invocation, &with)
                    .map_err(|e| format!("action `{}`: {e}", action.id));
                entry.rendered = sendable.then(|| Rendered {
                    kind: kind_type,
                    invocation: invocation.clone(),
                    with,
                });
                sends
            }),
        };
        match described {
            Ok(sends) => entry.sends = Some(sends),
            Err(e) => entry.error = Some(e),
        }
        earlier.insert(action.id.clone(), Value::Object(outputs));
        planned.push(entry);
    }
    planned
}

/// The plan of a request for an item.
pub fn plan(kinds: &Kinds, renderer: &Renderer, p: &PlanFor<'_>) -> Plan {
    let spec = &p.item.spec;
    let fulfillment = &spec.fulfillment;
    let automated = super::mode::automated_section(fulfillment, p.forced_manual.is_some());
    let mut plan = Plan {
        dry_run: true,
        item: p.item.metadata.name.clone(),
        mode: if automated.is_some() {
            Mode::Automated
        } else {
            Mode::Manual
        },
        forced_manual: p
            .forced_manual
            .map(|o| format!("forced to manual by {}: {}", o.by, o.reason)),
        fields: p.fields.clone(),
        actions: Vec::new(),
        rollback: Vec::new(),
        ticket: None,
        outputs: Map::new(),
        secrets: referenced(p.item, "secrets").into_iter().collect(),
        warnings: vec![format!(
            "request.id is a preview ({}); submitting assigns the request its own",
            p.request_id
        )],
        errors: Vec::new(),
        approvals: approvals_needed(
            &spec.approvals,
            &p.item.metadata.owner,
            p.operation,
            p.fields,
        ),
    };
    if let Some(automated) = automated {
        let mut earlier = Map::new();
        plan.actions = plan_list(
            kinds,
            renderer,
            p,
            "actions",
            &automated.actions,
            &mut earlier,
        );
        plan.rollback = plan_list(
            kinds,
            renderer,
            p,
            "rollback",
            &automated.rollback,
            &mut earlier,
        );
        for action in &automated.actions {
            for name in action.outputs.keys() {
                if spec.outputs.contains_key(name) {
                    plan.outputs.insert(name.clone(), known_after(&action.id));
                }
            }
        }
        for name in spec.outputs.keys() {
            if !plan.outputs.contains_key(name) {
                plan.warnings.push(format!(
                    "output `{name}` is declared but no action produces it"
                ));
            }
        }
        plan.errors.extend(
            plan.actions
                .iter()
                .chain(&plan.rollback)
                .filter_map(|a| a.error.clone()),
        );
    }
    let ticket_wanted = automated.is_none() || fulfillment.fallback == Some(Fallback::Manual);
    if ticket_wanted && let Some(manual) = &fulfillment.manual {
        match ticket_preview(renderer, p.item, manual, p.request_id, p.context) {
            Ok(fields) => {
                let when = if automated.is_some() {
                    "if the automation fails for good (fallback: manual)"
                } else {
                    "now"
                };
                plan.ticket = Some(json!({
                    "when": when,
                    "label": request_label(p.request_id),
                    "fields": fields,
                }));
            }
            Err(e) => plan.errors.push(format!("the ticket template failed: {e}")),
        }
    } else if automated.is_none() {
        plan.errors
            .push("the item would be fulfilled by hand but has no manual section".to_owned());
    }
    plan
}
