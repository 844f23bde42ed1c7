//! Reaching other accounts: an action that names an `account` runs with the credentials
//! of a role assumed in it (`sts:AssumeRole` on `arn:aws:iam::<account>:role/<name>`,
//! with the configured external id), kept until five minutes before they expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};
use shared::fulfillment::actions::ActionError;

/// Credentials are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// The role actions assume in the accounts they name.
#[derive(Debug, Clone)]
pub struct TargetRole {
    pub name: String,
    pub external_id: Option<String>,
}

/// The partition of a region's ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("eusc-") {
        "aws-eusc"
    } else {
        "aws"
    }
}

/// The deployment's own AWS configuration, and one per account reached so far.
pub struct Accounts {
    base: SdkConfig,
    role: TargetRole,
    reached: Mutex<HashMap<String, SdkConfig>>,
}

impl Accounts {
    pub fn new(base: SdkConfig, role: TargetRole) -> Self {
        Accounts {
            base,
            role,
            reached: Mutex::new(HashMap::new()),
        }
    }

    /// The deployment's configuration (for defaults such as the region).
    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// The configuration an action's client is made from: its account's (see
    /// [`Self::account`]) in its `region`, or the deployment's region.
    pub async fn config(
        &self,
        account: Option<&str>,
        region: Option<&str>,
    ) -> Result<SdkConfig, ActionError> {
        let sdk = self.account(account).await?;
        Ok(sdk
            .to_builder()
            .region(super::region(&self.base, region))
            .build())
    }

    /// A client of one service made by `new` (`aws_sdk_ssm::Client::new`, ...) from
    /// [`Self::config`].
    pub async fn client<C>(
        &self,
        account: Option<&str>,
        region: Option<&str>,
        new: impl FnOnce(&SdkConfig) -> C,
    ) -> Result<C, ActionError> {
        Ok(new(&self.config(account, region).await?))
    }

    /// The host an action reaches, for its circuit breaker: `<service>.<region>`.
    pub fn target(&self, service: &str, with: &serde_json::Value) -> Option<String> {
        let wanted = with.get("region").and_then(serde_json::Value::as_str);
        super::region(&self.base, wanted).map(|r| format!("{service}.{r}"))
    }

    /// The configuration of an account: the deployment's, or, when the action names an
    /// `account`, one whose credentials come from the role assumed there.
    async fn account(&self, account: Option<&str>) -> Result<SdkConfig, ActionError> {
        let Some(account) = account else {
            return Ok(self.base.clone());
        };
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ActionError::permanent(format!(
                "`account` must be a 12-digit AWS account id, not `{account}`"
            )));
        }
        if let Some(found) = self
            .reached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(account)
        {
            return Ok(found.clone());
        }
        let arn = format!(
            "arn:{}:iam::{account}:role/{}",
            partition(self.base.region().map(|r| r.as_ref()).unwrap_or_default()),
            self.role.name
        );
        let mut builder = AssumeRoleProvider::builder(&arn)
            .session_name("orchestrator")
            .configure(&self.base);
        if let Some(id) = &self.role.external_id {
            builder = builder.external_id(id);
        }
        let cached = CachedRole {
            inner: builder.build().await,
            held: Arc::new(Mutex::new(None)),
        };
        // Assume it once now, so a refusal names the role (and is not cached).
        cached.fetch().await.map_err(|e| {
            let why = format!(
                "sts:AssumeRole into {arn}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            );
            if why.contains("AccessDenied") || why.contains("not authorized") {
                ActionError::permanent(why)
            } else {
                ActionError::retryable(why)
            }
        })?;
        let config = self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(cached))
            .build();
        self.reached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account.to_owned(), config.clone());
        Ok(config)
    }
}

/// An assumed role's credentials, fetched again only when they are about to expire.
#[derive(Debug)]
struct CachedRole {
    inner: AssumeRoleProvider,
    held: Arc<Mutex<Option<Credentials>>>,
}

impl CachedRole {
    async fn fetch(&self) -> Result<Credentials, CredentialsError> {
        if let Some(held) = self.held.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            let fresh = held
                .expiry()
                .is_none_or(|at| at > SystemTime::now() + RENEW_BEFORE);
            if fresh {
                return Ok(held);
            }
        }
        let credentials = self.inner.provide_credentials().await?;
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(credentials.clone());
        Ok(credentials)
    }
}

impl ProvideCredentials for CachedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.fetch())
    }
}
