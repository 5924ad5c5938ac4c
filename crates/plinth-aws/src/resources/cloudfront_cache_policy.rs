//! `cloudfront.cache_policy`: how long CloudFront caches objects and which parts of a
//! request (cookies, headers, query strings, compression) make up the cache key.
//!
//! CloudFront is global (its control plane answers in us-east-1) and a cache policy takes no
//! tags. AWS nests the cache key in `ParametersInCacheKeyAndForwardedToOrigin` with
//! `Quantity`/`Items` lists; plinth compares the plain form `{behavior, names}` with the names
//! sorted. Every change and delete sends the ETag of a fresh read as `If-Match`. A policy a
//! cache behavior still uses cannot be deleted (`CachePolicyInUse`): the delete is retried
//! while a distribution is being updated to let go of it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    CachePolicy, CachePolicyConfig, CachePolicyCookieBehavior, CachePolicyCookiesConfig,
    CachePolicyHeaderBehavior, CachePolicyHeadersConfig, CachePolicyQueryStringBehavior,
    CachePolicyQueryStringsConfig, CookieNames, Headers, ParametersInCacheKeyAndForwardedToOrigin,
    QueryStringNames,
};
use aws_sdk_cloudfront::Client;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{bool_of, contains_unknown, i64_of, reorder, str_of, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::errors::{adopt_if_ours, vanished, SendExt};
use crate::resources::cloudfront_common::{
    behavior_and_names, canonical_key_part, check_names, count, delete_when_unused, key_part,
    plain, with_fresh_etag, CLOUDFRONT_REGION,
};
use crate::resources::tags;
use crate::Aws;

const DEFAULT_TTL: i64 = 86_400;
const MIN_TTL: i64 = 1;
const MAX_TTL: i64 = 31_536_000;
/// AWS's limit for a cache policy's comment (the marker included).
const MAX_COMMENT: usize = 128;
// The SDK's enumerations: a new SDK release brings new values.
const COOKIE_BEHAVIORS: &[&str] = CachePolicyCookieBehavior::values();
const HEADER_BEHAVIORS: &[&str] = CachePolicyHeaderBehavior::values();
const QUERY_STRING_BEHAVIORS: &[&str] = CachePolicyQueryStringBehavior::values();
/// The properties that are parts of the cache key.
const KEY_PARTS: &[&str] = &["cookies", "headers", "query_strings"];
/// A distribution being updated holds on to the policy until its deployment finishes.
const DELETE_LIMIT: Duration = Duration::from_secs(20 * 60);
/// Property order in canonical form (the schema's).
const ORDER: &[&str] = &[
    "name",
    "comment",
    "default_ttl",
    "min_ttl",
    "max_ttl",
    "gzip",
    "brotli",
    "cookies",
    "headers",
    "query_strings",
];

/// The `cloudfront.cache_policy` resource type.
pub struct CachePolicyType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl CachePolicyType {
    pub fn new(aws: Arc<Aws>) -> CachePolicyType {
        CachePolicyType {
            aws,
            schema: schema(),
        }
    }
}

/// A TTL: seconds, 0 or more.
fn seconds() -> Shape {
    Shape::Integer {
        min: Some(0),
        max: None,
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "cloudfront.cache_policy",
        description: "A CloudFront cache policy: TTLs and the cache key (cookies, headers, \
                      query strings, compression)",
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
            Prop::new("default_ttl", seconds())
                .doc("seconds cached when the origin sends no Cache-Control; default 86400"),
            Prop::new("min_ttl", seconds()).doc("fewest seconds cached; default 1"),
            Prop::new("max_ttl", seconds()).doc("most seconds cached; default 31536000 (a year)"),
            Prop::new("gzip", Shape::Bool)
                .known_as(&["enable_accept_encoding_gzip"])
                .doc("cache gzip-compressed objects separately; default true"),
            Prop::new("brotli", Shape::Bool)
                .known_as(&["enable_accept_encoding_brotli"])
                .doc("cache Brotli-compressed objects separately; default true"),
            Prop::new("cookies", key_part(COOKIE_BEHAVIORS, &["cookie_behavior"]))
                .known_as(&["cookies_config"])
                .doc("cookies in the cache key; default none"),
            Prop::new("headers", key_part(HEADER_BEHAVIORS, &["header_behavior"]))
                .known_as(&["headers_config"])
                .doc("headers in the cache key; default none"),
            Prop::new(
                "query_strings",
                key_part(QUERY_STRING_BEHAVIORS, &["query_string_behavior"]),
            )
            .known_as(&["query_strings_config"])
            .doc("query strings in the cache key; default none"),
        ]),
        attributes: vec![Attr::new(
            "id",
            Shape::String,
            "the cache policy id, for a distribution's cache behaviors",
        )],
    }
}

