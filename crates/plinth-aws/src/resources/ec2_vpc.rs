//! `ec2.vpc`: a network of the stack's own, with its IPv4 CIDR block and DNS settings.
//!
//! AWS makes a VPC `available` within seconds, but reads may not see it at once. DNS
//! support and DNS hostnames are attributes set one per call after the create. A VPC is
//! deleted only once nothing is left in it: subnets, an attached internet gateway, security
//! groups, endpoints, and the network interfaces of caches and instances, which AWS releases
//! minutes after they are deleted. Until then `DeleteVpc` answers `DependencyViolation`, and
//! the delete is retried with progress (pending under `destroy --no-wait`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, ResourceType as Ec2ResourceType, Tenancy, Vpc, VpcAttributeName,
    VpcState,
};
use aws_sdk_ec2::Client;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{reorder, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::errors::SendExt;
use crate::resources::ec2_common::{self as common, known_str};
use crate::resources::tags;
use crate::wait::{self, Poll};
use crate::{Aws, Unanswered};

/// Caches' and instances' network interfaces hold a VPC for minutes after they are gone.
const DELETE_LIMIT: Duration = Duration::from_secs(30 * 60);
const ORDER: &[&str] = &[
    "cidr_block",
    "enable_dns_support",
    "enable_dns_hostnames",
    "instance_tenancy",
    "tags",
];
const TENANCIES: &[&str] = &["default", "dedicated"];

/// The `ec2.vpc` resource type.
pub struct VpcType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl VpcType {
    pub fn new(aws: Arc<Aws>) -> VpcType {
        VpcType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "ec2.vpc",
        description: "A VPC: a network of the stack's own",
        kind: TypeKind::Managed,
        taggable: true,
        properties: vec![
            Prop::new("cidr_block", Shape::String)
                .required()
                .replaces()
                .known_as(&["cidr"])
                .doc("the IPv4 CIDR block, /16 to /28 (e.g. 10.0.0.0/16)"),
            Prop::new("enable_dns_support", Shape::Bool)
                .doc("whether the Amazon DNS server resolves names in the VPC; default true"),
            Prop::new("enable_dns_hostnames", Shape::Bool).doc(
                "whether instances with public IPs get public DNS names; default false (needs \
                 enable_dns_support)",
            ),
            Prop::new("instance_tenancy", Shape::Enum(TENANCIES))
                .replaces()
                .doc("`default`, or `dedicated` (instances on single-tenant hardware, billed)"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the VPC"),
        ],
        attributes: vec![
            Attr::new("id", Shape::String, "the VPC id (vpc-…)"),
            Attr::new("arn", Shape::String, "the VPC ARN"),
            Attr::new("cidr_block", Shape::String, "the IPv4 CIDR block"),
            Attr::new("owner_id", Shape::String, "the account the VPC is in"),
        ],
    }
}

#[async_trait]
impl ResourceType for VpcType {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    /// Nothing to pay for: the price table says why.
    fn cost(
        &self,
        _props: &Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        crate::cost::free(ctx, self.schema.type_name)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(cidr) = known_str(props, "cidr_block") {
            if let Some(problem) = cidr_problem(cidr, 16, 28) {
                issues.push(PropIssue::at(&["cidr_block"], problem));
            }
        }
        let flag = |key| props.get(key).and_then(Value::as_bool);
        if flag("enable_dns_hostnames") == Some(true) && flag("enable_dns_support") == Some(false) {
            issues.push(PropIssue::at(
                &["enable_dns_hostnames"],
                "DNS hostnames need DNS support: AWS refuses enable_dns_hostnames with \
                 enable_dns_support false",
            ));
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["cidr_block"])
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(&ctx.region);
        let Some(vpc) = describe(&ec2, id).await? else {
            return Ok(None);
        };
        match observe(&ec2, &vpc, &ctx.region).await {
            Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
            other => other.map(Some),
        }
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(&ctx.region);
        let Some(vpc) = made_by(&ec2, ctx, props).await?.into_iter().next() else {
            return Ok(None);
        };
        debug!(vpc = ?vpc.vpc_id(), "adopting a VPC an interrupted create made");
        observe(&ec2, &vpc, &ctx.region).await.map(Some)
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "ec2", "vpc/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let ec2 = self.aws.ec2(&ctx.region);
        let cidr = known_str(props, "cidr_block")
            .ok_or_else(|| ResourceError::invalid("ec2.vpc needs a cidr_block"))?;
        let unanswered = Unanswered::default();
        let out = ec2
            .create_vpc()
            .cidr_block(cidr)
            .instance_tenancy(Tenancy::from(tenancy_of(props)))
            .set_tag_specifications(common::tag_specs(Ec2ResourceType::Vpc, props, ctx))
            .customize()
            .interceptor(unanswered.clone())
            .send()
            .await
            .classified()?;
        let id = out
            .vpc()
            .and_then(Vpc::vpc_id)
            .ok_or_else(|| ResourceError::other("CreateVpc returned no VPC id"))?
            .to_string();
        debug!(vpc = id, cidr, "created VPC");
        if unanswered.seen() {
            let made = made_by(&ec2, ctx, props).await?;
            let ids = made.iter().filter_map(|v| v.vpc_id().map(str::to_string));
            let ec2 = &ec2;
            common::remove_duplicates(ids.collect(), &id, "VPC", |dup| async move {
                delete_vpc(ec2, &dup).await
            })
            .await?;
        }
        let vpc = wait_available(ctx, &ec2, &id).await?;
        let fresh = observe(&ec2, &vpc, &ctx.region).await?;
        set_dns(&ec2, &id, &fresh.props, props).await?;
        self.read(ctx, &id, props)
            .await?
            .ok_or_else(|| crate::errors::vanished(&format!("VPC {id}")))
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
        set_dns(&ec2, id, before, after).await?;
        self.read(ctx, id, after)
            .await?
            .ok_or_else(|| crate::errors::vanished(&format!("VPC {id}")))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let ec2 = self.aws.ec2(&ctx.region);
        let what = format!("deleting VPC {id}");
        let ec2 = &ec2;
        wait::delete_when_free(ctx, &what, DELETE_LIMIT, move || delete_vpc(ec2, id))
            .await
            .map_err(explain_in_use)
    }
}

/// Defaults filled and tags in key order, for desired and read properties alike.
fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props
        .entry("enable_dns_support")
        .or_insert_with(|| json!(true));
    props
        .entry("enable_dns_hostnames")
        .or_insert_with(|| json!(false));
    props
        .entry("instance_tenancy")
        .or_insert_with(|| json!("default"));
    props.insert("tags".into(), tags::tags_value(tags::tags_of(props)));
    reorder(props, ORDER);
}

fn tenancy_of(props: &Props) -> &str {
    known_str(props, "instance_tenancy").unwrap_or("default")
}

fn flag(props: &Props, key: &str, default: bool) -> bool {
    props.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// Sets the DNS attributes that differ, in the order AWS accepts: support before hostnames
/// when turning on, hostnames before support when turning off.
async fn set_dns(ec2: &Client, id: &str, before: &Props, after: &Props) -> ResourceResult<()> {
    let support = (
        flag(before, "enable_dns_support", true),
        flag(after, "enable_dns_support", true),
    );
    let hostnames = (
        flag(before, "enable_dns_hostnames", false),
        flag(after, "enable_dns_hostnames", false),
    );
    if support.0 != support.1 && support.1 {
        modify(ec2, id, VpcAttributeName::EnableDnsSupport, true).await?;
    }
    if hostnames.0 != hostnames.1 {
        modify(ec2, id, VpcAttributeName::EnableDnsHostnames, hostnames.1).await?;
    }
    if support.0 != support.1 && !support.1 {
        modify(ec2, id, VpcAttributeName::EnableDnsSupport, false).await?;
    }
    Ok(())
}

async fn modify(
    ec2: &Client,
    id: &str,
    attribute: VpcAttributeName,
    on: bool,
) -> ResourceResult<()> {
    debug!(vpc = id, ?attribute, on, "ModifyVpcAttribute");
    let value = AttributeBooleanValue::builder().value(on).build();
    let request = ec2.modify_vpc_attribute().vpc_id(id);
    let request = match attribute {
        VpcAttributeName::EnableDnsHostnames => request.enable_dns_hostnames(value),
        _ => request.enable_dns_support(value),
    };
    request.send().await.classified().map(|_| ())
}

async fn attribute(ec2: &Client, id: &str, name: VpcAttributeName) -> ResourceResult<bool> {
    let out = ec2
        .describe_vpc_attribute()
        .vpc_id(id)
        .attribute(name.clone())
        .send()
        .await
        .classified()?;
    let value = match name {
        VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames(),
        _ => out.enable_dns_support(),
    };
    Ok(value
        .and_then(AttributeBooleanValue::value)
        .unwrap_or(false))
}

async fn describe(ec2: &Client, id: &str) -> ResourceResult<Option<Vpc>> {
    let answer = ec2.describe_vpcs().vpc_ids(id).send().await.classified();
    Ok(common::unless_gone(answer)?.and_then(|out| out.vpcs().first().cloned()))
}

/// The VPCs one create of this resource made (its owner tags and token).
async fn made_by(ec2: &Client, ctx: &OpContext, props: &Props) -> ResourceResult<Vec<Vpc>> {
    let (Some(mut filters), Some(cidr)) = (
        common::created_by(props, ctx),
        known_str(props, "cidr_block"),
    ) else {
        return Ok(Vec::new());
    };
    filters.push(common::filter("cidr", cidr));
    let out = ec2
        .describe_vpcs()
        .set_filters(Some(filters))
        .send()
        .await
        .classified()?;
    Ok(out.vpcs().to_vec())
}

async fn wait_available(ctx: &OpContext, ec2: &Client, id: &str) -> ResourceResult<Vpc> {
    let what = format!("VPC {id} to be available");
    let since = tokio::time::Instant::now();
    wait::until(ctx, &what, wait::VISIBLE_LIMIT, move || async move {
        match describe(ec2, id).await? {
            Some(vpc) if vpc.state() == Some(&VpcState::Available) => Ok(Poll::Ready(vpc)),
            Some(vpc) => Ok(Poll::Pending(format!("{:?}", vpc.state()))),
            None => wait::not_visible_yet(since, || crate::errors::vanished(&format!("VPC {id}"))),
        }
    })
    .await
}

async fn delete_vpc(ec2: &Client, id: &str) -> ResourceResult<()> {
    debug!(vpc = id, "DeleteVpc");
    common::gone_is_done(ec2.delete_vpc().vpc_id(id).send().await.classified())
}

fn explain_in_use(mut err: ResourceError) -> ResourceError {
    if err.kind == ErrorKind::InUse {
        err.message.push_str(
            "; something is still in the VPC: subnets, an attached internet gateway, security \
             groups, endpoints, or the network interfaces of caches and instances (AWS releases \
             those minutes after they are deleted; then destroy again)",
        );
    }
    err
}

async fn observe(ec2: &Client, vpc: &Vpc, region: &str) -> ResourceResult<Observed> {
    let id = vpc
        .vpc_id()
        .ok_or_else(|| ResourceError::other("DescribeVpcs returned a VPC without an id"))?;
    let support = attribute(ec2, id, VpcAttributeName::EnableDnsSupport).await?;
    let hostnames = attribute(ec2, id, VpcAttributeName::EnableDnsHostnames).await?;
    let cidr = vpc.cidr_block().unwrap_or_default();
    let tenancy = vpc
        .instance_tenancy()
        .map(Tenancy::as_str)
        .unwrap_or("default");
    let mut props = Props::new();
    props.insert("cidr_block".into(), json!(cidr));
    props.insert("enable_dns_support".into(), json!(support));
    props.insert("enable_dns_hostnames".into(), json!(hostnames));
    props.insert("instance_tenancy".into(), json!(tenancy));
    props.insert(
        "tags".into(),
        tags::tags_value(common::tags_from(vpc.tags())),
    );
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(id));
    attrs.insert("cidr_block".into(), json!(cidr));
    if let Some(owner) = vpc.owner_id() {
        attrs.insert("arn".into(), json!(common::arn(region, owner, "vpc", id)));
        attrs.insert("owner_id".into(), json!(owner));
    }
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs,
    })
}

/// What is wrong with an IPv4 CIDR block whose prefix must lie in `shortest..=longest`.
pub fn cidr_problem(cidr: &str, shortest: u8, longest: u8) -> Option<String> {
    let expected = || {
        format!("{cidr:?}: expected an IPv4 CIDR block like 10.0.0.0/{shortest} (prefix /{shortest} to /{longest})")
    };
    let Some((address, prefix)) = cidr.split_once('/') else {
        return Some(expected());
    };
    let Ok(address) = address.parse::<std::net::Ipv4Addr>() else {
        return Some(expected());
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return Some(expected());
    };
    if !(shortest..=longest).contains(&prefix) {
        return Some(format!(
            "{cidr:?}: AWS takes prefixes /{shortest} to /{longest} here, not /{prefix}"
        ));
    }
    let bits = u32::from(address);
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    if bits & !mask != 0 {
        let network = std::net::Ipv4Addr::from(bits & mask);
        return Some(format!(
            "{cidr:?} has host bits set: the block starts at {network}/{prefix}"
        ));
    }
    None
}
