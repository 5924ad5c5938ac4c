//! `s3.bucket`: a bucket with its public access block, versioning, tags and the
//! sub-configurations of `s3_bucket_config` (ownership, encryption, CORS, lifecycle,
//! website, logging, object lock).
//!
//! Bucket names are global across all AWS accounts, so a create can fail because somebody
//! else holds the name. In us-east-1 AWS answers a create of a bucket this account already
//! owns with success (legacy behaviour), so there the name is looked at first: plinth never
//! takes over a bucket that is not this stack's. Destroy empties the bucket (every object
//! version and delete marker) only with `force_destroy: true`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Delete,
    ObjectIdentifier, ObjectOwnership, PublicAccessBlockConfiguration, Tag, Tagging,
    VersioningConfiguration,
};
use aws_sdk_s3::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{bool_of, known_str, reorder, str_of, Props};
use serde_json::{json, Map, Value};
use tracing::debug;

use crate::errors::SendExt;
use crate::resources::s3_bucket_config as config;
use crate::resources::tags;
use crate::wait;
use crate::{Aws, Unanswered};

/// The region where CreateBucket of an already owned bucket succeeds instead of failing.
const LEGACY_REGION: &str = "us-east-1";
/// The four switches of a public access block, in canonical order.
const BLOCK_KEYS: [&str; 4] = [
    "block_public_acls",
    "ignore_public_acls",
    "block_public_policy",
    "restrict_public_buckets",
];
/// Property order in canonical form (the schema's).
const ORDER: &[&str] = &[
    "name",
    "versioning",
    "public_access_block",
    "object_ownership",
    "encryption",
    "cors",
    "lifecycle_rules",
    "website",
    "logging",
    "object_lock",
    "force_destroy",
    "tags",
];
/// The sub-configurations `Settings` carries as canonical values (the optional ones are
/// absent when off).
const CONFIG_KEYS: &[&str] = &[
    "object_ownership",
    "encryption",
    "cors",
    "lifecycle_rules",
    "website",
    "logging",
    "object_lock",
];
/// How long a new bucket may answer NoSuchBucket to its configuration calls.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(2 * 60);
/// DeleteObjects takes at most this many keys.
pub(crate) const DELETE_BATCH: usize = 1000;
/// Rounds of emptying and deleting while something keeps writing into the bucket.
const EMPTY_ROUNDS: usize = 3;
pub(crate) const NO_SUCH_BUCKET: &str = "NoSuchBucket";

