//! `elasticache.subnet_group`: the subnets a cache's nodes are placed in.
//!
//! Left out, `subnet_ids` means the region's default VPC's subnets: they are looked up when
//! the group is created (or changed without them), and `read` always reports the subnets the
//! group really has, so a stack that leaves them to plinth never sees a difference.
//! A group is deleted only once no cluster uses it; while a deleting cluster still does, AWS
//! answers `CacheSubnetGroupInUse` and the delete is retried.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::Filter;
use aws_sdk_elasticache::types::CacheSubnetGroup;
use aws_sdk_elasticache::Client;
use plinth_core::plan::planner::fill_computed;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, reorder, str_of, PathSeg, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::resources::elasticache_common::{self as common, known_str, SendExt};
use crate::resources::{ec2_default_vpc, tags};
use crate::wait;
use crate::Aws;

const DEFAULT_DESCRIPTION: &str = "Managed by plinth";
/// AWS's limit for subnet group names and descriptions.
const MAX_NAME: usize = 255;
const MAX_DESCRIPTION: usize = 255;
/// A group stays in use until the clusters in it are gone, which takes minutes.
const DELETE_LIMIT: Duration = Duration::from_secs(30 * 60);
/// Property order in canonical form (the schema's).
const ORDER: &[&str] = &["name", "description", "subnet_ids", "tags"];

