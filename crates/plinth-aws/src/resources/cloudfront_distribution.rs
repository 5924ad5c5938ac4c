//! `cloudfront.distribution`: a CloudFront distribution with its origins, behaviors,
//! certificate, error pages and edge functions.
//!
//! Every change goes through CloudFront's ETag protocol (read the config and its ETag, send
//! the change with `If-Match`), retried from a fresh read on `PreconditionFailed`. A change
//! takes minutes to reach the edge (`InProgress` → `Deployed`); plinth waits for it unless
//! `wait_for_deployment: false`. A distribution can only be deleted once it is disabled and
//! that is deployed, so a delete disables, waits and deletes; under `destroy --no-wait` it
//! is left pending after the disable and the next run finishes it. `invalidate_on` creates
//! an invalidation whenever its values change (e.g. the digest of uploaded files).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    Distribution as AwsDistribution, DistributionConfig, DistributionConfigWithTags,
    InvalidationBatch, Paths, Tag, TagKeys, Tags,
};
use aws_sdk_cloudfront::Client;
use plinth_core::resource::{
    ErrorKind, Linked, NormalizeContext, Observed, OpContext, Progress, PropIssue, ResourceError,
    ResourceResult, ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, get_path, PathSeg, Props};
use serde_json::{json, Map, Value};
use tracing::debug;

use crate::errors::{self, SendExt};
use crate::resources::cloudfront_common::{
    managed_names, policy_id, with_fresh_etag, CLOUDFRONT_REGION, MANAGED_PREFIX,
};
use crate::resources::cloudfront_distribution_config::{
    self as config, built, ALLOWED_METHOD_SETS, CACHED_METHOD_SETS, DEFAULT_CERTIFICATE_TLS,
    FAILOVER_STATUS_CODES, FUNCTION_EVENTS, GEO_TYPES, HTTP_VERSIONS, LAMBDA_EVENTS, METHODS,
    ORIGIN_PROTOCOL_POLICIES, ORIGIN_SSL_PROTOCOLS, PLINTH_ONLY, POLICY_KINDS, PRICE_CLASSES,
    SSL_SUPPORT_METHODS, TLS_POLICIES, VIEWER_PROTOCOL_POLICIES,
};
use crate::resources::tags;
use crate::wait::{self, Poll};
use crate::Aws;

/// CloudFront's hosted zone for alias records, the same for every distribution.
pub const HOSTED_ZONE_ID: &str = "Z2FDTNDATAQYW2";
/// A configuration usually reaches every edge location in 5–15 minutes.
const DEPLOY_LIMIT: Duration = Duration::from_secs(45 * 60);
const DEPLOYED: &str = "Deployed";
/// CreateDistribution's answer to a CallerReference it has seen before.
const DISTRIBUTION_EXISTS: &str = "DistributionAlreadyExists";
const PENDING_REASON: &str = "disabled; CloudFront deletes it once the disabled configuration \
                              is deployed (5–15 minutes); the next plinth destroy/apply finishes it";
/// The error codes CloudFront accepts custom error responses for.
const ERROR_CODES: &[i64] = &[400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504];
/// Lambda@Edge limits by trigger: viewer triggers run with little memory and time.
const VIEWER_MEMORY_MB: i64 = 128;
const VIEWER_TIMEOUT_S: i64 = 5;
const ORIGIN_TIMEOUT_S: i64 = 30;

