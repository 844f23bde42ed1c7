//! The reconciler Lambda's handler, on its EventBridge schedule: re-enqueue requests that
//! lost their queue message, then take a step of drift reconciliation (enqueue the pass's
//! resources in batches for the worker, or close a pass whose batches are all verified
//! and start the next), then a step of retention (export and remove audit entries and
//! ended requests' timelines past their time), then the service level watch (entries and
//! notifications for running requests at risk of missing a target, or past it).

use std::time::Duration;

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use shared::requests::sla::SlaReport;
use shared::resources::reconcile::ReconcileStep;
use shared::retention::RetentionReport;

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
    /// The reconciliation step: what it enqueued for the worker, and the passes' figures.
    pub drift: ReconcileStep,
    /// The retention step: what it exported and removed.
    pub retention: RetentionReport,
    /// The service level watch: running requests at risk or past their targets.
    pub sla: SlaReport,
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
    // Bounded work; what is left waits for the next schedule.
    let retention = deployment
        .assembly
        .retention
        .run_once()
        .await
        .map_err(|e| e.to_string())?;
    let sla = deployment
        .assembly
        .sla
        .run_once()
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        requeued,
        sla_at_risk = sla.at_risk,
        sla_breached = sla.breached,
        enqueued = drift.enqueued,
        audit_removed = retention.audit_removed,
        timelines_removed = retention.timelines_removed,
        "scheduled pass done"
    );
    Ok(PassReport {
        requeued,
        drift,
        retention,
        sla,
    })
}
