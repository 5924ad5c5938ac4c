//! `elasticache.cluster` against replayed ElastiCache responses: what the emulator cannot show
//! (clusters that take time to create, modify and delete, `ModifyCacheCluster` at all,
//! `InvalidCacheClusterState` while a cluster is busy, Memcached nodes removed), plus the
//! checks, the lint and the canonical form both sides of a diff must share.
//!
//! Clients run with the SDK's own retries off and the rules in `RuleMode::Sequential`, so every
//! mocked response is exactly one call and the order of calls is pinned.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_elasticache::config::retry::RetryConfig;
use aws_sdk_elasticache::operation::add_tags_to_resource::{
    AddTagsToResourceInput, AddTagsToResourceOutput,
};
use aws_sdk_elasticache::operation::create_cache_cluster::{
    CreateCacheClusterInput, CreateCacheClusterOutput,
};
use aws_sdk_elasticache::operation::delete_cache_cluster::DeleteCacheClusterOutput;
use aws_sdk_elasticache::operation::describe_cache_clusters::DescribeCacheClustersOutput;
use aws_sdk_elasticache::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_elasticache::operation::modify_cache_cluster::{
    ModifyCacheClusterInput, ModifyCacheClusterOutput,
};
use aws_sdk_elasticache::operation::remove_tags_from_resource::{
    RemoveTagsFromResourceInput, RemoveTagsFromResourceOutput,
};
use aws_sdk_elasticache::types::{
    CacheCluster as Described, CacheNode, CacheParameterGroupStatus, Endpoint,
    PendingModifiedValues, SecurityGroupMembership, Tag,
};
use aws_sdk_elasticache::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use plinth_aws::resources::ec2_security_group::SecurityGroup;
use plinth_aws::resources::elasticache_cluster::{props_from_cluster, CacheCluster};
use plinth_core::resource::{Linked, NormalizeContext, OpContext, Progress, ResourceType};
use plinth_core::value::{path_to_string, Props};
use serde_json::{json, Value};

use crate::mock_support::{elasticache_error, mocked_aws, REGION};

const ID: &str = "demo-cache";
const ARN: &str = "arn:aws:elasticache:us-east-1:123456789012:cluster:demo-cache";

fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_elasticache, RuleMode::Sequential, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

fn cluster_type(client: Client) -> CacheCluster {
    let aws = mocked_aws();
    aws.insert_elasticache(REGION, client);
    CacheCluster::new(aws)
}

/// Keeps every progress message, to show that a wait really happened.
#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);

impl Progress for Recorded {
    fn status(&self, message: &str) {
        self.0.lock().expect("lock").push(message.to_string());
    }
}

impl Recorded {
    fn messages(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }
    fn saw(&self, text: &str) -> bool {
        self.messages().iter().any(|m| m.contains(text))
    }
}

fn ctx_with(progress: Arc<Recorded>) -> OpContext {
    OpContext::new(REGION, "cache").with_progress(progress)
}

fn obj(value: Value) -> Props {
    value.as_object().cloned().expect("an object")
}

fn owner_tags() -> Value {
    json!({"plinth:stack": "lab", "plinth:workspace": "default", "plinth:resource": "cache"})
}

fn normalized(value: Value) -> Props {
    let mut props = obj(value);
    cluster_type(client(&[]))
        .normalize(&mut props, &NormalizeContext::default())
        .expect("normalizes");
    props
}

/// Desired `cache` properties as the core hands them over: tags merged, normalized.
fn desired(extra: Value) -> Props {
    let mut props = obj(json!({
        "cluster_id": ID,
        "engine": "redis",
        "node_type": "cache.t3.micro",
        "security_group_ids": ["sg-0cache"],
        "tags": owner_tags(),
    }));
    props.extend(obj(extra));
    normalized(Value::Object(props))
}

/// What AWS reports for the Redis `demo-cache` cluster.
struct Redis<'a> {
    status: &'a str,
    node_type: &'a str,
    groups: &'a [(&'a str, &'a str)],
    nodes: bool,
    pending_node_type: Option<&'a str>,
}

impl Default for Redis<'_> {
    fn default() -> Self {
        Redis {
            status: "available",
            node_type: "cache.t3.micro",
            groups: &[("sg-0cache", "active")],
            nodes: true,
            pending_node_type: None,
        }
    }
}

fn node(id: &str, cluster: &str, port: i32) -> CacheNode {
    CacheNode::builder()
        .cache_node_id(id)
        .cache_node_status("available")
        .endpoint(
            Endpoint::builder()
                .address(format!("{cluster}.x1y2z3.{id}.use1.cache.amazonaws.com"))
                .port(port)
                .build(),
        )
        .parameter_group_status("in-sync")
        .customer_availability_zone("us-east-1a")
        .build()
}

fn redis(r: Redis<'_>) -> Described {
    let mut b = Described::builder()
        .cache_cluster_id(ID)
        .arn(ARN)
        .engine("redis")
        .engine_version("7.1.0")
        .cache_node_type(r.node_type)
        .cache_cluster_status(r.status)
        .num_cache_nodes(1)
        .preferred_availability_zone("us-east-1a")
        .preferred_maintenance_window("sun:05:00-sun:06:00")
        .cache_subnet_group_name("default")
        .cache_parameter_group(
            CacheParameterGroupStatus::builder()
                .cache_parameter_group_name("default.redis7")
                .parameter_apply_status("in-sync")
                .build(),
        )
        .snapshot_retention_limit(0)
        .snapshot_window("06:30-07:30")
        .auto_minor_version_upgrade(true)
        .transit_encryption_enabled(false)
        .at_rest_encryption_enabled(false)
        .auth_token_enabled(false);
    for (group, status) in r.groups {
        b = b.security_groups(
            SecurityGroupMembership::builder()
                .security_group_id(*group)
                .status(*status)
                .build(),
        );
    }
    if r.nodes {
        b = b.cache_nodes(node("0001", ID, 6379));
    }
    if let Some(pending) = r.pending_node_type {
        b = b.pending_modified_values(
            PendingModifiedValues::builder()
                .cache_node_type(pending)
                .build(),
        );
    }
    b.build()
}

