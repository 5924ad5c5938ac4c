//! Teardown that is verified, sweep and expiry, end to end against the emulator.
//!
//! - `destroy` asks the tagging API what is left of the environment: nothing ("Teardown
//!   verified"), a Lambda@Edge function AWS is still deleting (pending, exit 0), or
//!   something the state does not know (exit 3).
//! - `sweep` finds environments by their tags: those whose state file is gone (removed by
//!   type, in teardown order, until nothing tagged is left) and expired ones (removed
//!   through their state), with filters; without `--yes` it changes nothing.
//!
//! Tests that sweep without a `--stack` filter start their own emulator: a sweep sees every
//! environment in the account, and other tests' environments are not in this test's state.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::{ResourceType as Ec2ResourceType, Tag, TagSpecification};

use crate::harness::{tables_of_stack, Env, Moto, Run};

const ACCOUNT: &str = "123456789012";

/// ARNs the tagging API finds in `region` with `plinth:stack` (any value, or `stack`).
async fn tagged(env: &Env, region: &str, stack: Option<&str>) -> Vec<String> {
    env.tagged(region, stack)
        .await
        .into_iter()
        .map(|(arn, _)| arn)
        .collect()
}

/// A table and a security group, named after the stack and workspace (`<stack>-<ws>-…`).
fn small_stack(stack: &str, extra: &str) -> String {
    format!(
        "stack: {stack}\nregion: us-east-1\n{extra}resources:\n  table:\n    type: dynamodb.table\n    name: \"{stack}-${{workspace}}-table\"\n    partition_key: {{ name: Id, type: S }}\n    billing_mode: on_demand\n  group:\n    type: ec2.security_group\n    name: \"{stack}-${{workspace}}-group\"\n    description: sweep test\n"
    )
}

async fn table_exists(env: &Env, name: &str) -> bool {
    env.dynamodb()
        .describe_table()
        .table_name(name)
        .send()
        .await
        .is_ok()
}

/// A security group made with the SDK, tagged as if `stack`/`workspace` had made it.
async fn group_by_hand(env: &Env, name: &str, stack: &str, workspace: &str) -> String {
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    env.ec2()
        .create_security_group()
        .group_name(name)
        .description("made by hand")
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(Ec2ResourceType::SecurityGroup)
                .tags(tag("plinth:stack", stack))
                .tags(tag("plinth:workspace", workspace))
                .build(),
        )
        .send()
        .await
        .expect("create a group by hand")
        .group_id()
        .expect("group id")
        .to_string()
}

fn group_arn(id: &str) -> String {
    format!("arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/{id}")
}

