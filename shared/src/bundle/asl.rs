//! The compiler from a bundle (or a single automated item) to an Amazon States Language
//! definition, in the JSONPath query language.
//!
//! ## The shape of a generated state machine
//!
//! - The state is `{"components": {"<id>": {"outputs": {...}}, ...}}`: the outputs of
//!   every completed component, which operators see in the console and later components
//!   read. The request id comes from the execution input (`$$.Execution.Input.requestId`).
//! - Each component is a `Provision <id>` Task on `sqs:sendMessage.waitForTaskToken`: the
//!   message (a [`TaskMessage`](super::task::TaskMessage)) carries the task token, the request, the component, its
//!   item and the outputs so far; the worker renders the component's inputs from them with
//!   the catalog's templates (which need Handlebars, not JSONPath), runs the item, and
//!   answers with `SendTaskSuccess({"outputs": ...})` or `SendTaskFailure`.
//! - Components are ordered by [`super::schedule`]: chains of states and `Parallel` states.
//!   A branch ends with `OutputPath: $.components`; the `Parallel` state merges its
//!   branches with `States.JsonMerge` (balanced, so nesting stays shallow) back into
//!   `$.components`.
//! - A branch never fails: each of its states catches `States.ALL` into a Pass state that
//!   ends the branch with `{"_failure": <error>}` (or `{"_cancelled": ...}` for a component
//!   the worker declined to start, so the first failure, not its echoes, is reported). Step Functions stops every other branch
//!   of a `Parallel` state when one fails, and a stopped callback task's worker goes on
//!   making its thing with nobody left to undo it; so the siblings of a failed component
//!   run to their end (the worker starts nothing new for a failing request, see
//!   `worker::component`), and only then the `Check` Choice after the `Parallel` state
//!   turns a branch's failure into `$.error` for the failure path below.
//! - Success ends with the `Complete` task: the worker renders the bundle's outputs, marks
//!   the request completed and answers with them (`$.outputs`, the execution's output).
//! - Failure: every top-level state catches `States.ALL` into `$.error`. With
//!   `onFailure: rollback` the `Undo <id>` tasks run, in reverse dependency order, for the
//!   components whose item has rollback actions (the worker skips components that never
//!   completed); an undo that fails is recorded and the others still run. Then `Record
//!   failure` lets the worker mark the request failed, and the `Failed` state ends the
//!   execution with the original error and cause (`ErrorPath`/`CausePath`). With
//!   `onFailure: stop` the catch goes straight to `Record failure`. With `onFailure: pause`
//!   provisioning states catch only timeouts: the worker pauses the request before it
//!   answers a failure, and the execution fails at the failed component, where
//!   RedriveExecution resumes it (running only the branches that did not succeed).
//!
//! The output is deterministic: the same catalog gives byte-identical JSON.

use serde_json::{Map, Value, json};

use super::schedule::{Schedule, schedule};
use super::task::{CANCELLED_ERROR, REJECTED_ERROR, SINGLE_COMPONENT, TRANSIENT_ERROR, TaskKind};
use crate::catalog::document::{
    Action, ApprovalPolicy, CatalogBundle, CatalogItem, Mode, OnFailure, Operation, approval_stages,
};
use crate::catalog::load::Catalog;
use crate::graph::DependencyGraph;

/// The action queue's URL in a definition; the workflow engine substitutes the deployed
/// queue's URL when it creates the state machine.
pub const QUEUE_PLACEHOLDER: &str = "${ActionQueueUrl}";

/// The callback integration every component task uses.
pub const CALLBACK_RESOURCE: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";

/// How long a person has to fulfil a manual component when the item does not say.
pub const DEFAULT_MANUAL_WAIT_SECS: u64 = 30 * 86_400;

/// The longest a worker goes without touching an automated task: the longest queue delay
/// between two polls (15 minutes) plus a visibility timeout and slack.
pub const HEARTBEAT_SECS: u64 = 1_200;

/// How long the bookkeeping tasks (`Complete`, `Record failure`) may take.
const BOOKKEEPING_SECS: u64 = 300;

