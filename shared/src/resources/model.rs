//! The resource record: what the orchestrator provisioned, as it last knew it, and the
//! history of every change to it (Terraform's state, one record per instance).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::requests::model::RequestId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceStatus {
    Provisioning,
    Ready,
    Updating,
    Drifted,
    Deleting,
    Deleted,
    Failed,
}

impl ResourceStatus {
    pub const ALL: [ResourceStatus; 7] = [
        ResourceStatus::Provisioning,
        ResourceStatus::Ready,
        ResourceStatus::Updating,
        ResourceStatus::Drifted,
        ResourceStatus::Deleting,
        ResourceStatus::Deleted,
        ResourceStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceStatus::Provisioning => "provisioning",
            ResourceStatus::Ready => "ready",
            ResourceStatus::Updating => "updating",
            ResourceStatus::Drifted => "drifted",
            ResourceStatus::Deleting => "deleting",
            ResourceStatus::Deleted => "deleted",
            ResourceStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for ResourceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An item's instance, or a stack: the components of one bundle request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    Item,
    Stack,
}

/// A change under way: who holds the resource, for which request, until when. A holder
/// that stops renewing (a crashed worker) loses the lease when it expires, and the next
/// change takes it over with a conditional write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lock {
    /// The user who asked for the change.
    pub holder: String,
    /// The request making the change.
    #[schema(value_type = String)]
    pub request_id: RequestId,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub acquired_at: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// One attribute whose actual value differs from the recorded one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// The field or output name (for a stack: `component.name`).
    pub attribute: String,
    #[schema(value_type = Object)]
    pub recorded: Value,
    /// `null` when the target no longer reports the attribute.
    #[schema(value_type = Object)]
    pub actual: Value,
}

/// A component of a stack: its resource, and the components it depends on (deletion
/// goes in reverse order, whatever the catalog says by then).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StackMember {
    pub component: String,
    pub item: String,
    pub resource_id: String,
    #[serde(default)]
    pub depends_on: Vec<String>,
}

