//! Drift reconciliation, fanned out: a pass lists the ready and drifted resources and
//! enqueues their ids in batches on the worker's queue (SQS on AWS, the local queue
//! locally); the worker verifies each batch ([`Checks`]), a bounded number at a time and
//! a bounded number per target host, and records what it finds. A drifted resource is
//! marked `drifted` (with the report in its history); one that matches again goes back to
//! `ready`. Resources being changed are left to their change; open circuit breakers skip
//! their targets.
//!
//! The pass keeps its progress in the state store (table `reconcile`): where its listing
//! is, how many batches it sent, and each batch's findings under the batch's number, so
//! a reconciler that stops mid-pass resumes where it was, and a batch delivered twice
//! counts once. Each step of the reconciler also resolves actions whose outcome stayed
//! unknown ([`UnknownOutcomes`]).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::model::{ChangeKind, Drift, Resource, ResourceStatus};
use super::service::{Decision, Entry, ResourceError, Resources};
use super::verify::{Verification, Verifier};
use crate::bundle::task::{VerifyBatch, WorkMessage};
use crate::fulfillment::unknown::UnknownOutcomes;
use crate::ports::{Notice, Queue, ResourceQuery, StateStore, StoreError};

/// How many resources one page of the pass's listing reads, by default.
pub const PAGE: usize = 500;

/// How many resources one message of a pass carries, by default: with the worker's default bound of
/// 16 at a time, two rounds of verification, well inside the worker's timeout even when
/// every call waits for its own.
pub const BATCH: usize = 25;

/// The state table of the pass under way (`pass`) and of the last one finished (`last`).
const TABLE: &str = "reconcile";
/// The findings of each batch, under `{pass}/{batch:08}`.
const BATCHES: &str = "reconcile-batches";

/// How long a pass may wait for its batches once every resource is enqueued, by default:
/// a batch lost on the way (dead-lettered) does not hold up reconciliation for ever.
pub const ABANDON_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    pub checked: usize,
    pub matched: usize,
    /// Found drifted (newly or still).
    pub drifted: usize,
    /// Drifted before, matching again.
    pub recovered: usize,
    /// Not verifiable now (no verify actions, an open breaker, a change under way, gone).
    pub skipped: usize,
    /// The verification itself failed.
    pub failed: usize,
}

impl ReconcileReport {
    fn add(&mut self, other: &ReconcileReport) {
        self.checked += other.checked;
        self.matched += other.matched;
        self.drifted += other.drifted;
        self.recovered += other.recovered;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }

    fn count(&mut self, recorded: Recorded) {
        self.checked += 1;
        match recorded {
            Recorded::Matched => self.matched += 1,
            Recorded::Drifted | Recorded::DriftFound => self.drifted += 1,
            Recorded::Recovered => self.recovered += 1,
            Recorded::Skipped => self.skipped += 1,
            Recorded::Failed => self.failed += 1,
        }
    }
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

/// Which resources the pass is listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum PassListing {
    /// Drifted first: a ready one found drifted in this pass is not verified twice.
    Drifted,
    Ready,
    /// Every resource is enqueued; the batches are being verified.
    Done,
}

/// A pass as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pass {
    id: String,
    #[serde(with = "crate::timestamp")]
    started_at: OffsetDateTime,
    listing: PassListing,
    /// Where the listing goes on (a page cursor of the resource store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    batches: u32,
    resources: u64,
    #[serde(default, with = "crate::timestamp::option")]
    listed_at: Option<OffsetDateTime>,
}

/// A pass and what its batches found so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PassProgress {
    pub id: String,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    pub listing: PassListing,
    /// When the last resource was enqueued.
    #[serde(
        default,
        with = "crate::timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub listed_at: Option<OffsetDateTime>,
    /// When the last batch was found reported (or the pass was given up).
    #[serde(
        default,
        with = "crate::timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<OffsetDateTime>,
    /// Resources enqueued.
    pub enqueued: u64,
    /// Batches enqueued, and those whose findings are recorded.
    pub batches: u32,
    pub batches_done: u32,
    /// Every batch reported (`false` on a finished pass: given up waiting).
    pub complete: bool,
    /// The recorded batches' findings, summed.
    pub report: ReconcileReport,
}

