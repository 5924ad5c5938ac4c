//! Cost before apply, end to end: `plinth cost` on the ready lab stacks, figure by figure
//! against arithmetic written out here from the shipped price table's numbers; a `--prices`
//! table and a `--usage` file changing figures; `plan`'s cost line and `plan --json`'s
//! cost; `apply --max-monthly-cost` refusing before anything exists in the emulator and
//! accepting within the limit; and a destroy plan showing the saving.

use std::path::Path;

use serde_json::Value;

use crate::harness::{groups_of_stack, Env, Moto, Run};

/// Hours in a month, as the estimates count them.
const HOURS: f64 = 730.0;

// us-east-1 prices from prices/aws-prices.json (checked against the file below).
const REDIS_T3_MICRO: f64 = 0.017;
const REDIS_T3_SMALL: f64 = 0.034;
const T3_MICRO: f64 = 0.0104;
const PUBLIC_IPV4: f64 = 0.005;
const GP3_GB_MONTH: f64 = 0.08;
const RCU_HOUR: f64 = 0.00013;
const WCU_HOUR: f64 = 0.00065;
const READ_PER_MILLION: f64 = 0.125;
const WRITE_PER_MILLION: f64 = 0.625;
const DDB_GB_MONTH: f64 = 0.25;
const PITR_GB_MONTH: f64 = 0.20;
// eu-west-1 S3 Standard (the week-4 bucket's region).
const S3_GB_MONTH_EU: f64 = 0.023;
const S3_PUT_PER_1000_EU: f64 = 0.005;
const S3_GET_PER_1000_EU: f64 = 0.0004;
// Global: CloudFront to North American viewers, Lambda@Edge.
const CF_GB: f64 = 0.085;
const CF_HTTPS_PER_10000: f64 = 0.0100;
const EDGE_PER_MILLION: f64 = 0.60;
const EDGE_GB_SECOND: f64 = 0.00005001;

fn shipped_table() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("prices/aws-prices.json");
    let text = std::fs::read_to_string(path).expect("the shipped price table");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn the_prices_this_test_works_with_are_the_shipped_tables() {
    let t = shipped_table();
    let us = &t["regions"]["us-east-1"];
    let eu = &t["regions"]["eu-west-1"];
    let checks = [
        (
            &us["elasticache"]["redis"]["cache.t3.micro"],
            REDIS_T3_MICRO,
        ),
        (
            &us["elasticache"]["redis"]["cache.t3.small"],
            REDIS_T3_SMALL,
        ),
        (
            &us["elasticache"]["memcached"]["cache.t3.micro"],
            REDIS_T3_MICRO,
        ),
        (&us["dynamodb"]["provisioned"]["rcu_hour"], RCU_HOUR),
        (&us["dynamodb"]["provisioned"]["wcu_hour"], WCU_HOUR),
        (
            &us["dynamodb"]["on_demand"]["read_per_million"],
            READ_PER_MILLION,
        ),
        (
            &us["dynamodb"]["on_demand"]["write_per_million"],
            WRITE_PER_MILLION,
        ),
        (&us["dynamodb"]["storage_gb_month"], DDB_GB_MONTH),
        (&us["dynamodb"]["pitr_gb_month"], PITR_GB_MONTH),
        (&eu["s3"]["standard_gb_month"], S3_GB_MONTH_EU),
        (&eu["s3"]["put_per_1000"], S3_PUT_PER_1000_EU),
        (&eu["s3"]["get_per_1000"], S3_GET_PER_1000_EU),
        (
            &t["global"]["cloudfront"]["north_america"]["transfer_out_gb"],
            CF_GB,
        ),
        (
            &t["global"]["cloudfront"]["north_america"]["https_requests_per_10000"],
            CF_HTTPS_PER_10000,
        ),
        (
            &t["global"]["lambda_edge"]["requests_per_million"],
            EDGE_PER_MILLION,
        ),
        (&t["global"]["lambda_edge"]["gb_second"], EDGE_GB_SECOND),
    ];
    for (value, expected) in checks {
        assert_eq!(value.as_f64(), Some(expected));
    }
    assert_eq!(t["as_of"], "2026-11-01");
}

/// `plinth cost --json` of a stack file in the test folder.
fn cost_json(env: &Env, stack: &str, extra: &[&str]) -> Value {
    let mut args = vec!["cost", stack, "--json"];
    args.extend_from_slice(extra);
    let run = env.plinth(&args).ok();
    serde_json::from_str(&run.stdout).expect("cost --json prints JSON")
}

