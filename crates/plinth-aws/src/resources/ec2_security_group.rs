//! `ec2.security_group`: a VPC security group with its ingress and egress rules.
//!
//! Rules have one canonical form on both sides of the diff: one entry per source with
//! explicit ports, sorted. AWS merges rules that share protocol and ports into one
//! `IpPermission` and a person writes `cidrs:` lists; both are flattened to that form, so
//! neither shows as a change. Updates touch only the rules that differ, because revoking
//! everything and adding it back would cut live connections.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::builders::IpPermissionBuilder;
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType as Ec2ResourceType,
    SecurityGroup as Group, TagSpecification, UserIdGroupPair,
};
use aws_sdk_ec2::Client;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, is_unknown, str_of, unknown, PathSeg, Props};
use serde_json::{json, Map, Value};

use crate::batch::{Coalescer, Fetch, PerRegion};
use crate::errors::SendExt;
use crate::resources::ec2_common as common;
use crate::resources::{ec2_default_vpc, tags};
use crate::wait::{self, Poll};
use crate::Aws;

const DEFAULT_DESCRIPTION: &str = "Managed by plinth";
/// CreateSecurityGroup's answer for a name the VPC has already.
const GROUP_EXISTS: &str = "InvalidGroup.Duplicate";
/// AuthorizeSecurityGroup*'s answer when a rule of the call exists already.
const RULE_EXISTS: &str = "InvalidPermission.Duplicate";
const PROTOCOLS: &[&str] = &["tcp", "udp", "icmp", "icmpv6", "all"];
/// The keys a person writes to name where traffic comes from (or goes to).
const WRITTEN_SOURCES: &[&str] = &["cidr", "cidrs", "security_group", "self", "prefix_list_id"];
/// The source keys of a canonical rule; exactly one is present.
const SOURCE_KEYS: &[&str] = &[
    "cidr_ipv4",
    "cidr_ipv6",
    "security_group_id",
    "self",
    "prefix_list_id",
];
/// Groups read by one DescribeSecurityGroups: AWS takes up to 200 values in one filter.
const BATCH_READ: usize = 200;
/// How long a group's read waits for others to share its call: a fraction of one AWS
/// round trip.
const BATCH_LINGER: Duration = Duration::from_millis(15);
/// An ENI of a deleting cache cluster or load balancer keeps a group busy for minutes.
const DELETE_LIMIT: Duration = Duration::from_secs(15 * 60);
/// AWS's limit for names and descriptions of groups and rules.
const MAX_TEXT: usize = 255;
/// The characters AWS accepts in VPC group names and descriptions and in rule descriptions.
const TEXT_SYMBOLS: &str = " ._-:/()#,@[]+=&;{}!$*";

/// The `ec2.security_group` resource type.
pub struct SecurityGroup {
    aws: Arc<Aws>,
    schema: TypeSchema,
    /// Reads of single groups asked for at about the same time (the visibility waits of
    /// many groups being created) go out as one DescribeSecurityGroups.
    groups: PerRegion<Group>,
}

impl SecurityGroup {
    pub fn new(aws: Arc<Aws>) -> SecurityGroup {
        let clients = aws.clone();
        let groups = PerRegion::new(move |region| {
            let ec2 = clients.ec2(region);
            let fetch: Fetch<Group> = Arc::new(move |ids| {
                let ec2 = ec2.clone();
                Box::pin(async move { describe_groups(&ec2, ids).await })
            });
            Coalescer::new(fetch, BATCH_READ, BATCH_LINGER)
        });
        SecurityGroup {
            aws,
            schema: schema(),
            groups,
        }
    }

    /// One group, read together with whatever other reads are asked for at the same time.
    async fn read_group(&self, region: &str, id: &str) -> ResourceResult<Option<Group>> {
        self.groups.region(region).get(id).await
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "ec2.security_group",
        description: "A VPC security group with its ingress and egress rules",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("name", Shape::String)
                .prefixable(255)
                .required()
                .replaces()
                .known_as(&["group_name"])
                .unique_within(&["vpc_id"])
                .doc("the group name (GroupName), unique in its VPC"),
            Prop::new("description", Shape::String)
                .replaces()
                .known_as(&["group_description"])
                .doc("the group description; default \"Managed by plinth\""),
            Prop::new("vpc_id", Shape::String)
                .computed()
                .replaces()
                .doc("the VPC; default: the region's default VPC"),
            Prop::new("ingress", Shape::list(rule_shape()))
                .deferrable()
                .known_as(&["ip_permissions"])
                .doc("inbound rules; default none"),
            Prop::new("egress", Shape::list(rule_shape()))
                .deferrable()
                .known_as(&["ip_permissions_egress"])
                .doc("outbound rules; default: all traffic to 0.0.0.0/0; [] for none"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the group"),
        ]),
        attributes: vec![
            Attr::new("id", Shape::String, "the group id (sg-…)"),
            Attr::new("arn", Shape::String, "the group ARN"),
            Attr::new("name", Shape::String, "the group name"),
            Attr::new("vpc_id", Shape::String, "the VPC the group belongs to"),
        ],
    }
}

