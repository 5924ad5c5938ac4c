//! `ec2.vpc_endpoint`: a gateway endpoint, so a VPC's subnets reach S3 or DynamoDB without
//! an internet gateway or a NAT gateway (and without the NAT's per-GB charge). Free.
//!
//! AWS adds a route to the service's prefix list in each route table the endpoint is
//! associated with; `ec2.route_table` leaves those routes alone. `CreateVpcEndpoint` takes
//! the create token as its `ClientToken`. `DeleteVpcEndpoints` reports a refusal in its
//! answer's `Unsuccessful` list, not as an error, so that list is read. Its states come
//! lowercase (`available`), unlike the capitalised values the API reference lists.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    ResourceType as Ec2ResourceType, State, VpcEndpoint, VpcEndpointType as SdkEndpointType,
};
use aws_sdk_ec2::Client;
use plinth_core::resource::{
    NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult, ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, reorder, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::errors::SendExt;
use crate::resources::ec2_common::{self as common, known_str};
use crate::resources::tags;
use crate::wait::{self, Poll};
use crate::Aws;

const CREATE_LIMIT: Duration = Duration::from_secs(10 * 60);
const DELETE_LIMIT: Duration = Duration::from_secs(10 * 60);
const ORDER: &[&str] = &["vpc_id", "service", "route_table_ids", "tags"];
/// The services with gateway endpoints.
const SERVICES: &[&str] = &["s3", "dynamodb"];
const NOT_VISIBLE: &[&str] = &[
    "InvalidVpcId.NotFound",
    "InvalidVpcID.NotFound",
    "InvalidRouteTableId.NotFound",
    "InvalidRouteTableID.NotFound",
];

/// The `ec2.vpc_endpoint` resource type.
pub struct VpcEndpointType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl VpcEndpointType {
    pub fn new(aws: Arc<Aws>) -> VpcEndpointType {
        VpcEndpointType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "ec2.vpc_endpoint",
        description: "A gateway endpoint: S3 or DynamoDB from a VPC without the internet",
        kind: TypeKind::Managed,
        taggable: true,
        properties: vec![
            Prop::new("vpc_id", Shape::String)
                .required()
                .replaces()
                .doc("the VPC (vpc-…)"),
            Prop::new("service", Shape::Enum(SERVICES))
                .required()
                .replaces()
                .known_as(&["service_name"])
                .doc("`s3` or `dynamodb` (the VPC's region's)"),
            Prop::new("route_table_ids", Shape::list(Shape::String))
                .doc("the route tables that get a route to the service; default none"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the endpoint"),
        ],
        attributes: vec![
            Attr::new("id", Shape::String, "the endpoint id (vpce-…)"),
            Attr::new("arn", Shape::String, "the endpoint ARN"),
            Attr::new(
                "service_name",
                Shape::String,
                "com.amazonaws.REGION.SERVICE",
            ),
        ],
    }
}

#[async_trait]
impl ResourceType for VpcEndpointType {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    /// Gateway endpoints are free.
    fn cost(
        &self,
        _props: &Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        crate::cost::free(ctx, self.schema.type_name)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        match known_str(props, "vpc_id").filter(|v| !v.starts_with("vpc-")) {
            Some(vpc) => vec![PropIssue::at(
                &["vpc_id"],
                format!("expected a VPC id (vpc-…), not {vpc:?}"),
            )],
            None => Vec::new(),
        }
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
            Some(endpoint) if !is_gone(&endpoint) => observe(&endpoint, &ctx.region).map(Some),
            _ => Ok(None),
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
            .describe_vpc_endpoints()
            .set_filters(Some(filters))
            .send()
            .await
            .classified()?;
        match out.vpc_endpoints().iter().find(|e| !is_gone(e)) {
            Some(endpoint) => {
                debug!(endpoint = ?endpoint.vpc_endpoint_id(), "adopting a VPC endpoint an interrupted create made");
                observe(endpoint, &ctx.region).map(Some)
            }
            None => Ok(None),
        }
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "ec2", "vpc-endpoint/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let ec2 = self.aws.ec2(&ctx.region);
        let vpc = known_str(props, "vpc_id")
            .ok_or_else(|| ResourceError::invalid("ec2.vpc_endpoint needs a vpc_id"))?;
        let service = known_str(props, "service")
            .ok_or_else(|| ResourceError::invalid("ec2.vpc_endpoint needs a service"))?;
        let service_name = format!("com.amazonaws.{}.{service}", ctx.region);
        let tables = route_tables_of(props);
        let what =
            format!("creating an endpoint while VPC {vpc} or its route tables are not visible yet");
        let (ec2, service_name, tables) = (&ec2, service_name.as_str(), &tables);
        let out = common::retry_while_invisible(ctx, &what, NOT_VISIBLE, || async move {
            ec2.create_vpc_endpoint()
                .vpc_id(vpc)
                .service_name(service_name)
                .vpc_endpoint_type(SdkEndpointType::Gateway)
                .set_route_table_ids(Some(tables.clone()).filter(|t| !t.is_empty()))
                .set_client_token(ctx.create_token.clone())
                .set_tag_specifications(common::tag_specs(Ec2ResourceType::VpcEndpoint, props, ctx))
                .send()
                .await
                .classified()
        })
        .await?;
        let id = out
            .vpc_endpoint()
            .and_then(VpcEndpoint::vpc_endpoint_id)
            .ok_or_else(|| ResourceError::other("CreateVpcEndpoint returned no endpoint id"))?
            .to_string();
        debug!(endpoint = id, service_name, "created VPC endpoint");
        let endpoint = wait_available(ctx, ec2, &id).await?;
        observe(&endpoint, &ctx.region)
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
        let (was, now) = (route_tables_of(before), route_tables_of(after));
        let added: Vec<String> = now.iter().filter(|t| !was.contains(t)).cloned().collect();
        let removed: Vec<String> = was.iter().filter(|t| !now.contains(t)).cloned().collect();
        if !added.is_empty() || !removed.is_empty() {
            debug!(endpoint = id, ?added, ?removed, "ModifyVpcEndpoint");
            let what = format!("changing the route tables of endpoint {id}");
            let (ec2, added, removed) = (&ec2, &added, &removed);
            common::retry_while_invisible(ctx, &what, NOT_VISIBLE, || async move {
                ec2.modify_vpc_endpoint()
                    .vpc_endpoint_id(id)
                    .set_add_route_table_ids(Some(added.clone()).filter(|t| !t.is_empty()))
                    .set_remove_route_table_ids(Some(removed.clone()).filter(|t| !t.is_empty()))
                    .send()
                    .await
                    .classified()
            })
            .await?;
        }
        self.read(ctx, id, after)
            .await?
            .ok_or_else(|| crate::errors::vanished(&format!("VPC endpoint {id}")))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let ec2 = self.aws.ec2(&ctx.region);
        debug!(endpoint = id, "DeleteVpcEndpoints");
        // An endpoint already gone is reported in `Unsuccessful`; an error, even a "not
        // found" one (of a route table it names), means nothing was deleted.
        let out = ec2
            .delete_vpc_endpoints()
            .vpc_endpoint_ids(id)
            .send()
            .await
            .classified()?;
        if let Some(refused) = out.unsuccessful().first() {
            let error = refused.error();
            let code = error.and_then(|e| e.code()).unwrap_or_default();
            if !code.contains("NotFound") {
                return Err(ResourceError::new(
                    crate::errors::kind_of_code(code),
                    format!(
                        "DeleteVpcEndpoints refused {id}: {} ({code})",
                        error.and_then(|e| e.message()).unwrap_or("no reason given")
                    ),
                )
                .with_code(code));
            }
            return Ok(());
        }
        let what = format!("VPC endpoint {id} to be deleted");
        let reason = "AWS deletes a gateway endpoint within a minute";
        let ec2 = &ec2;
        wait::until_deleted(ctx, &what, reason, DELETE_LIMIT, || async move {
            Ok(describe(ec2, id)
                .await?
                .filter(|e| !is_gone(e))
                .map(|e| state_text(&e)))
        })
        .await
    }
}

fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    let mut tables: Vec<Value> = props
        .get("route_table_ids")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !tables.iter().any(contains_unknown) {
        tables.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        tables.dedup();
    }
    props.insert("route_table_ids".into(), Value::Array(tables));
    props.insert("tags".into(), tags::tags_value(tags::tags_of(props)));
    reorder(props, ORDER);
}

fn route_tables_of(props: &Props) -> Vec<String> {
    props
        .get("route_table_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Whether the endpoint is in one of `states`. EC2 documents endpoint states capitalised
/// (`Available`), as the SDK's enum has them, but answers them lowercase (`available`), so
/// they are compared without case.
fn state_is(endpoint: &VpcEndpoint, states: &[State]) -> bool {
    endpoint.state().is_some_and(|state| {
        states
            .iter()
            .any(|s| s.as_str().eq_ignore_ascii_case(state.as_str()))
    })
}

fn is_gone(endpoint: &VpcEndpoint) -> bool {
    state_is(
        endpoint,
        &[
            State::Deleted,
            State::Deleting,
            State::Failed,
            State::Rejected,
            State::Expired,
        ],
    )
}

fn state_text(endpoint: &VpcEndpoint) -> String {
    endpoint
        .state()
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "unknown".into())
}

async fn describe(ec2: &Client, id: &str) -> ResourceResult<Option<VpcEndpoint>> {
    let answer = ec2
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(id)
        .send()
        .await
        .classified();
    Ok(common::unless_gone(answer)?.and_then(|out| out.vpc_endpoints().first().cloned()))
}

async fn wait_available(ctx: &OpContext, ec2: &Client, id: &str) -> ResourceResult<VpcEndpoint> {
    let what = format!("VPC endpoint {id} to be available");
    let since = tokio::time::Instant::now();
    wait::until(ctx, &what, CREATE_LIMIT, move || async move {
        match describe(ec2, id).await? {
            Some(e) if state_is(&e, &[State::Available]) => Ok(Poll::Ready(e)),
            Some(e) if is_gone(&e) => Err(ResourceError::invalid(format!(
                "VPC endpoint {id} is {} instead of available",
                state_text(&e)
            ))),
            Some(e) => Ok(Poll::Pending(state_text(&e))),
            None => wait::not_visible_yet(since, || {
                crate::errors::vanished(&format!("VPC endpoint {id}"))
            }),
        }
    })
    .await
}

fn observe(endpoint: &VpcEndpoint, region: &str) -> ResourceResult<Observed> {
    let id = endpoint.vpc_endpoint_id().ok_or_else(|| {
        ResourceError::other("DescribeVpcEndpoints returned an endpoint without an id")
    })?;
    let service_name = endpoint.service_name().unwrap_or_default();
    let service = service_name.rsplit('.').next().unwrap_or_default();
    let mut props = Props::new();
    props.insert(
        "vpc_id".into(),
        json!(endpoint.vpc_id().unwrap_or_default()),
    );
    props.insert("service".into(), json!(service));
    props.insert("route_table_ids".into(), json!(endpoint.route_table_ids()));
    props.insert(
        "tags".into(),
        tags::tags_value(common::tags_from(endpoint.tags())),
    );
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(id));
    attrs.insert("service_name".into(), json!(service_name));
    if let Some(owner) = endpoint.owner_id() {
        attrs.insert(
            "arn".into(),
            json!(common::arn(region, owner, "vpc-endpoint", id)),
        );
    }
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs,
    })
}