/// The key under which a branch of a `Parallel` state that failed gives its error. A
/// component id starts with a letter, so this never names a component.
pub const FAILURE_KEY: &str = "_failure";

/// The key under which a branch gives the cancellation of a component the worker did
/// not start because a sibling had failed.
pub const CANCELLED_KEY: &str = "_cancelled";

/// Step Functions' largest `TimeoutSeconds`.
const MAX_TIMEOUT_SECS: u64 = 99_999_999;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("no bundle `{0}` in the catalog")]
    NoSuchBundle(String),
    #[error("component `{component}` requests `{item}`, which is not in the catalog")]
    NoSuchItem { component: String, item: String },
    #[error("component `{0}` depends on a component the bundle does not have")]
    UnknownDependency(String),
    #[error("the components' dependencies form a cycle")]
    Cycle,
}

/// One component to provision.
struct Unit<'a> {
    id: &'a str,
    item: &'a CatalogItem,
}

/// The definition of a bundle's state machine.
pub fn compile_bundle(catalog: &Catalog, name: &str) -> Result<Value, CompileError> {
    let bundle = catalog
        .bundle(name)
        .ok_or_else(|| CompileError::NoSuchBundle(name.to_owned()))?;
    let (units, graph) = units(&bundle.doc, catalog)?;
    let schedule = schedule(&graph).ok_or(CompileError::Cycle)?;
    let meta = &bundle.doc.metadata;
    Ok(Compiler::new(&units).definition(
        &format!("Bundle {}: {}", meta.name, meta.title),
        &bundle.doc.spec.approvals,
        &schedule,
        bundle.doc.spec.on_failure,
    ))
}

/// The one-component definition of a single item.
pub fn compile_item(item: &CatalogItem) -> Value {
    let units = [Unit {
        id: SINGLE_COMPONENT,
        item,
    }];
    let meta = &item.metadata;
    // The item's own rollback runs inside its task; nothing completed is left to undo.
    let on_failure = match item
        .spec
        .fulfillment
        .automated
        .as_ref()
        .map(|a| a.on_failure)
    {
        Some(OnFailure::Pause) => OnFailure::Pause,
        _ => OnFailure::Stop,
    };
    Compiler::new(&units).definition(
        &format!("Item {}: {}", meta.name, meta.title),
        &item.spec.approvals,
        &Schedule::Task(0),
        on_failure,
    )
}

/// The definition's text with each placeholder (such as [`QUEUE_PLACEHOLDER`]) replaced by
/// its value, as SAM's DefinitionSubstitutions do: what an engine deploys.
pub fn substitute(
    definition: &Value,
    substitutions: &[(String, String)],
) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string(definition)?;
    for (placeholder, value) in substitutions {
        // The value goes inside a JSON string: escape it as one.
        let escaped = serde_json::to_string(value)?;
        text = text.replace(placeholder.as_str(), &escaped[1..escaped.len() - 1]);
    }
    Ok(text)
}

/// A definition as it is checked in and deployed: pretty JSON ending with a newline.
pub fn to_text(definition: &Value) -> String {
    let mut text = serde_json::to_string_pretty(definition).unwrap_or_default();
    text.push('\n');
    text
}

/// The component graph as a Mermaid flowchart, for the portal and the docs.
pub fn mermaid(catalog: &Catalog, name: &str) -> Result<String, CompileError> {
    let bundle = catalog
        .bundle(name)
        .ok_or_else(|| CompileError::NoSuchBundle(name.to_owned()))?;
    let mut out = String::from("flowchart TD\n");
    for c in &bundle.doc.spec.components {
        let title = catalog
            .item(&c.item)
            .map_or(c.item.as_str(), |i| i.doc.metadata.title.as_str());
        out.push_str(&format!(
            "  c_{}[\"{}<br/><small>{}</small>\"]\n",
            c.id,
            escape_mermaid(&c.id),
            escape_mermaid(title)
        ));
    }
    for c in &bundle.doc.spec.components {
        for d in &c.depends_on {
            out.push_str(&format!("  c_{d} --> c_{}\n", c.id));
        }
    }
    Ok(out)
}

