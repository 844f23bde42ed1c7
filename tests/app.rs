//! Local mode started in-process on port 0, and an HTTP client that talks to it as a
//! developer would.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::Value;
use shared::adapters::local::LocalSecrets;
use shared::config::Config;
use shared::local::Running;

/// Local mode with the sandbox's stand-ins, serving `catalog`, on port 0.
pub fn sandbox_config(dir: &std::path::Path, catalog: std::path::PathBuf) -> Config {
    Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: catalog,
        data_dir: dir.join("data"),
        sandbox: true,
        ..Config::default()
    }
}

pub struct App {
    pub running: Running,
    pub base: String,
    pub token: String,
    pub client: Client,
}

impl App {
    /// Starts local mode with `config` and signs a token for `alice` (a developer).
    pub async fn start(config: &Config) -> App {
        App::start_with(config, shared::local::Extensions::default()).await
    }

    /// [`start`](Self::start) with the AWS action kinds reaching AWS through `sdk` (moto,
    /// or a stand-in).
    pub async fn start_with_aws(config: &Config, sdk: &aws::SdkConfig) -> App {
        App::start_with(
            config,
            shared::local::Extensions {
                aws_actions: aws::actions::all(sdk, &config.aws),
            },
        )
        .await
    }

    /// [`start`](Self::start) with `extensions` (the AWS action kinds, on moto).
    pub async fn start_with(config: &Config, extensions: shared::local::Extensions) -> App {
        let running = shared::local::start_with(config, extensions)
            .await
            .expect("local mode starts");
        let secret = shared::local::dev_secret(config, &LocalSecrets::from_pairs([]))
            .await
            .expect("dev secret");
        let token = shared::http::auth::dev_token(
            &secret,
            "alice",
            Some("alice@acme.example"),
            &["developers".into()],
            Duration::from_secs(600),
        )
        .expect("token");
        App {
            base: format!("http://{}", running.addr),
            running,
            token,
            client: Client::new(),
        }
    }

    /// A token for another caller of this app.
    pub async fn token_for(&self, config: &Config, sub: &str, groups: &[&str]) -> String {
        let secret = shared::local::dev_secret(config, &LocalSecrets::from_pairs([]))
            .await
            .expect("dev secret");
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        shared::http::auth::dev_token(&secret, sub, None, &groups, Duration::from_secs(600))
            .expect("token")
    }

    /// Submits a request; returns the status and the body.
    pub async fn submit(&self, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}/requests", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST /requests");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `method path` with `token` and an optional JSON body: the status and the body
    /// (null when it is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut call = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            call = call.json(body);
        }
        let response = call.send().await.expect("the app answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET path` as the developer, parsed as JSON.
    pub async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON")
    }

    pub async fn request(&self, id: &str) -> Value {
        self.get(&format!("/requests/{id}")).await
    }

    /// Polls until the request reaches `status` (or fails the test after 15 s).
    pub async fn wait_for(&self, id: &str, status: &str) -> Value {
        self.wait_within(id, status, Duration::from_secs(15)).await
    }

    /// Polls until the request reaches `status`, failing the test after `limit`.
    pub async fn wait_within(&self, id: &str, status: &str, limit: Duration) -> Value {
        for _ in 0..limit.as_millis() / 50 {
            let request = self.request(id).await;
            if request["status"] == status {
                return request;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let events = self.get(&format!("/requests/{id}/events")).await;
        panic!(
            "request never became {status}: {}\nevents: {events:#}",
            self.request(id).await
        );
    }

    /// The kinds of the request's timeline events, in order.
    pub async fn event_kinds(&self, id: &str) -> Vec<String> {
        let timeline = self.get(&format!("/requests/{id}/events")).await;
        timeline["events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter_map(|e| e["kind"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}
