//! Catalog as code: the documents platform teams write, and their validation.
//!
//! [`validate_dir`] is the whole pipeline a pull request goes through: read the files,
//! load and schema-check each document, then check the catalog as a whole. Every problem
//! is a [`Finding`] with a file, line, column and JSON pointer.

pub mod approvals;
pub mod calendar;
pub mod codeowners;
pub mod condition;
pub mod document;
pub mod finding;
pub mod form;
pub mod keywords;
pub mod listing;
pub mod load;
mod locator;
pub mod regions;
pub mod schema;
pub mod semantic;
pub mod sla;
pub mod snapshot;
pub mod subscription;
pub mod yaml;

use std::path::Path;

pub use document::{CatalogBundle, CatalogItem, Kind, Teams};
pub use finding::{Finding, Severity};
pub use load::{Catalog, Located, SourceFile};

/// The outcome of validating a catalog.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Documents read, well-formed or not.
    pub documents: usize,
    /// Every finding, sorted by file and position.
    pub findings: Vec<Finding>,
    /// The well-formed documents.
    pub catalog: Catalog,
    /// The forms compiled while checking, by item or bundle name.
    pub forms: std::collections::HashMap<String, jsonschema::Validator>,
}

impl Report {
    /// Valid means no finding of severity error (warnings are allowed).
    pub fn is_valid(&self) -> bool {
        !self.findings.iter().any(Finding::is_error)
    }
}

/// Validates the catalog repository at `root`.
pub fn validate_dir(root: &Path) -> std::io::Result<Report> {
    let (files, mut findings) = load::read_dir(root)?;
    let mut report = validate_files(&files);
    findings.append(&mut report.findings);
    report.findings = findings;
    finding::normalize(&mut report.findings);
    Ok(report)
}

/// Validates a catalog given as files in memory (paths relative to the catalog root).
pub fn validate_files(files: &[SourceFile]) -> Report {
    let loaded = load::load_files(files);
    let mut findings = loaded.findings;
    let (found, forms) = semantic::check_with_forms(&loaded.catalog);
    findings.extend(found);
    finding::normalize(&mut findings);
    Report {
        documents: loaded.documents,
        findings,
        catalog: loaded.catalog,
        forms,
    }
}
