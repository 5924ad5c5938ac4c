//! `cloudfront.response_headers_policy`: the headers CloudFront adds to (or removes from)
//! its answers to viewers: security headers (HSTS, X-Content-Type-Options, X-Frame-Options,
//! Referrer-Policy, Content-Security-Policy, X-XSS-Protection), CORS, custom headers.
//!
//! What the stack says is what viewers get: every header is sent with `Override: true`
//! (CloudFront replaces what the origin sent). Reads compare the headers and their values;
//! an `Override` switched off, an XSS report URI or server-timing headers set by hand are
//! not read, and the next change of the policy puts the stack's settings back. Global, untagged (the comment carries the
//! marker), ETag on every change and delete, and a policy in use by a behavior cannot be
//! deleted (`ResponseHeadersPolicyInUse`), as for cache policies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    FrameOptionsList, ReferrerPolicyList, ResponseHeadersPolicy,
    ResponseHeadersPolicyAccessControlAllowHeaders, ResponseHeadersPolicyAccessControlAllowMethods,
    ResponseHeadersPolicyAccessControlAllowMethodsValues,
    ResponseHeadersPolicyAccessControlAllowOrigins,
    ResponseHeadersPolicyAccessControlExposeHeaders, ResponseHeadersPolicyConfig,
    ResponseHeadersPolicyContentSecurityPolicy, ResponseHeadersPolicyContentTypeOptions,
    ResponseHeadersPolicyCorsConfig, ResponseHeadersPolicyCustomHeader,
    ResponseHeadersPolicyCustomHeadersConfig, ResponseHeadersPolicyFrameOptions,
    ResponseHeadersPolicyReferrerPolicy, ResponseHeadersPolicyRemoveHeader,
    ResponseHeadersPolicyRemoveHeadersConfig, ResponseHeadersPolicySecurityHeadersConfig,
    ResponseHeadersPolicyServerTimingHeadersConfig, ResponseHeadersPolicyStrictTransportSecurity,
    ResponseHeadersPolicyType, ResponseHeadersPolicyXssProtection,
};
use aws_sdk_cloudfront::Client;
use aws_smithy_types::error::operation::BuildError;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{bool_of, contains_unknown, reorder, str_of, Props};
use serde_json::{json, Map, Value};
use tracing::debug;

use crate::errors::{adopt_if_ours, vanished, SendExt};
use crate::resources::cloudfront_common::{delete_when_unused, with_fresh_etag, CLOUDFRONT_REGION};
use crate::resources::tags;
use crate::Aws;

const FRAME_OPTIONS: &[&str] = FrameOptionsList::values();
const REFERRER_POLICIES: &[&str] = ReferrerPolicyList::values();
const CORS_METHODS: &[&str] = ResponseHeadersPolicyAccessControlAllowMethodsValues::values();
const MAX_COMMENT: usize = 128;
const DELETE_LIMIT: Duration = Duration::from_secs(20 * 60);
const ORDER: &[&str] = &[
    "name",
    "comment",
    "security_headers",
    "cors",
    "custom_headers",
    "remove_headers",
    "server_timing",
];
const SECURITY_ORDER: &[&str] = &[
    "hsts",
    "content_type_options",
    "frame_options",
    "referrer_policy",
    "content_security_policy",
    "xss_protection",
];

