//! Helpers for the black-box tests: small valid catalogs to mutate, and ways to run the
//! validator on files in memory or on disk.

use std::path::PathBuf;

pub mod app;
pub mod cloudformation_standin;
pub mod github_repo;
pub mod harness;
pub mod jira_stub;
pub mod load;
pub mod moto;
pub mod process;
pub mod things;

use shared::catalog::{self, Finding, Report, SourceFile};

/// Writes a catalog of `files` (paths relative to its root; `teams.yaml` is added) under
/// `dir/catalog`; returns its root.
pub fn write_catalog(dir: &std::path::Path, files: &[(&str, String)]) -> PathBuf {
    let catalog = dir.join("catalog");
    // A `teams.yaml` among `files` replaces the default one.
    let teams = ("teams.yaml", TEAMS.to_owned());
    for (path, text) in std::iter::once(&teams).chain(files) {
        let file = catalog.join(path);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        std::fs::write(file, text).expect("write");
    }
    catalog
}

/// A catalog of the `postgres` item and the bundle `chain` of `length` components, each
/// depending on the one before (`c0`, `c1`, ...), rolled back on failure.
pub fn chain_catalog(dir: &std::path::Path, length: usize) -> PathBuf {
    let ids: Vec<String> = (0..length).map(|i| format!("c{i}")).collect();
    let deps: Vec<Vec<&str>> = (0..length)
        .map(|i| {
            if i == 0 {
                vec![]
            } else {
                vec![ids[i - 1].as_str()]
            }
        })
        .collect();
    let components: Vec<(&str, &[&str])> = ids
        .iter()
        .zip(&deps)
        .map(|(id, d)| (id.as_str(), d.as_slice()))
        .collect();
    write_catalog(
        dir,
        &[
            ("items/postgres.yaml", ITEM.to_owned()),
            (
                "bundles/chain.yaml",
                bundle_of("chain", &components, "rollback"),
            ),
        ],
    )
}

/// A stand-in for the database API the `postgres` item calls (`environment.dbApi`):
/// `POST /databases` answers `{"endpoint": "db.acme.example"}` after `delay`, so that a
/// test stopping the process finds work under way.
pub async fn slow_database_api(delay: std::time::Duration) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    let api = wiremock::MockServer::start().await;
    wiremock::Mock::given(method("POST"))
        .and(path("/databases"))
        .respond_with(
            wiremock::ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"endpoint": "db.acme.example"}))
                .set_delay(delay),
        )
        .mount(&api)
        .await;
    api
}

/// Copies a directory tree (a catalog to modify in a test).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("readable directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::create_dir_all(to).expect("mkdir");
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The repository's example catalog.
pub fn example_catalog() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../examples/catalog")
}

/// The example catalog copied to `dir/catalog` with every retry interval and poll
/// interval at 20 ms (and every workflow polled that often), so that tests of retries and
/// asynchronous targets take milliseconds. Timeouts are left as they are.
pub fn fast_example_catalog(dir: &std::path::Path) -> PathBuf {
    let to = dir.join("catalog");
    copy_dir(&example_catalog(), &to);
    fast_intervals(&to.join("items"));
    to
}

/// Replaces the example EKS cluster item's rollback (a GitHub workflow) with one that
/// calls `teardownUrl`, so a test sees every component of the application stack undone
/// against a stand-in it controls.
pub fn with_cluster_rollback(catalog: &std::path::Path) {
    let file = catalog.join("items/compute/eks-cluster.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let start = text
        .find("      rollback:\n")
        .expect("the example has a rollback");
    let end = text
        .find("      deprovision:\n")
        .expect("and deprovisioning after it");
    let rollback = r#"      rollback:
        - id: undoCluster
          type: rest
          with:
            method: DELETE
            url: "{{environment.teardownUrl}}/clusters/{{outputs.describe.clusterName}}"
            successStatus: [204]
"#;
    let text = format!("{}{rollback}{}", &text[..start], &text[end..]);
    std::fs::write(&file, text).unwrap();
}

/// A fresh application name: the application stack's secret and role are named after
/// it, and every test has its own in the one moto.
pub fn app_name() -> String {
    format!("app{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A request for the example application stack bundle, for the application `app`.
pub fn app_stack_request(app: &str) -> serde_json::Value {
    serde_json::json!({"bundle": "app-stack", "fields": {"appName": app, "environment": "dev"}})
}

/// Makes the application stack's last component fail for good: a secret of the name its
/// `appSecret` would take exists already in Secrets Manager, made by something else.
pub async fn clash_with_app_secret(sdk: &aws::SdkConfig, app: &str) {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(format!("apps/{app}-dev/app-key"))
        .secret_string("made by hand")
        .send()
        .await
        .unwrap();
}

/// The failed application stack's reason, when `clash_with_app_secret` made its secret
/// fail: it names the component and AWS's refusal, and counts what was rolled back.
pub fn assert_clashing_secret_rolled_back(failed: &serde_json::Value) {
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("appSecret: ") && reason.contains("ResourceExistsException"),
        "the reason names the component and what went wrong: {reason}"
    );
    assert!(
        reason.ends_with("(2 completed components were rolled back; see the timeline)"),
        "{reason}"
    );
}

/// A stand-in for the cluster's teardown (`with_cluster_rollback`): it succeeds, once.
/// Verified when dropped.
pub async fn cluster_teardown() -> wiremock::MockServer {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let target = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path_regex("^/clusters/.+$"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&target)
        .await;
    target
}

fn fast_intervals(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            fast_intervals(&path);
        } else {
            fast_file(&path);
        }
    }
}

