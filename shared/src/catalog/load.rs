//! Loading a catalog: files to YAML documents to schema-checked typed documents.
//!
//! Each file is handled on its own (and in parallel): size limit, UTF-8, YAML, one
//! document per file, kind, schema, typed deserialization. Every failure becomes a finding
//! with a location; a document with schema errors is kept out of the typed catalog, so the
//! semantic checks that follow only see well-formed documents.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::document::{CatalogBundle, CatalogItem, ChangeCalendar, Kind, Teams};
use super::finding::{Finding, Severity, did_you_mean};
use super::schema;
use super::yaml::{self, Limits, LoadedDocument, Pos, SpanTree, escape_token};

/// Files larger than this are refused unread: catalog documents are a few KiB.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The name of the teams file at the catalog root.
pub const TEAMS_FILE: &str = "teams.yaml";

/// A catalog file's content before parsing: its path relative to the catalog root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// A typed document with where it came from.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub doc: T,
    /// The document as JSON, exactly as written (pointers in findings index into it).
    pub value: Value,
    pub file: String,
    /// The file's text, to find positions in when a finding needs one.
    source: Arc<str>,
    /// Node positions, computed on first use: most documents never need them.
    spans: OnceLock<SpanTree>,
}

impl<T> Located<T> {
    pub fn pos(&self, pointer: &str) -> Pos {
        let spans = self.spans.get_or_init(|| {
            yaml::load_documents(&self.source, Limits::default())
                .ok()
                .and_then(|docs| docs.into_iter().next())
                .map_or(SpanTree::Leaf(Pos::default()), |d| d.spans)
        });
        spans.locate(&self.value, pointer)
    }

    pub fn finding(
        &self,
        pointer: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Finding {
        let pointer = pointer.into();
        Finding::new(&self.file, self.pos(&pointer), pointer, severity, message)
    }

    pub fn error(&self, pointer: impl Into<String>, message: impl Into<String>) -> Finding {
        self.finding(pointer, Severity::Error, message)
    }

    pub fn warning(&self, pointer: impl Into<String>, message: impl Into<String>) -> Finding {
        self.finding(pointer, Severity::Warning, message)
    }
}

/// The well-formed documents of a catalog.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub items: Vec<Located<CatalogItem>>,
    pub bundles: Vec<Located<CatalogBundle>>,
    pub teams: Option<Located<Teams>>,
    /// Change calendars (`calendars/*.yaml`).
    pub calendars: Vec<Located<ChangeCalendar>>,
    /// CloudFormation templates (`templates/...`, YAML or JSON), by path from the
    /// catalog's root, in their JSON form (short-form intrinsics expanded).
    pub templates: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Catalog {
    pub fn item(&self, name: &str) -> Option<&Located<CatalogItem>> {
        self.items.iter().find(|i| i.doc.metadata.name == name)
    }

    pub fn bundle(&self, name: &str) -> Option<&Located<CatalogBundle>> {
        self.bundles.iter().find(|b| b.doc.metadata.name == name)
    }
}

/// What loading produced: the well-formed documents and every finding on the way.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// How many documents were read (well-formed or not).
    pub documents: usize,
    pub catalog: Catalog,
    pub findings: Vec<Finding>,
}

/// Reads every catalog file under `root`: `*.yaml` and `*.yml`, skipping hidden entries
/// (`.github`, `.git`) and not following symbolic links. Paths come back sorted.
/// Files too large to be catalog documents are returned empty-handed with a finding.
pub fn read_dir(root: &Path) -> std::io::Result<(Vec<SourceFile>, Vec<Finding>)> {
    let mut files = Vec::new();
    let mut findings = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel_dir) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&rel_dir))? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let rel = rel_dir.join(name);
            let rel_str = rel.to_string_lossy().replace('\\', "/");
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                dirs.push(rel);
            } else if file_type.is_file() && (name.ends_with(".yaml") || name.ends_with(".yml")) {
                let size = entry.metadata()?.len();
                if size > MAX_FILE_BYTES {
                    findings.push(Finding::new(
                        &rel_str,
                        Pos::default(),
                        "",
                        Severity::Error,
                        format!(
                            "file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit for a catalog document; \
                             split it or move large content out of the catalog"
                        ),
                    ));
                    continue;
                }
                let bytes = std::fs::read(root.join(&rel))?;
                files.push(SourceFile {
                    path: rel_str,
                    bytes,
                });
            } else if file_type.is_symlink() && (name.ends_with(".yaml") || name.ends_with(".yml"))
            {
                findings.push(Finding::new(
                    &rel_str,
                    Pos::default(),
                    "",
                    Severity::Warning,
                    "symbolic link skipped: catalog documents must be regular files",
                ));
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((files, findings))
}

