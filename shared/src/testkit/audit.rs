//! The behaviour every `AuditLog` adapter must have.

use time::OffsetDateTime;

use crate::ports::{AuditLog, AuditQuery};
use crate::requests::model::AuditEntry;

pub async fn run(log: &dyn AuditLog) {
    let t0 = OffsetDateTime::now_utc();
    for i in 0..5 {
        let entry = AuditEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: t0 + time::Duration::milliseconds(i),
            actor: if i % 2 == 0 { "alice" } else { "bob" }.to_owned(),
            action: "POST /requests".to_owned(),
            target: Some(format!("r{i}")),
            source: Some("127.0.0.1".to_owned()),
            outcome: 202,
            correlation_id: format!("c{i}"),
            detail: (i == 3).then(|| "forced past drift".to_owned()),
        };
        log.append(&entry).await.unwrap();
    }
    let first = log
        .list(&AuditQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.items[0].target.as_deref(), Some("r4"), "newest first");
    let second = log
        .list(&AuditQuery {
            limit: 10,
            cursor: first.next.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(second.items.len(), 3);
    assert_eq!(second.next, None);
    let alice = log
        .list(&AuditQuery {
            actor: Some("alice".to_owned()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(alice.items.len(), 3);

    // The whole log (which a store may keep in several partitions): every entry exactly
    // once, newest first, across pages of any size.
    let mut ids: Vec<String> = Vec::new();
    for i in 0..40 {
        let entry = AuditEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: t0 + time::Duration::milliseconds(10 + i),
            actor: "carol".to_owned(),
            action: "PATCH /resources/x".to_owned(),
            target: Some(format!("x{i}")),
            source: None,
            outcome: 200,
            correlation_id: format!("d{i}"),
            detail: None,
        };
        log.append(&entry).await.unwrap();
        log.append(&entry).await.unwrap(); // a retried append is a no-op
        ids.push(entry.id);
    }
    ids.reverse();
    for limit in [1, 6, 45] {
        let mut query = AuditQuery {
            limit,
            ..Default::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = log.list(&query).await.unwrap();
            assert!(page.items.len() <= limit);
            seen.extend(page.items.into_iter().map(|e| e.id));
            match page.next {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
        }
        assert_eq!(seen.len(), 45, "pages of {limit}");
        assert_eq!(seen[..40], ids[..], "newest first, pages of {limit}");
    }

    // Retention: entries recorded before a time, oldest first, removed by id; those
    // recorded after it stay.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let cut = OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut late = Vec::new();
    for i in 0..3 {
        let entry = AuditEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: OffsetDateTime::now_utc(),
            actor: "dave".to_owned(),
            action: "POST /requests".to_owned(),
            target: Some(format!("late{i}")),
            source: None,
            outcome: 202,
            correlation_id: format!("late{i}"),
            detail: None,
        };
        log.append(&entry).await.unwrap();
        late.push(entry.id);
    }
    late.reverse();
    let mut removed = 0;
    for _ in 0..100 {
        let old = log.older_than(cut, 7).await.unwrap();
        assert!(old.len() <= 7);
        assert!(old.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
        assert!(old.iter().all(|e| !e.correlation_id.starts_with("late")));
        if old.is_empty() {
            break;
        }
        let ids: Vec<String> = old.iter().map(|e| e.id.clone()).collect();
        log.remove(&ids).await.unwrap();
        // Removing again (a retried step) is no error.
        log.remove(&ids).await.unwrap();
        removed += ids.len();
    }
    assert_eq!(removed, 45, "every entry before the cut");
    let left = log
        .list(&AuditQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    let left: Vec<String> = left.items.into_iter().map(|e| e.id).collect();
    assert_eq!(left, late, "what came after the cut stays");
    let dave = log
        .list(&AuditQuery {
            actor: Some("dave".to_owned()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(dave.items.len(), 3);
    let carol = log
        .list(&AuditQuery {
            actor: Some("carol".to_owned()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(carol.items.is_empty(), "removed from the actor's list too");
}
