//! `ec2.nat_gateway`: lets a private subnet reach the internet, with an Elastic IP plinth
//! allocates (or one given), billed by the hour and by the GB: the most common surprise bill
//! of a lab, so the plan's cost line shows it.
//!
//! `CreateNatGateway` takes the create token as its `ClientToken`. `AllocateAddress` takes
//! none: the address is tagged with the create token, an unanswered attempt's extra addresses
//! are released, and a create sent again reuses the address its token already holds. Once
//! the gateway exists the address is tagged with its id (`plinth:nat-gateway`), so deleting
//! the gateway releases exactly the address plinth allocated for it, also on the run after a
//! `destroy --no-wait`. AWS takes a minute or two to make a gateway `available`, and as long
//! to delete it; it lists a deleted gateway as `deleted` for an hour.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Address, ConnectivityType, DomainType, NatGateway, NatGatewayState,
    ResourceType as Ec2ResourceType, Tag,
};
use aws_sdk_ec2::Client;
use plinth_core::cost::{price_text, CostContext, CostLine};
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
use crate::resources::tags;
use crate::wait::{self, Poll};
use crate::{Aws, Unanswered};

/// AWS makes a gateway available in a minute or two, and deletes it as fast.
const CREATE_LIMIT: Duration = Duration::from_secs(15 * 60);
const DELETE_LIMIT: Duration = Duration::from_secs(15 * 60);
/// An address is released once the deleted gateway lets go of it.
const RELEASE_LIMIT: Duration = Duration::from_secs(5 * 60);
const ORDER: &[&str] = &["subnet_id", "connectivity_type", "allocation_id", "tags"];
const CONNECTIVITY: &[&str] = &["public", "private"];
/// The tag naming the gateway an address plinth allocated belongs to.
const GATEWAY_TAG: &str = "plinth:nat-gateway";
const NOT_VISIBLE: &[&str] = &["InvalidSubnetID.NotFound", "InvalidAllocationID.NotFound"];
/// What releasing an address still associated with a gateway being deleted answers.
const ADDRESS_IN_USE: &[&str] = &["InvalidIPAddress.InUse", "AuthFailure"];

