//! A validated catalog ready to serve: the documents, every form compiled once, and a
//! version derived from the files' content (so the same files give the same version).

use std::collections::HashMap;
use std::path::Path;

use jsonschema::Validator;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::document::{Metadata, Presentation};
use super::schema::{Violation, violations};
use super::{Finding, Report, SourceFile, load};

/// What can be requested: an item or a bundle, by name.
#[derive(Debug, Clone, Copy)]
pub enum TargetRef<'c> {
    Item(&'c super::Located<super::CatalogItem>),
    Bundle(&'c super::Located<super::CatalogBundle>),
}

impl<'c> TargetRef<'c> {
    pub fn metadata(&self) -> &'c Metadata {
        match self {
            TargetRef::Item(i) => &i.doc.metadata,
            TargetRef::Bundle(b) => &b.doc.metadata,
        }
    }

    pub fn presentation(&self) -> &'c Presentation {
        match self {
            TargetRef::Item(i) => &i.doc.spec.presentation,
            TargetRef::Bundle(b) => &b.doc.spec.presentation,
        }
    }

    /// Its approval policies.
    pub fn approvals(&self) -> &'c [super::document::ApprovalPolicy] {
        match self {
            TargetRef::Item(i) => &i.doc.spec.approvals,
            TargetRef::Bundle(b) => &b.doc.spec.approvals,
        }
    }
}

/// Puts each `cloudformation` action's template into its configuration, so that the
/// action carries what it deploys wherever the item goes.
fn attach_templates(catalog: &mut super::Catalog) {
    use super::document::ActionConfig;
    let templates = &catalog.templates;
    for item in &mut catalog.items {
        let Some(automated) = item.doc.spec.fulfillment.automated.as_mut() else {
            continue;
        };
        let lists = [
            &mut automated.actions,
            &mut automated.rollback,
            &mut automated.deprovision,
            &mut automated.verify,
        ];
        for action in lists.into_iter().flatten() {
            if let ActionConfig::Cloudformation(stack) = &mut action.config
                && let Some(path) = &stack.template
            {
                stack.template_body = templates.get(path).cloned();
            }
        }
    }
}

pub struct CatalogSnapshot {
    pub version: String,
    pub catalog: super::Catalog,
    forms: HashMap<String, Validator>,
}

/// Why a catalog cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read the catalog: {0}")]
    Io(#[from] std::io::Error),
    #[error("the catalog has {} error(s); run `orchestrator catalog validate` for the list", .0.len())]
    Invalid(Vec<Finding>),
}

impl CatalogSnapshot {
    /// Reads and validates the catalog at `dir`; refuses a catalog with errors.
    pub fn from_dir(dir: &Path) -> Result<Self, SnapshotError> {
        let (files, mut findings) = load::read_dir(dir)?;
        let mut report = super::validate_files(&files);
        findings.append(&mut report.findings);
        report.findings = findings;
        Self::from_report(content_version(&files), report)
    }

    /// A catalog with nothing in it: what a deployment serves before its first ingestion.
    pub fn empty() -> Self {
        CatalogSnapshot {
            version: "empty".to_owned(),
            catalog: super::validate_files(&[]).catalog,
            forms: HashMap::new(),
        }
    }

    /// Builds a snapshot from a validation report, refusing one with errors.
    pub fn from_report(version: String, report: Report) -> Result<Self, SnapshotError> {
        if !report.is_valid() {
            return Err(SnapshotError::Invalid(
                report
                    .findings
                    .into_iter()
                    .filter(Finding::is_error)
                    .collect(),
            ));
        }
        let mut catalog = report.catalog;
        attach_templates(&mut catalog);
        let mut forms = HashMap::new();
        let presentations = catalog
            .items
            .iter()
            .map(|i| (&i.doc.metadata.name, &i.doc.spec.presentation))
            .chain(
                catalog
                    .bundles
                    .iter()
                    .map(|b| (&b.doc.metadata.name, &b.doc.spec.presentation)),
            );
        for (name, presentation) in presentations {
            // Validation compiled every form already; one that fails here is a bug, and the
            // target is then simply not requestable.
            if let Ok(v) = jsonschema::draft202012::new(&presentation.schema) {
                forms.insert(name.clone(), v);
            }
        }
        Ok(CatalogSnapshot {
            version,
            catalog,
            forms,
        })
    }

    pub fn target(&self, name: &str) -> Option<TargetRef<'_>> {
        self.catalog
            .item(name)
            .map(TargetRef::Item)
            .or_else(|| self.catalog.bundle(name).map(TargetRef::Bundle))
    }

    /// Checks submitted field values against a target's form, after applying the form's
    /// defaults. Returns the values to store, or every violation.
    pub fn check_fields(
        &self,
        name: &str,
        submitted: Map<String, Value>,
    ) -> Result<Map<String, Value>, Vec<Violation>> {
        let Some(target) = self.target(name) else {
            return Err(vec![]);
        };
        let schema = &target.presentation().schema;
        let mut fields = submitted;
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (key, prop) in props {
                if let (false, Some(default)) = (fields.contains_key(key), prop.get("default")) {
                    fields.insert(key.clone(), default.clone());
                }
            }
        }
        let instance = Value::Object(fields);
        let found = match self.forms.get(name) {
            Some(validator) => violations(schema, validator, &instance, "the request"),
            None => vec![],
        };
        match instance {
            Value::Object(fields) if found.is_empty() => Ok(fields),
            _ => Err(found),
        }
    }
}

/// A version for a set of files: a digest of their paths and bytes.
pub fn content_version(files: &[SourceFile]) -> String {
    let mut hash = Sha256::new();
    for f in files {
        hash.update(f.path.as_bytes());
        hash.update([0]);
        hash.update(&f.bytes);
        hash.update([0]);
    }
    let digest = hash.finalize();
    format!("local-{}", crate::signing::hex(&digest[..6]))
}
