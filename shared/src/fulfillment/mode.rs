//! Admin overrides of an item's fulfillment mode: while an item's automation is broken,
//! an admin forces it to manual. The override lives in the state store, not the catalog,
//! so it survives catalog reloads until it is lifted.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ports::{StateStore, StoreError};

/// The automation that runs for an item: its `automated` section when its mode is
/// automated and no admin forced it to manual; `None` means a person fulfils it.
pub fn automated_section(
    fulfillment: &crate::catalog::document::Fulfillment,
    forced_manual: bool,
) -> Option<&crate::catalog::document::AutomatedFulfillment> {
    match (&fulfillment.automated, fulfillment.mode) {
        (Some(automated), crate::catalog::document::Mode::Automated) if !forced_manual => {
            Some(automated)
        }
        _ => None,
    }
}

/// The state-store table of overrides, keyed by item name.
pub const TABLE: &str = "mode-overrides";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModeOverride {
    /// Always `manual`: automation can be switched off, not forced on.
    pub mode: String,
    pub reason: String,
    /// Who set it.
    pub by: String,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

pub async fn get(store: &dyn StateStore, item: &str) -> Result<Option<ModeOverride>, StoreError> {
    store
        .get(TABLE, item)
        .await?
        .map(|v| serde_json::from_value(v.value).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// Sets (or replaces) the override of `item`.
pub async fn set(
    store: &dyn StateStore,
    item: &str,
    value: &ModeOverride,
) -> Result<(), StoreError> {
    let json = serde_json::to_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    for _ in 0..5 {
        let expected = store.get(TABLE, item).await?.map(|v| v.version);
        match store.put(TABLE, item, &json, expected).await {
            Ok(_) => return Ok(()),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable(format!(
        "the override of {item} kept changing"
    )))
}

/// Lifts the override of `item`; `false` when there was none.
pub async fn lift(store: &dyn StateStore, item: &str) -> Result<bool, StoreError> {
    for _ in 0..5 {
        let Some(current) = store.get(TABLE, item).await? else {
            return Ok(false);
        };
        match store.delete(TABLE, item, current.version).await {
            Ok(()) => return Ok(true),
            Err(StoreError::NotFound) => return Ok(false),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable(format!(
        "the override of {item} kept changing"
    )))
}
