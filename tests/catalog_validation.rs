//! Catalog validation through the library's public interface: the example catalog, every
//! class of bad input, and each semantic rule, with the locations the findings name.

use std::collections::BTreeSet;

use orchestrator_tests::*;
use shared::catalog::document::{ActionType, Mode};
use shared::catalog::{self, Kind, Severity, schema};

#[test]
fn the_example_catalog_validates_without_findings() {
    let report = catalog::validate_dir(&example_catalog()).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert!(report.is_valid());
    assert!(report.catalog.items.len() >= 8);
    assert!(report.catalog.bundles.len() >= 2);
    assert_eq!(report.catalog.calendars.len(), 1, "the year-end freeze");
    assert_eq!(
        report.documents,
        report.catalog.items.len()
            + report.catalog.bundles.len()
            + report.catalog.calendars.len()
            + 1
    );
}

#[test]
fn the_example_catalog_mixes_modes_and_uses_every_action_type() {
    let report = catalog::validate_dir(&example_catalog()).unwrap();
    let modes: BTreeSet<String> = report
        .catalog
        .items
        .iter()
        .map(|i| format!("{:?}", i.doc.spec.fulfillment.mode))
        .collect();
    assert_eq!(
        modes,
        [
            format!("{:?}", Mode::Automated),
            format!("{:?}", Mode::Manual)
        ]
        .into()
    );
    let used: BTreeSet<String> = report
        .catalog
        .items
        .iter()
        .filter_map(|i| i.doc.spec.fulfillment.automated.as_ref())
        .flat_map(|a| a.lists().into_iter().flat_map(|(_, list)| list.iter()))
        .map(|a| format!("{:?}", a.config.action_type()))
        .collect();
    let all = [
        ActionType::Jira,
        ActionType::Rest,
        ActionType::Webhook,
        ActionType::GithubWorkflow,
        ActionType::Terraform,
        ActionType::SecretsManager,
        ActionType::SsmParameter,
        ActionType::Cloudformation,
    ];
    assert_eq!(used, all.iter().map(|t| format!("{t:?}")).collect());
}

#[test]
fn typed_documents_serialize_back_to_documents_the_schema_accepts() {
    // The Rust types and the JSON Schemas describe the same format: what the types write,
    // the schema accepts, and it reads back equal.
    let report = catalog::validate_dir(&example_catalog()).unwrap();
    for item in &report.catalog.items {
        let value = serde_json::to_value(&item.doc).unwrap();
        assert_eq!(
            schema::validate(Kind::CatalogItem, &value),
            vec![],
            "{}",
            item.file
        );
        let back: catalog::CatalogItem = serde_json::from_value(value).unwrap();
        assert_eq!(back, item.doc);
    }
    for bundle in &report.catalog.bundles {
        let value = serde_json::to_value(&bundle.doc).unwrap();
        assert_eq!(
            schema::validate(Kind::CatalogBundle, &value),
            vec![],
            "{}",
            bundle.file
        );
    }
    let teams = report.catalog.teams.unwrap();
    let value = serde_json::to_value(&teams.doc).unwrap();
    assert_eq!(schema::validate(Kind::Teams, &value), vec![]);
}

#[test]
fn the_schema_and_the_types_reject_the_same_unknown_fields() {
    let typos = [
        ("  title: PostgreSQL", "  titel: PostgreSQL"),
        ("  presentation:", "  presentaton:"),
        ("          with:", "          wiht:"),
        ("            method: POST", "            methd: POST"),
        (
            "    endpoint:\n      description",
            "    endpoint:\n      descripton",
        ),
    ];
    for (from, to) in typos {
        let text = item_with(from, to);
        let value: serde_json::Value =
            shared::catalog::yaml::load_documents(&text, Default::default())
                .unwrap()
                .remove(0)
                .value;
        assert!(
            !schema::validate(Kind::CatalogItem, &value).is_empty(),
            "schema accepted {to}"
        );
        assert!(
            serde_json::from_value::<catalog::CatalogItem>(value).is_err(),
            "types accepted {to}"
        );
    }
}

