//! `cloudformation`: a stack of a template the catalog keeps, created (`CreateStack`) or
//! updated through a change set, and followed to its end; or deleted and followed until
//! it is gone.
//!
//! The stack's name is derived from the item and the request unless the action names
//! one, and the change set's from the action's idempotency key, so a redelivered task
//! finds its stack and its change set instead of making second ones. Outputs of the item
//! are read from the stack's outputs (`$.outputs.<OutputKey>`). A stack that fails
//! reports the first resource that failed, with CloudFormation's reason.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{
    Capability, ChangeSetStatus, ChangeSetType, ExecutionStatus, Parameter, Stack, StackStatus, Tag,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use shared::catalog::document::{CloudformationAction, StackOperation};
use shared::fulfillment::actions::{
    ActionError, ActionKind, Invocation, ReportedDrift, Step, config,
};

use super::{aws_error, region, tags};

mod drift;
mod events;

/// How often a change set or a stack is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(3);

pub struct CloudformationKind {
    accounts: std::sync::Arc<super::accounts::Accounts>,
    stacks: Option<StackRole>,
}

/// The service role CloudFormation makes and deletes stacks' resources as, so the
/// worker itself needs no permission on them (only `iam:PassRole` on this role).
#[derive(Debug, Clone)]
pub struct StackRole {
    pub name: String,
    /// The deployment's own account, for actions that name none.
    pub own_account: String,
}

impl StackRole {
    /// The configured role (`aws.stackRoleName`), if any.
    pub fn of(config: &shared::config::AwsConfig) -> Option<StackRole> {
        Some(StackRole {
            name: config.stack_role_name.clone().filter(|n| !n.is_empty())?,
            own_account: config.account_id.clone(),
        })
    }
}

impl CloudformationKind {
    pub fn new(
        accounts: std::sync::Arc<super::accounts::Accounts>,
        stacks: Option<StackRole>,
    ) -> Self {
        CloudformationKind { accounts, stacks }
    }

    /// The ARN of the role CloudFormation acts as for `action` (`RoleARN`), if one is
    /// configured: in the action's account, or the deployment's.
    fn role_arn(&self, action: &CloudformationAction) -> Option<String> {
        let role = self.stacks.as_ref()?;
        let account = action.account.as_deref().unwrap_or(&role.own_account);
        if account.is_empty() {
            return None;
        }
        let region = super::region(self.accounts.base(), action.region.as_deref());
        let partition =
            super::accounts::partition(region.as_ref().map(|r| r.as_ref()).unwrap_or_default());
        Some(format!("arn:{partition}:iam::{account}:role/{}", role.name))
    }

    /// The events `found` recorded since the last look of this action (`state`).
    async fn look(
        &self,
        client: &Client,
        found: &Stack,
        run: &Invocation,
        state: &Value,
    ) -> events::Look {
        let id = found.stack_id().or(found.stack_name()).unwrap_or_default();
        events::since(client, id, state["lastEvent"].as_str(), &run.started_at).await
    }

    /// Deletes the stack `id` as the stack role, with a token for `what` (`delete`,
    /// `clear`) the same on every attempt.
    async fn delete(
        &self,
        client: &Client,
        run: &Invocation,
        action: &CloudformationAction,
        id: &str,
        what: &str,
    ) -> Result<(), ActionError> {
        client
            .delete_stack()
            .stack_name(id)
            .set_role_arn(self.role_arn(action))
            .client_request_token(token(run, what))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("DeleteStack", &e))
    }
}

/// The stack's name: the action's, or `orchestrator-<item>-<resource>` (the resource's
/// id without its dashes, a component's after a dash), so the day-2 changes and the
/// deletion of a resource find the stack its provisioning made.
fn stack_name(run: &Invocation, action: &CloudformationAction) -> String {
    action.stack_name.clone().unwrap_or_else(|| {
        let resource = run.resource_id.replace('-', "").replace(['.', '_'], "-");
        format!("orchestrator-{}-{resource}", run.item)
    })
}

