//! `route53.record`: one record set in a hosted zone: values with a TTL, or an alias (to a
//! CloudFront distribution, typically).
//!
//! A record's id is `ZONE_NAME_TYPE`, as Terraform's. It is created with `CREATE`, so a record
//! someone else made is never overwritten unless `allow_overwrite` says so; a create sent
//! again after a lost answer finds the record with exactly its values and takes it. Changes
//! are `UPSERT`s, and each is waited for until Route 53 reports it `INSYNC`. TXT values are
//! quoted for Route 53 (`"v=spf1 …"`) and shown without the quotes.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_route53::types::ChangeAction;
use plinth_core::resource::{
    NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult, ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{bool_of, contains_unknown, known_str, reorder, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::errors::vanished;
use crate::resources::route53_common::{
    self as common, bare_zone_id, canonical_name, Alias, RecordSet, ROUTE53_REGION,
};
use crate::Aws;

pub const RECORD_TYPES: &[&str] = &["A", "AAAA", "CNAME", "TXT", "MX", "NS", "CAA", "SRV", "PTR"];
/// The hosted zone id of every CloudFront distribution's domain, for alias targets.
pub const CLOUDFRONT_ZONE_ID: &str = "Z2FDTNDATAQYW2";
const DEFAULT_TTL: i64 = 300;
const ORDER: &[&str] = &[
    "zone_id",
    "name",
    "record_type",
    "ttl",
    "records",
    "alias",
    "allow_overwrite",
];

/// The `route53.record` resource type.
pub struct RecordType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl RecordType {
    pub fn new(aws: Arc<Aws>) -> RecordType {
        RecordType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "route53.record",
        description: "A DNS record set in a Route 53 hosted zone (values, or an alias)",
        kind: TypeKind::Managed,
        taggable: false,
        properties: vec![
            Prop::new("zone_id", Shape::String)
                .required()
                .replaces()
                .doc("the hosted zone, e.g. ${zone.id}"),
            Prop::new("name", Shape::String)
                .required()
                .replaces()
                .doc("the full name, e.g. www.example.com"),
            Prop::new("record_type", Shape::Enum(RECORD_TYPES))
                .required()
                .replaces()
                .doc("A, AAAA, CNAME, TXT, MX, NS, CAA, SRV or PTR"),
            Prop::new("ttl", Shape::int_range(0, 2_147_483_647))
                .doc("seconds resolvers may cache the answer; default 300 (not for aliases)"),
            Prop::new("records", Shape::list(Shape::String))
                .doc("the values (TXT values are quoted by plinth)"),
            Prop::new(
                "alias",
                Shape::Object(vec![
                    Prop::new("name", Shape::String)
                        .required()
                        .doc("the target's DNS name, e.g. ${site.domain_name}"),
                    Prop::new("zone_id", Shape::String).doc(
                        "the target's hosted zone; default CloudFront's (Z2FDTNDATAQYW2) for \
                         a *.cloudfront.net name",
                    ),
                    Prop::new("evaluate_target_health", Shape::Bool).doc("default false"),
                ]),
            )
            .doc("instead of records: an alias to an AWS resource (free to query)"),
            Prop::new("allow_overwrite", Shape::Bool).doc(
                "true: take over a record of this name and type that already exists; \
                 default false (such a record fails the create)",
            ),
        ],
        attributes: vec![
            Attr::new("id", Shape::String, "ZONE_NAME_TYPE"),
            Attr::new("fqdn", Shape::String, "the record's full name"),
        ],
    }
}

#[async_trait]
impl ResourceType for RecordType {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn pinned_region(&self, _props: &Props) -> Option<&'static str> {
        Some(ROUTE53_REGION)
    }

    fn cost(
        &self,
        _props: &Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        crate::cost::free(ctx, self.schema.type_name)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        let has_alias = props.contains_key("alias");
        let has_records = props.contains_key("records");
        if has_alias == has_records {
            issues.push(PropIssue::at(
                &["records"],
                "give records (with a ttl) or an alias, one of the two",
            ));
        }
        if has_alias && props.contains_key("ttl") {
            issues.push(PropIssue::at(
                &["ttl"],
                "an alias has no ttl: Route 53 answers with the target's",
            ));
        }
        if has_alias {
            let kind = known_str(props, "record_type").unwrap_or("A");
            if !["A", "AAAA", "CNAME", "TXT", "MX", "CAA", "SRV", "PTR"].contains(&kind) {
                issues.push(PropIssue::at(
                    &["alias"],
                    format!("a {kind} record cannot be an alias"),
                ));
            }
        }
        if known_str(props, "record_type") == Some("CNAME") {
            if let Some(Value::Array(values)) = props.get("records") {
                if values.len() > 1 {
                    issues.push(PropIssue::at(&["records"], "a CNAME record has one value"));
                }
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        let mut attrs = Props::new();
        if let Some(id) = record_id(props) {
            attrs.insert("id".into(), json!(id));
        }
        if let Some(name) = known_str(props, "name") {
            attrs.insert("fqdn".into(), json!(name));
        }
        attrs
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let (zone, name, kind) = split_id(id)?;
        let client = self.aws.route53(&ctx.region);
        let found = common::find_record(&client, zone, name, kind).await?;
        Ok(found.map(|set| observe(zone, &set, prior)))
    }

    /// A record with exactly the desired values is what an interrupted create wrote.
    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let Some(id) = record_id(props) else {
            return Ok(None);
        };
        let found = self.read(ctx, &id, props).await?;
        Ok(found.filter(|o| same_record(&o.props, props)))
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.route53(&ctx.region);
        let id = record_id(props).ok_or_else(|| {
            ResourceError::invalid("route53.record needs zone_id, name and record_type")
        })?;
        let (zone, _, _) = split_id(&id)?;
        let set = record_set(props)?;
        let change = match common::change(&client, zone, vec![(ChangeAction::Create, &set)]).await {
            Ok(change) => change,
            Err(err) if common::is_existing_record(&err) => {
                let existing = self.read(ctx, &id, props).await?;
                match existing {
                    // The SDK's retry of a create whose answer was lost: already done.
                    Some(o) if same_record(&o.props, props) => String::new(),
                    Some(_) if bool_of(props, "allow_overwrite") == Some(true) => {
                        debug!(record = id, "taking over the existing record");
                        common::change(&client, zone, vec![(ChangeAction::Upsert, &set)]).await?
                    }
                    _ => {
                        return Err(ResourceError {
                            message: format!(
                                "{}; set allow_overwrite: true to take it over",
                                err.message
                            ),
                            ..err
                        })
                    }
                }
            }
            Err(err) => return Err(err),
        };
        common::wait_insync(ctx, &client, &change).await?;
        Ok(Observed {
            id: id.clone(),
            props: props.clone(),
            attrs: self.known_attrs(props),
        })
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        _before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.route53(&ctx.region);
        let (zone, _, _) = split_id(id)?;
        let set = record_set(after)?;
        let change = common::change(&client, zone, vec![(ChangeAction::Upsert, &set)]).await?;
        common::wait_insync(ctx, &client, &change).await?;
        self.read(ctx, id, after)
            .await?
            .ok_or_else(|| vanished(&format!("record {id}")))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = self.aws.route53(&ctx.region);
        let (zone, name, kind) = split_id(id)?;
        // A DELETE must repeat the record exactly as it is now, not as the state has it.
        let Some(current) = common::find_record(&client, zone, name, kind).await? else {
            return Ok(());
        };
        match common::change(&client, zone, vec![(ChangeAction::Delete, &current)]).await {
            Err(err) if common::is_missing_record(&err) => Ok(()),
            Err(err) if err.kind == plinth_core::resource::ErrorKind::NotFound => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    if let Some(zone) = known_str(props, "zone_id").map(|z| bare_zone_id(z).to_string()) {
        props.insert("zone_id".into(), json!(zone));
    }
    if let Some(name) = known_str(props, "name").map(canonical_name) {
        props.insert("name".into(), json!(name));
    }
    let txt = known_str(props, "record_type") == Some("TXT");
    if let Some(Value::Array(values)) = props.get_mut("records") {
        if !values.iter().any(contains_unknown) {
            for v in values.iter_mut() {
                if let Some(text) = v.as_str() {
                    *v = json!(if txt {
                        unquoted(text)
                    } else {
                        text.to_string()
                    });
                }
            }
            values.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            values.dedup();
        }
    }
    if let Some(Value::Object(alias)) = props.get_mut("alias") {
        let name = alias
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(name) = name.filter(|n| !contains_unknown(&json!(n))) {
            let name = canonical_name(&name);
            if !alias.contains_key("zone_id") && name.ends_with(".cloudfront.net") {
                alias.insert("zone_id".into(), json!(CLOUDFRONT_ZONE_ID));
            }
            alias.insert("name".into(), json!(name));
        }
        alias
            .entry("evaluate_target_health")
            .or_insert_with(|| json!(false));
    } else if props.contains_key("records") {
        props.entry("ttl").or_insert_with(|| json!(DEFAULT_TTL));
    }
    props
        .entry("allow_overwrite")
        .or_insert_with(|| json!(false));
    reorder(props, ORDER);
}

/// A TXT value as written, from Route 53's form: one or more quoted strings of at most 255
/// characters (`"v=DKIM1; k=rsa; p=MIIB…" "…rest"`), joined, with `\"` and `\\` unescaped.
/// A value that is not quoted at all is taken as it is.
pub fn unquoted(text: &str) -> String {
    if !text.starts_with('"') {
        return text.to_string();
    }
    let mut out = String::new();
    let mut chars = text.chars();
    let mut inside = false;
    while let Some(c) = chars.next() {
        match (inside, c) {
            (false, '"') => inside = true,
            (false, _) => {}
            (true, '"') => inside = false,
            (true, '\\') => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            (true, _) => out.push(c),
        }
    }
    out
}

/// Route 53's longest string in a TXT record.
const TXT_CHUNK: usize = 255;

/// A TXT value as Route 53 takes it: quoted strings of at most 255 characters, quotes and
/// backslashes inside escaped.
pub fn quoted(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let chunks: Vec<String> = chars
        .chunks(TXT_CHUNK)
        .map(|chunk| {
            let piece: String = chunk.iter().collect();
            format!("\"{}\"", piece.replace('\\', "\\\\").replace('"', "\\\""))
        })
        .collect();
    if chunks.is_empty() {
        "\"\"".to_string()
    } else {
        chunks.join(" ")
    }
}

fn record_id(props: &Props) -> Option<String> {
    let zone = known_str(props, "zone_id")?;
    let name = known_str(props, "name")?;
    let kind = known_str(props, "record_type")?;
    Some(format!(
        "{}_{}_{kind}",
        bare_zone_id(zone),
        canonical_name(name)
    ))
}

/// `ZONE_NAME_TYPE` into its parts (a name holds no `_` at either end of it).
fn split_id(id: &str) -> ResourceResult<(&str, &str, &str)> {
    let bad = || ResourceError::invalid(format!("{id:?} is not a record id (ZONE_NAME_TYPE)"));
    let (zone, rest) = id.split_once('_').ok_or_else(bad)?;
    let (name, kind) = rest.rsplit_once('_').ok_or_else(bad)?;
    Ok((zone, name, kind))
}

fn record_set(props: &Props) -> ResourceResult<RecordSet> {
    let name = known_str(props, "name")
        .ok_or_else(|| ResourceError::invalid("route53.record needs a name"))?;
    let kind = known_str(props, "record_type")
        .ok_or_else(|| ResourceError::invalid("route53.record needs a record_type"))?;
    let alias = props
        .get("alias")
        .and_then(Value::as_object)
        .map(|a| Alias {
            name: a
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            zone_id: a
                .get("zone_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            evaluate_target_health: a
                .get("evaluate_target_health")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        });
    if alias.as_ref().is_some_and(|a| a.zone_id.is_empty()) {
        return Err(ResourceError::invalid(
            "alias.zone_id: the target's hosted zone is needed for a name outside CloudFront",
        ));
    }
    let values = props
        .get("records")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(|v| {
                    if kind == "TXT" {
                        quoted(v)
                    } else {
                        v.to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(RecordSet {
        name: name.to_string(),
        kind: kind.to_string(),
        ttl: alias.is_none().then(|| {
            props
                .get("ttl")
                .and_then(Value::as_i64)
                .unwrap_or(DEFAULT_TTL)
        }),
        values,
        alias,
    })
}

/// Whether two canonical records say the same (name, type, TTL, values or alias).
fn same_record(found: &Props, desired: &Props) -> bool {
    let keys = ["name", "record_type", "ttl", "records", "alias"];
    keys.iter().all(|k| found.get(*k) == desired.get(*k))
}

fn observe(zone: &str, set: &RecordSet, prior: &Props) -> Observed {
    let mut props = Props::new();
    props.insert("zone_id".into(), json!(zone));
    props.insert("name".into(), json!(set.name));
    props.insert("record_type".into(), json!(set.kind));
    match &set.alias {
        Some(alias) => {
            props.insert(
                "alias".into(),
                json!({
                    "name": alias.name,
                    "zone_id": alias.zone_id,
                    "evaluate_target_health": alias.evaluate_target_health,
                }),
            );
        }
        None => {
            if let Some(ttl) = set.ttl {
                props.insert("ttl".into(), json!(ttl));
            }
            props.insert("records".into(), json!(set.values));
        }
    }
    if let Some(overwrite) = prior.get("allow_overwrite") {
        props.insert("allow_overwrite".into(), overwrite.clone());
    }
    canonicalize(&mut props);
    let id = format!("{zone}_{}_{}", set.name, set.kind);
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(id));
    attrs.insert("fqdn".into(), json!(set.name));
    Observed { id, props, attrs }
}
