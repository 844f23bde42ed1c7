//! Helpers for the black-box tests: small valid catalogs to mutate, and ways to run the
//! validator on files in memory or on disk.

use std::path::PathBuf;

use shared::catalog::{self, Finding, Report, SourceFile};

/// The repository's example catalog.
pub fn example_catalog() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/catalog")
}

pub const TEAMS: &str = "\
apiVersion: orchestrator.dev/v1
kind: Teams
spec:
  teams:
    database:
      title: Databases
      github: \"@acme/dba\"
";

/// A valid automated item with one output; tests replace parts of it.
pub const ITEM: &str = "\
apiVersion: orchestrator.dev/v1
kind: CatalogItem
metadata:
  name: postgres
  title: PostgreSQL
  description: A database.
  owner: database
  category: database
spec:
  presentation:
    schema:
      type: object
      required: [dbName]
      properties:
        dbName:
          type: string
        size:
          type: string
          enum: [small, large]
          default: small
  outputs:
    endpoint:
      description: Host name.
  fulfillment:
    mode: automated
    automated:
      actions:
        - id: create
          type: rest
          with:
            method: POST
            url: \"{{environment.dbApi}}/databases\"
            body:
              name: \"{{fields.dbName}}\"
              size: \"{{fields.size}}\"
          outputs:
            endpoint: \"$.endpoint\"
";

/// A valid bundle of two `postgres` components, the second reading the first's output.
pub const BUNDLE: &str = "\
apiVersion: orchestrator.dev/v1
kind: CatalogBundle
metadata:
  name: pair
  title: Two databases
  description: A primary and a reporting copy.
  owner: database
  category: database
spec:
  presentation:
    schema:
      type: object
      required: [app]
      properties:
        app:
          type: string
  components:
    - id: primary
      item: postgres
      inputs:
        dbName: \"{{fields.app}}\"
    - id: reporting
      item: postgres
      dependsOn: [primary]
      inputs:
        dbName: \"{{fields.app}}-reporting-of-{{components.primary.outputs.endpoint}}\"
";

pub fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.to_owned(),
        bytes: text.as_bytes().to_vec(),
    }
}

/// Validates the given files together with the teams file.
pub fn validate(files: &[(&str, &str)]) -> Report {
    let mut all = vec![file("teams.yaml", TEAMS)];
    all.extend(files.iter().map(|(p, t)| file(p, t)));
    catalog::validate_files(&all)
}

/// `ITEM` with `from` replaced by `to`; panics if `from` is not there, so a test cannot
/// silently test the unmodified document.
pub fn item_with(from: &str, to: &str) -> String {
    replace(ITEM, from, to)
}

pub fn bundle_with(from: &str, to: &str) -> String {
    replace(BUNDLE, from, to)
}

pub fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "fixture does not contain {from:?}");
    text.replacen(from, to, 1)
}

/// The only error finding of a report; panics with all findings otherwise.
pub fn single_error(report: &Report) -> &Finding {
    let errors: Vec<&Finding> = report.findings.iter().filter(|f| f.is_error()).collect();
    assert_eq!(
        errors.len(),
        1,
        "expected exactly one error, got {:#?}",
        report.findings
    );
    errors[0]
}
