//! `cloudfront.distribution`'s canonical properties and their mapping to and from
//! CloudFront's `DistributionConfig`.
//!
//! A stack writes plain lists and maps; CloudFront speaks `Quantity`/`Items` wrappers, an
//! `S3OriginConfig` for every origin that is not custom, and policy ids. Both sides of a
//! diff go through [`canonicalize`], so what `read` maps back from AWS equals what
//! `normalize` made of the stack whenever nothing changed.

use std::collections::BTreeMap;

use aws_sdk_cloudfront::types::{
    Aliases, AllowedMethods, CacheBehavior, CacheBehaviors, CachedMethods, CustomErrorResponse,
    CustomErrorResponses, CustomHeaders, CustomOriginConfig, DefaultCacheBehavior,
    DistributionConfig, EventType, FunctionAssociation, FunctionAssociations, GeoRestriction,
    GeoRestrictionType, HttpVersion, LambdaFunctionAssociation, LambdaFunctionAssociations,
    LoggingConfig, Method, MinimumProtocolVersion, Origin, OriginCustomHeader, OriginGroup,
    OriginGroupFailoverCriteria, OriginGroupMember, OriginGroupMembers, OriginGroups,
    OriginProtocolPolicy, OriginShield, OriginSslProtocols, Origins, PriceClass, Restrictions,
    S3OriginConfig, SslProtocol, SslSupportMethod, StatusCodes, ViewerCertificate,
    ViewerProtocolPolicy,
};
use aws_smithy_types::error::operation::BuildError;
use plinth_core::resource::{ResourceError, ResourceResult};
use plinth_core::value::{contains_unknown, reorder, Props, UNKNOWN};
use serde_json::{json, Map, Value};

use crate::resources::cloudfront_common::{
    policy_id, policy_reference, MANAGED_CACHE_POLICIES, MANAGED_ORIGIN_REQUEST_POLICIES,
    MANAGED_RESPONSE_HEADERS_POLICIES,
};
use crate::resources::tags;

/// The method sets CloudFront accepts for `allowed_methods`, each in canonical order.
pub const ALLOWED_METHOD_SETS: &[&[&str]] = &[
    &["GET", "HEAD"],
    &["GET", "HEAD", "OPTIONS"],
    &["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"],
];
/// The method sets CloudFront accepts for `cached_methods`.
pub const CACHED_METHOD_SETS: &[&[&str]] = &[&["GET", "HEAD"], &["GET", "HEAD", "OPTIONS"]];
/// Every method, in the order canonical method lists use.
pub const METHODS: &[&str] = &["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"];

// Where the SDK has the enumeration, its values are the list: a new SDK release brings new
// security policies (TLSv1.2_2025) without a change here.
/// The price classes a distribution can be created with; the SDK also lists `None`, which
/// belongs to CloudFront's flat-rate plans, not to a distribution's own setting.
pub const PRICE_CLASSES: &[&str] = &["PriceClass_All", "PriceClass_200", "PriceClass_100"];
pub const HTTP_VERSIONS: &[&str] = HttpVersion::values();
pub const TLS_POLICIES: &[&str] = MinimumProtocolVersion::values();
pub const SSL_SUPPORT_METHODS: &[&str] = SslSupportMethod::values();
pub const VIEWER_PROTOCOL_POLICIES: &[&str] = ViewerProtocolPolicy::values();
pub const ORIGIN_PROTOCOL_POLICIES: &[&str] = OriginProtocolPolicy::values();
pub const ORIGIN_SSL_PROTOCOLS: &[&str] = SslProtocol::values();
pub const LAMBDA_EVENTS: &[&str] = EventType::values();
/// CloudFront Functions run on viewer events only.
pub const FUNCTION_EVENTS: &[&str] = &["viewer-request", "viewer-response"];
pub const GEO_TYPES: &[&str] = GeoRestrictionType::values();
/// The status codes an origin group can fail over on.
pub const FAILOVER_STATUS_CODES: &[i64] = &[400, 403, 404, 416, 500, 502, 503, 504];
/// What an origin group fails over on when the stack does not say: the origin's errors.
const DEFAULT_FAILOVER_STATUS_CODES: &[i64] = &[500, 502, 503, 504];

/// The security policy CloudFront applies with its own certificate, whatever was asked.
pub const DEFAULT_CERTIFICATE_TLS: &str = "TLSv1";
const CERTIFICATE_TLS: &str = "TLSv1.2_2021";
const DEFAULT_CACHE_POLICY: &str = "managed:CachingOptimized";
/// CloudFront's own default for how long an error response is cached, in seconds.
const ERROR_TTL: i64 = 10;

/// The properties stored only in plinth's state, never sent to CloudFront.
pub const PLINTH_ONLY: &[&str] = &["wait_for_deployment", "invalidate_on", "invalidation_paths"];