/// A name or token the same on every attempt of one action (CloudFormation takes up to
/// 128 characters, starting with a letter).
fn token(run: &Invocation, what: &str) -> String {
    let digest = Sha256::digest(format!("{what}:{}", run.idempotency_key).as_bytes());
    format!("o{}", &shared::signing::hex(&digest)[..40])
}

/// A parameter's value as CloudFormation takes it: text, a list joined by commas.
fn parameter_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(parameter_value)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// The stack, or `None` when there is none by that name (or id).
async fn find(client: &Client, stack: &str) -> Result<Option<Stack>, ActionError> {
    match client.describe_stacks().stack_name(stack).send().await {
        Ok(out) => Ok(out.stacks.unwrap_or_default().into_iter().next()),
        Err(e)
            if e.as_service_error()
                .and_then(|s| aws_sdk_cloudformation::error::ProvideErrorMetadata::message(s))
                .is_some_and(|m| m.contains("does not exist")) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("DescribeStacks", &e)),
    }
}

/// What a finished stack gives the item: its name, id, status and outputs.
fn document(stack: &Stack) -> Value {
    let outputs: Map<String, Value> = stack
        .outputs()
        .iter()
        .filter_map(|o| {
            Some((
                o.output_key()?.to_owned(),
                Value::String(o.output_value().unwrap_or_default().to_owned()),
            ))
        })
        .collect();
    json!({
        "stackName": stack.stack_name(),
        "stackId": stack.stack_id(),
        "status": stack.stack_status().map(|s| s.as_str()),
        "outputs": outputs,
    })
}

/// Why a stack failed: the first resource that failed, with CloudFormation's reason.
async fn failure(client: &Client, stack: &Stack) -> ActionError {
    let name = stack.stack_name().unwrap_or_default();
    let status = stack.stack_status().map(|s| s.as_str()).unwrap_or("?");
    let events = client
        .describe_stack_events()
        .stack_name(stack.stack_id().unwrap_or(name))
        .send()
        .await
        .ok()
        .and_then(|o| o.stack_events)
        .unwrap_or_default();
    // Newest first: the first failure is the last one listed.
    let first = events.iter().rev().find(|e| {
        e.resource_status()
            .is_some_and(|s| s.as_str().ends_with("_FAILED"))
            && e.logical_resource_id() != Some(name)
    });
    let reason = match first {
        Some(e) => format!(
            "{} ({}) {}: {}",
            e.logical_resource_id().unwrap_or("?"),
            e.resource_type().unwrap_or("?"),
            e.resource_status().map(|s| s.as_str()).unwrap_or("?"),
            e.resource_status_reason().unwrap_or("no reason given")
        ),
        None => stack
            .stack_status_reason()
            .unwrap_or("no reason given")
            .to_owned(),
    };
    ActionError::permanent(format!("stack {name} ended {status}: {reason}"))
}

/// What a stack is given, whether it is created, changed or previewed: the template
/// (the catalog's, or a URL in S3), the action's parameters, the tags (the
/// orchestrator's and the action's) and the capabilities.
struct StackInputs {
    role_arn: Option<String>,
    template_body: Option<String>,
    template_url: Option<String>,
    parameters: Vec<Parameter>,
    tags: Vec<Tag>,
    capabilities: Vec<Capability>,
}

impl StackInputs {
    fn of(
        run: &Invocation,
        action: &CloudformationAction,
        role_arn: Option<String>,
    ) -> Result<StackInputs, ActionError> {
        let template_body = action.template_body.as_ref().map(Value::to_string);
        if template_body.is_none() && action.template_url.is_none() {
            return Err(ActionError::permanent(
                "the action's template is neither in the catalog nor at a URL",
            ));
        }
        Ok(StackInputs {
            role_arn,
            template_body,
            template_url: action.template_url.clone(),
            parameters: action
                .parameters
                .iter()
                .map(|(key, value)| {
                    Parameter::builder()
                        .parameter_key(key)
                        .parameter_value(parameter_value(value))
                        .build()
                })
                .collect(),
            tags: tags(run, &action.tags)
                .into_iter()
                .map(|(key, value)| Tag::builder().key(key).value(value).build())
                .collect(),
            capabilities: action
                .capabilities
                .iter()
                .map(|c| Capability::from(c.as_str()))
                .collect(),
        })
    }
}