/// The `cloudfront.distribution` resource type.
pub struct Distribution {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl Distribution {
    pub fn new(aws: Arc<Aws>) -> Distribution {
        Distribution {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "cloudfront.distribution",
        description:
            "A CloudFront distribution: origins, cache behaviors, certificate and edge functions",
        kind: TypeKind::Managed,
        taggable: true,
        properties: vec![
            Prop::new("enabled", Shape::Bool).doc("serve requests; default true"),
            Prop::new("comment", Shape::String).doc("a comment; default \"\""),
            Prop::new("aliases", Shape::list(Shape::String))
                .doc("alternate domain names (CNAMEs); need a certificate covering them"),
            Prop::new("default_root_object", Shape::String)
                .doc("the object served for `/` (index.html, without a leading /)"),
            Prop::new("price_class", Shape::Enum(PRICE_CLASSES))
                .doc("the edge locations used; default PriceClass_All"),
            Prop::new("http_version", Shape::Enum(HTTP_VERSIONS))
                .doc("the highest HTTP version viewers may use; default http2"),
            Prop::new("ipv6", Shape::Bool)
                .known_as(&["is_ipv6_enabled"])
                .doc("answer over IPv6; default true"),
            Prop::new("certificate", Shape::String)
                .pins_referent_region(CLOUDFRONT_REGION)
                .known_as(&["acm_certificate_arn", "viewer_certificate"])
                .holds_referent()
                .doc("an ACM certificate ARN (in us-east-1); default CloudFront's own"),
            Prop::new("minimum_protocol_version", Shape::Enum(TLS_POLICIES)).doc(
                "the viewer TLS policy; default TLSv1.2_2021 with a certificate, TLSv1 without",
            ),
            Prop::new("ssl_support_method", Shape::Enum(SSL_SUPPORT_METHODS))
                .doc("how the certificate is served; default sni-only (with a certificate)"),
            Prop::new("origins", Shape::list(origin_shape()))
                .required()
                .known_as(&["origin"])
                .doc("where CloudFront fetches content from"),
            Prop::new("origin_groups", Shape::list(origin_group_shape()))
                .known_as(&["origin_group"])
                .doc("failover pairs a behavior can target like an origin: CloudFront retries GET, HEAD and OPTIONS requests on the secondary when the primary fails"),
            Prop::new("default_behavior", behavior_shape(false))
                .required()
                .known_as(&["default_cache_behavior"])
                .doc("how requests no path behavior matches are handled"),
            Prop::new("behaviors", Shape::list(behavior_shape(true)))
                .known_as(&["ordered_cache_behavior", "cache_behaviors"])
                .doc("path behaviors, in order of precedence"),
            Prop::new("custom_error_responses", Shape::list(error_shape()))
                .doc("custom pages and caching for error codes"),
            Prop::new("logging", Shape::Object(logging_props()))
                .known_as(&["logging_config"])
                .doc("standard access logs to an S3 bucket (whose ACLs must be on); default off"),
            Prop::new("geo_restriction", geo_shape())
                .known_as(&["restrictions"])
                .doc("countries allowed or blocked"),
            Prop::new("wait_for_deployment", Shape::Bool)
                .doc("wait until changes are deployed (5–15 min); default true (plinth only)"),
            Prop::new("invalidate_on", Shape::list(Shape::Any))
                .doc("values whose change creates an invalidation (plinth only)"),
            Prop::new("invalidation_paths", Shape::list(Shape::String))
                .doc("the paths invalidated; default [\"/*\"] (plinth only)"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the distribution"),
        ],
        attributes: vec![
            Attr::new("id", Shape::String, "the distribution id (E…)"),
            Attr::new("arn", Shape::String, "the distribution ARN"),
            Attr::new(
                "domain_name",
                Shape::String,
                "the distribution's domain (d….cloudfront.net)",
            ),
            Attr::new(
                "hosted_zone_id",
                Shape::String,
                "the Route 53 zone for alias records (Z2FDTNDATAQYW2)",
            ),
            Attr::new("status", Shape::String, "InProgress or Deployed"),
        ],
    }
}

fn origin_shape() -> Shape {
    Shape::Object(vec![
        Prop::new("id", Shape::String)
            .required()
            .known_as(&["origin_id"])
            .doc("the origin's name, which behaviors refer to"),
        Prop::new("domain_name", Shape::String)
            .required()
            .doc("e.g. ${site.regional_domain_name} or api.example.com"),
        Prop::new("origin_path", Shape::String).doc("a path prefix (/static); default \"\""),
        Prop::new("origin_access_control", Shape::String)
            .known_as(&["origin_access_control_id"])
            .holds_referent()
            .doc("an origin access control id, for S3 origins: ${oac.id}"),
        Prop::new("custom", Shape::Object(custom_origin_props()))
            .known_as(&["custom_origin_config"])
            .doc("a custom (HTTP) origin; without it the origin is an S3 bucket"),
        Prop::new("custom_headers", Shape::map(Shape::String))
            .known_as(&["custom_header"])
            .doc("headers CloudFront adds to origin requests"),
        Prop::new("connection_attempts", Shape::int_range(1, 3)).doc("default 3"),
        Prop::new("connection_timeout", Shape::int_range(1, 10)).doc("seconds; default 10"),
        Prop::new("origin_shield", Shape::String).doc(
            "an Origin Shield region (the AWS region nearest the origin, e.g. us-east-1): one more caching layer; default off",
        ),
    ])
}

fn origin_group_shape() -> Shape {
    Shape::Object(vec![
        Prop::new("id", Shape::String)
            .required()
            .known_as(&["origin_id"])
            .doc("the group's name, which behaviors refer to as their origin"),
        Prop::new("primary", Shape::String)
            .required()
            .known_as(&["member"])
            .doc("the id of the origin asked first"),
        Prop::new("secondary", Shape::String)
            .required()
            .doc("the id of the origin asked when the primary fails"),
        Prop::new("failover_status_codes", Shape::list(Shape::int_range(400, 599)))
            .known_as(&["failover_criteria", "status_codes"])
            .doc("the primary's answers that send a request to the secondary (400, 403, 404, 416, 500, 502, 503, 504); default [500, 502, 503, 504]; timeouts and refused connections always do"),
    ])
}

fn logging_props() -> Vec<Prop> {
    vec![
        Prop::new("bucket", Shape::String)
            .required()
            .doc("the log bucket's domain name: ${logs.domain_name} (NAME.s3.amazonaws.com)"),
        Prop::new("prefix", Shape::String).doc("a key prefix for the log files; default \"\""),
        Prop::new("include_cookies", Shape::Bool).doc("log cookies too; default false"),
    ]
}

fn custom_origin_props() -> Vec<Prop> {
    vec![
        Prop::new("http_port", Shape::int_range(1, 65535)).doc("default 80"),
        Prop::new("https_port", Shape::int_range(1, 65535)).doc("default 443"),
        Prop::new("protocol_policy", Shape::Enum(ORIGIN_PROTOCOL_POLICIES))
            .known_as(&["origin_protocol_policy"])
            .doc("default https-only"),
        Prop::new(
            "ssl_protocols",
            Shape::list(Shape::Enum(ORIGIN_SSL_PROTOCOLS)),
        )
        .known_as(&["origin_ssl_protocols"])
        .doc("default [TLSv1.2]"),
        Prop::new("read_timeout", Shape::int_range(1, 180))
            .known_as(&["origin_read_timeout"])
            .doc("seconds; default 30"),
        Prop::new("keepalive_timeout", Shape::int_range(1, 180))
            .known_as(&["origin_keepalive_timeout"])
            .doc("seconds; default 5"),
    ]
}

fn behavior_shape(with_path: bool) -> Shape {
    let mut props = Vec::new();
    if with_path {
        props.push(
            Prop::new("path", Shape::String)
                .required()
                .known_as(&["path_pattern"])
                .doc("the path pattern (/api/*)"),
        );
    }
    props.extend([
        Prop::new("origin", Shape::String)
            .required()
            .known_as(&["target_origin_id"])
            .doc("the id of the origin requests go to"),
        Prop::new(
            "viewer_protocol_policy",
            Shape::Enum(VIEWER_PROTOCOL_POLICIES),
        )
        .doc("default redirect-to-https"),
        Prop::new("allowed_methods", Shape::list(Shape::Enum(METHODS))).doc("default [GET, HEAD]"),
        Prop::new("cached_methods", Shape::list(Shape::Enum(METHODS))).doc("default [GET, HEAD]"),
        Prop::new("compress", Shape::Bool).doc("compress responses; default true"),
        Prop::new("cache_policy", Shape::String)
            .known_as(&["cache_policy_id"])
            .holds_referent()
            .doc("managed:Name or a policy id; default managed:CachingOptimized"),
        Prop::new("origin_request_policy", Shape::String)
            .known_as(&["origin_request_policy_id"])
            .holds_referent()
            .doc("managed:Name or a policy id"),
        Prop::new("response_headers_policy", Shape::String)
            .known_as(&["response_headers_policy_id"])
            .holds_referent()
            .doc("managed:Name or a policy id"),
        Prop::new("lambda_functions", Shape::list(lambda_shape()))
            .known_as(&[
                "lambda_function_association",
                "lambda_function_associations",
            ])
            .doc("Lambda@Edge functions, at most one per event"),
        Prop::new("functions", Shape::list(function_shape()))
            .known_as(&["function_association", "function_associations"])
            .doc("CloudFront Functions, at most one per event"),
    ]);
    Shape::Object(props)
}

fn lambda_shape() -> Shape {
    Shape::Object(vec![
        Prop::new("event", Shape::Enum(LAMBDA_EVENTS))
            .required()
            .known_as(&["event_type"]),
        Prop::new("arn", Shape::String)
            .required()
            .pins_referent_region(CLOUDFRONT_REGION)
            .known_as(&["lambda_arn", "lambda_function_arn"])
            .holds_referent()
            .doc("a numbered function version's ARN: ${fn.qualified_arn}"),
        Prop::new("include_body", Shape::Bool)
            .doc("pass the request body (request events only); default false"),
    ])
}

fn function_shape() -> Shape {
    Shape::Object(vec![
        Prop::new("event", Shape::Enum(FUNCTION_EVENTS))
            .required()
            .known_as(&["event_type"]),
        Prop::new("arn", Shape::String)
            .required()
            .known_as(&["function_arn"])
            .doc("the CloudFront Function's ARN"),
    ])
}

fn error_shape() -> Shape {
    Shape::Object(vec![
        Prop::new("error_code", Shape::int_range(400, 599))
            .required()
            .doc("the HTTP error code (403, 404, …)"),
        Prop::new("response_code", Shape::int_range(200, 599))
            .doc("the code sent instead (with response_page)"),
        Prop::new("response_page", Shape::String)
            .known_as(&["response_page_path"])
            .doc("the page sent instead (/index.html)"),
        Prop::new("ttl", Shape::int_range(0, 31_536_000))
            .known_as(&["error_caching_min_ttl"])
            .doc("seconds the error is cached; default 10"),
    ])
}

fn geo_shape() -> Shape {
    Shape::Object(vec![
        Prop::new("type", Shape::Enum(GEO_TYPES))
            .known_as(&["restriction_type"])
            .doc("none, whitelist or blacklist"),
        Prop::new("locations", Shape::list(Shape::String)).doc("ISO 3166-1 alpha-2 country codes"),
    ])
}

/// Cost rule: data transfer out and HTTPS requests, from the usage assumptions, at the
/// prices of the geography the viewers are assumed to be in. A disabled distribution
/// serves nothing and costs nothing.
fn distribution_cost(
    props: &plinth_core::value::Props,
    ctx: &plinth_core::cost::CostContext,
) -> Vec<plinth_core::cost::CostLine> {
    use plinth_core::cost::{count_text, price_text, CostLine};
    if plinth_core::value::bool_of(props, "enabled") == Some(false) {
        return vec![CostLine::free("disabled: serves no requests")];
    }
    let geography = ctx.usage_text("cloudfront.geography");
    let prices = match crate::cost::cloudfront_prices(ctx, &geography) {
        Ok(prices) => prices,
        Err(e) => return vec![CostLine::unknown("CloudFront traffic", e.to_string())],
    };
    let free_tier = crate::cost::free_tier(ctx, "cloudfront");
    let gb = ctx.usage("cloudfront.transfer_out_gb");
    let requests = ctx.usage("cloudfront.requests");
    vec![
        CostLine::usage_per_month(
            format!(
                "{} GB out × ${}/GB ({geography})",
                count_text(gb),
                price_text(prices.transfer_out_gb)
            ),
            gb * prices.transfer_out_gb,
        )
        .with_free_tier(free_tier.clone()),
        CostLine::usage_per_month(
            format!(
                "{} HTTPS requests × ${}/10,000 ({geography})",
                count_text(requests),
                price_text(prices.https_requests_per_10000)
            ),
            requests / 10_000.0 * prices.https_requests_per_10000,
        )
        .with_free_tier(free_tier),
    ]
}

#[async_trait]
impl ResourceType for Distribution {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(
        &self,
        props: &plinth_core::value::Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        distribution_cost(props, ctx)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        check_viewer_side(props, &mut issues);
        let origin_ids = check_origins(props, &mut issues);
        let group_ids = check_origin_groups(props, origin_ids.as_deref(), &mut issues);
        let targets = origin_ids.zip(group_ids);
        for (path, behavior) in behaviors(props) {
            check_behavior(&path, behavior, targets.as_ref(), &mut issues);
        }
        check_paths_unique(props, &mut issues);
        check_error_responses(props, &mut issues);
        check_geo(props, &mut issues);
        check_invalidation_paths(props, &mut issues);
        issues
    }

    fn check_linked(&self, props: &Props, linked: &[Linked]) -> Vec<PropIssue> {
        let root = Value::Object(props.clone());
        linked
            .iter()
            .filter(|l| l.type_name == "lambda.function")
            .filter_map(|l| edge_event(&root, &l.path).map(|event| (l, event)))
            .flat_map(|(l, event)| edge_function_issues(l, &event))
            .collect()
    }

    fn pinned_region(&self, _props: &Props) -> Option<&'static str> {
        Some(CLOUDFRONT_REGION)
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        config::canonicalize(props);
        Ok(())
    }

    fn known_attrs(&self, _props: &Props) -> Props {
        let mut attrs = Props::new();
        attrs.insert("hosted_zone_id".into(), json!(HOSTED_ZONE_ID));
        attrs
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.cloudfront(&ctx.region);
        let Some((distribution, _)) = get_distribution(&client, id).await? else {
            return Ok(None);
        };
        let tags = match list_tags(&client, distribution.arn()).await {
            Ok(tags) => tags,
            // Deleted between the two calls.
            Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        observe(&distribution, tags, prior).map(Some)
    }

    /// A distribution has no name: an interrupted create is found by its owner tags.
    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let wanted = tags::tags_of(props);
        let filters: Vec<_> = tags::OWNER_TAGS
            .iter()
            .filter_map(|k| wanted.get(*k).map(|v| (*k, v)))
            .map(|(k, v)| {
                aws_sdk_resourcegroupstagging::types::TagFilter::builder()
                    .key(k)
                    .values(v)
                    .build()
            })
            .collect();
        if filters.is_empty() {
            return Ok(None);
        }
        let out = self
            .aws
            .tagging(CLOUDFRONT_REGION)
            .get_resources()
            .resource_type_filters("cloudfront")
            .set_tag_filters(Some(filters))
            .send()
            .await
            .classified()?;
        let ids: Vec<&str> = out
            .resource_tag_mapping_list()
            .iter()
            .filter_map(|m| m.resource_arn())
            .filter_map(|arn| arn.split_once(":distribution/").map(|(_, id)| id))
            .collect();
        for id in ids {
            if let Some(found) = self.read(ctx, id, props).await? {
                debug!(id, "adopting a distribution");
                return Ok(tags::ours(found, props));
            }
        }
        Ok(None)
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "cloudfront", "distribution/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.cloudfront(&ctx.region);
        // The create's own token: a run that sends this create again after a kill uses the same
        // reference, which CloudFront answers with DistributionAlreadyExists naming the first.
        let reference = ctx
            .create_token
            .as_deref()
            .map_or_else(caller_reference, |token| format!("plinth-{token}"));
        let distribution_config = config::distribution_config(props, &reference)?;
        let with_tags = DistributionConfigWithTags::builder()
            .distribution_config(built(distribution_config.build())?)
            .tags(aws_tags(&tags::tags_of(props))?)
            .build();
        let sent = client
            .create_distribution_with_tags()
            .distribution_config_with_tags(with_tags)
            .send()
            .await
            .classified();
        let created = match sent {
            Ok(out) => out.distribution().cloned().ok_or_else(|| {
                ResourceError::other("CreateDistributionWithTags returned nothing")
            })?,
            Err(err) if errors::has_code(&err, &[DISTRIBUTION_EXISTS]) => {
                self.adopt_created(ctx, &client, props, err).await?
            }
            Err(err) => return Err(explain_refusal(err, props)),
        };
        debug!(id = created.id(), "created distribution");
        let distribution = if wait_for_deployment(props) {
            wait_deployed(ctx, &client, created.id()).await?
        } else {
            created
        };
        observe(&distribution, tags::tags_of(props), props)
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let ctx = ctx.with_default_deadline(DEPLOY_LIMIT);
        let client = self.aws.cloudfront(&ctx.region);
        let reconfigured = config::distribution_differs(before, after);
        let distribution = if reconfigured {
            let what = format!("updating distribution {id}");
            with_fresh_etag(&what, || update_config(&client, id, after)).await?
        } else {
            get_distribution(&client, id)
                .await?
                .map(|(d, _)| d)
                .ok_or_else(|| crate::errors::vanished(&format!("distribution {id}")))?
        };
        update_tags(&client, distribution.arn(), before, after).await?;
        if invalidation_due(before, after) {
            invalidate(&ctx, &client, id, after).await?;
        }
        let distribution = if reconfigured && wait_for_deployment(after) {
            wait_deployed(&ctx, &client, id).await?
        } else {
            distribution
        };
        observe(&distribution, tags::tags_of(after), after)
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let ctx = ctx.with_default_deadline(DEPLOY_LIMIT);
        let client = self.aws.cloudfront(&ctx.region);
        let what = format!("disabling distribution {id}");
        let status = match with_fresh_etag(&what, || disable(&client, id)).await? {
            Disabled::Gone => return Ok(()),
            Disabled::Now(status) => Some(status),
            Disabled::Already => None,
        };
        if !ctx.wait_for_deletion {
            return delete_if_deployed(&ctx, &client, id, status).await;
        }
        if !wait_disabled(&ctx, &client, id).await? {
            return Ok(());
        }
        delete_disabled(&ctx, &client, id).await
    }
}

// ---------------------------------------------------------------------------------------
// Checks

fn key(name: &str) -> PathSeg {
    PathSeg::Key(name.to_string())
}

fn at(base: &[PathSeg], rest: &[PathSeg], message: impl Into<String>) -> PropIssue {
    let mut path = base.to_vec();
    path.extend_from_slice(rest);
    PropIssue {
        path,
        message: message.into(),
    }
}

/// A value that is known now (no reference left to resolve).
fn known(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !contains_unknown(v))
}

fn known_str(value: Option<&Value>) -> Option<&str> {
    known(value).and_then(Value::as_str)
}

fn known_strings(value: Option<&Value>) -> Option<Vec<&str>> {
    known(value)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
}

fn list<'a>(props: &'a Map<String, Value>, name: &str) -> &'a [Value] {
    props
        .get(name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Every behavior with its path: the default one first, then the path behaviors.
fn behaviors(props: &Props) -> Vec<(Vec<PathSeg>, &Map<String, Value>)> {
    let mut out = Vec::new();
    if let Some(b) = props.get("default_behavior").and_then(Value::as_object) {
        out.push((vec![key("default_behavior")], b));
    }
    for (i, b) in list(props, "behaviors").iter().enumerate() {
        if let Some(b) = b.as_object() {
            out.push((vec![key("behaviors"), PathSeg::Index(i)], b));
        }
    }
    out
}

fn check_viewer_side(props: &Props, issues: &mut Vec<PropIssue>) {
    let has_certificate = props.contains_key("certificate");
    let aliases = known_strings(props.get("aliases")).unwrap_or_default();
    if !aliases.is_empty() && !has_certificate {
        issues.push(PropIssue::at(
            &["aliases"],
            "aliases need a certificate: an ACM certificate in us-east-1 covering them",
        ));
    }
    if !has_certificate {
        if props.contains_key("ssl_support_method") {
            issues.push(PropIssue::at(
                &["ssl_support_method"],
                "ssl_support_method applies only with a certificate",
            ));
        }
        let tls = known_str(props.get("minimum_protocol_version"));
        if tls.is_some_and(|t| t != DEFAULT_CERTIFICATE_TLS) {
            issues.push(PropIssue::at(
                &["minimum_protocol_version"],
                "with CloudFront's own certificate the security policy is always TLSv1; \
                 give a certificate to choose another",
            ));
        }
    }
    if known_str(props.get("default_root_object")).is_some_and(|o| o.starts_with('/')) {
        issues.push(PropIssue::at(
            &["default_root_object"],
            "write the object name without a leading / (index.html)",
        ));
    }
}

/// Checks the origins and returns their ids, when all are known.
fn check_origins(props: &Props, issues: &mut Vec<PropIssue>) -> Option<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    let mut all_known = true;
    for (i, origin) in list(props, "origins").iter().enumerate() {
        let base = [key("origins"), PathSeg::Index(i)];
        match known_str(origin.get("id")) {
            Some(id) if ids.iter().any(|seen| seen == id) => issues.push(at(
                &base,
                &[key("id")],
                format!("origin id {id} is used twice"),
            )),
            Some(id) => ids.push(id.to_string()),
            None => all_known = false,
        }
        let path = known_str(origin.get("origin_path")).unwrap_or_default();
        if !path.is_empty() && (!path.starts_with('/') || path.ends_with('/')) {
            issues.push(at(
                &base,
                &[key("origin_path")],
                "an origin path starts with / and does not end with / (/static)",
            ));
        }
    }
    if list(props, "origins").is_empty() && props.contains_key("origins") {
        issues.push(PropIssue::at(
            &["origins"],
            "a distribution needs an origin",
        ));
    }
    all_known.then_some(ids)
}

