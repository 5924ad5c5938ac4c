//! `dynamodb.items`: exactly these items in a table. Puts what is new or changed, deletes what
//! the stack stopped listing, and never touches the table's other items.
//!
//! Items are written as plain YAML/JSON values and converted to DynamoDB's AttributeValues:
//! string → S, number → N, bool → BOOL, null → NULL, list → L, map → M, and the single-key maps
//! `{"$binary": base64}` → B, `{"$string_set": [..]}` → SS, `{"$number_set": [..]}` → NS,
//! `{"$binary_set": [base64..]}` → BS. Reading converts back the same way, and the canonical
//! form of an item is that round trip (sorted maps and sets, numbers as DynamoDB stores them),
//! so what `normalize` gives and what `read` returns compare equal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeyType, KeysAndAttributes, PutRequest, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use plinth_core::decimal::{self, Decimal, NUMBER_TAG};
use plinth_core::diag::SourceFile;
use plinth_core::resource::{
    ErrorKind, Linked, NormalizeContext, Observed, OpContext, PropIssue, ResourceError,
    ResourceResult, ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{is_unknown, path_to_string, str_of, PathSeg, Props};
use serde_json::{json, Map, Value};
use tracing::debug;

use crate::errors::SendExt;
use crate::wait;
use crate::Aws;

/// Seed data is small; this bounds retries of throttled or unprocessed writes.
const ITEMS_LIMIT: Duration = Duration::from_secs(10 * 60);
/// BatchWriteItem takes at most 25 requests, BatchGetItem at most 100 keys.
const WRITE_BATCH: usize = 25;
const GET_BATCH: usize = 100;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

const BINARY: &str = "$binary";
const STRING_SET: &str = "$string_set";
const NUMBER_SET: &str = "$number_set";
const BINARY_SET: &str = "$binary_set";

/// Whether a plain value is a key of DynamoDB type `ty` (S, N or B): keys are never empty.
fn key_fits(value: &Value, ty: &str) -> bool {
    has_key_type(value, ty) && value.as_str() != Some("")
}

fn key_type_words(ty: &str) -> &'static str {
    match ty {
        "S" => "a non-empty string",
        "N" => "a number",
        _ => "binary ({\"$binary\": base64})",
    }
}

fn str_of_value<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str()
}