fn escape_mermaid(s: &str) -> String {
    s.replace('&', "#amp;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

fn units<'a>(
    bundle: &'a CatalogBundle,
    catalog: &'a Catalog,
) -> Result<(Vec<Unit<'a>>, DependencyGraph), CompileError> {
    let components = &bundle.spec.components;
    let mut units = Vec::with_capacity(components.len());
    let mut deps = Vec::with_capacity(components.len());
    for c in components {
        let item = catalog
            .item(&c.item)
            .ok_or_else(|| CompileError::NoSuchItem {
                component: c.id.clone(),
                item: c.item.clone(),
            })?;
        units.push(Unit {
            id: &c.id,
            item: &item.doc,
        });
        let mut on = Vec::with_capacity(c.depends_on.len());
        for d in &c.depends_on {
            let i = components
                .iter()
                .position(|o| &o.id == d)
                .ok_or_else(|| CompileError::UnknownDependency(c.id.clone()))?;
            on.push(i);
        }
        deps.push(on);
    }
    Ok((units, DependencyGraph::new(deps)))
}

/// A schedule with its parallel blocks named, in the order they run.
enum Node {
    Task(usize),
    Sequence(Vec<Node>),
    Parallel(String, Vec<Node>),
}

fn label(s: &Schedule, prefix: &str, counter: &mut usize) -> Node {
    match s {
        Schedule::Task(i) => Node::Task(*i),
        Schedule::Sequence(parts) => {
            Node::Sequence(parts.iter().map(|p| label(p, prefix, counter)).collect())
        }
        Schedule::Parallel(parts) => {
            *counter += 1;
            let name = format!("{prefix} {counter}");
            Node::Parallel(
                name,
                parts.iter().map(|p| label(p, prefix, counter)).collect(),
            )
        }
    }
}

/// Where a chain of states goes when it is done.
#[derive(Clone)]
enum Then {
    Next(String),
    End,
}

/// Where a failure goes from a provisioning state.
#[derive(Clone)]
enum Escape {
    /// The top level: to the failure path (rollback or recording), with `$.error`.
    Top(String),
    /// A branch of a `Parallel` state: to the Pass state that ends the branch with the
    /// failure under [`FAILURE_KEY`], or, for a component the worker declined to start
    /// because a sibling failed, under [`CANCELLED_KEY`] (so the sibling's own error is
    /// the one reported).
    Branch { stopped: String, cancelled: String },
}

impl Escape {
    /// The catchers of a provisioning state, catching `caught`.
    fn catch(&self, caught: &str) -> Value {
        match self {
            Escape::Top(next) => {
                json!([{"ErrorEquals": [caught], "ResultPath": "$.error", "Next": next}])
            }
            Escape::Branch { stopped, cancelled } => json!([
                {"ErrorEquals": [CANCELLED_ERROR], "ResultPath": "$.error", "Next": cancelled},
                {"ErrorEquals": [caught], "ResultPath": "$.error", "Next": stopped},
            ]),
        }
    }

    /// Where a failure under `key` goes once it is in `$.error`.
    fn after(&self, key: &str) -> &str {
        match self {
            Escape::Top(next) => next,
            Escape::Branch { cancelled, .. } if key == CANCELLED_KEY => cancelled,
            Escape::Branch { stopped, .. } => stopped,
        }
    }

    fn in_branch(&self) -> bool {
        matches!(self, Escape::Branch { .. })
    }
}

struct Compiler<'a> {
    units: &'a [Unit<'a>],
    /// The errors provisioning states catch: all of them, or, for a bundle that pauses,
    /// only timeouts (the worker answers every other failure, having paused the request,
    /// and the execution fails at the failed component, for RedriveExecution to resume).
    caught: &'static str,
}

