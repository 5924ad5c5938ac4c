//! `iam.instance_profile`: what hands an IAM role to an EC2 instance.
//!
//! IAM is global (its API lives in us-east-1). A profile holds at most one role; changing it
//! removes the old one and adds the new. A profile made a moment ago is not yet usable by
//! EC2: `ec2.instance` retries its launch meanwhile. A profile is deleted after its role is
//! removed from it; a role removed by hand is no obstacle.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_iam::types::InstanceProfile;
use aws_sdk_iam::Client;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::teardown::{TagFilter, TaggedResource};
use plinth_core::value::{known_str, reorder, Props};
use serde_json::json;
use tracing::debug;

use crate::errors::{self, SendExt};
use crate::resources::iam_role::{iam_tags, IAM_REGION};
use crate::resources::tags;
use crate::wait;
use crate::Aws;

const MAX_NAME: usize = 128;
const ORDER: &[&str] = &["name", "path", "role", "tags"];

/// The `iam.instance_profile` resource type.
pub struct InstanceProfileType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl InstanceProfileType {
    pub fn new(aws: Arc<Aws>) -> InstanceProfileType {
        InstanceProfileType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "iam.instance_profile",
        description: "An IAM instance profile: the role an EC2 instance runs with",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("name", Shape::String)
                .prefixable(128)
                .required()
                .replaces()
                .unique()
                .doc("the profile name, unique in the account"),
            Prop::new("path", Shape::String)
                .replaces()
                .doc("the profile path; default \"/\""),
            Prop::new("role", Shape::String)
                .doc("the role's name, e.g. ${bastion_role.name}; default none"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the profile"),
        ]),
        attributes: vec![
            Attr::new("arn", Shape::String, "the profile ARN"),
            Attr::new("name", Shape::String, "the profile name"),
            Attr::new("id", Shape::String, "the profile's unique id (AIPA…)"),
        ],
    }
}

#[async_trait]
impl ResourceType for InstanceProfileType {
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

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(name) = known_str(props, "name") {
            let valid = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if name.is_empty() || name.len() > MAX_NAME || !valid {
                issues.push(PropIssue::at(
                    &["name"],
                    format!("{name:?}: 1 to {MAX_NAME} letters, digits and +=,.@_- are allowed"),
                ));
            }
        }
        issues
    }

    fn pinned_region(&self, _props: &Props) -> Option<&'static str> {
        Some(IAM_REGION)
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
        let client = self.aws.iam(&ctx.region);
        Ok(get_profile(&client, id).await?.map(|p| observe(&p)))
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
        crate::arn::last_segment_after(arn, "iam", "instance-profile/")
    }

    /// The Resource Groups Tagging API does not list IAM instance profiles.
    async fn find_tagged(
        &self,
        ctx: &OpContext,
        filters: &[TagFilter],
    ) -> ResourceResult<Vec<TaggedResource>> {
        if ctx.region != IAM_REGION {
            return Ok(Vec::new());
        }
        let client = self.aws.iam(&ctx.region);
        let listed = client
            .list_instance_profiles()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(errors::classify)?;
        let mut found = Vec::new();
        for listed in listed {
            // The list leaves tags out: each profile is read for them.
            let Some(profile) = get_profile(&client, listed.instance_profile_name()).await? else {
                continue;
            };
            let tags = tags_of(&profile);
            if TagFilter::all_match(filters, &tags) {
                found.push(TaggedResource {
                    arn: profile.arn().to_string(),
                    region: ctx.region.clone(),
                    tags,
                });
            }
        }
        Ok(found)
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.iam(&ctx.region);
        let name = known_str(props, "name")
            .ok_or_else(|| ResourceError::invalid("iam.instance_profile needs a name"))?;
        debug!(profile = name, "CreateInstanceProfile");
        let created = client
            .create_instance_profile()
            .instance_profile_name(name)
            .path(known_str(props, "path").unwrap_or("/"))
            .set_tags(Some(iam_tags(tags::user_tags(props))?))
            .send()
            .await
            .classified();
        let profile = match created {
            Ok(out) => out.instance_profile().cloned(),
            Err(err) if err.code.as_deref() == Some("EntityAlreadyExists") => {
                // An interrupted or unanswered create of this stack made it: bring it to
                // `props`; anyone else's is a clash.
                match get_profile(&client, name).await? {
                    Some(found) if tags::owned_by(&tags_of(&found), props) => {
                        debug!(
                            profile = name,
                            "adopting an instance profile this stack created"
                        );
                        Some(found)
                    }
                    _ => {
                        return Err(errors::name_taken(
                            err,
                            "EntityAlreadyExists",
                            &format!("an instance profile named {name}"),
                        ))
                    }
                }
            }
            Err(err) => return Err(err),
        };
        let profile = profile
            .ok_or_else(|| ResourceError::other("CreateInstanceProfile returned no profile"))?;
        let current = observe(&profile);
        set_role(ctx, &client, name, &current.props, props).await?;
        // Built from what was sent: a read right after a create may not see it yet.
        Ok(Observed {
            id: name.to_string(),
            props: props.clone(),
            attrs: current.attrs,
        })
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.iam(&ctx.region);
        let profile = get_profile(&client, id)
            .await?
            .ok_or_else(|| errors::vanished(&format!("instance profile {id}")))?;
        set_role(ctx, &client, id, before, after).await?;
        update_tags(&client, id, before, after).await?;
        Ok(Observed {
            id: id.to_string(),
            props: after.clone(),
            attrs: observe(&profile).attrs,
        })
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = self.aws.iam(&ctx.region);
        let Some(profile) = get_profile(&client, id).await? else {
            return Ok(());
        };
        // The roles AWS lists now, not the state's: one added by hand blocks the delete too.
        for role in profile.roles() {
            remove_role(&client, id, role.role_name()).await?;
        }
        debug!(profile = id, "DeleteInstanceProfile");
        match client
            .delete_instance_profile()
            .instance_profile_name(id)
            .send()
            .await
            .classified()
        {
            Err(err) if err.kind != ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
}

fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props.entry("path").or_insert_with(|| json!("/"));
    props.insert("tags".into(), tags::tags_value(tags::tags_of(props)));
    reorder(props, ORDER);
}

