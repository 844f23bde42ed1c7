//! `orchestrator serve` (local mode) and `orchestrator dev-token`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use shared::adapters::local::LocalSecrets;
use shared::config::Config;
use shared::http::auth::dev_token;

#[derive(Args)]
pub struct ServeArgs {
    /// Configuration file (YAML or JSON); environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The catalog repository to serve.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Where to keep the database.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0: any free port).
    #[arg(long)]
    listen: Option<String>,
    /// Also start the sandbox: a JIRA stand-in on loopback where tickets can be resolved.
    #[arg(long)]
    sandbox: bool,
}

#[derive(Args)]
pub struct DevTokenArgs {
    /// The subject (user name).
    #[arg(long)]
    sub: String,
    #[arg(long)]
    email: Option<String>,
    /// Comma-separated groups (team ids, the admin group, ...).
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// How many hours the token stays valid.
    #[arg(long, default_value_t = 12)]
    hours: u64,
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    data: Option<PathBuf>,
}

pub(crate) fn load(config: Option<&PathBuf>, data: Option<PathBuf>) -> Result<Config, String> {
    let mut config = Config::load(config.map(PathBuf::as_path), std::env::vars())?;
    if let Some(data) = data {
        config.data_dir = data;
    }
    Ok(config)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// The AWS local mode reaches: `aws.endpointUrl` (moto) with test credentials, or the
/// environment's AWS credentials when it names some; `None` otherwise.
/// How often local mode reads the `environment` scope from Parameter Store again.
const ENVIRONMENT_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

async fn aws_sdk(config: &Config) -> Option<aws::SdkConfig> {
    let region = if config.region == "local" {
        "us-east-1"
    } else {
        config.region.as_str()
    };
    match &config.aws.endpoint_url {
        Some(endpoint) => Some(aws::for_endpoint(endpoint, region).await),
        None if [
            "AWS_PROFILE",
            "AWS_ACCESS_KEY_ID",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some()) =>
        {
            Some(aws::from_environment().await)
        }
        None => None,
    }
}

pub fn serve(args: ServeArgs) -> ExitCode {
    let mut config = match load(args.config.as_ref(), args.data) {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    if let Some(catalog) = args.catalog {
        config.catalog_dir = catalog;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    config.sandbox |= args.sandbox;
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ORCHESTRATOR_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return usage_error(&e),
    };
    rt.block_on(async move {
        let sdk = aws_sdk(&config).await;
        let mut source = None;
        if let (Some(sdk), Some(path)) = (&sdk, config.aws.environment_path.clone()) {
            let found = aws::environment::Source::new(sdk, &path, config.environment.clone());
            match found.load().await {
                Ok(scope) => config.environment = scope,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
            source = Some(found);
        }
        let extensions = shared::local::Extensions {
            aws_actions: sdk
                .map(|sdk| aws::actions::all(&sdk, &config.aws))
                .unwrap_or_default(),
        };
        let running = match shared::local::start_with(&config, extensions).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        // A parameter changed in Parameter Store reaches the requests that follow.
        if let Some(source) = source {
            let scope = running.state.planner.system.environment.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(ENVIRONMENT_REFRESH).await;
                    source.reload(&scope).await;
                }
            });
        }
        tracing::info!(addr = %running.addr, catalog = %config.catalog_dir.display(), "orchestrator listening");
        print_welcome(&config, running.addr, running.jira_url.clone()).await;
        wait_for_signal().await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        match running.stop().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    })
}

async fn print_welcome(config: &Config, addr: std::net::SocketAddr, running_jira: Option<String>) {
    if config.auth.jwks_file.is_some() {
        return;
    }
    let secrets = match LocalSecrets::load(config.secrets_file.as_deref()) {
        Ok(s) => s,
        Err(_) => return,
    };
    let Ok(secret) = shared::local::dev_secret(config, &secrets).await else {
        return;
    };
    let day = Duration::from_secs(12 * 3600);
    let admin = config.auth.admin_group.clone();
    let people: [(&str, &str, Vec<String>); 3] = [
        ("requester", "alice", vec!["developers".to_owned()]),
        (
            "platform team member (database)",
            "bob",
            vec!["developers".to_owned(), "database".to_owned()],
        ),
        ("admin", "carol", vec![admin]),
    ];
    eprintln!(
        "\nThe orchestrator is running on http://{addr} (local mode). Dev tokens, valid 12 hours:\n"
    );
    for (role, sub, groups) in people {
        if let Ok(token) = dev_token(
            &secret,
            sub,
            Some(&format!("{sub}@example.com")),
            &groups,
            day,
        ) {
            eprintln!(
                "  {role} ({sub}, groups {}):\n    {token}\n",
                groups.join(",")
            );
        }
    }
    eprintln!("  Portal: open http://{addr}/ and sign in with one of these tokens.");
    eprintln!("  API:    curl -H \"Authorization: Bearer <token>\" http://{addr}/catalog/items\n");
    if let (true, Some(jira)) = (config.sandbox, &running_jira) {
        eprintln!(
            "  SANDBOX: JIRA is a stand-in at {jira} (not a real JIRA); the portal's Sandbox page resolves its tickets."
        );
        eprintln!("    List tickets:    curl http://{addr}/sandbox/jira/issues");
        eprintln!(
            "    Resolve one:     curl -X POST http://{addr}/sandbox/jira/issues/KEY/resolve -H 'content-type: application/json' -d '{{\"resolution\": \"Done\"}}'\n"
        );
    }
    if let Some(endpoint) = &config.aws.endpoint_url {
        eprintln!(
            "  AWS: cloudformation, secrets-manager and ssm-parameter actions call {endpoint} (an emulated AWS, test credentials)."
        );
        eprintln!(
            "    Look at it:      AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --endpoint-url {endpoint} --region us-east-1 cloudformation describe-stacks\n"
        );
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

pub fn token(args: DevTokenArgs) -> ExitCode {
    let config = match load(args.config.as_ref(), args.data) {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return usage_error(&e),
    };
    let result = rt.block_on(async {
        let secrets = LocalSecrets::load(config.secrets_file.as_deref())?;
        let secret = shared::local::dev_secret(&config, &secrets).await?;
        dev_token(
            &secret,
            &args.sub,
            args.email.as_deref(),
            &args.groups,
            Duration::from_secs(args.hours * 3600),
        )
    });
    match result {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(&e),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}
