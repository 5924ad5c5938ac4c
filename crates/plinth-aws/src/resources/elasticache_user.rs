//! `elasticache.user`: a Redis or Valkey user (role-based access control), with an access
//! string and passwords or IAM authentication. Users take effect through an
//! `elasticache.user_group` attached to a replication group.
//!
//! AWS never returns passwords, only how many there are: `read` keeps the ones last applied
//! while the count matches, and reports none when it does not (someone changed them by
//! hand), so the plan puts the stack's back.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_elasticache::types::{AuthenticationMode, InputAuthenticationType, User};
use aws_sdk_elasticache::Client;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, reorder, str_of, PathSeg, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::resources::elasticache_common::{self as common, known_str, SendExt};
use crate::resources::tags;
use crate::wait;
use crate::Aws;

const ENGINES: &[&str] = &["redis", "valkey"];
/// How a user signs in: `none` is AWS's `no-password-required`.
const AUTHENTICATIONS: &[&str] = &["password", "iam", "none"];
const MAX_ID: usize = 40;
const PASSWORD_LENGTH: std::ops::RangeInclusive<usize> = 16..=128;
/// Users become active within seconds; modifying one takes a little longer.
const READY_LIMIT: Duration = Duration::from_secs(10 * 60);
const DELETE_LIMIT: Duration = Duration::from_secs(10 * 60);
const ORDER: &[&str] = &[
    "user_id",
    "user_name",
    "engine",
    "access_string",
    "authentication",
    "passwords",
    "tags",
];

