//! Stand-ins for the platform teams' provisioning APIs the example catalog calls: a
//! database API that provisions asynchronously (202, a Location to poll, `creating` then
//! `available`), a messaging API, a secrets broker, an inventory API, and a webhook
//! receiver that verifies the orchestrator's signature as docs/catalog-format.md tells
//! receivers to, and GitHub (sandbox/github.rs). Each checks its bearer token. Nothing is provisioned anywhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

/// How long a sandbox database takes to become available.
const PROVISIONING_TIME: Duration = Duration::from_secs(3);

#[derive(Clone)]
struct Services {
    token: String,
    webhook_key: String,
    databases: Arc<Mutex<HashMap<String, (Instant, Value)>>>,
}

/// The running stand-ins: the `environment` scope and the secrets that point at them.
pub struct SandboxServices {
    pub environment: Map<String, Value>,
    pub secrets: Vec<(String, String)>,
    /// The GitHub stand-in's API base and the token it accepts.
    pub github_api_url: String,
    pub github_token: String,
}

pub async fn start() -> Result<SandboxServices, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("sandbox: cannot listen on loopback: {e}"))?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let state = Services {
        token: uuid::Uuid::new_v4().simple().to_string(),
        webhook_key: uuid::Uuid::new_v4().simple().to_string(),
        databases: Arc::default(),
    };
    let secrets = [
        "dbaasApiToken",
        "messagingApiToken",
        "secretsBrokerToken",
        "inventoryApiToken",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), state.token.clone()))
    .chain([("messagingWebhookKey".to_owned(), state.webhook_key.clone())])
    .collect();
    // Every API but the webhook receiver (which checks signatures) wants the token.
    let apis = Router::new()
        .route("/dbaas/v2/postgres/instances", post(create_database))
        .route(
            "/dbaas/v2/postgres/instances/{id}",
            get(read_database).delete(delete_database),
        )
        .route(
            "/messaging/queues/{name}",
            put(create_queue).delete(deleted),
        )
        .route("/messaging/subscriptions", post(subscribe).delete(deleted))
        .route("/secrets/v1/secrets", post(store_secret).delete(deleted))
        .route("/inventory/v1/eks-clusters/{name}", get(describe_cluster))
        .route("/inventory/v1/dynamodb-tables/{name}", get(describe_table))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ));
    let github = super::github::router(format!("{base}/github")).route_layer(
        axum::middleware::from_fn_with_state(state.clone(), require_token),
    );
    let token = state.token.clone();
    let app = apis
        .route("/automation/hooks/{hook}", post(hook))
        .with_state(state)
        .nest("/github", github);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let environment = json!({
        "dbaasApiUrl": format!("{base}/dbaas"),
        "messagingApiUrl": format!("{base}/messaging"),
        "secretsBrokerUrl": format!("{base}/secrets"),
        "inventoryApiUrl": format!("{base}/inventory"),
        "messagingAutomationUrl": format!("{base}/automation"),
        "accountAlias": "sandbox",
        "terraformStateBucket": "sandbox-terraform-state",
    });
    Ok(SandboxServices {
        environment: environment.as_object().cloned().unwrap_or_default(),
        secrets,
        github_api_url: format!("{base}/github"),
        github_token: token,
    })
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"message": "bad or missing token"})),
    )
        .into_response()
}

async fn require_token(
    State(state): State<Services>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let expected = format!("Bearer {}", state.token);
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if crate::signing::same_secret(given.as_bytes(), expected.as_bytes()) {
        next.run(request).await
    } else {
        unauthorized()
    }
}

fn text(body: &Value, key: &str) -> String {
    body.get(key)
        .and_then(Value::as_str)
        .unwrap_or("unnamed")
        .to_owned()
}

fn parse(bytes: &Bytes) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "message": message })),
    )
        .into_response()
}

async fn create_database(State(state): State<Services>, body: Bytes) -> Response {
    let body = match parse(&body) {
        Ok(body) => body,
        Err(message) => return bad_request(message),
    };
    let name = text(&body, "name");
    let id = format!("db-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let instance = json!({
        "id": id,
        "name": name,
        "engineVersion": body["engineVersion"],
        "instanceClass": body["instanceClass"],
        "multiAz": body["multiAz"],
        "status": "creating",
        "endpoint": {"address": format!("{name}.db.sandbox.local"), "port": 5432},
        "masterUserSecret": {"arn": format!("arn:aws:secretsmanager:eu-west-1:000000000000:secret:{name}-master")},
    });
    if let Ok(mut dbs) = state.databases.lock() {
        dbs.insert(id.clone(), (Instant::now(), instance.clone()));
    }
    (
        StatusCode::ACCEPTED,
        [(
            header::LOCATION,
            format!("/dbaas/v2/postgres/instances/{id}"),
        )],
        axum::Json(instance),
    )
        .into_response()
}