impl<'a> Compiler<'a> {
    fn new(units: &'a [Unit<'a>]) -> Self {
        Compiler {
            units,
            caught: "States.ALL",
        }
    }

    fn definition(
        mut self,
        comment: &str,
        approvals: &[ApprovalPolicy],
        schedule: &Schedule,
        on_failure: OnFailure,
    ) -> Value {
        let mut states = Map::new();
        let undo = match on_failure {
            OnFailure::Rollback => schedule.reversed(&|i| has_rollback(self.units[i].item)),
            OnFailure::Stop => None,
            OnFailure::Pause => {
                self.caught = "States.Timeout";
                None
            }
        };
        let undo = undo.map(|s| label(&s, "Undo together", &mut 0));
        let on_error = match &undo {
            Some(node) => self.entry(node, "Undo"),
            None => "Record failure".to_owned(),
        };
        let provision = label(schedule, "Together", &mut 0);
        let scheduled = scheduled(&self.entry(&provision, "Provision"), &mut states);
        let first = self.approvals(approvals, &scheduled, &mut states);
        states.insert(
            "Start".into(),
            json!({
                "Type": "Pass",
                "Comment": "The state: the outputs of every completed component.",
                "Result": {"components": {}},
                "Next": first,
            }),
        );
        self.provision(
            &provision,
            Then::Next("Complete".into()),
            &Escape::Top(on_error.clone()),
            &mut states,
        );
        states.insert(
            "Complete".into(),
            self.bookkeeping(
                TaskKind::Complete,
                "Render the outputs and mark the request completed.",
                json!("$.outputs"),
                &on_error,
                &Then::End,
            ),
        );
        if let Some(undo) = &undo {
            self.undo(undo, Then::Next("Record failure".into()), &mut states);
        }
        states.insert(
            "Record failure".into(),
            self.bookkeeping(
                TaskKind::Fail,
                "Mark the request failed with the original error.",
                Value::Null,
                "Failed",
                &Then::Next("Failed".into()),
            ),
        );
        states.insert(
            "Failed".into(),
            json!({
                "Type": "Fail",
                "Comment": "Ends the execution with the error and cause of the failure.",
                "ErrorPath": "$.error.Error",
                "CausePath": "$.error.Cause",
            }),
        );
        json!({
            "Comment": format!("{comment}. Generated by the orchestrator from the catalog: do not edit."),
            "StartAt": "Start",
            "States": states,
        })
    }

    /// The approval stages of the policies that gate provisioning, one callback task each,
    /// in order, before anything runs; returns the first state (`then` when there are
    /// none). The worker answers a stage whose policy does not apply to the request at
    /// once. A denial fails the task (`Orchestrator.Rejected`); a stage that expires
    /// escalates when its policy says so, and otherwise rejects the request.
    fn approvals(
        &self,
        policies: &[ApprovalPolicy],
        then: &str,
        states: &mut Map<String, Value>,
    ) -> String {
        let stages = approval_stages(policies, Operation::Provision);
        let name = |n: usize| format!("Approval {n}");
        for (i, (policy, stage)) in stages.iter().enumerate() {
            let n = i + 1;
            let next = if n == stages.len() {
                then.to_owned()
            } else {
                name(n + 1)
            };
            let expired = format!("Approval {n} expired");
            let comment = format!("Approval: {} / {}", policy.name, stage.name);
            let mut tasks = vec![(name(n), false, stage.expiry())];
            if let Some(escalate) = &stage.escalate {
                let expiry = escalate
                    .expires
                    .map_or_else(|| stage.expiry(), |e| e.as_duration());
                tasks.push((format!("Approval {n} escalated"), true, expiry));
            }
            for (k, (state_name, escalated, expiry)) in tasks.iter().enumerate() {
                let on_timeout = tasks.get(k + 1).map_or(expired.clone(), |t| t.0.clone());
                let mut message = self.message(TaskKind::Approve, None);
                message["MessageBody"]["approval"] = json!(n);
                if *escalated {
                    message["MessageBody"]["escalated"] = json!(true);
                }
                let mut state = task(&comment, message, expiry.as_secs().max(1), None);
                state.insert("ResultPath".into(), Value::Null);
                state.insert("Retry".into(), retry());
                state.insert(
                    "Catch".into(),
                    json!([
                        {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": on_timeout},
                        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Record failure"},
                    ]),
                );
                state.insert("Next".into(), json!(next));
                states.insert(state_name.clone(), Value::Object(state));
            }
            states.insert(
                expired,
                json!({
                    "Type": "Pass",
                    "Comment": "Nobody decided in time: the request is rejected.",
                    "Result": {
                        "Error": REJECTED_ERROR,
                        "Cause": format!("the approval stage `{}` of `{}` expired undecided", stage.name, policy.name),
                    },
                    "ResultPath": "$.error",
                    "Next": "Record failure",
                }),
            );
        }
        if stages.is_empty() {
            then.to_owned()
        } else {
            name(1)
        }
    }

    /// The name of the first state of a node.
    fn entry(&self, node: &Node, verb: &str) -> String {
        match node {
            Node::Task(i) => format!("{verb} {}", self.units[*i].id),
            Node::Sequence(parts) => parts
                .first()
                .map_or_else(String::new, |p| self.entry(p, verb)),
            Node::Parallel(name, _) => name.clone(),
        }
    }

    fn provision(&self, node: &Node, then: Then, escape: &Escape, states: &mut Map<String, Value>) {
        match node {
            Node::Sequence(parts) => {
                for (i, part) in parts.iter().enumerate() {
                    let next = match parts.get(i + 1) {
                        Some(p) => Then::Next(self.entry(p, "Provision")),
                        None => then.clone(),
                    };
                    self.provision(part, next, escape, states);
                }
            }
            Node::Task(i) => {
                let unit = &self.units[*i];
                let (timeout, heartbeat) = provision_timing(unit.item);
                let mut state = task(
                    &format!("{} ({})", unit.item.metadata.name, mode_word(unit.item)),
                    self.message(TaskKind::Provision, Some(*i)),
                    timeout,
                    heartbeat,
                );
                state.insert(
                    "ResultPath".into(),
                    json!(format!("$.components.{}", unit.id)),
                );
                if escape.in_branch() && matches!(then, Then::End) {
                    // The branch's result is what it adds to the components.
                    state.insert("OutputPath".into(), json!("$.components"));
                }
                state.insert("Retry".into(), retry());
                state.insert("Catch".into(), escape.catch(self.caught));
                set_then(&mut state, &then);
                states.insert(format!("Provision {}", unit.id), Value::Object(state));
            }
            Node::Parallel(name, parts) => self.parallel(name, parts, then, escape, states),
        }
    }

    /// A `Parallel` state whose branches never fail: each catches its own failure and
    /// ends with it, so the state waits for its siblings to settle (Step Functions would
    /// stop them mid-flight, orphaning what they were making), and the `Check` Choice
    /// after it then takes the failure path.
    fn parallel(
        &self,
        name: &str,
        parts: &[Node],
        then: Then,
        escape: &Escape,
        states: &mut Map<String, Value>,
    ) {
        let branches: Vec<Value> = parts
            .iter()
            .enumerate()
            .map(|(b, p)| {
                let stopped = format!("{name} branch {} stopped", b + 1);
                let cancelled = format!("{name} branch {} cancelled", b + 1);
                let mut inner = Map::new();
                let own = Escape::Branch {
                    stopped: stopped.clone(),
                    cancelled: cancelled.clone(),
                };
                self.provision(p, Then::End, &own, &mut inner);
                for (state, key, comment) in [
                    (
                        stopped,
                        FAILURE_KEY,
                        "The branch ends with its failure; its siblings go on to their end.",
                    ),
                    (
                        cancelled,
                        CANCELLED_KEY,
                        "The branch ends: a sibling failed, so the worker started nothing new.",
                    ),
                ] {
                    inner.insert(
                        state,
                        json!({
                            "Type": "Pass",
                            "Comment": comment,
                            "Parameters": {format!("{key}.$"): "$.error"},
                            "End": true,
                        }),
                    );
                }
                json!({"StartAt": self.entry(p, "Provision"), "States": inner})
            })
            .collect();
        let check = format!("Check {name}");
        states.insert(
            name.to_owned(),
            json!({
                "Type": "Parallel",
                "Branches": branches,
                "ResultSelector": {"components.$": merge(0, parts.len())},
                "ResultPath": "$",
                "Catch": escape.catch(self.caught),
                "Next": check,
            }),
        );
        let after = match &then {
            Then::Next(next) => next.clone(),
            Then::End => {
                // A Choice state cannot end a branch: a Pass state gives its result.
                let done = format!("{name} done");
                states.insert(
                    done.clone(),
                    json!({"Type": "Pass", "OutputPath": "$.components", "End": true}),
                );
                done
            }
        };
        // A component's own failure is reported before a cancellation it caused.
        let mut choices = Vec::new();
        for (key, word) in [(FAILURE_KEY, "failed"), (CANCELLED_KEY, "cancelled")] {
            let target = format!("{name} {word}");
            choices.push(json!({
                "Variable": format!("$.components.{key}"),
                "IsPresent": true,
                "Next": target,
            }));
            states.insert(
                target,
                json!({
                    "Type": "Pass",
                    "Comment": "A branch's failure becomes the failure being handled.",
                    "Parameters": {
                        "components.$": "$.components",
                        "error.$": format!("$.components.{key}"),
                    },
                    "Next": escape.after(key),
                }),
            );
        }
        states.insert(
            check,
            json!({
                "Type": "Choice",
                "Comment": "Whether a branch failed, once every branch has settled.",
                "Choices": choices,
                "Default": after,
            }),
        );
    }

    fn undo(&self, node: &Node, then: Then, states: &mut Map<String, Value>) {
        match node {
            Node::Sequence(parts) => {
                for (i, part) in parts.iter().enumerate() {
                    let next = match parts.get(i + 1) {
                        Some(p) => Then::Next(self.entry(p, "Undo")),
                        None => then.clone(),
                    };
                    self.undo(part, next, states);
                }
            }
            Node::Task(i) => {
                let unit = &self.units[*i];
                let name = format!("Undo {}", unit.id);
                // A failed undo is recorded by the worker; the others still run, and at
                // the end of a branch a quiet Pass state ends it.
                let quiet_end = format!("Undo {} failed", unit.id);
                let after = match &then {
                    Then::Next(next) => next.clone(),
                    Then::End => quiet_end.clone(),
                };
                let (timeout, heartbeat) = undo_timing(unit.item);
                let mut state = task(
                    &format!("Roll back {} if it completed", unit.item.metadata.name),
                    self.message(TaskKind::Undo, Some(*i)),
                    timeout,
                    heartbeat,
                );
                state.insert("ResultPath".into(), Value::Null);
                state.insert("Retry".into(), retry());
                state.insert(
                    "Catch".into(),
                    json!([{"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": after}]),
                );
                set_then(&mut state, &then);
                states.insert(name, Value::Object(state));
                if matches!(then, Then::End) {
                    states.insert(
                        quiet_end,
                        json!({"Type": "Pass", "Comment": "The worker recorded the failure.", "End": true}),
                    );
                }
            }
            Node::Parallel(name, parts) => {
                let branches: Vec<Value> = parts
                    .iter()
                    .map(|p| {
                        let mut inner = Map::new();
                        self.undo(p, Then::End, &mut inner);
                        json!({"StartAt": self.entry(p, "Undo"), "States": inner})
                    })
                    .collect();
                let mut state = Map::new();
                state.insert("Type".into(), json!("Parallel"));
                state.insert("Branches".into(), Value::Array(branches));
                state.insert("ResultPath".into(), Value::Null);
                set_then(&mut state, &then);
                states.insert(name.clone(), Value::Object(state));
            }
        }
    }

    /// A task's parameters: the message to the action queue. Provisioning and completing
    /// carry the outputs so far; undoing and failing carry the error being handled.
    fn message(&self, kind: TaskKind, unit: Option<usize>) -> Value {
        let mut body = Map::new();
        body.insert("task".into(), json!(kind));
        body.insert("taskToken.$".into(), json!("$$.Task.Token"));
        body.insert("requestId.$".into(), json!("$$.Execution.Input.requestId"));
        if let Some(u) = unit.map(|i| &self.units[i]) {
            body.insert("component".into(), json!(u.id));
            body.insert("item".into(), json!(u.item.metadata.name));
        }
        match kind {
            TaskKind::Provision | TaskKind::Complete => {
                body.insert("components.$".into(), json!("$.components"));
            }
            TaskKind::Undo | TaskKind::Fail => {
                body.insert("error.$".into(), json!("$.error"));
            }
            TaskKind::Approve => {}
        };
        json!({"QueueUrl": QUEUE_PLACEHOLDER, "MessageBody": body})
    }

    /// `Complete` or `Record failure`.
    fn bookkeeping(
        &self,
        kind: TaskKind,
        comment: &str,
        result_path: Value,
        on_error: &str,
        then: &Then,
    ) -> Value {
        let mut state = task(comment, self.message(kind, None), BOOKKEEPING_SECS, None);
        state.insert("ResultPath".into(), result_path);
        state.insert("Retry".into(), retry());
        let catch_into = if kind == TaskKind::Fail {
            Value::Null
        } else {
            json!("$.error")
        };
        state.insert(
            "Catch".into(),
            json!([{"ErrorEquals": ["States.ALL"], "ResultPath": catch_into, "Next": on_error}]),
        );
        set_then(&mut state, then);
        Value::Object(state)
    }
}

