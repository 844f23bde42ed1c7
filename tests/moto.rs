//! moto server on loopback, for the tests that check behaviour against AWS's APIs.
//! `scripts/test` starts one for the whole run and names it in `MOTO_ENDPOINT` (and stops
//! it at the end); otherwise each test binary starts its own on a free port from the
//! project's virtual environment. Without moto the tests are skipped with a note, unless
//! `MOTO_REQUIRED` is set (as in CI).

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use aws::SdkConfig;
use serde_json::{Value, json};

pub struct Moto {
    pub endpoint: String,
    /// The server this binary started, if it started one.
    _child: Option<ChildGuard>,
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Closing its input tells the launcher to stop the server (see `start`).
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

fn moto_server() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("MOTO_SERVER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(
                std::env::var_os("CARGO_MANIFEST_DIR")
                    .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
            )
            .join("../.venv/bin/moto_server")
        });
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("MOTO_REQUIRED").is_none(),
        "moto is required but missing at {}",
        path.display()
    );
    eprintln!("note: moto is not installed; run scripts/test (it makes .venv) to run this test");
    None
}

static MOTO: OnceLock<Option<Moto>> = OnceLock::new();

/// The shared moto server, with Step Functions executing state machines.
pub async fn moto() -> Option<&'static Moto> {
    if let Some(m) = MOTO.get() {
        return m.as_ref();
    }
    let started = match (std::env::var("MOTO_ENDPOINT"), moto_server()) {
        (Ok(endpoint), _) => Some(ready(endpoint, None).await),
        (Err(_), None) => None,
        (Err(_), Some(server)) => Some(start(&server).await),
    };
    let _ = MOTO.set(started);
    MOTO.get().and_then(Option::as_ref)
}

async fn start(server: &std::path::Path) -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // A static is never dropped, so the server must not outlive this process by other
    // means: a shell starts it and stops it when its input closes, which the kernel does
    // when this process ends, however it ends.
    let child = Command::new("sh")
        .args([
            "-c",
            r#""$0" -H 127.0.0.1 -p "$1" & server=$!; read _ ; kill "$server""#,
        ])
        .arg(server)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    ready(format!("http://127.0.0.1:{port}"), Some(ChildGuard(child))).await
}

/// Waits for the server at `endpoint` and turns on the execution of state machines.
async fn ready(endpoint: String, child: Option<ChildGuard>) -> Moto {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{endpoint}/moto-api/"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Real execution of definitions must be on before state machines are created.
    client
        .post(format!("{endpoint}/moto-api/config"))
        .json(&json!({"stepfunctions": {"execute_state_machine": true}}))
        .send()
        .await
        .expect("moto config");
    Moto {
        endpoint,
        _child: child,
    }
}

impl Moto {
    /// Creates an SQS queue; its URL.
    pub async fn create_queue(&self, name: &str) -> String {
        let queue = self
            .call("AmazonSQS.CreateQueue", json!({ "QueueName": name }))
            .await
            .expect("moto creates the queue");
        queue["QueueUrl"].as_str().expect("QueueUrl").to_owned()
    }

    /// Creates a state machine of `definition` (ASL text); its ARN, or why moto refused.
    pub async fn create_machine(&self, name: &str, definition: &str) -> Result<Value, String> {
        let machine = self
            .call(
                "AWSStepFunctions.CreateStateMachine",
                json!({
                    "name": name,
                    "definition": definition,
                    "roleArn": "arn:aws:iam::123456789012:role/orchestrator-tests",
                }),
            )
            .await?;
        Ok(machine["stateMachineArn"].clone())
    }

    /// One call of an AWS JSON-protocol API (`AWSStepFunctions.StartExecution`,
    /// `AmazonSQS.ReceiveMessage`): the parsed answer, or the error body.
    pub async fn call(&self, target: &str, body: Value) -> Result<Value, String> {
        let service = if target.starts_with("AmazonSQS") {
            "sqs"
        } else {
            "states"
        };
        let response = reqwest::Client::new()
            .post(format!("{}/", self.endpoint))
            .header("Content-Type", "application/x-amz-json-1.0")
            .header("X-Amz-Target", target)
            .header(
                "Authorization",
                format!("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
        } else {
            Err(text)
        }
    }
}

/// A fresh table of the single-table design (docs/dynamodb.md): `pk` and `sk` strings,
/// GSIs `gsi1` to `gsi3` on `gsiNpk` and `gsiNsk`, on demand.
pub async fn create_table(config: &SdkConfig) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let name = format!("orchestrator-{}", uuid::Uuid::new_v4().simple());
    let attribute = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let index = |n: u8| {
        GlobalSecondaryIndex::builder()
            .index_name(format!("gsi{n}"))
            .key_schema(key(&format!("gsi{n}pk"), KeyType::Hash))
            .key_schema(key(&format!("gsi{n}sk"), KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .unwrap()
    };
    let mut create = aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(&name)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range));
    for n in 1..=3 {
        create = create
            .attribute_definitions(attribute(&format!("gsi{n}pk")))
            .attribute_definitions(attribute(&format!("gsi{n}sk")))
            .global_secondary_indexes(index(n));
    }
    create
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("moto creates the table");
    name
}

/// The ARN of the queue at `url`.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    use aws_sdk_sqs::types::QueueAttributeName;
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("the queue's ARN")
}

/// A fresh action queue and its dead-letter queue, with a redrive policy after
/// `max_receives`: their URLs.
pub async fn create_queues(config: &SdkConfig, max_receives: u32) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = aws_sdk_sqs::Client::new(config);
    let name = format!("actions-{}", uuid::Uuid::new_v4().simple());
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .expect("moto creates the dead-letter queue");
    let dlq_url = dlq.queue_url().unwrap().to_owned();
    let dlq_arn = queue_arn(&sqs, &dlq_url).await;
    let redrive =
        format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receives}"}}"#);
    let queue = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .expect("moto creates the queue");
    (queue.queue_url().unwrap().to_owned(), dlq_url)
}
