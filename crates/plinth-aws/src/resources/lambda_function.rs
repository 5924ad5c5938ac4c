//! `lambda.function`: a Lambda function deployed from a file or folder, optionally as a
//! Lambda@Edge function for CloudFront.
//!
//! The code is zipped reproducibly (sorted entries, fixed times and modes), so the same
//! source always gives the same package and `code_sha256`, the SHA-256 Lambda reports as
//! `CodeSha256`: a change to the code is a change to that property, and nothing else is.
//! `source` is relative to the stack file's folder, which `normalize` and the operations
//! are both given; create and update zip the same files again.
//!
//! Edge functions live in us-east-1, need a numbered version and cannot be deleted while
//! CloudFront still holds replicas of them (for hours after a distribution lets go): that
//! refusal records the function as pending deletion, for a later run to finish.

use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::operation::create_function::CreateFunctionOutput;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, FunctionConfiguration, LastUpdateStatus, Runtime,
    State,
};
use aws_sdk_lambda::Client;
use base64::Engine as _;
use plinth_core::resource::{
    ErrorKind, Linked, NormalizeContext, Observed, OpContext, PropIssue, ResourceError,
    ResourceResult, ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{bool_of, is_unknown, known_str, reorder, str_of, unknown, Props};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tracing::debug;

use crate::errors::{self, SendExt};
use crate::resources::{iam_role, tags};
use crate::wait::{self, Poll};
use crate::Aws;

/// Lambda@Edge functions are created in us-east-1 and replicated from there.
pub const EDGE_REGION: &str = "us-east-1";
const ARCHITECTURES: &[&str] = Architecture::values();
const DEFAULT_ARCHITECTURE: &str = "x86_64";
/// Runtimes the SDK still lists that AWS no longer lets a function be created or updated
/// with (its deprecation schedule; the SDK marks none of them).
pub const RETIRED_RUNTIMES: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs4.3-edge",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "go1.x",
    "java8",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "ruby2.5",
    "ruby2.7",
    "provided",
];
/// The version of a function that is not published.
const LATEST: &str = "$LATEST";
const DEFAULT_MEMORY: i64 = 128;
const DEFAULT_TIMEOUT: i64 = 3;
const MAX_NAME: usize = 64;
/// Lambda takes packages up to this size in the request itself (bigger ones go via S3).
const MAX_ZIP: usize = 50 * 1024 * 1024;
const EDGE_MAX_TIMEOUT: i64 = 30;
/// The services an edge function's role must trust.
const EDGE_PRINCIPALS: &[&str] = &["edgelambda.amazonaws.com", "lambda.amazonaws.com"];
/// A new role takes a few seconds before Lambda may assume it.
const ROLE_LIMIT: Duration = Duration::from_secs(2 * 60);
const ACTIVE_LIMIT: Duration = Duration::from_secs(10 * 60);
const UPDATE_LIMIT: Duration = Duration::from_secs(10 * 60);
/// How long calls are retried while an earlier update is still in progress.
const BUSY_LIMIT: Duration = Duration::from_secs(2 * 60);
const ROLE_NOT_ASSUMABLE: &str = "cannot be assumed by Lambda";
const REPLICATED: &str = "replicated function";
const REPLICAS_PENDING: &str = "Lambda@Edge replicas are still being removed by CloudFront (this can take a few hours after the distribution stops using the function); the next plinth destroy or apply deletes it";
/// Properties UpdateFunctionConfiguration changes.
const CONFIG_KEYS: &[&str] = &[
    "runtime",
    "handler",
    "role",
    "memory_size",
    "timeout",
    "description",
    "environment",
];
/// Property order in canonical form (the schema's).
const ORDER: &[&str] = &[
    "name",
    "source",
    "s3",
    "runtime",
    "handler",
    "role",
    "memory_size",
    "timeout",
    "description",
    "environment",
    "architectures",
    "publish",
    "edge",
    "code_sha256",
    "tags",
];

