//! What the ElastiCache types share: error codes, tags by ARN, engines, node types, ports,
//! identifiers, maintenance and snapshot windows, and the lint for a cache port open to the
//! internet.
//!
//! ElastiCache speaks the query protocol; its error codes differ from the other services'
//! (`CacheClusterNotFound`, `InvalidCacheClusterState`), so [`classify`] maps them before
//! the shared [`crate::errors`] table does: a cluster that is busy (`Invalid…State`) is worth
//! waiting for, not an invalid request.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_elasticache::types::Tag;
use aws_sdk_elasticache::Client;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use plinth_core::resource::{
    ErrorKind, Linked, OpContext, PropIssue, ResourceError, ResourceResult,
};
use plinth_core::value::{contains_unknown, str_of, Props};
use serde_json::Value;

use crate::errors;
use crate::resources::tags;
use crate::wait::{self, Poll};

/// The engines ElastiCache runs.
pub const ENGINES: &[&str] = &["redis", "valkey", "memcached"];

/// The port Redis and Valkey listen on unless told otherwise.
pub const REDIS_PORT: i64 = 6379;
/// The port Memcached listens on unless told otherwise.
pub const MEMCACHED_PORT: i64 = 11211;

/// Node type families (`cache.<family>.<size>`) ElastiCache offers, current and previous
/// generation. A family outside this list is almost always a typo (`cache.t3g.micro`).
pub const NODE_FAMILIES: &[&str] = &[
    // burstable
    "t1", "t2", "t3", "t4g", // general purpose
    "m1", "m2", "m3", "m4", "m5", "m6g", "m7g", // memory optimised
    "r3", "r4", "r5", "r6g", "r7g",  // memory optimised with data tiering (Redis/Valkey only)
    "r6gd", // compute optimised / network optimised
    "c1", "c7gn",
];

/// Families that only Redis and Valkey support.
const REDIS_ONLY_FAMILIES: &[&str] = &["r6gd"];

/// AWS's error codes for "that does not exist", per ElastiCache resource.
const NOT_FOUND: &[&str] = &[
    "CacheClusterNotFound",
    "ReplicationGroupNotFoundFault",
    "CacheSubnetGroupNotFoundFault",
    "CacheParameterGroupNotFound",
    "CacheSecurityGroupNotFound",
    "SnapshotNotFoundFault",
    "NodeGroupNotFoundFault",
    "UserGroupNotFound",
    "UserNotFound",
    "ServerlessCacheNotFoundFault",
];

/// AWS's error codes for "busy right now, try again later": a cluster modifying, snapshotting
/// or still creating, a group still in use.
const BUSY: &[&str] = &[
    "InvalidCacheClusterState",
    "InvalidReplicationGroupState",
    "InvalidCacheParameterGroupState",
    "InvalidSnapshotState",
    "InvalidUserGroupState",
    "InvalidUserState",
    "InvalidServerlessCacheStateFault",
    "CacheSubnetGroupInUse",
    "SubnetInUse",
    "APICallRateForCustomerExceeded",
];

/// The kind an ElastiCache error code stands for, falling back to the shared table.
pub fn kind_of_code(code: &str) -> ErrorKind {
    if NOT_FOUND.contains(&code) {
        ErrorKind::NotFound
    } else if BUSY.contains(&code) {
        ErrorKind::InUse
    } else {
        errors::kind_of_code(code)
    }
}

/// Classifies an ElastiCache SDK error: [`errors::classify`] with the codes above.
pub fn classify<E>(err: SdkError<E, Response>) -> ResourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut error = errors::classify(err);
    if error.kind != ErrorKind::Unsupported {
        if let Some(code) = &error.code {
            error.kind = kind_of_code(code);
        }
    }
    error
}

/// Shorthand for `.map_err(elasticache_common::classify)` on a `send()` result.
pub trait SendExt<T> {
    fn classified(self) -> ResourceResult<T>;
}

impl<T, E> SendExt<T> for Result<T, SdkError<E, Response>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn classified(self) -> ResourceResult<T> {
        self.map_err(classify)
    }
}

// ---------------------------------------------------------------------------------------------
// Tags

/// The tags of the resource with this ARN, without AWS's own `aws:` tags.
pub async fn tags_of(client: &Client, arn: &str) -> ResourceResult<BTreeMap<String, String>> {
    let out = client
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .classified()?;
    Ok(out
        .tag_list()
        .iter()
        .filter_map(|t| {
            let key = t.key()?;
            (!tags::is_reserved(key))
                .then(|| (key.to_string(), t.value().unwrap_or_default().to_string()))
        })
        .collect())
}

