//! `dynamodb.table`: a DynamoDB table with its keys, billing, secondary indexes, stream, TTL,
//! point-in-time recovery, deletion protection, table class and tags.
//!
//! Canonical form: enum values are the lowercase snake_case of the API's (`keys_only`), except
//! billing (`on_demand` for `PAY_PER_REQUEST`); every default is filled in; index lists are
//! sorted by name and `non_key_attributes` sorted; empty lists and unset optionals are absent.
//! [`canonicalize`] produces it for desired properties and for what `read` builds alike, so the
//! two shapes cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_table::builders::UpdateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction,
    DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndex, GlobalSecondaryIndexDescription,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, LocalSecondaryIndex,
    PointInTimeRecoverySpecification, PointInTimeRecoveryStatus, Projection, ProjectionType,
    ProvisionedThroughput, ProvisionedThroughputDescription, ScalarAttributeType, SseSpecification,
    SseStatus, SseType, StreamSpecification, StreamViewType, TableClass, TableDescription,
    TableStatus, Tag, TimeToLiveSpecification, TimeToLiveStatus, UpdateGlobalSecondaryIndexAction,
};
use aws_sdk_dynamodb::Client;
use aws_smithy_types::error::operation::BuildError;
use futures::{stream, FutureExt, StreamExt, TryStreamExt};
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{reorder, str_of, PathSeg, Props, UNKNOWN};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::debug;

use crate::errors::{self, SendExt};
use crate::resources::dynamodb_autoscaling as autoscaling;
use crate::resources::dynamodb_replicas as replicas;
use crate::resources::tags;
use crate::tagging;
use crate::wait::{self, Poll};
use crate::Aws;

/// Creating, changing or deleting a table (with index backfills) can take long on real AWS.
const TABLE_LIMIT: Duration = Duration::from_secs(30 * 60);
/// CreateTable's answer when the name is in use: the table exists (or is being created).
const TABLE_EXISTS: &str = "ResourceInUseException";
/// How many tables of a batch are read at the same time (each is three calls).
const BATCH_READS_AT_ONCE: usize = 16;

const KEY_TYPES: &[&str] = ScalarAttributeType::values();
// Plinth writes these in lower case (and billing modes by their console names); each maps
// to the SDK's value, which a test checks both ways.
pub const BILLING_MODES: &[&str] = &["on_demand", "provisioned"];
pub const PROJECTIONS: &[&str] = &["all", "keys_only", "include"];
pub const STREAM_VIEWS: &[&str] = &["new_image", "old_image", "new_and_old_images", "keys_only"];
pub const TABLE_CLASSES: &[&str] = &["standard", "standard_infrequent_access"];

/// The `dynamodb.table` resource type.
pub struct DynamodbTable {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl DynamodbTable {
    pub fn new(aws: Arc<Aws>) -> DynamodbTable {
        DynamodbTable {
            aws,
            schema: table_schema(),
        }
    }
}

fn key_shape() -> Shape {
    Shape::Object(vec![
        Prop::new("name", Shape::String)
            .required()
            .known_as(&["attribute_name"])
            .doc("attribute name"),
        Prop::new("type", Shape::Enum(KEY_TYPES))
            .required()
            .known_as(&["attribute_type"])
            .doc("S (string), N (number) or B (binary)"),
    ])
}

fn capacity_shape() -> Shape {
    Shape::Integer {
        min: Some(1),
        max: None,
    }
}

fn projection_props() -> Vec<Prop> {
    vec![
        Prop::new("projection", Shape::Enum(PROJECTIONS))
            .known_as(&["projection_type"])
            .doc("attributes copied into the index; default all"),
        Prop::new("non_key_attributes", Shape::list(Shape::String))
            .doc("extra attributes projected with projection: include"),
    ]
}

fn gsi_shape() -> Shape {
    let mut props = vec![
        Prop::new("name", Shape::String)
            .required()
            .known_as(&["index_name"]),
        Prop::new("partition_key", key_shape())
            .required()
            .known_as(&["hash_key"]),
        Prop::new("sort_key", key_shape()).known_as(&["range_key"]),
    ];
    props.extend(projection_props());
    props.push(
        Prop::new("read_capacity", capacity_shape())
            .known_as(&["read_capacity_units"])
            .doc("required on provisioned tables"),
    );
    props.push(
        Prop::new("write_capacity", capacity_shape())
            .known_as(&["write_capacity_units"])
            .doc("required on provisioned tables"),
    );
    props.push(autoscaling::prop(
        "let AWS scale the index's capacity between min and max (its read_capacity/write_capacity are then left out)",
    ));
    Shape::Object(props)
}

fn lsi_shape() -> Shape {
    let mut props = vec![
        Prop::new("name", Shape::String)
            .required()
            .known_as(&["index_name"]),
        Prop::new("sort_key", key_shape())
            .required()
            .known_as(&["range_key"]),
    ];
    props.extend(projection_props());
    Shape::Object(props)
}

fn table_schema() -> TypeSchema {
    TypeSchema {
        type_name: "dynamodb.table",
        description: "A DynamoDB table: keys, billing, indexes, stream, TTL, PITR, protection",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("name", Shape::String)
                .prefixable(255)
                .required()
                .replaces()
                .known_as(&["table_name"])
                .unique()
                .doc("table name, unique in the account and region"),
            Prop::new("partition_key", key_shape())
                .required()
                .replaces()
                .known_as(&["hash_key"])
                .doc("the partition (hash) key"),
            Prop::new("sort_key", key_shape())
                .replaces()
                .known_as(&["range_key"])
                .doc("the sort (range) key, if any"),
            Prop::new("billing_mode", Shape::Enum(BILLING_MODES))
                .doc("on_demand (default) or provisioned"),
            Prop::new("read_capacity", capacity_shape())
                .known_as(&["read_capacity_units"])
                .doc("read capacity units; required with provisioned billing"),
            Prop::new("write_capacity", capacity_shape())
                .known_as(&["write_capacity_units"])
                .doc("write capacity units; required with provisioned billing"),
            autoscaling::prop(
                "let AWS scale the table's provisioned capacity between min and max (read_capacity/write_capacity are then left out)",
            ),
            Prop::new("global_secondary_indexes", Shape::list(gsi_shape()))
                .known_as(&["global_secondary_index"])
                .doc("global secondary indexes; added and removed in place, one at a time"),
            Prop::new("local_secondary_indexes", Shape::list(lsi_shape()))
                .replaces()
                .known_as(&["local_secondary_index"])
                .doc("local secondary indexes; need a sort_key; only at creation"),
            Prop::new("stream_view_type", Shape::Enum(STREAM_VIEWS))
                .doc("enables a stream with this view; absent means no stream"),
            Prop::new("ttl_attribute", Shape::String)
                .known_as(&["ttl", "time_to_live"])
                .doc("attribute holding the expiry time; absent means TTL is off"),
            Prop::new("point_in_time_recovery", Shape::Bool)
                .known_as(&["point_in_time_recovery_enabled"])
                .doc("continuous backups; default false"),
            Prop::new("deletion_protection", Shape::Bool)
                .known_as(&["deletion_protection_enabled"])
                .doc("refuse deletes while true; default false"),
            Prop::new("table_class", Shape::Enum(TABLE_CLASSES))
                .doc("standard (default) or standard_infrequent_access"),
            Prop::new("encryption", Shape::Enum(ENCRYPTIONS))
                .known_as(&["server_side_encryption"])
                .doc("aws_owned (default, free) or kms (a KMS key: kms_key, or the AWS managed aws/dynamodb)"),
            Prop::new("kms_key", Shape::String)
                .computed()
                .holds_referent()
                .known_as(&["kms_key_arn"])
                .doc("with encryption: kms, the key's ARN; default the AWS managed key"),
            replicas::prop(),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags on the table"),
        ]),
        attributes: vec![
            Attr::new("name", Shape::String, "the table name"),
            Attr::new("arn", Shape::String, "the table ARN"),
            Attr::new(
                "stream_arn",
                Shape::String,
                "the latest stream's ARN; absent without a stream",
            ),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical form

/// Fills defaults and sorts sets, for desired properties and read results alike.
pub fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    for (key, default) in [
        ("billing_mode", json!("on_demand")),
        ("point_in_time_recovery", json!(false)),
        ("deletion_protection", json!(false)),
        ("table_class", json!("standard")),
        ("encryption", json!("aws_owned")),
    ] {
        props.entry(key).or_insert(default);
    }
    autoscaling::canonicalize(props);
    replicas::canonicalize(props);
    for key in ["global_secondary_indexes", "local_secondary_indexes"] {
        canonical_indexes(props, key);
    }
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    in_order(props, TABLE_ORDER);
}

/// Property order in canonical form (the schema's), so canonical props serialise identically.
const TABLE_ORDER: &[&str] = &[
    "name",
    "partition_key",
    "sort_key",
    "billing_mode",
    "read_capacity",
    "write_capacity",
    "autoscaling",
    "global_secondary_indexes",
    "local_secondary_indexes",
    "stream_view_type",
    "ttl_attribute",
    "point_in_time_recovery",
    "deletion_protection",
    "table_class",
    "encryption",
    "kms_key",
    "replicas",
    "tags",
];
/// Who holds the key tables are encrypted with: AWS (free), or KMS (a key billed per request).
const ENCRYPTIONS: &[&str] = &["aws_owned", "kms"];
const INDEX_ORDER: &[&str] = &[
    "name",
    "partition_key",
    "sort_key",
    "projection",
    "non_key_attributes",
    "read_capacity",
    "write_capacity",
    "autoscaling",
];
const KEY_ORDER: &[&str] = &["name", "type"];

/// Reorders a table's or an index's keys, and those of its key objects.
fn in_order(map: &mut Props, order: &[&str]) {
    reorder(map, order);
    for key in ["partition_key", "sort_key"] {
        if let Some(Value::Object(k)) = map.get_mut(key) {
            reorder(k, KEY_ORDER);
        }
    }
}

fn canonical_indexes(props: &mut Props, key: &str) {
    let Some(Value::Array(list)) = props.get_mut(key) else {
        return;
    };
    for index in list.iter_mut() {
        if let Value::Object(map) = index {
            map.retain(|_, v| !v.is_null());
            map.entry("projection").or_insert(json!("all"));
            canonical_non_key(map);
            autoscaling::canonicalize(map);
            in_order(map, INDEX_ORDER);
        }
    }
    list.sort_by(|a, b| index_name(a).cmp(index_name(b)));
    if list.is_empty() {
        props.remove(key);
    }
}

/// `non_key_attributes` is a set: sorted, and absent rather than empty.
fn canonical_non_key(index: &mut Props) {
    let Some(Value::Array(names)) = index.get_mut("non_key_attributes") else {
        return;
    };
    names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    names.dedup();
    if names.is_empty() {
        index.remove("non_key_attributes");
    }
}

fn index_name(index: &Value) -> &str {
    index.get("name").and_then(Value::as_str).unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Semantic checks

/// False for a value that is, or contains, the not-yet-known sentinel.
fn known(text: &str) -> bool {
    !text.contains(UNKNOWN)
}

fn key(name: &str) -> PathSeg {
    PathSeg::Key(name.to_string())
}

fn issue(at: Vec<PathSeg>, message: impl Into<String>) -> PropIssue {
    PropIssue {
        path: at,
        message: message.into(),
    }
}

/// The objects of a list property with their paths, skipping anything not yet known.
fn indexes<'a>(props: &'a Props, list: &str) -> Vec<(Vec<PathSeg>, &'a Props)> {
    let Some(Value::Array(items)) = props.get(list) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.as_object()
                .map(|m| (vec![key(list), PathSeg::Index(i)], m))
        })
        .collect()
}

