//! The whole life of a stack against the emulator: apply, check what exists, re-plan with
//! no changes, change in place, replace, destroy, and check that nothing is left.

use crate::harness::{groups_of_stack, tables_of_stack, Env, Moto};

const STACK: &str = include_str!("../../stacks/week2-data-lab.yaml");
const USERS: &str = include_str!("../../stacks/data/users.yaml");

fn lab_env(moto: &Moto) -> Env {
    let env = Env::with_emulator(moto);
    env.write("lab.yaml", STACK);
    env.write("data/users.yaml", USERS);
    env
}

fn edit(env: &Env, from: &str, to: &str) {
    let path = env.path("lab.yaml");
    let text = std::fs::read_to_string(&path).expect("read stack");
    assert!(text.contains(from), "the stack no longer contains {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write stack");
}

async fn ingress_ports(env: &Env, group_name: &str) -> Vec<(i32, i32, Vec<String>)> {
    let out = env
        .ec2()
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-name")
                .values(group_name)
                .build(),
        )
        .send()
        .await
        .expect("describe group");
    let group = out
        .security_groups()
        .first()
        .cloned()
        .expect("group exists");
    let mut rules: Vec<(i32, i32, Vec<String>)> = group
        .ip_permissions()
        .iter()
        .map(|p| {
            let mut sources: Vec<String> = p
                .user_id_group_pairs()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_string))
                .collect();
            sources.extend(
                p.ip_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ip().map(str::to_string)),
            );
            sources.extend(
                p.ipv6_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ipv6().map(str::to_string)),
            );
            sources.sort();
            (
                p.from_port().unwrap_or(-1),
                p.to_port().unwrap_or(-1),
                sources,
            )
        })
        .collect();
    rules.sort();
    rules
}