/// Checks the origin groups and returns their ids, when all are known.
fn check_origin_groups(
    props: &Props,
    origin_ids: Option<&[String]>,
    issues: &mut Vec<PropIssue>,
) -> Option<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    let mut all_known = true;
    for (i, group) in list(props, "origin_groups").iter().enumerate() {
        let base = [key("origin_groups"), PathSeg::Index(i)];
        match known_str(group.get("id")) {
            Some(id) if ids.iter().any(|seen| seen == id) => issues.push(at(
                &base,
                &[key("id")],
                format!("origin group id {id} is used twice"),
            )),
            Some(id) if origin_ids.is_some_and(|o| o.iter().any(|seen| seen == id)) => {
                issues.push(at(
                    &base,
                    &[key("id")],
                    format!("{id} is an origin's id already; a group needs a name of its own"),
                ))
            }
            Some(id) => ids.push(id.to_string()),
            None => all_known = false,
        }
        check_group_members(&base, group, origin_ids, issues);
        check_failover_codes(&base, group, issues);
    }
    all_known.then_some(ids)
}

fn check_group_members(
    base: &[PathSeg],
    group: &Value,
    origin_ids: Option<&[String]>,
    issues: &mut Vec<PropIssue>,
) {
    let primary = known_str(group.get("primary"));
    let secondary = known_str(group.get("secondary"));
    if primary.is_some() && primary == secondary {
        issues.push(at(
            base,
            &[key("secondary")],
            "the secondary must be another origin than the primary",
        ));
    }
    let Some(origin_ids) = origin_ids else {
        return;
    };
    for (role, member) in [("primary", primary), ("secondary", secondary)] {
        if let Some(member) = member.filter(|m| !origin_ids.iter().any(|id| id == m)) {
            issues.push(at(
                base,
                &[key(role)],
                format!(
                    "no origin has the id {member}; a group's members are origins: {}",
                    origin_ids.join(", ")
                ),
            ));
        }
    }
}

