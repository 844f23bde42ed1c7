//! What the worker's kinds of work share: starting, failing and settling a request,
//! timeline notes gathered while a message is handled, an item's automated run with its
//! rollback, and opening a JIRA issue once.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{Disposition, Worker};
use crate::bundle::task::SINGLE_COMPONENT;
use crate::catalog::Located;
use crate::catalog::document::{Action, AutomatedFulfillment, CatalogItem, Fallback, Metadata};
use crate::fulfillment::engine::{Progress, RunFor, action_with};
use crate::fulfillment::mode::ModeOverride;
use crate::fulfillment::unknown::PendingOutcome;
use crate::integrations::jira::{Issue, JiraClient, JiraError};
use crate::requests::model::{
    EventDetail, EventKind, Note, Operation, Request, RequestStatus, TargetKind, Transition,
};
use crate::requests::service::RequestError;

/// The component a timeline entry is about: a bundle's component, or none for a single
/// item's (its request's entries are its own). Its entries' messages start with the
/// component's id, for people reading the timeline; programs read `component`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct About<'a>(Option<&'a str>);

impl<'a> About<'a> {
    /// For the task of component `id` ([`SINGLE_COMPONENT`] for an item's machine).
    pub(crate) fn component(id: &'a str) -> About<'a> {
        About((id != SINGLE_COMPONENT).then_some(id))
    }

    pub(crate) fn request() -> About<'static> {
        About(None)
    }

    pub(crate) fn id(self) -> Option<&'a str> {
        self.0
    }

    /// `<id>: ` before a component's messages.
    pub(crate) fn label(self) -> String {
        self.0.map(|id| format!("{id}: ")).unwrap_or_default()
    }

    /// An entry about it.
    pub(crate) fn note(self, kind: EventKind, message: impl std::fmt::Display) -> Note {
        Note::new(kind, format!("{}{message}", self.label())).about(self.0)
    }

    /// A failure about it: the message and the cause are the same text.
    pub(crate) fn failure(self, kind: EventKind, why: &str) -> Note {
        self.note(kind, why).with(EventDetail::cause(why))
    }
}

/// Timeline entries gathered while a message is handled, written together when it is
/// done with (one write instead of one per entry).
#[derive(Default)]
pub(crate) struct Notes(Vec<Note>);

impl Notes {
    pub(crate) fn add(&mut self, note: Note) {
        self.0.push(note);
    }

    pub(crate) fn into_inner(self) -> Vec<Note> {
        self.0
    }

    /// The engine's entries, about `about`.
    pub(crate) fn engine(&mut self, about: About<'_>, steps: Vec<Note>) {
        let label = about.label();
        for mut step in steps {
            tracing::info!(kind = %step.kind, message = %step.message, "fulfillment");
            step.message = format!("{label}{}", step.message);
            step.component = about.id().map(str::to_owned);
            self.0.push(step);
        }
    }
}

/// How an item's automated run stands.
pub(crate) enum ItemRun {
    /// Every action succeeded: the item's declared outputs (or, from a rollback, the
    /// rollback actions' outputs).
    Completed(Map<String, Value>),
    /// Come back after this long.
    Waiting(Duration),
    /// Failed for good (after the rollback, when there was one): why.
    Failed(String),
}

impl Worker {
    /// The request moves to `in_progress`.
    pub(crate) async fn start(&self, request: &Request) -> Result<Request, RequestError> {
        self.requests
            .apply(
                request.id,
                Transition::to(RequestStatus::InProgress, "worker").from(request.clone()),
            )
            .await
    }

    /// Applies `transition` unless the request moved on meanwhile (ended, or already
    /// there): the step of every path that ends a request.
    pub(crate) async fn settle(
        &self,
        request: &Request,
        transition: Transition,
    ) -> Result<(), RequestError> {
        self.requests
            .settle(request.id, transition.from(request.clone()))
            .await
            .map(|_| ())
    }

    /// The variables templates read for `request`, with the item's or bundle's metadata.
    pub(crate) fn context(&self, request: &Request, metadata: &Metadata) -> Value {
        crate::fulfillment::context(request, metadata, &self.system, self.requests.clock.now())
    }