/// One file's outcome.
#[derive(Default)]
struct FileOutcome {
    documents: usize,
    item: Option<Located<CatalogItem>>,
    bundle: Option<Located<CatalogBundle>>,
    teams: Option<Located<Teams>>,
    calendar: Option<Located<ChangeCalendar>>,
    template: Option<(String, serde_json::Value)>,
    findings: Vec<Finding>,
}

/// Where CloudFormation templates live: files under it are templates, not documents.
pub const TEMPLATES_DIR: &str = "templates/";

/// A CloudFormation template: it must parse, and have `Resources`.
fn load_template(source: &SourceFile) -> FileOutcome {
    let file = source.path.as_str();
    let mut out = FileOutcome::default();
    let problem = |pos: Pos, pointer: &str, message: String| {
        Finding::new(file, pos, pointer, Severity::Error, message)
    };
    let Ok(text) = std::str::from_utf8(&source.bytes) else {
        out.findings.push(problem(
            Pos::default(),
            "",
            "the template is not valid UTF-8".to_owned(),
        ));
        return out;
    };
    match yaml::load_cloudformation(text) {
        Ok(Some(template)) if template.get("Resources").is_some_and(|r| r.is_object()) => {
            out.template = Some((file.to_owned(), template));
        }
        Ok(_) => out.findings.push(problem(
            Pos::new(1, 1),
            "/Resources",
            "a CloudFormation template needs a `Resources` mapping".to_owned(),
        )),
        Err(e) => out.findings.push(problem(e.pos, &e.pointer, e.message)),
    }
    out
}

/// Loads files into a catalog, spreading the work over the machine's cores.
pub fn load_files(files: &[SourceFile]) -> Loaded {
    let outcomes = crate::parallel::map(files, 64, load_file);
    let mut loaded = Loaded::default();
    for outcome in outcomes {
        loaded.documents += outcome.documents;
        loaded.findings.extend(outcome.findings);
        loaded.catalog.items.extend(outcome.item);
        loaded.catalog.bundles.extend(outcome.bundle);
        loaded.catalog.calendars.extend(outcome.calendar);
        loaded.catalog.templates.extend(outcome.template);
        if let Some(teams) = outcome.teams {
            loaded.catalog.teams = Some(teams);
        }
    }
    loaded
}

fn file_error(file: &str, pos: Pos, pointer: &str, message: impl Into<String>) -> Finding {
    Finding::new(file, pos, pointer, Severity::Error, message)
}

/// Loads a file without node positions first (the common, valid case); a file with any
/// finding is loaded again with them, so every finding has its line and column.
fn load_file(source: &SourceFile) -> FileOutcome {
    if source.path.starts_with(TEMPLATES_DIR) {
        return load_template(source);
    }
    let quick = load_file_with(source, false);
    if quick.findings.is_empty() {
        quick
    } else {
        load_file_with(source, true)
    }
}

fn load_file_with(source: &SourceFile, with_spans: bool) -> FileOutcome {
    let file = source.path.as_str();
    let mut out = FileOutcome::default();
    let text = match std::str::from_utf8(&source.bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &source.bytes[..e.valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count()
                + 1;
            out.findings.push(file_error(
                file,
                Pos::new(line, column),
                "",
                format!(
                    "file is not valid UTF-8 (bad byte at offset {}); save it as UTF-8",
                    e.valid_up_to()
                ),
            ));
            return out;
        }
    };
    let loaded = if with_spans {
        yaml::load_documents(text, Limits::default())
    } else {
        yaml::load_values(text, Limits::default())
    };
    let documents = match loaded {
        Ok(documents) => documents,
        Err(e) => {
            out.documents = 1;
            out.findings
                .push(file_error(file, e.pos, &e.pointer, e.message));
            return out;
        }
    };
    let mut documents = documents.into_iter();
    let Some(first) = documents.next() else {
        out.findings.push(file_error(
            file,
            Pos::default(),
            "",
            "file holds no document: expected a CatalogItem or CatalogBundle (or delete the file)",
        ));
        return out;
    };
    out.documents = 1;
    for extra in documents {
        out.documents += 1;
        out.findings.push(file_error(
            file,
            extra.start,
            "",
            "a catalog file holds exactly one document (ownership and review are per file); \
             move this document to a file of its own",
        ));
    }
    let spans = with_spans.then(|| first.spans.clone());
    load_document(file, first, (Arc::from(text), spans), &mut out);
    out
}