/// The `lambda.function` resource type.
pub struct LambdaFunction {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl LambdaFunction {
    pub fn new(aws: Arc<Aws>) -> LambdaFunction {
        LambdaFunction {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "lambda.function",
        description: "A Lambda function deployed from a file or folder (or Lambda@Edge)",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("name", Shape::String)
                .prefixable(64)
                .required()
                .replaces()
                .known_as(&["function_name"])
                .unique()
                .doc("the function name"),
            Prop::new("source", Shape::String)
                .known_as(&["filename"])
                .doc(
                    "a folder or file, relative to the stack file, zipped as the code; a \
                     .zip file (a package built elsewhere) is deployed as it is",
                ),
            Prop::new(
                "s3",
                Shape::Object(vec![
                    Prop::new("bucket", Shape::String).required(),
                    Prop::new("key", Shape::String).required(),
                    Prop::new("version", Shape::String)
                        .doc("the object's version; a new one deploys the code again"),
                ]),
            )
            .doc(
                "instead of source: a zip in S3 (in the function's region), e.g. a CI \
                 pipeline's artifact; the code is deployed again when bucket, key or version \
                 change",
            ),
            Prop::new("runtime", Shape::Enum(Runtime::values()))
                .required()
                .doc("the runtime, e.g. nodejs20.x or python3.12"),
            Prop::new("handler", Shape::String)
                .required()
                .doc("the entry point, e.g. index.handler"),
            Prop::new("role", Shape::String)
                .required()
                .doc("the execution role's ARN, e.g. ${role.arn}"),
            Prop::new("memory_size", Shape::int_range(128, 10240)).doc("memory in MB; default 128"),
            Prop::new("timeout", Shape::int_range(1, 900)).doc("seconds; default 3"),
            Prop::new("description", Shape::String).doc("default \"\""),
            Prop::new("environment", Shape::map(Shape::String))
                .doc("environment variables; default none (not allowed with edge)"),
            Prop::new("architectures", Shape::Enum(ARCHITECTURES))
                .doc("x86_64 or arm64; default x86_64"),
            Prop::new("publish", Shape::Bool)
                .doc("publish a numbered version on every change; default false, true with edge"),
            Prop::new("edge", Shape::Bool)
                .doc("a Lambda@Edge function: created in us-east-1, checked against its limits"),
            Prop::new("code_sha256", Shape::String)
                .computed()
                .doc("read-only: base64 SHA-256 of the zipped source, as Lambda reports it"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the function"),
        ]),
        attributes: vec![
            Attr::new("arn", Shape::String, "the function ARN, without a version"),
            Attr::new(
                "version",
                Shape::String,
                "the latest published version (\"1\", \"2\", …), or $LATEST without publish",
            ),
            Attr::new(
                "qualified_arn",
                Shape::String,
                "the ARN with the version (what CloudFront takes)",
            ),
            Attr::new("name", Shape::String, "the function name"),
        ],
    }
}

/// Cost rule: requests and duration (GB-seconds at the configured memory), from the usage
/// assumptions; Lambda@Edge (`edge: true`) at its own, global prices and without the free
/// tier ordinary functions have.
fn function_cost(
    props: &plinth_core::value::Props,
    ctx: &plinth_core::cost::CostContext,
) -> Vec<plinth_core::cost::CostLine> {
    use plinth_core::cost::{count_text, price_text, CostLine};
    let edge = plinth_core::value::bool_of(props, "edge") == Some(true);
    let kind = if edge { "Lambda@Edge" } else { "Lambda" };
    let Some(memory_mb) = crate::cost::known_count(props, "memory_size", DEFAULT_MEMORY) else {
        return vec![crate::cost::known_after_apply(kind, "memory_size")];
    };
    let arm64 = plinth_core::value::str_of(props, "architectures") == Some("arm64");
    let prices = match crate::cost::lambda_prices(ctx, edge, arm64) {
        Ok(prices) => prices,
        Err(e) => return vec![CostLine::unknown(kind, e.to_string())],
    };
    // Lambda@Edge has no free tier.
    let free_tier = if edge {
        None
    } else {
        crate::cost::free_tier(ctx, "lambda")
    };
    let invocations = ctx.usage("lambda.invocations");
    let duration_ms = ctx.usage("lambda.duration_ms");
    let gb_seconds = invocations * duration_ms / 1000.0 * memory_mb as f64 / 1024.0;
    vec![
        CostLine::usage_per_month(
            format!(
                "{kind}: {} requests × ${}/million",
                count_text(invocations),
                price_text(prices.requests_per_million)
            ),
            invocations / 1_000_000.0 * prices.requests_per_million,
        )
        .with_free_tier(free_tier.clone()),
        CostLine::usage_per_month(
            format!(
                "{kind}: {} GB-s ({} × {} ms × {memory_mb} MB) × ${}/GB-s",
                count_text(gb_seconds),
                count_text(invocations),
                count_text(duration_ms),
                price_text(prices.gb_second)
            ),
            gb_seconds * prices.gb_second,
        )
        .with_free_tier(free_tier),
    ]
}

#[async_trait]
impl ResourceType for LambdaFunction {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(
        &self,
        props: &plinth_core::value::Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        function_cost(props, ctx)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(problem) = known_str(props, "name").and_then(name_problem) {
            issues.push(PropIssue::at(&["name"], problem));
        }
        if known_str(props, "role").is_some_and(|r| !r.starts_with("arn:")) {
            issues.push(PropIssue::at(
                &["role"],
                "expected the role's ARN (arn:aws:iam::…:role/…), e.g. ${role.arn}",
            ));
        }
        if props.contains_key("source") == props.contains_key("s3") {
            issues.push(PropIssue::at(
                &["source"],
                "give source (a folder or file next to the stack) or s3 (a zip in a bucket), \
                 one of the two",
            ));
        }
        if known_str(props, "handler").is_some_and(|h| h.trim().is_empty()) {
            issues.push(PropIssue::at(&["handler"], "the handler is empty"));
        }
        if bool_of(props, "edge") == Some(true) {
            issues.extend(edge_issues(props));
        }
        issues
    }

