//! The shape of the library, read from its source: which of `shared/src`'s top-level
//! modules name which (`crate::MODULE` in code that is not a test), and where the
//! worker is implemented. Run alone with `cargo test -p orchestrator-tests --test house`.
//!
//! The design's order: http → worker → resources → fulfillment (the engine) → requests
//! → ports and catalog. Imports point down: no module names one above it, so the graph
//! of those modules has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("shared/src is readable") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`worker` for `worker/queue.rs`, `ports` for
/// `ports.rs`).
fn module_of(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).expect("under the root");
    let first = relative
        .components()
        .next()
        .expect("a component")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of a file without its tests (everything from the first `#[cfg(test)]`) and
/// without comments (a doc comment may name any module).
fn code(text: &str) -> String {
    let code = text.find("#[cfg(test)]").map_or(text, |at| &text[..at]);
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a piece of code names as `crate::NAME`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        // Not `shared::crate::` nor part of a longer identifier.
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            names.insert(name);
        }
        // `crate::{a, b::c}`: each part.
        if let Some(group) = rest.strip_prefix('{') {
            for part in group.split('}').next().unwrap_or_default().split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        }
    }
    names
}

/// module → the modules its code names, and which files name each.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn graph() -> Graph {
    let root = source_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let module = module_of(&root, &file);
        let text = std::fs::read_to_string(&file).expect("a source file");
        let relative = file.strip_prefix(&root).expect("under the root");
        for named in named_modules(&code(&text)) {
            if named != module {
                graph
                    .entry(module.clone())
                    .or_default()
                    .entry(named)
                    .or_default()
                    .insert(relative.display().to_string());
            }
        }
    }
    graph
}

/// A cycle among `modules`, if there is one, as the modules along it.
fn cycle_among(graph: &Graph, modules: &[&str]) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        within: &BTreeSet<&str>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|edges| edges.keys()) {
            if within.contains(next.as_str())
                && let Some(cycle) = visit(graph, within, next, path, done)
            {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let within: BTreeSet<&str> = modules.iter().copied().collect();
    let mut done = BTreeSet::new();
    modules
        .iter()
        .find_map(|m| visit(graph, &within, m, &mut Vec::new(), &mut done))
}

#[test]
fn the_middle_of_the_house_has_no_import_cycle() {
    let graph = graph();
    let middle = ["worker", "resources", "fulfillment", "requests", "bundle"];
    assert_eq!(
        cycle_among(&graph, &middle),
        None,
        "the modules import each other in a circle"
    );
}

#[test]
fn imports_point_down_from_the_worker_to_the_requests() {
    let graph = graph();
    // Each module, and the ones above it that it must never name.
    let above: [(&str, &[&str]); 4] = [
        (
            "requests",
            &["fulfillment", "resources", "worker", "http", "bundle"],
        ),
        ("fulfillment", &["resources", "worker", "http"]),
        ("resources", &["worker", "http"]),
        ("worker", &["http"]),
    ];
    let mut wrong = Vec::new();
    for (module, forbidden) in above {
        for up in forbidden {
            if let Some(files) = graph.get(module).and_then(|edges| edges.get(*up)) {
                wrong.push(format!("{module} -> {up} (in {files:?})"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports that point up: {wrong:#?}");
}

#[test]
fn every_impl_of_the_worker_lives_in_the_worker_module() {
    let root = source_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let outside: Vec<String> = files
        .iter()
        .filter(|f| module_of(&root, f) != "worker")
        .filter(|f| {
            std::fs::read_to_string(f)
                .expect("a source file")
                .contains("impl Worker")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        outside.is_empty(),
        "`impl Worker` outside worker/: {outside:?}"
    );
}

#[test]
fn the_reader_of_crate_paths_finds_single_and_grouped_names() {
    let names = named_modules(
        "use crate::requests::model::Request;\nuse crate::{ports::Clock, catalog};\nlet x = crate::worker::MAX;\nuse shared::crate_like;",
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(names, ["catalog", "ports", "requests", "worker"]);
    assert_eq!(code("a\n#[cfg(test)]\nmod tests { crate::worker }"), "a");
    assert_eq!(
        code("//! see crate::worker\nuse x; // crate::http"),
        "\nuse x; "
    );
}