/// The `elasticache.user` resource type.
pub struct CacheUser {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl CacheUser {
    pub fn new(aws: Arc<Aws>) -> CacheUser {
        CacheUser {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "elasticache.user",
        description: "A Redis or Valkey user: an access string and passwords or IAM authentication",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("user_id", Shape::String)
                .prefixable(MAX_ID)
                .required()
                .replaces()
                .unique()
                .doc("the user's id, unique in the region: lowercase letters, digits and hyphens"),
            Prop::new("user_name", Shape::String)
                .required()
                .replaces()
                .doc("the name clients sign in with (AUTH name password); `default` for the user a group's connections start as"),
            Prop::new("engine", Shape::Enum(ENGINES)).doc("default redis"),
            Prop::new("access_string", Shape::String)
                .required()
                .doc("what the user may do, in Redis ACL syntax: `on ~app:* +@read +@write`, `off -@all`"),
            Prop::new("authentication", Shape::Enum(AUTHENTICATIONS))
                .known_as(&["authentication_mode"])
                .doc("password (with passwords), iam (user_id equal to user_name) or none (no password: anyone may sign in as the user); default password"),
            Prop::new("passwords", Shape::list(Shape::String))
                .sensitive()
                .doc("one or two passwords (two while rotating), 16–128 printable characters without spaces, @, \" or /"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the user"),
        ]),
        attributes: vec![
            Attr::new("user_id", Shape::String, "the user's id, for a user group's users"),
            Attr::new("arn", Shape::String, "the user's ARN"),
        ],
    }
}

#[async_trait]
impl ResourceType for CacheUser {
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
            known_str(props, "user_id").and_then(|id| common::identifier_problem(id, MAX_ID))
        {
            issues.push(PropIssue::at(&["user_id"], problem));
        }
        let authentication = known_str(props, "authentication");
        let passwords = props.get("passwords").filter(|v| !contains_unknown(v));
        match (authentication.unwrap_or("password"), passwords) {
            ("password", None) if !props.contains_key("passwords") => {
                issues.push(PropIssue::at(
                    &["passwords"],
                    "a user signs in with passwords unless authentication is iam or none: give one or two passwords",
                ));
            }
            ("password", Some(Value::Array(list))) => password_issues(list, &mut issues),
            ("iam" | "none", _) if props.contains_key("passwords") => {
                issues.push(PropIssue::at(
                    &["passwords"],
                    "passwords go with authentication: password only",
                ));
            }
            _ => {}
        }
        let (id, name) = (known_str(props, "user_id"), known_str(props, "user_name"));
        if authentication == Some("iam") && id.is_some() && name.is_some() && id != name {
            issues.push(PropIssue::at(
                &["user_name"],
                "with IAM authentication AWS requires the user_name to equal the user_id",
            ));
        }
        if known_str(props, "access_string").is_some_and(|a| a.trim().is_empty()) {
            issues.push(PropIssue::at(
                &["access_string"],
                "an access string says what the user may do: `on ~* +@all`, or `off -@all` for none",
            ));
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["user_id"])
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.elasticache(&ctx.region);
        let Some(user) = describe(&client, id).await? else {
            return Ok(None);
        };
        if user.status() == Some("deleting") {
            return Ok(None);
        }
        let Some(tags) = common::tags_unless_gone(&client, arn_of(&user)?).await? else {
            return Ok(None);
        };
        observe(&user, tags, prior).map(Some)
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let Some(id) = known_str(props, "user_id") else {
            return Ok(None);
        };
        let Some(observed) = self.read(ctx, id, props).await? else {
            return Ok(None);
        };
        Ok(tags::ours(observed, props))
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "elasticache", "user:")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.elasticache(&ctx.region);
        let id = str_of(props, "user_id")
            .ok_or_else(|| ResourceError::invalid("elasticache.user needs a user_id"))?;
        debug!(user = id, "CreateUser");
        let created = client
            .create_user()
            .user_id(id)
            .user_name(str_of(props, "user_name").unwrap_or_default())
            .engine(str_of(props, "engine").unwrap_or("redis"))
            .access_string(access_string(props))
            .authentication_mode(authentication_mode(props))
            .set_tags(Some(common::tag_list(props)).filter(|t| !t.is_empty()))
            .send()
            .await
            .classified();
        if let Err(err) = created {
            let what = format!("a cache user with the id {id}");
            let found = crate::errors::adopt_if_ours(
                with_duplicate_name_hint(err),
                &["UserAlreadyExists"],
                &what,
                || self.find(ctx, props),
            )
            .await?;
            return self.update(ctx, id, &found.props, props).await;
        }
        let user = wait_active(ctx, &client, id).await?;
        observe(&user, tags::user_tags(props), props)
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
        if ["engine", "access_string", "authentication", "passwords"]
            .iter()
            .any(|k| changed(k))
        {
            let mut request = client.modify_user().user_id(id);
            if changed("access_string") {
                request = request.access_string(access_string(after));
            }
            if changed("engine") {
                request = request.engine(str_of(after, "engine").unwrap_or("redis"));
            }
            if changed("authentication") || changed("passwords") {
                request = request.authentication_mode(authentication_mode(after));
            }
            debug!(user = id, "ModifyUser");
            let request = &request;
            wait::retry_while_busy(
                ctx,
                &format!("changing cache user {id}"),
                READY_LIMIT,
                || async move { request.clone().send().await.classified() },
            )
            .await?;
        }
        let user = wait_active(ctx, &client, id).await?;
        common::update_tags(&client, arn_of(&user)?, before, after).await?;
        observe(&user, tags::user_tags(after), after)
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = &self.aws.elasticache(&ctx.region);
        let what = format!("deleting cache user {id}");
        let reason = "ElastiCache deletes the user in the background";
        // AWS takes a deleted user out of every user group itself.
        let delete = || async move {
            match client.delete_user().user_id(id).send().await.classified() {
                // A group's default user goes once the group does (AWS keeps every group
                // with one): asked again while the group is being deleted.
                Err(err) if err.code.as_deref() == Some("DefaultUserAssociatedToUserGroup") => {
                    Err(ResourceError {
                        kind: ErrorKind::InUse,
                        ..err
                    })
                }
                other => other.map(|_| ()),
            }
        };
        let status = || async move {
            Ok(describe(client, id)
                .await?
                .map(|u| u.status().unwrap_or("deleting").to_string()))
        };
        common::delete_in_background(ctx, (&what, reason), DELETE_LIMIT, delete, status).await
    }
}

/// A user name taken by another user of the engine, said so.
fn with_duplicate_name_hint(mut err: ResourceError) -> ResourceError {
    if err.code.as_deref() == Some("DuplicateUserName") {
        err.message
            .push_str("; AWS has a user with this user_name already (only `default` may be taken by several users, one per group): choose another");
    }
    err
}

