//! What the commands that talk to a running orchestrator share: the API's address and
//! token as arguments, a runtime for one command, JSON calls whose refusals read as the
//! problem's reason, times given as dates, and where the output goes.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Which orchestrator to ask, as whom.
#[derive(Args)]
pub struct Api {
    /// The API's address.
    #[arg(
        long,
        env = "ORCHESTRATOR_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// A bearer token (`orchestrator dev-token` in local mode).
    #[arg(long, env = "ORCHESTRATOR_TOKEN", hide_env_values = true)]
    pub token: String,
}

impl Api {
    /// `GET path` with `query`: the JSON body, or why the API refused (its problem's
    /// detail) or could not be reached.
    pub async fn get(
        &self,
        client: &reqwest::Client,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, String> {
        let base = self.url.trim_end_matches('/');
        let response = client
            .get(format!("{base}{path}"))
            .query(query)
            .bearer_auth(&self.token)
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
            return Err(format!("GET {base}{path} answered {status}: {why}"));
        }
        Ok(body)
    }
}

/// A runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))
}

/// `2026-11-01` (midnight UTC) or an RFC 3339 time, given as `flag`.
pub fn instant(flag: &str, text: &str) -> Result<OffsetDateTime, String> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| format!("{flag}: `{text}` is neither a date (2026-11-01) nor an RFC 3339 time"))?;
    Ok(date.midnight().assume_utc())
}

/// Writes `text` to `path`, or to standard output without one.
pub fn write_out(path: Option<&PathBuf>, text: &str) -> Result<(), String> {
    let mut out: Box<dyn Write> = match path {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write: {e}"))
}