#[test]
fn a_valid_item_and_bundle_have_no_findings() {
    let report = validate(&[("items/pg.yaml", ITEM), ("bundles/pair.yaml", BUNDLE)]);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

// ---- Bad input: each class gets a finding with a location, never a panic. ----

#[test]
fn malformed_yaml_is_reported_where_the_parser_stopped() {
    let report = validate(&[(
        "items/pg.yaml",
        &item_with("  title: PostgreSQL", "  title: [PostgreSQL"),
    )]);
    let f = single_error(&report);
    assert_eq!((f.file.as_str(), f.line), ("items/pg.yaml", 6));
    assert!(f.message.starts_with("YAML syntax error"), "{}", f.message);
}

#[test]
fn a_wrong_type_names_the_field_and_both_types() {
    let report = validate(&[(
        "items/pg.yaml",
        &item_with("  category: database", "  category: [database]"),
    )]);
    let f = single_error(&report);
    assert_eq!(
        (f.line, f.column, f.pointer.as_str()),
        (8, 3, "/metadata/category")
    );
    assert!(
        f.message.contains("must be a string, not a list"),
        "{}",
        f.message
    );
}

#[test]
fn an_unknown_field_is_a_typo_with_a_suggestion() {
    let report = validate(&[(
        "items/pg.yaml",
        &item_with(
            "        - id: create",
            "        - id: create\n          timout: 5m",
        ),
    )]);
    let f = single_error(&report);
    assert_eq!(f.pointer, "/spec/fulfillment/automated/actions/0/timout");
    assert_eq!((f.line, f.column), (29, 11));
    assert!(
        f.message.contains("unknown field `timout`")
            && f.message.contains("did you mean `timeout`"),
        "{}",
        f.message
    );
}

#[test]
fn a_duplicate_key_names_both_lines() {
    let report = validate(&[(
        "items/pg.yaml",
        &item_with(
            "  category: database",
            "  category: database\n  owner: database",
        ),
    )]);
    let f = single_error(&report);
    assert_eq!((f.line, f.column), (9, 3));
    assert!(
        f.message
            .contains("duplicate key `owner` (first defined at line 7)"),
        "{}",
        f.message
    );
}

#[test]
fn several_documents_in_one_file_are_refused_but_the_first_is_still_checked() {
    let text = format!(
        "{}---\n{}",
        item_with("  title: PostgreSQL", "  title: 5"),
        ITEM
    );
    let report = validate(&[("items/pg.yaml", &text)]);
    let messages: Vec<(usize, &str)> = report
        .findings
        .iter()
        .map(|f| (f.line, f.message.as_str()))
        .collect();
    assert_eq!(report.findings.len(), 2, "{messages:#?}");
    assert!(messages[0].1.contains("`title` must be a string"));
    assert_eq!(messages[1].0, 38);
    assert!(messages[1].1.contains("exactly one document"));
}

#[test]
fn an_empty_file_and_a_comment_only_file_hold_no_document() {
    for text in ["", "# nothing here\n", "---\n"] {
        let report = validate(&[("items/empty.yaml", text)]);
        let f = single_error(&report);
        assert_eq!(f.file, "items/empty.yaml");
        assert!(
            f.message.contains("no document") || f.message.contains("empty"),
            "{}",
            f.message
        );
    }
}

#[test]
fn non_utf8_bytes_are_located_by_line_and_column() {
    let mut bytes = ITEM.as_bytes().to_vec();
    let at = ITEM.find("PostgreSQL").unwrap();
    bytes[at] = 0xff;
    let report = catalog::validate_files(&[shared::catalog::SourceFile {
        path: "items/pg.yaml".into(),
        bytes,
    }]);
    let f = single_error(&report);
    assert_eq!((f.line, f.column), (5, 10));
    assert!(f.message.contains("not valid UTF-8"), "{}", f.message);
}

#[test]
fn a_file_over_one_mebibyte_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("teams.yaml"), TEAMS).unwrap();
    std::fs::write(
        dir.path().join("big.yaml"),
        format!("{ITEM}{}", "# padding\n".repeat(110_000)),
    )
    .unwrap();
    let report = catalog::validate_dir(dir.path()).unwrap();
    let f = single_error(&report);
    assert_eq!((f.file.as_str(), f.line), ("big.yaml", 1));
    assert!(
        f.message.contains("over the 1048576-byte limit"),
        "{}",
        f.message
    );
}

#[test]
fn deeply_nested_documents_stop_at_the_depth_limit() {
    let deep = format!("{}x{}", "[".repeat(5_000), "]".repeat(5_000));
    let text = item_with(
        "        size:\n",
        &format!("        nested:\n          default: {deep}\n        size:\n"),
    );
    let report = validate(&[("items/pg.yaml", &text)]);
    let f = single_error(&report);
    assert!(
        f.message.contains("nests deeper than 64 levels"),
        "{}",
        f.message
    );
    assert_eq!(f.line, 18);
}