/// What AWS reports for the Memcached `demo-cache` cluster with these node ids.
fn memcached(status: &str, nodes: &[&str]) -> Described {
    memcached_in(status, nodes, Some("Multiple"))
}

/// A Memcached cluster whose `PreferredAvailabilityZone` AWS reports as `zone`.
fn memcached_in(status: &str, nodes: &[&str], zone: Option<&str>) -> Described {
    let mut b = Described::builder()
        .cache_cluster_id(ID)
        .arn(ARN)
        .engine("memcached")
        .engine_version("1.6.22")
        .cache_node_type("cache.t3.micro")
        .cache_cluster_status(status)
        .num_cache_nodes(nodes.len() as i32)
        .set_preferred_availability_zone(zone.map(str::to_string))
        .preferred_maintenance_window("sun:05:00-sun:06:00")
        .cache_subnet_group_name("default")
        .cache_parameter_group(
            CacheParameterGroupStatus::builder()
                .cache_parameter_group_name("default.memcached1.6")
                .parameter_apply_status("in-sync")
                .build(),
        )
        .configuration_endpoint(
            Endpoint::builder()
                .address("demo-cache.x1y2z3.cfg.use1.cache.amazonaws.com")
                .port(11211)
                .build(),
        )
        .security_groups(
            SecurityGroupMembership::builder()
                .security_group_id("sg-0cache")
                .status("active")
                .build(),
        );
    for id in nodes {
        b = b.cache_nodes(node(id, ID, 11211));
    }
    b.build()
}

fn describe_rule(cluster: Described) -> Rule {
    mock!(Client::describe_cache_clusters)
        .match_requests(|r| {
            r.cache_cluster_id() == Some(ID) && r.show_cache_node_info() == Some(true)
        })
        .then_output(move || {
            DescribeCacheClustersOutput::builder()
                .cache_clusters(cluster.clone())
                .build()
        })
}

fn not_found() -> HttpResponse {
    elasticache_error(
        404,
        "CacheClusterNotFound",
        "CacheCluster not found: demo-cache",
    )
}

fn busy() -> HttpResponse {
    elasticache_error(
        400,
        "InvalidCacheClusterState",
        "Cache cluster demo-cache is not in available state.",
    )
}

fn not_found_rule() -> Rule {
    mock!(Client::describe_cache_clusters).then_http_response(not_found)
}

fn tags_rule(tags: Value) -> Rule {
    let list: Vec<Tag> = tags
        .as_object()
        .expect("tags")
        .iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v.as_str().unwrap_or_default())
                .build()
        })
        .collect();
    mock!(Client::list_tags_for_resource)
        .match_requests(|r| r.resource_name() == Some(ARN))
        .then_output(move || {
            ListTagsForResourceOutput::builder()
                .set_tag_list(Some(list.clone()))
                .build()
        })
}

/// Everything a mocked call received, in order.
type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn taken<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().expect("log lock").clone()
}

fn modify_rule(seen: &Log<ModifyCacheClusterInput>) -> Rule {
    let seen = seen.clone();
    mock!(Client::modify_cache_cluster).then_compute_output(move |input| {
        seen.lock().expect("log lock").push(input.clone());
        ModifyCacheClusterOutput::builder()
            .cache_cluster(redis(Redis {
                status: "modifying",
                ..Redis::default()
            }))
            .build()
    })
}

// ---------------------------------------------------------------------------------------------
// Create

#[tokio::test]
async fn create_sends_everything_with_tags_and_waits_from_creating_to_available() {
    let seen: Log<CreateCacheClusterInput> = log();
    let create = mock!(Client::create_cache_cluster).then_compute_output({
        let seen = seen.clone();
        move |input| {
            seen.lock().expect("log lock").push(input.clone());
            CreateCacheClusterOutput::builder()
                .cache_cluster(redis(Redis {
                    status: "creating",
                    groups: &[("sg-0cache", "adding")],
                    nodes: false,
                    ..Redis::default()
                }))
                .build()
        }
    });
    let creating = describe_rule(redis(Redis {
        status: "creating",
        nodes: false,
        ..Redis::default()
    }));
    let available = describe_rule(redis(Redis::default()));
    let cluster = cluster_type(client(&[&create, &creating, &available]));
    let progress = Arc::new(Recorded::default());

    let props = desired(json!({"parameter_group": "lab-redis7", "snapshot_retention_limit": 1}));
    let observed = cluster
        .create(&ctx_with(progress.clone()), &props)
        .await
        .expect("created");

    assert_eq!(
        (
            create.num_calls(),
            creating.num_calls(),
            available.num_calls()
        ),
        (1, 1, 1)
    );
    let input = &taken(&seen)[0];
    assert_eq!(input.cache_cluster_id(), Some(ID));
    assert_eq!(input.engine(), Some("redis"));
    assert_eq!(input.cache_node_type(), Some("cache.t3.micro"));
    assert_eq!(input.num_cache_nodes(), Some(1));
    assert_eq!(input.port(), Some(6379));
    assert_eq!(input.security_group_ids(), ["sg-0cache"]);
    assert_eq!(input.cache_parameter_group_name(), Some("lab-redis7"));
    assert_eq!(input.snapshot_retention_limit(), Some(1));
    assert_eq!(input.engine_version(), None, "left to AWS");
    assert_eq!(input.cache_subnet_group_name(), None, "left to AWS");
    assert_eq!(input.az_mode(), None, "memcached only");
    let tags: BTreeMap<&str, &str> = input
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    assert_eq!(tags.get("plinth:resource"), Some(&"cache"));
    assert_eq!(tags.len(), 3);

    assert!(
        progress.saw("waiting for cache cluster demo-cache to be available (creating)"),
        "{:?}",
        progress.messages()
    );
    assert_eq!(observed.id, ID);
    assert_eq!(
        observed.attrs,
        obj(json!({
            "cluster_id": ID,
            "arn": ARN,
            "address": "demo-cache.x1y2z3.0001.use1.cache.amazonaws.com",
            "port": 6379,
            "configuration_endpoint": null,
        }))
    );
    assert_eq!(observed.props["engine_version"], json!("7.1.0"));
    assert_eq!(observed.props["subnet_group"], json!("default"));
}

