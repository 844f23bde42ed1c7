//! The typed catalog documents: `CatalogItem`, `CatalogBundle` and the root `Teams` file.
//!
//! `schemas/*.schema.json` is the normative format; these types mirror it field for field
//! (every struct denies unknown fields) and tests check that every document the schemas
//! accept deserializes here and that the two reject the same mistakes.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const API_VERSION: &str = "orchestrator.dev/v1";

/// The kinds of document a catalog repository holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    CatalogItem,
    CatalogBundle,
    Teams,
    ChangeCalendar,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::CatalogItem,
        Kind::CatalogBundle,
        Kind::Teams,
        Kind::ChangeCalendar,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CatalogItem => "CatalogItem",
            Kind::CatalogBundle => "CatalogBundle",
            Kind::Teams => "Teams",
            Kind::ChangeCalendar => "ChangeCalendar",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CatalogItem {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ItemSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CatalogBundle {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: BundleSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    pub title: String,
    pub description: String,
    pub owner: String,
    pub category: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// What to request instead of a deprecated item or bundle (an item or a bundle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    Experimental,
    #[default]
    Production,
    Deprecated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub title: String,
    pub url: String,
}

/// The request form: a JSON Schema of type object, plus hints for rendering it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presentation {
    pub schema: Value,
    #[serde(default)]
    pub ui: UiHints,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiHints {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, FieldHint>,
}

/// Rendering hints for one field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldHint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widget: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autofocus: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSpec {
    pub presentation: Presentation,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, OutputDeclaration>,
    pub fulfillment: Fulfillment,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalPolicy>,
    /// Service level targets: how long fulfilment and a first response may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<Sla>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputDeclaration {
    pub description: String,
    #[serde(default)]
    pub sensitive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Manual,
    Automated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fulfillment {
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<ManualFulfillment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<AutomatedFulfillment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

/// What an automated item does when its automation cannot finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Open the manual section's JIRA ticket.
    Manual,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JiraTicket {
    pub project: String,
    pub issue_type: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualFulfillment {
    pub ticket: JiraTicket,
    /// Output name to the JIRA field the fulfiller fills in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomatedFulfillment {
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback: Vec<Action>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deprovision: Vec<Action>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify: Vec<Action>,
    /// When an action fails for good on a request of the item alone; a bundle's
    /// `onFailure` decides for its components.
    #[serde(default, rename = "onFailure")]
    pub on_failure: OnFailure,
}

/// The action lists of an automated fulfillment, named as in the document.
pub const ACTION_LISTS: [&str; 4] = ["actions", "rollback", "deprovision", "verify"];

impl AutomatedFulfillment {
    /// Each action list with its key in the document.
    pub fn lists(&self) -> [(&'static str, &[Action]); 4] {
        [
            (ACTION_LISTS[0], &self.actions),
            (ACTION_LISTS[1], &self.rollback),
            (ACTION_LISTS[2], &self.deprovision),
            (ACTION_LISTS[3], &self.verify),
        ]
    }
}

/// One step of an automated fulfillment: `type` picks the shape of `with`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAction", into = "RawAction")]
pub struct Action {
    pub id: String,
    pub config: ActionConfig,
    /// Output name to a JSONPath into the action's result.
    pub outputs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// How long one call (or poll) may take before its outcome counts as unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_timeout: Option<DurationSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionType {
    Jira,
    Rest,
    Webhook,
    GithubWorkflow,
    Terraform,
    SecretsManager,
    SsmParameter,
    Cloudformation,
}

impl ActionType {
    /// The `type` as the catalog writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::Jira => "jira",
            ActionType::Rest => "rest",
            ActionType::Webhook => "webhook",
            ActionType::GithubWorkflow => "github-workflow",
            ActionType::Terraform => "terraform",
            ActionType::SecretsManager => "secrets-manager",
            ActionType::SsmParameter => "ssm-parameter",
            ActionType::Cloudformation => "cloudformation",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActionConfig {
    Jira(JiraAction),
    Rest(RestAction),
    Webhook(WebhookAction),
    GithubWorkflow(GithubWorkflowAction),
    Terraform(Box<TerraformAction>),
    SecretsManager(Box<SecretsManagerAction>),
    SsmParameter(Box<SsmParameterAction>),
    Cloudformation(Box<CloudformationAction>),
}

impl ActionConfig {
    pub fn action_type(&self) -> ActionType {
        match self {
            ActionConfig::Jira(_) => ActionType::Jira,
            ActionConfig::Rest(_) => ActionType::Rest,
            ActionConfig::Webhook(_) => ActionType::Webhook,
            ActionConfig::GithubWorkflow(_) => ActionType::GithubWorkflow,
            ActionConfig::Terraform(_) => ActionType::Terraform,
            ActionConfig::SecretsManager(_) => ActionType::SecretsManager,
            ActionConfig::SsmParameter(_) => ActionType::SsmParameter,
            ActionConfig::Cloudformation(_) => ActionType::Cloudformation,
        }
    }

    /// The AWS region the action names, with its pointer under `with`.
    pub fn region(&self) -> Option<(&'static str, &str)> {
        let region = match self {
            ActionConfig::Cloudformation(a) => a.region.as_deref(),
            ActionConfig::SecretsManager(a) => a.region.as_deref(),
            ActionConfig::SsmParameter(a) => a.region.as_deref(),
            ActionConfig::Rest(RestAction {
                auth: Some(RestAuth::AwsSigv4(sign)),
                ..
            }) => return sign.region.as_deref().map(|r| ("/auth/awsSigv4/region", r)),
            _ => None,
        };
        region.map(|r| ("/region", r))
    }
}

/// The document form of [`Action`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    id: String,
    #[serde(rename = "type")]
    action_type: ActionType,
    with: Value,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    outputs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<DurationSpec>,
    #[serde(
        default,
        rename = "attemptTimeout",
        skip_serializing_if = "Option::is_none"
    )]
    attempt_timeout: Option<DurationSpec>,
}

/// An action's `with` that does not fit its type: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct InvalidWith {
    /// `with`, or `with.<path>`.
    pub at: String,
    pub message: String,
}

impl TryFrom<RawAction> for Action {
    type Error = InvalidWith;

    fn try_from(raw: RawAction) -> Result<Self, InvalidWith> {
        fn typed<T: serde::de::DeserializeOwned>(with: Value) -> Result<T, InvalidWith> {
            serde_path_to_error::deserialize(with).map_err(|e| {
                let path = e.path().to_string();
                InvalidWith {
                    at: if path == "." {
                        "with".to_owned()
                    } else {
                        format!("with.{path}")
                    },
                    message: e.inner().to_string(),
                }
            })
        }
        let config = match raw.action_type {
            ActionType::Jira => ActionConfig::Jira(typed(raw.with)?),
            ActionType::Rest => ActionConfig::Rest(typed(raw.with)?),
            ActionType::Webhook => ActionConfig::Webhook(typed(raw.with)?),
            ActionType::GithubWorkflow => ActionConfig::GithubWorkflow(typed(raw.with)?),
            ActionType::Terraform => ActionConfig::Terraform(typed(raw.with)?),
            ActionType::SecretsManager => ActionConfig::SecretsManager(typed(raw.with)?),
            ActionType::SsmParameter => ActionConfig::SsmParameter(typed(raw.with)?),
            ActionType::Cloudformation => ActionConfig::Cloudformation(typed(raw.with)?),
        };
        Ok(Action {
            id: raw.id,
            config,
            outputs: raw.outputs,
            retry: raw.retry,
            timeout: raw.timeout,
            attempt_timeout: raw.attempt_timeout,
        })
    }
}

impl From<Action> for RawAction {
    fn from(action: Action) -> Self {
        let action_type = action.config.action_type();
        let with = match action.config {
            ActionConfig::Jira(c) => serde_json::to_value(c),
            ActionConfig::Rest(c) => serde_json::to_value(c),
            ActionConfig::Webhook(c) => serde_json::to_value(c),
            ActionConfig::GithubWorkflow(c) => serde_json::to_value(c),
            ActionConfig::Terraform(c) => serde_json::to_value(c),
            ActionConfig::SecretsManager(c) => serde_json::to_value(c),
            ActionConfig::SsmParameter(c) => serde_json::to_value(c),
            ActionConfig::Cloudformation(c) => serde_json::to_value(c),
        }
        // Plain data structs with string keys always serialize.
        .unwrap_or(Value::Null);
        RawAction {
            id: action.id,
            action_type,
            with,
            outputs: action.outputs,
            retry: action.retry,
            timeout: action.timeout,
            attempt_timeout: action.attempt_timeout,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JiraAction {
    pub ticket: JiraTicket,
    #[serde(default)]
    pub wait_for_resolution: bool,
    /// Resolutions that fail the action when it waits for one (compared without case);
    /// unset: Won't Do, Won't Fix, Declined, Rejected, Duplicate, Cannot Reproduce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_resolutions: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpMethod {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "PATCH")]
    Patch,
    #[serde(rename = "DELETE")]
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RestAction {
    pub method: HttpMethod,
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub success_status: Vec<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RestAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<Box<RestPoll>>,
}

/// How a REST action authenticates; the values are usually `{{secrets.NAME}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum RestAuth {
    Bearer(String),
    Basic {
        username: String,
        password: String,
    },
    ApiKey {
        header: String,
        value: String,
    },
    /// AWS Signature Version 4 with the worker's AWS credentials, for APIs behind IAM
    /// authorization (API Gateway's `execute-api`, Lambda function URLs, ...).
    AwsSigv4(AwsSigv4),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsSigv4 {
    /// The signing name of the service: `execute-api`, `lambda`, ...
    pub service: String,
    /// The region to sign for (default: the deployment's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// Polling of an asynchronous API's status until a condition holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RestPoll {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationSpec>,
    pub until: Condition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_when: Option<Condition>,
}

/// A test on a JSON document: the value at `path` equals `equals`, is one of `in`, or is a
/// number above `greaterThan` or below `lessThan` (every test given must hold).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    #[serde(
        default,
        rename = "greaterThan",
        skip_serializing_if = "Option::is_none"
    )]
    pub greater_than: Option<f64>,
    #[serde(default, rename = "lessThan", skip_serializing_if = "Option::is_none")]
    pub less_than: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookAction {
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    pub signing_secret: String,
}

/// `secrets-manager`: a secret whose value AWS generates (`GetRandomPassword`) and that
/// the orchestrator never keeps: the request records its ARN, name and version only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretsManagerAction {
    #[serde(default)]
    pub operation: SecretOperation,
    /// The secret's name (create), or its name or ARN (rotate-value, delete).
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How the value is generated (create, rotate-value).
    #[serde(default)]
    pub generate: GeneratedValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Tags beside the orchestrator's own (request, item, requester).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Delete: days Secrets Manager keeps it recoverable (7 to 30; 0 deletes at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_window_days: Option<u32>,
    /// Create: rotation by a rotation function, set once the secret exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<SecretRotation>,
    /// The region it lives in (default: the deployment's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The account it lives in, reached through the role assumed there (default: the
    /// deployment's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// How Secrets Manager rotates a secret (`RotateSecret`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRotation {
    /// The rotation function's ARN.
    pub lambda_arn: String,
    /// Days between rotations (1 to 1000).
    pub every_days: u32,
    /// Rotate now as well (default: only on the schedule, after a test of the function).
    #[serde(default)]
    pub rotate_immediately: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretOperation {
    #[default]
    Create,
    /// A new generated value, as a new version of the secret.
    RotateValue,
    Delete,
}

/// How a generated secret value is made (GetRandomPassword's options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GeneratedValue {
    #[serde(default = "default_secret_length")]
    pub length: u32,
    #[serde(default)]
    pub exclude_punctuation: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_characters: Option<String>,
}

fn default_secret_length() -> u32 {
    32
}

impl Default for GeneratedValue {
    fn default() -> Self {
        GeneratedValue {
            length: default_secret_length(),
            exclude_punctuation: false,
            exclude_characters: None,
        }
    }
}

/// `cloudformation`: a stack of a template kept in the catalog (`templates/...`),
/// deployed through a change set, or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CloudformationAction {
    #[serde(default)]
    pub operation: StackOperation,
    /// The template's path from the catalog's root (`templates/s3-bucket.yaml`); deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Or the template's URL in S3 (`https://<bucket>.s3.<region>.amazonaws.com/<key>`),
    /// for templates a platform team publishes there; CloudFormation reads it, so its
    /// parameters are checked when the stack is made, not at catalog validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_url: Option<String>,
    /// The stack's name (default: `orchestrator-<item>-<resource>`, the same on every
    /// attempt and for every day-2 change, deletion and drift check of the resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_name: Option<String>,
    /// The template's parameters (values are sent as strings; lists joined by commas).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, Value>,
    /// Tags beside the orchestrator's own (request, item, requester).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// `CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM`, `CAPABILITY_AUTO_EXPAND`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The account it lives in, reached through the role assumed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The template itself, put here from the catalog when it is loaded (authors name the
    /// file in `template`; the schema refuses this field in documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_body: Option<Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StackOperation {
    /// Create the stack, or update it to the template and parameters.
    #[default]
    Deploy,
    Delete,
    /// Read only (for `verify`): CloudFormation's drift detection of the stack, each
    /// drifted resource's property differences reported as the resource's drift.
    DetectDrift,
}

/// `ssm-parameter`: a Parameter Store parameter put or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SsmParameterAction {
    #[serde(default)]
    pub operation: ParameterOperation,
    pub name: String,
    #[serde(default, rename = "type")]
    pub parameter_type: ParameterType,
    /// The value (put); a list's items joined with commas for `StringList`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The KMS key of a `SecureString` (default: the account's `alias/aws/ssm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The region it lives in (default: the deployment's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The account it lives in, reached through the role assumed there (default: the
    /// deployment's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParameterOperation {
    #[default]
    Put,
    Delete,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParameterType {
    #[default]
    String,
    StringList,
    SecureString,
}

impl ParameterType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParameterType::String => "String",
            ParameterType::StringList => "StringList",
            ParameterType::SecureString => "SecureString",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GithubWorkflowAction {
    pub repository: String,
    pub workflow: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub inputs: Map<String, Value>,
    #[serde(default = "yes")]
    pub wait_for_completion: bool,
    /// A workflow input that receives the execution's delivery id, so that the run can be
    /// found where GitHub does not return its id (GitHub Enterprise Server) and a retry
    /// finds the run an unanswered dispatch started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<DurationSpec>,
    /// The token (`{{secrets.name}}`); unset: the one `github.tokenSecret` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TerraformAction {
    pub repository: String,
    #[serde(default = "main_branch")]
    pub base_branch: String,
    pub directory: String,
    pub module: TerraformModule,
    /// `required_providers` entries: name to `{source, version}`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub required_providers: Map<String, Value>,
    /// `provider` blocks: name to its arguments.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub providers: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<TerraformBackend>,
    /// Module outputs the root module passes on (`output "x" { value = module.NAME.x }`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    pub pull_request: PullRequest,
    /// The branch the files are committed to; unset: `orchestrator/<request>-<action>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Wait until the pull request is merged (and fail if it is closed unmerged).
    #[serde(default)]
    pub wait_for_merge: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerraformBackend {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub config: Map<String, Value>,
}

fn main_branch() -> String {
    "main".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerraformModule {
    /// The module block's label; unset: `this`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub inputs: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PullRequest {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default)]
    pub auto_merge: bool,
    #[serde(default)]
    pub draft: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BundleSpec {
    pub presentation: Presentation,
    pub components: Vec<Component>,
    #[serde(default)]
    pub on_failure: OnFailure,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, BundleOutput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalPolicy>,
    /// Service level targets of the bundle as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<Sla>,
}

/// Service level targets of an item or bundle. Their clock runs from submission and
/// pauses while the request waits for an approval, a change window or its scheduled
/// time; with business hours it runs only inside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sla {
    /// Submission to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfil: Option<DurationSpec>,
    /// Submission to the first sign of work: an action run, or a person's comment or
    /// decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response: Option<DurationSpec>,
    /// The share of a target, in percent, at which a request is at risk.
    #[serde(default = "default_at_risk")]
    pub at_risk_percent: u8,
    /// When the clock runs; always, without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<BusinessHours>,
}

fn default_at_risk() -> u8 {
    80
}

impl Sla {
    /// Its targets, each with its duration.
    pub fn targets(&self) -> Vec<(SlaTarget, std::time::Duration)> {
        [
            (SlaTarget::Fulfil, self.fulfil),
            (SlaTarget::FirstResponse, self.first_response),
        ]
        .into_iter()
        .filter_map(|(target, d)| Some((target, d?.as_duration())))
        .collect()
    }
}

/// Which service level target.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum SlaTarget {
    Fulfil,
    FirstResponse,
}

impl SlaTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaTarget::Fulfil => "fulfil",
            SlaTarget::FirstResponse => "firstResponse",
        }
    }
}

