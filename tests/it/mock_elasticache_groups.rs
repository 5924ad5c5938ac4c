//! `elasticache.replication_group`, `elasticache.subnet_group` and
//! `elasticache.parameter_group` against replayed ElastiCache (and EC2) responses: what the
//! emulator cannot show (replication groups that take time, ModifyReplicationGroup and the
//! replica-count calls at all, `InvalidReplicationGroupState` while busy, the AUTH token's
//! rotation, parameter and subnet group changes, `CacheSubnetGroupInUse`), plus the checks and
//! the canonical form both sides of a diff must share.
//!
//! Clients run with the SDK's own retries off and the rules in `RuleMode::Sequential`, so every
//! mocked response is exactly one call and the order of calls is pinned.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput;
use aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsOutput;
use aws_sdk_ec2::types::{Subnet as Ec2Subnet, Vpc};
use aws_sdk_elasticache::config::retry::RetryConfig;
use aws_sdk_elasticache::operation::add_tags_to_resource::{
    AddTagsToResourceInput, AddTagsToResourceOutput,
};
use aws_sdk_elasticache::operation::create_cache_parameter_group::{
    CreateCacheParameterGroupInput, CreateCacheParameterGroupOutput,
};
use aws_sdk_elasticache::operation::create_cache_subnet_group::{
    CreateCacheSubnetGroupInput, CreateCacheSubnetGroupOutput,
};
use aws_sdk_elasticache::operation::create_replication_group::{
    CreateReplicationGroupInput, CreateReplicationGroupOutput,
};
use aws_sdk_elasticache::operation::decrease_replica_count::{
    DecreaseReplicaCountInput, DecreaseReplicaCountOutput,
};
use aws_sdk_elasticache::operation::delete_cache_parameter_group::DeleteCacheParameterGroupOutput;
use aws_sdk_elasticache::operation::delete_cache_subnet_group::DeleteCacheSubnetGroupOutput;
use aws_sdk_elasticache::operation::delete_replication_group::{
    DeleteReplicationGroupInput, DeleteReplicationGroupOutput,
};
use aws_sdk_elasticache::operation::describe_cache_clusters::DescribeCacheClustersOutput;
use aws_sdk_elasticache::operation::describe_cache_parameter_groups::DescribeCacheParameterGroupsOutput;
use aws_sdk_elasticache::operation::describe_cache_parameters::DescribeCacheParametersOutput;
use aws_sdk_elasticache::operation::describe_cache_subnet_groups::DescribeCacheSubnetGroupsOutput;
use aws_sdk_elasticache::operation::describe_replication_groups::DescribeReplicationGroupsOutput;
use aws_sdk_elasticache::operation::increase_replica_count::{
    IncreaseReplicaCountInput, IncreaseReplicaCountOutput,
};
use aws_sdk_elasticache::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_elasticache::operation::modify_cache_parameter_group::{
    ModifyCacheParameterGroupInput, ModifyCacheParameterGroupOutput,
};
use aws_sdk_elasticache::operation::modify_cache_subnet_group::{
    ModifyCacheSubnetGroupInput, ModifyCacheSubnetGroupOutput,
};
use aws_sdk_elasticache::operation::modify_replication_group::{
    ModifyReplicationGroupInput, ModifyReplicationGroupOutput,
};
use aws_sdk_elasticache::operation::remove_tags_from_resource::{
    RemoveTagsFromResourceInput, RemoveTagsFromResourceOutput,
};
use aws_sdk_elasticache::operation::reset_cache_parameter_group::{
    ResetCacheParameterGroupInput, ResetCacheParameterGroupOutput,
};
use aws_sdk_elasticache::types::{
    AuthTokenUpdateStrategyType, AutomaticFailoverStatus, CacheCluster, CacheParameterGroup,
    CacheParameterGroupStatus, CacheSubnetGroup, ClusterMode, Endpoint, MultiAzStatus, NodeGroup,
    NodeGroupMember, Parameter, ReplicationGroup as Group, SecurityGroupMembership, Subnet, Tag,
};
use aws_sdk_elasticache::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use plinth_aws::resources::elasticache_parameter_group::ParameterGroup;
use plinth_aws::resources::elasticache_replication_group::ReplicationGroup;
use plinth_aws::resources::elasticache_subnet_group::SubnetGroup;
use plinth_aws::Aws;
use plinth_core::plan::planner::fill_computed;
use plinth_core::resource::{
    ErrorKind, Linked, NormalizeContext, OpContext, Progress, ResourceType,
};
use plinth_core::value::{path_to_string, Props, UNKNOWN};
use serde_json::{json, Value};

use crate::mock_support::{elasticache_error, mocked_aws, REGION};

const RG: &str = "demo-rg";
const RG_ARN: &str = "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:demo-rg";
const TOKEN: &str = "Sup3r-s3cret-AUTH-token-0001";
const NEW_TOKEN: &str = "An0ther-s3cret-AUTH-token-0002";
const SUBNETS: &str = "cache-subnets";
const SUBNETS_ARN: &str = "arn:aws:elasticache:us-east-1:123456789012:subnetgroup:cache-subnets";
const PARAMS: &str = "sessions-redis7";
const PARAMS_ARN: &str =
    "arn:aws:elasticache:us-east-1:123456789012:parametergroup:sessions-redis7";

// ---------------------------------------------------------------------------------------------
// Plumbing

fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_elasticache, RuleMode::Sequential, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

fn ec2_client(rules: &[&Rule]) -> aws_sdk_ec2::Client {
    mock_client!(aws_sdk_ec2, RuleMode::Sequential, rules, |c| c
        .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled()))
}

fn aws_with(rules: &[&Rule]) -> Arc<Aws> {
    let aws = mocked_aws();
    aws.insert_elasticache(REGION, client(rules));
    aws
}

fn group_type(rules: &[&Rule]) -> ReplicationGroup {
    ReplicationGroup::new(aws_with(rules))
}

fn subnet_type(rules: &[&Rule]) -> SubnetGroup {
    SubnetGroup::new(aws_with(rules))
}

fn parameter_type(rules: &[&Rule]) -> ParameterGroup {
    ParameterGroup::new(aws_with(rules))
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

fn ctx() -> OpContext {
    OpContext::new(REGION, "cache")
}

fn obj(value: Value) -> Props {
    value.as_object().cloned().expect("an object")
}

/// Everything a mocked call received, in order.
type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn taken<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().expect("log lock").clone()
}

fn owner_tags() -> Value {
    json!({"plinth:stack": "lab", "plinth:workspace": "default", "plinth:resource": "cache"})
}

/// A tag map as the SDK's tag list, in key order (as plinth sends it).
fn aws_tags(tags: &Value) -> Vec<Tag> {
    let sorted: std::collections::BTreeMap<&String, &Value> =
        tags.as_object().expect("tags").iter().collect();
    sorted
        .into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v.as_str().unwrap_or(""))
                .build()
        })
        .collect()
}

fn tags_rule(tags: Value) -> Rule {
    mock!(Client::list_tags_for_resource).then_output(move || {
        ListTagsForResourceOutput::builder()
            .set_tag_list(Some(aws_tags(&tags)))
            .build()
    })
}

fn not_found(code: &str, message: &str) -> HttpResponse {
    elasticache_error(404, code, message)
}

fn rg_not_found() -> HttpResponse {
    not_found(
        "ReplicationGroupNotFoundFault",
        "ReplicationGroup demo-rg not found.",
    )
}

fn rg_busy() -> HttpResponse {
    elasticache_error(
        400,
        "InvalidReplicationGroupState",
        "Replication group demo-rg is not in available state.",
    )
}

/// Desired properties as the core hands them over: tags merged, normalized.
fn normalized_with(rt: &dyn ResourceType, value: Value) -> Props {
    let mut props = obj(value);
    rt.normalize(&mut props, &NormalizeContext::default())
        .expect("normalizes");
    props
}

/// Desired props with what the stack leaves to AWS filled from `actual`, as the planner does.
fn with_computed(rt: &dyn ResourceType, mut desired: Props, actual: &Props) -> Props {
    fill_computed(rt.schema(), &mut desired, actual);
    desired
}

fn issues(rt: &dyn ResourceType, value: Value) -> Vec<(String, String)> {
    rt.check(&obj(value))
        .iter()
        .map(|i| (path_to_string(&i.path), i.message.clone()))
        .collect()
}

fn assert_issues(found: &[(String, String)], expected: &[(&str, &str)]) {
    assert_eq!(found.len(), expected.len(), "issues: {found:#?}");
    for (path, text) in expected {
        assert!(
            found.iter().any(|(p, m)| p == path && m.contains(text)),
            "no issue at {path} containing {text:?} in {found:#?}"
        );
    }
}

/// Captures every log line plinth writes while alive (this thread, current-thread runtime).
struct Logs<G> {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: G,
}

fn capture_logs() -> Logs<impl Sized> {
    use tracing_subscriber::util::SubscriberInitExt;
    let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = buffer.clone();
    let guard = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("plinth_aws=trace"))
        .with_ansi(false)
        .with_writer(move || Sink(sink.clone()))
        .finish()
        .set_default();
    Logs {
        buffer,
        _guard: guard,
    }
}

impl<G> Logs<G> {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().expect("lock")).into_owned()
    }
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// elasticache.replication_group: fixtures

fn rg_type_offline() -> ReplicationGroup {
    group_type(&[])
}

/// The `demo-rg` group a stack declares: a primary and one replica, encrypted, with a token.
fn rg_desired(extra: Value) -> Props {
    let mut props = obj(json!({
        "replication_group_id": RG,
        "description": "sessions",
        "engine_version": "7.1",
        "node_type": "cache.t4g.small",
        "num_cache_clusters": 2,
        "multi_az": true,
        "subnet_group": SUBNETS,
        "security_group_ids": ["sg-0b", "sg-0a"],
        "transit_encryption": true,
        "at_rest_encryption": true,
        "auth_token": TOKEN,
        "tags": owner_tags(),
    }));
    props.extend(obj(extra));
    props.retain(|_, v| !v.is_null());
    normalized_with(&rg_type_offline(), Value::Object(props))
}

/// What AWS reports for `demo-rg` (cluster mode disabled) with `nodes` members.
struct Described<'a> {
    status: &'a str,
    nodes: usize,
    node_type: &'a str,
    token: bool,
}

impl Default for Described<'_> {
    fn default() -> Self {
        Described {
            status: "available",
            nodes: 2,
            node_type: "cache.t4g.small",
            token: true,
        }
    }
}

fn endpoint(address: &str) -> Endpoint {
    Endpoint::builder().address(address).port(6379).build()
}