fn rule_shape() -> Shape {
    Shape::Object(vec![
        Prop::new("protocol", Shape::Enum(PROTOCOLS))
            .required()
            .known_as(&["ip_protocol"])
            .doc("tcp, udp, icmp, icmpv6 or all"),
        Prop::new(
            "ports",
            Shape::OneOf(vec![Shape::int_range(0, 65535), Shape::String]),
        )
        .known_as(&["from_port", "to_port"])
        .doc("a port (443) or a range (\"8000-8100\"); required for tcp and udp"),
        Prop::new("icmp_type", Shape::int_range(-1, 255)).doc("ICMP type; default -1 (all)"),
        Prop::new("icmp_code", Shape::int_range(-1, 255)).doc("ICMP code; default -1 (all)"),
        Prop::new("cidr", Shape::String)
            .known_as(&["cidr_ipv4", "cidr_ipv6", "cidr_ip"])
            .doc("an IPv4 or IPv6 CIDR block"),
        Prop::new("cidrs", Shape::list(Shape::String))
            .known_as(&[
                "cidr_blocks",
                "ipv6_cidr_blocks",
                "ip_ranges",
                "ipv6_ranges",
            ])
            .doc("CIDR blocks, one rule each"),
        Prop::new("security_group", Shape::String)
            .known_as(&[
                "referenced_security_group_id",
                "source_security_group_id",
                "security_groups",
            ])
            // Not `holds_referent`: a rule lets go of a group replaced delete-first (it is
            // deferrable) and names the new one once it exists.
            .doc("another group's id, e.g. ${app_sg.id}"),
        Prop::new("self", Shape::Bool).doc("true: members of this group"),
        Prop::new("prefix_list_id", Shape::String)
            .known_as(&["prefix_list_ids"])
            .doc("a managed prefix list (pl-…)"),
        Prop::new("description", Shape::String).doc("the rule description"),
    ])
}

#[async_trait]
impl ResourceType for SecurityGroup {
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
        let mut issues = group_issues(props);
        for key in ["ingress", "egress"] {
            if let Some(Value::Array(rules)) = props.get(key) {
                issues.extend(rule_list_issues(key, rules));
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        props.retain(|_, v| !v.is_null());
        props
            .entry("description")
            .or_insert_with(|| json!(DEFAULT_DESCRIPTION));
        let ingress = match props.get("ingress") {
            Some(list) => canonical_rule_list(list, "ingress")?,
            None => json!([]),
        };
        // AWS gives every new VPC group an allow-all egress rule; `egress: []` removes it.
        let egress = match props.get("egress") {
            Some(list) => canonical_rule_list(list, "egress")?,
            None => json!([default_egress()]),
        };
        props.insert("ingress".into(), ingress);
        props.insert("egress".into(), egress);
        if props.contains_key("tags") {
            props.insert("tags".into(), tags::tags_value(tags::tags_of(props)));
        }
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["name", "vpc_id"])
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        match self.read_group(&ctx.region, id).await? {
            Some(group) => observe(&group, &ctx.region).map(Some),
            None => Ok(None),
        }
    }

    fn read_batch_size(&self) -> usize {
        BATCH_READ
    }