#[tokio::test]
async fn creating_an_existing_cluster_id_says_so_plainly() {
    let create = cluster_exists();
    // The cluster under that id is another stack's.
    let describe = describe_rule(redis(Redis::default()));
    let list = tags_rule(
        json!({"plinth:stack": "other", "plinth:workspace": "default", "plinth:resource": "cache"}),
    );
    let cluster = cluster_type(client(&[&create, &describe, &list]));
    let err = cluster
        .create(&ctx_with(Arc::default()), &desired(json!({})))
        .await
        .expect_err("refused");
    assert_eq!(err.kind, plinth_core::resource::ErrorKind::Invalid);
    assert!(err.message.contains("already exists"), "{err}");
    assert!(err.message.contains("demo-cache"), "{err}");
}

/// CreateCacheCluster's answer for an id in use, exactly as AWS sends it.
fn cluster_exists() -> Rule {
    mock!(Client::create_cache_cluster).then_http_response(|| {
        elasticache_error(
            400,
            "CacheClusterAlreadyExists",
            "Cache cluster already exists",
        )
    })
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_adopts_the_cluster_it_made_and_waits_for_it() {
    // The SDK sent CreateCacheCluster again after the first answer was lost: AWS says the
    // cluster exists, tagged (at creation) as this resource.
    let create = cluster_exists();
    let describe = describe_rule(redis(Redis {
        status: "creating",
        nodes: false,
        ..Redis::default()
    }));
    let list = tags_rule(owner_tags());
    let available = describe_rule(redis(Redis::default()));
    let cluster = cluster_type(client(&[&create, &describe, &list, &available]));
    let observed = cluster
        .create(&ctx_with(Arc::default()), &desired(json!({})))
        .await
        .expect("adopted and waited for");
    assert_eq!(observed.id, ID);
    assert_eq!(create.num_calls(), 1, "no second cluster is asked for");
    assert_eq!(available.num_calls(), 1, "waited until available");
}

// ---------------------------------------------------------------------------------------------
// Update in place and replacement

/// The properties `read` returns for the cluster `redis(Redis::default())` describes.
fn read_props(prior: &Props) -> Props {
    props_from_cluster(
        &redis(Redis::default()),
        &serde_json::from_value(owner_tags()).expect("tags"),
        prior,
    )
    .expect("maps")
}

/// What the planner hands `update`: the desired props with the computed ones AWS chose.
fn with_computed(mut desired: Props, actual: &Props) -> Props {
    for key in [
        "engine_version",
        "subnet_group",
        "security_group_ids",
        "parameter_group",
        "snapshot_window",
        "maintenance_window",
        "az_mode",
    ] {
        if !desired.contains_key(key) {
            if let Some(v) = actual.get(key) {
                desired.insert(key.into(), v.clone());
            }
        }
    }
    desired
}

#[tokio::test]
async fn a_node_type_change_goes_in_place_and_waits_through_modifying() {
    let before = read_props(&Props::new());
    let after = with_computed(desired(json!({"node_type": "cache.t3.small"})), &before);
    let cluster = cluster_type(client(&[]));
    assert!(cluster.replace_reasons(&before, &after).is_empty());

    let seen = log();
    let modify = modify_rule(&seen);
    let modifying = describe_rule(redis(Redis {
        status: "modifying",
        ..Redis::default()
    }));
    // Right after the call AWS may still say `available` with the change pending.
    let pending = describe_rule(redis(Redis {
        pending_node_type: Some("cache.t3.small"),
        ..Redis::default()
    }));
    let available = describe_rule(redis(Redis {
        node_type: "cache.t3.small",
        ..Redis::default()
    }));
    let cluster = cluster_type(client(&[&modify, &pending, &modifying, &available]));
    let progress = Arc::new(Recorded::default());

    let observed = cluster
        .update(&ctx_with(progress.clone()), ID, &before, &after)
        .await
        .expect("updated");

    let inputs = taken(&seen);
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].cache_cluster_id(), Some(ID));
    assert_eq!(inputs[0].apply_immediately(), Some(true));
    assert_eq!(inputs[0].cache_node_type(), Some("cache.t3.small"));
    assert!(
        inputs[0].security_group_ids().is_empty(),
        "unchanged: not sent"
    );
    assert_eq!(inputs[0].engine_version(), None);
    assert_eq!(inputs[0].num_cache_nodes(), None);
    assert_eq!(
        (
            pending.num_calls(),
            modifying.num_calls(),
            available.num_calls()
        ),
        (1, 1, 1)
    );
    assert!(progress.saw("(modifying)"), "{:?}", progress.messages());
    assert!(
        progress.saw("modifications pending"),
        "{:?}",
        progress.messages()
    );
    assert_eq!(observed.props["node_type"], json!("cache.t3.small"));
    assert_eq!(
        observed.props,
        with_computed(after.clone(), &observed.props)
    );
}

