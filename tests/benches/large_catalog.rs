//! A large catalog (issue 36): 10,000 generated items and 100 bundles validate, load and
//! go live in local mode, and the catalog API pages and filters them at the cost of a
//! page, not of the catalog. Prints, for a 100-item catalog and the 10,000-item one side
//! by side: validation, the snapshot (validation, forms, listing index), local mode's
//! start on the catalog (the snapshot, every state machine deployed, listening), and
//! p50/p95/p99 of the catalog API under 256 connections.
//! Run: `cargo bench -p orchestrator-tests --bench large_catalog`. Target: under 3 s to
//! go live; each API figure on the large catalog within 1.5× of the small one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator_tests::load::{Figures, MakeCall, measure};
use serde_json::Value;
use shared::config::Config;

const CONNECTIONS: usize = 256;

struct Run {
    items: usize,
    validate: Duration,
    snapshot: Duration,
    machines: usize,
    generate: Duration,
    start: Duration,
    calls: Vec<(&'static str, Figures)>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let (small, large, calls) = if quick {
        ((20, 2), (200, 5), 200)
    } else {
        ((100, 10), (10_000, 100), 20_000)
    };
    let runs = [
        run(small.0, small.1, calls).await,
        run(large.0, large.1, calls).await,
    ];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for r in &runs {
        println!(
            "{:>6} items: validate {:.0} ms, snapshot {:.0} ms, {} state machines generated in {:.0} ms, local mode live {:.0} ms",
            r.items,
            ms(r.validate),
            ms(r.snapshot),
            r.machines,
            ms(r.generate),
            ms(r.start)
        );
    }
    for (i, (name, figures)) in runs[1].calls.iter().enumerate() {
        let base = runs[0].calls[i].1;
        println!(
            "{name:<44} {:>6} items: {base}\n{:<44} {:>6} items: {figures} (p95 {:.2}×)",
            runs[0].items,
            "",
            runs[1].items,
            figures.p95.as_secs_f64() / base.p95.as_secs_f64().max(1e-9)
        );
    }
}

async fn run(items: usize, bundles: usize, calls: usize) -> Run {
    let files = orchestrator_tests::generated_catalog(items, bundles);
    let dir = tempfile::tempdir().expect("temporary directory");
    let catalog = dir.path().join("catalog");
    for f in &files {
        let path = catalog.join(&f.path);
        std::fs::create_dir_all(path.parent().expect("files are in folders")).expect("mkdir");
        std::fs::write(path, &f.bytes).expect("write");
    }
    let started = Instant::now();
    let report = shared::catalog::validate_dir(&catalog).expect("readable");
    let validate = started.elapsed();
    assert!(report.is_valid(), "{:?}", &report.findings[..1]);
    let started = Instant::now();
    let snapshot = shared::catalog::snapshot::CatalogSnapshot::from_dir(&catalog).expect("valid");
    let snapshot_time = started.elapsed();
    let started = Instant::now();
    let machines = shared::bundle::asl::all_definitions(&snapshot.catalog)
        .expect("machines compile")
        .len();
    let generate = started.elapsed();
    drop(snapshot);

    let config = Config {
        listen: "127.0.0.1:0".to_owned(),
        catalog_dir: catalog,
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    let started = Instant::now();
    let orchestrator_tests::load::Local {
        running,
        base,
        token,
        client,
    } = orchestrator_tests::load::start_local(&config, CONNECTIONS).await;
    // Listening, with a token minted (a few milliseconds).
    let start = started.elapsed();

    // A cursor near the end of the list, with a whole page of 50 after it.
    let mut deep = None;
    let mut seen = 0;
    let step = (items / 4).clamp(1, 50);
    while seen + 2 * step <= items {
        let mut url = format!("{base}/catalog/items?limit={step}");
        if let Some(cursor) = &deep {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("a page")
            .json()
            .await
            .expect("json");
        seen += page["items"].as_array().map_or(0, Vec::len);
        deep = page["next"].as_str().map(str::to_owned);
    }
    let deep = deep.expect("a deep cursor");
    let paths = [
        (
            "GET /catalog/items?limit=50",
            "/catalog/items?limit=50".to_owned(),
        ),
        (
            "GET /catalog/items?limit=50&cursor=(last)",
            format!("/catalog/items?limit=50&cursor={deep}"),
        ),
        (
            "GET /catalog/items?q=generated&limit=50",
            "/catalog/items?q=generated&limit=50".to_owned(),
        ),
        // Matches nothing: the whole list is searched.
        (
            "GET /catalog/items?q=no-such-thing&limit=50",
            "/catalog/items?q=no-such-thing&limit=50".to_owned(),
        ),
        (
            "GET /catalog/items?category=…&tag=…&limit=50",
            "/catalog/items?category=database&tag=bench&limit=50".to_owned(),
        ),
        ("GET /catalog/facets", "/catalog/facets".to_owned()),
    ];
    let mut figures = Vec::new();
    for (name, path) in paths {
        let (client, url, token) = (client.clone(), format!("{base}{path}"), token.clone());
        let make: MakeCall = Arc::new(move |_| client.get(&url).bearer_auth(&token));
        let measured = measure(CONNECTIONS, calls, make).await;
        assert_eq!(measured.errors, 0, "{name}: {measured}");
        figures.push((name, measured));
    }
    running.stop().await.expect("clean stop");
    Run {
        items,
        validate,
        snapshot: snapshot_time,
        machines,
        generate,
        start,
        calls: figures,
    }
}
