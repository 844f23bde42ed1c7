//! The product assembled from its ports: the same services, HTTP API, worker and
//! reconciler whether the ports are the embedded adapters (local mode) or the AWS ones
//! (the Lambdas). Only the adapters and where the process gets its work differ.

use std::sync::Arc;

use crate::access::Roles;
use crate::config::Config;
use crate::fulfillment::actions::AwsActions;
use crate::fulfillment::engine::{Engine, standard_kinds};
use crate::fulfillment::plan::Planner;
use crate::http::auth::Authenticator;
use crate::http::{AppState, Shared};
use crate::integrations::jira::{JiraAuth, JiraClient};
use crate::notifications::Notifier;
use crate::notifications::deliver::Deliverer;
use crate::notifications::message::Portal;
use crate::notifications::outbox::QueuedNotices;
use crate::notifications::subscriptions::Subscriptions;
use crate::ports::{
    AuditLog, CatalogStore, Clock, Notices, Publisher, Queue, RequestStore, ResourceStore, Secrets,
    StateStore, Workflows,
};
use crate::requests::service::RequestService;
use crate::resources::change::Changes;
use crate::resources::reconcile::{ABANDON_AFTER, BATCH, Checks, PAGE, Reconciler};
use crate::resources::service::Resources;
use crate::resources::verify::{HostSlots, Verifier};
use crate::worker::Worker;

/// One adapter for every port.
#[derive(Clone)]
pub struct Ports {
    pub catalog: Arc<dyn CatalogStore>,
    pub requests: Arc<dyn RequestStore>,
    pub resources: Arc<dyn ResourceStore>,
    pub state: Arc<dyn StateStore>,
    pub audit: Arc<dyn AuditLog>,
    /// The action queue.
    pub queue: Arc<dyn Queue>,
    pub secrets: Arc<dyn Secrets>,
    pub workflows: Arc<dyn Workflows>,
    pub clock: Arc<dyn Clock>,
    /// SNS, for notification subscriptions that name a topic (`None` in local mode).
    pub publisher: Option<Arc<dyn Publisher>>,
    /// The actions that reach AWS through its SDK, when the deployment can.
    pub aws_actions: AwsActions,
    /// Where retention exports go (`None`: removed without an export).
    pub archive: Option<Arc<dyn crate::ports::Archive>>,
}

/// The assembled product.
pub struct Assembly {
    /// What the HTTP API serves (`crate::http::router`).
    pub app: AppState,
    /// Takes work off the action queue.
    pub worker: Arc<Worker>,
    /// Verifies provisioned resources against their targets.
    pub reconciler: Arc<Reconciler>,
    /// Exports and removes what is past its retention.
    pub retention: Arc<crate::retention::Retention>,
    /// Raises the entries of requests at risk of missing their service levels, or past.
    pub sla: Arc<crate::requests::sla::SlaWatch>,
}

/// The JIRA client the configuration asks for, if any.
async fn jira_client(
    config: &Config,
    secrets: &dyn Secrets,
) -> Result<Option<Arc<JiraClient>>, String> {
    let Some(url) = &config.jira.url else {
        return Ok(None);
    };
    let name = &config.jira.token_secret;
    let token = secrets
        .get(name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!("jira.url is set but the secret `{name}` (jira.tokenSecret) is not")
        })?;
    let auth = match &config.jira.email {
        Some(email) => JiraAuth::Basic {
            email: email.clone(),
            token,
        },
        None => JiraAuth::Bearer(token),
    };
    JiraClient::new(url, auth)
        .map(|c| Some(Arc::new(c)))
        .map_err(|e| e.to_string())
}

