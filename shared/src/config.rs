//! Configuration, typed and loaded once: defaults, then a file (`--config FILE`, YAML or
//! JSON), then environment variables, then command-line flags. Every key is documented in
//! the README.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// The catalog repository to serve.
    pub catalog_dir: PathBuf,
    /// Where local mode keeps its database.
    pub data_dir: PathBuf,
    pub auth: AuthConfig,
    /// A JSON file of named secrets (`{"name": "value"}`).
    pub secrets_file: Option<PathBuf>,
    pub jira: JiraConfig,
    pub github: GithubConfig,
    /// Start the sandbox: stand-ins for JIRA (and later GitHub and others) on loopback, for
    /// trying the product without them. Never on unless asked for.
    pub sandbox: bool,
    /// Deployment stage (the `system.stage` template variable).
    pub stage: String,
    pub region: String,
    /// The `environment` template scope: per-deployment facts that catalog items read,
    /// such as API base URLs, the account id or the VPC (`{{environment.dbaasApiUrl}}`).
    pub environment: serde_json::Map<String, serde_json::Value>,
    /// Run the worker in this process (the default). Off, the process serves the API only
    /// and requests wait in the queue for a worker elsewhere.
    pub worker: bool,
    pub resources: ResourcesConfig,
    /// The built developer portal (`npm run build` in `portal/`), served at `/` in local
    /// mode. When the directory has no `index.html`, `/` says how to build it.
    pub portal_dir: PathBuf,
    /// Where the Lambdas find their AWS resources (unused in local mode).
    pub aws: AwsConfig,
    pub notifications: NotificationsConfig,
    pub retention: RetentionConfig,
}

/// Notifications: the deployment's own subscriptions (teams add theirs in `teams.yaml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct NotificationsConfig {
    /// The portal's address, for the links notifications carry (local mode: the address
    /// it listens on).
    pub portal_url: Option<String>,
    /// Subscriptions that hear about every request, resource and approval their filters
    /// let through.
    pub subscriptions: Vec<crate::catalog::subscription::Subscription>,
}

impl NotificationsConfig {
    /// What is wrong with the subscriptions (`sns`: whether the deployment has SNS).
    pub fn problems(&self, sns: bool) -> Vec<String> {
        let mut out = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, s) in self.subscriptions.iter().enumerate() {
            let at = format!("notifications.subscriptions[{i}]");
            if !names.insert(s.name.as_str()) {
                out.push(format!("{at}.name: `{}` is used twice", s.name));
            }
            for (pointer, why) in s.problems() {
                let field = pointer.trim_start_matches('/').replace('/', ".");
                let at = if field.is_empty() {
                    at.clone()
                } else {
                    format!("{at}.{field}")
                };
                out.push(format!("{at}: {why}"));
            }
            if s.sns.is_some() && !sns {
                out.push(format!(
                    "{at}.sns: local mode has no SNS; use slack or webhook here"
                ));
            }
        }
        out
    }
}