    /// One DescribeSecurityGroups for many groups.
    async fn read_batch(
        &self,
        ctx: &OpContext,
        items: &[(String, Props)],
    ) -> ResourceResult<Vec<Option<Observed>>> {
        let ec2 = self.aws.ec2(&ctx.region);
        let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        let groups = describe_groups(&ec2, ids).await?;
        items
            .iter()
            .map(|(id, _)| match groups.get(id) {
                Some(group) => observe(group, &ctx.region).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(&ctx.region);
        // Before its references resolve, nothing can be identified yet.
        let Some(name) = known_str(props.get("name")) else {
            return Ok(None);
        };
        let vpc_id = match props.get("vpc_id") {
            Some(vpc_id) => match known_str(Some(vpc_id)) {
                Some(vpc_id) => vpc_id.to_string(),
                None => return Ok(None),
            },
            None => match ec2_default_vpc::default_vpc(&ec2).await? {
                Some(vpc) => vpc.vpc_id().unwrap_or_default().to_string(),
                None => return Ok(None),
            },
        };
        let out = ec2
            .describe_security_groups()
            .set_filters(Some(find_filters(name, &vpc_id, props)))
            .send()
            .await
            .classified()?;
        match out.security_groups().first() {
            Some(group) => {
                tracing::debug!(name, group = ?group.group_id(), "adopting a security group");
                observe(group, &ctx.region).map(Some)
            }
            None => Ok(None),
        }
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "ec2", "security-group/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let ec2 = self.aws.ec2(&ctx.region);
        let mut observed = match create_group(&ec2, props).await {
            Ok(id) => {
                let group = self.wait_visible(ctx, &id).await?;
                // A new group has no ingress and AWS's allow-all egress (whatever a read this
                // early shows); reach `props` from there.
                let mut fresh = observe(&group, &ctx.region)?;
                fresh.props.insert("ingress".into(), json!([]));
                fresh
                    .props
                    .insert("egress".into(), json!([default_egress()]));
                fresh
            }
            Err(err) => {
                let name = str_of(props, "name").unwrap_or_default();
                let what = format!("a security group named {name} in this VPC");
                crate::errors::adopt_if_ours(err, &[GROUP_EXISTS], &what, || self.find(ctx, props))
                    .await?
            }
        };
        let id = observed.id.clone();
        apply_rules(&ec2, &ctx.region, &id, &observed.props, props).await?;
        // The rules are now the desired ones, in the canonical form a read gives: reading
        // them back would be a call that tells nothing new.
        for key in ["ingress", "egress"] {
            if let Some(rules) = props.get(key) {
                observed.props.insert(key.into(), rules.clone());
            }
        }
        Ok(observed)
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let ec2 = self.aws.ec2(&ctx.region);
        common::update_tags(&ec2, id, before, after).await?;
        apply_rules(&ec2, &ctx.region, id, before, after).await?;
        self.read(ctx, id, after)
            .await?
            .ok_or_else(|| crate::errors::vanished(&format!("security group {}", id)))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let ec2 = self.aws.ec2(&ctx.region);
        let err = match delete_group(&ec2, id).await {
            Err(err) if err.kind == ErrorKind::InUse => err,
            other => return other,
        };
        tracing::debug!(group = id, error = %err, "the group is in use");
        // Two groups whose rules name each other can only go once those rules are gone; the
        // core does not order such a pair, so a group still referenced drops its own
        // references to others, then is deleted once nothing holds it.
        if let Some(group) = describe_group(&ec2, id).await? {
            revoke_cross_group_rules(&ec2, &group).await?;
        }
        let what = format!("deleting security group {id}");
        let ec2 = &ec2;
        wait::delete_when_free(ctx, &what, DELETE_LIMIT, move || delete_group(ec2, id))
            .await
            .map_err(explain_in_use)
    }
}

impl SecurityGroup {
    /// A new group may not be visible to reads at once; rules need it to be.
    async fn wait_visible(&self, ctx: &OpContext, id: &str) -> ResourceResult<Group> {
        let what = format!("security group {id} to exist");
        wait::until(ctx, &what, wait::VISIBLE_LIMIT, || async {
            Ok(match self.read_group(&ctx.region, id).await? {
                Some(group) => Poll::Ready(group),
                None => Poll::Pending("not visible yet".into()),
            })
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------
// Canonical rules

/// A problem in one written rule, at a path relative to the rule (empty: the whole rule).
struct Problem {
    path: Vec<PathSeg>,
    message: String,
}

impl Problem {
    fn rule(message: impl Into<String>) -> Problem {
        Problem {
            path: vec![],
            message: message.into(),
        }
    }
    fn at(key: &str, message: impl Into<String>) -> Problem {
        Problem {
            path: vec![PathSeg::Key(key.into())],
            message: message.into(),
        }
    }
}

/// AWS's allow-all egress rule that every new VPC group starts with.
fn default_egress() -> Value {
    json!({"protocol": "all", "from_port": -1, "to_port": -1, "cidr_ipv4": "0.0.0.0/0"})
}

fn canonical_rule_list(list: &Value, key: &str) -> ResourceResult<Value> {
    if is_unknown(list) {
        return Ok(list.clone());
    }
    let items = list
        .as_array()
        .ok_or_else(|| ResourceError::invalid(format!("{key} must be a list of rules")))?;
    let mut rules = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let expanded = item
            .as_object()
            .ok_or_else(|| Problem::rule("a rule must be a map"))
            .and_then(expand_rule)
            .map_err(|p| ResourceError::invalid(located(key, i, &p)))?;
        rules.extend(expanded);
    }
    sort_rules(&mut rules);
    Ok(Value::Array(rules))
}

fn located(key: &str, index: usize, problem: &Problem) -> String {
    let mut path = vec![PathSeg::Key(key.into()), PathSeg::Index(index)];
    path.extend(problem.path.iter().cloned());
    format!(
        "{}: {}",
        plinth_core::value::path_to_string(&path),
        problem.message
    )
}

/// One written rule as canonical rules, one per source.
fn expand_rule(rule: &Map<String, Value>) -> Result<Vec<Value>, Problem> {
    if rule.contains_key("from_port") {
        // Already canonical (normalized before): keeping it makes normalize idempotent.
        return Ok(vec![Value::Object(rule.clone())]);
    }
    let protocol = rule
        .get("protocol")
        .filter(|p| p.is_string())
        .ok_or_else(|| Problem::at("protocol", "protocol is required"))?;
    let (from, to) = port_range(protocol, rule)?;
    let description = rule.get("description").and_then(Value::as_str);
    Ok(written_sources(rule)?
        .into_iter()
        .map(|source| canonical(protocol, &from, &to, source, description))
        .collect())
}

fn canonical(
    protocol: &Value,
    from: &Value,
    to: &Value,
    (source, value): (&str, Value),
    description: Option<&str>,
) -> Value {
    let mut rule = Map::new();
    rule.insert("protocol".into(), protocol.clone());
    rule.insert("from_port".into(), from.clone());
    rule.insert("to_port".into(), to.clone());
    rule.insert(source.into(), value);
    if let Some(text) = description.filter(|d| !d.is_empty()) {
        rule.insert("description".into(), json!(text));
    }
    Value::Object(rule)
}

/// `from_port`/`to_port`: ports for tcp/udp, type/code for icmp, -1/-1 for all.
fn port_range(protocol: &Value, rule: &Map<String, Value>) -> Result<(Value, Value), Problem> {
    match protocol.as_str().unwrap_or_default() {
        "all" => Ok((json!(-1), json!(-1))),
        "icmp" | "icmpv6" => Ok((
            rule.get("icmp_type").cloned().unwrap_or_else(|| json!(-1)),
            rule.get("icmp_code").cloned().unwrap_or_else(|| json!(-1)),
        )),
        "tcp" | "udp" => match rule.get("ports") {
            None => Err(Problem::at("ports", "ports is required for tcp and udp")),
            Some(ports) if contains_unknown(ports) => Ok((unknown(), unknown())),
            Some(ports) => parse_ports(ports)
                .map(|(from, to)| (json!(from), json!(to)))
                .map_err(|m| Problem::at("ports", m)),
        },
        _ if is_unknown(protocol) => Ok((protocol.clone(), protocol.clone())),
        other => Err(Problem::at(
            "protocol",
            format!(
                "unknown protocol {other}; expected one of {}",
                PROTOCOLS.join(", ")
            ),
        )),
    }
}

/// `443` → (443, 443); `"8000-8100"` → (8000, 8100).
fn parse_ports(ports: &Value) -> Result<(i64, i64), String> {
    let bad = || {
        format!(
            "ports must be a port (443) or a range (\"8000-8100\") from 0 to 65535, not {ports}"
        )
    };
    let port = |text: &str| text.trim().parse::<u16>().map(i64::from).map_err(|_| bad());
    let (from, to) = match ports {
        Value::Number(n) => {
            let n = n
                .as_i64()
                .filter(|n| (0..=65535).contains(n))
                .ok_or_else(bad)?;
            (n, n)
        }
        Value::String(text) => match text.split_once('-') {
            Some((from, to)) => (port(from)?, port(to)?),
            None => (port(text)?, port(text)?),
        },
        _ => return Err(bad()),
    };
    if from > to {
        return Err(format!(
            "port range {from}-{to} is reversed; write \"{to}-{from}\""
        ));
    }
    Ok((from, to))
}

/// Whether a written rule names this source (`self: false` names none).
fn names_source(rule: &Map<String, Value>, key: &str) -> bool {
    match rule.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(on)) => *on,
        Some(_) => true,
    }
}

const NO_SOURCE: &str =
    "a rule needs a source: cidr, cidrs, security_group, self: true or prefix_list_id";

fn two_sources(given: &[&str]) -> String {
    format!(
        "a rule takes exactly one source but this one has {}; write one rule per source",
        given.join(" and ")
    )
}

/// The canonical `(key, value)` sources of a written rule.
fn written_sources(rule: &Map<String, Value>) -> Result<Vec<(&'static str, Value)>, Problem> {
    let given: Vec<&str> = WRITTEN_SOURCES
        .iter()
        .copied()
        .filter(|key| names_source(rule, key))
        .collect();
    let key = match given.as_slice() {
        [key] => *key,
        [] => return Err(Problem::rule(NO_SOURCE)),
        many => return Err(Problem::rule(two_sources(many))),
    };
    let value = rule.get(key).cloned().unwrap_or(Value::Null);
    match key {
        "cidr" => Ok(vec![
            cidr_source(&value).map_err(|m| Problem::at("cidr", m))?
        ]),
        "cidrs" => cidrs_sources(&value),
        "security_group" => Ok(vec![("security_group_id", value)]),
        "self" => Ok(vec![("self", json!(true))]),
        _ => Ok(vec![("prefix_list_id", value)]),
    }
}

fn cidrs_sources(value: &Value) -> Result<Vec<(&'static str, Value)>, Problem> {
    if is_unknown(value) {
        return Ok(vec![("cidr_ipv4", value.clone())]);
    }
    let list = value
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| Problem::at("cidrs", "cidrs must list at least one CIDR block"))?;
    list.iter()
        .enumerate()
        .map(|(j, cidr)| {
            cidr_source(cidr).map_err(|message| Problem {
                path: vec![PathSeg::Key("cidrs".into()), PathSeg::Index(j)],
                message,
            })
        })
        .collect()
}

/// `cidr_ipv6` when the block has a `:`, else `cidr_ipv4`; the text as AWS prints it.
fn cidr_source(value: &Value) -> Result<(&'static str, Value), String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("a CIDR block must be a string, not {value}"))?;
    if contains_unknown(value) {
        return Ok(("cidr_ipv4", value.clone()));
    }
    let canonical = parse_cidr(text)?;
    let key = if text.contains(':') {
        "cidr_ipv6"
    } else {
        "cidr_ipv4"
    };
    Ok((key, json!(canonical)))
}

/// Checks a CIDR block and returns it as AWS prints it (IPv6 lower-case and compressed).
fn parse_cidr(text: &str) -> Result<String, String> {
    let malformed = || format!("{text} is not a CIDR block (e.g. 10.0.0.0/16 or 2001:db8::/32)");
    let (addr, len) = text.split_once('/').ok_or_else(malformed)?;
    let len: u32 = len.parse().map_err(|_| malformed())?;
    let (network, host_bits) = if text.contains(':') {
        let ip: Ipv6Addr = addr.parse().map_err(|_| malformed())?;
        if len > 128 {
            return Err(malformed());
        }
        let host = u128::MAX.checked_shr(len).unwrap_or(0);
        (
            Ipv6Addr::from(u128::from(ip) & !host).to_string(),
            u128::from(ip) & host != 0,
        )
    } else {
        let ip: Ipv4Addr = addr.parse().map_err(|_| malformed())?;
        if len > 32 {
            return Err(malformed());
        }
        let host = u32::MAX.checked_shr(len).unwrap_or(0);
        (
            Ipv4Addr::from(u32::from(ip) & !host).to_string(),
            u32::from(ip) & host != 0,
        )
    };
    // AWS rejects blocks with host bits set; saying which network was meant saves a round trip.
    if host_bits {
        return Err(format!(
            "{text} has host bits set; the network is {network}/{len}"
        ));
    }
    Ok(format!("{network}/{len}"))
}

/// The stable order of canonical rules: protocol, ports, source, description.
fn sort_rules(rules: &mut Vec<Value>) {
    rules.sort_by_key(rule_key);
    rules.dedup();
}

fn rule_key(rule: &Value) -> (String, i64, i64, String, String, String) {
    let text = |key: &str| rule.get(key).map(value_text).unwrap_or_default();
    let port = |key: &str| rule.get(key).and_then(Value::as_i64).unwrap_or(i64::MAX);
    let (source, value) = SOURCE_KEYS
        .iter()
        .find_map(|key| rule.get(*key).map(|v| (key.to_string(), value_text(v))))
        .unwrap_or_default();
    (
        text("protocol"),
        port("from_port"),
        port("to_port"),
        source,
        value,
        text("description"),
    )
}

fn value_text(value: &Value) -> String {
    value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string())
}

/// A rule without its description: what AWS identifies a rule by.
fn identity(rule: &Value) -> Value {
    let mut rule = rule.clone();
    if let Some(map) = rule.as_object_mut() {
        map.remove("description");
    }
    rule
}

// ---------------------------------------------------------------------------------------
// Checks

fn group_issues(props: &Props) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    if let Some(name) = known_str(props.get("name")) {
        if name.starts_with("sg-") {
            issues.push(PropIssue::at(
                &["name"],
                "a group name cannot start with sg- (AWS reserves it for group ids)",
            ));
        }
        issues.extend(text_problem(name, "name").map(|m| PropIssue::at(&["name"], m)));
    }
    if let Some(description) = known_str(props.get("description")) {
        if description.is_empty() {
            issues.push(PropIssue::at(
                &["description"],
                "AWS requires a group description; leave the key out for \"Managed by plinth\"",
            ));
        }
        issues.extend(
            text_problem(description, "description").map(|m| PropIssue::at(&["description"], m)),
        );
    }
    if let Some(vpc_id) = known_str(props.get("vpc_id")) {
        if !vpc_id.starts_with("vpc-") {
            issues.push(PropIssue::at(
                &["vpc_id"],
                format!("vpc_id must be a VPC id (vpc-…), not {vpc_id}"),
            ));
        }
    }
    issues
}

