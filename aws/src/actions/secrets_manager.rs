//! `secrets-manager`: secrets whose value AWS generates and the orchestrator never keeps.
//!
//! Create asks `GetRandomPassword` for a value and passes it straight to `CreateSecret`
//! (with a client token derived from the action's idempotency key); the value is held in
//! memory for that call only, never logged, stored or returned. The result (and so the
//! request) records the secret's ARN, name and version. A second attempt after a lost
//! answer finds the secret this request made by its `orchestrator:request` tag.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::{RotationRulesType, Tag};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::catalog::document::{SecretOperation, SecretsManagerAction};
use shared::fulfillment::actions::{ActionError, ActionKind, Invocation, Step, config};
use shared::secret::SecretString;

use super::{aws_error, code_of, region, tags};

pub struct SecretsManagerKind {
    accounts: std::sync::Arc<super::accounts::Accounts>,
}

impl SecretsManagerKind {
    pub fn new(accounts: std::sync::Arc<super::accounts::Accounts>) -> Self {
        SecretsManagerKind { accounts }
    }
}

/// A client token for `CreateSecret`/`PutSecretValue` (32 to 64 characters): the same on
/// every attempt of one action.
fn client_token(run: &Invocation) -> String {
    shared::signing::hex(&Sha256::digest(run.idempotency_key.as_bytes()))
}

/// A value from `GetRandomPassword`, kept only as long as the call that stores it.
async fn generate(
    client: &Client,
    action: &SecretsManagerAction,
) -> Result<SecretString, ActionError> {
    let g = &action.generate;
    let out = client
        .get_random_password()
        .password_length(i64::from(g.length))
        .exclude_punctuation(g.exclude_punctuation)
        .set_exclude_characters(g.exclude_characters.clone())
        .send()
        .await
        .map_err(|e| aws_error("GetRandomPassword", &e))?;
    out.random_password
        .map(SecretString::new)
        .ok_or_else(|| ActionError::permanent("GetRandomPassword answered no value"))
}

#[async_trait]
impl ActionKind for SecretsManagerKind {
    fn url_pointers(&self) -> &'static [&'static str] {
        &[]
    }

    fn target(&self, with: &Value) -> Option<String> {
        self.accounts.target("secretsmanager", with)
    }

    fn describe(&self, run: &Invocation, with: &Value) -> Result<Value, ActionError> {
        let action: SecretsManagerAction = config(with)?;
        let region = region(self.accounts.base(), action.region.as_deref()).map(|r| r.to_string());
        let mut calls = match action.operation {
            SecretOperation::Create => json!([
                {"call": "GetRandomPassword", "length": action.generate.length,
                 "excludePunctuation": action.generate.exclude_punctuation},
                {"call": "CreateSecret", "name": action.secret,
                 "description": action.description, "kmsKeyId": action.kms_key_id,
                 "secretString": "(the generated value: it never leaves Secrets Manager's answer)",
                 "tags": tags(run, &action.tags).into_iter().collect::<std::collections::BTreeMap<_, _>>()},
            ]),
            SecretOperation::RotateValue => json!([
                {"call": "GetRandomPassword", "length": action.generate.length},
                {"call": "PutSecretValue", "secretId": action.secret,
                 "secretString": "(the generated value)"},
            ]),
            SecretOperation::Delete => json!([
                {"call": "DeleteSecret", "secretId": action.secret,
                 "recoveryWindowInDays": action.recovery_window_days},
            ]),
        };
        if let (SecretOperation::Create, Some(r), Some(list)) =
            (action.operation, &action.rotation, calls.as_array_mut())
        {
            list.push(json!({"call": "RotateSecret", "secretId": action.secret,
                             "rotationLambdaArn": r.lambda_arn,
                             "automaticallyAfterDays": r.every_days,
                             "rotateImmediately": r.rotate_immediately}));
        }
        Ok(json!({"service": "secretsmanager", "region": region, "calls": calls}))
    }

    async fn start(&self, run: &Invocation, with: &Value) -> Result<Step, ActionError> {
        let action: SecretsManagerAction = config(with)?;
        let client = self
            .accounts
            .client(
                action.account.as_deref(),
                action.region.as_deref(),
                Client::new,
            )
            .await?;
        match action.operation {
            SecretOperation::Create => create(&client, run, &action).await,
            SecretOperation::RotateValue => {
                let value = generate(&client, &action).await?;
                let out = client
                    .put_secret_value()
                    .secret_id(&action.secret)
                    .secret_string(value.expose())
                    .client_request_token(client_token(run))
                    .send()
                    .await
                    .map_err(|e| aws_error("PutSecretValue", &e))?;
                Ok(Step::Done(json!({
                    "arn": out.arn, "name": out.name, "versionId": out.version_id,
                })))
            }
            SecretOperation::Delete => {
                let mut call = client.delete_secret().secret_id(&action.secret);
                call = match action.recovery_window_days {
                    Some(0) => call.force_delete_without_recovery(true),
                    Some(days) => call.recovery_window_in_days(i64::from(days)),
                    None => call,
                };
                match call.send().await {
                    Ok(out) => Ok(Step::Done(json!({
                        "arn": out.arn, "name": out.name, "deleted": true,
                    }))),
                    // Gone already (an earlier attempt, or by hand): what was asked holds.
                    Err(e) if code_of(&e) == Some("ResourceNotFoundException") => {
                        Ok(Step::Done(json!({"name": action.secret, "deleted": true})))
                    }
                    Err(e) => Err(aws_error("DeleteSecret", &e)),
                }
            }
        }
    }
}