#[test]
fn an_alias_bomb_stops_at_the_node_budget() {
    let mut bomb = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let report = validate(&[("items/bomb.yaml", &bomb)]);
    let f = single_error(&report);
    assert!(
        f.message.contains("more than 100000 nodes"),
        "{}",
        f.message
    );
    // Not a speed assertion: a generous bound that only an expanded bomb would exceed.
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn a_document_that_is_not_a_mapping_or_has_no_known_kind_is_reported() {
    let report = validate(&[
        ("a.yaml", "- just\n- a list\n"),
        ("b.yaml", "apiVersion: orchestrator.dev/v1\nmetadata: {}\n"),
        ("c.yaml", "kind: CatalogItme\n"),
    ]);
    let messages: Vec<&str> = report.findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert!(messages[0].contains("must be a mapping"));
    assert!(messages[1].contains("no `kind`"));
    assert!(messages[2].contains("did you mean `CatalogItem`"));
}

// ---- Semantic rules ----

#[test]
fn names_are_unique_across_items_and_bundles() {
    let bundle = bundle_with("  name: pair", "  name: postgres");
    let report = validate(&[("items/pg.yaml", ITEM), ("bundles/pair.yaml", &bundle)]);
    let f = single_error(&report);
    assert_eq!(
        (f.file.as_str(), f.pointer.as_str()),
        ("bundles/pair.yaml", "/metadata/name")
    );
    assert!(
        f.message.contains("already used by items/pg.yaml (line 4)"),
        "{}",
        f.message
    );
}

#[test]
fn the_owner_must_be_a_known_team() {
    let report = validate(&[(
        "items/pg.yaml",
        &item_with("  owner: database", "  owner: databse"),
    )]);
    let f = single_error(&report);
    assert_eq!((f.line, f.pointer.as_str()), (7, "/metadata/owner"));
    assert!(
        f.message.contains("did you mean `database`"),
        "{}",
        f.message
    );
}

#[test]
fn action_ids_are_unique_within_an_item() {
    let text = item_with(
        "          outputs:\n            endpoint: \"$.endpoint\"\n",
        "          outputs:\n            endpoint: \"$.endpoint\"\n      rollback:\n        - id: create\n          type: rest\n          with: {method: DELETE, url: \"https://x\"}\n",
    );
    let report = validate(&[("items/pg.yaml", &text)]);
    let f = single_error(&report);
    assert_eq!(f.pointer, "/spec/fulfillment/automated/rollback/0/id");
    assert!(
        f.message.contains("already used at actions[0]"),
        "{}",
        f.message
    );
}

#[test]
fn a_template_naming_a_missing_field_is_reported_at_the_string() {
    let report = validate(&[(
        "items/pg.yaml",
        &item_with("{{fields.dbName}}", "{{fields.dbNme}}"),
    )]);
    let f = single_error(&report);
    assert_eq!((f.line, f.column), (34, 15));
    assert_eq!(
        f.pointer,
        "/spec/fulfillment/automated/actions/0/with/body/name"
    );
    assert!(
        f.message
            .contains("no field `dbNme` (did you mean `dbName`?)"),
        "{}",
        f.message
    );
}

#[test]
fn templates_must_parse_and_read_only_known_scopes() {
    for (bad, expected) in [
        ("{{fields.dbName", "does not parse"),
        (
            "{{field.dbName}}",
            "no scope `field` (did you mean `fields`?)",
        ),
        (
            "{{components.x.outputs.y}}",
            "only available in a bundle's component inputs",
        ),
        ("{{request.requestor}}", "`request` has no `requestor`"),
        (
            "{{outputs.later.endpoint}}",
            "no action `later` runs before",
        ),
        ("{{> header}}", "partials"),
        (
            "{{#each fields.dbName}}{{fields.size}}{{/each}}",
            "@root.fields.size",
        ),
    ] {
        let report = validate(&[("items/pg.yaml", &item_with("{{fields.dbName}}", bad))]);
        let f = single_error(&report);
        assert!(f.message.contains(expected), "{bad}: {}", f.message);
    }
}

#[test]
fn a_mode_needs_its_section() {
    let report = validate(&[(
        "items/pg.yaml",
        &item_with("mode: automated", "mode: manual"),
    )]);
    let f = single_error(&report);
    assert_eq!(f.pointer, "/spec/fulfillment/mode");
    assert!(f.message.contains("no `manual` section"), "{}", f.message);
}

#[test]
fn a_declared_output_must_be_produced_by_the_active_mode() {
    let report = validate(&[(
        "items/pg.yaml",
        &item_with(
            "            endpoint: \"$.endpoint\"",
            "            host: \"$.endpoint\"",
        ),
    )]);
    let f = single_error(&report);
    assert_eq!(f.pointer, "/spec/outputs/endpoint");
    assert!(
        f.message.contains("no automated action produces it"),
        "{}",
        f.message
    );
}

#[test]
fn the_presentation_must_be_a_valid_json_schema_with_valid_defaults() {
    let report = validate(&[(
        "items/pg.yaml",
        &item_with(
            "          type: string\n        size",
            "          type: strng\n        size",
        ),
    )]);
    let f = single_error(&report);
    assert!(
        f.pointer
            .starts_with("/spec/presentation/schema/properties/dbName"),
        "{}",
        f.pointer
    );
    assert!(
        f.message.contains("not a valid JSON Schema"),
        "{}",
        f.message
    );

    let report = validate(&[(
        "items/pg.yaml",
        &item_with("default: small", "default: medium"),
    )]);
    let f = single_error(&report);
    assert_eq!(
        f.pointer,
        "/spec/presentation/schema/properties/size/default"
    );
}

#[test]
fn credentials_must_come_from_the_secrets_scope() {
    let text = item_with(
        "            body:\n",
        "            headers:\n              Authorization: Bearer abc123\n            body:\n",
    );
    let report = validate(&[("items/pg.yaml", &text)]);
    let f = single_error(&report);
    assert_eq!(
        f.pointer,
        "/spec/fulfillment/automated/actions/0/with/headers/Authorization"
    );
    assert!(
        !f.message.contains("abc123"),
        "a finding must not echo the credential"
    );
}

#[test]
fn a_component_must_name_an_existing_item() {
    let report = validate(&[
        ("items/pg.yaml", ITEM),
        (
            "bundles/pair.yaml",
            &bundle_with("item: postgres", "item: postgress"),
        ),
    ]);
    let f = single_error(&report);
    assert_eq!(
        (f.pointer.as_str(), f.line),
        ("/spec/components/0/item", 19)
    );
    assert!(
        f.message.contains("did you mean `postgres`"),
        "{}",
        f.message
    );
}

#[test]
fn a_component_must_set_the_required_fields_of_its_item() {
    let bundle = bundle_with(
        "      inputs:\n        dbName: \"{{fields.app}}\"\n",
        "      inputs:\n        size: small\n",
    );
    let report = validate(&[("items/pg.yaml", ITEM), ("bundles/pair.yaml", &bundle)]);
    let f = single_error(&report);
    assert_eq!(f.pointer, "/spec/components/0/inputs");
    assert!(
        f.message
            .contains("does not set `dbName`, which item `postgres` requires"),
        "{}",
        f.message
    );
}

#[test]
fn literal_inputs_are_checked_against_the_items_form() {
    let bundle = bundle_with(
        "        dbName: \"{{fields.app}}\"\n",
        "        dbName: \"{{fields.app}}\"\n        size: huge\n",
    );
    let report = validate(&[("items/pg.yaml", ITEM), ("bundles/pair.yaml", &bundle)]);
    let f = single_error(&report);
    assert_eq!(f.pointer, "/spec/components/0/inputs/size");
}

#[test]
fn a_dependency_cycle_is_named() {
    let bundle = bundle_with(
        "      item: postgres\n      inputs:",
        "      item: postgres\n      dependsOn: [reporting]\n      inputs:",
    );
    let report = validate(&[("items/pg.yaml", ITEM), ("bundles/pair.yaml", &bundle)]);
    let f = single_error(&report);
    assert!(
        f.message
            .contains("dependency cycle: primary → reporting → primary"),
        "{}",
        f.message
    );
}

#[test]
fn component_outputs_are_readable_only_from_dependencies_that_declare_them() {
    let undeclared = bundle_with("outputs.endpoint", "outputs.port");
    let report = validate(&[("items/pg.yaml", ITEM), ("bundles/pair.yaml", &undeclared)]);
    assert!(
        single_error(&report)
            .message
            .contains("declares no output `port`")
    );

    let not_ancestor = bundle_with("      dependsOn: [primary]\n", "");
    let report = validate(&[
        ("items/pg.yaml", ITEM),
        ("bundles/pair.yaml", &not_ancestor),
    ]);
    assert!(
        single_error(&report)
            .message
            .contains("add `primary` to dependsOn")
    );
}

#[test]
fn secrets_cannot_be_passed_between_components() {
    let bundle = bundle_with("\"{{fields.app}}\"", "\"{{secrets.dbPassword}}\"");
    let report = validate(&[("items/pg.yaml", ITEM), ("bundles/pair.yaml", &bundle)]);
    let f = single_error(&report);
    assert!(f.message.contains("execution history"), "{}", f.message);
}

#[test]
fn all_findings_are_reported_at_once_sorted_by_place() {
    let a = item_with("  owner: database", "  owner: nobody");
    let b = replace(
        &item_with("  name: postgres", "  name: other"),
        "{{fields.dbName}}",
        "{{fields.nope}}",
    );
    let report = validate(&[
        ("items/a.yaml", &a),
        ("items/b.yaml", &b),
        ("items/c.yaml", "kind: ["),
    ]);
    let places: Vec<(&str, usize)> = report
        .findings
        .iter()
        .map(|f| (f.file.as_str(), f.line))
        .collect();
    assert_eq!(
        places,
        [
            ("items/a.yaml", 7),
            ("items/b.yaml", 34),
            ("items/c.yaml", 2)
        ]
    );
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.severity == Severity::Error)
    );
}