/// The AWS resources of a deployment, which the SAM template passes to each function as
/// environment variables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct AwsConfig {
    /// The DynamoDB table (docs/dynamodb.md).
    pub table: String,
    pub action_queue_url: Option<String>,
    pub dead_letter_queue_url: Option<String>,
    /// Receives before SQS moves a message to the dead-letter queue: the queue's redrive
    /// `maxReceiveCount`, which the worker must know to fail a request on its last try.
    pub max_receives: u32,
    /// The account state machines live in (their ARNs are built from it).
    pub account_id: String,
    /// The role state machines run as.
    pub states_role_arn: String,
    /// Put before every state machine's name (the stack's name).
    pub state_machine_prefix: String,
    /// Secret `NAME` is the Secrets Manager secret `<secretsPrefix>NAME`.
    pub secrets_prefix: String,
    /// How often an api function looks for a catalog version made live (seconds).
    pub catalog_refresh_seconds: u64,
    /// The JWT claim that lists a caller's groups (`cognito:groups` for Cognito).
    pub groups_claim: String,
    /// The CloudWatch namespace of the functions' metrics (Embedded Metric Format).
    pub metrics_namespace: String,
    /// Local mode: the AWS endpoint that actions provisioning in AWS call (moto on
    /// loopback, with test credentials). Unset, local mode has those actions only when
    /// the environment names AWS credentials (`AWS_PROFILE`, `AWS_ACCESS_KEY_ID`).
    pub endpoint_url: Option<String>,
    /// The role actions assume in the accounts they name (`account`):
    /// `arn:aws:iam::<account>:role/<targetRoleName>`.
    pub target_role_name: String,
    /// The external id that role's trust policy asks for.
    pub target_role_external_id: Option<String>,
    /// The role CloudFormation makes and deletes the resources of stacks as (a service
    /// role, passed as `RoleARN`): `arn:aws:iam::<account>:role/<stackRoleName>` in the
    /// action's account, or the deployment's (`accountId`). Unset, CloudFormation acts
    /// with the worker's own credentials (local mode on moto).
    pub stack_role_name: Option<String>,
    /// A Parameter Store path whose `String` and `StringList` parameters fill the
    /// `environment` scope at start and again while the process runs
    /// (`/orchestrator/<stage>/environment/`); keys the configuration sets win.
    pub environment_path: Option<String>,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            table: "orchestrator".to_owned(),
            action_queue_url: None,
            dead_letter_queue_url: None,
            max_receives: 5,
            account_id: String::new(),
            states_role_arn: String::new(),
            state_machine_prefix: String::new(),
            secrets_prefix: "orchestrator/".to_owned(),
            catalog_refresh_seconds: 15,
            groups_claim: "groups".to_owned(),
            metrics_namespace: "Orchestrator".to_owned(),
            endpoint_url: None,
            target_role_name: "orchestrator-target".to_owned(),
            target_role_external_id: None,
            stack_role_name: None,
            environment_path: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ResourcesConfig {
    /// How long a change holds its resource without renewing its lease (seconds).
    pub lease_seconds: u64,
    /// Seconds between drift reconciliation passes; 0 turns the reconciler off.
    pub reconcile_seconds: u64,
    /// How many resources of one batch of a pass the worker verifies at the same time.
    pub reconcile_concurrency: usize,
    /// How many verify calls one process sends to one target host at the same time.
    pub reconcile_per_host: usize,
}

impl Default for ResourcesConfig {
    fn default() -> Self {
        ResourcesConfig {
            lease_seconds: 600,
            reconcile_seconds: 300,
            reconcile_concurrency: 16,
            reconcile_per_host: 32,
        }
    }
}

/// How long ended requests' timelines and audit entries are kept, and where they are
/// exported before they are removed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RetentionConfig {
    /// Days an ended request's timeline is kept after the request was made; 0 keeps it
    /// for ever. The request itself (status, fields, outputs) is kept.
    pub timeline_days: u32,
    /// Days an audit entry is kept; 0 keeps it for ever.
    pub audit_days: u32,
    /// Local mode: the directory exports go to (JSON Lines). With an export configured,
    /// nothing is removed that was not exported first.
    pub export_dir: Option<PathBuf>,
    /// On AWS: the S3 bucket exports go to, under `exportPrefix`.
    pub export_bucket: Option<String>,
    pub export_prefix: String,
    /// Local mode: seconds between retention steps (on AWS the reconciler's schedule).
    pub every_seconds: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            timeline_days: 0,
            audit_days: 0,
            export_dir: None,
            export_bucket: None,
            export_prefix: "exports".to_owned(),
            every_seconds: 300,
        }
    }
}

