//! Kept catalog versions in the state store: a header per version (when it was kept, its
//! summary, its commit time, how many files) and the files themselves in chunks, so that
//! a version of any size fits a store whose records are bounded (DynamoDB's items are at
//! most 400 KB, and a catalog of a few hundred items passes that).
//!
//! The files are serialised once (JSON of `[path, text]` pairs), encoded in base64 (so a
//! chunk's stored size is its length, whatever the text escapes to in JSON) and cut into
//! chunks of [`CHUNK`] characters. The chunks are written first and the header last: a
//! version with a header is whole, and the header's SHA-256 of the serialised files lets
//! a reader prove it got exactly what was kept.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::catalog::load::SourceFile;
use crate::ports::{StateStore, StoreError};
use crate::signing::hex;

/// Every version that was kept, by commit SHA: its header.
pub const VERSIONS: &str = "catalog-versions";

/// The versions' files, by `<sha>/<chunk number, 6 digits>`.
pub const CHUNKS: &str = "catalog-version-chunks";

/// Characters of base64 per chunk: with its key and the record's envelope, a chunk stays
/// well under DynamoDB's 400 KB item limit (409,600 bytes).
pub const CHUNK: usize = 300_000;

/// A version as listed: everything but its files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    #[serde(with = "crate::timestamp")]
    pub at: time::OffsetDateTime,
    pub summary: String,
    /// When its commit was made, when the push said.
    #[serde(default, with = "crate::timestamp::option")]
    pub committed: Option<time::OffsetDateTime>,
    /// How many files the version has.
    #[serde(default)]
    pub file_count: usize,
    /// How many chunks hold them.
    #[serde(default)]
    pub chunks: usize,
    /// SHA-256 (hex) of the serialised files.
    #[serde(default)]
    pub digest: String,
    /// A version kept before chunking held its files in the header; read as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    files: Option<Vec<(String, String)>>,
}

impl Header {
    /// How many files the version has.
    pub fn files(&self) -> usize {
        self.files.as_ref().map_or(self.file_count, Vec::len)
    }
}

/// What to keep of a version besides its files.
pub struct Keep<'a> {
    pub at: time::OffsetDateTime,
    pub summary: &'a str,
    pub committed: Option<time::OffsetDateTime>,
}

/// Keeps version `sha` with `files`, unless it is kept already (a commit's catalog does
/// not change: a push of a branch back to it brings the same files). Chunks left by a
/// keep that stopped half-way are overwritten.
pub async fn keep(
    state: &dyn StateStore,
    sha: &str,
    files: &[SourceFile],
    keep: Keep<'_>,
) -> Result<(), StoreError> {
    if state.get(VERSIONS, sha).await?.is_some() {
        return Ok(());
    }
    let pairs: Vec<(&str, std::borrow::Cow<'_, str>)> = files
        .iter()
        .map(|f| (f.path.as_str(), String::from_utf8_lossy(&f.bytes)))
        .collect();
    let serialised = serde_json::to_vec(&pairs).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let digest = hex(&Sha256::digest(&serialised));
    let encoded = STANDARD.encode(&serialised);
    // Base64 is ASCII: any byte offset is a character boundary.
    let parts: Vec<&str> = encoded
        .as_bytes()
        .chunks(CHUNK)
        .map(|part| std::str::from_utf8(part).unwrap_or_default())
        .collect();
    for (n, part) in parts.iter().enumerate() {
        let key = chunk_key(sha, n);
        let value = json!({ "data": part });
        let expected = state.get(CHUNKS, &key).await?.map(|left| left.version);
        state.put(CHUNKS, &key, &value, expected).await?;
    }
    let header = Header {
        at: keep.at,
        summary: keep.summary.to_owned(),
        committed: keep.committed,
        file_count: files.len(),
        chunks: parts.len(),
        digest,
        files: None,
    };
    let value = serde_json::to_value(&header).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // Another ingestion may have kept the same commit meanwhile, with the same files.
    state.put_once(VERSIONS, sha, &value).await
}

/// Version `sha`'s header, if it was kept.
pub async fn header(state: &dyn StateStore, sha: &str) -> Result<Option<Header>, StoreError> {
    state
        .get(VERSIONS, sha)
        .await?
        .map(|record| parse(sha, record.value))
        .transpose()
}

/// Version `sha`'s header and files, if it was kept.
pub async fn load(
    state: &dyn StateStore,
    sha: &str,
) -> Result<Option<(Header, Vec<SourceFile>)>, StoreError> {
    let Some(header) = header(state, sha).await? else {
        return Ok(None);
    };
    let files = files(state, sha, &header).await?;
    Ok(Some((header, files)))
}

/// Every kept version's header, by SHA.
pub async fn list(state: &dyn StateStore) -> Result<Vec<(String, Header)>, StoreError> {
    state
        .list(VERSIONS, "", 10_000)
        .await?
        .into_iter()
        .map(|(sha, record)| parse(&sha, record.value).map(|header| (sha, header)))
        .collect()
}

/// Version `sha`'s files, as they were kept; `Corrupt` when a chunk is missing or they
/// are not what the header's digest says.
pub async fn files(
    state: &dyn StateStore,
    sha: &str,
    header: &Header,
) -> Result<Vec<SourceFile>, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt(format!("catalog version {sha}: {why}"));
    let pairs = match &header.files {
        Some(pairs) => pairs.clone(),
        None => {
            // One prefix listing (a paginated Query on DynamoDB), not a read per chunk:
            // the Lambdas restore the live version on every cold start.
            let listed = state
                .list(CHUNKS, &format!("{sha}/"), header.chunks)
                .await?;
            let mut encoded = String::with_capacity(header.chunks * CHUNK);
            for n in 0..header.chunks {
                let key = chunk_key(sha, n);
                let record = listed
                    .get(n)
                    .filter(|(listed, _)| *listed == key)
                    .ok_or_else(|| corrupt(format!("chunk {key} is missing")))?;
                let part = record.1.value["data"]
                    .as_str()
                    .ok_or_else(|| corrupt(format!("chunk {key} has no data")))?;
                encoded.push_str(part);
            }
            let serialised = STANDARD
                .decode(encoded)
                .map_err(|e| corrupt(format!("the chunks are not base64: {e}")))?;
            if hex(&Sha256::digest(&serialised)) != header.digest {
                return Err(corrupt(
                    "the chunks' digest is not the one kept with the version".to_owned(),
                ));
            }
            serde_json::from_slice(&serialised)
                .map_err(|e| corrupt(format!("the files do not read back: {e}")))?
        }
    };
    Ok(pairs
        .into_iter()
        .map(|(path, text)| SourceFile {
            path,
            bytes: text.into_bytes(),
        })
        .collect())
}

fn parse(sha: &str, value: serde_json::Value) -> Result<Header, StoreError> {
    serde_json::from_value(value)
        .map_err(|e| StoreError::Corrupt(format!("catalog version {sha}: {e}")))
}

fn chunk_key(sha: &str, n: usize) -> String {
    format!("{sha}/{n:06}")
}