/// The `ec2.nat_gateway` resource type.
pub struct NatGatewayType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl NatGatewayType {
    pub fn new(aws: Arc<Aws>) -> NatGatewayType {
        NatGatewayType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "ec2.nat_gateway",
        description: "A NAT gateway: a private subnet's way out to the internet (billed hourly)",
        kind: TypeKind::Managed,
        taggable: true,
        properties: vec![
            Prop::new("subnet_id", Shape::String)
                .required()
                .replaces()
                .doc("the public subnet it sits in (subnet-…)"),
            Prop::new("connectivity_type", Shape::Enum(CONNECTIVITY))
                .replaces()
                .doc("`public` (to the internet, with an Elastic IP) or `private`; default public"),
            Prop::new("allocation_id", Shape::String)
                .replaces()
                .doc("an Elastic IP of your own (eipalloc-…); default: plinth allocates one and releases it with the gateway"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the gateway"),
        ],
        attributes: vec![
            Attr::new("id", Shape::String, "the gateway id (nat-…)"),
            Attr::new("public_ip", Shape::String, "its Elastic IP address"),
            Attr::new("private_ip", Shape::String, "its address in the subnet"),
            Attr::new("allocation_id", Shape::String, "its Elastic IP's allocation id"),
            Attr::new("vpc_id", Shape::String, "the VPC"),
        ],
    }
}

#[async_trait]
impl ResourceType for NatGatewayType {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    /// The gateway's hours, the data it processes (a usage assumption), and, for a public
    /// one, its public IPv4 address's hours.
    fn cost(&self, props: &Props, ctx: &CostContext) -> Vec<CostLine> {
        nat_cost(props, ctx)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(subnet) = known_str(props, "subnet_id").filter(|s| !s.starts_with("subnet-")) {
            issues.push(PropIssue::at(
                &["subnet_id"],
                format!("expected a subnet id (subnet-…), not {subnet:?}"),
            ));
        }
        if let Some(allocation) = known_str(props, "allocation_id") {
            if !allocation.starts_with("eipalloc-") {
                issues.push(PropIssue::at(
                    &["allocation_id"],
                    format!(
                        "expected an Elastic IP allocation id (eipalloc-…), not {allocation:?}"
                    ),
                ));
            }
            if known_str(props, "connectivity_type") == Some("private") {
                issues.push(PropIssue::at(
                    &["allocation_id"],
                    "a private NAT gateway has no Elastic IP",
                ));
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["allocation_id"])
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(&ctx.region);
        match describe(&ec2, id).await? {
            Some(gateway) if !is_gone(&gateway) => observe(&gateway, prior).map(Some),
            _ => Ok(None),
        }
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(&ctx.region);
        let made = made_by(&ec2, ctx, props).await?;
        match made.iter().find(|g| !is_gone(g)) {
            Some(gateway) => {
                debug!(gateway = ?gateway.nat_gateway_id(), "adopting a NAT gateway an interrupted create made");
                observe(gateway, props).map(Some)
            }
            None => Ok(None),
        }
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "ec2", "natgateway/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let ec2 = self.aws.ec2(&ctx.region);
        let subnet = known_str(props, "subnet_id")
            .ok_or_else(|| ResourceError::invalid("ec2.nat_gateway needs a subnet_id"))?;
        let private = known_str(props, "connectivity_type") == Some("private");
        let allocated = match (private, known_str(props, "allocation_id")) {
            (false, None) => Some(allocate(ctx, &ec2, props).await?),
            _ => None,
        };
        let allocation = allocated.clone().or_else(|| {
            known_str(props, "allocation_id")
                .filter(|_| !private)
                .map(str::to_string)
        });
        let client_token = client_token(&ec2, ctx, props).await?;
        let what = format!("creating a NAT gateway while subnet {subnet} is not visible yet");
        let (ec2, allocation, client_token) =
            (&ec2, allocation.as_deref(), client_token.as_deref());
        let created = common::retry_while_invisible(ctx, &what, NOT_VISIBLE, || async move {
            ec2.create_nat_gateway()
                .subnet_id(subnet)
                .set_allocation_id(allocation.map(str::to_string))
                .connectivity_type(match private {
                    true => ConnectivityType::Private,
                    false => ConnectivityType::Public,
                })
                .set_client_token(client_token.map(str::to_string))
                .set_tag_specifications(common::tag_specs(Ec2ResourceType::Natgateway, props, ctx))
                .send()
                .await
                .classified()
        })
        .await;
        let out = match (created, &allocated) {
            (Ok(out), _) => out,
            // Refused: the address this create allocated would bill with nothing to use it.
            (Err(err), Some(address)) => {
                release(ec2, address).await?;
                return Err(err);
            }
            (Err(err), None) => return Err(err),
        };
        let id = out
            .nat_gateway()
            .and_then(NatGateway::nat_gateway_id)
            .ok_or_else(|| ResourceError::other("CreateNatGateway returned no gateway id"))?
            .to_string();
        debug!(gateway = id, subnet, "created NAT gateway");
        if let Some(address) = &allocated {
            mark_address(ec2, address, &id).await?;
        }
        let gateway = wait_available(ctx, ec2, &id).await?;
        observe(&gateway, props)
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
        self.read(ctx, id, after)
            .await?
            .ok_or_else(|| crate::errors::vanished(&format!("NAT gateway {id}")))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let ec2 = self.aws.ec2(&ctx.region);
        let gateway = describe(&ec2, id).await?;
        // Its addresses, read while AWS still lists them with the gateway.
        let allocations: Vec<String> = gateway
            .iter()
            .flat_map(NatGateway::nat_gateway_addresses)
            .filter_map(|a| a.allocation_id().map(str::to_string))
            .collect();
        if gateway.as_ref().is_some_and(|g| !is_gone(g)) {
            debug!(gateway = id, "DeleteNatGateway");
            common::gone_is_done(
                ec2.delete_nat_gateway()
                    .nat_gateway_id(id)
                    .send()
                    .await
                    .classified(),
            )?;
            // Waited for even under `destroy --no-wait` (it takes a minute or two): its
            // address can be released only once it is gone, and no later run would see it.
            let what = format!("NAT gateway {id} to be deleted");
            let ec2 = &ec2;
            wait::until(ctx, &what, DELETE_LIMIT, || async move {
                Ok(match describe(ec2, id).await?.filter(|g| !is_gone(g)) {
                    Some(g) => Poll::Pending(state_text(&g)),
                    None => Poll::Ready(()),
                })
            })
            .await?;
        }
        release_addresses_of(ctx, &ec2, id, allocations).await
    }
}

fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props
        .entry("connectivity_type")
        .or_insert_with(|| json!("public"));
    props.insert("tags".into(), tags::tags_value(tags::tags_of(props)));
    reorder(props, ORDER);
}

fn nat_cost(props: &Props, ctx: &CostContext) -> Vec<CostLine> {
    let price = |key: &str| ctx.regional_price(&["ec2", key]);
    let mut lines = Vec::new();
    match price("nat_gateway_hour") {
        Ok(hour) => lines.push(CostLine::per_hour(
            format!("NAT gateway at ${}/h", price_text(hour)),
            hour,
        )),
        Err(e) => lines.push(CostLine::unknown("NAT gateway hours", e.to_string())),
    }
    let gb = ctx.usage("ec2.nat_gateway_gb");
    match price("nat_gateway_gb") {
        Ok(per_gb) => lines.push(CostLine::usage_per_month(
            format!(
                "{} GB processed × ${}/GB",
                plinth_core::cost::count_text(gb),
                price_text(per_gb)
            ),
            gb * per_gb,
        )),
        Err(e) => lines.push(CostLine::unknown(
            "NAT gateway data processed",
            e.to_string(),
        )),
    }
    if known_str(props, "connectivity_type") != Some("private") {
        lines.push(crate::cost::public_ipv4_line(ctx));
    }
    lines
}

/// The gateways one create of this resource made (its owner tags and token, its subnet).
async fn made_by(ec2: &Client, ctx: &OpContext, props: &Props) -> ResourceResult<Vec<NatGateway>> {
    let (Some(mut filters), Some(subnet)) = (
        common::created_by(props, ctx),
        known_str(props, "subnet_id"),
    ) else {
        return Ok(Vec::new());
    };
    filters.push(common::filter("subnet-id", subnet));
    let out = ec2
        .describe_nat_gateways()
        .set_filter(Some(filters))
        .send()
        .await
        .classified()?;
    Ok(out.nat_gateways().to_vec())
}

/// The `ClientToken`: the create token, unless a gateway it made has failed (AWS would
/// answer the same failed gateway for as long as it keeps the token): then one derived
/// from it, new for each failure.
async fn client_token(
    ec2: &Client,
    ctx: &OpContext,
    props: &Props,
) -> ResourceResult<Option<String>> {
    let Some(token) = &ctx.create_token else {
        return Ok(None);
    };
    let failed = made_by(ec2, ctx, props)
        .await?
        .iter()
        .filter(|g| g.state() == Some(&NatGatewayState::Failed))
        .count();
    Ok(Some(match failed {
        0 => token.clone(),
        n => format!("{token}-retry{n}"),
    }))
}

/// The Elastic IP for a new public gateway: the one this create's token already holds (an
/// earlier attempt or run allocated it), else a new one tagged with the token.
async fn allocate(ctx: &OpContext, ec2: &Client, props: &Props) -> ResourceResult<String> {
    if let Some(held) = addresses_made_by(ec2, ctx, props)
        .await?
        .iter()
        .find(|a| a.association_id().is_none())
        .and_then(Address::allocation_id)
    {
        debug!(
            allocation = held,
            "reusing the Elastic IP this create allocated"
        );
        return Ok(held.to_string());
    }
    let unanswered = Unanswered::default();
    let out = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .set_tag_specifications(common::tag_specs(Ec2ResourceType::ElasticIp, props, ctx))
        .customize()
        .interceptor(unanswered.clone())
        .send()
        .await
        .classified()?;
    let allocation = out
        .allocation_id()
        .ok_or_else(|| ResourceError::other("AllocateAddress returned no allocation id"))?
        .to_string();
    debug!(allocation, ip = ?out.public_ip(), "allocated an Elastic IP for a NAT gateway");
    if unanswered.seen() {
        let made = addresses_made_by(ec2, ctx, props).await?;
        let ids = made
            .iter()
            .filter_map(|a| a.allocation_id().map(str::to_string));
        common::remove_duplicates(ids.collect(), &allocation, "Elastic IP", |dup| async move {
            release(ec2, &dup).await
        })
        .await?;
    }
    Ok(allocation)
}

/// The addresses one create of this resource allocated (its owner tags and token).
async fn addresses_made_by(
    ec2: &Client,
    ctx: &OpContext,
    props: &Props,
) -> ResourceResult<Vec<Address>> {
    let Some(filters) = common::created_by(props, ctx) else {
        return Ok(Vec::new());
    };
    if ctx.create_token.is_none() {
        return Ok(Vec::new());
    }
    let out = ec2
        .describe_addresses()
        .set_filters(Some(filters))
        .send()
        .await
        .classified()?;
    Ok(out.addresses().to_vec())
}

/// Tags an address plinth allocated with the gateway it now belongs to.
async fn mark_address(ec2: &Client, allocation: &str, gateway: &str) -> ResourceResult<()> {
    ec2.create_tags()
        .resources(allocation)
        .tags(Tag::builder().key(GATEWAY_TAG).value(gateway).build())
        .send()
        .await
        .classified()
        .map(|_| ())
}

/// Releases the addresses plinth allocated for gateway `id` — those tagged with its id, and
/// those it held that carry a create token (an address of the stack's own carries none) —
/// once the deleted gateway lets go of them.
async fn release_addresses_of(
    ctx: &OpContext,
    ec2: &Client,
    id: &str,
    held: Vec<String>,
) -> ResourceResult<()> {
    let mut ours: Vec<String> = ec2
        .describe_addresses()
        .filters(common::filter(format!("tag:{GATEWAY_TAG}"), id))
        .send()
        .await
        .classified()?
        .addresses()
        .iter()
        .filter_map(|a| a.allocation_id().map(str::to_string))
        .collect();
    if !held.is_empty() {
        let made_by_plinth = ec2
            .describe_addresses()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("allocation-id")
                    .set_values(Some(held))
                    .build(),
            )
            .filters(common::filter("tag-key", common::CREATE_TOKEN_TAG))
            .send()
            .await
            .classified()?;
        ours.extend(
            made_by_plinth
                .addresses()
                .iter()
                .filter_map(|a| a.allocation_id().map(str::to_string)),
        );
    }
    ours.sort();
    ours.dedup();
    for allocation in &ours {
        let what = format!("releasing Elastic IP {allocation} of NAT gateway {id}");
        wait::retry_while_busy(ctx, &what, RELEASE_LIMIT, || async move {
            release(ec2, allocation).await.map_err(|err| {
                if has_code(&err, ADDRESS_IN_USE) {
                    ResourceError {
                        kind: ErrorKind::InUse,
                        ..err
                    }
                } else {
                    err
                }
            })
        })
        .await?;
    }
    Ok(())
}