/// The `dynamodb.items` resource type.
pub struct DynamodbItems {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl DynamodbItems {
    pub fn new(aws: Arc<Aws>) -> DynamodbItems {
        DynamodbItems {
            aws,
            schema: items_schema(),
        }
    }
}

fn items_schema() -> TypeSchema {
    TypeSchema {
        type_name: "dynamodb.items",
        description: "Exactly these items in a DynamoDB table; other items are left alone",
        kind: TypeKind::Managed,
        taggable: false,
        properties: vec![
            Prop::new("table", Shape::String)
                .required()
                .replaces()
                .known_as(&["table_name"])
                .doc("the table's name, usually ${<table>.name}"),
            Prop::new("items", Shape::list(Shape::Any))
                .doc("items as plain values; $binary, $string_set, $number_set, $binary_set maps for the other types"),
            Prop::new("items_file", Shape::String)
                .doc("a YAML or JSON file with a list of items, relative to the stack file; added to items"),
        ],
        attributes: vec![Attr::new(
            "count",
            Shape::integer(),
            "how many items this resource manages",
        )],
    }
}

// ---------------------------------------------------------------------------------------------
// Conversion between plain values and AttributeValues

/// A conversion problem and where in the item it is.
#[derive(Debug)]
struct ConvError {
    path: Vec<PathSeg>,
    message: String,
}

impl ConvError {
    fn new(message: impl Into<String>) -> ConvError {
        ConvError {
            path: Vec::new(),
            message: message.into(),
        }
    }
    fn under(mut self, seg: PathSeg) -> ConvError {
        self.path.insert(0, seg);
        self
    }
    fn render(self, prefix: &[PathSeg]) -> String {
        let mut path = prefix.to_vec();
        path.extend(self.path);
        format!("{}: {}", path_to_string(&path), self.message)
    }
}

type Conv<T> = Result<T, ConvError>;

fn under<T>(result: Conv<T>, seg: PathSeg) -> Conv<T> {
    result.map_err(|e| e.under(seg))
}

/// DynamoDB's limits for a number: 38 significant digits, magnitudes 1E-130 to 9.99…E+125.
const MAX_PRECISION: usize = 38;
const MAGNITUDES: std::ops::RangeInclusive<i64> = -130..=125;

/// A number (plain, or `{"$number": text}` for what a float cannot hold) as DynamoDB's N
/// text, every digit kept and normalised as DynamoDB normalises (`1.50` is `1.5`).
fn number_text(value: &Value) -> Conv<String> {
    let shown = decimal::tagged_text(value).map_or_else(|| value.to_string(), str::to_string);
    let number = decimal::of_json(value)
        .ok_or_else(|| ConvError::new(format!("{shown} is not a decimal number")))?;
    if number.precision() > MAX_PRECISION {
        return Err(ConvError::new(format!(
            "{shown} has {} significant digits; DynamoDB keeps at most {MAX_PRECISION}",
            number.precision()
        )));
    }
    if !number.is_zero() && !MAGNITUDES.contains(&number.magnitude()) {
        return Err(ConvError::new(format!(
            "{shown} is out of DynamoDB's range (1E-130 to 9.99…E+125 either side of zero)"
        )));
    }
    Ok(number.canonical_text())
}

/// DynamoDB's N text as a plain number when a float holds it exactly, else as
/// `{"$number": text}`: reading back gives what the stack wrote.
fn number_value(s: &str) -> Conv<Value> {
    Decimal::parse(s)
        .map(|d| d.to_json())
        .ok_or_else(|| ConvError::new(format!("{s:?} is not a number")))
}

fn decode_binary(value: &Value) -> Conv<Blob> {
    let text = value
        .as_str()
        .ok_or_else(|| ConvError::new("binary values are base64 strings"))?;
    BASE64
        .decode(text)
        .map(Blob::new)
        .map_err(|e| ConvError::new(format!("{text:?} is not valid base64 ({e})")))
}

/// The members of a `$…_set`: a non-empty list without duplicates, as DynamoDB requires.
fn set_members<T, F>(inner: &Value, convert: F, id: impl Fn(&T) -> String) -> Conv<Vec<T>>
where
    F: Fn(&Value) -> Conv<T>,
{
    let list = inner
        .as_array()
        .ok_or_else(|| ConvError::new("a set is written as a list"))?;
    if list.is_empty() {
        return Err(ConvError::new("DynamoDB sets cannot be empty"));
    }
    let mut seen = HashSet::new();
    let mut members = Vec::with_capacity(list.len());
    for (i, value) in list.iter().enumerate() {
        let member = under(convert(value), PathSeg::Index(i))?;
        if !seen.insert(id(&member)) {
            return Err(
                ConvError::new(format!("duplicate set member {value}")).under(PathSeg::Index(i))
            );
        }
        members.push(member);
    }
    Ok(members)
}

fn string_member(value: &Value) -> Conv<String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ConvError::new(format!("expected a string, found {value}")))
}

fn number_member(value: &Value) -> Conv<String> {
    match value {
        Value::Number(_) => number_text(value),
        _ if decimal::tagged_text(value).is_some() => number_text(value),
        _ => Err(ConvError::new(format!("expected a number, found {value}"))),
    }
}

/// A `{"$binary": …}`-style map: the one key and its value.
fn typed(map: &Map<String, Value>) -> Option<(&str, &Value)> {
    if map.len() != 1 {
        return None;
    }
    let (key, value) = map.iter().next()?;
    [BINARY, STRING_SET, NUMBER_SET, BINARY_SET, NUMBER_TAG]
        .contains(&key.as_str())
        .then_some((key.as_str(), value))
}