/// A new stack, created at once (`CreateStack`, with a token the same on every attempt,
/// so a repeated call is the same creation).
async fn create_stack(
    client: &Client,
    run: &Invocation,
    action: &CloudformationAction,
    stack: &str,
    role_arn: Option<String>,
    attempt: &str,
) -> Result<Step, ActionError> {
    let inputs = StackInputs::of(run, action, role_arn)?;
    let call = client
        .create_stack()
        .stack_name(stack)
        .set_role_arn(inputs.role_arn)
        .set_template_body(inputs.template_body)
        .set_template_url(inputs.template_url)
        .client_request_token(token(run, attempt))
        .set_parameters(Some(inputs.parameters))
        .set_tags(Some(inputs.tags))
        .set_capabilities(Some(inputs.capabilities));
    match call.send().await {
        Ok(_) => Ok(pending("stack", stack, None)),
        Err(e) if super::code_of(&e) == Some("AlreadyExistsException") => {
            Ok(pending("stack", stack, None))
        }
        Err(e) => Err(aws_error("CreateStack", &e)),
    }
}

/// How long a preview waits for CloudFormation to work out its change set.
const PREVIEW_WITHIN: Duration = Duration::from_secs(60);

/// A change set's resource changes as a plan shows them.
fn resource_changes(changes: &[aws_sdk_cloudformation::types::Change]) -> Vec<Value> {
    changes
        .iter()
        .filter_map(|c| c.resource_change())
        .map(|r| {
            let properties: std::collections::BTreeSet<&str> = r
                .details()
                .iter()
                .filter_map(|d| d.target().and_then(|t| t.name()))
                .collect();
            json!({
                "action": r.action().map(|a| a.as_str()),
                "logicalId": r.logical_resource_id(),
                "type": r.resource_type(),
                "replacement": r.replacement().map(|x| x.as_str()),
                "scope": r.scope().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "properties": properties,
            })
        })
        .collect()
}

/// Whether a failed change set failed only because there was nothing to change.
fn nothing_to_change(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates")
}

fn pending(phase: &str, stack: &str, change_set: Option<&str>) -> Step {
    Step::pending(
        json!({"phase": phase, "stack": stack, "changeSet": change_set}),
        CHECK_EVERY,
    )
}

/// A stack still in progress, with the events it recorded since the last look.
fn following(phase: &str, stack: &str, look: events::Look) -> Step {
    Step::Pending {
        state: json!({"phase": phase, "stack": stack, "lastEvent": look.last}),
        check_after: CHECK_EVERY,
        events: look.events,
    }
}

/// A stack that reached its end: its last events go on the timeline first (the next
/// look, at once, finds none and gives `end`).
fn ended(
    phase: &str,
    stack: &str,
    look: events::Look,
    end: Result<Step, ActionError>,
) -> Result<Step, ActionError> {
    if look.events.is_empty() {
        return end;
    }
    Ok(Step::Pending {
        state: json!({"phase": phase, "stack": stack, "lastEvent": look.last}),
        check_after: Duration::ZERO,
        events: look.events,
    })
}

