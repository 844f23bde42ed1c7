//! Action types that provision in AWS itself, through the AWS SDK: `cloudformation`,
//! `secrets-manager` and `ssm-parameter`. They live here, beside the other AWS adapters,
//! and are handed to the engine with the standard kinds ([`kinds`]); local mode gets them
//! when it has an AWS endpoint (moto, in the sandbox and tests).
//!
//! Every resource they make is tagged with the request, the item, the owning team and the
//! requester. AWS errors end an attempt with AWS's code and message; only what AWS calls
//! retryable (throttling, a 5xx, no answer) is tried again.

pub mod accounts;
pub mod cloudformation;
pub mod secrets_manager;
pub mod sigv4;
pub mod ssm;

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::config::Region;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::error::SdkError;
use shared::catalog::document::ActionType;
use shared::fulfillment::actions::{ActionError, ActionKind, Invocation};

/// Everything the actions get from reaching AWS on `sdk`: the kinds and the signer.
/// Actions that name an `account` assume `config.targetRoleName` there.
pub fn all(
    sdk: &SdkConfig,
    config: &shared::config::AwsConfig,
) -> shared::fulfillment::actions::AwsActions {
    let accounts = Arc::new(accounts::Accounts::new(
        sdk.clone(),
        accounts::TargetRole {
            name: config.target_role_name.clone(),
            external_id: config.target_role_external_id.clone(),
        },
    ));
    let stacks = cloudformation::StackRole::of(config);
    shared::fulfillment::actions::AwsActions {
        kinds: kinds(accounts, stacks),
        signer: Some(Arc::new(sigv4::Sigv4Signer::new(sdk.clone()))),
    }
}

/// The AWS action kinds, reaching AWS through `accounts` (whose base region is the
/// default of actions that name none); CloudFormation makes stacks as `stacks`.
pub fn kinds(
    accounts: Arc<accounts::Accounts>,
    stacks: Option<cloudformation::StackRole>,
) -> Vec<(ActionType, Arc<dyn ActionKind>)> {
    vec![
        (
            ActionType::Cloudformation,
            Arc::new(cloudformation::CloudformationKind::new(
                accounts.clone(),
                stacks,
            )),
        ),
        (
            ActionType::SecretsManager,
            Arc::new(secrets_manager::SecretsManagerKind::new(accounts.clone())),
        ),
        (
            ActionType::SsmParameter,
            Arc::new(ssm::SsmParameterKind::new(accounts)),
        ),
    ]
}

/// The region an action works in: its own, or the SDK's.
fn region(sdk: &SdkConfig, wanted: Option<&str>) -> Option<Region> {
    wanted
        .map(|r| Region::new(r.to_owned()))
        .or_else(|| sdk.region().cloned())
}

/// The tags every resource an action makes carries, then the action's own.
fn tags(
    run: &Invocation,
    own: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut all = vec![
        (
            "orchestrator:request".to_owned(),
            run.request_id.to_string(),
        ),
        ("orchestrator:item".to_owned(), run.item.clone()),
        ("orchestrator:owner".to_owned(), run.owner.clone()),
        ("orchestrator:requester".to_owned(), run.requester.clone()),
    ];
    all.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    all
}

/// AWS's error codes that mean "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "InternalServiceError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
];

/// An SDK error as an action's: AWS's code and message; retried only when AWS says so.
/// `call` names the API call (`CreateSecret`).
fn aws_error<E, R>(call: &str, error: &SdkError<E, R>) -> ActionError
where
    E: ProvideErrorMetadata + std::error::Error,
    R: std::fmt::Debug,
{
    match error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown");
            let message = format!("{call}: {code}: {}", e.message().unwrap_or("no message"));
            if RETRYABLE_CODES.contains(&code) {
                ActionError::retryable(message)
            } else {
                ActionError::permanent(message)
            }
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => ActionError::Unknown {
            message: format!("{call}: no answer from AWS in time"),
        },
        SdkError::DispatchFailure(f) => {
            ActionError::retryable(format!("{call}: could not reach AWS: {f:?}"))
        }
        other => ActionError::permanent(format!("{call}: {other}")),
    }
}

/// The code of a service error, if it is one.
fn code_of<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    match error {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}