/// The `s3.bucket` resource type.
pub struct Bucket {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl Bucket {
    pub fn new(aws: Arc<Aws>) -> Bucket {
        Bucket {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "s3.bucket",
        description: "An S3 bucket with its public access block, versioning, encryption, CORS, lifecycle, website, logging and tags",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(
            vec![
            Prop::new("name", Shape::String)
                .prefixable(63)
                .required()
                .replaces()
                .known_as(&["bucket"])
                .unique()
                .doc("the bucket name, unique across all AWS accounts: 3-63 lowercase letters, digits, dots and hyphens"),
            Prop::new("versioning", Shape::Bool)
                .known_as(&["versioning_configuration"])
                .doc("keep every version of every object; default false"),
            Prop::new("public_access_block", Shape::Object(block_props()))
                .known_as(&["public_access_block_configuration"])
                .doc("the bucket's public access block; every switch defaults to true"),
        ]
        .into_iter()
        .chain(config::props())
        .chain([
            Prop::new("force_destroy", Shape::Bool).doc(
                "destroy empties the bucket first (all objects and versions); default false",
            ),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the bucket"),
        ])
        .collect(),
        ),
        attributes: vec![
            Attr::new("name", Shape::String, "the bucket name"),
            Attr::new("arn", Shape::String, "arn:aws:s3:::NAME"),
            Attr::new(
                "regional_domain_name",
                Shape::String,
                "NAME.s3.REGION.amazonaws.com (for CloudFront origins)",
            ),
            Attr::new("domain_name", Shape::String, "NAME.s3.amazonaws.com"),
            Attr::new(
                "website_endpoint",
                Shape::String,
                "NAME.s3-website-REGION.amazonaws.com, with `website` (an HTTP-only custom origin)",
            ),
            Attr::new(
                "website_domain",
                Shape::String,
                "s3-website-REGION.amazonaws.com, with `website` (for Route 53 aliases)",
            ),
        ],
    }
}

fn block_props() -> Vec<Prop> {
    vec![
        Prop::new("block_public_acls", Shape::Bool)
            .doc("reject requests that set public ACLs; default true"),
        Prop::new("ignore_public_acls", Shape::Bool)
            .doc("ignore public ACLs already set; default true"),
        Prop::new("block_public_policy", Shape::Bool)
            .doc("reject bucket policies that grant public access; default true"),
        Prop::new("restrict_public_buckets", Shape::Bool)
            .doc("limit access under a public policy to AWS services and the owner; default true"),
    ]
}

/// Cost rule: S3 Standard storage and requests, from the usage assumptions (the objects in
/// the bucket, synced by `s3.objects` or not, are the assumed storage).
fn bucket_cost(
    _props: &plinth_core::value::Props,
    ctx: &plinth_core::cost::CostContext,
) -> Vec<plinth_core::cost::CostLine> {
    use plinth_core::cost::{count_text, price_text, CostLine};
    let prices = match crate::cost::s3_prices(ctx) {
        Ok(prices) => prices,
        Err(e) => return vec![CostLine::unknown("S3 storage and requests", e.to_string())],
    };
    let gb = ctx.usage("s3.storage_gb");
    let puts = ctx.usage("s3.put_requests");
    let gets = ctx.usage("s3.get_requests");
    vec![
        CostLine::usage_per_month(
            format!(
                "{} GB stored × ${}/GB-month",
                count_text(gb),
                price_text(prices.storage_gb_month)
            ),
            gb * prices.storage_gb_month,
        )
        .with_free_tier(crate::cost::free_tier(ctx, "s3")),
        CostLine::usage_per_month(
            format!(
                "{} PUT requests × ${}/1,000",
                count_text(puts),
                price_text(prices.put_per_1000)
            ),
            puts / 1000.0 * prices.put_per_1000,
        ),
        CostLine::usage_per_month(
            format!(
                "{} GET requests × ${}/1,000",
                count_text(gets),
                price_text(prices.get_per_1000)
            ),
            gets / 1000.0 * prices.get_per_1000,
        ),
    ]
}

#[async_trait]
impl ResourceType for Bucket {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(
        &self,
        props: &plinth_core::value::Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        bucket_cost(props, ctx)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues: Vec<PropIssue> = known_str(props, "name")
            .and_then(bucket_name_problem)
            .map(|problem| vec![PropIssue::at(&["name"], problem)])
            .unwrap_or_default();
        issues.extend(config::check(props));
        issues
    }

