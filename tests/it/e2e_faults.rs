//! Real AWS throttles, fails and loses answers. Through the emulator's fault injection (8%
//! each service's own throttling answer, 4% 5xx, 3% answers lost after the work was done,
//! 0–30 ms of latency; `tests/emulator/faults.py`), with three seeds: a generated stack and
//! every ready stack apply in one run, hold exactly what they should (nothing twice, nothing
//! missing), re-plan clean and destroy in one run leaving nothing tagged. A kill -9 in the
//! middle of an apply converges too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::e2e_interrupt::kill_9_then_apply_again;
use crate::harness::{groups_of_stack, tables_of_stack, Env, Moto, FAULTS};

const SEEDS: [u64; 3] = [1, 2, 3];

/// An emulator with faults, and a folder whose plinth runs with its default retries.
fn faulty(faults: &str, seed: u64) -> (Moto, Env) {
    let moto = Moto::with_faults(faults, seed);
    let mut env = Env::with_emulator(&moto);
    env.default_attempts = true;
    (moto, env)
}

/// The faults really happened: a test that ran fault-free would prove nothing.
fn assert_faults_injected(moto: &Moto) {
    let counts = moto.fault_counts();
    for fault in ["throttle", "error", "lost"] {
        assert!(
            counts.get(fault).copied().unwrap_or(0) > 0,
            "no {fault} was injected: {counts:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// A generated stack: 30 tables (every third with a GSI), 30 groups whose rules chain to
// each other, 60 seed items.

const TABLES: usize = 30;
const SEEDED: [usize; 2] = [0, 15];
const ITEMS: usize = 30;

fn generated_stack(name: &str) -> String {
    let mut out = format!("stack: {name}\nregion: us-east-1\nresources:\n");
    for i in 0..TABLES {
        out.push_str(&format!(
            "  t{i:02}:\n    type: dynamodb.table\n    name: {name}-t{i:02}\n    partition_key: {{ name: Id, type: S }}\n"
        ));
        if i % 3 == 0 {
            out.push_str("    global_secondary_indexes:\n      - { name: by-email, partition_key: { name: Email, type: S } }\n");
        }
        let next = (i + 1) % TABLES;
        out.push_str(&format!(
            "  sg{i:02}:\n    type: ec2.security_group\n    name: {name}-sg{i:02}\n    ingress:\n      - {{ protocol: tcp, ports: {}, cidr: 10.0.0.0/8 }}\n      - {{ protocol: tcp, ports: 443, security_group: \"${{sg{next:02}.id}}\" }}\n",
            1000 + i
        ));
    }
    for i in SEEDED {
        out.push_str(&format!(
            "  items{i:02}:\n    type: dynamodb.items\n    table: ${{t{i:02}.name}}\n    items:\n"
        ));
        for j in 0..ITEMS {
            out.push_str(&format!(
                "      - {{ Id: item-{j}, Email: u{j}@example.com, N: {j} }}\n"
            ));
        }
    }
    out
}

async fn generated_stack_converges_under_faults(seed: u64) {
    let (moto, env) = faulty(FAULTS, seed);
    let stack = format!("gen{seed}");
    env.write("plinth.yaml", &generated_stack(&stack));
    let apply = env.plinth(&["apply", "--yes"]).ok();
    assert!(apply.stdout.contains("Apply complete!"), "{}", apply.stdout);
    assert_all_ready(&env, &stack, 2 * TABLES + SEEDED.len());

    let ddb = env.dynamodb();
    let expected: Vec<String> = (0..TABLES).map(|i| format!("{stack}-t{i:02}")).collect();
    assert_eq!(
        tables_of_stack(&ddb, &stack).await,
        expected,
        "each table once"
    );
    for i in (0..TABLES).step_by(3) {
        let table = ddb
            .describe_table()
            .table_name(format!("{stack}-t{i:02}"))
            .send()
            .await
            .expect("describe");
        let indexes: Vec<&str> = table
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .filter_map(|g| g.index_name())
            .collect();
        assert_eq!(indexes, ["by-email"], "t{i:02}");
    }
    for i in SEEDED {
        let scan = ddb
            .scan()
            .table_name(format!("{stack}-t{i:02}"))
            .send()
            .await
            .expect("scan");
        assert_eq!(scan.count(), ITEMS as i32, "t{i:02} holds every item once");
    }
    assert_chained_groups(&env, &stack).await;

    env.plinth(&["plan", "--detailed-exitcode"]).ok();
    let destroy = env.plinth(&["destroy", "--yes"]).ok();
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    assert!(tables_of_stack(&ddb, &stack).await.is_empty());
    assert!(groups_of_stack(&env.ec2(), &stack).await.is_empty());
    assert!(env.tagged("us-east-1", Some(&stack)).await.is_empty());
    assert_faults_injected(&moto);
}

/// Every group once, each with its CIDR rule and its rule from the next group.
async fn assert_chained_groups(env: &Env, stack: &str) {
    let ec2 = env.ec2();
    let groups = groups_of_stack(&ec2, stack).await;
    let ids: BTreeMap<String, String> = groups
        .iter()
        .map(|(id, name)| (name.clone(), id.clone()))
        .collect();
    assert_eq!(groups.len(), TABLES, "no group twice: {groups:?}");
    assert_eq!(ids.len(), TABLES, "each group once: {groups:?}");
    let described = ec2
        .describe_security_groups()
        .set_group_ids(Some(ids.values().cloned().collect()))
        .send()
        .await
        .expect("describe groups");
    for group in described.security_groups() {
        let name = group.group_name().unwrap_or_default();
        let i: usize = name
            .rsplit("-sg")
            .next()
            .and_then(|n| n.parse().ok())
            .expect("numbered group");
        let next = &ids[&format!("{stack}-sg{:02}", (i + 1) % TABLES)];
        let mut rules: Vec<(i32, String)> = Vec::new();
        for p in group.ip_permissions() {
            let port = p.from_port().unwrap_or(-1);
            rules.extend(
                p.ip_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ip())
                    .map(|c| (port, c.to_string())),
            );
            rules.extend(
                p.user_id_group_pairs()
                    .iter()
                    .filter_map(|g| g.group_id())
                    .map(|g| (port, g.to_string())),
            );
        }
        rules.sort();
        let mut expected = vec![
            (1000 + i as i32, "10.0.0.0/8".to_string()),
            (443, next.clone()),
        ];
        expected.sort();
        assert_eq!(rules, expected, "{name}: every rule once");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_stack_converges_under_faults_seed_1() {
    generated_stack_converges_under_faults(SEEDS[0]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_stack_converges_under_faults_seed_2() {
    generated_stack_converges_under_faults(SEEDS[1]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_stack_converges_under_faults_seed_3() {
    generated_stack_converges_under_faults(SEEDS[2]).await;
}

// ---------------------------------------------------------------------------------------
// Every ready stack

/// The types the tagging API lists: each of their state entries must be found exactly once.
const LISTED_TYPES: &[&str] = &[
    "dynamodb.table",
    "ec2.security_group",
    "elasticache.cluster",
    "elasticache.replication_group",
    "s3.bucket",
    "lambda.function",
    "cloudfront.distribution",
    "acm.certificate",
    "ec2.instance",
];

fn state_of(env: &Env, stack: &str) -> Value {
    env.state(stack)
}

fn assert_all_ready(env: &Env, stack: &str, count: usize) {
    let state = state_of(env, stack);
    let resources = state["resources"].as_object().expect("resources");
    assert_eq!(resources.len(), count, "{:?}", resources.keys());
    for (name, r) in resources {
        assert_eq!(r["status"]["state"], "ready", "{name}: {}", r["status"]);
    }
}

/// The regions the state's resources live in.
fn regions_of(state: &Value) -> BTreeSet<String> {
    state["resources"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|r| r["region"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What the tagging API finds of the stack, by `plinth:resource`. A replication group's
/// member clusters carry its tags (AWS copies them): they are part of it, not duplicates.
async fn tagged_by_resource(
    env: &Env,
    stack: &str,
    regions: &BTreeSet<String>,
) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for region in regions {
        for (arn, tags) in env.tagged(region, Some(stack)).await {
            if terminated(env, &arn).await {
                continue;
            }
            if let Some(resource) = tags.get("plinth:resource") {
                found.entry(resource.clone()).or_default().push(arn);
            }
        }
    }
    for arns in found.values_mut() {
        // A global service's resources (CloudFront) are found from every region.
        arns.sort();
        arns.dedup();
        if arns.iter().any(|a| a.contains(":replicationgroup:")) {
            arns.retain(|a| !a.contains(":cluster:"));
        }
    }
    found
}

/// Whether the ARN is an instance that is terminated: EC2 (and the tagging API) lists one
/// for an hour, but it is gone.
async fn terminated(env: &Env, arn: &str) -> bool {
    let Some((_, id)) = arn.split_once(":instance/") else {
        return false;
    };
    let out = env
        .ec2()
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("describe instance");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .all(|i| {
            i.state().and_then(|s| s.name())
                == Some(&aws_sdk_ec2::types::InstanceStateName::Terminated)
        })
}

async fn ready_stack_converges_under_faults(moto: &Moto, env: &Env, file: &str) {
    let text = std::fs::read_to_string(env.path(file)).expect("stack file");
    let stack = text
        .lines()
        .find_map(|l| l.strip_prefix("stack: "))
        .expect("a stack name")
        .trim()
        .to_string();
    let vars = env.lab_vars(&text).await;
    let with_vars = |args: &[&'static str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.insert(1, file);
        all.extend(vars.iter().map(String::as_str));
        all
    };
    let apply = env.plinth(&with_vars(&["apply", "--yes"])).ok();
    assert!(
        apply.stdout.contains("Apply complete!"),
        "{file}: {}",
        apply.stdout
    );
    let state = state_of(env, &stack);
    let resources = state["resources"].as_object().expect("resources").clone();
    for (name, r) in &resources {
        assert_eq!(r["status"]["state"], "ready", "{file}: {name}");
    }
    let regions = regions_of(&state);
    let found = tagged_by_resource(env, &stack, &regions).await;
    for (name, r) in &resources {
        let listed = r["type"]
            .as_str()
            .is_some_and(|t| LISTED_TYPES.contains(&t));
        let arns = found.get(name).cloned().unwrap_or_default();
        if listed {
            assert_eq!(
                arns.len(),
                1,
                "{file}: `{name}` exists exactly once: {arns:?}"
            );
        }
    }
    for name in found.keys() {
        assert!(
            resources.contains_key(name),
            "{file}: `{name}` is tagged but not in state"
        );
    }

    env.plinth(&with_vars(&["plan", "--detailed-exitcode"]))
        .ok();
    let destroy = env.plinth(&with_vars(&["destroy", "--yes"])).ok();
    // Lambda@Edge functions stay pending for a while (CloudFront's replicas): the state
    // says so; anything else tagged is a leftover.
    let after = state_of(env, &stack);
    let pending: BTreeSet<String> = after["resources"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for (name, r) in after["resources"].as_object().into_iter().flatten() {
        assert_eq!(
            r["status"]["state"], "pending_delete",
            "{file}: {name} was not destroyed"
        );
    }
    let left = tagged_by_resource(env, &stack, &regions).await;
    for name in left.keys() {
        assert!(
            pending.contains(name),
            "{file}: `{name}` is left behind: {}",
            destroy.stdout
        );
    }
    let _ = moto;
}

async fn every_ready_stack_converges_under_faults(seed: u64) {
    let (moto, env) = faulty(FAULTS, seed);
    env.copy_from_stacks(".", ".");
    let mut files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks"))
            .expect("stacks/")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".yaml"))
            .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for file in &files {
        ready_stack_converges_under_faults(&moto, &env, file).await;
    }
    assert_faults_injected(&moto);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_ready_stack_converges_under_faults_seed_1() {
    every_ready_stack_converges_under_faults(SEEDS[0]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_ready_stack_converges_under_faults_seed_2() {
    every_ready_stack_converges_under_faults(SEEDS[1]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_ready_stack_converges_under_faults_seed_3() {
    every_ready_stack_converges_under_faults(SEEDS[2]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_in_the_middle_of_an_apply_under_faults_then_apply_again_converges() {
    // The latency makes "the middle" last long enough to hit.
    let faults = "throttle=0.08,error=0.04,lost=0.03,latency=30-50ms";
    let (moto, env) = faulty(faults, 4);
    kill_9_then_apply_again(&env).await;
    assert_faults_injected(&moto);
}
