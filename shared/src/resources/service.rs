//! The resource use cases: recording what a request provisioned, locking a resource for
//! a change, and settling the record when the change's request ends.
//!
//! Records follow requests: when a request reaches its end, [`Resources::settle`] runs
//! before the request's final status is written (and again whenever a repeated
//! transition finds it there), so a crash in between is repaired by the redelivery that
//! repeats the transition. Every write is conditional on the version read.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::completed::CompletedComponent;
use super::model::{
    ChangeKind, Drift, Lock, Resource, ResourceChange, ResourceKind, ResourceStatus, StackMember,
    seal_outputs,
};
use crate::access::{Principal, Roles};
use crate::catalog::snapshot::TargetRef;
use crate::ports::{CatalogStore, Clock, ResourceStore, StateStore, StoreError};
use crate::requests::model::{Operation, Request, RequestId, RequestStatus, TargetKind};
use crate::requests::service::RequestEnd;

/// Writes retry this often on a concurrent change before giving up.
const WRITE_ATTEMPTS: usize = 8;

/// How long a change holds its resource without renewing, when configuration does not say.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("no resource {0}")]
    NotFound(String),
    #[error("resource {id} is locked by {holder} for request {request_id} until {expires_at}")]
    Locked {
        id: String,
        holder: String,
        request_id: RequestId,
        expires_at: String,
    },
    #[error("the resource is {0} and cannot change now")]
    NotChangeable(ResourceStatus),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Resources {
    pub store: Arc<dyn ResourceStore>,
    /// Completed components' records (their inputs and outputs).
    pub state: Arc<dyn StateStore>,
    pub catalog: Arc<dyn CatalogStore>,
    pub clock: Arc<dyn Clock>,
    pub lease: Duration,
    /// Told of drift found, for notifications.
    pub notices: Option<Arc<dyn crate::ports::Notices>>,
}

/// What a write of [`Resources::modify`] adds to the history.
pub struct Entry {
    pub kind: ChangeKind,
    pub actor: String,
    pub request_id: Option<RequestId>,
    pub inputs: Option<Map<String, Value>>,
    pub outputs: Option<Map<String, Value>>,
    pub drift: Vec<Drift>,
    pub message: Option<String>,
}

impl Entry {
    pub fn new(kind: ChangeKind, actor: &str) -> Entry {
        Entry {
            kind,
            actor: actor.to_owned(),
            request_id: None,
            inputs: None,
            outputs: None,
            drift: Vec::new(),
            message: None,
        }
    }
}

/// What a modification decides. Returned once per write and never stored, so its size
/// does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Decision<T> {
    /// Write the record as changed (with a history entry, if any) and return `T`.
    Write(Option<Entry>, T),
    /// Write nothing and return `T`.
    Keep(T),
}

/// The resource id of a stack's component.
pub fn member_id(request: RequestId, component: &str) -> String {
    crate::requests::model::member_id(&request.to_string(), component)
}

