//! `dynamodb.table`'s `autoscaling`: Application Auto Scaling of a provisioned table's and
//! its global indexes' capacity, as properties of the table.
//!
//! Each autoscaled dimension (`read`, `write`) is a scalable target (`min`..`max` capacity
//! units) with one target-tracking policy keeping the consumed share of capacity near
//! `target` percent. AWS then sets the capacity itself, so an autoscaled dimension has no
//! `read_capacity`/`write_capacity` property: the table starts at `min` and diffs never see
//! what AWS chose. Registering a target and putting a policy are both idempotent (keyed by
//! resource, dimension and policy name), so a retried apply repeats them safely.
//!
//! Targets are read only for tables whose state has autoscaling: DescribeScalableTargets once
//! for the table and its indexes, DescribeScalingPolicies once per autoscaled resource.
//! Deleting a table does not deregister its targets (their CloudWatch alarms would stay and
//! bill): the table's delete deregisters them first.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_applicationautoscaling::Client;
use plinth_core::resource::{ErrorKind, OpContext, PropIssue, ResourceError, ResourceResult};
use plinth_core::schema::{Prop, Shape};
use plinth_core::value::{contains_unknown, reorder, PathSeg};
use serde_json::{json, Map, Value};
use tracing::debug;

use crate::errors::SendExt;
use crate::wait;

/// The key on the table and on each global index.
pub const KEY: &str = "autoscaling";
const DIMENSIONS: &[&str] = &["read", "write"];
const DIMENSION_ORDER: &[&str] = &["min", "max", "target"];
/// DynamoDB's default target utilization, as the console proposes it.
const DEFAULT_TARGET: f64 = 70.0;
/// What Application Auto Scaling accepts for DynamoDB target utilization.
const TARGET_RANGE: std::ops::RangeInclusive<f64> = 20.0..=90.0;
/// A first RegisterScalableTarget creates the service-linked role; until IAM has
/// propagated it, AWS answers that it cannot assume it.
const ROLE_LIMIT: Duration = Duration::from_secs(2 * 60);

/// The `autoscaling` property (on the table and on each global index), documented `doc`.
pub fn prop(doc: &'static str) -> Prop {
    let dimension = || {
        Shape::Object(vec![
            Prop::new("min", Shape::int_range(1, 40_000))
                .required()
                .known_as(&["min_capacity"])
                .doc("the fewest capacity units; the table starts here"),
            Prop::new("max", Shape::int_range(1, 40_000))
                .required()
                .known_as(&["max_capacity"])
                .doc("the most capacity units AWS may set"),
            Prop::new("target", Shape::Number)
                .known_as(&["target_value"])
                .doc("the consumed share of capacity to keep, in percent (20–90); default 70"),
        ])
    };
    Prop::new(
        KEY,
        Shape::Object(vec![
            Prop::new("read", dimension()).doc("read capacity: min, max, target"),
            Prop::new("write", dimension()).doc("write capacity: min, max, target"),
        ]),
    )
    .known_as(&["autoscaling_read", "autoscaling_write"])
    .doc(doc)
}

/// `min`, `max` and `target` of a dimension.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scaling {
    pub min: i64,
    pub max: i64,
    pub target: f64,
}

/// The autoscaled dimensions of one table or index: `read`/`write` → scaling.
pub type Scalings = BTreeMap<&'static str, Scaling>;

fn scaling_of(value: &Value) -> Option<Scaling> {
    Some(Scaling {
        min: value.get("min")?.as_i64()?,
        max: value.get("max")?.as_i64()?,
        target: value
            .get("target")
            .and_then(Value::as_f64)
            .unwrap_or(DEFAULT_TARGET),
    })
}

/// The dimensions `map` (a table's or an index's properties) autoscales.
pub fn scalings(map: &Map<String, Value>) -> Scalings {
    let Some(block) = map.get(KEY) else {
        return Scalings::new();
    };
    DIMENSIONS
        .iter()
        .filter_map(|d| Some((*d, scaling_of(block.get(*d)?)?)))
        .collect()
}

