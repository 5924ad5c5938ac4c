//! `cloudfront.origin_request_policy`: which headers, cookies and query strings CloudFront
//! forwards to the origin beyond those in the cache key (an S3 origin answering CORS needs
//! the viewer's `Origin`, without caching a copy per value). CloudFront refuses
//! `Authorization` here: that header is forwarded by naming it in a cache policy.
//!
//! Like a cache policy: global (the control plane answers in us-east-1), untagged (the
//! comment carries this resource's marker), every change and delete with the ETag of a fresh
//! read, and a policy a behavior still uses cannot be deleted (`OriginRequestPolicyInUse`):
//! the delete is retried while a distribution lets go of it. AWS's managed policies need no
//! resource: a behavior says `origin_request_policy: managed:AllViewer`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    CookieNames, Headers, OriginRequestPolicy, OriginRequestPolicyConfig,
    OriginRequestPolicyCookieBehavior, OriginRequestPolicyCookiesConfig,
    OriginRequestPolicyHeaderBehavior, OriginRequestPolicyHeadersConfig,
    OriginRequestPolicyQueryStringBehavior, OriginRequestPolicyQueryStringsConfig,
    OriginRequestPolicyType, QueryStringNames,
};
use aws_sdk_cloudfront::Client;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, reorder, str_of, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::errors::{adopt_if_ours, vanished, SendExt};
use crate::resources::cloudfront_common::{
    behavior_and_names, canonical_key_part, check_names, count, delete_when_unused, key_part,
    plain, with_fresh_etag, CLOUDFRONT_REGION,
};
use crate::resources::tags;
use crate::Aws;

const COOKIE_BEHAVIORS: &[&str] = OriginRequestPolicyCookieBehavior::values();
const HEADER_BEHAVIORS: &[&str] = OriginRequestPolicyHeaderBehavior::values();
const QUERY_STRING_BEHAVIORS: &[&str] = OriginRequestPolicyQueryStringBehavior::values();
/// The behaviors that name what they forward or leave out.
const NAMING: &[&str] = &["whitelist", "allExcept", "allViewerAndWhitelistCloudFront"];
const PARTS: &[&str] = &["cookies", "headers", "query_strings"];
const MAX_COMMENT: usize = 128;
const DELETE_LIMIT: Duration = Duration::from_secs(20 * 60);
const ORDER: &[&str] = &["name", "comment", "cookies", "headers", "query_strings"];

/// The `cloudfront.origin_request_policy` resource type.
pub struct OriginRequestPolicyResource {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl OriginRequestPolicyResource {
    pub fn new(aws: Arc<Aws>) -> OriginRequestPolicyResource {
        OriginRequestPolicyResource {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "cloudfront.origin_request_policy",
        description: "A CloudFront origin request policy: the headers, cookies and query \
                      strings forwarded to the origin",
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
            Prop::new("cookies", key_part(COOKIE_BEHAVIORS, &["cookie_behavior"]))
                .known_as(&["cookies_config"])
                .doc("cookies forwarded: none (default), whitelist, all, allExcept"),
            Prop::new("headers", key_part(HEADER_BEHAVIORS, &["header_behavior"]))
                .known_as(&["headers_config"])
                .doc("headers forwarded: none (default), whitelist, allViewer, allViewerAndWhitelistCloudFront, allExcept"),
            Prop::new(
                "query_strings",
                key_part(QUERY_STRING_BEHAVIORS, &["query_string_behavior"]),
            )
            .known_as(&["query_strings_config"])
            .doc("query strings forwarded: none (default), whitelist, all, allExcept"),
        ]),
        attributes: vec![Attr::new(
            "id",
            Shape::String,
            "the policy id, for a behavior's origin_request_policy",
        )],
    }
}