/// The wait of a scheduled request (its execution's input has `notBefore`) once its
/// approvals are given, before anything runs; returns its first state.
fn scheduled(then: &str, states: &mut Map<String, Value>) -> String {
    let choice = "Scheduled?".to_owned();
    let wait = "Wait until scheduled".to_owned();
    states.insert(
        choice.clone(),
        json!({
            "Type": "Choice",
            "Comment": "A scheduled request waits for its time.",
            "Choices": [{"Variable": "$$.Execution.Input.notBefore", "IsPresent": true, "Next": wait}],
            "Default": then,
        }),
    );
    states.insert(
        wait,
        json!({
            "Type": "Wait",
            "Comment": "Nothing runs before the request's notBefore.",
            "TimestampPath": "$$.Execution.Input.notBefore",
            "Next": then,
        }),
    );
    choice
}

/// A callback task's fixed fields, in the order Step Functions' console shows them.
fn task(
    comment: &str,
    parameters: Value,
    timeout: u64,
    heartbeat: Option<u64>,
) -> Map<String, Value> {
    let mut state = Map::new();
    state.insert("Type".into(), json!("Task"));
    state.insert("Comment".into(), json!(comment));
    state.insert("Resource".into(), json!(CALLBACK_RESOURCE));
    state.insert("Parameters".into(), parameters);
    state.insert(
        "TimeoutSeconds".into(),
        json!(timeout.min(MAX_TIMEOUT_SECS)),
    );
    // Step Functions requires a heartbeat shorter than the timeout; a task that short
    // needs none. The message tells the worker whether to heartbeat.
    if let Some(h) = heartbeat.filter(|&h| h < timeout) {
        state.insert("HeartbeatSeconds".into(), json!(h));
        if let Some(body) = state
            .get_mut("Parameters")
            .and_then(|p| p.get_mut("MessageBody"))
            .and_then(Value::as_object_mut)
        {
            body.insert("heartbeat".into(), json!(true));
        }
    }
    state
}