// ---------------------------------------------------------------------------------------
// Verified teardown
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn destroy_of_a_clean_stack_says_the_teardown_is_verified() {
    let env = Env::new();
    env.write("plinth.yaml", &small_stack("verified-clean", ""));
    env.plinth(&["apply", "--yes"]).ok();
    assert_eq!(
        tagged(&env, "us-east-1", Some("verified-clean"))
            .await
            .len(),
        2
    );

    let destroy = env.plinth(&["destroy", "--yes", "--stats"]).ok();
    assert!(
        destroy.stdout.contains(
            "Teardown verified: nothing tagged with stack `verified-clean` / workspace `default` is left in us-east-1 of account 123456789012."
        ),
        "{}",
        destroy.stdout
    );
    assert!(
        destroy
            .stderr
            .contains("\"Resource Groups Tagging API.GetResources\":1"),
        "one region, one call:\n{}",
        destroy.stderr
    );
    assert!(tagged(&env, "us-east-1", Some("verified-clean"))
        .await
        .is_empty());
    assert!(!table_exists(&env, "verified-clean-default-table").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn something_tagged_by_hand_is_unknown_to_state_and_destroy_exits_3_until_swept() {
    let env = Env::new();
    env.write("plinth.yaml", &small_stack("verified-stray", ""));
    env.plinth(&["apply", "--yes"]).ok();
    let stray = group_by_hand(&env, "verified-stray-extra", "verified-stray", "default").await;
    // Another workspace's resource is not this environment's.
    let other = group_by_hand(&env, "verified-stray-blue", "verified-stray", "blue").await;

    let destroy = env.plinth(&["destroy", "--yes"]).expect_code(3);
    assert!(
        destroy.stdout.contains(
            "Teardown check: 1 resource tagged with stack `verified-stray` / workspace `default` is still in AWS:"
        ),
        "{}",
        destroy.stdout
    );
    let line = destroy
        .stdout
        .lines()
        .find(|l| l.contains(&group_arn(&stray)))
        .unwrap_or_else(|| panic!("the stray is listed:\n{}", destroy.stdout));
    assert!(line.contains("unknown to state"), "{line}");
    assert!(!destroy.stdout.contains(&other), "{}", destroy.stdout);
    assert!(destroy
        .stderr
        .contains("1 resource tagged with stack `verified-stray`"));
    assert!(
        destroy.stderr.contains("plinth sweep"),
        "{}",
        destroy.stderr
    );
    // Everything the state knew is gone all the same.
    assert!(!table_exists(&env, "verified-stray-default-table").await);
    let mut both = vec![group_arn(&other), group_arn(&stray)];
    both.sort();
    assert_eq!(
        tagged(&env, "us-east-1", Some("verified-stray")).await,
        both
    );

    // The sweep it suggests removes the stray, and only this workspace's.
    let sweep = env
        .plinth(&[
            "sweep",
            "--stack",
            "verified-stray",
            "--workspace",
            "default",
            "--yes",
        ])
        .ok();
    assert!(sweep.stdout.contains("Sweep complete!"), "{}", sweep.stdout);
    assert_eq!(
        tagged(&env, "us-east-1", Some("verified-stray")).await,
        [group_arn(&other)]
    );
    let again = env.plinth(&["destroy", "--yes"]).ok();
    assert!(
        again.stdout.contains("Nothing to destroy"),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("Teardown verified"),
        "{}",
        again.stdout
    );
}

/// The week-4 site (bucket with files, OAC, cache policy, role, Lambda@Edge function,
/// distribution) in `site.yaml`.
fn week4(env: &Env) {
    env.copy_from_stacks("week4-static-site.yaml", "site.yaml");
    env.copy_from_stacks("site", "site");
    env.copy_from_stacks("edge", "edge");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lambda_edge_function_still_being_deleted_is_reported_pending_and_destroy_exits_0() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    week4(&env);
    env.plinth(&["apply", "site.yaml", "--var", "student=vp", "--yes"])
        .ok();
    let destroy = env
        .plinth(&["destroy", "site.yaml", "--var", "student=vp", "--yes"])
        .ok();
    let function = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:vp-week4-rewrite");
    assert!(
        destroy.stdout.contains(
            "Teardown check: 1 resource tagged with stack `week4-site` / workspace `default` is still in AWS:"
        ),
        "{}",
        destroy.stdout
    );
    let line = destroy
        .stdout
        .lines()
        .find(|l| l.contains(&function))
        .unwrap_or_else(|| panic!("the function is listed:\n{}", destroy.stdout));
    assert!(
        line.contains("pending deletion (`rewrite`: Lambda@Edge replicas"),
        "{line}"
    );
    assert!(
        !destroy.stdout.contains("unknown to state"),
        "{}",
        destroy.stdout
    );

    // Once AWS lets go of it, the next destroy deletes it and the teardown is verified in
    // every region the site used.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let again = env
        .plinth(&["destroy", "site.yaml", "--var", "student=vp", "--yes"])
        .ok();
    assert!(
        again.stdout.contains(
            "Teardown verified: nothing tagged with stack `week4-site` / workspace `default` is left in eu-west-1, us-east-1 of account 123456789012."
        ),
        "{}",
        again.stdout
    );
    assert!(tagged(&env, "us-east-1", None).await.is_empty());
}

// ---------------------------------------------------------------------------------------
// Sweep: what no state knows
// ---------------------------------------------------------------------------------------

/// A table with an item, two groups that admit each other, and a Redis cluster.
const DATA: &str = r#"
stack: sweep-data
region: us-east-1
resources:
  users:
    type: dynamodb.table
    name: sw-users
    partition_key: { name: UserId, type: S }
    billing_mode: on_demand
  seed:
    type: dynamodb.items
    table: ${users.name}
    items:
      - { UserId: u-1, Name: Ana }
  app_sg:
    type: ec2.security_group
    name: sw-app
    description: app
    ingress:
      - { protocol: tcp, ports: 9000, security_group: "${cache_sg.id}" }
  cache_sg:
    type: ec2.security_group
    name: sw-cache
    description: cache
    ingress:
      - { protocol: tcp, ports: 6379, security_group: "${app_sg.id}" }
  redis:
    type: elasticache.cluster
    cluster_id: sw-redis
    engine: redis
    node_type: cache.t3.micro
    security_group_ids: ["${cache_sg.id}"]
"#;

/// The rows of a sweep's table: (stack, workspace, why).
fn listed(run: &Run) -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in run.stdout.lines() {
        if line.starts_with("  STACK") {
            in_table = true;
            continue;
        }
        if !in_table || line.trim().is_empty() {
            in_table = in_table && !line.trim().is_empty();
            continue;
        }
        if line.starts_with("      ") {
            continue;
        }
        let cells: Vec<&str> = line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        if cells.len() >= 3 {
            rows.push((cells[0].into(), cells[1].into(), cells[2].into()));
        }
    }
    rows
}

/// The resource lines listed under one environment's row.
fn resources_of(run: &Run, stack: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in run.stdout.lines() {
        if line.starts_with("      ") {
            if inside {
                out.push(line.trim().to_string());
            }
            continue;
        }
        inside = line.starts_with(&format!("  {stack} "));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_state_files_are_deleted_sweep_lists_and_then_removes_everything_tagged() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    week4(&env);
    env.write("data.yaml", DATA);
    env.plinth(&["apply", "site.yaml", "--var", "student=sw", "--yes"])
        .ok();
    env.plinth(&["apply", "data.yaml", "--yes"]).ok();
    let site_state = env.state("week4-site");
    let dist_id = site_state["resources"]["cdn"]["id"]
        .as_str()
        .expect("distribution id")
        .to_string();
    std::fs::remove_dir_all(env.path(".plinth")).expect("lose the state");

    // The dry run lists both environments with their resources and changes nothing.
    let regions = ["--region", "us-east-1", "--region", "eu-west-1"];
    let dry = env.plinth(&[&["sweep"][..], &regions].concat()).ok();
    assert_eq!(
        listed(&dry),
        [
            (
                "sweep-data".into(),
                "default".into(),
                "orphan (no state)".into()
            ),
            (
                "week4-site".into(),
                "default".into(),
                "orphan (no state)".into()
            ),
        ],
        "{}",
        dry.stdout
    );
    let site = resources_of(&dry, "week4-site");
    let types: Vec<&str> = site
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        types,
        [
            "cloudfront.distribution",
            "lambda.function",
            "s3.bucket",
            "iam.role"
        ],
        "in teardown order:\n{}",
        dry.stdout
    );
    assert!(site[0].contains(&format!(
        "arn:aws:cloudfront::{ACCOUNT}:distribution/{dist_id}"
    )));
    assert!(site
        .iter()
        .any(|l| l.contains(&format!("arn:aws:iam::{ACCOUNT}:role/sw-week4-edge"))));
    let data = resources_of(&dry, "sweep-data");
    let types: Vec<&str> = data
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        types,
        [
            "elasticache.cluster",
            "dynamodb.table",
            "ec2.security_group",
            "ec2.security_group"
        ],
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("Dry run: nothing was changed."));
    assert!(env
        .cloudfront()
        .get_distribution()
        .id(&dist_id)
        .send()
        .await
        .is_ok());
    assert!(table_exists(&env, "sw-users").await);
    assert_eq!(tagged(&env, "us-east-1", None).await.len(), 7);

    // --yes: everything goes in teardown order; the edge function is refused for a while
    // (CloudFront still holds its replicas) and reported as pending.
    let sweep = env
        .plinth(&[&["sweep", "--yes"][..], &regions].concat())
        .ok();
    assert!(
        sweep.stdout.contains("Still being deleted by AWS (1)")
            && sweep.stdout.contains("Lambda@Edge replicas"),
        "{}",
        sweep.stdout
    );
    assert!(
        env.cloudfront()
            .get_distribution()
            .id(&dist_id)
            .send()
            .await
            .is_err(),
        "the distribution was disabled, then deleted"
    );
    let s3 = env.s3();
    let bucket = format!("sw-week4-site-{ACCOUNT}");
    assert!(
        s3.head_bucket().bucket(&bucket).send().await.is_err(),
        "the bucket was emptied of its files and deleted"
    );
    assert!(env
        .iam()
        .get_role()
        .role_name("sw-week4-edge")
        .send()
        .await
        .is_err());
    assert!(env
        .elasticache()
        .describe_cache_clusters()
        .cache_cluster_id("sw-redis")
        .send()
        .await
        .is_err());
    assert!(crate::harness::groups_of_stack(&env.ec2(), "sweep-data")
        .await
        .is_empty());
    assert!(tables_of_stack(&env.dynamodb(), "sweep-data")
        .await
        .is_empty());

    // The next sweep finishes the function; then nothing tagged is left anywhere.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let again = env
        .plinth(&[&["sweep", "--yes"][..], &regions].concat())
        .ok();
    assert_eq!(listed(&again).len(), 1, "{}", again.stdout);
    assert!(
        !again.stdout.contains("Still being deleted"),
        "{}",
        again.stdout
    );
    assert!(env
        .lambda()
        .get_function()
        .function_name("sw-week4-rewrite")
        .send()
        .await
        .is_err());
    for region in ["us-east-1", "eu-west-1"] {
        assert_eq!(
            tagged(&env, region, None).await,
            Vec::<String>::new(),
            "{region}"
        );
    }
    let last = env.plinth(&[&["sweep"][..], &regions].concat()).ok();
    assert!(
        last.stdout.starts_with("Nothing to sweep"),
        "{}",
        last.stdout
    );
}

