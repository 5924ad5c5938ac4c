//! `ec2.security_group` and `ec2.default_vpc` against replayed EC2 responses: what the
//! emulator cannot show (DependencyViolation, throttling, merged permissions), plus the
//! canonical form both sides of a diff must share.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::operation::authorize_security_group_ingress::AuthorizeSecurityGroupIngressOutput;
use aws_sdk_ec2::operation::create_security_group::{
    CreateSecurityGroupInput, CreateSecurityGroupOutput,
};
use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
use aws_sdk_ec2::operation::delete_security_group::DeleteSecurityGroupOutput;
use aws_sdk_ec2::operation::delete_tags::DeleteTagsOutput;
use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
use aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput;
use aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsOutput;
use aws_sdk_ec2::operation::revoke_security_group_egress::RevokeSecurityGroupEgressOutput;
use aws_sdk_ec2::operation::revoke_security_group_ingress::RevokeSecurityGroupIngressOutput;
use aws_sdk_ec2::operation::update_security_group_rule_descriptions_ingress::UpdateSecurityGroupRuleDescriptionsIngressOutput;
use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, SecurityGroup as Group, Subnet, Tag, UserIdGroupPair, Vpc,
};
use aws_sdk_ec2::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use plinth_aws::resources::ec2_default_vpc::DefaultVpc;
use plinth_aws::resources::ec2_security_group::SecurityGroup;
use plinth_aws::Aws;
use plinth_core::resource::{ErrorKind, NormalizeContext, OpContext, ResourceType};
use plinth_core::value::{path_to_string, Props, UNKNOWN};
use serde_json::{json, Value};

use crate::mock_support::{ec2_error, mocked_aws, REGION};

const OWNER: &str = "123456789012";

/// A client answering from `rules`, retrying like the real SDK but without the long waits.
fn ec2_client(mode: RuleMode, rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_ec2, mode, rules, |conf| conf.retry_config(
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1))
    ))
}

fn aws_with(mode: RuleMode, rules: &[&Rule]) -> Arc<Aws> {
    let aws = mocked_aws();
    aws.insert_ec2(REGION, ec2_client(mode, rules));
    aws
}

fn ctx() -> OpContext {
    OpContext::new(REGION, "app_sg")
}

fn props(value: Value) -> Props {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn normalized(value: Value) -> Props {
    let sg = SecurityGroup::new(mocked_aws());
    let mut props = props(value);
    sg.normalize(&mut props, &NormalizeContext::default())
        .expect("normalizes");
    props
}

/// Everything a mocked call received, in order.
type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn taken<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().expect("log lock").clone()
}

fn tcp(port: i32) -> aws_sdk_ec2::types::builders::IpPermissionBuilder {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
}

fn cidr(block: &str) -> IpRange {
    IpRange::builder().cidr_ip(block).build()
}

fn pair(group: &str) -> UserIdGroupPair {
    UserIdGroupPair::builder()
        .group_id(group)
        .user_id(OWNER)
        .build()
}

fn allow_all_out() -> IpPermission {
    IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(cidr("0.0.0.0/0"))
        .build()
}

fn group(id: &str, ingress: Vec<IpPermission>, egress: Vec<IpPermission>) -> Group {
    Group::builder()
        .group_id(id)
        .group_name("app")
        .description("app servers")
        .vpc_id("vpc-1")
        .owner_id(OWNER)
        .set_ip_permissions(Some(ingress))
        .set_ip_permissions_egress(Some(egress))
        .tags(Tag::builder().key("plinth:stack").value("lab").build())
        .build()
}

fn describe_returns(group: Group) -> Rule {
    mock!(Client::describe_security_groups).then_output(move || {
        DescribeSecurityGroupsOutput::builder()
            .security_groups(group.clone())
            .build()
    })
}

fn dependency_violation() -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    ec2_error(
        400,
        "DependencyViolation",
        "resource sg-0123 has a dependent object",
    )
}

// ---------------------------------------------------------------------------------------
// normalize and check

