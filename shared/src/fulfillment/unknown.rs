//! Actions whose outcome stayed unknown: the last attempt of a call got no answer in time,
//! so the target may hold what it made under the call's `Idempotency-Key`. Each is kept
//! here, with what it takes to try the call again, until it is resolved: by the
//! reconciler (which tries the call again with the same key and rolls back what it made)
//! or by an admin (`POST /requests/{id}/resolve`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ports::{StateStore, StoreError};
use crate::requests::model::RequestId;

const TABLE: &str = "unknown-outcomes";

/// One action whose outcome is unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingOutcome {
    pub request_id: RequestId,
    /// The bundle's component (`main` for an item requested alone).
    pub component: String,
    pub item: String,
    pub action: String,
    /// The item's fields as the component ran with them (no secrets: those are read by
    /// the actions themselves).
    pub fields: Map<String, Value>,
}

impl PendingOutcome {
    fn key(&self) -> String {
        format!("{}/{}/{}", self.request_id, self.component, self.action)
    }

    /// Keeps it until it is resolved (again: a no-op).
    pub async fn record(&self, state: &dyn StateStore) -> Result<(), StoreError> {
        let value = serde_json::to_value(self).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        state.put_once(TABLE, &self.key(), &value).await
    }

    /// The outcomes still unknown, of one request or (with `None`) of any, at most
    /// `limit`.
    pub async fn pending(
        state: &dyn StateStore,
        request: Option<RequestId>,
        limit: usize,
    ) -> Result<Vec<PendingOutcome>, StoreError> {
        let prefix = request.map(|r| format!("{r}/")).unwrap_or_default();
        state
            .list(TABLE, &prefix, limit)
            .await?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_value(v.value).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// It is resolved: forgotten.
    pub async fn resolved(&self, state: &dyn StateStore) -> Result<(), StoreError> {
        state.forget(TABLE, &self.key()).await
    }
}

/// Resolves unknown outcomes: the worker, which can run an item's actions, does it for the
/// reconciler, which cannot.
#[async_trait]
pub trait UnknownOutcomes: Send + Sync {
    /// Tries to resolve at most `limit` pending outcomes of ended requests; returns how
    /// many were resolved.
    async fn resolve_pending(&self, limit: usize) -> Result<usize, StoreError>;
}