#[async_trait]
impl ResourceType for CachePolicyType {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    /// Nothing to pay for: the price table says why.
    fn cost(
        &self,
        _props: &plinth_core::value::Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        crate::cost::free(ctx, self.schema.type_name)
    }

    fn pinned_region(&self, _props: &Props) -> Option<&'static str> {
        Some(CLOUDFRONT_REGION)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = check_ttls(props);
        for part in KEY_PARTS {
            issues.extend(check_names(props, part, &["whitelist", "allExcept"]));
        }
        let room = MAX_COMMENT - tags::MARKER_LENGTH;
        let comment = props.get("comment").filter(|v| !contains_unknown(v));
        if let Some(comment) = comment.and_then(Value::as_str) {
            if comment.chars().count() > room {
                issues.push(PropIssue::at(
                    &["comment"],
                    format!(
                        "a comment has at most {room} characters here (AWS allows {MAX_COMMENT}; \
                         plinth's marker takes the rest), not {}",
                        comment.chars().count()
                    ),
                ));
            }
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
        crate::arn::name_after(arn, "cloudfront", "cache-policy/")
    }

    /// The custom cache policy of this name that carries this resource's marker.
    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let (Some(name), Some(marker)) = (str_of(props, "name"), tags::owner_marker(ctx)) else {
            return Ok(None);
        };
        let client = self.aws.cloudfront(&ctx.region);
        let mut page: Option<String> = None;
        loop {
            let out = client
                .list_cache_policies()
                .r#type(aws_sdk_cloudfront::types::CachePolicyType::Custom)
                .set_marker(page.clone())
                .send()
                .await
                .classified()?;
            let Some(list) = out.cache_policy_list() else {
                return Ok(None);
            };
            let found = list
                .items()
                .iter()
                .filter_map(|summary| summary.cache_policy())
                .find(|policy| {
                    policy.cache_policy_config().is_some_and(|config| {
                        config.name() == name
                            && tags::unmarked(config.comment().unwrap_or_default()).1
                                == Some(marker.clone())
                    })
                });
            if let Some(policy) = found {
                debug!(id = policy.id(), name, "found this stack's cache policy");
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
        debug!(name = config.name(), "CreateCachePolicy");
        let created = client
            .create_cache_policy()
            .cache_policy_config(config.clone())
            .send()
            .await
            .classified();
        match created {
            Ok(out) => {
                let policy = out.cache_policy().ok_or_else(|| {
                    ResourceError::other("CreateCachePolicy returned no cache policy")
                })?;
                observe(policy)
            }
            Err(err) => {
                let what = format!("a cache policy named {}", config.name());
                let found = adopt_if_ours(err, &["CachePolicyAlreadyExists"], &what, || {
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
        let what = format!("updating cache policy {id}");
        let policy = with_fresh_etag(&what, || async move {
            let (_, etag) = get(client, id)
                .await?
                .ok_or_else(|| vanished(&format!("cache policy {id}")))?;
            debug!(id, "UpdateCachePolicy");
            let out = client
                .update_cache_policy()
                .id(id)
                .if_match(etag)
                .cache_policy_config(config.clone())
                .send()
                .await
                .classified()?;
            out.cache_policy()
                .cloned()
                .ok_or_else(|| ResourceError::other("UpdateCachePolicy returned no cache policy"))
        })
        .await?;
        observe(&policy)
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = &self.aws.cloudfront(&ctx.region);
        let what = format!("deleting cache policy {id}");
        delete_when_unused(
            ctx,
            &what,
            DELETE_LIMIT,
            "; a distribution's cache behavior still uses the cache policy: change the \
                     distribution first",
            || delete_once(client, id),
        )
        .await
    }
}

/// One delete with the current ETag; gone already counts as deleted.
async fn delete_once(client: &Client, id: &str) -> ResourceResult<()> {
    let Some((_, etag)) = get(client, id).await? else {
        return Ok(());
    };
    debug!(id, "DeleteCachePolicy");
    match client
        .delete_cache_policy()
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

/// The policy and its current ETag, `None` when it does not exist.
async fn get(client: &Client, id: &str) -> ResourceResult<Option<(CachePolicy, String)>> {
    let out = match client.get_cache_policy().id(id).send().await.classified() {
        Ok(out) => out,
        Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let policy = out
        .cache_policy()
        .cloned()
        .ok_or_else(|| ResourceError::other("GetCachePolicy returned no cache policy"))?;
    let etag = out
        .e_tag()
        .ok_or_else(|| ResourceError::other("GetCachePolicy returned no ETag"))?;
    Ok(Some((policy, etag.to_string())))
}

// ---------------------------------------------------------------------------------------------
// Checks

/// A known integer property, or its default when left out.
fn ttl(props: &Props, key: &str, default: i64) -> Option<i64> {
    match props.get(key) {
        None | Some(Value::Null) => Some(default),
        Some(v) if contains_unknown(v) => None,
        Some(v) => v.as_i64(),
    }
}

/// `min_ttl ≤ default_ttl ≤ max_ttl`.
fn check_ttls(props: &Props) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    let min = ttl(props, "min_ttl", MIN_TTL);
    let default = ttl(props, "default_ttl", DEFAULT_TTL);
    let max = ttl(props, "max_ttl", MAX_TTL);
    if let (Some(min), Some(default)) = (min, default) {
        if min > default {
            issues.push(PropIssue::at(
                &["min_ttl"],
                format!("min_ttl ({min}) is more than default_ttl ({default})"),
            ));
        }
    }
    if let (Some(default), Some(max)) = (default, max) {
        if default > max {
            issues.push(PropIssue::at(
                &["default_ttl"],
                format!("default_ttl ({default}) is more than max_ttl ({max})"),
            ));
        }
    }
    issues
}

// ---------------------------------------------------------------------------------------------
// Canonical form

/// Defaults filled, names sorted, keys in schema order: for desired and read props alike.
fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props.entry("comment").or_insert_with(|| json!(""));
    props
        .entry("default_ttl")
        .or_insert_with(|| json!(DEFAULT_TTL));
    props.entry("min_ttl").or_insert_with(|| json!(MIN_TTL));
    props.entry("max_ttl").or_insert_with(|| json!(MAX_TTL));
    props.entry("gzip").or_insert_with(|| json!(true));
    props.entry("brotli").or_insert_with(|| json!(true));
    for part in KEY_PARTS {
        let config = props.remove(*part).unwrap_or_else(|| json!({}));
        props.insert((*part).to_string(), canonical_key_part(config));
    }
    reorder(props, ORDER);
}

// ---------------------------------------------------------------------------------------------
// To and from AWS

fn build_error(err: aws_smithy_types::error::operation::BuildError) -> ResourceError {
    ResourceError::invalid(format!("cache policy: {err}"))
}

// AWS leaves a part's names out when there are none; so does plinth.

fn cookies_config(props: &Props) -> ResourceResult<CachePolicyCookiesConfig> {
    let (behavior, names) = behavior_and_names(props, "cookies");
    let cookies = if names.is_empty() {
        None
    } else {
        let names = CookieNames::builder()
            .quantity(count(&names))
            .set_items(Some(names))
            .build()
            .map_err(build_error)?;
        Some(names)
    };
    CachePolicyCookiesConfig::builder()
        .cookie_behavior(CachePolicyCookieBehavior::from(behavior.as_str()))
        .set_cookies(cookies)
        .build()
        .map_err(build_error)
}

fn headers_config(props: &Props) -> ResourceResult<CachePolicyHeadersConfig> {
    let (behavior, names) = behavior_and_names(props, "headers");
    let headers = if names.is_empty() {
        None
    } else {
        let names = Headers::builder()
            .quantity(count(&names))
            .set_items(Some(names))
            .build()
            .map_err(build_error)?;
        Some(names)
    };
    CachePolicyHeadersConfig::builder()
        .header_behavior(CachePolicyHeaderBehavior::from(behavior.as_str()))
        .set_headers(headers)
        .build()
        .map_err(build_error)
}

fn query_strings_config(props: &Props) -> ResourceResult<CachePolicyQueryStringsConfig> {
    let (behavior, names) = behavior_and_names(props, "query_strings");
    let query_strings = if names.is_empty() {
        None
    } else {
        let names = QueryStringNames::builder()
            .quantity(count(&names))
            .set_items(Some(names))
            .build()
            .map_err(build_error)?;
        Some(names)
    };
    CachePolicyQueryStringsConfig::builder()
        .query_string_behavior(CachePolicyQueryStringBehavior::from(behavior.as_str()))
        .set_query_strings(query_strings)
        .build()
        .map_err(build_error)
}

/// The config AWS is sent: the properties, the comment carrying `marker`.
fn config_of(props: &Props, marker: Option<&str>) -> ResourceResult<CachePolicyConfig> {
    let key = ParametersInCacheKeyAndForwardedToOrigin::builder()
        .enable_accept_encoding_gzip(bool_of(props, "gzip").unwrap_or(true))
        .enable_accept_encoding_brotli(bool_of(props, "brotli").unwrap_or(true))
        .cookies_config(cookies_config(props)?)
        .headers_config(headers_config(props)?)
        .query_strings_config(query_strings_config(props)?)
        .build()
        .map_err(build_error)?;
    CachePolicyConfig::builder()
        .name(str_of(props, "name").unwrap_or_default())
        .comment(tags::marked(
            str_of(props, "comment").unwrap_or_default(),
            marker,
        ))
        .default_ttl(i64_of(props, "default_ttl").unwrap_or(DEFAULT_TTL))
        .min_ttl(i64_of(props, "min_ttl").unwrap_or(MIN_TTL))
        .max_ttl(i64_of(props, "max_ttl").unwrap_or(MAX_TTL))
        .parameters_in_cache_key_and_forwarded_to_origin(key)
        .build()
        .map_err(build_error)
}

fn observe(policy: &CachePolicy) -> ResourceResult<Observed> {
    let config = policy.cache_policy_config().ok_or_else(|| {
        ResourceError::other(format!(
            "CloudFront returned cache policy {} without its configuration",
            policy.id()
        ))
    })?;
    let key = config.parameters_in_cache_key_and_forwarded_to_origin();
    let mut props = Props::new();
    props.insert("name".into(), json!(config.name()));
    let (comment, _marker) = tags::unmarked(config.comment().unwrap_or_default());
    props.insert("comment".into(), json!(comment));
    props.insert(
        "default_ttl".into(),
        json!(config.default_ttl().unwrap_or(DEFAULT_TTL)),
    );
    props.insert("min_ttl".into(), json!(config.min_ttl()));
    props.insert("max_ttl".into(), json!(config.max_ttl().unwrap_or(MAX_TTL)));
    props.insert(
        "gzip".into(),
        json!(key.is_some_and(|k| k.enable_accept_encoding_gzip())),
    );
    props.insert(
        "brotli".into(),
        json!(key.and_then(|k| k.enable_accept_encoding_brotli()) == Some(true)),
    );
    if let Some(cookies) = key.and_then(|k| k.cookies_config()) {
        let names = cookies.cookies().and_then(|n| n.items.as_deref());
        props.insert(
            "cookies".into(),
            plain(cookies.cookie_behavior().as_str(), names),
        );
    }
    if let Some(headers) = key.and_then(|k| k.headers_config()) {
        let names = headers.headers().and_then(|n| n.items.as_deref());
        props.insert(
            "headers".into(),
            plain(headers.header_behavior().as_str(), names),
        );
    }
    if let Some(query_strings) = key.and_then(|k| k.query_strings_config()) {
        let names = query_strings
            .query_strings()
            .and_then(|n| n.items.as_deref());
        props.insert(
            "query_strings".into(),
            plain(query_strings.query_string_behavior().as_str(), names),
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