/// Capacities exist exactly when billing is provisioned, on the table and on every GSI.
fn check_capacity(props: &Props, issues: &mut Vec<PropIssue>) {
    let billing = str_of(props, "billing_mode").unwrap_or("on_demand");
    if !known(billing) {
        return;
    }
    let provisioned = billing == "provisioned";
    let mut places = vec![(Vec::new(), props, "the table")];
    for (at, gsi) in indexes(props, "global_secondary_indexes") {
        places.push((at, gsi, "each global secondary index"));
    }
    for (at, map, what) in places {
        issues.extend(autoscaling::check(&at, map, provisioned));
        let scaled = autoscaling::scaled_dimensions(map);
        for cap in ["read_capacity", "write_capacity"] {
            if scaled.iter().any(|d| autoscaling::capacity_key(d) == cap) {
                continue;
            }
            let mut at = at.clone();
            at.push(key(cap));
            match (provisioned, map.contains_key(cap)) {
                (true, false) => issues.push(issue(
                    at,
                    format!("{cap} is required for {what} when billing_mode is provisioned"),
                )),
                (false, true) => issues.push(issue(
                    at,
                    format!("{cap} is only valid with billing_mode: provisioned"),
                )),
                _ => {}
            }
        }
    }
}

/// `non_key_attributes` goes with `projection: include` and only with it.
fn check_projections(props: &Props, issues: &mut Vec<PropIssue>) {
    let all = indexes(props, "global_secondary_indexes")
        .into_iter()
        .chain(indexes(props, "local_secondary_indexes"));
    for (at, index) in all {
        let projection = str_of(index, "projection").unwrap_or("all");
        if !known(projection) {
            continue;
        }
        let non_key = index
            .get("non_key_attributes")
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty());
        let mut at = at;
        at.push(key("non_key_attributes"));
        if projection == "include" && !non_key {
            issues.push(issue(
                at,
                "non_key_attributes is required when projection is include",
            ));
        } else if projection != "include" && non_key {
            issues.push(issue(
                at,
                "non_key_attributes is only valid with projection: include",
            ));
        }
    }
}

/// Index names share one namespace; local indexes need a table sort key.
/// DynamoDB reports the key as its ARN, so the stack names it that way too.
fn check_encryption(props: &Props, issues: &mut Vec<PropIssue>) {
    let Some(key) = props
        .get("kms_key")
        .and_then(Value::as_str)
        .filter(|k| known(k))
    else {
        return;
    };
    if str_of(props, "encryption") != Some("kms") {
        issues.push(issue(
            vec![self::key("kms_key")],
            "a KMS key goes with `encryption: kms`",
        ));
    } else if !(key.starts_with("arn:") && key.contains(":key/")) {
        issues.push(issue(
            vec![self::key("kms_key")],
            format!("{key:?}: give the key's ARN (${{kms.key.NAME.arn}}), as DynamoDB reports it"),
        ));
    }
}

fn check_index_names(props: &Props, issues: &mut Vec<PropIssue>) {
    let lsis = indexes(props, "local_secondary_indexes");
    if !lsis.is_empty() && !props.contains_key("sort_key") {
        issues.push(issue(
            vec![key("local_secondary_indexes")],
            "local secondary indexes need the table to have a sort_key",
        ));
    }
    let mut seen = BTreeSet::new();
    let all = indexes(props, "global_secondary_indexes")
        .into_iter()
        .chain(lsis);
    for (mut at, index) in all {
        let Some(name) = str_of(index, "name").filter(|n| known(n)) else {
            continue;
        };
        if !seen.insert(name.to_string()) {
            at.push(key("name"));
            issues.push(issue(at, format!("index name {name} is used twice")));
        }
    }
}

/// Every key object of the table and its indexes, with its path.
fn all_keys(props: &Props) -> Vec<(Vec<PathSeg>, &Props)> {
    let mut owners = vec![(Vec::new(), props, &["partition_key", "sort_key"][..])];
    for (at, gsi) in indexes(props, "global_secondary_indexes") {
        owners.push((at, gsi, &["partition_key", "sort_key"][..]));
    }
    for (at, lsi) in indexes(props, "local_secondary_indexes") {
        owners.push((at, lsi, &["sort_key"][..]));
    }
    let mut keys = Vec::new();
    for (at, owner, fields) in owners {
        for field in fields {
            if let Some(Value::Object(k)) = owner.get(*field) {
                let mut at = at.clone();
                at.push(key(field));
                keys.push((at, k));
            }
        }
    }
    keys
}