    fn lint(&self, props: &Props, linked: &[Linked]) -> Vec<PropIssue> {
        let retired = known_str(props, "runtime")
            .filter(|r| RETIRED_RUNTIMES.contains(r))
            .map(|r| {
                PropIssue::at(
                    &["runtime"],
                    format!(
                        "{r} is deprecated: AWS no longer creates or updates functions on it; \
                         choose a current runtime"
                    ),
                )
            });
        if bool_of(props, "edge") != Some(true) {
            return retired.into_iter().collect();
        }
        let mut issues: Vec<PropIssue> = retired.into_iter().collect();
        issues.extend(
            linked
                .iter()
                .filter(|l| l.prop == "role" && l.type_name == "iam.role")
                .filter_map(|l| {
                    let trusted = iam_role::trusted_services(&l.props)?;
                    let missing: Vec<&str> = EDGE_PRINCIPALS
                        .iter()
                        .copied()
                        .filter(|s| !trusted.contains(*s))
                        .collect();
                    (!missing.is_empty()).then(|| PropIssue {
                        path: l.path.clone(),
                        message: format!(
                            "role {} does not trust {}: Lambda@Edge needs both \
                         lambda.amazonaws.com and edgelambda.amazonaws.com \
                         (write `trust: [lambda, edgelambda]` on the role)",
                            l.resource,
                            missing.join(" and ")
                        ),
                    })
                }),
        );
        issues
    }

    fn pinned_region(&self, props: &Props) -> Option<&'static str> {
        (bool_of(props, "edge") == Some(true)).then_some(EDGE_REGION)
    }

    fn normalize(&self, props: &mut Props, ctx: &NormalizeContext) -> ResourceResult<()> {
        props.retain(|_, v| !v.is_null());
        let sha = match props.get("source") {
            Some(source) if is_unknown(source) => unknown(),
            Some(Value::String(source)) => {
                json!(code_sha256(&package(&ctx.base_dir.join(source))?))
            }
            _ => Value::Null,
        };
        if !sha.is_null() {
            if let Some(written) = props.get("code_sha256").filter(|v| **v != sha) {
                return Err(ResourceError::invalid(format!(
                    "code_sha256 is computed from source and cannot be set (found {written})"
                )));
            }
            props.insert("code_sha256".into(), sha);
        }
        canonicalize(props);
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
        let client = self.aws.lambda(&ctx.region);
        let Some(function) = get_function(&client, id).await? else {
            return Ok(None);
        };
        let version = if bool_of(prior, "publish") == Some(true) {
            match latest_version(&client, id).await {
                Ok(version) => version,
                Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
                Err(err) => return Err(err),
            }
        } else {
            LATEST.to_string()
        };
        let tags = function_tags(&function);
        observe(configuration(&function)?, tags, prior, &version).map(Some)
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let Some(name) = known_str(props, "name") else {
            return Ok(None);
        };
        let Some(observed) = self.read(ctx, name, props).await? else {
            return Ok(None);
        };
        Ok(tags::ours(observed, props))
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "lambda", "function:")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.lambda(&ctx.region);
        let name = required(props, "name")?;
        let code = self.code_for(ctx, props)?;
        let created = match create_function(ctx, &client, props, code).await {
            Ok(out) => out,
            Err(err) if err.code.as_deref() == Some("ResourceConflictException") => {
                return self.adopt(ctx, name, props, err).await;
            }
            Err(err) => return Err(err),
        };
        let version = if publishes(props) {
            created.version().unwrap_or(LATEST).to_string()
        } else {
            LATEST.to_string()
        };
        let function = wait_active(ctx, &client, name).await?;
        observe(
            configuration(&function)?,
            tags::user_tags(props),
            props,
            &version,
        )
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.lambda(&ctx.region);
        let changed = |key: &str| before.get(key) != after.get(key);
        let code_changed = changed("code_sha256") || changed("s3") || changed("architectures");
        let config_changed = CONFIG_KEYS.iter().any(|key| changed(key));
        let mut current = None;
        if code_changed {
            let code = self.code_for(ctx, after)?;
            update_code(ctx, &client, id, after, code).await?;
            current = Some(wait_updated(ctx, &client, id).await?);
        }
        if config_changed {
            update_configuration(ctx, &client, id, after).await?;
            current = Some(wait_updated(ctx, &client, id).await?);
        }
        let current = match current {
            Some(function) => function,
            None => get_function(&client, id)
                .await?
                .ok_or_else(|| errors::vanished(&format!("Lambda function {id}")))?,
        };
        let config = configuration(&current)?;
        update_tags(&client, &unqualified_arn(config)?, before, after).await?;
        let version = if !publishes(after) {
            LATEST.to_string()
        } else if code_changed || config_changed || !publishes(before) {
            publish_version(ctx, &client, id).await?
        } else {
            match latest_version(&client, id).await? {
                version if version == LATEST => publish_version(ctx, &client, id).await?,
                version => version,
            }
        };
        observe(config, tags::user_tags(after), after, &version)
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = self.aws.lambda(&ctx.region);
        let what = format!("deleting Lambda function {id}");
        let client = &client;
        let outcome = wait::retry_while_busy(ctx, &what, BUSY_LIMIT, || async move {
            match client
                .delete_function()
                .function_name(id)
                .send()
                .await
                .classified()
            {
                Ok(_) => Ok(Deletion::Deleted),
                Err(err) if err.kind == ErrorKind::NotFound => Ok(Deletion::Deleted),
                Err(err) if is_replicated(&err) => Ok(Deletion::Replicated),
                Err(err) => Err(err),
            }
        })
        .await?;
        if outcome == Deletion::Replicated {
            debug!(
                function = id,
                "Lambda@Edge replicas remain; deletion pending"
            );
            ctx.deletion_pending(REPLICAS_PENDING);
        }
        Ok(())
    }
}