/// The dimensions `map` names under `autoscaling`, known or not yet (a `min` from a
/// variable is still an autoscaled dimension).
pub fn scaled_dimensions(map: &Map<String, Value>) -> Vec<&'static str> {
    let Some(Value::Object(block)) = map.get(KEY) else {
        return Vec::new();
    };
    DIMENSIONS
        .iter()
        .copied()
        .filter(|d| block.get(*d).is_some_and(|v| !v.is_null()))
        .collect()
}

/// The capacity property an autoscaled dimension replaces.
pub fn capacity_key(dimension: &str) -> &'static str {
    if dimension == "read" {
        "read_capacity"
    } else {
        "write_capacity"
    }
}

/// Canonical form: defaults filled, numbers as numbers, and no capacity property for an
/// autoscaled dimension (AWS owns it).
pub fn canonicalize(map: &mut Map<String, Value>) {
    let Some(Value::Object(block)) = map.get_mut(KEY) else {
        return;
    };
    block.retain(|_, v| !v.is_null());
    for dimension in DIMENSIONS {
        if let Some(Value::Object(d)) = block.get_mut(*dimension) {
            // 70 and 70.0 are one target; a target from a reference stays as it is.
            let target = match d.get("target") {
                None | Some(Value::Null) => json!(DEFAULT_TARGET),
                Some(value) => value.as_f64().map(|t| json!(t)).unwrap_or(value.clone()),
            };
            d.insert("target".into(), target);
            reorder(d, DIMENSION_ORDER);
        }
    }
    reorder(block, DIMENSIONS);
    if block.is_empty() {
        map.remove(KEY);
        return;
    }
    for dimension in scaled_dimensions(map) {
        map.remove(capacity_key(dimension));
    }
}

/// What AWS refuses, and a capacity written next to its autoscaling.
pub fn check(at: &[PathSeg], map: &Map<String, Value>, provisioned: bool) -> Vec<PropIssue> {
    let Some(block) = map.get(KEY).filter(|v| !contains_unknown(v)) else {
        return Vec::new();
    };
    let path = |rest: &[&str]| {
        let mut path = at.to_vec();
        path.push(PathSeg::Key(KEY.into()));
        path.extend(rest.iter().map(|k| PathSeg::Key(k.to_string())));
        path
    };
    let mut issues = Vec::new();
    if !provisioned {
        issues.push(PropIssue {
            path: path(&[]),
            message:
                "autoscaling needs billing_mode: provisioned (on-demand tables scale by themselves)"
                    .into(),
        });
    }
    for dimension in DIMENSIONS {
        let Some(d) = block.get(*dimension) else {
            continue;
        };
        if let Some(s) = scaling_of(d) {
            if s.min > s.max {
                issues.push(PropIssue {
                    path: path(&[dimension, "min"]),
                    message: format!("min ({}) is above max ({})", s.min, s.max),
                });
            }
            if !TARGET_RANGE.contains(&s.target) {
                issues.push(PropIssue {
                    path: path(&[dimension, "target"]),
                    message: "the target utilization is a percentage from 20 to 90".into(),
                });
            }
        }
        let capacity = capacity_key(dimension);
        if map.contains_key(capacity) {
            let mut at = at.to_vec();
            at.push(PathSeg::Key(capacity.into()));
            issues.push(PropIssue {
                path: at,
                message: format!(
                    "{capacity} is set by autoscaling: leave it out (the table starts at {dimension}.min)"
                ),
            });
        }
    }
    issues
}

// ---------------------------------------------------------------------------------------------
// AWS

/// Application Auto Scaling's id of the table (`table/NAME`) or of an index
/// (`table/NAME/index/INDEX`).
pub fn resource_id(table: &str, index: Option<&str>) -> String {
    match index {
        Some(index) => format!("table/{table}/index/{index}"),
        None => format!("table/{table}"),
    }
}

fn dimension_of(index: bool, dimension: &str) -> ScalableDimension {
    match (index, dimension) {
        (false, "read") => ScalableDimension::DynamoDbTableReadCapacityUnits,
        (false, _) => ScalableDimension::DynamoDbTableWriteCapacityUnits,
        (true, "read") => ScalableDimension::DynamoDbIndexReadCapacityUnits,
        (true, _) => ScalableDimension::DynamoDbIndexWriteCapacityUnits,
    }
}