#[tokio::test]
async fn a_security_group_change_goes_in_place_and_waits_for_the_groups() {
    let before = read_props(&Props::new());
    let after = with_computed(
        desired(json!({"security_group_ids": ["sg-0new", "sg-0cache"]})),
        &before,
    );
    assert!(cluster_type(client(&[]))
        .replace_reasons(&before, &after)
        .is_empty());

    let seen = log();
    let modify = modify_rule(&seen);
    let attaching = describe_rule(redis(Redis {
        groups: &[("sg-0cache", "active"), ("sg-0new", "adding")],
        ..Redis::default()
    }));
    let available = describe_rule(redis(Redis {
        groups: &[("sg-0cache", "active"), ("sg-0new", "active")],
        ..Redis::default()
    }));
    let cluster = cluster_type(client(&[&modify, &attaching, &available]));
    let progress = Arc::new(Recorded::default());

    let observed = cluster
        .update(&ctx_with(progress.clone()), ID, &before, &after)
        .await
        .expect("updated");

    let inputs = taken(&seen);
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].apply_immediately(), Some(true));
    assert_eq!(inputs[0].security_group_ids(), ["sg-0cache", "sg-0new"]);
    assert_eq!(inputs[0].cache_node_type(), None, "unchanged: not sent");
    assert!(
        progress.saw("security group sg-0new adding"),
        "{:?}",
        progress.messages()
    );
    assert_eq!(
        observed.props["security_group_ids"],
        json!(["sg-0cache", "sg-0new"])
    );
}

#[tokio::test]
async fn invalid_cache_cluster_state_while_modifying_is_retried() {
    let before = read_props(&Props::new());
    let after = with_computed(desired(json!({"node_type": "cache.m7g.large"})), &before);
    let seen = log();
    let refused = mock!(Client::modify_cache_cluster).then_http_response(busy);
    let modify = modify_rule(&seen);
    let available = describe_rule(redis(Redis {
        node_type: "cache.m7g.large",
        ..Redis::default()
    }));
    let cluster = cluster_type(client(&[&refused, &modify, &available]));
    let progress = Arc::new(Recorded::default());

    cluster
        .update(&ctx_with(progress.clone()), ID, &before, &after)
        .await
        .expect("updated after the retry");

    assert_eq!((refused.num_calls(), modify.num_calls()), (1, 1));
    assert_eq!(taken(&seen)[0].cache_node_type(), Some("cache.m7g.large"));
    assert!(
        progress.saw("InvalidCacheClusterState — retrying"),
        "{:?}",
        progress.messages()
    );
}

#[tokio::test]
async fn a_tag_change_alone_tags_by_difference_without_modifying() {
    let before = read_props(&Props::new());
    let mut tags = owner_tags();
    tags["course"] = json!("aws-journey");
    let after = with_computed(desired(json!({"tags": tags})), &before);
    let mut before = before;
    before["tags"]["old"] = json!("gone");

    let added: Log<AddTagsToResourceInput> = log();
    let removed: Log<RemoveTagsFromResourceInput> = log();
    let describe = describe_rule(redis(Redis::default()));
    let add = mock!(Client::add_tags_to_resource).then_compute_output({
        let added = added.clone();
        move |input| {
            added.lock().expect("log lock").push(input.clone());
            AddTagsToResourceOutput::builder().build()
        }
    });
    let remove = mock!(Client::remove_tags_from_resource).then_compute_output({
        let removed = removed.clone();
        move |input| {
            removed.lock().expect("log lock").push(input.clone());
            RemoveTagsFromResourceOutput::builder().build()
        }
    });
    let cluster = cluster_type(client(&[&describe, &add, &remove]));

    let observed = cluster
        .update(&ctx_with(Arc::default()), ID, &before, &after)
        .await
        .expect("updated");

    let add = &taken(&added)[0];
    assert_eq!(add.resource_name(), Some(ARN));
    let pairs: Vec<(&str, &str)> = add
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    assert_eq!(pairs, [("course", "aws-journey")]);
    assert_eq!(taken(&removed)[0].tag_keys(), ["old"]);
    assert_eq!(observed.props["tags"]["course"], json!("aws-journey"));
}

#[test]
fn a_cluster_id_change_replaces_while_node_type_and_groups_do_not() {
    let cluster = cluster_type(client(&[]));
    let before = read_props(&Props::new());
    let reasons =
        |extra: Value| cluster.replace_reasons(&before, &with_computed(desired(extra), &before));

    assert_eq!(
        reasons(json!({"cluster_id": "demo-cache-2"})),
        ["cluster_id"]
    );
    assert_eq!(reasons(json!({"engine": "valkey"})), ["engine"]);
    assert_eq!(reasons(json!({"port": 6380})), ["port"]);
    assert_eq!(
        reasons(json!({"subnet_group": "lab-subnets"})),
        ["subnet_group"]
    );
    assert!(reasons(json!({"node_type": "cache.r7g.large"})).is_empty());
    assert!(reasons(json!({"security_group_ids": ["sg-0other"]})).is_empty());
    assert!(reasons(json!({"parameter_group": "lab-redis7"})).is_empty());
    assert!(reasons(json!({"snapshot_retention_limit": 7})).is_empty());
    assert!(
        reasons(json!({"engine_version": "7.1"})).is_empty(),
        "the running 7.1.0"
    );
    assert!(
        reasons(json!({"engine_version": "7.2"})).is_empty(),
        "an upgrade"
    );
    assert_eq!(
        reasons(json!({"engine_version": "6.2"})),
        ["engine_version"],
        "AWS never downgrades"
    );
}

// ---------------------------------------------------------------------------------------------
// Memcached nodes

fn memcached_props(nodes: i64) -> Props {
    normalized(json!({
        "cluster_id": ID,
        "engine": "memcached",
        "node_type": "cache.t3.micro",
        "num_nodes": nodes,
        "security_group_ids": ["sg-0cache"],
        "az_mode": "cross_az",
        "tags": owner_tags(),
    }))
}

