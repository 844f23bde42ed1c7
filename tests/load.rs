//! Load for the benchmarks: `total` HTTP calls over `connections` concurrent workers,
//! each call made by `make` from its number, timed from send to the last byte of the
//! answer. What the latency benchmarks share.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Makes the call numbered `n` (numbers are unique across workers).
pub type MakeCall = Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync>;

/// The figures of one measurement.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub connections: usize,
    pub requests: usize,
    /// Calls that failed or answered other than 2xx (not in the latencies).
    pub errors: usize,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub per_second: f64,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{} connections, {} requests, {} errors: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.0} req/s",
            self.connections,
            self.requests,
            self.errors,
            ms(self.p50),
            ms(self.p95),
            ms(self.p99),
            ms(self.max),
            self.per_second
        )
    }
}

/// Runs `total` calls made by `make` over `connections` workers (each keeping its
/// connection alive) and measures them.
pub async fn measure(connections: usize, total: usize, make: MakeCall) -> Figures {
    let connections = connections.clamp(1, total.max(1));
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (counter, make) = (counter.clone(), make.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                loop {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    let call = make(n);
                    let t = Instant::now();
                    match call.send().await {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                            latencies.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(total);
    let mut errors = 0;
    for worker in workers {
        let (latencies, e) = worker.await.expect("a load worker");
        all.extend(latencies);
        errors += e;
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Figures {
        connections,
        requests: all.len(),
        errors,
        p50: pct(0.50),
        p95: pct(0.95),
        p99: pct(0.99),
        max: all.last().copied().unwrap_or_default(),
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
    }
}

/// Local mode started for a benchmark, with what its calls need.
pub struct Local {
    pub running: shared::local::Running,
    /// `http://<addr>`.
    pub base: String,
    /// A dev token of `bench` in `developers`.
    pub token: String,
    /// A client that keeps up to `connections` connections alive.
    pub client: reqwest::Client,
}

/// Starts local mode on `config` for a benchmark of `connections` connections.
pub async fn start_local(config: &shared::config::Config, connections: usize) -> Local {
    let running = shared::local::start(config)
        .await
        .expect("local mode starts");
    let secret = shared::local::dev_secret(
        config,
        &shared::adapters::local::LocalSecrets::from_pairs([]),
    )
    .await
    .expect("dev secret");
    let token = shared::http::auth::dev_token(
        &secret,
        "bench",
        None,
        &["developers".into()],
        Duration::from_secs(3600),
    )
    .expect("token");
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .expect("client");
    Local {
        running,
        base,
        token,
        client,
    }
}