/// Top-level property order in canonical form (the schema's).
const ORDER: &[&str] = &[
    "enabled",
    "comment",
    "aliases",
    "default_root_object",
    "price_class",
    "http_version",
    "ipv6",
    "certificate",
    "minimum_protocol_version",
    "ssl_support_method",
    "origins",
    "origin_groups",
    "default_behavior",
    "behaviors",
    "custom_error_responses",
    "logging",
    "geo_restriction",
    "wait_for_deployment",
    "invalidate_on",
    "invalidation_paths",
    "tags",
];
const ORIGIN_ORDER: &[&str] = &[
    "id",
    "domain_name",
    "origin_path",
    "origin_access_control",
    "custom",
    "custom_headers",
    "connection_attempts",
    "connection_timeout",
    "origin_shield",
];
const GROUP_ORDER: &[&str] = &["id", "primary", "secondary", "failover_status_codes"];
const CUSTOM_ORDER: &[&str] = &[
    "http_port",
    "https_port",
    "protocol_policy",
    "ssl_protocols",
    "read_timeout",
    "keepalive_timeout",
];
const BEHAVIOR_ORDER: &[&str] = &[
    "path",
    "origin",
    "viewer_protocol_policy",
    "allowed_methods",
    "cached_methods",
    "compress",
    "cache_policy",
    "origin_request_policy",
    "response_headers_policy",
    "lambda_functions",
    "functions",
];
const LAMBDA_ORDER: &[&str] = &["event", "arn", "include_body"];
const FUNCTION_ORDER: &[&str] = &["event", "arn"];
const ERROR_ORDER: &[&str] = &["error_code", "response_code", "response_page", "ttl"];
const GEO_ORDER: &[&str] = &["type", "locations"];

// ---------------------------------------------------------------------------------------
// Canonical form

/// Defaults filled, sets sorted, keys in schema order: for desired and read props alike.
pub fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    fill(props, "enabled", json!(true));
    fill(props, "comment", json!(""));
    fill(props, "aliases", json!([]));
    sort_strings(props.get_mut("aliases"));
    fill(props, "default_root_object", json!(""));
    fill(props, "price_class", json!("PriceClass_All"));
    fill(props, "http_version", json!("http2"));
    fill(props, "ipv6", json!(true));
    canonical_certificate(props);
    if let Some(Value::Array(origins)) = props.get_mut("origins") {
        origins
            .iter_mut()
            .for_each(|o| with_object(o, canonical_origin));
        sort_by_key(origins, "id");
    }
    fill(props, "origin_groups", json!([]));
    if let Some(Value::Array(groups)) = props.get_mut("origin_groups") {
        groups
            .iter_mut()
            .for_each(|g| with_object(g, canonical_group));
        sort_by_key(groups, "id");
    }
    if let Some(behavior) = props.get_mut("default_behavior") {
        with_object(behavior, canonical_behavior);
    }
    fill(props, "behaviors", json!([]));
    if let Some(Value::Array(behaviors)) = props.get_mut("behaviors") {
        behaviors
            .iter_mut()
            .for_each(|b| with_object(b, canonical_behavior));
    }
    fill(props, "custom_error_responses", json!([]));
    if let Some(Value::Array(errors)) = props.get_mut("custom_error_responses") {
        errors
            .iter_mut()
            .for_each(|e| with_object(e, canonical_error));
        sort_by_key(errors, "error_code");
    }
    if let Some(logging) = props.get_mut("logging") {
        with_object(logging, |l| {
            fill(l, "prefix", json!(""));
            fill(l, "include_cookies", json!(false));
        });
    }
    fill(props, "geo_restriction", json!({}));
    if let Some(geo) = props.get_mut("geo_restriction") {
        with_object(geo, canonical_geo);
    }
    // Plinth-only: a read after import has no last-applied values to copy them from.
    fill(props, "wait_for_deployment", json!(true));
    fill(props, "invalidate_on", json!([]));
    fill(props, "invalidation_paths", json!(["/*"]));
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    reorder(props, ORDER);
}

/// With an ACM certificate the stack chooses the TLS policy and how it is served; with
/// CloudFront's own certificate AWS reports TLSv1 and no support method.
fn canonical_certificate(props: &mut Props) {
    if props.contains_key("certificate") {
        fill(props, "minimum_protocol_version", json!(CERTIFICATE_TLS));
        fill(props, "ssl_support_method", json!("sni-only"));
    } else {
        fill(
            props,
            "minimum_protocol_version",
            json!(DEFAULT_CERTIFICATE_TLS),
        );
    }
}

fn canonical_origin(origin: &mut Map<String, Value>) {
    fill(origin, "origin_path", json!(""));
    if let Some(custom) = origin.get_mut("custom") {
        with_object(custom, canonical_custom);
    }
    fill(origin, "custom_headers", json!({}));
    fill(origin, "connection_attempts", json!(3));
    fill(origin, "connection_timeout", json!(10));
    reorder(origin, ORIGIN_ORDER);
}

fn canonical_group(group: &mut Map<String, Value>) {
    fill(
        group,
        "failover_status_codes",
        json!(DEFAULT_FAILOVER_STATUS_CODES),
    );
    if let Some(Value::Array(codes)) = group.get_mut("failover_status_codes") {
        if !codes.iter().any(contains_unknown) {
            codes.sort_by_key(Value::as_i64);
            codes.dedup();
        }
    }
    reorder(group, GROUP_ORDER);
}