fn dimension_name(dimension: &ScalableDimension) -> Option<&'static str> {
    match dimension {
        ScalableDimension::DynamoDbTableReadCapacityUnits
        | ScalableDimension::DynamoDbIndexReadCapacityUnits => Some("read"),
        ScalableDimension::DynamoDbTableWriteCapacityUnits
        | ScalableDimension::DynamoDbIndexWriteCapacityUnits => Some("write"),
        _ => None,
    }
}

fn metric(dimension: &str) -> MetricType {
    if dimension == "read" {
        MetricType::DynamoDbReadCapacityUtilization
    } else {
        MetricType::DynamoDbWriteCapacityUtilization
    }
}

/// The policy's name, one per resource and dimension.
fn policy_name(dimension: &str) -> String {
    format!("plinth-{dimension}-capacity-utilization")
}

/// What Application Auto Scaling has for these resources (`resource_id` → scalings).
pub async fn read(
    client: &Client,
    resource_ids: &[String],
) -> ResourceResult<BTreeMap<String, Scalings>> {
    let targets = client
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Dynamodb)
        .set_resource_ids(Some(resource_ids.to_vec()))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(crate::errors::classify)?;
    let mut found: BTreeMap<String, Scalings> = BTreeMap::new();
    for target in &targets {
        let Some(dimension) = dimension_name(target.scalable_dimension()) else {
            continue;
        };
        found
            .entry(target.resource_id().to_string())
            .or_default()
            .insert(
                dimension,
                Scaling {
                    min: i64::from(target.min_capacity()),
                    max: i64::from(target.max_capacity()),
                    // No policy found below: 0, which no stack asks for, so the plan shows it.
                    target: 0.0,
                },
            );
    }
    for (resource, scalings) in found.iter_mut() {
        let policies = client
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Dynamodb)
            .resource_id(resource)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(crate::errors::classify)?;
        for policy in &policies {
            let dimension = dimension_name(policy.scalable_dimension());
            // Only plinth's own policy says what the stack asked for.
            if dimension.map(policy_name).as_deref() != Some(policy.policy_name()) {
                continue;
            }
            let target = policy
                .target_tracking_scaling_policy_configuration()
                .map(|c| c.target_value());
            if let (Some(target), Some(scaling)) =
                (target, dimension.and_then(|d| scalings.get_mut(d)))
            {
                scaling.target = target;
            }
        }
    }
    Ok(found)
}

/// The `autoscaling` block of scalings read from AWS.
pub fn block(scalings: &Scalings) -> Option<Value> {
    if scalings.is_empty() {
        return None;
    }
    let mut block = Map::new();
    for (dimension, s) in scalings {
        block.insert(
            dimension.to_string(),
            json!({"min": s.min, "max": s.max, "target": s.target}),
        );
    }
    Some(Value::Object(block))
}

/// Registers and changes one resource's targets from `before` to `after` (run once the
/// table and its indexes have the capacity mode they need).
pub async fn apply(
    ctx: &OpContext,
    client: &Client,
    resource: &str,
    index: bool,
    (before, after): (&Scalings, &Scalings),
) -> ResourceResult<()> {
    for (dimension, scaling) in after {
        if before.get(dimension) == Some(scaling) {
            continue;
        }
        let scalable = dimension_of(index, dimension);
        register(ctx, client, resource, &scalable, scaling).await?;
        put_policy(ctx, client, resource, &scalable, dimension, scaling.target).await?;
    }
    Ok(())
}

/// Deregisters the dimensions `after` no longer scales (run before the capacity is fixed
/// or billing goes on demand, so nothing scales it meanwhile).
pub async fn release(
    ctx: &OpContext,
    client: &Client,
    resource: &str,
    index: bool,
    (before, after): (&Scalings, &Scalings),
) -> ResourceResult<()> {
    for dimension in before.keys().filter(|d| !after.contains_key(*d)) {
        deregister(ctx, client, resource, &dimension_of(index, dimension)).await?;
    }
    Ok(())
}

