//! Each AWS resource type's cost rule, priced with the shipped table and the built-in usage
//! assumptions (no AWS, no emulator: plinth-aws's own tests live in this binary). Every
//! expected figure is worked out here from the table's numbers.

use std::sync::Arc;

use plinth_aws::Aws;
use plinth_core::cost::{CostContext, CostLine, PriceTable, Usage};
use plinth_core::diag::SourceFile;
use plinth_core::resource::{NormalizeContext, Registry};
use plinth_core::value::{Props, UNKNOWN};
use serde_json::{json, Value};

const HOURS: f64 = 730.0;

fn registry() -> Registry {
    plinth_aws::registry(&Arc::new(Aws::offline()))
}

fn prices() -> PriceTable {
    plinth_aws::cost::shipped_prices().expect("the shipped price table parses")
}

fn props(v: Value) -> Props {
    match v {
        Value::Object(m) => m,
        other => panic!("expected an object, got {other}"),
    }
}

/// The type's cost lines for `declared` (normalized first, as the planner does).
fn cost_with(type_name: &str, region: &str, declared: Value, usage: &Usage) -> Vec<CostLine> {
    let registry = registry();
    let rt = registry.get(type_name).expect("a registered type");
    let mut p = props(declared);
    rt.normalize(&mut p, &NormalizeContext::default())
        .expect("normalizes");
    let prices = prices();
    let ctx = CostContext {
        region,
        prices: &prices,
        usage,
    };
    rt.cost(&p, &ctx)
}

fn cost_of(type_name: &str, region: &str, declared: Value) -> Vec<CostLine> {
    cost_with(
        type_name,
        region,
        declared,
        &plinth_aws::cost::default_usage(),
    )
}

fn monthly(lines: &[CostLine]) -> f64 {
    lines.iter().filter_map(|l| l.monthly).sum()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: expected {expected}, got {actual}"
    );
}

fn usage_from(yaml: &str) -> Usage {
    let mut usage = plinth_aws::cost::default_usage();
    usage
        .override_with(&SourceFile::new("usage.yaml", yaml))
        .expect("a valid usage file");
    usage
}

#[test]
fn the_shipped_table_is_dated_says_where_its_prices_come_from_and_covers_the_course_regions() {
    let t = prices();
    assert_eq!(t.as_of, "2026-11-01");
    assert!(
        t.source.contains("AWS public list prices") && t.source.contains("2026-11-01"),
        "{}",
        t.source
    );
    assert!(t.source.contains("check https://aws.amazon.com/pricing/"));
    let mut regions = t.regions();
    regions.sort();
    assert_eq!(
        regions,
        ["eu-central-1", "eu-west-1", "us-east-1", "us-west-2"]
    );
    let node_types = [
        "cache.t3.micro",
        "cache.t3.small",
        "cache.t3.medium",
        "cache.t4g.micro",
        "cache.t4g.small",
        "cache.t4g.medium",
        "cache.m5.large",
        "cache.m6g.large",
        "cache.m7g.large",
        "cache.r6g.large",
        "cache.r7g.large",
    ];
    for region in ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"] {
        for node_type in node_types {
            let redis = t
                .regional(region, &["elasticache", "redis", node_type])
                .expect("a redis price");
            let valkey = t
                .regional(region, &["elasticache", "valkey", node_type])
                .expect("a valkey price");
            let memcached = t
                .regional(region, &["elasticache", "memcached", node_type])
                .expect("a memcached price");
            // Valkey node-based is 20% below Redis OSS; Memcached is priced as Redis OSS.
            assert_close(
                valkey,
                redis * 0.8,
                &format!("valkey {node_type} in {region}"),
            );
            assert_close(
                memcached,
                redis,
                &format!("memcached {node_type} in {region}"),
            );
        }
        for path in [
            &["dynamodb", "provisioned", "rcu_hour"][..],
            &["dynamodb", "provisioned", "wcu_hour"],
            &["dynamodb", "on_demand", "read_per_million"],
            &["dynamodb", "on_demand", "write_per_million"],
            &["dynamodb", "storage_gb_month"],
            &["dynamodb", "pitr_gb_month"],
            &["s3", "standard_gb_month"],
            &["s3", "put_per_1000"],
            &["s3", "get_per_1000"],
            &["lambda", "requests_per_million"],
            &["lambda", "gb_second"],
            &["lambda", "gb_second_arm64"],
        ] {
            assert!(t.regional(region, path).is_ok(), "{region} {path:?}");
        }
    }
    // The us-east-1 figures the courses quote.
    let us = |path: &[&str]| t.regional("us-east-1", path).expect("a price");
    assert_eq!(us(&["elasticache", "redis", "cache.t3.micro"]), 0.017);
    assert_eq!(us(&["dynamodb", "provisioned", "rcu_hour"]), 0.00013);
    assert_eq!(us(&["dynamodb", "provisioned", "wcu_hour"]), 0.00065);
    assert_eq!(us(&["dynamodb", "on_demand", "read_per_million"]), 0.125);
    assert_eq!(us(&["dynamodb", "on_demand", "write_per_million"]), 0.625);
    assert_eq!(us(&["s3", "standard_gb_month"]), 0.023);
    assert_eq!(
        t.global(&["cloudfront", "north_america", "transfer_out_gb"]),
        Ok(0.085)
    );
    assert_eq!(t.global(&["lambda_edge", "requests_per_million"]), Ok(0.6));
    assert!(t
        .text(&["free_tier", "cloudfront", "note"])
        .is_some_and(|n| n.contains("1 TB") && n.contains("10 million")));
}