impl Resources {
    pub async fn get(&self, id: &str) -> Result<Resource, ResourceError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| ResourceError::NotFound(id.to_owned()))
    }

    /// Reads, changes and writes a resource, again from a fresh read when another write
    /// came first. `decide` sees the stored record and changes it in place.
    pub async fn modify<T>(
        &self,
        id: &str,
        mut decide: impl FnMut(&mut Resource) -> Result<Decision<T>, ResourceError>,
    ) -> Result<T, ResourceError> {
        for _ in 0..WRITE_ATTEMPTS {
            let mut resource = self.get(id).await?;
            let (entry, result) = match decide(&mut resource)? {
                Decision::Keep(result) => return Ok(result),
                Decision::Write(entry, result) => (entry, result),
            };
            let now = self.clock.now();
            resource.version += 1;
            resource.updated_at = now;
            let change = entry.map(|e| {
                resource.serial += 1;
                ResourceChange {
                    resource_id: resource.id.clone(),
                    serial: resource.serial,
                    kind: e.kind,
                    at: now,
                    actor: e.actor,
                    request_id: e.request_id,
                    status: resource.status,
                    inputs: e.inputs,
                    outputs: e.outputs,
                    drift: e.drift,
                    message: e.message,
                }
            });
            match self.store.update(&resource, change.as_ref()).await {
                Ok(()) => return Ok(result),
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(StoreError::NotFound) => return Err(ResourceError::NotFound(id.to_owned())),
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Unavailable(format!("resource {id} kept changing; try again")).into())
    }

    /// A resource the caller may see (its requester, its owner team, admins); someone
    /// else's is indistinguishable from a missing one.
    pub async fn visible(
        &self,
        roles: &Roles,
        who: &Principal,
        id: &str,
    ) -> Result<Resource, ResourceError> {
        let resource = self.get(id).await?;
        if roles.may_see(who, &resource.requester, &resource.owner) {
            Ok(resource)
        } else {
            Err(ResourceError::NotFound(id.to_owned()))
        }
    }

    /// Takes the resource for `request_id`'s change: the lock is free, expired (its holder
    /// stopped renewing) or already this request's (a retry). A stack's components are
    /// changed through the stack, not one by one.
    pub async fn lock(
        &self,
        id: &str,
        who: &Principal,
        request_id: RequestId,
        operation: Operation,
        lease: Duration,
    ) -> Result<Resource, ResourceError> {
        let now = self.clock.now();
        self.modify(id, |r| {
            if let Some(lock) = r.held(now) {
                if lock.request_id == request_id {
                    return Ok(Decision::Keep(r.clone()));
                }
                return Err(ResourceError::Locked {
                    id: r.id.clone(),
                    holder: lock.holder.clone(),
                    request_id: lock.request_id,
                    expires_at: rfc3339(lock.expires_at),
                });
            }
            if let Some(stack) = &r.stack
                && operation == Operation::Delete
            {
                return Err(ResourceError::Invalid(format!(
                    "resource {} is component `{}` of stack {stack}; delete the stack",
                    r.id,
                    r.component.as_deref().unwrap_or_default()
                )));
            }
            let changeable = match r.status {
                ResourceStatus::Ready | ResourceStatus::Drifted | ResourceStatus::Failed => true,
                // A change whose holder crashed: its lease expired, so it may be taken over.
                ResourceStatus::Updating | ResourceStatus::Deleting => r.lock.is_some(),
                _ => false,
            };
            if !changeable {
                return Err(ResourceError::NotChangeable(r.status));
            }
            if operation == Operation::Update && r.kind == ResourceKind::Stack {
                return Err(ResourceError::Invalid(
                    "a stack is changed through its components' items one by one; it can only be deleted whole".to_owned(),
                ));
            }
            r.lock = Some(Lock {
                holder: who.sub.clone(),
                request_id: request_id.to_owned(),
                acquired_at: now,
                expires_at: now + lease,
            });
            r.status = match operation {
                Operation::Delete => ResourceStatus::Deleting,
                _ => ResourceStatus::Updating,
            };
            Ok(Decision::Write(None, r.clone()))
        })
        .await
    }

    /// Extends the lease of `request_id`'s change; `None` when the request no longer
    /// holds the resource (its lease expired and another change took it over).
    pub async fn renew(
        &self,
        id: &str,
        request_id: RequestId,
        lease: Duration,
    ) -> Result<Option<Resource>, ResourceError> {
        let now = self.clock.now();
        self.modify(id, |r| {
            let Some(lock) = r.lock.as_mut().filter(|l| l.request_id == request_id) else {
                return Ok(Decision::Keep(None));
            };
            // Renewing every few seconds would only add writes.
            if lock.expires_at - now > lease / 2 {
                return Ok(Decision::Keep(Some(r.clone())));
            }
            lock.expires_at = now + lease;
            Ok(Decision::Write(None, Some(r.clone())))
        })
        .await
    }

    /// Brings the records in line with a request that ended.
    pub async fn settle(&self, request: &Request) -> Result<(), StoreError> {
        let result = match (request.operation, request.status) {
            (Operation::Provision, RequestStatus::Completed) => self.record(request).await,
            (Operation::Provision, _) => Ok(()),
            (_, _) => self.finish_change(request).await,
        };
        match result {
            Ok(()) | Err(ResourceError::NotFound(_)) => Ok(()),
            Err(ResourceError::Store(e)) => Err(e),
            Err(e) => {
                tracing::warn!(request_id = %request.id, error = %e, "the resource record did not follow its request");
                Ok(())
            }
        }
    }

    /// Records what a completed request provisioned: the item's instance, or a stack and
    /// one resource per component. Idempotent: a record that exists stays as it is.
    async fn record(&self, request: &Request) -> Result<(), ResourceError> {
        let snapshot = self.catalog.current();
        let rid = request.id.to_string();
        match (request.kind, snapshot.target(&request.target)) {
            (TargetKind::Bundle, Some(TargetRef::Bundle(bundle))) => {
                let mut members = Vec::new();
                for component in &bundle.doc.spec.components {
                    let done =
                        CompletedComponent::read(self.state.as_ref(), request.id, &component.id)
                            .await?;
                    let (inputs, outputs) = done.map(|c| (c.fields, c.outputs)).unwrap_or_default();
                    let declared = snapshot
                        .catalog
                        .item(&component.item)
                        .map(|i| i.doc.spec.outputs.clone())
                        .unwrap_or_default();
                    let id = member_id(request.id, &component.id);
                    let mut member = self.new_resource(request, &id, &component.item, inputs);
                    member.outputs = seal_outputs(&declared, &outputs);
                    member.stack = Some(rid.clone());
                    member.component = Some(component.id.clone());
                    self.create(&member, request).await?;
                    members.push(StackMember {
                        component: component.id.clone(),
                        item: component.item.clone(),
                        resource_id: id,
                        depends_on: component.depends_on.clone(),
                    });
                }
                let mut stack =
                    self.new_resource(request, &rid, &request.target, request.fields.clone());
                stack.kind = ResourceKind::Stack;
                stack.outputs = request.outputs.clone();
                stack.members = members;
                self.create(&stack, request).await
            }
            (TargetKind::Item, found) => {
                let declared = match found {
                    Some(TargetRef::Item(item)) => item.doc.spec.outputs.clone(),
                    _ => Default::default(),
                };
                let mut resource =
                    self.new_resource(request, &rid, &request.target, request.fields.clone());
                resource.outputs = seal_outputs(&declared, &request.outputs);
                self.create(&resource, request).await
            }
            (TargetKind::Bundle, _) => Err(ResourceError::Invalid(format!(
                "the bundle `{}` is no longer in the catalog",
                request.target
            ))),
        }
    }

    fn new_resource(
        &self,
        request: &Request,
        id: &str,
        item: &str,
        inputs: Map<String, Value>,
    ) -> Resource {
        Resource {
            inputs,
            item_digest: self
                .catalog
                .current()
                .digest(item)
                .unwrap_or_default()
                .to_owned(),
            ..Resource::provisioned(
                id,
                item,
                &request.catalog_version,
                &request.owner,
                &request.requester.sub,
                request.id,
                self.clock.now(),
            )
        }
    }

    async fn create(&self, resource: &Resource, request: &Request) -> Result<(), ResourceError> {
        let change = resource.change(ChangeKind::Provisioned, &request.requester.sub);
        self.store.create(resource, &change).await?;
        Ok(())
    }

    /// The end of a change or a deletion: the record takes the new inputs and outputs,
    /// becomes a tombstone, or records the failure; the lock is released. Only while the
    /// request still holds the lock: one whose lease was taken over changes nothing.
    async fn finish_change(&self, request: &Request) -> Result<(), ResourceError> {
        let Some(id) = &request.resource else {
            return Ok(());
        };
        let rid = request.id;
        let declared = match self.catalog.current().target(&request.target) {
            Some(TargetRef::Item(item)) => item.doc.spec.outputs.clone(),
            _ => Default::default(),
        };
        let deleted =
            request.operation == Operation::Delete && request.status == RequestStatus::Completed;
        let members = self
            .modify(id, |r| {
                if r.lock.as_ref().is_none_or(|l| l.request_id != rid) {
                    return Ok(Decision::Keep(Vec::new()));
                }
                r.lock = None;
                let mut entry = Entry::new(ChangeKind::Updated, "worker");
                entry.request_id = Some(rid);
                entry.message = request.reason.clone();
                let settled_status = if r.drift.is_empty() {
                    ResourceStatus::Ready
                } else {
                    ResourceStatus::Drifted
                };
                let entry = match (request.operation, request.status) {
                    (Operation::Update, RequestStatus::Completed) => {
                        r.inputs = request.fields.clone();
                        for (name, value) in seal_outputs(&declared, &request.outputs) {
                            r.outputs.insert(name, value);
                        }
                        r.catalog_version = request.catalog_version.clone();
                        if let Some(digest) = self.catalog.current().digest(&r.item) {
                            r.item_digest = digest.to_owned();
                        }
                        r.status = ResourceStatus::Ready;
                        r.drift.clear();
                        entry.inputs = Some(r.inputs.clone());
                        entry.outputs = Some(r.outputs.clone());
                        Some(entry)
                    }
                    (Operation::Delete, RequestStatus::Completed) => {
                        r.status = ResourceStatus::Deleted;
                        entry.kind = ChangeKind::Deleted;
                        Some(entry)
                    }
                    (operation, RequestStatus::Failed) => {
                        r.status = ResourceStatus::Failed;
                        entry.kind = if operation == Operation::Delete {
                            ChangeKind::DeleteFailed
                        } else {
                            ChangeKind::UpdateFailed
                        };
                        Some(entry)
                    }
                    // Cancelled or rejected: nothing was changed by us.
                    _ => {
                        r.status = settled_status;
                        None
                    }
                };
                Ok(Decision::Write(entry, r.members.clone()))
            })
            .await?;
        if deleted {
            for member in members {
                self.tombstone(&member.resource_id, rid, "worker").await?;
            }
        }
        Ok(())
    }

    /// Marks a resource deleted by `request_id` (a stack's component, once its
    /// deprovisioning is done); one deleted already stays as it is.
    pub async fn tombstone(
        &self,
        id: &str,
        request_id: RequestId,
        actor: &str,
    ) -> Result<(), ResourceError> {
        self.modify(id, |r| {
            if r.status == ResourceStatus::Deleted {
                return Ok(Decision::Keep(()));
            }
            r.status = ResourceStatus::Deleted;
            r.lock = None;
            let mut entry = Entry::new(ChangeKind::Deleted, actor);
            entry.request_id = Some(request_id.to_owned());
            Ok(Decision::Write(Some(entry), ()))
        })
        .await
    }
}

#[async_trait]
impl RequestEnd for Resources {
    async fn ended(&self, request: &Request) -> Result<(), StoreError> {
        self.settle(request).await
    }
}

pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
