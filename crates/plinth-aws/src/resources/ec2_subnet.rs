//! `ec2.subnet`: a range of a VPC's addresses in one availability zone.
//!
//! The zone is named (`availability_zone`) or picked by its place among the region's
//! available zones sorted by name (`az_index`), so one stack file works in every region. A
//! subnet made right after its VPC may meet `InvalidVpcID.NotFound` (reads lag behind
//! creates): the create is sent again until the VPC is visible. A subnet is deleted only once
//! no network interface is left in it; a deleted cache or instance releases its interface
//! minutes later, and the delete is retried meanwhile.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, ResourceType as Ec2ResourceType, Subnet, SubnetState,
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

use crate::errors::{has_code, SendExt};
use crate::resources::ec2_common::{self as common, known_str};
use crate::resources::ec2_vpc::cidr_problem;
use crate::resources::tags;
use crate::wait::{self, Poll};
use crate::{Aws, Unanswered};

/// Interfaces of deleted caches and instances hold a subnet for minutes.
const DELETE_LIMIT: Duration = Duration::from_secs(30 * 60);
const ORDER: &[&str] = &[
    "vpc_id",
    "cidr_block",
    "availability_zone",
    "az_index",
    "map_public_ip_on_launch",
    "tags",
];
/// What AWS answers a subnet whose block overlaps another subnet's in the VPC.
const SUBNET_CONFLICT: &str = "InvalidSubnet.Conflict";
/// What a subnet created right after its VPC may hear while the VPC is not visible yet.
const VPC_NOT_VISIBLE: &[&str] = &["InvalidVpcID.NotFound"];

/// The `ec2.subnet` resource type.
pub struct SubnetType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl SubnetType {
    pub fn new(aws: Arc<Aws>) -> SubnetType {
        SubnetType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "ec2.subnet",
        description: "A subnet: a range of a VPC's addresses in one availability zone",
        kind: TypeKind::Managed,
        taggable: true,
        properties: vec![
            Prop::new("vpc_id", Shape::String)
                .required()
                .replaces()
                .doc("the VPC (vpc-…), e.g. ${network.id}"),
            Prop::new("cidr_block", Shape::String)
                .required()
                .replaces()
                .known_as(&["cidr"])
                .doc("the IPv4 CIDR block inside the VPC's, /16 to /28 (e.g. 10.0.1.0/24)"),
            Prop::new("availability_zone", Shape::String)
                .computed()
                .replaces()
                .known_as(&["az"])
                .doc("the zone (e.g. us-east-1a); default: picked by az_index, else by AWS"),
            Prop::new("az_index", Shape::int_range(0, 31))
                .replaces()
                .doc(
                    "the zone by its place among the region's available zones sorted by name \
                 (0: the first), so the stack works in any region",
                ),
            Prop::new("map_public_ip_on_launch", Shape::Bool).doc(
                "whether instances launched here get a public IPv4 address (billed by the \
                 hour); default false",
            ),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the subnet"),
        ],
        attributes: vec![
            Attr::new("id", Shape::String, "the subnet id (subnet-…)"),
            Attr::new("arn", Shape::String, "the subnet ARN"),
            Attr::new("vpc_id", Shape::String, "the VPC"),
            Attr::new("cidr_block", Shape::String, "the IPv4 CIDR block"),
            Attr::new("availability_zone", Shape::String, "the zone"),
            Attr::new(
                "availability_zone_id",
                Shape::String,
                "the zone's id, the same in every account (use1-az1)",
            ),
        ],
    }
}

