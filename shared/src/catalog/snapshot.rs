//! A validated catalog ready to serve: the documents, every form compiled once, and a
//! version derived from the files' content (so the same files give the same version).

use std::collections::HashMap;
use std::path::Path;

use jsonschema::Validator;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::document::{Metadata, Presentation};
use super::listing::{Facets, Filter, Index};
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
    items_index: Index,
    bundles_index: Index,
    facets: Facets,
    /// Each item's and bundle's digest, by name (see [`digest`](Self::digest)).
    digests: HashMap<String, String>,
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
        Self::indexed(
            "empty".to_owned(),
            super::validate_files(&[]).catalog,
            HashMap::new(),
        )
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
        // Validation compiled every valid form; one missing here is then simply not
        // requestable.
        let forms = report.forms;
        Ok(Self::indexed(version, catalog, forms))
    }

    fn indexed(
        version: String,
        catalog: super::Catalog,
        forms: HashMap<String, Validator>,
    ) -> Self {
        let items = || catalog.items.iter().map(|i| &i.doc.metadata);
        let bundles = || catalog.bundles.iter().map(|b| &b.doc.metadata);
        let digests = catalog
            .items
            .iter()
            .map(|i| (&i.doc.metadata.name, &i.value))
            .chain(
                catalog
                    .bundles
                    .iter()
                    .map(|b| (&b.doc.metadata.name, &b.value)),
            )
            .map(|(name, value)| (name.clone(), document_digest(value)))
            .collect();
        CatalogSnapshot {
            digests,
            items_index: Index::new(items()),
            bundles_index: Index::new(bundles()),
            facets: Facets::of(items().chain(bundles())),
            version,
            catalog,
            forms,
        }
    }

    /// The digest of item or bundle `name`'s document: what a resource records of the
    /// definition that made it, to tell later whether that definition changed since.
    pub fn digest(&self, name: &str) -> Option<&str> {
        self.digests.get(name).map(String::as_str)
    }

    /// A page of the items matching `filter`, in name order, after the item named
    /// `after`; and the name the next page starts after, when there is one.
    pub fn items_page(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<&super::Located<super::CatalogItem>>, Option<String>) {
        page_of(
            &self.items_index,
            &self.catalog.items,
            |i| &i.doc.metadata,
            filter,
            after,
            limit,
        )
    }

    /// As [`CatalogSnapshot::items_page`], for the bundles.
    pub fn bundles_page(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<&super::Located<super::CatalogBundle>>, Option<String>) {
        page_of(
            &self.bundles_index,
            &self.catalog.bundles,
            |b| &b.doc.metadata,
            filter,
            after,
            limit,
        )
    }

    /// The categories, owners and tags of every item and bundle: the filters' choices.
    pub fn facets(&self) -> &Facets {
        &self.facets
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

/// A page of `list` (items or bundles) through its `index`; `metadata` reads a target's.
fn page_of<'c, T>(
    index: &Index,
    list: &'c [super::Located<T>],
    metadata: impl Fn(&'c super::Located<T>) -> &'c Metadata,
    filter: &Filter,
    after: Option<&str>,
    limit: usize,
) -> (Vec<&'c super::Located<T>>, Option<String>) {
    let page = index.page(filter, after, limit, |p| metadata(&list[p]));
    (
        page.positions.iter().map(|&p| &list[p]).collect(),
        page.next,
    )
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

/// The first 16 hex digits of the SHA-256 of a document's JSON (as written, keys in the
/// order the JSON value keeps them): equal for the same document in any catalog version.
fn document_digest(value: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(value.to_string().as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
