//! `cloudfront.function`: a CloudFront Function (JavaScript run at the edge on viewer
//! requests and responses: URL rewrites, redirects, headers), the cheap alternative to
//! Lambda@Edge, associated from a distribution behavior's `functions`.
//!
//! A function has a DEVELOPMENT and a LIVE stage; distributions run LIVE. Every create and
//! change goes to DEVELOPMENT and is published to LIVE at once, so what the stack says is
//! what viewers get; reads compare the LIVE stage. Functions take no tags: the comment
//! carries this resource's marker, by which an interrupted create is found. Every change
//! and delete sends the DEVELOPMENT stage's ETag as If-Match; a function a distribution
//! still associates cannot be deleted (`FunctionInUse`): the delete is retried while the
//! distribution lets go of it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::primitives::Blob;
use aws_sdk_cloudfront::types::{FunctionConfig, FunctionRuntime, FunctionStage, FunctionSummary};
use aws_sdk_cloudfront::Client;
use plinth_core::cost::{count_text, price_text, CostContext, CostLine};
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{known_str, reorder, str_of, Props};
use serde_json::json;
use tracing::debug;

use crate::errors::{adopt_if_ours, vanished, SendExt};
use crate::resources::cloudfront_common::{delete_when_unused, with_fresh_etag, CLOUDFRONT_REGION};
use crate::resources::tags;
use crate::Aws;

const RUNTIMES: &[&str] = &["cloudfront-js-2.0", "cloudfront-js-1.0"];
const DEFAULT_RUNTIME: &str = "cloudfront-js-2.0";
/// CloudFront's limit on a function's code.
const MAX_CODE: usize = 10 * 1024;
/// AWS's limit on the comment, the marker included.
const MAX_COMMENT: usize = 128;
/// A distribution being updated holds the function until its deployment finishes.
const DELETE_LIMIT: Duration = Duration::from_secs(20 * 60);
const ORDER: &[&str] = &["name", "comment", "runtime", "source", "code"];

pub struct CloudFrontFunctionType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl CloudFrontFunctionType {
    pub fn new(aws: Arc<Aws>) -> CloudFrontFunctionType {
        CloudFrontFunctionType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "cloudfront.function",
        description: "A CloudFront Function (JavaScript at the edge), published to LIVE",
        kind: TypeKind::Managed,
        taggable: false,
        properties: with_name_prefixes(vec![
            Prop::new("name", Shape::String)
                .prefixable(64)
                .required()
                .replaces()
                .unique()
                .doc("unique in the account: 1-64 letters, digits, - and _"),
            Prop::new("comment", Shape::String).doc("a description; default \"\""),
            Prop::new("runtime", Shape::Enum(RUNTIMES)).doc("default cloudfront-js-2.0"),
            Prop::new("source", Shape::String)
                .doc("the .js file holding the code, relative to the stack file"),
            Prop::new("code", Shape::String)
                .shown_as_hash()
                .doc("the code itself, instead of `source` (at most 10 KB)"),
        ]),
        attributes: vec![
            Attr::new("name", Shape::String, "the function's name"),
            Attr::new(
                "arn",
                Shape::String,
                "arn:aws:cloudfront::ACCOUNT:function/NAME, for a behavior's `functions`",
            ),
            Attr::new("etag", Shape::String, "the LIVE stage's ETag"),
        ],
    }
}

