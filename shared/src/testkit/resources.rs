//! The resource store's behaviour: idempotent creation, conditional updates with their
//! history, filtered and paginated listing, tombstones.

use serde_json::{Map, json};
use time::OffsetDateTime;

use crate::ports::{ResourceQuery, ResourceStore, StoreError};
use crate::requests::model::RequestId;
use crate::resources::model::{ChangeKind, Lock, Resource, ResourceChange, ResourceStatus};

fn resource(id: &str, owner: &str, item: &str) -> Resource {
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    Resource {
        inputs: json!({"size": 1}).as_object().cloned().unwrap(),
        ..Resource::provisioned(
            id,
            item,
            "v1",
            owner,
            "dev",
            RequestId::new_at(OffsetDateTime::now_utc()),
            at,
        )
    }
}

fn change(r: &Resource, kind: ChangeKind) -> ResourceChange {
    ResourceChange {
        outputs: None,
        ..r.change(kind, "worker")
    }
}

pub async fn run(store: &dyn ResourceStore) {
    assert_eq!(store.get("r-1").await.unwrap(), None);
    let first = resource("r-1", "team-data", "postgres");
    assert!(
        store
            .create(&first, &change(&first, ChangeKind::Provisioned))
            .await
            .unwrap()
    );
    // Recording again (a redelivered message) writes nothing.
    let mut other = first.clone();
    other.inputs = Map::new();
    assert!(
        !store
            .create(&other, &change(&other, ChangeKind::Provisioned))
            .await
            .unwrap()
    );
    assert_eq!(store.get("r-1").await.unwrap().unwrap(), first);

    // A lock is a conditional write: the writer that read version 1 wins, the other
    // conflicts and changes nothing.
    let mut locked = first.clone();
    locked.version = 2;
    locked.lock = Some(Lock {
        holder: "alice".to_owned(),
        request_id: RequestId::new_at(first.created_at),
        acquired_at: first.created_at,
        expires_at: first.created_at + time::Duration::minutes(10),
    });
    store.update(&locked, None).await.unwrap();
    let mut late = first.clone();
    late.version = 2;
    late.status = ResourceStatus::Deleting;
    assert!(matches!(
        store.update(&late, None).await,
        Err(StoreError::VersionConflict { .. })
    ));
    assert_eq!(store.get("r-1").await.unwrap().unwrap(), locked);

    // A change with its history entry.
    let mut updated = locked.clone();
    updated.version = 3;
    updated.serial = 2;
    updated.lock = None;
    updated.inputs = json!({"size": 2}).as_object().cloned().unwrap();
    store
        .update(&updated, Some(&change(&updated, ChangeKind::Updated)))
        .await
        .unwrap();
    let history = store.history("r-1").await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|c| (c.serial, c.kind))
            .collect::<Vec<_>>(),
        vec![(1, ChangeKind::Provisioned), (2, ChangeKind::Updated)]
    );
    assert_eq!(history[1].inputs.as_ref().unwrap()["size"], 2);
    let mut missing = resource("r-none", "t", "i");
    missing.version = 2;
    assert!(matches!(
        store.update(&missing, None).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.history("r-none").await.unwrap().is_empty());

    // Listing: newest first, filters, pages, tombstones only when asked for.
    for (id, owner, item, status) in [
        ("r-2", "team-data", "redis", ResourceStatus::Drifted),
        ("r-3", "team-web", "postgres", ResourceStatus::Ready),
        ("r-4", "team-data", "postgres", ResourceStatus::Deleted),
    ] {
        let mut r = resource(id, owner, item);
        r.status = status;
        store
            .create(&r, &change(&r, ChangeKind::Provisioned))
            .await
            .unwrap();
    }
    let ids = |page: &crate::ports::Page<Resource>| {
        page.items.iter().map(|r| r.id.clone()).collect::<Vec<_>>()
    };
    let all = store
        .list(&ResourceQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&all), ["r-3", "r-2", "r-1"]);
    let data = store
        .list(&ResourceQuery {
            owner: Some("team-data".to_owned()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&data), ["r-2", "r-1"]);
    let drifted = store
        .list(&ResourceQuery {
            status: Some(ResourceStatus::Drifted),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&drifted), ["r-2"]);
    let deleted = store
        .list(&ResourceQuery {
            status: Some(ResourceStatus::Deleted),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&deleted), ["r-4"]);
    let postgres = store
        .list(&ResourceQuery {
            item: Some("postgres".to_owned()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&postgres), ["r-3"]);
    let rest = store
        .list(&ResourceQuery {
            item: Some("postgres".to_owned()),
            limit: 1,
            cursor: postgres.next.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&rest), ["r-1"]);
    assert_eq!(rest.next, None);
}
