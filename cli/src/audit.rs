//! `orchestrator audit export`: the audit log from a date, as JSON Lines, read through
//! the API (so it works against local mode and a deployment alike, and only for those the
//! API lets read the audit log: admins).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::api::{Api, instant, runtime, write_out};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Write the audit entries recorded since a date, oldest first, one JSON document a
    /// line. Needs an admin's token. Exit 0 when written, 1 when the API refused or
    /// failed, 2 on usage errors.
    Export(ExportArgs),
}

#[derive(Args)]
pub struct ExportArgs {
    /// From when: a date (`2026-11-01`, midnight UTC) or an RFC 3339 time.
    #[arg(long)]
    since: String,
    /// The API, and an admin's token.
    #[command(flatten)]
    api: Api,
    /// Where to write (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Export(args) => export(args),
    }
}

fn export(args: ExportArgs) -> ExitCode {
    let since = match instant("--since", &args.since) {
        Ok(at) => at,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let entries = match runtime().and_then(|r| r.block_on(read(&args.api, since))) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    // The API lists newest first; the export reads oldest first.
    let mut text = String::new();
    for entry in entries.iter().rev() {
        text.push_str(&entry.to_string());
        text.push('\n');
    }
    if let Err(e) = write_out(args.output.as_ref(), &text) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    eprintln!("{} audit entries since {}", entries.len(), args.since);
    ExitCode::SUCCESS
}

/// Every entry at or after `since`, newest first: the API's pages until one goes past it.
async fn read(api: &Api, since: OffsetDateTime) -> Result<Vec<Value>, String> {
    let client = reqwest::Client::new();
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "500".to_owned())];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let body = api.get(&client, "/audit", &query).await?;
        for entry in body["items"].as_array().into_iter().flatten() {
            let at = entry["at"]
                .as_str()
                .and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok())
                .ok_or_else(|| format!("an audit entry without a time: {entry}"))?;
            if at < since {
                return Ok(entries);
            }
            entries.push(entry.clone());
        }
        match body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(entries),
        }
    }
}