fn canonical_custom(custom: &mut Map<String, Value>) {
    fill(custom, "http_port", json!(80));
    fill(custom, "https_port", json!(443));
    fill(custom, "protocol_policy", json!("https-only"));
    fill(custom, "ssl_protocols", json!(["TLSv1.2"]));
    sort_strings(custom.get_mut("ssl_protocols"));
    fill(custom, "read_timeout", json!(30));
    fill(custom, "keepalive_timeout", json!(5));
    reorder(custom, CUSTOM_ORDER);
}

fn canonical_behavior(behavior: &mut Map<String, Value>) {
    fill(
        behavior,
        "viewer_protocol_policy",
        json!("redirect-to-https"),
    );
    for key in ["allowed_methods", "cached_methods"] {
        fill(behavior, key, json!(["GET", "HEAD"]));
        sort_methods(behavior.get_mut(key));
    }
    fill(behavior, "compress", json!(true));
    fill(behavior, "cache_policy", json!(DEFAULT_CACHE_POLICY));
    for (key, table) in POLICY_KINDS {
        if let Some(value) = behavior.get_mut(*key) {
            canonical_policy(value, table);
        }
    }
    fill(behavior, "lambda_functions", json!([]));
    if let Some(Value::Array(lambdas)) = behavior.get_mut("lambda_functions") {
        for lambda in lambdas.iter_mut() {
            with_object(lambda, |l| {
                fill(l, "include_body", json!(false));
                reorder(l, LAMBDA_ORDER);
            });
        }
        sort_by_key(lambdas, "event");
    }
    fill(behavior, "functions", json!([]));
    if let Some(Value::Array(functions)) = behavior.get_mut("functions") {
        functions
            .iter_mut()
            .for_each(|f| with_object(f, |f| reorder(f, FUNCTION_ORDER)));
        sort_by_key(functions, "event");
    }
    reorder(behavior, BEHAVIOR_ORDER);
}

/// The behavior keys naming policies, with the managed policies each may name.
pub const POLICY_KINDS: &[(&str, &[(&str, &str)])] = &[
    ("cache_policy", MANAGED_CACHE_POLICIES),
    ("origin_request_policy", MANAGED_ORIGIN_REQUEST_POLICIES),
    ("response_headers_policy", MANAGED_RESPONSE_HEADERS_POLICIES),
];

/// The id of an AWS-managed policy written as an id becomes `managed:Name`, as `read`
/// reports it.
fn canonical_policy(value: &mut Value, table: &[(&str, &str)]) {
    if let Some(id) = value.as_str().filter(|s| !s.contains(UNKNOWN)) {
        let reference = policy_reference(id, table);
        *value = Value::String(reference);
    }
}

fn canonical_error(error: &mut Map<String, Value>) {
    fill(error, "ttl", json!(ERROR_TTL));
    reorder(error, ERROR_ORDER);
}

fn canonical_geo(geo: &mut Map<String, Value>) {
    fill(geo, "type", json!("none"));
    fill(geo, "locations", json!([]));
    sort_strings(geo.get_mut("locations"));
    reorder(geo, GEO_ORDER);
}

fn fill(map: &mut Map<String, Value>, key: &str, default: Value) {
    map.entry(key.to_string()).or_insert(default);
}

fn with_object(value: &mut Value, f: impl FnOnce(&mut Map<String, Value>)) {
    if let Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        f(map);
    }
}

/// Sorts and dedups a list of strings; a list with unknowns keeps its order until known.
fn sort_strings(list: Option<&mut Value>) {
    if let Some(Value::Array(items)) = list {
        if !items.iter().any(contains_unknown) {
            items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            items.dedup();
        }
    }
}

fn sort_methods(list: Option<&mut Value>) {
    if let Some(Value::Array(items)) = list {
        let rank = |v: &Value| {
            v.as_str()
                .and_then(|m| METHODS.iter().position(|known| *known == m))
                .unwrap_or(METHODS.len())
        };
        items.sort_by_key(rank);
        items.dedup();
    }
}

/// Sorts objects by one key's value, once every such value is known.
fn sort_by_key(items: &mut [Value], key: &str) {
    if items
        .iter()
        .any(|item| item.get(key).is_none_or(contains_unknown))
    {
        return;
    }
    items.sort_by(|a, b| compare(&a[key], &b[key]));
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.as_str().cmp(&b.as_str()),
    }
}

/// Whether anything CloudFront stores differs between two canonical property sets.
pub fn distribution_differs(before: &Props, after: &Props) -> bool {
    ORDER
        .iter()
        .filter(|key| !PLINTH_ONLY.contains(key) && **key != "tags")
        .any(|key| before.get(*key) != after.get(*key))
}

// ---------------------------------------------------------------------------------------
// Properties → DistributionConfig