/// The `cloudfront.response_headers_policy` resource type.
pub struct ResponseHeadersPolicyResource {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl ResponseHeadersPolicyResource {
    pub fn new(aws: Arc<Aws>) -> ResponseHeadersPolicyResource {
        ResponseHeadersPolicyResource {
            aws,
            schema: schema(),
        }
    }
}

fn hsts_props() -> Vec<Prop> {
    vec![
        Prop::new("max_age_seconds", Shape::int_range(0, i32::MAX as i64))
            .required()
            .doc("how long browsers only use HTTPS (31536000: a year)"),
        Prop::new("include_subdomains", Shape::Bool).doc("default false"),
        Prop::new("preload", Shape::Bool).doc("default false"),
    ]
}

fn security_props() -> Vec<Prop> {
    vec![
        Prop::new("hsts", Shape::Object(hsts_props()))
            .known_as(&["strict_transport_security"])
            .doc("Strict-Transport-Security"),
        Prop::new("content_type_options", Shape::Bool)
            .doc("X-Content-Type-Options: nosniff; default false"),
        Prop::new("frame_options", Shape::Enum(FRAME_OPTIONS)).doc("X-Frame-Options"),
        Prop::new("referrer_policy", Shape::Enum(REFERRER_POLICIES)).doc("Referrer-Policy"),
        Prop::new("content_security_policy", Shape::String).doc("Content-Security-Policy"),
        Prop::new("xss_protection", Shape::Bool)
            .doc("X-XSS-Protection: true is `1; mode=block`, false is `0`"),
    ]
}

fn cors_props() -> Vec<Prop> {
    vec![
        Prop::new("allow_origins", Shape::list(Shape::String))
            .required()
            .doc("Access-Control-Allow-Origin: origins (https://example.com) or *"),
        Prop::new("allow_methods", Shape::list(Shape::Enum(CORS_METHODS)))
            .required()
            .doc("Access-Control-Allow-Methods (ALL for every method)"),
        Prop::new("allow_headers", Shape::list(Shape::String))
            .doc("Access-Control-Allow-Headers; default [\"*\"]"),
        Prop::new("allow_credentials", Shape::Bool).doc("default false"),
        Prop::new("expose_headers", Shape::list(Shape::String)).doc("default none"),
        Prop::new("max_age_seconds", Shape::int_range(0, i32::MAX as i64))
            .doc("Access-Control-Max-Age"),
        Prop::new("origin_override", Shape::Bool)
            .doc("replace the origin's own CORS headers; default true"),
    ]
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "cloudfront.response_headers_policy",
        description: "A CloudFront response headers policy: security headers, CORS and custom headers",
        kind: TypeKind::Managed,
        taggable: false,
        properties: with_name_prefixes(vec![
            Prop::new("name", Shape::String)
                .prefixable(128)
                .required()
                .unique()
                .doc("the name, unique in the account"),
            Prop::new("comment", Shape::String)
                .doc("a comment (at most 106 characters: plinth adds its marker); default empty"),
            Prop::new("security_headers", Shape::Object(security_props()))
                .known_as(&["security_headers_config"])
                .doc("the security headers added to every answer; default none"),
            Prop::new("cors", Shape::Object(cors_props()))
                .known_as(&["cors_config"])
                .doc("CORS headers; default none"),
            Prop::new("custom_headers", Shape::map(Shape::String))
                .known_as(&["custom_headers_config"])
                .doc("headers added: name → value; default none"),
            Prop::new("remove_headers", Shape::list(Shape::String))
                .known_as(&["remove_headers_config"])
                .doc("headers removed from the origin's answers (Server, X-Powered-By); default none"),
            Prop::new("server_timing", Shape::Number)
                .known_as(&["server_timing_headers_config", "sampling_rate"])
                .doc("add CloudFront's Server-Timing header (cache hit or miss, edge and origin latency) to this percentage of answers, 0–100; default off"),
        ]),
        attributes: vec![Attr::new(
            "id",
            Shape::String,
            "the policy id, for a behavior's response_headers_policy",
        )],
    }
}

#[async_trait]
impl ResourceType for ResponseHeadersPolicyResource {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(
        &self,
        _props: &Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        crate::cost::free(ctx, self.schema.type_name)
    }

