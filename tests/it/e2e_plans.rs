//! Plans that are right, end to end: what translating published Terraform and CloudFormation
//! configurations into stacks revealed. Stack tags resolve like any string; replacing what a
//! staying resource uses creates the new one first; seed numbers keep every digit; a saved
//! plan refuses inputs that changed; a no-op plan costs nothing more; errors come once, with
//! the plinth name for an AWS or Terraform one; every command takes the stack file alike.

use aws_sdk_dynamodb::types::AttributeValue;

use crate::harness::{tables_of_stack, Env, Run};

fn lines_with(run: &Run, needle: &str) -> usize {
    run.all().lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn stack_tags_resolve_seed_numbers_keep_every_digit_and_every_command_takes_the_stack_file() {
    let env = Env::new();
    env.write(
        "lab.yaml",
        r#"stack: plans-tags
region: us-east-1
vars:
  name: { default: lab-7 }
tags:
  Name: "${var.name}"
  Stack: ${stack.name}
resources:
  prices:
    type: dynamodb.table
    name: "${var.name}-prices"
    partition_key: { name: id, type: S }
  seed:
    type: dynamodb.items
    table: ${prices.name}
    items:
      - id: a
        Price: 12345678901234567.89
        BigInt: 12345678901234567890123
        Plain: 1.50
outputs:
  table: ${prices.name}
"#,
    );
    env.plinth(&["apply", "lab.yaml", "--yes"]).ok();

    let ddb = env.dynamodb();
    let arn = ddb
        .describe_table()
        .table_name("lab-7-prices")
        .send()
        .await
        .expect("table")
        .table
        .and_then(|t| t.table_arn)
        .expect("arn");
    let tags = ddb
        .list_tags_of_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("tags");
    let tag = |key: &str| {
        tags.tags()
            .iter()
            .find(|t| t.key() == key)
            .map(|t| t.value().to_string())
    };
    assert_eq!(tag("Name").as_deref(), Some("lab-7"), "{tags:?}");
    assert_eq!(tag("Stack").as_deref(), Some("plans-tags"));

    let item = ddb
        .get_item()
        .table_name("lab-7-prices")
        .key("id", AttributeValue::S("a".into()))
        .send()
        .await
        .expect("item")
        .item
        .expect("the seed item");
    let n = |key: &str| item[key].as_n().expect("a number").clone();
    assert_eq!(n("Price"), "12345678901234567.89", "the cents are kept");
    assert_eq!(n("BigInt"), "12345678901234567890123");
    assert_eq!(n("Plain"), "1.5");
    env.plinth(&["plan", "lab.yaml", "--detailed-exitcode"])
        .ok();
    // A cent is a change the plan sees.
    let text = env.read("lab.yaml").replace("567.89", "567.88");
    env.write("lab.yaml", &text);
    let plan = env
        .plinth(&["plan", "lab.yaml", "--detailed-exitcode"])
        .expect_code(2);
    assert!(
        plan.stdout.contains("12345678901234567.88"),
        "{}",
        plan.stdout
    );

    // Every command that reads a stack takes it the same way.
    let output = env.plinth(&["output", "lab.yaml"]).ok();
    assert!(
        output.stdout.contains("table = \"lab-7-prices\""),
        "{}",
        output.stdout
    );
    let raw = env.plinth(&["output", "lab.yaml", "table", "--raw"]).ok();
    assert_eq!(raw.stdout.trim(), "lab-7-prices");
    let list = env.plinth(&["state", "list", "lab.yaml"]).ok();
    assert!(
        list.stdout.contains("prices\tdynamodb.table"),
        "{}",
        list.stdout
    );
    let show = env.plinth(&["state", "show", "lab.yaml", "prices"]).ok();
    assert!(show.stdout.contains("lab-7-prices"), "{}", show.stdout);

    env.plinth(&["destroy", "lab.yaml", "--yes"]).ok();
    assert!(tables_of_stack(&ddb, "plans-tags").await.is_empty());
}

#[test]
fn validate_reports_one_error_per_cause_the_plinth_name_and_cross_resource_problems() {
    let env = Env::new();
    // A variable without a value, used five times: one error, where it is declared.
    env.write(
        "vars.yaml",
        r#"stack: plans-vars
region: us-east-1
vars:
  default_sg_id: { type: string }
tags:
  Sg: ${var.default_sg_id}
resources:
  cache:
    type: elasticache.cluster
    cluster_id: plans-vars
    engine: redis
    node_type: cache.t3.micro
    security_group_ids: ["${var.default_sg_id}"]
    tags: { a: "${var.default_sg_id}", b: "${var.default_sg_id}" }
outputs:
  sg: ${var.default_sg_id}
"#,
    );
    let run = env.plinth(&["validate", "vars.yaml"]).expect_code(1);
    assert_eq!(lines_with(&run, "has no default"), 1, "{}", run.stderr);
    assert_eq!(lines_with(&run, "unknown variable"), 0, "{}", run.stderr);

    // The AWS API's and Terraform's names; a list where a sibling takes the list.
    env.write(
        "names.yaml",
        r#"stack: plans-names
region: us-east-1
resources:
  web:
    type: ec2.security_group
    name: plans-names-web
    description: web
    ingress:
      - { protocol: tcp, ports: 443, cidr: [10.0.0.0/8, 192.168.0.0/16] }
  cache:
    type: elasticache.cluster
    cluster_id: plans-names
    engine: memcached
    node_type: cache.t3.micro
    num_cache_nodes: 2
"#,
    );
    let run = env.plinth(&["validate", "names.yaml"]).expect_code(1);
    let text = run.all();
    assert!(text.contains("did you mean `num_nodes`?"), "{text}");
    assert!(text.contains("names.yaml:15:5"), "{text}");
    assert!(text.contains("`cidrs` takes a list"), "{text}");

    // Seed items checked against their table's key schema, at the item.
    env.write(
        "items.yaml",
        r#"stack: plans-items
region: us-east-1
resources:
  users:
    type: dynamodb.table
    name: plans-items-users
    partition_key: { name: id, type: S }
    sort_key: { name: at, type: N }
  seed:
    type: dynamodb.items
    table: ${users.name}
    items:
      - { id: a, at: 1 }
      - { name: no-key, at: 2 }
      - { id: b, at: "yesterday" }
"#,
    );
    let run = env.plinth(&["validate", "items.yaml"]).expect_code(1);
    let text = run.all();
    assert!(
        text.contains("items.yaml:14:9") && text.contains("the item has no `id`"),
        "{text}"
    );
    assert!(
        text.contains("items.yaml:15:18")
            && text.contains("`at` is the key of table `users` and must be a number"),
        "{text}"
    );

    // Today's default security policy of the most used CloudFront module.
    env.write(
        "tls.yaml",
        r#"stack: plans-tls
region: us-east-1
resources:
  cert:
    type: acm.certificate
    domain_name: tls.example.com
  cdn:
    type: cloudfront.distribution
    aliases: [tls.example.com]
    certificate: ${cert.arn}
    minimum_protocol_version: TLSv1.2_2025
    origins:
      - { id: web, domain_name: origin.example.org, custom: { protocol_policy: https-only } }
    default_behavior: { origin: web }
"#,
    );
    env.plinth(&["validate", "tls.yaml"]).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_and_a_security_group_in_use_are_replaced_in_one_run_new_first_old_last() {
    let env = Env::new();
    env.write(
        "uses.yaml",
        r#"stack: plans-uses
region: us-east-1
vars:
  domain: { default: one.example.com }
  group: { default: plans-uses-web }
resources:
  cert:
    type: acm.certificate
    domain_name: ${var.domain}
  cdn:
    type: cloudfront.distribution
    aliases: ["${var.domain}"]
    certificate: ${cert.arn}
    origins:
      - { id: web, domain_name: origin.example.org, custom: { protocol_policy: https-only } }
    default_behavior: { origin: web }
  web:
    type: ec2.security_group
    name: ${var.group}
    description: the web tier
  peer:
    type: ec2.security_group
    name: plans-uses-peer
    description: talks to the web tier
    ingress:
      - { protocol: tcp, ports: 443, security_group: "${web.id}" }
  cache:
    type: elasticache.cluster
    cluster_id: plans-uses
    engine: redis
    node_type: cache.t3.micro
    security_group_ids: ["${web.id}"]
"#,
    );
    env.plinth(&["apply", "uses.yaml", "--yes"]).ok();
    let state = env.state("plans-uses");
    let old_cert = state["resources"]["cert"]["id"]
        .as_str()
        .expect("cert")
        .to_string();
    let old_group = state["resources"]["web"]["id"]
        .as_str()
        .expect("sg")
        .to_string();

    let vars = [
        "--var",
        "domain=two.example.com",
        "--var",
        "group=plans-uses-web2",
    ];
    let plan = env
        .plinth(&[&["plan", "uses.yaml"][..], &vars[..]].concat())
        .ok();
    for line in [
        "+/- cert (acm.certificate",
        "+/- web (ec2.security_group",
        "# the new one is created first and the old one destroyed last: `cdn` still uses it",
        "destroyed last: `cache` still uses it",
    ] {
        assert!(plan.stdout.contains(line), "{line}\n{}", plan.stdout);
    }
    env.plinth(&[&["apply", "uses.yaml", "--yes"][..], &vars[..]].concat())
        .ok();

    let state = env.state("plans-uses");
    let new_cert = state["resources"]["cert"]["id"].as_str().expect("cert");
    let new_group = state["resources"]["web"]["id"].as_str().expect("sg");
    assert_ne!(new_cert, old_cert);
    assert_ne!(new_group, old_group);
    let certs = env.acm().list_certificates().send().await.expect("certs");
    let arns: Vec<&str> = certs
        .certificate_summary_list()
        .iter()
        .filter_map(|c| c.certificate_arn())
        .collect();
    assert!(
        !arns.contains(&old_cert.as_str()),
        "the old certificate is gone"
    );
    assert!(arns.contains(&new_cert));
    let ec2 = env.ec2();
    let old = ec2
        .describe_security_groups()
        .group_ids(&old_group)
        .send()
        .await;
    assert!(
        old.is_err() || old.is_ok_and(|o| o.security_groups().is_empty()),
        "the old group is gone"
    );
    let cdn_id = state["resources"]["cdn"]["id"].as_str().expect("cdn");
    let config = env
        .cloudfront()
        .get_distribution_config()
        .id(cdn_id)
        .send()
        .await
        .expect("distribution");
    let served = config
        .distribution_config()
        .and_then(|c| c.viewer_certificate())
        .and_then(|v| v.acm_certificate_arn())
        .map(str::to_string);
    assert_eq!(
        served.as_deref(),
        Some(new_cert),
        "the distribution moved to the new one"
    );
    let cache = env
        .elasticache()
        .describe_cache_clusters()
        .cache_cluster_id("plans-uses")
        .send()
        .await
        .expect("cache");
    let groups: Vec<&str> = cache.cache_clusters()[0]
        .security_groups()
        .iter()
        .filter_map(|g| g.security_group_id())
        .collect();
    assert_eq!(groups, vec![new_group], "the cache moved to the new group");
    env.plinth(&[&["plan", "uses.yaml", "--detailed-exitcode"][..], &vars[..]].concat())
        .ok();
    env.plinth(&[&["destroy", "uses.yaml", "--yes"][..], &vars[..]].concat())
        .ok();
}

#[test]
fn a_unique_name_that_a_create_first_replacement_would_repeat_is_refused_before_any_call() {
    let env = Env::new();
    env.write(
        "same.yaml",
        r#"stack: plans-same
region: us-east-1
vars:
  about: { default: the web tier }
resources:
  web:
    type: ec2.security_group
    name: plans-same-web
    description: ${var.about}
  cache:
    type: elasticache.cluster
    cluster_id: plans-same
    engine: redis
    node_type: cache.t3.micro
    security_group_ids: ["${web.id}"]
"#,
    );
    env.plinth(&["apply", "same.yaml", "--yes"]).ok();
    let run = env
        .plinth(&["plan", "same.yaml", "--var", "about=web servers"])
        .expect_code(1);
    let text = run.all();
    for words in [
        "must be replaced (description forces replacement)",
        "`cache` still uses it",
        "give it a new `name` (for example `plans-same-web-2`)",
    ] {
        assert!(text.contains(words), "{words}\n{text}");
    }
    env.plinth(&["destroy", "same.yaml", "--yes"]).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_refuses_files_that_changed_since_and_names_them() {
    let env = Env::new();
    env.write("site/index.html", "<h1>planned</h1>");
    env.write("site/about.html", "about");
    env.write(
        "site.yaml",
        r#"stack: plans-saved
region: us-east-1
resources:
  site:
    type: s3.bucket
    name: plans-saved-site
    force_destroy: true
  files:
    type: s3.objects
    bucket: ${site.name}
    source: site
"#,
    );
    env.plinth(&["plan", "site.yaml", "-o", "plan.json"]).ok();
    env.write("site/index.html", "<h1>edited after the plan</h1>");
    env.write("site/new.html", "new");
    let run = env.plinth(&["apply", "plan.json", "--yes"]).expect_code(1);
    let text = run.all();
    assert!(
        text.contains("site/index.html (changed)") && text.contains("site/new.html (added)"),
        "{text}"
    );
    assert!(
        !text.contains("about.html"),
        "unchanged files are not named: {text}"
    );
    let bucket = env
        .s3()
        .head_bucket()
        .bucket("plans-saved-site")
        .send()
        .await;
    assert!(bucket.is_err(), "nothing was applied");
    // Planned again, it applies.
    env.plinth(&["plan", "site.yaml", "-o", "plan.json"]).ok();
    env.plinth(&["apply", "plan.json", "--yes"]).ok();
    env.plinth(&["destroy", "site.yaml", "--yes"]).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_no_op_plan_costs_nothing_more_and_names_a_drift_in_an_ignored_property() {
    let env = Env::new();
    env.write(
        "cost.yaml",
        r#"stack: plans-cost
region: us-east-1
resources:
  orders:
    type: dynamodb.table
    name: plans-cost-orders
    partition_key: { name: id, type: S }
    billing_mode: provisioned
    read_capacity: 5
    write_capacity: 5
    lifecycle: { ignore_changes: [read_capacity, write_capacity] }
"#,
    );
    env.plinth(&["apply", "cost.yaml", "--yes"]).ok();
    // Autoscaling raised the capacity outside plinth.
    env.dynamodb()
        .update_table()
        .table_name("plans-cost-orders")
        .provisioned_throughput(
            aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                .read_capacity_units(50)
                .write_capacity_units(50)
                .build()
                .expect("throughput"),
        )
        .send()
        .await
        .expect("raised");
    let plan = env
        .plinth(&["plan", "cost.yaml", "--detailed-exitcode"])
        .ok();
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("no change from now"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("more than at the last apply: `orders` changed outside plinth"),
        "{}",
        plan.stdout
    );
    env.plinth(&["destroy", "cost.yaml", "--yes"]).ok();
}

/// A line of a plan over `limit` columns is only acceptable as one long string nothing can
/// break: `key = "…"` or a list element `"…",`.
fn too_wide(line: &str, limit: usize) -> bool {
    if line.chars().count() <= limit {
        return false;
    }
    let value = line.trim_start().trim_start_matches(['+', '-', '~', ' ']);
    let value = value.split_once(" = ").map_or(value, |(_, v)| v);
    let value = value.trim_end_matches(',');
    !(value.starts_with('"')
        && value.ends_with('"')
        && !value[1..value.len() - 1].contains("\", \""))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lab_plan_on_an_80_column_terminal_lays_long_values_out_one_attribute_per_line() {
    let env = Env::new();
    env.write("lab.yaml", include_str!("../../stacks/week2-data-lab.yaml"));
    env.write(
        "data/users.yaml",
        include_str!("../../stacks/data/users.yaml"),
    );
    let mut command = env.command(&["plan", "lab.yaml", "--var", "student=ana"]);
    command.env("COLUMNS", "80");
    let plan = Run::from(command.output().expect("run plinth")).ok();
    let wide: Vec<&str> = plan.stdout.lines().filter(|l| too_wide(l, 100)).collect();
    assert!(
        wide.is_empty(),
        "lines over 100 columns: {wide:#?}\n{}",
        plan.stdout
    );
    let lines: Vec<&str> = plan.stdout.lines().map(str::trim).collect();
    // The indexes, one element per block and one attribute per line.
    assert!(
        lines.contains(&"+ global_secondary_indexes = ["),
        "{}",
        plan.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().eq(["name", "=", "\"by-status\""])),
        "{}",
        plan.stdout
    );
    // Thirty seed items being created: the count and the first three.
    assert!(
        lines.contains(&"# … and 27 more: 30 elements in all"),
        "{}",
        plan.stdout
    );
    // A plan in a pipe without COLUMNS is drawn 100 wide: the same lab, the same rule.
    let piped = env
        .plinth(&["plan", "lab.yaml", "--var", "student=ana"])
        .ok();
    assert!(
        piped.stdout.lines().all(|l| !too_wide(l, 100)),
        "{}",
        piped.stdout
    );
    // `plan --json` is for machines: values stay whole.
    let json = env
        .plinth(&["plan", "lab.yaml", "--var", "student=ana", "--json"])
        .ok();
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let seed = doc["resource_changes"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "seed_users"))
        .unwrap_or_else(|| {
            panic!(
                "seed_users planned: {}",
                &json.stdout[..json.stdout.len().min(3000)]
            )
        });
    assert_eq!(seed["after"]["items"].as_array().map(Vec::len), Some(30));
}
