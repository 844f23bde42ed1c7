//! The reconciler Lambda's handler, on its EventBridge schedule: re-enqueue requests that
//! lost their queue message, then verify every provisioned resource against its target.

use std::time::Duration;

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use shared::resources::reconcile::ReconcileReport;

use crate::Deployment;

/// The fields of an EventBridge scheduled event the handler reads (for its logs).
#[derive(Debug, Deserialize)]
pub struct ScheduledEvent {
    pub id: Option<String>,
    #[serde(rename = "detail-type")]
    pub detail_type: Option<String>,
    pub time: Option<String>,
}

/// What a pass did, returned to Lambda (and so in the invocation's result).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PassReport {
    pub requeued: usize,
    pub drift: ReconcileReport,
}

/// The schedule's rate (`Every5Minutes` in infra/template.yaml): each pass sweeps the
/// requests that came of age since the one before.
pub const EVERY: Duration = Duration::from_secs(300);

pub async fn handle(
    deployment: &Deployment,
    event: LambdaEvent<ScheduledEvent>,
) -> Result<PassReport, lambda_runtime::Error> {
    tracing::info!(
        event = event.payload.id.as_deref().unwrap_or_default(),
        kind = event.payload.detail_type.as_deref().unwrap_or_default(),
        at = event.payload.time.as_deref().unwrap_or_default(),
        "scheduled pass"
    );
    if let Err(e) = deployment.refresh_catalog().await {
        tracing::warn!(error = %e, "could not look at the live catalog version");
    }
    let requeued = deployment
        .assembly
        .worker
        .sweep(EVERY)
        .await
        .map_err(|e| e.to_string())?;
    let drift = deployment
        .assembly
        .reconciler
        .run_once()
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        requeued,
        checked = drift.checked,
        drifted = drift.drifted,
        failed = drift.failed,
        "scheduled pass done"
    );
    Ok(PassReport { requeued, drift })
}
