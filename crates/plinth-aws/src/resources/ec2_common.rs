//! What the EC2 types share: tags written at creation and changed in place, ARNs, and
//! finding what a create made when its answer was lost.
//!
//! `CreateVpc`, `CreateSubnet` and `CreateInternetGateway` take no idempotency token: the
//! SDK sending one of them again after a lost answer makes a second resource. Each such
//! create is therefore tagged with the engine's create token (`plinth:create-token`, the same
//! in every attempt of one create and when a later run sends it again): `find` recognises
//! exactly that create, a create that saw an attempt go unanswered removes the duplicates
//! carrying its token, and a resource being replaced (same owner tags, another token) is
//! never taken for either.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType as Ec2ResourceType, Tag, TagSpecification};
use aws_sdk_ec2::Client;
use plinth_core::resource::{OpContext, ResourceResult};
use plinth_core::value::{contains_unknown, Props};
use serde_json::Value;

use crate::errors::SendExt;
use crate::resources::tags;

/// The tag naming the create that made a resource (see the module's comment). Never shown
/// as one of the resource's tags.
pub const CREATE_TOKEN_TAG: &str = "plinth:create-token";

/// The resource's tags as EC2 takes them.
pub fn aws_tags(props: &Props) -> Vec<Tag> {
    tags::user_tags(props)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The `TagSpecifications` of a create: its tags, written with it so the resource never
/// exists without its `plinth:*` tags, and the create token (see the module's comment).
pub fn tag_specs(
    kind: Ec2ResourceType,
    props: &Props,
    ctx: &OpContext,
) -> Option<Vec<TagSpecification>> {
    let mut tags = aws_tags(props);
    if let Some(token) = &ctx.create_token {
        tags.push(Tag::builder().key(CREATE_TOKEN_TAG).value(token).build());
    }
    (!tags.is_empty()).then(|| {
        vec![TagSpecification::builder()
            .resource_type(kind)
            .set_tags(Some(tags))
            .build()]
    })
}

/// Tags as AWS reports them, without AWS's own (`aws:`) and the create token.
pub fn tags_from(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .filter(|(key, _)| !tags::is_reserved(key) && key != CREATE_TOKEN_TAG)
        .collect()
}

/// Changes the tags of `id` from `before`'s to `after`'s.
pub async fn update_tags(
    ec2: &Client,
    id: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let (set, remove) = tags::tag_changes(&tags::user_tags(before), &tags::user_tags(after));
    if !set.is_empty() {
        let tags = set
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build());
        ec2.create_tags()
            .resources(id)
            .set_tags(Some(tags.collect()))
            .send()
            .await
            .classified()?;
    }
    if !remove.is_empty() {
        let tags = remove.into_iter().map(|k| Tag::builder().key(k).build());
        ec2.delete_tags()
            .resources(id)
            .set_tags(Some(tags.collect()))
            .send()
            .await
            .classified()?;
    }
    Ok(())
}

pub fn filter(name: impl Into<String>, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// Filters matching what one create of this resource made: its owner tags and, when the
/// create has one, its token. `None` when the properties carry no owner tags (outside an
/// environment nothing is anyone's to find).
pub fn created_by(props: &Props, ctx: &OpContext) -> Option<Vec<Filter>> {
    let tags = tags::tags_of(props);
    let mut filters: Vec<Filter> = tags::OWNER_TAGS
        .iter()
        .filter_map(|key| Some(filter(format!("tag:{key}"), tags.get(*key)?)))
        .collect();
    if filters.is_empty() {
        return None;
    }
    if let Some(token) = &ctx.create_token {
        filters.push(filter(format!("tag:{CREATE_TOKEN_TAG}"), token));
    }
    Some(filters)
}

/// A known string property (`None` while a reference is unresolved).
pub fn known_str<'a>(props: &'a Props, key: &str) -> Option<&'a str> {
    props
        .get(key)
        .filter(|v| !contains_unknown(v))
        .and_then(Value::as_str)
}

pub use crate::arn::partition;

/// The ARN of an EC2 resource (`vpc/vpc-…`), which most EC2 answers do not carry.
pub fn arn(region: &str, owner: &str, kind: &str, id: &str) -> String {
    format!("arn:{}:ec2:{region}:{owner}:{kind}/{id}", partition(region))
}

/// Runs `op` again while AWS answers that something it names is not found (one of `codes`):
/// what was just made (a VPC, a gateway) may not be visible yet to the next call. An answer
/// that refuses the request changed nothing, so sending it again is safe.
pub async fn retry_while_invisible<T, F, Fut>(
    ctx: &OpContext,
    what: &str,
    codes: &[&str],
    mut op: F,
) -> ResourceResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ResourceResult<T>>,
{
    crate::wait::retry_while_busy(ctx, what, crate::wait::VISIBLE_LIMIT, || {
        let attempt = op();
        async move {
            attempt.await.map_err(|err| {
                if crate::errors::has_code(&err, codes) {
                    plinth_core::resource::ResourceError {
                        kind: plinth_core::resource::ErrorKind::InUse,
                        ..err
                    }
                } else {
                    err
                }
            })
        }
    })
    .await
}

pub use crate::errors::unless_gone;

/// A delete's answer: done, also when AWS says the thing is already gone.
pub fn gone_is_done<T>(answer: ResourceResult<T>) -> ResourceResult<()> {
    unless_gone(answer).map(|_| ())
}

/// After an attempt of a create went unanswered: deletes what else that create made
/// (`made`: the ids carrying its token), keeping `keep`, the one its answer named.
pub async fn remove_duplicates<F, Fut>(
    made: Vec<String>,
    keep: &str,
    what: &str,
    delete: F,
) -> ResourceResult<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ResourceResult<()>>,
{
    for id in made.into_iter().filter(|id| id != keep) {
        tracing::info!(
            id,
            kept = keep,
            "deleting the duplicate {what} a retried create made"
        );
        delete(id).await?;
    }
    Ok(())
}