fn rg(d: Described<'_>) -> Group {
    let mut shard = NodeGroup::builder()
        .node_group_id("0001")
        .status(d.status)
        .primary_endpoint(endpoint("master.demo-rg.x1y2z3.use1.cache.amazonaws.com"))
        .reader_endpoint(endpoint("replica.demo-rg.x1y2z3.use1.cache.amazonaws.com"));
    let mut group = Group::builder()
        .replication_group_id(RG)
        .description("sessions")
        .status(d.status)
        .automatic_failover(if d.nodes > 1 {
            AutomaticFailoverStatus::Enabled
        } else {
            AutomaticFailoverStatus::Disabled
        })
        .multi_az(if d.nodes > 1 {
            MultiAzStatus::Enabled
        } else {
            MultiAzStatus::Disabled
        })
        .snapshot_retention_limit(0)
        .snapshot_window("03:00-04:00")
        .cluster_enabled(false)
        .cache_node_type(d.node_type)
        .auth_token_enabled(d.token)
        .transit_encryption_enabled(true)
        .at_rest_encryption_enabled(true)
        .arn(RG_ARN)
        .engine("redis");
    for n in 1..=d.nodes {
        let id = format!("demo-rg-00{n}");
        group = group.member_clusters(&id);
        shard = shard.node_group_members(
            NodeGroupMember::builder()
                .cache_cluster_id(&id)
                .cache_node_id("0001")
                .read_endpoint(endpoint(&format!(
                    "{id}.demo-rg.x1y2z3.use1.cache.amazonaws.com"
                )))
                .current_role(if n == 1 { "primary" } else { "replica" })
                .build(),
        );
    }
    group.node_groups(shard.build()).build()
}

fn describe_rg(group: Group) -> Rule {
    mock!(Client::describe_replication_groups).then_output(move || {
        DescribeReplicationGroupsOutput::builder()
            .replication_groups(group.clone())
            .build()
    })
}

/// DescribeReplicationGroups answering with each status in turn (all else as `base`).
fn describe_rg_statuses(statuses: &[&str], nodes: usize, node_type: &'static str) -> Rule {
    let mut sequence = mock!(Client::describe_replication_groups).sequence();
    for status in statuses {
        let group = rg(Described {
            status,
            nodes,
            node_type,
            ..Described::default()
        });
        sequence = sequence.output(move || {
            DescribeReplicationGroupsOutput::builder()
                .replication_groups(group.clone())
                .build()
        });
    }
    sequence.build()
}

/// The primary member cluster: what only clusters report.
fn member() -> CacheCluster {
    CacheCluster::builder()
        .cache_cluster_id("demo-rg-001")
        .replication_group_id(RG)
        .engine("redis")
        .engine_version("7.1.0")
        .cache_node_type("cache.t4g.small")
        .cache_cluster_status("available")
        .preferred_maintenance_window("sun:05:00-sun:06:00")
        .cache_subnet_group_name(SUBNETS)
        .cache_parameter_group(
            CacheParameterGroupStatus::builder()
                .cache_parameter_group_name("default.redis7")
                .parameter_apply_status("in-sync")
                .build(),
        )
        .security_groups(
            SecurityGroupMembership::builder()
                .security_group_id("sg-0b")
                .status("active")
                .build(),
        )
        .security_groups(
            SecurityGroupMembership::builder()
                .security_group_id("sg-0a")
                .status("active")
                .build(),
        )
        .build()
}

fn member_rule() -> Rule {
    mock!(Client::describe_cache_clusters).then_output(|| {
        DescribeCacheClustersOutput::builder()
            .cache_clusters(member())
            .build()
    })
}

/// The three calls of a read: the group, its tags, its primary cluster.
fn read_rules(group: Group) -> [Rule; 3] {
    [describe_rg(group), tags_rule(owner_tags()), member_rule()]
}

// ---------------------------------------------------------------------------------------------
// elasticache.replication_group: canonical form and checks