/// The resource's (hourly, monthly) in a `cost --json` document.
fn figures(doc: &Value, name: &str) -> (f64, f64) {
    let r = doc["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no resource {name} in {doc}"));
    (
        r["hourly"].as_f64().unwrap_or(f64::NAN),
        r["monthly"].as_f64().unwrap_or(f64::NAN),
    )
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: expected {expected}, got {actual}"
    );
}

/// Checks a resource's monthly figure, and that its hourly one is the same over 730 hours.
fn assert_monthly(doc: &Value, name: &str, expected: f64) {
    let (hourly, monthly) = figures(doc, name);
    assert_close(monthly, expected, &format!("{name} per month"));
    assert_close(hourly, expected / HOURS, &format!("{name} per hour"));
}

/// The words of the table row of `name` in `plinth cost`'s text output.
fn row<'a>(run: &'a Run, name: &str) -> Vec<&'a str> {
    run.stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|words| words.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{}", run.stdout))
}

#[test]
fn the_week3_cache_lab_costs_its_nodes_by_the_hour() {
    let env = Env::new();
    env.copy_from_stacks("week3-cache-lab.yaml", "week3-cache-lab.yaml");
    env.copy_from_stacks("bastion", "bastion");
    let doc = cost_json(&env, "week3-cache-lab.yaml", &[]);
    // redis: 1 node × $0.017 × 730 h; memcached: 2 nodes × $0.017 × 730 h;
    // replicated: num_cache_clusters 2 → 2 nodes × $0.017 × 730 h.
    let redis = 1.0 * REDIS_T3_MICRO * HOURS;
    let memcached = 2.0 * REDIS_T3_MICRO * HOURS;
    let replicated = 2.0 * REDIS_T3_MICRO * HOURS;
    assert_monthly(&doc, "redis", redis);
    assert_monthly(&doc, "memcached", memcached);
    assert_monthly(&doc, "replicated", replicated);
    // bastion: a t3.micro × $0.0104 × 730 h, its 8 GB gp3 root volume × $0.08, its public
    // IPv4 address × $0.005 × 730 h.
    let bastion = (T3_MICRO + PUBLIC_IPV4) * HOURS + 8.0 * GP3_GB_MONTH;
    assert_monthly(&doc, "bastion", bastion);
    for free in [
        "app_sg",
        "cache_sg",
        "subnets",
        "redis_params",
        "bastion_role",
        "bastion_profile",
    ] {
        assert_eq!(figures(&doc, free), (0.0, 0.0), "{free}");
    }
    let total = redis + memcached + replicated + bastion;
    assert_close(
        doc["total"]["monthly"].as_f64().unwrap_or_default(),
        total,
        "total",
    );
    assert_close(
        doc["total"]["hourly"].as_f64().unwrap_or_default(),
        5.0 * REDIS_T3_MICRO + T3_MICRO + PUBLIC_IPV4 + 8.0 * GP3_GB_MONTH / HOURS,
        "total per hour",
    );
    assert_eq!(doc["total"]["complete"], true);
    assert_eq!(doc["prices"]["as_of"], "2026-11-01");
    assert_eq!(doc["hours_per_month"], 730.0);
    // Nothing here is usage-priced, so no assumption was used.
    assert_eq!(doc["assumptions"], serde_json::json!([]));
    // cache.t3.micro is free-tier eligible.
    let offers = doc["free_tier"].as_array().cloned().unwrap_or_default();
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert!(offers[0]["offer"]
        .as_str()
        .is_some_and(|o| o.contains("cache.t3.micro")));
    assert_eq!(
        offers[0]["resources"],
        serde_json::json!(["redis", "memcached", "replicated"])
    );

    // The same figures for a person, rounded: 12.41, 24.82, 62.05.
    let text = env.plinth(&["cost", "week3-cache-lab.yaml"]).ok();
    assert_eq!(
        row(&text, "redis")[..5],
        [
            "redis",
            "elasticache.cluster",
            "us-east-1",
            "0.0170",
            "12.41"
        ]
    );
    assert_eq!(
        row(&text, "memcached")[..5],
        [
            "memcached",
            "elasticache.cluster",
            "us-east-1",
            "0.0340",
            "24.82"
        ]
    );
    assert!(row(&text, "memcached")
        .join(" ")
        .contains("2 × cache.t3.micro memcached nodes at $0.017/h [free tier]"));
    assert_eq!(
        row(&text, "bastion")[3..5],
        ["0.0163", "11.88"],
        "{}",
        text.stdout
    );
    assert_eq!(row(&text, "total")[..3], ["total", "0.1013", "73.93"]);
    assert!(
        text.stdout
            .contains("Prices of 2026-11-01 (built in, from prices/aws-prices.json)"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("Hours per month: 730."));
}

#[test]
fn the_week2_data_lab_costs_its_capacity_requests_and_storage() {
    let env = Env::new();
    env.copy_from_stacks("week2-data-lab.yaml", "week2-data-lab.yaml");
    env.copy_from_stacks("data", "data");
    let doc = cost_json(&env, "week2-data-lab.yaml", &[]);
    // orders, provisioned: (5 + 2 + 2) RCU × $0.00013/h + (5 + 2 + 2) WCU × $0.00065/h for
    // 730 h, and 1 GB × $0.25 stored.
    let orders = (9.0 * RCU_HOUR + 9.0 * WCU_HOUR) * HOURS + 1.0 * DDB_GB_MONTH;
    // users, on demand with point-in-time recovery: 1M reads × $0.125/M + 1M writes ×
    // $0.625/M + 1 GB × $0.25 + 1 GB × $0.20.
    let users = 1.0 * READ_PER_MILLION + 1.0 * WRITE_PER_MILLION + DDB_GB_MONTH + PITR_GB_MONTH;
    assert_monthly(&doc, "orders", orders);
    assert_monthly(&doc, "users", users);
    for free in ["seed_users", "web_sg", "app_sg", "cache_sg"] {
        assert_eq!(figures(&doc, free), (0.0, 0.0), "{free}");
    }
    assert_close(
        doc["total"]["monthly"].as_f64().unwrap_or_default(),
        orders + users,
        "total",
    );
    let used: Vec<&str> = doc["assumptions"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["key"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        used,
        ["dynamodb.reads", "dynamodb.storage_gb", "dynamodb.writes"]
    );

    let text = env.plinth(&["cost", "week2-data-lab.yaml"]).ok();
    assert_eq!(row(&text, "orders")[3..5], ["0.0074", "5.37"]);
    assert_eq!(row(&text, "users")[3..5], ["0.0016", "1.20"]);
    assert!(text.stdout.contains(
        "9 RCU × $0.00013/h + 9 WCU × $0.00065/h (table 5 + 5, 2 global indexes 4 + 4) [free tier]"
    ));
    // Every assumption is printed with the estimate.
    assert!(
        text.stdout.contains(
            "dynamodb.reads      = 1,000,000  read request units a month per on-demand table"
        ),
        "{}",
        text.stdout
    );

    // A usage file changes the usage-priced lines, and says so.
    env.write(
        "usage.yaml",
        "dynamodb:\n  reads: 3000000\n  storage_gb: 4\n",
    );
    let doc = cost_json(&env, "week2-data-lab.yaml", &["--usage", "usage.yaml"]);
    // users: 3M × $0.125/M + 1M × $0.625/M + 4 GB × ($0.25 + $0.20).
    assert_monthly(
        &doc,
        "users",
        3.0 * READ_PER_MILLION + WRITE_PER_MILLION + 4.0 * (DDB_GB_MONTH + PITR_GB_MONTH),
    );
    // orders' capacity stays; its storage is 4 GB × $0.25.
    assert_monthly(
        &doc,
        "orders",
        (9.0 * RCU_HOUR + 9.0 * WCU_HOUR) * HOURS + 4.0 * DDB_GB_MONTH,
    );
    let reads = doc["assumptions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["key"] == "dynamodb.reads"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(reads["value"], 3000000.0);
    assert_eq!(reads["from"], "usage.yaml");

    // A typo in a usage file is an error at its line, never silently ignored.
    env.write("typo.yaml", "dynamodb:\n  raeds: 5\n");
    let typo = env
        .plinth(&["cost", "week2-data-lab.yaml", "--usage", "typo.yaml"])
        .expect_code(1);
    assert!(
        typo.stderr.contains("unknown key `raeds` in `dynamodb`"),
        "{}",
        typo.stderr
    );
    assert!(
        typo.stderr.contains("did you mean `reads`?"),
        "{}",
        typo.stderr
    );
    assert!(typo.stderr.contains("typo.yaml:2:3"), "{}", typo.stderr);
}

#[test]
fn the_week4_site_costs_its_bucket_distribution_and_edge_function_by_use() {
    let env = Env::new();
    env.copy_from_stacks("week4-static-site.yaml", "week4-static-site.yaml");
    env.copy_from_stacks("site", "site");
    env.copy_from_stacks("edge", "edge");
    let doc = cost_json(&env, "week4-static-site.yaml", &[]);
    // site (eu-west-1): 1 GB × $0.023 + 10,000 PUT × $0.005/1,000 + 100,000 GET ×
    // $0.0004/1,000.
    let site = 1.0 * S3_GB_MONTH_EU + 10.0 * S3_PUT_PER_1000_EU + 100.0 * S3_GET_PER_1000_EU;
    // cdn: 10 GB × $0.085 + 100,000 requests × $0.0100/10,000.
    let cdn = 10.0 * CF_GB + 10.0 * CF_HTTPS_PER_10000;
    // rewrite (Lambda@Edge): 100,000 × $0.60/M + (100,000 × 0.050 s × 128/1024 GB = 625
    // GB-s) × $0.00005001.
    let rewrite = 0.1 * EDGE_PER_MILLION + 625.0 * EDGE_GB_SECOND;
    assert_monthly(&doc, "site", site);
    assert_monthly(&doc, "cdn", cdn);
    assert_monthly(&doc, "rewrite", rewrite);
    for free in [
        "site_files",
        "oac",
        "assets_cache",
        "edge_role",
        "site_policy",
    ] {
        assert_eq!(figures(&doc, free), (0.0, 0.0), "{free}");
    }
    assert_close(
        doc["total"]["monthly"].as_f64().unwrap_or_default(),
        site + cdn + rewrite,
        "total",
    );
    let regions: Vec<(&str, &str)> = doc["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| Some((r["name"].as_str()?, r["region"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    assert!(regions.contains(&("site", "eu-west-1")), "{regions:?}");
    assert!(regions.contains(&("rewrite", "us-east-1")), "{regions:?}");
    let text = env.plinth(&["cost", "week4-static-site.yaml"]).ok();
    assert_eq!(row(&text, "cdn")[3..5], ["0.0013", "0.95"]);
    assert!(
        text.stdout.contains("cloudfront.transfer_out_gb = 10"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("lambda.duration_ms         = 50"),
        "{}",
        text.stdout
    );
    assert!(text
        .stdout
        .contains("CloudFront: 1 TB of data transfer out and 10 million HTTP(S) requests a month, always free — cdn"));
}

/// The week-3 lab without its bastion, in `week3-cache-lab.yaml`: its five cache nodes are
/// all it costs.
fn week3_caches_only(env: &Env) {
    let lab = include_str!("../../stacks/week3-cache-lab.yaml");
    let (resources, outputs) = lab.split_once("\n  bastion_role:").expect("the bastion");
    let (_, outputs) = outputs.split_once("\noutputs:").expect("outputs");
    let (_, kept) = outputs
        .split_once("\n  redis_endpoint:")
        .expect("the cache outputs");
    env.write(
        "week3-cache-lab.yaml",
        &format!("{resources}\noutputs:\n  redis_endpoint:{kept}"),
    );
}

/// The shipped table with Redis cache.t3.micro in us-east-1 at $0.025 and a newer date.
fn dearer_table(env: &Env) {
    let mut t = shipped_table();
    t["as_of"] = Value::from("2027-01-01");
    t["regions"]["us-east-1"]["elasticache"]["redis"]["cache.t3.micro"] = Value::from(0.025);
    env.write("dearer.json", &t.to_string());
}

#[test]
fn a_prices_file_overrides_the_built_in_table() {
    let env = Env::new();
    env.copy_from_stacks("week3-cache-lab.yaml", "week3-cache-lab.yaml");
    env.copy_from_stacks("bastion", "bastion");
    dearer_table(&env);
    let doc = cost_json(&env, "week3-cache-lab.yaml", &["--prices", "dearer.json"]);
    // redis: 1 × $0.025 × 730 h; replicated: 2 × $0.025 × 730 h; memcached keeps its own
    // price: 2 × $0.017 × 730 h.
    assert_monthly(&doc, "redis", 0.025 * HOURS);
    assert_monthly(&doc, "replicated", 2.0 * 0.025 * HOURS);
    assert_monthly(&doc, "memcached", 2.0 * REDIS_T3_MICRO * HOURS);
    assert_eq!(doc["prices"]["as_of"], "2027-01-01");
    assert_eq!(doc["prices"]["origin"], "dearer.json");
    let text = env
        .plinth(&["cost", "week3-cache-lab.yaml", "--prices", "dearer.json"])
        .ok();
    assert_eq!(row(&text, "redis")[3..5], ["0.0250", "18.25"]);
    assert!(text.stdout.contains("Prices of 2027-01-01 (dearer.json)"));

    // A node type the table lacks shows "price unknown" instead of failing.
    let mut t = shipped_table();
    if let Some(redis) = t["regions"]["us-east-1"]["elasticache"]["redis"].as_object_mut() {
        redis.remove("cache.t3.micro");
    }
    env.write("partial.json", &t.to_string());
    let doc = cost_json(&env, "week3-cache-lab.yaml", &["--prices", "partial.json"]);
    assert_eq!(doc["total"]["complete"], false);
    assert_eq!(
        doc["total"]["price_unknown"],
        serde_json::json!(["redis", "replicated"])
    );
    assert_monthly(&doc, "memcached", 2.0 * REDIS_T3_MICRO * HOURS);
    let text = env
        .plinth(&["cost", "week3-cache-lab.yaml", "--prices", "partial.json"])
        .ok();
    assert_eq!(row(&text, "redis")[3..5], ["?", "?"]);
    assert!(text.stdout.contains(
        "price unknown (no price for elasticache.redis.cache.t3.micro in us-east-1 in the price table of 2026-11-01"
    ), "{}", text.stdout);
    assert!(text
        .stdout
        .contains("without 2 resources whose price is unknown"));

    env.write("broken.json", "{ \"as_of\": ");
    let broken = env
        .plinth(&["cost", "week3-cache-lab.yaml", "--prices", "broken.json"])
        .expect_code(1);
    assert!(
        broken
            .stderr
            .contains("the price table broken.json is not valid JSON"),
        "{}",
        broken.stderr
    );
}

/// Cache clusters and replication groups the emulator holds, by id.
async fn caches(env: &Env) -> (Vec<String>, Vec<String>) {
    let ec = env.elasticache();
    let clusters = ec
        .describe_cache_clusters()
        .send()
        .await
        .expect("describe clusters");
    let groups = ec
        .describe_replication_groups()
        .send()
        .await
        .expect("describe groups");
    (
        clusters
            .cache_clusters()
            .iter()
            .filter_map(|c| c.cache_cluster_id().map(str::to_string))
            .collect(),
        groups
            .replication_groups()
            .iter()
            .filter_map(|g| g.replication_group_id().map(str::to_string))
            .collect(),
    )
}

fn plan_cost_json(run: &Run) -> Value {
    let doc: Value = serde_json::from_str(&run.stdout).expect("plan --json prints JSON");
    doc["cost"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn max_monthly_cost_refuses_before_any_change_and_plans_show_the_cost_and_its_change() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    week3_caches_only(&env);
    let lab = "week3-cache-lab.yaml";
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--var", "student=cost"]);
        env.plinth(&all)
    };
    // The whole lab: 5 cache.t3.micro nodes × $0.017 × 730 h = $62.05 a month.
    let lab_monthly = 5.0 * REDIS_T3_MICRO * HOURS;

    let plan = run(&["plan", lab]).ok();
    assert!(
        plan.stdout.contains(
            "Estimated cost: $62.05/month ($0.0850/hour), +$62.05/month from now — see `plinth cost` for details"
        ),
        "{}",
        plan.stdout
    );

    let refused = run(&["apply", lab, "--yes", "--max-monthly-cost", "60"]).expect_code(1);
    assert!(
        refused.stderr.contains(
            "the estimated cost after this apply is $62.05/month ($0.0850/hour), above --max-monthly-cost $60.00; nothing was changed"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(
        caches(&env).await,
        (Vec::new(), Vec::new()),
        "no cache was created"
    );
    assert_eq!(
        groups_of_stack(&env.ec2(), "week3-cache-lab").await,
        Vec::new()
    );
    let state_file = env.path(".plinth/week3-cache-lab/default/state.json");
    if state_file.exists() {
        let state = env.state("week3-cache-lab");
        assert_eq!(
            state["resources"].as_object().map(|m| m.len()),
            Some(0),
            "{state}"
        );
    }

    // Exactly at the limit is within it ($62.05 ≤ $62.05).
    run(&["apply", lab, "--yes", "--max-monthly-cost", "62.05"]).ok();
    let (mut clusters, groups) = caches(&env).await;
    clusters.sort();
    assert!(
        clusters.contains(&"cost-w3-redis".to_string()),
        "{clusters:?}"
    );
    assert!(
        clusters.contains(&"cost-w3-memcached".to_string()),
        "{clusters:?}"
    );
    assert_eq!(groups, ["cost-w3-replicated"]);

    let replan = run(&["plan", lab]).ok();
    assert!(
        replan
            .stdout
            .contains("Estimated cost: $62.05/month ($0.0850/hour), no change from now"),
        "{}",
        replan.stdout
    );
    // `plinth cost` compares with what the state says runs now.
    let cost = run(&["cost", lab]).ok();
    assert!(
        cost.stdout
            .contains("Running now, per the state: $62.05/month ($0.0850/hour)."),
        "{}",
        cost.stdout
    );

    // A bigger node for redis: 1 × ($0.034 - $0.017) × 730 h = $12.41 more a month.
    let bigger = env.read(lab).replacen(
        "    engine: redis\n    node_type: cache.t3.micro\n    subnet_group",
        "    engine: redis\n    node_type: cache.t3.small\n    subnet_group",
        1,
    );
    assert_ne!(
        bigger,
        env.read(lab),
        "the redis cluster's node type is changed"
    );
    env.write("bigger.yaml", &bigger);
    let bigger_monthly = lab_monthly + (REDIS_T3_SMALL - REDIS_T3_MICRO) * HOURS;
    let plan = run(&["plan", "bigger.yaml"]).ok();
    assert!(
        plan.stdout.contains(
            "Estimated cost: $74.46/month ($0.1020/hour), +$12.41/month from now — see `plinth cost` for details"
        ),
        "{}",
        plan.stdout
    );
    let json = run(&["plan", "bigger.yaml", "--json"]).ok();
    let cost = plan_cost_json(&json);
    assert_close(
        cost["monthly"].as_f64().unwrap_or_default(),
        bigger_monthly,
        "after",
    );
    assert_close(
        cost["now_monthly"].as_f64().unwrap_or_default(),
        lab_monthly,
        "now",
    );
    assert_close(
        cost["change_monthly"].as_f64().unwrap_or_default(),
        (REDIS_T3_SMALL - REDIS_T3_MICRO) * HOURS,
        "change",
    );
    assert_close(
        cost["hourly"].as_f64().unwrap_or_default(),
        bigger_monthly / HOURS,
        "hourly",
    );
    assert_eq!(cost["prices_as_of"], "2026-11-01");
    assert_eq!(cost["complete"], true);

    // Above the limit: refused, and the cluster keeps its node type.
    let refused =
        run(&["apply", "bigger.yaml", "--yes", "--max-monthly-cost", "70"]).expect_code(1);
    assert!(
        refused
            .stderr
            .contains("is $74.46/month ($0.1020/hour), above --max-monthly-cost $70.00"),
        "{}",
        refused.stderr
    );
    let redis = env
        .elasticache()
        .describe_cache_clusters()
        .cache_cluster_id("cost-w3-redis")
        .send()
        .await
        .expect("redis");
    assert_eq!(
        redis
            .cache_clusters()
            .first()
            .and_then(|c| c.cache_node_type()),
        Some("cache.t3.micro")
    );

    // A price table passed to plan prices both sides with it.
    dearer_table(&env);
    let dearer = run(&["plan", lab, "--prices", "dearer.json"]).ok();
    // 1 × $0.025 + 2 × $0.017 + 2 × $0.025 an hour = $0.1090 → $79.57 a month.
    assert!(
        dearer
            .stdout
            .contains("Estimated cost: $79.57/month ($0.1090/hour), no change from now"),
        "{}",
        dearer.stdout
    );

    // Destroying shows the saving.
    let destroy_plan = run(&["plan", lab, "--destroy"]).ok();
    assert!(
        destroy_plan.stdout.contains(
            "Estimated cost after destroy: $0.00/month ($0.0000/hour), saves $62.05/month ($0.0850/hour) from now"
        ),
        "{}",
        destroy_plan.stdout
    );
    let json = run(&["plan", lab, "--destroy", "--json"]).ok();
    let cost = plan_cost_json(&json);
    assert_eq!(cost["monthly"], 0.0);
    assert_close(
        cost["change_monthly"].as_f64().unwrap_or_default(),
        -lab_monthly,
        "saving",
    );
    let destroy = run(&["destroy", lab, "--yes"]).ok();
    assert!(
        destroy.stdout.contains("saves $62.05/month"),
        "{}",
        destroy.stdout
    );
    assert_eq!(caches(&env).await, (Vec::new(), Vec::new()));
}