#[async_trait]
impl ResourceType for SubnetType {
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
        if props.contains_key("availability_zone") && props.contains_key("az_index") {
            issues.push(PropIssue::at(
                &["az_index"],
                "give availability_zone or az_index, not both",
            ));
        }
        if let Some(vpc) = known_str(props, "vpc_id").filter(|v| !v.starts_with("vpc-")) {
            issues.push(PropIssue::at(
                &["vpc_id"],
                format!("expected a VPC id (vpc-…), not {vpc:?}"),
            ));
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["vpc_id", "cidr_block", "availability_zone"])
    }

    /// `az_index` only names the zone: leaving it out (the zone stays what it is, or is
    /// named by `availability_zone`, which replaces if it differs) moves nothing. Another
    /// index does move the subnet.
    fn replace_reasons(&self, before: &Props, after: &Props) -> Vec<String> {
        let mut reasons = self.schema.replaced_properties(before, after);
        if !after.contains_key("az_index") {
            reasons.retain(|r| r != "az_index");
        }
        reasons
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(&ctx.region);
        match describe(&ec2, id).await? {
            Some(subnet) => observe(&subnet, prior).map(Some),
            None => Ok(None),
        }
    }

    fn read_batch_size(&self) -> usize {
        BATCH_READ
    }

    /// One DescribeSubnets for many subnets (by filter, which a missing one does not fail).
    async fn read_batch(
        &self,
        ctx: &OpContext,
        items: &[(String, Props)],
    ) -> ResourceResult<Vec<Option<Observed>>> {
        let ec2 = self.aws.ec2(&ctx.region);
        let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        let subnets = ec2
            .describe_subnets()
            .filters(
                Filter::builder()
                    .name("subnet-id")
                    .set_values(Some(ids))
                    .build(),
            )
            .send()
            .await
            .classified()?
            .subnets()
            .to_vec();
        items
            .iter()
            .map(
                |(id, prior)| match subnets.iter().find(|s| s.subnet_id() == Some(id.as_str())) {
                    Some(subnet) => observe(subnet, prior).map(Some),
                    None => Ok(None),
                },
            )
            .collect()
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(&ctx.region);
        let Some(subnet) = made_by(&ec2, ctx, props).await?.into_iter().next() else {
            return Ok(None);
        };
        debug!(subnet = ?subnet.subnet_id(), "adopting a subnet an interrupted create made");
        observe(&subnet, props).map(Some)
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "ec2", "subnet/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let ec2 = self.aws.ec2(&ctx.region);
        let zone = zone_for(&ec2, &ctx.region, props).await?;
        let unanswered = Unanswered::default();
        let what = "creating the subnet while its VPC is not visible yet";
        let (ec2, zone, unanswered) = (&ec2, zone.as_deref(), &unanswered);
        let created = common::retry_while_invisible(ctx, what, VPC_NOT_VISIBLE, || async move {
            create_subnet(ec2, ctx, props, zone, unanswered).await
        })
        .await;
        let id = match created {
            Ok(id) => id,
            // The SDK sent the create again after an unanswered attempt made the subnet: AWS
            // refuses a second subnet with an overlapping block, and this create's token
            // tells its own subnet from someone else's.
            Err(err) if has_code(&err, &[SUBNET_CONFLICT]) => adopt(ctx, ec2, props, err).await?,
            Err(err) => return Err(err),
        };
        if unanswered.seen() {
            let made = made_by(ec2, ctx, props).await?;
            let ids = made
                .iter()
                .filter_map(|s| s.subnet_id().map(str::to_string));
            common::remove_duplicates(ids.collect(), &id, "subnet", |dup| async move {
                delete_subnet(ec2, &dup).await
            })
            .await?;
        }
        let subnet = wait_available(ctx, ec2, &id).await?;
        let fresh = observe(&subnet, props)?;
        set_public_ip(ec2, &id, &fresh.props, props).await?;
        self.read(ctx, &id, props)
            .await?
            .ok_or_else(|| crate::errors::vanished(&format!("subnet {id}")))
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
        set_public_ip(&ec2, id, before, after).await?;
        self.read(ctx, id, after)
            .await?
            .ok_or_else(|| crate::errors::vanished(&format!("subnet {id}")))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let ec2 = self.aws.ec2(&ctx.region);
        let what = format!("deleting subnet {id}");
        let ec2 = &ec2;
        wait::delete_when_free(ctx, &what, DELETE_LIMIT, move || delete_subnet(ec2, id))
            .await
            .map_err(explain_in_use)
    }
}