#[tokio::test(flavor = "multi_thread")]
async fn the_week2_lab_applies_replans_clean_changes_in_place_replaces_and_destroys_to_nothing() {
    let moto = Moto::start(0);
    let env = lab_env(&moto);
    let ddb = env.dynamodb();
    let ec2 = env.ec2();

    // Apply: every resource exists in the emulator as declared.
    env.plinth(&["apply", "lab.yaml", "--yes"]).ok();
    let orders = ddb
        .describe_table()
        .table_name("demo-orders")
        .send()
        .await
        .expect("orders table");
    let table = orders.table().expect("table description");
    let mut gsis: Vec<&str> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name())
        .collect();
    gsis.sort();
    assert_eq!(gsis, ["by-product", "by-status"]);
    assert_eq!(table.local_secondary_indexes().len(), 1);
    assert_eq!(
        table
            .stream_specification()
            .and_then(|s| s.stream_view_type())
            .map(|v| v.as_str()),
        Some("NEW_AND_OLD_IMAGES")
    );
    let ttl = ddb
        .describe_time_to_live()
        .table_name("demo-orders")
        .send()
        .await
        .expect("ttl");
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|t| t.attribute_name()),
        Some("ExpiresAt")
    );
    let users = ddb
        .scan()
        .table_name("demo-users")
        .send()
        .await
        .expect("scan users");
    assert_eq!(users.count(), 30, "30 seed items");
    let alice = ddb
        .get_item()
        .table_name("demo-users")
        .key(
            "UserId",
            aws_sdk_dynamodb::types::AttributeValue::S("u-101".into()),
        )
        .send()
        .await
        .expect("get item");
    let item = alice.item().expect("u-101 exists");
    assert_eq!(
        item.get("Name")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("Alice")
    );
    assert_eq!(
        item.get("Cohort")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some("2025")
    );
    assert_eq!(
        item.get("Active").and_then(|v| v.as_bool().ok()),
        Some(&false)
    );
    let groups = groups_of_stack(&ec2, "week2-data-lab").await;
    assert_eq!(groups.len(), 3, "{groups:?}");
    let id_of = |name: &str| {
        groups
            .iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| id.clone())
            .expect("group")
    };
    let (app, cache, web) = (id_of("demo-app"), id_of("demo-cache"), id_of("demo-web"));
    // The two groups that refer to each other both carry their rule.
    assert_eq!(
        ingress_ports(&env, "demo-cache").await,
        vec![(6379, 6379, vec![app.clone()])]
    );
    assert_eq!(
        ingress_ports(&env, "demo-app").await,
        vec![
            (8080, 8080, vec![web.clone()]),
            (9000, 9010, vec![cache.clone()])
        ]
    );

    // Re-plan: nothing to do.
    let replan = env
        .plinth(&["plan", "lab.yaml", "--detailed-exitcode"])
        .ok();
    assert!(replan.stdout.contains("No changes."), "{}", replan.stdout);

    // In place: a third GSI and a changed rule.
    edit(
        &env,
        "      - name: by-product\n",
        "      - name: by-region\n        partition_key: { name: Region, type: S }\n        read_capacity: 1\n        write_capacity: 1\n      - name: by-product\n",
    );
    edit(
        &env,
        "ports: 6379, security_group",
        "ports: 6380, security_group",
    );
    let plan = env
        .plinth(&["plan", "lab.yaml", "--detailed-exitcode"])
        .expect_code(2);
    assert!(
        plan.stdout.contains(
            "~ orders (dynamodb.table, us-east-1) [demo-orders] will be updated in place"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("~ cache_sg (ec2.security_group, us-east-1)"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 2 to change, 0 to destroy."),
        "{}",
        plan.stdout
    );
    env.plinth(&["apply", "lab.yaml", "--yes"]).ok();
    let orders = ddb
        .describe_table()
        .table_name("demo-orders")
        .send()
        .await
        .expect("orders table");
    assert_eq!(
        orders.table().map(|t| t.global_secondary_indexes().len()),
        Some(3)
    );
    assert_eq!(
        ingress_ports(&env, "demo-cache").await,
        vec![(6380, 6380, vec![app.clone()])]
    );
    assert_eq!(
        groups_of_stack(&ec2, "week2-data-lab").await.len(),
        3,
        "updated in place, not recreated"
    );
    env.plinth(&["plan", "lab.yaml", "--detailed-exitcode"])
        .ok();

    // Replacement: a new description forces a new web group; its dependents follow it.
    edit(
        &env,
        "description: web tier, open to the internet on HTTPS",
        "description: web tier v2",
    );
    let plan = env
        .plinth(&["plan", "lab.yaml", "--detailed-exitcode"])
        .expect_code(2);
    assert!(
        plan.stdout
            .contains("-/+ web_sg (ec2.security_group, us-east-1)"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("description forces replacement"),
        "{}",
        plan.stdout
    );
    env.plinth(&["apply", "lab.yaml", "--yes"]).ok();
    let groups = groups_of_stack(&ec2, "week2-data-lab").await;
    let new_web = groups
        .iter()
        .find(|(_, n)| n == "demo-web")
        .map(|(id, _)| id.clone())
        .expect("web group");
    assert_ne!(new_web, web, "the web group was replaced");
    assert_eq!(groups.len(), 3, "the old web group is gone: {groups:?}");
    assert_eq!(
        ingress_ports(&env, "demo-app").await,
        vec![
            (8080, 8080, vec![new_web]),
            (9000, 9010, vec![cache.clone()])
        ]
    );
    env.plinth(&["plan", "lab.yaml", "--detailed-exitcode"])
        .ok();

    // Destroy: nothing tagged with the stack remains.
    env.plinth(&["destroy", "lab.yaml", "--yes"]).ok();
    assert!(groups_of_stack(&ec2, "week2-data-lab").await.is_empty());
    assert!(tables_of_stack(&ddb, "week2-data-lab").await.is_empty());
    assert!(ddb
        .list_tables()
        .send()
        .await
        .expect("list")
        .table_names()
        .is_empty());
    let state = env.state("week2-data-lab");
    assert_eq!(state["resources"].as_object().map(|m| m.len()), Some(0));
    assert_eq!(state["outputs"].as_object().map(|m| m.len()), Some(0));
}

/// Every stack in `stacks/` and `examples/`: apply, no-op plan, destroy, teardown verified
/// (nothing tagged with the stack left, by the tagging API and by listing tables and groups).
#[tokio::test(flavor = "multi_thread")]
async fn every_ready_stack_and_example_applies_replans_clean_and_destroys_to_nothing() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<std::path::PathBuf> = ["stacks", "examples"]
        .iter()
        .flat_map(|dir| {
            std::fs::read_dir(root.join(dir))
                .expect("folder")
                .flatten()
                .map(|e| e.path())
        })
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let (ddb, ec2) = (env.dynamodb(), env.ec2());
    for file in &files {
        let path = file.to_str().expect("utf-8 path");
        let state_dir = env.path("state");
        let state_dir = state_dir.to_str().expect("utf-8 path");
        let text = std::fs::read_to_string(file).expect("read stack");
        let vars = env.lab_vars(&text).await;
        let args = |cmd: &'static str| {
            let mut args = vec![cmd, path, "--state-dir", state_dir, "--var", "student=e2e"];
            args.extend(vars.iter().map(String::as_str));
            args
        };
        let mut apply = args("apply");
        apply.push("--yes");
        env.plinth(&apply).ok();
        let mut plan = args("plan");
        plan.push("--detailed-exitcode");
        let replan = env.plinth(&plan);
        assert_eq!(
            replan.code, 0,
            "{path} re-plans with changes:\n{}",
            replan.stdout
        );
        // Nobody touched it: drift must find nothing (a false alarm would send an
        // instructor after students who did nothing).
        let drift = env.plinth(&args("drift"));
        assert_eq!(drift.code, 0, "{path} drifts untouched:\n{}", drift.all());
        let mut destroy = args("destroy");
        destroy.push("--yes");
        let mut teardown = env.plinth(&destroy).ok();
        if teardown.stdout.contains("pending deletion") {
            // Lambda@Edge: AWS (and the emulator, briefly) keeps the replicas a while.
            tokio::time::sleep(std::time::Duration::from_secs(4)).await;
            teardown = env.plinth(&destroy).ok();
        }
        assert!(
            teardown
                .stdout
                .contains("Teardown verified: nothing tagged with"),
            "{path}: teardown not verified:\n{}",
            teardown.stdout
        );
        let stack_name = text
            .lines()
            .find_map(|l| l.strip_prefix("stack: ").map(|s| s.trim().to_string()))
            .expect("stack name");
        assert!(
            tables_of_stack(&ddb, &stack_name).await.is_empty(),
            "{path} left tables"
        );
        assert!(
            groups_of_stack(&ec2, &stack_name).await.is_empty(),
            "{path} left groups"
        );
    }
}

