//! `ec2.internet_gateway`: a VPC's way to the internet, attached to it.
//!
//! The gateway is made, then attached (a gateway made right after its VPC may hear
//! `InvalidVpcID.NotFound` and is attached again once the VPC is visible). Moving it to
//! another VPC is a detach and an attach. Deleting detaches it first; AWS refuses to detach
//! while the VPC still has public addresses mapped (an instance's public IP, a NAT
//! gateway's Elastic IP, released minutes after they are deleted), so the detach is retried.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{InternetGateway, ResourceType as Ec2ResourceType};
use aws_sdk_ec2::Client;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{reorder, Props};
use serde_json::json;
use tracing::debug;

use crate::errors::{has_code, SendExt};
use crate::resources::ec2_common::{self as common, known_str};
use crate::resources::tags;
use crate::wait;
use crate::{Aws, Unanswered};

/// Public addresses of deleted instances and NAT gateways hold the gateway for minutes.
const DETACH_LIMIT: Duration = Duration::from_secs(20 * 60);
const ORDER: &[&str] = &["vpc_id", "tags"];
const VPC_NOT_VISIBLE: &[&str] = &["InvalidVpcID.NotFound", "InvalidInternetGatewayID.NotFound"];
/// What attaching a gateway that is already attached answers.
const ALREADY_ATTACHED: &[&str] = &["Resource.AlreadyAssociated"];
/// What detaching a gateway that is not attached answers.
const NOT_ATTACHED: &[&str] = &["Gateway.NotAttached"];

/// The `ec2.internet_gateway` resource type.
pub struct InternetGatewayType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl InternetGatewayType {
    pub fn new(aws: Arc<Aws>) -> InternetGatewayType {
        InternetGatewayType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "ec2.internet_gateway",
        description: "An internet gateway, attached to a VPC",
        kind: TypeKind::Managed,
        taggable: true,
        properties: vec![
            Prop::new("vpc_id", Shape::String)
                .doc("the VPC it is attached to (vpc-…); left out, the gateway is detached"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the gateway"),
        ],
        attributes: vec![
            Attr::new("id", Shape::String, "the gateway id (igw-…)"),
            Attr::new("arn", Shape::String, "the gateway ARN"),
            Attr::new("vpc_id", Shape::String, "the VPC it is attached to"),
            Attr::new("owner_id", Shape::String, "the account it is in"),
        ],
    }
}

#[async_trait]
impl ResourceType for InternetGatewayType {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    /// The gateway is free; what crosses it is billed as data transfer.
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
            Some(gateway) => observe(&gateway, &ctx.region).map(Some),
            None => Ok(None),
        }
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(&ctx.region);
        let Some(gateway) = made_by(&ec2, ctx, props).await?.into_iter().next() else {
            return Ok(None);
        };
        debug!(gateway = ?gateway.internet_gateway_id(), "adopting an internet gateway an interrupted create made");
        observe(&gateway, &ctx.region).map(Some)
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "ec2", "internet-gateway/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let ec2 = self.aws.ec2(&ctx.region);
        let unanswered = Unanswered::default();
        let out = ec2
            .create_internet_gateway()
            .set_tag_specifications(common::tag_specs(
                Ec2ResourceType::InternetGateway,
                props,
                ctx,
            ))
            .customize()
            .interceptor(unanswered.clone())
            .send()
            .await
            .classified()?;
        let id = out
            .internet_gateway()
            .and_then(InternetGateway::internet_gateway_id)
            .ok_or_else(|| ResourceError::other("CreateInternetGateway returned no id"))?
            .to_string();
        debug!(gateway = id, "created internet gateway");
        if unanswered.seen() {
            // Never attached: deleted as they are.
            let made = made_by(&ec2, ctx, props).await?;
            let ids = made
                .iter()
                .filter_map(|g| g.internet_gateway_id().map(str::to_string));
            let ec2 = &ec2;
            common::remove_duplicates(ids.collect(), &id, "internet gateway", |dup| async move {
                delete_gateway(ec2, &dup).await
            })
            .await?;
        }
        if let Some(vpc) = known_str(props, "vpc_id") {
            attach(ctx, &ec2, &id, vpc).await?;
        }
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
        let (was, now) = (known_str(before, "vpc_id"), known_str(after, "vpc_id"));
        if was != now {
            if let Some(vpc) = was {
                detach(ctx, &ec2, id, vpc).await?;
            }
            if let Some(vpc) = now {
                attach(ctx, &ec2, id, vpc).await?;
            }
        }
        self.read_back(ctx, id).await
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let ec2 = self.aws.ec2(&ctx.region);
        let Some(gateway) = describe(&ec2, id).await? else {
            return Ok(());
        };
        if let Some(vpc) = attached_vpc(&gateway) {
            detach(ctx, &ec2, id, vpc).await?;
            if ctx.pending_deletion().is_some() {
                // Still attached (`destroy --no-wait`): the next run detaches and deletes it.
                return Ok(());
            }
        }
        // A gateway still `detaching` is refused with DependencyViolation for a moment.
        let what = format!("deleting internet gateway {id}");
        let ec2 = &ec2;
        wait::delete_when_free(ctx, &what, DETACH_LIMIT, move || delete_gateway(ec2, id)).await
    }
}