/// AttributeDefinitions are derived from the keys, so one attribute needs one type everywhere.
fn check_attribute_types(props: &Props, issues: &mut Vec<PropIssue>) {
    let mut types: BTreeMap<String, (String, Vec<PathSeg>)> = BTreeMap::new();
    for (at, k) in all_keys(props) {
        let (Some(name), Some(ty)) = (str_of(k, "name"), str_of(k, "type")) else {
            continue;
        };
        if !known(name) || !known(ty) {
            continue;
        }
        match types.get(name) {
            Some((first, first_at)) if first != ty => {
                let mut at = at;
                at.push(key("type"));
                issues.push(issue(
                    at,
                    format!(
                        "attribute {name} is type {ty} here but {first} at {}",
                        plinth_core::value::path_to_string(first_at)
                    ),
                ));
            }
            Some(_) => {}
            None => {
                types.insert(name.to_string(), (ty.to_string(), at));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Typed view of canonical properties, for create and update

#[derive(Clone, Debug, Deserialize, PartialEq)]
struct KeySpec {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
struct IndexSpec {
    name: String,
    /// Global indexes only; a local index shares the table's.
    partition_key: Option<KeySpec>,
    sort_key: Option<KeySpec>,
    #[serde(default = "default_projection")]
    projection: String,
    #[serde(default)]
    non_key_attributes: Vec<String>,
    read_capacity: Option<i64>,
    write_capacity: Option<i64>,
}

impl IndexSpec {
    /// Keys and projection: what cannot change without deleting and re-creating the index.
    fn same_definition(&self, other: &IndexSpec) -> bool {
        self.partition_key == other.partition_key
            && self.sort_key == other.sort_key
            && self.projection == other.projection
            && self.non_key_attributes == other.non_key_attributes
    }
    fn capacity(&self) -> Option<(i64, i64)> {
        self.read_capacity.zip(self.write_capacity)
    }
}

fn default_projection() -> String {
    "all".into()
}
fn default_billing() -> String {
    "on_demand".into()
}
fn default_encryption() -> String {
    "aws_owned".to_string()
}
fn default_class() -> String {
    "standard".into()
}

#[derive(Clone, Debug, Deserialize)]
struct TableSpec {
    name: String,
    partition_key: KeySpec,
    sort_key: Option<KeySpec>,
    #[serde(default = "default_billing")]
    billing_mode: String,
    read_capacity: Option<i64>,
    write_capacity: Option<i64>,
    #[serde(default)]
    global_secondary_indexes: Vec<IndexSpec>,
    #[serde(default)]
    local_secondary_indexes: Vec<IndexSpec>,
    stream_view_type: Option<String>,
    ttl_attribute: Option<String>,
    #[serde(default)]
    point_in_time_recovery: bool,
    #[serde(default)]
    deletion_protection: bool,
    #[serde(default = "default_class")]
    table_class: String,
    #[serde(default = "default_encryption")]
    encryption: String,
    kms_key: Option<String>,
    #[serde(default)]
    replicas: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl TableSpec {
    /// The table `props` describe; an autoscaled dimension's capacity is `actual` (what the
    /// table has now, AWS's to set) or, before there is a table, its `min`.
    fn from_props(props: &Props) -> ResourceResult<TableSpec> {
        TableSpec::with_actual(props, None)
    }

    fn with_actual(props: &Props, actual: Option<&TableDescription>) -> ResourceResult<TableSpec> {
        let mut props = props.clone();
        fill_autoscaled(&mut props, actual);
        serde_json::from_value(Value::Object(props))
            .map_err(|e| ResourceError::invalid(format!("dynamodb.table properties: {e}")))
    }
    fn provisioned(&self) -> bool {
        self.billing_mode == "provisioned"
    }
    /// Table capacity when provisioned; `None` on demand.
    fn capacity(&self) -> Option<(i64, i64)> {
        if self.provisioned() {
            self.read_capacity.zip(self.write_capacity)
        } else {
            None
        }
    }
    fn gsi(&self, name: &str) -> Option<&IndexSpec> {
        self.global_secondary_indexes
            .iter()
            .find(|g| g.name == name)
    }
}

/// Capacities for the dimensions autoscaling owns: what `actual` has (so an UpdateTable for
/// something else never sets them back), or the `min` a new table starts at.
fn fill_autoscaled(props: &mut Props, actual: Option<&TableDescription>) {
    let provisioned = actual.filter(|d| is_provisioned(d));
    let table_now = provisioned.and_then(|d| d.provisioned_throughput());
    fill_capacities(props, table_now);
    if let Some(Value::Array(indexes)) = props.get_mut("global_secondary_indexes") {
        for index in indexes.iter_mut().filter_map(Value::as_object_mut) {
            let name = index
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let now = provisioned.and_then(|d| {
                d.global_secondary_indexes()
                    .iter()
                    .find(|g| g.index_name() == Some(name))
                    .and_then(|g| g.provisioned_throughput())
            });
            fill_capacities(index, now);
        }
    }
}

fn fill_capacities(map: &mut Props, now: Option<&ProvisionedThroughputDescription>) {
    for (dimension, scaling) in autoscaling::scalings(map) {
        let current = now.and_then(|t| {
            if dimension == "read" {
                t.read_capacity_units()
            } else {
                t.write_capacity_units()
            }
        });
        let units = current.filter(|u| *u > 0).unwrap_or(scaling.min);
        map.insert(autoscaling::capacity_key(dimension).into(), json!(units));
    }
}

// ---------------------------------------------------------------------------------------------
// Request building

fn built<T>(result: Result<T, BuildError>) -> ResourceResult<T> {
    result.map_err(|e| ResourceError::other(format!("building a DynamoDB request: {e}")))
}

/// `keys_only` → `KEYS_ONLY`: the API's enums are the canonical values in upper case.
fn api_enum(value: &str) -> String {
    value.to_ascii_uppercase()
}

fn billing_mode(spec: &TableSpec) -> BillingMode {
    if spec.provisioned() {
        BillingMode::Provisioned
    } else {
        BillingMode::PayPerRequest
    }
}

fn key_schema(
    partition: &KeySpec,
    sort: Option<&KeySpec>,
) -> ResourceResult<Vec<KeySchemaElement>> {
    let mut schema = vec![built(
        KeySchemaElement::builder()
            .attribute_name(&partition.name)
            .key_type(KeyType::Hash)
            .build(),
    )?];
    if let Some(sort) = sort {
        schema.push(built(
            KeySchemaElement::builder()
                .attribute_name(&sort.name)
                .key_type(KeyType::Range)
                .build(),
        )?);
    }
    Ok(schema)
}

fn throughput((read, write): (i64, i64)) -> ResourceResult<ProvisionedThroughput> {
    built(
        ProvisionedThroughput::builder()
            .read_capacity_units(read)
            .write_capacity_units(write)
            .build(),
    )
}

fn projection(index: &IndexSpec) -> Projection {
    let non_key = (!index.non_key_attributes.is_empty()).then(|| index.non_key_attributes.clone());
    Projection::builder()
        .projection_type(ProjectionType::from(api_enum(&index.projection).as_str()))
        .set_non_key_attributes(non_key)
        .build()
}

/// The keys of the table, its local indexes and the given global indexes, as the
/// AttributeDefinitions AWS wants: every key attribute once, and nothing else.
fn attribute_definitions(
    spec: &TableSpec,
    gsis: &[&IndexSpec],
) -> ResourceResult<Vec<AttributeDefinition>> {
    let mut keys: Vec<&KeySpec> = vec![&spec.partition_key];
    keys.extend(spec.sort_key.as_ref());
    keys.extend(
        spec.local_secondary_indexes
            .iter()
            .filter_map(|l| l.sort_key.as_ref()),
    );
    for gsi in gsis {
        keys.extend(gsi.partition_key.as_ref());
        keys.extend(gsi.sort_key.as_ref());
    }
    let unique: BTreeMap<&str, &str> = keys
        .iter()
        .map(|k| (k.name.as_str(), k.kind.as_str()))
        .collect();
    unique
        .into_iter()
        .map(|(name, kind)| {
            built(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::from(kind))
                    .build(),
            )
        })
        .collect()
}

fn missing_key(index: &IndexSpec) -> ResourceError {
    ResourceError::invalid(format!("index {} has no partition_key", index.name))
}

fn gsi_request(index: &IndexSpec) -> ResourceResult<GlobalSecondaryIndex> {
    let partition = index
        .partition_key
        .as_ref()
        .ok_or_else(|| missing_key(index))?;
    built(
        GlobalSecondaryIndex::builder()
            .index_name(&index.name)
            .set_key_schema(Some(key_schema(partition, index.sort_key.as_ref())?))
            .projection(projection(index))
            .set_provisioned_throughput(index.capacity().map(throughput).transpose()?)
            .build(),
    )
}

fn gsi_create_action(index: &IndexSpec) -> ResourceResult<GlobalSecondaryIndexUpdate> {
    let partition = index
        .partition_key
        .as_ref()
        .ok_or_else(|| missing_key(index))?;
    let action = built(
        CreateGlobalSecondaryIndexAction::builder()
            .index_name(&index.name)
            .set_key_schema(Some(key_schema(partition, index.sort_key.as_ref())?))
            .projection(projection(index))
            .set_provisioned_throughput(index.capacity().map(throughput).transpose()?)
            .build(),
    )?;
    Ok(GlobalSecondaryIndexUpdate::builder().create(action).build())
}

fn gsi_delete_action(name: &str) -> ResourceResult<GlobalSecondaryIndexUpdate> {
    let action = built(
        DeleteGlobalSecondaryIndexAction::builder()
            .index_name(name)
            .build(),
    )?;
    Ok(GlobalSecondaryIndexUpdate::builder().delete(action).build())
}

fn gsi_capacity_action(
    name: &str,
    capacity: (i64, i64),
) -> ResourceResult<GlobalSecondaryIndexUpdate> {
    let action = built(
        UpdateGlobalSecondaryIndexAction::builder()
            .index_name(name)
            .provisioned_throughput(throughput(capacity)?)
            .build(),
    )?;
    Ok(GlobalSecondaryIndexUpdate::builder().update(action).build())
}

fn lsi_request(spec: &TableSpec, index: &IndexSpec) -> ResourceResult<LocalSecondaryIndex> {
    let sort = index.sort_key.as_ref().ok_or_else(|| {
        ResourceError::invalid(format!("local index {} has no sort_key", index.name))
    })?;
    built(
        LocalSecondaryIndex::builder()
            .index_name(&index.name)
            .set_key_schema(Some(key_schema(&spec.partition_key, Some(sort))?))
            .projection(projection(index))
            .build(),
    )
}

fn stream_spec(view: Option<&str>) -> ResourceResult<StreamSpecification> {
    built(
        StreamSpecification::builder()
            .stream_enabled(view.is_some())
            .set_stream_view_type(view.map(|v| StreamViewType::from(api_enum(v).as_str())))
            .build(),
    )
}

fn aws_tags(tags: &BTreeMap<String, String>) -> ResourceResult<Option<Vec<Tag>>> {
    if tags.is_empty() {
        return Ok(None);
    }
    let list = tags
        .iter()
        .map(|(k, v)| built(Tag::builder().key(k).value(v).build()))
        .collect::<ResourceResult<Vec<_>>>()?;
    Ok(Some(list))
}

fn create_request(
    client: &Client,
    spec: &TableSpec,
) -> ResourceResult<aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder> {
    let all_gsis: Vec<&IndexSpec> = spec.global_secondary_indexes.iter().collect();
    let gsis = spec
        .global_secondary_indexes
        .iter()
        .map(gsi_request)
        .collect::<ResourceResult<Vec<_>>>()?;
    let lsis = spec
        .local_secondary_indexes
        .iter()
        .map(|l| lsi_request(spec, l))
        .collect::<ResourceResult<Vec<_>>>()?;
    Ok(client
        .create_table()
        .table_name(&spec.name)
        .set_attribute_definitions(Some(attribute_definitions(spec, &all_gsis)?))
        .set_key_schema(Some(key_schema(
            &spec.partition_key,
            spec.sort_key.as_ref(),
        )?))
        .billing_mode(billing_mode(spec))
        .set_provisioned_throughput(spec.capacity().map(throughput).transpose()?)
        .set_global_secondary_indexes((!gsis.is_empty()).then_some(gsis))
        .set_local_secondary_indexes((!lsis.is_empty()).then_some(lsis))
        .set_stream_specification(
            spec.stream_view_type
                .as_deref()
                .map(|v| stream_spec(Some(v)))
                .transpose()?,
        )
        .table_class(TableClass::from(api_enum(&spec.table_class).as_str()))
        .deletion_protection_enabled(spec.deletion_protection)
        .set_sse_specification((spec.encryption == "kms").then(|| sse_spec(spec)))
        .set_tags(aws_tags(&spec.tags)?))
}

/// KMS encryption with the given key, or the AWS managed one; without: the AWS owned key.
fn sse_spec(spec: &TableSpec) -> SseSpecification {
    let kms = spec.encryption == "kms";
    SseSpecification::builder()
        .enabled(kms)
        .set_sse_type(kms.then_some(SseType::Kms))
        .set_kms_master_key_id(spec.kms_key.clone().filter(|_| kms))
        .build()
}

// ---------------------------------------------------------------------------------------------
// Reading

/// What DescribeTable does not say and three more calls do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableExtras {
    pub ttl_attribute: Option<String>,
    pub point_in_time_recovery: bool,
    pub tags: BTreeMap<String, String>,
}

impl TableExtras {
    fn of(spec: &TableSpec) -> TableExtras {
        TableExtras {
            ttl_attribute: spec.ttl_attribute.clone(),
            point_in_time_recovery: spec.point_in_time_recovery,
            tags: spec.tags.clone(),
        }
    }
}

fn unexpected(what: &str) -> ResourceError {
    ResourceError::other(format!("DescribeTable returned no {what}"))
}

fn key_json(
    schema: &[KeySchemaElement],
    kind: KeyType,
    types: &BTreeMap<&str, &str>,
) -> ResourceResult<Option<Value>> {
    let Some(element) = schema.iter().find(|k| k.key_type == kind) else {
        return Ok(None);
    };
    let name = element.attribute_name.as_str();
    let ty = types
        .get(name)
        .ok_or_else(|| unexpected(&format!("attribute definition for key {name}")))?;
    Ok(Some(json!({"name": name, "type": ty})))
}

fn projection_json(index: &mut Props, projection: Option<&Projection>) {
    let kind = projection
        .and_then(|p| p.projection_type())
        .map(|t| t.as_str().to_ascii_lowercase())
        .unwrap_or_else(default_projection);
    index.insert("projection".into(), json!(kind));
    let non_key = projection
        .map(|p| p.non_key_attributes())
        .unwrap_or_default();
    if !non_key.is_empty() {
        index.insert("non_key_attributes".into(), json!(non_key));
    }
}

fn capacity_json(map: &mut Props, throughput: Option<&ProvisionedThroughputDescription>) {
    let read = throughput
        .and_then(|t| t.read_capacity_units())
        .unwrap_or(0);
    let write = throughput
        .and_then(|t| t.write_capacity_units())
        .unwrap_or(0);
    map.insert("read_capacity".into(), json!(read));
    map.insert("write_capacity".into(), json!(write));
}

fn gsi_json(
    gsi: &GlobalSecondaryIndexDescription,
    types: &BTreeMap<&str, &str>,
    provisioned: bool,
) -> ResourceResult<Value> {
    let name = gsi.index_name().ok_or_else(|| unexpected("index name"))?;
    let mut index = Props::new();
    index.insert("name".into(), json!(name));
    let partition = key_json(gsi.key_schema(), KeyType::Hash, types)?
        .ok_or_else(|| unexpected(&format!("partition key of index {name}")))?;
    index.insert("partition_key".into(), partition);
    if let Some(sort) = key_json(gsi.key_schema(), KeyType::Range, types)? {
        index.insert("sort_key".into(), sort);
    }
    projection_json(&mut index, gsi.projection());
    if provisioned {
        capacity_json(&mut index, gsi.provisioned_throughput());
    }
    Ok(Value::Object(index))
}

fn lsis_json(desc: &TableDescription, types: &BTreeMap<&str, &str>) -> ResourceResult<Vec<Value>> {
    desc.local_secondary_indexes()
        .iter()
        .map(|lsi| {
            let name = lsi.index_name().ok_or_else(|| unexpected("index name"))?;
            let mut index = Props::new();
            index.insert("name".into(), json!(name));
            let sort = key_json(lsi.key_schema(), KeyType::Range, types)?
                .ok_or_else(|| unexpected(&format!("sort key of index {name}")))?;
            index.insert("sort_key".into(), sort);
            projection_json(&mut index, lsi.projection());
            Ok(Value::Object(index))
        })
        .collect()
}

fn is_provisioned(desc: &TableDescription) -> bool {
    // Tables created before on-demand existed have no summary and are provisioned.
    !matches!(
        desc.billing_mode_summary().and_then(|s| s.billing_mode()),
        Some(BillingMode::PayPerRequest)
    )
}

fn stream_view(desc: &TableDescription) -> Option<String> {
    desc.stream_specification()
        .filter(|s| s.stream_enabled())
        .and_then(|s| s.stream_view_type())
        .map(|v| v.as_str().to_ascii_lowercase())
}

/// The table's properties in canonical form: DescribeTable plus the `extras`.
pub fn props_from_description(
    desc: &TableDescription,
    extras: &TableExtras,
) -> ResourceResult<Props> {
    let mut props = Props::new();
    props.insert(
        "name".into(),
        json!(desc.table_name().ok_or_else(|| unexpected("TableName"))?),
    );
    insert_keys_and_capacity(&mut props, desc)?;
    insert_settings(&mut props, desc, extras);
    canonicalize(&mut props);
    Ok(props)
}

/// Keys, billing, capacities and indexes: what DescribeTable says about the key schema.
fn insert_keys_and_capacity(props: &mut Props, desc: &TableDescription) -> ResourceResult<()> {
    let types: BTreeMap<&str, &str> = desc
        .attribute_definitions()
        .iter()
        .map(|a| (a.attribute_name.as_str(), a.attribute_type.as_str()))
        .collect();
    let partition = key_json(desc.key_schema(), KeyType::Hash, &types)?
        .ok_or_else(|| unexpected("partition key"))?;
    props.insert("partition_key".into(), partition);
    if let Some(sort) = key_json(desc.key_schema(), KeyType::Range, &types)? {
        props.insert("sort_key".into(), sort);
    }
    let provisioned = is_provisioned(desc);
    let billing = if provisioned {
        "provisioned"
    } else {
        "on_demand"
    };
    props.insert("billing_mode".into(), json!(billing));
    if provisioned {
        capacity_json(props, desc.provisioned_throughput());
    }
    let gsis = desc
        .global_secondary_indexes()
        .iter()
        // An index being deleted is already gone as far as the stack is concerned.
        .filter(|g| g.index_status() != Some(&IndexStatus::Deleting))
        .map(|g| gsi_json(g, &types, provisioned))
        .collect::<ResourceResult<Vec<_>>>()?;
    props.insert("global_secondary_indexes".into(), Value::Array(gsis));
    let lsis = lsis_json(desc, &types)?;
    props.insert("local_secondary_indexes".into(), Value::Array(lsis));
    Ok(())
}

/// Stream, TTL, PITR, protection, class and tags.
fn insert_settings(props: &mut Props, desc: &TableDescription, extras: &TableExtras) {
    if let Some(view) = stream_view(desc) {
        props.insert("stream_view_type".into(), json!(view));
    }
    if let Some(ttl) = &extras.ttl_attribute {
        props.insert("ttl_attribute".into(), json!(ttl));
    }
    let pitr = extras.point_in_time_recovery;
    props.insert("point_in_time_recovery".into(), json!(pitr));
    let protection = desc.deletion_protection_enabled().unwrap_or(false);
    props.insert("deletion_protection".into(), json!(protection));
    // No TableClassSummary means the table has never left the standard class.
    let class = desc
        .table_class_summary()
        .and_then(|s| s.table_class())
        .map(|c| c.as_str().to_ascii_lowercase())
        .unwrap_or_else(default_class);
    props.insert("table_class".into(), json!(class));
    // No SSEDescription, or one that is off, is the AWS owned key.
    let sse = desc.sse_description().filter(|d| {
        !matches!(
            d.status(),
            None | Some(SseStatus::Disabled | SseStatus::Disabling)
        )
    });
    match sse {
        Some(sse) => {
            props.insert("encryption".into(), json!("kms"));
            if let Some(key) = sse.kms_master_key_arn() {
                props.insert("kms_key".into(), json!(key));
            }
        }
        None => {
            props.insert("encryption".into(), json!("aws_owned"));
        }
    }
    replicas::insert(props, desc);
    props.insert("tags".into(), tags::tags_value(extras.tags.clone()));
}

/// The whole observation of a described table: canonical properties and attributes.
pub fn observed_from_description(
    desc: &TableDescription,
    extras: &TableExtras,
) -> ResourceResult<Observed> {
    let props = props_from_description(desc, extras)?;
    let name = str_of(&props, "name").unwrap_or_default().to_string();
    let mut attrs = Props::new();
    attrs.insert("name".into(), json!(name));
    attrs.insert(
        "arn".into(),
        json!(desc.table_arn().ok_or_else(|| unexpected("TableArn"))?),
    );
    // LatestStreamArn outlives a disabled stream; only an enabled one is worth referencing.
    if stream_view(desc).is_some() {
        if let Some(arn) = desc.latest_stream_arn() {
            attrs.insert("stream_arn".into(), json!(arn));
        }
    }
    Ok(Observed {
        id: name,
        props,
        attrs,
    })
}

/// DescribeTable; `None` when the table does not exist.
async fn describe(client: &Client, name: &str) -> ResourceResult<Option<TableDescription>> {
    match client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(out.table),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

async fn read_ttl(client: &Client, name: &str) -> ResourceResult<Option<String>> {
    let out = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .classified()?;
    let Some(ttl) = out.time_to_live_description() else {
        return Ok(None);
    };
    // ENABLING already has the attribute; DISABLING is on its way out.
    let on = matches!(
        ttl.time_to_live_status(),
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    );
    Ok(ttl.attribute_name().filter(|_| on).map(str::to_string))
}

async fn read_pitr(client: &Client, name: &str) -> ResourceResult<bool> {
    let out = client
        .describe_continuous_backups()
        .table_name(name)
        .send()
        .await
        .classified()?;
    Ok(matches!(
        out.continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status()),
        Some(PointInTimeRecoveryStatus::Enabled)
    ))
}

async fn read_tags(client: &Client, arn: &str) -> ResourceResult<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .list_tags_of_resource()
            .resource_arn(arn)
            .set_next_token(token.take())
            .send()
            .await
            .classified()?;
        for tag in out.tags() {
            tags.insert(tag.key().to_string(), tag.value().to_string());
        }
        match out.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(tags::without_reserved(tags)),
        }
    }
}

/// A table as DynamoDB's own reads show it, tags apart.
struct Untagged {
    desc: TableDescription,
    arn: String,
    ttl_attribute: Option<String>,
    point_in_time_recovery: bool,
}

/// The table, its TTL and its backups, read at once (one round trip, not two); `None` when
/// it is gone or going.
async fn read_untagged(client: &Client, name: &str) -> ResourceResult<Option<Untagged>> {
    let (desc, settings) = futures::join!(
        describe(client, name),
        futures::future::try_join(read_ttl(client, name), read_pitr(client, name))
    );
    let Some(desc) = desc? else {
        return Ok(None);
    };
    // A table being deleted will be gone in moments; planning around it would be wrong.
    if desc.table_status() == Some(&TableStatus::Deleting) {
        return Ok(None);
    }
    let arn = desc
        .table_arn()
        .ok_or_else(|| unexpected("TableArn"))?
        .to_string();
    // Described, then not found by the other reads: deleted meanwhile.
    Ok(
        errors::unless_gone(settings)?.map(|(ttl_attribute, point_in_time_recovery)| Untagged {
            desc,
            arn,
            ttl_attribute,
            point_in_time_recovery,
        }),
    )
}

/// The table says it is ACTIVE, and so are its indexes and replicas.
fn is_active(desc: &TableDescription) -> bool {
    desc.table_status() == Some(&TableStatus::Active) && busy_status(desc).is_none()
}

/// Why the table is not ready yet: its own status or an index's; `None` when all are ACTIVE.
fn busy_status(desc: &TableDescription) -> Option<String> {
    match desc.table_status() {
        Some(TableStatus::Active) | None => {}
        Some(status) => return Some(status.as_str().to_string()),
    }
    desc.global_secondary_indexes()
        .iter()
        .find_map(|g| match g.index_status() {
            Some(IndexStatus::Active) | None => None,
            Some(status) => Some(format!(
                "index {} {}",
                g.index_name().unwrap_or("?"),
                status.as_str()
            )),
        })
        .or_else(|| replicas::busy(desc))
}

// ---------------------------------------------------------------------------------------------
// Changing

/// A fixed deadline for a whole operation, so a chain of waits shares one time limit.
fn with_deadline(ctx: &OpContext, default: Duration) -> OpContext {
    let mut ctx = ctx.clone();
    ctx.deadline = Some(ctx.deadline_or(default));
    ctx
}

fn protected(name: &str) -> ResourceError {
    ResourceError::invalid(format!(
        "table {name} has deletion protection enabled; set deletion_protection: false and apply \
         before destroying or replacing it"
    ))
}

/// One table's operations, sharing a client and an operation deadline.
struct TableOps<'a> {
    client: Client,
    name: &'a str,
    ctx: OpContext,
    /// The last description a wait returned, so the final observation needs no extra call.
    last: Option<TableDescription>,
}