    fn pinned_region(&self, _props: &Props) -> Option<&'static str> {
        Some(CLOUDFRONT_REGION)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        let room = MAX_COMMENT - tags::MARKER_LENGTH;
        let comment = props.get("comment").filter(|v| !contains_unknown(v));
        if comment
            .and_then(Value::as_str)
            .is_some_and(|c| c.chars().count() > room)
        {
            issues.push(PropIssue::at(
                &["comment"],
                format!(
                    "a comment has at most {room} characters here (plinth's marker takes the rest)"
                ),
            ));
        }
        if let Some(cors) = props.get("cors").and_then(Value::as_object) {
            let origins = cors.get("allow_origins").and_then(Value::as_array);
            let wildcard = origins.is_some_and(|o| o.iter().any(|v| v == "*"));
            if wildcard && bool_of(cors, "allow_credentials") == Some(true) {
                issues.push(PropIssue::at(
                    &["cors", "allow_credentials"],
                    "browsers refuse credentials with Access-Control-Allow-Origin: *: name the origins",
                ));
            }
        }
        let rate = props
            .get("server_timing")
            .filter(|v| !contains_unknown(v))
            .and_then(Value::as_f64);
        if rate.is_some_and(|r| {
            !(0.0..=100.0).contains(&r) || ((r * 10_000.0).round() - r * 10_000.0).abs() > 1e-6
        }) {
            issues.push(PropIssue::at(
                &["server_timing"],
                "the sampling rate is a percentage from 0 to 100, with at most four decimals",
            ));
        }
        let empty = props
            .iter()
            .filter(|(k, _)| !["name", "name_prefix", "comment"].contains(&k.as_str()))
            .all(|(_, v)| is_empty(v));
        if empty {
            issues.push(PropIssue::at(
                &["security_headers"],
                "a response headers policy needs something to do: security_headers, cors, custom_headers, remove_headers or server_timing",
            ));
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.cloudfront(&ctx.region);
        match get(&client, id).await? {
            Some((policy, _)) => observe(&policy).map(Some),
            None => Ok(None),
        }
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "cloudfront", "response-headers-policy/")
    }

    /// The custom policy of this name that carries this resource's marker.
    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let (Some(name), Some(marker)) = (str_of(props, "name"), tags::owner_marker(ctx)) else {
            return Ok(None);
        };
        let client = self.aws.cloudfront(&ctx.region);
        let mut page: Option<String> = None;
        loop {
            let out = client
                .list_response_headers_policies()
                .r#type(ResponseHeadersPolicyType::Custom)
                .set_marker(page.clone())
                .send()
                .await
                .classified()?;
            let Some(list) = out.response_headers_policy_list() else {
                return Ok(None);
            };
            let found = list
                .items()
                .iter()
                .filter_map(|summary| summary.response_headers_policy())
                .find(|policy| {
                    policy
                        .response_headers_policy_config()
                        .is_some_and(|config| {
                            config.name() == name
                                && tags::unmarked(config.comment().unwrap_or_default()).1
                                    == Some(marker.clone())
                        })
                });
            if let Some(policy) = found {
                return observe(policy).map(Some);
            }
            match list.next_marker().filter(|m| !m.is_empty()) {
                Some(next) => page = Some(next.to_string()),
                None => return Ok(None),
            }
        }
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.cloudfront(&ctx.region);
        let config = config_of(props, tags::owner_marker(ctx).as_deref())?;
        debug!(name = config.name(), "CreateResponseHeadersPolicy");
        let created = client
            .create_response_headers_policy()
            .response_headers_policy_config(config.clone())
            .send()
            .await
            .classified();
        match created {
            Ok(out) => observe(out.response_headers_policy().ok_or_else(|| {
                ResourceError::other("CreateResponseHeadersPolicy returned no policy")
            })?),
            Err(err) => {
                let what = format!("a response headers policy named {}", config.name());
                let found =
                    adopt_if_ours(err, &["ResponseHeadersPolicyAlreadyExists"], &what, || {
                        self.find(ctx, props)
                    })
                    .await?;
                if found.props == *props {
                    Ok(found)
                } else {
                    self.update(ctx, &found.id, &found.props, props).await
                }
            }
        }
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        _before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = &self.aws.cloudfront(&ctx.region);
        let config = &config_of(after, tags::owner_marker(ctx).as_deref())?;
        let what = format!("updating response headers policy {id}");
        let policy = with_fresh_etag(&what, || async move {
            let (_, etag) = get(client, id)
                .await?
                .ok_or_else(|| vanished(&format!("response headers policy {id}")))?;
            debug!(id, "UpdateResponseHeadersPolicy");
            let out = client
                .update_response_headers_policy()
                .id(id)
                .if_match(etag)
                .response_headers_policy_config(config.clone())
                .send()
                .await
                .classified()?;
            out.response_headers_policy().cloned().ok_or_else(|| {
                ResourceError::other("UpdateResponseHeadersPolicy returned no policy")
            })
        })
        .await?;
        observe(&policy)
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = &self.aws.cloudfront(&ctx.region);
        let what = format!("deleting response headers policy {id}");
        delete_when_unused(
            ctx,
            &what,
            DELETE_LIMIT,
            "; a distribution's behavior still uses the policy: change the distribution first",
            || delete_once(client, id),
        )
        .await
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

