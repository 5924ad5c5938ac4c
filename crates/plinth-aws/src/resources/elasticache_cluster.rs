//! `elasticache.cluster`: a single-node Redis or Valkey cache, or a Memcached cluster of 1 to
//! 40 nodes. Replicas and cluster mode are `elasticache.replication_group`'s.
//!
//! Canonical form (what `normalize` makes of desired properties and `read` reports alike):
//! `num_nodes` is filled (1), `port` is filled from the engine (6379 for Redis and Valkey,
//! 11211 for Memcached), `snapshot_retention_limit` is filled (0) for Redis and Valkey and
//! absent for Memcached, `security_group_ids` is sorted and absent rather than empty,
//! `maintenance_window` is lowercase, and the properties AWS chooses when they are left out
//! (`engine_version`, `subnet_group`, `security_group_ids`, `parameter_group`,
//! `snapshot_window`, `maintenance_window`, `az_mode`) are `computed`: `read` reports them
//! when AWS does, and the planner keeps AWS's value while the stack leaves them out.
//!
//! `engine_version` may be written short (`7.1`, `6.x`); AWS reports the full version
//! (`7.1.0`). `read` keeps the written spelling while it still matches what runs, so that the
//! two do not show as a change, and a lower version than the one running forces a new cluster
//! (AWS upgrades in place but never downgrades).
//!
//! Waiting: creation and every modification wait until the cluster is `available` with no
//! pending modifications and every security group `active`, reporting the status through the
//! progress sink. AWS answers `InvalidCacheClusterState` while a cluster is modifying or
//! snapshotting; those calls are retried until the deadline. A cluster in `deleting` reads as
//! gone: it is on its way out and nothing can be changed on it any more.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_elasticache::operation::modify_cache_cluster::builders::ModifyCacheClusterFluentBuilder;
use aws_sdk_elasticache::types::{AzMode, CacheCluster as Described};
use aws_sdk_elasticache::Client;
use plinth_core::resource::{
    ErrorKind, Linked, NormalizeContext, Observed, OpContext, PropIssue, ResourceError,
    ResourceResult, ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, str_of, Props};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::debug;

use crate::resources::elasticache_common::{
    self as common, check_engine_and_node_type, check_windows, default_port, identifier_problem,
    is_redis_like, known_i64, known_str, SendExt, ENGINES,
};
use crate::resources::tags;
use crate::wait::{self, Poll};
use crate::Aws;

/// Creating a cluster takes AWS 5 to 15 minutes.
const CREATE_LIMIT: Duration = Duration::from_secs(30 * 60);
/// Changing the node type copies the data to new nodes: tens of minutes for large caches.
const UPDATE_LIMIT: Duration = Duration::from_secs(60 * 60);
/// Deleting takes AWS a few minutes; its network interfaces go last.
const DELETE_LIMIT: Duration = Duration::from_secs(30 * 60);
/// AWS's limit on cluster ids.
const MAX_ID: usize = 40;
const MAX_NODES: i64 = 40;
pub const AZ_MODES: &[&str] = &["single_az", "cross_az"];

/// Statuses a cluster never leaves by itself: waiting for `available` is pointless.
const FAILED: &[&str] = &[
    "create-failed",
    "incompatible-network",
    "restore-failed",
    "deleted",
    "deleting",
];

/// Security group membership statuses that settle by themselves (`active` when done). Only
/// these are waited for: a membership AWS leaves `inactive` (its group deleted elsewhere)
/// would otherwise hold every wait until its deadline.
const TRANSITIONAL_GROUPS: &[&str] =
    &["adding", "removing", "modifying", "authorizing", "revoking"];

/// Property order in canonical form (the schema's), so canonical props serialise identically.
const ORDER: &[&str] = &[
    "cluster_id",
    "engine",
    "engine_version",
    "node_type",
    "num_nodes",
    "port",
    "subnet_group",
    "security_group_ids",
    "parameter_group",
    "snapshot_retention_limit",
    "snapshot_window",
    "maintenance_window",
    "az_mode",
    "transit_encryption",
    "tags",
];