impl LambdaFunction {
    /// The code for these properties: zipped from `source` in the stack's folder, or the
    /// S3 object Lambda fetches itself.
    fn code_for(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Code> {
        if let Some(Value::Object(s3)) = props.get("s3") {
            let field = |key: &str| s3.get(key).and_then(Value::as_str).map(str::to_string);
            return match (field("bucket"), field("key")) {
                (Some(bucket), Some(key)) => Ok(Code::S3 {
                    bucket,
                    key,
                    version: field("version"),
                }),
                _ => Err(ResourceError::invalid("s3 needs a bucket and a key")),
            };
        }
        package(&ctx.base_dir.join(required(props, "source")?)).map(Code::Zip)
    }

    /// CreateFunction found the name taken: a function this stack made (an interrupted
    /// create) is brought to `props`; anyone else's is a clash.
    async fn adopt(
        &self,
        ctx: &OpContext,
        name: &str,
        props: &Props,
        err: ResourceError,
    ) -> ResourceResult<Observed> {
        match self.read(ctx, name, props).await? {
            Some(found) if tags::owned_by(&tags::tags_of(&found.props), props) => {
                debug!(
                    function = name,
                    "adopting a Lambda function this stack created"
                );
                // A create whose answer was lost may still be Pending, and Lambda refuses
                // updates until it is Active.
                wait_active(ctx, &self.aws.lambda(&ctx.region), name).await?;
                self.update(ctx, name, &found.props, props).await
            }
            _ => Err(errors::name_taken(
                err,
                "ResourceConflictException",
                &format!("a Lambda function named {name}"),
            )),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Deletion {
    Deleted,
    /// CloudFront still holds replicas of the edge function.
    Replicated,
}

// ---------------------------------------------------------------------------------------
// The package

/// One file of a package: its name in the zip, where it is, and its mode.
struct PackageFile {
    name: String,
    path: PathBuf,
    mode: u32,
}

/// The zip Lambda runs: a `.zip` file as it is (a package built elsewhere, dependencies
/// and all); another file as one entry named by its file name; a folder as every regular
/// file under it, by "/"-separated relative name, sorted. Every entry plinth zips has the
/// time 1980-01-01 00:00 and mode 0644 (0755 when executable), so equal sources give equal
/// bytes.
pub fn package(source: &Path) -> ResourceResult<Vec<u8>> {
    if is_prebuilt(source) {
        return prebuilt(source);
    }
    let files = package_files(source)?;
    if files.is_empty() {
        return Err(ResourceError::invalid(format!(
            "source {}: the folder has no files to deploy",
            source.display()
        )));
    }
    let zip_error = |e: zip::result::ZipError| {
        ResourceError::other(format!("zipping {}: {e}", source.display()))
    };
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for file in &files {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(file.mode);
        zip.start_file(file.name.as_str(), options)
            .map_err(zip_error)?;
        let bytes = std::fs::read(&file.path).map_err(|e| read_error(&file.path, e))?;
        zip.write_all(&bytes)
            .map_err(|e| read_error(&file.path, e))?;
    }
    let bytes = zip.finish().map_err(zip_error)?.into_inner();
    if bytes.len() > MAX_ZIP {
        return Err(ResourceError::invalid(format!(
            "source {} zips to {} MB; Lambda takes at most 50 MB in a direct upload",
            source.display(),
            bytes.len() / (1024 * 1024)
        )));
    }
    Ok(bytes)
}

fn is_prebuilt(source: &Path) -> bool {
    source
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
        && source.is_file()
}

/// A package built elsewhere, deployed byte for byte: it must be a zip archive Lambda takes
/// in a direct upload.
fn prebuilt(source: &Path) -> ResourceResult<Vec<u8>> {
    let bytes = std::fs::read(source).map_err(|e| read_error(source, e))?;
    if zip::ZipArchive::new(Cursor::new(&bytes)).is_err() {
        return Err(ResourceError::invalid(format!(
            "source {}: not a zip archive",
            source.display()
        )));
    }
    if bytes.len() > MAX_ZIP {
        return Err(ResourceError::invalid(format!(
            "source {} is {} MB; Lambda takes at most 50 MB in a direct upload",
            source.display(),
            bytes.len() / (1024 * 1024)
        )));
    }
    Ok(bytes)
}

/// What Lambda reports as `CodeSha256`: base64 of the package's SHA-256.
pub fn code_sha256(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(zip))
}

fn package_files(source: &Path) -> ResourceResult<Vec<PackageFile>> {
    let meta = std::fs::metadata(source).map_err(|e| {
        ResourceError::invalid(format!("source {} cannot be read: {e}", source.display()))
    })?;
    if meta.is_file() {
        let name = source.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            ResourceError::invalid(format!("source {}: not a file name", source.display()))
        })?;
        return Ok(vec![PackageFile {
            name: name.to_string(),
            path: source.to_path_buf(),
            mode: mode_of(&meta),
        }]);
    }
    let mut files = Vec::new();
    collect_files(source, source, &mut files)?;
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PackageFile>) -> ResourceResult<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| read_error(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| read_error(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| read_error(&path, e))?;
        if kind.is_dir() {
            collect_files(root, &path, out)?;
            continue;
        }
        // A link to a file is packaged as that file; links to folders are not followed
        // (they may loop).
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        out.push(PackageFile {
            name: entry_name(root, &path)?,
            path,
            mode: mode_of(&meta),
        });
    }
    Ok(())
}