#[test]
fn the_benchmarks_generated_catalog_is_valid() {
    // The benchmark measures the full pipeline only if nothing short-circuits on errors.
    let report = catalog::validate_files(&generated_catalog(30, 10));
    assert!(
        report.findings.is_empty(),
        "{:#?}",
        &report.findings[..report.findings.len().min(5)]
    );
    assert_eq!(report.catalog.items.len(), 30);
    assert_eq!(report.catalog.bundles.len(), 10);
}

#[test]
fn a_typo_in_the_forms_json_schema_is_not_silently_ignored() {
    let report = validate(&[(
        "items/pg.yaml",
        &item_with(
            "          enum: [small, large]",
            "          enum: [small, large]\n          minLenght: 2",
        ),
    )]);
    let f = single_error(&report);
    assert_eq!(
        (f.line, f.pointer.as_str()),
        (20, "/spec/presentation/schema/properties/size/minLenght")
    );
    assert!(
        f.message.contains("did you mean `minLength`"),
        "{}",
        f.message
    );
}

#[test]
fn an_optional_field_read_without_a_guard_is_warned_about() {
    // `size` has a default and `dbName` is required: both always have a value.
    let text = item_with(
        "        size:\n",
        "        note:\n          type: string\n        size:\n",
    );
    let unguarded = replace(
        &text,
        "size: \"{{fields.size}}\"",
        "size: \"{{fields.size}}\"\n              note: \"{{fields.note}}\"",
    );
    let report = validate(&[("items/pg.yaml", &unguarded)]);
    assert!(report.is_valid(), "a warning, not an error");
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].severity, Severity::Warning);
    assert!(
        report.findings[0].message.contains("optional field `note`"),
        "{}",
        report.findings[0].message
    );
    for guarded in [
        "{{#if fields.note}}{{fields.note}}{{/if}}",
        "{{default fields.note 'none'}}",
    ] {
        let text = replace(
            &text,
            "size: \"{{fields.size}}\"",
            &format!("size: \"{{{{fields.size}}}}\"\n              note: \"{guarded}\""),
        );
        let report = validate(&[("items/pg.yaml", &text)]);
        assert!(
            report.findings.is_empty(),
            "{guarded}: {:#?}",
            report.findings
        );
    }
}