/// A DescribeReplicationGroups answer as AWS sends it (query protocol, XML).
fn describe_rg_xml() -> HttpResponse {
    let body = r#"<DescribeReplicationGroupsResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/">
  <DescribeReplicationGroupsResult>
    <ReplicationGroups>
      <ReplicationGroup>
        <ReplicationGroupId>demo-rg</ReplicationGroupId>
        <Description>sessions</Description>
        <GlobalReplicationGroupInfo/>
        <Status>available</Status>
        <PendingModifiedValues/>
        <MemberClusters>
          <ClusterId>demo-rg-001</ClusterId>
          <ClusterId>demo-rg-002</ClusterId>
        </MemberClusters>
        <NodeGroups>
          <NodeGroup>
            <NodeGroupId>0001</NodeGroupId>
            <Status>available</Status>
            <PrimaryEndpoint>
              <Address>master.demo-rg.x1y2z3.use1.cache.amazonaws.com</Address>
              <Port>6379</Port>
            </PrimaryEndpoint>
            <ReaderEndpoint>
              <Address>replica.demo-rg.x1y2z3.use1.cache.amazonaws.com</Address>
              <Port>6379</Port>
            </ReaderEndpoint>
            <NodeGroupMembers>
              <NodeGroupMember>
                <CacheClusterId>demo-rg-002</CacheClusterId>
                <CacheNodeId>0001</CacheNodeId>
                <ReadEndpoint>
                  <Address>demo-rg-002.demo-rg.x1y2z3.use1.cache.amazonaws.com</Address>
                  <Port>6379</Port>
                </ReadEndpoint>
                <PreferredAvailabilityZone>us-east-1b</PreferredAvailabilityZone>
                <CurrentRole>replica</CurrentRole>
              </NodeGroupMember>
              <NodeGroupMember>
                <CacheClusterId>demo-rg-001</CacheClusterId>
                <CacheNodeId>0001</CacheNodeId>
                <ReadEndpoint>
                  <Address>demo-rg-001.demo-rg.x1y2z3.use1.cache.amazonaws.com</Address>
                  <Port>6379</Port>
                </ReadEndpoint>
                <PreferredAvailabilityZone>us-east-1a</PreferredAvailabilityZone>
                <CurrentRole>primary</CurrentRole>
              </NodeGroupMember>
            </NodeGroupMembers>
          </NodeGroup>
        </NodeGroups>
        <AutomaticFailover>enabled</AutomaticFailover>
        <MultiAZ>enabled</MultiAZ>
        <SnapshotRetentionLimit>0</SnapshotRetentionLimit>
        <SnapshotWindow>03:00-04:00</SnapshotWindow>
        <ClusterEnabled>false</ClusterEnabled>
        <CacheNodeType>cache.t4g.small</CacheNodeType>
        <AuthTokenEnabled>true</AuthTokenEnabled>
        <AuthTokenLastModifiedDate>2024-05-02T09:12:41.123Z</AuthTokenLastModifiedDate>
        <TransitEncryptionEnabled>true</TransitEncryptionEnabled>
        <AtRestEncryptionEnabled>true</AtRestEncryptionEnabled>
        <MemberClustersOutpostArns/>
        <ARN>arn:aws:elasticache:us-east-1:123456789012:replicationgroup:demo-rg</ARN>
        <UserGroupIds/>
        <LogDeliveryConfigurations/>
        <ReplicationGroupCreateTime>2024-05-02T09:12:41.123Z</ReplicationGroupCreateTime>
        <DataTiering>disabled</DataTiering>
        <AutoMinorVersionUpgrade>true</AutoMinorVersionUpgrade>
        <NetworkType>ipv4</NetworkType>
        <IpDiscovery>ipv4</IpDiscovery>
        <TransitEncryptionMode>required</TransitEncryptionMode>
        <ClusterMode>disabled</ClusterMode>
        <Engine>redis</Engine>
      </ReplicationGroup>
    </ReplicationGroups>
  </DescribeReplicationGroupsResult>
  <ResponseMetadata>
    <RequestId>0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f</RequestId>
  </ResponseMetadata>
</DescribeReplicationGroupsResponse>"#;
    let mut response = HttpResponse::new(
        StatusCode::try_from(200).expect("status"),
        SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", "text/xml");
    response
}

#[tokio::test]
async fn read_of_aws_xml_equals_the_normalized_stack_with_the_token_from_prior() {
    let describe = mock!(Client::describe_replication_groups).then_http_response(describe_rg_xml);
    let mut tags = owner_tags();
    tags["aws:cloudformation:stack-name"] = json!("not ours");
    let list = tags_rule(tags);
    let primary = mock!(Client::describe_cache_clusters)
        .match_requests(|req| req.cache_cluster_id() == Some("demo-rg-001"))
        .then_output(|| {
            DescribeCacheClustersOutput::builder()
                .cache_clusters(member())
                .build()
        });
    let rt = group_type(&[&describe, &list, &primary]);
    let prior = rg_desired(json!({}));

    let observed = rt
        .read(&ctx(), RG, &prior)
        .await
        .expect("read")
        .expect("exists");

    // Equal to the stack once the planner fills what the stack leaves to AWS.
    assert_eq!(
        observed.props,
        with_computed(&rt, prior.clone(), &observed.props)
    );
    assert_eq!(
        observed.props["auth_token"],
        json!(TOKEN),
        "copied from prior"
    );
    assert_eq!(observed.props["engine_version"], json!("7.1"), "as written");
    assert_eq!(
        observed.props["security_group_ids"],
        json!(["sg-0a", "sg-0b"])
    );
    assert_eq!(observed.props["parameter_group"], json!("default.redis7"));
    assert_eq!(
        observed.props["maintenance_window"],
        json!("sun:05:00-sun:06:00")
    );
    assert_eq!(observed.props["tags"], owner_tags(), "aws: tags left out");
    assert_eq!(
        Value::Object(observed.attrs.clone()),
        json!({
            "replication_group_id": RG,
            "arn": RG_ARN,
            "port": 6379,
            "primary_endpoint": "master.demo-rg.x1y2z3.use1.cache.amazonaws.com",
            "reader_endpoint": "replica.demo-rg.x1y2z3.use1.cache.amazonaws.com",
            "member_clusters": [
                "arn:aws:elasticache:us-east-1:123456789012:cluster:demo-rg-001",
                "arn:aws:elasticache:us-east-1:123456789012:cluster:demo-rg-002",
            ],
        })
    );
    assert_eq!(primary.num_calls(), 1, "the primary is asked first");
}

#[test]
fn normalize_fills_defaults_in_schema_order_and_is_idempotent() {
    let rt = rg_type_offline();
    let props = normalized_with(
        &rt,
        json!({
            "replication_group_id": RG,
            "node_type": "cache.t4g.micro",
            "security_group_ids": ["sg-2", "sg-1", "sg-2"],
            "maintenance_window": "Sun:05:00-Sun:06:00",
        }),
    );
    assert_eq!(
        Value::Object(props.clone()),
        json!({
            "replication_group_id": RG,
            "description": "Managed by plinth",
            "engine": "redis",
            "node_type": "cache.t4g.micro",
            "num_cache_clusters": 1,
            "automatic_failover": false,
            "multi_az": false,
            "port": 6379,
            "security_group_ids": ["sg-1", "sg-2"],
            "transit_encryption": false,
            "at_rest_encryption": false,
            "snapshot_retention_limit": 0,
            "maintenance_window": "sun:05:00-sun:06:00",
            "log_delivery": [],
            "tags": {},
        })
    );
    let keys: Vec<&String> = props.keys().collect();
    assert_eq!(
        keys[..4],
        ["replication_group_id", "description", "engine", "node_type"]
    );
    assert_eq!(normalized_with(&rt, Value::Object(props.clone())), props);

    // Replicas or cluster mode switch automatic failover on by default.
    let two = normalized_with(
        &rt,
        json!({"replication_group_id": RG, "node_type": "cache.t4g.micro", "num_cache_clusters": 2}),
    );
    assert_eq!(two["automatic_failover"], json!(true));
    let sharded = normalized_with(
        &rt,
        json!({"replication_group_id": RG, "node_type": "cache.t4g.micro", "num_node_groups": 3}),
    );
    assert_eq!(sharded["automatic_failover"], json!(true));
    assert_eq!(sharded["replicas_per_node_group"], json!(0));
    assert!(!sharded.contains_key("num_cache_clusters"));
    let unknown = normalized_with(
        &rt,
        json!({"replication_group_id": RG, "node_type": "cache.t4g.micro", "num_cache_clusters": UNKNOWN}),
    );
    assert_eq!(unknown["automatic_failover"], json!(UNKNOWN));
}

#[tokio::test]
async fn read_in_cluster_mode_reports_shards_replicas_and_the_configuration_endpoint() {
    let shard = |id: &str| {
        let mut b = NodeGroup::builder().node_group_id(id).status("available");
        for n in 1..=2 {
            b = b.node_group_members(
                NodeGroupMember::builder()
                    .cache_cluster_id(format!("shop-{id}-00{n}"))
                    .cache_node_id("0001")
                    .build(),
            );
        }
        b.build()
    };
    let group = Group::builder()
        .replication_group_id("shop")
        .description("Managed by plinth")
        .status("available")
        .member_clusters("shop-0001-001")
        .member_clusters("shop-0001-002")
        .member_clusters("shop-0002-001")
        .member_clusters("shop-0002-002")
        .node_groups(shard("0001"))
        .node_groups(shard("0002"))
        .configuration_endpoint(
            Endpoint::builder()
                .address("clustercfg.shop.x1y2z3.use1.cache.amazonaws.com")
                .port(6380)
                .build(),
        )
        .automatic_failover(AutomaticFailoverStatus::Enabled)
        .multi_az(MultiAzStatus::Disabled)
        .snapshot_retention_limit(1)
        .snapshot_window("03:00-04:00")
        .cluster_enabled(true)
        .cache_node_type("cache.r7g.large")
        .auth_token_enabled(false)
        .transit_encryption_enabled(false)
        .at_rest_encryption_enabled(false)
        .arn("arn:aws:elasticache:us-east-1:123456789012:replicationgroup:shop")
        .engine("valkey")
        .build();
    let describe = describe_rg(group);
    let list = tags_rule(json!({}));
    let gone = mock!(Client::describe_cache_clusters).then_http_response(|| {
        not_found(
            "CacheClusterNotFound",
            "CacheCluster shop-0001-001 not found.",
        )
    });
    let valkey = mock!(Client::describe_cache_clusters).then_output(|| {
        DescribeCacheClustersOutput::builder()
            .cache_clusters(
                CacheCluster::builder()
                    .cache_cluster_id("shop-0001-002")
                    .engine("valkey")
                    .engine_version("8.0.1")
                    .cache_subnet_group_name("default")
                    .preferred_maintenance_window("wed:03:00-wed:04:00")
                    .build(),
            )
            .build()
    });
    let rt = group_type(&[&describe, &list, &gone, &valkey]);
    let desired = normalized_with(
        &rt,
        json!({
            "replication_group_id": "shop",
            "engine": "valkey",
            "node_type": "cache.r7g.large",
            "num_node_groups": 2,
            "replicas_per_node_group": 1,
            "port": 6380,
            "snapshot_retention_limit": 1,
        }),
    );

    let observed = rt
        .read(&ctx(), "shop", &desired)
        .await
        .expect("read")
        .expect("exists");

    assert_eq!(observed.props, with_computed(&rt, desired, &observed.props));
    assert_eq!(observed.props["engine_version"], json!("8.0.1"));
    assert_eq!(observed.props["security_group_ids"], json!([]));
    assert_eq!(
        observed.attrs["configuration_endpoint"],
        json!("clustercfg.shop.x1y2z3.use1.cache.amazonaws.com:6380")
    );
    assert!(!observed.attrs.contains_key("primary_endpoint"));
    assert_eq!(
        valkey.num_calls(),
        1,
        "the next member answered for the first"
    );
}

#[tokio::test]
async fn read_keeps_what_was_last_applied_when_no_member_can_be_described() {
    let [describe, list, _] = read_rules(rg(Described::default()));
    let gone = mock!(Client::describe_cache_clusters)
        .sequence()
        .http_response(|| not_found("CacheClusterNotFound", "CacheCluster not found."))
        .times(2)
        .build();
    let rt = group_type(&[&describe, &list, &gone]);
    let prior = rg_desired(json!({"parameter_group": "sessions-redis7"}));

    let observed = rt
        .read(&ctx(), RG, &prior)
        .await
        .expect("read")
        .expect("exists");

    assert_eq!(gone.num_calls(), 2, "both members were tried");
    for key in [
        "engine_version",
        "subnet_group",
        "security_group_ids",
        "parameter_group",
    ] {
        assert_eq!(observed.props[key], prior[key], "{key}");
    }
}

#[tokio::test]
async fn read_never_invents_a_token_aws_does_not_have_and_deleting_groups_are_gone() {
    let [describe, list, primary] = read_rules(rg(Described {
        token: false,
        ..Described::default()
    }));
    let rt = group_type(&[&describe, &list, &primary]);
    let observed = rt
        .read(&ctx(), RG, &rg_desired(json!({})))
        .await
        .expect("read")
        .expect("exists");
    assert!(!observed.props.contains_key("auth_token"));

    let deleting = describe_rg(rg(Described {
        status: "deleting",
        ..Described::default()
    }));
    let missing = mock!(Client::describe_replication_groups).then_http_response(rg_not_found);
    let rt = group_type(&[&deleting, &missing]);
    assert_eq!(
        rt.read(&ctx(), RG, &Props::new()).await.expect("read"),
        None
    );
    assert_eq!(
        rt.read(&ctx(), RG, &Props::new()).await.expect("read"),
        None
    );
}

#[test]
fn check_reports_each_problem_at_its_path() {
    let rt = rg_type_offline();
    let found = issues(
        &rt,
        json!({
            "replication_group_id": "Demo_RG",
            "engine": "memcached",
            "node_type": "cache.t3.micro",
            "num_cache_clusters": 1,
            "automatic_failover": true,
            "port": 70000,
            "auth_token": "short",
        }),
    );
    assert_issues(
        &found,
        &[
            ("replication_group_id", "uppercase"),
            ("engine", "use an elasticache.cluster"),
            ("port", "from 1 to 65535"),
            ("automatic_failover", "needs a replica"),
            ("auth_token", "needs transit_encryption: true"),
            ("auth_token", "16 to 128 characters, not 5"),
        ],
    );
    assert!(
        found.iter().all(|(_, m)| !m.contains("short")),
        "the token is never quoted: {found:#?}"
    );

    let found = issues(
        &rt,
        json!({
            "replication_group_id": RG,
            "node_type": "cache.t3.micro",
            "num_cache_clusters": 2,
            "num_node_groups": 2,
            "multi_az": true,
            "automatic_failover": false,
            "transit_encryption": true,
            "auth_token": "has a space and @ in it",
        }),
    );
    assert_issues(
        &found,
        &[
            ("num_cache_clusters", "use one or the other"),
            (
                "automatic_failover",
                "cluster mode (num_node_groups) requires",
            ),
            ("multi_az", "needs automatic_failover"),
            ("auth_token", "printable ASCII characters, without spaces"),
        ],
    );

    let found = issues(
        &rt,
        json!({"replication_group_id": RG, "node_type": "cache.t3.micro", "replicas_per_node_group": 2, "multi_az": true}),
    );
    assert_issues(
        &found,
        &[
            ("replicas_per_node_group", "set num_node_groups too"),
            ("multi_az", "needs automatic_failover"),
        ],
    );

    let found = issues(
        &rt,
        json!({"replication_group_id": RG, "node_type": "cache.t3.micro", "security_group_ids": ["sg-1", "cache-sg", UNKNOWN]}),
    );
    assert_issues(
        &found,
        &[("security_group_ids[1]", "expected a security group id")],
    );
    let found = issues(
        &rt,
        json!({"replication_group_id": RG, "node_type": "cache.t3.micro", "security_group_ids": []}),
    );
    assert_issues(
        &found,
        &[("security_group_ids", "at least one security group")],
    );

    // Values not known until apply are not judged; a good group has no issues.
    let pending = json!({
        "replication_group_id": UNKNOWN,
        "node_type": "cache.t3.micro",
        "auth_token": UNKNOWN,
        "transit_encryption": UNKNOWN,
    });
    assert!(issues(&rt, pending).is_empty());
    let good = json!({
        "replication_group_id": RG,
        "engine": "valkey",
        "node_type": "cache.r7g.large",
        "num_node_groups": 3,
        "replicas_per_node_group": 1,
        "multi_az": true,
        "transit_encryption": true,
        "auth_token": TOKEN,
    });
    assert!(issues(&rt, good).is_empty());
}

#[test]
fn shape_and_encryption_changes_replace_naming_the_property_and_the_rest_goes_in_place() {
    let rt = rg_type_offline();
    let before = rg_desired(json!({}));
    let reasons = |after: Props| rt.replace_reasons(&before, &after);

    let sharded = rg_desired(
        json!({"num_cache_clusters": null, "num_node_groups": 2, "replicas_per_node_group": 1}),
    );
    assert_eq!(reasons(sharded.clone()), ["num_node_groups"]);
    assert_eq!(
        reasons(rg_desired(
            json!({"transit_encryption": false, "auth_token": null})
        )),
        ["transit_encryption", "auth_token"]
    );
    assert_eq!(
        reasons(rg_desired(json!({"at_rest_encryption": false}))),
        ["at_rest_encryption"]
    );
    assert_eq!(
        reasons(rg_desired(json!({"replication_group_id": "other-rg"}))),
        ["replication_group_id"]
    );
    assert_eq!(
        reasons(rg_desired(json!({"auth_token": null}))),
        ["auth_token"]
    );
    for in_place in [
        json!({"num_cache_clusters": 3}),
        json!({"node_type": "cache.r7g.large"}),
        json!({"security_group_ids": ["sg-0c"]}),
        json!({"auth_token": NEW_TOKEN}),
        json!({"engine_version": "7.2", "parameter_group": "sessions-redis7"}),
        json!({"snapshot_retention_limit": 7, "description": "sessions and carts"}),
    ] {
        assert!(
            reasons(rg_desired(in_place.clone())).is_empty(),
            "{in_place}"
        );
    }
    // In cluster mode, shards replace and replicas per shard do not.
    let more_shards = rg_desired(
        json!({"num_cache_clusters": null, "num_node_groups": 3, "replicas_per_node_group": 1}),
    );
    let more_replicas = rg_desired(
        json!({"num_cache_clusters": null, "num_node_groups": 2, "replicas_per_node_group": 2}),
    );
    assert_eq!(
        rt.replace_reasons(&sharded, &more_shards),
        ["num_node_groups"]
    );
    assert!(rt.replace_reasons(&sharded, &more_replicas).is_empty());
}

// ---------------------------------------------------------------------------------------------
// elasticache.replication_group: create, update, delete

#[tokio::test]
async fn create_sends_everything_with_the_token_waits_until_available_and_never_logs_it() {
    let logs = capture_logs();
    let seen: Log<CreateReplicationGroupInput> = log();
    let create = mock!(Client::create_replication_group).then_compute_output({
        let seen = seen.clone();
        move |req| {
            seen.lock().expect("lock").push(req.clone());
            CreateReplicationGroupOutput::builder()
                .replication_group(rg(Described {
                    status: "creating",
                    ..Described::default()
                }))
                .build()
        }
    });
    let waits = describe_rg_statuses(&["creating", "creating", "available"], 2, "cache.t4g.small");
    let [describe, list, primary] = read_rules(rg(Described::default()));
    let rt = group_type(&[&create, &waits, &describe, &list, &primary]);
    let progress = Arc::new(Recorded::default());
    let props = rg_desired(json!({}));

    let observed = rt
        .create(&ctx_with(progress.clone()), &props)
        .await
        .expect("created");

    let input = taken(&seen).pop().expect("CreateReplicationGroup called");
    assert_eq!(input.replication_group_id(), Some(RG));
    assert_eq!(input.replication_group_description(), Some("sessions"));
    assert_eq!(input.engine(), Some("redis"));
    assert_eq!(input.engine_version(), Some("7.1"));
    assert_eq!(input.cache_node_type(), Some("cache.t4g.small"));
    assert_eq!(input.num_cache_clusters(), Some(2));
    assert_eq!(input.num_node_groups(), None);
    assert_eq!(input.cluster_mode(), None);
    assert_eq!(input.automatic_failover_enabled(), Some(true));
    assert_eq!(input.multi_az_enabled(), Some(true));
    assert_eq!(input.port(), Some(6379));
    assert_eq!(input.cache_subnet_group_name(), Some(SUBNETS));
    assert_eq!(input.security_group_ids(), ["sg-0a", "sg-0b"]);
    assert_eq!(input.transit_encryption_enabled(), Some(true));
    assert_eq!(input.at_rest_encryption_enabled(), Some(true));
    assert_eq!(input.auth_token(), Some(TOKEN));
    assert_eq!(input.snapshot_retention_limit(), Some(0));
    assert_eq!(input.tags(), aws_tags(&owner_tags()));
    assert_eq!(waits.num_calls(), 3);
    assert!(
        progress.saw("waiting for replication group demo-rg to be available (creating)"),
        "{:?}",
        progress.messages()
    );
    assert_eq!(observed.id, RG);
    assert_eq!(
        observed.props["auth_token"],
        json!(TOKEN),
        "state keeps it to diff against"
    );
    assert_eq!(observed.props, with_computed(&rt, props, &observed.props));

    let text = logs.text();
    assert!(
        text.contains("CreateReplicationGroup"),
        "logs were captured: {text}"
    );
    assert!(
        text.contains("cache.t4g.small"),
        "the request is logged: {text}"
    );
    assert!(
        !text.contains(TOKEN),
        "the token never reaches the logs: {text}"
    );
    assert!(text.contains("(sensitive value)"), "{text}");
}

#[tokio::test]
async fn create_in_cluster_mode_asks_for_shards_and_replicas() {
    let seen: Log<CreateReplicationGroupInput> = log();
    let create = mock!(Client::create_replication_group).then_compute_output({
        let seen = seen.clone();
        move |req| {
            seen.lock().expect("lock").push(req.clone());
            CreateReplicationGroupOutput::builder().build()
        }
    });
    // Stop right after the call: the group "vanishes" before it is available.
    let gone = mock!(Client::describe_replication_groups).then_http_response(rg_not_found);
    let rt = group_type(&[&create, &gone]);
    let props = normalized_with(
        &rt,
        json!({"replication_group_id": "shop", "node_type": "cache.r7g.large", "num_node_groups": 3, "replicas_per_node_group": 2}),
    );

    let err = rt.create(&ctx(), &props).await.expect_err("vanished");

    assert_eq!(err.kind, ErrorKind::NotFound);
    let input = taken(&seen).pop().expect("called");
    assert_eq!(input.cluster_mode(), Some(&ClusterMode::Enabled));
    assert_eq!(input.num_node_groups(), Some(3));
    assert_eq!(input.replicas_per_node_group(), Some(2));
    assert_eq!(input.num_cache_clusters(), None);
    assert_eq!(input.automatic_failover_enabled(), Some(true));
    assert_eq!(input.auth_token(), None);
    assert_eq!(input.transit_encryption_enabled(), Some(false));
}

#[tokio::test]
async fn creating_an_existing_group_says_so_plainly() {
    let create = mock!(Client::create_replication_group).then_http_response(|| {
        elasticache_error(
            400,
            "ReplicationGroupAlreadyExists",
            "Replication group with specified name already exists.",
        )
    });
    // The group under that id is another stack's.
    let describe = describe_rg(rg(Described::default()));
    let tags = tags_rule(
        json!({"plinth:stack": "other", "plinth:workspace": "default", "plinth:resource": "cache"}),
    );
    let primary = member_rule();
    let rt = group_type(&[&create, &describe, &tags, &primary]);
    let err = rt
        .create(&ctx(), &rg_desired(json!({})))
        .await
        .expect_err("exists");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message
            .contains("a replication group demo-rg already exists"),
        "{err}"
    );
}