/// An SDK builder's result: a missing required field is plinth's mistake, reported as such.
pub fn built<T>(result: Result<T, BuildError>) -> ResourceResult<T> {
    result.map_err(|err| ResourceError::other(format!("incomplete CloudFront request: {err}")))
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn strings(map: &Map<String, Value>, key: &str) -> Vec<String> {
    map.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn objects<'a>(map: &'a Map<String, Value>, key: &str) -> Vec<&'a Map<String, Value>> {
    map.get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

fn int(map: &Map<String, Value>, key: &str, default: i64) -> i64 {
    map.get(key).and_then(Value::as_i64).unwrap_or(default)
}

fn int32(map: &Map<String, Value>, key: &str, default: i32) -> i32 {
    i32::try_from(int(map, key, i64::from(default))).unwrap_or(default)
}

fn flag(map: &Map<String, Value>, key: &str, default: bool) -> bool {
    map.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn quantity<T>(items: &[T]) -> i32 {
    i32::try_from(items.len()).unwrap_or(i32::MAX)
}

/// The `DistributionConfig` canonical `props` describe, under `caller_reference` (a fresh
/// one at create, the distribution's own on update).
pub fn distribution_config(
    props: &Props,
    caller_reference: &str,
) -> ResourceResult<aws_sdk_cloudfront::types::builders::DistributionConfigBuilder> {
    let aliases = strings(props, "aliases");
    let origins = objects(props, "origins")
        .into_iter()
        .map(origin)
        .collect::<ResourceResult<Vec<_>>>()?;
    let groups = objects(props, "origin_groups")
        .into_iter()
        .map(origin_group)
        .collect::<ResourceResult<Vec<_>>>()?;
    let default_behavior = props
        .get("default_behavior")
        .and_then(Value::as_object)
        .ok_or_else(|| ResourceError::invalid("a distribution needs a default_behavior"))?;
    let behaviors = objects(props, "behaviors")
        .into_iter()
        .map(cache_behavior)
        .collect::<ResourceResult<Vec<_>>>()?;
    let errors = objects(props, "custom_error_responses")
        .into_iter()
        .map(error_response)
        .collect::<ResourceResult<Vec<_>>>()?;
    Ok(DistributionConfig::builder()
        .caller_reference(caller_reference)
        .enabled(flag(props, "enabled", true))
        .comment(text(props, "comment"))
        .aliases(built(
            Aliases::builder()
                .quantity(quantity(&aliases))
                .set_items(Some(aliases))
                .build(),
        )?)
        .default_root_object(text(props, "default_root_object"))
        .price_class(PriceClass::from(text(props, "price_class")))
        .http_version(HttpVersion::from(text(props, "http_version")))
        .is_ipv6_enabled(flag(props, "ipv6", true))
        .viewer_certificate(viewer_certificate(props))
        .origins(built(
            Origins::builder()
                .quantity(quantity(&origins))
                .set_items(Some(origins))
                .build(),
        )?)
        .origin_groups(built(
            OriginGroups::builder()
                .quantity(quantity(&groups))
                .set_items(Some(groups))
                .build(),
        )?)
        .default_cache_behavior(default_cache_behavior(default_behavior)?)
        .cache_behaviors(built(
            CacheBehaviors::builder()
                .quantity(quantity(&behaviors))
                .set_items(Some(behaviors))
                .build(),
        )?)
        .custom_error_responses(built(
            CustomErrorResponses::builder()
                .quantity(quantity(&errors))
                .set_items(Some(errors))
                .build(),
        )?)
        .restrictions(restrictions(props)?)
        .logging(logging(props)))
}

/// Standard logging, or the switched-off configuration AWS requires otherwise.
fn logging(props: &Props) -> LoggingConfig {
    let config = props.get("logging").and_then(Value::as_object);
    LoggingConfig::builder()
        .enabled(config.is_some())
        .include_cookies(config.is_some_and(|l| flag(l, "include_cookies", false)))
        .bucket(config.map(|l| text(l, "bucket")).unwrap_or_default())
        .prefix(config.map(|l| text(l, "prefix")).unwrap_or_default())
        .build()
}

/// Settings plinth does not manage (a WAF web ACL, a continuous deployment policy) stay
/// as they are when plinth rewrites the configuration.
pub fn keep_unmanaged(
    builder: aws_sdk_cloudfront::types::builders::DistributionConfigBuilder,
    current: &DistributionConfig,
) -> aws_sdk_cloudfront::types::builders::DistributionConfigBuilder {
    builder
        .set_web_acl_id(current.web_acl_id().map(str::to_string))
        .set_continuous_deployment_policy_id(
            current
                .continuous_deployment_policy_id()
                .map(str::to_string),
        )
        .set_staging(current.staging())
}

fn viewer_certificate(props: &Props) -> ViewerCertificate {
    let tls = MinimumProtocolVersion::from(text(props, "minimum_protocol_version"));
    match props.get("certificate").and_then(Value::as_str) {
        Some(arn) => ViewerCertificate::builder()
            .acm_certificate_arn(arn)
            .ssl_support_method(SslSupportMethod::from(text(props, "ssl_support_method")))
            .minimum_protocol_version(tls)
            .build(),
        None => ViewerCertificate::builder()
            .cloud_front_default_certificate(true)
            .minimum_protocol_version(tls)
            .build(),
    }
}

fn origin(o: &Map<String, Value>) -> ResourceResult<Origin> {
    let headers: Vec<OriginCustomHeader> = o
        .get("custom_headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .map(|(name, value)| {
                    built(
                        OriginCustomHeader::builder()
                            .header_name(name)
                            .header_value(value.as_str().unwrap_or_default())
                            .build(),
                    )
                })
                .collect::<ResourceResult<Vec<_>>>()
        })
        .transpose()?
        .unwrap_or_default();
    let mut builder = Origin::builder()
        .id(text(o, "id"))
        .domain_name(text(o, "domain_name"))
        .origin_path(text(o, "origin_path"))
        .custom_headers(built(
            CustomHeaders::builder()
                .quantity(quantity(&headers))
                .set_items(Some(headers))
                .build(),
        )?)
        .connection_attempts(int32(o, "connection_attempts", 3))
        .connection_timeout(int32(o, "connection_timeout", 10))
        .set_origin_access_control_id(
            o.get("origin_access_control")
                .and_then(Value::as_str)
                .map(str::to_string),
        )
        .origin_shield(built(
            OriginShield::builder()
                .enabled(o.contains_key("origin_shield"))
                .set_origin_shield_region(
                    o.get("origin_shield")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                )
                .build(),
        )?);
    builder = match o.get("custom").and_then(Value::as_object) {
        Some(custom) => builder.custom_origin_config(custom_origin(custom)?),
        // An S3 origin reached through an origin access control has no legacy identity.
        None => {
            builder.s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        }
    };
    built(builder.build())
}