impl TableOps<'_> {
    fn request(&self) -> UpdateTableFluentBuilder {
        self.client.update_table().table_name(self.name)
    }

    /// Waits until the table and its indexes are ACTIVE. A table AWS does not show yet is
    /// waited for a while (a create is not visible everywhere at once), then it is gone.
    async fn wait_ready(&mut self) -> ResourceResult<TableDescription> {
        let what = format!("table {} to be ACTIVE", self.name);
        let (client, name) = (&self.client, self.name);
        let started = tokio::time::Instant::now();
        let desc = wait::until(&self.ctx, &what, TABLE_LIMIT, || async move {
            let Some(desc) = describe(client, name).await? else {
                return wait::not_visible_yet(started, || {
                    ResourceError::new(ErrorKind::NotFound, format!("table {name} disappeared"))
                });
            };
            Ok(match busy_status(&desc) {
                None => Poll::Ready(desc),
                Some(status) => Poll::Pending(status),
            })
        })
        .await?;
        self.last = Some(desc.clone());
        Ok(desc)
    }

    /// One UpdateTable call, retried while AWS says the table or an index is busy, then a wait
    /// until the table and every index are ACTIVE again.
    async fn apply(&mut self, what: &str, request: UpdateTableFluentBuilder) -> ResourceResult<()> {
        debug!(table = self.name, what, "UpdateTable");
        wait::retry_while_busy(&self.ctx, what, TABLE_LIMIT, || {
            let request = request.clone();
            async move { request.send().await.classified().map(|_| ()) }
        })
        .await?;
        self.wait_ready().await.map(|_| ())
    }

    /// Turns TTL from `before` to `after` and returns the attribute TTL is on now. DynamoDB
    /// takes one TTL change per table in about an hour, and enables TTL on one attribute at a
    /// time: moving it from one attribute to another disables it now, and enabling it on the
    /// new one is left for an apply an hour later (said in the plan, and as a notice).
    async fn set_ttl(
        &self,
        before: Option<&str>,
        after: Option<&str>,
    ) -> ResourceResult<Option<String>> {
        match (before, after) {
            (b, a) if b == a => Ok(a.map(str::to_string)),
            (Some(old), Some(new)) => {
                self.update_ttl(old, false).await?;
                self.ctx.notice(format!(
                    "TTL is off now (it was on {old}); DynamoDB allows the next TTL change of \
                     table {} about an hour from now: apply again then to turn it on for {new}",
                    self.name
                ));
                Ok(None)
            }
            (Some(old), None) => self.update_ttl(old, false).await.map(|()| None),
            (None, Some(new)) => self
                .update_ttl(new, true)
                .await
                .map(|()| Some(new.to_string())),
            (None, None) => Ok(None),
        }
    }

    async fn update_ttl(&self, attribute: &str, enabled: bool) -> ResourceResult<()> {
        let spec = built(
            TimeToLiveSpecification::builder()
                .attribute_name(attribute)
                .enabled(enabled)
                .build(),
        )?;
        let request = self
            .client
            .update_time_to_live()
            .table_name(self.name)
            .time_to_live_specification(spec);
        debug!(table = self.name, attribute, enabled, "UpdateTimeToLive");
        let name = self.name;
        wait::retry_while_busy(&self.ctx, "setting TTL", TABLE_LIMIT, || {
            let request = request.clone();
            async move {
                match request.send().await.classified() {
                    Ok(_) => Ok(()),
                    // The answer to an earlier attempt of this very call was lost.
                    Err(err) if ttl_already(&err, enabled) => Ok(()),
                    Err(err) => Err(explain_ttl(err, name, attribute, enabled)),
                }
            }
        })
        .await
    }

    async fn set_pitr(&self, enabled: bool) -> ResourceResult<()> {
        let spec = built(
            PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(enabled)
                .build(),
        )?;
        let request = self
            .client
            .update_continuous_backups()
            .table_name(self.name)
            .point_in_time_recovery_specification(spec);
        debug!(table = self.name, enabled, "UpdateContinuousBackups");
        wait::retry_while_busy(
            &self.ctx,
            "setting point-in-time recovery",
            TABLE_LIMIT,
            || {
                let request = request.clone();
                async move {
                    request
                        .send()
                        .await
                        .classified()
                        .map(|_| ())
                        .map_err(backups_busy)
                }
            },
        )
        .await
    }

    async fn set_tags(
        &self,
        arn: &str,
        before: &BTreeMap<String, String>,
        after: &BTreeMap<String, String>,
    ) -> ResourceResult<()> {
        let (set, remove) = tags::tag_changes(before, after);
        if !remove.is_empty() {
            let request = self
                .client
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(remove));
            wait::retry_while_busy(&self.ctx, "removing tags", TABLE_LIMIT, || {
                let request = request.clone();
                async move { request.send().await.classified().map(|_| ()) }
            })
            .await?;
        }
        if let Some(set) = aws_tags(&set)? {
            let request = self
                .client
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(set));
            wait::retry_while_busy(&self.ctx, "tagging", TABLE_LIMIT, || {
                let request = request.clone();
                async move { request.send().await.classified().map(|_| ()) }
            })
            .await?;
        }
        Ok(())
    }
}