async fn get_profile(client: &Client, name: &str) -> ResourceResult<Option<InstanceProfile>> {
    let answer = client
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .classified();
    match answer {
        Ok(out) => Ok(out.instance_profile().cloned()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

fn tags_of(profile: &InstanceProfile) -> BTreeMap<String, String> {
    profile
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .filter(|(key, _)| !tags::is_reserved(key))
        .collect()
}

fn observe(profile: &InstanceProfile) -> Observed {
    let mut props = Props::new();
    props.insert("name".into(), json!(profile.instance_profile_name()));
    props.insert("path".into(), json!(profile.path()));
    if let Some(role) = profile.roles().first() {
        props.insert("role".into(), json!(role.role_name()));
    }
    props.insert("tags".into(), tags::tags_value(tags_of(profile)));
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("arn".into(), json!(profile.arn()));
    attrs.insert("name".into(), json!(profile.instance_profile_name()));
    attrs.insert("id".into(), json!(profile.instance_profile_id()));
    Observed {
        id: profile.instance_profile_name().to_string(),
        props,
        attrs,
    }
}

/// Moves the profile from `before`'s role to `after`'s.
async fn set_role(
    ctx: &OpContext,
    client: &Client,
    profile: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let (old, new) = (known_str(before, "role"), known_str(after, "role"));
    if old == new {
        return Ok(());
    }
    if let Some(old) = old {
        remove_role(client, profile, old).await?;
    }
    let Some(new) = new else {
        return Ok(());
    };
    debug!(profile, role = new, "AddRoleToInstanceProfile");
    // A role made a moment ago may be unknown to IAM's other endpoints yet (NoSuchEntity).
    let added = wait::retry_while_busy(
        ctx,
        "adding the role while it is not visible yet",
        wait::VISIBLE_LIMIT,
        || async move {
            client
                .add_role_to_instance_profile()
                .instance_profile_name(profile)
                .role_name(new)
                .send()
                .await
                .classified()
                .map_err(|err| {
                    if err.kind == ErrorKind::NotFound {
                        ResourceError {
                            kind: ErrorKind::InUse,
                            ..err
                        }
                    } else {
                        err
                    }
                })
        },
    )
    .await;
    match added {
        Ok(_) => Ok(()),
        // A profile holds one role: sent again after a lost answer, the add that went
        // through is refused as one too many (LimitExceeded). Done, if that role is the one.
        Err(err) => match get_profile(client, profile).await? {
            Some(found) if found.roles().iter().any(|r| r.role_name() == new) => Ok(()),
            _ => Err(err),
        },
    }
}

async fn remove_role(client: &Client, profile: &str, role: &str) -> ResourceResult<()> {
    debug!(profile, role, "RemoveRoleFromInstanceProfile");
    match client
        .remove_role_from_instance_profile()
        .instance_profile_name(profile)
        .role_name(role)
        .send()
        .await
        .classified()
    {
        Err(err) if err.kind != ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

async fn update_tags(
    client: &Client,
    profile: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let (set, remove) = tags::tag_changes(&tags::user_tags(before), &tags::user_tags(after));
    if !set.is_empty() {
        client
            .tag_instance_profile()
            .instance_profile_name(profile)
            .set_tags(Some(iam_tags(set)?))
            .send()
            .await
            .classified()?;
    }
    if !remove.is_empty() {
        client
            .untag_instance_profile()
            .instance_profile_name(profile)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .classified()?;
    }
    Ok(())
}