/// A named working calendar: the days and hours in a time zone, and the holidays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BusinessHours {
    pub name: String,
    /// The IANA time zone its hours are in.
    pub time_zone: String,
    /// `mon` to `sun`.
    pub days: Vec<String>,
    /// `HH:MM`, before `to`.
    pub from: String,
    pub to: String,
    /// Days off (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Component {
    pub id: String,
    pub item: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub inputs: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Undo the completed components in reverse dependency order, then fail.
    #[default]
    Rollback,
    /// Keep the completed components and fail.
    Stop,
    /// Keep the completed components and wait at the failed one for an admin to redrive
    /// the request (`POST /requests/{id}/redrive`) or cancel it.
    Pause,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleOutput {
    pub value: String,
    pub description: String,
}

/// `teams.yaml` at the catalog root: the teams that own documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Teams {
    pub api_version: String,
    pub kind: String,
    pub spec: TeamsSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsSpec {
    /// The team that owns the repository itself (teams.yaml, CODEOWNERS, CI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admins: Option<String>,
    pub teams: BTreeMap<String, Team>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Team {
    pub title: String,
    /// GitHub team handle, `@org/team`.
    pub github: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jira_project: Option<String>,
    /// Where the team hears about its requests, resources and approvals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<super::subscription::Subscription>,
}

/// A duration written as in the catalog: `500ms`, `30s`, `5m`, `2h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationSpec(std::time::Duration);

impl DurationSpec {
    pub fn as_duration(self) -> std::time::Duration {
        self.0
    }
}

/// A duration that does not read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration such as 30s, 5m, 2h or 7d")]
    NotADuration(String),
    #[error("`{0}` has an unknown unit; use ms, s, m, h or d")]
    UnknownUnit(String),
    #[error("`{0}` is too long a duration")]
    TooLong(String),
}