#[tokio::test]
async fn a_replica_added_goes_in_place_with_increase_replica_count_and_a_wait() {
    let before = rg_desired(json!({}));
    let after = rg_desired(json!({"num_cache_clusters": 3}));
    assert!(group_type(&[]).replace_reasons(&before, &after).is_empty());
    let seen: Log<IncreaseReplicaCountInput> = log();
    let increase = mock!(Client::increase_replica_count).then_compute_output({
        let seen = seen.clone();
        move |req| {
            seen.lock().expect("lock").push(req.clone());
            IncreaseReplicaCountOutput::builder().build()
        }
    });
    let waits = describe_rg_statuses(&["modifying", "available"], 3, "cache.t4g.small");
    let last = describe_rg(rg(Described {
        nodes: 3,
        ..Described::default()
    }));
    let [describe, list, primary] = read_rules(rg(Described {
        nodes: 3,
        ..Described::default()
    }));
    // Sequential, and no ModifyReplicationGroup rule: any other call fails the test.
    let rt = group_type(&[&increase, &waits, &last, &describe, &list, &primary]);
    let progress = Arc::new(Recorded::default());

    let observed = rt
        .update(&ctx_with(progress.clone()), RG, &before, &after)
        .await
        .expect("updated");

    let input = taken(&seen).pop().expect("IncreaseReplicaCount called");
    assert_eq!(input.replication_group_id(), Some(RG));
    assert_eq!(
        input.new_replica_count(),
        Some(2),
        "three nodes: the primary and two replicas"
    );
    assert_eq!(input.apply_immediately(), Some(true));
    assert_eq!(waits.num_calls(), 2);
    assert!(progress.saw("(modifying)"), "{:?}", progress.messages());
    assert_eq!(observed.props["num_cache_clusters"], json!(3));
    assert_eq!(observed.props, with_computed(&rt, after, &observed.props));
}

#[tokio::test]
async fn removing_replicas_switches_failover_off_first_then_decreases() {
    let before = rg_desired(json!({}));
    let after = rg_desired(json!({"num_cache_clusters": 1, "multi_az": false}));
    assert_eq!(
        after["automatic_failover"],
        json!(false),
        "the default follows the count"
    );
    let modified: Log<ModifyReplicationGroupInput> = log();
    let modify = mock!(Client::modify_replication_group).then_compute_output({
        let modified = modified.clone();
        move |req| {
            modified.lock().expect("lock").push(req.clone());
            ModifyReplicationGroupOutput::builder().build()
        }
    });
    let after_modify = describe_rg_statuses(&["available"], 2, "cache.t4g.small");
    let decreased: Log<DecreaseReplicaCountInput> = log();
    let decrease = mock!(Client::decrease_replica_count).then_compute_output({
        let decreased = decreased.clone();
        move |req| {
            decreased.lock().expect("lock").push(req.clone());
            DecreaseReplicaCountOutput::builder().build()
        }
    });
    let after_decrease = describe_rg_statuses(&["modifying", "available"], 1, "cache.t4g.small");
    let last = describe_rg(rg(Described {
        nodes: 1,
        ..Described::default()
    }));
    let [describe, list, primary] = read_rules(rg(Described {
        nodes: 1,
        ..Described::default()
    }));
    let rt = group_type(&[
        &modify,
        &after_modify,
        &decrease,
        &after_decrease,
        &last,
        &describe,
        &list,
        &primary,
    ]);

    let observed = rt
        .update(&ctx(), RG, &before, &after)
        .await
        .expect("updated");

    let input = taken(&modified)
        .pop()
        .expect("ModifyReplicationGroup called");
    assert_eq!(input.automatic_failover_enabled(), Some(false));
    assert_eq!(input.multi_az_enabled(), Some(false));
    assert_eq!(input.cache_node_type(), None);
    let input = taken(&decreased)
        .pop()
        .expect("DecreaseReplicaCount called");
    assert_eq!(input.new_replica_count(), Some(0));
    assert_eq!(input.apply_immediately(), Some(true));
    assert_eq!(observed.props["num_cache_clusters"], json!(1));
}