/// A failover pair: the primary origin first, as CloudFront tries them.
fn origin_group(g: &Map<String, Value>) -> ResourceResult<OriginGroup> {
    let codes: Vec<i32> = g
        .get("failover_status_codes")
        .and_then(Value::as_array)
        .map(|codes| {
            codes
                .iter()
                .filter_map(Value::as_i64)
                .filter_map(|c| i32::try_from(c).ok())
                .collect()
        })
        .unwrap_or_default();
    let members = ["primary", "secondary"]
        .iter()
        .map(|role| {
            built(
                OriginGroupMember::builder()
                    .origin_id(text(g, role))
                    .build(),
            )
        })
        .collect::<ResourceResult<Vec<_>>>()?;
    built(
        OriginGroup::builder()
            .id(text(g, "id"))
            .failover_criteria(
                OriginGroupFailoverCriteria::builder()
                    .status_codes(built(
                        StatusCodes::builder()
                            .quantity(quantity(&codes))
                            .set_items(Some(codes))
                            .build(),
                    )?)
                    .build(),
            )
            .members(built(
                OriginGroupMembers::builder()
                    .quantity(quantity(&members))
                    .set_items(Some(members))
                    .build(),
            )?)
            .build(),
    )
}

fn custom_origin(c: &Map<String, Value>) -> ResourceResult<CustomOriginConfig> {
    let protocols: Vec<SslProtocol> = strings(c, "ssl_protocols")
        .iter()
        .map(|p| SslProtocol::from(p.as_str()))
        .collect();
    built(
        CustomOriginConfig::builder()
            .http_port(int32(c, "http_port", 80))
            .https_port(int32(c, "https_port", 443))
            .origin_protocol_policy(OriginProtocolPolicy::from(text(c, "protocol_policy")))
            .origin_ssl_protocols(built(
                OriginSslProtocols::builder()
                    .quantity(quantity(&protocols))
                    .set_items(Some(protocols))
                    .build(),
            )?)
            .origin_read_timeout(int32(c, "read_timeout", 30))
            .origin_keepalive_timeout(int32(c, "keepalive_timeout", 5))
            .build(),
    )
}

/// What default and path behaviors share, built once for either.
struct BehaviorParts {
    viewer_protocol_policy: ViewerProtocolPolicy,
    allowed_methods: AllowedMethods,
    compress: bool,
    cache_policy_id: String,
    origin_request_policy_id: Option<String>,
    response_headers_policy_id: Option<String>,
    lambdas: LambdaFunctionAssociations,
    functions: FunctionAssociations,
}

fn behavior_parts(b: &Map<String, Value>) -> ResourceResult<BehaviorParts> {
    Ok(BehaviorParts {
        viewer_protocol_policy: ViewerProtocolPolicy::from(text(b, "viewer_protocol_policy")),
        allowed_methods: allowed_methods(b)?,
        compress: flag(b, "compress", true),
        cache_policy_id: resolved_policy(b, "cache_policy", MANAGED_CACHE_POLICIES)?
            .unwrap_or_default(),
        origin_request_policy_id: resolved_policy(
            b,
            "origin_request_policy",
            MANAGED_ORIGIN_REQUEST_POLICIES,
        )?,
        response_headers_policy_id: resolved_policy(
            b,
            "response_headers_policy",
            MANAGED_RESPONSE_HEADERS_POLICIES,
        )?,
        lambdas: lambda_associations(b)?,
        functions: function_associations(b)?,
    })
}

fn default_cache_behavior(b: &Map<String, Value>) -> ResourceResult<DefaultCacheBehavior> {
    let parts = behavior_parts(b)?;
    built(
        DefaultCacheBehavior::builder()
            .target_origin_id(text(b, "origin"))
            .viewer_protocol_policy(parts.viewer_protocol_policy)
            .allowed_methods(parts.allowed_methods)
            .compress(parts.compress)
            .cache_policy_id(parts.cache_policy_id)
            .set_origin_request_policy_id(parts.origin_request_policy_id)
            .set_response_headers_policy_id(parts.response_headers_policy_id)
            .lambda_function_associations(parts.lambdas)
            .function_associations(parts.functions)
            .build(),
    )
}