// ---------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sweep_expired_removes_an_expired_environment_through_its_state_and_leaves_a_live_one() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.write(
        "short.yaml",
        &small_stack("short-lived", "expires_after: 1s\n"),
    );
    env.write(
        "long.yaml",
        &small_stack("long-lived", "expires_after: 8h\n"),
    );
    env.write("lost.yaml", &small_stack("no-state", ""));
    env.plinth(&["apply", "short.yaml", "--yes"]).ok();
    env.plinth(&["apply", "long.yaml", "--yes"]).ok();
    env.plinth(&["apply", "lost.yaml", "--yes"]).ok();
    std::fs::remove_dir_all(env.path(".plinth/no-state")).expect("lose one state");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // plan and show say it has expired; its resources carry both stamps.
    let show = env.plinth(&["show", "short.yaml"]).ok();
    assert!(show.stdout.contains("expired"), "{}", show.stdout);
    let state = env.state("short-lived");
    let expires = state["expires_at"]
        .as_str()
        .expect("expires_at")
        .to_string();
    let created = state["created_at"]
        .as_str()
        .expect("created_at")
        .to_string();
    let table_tags = &state["resources"]["table"]["props"]["tags"];
    assert_eq!(table_tags["plinth:expires-at"], expires.as_str());
    assert_eq!(table_tags["plinth:created-at"], created.as_str());
    let plan = env
        .plinth(&["plan", "short.yaml", "--detailed-exitcode"])
        .ok();
    assert!(
        plan.stdout
            .contains(&format!("Environment expires at {expires} (expired ")),
        "the stamp is kept, and the plan says it has passed:\n{}",
        plan.stdout
    );

    // --expired: only the expired environment, not the live one nor the one without state.
    let dry = env.plinth(&["sweep", "--expired"]).ok();
    let rows = listed(&dry);
    assert_eq!(rows.len(), 1, "{}", dry.stdout);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("short-lived", "default")
    );
    assert!(
        rows[0].2.starts_with("expired ") && rows[0].2.ends_with(" ago"),
        "{rows:?}"
    );
    let lines = resources_of(&dry, "short-lived");
    assert!(
        lines.iter().any(|l| l.starts_with("dynamodb.table")
            && l.contains("table/short-lived-default-table (in state as `table`)")),
        "{lines:?}"
    );
    assert!(
        table_exists(&env, "short-lived-default-table").await,
        "a dry run"
    );

    let sweep = env.plinth(&["sweep", "--expired", "--yes"]).ok();
    assert!(
        sweep.stdout.contains(
            "- table (dynamodb.table, us-east-1) [short-lived-default-table] will be destroyed"
        ),
        "through the state's destroy plan:\n{}",
        sweep.stdout
    );
    assert!(!table_exists(&env, "short-lived-default-table").await);
    assert!(tagged(&env, "us-east-1", Some("short-lived"))
        .await
        .is_empty());
    let state = env.state("short-lived");
    assert_eq!(state["resources"].as_object().map(|m| m.len()), Some(0));
    assert!(table_exists(&env, "long-lived-default-table").await);
    assert!(
        table_exists(&env, "no-state-default-table").await,
        "not expired"
    );

    // From cron: nothing left to do is a quiet success.
    let again = env.plinth(&["sweep", "--expired", "--yes"]).ok();
    assert!(
        again
            .stdout
            .starts_with("Nothing to sweep in us-east-1: no expired environment"),
        "{}",
        again.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_environment_whose_state_forbids_destroying_it_is_kept_and_reported() {
    let env = Env::new();
    env.write(
        "kept.yaml",
        "stack: sweep-kept\nregion: us-east-1\nexpires_after: 1s\nresources:\n  table:\n    type: dynamodb.table\n    name: sweep-kept-table\n    partition_key: { name: Id, type: S }\n    lifecycle: { prevent_destroy: true }\n",
    );
    env.plinth(&["apply", "kept.yaml", "--yes"]).ok();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sweep = env
        .plinth(&["sweep", "--expired", "--stack", "sweep-kept", "--yes"])
        .expect_code(1);
    assert!(
        sweep
            .stderr
            .contains("sweep-kept/default was not destroyed")
            && sweep.stderr.contains("prevent_destroy"),
        "{}",
        sweep.stderr
    );
    assert!(table_exists(&env, "sweep-kept-table").await);
}

// ---------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sweep_filters_by_stack_workspace_region_and_age() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.write("a.yaml", &small_stack("filter-a", ""));
    env.write("b.yaml", &small_stack("filter-b", ""));
    env.write(
        "c.yaml",
        &small_stack("filter-c", "").replace("region: us-east-1", "region: eu-west-1"),
    );
    env.plinth(&["apply", "a.yaml", "--yes"]).ok();
    env.plinth(&["apply", "a.yaml", "--yes", "--workspace", "ana"])
        .ok();
    env.plinth(&["apply", "b.yaml", "--yes"]).ok();
    env.plinth(&["apply", "c.yaml", "--yes"]).ok();
    std::fs::remove_dir_all(env.path(".plinth")).expect("lose the states");
    let envs = |args: &[&str]| -> Vec<(String, String)> {
        let run = env.plinth(&[&["sweep"][..], args].concat()).ok();
        listed(&run).into_iter().map(|(s, w, _)| (s, w)).collect()
    };
    let pair = |s: &str, w: &str| (s.to_string(), w.to_string());

    assert_eq!(
        envs(&[]),
        [
            pair("filter-a", "ana"),
            pair("filter-a", "default"),
            pair("filter-b", "default")
        ],
        "the default regions: the configured one (us-east-1) and us-east-1"
    );
    assert_eq!(
        envs(&["--stack", "filter-a"]),
        [pair("filter-a", "ana"), pair("filter-a", "default")]
    );
    assert_eq!(
        envs(&["--stack", "filter-a", "--workspace", "ana"]),
        [pair("filter-a", "ana")]
    );
    assert_eq!(
        envs(&["--region", "eu-west-1"]),
        [pair("filter-c", "default")]
    );
    assert_eq!(
        envs(&[
            "--region",
            "eu-west-1",
            "--region",
            "us-east-1",
            "--stack",
            "filter-c",
            "--stack",
            "filter-b"
        ]),
        [pair("filter-b", "default"), pair("filter-c", "default")]
    );
    assert!(envs(&["--expired"]).is_empty(), "none has expired");
    assert!(
        envs(&["--older-than", "1h"]).is_empty(),
        "all are minutes old"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(envs(&["--older-than", "1s"]).len(), 3);
    let bad = env
        .plinth(&["sweep", "--older-than", "soon"])
        .expect_code(1);
    assert!(
        bad.stderr.contains("`soon` is not a duration"),
        "{}",
        bad.stderr
    );

    // --yes with a filter removes only what the filter lists.
    env.plinth(&["sweep", "--stack", "filter-b", "--yes"]).ok();
    assert!(!table_exists(&env, "filter-b-default-table").await);
    assert!(table_exists(&env, "filter-a-default-table").await);
    let eu = tagged(&env, "eu-west-1", Some("filter-c")).await;
    assert_eq!(eu.len(), 2, "{eu:?}");
}

// ---------------------------------------------------------------------------------------
// ARNs to types and ids
// ---------------------------------------------------------------------------------------

#[test]
fn each_type_the_tagging_api_lists_maps_its_arn_to_its_id() {
    let registry = plinth_aws::registry(&Arc::new(plinth_aws::Aws::offline()));
    let cases = [
        (
            "arn:aws:dynamodb:us-east-1:1:table/users",
            "dynamodb.table",
            "users",
        ),
        (
            "arn:aws:ec2:eu-west-1:1:security-group/sg-0abc",
            "ec2.security_group",
            "sg-0abc",
        ),
        (
            "arn:aws:elasticache:us-east-1:1:cluster:redis-1",
            "elasticache.cluster",
            "redis-1",
        ),
        (
            "arn:aws:elasticache:us-east-1:1:replicationgroup:rg-1",
            "elasticache.replication_group",
            "rg-1",
        ),
        (
            "arn:aws:elasticache:us-east-1:1:subnetgroup:subs",
            "elasticache.subnet_group",
            "subs",
        ),
        (
            "arn:aws:elasticache:us-east-1:1:parametergroup:params",
            "elasticache.parameter_group",
            "params",
        ),
        (
            "arn:aws:elasticache:us-east-1:1:user:lab-app",
            "elasticache.user",
            "lab-app",
        ),
        (
            "arn:aws:elasticache:us-east-1:1:usergroup:lab-users",
            "elasticache.user_group",
            "lab-users",
        ),
        (
            "arn:aws:elasticache:us-east-1:1:serverlesscache:lab-cache",
            "elasticache.serverless_cache",
            "lab-cache",
        ),
        ("arn:aws:s3:::site-bucket", "s3.bucket", "site-bucket"),
        (
            "arn:aws:cloudfront::1:distribution/E2X",
            "cloudfront.distribution",
            "E2X",
        ),
        (
            "arn:aws:acm:us-east-1:1:certificate/0a-1b",
            "acm.certificate",
            "arn:aws:acm:us-east-1:1:certificate/0a-1b",
        ),
        ("arn:aws:iam::1:role/service-role/edge", "iam.role", "edge"),
        (
            "arn:aws:ec2:us-east-1:1:instance/i-0abc",
            "ec2.instance",
            "i-0abc",
        ),
        (
            "arn:aws:iam::1:instance-profile/labs/bastion",
            "iam.instance_profile",
            "bastion",
        ),
        (
            "arn:aws:route53:::hostedzone/Z0123456789ABC",
            "route53.zone",
            "Z0123456789ABC",
        ),
        (
            "arn:aws:lambda:us-east-1:1:function:rewrite",
            "lambda.function",
            "rewrite",
        ),
    ];
    for (arn, type_name, id) in cases {
        assert_eq!(
            registry.resolve_arn(arn),
            Some((type_name, id.to_string())),
            "{arn}"
        );
    }
    for not_a_resource in [
        "arn:aws:dynamodb:us-east-1:1:table/users/stream/2024",
        "arn:aws:lambda:us-east-1:1:function:rewrite:3",
        "arn:aws:s3:::site-bucket/index.html",
        "not an arn",
    ] {
        assert_eq!(
            registry.resolve_arn(not_a_resource),
            None,
            "{not_a_resource}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The tag search, against replayed tagging API answers
// ---------------------------------------------------------------------------------------

mod search {
    use aws_sdk_resourcegroupstagging::operation::get_resources::GetResourcesOutput;
    use aws_sdk_resourcegroupstagging::types::{ResourceTagMapping, Tag};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use plinth_aws::tagging::{find_tagged, TagFilter};
    use plinth_core::resource::ErrorKind;

    use crate::mock_support::mocked_aws;

    type Client = aws_sdk_resourcegroupstagging::Client;

    fn mapping(arn: &str) -> ResourceTagMapping {
        ResourceTagMapping::builder()
            .resource_arn(arn)
            .tags(
                Tag::builder()
                    .key("plinth:stack")
                    .value("lab")
                    .build()
                    .expect("tag"),
            )
            .build()
    }

    /// What the tagging API answers a caller without `tag:GetResources`.
    fn access_denied() -> HttpResponse {
        let body = r#"{"__type":"AccessDeniedException","Message":"User: arn:aws:iam::123456789012:user/student is not authorized to perform: tag:GetResources"}"#;
        let mut response = HttpResponse::new(
            StatusCode::try_from(400).expect("status"),
            SdkBody::from(body),
        );
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.1");
        response
    }

    #[tokio::test]
    async fn every_page_of_every_region_is_read_once_per_arn_and_a_refusal_is_reported_not_fatal() {
        let aws = mocked_aws();
        let denied = mock!(Client::get_resources).then_http_response(access_denied);
        aws.insert_tagging(
            "us-east-1",
            mock_client!(
                aws_sdk_resourcegroupstagging,
                RuleMode::MatchAny,
                &[&denied],
                |c| c.retry_config(
                    aws_sdk_resourcegroupstagging::config::retry::RetryConfig::disabled()
                )
            ),
        );
        let first = mock!(Client::get_resources)
            .match_requests(|r| r.pagination_token().unwrap_or_default().is_empty())
            .then_output(|| {
                GetResourcesOutput::builder()
                    .pagination_token("page-2")
                    .resource_tag_mapping_list(mapping(
                        "arn:aws:dynamodb:eu-west-1:123456789012:table/users",
                    ))
                    .resource_tag_mapping_list(mapping("arn:aws:s3:::lab-site"))
                    .build()
            });
        let second = mock!(Client::get_resources)
            .match_requests(|r| r.pagination_token() == Some("page-2"))
            .then_output(|| {
                GetResourcesOutput::builder()
                    .pagination_token("")
                    .resource_tag_mapping_list(mapping(
                        "arn:aws:cloudfront::123456789012:distribution/E2X",
                    ))
                    .build()
            });
        aws.insert_tagging(
            "eu-west-1",
            mock_client!(
                aws_sdk_resourcegroupstagging,
                RuleMode::MatchAny,
                &[&first, &second]
            ),
        );
        // Another region answers for the global distribution and the bucket again.
        let again = mock!(Client::get_resources).then_output(|| {
            GetResourcesOutput::builder()
                .resource_tag_mapping_list(mapping(
                    "arn:aws:cloudfront::123456789012:distribution/E2X",
                ))
                .resource_tag_mapping_list(mapping("arn:aws:s3:::lab-site"))
                .build()
        });
        aws.insert_tagging(
            "eu-central-1",
            mock_client!(aws_sdk_resourcegroupstagging, RuleMode::MatchAny, &[&again]),
        );

        let regions = ["us-east-1", "eu-west-1", "eu-central-1"].map(String::from);
        let search = find_tagged(
            &aws,
            &regions,
            &[TagFilter::equals("plinth:stack", "lab")],
            &[],
        )
        .await;
        assert_eq!(search.searched, ["eu-west-1", "eu-central-1"]);
        assert_eq!(search.failed.len(), 1);
        assert_eq!(search.failed[0].0, "us-east-1");
        assert_eq!(search.failed[0].1.kind, ErrorKind::Auth);
        let found: Vec<(&str, &str)> = search
            .found
            .iter()
            .map(|r| (r.arn.as_str(), r.region.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "arn:aws:dynamodb:eu-west-1:123456789012:table/users",
                    "eu-west-1"
                ),
                ("arn:aws:s3:::lab-site", "eu-west-1"),
                (
                    "arn:aws:cloudfront::123456789012:distribution/E2X",
                    "us-east-1"
                ),
            ],
            "each once; a bucket where it was found, CloudFront in us-east-1"
        );
        assert_eq!(search.found[0].tags["plinth:stack"], "lab");
        assert_eq!(first.num_calls() + second.num_calls(), 2);
    }
}