impl FromStr for DurationSpec {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, DurationError> {
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits
            .parse()
            .map_err(|_| DurationError::NotADuration(s.to_owned()))?;
        let millis = match unit {
            "ms" => Some(n),
            "s" => n.checked_mul(1_000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            "d" => n.checked_mul(86_400_000),
            _ => return Err(DurationError::UnknownUnit(s.to_owned())),
        };
        millis
            .map(|ms| DurationSpec(std::time::Duration::from_millis(ms)))
            .ok_or_else(|| DurationError::TooLong(s.to_owned()))
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms >= size && ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_in_catalog_form() {
        for (text, secs) in [("30s", 30), ("5m", 300), ("2h", 7200), ("7d", 604_800)] {
            let d: DurationSpec = text.parse().unwrap();
            assert_eq!(d.as_duration().as_secs(), secs);
            assert_eq!(d.to_string(), text);
        }
        assert_eq!(
            "500ms".parse::<DurationSpec>().unwrap().to_string(),
            "500ms"
        );
        assert!("5 minutes".parse::<DurationSpec>().is_err());
        assert!("99999999999999999d".parse::<DurationSpec>().is_err());
    }
}

/// What a request does: provision a new resource, or change or delete a recorded one.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    #[default]
    Provision,
    Update,
    Delete,
}

impl Operation {
    pub fn is_provision(&self) -> bool {
        *self == Operation::Provision
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Provision => "provision",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// Who must approve a request before anything runs, when its conditions hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApprovalPolicy {
    pub name: String,
    /// All must hold on the request (`$.fields...`); none: always.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
    /// The operations it gates (default: provision).
    #[serde(default = "provision_only")]
    pub operations: Vec<Operation>,
    pub stages: Vec<ApprovalStage>,
}

fn provision_only() -> Vec<Operation> {
    vec![Operation::Provision]
}

/// The stages of the policies that gate `operation`, in document order: stage `n`
/// (1-based) of a request is the `n`th of these.
pub fn approval_stages(
    policies: &[ApprovalPolicy],
    operation: Operation,
) -> Vec<(&ApprovalPolicy, &ApprovalStage)> {
    policies
        .iter()
        .filter(|p| p.operations.contains(&operation))
        .flat_map(|p| p.stages.iter().map(move |s| (p, s)))
        .collect()
}

/// One stage of a policy: who may approve, how many must, and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApprovalStage {
    pub name: String,
    pub approvers: Approvers,
    #[serde(default)]
    pub require: Require,
    /// Denied when not decided within this long (default 7 days), unless it escalates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate: Option<Escalation>,
}

/// How long a stage waits when it does not say.
pub const DEFAULT_APPROVAL_EXPIRY: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

impl ApprovalStage {
    pub fn expiry(&self) -> std::time::Duration {
        self.expires
            .map_or(DEFAULT_APPROVAL_EXPIRY, DurationSpec::as_duration)
    }
}

/// Who else decides when a stage expires undecided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Escalation {
    pub approvers: Approvers,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DurationSpec>,
}