/// The tags of something just described, or `None` when it was deleted in between.
pub async fn tags_unless_gone(
    client: &Client,
    arn: &str,
) -> ResourceResult<Option<BTreeMap<String, String>>> {
    crate::errors::unless_gone(tags_of(client, arn).await)
}

// ---------------------------------------------------------------------------------------------
// Statuses: the users, user groups and serverless caches AWS makes in the background

/// Polls `describe` until what it finds reports `ready` (it is `creating` or `modifying`
/// before); a thing not visible yet right after its create is waited for a while.
pub async fn wait_for_status<T, F, Fut>(
    ctx: &OpContext,
    what: &str,
    limit: Duration,
    (ready, status): (&str, fn(&T) -> Option<&str>),
    mut describe: F,
) -> ResourceResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ResourceResult<Option<T>>>,
{
    let since = tokio::time::Instant::now();
    wait::until(ctx, what, limit, || {
        let found = describe();
        async move {
            match found.await? {
                Some(thing) if status(&thing) == Some(ready) => Ok(Poll::Ready(thing)),
                Some(thing) => Ok(Poll::Pending(status(&thing).unwrap_or("?").to_string())),
                None => wait::not_visible_yet(since, || errors::vanished(what)),
            }
        }
    })
    .await
}

/// Sends `delete` (again while AWS says the thing is in use; gone already is done), then
/// waits until `status` finds nothing left: AWS deletes in the background (`reason`).
pub async fn delete_in_background<D, DFut, S, SFut>(
    ctx: &OpContext,
    (what, reason): (&str, &str),
    limit: Duration,
    mut delete: D,
    status: S,
) -> ResourceResult<()>
where
    D: FnMut() -> DFut,
    DFut: Future<Output = ResourceResult<()>>,
    S: FnMut() -> SFut,
    SFut: Future<Output = ResourceResult<Option<String>>>,
{
    wait::delete_when_free(ctx, what, limit, || {
        let attempt = delete();
        async move {
            match attempt.await {
                Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
                other => other,
            }
        }
    })
    .await?;
    wait::until_deleted(ctx, what, reason, limit, status).await
}