fn set_then(state: &mut Map<String, Value>, then: &Then) {
    match then {
        Then::Next(next) => state.insert("Next".into(), json!(next)),
        Then::End => state.insert("End".into(), json!(true)),
    };
}

/// Retries of failures that are not the component's fault: a worker that stopped
/// heartbeating, storage that was unavailable.
fn retry() -> Value {
    json!([{
        "ErrorEquals": ["States.HeartbeatTimeout", TRANSIENT_ERROR],
        "IntervalSeconds": 10,
        "MaxAttempts": 3,
        "BackoffRate": 2.0,
        "MaxDelaySeconds": 120,
        "JitterStrategy": "FULL",
    }])
}

/// `States.JsonMerge` of the branch results `lo..hi`, as a balanced tree.
fn merge(lo: usize, hi: usize) -> String {
    if hi - lo == 1 {
        return format!("$[{lo}]");
    }
    let mid = lo + (hi - lo).div_ceil(2);
    format!(
        "States.JsonMerge({}, {}, false)",
        merge(lo, mid),
        merge(mid, hi)
    )
}

fn mode_word(item: &CatalogItem) -> &'static str {
    match item.spec.fulfillment.mode {
        Mode::Manual => "manual",
        Mode::Automated => "automated",
    }
}

fn has_rollback(item: &CatalogItem) -> bool {
    item.spec
        .fulfillment
        .automated
        .as_ref()
        .is_some_and(|a| !a.rollback.is_empty())
}

