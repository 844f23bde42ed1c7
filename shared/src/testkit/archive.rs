//! The behaviour every `Archive` adapter must have: what is put is read back whole,
//! a key written again holds the last body, keys with folders work, an absent key reads
//! as none.

use crate::ports::Archive;

pub async fn run(archive: &dyn Archive) {
    let key = format!("suite/{}/2026-12-08/a.jsonl", uuid::Uuid::new_v4().simple());
    assert_eq!(archive.get(&key).await.unwrap(), None);
    let body = b"{\"n\":1}\n{\"n\":2}\n";
    archive.put(&key, body).await.unwrap();
    assert_eq!(archive.get(&key).await.unwrap().as_deref(), Some(&body[..]));
    // Written again (an export redone after a stop): the last body stands, whole.
    let again = b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n";
    archive.put(&key, again).await.unwrap();
    assert_eq!(
        archive.get(&key).await.unwrap().as_deref(),
        Some(&again[..])
    );
    // A larger body (an export of a thousand entries is some hundred kilobytes).
    let large: Vec<u8> = (0..20_000)
        .flat_map(|n| format!("{{\"n\":{n}}}\n").into_bytes())
        .collect();
    let other = key.replace("a.jsonl", "b.jsonl");
    archive.put(&other, &large).await.unwrap();
    assert_eq!(archive.get(&other).await.unwrap(), Some(large));
    assert_eq!(
        archive.get(&key).await.unwrap().as_deref(),
        Some(&again[..])
    );
    assert!(!archive.location().is_empty());
}