/// The `tags` property as the SDK's tag list, for create calls (`aws:` keys left out).
pub fn tag_list(props: &Props) -> Vec<Tag> {
    tags::tags_of(props)
        .into_iter()
        .filter(|(k, _)| !tags::is_reserved(k))
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Changes the tags of the resource with this ARN from `before`'s `tags` to `after`'s: adds or
/// overwrites what changed, removes what is gone, and calls nothing when they are equal.
pub async fn update_tags(
    client: &Client,
    arn: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let strip = |props: &Props| -> BTreeMap<String, String> {
        tags::tags_of(props)
            .into_iter()
            .filter(|(k, _)| !tags::is_reserved(k))
            .collect()
    };
    let (set, remove) = tags::tag_changes(&strip(before), &strip(after));
    if !set.is_empty() {
        let mut call = client.add_tags_to_resource().resource_name(arn);
        for (k, v) in set {
            call = call.tags(Tag::builder().key(k).value(v).build());
        }
        call.send().await.classified()?;
    }
    if !remove.is_empty() {
        client
            .remove_tags_from_resource()
            .resource_name(arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .classified()?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Engines, node types, ports

/// The default port of an engine; `None` for an engine ElastiCache does not run.
pub fn default_port(engine: &str) -> Option<i64> {
    match engine {
        "redis" | "valkey" => Some(REDIS_PORT),
        "memcached" => Some(MEMCACHED_PORT),
        _ => None,
    }
}

/// Whether the engine is Redis-compatible (snapshots, replication, auth tokens).
pub fn is_redis_like(engine: &str) -> bool {
    matches!(engine, "redis" | "valkey")
}

pub use plinth_core::value::known_str;

/// A known integer property.
pub fn known_i64(props: &Props, key: &str) -> Option<i64> {
    props
        .get(key)
        .filter(|v| !contains_unknown(v))
        .and_then(Value::as_i64)
}

/// What is wrong with a node type (`cache.t3.micro`), if anything; `engine` (when known)
/// rules out families the engine does not run on.
pub fn node_type_problem(node_type: &str, engine: Option<&str>) -> Option<String> {
    let expected =
        "node types look like cache.<family>.<size>, e.g. cache.t4g.micro or cache.r7g.large";
    let parts: Vec<&str> = node_type.split('.').collect();
    let [prefix, family, size] = parts.as_slice() else {
        return Some(format!("unknown node type {node_type:?}: {expected}"));
    };
    if *prefix != "cache" {
        return Some(format!("unknown node type {node_type:?}: {expected}"));
    }
    if !NODE_FAMILIES.contains(family) {
        return Some(format!(
            "unknown node type family {family:?} in {node_type:?}; known families: {}",
            NODE_FAMILIES.join(", ")
        ));
    }
    let size_ok = matches!(*size, "micro" | "small" | "medium" | "large" | "xlarge")
        || size
            .strip_suffix("xlarge")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !size_ok {
        return Some(format!(
            "unknown node size {size:?} in {node_type:?}; sizes are micro, small, medium, large, xlarge, 2xlarge, …"
        ));
    }
    if let Some(engine) = engine {
        if engine == "memcached" && REDIS_ONLY_FAMILIES.contains(family) {
            return Some(format!(
                "{node_type} (data tiering) runs only Redis and Valkey, not Memcached"
            ));
        }
    }
    None
}

/// Checks `engine`, `node_type` and `port` of a cache's properties (values unknown until
/// apply are skipped): an engine ElastiCache runs, a node type of a known family that the
/// engine runs on, a port from 1 to 65535.
pub fn check_engine_and_node_type(props: &Props) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    let engine = known_str(props, "engine");
    if let Some(engine) = engine {
        if !ENGINES.contains(&engine) {
            issues.push(PropIssue::at(
                &["engine"],
                format!(
                    "unknown engine {engine:?}; expected one of {}",
                    ENGINES.join(", ")
                ),
            ));
        }
    }
    if let Some(node_type) = known_str(props, "node_type") {
        let engine = engine.filter(|e| ENGINES.contains(e));
        if let Some(problem) = node_type_problem(node_type, engine) {
            issues.push(PropIssue::at(&["node_type"], problem));
        }
    }
    issues.extend(check_port(props));
    issues
}

/// `port` from 1 to 65535, when known.
pub fn check_port(props: &Props) -> Vec<PropIssue> {
    match props.get("port") {
        Some(v) if contains_unknown(v) || v.is_null() => Vec::new(),
        Some(v) => match v.as_i64() {
            Some(p) if (1..=65535).contains(&p) => Vec::new(),
            _ => vec![PropIssue::at(
                &["port"],
                format!("port must be from 1 to 65535, not {v}"),
            )],
        },
        None => Vec::new(),
    }
}

/// What is wrong with an ElastiCache identifier (cluster or replication group id), if
/// anything: AWS stores them lowercase, 1 to `max_len` characters, a letter first, then
/// letters, digits and single hyphens, not ending in a hyphen.
pub fn identifier_problem(id: &str, max_len: usize) -> Option<String> {
    let rule = format!(
        "ids are 1 to {max_len} lowercase letters, digits and hyphens, start with a letter, have no \"--\" and do not end with \"-\""
    );
    if id.is_empty() || id.len() > max_len {
        return Some(format!(
            "{id:?} is {} characters long; {rule}",
            id.chars().count()
        ));
    }
    if id.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(format!(
            "{id:?} has uppercase letters; AWS stores ids lowercase, so write {:?}",
            id.to_ascii_lowercase()
        ));
    }
    let first_ok = id.starts_with(|c: char| c.is_ascii_lowercase());
    let chars_ok = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !first_ok || !chars_ok || id.contains("--") || id.ends_with('-') {
        return Some(format!("invalid id {id:?}; {rule}"));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Windows

const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Minutes since the start of the day of `hh24:mi`.
fn clock_minutes(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Minutes since Sunday 00:00 of `ddd:hh24:mi` (day name in any case).
fn week_minutes(text: &str) -> Option<u32> {
    let (day, clock) = text.split_once(':')?;
    let day = DAYS.iter().position(|d| d.eq_ignore_ascii_case(day))? as u32;
    Some(day * 24 * 60 + clock_minutes(clock)?)
}

/// What is wrong with a snapshot window (`05:00-06:00`, UTC, at least 60 minutes), if anything.
pub fn snapshot_window_problem(window: &str) -> Option<String> {
    let expected = "snapshot windows look like hh24:mi-hh24:mi (UTC), e.g. 05:00-06:00";
    let Some((from, to)) = window.split_once('-') else {
        return Some(format!("{window:?}: {expected}"));
    };
    let (Some(from), Some(to)) = (clock_minutes(from), clock_minutes(to)) else {
        return Some(format!("{window:?}: {expected}"));
    };
    let length = (to + 24 * 60 - from) % (24 * 60);
    (length < 60).then(|| {
        format!(
            "{window:?} is {length} minutes long; the snapshot window must be at least 60 minutes"
        )
    })
}

/// What is wrong with a maintenance window (`sun:05:00-sun:06:00`, UTC, at least 60
/// minutes), if anything.
pub fn maintenance_window_problem(window: &str) -> Option<String> {
    let expected =
        "maintenance windows look like ddd:hh24:mi-ddd:hh24:mi (UTC), e.g. sun:05:00-sun:06:00";
    let Some((from, to)) = window.split_once('-') else {
        return Some(format!("{window:?}: {expected}"));
    };
    let (Some(from), Some(to)) = (week_minutes(from), week_minutes(to)) else {
        return Some(format!("{window:?}: {expected}"));
    };
    let week = 7 * 24 * 60;
    let length = (to + week - from) % week;
    (length < 60).then(|| format!("{window:?} is {length} minutes long; the maintenance window must be at least 60 minutes"))
}

/// Checks `snapshot_window` and `maintenance_window`, when present and known.
pub fn check_windows(props: &Props) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    if let Some(problem) = known_str(props, "snapshot_window").and_then(snapshot_window_problem) {
        issues.push(PropIssue::at(&["snapshot_window"], problem));
    }
    if let Some(problem) =
        known_str(props, "maintenance_window").and_then(maintenance_window_problem)
    {
        issues.push(PropIssue::at(&["maintenance_window"], problem));
    }
    issues
}

/// The canonical form of a maintenance window: lowercase, as AWS reports it.
pub fn canonical_window(props: &mut Props, key: &str) {
    if let Some(Value::String(text)) = props.get_mut(key) {
        if !contains_unknown(&Value::String(text.clone())) {
            *text = text.to_ascii_lowercase();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lint: a cache port open to the internet

/// Warnings for every security group among `linked` (through `prop`, of type
/// `ec2.security_group`, with canonical props) that admits tcp `port` from `0.0.0.0/0` or
/// `::/0`. The issue's path is `prop` itself.
pub fn open_port_warnings(port: i64, prop: &str, linked: &[Linked]) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    for group in linked
        .iter()
        .filter(|l| l.prop == prop && l.type_name == "ec2.security_group")
    {
        let Some(rules) = group.props.get("ingress").and_then(Value::as_array) else {
            continue;
        };
        let mut open: Vec<&str> = Vec::new();
        for rule in rules.iter().filter_map(Value::as_object) {
            if !admits_port(rule, port) {
                continue;
            }
            for (key, anywhere) in [("cidr_ipv4", "0.0.0.0/0"), ("cidr_ipv6", "::/0")] {
                if rule.get(key).and_then(Value::as_str) == Some(anywhere)
                    && !open.contains(&anywhere)
                {
                    open.push(anywhere);
                }
            }
        }
        if !open.is_empty() {
            issues.push(PropIssue::at(
                &[prop],
                format!(
                    "security group `{}` admits port {port} from {}: anyone on the internet can reach this cache if it is ever reachable; admit the app's security group instead",
                    group.resource,
                    open.join(" and ")
                ),
            ));
        }
    }
    issues
}

/// Whether a canonical ingress rule lets tcp traffic to `port` in.
fn admits_port(rule: &serde_json::Map<String, Value>, port: i64) -> bool {
    let protocol = rule.get("protocol").and_then(Value::as_str);
    let from = rule.get("from_port").and_then(Value::as_i64);
    let to = rule.get("to_port").and_then(Value::as_i64);
    match protocol {
        Some("all") | Some("-1") => true,
        Some("tcp") | Some("6") => match (from, to) {
            (Some(-1), _) | (_, Some(-1)) => true,
            (Some(from), Some(to)) => (from..=to).contains(&port),
            _ => false,
        },
        _ => false,
    }
}

/// The port a cache listens on: `port`, else the engine's default; `None` while unknown.
pub fn port_of(props: &Props) -> Option<i64> {
    match props.get("port") {
        Some(v) if contains_unknown(v) => None,
        Some(v) if !v.is_null() => v.as_i64(),
        _ => str_of(props, "engine")
            .filter(|e| !contains_unknown(&Value::String(e.to_string())))
            .and_then(default_port),
    }
}
