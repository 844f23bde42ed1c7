//! `ssm-parameter`: Parameter Store parameters put (String, StringList, SecureString
//! with a KMS key) and deleted. Putting overwrites, so another attempt lands the same
//! value; tags are added after (Parameter Store takes no tags with an overwrite).

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{ParameterType as SdkType, ResourceTypeForTagging, Tag};
use serde_json::{Value, json};
use shared::catalog::document::{ParameterOperation, ParameterType, SsmParameterAction};
use shared::fulfillment::actions::{ActionError, ActionKind, Invocation, Step, config};

use super::{aws_error, code_of, region, tags};

pub struct SsmParameterKind {
    accounts: std::sync::Arc<super::accounts::Accounts>,
}

impl SsmParameterKind {
    pub fn new(accounts: std::sync::Arc<super::accounts::Accounts>) -> Self {
        SsmParameterKind { accounts }
    }
}

/// The parameter's value as Parameter Store takes it.
fn value_of(action: &SsmParameterAction) -> Result<String, ActionError> {
    let value = action
        .value
        .as_ref()
        .ok_or_else(|| ActionError::permanent("`value` is needed to put a parameter"))?;
    Ok(match value {
        Value::String(s) => s.clone(),
        Value::Array(items) if action.parameter_type == ParameterType::StringList => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Number(_) | Value::Bool(_) => value.to_string(),
        _ => {
            return Err(ActionError::permanent(
                "`value` must be a string (or, for a StringList, a list)",
            ));
        }
    })
}

#[async_trait]
impl ActionKind for SsmParameterKind {
    fn url_pointers(&self) -> &'static [&'static str] {
        &[]
    }

    fn target(&self, with: &Value) -> Option<String> {
        self.accounts.target("ssm", with)
    }

    fn describe(&self, run: &Invocation, with: &Value) -> Result<Value, ActionError> {
        let action: SsmParameterAction = config(with)?;
        let region = region(self.accounts.base(), action.region.as_deref()).map(|r| r.to_string());
        let call = match action.operation {
            ParameterOperation::Put => json!({
                "call": "PutParameter", "name": action.name,
                "type": action.parameter_type.as_str(),
                "value": match action.parameter_type {
                    ParameterType::SecureString => json!("(secure: not shown)"),
                    _ => action.value.clone().unwrap_or(Value::Null),
                },
                "keyId": action.key_id, "overwrite": true,
                "tags": tags(run, &action.tags).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            }),
            ParameterOperation::Delete => json!({"call": "DeleteParameter", "name": action.name}),
        };
        Ok(json!({"service": "ssm", "region": region, "calls": [call]}))
    }

    async fn start(&self, run: &Invocation, with: &Value) -> Result<Step, ActionError> {
        let action: SsmParameterAction = config(with)?;
        let client = self
            .accounts
            .client(
                action.account.as_deref(),
                action.region.as_deref(),
                Client::new,
            )
            .await?;
        match action.operation {
            ParameterOperation::Put => {
                let value = value_of(&action)?;
                let out = client
                    .put_parameter()
                    .name(&action.name)
                    .value(value)
                    .r#type(SdkType::from(action.parameter_type.as_str()))
                    .set_key_id(action.key_id.clone())
                    .set_description(action.description.clone())
                    .overwrite(true)
                    .send()
                    .await
                    .map_err(|e| aws_error("PutParameter", &e))?;
                let mut tagging = client
                    .add_tags_to_resource()
                    .resource_type(ResourceTypeForTagging::Parameter)
                    .resource_id(&action.name);
                for (key, value) in tags(run, &action.tags) {
                    tagging = tagging.tags(
                        Tag::builder()
                            .key(key)
                            .value(value)
                            .build()
                            .map_err(|e| ActionError::permanent(e.to_string()))?,
                    );
                }
                tagging
                    .send()
                    .await
                    .map_err(|e| aws_error("AddTagsToResource", &e))?;
                let arn = client
                    .get_parameter()
                    .name(&action.name)
                    .send()
                    .await
                    .ok()
                    .and_then(|p| p.parameter)
                    .and_then(|p| p.arn);
                Ok(Step::Done(json!({
                    "name": action.name,
                    "version": out.version,
                    "type": action.parameter_type.as_str(),
                    "arn": arn,
                })))
            }
            ParameterOperation::Delete => {
                match client.delete_parameter().name(&action.name).send().await {
                    Ok(_) => Ok(Step::Done(json!({"name": action.name, "deleted": true}))),
                    Err(e) if code_of(&e) == Some("ParameterNotFound") => {
                        Ok(Step::Done(json!({"name": action.name, "deleted": true})))
                    }
                    Err(e) => Err(aws_error("DeleteParameter", &e)),
                }
            }
        }
    }
}
