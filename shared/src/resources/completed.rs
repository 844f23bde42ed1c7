//! The record of a bundle's component (or a single item's run) that completed: the inputs
//! it was given and the outputs it gave. The worker writes it before it reports the
//! component done; its undo reads it back, and so does the resource record of the
//! request's end.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ports::{StateStore, StoreError};
use crate::requests::model::RequestId;

/// Components that completed, keyed `<request>/<component>`: the inputs they were given
/// and the outputs they gave, for their undo.
pub const COMPLETED: &str = "components";

#[derive(Debug, Serialize, Deserialize)]
pub struct CompletedComponent {
    pub fields: Map<String, Value>,
    pub outputs: Map<String, Value>,
}

impl CompletedComponent {
    /// Records a component that completed; an earlier delivery's record stands.
    pub async fn record(
        &self,
        state: &dyn StateStore,
        request: RequestId,
        component: &str,
    ) -> Result<(), StoreError> {
        let record = serde_json::to_value(self).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let key = format!("{request}/{component}");
        state.put_once(COMPLETED, &key, &record).await
    }

    /// The record of a request's component, if it completed.
    pub async fn read(
        state: &dyn StateStore,
        request: RequestId,
        component: &str,
    ) -> Result<Option<CompletedComponent>, StoreError> {
        match state
            .get(COMPLETED, &format!("{request}/{component}"))
            .await?
        {
            Some(v) => serde_json::from_value(v.value)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }
}
