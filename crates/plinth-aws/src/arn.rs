//! Reading ARNs (`arn:partition:service:region:account:resource`), for the types'
//! [`id_from_arn`](plinth_core::resource::ResourceType::id_from_arn), and the partition
//! that writing one needs.

/// The parts of an ARN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arn<'a> {
    pub service: &'a str,
    /// Empty for services without regions (S3 buckets, CloudFront, IAM).
    pub region: &'a str,
    /// Everything after the account: `table/users`, `function:rewrite:3`.
    pub resource: &'a str,
}

/// The partition of a region, for ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Splits an ARN; `None` when the text is not one.
pub fn parse(arn: &str) -> Option<Arn<'_>> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let _partition = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let _account = parts.next()?;
    let resource = parts.next()?;
    (!service.is_empty() && !resource.is_empty()).then_some(Arn {
        service,
        region,
        resource,
    })
}

/// The name after `prefix` in an ARN of `service` (`table/` in `…:table/users` gives
/// `users`). Only the resource itself: a table's stream (`table/users/stream/…`) or a
/// function's version (`function:f:3`) is not it.
pub fn name_after(arn: &str, service: &str, prefix: &str) -> Option<String> {
    let parsed = parse(arn).filter(|a| a.service == service)?;
    let name = parsed.resource.strip_prefix(prefix)?;
    (!name.is_empty() && !name.contains(['/', ':'])).then(|| name.to_string())
}

/// The last path segment after `prefix` (an IAM role `role/service-role/edge` is `edge`).
pub fn last_segment_after(arn: &str, service: &str, prefix: &str) -> Option<String> {
    let parsed = parse(arn).filter(|a| a.service == service)?;
    let rest = parsed.resource.strip_prefix(prefix)?;
    let name = rest.rsplit('/').next().unwrap_or_default();
    (!name.is_empty()).then(|| name.to_string())
}

/// The region an ARN's resource lives in: its own, `us-east-1` for the global services
/// (CloudFront, IAM), and `None` when the ARN does not say (S3 buckets).
pub fn home_region(arn: &str) -> Option<String> {
    let parsed = parse(arn)?;
    if !parsed.region.is_empty() {
        return Some(parsed.region.to_string());
    }
    matches!(parsed.service, "cloudfront" | "iam" | "route53").then(|| GLOBAL_REGION.to_string())
}

/// Where AWS keeps what is global: CloudFront, IAM, and the tagging answers about them.
pub const GLOBAL_REGION: &str = "us-east-1";