/// The pass under way and the last one finished.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reconciliation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<PassProgress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<PassProgress>,
}

/// What one step of the reconciler did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileStep {
    /// Resources enqueued by this step.
    pub enqueued: u64,
    /// Unknown outcomes of ended requests resolved by this step.
    pub outcomes_resolved: usize,
    #[serde(flatten)]
    pub state: Reconciliation,
}

pub struct Reconciler {
    pub resources: Arc<Resources>,
    /// Where the batches go: the worker's queue.
    pub queue: Arc<dyn Queue>,
    /// Resources read per page of the listing ([`PAGE`]) and sent per message ([`BATCH`]).
    pub page: usize,
    pub batch: usize,
    /// How long a listed pass waits for its batches before the next one starts anyway.
    pub abandon_after: Duration,
    /// Resolves actions whose outcome stayed unknown, a bounded number per step.
    pub outcomes: Option<Arc<dyn UnknownOutcomes>>,
}

/// How many unknown outcomes one step tries to resolve.
const OUTCOMES_PER_PASS: usize = 100;

fn corrupt(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("the reconciliation's {what}: {e}"))
}

fn to_value<T: Serialize>(value: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(|e| corrupt("record", e))
}

impl Reconciler {
    /// One step: goes on with the pass under way (listing and enqueueing the rest of its
    /// resources), or, when its batches are all verified (or it waited too long), closes
    /// it and starts the next. A pass whose batches are still being verified is left to
    /// them.
    pub async fn run_once(&self) -> Result<ReconcileStep, StoreError> {
        let state = &self.resources.state;
        let now = self.resources.clock.now();
        let mut step = ReconcileStep::default();
        let (mut pass, mut version) = match state.get(TABLE, "pass").await? {
            None => self.start(now, None).await?,
            Some(found) => {
                let pass: Pass =
                    serde_json::from_value(found.value).map_err(|e| corrupt("pass", e))?;
                if pass.listing == PassListing::Done {
                    let progress = progress(state.as_ref(), &pass).await?;
                    let waited = pass.listed_at.map_or(Duration::ZERO, |at| {
                        (now - at).try_into().unwrap_or(Duration::ZERO)
                    });
                    if !progress.complete && waited < self.abandon_after {
                        step.state = Reconciliation {
                            current: Some(progress),
                            last: last(state.as_ref()).await?,
                        };
                        return self.resolve_outcomes(step).await;
                    }
                    self.finish(progress, now).await?;
                    self.start(now, Some(found.version)).await?
                } else {
                    (pass, found.version)
                }
            }
        };
        while pass.listing != PassListing::Done {
            let status = match pass.listing {
                PassListing::Drifted => ResourceStatus::Drifted,
                _ => ResourceStatus::Ready,
            };
            let page = self
                .resources
                .store
                .list(&ResourceQuery {
                    status: Some(status),
                    cursor: pass.cursor.clone(),
                    limit: self.page.max(1),
                    ..Default::default()
                })
                .await?;
            let ids: Vec<String> = page.items.into_iter().map(|r| r.id).collect();
            for chunk in ids.chunks(self.batch.max(1)) {
                let message = WorkMessage::Verify(VerifyBatch {
                    pass: pass.id.clone(),
                    batch: pass.batches,
                    resources: chunk.to_vec(),
                });
                self.queue.send(&message.body(), Duration::ZERO).await?;
                pass.batches += 1;
                pass.resources += chunk.len() as u64;
                step.enqueued += chunk.len() as u64;
            }
            match page.next {
                Some(cursor) => pass.cursor = Some(cursor),
                None => {
                    pass.cursor = None;
                    pass.listing = match pass.listing {
                        PassListing::Drifted => PassListing::Ready,
                        _ => {
                            pass.listed_at = Some(self.resources.clock.now());
                            PassListing::Done
                        }
                    };
                }
            }
            // Recorded after the page's batches went: stopped in between, the pass sends
            // that page again under the same batch numbers, which count once.
            version = match state
                .put(TABLE, "pass", &to_value(&pass)?, Some(version))
                .await
            {
                Ok(v) => v,
                Err(StoreError::VersionConflict { .. }) => {
                    tracing::info!(pass = %pass.id, "another reconciler goes on with the pass");
                    break;
                }
                Err(e) => return Err(e),
            };
        }
        step.state = Reconciliation {
            current: Some(progress(state.as_ref(), &pass).await?),
            last: last(state.as_ref()).await?,
        };
        self.resolve_outcomes(step).await
    }