/// "TimeToLive is already enabled" (or disabled): what a change that was already made
/// answers.
fn ttl_already(err: &ResourceError, enabled: bool) -> bool {
    let state = if enabled { "enabled" } else { "disabled" };
    err.code.as_deref() == Some("ValidationException")
        && err
            .message
            .to_ascii_lowercase()
            .contains(&format!("timetolive is already {state}"))
}

/// DynamoDB's refusal of a second TTL change within its interval says nothing of what to do.
fn explain_ttl(err: ResourceError, table: &str, attribute: &str, enabled: bool) -> ResourceError {
    let too_soon = err.code.as_deref() == Some("ValidationException")
        && err
            .message
            .to_ascii_lowercase()
            .contains("modified multiple times within a fixed interval");
    if !too_soon {
        return err;
    }
    let change = if enabled { "turn on" } else { "turn off" };
    ResourceError {
        kind: ErrorKind::Invalid,
        message: format!(
            "DynamoDB takes one TTL change per table in about an hour, and table {table}'s TTL \
             was changed less than an hour ago, so TTL on {attribute} cannot {change} yet: apply \
             again in an hour ({})",
            err.message
        ),
        ..err
    }
}

/// Right after a table is created, AWS may still be setting up backups for it.
fn backups_busy(err: ResourceError) -> ResourceError {
    if err.code.as_deref() == Some("ContinuousBackupsUnavailableException") {
        ResourceError {
            kind: ErrorKind::InUse,
            ..err
        }
    } else {
        err
    }
}

/// How the global indexes change: which go, which come, which keep their definition.
struct GsiPlan<'a> {
    delete: Vec<&'a IndexSpec>,
    create: Vec<&'a IndexSpec>,
    kept: Vec<&'a IndexSpec>,
}

fn gsi_plan<'a>(old: &'a TableSpec, new: &'a TableSpec) -> GsiPlan<'a> {
    let same = |a: &IndexSpec, b: &IndexSpec| a.same_definition(b);
    let delete = old
        .global_secondary_indexes
        .iter()
        .filter(|o| !new.gsi(&o.name).is_some_and(|n| same(o, n)))
        .collect();
    let (kept, create) = new
        .global_secondary_indexes
        .iter()
        .partition(|n| old.gsi(&n.name).is_some_and(|o| same(o, n)));
    GsiPlan {
        delete,
        create,
        kept,
    }
}