#[test]
fn an_output_path_that_is_not_jsonpath_is_an_error_at_its_line() {
    let report = validate(&[(
        "items/pg.yaml",
        &item_with("endpoint: \"$.endpoint\"", "endpoint: \"$.endpoint[\""),
    )]);
    let f = single_error(&report);
    assert_eq!(
        f.pointer,
        "/spec/fulfillment/automated/actions/0/outputs/endpoint"
    );
    assert!(f.message.contains("not a valid JSONPath"), "{}", f.message);
}

#[test]
fn fallback_manual_needs_the_manual_section() {
    let report = validate(&[(
        "items/pg.yaml",
        &item_with(
            "    mode: automated",
            "    mode: automated\n    fallback: manual",
        ),
    )]);
    let f = single_error(&report);
    assert_eq!(f.pointer, "/spec/fulfillment/fallback");
    assert!(
        f.message.contains("needs a `manual` section"),
        "{}",
        f.message
    );
}

#[test]
fn the_bundle_scope_is_checked_where_it_is_read() {
    // Component inputs may read every key of `bundle`, the component included.
    let inputs = BUNDLE.replace(
        "dbName: \"{{fields.app}}\"\n",
        "dbName: \"{{bundle.name}}-{{bundle.component}}-{{bundle.fields.app}}\"\n",
    );
    assert!(validate(&[("items/pg.yaml", ITEM), ("bundles/pair.yaml", &inputs)]).is_valid());
    // The bundle's outputs have no component; an unknown key or field is named.
    for (template, says) in [
        ("{{bundle.component}}", "the bundle's outputs have none"),
        ("{{bundle.nme}}", "did you mean `name`"),
        ("{{bundle.fields.ap}}", "`ap`"),
    ] {
        let outputs = format!(
            "{BUNDLE}  outputs:\n    which:\n      value: \"{template}\"\n      description: x\n"
        );
        let report = validate(&[("items/pg.yaml", ITEM), ("bundles/pair.yaml", &outputs)]);
        let f = single_error(&report);
        assert_eq!(f.pointer, "/spec/outputs/which/value", "{template}");
        assert!(f.message.contains(says), "{template}: {}", f.message);
    }
}