async fn register(
    ctx: &OpContext,
    client: &Client,
    resource: &str,
    scalable: &ScalableDimension,
    scaling: &Scaling,
) -> ResourceResult<()> {
    let request = client
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Dynamodb)
        .resource_id(resource)
        .scalable_dimension(scalable.clone())
        .min_capacity(capacity(scaling.min)?)
        .max_capacity(capacity(scaling.max)?);
    debug!(
        resource,
        dimension = scalable.as_str(),
        "RegisterScalableTarget"
    );
    let request = &request;
    let what = format!("registering {resource} with Application Auto Scaling");
    wait::retry_while_busy(ctx, &what, ROLE_LIMIT, || async move {
        match request.clone().send().await.classified() {
            Ok(_) => Ok(()),
            Err(err) if role_not_ready(&err) => Err(ResourceError {
                kind: ErrorKind::Retryable,
                ..err
            }),
            Err(err) if err.kind == ErrorKind::Auth => Err(with_role_hint(err)),
            Err(err) => Err(err),
        }
    })
    .await
}

async fn put_policy(
    ctx: &OpContext,
    client: &Client,
    resource: &str,
    scalable: &ScalableDimension,
    dimension: &str,
    target: f64,
) -> ResourceResult<()> {
    let config = TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(target)
        .predefined_metric_specification(
            PredefinedMetricSpecification::builder()
                .predefined_metric_type(metric(dimension))
                .build()
                .map_err(|e| ResourceError::other(e.to_string()))?,
        )
        .build()
        .map_err(|e| ResourceError::other(e.to_string()))?;
    debug!(resource, dimension, target, "PutScalingPolicy");
    let request = client
        .put_scaling_policy()
        .service_namespace(ServiceNamespace::Dynamodb)
        .resource_id(resource)
        .scalable_dimension(scalable.clone())
        .policy_name(policy_name(dimension))
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(config);
    let request = &request;
    let what = format!("putting the scaling policy of {resource}");
    // ConcurrentUpdateException while the target's own change settles: asked again.
    wait::retry_while_busy(ctx, &what, ROLE_LIMIT, || async move {
        request.clone().send().await.classified().map(|_| ())
    })
    .await
}

/// Deregisters a target with its policies (and their alarms); one already gone is fine.
async fn deregister(
    ctx: &OpContext,
    client: &Client,
    resource: &str,
    scalable: &ScalableDimension,
) -> ResourceResult<()> {
    debug!(
        resource,
        dimension = scalable.as_str(),
        "DeregisterScalableTarget"
    );
    let request = client
        .deregister_scalable_target()
        .service_namespace(ServiceNamespace::Dynamodb)
        .resource_id(resource)
        .scalable_dimension(scalable.clone());
    let request = &request;
    let what = format!("deregistering {resource} from Application Auto Scaling");
    wait::retry_while_busy(ctx, &what, ROLE_LIMIT, || async move {
        match request.clone().send().await.classified() {
            Ok(_) => Ok(()),
            Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err),
        }
    })
    .await
}

/// Deregisters every target registered for these resources, whoever registered it: what
/// a table being deleted leaves behind otherwise (DeleteTable keeps targets, policies and
/// their billed alarms). One DescribeScalableTargets, then one call per target found.
pub async fn deregister_registered(
    ctx: &OpContext,
    client: &Client,
    resource_ids: &[String],
) -> ResourceResult<()> {
    let targets = client
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Dynamodb)
        .set_resource_ids(Some(resource_ids.to_vec()))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(crate::errors::classify)?;
    for target in &targets {
        deregister(
            ctx,
            client,
            target.resource_id(),
            target.scalable_dimension(),
        )
        .await?;
    }
    Ok(())
}

fn capacity(units: i64) -> ResourceResult<i32> {
    i32::try_from(units)
        .map_err(|_| ResourceError::invalid(format!("capacity {units} is out of range")))
}

/// AWS's answer while the service-linked role it just created is not usable yet.
fn role_not_ready(err: &ResourceError) -> bool {
    err.code.as_deref() == Some("ValidationException")
        && err.message.to_ascii_lowercase().contains("assume")
}

fn with_role_hint(mut err: ResourceError) -> ResourceError {
    err.message.push_str(
        "; registering a table with Application Auto Scaling needs \
         application-autoscaling:* on it and, the first time in an account, \
         iam:CreateServiceLinkedRole (for AWSServiceRoleForApplicationAutoScaling_DynamoDBTable)",
    );
    err
}