    /// Adds the `bundle` scope to `ctx` when `request` is a bundle's (for `component`, or
    /// for the bundle's own templates with none); an item requested alone has none.
    pub(crate) fn in_bundle(&self, ctx: &mut Value, request: &Request, component: Option<&str>) {
        if request.kind == TargetKind::Bundle {
            ctx["bundle"] =
                crate::fulfillment::bundle_scope(&request.target, &request.fields, component);
        }
    }

    /// The mode an admin forced on an item (`PUT /catalog/items/{name}/mode`), if any.
    pub(crate) async fn mode_override(
        &self,
        item: &str,
    ) -> Result<Option<ModeOverride>, RequestError> {
        Ok(crate::fulfillment::mode::get(self.engine.state.as_ref(), item).await?)
    }

    /// Moves an item's actions (for one component of a request) as far as they go now.
    /// When one fails for good, the rollback actions of those that succeeded run before
    /// the failure is reported, unless the item is to `keep` them (its request pauses).
    pub(crate) async fn run_automated(
        &self,
        item: &Located<CatalogItem>,
        automated: &AutomatedFulfillment,
        run: &RunFor<'_>,
        about: About<'_>,
        keep: bool,
        notes: &mut Notes,
    ) -> Result<ItemRun, RequestError> {
        let mut steps = Vec::new();
        let progress = self
            .engine
            .advance(run, "actions", &automated.actions, &mut steps)
            .await;
        notes.engine(about, steps);
        let (action, reason, succeeded) = match progress? {
            Progress::Completed { outputs } => {
                return Ok(ItemRun::Completed(declared_outputs(item, &outputs)));
            }
            Progress::Waiting { after } => return Ok(ItemRun::Waiting(after)),
            Progress::Failed {
                action,
                reason,
                outputs,
            } => (action, reason, outputs),
        };
        if self.engine.outcome_unknown(run, "actions", &action).await? {
            // Kept until the reconciler or an admin learns what the call did.
            PendingOutcome {
                request_id: run.request_id,
                component: run.component.to_owned(),
                item: run.item.to_owned(),
                action: action.clone(),
                fields: run.context["fields"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            }
            .record(self.engine.state.as_ref())
            .await?;
        }
        if keep {
            return Ok(ItemRun::Failed(reason));
        }
        match self
            .roll_back(automated, run, &succeeded, about, notes)
            .await?
        {
            Some(ItemRun::Waiting(after)) => Ok(ItemRun::Waiting(after)),
            Some(ItemRun::Failed(why)) => {
                notes.add(about.failure(
                    EventKind::RollbackFailed,
                    &format!("the rollback failed: {why}"),
                ));
                Ok(ItemRun::Failed(reason))
            }
            Some(ItemRun::Completed(_)) => {
                let note = about
                    .note(
                        EventKind::RolledBack,
                        format!("rolled back after `{action}` failed"),
                    )
                    .with(EventDetail {
                        action: Some(action),
                        cause: Some(reason.clone()),
                        ..Default::default()
                    });
                notes.add(note);
                Ok(ItemRun::Failed(reason))
            }
            None => Ok(ItemRun::Failed(reason)),
        }
    }

    /// Runs the rollback actions that apply to the actions that `succeeded` (those whose
    /// `outputs.<id>` all exist); `None` when there is nothing to undo.
    pub(crate) async fn roll_back(
        &self,
        automated: &AutomatedFulfillment,
        run: &RunFor<'_>,
        succeeded: &Map<String, Value>,
        about: About<'_>,
        notes: &mut Notes,
    ) -> Result<Option<ItemRun>, RequestError> {
        let rollback: Vec<_> = automated
            .rollback
            .iter()
            .filter(|a| reads_only(a, succeeded))
            .cloned()
            .collect();
        if rollback.is_empty() || succeeded.is_empty() {
            return Ok(None);
        }
        let mut ctx = run.context.clone();
        ctx["outputs"] = Value::Object(succeeded.clone());
        let run = RunFor {
            request_id: run.request_id,
            resource_id: run.resource_id.clone(),
            owner: run.owner.clone(),
            requester: run.requester.clone(),
            context: &ctx,
            ..*run
        };
        let mut steps = Vec::new();
        let progress = self
            .engine
            .advance(&run, "rollback", &rollback, &mut steps)
            .await;
        notes.engine(about, steps);
        Ok(Some(match progress? {
            Progress::Waiting { after } => ItemRun::Waiting(after),
            Progress::Completed { outputs } => ItemRun::Completed(outputs),
            Progress::Failed { reason, .. } => ItemRun::Failed(reason),
        }))
    }

    /// Writes `notes` on the request's timeline, in one write; a request that ended
    /// meanwhile takes none, which is no error.
    pub(crate) async fn write(&self, request: &Request, notes: Notes) -> Result<(), RequestError> {
        match self
            .requests
            .note(request.id, Some(request), "worker", notes.0)
            .await
        {
            Ok(()) | Err(RequestError::InvalidTransition { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Notes `note` on the timeline the first time the request reaches `step` (a
    /// redelivered message does not repeat it).
    pub(crate) async fn note_once(
        &self,
        request: &Request,
        step: &str,
        note: Note,
    ) -> Result<(), RequestError> {
        if self.engine.first_time(request.id, step).await? {
            let mut notes = Notes::default();
            notes.add(note);
            self.write(request, notes).await?;
        }
        Ok(())
    }

    /// Fails the request (read afresh).
    pub(crate) async fn fail(
        &self,
        request: &Request,
        reason: &str,
    ) -> Result<Disposition, RequestError> {
        self.fail_from(request, None, reason).await
    }

    /// Fails `request`, which this handler has just read, without reading it again.
    /// Only a provision goes from the copy: ending one as failed settles no resource
    /// (`RequestEnd` runs before the write), so a copy that went stale costs just a
    /// conflicting write and a re-read. A change's end releases its resource's lock and
    /// is decided on a fresh read.
    pub(crate) async fn fail_as_read(
        &self,
        request: Request,
        reason: &str,
    ) -> Result<Disposition, RequestError> {
        let known = (request.operation == Operation::Provision).then(|| request.clone());
        self.fail_from(&request, known, reason).await
    }

    async fn fail_from(
        &self,
        request: &Request,
        known: Option<Request>,
        reason: &str,
    ) -> Result<Disposition, RequestError> {
        tracing::warn!(reason, "request failed");
        let mut transition = Transition::ended(RequestStatus::Failed, "worker", reason);
        transition.from = known;
        self.requests.apply(request.id, transition).await?;
        Ok(Disposition::Done)
    }
}

/// The issue labelled `label`, opened with `fields` unless a previous attempt did.
pub(crate) async fn open_ticket(
    jira: &JiraClient,
    label: &str,
    fields: Map<String, Value>,
) -> Result<Issue, JiraError> {
    match jira.find_by_label(label).await? {
        Some(issue) => Ok(issue),
        None => jira.create_issue(fields).await,
    }
}

/// Whether a failed automation hands over to a person.
pub(crate) fn falls_back(item: &Located<CatalogItem>) -> bool {
    item.doc.spec.fulfillment.fallback == Some(Fallback::Manual)
        && item.doc.spec.fulfillment.manual.is_some()
}

/// The outputs an item declares, picked from its actions' outputs.
pub(crate) fn declared_outputs(
    item: &Located<CatalogItem>,
    outputs: &Map<String, Value>,
) -> Map<String, Value> {
    let declared = &item.doc.spec.outputs;
    let mut result = Map::new();
    for values in outputs.values() {
        if let Value::Object(values) = values {
            for (name, value) in values {
                if declared.contains_key(name) {
                    result.insert(name.clone(), value.clone());
                }
            }
        }
    }
    result
}

/// Whether every `outputs.<id>` an action reads belongs to an action that succeeded.
fn reads_only(action: &Action, succeeded: &Map<String, Value>) -> bool {
    crate::fulfillment::vars::scope_keys(&action_with(action), "outputs")
        .iter()
        .all(|id| succeeded.contains_key(id))
}
