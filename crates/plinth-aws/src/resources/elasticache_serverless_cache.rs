//! `elasticache.serverless_cache`: a Valkey, Redis or Memcached cache without nodes, billed
//! by the data it holds and the ECPUs its requests use, with optional limits on both.
//!
//! AWS chooses the subnets (three of the default VPC's) and the security group (the VPC's
//! default) when the stack does not: `read` reports what the cache really has, so a stack
//! that leaves them to AWS never sees a difference. Encryption in transit is always on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_elasticache::types::{
    CacheUsageLimits, DataStorage, DataStorageUnit, EcpuPerSecond, ServerlessCache,
};
use aws_sdk_elasticache::Client;
use plinth_core::cost::{count_text, price_text, CostContext, CostLine};
use plinth_core::plan::planner::fill_computed;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, reorder, str_of, Props};
use serde_json::{json, Map, Value};
use tracing::debug;

use crate::resources::elasticache_common::{self as common, known_str, SendExt};
use crate::resources::tags;
use crate::wait;
use crate::Aws;

const ENGINES: &[&str] = &["valkey", "redis", "memcached"];
const MAX_NAME: usize = 40;
/// AWS's ceilings: a limit of these, without a minimum, is no limit.
const MAX_STORAGE_GB: i32 = 5000;
const MAX_ECPU: i32 = 15_000_000;
/// A new serverless cache is up in a few minutes; a deleted one goes in a few more.
const READY_LIMIT: Duration = Duration::from_secs(30 * 60);
const DELETE_LIMIT: Duration = Duration::from_secs(30 * 60);
const ORDER: &[&str] = &[
    "name",
    "description",
    "engine",
    "major_engine_version",
    "limits",
    "kms_key",
    "subnet_ids",
    "security_group_ids",
    "user_group",
    "snapshot_retention_limit",
    "daily_snapshot_time",
    "tags",
];

/// The `elasticache.serverless_cache` resource type.
pub struct ServerlessCacheType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl ServerlessCacheType {
    pub fn new(aws: Arc<Aws>) -> ServerlessCacheType {
        ServerlessCacheType {
            aws,
            schema: schema(),
        }
    }
}

fn range_shape(min: i64, max: i64, what: &'static str) -> Shape {
    Shape::Object(vec![
        Prop::new("min", Shape::int_range(min, max)).doc(what),
        Prop::new("max", Shape::int_range(min, max)).doc(what),
    ])
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "elasticache.serverless_cache",
        description: "An ElastiCache Serverless cache (Valkey, Redis or Memcached): billed by data and requests, no nodes",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("name", Shape::String)
                .prefixable(MAX_NAME)
                .required()
                .replaces()
                .unique()
                .known_as(&["serverless_cache_name"])
                .doc("the cache's name, unique in the region: lowercase letters, digits and hyphens"),
            Prop::new("description", Shape::String).doc("default \"\""),
            Prop::new("engine", Shape::Enum(ENGINES))
                .required()
                .replaces()
                .doc("valkey (the cheapest), redis or memcached"),
            Prop::new("major_engine_version", Shape::String)
                .computed()
                .doc("e.g. 8 for Valkey; default AWS's newest; a higher one upgrades in place"),
            Prop::new(
                "limits",
                Shape::Object(vec![
                    Prop::new("storage_gb", range_shape(1, 5000, "GB"))
                        .known_as(&["data_storage"])
                        .doc("data kept: writes beyond max are refused; min is billed at least"),
                    Prop::new("ecpu_per_second", range_shape(1000, 15_000_000, "ECPUs a second"))
                        .doc("request throughput: beyond max requests are throttled; min is kept ready and billed"),
                ]),
            )
            .known_as(&["cache_usage_limits"])
            .doc("caps (and floors) of storage and throughput; default none: the cache grows as used"),
            Prop::new("kms_key", Shape::String)
                .replaces()
                .holds_referent()
                .known_as(&["kms_key_id"])
                .doc("a KMS key for data at rest; default an AWS owned key"),
            Prop::new("subnet_ids", Shape::list(Shape::String))
                .computed()
                .replaces()
                .doc("the subnets of the cache's endpoints (2 or more, in different zones); default three of the default VPC's"),
            Prop::new("security_group_ids", Shape::list(Shape::String))
                .computed()
                .holds_referent()
                .doc("default the VPC's default group"),
            Prop::new("user_group", Shape::String)
                .holds_referent()
                .known_as(&["user_group_id"])
                .doc("an elasticache.user_group: only its users may sign in (Valkey and Redis)"),
            Prop::new("snapshot_retention_limit", Shape::int_range(0, 35))
                .doc("days of daily snapshots kept (Valkey and Redis); default 0"),
            Prop::new("daily_snapshot_time", Shape::String)
                .computed()
                .doc("when the daily snapshot starts, HH:MM in UTC"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the cache"),
        ]),
        attributes: vec![
            Attr::new("name", Shape::String, "the cache's name"),
            Attr::new("arn", Shape::String, "the cache's ARN"),
            Attr::new("endpoint", Shape::String, "the address clients connect to (TLS)"),
            Attr::new("port", Shape::Integer { min: None, max: None }, "6379, or 11211 for Memcached"),
            Attr::new(
                "reader_endpoint",
                Shape::String,
                "the address for reads that may lag a little",
            ),
            Attr::new(
                "reader_port",
                Shape::Integer { min: None, max: None },
                "6380, or 11212 for Memcached",
            ),
        ],
    }
}