async fn release(ec2: &Client, allocation: &str) -> ResourceResult<()> {
    debug!(allocation, "ReleaseAddress");
    common::gone_is_done(
        ec2.release_address()
            .allocation_id(allocation)
            .send()
            .await
            .classified(),
    )
}

fn is_gone(gateway: &NatGateway) -> bool {
    matches!(
        gateway.state(),
        Some(NatGatewayState::Deleted | NatGatewayState::Failed)
    )
}

fn state_text(gateway: &NatGateway) -> String {
    gateway
        .state()
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "unknown".into())
}

async fn describe(ec2: &Client, id: &str) -> ResourceResult<Option<NatGateway>> {
    let answer = ec2
        .describe_nat_gateways()
        .nat_gateway_ids(id)
        .send()
        .await
        .classified();
    Ok(common::unless_gone(answer)?.and_then(|out| out.nat_gateways().first().cloned()))
}

async fn wait_available(ctx: &OpContext, ec2: &Client, id: &str) -> ResourceResult<NatGateway> {
    let what = format!("NAT gateway {id} to be available");
    let since = tokio::time::Instant::now();
    wait::until(ctx, &what, CREATE_LIMIT, move || async move {
        match describe(ec2, id).await? {
            Some(g) if g.state() == Some(&NatGatewayState::Available) => Ok(Poll::Ready(g)),
            Some(g) if g.state() == Some(&NatGatewayState::Failed) => {
                Err(ResourceError::invalid(format!(
                    "NAT gateway {id} failed: {} ({})",
                    g.failure_message().unwrap_or("no reason given"),
                    g.failure_code().unwrap_or("no code")
                )))
            }
            Some(g) => Ok(Poll::Pending(state_text(&g))),
            None => wait::not_visible_yet(since, || {
                crate::errors::vanished(&format!("NAT gateway {id}"))
            }),
        }
    })
    .await
}