#[test]
fn a_cross_az_memcached_cluster_aws_reports_in_one_zone_or_none_is_never_replaced() {
    let rt = cluster_type(client(&[]));
    let tags: BTreeMap<String, String> = serde_json::from_value(owner_tags()).expect("tags");
    let applied = memcached_props(2);
    // Both nodes landed in one zone, or the cluster is still creating: AWS says a zone
    // name, or nothing, and never the mode.
    for zone in [Some("us-east-1a"), None] {
        let described = memcached_in("available", &["0001", "0002"], zone);
        let read = props_from_cluster(&described, &tags, &applied).expect("maps");
        assert_eq!(read["az_mode"], json!("cross_az"), "{zone:?}");
        let desired = with_computed(applied.clone(), &read);
        assert_eq!(rt.replace_reasons(&read, &desired), Vec::<String>::new());
    }
    // Imported (nothing applied): `Multiple` is cross-AZ, a zone name single-AZ.
    let none = Props::new();
    let multiple = memcached_in("available", &["0001"], Some("Multiple"));
    let read = props_from_cluster(&multiple, &tags, &none).expect("maps");
    assert_eq!(read["az_mode"], json!("cross_az"));
    let one = memcached_in("available", &["0001"], Some("us-east-1b"));
    let read = props_from_cluster(&one, &tags, &none).expect("maps");
    assert_eq!(read["az_mode"], json!("single_az"));
    // A single-AZ cluster AWS reports across zones is a real difference.
    let single = normalized(json!({
        "cluster_id": ID, "engine": "memcached", "node_type": "cache.t3.micro",
        "num_nodes": 2, "security_group_ids": ["sg-0cache"], "az_mode": "single_az",
        "tags": owner_tags(),
    }));
    let read = props_from_cluster(&multiple, &tags, &single).expect("maps");
    assert_eq!(read["az_mode"], json!("cross_az"));
}

#[tokio::test]
async fn shrinking_memcached_from_3_to_2_nodes_removes_node_0003() {
    let before = props_from_cluster(
        &memcached("available", &["0001", "0002", "0003"]),
        &serde_json::from_value(owner_tags()).expect("tags"),
        &Props::new(),
    )
    .expect("maps");
    assert_eq!(before["num_nodes"], json!(3));
    let after = with_computed(memcached_props(2), &before);
    let cluster = cluster_type(client(&[]));
    assert!(cluster.replace_reasons(&before, &after).is_empty());

    let seen = log();
    let current = describe_rule(memcached("available", &["0001", "0002", "0003"]));
    let modify = modify_rule(&seen);
    let modifying = describe_rule(memcached("modifying", &["0001", "0002", "0003"]));
    let available = describe_rule(memcached("available", &["0001", "0002"]));
    let cluster = cluster_type(client(&[&current, &modify, &modifying, &available]));
    let progress = Arc::new(Recorded::default());

    let observed = cluster
        .update(&ctx_with(progress.clone()), ID, &before, &after)
        .await
        .expect("updated");

    let inputs = taken(&seen);
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].num_cache_nodes(), Some(2));
    assert_eq!(inputs[0].cache_node_ids_to_remove(), ["0003"]);
    assert_eq!(inputs[0].apply_immediately(), Some(true));
    assert_eq!(inputs[0].cache_node_type(), None);
    assert!(progress.saw("(modifying)"), "{:?}", progress.messages());
    assert_eq!(observed.props["num_nodes"], json!(2));
    assert_eq!(
        observed.attrs["configuration_endpoint"],
        json!("demo-cache.x1y2z3.cfg.use1.cache.amazonaws.com:11211")
    );
    assert_eq!(
        observed.attrs["address"],
        json!("demo-cache.x1y2z3.cfg.use1.cache.amazonaws.com")
    );
}