    /// Object lock never goes off again once on (S3 turns it on for an existing
    /// versioned bucket since 2023, but no call turns it off).
    fn replace_reasons(&self, before: &Props, after: &Props) -> Vec<String> {
        let mut reasons = self.schema.replaced_properties(before, after);
        if before.contains_key("object_lock") && !after.contains_key("object_lock") {
            reasons.push("object_lock".to_string());
        }
        reasons
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        let mut attrs = Props::new();
        if let Some(name) = known_str(props, "name") {
            attrs.insert("name".into(), json!(name));
            attrs.insert("arn".into(), json!(bucket_arn(name)));
            attrs.insert(
                "domain_name".into(),
                json!(format!("{name}.s3.amazonaws.com")),
            );
        }
        // Known once applied (they name the region): a website added is not yet the
        // bucket's, and an update must not plan with the old endpoint or none.
        if props.contains_key("website") {
            for key in ["website_endpoint", "website_domain"] {
                attrs.insert(key.into(), json!(plinth_core::value::UNKNOWN));
            }
        }
        attrs
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.s3(&ctx.region);
        match presence(&client, id).await? {
            Presence::Missing => return Ok(None),
            Presence::Foreign => return Err(foreign(id)),
            Presence::Owned => {}
        }
        match read_settings(&client, id).await {
            Ok(settings) => Ok(Some(observe(id, &ctx.region, settings.props(id, prior)))),
            // Deleted between the calls.
            Err(err) if is_code(&err, NO_SUCH_BUCKET) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let Some(name) = known_str(props, "name") else {
            return Ok(None);
        };
        let client = self.aws.s3(&ctx.region);
        if presence(&client, name).await? != Presence::Owned {
            return Ok(None);
        }
        let Some(observed) = self.read(ctx, name, props).await? else {
            return Ok(None);
        };
        Ok(tags::ours(observed, props))
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "s3", "")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.s3(&ctx.region);
        let name = str_of(props, "name")
            .ok_or_else(|| ResourceError::invalid("s3.bucket needs a name"))?;
        if ctx.region == LEGACY_REGION {
            // Here CreateBucket would silently succeed on a bucket this account already has.
            match presence(&client, name).await? {
                Presence::Owned => return self.adopt(ctx, &client, name, props).await,
                Presence::Foreign => return Err(taken_globally(name, "HeadBucket: 403")),
                Presence::Missing => {}
            }
        }
        // A name deleted moments ago (a replacement) is OperationAborted for a while.
        let what = format!("creating bucket {name}");
        let unanswered = Unanswered::default();
        let created = wait::retry_while_busy(ctx, &what, PROPAGATION_LIMIT, || {
            create_bucket(&client, props, &ctx.region, &unanswered)
        })
        .await;
        match created {
            Ok(()) => {}
            // An attempt of this very create went unanswered: AWS made the bucket then, and
            // has not had its tags yet (they are set below).
            Err(err) if is_code(&err, "BucketAlreadyOwnedByYou") && unanswered.seen() => {
                debug!(
                    bucket = name,
                    "the bucket was created by an attempt whose answer was lost"
                );
            }
            Err(err) if is_code(&err, "BucketAlreadyOwnedByYou") => {
                return self.adopt(ctx, &client, name, props).await
            }
            Err(err) if is_code(&err, "BucketAlreadyExists") => {
                return Err(taken_globally(name, &err.message))
            }
            Err(err) => return Err(err),
        }
        let settings = Settings::desired(props);
        after_create(ctx, name, || settings.put_all(&client, name)).await?;
        Ok(observe(name, &ctx.region, props.clone()))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.s3(&ctx.region);
        let changed = |key: &str| before.get(key) != after.get(key);
        let settings = Settings::desired(after);
        if changed("public_access_block") {
            settings.put_block(&client, id).await?;
        }
        if changed("versioning") {
            settings.put_versioning(&client, id).await?;
        }
        for key in CONFIG_KEYS.iter().copied().filter(|k| changed(k)) {
            settings.put_config(&client, id, key).await?;
        }
        if changed("tags") {
            settings.put_tags(&client, id).await?;
        }
        Ok(observe(id, &ctx.region, after.clone()))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, props: &Props) -> ResourceResult<()> {
        let client = self.aws.s3(&ctx.region);
        let force = bool_of(props, "force_destroy").unwrap_or(false);
        // Objects under a governance-mode retention go only with the bypass.
        let locked = props.contains_key("object_lock");
        for round in 1..=EMPTY_ROUNDS {
            if force {
                ctx.progress.status(&format!("emptying bucket {id}"));
                if !empty_bucket(&client, id, locked).await? {
                    return Ok(());
                }
            }
            match client.delete_bucket().bucket(id).send().await.classified() {
                Ok(_) => {
                    debug!(bucket = id, "deleted bucket");
                    return Ok(());
                }
                Err(err) if is_code(&err, NO_SUCH_BUCKET) => return Ok(()),
                // Something wrote into the bucket while it was being emptied: empty it again.
                Err(err) if is_code(&err, "BucketNotEmpty") && force && round < EMPTY_ROUNDS => {}
                Err(err) if is_code(&err, "BucketNotEmpty") => return Err(not_empty(id, force)),
                Err(err) => return Err(err),
            }
        }
        Err(not_empty(id, force))
    }
}

impl Bucket {
    /// A bucket this account already has under the name: taken over when its owner tags say
    /// it is this stack's (an interrupted create), refused otherwise.
    async fn adopt(
        &self,
        ctx: &OpContext,
        client: &Client,
        name: &str,
        props: &Props,
    ) -> ResourceResult<Observed> {
        let found = read_settings(client, name).await?;
        if !tags::owned_by(&found.tags, props) {
            return Err(ResourceError::invalid(format!(
                "a bucket named {name} already exists in this account and is not this \
                 stack's (its plinth:* tags differ); choose another name, delete it, or bring \
                 it under this stack with `plinth import s3.bucket.{} {name}`",
                ctx.name
            ))
            .with_code("BucketAlreadyOwnedByYou"));
        }
        debug!(
            bucket = name,
            "adopting the bucket an interrupted create left"
        );
        let before = found.props(name, props);
        self.update(ctx, name, &before, props).await
    }
}

/// Whether a bucket exists for this account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Presence {
    Owned,
    Missing,
    /// HeadBucket is refused: another account owns the name (or these credentials may not
    /// look at it).
    Foreign,
}

/// HeadBucket answers 404 without a body (the SDK's typed `NotFound`) for a missing bucket and
/// 403 for someone else's, so the status decides, not an error code.
async fn presence(client: &Client, name: &str) -> ResourceResult<Presence> {
    match client.head_bucket().bucket(name).send().await {
        Ok(_) => Ok(Presence::Owned),
        Err(err) => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            let not_found = matches!(err.as_service_error(), Some(HeadBucketError::NotFound(_)));
            if not_found || status == Some(404) {
                Ok(Presence::Missing)
            } else if status == Some(301) {
                Err(elsewhere(name, &err))
            } else if status == Some(403) {
                Ok(Presence::Foreign)
            } else {
                Err(crate::errors::classify(err))
            }
        }
    }
}