#[test]
fn normalize_expands_shorthands_fills_defaults_and_sorts() {
    let props = normalized(json!({
        "name": "app",
        "ingress": [
            {"protocol": "tcp", "ports": "8000-8100", "cidrs": ["192.168.0.0/16", "10.0.0.0/8"]},
            {"protocol": "tcp", "ports": 22, "cidr": "2001:DB8::/32", "description": "ssh"},
            {"protocol": "icmp", "cidr": "10.0.0.0/8"},
            {"protocol": "all", "self": true, "description": ""},
        ],
        "tags": {"b": "2", "a": "1"},
    }));
    assert_eq!(
        Value::Object(props.clone()),
        json!({
            "name": "app",
            "description": "Managed by plinth",
            "ingress": [
                {"protocol": "all", "from_port": -1, "to_port": -1, "self": true},
                {"protocol": "icmp", "from_port": -1, "to_port": -1, "cidr_ipv4": "10.0.0.0/8"},
                {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_ipv6": "2001:db8::/32", "description": "ssh"},
                {"protocol": "tcp", "from_port": 8000, "to_port": 8100, "cidr_ipv4": "10.0.0.0/8"},
                {"protocol": "tcp", "from_port": 8000, "to_port": 8100, "cidr_ipv4": "192.168.0.0/16"},
            ],
            "egress": [
                {"protocol": "all", "from_port": -1, "to_port": -1, "cidr_ipv4": "0.0.0.0/0"},
            ],
            "tags": {"a": "1", "b": "2"},
        })
    );
    let tag_keys: Vec<&String> = props["tags"].as_object().expect("tags").keys().collect();
    assert_eq!(tag_keys, ["a", "b"]);
}

#[test]
fn normalize_keeps_an_explicit_empty_egress_and_is_idempotent() {
    let once = normalized(json!({
        "name": "db",
        "description": "database",
        "egress": [],
        "ingress": [{"protocol": "udp", "ports": "53", "security_group": "sg-0456"}],
    }));
    assert_eq!(once["egress"], json!([]));
    assert_eq!(
        once["ingress"],
        json!([{"protocol": "udp", "from_port": 53, "to_port": 53, "security_group_id": "sg-0456"}])
    );
    let twice = normalized(Value::Object(once.clone()));
    assert_eq!(twice, once);
    let no_rules = normalized(json!({"name": "bare"}));
    assert_eq!(no_rules["ingress"], json!([]));
}

#[test]
fn normalize_keeps_unknown_references_as_unknown() {
    let props = normalized(json!({
        "name": "cache",
        "ingress": [{"protocol": "tcp", "ports": 6379, "security_group": UNKNOWN}],
    }));
    assert_eq!(
        props["ingress"],
        json!([{"protocol": "tcp", "from_port": 6379, "to_port": 6379, "security_group_id": UNKNOWN}])
    );
}

#[test]
fn check_reports_semantic_problems_at_their_paths() {
    let sg = SecurityGroup::new(mocked_aws());
    let issues = sg.check(&props(json!({
        "name": "sg-app",
        "ingress": [
            {"protocol": "tcp", "ports": 80, "cidr": "10.0.0.0/8", "security_group": "sg-1"},
            {"protocol": "all", "ports": 80, "cidr": "0.0.0.0/0"},
            {"protocol": "tcp", "ports": "9000-8000", "cidr": "10.0.0.0/8"},
            {"protocol": "tcp", "ports": 80, "cidr": "10.0.0.300/8"},
            {"protocol": "tcp", "cidr": "10.0.0.0/8"},
            {"protocol": "tcp", "ports": 443, "cidrs": ["10.0.0.0/8", "10.1.2.3/16"]},
            {"protocol": "tcp", "ports": 22, "cidr": "10.0.0.0/8"},
            {"protocol": "tcp", "ports": "22", "cidrs": ["10.0.0.0/8"], "description": "again"},
        ],
        "egress": [
            {"protocol": "tcp", "ports": 5432, "security_group": UNKNOWN},
            {"protocol": "tcp", "ports": 5432, "security_group": UNKNOWN},
            {"protocol": "icmp", "icmp_code": 3, "cidr": "::/0"},
        ],
    })));
    let found: Vec<(String, String)> = issues
        .iter()
        .map(|i| (path_to_string(&i.path), i.message.clone()))
        .collect();
    let expected = [
        ("name", "cannot start with sg-"),
        (
            "ingress[0]",
            "exactly one source but this one has cidr and security_group",
        ),
        ("ingress[1].ports", "protocol all allows every port"),
        ("ingress[2].ports", "port range 9000-8000 is reversed"),
        ("ingress[3].cidr", "10.0.0.300/8 is not a CIDR block"),
        ("ingress[4].ports", "ports is required for tcp"),
        (
            "ingress[5].cidrs[1]",
            "10.1.2.3/16 has host bits set; the network is 10.1.0.0/16",
        ),
        ("ingress[7]", "allows the same traffic as ingress[6]"),
        ("egress[2].icmp_code", "icmp_code needs an icmp_type"),
    ];
    assert_eq!(found.len(), expected.len(), "issues: {found:#?}");
    for (path, text) in expected {
        assert!(
            found.iter().any(|(p, m)| p == path && m.contains(text)),
            "no issue at {path} containing {text:?} in {found:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// read

#[tokio::test]
async fn read_splits_merged_permissions_maps_own_group_to_self_and_equals_normalize() {
    let web = tcp(80)
        .ip_ranges(cidr("10.0.0.0/8"))
        .ip_ranges(
            IpRange::builder()
                .cidr_ip("192.168.0.0/16")
                .description("office")
                .build(),
        )
        .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
        .user_id_group_pairs(pair("sg-0123"))
        .user_id_group_pairs(pair("sg-0456"))
        .build();
    // Protocol numbers are what the API uses for "all" (and some tools for the rest).
    let everything_from_self = IpPermission::builder()
        .ip_protocol("-1")
        .user_id_group_pairs(pair("sg-0123"))
        .build();
    let describe = describe_returns(group(
        "sg-0123",
        vec![web, everything_from_self],
        vec![allow_all_out()],
    ));
    let sg = SecurityGroup::new(aws_with(RuleMode::MatchAny, &[&describe]));

    let observed = sg
        .read(&ctx(), "sg-0123", &Props::new())
        .await
        .expect("read")
        .expect("exists");

    assert_eq!(
        observed.props["ingress"],
        json!([
            {"protocol": "all", "from_port": -1, "to_port": -1, "self": true},
            {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr_ipv4": "10.0.0.0/8"},
            {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr_ipv4": "192.168.0.0/16", "description": "office"},
            {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr_ipv6": "::/0"},
            {"protocol": "tcp", "from_port": 80, "to_port": 80, "security_group_id": "sg-0456"},
            {"protocol": "tcp", "from_port": 80, "to_port": 80, "self": true},
        ])
    );
    assert_eq!(
        observed.attrs["arn"],
        json!("arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123")
    );
    assert_eq!(observed.attrs["vpc_id"], json!("vpc-1"));
    assert_eq!(observed.props["vpc_id"], json!("vpc-1"));

    // The same group as a person writes it (leaving the VPC to AWS) diffs as equal.
    let mut desired = normalized(json!({
        "name": "app",
        "description": "app servers",
        "ingress": [
            {"protocol": "tcp", "ports": 80, "cidrs": ["10.0.0.0/8"]},
            {"protocol": "tcp", "ports": 80, "cidr": "192.168.0.0/16", "description": "office"},
            {"protocol": "tcp", "ports": "80-80", "cidr": "::/0"},
            {"protocol": "tcp", "ports": 80, "security_group": "sg-0456"},
            {"protocol": "tcp", "ports": 80, "self": true},
            {"protocol": "all", "self": true},
        ],
        "tags": {"plinth:stack": "lab"},
    }));
    assert!(!desired.contains_key("vpc_id"));
    plinth_core::plan::planner::fill_computed(sg.schema(), &mut desired, &observed.props);
    assert_eq!(observed.props, desired);
}

#[tokio::test]
async fn read_reports_the_vpc_whether_or_not_the_stack_set_it() {
    let describe = describe_returns(group("sg-0123", vec![], vec![allow_all_out()]));
    let sg = SecurityGroup::new(aws_with(RuleMode::MatchAny, &[&describe]));
    let prior = props(json!({"vpc_id": "vpc-1"}));
    let observed = sg
        .read(&ctx(), "sg-0123", &prior)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(observed.props["vpc_id"], json!("vpc-1"));
    let observed = sg
        .read(&ctx(), "sg-0123", &Props::new())
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(observed.props["vpc_id"], json!("vpc-1"));
}

#[tokio::test]
async fn read_of_a_group_that_is_gone_is_none() {
    // Asked by a `group-id` filter, AWS answers an empty list for a group that is gone (by
    // GroupIds it would fail the whole call), so one missing group never costs a batch.
    let describe = mock!(Client::describe_security_groups)
        .match_requests(|r| {
            r.group_ids().is_empty()
                && r.filters()
                    .iter()
                    .any(|f| f.name() == Some("group-id") && f.values() == ["sg-0123".to_string()])
        })
        .then_output(|| DescribeSecurityGroupsOutput::builder().build());
    let sg = SecurityGroup::new(aws_with(RuleMode::MatchAny, &[&describe]));
    let observed = sg
        .read(&ctx(), "sg-0123", &Props::new())
        .await
        .expect("not found is not an error");
    assert_eq!(observed, None);
    assert_eq!(describe.num_calls(), 1);
}

#[tokio::test]
async fn throttled_calls_are_retried_by_the_sdk() {
    let described = group("sg-0123", vec![], vec![allow_all_out()]);
    let describe = mock!(Client::describe_security_groups)
        .sequence()
        .http_response(|| ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."))
        .times(2)
        .output(move || {
            DescribeSecurityGroupsOutput::builder()
                .security_groups(described.clone())
                .build()
        })
        .build();
    let sg = SecurityGroup::new(aws_with(RuleMode::MatchAny, &[&describe]));
    let observed = sg
        .read(&ctx(), "sg-0123", &Props::new())
        .await
        .expect("retried until it succeeded");
    assert_eq!(observed.map(|o| o.id), Some("sg-0123".to_string()));
    assert_eq!(describe.num_calls(), 3);
}

// ---------------------------------------------------------------------------------------
// delete

#[tokio::test]
async fn delete_revokes_cross_group_rules_then_retries_through_dependency_violation() {
    let ingress = vec![
        tcp(6379)
            .user_id_group_pairs(pair("sg-0456"))
            .user_id_group_pairs(pair("sg-0123"))
            .ip_ranges(cidr("10.0.0.0/8"))
            .build(),
        tcp(22).ip_ranges(cidr("10.0.0.0/8")).build(),
    ];
    let egress = vec![
        allow_all_out(),
        tcp(5432).user_id_group_pairs(pair("sg-0789")).build(),
    ];
    let describe = describe_returns(group("sg-0123", ingress, egress));
    let revoked_in = log();
    let revoke_in = mock!(Client::revoke_security_group_ingress).then_compute_output({
        let revoked_in = revoked_in.clone();
        move |req| {
            revoked_in
                .lock()
                .unwrap()
                .push(req.ip_permissions().to_vec());
            RevokeSecurityGroupIngressOutput::builder()
                .r#return(true)
                .build()
        }
    });
    let revoked_out = log();
    let revoke_out = mock!(Client::revoke_security_group_egress).then_compute_output({
        let revoked_out = revoked_out.clone();
        move |req| {
            revoked_out
                .lock()
                .unwrap()
                .push(req.ip_permissions().to_vec());
            RevokeSecurityGroupEgressOutput::builder()
                .r#return(true)
                .build()
        }
    });
    // The delete is sent first (most groups have nothing to let go of); refused, the group
    // drops its references to others, then is deleted once the rest lets go of it.
    let refused = mock!(Client::delete_security_group).then_http_response(dependency_violation);
    let delete = mock!(Client::delete_security_group)
        .sequence()
        .http_response(dependency_violation)
        .output(|| DeleteSecurityGroupOutput::builder().r#return(true).build())
        .build();
    // Sequential: the revokes must come between the first delete and the others.
    let aws = aws_with(
        RuleMode::Sequential,
        &[&refused, &describe, &revoke_in, &revoke_out, &delete],
    );
    let sg = SecurityGroup::new(aws);

    sg.delete(&ctx(), "sg-0123", &Props::new())
        .await
        .expect("deleted once the dependency went away");

    let other_only = |port, other| vec![tcp(port).user_id_group_pairs(pair(other)).build()];
    assert_eq!(taken(&revoked_in), vec![other_only(6379, "sg-0456")]);
    assert_eq!(taken(&revoked_out), vec![other_only(5432, "sg-0789")]);
    assert_eq!(refused.num_calls() + delete.num_calls(), 3);
}

#[tokio::test]
async fn delete_gives_up_at_the_deadline_with_a_clear_error() {
    let describe = describe_returns(group("sg-0123", vec![], vec![allow_all_out()]));
    let delete = mock!(Client::delete_security_group)
        .sequence()
        .http_response(dependency_violation)
        .repeatedly()
        .build();
    let sg = SecurityGroup::new(aws_with(RuleMode::MatchAny, &[&describe, &delete]));
    let ctx = ctx().with_deadline(Some(Duration::from_millis(300)));
    let started = Instant::now();

    let err = sg
        .delete(&ctx, "sg-0123", &Props::new())
        .await
        .expect_err("still in use at the deadline");

    assert_eq!(err.kind, ErrorKind::InUse);
    assert_eq!(err.code.as_deref(), Some("DependencyViolation"));
    assert!(
        err.message
            .contains("resource sg-0123 has a dependent object"),
        "{err}"
    );
    assert!(err.message.contains("still uses the group"), "{err}");
    assert!(delete.num_calls() >= 2, "retried before giving up");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn deleting_a_group_that_is_gone_succeeds_without_more_calls() {
    let delete = mock!(Client::delete_security_group).then_http_response(|| {
        ec2_error(
            400,
            "InvalidGroup.NotFound",
            "The security group 'sg-0123' does not exist",
        )
    });
    // Sequential with one rule: any further call would fail the test.
    let sg = SecurityGroup::new(aws_with(RuleMode::Sequential, &[&delete]));
    sg.delete(&ctx(), "sg-0123", &Props::new())
        .await
        .expect("already gone is deleted");
    assert_eq!(delete.num_calls(), 1);
}

// ---------------------------------------------------------------------------------------
// update and create

#[tokio::test]
async fn update_authorizes_and_revokes_exactly_the_differing_rules() {
    let before = normalized(json!({
        "name": "app",
        "ingress": [
            {"protocol": "tcp", "ports": 22, "cidr": "10.0.0.0/8"},
            {"protocol": "tcp", "ports": 443, "cidr": "0.0.0.0/0"},
            {"protocol": "tcp", "ports": 80, "cidr": "0.0.0.0/0", "description": "web"},
        ],
        "tags": {"a": "1", "b": "2"},
    }));
    let after = normalized(json!({
        "name": "app",
        "ingress": [
            {"protocol": "tcp", "ports": 443, "cidr": "0.0.0.0/0"},
            {"protocol": "tcp", "ports": 6379, "security_group": "sg-0456"},
            {"protocol": "tcp", "ports": 80, "cidr": "0.0.0.0/0", "description": "public web"},
        ],
        "tags": {"a": "1", "c": "3"},
    }));
    let authorized = log();
    let authorize = mock!(Client::authorize_security_group_ingress).then_compute_output({
        let authorized = authorized.clone();
        move |req| {
            authorized
                .lock()
                .unwrap()
                .push(req.ip_permissions().to_vec());
            AuthorizeSecurityGroupIngressOutput::builder()
                .r#return(true)
                .build()
        }
    });
    let revoked = log();
    let revoke = mock!(Client::revoke_security_group_ingress).then_compute_output({
        let revoked = revoked.clone();
        move |req| {
            revoked.lock().unwrap().push(req.ip_permissions().to_vec());
            RevokeSecurityGroupIngressOutput::builder()
                .r#return(true)
                .build()
        }
    });
    let redescribed = log();
    let redescribe = mock!(Client::update_security_group_rule_descriptions_ingress)
        .then_compute_output({
            let redescribed = redescribed.clone();
            move |req| {
                redescribed
                    .lock()
                    .unwrap()
                    .push(req.ip_permissions().to_vec());
                UpdateSecurityGroupRuleDescriptionsIngressOutput::builder()
                    .r#return(true)
                    .build()
            }
        });
    let tagged = log();
    let tag = mock!(Client::create_tags).then_compute_output({
        let tagged = tagged.clone();
        move |req| {
            tagged.lock().unwrap().push(req.tags().to_vec());
            CreateTagsOutput::builder().build()
        }
    });
    let untagged = log();
    let untag = mock!(Client::delete_tags).then_compute_output({
        let untagged = untagged.clone();
        move |req| {
            untagged.lock().unwrap().push(req.tags().to_vec());
            DeleteTagsOutput::builder().build()
        }
    });
    let describe = describe_returns(group("sg-0123", vec![], vec![allow_all_out()]));
    // No egress operation is mocked: touching egress would fail the test.
    let aws = aws_with(
        RuleMode::MatchAny,
        &[&authorize, &revoke, &redescribe, &tag, &untag, &describe],
    );
    let sg = SecurityGroup::new(aws);

    let observed = sg
        .update(&ctx(), "sg-0123", &before, &after)
        .await
        .expect("updated");

    assert_eq!(observed.id, "sg-0123");
    assert_eq!(
        taken(&authorized),
        vec![vec![tcp(6379)
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-0456").build())
            .build()]]
    );
    assert_eq!(
        taken(&revoked),
        vec![vec![tcp(22).ip_ranges(cidr("10.0.0.0/8")).build()]]
    );
    assert_eq!(
        taken(&redescribed),
        vec![vec![tcp(80)
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip("0.0.0.0/0")
                    .description("public web")
                    .build()
            )
            .build()]]
    );
    assert_eq!(
        taken(&tagged),
        vec![vec![Tag::builder().key("c").value("3").build()]]
    );
    assert_eq!(
        taken(&untagged),
        vec![vec![Tag::builder().key("b").build()]]
    );
}

#[tokio::test]
async fn create_tags_at_creation_and_replaces_the_default_egress_when_egress_is_empty() {
    let props = normalized(json!({
        "name": "app",
        "description": "app servers",
        "ingress": [{"protocol": "tcp", "ports": 443, "cidr": "0.0.0.0/0", "description": "https"}],
        "egress": [],
        "tags": {"plinth:stack": "lab"},
    }));
    let created: Log<CreateSecurityGroupInput> = log();
    let create = mock!(Client::create_security_group).then_compute_output({
        let created = created.clone();
        move |req| {
            created.lock().unwrap().push(req.clone());
            CreateSecurityGroupOutput::builder()
                .group_id("sg-0123")
                .build()
        }
    });
    let visible = describe_returns(group("sg-0123", vec![], vec![allow_all_out()]));
    let authorized = log();
    let authorize = mock!(Client::authorize_security_group_ingress).then_compute_output({
        let authorized = authorized.clone();
        move |req| {
            authorized
                .lock()
                .unwrap()
                .push(req.ip_permissions().to_vec());
            AuthorizeSecurityGroupIngressOutput::builder()
                .r#return(true)
                .build()
        }
    });
    let revoked = log();
    let revoke = mock!(Client::revoke_security_group_egress).then_compute_output({
        let revoked = revoked.clone();
        move |req| {
            revoked.lock().unwrap().push(req.ip_permissions().to_vec());
            RevokeSecurityGroupEgressOutput::builder()
                .r#return(true)
                .build()
        }
    });
    let https = tcp(443)
        .ip_ranges(
            IpRange::builder()
                .cidr_ip("0.0.0.0/0")
                .description("https")
                .build(),
        )
        .build();
    let done = describe_returns(group("sg-0123", vec![https.clone()], vec![]));
    let aws = aws_with(
        RuleMode::Sequential,
        &[&create, &visible, &authorize, &revoke, &done],
    );
    let sg = SecurityGroup::new(aws);

    let observed = sg.create(&ctx(), &props).await.expect("created");

    let input = taken(&created).pop().expect("CreateSecurityGroup called");
    assert_eq!(input.group_name(), Some("app"));
    assert_eq!(input.description(), Some("app servers"));
    assert_eq!(input.vpc_id(), None);
    let spec = &input.tag_specifications()[0];
    assert_eq!(
        spec.tags(),
        [Tag::builder().key("plinth:stack").value("lab").build()]
    );
    assert_eq!(taken(&authorized), vec![vec![https]]);
    assert_eq!(taken(&revoked), vec![vec![allow_all_out()]]);
    assert_eq!(observed.props, with_vpc(props, "vpc-1"));
}

#[tokio::test]
async fn create_with_default_egress_and_no_ingress_makes_no_rule_calls() {
    let props = normalized(
        json!({"name": "app", "description": "app servers", "tags": {"plinth:stack": "lab"}}),
    );
    let create = mock!(Client::create_security_group).then_output(|| {
        CreateSecurityGroupOutput::builder()
            .group_id("sg-0123")
            .build()
    });
    let visible = describe_returns(group("sg-0123", vec![], vec![allow_all_out()]));
    let sg = SecurityGroup::new(aws_with(RuleMode::Sequential, &[&create, &visible]));

    let observed = sg.create(&ctx(), &props).await.expect("created");

    assert_eq!(observed.id, "sg-0123");
    assert_eq!(observed.props, with_vpc(props, "vpc-1"));
    assert_eq!(visible.num_calls(), 1);
}

/// Desired props as read back: the VPC AWS chose is reported.
fn with_vpc(mut props: Props, vpc: &str) -> Props {
    props.insert("vpc_id".into(), json!(vpc));
    props
}

#[tokio::test]
async fn find_adopts_a_group_by_name_default_vpc_and_plinth_tags() {
    let vpcs = mock!(Client::describe_vpcs).then_output(|| {
        DescribeVpcsOutput::builder()
            .vpcs(Vpc::builder().vpc_id("vpc-1").is_default(true).build())
            .build()
    });
    let describe = mock!(Client::describe_security_groups)
        .match_requests(|req| {
            let filter = |name: &str| {
                req.filters()
                    .iter()
                    .find(|f| f.name() == Some(name))
                    .map(|f| f.values().to_vec())
            };
            filter("group-name") == Some(vec!["app".into()])
                && filter("vpc-id") == Some(vec!["vpc-1".into()])
                && filter("tag:plinth:stack") == Some(vec!["lab".into()])
                && filter("tag:plinth:expires-at").is_none()
        })
        .then_output(|| {
            DescribeSecurityGroupsOutput::builder()
                .security_groups(group("sg-0123", vec![], vec![allow_all_out()]))
                .build()
        });
    let sg = SecurityGroup::new(aws_with(RuleMode::Sequential, &[&vpcs, &describe]));
    let desired = normalized(json!({
        "name": "app",
        "tags": {"plinth:stack": "lab", "plinth:expires-at": "2030-01-01T00:00:00Z"},
    }));

    let found = sg.find(&ctx(), &desired).await.expect("find");

    assert_eq!(found.map(|o| o.id), Some("sg-0123".to_string()));
}

// ---------------------------------------------------------------------------------------
// ec2.default_vpc

#[tokio::test]
async fn default_vpc_lookup_returns_the_vpc_and_its_sorted_subnets() {
    let vpcs = mock!(Client::describe_vpcs)
        .match_requests(|req| {
            req.filters()
                .iter()
                .any(|f| f.name() == Some("is-default") && f.values() == ["true"])
        })
        .then_output(|| {
            DescribeVpcsOutput::builder()
                .vpcs(
                    Vpc::builder()
                        .vpc_id("vpc-1")
                        .cidr_block("172.31.0.0/16")
                        .is_default(true)
                        .build(),
                )
                .build()
        });
    let subnets = mock!(Client::describe_subnets)
        .match_requests(|req| {
            req.filters()
                .iter()
                .any(|f| f.name() == Some("vpc-id") && f.values() == ["vpc-1"])
        })
        .then_output(|| {
            let subnet = |id: &str| Subnet::builder().subnet_id(id).vpc_id("vpc-1").build();
            DescribeSubnetsOutput::builder()
                .subnets(subnet("subnet-c"))
                .subnets(subnet("subnet-a"))
                .subnets(subnet("subnet-b"))
                .build()
        });
    let vpc = DefaultVpc::new(aws_with(RuleMode::Sequential, &[&vpcs, &subnets]));

    let observed = vpc.lookup(&ctx(), &Props::new()).await.expect("found");

    assert_eq!(observed.id, "vpc-1");
    assert_eq!(
        Value::Object(observed.attrs),
        json!({"id": "vpc-1", "cidr_block": "172.31.0.0/16", "subnet_ids": ["subnet-a", "subnet-b", "subnet-c"]})
    );
}

#[tokio::test]
async fn default_vpc_lookup_without_a_default_vpc_says_how_to_create_one() {
    let vpcs = mock!(Client::describe_vpcs).then_output(|| DescribeVpcsOutput::builder().build());
    let vpc = DefaultVpc::new(aws_with(RuleMode::Sequential, &[&vpcs]));

    let err = vpc
        .lookup(&ctx(), &Props::new())
        .await
        .expect_err("no default VPC");

    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message.contains("us-east-1 has no default VPC"),
        "{err}"
    );
    assert!(err.message.contains("aws ec2 create-default-vpc"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Answers lost after AWS did the work: the SDK sends the call again

fn duplicate_group() -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    ec2_error(
        400,
        "InvalidGroup.Duplicate",
        "The security group 'app' already exists for VPC 'vpc-1'",
    )
}

fn duplicate_rule() -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    ec2_error(
        400,
        "InvalidPermission.Duplicate",
        "the specified rule \"peer: 10.0.0.0/8, TCP, from port: 443, to port: 443, ALLOW\" already exists",
    )
}

fn two_rules() -> Props {
    normalized(json!({
        "name": "app",
        "description": "app servers",
        "ingress": [
            {"protocol": "tcp", "ports": 443, "cidr": "10.0.0.0/8"},
            {"protocol": "tcp", "ports": 80, "cidr": "10.0.0.0/8"},
        ],
        "tags": {"plinth:stack": "lab"},
    }))
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_adopts_its_group_and_adds_its_rules() {
    let create = mock!(Client::create_security_group).then_http_response(duplicate_group);
    let vpcs = mock!(Client::describe_vpcs).then_output(|| {
        DescribeVpcsOutput::builder()
            .vpcs(Vpc::builder().vpc_id("vpc-1").is_default(true).build())
            .build()
    });
    let found = describe_returns(group("sg-0123", vec![], vec![allow_all_out()]));
    let authorized = log();
    let authorize = mock!(Client::authorize_security_group_ingress).then_compute_output({
        let authorized = authorized.clone();
        move |req| {
            authorized.lock().unwrap().push(req.ip_permissions().len());
            AuthorizeSecurityGroupIngressOutput::builder()
                .r#return(true)
                .build()
        }
    });
    let done = describe_returns(group(
        "sg-0123",
        vec![
            tcp(80).ip_ranges(cidr("10.0.0.0/8")).build(),
            tcp(443).ip_ranges(cidr("10.0.0.0/8")).build(),
        ],
        vec![allow_all_out()],
    ));
    let sg = SecurityGroup::new(aws_with(
        RuleMode::Sequential,
        &[&create, &vpcs, &found, &authorize, &done],
    ));
    let observed = sg.create(&ctx(), &two_rules()).await.expect("adopted");
    assert_eq!(observed.id, "sg-0123");
    assert_eq!(create.num_calls(), 1, "no second group");
    assert_eq!(taken(&authorized), vec![2]);
}

#[tokio::test]
async fn rules_that_exist_already_are_not_added_twice_and_the_missing_ones_are() {
    let created = mock!(Client::create_security_group).then_output(|| {
        CreateSecurityGroupOutput::builder()
            .group_id("sg-0123")
            .build()
    });
    let visible = describe_returns(group("sg-0123", vec![], vec![allow_all_out()]));
    // AWS refuses the whole call when any rule of it exists: here the one for 443.
    let refused =
        mock!(Client::authorize_security_group_ingress).then_http_response(duplicate_rule);
    let https = tcp(443).ip_ranges(cidr("10.0.0.0/8")).build();
    let half = describe_returns(group("sg-0123", vec![https.clone()], vec![allow_all_out()]));
    let authorized = log();
    let authorize = mock!(Client::authorize_security_group_ingress).then_compute_output({
        let authorized = authorized.clone();
        move |req| {
            authorized
                .lock()
                .unwrap()
                .push(req.ip_permissions().to_vec());
            AuthorizeSecurityGroupIngressOutput::builder()
                .r#return(true)
                .build()
        }
    });
    let http = tcp(80).ip_ranges(cidr("10.0.0.0/8")).build();
    let done = describe_returns(group(
        "sg-0123",
        vec![http.clone(), https],
        vec![allow_all_out()],
    ));
    let sg = SecurityGroup::new(aws_with(
        RuleMode::Sequential,
        &[&created, &visible, &refused, &half, &authorize, &done],
    ));
    sg.create(&ctx(), &two_rules()).await.expect("created");
    assert_eq!(
        taken(&authorized),
        vec![vec![http]],
        "only the missing rule"
    );

    // All of them there already (the whole first call had been carried out): nothing more.
    let created = mock!(Client::create_security_group).then_output(|| {
        CreateSecurityGroupOutput::builder()
            .group_id("sg-0123")
            .build()
    });
    let visible = describe_returns(group("sg-0123", vec![], vec![allow_all_out()]));
    let refused =
        mock!(Client::authorize_security_group_ingress).then_http_response(duplicate_rule);
    let both = || {
        describe_returns(group(
            "sg-0123",
            vec![
                tcp(80).ip_ranges(cidr("10.0.0.0/8")).build(),
                tcp(443).ip_ranges(cidr("10.0.0.0/8")).build(),
            ],
            vec![allow_all_out()],
        ))
    };
    let (reread, read_back) = (both(), both());
    let sg = SecurityGroup::new(aws_with(
        RuleMode::Sequential,
        &[&created, &visible, &refused, &reread, &read_back],
    ));
    sg.create(&ctx(), &two_rules()).await.expect("created");
    assert_eq!(refused.num_calls(), 1);
}