/// The file's text, and the document's positions when they were computed.
type Source = (Arc<str>, Option<SpanTree>);

fn load_document(file: &str, document: LoadedDocument, source: Source, out: &mut FileOutcome) {
    let at = |pointer: &str| document.spans.locate(&document.value, pointer);
    let Value::Object(object) = &document.value else {
        let message = if document.value.is_null() {
            "document is empty: expected a CatalogItem or CatalogBundle".to_owned()
        } else {
            "document must be a mapping with apiVersion, kind, metadata and spec".to_owned()
        };
        out.findings
            .push(file_error(file, document.start, "", message));
        return;
    };
    let kinds = Kind::ALL.map(Kind::as_str);
    let kind = match object.get("kind") {
        None => {
            out.findings.push(file_error(
                file,
                document.start,
                "",
                format!(
                    "document has no `kind`; expected one of: {}",
                    kinds.join(", ")
                ),
            ));
            return;
        }
        Some(Value::String(k)) => match Kind::parse(k) {
            Some(kind) => kind,
            None => {
                out.findings.push(file_error(
                    file,
                    at("/kind"),
                    "/kind",
                    format!(
                        "unknown kind `{k}`{}; expected one of: {}",
                        did_you_mean(k, kinds),
                        kinds.join(", ")
                    ),
                ));
                return;
            }
        },
        Some(other) => {
            out.findings.push(file_error(
                file,
                at("/kind"),
                "/kind",
                format!("`kind` must be a string, not {other}"),
            ));
            return;
        }
    };
    let is_teams_file = file == TEAMS_FILE;
    if (kind == Kind::Teams) != is_teams_file {
        let message = if is_teams_file {
            format!(
                "{TEAMS_FILE} at the catalog root is reserved for the Teams document; rename this file"
            )
        } else {
            format!("a Teams document belongs in {TEAMS_FILE} at the catalog root")
        };
        out.findings
            .push(file_error(file, at("/kind"), "/kind", message));
        return;
    }

    let violations = schema::validate(kind, &document.value);
    if !violations.is_empty() {
        out.findings.extend(
            violations
                .into_iter()
                .map(|v| file_error(file, at(&v.pointer), &v.pointer, v.message)),
        );
        return;
    }
    let LoadedDocument { value, .. } = document;
    match kind {
        Kind::CatalogItem => out.item = typed(file, value, source, &mut out.findings),
        Kind::CatalogBundle => out.bundle = typed(file, value, source, &mut out.findings),
        Kind::Teams => out.teams = typed(file, value, source, &mut out.findings),
        Kind::ChangeCalendar => out.calendar = typed(file, value, source, &mut out.findings),
    }
}

/// Deserializes a schema-valid document. Failure means the Rust types and the schema
/// disagree, which tests guard against; it is still reported as a finding, not a panic.
fn typed<T: DeserializeOwned>(
    file: &str,
    value: Value,
    (source, spans): Source,
    findings: &mut Vec<Finding>,
) -> Option<Located<T>> {
    let deserialized = serde_path_to_error::deserialize::<_, T>(&value);
    let located = Located {
        doc: (),
        value,
        file: file.to_owned(),
        source,
        spans: spans.map(OnceLock::from).unwrap_or_default(),
    };
    match deserialized {
        Ok(doc) => Some(Located {
            doc,
            value: located.value,
            file: located.file,
            source: located.source,
            spans: located.spans,
        }),
        Err(e) => {
            let pointer = path_to_pointer(e.path());
            findings.push(located.error(
                pointer.clone(),
                format!("{}: {}", field_of(&pointer), e.inner()),
            ));
            None
        }
    }
}

fn field_of(pointer: &str) -> String {
    if pointer.is_empty() {
        "document".to_owned()
    } else {
        format!("`{}`", pointer.rsplit('/').next().unwrap_or_default())
    }
}

fn path_to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{}", escape_token(key))),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}
