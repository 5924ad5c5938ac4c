//! `elasticache.user_group`: the users a Redis or Valkey replication group lets in. A
//! replication group names it with `user_group`; connections then start as the member whose
//! user name is `default`, so AWS requires one.
//!
//! Membership changes in place with one ModifyUserGroup: the users to add and the users to
//! remove, computed against what the group really has (AWS takes a deleted user out of its
//! groups itself, and refuses to remove one that is no longer a member).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_elasticache::types::UserGroup;
use aws_sdk_elasticache::Client;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, reorder, str_of, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::resources::elasticache_common::{self as common, known_str, SendExt};
use crate::resources::tags;
use crate::wait;
use crate::Aws;

const ENGINES: &[&str] = &["redis", "valkey"];
const MAX_ID: usize = 40;
const READY_LIMIT: Duration = Duration::from_secs(15 * 60);
/// A group is refused deletion while a replication group still uses it, and that one takes
/// minutes to go.
const DELETE_LIMIT: Duration = Duration::from_secs(30 * 60);
const ORDER: &[&str] = &["user_group_id", "engine", "users", "tags"];

/// The `elasticache.user_group` resource type.
pub struct CacheUserGroup {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl CacheUserGroup {
    pub fn new(aws: Arc<Aws>) -> CacheUserGroup {
        CacheUserGroup {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "elasticache.user_group",
        description: "A Redis or Valkey user group: the users a replication group lets in",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("user_group_id", Shape::String)
                .prefixable(MAX_ID)
                .required()
                .replaces()
                .unique()
                .doc("the group's id, unique in the region: lowercase letters, digits and hyphens"),
            Prop::new("engine", Shape::Enum(ENGINES))
                .replaces()
                .doc("default redis"),
            Prop::new("users", Shape::list(Shape::String))
                .required()
                .holds_referent()
                .known_as(&["user_ids"])
                .doc("the members' user ids (${app_user.user_id}); one of them has the user_name default"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the group"),
        ]),
        attributes: vec![
            Attr::new(
                "user_group_id",
                Shape::String,
                "the group's id, for a replication group's user_group",
            ),
            Attr::new("arn", Shape::String, "the group's ARN"),
        ],
    }
}

#[async_trait]
impl ResourceType for CacheUserGroup {
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
        if let Some(problem) =
            known_str(props, "user_group_id").and_then(|id| common::identifier_problem(id, MAX_ID))
        {
            issues.push(PropIssue::at(&["user_group_id"], problem));
        }
        if let Some(Value::Array(users)) = props.get("users") {
            if users.is_empty() {
                issues.push(PropIssue::at(
                    &["users"],
                    "a user group needs members, one of them with the user_name default",
                ));
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["user_group_id"])
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
        if group.status() == Some("deleting") {
            return Ok(None);
        }
        let Some(tags) = common::tags_unless_gone(&client, arn_of(&group)?).await? else {
            return Ok(None);
        };
        observe(&group, tags).map(Some)
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let Some(id) = known_str(props, "user_group_id") else {
            return Ok(None);
        };
        let Some(observed) = self.read(ctx, id, props).await? else {
            return Ok(None);
        };
        Ok(tags::ours(observed, props))
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "elasticache", "usergroup:")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.elasticache(&ctx.region);
        let id = str_of(props, "user_group_id").ok_or_else(|| {
            ResourceError::invalid("elasticache.user_group needs a user_group_id")
        })?;
        debug!(group = id, "CreateUserGroup");
        let created = client
            .create_user_group()
            .user_group_id(id)
            .engine(str_of(props, "engine").unwrap_or("redis"))
            .set_user_ids(Some(users_of(props)))
            .set_tags(Some(common::tag_list(props)).filter(|t| !t.is_empty()))
            .send()
            .await
            .classified();
        if let Err(err) = created {
            let what = format!("a cache user group with the id {id}");
            let found = crate::errors::adopt_if_ours(
                with_membership_hint(err),
                &["UserGroupAlreadyExists"],
                &what,
                || self.find(ctx, props),
            )
            .await?;
            return self.update(ctx, id, &found.props, props).await;
        }
        let group = wait_active(ctx, &client, id).await?;
        observe(&group, tags::user_tags(props))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.elasticache(&ctx.region);
        let wants = users_of(after);
        if users_of(before) != wants {
            let (client, wants) = (&client, &wants);
            // Computed against the members the group has at each attempt: AWS takes deleted
            // users out itself and refuses to remove a non-member, and a change whose answer
            // was lost must not be sent again. A group still creating or modifying is
            // refused with InvalidUserGroupState: asked again once it is active.
            wait::retry_while_busy(
                ctx,
                &format!("changing the users of cache user group {id}"),
                READY_LIMIT,
                || async move { change_members(client, id, wants).await },
            )
            .await
            .map_err(with_membership_hint)?;
        }
        let group = wait_active(ctx, &client, id).await?;
        common::update_tags(&client, arn_of(&group)?, before, after).await?;
        observe(&group, tags::user_tags(after))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = &self.aws.elasticache(&ctx.region);
        let what = format!("deleting cache user group {id}");
        let reason = "ElastiCache deletes the user group in the background";
        let delete = || async move {
            client
                .delete_user_group()
                .user_group_id(id)
                .send()
                .await
                .classified()
                .map(|_| ())
        };
        let status = || async move {
            Ok(describe(client, id)
                .await?
                .map(|g| g.status().unwrap_or("deleting").to_string()))
        };
        common::delete_in_background(ctx, (&what, reason), DELETE_LIMIT, delete, status)
            .await
            .map_err(|mut err| {
                if err.kind == ErrorKind::InUse {
                    err.message.push_str(
                        "; a replication group or serverless cache still uses the user group: \
                         delete it or remove its user_group first",
                    );
                }
                err
            })
    }
}