/// How many subnets one read asks for (AWS allows 200 filter values).
const BATCH_READ: usize = 100;

fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props
        .entry("map_public_ip_on_launch")
        .or_insert_with(|| json!(false));
    props.insert("tags".into(), tags::tags_value(tags::tags_of(props)));
    reorder(props, ORDER);
}

/// The zone the subnet goes in: picked by `az_index`, named, or left to AWS (`None`). The
/// index comes first: with it, `availability_zone` is only what the subnet being replaced had.
async fn zone_for(ec2: &Client, region: &str, props: &Props) -> ResourceResult<Option<String>> {
    let Some(index) = props.get("az_index").and_then(Value::as_u64) else {
        return Ok(known_str(props, "availability_zone").map(str::to_string));
    };
    let zones = available_zones(ec2).await?;
    let zone = usize::try_from(index).ok().and_then(|i| zones.get(i));
    match zone {
        Some(zone) => Ok(Some(zone.clone())),
        None => Err(ResourceError::invalid(format!(
            "az_index {index}: {region} has {} available zones ({}), so the index is 0 to {}",
            zones.len(),
            zones.join(", "),
            zones.len().saturating_sub(1)
        ))),
    }
}

/// The region's available zones (not Local Zones or Wavelength), sorted by name.
async fn available_zones(ec2: &Client) -> ResourceResult<Vec<String>> {
    let out = ec2
        .describe_availability_zones()
        .filters(common::filter("state", "available"))
        .filters(common::filter("zone-type", "availability-zone"))
        .send()
        .await
        .classified()?;
    let mut zones: Vec<String> = out
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect();
    zones.sort();
    Ok(zones)
}

async fn create_subnet(
    ec2: &Client,
    ctx: &OpContext,
    props: &Props,
    zone: Option<&str>,
    unanswered: &Unanswered,
) -> ResourceResult<String> {
    let vpc = known_str(props, "vpc_id")
        .ok_or_else(|| ResourceError::invalid("ec2.subnet needs a vpc_id"))?;
    let cidr = known_str(props, "cidr_block")
        .ok_or_else(|| ResourceError::invalid("ec2.subnet needs a cidr_block"))?;
    debug!(vpc, cidr, zone, "CreateSubnet");
    let out = ec2
        .create_subnet()
        .vpc_id(vpc)
        .cidr_block(cidr)
        .set_availability_zone(zone.map(str::to_string))
        .set_tag_specifications(common::tag_specs(Ec2ResourceType::Subnet, props, ctx))
        .customize()
        .interceptor(unanswered.clone())
        .send()
        .await
        .classified()?;
    out.subnet()
        .and_then(Subnet::subnet_id)
        .map(str::to_string)
        .ok_or_else(|| ResourceError::other("CreateSubnet returned no subnet id"))
}