#[tokio::test]
async fn a_node_type_change_goes_in_place_retrying_while_the_group_is_busy() {
    let before = rg_desired(json!({}));
    let after = rg_desired(json!({"node_type": "cache.r7g.large"}));
    assert!(group_type(&[]).replace_reasons(&before, &after).is_empty());
    let busy = mock!(Client::modify_replication_group)
        .sequence()
        .http_response(rg_busy)
        .build();
    let modified: Log<ModifyReplicationGroupInput> = log();
    let modify = mock!(Client::modify_replication_group).then_compute_output({
        let modified = modified.clone();
        move |req| {
            modified.lock().expect("lock").push(req.clone());
            ModifyReplicationGroupOutput::builder().build()
        }
    });
    let waits = describe_rg_statuses(
        &["modifying", "modifying", "available"],
        2,
        "cache.r7g.large",
    );
    let last = describe_rg(rg(Described {
        node_type: "cache.r7g.large",
        ..Described::default()
    }));
    let [describe, list, _] = read_rules(rg(Described {
        node_type: "cache.r7g.large",
        ..Described::default()
    }));
    let primary = member_rule();
    let rt = group_type(&[&busy, &modify, &waits, &last, &describe, &list, &primary]);
    let progress = Arc::new(Recorded::default());

    let observed = rt
        .update(&ctx_with(progress.clone()), RG, &before, &after)
        .await
        .expect("updated");

    assert_eq!(busy.num_calls(), 1);
    let inputs = taken(&modified);
    assert_eq!(inputs.len(), 1);
    let input = &inputs[0];
    assert_eq!(input.replication_group_id(), Some(RG));
    assert_eq!(input.cache_node_type(), Some("cache.r7g.large"));
    assert_eq!(input.apply_immediately(), Some(true));
    // Only what changed is sent.
    assert!(input.security_group_ids().is_empty());
    assert_eq!(input.automatic_failover_enabled(), None);
    assert_eq!(input.engine_version(), None);
    assert_eq!(input.auth_token(), None);
    assert!(
        progress.saw("InvalidReplicationGroupState — retrying"),
        "{:?}",
        progress.messages()
    );
    assert!(progress.saw("(modifying)"), "{:?}", progress.messages());
    assert_eq!(observed.props["node_type"], json!("cache.r7g.large"));
}

#[tokio::test]
async fn a_changed_token_is_rotated_in_place_and_never_logged() {
    let logs = capture_logs();
    let before = rg_desired(json!({}));
    let after = rg_desired(json!({"auth_token": NEW_TOKEN}));
    assert!(group_type(&[]).replace_reasons(&before, &after).is_empty());
    let modified: Log<ModifyReplicationGroupInput> = log();
    let modify = mock!(Client::modify_replication_group).then_compute_output({
        let modified = modified.clone();
        move |req| {
            modified.lock().expect("lock").push(req.clone());
            ModifyReplicationGroupOutput::builder().build()
        }
    });
    let waits = describe_rg_statuses(&["modifying", "available"], 2, "cache.t4g.small");
    let last = describe_rg(rg(Described::default()));
    let [describe, list, primary] = read_rules(rg(Described::default()));
    let rt = group_type(&[&modify, &waits, &last, &describe, &list, &primary]);

    let observed = rt
        .update(&ctx(), RG, &before, &after)
        .await
        .expect("rotated");

    let inputs = taken(&modified);
    assert_eq!(inputs.len(), 1, "one call: the token alone");
    assert_eq!(inputs[0].auth_token(), Some(NEW_TOKEN));
    assert_eq!(
        inputs[0].auth_token_update_strategy(),
        Some(&AuthTokenUpdateStrategyType::Rotate)
    );
    assert_eq!(inputs[0].apply_immediately(), Some(true));
    assert_eq!(inputs[0].cache_node_type(), None);
    assert_eq!(
        observed.props["auth_token"],
        json!(NEW_TOKEN),
        "the new one is kept"
    );
    let text = logs.text();
    assert!(
        text.contains("rotating the AUTH token"),
        "logs were captured: {text}"
    );
    assert!(!text.contains(TOKEN) && !text.contains(NEW_TOKEN), "{text}");
}

#[tokio::test]
async fn delete_waits_from_deleting_until_the_group_is_not_found() {
    let seen: Log<DeleteReplicationGroupInput> = log();
    let delete = mock!(Client::delete_replication_group).then_compute_output({
        let seen = seen.clone();
        move |req| {
            seen.lock().expect("lock").push(req.clone());
            DeleteReplicationGroupOutput::builder().build()
        }
    });
    let deleting = describe_rg_statuses(&["deleting", "deleting"], 2, "cache.t4g.small");
    let gone = mock!(Client::describe_replication_groups).then_http_response(rg_not_found);
    let rt = group_type(&[&delete, &deleting, &gone]);
    let progress = Arc::new(Recorded::default());
    let ctx = ctx_with(progress.clone());

    rt.delete(&ctx, RG, &rg_desired(json!({})))
        .await
        .expect("deleted");

    let input = taken(&seen).pop().expect("DeleteReplicationGroup called");
    assert_eq!(input.replication_group_id(), Some(RG));
    assert_eq!(input.retain_primary_cluster(), Some(false));
    assert_eq!(gone.num_calls(), 1, "waited until not found");
    assert!(
        progress.saw("replication group demo-rg to be deleted (deleting)"),
        "{:?}",
        progress.messages()
    );
    assert_eq!(ctx.pending_deletion(), None);
}

#[tokio::test]
async fn delete_without_waiting_reports_pending_after_one_call() {
    let delete = mock!(Client::delete_replication_group)
        .then_output(|| DeleteReplicationGroupOutput::builder().build());
    // Sequential with one rule: a describe would fail the test.
    let rt = group_type(&[&delete]);
    let ctx = ctx().without_waiting_for_deletion();

    rt.delete(&ctx, RG, &Props::new()).await.expect("accepted");

    assert_eq!(
        ctx.pending_deletion().as_deref(),
        Some("AWS is deleting the replication group")
    );
}

#[tokio::test]
async fn delete_retries_a_busy_group_and_accepts_one_already_deleting_or_gone() {
    let busy = mock!(Client::delete_replication_group)
        .sequence()
        .http_response(rg_busy)
        .build();
    let modifying = describe_rg(rg(Described {
        status: "modifying",
        ..Described::default()
    }));
    let accepted = mock!(Client::delete_replication_group)
        .then_output(|| DeleteReplicationGroupOutput::builder().build());
    let rt = group_type(&[&busy, &modifying, &accepted]);
    let ctx_no_wait = ctx().without_waiting_for_deletion();
    rt.delete(&ctx_no_wait, RG, &Props::new())
        .await
        .expect("accepted once no longer busy");
    assert_eq!(accepted.num_calls(), 1);
    assert!(ctx_no_wait.pending_deletion().is_some());

    // An earlier destroy started it: nothing more to ask, only to wait.
    let refused = mock!(Client::delete_replication_group).then_http_response(rg_busy);
    let deleting = describe_rg(rg(Described {
        status: "deleting",
        ..Described::default()
    }));
    let gone = mock!(Client::describe_replication_groups).then_http_response(rg_not_found);
    let rt = group_type(&[&refused, &deleting, &gone]);
    rt.delete(&ctx(), RG, &Props::new()).await.expect("gone");
    assert_eq!(gone.num_calls(), 1);

    let missing = mock!(Client::delete_replication_group).then_http_response(rg_not_found);
    let rt = group_type(&[&missing]);
    let ctx_no_wait = ctx().without_waiting_for_deletion();
    rt.delete(&ctx_no_wait, RG, &Props::new())
        .await
        .expect("already gone");
    assert_eq!(
        ctx_no_wait.pending_deletion(),
        None,
        "nothing left to delete"
    );
}

#[tokio::test]
async fn find_adopts_a_group_only_with_our_plinth_tags() {
    let [describe, list, primary] = read_rules(rg(Described::default()));
    let rt = group_type(&[&describe, &list, &primary]);
    let found = rt.find(&ctx(), &rg_desired(json!({}))).await.expect("find");
    assert_eq!(found.map(|o| o.id), Some(RG.to_string()));

    let describe = describe_rg(rg(Described::default()));
    let foreign = tags_rule(
        json!({"plinth:stack": "other", "plinth:workspace": "default", "plinth:resource": "cache"}),
    );
    let primary = member_rule();
    let rt = group_type(&[&describe, &foreign, &primary]);
    let found = rt.find(&ctx(), &rg_desired(json!({}))).await.expect("find");
    assert_eq!(found, None, "another stack's group is never adopted");
}

// ---------------------------------------------------------------------------------------------
// elasticache.subnet_group

fn subnet_group(subnets: &[&str]) -> CacheSubnetGroup {
    let mut b = CacheSubnetGroup::builder()
        .cache_subnet_group_name(SUBNETS)
        .cache_subnet_group_description("Managed by plinth")
        .vpc_id("vpc-1")
        .arn(SUBNETS_ARN);
    for id in subnets {
        b = b.subnets(Subnet::builder().subnet_identifier(*id).build());
    }
    b.build()
}

fn describe_subnet_group(group: CacheSubnetGroup) -> Rule {
    mock!(Client::describe_cache_subnet_groups).then_output(move || {
        DescribeCacheSubnetGroupsOutput::builder()
            .cache_subnet_groups(group.clone())
            .build()
    })
}

fn subnet_desired(extra: Value) -> Props {
    let mut props = obj(json!({"name": SUBNETS, "tags": owner_tags()}));
    props.extend(obj(extra));
    normalized_with(&subnet_type(&[]), Value::Object(props))
}

fn subnet_in_use() -> HttpResponse {
    elasticache_error(
        400,
        "CacheSubnetGroupInUse",
        "Cache subnet group cache-subnets is currently in use by a cache cluster.",
    )
}

