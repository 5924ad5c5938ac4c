//! `ec2.route_table`: where a VPC's subnets send traffic — to an internet gateway, a NAT
//! gateway or an endpoint — and the subnets that use it.
//!
//! `CreateRouteTable` takes an idempotency token (the engine's create token), so a create
//! sent again after a lost answer returns the same table. The `local` route AWS puts in
//! every table, and the routes a gateway endpoint adds to tables it is associated with,
//! are AWS's own: never shown, diffed or removed. A table is deleted after its subnets are
//! disassociated (they fall back to the VPC's main table).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType as Ec2ResourceType, Route, RouteTable};
use aws_sdk_ec2::Client;
use plinth_core::resource::{
    NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult, ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, reorder, PathSeg, Props};
use serde_json::{json, Map, Value};
use tracing::debug;

use crate::errors::{has_code, SendExt};
use crate::resources::ec2_common::{self as common, known_str};
use crate::resources::ec2_vpc::cidr_problem;
use crate::resources::tags;
use crate::wait::{self, Poll};
use crate::Aws;

const DELETE_LIMIT: Duration = Duration::from_secs(10 * 60);
const ORDER: &[&str] = &["vpc_id", "routes", "subnet_ids", "tags"];
/// Where a route may send traffic: the property naming the target, and its id's prefix.
const TARGETS: &[(&str, &str)] = &[
    ("gateway_id", "igw-"),
    ("nat_gateway_id", "nat-"),
    ("vpc_endpoint_id", "vpce-"),
];
/// What a call naming something just made may hear while that is not visible yet.
const NOT_VISIBLE: &[&str] = &[
    "InvalidVpcID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidGatewayID.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidNatGatewayID.NotFound",
    "InvalidVpcEndpointId.NotFound",
];