fn manual_wait(item: &CatalogItem) -> u64 {
    item.spec
        .fulfillment
        .manual
        .as_ref()
        .and_then(|m| m.timeout)
        .map_or(DEFAULT_MANUAL_WAIT_SECS, |t| t.as_duration().as_secs())
}

fn actions_time(actions: &[Action]) -> u64 {
    let default = crate::fulfillment::engine::DEFAULT_TIMEOUT;
    actions
        .iter()
        .map(|a| {
            a.timeout
                .map_or(default, |t| t.as_duration())
                .as_secs()
                .max(1)
        })
        .sum()
}

/// `TimeoutSeconds` and `HeartbeatSeconds` of a component's provisioning. A component that
/// may wait for a person (a manual item, or an automated one that can be forced or fall
/// back to manual) has no heartbeat: nobody beats while a ticket is open.
fn provision_timing(item: &CatalogItem) -> (u64, Option<u64>) {
    let f = &item.spec.fulfillment;
    let can_be_manual = f.manual.is_some();
    match (&f.automated, f.mode) {
        (Some(automated), Mode::Automated) => {
            let own = actions_time(&automated.actions) + actions_time(&automated.rollback);
            if can_be_manual {
                (own + manual_wait(item), None)
            } else {
                (own, Some(HEARTBEAT_SECS))
            }
        }
        _ => (manual_wait(item), None),
    }
}