/// What on a real account would wait for a person: a certificate whose validation records
/// nobody writes (no `validation_zone`, or one that exists only after apply — a zone made by
/// the stack is not delegated to), a zone the stack creates (its name servers must be set at
/// the registrar), an instance that needs a key pair made by hand.
fn manual_steps(plan: &serde_json::Value) -> Vec<String> {
    let changes = plan["resource_changes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut steps = Vec::new();
    for change in &changes {
        let (name, kind, after) = (&change["name"], &change["type"], &change["after"]);
        let unknown = |key: &str| {
            change["after_unknown"]
                .as_array()
                .is_some_and(|u| u.iter().any(|k| k == key))
        };
        match kind.as_str().unwrap_or_default() {
            "acm.certificate"
                if after["validation_zone"].is_null() || unknown("validation_zone") =>
            {
                steps.push(format!(
                    "{name}: its validation records are written by hand"
                ))
            }
            "route53.zone" if after["lookup"] != true => steps.push(format!(
                "{name}: a new zone's name servers are set at the registrar"
            )),
            "ec2.instance" if !after["key_name"].is_null() => {
                steps.push(format!("{name}: its key pair is made by hand"))
            }
            _ => {}
        }
    }
    steps
}

/// Every ready stack, planned as it is shipped (the custom-domain one with the zone and
/// name it asks for), holds nothing that waits for a person on a real account.
#[tokio::test(flavor = "multi_thread")]
async fn every_ready_stack_plans_nothing_that_needs_a_manual_step() {
    let env = Env::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&root)
        .expect("stacks/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut planned = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read stack");
        let vars = env.lab_vars(&text).await;
        let path = file.to_str().expect("utf-8 path");
        let state_dir = env.path("manual-steps");
        let mut args = vec!["plan", path, "--json", "--state-dir"];
        args.push(state_dir.to_str().expect("utf-8 path"));
        args.extend(vars.iter().map(String::as_str));
        let run = env.plinth(&args).ok();
        let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("plan JSON");
        let steps = manual_steps(&plan);
        assert!(steps.is_empty(), "{path}: {steps:?}");
        planned += 1;
    }
    assert!(planned >= 7, "{files:?}");
    // The check itself: a certificate left to be validated by hand is one.
    env.write(
        "by-hand.yaml",
        "stack: by-hand\nregion: us-east-1\nresources:\n  cert:\n    type: acm.certificate\n    domain_name: www.example.org\n",
    );
    let run = env.plinth(&["plan", "by-hand.yaml", "--json"]).ok();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("plan JSON");
    assert_eq!(manual_steps(&plan).len(), 1, "{}", run.stdout);
}

