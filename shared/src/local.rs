//! Local mode: the whole product in one process on embedded parts. `start` wires the
//! configuration to the SQLite adapters and serves the API; the same assembly backs
//! `orchestrator serve` and the black-box tests.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::adapters::local::catalog::Reload;
use crate::adapters::local::{
    Db, LocalCatalog, LocalSecrets, LocalWorkflows, QueueTarget, SqliteAuditLog, SqliteQueue,
    SqliteRequestStore, SqliteResourceStore, SqliteStateStore,
};
use crate::assembly::{Assembly, Ports, assemble};
use crate::bundle::asl::QUEUE_PLACEHOLDER;
use crate::catalog::snapshot::CatalogSnapshot;
use crate::config::Config;
use crate::http::auth::Authenticator;
use crate::http::{AppState, router};
use crate::ports::{CatalogStore, Clock, Secrets, SystemClock};
use crate::secret::SecretString;

/// How often local mode looks at the service level clocks of running requests.
const SLA_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// The name of the action queue.
pub const ACTION_QUEUE: &str = "actions";

/// The action queue's URL in local mode, substituted for `${ActionQueueUrl}` in state
/// machine definitions.
pub const ACTION_QUEUE_URL: &str = "https://sqs.local/000000000000/actions";

/// Receives before a message is dead-lettered.
pub const MAX_RECEIVES: u32 = 5;

/// A running local-mode server.
pub struct Running {
    /// Held for the life of the process: one process per data directory.
    _lock: std::fs::File,
    pub addr: SocketAddr,
    pub state: AppState,
    /// The JIRA the worker talks to (the sandbox's, with `sandbox`).
    pub jira_url: Option<String>,
    shutdown: watch::Sender<bool>,
    db: Db,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    worker: tokio::task::JoinHandle<()>,
    timers: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting connections, lets in-flight requests finish, lets the worker finish
    /// the message in hand (unfinished ones return to the queue), and waits.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self
            .server
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let _ = self.worker.await;
        let _ = self.timers.await;
        // Writes nobody waited for (audit entries) are committed before the process ends.
        if let Err(e) = self.db.flush().await {
            tracing::error!(error = %e, "could not settle the last database writes");
        }
        served
    }
}

/// Takes the data directory for this process alone: local mode's queue recovery assumes
/// that no other process works on the same database.
fn lock_data_dir(dir: &Path) -> Result<std::fs::File, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another orchestrator is already serving the data directory {}; stop it or use another --data",
            dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

/// The HS256 key of local tokens: the configured secret, else a random key kept in the
/// data directory so tokens survive restarts.
pub async fn dev_secret(config: &Config, secrets: &dyn Secrets) -> Result<SecretString, String> {
    if let Some(name) = &config.auth.dev_secret {
        return secrets
            .get(name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("auth.devSecret names the secret `{name}`, which is not set"));
    }
    let path = config.data_dir.join("dev-secret");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(SecretString::new(text.trim()));
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_private(&path, &key).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(SecretString::new(key))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// How often `serve` looks at the catalog directory for edits.
const CATALOG_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Serves each valid edit of the catalog directory, whole, as it is saved (and deploys
/// the state machines of its bundles and automated items); an edit that does not
/// validate is logged, file and line, and the previous version stays.
async fn watch_catalog(
    catalog: Arc<LocalCatalog>,
    dir: std::path::PathBuf,
    mut last: u64,
    workflows: LocalWorkflows,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CATALOG_POLL) => {}
            _ = shutdown.changed() => return,
        }
        match catalog.reload(&dir, &mut last).await {
            Reload::Unchanged | Reload::Same => {}
            Reload::Replaced(snapshot) => {
                tracing::info!(
                    version = %snapshot.version,
                    items = snapshot.catalog.items.len(),
                    bundles = snapshot.catalog.bundles.len(),
                    "catalog reloaded"
                );
                if let Err(e) = crate::ingest::deploy(&workflows, &snapshot).await {
                    tracing::error!(error = %e, "the reloaded catalog's state machines were not deployed");
                }
            }
            Reload::Refused(why) => tracing::warn!(
                directory = %dir.display(),
                errors = %why,
                version = %crate::ports::CatalogStore::current(catalog.as_ref()).version,
                "the catalog edit does not validate; the previous version stays live"
            ),
        }
    }
}

/// Loads the catalog, opens the database and serves the API on `config.listen`. Local
/// mode's wiring, step after step in the order it must happen (the sandbox before the
/// secrets it sets, the queue released before the worker starts): about 150 lines read
/// top to bottom, like a Lambda's `main`.
pub async fn start(config: &Config) -> Result<Running, String> {
    start_with(config, Extensions::default()).await
}

/// What the caller adds to local mode: what the `shared` crate cannot build itself.
#[derive(Default)]
pub struct Extensions {
    /// The actions that reach AWS (the `aws` crate's, on `aws.endpointUrl`).
    pub aws_actions: crate::fulfillment::actions::AwsActions,
}