fn undo_timing(item: &CatalogItem) -> (u64, Option<u64>) {
    let rollback = item
        .spec
        .fulfillment
        .automated
        .as_ref()
        .map_or(0, |a| actions_time(&a.rollback));
    (rollback.max(60), Some(HEARTBEAT_SECS))
}

/// The state machine name of a bundle or an item (what the workflow engine deploys).
pub fn machine_name(target: &crate::catalog::snapshot::TargetRef<'_>) -> String {
    use crate::catalog::snapshot::TargetRef;
    use crate::requests::model::TargetKind;
    match target {
        TargetRef::Bundle(b) => machine_name_of(TargetKind::Bundle, &b.doc.metadata.name),
        TargetRef::Item(i) => machine_name_of(TargetKind::Item, &i.doc.metadata.name),
    }
}

/// The state machine's name for a target of this kind and name.
pub fn machine_name_of(kind: crate::requests::model::TargetKind, name: &str) -> String {
    match kind {
        crate::requests::model::TargetKind::Bundle => format!("bundle-{name}"),
        crate::requests::model::TargetKind::Item => format!("item-{name}"),
    }
}

/// Whether requests for this item run as an execution (automated items do; manual ones
/// go to JIRA directly).
pub fn item_has_machine(item: &CatalogItem) -> bool {
    (item.spec.fulfillment.mode == Mode::Automated && item.spec.fulfillment.automated.is_some())
        || gated(&item.spec.approvals, Operation::Provision)
}

/// Whether some policy gates `operation` (its `when` decides, at run time).
pub fn gated(policies: &[ApprovalPolicy], operation: Operation) -> bool {
    policies.iter().any(|p| p.operations.contains(&operation))
}

/// Every state machine of a catalog, by machine name, in name order: one per bundle and
/// one per automated item.
pub fn all_definitions(catalog: &Catalog) -> Result<Vec<(String, Value)>, CompileError> {
    use crate::catalog::snapshot::TargetRef;
    let mut out = Vec::new();
    for b in &catalog.bundles {
        out.push((
            machine_name(&TargetRef::Bundle(b)),
            compile_bundle(catalog, &b.doc.metadata.name)?,
        ));
    }
    for i in catalog.items.iter().filter(|i| item_has_machine(&i.doc)) {
        out.push((machine_name(&TargetRef::Item(i)), compile_item(&i.doc)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