/// The "/"-separated name of `path` under `root`.
fn entry_name(root: &Path, path: &Path) -> ResourceResult<String> {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    parts.map(|p| p.join("/")).ok_or_else(|| {
        ResourceError::invalid(format!(
            "{}: file names in a Lambda package must be UTF-8",
            path.display()
        ))
    })
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

#[cfg(not(unix))]
fn mode_of(_meta: &std::fs::Metadata) -> u32 {
    0o644
}

fn read_error(path: &Path, err: std::io::Error) -> ResourceError {
    ResourceError::invalid(format!("{}: {err}", path.display()))
}

// ---------------------------------------------------------------------------------------
// Canonical properties and checks

/// Defaults filled, variables and tags in key order: for desired and read props alike.
fn canonicalize(props: &mut Props) {
    props
        .entry("memory_size")
        .or_insert_with(|| json!(DEFAULT_MEMORY));
    props
        .entry("timeout")
        .or_insert_with(|| json!(DEFAULT_TIMEOUT));
    props.entry("description").or_insert_with(|| json!(""));
    let environment = props.entry("environment").or_insert_with(|| json!({}));
    if let Value::Object(vars) = environment {
        let sorted: BTreeMap<String, Value> = vars
            .iter()
            .map(|(k, v)| (k.clone(), string_value(v)))
            .collect();
        *environment = Value::Object(sorted.into_iter().collect());
    }
    props
        .entry("architectures")
        .or_insert_with(|| json!(DEFAULT_ARCHITECTURE));
    let edge = props.entry("edge").or_insert(Value::Bool(false)).as_bool();
    // CloudFront takes only a numbered version, so edge functions publish by default.
    props
        .entry("publish")
        .or_insert(Value::Bool(edge.unwrap_or(false)));
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    reorder(props, ORDER);
}

fn string_value(value: &Value) -> Value {
    match value {
        Value::String(_) => value.clone(),
        other => json!(other.to_string()),
    }
}

/// What Lambda@Edge does not allow. (Per-trigger limits, like 128 MB and 5 s for viewer
/// triggers, are checked by the distribution, which knows the trigger.)
fn edge_issues(props: &Props) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    if matches!(props.get("environment"), Some(Value::Object(vars)) if !vars.is_empty()) {
        issues.push(PropIssue::at(
            &["environment"],
            "Lambda@Edge functions cannot have environment variables",
        ));
    }
    if props
        .get("timeout")
        .and_then(Value::as_i64)
        .is_some_and(|t| t > EDGE_MAX_TIMEOUT)
    {
        issues.push(PropIssue::at(
            &["timeout"],
            format!(
                "Lambda@Edge allows at most {EDGE_MAX_TIMEOUT} seconds (5 for viewer triggers)"
            ),
        ));
    }
    if known_str(props, "architectures").is_some_and(|a| a != "x86_64") {
        issues.push(PropIssue::at(
            &["architectures"],
            "Lambda@Edge runs only x86_64 functions",
        ));
    }
    if known_str(props, "runtime")
        .is_some_and(|r| !r.starts_with("nodejs") && !r.starts_with("python"))
    {
        issues.push(PropIssue::at(
            &["runtime"],
            "Lambda@Edge supports only Node.js (nodejs*) and Python (python*) runtimes",
        ));
    }
    if bool_of(props, "publish") == Some(false) {
        issues.push(PropIssue::at(
            &["publish"],
            "CloudFront needs a numbered version of a Lambda@Edge function: leave publish \
             out or set it to true",
        ));
    }
    issues
}