async fn delete_once(client: &Client, id: &str) -> ResourceResult<()> {
    let Some((_, etag)) = get(client, id).await? else {
        return Ok(());
    };
    debug!(id, "DeleteResponseHeadersPolicy");
    match client
        .delete_response_headers_policy()
        .id(id)
        .if_match(etag)
        .send()
        .await
        .classified()
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

async fn get(client: &Client, id: &str) -> ResourceResult<Option<(ResponseHeadersPolicy, String)>> {
    let out = match client
        .get_response_headers_policy()
        .id(id)
        .send()
        .await
        .classified()
    {
        Ok(out) => out,
        Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let policy = out
        .response_headers_policy()
        .cloned()
        .ok_or_else(|| ResourceError::other("GetResponseHeadersPolicy returned no policy"))?;
    let etag = out
        .e_tag()
        .ok_or_else(|| ResourceError::other("GetResponseHeadersPolicy returned no ETag"))?;
    Ok(Some((policy, etag.to_string())))
}

// ---------------------------------------------------------------------------------------------
// Canonical form

fn sorted_strings(value: Option<&mut Value>) {
    if let Some(Value::Array(items)) = value {
        if !items.iter().any(contains_unknown) {
            items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            items.dedup();
        }
    }
}

/// Defaults filled, sets sorted, keys in order: for desired and read props alike.
fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props.entry("comment").or_insert_with(|| json!(""));
    if let Some(Value::Object(security)) = props.get_mut("security_headers") {
        security.retain(|_, v| !v.is_null());
        if let Some(Value::Object(hsts)) = security.get_mut("hsts") {
            hsts.entry("include_subdomains").or_insert(json!(false));
            hsts.entry("preload").or_insert(json!(false));
        }
        // `content_type_options: false` is the header left out.
        if security.get("content_type_options") == Some(&json!(false)) {
            security.remove("content_type_options");
        }
        reorder(security, SECURITY_ORDER);
    }
    if props.get("security_headers").is_some_and(is_empty) {
        props.remove("security_headers");
    }
    if let Some(Value::Object(cors)) = props.get_mut("cors") {
        cors.retain(|_, v| !v.is_null());
        cors.entry("allow_headers").or_insert(json!(["*"]));
        cors.entry("allow_credentials").or_insert(json!(false));
        cors.entry("expose_headers").or_insert(json!([]));
        cors.entry("origin_override").or_insert(json!(true));
        for key in [
            "allow_origins",
            "allow_methods",
            "allow_headers",
            "expose_headers",
        ] {
            sorted_strings(cors.get_mut(key));
        }
    }
    // 10 in a stack and 10.0 from CloudFront are one rate.
    if let Some(rate) = props.get("server_timing").and_then(Value::as_f64) {
        props.insert("server_timing".into(), json!(rate));
    }
    props.entry("custom_headers").or_insert_with(|| json!({}));
    props.entry("remove_headers").or_insert_with(|| json!([]));
    if let Some(Value::Array(headers)) = props.get_mut("remove_headers") {
        // Header names are case-insensitive (CloudFront keeps them as written): one each.
        if !headers.iter().any(contains_unknown) {
            let lower = |v: &Value| v.as_str().map(str::to_ascii_lowercase);
            headers.sort_by_key(|v| lower(v));
            headers.dedup_by(|a, b| lower(a) == lower(b));
        }
    }
    reorder(props, ORDER);
}

// ---------------------------------------------------------------------------------------------
// To and from AWS

fn built<T>(result: Result<T, BuildError>) -> ResourceResult<T> {
    result.map_err(|e| ResourceError::invalid(format!("response headers policy: {e}")))
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

fn quantity<T>(items: &[T]) -> i32 {
    i32::try_from(items.len()).unwrap_or(i32::MAX)
}

fn int(map: &Map<String, Value>, key: &str) -> Option<i32> {
    map.get(key)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

fn security_config(
    s: &Map<String, Value>,
) -> ResourceResult<ResponseHeadersPolicySecurityHeadersConfig> {
    let mut config = ResponseHeadersPolicySecurityHeadersConfig::builder();
    if let Some(hsts) = s.get("hsts").and_then(Value::as_object) {
        config = config.strict_transport_security(built(
            ResponseHeadersPolicyStrictTransportSecurity::builder()
                .r#override(true)
                .include_subdomains(bool_of(hsts, "include_subdomains").unwrap_or(false))
                .preload(bool_of(hsts, "preload").unwrap_or(false))
                .access_control_max_age_sec(int(hsts, "max_age_seconds").unwrap_or(0))
                .build(),
        )?);
    }
    if bool_of(s, "content_type_options") == Some(true) {
        config = config.content_type_options(built(
            ResponseHeadersPolicyContentTypeOptions::builder()
                .r#override(true)
                .build(),
        )?);
    }
    if let Some(option) = str_of(s, "frame_options") {
        config = config.frame_options(built(
            ResponseHeadersPolicyFrameOptions::builder()
                .r#override(true)
                .frame_option(FrameOptionsList::from(option))
                .build(),
        )?);
    }
    if let Some(policy) = str_of(s, "referrer_policy") {
        config = config.referrer_policy(built(
            ResponseHeadersPolicyReferrerPolicy::builder()
                .r#override(true)
                .referrer_policy(ReferrerPolicyList::from(policy))
                .build(),
        )?);
    }
    if let Some(policy) = str_of(s, "content_security_policy") {
        config = config.content_security_policy(built(
            ResponseHeadersPolicyContentSecurityPolicy::builder()
                .r#override(true)
                .content_security_policy(policy)
                .build(),
        )?);
    }
    if let Some(on) = bool_of(s, "xss_protection") {
        config = config.xss_protection(built(
            ResponseHeadersPolicyXssProtection::builder()
                .r#override(true)
                .protection(on)
                .set_mode_block(on.then_some(true))
                .build(),
        )?);
    }
    Ok(config.build())
}

fn cors_config(c: &Map<String, Value>) -> ResourceResult<ResponseHeadersPolicyCorsConfig> {
    let origins = strings(c, "allow_origins");
    let headers = strings(c, "allow_headers");
    let methods: Vec<ResponseHeadersPolicyAccessControlAllowMethodsValues> =
        strings(c, "allow_methods")
            .iter()
            .map(|m| ResponseHeadersPolicyAccessControlAllowMethodsValues::from(m.as_str()))
            .collect();
    let expose = strings(c, "expose_headers");
    built(
        ResponseHeadersPolicyCorsConfig::builder()
            .access_control_allow_origins(built(
                ResponseHeadersPolicyAccessControlAllowOrigins::builder()
                    .quantity(quantity(&origins))
                    .set_items(Some(origins))
                    .build(),
            )?)
            .access_control_allow_headers(built(
                ResponseHeadersPolicyAccessControlAllowHeaders::builder()
                    .quantity(quantity(&headers))
                    .set_items(Some(headers))
                    .build(),
            )?)
            .access_control_allow_methods(built(
                ResponseHeadersPolicyAccessControlAllowMethods::builder()
                    .quantity(quantity(&methods))
                    .set_items(Some(methods))
                    .build(),
            )?)
            .access_control_allow_credentials(bool_of(c, "allow_credentials").unwrap_or(false))
            .access_control_expose_headers(built(
                ResponseHeadersPolicyAccessControlExposeHeaders::builder()
                    .quantity(quantity(&expose))
                    .set_items((!expose.is_empty()).then_some(expose))
                    .build(),
            )?)
            .set_access_control_max_age_sec(int(c, "max_age_seconds"))
            .origin_override(bool_of(c, "origin_override").unwrap_or(true))
            .build(),
    )
}

/// The config AWS is sent: the properties, every header overriding the origin's, the
/// comment carrying `marker`.
fn config_of(props: &Props, marker: Option<&str>) -> ResourceResult<ResponseHeadersPolicyConfig> {
    let mut config = ResponseHeadersPolicyConfig::builder()
        .name(str_of(props, "name").unwrap_or_default())
        .comment(tags::marked(
            str_of(props, "comment").unwrap_or_default(),
            marker,
        ));
    if let Some(s) = props.get("security_headers").and_then(Value::as_object) {
        config = config.security_headers_config(security_config(s)?);
    }
    if let Some(c) = props.get("cors").and_then(Value::as_object) {
        config = config.cors_config(cors_config(c)?);
    }
    let custom: Vec<ResponseHeadersPolicyCustomHeader> = props
        .get("custom_headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            built(
                ResponseHeadersPolicyCustomHeader::builder()
                    .header(name)
                    .value(value.as_str().unwrap_or_default())
                    .r#override(true)
                    .build(),
            )
        })
        .collect::<ResourceResult<_>>()?;
    if !custom.is_empty() {
        config = config.custom_headers_config(built(
            ResponseHeadersPolicyCustomHeadersConfig::builder()
                .quantity(quantity(&custom))
                .set_items(Some(custom))
                .build(),
        )?);
    }
    let removed: Vec<ResponseHeadersPolicyRemoveHeader> = props
        .get("remove_headers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|h| {
            built(
                ResponseHeadersPolicyRemoveHeader::builder()
                    .header(h)
                    .build(),
            )
        })
        .collect::<ResourceResult<_>>()?;
    if !removed.is_empty() {
        config = config.remove_headers_config(built(
            ResponseHeadersPolicyRemoveHeadersConfig::builder()
                .quantity(quantity(&removed))
                .set_items(Some(removed))
                .build(),
        )?);
    }
    if let Some(rate) = props.get("server_timing").and_then(Value::as_f64) {
        config = config.server_timing_headers_config(built(
            ResponseHeadersPolicyServerTimingHeadersConfig::builder()
                .enabled(true)
                .sampling_rate(rate)
                .build(),
        )?);
    }
    built(config.build())
}

