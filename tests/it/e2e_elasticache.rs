//! ElastiCache end to end: the week-3 lab (a Redis cluster behind a group that admits only
//! the app, a two-node Memcached cluster, a Redis replication group with a replica) applies,
//! re-plans clean, never prints its AUTH token, and destroys with `--no-wait`, leaving the
//! clusters recorded as pending deletion until the next run confirms they are gone.

use std::time::Duration;

use crate::harness::{groups_of_stack, Env, Moto};

const STACK: &str = include_str!("../../stacks/week3-cache-lab.yaml");
const TOKEN: &str = "a-long-redis-auth-token-for-tests";

#[tokio::test(flavor = "multi_thread")]
async fn the_week3_cache_lab_applies_replans_clean_hides_its_token_and_destroys_without_waiting() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.write("lab.yaml", STACK);
    env.copy_from_stacks("bastion", "bastion");
    let token_var = format!("redis_auth_token={TOKEN}");
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["lab.yaml", "--var", "student=ana", "--var", &token_var]);
        env.plinth(&all)
    };

    let apply = run(&["apply", "--yes"]).ok();
    assert!(
        !apply.all().contains(TOKEN),
        "the token never prints:\n{}",
        apply.all()
    );
    let ec = env.elasticache();
    let redis = ec
        .describe_cache_clusters()
        .cache_cluster_id("ana-w3-redis")
        .show_cache_node_info(true)
        .send()
        .await
        .expect("redis");
    let redis = redis.cache_clusters().first().expect("redis cluster");
    assert_eq!(redis.engine(), Some("redis"));
    assert_eq!(redis.cache_node_type(), Some("cache.t3.micro"));
    let groups = groups_of_stack(&env.ec2(), "week3-cache-lab").await;
    let cache_sg = groups
        .iter()
        .find(|(_, n)| n == "ana-w3-cache")
        .map(|(id, _)| id.clone())
        .expect("cache group");
    let redis_groups: Vec<&str> = redis
        .security_groups()
        .iter()
        .filter_map(|g| g.security_group_id())
        .collect();
    assert_eq!(redis_groups, [cache_sg.as_str()]);
    let memcached = ec
        .describe_cache_clusters()
        .cache_cluster_id("ana-w3-memcached")
        .send()
        .await
        .expect("memcached");
    assert_eq!(
        memcached
            .cache_clusters()
            .first()
            .and_then(|c| c.num_cache_nodes()),
        Some(2)
    );
    let replicated = ec
        .describe_replication_groups()
        .replication_group_id("ana-w3-replicated")
        .send()
        .await
        .expect("group");
    let replicated = replicated
        .replication_groups()
        .first()
        .expect("replication group");
    assert_eq!(
        replicated.member_clusters().len(),
        2,
        "a primary and one replica"
    );
    assert_eq!(replicated.transit_encryption_enabled(), Some(true));
    assert_eq!(replicated.auth_token_enabled(), Some(true));
    let params = ec
        .describe_cache_parameters()
        .cache_parameter_group_name("ana-w3-redis7")
        .source("user")
        .send()
        .await
        .expect("parameters");
    let set: Vec<(&str, &str)> = params
        .parameters()
        .iter()
        .map(|p| {
            (
                p.parameter_name().unwrap_or_default(),
                p.parameter_value().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(set, [("maxmemory-policy", "allkeys-lru")]);
    let subnets = ec
        .describe_cache_subnet_groups()
        .cache_subnet_group_name("ana-w3-cache-subnets")
        .send()
        .await
        .expect("subnet group");
    assert!(
        !subnets.cache_subnet_groups()[0].subnets().is_empty(),
        "the default VPC's subnets"
    );

    let replan = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        replan.code, 0,
        "re-plan has changes:\n{}{}",
        replan.stdout, replan.stderr
    );
    let show = env
        .plinth(&[
            "show",
            "lab.yaml",
            "--var",
            &token_var,
            "--var",
            "student=ana",
        ])
        .ok();
    assert!(
        !show.stdout.contains(TOKEN) && show.stdout.contains("(sensitive value)"),
        "{}",
        show.stdout
    );
    let state = std::fs::read_to_string(env.path(".plinth/week3-cache-lab/default/state.json"))
        .expect("state");
    assert!(
        state.contains("auth_token"),
        "the token is kept in state to diff against"
    );

    let destroy = run(&["destroy", "--yes", "--no-wait"]).ok();
    assert!(
        destroy.stdout.contains("Still being deleted"),
        "{}",
        destroy.stdout
    );
    for name in ["redis", "memcached", "replicated"] {
        assert!(
            destroy.stdout.contains(&format!("  {name} (elasticache.")),
            "{name} listed as pending:\n{}",
            destroy.stdout
        );
    }
    let state = env.state("week3-cache-lab");
    let pending: Vec<&str> = state["resources"]
        .as_object()
        .map(|r| {
            r.iter()
                .filter(|(_, v)| v["status"]["state"] == "pending_delete")
                .map(|(k, _)| k.as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        pending.contains(&"redis") && pending.contains(&"replicated"),
        "{pending:?}"
    );

    // The emulator finishes deleting (as AWS does after a few minutes); the next destroy
    // confirms it and clears the state.
    tokio::time::sleep(Duration::from_secs(3)).await;
    run(&["destroy", "--yes"]).ok();
    assert_eq!(
        env.state("week3-cache-lab")["resources"]
            .as_object()
            .map(|r| r.len()),
        Some(0)
    );
    let left = ec.describe_cache_clusters().send().await.expect("clusters");
    assert!(
        left.cache_clusters().is_empty(),
        "{:?}",
        left.cache_clusters()
    );
    assert!(ec
        .describe_replication_groups()
        .send()
        .await
        .expect("groups")
        .replication_groups()
        .is_empty());
    assert!(groups_of_stack(&env.ec2(), "week3-cache-lab")
        .await
        .is_empty());
}

#[test]
fn a_cache_whose_group_admits_its_port_from_anywhere_gets_a_warning_not_an_error() {
    let env = Env::new();
    env.write(
        "open.yaml",
        r#"
stack: open-cache
region: us-east-1
resources:
  cache_sg:
    type: ec2.security_group
    name: open-cache
    ingress:
      - { protocol: tcp, ports: 6379, cidr: 0.0.0.0/0 }
  redis:
    type: elasticache.cluster
    cluster_id: open-cache
    engine: redis
    node_type: cache.t3.micro
    security_group_ids: ["${cache_sg.id}"]
"#,
    );
    let run = env.plinth(&["validate", "open.yaml"]).ok();
    assert!(
        run.stderr.contains("open.yaml:15:"),
        "the warning points at the cluster's groups:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("0.0.0.0/0"), "{}", run.stderr);
    assert!(run.stdout.contains("is valid"), "{}", run.stdout);
}

#[test]
fn an_auth_token_without_transit_encryption_is_an_error_at_its_position() {
    let env = Env::new();
    env.write(
        "bad.yaml",
        "stack: bad-cache\nregion: us-east-1\nvars:\n  token: { sensitive: true }\nresources:\n  rg:\n    type: elasticache.replication_group\n    replication_group_id: bad-cache\n    node_type: cache.t3.micro\n    auth_token: ${var.token}\n",
    );
    let run = env
        .plinth(&[
            "validate",
            "bad.yaml",
            "--var",
            "token=a-long-enough-secret-token",
        ])
        .expect_code(1);
    assert!(run.stderr.contains("bad.yaml:10:"), "{}", run.stderr);
    assert!(run.stderr.contains("transit"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("a-long-enough-secret-token"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_show_in_place_cache_changes_apart_from_replacements_and_mask_the_auth_token() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.write("lab.yaml", STACK);
    env.copy_from_stacks("bastion", "bastion");
    let args = |command: &[&str], token: &str| -> Vec<String> {
        let mut all: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        for extra in ["lab.yaml", "--var", "student=bo", "--var"] {
            all.push(extra.to_string());
        }
        all.push(format!("redis_auth_token={token}"));
        all
    };
    let plinth =
        |args: Vec<String>| env.plinth(&args.iter().map(String::as_str).collect::<Vec<_>>());
    plinth(args(&["apply", "--yes"], TOKEN)).ok();

    let text = std::fs::read_to_string(env.path("lab.yaml")).expect("stack");
    let changed = text
        .replacen(
            "node_type: cache.t3.micro\n    subnet_group",
            "node_type: cache.t3.small\n    subnet_group",
            1,
        )
        .replace(
            "cluster_id: \"${var.student}-w3-memcached\"",
            "cluster_id: \"${var.student}-w3-memcached-v2\"",
        );
    assert_ne!(changed, text);
    env.write("lab.yaml", &changed);
    let new_token = "another-long-redis-auth-token-42";
    let plan = plinth(args(&["plan", "--detailed-exitcode", "-vv"], new_token)).expect_code(2);
    let out = plan.stdout.clone();
    assert!(
        out.contains(
            "~ redis (elasticache.cluster, us-east-1) [bo-w3-redis] will be updated in place"
        ),
        "{out}"
    );
    assert!(
        out.contains("~ node_type") && out.contains("\"cache.t3.micro\" → \"cache.t3.small\""),
        "{out}"
    );
    assert!(out.contains("-/+ memcached (elasticache.cluster, us-east-1) [bo-w3-memcached] must be replaced (cluster_id forces replacement)"), "{out}");
    assert!(
        out.contains("~ replicated (elasticache.replication_group"),
        "a new token rotates in place: {out}"
    );
    assert!(
        out.contains("auth_token") && out.contains("(sensitive value)"),
        "{out}"
    );
    for secret in [TOKEN, new_token] {
        assert!(
            !plan.stdout.contains(secret) && !plan.stderr.contains(secret),
            "{secret} printed:\n{}{}",
            plan.stdout,
            plan.stderr
        );
    }
    let json = plinth(args(&["plan", "--json"], new_token)).ok();
    assert!(
        !json.stdout.contains(new_token) && json.stdout.contains("(sensitive value)"),
        "{}",
        json.stdout
    );
}

/// A replication group and nothing else: two nodes, so two member clusters.
const REPLICATED: &str = "stack: members\nregion: us-east-1\nresources:\n  sessions:\n    type: elasticache.replication_group\n    replication_group_id: members-rg\n    description: sessions\n    node_type: cache.t3.micro\n    num_cache_clusters: 2\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_replication_groups_member_clusters_are_part_of_it_for_teardown_checks_and_sweep() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.write("plinth.yaml", REPLICATED);
    env.plinth(&["apply", "--yes"]).ok();
    // As in AWS, the members are clusters carrying the group's tags.
    let tagged = env.tagged("us-east-1", Some("members")).await;
    let members: Vec<&String> = tagged
        .iter()
        .map(|(arn, _)| arn)
        .filter(|arn| arn.contains(":cluster:members-rg-"))
        .collect();
    assert_eq!(members.len(), 2, "{tagged:?}");

    // Destroyed without waiting, the group is pending and its members with it: nothing is
    // reported as unknown to the state.
    let destroy = env.plinth(&["destroy", "--yes", "--no-wait"]).ok();
    assert!(
        !destroy.stdout.contains("unknown to") && !destroy.stderr.contains("unknown to"),
        "{}{}",
        destroy.stdout,
        destroy.stderr
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    env.plinth(&["destroy", "--yes"]).ok();

    // Without its state, sweep removes the group and lets the members go with it.
    env.plinth(&["apply", "--yes"]).ok();
    std::fs::remove_dir_all(env.path(".plinth")).expect("lose the state");
    let sweep = env
        .plinth(&["sweep", "--yes", "--region", "us-east-1"])
        .ok();
    assert_eq!(
        sweep.stdout.matches("goes with sessions").count(),
        2,
        "{}",
        sweep.stdout
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        env.tagged("us-east-1", Some("members")).await.is_empty(),
        "nothing is left"
    );
}

/// Log delivery (issue 13, item 3): a replication group's slow and engine logs go to the
/// stack's log group, read back as written (a clean re-plan), and both go on destroy.
#[tokio::test(flavor = "multi_thread")]
async fn a_replication_group_delivers_its_logs_to_the_stacks_log_group() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_examples("redis-logs.yaml", "logs.yaml");
    let args = |cmd: &'static str, extra: &[&'static str]| {
        let mut all = vec![cmd, "logs.yaml", "--var", "student=e2e"];
        all.extend(extra);
        all
    };
    env.plinth(&args("apply", &["--yes"])).ok();
    let group = env
        .elasticache()
        .describe_replication_groups()
        .replication_group_id("e2e-example-logged")
        .send()
        .await
        .expect("describe");
    let configs = group.replication_groups()[0].log_delivery_configurations();
    let mut delivered: Vec<(String, String, String)> = configs
        .iter()
        .map(|c| {
            (
                c.log_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                c.destination_details()
                    .and_then(|d| d.cloud_watch_logs_details())
                    .and_then(|d| d.log_group())
                    .unwrap_or_default()
                    .to_string(),
                c.log_format()
                    .map(|f| f.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    delivered.sort();
    let group_name = "/elasticache/e2e-example-redis".to_string();
    assert_eq!(
        delivered,
        [
            (
                "engine-log".to_string(),
                group_name.clone(),
                "text".to_string()
            ),
            (
                "slow-log".to_string(),
                group_name.clone(),
                "json".to_string()
            ),
        ]
    );
    let logs = env
        .logs()
        .describe_log_groups()
        .log_group_name_prefix(&group_name)
        .send()
        .await
        .expect("log groups");
    assert_eq!(logs.log_groups()[0].retention_in_days(), Some(7));
    let replan = env.plinth(&args("plan", &["--detailed-exitcode"]));
    assert_eq!(replan.code, 0, "{}", replan.stdout);

    let destroy = env.plinth(&args("destroy", &["--yes"])).ok();
    assert!(
        destroy.stdout.contains("Destroy complete"),
        "{}",
        destroy.stdout
    );
    let logs = env
        .logs()
        .describe_log_groups()
        .log_group_name_prefix(&group_name)
        .send()
        .await
        .expect("log groups");
    assert!(logs.log_groups().is_empty());
}

/// Memcached in-transit encryption (issue 13, item 2): made with TLS on, read back as
/// written, and refused before any call on an engine version that has none.
#[tokio::test(flavor = "multi_thread")]
async fn a_memcached_cluster_with_in_transit_encryption_reads_back_as_written() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    let stack = |version: &str| {
        format!(
            "stack: memcached-tls\nregion: us-east-1\nresources:\n  cache:\n    type: elasticache.cluster\n    cluster_id: e2e-memcached-tls\n    engine: memcached\n    engine_version: \"{version}\"\n    node_type: cache.t3.micro\n    num_nodes: 2\n    transit_encryption: true\n"
        )
    };
    env.write("old.yaml", &stack("1.6.6"));
    let refused = env.plinth(&["plan", "old.yaml"]);
    assert_ne!(refused.code, 0);
    assert!(
        format!("{}{}", refused.stdout, refused.stderr)
            .contains("in-transit encryption from engine version 1.6.12"),
        "{}",
        refused.stderr
    );

    env.write("plinth.yaml", &stack("1.6.22"));
    env.plinth(&["apply", "--yes"]).ok();
    let cluster = env
        .elasticache()
        .describe_cache_clusters()
        .cache_cluster_id("e2e-memcached-tls")
        .send()
        .await
        .expect("describe");
    assert_eq!(
        cluster.cache_clusters()[0].transit_encryption_enabled(),
        Some(true)
    );
    assert_eq!(env.plinth(&["plan", "--detailed-exitcode"]).code, 0);
    env.plinth(&["destroy", "--yes"]).ok();
}

/// (access string, authentication type, password count) of a cache user, as ElastiCache
/// reports them; `None` once it is gone.
async fn cache_user(
    ec: &aws_sdk_elasticache::Client,
    id: &str,
) -> Option<(String, String, i32, Vec<String>)> {
    let out = ec.describe_users().user_id(id).send().await.ok()?;
    let user = out.users().first()?;
    let authentication = user.authentication();
    Some((
        user.access_string().unwrap_or_default().to_string(),
        authentication
            .and_then(|a| a.r#type())
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        authentication.and_then(|a| a.password_count()).unwrap_or(0),
        user.user_group_ids().to_vec(),
    ))
}

async fn group_members(ec: &aws_sdk_elasticache::Client, id: &str) -> Option<Vec<String>> {
    let out = ec
        .describe_user_groups()
        .user_group_id(id)
        .send()
        .await
        .ok()?;
    let mut users = out.user_groups().first()?.user_ids().to_vec();
    users.sort();
    Some(users)
}

/// Issue 13, item 4: users with passwords and without, a user group and a replication group
/// signing clients in through it; access strings, passwords and membership change in place,
/// and nothing is left after destroy.
#[tokio::test(flavor = "multi_thread")]
async fn cache_users_and_a_user_group_sign_a_replication_group_in_and_change_in_place() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_examples("redis-users.yaml", "users.yaml");
    let secret = "first-app-password-0001";
    let rotated = "rotated-app-password-0002";
    let run = |cmd: &str, password: &str, extra: &[&str]| {
        let password = format!("app_password={password}");
        let mut all = vec![
            cmd,
            "users.yaml",
            "--var",
            "student=e2e",
            "--var",
            &password,
        ];
        all.extend(extra);
        env.plinth(&all)
    };
    let applied = run("apply", secret, &["--yes"]).ok();
    assert!(!applied.all().contains(secret), "{}", applied.all());
    let ec = env.elasticache();
    let group_id = "e2e-example-users";
    assert_eq!(
        cache_user(&ec, "e2e-example-app").await,
        Some((
            "on ~app:* +@read +@write".to_string(),
            "password".to_string(),
            1,
            vec![group_id.to_string()]
        ))
    );
    let nobody = cache_user(&ec, "e2e-example-default")
        .await
        .expect("default user");
    assert_eq!(
        (nobody.0.as_str(), nobody.1.as_str()),
        ("off -@all", "no-password")
    );
    assert_eq!(
        group_members(&ec, group_id).await,
        Some(vec![
            "e2e-example-app".to_string(),
            "e2e-example-default".to_string(),
            "e2e-example-grader".to_string()
        ])
    );
    let cache = ec
        .describe_replication_groups()
        .replication_group_id("e2e-example-users")
        .send()
        .await
        .expect("replication group");
    assert_eq!(cache.replication_groups()[0].user_group_ids(), [group_id]);
    let replan = run("plan", secret, &["--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "{}", replan.stdout);

    // A new password, a narrower access string and the grader out of the group: in place.
    let stack = env.read("users.yaml");
    env.write(
        "users.yaml",
        &stack
            .replace("on ~app:* +@read +@write", "on ~app:* +@read")
            .replace(", \"${grader.user_id}\"]", "]"),
    );
    let plan = run("plan", rotated, &["--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(!plan.all().contains(rotated), "the password never prints");
    assert!(!plan.stdout.contains("must be replaced"), "{}", plan.stdout);
    run("apply", rotated, &["--yes"]).ok();
    let app = cache_user(&ec, "e2e-example-app").await.expect("app user");
    assert_eq!((app.0.as_str(), app.2), ("on ~app:* +@read", 1));
    assert_eq!(
        group_members(&ec, group_id).await,
        Some(vec![
            "e2e-example-app".to_string(),
            "e2e-example-default".to_string()
        ])
    );
    let replan = run("plan", rotated, &["--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "{}", replan.stdout);

    let destroy = run("destroy", rotated, &["--yes"]).ok();
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    for user in [
        "e2e-example-app",
        "e2e-example-grader",
        "e2e-example-default",
    ] {
        assert_eq!(cache_user(&ec, user).await, None, "{user} is deleted");
    }
    assert_eq!(group_members(&ec, group_id).await, None);
    let left = env.tagged("us-east-1", Some("example-redis-users")).await;
    assert!(left.is_empty(), "{left:?}");
}

/// Issue 13, item 4: a serverless cache made with its limits, read back as AWS reports it
/// (the subnets and security group AWS chose never show as a difference), changed in place,
/// and gone after destroy.
#[tokio::test(flavor = "multi_thread")]
async fn a_serverless_cache_is_made_within_its_limits_changed_in_place_and_deleted() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_examples("serverless-cache.yaml", "serverless.yaml");
    let args = |cmd: &'static str, extra: &[&'static str]| {
        let mut all = vec![cmd, "serverless.yaml", "--var", "student=e2e"];
        all.extend(extra);
        all
    };
    let applied = env.plinth(&args("apply", &["--yes"])).ok();
    let ec = env.elasticache();
    let name = "e2e-example-serverless";
    let describe = || async {
        ec.describe_serverless_caches()
            .serverless_cache_name(name)
            .send()
            .await
            .ok()
            .and_then(|out| out.serverless_caches().first().cloned())
    };
    let cache = describe().await.expect("the serverless cache");
    assert_eq!(cache.engine(), Some("valkey"));
    assert_eq!(cache.status(), Some("available"));
    let limits = cache.cache_usage_limits().expect("limits");
    assert_eq!(limits.data_storage().and_then(|d| d.maximum()), Some(5));
    assert_eq!(
        limits.ecpu_per_second().and_then(|e| e.maximum()),
        Some(5000)
    );
    assert_eq!(cache.snapshot_retention_limit(), Some(1));
    let endpoint = cache
        .endpoint()
        .and_then(|e| e.address())
        .expect("endpoint");
    assert!(
        applied.stdout.contains(&format!("{endpoint}:6379")),
        "{}",
        applied.stdout
    );
    let replan = env.plinth(&args("plan", &["--detailed-exitcode"]));
    assert_eq!(replan.code, 0, "{}", replan.stdout);

    let stack = env.read("serverless.yaml");
    env.write(
        "serverless.yaml",
        &stack
            .replace("storage_gb: { max: 5 }", "storage_gb: { max: 10 }")
            .replace("a lab cache billed by use", "a bigger lab cache"),
    );
    let plan = env.plinth(&args("plan", &["--detailed-exitcode"]));
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("updated in place"), "{}", plan.stdout);
    env.plinth(&args("apply", &["--yes"])).ok();
    let cache = describe().await.expect("the serverless cache");
    assert_eq!(cache.description(), Some("a bigger lab cache"));
    let limits = cache.cache_usage_limits().expect("limits");
    assert_eq!(limits.data_storage().and_then(|d| d.maximum()), Some(10));
    assert_eq!(
        limits.ecpu_per_second().and_then(|e| e.maximum()),
        Some(5000)
    );
    let replan = env.plinth(&args("plan", &["--detailed-exitcode"]));
    assert_eq!(replan.code, 0, "{}", replan.stdout);

    // The throughput cap removed: AWS keeps a part not sent, so it is lifted to AWS's
    // ceiling, which reads as no limit.
    let stack = env.read("serverless.yaml");
    env.write(
        "serverless.yaml",
        &stack.replace("      ecpu_per_second: { max: 5000 }\n", ""),
    );
    env.plinth(&args("apply", &["--yes"])).ok();
    let cache = describe().await.expect("the serverless cache");
    let ecpu = cache
        .cache_usage_limits()
        .and_then(|l| l.ecpu_per_second())
        .and_then(|e| e.maximum());
    assert!(
        ecpu.is_none_or(|m| m >= 15_000_000),
        "no cap left: {ecpu:?}"
    );
    let replan = env.plinth(&args("plan", &["--detailed-exitcode"]));
    assert_eq!(replan.code, 0, "{}", replan.stdout);

    let destroy = env.plinth(&args("destroy", &["--yes"])).ok();
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    assert!(describe().await.is_none(), "the cache is deleted");
    let left = env.tagged("us-east-1", Some("example-serverless")).await;
    assert!(left.is_empty(), "{left:?}");
}