#[async_trait]
impl ResourceType for OriginRequestPolicyResource {
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
        let mut issues: Vec<PropIssue> = PARTS
            .iter()
            .flat_map(|part| check_names(props, part, NAMING))
            .collect();
        let (_, headers) = behavior_and_names(props, "headers");
        if headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("authorization"))
        {
            issues.push(PropIssue::at(
                &["headers", "names"],
                "CloudFront does not forward Authorization through an origin request policy: name it in the cache policy's headers",
            ));
        }
        let room = MAX_COMMENT - tags::MARKER_LENGTH;
        let comment = props.get("comment").filter(|v| !contains_unknown(v));
        if let Some(comment) = comment.and_then(Value::as_str) {
            if comment.chars().count() > room {
                issues.push(PropIssue::at(
                    &["comment"],
                    format!("a comment has at most {room} characters here (plinth's marker takes the rest)"),
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
        crate::arn::name_after(arn, "cloudfront", "origin-request-policy/")
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
                .list_origin_request_policies()
                .r#type(OriginRequestPolicyType::Custom)
                .set_marker(page.clone())
                .send()
                .await
                .classified()?;
            let Some(list) = out.origin_request_policy_list() else {
                return Ok(None);
            };
            let found = list
                .items()
                .iter()
                .filter_map(|summary| summary.origin_request_policy())
                .find(|policy| {
                    policy.origin_request_policy_config().is_some_and(|config| {
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
        debug!(name = config.name(), "CreateOriginRequestPolicy");
        let created = client
            .create_origin_request_policy()
            .origin_request_policy_config(config.clone())
            .send()
            .await
            .classified();
        match created {
            Ok(out) => observe(out.origin_request_policy().ok_or_else(|| {
                ResourceError::other("CreateOriginRequestPolicy returned no policy")
            })?),
            Err(err) => {
                let what = format!("an origin request policy named {}", config.name());
                let found =
                    adopt_if_ours(err, &["OriginRequestPolicyAlreadyExists"], &what, || {
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
        let what = format!("updating origin request policy {id}");
        let policy = with_fresh_etag(&what, || async move {
            let (_, etag) = get(client, id)
                .await?
                .ok_or_else(|| vanished(&format!("origin request policy {id}")))?;
            debug!(id, "UpdateOriginRequestPolicy");
            let out = client
                .update_origin_request_policy()
                .id(id)
                .if_match(etag)
                .origin_request_policy_config(config.clone())
                .send()
                .await
                .classified()?;
            out.origin_request_policy()
                .cloned()
                .ok_or_else(|| ResourceError::other("UpdateOriginRequestPolicy returned no policy"))
        })
        .await?;
        observe(&policy)
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = &self.aws.cloudfront(&ctx.region);
        let what = format!("deleting origin request policy {id}");
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

async fn delete_once(client: &Client, id: &str) -> ResourceResult<()> {
    let Some((_, etag)) = get(client, id).await? else {
        return Ok(());
    };
    debug!(id, "DeleteOriginRequestPolicy");
    match client
        .delete_origin_request_policy()
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

async fn get(client: &Client, id: &str) -> ResourceResult<Option<(OriginRequestPolicy, String)>> {
    let out = match client
        .get_origin_request_policy()
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
        .origin_request_policy()
        .cloned()
        .ok_or_else(|| ResourceError::other("GetOriginRequestPolicy returned no policy"))?;
    let etag = out
        .e_tag()
        .ok_or_else(|| ResourceError::other("GetOriginRequestPolicy returned no ETag"))?;
    Ok(Some((policy, etag.to_string())))
}

/// Defaults filled, names sorted, keys in schema order: for desired and read props alike.
fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props.entry("comment").or_insert_with(|| json!(""));
    for part in PARTS {
        let config = props.remove(*part).unwrap_or_else(|| json!({}));
        props.insert((*part).to_string(), canonical_key_part(config));
    }
    reorder(props, ORDER);
}

fn build_error(err: aws_smithy_types::error::operation::BuildError) -> ResourceError {
    ResourceError::invalid(format!("origin request policy: {err}"))
}

fn config_of(props: &Props, marker: Option<&str>) -> ResourceResult<OriginRequestPolicyConfig> {
    let (cookie_behavior, cookies) = behavior_and_names(props, "cookies");
    let (header_behavior, headers) = behavior_and_names(props, "headers");
    let (query_behavior, query_strings) = behavior_and_names(props, "query_strings");
    let cookies = (!cookies.is_empty())
        .then(|| {
            CookieNames::builder()
                .quantity(count(&cookies))
                .set_items(Some(cookies))
                .build()
        })
        .transpose()
        .map_err(build_error)?;
    let headers = (!headers.is_empty())
        .then(|| {
            Headers::builder()
                .quantity(count(&headers))
                .set_items(Some(headers))
                .build()
        })
        .transpose()
        .map_err(build_error)?;
    let query_strings = (!query_strings.is_empty())
        .then(|| {
            QueryStringNames::builder()
                .quantity(count(&query_strings))
                .set_items(Some(query_strings))
                .build()
        })
        .transpose()
        .map_err(build_error)?;
    OriginRequestPolicyConfig::builder()
        .name(str_of(props, "name").unwrap_or_default())
        .comment(tags::marked(
            str_of(props, "comment").unwrap_or_default(),
            marker,
        ))
        .cookies_config(
            OriginRequestPolicyCookiesConfig::builder()
                .cookie_behavior(OriginRequestPolicyCookieBehavior::from(
                    cookie_behavior.as_str(),
                ))
                .set_cookies(cookies)
                .build()
                .map_err(build_error)?,
        )
        .headers_config(
            OriginRequestPolicyHeadersConfig::builder()
                .header_behavior(OriginRequestPolicyHeaderBehavior::from(
                    header_behavior.as_str(),
                ))
                .set_headers(headers)
                .build()
                .map_err(build_error)?,
        )
        .query_strings_config(
            OriginRequestPolicyQueryStringsConfig::builder()
                .query_string_behavior(OriginRequestPolicyQueryStringBehavior::from(
                    query_behavior.as_str(),
                ))
                .set_query_strings(query_strings)
                .build()
                .map_err(build_error)?,
        )
        .build()
        .map_err(build_error)
}

fn observe(policy: &OriginRequestPolicy) -> ResourceResult<Observed> {
    let config = policy.origin_request_policy_config().ok_or_else(|| {
        ResourceError::other(format!(
            "CloudFront returned origin request policy {} without its configuration",
            policy.id()
        ))
    })?;
    let mut props = Props::new();
    props.insert("name".into(), json!(config.name()));
    props.insert(
        "comment".into(),
        json!(tags::unmarked(config.comment().unwrap_or_default()).0),
    );
    if let Some(c) = config.cookies_config() {
        let names = c.cookies().and_then(|n| n.items.as_deref());
        props.insert("cookies".into(), plain(c.cookie_behavior().as_str(), names));
    }
    if let Some(h) = config.headers_config() {
        let names = h.headers().and_then(|n| n.items.as_deref());
        props.insert("headers".into(), plain(h.header_behavior().as_str(), names));
    }
    if let Some(q) = config.query_strings_config() {
        let names = q.query_strings().and_then(|n| n.items.as_deref());
        props.insert(
            "query_strings".into(),
            plain(q.query_string_behavior().as_str(), names),
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
