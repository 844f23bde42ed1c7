//! `orchestrator audit export`: the audit log from a date, as JSON Lines, read through
//! the API (so it works against local mode and a deployment alike, and only for those the
//! API lets read the audit log: admins).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
    /// The API's address.
    #[arg(
        long,
        env = "ORCHESTRATOR_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// A bearer token of an admin (`orchestrator dev-token` in local mode).
    #[arg(long, env = "ORCHESTRATOR_TOKEN", hide_env_values = true)]
    token: String,
    /// Where to write (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Export(args) => export(args),
    }
}

/// `2026-11-01` or an RFC 3339 time.
fn since(text: &str) -> Result<OffsetDateTime, String> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| {
        format!("--since: `{text}` is neither a date (2026-11-01) nor an RFC 3339 time")
    })?;
    Ok(date.midnight().assume_utc())
}

fn export(args: ExportArgs) -> ExitCode {
    let since = match since(&args.since) {
        Ok(at) => at,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    let entries = match runtime.block_on(read(&args.url, &args.token, since)) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Box::new(std::io::BufWriter::new(file)),
            Err(e) => {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    // The API lists newest first; the export reads oldest first.
    for entry in entries.iter().rev() {
        if let Err(e) = writeln!(out, "{entry}") {
            eprintln!("cannot write: {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = out.flush() {
        eprintln!("cannot write: {e}");
        return ExitCode::from(2);
    }
    eprintln!("{} audit entries since {}", entries.len(), args.since);
    ExitCode::SUCCESS
}

/// Every entry at or after `since`, newest first: the API's pages until one goes past it.
async fn read(url: &str, token: &str, since: OffsetDateTime) -> Result<Vec<Value>, String> {
    let client = reqwest::Client::new();
    let base = url.trim_end_matches('/');
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "500".to_owned())];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let response = client
            .get(format!("{base}/audit"))
            .query(&query)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("cannot reach {base}: {e}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let why = body["detail"]
                .as_str()
                .or(body["title"].as_str())
                .unwrap_or("no reason given");
            return Err(format!("GET {base}/audit answered {status}: {why}"));
        }
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