/// `name_prefix` (issue 13, item 7): names unknown until apply, completed once with a random
/// suffix and kept; a replacement of a unique name made before the old one goes, under a new
/// name; a prefix another type would refuse is said at plan time.
#[tokio::test(flavor = "multi_thread")]
async fn names_given_by_prefix_are_generated_once_kept_and_let_a_replacement_come_first() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    let stack = |key: &str| {
        format!(
            "stack: prefixed\nregion: us-east-1\nresources:\n  orders:\n    type: dynamodb.table\n    name_prefix: orders-\n    partition_key: {{ name: {key}, type: S }}\n    lifecycle: {{ create_before_destroy: true }}\n  site:\n    type: s3.bucket\n    name_prefix: lab-site-\n  web:\n    type: ec2.security_group\n    name_prefix: web-\n    ingress:\n      - {{ protocol: tcp, ports: 443, cidr: 0.0.0.0/0 }}\noutputs:\n  table: ${{orders.name}}\n"
        )
    };
    env.write("plinth.yaml", &stack("Id"));
    let plan = env.plinth(&["plan"]).ok();
    assert!(
        plan.stdout
            .contains("+ name                   = (known after apply)")
            || plan.stdout.contains("+ name = (known after apply)"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("name_prefix"), "{}", plan.stdout);
    env.plinth(&["apply", "--yes"]).ok();

    let generated = |prefix: &str, names: &[String]| -> String {
        let found: Vec<&String> = names.iter().filter(|n| n.starts_with(prefix)).collect();
        assert_eq!(found.len(), 1, "{prefix}: {names:?}");
        let suffix = &found[0][prefix.len()..];
        assert!(
            suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit()),
            "{}",
            found[0]
        );
        found[0].clone()
    };
    let ddb = env.dynamodb();
    let tables = tables_of_stack(&ddb, "prefixed").await;
    let first = generated("orders-", &tables);
    let buckets: Vec<String> = env
        .s3()
        .list_buckets()
        .send()
        .await
        .expect("buckets")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    generated("lab-site-", &buckets);
    let groups: Vec<String> = groups_of_stack(&env.ec2(), "prefixed")
        .await
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    generated("web-", &groups);

    // Kept: the next plan changes nothing, and the output is the name made.
    let replan = env.plinth(&["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "{}", replan.stdout);
    let output = env.plinth(&["output", "table"]).ok();
    assert!(output.stdout.contains(&first), "{}", output.stdout);

    // A new key replaces the table: the new one gets a new name, so it is made first.
    env.write("plinth.yaml", &stack("OrderId"));
    let plan = env.plinth(&["plan"]).ok();
    assert!(
        plan.stdout.contains("create before destroy") || plan.stdout.contains("+/-"),
        "{}",
        plan.stdout
    );
    env.plinth(&["apply", "--yes"]).ok();
    let tables = tables_of_stack(&ddb, "prefixed").await;
    let second = generated("orders-", &tables);
    assert_ne!(first, second, "a replacement has a name of its own");

    env.plinth(&["destroy", "--yes"]).ok();
    assert!(tables_of_stack(&ddb, "prefixed").await.is_empty());

    // The prefix is checked by the type's own rules.
    env.write(
        "bad.yaml",
        "stack: bad-prefix\nregion: us-east-1\nresources:\n  b:\n    type: s3.bucket\n    name_prefix: Lab_Site-\n  c:\n    type: s3.bucket\n    name: fixed-name-e2e\n    name_prefix: also-\n",
    );
    let bad = env.plinth(&["plan", "bad.yaml"]);
    assert_ne!(bad.code, 0);
    let text = format!("{}{}", bad.stdout, bad.stderr);
    assert!(text.contains("has both `name` and `name_prefix`"), "{text}");
}
