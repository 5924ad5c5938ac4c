//! The command line end to end: broken stacks, saved plans, JSON, masking, confirmation,
//! prevent_destroy, targets, import and the state commands.

use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, KeySchemaElement, KeyType, ScalarAttributeType,
};

use crate::harness::{tables_of_stack, Env};

/// Every file in tests/corpus is a broken stack whose first line says where and what the
/// error is (`# expect: LINE:COL: text`); `validate` must say exactly that and exit 1.
#[test]
fn every_broken_stack_in_the_corpus_gets_its_file_line_column_message_and_exit_1() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let env = Env::new();
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&corpus)
        .expect("corpus")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(path).expect("read case");
        let expect_line = match text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
        {
            Some(e) => e.to_string(),
            None => std::fs::read_to_string(path.with_extension("expect"))
                .expect("a case without an expect line has a .expect file")
                .trim()
                .trim_start_matches("# expect: ")
                .to_string(),
        };
        let run = env.plinth(&["validate", path.to_str().expect("utf-8 path")]);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert_eq!(run.code, 1, "{name}: exit code\n{}", run.stderr);
        assert!(
            !run.stderr.contains("panicked"),
            "{name} panicked:\n{}",
            run.stderr
        );
        let wanted = if expect_line
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
        {
            format!("{name}:{expect_line}")
        } else {
            expect_line.clone()
        };
        assert!(
            run.stderr.contains(&wanted),
            "{name}: expected `{wanted}` in\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&format!("{name}:")),
            "{name}: the message names the file\n{}",
            run.stderr
        );
        checked += 1;
    }
    assert!(checked >= 19, "only {checked} corpus cases ran");
}

const SMALL: &str = r#"
stack: STACK
region: us-east-1
vars:
  prefix: { default: PREFIX }
  api_key: { default: hunter2-secret-key, sensitive: true }
resources:
  table:
    type: dynamodb.table
    name: "${var.prefix}-table"
    partition_key: { name: Id, type: S }
    tags: { owner: "${var.api_key}" }
  items:
    type: dynamodb.items
    table: ${table.name}
    items:
      - { Id: a, Value: 1 }
      - { Id: b, Value: 2 }
outputs:
  table_name: ${table.name}
  secret_out: { value: "${var.api_key}", sensitive: true, description: not for printing }
"#;

fn small(env: &Env, stack: &str) -> &'static str {
    env.write(
        "plinth.yaml",
        &SMALL.replace("STACK", stack).replace("PREFIX", stack),
    );
    "plinth.yaml"
}

#[test]
fn a_saved_plan_applies_exactly_and_is_refused_once_the_state_has_moved_on() {
    let env = Env::new();
    small(&env, "saved-plan");
    let first = env.plinth(&["plan", "-o", "first.plan"]).ok();
    assert!(
        first.stdout.contains("Saved the plan to first.plan"),
        "{}",
        first.stdout
    );
    let stale = env.plinth(&["plan", "-o", "second.plan"]).ok();
    assert!(stale.stdout.contains("Plan: 2 to add"), "{}", stale.stdout);
    env.plinth(&["apply", "first.plan"]).ok();
    let state = env.state("saved-plan");
    assert_eq!(state["resources"]["table"]["id"], "saved-plan-table");
    let refused = env.plinth(&["apply", "second.plan"]).expect_code(1);
    assert!(
        refused
            .stderr
            .contains("the state changed since this plan was made"),
        "{}",
        refused.stderr
    );
    env.plinth(&["destroy", "--yes"]).ok();
}