/// Builds the services on `ports` as `config` says. `max_receives` is the action queue's
/// dead-letter limit (the worker fails a request on its last attempt).
pub async fn assemble(
    config: &Config,
    ports: Ports,
    auth: Authenticator,
    max_receives: u32,
) -> Result<Assembly, String> {
    let Ports {
        catalog,
        requests: request_store,
        resources: resource_store,
        state,
        audit,
        queue,
        secrets,
        workflows,
        clock,
        publisher,
        aws_actions,
        archive,
    } = ports;
    let problems = config.notifications.problems(publisher.is_some());
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let subscriptions = Arc::new(Subscriptions {
        configured: config.notifications.subscriptions.clone(),
        catalog: catalog.clone(),
    });
    let notices: Arc<dyn Notices> = Arc::new(QueuedNotices {
        queue: queue.clone(),
        subscriptions: subscriptions.clone(),
    });
    let resources = Arc::new(Resources {
        store: resource_store,
        state: state.clone(),
        catalog: catalog.clone(),
        clock: clock.clone(),
        lease: std::time::Duration::from_secs(config.resources.lease_seconds.max(1)),
        notices: Some(notices.clone()),
    });
    let requests = Arc::new(RequestService {
        catalog: catalog.clone(),
        store: request_store,
        queue: queue.clone(),
        clock: clock.clone(),
        roles: Roles {
            admin_group: config.auth.admin_group.clone(),
        },
        ended: Some(resources.clone()),
        notices: Some(notices.clone()),
    });
    let jira = jira_client(config, secrets.as_ref()).await?;
    // One set of action runners (one HTTP client): the worker runs them, dry runs only
    // ask them to describe.
    let mut kinds = standard_kinds(
        jira.clone(),
        &config.github,
        secrets.clone(),
        aws_actions.signer,
    )
    .map_err(|e| e.to_string())?;
    kinds.extend(aws_actions.kinds);
    let planner = Arc::new(Planner::new(config, kinds.clone()));
    let engine = Arc::new(Engine::new(
        kinds,
        state.clone(),
        secrets.clone(),
        clock.clone(),
    ));
    let verifier = Arc::new(Verifier {
        engine: engine.clone(),
        system: planner.system.clone(),
        catalog: catalog.clone(),
        store: resources.store.clone(),
        per_host: HostSlots::new(config.resources.reconcile_per_host),
    });
    let approvals = Arc::new(crate::approvals::service::Approvals {
        requests: requests.clone(),
        state: state.clone(),
        workflows: workflows.clone(),
    });
    let notifier = Arc::new(Notifier {
        subscriptions,
        deliverer: Deliverer {
            http: reqwest::Client::new(),
            secrets: secrets.clone(),
            publisher,
        },
        portal: Portal(config.notifications.portal_url.clone()),
    });
    let worker = Arc::new(Worker {
        checks: Arc::new(Checks {
            resources: resources.clone(),
            verifier: verifier.clone(),
            concurrency: config.resources.reconcile_concurrency,
        }),
        notifier: Some(notifier),
        approvals: approvals.clone(),
        requests: requests.clone(),
        jira,
        engine,
        system: planner.system.clone(),
        max_receives,
        workflows: workflows.clone(),
        resources: resources.clone(),
    });
    let reconciler = Arc::new(Reconciler {
        resources: resources.clone(),
        queue,
        page: PAGE,
        batch: BATCH,
        abandon_after: ABANDON_AFTER,
        outcomes: Some(worker.clone()),
    });
    let ingest = match &config.github.catalog {
        Some(source) => Some(Arc::new(crate::ingest::Ingest::new(
            source.clone(),
            crate::integrations::github::GithubApi::new(
                reqwest::Client::new(),
                &config.github.api_url,
                secrets.clone(),
                &config.github.token_secret,
            )
            .map_err(|e| e.to_string())?,
            catalog,
            workflows.clone(),
            state.clone(),
            clock,
        ))),
        None => None,
    };
    let changes = Arc::new(Changes {
        requests: requests.clone(),
        resources: resources.clone(),
        verifier: verifier.clone(),
        planner: planner.clone(),
        state: state.clone(),
    });
    let retention = Arc::new(crate::retention::Retention {
        requests: requests.store.clone(),
        audit: audit.clone(),
        state: state.clone(),
        archive,
        clock: requests.clock.clone(),
        timeline_days: config.retention.timeline_days,
        audit_days: config.retention.audit_days,
    });
    let app = AppState::new(Shared {
        ingest,
        requests,
        audit,
        auth: Arc::new(auth),
        secrets,
        jira_webhook_secret: config.jira.webhook_secret.clone(),
        state,
        planner,
        workflows,
        resources,
        verifier,
        changes,
        worker: worker.clone(),
    });
    let sla = Arc::new(crate::requests::sla::SlaWatch {
        requests: app.requests.clone(),
    });
    Ok(Assembly {
        app,
        worker,
        reconciler,
        retention,
        sla,
    })
}