/// The one UpdateTable for billing mode and capacities (table and kept indexes), if needed.
fn capacity_request(
    ops: &TableOps<'_>,
    old: &TableSpec,
    new: &TableSpec,
    kept: &[&IndexSpec],
) -> ResourceResult<Option<UpdateTableFluentBuilder>> {
    let switched = old.billing_mode != new.billing_mode;
    // AWS rejects a throughput "change" to the current values, so send only real changes.
    let table = new
        .capacity()
        .filter(|c| switched || old.capacity() != Some(*c));
    let mut gsi_updates = Vec::new();
    // On-demand indexes have no capacity; `kept` index capacities are only sent when provisioned.
    let provisioned_kept = if new.provisioned() { kept } else { &[] };
    for index in provisioned_kept {
        let previous = old.gsi(&index.name).and_then(IndexSpec::capacity);
        if let Some(capacity) = index
            .capacity()
            .filter(|c| switched || previous != Some(*c))
        {
            gsi_updates.push(gsi_capacity_action(&index.name, capacity)?);
        }
    }
    if !switched && table.is_none() && gsi_updates.is_empty() {
        return Ok(None);
    }
    let mut request = ops.request();
    if switched {
        request = request.billing_mode(billing_mode(new));
    }
    Ok(Some(
        request
            .set_provisioned_throughput(table.map(throughput).transpose()?)
            .set_global_secondary_index_updates((!gsi_updates.is_empty()).then_some(gsi_updates)),
    ))
}

async fn update_indexes_and_capacity(
    ops: &mut TableOps<'_>,
    old: &TableSpec,
    new: &TableSpec,
) -> ResourceResult<()> {
    let plan = gsi_plan(old, new);
    // Deletions first: a billing switch to provisioned would otherwise need capacities for
    // indexes about to go. AWS takes one index creation or deletion per call.
    for index in &plan.delete {
        let request = ops
            .request()
            .global_secondary_index_updates(gsi_delete_action(&index.name)?);
        ops.apply(&format!("deleting index {}", index.name), request)
            .await?;
    }
    if let Some(request) = capacity_request(ops, old, new, &plan.kept)? {
        ops.apply("changing billing and capacity", request).await?;
    }
    let mut present = plan.kept.clone();
    for index in &plan.create {
        present.push(index);
        let request = ops
            .request()
            .set_attribute_definitions(Some(attribute_definitions(new, &present)?))
            .global_secondary_index_updates(gsi_create_action(index)?);
        ops.apply(&format!("creating index {}", index.name), request)
            .await?;
    }
    Ok(())
}

async fn update_table_settings(
    ops: &mut TableOps<'_>,
    old: &TableSpec,
    new: &TableSpec,
) -> ResourceResult<()> {
    if old.stream_view_type != new.stream_view_type {
        // A stream's view type cannot change in place: the old stream goes, a new one comes.
        if old.stream_view_type.is_some() {
            let request = ops.request().stream_specification(stream_spec(None)?);
            ops.apply("disabling the stream", request).await?;
        }
        if let Some(view) = new.stream_view_type.as_deref() {
            let request = ops.request().stream_specification(stream_spec(Some(view))?);
            ops.apply("enabling the stream", request).await?;
        }
    }
    if old.table_class != new.table_class {
        let class = TableClass::from(api_enum(&new.table_class).as_str());
        ops.apply("changing the table class", ops.request().table_class(class))
            .await?;
    }
    if old.deletion_protection != new.deletion_protection {
        let request = ops
            .request()
            .deletion_protection_enabled(new.deletion_protection);
        ops.apply("changing deletion protection", request).await?;
    }
    if (&old.encryption, &old.kms_key) != (&new.encryption, &new.kms_key) {
        let request = ops.request().sse_specification(sse_spec(new));
        ops.apply("changing the encryption key", request).await?;
    }
    Ok(())
}

/// Cost rule: a provisioned table pays for its capacity (the table's and its global
/// indexes' RCU and WCU) by the hour; an on-demand table pays per request, priced from the
/// usage assumptions. Both pay for storage (and, with point-in-time recovery, for continuous
/// backups of it) from the assumed size. Local indexes share the table's capacity.
fn table_cost(
    props: &plinth_core::value::Props,
    ctx: &plinth_core::cost::CostContext,
) -> Vec<plinth_core::cost::CostLine> {
    use plinth_core::cost::{count_text, price_text, CostLine};
    let prices = match crate::cost::dynamodb_prices(ctx) {
        Ok(prices) => prices,
        Err(e) => return vec![CostLine::unknown("DynamoDB table", e.to_string())],
    };
    let free_tier = crate::cost::free_tier(ctx, "dynamodb");
    let mut lines = if plinth_core::value::str_of(props, "billing_mode") == Some("provisioned") {
        vec![provisioned_capacity_line(props, &prices).with_free_tier(free_tier.clone())]
    } else {
        on_demand_lines(ctx, &prices)
    };
    let gb = ctx.usage("dynamodb.storage_gb");
    lines.push(
        CostLine::usage_per_month(
            format!(
                "{} GB stored × ${}/GB-month",
                count_text(gb),
                price_text(prices.storage_gb_month)
            ),
            gb * prices.storage_gb_month,
        )
        .with_free_tier(free_tier),
    );
    lines.extend(replica_lines(props, ctx, &prices, gb));
    if plinth_core::value::bool_of(props, "point_in_time_recovery") == Some(true) {
        lines.push(CostLine::usage_per_month(
            format!(
                "point-in-time recovery of {} GB × ${}/GB-month",
                count_text(gb),
                price_text(prices.pitr_gb_month)
            ),
            gb * prices.pitr_gb_month,
        ));
    }
    lines
}

/// Each replica writes what the table writes (replicated writes, priced as the table's
/// since AWS's 2024 prices) and stores as much, at this region's prices.
fn replica_lines(
    props: &Props,
    ctx: &plinth_core::cost::CostContext,
    prices: &crate::cost::DynamodbPrices,
    gb: f64,
) -> Vec<plinth_core::cost::CostLine> {
    use plinth_core::cost::{count_text, price_text, CostLine};
    let regions = replicas::regions(props);
    if regions.is_empty() {
        return Vec::new();
    }
    let provisioned = str_of(props, "billing_mode") == Some("provisioned");
    // Autoscaled writes at their minimum, as the table's own line counts them.
    let wcu = autoscaling::scalings(props)
        .get("write")
        .map(|s| s.min)
        .or_else(|| crate::cost::known_count(props, "write_capacity", 0))
        .unwrap_or(0);
    let writes = ctx.usage("dynamodb.writes");
    regions
        .iter()
        .flat_map(|region| {
            let replicated = if provisioned {
                CostLine::per_hour(
                    format!(
                        "replica in {region}: {wcu} replicated WCU × ${}/h",
                        price_text(prices.wcu_hour)
                    ),
                    wcu as f64 * prices.wcu_hour,
                )
            } else {
                CostLine::usage_per_month(
                    format!(
                        "replica in {region}: {} replicated writes × ${}/million",
                        count_text(writes),
                        price_text(prices.write_per_million)
                    ),
                    writes / 1_000_000.0 * prices.write_per_million,
                )
            };
            let stored = CostLine::usage_per_month(
                format!(
                    "replica in {region}: {} GB stored × ${}/GB-month",
                    count_text(gb),
                    price_text(prices.storage_gb_month)
                ),
                gb * prices.storage_gb_month,
            );
            [replicated, stored]
        })
        .collect()
}

/// RCU and WCU by the hour, the table's plus every global index's.
fn provisioned_capacity_line(
    props: &plinth_core::value::Props,
    prices: &crate::cost::DynamodbPrices,
) -> plinth_core::cost::CostLine {
    use plinth_core::cost::{price_text, CostLine};
    let what = "provisioned capacity";
    // An autoscaled dimension costs at least its minimum.
    let mut autoscaled = false;
    let mut capacity = |p: &plinth_core::value::Props| {
        let scaled = autoscaling::scalings(p);
        let named = autoscaling::scaled_dimensions(p);
        autoscaled |= !named.is_empty();
        let units = |dimension: &str| match scaled.get(dimension) {
            Some(scaling) => Some(scaling.min),
            // Autoscaled with a minimum not known yet.
            None if named.contains(&dimension) => None,
            None => crate::cost::known_count(p, autoscaling::capacity_key(dimension), 0),
        };
        Some((units("read")?, units("write")?))
    };
    let Some((table_read, table_write)) = capacity(props) else {
        return crate::cost::known_after_apply(what, "read_capacity");
    };
    let mut index_capacity = (0, 0);
    let indexes = props
        .get("global_secondary_indexes")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for index in indexes {
        let Some((read, write)) = index.as_object().and_then(&mut capacity) else {
            return crate::cost::known_after_apply(what, "global_secondary_indexes");
        };
        index_capacity = (index_capacity.0 + read, index_capacity.1 + write);
    }
    let (read, write) = (
        table_read + index_capacity.0,
        table_write + index_capacity.1,
    );
    let split = if indexes.is_empty() {
        String::new()
    } else {
        format!(
            " (table {table_read} + {table_write}, {} global index{} {} + {})",
            indexes.len(),
            if indexes.len() == 1 { "" } else { "es" },
            index_capacity.0,
            index_capacity.1
        )
    };
    let floor = if autoscaled {
        ", autoscaled: the minimum; AWS adds capacity as load grows"
    } else {
        ""
    };
    CostLine::per_hour(
        format!(
            "{read} RCU × ${}/h + {write} WCU × ${}/h{split}{floor}",
            price_text(prices.rcu_hour),
            price_text(prices.wcu_hour)
        ),
        read as f64 * prices.rcu_hour + write as f64 * prices.wcu_hour,
    )
}

/// Reads and writes per million request units, from the usage assumptions.
fn on_demand_lines(
    ctx: &plinth_core::cost::CostContext,
    prices: &crate::cost::DynamodbPrices,
) -> Vec<plinth_core::cost::CostLine> {
    use plinth_core::cost::{count_text, price_text, CostLine};
    [
        ("reads", "dynamodb.reads", prices.read_per_million),
        ("writes", "dynamodb.writes", prices.write_per_million),
    ]
    .into_iter()
    .map(|(what, key, price)| {
        let count = ctx.usage(key);
        CostLine::usage_per_month(
            format!(
                "{} on-demand {what} × ${}/million",
                count_text(count),
                price_text(price)
            ),
            count / 1_000_000.0 * price,
        )
    })
    .collect()
}

