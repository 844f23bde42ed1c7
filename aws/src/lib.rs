//! The AWS adapters of the orchestrator's ports, on aws-sdk-rust: what the Lambdas run
//! on. Each passes the same behaviour suite (`shared::testkit`) as the embedded adapter of
//! its port, against moto server on loopback in the tests.

pub mod actions;
pub mod archive;
pub mod audit;
pub mod environment;
pub(crate) mod items;
mod pages;
pub mod queue;
pub mod requests;
pub mod resources;
pub mod secrets;
mod shards;
pub mod state;
pub mod topics;
pub mod workflows;

pub use archive::S3Archive;
pub use audit::DynamoAuditLog;
pub use queue::SqsQueue;
pub use requests::DynamoRequestStore;
pub use resources::DynamoResourceStore;
pub use secrets::SecretsManager;
pub use state::DynamoStateStore;
pub use topics::SnsTopics;
pub use workflows::StepFunctions;

pub use aws_config::SdkConfig;

use aws_config::BehaviorVersion;

/// The SDK configuration of a Lambda: region, credentials and retries from the
/// environment AWS gives it, once per process.
pub async fn from_environment() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The SDK configuration for an AWS-compatible endpoint such as moto on loopback:
/// fixed test credentials and region, every client pointed at `endpoint`.
pub async fn for_endpoint(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "fixed",
        ))
        .load()
        .await
}

/// An SDK configuration that reaches no AWS (no credentials): what plans describe AWS
/// actions with, since describing calls nothing.
pub fn offline(region: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .build()
}