fn check_failover_codes(base: &[PathSeg], group: &Value, issues: &mut Vec<PropIssue>) {
    let Some(codes) = known(group.get("failover_status_codes")).and_then(Value::as_array) else {
        return;
    };
    if codes.is_empty() {
        issues.push(at(
            base,
            &[key("failover_status_codes")],
            "a group fails over on at least one status code",
        ));
    }
    for (j, code) in codes.iter().enumerate() {
        if code
            .as_i64()
            .is_some_and(|c| !FAILOVER_STATUS_CODES.contains(&c))
        {
            issues.push(at(
                base,
                &[key("failover_status_codes"), PathSeg::Index(j)],
                format!("CloudFront fails over only on {FAILOVER_STATUS_CODES:?}"),
            ));
        }
    }
}

fn check_behavior(
    base: &[PathSeg],
    b: &Map<String, Value>,
    targets: Option<&(Vec<String>, Vec<String>)>,
    issues: &mut Vec<PropIssue>,
) {
    if let (Some(origin), Some((origin_ids, group_ids))) = (known_str(b.get("origin")), targets) {
        let is_group = group_ids.iter().any(|id| id == origin);
        if !is_group && !origin_ids.iter().any(|id| id == origin) {
            let mut names = origin_ids.clone();
            names.extend(group_ids.iter().cloned());
            issues.push(at(
                base,
                &[key("origin")],
                format!(
                    "no origin or origin group has the id {origin}; they are: {}",
                    names.join(", ")
                ),
            ));
        }
        let writes = known_strings(b.get("allowed_methods"))
            .is_some_and(|m| m.iter().any(|m| !["GET", "HEAD", "OPTIONS"].contains(m)));
        if is_group && writes {
            issues.push(at(
                base,
                &[key("allowed_methods")],
                format!(
                    "{origin} is an origin group, and CloudFront fails over only GET, HEAD and OPTIONS: \
                     allow [GET, HEAD, OPTIONS] at most, or target an origin"
                ),
            ));
        }
    }
    check_methods(base, b, issues);
    check_policies(base, b, issues);
    check_edge_functions(base, b, issues);
}