#[test]
fn a_bundle_rolled_back_on_failure_warns_of_an_item_that_cannot_roll_back() {
    // `postgres` has no rollback actions; `primary` may be followed by a failure of
    // `reporting`, which waits for it; `reporting` is waited for by nothing.
    let rolled_back = BUNDLE.replace("onFailure: stop", "onFailure: rollback");
    let report = validate(&[("items/pg.yaml", ITEM), ("bundles/pair.yaml", &rolled_back)]);
    let warnings: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", report.findings);
    let w = warnings[0];
    assert_eq!(
        (w.file.as_str(), w.pointer.as_str()),
        ("bundles/pair.yaml", "/spec/components/0/item")
    );
    assert!(
        w.message.contains(
            "`primary` uses item `postgres` (items/pg.yaml), which has no rollback actions"
        ),
        "{}",
        w.message
    );
    assert!(report.is_valid(), "a warning, not an error");
    // With a rollback action, the item keeps the bundle's promise.
    let report = validate(&[
        ("items/pg.yaml", &item_with_rollback()),
        ("bundles/pair.yaml", &rolled_back),
    ]);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

/// Approval policies that cannot work are refused with the file, line and pointer: a
/// condition on a field the form does not have, a team teams.yaml does not know, a stage
/// nobody can approve, and `require: all` over a group.
#[test]
fn approval_policies_that_cannot_work_are_refused_where_they_are_wrong() {
    let with = |policy: &str| {
        orchestrator_tests::item_with(
            "  fulfillment:\n",
            &format!("  approvals:\n{policy}  fulfillment:\n"),
        )
    };
    let cases = [
        (
            "    - name: prod\n      when:\n        - path: $.fields.enviroment\n          equals: prod\n      stages:\n        - name: dba\n          approvers:\n            owner: true\n",
            "/spec/approvals/0/when/0/path",
            "`enviroment` is not a field of the form",
        ),
        (
            "    - name: prod\n      stages:\n        - name: dba\n          approvers:\n            teams: [databse]\n",
            "/spec/approvals/0/stages/0/approvers/teams/0",
            "`databse` is not a team in teams.yaml (did you mean `database`?)",
        ),
        (
            "    - name: prod\n      stages:\n        - name: dba\n          approvers: {}\n",
            "/spec/approvals/0/stages/0/approvers",
            "nobody can satisfy this stage",
        ),
        (
            "    - name: prod\n      stages:\n        - name: dba\n          approvers:\n            users: [ann, bo]\n          require: 3\n",
            "/spec/approvals/0/stages/0/approvers",
            "it requires 3 approvals from 2 named users",
        ),
        (
            "    - name: prod\n      stages:\n        - name: dba\n          approvers:\n            groups: [dba]\n          require: all\n",
            "/spec/approvals/0/stages/0/approvers",
            "`require: all` means every named user",
        ),
    ];
    for (policy, pointer, message) in cases {
        let report = orchestrator_tests::validate(&[("items/postgres.yaml", &with(policy))]);
        let finding = orchestrator_tests::single_error(&report);
        assert_eq!(finding.pointer, pointer, "{finding:?}");
        assert!(finding.message.contains(message), "{finding:?}");
        assert_eq!(finding.file, "items/postgres.yaml");
        assert!(finding.line > 20, "a line in the policy: {finding:?}");
    }
}

/// A change calendar that cannot work is refused where it is wrong: a time zone that
/// does not exist, a freeze that ends before it starts, an item that is not there.
#[test]
fn a_change_calendar_that_cannot_work_is_refused_where_it_is_wrong() {
    let calendar = |spec: &str| {
        format!(
            "apiVersion: orchestrator.dev/v1\nkind: ChangeCalendar\nmetadata:\n  name: c\n  title: C\n  owner: database\nspec:\n{spec}"
        )
    };
    let cases = [
        (
            "  timeZone: Mars/Olympus\n",
            "/spec/timeZone",
            "`Mars/Olympus` is not an IANA time zone",
        ),
        (
            "  timeZone: UTC\n  freezes:\n    - name: Backwards\n      from: \"2027-01-02T00:00\"\n      to: \"2027-01-01T00:00\"\n",
            "/spec/freezes/0/to",
            "ends (2027-01-01T00:00) before it starts",
        ),
        (
            "  timeZone: UTC\n  scope:\n    items: [postgress]\n",
            "/spec/scope/items/0",
            "there is no item `postgress`",
        ),
    ];
    for (spec, pointer, message) in cases {
        let report = orchestrator_tests::validate(&[
            ("items/postgres.yaml", orchestrator_tests::ITEM),
            ("calendars/c.yaml", &calendar(spec)),
        ]);
        let finding = orchestrator_tests::single_error(&report);
        assert_eq!(finding.pointer, pointer, "{finding:?}");
        assert!(finding.message.contains(message), "{finding:?}");
        assert_eq!(finding.file, "calendars/c.yaml");
    }
}

#[test]
fn a_teams_notification_subscription_that_cannot_work_is_refused_where_it_is_wrong() {
    let teams = |subscription: &str| {
        format!(
            "{}      notifications:\n{subscription}",
            orchestrator_tests::TEAMS
        )
    };
    let cases = [
        (
            "        - name: s\n          events: [exploded]\n          slack:\n            urlSecret: x\n",
            "/spec/teams/database/notifications/0/events/0",
            "exploded",
        ),
        (
            "        - name: s\n          events: [failed]\n          slack:\n            urlSecret: x\n          sns:\n            topicArn: arn:aws:sns:eu-west-1:123456789012:t\n",
            "/spec/teams/database/notifications/0",
            "",
        ),
        (
            "        - name: s\n          events: [failed]\n          targets: [postgress]\n          webhook:\n            url: https://hooks.example/x\n            signingSecret: k\n",
            "/spec/teams/database/notifications/0/targets/0",
            "`postgress` is not an item or bundle of the catalog",
        ),
        (
            "        - name: s\n          events: [failed]\n          slack:\n            urlSecret: x\n        - name: s\n          events: [completed]\n          slack:\n            urlSecret: y\n",
            "/spec/teams/database/notifications/1/name",
            "two subscriptions named `s`",
        ),
    ];
    for (subscription, pointer, message) in cases {
        let report = shared::catalog::validate_files(&[
            orchestrator_tests::file("teams.yaml", &teams(subscription)),
            orchestrator_tests::file("items/postgres.yaml", orchestrator_tests::ITEM),
        ]);
        let errors: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == shared::catalog::Severity::Error)
            .collect();
        assert!(!errors.is_empty(), "{subscription}: no finding");
        let finding = errors[0];
        assert_eq!(finding.file, "teams.yaml", "{finding:?}");
        assert!(
            finding.pointer.starts_with(pointer),
            "{pointer} vs {finding:?}"
        );
        assert!(finding.message.contains(message), "{finding:?}");
        assert!(finding.line > 7, "{finding:?}");
    }
}

