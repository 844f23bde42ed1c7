//! Drift reconciliation: verifies every ready or drifted resource, a bounded number at a
//! time, and records what it finds. A drifted resource is marked `drifted` (with the
//! report in its history); one that matches again goes back to `ready`. Resources being
//! changed are left to their change; open circuit breakers skip their targets. Each pass
//! also resolves actions whose outcome stayed unknown ([`UnknownOutcomes`]).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use super::model::{ChangeKind, Drift, Resource, ResourceStatus};
use super::service::{Decision, Entry, ResourceError, Resources};
use super::verify::{Verification, Verifier};
use crate::fulfillment::unknown::UnknownOutcomes;
use crate::ports::{Notice, ResourceQuery, StoreError};

/// How many resources one page of the pass reads.
const PAGE: usize = 500;

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    pub checked: usize,
    pub matched: usize,
    /// Found drifted in this pass (newly or still).
    pub drifted: usize,
    /// Drifted before, matching again.
    pub recovered: usize,
    /// Not verifiable now (no verify actions, an open breaker, a change under way).
    pub skipped: usize,
    /// The verification itself failed.
    pub failed: usize,
    /// Unknown outcomes of ended requests resolved in this pass.
    pub outcomes_resolved: usize,
}

/// What a verification changed in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Matched,
    /// Drifted as it was already.
    Drifted,
    /// Drift found now (a new drift, or a different one): recorded and told.
    DriftFound,
    Recovered,
    Skipped,
    Failed,
}

pub struct Reconciler {
    pub resources: Arc<Resources>,
    pub verifier: Arc<Verifier>,
    pub concurrency: usize,
    /// Resolves actions whose outcome stayed unknown, a bounded number per pass.
    pub outcomes: Option<Arc<dyn UnknownOutcomes>>,
}

/// How many unknown outcomes one pass tries to resolve.
const OUTCOMES_PER_PASS: usize = 100;

impl Reconciler {
    /// One pass over every ready and drifted resource.
    pub async fn run_once(&self) -> Result<ReconcileReport, StoreError> {
        let mut report = ReconcileReport::default();
        let slots = Arc::new(tokio::sync::Semaphore::new(self.concurrency.max(1)));
        // Drifted first: a ready one found drifted in this pass is not verified twice.
        for status in [ResourceStatus::Drifted, ResourceStatus::Ready] {
            let mut query = ResourceQuery {
                status: Some(status),
                limit: PAGE,
                ..Default::default()
            };
            loop {
                let page = self.resources.store.list(&query).await?;
                let mut running = tokio::task::JoinSet::new();
                for resource in page.items {
                    let permit = slots
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    let (resources, verifier) = (self.resources.clone(), self.verifier.clone());
                    running.spawn(async move {
                        let outcome = check(&resources, &verifier, &resource, "reconciler").await;
                        drop(permit);
                        outcome.map(|(recorded, _)| recorded)
                    });
                }
                while let Some(done) = running.join_next().await {
                    report.checked += 1;
                    match done {
                        Ok(Ok(Recorded::Matched)) => report.matched += 1,
                        Ok(Ok(Recorded::Drifted | Recorded::DriftFound)) => report.drifted += 1,
                        Ok(Ok(Recorded::Recovered)) => report.recovered += 1,
                        Ok(Ok(Recorded::Skipped)) => report.skipped += 1,
                        Ok(Ok(Recorded::Failed)) => report.failed += 1,
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "could not record a verification");
                            report.failed += 1;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "a verification panicked");
                            report.failed += 1;
                        }
                    }
                }
                match page.next {
                    Some(cursor) => query.cursor = Some(cursor),
                    None => break,
                }
            }
        }
        if let Some(outcomes) = &self.outcomes {
            report.outcomes_resolved = outcomes.resolve_pending(OUTCOMES_PER_PASS).await?;
        }
        crate::metrics::count(
            crate::metrics::RESOURCES_CHECKED,
            &[],
            report.checked as u64,
        );
        crate::metrics::count(crate::metrics::DRIFT_FOUND, &[], report.drifted as u64);
        Ok(report)
    }

    /// Runs a pass every `every` until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, every: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { return },
            }
            let started = std::time::Instant::now();
            match self.run_once().await {
                Ok(report) => tracing::info!(
                    checked = report.checked,
                    drifted = report.drifted,
                    recovered = report.recovered,
                    skipped = report.skipped,
                    failed = report.failed,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "reconciliation pass"
                ),
                Err(e) => tracing::warn!(error = %e, "the reconciliation pass failed"),
            }
        }
    }
}

/// Verifies one resource and records the outcome: drift found or gone changes its
/// status with a history entry; a match only notes when it was verified.
pub async fn check(
    resources: &Resources,
    verifier: &Verifier,
    resource: &Resource,
    actor: &str,
) -> Result<(Recorded, Verification), ResourceError> {
    let verification = verifier.verify(resource).await?;
    let drift: Vec<Drift> = match &verification {
        Verification::Matched => Vec::new(),
        Verification::Drifted(drift) => drift.clone(),
        Verification::Skipped(_) => return Ok((Recorded::Skipped, verification)),
        Verification::Failed(why) => {
            tracing::info!(resource = %resource.id, reason = %why, "verification failed");
            return Ok((Recorded::Failed, verification));
        }
    };
    let now = resources.clock.now();
    let recorded = resources
        .modify(&resource.id, |r| {
            // A change under way, or the record moved on since it was read: its own
            // verification comes with the change.
            if r.held(now).is_some()
                || !matches!(r.status, ResourceStatus::Ready | ResourceStatus::Drifted)
            {
                return Ok(Decision::Keep(Recorded::Skipped));
            }
            r.verified_at = Some(now);
            let was_drifted = r.status == ResourceStatus::Drifted;
            if drift.is_empty() {
                r.drift.clear();
                if was_drifted {
                    r.status = ResourceStatus::Ready;
                    let mut entry = Entry::new(ChangeKind::DriftResolved, actor);
                    entry.message = Some("the resource matches its record again".to_owned());
                    return Ok(Decision::Write(Some(entry), Recorded::Recovered));
                }
                return Ok(Decision::Write(None, Recorded::Matched));
            }
            let unchanged = was_drifted && r.drift == drift;
            r.drift = drift.clone();
            r.status = ResourceStatus::Drifted;
            if unchanged {
                return Ok(Decision::Write(None, Recorded::Drifted));
            }
            let mut entry = Entry::new(ChangeKind::DriftDetected, actor);
            entry.drift = drift.clone();
            Ok(Decision::Write(Some(entry), Recorded::DriftFound))
        })
        .await?;
    if recorded == Recorded::DriftFound
        && let Some(notices) = &resources.notices
    {
        // Where it differs, never the values (a drifted output may be sensitive).
        let paths = drift.iter().map(|d| d.attribute.clone()).collect();
        notices
            .raise(vec![Notice::Drift {
                resource: resource.id.clone(),
                at: now,
                paths,
            }])
            .await;
    }
    Ok((recorded, verification))
}