#[async_trait]
impl ResourceType for CloudFrontFunctionType {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn pinned_region(&self, _props: &Props) -> Option<&'static str> {
        Some(CLOUDFRONT_REGION)
    }

    fn cost(&self, _props: &Props, ctx: &CostContext) -> Vec<CostLine> {
        let per_million = match ctx.global_price(&["cloudfront", "functions", "per_million"]) {
            Ok(price) => price,
            Err(e) => return vec![CostLine::unknown("function invocations", e.to_string())],
        };
        // Each viewer request (or response) the function is associated with runs it once.
        let invocations = ctx.usage("cloudfront.requests");
        vec![CostLine::usage_per_month(
            format!(
                "{} invocations × ${}/million",
                count_text(invocations),
                price_text(per_million)
            ),
            invocations / 1_000_000.0 * per_million,
        )
        .with_free_tier(crate::cost::free_tier(ctx, "cloudfront_functions"))]
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(name) = known_str(props, "name") {
            let fits = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !fits {
                issues.push(PropIssue::at(
                    &["name"],
                    format!("{name:?}: a function name has 1-64 letters, digits, - and _"),
                ));
            }
        }
        if props.get("source").is_none() && props.get("code").is_none() {
            issues.push(PropIssue::at(
                &["source"],
                "a function needs its code: `source: FILE.js` or `code: …`",
            ));
        }
        if let Some(code) = known_str(props, "code") {
            if code.len() > MAX_CODE {
                issues.push(PropIssue::at(
                    &["code"],
                    format!(
                        "CloudFront Functions take at most 10 KB of code, not {} bytes",
                        code.len()
                    ),
                ));
            }
        }
        let marker_room = MAX_COMMENT - tags::MARKER_LENGTH;
        if str_of(props, "comment").is_some_and(|c| c.len() > marker_room) {
            issues.push(PropIssue::at(
                &["comment"],
                format!("a function's comment has at most {marker_room} characters here (plinth adds its marker)"),
            ));
        }
        issues
    }

    /// A `source` file is read into `code`, so the plan compares what CloudFront runs.
    /// (Normalizing twice gives the same: a `code` that is the file's content is no conflict.)
    fn normalize(&self, props: &mut Props, ctx: &NormalizeContext) -> ResourceResult<()> {
        props.retain(|_, v| !v.is_null());
        if let Some(source) = known_str(props, "source").map(str::to_string) {
            let path = ctx.base_dir.join(&source);
            let code = std::fs::read_to_string(&path).map_err(|e| {
                ResourceError::invalid(format!(
                    "reading the function's source {}: {e}",
                    path.display()
                ))
            })?;
            if str_of(props, "code").is_some_and(|given| given != code) {
                return Err(ResourceError::invalid(
                    "give a function either `source` or `code`, not both",
                ));
            }
            props.insert("code".into(), json!(code));
        }
        props.entry("comment").or_insert(json!(""));
        props.entry("runtime").or_insert(json!(DEFAULT_RUNTIME));
        reorder(props, ORDER);
        Ok(())
    }

    fn disk_inputs(&self, props: &Props) -> Vec<String> {
        known_str(props, "source")
            .map(str::to_string)
            .into_iter()
            .collect()
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["name"])
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.cloudfront(&ctx.region);
        read_live(&client, id, prior).await
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "cloudfront", "function/")
    }

    /// The function of this name, when its comment carries this resource's marker.
    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let (Some(name), Some(marker)) = (known_str(props, "name"), tags::owner_marker(ctx)) else {
            return Ok(None);
        };
        let client = self.aws.cloudfront(&ctx.region);
        let Some((summary, _)) = describe(&client, name, FunctionStage::Development).await? else {
            return Ok(None);
        };
        let comment = summary
            .function_config()
            .map(|c| c.comment())
            .unwrap_or_default();
        if tags::unmarked(comment).1.as_deref() != Some(marker.as_str()) {
            return Ok(None);
        }
        read_live(&client, name, props).await
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.cloudfront(&ctx.region);
        let name = str_of(props, "name")
            .ok_or_else(|| ResourceError::invalid("cloudfront.function needs a name"))?;
        let config = config_of(props, tags::owner_marker(ctx).as_deref())?;
        debug!(function = name, "CreateFunction");
        let created = client
            .create_function()
            .name(name)
            .function_config(config)
            .function_code(Blob::new(code_of(props)))
            .send()
            .await
            .classified();
        match created {
            Ok(out) => {
                let etag = out
                    .e_tag()
                    .ok_or_else(|| ResourceError::other("CreateFunction returned no ETag"))?;
                publish(&client, name, etag).await?;
            }
            Err(err) => {
                let what = format!("a CloudFront function named {name}");
                let found = adopt_if_ours(err, &["FunctionAlreadyExists"], &what, || {
                    self.find(ctx, props)
                })
                .await?;
                return self.update(ctx, name, &found.props, props).await;
            }
        }
        read_live(&client, name, props)
            .await?
            .ok_or_else(|| vanished(&format!("CloudFront function {name}")))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        _before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = &self.aws.cloudfront(&ctx.region);
        let config = &config_of(after, tags::owner_marker(ctx).as_deref())?;
        let code = &code_of(after);
        let what = format!("updating CloudFront function {id}");
        with_fresh_etag(&what, || async move {
            let (_, etag) = describe(client, id, FunctionStage::Development)
                .await?
                .ok_or_else(|| vanished(&format!("CloudFront function {id}")))?;
            debug!(function = id, "UpdateFunction");
            let out = client
                .update_function()
                .name(id)
                .if_match(etag)
                .function_config(config.clone())
                .function_code(Blob::new(code.clone()))
                .send()
                .await
                .classified()?;
            let etag = out
                .e_tag()
                .ok_or_else(|| ResourceError::other("UpdateFunction returned no ETag"))?;
            publish(client, id, etag).await
        })
        .await?;
        read_live(client, id, after)
            .await?
            .ok_or_else(|| vanished(&format!("CloudFront function {id}")))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = &self.aws.cloudfront(&ctx.region);
        let what = format!("deleting CloudFront function {id}");
        delete_when_unused(
            ctx,
            &what,
            DELETE_LIMIT,
            "; a distribution's behavior still associates the function: change the \
                     distribution first",
            || delete_once(client, id),
        )
        .await
    }
}