#[test]
fn a_cloudformation_action_is_checked_against_its_template() {
    use orchestrator_tests::{BUCKET_TEMPLATE, bucket_item, file};
    let validate = |item: String, template: Option<&str>| {
        let mut files = vec![
            file("teams.yaml", orchestrator_tests::TEAMS),
            file("items/bucket.yaml", &item),
        ];
        if let Some(t) = template {
            files.push(file("templates/bucket.yaml", t));
        }
        shared::catalog::validate_files(&files)
    };
    let good = bucket_item("              BucketName: \"orch-{{fields.name}}\"");
    let report = validate(good.clone(), Some(BUCKET_TEMPLATE));
    assert!(report.is_valid(), "{:#?}", report.findings);
    assert_eq!(report.documents, 2, "a template is not a document");
    // Short-form intrinsics are read as their long forms.
    let template = &report.catalog.templates["templates/bucket.yaml"];
    assert_eq!(
        template["Resources"]["Bucket"]["Properties"]["BucketName"],
        serde_json::json!({"Ref": "BucketName"})
    );
    assert_eq!(
        template["Outputs"]["BucketArn"]["Value"],
        serde_json::json!({"Fn::GetAtt": ["Bucket", "Arn"]})
    );

    let cases = [
        (
            validate(good.clone(), None),
            "items/bucket.yaml",
            "/spec/fulfillment/automated/actions/0/with/template",
            "there is no template `templates/bucket.yaml`",
        ),
        (
            validate(
                bucket_item("              BucketName: x\n              Versionning: Enabled"),
                Some(BUCKET_TEMPLATE),
            ),
            "items/bucket.yaml",
            "/spec/fulfillment/automated/actions/0/with/parameters/Versionning",
            "declares no parameter `Versionning` (did you mean `Versioning`?)",
        ),
        (
            validate(
                bucket_item("              Versioning: Enabled"),
                Some(BUCKET_TEMPLATE),
            ),
            "items/bucket.yaml",
            "/spec/fulfillment/automated/actions/0/with/template",
            "needs the parameters BucketName",
        ),
        (
            validate(good.clone(), Some("Resources: [unclosed\n")),
            "templates/bucket.yaml",
            "/Resources",
            "YAML syntax error",
        ),
        (
            validate(good.clone(), Some("Description: nothing\n")),
            "templates/bucket.yaml",
            "/Resources",
            "needs a `Resources` mapping",
        ),
        (
            validate(
                good.replace(
                    "            tags:\n",
                    "            region: eu-west-11\n            tags:\n",
                ),
                Some(BUCKET_TEMPLATE),
            ),
            "items/bucket.yaml",
            "/spec/fulfillment/automated/actions/0/with/region",
            "`eu-west-11` is not an AWS region (did you mean `eu-west-1`?)",
        ),
        (
            validate(
                good.replace(
                    "template: templates/bucket.yaml",
                    "templateUrl: https://example.com/bucket.yaml",
                ),
                None,
            ),
            "items/bucket.yaml",
            "/spec/fulfillment/automated/actions/0/with",
            "",
        ),
        (
            validate(
                good.replace(
                    "            operation: delete\n",
                    "            operation: delete\n            template: templates/bucket.yaml\n",
                ),
                Some(BUCKET_TEMPLATE),
            ),
            "items/bucket.yaml",
            "/spec/fulfillment/automated/rollback/0/with",
            "",
        ),
    ];
    // A template in S3 is CloudFormation's to read: the catalog does not check it.
    let in_s3 = good.replace(
        "template: templates/bucket.yaml",
        "templateUrl: https://platform-templates.s3.eu-west-1.amazonaws.com/bucket.yaml",
    );
    let report = validate(in_s3, None);
    assert!(report.is_valid(), "{:#?}", report.findings);
    for (report, file, pointer, message) in cases {
        let errors: Vec<_> = report.findings.iter().filter(|f| f.is_error()).collect();
        let finding = errors
            .iter()
            .find(|f| f.file == file)
            .unwrap_or_else(|| panic!("no finding in {file}: {errors:#?}"));
        assert!(
            finding.pointer.starts_with(pointer),
            "{pointer}: {finding:?}"
        );
        assert!(finding.message.contains(message), "{finding:?}");
        assert!(finding.line >= 1, "{finding:?}");
    }
}

