//! The request use cases: submit, read, list, cancel, and status transitions, with the
//! rules of who may do what. HTTP handlers and the worker both go through here.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::durations::LeadTime;
use super::model::{
    EventKind, Handoff, Note, Request, RequestEvent, RequestId, RequestStatus, TargetKind,
    Transition,
};
use crate::access::{Principal, Roles};
use crate::catalog::schema::Violation;
use crate::catalog::snapshot::TargetRef;
use crate::ports::{
    CatalogStore, Clock, Created, Page, Queue, RequestQuery, RequestStore, StoreError,
};

/// Told when a request reaches its end, before its final status is written (the
/// resource records follow their requests through it). Called again whenever a repeated
/// transition finds the request there, so what a crash cut short is done then.
#[async_trait]
pub trait RequestEnd: Send + Sync {
    async fn ended(&self, request: &Request) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("there is no item or bundle named `{0}` in the catalog")]
    UnknownTarget(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("no request {0}")]
    NotFound(String),
    #[error("the fields do not satisfy the form")]
    InvalidFields(Vec<Violation>),
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyMismatch,
    /// A change calendar's freeze (or, for a day-2 change, the time outside its
    /// maintenance windows) refuses the request: which, and until when.
    #[error("{0}")]
    Frozen(String),
    /// The item or bundle is deprecated: it takes no new requests (`replaced_by`: what
    /// to request instead).
    #[error("`{target}` is deprecated and takes no new requests{}", .replaced_by.as_ref().map(|r| format!("; request `{r}` instead")).unwrap_or_default())]
    Deprecated {
        target: String,
        replaced_by: Option<String>,
    },
    #[error("the request is {status} and cannot become {next}")]
    InvalidTransition {
        status: RequestStatus,
        next: RequestStatus,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct RequestService {
    pub catalog: Arc<dyn CatalogStore>,
    pub store: Arc<dyn RequestStore>,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    pub roles: Roles,
    /// Told when a request ends, before its final status is written (resource records).
    pub ended: Option<Arc<dyn RequestEnd>>,
    /// Told of every timeline entry written, for notifications (never holds them up).
    pub notices: Option<Arc<dyn crate::ports::Notices>>,
}

/// Optimistic updates retry this often on a concurrent change before giving up.
const UPDATE_ATTEMPTS: usize = 5;

impl RequestService {
    /// Submits a request for item or bundle `target`. Returns the request and whether it
    /// is new (`false`: an idempotent retry returned the original).
    pub async fn submit(
        &self,
        who: &Principal,
        target: &str,
        submitted: Map<String, Value>,
        idempotency_key: Option<String>,
    ) -> Result<(Request, bool), RequestError> {
        let request = self.prepare_provision(who, target, submitted, idempotency_key)?;
        self.accept(request).await
    }

    /// [`prepare`](Self::prepare) for a new provisioning, which a deprecated item or
    /// bundle refuses (its resources' day-2 changes go on).
    pub fn prepare_provision(
        &self,
        who: &Principal,
        target: &str,
        submitted: Map<String, Value>,
        idempotency_key: Option<String>,
    ) -> Result<Request, RequestError> {
        if let Some(found) = self.catalog.current().target(target) {
            let metadata = found.metadata();
            if metadata.lifecycle == crate::catalog::document::Lifecycle::Deprecated {
                return Err(RequestError::Deprecated {
                    target: target.to_owned(),
                    replaced_by: metadata.replaced_by.clone(),
                });
            }
        }
        self.prepare(who, target, submitted, idempotency_key)
    }

    /// Stores a prepared request and hands it to the worker (see [`submit`](Self::submit)).
    pub async fn accept(&self, request: Request) -> Result<(Request, bool), RequestError> {
        let event = RequestEvent {
            request_id: request.id,
            seq: 1,
            at: request.created_at,
            actor: request.requester.sub.clone(),
            kind: EventKind::Submitted,
            status: RequestStatus::Submitted,
            component: None,
            message: None,
            detail: Default::default(),
        };
        let handoff = Handoff {
            request_id: request.id,
        }
        .body();
        match self.store.create(&request, &event, &handoff).await? {
            Created::New { handed_off } => {
                crate::metrics::count(
                    crate::metrics::REQUESTS,
                    &[("Status", RequestStatus::Submitted.as_str())],
                    1,
                );
                if !handed_off {
                    // A crash before this send leaves the request `submitted`: the
                    // worker's sweep sends its message again.
                    self.queue.send(&handoff, std::time::Duration::ZERO).await?;
                }
                Ok((request, true))
            }
            Created::Existing(original) if original.fingerprint == request.fingerprint => {
                Ok((*original, false))
            }
            Created::Existing(_) => Err(RequestError::IdempotencyMismatch),
        }
    }

    /// The request `submit` would store: access and fields checked, defaults applied,
    /// nothing stored (dry runs plan with it).
    pub fn prepare(
        &self,
        who: &Principal,
        target: &str,
        submitted: Map<String, Value>,
        idempotency_key: Option<String>,
    ) -> Result<Request, RequestError> {
        let snapshot = self.catalog.current();
        let found = snapshot
            .target(target)
            .ok_or_else(|| RequestError::UnknownTarget(target.to_owned()))?;
        let metadata = found.metadata();
        if !metadata.access_groups.is_empty()
            && !self.roles.is_admin(who)
            && !who
                .groups
                .iter()
                .any(|g| metadata.access_groups.contains(g))
        {
            return Err(RequestError::Forbidden(format!(
                "`{target}` may be requested by members of {} only",
                metadata.access_groups.join(", ")
            )));
        }
        // Only a retry with the same key is compared with what it repeats.
        let fingerprint = idempotency_key
            .as_ref()
            .map(|_| fingerprint(target, &submitted))
            .unwrap_or_default();
        let fields = snapshot
            .check_fields(target, submitted)
            .map_err(RequestError::InvalidFields)?;
        let now = self.clock.now();
        let kind = match found {
            TargetRef::Item(_) => TargetKind::Item,
            TargetRef::Bundle(_) => TargetKind::Bundle,
        };
        let mut request = Request::submitted(
            kind,
            target,
            &snapshot.version,
            &metadata.owner,
            who,
            fields,
            now,
        );
        request.idempotency_key = idempotency_key;
        request.fingerprint = fingerprint;
        Ok(request)
    }

    /// Makes a prepared request wait until `not_before` before anything runs; a retry
    /// with the same key must ask for the same time.
    pub fn schedule(&self, request: &mut Request, not_before: OffsetDateTime) {
        request.not_before = Some(not_before);
        if request.idempotency_key.is_some() {
            request.fingerprint = format!(
                "{}@{}",
                request.fingerprint,
                crate::timestamp::format(not_before)
            );
        }
    }

    /// Applies the change calendars that cover a prepared request, from its `notBefore`
    /// (or now): a freeze that refuses refuses it; one that waits, or a maintenance
    /// window, makes it wait (a day-2 change waits holding its resource's lock, so
    /// nothing else changes the resource meanwhile). `overridden`: an admin's reason to
    /// skip them.
    pub fn apply_calendars(
        &self,
        request: &mut Request,
        overridden: Option<&str>,
    ) -> Result<(), RequestError> {
        use crate::catalog::calendar::{Verdict, covers, verdict};
        let snapshot = self.catalog.current();
        let covering: Vec<&crate::catalog::document::ChangeCalendar> = snapshot
            .catalog
            .calendars
            .iter()
            .map(|c| &c.doc)
            .filter(|c| {
                covers(
                    c,
                    &request.target,
                    &request.owner,
                    request.operation,
                    &request.fields,
                )
            })
            .collect();
        if covering.is_empty() {
            return Ok(());
        }
        if let Some(why) = overridden {
            request.calendar_override = Some(why.to_owned());
            return Ok(());
        }
        let from = request
            .not_before
            .unwrap_or(request.created_at)
            .max(self.clock.now());
        match verdict(&covering, to_jiff(from)) {
            Verdict::Run => Ok(()),
            Verdict::Refuse { why } => Err(RequestError::Frozen(why)),
            Verdict::Wait { until, why } => {
                self.schedule(request, from_jiff(until));
                request.waiting_for = Some(why);
                Ok(())
            }
        }
    }

    /// Hands a request to the worker.
    pub async fn enqueue(&self, id: RequestId) -> Result<(), StoreError> {
        self.queue
            .send(
                &Handoff { request_id: id }.body(),
                std::time::Duration::ZERO,
            )
            .await
            .map(|_| ())
    }

    /// A request the caller may see.
    pub async fn get(&self, who: &Principal, id: RequestId) -> Result<Request, RequestError> {
        let not_found = || RequestError::NotFound(id.to_string());
        let request = self.store.get(&id).await?.ok_or_else(not_found)?;
        // Someone else's request is indistinguishable from a missing one.
        if self
            .roles
            .may_see(who, &request.requester.sub, &request.owner)
        {
            Ok(request)
        } else {
            Err(not_found())
        }
    }

    /// Lists requests: the caller's own unless `query` asks for an owner team the caller is
    /// in (or the caller is an admin, who may list anything).
    pub async fn list(
        &self,
        who: &Principal,
        mut query: RequestQuery,
    ) -> Result<Page<Request>, RequestError> {
        self.roles
            .limit_listing(
                who,
                query.owner.as_deref(),
                &mut query.requester,
                "requests",
            )
            .map_err(|e| RequestError::Forbidden(e.0))?;
        Ok(self.store.list(&query).await?)
    }

    /// Cancels a request that has not finished: its requester, its owner team or an admin.
    pub async fn cancel(
        &self,
        who: &Principal,
        id: RequestId,
        reason: Option<String>,
    ) -> Result<Request, RequestError> {
        let request = self.get(who, id).await?;
        let reason = reason.unwrap_or_else(|| format!("cancelled by {}", who.sub));
        self.apply(
            request.id,
            Transition::ended(RequestStatus::Cancelled, &who.sub, reason),
        )
        .await
    }

    /// Moves a request as `transition` says (the lifecycle must allow it), recording an
    /// event; retried on concurrent updates. A request already where the transition goes
    /// is returned unchanged, so repeated deliveries are harmless.
    pub async fn apply(
        &self,
        id: RequestId,
        transition: Transition,
    ) -> Result<Request, RequestError> {
        self.record(id, transition).await
    }

    /// [`apply`](Self::apply) for a step that may find the request moved on (cancelled
    /// meanwhile, or ended by a repeated delivery): `None` then, which is no error.
    pub async fn settle(
        &self,
        id: RequestId,
        transition: Transition,
    ) -> Result<Option<Request>, RequestError> {
        match self.record(id, transition).await {
            Ok(request) => Ok(Some(request)),
            Err(RequestError::InvalidTransition { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds entries to the timeline of a request that has not finished, in order,
    /// without changing the request (an action's attempt, a retry, a fallback). `known`
    /// is the request as the caller last read it (saving a read). Notes never conflict:
    /// a bundle's components note side by side.
    pub async fn note(
        &self,
        id: RequestId,
        known: Option<&Request>,
        actor: &str,
        notes: Vec<Note>,
    ) -> Result<(), RequestError> {
        if notes.is_empty() {
            return Ok(());
        }
        let status = match known {
            Some(request) => request.status,
            None => {
                self.store
                    .get(&id)
                    .await?
                    .ok_or_else(|| RequestError::NotFound(id.to_string()))?
                    .status
            }
        };
        if status.is_terminal() {
            return Err(RequestError::InvalidTransition {
                status,
                next: status,
            });
        }
        let events = self.entries(id, status, actor, notes);
        match self.store.append(&id, &events).await {
            Ok(()) => {
                self.tell(&events).await;
                Ok(())
            }
            Err(StoreError::NotFound) => Err(RequestError::NotFound(id.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds entries about what happened after the request ended (an unknown outcome
    /// resolved), without changing it: the one way onto an ended request's timeline.
    pub async fn annotate(
        &self,
        id: RequestId,
        actor: &str,
        notes: Vec<Note>,
    ) -> Result<(), RequestError> {
        let request = self
            .store
            .get(&id)
            .await?
            .ok_or_else(|| RequestError::NotFound(id.to_string()))?;
        let events = self.entries(id, request.status, actor, notes);
        self.store.append(&id, &events).await?;
        self.tell(&events).await;
        Ok(())
    }

    /// Passes written entries on to the notifications.
    async fn tell(&self, events: &[RequestEvent]) {
        if let Some(notices) = &self.notices {
            let raised = events
                .iter()
                .map(|e| crate::ports::Notice::Request(Box::new(e.clone())))
                .collect();
            notices.raise(raised).await;
        }
    }

    /// Timeline entries of `notes`, written now by `actor` while the request is `status`.
    fn entries(
        &self,
        id: RequestId,
        status: RequestStatus,
        actor: &str,
        notes: Vec<Note>,
    ) -> Vec<RequestEvent> {
        let at = self.clock.now();
        notes
            .into_iter()
            .map(|note| RequestEvent {
                request_id: id,
                seq: 0,
                at,
                actor: actor.to_owned(),
                kind: note.kind,
                status,
                component: note.component,
                message: Some(note.message),
                detail: note.detail,
            })
            .collect()
    }

    /// Writes a transition (and the change it brings) with optimistic concurrency: a
    /// concurrent writer makes it re-read and try again.
    async fn record(
        &self,
        id: RequestId,
        mut transition: Transition,
    ) -> Result<Request, RequestError> {
        let next = transition.to;
        for _ in 0..UPDATE_ATTEMPTS {
            let mut request = match transition.from.take() {
                Some(request) => request,
                None => self
                    .store
                    .get(&id)
                    .await?
                    .ok_or_else(|| RequestError::NotFound(id.to_string()))?,
            };
            // Already there (a redelivered message, a repeated webhook): nothing to do,
            // but what follows the end, which a crash may have cut short.
            if request.status == next {
                if next.is_terminal() {
                    self.end(&request).await?;
                }
                return Ok(request);
            }
            if !request.status.can_become(next) {
                return Err(RequestError::InvalidTransition {
                    status: request.status,
                    next,
                });
            }
            let now = self.clock.now();
            request.status = next;
            request.version += 1;
            request.updated_at = now;
            transition.apply_to(&mut request);
            let event = RequestEvent {
                request_id: id,
                seq: 0, // numbered by the store
                at: now,
                actor: transition.actor.clone(),
                kind: transition.kind.unwrap_or(EventKind::reaching(next)),
                status: next,
                component: transition.component.clone(),
                message: transition.message.clone(),
                detail: transition.detail.clone(),
            };
            if next.is_terminal() {
                request.lead_time = self.lead_time(&request, &event).await?;
                self.end(&request).await?;
            }
            match self.store.update(&request, &event).await {
                Ok(()) => {
                    self.tell(std::slice::from_ref(&event)).await;
                    crate::metrics::count(
                        crate::metrics::REQUESTS,
                        &[("Status", next.as_str())],
                        1,
                    );
                    if let Some(lead) = &request.lead_time {
                        lead_time_metrics(&request.target, lead);
                    }
                    return Ok(request);
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Unavailable(format!("request {id} kept changing; try again")).into())
    }

    /// The lead time of `request`, which `last` ends: its timeline so far and that entry.
    async fn lead_time(
        &self,
        request: &Request,
        last: &RequestEvent,
    ) -> Result<Option<LeadTime>, StoreError> {
        let mut events = self.store.events(&request.id).await?;
        events.push(last.clone());
        Ok(super::lead_time::measure(&events, &request.requester.sub))
    }

    async fn end(&self, request: &Request) -> Result<(), StoreError> {
        match &self.ended {
            Some(hook) => hook.ended(request).await,
            None => Ok(()),
        }
    }
}

/// A request's lead time and its worked parts, per item and mode (the dashboard's).
fn lead_time_metrics(target: &str, lead: &LeadTime) {
    use crate::metrics::{LEAD_TIME, LEAD_TIME_AUTOMATED, LEAD_TIME_PERSON, milliseconds};
    let dimensions = [("Target", target), ("Mode", lead.mode.as_str())];
    milliseconds(LEAD_TIME, &dimensions, lead.total_ms);
    milliseconds(LEAD_TIME_PERSON, &dimensions, lead.parts.person_ms);
    milliseconds(LEAD_TIME_AUTOMATED, &dimensions, lead.parts.automated_ms);
}

/// A digest of what was submitted (target and fields as sent, key order ignored).
fn fingerprint(target: &str, fields: &Map<String, Value>) -> String {
    /// Objects with their keys sorted; keys and scalars as compact JSON.
    fn canonical(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(map) => object(map, out),
            Value::Array(items) => {
                out.push(b'[');
                for item in items {
                    canonical(item, out);
                    out.push(b',');
                }
                out.push(b']');
            }
            other => json(other, out),
        }
    }
    fn object(map: &Map<String, Value>, out: &mut Vec<u8>) {
        let mut entries: Vec<(&String, &Value)> = map.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        out.push(b'{');
        for (k, v) in entries {
            json(k, out);
            out.push(b':');
            canonical(v, out);
            out.push(b',');
        }
        out.push(b'}');
    }
    fn json<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
    }
    let mut text = Vec::with_capacity(256);
    object(fields, &mut text);
    let digest = Sha256::new()
        .chain_update(target)
        .chain_update([0])
        .chain_update(text)
        .finalize();
    crate::signing::hex(&digest)
}

fn to_jiff(t: OffsetDateTime) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(t.unix_timestamp_nanos()).unwrap_or(jiff::Timestamp::MAX)
}

fn from_jiff(t: jiff::Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_key_order_but_not_values() {
        let a = serde_json::json!({"a": 1, "b": {"x": [1, 2], "y": "z"}});
        let b = serde_json::json!({"b": {"y": "z", "x": [1, 2]}, "a": 1});
        let c = serde_json::json!({"a": 2, "b": {"x": [1, 2], "y": "z"}});
        let f = |v: &Value| fingerprint("t", v.as_object().unwrap());
        assert_eq!(f(&a), f(&b));
        assert_ne!(f(&a), f(&c));
        assert_ne!(
            fingerprint("t", a.as_object().unwrap()),
            fingerprint("u", a.as_object().unwrap())
        );
        // Stored requests carry their fingerprint: the canonical form must not change.
        let d = serde_json::json!({"b": {"y": "z\"é", "x": [1, 2.5, null, true]}, "a": 1});
        assert_eq!(
            f(&d),
            "134b15996dee7041e50fa7119bb30fb28d3977969c8171a5db7d98efb8e4bdbd"
        );
    }
}