async fn read_database(State(state): State<Services>, Path(id): Path<String>) -> Response {
    let found = state
        .databases
        .lock()
        .ok()
        .and_then(|dbs| dbs.get(&id).cloned());
    match found {
        Some((created, mut instance)) => {
            if created.elapsed() >= PROVISIONING_TIME {
                instance["status"] = json!("available");
            }
            axum::Json(instance).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "no such instance"})),
        )
            .into_response(),
    }
}

async fn delete_database(State(state): State<Services>, Path(id): Path<String>) -> Response {
    let removed = state
        .databases
        .lock()
        .ok()
        .and_then(|mut dbs| dbs.remove(&id));
    if removed.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::NOT_FOUND
    }
    .into_response()
}

async fn create_queue(Path(name): Path<String>) -> Response {
    axum::Json(json!({
        "url": format!("https://sqs.eu-west-1.amazonaws.com/000000000000/{name}"),
        "arn": format!("arn:aws:sqs:eu-west-1:000000000000:{name}"),
        "deadLetterQueue": {"arn": format!("arn:aws:sqs:eu-west-1:000000000000:{name}-dlq")},
    }))
    .into_response()
}

async fn subscribe() -> Response {
    let id = uuid::Uuid::new_v4();
    (
        StatusCode::CREATED,
        axum::Json(
            json!({"subscriptionArn": format!("arn:aws:sns:eu-west-1:000000000000:sandbox:{id}")}),
        ),
    )
        .into_response()
}

async fn store_secret(body: Bytes) -> Response {
    let body = match parse(&body) {
        Ok(body) => body,
        Err(message) => return bad_request(message),
    };
    let name = text(&body, "name");
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "arn": format!("arn:aws:secretsmanager:eu-west-1:000000000000:secret:{name}"),
            "sync": {"secretName": name},
        })),
    )
        .into_response()
}

async fn describe_cluster(Path(name): Path<String>) -> Response {
    axum::Json(json!({
        "name": name,
        "version": "1.33",
        "endpoint": format!("https://{name}.eks.sandbox.local"),
        "vpc": {"id": "vpc-0a1b2c3d4e5f60718", "privateSubnetIds": ["subnet-0a1b2c3d4e5f60719", "subnet-0a1b2c3d4e5f6071a"]},
        "oidc": {"providerArn": format!("arn:aws:iam::000000000000:oidc-provider/{name}")},
    }))
    .into_response()
}

async fn describe_table(Path(name): Path<String>) -> Response {
    axum::Json(json!({
        "name": name,
        "arn": format!("arn:aws:dynamodb:eu-west-1:000000000000:table/{name}"),
        "streamArn": null,
        "billingMode": "PAY_PER_REQUEST",
    }))
    .into_response()
}

/// A webhook receiver that does what receivers should: verify the signature over the
/// raw body before reading it.
async fn hook(State(state): State<Services>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers
        .get(crate::fulfillment::actions::webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !crate::signing::verify(state.webhook_key.as_bytes(), &body, signature) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "bad signature"})),
        )
            .into_response();
    }
    let event = match parse(&body) {
        Ok(event) => event,
        Err(message) => return bad_request(message),
    };
    let payload = &event["payload"];
    // A subscription (sns-sqs-subscription), or a topic.
    if let Some(topic) = payload["topicArn"].as_str()
        && payload.get("endpoint").is_some()
    {
        let id = event["deliveryId"].as_str().unwrap_or("subscription");
        return axum::Json(json!({
            "received": event["deliveryId"],
            "subscriptionArn": format!("{topic}:{}", id.replace(['/', '.'], "-")),
        }))
        .into_response();
    }
    let topic = payload["topicName"].as_str().unwrap_or("topic");
    axum::Json(json!({
        "received": event["deliveryId"],
        "topicArn": format!("arn:aws:sns:eu-west-1:000000000000:{topic}"),
    }))
    .into_response()
}

async fn deleted() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