#[async_trait]
impl ActionKind for CloudformationKind {
    fn url_pointers(&self) -> &'static [&'static str] {
        &[]
    }

    fn verbatim(&self) -> &'static [&'static str] {
        &["templateBody"]
    }

    fn reported_drift(&self, document: &Value) -> Vec<ReportedDrift> {
        drift::reported(document)
    }

    fn target(&self, with: &Value) -> Option<String> {
        self.accounts.target("cloudformation", with)
    }

    fn describe(&self, run: &Invocation, with: &Value) -> Result<Value, ActionError> {
        let action: CloudformationAction = config(with)?;
        let region = region(self.accounts.base(), action.region.as_deref()).map(|r| r.to_string());
        let stack = stack_name(run, &action);
        match action.operation {
            StackOperation::Delete => {
                return Ok(json!({"service": "cloudformation", "region": region,
                                  "calls": [{"call": "DeleteStack", "stackName": stack}]}));
            }
            StackOperation::DetectDrift => {
                return Ok(json!({"service": "cloudformation", "region": region,
                                  "calls": [{"call": "DetectStackDrift", "stackName": stack},
                                            {"call": "DescribeStackResourceDrifts", "stackName": stack}]}));
            }
            StackOperation::Deploy => {}
        }
        let resources: Map<String, Value> = action
            .template_body
            .as_ref()
            .and_then(|t| t.get("Resources"))
            .and_then(Value::as_object)
            .map(|r| {
                r.iter()
                    .map(|(id, spec)| {
                        (id.clone(), spec.get("Type").cloned().unwrap_or(Value::Null))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let parameters: Map<String, Value> = action
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(parameter_value(v))))
            .collect();
        Ok(json!({
            "service": "cloudformation",
            "region": region,
            "changeSet": {
                "stackName": stack,
                "type": "CreateStack for a new stack, an UPDATE change set for one that exists (known when it runs)",
                "template": action.template,
                "templateUrl": action.template_url,
                "resources": resources,
                "parameters": parameters,
                "tags": tags(run, &action.tags)
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect::<Map<String, Value>>(),
                "capabilities": action.capabilities,
                "roleArn": self.role_arn(&action),
            },
        }))
    }

    async fn start(&self, run: &Invocation, with: &Value) -> Result<Step, ActionError> {
        let action: CloudformationAction = config(with)?;
        let client = self
            .accounts
            .client(
                action.account.as_deref(),
                action.region.as_deref(),
                Client::new,
            )
            .await?;
        let stack = stack_name(run, &action);
        if action.operation == StackOperation::DetectDrift {
            return drift::detect(&client, &stack, run.call_timeout)
                .await
                .map(Step::Done);
        }
        let existing = find(&client, &stack).await?;
        if action.operation == StackOperation::Delete {
            let Some(found) = existing else {
                return Ok(Step::Done(json!({"stackName": stack, "deleted": true})));
            };
            let id = found.stack_id().unwrap_or(&stack).to_owned();
            self.delete(&client, run, &action, &id, "delete").await?;
            return Ok(pending("delete", &id, None));
        }
        let change_type = match existing.as_ref().and_then(|s| s.stack_status()) {
            None => {
                let role = self.role_arn(&action);
                return create_stack(&client, run, &action, &stack, role, "create").await;
            }
            // What an earlier failed attempt of this resource left (the name is the
            // resource's): such a stack can only be deleted, so it is, then made again.
            Some(StackStatus::RollbackComplete) if action.stack_name.is_none() => {
                let id = existing
                    .as_ref()
                    .and_then(|s| s.stack_id())
                    .unwrap_or(&stack)
                    .to_owned();
                self.delete(&client, run, &action, &id, "clear").await?;
                return Ok(Step::pending(
                    json!({"phase": "clear", "stack": id, "name": stack}),
                    CHECK_EVERY,
                ));
            }
            Some(StackStatus::ReviewInProgress) => ChangeSetType::Create,
            Some(status) if status.as_str().ends_with("_IN_PROGRESS") => {
                // An earlier attempt's change set is running: follow it.
                return Ok(pending("stack", &stack, None));
            }
            Some(StackStatus::RollbackComplete) => {
                return Err(ActionError::permanent(format!(
                    "stack {stack} is ROLLBACK_COMPLETE from an earlier failure, and the action names it: delete it first"
                )));
            }
            Some(_) => ChangeSetType::Update,
        };
        let change_set = token(run, "change-set");
        let inputs = StackInputs::of(run, &action, self.role_arn(&action))?;
        let call = client
            .create_change_set()
            .stack_name(&stack)
            .change_set_name(&change_set)
            .change_set_type(change_type)
            .set_role_arn(inputs.role_arn)
            .set_template_body(inputs.template_body)
            .set_template_url(inputs.template_url)
            .client_token(token(run, "create"))
            .set_parameters(Some(inputs.parameters))
            .set_tags(Some(inputs.tags))
            .set_capabilities(Some(inputs.capabilities));
        match call.send().await {
            Ok(_) => {}
            // Made by an earlier attempt whose answer was lost.
            Err(e) if super::code_of(&e) == Some("AlreadyExistsException") => {}
            Err(e) => return Err(aws_error("CreateChangeSet", &e)),
        }
        Ok(pending("change-set", &stack, Some(&change_set)))
    }

    async fn preview(&self, run: &Invocation, with: &Value) -> Result<Option<Value>, ActionError> {
        let action: CloudformationAction = config(with)?;
        // Without credentials (a plan offline) there is nobody to ask.
        if action.operation != StackOperation::Deploy
            || self.accounts.base().credentials_provider().is_none()
        {
            return Ok(None);
        }
        let client = self
            .accounts
            .client(
                action.account.as_deref(),
                action.region.as_deref(),
                Client::new,
            )
            .await?;
        let stack = stack_name(run, &action);
        // A new stack: the plan's template, parameters and tags say it all.
        if find(&client, &stack).await?.is_none() {
            return Ok(None);
        }
        // The plan's request id is new on every plan.
        let name = format!(
            "orchestrator-preview-{}",
            run.request_id.to_string().replace('-', "")
        );
        let inputs = StackInputs::of(run, &action, self.role_arn(&action))?;
        client
            .create_change_set()
            .stack_name(&stack)
            .change_set_name(&name)
            .change_set_type(ChangeSetType::Update)
            .set_role_arn(inputs.role_arn)
            .set_template_body(inputs.template_body)
            .set_template_url(inputs.template_url)
            .set_parameters(Some(inputs.parameters))
            .set_tags(Some(inputs.tags))
            .set_capabilities(Some(inputs.capabilities))
            .send()
            .await
            .map_err(|e| aws_error("CreateChangeSet", &e))?;
        let until = std::time::Instant::now() + PREVIEW_WITHIN;
        let outcome = loop {
            let described = client
                .describe_change_set()
                .stack_name(&stack)
                .change_set_name(&name)
                .send()
                .await
                .map_err(|e| aws_error("DescribeChangeSet", &e));
            match described {
                Err(e) => break Err(e),
                Ok(d) => match d.status() {
                    Some(ChangeSetStatus::CreateComplete) => {
                        break Ok(resource_changes(d.changes()));
                    }
                    Some(ChangeSetStatus::Failed) => {
                        let reason = d.status_reason().unwrap_or("no reason given");
                        break if nothing_to_change(reason) {
                            Ok(Vec::new())
                        } else {
                            Err(ActionError::permanent(format!(
                                "the change set of stack {stack} failed: {reason}"
                            )))
                        };
                    }
                    _ if std::time::Instant::now() > until => {
                        break Err(ActionError::retryable(format!(
                            "the change set of stack {stack} was not ready within {}s",
                            PREVIEW_WITHIN.as_secs()
                        )));
                    }
                    _ => tokio::time::sleep(Duration::from_secs(1)).await,
                },
            }
        };
        // A preview leaves nothing behind; a change set that outlives it changes nothing.
        let _ = client
            .delete_change_set()
            .stack_name(&stack)
            .change_set_name(&name)
            .send()
            .await;
        Ok(Some(json!({
            "stackName": stack,
            "changeSet": "UPDATE",
            "changes": outcome?,
        })))
    }

    async fn poll(
        &self,
        run: &Invocation,
        with: &Value,
        state: &Value,
    ) -> Result<Step, ActionError> {
        let action: CloudformationAction = config(with)?;
        let client = self
            .accounts
            .client(
                action.account.as_deref(),
                action.region.as_deref(),
                Client::new,
            )
            .await?;
        let stack = state["stack"].as_str().unwrap_or_default().to_owned();
        match state["phase"].as_str() {
            Some("change-set") => {
                let change_set = state["changeSet"].as_str().unwrap_or_default();
                let described = client
                    .describe_change_set()
                    .stack_name(&stack)
                    .change_set_name(change_set)
                    .send()
                    .await
                    .map_err(|e| aws_error("DescribeChangeSet", &e))?;
                match described.status() {
                    Some(ChangeSetStatus::CreateComplete) => {}
                    Some(ChangeSetStatus::Failed) => {
                        let reason = described.status_reason().unwrap_or("no reason given");
                        // Nothing to change: the stack already is what was asked.
                        if nothing_to_change(reason) {
                            return match find(&client, &stack).await? {
                                Some(found) => Ok(Step::Done(document(&found))),
                                None => {
                                    Err(ActionError::permanent(format!("stack {stack} is gone")))
                                }
                            };
                        }
                        return Err(ActionError::permanent(format!(
                            "the change set of stack {stack} failed: {reason}"
                        )));
                    }
                    _ => return Ok(pending("change-set", &stack, Some(change_set))),
                }
                if described.execution_status() == Some(&ExecutionStatus::Available) {
                    client
                        .execute_change_set()
                        .stack_name(&stack)
                        .change_set_name(change_set)
                        .client_request_token(token(run, "execute"))
                        .send()
                        .await
                        .map_err(|e| aws_error("ExecuteChangeSet", &e))?;
                }
                Ok(pending("stack", &stack, None))
            }
            Some("stack") => {
                let Some(found) = find(&client, &stack).await? else {
                    return Err(ActionError::permanent(format!("stack {stack} is gone")));
                };
                let look = self.look(&client, &found, run, state).await;
                let status = found.stack_status().map(|s| s.as_str()).unwrap_or_default();
                match status {
                    "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" => {
                        ended("stack", &stack, look, Ok(Step::Done(document(&found))))
                    }
                    s if s.ends_with("_IN_PROGRESS") => Ok(following("stack", &stack, look)),
                    _ => ended("stack", &stack, look, Err(failure(&client, &found).await)),
                }
            }
            // An earlier attempt's rolled-back stack, being deleted: once it is gone, the
            // stack is made again.
            Some("clear") => {
                let gone = match find(&client, &stack).await? {
                    None => true,
                    Some(found) => match found.stack_status().map(|s| s.as_str()) {
                        Some("DELETE_COMPLETE") => true,
                        Some("DELETE_FAILED") => return Err(failure(&client, &found).await),
                        _ => false,
                    },
                };
                if !gone {
                    return Ok(Step::pending(state.clone(), CHECK_EVERY));
                }
                let name = state["name"].as_str().unwrap_or_default();
                let role = self.role_arn(&action);
                create_stack(&client, run, &action, name, role, "create-again").await
            }
            Some("delete") => match find(&client, &stack).await? {
                None => Ok(Step::Done(json!({"stackName": stack, "deleted": true}))),
                Some(found) => {
                    let look = self.look(&client, &found, run, state).await;
                    match found.stack_status().map(|s| s.as_str()) {
                        Some("DELETE_COMPLETE") => ended(
                            "delete",
                            &stack,
                            look,
                            Ok(Step::Done(
                                json!({"stackName": found.stack_name(), "deleted": true}),
                            )),
                        ),
                        Some("DELETE_FAILED") => {
                            ended("delete", &stack, look, Err(failure(&client, &found).await))
                        }
                        _ => Ok(following("delete", &stack, look)),
                    }
                }
            },
            _ => Err(ActionError::permanent(
                "the stack's state was not understood",
            )),
        }
    }
}
