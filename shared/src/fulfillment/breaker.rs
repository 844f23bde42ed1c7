//! Circuit breakers, one per target host, kept in the state store so that every worker
//! (every Lambda) sees the same state: closed; open after `threshold` consecutive
//! failures; after `cooldown`, half-open, letting one probe through; the probe's success
//! closes it, its failure opens it again.
//!
//! Each worker remembers what it last read or wrote of a breaker for `fresh_for` (a
//! second), so the common case (closed, and staying closed) costs no store call. Every
//! change is still a conditional write on the stored state, so a stale memory only makes
//! a write retry; a breaker another worker opened is seen here at most `fresh_for` late.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ports::{Clock, StateStore, StoreError};

const TABLE: &str = "breakers";
const CAS_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Breaker {
    pub state: State,
    pub failures: u32,
    /// Open: when a probe may go. Half-open: when an unanswered probe is given up.
    #[serde(with = "crate::timestamp::option", default)]
    pub until: Option<OffsetDateTime>,
}

/// Why a call may not go now.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the circuit breaker for {host} is open until {until} after repeated failures")]
pub struct Open {
    pub host: String,
    pub until: String,
    /// When a probe may go.
    pub at: OffsetDateTime,
}

#[derive(Clone)]
pub struct Breakers {
    pub store: Arc<dyn StateStore>,
    pub clock: Arc<dyn Clock>,
    pub threshold: u32,
    pub cooldown: Duration,
    /// How long what this worker last saw of a breaker is used without reading it again.
    pub fresh_for: Duration,
    seen: Arc<Mutex<HashMap<String, Seen>>>,
}

/// A breaker as this worker last read or wrote it.
#[derive(Clone)]
struct Seen {
    breaker: Breaker,
    version: Option<u64>,
    at: OffsetDateTime,
}