#[tokio::test]
async fn growing_memcached_adds_nodes_without_naming_any() {
    let before = props_from_cluster(
        &memcached("available", &["0001", "0002"]),
        &serde_json::from_value(owner_tags()).expect("tags"),
        &Props::new(),
    )
    .expect("maps");
    let after = with_computed(memcached_props(4), &before);
    let seen = log();
    let current = describe_rule(memcached("available", &["0001", "0002"]));
    let modify = modify_rule(&seen);
    let available = describe_rule(memcached("available", &["0001", "0002", "0003", "0004"]));
    let cluster = cluster_type(client(&[&current, &modify, &available]));

    cluster
        .update(&ctx_with(Arc::default()), ID, &before, &after)
        .await
        .expect("updated");

    let inputs = taken(&seen);
    assert_eq!(inputs[0].num_cache_nodes(), Some(4));
    assert!(inputs[0].cache_node_ids_to_remove().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Delete

#[tokio::test]
async fn delete_waits_from_deleting_until_cache_cluster_not_found() {
    let delete = mock!(Client::delete_cache_cluster)
        .match_requests(|r| r.cache_cluster_id() == Some(ID))
        .then_output(|| {
            DeleteCacheClusterOutput::builder()
                .cache_cluster(redis(Redis {
                    status: "deleting",
                    ..Redis::default()
                }))
                .build()
        });
    let deleting = describe_rule(redis(Redis {
        status: "deleting",
        ..Redis::default()
    }));
    let gone = not_found_rule();
    let cluster = cluster_type(client(&[&delete, &deleting, &gone]));
    let progress = Arc::new(Recorded::default());
    let ctx = ctx_with(progress.clone());

    cluster
        .delete(&ctx, ID, &desired(json!({})))
        .await
        .expect("deleted");

    assert_eq!(
        (delete.num_calls(), deleting.num_calls(), gone.num_calls()),
        (1, 1, 1)
    );
    assert!(
        progress.saw("waiting for cache cluster demo-cache to be deleted (deleting)"),
        "{:?}",
        progress.messages()
    );
    assert_eq!(ctx.pending_deletion(), None);
}

#[tokio::test]
async fn delete_without_waiting_reports_pending_after_one_call() {
    let delete = mock!(Client::delete_cache_cluster).then_output(|| {
        DeleteCacheClusterOutput::builder()
            .cache_cluster(redis(Redis {
                status: "deleting",
                ..Redis::default()
            }))
            .build()
    });
    let cluster = cluster_type(client(&[&delete]));
    let ctx = ctx_with(Arc::default()).without_waiting_for_deletion();

    cluster
        .delete(&ctx, ID, &desired(json!({})))
        .await
        .expect("accepted");

    assert_eq!(delete.num_calls(), 1);
    assert_eq!(
        ctx.pending_deletion().as_deref(),
        Some("AWS is deleting the cluster (status deleting)")
    );
}

#[tokio::test]
async fn delete_retries_while_the_cluster_is_snapshotting() {
    let refused = mock!(Client::delete_cache_cluster).then_http_response(busy);
    let snapshotting = describe_rule(redis(Redis {
        status: "snapshotting",
        ..Redis::default()
    }));
    let delete = mock!(Client::delete_cache_cluster).then_output(|| {
        DeleteCacheClusterOutput::builder()
            .cache_cluster(redis(Redis {
                status: "deleting",
                ..Redis::default()
            }))
            .build()
    });
    let cluster = cluster_type(client(&[&refused, &snapshotting, &delete]));
    let progress = Arc::new(Recorded::default());
    let ctx = ctx_with(progress.clone()).without_waiting_for_deletion();

    cluster
        .delete(&ctx, ID, &desired(json!({})))
        .await
        .expect("accepted");

    assert_eq!((refused.num_calls(), delete.num_calls()), (1, 1));
    assert!(progress.saw("InvalidCacheClusterState — retrying"));
    assert!(ctx.pending_deletion().is_some());
}

#[tokio::test]
async fn deleting_a_cluster_already_deleting_or_gone_makes_no_more_calls() {
    // Already deleting (an earlier `destroy --no-wait`): AWS refuses a second delete.
    let refused = mock!(Client::delete_cache_cluster).then_http_response(busy);
    let deleting = describe_rule(redis(Redis {
        status: "deleting",
        ..Redis::default()
    }));
    let cluster = cluster_type(client(&[&refused, &deleting]));
    let ctx = ctx_with(Arc::default()).without_waiting_for_deletion();
    cluster
        .delete(&ctx, ID, &desired(json!({})))
        .await
        .expect("accepted earlier");
    assert_eq!((refused.num_calls(), deleting.num_calls()), (1, 1));
    assert!(ctx.pending_deletion().is_some());

    let gone = mock!(Client::delete_cache_cluster).then_http_response(not_found);
    let cluster = cluster_type(client(&[&gone]));
    let ctx = ctx_with(Arc::default());
    cluster
        .delete(&ctx, ID, &desired(json!({})))
        .await
        .expect("gone is success");
    assert_eq!(gone.num_calls(), 1);
    assert_eq!(ctx.pending_deletion(), None);
}

// ---------------------------------------------------------------------------------------------
// Read and find

#[tokio::test]
async fn read_of_a_cluster_that_is_not_found_or_deleting_is_none() {
    let gone = not_found_rule();
    let cluster = cluster_type(client(&[&gone]));
    let read = cluster
        .read(&ctx_with(Arc::default()), ID, &Props::new())
        .await
        .expect("read");
    assert!(read.is_none());
    assert_eq!(gone.num_calls(), 1);

    let deleting = describe_rule(redis(Redis {
        status: "deleting",
        ..Redis::default()
    }));
    let cluster = cluster_type(client(&[&deleting]));
    let read = cluster
        .read(&ctx_with(Arc::default()), ID, &Props::new())
        .await
        .expect("read");
    assert!(read.is_none(), "on its way out");
}

/// A DescribeCacheClusters answer as AWS sends it (query protocol, XML).
fn describe_xml() -> HttpResponse {
    let body = r#"<DescribeCacheClustersResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/">
  <DescribeCacheClustersResult>
    <CacheClusters>
      <CacheCluster>
        <CacheClusterId>demo-cache</CacheClusterId>
        <ClientDownloadLandingPage>https://console.aws.amazon.com/elasticache/home#client-download:</ClientDownloadLandingPage>
        <CacheNodeType>cache.t3.micro</CacheNodeType>
        <Engine>redis</Engine>
        <EngineVersion>7.1.0</EngineVersion>
        <CacheClusterStatus>available</CacheClusterStatus>
        <NumCacheNodes>1</NumCacheNodes>
        <PreferredAvailabilityZone>us-east-1a</PreferredAvailabilityZone>
        <CacheClusterCreateTime>2024-05-02T09:12:41.123Z</CacheClusterCreateTime>
        <PreferredMaintenanceWindow>sun:05:00-sun:06:00</PreferredMaintenanceWindow>
        <PendingModifiedValues/>
        <CacheSecurityGroups/>
        <CacheParameterGroup>
          <CacheParameterGroupName>default.redis7</CacheParameterGroupName>
          <ParameterApplyStatus>in-sync</ParameterApplyStatus>
          <CacheNodeIdsToReboot/>
        </CacheParameterGroup>
        <CacheSubnetGroupName>default</CacheSubnetGroupName>
        <CacheNodes>
          <CacheNode>
            <CacheNodeId>0001</CacheNodeId>
            <CacheNodeStatus>available</CacheNodeStatus>
            <CacheNodeCreateTime>2024-05-02T09:12:41.123Z</CacheNodeCreateTime>
            <Endpoint>
              <Address>demo-cache.x1y2z3.0001.use1.cache.amazonaws.com</Address>
              <Port>6379</Port>
            </Endpoint>
            <ParameterGroupStatus>in-sync</ParameterGroupStatus>
            <CustomerAvailabilityZone>us-east-1a</CustomerAvailabilityZone>
          </CacheNode>
        </CacheNodes>
        <AutoMinorVersionUpgrade>true</AutoMinorVersionUpgrade>
        <SecurityGroups>
          <member>
            <SecurityGroupId>sg-0cache</SecurityGroupId>
            <Status>active</Status>
          </member>
        </SecurityGroups>
        <SnapshotRetentionLimit>0</SnapshotRetentionLimit>
        <SnapshotWindow>06:30-07:30</SnapshotWindow>
        <AuthTokenEnabled>false</AuthTokenEnabled>
        <TransitEncryptionEnabled>false</TransitEncryptionEnabled>
        <AtRestEncryptionEnabled>false</AtRestEncryptionEnabled>
        <ARN>arn:aws:elasticache:us-east-1:123456789012:cluster:demo-cache</ARN>
        <ReplicationGroupLogDeliveryEnabled>false</ReplicationGroupLogDeliveryEnabled>
        <LogDeliveryConfigurations/>
        <NetworkType>ipv4</NetworkType>
        <IpDiscovery>ipv4</IpDiscovery>
      </CacheCluster>
    </CacheClusters>
  </DescribeCacheClustersResult>
  <ResponseMetadata>
    <RequestId>0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f</RequestId>
  </ResponseMetadata>
</DescribeCacheClustersResponse>"#;
    let mut response = HttpResponse::new(
        StatusCode::try_from(200).expect("status"),
        SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", "text/xml");
    response
}

#[tokio::test]
async fn read_of_aws_xml_equals_the_normalized_stack_and_keeps_the_written_version() {
    let describe = mock!(Client::describe_cache_clusters).then_http_response(describe_xml);
    let mut tags = owner_tags();
    tags["aws:cloudformation:stack-name"] = json!("not ours");
    let list = tags_rule(tags);
    let cluster = cluster_type(client(&[&describe, &list]));
    let prior = desired(json!({"engine_version": "7.1"}));

    let observed = cluster
        .read(&ctx_with(Arc::default()), ID, &prior)
        .await
        .expect("read")
        .expect("exists");

    // Equal to the stack once the planner fills what the stack leaves to AWS.
    assert_eq!(
        observed.props,
        with_computed(prior.clone(), &observed.props)
    );
    assert_eq!(
        observed.props["engine_version"],
        json!("7.1"),
        "as written, not 7.1.0"
    );
    assert_eq!(observed.props["tags"], owner_tags(), "aws: tags left out");
    assert_eq!(
        observed.props.keys().collect::<Vec<_>>(),
        [
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
            "tags"
        ]
    );
    assert_eq!(
        observed.attrs["address"],
        json!("demo-cache.x1y2z3.0001.use1.cache.amazonaws.com")
    );
    assert_eq!(observed.attrs["port"], json!(6379));
    assert_eq!(observed.attrs["configuration_endpoint"], Value::Null);
}

#[tokio::test]
async fn find_adopts_a_cluster_only_with_our_plinth_tags() {
    let describe = describe_rule(redis(Redis::default()));
    let list = tags_rule(owner_tags());
    let cluster = cluster_type(client(&[&describe, &list]));
    let found = cluster
        .find(&ctx_with(Arc::default()), &desired(json!({})))
        .await
        .expect("find");
    assert_eq!(found.map(|o| o.id).as_deref(), Some(ID));

    let describe = describe_rule(redis(Redis::default()));
    let list = tags_rule(
        json!({"plinth:stack": "other", "plinth:workspace": "default", "plinth:resource": "cache"}),
    );
    let cluster = cluster_type(client(&[&describe, &list]));
    let found = cluster
        .find(&ctx_with(Arc::default()), &desired(json!({})))
        .await
        .expect("find");
    assert!(found.is_none(), "another stack's cluster is not adopted");
}

// ---------------------------------------------------------------------------------------------
// Canonical form

#[test]
fn normalize_fills_engine_defaults_sorts_groups_and_is_idempotent() {
    let redis = desired(json!({
        "security_group_ids": ["sg-0b", "sg-0a", "sg-0b"],
        "maintenance_window": "Sun:05:00-Sun:06:00",
    }));
    assert_eq!(
        Value::Object(redis.clone()),
        json!({
            "cluster_id": ID,
            "engine": "redis",
            "node_type": "cache.t3.micro",
            "num_nodes": 1,
            "port": 6379,
            "security_group_ids": ["sg-0a", "sg-0b"],
            "snapshot_retention_limit": 0,
            "maintenance_window": "sun:05:00-sun:06:00",
            "tags": owner_tags(),
        })
    );
    assert_eq!(normalized(Value::Object(redis.clone())), redis);

    let memcached = memcached_props(2);
    assert_eq!(memcached["port"], json!(11211));
    assert!(!memcached.contains_key("snapshot_retention_limit"));
    assert!(!normalized(json!({"cluster_id": ID, "engine": "redis", "node_type": "cache.t3.micro", "security_group_ids": []}))
        .contains_key("security_group_ids"));
}

#[test]
fn read_of_memcached_equals_its_normalized_stack() {
    let observed = props_from_cluster(
        &memcached("available", &["0001", "0002"]),
        &serde_json::from_value(owner_tags()).expect("tags"),
        &Props::new(),
    )
    .expect("maps");
    let stack = memcached_props(2);
    assert_eq!(observed, with_computed(stack, &observed));
    assert_eq!(observed["az_mode"], json!("cross_az"));
    assert!(!observed.contains_key("snapshot_retention_limit"));
}

// ---------------------------------------------------------------------------------------------
// Checks and lint

fn issues(value: Value) -> Vec<(String, String)> {
    cluster_type(client(&[]))
        .check(&normalized(value))
        .into_iter()
        .map(|i| (path_to_string(&i.path), i.message))
        .collect()
}

fn issue_at<'a>(found: &'a [(String, String)], path: &str) -> &'a str {
    found
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, m)| m.as_str())
        .unwrap_or_else(|| panic!("no issue at {path}: {found:?}"))
}