#[test]
fn a_replacement_names_an_offering_that_exists_and_only_a_deprecated_one_names_one() {
    let deprecated = |replacement: &str| {
        item_with(
            "  category: database",
            &format!("  category: database\n  lifecycle: deprecated\n  replacedBy: {replacement}"),
        )
    };
    // The bundle `pair` replaces it: fine (the bundle's use of a deprecated item warns).
    let report = validate(&[
        ("items/pg.yaml", &deprecated("pair")),
        ("bundles/pair.yaml", BUNDLE),
    ]);
    assert!(report.is_valid(), "{:#?}", report.findings);
    let unknown = validate(&[
        ("items/pg.yaml", &deprecated("pairs")),
        ("bundles/pair.yaml", BUNDLE),
    ]);
    let f = unknown
        .findings
        .iter()
        .find(|f| f.pointer == "/metadata/replacedBy")
        .expect("a finding at replacedBy");
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message.contains("`pairs` is no item or bundle") && f.message.contains("pair"),
        "{}",
        f.message
    );
    let itself = validate(&[("items/pg.yaml", &deprecated("postgres"))]);
    assert!(
        itself
            .findings
            .iter()
            .any(|f| f.pointer == "/metadata/replacedBy"
                && f.message.contains("cannot replace itself")),
        "{:#?}",
        itself.findings
    );
    let not_deprecated = validate(&[
        (
            "items/pg.yaml",
            &item_with(
                "  category: database",
                "  category: database\n  replacedBy: pair",
            ),
        ),
        ("bundles/pair.yaml", BUNDLE),
    ]);
    let f = not_deprecated
        .findings
        .iter()
        .find(|f| f.pointer == "/metadata/replacedBy")
        .expect("a finding at replacedBy");
    assert!(f.message.contains("lifecycle: deprecated"), "{}", f.message);
}
