//! Resolving unknown outcomes ([`PendingOutcome`]): an action whose last attempt got no
//! answer may have made something that no record owns. Once its request has ended, the
//! call is tried again with the same `Idempotency-Key`: a target that honours it answers
//! for what it made, and what it made is rolled back. An admin can also declare that the
//! target holds nothing (having looked), or ask for the retry at once.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::Worker;
use super::steps::{About, ItemRun, Notes};
use crate::access::Principal;
use crate::fulfillment::engine::{Progress, RunFor};
use crate::fulfillment::unknown::{PendingOutcome, UnknownOutcomes};
use crate::ports::StoreError;
use crate::requests::model::{EventDetail, EventKind, Request, RequestId, TargetKind};
use crate::requests::service::RequestError;

/// How an admin resolves a request's unknown outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Try the call again with the same key now, and roll back what it made.
    #[default]
    Retry,
    /// The target holds nothing for it (an admin looked): forget it.
    Absent,
}

/// What became of one unknown outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    pub component: String,
    pub action: String,
    pub outcome: ResolvedAs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedAs {
    /// The retry found what the call had made; it was rolled back.
    RolledBack,
    /// The retry found what the call had made, and the item has no rollback for it: it
    /// stays at the target (the entry says what to look for).
    Kept,
    /// The request went on and owns it (redriven, or completed later).
    Owned,
    /// The target refused the retry: nothing is known to be there.
    Refused,
    /// An admin declared the target holds nothing.
    Absent,
    /// Not resolved yet: still no answer, or the request has not ended.
    Pending,
}

impl Worker {
    /// Resolves the unknown outcomes of request `id` (admins).
    pub async fn resolve_outcomes(
        &self,
        who: &Principal,
        id: RequestId,
        verdict: Verdict,
    ) -> Result<Vec<Resolution>, RequestError> {
        if !self.requests.roles.is_admin(who) {
            return Err(RequestError::Forbidden(
                "resolving unknown outcomes is for admins".to_owned(),
            ));
        }
        let request = self.requests.get(who, id).await?;
        let state = self.engine.state.as_ref();
        let mut out = Vec::new();
        for pending in PendingOutcome::pending(state, Some(request.id), 100).await? {
            let resolution = match verdict {
                Verdict::Retry => self.resolve(&request, &pending, &who.sub).await?,
                Verdict::Absent => {
                    let resolution = Resolution {
                        component: pending.component.clone(),
                        action: pending.action.clone(),
                        outcome: ResolvedAs::Absent,
                        detail: Some(format!(
                            "{} declared that the target holds nothing",
                            who.sub
                        )),
                    };
                    self.settled(&request, &pending, &resolution, &who.sub, Notes::default())
                        .await?;
                    resolution
                }
            };
            out.push(resolution);
        }
        Ok(out)
    }