async fn create(
    client: &Client,
    run: &Invocation,
    action: &SecretsManagerAction,
) -> Result<Step, ActionError> {
    let value = generate(client, action).await?;
    let mut call = client
        .create_secret()
        .name(&action.secret)
        .set_description(action.description.clone())
        .set_kms_key_id(action.kms_key_id.clone())
        .secret_string(value.expose())
        .client_request_token(client_token(run));
    for (key, value) in tags(run, &action.tags) {
        call = call.tags(Tag::builder().key(key).value(value).build());
    }
    let made = match call.send().await {
        Ok(out) => json!({"arn": out.arn, "name": out.name, "versionId": out.version_id}),
        Err(e) if code_of(&e) == Some("ResourceExistsException") => {
            // Made by an earlier attempt of this request (its answer lost), or a clash.
            let found = client
                .describe_secret()
                .secret_id(&action.secret)
                .send()
                .await
                .map_err(|e| aws_error("DescribeSecret", &e))?;
            let ours = found.tags().iter().any(|t| {
                t.key() == Some("orchestrator:request")
                    && t.value() == Some(run.request_id.to_string().as_str())
            });
            if !ours {
                return Err(ActionError::permanent(format!(
                    "CreateSecret: ResourceExistsException: a secret named `{}` exists already, and this request did not make it",
                    action.secret
                )));
            }
            let version = found.version_ids_to_stages().and_then(|v| {
                v.iter()
                    .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
                    .map(|(id, _)| id.clone())
            });
            json!({"arn": found.arn, "name": found.name, "versionId": version})
        }
        Err(e) => return Err(aws_error("CreateSecret", &e)),
    };
    let Some(rotation) = &action.rotation else {
        return Ok(Step::Done(made));
    };
    // Setting the same rotation again (a repeated attempt) changes nothing.
    client
        .rotate_secret()
        .secret_id(&action.secret)
        .rotation_lambda_arn(&rotation.lambda_arn)
        .rotation_rules(
            RotationRulesType::builder()
                .automatically_after_days(i64::from(rotation.every_days))
                .build(),
        )
        .rotate_immediately(rotation.rotate_immediately)
        .send()
        .await
        .map_err(|e| aws_error("RotateSecret", &e))?;
    let mut made = made;
    made["rotation"] = json!({"enabled": true, "everyDays": rotation.every_days});
    Ok(Step::Done(made))
}