impl RetentionConfig {
    /// Whether anything is ever removed.
    pub fn removes(&self) -> bool {
        self.timeline_days > 0 || self.audit_days > 0
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct AuthConfig {
    /// The group whose members are admins.
    pub admin_group: String,
    /// Name of the secret holding the HS256 key of local tokens. Unset: local mode creates
    /// a random key in the data directory on first start.
    pub dev_secret: Option<String>,
    /// A JWKS file: accept RS256 tokens signed by its keys instead of HS256 dev tokens.
    pub jwks_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct JiraConfig {
    /// Base URL of the JIRA instance.
    pub url: Option<String>,
    /// Email for basic authentication (with `tokenSecret` as the API token). Unset: the
    /// token is a personal access token sent as a bearer token.
    pub email: Option<String>,
    /// Name of the secret holding the API token or personal access token.
    pub token_secret: String,
    /// Name of the secret that JIRA's webhook must present.
    pub webhook_secret: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct GithubConfig {
    /// The REST API base: `https://api.github.com`, or `https://HOST/api/v3` for GitHub
    /// Enterprise Server.
    pub api_url: String,
    /// Name of the secret holding the token the github-workflow and terraform actions use
    /// (an action may name its own with `token`), and catalog ingestion reads with.
    pub token_secret: String,
    /// The catalog's repository, when pushes to it update the catalog
    /// (`POST /webhooks/github`). Unset: the catalog comes from `catalogDir` only.
    pub catalog: Option<GithubCatalogConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct GithubCatalogConfig {
    /// `owner/name`.
    pub repository: String,
    /// The branch whose pushes count.
    pub branch: String,
    /// The catalog's directory inside the repository (empty: the root).
    pub path: String,
    /// Name of the secret the webhook is signed with (`X-Hub-Signature-256`).
    pub webhook_secret: String,
}

impl Default for GithubCatalogConfig {
    fn default() -> Self {
        GithubCatalogConfig {
            repository: String::new(),
            branch: "main".to_owned(),
            path: String::new(),
            webhook_secret: "github-webhook".to_owned(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".to_owned(),
            catalog_dir: PathBuf::from("examples/catalog"),
            data_dir: PathBuf::from(".orchestrator"),
            auth: AuthConfig::default(),
            secrets_file: None,
            jira: JiraConfig::default(),
            github: GithubConfig::default(),
            sandbox: false,
            stage: "local".to_owned(),
            region: "local".to_owned(),
            aws: AwsConfig::default(),
            environment: serde_json::Map::new(),
            worker: true,
            resources: ResourcesConfig::default(),
            retention: RetentionConfig::default(),
            portal_dir: PathBuf::from("portal/dist"),
            notifications: NotificationsConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            admin_group: "platform-admins".to_owned(),
            dev_secret: None,
            jwks_file: None,
        }
    }
}

impl Default for JiraConfig {
    fn default() -> Self {
        JiraConfig {
            url: None,
            email: None,
            token_secret: "jira-token".to_owned(),
            webhook_secret: "jira-webhook".to_owned(),
        }
    }
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            api_url: "https://api.github.com".to_owned(),
            token_secret: "github-token".to_owned(),
            catalog: None,
        }
    }
}

/// A number of days from variable `name` (key `key`), or an error naming both.
fn days(key: &str, name: &str, value: &str) -> Result<u32, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{key} ({name}) must be a whole number of days, not `{value}`"))
}

/// The environment variables that override configuration keys.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("ORCHESTRATOR_LISTEN", "listen"),
    ("ORCHESTRATOR_CATALOG_DIR", "catalogDir"),
    ("ORCHESTRATOR_DATA_DIR", "dataDir"),
    ("ORCHESTRATOR_ADMIN_GROUP", "auth.adminGroup"),
    ("ORCHESTRATOR_JWKS_FILE", "auth.jwksFile"),
    ("ORCHESTRATOR_SECRETS_FILE", "secretsFile"),
    ("ORCHESTRATOR_JIRA_URL", "jira.url"),
    ("ORCHESTRATOR_JIRA_EMAIL", "jira.email"),
    ("ORCHESTRATOR_GITHUB_API_URL", "github.apiUrl"),
    ("ORCHESTRATOR_STAGE", "stage"),
    ("ORCHESTRATOR_REGION", "region"),
    ("ORCHESTRATOR_PORTAL_DIR", "portalDir"),
    ("ORCHESTRATOR_TABLE", "aws.table"),
    ("ORCHESTRATOR_ACTION_QUEUE_URL", "aws.actionQueueUrl"),
    (
        "ORCHESTRATOR_DEAD_LETTER_QUEUE_URL",
        "aws.deadLetterQueueUrl",
    ),
    ("ORCHESTRATOR_MAX_RECEIVES", "aws.maxReceives"),
    ("ORCHESTRATOR_ACCOUNT_ID", "aws.accountId"),
    ("ORCHESTRATOR_STATES_ROLE_ARN", "aws.statesRoleArn"),
    (
        "ORCHESTRATOR_STATE_MACHINE_PREFIX",
        "aws.stateMachinePrefix",
    ),
    ("ORCHESTRATOR_SECRETS_PREFIX", "aws.secretsPrefix"),
    ("ORCHESTRATOR_GROUPS_CLAIM", "aws.groupsClaim"),
    ("ORCHESTRATOR_METRICS_NAMESPACE", "aws.metricsNamespace"),
    ("ORCHESTRATOR_WORKER", "worker"),
    ("ORCHESTRATOR_PORTAL_URL", "notifications.portalUrl"),
    ("ORCHESTRATOR_AWS_ENDPOINT_URL", "aws.endpointUrl"),
    ("ORCHESTRATOR_TARGET_ROLE_NAME", "aws.targetRoleName"),
    ("ORCHESTRATOR_ENVIRONMENT_PATH", "aws.environmentPath"),
    ("ORCHESTRATOR_STACK_ROLE_NAME", "aws.stackRoleName"),
    (
        "ORCHESTRATOR_TARGET_ROLE_EXTERNAL_ID",
        "aws.targetRoleExternalId",
    ),
    (
        "ORCHESTRATOR_NOTIFICATIONS_TOPIC_ARN",
        "notifications.subscriptions (adds `stack-topic`, every event to this SNS topic)",
    ),
    (
        "ORCHESTRATOR_TIMELINE_RETENTION_DAYS",
        "retention.timelineDays",
    ),
    ("ORCHESTRATOR_AUDIT_RETENTION_DAYS", "retention.auditDays"),
    ("ORCHESTRATOR_EXPORT_BUCKET", "retention.exportBucket"),
];

/// The environment variable holding a whole configuration document (JSON) where there
/// is no file to read: the Lambdas'.
pub const CONFIG_JSON: &str = "ORCHESTRATOR_CONFIG_JSON";

impl Config {
    /// Defaults, then `file`, then the environment (`vars`, usually `std::env::vars()`).
    pub fn load(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, String> {
        let mut config = match file {
            None => Config::default(),
            Some(path) => {
                let value = crate::catalog::yaml::read_file(path)?
                    .unwrap_or(serde_json::Value::Object(Default::default()));
                serde_path_to_error::deserialize(&value)
                    .map_err(|e| format!("{}: at `{}`: {}", path.display(), e.path(), e.inner()))?
            }
        };
        for (name, value) in vars {
            config.apply_env(&name, value)?;
        }
        Ok(config)
    }

    /// A Lambda's configuration: defaults, then the document in
    /// `ORCHESTRATOR_CONFIG_JSON` if set, then the other variables.
    pub fn from_environment(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, String> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let mut config = match vars.iter().find(|(name, _)| name == CONFIG_JSON) {
            None => Config::default(),
            Some((_, text)) => {
                let value: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| format!("{CONFIG_JSON} is not JSON: {e}"))?;
                serde_path_to_error::deserialize(&value)
                    .map_err(|e| format!("{CONFIG_JSON}: at `{}`: {}", e.path(), e.inner()))?
            }
        };
        for (name, value) in vars {
            config.apply_env(&name, value)?;
        }
        config.check_numbers()?;
        Ok(config)
    }

    /// Numbers given as environment variables that are not numbers.
    fn check_numbers(&self) -> Result<(), String> {
        if self.aws.max_receives == 0 {
            return Err(
                "aws.maxReceives (ORCHESTRATOR_MAX_RECEIVES) must be a number above 0".to_owned(),
            );
        }
        Ok(())
    }

    /// Applies one `ORCHESTRATOR_*` variable. An empty one counts as unset: CloudFormation
    /// passes an optional parameter left out as an empty string.
    /// A value that cannot be one of its key's is refused, naming the variable.
    fn apply_env(&mut self, name: &str, value: String) -> Result<(), String> {
        if value.is_empty() {
            return Ok(());
        }
        match name {
            "ORCHESTRATOR_LISTEN" => self.listen = value,
            "ORCHESTRATOR_CATALOG_DIR" => self.catalog_dir = value.into(),
            "ORCHESTRATOR_DATA_DIR" => self.data_dir = value.into(),
            "ORCHESTRATOR_ADMIN_GROUP" => self.auth.admin_group = value,
            "ORCHESTRATOR_JWKS_FILE" => self.auth.jwks_file = Some(value.into()),
            "ORCHESTRATOR_SECRETS_FILE" => self.secrets_file = Some(value.into()),
            "ORCHESTRATOR_JIRA_URL" => self.jira.url = Some(value),
            "ORCHESTRATOR_JIRA_EMAIL" => self.jira.email = Some(value),
            "ORCHESTRATOR_GITHUB_API_URL" => self.github.api_url = value,
            "ORCHESTRATOR_STAGE" => self.stage = value,
            "ORCHESTRATOR_REGION" => self.region = value,
            "ORCHESTRATOR_PORTAL_DIR" => self.portal_dir = value.into(),
            "ORCHESTRATOR_PORTAL_URL" => self.notifications.portal_url = Some(value),
            "ORCHESTRATOR_AWS_ENDPOINT_URL" => self.aws.endpoint_url = Some(value),
            "ORCHESTRATOR_TARGET_ROLE_NAME" => self.aws.target_role_name = value,
            "ORCHESTRATOR_ENVIRONMENT_PATH" => self.aws.environment_path = Some(value),
            "ORCHESTRATOR_TARGET_ROLE_EXTERNAL_ID" => {
                self.aws.target_role_external_id = Some(value)
            }
            // The stack's topic hears of everything.
            "ORCHESTRATOR_NOTIFICATIONS_TOPIC_ARN" => {
                self.notifications
                    .subscriptions
                    .push(crate::catalog::subscription::Subscription {
                        name: "stack-topic".to_owned(),
                        events: crate::catalog::subscription::Topic::ALL.to_vec(),
                        targets: Vec::new(),
                        teams: Vec::new(),
                        slack: None,
                        webhook: None,
                        sns: Some(crate::catalog::subscription::SnsChannel { topic_arn: value }),
                    })
            }
            "ORCHESTRATOR_TIMELINE_RETENTION_DAYS" => {
                self.retention.timeline_days = days("retention.timelineDays", name, &value)?
            }
            "ORCHESTRATOR_AUDIT_RETENTION_DAYS" => {
                self.retention.audit_days = days("retention.auditDays", name, &value)?
            }
            "ORCHESTRATOR_EXPORT_BUCKET" => self.retention.export_bucket = Some(value),
            "ORCHESTRATOR_TABLE" => self.aws.table = value,
            "ORCHESTRATOR_ACTION_QUEUE_URL" => self.aws.action_queue_url = Some(value),
            "ORCHESTRATOR_DEAD_LETTER_QUEUE_URL" => self.aws.dead_letter_queue_url = Some(value),
            // Not a number: 0, which `check_numbers` refuses, naming the variable.
            "ORCHESTRATOR_MAX_RECEIVES" => {
                self.aws.max_receives = value.trim().parse().unwrap_or(0)
            }
            "ORCHESTRATOR_ACCOUNT_ID" => self.aws.account_id = value,
            "ORCHESTRATOR_STACK_ROLE_NAME" => self.aws.stack_role_name = Some(value),
            "ORCHESTRATOR_STATES_ROLE_ARN" => self.aws.states_role_arn = value,
            "ORCHESTRATOR_STATE_MACHINE_PREFIX" => self.aws.state_machine_prefix = value,
            "ORCHESTRATOR_SECRETS_PREFIX" => self.aws.secrets_prefix = value,
            "ORCHESTRATOR_GROUPS_CLAIM" => self.aws.groups_claim = value,
            "ORCHESTRATOR_METRICS_NAMESPACE" => self.aws.metrics_namespace = value,
            "ORCHESTRATOR_WORKER" => {
                self.worker = match value.trim() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => {
                        return Err(format!(
                            "worker (ORCHESTRATOR_WORKER) must be true or false, not `{other}`"
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_overrides_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(
            &path,
            "listen: 0.0.0.0:9000\njira:\n  url: https://jira.example\n",
        )
        .unwrap();
        let vars = [(
            "ORCHESTRATOR_JIRA_URL".to_owned(),
            "http://127.0.0.1:1".to_owned(),
        )];
        let config = Config::load(Some(&path), vars).unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.jira.url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(config.auth.admin_group, "platform-admins");
    }

    #[test]
    fn the_worker_can_be_switched_off_by_the_environment_and_a_bad_value_is_named() {
        let vars = |v: &str| [("ORCHESTRATOR_WORKER".to_owned(), v.to_owned())];
        assert!(Config::load(None, []).unwrap().worker);
        assert!(!Config::load(None, vars("false")).unwrap().worker);
        assert!(Config::load(None, vars("1")).unwrap().worker);
        let err = Config::load(None, vars("nope")).unwrap_err();
        assert!(
            err.contains("ORCHESTRATOR_WORKER") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        // What the SAM template passes for an optional parameter left out.
        let vars = [
            ("ORCHESTRATOR_JIRA_URL", ""),
            ("ORCHESTRATOR_JIRA_EMAIL", ""),
            ("ORCHESTRATOR_GITHUB_API_URL", ""),
            ("ORCHESTRATOR_TABLE", "orchestrator-dev-Table"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = Config::from_environment(vars).unwrap();
        assert_eq!(config.jira.url, None);
        assert_eq!(config.jira.email, None);
        assert_eq!(config.github.api_url, GithubConfig::default().api_url);
        assert_eq!(config.aws.table, "orchestrator-dev-Table");
    }

    #[test]
    fn an_unknown_key_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "jira:\n  urll: x\n").unwrap();
        let err = Config::load(Some(&path), []).unwrap_err();
        assert!(err.contains("jira") && err.contains("urll"), "{err}");
    }
}
