//! AWS prices for cost estimates: the dated price table shipped in the repository
//! (`prices/aws-prices.json`, compiled in so the binary works anywhere), the course-sized
//! usage defaults, and the lookups the resource types share. This is the one place that
//! knows where in the table each AWS price sits; each type's cost rule (the arithmetic) is
//! in the type's own file.

use plinth_core::cost::{CostContext, CostLine, PriceError, PriceTable, Usage, UsageDefault};
use plinth_core::value::{contains_unknown, Props};
use serde_json::Value;

/// The shipped price table.
pub const SHIPPED_PRICES: &str = include_str!("../../../prices/aws-prices.json");
/// How the shipped table is named in messages.
pub const SHIPPED_ORIGIN: &str = "built in, from prices/aws-prices.json";

/// The price table compiled into the binary.
pub fn shipped_prices() -> Result<PriceTable, PriceError> {
    PriceTable::parse(SHIPPED_PRICES, SHIPPED_ORIGIN)
}

/// Course-sized monthly usage, for the parts AWS bills by use: a lab's worth of traffic.
pub const USAGE_DEFAULTS: &[UsageDefault] = &[
    UsageDefault::number(
        "dynamodb.reads",
        1_000_000.0,
        "read request units a month per on-demand table",
    ),
    UsageDefault::number(
        "dynamodb.writes",
        1_000_000.0,
        "write request units a month per on-demand table",
    ),
    UsageDefault::number("dynamodb.storage_gb", 1.0, "GB stored per table"),
    UsageDefault::number(
        "ec2.nat_gateway_gb",
        10.0,
        "GB a month through each NAT gateway (package installs, updates)",
    ),
    UsageDefault::number("s3.storage_gb", 1.0, "GB stored per bucket"),
    UsageDefault::number(
        "s3.put_requests",
        10_000.0,
        "PUT requests a month per bucket",
    ),
    UsageDefault::number(
        "s3.get_requests",
        100_000.0,
        "GET requests a month per bucket",
    ),
    UsageDefault::number(
        "cloudfront.transfer_out_gb",
        10.0,
        "GB a month out to viewers per distribution",
    ),
    UsageDefault::number(
        "cloudfront.requests",
        100_000.0,
        "HTTPS requests a month per distribution",
    ),
    UsageDefault::text(
        "cloudfront.geography",
        "north_america",
        "where viewers are (north_america or europe)",
    ),
    UsageDefault::number(
        "lambda.invocations",
        100_000.0,
        "invocations a month per function (Lambda@Edge too)",
    ),
    UsageDefault::number(
        "lambda.duration_ms",
        50.0,
        "milliseconds per invocation, at the function's configured memory",
    ),
    UsageDefault::number(
        "kms.requests",
        10_000.0,
        "requests a month per KMS key (encrypting and decrypting for buckets, tables, logs)",
    ),
    UsageDefault::number(
        "logs.ingested_gb",
        1.0,
        "GB a month written to each log group",
    ),
    UsageDefault::number("logs.stored_gb", 1.0, "GB kept in each log group"),
    UsageDefault::number(
        "elasticache.serverless_storage_gb",
        0.1,
        "GB a serverless cache holds on average (a lab's few MB; Valkey bills at least 0.1)",
    ),
    UsageDefault::number(
        "elasticache.serverless_ecpu_millions",
        10.0,
        "million ECPUs a month per serverless cache (a read or write of up to 1 KB is one)",
    ),
];

/// The defaults, with nothing overridden.
pub fn default_usage() -> Usage {
    Usage::new(USAGE_DEFAULTS)
}

/// A free-tier offer's description (`free_tier.<service>.note`), when the table has one.
pub fn free_tier(ctx: &CostContext, service: &str) -> Option<String> {
    ctx.prices
        .text(&["free_tier", service, "note"])
        .map(str::to_string)
}

/// A line for a type AWS does not charge for, in the table's words when it has them.
pub fn free(ctx: &CostContext, type_name: &str) -> Vec<CostLine> {
    let what = ctx
        .prices
        .text(&["free", type_name])
        .map(str::to_string)
        .unwrap_or_else(|| format!("{type_name}: no charge"));
    vec![CostLine::free(what)]
}

/// A line whose input is known only after apply (a reference to another resource).
pub fn known_after_apply(what: &str, prop: &str) -> CostLine {
    CostLine::unknown(what, format!("`{prop}` is known only after apply"))
}

/// The integer property `key` (`default` when absent); `None` while it is known only after
/// apply.
pub fn known_count(props: &Props, key: &str, default: i64) -> Option<i64> {
    match props.get(key) {
        None | Some(Value::Null) => Some(default),
        Some(v) if contains_unknown(v) => None,
        Some(v) => v.as_i64(),
    }
}