#[test]
fn the_usage_defaults_are_course_sized() {
    let usage = plinth_aws::cost::default_usage();
    let all: Vec<(String, String)> = usage
        .all()
        .into_iter()
        .map(|a| (a.key, a.value.to_string()))
        .collect();
    let expected = [
        ("cloudfront.geography", "north_america"),
        ("cloudfront.requests", "100,000"),
        ("cloudfront.transfer_out_gb", "10"),
        ("dynamodb.reads", "1,000,000"),
        ("dynamodb.storage_gb", "1"),
        ("dynamodb.writes", "1,000,000"),
        ("ec2.nat_gateway_gb", "10"),
        ("elasticache.serverless_ecpu_millions", "10"),
        ("elasticache.serverless_storage_gb", "0.1"),
        ("kms.requests", "10,000"),
        ("lambda.duration_ms", "50"),
        ("lambda.invocations", "100,000"),
        ("logs.ingested_gb", "1"),
        ("logs.stored_gb", "1"),
        ("s3.get_requests", "100,000"),
        ("s3.put_requests", "10,000"),
        ("s3.storage_gb", "1"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(all, expected);
}

#[test]
fn a_nat_gateway_bills_its_hours_its_data_and_its_public_address() {
    let public = cost_of(
        "ec2.nat_gateway",
        "eu-central-1",
        json!({"subnet_id": "subnet-1"}),
    );
    // 0.052/h and 0.052/GB in Frankfurt, 10 GB assumed, 0.005/h for the public IPv4 address.
    assert_close(
        monthly(&public),
        0.052 * HOURS + 10.0 * 0.052 + 0.005 * HOURS,
        "a public NAT gateway",
    );
    assert_eq!(public.len(), 3, "{public:?}");
    let private = cost_of(
        "ec2.nat_gateway",
        "us-east-1",
        json!({"subnet_id": "subnet-1", "connectivity_type": "private"}),
    );
    assert_close(
        monthly(&private),
        0.045 * HOURS + 10.0 * 0.045,
        "a private one has no public address",
    );
    let heavy = cost_with(
        "ec2.nat_gateway",
        "us-east-1",
        json!({"subnet_id": "subnet-1"}),
        &usage_from("ec2: { nat_gateway_gb: 1000 }"),
    );
    assert_close(
        monthly(&heavy),
        0.045 * HOURS + 1000.0 * 0.045 + 0.005 * HOURS,
        "with 1 TB processed",
    );
}

#[test]
fn every_type_states_its_cost_explicitly() {
    // Minimal properties per type: every rule answers with at least one line (a free type
    // says why it is free), so no type is left at the trait's silent default.
    let minimal: &[(&str, Value)] = &[
        (
            "dynamodb.table",
            json!({"name": "t", "partition_key": {"name": "K", "type": "S"}}),
        ),
        ("dynamodb.items", json!({"table": "t", "items": []})),
        (
            "ec2.security_group",
            json!({"name": "g", "description": "d"}),
        ),
        ("ec2.default_vpc", json!({})),
        ("ec2.vpc", json!({"cidr_block": "10.0.0.0/16"})),
        (
            "ec2.subnet",
            json!({"vpc_id": "vpc-1", "cidr_block": "10.0.1.0/24"}),
        ),
        ("ec2.internet_gateway", json!({})),
        ("ec2.route_table", json!({"vpc_id": "vpc-1"})),
        ("ec2.nat_gateway", json!({"subnet_id": "subnet-1"})),
        (
            "ec2.vpc_endpoint",
            json!({"vpc_id": "vpc-1", "service": "s3"}),
        ),
        ("elasticache.subnet_group", json!({"name": "s"})),
        (
            "elasticache.parameter_group",
            json!({"name": "p", "family": "redis7"}),
        ),
        (
            "elasticache.cluster",
            json!({"cluster_id": "c", "engine": "redis", "node_type": "cache.t3.micro"}),
        ),
        (
            "elasticache.replication_group",
            json!({"replication_group_id": "r", "node_type": "cache.t3.micro"}),
        ),
        (
            "elasticache.user",
            json!({"user_id": "u", "user_name": "app", "access_string": "on ~* +@all"}),
        ),
        (
            "elasticache.serverless_cache",
            json!({"name": "s", "engine": "valkey"}),
        ),
        (
            "elasticache.user_group",
            json!({"user_group_id": "g", "users": ["u"]}),
        ),
        ("s3.bucket", json!({"name": "b"})),
        ("s3.objects", json!({"bucket": "b"})),
        ("s3.bucket_policy", json!({"bucket": "b"})),
        ("cloudfront.origin_access_control", json!({"name": "o"})),
        ("cloudfront.cache_policy", json!({"name": "c"})),
        ("cloudfront.distribution", json!({})),
        ("acm.certificate", json!({"domain_name": "example.com"})),
        (
            "ec2.instance",
            json!({"ami": "ami-1", "instance_type": "t3.micro"}),
        ),
        ("iam.instance_profile", json!({"name": "p"})),
        ("route53.zone", json!({"name": "example.com"})),
        (
            "route53.record",
            json!({"zone_id": "Z1", "name": "www.example.com", "record_type": "A", "records": ["192.0.2.1"]}),
        ),
        (
            "lambda.event_source_mapping",
            json!({"function_name": "f", "event_source_arn": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x"}),
        ),
        ("iam.role", json!({"name": "r"})),
        (
            "lambda.function",
            json!({"name": "f", "edge": false, "memory_size": 128}),
        ),
        ("kms.key", json!({"rotation": true})),
        ("kms.alias", json!({"name": "alias/a", "target_key": "k"})),
        ("logs.log_group", json!({"name": "/g"})),
        ("cloudfront.function", json!({"name": "f", "code": "x"})),
        ("cloudfront.origin_request_policy", json!({"name": "o"})),
        (
            "cloudfront.response_headers_policy",
            json!({"name": "r", "remove_headers": ["Server"]}),
        ),
    ];
    let registry = registry();
    let named: Vec<&str> = minimal.iter().map(|(t, _)| *t).collect();
    let mut registered = registry.type_names();
    registered.retain(|t| !named.contains(t));
    assert!(
        registered.is_empty(),
        "types without a case here: {registered:?}"
    );
    let prices = prices();
    let usage = plinth_aws::cost::default_usage();
    for (type_name, declared) in minimal {
        let rt = registry.get(type_name).expect("registered");
        let ctx = CostContext {
            region: "us-east-1",
            prices: &prices,
            usage: &usage,
        };
        let lines = rt.cost(&props(declared.clone()), &ctx);
        assert!(!lines.is_empty(), "{type_name} has no cost lines");
        assert!(
            lines.iter().all(CostLine::is_known),
            "{type_name}: {lines:?}"
        );
    }
}

#[test]
fn a_kms_key_bills_a_dollar_a_month_and_a_log_group_its_gigabytes() {
    let key = cost_of("kms.key", "us-east-1", json!({}));
    // $1/month for the key, 10,000 requests at $0.03 per 10,000.
    assert_close(monthly(&key), 1.0 + 0.03, "a KMS key");
    let group = cost_of("logs.log_group", "eu-central-1", json!({"name": "/g"}));
    // 1 GB ingested at $0.63 and 1 GB stored at $0.0324 in Frankfurt.
    assert_close(monthly(&group), 0.63 + 0.0324, "a log group");
    assert!(
        group
            .iter()
            .any(|l| l.what.contains("kept forever: give retention_days")),
        "{group:?}"
    );
}

#[test]
fn free_types_cost_nothing_and_say_why_in_the_tables_words() {
    for (type_name, declared, why) in [
        (
            "acm.certificate",
            json!({"domain_name": "example.com"}),
            "public ACM certificates are free",
        ),
        (
            "iam.role",
            json!({"name": "r", "trust": ["lambda"]}),
            "IAM roles and policies are free",
        ),
        (
            "ec2.security_group",
            json!({"name": "g", "description": "d"}),
            "security groups are free",
        ),
        (
            "cloudfront.origin_access_control",
            json!({"name": "o"}),
            "origin access control is free",
        ),
        (
            "cloudfront.cache_policy",
            json!({"name": "c"}),
            "cache policies are free",
        ),
        (
            "elasticache.subnet_group",
            json!({"name": "s"}),
            "subnet groups are free",
        ),
        (
            "s3.bucket_policy",
            json!({"bucket": "b", "allow_cloudfront": "arn:aws:cloudfront::1:distribution/D"}),
            "bucket policies are free",
        ),
        (
            "dynamodb.items",
            json!({"table": "t", "items": [{"K": "a"}]}),
            "free in itself: seed items are ordinary writes, in the table's usage assumptions",
        ),
    ] {
        let lines = cost_of(type_name, "us-east-1", declared);
        assert_eq!(lines.len(), 1, "{type_name}");
        assert_eq!(lines[0].what, why);
        assert_eq!((lines[0].hourly, lines[0].monthly), (Some(0.0), Some(0.0)));
    }
}

#[test]
fn a_provisioned_table_pays_for_its_and_its_global_indexes_capacity_by_the_hour() {
    let lines = cost_of(
        "dynamodb.table",
        "us-east-1",
        json!({
            "name": "orders",
            "partition_key": {"name": "C", "type": "S"},
            "billing_mode": "provisioned",
            "read_capacity": 5,
            "write_capacity": 5,
            "global_secondary_indexes": [
                {"name": "a", "partition_key": {"name": "S", "type": "S"}, "read_capacity": 2, "write_capacity": 2},
                {"name": "b", "partition_key": {"name": "P", "type": "S"}, "read_capacity": 3, "write_capacity": 1},
            ],
        }),
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    // (5 + 2 + 3) RCU × $0.00013 + (5 + 2 + 1) WCU × $0.00065 an hour.
    let hourly = 10.0 * 0.00013 + 8.0 * 0.00065;
    assert_close(
        lines[0].hourly.unwrap_or_default(),
        hourly,
        "capacity per hour",
    );
    assert_close(
        lines[0].monthly.unwrap_or_default(),
        hourly * HOURS,
        "capacity per month",
    );
    assert_eq!(
        lines[0].what,
        "10 RCU × $0.00013/h + 8 WCU × $0.00065/h (table 5 + 5, 2 global indexes 5 + 3)"
    );
    assert!(!lines[0].usage_priced);
    assert!(lines[0]
        .free_tier
        .as_deref()
        .is_some_and(|n| n.contains("25 provisioned RCU")));
    // 1 GB stored × $0.25.
    assert_close(lines[1].monthly.unwrap_or_default(), 0.25, "storage");
    assert!(lines[1].usage_priced);
}

#[test]
fn an_on_demand_table_pays_per_request_and_for_backups_with_point_in_time_recovery() {
    let declared = json!({
        "name": "users",
        "partition_key": {"name": "U", "type": "S"},
        "billing_mode": "on_demand",
        "point_in_time_recovery": true,
    });
    let lines = cost_of("dynamodb.table", "eu-central-1", declared.clone());
    let what: Vec<&str> = lines.iter().map(|l| l.what.as_str()).collect();
    assert_eq!(
        what,
        [
            "1,000,000 on-demand reads × $0.1525/million",
            "1,000,000 on-demand writes × $0.7625/million",
            "1 GB stored × $0.306/GB-month",
            "point-in-time recovery of 1 GB × $0.24/GB-month",
        ]
    );
    assert!(lines.iter().all(|l| l.usage_priced));
    // Frankfurt: 1M reads × $0.1525/M + 1M writes × $0.7625/M + 1 GB × ($0.306 + $0.24).
    assert_close(monthly(&lines), 0.1525 + 0.7625 + 0.306 + 0.24, "on demand");

    let usage = usage_from("dynamodb: { reads: 4000000, storage_gb: 10 }\n");
    let lines = cost_with("dynamodb.table", "us-east-1", declared, &usage);
    // 4M × $0.125/M + 1M × $0.625/M + 10 GB × ($0.25 + $0.20).
    assert_close(
        monthly(&lines),
        4.0 * 0.125 + 0.625 + 10.0 * 0.45,
        "with a usage file",
    );
}

#[test]
fn a_cache_cluster_pays_the_node_price_for_each_node() {
    let lines = cost_of(
        "elasticache.cluster",
        "us-east-1",
        json!({"cluster_id": "m", "engine": "memcached", "node_type": "cache.t3.micro", "num_nodes": 2}),
    );
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0].what,
        "2 × cache.t3.micro memcached nodes at $0.017/h"
    );
    assert_close(lines[0].hourly.unwrap_or_default(), 2.0 * 0.017, "per hour");
    assert_close(
        lines[0].monthly.unwrap_or_default(),
        2.0 * 0.017 * HOURS,
        "per month",
    );
    assert!(lines[0]
        .free_tier
        .as_deref()
        .is_some_and(|n| n.contains("750")));

    // Valkey node-based: 20% below Redis OSS (eu-west-1 cache.t4g.small: $0.034 × 0.8).
    let lines = cost_of(
        "elasticache.cluster",
        "eu-west-1",
        json!({"cluster_id": "v", "engine": "valkey", "node_type": "cache.t4g.small"}),
    );
    assert_close(lines[0].hourly.unwrap_or_default(), 0.034 * 0.8, "valkey");
    assert_eq!(
        lines[0].free_tier, None,
        "only micro nodes are free-tier eligible"
    );
}

#[test]
fn a_node_type_or_region_missing_from_the_table_is_an_unknown_price_not_an_error() {
    let lines = cost_of(
        "elasticache.cluster",
        "us-east-1",
        json!({"cluster_id": "big", "engine": "redis", "node_type": "cache.r7g.16xlarge"}),
    );
    assert_eq!(lines[0].monthly, None);
    assert_eq!(
        lines[0].unknown.as_deref(),
        Some(
            "no price for elasticache.redis.cache.r7g.16xlarge in us-east-1 in the price table \
             of 2026-11-01; add it to a copy of the table and pass it with --prices FILE"
        )
    );
    let lines = cost_of(
        "elasticache.cluster",
        "ap-south-1",
        json!({"cluster_id": "c", "engine": "redis", "node_type": "cache.t3.micro"}),
    );
    assert!(lines[0]
        .unknown
        .as_deref()
        .is_some_and(|u| u.starts_with("no prices for region ap-south-1")));
    let lines = cost_of(
        "elasticache.cluster",
        "us-east-1",
        json!({"cluster_id": "c", "engine": "redis", "node_type": UNKNOWN}),
    );
    assert_eq!(
        lines[0].unknown.as_deref(),
        Some("`node_type` is known only after apply")
    );
}

#[test]
fn a_replication_group_pays_for_every_node_of_every_shard() {
    // A primary and one replica: num_cache_clusters 2.
    let lines = cost_of(
        "elasticache.replication_group",
        "us-east-1",
        json!({"replication_group_id": "r", "node_type": "cache.t3.micro", "num_cache_clusters": 2}),
    );
    assert_eq!(lines[0].what, "2 × cache.t3.micro redis nodes at $0.017/h");
    assert_close(
        lines[0].monthly.unwrap_or_default(),
        2.0 * 0.017 * HOURS,
        "2 nodes",
    );
    // Cluster mode: 3 shards × (2 replicas + 1) = 9 nodes of cache.r7g.large in us-west-2.
    let lines = cost_of(
        "elasticache.replication_group",
        "us-west-2",
        json!({
            "replication_group_id": "r", "engine": "valkey", "node_type": "cache.r7g.large",
            "num_node_groups": 3, "replicas_per_node_group": 2,
        }),
    );
    assert_eq!(
        lines[0].what,
        "9 × cache.r7g.large valkey nodes at $0.1752/h"
    );
    assert_close(lines[0].hourly.unwrap_or_default(), 9.0 * 0.1752, "9 nodes");
}

#[test]
fn a_bucket_pays_for_its_assumed_storage_and_requests() {
    let lines = cost_of("s3.bucket", "eu-central-1", json!({"name": "site"}));
    // Frankfurt: 1 GB × $0.0245 + 10,000 PUT × $0.0054/1,000 + 100,000 GET × $0.00043/1,000.
    assert_close(
        monthly(&lines),
        0.0245 + 10.0 * 0.0054 + 100.0 * 0.00043,
        "bucket",
    );
    assert!(lines.iter().all(|l| l.usage_priced));
    assert!(lines[0]
        .free_tier
        .as_deref()
        .is_some_and(|n| n.contains("5 GB")));
    // The objects themselves are counted in the bucket's storage assumption.
    let objects = cost_of("s3.objects", "eu-central-1", json!({"bucket": "site"}));
    assert_eq!(objects[0].monthly, Some(0.0));
}

#[test]
fn a_distribution_pays_for_transfer_out_and_https_requests_where_its_viewers_are() {
    let lines = cost_of("cloudfront.distribution", "us-east-1", json!({}));
    // North America: 10 GB × $0.085 + 100,000 requests × $0.0100/10,000.
    assert_close(monthly(&lines), 10.0 * 0.085 + 10.0 * 0.01, "north america");
    assert!(lines
        .iter()
        .all(|l| l.usage_priced && l.free_tier.as_deref().is_some_and(|n| n.contains("1 TB"))));
    let europe = usage_from("cloudfront: { geography: europe, transfer_out_gb: 50 }\n");
    let lines = cost_with("cloudfront.distribution", "us-east-1", json!({}), &europe);
    // Europe: 50 GB × $0.085 + 100,000 requests × $0.0120/10,000.
    assert_close(monthly(&lines), 50.0 * 0.085 + 10.0 * 0.012, "europe");
    let nowhere = usage_from("cloudfront: { geography: antarctica }\n");
    let lines = cost_with("cloudfront.distribution", "us-east-1", json!({}), &nowhere);
    assert!(lines[0]
        .unknown
        .as_deref()
        .is_some_and(|u| u.contains("cloudfront.antarctica.transfer_out_gb")));
    let disabled = cost_of(
        "cloudfront.distribution",
        "us-east-1",
        json!({"enabled": false}),
    );
    assert_eq!(monthly(&disabled), 0.0);
}

#[test]
fn a_function_pays_for_requests_and_gb_seconds_and_lambda_at_edge_at_its_own_prices() {
    let function = |edge: bool, memory: i64, arch: &str| {
        json!({"name": "f", "runtime": "nodejs20.x", "handler": "i.h", "role": "arn:aws:iam::1:role/r",
               "edge": edge, "memory_size": memory, "architectures": arch, "timeout": 3})
    };
    let registry = registry();
    let rt = registry.get("lambda.function").expect("registered");
    let prices = prices();
    let usage = plinth_aws::cost::default_usage();
    let ctx = CostContext {
        region: "us-east-1",
        prices: &prices,
        usage: &usage,
    };
    // 100,000 invocations × 50 ms at 128 MB = 625 GB-s.
    let lines = rt.cost(&props(function(false, 128, "x86_64")), &ctx);
    assert_eq!(
        lines[1].what,
        "Lambda: 625 GB-s (100,000 × 50 ms × 128 MB) × $0.0000166667/GB-s"
    );
    assert_close(monthly(&lines), 0.1 * 0.20 + 625.0 * 0.0000166667, "lambda");
    assert!(lines.iter().all(|l| l.free_tier.is_some()));
    let edge = rt.cost(&props(function(true, 128, "x86_64")), &ctx);
    assert_close(
        monthly(&edge),
        0.1 * 0.60 + 625.0 * 0.00005001,
        "lambda@edge",
    );
    assert!(
        edge.iter().all(|l| l.free_tier.is_none()),
        "no free tier at the edge"
    );
    // arm64 at 512 MB: 100,000 × 0.05 s × 0.5 GB = 2,500 GB-s.
    let arm = rt.cost(&props(function(false, 512, "arm64")), &ctx);
    assert_close(monthly(&arm), 0.1 * 0.20 + 2500.0 * 0.0000133334, "arm64");
}
