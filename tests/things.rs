//! A stand-in for a target API that makes things, as an operator's flaky one behaves:
//! `POST /things` honours `Idempotency-Key` (the same key answers for the thing it already
//! made), and, as configured, answers 503 or 429 with `Retry-After` (making nothing), or
//! makes the thing and answers too late. `DELETE /things/{id}` removes one. Names starting
//! with `fail` are refused with 422 (until [`Things::stop_refusing`]); names starting with
//! `slow` are answered after
//! [`Faults::named_delay`]. The inventory says what exists, for the no-orphan checks.
//!
//! Built on wiremock with responders that keep the inventory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// How often, per call, the target misbehaves.
#[derive(Debug, Clone)]
pub struct Faults {
    /// 503 with `Retry-After`, nothing made.
    pub unavailable: f64,
    /// 429 with `Retry-After`, nothing made.
    pub throttled: f64,
    /// The thing is made, and the answer comes after `slow_delay`.
    pub slow: f64,
    pub slow_delay: Duration,
    /// `Retry-After`, in seconds.
    pub retry_after: u64,
    /// How long a `slow…` name waits for its answer.
    pub named_delay: Duration,
    pub seed: u64,
}

impl Faults {
    /// A target that always answers at once.
    pub fn none() -> Faults {
        Faults {
            unavailable: 0.0,
            throttled: 0.0,
            slow: 0.0,
            slow_delay: Duration::ZERO,
            retry_after: 1,
            named_delay: Duration::from_millis(1500),
            seed: 1,
        }
    }
}

/// One thing the target holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Thing {
    pub name: String,
    /// The request that made it (`request` in the body).
    pub request: String,
}

#[derive(Default)]
struct Inventory {
    things: BTreeMap<String, Thing>,
    by_key: HashMap<String, String>,
    made: u64,
    removed: u64,
    /// What was removed, in order: the id and the thing.
    removals: Vec<(String, Thing)>,
    calls: u64,
    refused_for_faults: u64,
    slow_answers: u64,
}

struct Target {
    refusing: std::sync::atomic::AtomicBool,
    inventory: Mutex<Inventory>,
    rng: Mutex<fastrand::Rng>,
    faults: Mutex<Faults>,
}

impl Target {
    /// A 503 or a 429, as the dice say.
    fn fault(&self) -> Option<ResponseTemplate> {
        let roll = self.rng.lock().expect("rng").f64();
        let faults = self.faults.lock().expect("faults").clone();
        let after = faults.retry_after.to_string();
        let status = if roll < faults.unavailable {
            503
        } else if roll < faults.unavailable + faults.throttled {
            429
        } else {
            return None;
        };
        self.inventory.lock().expect("inventory").refused_for_faults += 1;
        Some(
            ResponseTemplate::new(status)
                .insert_header("retry-after", after.as_str())
                .set_body_json(json!({"message": "try again later"})),
        )
    }
}

struct Make(Arc<Target>);

impl Respond for Make {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let target = &self.0;
        target.inventory.lock().expect("inventory").calls += 1;
        let Some(key) = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
        else {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"message": "Idempotency-Key is required"}));
        };
        if let Some(fault) = target.fault() {
            return fault;
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let name = body["name"].as_str().unwrap_or_default().to_owned();
        if name.starts_with("fail") && target.refusing.load(std::sync::atomic::Ordering::SeqCst) {
            return ResponseTemplate::new(422)
                .set_body_json(json!({"message": format!("`{name}` is not allowed")}));
        }
        let id = {
            let mut inventory = target.inventory.lock().expect("inventory");
            match inventory.by_key.get(&key) {
                Some(id) => id.clone(),
                None => {
                    inventory.made += 1;
                    let id = format!("t-{}", inventory.made);
                    inventory.by_key.insert(key, id.clone());
                    inventory.things.insert(
                        id.clone(),
                        Thing {
                            name: name.clone(),
                            request: body["request"].as_str().unwrap_or_default().to_owned(),
                        },
                    );
                    id
                }
            }
        };
        let answer = ResponseTemplate::new(201).set_body_json(json!({"id": id, "name": name}));
        let faults = target.faults.lock().expect("faults").clone();
        if name.starts_with("slow") {
            return answer.set_delay(faults.named_delay);
        }
        if target.rng.lock().expect("rng").f64() < faults.slow {
            target.inventory.lock().expect("inventory").slow_answers += 1;
            return answer.set_delay(faults.slow_delay);
        }
        answer
    }
}

struct Remove(Arc<Target>);

impl Respond for Remove {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let target = &self.0;
        target.inventory.lock().expect("inventory").calls += 1;
        if let Some(fault) = target.fault() {
            return fault;
        }
        let id = request.url.path().rsplit('/').next().unwrap_or_default();
        let mut inventory = target.inventory.lock().expect("inventory");
        if let Some(thing) = inventory.things.remove(id) {
            inventory.removed += 1;
            inventory.removals.push((id.to_owned(), thing));
        }
        // Deleting what is gone is no error: a retried delete must not fail.
        ResponseTemplate::new(204)
    }
}

/// The running stand-in.
pub struct Things {
    pub server: MockServer,
    target: Arc<Target>,
}