/// HeadBucket through another region's endpoint answers 301, naming the bucket's region.
fn elsewhere<E>(name: &str, err: &SdkError<E, HttpResponse>) -> ResourceError {
    let region = err
        .raw_response()
        .and_then(|r| r.headers().get("x-amz-bucket-region"))
        .unwrap_or("another region");
    ResourceError::invalid(format!(
        "bucket {name} is in {region}, not in this resource's region: give the resource \
         `region: {region}`, or choose another name"
    ))
}

fn foreign(name: &str) -> ResourceError {
    ResourceError::new(
        ErrorKind::Auth,
        format!(
            "HeadBucket on {name} was refused (403): the bucket belongs to another account, \
             or these credentials may not read it"
        ),
    )
}

fn taken_globally(name: &str, detail: &str) -> ResourceError {
    ResourceError::invalid(format!(
        "the bucket name {name} is taken by another AWS account ({detail}); bucket names are \
         global across all AWS accounts, so choose another (a prefix with your account or \
         stack name helps)"
    ))
    .with_code("BucketAlreadyExists")
}

fn not_empty(name: &str, force: bool) -> ResourceError {
    let message = if force {
        format!("bucket {name} is still not empty after emptying it {EMPTY_ROUNDS} times: something keeps writing into it")
    } else {
        format!(
            "bucket {name} is not empty (objects or old versions remain): set \
             `force_destroy: true` (and apply it) to have destroy empty it"
        )
    };
    ResourceError::invalid(message).with_code("BucketNotEmpty")
}

