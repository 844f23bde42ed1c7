//! The state store's behaviour: conditional writes, deletes and prefix listing.

use serde_json::json;

use crate::ports::{StateStore, StoreError};

pub async fn run(store: &dyn StateStore) {
    assert_eq!(
        store.get("breakers", "api.example.com").await.unwrap(),
        None
    );

    // Create only when absent; a second create loses.
    let v1 = store
        .put("breakers", "api.example.com", &json!({"failures": 1}), None)
        .await
        .unwrap();
    assert_eq!(v1, 1);
    assert!(matches!(
        store
            .put("breakers", "api.example.com", &json!({"failures": 9}), None)
            .await,
        Err(StoreError::VersionConflict { .. })
    ));

    // Update only from the version read; a stale writer loses and changes nothing.
    let v2 = store
        .put(
            "breakers",
            "api.example.com",
            &json!({"failures": 2}),
            Some(v1),
        )
        .await
        .unwrap();
    assert_eq!(v2, 2);
    assert!(matches!(
        store
            .put(
                "breakers",
                "api.example.com",
                &json!({"failures": 7}),
                Some(v1)
            )
            .await,
        Err(StoreError::VersionConflict { expected: 1 })
    ));
    let got = store
        .get("breakers", "api.example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.value, got.version), (json!({"failures": 2}), 2));

    // Tables are separate namespaces.
    assert_eq!(
        store.get("executions", "api.example.com").await.unwrap(),
        None
    );

    // Listing by prefix, in key order; `%` and `_` in keys are plain characters.
    for key in ["r1/a", "r1/b", "r10/a", "r1_x", "r%/a"] {
        store
            .put("executions", key, &json!({"key": key}), None)
            .await
            .unwrap();
    }
    let keys = |rows: Vec<(String, crate::ports::Versioned)>| {
        rows.into_iter().map(|(k, _)| k).collect::<Vec<_>>()
    };
    assert_eq!(
        keys(store.list("executions", "r1/", 10).await.unwrap()),
        ["r1/a", "r1/b"]
    );
    assert_eq!(
        keys(store.list("executions", "r%", 10).await.unwrap()),
        ["r%/a"]
    );
    assert_eq!(
        keys(store.list("executions", "r1", 2).await.unwrap()),
        ["r1/a", "r1/b"]
    );
    assert!(store.list("breakers", "r1", 10).await.unwrap().is_empty());

    // Deletes are conditional too.
    assert!(matches!(
        store.delete("breakers", "api.example.com", 1).await,
        Err(StoreError::VersionConflict { .. })
    ));
    store
        .delete("breakers", "api.example.com", 2)
        .await
        .unwrap();
    assert!(matches!(
        store.delete("breakers", "api.example.com", 2).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.get("breakers", "api.example.com").await.unwrap(),
        None
    );
    // A deleted record can be created again, from version 1.
    assert_eq!(
        store
            .put("breakers", "api.example.com", &json!({}), None)
            .await
            .unwrap(),
        1
    );
}