#[test]
fn check_reports_engine_and_node_type_mismatches_at_their_paths() {
    let base = json!({"cluster_id": ID, "engine": "redis", "node_type": "cache.t3.micro"});
    assert!(issues(base.clone()).is_empty());

    let mut redis = base.clone();
    redis["num_nodes"] = json!(2);
    let found = issues(redis);
    assert!(issue_at(&found, "num_nodes").contains("elasticache.replication_group"));

    let found = issues(json!({
        "cluster_id": ID, "engine": "memcached", "node_type": "cache.t3.micro",
        "snapshot_retention_limit": 3, "snapshot_window": "05:00-06:00",
    }));
    assert!(issue_at(&found, "snapshot_retention_limit").contains("memcached"));
    assert!(issue_at(&found, "snapshot_window").contains("memcached"));

    let mut port = base.clone();
    port["port"] = json!(70000);
    assert!(issue_at(&issues(port), "port").contains("1 to 65535"));

    let mut node = base.clone();
    node["node_type"] = json!("cache.x9.large");
    assert!(issue_at(&issues(node), "node_type").contains("x9"));
    let mut node = base.clone();
    node["node_type"] = json!("t3.micro");
    assert!(issue_at(&issues(node), "node_type").contains("cache.<family>.<size>"));

    let mut id = base.clone();
    id["cluster_id"] = json!("Demo--cache-");
    issue_at(&issues(id), "cluster_id");
    let mut id = base.clone();
    id["cluster_id"] = json!("a".repeat(41));
    issue_at(&issues(id), "cluster_id");

    let mut az = base.clone();
    az["az_mode"] = json!("cross_az");
    assert!(issue_at(&issues(az), "az_mode").contains("memcached"));
    let found = issues(json!({
        "cluster_id": ID, "engine": "memcached", "node_type": "cache.t3.micro", "az_mode": "cross_az",
    }));
    assert!(issue_at(&found, "az_mode").contains("2 or more"));

    let mut window = base.clone();
    window["maintenance_window"] = json!("sunday 5am");
    issue_at(&issues(window), "maintenance_window");

    // Values known only after apply are not judged.
    let mut unknown = base;
    unknown["node_type"] = json!(plinth_core::value::UNKNOWN);
    unknown["cluster_id"] = json!(format!("{}-cache", plinth_core::value::UNKNOWN));
    assert!(issues(unknown).is_empty());
}