/// Ownership and object lock are given with the create: no extra calls.
async fn create_bucket(
    client: &Client,
    props: &Props,
    region: &str,
    unanswered: &Unanswered,
) -> ResourceResult<()> {
    let name = str_of(props, "name").unwrap_or_default();
    let ownership = str_of(props, "object_ownership").unwrap_or(config::DEFAULT_OWNERSHIP);
    // us-east-1 is the default location and refuses to be named as a constraint.
    let configuration = (region != LEGACY_REGION).then(|| {
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(region))
            .build()
    });
    debug!(bucket = name, region, "CreateBucket");
    client
        .create_bucket()
        .bucket(name)
        .set_create_bucket_configuration(configuration)
        .object_ownership(ObjectOwnership::from(ownership))
        .set_object_lock_enabled_for_bucket(props.contains_key("object_lock").then_some(true))
        .customize()
        .interceptor(unanswered.clone())
        .send()
        .await
        .classified()
        .map(|_| ())
}

/// Runs the configuration calls of a new bucket again while AWS does not know it yet.
async fn after_create<F, Fut>(ctx: &OpContext, name: &str, op: F) -> ResourceResult<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ResourceResult<()>>,
{
    let what = format!("configuring new bucket {name}");
    wait::retry_while_busy(ctx, &what, PROPAGATION_LIMIT, || {
        let attempt = op();
        async move {
            attempt.await.map_err(|err| {
                if is_code(&err, NO_SUCH_BUCKET) {
                    // Not yet visible everywhere: retry like something busy.
                    ResourceError {
                        kind: ErrorKind::InUse,
                        ..err
                    }
                } else {
                    err
                }
            })
        }
    })
    .await
}

/// What the bucket's settings are (or should be), in one place for both directions.
struct Settings {
    versioning: bool,
    block: [bool; 4],
    tags: BTreeMap<String, String>,
    /// The canonical values of [`CONFIG_KEYS`].
    config: Props,
}

