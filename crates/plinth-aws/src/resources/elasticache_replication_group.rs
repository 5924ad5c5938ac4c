//! `elasticache.replication_group`: Redis or Valkey with a primary and replicas (cluster mode
//! disabled, `num_cache_clusters`), or shards with replicas each (cluster mode enabled,
//! `num_node_groups` + `replicas_per_node_group`); automatic failover, Multi-AZ, encryption in
//! transit and at rest, and an AUTH token.
//!
//! Canonical form: every default filled in (`automatic_failover` defaults to true exactly when
//! there is something to fail over to, or in cluster mode), `security_group_ids` sorted,
//! `maintenance_window` lowercase, `tags` always present. Cluster mode is told apart by
//! `num_node_groups` being present; switching modes or shard counts replaces the group.
//!
//! AWS never returns the AUTH token, so `read` reports the token last applied while AWS says
//! one is enabled: an unchanged token never shows as a difference, a changed one is rotated in
//! place (AuthTokenUpdateStrategy=ROTATE). The token is never logged: the typed view keeps it
//! in a wrapper whose `Debug` prints a placeholder.
//!
//! DescribeReplicationGroups does not say the engine version, subnet group, security groups,
//! parameter group or maintenance window: `read` takes them from a member cluster
//! (DescribeCacheClusters), and keeps what was last applied when no member can be described.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_elasticache::operation::create_replication_group::builders::CreateReplicationGroupFluentBuilder;
use aws_sdk_elasticache::operation::modify_replication_group::builders::ModifyReplicationGroupFluentBuilder;
use aws_sdk_elasticache::types::{
    AuthTokenUpdateStrategyType, AutomaticFailoverStatus, CacheCluster, ClusterMode, MultiAzStatus,
    ReplicationGroup as Group, Tag,
};
use aws_sdk_elasticache::Client;
use plinth_core::resource::{
    ErrorKind, Linked, NormalizeContext, Observed, OpContext, PropIssue, ResourceError,
    ResourceResult, ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{
    contains_unknown, reorder, str_of, unknown, PathSeg, Props, SENSITIVE_DISPLAY,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::debug;

use crate::resources::elasticache_common::{
    self as common, known_i64, known_str, SendExt, REDIS_PORT,
};
use crate::resources::elasticache_logs as logs;
use crate::resources::tags;
use crate::wait::{self, Poll};
use crate::Aws;

const DEFAULT_DESCRIPTION: &str = "Managed by plinth";
/// The engines a replication group runs; Memcached has no replication.
const ENGINES: &[&str] = &["redis", "valkey"];
const DEFAULT_ENGINE: &str = "redis";
/// AWS's limit for replication group ids.
const MAX_ID: usize = 40;
/// Real replication groups take tens of minutes to create, scale, and delete.
const CREATE_LIMIT: Duration = Duration::from_secs(60 * 60);
const UPDATE_LIMIT: Duration = Duration::from_secs(60 * 60);
const DELETE_LIMIT: Duration = Duration::from_secs(60 * 60);
/// AWS's limits for an AUTH token's length.
const TOKEN_LENGTH: std::ops::RangeInclusive<usize> = 16..=128;
/// What DescribeReplicationGroups does not report and a member cluster does.
const MEMBER_PROPS: &[&str] = &[
    "engine_version",
    "subnet_group",
    "security_group_ids",
    "parameter_group",
    "maintenance_window",
];
/// Property order in canonical form (the schema's).
const ORDER: &[&str] = &[
    "replication_group_id",
    "description",
    "engine",
    "engine_version",
    "node_type",
    "num_cache_clusters",
    "num_node_groups",
    "replicas_per_node_group",
    "automatic_failover",
    "multi_az",
    "port",
    "subnet_group",
    "security_group_ids",
    "parameter_group",
    "transit_encryption",
    "at_rest_encryption",
    "auth_token",
    "user_group",
    "snapshot_retention_limit",
    "snapshot_window",
    "maintenance_window",
    "log_delivery",
    "tags",
];

/// The `elasticache.replication_group` resource type.
pub struct ReplicationGroup {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl ReplicationGroup {
    pub fn new(aws: Arc<Aws>) -> ReplicationGroup {
        ReplicationGroup {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "elasticache.replication_group",
        description: "A Redis or Valkey replication group: primary and replicas, or shards",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("replication_group_id", Shape::String)
                .prefixable(40)
                .required()
                .replaces()
                .unique()
                .doc("the group id: 1 to 40 lowercase letters, digits and hyphens, a letter first"),
            Prop::new("description", Shape::String)
                .known_as(&["replication_group_description"])
                .doc("the group description; default \"Managed by plinth\""),
            Prop::new("engine", Shape::String)
                .replaces()
                .doc("redis (default) or valkey"),
            Prop::new("engine_version", Shape::String)
                .computed()
                .doc("e.g. 7.1; default: AWS's current version; upgraded in place"),
            Prop::new("node_type", Shape::String)
                .required()
                .known_as(&["cache_node_type"])
                .doc("the node type of every node, e.g. cache.t4g.micro; changed in place"),
            Prop::new("num_cache_clusters", Shape::int_range(1, 6))
                .known_as(&["number_cache_clusters"])
                .doc(
                    "cluster mode disabled: nodes in all, the primary and its replicas; default 1",
                ),
            Prop::new("num_node_groups", Shape::int_range(1, 500))
                .replaces()
                .doc("cluster mode enabled: the number of shards"),
            Prop::new("replicas_per_node_group", Shape::int_range(0, 5))
                .doc("cluster mode enabled: replicas in each shard; default 0"),
            Prop::new("automatic_failover", Shape::Bool)
                .known_as(&["automatic_failover_enabled"])
                .doc(
                    "promote a replica when the primary fails; default: true with replicas or in \
                     cluster mode",
                ),
            Prop::new("multi_az", Shape::Bool)
                .known_as(&["multi_az_enabled"])
                .doc("keep replicas in other availability zones; needs automatic_failover"),
            Prop::new("port", Shape::int_range(1, 65535))
                .replaces()
                .doc("the port the nodes listen on; default 6379"),
            Prop::new("subnet_group", Shape::String)
                .computed()
                .replaces()
                .known_as(&["subnet_group_name", "cache_subnet_group_name"])
                .holds_referent()
                .doc("the cache subnet group; default: AWS's default (the default VPC)"),
            Prop::new("security_group_ids", Shape::list(Shape::String))
                .computed()
                .holds_referent()
                .doc("VPC security groups; default: the VPC's default group"),
            Prop::new("parameter_group", Shape::String)
                .computed()
                .known_as(&["parameter_group_name", "cache_parameter_group_name"])
                .holds_referent()
                .doc("the cache parameter group; default: the engine's default group"),
            Prop::new("transit_encryption", Shape::Bool)
                .replaces()
                .known_as(&["transit_encryption_enabled"])
                .doc("TLS between clients and nodes; default false"),
            Prop::new("at_rest_encryption", Shape::Bool)
                .replaces()
                .known_as(&["at_rest_encryption_enabled"])
                .doc("encrypt data on disk; default false"),
            Prop::new("auth_token", Shape::String).sensitive().doc(
                "the AUTH password (16 to 128 characters); needs transit_encryption; \
                 changed in place by rotation",
            ),
            Prop::new("user_group", Shape::String)
                .known_as(&["user_group_ids"])
                .holds_referent()
                .doc("an elasticache.user_group (${users.user_group_id}): only its users may sign in; needs transit_encryption, instead of auth_token"),
            Prop::new("snapshot_retention_limit", Shape::int_range(0, 35))
                .doc("days to keep automatic snapshots; default 0 (none)"),
            Prop::new("snapshot_window", Shape::String)
                .computed()
                .doc("daily snapshot time (UTC), e.g. 05:00-06:00"),
            Prop::new("maintenance_window", Shape::String)
                .computed()
                .known_as(&["preferred_maintenance_window"])
                .doc("weekly maintenance time (UTC), e.g. sun:05:00-sun:06:00"),
            logs::prop(),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the group"),
        ]),
        attributes: vec![
            Attr::new("replication_group_id", Shape::String, "the group id"),
            Attr::new("arn", Shape::String, "the group ARN"),
            Attr::new("port", Shape::integer(), "the port the nodes listen on"),
            Attr::new(
                "primary_endpoint",
                Shape::String,
                "the primary's address (cluster mode disabled)",
            ),
            Attr::new(
                "reader_endpoint",
                Shape::String,
                "the address spreading reads over the replicas (cluster mode disabled)",
            ),
            Attr::new(
                "configuration_endpoint",
                Shape::String,
                "host:port clients discover the shards from (cluster mode enabled)",
            ),
            Attr::new(
                "member_clusters",
                Shape::list(Shape::String),
                "the ARNs of its member clusters: AWS tags them with the group's tags, and \
                 they go with the group",
            ),
        ],
    }
}

/// Cost rule: the node type's hourly price for the engine, times every node the group runs.
fn group_cost(
    props: &plinth_core::value::Props,
    ctx: &plinth_core::cost::CostContext,
) -> Vec<plinth_core::cost::CostLine> {
    let what = "cache nodes";
    let engine = plinth_core::cost::known_str(props, "engine").unwrap_or(DEFAULT_ENGINE);
    let Some(node_type) = plinth_core::cost::known_str(props, "node_type") else {
        return vec![crate::cost::known_after_apply(what, "node_type")];
    };
    let Some(nodes) = group_nodes(props) else {
        return vec![crate::cost::known_after_apply(what, "the node count")];
    };
    vec![crate::cost::cache_nodes_line(ctx, engine, node_type, nodes)]
}

/// How many nodes a group runs: `num_cache_clusters` (a primary and its replicas), or in
/// cluster mode shards × (replicas + 1). `None` while a count is known only after apply.
fn group_nodes(props: &plinth_core::value::Props) -> Option<i64> {
    if props.contains_key("num_cache_clusters") {
        return crate::cost::known_count(props, "num_cache_clusters", 1);
    }
    let shards = crate::cost::known_count(props, "num_node_groups", 1)?;
    let replicas = crate::cost::known_count(props, "replicas_per_node_group", 0)?;
    Some(shards * (replicas + 1))
}

#[async_trait]
impl ResourceType for ReplicationGroup {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(
        &self,
        props: &plinth_core::value::Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        group_cost(props, ctx)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(problem) = known_str(props, "replication_group_id")
            .and_then(|id| common::identifier_problem(id, MAX_ID))
        {
            issues.push(PropIssue::at(&["replication_group_id"], problem));
        }
        let engine = known_str(props, "engine");
        issues.extend(engine.and_then(engine_problem));
        if let Some(node_type) = known_str(props, "node_type") {
            let engine = engine.filter(|e| ENGINES.contains(e));
            if let Some(problem) = common::node_type_problem(node_type, engine) {
                issues.push(PropIssue::at(&["node_type"], problem));
            }
        }
        issues.extend(common::check_port(props));
        issues.extend(common::check_windows(props));
        issues.extend(security_group_issues(props));
        issues.extend(shape_issues(props));
        issues.extend(failover_issues(props));
        issues.extend(token_issues(props));
        issues.extend(user_group_issues(props));
        issues.extend(logs::check(props));
        issues
    }

    fn lint(&self, props: &Props, linked: &[Linked]) -> Vec<PropIssue> {
        match common::port_of(props) {
            Some(port) => common::open_port_warnings(port, "security_group_ids", linked),
            None => Vec::new(),
        }
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["replication_group_id", "port"])
    }

    /// The schema's replacing properties, and removing the AUTH token: AWS removes one only
    /// in a change that moves the group to a user group at the same time, a two-step
    /// migration plinth does not make.
    fn replace_reasons(&self, before: &Props, after: &Props) -> Vec<String> {
        let mut reasons = self.schema.replaced_properties(before, after);
        if before.contains_key("auth_token") && !after.contains_key("auth_token") {
            reasons.push("auth_token".into());
        }
        reasons
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.elasticache(&ctx.region);
        let Some(group) = describe(&client, id).await? else {
            return Ok(None);
        };
        // A group being deleted will be gone in minutes; planning around it would be wrong.
        if group.status() == Some("deleting") {
            return Ok(None);
        }
        let arn = group
            .arn()
            .ok_or_else(|| ResourceError::other("DescribeReplicationGroups returned no ARN"))?;
        let extras = futures::try_join!(
            common::tags_of(&client, arn),
            describe_member(&client, &group)
        );
        let (tags, member) = match extras {
            Ok(extras) => extras,
            // Deleted between the calls.
            Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        observe(&group, member.as_ref(), tags, prior).map(Some)
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let Some(id) = known_str(props, "replication_group_id") else {
            return Ok(None);
        };
        let Some(observed) = self.read(ctx, id, props).await? else {
            return Ok(None);
        };
        Ok(tags::ours(observed, props))
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "elasticache", "replicationgroup:")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let spec = GroupSpec::from_props(props)?;
        let client = self.aws.elasticache(&ctx.region);
        let request = create_request(&client, &spec, props, common::tag_list(props))?;
        debug!(spec = ?spec, "CreateReplicationGroup");
        if let Err(err) = request.send().await.classified() {
            let what = format!("a replication group {}", &spec.replication_group_id);
            crate::errors::adopt_if_ours(err, &["ReplicationGroupAlreadyExists"], &what, || {
                self.find(ctx, props)
            })
            .await?;
        }
        let ops = GroupOps {
            client,
            id: &spec.replication_group_id,
            ctx: ctx.with_default_deadline(CREATE_LIMIT),
        };
        ops.wait_available().await?;
        self.read(ctx, &spec.replication_group_id, props)
            .await?
            .ok_or_else(|| {
                crate::errors::vanished(&format!(
                    "replication group {}",
                    &spec.replication_group_id
                ))
            })
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let (old, new) = (
            GroupSpec::from_props(before)?,
            GroupSpec::from_props(after)?,
        );
        let ops = GroupOps {
            client: self.aws.elasticache(&ctx.region),
            id,
            ctx: ctx.with_default_deadline(UPDATE_LIMIT),
        };
        let (had, wants) = (old.replicas(), new.replicas());
        // Replicas come before settings that need them (automatic failover, Multi-AZ) and go
        // after the settings that would refuse to lose them are switched off.
        if wants > had {
            ops.change_replicas(wants, true).await?;
        }
        if let Some(request) = modify_request(&ops, (&old, &new), (before, after))? {
            ops.modify("changing settings", request).await?;
        }
        if old.user_group != new.user_group {
            ops.move_to_user_group(new.user_group.as_deref()).await?;
        }
        if let Some(token) = new
            .auth_token
            .as_ref()
            .filter(|_| new.auth_token != old.auth_token)
        {
            let request = ops
                .request()
                .auth_token(token.expose())
                .auth_token_update_strategy(AuthTokenUpdateStrategyType::Rotate);
            debug!(group = id, "rotating the AUTH token");
            ops.modify("rotating the AUTH token", request).await?;
        }
        if wants < had {
            ops.change_replicas(wants, false).await?;
        }
        let group = ops.wait_available().await?;
        let arn = group
            .arn()
            .ok_or_else(|| ResourceError::other("DescribeReplicationGroups returned no ARN"))?;
        common::update_tags(&ops.client, arn, before, after).await?;
        self.read(ctx, id, after)
            .await?
            .ok_or_else(|| crate::errors::vanished(&format!("replication group {}", id)))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = self.aws.elasticache(&ctx.region);
        let deadline_ctx = ctx.with_default_deadline(DELETE_LIMIT);
        let what = format!("deleting replication group {id}");
        let client = &client;
        // Busy groups (modifying, snapshotting) cannot be deleted yet: retried until they can.
        let started = wait::retry_while_busy(&deadline_ctx, &what, DELETE_LIMIT, || async move {
            let sent = client
                .delete_replication_group()
                .replication_group_id(id)
                .retain_primary_cluster(false)
                .send()
                .await
                .classified();
            match sent {
                Ok(_) => {
                    debug!(group = id, "DeleteReplicationGroup accepted");
                    Ok(true)
                }
                Err(err) if err.kind == ErrorKind::NotFound => Ok(false),
                // Already being deleted (an earlier destroy): nothing more to ask for.
                Err(err) if err.kind == ErrorKind::InUse => match describe(client, id).await? {
                    None => Ok(false),
                    Some(group) if group.status() == Some("deleting") => Ok(true),
                    Some(_) => Err(err),
                },
                Err(err) => Err(err),
            }
        })
        .await?;
        if !started {
            return Ok(());
        }
        let what = format!("replication group {id} to be deleted");
        let reason = "AWS is deleting the replication group";
        wait::until_deleted(&deadline_ctx, &what, reason, DELETE_LIMIT, || async move {
            let group = describe(client, id).await?;
            Ok(group.map(|g| g.status().unwrap_or("deleting").to_string()))
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical form

/// Fills defaults and sorts sets, for desired properties and read results alike.
fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    for (key, default) in [
        ("description", json!(DEFAULT_DESCRIPTION)),
        ("engine", json!(DEFAULT_ENGINE)),
        ("port", json!(REDIS_PORT)),
        ("multi_az", json!(false)),
        ("transit_encryption", json!(false)),
        ("at_rest_encryption", json!(false)),
        ("snapshot_retention_limit", json!(0)),
    ] {
        props.entry(key).or_insert(default);
    }
    if props.contains_key("num_node_groups") {
        props
            .entry("replicas_per_node_group")
            .or_insert_with(|| json!(0));
    } else if !props.contains_key("replicas_per_node_group") {
        props
            .entry("num_cache_clusters")
            .or_insert_with(|| json!(1));
    }
    if !props.contains_key("automatic_failover") {
        let default = default_failover(props);
        props.insert("automatic_failover".into(), default);
    }
    if let Some(Value::Array(ids)) = props.get_mut("security_group_ids") {
        if !ids.iter().any(contains_unknown) {
            ids.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            ids.dedup();
        }
    }
    common::canonical_window(props, "maintenance_window");
    logs::canonicalize(props);
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    reorder(props, ORDER);
}

/// Automatic failover by default exactly when there is a replica to fail over to, and always
/// in cluster mode (which requires it); unknown while the node count is.
fn default_failover(props: &Props) -> Value {
    if props.contains_key("num_node_groups") {
        return json!(true);
    }
    match props.get("num_cache_clusters") {
        Some(v) if contains_unknown(v) => unknown(),
        Some(v) => json!(v.as_i64().unwrap_or(1) > 1),
        None => json!(false),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

fn given(props: &Props, key: &str) -> bool {
    props.get(key).is_some_and(|v| !v.is_null())
}

fn known_bool(props: &Props, key: &str) -> Option<bool> {
    props
        .get(key)
        .filter(|v| !contains_unknown(v))
        .and_then(Value::as_bool)
}

fn engine_problem(engine: &str) -> Option<PropIssue> {
    if engine == "memcached" {
        return Some(PropIssue::at(
            &["engine"],
            "Memcached has no replication groups; use an elasticache.cluster with \
             engine: memcached (and num_nodes for more nodes)",
        ));
    }
    (!ENGINES.contains(&engine)).then(|| {
        PropIssue::at(
            &["engine"],
            format!(
                "unknown engine {engine:?}; a replication group runs {}",
                ENGINES.join(" or ")
            ),
        )
    })
}

/// Group ids (`sg-…`), at least one: AWS cannot take every group away from a cache.
fn security_group_issues(props: &Props) -> Vec<PropIssue> {
    let Some(Value::Array(ids)) = props.get("security_group_ids") else {
        return Vec::new();
    };
    if ids.is_empty() {
        return vec![PropIssue::at(
            &["security_group_ids"],
            "a cache needs at least one security group; leave security_group_ids out for the \
             VPC's default group",
        )];
    }
    ids.iter()
        .enumerate()
        .filter(|(_, id)| !contains_unknown(id))
        .filter(|(_, id)| !id.as_str().is_some_and(|s| s.starts_with("sg-")))
        .map(|(i, id)| PropIssue {
            path: vec![PathSeg::Key("security_group_ids".into()), PathSeg::Index(i)],
            message: format!(
                "expected a security group id (sg-…), e.g. ${{cache_sg.id}}, not {id}"
            ),
        })
        .collect()
}

/// Cluster mode disabled (`num_cache_clusters`) or enabled (`num_node_groups`), not both.
fn shape_issues(props: &Props) -> Vec<PropIssue> {
    let cluster_fields = given(props, "num_node_groups") || given(props, "replicas_per_node_group");
    if given(props, "num_cache_clusters") && cluster_fields {
        return vec![PropIssue::at(
            &["num_cache_clusters"],
            "num_cache_clusters is for cluster mode disabled, num_node_groups and \
             replicas_per_node_group for cluster mode enabled; use one or the other",
        )];
    }
    if given(props, "replicas_per_node_group") && !given(props, "num_node_groups") {
        return vec![PropIssue::at(
            &["replicas_per_node_group"],
            "replicas_per_node_group is for cluster mode: set num_node_groups too, or use \
             num_cache_clusters (the primary and its replicas) without cluster mode",
        )];
    }
    Vec::new()
}

/// Automatic failover needs a replica (or cluster mode, which needs failover); Multi-AZ needs
/// automatic failover.
fn failover_issues(props: &Props) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    let cluster = given(props, "num_node_groups");
    let nodes = if given(props, "num_cache_clusters") {
        known_i64(props, "num_cache_clusters")
    } else {
        Some(1)
    };
    let explicit = known_bool(props, "automatic_failover");
    if !cluster && explicit == Some(true) && nodes == Some(1) {
        issues.push(PropIssue::at(
            &["automatic_failover"],
            "automatic failover needs a replica to fail over to: set num_cache_clusters to 2 \
             or more",
        ));
    }
    if cluster && explicit == Some(false) {
        issues.push(PropIssue::at(
            &["automatic_failover"],
            "cluster mode (num_node_groups) requires automatic failover",
        ));
    }
    let failover = match explicit {
        Some(on) => Some(on),
        None if given(props, "automatic_failover") => None,
        None => nodes.map(|n| cluster || n > 1),
    };
    if known_bool(props, "multi_az") == Some(true) && failover == Some(false) {
        issues.push(PropIssue::at(
            &["multi_az"],
            "multi_az needs automatic_failover (and so a replica: num_cache_clusters of 2 or more)",
        ));
    }
    issues
}

/// An AUTH token needs TLS and AWS's format; the messages never include the token.
fn token_issues(props: &Props) -> Vec<PropIssue> {
    if !given(props, "auth_token") {
        return Vec::new();
    }
    let mut issues = Vec::new();
    let transit_unknown = props
        .get("transit_encryption")
        .is_some_and(contains_unknown);
    if !transit_unknown && known_bool(props, "transit_encryption") != Some(true) {
        issues.push(PropIssue::at(
            &["auth_token"],
            "auth_token needs transit_encryption: true (AWS accepts an AUTH token only over TLS)",
        ));
    }
    if let Some(problem) = known_str(props, "auth_token").and_then(token_problem) {
        issues.push(PropIssue::at(&["auth_token"], problem));
    }
    if given(props, "user_group") {
        issues.push(PropIssue::at(
            &["user_group"],
            "a group signs clients in with an auth_token or a user_group, not both",
        ));
    }
    issues
}

/// Users need TLS, as AUTH tokens do.
fn user_group_issues(props: &Props) -> Vec<PropIssue> {
    let transit_unknown = props
        .get("transit_encryption")
        .is_some_and(contains_unknown);
    if given(props, "user_group")
        && !transit_unknown
        && known_bool(props, "transit_encryption") != Some(true)
    {
        return vec![PropIssue::at(
            &["user_group"],
            "user_group needs transit_encryption: true (AWS signs users in only over TLS)",
        )];
    }
    Vec::new()
}

fn token_problem(token: &str) -> Option<String> {
    let length = token.chars().count();
    if !TOKEN_LENGTH.contains(&length) {
        return Some(format!(
            "auth_token must have {} to {} characters, not {length}",
            TOKEN_LENGTH.start(),
            TOKEN_LENGTH.end()
        ));
    }
    token
        .chars()
        .any(|c| !c.is_ascii_graphic() || matches!(c, '@' | '"' | '/'))
        .then(|| {
            "auth_token may only have printable ASCII characters, without spaces, @, \" or /"
                .to_string()
        })
}

// ---------------------------------------------------------------------------------------------
// Typed view of canonical properties, for create and update

/// The AUTH token: never printed, not even in debug logs.
#[derive(Clone, PartialEq)]
struct AuthToken(String);

impl AuthToken {
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(SENSITIVE_DISPLAY)
    }
}

fn default_description() -> String {
    DEFAULT_DESCRIPTION.into()
}
fn default_engine() -> String {
    DEFAULT_ENGINE.into()
}

#[derive(Clone, Debug, Deserialize)]
struct GroupSpec {
    replication_group_id: String,
    #[serde(default = "default_description")]
    description: String,
    #[serde(default = "default_engine")]
    engine: String,
    engine_version: Option<String>,
    node_type: String,
    num_cache_clusters: Option<i64>,
    num_node_groups: Option<i64>,
    replicas_per_node_group: Option<i64>,
    automatic_failover: Option<bool>,
    #[serde(default)]
    multi_az: bool,
    port: Option<i64>,
    subnet_group: Option<String>,
    #[serde(default)]
    security_group_ids: Vec<String>,
    parameter_group: Option<String>,
    #[serde(default)]
    transit_encryption: bool,
    #[serde(default)]
    at_rest_encryption: bool,
    #[serde(default)]
    snapshot_retention_limit: i64,
    snapshot_window: Option<String>,
    maintenance_window: Option<String>,
    user_group: Option<String>,
    /// Read apart from the rest, so no deserialisation error can ever quote it.
    #[serde(skip)]
    auth_token: Option<AuthToken>,
}

impl GroupSpec {
    fn from_props(props: &Props) -> ResourceResult<GroupSpec> {
        let mut rest = props.clone();
        let token = rest.remove("auth_token");
        rest.remove("tags");
        let mut spec: GroupSpec = serde_json::from_value(Value::Object(rest)).map_err(|e| {
            ResourceError::invalid(format!("elasticache.replication_group properties: {e}"))
        })?;
        spec.auth_token = match token {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(AuthToken(text)),
            Some(_) => return Err(ResourceError::invalid("auth_token must be a string")),
        };
        Ok(spec)
    }

    fn cluster_mode(&self) -> bool {
        self.num_node_groups.is_some()
    }

    /// Replicas of the primary, or of each shard's primary in cluster mode.
    fn replicas(&self) -> i64 {
        if self.cluster_mode() {
            self.replicas_per_node_group.unwrap_or(0)
        } else {
            self.num_cache_clusters.unwrap_or(1) - 1
        }
    }

    fn automatic_failover(&self) -> bool {
        self.automatic_failover
            .unwrap_or_else(|| self.cluster_mode() || self.replicas() > 0)
    }
}

fn int32(value: i64, what: &str) -> ResourceResult<i32> {
    i32::try_from(value)
        .map_err(|_| ResourceError::invalid(format!("{what} {value} is out of range")))
}

fn create_request(
    client: &Client,
    spec: &GroupSpec,
    props: &Props,
    tags: Vec<Tag>,
) -> ResourceResult<CreateReplicationGroupFluentBuilder> {
    let mut request = client
        .create_replication_group()
        .replication_group_id(&spec.replication_group_id)
        .replication_group_description(&spec.description)
        .engine(&spec.engine)
        .set_engine_version(spec.engine_version.clone())
        .cache_node_type(&spec.node_type)
        .automatic_failover_enabled(spec.automatic_failover())
        .multi_az_enabled(spec.multi_az)
        .port(int32(spec.port.unwrap_or(REDIS_PORT), "port")?)
        .set_cache_subnet_group_name(spec.subnet_group.clone())
        .set_security_group_ids(Some(spec.security_group_ids.clone()).filter(|ids| !ids.is_empty()))
        .set_cache_parameter_group_name(spec.parameter_group.clone())
        .transit_encryption_enabled(spec.transit_encryption)
        .at_rest_encryption_enabled(spec.at_rest_encryption)
        .set_auth_token(spec.auth_token.as_ref().map(|t| t.expose().to_string()))
        .set_user_group_ids(spec.user_group.clone().map(|g| vec![g]))
        .snapshot_retention_limit(int32(
            spec.snapshot_retention_limit,
            "snapshot_retention_limit",
        )?)
        .set_snapshot_window(spec.snapshot_window.clone())
        .set_preferred_maintenance_window(spec.maintenance_window.clone())
        .set_log_delivery_configurations(logs::create_requests(props))
        .set_tags(Some(tags).filter(|t| !t.is_empty()));
    request = match spec.num_node_groups {
        Some(shards) => request
            .cluster_mode(ClusterMode::Enabled)
            .num_node_groups(int32(shards, "num_node_groups")?)
            .replicas_per_node_group(int32(spec.replicas(), "replicas_per_node_group")?),
        None => request.num_cache_clusters(int32(
            spec.num_cache_clusters.unwrap_or(1),
            "num_cache_clusters",
        )?),
    };
    Ok(request)
}

/// One ModifyReplicationGroup with the settings that differ (the AUTH token apart); `None`
/// when none do.
fn modify_request(
    ops: &GroupOps<'_>,
    (old, new): (&GroupSpec, &GroupSpec),
    (before, after): (&Props, &Props),
) -> ResourceResult<Option<ModifyReplicationGroupFluentBuilder>> {
    let mut request = ops.request();
    let mut changed: Vec<&str> = Vec::new();
    if old.description != new.description {
        request = request.replication_group_description(&new.description);
        changed.push("description");
    }
    if old.node_type != new.node_type {
        request = request.cache_node_type(&new.node_type);
        changed.push("node_type");
    }
    // A version written shorter than AWS reports it (`7.1` for `7.1.0`) is no upgrade.
    let upgrade = |written: &String| {
        !old.engine_version
            .as_deref()
            .is_some_and(|running| version_matches(written, running))
    };
    if let Some(version) = new.engine_version.as_ref().filter(|v| upgrade(v)) {
        request = request.engine_version(version);
        changed.push("engine_version");
    }
    if old.automatic_failover() != new.automatic_failover() {
        request = request.automatic_failover_enabled(new.automatic_failover());
        changed.push("automatic_failover");
    }
    if old.multi_az != new.multi_az {
        request = request.multi_az_enabled(new.multi_az);
        changed.push("multi_az");
    }
    if old.security_group_ids != new.security_group_ids && !new.security_group_ids.is_empty() {
        request = request.set_security_group_ids(Some(new.security_group_ids.clone()));
        changed.push("security_group_ids");
    }
    if let Some(group) = new
        .parameter_group
        .as_ref()
        .filter(|_| old.parameter_group != new.parameter_group)
    {
        request = request.cache_parameter_group_name(group);
        changed.push("parameter_group");
    }
    if old.snapshot_retention_limit != new.snapshot_retention_limit {
        let days = int32(new.snapshot_retention_limit, "snapshot_retention_limit")?;
        request = request.snapshot_retention_limit(days);
        changed.push("snapshot_retention_limit");
    }
    if let Some(window) = new
        .snapshot_window
        .as_ref()
        .filter(|_| old.snapshot_window != new.snapshot_window)
    {
        request = request.snapshot_window(window);
        changed.push("snapshot_window");
    }
    if let Some(window) = new
        .maintenance_window
        .as_ref()
        .filter(|_| old.maintenance_window != new.maintenance_window)
    {
        request = request.preferred_maintenance_window(window);
        changed.push("maintenance_window");
    }
    if let Some(requests) = logs::change_requests(before, after) {
        request = request.set_log_delivery_configurations(Some(requests));
        changed.push("log_delivery");
    }
    if changed.is_empty() {
        return Ok(None);
    }
    debug!(group = ops.id, ?changed, "ModifyReplicationGroup");
    Ok(Some(request))
}

// ---------------------------------------------------------------------------------------------
// Changing

/// One group's calls, sharing a client and an operation deadline.
struct GroupOps<'a> {
    client: Client,
    id: &'a str,
    ctx: OpContext,
}

impl GroupOps<'_> {
    /// A ModifyReplicationGroup for this group, applied now rather than in the next
    /// maintenance window.
    fn request(&self) -> ModifyReplicationGroupFluentBuilder {
        self.client
            .modify_replication_group()
            .replication_group_id(self.id)
            .apply_immediately(true)
    }

    /// Sends `request`, retried while the group is busy, then waits until it is available.
    async fn modify(
        &self,
        what: &str,
        request: ModifyReplicationGroupFluentBuilder,
    ) -> ResourceResult<()> {
        wait::retry_while_busy(&self.ctx, what, UPDATE_LIMIT, || {
            let request = request.clone();
            async move { request.send().await.classified().map(|_| ()) }
        })
        .await?;
        self.wait_available().await.map(|_| ())
    }

    /// Attaches `wanted` (or no user group) and detaches any other, computed against what
    /// the group has at each attempt: a change whose answer was lost is not sent again as a
    /// removal of a group already gone, which AWS would refuse.
    async fn move_to_user_group(&self, wanted: Option<&str>) -> ResourceResult<()> {
        let what = "changing the user group";
        wait::retry_while_busy(&self.ctx, what, UPDATE_LIMIT, || async move {
            let group = describe(&self.client, self.id).await?.ok_or_else(|| {
                crate::errors::vanished(&format!("replication group {}", self.id))
            })?;
            let has = group.user_group_ids();
            let add: Vec<String> = wanted
                .filter(|w| !has.iter().any(|h| h == w))
                .map(|w| vec![w.to_string()])
                .unwrap_or_default();
            let remove: Vec<String> = has
                .iter()
                .filter(|h| Some(h.as_str()) != wanted)
                .cloned()
                .collect();
            if add.is_empty() && remove.is_empty() {
                return Ok(());
            }
            debug!(
                group = self.id,
                ?add,
                ?remove,
                "ModifyReplicationGroup (user groups)"
            );
            self.request()
                .set_user_group_ids_to_add(Some(add).filter(|a| !a.is_empty()))
                .set_user_group_ids_to_remove(Some(remove).filter(|r| !r.is_empty()))
                .send()
                .await
                .classified()
                .map(|_| ())
        })
        .await?;
        self.wait_available().await.map(|_| ())
    }

    /// Increase- or DecreaseReplicaCount to `replicas` (per shard in cluster mode), then a wait.
    async fn change_replicas(&self, replicas: i64, increase: bool) -> ResourceResult<()> {
        let count = int32(replicas, "replica count")?;
        let what = format!("changing the replica count to {count}");
        debug!(
            group = self.id,
            count, increase, "changing the replica count"
        );
        wait::retry_while_busy(&self.ctx, &what, UPDATE_LIMIT, || {
            let client = self.client.clone();
            let id = self.id.to_string();
            async move {
                if increase {
                    client
                        .increase_replica_count()
                        .replication_group_id(id)
                        .new_replica_count(count)
                        .apply_immediately(true)
                        .send()
                        .await
                        .classified()
                        .map(|_| ())
                } else {
                    client
                        .decrease_replica_count()
                        .replication_group_id(id)
                        .new_replica_count(count)
                        .apply_immediately(true)
                        .send()
                        .await
                        .classified()
                        .map(|_| ())
                }
            }
        })
        .await?;
        self.wait_available().await.map(|_| ())
    }

    async fn wait_available(&self) -> ResourceResult<Group> {
        let what = format!("replication group {} to be available", self.id);
        let (client, id) = (&self.client, self.id);
        wait::until(&self.ctx, &what, UPDATE_LIMIT, || async move {
            let group = describe(client, id)
                .await?
                .ok_or_else(|| crate::errors::vanished(&format!("replication group {}", id)))?;
            Ok(match group.status() {
                Some("available") => Poll::Ready(group),
                status => Poll::Pending(status.unwrap_or("unknown").to_string()),
            })
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

async fn describe(client: &Client, id: &str) -> ResourceResult<Option<Group>> {
    match client
        .describe_replication_groups()
        .replication_group_id(id)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(out.replication_groups().first().cloned()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// The member clusters, the primary first.
fn member_ids(group: &Group) -> Vec<String> {
    let mut ids: Vec<String> = group
        .node_groups()
        .iter()
        .flat_map(|g| g.node_group_members())
        .filter(|m| m.current_role() == Some("primary"))
        .filter_map(|m| m.cache_cluster_id().map(str::to_string))
        .collect();
    for id in group.member_clusters() {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

/// A member cluster, for what only clusters report; `None` when none can be described (being
/// replaced, or not reported at all).
async fn describe_member(client: &Client, group: &Group) -> ResourceResult<Option<CacheCluster>> {
    for id in member_ids(group) {
        match client
            .describe_cache_clusters()
            .cache_cluster_id(&id)
            .send()
            .await
            .classified()
        {
            Ok(out) => {
                if let Some(cluster) = out.cache_clusters().first() {
                    return Ok(Some(cluster.clone()));
                }
            }
            Err(err) if err.kind == ErrorKind::NotFound => {
                debug!(cluster = id, "member cluster not found; trying the next");
            }
            Err(err) => return Err(err),
        }
    }
    Ok(None)
}

/// AWS reports the full version (`7.1.0`) of what a stack may write shorter (`7.1`, `6.x`):
/// the version last applied is kept while it still describes what runs.
fn written_version(prior: &Props, actual: &str) -> String {
    match str_of(prior, "engine_version") {
        Some(written) if version_matches(written, actual) => written.to_string(),
        _ => actual.to_string(),
    }
}

fn version_matches(written: &str, actual: &str) -> bool {
    let prefix = written.strip_suffix(".x").unwrap_or(written);
    written == actual
        || actual
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The port the group answers on, from whichever endpoint AWS reports.
fn reported_port(group: &Group) -> Option<i32> {
    let first = group.node_groups().first();
    group
        .configuration_endpoint()
        .and_then(|e| e.port())
        .or_else(|| {
            first
                .and_then(|g| g.primary_endpoint())
                .and_then(|e| e.port())
        })
        .or_else(|| {
            first
                .and_then(|g| g.node_group_members().first())
                .and_then(|m| m.read_endpoint())
                .and_then(|e| e.port())
        })
}

/// What only a member cluster reports; `None` for what it does not.
fn member_props(member: &CacheCluster, prior: &Props) -> Props {
    let mut props = Props::new();
    if let Some(version) = member.engine_version() {
        props.insert(
            "engine_version".into(),
            json!(written_version(prior, version)),
        );
    }
    if let Some(subnets) = member.cache_subnet_group_name() {
        props.insert("subnet_group".into(), json!(subnets));
    }
    let mut groups: Vec<&str> = member
        .security_groups()
        .iter()
        .filter(|g| g.status() != Some("removing"))
        .filter_map(|g| g.security_group_id())
        .collect();
    groups.sort();
    groups.dedup();
    props.insert("security_group_ids".into(), json!(groups));
    if let Some(name) = member
        .cache_parameter_group()
        .and_then(|p| p.cache_parameter_group_name())
    {
        props.insert("parameter_group".into(), json!(name));
    }
    if let Some(window) = member.preferred_maintenance_window() {
        props.insert("maintenance_window".into(), json!(window));
    }
    props
}

fn observe(
    group: &Group,
    member: Option<&CacheCluster>,
    tags: std::collections::BTreeMap<String, String>,
    prior: &Props,
) -> ResourceResult<Observed> {
    let id = group
        .replication_group_id()
        .ok_or_else(|| ResourceError::other("AWS returned a replication group without an id"))?;
    let arn = group
        .arn()
        .ok_or_else(|| ResourceError::other("DescribeReplicationGroups returned no ARN"))?;
    let cluster_mode = group
        .cluster_enabled()
        .unwrap_or_else(|| group.configuration_endpoint().is_some());
    let mut props = Props::new();
    props.insert("replication_group_id".into(), json!(id));
    props.insert(
        "description".into(),
        json!(group.description().unwrap_or_default()),
    );
    let engine = group
        .engine()
        .or_else(|| member.and_then(|m| m.engine()))
        .or_else(|| str_of(prior, "engine"))
        .unwrap_or(DEFAULT_ENGINE);
    props.insert("engine".into(), json!(engine));
    match member {
        Some(member) => props.extend(member_props(member, prior)),
        // Nothing to read them from: what was last applied stands.
        None => props.extend(
            MEMBER_PROPS
                .iter()
                .filter_map(|key| Some((key.to_string(), prior.get(*key)?.clone()))),
        ),
    }
    if let Some(node_type) = group
        .cache_node_type()
        .or_else(|| member.and_then(|m| m.cache_node_type()))
    {
        props.insert("node_type".into(), json!(node_type));
    }
    insert_sizing(&mut props, group, cluster_mode, prior);
    let failover = matches!(
        group.automatic_failover(),
        Some(AutomaticFailoverStatus::Enabled | AutomaticFailoverStatus::Enabling)
    );
    props.insert("automatic_failover".into(), json!(failover));
    props.insert(
        "multi_az".into(),
        json!(group.multi_az() == Some(&MultiAzStatus::Enabled)),
    );
    // While AWS has no endpoint yet (creating), the port last applied stands.
    match reported_port(group) {
        Some(port) => {
            props.insert("port".into(), json!(port));
        }
        None => {
            if let Some(port) = prior.get("port") {
                props.insert("port".into(), port.clone());
            }
        }
    }
    props.insert(
        "transit_encryption".into(),
        json!(group.transit_encryption_enabled().unwrap_or(false)),
    );
    props.insert(
        "at_rest_encryption".into(),
        json!(group.at_rest_encryption_enabled().unwrap_or(false)),
    );
    if let Some(user_group) = group.user_group_ids().first() {
        props.insert("user_group".into(), json!(user_group));
    }
    // AWS never returns the token; while it says one is set, it is the one last applied.
    if group.auth_token_enabled() == Some(true) {
        if let Some(token) = prior.get("auth_token").filter(|t| t.is_string()) {
            props.insert("auth_token".into(), token.clone());
        }
    }
    props.insert(
        "snapshot_retention_limit".into(),
        json!(group.snapshot_retention_limit().unwrap_or(0)),
    );
    if let Some(window) = group.snapshot_window().filter(|w| !w.is_empty()) {
        props.insert("snapshot_window".into(), json!(window));
    }
    props.insert(
        "log_delivery".into(),
        logs::observed(group.log_delivery_configurations()),
    );
    props.insert("tags".into(), tags::tags_value(tags));
    canonicalize(&mut props);
    let attrs = attributes(group, id, arn, cluster_mode, props.get("port"));
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs,
    })
}

/// `num_cache_clusters`, or `num_node_groups` and `replicas_per_node_group` in cluster mode.
fn insert_sizing(props: &mut Props, group: &Group, cluster_mode: bool, prior: &Props) {
    let shards = group.node_groups();
    if cluster_mode && shards.is_empty() {
        // No shard reported yet (creating): the sizing last applied stands.
        for key in ["num_node_groups", "replicas_per_node_group"] {
            if let Some(applied) = prior.get(key) {
                props.insert(key.into(), applied.clone());
            }
        }
        return;
    }
    if cluster_mode {
        props.insert("num_node_groups".into(), json!(shards.len()));
        let widest = shards
            .iter()
            .map(|g| g.node_group_members().len())
            .max()
            .unwrap_or(0);
        let replicas = if widest > 0 {
            widest - 1
        } else {
            (group.member_clusters().len() / shards.len().max(1)).saturating_sub(1)
        };
        props.insert("replicas_per_node_group".into(), json!(replicas));
        return;
    }
    let mut nodes = group.member_clusters().len();
    if nodes == 0 {
        nodes = shards.iter().map(|g| g.node_group_members().len()).sum();
    }
    match (nodes, prior.get("num_cache_clusters")) {
        // No member reported yet (creating): the count last applied stands.
        (0, Some(count)) => {
            props.insert("num_cache_clusters".into(), count.clone());
        }
        (nodes, _) => {
            props.insert("num_cache_clusters".into(), json!(nodes.max(1)));
        }
    }
}

fn attributes(
    group: &Group,
    id: &str,
    arn: &str,
    cluster_mode: bool,
    port: Option<&Value>,
) -> Props {
    let mut attrs = Props::new();
    attrs.insert("replication_group_id".into(), json!(id));
    attrs.insert("arn".into(), json!(arn));
    // arn:aws:elasticache:REGION:ACCOUNT:replicationgroup:ID → …:cluster:MEMBER
    if let Some((prefix, _)) = arn.rsplit_once(":replicationgroup:") {
        let members: Vec<String> = group
            .member_clusters()
            .iter()
            .map(|m| format!("{prefix}:cluster:{m}"))
            .collect();
        attrs.insert("member_clusters".into(), json!(members));
    }
    if let Some(port) = port {
        attrs.insert("port".into(), port.clone());
    }
    if cluster_mode {
        if let Some(endpoint) = group.configuration_endpoint() {
            if let (Some(address), Some(port)) = (endpoint.address(), endpoint.port()) {
                attrs.insert(
                    "configuration_endpoint".into(),
                    json!(format!("{address}:{port}")),
                );
            }
        }
    } else if let Some(shard) = group.node_groups().first() {
        if let Some(address) = shard.primary_endpoint().and_then(|e| e.address()) {
            attrs.insert("primary_endpoint".into(), json!(address));
        }
        if let Some(address) = shard.reader_endpoint().and_then(|e| e.address()) {
            attrs.insert("reader_endpoint".into(), json!(address));
        }
    }
    attrs
}
