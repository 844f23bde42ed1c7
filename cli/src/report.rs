//! `orchestrator report`: a period's lead time figures, as `GET /insights/lead-time`
//! answers them, as Markdown (a platform team's monthly review) or CSV (a spreadsheet).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::api::{Api, instant, runtime, write_out};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Markdown,
    Csv,
}

#[derive(Args)]
pub struct ReportArgs {
    /// Requests submitted from: a date (`2026-11-01`, midnight UTC) or an RFC 3339 time
    /// (default: 30 days before `--to`).
    #[arg(long)]
    from: Option<String>,
    /// ...until (default: now). At most 731 days after `--from`.
    #[arg(long)]
    to: Option<String>,
    /// One item or bundle.
    #[arg(long)]
    item: Option<String>,
    /// One owning team.
    #[arg(long)]
    team: Option<String>,
    /// Rows per item, team, mode or ISO week.
    #[arg(long, default_value = "item", value_parser = ["item", "team", "mode", "week"])]
    group_by: String,
    #[arg(long, value_enum, default_value = "markdown")]
    format: Format,
    #[command(flatten)]
    api: Api,
    /// Where to write (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
}

/// Exit 0 when written, 1 when the API refused or failed, 2 on usage errors.
pub fn report(args: ReportArgs) -> ExitCode {
    let mut query = vec![("groupBy", args.group_by.clone())];
    for (flag, name, value) in [("--from", "from", &args.from), ("--to", "to", &args.to)] {
        if let Some(text) = value {
            if let Err(e) = instant(flag, text) {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
            query.push((name, text.clone()));
        }
    }
    for (name, value) in [("item", &args.item), ("team", &args.team)] {
        if let Some(value) = value {
            query.push((name, value.clone()));
        }
    }
    let client = reqwest::Client::new();
    let figures = match runtime()
        .and_then(|r| r.block_on(args.api.get(&client, "/insights/lead-time", &query)))
    {
        Ok(figures) => figures,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let text = match args.format {
        Format::Markdown => markdown(&figures, &args.group_by),
        Format::Csv => csv(&figures),
    };
    match write_out(args.output.as_ref(), &text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// A duration in milliseconds, for people: `850 ms`, `12m 30s`, `2h 05m`, `3d 4h`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1_000;
    let (d, h, m) = (s / 86_400, s / 3_600 % 24, s / 60 % 60);
    match () {
        _ if ms < 1_000 => format!("{ms} ms"),
        _ if s < 60 => format!("{s}s"),
        _ if s < 3_600 => format!("{m}m {:02}s", s % 60),
        _ if s < 86_400 => format!("{h}h {m:02}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn ms(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn percent(v: &Value) -> String {
    format!("{:.1} %", v.as_f64().unwrap_or(0.0) * 100.0)
}

/// The figures' rows: every request together, then each group.
fn rows(figures: &Value) -> Vec<(String, &Value)> {
    let mut rows = vec![("all".to_owned(), &figures["overall"])];
    for group in figures["groups"].as_array().into_iter().flatten() {
        rows.push((group["key"].as_str().unwrap_or("").to_owned(), group));
    }
    rows
}

const PARTS: [&str; 6] = [
    "queued",
    "approval",
    "scheduled",
    "person",
    "automated",
    "paused",
];

pub fn markdown(figures: &Value, group_by: &str) -> String {
    let mut out = String::new();
    let day = |v: &Value| v.as_str().unwrap_or("").get(..10).unwrap_or("").to_owned();
    let overall = &figures["overall"];
    let _ = writeln!(
        out,
        "# Lead time, requests submitted {} to {}\n",
        day(&figures["from"]),
        day(&figures["to"])
    );
    let _ = writeln!(
        out,
        "{} ended (completed {}, failed {}, rejected {}, cancelled {}); {} still open.{}\n",
        overall["ended"],
        overall["completed"],
        overall["failed"],
        overall["rejected"],
        overall["cancelled"],
        figures["open"],
        if figures["truncated"] == true {
            " **Truncated**: more requests matched than one report reads; narrow the period."
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "| {group_by} | ended | success | failure | p50 | p90 | p99 | queued (p50) | approval (p50) | window (p50) | person (p50) | automated (p50) |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (key, row) in rows(figures) {
        let lead = &row["leadTime"];
        let part = |name: &str| duration(ms(&row["parts"][name]["p50Ms"]));
        let _ = writeln!(
            out,
            "| {key} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row["ended"],
            percent(&row["successRate"]),
            percent(&row["failureRate"]),
            duration(ms(&lead["p50Ms"])),
            duration(ms(&lead["p90Ms"])),
            duration(ms(&lead["p99Ms"])),
            part("queued"),
            part("approval"),
            part("scheduled"),
            part("person"),
            part("automated"),
        );
    }
    let switches = figures["switches"].as_array().cloned().unwrap_or_default();
    if !switches.is_empty() {
        let _ = writeln!(out, "\n## From manual to automated\n");
        let _ = writeln!(
            out,
            "| item | automated since | manual p50 | automated p50 | median reduction | manual p90 | automated p90 | p90 reduction |"
        );
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|");
        for s in &switches {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} % | {} | {} | {} % |",
                s["target"].as_str().unwrap_or(""),
                day(&s["switchedAt"]),
                duration(ms(&s["before"]["leadTime"]["p50Ms"])),
                duration(ms(&s["after"]["leadTime"]["p50Ms"])),
                s["medianReductionPercent"],
                duration(ms(&s["before"]["leadTime"]["p90Ms"])),
                duration(ms(&s["after"]["leadTime"]["p90Ms"])),
                s["p90ReductionPercent"],
            );
        }
    }
    out
}

/// One line per row, durations in milliseconds.
pub fn csv(figures: &Value) -> String {
    let mut out = String::from(
        "group,ended,completed,failed,rejected,cancelled,success_rate,failure_rate,p50_ms,p90_ms,p99_ms,mean_ms",
    );
    for part in PARTS {
        let _ = write!(out, ",{part}_p50_ms,{part}_p90_ms");
    }
    out.push('\n');
    for (key, row) in rows(figures) {
        // A key with a comma or a quote is quoted, its quotes doubled.
        let key = if key.contains([',', '"', '\n']) {
            format!("\"{}\"", key.replace('"', "\"\""))
        } else {
            key
        };
        let lead = &row["leadTime"];
        let _ = write!(
            out,
            "{key},{},{},{},{},{},{},{},{},{},{},{}",
            row["ended"],
            row["completed"],
            row["failed"],
            row["rejected"],
            row["cancelled"],
            row["successRate"],
            row["failureRate"],
            ms(&lead["p50Ms"]),
            ms(&lead["p90Ms"]),
            ms(&lead["p99Ms"]),
            ms(&lead["meanMs"]),
        );
        for part in PARTS {
            let spread = &row["parts"][part];
            let _ = write!(out, ",{},{}", ms(&spread["p50Ms"]), ms(&spread["p90Ms"]));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_largest_units_that_matter() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(42_000), "42s");
        assert_eq!(duration(750_000), "12m 30s");
        assert_eq!(duration(7_500_000), "2h 05m");
        assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
    }
}