fn typed_to_attribute(tag: &str, inner: &Value) -> Conv<AttributeValue> {
    let encoded = |b: &Blob| BASE64.encode(b.as_ref());
    Ok(match tag {
        BINARY => AttributeValue::B(decode_binary(inner)?),
        NUMBER_TAG => AttributeValue::N(number_text(&tagged(NUMBER_TAG, inner.clone()))?),
        STRING_SET => AttributeValue::Ss(set_members(inner, string_member, String::clone)?),
        NUMBER_SET => AttributeValue::Ns(set_members(inner, number_member, String::clone)?),
        _ => AttributeValue::Bs(set_members(inner, decode_binary, encoded)?),
    })
}

fn map_to_attributes(map: &Map<String, Value>) -> Conv<HashMap<String, AttributeValue>> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), under(to_attribute(v), PathSeg::Key(k.clone()))?)))
        .collect()
}

fn to_attribute(value: &Value) -> Conv<AttributeValue> {
    Ok(match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(_) => AttributeValue::N(number_text(value)?),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| under(to_attribute(v), PathSeg::Index(i)))
                .collect::<Conv<_>>()?,
        ),
        Value::Object(map) => match typed(map) {
            // A decimal is one value: its errors are at it, not inside it.
            Some((NUMBER_TAG, inner)) => typed_to_attribute(NUMBER_TAG, inner)?,
            Some((tag, inner)) => under(typed_to_attribute(tag, inner), PathSeg::Key(tag.into()))?,
            None => AttributeValue::M(map_to_attributes(map)?),
        },
    })
}

/// Keys in order: maps are compared as sets of keys, and this keeps output stable.
fn sorted_map(map: &HashMap<String, AttributeValue>) -> Conv<Value> {
    let sorted: BTreeMap<&String, &AttributeValue> = map.iter().collect();
    let mut out = Map::new();
    for (k, v) in sorted {
        out.insert(
            k.clone(),
            under(from_attribute(v), PathSeg::Key(k.clone()))?,
        );
    }
    Ok(Value::Object(out))
}

fn tagged(tag: &str, value: Value) -> Value {
    Value::Object([(tag.to_string(), value)].into_iter().collect())
}