fn name_problem(name: &str) -> Option<String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || name.chars().count() > MAX_NAME {
        Some(format!("a function name has 1 to {MAX_NAME} characters"))
    } else if !name.chars().all(valid) {
        Some(format!(
            "{name:?}: a function name has only letters, digits, hyphens and underscores"
        ))
    } else {
        None
    }
}

fn required<'a>(props: &'a Props, key: &str) -> ResourceResult<&'a str> {
    str_of(props, key).ok_or_else(|| ResourceError::invalid(format!("lambda.function needs {key}")))
}

fn publishes(props: &Props) -> bool {
    bool_of(props, "publish") == Some(true)
}

fn int_of(props: &Props, key: &str) -> Option<i32> {
    props
        .get(key)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

fn architecture_of(props: &Props) -> Architecture {
    Architecture::from(str_of(props, "architectures").unwrap_or(DEFAULT_ARCHITECTURE))
}

fn environment_of(props: &Props) -> Environment {
    let variables: HashMap<String, String> = props
        .get("environment")
        .and_then(Value::as_object)
        .map(|vars| {
            vars.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    Environment::builder()
        .set_variables(Some(variables))
        .build()
}

/// A new function is created without an empty `Environment` (edge functions may have none).
fn has_variables(environment: &Environment) -> bool {
    environment.variables().is_some_and(|vars| !vars.is_empty())
}

fn function_tags(function: &GetFunctionOutput) -> BTreeMap<String, String> {
    function
        .tags()
        .map(|tags| {
            tags.iter()
                .filter(|(key, _)| !tags::is_reserved(key))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn configuration(function: &GetFunctionOutput) -> ResourceResult<&FunctionConfiguration> {
    function
        .configuration()
        .ok_or_else(|| ResourceError::other("GetFunction returned no configuration"))
}

/// The function's ARN without a version suffix.
fn unqualified_arn(config: &FunctionConfiguration) -> ResourceResult<String> {
    let arn = config
        .function_arn()
        .ok_or_else(|| ResourceError::other("Lambda returned a function without an ARN"))?;
    // arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
    Ok(arn.splitn(8, ':').take(7).collect::<Vec<_>>().join(":"))
}

/// Properties and attributes as AWS reports them; `plinth` supplies what only plinth knows
/// (`source`, `publish`, `edge`).
fn observe(
    config: &FunctionConfiguration,
    tags: BTreeMap<String, String>,
    plinth: &Props,
    version: &str,
) -> ResourceResult<Observed> {
    let name = config
        .function_name()
        .ok_or_else(|| ResourceError::other("Lambda returned a function without a name"))?;
    let arn = unqualified_arn(config)?;
    let mut props = Props::new();
    props.insert("name".into(), json!(name));
    // Where the code came from is plinth's to know: Lambda keeps only its hash.
    for key in ["source", "s3", "publish", "edge"] {
        if let Some(value) = plinth.get(key) {
            props.insert(key.into(), value.clone());
        }
    }
    props.insert(
        "runtime".into(),
        json!(config.runtime().map(Runtime::as_str).unwrap_or_default()),
    );
    props.insert(
        "handler".into(),
        json!(config.handler().unwrap_or_default()),
    );
    props.insert("role".into(), json!(config.role().unwrap_or_default()));
    if let Some(memory) = config.memory_size() {
        props.insert("memory_size".into(), json!(memory));
    }
    if let Some(timeout) = config.timeout() {
        props.insert("timeout".into(), json!(timeout));
    }
    props.insert(
        "description".into(),
        json!(config.description().unwrap_or_default()),
    );
    if let Some(vars) = config.environment().and_then(|e| e.variables()) {
        props.insert("environment".into(), json!(vars));
    }
    if let Some(architecture) = config.architectures().first() {
        props.insert("architectures".into(), json!(architecture.as_str()));
    }
    props.insert(
        "code_sha256".into(),
        json!(config.code_sha256().unwrap_or_default()),
    );
    props.insert("tags".into(), tags::tags_value(tags));
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("arn".into(), json!(arn));
    attrs.insert("version".into(), json!(version));
    attrs.insert("qualified_arn".into(), json!(format!("{arn}:{version}")));
    attrs.insert("name".into(), json!(name));
    Ok(Observed {
        id: name.to_string(),
        props,
        attrs,
    })
}

// ---------------------------------------------------------------------------------------
// Calls

/// A new role is not assumable for a few seconds: that refusal is worth retrying.
fn role_not_ready(err: ResourceError) -> ResourceError {
    if err.code.as_deref() == Some("InvalidParameterValueException")
        && err.message.contains(ROLE_NOT_ASSUMABLE)
    {
        ResourceError {
            kind: ErrorKind::Retryable,
            ..err
        }
    } else {
        err
    }
}

/// Still refused after the retries: the role's trust policy is the likely cause.
fn explain_role(err: ResourceError) -> ResourceError {
    if err.message.contains(ROLE_NOT_ASSUMABLE) {
        ResourceError {
            kind: ErrorKind::Invalid,
            message: format!(
                "{}; check that the role exists and trusts lambda.amazonaws.com",
                err.message
            ),
            ..err
        }
    } else {
        err
    }
}

/// On CreateFunction a conflict means the name is taken: not something to wait out.
fn conflict_is_final(err: ResourceError) -> ResourceError {
    if err.code.as_deref() == Some("ResourceConflictException") {
        ResourceError {
            kind: ErrorKind::Invalid,
            ..err
        }
    } else {
        err
    }
}

fn is_replicated(err: &ResourceError) -> bool {
    err.code.as_deref() == Some("InvalidParameterValueException")
        && err.message.contains(REPLICATED)
}

async fn get_function(client: &Client, name: &str) -> ResourceResult<Option<GetFunctionOutput>> {
    match client
        .get_function()
        .function_name(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(Some(out)),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// A function's code as Lambda takes it.
enum Code {
    /// A zip uploaded with the request.
    Zip(Vec<u8>),
    /// A zip Lambda reads from S3.
    S3 {
        bucket: String,
        key: String,
        version: Option<String>,
    },
}

impl Code {
    fn function_code(&self) -> FunctionCode {
        match self {
            Code::Zip(zip) => FunctionCode::builder()
                .zip_file(Blob::new(zip.clone()))
                .build(),
            Code::S3 {
                bucket,
                key,
                version,
            } => FunctionCode::builder()
                .s3_bucket(bucket)
                .s3_key(key)
                .set_s3_object_version(version.clone())
                .build(),
        }
    }
}

async fn create_function(
    ctx: &OpContext,
    client: &Client,
    props: &Props,
    code: Code,
) -> ResourceResult<CreateFunctionOutput> {
    let name = required(props, "name")?;
    let runtime = Runtime::from(required(props, "runtime")?);
    let handler = required(props, "handler")?;
    let role = required(props, "role")?;
    let code = code.function_code();
    let tags: HashMap<String, String> = tags::user_tags(props).into_iter().collect();
    let what = format!("creating Lambda function {name}");
    debug!(function = name, "CreateFunction");
    wait::retry_while_busy(ctx, &what, ROLE_LIMIT, || {
        let request = client
            .create_function()
            .function_name(name)
            .runtime(runtime.clone())
            .handler(handler)
            .role(role)
            .code(code.clone())
            .description(str_of(props, "description").unwrap_or_default())
            .set_memory_size(int_of(props, "memory_size"))
            .set_timeout(int_of(props, "timeout"))
            .set_environment(Some(environment_of(props)).filter(has_variables))
            .architectures(architecture_of(props))
            .publish(publishes(props))
            .set_tags(Some(tags.clone()).filter(|t| !t.is_empty()));
        async move {
            request
                .send()
                .await
                .classified()
                .map_err(role_not_ready)
                .map_err(conflict_is_final)
        }
    })
    .await
    .map_err(explain_role)
}

async fn update_code(
    ctx: &OpContext,
    client: &Client,
    name: &str,
    props: &Props,
    code: Code,
) -> ResourceResult<()> {
    let what = format!("updating the code of Lambda function {name}");
    debug!(function = name, "UpdateFunctionCode");
    wait::retry_while_busy(ctx, &what, BUSY_LIMIT, || {
        let request = client
            .update_function_code()
            .function_name(name)
            .architectures(architecture_of(props));
        let request = match &code {
            Code::Zip(zip) => request.zip_file(Blob::new(zip.clone())),
            Code::S3 {
                bucket,
                key,
                version,
            } => request
                .s3_bucket(bucket)
                .s3_key(key)
                .set_s3_object_version(version.clone()),
        };
        async move { request.send().await.classified().map(|_| ()) }
    })
    .await
}

async fn update_configuration(
    ctx: &OpContext,
    client: &Client,
    name: &str,
    props: &Props,
) -> ResourceResult<()> {
    let runtime = Runtime::from(required(props, "runtime")?);
    let what = format!("updating the configuration of Lambda function {name}");
    debug!(function = name, "UpdateFunctionConfiguration");
    wait::retry_while_busy(ctx, &what, ROLE_LIMIT, || {
        let request = client
            .update_function_configuration()
            .function_name(name)
            .runtime(runtime.clone())
            .set_handler(str_of(props, "handler").map(str::to_string))
            .set_role(str_of(props, "role").map(str::to_string))
            .set_memory_size(int_of(props, "memory_size"))
            .set_timeout(int_of(props, "timeout"))
            .description(str_of(props, "description").unwrap_or_default())
            .environment(environment_of(props));
        async move {
            request
                .send()
                .await
                .classified()
                .map(|_| ())
                .map_err(role_not_ready)
        }
    })
    .await
    .map_err(explain_role)
}

/// Publishes what `$LATEST` is now as a numbered version; returns its number.
async fn publish_version(ctx: &OpContext, client: &Client, name: &str) -> ResourceResult<String> {
    let what = format!("publishing a version of Lambda function {name}");
    let out = wait::retry_while_busy(ctx, &what, BUSY_LIMIT, || async move {
        client
            .publish_version()
            .function_name(name)
            .send()
            .await
            .classified()
    })
    .await?;
    let version = out
        .version()
        .ok_or_else(|| ResourceError::other("PublishVersion returned no version"))?;
    debug!(function = name, version, "published a version");
    Ok(version.to_string())
}

/// The highest published version number, every page; `$LATEST` when none is published.
async fn latest_version(client: &Client, name: &str) -> ResourceResult<String> {
    let versions = client
        .list_versions_by_function()
        .function_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(errors::classify)?;
    Ok(versions
        .iter()
        .filter_map(|v| v.version()?.parse::<u64>().ok())
        .max()
        .map(|n| n.to_string())
        .unwrap_or_else(|| LATEST.to_string()))
}

/// Waits for a new function to leave `Pending`.
async fn wait_active(
    ctx: &OpContext,
    client: &Client,
    name: &str,
) -> ResourceResult<GetFunctionOutput> {
    let what = format!("Lambda function {name} to become Active");
    let started = tokio::time::Instant::now();
    wait::until(ctx, &what, ACTIVE_LIMIT, || async {
        let Some(function) = get_function(client, name).await? else {
            return wait::not_visible_yet(started, || {
                errors::vanished(&format!("Lambda function {name}"))
            });
        };
        let config = configuration(&function)?;
        match config.state() {
            Some(State::Pending) => Ok(Poll::Pending("Pending".into())),
            Some(State::Failed) => Err(ResourceError::other(format!(
                "Lambda function {name} failed to become active: {}",
                config.state_reason().unwrap_or("no reason given")
            ))),
            _ => Ok(Poll::Ready(function)),
        }
    })
    .await
}

/// Waits for an update to finish (`LastUpdateStatus` leaves `InProgress`).
async fn wait_updated(
    ctx: &OpContext,
    client: &Client,
    name: &str,
) -> ResourceResult<GetFunctionOutput> {
    let what = format!("the update of Lambda function {name}");
    wait::until(ctx, &what, UPDATE_LIMIT, || async {
        let function = get_function(client, name)
            .await?
            .ok_or_else(|| errors::vanished(&format!("Lambda function {name}")))?;
        let config = configuration(&function)?;
        match config.last_update_status() {
            Some(LastUpdateStatus::InProgress) => Ok(Poll::Pending("InProgress".into())),
            Some(LastUpdateStatus::Failed) => Err(ResourceError::other(format!(
                "the update of Lambda function {name} failed: {}",
                config
                    .last_update_status_reason()
                    .unwrap_or("no reason given")
            ))),
            _ => Ok(Poll::Ready(function)),
        }
    })
    .await
}

async fn update_tags(
    client: &Client,
    arn: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let (set, remove) = tags::tag_changes(&tags::user_tags(before), &tags::user_tags(after));
    if !set.is_empty() {
        client
            .tag_resource()
            .resource(arn)
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .classified()?;
    }
    if !remove.is_empty() {
        client
            .untag_resource()
            .resource(arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .classified()?;
    }
    Ok(())
}