/// The `elasticache.subnet_group` resource type.
pub struct SubnetGroup {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl SubnetGroup {
    pub fn new(aws: Arc<Aws>) -> SubnetGroup {
        SubnetGroup {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "elasticache.subnet_group",
        description: "An ElastiCache subnet group: the subnets cache nodes are placed in",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("name", Shape::String)
                .prefixable(255)
                .required()
                .replaces()
                .known_as(&["cache_subnet_group_name"])
                .unique()
                .doc("the group name: lowercase letters, digits and hyphens"),
            Prop::new("description", Shape::String)
                .known_as(&["cache_subnet_group_description"])
                .doc("the group description; default \"Managed by plinth\""),
            Prop::new("subnet_ids", Shape::list(Shape::String))
                .computed()
                .doc("the subnets (all in one VPC); default: the default VPC's subnets"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the group"),
        ]),
        attributes: vec![
            Attr::new("name", Shape::String, "the group name"),
            Attr::new("arn", Shape::String, "the group ARN"),
            Attr::new("vpc_id", Shape::String, "the VPC the subnets belong to"),
        ],
    }
}

#[async_trait]
impl ResourceType for SubnetGroup {
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

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(problem) = known_str(props, "name").and_then(name_problem) {
            issues.push(PropIssue::at(&["name"], problem));
        }
        if let Some(description) = known_str(props, "description") {
            if description.trim().is_empty() {
                issues.push(PropIssue::at(
                    &["description"],
                    "AWS requires a description; leave the key out for \"Managed by plinth\"",
                ));
            } else if description.chars().count() > MAX_DESCRIPTION {
                issues.push(PropIssue::at(
                    &["description"],
                    format!("the description may have at most {MAX_DESCRIPTION} characters"),
                ));
            }
        }
        if let Some(Value::Array(ids)) = props.get("subnet_ids") {
            if ids.is_empty() {
                issues.push(PropIssue::at(
                    &["subnet_ids"],
                    "a subnet group needs at least one subnet; leave subnet_ids out for the \
                     default VPC's subnets",
                ));
            }
            for (i, id) in ids.iter().enumerate() {
                if contains_unknown(id) {
                    continue;
                }
                let ok = id.as_str().is_some_and(|s| s.starts_with("subnet-"));
                if !ok {
                    issues.push(PropIssue {
                        path: vec![PathSeg::Key("subnet_ids".into()), PathSeg::Index(i)],
                        message: format!("expected a subnet id (subnet-…), not {id}"),
                    });
                }
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["name"])
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.elasticache(&ctx.region);
        let Some(group) = describe(&client, id).await? else {
            return Ok(None);
        };
        let arn = arn_of(&group)?;
        let tags = match common::tags_of(&client, arn).await {
            Ok(tags) => tags,
            // Deleted between the two calls.
            Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        observe(&group, tags).map(Some)
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let Some(name) = known_str(props, "name") else {
            return Ok(None);
        };
        let Some(observed) = self.read(ctx, name, props).await? else {
            return Ok(None);
        };
        Ok(tags::ours(observed, props))
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "elasticache", "subnetgroup:")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.elasticache(&ctx.region);
        let name = required_name(props)?;
        let subnet_ids = self.subnets_for(ctx, props).await?;
        debug!(name, subnets = subnet_ids.len(), "CreateCacheSubnetGroup");
        let created = client
            .create_cache_subnet_group()
            .cache_subnet_group_name(name)
            .cache_subnet_group_description(description_of(props))
            .set_subnet_ids(Some(subnet_ids))
            .set_tags(Some(common::tag_list(props)).filter(|t| !t.is_empty()))
            .send()
            .await
            .classified();
        match created {
            Ok(out) => {
                let group = out.cache_subnet_group().ok_or_else(|| {
                    ResourceError::other("CreateCacheSubnetGroup returned no group")
                })?;
                // Tagged at creation with exactly these tags: no need to list them again.
                observe(group, tags::user_tags(props))
            }
            Err(err) => {
                let what = format!("a cache subnet group named {name}");
                let found = crate::errors::adopt_if_ours(
                    err,
                    &["CacheSubnetGroupAlreadyExists"],
                    &what,
                    || self.find(ctx, props),
                )
                .await?;
                let mut after = props.clone();
                fill_computed(&self.schema, &mut after, &found.props);
                self.update(ctx, name, &found.props, &after).await
            }
        }
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.elasticache(&ctx.region);
        let changed = |key: &str| before.get(key) != after.get(key);
        let group = if changed("description") || changed("subnet_ids") {
            let subnet_ids = self.subnets_for(ctx, after).await?;
            debug!(
                name = id,
                subnets = subnet_ids.len(),
                "ModifyCacheSubnetGroup"
            );
            let out = client
                .modify_cache_subnet_group()
                .cache_subnet_group_name(id)
                .cache_subnet_group_description(description_of(after))
                .set_subnet_ids(Some(subnet_ids))
                .send()
                .await
                .classified()?;
            out.cache_subnet_group()
                .cloned()
                .ok_or_else(|| ResourceError::other("ModifyCacheSubnetGroup returned no group"))?
        } else {
            describe(&client, id)
                .await?
                .ok_or_else(|| crate::errors::vanished(&format!("cache subnet group {}", id)))?
        };
        common::update_tags(&client, arn_of(&group)?, before, after).await?;
        observe(&group, tags::user_tags(after))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = self.aws.elasticache(&ctx.region);
        let what = format!("deleting cache subnet group {id}");
        let client = &client;
        let result = wait::delete_when_free(ctx, &what, DELETE_LIMIT, || async move {
            match client
                .delete_cache_subnet_group()
                .cache_subnet_group_name(id)
                .send()
                .await
                .classified()
            {
                Ok(_) => {
                    debug!(name = id, "deleted cache subnet group");
                    Ok(())
                }
                Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
                Err(err) => Err(err),
            }
        })
        .await;
        match result {
            Err(mut err) if err.kind == ErrorKind::InUse => {
                err.message.push_str(
                    "; a cache cluster or replication group still uses the subnet group: delete \
                     it first (one that is being deleted lets go once it is gone, then destroy \
                     again)",
                );
                Err(err)
            }
            other => other,
        }
    }
}

impl SubnetGroup {
    /// The stack's subnets, or the default VPC's when it names none.
    async fn subnets_for(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Vec<String>> {
        if let Some(Value::Array(ids)) = props.get("subnet_ids") {
            return Ok(ids
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect());
        }
        let ec2 = self.aws.ec2(&ctx.region);
        let vpc = ec2_default_vpc::default_vpc(&ec2).await?.ok_or_else(|| {
            ResourceError::invalid(format!(
                "region {region} has no default VPC to take subnets from; create one with \
                 `aws ec2 create-default-vpc --region {region}` or give subnet_ids",
                region = ctx.region
            ))
        })?;
        let vpc_id = vpc
            .vpc_id()
            .ok_or_else(|| ResourceError::other("DescribeVpcs returned a VPC without an id"))?;
        let ids = default_subnet_ids(&ec2, vpc_id).await?;
        if ids.is_empty() {
            return Err(ResourceError::invalid(format!(
                "the default VPC {vpc_id} has no subnets; give subnet_ids"
            )));
        }
        debug!(
            vpc = vpc_id,
            subnets = ids.len(),
            "using the default VPC's subnets"
        );
        Ok(ids)
    }
}

/// The subnets of a VPC, sorted.
async fn default_subnet_ids(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
) -> ResourceResult<Vec<String>> {
    let subnets = ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(crate::errors::classify)?;
    let mut ids: Vec<String> = subnets
        .iter()
        .filter_map(|s| s.subnet_id().map(str::to_string))
        .collect();
    ids.sort();
    Ok(ids)
}

/// Defaults filled, subnets sorted, tags in key order: for desired and read props alike.
fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props
        .entry("description")
        .or_insert_with(|| json!(DEFAULT_DESCRIPTION));
    if let Some(Value::Array(ids)) = props.get_mut("subnet_ids") {
        if !ids.iter().any(contains_unknown) {
            ids.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            ids.dedup();
        }
    }
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    reorder(props, ORDER);
}

/// What is wrong with a subnet group name, if anything.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Some(format!(
            "a subnet group name has 1 to {MAX_NAME} characters, not {}",
            name.chars().count()
        ));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(format!(
            "{name:?} has uppercase letters; AWS stores subnet group names lowercase, so write {:?}",
            name.to_ascii_lowercase()
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Some(format!(
            "{name:?}: a subnet group name has only lowercase letters, digits and hyphens"
        ));
    }
    None
}

