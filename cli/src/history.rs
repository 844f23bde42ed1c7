//! `orchestrator sandbox history`: fills a local data directory with a generated history
//! (months of requests for a few catalog items, by hand and then automated), so the
//! insights have something to show on a new machine. Marked as generated throughout.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use shared::adapters::local::{Db, SqliteRequestStore};
use shared::catalog::snapshot::CatalogSnapshot;
use shared::ports::{RequestQuery, RequestStore};
use shared::sandbox::history::{GENERATED_BY, generate};

#[derive(Subcommand)]
pub enum SandboxCommand {
    /// Write a generated history of requests into the data directory, unless it has one.
    /// Exit 0 when written or already there, 2 on usage or I/O errors.
    History(HistoryArgs),
}

#[derive(Args)]
pub struct HistoryArgs {
    #[arg(long)]
    config: Option<PathBuf>,
    /// The catalog whose items get a history.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// The data directory to write into (not while `serve` runs on it).
    #[arg(long)]
    data: Option<PathBuf>,
    /// How many weeks back the history goes (the last third automated).
    #[arg(long, default_value_t = 26, value_parser = clap::value_parser!(u32).range(3..=104))]
    weeks: u32,
}

pub fn run(command: SandboxCommand) -> ExitCode {
    match command {
        SandboxCommand::History(args) => match history(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn history(args: HistoryArgs) -> Result<(), String> {
    let mut config = crate::serve::load(args.config.as_ref(), args.data)?;
    if let Some(catalog) = args.catalog {
        config.catalog_dir = catalog;
    }
    let catalog = CatalogSnapshot::from_dir(&config.catalog_dir).map_err(|e| e.to_string())?;
    let runtime = crate::api::runtime()?;
    runtime.block_on(async {
        let db = Db::open(&config.data_dir).map_err(|e| e.to_string())?;
        let store = SqliteRequestStore::new(db.clone());
        let existing = store
            .list(&RequestQuery {
                requester: Some(GENERATED_BY.to_owned()),
                limit: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        if !existing.items.is_empty() {
            eprintln!(
                "{} already holds a generated history",
                config.data_dir.display()
            );
            return Ok(());
        }
        let now = time::OffsetDateTime::now_utc();
        let made = generate(&store, &catalog, now, args.weeks)
            .await
            .map_err(|e| e.to_string())?;
        db.flush().await.map_err(|e| e.to_string())?;
        eprintln!(
            "generated {} requests over {} weeks for {} (by hand until {}, automated since), requested by `{GENERATED_BY}`",
            made.requests,
            args.weeks,
            made.items.join(", "),
            made.switched_at.date()
        );
        Ok(())
    })
}