/// The hours of the public IPv4 address a resource holds (a NAT gateway's, an instance's).
pub fn public_ipv4_line(ctx: &CostContext) -> CostLine {
    match ctx.regional_price(&["ec2", "public_ipv4_hour"]) {
        Ok(hour) => CostLine::per_hour(
            format!(
                "its public IPv4 address at ${}/h",
                plinth_core::cost::price_text(hour)
            ),
            hour,
        ),
        Err(e) => CostLine::unknown("public IPv4 address", e.to_string()),
    }
}

/// ElastiCache: USD per node-hour of `node_type` running `engine`.
pub fn cache_node_hour(
    ctx: &CostContext,
    engine: &str,
    node_type: &str,
) -> Result<f64, PriceError> {
    ctx.regional_price(&["elasticache", engine, node_type])
}

/// Whether a cache node type is covered by ElastiCache's free tier.
pub fn cache_node_free_tier(ctx: &CostContext, node_type: &str) -> Option<String> {
    if ctx
        .prices
        .lists(&["free_tier", "elasticache", "node_types"], node_type)
    {
        free_tier(ctx, "elasticache")
    } else {
        None
    }
}

/// `nodes` cache nodes of one type: the per-hour line ElastiCache bills, or why it cannot be
/// priced. Shared by clusters and replication groups.
pub fn cache_nodes_line(ctx: &CostContext, engine: &str, node_type: &str, nodes: i64) -> CostLine {
    let what = format!(
        "{nodes} × {node_type} {engine} node{}",
        if nodes == 1 { "" } else { "s" }
    );
    match cache_node_hour(ctx, engine, node_type) {
        Ok(price) => CostLine::per_hour(
            format!("{what} at ${}/h", plinth_core::cost::price_text(price)),
            price * nodes as f64,
        )
        .with_free_tier(cache_node_free_tier(ctx, node_type)),
        Err(e) => CostLine::unknown(what, e.to_string()),
    }
}

/// DynamoDB's prices in the context's region.
pub struct DynamodbPrices {
    pub rcu_hour: f64,
    pub wcu_hour: f64,
    pub read_per_million: f64,
    pub write_per_million: f64,
    pub storage_gb_month: f64,
    pub pitr_gb_month: f64,
}

pub fn dynamodb_prices(ctx: &CostContext) -> Result<DynamodbPrices, PriceError> {
    let p = |path: &[&str]| {
        let mut full = vec!["dynamodb"];
        full.extend_from_slice(path);
        ctx.regional_price(&full)
    };
    Ok(DynamodbPrices {
        rcu_hour: p(&["provisioned", "rcu_hour"])?,
        wcu_hour: p(&["provisioned", "wcu_hour"])?,
        read_per_million: p(&["on_demand", "read_per_million"])?,
        write_per_million: p(&["on_demand", "write_per_million"])?,
        storage_gb_month: p(&["storage_gb_month"])?,
        pitr_gb_month: p(&["pitr_gb_month"])?,
    })
}

/// S3 Standard's prices in the context's region.
pub struct S3Prices {
    pub storage_gb_month: f64,
    pub put_per_1000: f64,
    pub get_per_1000: f64,
}

pub fn s3_prices(ctx: &CostContext) -> Result<S3Prices, PriceError> {
    Ok(S3Prices {
        storage_gb_month: ctx.regional_price(&["s3", "standard_gb_month"])?,
        put_per_1000: ctx.regional_price(&["s3", "put_per_1000"])?,
        get_per_1000: ctx.regional_price(&["s3", "get_per_1000"])?,
    })
}

/// CloudFront's prices for viewers in `geography` (north_america, europe).
pub struct CloudFrontPrices {
    pub transfer_out_gb: f64,
    pub https_requests_per_10000: f64,
}

pub fn cloudfront_prices(
    ctx: &CostContext,
    geography: &str,
) -> Result<CloudFrontPrices, PriceError> {
    Ok(CloudFrontPrices {
        transfer_out_gb: ctx.global_price(&["cloudfront", geography, "transfer_out_gb"])?,
        https_requests_per_10000: ctx.global_price(&[
            "cloudfront",
            geography,
            "https_requests_per_10000",
        ])?,
    })
}

/// Lambda's prices: per million requests and per GB-second.
pub struct LambdaPrices {
    pub requests_per_million: f64,
    pub gb_second: f64,
}

/// Lambda@Edge is priced the same everywhere; ordinary functions by region and architecture.
pub fn lambda_prices(
    ctx: &CostContext,
    edge: bool,
    arm64: bool,
) -> Result<LambdaPrices, PriceError> {
    if edge {
        return Ok(LambdaPrices {
            requests_per_million: ctx.global_price(&["lambda_edge", "requests_per_million"])?,
            gb_second: ctx.global_price(&["lambda_edge", "gb_second"])?,
        });
    }
    let gb_second = if arm64 {
        "gb_second_arm64"
    } else {
        "gb_second"
    };
    Ok(LambdaPrices {
        requests_per_million: ctx.regional_price(&["lambda", "requests_per_million"])?,
        gb_second: ctx.regional_price(&["lambda", gb_second])?,
    })
}