#[async_trait]
impl ResourceType for DynamodbTable {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(
        &self,
        props: &plinth_core::value::Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        table_cost(props, ctx)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        check_capacity(props, &mut issues);
        check_projections(props, &mut issues);
        check_index_names(props, &mut issues);
        check_attribute_types(props, &mut issues);
        check_encryption(props, &mut issues);
        let write_autoscaled = autoscaling::scaled_dimensions(props).contains(&"write")
            && indexes(props, "global_secondary_indexes")
                .iter()
                .all(|(_, gsi)| autoscaling::scaled_dimensions(gsi).contains(&"write"));
        issues.extend(replicas::check(props, write_autoscaled));
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    fn change_notes(&self, before: &Props, after: &Props) -> Vec<String> {
        match (
            str_of(before, "ttl_attribute"),
            str_of(after, "ttl_attribute"),
        ) {
            (Some(old), Some(new)) if old != new => vec![format!(
                "ttl_attribute: DynamoDB takes one TTL change per table in about an hour, and TTL \
                 is on one attribute at a time: this apply turns TTL off on {old}; apply again \
                 an hour later to turn it on for {new}"
            )],
            _ => Vec::new(),
        }
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["name"])
    }

    fn other_regions(&self, props: &Props) -> Vec<String> {
        replicas::regions(props)
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.dynamodb(&ctx.region);
        let Some(found) = read_untagged(&client, id).await? else {
            return Ok(None);
        };
        let Some(tags) = errors::unless_gone(read_tags(&client, &found.arn).await)? else {
            return Ok(None);
        };
        self.observe(ctx, id, prior, found, tags).await.map(Some)
    }

    fn read_batch_size(&self) -> usize {
        tagging::ARNS_PER_CALL
    }

    /// DynamoDB reads one table at a time (three calls: the table, its TTL, its backups);
    /// the tags of the whole batch come from one tagging-API call instead of one
    /// ListTagsOfResource each. That API is an index that lags behind DynamoDB, so its answer
    /// is taken only where it agrees with the tags last applied; elsewhere (a change made
    /// outside plinth, or one the index has not seen yet) the table's own tags are read.
    async fn read_batch(
        &self,
        ctx: &OpContext,
        items: &[(String, Props)],
    ) -> ResourceResult<Vec<Option<Observed>>> {
        let client = self.aws.dynamodb(&ctx.region);
        // Made before they run: an iterator of borrowing closures held across the awaits
        // is more than the compiler can prove Send.
        let reads: Vec<_> = items
            .iter()
            .map(|(id, _)| {
                let (client, id) = (client.clone(), id.clone());
                async move { read_untagged(&client, &id).await }.boxed()
            })
            .collect();
        // The tags are asked for while the tables are read, by the ARNs the tables have in
        // this account (known since the account check); a table whose ARN is not that reads
        // its own tags below.
        let arns = self.arns_of(&ctx.region, items).await;
        let listed = async {
            match arns.is_empty() {
                true => BTreeMap::new(),
                // No permission for the tagging API, or no answer: each table reads its own.
                false => tagging::tags_by_arn(&self.aws, &ctx.region, &arns)
                    .await
                    .unwrap_or_else(|err| {
                        debug!(error = %err, "tags of many tables unavailable: reading each");
                        BTreeMap::new()
                    }),
            }
        };
        let reads = stream::iter(reads)
            .buffered(BATCH_READS_AT_ONCE)
            .try_collect::<Vec<Option<Untagged>>>();
        let (found, mut listed) = futures::join!(reads, listed);
        let found = found?;
        let tag_reads = items
            .iter()
            .zip(found)
            .map(|((_, prior), found)| {
                let client = client.clone();
                let applied = prior.get("tags").cloned();
                let listed = found
                    .as_ref()
                    .and_then(|f| listed.remove(&f.arn))
                    .map(tags::without_reserved);
                async move {
                    let Some(found) = found else {
                        return Ok(None);
                    };
                    let tags = match listed {
                        Some(tags) if applied == Some(tags::tags_value(tags.clone())) => tags,
                        _ => match errors::unless_gone(read_tags(&client, &found.arn).await)? {
                            Some(tags) => tags,
                            None => return Ok(None),
                        },
                    };
                    Ok::<_, ResourceError>(Some((found, tags)))
                }
                .boxed()
            })
            .collect::<Vec<_>>();
        let tagged: Vec<Option<(Untagged, BTreeMap<String, String>)>> = stream::iter(tag_reads)
            .buffered(BATCH_READS_AT_ONCE)
            .try_collect()
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for ((id, prior), table) in items.iter().zip(tagged) {
            out.push(match table {
                Some((found, tags)) => Some(self.observe(ctx, id, prior, found, tags).await?),
                None => None,
            });
        }
        Ok(out)
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let Some(name) = str_of(props, "name") else {
            return Ok(None);
        };
        let Some(observed) = self.read(ctx, name, props).await? else {
            return Ok(None);
        };
        Ok(tags::ours(observed, props))
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "dynamodb", "table/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let spec = TableSpec::from_props(props)?;
        let client = self.aws.dynamodb(&ctx.region);
        let request = create_request(&client, &spec)?;
        let mut ops = TableOps {
            client,
            name: &spec.name,
            ctx: with_deadline(ctx, TABLE_LIMIT),
            last: None,
        };
        debug!(table = spec.name, "CreateTable");
        // Too many tables changing at once (LimitExceeded) is retried; "in use" on a create is
        // the table existing already, which is settled below.
        let created = wait::retry_while_busy(&ops.ctx, "creating the table", TABLE_LIMIT, || {
            let request = request.clone();
            async move {
                match request.send().await.classified() {
                    Ok(out) => Ok(Ok(out.table_description)),
                    Err(e) if errors::has_code(&e, &[TABLE_EXISTS]) => Ok(Err(e)),
                    Err(e) => Err(e),
                }
            }
        })
        .await?;
        let desc = match created {
            // AWS answers CREATING; an answer that the table and its indexes are ACTIVE
            // already needs no wait to say so again.
            Ok(Some(desc)) if is_active(&desc) => desc,
            Ok(_) => ops.wait_ready().await?,
            Err(exists) => {
                // Another table being created under this name is only recognisable once it is.
                let desc = ops.wait_ready().await?;
                let what = format!("a table named {}", spec.name);
                errors::adopt_if_ours(exists, &[TABLE_EXISTS], &what, || self.find(ctx, props))
                    .await?;
                desc
            }
        };
        ops.set_ttl(None, spec.ttl_attribute.as_deref()).await?;
        if spec.point_in_time_recovery {
            ops.set_pitr(true).await?;
        }
        self.change_autoscaling(&ops.ctx, &spec.name, &Props::new(), props)
            .await?;
        self.add_replicas(&mut ops, &spec.replicas, &spec.tags)
            .await?;
        let desc = ops.last.take().unwrap_or(desc);
        let mut observed = observed_from_description(&desc, &TableExtras::of(&spec))?;
        set_autoscaling(
            &spec.name,
            &mut observed.props,
            &autoscaled(&spec.name, props),
        );
        Ok(observed)
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let mut ops = TableOps {
            client: self.aws.dynamodb(&ctx.region),
            name: id,
            ctx: with_deadline(ctx, TABLE_LIMIT),
            last: None,
        };
        // Autoscaled capacities are whatever AWS set them to: sent as they are.
        let actual = if has_autoscaling(before) || has_autoscaling(after) {
            Some(ops.wait_ready().await?)
        } else {
            None
        };
        let (old, new) = (
            TableSpec::with_actual(before, actual.as_ref())?,
            TableSpec::with_actual(after, actual.as_ref())?,
        );
        let gone: Vec<String> = old
            .replicas
            .iter()
            .filter(|r| !new.replicas.contains(r))
            .cloned()
            .collect();
        remove_replicas(&mut ops, &gone).await?;
        self.release_autoscaling(&ops.ctx, id, before, after)
            .await?;
        update_indexes_and_capacity(&mut ops, &old, &new).await?;
        update_table_settings(&mut ops, &old, &new).await?;
        let ttl_now = ops
            .set_ttl(old.ttl_attribute.as_deref(), new.ttl_attribute.as_deref())
            .await?;
        if old.point_in_time_recovery != new.point_in_time_recovery {
            ops.set_pitr(new.point_in_time_recovery).await?;
        }
        let desc = match ops.last.take() {
            Some(desc) => desc,
            None => ops.wait_ready().await?,
        };
        let arn = desc.table_arn().ok_or_else(|| unexpected("TableArn"))?;
        ops.set_tags(arn, &old.tags, &new.tags).await?;
        let kept: Vec<&String> = new
            .replicas
            .iter()
            .filter(|r| old.replicas.contains(r))
            .collect();
        // All the tags, not just the change: a replica an interrupted apply left untagged
        // gets them now.
        for region in kept {
            self.tag_replica(&ops.ctx, arn, region, &BTreeMap::new(), &new.tags)
                .await?;
        }
        self.change_autoscaling(&ops.ctx, id, before, after).await?;
        let added: Vec<String> = new
            .replicas
            .iter()
            .filter(|r| !old.replicas.contains(r))
            .cloned()
            .collect();
        self.add_replicas(&mut ops, &added, &new.tags).await?;
        let desc = ops.last.take().unwrap_or(desc);
        let extras = TableExtras {
            ttl_attribute: ttl_now,
            ..TableExtras::of(&new)
        };
        let mut observed = observed_from_description(&desc, &extras)?;
        set_autoscaling(id, &mut observed.props, &autoscaled(id, after));
        Ok(observed)
    }