/// The order in which a stack's components are deleted: every component before those it
/// depends on (the dependency graph's topological order, reversed). Dependencies on
/// components the stack does not list are ignored; a cycle, which a validated bundle
/// cannot have, keeps the recorded order.
pub fn deletion_order(members: &[StackMember]) -> Vec<&StackMember> {
    let graph = crate::graph::DependencyGraph::new(
        members
            .iter()
            .map(|m| {
                m.depends_on
                    .iter()
                    .filter_map(|d| members.iter().position(|x| &x.component == d))
                    .collect()
            })
            .collect(),
    );
    match graph.topological_order() {
        Some(order) => order.into_iter().rev().map(|i| &members[i]).collect(),
        None => members.iter().collect(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: String,
    pub kind: ResourceKind,
    /// The item (or, for a stack, the bundle) it is an instance of.
    pub item: String,
    pub catalog_version: String,
    /// The digest of its item's (a stack's: its bundle's) document when it was provisioned
    /// or last changed (`CatalogSnapshot::digest`); empty on records from before digests.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub item_digest: String,
    /// The team that owns the item.
    pub owner: String,
    /// Who requested it first.
    pub requester: String,
    /// The field values it was last provisioned or changed with.
    pub inputs: Map<String, Value>,
    /// Its outputs; sensitive ones only as `{"sensitive": true}`, never in clear.
    pub outputs: Map<String, Value>,
    pub status: ResourceStatus,
    /// Incremented with every entry of its history.
    pub serial: u64,
    /// Fixed for the life of the resource (Terraform's lineage): records that share it
    /// describe the same thing.
    pub lineage: String,
    /// The request that provisioned it.
    pub request_id: RequestId,
    /// The stack it is a component of, and which component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// A stack's components.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<StackMember>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<Lock>,
    /// What the last verification found different (empty when it matched).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
    #[serde(with = "crate::timestamp::option", default)]
    pub verified_at: Option<OffsetDateTime>,
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    pub updated_at: OffsetDateTime,
    /// Incremented on every write, lock and verification included (optimistic
    /// concurrency); `serial` counts changes only.
    pub version: u64,
}

impl Resource {
    /// A resource just provisioned for `requester` by request `request_id` at `at`: one
    /// item, ready, at serial 1, with a lineage of its own and no inputs, outputs, lock or
    /// drift yet (set what differs with struct update syntax).
    pub fn provisioned(
        id: &str,
        item: &str,
        catalog_version: &str,
        owner: &str,
        requester: &str,
        request_id: RequestId,
        at: OffsetDateTime,
    ) -> Resource {
        Resource {
            id: id.to_owned(),
            kind: ResourceKind::Item,
            item: item.to_owned(),
            catalog_version: catalog_version.to_owned(),
            item_digest: String::new(),
            owner: owner.to_owned(),
            requester: requester.to_owned(),
            inputs: Map::new(),
            outputs: Map::new(),
            status: ResourceStatus::Ready,
            serial: 1,
            lineage: uuid::Uuid::new_v4().to_string(),
            request_id,
            stack: None,
            component: None,
            members: Vec::new(),
            lock: None,
            drift: Vec::new(),
            verified_at: None,
            created_at: at,
            updated_at: at,
            version: 1,
        }
    }

    /// The history entry that records this resource's state as a change of `kind` by
    /// `actor`, through the request that made it.
    pub fn change(&self, kind: ChangeKind, actor: &str) -> ResourceChange {
        ResourceChange {
            resource_id: self.id.clone(),
            serial: self.serial,
            kind,
            at: self.updated_at,
            actor: actor.to_owned(),
            request_id: Some(self.request_id),
            status: self.status,
            inputs: Some(self.inputs.clone()),
            outputs: Some(self.outputs.clone()),
            drift: Vec::new(),
            message: None,
        }
    }

    /// Whether its item's (or bundle's) definition changed since it was provisioned or
    /// last changed, or left the catalog (`false` for records from before digests).
    pub fn outdated(&self, catalog: &crate::catalog::snapshot::CatalogSnapshot) -> bool {
        !self.item_digest.is_empty()
            && catalog.digest(&self.item) != Some(self.item_digest.as_str())
    }

    /// The lock, when it is held at `now` (an expired lease is free).
    pub fn held(&self, now: OffsetDateTime) -> Option<&Lock> {
        self.lock.as_ref().filter(|l| l.expires_at > now)
    }

    /// The `resource` template scope.
    pub fn scope(&self) -> Value {
        use time::format_description::well_known::Rfc3339;
        serde_json::json!({
            "id": self.id,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "status": self.status,
            "serial": self.serial,
            "createdAt": self.created_at.format(&Rfc3339).unwrap_or_default(),
            "updatedAt": self.updated_at.format(&Rfc3339).unwrap_or_default(),
        })
    }
}

/// What an entry of a resource's history records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Provisioned,
    Updated,
    UpdateFailed,
    Deleted,
    DeleteFailed,
    DriftDetected,
    DriftResolved,
}

/// One entry of a resource's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceChange {
    pub resource_id: String,
    /// The resource's serial after this change.
    pub serial: u64,
    pub kind: ChangeKind,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// A user's `sub`, `worker` or `reconciler`.
    pub actor: String,
    /// The request that made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub request_id: Option<RequestId>,
    pub status: ResourceStatus,
    /// The inputs after the change (provisioned, updated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub inputs: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub outputs: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What a sensitive output is recorded as.
pub fn sensitive_marker() -> Value {
    serde_json::json!({"sensitive": true})
}

/// `outputs` with every output the item declares sensitive replaced by its marker.
pub fn seal_outputs(
    declared: &std::collections::BTreeMap<String, crate::catalog::document::OutputDeclaration>,
    outputs: &Map<String, Value>,
) -> Map<String, Value> {
    outputs
        .iter()
        .map(|(name, value)| {
            let sealed = declared.get(name).is_some_and(|d| d.sensitive);
            let value = if sealed {
                sensitive_marker()
            } else {
                value.clone()
            };
            (name.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, deps: &[&str]) -> StackMember {
        StackMember {
            component: id.to_owned(),
            item: "x".to_owned(),
            resource_id: id.to_owned(),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn dependents_are_deleted_before_what_they_depend_on() {
        let members = vec![
            member("app", &["database", "queue"]),
            member("database", &["network"]),
            member("network", &[]),
            member("queue", &[]),
        ];
        let order: Vec<&str> = deletion_order(&members)
            .iter()
            .map(|m| m.component.as_str())
            .collect();
        let at = |c: &str| order.iter().position(|x| *x == c).unwrap();
        assert_eq!(order.len(), 4);
        assert!(at("app") < at("database"));
        assert!(at("app") < at("queue"));
        assert!(at("database") < at("network"));
    }

    #[test]
    fn a_dependency_outside_the_stack_is_ignored() {
        let members = vec![member("app", &["gone"]), member("db", &[])];
        assert_eq!(deletion_order(&members).len(), 2);
    }
}