/// The `ec2.route_table` resource type.
pub struct RouteTableType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl RouteTableType {
    pub fn new(aws: Arc<Aws>) -> RouteTableType {
        RouteTableType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "ec2.route_table",
        description: "A route table: where a VPC's subnets send traffic",
        kind: TypeKind::Managed,
        taggable: true,
        properties: vec![
            Prop::new("vpc_id", Shape::String)
                .required()
                .replaces()
                .doc("the VPC (vpc-…)"),
            Prop::new("routes", Shape::list(route_shape()))
                .known_as(&["route"])
                .doc("routes besides the VPC's own local one; default none"),
            Prop::new("subnet_ids", Shape::list(Shape::String))
                .doc("the subnets that use this table (others use the VPC's main table)"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the table"),
        ],
        attributes: vec![
            Attr::new("id", Shape::String, "the table id (rtb-…)"),
            Attr::new("arn", Shape::String, "the table ARN"),
            Attr::new("vpc_id", Shape::String, "the VPC"),
        ],
    }
}

fn route_shape() -> Shape {
    Shape::Object(vec![
        Prop::new("destination_cidr_block", Shape::String)
            .required()
            .known_as(&["cidr_block", "destination"])
            .doc("where the traffic goes, e.g. 0.0.0.0/0"),
        Prop::new("gateway_id", Shape::String).doc("an internet gateway (igw-…)"),
        Prop::new("nat_gateway_id", Shape::String).doc("a NAT gateway (nat-…)"),
        Prop::new("vpc_endpoint_id", Shape::String)
            .doc("a Gateway Load Balancer endpoint (vpce-…)"),
    ])
}

#[async_trait]
impl ResourceType for RouteTableType {
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
        let routes = props.get("routes").and_then(Value::as_array);
        let mut seen = BTreeMap::new();
        for (i, route) in routes.into_iter().flatten().enumerate() {
            let Some(route) = route.as_object() else {
                continue;
            };
            let at = |key: &str, message: String| PropIssue {
                path: vec![
                    PathSeg::Key("routes".into()),
                    PathSeg::Index(i),
                    PathSeg::Key(key.into()),
                ],
                message,
            };
            let given: Vec<&str> = TARGETS
                .iter()
                .map(|(key, _)| *key)
                .filter(|key| route.contains_key(*key))
                .collect();
            if given.len() != 1 {
                issues.push(PropIssue {
                    path: vec![PathSeg::Key("routes".into()), PathSeg::Index(i)],
                    message: format!(
                        "a route sends traffic to exactly one of gateway_id, nat_gateway_id and vpc_endpoint_id{}",
                        if given.is_empty() { String::new() } else { format!(", not {}", given.join(" and ")) }
                    ),
                });
            }
            for (key, prefix) in TARGETS {
                if let Some(id) = route
                    .get(*key)
                    .filter(|v| !contains_unknown(v))
                    .and_then(Value::as_str)
                {
                    if !id.starts_with(prefix) {
                        issues.push(at(
                            key,
                            format!("expected an id starting {prefix}, not {id:?}"),
                        ));
                    }
                }
            }
            let destination = route
                .get("destination_cidr_block")
                .filter(|v| !contains_unknown(v))
                .and_then(Value::as_str);
            if let Some(cidr) = destination {
                if let Some(problem) = cidr_problem(cidr, 0, 32) {
                    issues.push(at("destination_cidr_block", problem));
                }
                if let Some(first) = seen.insert(cidr.to_string(), i) {
                    issues.push(at(
                        "destination_cidr_block",
                        format!("routes[{first}] already goes to {cidr}: a table has one route per destination"),
                    ));
                }
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["vpc_id"])
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(&ctx.region);
        match describe(&ec2, id).await? {
            Some(table) => observe(&table, &ctx.region).map(Some),
            None => Ok(None),
        }
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(&ctx.region);
        let (Some(mut filters), Some(vpc)) =
            (common::created_by(props, ctx), known_str(props, "vpc_id"))
        else {
            return Ok(None);
        };
        filters.push(common::filter("vpc-id", vpc));
        let out = ec2
            .describe_route_tables()
            .set_filters(Some(filters))
            .send()
            .await
            .classified()?;
        match out.route_tables().first() {
            Some(table) => {
                debug!(table = ?table.route_table_id(), "adopting a route table an interrupted create made");
                observe(table, &ctx.region).map(Some)
            }
            None => Ok(None),
        }
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "ec2", "route-table/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let ec2 = self.aws.ec2(&ctx.region);
        let vpc = known_str(props, "vpc_id")
            .ok_or_else(|| ResourceError::invalid("ec2.route_table needs a vpc_id"))?;
        let what = format!("creating a route table while VPC {vpc} is not visible yet");
        let ec2 = &ec2;
        let out = common::retry_while_invisible(ctx, &what, NOT_VISIBLE, || async move {
            ec2.create_route_table()
                .vpc_id(vpc)
                .set_client_token(ctx.create_token.clone())
                .set_tag_specifications(common::tag_specs(Ec2ResourceType::RouteTable, props, ctx))
                .send()
                .await
                .classified()
        })
        .await?;
        let id = out
            .route_table()
            .and_then(RouteTable::route_table_id)
            .ok_or_else(|| ResourceError::other("CreateRouteTable returned no table id"))?
            .to_string();
        debug!(table = id, vpc, "created route table");
        let table = wait_visible(ctx, ec2, &id).await?;
        let fresh = observe(&table, &ctx.region)?;
        converge(ctx, ec2, &id, &fresh.props, props).await?;
        self.read_back(ctx, &id).await
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
        converge(ctx, &ec2, id, before, after).await?;
        self.read_back(ctx, id).await
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let ec2 = self.aws.ec2(&ctx.region);
        let Some(table) = describe(&ec2, id).await? else {
            return Ok(());
        };
        for (_, association) in subnet_associations(&table) {
            disassociate(&ec2, &association).await?;
        }
        let what = format!("deleting route table {id}");
        let ec2 = &ec2;
        wait::delete_when_free(ctx, &what, DELETE_LIMIT, move || async move {
            debug!(table = id, "DeleteRouteTable");
            common::gone_is_done(
                ec2.delete_route_table()
                    .route_table_id(id)
                    .send()
                    .await
                    .classified(),
            )
        })
        .await
    }
}

impl RouteTableType {
    async fn read_back(&self, ctx: &OpContext, id: &str) -> ResourceResult<Observed> {
        self.read(ctx, id, &Props::new())
            .await?
            .ok_or_else(|| crate::errors::vanished(&format!("route table {id}")))
    }
}

/// Routes sorted by destination, each with only its target; subnets sorted.
fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    let mut routes: Vec<Value> = props
        .get("routes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut route| {
            if let Some(route) = route.as_object_mut() {
                route.retain(|_, v| !v.is_null());
            }
            route
        })
        .collect();
    if !routes.iter().any(contains_unknown) {
        routes.sort_by(|a, b| destination(a).cmp(&destination(b)));
    }
    props.insert("routes".into(), Value::Array(routes));
    let mut subnets: Vec<Value> = props
        .get("subnet_ids")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !subnets.iter().any(contains_unknown) {
        subnets.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        subnets.dedup();
    }
    props.insert("subnet_ids".into(), Value::Array(subnets));
    props.insert("tags".into(), tags::tags_value(tags::tags_of(props)));
    reorder(props, ORDER);
}

fn destination(route: &Value) -> Option<&str> {
    route.get("destination_cidr_block").and_then(Value::as_str)
}

