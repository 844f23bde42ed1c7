//! Validates 5,000 generated documents end to end (parse, schema, semantic checks) and
//! prints wall-time figures. Run: `cargo bench -p orchestrator-tests --bench validate`.
//! Target (issue 2): under 1 s on a 2-core machine.

use std::time::{Duration, Instant};

fn main() {
    // `cargo test --benches` runs this too; one quick round is enough there.
    let quick = std::env::args().any(|a| a == "--test");
    let (items, bundles, rounds) = if quick {
        (40, 10, 1)
    } else {
        (4_000, 1_000, 10)
    };
    let files = orchestrator_tests::generated_catalog(items, bundles);
    let bytes: usize = files.iter().map(|f| f.bytes.len()).sum();

    // End to end from disk, as `orchestrator catalog validate DIR` does it.
    let dir = tempfile::tempdir().expect("temporary directory");
    for f in &files {
        let path = dir.path().join(&f.path);
        std::fs::create_dir_all(path.parent().expect("files are in folders")).expect("mkdir");
        std::fs::write(path, &f.bytes).expect("write");
    }
    if let Ok(keep) = std::env::var("BENCH_KEEP_CATALOG") {
        // For timing the CLI on the same documents: copy them out.
        orchestrator_tests::copy_dir(dir.path(), std::path::Path::new(&keep));
    }
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let report = shared::catalog::validate_dir(dir.path()).expect("readable");
        times.push(started.elapsed());
        assert!(
            report.is_valid(),
            "generated catalog must be valid: {:?}",
            &report.findings[..1]
        );
        assert_eq!(report.documents, items + bundles + 1);
    }
    times.sort();
    // Where the time goes: loading (read, YAML, schema, types) and the semantic checks.
    let started = Instant::now();
    let loaded = shared::catalog::load::load_files(&files);
    let load = started.elapsed();
    let started = Instant::now();
    let findings = shared::catalog::semantic::check(&loaded.catalog);
    let semantic = started.elapsed();
    assert!(findings.is_empty());
    let median = times[times.len() / 2];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "validate_dir {} documents ({:.1} MiB): min {:.0} ms, median {:.0} ms, max {:.0} ms over {rounds} rounds \
         on {} threads (load {:.0} ms, semantic {:.0} ms)",
        items + bundles,
        bytes as f64 / (1024.0 * 1024.0),
        ms(times[0]),
        ms(median),
        ms(times[times.len() - 1]),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        ms(load),
        ms(semantic),
    );
}
