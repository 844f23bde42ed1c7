//! The reconciliation pass's behaviour on a resource store, a state store and a queue:
//! it enqueues every ready and drifted resource once, in numbered batches, drifted first;
//! a pass stopped by a failure resumes where it was, not from the start; a batch delivered
//! twice counts once; a pass closes when its batches are all reported, and keeps its
//! figures as the last pass while the next one starts. Run against the embedded adapters
//! and against DynamoDB and SQS on moto.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use time::OffsetDateTime;

use crate::adapters::local::{LocalCatalog, LocalSecrets};
use crate::bundle::task::{VerifyBatch, WorkMessage};
use crate::catalog::snapshot::CatalogSnapshot;
use crate::fulfillment::engine::Engine;
use crate::ports::{Clock, Message, Queue, ResourceStore, StateStore, StoreError, SystemClock};
use crate::requests::model::RequestId;
use crate::resources::model::{ChangeKind, Resource, ResourceStatus};
use crate::resources::reconcile::{Checks, PassListing, Reconciler, reconciliation};
use crate::resources::service::{DEFAULT_LEASE, Resources};
use crate::resources::verify::Verifier;

/// A queue that refuses every send after the first `allowed`, as a reconciler stopped
/// mid-pass would have sent no more.
struct Failing {
    inner: Arc<dyn Queue>,
    allowed: AtomicUsize,
}

#[async_trait]
impl Queue for Failing {
    async fn send(&self, body: &str, delay: Duration) -> Result<String, StoreError> {
        let left = self.allowed.load(Ordering::SeqCst);
        if left == 0 {
            return Err(StoreError::Unavailable("the queue is down".to_owned()));
        }
        self.allowed.store(left - 1, Ordering::SeqCst);
        self.inner.send(body, delay).await
    }
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Message>, StoreError> {
        self.inner.receive(max, visibility).await
    }
    async fn delete(&self, receipt: &str) -> Result<(), StoreError> {
        self.inner.delete(receipt).await
    }
    async fn change_visibility(&self, receipt: &str, v: Duration) -> Result<(), StoreError> {
        self.inner.change_visibility(receipt, v).await
    }
    async fn dead_letters(&self, limit: usize) -> Result<Vec<Message>, StoreError> {
        self.inner.dead_letters(limit).await
    }
}

fn resource(n: usize, status: ResourceStatus) -> Resource {
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000 + n as i64).unwrap();
    Resource {
        status,
        // Not in the (empty) catalog: verification skips it without calling anything.
        ..Resource::provisioned(
            &format!("rec-{n:03}"),
            "gone",
            "v1",
            "team-data",
            "dev",
            RequestId::new_at(at),
            at,
        )
    }
}

/// Every verify batch on the queue, taken off it.
async fn drain(queue: &dyn Queue) -> Vec<VerifyBatch> {
    let mut batches = Vec::new();
    for _ in 0..50 {
        let received = queue.receive(10, Duration::from_secs(60)).await.unwrap();
        if received.is_empty() {
            break;
        }
        for message in received {
            match WorkMessage::parse(&message.body) {
                Ok(WorkMessage::Verify(batch)) => batches.push(batch),
                other => panic!("not a verify batch: {other:?}"),
            }
            queue.delete(&message.receipt).await.unwrap();
        }
    }
    batches
}

