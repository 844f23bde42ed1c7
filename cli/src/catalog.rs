//! `orchestrator catalog ...`: validation, forms and CODEOWNERS for a catalog repository.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use serde_json::json;
use shared::catalog::{self, Finding, Report, Severity, codeowners, form};

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Validate every document of a catalog: schema, references, templates, bundle graphs.
    /// Exit 0 when valid (warnings allowed), 1 on errors, 2 on usage or I/O errors.
    Validate {
        /// The catalog repository's root directory.
        dir: PathBuf,
        /// How to print findings.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Print the request form of an item or bundle as {"schema", "uiSchema"} for
    /// react-jsonschema-form.
    Form {
        dir: PathBuf,
        /// The item or bundle name.
        name: String,
    },
    /// Check or generate CODEOWNERS from the owner teams in teams.yaml.
    Codeowners {
        #[command(subcommand)]
        command: CodeownersCommand,
    },
}

#[derive(Subcommand)]
pub enum CodeownersCommand {
    /// Verify that every catalog file is owned by its metadata.owner team's GitHub team.
    Check {
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Write a CODEOWNERS (to .github/CODEOWNERS, or where one already is) that passes `check`.
    Generate {
        dir: PathBuf,
        /// Print to standard output instead of writing the file.
        #[arg(long)]
        stdout: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// file:line:column: severity: message
    Human,
    /// {"valid", "documents", "findings": [...]}
    Json,
    /// GitHub Actions workflow commands (::error file=...), shown inline on pull requests.
    Github,
}

pub fn run(command: CatalogCommand) -> ExitCode {
    match command {
        CatalogCommand::Validate { dir, format } => with_report(&dir, |report| {
            print_findings(&dir, report.documents, &report.findings, format);
            verdict(&report.findings)
        }),
        CatalogCommand::Form { dir, name } => with_report(&dir, |report| form_of(report, &name)),
        CatalogCommand::Codeowners { command } => match command {
            CodeownersCommand::Check { dir, format } => with_report(&dir, |report| {
                let mut findings = report.findings.clone();
                findings.extend(codeowners_findings(&dir, report));
                catalog::finding::normalize(&mut findings);
                print_findings(&dir, report.documents, &findings, format);
                verdict(&findings)
            }),
            CodeownersCommand::Generate { dir, stdout } => {
                with_report(&dir, |report| generate(&dir, report, stdout))
            }
        },
    }
}

fn with_report(dir: &Path, f: impl FnOnce(&Report) -> ExitCode) -> ExitCode {
    if !dir.is_dir() {
        eprintln!("error: {} is not a directory", dir.display());
        return ExitCode::from(2);
    }
    match catalog::validate_dir(dir) {
        Ok(report) => {
            let code = f(&report);
            // The process ends here: freeing a large catalog piece by piece only costs time.
            std::mem::forget(report);
            code
        }
        Err(e) => {
            eprintln!("error: cannot read the catalog at {}: {e}", dir.display());
            ExitCode::from(2)
        }
    }
}

fn verdict(findings: &[Finding]) -> ExitCode {
    if findings.iter().any(Finding::is_error) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_findings(dir: &Path, documents: usize, findings: &[Finding], format: Format) {
    let mut out = std::io::stdout().lock();
    let errors = findings.iter().filter(|f| f.is_error()).count();
    let warnings = findings.len() - errors;
    // A closed pipe (| head) is not worth a panic.
    let _ = match format {
        Format::Json => writeln!(
            out,
            "{}",
            json!({"valid": errors == 0, "documents": documents, "findings": findings})
        ),
        Format::Human => {
            for f in findings {
                let severity = match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                let at = if f.pointer.is_empty() {
                    String::new()
                } else {
                    format!(" (at {})", f.pointer)
                };
                let _ = writeln!(
                    out,
                    "{}:{}:{}: {severity}: {}{at}",
                    display_path(dir, &f.file),
                    f.line,
                    f.column,
                    f.message
                );
            }
            writeln!(
                out,
                "{}: {documents} documents, {errors} errors, {warnings} warnings",
                if errors == 0 { "valid" } else { "invalid" }
            )
        }
        Format::Github => {
            for f in findings {
                let level = match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                let _ = writeln!(
                    out,
                    "::{level} file={},line={},col={},title={}::{}",
                    escape_property(&display_path(dir, &f.file)),
                    f.line,
                    f.column,
                    escape_property(&format!("catalog {level}")),
                    escape_data(&f.message)
                );
            }
            writeln!(
                out,
                "{documents} documents, {errors} errors, {warnings} warnings"
            )
        }
    };
}

/// The path of a finding's file as the user named the catalog (so editors can open it).
fn display_path(dir: &Path, file: &str) -> String {
    dir.join(file)
        .to_string_lossy()
        .replace('\\', "/")
        .trim_start_matches("./")
        .to_owned()
}

/// Workflow command data escaping, as GitHub's toolkit does it.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn form_of(report: &Report, name: &str) -> ExitCode {
    let catalog = &report.catalog;
    let form = if let Some(item) = catalog.item(name) {
        let m = &item.doc.metadata;
        form::render(&m.title, &m.description, &item.doc.spec.presentation)
    } else if let Some(bundle) = catalog.bundle(name) {
        let m = &bundle.doc.metadata;
        form::render(&m.title, &m.description, &bundle.doc.spec.presentation)
    } else {
        let broken = report.findings.iter().any(Finding::is_error);
        eprintln!(
            "error: no valid item or bundle named `{name}` in the catalog{}",
            if broken {
                " (the catalog has errors: run `orchestrator catalog validate`)"
            } else {
                ""
            }
        );
        return ExitCode::from(1);
    };
    match serde_json::to_string_pretty(&form) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn codeowners_findings(dir: &Path, report: &Report) -> Vec<Finding> {
    let Some(path) = codeowners::locate(dir) else {
        return vec![Finding::new(
            codeowners::LOCATIONS[0],
            Default::default(),
            "",
            Severity::Error,
            "no CODEOWNERS file (looked in .github/, the root and docs/); run `orchestrator catalog codeowners generate`",
        )];
    };
    let rel = path
        .strip_prefix(dir)
        .unwrap_or(&path)
        .to_string_lossy()
        .replace('\\', "/");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            return vec![Finding::new(
                &rel,
                Default::default(),
                "",
                Severity::Error,
                format!("cannot read: {e}"),
            )];
        }
    };
    let (owners, mut findings) = codeowners::CodeOwners::parse(&rel, &text);
    findings.extend(codeowners::check(&report.catalog, &owners));
    findings
}

fn generate(dir: &Path, report: &Report, stdout: bool) -> ExitCode {
    if report.catalog.teams.is_none() {
        eprintln!(
            "error: {}/teams.yaml is missing or invalid: it maps owner teams to GitHub teams",
            dir.display()
        );
        return ExitCode::from(1);
    }
    let text = codeowners::generate(&report.catalog, "");
    if stdout {
        print!("{text}");
        return ExitCode::SUCCESS;
    }
    let path = codeowners::locate(dir).unwrap_or_else(|| dir.join(codeowners::LOCATIONS[0]));
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, text));
    match written {
        Ok(()) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_data_and_properties_are_escaped() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }
}