/// Who may approve: the owning team's members, teams of `teams.yaml`, groups, named
/// users.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Approvers {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub owner: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
}

impl Approvers {
    pub fn is_empty(&self) -> bool {
        !self.owner && self.teams.is_empty() && self.groups.is_empty() && self.users.is_empty()
    }
}

/// How many approvals a stage needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, utoipa::ToSchema)]
pub enum Require {
    /// One.
    #[default]
    Any,
    /// Every named user.
    All,
    /// That many distinct approvers.
    Count(u32),
}

impl Serialize for Require {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Require::Any => s.serialize_str("any"),
            Require::All => s.serialize_str("all"),
            Require::Count(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Require {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s == "any" => Ok(Require::Any),
            Value::String(s) if s == "all" => Ok(Require::All),
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .map(Require::Count)
                .ok_or_else(|| serde::de::Error::custom("require: a count is a positive integer")),
            other => Err(serde::de::Error::custom(format!(
                "require: expected `any`, `all` or a count, got {other}"
            ))),
        }
    }
}

/// `calendars/*.yaml`: freezes and maintenance windows for the requests it covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangeCalendar {
    pub api_version: String,
    pub kind: String,
    pub metadata: CalendarMetadata,
    pub spec: CalendarSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CalendarMetadata {
    pub name: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CalendarSpec {
    /// The IANA time zone its times are in.
    pub time_zone: String,
    #[serde(default)]
    pub scope: CalendarScope,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freezes: Vec<Freeze>,
    /// When set, covered requests run only inside one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
}

/// What a calendar covers; an empty list covers everything of its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CalendarScope {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bundles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    #[serde(default = "all_operations")]
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
}

impl Default for CalendarScope {
    fn default() -> Self {
        CalendarScope {
            items: Vec::new(),
            bundles: Vec::new(),
            teams: Vec::new(),
            operations: all_operations(),
            when: Vec::new(),
        }
    }
}

fn all_operations() -> Vec<Operation> {
    vec![Operation::Provision, Operation::Update, Operation::Delete]
}

/// A blackout: nothing covered runs from `from` to `to` (civil times in the zone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Freeze {
    pub name: String,
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub on_conflict: OnConflict,
}

/// What a request that falls in a freeze does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Refused at submission, with the freeze's name and end.
    #[default]
    Refuse,
    /// Accepted, and waits until the freeze ends.
    Wait,
}

/// A recurring maintenance window: on `days`, from `from` to `to` (local times; a `to`
/// at or before `from` ends the next day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Window {
    pub name: String,
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
}