fn cache_behavior(b: &Map<String, Value>) -> ResourceResult<CacheBehavior> {
    let parts = behavior_parts(b)?;
    built(
        CacheBehavior::builder()
            .path_pattern(text(b, "path"))
            .target_origin_id(text(b, "origin"))
            .viewer_protocol_policy(parts.viewer_protocol_policy)
            .allowed_methods(parts.allowed_methods)
            .compress(parts.compress)
            .cache_policy_id(parts.cache_policy_id)
            .set_origin_request_policy_id(parts.origin_request_policy_id)
            .set_response_headers_policy_id(parts.response_headers_policy_id)
            .lambda_function_associations(parts.lambdas)
            .function_associations(parts.functions)
            .build(),
    )
}

/// A policy reference as the id CloudFront wants; an unknown managed name is an error
/// (`check` reports it first, with the valid names).
fn resolved_policy(
    b: &Map<String, Value>,
    key: &str,
    table: &[(&str, &str)],
) -> ResourceResult<Option<String>> {
    let Some(reference) = b.get(key).and_then(Value::as_str) else {
        return Ok(None);
    };
    policy_id(reference, table)
        .map(Some)
        .ok_or_else(|| ResourceError::invalid(format!("{key}: no managed policy {reference}")))
}

fn methods(b: &Map<String, Value>, key: &str) -> Vec<Method> {
    strings(b, key)
        .iter()
        .map(|m| Method::from(m.as_str()))
        .collect()
}

fn allowed_methods(b: &Map<String, Value>) -> ResourceResult<AllowedMethods> {
    let allowed = methods(b, "allowed_methods");
    let cached = methods(b, "cached_methods");
    built(
        AllowedMethods::builder()
            .quantity(quantity(&allowed))
            .set_items(Some(allowed))
            .cached_methods(built(
                CachedMethods::builder()
                    .quantity(quantity(&cached))
                    .set_items(Some(cached))
                    .build(),
            )?)
            .build(),
    )
}

fn lambda_associations(b: &Map<String, Value>) -> ResourceResult<LambdaFunctionAssociations> {
    let items = objects(b, "lambda_functions")
        .into_iter()
        .map(|l| {
            built(
                LambdaFunctionAssociation::builder()
                    .event_type(EventType::from(text(l, "event")))
                    .lambda_function_arn(text(l, "arn"))
                    .include_body(flag(l, "include_body", false))
                    .build(),
            )
        })
        .collect::<ResourceResult<Vec<_>>>()?;
    built(
        LambdaFunctionAssociations::builder()
            .quantity(quantity(&items))
            .set_items(Some(items))
            .build(),
    )
}

fn function_associations(b: &Map<String, Value>) -> ResourceResult<FunctionAssociations> {
    let items = objects(b, "functions")
        .into_iter()
        .map(|f| {
            built(
                FunctionAssociation::builder()
                    .event_type(EventType::from(text(f, "event")))
                    .function_arn(text(f, "arn"))
                    .build(),
            )
        })
        .collect::<ResourceResult<Vec<_>>>()?;
    built(
        FunctionAssociations::builder()
            .quantity(quantity(&items))
            .set_items(Some(items))
            .build(),
    )
}