impl InternetGatewayType {
    async fn read_back(&self, ctx: &OpContext, id: &str) -> ResourceResult<Observed> {
        self.read(ctx, id, &Props::new())
            .await?
            .ok_or_else(|| crate::errors::vanished(&format!("internet gateway {id}")))
    }
}

fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props.insert("tags".into(), tags::tags_value(tags::tags_of(props)));
    reorder(props, ORDER);
}

/// Attaches the gateway; one already attached to `vpc` (a retried attach whose answer was
/// lost) is fine.
async fn attach(ctx: &OpContext, ec2: &Client, id: &str, vpc: &str) -> ResourceResult<()> {
    let what = format!("attaching internet gateway {id} to {vpc} while either is not visible yet");
    let attached = common::retry_while_invisible(ctx, &what, VPC_NOT_VISIBLE, || async move {
        ec2.attach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .send()
            .await
            .classified()
    })
    .await;
    match attached {
        Ok(_) => {
            debug!(gateway = id, vpc, "attached internet gateway");
            Ok(())
        }
        Err(err) if has_code(&err, ALREADY_ATTACHED) => {
            let gateway = describe(ec2, id).await?;
            if gateway.as_ref().and_then(attached_vpc) == Some(vpc) {
                return Ok(());
            }
            Err(ResourceError {
                kind: ErrorKind::Invalid,
                message: format!(
                    "{} (a VPC takes one internet gateway: detach the other, or use it)",
                    err.message
                ),
                ..err
            })
        }
        Err(err) => Err(err),
    }
}

/// Detaches the gateway, retrying while the VPC still has public addresses mapped.
async fn detach(ctx: &OpContext, ec2: &Client, id: &str, vpc: &str) -> ResourceResult<()> {
    let what = format!("detaching internet gateway {id} from {vpc}");
    let result = wait::delete_when_free(ctx, &what, DETACH_LIMIT, || async move {
        match ec2
            .detach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .send()
            .await
            .classified()
        {
            Ok(_) => Ok(()),
            Err(err) if err.kind == ErrorKind::NotFound || has_code(&err, NOT_ATTACHED) => Ok(()),
            Err(err) => Err(err),
        }
    })
    .await;
    match result {
        Err(mut err) if err.kind == ErrorKind::InUse => {
            err.message.push_str(
                "; the VPC still has public addresses mapped (an instance's public IP, a NAT \
                 gateway's Elastic IP; AWS releases a deleted one's minutes later, then destroy \
                 again)",
            );
            Err(err)
        }
        other => other,
    }
}

fn attached_vpc(gateway: &InternetGateway) -> Option<&str> {
    gateway
        .attachments()
        .iter()
        .find(|a| {
            !matches!(
                a.state().map(|s| s.as_str()),
                Some("detached" | "detaching")
            )
        })
        .and_then(|a| a.vpc_id())
}

async fn describe(ec2: &Client, id: &str) -> ResourceResult<Option<InternetGateway>> {
    let answer = ec2
        .describe_internet_gateways()
        .internet_gateway_ids(id)
        .send()
        .await
        .classified();
    Ok(common::unless_gone(answer)?.and_then(|out| out.internet_gateways().first().cloned()))
}

/// The gateways one create of this resource made (its owner tags and token).
async fn made_by(
    ec2: &Client,
    ctx: &OpContext,
    props: &Props,
) -> ResourceResult<Vec<InternetGateway>> {
    let Some(filters) = common::created_by(props, ctx) else {
        return Ok(Vec::new());
    };
    let out = ec2
        .describe_internet_gateways()
        .set_filters(Some(filters))
        .send()
        .await
        .classified()?;
    Ok(out.internet_gateways().to_vec())
}

async fn delete_gateway(ec2: &Client, id: &str) -> ResourceResult<()> {
    debug!(gateway = id, "DeleteInternetGateway");
    common::gone_is_done(
        ec2.delete_internet_gateway()
            .internet_gateway_id(id)
            .send()
            .await
            .classified(),
    )
}

fn observe(gateway: &InternetGateway, region: &str) -> ResourceResult<Observed> {
    let id = gateway.internet_gateway_id().ok_or_else(|| {
        ResourceError::other("DescribeInternetGateways returned a gateway without an id")
    })?;
    let mut props = Props::new();
    if let Some(vpc) = attached_vpc(gateway) {
        props.insert("vpc_id".into(), json!(vpc));
    }
    props.insert(
        "tags".into(),
        tags::tags_value(common::tags_from(gateway.tags())),
    );
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(id));
    if let Some(vpc) = attached_vpc(gateway) {
        attrs.insert("vpc_id".into(), json!(vpc));
    }
    if let Some(owner) = gateway.owner_id() {
        attrs.insert(
            "arn".into(),
            json!(common::arn(region, owner, "internet-gateway", id)),
        );
        attrs.insert("owner_id".into(), json!(owner));
    }
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs,
    })
}