/// Runs the suite; `queue` must be empty and the stores hold no `rec-` resources.
pub async fn run(store: Arc<dyn ResourceStore>, state: Arc<dyn StateStore>, queue: Arc<dyn Queue>) {
    // 26 resources: 4 drifted, 20 ready, 2 deleted (never enqueued).
    let mut expected = BTreeSet::new();
    for n in 0..26 {
        let status = match n {
            0..4 => ResourceStatus::Drifted,
            4..24 => ResourceStatus::Ready,
            _ => ResourceStatus::Deleted,
        };
        let r = resource(n, status);
        let change = r.change(ChangeKind::Provisioned, "suite");
        assert!(store.create(&r, &change).await.unwrap());
        if status != ResourceStatus::Deleted {
            expected.insert(r.id);
        }
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let resources = Arc::new(Resources {
        store: store.clone(),
        state: state.clone(),
        catalog: Arc::new(LocalCatalog::new(CatalogSnapshot::empty())),
        clock: clock.clone(),
        lease: DEFAULT_LEASE,
        notices: None,
    });
    let reconciler = |queue: Arc<dyn Queue>| Reconciler {
        resources: resources.clone(),
        queue,
        page: 8,
        batch: 3,
        abandon_after: Duration::from_secs(3600),
        outcomes: None,
    };

    // Drifted: one page of 4 (batches 0-1). Ready: pages of 8 (batches 2-4, 5-7) and 4
    // (8-9). The queue takes 6 sends: the drifted page's and the first ready page's five,
    // then the second ready page's first before it fails.
    let failing = Arc::new(Failing {
        inner: queue.clone(),
        allowed: AtomicUsize::new(6),
    });
    let stopped = reconciler(failing).run_once().await;
    assert!(
        matches!(stopped, Err(StoreError::Unavailable(_))),
        "{stopped:?}"
    );
    let sent_before = drain(queue.as_ref()).await;
    assert_eq!(sent_before.len(), 6);
    let progress = reconciliation(state.as_ref())
        .await
        .unwrap()
        .current
        .unwrap();
    assert_eq!(progress.listing, PassListing::Ready, "{progress:?}");
    assert_eq!(
        (progress.batches, progress.enqueued),
        (5, 12),
        "{progress:?}"
    );
    assert!(!progress.complete);

    // Resumed: the second ready page again (under the same numbers), then the third; the
    // pages before the stop are not sent again.
    let step = reconciler(queue.clone()).run_once().await.unwrap();
    assert_eq!(step.enqueued, 12, "{step:?}");
    let current = step.state.current.clone().unwrap();
    assert_eq!(current.id, progress.id, "the same pass goes on");
    assert_eq!(current.listing, PassListing::Done);
    assert_eq!((current.batches, current.enqueued), (10, 24), "{current:?}");
    let sent_after = drain(queue.as_ref()).await;
    assert_eq!(sent_after.len(), 5);
    let mut by_number: BTreeMap<u32, VerifyBatch> = BTreeMap::new();
    for batch in sent_before.iter().chain(&sent_after) {
        assert_eq!(batch.pass, current.id);
        assert!(batch.resources.len() <= 3);
        if let Some(earlier) = by_number.insert(batch.batch, batch.clone()) {
            // Only the batch sent just before the stop goes again, the same.
            assert_eq!(batch.batch, 5);
            assert_eq!(earlier, *batch);
        }
    }
    assert_eq!(
        by_number.keys().copied().collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    let enqueued: Vec<&String> = by_number.values().flat_map(|b| &b.resources).collect();
    assert_eq!(enqueued.len(), 24, "every resource once");
    assert_eq!(
        enqueued.iter().copied().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    // Drifted first.
    for batch in by_number.values().take(2) {
        for id in &batch.resources {
            let n: usize = id.trim_start_matches("rec-").parse().unwrap();
            assert!(n < 4, "{id} in an early batch is not drifted");
        }
    }

    // Listed, its batches not yet verified: a step leaves the pass to them.
    let waiting = reconciler(queue.clone()).run_once().await.unwrap();
    assert_eq!(waiting.enqueued, 0);
    assert_eq!(waiting.state.current.as_ref().unwrap().id, current.id);
    assert!(drain(queue.as_ref()).await.is_empty());

    // The worker's side: every batch once, the first twice (a redelivery).
    let engine = Engine::standard(
        None,
        &Default::default(),
        state.clone(),
        Arc::new(LocalSecrets::from_pairs([])),
        clock.clone(),
    )
    .unwrap();
    let checks = Checks {
        resources: resources.clone(),
        verifier: Arc::new(Verifier {
            engine: Arc::new(engine),
            system: crate::fulfillment::SystemInfo {
                region: "r".to_owned(),
                stage: "s".to_owned(),
                environment: Default::default(),
            },
            catalog: resources.catalog.clone(),
            store: store.clone(),
            per_host: Default::default(),
        }),
        concurrency: 4,
    };
    for batch in by_number.values() {
        let report = checks.run(batch).await.unwrap();
        assert_eq!(report.checked, batch.resources.len());
        assert_eq!(report.skipped, batch.resources.len(), "not in the catalog");
    }
    let again = checks.run(&by_number[&0]).await.unwrap();
    assert_eq!(again.checked, by_number[&0].resources.len());
    let verified = reconciliation(state.as_ref())
        .await
        .unwrap()
        .current
        .unwrap();
    assert!(verified.complete, "{verified:?}");
    assert_eq!(verified.batches_done, 10);
    assert_eq!(
        verified.report.checked, 24,
        "a batch delivered twice counts once"
    );

    // The next step closes the pass and starts another.
    let next = reconciler(queue.clone()).run_once().await.unwrap();
    let last = next.state.last.clone().unwrap();
    assert_eq!(last.id, current.id);
    assert!(last.complete && last.finished_at.is_some(), "{last:?}");
    assert_eq!(last.report.checked, 24);
    let new = next.state.current.clone().unwrap();
    assert_ne!(new.id, last.id);
    assert_eq!(new.enqueued, 24);
    assert_eq!(drain(queue.as_ref()).await.len(), 10);
    // The closed pass's batch records are gone.
    assert!(
        state
            .list("reconcile-batches", &format!("{}/", last.id), 100)
            .await
            .unwrap()
            .is_empty()
    );
    let shown = reconciliation(state.as_ref()).await.unwrap();
    assert_eq!(shown.last.unwrap().report, last.report);
    assert_eq!(
        serde_json::to_value(shown.current.unwrap().listing).unwrap(),
        json!("done")
    );
}