fn describe_sets(sets: &[&[&str]]) -> String {
    sets.iter()
        .map(|s| format!("[{}]", s.join(", ")))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn is_one_of(methods: &[&str], sets: &[&[&str]]) -> bool {
    sets.iter()
        .any(|set| set.len() == methods.len() && set.iter().all(|m| methods.contains(m)))
}

fn check_methods(base: &[PathSeg], b: &Map<String, Value>, issues: &mut Vec<PropIssue>) {
    let allowed = known_strings(b.get("allowed_methods"));
    let cached = known_strings(b.get("cached_methods"));
    if let Some(allowed) = &allowed {
        if !is_one_of(allowed, ALLOWED_METHOD_SETS) {
            issues.push(at(
                base,
                &[key("allowed_methods")],
                format!(
                    "CloudFront allows the method sets {}",
                    describe_sets(ALLOWED_METHOD_SETS)
                ),
            ));
        }
    }
    let Some(cached) = cached else {
        return;
    };
    if !is_one_of(&cached, CACHED_METHOD_SETS) {
        issues.push(at(
            base,
            &[key("cached_methods")],
            format!(
                "CloudFront caches the method sets {}",
                describe_sets(CACHED_METHOD_SETS)
            ),
        ));
    }
    let allowed = allowed.unwrap_or_else(|| vec!["GET", "HEAD"]);
    if let Some(extra) = cached.iter().find(|m| !allowed.contains(m)) {
        issues.push(at(
            base,
            &[key("cached_methods")],
            format!("{extra} is cached but not in allowed_methods"),
        ));
    }
}

fn check_policies(base: &[PathSeg], b: &Map<String, Value>, issues: &mut Vec<PropIssue>) {
    for (name, table) in POLICY_KINDS {
        let Some(reference) = known_str(b.get(*name)) else {
            continue;
        };
        if reference.starts_with(MANAGED_PREFIX) && policy_id(reference, table).is_none() {
            issues.push(at(
                base,
                &[key(name)],
                format!(
                    "{reference} is not an AWS-managed policy; these are: {}",
                    managed_names(table)
                ),
            ));
        }
    }
}

/// The events of a behavior's `lambda_functions` or `functions` entries, with their index.
fn events<'a>(b: &'a Map<String, Value>, name: &str) -> Vec<(usize, &'a str)> {
    list(b, name)
        .iter()
        .enumerate()
        .filter_map(|(i, f)| known_str(f.get("event")).map(|e| (i, e)))
        .collect()
}

fn check_edge_functions(base: &[PathSeg], b: &Map<String, Value>, issues: &mut Vec<PropIssue>) {
    let lambdas = events(b, "lambda_functions");
    let functions = events(b, "functions");
    for (name, found) in [("lambda_functions", &lambdas), ("functions", &functions)] {
        for (n, (i, event)) in found.iter().enumerate() {
            if found[..n].iter().any(|(_, e)| e == event) {
                issues.push(at(
                    base,
                    &[key(name), PathSeg::Index(*i), key("event")],
                    format!("a behavior has at most one function per event; {event} is taken"),
                ));
            }
        }
    }
    for (i, event) in &functions {
        if lambdas.iter().any(|(_, e)| e == event) {
            issues.push(at(
                base,
                &[key("functions"), PathSeg::Index(*i), key("event")],
                format!("{event} already runs a Lambda@Edge function; a behavior runs one or the other per event"),
            ));
        }
    }
    for (i, lambda) in list(b, "lambda_functions").iter().enumerate() {
        check_lambda_association(base, i, lambda, issues);
    }
}

