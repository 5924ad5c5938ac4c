//! The order `sweep` deletes resources in when no state records how they depend on each
//! other: what uses something goes before what it uses.
//!
//! A distribution holds its certificate, its functions' replicas, its cache policies and
//! origin access controls, and reads its bucket; a cache holds its subnet and parameter
//! groups and its security groups; a function holds its role; a VPC holds everything in it.

/// Resource types, first deleted first. Types not listed go after these, before roles.
pub const TEARDOWN_ORDER: &[&str] = &[
    "cloudfront.distribution",
    "route53.record",
    "lambda.event_source_mapping",
    "lambda.function",
    "acm.certificate",
    "route53.zone",
    "cloudfront.cache_policy",
    "cloudfront.origin_request_policy",
    "cloudfront.response_headers_policy",
    "cloudfront.function",
    "cloudfront.origin_access_control",
    "s3.bucket_policy",
    "s3.objects",
    "s3.bucket",
    // A replication group's member clusters go with it.
    "elasticache.replication_group",
    "elasticache.serverless_cache",
    "elasticache.cluster",
    "elasticache.subnet_group",
    "elasticache.parameter_group",
    // A group lets go of its users when it goes (and AWS takes a deleted user out of its
    // groups anyway).
    "elasticache.user_group",
    "elasticache.user",
    "dynamodb.items",
    "dynamodb.table",
    // An instance holds its groups and subnet until it is terminated.
    "ec2.instance",
    "ec2.security_group",
    // A network goes once nothing is in it: its tables let go of their subnets, the gateway
    // is detached, the subnets are empty.
    "ec2.vpc_endpoint",
    "ec2.route_table",
    "ec2.nat_gateway",
    "ec2.internet_gateway",
    "ec2.subnet",
    "ec2.vpc",
    "logs.log_group",
    // Keys last: buckets, tables and log groups encrypt with them.
    "kms.alias",
    "kms.key",
];

/// Roles go last (anything above may still run as one), after the profiles that hold them.
pub const LAST: &[&str] = &["iam.instance_profile", "iam.role"];

/// Where a type's resources come in the teardown: lower goes first.
pub fn teardown_rank(type_name: &str) -> usize {
    if let Some(i) = TEARDOWN_ORDER.iter().position(|t| *t == type_name) {
        return i;
    }
    match LAST.iter().position(|t| *t == type_name) {
        Some(i) => TEARDOWN_ORDER.len() + 1 + i,
        None => TEARDOWN_ORDER.len(),
    }
}