fn error_response(e: &Map<String, Value>) -> ResourceResult<CustomErrorResponse> {
    built(
        CustomErrorResponse::builder()
            .error_code(int32(e, "error_code", 0))
            .set_response_code(
                e.get("response_code")
                    .and_then(Value::as_i64)
                    .map(|c| c.to_string()),
            )
            .set_response_page_path(
                e.get("response_page")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
            .error_caching_min_ttl(int(e, "ttl", ERROR_TTL))
            .build(),
    )
}

fn restrictions(props: &Props) -> ResourceResult<Restrictions> {
    let empty = Map::new();
    let geo = props
        .get("geo_restriction")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let locations = strings(geo, "locations");
    let restriction = built(
        GeoRestriction::builder()
            .restriction_type(GeoRestrictionType::from(
                geo.get("type").and_then(Value::as_str).unwrap_or("none"),
            ))
            .quantity(quantity(&locations))
            .set_items(Some(locations))
            .build(),
    )?;
    Ok(Restrictions::builder().geo_restriction(restriction).build())
}

// ---------------------------------------------------------------------------------------
// DistributionConfig → properties

/// The canonical properties CloudFront's configuration stands for (without `tags` and the
/// plinth-only properties, which the caller adds).
pub fn props_of(config: &DistributionConfig) -> Props {
    let mut props = Props::new();
    props.insert("enabled".into(), json!(config.enabled()));
    props.insert("comment".into(), json!(config.comment()));
    let aliases = config.aliases().map(|a| a.items()).unwrap_or_default();
    props.insert("aliases".into(), json!(aliases));
    props.insert(
        "default_root_object".into(),
        json!(config.default_root_object().unwrap_or_default()),
    );
    if let Some(class) = config.price_class() {
        props.insert("price_class".into(), json!(class.as_str()));
    }
    if let Some(version) = config.http_version() {
        props.insert("http_version".into(), json!(version.as_str()));
    }
    if let Some(ipv6) = config.is_ipv6_enabled() {
        props.insert("ipv6".into(), json!(ipv6));
    }
    if let Some(certificate) = config.viewer_certificate() {
        certificate_props(certificate, &mut props);
    }
    let origins = config.origins().map(|o| o.items()).unwrap_or_default();
    props.insert(
        "origins".into(),
        Value::Array(origins.iter().map(origin_props).collect()),
    );
    let groups = config
        .origin_groups()
        .map(|g| g.items())
        .unwrap_or_default();
    props.insert(
        "origin_groups".into(),
        Value::Array(groups.iter().map(group_props).collect()),
    );
    if let Some(b) = config.default_cache_behavior() {
        props.insert("default_behavior".into(), default_behavior_props(b));
    }
    let behaviors = config
        .cache_behaviors()
        .map(|b| b.items())
        .unwrap_or_default();
    props.insert(
        "behaviors".into(),
        Value::Array(behaviors.iter().map(behavior_props).collect()),
    );
    let errors = config
        .custom_error_responses()
        .map(|e| e.items())
        .unwrap_or_default();
    props.insert(
        "custom_error_responses".into(),
        Value::Array(errors.iter().map(error_props).collect()),
    );
    if let Some(logging) = config.logging().filter(|l| l.enabled()) {
        props.insert(
            "logging".into(),
            json!({
                "bucket": logging.bucket(),
                "prefix": logging.prefix(),
                "include_cookies": logging.include_cookies(),
            }),
        );
    }
    if let Some(geo) = config.restrictions().and_then(|r| r.geo_restriction()) {
        props.insert(
            "geo_restriction".into(),
            json!({"type": geo.restriction_type().as_str(), "locations": geo.items()}),
        );
    }
    canonicalize(&mut props);
    props
}

fn certificate_props(certificate: &ViewerCertificate, props: &mut Props) {
    let tls = certificate.minimum_protocol_version().map(|v| v.as_str());
    match certificate.acm_certificate_arn().filter(|a| !a.is_empty()) {
        Some(arn) => {
            props.insert("certificate".into(), json!(arn));
            if let Some(method) = certificate.ssl_support_method() {
                props.insert("ssl_support_method".into(), json!(method.as_str()));
            }
            if let Some(tls) = tls {
                props.insert("minimum_protocol_version".into(), json!(tls));
            }
        }
        None => {
            props.insert(
                "minimum_protocol_version".into(),
                json!(tls.unwrap_or(DEFAULT_CERTIFICATE_TLS)),
            );
        }
    }
}

fn origin_props(origin: &Origin) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(origin.id()));
    o.insert("domain_name".into(), json!(origin.domain_name()));
    o.insert(
        "origin_path".into(),
        json!(origin.origin_path().unwrap_or_default()),
    );
    if let Some(oac) = origin
        .origin_access_control_id()
        .filter(|id| !id.is_empty())
    {
        o.insert("origin_access_control".into(), json!(oac));
    }
    if let Some(custom) = origin.custom_origin_config() {
        o.insert("custom".into(), custom_props(custom));
    }
    let headers: BTreeMap<&str, &str> = origin
        .custom_headers()
        .map(|h| h.items())
        .unwrap_or_default()
        .iter()
        .map(|h| (h.header_name(), h.header_value()))
        .collect();
    o.insert("custom_headers".into(), json!(headers));
    if let Some(attempts) = origin.connection_attempts() {
        o.insert("connection_attempts".into(), json!(attempts));
    }
    if let Some(timeout) = origin.connection_timeout() {
        o.insert("connection_timeout".into(), json!(timeout));
    }
    if let Some(region) = origin
        .origin_shield()
        .filter(|s| s.enabled())
        .and_then(|s| s.origin_shield_region())
    {
        o.insert("origin_shield".into(), json!(region));
    }
    Value::Object(o)
}

fn group_props(group: &OriginGroup) -> Value {
    let members: Vec<&str> = group
        .members()
        .map(|m| m.items())
        .unwrap_or_default()
        .iter()
        .map(OriginGroupMember::origin_id)
        .collect();
    let codes = group
        .failover_criteria()
        .and_then(|c| c.status_codes())
        .map(|c| c.items())
        .unwrap_or_default();
    json!({
        "id": group.id(),
        "primary": members.first(),
        "secondary": members.get(1),
        "failover_status_codes": codes,
    })
}

fn custom_props(custom: &CustomOriginConfig) -> Value {
    let protocols: Vec<&str> = custom
        .origin_ssl_protocols()
        .map(|p| p.items())
        .unwrap_or_default()
        .iter()
        .map(SslProtocol::as_str)
        .collect();
    let mut c = Map::new();
    c.insert("http_port".into(), json!(custom.http_port()));
    c.insert("https_port".into(), json!(custom.https_port()));
    c.insert(
        "protocol_policy".into(),
        json!(custom.origin_protocol_policy().as_str()),
    );
    c.insert("ssl_protocols".into(), json!(protocols));
    if let Some(timeout) = custom.origin_read_timeout() {
        c.insert("read_timeout".into(), json!(timeout));
    }
    if let Some(timeout) = custom.origin_keepalive_timeout() {
        c.insert("keepalive_timeout".into(), json!(timeout));
    }
    Value::Object(c)
}