/// The `elasticache.cluster` resource type.
pub struct CacheCluster {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl CacheCluster {
    pub fn new(aws: Arc<Aws>) -> CacheCluster {
        CacheCluster {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "elasticache.cluster",
        description: "An ElastiCache cluster: one Redis or Valkey node, or 1 to 40 Memcached nodes",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("cluster_id", Shape::String)
                .prefixable(40)
                .required()
                .replaces()
                .known_as(&["cache_cluster_id"])
                .unique()
                .doc("the cluster id: lowercase letters, digits and hyphens, at most 40"),
            Prop::new("engine", Shape::Enum(ENGINES))
                .required()
                .replaces()
                .doc("redis, valkey or memcached"),
            Prop::new("engine_version", Shape::String)
                .computed()
                .doc("e.g. 7.1; default: AWS's current default; upgrades apply in place, a lower version replaces"),
            Prop::new("node_type", Shape::String)
                .required()
                .known_as(&["cache_node_type"])
                .doc("e.g. cache.t4g.micro; changes in place"),
            Prop::new("num_nodes", Shape::int_range(1, MAX_NODES))
                .known_as(&["num_cache_nodes"])
                .doc("number of nodes, default 1; more than 1 only for memcached (added or removed in place)"),
            Prop::new("port", Shape::int_range(1, 65535))
                .replaces()
                .doc("default 6379 (redis, valkey) or 11211 (memcached)"),
            Prop::new("subnet_group", Shape::String)
                .computed()
                .replaces()
                .known_as(&["subnet_group_name", "cache_subnet_group_name"])
                .holds_referent()
                .doc("a subnet group name, e.g. ${cache_subnets.name}; default: AWS's `default` group"),
            Prop::new("security_group_ids", Shape::list(Shape::String))
                .computed()
                .holds_referent()
                .doc("VPC security group ids; default: the VPC's default group; change in place"),
            Prop::new("parameter_group", Shape::String)
                .computed()
                .known_as(&["parameter_group_name", "cache_parameter_group_name"])
                .holds_referent()
                .doc("a parameter group name; default: AWS's default.<family>; changes in place"),
            Prop::new("snapshot_retention_limit", Shape::int_range(0, 35))
                .doc("days of automatic snapshots, default 0 (none); redis and valkey only"),
            Prop::new("snapshot_window", Shape::String)
                .computed()
                .doc("daily snapshot time, hh24:mi-hh24:mi UTC; redis and valkey only"),
            Prop::new("maintenance_window", Shape::String)
                .computed()
                .known_as(&["preferred_maintenance_window"])
                .doc("weekly maintenance time, ddd:hh24:mi-ddd:hh24:mi UTC, e.g. sun:05:00-sun:06:00"),
            Prop::new("az_mode", Shape::Enum(AZ_MODES))
                .computed()
                .replaces()
                .doc("memcached only: single_az (default) or cross_az (needs 2 nodes or more)"),
            Prop::new("transit_encryption", Shape::Bool)
                .replaces()
                .known_as(&["transit_encryption_enabled"])
                .doc("memcached 1.6.12 or later, in a VPC: TLS between clients and nodes; default false"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the cluster"),
        ]),
        attributes: vec![
            Attr::new(
                "address",
                Shape::String,
                "the host to connect to: the node's (redis, valkey) or the configuration endpoint's (memcached)",
            ),
            Attr::new("port", Shape::integer(), "the port the cache listens on"),
            Attr::new(
                "configuration_endpoint",
                Shape::String,
                "memcached: host:port of the configuration endpoint; null for redis and valkey",
            ),
            Attr::new("arn", Shape::String, "the cluster ARN"),
            Attr::new("cluster_id", Shape::String, "the cluster id"),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical form

/// Fills defaults, sorts sets and orders keys, for desired properties and read results alike.
pub fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props.entry("num_nodes").or_insert(json!(1));
    if let Some(engine) = known_str(props, "engine").map(str::to_string) {
        if let Some(port) = default_port(&engine) {
            props.entry("port").or_insert(json!(port));
        }
        if is_redis_like(&engine) {
            props.entry("snapshot_retention_limit").or_insert(json!(0));
        } else {
            props.entry("transit_encryption").or_insert(json!(false));
        }
    }
    if let Some(Value::Array(ids)) = props.get_mut("security_group_ids") {
        if !ids.iter().any(contains_unknown) {
            ids.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            ids.dedup();
        }
        if ids.is_empty() {
            props.remove("security_group_ids");
        }
    }
    common::canonical_window(props, "maintenance_window");
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    let mut rest = std::mem::take(props);
    for key in ORDER {
        if let Some(value) = rest.shift_remove(*key) {
            props.insert((*key).to_string(), value);
        }
    }
    props.extend(rest);
}

// ---------------------------------------------------------------------------------------------
// Semantic checks

fn check_props(props: &Props) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    if let Some(problem) =
        known_str(props, "cluster_id").and_then(|id| identifier_problem(id, MAX_ID))
    {
        issues.push(PropIssue::at(&["cluster_id"], problem));
    }
    issues.extend(check_engine_and_node_type(props));
    issues.extend(check_windows(props));
    if let Some(node_type) = known_str(props, "node_type") {
        if node_type.starts_with("cache.r6gd.") {
            issues.push(PropIssue::at(
                &["node_type"],
                format!("{node_type} is a data tiering node type, available only in an elasticache.replication_group with data tiering"),
            ));
        }
    }
    let nodes = known_i64(props, "num_nodes");
    match known_str(props, "engine") {
        Some(engine) if is_redis_like(engine) => {
            if let Some(n) = nodes.filter(|n| *n > 1) {
                issues.push(PropIssue::at(
                    &["num_nodes"],
                    format!("a {engine} cluster has exactly one node, not {n}; for replicas use an elasticache.replication_group (primary plus replicas)"),
                ));
            }
            if props.contains_key("az_mode") {
                issues.push(PropIssue::at(
                    &["az_mode"],
                    format!("az_mode is for memcached clusters only; a {engine} cluster has one node in one availability zone"),
                ));
            }
            if props.contains_key("transit_encryption") {
                issues.push(PropIssue::at(
                    &["transit_encryption"],
                    format!("a {engine} cluster of one node has no TLS setting: use an elasticache.replication_group with transit_encryption"),
                ));
            }
        }
        Some("memcached") => {
            for key in ["snapshot_retention_limit", "snapshot_window"] {
                if props.contains_key(key) {
                    issues.push(PropIssue::at(
                        &[key],
                        format!("memcached keeps no snapshots; remove {key} (snapshots are for redis and valkey)"),
                    ));
                }
            }
            let old_version = known_str(props, "engine_version")
                .map(version_parts)
                .is_some_and(|v| !v.is_empty() && v < vec![1, 6, 12]);
            if props.get("transit_encryption") == Some(&json!(true)) && old_version {
                issues.push(PropIssue::at(
                    &["transit_encryption"],
                    "Memcached has in-transit encryption from engine version 1.6.12",
                ));
            }
            if known_str(props, "az_mode") == Some("cross_az") && nodes.unwrap_or(1) < 2 {
                issues.push(PropIssue::at(
                    &["az_mode"],
                    "cross_az spreads nodes over availability zones and needs num_nodes of 2 or more",
                ));
            }
        }
        _ => {}
    }
    issues
}

// ---------------------------------------------------------------------------------------------
// Engine versions

/// The numeric parts of a version: `7.1.0` → [7, 1, 0], `6.x` → [6].
fn version_parts(version: &str) -> Vec<u64> {
    version
        .split('.')
        .map_while(|part| part.parse::<u64>().ok())
        .collect()
}

/// Whether a written version (`7.1`, `6.x`) names the running one (`7.1.0`, `6.2.6`).
pub fn version_matches(written: &str, actual: &str) -> bool {
    if written == actual {
        return true;
    }
    let (w, a) = (version_parts(written), version_parts(actual));
    !w.is_empty() && a.starts_with(&w)
}

/// Whether going from `before` to `after` lowers the version (which AWS cannot do in place).
fn is_downgrade(before: &str, after: &str) -> bool {
    if version_matches(after, before) {
        return false;
    }
    let (b, a) = (version_parts(before), version_parts(after));
    let common = b.len().min(a.len());
    a[..common] < b[..common]
}

// ---------------------------------------------------------------------------------------------
// Typed view of canonical properties

#[derive(Clone, Debug, Deserialize)]
struct ClusterSpec {
    cluster_id: String,
    engine: String,
    engine_version: Option<String>,
    node_type: String,
    #[serde(default = "one")]
    num_nodes: i32,
    port: Option<i32>,
    subnet_group: Option<String>,
    #[serde(default)]
    security_group_ids: Vec<String>,
    parameter_group: Option<String>,
    snapshot_retention_limit: Option<i32>,
    snapshot_window: Option<String>,
    maintenance_window: Option<String>,
    az_mode: Option<String>,
    transit_encryption: Option<bool>,
}

fn one() -> i32 {
    1
}

impl ClusterSpec {
    fn from_props(props: &Props) -> ResourceResult<ClusterSpec> {
        serde_json::from_value(Value::Object(props.clone()))
            .map_err(|e| ResourceError::invalid(format!("elasticache.cluster properties: {e}")))
    }
    fn redis_like(&self) -> bool {
        is_redis_like(&self.engine)
    }
}

/// AWS never reports a cluster's AZ mode: `PreferredAvailabilityZone` says `Multiple` once
/// nodes sit in several zones, and a zone name (or nothing, while creating) otherwise —
/// which a cross-AZ cluster whose nodes share one zone also says. Only `Multiple` is a
/// fact; otherwise the mode last applied stands, and without one (an import) a zone name
/// means single-AZ.
pub fn az_mode_read<'a>(zone: Option<&str>, prior: &'a Props) -> Option<&'a str> {
    match (zone, str_of(prior, "az_mode")) {
        (Some("Multiple"), _) => Some("cross_az"),
        (_, Some(applied)) => Some(applied),
        (Some(_), None) => Some("single_az"),
        (None, None) => None,
    }
}