/// The gateway as properties; `allocation_id` only when the stack gave its own address
/// (`prior`): one plinth allocated is the gateway's, not a setting.
fn observe(gateway: &NatGateway, prior: &Props) -> ResourceResult<Observed> {
    let id = gateway.nat_gateway_id().ok_or_else(|| {
        ResourceError::other("DescribeNatGateways returned a gateway without an id")
    })?;
    let addresses = gateway.nat_gateway_addresses();
    let address = addresses
        .iter()
        .find(|a| a.is_primary() == Some(true))
        .or(addresses.first());
    let allocation = address.and_then(|a| a.allocation_id());
    let mut props = Props::new();
    props.insert(
        "subnet_id".into(),
        json!(gateway.subnet_id().unwrap_or_default()),
    );
    props.insert(
        "connectivity_type".into(),
        json!(gateway
            .connectivity_type()
            .map(|c| c.as_str())
            .unwrap_or("public")),
    );
    if prior.get("allocation_id").and_then(Value::as_str).is_some() {
        if let Some(allocation) = allocation {
            props.insert("allocation_id".into(), json!(allocation));
        }
    }
    props.insert(
        "tags".into(),
        tags::tags_value(common::tags_from(gateway.tags())),
    );
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(id));
    if let Some(ip) = address.and_then(|a| a.public_ip()) {
        attrs.insert("public_ip".into(), json!(ip));
    }
    if let Some(ip) = address.and_then(|a| a.private_ip()) {
        attrs.insert("private_ip".into(), json!(ip));
    }
    if let Some(allocation) = allocation {
        attrs.insert("allocation_id".into(), json!(allocation));
    }
    if let Some(vpc) = gateway.vpc_id() {
        attrs.insert("vpc_id".into(), json!(vpc));
    }
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs,
    })
}