#[tokio::test]
async fn subnet_group_read_equals_the_normalized_stack_with_or_without_subnets() {
    let describe = describe_subnet_group(subnet_group(&["subnet-c", "subnet-a", "subnet-b"]));
    let list = tags_rule(owner_tags());
    let rt = subnet_type(&[&describe, &list]);

    let observed = rt
        .read(&ctx(), SUBNETS, &Props::new())
        .await
        .expect("read")
        .expect("exists");

    assert_eq!(
        observed.props["subnet_ids"],
        json!(["subnet-a", "subnet-b", "subnet-c"])
    );
    // Left out, the subnets are what AWS has: no difference.
    let left_out = subnet_desired(json!({}));
    assert!(!left_out.contains_key("subnet_ids"));
    assert_eq!(
        observed.props,
        with_computed(&rt, left_out, &observed.props)
    );
    // Written in any order, they are the same set.
    let written = subnet_desired(json!({"subnet_ids": ["subnet-b", "subnet-c", "subnet-a"]}));
    assert_eq!(observed.props, written);
    assert_eq!(
        Value::Object(observed.attrs),
        json!({"name": SUBNETS, "arn": SUBNETS_ARN, "vpc_id": "vpc-1"})
    );
}

#[tokio::test]
async fn subnet_group_create_without_subnets_takes_the_default_vpcs() {
    let vpcs = mock!(aws_sdk_ec2::Client::describe_vpcs)
        .match_requests(|req| {
            req.filters()
                .iter()
                .any(|f| f.name() == Some("is-default") && f.values() == ["true"])
        })
        .then_output(|| {
            DescribeVpcsOutput::builder()
                .vpcs(Vpc::builder().vpc_id("vpc-1").is_default(true).build())
                .build()
        });
    let subnets = mock!(aws_sdk_ec2::Client::describe_subnets)
        .match_requests(|req| {
            req.filters()
                .iter()
                .any(|f| f.name() == Some("vpc-id") && f.values() == ["vpc-1"])
        })
        .then_output(|| {
            let subnet = |id: &str| Ec2Subnet::builder().subnet_id(id).vpc_id("vpc-1").build();
            DescribeSubnetsOutput::builder()
                .subnets(subnet("subnet-c"))
                .subnets(subnet("subnet-a"))
                .subnets(subnet("subnet-b"))
                .build()
        });
    let seen: Log<CreateCacheSubnetGroupInput> = log();
    let create = mock!(Client::create_cache_subnet_group).then_compute_output({
        let seen = seen.clone();
        move |req| {
            seen.lock().expect("lock").push(req.clone());
            CreateCacheSubnetGroupOutput::builder()
                .cache_subnet_group(subnet_group(&["subnet-b", "subnet-a", "subnet-c"]))
                .build()
        }
    });
    let aws = aws_with(&[&create]);
    aws.insert_ec2(REGION, ec2_client(&[&vpcs, &subnets]));
    let rt = SubnetGroup::new(aws);
    let props = subnet_desired(json!({}));

    let observed = rt.create(&ctx(), &props).await.expect("created");

    let input = taken(&seen).pop().expect("CreateCacheSubnetGroup called");
    assert_eq!(input.cache_subnet_group_name(), Some(SUBNETS));
    assert_eq!(
        input.cache_subnet_group_description(),
        Some("Managed by plinth")
    );
    assert_eq!(input.subnet_ids(), ["subnet-a", "subnet-b", "subnet-c"]);
    assert_eq!(input.tags(), aws_tags(&owner_tags()));
    assert_eq!(
        observed.props["subnet_ids"],
        json!(["subnet-a", "subnet-b", "subnet-c"])
    );
    assert_eq!(observed.props, with_computed(&rt, props, &observed.props));
    assert_eq!(observed.attrs["vpc_id"], json!("vpc-1"));
}

#[tokio::test]
async fn subnet_group_update_modifies_subnets_and_tags_by_difference() {
    let before = subnet_desired(
        json!({"subnet_ids": ["subnet-a", "subnet-b"], "tags": {"a": "1", "b": "2"}}),
    );
    let after = subnet_desired(
        json!({"subnet_ids": ["subnet-c", "subnet-a"], "description": "cache subnets", "tags": {"a": "1", "c": "3"}}),
    );
    assert!(subnet_type(&[]).replace_reasons(&before, &after).is_empty());
    let modified: Log<ModifyCacheSubnetGroupInput> = log();
    let modify = mock!(Client::modify_cache_subnet_group).then_compute_output({
        let modified = modified.clone();
        move |req| {
            modified.lock().expect("lock").push(req.clone());
            let mut group = subnet_group(&["subnet-a", "subnet-c"]);
            group.cache_subnet_group_description = Some("cache subnets".into());
            ModifyCacheSubnetGroupOutput::builder()
                .cache_subnet_group(group)
                .build()
        }
    });
    let added: Log<AddTagsToResourceInput> = log();
    let add = mock!(Client::add_tags_to_resource).then_compute_output({
        let added = added.clone();
        move |req| {
            added.lock().expect("lock").push(req.clone());
            AddTagsToResourceOutput::builder().build()
        }
    });
    let removed: Log<RemoveTagsFromResourceInput> = log();
    let remove = mock!(Client::remove_tags_from_resource).then_compute_output({
        let removed = removed.clone();
        move |req| {
            removed.lock().expect("lock").push(req.clone());
            RemoveTagsFromResourceOutput::builder().build()
        }
    });
    let rt = subnet_type(&[&modify, &add, &remove]);

    let observed = rt
        .update(&ctx(), SUBNETS, &before, &after)
        .await
        .expect("updated");

    let input = taken(&modified)
        .pop()
        .expect("ModifyCacheSubnetGroup called");
    assert_eq!(input.subnet_ids(), ["subnet-a", "subnet-c"]);
    assert_eq!(
        input.cache_subnet_group_description(),
        Some("cache subnets")
    );
    let add = taken(&added).pop().expect("tagged");
    assert_eq!(add.resource_name(), Some(SUBNETS_ARN));
    assert_eq!(add.tags(), [Tag::builder().key("c").value("3").build()]);
    assert_eq!(taken(&removed).pop().expect("untagged").tag_keys(), ["b"]);
    assert_eq!(observed.props, after);
}

#[tokio::test]
async fn subnet_group_delete_retries_while_a_cluster_still_uses_it() {
    let in_use = mock!(Client::delete_cache_subnet_group)
        .sequence()
        .http_response(subnet_in_use)
        .times(2)
        .output(|| DeleteCacheSubnetGroupOutput::builder().build())
        .build();
    let rt = subnet_type(&[&in_use]);
    let progress = Arc::new(Recorded::default());
    let ctx = ctx_with(progress.clone());

    rt.delete(&ctx, SUBNETS, &Props::new())
        .await
        .expect("deleted once free");

    assert_eq!(in_use.num_calls(), 3);
    assert!(
        progress.saw("CacheSubnetGroupInUse — retrying"),
        "{:?}",
        progress.messages()
    );
    assert_eq!(ctx.pending_deletion(), None);
}

#[tokio::test]
async fn subnet_group_still_in_use_is_pending_under_no_wait_and_an_error_otherwise() {
    let in_use = mock!(Client::delete_cache_subnet_group)
        .sequence()
        .http_response(subnet_in_use)
        .repeatedly()
        .build();
    let rt = subnet_type(&[&in_use]);
    let ctx = ctx()
        .without_waiting_for_deletion()
        .with_deadline(Some(Duration::from_millis(300)));
    rt.delete(&ctx, SUBNETS, &Props::new())
        .await
        .expect("left pending");
    let reason = ctx.pending_deletion().expect("pending");
    assert!(reason.contains("still in use"), "{reason}");

    let in_use = mock!(Client::delete_cache_subnet_group)
        .sequence()
        .http_response(subnet_in_use)
        .repeatedly()
        .build();
    let rt = subnet_type(&[&in_use]);
    let ctx = OpContext::new(REGION, "subnets").with_deadline(Some(Duration::from_millis(300)));
    let err = rt
        .delete(&ctx, SUBNETS, &Props::new())
        .await
        .expect_err("still in use at the deadline");
    assert_eq!(err.kind, ErrorKind::InUse);
    assert_eq!(err.code.as_deref(), Some("CacheSubnetGroupInUse"));
    assert!(err.message.contains("still uses the subnet group"), "{err}");

    let gone = mock!(Client::delete_cache_subnet_group).then_http_response(|| {
        not_found(
            "CacheSubnetGroupNotFoundFault",
            "CacheSubnetGroup cache-subnets not found.",
        )
    });
    subnet_type(&[&gone])
        .delete(&ctx, SUBNETS, &Props::new())
        .await
        .expect("already gone is deleted");
}

#[test]
fn subnet_group_check_reports_problems_at_their_paths() {
    let rt = subnet_type(&[]);
    let found = issues(
        &rt,
        json!({"name": "Cache_Subnets", "description": "", "subnet_ids": ["subnet-1", "sg-2", UNKNOWN]}),
    );
    assert_issues(
        &found,
        &[
            ("name", "uppercase"),
            ("description", "requires a description"),
            ("subnet_ids[1]", "expected a subnet id"),
        ],
    );
    assert_issues(
        &issues(&rt, json!({"name": "cache subnets"})),
        &[("name", "only lowercase letters, digits and hyphens")],
    );
    assert_issues(
        &issues(&rt, json!({"name": SUBNETS, "subnet_ids": []})),
        &[("subnet_ids", "at least one subnet")],
    );
    assert!(issues(&rt, json!({"name": SUBNETS, "subnet_ids": ["subnet-1"]})).is_empty());
}

// ---------------------------------------------------------------------------------------------
// elasticache.parameter_group

fn parameter_group() -> CacheParameterGroup {
    CacheParameterGroup::builder()
        .cache_parameter_group_name(PARAMS)
        .cache_parameter_group_family("redis7")
        .description("Managed by plinth")
        .is_global(false)
        .arn(PARAMS_ARN)
        .build()
}

fn describe_parameter_group() -> Rule {
    mock!(Client::describe_cache_parameter_groups).then_output(|| {
        DescribeCacheParameterGroupsOutput::builder()
            .cache_parameter_groups(parameter_group())
            .build()
    })
}

fn user_parameter(name: &str, value: &str) -> Parameter {
    Parameter::builder()
        .parameter_name(name)
        .parameter_value(value)
        .source("user")
        .data_type("string")
        .is_modifiable(true)
        .build()
}

fn parameters_desired(parameters: Value) -> Props {
    normalized_with(
        &parameter_type(&[]),
        json!({"name": PARAMS, "family": "redis7", "parameters": parameters, "tags": owner_tags()}),
    )
}