/// The routes of `props` by destination.
fn routes_of(props: &Props) -> BTreeMap<String, Map<String, Value>> {
    props
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| Some((destination(r)?.to_string(), r.as_object()?.clone())))
        .collect()
}

fn subnets_of(props: &Props) -> Vec<String> {
    props
        .get("subnet_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Makes the table's routes and subnets those of `after`, from `before`'s.
async fn converge(
    ctx: &OpContext,
    ec2: &Client,
    id: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let (was, now) = (routes_of(before), routes_of(after));
    for destination in was.keys().filter(|d| !now.contains_key(*d)) {
        delete_route(ec2, id, destination).await?;
    }
    for (destination, route) in &now {
        match was.get(destination) {
            Some(old) if old == route => {}
            Some(_) => put_route(ctx, ec2, id, route, true).await?,
            None => put_route(ctx, ec2, id, route, false).await?,
        }
    }
    let (was, now) = (subnets_of(before), subnets_of(after));
    let removed: Vec<&String> = was.iter().filter(|s| !now.contains(s)).collect();
    if !removed.is_empty() {
        let table = describe(ec2, id)
            .await?
            .ok_or_else(|| crate::errors::vanished(&format!("route table {id}")))?;
        for (subnet, association) in subnet_associations(&table) {
            if removed.iter().any(|r| **r == subnet) {
                disassociate(ec2, &association).await?;
            }
        }
    }
    for subnet in now.iter().filter(|s| !was.contains(s)) {
        associate(ctx, ec2, id, subnet).await?;
    }
    Ok(())
}

/// Adds a route (`replace`: changes the target of an existing one).
async fn put_route(
    ctx: &OpContext,
    ec2: &Client,
    id: &str,
    route: &Map<String, Value>,
    replace: bool,
) -> ResourceResult<()> {
    let target = |key: &str| route.get(key).and_then(Value::as_str).map(str::to_string);
    let destination = target("destination_cidr_block")
        .ok_or_else(|| ResourceError::invalid("a route needs a destination_cidr_block"))?;
    let what = format!("adding the route to {destination} while its target is not visible yet");
    debug!(table = id, destination, replace, "CreateRoute/ReplaceRoute");
    let result = common::retry_while_invisible(ctx, &what, NOT_VISIBLE, || {
        let destination = destination.clone();
        let (gateway, nat, endpoint) = (
            target("gateway_id"),
            target("nat_gateway_id"),
            target("vpc_endpoint_id"),
        );
        async move {
            if replace {
                ec2.replace_route()
                    .route_table_id(id)
                    .destination_cidr_block(destination)
                    .set_gateway_id(gateway)
                    .set_nat_gateway_id(nat)
                    .set_vpc_endpoint_id(endpoint)
                    .send()
                    .await
                    .classified()
                    .map(|_| ())
            } else {
                ec2.create_route()
                    .route_table_id(id)
                    .destination_cidr_block(destination)
                    .set_gateway_id(gateway)
                    .set_nat_gateway_id(nat)
                    .set_vpc_endpoint_id(endpoint)
                    .send()
                    .await
                    .classified()
                    .map(|_| ())
            }
        }
    })
    .await;
    match result {
        // A create sent again after its answer was lost: the route is there; make sure it
        // goes where it should.
        Err(err) if !replace && has_code(&err, &["RouteAlreadyExists"]) => {
            Box::pin(put_route(ctx, ec2, id, route, true)).await
        }
        other => other,
    }
}

async fn delete_route(ec2: &Client, id: &str, destination: &str) -> ResourceResult<()> {
    debug!(table = id, destination, "DeleteRoute");
    common::gone_is_done(
        ec2.delete_route()
            .route_table_id(id)
            .destination_cidr_block(destination)
            .send()
            .await
            .classified(),
    )
}

/// Associates a subnet, taking it over from another table it is explicitly associated with.
async fn associate(ctx: &OpContext, ec2: &Client, id: &str, subnet: &str) -> ResourceResult<()> {
    let what = format!("associating subnet {subnet} while it is not visible yet");
    let result = common::retry_while_invisible(ctx, &what, NOT_VISIBLE, || async move {
        ec2.associate_route_table()
            .route_table_id(id)
            .subnet_id(subnet)
            .send()
            .await
            .classified()
    })
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if has_code(&err, &["Resource.AlreadyAssociated"]) => {
            take_over(ec2, id, subnet).await
        }
        Err(err) => Err(err),
    }
}

/// A subnet explicitly associated with another table (or with this one, by an associate
/// whose answer was lost) is moved to this one.
async fn take_over(ec2: &Client, id: &str, subnet: &str) -> ResourceResult<()> {
    let out = ec2
        .describe_route_tables()
        .filters(common::filter("association.subnet-id", subnet))
        .send()
        .await
        .classified()?;
    let current = out.route_tables().iter().find_map(|t| {
        t.associations()
            .iter()
            .find(|a| a.subnet_id() == Some(subnet))
            .map(|a| (t.route_table_id(), a.route_table_association_id()))
    });
    match current {
        Some((Some(table), _)) if table == id => Ok(()),
        Some((_, Some(association))) => {
            debug!(
                table = id,
                subnet, association, "ReplaceRouteTableAssociation"
            );
            ec2.replace_route_table_association()
                .association_id(association)
                .route_table_id(id)
                .send()
                .await
                .classified()
                .map(|_| ())
        }
        _ => Err(ResourceError::other(format!(
            "subnet {subnet} is associated with another route table that could not be found"
        ))),
    }
}

async fn disassociate(ec2: &Client, association: &str) -> ResourceResult<()> {
    debug!(association, "DisassociateRouteTable");
    common::gone_is_done(
        ec2.disassociate_route_table()
            .association_id(association)
            .send()
            .await
            .classified(),
    )
}

/// `(subnet, association id)` of the subnets explicitly associated with the table.
fn subnet_associations(table: &RouteTable) -> Vec<(String, String)> {
    table
        .associations()
        .iter()
        .filter(|a| a.main() != Some(true))
        // One being taken away (`disassociating`) no longer counts.
        .filter(|a| {
            !matches!(
                a.association_state()
                    .and_then(|s| s.state())
                    .map(|s| s.as_str()),
                Some("disassociating" | "disassociated")
            )
        })
        .filter_map(|a| {
            Some((
                a.subnet_id()?.to_string(),
                a.route_table_association_id()?.to_string(),
            ))
        })
        .collect()
}

async fn describe(ec2: &Client, id: &str) -> ResourceResult<Option<RouteTable>> {
    let answer = ec2
        .describe_route_tables()
        .route_table_ids(id)
        .send()
        .await
        .classified();
    Ok(common::unless_gone(answer)?.and_then(|out| out.route_tables().first().cloned()))
}

async fn wait_visible(ctx: &OpContext, ec2: &Client, id: &str) -> ResourceResult<RouteTable> {
    let what = format!("route table {id} to exist");
    let since = tokio::time::Instant::now();
    wait::until(ctx, &what, wait::VISIBLE_LIMIT, move || async move {
        match describe(ec2, id).await? {
            Some(table) => Ok(Poll::Ready(table)),
            None => wait::not_visible_yet(since, || {
                crate::errors::vanished(&format!("route table {id}"))
            }),
        }
    })
    .await
}

/// A route the stack manages: not the VPC's `local` one, nor one an endpoint added (to a
/// prefix list), nor one a virtual private gateway propagates.
fn route_value(route: &Route) -> Option<Value> {
    let destination = route.destination_cidr_block()?;
    if route.gateway_id() == Some("local")
        || route.destination_prefix_list_id().is_some()
        || route.origin().map(|o| o.as_str()) == Some("EnableVgwRoutePropagation")
    {
        return None;
    }
    let mut value = Map::new();
    value.insert("destination_cidr_block".into(), json!(destination));
    if let Some(nat) = route.nat_gateway_id() {
        value.insert("nat_gateway_id".into(), json!(nat));
    } else if let Some(gateway) = route.gateway_id() {
        let key = match gateway.starts_with("vpce-") {
            true => "vpc_endpoint_id",
            false => "gateway_id",
        };
        value.insert(key.into(), json!(gateway));
    } else {
        return None;
    }
    Some(Value::Object(value))
}

fn observe(table: &RouteTable, region: &str) -> ResourceResult<Observed> {
    let id = table.route_table_id().ok_or_else(|| {
        ResourceError::other("DescribeRouteTables returned a table without an id")
    })?;
    let vpc = table.vpc_id().unwrap_or_default();
    let routes: Vec<Value> = table.routes().iter().filter_map(route_value).collect();
    let subnets: Vec<String> = subnet_associations(table)
        .into_iter()
        .map(|(subnet, _)| subnet)
        .collect();
    let mut props = Props::new();
    props.insert("vpc_id".into(), json!(vpc));
    props.insert("routes".into(), Value::Array(routes));
    props.insert("subnet_ids".into(), json!(subnets));
    props.insert(
        "tags".into(),
        tags::tags_value(common::tags_from(table.tags())),
    );
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(id));
    attrs.insert("vpc_id".into(), json!(vpc));
    if let Some(owner) = table.owner_id() {
        attrs.insert(
            "arn".into(),
            json!(common::arn(region, owner, "route-table", id)),
        );
    }
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs,
    })
}