    /// Tries the call of `pending` again, with its key, once its request has ended, and
    /// rolls back what it made.
    async fn resolve(
        &self,
        request: &Request,
        pending: &PendingOutcome,
        actor: &str,
    ) -> Result<Resolution, RequestError> {
        let mut resolution = Resolution {
            component: pending.component.clone(),
            action: pending.action.clone(),
            outcome: ResolvedAs::Pending,
            detail: None,
        };
        if !request.status.is_terminal() {
            resolution.detail = Some(format!(
                "the request is {}: its own run settles the call",
                request.status
            ));
            return Ok(resolution);
        }
        let snapshot = self.requests.catalog.current();
        let Some(item) = snapshot.catalog.item(&pending.item) else {
            resolution.detail = Some(format!("`{}` is no longer in the catalog", pending.item));
            return Ok(resolution);
        };
        let Some(automated) = &item.doc.spec.fulfillment.automated else {
            resolution.detail = Some(format!("`{}` is no longer automated", pending.item));
            return Ok(resolution);
        };
        let Some(index) = automated
            .actions
            .iter()
            .position(|a| a.id == pending.action)
        else {
            resolution.detail = Some(format!(
                "`{}` no longer has an action `{}`",
                pending.item, pending.action
            ));
            return Ok(resolution);
        };
        let about = About::component(&pending.component);
        let mut scoped = request.clone();
        scoped.fields = pending.fields.clone();
        let mut ctx = self.context(&scoped, &item.doc.metadata);
        self.in_bundle(&mut ctx, request, about.id());
        let run = RunFor::of(request, &pending.item, &pending.component, &ctx);
        // The actions before it, as they succeeded, are what it reads.
        let earlier = self
            .engine
            .succeeded_outputs(&run, "actions", &automated.actions[..index])
            .await?;
        ctx["outputs"] = Value::Object(earlier);
        let run = RunFor::of(request, &pending.item, &pending.component, &ctx);
        let action = &automated.actions[index..=index];
        let already = self
            .engine
            .succeeded_outputs(&run, "actions", action)
            .await?;
        if !already.is_empty() && request.status == crate::requests::model::RequestStatus::Completed
        {
            resolution.outcome = ResolvedAs::Owned;
            resolution.detail = Some("the request completed with it".to_owned());
            self.settled(request, pending, &resolution, actor, Notes::default())
                .await?;
            return Ok(resolution);
        }
        self.engine
            .forget_failure(&run, "actions", &pending.action)
            .await?;
        let mut notes = Notes::default();
        let mut steps = Vec::new();
        let progress = self
            .engine
            .advance(&run, "actions", action, &mut steps)
            .await?;
        notes.engine(about, steps);
        let made = match progress {
            Progress::Completed { outputs } => outputs,
            Progress::Waiting { .. } => return Ok(resolution),
            Progress::Failed { reason, .. } => {
                if self
                    .engine
                    .outcome_unknown(&run, "actions", &pending.action)
                    .await?
                {
                    resolution.detail = Some(reason);
                    return Ok(resolution);
                }
                resolution.outcome = ResolvedAs::Refused;
                resolution.detail = Some(reason);
                self.settled(request, pending, &resolution, actor, notes)
                    .await?;
                return Ok(resolution);
            }
        };
        let rolled = self
            .roll_back(automated, &run, &made, about, &mut notes)
            .await?;
        match rolled {
            Some(ItemRun::Waiting(_)) => return Ok(resolution),
            Some(ItemRun::Completed(_)) => {
                resolution.outcome = ResolvedAs::RolledBack;
                resolution.detail = Some("the retry found what the call had made".to_owned());
            }
            Some(ItemRun::Failed(why)) => {
                resolution.outcome = ResolvedAs::Kept;
                resolution.detail = Some(format!(
                    "the retry found what the call had made, and its rollback failed: {why}"
                ));
            }
            None => {
                resolution.outcome = ResolvedAs::Kept;
                resolution.detail = Some(format!(
                    "the retry found what the call had made ({}), and the item has no rollback for it",
                    outputs_named(&made)
                ));
            }
        }
        self.settled(request, pending, &resolution, actor, notes)
            .await?;
        Ok(resolution)
    }

    /// Records a resolution on the request's timeline and forgets the pending outcome.
    async fn settled(
        &self,
        request: &Request,
        pending: &PendingOutcome,
        resolution: &Resolution,
        actor: &str,
        mut notes: Notes,
    ) -> Result<(), RequestError> {
        let about = About::component(&pending.component);
        let word = match resolution.outcome {
            ResolvedAs::RolledBack => "rolled back",
            ResolvedAs::Kept => "kept at the target",
            ResolvedAs::Owned => "owned by the request",
            ResolvedAs::Refused => "refused by the target",
            ResolvedAs::Absent => "absent",
            ResolvedAs::Pending => "pending",
        };
        let mut note = about
            .note(
                EventKind::OutcomeResolved,
                format!(
                    "the unknown outcome of action `{}` is resolved: {word}{}",
                    pending.action,
                    resolution
                        .detail
                        .as_ref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
            )
            .with(EventDetail {
                action: Some(pending.action.clone()),
                cause: resolution.detail.clone(),
                ..Default::default()
            });
        note.detail.action = Some(pending.action.clone());
        notes.add(note);
        if resolution.outcome == ResolvedAs::RolledBack && request.kind == TargetKind::Bundle {
            notes.add(about.note(EventKind::ComponentRolledBack, "rolled back"));
        }
        self.requests
            .annotate(request.id, actor, notes.into_inner())
            .await?;
        pending.resolved(self.engine.state.as_ref()).await?;
        Ok(())
    }
}

fn outputs_named(outputs: &Map<String, Value>) -> String {
    let names: Vec<&str> = outputs
        .values()
        .filter_map(Value::as_object)
        .flat_map(|o| o.keys().map(String::as_str))
        .collect();
    if names.is_empty() {
        "no outputs".to_owned()
    } else {
        names.join(", ")
    }
}

#[async_trait]
impl UnknownOutcomes for Worker {
    async fn resolve_pending(&self, limit: usize) -> Result<usize, StoreError> {
        let state = self.engine.state.as_ref();
        let mut resolved = 0;
        for pending in PendingOutcome::pending(state, None, limit).await? {
            let Some(request) = self.requests.store.get(&pending.request_id).await? else {
                pending.resolved(state).await?;
                continue;
            };
            match self.resolve(&request, &pending, "reconciler").await {
                Ok(r) if r.outcome != ResolvedAs::Pending => resolved += 1,
                Ok(_) => {}
                Err(RequestError::Store(e)) => return Err(e),
                Err(e) => tracing::warn!(error = %e, "could not resolve an unknown outcome"),
            }
        }
        Ok(resolved)
    }
}