fn group_props(ingress: Value) -> Props {
    let mut props = obj(json!({"name": "lab-cache", "ingress": ingress}));
    SecurityGroup::new(mocked_aws())
        .normalize(&mut props, &NormalizeContext::default())
        .expect("normalizes");
    props
}

fn linked(ingress: Value) -> Vec<Linked> {
    vec![Linked {
        prop: "security_group_ids".into(),
        path: vec![plinth_core::value::PathSeg::Key(
            "security_group_ids".into(),
        )],
        resource: "cache_sg".into(),
        type_name: "ec2.security_group".into(),
        props: group_props(ingress),
    }]
}

#[test]
fn lint_warns_when_a_group_admits_the_port_from_anywhere() {
    let cluster = cluster_type(client(&[]));
    let props = desired(json!({}));

    let open = cluster.lint(
        &props,
        &linked(json!([{"protocol": "tcp", "ports": 6379, "cidr": "0.0.0.0/0"}])),
    );
    assert_eq!(open.len(), 1);
    assert_eq!(path_to_string(&open[0].path), "security_group_ids");
    assert!(
        open[0].message.contains("`cache_sg`"),
        "{}",
        open[0].message
    );
    assert!(
        open[0].message.contains("port 6379 from 0.0.0.0/0"),
        "{}",
        open[0].message
    );

    let range_v6 = cluster.lint(
        &props,
        &linked(json!([{"protocol": "tcp", "ports": "6000-7000", "cidr": "::/0"}])),
    );
    assert!(range_v6[0].message.contains("::/0"), "{range_v6:?}");
    let all = cluster.lint(
        &props,
        &linked(json!([{"protocol": "all", "cidr": "0.0.0.0/0"}])),
    );
    assert_eq!(all.len(), 1);

    let from_app = linked(json!([{"protocol": "tcp", "ports": 6379, "security_group": "sg-0app"}]));
    assert!(cluster.lint(&props, &from_app).is_empty());
    let other_port = linked(json!([{"protocol": "tcp", "ports": 22, "cidr": "0.0.0.0/0"}]));
    assert!(cluster.lint(&props, &other_port).is_empty());
    let private = linked(json!([{"protocol": "tcp", "ports": 6379, "cidr": "10.0.0.0/16"}]));
    assert!(cluster.lint(&props, &private).is_empty());

    // Memcached's port is 11211: 6379 open to the world is not this cache's problem.
    let memcached = memcached_props(2);
    assert!(cluster
        .lint(
            &memcached,
            &linked(json!([{"protocol": "tcp", "ports": 6379, "cidr": "0.0.0.0/0"}]))
        )
        .is_empty());
    assert_eq!(
        cluster
            .lint(
                &memcached,
                &linked(json!([{"protocol": "tcp", "ports": 11211, "cidr": "0.0.0.0/0"}]))
            )
            .len(),
        1
    );
}
