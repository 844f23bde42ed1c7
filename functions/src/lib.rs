//! The Lambdas' shared start: configuration from the environment, the AWS adapters built
//! once per process, and the product assembled on them (`shared::assembly`), exactly as
//! local mode assembles it on the embedded adapters. Each binary in `src/bin` is a few
//! lines that pick what to serve; the handlers here are what the tests drive with real
//! event payloads.

pub mod api;
pub mod schedule;
pub mod worker;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::adapters::local::LocalCatalog;
use shared::assembly::{Assembly, Ports, assemble};
use shared::bundle::asl::QUEUE_PLACEHOLDER;
use shared::catalog::snapshot::CatalogSnapshot;
use shared::config::Config;
use shared::http::auth::Authenticator;
use shared::ports::{CatalogStore, SystemClock};

/// How long a webhook delivery record is kept (a replay older than this is handled
/// again, which ingestion's own checks make harmless).
const DELIVERY_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The assembled product of one Lambda process.
pub struct Deployment {
    pub config: Config,
    pub assembly: Assembly,
    /// The catalog this process serves, refreshed from the live version ingestion keeps.
    pub catalog: Arc<LocalCatalog>,
    /// When the live catalog version was last looked at (see `refresh_catalog_when_due`).
    checked: Mutex<Instant>,
    /// Where the `environment` scope is read again from (`aws.environmentPath`), and when
    /// it last was (see `refresh_environment_when_due`).
    environment: Option<(aws::environment::Source, Mutex<Instant>)>,
}

/// Whether `every` passed since `last`; if so, `last` becomes now.
fn due(last: &Mutex<Instant>, every: Duration) -> bool {
    let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
    let due = last.elapsed() >= every;
    if due {
        *last = Instant::now();
    }
    due
}

impl Deployment {
    /// Configuration from the process's environment (`ORCHESTRATOR_CONFIG_JSON` for the
    /// whole document, then the `ORCHESTRATOR_*` overrides), SDK configuration as Lambda
    /// provides it.
    pub async fn from_lambda_environment() -> Result<Deployment, String> {
        init_logs();
        let config = Config::from_environment(std::env::vars())?;
        shared::metrics::install(Box::new(shared::metrics::Emf::stdout(
            config.aws.metrics_namespace.clone(),
        )));
        let sdk = aws::from_environment().await;
        Deployment::start(config, &sdk).await
    }

    /// Builds the AWS adapters of `config.aws` on `sdk` and assembles the product.
    pub async fn start(mut config: Config, sdk: &aws::SdkConfig) -> Result<Deployment, String> {
        let environment = match config.aws.environment_path.clone() {
            Some(path) => {
                let source = aws::environment::Source::new(sdk, &path, config.environment.clone());
                config.environment = source.load().await?;
                Some((source, Mutex::new(Instant::now())))
            }
            None => None,
        };
        let settings = &config.aws;
        let queue_url = settings
            .action_queue_url
            .clone()
            .ok_or("aws.actionQueueUrl (ORCHESTRATOR_ACTION_QUEUE_URL) is not set")?;
        let dead_letters = settings
            .dead_letter_queue_url
            .clone()
            .ok_or("aws.deadLetterQueueUrl (ORCHESTRATOR_DEAD_LETTER_QUEUE_URL) is not set")?;
        let state: Arc<dyn shared::ports::StateStore> = Arc::new(
            aws::DynamoStateStore::new(sdk, &settings.table)
                .expiring(shared::ingest::INGESTIONS, DELIVERY_TTL),
        );
        let snapshot = match shared::ingest::restore(state.as_ref()).await? {
            Some(live) => live,
            None => {
                tracing::warn!(
                    "no catalog version has been ingested yet: serving an empty catalog until the first push"
                );
                CatalogSnapshot::empty()
            }
        };
        let catalog = Arc::new(LocalCatalog::new(snapshot));
        let ports = Ports {
            catalog: catalog.clone(),
            requests: Arc::new(aws::DynamoRequestStore::new(sdk, &settings.table)),
            resources: Arc::new(aws::DynamoResourceStore::new(sdk, &settings.table)),
            state,
            audit: Arc::new(aws::DynamoAuditLog::new(sdk, &settings.table)),
            queue: Arc::new(aws::SqsQueue::new(sdk, queue_url.clone(), dead_letters)),
            secrets: Arc::new(aws::SecretsManager::new(
                sdk,
                settings.secrets_prefix.clone(),
                aws::secrets::DEFAULT_TTL,
            )),
            workflows: Arc::new(aws::StepFunctions::new(
                sdk,
                &config.region,
                &settings.account_id,
                settings.state_machine_prefix.clone(),
                settings.states_role_arn.clone(),
                vec![(QUEUE_PLACEHOLDER.to_owned(), queue_url)],
            )),
            clock: Arc::new(SystemClock),
            publisher: Some(Arc::new(aws::SnsTopics::new(sdk))),
            aws_actions: aws::actions::all(sdk, &config.aws),
            archive: config.retention.export_bucket.as_ref().map(|bucket| {
                Arc::new(aws::S3Archive::new(
                    sdk,
                    bucket.clone(),
                    &config.retention.export_prefix,
                )) as Arc<dyn shared::ports::Archive>
            }),
        };
        // API Gateway's JWT authorizer checks tokens and hands the claims over; a JWKS
        // file, when configured, lets the function check them itself as well.
        let auth = match &config.auth.jwks_file {
            Some(path) => Authenticator::from_jwks(
                &std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            )?,
            None => Authenticator::gateway(),
        };
        let assembly = assemble(&config, ports, auth, settings.max_receives).await?;
        Ok(Deployment {
            config,
            assembly,
            catalog,
            checked: Mutex::new(Instant::now()),
            environment,
        })
    }

    /// [`refresh_catalog`](Self::refresh_catalog) if `aws.catalogRefreshSeconds` passed
    /// since the last look (the api function, where it costs a read on a caller's time).
    /// A failure leaves the version in hand served.
    pub async fn refresh_catalog_when_due(&self) {
        let every = Duration::from_secs(self.config.aws.catalog_refresh_seconds);
        if due(&self.checked, every)
            && let Err(e) = self.refresh_catalog().await
        {
            tracing::warn!(error = %e, "could not look at the live catalog version; serving the one in hand");
        }
    }

    /// Reads the `environment` scope from Parameter Store again if
    /// `aws.catalogRefreshSeconds` passed since the last read (the api and worker
    /// functions, on a caller's or a task's time): a changed parameter reaches the
    /// requests that follow. The keys that changed.
    pub async fn refresh_environment_when_due(&self) -> Vec<String> {
        let Some((source, last)) = &self.environment else {
            return Vec::new();
        };
        let every = Duration::from_secs(self.config.aws.catalog_refresh_seconds);
        if !due(last, every) {
            return Vec::new();
        }
        source
            .reload(&self.assembly.worker.system.environment)
            .await
    }

    /// Serves the version ingestion made live, if it is not the one served: `true` when
    /// it changed.
    pub async fn refresh_catalog(&self) -> Result<bool, String> {
        let served = self.catalog.current().version.clone();
        match shared::ingest::live_version(self.assembly.app.state.as_ref()).await? {
            Some(live) if live != served => {
                if let Some(snapshot) =
                    shared::ingest::restore(self.assembly.app.state.as_ref()).await?
                {
                    tracing::info!(version = %snapshot.version, "serving the catalog version made live");
                    self.catalog.publish(snapshot);
                    return Ok(true);
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }
}

/// JSON logs to stdout (CloudWatch), as local mode writes them; `RUST_LOG` filters.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .try_init();
}