    async fn delete(&self, ctx: &OpContext, id: &str, props: &Props) -> ResourceResult<()> {
        let client = self.aws.dynamodb(&ctx.region);
        let ctx = with_deadline(ctx, TABLE_LIMIT);
        // What AWS has, not what the state says: a destroy reads nothing else before it
        // deletes, and protection, capacity mode or replicas may have changed in the console.
        let Some(desc) = describe(&client, id).await? else {
            return Ok(());
        };
        // Never switch protection off on the user's behalf: that is what it protects against.
        if desc.deletion_protection_enabled() == Some(true) {
            return Err(protected(id));
        }
        // DeleteTable leaves scalable targets (and their billed alarms) behind. Only a
        // provisioned table can have them; whoever registered them (a swept table has no
        // stack to say), they are asked for and deregistered.
        if is_provisioned(&desc) && desc.table_status() != Some(&TableStatus::Deleting) {
            let autoscaling_client = self.aws.autoscaling(&ctx.region);
            let ids: Vec<String> = autoscaled(id, props).into_keys().collect();
            autoscaling::deregister_registered(&ctx, &autoscaling_client, &ids).await?;
        }
        // DeleteTable would take this region's copy only: the replicas go first, those the
        // stack made and any added by hand.
        let regions = replicas::described(&desc);
        if !regions.is_empty() {
            let mut ops = TableOps {
                client: client.clone(),
                name: id,
                ctx: ctx.clone(),
                last: None,
            };
            remove_replicas(&mut ops, &regions).await?;
        }
        debug!(table = id, "DeleteTable");
        let gone = wait::retry_while_busy(&ctx, "deleting the table", TABLE_LIMIT, || {
            let request = client.delete_table().table_name(id);
            async move {
                match request.send().await.classified() {
                    Ok(_) => Ok(false),
                    Err(e) if e.kind == ErrorKind::NotFound => Ok(true),
                    Err(e) if is_protection_error(&e) => Err(protected(id)),
                    Err(e) => Err(e),
                }
            }
        })
        .await?;
        if gone {
            return Ok(());
        }
        wait_deleted(&ctx, &client, id).await
    }
}

impl DynamodbTable {
    /// The ARNs the tables named `items` have in this connection's account; none when the
    /// account is not known (then each table's own answer names it).
    async fn arns_of(&self, region: &str, items: &[(String, Props)]) -> Vec<String> {
        let Ok(account) = self.aws.account_id(region).await else {
            return Vec::new();
        };
        let partition = crate::arn::partition(region);
        items
            .iter()
            .map(|(name, _)| format!("arn:{partition}:dynamodb:{region}:{account}:table/{name}"))
            .collect()
    }

    /// The observation of a table read as `found` with `tags`, with its autoscaling when
    /// plinth set some up (only those tables have targets worth a call each plan).
    async fn observe(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
        found: Untagged,
        tags: BTreeMap<String, String>,
    ) -> ResourceResult<Observed> {
        let extras = TableExtras {
            ttl_attribute: found.ttl_attribute,
            point_in_time_recovery: found.point_in_time_recovery,
            tags,
        };
        let mut observed = observed_from_description(&found.desc, &extras)?;
        if has_autoscaling(prior) {
            let ids: Vec<String> = autoscaled(id, &observed.props).into_keys().collect();
            let found = autoscaling::read(&self.aws.autoscaling(&ctx.region), &ids).await?;
            set_autoscaling(id, &mut observed.props, &found);
        }
        Ok(observed)
    }

    /// Registers, changes and deregisters the table's and its indexes' autoscaling from
    /// `before` to `after` (an index gone takes its targets with it).
    async fn change_autoscaling(
        &self,
        ctx: &OpContext,
        table: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<()> {
        if !has_autoscaling(before) && !has_autoscaling(after) {
            return Ok(());
        }
        let client = self.aws.autoscaling(&ctx.region);
        for (resource, index, had, wants) in autoscaling_changes(table, before, after) {
            autoscaling::apply(ctx, &client, &resource, index, (&had, &wants)).await?;
        }
        Ok(())
    }

    /// Deregisters what `after` no longer autoscales, before the capacity is fixed or the
    /// billing changes (nothing may scale it meanwhile).
    async fn release_autoscaling(
        &self,
        ctx: &OpContext,
        table: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<()> {
        if !has_autoscaling(before) {
            return Ok(());
        }
        let client = self.aws.autoscaling(&ctx.region);
        for (resource, index, had, wants) in autoscaling_changes(table, before, after) {
            autoscaling::release(ctx, &client, &resource, index, (&had, &wants)).await?;
        }
        Ok(())
    }
}

impl DynamodbTable {
    /// Adds each replica in turn (AWS takes one per UpdateTable, once the table is ACTIVE)
    /// and gives it the table's tags.
    async fn add_replicas(
        &self,
        ops: &mut TableOps<'_>,
        regions: &[String],
        tags: &BTreeMap<String, String>,
    ) -> ResourceResult<()> {
        for region in regions {
            change_replica(ops, region, true).await?;
            let desc = ops.wait_ready().await?;
            let arn = desc.table_arn().ok_or_else(|| unexpected("TableArn"))?;
            self.tag_replica(&ops.ctx, arn, region, &BTreeMap::new(), tags)
                .await?;
        }
        Ok(())
    }

    /// Tags the replica in `region` as the table is tagged (AWS copies no tags).
    async fn tag_replica(
        &self,
        ctx: &OpContext,
        table_arn: &str,
        region: &str,
        before: &BTreeMap<String, String>,
        after: &BTreeMap<String, String>,
    ) -> ResourceResult<()> {
        let arn = replicas::replica_arn(table_arn, region)
            .ok_or_else(|| unexpected("a table ARN to derive the replica's from"))?;
        let name = arn.rsplit('/').next().unwrap_or_default().to_string();
        let replica = TableOps {
            client: self.aws.dynamodb(region),
            name: &name,
            ctx: ctx.clone(),
            last: None,
        };
        replica.set_tags(&arn, before, after).await
    }
}

/// Removes each replica in turn, waiting until the table has let go of it.
async fn remove_replicas(ops: &mut TableOps<'_>, regions: &[String]) -> ResourceResult<()> {
    for region in regions {
        change_replica(ops, region, false).await?;
    }
    Ok(())
}

/// Adds (or removes) the replica in `region`, unless the table has (or lacks) it already:
/// a change whose answer was lost, sent again, is refused by AWS (ValidationException) and
/// counts as made once the table says so.
async fn change_replica(ops: &mut TableOps<'_>, region: &str, add: bool) -> ResourceResult<()> {
    let done =
        |desc: &TableDescription| replicas::described(desc).iter().any(|r| r == region) == add;
    if done(&ops.wait_ready().await?) {
        return Ok(());
    }
    let (action, what) = if add {
        (
            replicas::create_action(region)?,
            format!("adding the replica in {region}"),
        )
    } else {
        (
            replicas::delete_action(region)?,
            format!("removing the replica in {region}"),
        )
    };
    let request = ops.request().replica_updates(action);
    match ops.apply(&what, request).await {
        Ok(()) => Ok(()),
        Err(err) if errors::has_code(&err, &["ValidationException"]) => {
            if done(&ops.wait_ready().await?) {
                Ok(())
            } else {
                Err(err)
            }
        }
        Err(err) => Err(err),
    }
}

/// For every resource autoscaled before or after: (resource id, is an index, before,
/// after); an index gone has nothing after.
fn autoscaling_changes(
    table: &str,
    before: &Props,
    after: &Props,
) -> Vec<(String, bool, autoscaling::Scalings, autoscaling::Scalings)> {
    let mut old = autoscaled_targets(table, before);
    let mut new = autoscaled_targets(table, after);
    let resources: BTreeSet<String> = old.keys().chain(new.keys()).cloned().collect();
    resources
        .into_iter()
        .map(|resource| {
            let (was_index, had) = old.remove(&resource).unwrap_or_default();
            let (is_index, wants) = new.remove(&resource).unwrap_or_default();
            (resource, was_index || is_index, had, wants)
        })
        .collect()
}

/// The table's and its global indexes' Application Auto Scaling resource ids, with their
/// autoscaled dimensions (empty when none).
fn autoscaled(table: &str, props: &Props) -> BTreeMap<String, autoscaling::Scalings> {
    autoscaled_targets(table, props)
        .into_iter()
        .map(|(resource, (_, scalings))| (resource, scalings))
        .collect()
}

/// As [`autoscaled`], with whether each resource is an index.
fn autoscaled_targets(
    table: &str,
    props: &Props,
) -> BTreeMap<String, (bool, autoscaling::Scalings)> {
    let mut out = BTreeMap::new();
    out.insert(
        autoscaling::resource_id(table, None),
        (false, autoscaling::scalings(props)),
    );
    for (_, index) in indexes(props, "global_secondary_indexes") {
        if let Some(name) = str_of(index, "name") {
            out.insert(
                autoscaling::resource_id(table, Some(name)),
                (true, autoscaling::scalings(index)),
            );
        }
    }
    out
}

fn has_autoscaling(props: &Props) -> bool {
    autoscaled_targets("", props)
        .values()
        .any(|(_, scalings)| !scalings.is_empty())
}

/// `props` (canonical, from DescribeTable) with the autoscaling `found` for the table and
/// each index, canonical again (which drops the capacities autoscaling owns).
fn set_autoscaling(
    table: &str,
    props: &mut Props,
    found: &BTreeMap<String, autoscaling::Scalings>,
) {
    let set = |map: &mut Props, resource: String| {
        map.remove(autoscaling::KEY);
        if let Some(block) = found.get(&resource).and_then(autoscaling::block) {
            map.insert(autoscaling::KEY.into(), block);
        }
    };
    set(props, autoscaling::resource_id(table, None));
    if let Some(Value::Array(list)) = props.get_mut("global_secondary_indexes") {
        for index in list.iter_mut().filter_map(Value::as_object_mut) {
            let name = index
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let resource = autoscaling::resource_id(table, Some(name));
            set(index, resource);
        }
    }
    canonicalize(props);
}

async fn wait_deleted(ctx: &OpContext, client: &Client, name: &str) -> ResourceResult<()> {
    let what = format!("table {name} to be deleted");
    wait::until(ctx, &what, TABLE_LIMIT, || async move {
        Ok(match describe(client, name).await? {
            None => Poll::Ready(()),
            Some(desc) => {
                let status = desc.table_status().map(|s| s.as_str().to_string());
                Poll::Pending(status.unwrap_or_default())
            }
        })
    })
    .await
}

/// AWS's refusal to delete a protected table is a plain ValidationException; its message is
/// the only way to tell it apart.
fn is_protection_error(err: &ResourceError) -> bool {
    let message = err.message.to_ascii_lowercase();
    err.code.as_deref() == Some("ValidationException")
        && (message.contains("protected against deletion")
            || message.contains("deletion protection"))
}
