//! `orchestrator bundle ...`: the state machines and component graphs of a catalog.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use shared::bundle::asl;
use shared::catalog::snapshot::CatalogSnapshot;

#[derive(Subcommand)]
pub enum BundleCommand {
    /// Print a bundle's Amazon States Language definition, or with --out write every state
    /// machine of the catalog (bundles and automated items) as NAME.asl.json.
    Compile {
        /// The catalog repository's root directory.
        dir: PathBuf,
        /// The bundle name (omit with --out).
        #[arg(required_unless_present = "out")]
        name: Option<String>,
        /// Write every definition into this directory, removing stale *.asl.json files.
        #[arg(long, conflicts_with = "name")]
        out: Option<PathBuf>,
    },
    /// Print a bundle's component graph as a Mermaid flowchart.
    Graph { dir: PathBuf, name: String },
}

pub fn run(command: BundleCommand) -> ExitCode {
    match command {
        BundleCommand::Compile { dir, name, out } => with_catalog(&dir, |snapshot| {
            let catalog = &snapshot.catalog;
            match (name, out) {
                (_, Some(out)) => write_all(catalog, &out),
                (Some(name), None) => match asl::compile_bundle(catalog, &name) {
                    Ok(definition) => {
                        print!("{}", asl::to_text(&definition));
                        ExitCode::SUCCESS
                    }
                    Err(e) => usage(e),
                },
                (None, None) => usage("name a bundle, or pass --out DIR"),
            }
        }),
        BundleCommand::Graph { dir, name } => with_catalog(&dir, |snapshot| {
            match asl::mermaid(&snapshot.catalog, &name) {
                Ok(graph) => {
                    print!("{graph}");
                    ExitCode::SUCCESS
                }
                Err(e) => usage(e),
            }
        }),
    }
}

fn usage(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn with_catalog(dir: &Path, f: impl FnOnce(&CatalogSnapshot) -> ExitCode) -> ExitCode {
    match CatalogSnapshot::from_dir(dir) {
        Ok(snapshot) => f(&snapshot),
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            ExitCode::from(1)
        }
    }
}

fn write_all(catalog: &shared::catalog::Catalog, out: &Path) -> ExitCode {
    let definitions = match asl::all_definitions(catalog) {
        Ok(d) => d,
        Err(e) => return usage(e),
    };
    let result = (|| -> std::io::Result<usize> {
        std::fs::create_dir_all(out)?;
        let wanted: Vec<String> = definitions
            .iter()
            .map(|(name, _)| format!("{name}.asl.json"))
            .collect();
        for entry in std::fs::read_dir(out)? {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.ends_with(".asl.json") && !wanted.contains(&file) {
                std::fs::remove_file(entry.path())?;
            }
        }
        for ((_, definition), file) in definitions.iter().zip(&wanted) {
            std::fs::write(out.join(file), asl::to_text(definition))?;
        }
        Ok(wanted.len())
    })();
    match result {
        Ok(n) => {
            eprintln!("wrote {n} state machine(s) to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => usage(format!("cannot write to {}: {e}", out.display())),
    }
}