fn check_lambda_association(
    base: &[PathSeg],
    i: usize,
    lambda: &Value,
    issues: &mut Vec<PropIssue>,
) {
    let mut entry = base.to_vec();
    entry.extend([key("lambda_functions"), PathSeg::Index(i)]);
    let event = known_str(lambda.get("event"));
    let with_body = known(lambda.get("include_body")).and_then(Value::as_bool) == Some(true);
    if with_body && event.is_some_and(|e| e.ends_with("-response")) {
        issues.push(at(
            &entry,
            &[key("include_body")],
            "include_body applies only to viewer-request and origin-request functions",
        ));
    }
    if let Some(problem) = known_str(lambda.get("arn")).and_then(lambda_arn_problem) {
        issues.push(at(&entry, &[key("arn")], problem));
    }
}

/// CloudFront runs only numbered function versions, never `$LATEST` or an alias.
fn lambda_arn_problem(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let numbered = matches!(
        parts.as_slice(),
        ["arn", _, "lambda", _, _, "function", _, version]
            if !version.is_empty() && version.chars().all(|c| c.is_ascii_digit())
    );
    (!numbered).then(|| {
        format!(
            "{arn} is not a numbered function version; CloudFront needs one \
             (…:function:name:1), e.g. ${{fn.qualified_arn}} of a function with `edge: true`"
        )
    })
}

fn check_paths_unique(props: &Props, issues: &mut Vec<PropIssue>) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, b) in list(props, "behaviors").iter().enumerate() {
        let Some(path) = known_str(b.get("path")) else {
            continue;
        };
        if seen.contains(&path) {
            issues.push(at(
                &[key("behaviors"), PathSeg::Index(i)],
                &[key("path")],
                format!("the path {path} has a behavior already"),
            ));
        }
        seen.push(path);
    }
}

fn check_error_responses(props: &Props, issues: &mut Vec<PropIssue>) {
    let mut seen: Vec<i64> = Vec::new();
    for (i, e) in list(props, "custom_error_responses").iter().enumerate() {
        let base = [key("custom_error_responses"), PathSeg::Index(i)];
        if let Some(code) = known(e.get("error_code")).and_then(Value::as_i64) {
            if !ERROR_CODES.contains(&code) {
                issues.push(at(
                    &base,
                    &[key("error_code")],
                    format!("CloudFront customizes only the error codes {ERROR_CODES:?}"),
                ));
            } else if seen.contains(&code) {
                issues.push(at(
                    &base,
                    &[key("error_code")],
                    format!("{code} is listed twice"),
                ));
            }
            seen.push(code);
        }
        let page = e.get("response_page");
        if page.is_some() != e.get("response_code").is_some() {
            issues.push(at(
                &base,
                &[],
                "response_code and response_page go together: the page is sent with that code",
            ));
        }
        if known_str(page).is_some_and(|p| !p.starts_with('/')) {
            issues.push(at(
                &base,
                &[key("response_page")],
                "a page path starts with /",
            ));
        }
    }
}

fn check_geo(props: &Props, issues: &mut Vec<PropIssue>) {
    let Some(geo) = props.get("geo_restriction").and_then(Value::as_object) else {
        return;
    };
    let kind = known_str(geo.get("type")).unwrap_or("none");
    let Some(locations) = known_strings(geo.get("locations")) else {
        return;
    };
    if kind == "none" && !locations.is_empty() {
        issues.push(PropIssue::at(
            &["geo_restriction", "type"],
            "locations need type whitelist or blacklist",
        ));
    }
    if kind != "none" && locations.is_empty() {
        issues.push(PropIssue::at(
            &["geo_restriction", "locations"],
            format!("a {kind} needs at least one country code"),
        ));
    }
}

fn check_invalidation_paths(props: &Props, issues: &mut Vec<PropIssue>) {
    let Some(paths) = known_strings(props.get("invalidation_paths")) else {
        return;
    };
    if paths.is_empty() {
        issues.push(PropIssue::at(
            &["invalidation_paths"],
            "an invalidation needs at least one path; leave the key out for [\"/*\"]",
        ));
    }
    if let Some(bad) = paths.iter().find(|p| !p.starts_with('/')) {
        issues.push(PropIssue::at(
            &["invalidation_paths"],
            format!("{bad}: an invalidation path starts with /"),
        ));
    }
}

/// The event of the Lambda@Edge association a reference at `path` sits in
/// (`…lambda_functions[i].arn`), if it is one and the event is known.
fn edge_event(root: &Value, path: &[PathSeg]) -> Option<String> {
    let [entry @ .., PathSeg::Key(field)] = path else {
        return None;
    };
    let [.., PathSeg::Key(list_name), PathSeg::Index(_)] = entry else {
        return None;
    };
    if field != "arn" || list_name != "lambda_functions" {
        return None;
    }
    let association = get_path(root, entry)?;
    known_str(association.get("event")).map(str::to_string)
}

/// What CloudFront refuses about a function used as Lambda@Edge for `event`.
fn edge_function_issues(linked: &Linked, event: &str) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    let issue = |message: String| PropIssue {
        path: linked.path.clone(),
        message,
    };
    let function = &linked.resource;
    if known(linked.props.get("edge")).is_some_and(|edge| edge.as_bool() != Some(true)) {
        issues.push(issue(format!(
            "Lambda@Edge functions need `edge: true` (set it on {function}, which also \
             places it in us-east-1 and checks its limits)"
        )));
    }
    let number = |name: &str| known(linked.props.get(name)).and_then(Value::as_i64);
    let viewer = event.starts_with("viewer-");
    if let Some(memory) = number("memory_size").filter(|m| viewer && *m > VIEWER_MEMORY_MB) {
        issues.push(issue(format!(
            "{event} functions may have at most {VIEWER_MEMORY_MB} MB of memory; \
             {function} has {memory} MB"
        )));
    }
    let limit = if viewer {
        VIEWER_TIMEOUT_S
    } else {
        ORIGIN_TIMEOUT_S
    };
    if let Some(timeout) = number("timeout").filter(|t| *t > limit) {
        issues.push(issue(format!(
            "{event} functions may run at most {limit} s; {function} has a timeout of {timeout} s"
        )));
    }
    issues
}

// ---------------------------------------------------------------------------------------
// Reading