#[test]
fn plan_json_has_a_format_version_and_never_contains_a_sensitive_value() {
    let env = Env::new();
    small(&env, "json-plan");
    let run = env.plinth(&["plan", "--json"]).ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("plan --json is JSON");
    assert_eq!(doc["format_version"], "1.0");
    assert_eq!(doc["summary"]["add"], 2);
    let table = doc["resource_changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "table"))
        .expect("table change");
    assert_eq!(table["action"], "create");
    assert!(table["after_unknown"].as_array().is_some());
    assert!(!run.stdout.contains("hunter2-secret-key"), "{}", run.stdout);
    let text = env.plinth(&["plan"]).ok();
    assert!(
        !text.stdout.contains("hunter2-secret-key"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("(sensitive value)"), "{}", text.stdout);
}

#[test]
fn apply_refuses_without_yes_when_stdin_is_not_a_terminal_and_creates_nothing() {
    let env = Env::new();
    small(&env, "no-confirm");
    let run = env.plinth(&["apply"]).expect_code(1);
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
    let state_file = env.path(".plinth/no-confirm/default/state.json");
    assert!(
        !state_file.exists()
            || env.state("no-confirm")["resources"]
                .as_object()
                .is_some_and(|r| r.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn detailed_exitcode_outputs_show_and_state_commands_report_what_was_applied() {
    let env = Env::new();
    small(&env, "state-cmds");
    env.plinth(&["plan", "--detailed-exitcode"]).expect_code(2);
    let apply = env.plinth(&["apply", "--yes"]).ok();
    assert!(
        apply
            .stdout
            .contains("Apply complete! Resources: 2 added, 0 changed, 0 destroyed."),
        "{}",
        apply.stdout
    );
    assert!(
        !apply.all().contains("hunter2-secret-key"),
        "{}",
        apply.all()
    );
    env.plinth(&["plan", "--detailed-exitcode"]).ok();

    let list = env.plinth(&["state", "list"]).ok();
    assert!(
        list.stdout
            .contains("table\tdynamodb.table\tus-east-1\tstate-cmds-table"),
        "{}",
        list.stdout
    );
    let show = env.plinth(&["show"]).ok();
    assert!(show.stdout.contains("state-cmds-table"), "{}", show.stdout);
    assert!(
        !show.stdout.contains("hunter2-secret-key"),
        "show masks sensitive values:\n{}",
        show.stdout
    );
    let outputs = env.plinth(&["output", "--json"]).ok();
    let doc: serde_json::Value = serde_json::from_str(&outputs.stdout).expect("output --json");
    assert_eq!(doc["table_name"]["value"], "state-cmds-table");
    assert_eq!(doc["secret_out"]["value"], "(sensitive value)");
    let one = env.plinth(&["output", "table_name", "--raw"]).ok();
    assert_eq!(one.stdout.trim(), "state-cmds-table");

    // state rm forgets without deleting; import brings it back.
    env.plinth(&["state", "rm", "items"]).ok();
    env.plinth(&["state", "rm", "table"]).ok();
    let ddb = env.dynamodb();
    assert_eq!(
        tables_of_stack(&ddb, "state-cmds").await,
        ["state-cmds-table"],
        "still in AWS"
    );
    env.plinth(&["import", "dynamodb.table.table", "state-cmds-table"])
        .ok();
    let plan = env.plinth(&["plan"]).ok();
    assert!(
        plan.stdout.contains("+ items (dynamodb.items"),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains("table (dynamodb.table"),
        "the imported table matches:\n{}",
        plan.stdout
    );
    env.plinth(&["apply", "--yes"]).ok();
    env.plinth(&["destroy", "--yes"]).ok();
    assert!(tables_of_stack(&ddb, "state-cmds").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn prevent_destroy_blocks_destroy_and_replacement_until_it_is_removed() {
    let env = Env::new();
    let stack = small(&env, "guarded");
    let text = std::fs::read_to_string(env.path(stack)).expect("read");
    env.write(
        stack,
        &text.replace(
            "    tags: { owner",
            "    lifecycle: { prevent_destroy: true }\n    tags: { owner",
        ),
    );
    env.plinth(&["apply", "--yes"]).ok();
    let refused = env.plinth(&["destroy", "--yes"]).expect_code(1);
    assert!(
        refused.stderr.contains("prevent_destroy"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("`table` would be destroyed"),
        "{}",
        refused.stderr
    );
    let ddb = env.dynamodb();
    assert_eq!(tables_of_stack(&ddb, "guarded").await, ["guarded-table"]);
    env.write(stack, &text);
    env.plinth(&["destroy", "--yes"]).ok();
    assert!(tables_of_stack(&ddb, "guarded").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_applies_only_that_resource_and_what_it_needs() {
    let env = Env::new();
    small(&env, "targeted");
    let run = env.plinth(&["apply", "--yes", "--target", "table"]).ok();
    assert!(run.stdout.contains("Resources: 1 added"), "{}", run.stdout);
    let state = env.state("targeted");
    assert!(state["resources"]["table"].is_object());
    assert!(state["resources"].get("items").is_none());
    let rest = env.plinth(&["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(
        rest.stdout
            .contains("Plan: 1 to add, 0 to change, 0 to destroy."),
        "{}",
        rest.stdout
    );
    env.plinth(&["destroy", "--yes"]).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn items_put_only_what_changed_delete_what_was_removed_and_leave_other_items_alone() {
    let env = Env::new();
    small(&env, "items-sync");
    env.plinth(&["apply", "--yes"]).ok();
    let ddb = env.dynamodb();
    // An item plinth does not manage.
    ddb.put_item()
        .table_name("items-sync-table")
        .item(
            "Id",
            aws_sdk_dynamodb::types::AttributeValue::S("manual".into()),
        )
        .send()
        .await
        .expect("put manual item");
    let text = std::fs::read_to_string(env.path("plinth.yaml")).expect("read");
    env.write(
        "plinth.yaml",
        &text
            .replace("      - { Id: b, Value: 2 }\n", "")
            .replace("{ Id: a, Value: 1 }", "{ Id: a, Value: 10 }"),
    );
    let plan = env.plinth(&["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(
        plan.stdout.contains("~ items (dynamodb.items"),
        "{}",
        plan.stdout
    );
    let apply = env.plinth(&["apply", "--yes", "--stats"]).ok();
    assert!(
        apply.stderr.contains("\"DynamoDB.BatchWriteItem\":1"),
        "one batch for one put and one delete: {}",
        apply.stderr
    );
    let scan = ddb
        .scan()
        .table_name("items-sync-table")
        .send()
        .await
        .expect("scan");
    let mut ids: Vec<String> = scan
        .items()
        .iter()
        .filter_map(|i| i.get("Id").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["a", "manual"]);
    let a = scan
        .items()
        .iter()
        .find(|i| i.get("Id").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("a"))
        .expect("a");
    assert_eq!(
        a.get("Value")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some("10")
    );
    env.plinth(&["plan", "--detailed-exitcode"]).ok();
    env.plinth(&["destroy", "--yes"]).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_replacement_recreates_the_table_and_reseeds_its_items() {
    let env = Env::new();
    small(&env, "replace-table");
    env.plinth(&["apply", "--yes"]).ok();
    let text = std::fs::read_to_string(env.path("plinth.yaml")).expect("read");
    env.write(
        "plinth.yaml",
        &text
            .replace(
                "partition_key: { name: Id, type: S }",
                "partition_key: { name: Id, type: S }\n    sort_key: { name: Version, type: N }",
            )
            .replace("Value: 1 }", "Value: 1, Version: 1 }")
            .replace("Value: 2 }", "Value: 2, Version: 1 }"),
    );
    let plan = env.plinth(&["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(
        plan.stdout.contains("-/+ table (dynamodb.table"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("sort_key forces replacement"),
        "{}",
        plan.stdout
    );
    env.plinth(&["apply", "--yes"]).ok();
    let ddb = env.dynamodb();
    let desc = ddb
        .describe_table()
        .table_name("replace-table-table")
        .send()
        .await
        .expect("table");
    let keys: Vec<&str> = desc
        .table()
        .map(|t| t.key_schema().iter().map(|k| k.attribute_name()).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["Id", "Version"]);
    let scan = ddb
        .scan()
        .table_name("replace-table-table")
        .send()
        .await
        .expect("scan");
    assert_eq!(scan.count(), 2, "the items were written to the new table");
    env.plinth(&["plan", "--detailed-exitcode"]).ok();
    env.plinth(&["destroy", "--yes"]).ok();
    assert!(tables_of_stack(&ddb, "replace-table").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_vpc_lookup_feeds_a_group_and_is_read_not_created() {
    let env = Env::new();
    env.write(
        "plinth.yaml",
        r#"
stack: vpc-lookup
region: us-east-1
resources:
  vpc:
    type: ec2.default_vpc
  sg:
    type: ec2.security_group
    name: vpc-lookup-sg
    vpc_id: ${vpc.id}
    ingress:
      - { protocol: tcp, ports: 22, cidr: "${vpc.cidr_block}" }
outputs:
  subnets: ${vpc.subnet_ids}
"#,
    );
    let plan = env.plinth(&["plan"]).ok();
    assert!(
        plan.stdout.contains("<= vpc (ec2.default_vpc"),
        "{}",
        plan.stdout
    );
    env.plinth(&["apply", "--yes"]).ok();
    let ec2 = env.ec2();
    let vpcs = ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("is-default")
                .values("true")
                .build(),
        )
        .send()
        .await
        .expect("vpcs");
    let vpc = vpcs.vpcs().first().expect("a default VPC");
    let groups = crate::harness::groups_of_stack(&ec2, "vpc-lookup").await;
    assert_eq!(groups.len(), 1);
    let described = ec2
        .describe_security_groups()
        .group_ids(&groups[0].0)
        .send()
        .await
        .expect("group");
    let group = described.security_groups().first().expect("group");
    assert_eq!(group.vpc_id(), vpc.vpc_id());
    let cidr = group
        .ip_permissions()
        .first()
        .and_then(|p| p.ip_ranges().first())
        .and_then(|r| r.cidr_ip());
    assert_eq!(cidr, vpc.cidr_block());
    let outputs: serde_json::Value =
        serde_json::from_str(&env.plinth(&["output", "--json"]).ok().stdout).expect("json");
    assert!(outputs["subnets"]["value"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
    env.plinth(&["plan", "--detailed-exitcode"]).ok();
    env.plinth(&["destroy", "--yes"]).ok();
    assert!(crate::harness::groups_of_stack(&ec2, "vpc-lookup")
        .await
        .is_empty());
    assert_eq!(
        ec2.describe_vpcs()
            .vpc_ids(vpc.vpc_id().unwrap_or_default())
            .send()
            .await
            .expect("vpc")
            .vpcs()
            .len(),
        1,
        "the VPC itself stays"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn import_of_a_table_made_by_hand_then_plan_shows_only_the_differences() {
    let env = Env::new();
    let ddb = env.dynamodb();
    ddb.create_table()
        .table_name("hand-made")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("Id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("Id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create by hand");
    env.write(
        "plinth.yaml",
        "stack: imported\nregion: us-east-1\nresources:\n  legacy:\n    type: dynamodb.table\n    name: hand-made\n    partition_key: { name: Id, type: S }\n",
    );
    let missing = env
        .plinth(&["import", "dynamodb.table.legacy", "no-such-table"])
        .expect_code(1);
    assert!(
        missing
            .stderr
            .contains("no dynamodb.table with id `no-such-table`"),
        "{}",
        missing.stderr
    );
    env.plinth(&["import", "dynamodb.table.legacy", "hand-made"])
        .ok();
    let plan = env.plinth(&["plan", "--detailed-exitcode"]).expect_code(2);
    // Only the plinth tags differ: the table itself is adopted, not recreated.
    assert!(
        plan.stdout
            .contains("~ legacy (dynamodb.table, us-east-1) [hand-made] will be updated in place"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("plinth:stack"), "{}", plan.stdout);
    env.plinth(&["apply", "--yes"]).ok();
    assert_eq!(tables_of_stack(&ddb, "imported").await, ["hand-made"]);
    env.plinth(&["destroy", "--yes"]).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_operation_is_reported_once_its_dependents_are_skipped_and_the_rest_is_recorded() {
    let env = Env::new();
    env.write(
        "plinth.yaml",
        r#"
stack: failing
region: us-east-1
resources:
  broken:
    type: ec2.security_group
    name: failing-broken
    ingress:
      - { protocol: tcp, ports: 5432, security_group: sg-0123456789abcdef0 }
  after_broken:
    type: dynamodb.table
    name: failing-after
    partition_key: { name: Id, type: S }
    depends_on: [broken]
  independent:
    type: dynamodb.table
    name: failing-independent
    partition_key: { name: Id, type: S }
"#,
    );
    let run = env.plinth(&["apply", "--yes"]).expect_code(1);
    assert_eq!(
        run.stderr.matches("Error: creating `broken`").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("sg-0123456789abcdef0"),
        "the AWS message is shown: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Skipped because of the error: after_broken (needs broken)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Apply failed."), "{}", run.stderr);
    let state = env.state("failing");
    assert_eq!(
        state["resources"]["independent"]["status"]["state"],
        "ready"
    );
    assert!(
        state["resources"].get("after_broken").is_none(),
        "a skipped resource is not recorded"
    );
    let ddb = env.dynamodb();
    assert_eq!(
        tables_of_stack(&ddb, "failing").await,
        ["failing-independent"]
    );

    // Removing the broken resource from the stack: the next apply converges, and what it
    // left behind is destroyed.
    env.write(
        "plinth.yaml",
        "stack: failing\nregion: us-east-1\nresources:\n  independent:\n    type: dynamodb.table\n    name: failing-independent\n    partition_key: { name: Id, type: S }\n",
    );
    let plan = env.plinth(&["plan"]).ok();
    assert!(
        plan.stdout.contains("- broken (ec2.security_group"),
        "{}",
        plan.stdout
    );
    env.plinth(&["apply", "--yes"]).ok();
    assert!(crate::harness::groups_of_stack(&env.ec2(), "failing")
        .await
        .is_empty());
    env.plinth(&["destroy", "--yes"]).ok();
    assert!(tables_of_stack(&ddb, "failing").await.is_empty());
}

#[test]
fn schema_is_a_json_schema_of_every_type_and_graph_is_dot_with_every_reference() {
    let env = Env::new();
    let schema: serde_json::Value =
        serde_json::from_str(&env.plinth(&["schema"]).ok().stdout).expect("schema is JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let types =
        &schema["properties"]["resources"]["additionalProperties"]["properties"]["type"]["enum"];
    for t in [
        "dynamodb.table",
        "dynamodb.items",
        "ec2.security_group",
        "ec2.default_vpc",
    ] {
        assert!(
            types
                .as_array()
                .is_some_and(|a| a.contains(&serde_json::json!(t))),
            "{t} missing from {types}"
        );
    }
    let table = schema["properties"]["resources"]["additionalProperties"]["allOf"]
        .as_array()
        .and_then(|v| {
            v.iter()
                .find(|s| s["if"]["properties"]["type"]["const"] == "dynamodb.table")
        })
        .expect("dynamodb.table variant");
    assert_eq!(table["then"]["additionalProperties"], false);
    assert!(table["then"]["required"]
        .as_array()
        .is_some_and(|r| r.contains(&serde_json::json!("partition_key"))));

    env.write("lab.yaml", include_str!("../../stacks/week2-data-lab.yaml"));
    let dot = env.plinth(&["graph", "lab.yaml"]).ok().stdout;
    assert!(dot.starts_with("digraph plinth {"), "{dot}");
    assert!(dot.contains("\"users\" -> \"seed_users\";"), "{dot}");
    assert!(dot.contains("\"web_sg\" -> \"app_sg\""), "{dot}");
    assert!(
        dot.contains("label = \"deferred\""),
        "the mutual reference is drawn as deferred: {dot}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn built_in_references_and_tag_merging_reach_the_resources() {
    let env = Env::new();
    env.write(
        "plinth.yaml",
        r#"
stack: builtins
region: us-east-1
tags: { course: aws-journey, owner: stack-level }
expires_after: 3d
resources:
  table:
    type: dynamodb.table
    name: "${stack.name}-${workspace}-table"
    partition_key: { name: Id, type: S }
    tags:
      owner: resource-level
      account: "${account_id}"
      region: "${stack.region}"
      literal: "$${not.a.reference}"
"#,
    );
    env.plinth(&["apply", "--yes", "--workspace", "blue"]).ok();
    let ddb = env.dynamodb();
    let arn = ddb
        .describe_table()
        .table_name("builtins-blue-table")
        .send()
        .await
        .expect("table named from built-ins")
        .table()
        .and_then(|t| t.table_arn().map(str::to_string))
        .expect("arn");
    let tags: std::collections::BTreeMap<String, String> = ddb
        .list_tags_of_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("tags")
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(tags["course"], "aws-journey", "stack tags are merged in");
    assert_eq!(
        tags["owner"], "resource-level",
        "the resource's own tags win"
    );
    assert_eq!(
        tags["account"], "123456789012",
        "${{account_id}} comes from STS"
    );
    assert_eq!(tags["region"], "us-east-1");
    assert_eq!(tags["literal"], "${not.a.reference}");
    assert_eq!(tags["plinth:stack"], "builtins");
    assert_eq!(tags["plinth:workspace"], "blue");
    assert_eq!(tags["plinth:resource"], "table");
    let expires = humantime::parse_rfc3339(&tags["plinth:expires-at"]).expect("an RFC 3339 time");
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .expect("in the future");
    assert!(
        left > std::time::Duration::from_secs(71 * 3600)
            && left <= std::time::Duration::from_secs(72 * 3600),
        "{left:?}"
    );
    // The environment's creation time, from the same instant the expiry counts from.
    let created = humantime::parse_rfc3339(&tags["plinth:created-at"]).expect("an RFC 3339 time");
    assert_eq!(
        expires.duration_since(created).ok(),
        Some(std::time::Duration::from_secs(72 * 3600))
    );
    // The stamp stays put: a second plan is clean, and show prints the time left.
    env.plinth(&["plan", "--detailed-exitcode", "--workspace", "blue"])
        .ok();
    let show = env.plinth(&["show", "--workspace", "blue"]).ok();
    assert!(show.stdout.contains("left)"), "{}", show.stdout);
    env.plinth(&["destroy", "--yes", "--workspace", "blue"])
        .ok();
    assert!(tables_of_stack(&ddb, "builtins").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_security_group_made_by_hand_is_imported_and_then_managed_in_place() {
    let env = Env::new();
    let ec2 = env.ec2();
    let id = ec2
        .create_security_group()
        .group_name("imported-web")
        .description("made by hand")
        .send()
        .await
        .expect("create by hand")
        .group_id()
        .expect("id")
        .to_string();
    env.write(
        "plinth.yaml",
        "stack: imported-sg\nregion: us-east-1\nresources:\n  web:\n    type: ec2.security_group\n    name: imported-web\n    description: made by hand\n    ingress:\n      - { protocol: tcp, ports: 443, cidr: 0.0.0.0/0 }\n",
    );
    env.plinth(&["import", "ec2.security_group.web", &id]).ok();
    let plan = env.plinth(&["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(
        plan.stdout.contains(&format!(
            "~ web (ec2.security_group, us-east-1) [{id}] will be updated in place"
        )),
        "{}",
        plan.stdout
    );
    env.plinth(&["apply", "--yes"]).ok();
    let groups = crate::harness::groups_of_stack(&ec2, "imported-sg").await;
    assert_eq!(
        groups,
        vec![(id.clone(), "imported-web".to_string())],
        "the same group, now tagged"
    );
    let described = ec2
        .describe_security_groups()
        .group_ids(&id)
        .send()
        .await
        .expect("group");
    let ports: Vec<i32> = described.security_groups()[0]
        .ip_permissions()
        .iter()
        .filter_map(|p| p.from_port())
        .collect();
    assert_eq!(ports, [443]);
    env.plinth(&["destroy", "--yes"]).ok();
    assert!(crate::harness::groups_of_stack(&ec2, "imported-sg")
        .await
        .is_empty());
}

/// Issue 14, item 6: completions and man pages come from the parser's own definitions, so
/// every command and option is in them.
#[test]
fn completions_and_man_pages_name_every_command() {
    let env = Env::new();
    let bash = env.plinth(&["completions", "bash"]).ok();
    assert!(bash.stdout.contains("_plinth()"), "{}", bash.stdout);
    for command in ["plan", "apply", "destroy", "sweep", "cost", "completions"] {
        assert!(bash.stdout.contains(command), "bash: {command}");
    }
    assert!(bash.stdout.contains("--detailed-exitcode"), "options too");
    let zsh = env.plinth(&["completions", "zsh"]).ok();
    assert!(zsh.stdout.starts_with("#compdef plinth"), "{}", zsh.stdout);
    let fish = env.plinth(&["completions", "fish"]).ok();
    assert!(
        fish.stdout.contains("complete -c plinth"),
        "{}",
        fish.stdout
    );
    let refused = env.plinth(&["completions", "tcsh"]);
    assert_eq!(
        refused.code, 2,
        "an unknown shell is a usage error: {}",
        refused.stderr
    );

    let man = env.plinth(&["man"]).ok();
    assert!(
        man.stdout.contains(".TH plinth"),
        "a roff page: {}",
        man.stdout
    );
    assert!(man.stdout.contains(".SH NAME"), "{}", man.stdout);
    assert!(
        man.stdout.contains("destroy"),
        "the page lists the commands"
    );
    env.plinth(&["man", "--out", "man"]).ok();
    for page in ["plinth.1", "plinth-plan.1", "plinth-sweep.1"] {
        assert!(env.path(&format!("man/{page}")).exists(), "{page} written");
    }
}

/// Runs plinth with a terminal for stdin and stdout (util-linux `script`), as a person
/// would; the output as the terminal received it.
fn in_a_terminal(env: &Env, args: &[&str]) -> crate::harness::Run {
    let plinth = env.command(args);
    let quote = |a: &std::ffi::OsStr| format!("'{}'", a.to_string_lossy().replace('\'', "'\\''"));
    let line: Vec<String> = std::iter::once(plinth.get_program())
        .chain(plinth.get_args())
        .map(quote)
        .collect();
    let mut script = std::process::Command::new("script");
    script.args(["-qfec", &line.join(" "), "/dev/null"]);
    if let Some(dir) = plinth.get_current_dir() {
        script.current_dir(dir);
    }
    for (key, value) in plinth.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    script.env("COLUMNS", "120");
    crate::harness::Run::from(
        script
            .stdin(std::process::Stdio::null())
            .output()
            .expect("util-linux script runs plinth in a terminal"),
    )
}

#[test]
fn on_a_terminal_progress_is_one_live_status_line_and_in_a_pipe_plain_lines() {
    let env = Env::new();
    let stack = small(&env, "live");
    let live = in_a_terminal(&env, &["apply", stack, "--yes"]).ok();
    let out = &live.stdout;
    // The status line is drawn in place (erase the line, write it) and says what is done,
    // in flight and waiting.
    assert!(out.contains("\r\u{1b}[2K"), "{out:?}");
    assert!(
        out.contains(" done · ") && out.contains(" in flight · "),
        "{out:?}"
    );
    // What finished stays on the screen as lines; "Creating…" lines are the status line's.
    assert!(out.contains("Creation complete after"), "{out}");
    assert!(!out.contains("Creating…"), "{out}");
    // The run ends with the status line erased, before the summary.
    let after_last_erase = out.rsplit("\u{1b}[2K").next().unwrap_or_default();
    assert!(!after_last_erase.contains(" done · "), "{out:?}");
    assert!(
        out.contains("Destroy complete") || out.contains("Apply complete!"),
        "{out}"
    );

    // In a pipe: the plain lines of before, no control characters.
    let piped = env.plinth(&["destroy", stack, "--yes"]).ok();
    assert!(piped.stdout.contains(": Destroying…"), "{}", piped.stdout);
    assert!(!piped.stdout.contains('\u{1b}'), "{:?}", piped.stdout);
}

#[tokio::test]
async fn on_a_terminal_a_roster_shows_one_live_line_per_student() {
    let env = Env::new();
    let stack = small(&env, "live-class");
    env.write(
        "class.txt",
        "ana prefix=live-class-ana\nbo prefix=live-class-bo\n",
    );
    let live = in_a_terminal(&env, &["apply", stack, "--roster", "class.txt", "--yes"]).ok();
    let out = &live.stdout;
    // Each student's progress is a status line of its own, starting with the student's name.
    let drawn: Vec<&str> = out.split("\u{1b}[2K").collect();
    for student in ["[ana]", "[bo]"] {
        assert!(
            drawn
                .iter()
                .any(|d| d.contains(student) && d.contains(" in flight · ")),
            "{student}: {out:?}"
        );
    }
    // What finished stays on the screen as lines; "Creating…" lines are the status lines'.
    assert!(out.contains("Creation complete after"), "{out}");
    assert!(!out.contains("Creating…"), "{out}");
    // The status lines are gone before the class summary.
    let after_last_erase = drawn.last().copied().unwrap_or_default();
    assert!(!after_last_erase.contains(" done · "), "{out:?}");
    assert!(after_last_erase.contains("Roster class.txt"), "{out:?}");
    let ddb = env.dynamodb();
    assert_eq!(
        tables_of_stack(&ddb, "live-class").await,
        ["live-class-ana-table", "live-class-bo-table"]
    );

    // In a pipe: the plain lines of before, each with its student's name.
    let piped = env
        .plinth(&["destroy", stack, "--roster", "class.txt", "--yes"])
        .ok();
    assert!(
        piped.stdout.contains("[ana] table: Destroying…"),
        "{}",
        piped.stdout
    );
    assert!(!piped.stdout.contains('\u{1b}'), "{:?}", piped.stdout);
    assert!(tables_of_stack(&ddb, "live-class").await.is_empty());
}