fn az_mode(value: &str) -> AzMode {
    match value {
        "cross_az" => AzMode::CrossAz,
        _ => AzMode::SingleAz,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

fn status_of(cluster: &Described) -> &str {
    cluster.cache_cluster_status().unwrap_or("unknown")
}

/// The cluster with this id, `None` when AWS does not know it.
async fn describe(client: &Client, id: &str) -> ResourceResult<Option<Described>> {
    let result = client
        .describe_cache_clusters()
        .cache_cluster_id(id)
        .show_cache_node_info(true)
        .send()
        .await
        .classified();
    match result {
        Ok(out) => Ok(out
            .cache_clusters()
            .iter()
            .find(|c| c.cache_cluster_id() == Some(id))
            .cloned()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn unexpected(field: &str, id: &str) -> ResourceError {
    ResourceError::other(format!(
        "DescribeCacheClusters returned cluster {id} without {field}"
    ))
}

/// The port the cluster listens on as AWS reports it: the configuration endpoint's (Memcached)
/// or the first node's.
fn reported_port(cluster: &Described) -> Option<i64> {
    cluster
        .configuration_endpoint()
        .and_then(|e| e.port())
        .or_else(|| {
            cluster
                .cache_nodes()
                .iter()
                .find_map(|n| n.endpoint().and_then(|e| e.port()))
        })
        .map(i64::from)
}

/// Canonical properties of a described cluster. `prior` (the properties last applied, or
/// null) supplies the written spelling of a matching `engine_version`, and the port while AWS
/// reports no endpoint yet (a cluster still `creating` has no nodes).
pub fn props_from_cluster(
    cluster: &Described,
    tags: &BTreeMap<String, String>,
    prior: &Props,
) -> ResourceResult<Props> {
    let id = cluster.cache_cluster_id().unwrap_or_default();
    let engine = cluster
        .engine()
        .ok_or_else(|| unexpected("Engine", id))?
        .to_ascii_lowercase();
    let mut props = Props::new();
    props.insert("cluster_id".into(), json!(id));
    props.insert("engine".into(), json!(engine));
    if let Some(actual) = cluster.engine_version() {
        let version = str_of(prior, "engine_version")
            .filter(|written| version_matches(written, actual))
            .unwrap_or(actual);
        props.insert("engine_version".into(), json!(version));
    }
    let node_type = cluster
        .cache_node_type()
        .ok_or_else(|| unexpected("CacheNodeType", id))?;
    props.insert("node_type".into(), json!(node_type));
    props.insert(
        "num_nodes".into(),
        json!(cluster.num_cache_nodes().unwrap_or(1)),
    );
    let port = reported_port(cluster)
        .or_else(|| known_i64(prior, "port"))
        .or_else(|| default_port(&engine));
    if let Some(port) = port {
        props.insert("port".into(), json!(port));
    }
    if let Some(group) = cluster.cache_subnet_group_name() {
        props.insert("subnet_group".into(), json!(group));
    }
    let groups: Vec<&str> = cluster
        .security_groups()
        .iter()
        .filter(|m| !matches!(m.status(), Some("removing") | Some("revoked")))
        .filter_map(|m| m.security_group_id())
        .collect();
    if !groups.is_empty() {
        props.insert("security_group_ids".into(), json!(groups));
    }
    if let Some(group) = cluster
        .cache_parameter_group()
        .and_then(|g| g.cache_parameter_group_name())
    {
        props.insert("parameter_group".into(), json!(group));
    }
    if is_redis_like(&engine) {
        props.insert(
            "snapshot_retention_limit".into(),
            json!(cluster.snapshot_retention_limit().unwrap_or(0)),
        );
        if let Some(window) = cluster.snapshot_window() {
            props.insert("snapshot_window".into(), json!(window));
        }
    }
    if let Some(window) = cluster.preferred_maintenance_window() {
        props.insert("maintenance_window".into(), json!(window));
    }
    if engine == "memcached" {
        if let Some(mode) = az_mode_read(cluster.preferred_availability_zone(), prior) {
            props.insert("az_mode".into(), json!(mode));
        }
        props.insert(
            "transit_encryption".into(),
            json!(cluster.transit_encryption_enabled().unwrap_or(false)),
        );
    }
    props.insert("tags".into(), tags::tags_value(tags.clone()));
    canonicalize(&mut props);
    Ok(props)
}

/// The attributes of a described cluster (`props` its canonical properties).
pub fn attrs_from_cluster(cluster: &Described, props: &Props) -> Props {
    let mut attrs = Props::new();
    let id = cluster.cache_cluster_id().unwrap_or_default();
    attrs.insert("cluster_id".into(), json!(id));
    if let Some(arn) = cluster.arn() {
        attrs.insert("arn".into(), json!(arn));
    }
    let configuration = cluster.configuration_endpoint();
    let address = configuration.and_then(|e| e.address()).or_else(|| {
        cluster
            .cache_nodes()
            .iter()
            .find_map(|n| n.endpoint().and_then(|e| e.address()))
    });
    if let Some(address) = address {
        attrs.insert("address".into(), json!(address));
    }
    if let Some(port) = props.get("port") {
        attrs.insert("port".into(), port.clone());
    }
    let endpoint = configuration
        .and_then(|e| Some(format!("{}:{}", e.address()?, e.port()?)))
        .map(Value::String)
        .unwrap_or(Value::Null);
    attrs.insert("configuration_endpoint".into(), endpoint);
    attrs
}

fn observed(
    cluster: &Described,
    tags: &BTreeMap<String, String>,
    prior: &Props,
) -> ResourceResult<Observed> {
    let props = props_from_cluster(cluster, tags, prior)?;
    let attrs = attrs_from_cluster(cluster, &props);
    Ok(Observed {
        id: cluster.cache_cluster_id().unwrap_or_default().to_string(),
        props,
        attrs,
    })
}

// ---------------------------------------------------------------------------------------------
// Waiting and modifying

/// What keeps an `available` cluster from being done: modifications not yet applied, security
/// groups still being attached or detached.
fn unsettled(cluster: &Described) -> Option<String> {
    if let Some(pending) = cluster.pending_modified_values() {
        if pending.num_cache_nodes().is_some()
            || !pending.cache_node_ids_to_remove().is_empty()
            || pending.cache_node_type().is_some()
            || pending.engine_version().is_some()
        {
            return Some("available, modifications pending".into());
        }
    }
    cluster
        .security_groups()
        .iter()
        .find(|m| m.status().is_some_and(|s| TRANSITIONAL_GROUPS.contains(&s)))
        .map(|m| {
            format!(
                "security group {} {}",
                m.security_group_id().unwrap_or("?"),
                m.status().unwrap_or_default()
            )
        })
}

/// Waits until the cluster is `available` and settled. `missing_ok`: right after a create,
/// AWS may not list the cluster yet.
async fn wait_available(
    ctx: &OpContext,
    client: &Client,
    id: &str,
    limit: Duration,
    missing_ok: bool,
) -> ResourceResult<Described> {
    let what = format!("cache cluster {id} to be available");
    wait::until(ctx, &what, limit, || async move {
        let Some(cluster) = describe(client, id).await? else {
            return if missing_ok {
                Ok(Poll::Pending("not visible yet".into()))
            } else {
                Err(ResourceError::new(
                    ErrorKind::NotFound,
                    format!("cache cluster {id} disappeared"),
                ))
            };
        };
        let status = status_of(&cluster).to_string();
        if FAILED.contains(&status.as_str()) {
            return Err(ResourceError::other(format!(
                "cache cluster {id} is {status}; it will not become available"
            )));
        }
        if status != "available" {
            return Ok(Poll::Pending(status));
        }
        Ok(match unsettled(&cluster) {
            Some(reason) => Poll::Pending(reason),
            None => Poll::Ready(cluster),
        })
    })
    .await
}

/// One ModifyCacheCluster, retried while the cluster is busy, then a wait until it is
/// available again.
async fn modify(
    ctx: &OpContext,
    client: &Client,
    id: &str,
    what: &str,
    request: ModifyCacheClusterFluentBuilder,
) -> ResourceResult<Described> {
    debug!(cluster = id, what, "ModifyCacheCluster");
    wait::retry_while_busy(ctx, what, UPDATE_LIMIT, || {
        let request = request.clone();
        async move { request.send().await.classified().map(|_| ()) }
    })
    .await?;
    wait_available(ctx, client, id, UPDATE_LIMIT, false).await
}

/// The ids of the `count` highest-numbered nodes (`0003`, `0002`), which AWS removes when a
/// Memcached cluster shrinks.
fn nodes_to_remove(cluster: &Described, count: usize) -> Vec<String> {
    let mut ids: Vec<&str> = cluster
        .cache_nodes()
        .iter()
        .filter_map(|n| n.cache_node_id())
        .collect();
    ids.sort_by_key(|id| (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string()));
    ids.iter()
        .rev()
        .take(count)
        .map(|s| s.to_string())
        .collect()
}

/// The changes other than the node count, as one ModifyCacheCluster; `None` when there are none.
fn settings_request(
    client: &Client,
    id: &str,
    old: &ClusterSpec,
    new: &ClusterSpec,
) -> ResourceResult<Option<(ModifyCacheClusterFluentBuilder, Vec<&'static str>)>> {
    let mut request = client
        .modify_cache_cluster()
        .cache_cluster_id(id)
        .apply_immediately(true);
    let mut changed = Vec::new();
    if old.node_type != new.node_type {
        request = request.cache_node_type(&new.node_type);
        changed.push("node_type");
    }
    if let Some(version) = &new.engine_version {
        let running = old.engine_version.as_deref();
        if !running.is_some_and(|r| version_matches(version, r)) {
            if let Some(running) = running.filter(|r| is_downgrade(r, version)) {
                return Err(ResourceError::invalid(format!(
                    "cache cluster {id} runs {} {running}; AWS cannot downgrade to {version}, only a new cluster can run it",
                    new.engine
                )));
            }
            request = request.engine_version(version);
            changed.push("engine_version");
        }
    }
    if old.security_group_ids != new.security_group_ids && !new.security_group_ids.is_empty() {
        request = request.set_security_group_ids(Some(new.security_group_ids.clone()));
        changed.push("security_group_ids");
    }
    if let Some(group) = new
        .parameter_group
        .as_ref()
        .filter(|g| old.parameter_group.as_ref() != Some(*g))
    {
        request = request.cache_parameter_group_name(group);
        changed.push("parameter_group");
    }
    if new.redis_like() {
        let (before, after) = (
            old.snapshot_retention_limit.unwrap_or(0),
            new.snapshot_retention_limit.unwrap_or(0),
        );
        if before != after {
            request = request.snapshot_retention_limit(after);
            changed.push("snapshot_retention_limit");
        }
        if let Some(window) = new
            .snapshot_window
            .as_ref()
            .filter(|w| old.snapshot_window.as_ref() != Some(*w))
        {
            request = request.snapshot_window(window);
            changed.push("snapshot_window");
        }
    }
    if let Some(window) = new
        .maintenance_window
        .as_ref()
        .filter(|w| old.maintenance_window.as_ref() != Some(*w))
    {
        request = request.preferred_maintenance_window(window);
        changed.push("maintenance_window");
    }
    Ok((!changed.is_empty()).then_some((request, changed)))
}

// ---------------------------------------------------------------------------------------------
// The resource type

/// Cost rule: the node type's hourly price for the engine, times the number of nodes (one
/// for Redis and Valkey, `num_nodes` for Memcached).
fn cluster_cost(
    props: &plinth_core::value::Props,
    ctx: &plinth_core::cost::CostContext,
) -> Vec<plinth_core::cost::CostLine> {
    let what = "cache nodes";
    let Some(engine) = plinth_core::cost::known_str(props, "engine") else {
        return vec![crate::cost::known_after_apply(what, "engine")];
    };
    let Some(node_type) = plinth_core::cost::known_str(props, "node_type") else {
        return vec![crate::cost::known_after_apply(what, "node_type")];
    };
    let Some(nodes) = crate::cost::known_count(props, "num_nodes", 1) else {
        return vec![crate::cost::known_after_apply(what, "num_nodes")];
    };
    vec![crate::cost::cache_nodes_line(ctx, engine, node_type, nodes)]
}

#[async_trait]
impl ResourceType for CacheCluster {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(
        &self,
        props: &plinth_core::value::Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        cluster_cost(props, ctx)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        check_props(props)
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
        plinth_core::value::pick(props, &["cluster_id", "port"])
    }

    fn replace_reasons(&self, before: &Props, after: &Props) -> Vec<String> {
        let mut reasons = self.schema.replaced_properties(before, after);
        if let (Some(running), Some(wanted)) = (
            known_str(before, "engine_version"),
            known_str(after, "engine_version"),
        ) {
            if is_downgrade(running, wanted) {
                reasons.push("engine_version".into());
            }
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
        let Some(cluster) = describe(&client, id).await? else {
            return Ok(None);
        };
        // A deleting cluster cannot be changed or used and will be gone in minutes.
        if status_of(&cluster) == "deleting" {
            return Ok(None);
        }
        let arn = cluster.arn().ok_or_else(|| unexpected("ARN", id))?;
        let tags = match common::tags_of(&client, arn).await {
            Ok(tags) => tags,
            // Deleted between the two calls.
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        observed(&cluster, &tags, prior).map(Some)
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let Some(id) = known_str(props, "cluster_id") else {
            return Ok(None);
        };
        let Some(found) = self.read(ctx, id, props).await? else {
            return Ok(None);
        };
        Ok(tags::ours(found, props))
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "elasticache", "cluster:")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let spec = ClusterSpec::from_props(props)?;
        let client = self.aws.elasticache(&ctx.region);
        let ctx = ctx.with_default_deadline(CREATE_LIMIT);
        let id = spec.cluster_id.as_str();
        let redis_like = spec.redis_like();
        let tag_list = common::tag_list(props);
        let request = client
            .create_cache_cluster()
            .cache_cluster_id(id)
            .engine(&spec.engine)
            .set_engine_version(spec.engine_version.clone())
            .cache_node_type(&spec.node_type)
            .num_cache_nodes(spec.num_nodes)
            .set_port(
                spec.port
                    .or_else(|| default_port(&spec.engine).and_then(|p| i32::try_from(p).ok())),
            )
            .set_cache_subnet_group_name(spec.subnet_group.clone())
            .set_security_group_ids(
                (!spec.security_group_ids.is_empty()).then(|| spec.security_group_ids.clone()),
            )
            .set_cache_parameter_group_name(spec.parameter_group.clone())
            .set_snapshot_retention_limit(spec.snapshot_retention_limit.filter(|_| redis_like))
            .set_snapshot_window(spec.snapshot_window.clone().filter(|_| redis_like))
            .set_preferred_maintenance_window(spec.maintenance_window.clone())
            .set_az_mode(
                spec.az_mode
                    .as_deref()
                    .filter(|_| spec.engine == "memcached")
                    .map(az_mode),
            )
            .set_transit_encryption_enabled(
                spec.transit_encryption
                    .filter(|_| spec.engine == "memcached"),
            )
            .set_tags((!tag_list.is_empty()).then_some(tag_list));
        debug!(cluster = id, "CreateCacheCluster");
        if let Err(err) = request.send().await.classified() {
            let what =
                format!("a cache cluster with id {id} (choose another cluster_id, or import it)");
            crate::errors::adopt_if_ours(err, &["CacheClusterAlreadyExists"], &what, || {
                self.find(&ctx, props)
            })
            .await?;
        }
        let cluster = wait_available(&ctx, &client, id, CREATE_LIMIT, true).await?;
        observed(&cluster, &tags::tags_of(props), props)
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let (old, new) = (
            ClusterSpec::from_props(before)?,
            ClusterSpec::from_props(after)?,
        );
        let client = self.aws.elasticache(&ctx.region);
        let ctx = ctx.with_default_deadline(UPDATE_LIMIT);
        let mut last: Option<Described> = None;
        if let Some((request, changed)) = settings_request(&client, id, &old, &new)? {
            let what = format!("changing {} of cache cluster {id}", changed.join(", "));
            last = Some(modify(&ctx, &client, id, &what, request).await?);
        }
        if new.engine == "memcached" && old.num_nodes != new.num_nodes {
            let current = match last.take() {
                Some(cluster) => cluster,
                None => wait_available(&ctx, &client, id, UPDATE_LIMIT, false).await?,
            };
            let have = current.num_cache_nodes().unwrap_or(old.num_nodes);
            let mut request = client
                .modify_cache_cluster()
                .cache_cluster_id(id)
                .apply_immediately(true)
                .num_cache_nodes(new.num_nodes);
            let what = if new.num_nodes < have {
                let remove =
                    nodes_to_remove(&current, usize::try_from(have - new.num_nodes).unwrap_or(0));
                debug!(cluster = id, ?remove, "removing nodes");
                request = request.set_cache_node_ids_to_remove(Some(remove.clone()));
                format!(
                    "removing node(s) {} of cache cluster {id}",
                    remove.join(", ")
                )
            } else {
                format!(
                    "adding {} node(s) to cache cluster {id}",
                    new.num_nodes - have
                )
            };
            last = Some(modify(&ctx, &client, id, &what, request).await?);
        }
        let cluster = match last {
            Some(cluster) => cluster,
            None => describe(&client, id).await?.ok_or_else(|| {
                ResourceError::new(
                    ErrorKind::NotFound,
                    format!("cache cluster {id} does not exist"),
                )
            })?,
        };
        let arn = cluster.arn().ok_or_else(|| unexpected("ARN", id))?;
        common::update_tags(&client, arn, before, after).await?;
        observed(&cluster, &tags::tags_of(after), after)
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = self.aws.elasticache(&ctx.region);
        let waiting = ctx.with_default_deadline(DELETE_LIMIT);
        let what = format!("deleting cache cluster {id}");
        let client_ref = &client;
        debug!(cluster = id, "DeleteCacheCluster");
        // true: AWS accepted the deletion (now or earlier); false: the cluster is already gone.
        let accepted = wait::retry_while_busy(&waiting, &what, DELETE_LIMIT, || async move {
            match client_ref
                .delete_cache_cluster()
                .cache_cluster_id(id)
                .send()
                .await
                .classified()
            {
                Ok(_) => Ok(true),
                Err(e) if e.kind == ErrorKind::NotFound => Ok(false),
                // Busy: modifying or snapshotting (retry), or already deleting (done here).
                Err(e) if e.kind == ErrorKind::InUse => match describe(client_ref, id).await? {
                    None => Ok(false),
                    Some(cluster) if status_of(&cluster) == "deleting" => Ok(true),
                    Some(_) => Err(e),
                },
                Err(e) => Err(e),
            }
        })
        .await?;
        if !accepted {
            return Ok(());
        }
        let what = format!("cache cluster {id} to be deleted");
        let reason = "AWS is deleting the cluster (status deleting)";
        wait::until_deleted(&waiting, &what, reason, DELETE_LIMIT, || async move {
            Ok(describe(client_ref, id)
                .await?
                .map(|c| status_of(&c).to_string()))
        })
        .await
    }
}