/// The string in `value` unless it is (or contains) a value not known yet.
fn known_str(value: Option<&Value>) -> Option<&str> {
    value
        .filter(|v| !contains_unknown(v))
        .and_then(Value::as_str)
}

fn text_problem(text: &str, what: &str) -> Option<String> {
    if text.chars().count() > MAX_TEXT {
        return Some(format!(
            "{what} has {} characters; AWS allows at most {MAX_TEXT}",
            text.chars().count()
        ));
    }
    text.chars()
        .find(|c| !c.is_ascii_alphanumeric() && !TEXT_SYMBOLS.contains(*c))
        .map(|c| {
            format!(
                "{what} contains {c:?}, which AWS does not accept; \
                 use letters, digits, spaces and {}",
                TEXT_SYMBOLS.trim()
            )
        })
}

fn rule_list_issues(key: &str, rules: &[Value]) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    let mut seen: Vec<(Value, usize)> = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let Some(rule) = rule.as_object() else {
            continue;
        };
        let problems = rule_problems(rule);
        if problems.is_empty() {
            issues.extend(duplicate_issue(key, i, rule, &mut seen));
        }
        issues.extend(problems.iter().map(|p| {
            PropIssue {
                path: [PathSeg::Key(key.into()), PathSeg::Index(i)]
                    .into_iter()
                    .chain(p.path.iter().cloned())
                    .collect(),
                message: p.message.clone(),
            }
        }));
    }
    issues
}

