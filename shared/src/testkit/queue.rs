//! The behaviour every `Queue` adapter must have (SQS semantics). The queue under test
//! must dead-letter after exactly 2 receives.

use std::time::Duration;

use super::TimeControl;
use crate::ports::{Queue, StoreError};

pub const MAX_RECEIVES: u32 = 2;

/// Where the service under test is known to depart from SQS's documented behaviour, and
/// the suite leaves that step out.
#[derive(Debug, Default)]
pub struct Departures {
    /// A delete by the receipt of an earlier delivery deletes the message (moto).
    pub stale_receipt_deletes: bool,
}

pub async fn run(queue: &dyn Queue, time: &dyn TimeControl) {
    run_with(queue, time, &Departures::default()).await;
}

pub async fn run_with(queue: &dyn Queue, time: &dyn TimeControl, departures: &Departures) {
    let visibility = Duration::from_secs(2);

    // Delivered once, then invisible for the visibility timeout.
    let id = queue.send("first", Duration::ZERO).await.unwrap();
    let got = queue.receive(10, visibility).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (
            got[0].id.as_str(),
            got[0].body.as_str(),
            got[0].receive_count
        ),
        (id.as_str(), "first", 1)
    );
    assert!(
        queue.receive(10, visibility).await.unwrap().is_empty(),
        "invisible while being worked on"
    );

    // Not deleted in time: delivered again, counted, with a new receipt.
    time.advance(visibility + Duration::from_millis(500)).await;
    let again = queue.receive(10, visibility).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
    assert_ne!(again[0].receipt, got[0].receipt);
    // The stale receipt of an earlier delivery deletes nothing: an error, or (as SQS
    // documents) an accepted call that leaves the message be. The dead-lettering below
    // shows the message is still there.
    if !departures.stale_receipt_deletes {
        assert!(
            matches!(
                queue.delete(&got[0].receipt).await,
                Ok(()) | Err(StoreError::NotFound)
            ),
            "a stale receipt is refused or ignored"
        );
    }

    // Received MAX_RECEIVES times and never deleted: dead-lettered on the next receive.
    time.advance(visibility + Duration::from_millis(500)).await;
    assert!(
        queue.receive(10, visibility).await.unwrap().is_empty(),
        "exhausted messages are not delivered"
    );
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(
        dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["first"]
    );

    // Deleted messages are gone; released ones (visibility zero) come back at once.
    queue.send("second", Duration::ZERO).await.unwrap();
    let m = queue.receive(1, visibility).await.unwrap().remove(0);
    queue
        .change_visibility(&m.receipt, Duration::ZERO)
        .await
        .unwrap();
    let m = queue.receive(1, visibility).await.unwrap().remove(0);
    assert_eq!(m.body, "second");
    queue.delete(&m.receipt).await.unwrap();
    for bogus in ["", "not-a-receipt", &format!("{}x", m.receipt)] {
        assert!(
            matches!(queue.delete(bogus).await, Err(StoreError::NotFound)),
            "a receipt the queue never issued deletes nothing: {bogus:?}"
        );
        assert!(matches!(
            queue.change_visibility(bogus, Duration::ZERO).await,
            Err(StoreError::NotFound)
        ));
    }
    time.advance(visibility + Duration::from_millis(500)).await;
    assert!(
        queue.receive(10, visibility).await.unwrap().is_empty(),
        "a deleted message never returns"
    );

    // A delayed message waits; `max` bounds a receive.
    queue.send("later", Duration::from_secs(1)).await.unwrap();
    assert!(queue.receive(10, visibility).await.unwrap().is_empty());
    time.advance(Duration::from_millis(1500)).await;
    for n in 0..3 {
        queue.send(&format!("n{n}"), Duration::ZERO).await.unwrap();
    }
    let batch = queue.receive(2, visibility).await.unwrap();
    assert_eq!(batch.len(), 2);
    let rest = queue.receive(10, visibility).await.unwrap();
    assert_eq!(batch.len() + rest.len(), 4, "every message delivered once");
}
