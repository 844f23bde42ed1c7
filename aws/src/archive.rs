//! The archive on S3: each key an object under the configured prefix, written with
//! PutObject (whole or not at all, durable when it answers).

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use shared::ports::{Archive, StoreError};

pub struct S3Archive {
    client: Client,
    bucket: String,
    /// Ends with `/` unless empty.
    prefix: String,
}

impl S3Archive {
    /// Objects of `bucket` under `prefix`. Path-style addressing, so an endpoint on
    /// loopback (moto) serves any bucket name.
    pub fn new(config: &SdkConfig, bucket: impl Into<String>, prefix: &str) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build();
        let prefix = prefix.trim_matches('/');
        S3Archive {
            client: Client::from_conf(s3),
            bucket: bucket.into(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    fn object(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

fn unavailable<E: ProvideErrorMetadata + std::fmt::Debug>(what: &str, e: &E) -> StoreError {
    StoreError::Unavailable(format!(
        "S3 {what}: {}",
        e.message().or(e.code()).unwrap_or("no answer")
    ))
}

#[async_trait]
impl Archive for S3Archive {
    async fn put(&self, key: &str, body: &[u8]) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object(key))
            .content_type(if key.ends_with(".jsonl") {
                "application/jsonl"
            } else {
                "application/octet-stream"
            })
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .map_err(|e| unavailable("PutObject", &e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object(key))
            .send()
            .await
        {
            Ok(out) => out
                .body
                .collect()
                .await
                .map(|b| Some(b.into_bytes().to_vec()))
                .map_err(|e| StoreError::Unavailable(format!("S3 GetObject: {e}"))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(unavailable("GetObject", &e)),
        }
    }

    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}