/// What default and path behaviors report alike, borrowed from either.
struct BehaviorView<'a> {
    origin: &'a str,
    viewer_protocol_policy: &'a ViewerProtocolPolicy,
    allowed_methods: Option<&'a AllowedMethods>,
    compress: Option<bool>,
    cache_policy_id: Option<&'a str>,
    origin_request_policy_id: Option<&'a str>,
    response_headers_policy_id: Option<&'a str>,
    lambdas: Option<&'a LambdaFunctionAssociations>,
    functions: Option<&'a FunctionAssociations>,
}

fn default_behavior_props(b: &DefaultCacheBehavior) -> Value {
    Value::Object(behavior_view_props(&BehaviorView {
        origin: b.target_origin_id(),
        viewer_protocol_policy: b.viewer_protocol_policy(),
        allowed_methods: b.allowed_methods(),
        compress: b.compress(),
        cache_policy_id: b.cache_policy_id(),
        origin_request_policy_id: b.origin_request_policy_id(),
        response_headers_policy_id: b.response_headers_policy_id(),
        lambdas: b.lambda_function_associations(),
        functions: b.function_associations(),
    }))
}

fn behavior_props(b: &CacheBehavior) -> Value {
    let mut props = behavior_view_props(&BehaviorView {
        origin: b.target_origin_id(),
        viewer_protocol_policy: b.viewer_protocol_policy(),
        allowed_methods: b.allowed_methods(),
        compress: b.compress(),
        cache_policy_id: b.cache_policy_id(),
        origin_request_policy_id: b.origin_request_policy_id(),
        response_headers_policy_id: b.response_headers_policy_id(),
        lambdas: b.lambda_function_associations(),
        functions: b.function_associations(),
    });
    props.insert("path".into(), json!(b.path_pattern()));
    Value::Object(props)
}

fn behavior_view_props(b: &BehaviorView<'_>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("origin".into(), json!(b.origin));
    out.insert(
        "viewer_protocol_policy".into(),
        json!(b.viewer_protocol_policy.as_str()),
    );
    if let Some(allowed) = b.allowed_methods {
        out.insert("allowed_methods".into(), method_list(allowed.items()));
        if let Some(cached) = allowed.cached_methods() {
            out.insert("cached_methods".into(), method_list(cached.items()));
        }
    }
    if let Some(compress) = b.compress {
        out.insert("compress".into(), json!(compress));
    }
    // A legacy behavior (ForwardedValues and TTLs, no cache policy) shows as a change to
    // the default policy rather than as if it already used it.
    out.insert(
        "cache_policy".into(),
        json!(b
            .cache_policy_id
            .map(|id| policy_reference(id, MANAGED_CACHE_POLICIES))
            .unwrap_or_default()),
    );
    let optional = [
        (
            "origin_request_policy",
            b.origin_request_policy_id,
            MANAGED_ORIGIN_REQUEST_POLICIES,
        ),
        (
            "response_headers_policy",
            b.response_headers_policy_id,
            MANAGED_RESPONSE_HEADERS_POLICIES,
        ),
    ];
    for (key, id, table) in optional {
        if let Some(id) = id.filter(|id| !id.is_empty()) {
            out.insert(key.into(), json!(policy_reference(id, table)));
        }
    }
    let lambdas: Vec<Value> = b
        .lambdas
        .map(|l| l.items())
        .unwrap_or_default()
        .iter()
        .map(|l| {
            json!({
                "event": l.event_type().as_str(),
                "arn": l.lambda_function_arn(),
                "include_body": l.include_body().unwrap_or(false),
            })
        })
        .collect();
    out.insert("lambda_functions".into(), Value::Array(lambdas));
    let functions: Vec<Value> = b
        .functions
        .map(|f| f.items())
        .unwrap_or_default()
        .iter()
        .map(|f| json!({"event": f.event_type().as_str(), "arn": f.function_arn()}))
        .collect();
    out.insert("functions".into(), Value::Array(functions));
    out
}

fn method_list(methods: &[Method]) -> Value {
    json!(methods.iter().map(Method::as_str).collect::<Vec<_>>())
}

fn error_props(e: &CustomErrorResponse) -> Value {
    let mut out = Map::new();
    out.insert("error_code".into(), json!(e.error_code()));
    // AWS reports an unset response code and page as empty strings.
    if let Some(code) = e.response_code().and_then(|c| c.parse::<i64>().ok()) {
        out.insert("response_code".into(), json!(code));
    }
    if let Some(page) = e.response_page_path().filter(|p| !p.is_empty()) {
        out.insert("response_page".into(), json!(page));
    }
    if let Some(ttl) = e.error_caching_min_ttl() {
        out.insert("ttl".into(), json!(ttl));
    }
    Value::Object(out)
}