/// AWS keeps one rule per protocol, ports and source and rejects a second one.
fn duplicate_issue(
    key: &str,
    index: usize,
    rule: &Map<String, Value>,
    seen: &mut Vec<(Value, usize)>,
) -> Option<PropIssue> {
    let mut issue = None;
    for canonical in expand_rule(rule).unwrap_or_default() {
        let id = identity(&canonical);
        if contains_unknown(&id) {
            continue;
        }
        match seen.iter().find(|(other, _)| *other == id) {
            Some((_, first)) if issue.is_none() => {
                let message = if *first == index {
                    "names the same source twice; AWS keeps only one such rule".to_string()
                } else {
                    format!(
                        "allows the same traffic as {key}[{first}] (same protocol, ports and \
                         source); AWS keeps only one such rule"
                    )
                };
                issue = Some(PropIssue {
                    path: vec![PathSeg::Key(key.into()), PathSeg::Index(index)],
                    message,
                });
            }
            Some(_) => {}
            None => seen.push((id, index)),
        }
    }
    issue
}

fn rule_problems(rule: &Map<String, Value>) -> Vec<Problem> {
    if rule.contains_key("from_port") {
        return Vec::new();
    }
    let protocol = known_str(rule.get("protocol"));
    let mut problems = port_problems(protocol, rule);
    problems.extend(source_problems(rule));
    if let Some(description) = known_str(rule.get("description")) {
        problems.extend(
            text_problem(description, "description").map(|m| Problem::at("description", m)),
        );
    }
    problems
}

fn port_problems(protocol: Option<&str>, rule: &Map<String, Value>) -> Vec<Problem> {
    match protocol {
        Some(p @ ("tcp" | "udp")) => tcp_udp_problems(p, rule),
        Some("all") => ["ports", "icmp_type", "icmp_code"]
            .into_iter()
            .filter(|key| given(rule, key))
            .map(|key| {
                Problem::at(
                    key,
                    format!(
                        "protocol all allows every port and type; \
                         remove {key} or use tcp, udp or icmp"
                    ),
                )
            })
            .collect(),
        Some("icmp" | "icmpv6") => icmp_problems(rule),
        _ => Vec::new(),
    }
}

fn given(rule: &Map<String, Value>, key: &str) -> bool {
    rule.get(key).is_some_and(|v| !v.is_null())
}

fn tcp_udp_problems(protocol: &str, rule: &Map<String, Value>) -> Vec<Problem> {
    let mut problems: Vec<Problem> = ["icmp_type", "icmp_code"]
        .into_iter()
        .filter(|key| given(rule, key))
        .map(|key| Problem::at(key, format!("{key} applies to icmp rules, not {protocol}")))
        .collect();
    match rule.get("ports").filter(|v| !v.is_null()) {
        None => problems.push(Problem::at(
            "ports",
            format!("ports is required for {protocol}: a port (443) or a range (\"8000-8100\")"),
        )),
        Some(ports) if contains_unknown(ports) => {}
        Some(ports) => problems.extend(parse_ports(ports).err().map(|m| Problem::at("ports", m))),
    }
    problems
}

fn icmp_problems(rule: &Map<String, Value>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if given(rule, "ports") {
        problems.push(Problem::at(
            "ports",
            "icmp rules take icmp_type and icmp_code, not ports",
        ));
    }
    let all_types = rule.get("icmp_type").is_none_or(|t| t == &json!(-1));
    let some_code = rule.get("icmp_code").is_some_and(|c| c != &json!(-1));
    if all_types && some_code {
        problems.push(Problem::at(
            "icmp_code",
            "icmp_code needs an icmp_type (a code only means something within a type)",
        ));
    }
    problems
}

fn source_problems(rule: &Map<String, Value>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if rule.get("self") == Some(&Value::Bool(false)) {
        problems.push(Problem::at(
            "self",
            "self: false names no source; remove it or write self: true",
        ));
    }
    if let Err(problem) = written_sources(rule) {
        // Malformed values are reported one by one below, with their own paths.
        if problem.path.is_empty() {
            problems.push(problem);
        }
    }
    if let Some(cidr) = known_str(rule.get("cidr")) {
        problems.extend(parse_cidr(cidr).err().map(|m| Problem::at("cidr", m)));
    }
    if let Some(Value::Array(cidrs)) = rule.get("cidrs") {
        problems.extend(cidrs_problems(cidrs));
    }
    if let Some(group) = known_str(rule.get("security_group")) {
        if !group.starts_with("sg-") {
            problems.push(Problem::at(
                "security_group",
                format!(
                    "security_group must be a group id (sg-…), e.g. ${{app_sg.id}}, not {group}"
                ),
            ));
        }
    }
    if let Some(list) = known_str(rule.get("prefix_list_id")) {
        if !list.starts_with("pl-") {
            problems.push(Problem::at(
                "prefix_list_id",
                format!("prefix_list_id must be a prefix list id (pl-…), not {list}"),
            ));
        }
    }
    problems
}