/// Number sets in numeric order (DynamoDB returns sets in no particular order).
fn sorted_numbers(members: &[String]) -> Conv<Value> {
    let mut numbers = members
        .iter()
        .map(|s| number_value(s))
        .collect::<Conv<Vec<Value>>>()?;
    let approx = |v: &Value| {
        decimal::of_json(v)
            .and_then(|d| d.canonical_text().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    numbers.sort_by(|a, b| {
        let (x, y) = (approx(a), approx(b));
        x.total_cmp(&y)
            .then_with(|| a.to_string().cmp(&b.to_string()))
    });
    Ok(Value::Array(numbers))
}

fn from_attribute(value: &AttributeValue) -> Conv<Value> {
    Ok(match value {
        AttributeValue::S(s) => json!(s),
        AttributeValue::N(n) => number_value(n)?,
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::B(b) => tagged(BINARY, json!(BASE64.encode(b.as_ref()))),
        AttributeValue::L(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| under(from_attribute(v), PathSeg::Index(i)))
                .collect::<Conv<_>>()?,
        ),
        AttributeValue::M(map) => sorted_map(map)?,
        AttributeValue::Ss(members) => {
            let mut members = members.clone();
            members.sort();
            tagged(STRING_SET, json!(members))
        }
        AttributeValue::Ns(members) => tagged(NUMBER_SET, sorted_numbers(members)?),
        AttributeValue::Bs(members) => {
            let mut bytes: Vec<&[u8]> = members.iter().map(|b| b.as_ref()).collect();
            bytes.sort();
            let encoded: Vec<String> = bytes.iter().map(|b| BASE64.encode(b)).collect();
            tagged(BINARY_SET, json!(encoded))
        }
        other => {
            return Err(ConvError::new(format!(
                "unsupported attribute value {other:?}"
            )))
        }
    })
}

/// A plain item (a map) as DynamoDB attributes. Errors name the path inside the item.
pub fn item_to_attributes(item: &Value) -> Result<HashMap<String, AttributeValue>, String> {
    let map = item
        .as_object()
        .ok_or_else(|| format!("each item must be a map, found {item}"))?;
    map_to_attributes(map).map_err(|e| e.render(&[]))
}

/// DynamoDB attributes as a plain item in canonical form.
pub fn item_from_attributes(item: &HashMap<String, AttributeValue>) -> Result<Value, String> {
    sorted_map(item).map_err(|e| e.render(&[]))
}

/// The canonical form of a plain value: what reading it back from DynamoDB gives.
pub fn canonical_value(value: &Value) -> Result<Value, String> {
    to_attribute(value)
        .and_then(|av| from_attribute(&av))
        .map_err(|e| e.render(&[]))
}

/// The canonical form of one item, with errors located at `at` (`items[3].Tags`).
fn canonical_item(item: &Value, at: &[PathSeg]) -> ResourceResult<Value> {
    if is_unknown(item) {
        return Ok(item.clone());
    }
    let Some(map) = item.as_object() else {
        return Err(ResourceError::invalid(format!(
            "{}: each item must be a map of attributes, found {item}",
            path_to_string(at)
        )));
    };
    map_to_attributes(map)
        .and_then(|attrs| sorted_map(&attrs))
        .map_err(|e| ResourceError::invalid(e.render(at)))
}

// ---------------------------------------------------------------------------------------------
// items_file

fn load_items_file(base: &Path, relative: &str) -> ResourceResult<Vec<Value>> {
    let path = base.join(relative);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ResourceError::invalid(format!("items_file {}: {e}", path.display())))?;
    // An empty file is far more likely a mistake than a wish to delete every item.
    if text.trim().is_empty() {
        return Err(ResourceError::invalid(format!(
            "items_file {} is empty; expected a list of items (write [] for none)",
            path.display()
        )));
    }
    // YAML is a superset of JSON, so one parser reads both.
    let node = plinth_core::stack::yaml::parse(&SourceFile::new(&path, text))
        .map_err(|d| ResourceError::invalid(format!("items_file {d}")))?;
    match node.to_json() {
        Value::Array(items) => Ok(items),
        other => Err(ResourceError::invalid(format!(
            "items_file {}: expected a list of items, found {}",
            path.display(),
            kind_of(&other)
        ))),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

/// The table's key attributes and their types (S, N or B).
#[derive(Clone, Debug)]
struct KeySchema {
    keys: Vec<(String, String, &'static str)>,
}

/// DescribeTable's key schema; `None` when the table does not exist.
async fn key_schema(client: &Client, table: &str) -> ResourceResult<Option<KeySchema>> {
    let desc = match client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .classified()
    {
        Ok(out) => out.table,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(desc) = desc else {
        return Ok(None);
    };
    let mut keys = Vec::new();
    for (kind, role) in [
        (KeyType::Hash, "partition key"),
        (KeyType::Range, "sort key"),
    ] {
        let Some(element) = desc.key_schema().iter().find(|k| k.key_type == kind) else {
            continue;
        };
        let name = element.attribute_name.clone();
        let ty = desc
            .attribute_definitions()
            .iter()
            .find(|a| a.attribute_name == name)
            .map(|a| a.attribute_type.as_str().to_string())
            .ok_or_else(|| {
                ResourceError::other(format!("DescribeTable has no type for key {name}"))
            })?;
        keys.push((name, ty, role));
    }
    if keys.is_empty() {
        return Err(ResourceError::other(format!(
            "DescribeTable returned no key schema for {table}"
        )));
    }
    Ok(Some(KeySchema { keys }))
}

/// The plain value has the key type DynamoDB expects (S, N or B).
fn has_key_type(value: &Value, ty: &str) -> bool {
    match ty {
        "S" => value.is_string(),
        "N" => value.is_number() || decimal::tagged_text(value).is_some(),
        _ => value
            .as_object()
            .and_then(typed)
            .is_some_and(|(tag, _)| tag == BINARY),
    }
}

/// An item's key: a string identifying it and the AttributeValues for Get/Delete requests.
struct ItemKey {
    id: String,
    attrs: HashMap<String, AttributeValue>,
}

fn item_key(schema: &KeySchema, item: &Value) -> Result<ItemKey, String> {
    let map = item.as_object().ok_or("an item must be a map")?;
    let mut parts = Vec::new();
    let mut attrs = HashMap::new();
    for (name, ty, role) in &schema.keys {
        let value = map
            .get(name)
            .ok_or_else(|| format!("has no {name} attribute (the table's {role})"))?;
        if !has_key_type(value, ty) {
            return Err(format!(
                "{name} must be of type {ty} (the table's {role}), found {value}"
            ));
        }
        let attr = to_attribute(value).map_err(|e| e.render(&[PathSeg::Key(name.clone())]))?;
        parts.push(value.clone());
        attrs.insert(name.clone(), attr);
    }
    Ok(ItemKey {
        id: Value::Array(parts).to_string(),
        attrs,
    })
}

/// Every item's key, in order; an item without its keys or a repeated key is an error.
fn keyed_items<'a>(
    schema: &KeySchema,
    items: &'a [Value],
) -> ResourceResult<Vec<(ItemKey, &'a Value)>> {
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    let mut keyed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = item_key(schema, item)
            .map_err(|e| ResourceError::invalid(format!("items[{i}] {e}")))?;
        if let Some(first) = first_seen.insert(key.id.clone(), i) {
            return Err(ResourceError::invalid(format!(
                "items[{first}] and items[{i}] have the same key {}",
                key.id
            )));
        }
        keyed.push((key, item));
    }
    Ok(keyed)
}

/// Keys of items as last applied: ones that cannot have been written are skipped.
fn known_keys<'a>(schema: &KeySchema, items: &'a [Value]) -> Vec<(ItemKey, &'a Value)> {
    let mut seen = HashSet::new();
    items
        .iter()
        .filter_map(|item| item_key(schema, item).ok().map(|k| (k, item)))
        .filter(|(k, _)| seen.insert(k.id.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Batched calls

fn built<T>(
    result: Result<T, aws_smithy_types::error::operation::BuildError>,
) -> ResourceResult<T> {
    result.map_err(|e| ResourceError::other(format!("building a DynamoDB request: {e}")))
}

fn put_request(item: &Value) -> ResourceResult<WriteRequest> {
    let attrs = item_to_attributes(item).map_err(ResourceError::invalid)?;
    let put = built(PutRequest::builder().set_item(Some(attrs)).build())?;
    Ok(WriteRequest::builder().put_request(put).build())
}

fn delete_request(key: &ItemKey) -> ResourceResult<WriteRequest> {
    let delete = built(
        DeleteRequest::builder()
            .set_key(Some(key.attrs.clone()))
            .build(),
    )?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

/// Waits before resending what DynamoDB left unprocessed, or gives up at the deadline.
async fn back_off(ctx: &OpContext, delay: &mut Duration, what: &str) -> ResourceResult<()> {
    let deadline = ctx.deadline_or(ITEMS_LIMIT);
    if Instant::now() >= deadline {
        return Err(ResourceError::new(
            ErrorKind::Timeout,
            format!("DynamoDB kept leaving {what} unprocessed until the deadline"),
        ));
    }
    ctx.progress.status(&format!(
        "{what} unprocessed (throughput exceeded) — retrying"
    ));
    tokio::time::sleep((*delay).min(deadline.saturating_duration_since(Instant::now()))).await;
    *delay = (*delay * 2).min(MAX_BACKOFF);
    Ok(())
}

/// One BatchWriteItem of at most 25 requests, resending UnprocessedItems until none are left.
async fn write_batch(
    ctx: &OpContext,
    client: &Client,
    table: &str,
    batch: Vec<WriteRequest>,
) -> ResourceResult<()> {
    let mut pending = batch;
    let mut delay = FIRST_BACKOFF;
    loop {
        let out = wait::retry_while_busy(ctx, "writing items", ITEMS_LIMIT, || {
            let request = client
                .batch_write_item()
                .request_items(table, pending.clone());
            async move { request.send().await.classified() }
        })
        .await?;
        pending = out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default();
        if pending.is_empty() {
            return Ok(());
        }
        debug!(
            table,
            unprocessed = pending.len(),
            "BatchWriteItem left items unprocessed"
        );
        back_off(ctx, &mut delay, &format!("{} writes", pending.len())).await?;
    }
}

async fn write_all(
    ctx: &OpContext,
    client: &Client,
    table: &str,
    requests: Vec<WriteRequest>,
) -> ResourceResult<()> {
    let total = requests.len();
    for (n, batch) in requests.chunks(WRITE_BATCH).enumerate() {
        debug!(table, size = batch.len(), "BatchWriteItem");
        write_batch(ctx, client, table, batch.to_vec()).await?;
        let done = (n * WRITE_BATCH + batch.len()).min(total);
        ctx.progress
            .status(&format!("wrote {done}/{total} item changes to {table}"));
    }
    Ok(())
}

/// The writes that turn `before` into `after`: deletes for keys no longer listed, puts for
/// items that are new or differ. Items in neither are never touched.
fn changes(
    schema: &KeySchema,
    before: &[Value],
    after: &[Value],
) -> ResourceResult<Vec<WriteRequest>> {
    let wanted = keyed_items(schema, after)?;
    let wanted_ids: HashSet<&str> = wanted.iter().map(|(k, _)| k.id.as_str()).collect();
    let existing = known_keys(schema, before);
    let mut requests = Vec::new();
    for (key, _) in &existing {
        if !wanted_ids.contains(key.id.as_str()) {
            requests.push(delete_request(key)?);
        }
    }
    let existing: HashMap<&str, &Value> = existing
        .iter()
        .map(|(k, item)| (k.id.as_str(), *item))
        .collect();
    for (key, item) in &wanted {
        if existing.get(key.id.as_str()) != Some(item) {
            requests.push(put_request(item)?);
        }
    }
    Ok(requests)
}

type Attributes = HashMap<String, AttributeValue>;

/// One BatchGetItem of at most 100 keys, resending UnprocessedKeys until none are left.
async fn get_batch(
    ctx: &OpContext,
    client: &Client,
    table: &str,
    keys: Vec<Attributes>,
) -> ResourceResult<Vec<Attributes>> {
    // Consistent reads: a plan right after an apply must see what the apply wrote.
    let mut pending = built(
        KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build(),
    )?;
    let mut found = Vec::new();
    let mut delay = FIRST_BACKOFF;
    loop {
        let out = wait::retry_while_busy(ctx, "reading items", ITEMS_LIMIT, || {
            let request = client
                .batch_get_item()
                .request_items(table, pending.clone());
            async move { request.send().await.classified() }
        })
        .await?;
        found.extend(
            out.responses
                .and_then(|mut r| r.remove(table))
                .unwrap_or_default(),
        );
        match out.unprocessed_keys.and_then(|mut u| u.remove(table)) {
            Some(rest) if !rest.keys().is_empty() => {
                back_off(ctx, &mut delay, &format!("{} reads", rest.keys().len())).await?;
                pending = rest;
            }
            _ => return Ok(found),
        }
    }
}

async fn scan_all(client: &Client, table: &str) -> ResourceResult<Vec<Attributes>> {
    let mut items = Vec::new();
    let mut start: Option<Attributes> = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .classified()?;
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(items),
        }
    }
}

fn plain_items(raw: &[Attributes]) -> ResourceResult<Vec<Value>> {
    raw.iter()
        .map(|item| {
            item_from_attributes(item)
                .map_err(|e| ResourceError::other(format!("reading an item back: {e}")))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The resource type

fn items_of(props: &Props) -> &[Value] {
    props
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn table_of(props: &Props) -> ResourceResult<&str> {
    str_of(props, "table")
        .ok_or_else(|| ResourceError::invalid("dynamodb.items needs a table name"))
}

fn observed(table: &str, items: Vec<Value>) -> Observed {
    let count = items.len();
    Observed {
        id: table.to_string(),
        props: [
            ("table".to_string(), json!(table)),
            ("items".to_string(), Value::Array(items)),
        ]
        .into_iter()
        .collect(),
        attrs: count_attr(count),
    }
}

fn count_attr(count: usize) -> Props {
    [("count".to_string(), json!(count))].into_iter().collect()
}

fn no_table(table: &str) -> ResourceError {
    ResourceError::new(ErrorKind::NotFound, format!("table {table} does not exist"))
}

fn with_deadline(ctx: &OpContext) -> OpContext {
    let mut ctx = ctx.clone();
    ctx.deadline = Some(ctx.deadline_or(ITEMS_LIMIT));
    ctx
}

/// Canonical items, each error located at `items[i]` or at the file's item.
fn canonical_items(
    items: &[Value],
    at: impl Fn(usize) -> Vec<PathSeg>,
) -> ResourceResult<Vec<Value>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| canonical_item(item, &at(i)))
        .collect()
}

impl DynamodbItems {
    /// The items of `prior` that still exist, in `prior`'s order.
    async fn read_known(
        &self,
        ctx: &OpContext,
        client: &Client,
        table: &str,
        schema: &KeySchema,
        prior: &[Value],
    ) -> ResourceResult<Vec<Value>> {
        let keys = known_keys(schema, prior);
        let mut found: HashMap<String, Value> = HashMap::new();
        for batch in keys.chunks(GET_BATCH) {
            let attrs = batch.iter().map(|(k, _)| k.attrs.clone()).collect();
            for item in plain_items(&get_batch(ctx, client, table, attrs).await?)? {
                if let Ok(key) = item_key(schema, &item) {
                    found.insert(key.id, item);
                }
            }
        }
        Ok(keys
            .iter()
            .filter_map(|(k, _)| found.remove(&k.id))
            .collect())
    }

    /// Every item of the table (import), ordered by key.
    async fn read_all(
        &self,
        client: &Client,
        table: &str,
        schema: &KeySchema,
    ) -> ResourceResult<Vec<Value>> {
        let mut items: Vec<(String, Value)> = plain_items(&scan_all(client, table).await?)?
            .into_iter()
            .map(|item| {
                (
                    item_key(schema, &item).map(|k| k.id).unwrap_or_default(),
                    item,
                )
            })
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(items.into_iter().map(|(_, item)| item).collect())
    }
}

#[async_trait]
impl ResourceType for DynamodbItems {
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

    /// Each item written in the stack converts to DynamoDB's types, or the error is at the
    /// value (a number with more than 38 digits, a set with a duplicate).
    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let Some(Value::Array(items)) = props.get("items") else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let err = map_to_attributes(item.as_object()?).err()?;
                let mut path = vec![PathSeg::Key("items".into()), PathSeg::Index(i)];
                path.extend(err.path);
                Some(PropIssue {
                    path,
                    message: err.message,
                })
            })
            .collect()
    }

    /// Each item written in the stack against the key schema of the table it names, when
    /// that table is one of the stack's: a missing key or a key of the wrong type is an
    /// error at the item before any call, not a ValidationException after the table exists.
    fn check_linked(&self, props: &Props, linked: &[Linked]) -> Vec<PropIssue> {
        let Some(table) = linked
            .iter()
            .find(|l| l.prop == "table" && l.type_name == "dynamodb.table")
        else {
            return Vec::new();
        };
        let Some(Value::Array(items)) = props.get("items") else {
            return Vec::new();
        };
        let keys: Vec<(&str, &str)> = ["partition_key", "sort_key"]
            .iter()
            .filter_map(|k| table.props.get(*k))
            .filter_map(|k| Some((str_of_value(k, "name")?, str_of_value(k, "type")?)))
            .collect();
        let mut issues = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Value::Object(fields) = item else {
                continue; // not a map: `normalize` says so
            };
            for (name, ty) in &keys {
                let at = vec![PathSeg::Key("items".into()), PathSeg::Index(i)];
                match fields.get(*name) {
                    None => issues.push(PropIssue {
                        path: at,
                        message: format!(
                            "the item has no `{name}`, the key of table `{}` ({})",
                            table.resource,
                            key_type_words(ty)
                        ),
                    }),
                    Some(value) if !is_unknown(value) && !key_fits(value, ty) => {
                        let mut at = at;
                        at.push(PathSeg::Key((*name).to_string()));
                        issues.push(PropIssue {
                            path: at,
                            message: format!(
                                "`{name}` is the key of table `{}` and must be {}, found {}",
                                table.resource,
                                key_type_words(ty),
                                kind_of(value)
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, ctx: &NormalizeContext) -> ResourceResult<()> {
        let inline = match props.remove("items") {
            None => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) if is_unknown(&other) => {
                props.insert("items".into(), other);
                return Ok(());
            }
            Some(other) => {
                return Err(ResourceError::invalid(format!(
                    "items: expected a list, found {}",
                    kind_of(&other)
                )))
            }
        };
        let mut items = canonical_items(&inline, |i| {
            vec![PathSeg::Key("items".into()), PathSeg::Index(i)]
        })?;
        match props.remove("items_file") {
            None => {}
            Some(Value::String(file)) if !is_unknown(&json!(file)) => {
                let loaded = load_items_file(&ctx.base_dir, &file)?;
                let label = format!("{file} item ");
                items.extend(canonical_items(&loaded, |i| {
                    vec![PathSeg::Key(format!("{label}{i}"))]
                })?);
            }
            // Not known until apply: keep it, so the plan shows the resource as changing.
            Some(other) => {
                props.insert("items_file".into(), other);
            }
        }
        props.insert("items".into(), Value::Array(items));
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        match props.get("items") {
            Some(Value::Array(items)) if !props.contains_key("items_file") => {
                count_attr(items.len())
            }
            _ => Props::new(),
        }
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.dynamodb(&ctx.region);
        let ctx = with_deadline(ctx);
        let Some(schema) = key_schema(&client, id).await? else {
            return Ok(None);
        };
        let items = match prior.get("items") {
            Some(Value::Array(prior_items)) => {
                self.read_known(&ctx, &client, id, &schema, prior_items)
                    .await
            }
            // Import: no record of which items are ours, so take them all.
            _ => self.read_all(&client, id, &schema).await,
        };
        match items {
            Ok(items) => Ok(Some(observed(id, items))),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let table = table_of(props)?;
        let items = items_of(props);
        let client = self.aws.dynamodb(&ctx.region);
        let ctx = with_deadline(ctx);
        let schema = key_schema(&client, table)
            .await?
            .ok_or_else(|| no_table(table))?;
        let requests = keyed_items(&schema, items)?
            .into_iter()
            .map(|(_, item)| put_request(item))
            .collect::<ResourceResult<Vec<_>>>()?;
        write_all(&ctx, &client, table, requests).await?;
        Ok(observed(table, items.to_vec()))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let items = items_of(after);
        let client = self.aws.dynamodb(&ctx.region);
        let ctx = with_deadline(ctx);
        let schema = key_schema(&client, id).await?.ok_or_else(|| no_table(id))?;
        let requests = changes(&schema, items_of(before), items)?;
        debug!(table = id, changes = requests.len(), "updating items");
        write_all(&ctx, &client, id, requests).await?;
        Ok(observed(id, items.to_vec()))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, props: &Props) -> ResourceResult<()> {
        let client = self.aws.dynamodb(&ctx.region);
        let ctx = with_deadline(ctx);
        let Some(schema) = key_schema(&client, id).await? else {
            return Ok(());
        };
        let requests = known_keys(&schema, items_of(props))
            .iter()
            .map(|(key, _)| delete_request(key))
            .collect::<ResourceResult<Vec<_>>>()?;
        match write_all(&ctx, &client, id, requests).await {
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}