async fn publish(client: &Client, name: &str, etag: &str) -> ResourceResult<()> {
    debug!(function = name, "PublishFunction");
    client
        .publish_function()
        .name(name)
        .if_match(etag)
        .send()
        .await
        .classified()
        .map(|_| ())
}

async fn delete_once(client: &Client, name: &str) -> ResourceResult<()> {
    let Some((_, etag)) = describe(client, name, FunctionStage::Development).await? else {
        return Ok(());
    };
    debug!(function = name, "DeleteFunction");
    match client
        .delete_function()
        .name(name)
        .if_match(etag)
        .send()
        .await
        .classified()
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

/// The stage's summary and ETag, `None` when the function (or that stage) does not exist.
async fn describe(
    client: &Client,
    name: &str,
    stage: FunctionStage,
) -> ResourceResult<Option<(FunctionSummary, String)>> {
    let out = match client
        .describe_function()
        .name(name)
        .stage(stage)
        .send()
        .await
        .classified()
    {
        Ok(out) => out,
        Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let summary = out
        .function_summary()
        .cloned()
        .ok_or_else(|| ResourceError::other("DescribeFunction returned no summary"))?;
    let etag = out.e_tag().unwrap_or_default().to_string();
    Ok(Some((summary, etag)))
}

/// What viewers run: the LIVE stage. A function never published reads with no code, so
/// the plan publishes it.
async fn read_live(client: &Client, name: &str, prior: &Props) -> ResourceResult<Option<Observed>> {
    let (summary, etag, code) = match describe(client, name, FunctionStage::Live).await? {
        Some((summary, etag)) => {
            let out = match client
                .get_function()
                .name(name)
                .stage(FunctionStage::Live)
                .send()
                .await
                .classified()
            {
                Ok(out) => out,
                Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
                Err(err) => return Err(err),
            };
            let code = out
                .function_code()
                .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
                .unwrap_or_default();
            (summary, etag, code)
        }
        None => match describe(client, name, FunctionStage::Development).await? {
            Some((summary, _)) => (summary, String::new(), String::new()),
            None => return Ok(None),
        },
    };
    let config = summary.function_config();
    let comment = tags::unmarked(config.map(|c| c.comment()).unwrap_or_default()).0;
    let mut props = Props::new();
    props.insert("name".into(), json!(name));
    props.insert("comment".into(), json!(comment));
    props.insert(
        "runtime".into(),
        json!(config
            .map(|c| c.runtime().as_str())
            .unwrap_or(DEFAULT_RUNTIME)),
    );
    // Where the code came from lives only in the stack.
    if let Some(source) = prior.get("source") {
        props.insert("source".into(), source.clone());
    }
    props.insert("code".into(), json!(code));
    reorder(&mut props, ORDER);
    let mut attrs = Props::new();
    attrs.insert("name".into(), json!(name));
    if let Some(meta) = summary.function_metadata() {
        attrs.insert("arn".into(), json!(meta.function_arn()));
    }
    attrs.insert("etag".into(), json!(etag));
    Ok(Some(Observed {
        id: name.to_string(),
        props,
        attrs,
    }))
}

fn code_of(props: &Props) -> Vec<u8> {
    str_of(props, "code")
        .unwrap_or_default()
        .as_bytes()
        .to_vec()
}

fn config_of(props: &Props, marker: Option<&str>) -> ResourceResult<FunctionConfig> {
    FunctionConfig::builder()
        .comment(tags::marked(
            str_of(props, "comment").unwrap_or_default(),
            marker,
        ))
        .runtime(FunctionRuntime::from(
            str_of(props, "runtime").unwrap_or(DEFAULT_RUNTIME),
        ))
        .build()
        .map_err(|e| ResourceError::other(format!("building the function config: {e}")))
}