fn cidrs_problems(cidrs: &[Value]) -> Vec<Problem> {
    if cidrs.is_empty() {
        return vec![Problem::at(
            "cidrs",
            "cidrs must list at least one CIDR block",
        )];
    }
    cidrs
        .iter()
        .enumerate()
        .filter_map(|(j, cidr)| {
            let message = match cidr.as_str() {
                _ if contains_unknown(cidr) => return None,
                Some(text) => parse_cidr(text).err()?,
                None => format!("a CIDR block must be a string, not {cidr}"),
            };
            Some(Problem {
                path: vec![PathSeg::Key("cidrs".into()), PathSeg::Index(j)],
                message,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Between canonical rules and AWS permissions

/// The protocol as a stack file writes it; AWS answers with names or numbers.
fn canonical_protocol(aws: &str) -> String {
    match aws.to_ascii_lowercase().as_str() {
        "-1" | "all" => "all".into(),
        "6" | "tcp" => "tcp".into(),
        "17" | "udp" => "udp".into(),
        "1" | "icmp" => "icmp".into(),
        "58" | "icmpv6" => "icmpv6".into(),
        other => other.into(),
    }
}

fn api_protocol(protocol: &str) -> &str {
    if protocol == "all" {
        "-1"
    } else {
        protocol
    }
}

/// The AWS permission for one canonical rule; `None` when part of it is not known yet.
fn permission(rule: &Value, own_id: &str, with_description: bool) -> Option<IpPermission> {
    if contains_unknown(rule) {
        tracing::debug!(?rule, "skipping a rule whose values are not known yet");
        return None;
    }
    let rule = rule.as_object()?;
    let protocol = rule.get("protocol")?.as_str()?;
    let mut builder = IpPermission::builder().ip_protocol(api_protocol(protocol));
    if protocol != "all" {
        let port = |key: &str| rule.get(key)?.as_i64().and_then(|p| i32::try_from(p).ok());
        builder = builder
            .from_port(port("from_port")?)
            .to_port(port("to_port")?);
    }
    let description = rule
        .get("description")
        .and_then(Value::as_str)
        .filter(|_| with_description)
        .map(str::to_string);
    Some(with_source(builder, rule, own_id, description)?.build())
}

fn with_source(
    builder: IpPermissionBuilder,
    rule: &Map<String, Value>,
    own_id: &str,
    description: Option<String>,
) -> Option<IpPermissionBuilder> {
    let text = |key: &str| rule.get(key).and_then(Value::as_str);
    let pair = |group: &str| {
        UserIdGroupPair::builder()
            .group_id(group)
            .set_description(description.clone())
            .build()
    };
    if let Some(cidr) = text("cidr_ipv4") {
        let range = IpRange::builder().cidr_ip(cidr);
        Some(builder.ip_ranges(range.set_description(description).build()))
    } else if let Some(cidr) = text("cidr_ipv6") {
        let range = Ipv6Range::builder().cidr_ipv6(cidr);
        Some(builder.ipv6_ranges(range.set_description(description).build()))
    } else if let Some(group) = text("security_group_id") {
        Some(builder.user_id_group_pairs(pair(group)))
    } else if rule.get("self") == Some(&Value::Bool(true)) {
        Some(builder.user_id_group_pairs(pair(own_id)))
    } else {
        let list = PrefixListId::builder().prefix_list_id(text("prefix_list_id")?);
        Some(builder.prefix_list_ids(list.set_description(description).build()))
    }
}

fn permissions(rules: &[Value], own_id: &str, with_description: bool) -> Vec<IpPermission> {
    rules
        .iter()
        .filter_map(|rule| permission(rule, own_id, with_description))
        .collect()
}

/// AWS permissions as canonical rules: one per source, own-group pairs as `self`.
fn rules_from_permissions(permissions: &[IpPermission], own_id: &str) -> Vec<Value> {
    let mut rules = Vec::new();
    for perm in permissions {
        let protocol = json!(canonical_protocol(perm.ip_protocol().unwrap_or("-1")));
        let (from, to) = if protocol == "all" {
            (json!(-1), json!(-1))
        } else {
            (
                json!(perm.from_port().unwrap_or(-1)),
                json!(perm.to_port().unwrap_or(-1)),
            )
        };
        let mut push = |source: (&str, Value), description: Option<&str>| {
            rules.push(canonical(&protocol, &from, &to, source, description));
        };
        for range in perm.ip_ranges() {
            if let Some(cidr) = range.cidr_ip() {
                push(("cidr_ipv4", json!(cidr)), range.description());
            }
        }
        for range in perm.ipv6_ranges() {
            if let Some(cidr) = range.cidr_ipv6() {
                let cidr = parse_cidr(cidr).unwrap_or_else(|_| cidr.to_string());
                push(("cidr_ipv6", json!(cidr)), range.description());
            }
        }
        for list in perm.prefix_list_ids() {
            if let Some(id) = list.prefix_list_id() {
                push(("prefix_list_id", json!(id)), list.description());
            }
        }
        for pair in perm.user_id_group_pairs() {
            match pair.group_id() {
                Some(group) if group == own_id => push(("self", json!(true)), pair.description()),
                Some(group) => push(("security_group_id", json!(group)), pair.description()),
                None => {}
            }
        }
    }
    sort_rules(&mut rules);
    rules
}

/// The group's own rules that name other groups, as permissions to revoke.
fn cross_group_permissions(permissions: &[IpPermission], own_id: &str) -> Vec<IpPermission> {
    permissions
        .iter()
        .filter_map(|perm| {
            let pairs: Vec<UserIdGroupPair> = perm
                .user_id_group_pairs()
                .iter()
                .filter(|pair| pair.group_id().is_some_and(|g| g != own_id))
                .map(|pair| {
                    UserIdGroupPair::builder()
                        .set_group_id(pair.group_id().map(str::to_string))
                        .set_user_id(pair.user_id().map(str::to_string))
                        .build()
                })
                .collect();
            (!pairs.is_empty()).then(|| {
                IpPermission::builder()
                    .set_ip_protocol(perm.ip_protocol().map(str::to_string))
                    .set_from_port(perm.from_port())
                    .set_to_port(perm.to_port())
                    .set_user_id_group_pairs(Some(pairs))
                    .build()
            })
        })
        .collect()
}

/// What turns one rule list into another: rules to add, to revoke, and rules that only
/// change their description (changed in place, so the traffic never stops).
struct RuleChanges {
    authorize: Vec<Value>,
    redescribe: Vec<Value>,
    revoke: Vec<Value>,
}

fn rule_changes(before: &[Value], after: &[Value]) -> RuleChanges {
    let before_ids: Vec<Value> = before.iter().map(identity).collect();
    let after_ids: Vec<Value> = after.iter().map(identity).collect();
    RuleChanges {
        authorize: after
            .iter()
            .filter(|r| !before_ids.contains(&identity(r)))
            .cloned()
            .collect(),
        redescribe: after
            .iter()
            .filter(|r| before_ids.contains(&identity(r)) && !before.contains(r))
            .cloned()
            .collect(),
        revoke: before
            .iter()
            .filter(|r| !after_ids.contains(&identity(r)))
            .cloned()
            .collect(),
    }
}

fn rule_list(props: &Props, key: &str) -> Vec<Value> {
    props
        .get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// AWS calls

#[derive(Clone, Copy, Debug)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn key(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    async fn authorize(
        self,
        ec2: &Client,
        id: &str,
        perms: Vec<IpPermission>,
    ) -> ResourceResult<()> {
        tracing::debug!(
            group = id,
            direction = self.key(),
            count = perms.len(),
            "authorizing rules"
        );
        let perms = Some(perms);
        match self {
            Direction::Ingress => ec2
                .authorize_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(perms)
                .send()
                .await
                .classified()
                .map(|_| ()),
            Direction::Egress => ec2
                .authorize_security_group_egress()
                .group_id(id)
                .set_ip_permissions(perms)
                .send()
                .await
                .classified()
                .map(|_| ()),
        }
    }

    async fn redescribe(
        self,
        ec2: &Client,
        id: &str,
        perms: Vec<IpPermission>,
    ) -> ResourceResult<()> {
        tracing::debug!(
            group = id,
            direction = self.key(),
            count = perms.len(),
            "updating rule descriptions"
        );
        let perms = Some(perms);
        match self {
            Direction::Ingress => ec2
                .update_security_group_rule_descriptions_ingress()
                .group_id(id)
                .set_ip_permissions(perms)
                .send()
                .await
                .classified()
                .map(|_| ()),
            Direction::Egress => ec2
                .update_security_group_rule_descriptions_egress()
                .group_id(id)
                .set_ip_permissions(perms)
                .send()
                .await
                .classified()
                .map(|_| ()),
        }
    }

    async fn revoke(self, ec2: &Client, id: &str, perms: Vec<IpPermission>) -> ResourceResult<()> {
        tracing::debug!(
            group = id,
            direction = self.key(),
            count = perms.len(),
            "revoking rules"
        );
        let perms = Some(perms);
        let result = match self {
            Direction::Ingress => ec2
                .revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(perms)
                .send()
                .await
                .classified()
                .map(|_| ()),
            Direction::Egress => ec2
                .revoke_security_group_egress()
                .group_id(id)
                .set_ip_permissions(perms)
                .send()
                .await
                .classified()
                .map(|_| ()),
        };
        // The rule or the whole group being gone already is the outcome a revoke wants.
        match result {
            Err(err) if err.kind == ErrorKind::NotFound => {
                tracing::debug!(group = id, error = %err, "nothing left to revoke");
                Ok(())
            }
            other => other,
        }
    }
}

/// Changes the group's rules from `before` to `after`; true when anything was called.
async fn apply_rules(
    ec2: &Client,
    region: &str,
    id: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<bool> {
    let mut changed = false;
    for direction in [Direction::Ingress, Direction::Egress] {
        let key = direction.key();
        let changes = rule_changes(&rule_list(before, key), &rule_list(after, key));
        // Add before removing, so replacing a rule never leaves a moment with neither.
        if !changes.authorize.is_empty() {
            authorize_missing(ec2, region, id, direction, &changes.authorize, after).await?;
            changed = true;
        }
        let redescribe = permissions(&changes.redescribe, id, true);
        if !redescribe.is_empty() {
            direction.redescribe(ec2, id, redescribe).await?;
            changed = true;
        }
        let revoke = permissions(&changes.revoke, id, true);
        if !revoke.is_empty() {
            direction.revoke(ec2, id, revoke).await?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Authorizes `rules`. AWS refuses the whole call when any of them exists already
/// (`InvalidPermission.Duplicate`): the SDK sent it again after the answer to the first
/// attempt was lost, or someone added a rule meanwhile. Then the group is read again and only
/// the rules still missing are added.
async fn authorize_missing(
    ec2: &Client,
    region: &str,
    id: &str,
    direction: Direction,
    rules: &[Value],
    after: &Props,
) -> ResourceResult<()> {
    let err = match direction
        .authorize(ec2, id, permissions(rules, id, true))
        .await
    {
        Err(err) if crate::errors::has_code(&err, &[RULE_EXISTS]) => err,
        other => return other,
    };
    tracing::debug!(group = id, error = %err, "some rules exist already: adding the others");
    let group = describe_group(ec2, id)
        .await?
        .ok_or_else(|| crate::errors::vanished(&format!("security group {id}")))?;
    let actual = observe(&group, region)?.props;
    let key = direction.key();
    let missing = rule_changes(&rule_list(&actual, key), &rule_list(after, key)).authorize;
    if missing.is_empty() {
        return Ok(());
    }
    direction
        .authorize(ec2, id, permissions(&missing, id, true))
        .await
}

async fn revoke_cross_group_rules(ec2: &Client, group: &Group) -> ResourceResult<()> {
    let id = group.group_id().unwrap_or_default();
    let ingress = cross_group_permissions(group.ip_permissions(), id);
    if !ingress.is_empty() {
        Direction::Ingress.revoke(ec2, id, ingress).await?;
    }
    let egress = cross_group_permissions(group.ip_permissions_egress(), id);
    if !egress.is_empty() {
        Direction::Egress.revoke(ec2, id, egress).await?;
    }
    Ok(())
}

async fn create_group(ec2: &Client, props: &Props) -> ResourceResult<String> {
    let name = str_of(props, "name")
        .ok_or_else(|| ResourceError::invalid("ec2.security_group needs a name"))?;
    let description = str_of(props, "description").unwrap_or(DEFAULT_DESCRIPTION);
    let mut request = ec2
        .create_security_group()
        .group_name(name)
        .description(description)
        .set_vpc_id(str_of(props, "vpc_id").map(str::to_string));
    let tags = common::aws_tags(props);
    // Tagging at creation means a group never exists without its plinth:* tags.
    if !tags.is_empty() {
        request = request.tag_specifications(
            TagSpecification::builder()
                .resource_type(Ec2ResourceType::SecurityGroup)
                .set_tags(Some(tags))
                .build(),
        );
    }
    let out = request.send().await.classified()?;
    let id = out
        .group_id()
        .ok_or_else(|| ResourceError::other("CreateSecurityGroup returned no group id"))?;
    tracing::debug!(name, group = id, "created security group");
    Ok(id.to_string())
}

/// The groups with these ids that AWS shows (a filter, unlike GroupIds, answers for the
/// others too when one is missing or not visible yet), by id.
async fn describe_groups(ec2: &Client, ids: Vec<String>) -> ResourceResult<HashMap<String, Group>> {
    let filter = Filter::builder()
        .name("group-id")
        .set_values(Some(ids))
        .build();
    let mut groups = HashMap::new();
    let mut token: Option<String> = None;
    loop {
        let out = ec2
            .describe_security_groups()
            .filters(filter.clone())
            .set_next_token(token.take())
            .send()
            .await
            .classified()?;
        for group in out.security_groups() {
            if let Some(id) = group.group_id() {
                groups.insert(id.to_string(), group.clone());
            }
        }
        match out.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(groups),
        }
    }
}

async fn describe_group(ec2: &Client, id: &str) -> ResourceResult<Option<Group>> {
    match ec2
        .describe_security_groups()
        .group_ids(id)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(out.security_groups().first().cloned()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

async fn delete_group(ec2: &Client, id: &str) -> ResourceResult<()> {
    match ec2
        .delete_security_group()
        .group_id(id)
        .send()
        .await
        .classified()
    {
        Ok(_) => {
            tracing::debug!(group = id, "deleted security group");
            Ok(())
        }
        Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

fn explain_in_use(mut err: ResourceError) -> ResourceError {
    if err.kind == ErrorKind::InUse {
        err.message.push_str(
            "; something still uses the group: a network interface (an instance, cache \
             cluster or load balancer; one being deleted lets go within minutes, then destroy \
             again) or another group's rule (remove the rule first)",
        );
    }
    err
}

/// Name, VPC and the stable `plinth:*` tags: a group that matches was made for these props.
fn find_filters(name: &str, vpc_id: &str, props: &Props) -> Vec<Filter> {
    let filter = |name: String, value: &str| Filter::builder().name(name).values(value).build();
    let mut filters = vec![
        filter("group-name".into(), name),
        filter("vpc-id".into(), vpc_id),
    ];
    for (key, value) in tags::tags_of(props) {
        // The times are stamps, not identity: a group is this stack's by its owner tags.
        let stamp = key == "plinth:expires-at" || key == "plinth:created-at";
        if key.starts_with("plinth:") && !stamp {
            filters.push(filter(format!("tag:{key}"), &value));
        }
    }
    filters
}

fn observe(group: &Group, region: &str) -> ResourceResult<Observed> {
    let id = group.group_id().ok_or_else(|| {
        ResourceError::other("DescribeSecurityGroups returned a group without an id")
    })?;
    let name = group.group_name().unwrap_or_default();
    let mut props = Props::new();
    props.insert("name".into(), json!(name));
    props.insert(
        "description".into(),
        json!(group.description().unwrap_or_default()),
    );
    if let Some(vpc_id) = group.vpc_id() {
        props.insert("vpc_id".into(), json!(vpc_id));
    }
    props.insert(
        "ingress".into(),
        Value::Array(rules_from_permissions(group.ip_permissions(), id)),
    );
    props.insert(
        "egress".into(),
        Value::Array(rules_from_permissions(group.ip_permissions_egress(), id)),
    );
    let tags = group
        .tags()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .filter(|(key, _)| !tags::is_reserved(key));
    props.insert("tags".into(), tags::tags_value(tags));
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(id));
    if let Some(arn) = group_arn(group, region, id) {
        attrs.insert("arn".into(), json!(arn));
    }
    attrs.insert("name".into(), json!(name));
    if let Some(vpc_id) = group.vpc_id() {
        attrs.insert("vpc_id".into(), json!(vpc_id));
    }
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs,
    })
}

/// The ARN AWS reports, or the one it would report (older responses lack it).
fn group_arn(group: &Group, region: &str, id: &str) -> Option<String> {
    if let Some(arn) = group.security_group_arn() {
        return Some(arn.to_string());
    }
    let owner = group.owner_id()?;
    Some(common::arn(region, owner, "security-group", id))
}