#[async_trait]
impl ResourceType for ServerlessCacheType {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(&self, props: &Props, ctx: &CostContext) -> Vec<CostLine> {
        serverless_cost(props, ctx)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(problem) =
            known_str(props, "name").and_then(|n| common::identifier_problem(n, MAX_NAME))
        {
            issues.push(PropIssue::at(&["name"], problem));
        }
        let memcached = known_str(props, "engine") == Some("memcached");
        for key in [
            "user_group",
            "snapshot_retention_limit",
            "daily_snapshot_time",
        ] {
            if memcached && props.contains_key(key) {
                issues.push(PropIssue::at(
                    &[key],
                    format!("{key} is for Valkey and Redis; a Memcached cache has none"),
                ));
            }
        }
        if let Some(Value::Object(limits)) = props.get("limits") {
            for key in ["storage_gb", "ecpu_per_second"] {
                let range = limits.get(key).filter(|v| !contains_unknown(v));
                let bound = |b: &str| range.and_then(|r| r.get(b)).and_then(Value::as_i64);
                if let (Some(min), Some(max)) = (bound("min"), bound("max")) {
                    if min > max {
                        issues.push(PropIssue::at(
                            &["limits", key, "min"],
                            format!("min ({min}) is above max ({max})"),
                        ));
                    }
                }
            }
        }
        if let Some(Value::Array(ids)) = props.get("subnet_ids") {
            if ids.len() < 2 && !ids.iter().any(contains_unknown) {
                issues.push(PropIssue::at(
                    &["subnet_ids"],
                    "a serverless cache needs subnets in at least two Availability Zones",
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
        plinth_core::value::pick(props, &["name"])
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.elasticache(&ctx.region);
        let Some(cache) = describe(&client, id).await? else {
            return Ok(None);
        };
        if cache.status() == Some("deleting") {
            return Ok(None);
        }
        let Some(tags) = common::tags_unless_gone(&client, arn_of(&cache)?).await? else {
            return Ok(None);
        };
        observe(&cache, tags).map(Some)
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
        crate::arn::name_after(arn, "elasticache", "serverlesscache:")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.elasticache(&ctx.region);
        let name = str_of(props, "name")
            .ok_or_else(|| ResourceError::invalid("elasticache.serverless_cache needs a name"))?;
        debug!(cache = name, "CreateServerlessCache");
        let created = client
            .create_serverless_cache()
            .serverless_cache_name(name)
            .description(str_of(props, "description").unwrap_or_default())
            .engine(str_of(props, "engine").unwrap_or("valkey"))
            .set_major_engine_version(str_of(props, "major_engine_version").map(str::to_string))
            .set_cache_usage_limits(usage_limits(props)?)
            .set_kms_key_id(str_of(props, "kms_key").map(str::to_string))
            .set_subnet_ids(strings(props, "subnet_ids"))
            .set_security_group_ids(strings(props, "security_group_ids"))
            .set_user_group_id(str_of(props, "user_group").map(str::to_string))
            .set_snapshot_retention_limit(snapshot_days(props)?)
            .set_daily_snapshot_time(str_of(props, "daily_snapshot_time").map(str::to_string))
            .set_tags(Some(common::tag_list(props)).filter(|t| !t.is_empty()))
            .send()
            .await
            .classified();
        if let Err(err) = created {
            let what = format!("a serverless cache named {name}");
            let found = crate::errors::adopt_if_ours(
                err,
                &["ServerlessCacheAlreadyExistsFault"],
                &what,
                || self.find(ctx, props),
            )
            .await?;
            let mut after = props.clone();
            fill_computed(&self.schema, &mut after, &found.props);
            return self.update(ctx, name, &found.props, &after).await;
        }
        let cache = wait_available(ctx, &client, name).await?;
        observe(&cache, tags::user_tags(props))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.elasticache(&ctx.region);
        let changed = |key: &str| before.get(key) != after.get(key);
        let mut request = client.modify_serverless_cache().serverless_cache_name(id);
        let mut any = false;
        if changed("description") {
            request = request.description(str_of(after, "description").unwrap_or_default());
            any = true;
        }
        if changed("major_engine_version") {
            request = request.set_major_engine_version(
                str_of(after, "major_engine_version").map(str::to_string),
            );
            any = true;
        }
        if changed("limits") {
            request = request.cache_usage_limits(changed_limits(before, after)?);
            any = true;
        }
        if changed("security_group_ids") && after.contains_key("security_group_ids") {
            request = request.set_security_group_ids(strings(after, "security_group_ids"));
            any = true;
        }
        if changed("user_group") {
            request = match str_of(after, "user_group") {
                Some(group) => request.user_group_id(group),
                None => request.remove_user_group(true),
            };
            any = true;
        }
        if changed("snapshot_retention_limit") {
            request =
                request.set_snapshot_retention_limit(Some(snapshot_days(after)?.unwrap_or(0)));
            any = true;
        }
        if changed("daily_snapshot_time") && after.contains_key("daily_snapshot_time") {
            request = request
                .set_daily_snapshot_time(str_of(after, "daily_snapshot_time").map(str::to_string));
            any = true;
        }
        if any {
            debug!(cache = id, "ModifyServerlessCache");
            let request = &request;
            // One change at a time: a cache still modifying is asked again once available.
            wait::retry_while_busy(
                ctx,
                &format!("changing serverless cache {id}"),
                READY_LIMIT,
                || async move { request.clone().send().await.classified().map(|_| ()) },
            )
            .await?;
        }
        let cache = wait_available(ctx, &client, id).await?;
        common::update_tags(&client, arn_of(&cache)?, before, after).await?;
        observe(&cache, tags::user_tags(after))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = &self.aws.elasticache(&ctx.region);
        let what = format!("deleting serverless cache {id}");
        let reason = "ElastiCache deletes the serverless cache in the background";
        let delete = || async move {
            client
                .delete_serverless_cache()
                .serverless_cache_name(id)
                .send()
                .await
                .classified()
                .map(|_| ())
        };
        let status = || async move {
            Ok(describe(client, id)
                .await?
                .map(|c| c.status().unwrap_or("deleting").to_string()))
        };
        common::delete_in_background(ctx, (&what, reason), DELETE_LIMIT, delete, status).await
    }
}

/// Storage at least the assumed GB (and at least the limits' minimum, which AWS bills
/// whether used or not) by the hour, and ECPUs per million.
fn serverless_cost(props: &Props, ctx: &CostContext) -> Vec<CostLine> {
    let engine = str_of(props, "engine").unwrap_or("valkey");
    let price = |key: &str| ctx.regional_price(&["elasticache_serverless", engine, key]);
    let (Ok(gb_hour), Ok(per_million), Ok(minimum_gb)) = (
        price("storage_gb_hour"),
        price("ecpu_per_million"),
        price("minimum_storage_gb"),
    ) else {
        return vec![CostLine::unknown(
            "serverless cache",
            format!("no serverless price for {engine} in {}", ctx.region),
        )];
    };
    let floor = props
        .get("limits")
        .and_then(|l| l.get("storage_gb"))
        .and_then(|s| s.get("min"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let gb = ctx
        .usage("elasticache.serverless_storage_gb")
        .max(floor)
        .max(minimum_gb);
    // A minimum throughput is kept ready, and billed, all month.
    let ecpu_floor = props
        .get("limits")
        .and_then(|l| l.get("ecpu_per_second"))
        .and_then(|s| s.get("min"))
        .and_then(Value::as_f64)
        .map(|per_second| per_second * 3600.0 * 730.0 / 1_000_000.0)
        .unwrap_or(0.0);
    let ecpus = ctx
        .usage("elasticache.serverless_ecpu_millions")
        .max(ecpu_floor);
    vec![
        CostLine::per_hour(
            format!(
                "{} GB stored × ${}/GB-hour (at least {} GB billed)",
                count_text(gb),
                price_text(gb_hour),
                count_text(minimum_gb)
            ),
            gb * gb_hour,
        ),
        CostLine::usage_per_month(
            format!(
                "{} million ECPUs × ${}/million",
                count_text(ecpus),
                price_text(per_million)
            ),
            ecpus * per_million,
        ),
    ]
}

fn strings(props: &Props, key: &str) -> Option<Vec<String>> {
    props.get(key).and_then(Value::as_array).map(|list| {
        list.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}

fn snapshot_days(props: &Props) -> ResourceResult<Option<i32>> {
    props
        .get("snapshot_retention_limit")
        .and_then(Value::as_i64)
        .map(|d| {
            i32::try_from(d)
                .map_err(|_| ResourceError::invalid("snapshot_retention_limit is out of range"))
        })
        .transpose()
}

fn bound(range: Option<&Value>, key: &str) -> Option<i64> {
    range.and_then(|r| r.get(key)).and_then(Value::as_i64)
}

fn int32(value: Option<i64>) -> ResourceResult<Option<i32>> {
    value
        .map(|v| {
            i32::try_from(v)
                .map_err(|_| ResourceError::invalid(format!("limit {v} is out of range")))
        })
        .transpose()
}

fn usage_limits(props: &Props) -> ResourceResult<Option<CacheUsageLimits>> {
    let Some(limits) = props.get("limits").and_then(Value::as_object) else {
        return Ok(None);
    };
    let storage = limits.get("storage_gb");
    let ecpu = limits.get("ecpu_per_second");
    let storage = storage
        .map(|s| {
            Ok::<_, ResourceError>(
                DataStorage::builder()
                    .unit(DataStorageUnit::Gb)
                    .set_minimum(int32(bound(Some(s), "min"))?)
                    .set_maximum(int32(bound(Some(s), "max"))?)
                    .build(),
            )
        })
        .transpose()?;
    let ecpu = ecpu
        .map(|e| {
            Ok::<_, ResourceError>(
                EcpuPerSecond::builder()
                    .set_minimum(int32(bound(Some(e), "min"))?)
                    .set_maximum(int32(bound(Some(e), "max"))?)
                    .build(),
            )
        })
        .transpose()?;
    Ok(Some(
        CacheUsageLimits::builder()
            .set_data_storage(storage)
            .set_ecpu_per_second(ecpu)
            .build(),
    ))
}

/// The limits to send: the stack's, and for a part it no longer has, AWS's ceiling (AWS
/// keeps a part that is not sent, so leaving it out would keep the old cap).
fn changed_limits(before: &Props, after: &Props) -> ResourceResult<CacheUsageLimits> {
    let limits = usage_limits(after)?.unwrap_or_else(|| CacheUsageLimits::builder().build());
    let had = |key: &str| before.get("limits").and_then(|l| l.get(key)).is_some();
    let mut builder = CacheUsageLimits::builder()
        .set_data_storage(limits.data_storage().cloned())
        .set_ecpu_per_second(limits.ecpu_per_second().cloned());
    if limits.data_storage().is_none() && had("storage_gb") {
        builder = builder.data_storage(
            DataStorage::builder()
                .unit(DataStorageUnit::Gb)
                .maximum(MAX_STORAGE_GB)
                .build(),
        );
    }
    if limits.ecpu_per_second().is_none() && had("ecpu_per_second") {
        builder = builder.ecpu_per_second(EcpuPerSecond::builder().maximum(MAX_ECPU).build());
    }
    Ok(builder.build())
}

fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props.entry("description").or_insert_with(|| json!(""));
    if let Some(Value::Object(limits)) = props.get_mut("limits") {
        limits.retain(|_, v| !v.is_null());
        for range in limits.values_mut() {
            if let Value::Object(r) = range {
                r.retain(|_, v| !v.is_null());
                reorder(r, &["min", "max"]);
            }
        }
        reorder(limits, &["storage_gb", "ecpu_per_second"]);
        if limits.is_empty() {
            props.remove("limits");
        }
    }
    let memcached = props.get("engine").and_then(Value::as_str) == Some("memcached");
    if !memcached {
        props.entry("snapshot_retention_limit").or_insert(json!(0));
    }
    for key in ["subnet_ids", "security_group_ids"] {
        if let Some(Value::Array(ids)) = props.get_mut(key) {
            if !ids.iter().any(contains_unknown) {
                ids.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                ids.dedup();
            }
        }
    }
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    reorder(props, ORDER);
}

async fn describe(client: &Client, name: &str) -> ResourceResult<Option<ServerlessCache>> {
    match client
        .describe_serverless_caches()
        .serverless_cache_name(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(out
            .serverless_caches()
            .iter()
            .find(|c| c.serverless_cache_name() == Some(name))
            .cloned()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Waits until the cache is `available`; `create-failed` is the create's failure.
async fn wait_available(
    ctx: &OpContext,
    client: &Client,
    name: &str,
) -> ResourceResult<ServerlessCache> {
    let what = format!("serverless cache {name}");
    let what = &what;
    let describe = || async move {
        match describe(client, name).await? {
            Some(cache) if cache.status() == Some("create-failed") => Err(ResourceError::other(
                format!("AWS could not create {what} (create-failed): delete it and apply again"),
            )),
            found => Ok(found),
        }
    };
    common::wait_for_status(
        ctx,
        what,
        READY_LIMIT,
        ("available", ServerlessCache::status),
        describe,
    )
    .await
}

fn arn_of(cache: &ServerlessCache) -> ResourceResult<&str> {
    cache.arn().ok_or_else(|| {
        ResourceError::other("DescribeServerlessCaches returned a cache without an ARN")
    })
}

fn range_json(min: Option<i32>, max: Option<i32>) -> Value {
    let mut range = Map::new();
    if let Some(min) = min {
        range.insert("min".into(), json!(min));
    }
    if let Some(max) = max {
        range.insert("max".into(), json!(max));
    }
    Value::Object(range)
}

fn observe(cache: &ServerlessCache, tags: BTreeMap<String, String>) -> ResourceResult<Observed> {
    let name = cache.serverless_cache_name().ok_or_else(|| {
        ResourceError::other("DescribeServerlessCaches returned a cache without a name")
    })?;
    let mut props = Props::new();
    props.insert("name".into(), json!(name));
    props.insert(
        "description".into(),
        json!(cache.description().unwrap_or_default()),
    );
    props.insert("engine".into(), json!(cache.engine().unwrap_or("valkey")));
    if let Some(version) = cache.major_engine_version() {
        props.insert("major_engine_version".into(), json!(version));
    }
    if let Some(limits) = cache.cache_usage_limits() {
        let mut block = Map::new();
        let unlimited = |min: Option<i32>, max: Option<i32>, ceiling: i32| {
            min.is_none() && max.is_none_or(|m| m >= ceiling)
        };
        if let Some(s) = limits.data_storage() {
            if !unlimited(s.minimum(), s.maximum(), MAX_STORAGE_GB) {
                block.insert("storage_gb".into(), range_json(s.minimum(), s.maximum()));
            }
        }
        if let Some(e) = limits.ecpu_per_second() {
            if !unlimited(e.minimum(), e.maximum(), MAX_ECPU) {
                block.insert(
                    "ecpu_per_second".into(),
                    range_json(e.minimum(), e.maximum()),
                );
            }
        }
        props.insert("limits".into(), Value::Object(block));
    }
    if let Some(key) = cache.kms_key_id() {
        props.insert("kms_key".into(), json!(key));
    }
    props.insert("subnet_ids".into(), json!(cache.subnet_ids()));
    props.insert(
        "security_group_ids".into(),
        json!(cache.security_group_ids()),
    );
    if let Some(group) = cache.user_group_id().filter(|g| !g.is_empty()) {
        props.insert("user_group".into(), json!(group));
    }
    // Memcached has no snapshots, whatever AWS reports for them.
    if cache.engine() != Some("memcached") {
        if let Some(days) = cache.snapshot_retention_limit() {
            props.insert("snapshot_retention_limit".into(), json!(days));
        }
        if let Some(time) = cache.daily_snapshot_time() {
            props.insert("daily_snapshot_time".into(), json!(time));
        }
    }
    props.insert("tags".into(), tags::tags_value(tags));
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("name".into(), json!(name));
    attrs.insert("arn".into(), json!(cache.arn()));
    if let Some(endpoint) = cache.endpoint() {
        attrs.insert("endpoint".into(), json!(endpoint.address()));
        attrs.insert("port".into(), json!(endpoint.port()));
    }
    if let Some(reader) = cache.reader_endpoint() {
        attrs.insert("reader_endpoint".into(), json!(reader.address()));
        attrs.insert("reader_port".into(), json!(reader.port()));
    }
    Ok(Observed {
        id: name.to_string(),
        props,
        attrs,
    })
}
