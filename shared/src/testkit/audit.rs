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
}