impl Settings {
    fn desired(props: &Props) -> Settings {
        let block = props.get("public_access_block").and_then(Value::as_object);
        let config = CONFIG_KEYS
            .iter()
            .filter_map(|k| props.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        Settings {
            versioning: bool_of(props, "versioning").unwrap_or(false),
            block: BLOCK_KEYS.map(|k| block.and_then(|b| bool_of(b, k)).unwrap_or(true)),
            tags: tags::tags_of(props),
            config,
        }
    }

    /// Canonical properties of a bucket with these settings; `force_destroy` lives only in
    /// plinth, so it comes from `prior`.
    fn props(&self, name: &str, prior: &Props) -> Props {
        let mut props = Props::new();
        props.insert("name".into(), json!(name));
        props.insert("versioning".into(), json!(self.versioning));
        props.insert("public_access_block".into(), block_value(self.block));
        props.extend(self.config.clone());
        props.insert(
            "force_destroy".into(),
            json!(bool_of(prior, "force_destroy").unwrap_or(false)),
        );
        props.insert("tags".into(), tags::tags_value(self.tags.clone()));
        reorder(&mut props, ORDER);
        props
    }

    /// Everything a new bucket needs besides the defaults AWS gives it (ownership and
    /// object lock came with the create).
    async fn put_all(&self, client: &Client, name: &str) -> ResourceResult<()> {
        self.put_block(client, name).await?;
        if self.versioning {
            self.put_versioning(client, name).await?;
        }
        let needed = |key: &str| match (key, self.config.get(key)) {
            ("object_ownership", _) => false,
            ("encryption", Some(e)) => !config::is_default_encryption(e),
            ("cors" | "lifecycle_rules", Some(list)) => {
                list.as_array().is_some_and(|l| !l.is_empty())
            }
            // Enabled at create; only a default retention needs a call.
            ("object_lock", Some(lock)) => lock.get("mode").is_some(),
            (_, value) => value.is_some(),
        };
        for key in CONFIG_KEYS.iter().copied().filter(|k| needed(k)) {
            self.put_config(client, name, key).await?;
        }
        if !self.tags.is_empty() {
            self.put_tags(client, name).await?;
        }
        Ok(())
    }

    /// Sets one sub-configuration to its desired value (removing it when absent or empty).
    async fn put_config(&self, client: &Client, name: &str, key: &str) -> ResourceResult<()> {
        let value = self.config.get(key);
        let empty = Value::Array(Vec::new());
        match key {
            "object_ownership" => {
                let ownership = value
                    .and_then(Value::as_str)
                    .unwrap_or(config::DEFAULT_OWNERSHIP);
                config::put_ownership(client, name, ownership).await
            }
            "encryption" => match value {
                Some(e) => config::put_encryption(client, name, e).await,
                None => Ok(()),
            },
            "cors" => config::put_cors(client, name, value.unwrap_or(&empty)).await,
            "lifecycle_rules" => config::put_lifecycle(client, name, value.unwrap_or(&empty)).await,
            "website" => config::put_website(client, name, value).await,
            "logging" => config::put_logging(client, name, value).await,
            // On (for a new or a versioned bucket) or a new default retention; turning it
            // off is a replacement, never an update.
            "object_lock" => match value {
                Some(lock) => config::put_object_lock(client, name, lock).await,
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    async fn put_block(&self, client: &Client, name: &str) -> ResourceResult<()> {
        let [acls, ignore, policy, restrict] = self.block;
        let configuration = PublicAccessBlockConfiguration::builder()
            .block_public_acls(acls)
            .ignore_public_acls(ignore)
            .block_public_policy(policy)
            .restrict_public_buckets(restrict)
            .build();
        debug!(bucket = name, block = ?self.block, "PutPublicAccessBlock");
        client
            .put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(configuration)
            .send()
            .await
            .classified()
            .map(|_| ())
    }

    /// Versioning once enabled can only be suspended, never switched off again.
    async fn put_versioning(&self, client: &Client, name: &str) -> ResourceResult<()> {
        let status = if self.versioning {
            BucketVersioningStatus::Enabled
        } else {
            BucketVersioningStatus::Suspended
        };
        debug!(bucket = name, ?status, "PutBucketVersioning");
        client
            .put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(VersioningConfiguration::builder().status(status).build())
            .send()
            .await
            .classified()
            .map(|_| ())
    }

    /// PutBucketTagging replaces the whole set; an empty set is deleted instead.
    async fn put_tags(&self, client: &Client, name: &str) -> ResourceResult<()> {
        if self.tags.is_empty() {
            debug!(bucket = name, "DeleteBucketTagging");
            return client
                .delete_bucket_tagging()
                .bucket(name)
                .send()
                .await
                .classified()
                .map(|_| ());
        }
        let tag_set = self
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ResourceError::other(format!("building the tag set: {e}")))?;
        let tagging = Tagging::builder()
            .set_tag_set(Some(tag_set))
            .build()
            .map_err(|e| ResourceError::other(format!("building the tag set: {e}")))?;
        debug!(bucket = name, tags = self.tags.len(), "PutBucketTagging");
        client
            .put_bucket_tagging()
            .bucket(name)
            .tagging(tagging)
            .send()
            .await
            .classified()
            .map(|_| ())
    }
}

/// The settings AWS reports, with what it reports for settings never made filled in. S3
/// has a call per setting and none for all of them: they are asked for at once.
async fn read_settings(client: &Client, name: &str) -> ResourceResult<Settings> {
    let (versioning, block, tags, config) = tokio::try_join!(
        read_versioning(client, name),
        read_block(client, name),
        read_tags(client, name),
        read_config(client, name),
    )?;
    Ok(Settings {
        versioning,
        block,
        tags,
        config,
    })
}

async fn read_config(client: &Client, name: &str) -> ResourceResult<Props> {
    let (ownership, encryption, cors, lifecycle, website, logging, lock) = tokio::try_join!(
        config::read_ownership(client, name),
        config::read_encryption(client, name),
        config::read_cors(client, name),
        config::read_lifecycle(client, name),
        config::read_website(client, name),
        config::read_logging(client, name),
        config::read_object_lock(client, name),
    )?;
    let mut props = Props::new();
    props.insert("object_ownership".into(), ownership);
    props.insert("encryption".into(), encryption);
    props.insert("cors".into(), cors);
    props.insert("lifecycle_rules".into(), lifecycle);
    let optional = [
        ("website", website),
        ("logging", logging),
        ("object_lock", lock),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            props.insert(key.into(), value);
        }
    }
    Ok(props)
}

async fn read_versioning(client: &Client, name: &str) -> ResourceResult<bool> {
    let versioning = client
        .get_bucket_versioning()
        .bucket(name)
        .send()
        .await
        .classified()?;
    // Suspended (after having been enabled) and never enabled both mean "no versions kept".
    Ok(versioning.status() == Some(&BucketVersioningStatus::Enabled))
}

async fn read_block(client: &Client, name: &str) -> ResourceResult<[bool; 4]> {
    let block = match client
        .get_public_access_block()
        .bucket(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => {
            let c = out.public_access_block_configuration();
            [
                c.and_then(|c| c.block_public_acls()),
                c.and_then(|c| c.ignore_public_acls()),
                c.and_then(|c| c.block_public_policy()),
                c.and_then(|c| c.restrict_public_buckets()),
            ]
            .map(|v| v.unwrap_or(false))
        }
        // No block at all blocks nothing.
        Err(err) if is_code(&err, "NoSuchPublicAccessBlockConfiguration") => [false; 4],
        Err(err) => return Err(err),
    };
    Ok(block)
}

async fn read_tags(client: &Client, name: &str) -> ResourceResult<BTreeMap<String, String>> {
    let tags = match client
        .get_bucket_tagging()
        .bucket(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => out
            .tag_set()
            .iter()
            // AWS's own tags cannot be set or removed by a stack.
            .filter(|t| !tags::is_reserved(t.key()))
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(err) if is_code(&err, "NoSuchTagSet") => BTreeMap::new(),
        Err(err) => return Err(err),
    };
    Ok(tags)
}

/// Deletes every object version and delete marker, page by page. `false` when the bucket is
/// already gone.
async fn empty_bucket(client: &Client, name: &str, bypass_retention: bool) -> ResourceResult<bool> {
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    loop {
        let page = match client
            .list_object_versions()
            .bucket(name)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .classified()
        {
            Ok(page) => page,
            Err(err) if is_code(&err, NO_SUCH_BUCKET) => return Ok(false),
            Err(err) => return Err(err),
        };
        let versions = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            );
        let ids = versions
            .filter_map(|(key, version)| {
                key.map(|k| {
                    ObjectIdentifier::builder()
                        .key(k)
                        .set_version_id(version.map(str::to_string))
                        .build()
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ResourceError::other(format!("building the keys to delete: {e}")))?;
        delete_objects(client, name, ids, bypass_retention).await?;
        if page.is_truncated() != Some(true) {
            return Ok(true);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() && version_marker.is_none() {
            return Ok(true);
        }
    }
}

/// Deletes objects (or object versions) in batches DeleteObjects accepts; a key AWS could
/// not delete fails the whole operation, naming it.
pub(crate) async fn delete_objects(
    client: &Client,
    bucket: &str,
    ids: Vec<ObjectIdentifier>,
    bypass_retention: bool,
) -> ResourceResult<()> {
    for batch in ids.chunks(DELETE_BATCH) {
        let delete = Delete::builder()
            .set_objects(Some(batch.to_vec()))
            .quiet(true)
            .build()
            .map_err(|e| ResourceError::other(format!("building DeleteObjects: {e}")))?;
        debug!(bucket, keys = batch.len(), "DeleteObjects");
        let out = client
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .set_bypass_governance_retention(bypass_retention.then_some(true))
            .send()
            .await
            .classified()?;
        if let Some(failed) = out.errors().first() {
            let message = format!(
                "could not delete {} object(s) from {bucket}, the first {}: {}",
                out.errors().len(),
                failed.key().unwrap_or("?"),
                failed.message().unwrap_or("no reason given")
            );
            let err = ResourceError::new(
                failed
                    .code()
                    .map(crate::errors::kind_of_code)
                    .unwrap_or(ErrorKind::Other),
                message,
            );
            return Err(match failed.code() {
                Some(code) => err.with_code(code),
                None => err,
            });
        }
    }
    Ok(())
}

/// Defaults filled, the public access block complete, tags in key order.
fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props.entry("versioning").or_insert(json!(false));
    props.entry("force_destroy").or_insert(json!(false));
    let block = props
        .entry("public_access_block")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(switches) = block {
        for key in BLOCK_KEYS {
            if switches.get(key).is_none_or(Value::is_null) {
                switches.insert(key.into(), json!(true));
            }
        }
        let mut ordered = Map::new();
        for key in BLOCK_KEYS {
            if let Some(v) = switches.remove(key) {
                ordered.insert(key.into(), v);
            }
        }
        *switches = ordered;
    }
    config::canonicalize(props);
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    reorder(props, ORDER);
}

fn block_value(block: [bool; 4]) -> Value {
    Value::Object(
        BLOCK_KEYS
            .iter()
            .zip(block)
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect(),
    )
}

fn observe(name: &str, region: &str, props: Props) -> Observed {
    let mut attrs = Props::new();
    attrs.insert("name".into(), json!(name));
    attrs.insert("arn".into(), json!(bucket_arn(name)));
    attrs.insert(
        "regional_domain_name".into(),
        json!(format!("{name}.s3.{region}.amazonaws.com")),
    );
    attrs.insert(
        "domain_name".into(),
        json!(format!("{name}.s3.amazonaws.com")),
    );
    if props.contains_key("website") {
        attrs.insert(
            "website_endpoint".into(),
            json!(config::website_endpoint(name, region)),
        );
        attrs.insert(
            "website_domain".into(),
            json!(config::website_domain(region)),
        );
    }
    Observed {
        id: name.to_string(),
        props,
        attrs,
    }
}

pub(crate) fn bucket_arn(name: &str) -> String {
    format!("arn:aws:s3:::{name}")
}

/// Whether a resource error carries this service error code.
pub(crate) fn is_code(err: &ResourceError, code: &str) -> bool {
    err.code.as_deref() == Some(code)
}

/// What is wrong with a bucket name, if anything (AWS's general purpose bucket rules).
pub(crate) fn bucket_name_problem(name: &str) -> Option<String> {
    let len = name.len();
    if !(3..=63).contains(&len) {
        return Some(format!("a bucket name has 3 to 63 characters, not {len}"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Some(format!(
            "{name:?} has {c:?}: a bucket name has only lowercase letters, digits, dots and hyphens"
        ));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return Some(format!(
            "{name:?}: a bucket name starts and ends with a letter or digit"
        ));
    }
    if name.contains("..") {
        return Some(format!("{name:?}: a bucket name has no two dots in a row"));
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Some(format!(
            "{name:?}: a bucket name cannot look like an IP address"
        ));
    }
    const RESERVED_PREFIXES: &[&str] = &["xn--", "sthree-", "amzn-s3-demo-"];
    const RESERVED_SUFFIXES: &[&str] = &["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
    if let Some(p) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(*p)) {
        return Some(format!(
            "{name:?}: AWS reserves bucket names starting with {p:?}"
        ));
    }
    if let Some(s) = RESERVED_SUFFIXES.iter().find(|s| name.ends_with(*s)) {
        return Some(format!(
            "{name:?}: AWS reserves bucket names ending with {s:?}"
        ));
    }
    None
}