impl Breakers {
    pub fn new(store: Arc<dyn StateStore>, clock: Arc<dyn Clock>) -> Self {
        Breakers {
            store,
            clock,
            threshold: 5,
            cooldown: Duration::from_secs(30),
            fresh_for: Duration::from_secs(1),
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, host: &str, breaker: Breaker, version: Option<u64>) {
        let at = self.clock.now();
        self.seen().insert(
            host.to_owned(),
            Seen {
                breaker,
                version,
                at,
            },
        );
    }

    /// The breaker as last seen, if that was recently enough; otherwise read.
    async fn recent(&self, host: &str) -> Result<(Breaker, Option<u64>), StoreError> {
        let now = self.clock.now();
        if let Some(seen) = self.seen().get(host)
            && now - seen.at < self.fresh_for
            && now >= seen.at
        {
            return Ok((seen.breaker.clone(), seen.version));
        }
        let (breaker, version) = self.read(host).await?;
        self.remember(host, breaker.clone(), version);
        Ok((breaker, version))
    }

    async fn read(&self, host: &str) -> Result<(Breaker, Option<u64>), StoreError> {
        Ok(match self.store.get(TABLE, host).await? {
            Some(v) => (
                serde_json::from_value(v.value).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                Some(v.version),
            ),
            None => (
                Breaker {
                    state: State::Closed,
                    failures: 0,
                    until: None,
                },
                None,
            ),
        })
    }

    /// Applies `change` with a conditional write, re-reading on a concurrent change.
    /// `change` returns `None` to leave the breaker as it is.
    async fn update<T>(
        &self,
        host: &str,
        change: impl Fn(&Breaker, OffsetDateTime) -> (Option<Breaker>, T),
    ) -> Result<T, StoreError> {
        for _ in 0..CAS_ATTEMPTS {
            let (current, version) = self.recent(host).await?;
            let (next, answer) = change(&current, self.clock.now());
            let Some(next) = next else {
                return Ok(answer);
            };
            let value =
                serde_json::to_value(&next).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            match self.store.put(TABLE, host, &value, version).await {
                Ok(stored) => {
                    if next.state != current.state {
                        tracing::warn!(host, from = ?current.state, to = ?next.state, "circuit breaker changed");
                    }
                    self.remember(host, next, Some(stored));
                    return Ok(answer);
                }
                Err(StoreError::VersionConflict { .. }) => {
                    // Someone else changed it: read it afresh.
                    self.seen().remove(host);
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(format!(
            "the breaker for {host} kept changing"
        )))
    }

    /// Whether a call to `host` may go now. When the breaker's cool-down is over, the one
    /// caller that wins the conditional write goes as the probe.
    pub async fn check(&self, host: &str) -> Result<Result<(), Open>, StoreError> {
        let cooldown = self.cooldown;
        self.update(host, |b, now| {
            let open = |until: OffsetDateTime| Open {
                host: host.to_owned(),
                at: until,
                until: until
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            };
            match (b.state, b.until) {
                (State::Closed, _) => (None, Ok(())),
                (_, Some(until)) if now < until => (None, Err(open(until))),
                _ => (
                    Some(Breaker {
                        state: State::HalfOpen,
                        failures: b.failures,
                        until: Some(now + cooldown),
                    }),
                    Ok(()),
                ),
            }
        })
        .await
    }

    pub async fn success(&self, host: &str) -> Result<(), StoreError> {
        self.update(host, |b, _| {
            if b.state == State::Closed && b.failures == 0 {
                (None, ())
            } else {
                (
                    Some(Breaker {
                        state: State::Closed,
                        failures: 0,
                        until: None,
                    }),
                    (),
                )
            }
        })
        .await
    }

    pub async fn failure(&self, host: &str) -> Result<(), StoreError> {
        let (threshold, cooldown) = (self.threshold, self.cooldown);
        let opened = self
            .update(host, |b, now| {
                let failures = b.failures.saturating_add(1);
                let open = b.state == State::HalfOpen || failures >= threshold;
                (
                    Some(Breaker {
                        state: if open { State::Open } else { State::Closed },
                        failures,
                        until: open.then(|| now + cooldown),
                    }),
                    open && b.state != State::Open,
                )
            })
            .await?;
        if opened {
            tracing::warn!(host, "circuit breaker opened");
            crate::metrics::count(crate::metrics::BREAKERS_OPENED, &[("Host", host)], 1);
        }
        Ok(())
    }

    pub async fn get(&self, host: &str) -> Result<Breaker, StoreError> {
        Ok(self.read(host).await?.0)
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;
    use crate::adapters::local::{Db, SqliteStateStore};
    use crate::testkit::{ManualClock, TimeControl};

    #[tokio::test]
    async fn closed_open_half_open_and_back() {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let store = Arc::new(SqliteStateStore::new(Db::in_memory().unwrap()));
        let breakers = Breakers {
            threshold: 3,
            ..Breakers::new(store, clock.clone())
        };
        let host = "api.example.com";
        for _ in 0..2 {
            breakers.failure(host).await.unwrap();
            assert!(breakers.check(host).await.unwrap().is_ok());
        }
        breakers.failure(host).await.unwrap();
        let open = breakers.check(host).await.unwrap().unwrap_err();
        assert_eq!(open.host, host);
        assert!(open.to_string().contains("open until"), "{open}");

        // After the cool-down, exactly one probe goes.
        clock.advance(Duration::from_secs(31)).await;
        assert!(breakers.check(host).await.unwrap().is_ok());
        assert!(
            breakers.check(host).await.unwrap().is_err(),
            "one probe at a time"
        );
        // The probe fails: open again for another cool-down.
        breakers.failure(host).await.unwrap();
        assert_eq!(breakers.get(host).await.unwrap().state, State::Open);
        clock.advance(Duration::from_secs(31)).await;
        assert!(breakers.check(host).await.unwrap().is_ok());
        breakers.success(host).await.unwrap();
        assert_eq!(breakers.get(host).await.unwrap().state, State::Closed);
        assert!(breakers.check(host).await.unwrap().is_ok());
        // A success resets the count of consecutive failures.
        breakers.failure(host).await.unwrap();
        breakers.success(host).await.unwrap();
        breakers.failure(host).await.unwrap();
        breakers.failure(host).await.unwrap();
        assert!(breakers.check(host).await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn another_workers_change_is_seen_within_fresh_for_and_never_overwritten() {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let store = Arc::new(SqliteStateStore::new(Db::in_memory().unwrap()));
        let one = Breakers {
            threshold: 2,
            ..Breakers::new(store.clone(), clock.clone())
        };
        let other = Breakers {
            threshold: 2,
            ..Breakers::new(store, clock.clone())
        };
        let host = "api.example.com";
        assert!(other.check(host).await.unwrap().is_ok());
        one.failure(host).await.unwrap();
        one.failure(host).await.unwrap();
        assert!(
            one.check(host).await.unwrap().is_err(),
            "open where it opened"
        );
        // `other` read it closed a moment ago and may go on believing so for a second...
        assert!(other.check(host).await.unwrap().is_ok());
        clock.advance(Duration::from_millis(1_100)).await;
        // ...then reads it again.
        assert!(other.check(host).await.unwrap().is_err());

        // A write from a stale memory retries against the stored state instead of
        // overwriting it: `other` saw one failure, `one` has added two since.
        clock.advance(Duration::from_secs(31)).await;
        assert!(one.check(host).await.unwrap().is_ok(), "the probe");
        one.success(host).await.unwrap();
        other.failure(host).await.unwrap();
        one.failure(host).await.unwrap();
        let stored = one.get(host).await.unwrap();
        assert_eq!(stored.failures, 2, "both failures counted");
        assert_eq!(stored.state, State::Open);
    }
}