/// [`start`] with `extensions`.
pub async fn start_with(config: &Config, extensions: Extensions) -> Result<Running, String> {
    // Taken first, so that an edit made while the catalog loads is seen.
    let catalog_stamp = crate::adapters::local::catalog::stamp(&config.catalog_dir);
    let snapshot = CatalogSnapshot::from_dir(&config.catalog_dir)
        .map_err(|e| format!("catalog {}: {e}", config.catalog_dir.display()))?;
    let lock = lock_data_dir(&config.data_dir)?;
    let mut local_secrets = LocalSecrets::load(config.secrets_file.as_deref())?;
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut config = config.clone();
    let mut sandbox_routes = None;
    if config.sandbox {
        // The sandbox's JIRA, with fresh credentials, reporting to this process.
        let hook = uuid::Uuid::new_v4().simple().to_string();
        let webhook = format!(
            "http://127.0.0.1:{}/webhooks/jira?secret={hook}",
            addr.port()
        );
        let jira = crate::sandbox::start_jira(webhook).await?;
        config.jira.url = Some(jira.url);
        sandbox_routes = Some(jira.routes);
        config.jira.email = Some("sandbox@orchestrator.local".to_owned());
        local_secrets.set(&config.jira.token_secret, "sandbox-token");
        local_secrets.set(&config.jira.webhook_secret, &hook);
        // Stand-ins for the provisioning APIs; configuration the user gave wins.
        let services = crate::sandbox::services::start().await?;
        for (key, value) in services.environment {
            config.environment.entry(key).or_insert(value);
        }
        for (name, value) in &services.secrets {
            local_secrets.set(name, value);
        }
        config.github.api_url = services.github_api_url;
        local_secrets.set(&config.github.token_secret, &services.github_token);
    }
    if config.notifications.portal_url.is_none() {
        config.notifications.portal_url = Some(format!("http://{addr}"));
    }
    let config = &config;
    let secrets: Arc<dyn Secrets> = Arc::new(local_secrets);
    let auth = match &config.auth.jwks_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Authenticator::from_jwks(&text)?
        }
        None => Authenticator::hs256(&dev_secret(config, secrets.as_ref()).await?),
    };
    let db = Db::open(&config.data_dir).map_err(|e| e.to_string())?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let queue = Arc::new(SqliteQueue::new(
        db.clone(),
        ACTION_QUEUE,
        MAX_RECEIVES,
        clock.clone(),
    ));
    let released = queue.release_in_flight().await.map_err(|e| e.to_string())?;
    if released > 0 {
        tracing::info!(
            messages = released,
            "released work left in flight by a previous run"
        );
    }
    let catalog = Arc::new(LocalCatalog::new(snapshot));
    let state_store: Arc<dyn crate::ports::StateStore> =
        Arc::new(SqliteStateStore::new(db.clone()));
    let workflows = LocalWorkflows::new(
        db.clone(),
        clock.clone(),
        &config.region,
        vec![(QUEUE_PLACEHOLDER.to_owned(), ACTION_QUEUE_URL.to_owned())],
        vec![QueueTarget {
            url: ACTION_QUEUE_URL.to_owned(),
            outbox: queue.outbox(),
        }],
    );
    // With GitHub ingestion, the version it last made live wins over the directory.
    if config.github.catalog.is_some()
        && let Some(snapshot) = crate::ingest::restore(state_store.as_ref()).await?
    {
        tracing::info!(version = %snapshot.version, "serving the catalog version ingested last");
        catalog.publish(snapshot);
    }
    crate::ingest::deploy(&workflows, &catalog.current()).await?;
    let ports = Ports {
        catalog: catalog.clone(),
        requests: Arc::new(SqliteRequestStore::with_outbox(db.clone(), queue.outbox())),
        resources: Arc::new(SqliteResourceStore::new(db.clone())),
        state: state_store,
        audit: Arc::new(SqliteAuditLog::new(db.clone())),
        queue,
        secrets,
        workflows: Arc::new(workflows.clone()),
        clock,
        publisher: None,
        aws_actions: extensions.aws_actions,
        archive: config.retention.export_dir.as_ref().map(|dir| {
            Arc::new(crate::adapters::local::DirArchive::new(dir)) as Arc<dyn crate::ports::Archive>
        }),
    };
    let Assembly {
        app: state,
        worker,
        reconciler,
        retention,
        sla,
    } = assemble(config, ports, auth, MAX_RECEIVES).await?;
    let (shutdown, mut stopped) = watch::channel(false);
    // With GitHub ingestion the repository is the catalog's source, not the directory.
    if config.github.catalog.is_none() {
        tokio::spawn(watch_catalog(
            catalog,
            config.catalog_dir.clone(),
            catalog_stamp,
            workflows.clone(),
            shutdown.subscribe(),
        ));
    }
    if config.worker && config.resources.reconcile_seconds > 0 {
        let every = std::time::Duration::from_secs(config.resources.reconcile_seconds);
        tokio::spawn(reconciler.run(every, shutdown.subscribe()));
    }
    if config.worker {
        tokio::spawn(sla.run(SLA_EVERY, shutdown.subscribe()));
    }
    if config.worker && config.retention.removes() {
        let every = std::time::Duration::from_secs(config.retention.every_seconds.max(1));
        tokio::spawn(retention.run(every, shutdown.subscribe()));
    }
    let (worker, timers) = if config.worker {
        (
            tokio::spawn(worker.run(shutdown.subscribe())),
            tokio::spawn(workflows.run_timers(shutdown.subscribe())),
        )
    } else {
        (tokio::spawn(async {}), tokio::spawn(async {}))
    };
    let mut app = router(state.clone()).merge(crate::http::portal::routes(
        &config.portal_dir,
        config.sandbox,
    ));
    if let Some(routes) = sandbox_routes {
        app = app.merge(routes);
    }
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    Ok(Running {
        _lock: lock,
        addr,
        state,
        jira_url: config.jira.url.clone(),
        shutdown,
        db,
        server,
        worker,
        timers,
    })
}