fn security_json(s: &ResponseHeadersPolicySecurityHeadersConfig) -> Value {
    let mut out = Map::new();
    if let Some(hsts) = s.strict_transport_security() {
        out.insert(
            "hsts".into(),
            json!({
                "max_age_seconds": hsts.access_control_max_age_sec(),
                "include_subdomains": hsts.include_subdomains().unwrap_or(false),
                "preload": hsts.preload().unwrap_or(false),
            }),
        );
    }
    if s.content_type_options().is_some() {
        out.insert("content_type_options".into(), json!(true));
    }
    if let Some(f) = s.frame_options() {
        out.insert("frame_options".into(), json!(f.frame_option().as_str()));
    }
    if let Some(r) = s.referrer_policy() {
        out.insert(
            "referrer_policy".into(),
            json!(r.referrer_policy().as_str()),
        );
    }
    if let Some(c) = s.content_security_policy() {
        out.insert(
            "content_security_policy".into(),
            json!(c.content_security_policy()),
        );
    }
    if let Some(x) = s.xss_protection() {
        out.insert("xss_protection".into(), json!(x.protection()));
    }
    Value::Object(out)
}

fn cors_json(c: &ResponseHeadersPolicyCorsConfig) -> Value {
    let mut out = Map::new();
    out.insert(
        "allow_origins".into(),
        json!(c
            .access_control_allow_origins()
            .map(|o| o.items())
            .unwrap_or_default()),
    );
    let methods: Vec<&str> = c
        .access_control_allow_methods()
        .map(|m| m.items())
        .unwrap_or_default()
        .iter()
        .map(|m| m.as_str())
        .collect();
    out.insert("allow_methods".into(), json!(methods));
    out.insert(
        "allow_headers".into(),
        json!(c
            .access_control_allow_headers()
            .map(|h| h.items())
            .unwrap_or_default()),
    );
    out.insert(
        "allow_credentials".into(),
        json!(c.access_control_allow_credentials()),
    );
    out.insert(
        "expose_headers".into(),
        json!(c
            .access_control_expose_headers()
            .map(|h| h.items())
            .unwrap_or_default()),
    );
    if let Some(age) = c.access_control_max_age_sec() {
        out.insert("max_age_seconds".into(), json!(age));
    }
    out.insert("origin_override".into(), json!(c.origin_override()));
    Value::Object(out)
}

