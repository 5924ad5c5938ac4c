//! `ec2.default_vpc`: a read-only lookup of the region's default VPC and its subnets, so a
//! lab stack can place things in the network every account starts with.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, Vpc};
use aws_sdk_ec2::Client;
use plinth_core::resource::{Observed, OpContext, ResourceError, ResourceResult, ResourceType};
use plinth_core::schema::{Attr, Shape, TypeKind, TypeSchema};
use plinth_core::value::Props;
use serde_json::json;

use crate::errors::SendExt;
use crate::Aws;

/// The `ec2.default_vpc` lookup.
pub struct DefaultVpc {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl DefaultVpc {
    pub fn new(aws: Arc<Aws>) -> DefaultVpc {
        DefaultVpc {
            aws,
            schema: TypeSchema {
                type_name: "ec2.default_vpc",
                description: "The region's default VPC (read-only lookup)",
                kind: TypeKind::Lookup,
                taggable: false,
                properties: vec![],
                attributes: vec![
                    Attr::new("id", Shape::String, "the VPC id (vpc-…)"),
                    Attr::new(
                        "cidr_block",
                        Shape::String,
                        "the VPC's primary IPv4 CIDR block",
                    ),
                    Attr::new(
                        "subnet_ids",
                        Shape::list(Shape::String),
                        "the VPC's subnets, sorted",
                    ),
                ],
            },
        }
    }

    async fn observe(&self, region: &str) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(region);
        let Some(vpc) = default_vpc(&ec2).await? else {
            return Ok(None);
        };
        let id = vpc
            .vpc_id()
            .ok_or_else(|| ResourceError::other("DescribeVpcs returned a VPC without an id"))?;
        let subnet_ids = subnet_ids(&ec2, id).await?;
        let mut attrs = Props::new();
        attrs.insert("id".into(), json!(id));
        attrs.insert(
            "cidr_block".into(),
            json!(vpc.cidr_block().unwrap_or_default()),
        );
        attrs.insert("subnet_ids".into(), json!(subnet_ids));
        Ok(Some(Observed {
            id: id.to_string(),
            props: Props::new(),
            attrs,
        }))
    }
}

#[async_trait]
impl ResourceType for DefaultVpc {
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

    /// A lookup has no identity of its own: reading it is looking it up again, and a
    /// region whose default VPC was deleted simply no longer has it.
    async fn read(
        &self,
        ctx: &OpContext,
        _id: &str,
        _prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        self.observe(&ctx.region).await
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        self.lookup(ctx, props).await
    }

    async fn update(
        &self,
        ctx: &OpContext,
        _id: &str,
        _before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        self.lookup(ctx, after).await
    }

    /// plinth never created the default VPC, so it never deletes it.
    async fn delete(&self, _ctx: &OpContext, _id: &str, _props: &Props) -> ResourceResult<()> {
        Ok(())
    }

    async fn lookup(&self, ctx: &OpContext, _props: &Props) -> ResourceResult<Observed> {
        self.observe(&ctx.region).await?.ok_or_else(|| {
            ResourceError::invalid(format!(
                "region {region} has no default VPC; create one with \
                 `aws ec2 create-default-vpc --region {region}` \
                 or give resources an explicit vpc_id",
                region = ctx.region
            ))
        })
    }
}

/// The region's default VPC, if it has one (accounts can delete it).
pub(crate) async fn default_vpc(ec2: &Client) -> ResourceResult<Option<Vpc>> {
    let out = ec2
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .classified()?;
    Ok(out.vpcs().first().cloned())
}

/// The VPC's subnet ids, sorted so the attribute does not change with AWS's answer order.
async fn subnet_ids(ec2: &Client, vpc_id: &str) -> ResourceResult<Vec<String>> {
    let subnets = ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .classified()?;
    let mut ids: Vec<String> = subnets
        .iter()
        .filter_map(|s| s.subnet_id().map(str::to_string))
        .collect();
    ids.sort();
    Ok(ids)
}