    async fn resolve_outcomes(&self, mut step: ReconcileStep) -> Result<ReconcileStep, StoreError> {
        if let Some(outcomes) = &self.outcomes {
            step.outcomes_resolved = outcomes.resolve_pending(OUTCOMES_PER_PASS).await?;
        }
        Ok(step)
    }

    /// A new pass, written over the one of version `replacing` (none: the first).
    async fn start(
        &self,
        now: OffsetDateTime,
        replacing: Option<u64>,
    ) -> Result<(Pass, u64), StoreError> {
        let pass = Pass {
            id: uuid::Uuid::now_v7().to_string(),
            started_at: now,
            listing: PassListing::Drifted,
            cursor: None,
            batches: 0,
            resources: 0,
            listed_at: None,
        };
        let version = self
            .resources
            .state
            .put(TABLE, "pass", &to_value(&pass)?, replacing)
            .await?;
        tracing::info!(pass = %pass.id, "reconciliation pass started");
        Ok((pass, version))
    }

    /// Keeps a finished pass's figures as the last pass and removes its batches' records.
    async fn finish(
        &self,
        mut progress: PassProgress,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let state = &self.resources.state;
        progress.finished_at = Some(now);
        if !progress.complete {
            tracing::warn!(
                pass = %progress.id,
                batches = progress.batches,
                reported = progress.batches_done,
                "gave up waiting for the reconciliation pass's batches"
            );
        }
        tracing::info!(
            pass = %progress.id,
            checked = progress.report.checked,
            drifted = progress.report.drifted,
            recovered = progress.report.recovered,
            skipped = progress.report.skipped,
            failed = progress.report.failed,
            "reconciliation pass finished"
        );
        let value = to_value(&progress)?;
        loop {
            let expected = state.get(TABLE, "last").await?.map(|v| v.version);
            match state.put(TABLE, "last", &value, expected).await {
                Ok(_) => break,
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        let prefix = format!("{}/", progress.id);
        loop {
            let page = state.list(BATCHES, &prefix, 1000).await?;
            if page.is_empty() {
                return Ok(());
            }
            for (key, _) in page {
                state.forget(BATCHES, &key).await?;
            }
        }
    }

    /// Takes a step every `every` until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, every: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { return },
            }
            match self.run_once().await {
                Ok(step) if step.enqueued > 0 => {
                    tracing::info!(
                        enqueued = step.enqueued,
                        "reconciliation enqueued resources"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the reconciliation step failed"),
            }
        }
    }
}

/// The last pass finished.
async fn last(state: &dyn StateStore) -> Result<Option<PassProgress>, StoreError> {
    match state.get(TABLE, "last").await? {
        Some(found) => serde_json::from_value(found.value)
            .map(Some)
            .map_err(|e| corrupt("last pass", e)),
        None => Ok(None),
    }
}

/// The pass under way and the last one finished.
pub async fn reconciliation(state: &dyn StateStore) -> Result<Reconciliation, StoreError> {
    let current = match state.get(TABLE, "pass").await? {
        Some(found) => {
            let pass: Pass = serde_json::from_value(found.value).map_err(|e| corrupt("pass", e))?;
            Some(progress(state, &pass).await?)
        }
        None => None,
    };
    Ok(Reconciliation {
        current,
        last: last(state).await?,
    })
}

/// A pass's figures: its batches' findings summed.
async fn progress(state: &dyn StateStore, pass: &Pass) -> Result<PassProgress, StoreError> {
    let reported = state
        .list(BATCHES, &format!("{}/", pass.id), pass.batches as usize + 1)
        .await?;
    let mut report = ReconcileReport::default();
    for (_, found) in &reported {
        let batch: ReconcileReport =
            serde_json::from_value(found.value.clone()).map_err(|e| corrupt("batch", e))?;
        report.add(&batch);
    }
    let batches_done = u32::try_from(reported.len()).unwrap_or(u32::MAX);
    Ok(PassProgress {
        id: pass.id.clone(),
        started_at: pass.started_at,
        listing: pass.listing,
        listed_at: pass.listed_at,
        finished_at: None,
        enqueued: pass.resources,
        batches: pass.batches,
        batches_done,
        complete: pass.listing == PassListing::Done && batches_done >= pass.batches,
        report,
    })
}

/// The worker's side of a pass: verifies the resources of a batch, at most `concurrency`
/// at a time (and the verifier's bound per target host), and records what it found once.
pub struct Checks {
    pub resources: Arc<Resources>,
    pub verifier: Arc<Verifier>,
    pub concurrency: usize,
}

impl Checks {
    /// Verifies a batch's resources still ready or drifted (another status, or gone, is
    /// skipped) and records its findings under the batch's number, unless a delivery
    /// before this one did.
    pub async fn run(&self, batch: &VerifyBatch) -> Result<ReconcileReport, StoreError> {
        let key = format!("{}/{:08}", batch.pass, batch.batch);
        let state = &self.resources.state;
        if let Some(found) = state.get(BATCHES, &key).await? {
            return serde_json::from_value(found.value).map_err(|e| corrupt("batch", e));
        }
        let slots = Arc::new(tokio::sync::Semaphore::new(self.concurrency.max(1)));
        let mut running = tokio::task::JoinSet::new();
        for id in &batch.resources {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let (resources, verifier, id) =
                (self.resources.clone(), self.verifier.clone(), id.clone());
            running.spawn(async move {
                let outcome = match resources.store.get(&id).await {
                    Ok(Some(resource))
                        if matches!(
                            resource.status,
                            ResourceStatus::Ready | ResourceStatus::Drifted
                        ) =>
                    {
                        check(&resources, &verifier, &resource, "reconciler")
                            .await
                            .map(|(recorded, _)| recorded)
                    }
                    Ok(_) => Ok(Recorded::Skipped),
                    Err(e) => Err(ResourceError::Store(e)),
                };
                drop(permit);
                outcome
            });
        }
        let mut report = ReconcileReport::default();
        while let Some(done) = running.join_next().await {
            match done {
                Ok(Ok(recorded)) => report.count(recorded),
                Ok(Err(ResourceError::Store(e))) => {
                    // The batch comes back: what it recorded so far is recorded again
                    // (verification is idempotent).
                    running.abort_all();
                    return Err(e);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not record a verification");
                    report.count(Recorded::Failed);
                }
                Err(e) => {
                    tracing::error!(error = %e, "a verification panicked");
                    report.count(Recorded::Failed);
                }
            }
        }
        state.put_once(BATCHES, &key, &to_value(&report)?).await?;
        crate::metrics::count(
            crate::metrics::RESOURCES_CHECKED,
            &[],
            report.checked as u64,
        );
        crate::metrics::count(crate::metrics::DRIFT_FOUND, &[], report.drifted as u64);
        Ok(report)
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