fn required_name(props: &Props) -> ResourceResult<&str> {
    str_of(props, "name")
        .ok_or_else(|| ResourceError::invalid("elasticache.subnet_group needs a name"))
}

fn description_of(props: &Props) -> &str {
    str_of(props, "description").unwrap_or(DEFAULT_DESCRIPTION)
}

fn arn_of(group: &CacheSubnetGroup) -> ResourceResult<&str> {
    group.arn().ok_or_else(|| {
        ResourceError::other("DescribeCacheSubnetGroups returned a group without an ARN")
    })
}

async fn describe(client: &Client, name: &str) -> ResourceResult<Option<CacheSubnetGroup>> {
    match client
        .describe_cache_subnet_groups()
        .cache_subnet_group_name(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(out.cache_subnet_groups().first().cloned()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

fn observe(
    group: &CacheSubnetGroup,
    tags: std::collections::BTreeMap<String, String>,
) -> ResourceResult<Observed> {
    let name = group
        .cache_subnet_group_name()
        .ok_or_else(|| ResourceError::other("AWS returned a cache subnet group without a name"))?;
    let subnet_ids: Vec<&str> = group
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_identifier())
        .collect();
    let mut props = Props::new();
    props.insert("name".into(), json!(name));
    props.insert(
        "description".into(),
        json!(group.cache_subnet_group_description().unwrap_or_default()),
    );
    props.insert("subnet_ids".into(), json!(subnet_ids));
    props.insert("tags".into(), tags::tags_value(tags));
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("name".into(), json!(name));
    attrs.insert("arn".into(), json!(arn_of(group)?));
    if let Some(vpc_id) = group.vpc_id() {
        attrs.insert("vpc_id".into(), json!(vpc_id));
    }
    Ok(Observed {
        id: name.to_string(),
        props,
        attrs,
    })
}