fn observe(policy: &ResponseHeadersPolicy) -> ResourceResult<Observed> {
    let config = policy.response_headers_policy_config().ok_or_else(|| {
        ResourceError::other(format!(
            "CloudFront returned response headers policy {} without its configuration",
            policy.id()
        ))
    })?;
    let mut props = Props::new();
    props.insert("name".into(), json!(config.name()));
    props.insert(
        "comment".into(),
        json!(tags::unmarked(config.comment().unwrap_or_default()).0),
    );
    if let Some(s) = config.security_headers_config() {
        let security = security_json(s);
        if !is_empty(&security) {
            props.insert("security_headers".into(), security);
        }
    }
    if let Some(c) = config.cors_config() {
        props.insert("cors".into(), cors_json(c));
    }
    let custom: BTreeMap<&str, &str> = config
        .custom_headers_config()
        .map(|c| c.items())
        .unwrap_or_default()
        .iter()
        .map(|h| (h.header(), h.value()))
        .collect();
    props.insert("custom_headers".into(), json!(custom));
    let removed: Vec<&str> = config
        .remove_headers_config()
        .map(|c| c.items())
        .unwrap_or_default()
        .iter()
        .map(|h| h.header())
        .collect();
    props.insert("remove_headers".into(), json!(removed));
    if let Some(timing) = config
        .server_timing_headers_config()
        .filter(|t| t.enabled())
    {
        props.insert(
            "server_timing".into(),
            json!(timing.sampling_rate().unwrap_or_default()),
        );
    }
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(policy.id()));
    Ok(Observed {
        id: policy.id().to_string(),
        props,
        attrs,
    })
}