/// The distribution and its ETag, `None` when it does not exist.
async fn get_distribution(
    client: &Client,
    id: &str,
) -> ResourceResult<Option<(AwsDistribution, Option<String>)>> {
    match client.get_distribution().id(id).send().await.classified() {
        Ok(out) => {
            let etag = out.e_tag().map(str::to_string);
            let distribution = out
                .distribution
                .ok_or_else(|| ResourceError::other("GetDistribution returned no distribution"))?;
            Ok(Some((distribution, etag)))
        }
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

async fn list_tags(client: &Client, arn: &str) -> ResourceResult<BTreeMap<String, String>> {
    let out = client
        .list_tags_for_resource()
        .resource(arn)
        .send()
        .await
        .classified()?;
    Ok(out
        .tags()
        .map(|t| t.items())
        .unwrap_or_default()
        .iter()
        .map(|t| {
            (
                t.key().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// The canonical view of a distribution; the plinth-only properties come from `applied`
/// (the desired or last applied properties).
fn observe(
    distribution: &AwsDistribution,
    tags: BTreeMap<String, String>,
    applied: &Props,
) -> ResourceResult<Observed> {
    let aws_config = distribution.distribution_config().ok_or_else(|| {
        ResourceError::other(format!(
            "CloudFront returned distribution {} without its configuration",
            distribution.id()
        ))
    })?;
    // Canonical already, with the plinth-only defaults in place of what `applied` lacks.
    let mut props = config::props_of(aws_config);
    for name in PLINTH_ONLY {
        if let Some(value) = applied.get(*name) {
            props.insert(name.to_string(), value.clone());
        }
    }
    props.insert("tags".into(), tags::tags_value(tags));
    let attrs = json!({
        "id": distribution.id(),
        "arn": distribution.arn(),
        "domain_name": distribution.domain_name(),
        "hosted_zone_id": HOSTED_ZONE_ID,
        "status": distribution.status(),
    });
    Ok(Observed {
        id: distribution.id().to_string(),
        props,
        attrs: attrs.as_object().cloned().unwrap_or_default(),
    })
}

// ---------------------------------------------------------------------------------------
// Changing

fn wait_for_deployment(props: &Props) -> bool {
    props
        .get("wait_for_deployment")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

impl Distribution {
    /// CreateDistribution answered DistributionAlreadyExists: the CallerReference is one
    /// CloudFront has seen, which for a fresh reference means the SDK sent this create again
    /// after its first answer was lost. AWS names the distribution at the end of its message
    /// ("… Already exists: E2O6U8DECVP5UD"); it is this stack's when its owner tags say so.
    async fn adopt_created(
        &self,
        ctx: &OpContext,
        client: &Client,
        props: &Props,
        err: ResourceError,
    ) -> ResourceResult<AwsDistribution> {
        let named = err
            .message
            .rsplit("Already exists:")
            .next()
            .filter(|_| err.message.contains("Already exists:"))
            .map(|id| id.trim().trim_end_matches('.').to_string());
        let what = "a distribution with this CallerReference";
        let found = match named {
            Some(id) => {
                let found = self.read(ctx, &id, props).await?;
                errors::adopt_if_ours(err, &[DISTRIBUTION_EXISTS], what, || async move {
                    Ok(found.and_then(|f| tags::ours(f, props)))
                })
                .await?
            }
            None => {
                errors::adopt_if_ours(err, &[DISTRIBUTION_EXISTS], what, || self.find(ctx, props))
                    .await?
            }
        };
        get_distribution(client, &found.id)
            .await?
            .map(|(d, _)| d)
            .ok_or_else(|| crate::errors::vanished(&format!("distribution {}", found.id)))
    }
}

/// A fresh CallerReference: CloudFront's idempotency key for creates and invalidations.
fn caller_reference() -> String {
    format!("plinth-{}", uuid::Uuid::new_v4())
}

fn aws_tags(tags: &BTreeMap<String, String>) -> ResourceResult<Tags> {
    let items = tags
        .iter()
        .map(|(k, v)| built(Tag::builder().key(k).value(v).build()))
        .collect::<ResourceResult<Vec<_>>>()?;
    Ok(Tags::builder().set_items(Some(items)).build())
}

/// An alias already served by another distribution (in any account) cannot be added.
/// What to do about CloudFront's refusals of a configuration, which name the problem but
/// not the fix. `props` are the distribution's, for the aliases and ARNs involved.
fn explain_refusal(err: ResourceError, props: &Props) -> ResourceError {
    let strings = |key: &str| -> Vec<String> {
        props
            .get(key)
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let advice = match err.code.as_deref() {
        Some("CNAMEAlreadyExists") => format!(
            "an alias ({}) is already used by another CloudFront distribution, in this account \
             or another (a wildcard alias such as *.example.com counts too): remove it from \
             that distribution first, or choose another alias",
            strings("aliases").join(", ")
        ),
        Some("InvalidViewerCertificate") => format!(
            "CloudFront cannot use certificate {}: it must be an ACM certificate in us-east-1 \
             that is ISSUED (its DNS validation records exist) and covers every alias ({}); \
             `plinth show` gives the certificate's status",
            props
                .get("certificate")
                .and_then(Value::as_str)
                .unwrap_or("(none)"),
            strings("aliases").join(", ")
        ),
        Some("InvalidLambdaFunctionAssociation") => "a Lambda@Edge association must name a \
             published version of a function in us-east-1 (…:function:NAME:3, not $LATEST or \
             an unqualified ARN), within the limits of its event: refer to the function's \
             qualified_arn with `publish: true` and `edge: true`"
            .to_string(),
        _ => return err,
    };
    ResourceError {
        kind: ErrorKind::Invalid,
        message: format!("{advice} (CloudFront: {})", err.message),
        ..err
    }
}

/// Polls until the distribution's configuration is deployed to every edge location.
async fn wait_deployed(
    ctx: &OpContext,
    client: &Client,
    id: &str,
) -> ResourceResult<AwsDistribution> {
    wait::until(ctx, "distribution deploying", DEPLOY_LIMIT, || async move {
        match get_distribution(client, id).await? {
            None => Err(crate::errors::vanished(&format!("distribution {id}"))),
            Some((d, _)) if d.status() == DEPLOYED => Ok(Poll::Ready(d)),
            Some((d, _)) => Ok(Poll::Pending(d.status().to_string())),
        }
    })
    .await
}

/// One attempt at rewriting the configuration from `props`, under the ETag just read.
async fn update_config(
    client: &Client,
    id: &str,
    props: &Props,
) -> ResourceResult<AwsDistribution> {
    let (etag, current) = get_config(client, id)
        .await?
        .ok_or_else(|| crate::errors::vanished(&format!("distribution {id}")))?;
    let desired = config::distribution_config(props, current.caller_reference())?;
    let desired = built(config::keep_unmanaged(desired, &current).build())?;
    debug!(id, etag, "UpdateDistribution");
    let out = client
        .update_distribution()
        .id(id)
        .if_match(etag)
        .distribution_config(desired)
        .send()
        .await
        .classified()
        .map_err(|err| explain_refusal(err, props))?;
    out.distribution
        .ok_or_else(|| ResourceError::other("UpdateDistribution returned no distribution"))
}

/// The current configuration and its ETag, `None` when the distribution is gone.
async fn get_config(
    client: &Client,
    id: &str,
) -> ResourceResult<Option<(String, DistributionConfig)>> {
    let out = match client
        .get_distribution_config()
        .id(id)
        .send()
        .await
        .classified()
    {
        Ok(out) => out,
        Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let etag = out
        .e_tag()
        .ok_or_else(|| ResourceError::other("GetDistributionConfig returned no ETag"))?
        .to_string();
    let current = out
        .distribution_config
        .ok_or_else(|| ResourceError::other("GetDistributionConfig returned no configuration"))?;
    Ok(Some((etag, current)))
}

async fn update_tags(
    client: &Client,
    arn: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let (set, remove) = tags::tag_changes(&tags::tags_of(before), &tags::tags_of(after));
    if !set.is_empty() {
        client
            .tag_resource()
            .resource(arn)
            .tags(aws_tags(&set)?)
            .send()
            .await
            .classified()?;
    }
    if !remove.is_empty() {
        client
            .untag_resource()
            .resource(arn)
            .tag_keys(TagKeys::builder().set_items(Some(remove)).build())
            .send()
            .await
            .classified()?;
    }
    Ok(())
}

/// Whether what the stack ties invalidations to (or the paths) changed since last applied.
fn invalidation_due(before: &Props, after: &Props) -> bool {
    ["invalidate_on", "invalidation_paths"]
        .iter()
        .any(|k| before.get(*k) != after.get(*k))
}

async fn invalidate(
    ctx: &OpContext,
    client: &Client,
    id: &str,
    props: &Props,
) -> ResourceResult<()> {
    let paths: Vec<String> = list(props, "invalidation_paths")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let shown = paths.join(", ");
    let batch = InvalidationBatch::builder()
        .paths(built(
            Paths::builder()
                .quantity(i32::try_from(paths.len()).unwrap_or(i32::MAX))
                .set_items(Some(paths))
                .build(),
        )?)
        .caller_reference(caller_reference())
        .build();
    let out = client
        .create_invalidation()
        .distribution_id(id)
        .invalidation_batch(built(batch)?)
        .send()
        .await
        .classified()?;
    let invalidation = out.invalidation().map(|i| i.id()).unwrap_or("(no id)");
    ctx.notice(format!("invalidation {invalidation} created for {shown}"));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Deleting

/// What the disabling step of a delete did.
enum Disabled {
    Gone,
    /// Disabled now; the status the change put it in (InProgress).
    Now(String),
    Already,
}

/// One attempt at disabling the distribution under the ETag just read.
async fn disable(client: &Client, id: &str) -> ResourceResult<Disabled> {
    let Some((etag, current)) = get_config(client, id).await? else {
        return Ok(Disabled::Gone);
    };
    if !current.enabled() {
        return Ok(Disabled::Already);
    }
    match send_disabled(client, id, &etag, current).await {
        Ok(d) => Ok(Disabled::Now(d.status().to_string())),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(Disabled::Gone),
        Err(err) => Err(err),
    }
}

async fn send_disabled(
    client: &Client,
    id: &str,
    etag: &str,
    current: DistributionConfig,
) -> ResourceResult<AwsDistribution> {
    let mut disabled = current;
    disabled.enabled = false;
    debug!(id, etag, "disabling distribution");
    let out = client
        .update_distribution()
        .id(id)
        .if_match(etag)
        .distribution_config(disabled)
        .send()
        .await
        .classified()?;
    out.distribution
        .ok_or_else(|| ResourceError::other("UpdateDistribution returned no distribution"))
}

/// Prefixes progress messages with what the wait is part of.
struct Prefixed {
    prefix: &'static str,
    inner: Arc<dyn Progress>,
}

impl Progress for Prefixed {
    fn status(&self, message: &str) {
        self.inner.status(&format!("{}{message}", self.prefix));
    }
}

/// Waits until the disabled configuration is deployed; `false` when the distribution
/// disappeared meanwhile.
async fn wait_disabled(ctx: &OpContext, client: &Client, id: &str) -> ResourceResult<bool> {
    let ctx = ctx.clone().with_progress(Arc::new(Prefixed {
        prefix: "disabling: ",
        inner: ctx.progress.clone(),
    }));
    wait::until(&ctx, DEPLOYED, DEPLOY_LIMIT, || async move {
        Ok(match get_distribution(client, id).await? {
            None => Poll::Ready(false),
            Some((d, _)) if d.status() == DEPLOYED => Poll::Ready(true),
            Some((d, _)) => Poll::Pending(d.status().to_string()),
        })
    })
    .await
}

/// Under `destroy --no-wait`: deletes a disabled distribution that is deployed, and leaves
/// one whose disable is still deploying pending for the next run. `status` is what the
/// disable just reported, if this call disabled it.
async fn delete_if_deployed(
    ctx: &OpContext,
    client: &Client,
    id: &str,
    status: Option<String>,
) -> ResourceResult<()> {
    let status = match status {
        Some(status) => status,
        None => match get_distribution(client, id).await? {
            Some((d, _)) => d.status().to_string(),
            None => return Ok(()),
        },
    };
    if status != DEPLOYED {
        ctx.deletion_pending(PENDING_REASON);
        return Ok(());
    }
    delete_disabled(ctx, client, id).await
}

/// Deletes a disabled distribution under a fresh ETag, retrying while CloudFront still says
/// it is not disabled (its disable not yet deployed, or someone enabled it again).
async fn delete_disabled(ctx: &OpContext, client: &Client, id: &str) -> ResourceResult<()> {
    let what = format!("deleting distribution {id}");
    let what = &what;
    wait::delete_when_free(ctx, what, DEPLOY_LIMIT, || {
        with_fresh_etag(what, move || delete_once(client, id))
    })
    .await
}

async fn delete_once(client: &Client, id: &str) -> ResourceResult<()> {
    let Some((distribution, etag)) = get_distribution(client, id).await? else {
        return Ok(());
    };
    let etag = etag.ok_or_else(|| ResourceError::other("GetDistribution returned no ETag"))?;
    let enabled = distribution
        .distribution_config()
        .is_some_and(|c| c.enabled());
    if enabled {
        return redisable(client, id, &etag, &distribution).await;
    }
    debug!(id, etag, "DeleteDistribution");
    match client
        .delete_distribution()
        .id(id)
        .if_match(etag)
        .send()
        .await
        .classified()
    {
        Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Someone enabled the distribution again while it was being deleted: disable it again and
/// report it busy, so the delete is retried once that is deployed.
async fn redisable(
    client: &Client,
    id: &str,
    etag: &str,
    distribution: &AwsDistribution,
) -> ResourceResult<()> {
    let current = distribution
        .distribution_config()
        .cloned()
        .ok_or_else(|| ResourceError::other("GetDistribution returned no configuration"))?;
    send_disabled(client, id, etag, current).await?;
    Err(ResourceError::new(
        ErrorKind::InUse,
        format!("distribution {id} was enabled again; disabled it again"),
    )
    .with_code("DistributionNotDisabled"))
}
