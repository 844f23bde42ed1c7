#![allow(clippy::unwrap_used)] // Suites are tests: they fail loudly.

//! Behaviour suites, one per port: every adapter of a port must pass its suite, so the
//! embedded adapters and the AWS ones behave alike. Enabled by the `testkit` feature.

pub mod archive;
pub mod audit;
pub mod catalog_versions;
pub mod metrics;
pub mod queue;
pub mod reconcile;
pub mod requests;
pub mod resources;
pub mod secrets;
pub mod state;
pub mod workflows;

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::ports::Clock;

/// How a suite lets time pass for the adapter under test: a manual clock for embedded
/// adapters, real sleeping for services that keep their own time.
#[async_trait]
pub trait TimeControl: Send + Sync {
    async fn advance(&self, by: Duration);
}

/// A clock that moves only when told to.
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl TimeControl for ManualClock {
    async fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

/// Real time, for adapters whose service keeps the clock.
pub struct Sleep;

#[async_trait]
impl TimeControl for Sleep {
    async fn advance(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }
}
