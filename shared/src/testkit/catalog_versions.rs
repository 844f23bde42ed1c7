//! Kept catalog versions on a state store: a version far past one DynamoDB item (400 KB)
//! is kept in chunks and read back byte for byte; keeping a commit again changes
//! nothing; a lost or altered chunk is found, not served.

use serde_json::json;
use time::macros::datetime;

use crate::catalog::load::SourceFile;
use crate::ingest::versions::{self, CHUNKS, Keep, VERSIONS};
use crate::ports::{StateStore, StoreError};

/// Files whose serialised form is about 1.3 MB: many small items and one file of 600 KB,
/// with text that JSON escapes (quotes, backslashes, newlines) and non-ASCII characters.
fn large_catalog() -> Vec<SourceFile> {
    let mut files: Vec<SourceFile> = (0..300)
        .map(|i| SourceFile {
            path: format!("items/item-{i:03}.yaml"),
            bytes: format!(
                "apiVersion: orchestrator/v1\nkind: Item\nmetadata:\n  name: item-{i:03}\n  \
                 description: \"Quoted \\\\ text, ünïcödé and a tab\\t\"\n{}",
                "  # padding line for a realistic size\n".repeat(60)
            )
            .into_bytes(),
        })
        .collect();
    files.push(SourceFile {
        path: "bundles/huge.yaml".to_owned(),
        bytes: "- \"step\": 'résumé' \\ {}\n".repeat(24_000).into_bytes(),
    });
    files
}

pub async fn run(state: &dyn StateStore) {
    let files = large_catalog();
    let total: usize = files.iter().map(|f| f.bytes.len()).sum();
    assert!(total > 1_000_000, "the suite's catalog is {total} bytes");
    let sha = "1111111111111111111111111111111111111111";
    let first = Keep {
        at: datetime!(2026-11-21 10:00 UTC),
        summary: "301 documents",
        committed: Some(datetime!(2026-11-21 09:59 UTC)),
    };
    versions::keep(state, sha, &files, first).await.unwrap();

    let (header, back) = versions::load(state, sha).await.unwrap().unwrap();
    assert_eq!(header.files(), 301);
    assert!(header.chunks >= 5, "{} chunks", header.chunks);
    assert_eq!(header.summary, "301 documents");
    assert_eq!(back, files, "the files read back are the files kept");

    // The same commit again keeps what was kept.
    let again = Keep {
        at: datetime!(2026-11-22 10:00 UTC),
        summary: "something else",
        committed: None,
    };
    versions::keep(state, sha, &files[..1], again)
        .await
        .unwrap();
    let header = versions::header(state, sha).await.unwrap().unwrap();
    assert_eq!(
        (header.at, header.summary.as_str(), header.files()),
        (datetime!(2026-11-21 10:00 UTC), "301 documents", 301)
    );

    // A small version is one chunk; both are listed.
    let small = "2222222222222222222222222222222222222222";
    let keep = Keep {
        at: datetime!(2026-11-21 11:00 UTC),
        summary: "1 document",
        committed: None,
    };
    versions::keep(state, small, &files[..1], keep)
        .await
        .unwrap();
    let listed: Vec<(String, usize, usize)> = versions::list(state)
        .await
        .unwrap()
        .into_iter()
        .map(|(sha, h)| (sha, h.files(), h.chunks))
        .collect();
    assert_eq!(
        listed,
        vec![
            (sha.to_owned(), 301, header.chunks),
            (small.to_owned(), 1, 1)
        ]
    );
    assert!(versions::header(state, "0000").await.unwrap().is_none());
    assert!(versions::load(state, "0000").await.unwrap().is_none());

    // An altered chunk fails the digest; a missing one is named.
    let key = format!("{small}/000000");
    let stored = state.get(CHUNKS, &key).await.unwrap().unwrap();
    let data = stored.value["data"].as_str().unwrap();
    let altered = format!("{}A{}", &data[..10], &data[11..]);
    let altered = if altered == data {
        format!("{}B{}", &data[..10], &data[11..])
    } else {
        altered
    };
    state
        .put(
            CHUNKS,
            &key,
            &json!({ "data": altered }),
            Some(stored.version),
        )
        .await
        .unwrap();
    let header = versions::header(state, small).await.unwrap().unwrap();
    match versions::files(state, small, &header).await {
        Err(StoreError::Corrupt(why)) => assert!(why.contains(small), "{why}"),
        other => panic!("an altered chunk was read as {other:?}"),
    }
    let version = state.get(CHUNKS, &key).await.unwrap().unwrap().version;
    state.delete(CHUNKS, &key, version).await.unwrap();
    match versions::files(state, small, &header).await {
        Err(StoreError::Corrupt(why)) => {
            assert!(why.contains(&key) && why.contains("missing"), "{why}")
        }
        other => panic!("a missing chunk was read as {other:?}"),
    }

    // A version kept before chunking (its files in the record) still reads.
    let legacy = "3333333333333333333333333333333333333333";
    let record = json!({
        "files": [["items/a.yaml", "kind: Item\n"]],
        "at": "2026-01-01T00:00:00Z",
        "summary": "1 document",
    });
    state.put(VERSIONS, legacy, &record, None).await.unwrap();
    let header = versions::header(state, legacy).await.unwrap().unwrap();
    assert_eq!(header.files(), 1);
    let back = versions::files(state, legacy, &header).await.unwrap();
    assert_eq!(
        back,
        vec![SourceFile {
            path: "items/a.yaml".to_owned(),
            bytes: b"kind: Item\n".to_vec()
        }]
    );
}