/// What the target holds and has done.
#[derive(Debug, Clone)]
pub struct Census {
    pub things: BTreeMap<String, Thing>,
    pub made: u64,
    pub removed: u64,
    /// What was removed, in order: the id and the thing.
    pub removals: Vec<(String, Thing)>,
    pub calls: u64,
    pub refused_for_faults: u64,
    /// Things made whose answer came after `slow_delay`.
    pub slow_answers: u64,
}

impl Things {
    pub async fn start(faults: Faults) -> Things {
        let target = Arc::new(Target {
            refusing: std::sync::atomic::AtomicBool::new(true),
            inventory: Mutex::new(Inventory::default()),
            rng: Mutex::new(fastrand::Rng::with_seed(faults.seed)),
            faults: Mutex::new(faults),
        });
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/things"))
            .respond_with(Make(target.clone()))
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path_regex(r"^/things/[^/]+$"))
            .respond_with(Remove(target.clone()))
            .mount(&server)
            .await;
        Things { server, target }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// From now on, the target answers every call at once and well.
    pub fn calm(&self) {
        let mut faults = self.target.faults.lock().expect("faults");
        faults.unavailable = 0.0;
        faults.throttled = 0.0;
        faults.slow = 0.0;
    }

    /// From now on, `fail…` names are made like any other (the cause was fixed).
    pub fn stop_refusing(&self) {
        self.target
            .refusing
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn census(&self) -> Census {
        let inventory = self.target.inventory.lock().expect("inventory");
        Census {
            things: inventory.things.clone(),
            made: inventory.made,
            removed: inventory.removed,
            removals: inventory.removals.clone(),
            calls: inventory.calls,
            refused_for_faults: inventory.refused_for_faults,
            slow_answers: inventory.slow_answers,
        }
    }
}

/// The `thing` item: POSTs a thing (outputs `thingId`), rolls back and deprovisions by
/// deleting it. `attempt_timeout` bounds one call; retries cover 503s and 429s.
pub fn thing_item(attempt_timeout: &str) -> String {
    format!(
        "\
apiVersion: orchestrator.dev/v1
kind: CatalogItem
metadata:
  name: thing
  title: Thing
  description: A thing at the target.
  owner: database
  category: database
spec:
  presentation:
    schema:
      type: object
      required: [name]
      properties:
        name:
          type: string
  outputs:
    thingId:
      description: The thing's id.
  fulfillment:
    mode: automated
    automated:
      actions:
        - id: create
          type: rest
          with:
            method: POST
            url: \"{{{{environment.thingsUrl}}}}/things\"
            body:
              name: \"{{{{fields.name}}}}\"
              request: \"{{{{request.id}}}}\"
          outputs:
            thingId: \"$.id\"
          attemptTimeout: {attempt_timeout}
          timeout: 10m
          retry:
            maxAttempts: 12
            interval: 100ms
            maxInterval: 2s
      rollback:
        - id: remove
          type: rest
          with:
            method: DELETE
            url: \"{{{{environment.thingsUrl}}}}/things/{{{{outputs.create.thingId}}}}\"
          timeout: 10m
          retry:
            maxAttempts: 12
            interval: 100ms
            maxInterval: 2s
      deprovision:
        - id: destroy
          type: rest
          with:
            method: DELETE
            url: \"{{{{environment.thingsUrl}}}}/things/{{{{resource.outputs.thingId}}}}\"
"
    )
}

/// A bundle of `thing` components: `components` are `(id, depends on)`; each makes a
/// thing named `<prefix of the id's field>`: the request's field `<id>`.
pub fn things_bundle(name: &str, components: &[(&str, &[&str])], on_failure: &str) -> String {
    let mut out = format!(
        "\
apiVersion: orchestrator.dev/v1
kind: CatalogBundle
metadata:
  name: {name}
  title: Things
  description: Things in a given shape.
  owner: database
  category: database
spec:
  presentation:
    schema:
      type: object
      properties:
"
    );
    for (id, _) in components {
        out.push_str(&format!("        {id}:\n          type: string\n"));
    }
    out.push_str(&format!("  onFailure: {on_failure}\n  components:\n"));
    for (id, deps) in components {
        out.push_str(&format!(
            "    - id: {id}\n      item: thing\n      inputs:\n        name: \"{{{{default fields.{id} '{id}'}}}}\"\n"
        ));
        if !deps.is_empty() {
            out.push_str(&format!("      dependsOn: [{}]\n", deps.join(", ")));
        }
    }
    out
}

/// Local mode, without the sandbox's stand-ins, on a catalog of `files` written under a
/// fresh directory, its `environment.thingsUrl` pointing at `target`: the app, its
/// configuration, and the directory (the catalog is its `catalog/`), kept by the caller.
pub async fn local_app(
    target: &Things,
    files: &[(&str, String)],
) -> (crate::app::App, shared::config::Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = crate::write_catalog(dir.path(), files);
    let mut config = crate::app::sandbox_config(dir.path(), catalog);
    config.sandbox = false;
    config.environment = json!({"thingsUrl": target.uri()})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let app = crate::app::App::start(&config).await;
    (app, config, dir)
}
