//! The api Lambda's cold start, measured locally: the binary as `make package` builds it
//! (profile `lambda-release`, for this machine's architecture) started as Lambda
//! starts it, against a stand-in for the Lambda Runtime API on loopback (the interface a
//! custom runtime polls: `GET /2018-06-01/runtime/invocation/next`, then the response
//! `POST`), its AWS services on moto. Init is process start to the runtime's first poll
//! for an event (configuration, SDK clients, the live catalog read, the product
//! assembled); first event is process start to the response of an HTTP API v2 event
//! (`GET /catalog/items`) being posted back.
//!
//! ```sh
//! cargo bench -p orchestrator-tests --bench cold_start      # needs moto: scripts/test installs it
//! ```
//!
//! It builds the api binary (profile `lambda-release`) itself. This machine is x86-64, so the figure is for
//! that architecture; Lambda's arm64 (Graviton) is of the same order per core.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use orchestrator_tests::moto::{create_queues, create_table, moto};
use serde_json::{Value, json};

const RUNS: usize = 20;
const REGION: &str = "eu-west-1";

/// What the runtime stand-in saw of one process.
#[derive(Default)]
struct Seen {
    first_poll: Option<Instant>,
    response: Option<(Instant, Value)>,
    error: Option<String>,
}

#[derive(Clone)]
struct Runtime {
    seen: Arc<Mutex<Seen>>,
    event: Arc<String>,
}

async fn next(State(rt): State<Runtime>) -> (HeaderMap, String) {
    let first = {
        let mut seen = rt.seen.lock().unwrap();
        let first = seen.first_poll.is_none();
        if first {
            seen.first_poll = Some(Instant::now());
        }
        first
    };
    if !first {
        // One event per process: the next poll waits until the process is killed.
        std::future::pending::<()>().await;
    }
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    for (name, value) in [
        (
            "lambda-runtime-aws-request-id",
            "8476a536-e9f4-11e8-9739-2dfe598c3fcd".to_owned(),
        ),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:eu-west-1:123456789012:function:orchestrator-api".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".to_owned(),
        ),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    (headers, rt.event.as_str().to_owned())
}

async fn response(
    State(rt): State<Runtime>,
    Path(_id): Path<String>,
    body: String,
) -> &'static str {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    rt.seen.lock().unwrap().response = Some((Instant::now(), value));
    ""
}

async fn error(State(rt): State<Runtime>, body: String) -> &'static str {
    rt.seen.lock().unwrap().error = Some(body);
    ""
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<12} min {:6.1} ms  median {:6.1} ms  p95 {:6.1} ms  max {:6.1} ms  ({} runs)",
        ms(times[0]),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95)),
        ms(times[times.len() - 1]),
        times.len()
    );
}

#[tokio::main]
async fn main() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(&cargo)
        .args([
            "build",
            "--profile",
            "lambda-release",
            "--locked",
            "-p",
            "orchestrator-functions",
            "--bin",
            "api",
        ])
        .status()
        .expect("cargo runs");
    assert!(built.success(), "the api binary builds");
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| format!("{}/../target", env!("CARGO_MANIFEST_DIR")));
    let binary = std::path::Path::new(&target).join("lambda-release/api");

    let Some(moto) = moto().await else {
        eprintln!("cold_start: moto is not available (set MOTO_SERVER or MOTO_ENDPOINT)");
        return;
    };
    let sdk = aws::for_endpoint(&moto.endpoint, REGION).await;
    let table = create_table(&sdk).await;
    let (queue_url, dlq_url) = create_queues(&sdk, 5).await;

    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lambda/apigw-http-v2.json");
    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    event["rawPath"] = json!("/catalog/items");
    event["requestContext"]["http"]["path"] = json!("/catalog/items");
    event["requestContext"]["http"]["method"] = json!("GET");

    let (mut inits, mut firsts) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let rt = Runtime {
            seen: Arc::new(Mutex::new(Seen::default())),
            event: Arc::new(event.to_string()),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(error))
            .with_state(rt.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let started = Instant::now();
        let mut child = Command::new(&binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "orchestrator-api")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/orchestrator-api")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/21/[$LATEST]cold")
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("ORCHESTRATOR_TABLE", &table)
            .env("ORCHESTRATOR_ACTION_QUEUE_URL", &queue_url)
            .env("ORCHESTRATOR_DEAD_LETTER_QUEUE_URL", &dlq_url)
            .env("ORCHESTRATOR_ACCOUNT_ID", "123456789012")
            .env(
                "ORCHESTRATOR_STATES_ROLE_ARN",
                "arn:aws:iam::123456789012:role/states",
            )
            .env("ORCHESTRATOR_STATE_MACHINE_PREFIX", "cold-")
            .env("ORCHESTRATOR_SECRETS_PREFIX", "cold/")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the api binary starts");
        let deadline = started + Duration::from_secs(30);
        loop {
            let done = {
                let seen = rt.seen.lock().unwrap();
                if let Some(e) = &seen.error {
                    panic!("run {run}: the function reported an error: {e}");
                }
                seen.response.is_some()
            };
            if done {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("run {run}: the api binary exited early with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "run {run}: no response within 30 s"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        server.abort();
        let seen = rt.seen.lock().unwrap();
        let (answered, body) = seen.response.clone().unwrap();
        assert_eq!(body["statusCode"], 200, "run {run}: {body}");
        inits.push(seen.first_poll.unwrap() - started);
        firsts.push(answered - started);
    }
    println!("api cold start, profile `lambda-release`, AWS services on moto (loopback):");
    summary("init", inits);
    summary("first event", firsts);
}
