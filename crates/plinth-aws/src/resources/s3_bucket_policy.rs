//! `s3.bucket_policy`: the one policy document of a bucket.
//!
//! `allow_cloudfront: <distribution ARN>` is shorthand for the standard Origin Access Control
//! grant; `normalize` expands it into the document itself, so plans diff documents whichever
//! way a stack writes them. Documents compare as JSON values (key order does not matter) and
//! are otherwise sent and read back as they are.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, known_str, str_of, unknown, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::errors::SendExt;
use crate::resources::iam_role::canonical_document;
use crate::resources::s3_bucket::{bucket_arn, bucket_name_problem, is_code, NO_SUCH_BUCKET};
use crate::Aws;

const CLOUDFRONT_ARN_PREFIX: &str = "arn:aws:cloudfront::";
const EXACTLY_ONE: &str =
    "give exactly one of `policy` (a document) or `allow_cloudfront` (distribution ARNs)";

/// The `s3.bucket_policy` resource type.
pub struct BucketPolicy {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl BucketPolicy {
    pub fn new(aws: Arc<Aws>) -> BucketPolicy {
        BucketPolicy {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "s3.bucket_policy",
        description:
            "The policy document of an S3 bucket, or the standard grant to CloudFront distributions",
        kind: TypeKind::Managed,
        taggable: false,
        properties: vec![
            Prop::new("bucket", Shape::String)
                .required()
                .replaces()
                .doc("the bucket, usually ${my_bucket.name}"),
            Prop::new("policy", Shape::Any).doc("the policy document, as a map or a JSON string"),
            Prop::new(
                "allow_cloudfront",
                Shape::OneOf(vec![Shape::String, Shape::list(Shape::String)]),
            )
            .doc("distribution ARN(s) allowed to read every object through Origin Access Control"),
        ],
        attributes: vec![],
    }
}

#[async_trait]
impl ResourceType for BucketPolicy {
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
        let mut issues = Vec::new();
        if let Some(problem) = known_str(props, "bucket").and_then(bucket_name_problem) {
            issues.push(PropIssue::at(&["bucket"], problem));
        }
        match (props.get("policy"), props.get("allow_cloudfront")) {
            (Some(_), Some(_)) => issues.push(PropIssue::at(&["allow_cloudfront"], EXACTLY_ONE)),
            (None, None) => issues.push(PropIssue::at(&[], EXACTLY_ONE)),
            (Some(policy), None) => {
                if let Err(problem) = document(policy) {
                    issues.push(PropIssue::at(&["policy"], problem));
                }
            }
            (None, Some(arns)) => {
                for arn in arns_of(arns).iter().filter(|a| !contains_unknown(a)) {
                    let ok = arn
                        .as_str()
                        .is_some_and(|a| a.starts_with(CLOUDFRONT_ARN_PREFIX));
                    if !ok {
                        issues.push(PropIssue::at(
                            &["allow_cloudfront"],
                            format!(
                                "expected a distribution ARN \
                                 (arn:aws:cloudfront::ACCOUNT:distribution/ID), usually \
                                 ${{cdn.arn}}, not {arn}"
                            ),
                        ));
                    }
                }
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        props.retain(|_, v| !v.is_null());
        let policy = match (props.remove("policy"), props.remove("allow_cloudfront")) {
            (Some(policy), None) => document(&policy).map_err(ResourceError::invalid)?,
            (None, Some(arns)) => cloudfront_grant(props.get("bucket"), &arns),
            _ => return Err(ResourceError::invalid(EXACTLY_ONE)),
        };
        props.insert("policy".into(), policy);
        Ok(())
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.s3(&ctx.region);
        let out = match client
            .get_bucket_policy()
            .bucket(id)
            .send()
            .await
            .classified()
        {
            Ok(out) => out,
            Err(err) if is_code(&err, "NoSuchBucketPolicy") || is_code(&err, NO_SUCH_BUCKET) => {
                return Ok(None)
            }
            Err(err) => return Err(err),
        };
        let text = out.policy().unwrap_or_default();
        let policy: Value = serde_json::from_str(text).map_err(|e| {
            ResourceError::other(format!("the policy of bucket {id} is not JSON: {e}"))
        })?;
        Ok(Some(observed(id, as_applied(policy, prior))))
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let bucket = str_of(props, "bucket")
            .ok_or_else(|| ResourceError::invalid("s3.bucket_policy needs a bucket"))?;
        self.put(ctx, bucket, props).await
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        _before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        self.put(ctx, id, after).await
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = self.aws.s3(&ctx.region);
        match client
            .delete_bucket_policy()
            .bucket(id)
            .send()
            .await
            .classified()
        {
            Ok(_) => Ok(()),
            Err(err) if is_code(&err, NO_SUCH_BUCKET) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

impl BucketPolicy {
    async fn put(&self, ctx: &OpContext, bucket: &str, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.s3(&ctx.region);
        let policy = props
            .get("policy")
            .cloned()
            .ok_or_else(|| ResourceError::invalid(EXACTLY_ONE))?;
        put_policy(&client, bucket, &policy).await?;
        Ok(observed(bucket, policy))
    }
}

async fn put_policy(client: &Client, bucket: &str, policy: &Value) -> ResourceResult<()> {
    debug!(bucket, "PutBucketPolicy");
    let result = client
        .put_bucket_policy()
        .bucket(bucket)
        .policy(policy.to_string())
        .send()
        .await
        .classified();
    match result {
        Ok(_) => Ok(()),
        Err(err) if is_code(&err, "MalformedPolicy") => Err(ResourceError {
            kind: ErrorKind::Invalid,
            ..err
        }),
        // The public access block refuses policies that grant public access.
        Err(mut err) if err.kind == ErrorKind::Auth => {
            err.message.push_str(
                " (if the policy grants public access: the bucket's public_access_block \
                 has block_public_policy: true)",
            );
            Err(err)
        }
        Err(err) => Err(err),
    }
}

/// A policy as a document: a map as it is, a JSON string parsed. Unknown stays unknown.
fn document(policy: &Value) -> Result<Value, String> {
    match policy {
        Value::Object(_) => Ok(policy.clone()),
        // JSON text with a reference inside can be read only once the reference is known.
        Value::String(_) if contains_unknown(policy) => Ok(unknown()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed @ Value::Object(_)) => Ok(parsed),
            Ok(_) => Err("a policy is a JSON object ({\"Version\": …, \"Statement\": […]})".into()),
            Err(e) => Err(format!("the policy is not valid JSON: {e}")),
        },
        other => Err(format!(
            "a policy is a map or a JSON string, not {}",
            json_kind(other)
        )),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn arns_of(arns: &Value) -> Vec<Value> {
    match arns {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

/// The standard Origin Access Control grant: these distributions may read every object.
fn cloudfront_grant(bucket: Option<&Value>, arns: &Value) -> Value {
    let Some(bucket) = bucket
        .filter(|b| !contains_unknown(b))
        .and_then(Value::as_str)
    else {
        return unknown();
    };
    if contains_unknown(arns) {
        return unknown();
    }
    let mut arns = arns_of(arns);
    arns.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    arns.dedup();
    let source_arn = match arns.as_slice() {
        [one] => one.clone(),
        _ => Value::Array(arns),
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowCloudFrontServicePrincipalReadOnly",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": format!("{}/*", bucket_arn(bucket)),
            "Condition": {"StringEquals": {"AWS:SourceArn": source_arn}}
        }]
    })
}

/// S3 stores a bare account principal as its root ARN and may shorten a one-element list
/// to a string: a policy that means what was applied reads as it was applied, or every plan
/// would show a change.
fn as_applied(read: Value, prior: &Props) -> Value {
    match prior.get("policy") {
        Some(applied) if canonical_document(applied) == canonical_document(&read) => {
            applied.clone()
        }
        _ => read,
    }
}

fn observed(bucket: &str, policy: Value) -> Observed {
    let mut props = Props::new();
    props.insert("bucket".into(), json!(bucket));
    props.insert("policy".into(), policy);
    Observed {
        id: bucket.to_string(),
        props,
        attrs: Props::new(),
    }
}