fn password_issues(list: &[Value], issues: &mut Vec<PropIssue>) {
    if list.is_empty() || list.len() > 2 {
        issues.push(PropIssue::at(
            &["passwords"],
            format!(
                "a user has one or two passwords (two while rotating), not {}",
                list.len()
            ),
        ));
    }
    for (i, password) in list.iter().enumerate() {
        let problem = password.as_str().and_then(password_problem);
        if let Some(problem) = problem {
            issues.push(PropIssue {
                path: vec![PathSeg::Key("passwords".into()), PathSeg::Index(i)],
                message: problem,
            });
        }
    }
}

/// What is wrong with a password; the message never quotes it.
fn password_problem(password: &str) -> Option<String> {
    let length = password.chars().count();
    if !PASSWORD_LENGTH.contains(&length) {
        return Some(format!(
            "a password has {} to {} characters, not {length}",
            PASSWORD_LENGTH.start(),
            PASSWORD_LENGTH.end()
        ));
    }
    password
        .chars()
        .any(|c| !c.is_ascii_graphic() || matches!(c, '@' | '"' | '/'))
        .then(|| {
            "a password has only printable ASCII characters, without spaces, @, \" or /".to_string()
        })
}

/// Spaces between ACL rules collapsed: `on  ~*  +@all` and `on ~* +@all` are one string.
fn access_string(props: &Props) -> String {
    str_of(props, "access_string")
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn passwords_of(props: &Props) -> Vec<String> {
    props
        .get("passwords")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn authentication_mode(props: &Props) -> AuthenticationMode {
    let kind = match str_of(props, "authentication").unwrap_or("password") {
        "iam" => InputAuthenticationType::Iam,
        "none" => InputAuthenticationType::NoPassword,
        _ => InputAuthenticationType::Password,
    };
    let passwords = passwords_of(props);
    AuthenticationMode::builder()
        .r#type(kind)
        .set_passwords(Some(passwords).filter(|p| !p.is_empty()))
        .build()
}

fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props.entry("engine").or_insert_with(|| json!("redis"));
    props
        .entry("authentication")
        .or_insert_with(|| json!("password"));
    if let Some(Value::String(access)) = props.get_mut("access_string") {
        if !access.contains(plinth_core::value::UNKNOWN) {
            *access = access.split_whitespace().collect::<Vec<_>>().join(" ");
        }
    }
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    reorder(props, ORDER);
}

async fn describe(client: &Client, id: &str) -> ResourceResult<Option<User>> {
    match client
        .describe_users()
        .user_id(id)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(out
            .users()
            .iter()
            .find(|u| u.user_id() == Some(id))
            .cloned()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Waits until the user is `active` (it is `creating` or `modifying` before).
async fn wait_active(ctx: &OpContext, client: &Client, id: &str) -> ResourceResult<User> {
    let what = format!("cache user {id}");
    common::wait_for_status(ctx, &what, READY_LIMIT, ("active", User::status), || {
        describe(client, id)
    })
    .await
}

fn arn_of(user: &User) -> ResourceResult<&str> {
    user.arn()
        .ok_or_else(|| ResourceError::other("DescribeUsers returned a user without an ARN"))
}

fn observe(
    user: &User,
    tags: std::collections::BTreeMap<String, String>,
    prior: &Props,
) -> ResourceResult<Observed> {
    let id = user
        .user_id()
        .ok_or_else(|| ResourceError::other("DescribeUsers returned a user without an id"))?;
    let authentication = user.authentication();
    let kind = match authentication.and_then(|a| a.r#type()).map(|t| t.as_str()) {
        Some("iam") => "iam",
        Some("no-password") | Some("no-password-required") => "none",
        _ => "password",
    };
    let mut props = Props::new();
    props.insert("user_id".into(), json!(id));
    props.insert(
        "user_name".into(),
        json!(user.user_name().unwrap_or_default()),
    );
    props.insert("engine".into(), json!(user.engine().unwrap_or("redis")));
    props.insert(
        "access_string".into(),
        json!(user.access_string().unwrap_or_default()),
    );
    props.insert("authentication".into(), json!(kind));
    // The passwords last applied, while AWS holds as many as that.
    let count = authentication.and_then(|a| a.password_count()).unwrap_or(0);
    let known = passwords_of(prior);
    if kind == "password" && !known.is_empty() && usize::try_from(count).ok() == Some(known.len()) {
        props.insert("passwords".into(), json!(known));
    }
    props.insert("tags".into(), tags::tags_value(tags));
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("user_id".into(), json!(id));
    attrs.insert("arn".into(), json!(user.arn()));
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs,
    })
}