#[tokio::test]
async fn parameter_group_read_compares_only_user_set_parameters_across_pages() {
    let describe = describe_parameter_group();
    let parameters = mock!(Client::describe_cache_parameters)
        .match_requests(|req| req.source() == Some("user"))
        .sequence()
        .output(|| {
            DescribeCacheParametersOutput::builder()
                .parameters(user_parameter("timeout", "300"))
                .marker("page-2")
                .build()
        })
        .output(|| {
            DescribeCacheParametersOutput::builder()
                .parameters(user_parameter("maxmemory-policy", "allkeys-lru"))
                .build()
        })
        .build();
    let list = tags_rule(owner_tags());
    let rt = parameter_type(&[&describe, &parameters, &list]);

    let observed = rt
        .read(&ctx(), PARAMS, &Props::new())
        .await
        .expect("read")
        .expect("exists");

    assert_eq!(parameters.num_calls(), 2);
    // Numbers are written as numbers and kept by AWS as strings: the same setting.
    let desired = parameters_desired(json!({"timeout": 300, "maxmemory-policy": "allkeys-lru"}));
    assert_eq!(
        desired["parameters"],
        json!({"maxmemory-policy": "allkeys-lru", "timeout": "300"})
    );
    assert_eq!(observed.props, desired);
    assert_eq!(
        Value::Object(observed.attrs),
        json!({"name": PARAMS, "arn": PARAMS_ARN})
    );
}

#[tokio::test]
async fn parameter_changes_map_to_exactly_the_right_modify_and_reset_calls_in_chunks_of_20() {
    let mut before = json!({"keep": "1", "change": "old", "gone-1": "a", "gone-2": "b"});
    let mut after = json!({"keep": "1", "change": "new"});
    for n in 0..24 {
        after[format!("new-{n:02}")] = json!(format!("v{n}"));
    }
    before["untouched-by-plinth"] = Value::Null;
    let (before, after) = (parameters_desired(before), parameters_desired(after));
    assert!(parameter_type(&[])
        .replace_reasons(&before, &after)
        .is_empty());
    let describe = describe_parameter_group();
    let modified: Log<ModifyCacheParameterGroupInput> = log();
    let modify = mock!(Client::modify_cache_parameter_group).then_compute_output({
        let modified = modified.clone();
        move |req| {
            modified.lock().expect("lock").push(req.clone());
            ModifyCacheParameterGroupOutput::builder()
                .cache_parameter_group_name(PARAMS)
                .build()
        }
    });
    let modify_again = mock!(Client::modify_cache_parameter_group).then_compute_output({
        let modified = modified.clone();
        move |req| {
            modified.lock().expect("lock").push(req.clone());
            ModifyCacheParameterGroupOutput::builder()
                .cache_parameter_group_name(PARAMS)
                .build()
        }
    });
    let reset_seen: Log<ResetCacheParameterGroupInput> = log();
    let reset = mock!(Client::reset_cache_parameter_group).then_compute_output({
        let reset_seen = reset_seen.clone();
        move |req| {
            reset_seen.lock().expect("lock").push(req.clone());
            ResetCacheParameterGroupOutput::builder()
                .cache_parameter_group_name(PARAMS)
                .build()
        }
    });
    // Tags are unchanged: no tag call is mocked.
    let rt = parameter_type(&[&describe, &modify, &modify_again, &reset]);

    let observed = rt
        .update(&ctx(), PARAMS, &before, &after)
        .await
        .expect("updated");

    let calls = taken(&modified);
    assert_eq!(
        calls
            .iter()
            .map(|c| c.parameter_name_values().len())
            .collect::<Vec<_>>(),
        [20, 5]
    );
    let sent: Vec<(String, String)> = calls
        .iter()
        .flat_map(|c| c.parameter_name_values())
        .map(|p| {
            (
                p.parameter_name().unwrap_or_default().to_string(),
                p.parameter_value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(sent.contains(&("change".into(), "new".into())));
    assert!(sent.contains(&("new-23".into(), "v23".into())));
    assert!(
        !sent.iter().any(|(name, _)| name == "keep"),
        "unchanged is not sent"
    );
    assert_eq!(sent.len(), 25);
    let resets = taken(&reset_seen);
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0].reset_all_parameters(), Some(false));
    let names: Vec<&str> = resets[0]
        .parameter_name_values()
        .iter()
        .filter_map(|p| p.parameter_name())
        .collect();
    assert_eq!(names, ["gone-1", "gone-2"]);
    assert!(resets[0]
        .parameter_name_values()
        .iter()
        .all(|p| p.parameter_value().is_none()));
    assert_eq!(observed.props, after);
}

#[tokio::test]
async fn parameter_group_create_then_sets_its_parameters_and_tags_at_creation() {
    let created: Log<CreateCacheParameterGroupInput> = log();
    let create = mock!(Client::create_cache_parameter_group).then_compute_output({
        let created = created.clone();
        move |req| {
            created.lock().expect("lock").push(req.clone());
            CreateCacheParameterGroupOutput::builder()
                .cache_parameter_group(parameter_group())
                .build()
        }
    });
    let busy = mock!(Client::modify_cache_parameter_group).then_http_response(|| {
        elasticache_error(
            400,
            "InvalidCacheParameterGroupState",
            "The parameter group is being modified.",
        )
    });
    let modified: Log<ModifyCacheParameterGroupInput> = log();
    let modify = mock!(Client::modify_cache_parameter_group).then_compute_output({
        let modified = modified.clone();
        move |req| {
            modified.lock().expect("lock").push(req.clone());
            ModifyCacheParameterGroupOutput::builder().build()
        }
    });
    let rt = parameter_type(&[&create, &busy, &modify]);
    let props = parameters_desired(json!({"maxmemory-policy": "allkeys-lru"}));

    let observed = rt.create(&ctx(), &props).await.expect("created");

    let input = taken(&created)
        .pop()
        .expect("CreateCacheParameterGroup called");
    assert_eq!(input.cache_parameter_group_name(), Some(PARAMS));
    assert_eq!(input.cache_parameter_group_family(), Some("redis7"));
    assert_eq!(input.description(), Some("Managed by plinth"));
    assert_eq!(input.tags(), aws_tags(&owner_tags()));
    assert_eq!(busy.num_calls(), 1, "busy was retried");
    let input = taken(&modified)
        .pop()
        .expect("ModifyCacheParameterGroup called");
    assert_eq!(input.parameter_name_values().len(), 1);
    assert_eq!(observed.props, props);

    // Without parameters nothing is modified.
    let create = mock!(Client::create_cache_parameter_group).then_output(|| {
        CreateCacheParameterGroupOutput::builder()
            .cache_parameter_group(parameter_group())
            .build()
    });
    let rt = parameter_type(&[&create]);
    let props = parameters_desired(json!({}));
    assert_eq!(
        rt.create(&ctx(), &props).await.expect("created").props,
        props
    );
}

#[tokio::test]
async fn parameter_group_delete_retries_while_in_use_and_is_pending_under_no_wait() {
    let in_use = || {
        elasticache_error(
            400,
            "InvalidCacheParameterGroupState",
            "One or more cache clusters are still members of this parameter group sessions-redis7, so the group cannot be deleted.",
        )
    };
    let delete = mock!(Client::delete_cache_parameter_group)
        .sequence()
        .http_response(in_use)
        .output(|| DeleteCacheParameterGroupOutput::builder().build())
        .build();
    let rt = parameter_type(&[&delete]);
    rt.delete(&ctx(), PARAMS, &Props::new())
        .await
        .expect("deleted");
    assert_eq!(delete.num_calls(), 2);

    let delete = mock!(Client::delete_cache_parameter_group)
        .sequence()
        .http_response(in_use)
        .repeatedly()
        .build();
    let rt = parameter_type(&[&delete]);
    let ctx_no_wait = ctx()
        .without_waiting_for_deletion()
        .with_deadline(Some(Duration::from_millis(300)));
    rt.delete(&ctx_no_wait, PARAMS, &Props::new())
        .await
        .expect("pending");
    assert!(ctx_no_wait
        .pending_deletion()
        .is_some_and(|r| r.contains("still in use")));

    let gone = mock!(Client::delete_cache_parameter_group).then_http_response(|| {
        not_found(
            "CacheParameterGroupNotFound",
            "CacheParameterGroup sessions-redis7 not found.",
        )
    });
    parameter_type(&[&gone])
        .delete(&ctx(), PARAMS, &Props::new())
        .await
        .expect("already gone is deleted");
}

#[test]
fn parameter_group_check_and_replacement() {
    let rt = parameter_type(&[]);
    let found = issues(
        &rt,
        json!({"name": "Sessions", "family": "mysql8.0", "description": " ", "parameters": {"timeout": ""}}),
    );
    assert_issues(
        &found,
        &[
            ("name", "uppercase"),
            ("family", "unknown family"),
            ("description", "requires a description"),
            ("parameters.timeout", "empty value"),
        ],
    );
    assert_issues(
        &issues(&rt, json!({"name": "2fast--", "family": "redis7"})),
        &[("name", "starts with a letter")],
    );
    for family in ["redis7", "redis6.x", "valkey8", "memcached1.6", "redis2.8"] {
        assert!(
            issues(&rt, json!({"name": PARAMS, "family": family})).is_empty(),
            "{family}"
        );
    }
    let before = parameters_desired(json!({}));
    let mut after = before.clone();
    after.insert("description".into(), json!("other"));
    assert_eq!(rt.replace_reasons(&before, &after), ["description"]);
    after.insert("family".into(), json!("valkey8"));
    assert_eq!(
        rt.replace_reasons(&before, &after),
        ["family", "description"]
    );
}

#[test]
fn lint_warns_when_a_group_admits_the_replication_groups_port_from_anywhere() {
    let rt = rg_type_offline();
    let linked = |cidr: &str| {
        vec![Linked {
            prop: "security_group_ids".into(),
            path: vec![plinth_core::value::PathSeg::Key(
                "security_group_ids".into(),
            )],
            resource: "cache_sg".into(),
            type_name: "ec2.security_group".into(),
            props: obj(json!({"ingress": [
                {"protocol": "tcp", "from_port": 6380, "to_port": 6380, "cidr_ipv4": cidr},
            ]})),
        }]
    };
    let props = rg_desired(json!({"port": 6380, "security_group_ids": ["sg-0a"]}));
    let warnings = rt.lint(&props, &linked("0.0.0.0/0"));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(path_to_string(&warnings[0].path), "security_group_ids");
    assert!(
        warnings[0].message.contains("6380 from 0.0.0.0/0"),
        "{}",
        warnings[0].message
    );
    assert!(rt.lint(&props, &linked("10.0.0.0/16")).is_empty());
}

#[tokio::test]
async fn a_version_written_shorter_is_no_upgrade_and_a_higher_one_is_sent() {
    // Read without a prior version: AWS's full version.
    let before = rg_desired(json!({"engine_version": "7.1.0"}));
    let same = rg_desired(json!({"engine_version": "7.1"}));
    let last = describe_rg(rg(Described::default()));
    let [describe, list, primary] = read_rules(rg(Described::default()));
    // Sequential, no ModifyReplicationGroup rule: a modify would fail the test.
    let rt = group_type(&[&last, &describe, &list, &primary]);
    let observed = rt
        .update(&ctx(), RG, &before, &same)
        .await
        .expect("nothing to change");
    assert_eq!(
        observed.props["engine_version"],
        json!("7.1"),
        "recorded as written"
    );

    let modified: Log<ModifyReplicationGroupInput> = log();
    let modify = mock!(Client::modify_replication_group).then_compute_output({
        let modified = modified.clone();
        move |req| {
            modified.lock().expect("lock").push(req.clone());
            ModifyReplicationGroupOutput::builder().build()
        }
    });
    let waits = describe_rg_statuses(&["available"], 2, "cache.t4g.small");
    let last = describe_rg(rg(Described::default()));
    let [describe, list, primary] = read_rules(rg(Described::default()));
    let rt = group_type(&[&modify, &waits, &last, &describe, &list, &primary]);
    rt.update(
        &ctx(),
        RG,
        &same,
        &rg_desired(json!({"engine_version": "7.2"})),
    )
    .await
    .expect("upgraded");
    let input = taken(&modified)
        .pop()
        .expect("ModifyReplicationGroup called");
    assert_eq!(input.engine_version(), Some("7.2"));
    assert_eq!(input.apply_immediately(), Some(true));
}

// ---------------------------------------------------------------------------------------------
// Creates whose answer was lost: the SDK sent them again, and the group exists

#[tokio::test]
async fn a_subnet_group_create_whose_answer_was_lost_adopts_the_group_it_made() {
    let exists = mock!(Client::create_cache_subnet_group).then_http_response(|| {
        elasticache_error(
            400,
            "CacheSubnetGroupAlreadyExists",
            "Cache subnet group cache-subnets already exists.",
        )
    });
    let group = || describe_subnet_group(subnet_group(&["subnet-a", "subnet-b"]));
    let (found, reread) = (group(), group());
    let tags = tags_rule(owner_tags());
    let rt = subnet_type(&[&exists, &found, &tags, &reread]);
    let props = subnet_desired(json!({"subnet_ids": ["subnet-a", "subnet-b"]}));
    let observed = rt.create(&ctx(), &props).await.expect("adopted");
    assert_eq!(observed.id, SUBNETS);
    assert_eq!(observed.props, props);

    // Another stack's group of that name is a clash.
    let exists = mock!(Client::create_cache_subnet_group).then_http_response(|| {
        elasticache_error(
            400,
            "CacheSubnetGroupAlreadyExists",
            "Cache subnet group cache-subnets already exists.",
        )
    });
    let found = group();
    let theirs = tags_rule(
        json!({"plinth:stack": "other", "plinth:workspace": "default", "plinth:resource": "cache"}),
    );
    let err = subnet_type(&[&exists, &found, &theirs])
        .create(&ctx(), &props)
        .await
        .expect_err("not ours");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("already exists"), "{err}");
}