/// The polling and retry intervals of one document, made 20 ms.
fn fast_file(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).expect("readable file");
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        if body.starts_with("interval: ") || body.starts_with("pollInterval: ") {
            let key = &body[..body.find(':').expect("a key")];
            out.push_str(&format!("{indent}{key}: 20ms\n"));
        } else if body == "waitForCompletion: true" {
            out.push_str(&format!("{line}\n{indent}pollInterval: 20ms\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(path, out).expect("writable file");
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
  # `postgres` has no rollback actions: a failure stops here rather than promise one.
  onFailure: stop
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

/// A generated catalog of `items` items and `bundles` bundles (each bundle chains three
/// items, passing outputs along), shaped like the example catalog's documents: forms with
/// conditional fields, several actions per item, templates in every action.
pub fn generated_catalog(items: usize, bundles: usize) -> Vec<SourceFile> {
    let mut files = vec![file("teams.yaml", TEAMS)];
    for i in 0..items {
        let text = format!(
            "\
apiVersion: orchestrator.dev/v1
kind: CatalogItem
metadata:
  name: item-{i}
  title: Generated item {i}
  description: A generated offering for the benchmark.
  owner: database
  category: database
  tags: [generated, bench]
spec:
  presentation:
    schema:
      type: object
      required: [name, environment]
      properties:
        name:
          type: string
          pattern: \"^[a-z][a-z0-9-]{{2,30}}$\"
        environment:
          type: string
          enum: [dev, staging, prod]
          default: dev
        size:
          type: integer
          minimum: 1
          maximum: 64
          default: 2
        upstream:
          type: string
      if:
        properties:
          environment:
            const: prod
      then:
        required: [size]
    ui:
      order: [name, environment, size]
      fields:
        name:
          placeholder: my-app
  outputs:
    endpoint:
      description: Where it is.
    id:
      description: Its id.
  fulfillment:
    mode: automated
    automated:
      actions:
        - id: create
          type: rest
          with:
            method: POST
            url: \"{{{{environment.api}}}}/things\"
            headers:
              Authorization: \"Bearer {{{{secrets.apiToken}}}}\"
            body:
              name: \"{{{{fields.name}}}}-{{{{fields.environment}}}}\"
              size: \"{{{{fields.size}}}}\"
              upstream: \"{{{{default fields.upstream 'none'}}}}\"
              owner: \"{{{{request.requester}}}}\"
          outputs:
            id: \"$.id\"
            endpoint: \"$.endpoint\"
          retry:
            maxAttempts: 3
            interval: 2s
        - id: announce
          type: webhook
          with:
            url: \"{{{{environment.hooks}}}}/created\"
            signingSecret: \"{{{{secrets.hookKey}}}}\"
            body:
              id: \"{{{{outputs.create.id}}}}\"
      rollback:
        - id: undoCreate
          type: rest
          with:
            method: DELETE
            url: \"{{{{environment.api}}}}/things/{{{{outputs.create.id}}}}\"
      deprovision:
        - id: delete
          type: rest
          with:
            method: DELETE
            url: \"{{{{environment.api}}}}/things/{{{{resource.outputs.id}}}}\"
"
        );
        files.push(file(&format!("items/item-{i}.yaml"), &text));
    }
    for b in 0..bundles {
        let (x, y, z) = (
            b % items.max(1),
            (b + 1) % items.max(1),
            (b + 2) % items.max(1),
        );
        let text = format!(
            "\
apiVersion: orchestrator.dev/v1
kind: CatalogBundle
metadata:
  name: bundle-{b}
  title: Generated bundle {b}
  description: Three chained components.
  owner: database
  category: stacks
spec:
  presentation:
    schema:
      type: object
      required: [app]
      properties:
        app:
          type: string
  components:
    - id: first
      item: item-{x}
      inputs:
        name: \"{{{{fields.app}}}}-a\"
        environment: prod
        size: 4
    - id: second
      item: item-{y}
      dependsOn: [first]
      inputs:
        name: \"{{{{fields.app}}}}-b\"
        environment: dev
        upstream: \"{{{{components.first.outputs.endpoint}}}}\"
    - id: third
      item: item-{z}
      dependsOn: [first, second]
      inputs:
        name: \"{{{{fields.app}}}}-c\"
        environment: staging
        upstream: \"{{{{components.second.outputs.endpoint}}}}\"
  outputs:
    endpoint:
      value: \"{{{{components.third.outputs.endpoint}}}}\"
      description: The last component's endpoint.
"
        );
        files.push(file(&format!("bundles/bundle-{b}.yaml"), &text));
    }
    files
}

/// A bundle named `name` of `postgres` components (`ITEM`), each `(id, depends_on)`,
/// every one reading the outputs of what it depends on.
pub fn bundle_of(name: &str, components: &[(&str, &[&str])], on_failure: &str) -> String {
    let mut out = format!(
        "\
apiVersion: orchestrator.dev/v1
kind: CatalogBundle
metadata:
  name: {name}
  title: Generated bundle
  description: Components in a given shape.
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
  onFailure: {on_failure}
  components:
"
    );
    for (id, deps) in components {
        let reads: String = deps
            .iter()
            .map(|d| format!("-{{{{components.{d}.outputs.endpoint}}}}"))
            .collect();
        out.push_str(&format!(
            "    - id: {id}\n      item: postgres\n      inputs:\n        dbName: \"{{{{fields.app}}}}{reads}\"\n"
        ));
        if !deps.is_empty() {
            out.push_str(&format!("      dependsOn: [{}]\n", deps.join(", ")));
        }
    }
    out
}

/// `bundle_of` with components `c0`, `c1`, ... where `deps[i]` lists the indexes `ci`
/// depends on.
pub fn bundle_of_indexed(name: &str, deps: &[Vec<usize>], on_failure: &str) -> String {
    let ids: Vec<String> = (0..deps.len()).map(|i| format!("c{i}")).collect();
    let named: Vec<Vec<&str>> = deps
        .iter()
        .map(|d| d.iter().map(|&j| ids[j].as_str()).collect())
        .collect();
    let shape: Vec<(&str, &[&str])> = ids
        .iter()
        .zip(&named)
        .map(|(id, d)| (id.as_str(), d.as_slice()))
        .collect();
    bundle_of(name, &shape, on_failure)
}

/// `ITEM` with a rollback action.
pub fn item_with_rollback() -> String {
    replace(
        ITEM,
        "      actions:\n",
        "      rollback:\n        - id: drop\n          type: rest\n          with:\n            method: DELETE\n            url: \"{{environment.dbApi}}/databases/x\"\n      actions:\n",
    )
}

/// An item whose instances can be changed, deleted and verified: `volume` PUTs
/// `{{environment.api}}/volumes/NAME`, deletes and reads `/volumes/ID`, and its
/// verification compares the `size` the API reports with the recorded one.
pub const VOLUME: &str = "\
apiVersion: orchestrator.dev/v1
kind: CatalogItem
metadata:
  name: volume
  title: Volume
  description: A storage volume.
  owner: database
  category: database
spec:
  presentation:
    schema:
      type: object
      required: [name, size]
      properties:
        name:
          type: string
        size:
          type: integer
  outputs:
    volumeId:
      description: The volume's id.
    accessKey:
      description: The key that opens it.
      sensitive: true
  fulfillment:
    mode: automated
    automated:
      actions:
        - id: put
          type: rest
          with:
            method: PUT
            url: \"{{environment.api}}/volumes/{{fields.name}}\"
            body:
              size: \"{{fields.size}}\"
          outputs:
            volumeId: \"$.id\"
            accessKey: \"$.accessKey\"
      deprovision:
        - id: delete
          type: rest
          with:
            method: DELETE
            url: \"{{environment.api}}/volumes/{{resource.outputs.volumeId}}\"
      verify:
        - id: read
          type: rest
          with:
            method: GET
            url: \"{{environment.api}}/volumes/{{resource.outputs.volumeId}}\"
          outputs:
            size: \"$.size\"
";

/// The bundle `platform`: volumes `net`, `db` (after `net`) and `app` (after `db`).
pub const PLATFORM: &str = "\
apiVersion: orchestrator.dev/v1
kind: CatalogBundle
metadata:
  name: platform
  title: Platform
  description: Three volumes in a chain.
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
    - id: net
      item: volume
      inputs:
        name: \"{{fields.app}}-net\"
        size: 1
    - id: db
      item: volume
      dependsOn: [net]
      inputs:
        name: \"{{fields.app}}-db\"
        size: 2
    - id: app
      item: volume
      dependsOn: [db]
      inputs:
        name: \"{{fields.app}}-app\"
        size: 3
";

/// A catalog of `volume` and `platform` under `dir`.
pub fn volume_catalog(dir: &std::path::Path) -> PathBuf {
    write_catalog(
        dir,
        &[
            ("items/volume.yaml", VOLUME.to_owned()),
            ("bundles/platform.yaml", PLATFORM.to_owned()),
        ],
    )
}

/// A CloudFormation template of an S3 bucket: a required name, an optional versioning
/// status, the bucket's ARN and name as outputs (short-form intrinsics, as people write
/// them).
pub const BUCKET_TEMPLATE: &str = "\
AWSTemplateFormatVersion: \"2010-09-09\"
Description: An S3 bucket.
Parameters:
  BucketName:
    Type: String
  Versioning:
    Type: String
    Default: Suspended
    AllowedValues: [Enabled, Suspended]
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Ref BucketName
      VersioningConfiguration:
        Status: !Ref Versioning
      Tags:
        - Key: purpose
          Value: !Sub \"orchestrator-${BucketName}\"
Outputs:
  BucketArn:
    Value: !GetAtt Bucket.Arn
  BucketName:
    Value: !Ref Bucket
";

/// An item deploying [`BUCKET_TEMPLATE`] from `templates/bucket.yaml`, deleted with its
/// resource.
pub fn bucket_item(parameters: &str) -> String {
    format!(
        "\
apiVersion: orchestrator.dev/v1
kind: CatalogItem
metadata:
  name: bucket
  title: S3 bucket
  description: An S3 bucket, from the platform team's CloudFormation template.
  owner: database
  category: storage
spec:
  presentation:
    schema:
      type: object
      required: [name]
      properties:
        name:
          type: string
          pattern: \"^[a-z0-9-]{{3,40}}$\"
  outputs:
    bucketArn:
      description: The bucket's ARN.
    stackName:
      description: The stack that holds it.
  fulfillment:
    mode: automated
    automated:
      actions:
        - id: stack
          type: cloudformation
          with:
            template: templates/bucket.yaml
            parameters:
{parameters}
            tags:
              cost-center: \"42\"
          outputs:
            bucketArn: $.outputs.BucketArn
            stackName: $.stackName
          timeout: 5m
      rollback:
        - id: remove
          type: cloudformation
          with:
            operation: delete
            stackName: \"{{{{outputs.stack.stackName}}}}\"
      deprovision:
        - id: delete
          type: cloudformation
          with:
            operation: delete
            stackName: \"{{{{resource.outputs.stackName}}}}\"
"
    )
}

/// Puts the platform teams' own automation in place of the example catalog's
/// CloudFormation items in `catalog`: the messaging team's API-backed SQS queue (`rest`)
/// and SNS topic (signed `webhook`), and the DBRE team's DynamoDB table (a GitHub Actions
/// workflow, then its inventory API), from `tests/fixtures/platform-api-items/`, for the
/// tests of those action types against the sandbox's stand-ins; their polling is made
/// fast, as `fast_example_catalog`'s.
pub fn with_platform_api_items(catalog: &std::path::Path) {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/platform-api-items");
    for (name, folder) in [
        ("sqs-queue.yaml", "messaging"),
        ("sns-topic.yaml", "messaging"),
        ("dynamodb-table.yaml", "database"),
    ] {
        let to = catalog.join("items").join(folder).join(name);
        std::fs::copy(fixtures.join(name), &to).expect("the fixture is copied");
        fast_file(&to);
    }
}
