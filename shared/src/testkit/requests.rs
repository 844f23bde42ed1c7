//! The behaviour every `RequestStore` adapter must have.

use serde_json::json;
use time::OffsetDateTime;

use crate::access::Principal;
use crate::ports::{Created, RequestQuery, RequestStore, StoreError};
use crate::requests::model::{
    EventDetail, EventKind, Request, RequestEvent, RequestId, RequestStatus, TargetKind, Ticket,
};

/// The handoff message the suites pass to `create` (a store with an outbox sends it).
pub const HANDOFF: &str = r#"{"requestId":"suite"}"#;

/// A submitted request for the suites (and adapter-specific tests) to store.
pub fn request(
    sub: &str,
    owner: &str,
    target: &str,
    at: OffsetDateTime,
    key: Option<&str>,
) -> Request {
    let requester = Principal {
        sub: sub.to_owned(),
        email: Some(format!("{sub}@example.com")),
        groups: vec![],
    };
    let fields = json!({"name": "x"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    Request {
        idempotency_key: key.map(str::to_owned),
        fingerprint: "f".to_owned(),
        ..Request::submitted(
            TargetKind::Item,
            target,
            "v1",
            owner,
            &requester,
            fields,
            at,
        )
    }
}

/// The event of `r` at its current version.
pub fn event(r: &Request, kind: EventKind) -> RequestEvent {
    RequestEvent {
        request_id: r.id,
        seq: r.version,
        at: r.updated_at,
        actor: r.requester.sub.clone(),
        kind,
        status: r.status,
        component: None,
        message: None,
        detail: Default::default(),
    }
}

/// Runs every check; panics with a description on the first failure.
pub async fn run(store: &dyn RequestStore) {
    let t0 = OffsetDateTime::now_utc();
    let at = |ms: i64| t0 + time::Duration::milliseconds(ms);

    // Create and read back.
    let first = request("alice", "database", "postgres", at(0), Some("key-1"));
    assert!(matches!(
        store
            .create(&first, &event(&first, EventKind::Submitted), HANDOFF)
            .await
            .unwrap(),
        Created::New { .. }
    ));
    assert_eq!(
        store.get(&first.id).await.unwrap().as_ref(),
        Some(&first),
        "get returns what create stored"
    );
    assert_eq!(
        store.get(&RequestId::new_at(at(1))).await.unwrap(),
        None,
        "an unknown id is None"
    );

    // The same requester and idempotency key return the stored request and write nothing.
    let retry = request("alice", "database", "postgres", at(5), Some("key-1"));
    assert_eq!(
        store
            .create(&retry, &event(&retry, EventKind::Submitted), HANDOFF)
            .await
            .unwrap(),
        Created::Existing(Box::new(first.clone()))
    );
    assert_eq!(
        store.get(&retry.id).await.unwrap(),
        None,
        "an idempotent retry stores nothing"
    );
    // Another requester may use the same key.
    let other = request("bob", "messaging", "sqs-queue", at(10), Some("key-1"));
    assert!(matches!(
        store
            .create(&other, &event(&other, EventKind::Submitted), HANDOFF)
            .await
            .unwrap(),
        Created::New { .. }
    ));

    // Updates need the previous version, and append to the timeline atomically.
    let mut next = first.clone();
    next.status = RequestStatus::InProgress;
    next.version = 2;
    next.updated_at = at(20);
    store
        .update(&next, &event(&next, EventKind::FulfillmentStarted))
        .await
        .unwrap();
    let stale = next.clone();
    match store
        .update(&stale, &event(&stale, EventKind::FulfillmentStarted))
        .await
    {
        Err(StoreError::VersionConflict { .. }) => {}
        other => panic!("a stale update must be a version conflict, got {other:?}"),
    }
    // Notes go on the timeline without changing the request; several written at once
    // (components running side by side) neither conflict nor lose each other.
    // Each note is told apart by its component and message; a component note keeps both.
    let noted = |name: &str| RequestEvent {
        component: Some(name.to_owned()),
        message: Some(format!("{name} happened")),
        ..event(&next, EventKind::ComponentStarted)
    };
    let (two, one) = ([noted("note-a1"), noted("note-a2")], [noted("note-b")]);
    let (a, b) = tokio::join!(store.append(&first.id, &two), store.append(&first.id, &one));
    a.unwrap();
    b.unwrap();
    assert_eq!(
        store.get(&first.id).await.unwrap().map(|r| r.version),
        Some(2),
        "a note does not change the request"
    );
    assert!(matches!(
        store
            .append(&RequestId::new_at(at(2)), &[noted("nowhere")])
            .await,
        Err(StoreError::NotFound)
    ));
    let mut ticketed = next.clone();
    ticketed.status = RequestStatus::AwaitingFulfillment;
    ticketed.ticket = Some(Ticket {
        key: "DBRE-7".to_owned(),
        url: "https://jira.example/browse/DBRE-7".to_owned(),
    });
    ticketed.version = 3;
    store
        .update(
            &ticketed,
            &RequestEvent {
                component: None,
                detail: EventDetail::ticket(Ticket {
                    key: "DBRE-7".to_owned(),
                    url: "https://jira.example/browse/DBRE-7".to_owned(),
                }),
                ..event(&ticketed, EventKind::TicketCreated)
            },
        )
        .await
        .unwrap();
    let timeline = store.events(&first.id).await.unwrap();
    let mut kinds: Vec<&str> = timeline
        .iter()
        .map(|e| e.component.as_deref().unwrap_or(e.kind.as_str()))
        .collect();
    // The two appends ran at the same time: either may come first, each in its order.
    if kinds.get(2) == Some(&"note-b") {
        kinds[2..5].rotate_left(1);
    }
    assert_eq!(
        kinds,
        [
            "submitted",
            "fulfillment_started",
            "note-a1",
            "note-a2",
            "note-b",
            "ticket_created"
        ],
        "the timeline is in order"
    );

    // Retention replaces a timeline with one marker; again (a retried step) the same.
    let marker = RequestEvent {
        actor: "retention".to_owned(),
        kind: EventKind::TimelineArchived,
        detail: crate::requests::model::EventDetail {
            archive: Some("file:///exports/timelines/x.jsonl".to_owned()),
            ..Default::default()
        },
        ..event(&first, EventKind::TimelineArchived)
    };
    for _ in 0..2 {
        store.replace_timeline(&first.id, &marker).await.unwrap();
        let left = store.events(&first.id).await.unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].kind, EventKind::TimelineArchived);
        assert_eq!(left[0].seq, 1);
        assert_eq!(left[0].detail, marker.detail);
    }
    assert!(
        store.get(&first.id).await.unwrap().is_some(),
        "the request stays"
    );
    let unknown = RequestId::new_at(at(99));
    assert!(matches!(
        store.replace_timeline(&unknown, &marker).await,
        Err(StoreError::NotFound)
    ));
    let note = &timeline.iter().find(|e| e.component.is_some()).unwrap();
    assert_eq!(
        note.kind,
        EventKind::ComponentStarted,
        "a note keeps its kind"
    );
    assert_eq!(
        timeline[5].detail.ticket.as_ref().map(|t| t.key.as_str()),
        Some("DBRE-7"),
        "an entry keeps its detail"
    );
    let seqs: Vec<u64> = timeline.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5, 6],
        "the store numbers events in order"
    );
    assert_eq!(
        store.find_by_ticket("DBRE-7").await.unwrap().map(|r| r.id),
        Some(first.id)
    );
    assert_eq!(store.find_by_ticket("DBRE-8").await.unwrap(), None);
    let mut missing = request("carol", "x", "y", at(30), None);
    missing.version = 2;
    assert!(matches!(
        store
            .update(&missing, &event(&missing, EventKind::Completed))
            .await,
        Err(StoreError::NotFound)
    ));

    // Listing: filters, newest first, cursor pagination without gaps or repeats.
    for i in 0..7 {
        let r = request(
            "dave",
            "compute",
            if i % 2 == 0 { "eks" } else { "ec2" },
            at(100 + i),
            None,
        );
        store
            .create(&r, &event(&r, EventKind::Submitted), HANDOFF)
            .await
            .unwrap();
    }
    let mine = RequestQuery {
        requester: Some("dave".to_owned()),
        limit: 3,
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut query = mine.clone();
    loop {
        let page = store.list(&query).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|r| r.created_at));
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "every request exactly once across pages");
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");
    let eks = store
        .list(&RequestQuery {
            requester: Some("dave".to_owned()),
            target: Some("eks".to_owned()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(eks.items.len(), 4);
    let awaiting = store
        .list(&RequestQuery {
            status: Some(RequestStatus::AwaitingFulfillment),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        awaiting.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [first.id]
    );
    let owned = store
        .list(&RequestQuery {
            owner: Some("messaging".to_owned()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        owned.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [other.id]
    );

    // By creation time: a span includes its start and excludes its end, and pages within
    // it. These ids sit exactly on whole seconds (the least id of each), so the span's
    // edges are met exactly.
    let second = |s: i64| t0 - time::Duration::seconds(s);
    let mut by_time = Vec::new();
    for s in (4..=10).rev() {
        let mut r = request("erin", "compute", "eks", second(s), None);
        r.id = RequestId::floor(second(s));
        store
            .create(&r, &event(&r, EventKind::Submitted), HANDOFF)
            .await
            .unwrap();
        by_time.push(r.id);
    }
    let span = RequestQuery {
        requester: Some("erin".to_owned()),
        created: Some(second(8)..second(5)),
        limit: 2,
        ..Default::default()
    };
    let first_page = store.list(&span).await.unwrap();
    assert_eq!(
        first_page.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [by_time[4], by_time[3]],
        "newest first from below the span's end"
    );
    let rest = store
        .list(&RequestQuery {
            cursor: first_page.next.clone(),
            ..span.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [by_time[2]],
        "the span's start is in it, and nothing older"
    );
    assert_eq!(rest.next, None);
    let beyond = store
        .list(&RequestQuery {
            cursor: Some(RequestId::floor(second(20)).to_string()),
            ..span
        })
        .await
        .unwrap();
    assert!(beyond.items.is_empty(), "a cursor below the span");

    // The list of all requests (which a store may keep in several partitions): every one
    // exactly once, newest first, across pages of any size, filtered or not.
    let mut spread = Vec::new();
    for i in 0..30 {
        let r = request("frank", "platform", "spread", at(200 + i), None);
        store
            .create(&r, &event(&r, EventKind::Submitted), HANDOFF)
            .await
            .unwrap();
        spread.push(r.id.to_string());
    }
    spread.reverse();
    for limit in [1, 4, 7, 30] {
        let filtered = every_page(
            store,
            RequestQuery {
                target: Some("spread".to_owned()),
                limit,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            filtered, spread,
            "all requests to one target, pages of {limit}"
        );
    }
    let all = every_page(
        store,
        RequestQuery {
            limit: 6,
            ..Default::default()
        },
    )
    .await;
    assert!(
        all.windows(2).all(|w| w[0] > w[1]),
        "newest first, once each"
    );
    assert!(spread.iter().all(|id| all.contains(id)));
}

/// The ids of every page of `query`, following its cursors.
async fn every_page(store: &dyn RequestStore, mut query: RequestQuery) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let page = store.list(&query).await.unwrap();
        assert!(page.items.len() <= query.limit);
        ids.extend(page.items.iter().map(|r| r.id.to_string()));
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => return ids,
        }
    }
}