/// One ModifyUserGroup from the members the group has now (pending changes counted) to
/// `wants`; nothing when they match.
async fn change_members(client: &Client, id: &str, wants: &[String]) -> ResourceResult<()> {
    let group = describe(client, id)
        .await?
        .ok_or_else(|| crate::errors::vanished(&format!("cache user group {id}")))?;
    if group.status() != Some("active") {
        return Err(ResourceError::new(
            ErrorKind::InUse,
            format!(
                "cache user group {id} is {}",
                group.status().unwrap_or("busy")
            ),
        ));
    }
    let has = group.user_ids();
    let add: Vec<String> = wants.iter().filter(|u| !has.contains(u)).cloned().collect();
    let remove: Vec<String> = has.iter().filter(|u| !wants.contains(u)).cloned().collect();
    if add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    debug!(group = id, ?add, ?remove, "ModifyUserGroup");
    client
        .modify_user_group()
        .user_group_id(id)
        .set_user_ids_to_add(Some(add).filter(|a| !a.is_empty()))
        .set_user_ids_to_remove(Some(remove).filter(|r| !r.is_empty()))
        .send()
        .await
        .classified()
        .map(|_| ())
}

/// What AWS refuses about a group's members, said in the stack's terms.
fn with_membership_hint(mut err: ResourceError) -> ResourceError {
    match err.code.as_deref() {
        Some("DefaultUserRequired") => err.message.push_str(
            "; a user group needs a member whose user_name is default (the user connections \
             start as): add an elasticache.user with user_name: default and, to make clients \
             sign in, access_string: off -@all",
        ),
        Some("UserNotFound") => err.message.push_str(
            "; every member must be an existing user: name it as ${user.user_id} so plinth \
             creates it first",
        ),
        _ => {}
    }
    err
}

fn users_of(props: &Props) -> Vec<String> {
    props
        .get("users")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props.entry("engine").or_insert_with(|| json!("redis"));
    if let Some(Value::Array(users)) = props.get_mut("users") {
        if !users.iter().any(contains_unknown) {
            users.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            users.dedup();
        }
    }
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    reorder(props, ORDER);
}

async fn describe(client: &Client, id: &str) -> ResourceResult<Option<UserGroup>> {
    match client
        .describe_user_groups()
        .user_group_id(id)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(out
            .user_groups()
            .iter()
            .find(|g| g.user_group_id() == Some(id))
            .cloned()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Waits until the group is `active` (`creating` or `modifying` before).
async fn wait_active(ctx: &OpContext, client: &Client, id: &str) -> ResourceResult<UserGroup> {
    let what = format!("cache user group {id}");
    common::wait_for_status(
        ctx,
        &what,
        READY_LIMIT,
        ("active", UserGroup::status),
        || describe(client, id),
    )
    .await
}

fn arn_of(group: &UserGroup) -> ResourceResult<&str> {
    group
        .arn()
        .ok_or_else(|| ResourceError::other("DescribeUserGroups returned a group without an ARN"))
}

fn observe(
    group: &UserGroup,
    tags: std::collections::BTreeMap<String, String>,
) -> ResourceResult<Observed> {
    let id = group
        .user_group_id()
        .ok_or_else(|| ResourceError::other("DescribeUserGroups returned a group without an id"))?;
    let mut props = Props::new();
    props.insert("user_group_id".into(), json!(id));
    props.insert("engine".into(), json!(group.engine().unwrap_or("redis")));
    props.insert("users".into(), json!(group.user_ids()));
    props.insert("tags".into(), tags::tags_value(tags));
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("user_group_id".into(), json!(id));
    attrs.insert("arn".into(), json!(group.arn()));
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs,
    })
}