async fn set_public_ip(
    ec2: &Client,
    id: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let public = |p: &Props| {
        p.get("map_public_ip_on_launch")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    if public(before) == public(after) {
        return Ok(());
    }
    debug!(subnet = id, on = public(after), "ModifySubnetAttribute");
    ec2.modify_subnet_attribute()
        .subnet_id(id)
        .map_public_ip_on_launch(
            AttributeBooleanValue::builder()
                .value(public(after))
                .build(),
        )
        .send()
        .await
        .classified()
        .map(|_| ())
}

async fn describe(ec2: &Client, id: &str) -> ResourceResult<Option<Subnet>> {
    let answer = ec2
        .describe_subnets()
        .subnet_ids(id)
        .send()
        .await
        .classified();
    Ok(common::unless_gone(answer)?.and_then(|out| out.subnets().first().cloned()))
}

/// The subnets one create of this resource made (its owner tags and token, VPC and block).
async fn made_by(ec2: &Client, ctx: &OpContext, props: &Props) -> ResourceResult<Vec<Subnet>> {
    let (Some(mut filters), Some(vpc), Some(cidr)) = (
        common::created_by(props, ctx),
        known_str(props, "vpc_id"),
        known_str(props, "cidr_block"),
    ) else {
        return Ok(Vec::new());
    };
    filters.push(common::filter("vpc-id", vpc));
    filters.push(common::filter("cidr-block", cidr));
    let out = ec2
        .describe_subnets()
        .set_filters(Some(filters))
        .send()
        .await
        .classified()?;
    Ok(out.subnets().to_vec())
}

/// The subnet this very create made, when AWS refused its block as taken: found by the
/// create's token, else the conflict is someone else's subnet, said as such.
async fn adopt(
    ctx: &OpContext,
    ec2: &Client,
    props: &Props,
    err: ResourceError,
) -> ResourceResult<String> {
    let ours = made_by(ec2, ctx, props).await?;
    match ours.first().and_then(Subnet::subnet_id) {
        Some(id) => {
            tracing::info!(
                subnet = id,
                "the subnet a retried create made is this one's: adopting it"
            );
            Ok(id.to_string())
        }
        None => Err(ResourceError {
            kind: ErrorKind::Invalid,
            message: format!(
                "{} (another subnet of the VPC already uses part of this block)",
                err.message
            ),
            ..err
        }),
    }
}

async fn wait_available(ctx: &OpContext, ec2: &Client, id: &str) -> ResourceResult<Subnet> {
    let what = format!("subnet {id} to be available");
    let since = tokio::time::Instant::now();
    wait::until(ctx, &what, wait::VISIBLE_LIMIT, move || async move {
        match describe(ec2, id).await? {
            Some(s) if s.state() == Some(&SubnetState::Available) => Ok(Poll::Ready(s)),
            Some(s) => Ok(Poll::Pending(format!("{:?}", s.state()))),
            None => {
                wait::not_visible_yet(since, || crate::errors::vanished(&format!("subnet {id}")))
            }
        }
    })
    .await
}

async fn delete_subnet(ec2: &Client, id: &str) -> ResourceResult<()> {
    debug!(subnet = id, "DeleteSubnet");
    common::gone_is_done(ec2.delete_subnet().subnet_id(id).send().await.classified())
}

fn explain_in_use(mut err: ResourceError) -> ResourceError {
    if err.kind == ErrorKind::InUse {
        err.message.push_str(
            "; network interfaces are still in the subnet: a cache, an instance, a NAT \
             gateway or an endpoint (AWS releases a deleted one's interface minutes later; \
             then destroy again)",
        );
    }
    err
}

/// The subnet as properties; `az_index` is plinth's own way of naming the zone, so it is
/// kept from what was applied (`prior`).
fn observe(subnet: &Subnet, prior: &Props) -> ResourceResult<Observed> {
    let id = subnet
        .subnet_id()
        .ok_or_else(|| ResourceError::other("DescribeSubnets returned a subnet without an id"))?;
    let vpc = subnet.vpc_id().unwrap_or_default();
    let cidr = subnet.cidr_block().unwrap_or_default();
    let zone = subnet.availability_zone().unwrap_or_default();
    let mut props = Props::new();
    props.insert("vpc_id".into(), json!(vpc));
    props.insert("cidr_block".into(), json!(cidr));
    props.insert("availability_zone".into(), json!(zone));
    if let Some(index) = prior.get("az_index").filter(|v| v.is_u64()) {
        props.insert("az_index".into(), index.clone());
    }
    props.insert(
        "map_public_ip_on_launch".into(),
        json!(subnet.map_public_ip_on_launch().unwrap_or(false)),
    );
    props.insert(
        "tags".into(),
        tags::tags_value(common::tags_from(subnet.tags())),
    );
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(id));
    if let Some(arn) = subnet.subnet_arn() {
        attrs.insert("arn".into(), json!(arn));
    }
    attrs.insert("vpc_id".into(), json!(vpc));
    attrs.insert("cidr_block".into(), json!(cidr));
    attrs.insert("availability_zone".into(), json!(zone));
    if let Some(zone_id) = subnet.availability_zone_id() {
        attrs.insert("availability_zone_id".into(), json!(zone_id));
    }
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs,
    })
}