#[tokio::test]
async fn a_parameter_group_create_whose_answer_was_lost_adopts_the_group_and_sets_its_parameters() {
    let exists = mock!(Client::create_cache_parameter_group).then_http_response(|| {
        elasticache_error(
            400,
            "CacheParameterGroupAlreadyExists",
            "Parameter group sessions-redis7 already exists",
        )
    });
    let (found, reread) = (describe_parameter_group(), describe_parameter_group());
    // Made, but its parameters not set yet: the create goes on to set them.
    let none_yet = mock!(Client::describe_cache_parameters)
        .then_output(|| DescribeCacheParametersOutput::builder().build());
    let tags = tags_rule(owner_tags());
    let set: Log<ModifyCacheParameterGroupInput> = log();
    let modify = mock!(Client::modify_cache_parameter_group).then_compute_output({
        let set = set.clone();
        move |req| {
            set.lock().expect("log").push(req.clone());
            ModifyCacheParameterGroupOutput::builder()
                .cache_parameter_group_name(PARAMS)
                .build()
        }
    });
    let rt = parameter_type(&[&exists, &found, &none_yet, &tags, &reread, &modify]);
    let props = parameters_desired(json!({"maxmemory-policy": "allkeys-lru"}));
    let observed = rt.create(&ctx(), &props).await.expect("adopted");
    assert_eq!(observed.id, PARAMS);
    let sent = taken(&set);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].parameter_name_values()[0].parameter_name(),
        Some("maxmemory-policy")
    );
}

#[tokio::test]
async fn a_replication_group_create_whose_answer_was_lost_adopts_the_group_and_waits_for_it() {
    let exists = mock!(Client::create_replication_group).then_http_response(|| {
        elasticache_error(
            400,
            "ReplicationGroupAlreadyExists",
            "Replication group with specified name already exists.",
        )
    });
    let [describe, tags, primary] = read_rules(rg(Described::default()));
    let waits = describe_rg_statuses(&["creating", "available"], 2, "cache.t4g.small");
    let [again, tags_again, primary_again] = read_rules(rg(Described::default()));
    let rt = group_type(&[
        &exists,
        &describe,
        &tags,
        &primary,
        &waits,
        &again,
        &tags_again,
        &primary_again,
    ]);
    let observed = rt
        .create(&ctx(), &rg_desired(json!({})))
        .await
        .expect("adopted");
    assert_eq!(observed.id, RG);
    assert_eq!(exists.num_calls(), 1, "no second group");
    assert!(waits.num_calls() >= 2, "waited until available");
}

#[tokio::test]
async fn log_delivery_changes_go_in_place_and_a_log_type_removed_is_disabled() {
    let before = rg_desired(json!({"log_delivery": [
        {"log_type": "engine-log", "log_group": "/lab/redis"},
        {"log_type": "slow-log", "log_group": "/lab/redis"}
    ]}));
    let after = rg_desired(json!({"log_delivery": [
        {"log_type": "slow-log", "log_group": "/lab/redis-slow", "format": "text"}
    ]}));
    assert!(group_type(&[]).replace_reasons(&before, &after).is_empty());
    let modified: Log<ModifyReplicationGroupInput> = log();
    let modify = mock!(Client::modify_replication_group).then_compute_output({
        let modified = modified.clone();
        move |req| {
            modified.lock().expect("lock").push(req.clone());
            ModifyReplicationGroupOutput::builder().build()
        }
    });
    let waits = describe_rg_statuses(&["modifying", "available"], 2, "cache.t4g.small");
    let last = describe_rg(rg(Described::default()));
    let [describe, list, _] = read_rules(rg(Described::default()));
    let primary = member_rule();
    let rt = group_type(&[&modify, &waits, &last, &describe, &list, &primary]);

    rt.update(
        &ctx_with(Arc::new(Recorded::default())),
        RG,
        &before,
        &after,
    )
    .await
    .expect("updated");

    let inputs = taken(&modified);
    assert_eq!(inputs.len(), 1, "one ModifyReplicationGroup");
    type Sent = (String, Option<bool>, Option<String>, Option<String>);
    let sent: Vec<Sent> = inputs[0]
        .log_delivery_configurations()
        .iter()
        .map(|c| {
            (
                c.log_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                c.enabled(),
                c.destination_details()
                    .and_then(|d| d.cloud_watch_logs_details())
                    .and_then(|d| d.log_group())
                    .map(str::to_string),
                c.log_format().map(|f| f.as_str().to_string()),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            (
                "slow-log".to_string(),
                Some(true),
                Some("/lab/redis-slow".to_string()),
                Some("text".to_string())
            ),
            ("engine-log".to_string(), Some(false), None, None),
        ]
    );
    assert_eq!(
        inputs[0].cache_node_type(),
        None,
        "only what changed is sent"
    );
}

#[tokio::test]
async fn moving_to_another_user_group_adds_the_new_and_removes_what_the_group_has() {
    let before = rg_desired(json!({"auth_token": null, "user_group": "lab-users"}));
    let after = rg_desired(json!({"auth_token": null, "user_group": "lab-users-v2"}));
    assert!(group_type(&[]).replace_reasons(&before, &after).is_empty());
    let modified: Log<ModifyReplicationGroupInput> = log();
    let modify = mock!(Client::modify_replication_group).then_compute_output({
        let modified = modified.clone();
        move |req| {
            modified.lock().expect("lock").push(req.clone());
            ModifyReplicationGroupOutput::builder().build()
        }
    });
    // What the group has when the change is made: the old user group.
    let mut attached = rg(Described::default());
    attached.user_group_ids = Some(vec!["lab-users".to_string()]);
    let current = describe_rg(attached);
    let waits = describe_rg_statuses(&["modifying", "available"], 2, "cache.t4g.small");
    let last = describe_rg(rg(Described::default()));
    let [describe, list, _] = read_rules(rg(Described::default()));
    let primary = member_rule();
    let rt = group_type(&[&current, &modify, &waits, &last, &describe, &list, &primary]);

    rt.update(
        &ctx_with(Arc::new(Recorded::default())),
        RG,
        &before,
        &after,
    )
    .await
    .expect("updated");

    let inputs = taken(&modified);
    assert_eq!(inputs.len(), 1, "one ModifyReplicationGroup");
    assert_eq!(current.num_calls(), 1, "read just before the change");
    assert_eq!(inputs[0].user_group_ids_to_add(), ["lab-users-v2"]);
    assert_eq!(inputs[0].user_group_ids_to_remove(), ["lab-users"]);
    assert_eq!(
        inputs[0].cache_node_type(),
        None,
        "only what changed is sent"
    );
}

#[test]
fn a_user_group_needs_tls_and_no_auth_token() {
    let issues = |extra: serde_json::Value| -> Vec<String> {
        group_type(&[])
            .check(&rg_desired(extra))
            .iter()
            .map(|i| {
                format!(
                    "{}: {}",
                    plinth_core::value::path_to_string(&i.path),
                    i.message
                )
            })
            .collect()
    };
    let plain =
        issues(json!({"user_group": "lab-users", "transit_encryption": false, "auth_token": null}));
    assert!(
        plain
            .iter()
            .any(|i| i.starts_with("user_group: user_group needs transit_encryption")),
        "{plain:?}"
    );
    let both = issues(json!({"user_group": "lab-users"}));
    assert!(
        both.iter()
            .any(|i| i.contains("an auth_token or a user_group, not both")),
        "{both:?}"
    );
    assert!(issues(json!({"user_group": "lab-users", "auth_token": null})).is_empty());
}
