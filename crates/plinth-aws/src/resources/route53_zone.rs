//! `route53.zone`: a public hosted zone, created or (with `lookup: true`) an existing one
//! found by name.
//!
//! `CreateHostedZone` takes the create token as its `CallerReference`: a create sent again
//! after a lost answer or a killed run is refused by AWS (`HostedZoneAlreadyExists`), and the
//! zone that carries the reference is the one this create made. Tags are written by a second
//! call, so `find` goes by the reference, not by tags. A looked-up zone is read at plan time
//! (a missing one fails the plan, before anything is made), is never changed, and destroy
//! leaves it. A zone is deleted once the records plinth wrote in it are gone; other records
//! in it stop the delete unless `force_destroy` is set.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, HostedZone, HostedZoneConfig, ResourceRecordSet, RrType,
    Tag, TagResourceType,
};
use aws_sdk_route53::Client;
use plinth_core::cost::{CostContext, CostLine};
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{bool_of, known_str, reorder, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::errors::{vanished, SendExt};
use crate::resources::route53_common::{
    self as common, bare_zone_id, canonical_name, ROUTE53_REGION,
};
use crate::resources::tags;
use crate::Aws;

const ORDER: &[&str] = &[
    "name",
    "lookup",
    "zone_id",
    "comment",
    "force_destroy",
    "tags",
];
/// What AWS answers a second create with the same caller reference (and moto, a second zone
/// of the same name).
const ALREADY_MADE: &[&str] = &["HostedZoneAlreadyExists", "ConflictingDomainExists"];

/// The `route53.zone` resource type.
pub struct ZoneType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl ZoneType {
    pub fn new(aws: Arc<Aws>) -> ZoneType {
        ZoneType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "route53.zone",
        description: "A Route 53 public hosted zone, created or looked up by name",
        kind: TypeKind::Managed,
        taggable: true,
        properties: vec![
            Prop::new("name", Shape::String)
                .required()
                .replaces()
                .known_as(&["domain"])
                .doc("the domain, e.g. example.com"),
            Prop::new("lookup", Shape::Bool).replaces().doc(
                "true: use the account's existing public zone of this name (read when \
                 planning, never changed, left by destroy); default false (create one)",
            ),
            Prop::new("zone_id", Shape::String)
                .computed()
                .replaces()
                .doc("the looked-up zone's id; set by plinth"),
            Prop::new("comment", Shape::String).doc("the zone's comment; default none"),
            Prop::new("force_destroy", Shape::Bool).doc(
                "true: destroy deletes records plinth did not write too; default false \
                 (such records stop the delete)",
            ),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of a created zone"),
        ],
        attributes: vec![
            Attr::new("id", Shape::String, "the hosted zone id (Z…)"),
            Attr::new("arn", Shape::String, "the hosted zone ARN"),
            Attr::new("name", Shape::String, "the domain"),
            Attr::new(
                "name_servers",
                Shape::list(Shape::String),
                "the name servers to delegate the domain to, at its registrar",
            ),
        ],
    }
}

#[async_trait]
impl ResourceType for ZoneType {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn pinned_region(&self, _props: &Props) -> Option<&'static str> {
        Some(ROUTE53_REGION)
    }

    fn cost(&self, props: &Props, ctx: &CostContext) -> Vec<CostLine> {
        if is_lookup(props) {
            return vec![CostLine::free(
                "an existing zone: billed where it is, not by this stack",
            )];
        }
        let what = "hosted zone (not billed when deleted within 12 hours of its creation)";
        match ctx.global_price(&["route53", "hosted_zone_month"]) {
            Ok(month) => vec![CostLine::per_month(
                format!("{what} at ${}/month", plinth_core::cost::price_text(month)),
                month,
            )],
            Err(e) => vec![CostLine::unknown("hosted zone", e.to_string())],
        }
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(name) = known_str(props, "name") {
            let name = canonical_name(name);
            if !name.contains('.') || name.starts_with('.') || name.contains("..") {
                issues.push(PropIssue::at(
                    &["name"],
                    format!("{name:?} is not a domain name (e.g. example.com)"),
                ));
            }
        }
        if is_lookup(props) && props.contains_key("force_destroy") {
            issues.push(PropIssue::at(
                &["force_destroy"],
                "a looked-up zone is never destroyed",
            ));
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    /// A looked-up zone is found now, so the plan shows it and a missing one fails the plan.
    async fn resolve(
        &self,
        ctx: &OpContext,
        desired: &mut Props,
        _current: Option<&Props>,
    ) -> ResourceResult<Vec<String>> {
        let Some(name) = known_str(desired, "name").filter(|_| is_lookup(desired)) else {
            return Ok(Vec::new());
        };
        let name = name.to_string();
        let client = self.aws.route53(&ctx.region);
        let zone = public_zone_named(&client, &name).await?.ok_or_else(|| {
            ResourceError::new(
                ErrorKind::NotFound,
                format!("no public hosted zone named {name} in this account (lookup: true)"),
            )
        })?;
        let id = bare_zone_id(zone.id()).to_string();
        desired.insert("zone_id".into(), json!(id));
        Ok(vec![format!(
            "the existing zone {id} ({name}) is used; destroy leaves it"
        )])
    }

    fn known_attrs(&self, props: &Props) -> Props {
        let mut attrs = plinth_core::value::pick(props, &["name"]);
        if let Some(id) = known_str(props, "zone_id") {
            attrs.insert("id".into(), json!(id));
        }
        attrs
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.route53(&ctx.region);
        let Some((zone, servers)) = get_zone(&client, id).await? else {
            return Ok(None);
        };
        let tags = if is_lookup(prior) {
            // Not this stack's: its tags are whatever its owner gave it.
            tags::tags_of(prior)
        } else {
            zone_tags(&client, id).await?
        };
        Ok(Some(observe(&zone, servers, tags, prior)))
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let (Some(name), Some(token)) = (known_str(props, "name"), &ctx.create_token) else {
            return Ok(None);
        };
        let client = self.aws.route53(&ctx.region);
        match made_by(&client, name, token).await? {
            Some(zone) => self.read(ctx, bare_zone_id(zone.id()), props).await,
            None => Ok(None),
        }
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "route53", "hostedzone/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.route53(&ctx.region);
        let name = known_str(props, "name")
            .ok_or_else(|| ResourceError::invalid("route53.zone needs a name"))?;
        if is_lookup(props) {
            let id = known_str(props, "zone_id")
                .ok_or_else(|| ResourceError::invalid("the looked-up zone has no id"))?;
            return self
                .read(ctx, id, props)
                .await?
                .ok_or_else(|| vanished(&format!("hosted zone {id} ({name})")));
        }
        let reference = ctx
            .create_token
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let id = match create_zone(&client, name, &reference, props).await {
            Ok((id, change)) => {
                common::wait_insync(ctx, &client, &change).await?;
                id
            }
            Err(err) if crate::errors::has_code(&err, ALREADY_MADE) => {
                match made_by(&client, name, &reference).await? {
                    Some(zone) => bare_zone_id(zone.id()).to_string(),
                    None => return Err(err),
                }
            }
            Err(err) => return Err(err),
        };
        set_tags(&client, &id, &BTreeMap::new(), &tags::user_tags(props)).await?;
        self.read(ctx, &id, props)
            .await?
            .ok_or_else(|| vanished(&format!("hosted zone {id}")))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.route53(&ctx.region);
        if !is_lookup(after) {
            if before.get("comment") != after.get("comment") {
                debug!(zone = id, "UpdateHostedZoneComment");
                client
                    .update_hosted_zone_comment()
                    .id(id)
                    .comment(known_str(after, "comment").unwrap_or_default())
                    .send()
                    .await
                    .classified()?;
            }
            set_tags(
                &client,
                id,
                &tags::user_tags(before),
                &tags::user_tags(after),
            )
            .await?;
        }
        self.read(ctx, id, after)
            .await?
            .ok_or_else(|| vanished(&format!("hosted zone {id}")))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, props: &Props) -> ResourceResult<()> {
        if is_lookup(props) {
            return Ok(());
        }
        let client = self.aws.route53(&ctx.region);
        if bool_of(props, "force_destroy") == Some(true) {
            match remove_records(&client, id).await {
                // Gone already (deleted by hand, or a delete whose answer was lost).
                Err(err) if err.kind == ErrorKind::NotFound => return Ok(()),
                other => other?,
            }
        }
        debug!(zone = id, "DeleteHostedZone");
        match client.delete_hosted_zone().id(id).send().await.classified() {
            Ok(_) => Ok(()),
            Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
            Err(err) if err.code.as_deref() == Some("HostedZoneNotEmpty") => Err(ResourceError {
                kind: ErrorKind::Invalid,
                message: format!(
                    "{}: the zone holds records this stack did not write (set \
                         force_destroy: true to delete them too)",
                    err.message
                ),
                ..err
            }),
            Err(err) => Err(err),
        }
    }
}

fn is_lookup(props: &Props) -> bool {
    bool_of(props, "lookup") == Some(true)
}

fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    if let Some(name) = known_str(props, "name").map(canonical_name) {
        props.insert("name".into(), json!(name));
    }
    props.entry("lookup").or_insert_with(|| json!(false));
    if !is_lookup(props) {
        props.entry("force_destroy").or_insert_with(|| json!(false));
    }
    props.insert("tags".into(), tags::tags_value(tags::tags_of(props)));
    reorder(props, ORDER);
}

async fn create_zone(
    client: &Client,
    name: &str,
    reference: &str,
    props: &Props,
) -> ResourceResult<(String, String)> {
    debug!(zone = name, reference, "CreateHostedZone");
    let config = HostedZoneConfig::builder()
        .set_comment(known_str(props, "comment").map(str::to_string))
        .private_zone(false)
        .build();
    let out = client
        .create_hosted_zone()
        .name(name)
        .caller_reference(reference)
        .hosted_zone_config(config)
        .send()
        .await
        .classified()?;
    let id = out
        .hosted_zone()
        .map(|z| bare_zone_id(z.id()).to_string())
        .ok_or_else(|| ResourceError::other("CreateHostedZone returned no zone"))?;
    let change = out
        .change_info()
        .map(|c| c.id().to_string())
        .unwrap_or_default();
    Ok((id, change))
}

/// The zones named `name`, in the order AWS lists them.
async fn zones_named(client: &Client, name: &str) -> ResourceResult<Vec<HostedZone>> {
    let out = client
        .list_hosted_zones_by_name()
        .dns_name(name)
        .send()
        .await
        .classified()?;
    let wanted = canonical_name(name);
    Ok(out
        .hosted_zones()
        .iter()
        .filter(|z| canonical_name(z.name()) == wanted)
        .cloned()
        .collect())
}

async fn public_zone_named(client: &Client, name: &str) -> ResourceResult<Option<HostedZone>> {
    let zones = zones_named(client, name).await?;
    let public: Vec<HostedZone> = zones
        .into_iter()
        .filter(|z| !z.config().is_some_and(|c| c.private_zone()))
        .collect();
    if public.len() > 1 {
        let ids: Vec<&str> = public.iter().map(|z| bare_zone_id(z.id())).collect();
        return Err(ResourceError::invalid(format!(
            "{} public hosted zones are named {name} ({}): give the zone's id instead",
            public.len(),
            ids.join(", ")
        )));
    }
    Ok(public.into_iter().next())
}

/// The zone a create with this caller reference made.
async fn made_by(
    client: &Client,
    name: &str,
    reference: &str,
) -> ResourceResult<Option<HostedZone>> {
    Ok(zones_named(client, name)
        .await?
        .into_iter()
        .find(|z| z.caller_reference() == reference))
}

async fn get_zone(client: &Client, id: &str) -> ResourceResult<Option<(HostedZone, Vec<String>)>> {
    match client.get_hosted_zone().id(id).send().await.classified() {
        Ok(out) => {
            let servers = out
                .delegation_set()
                .map(|d| d.name_servers().to_vec())
                .unwrap_or_default();
            Ok(out.hosted_zone().cloned().map(|z| (z, servers)))
        }
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

async fn zone_tags(client: &Client, id: &str) -> ResourceResult<BTreeMap<String, String>> {
    let out = client
        .list_tags_for_resource()
        .resource_type(TagResourceType::Hostedzone)
        .resource_id(id)
        .send()
        .await
        .classified()?;
    Ok(out
        .resource_tag_set()
        .map(|set| {
            set.tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .filter(|(k, _)| !tags::is_reserved(k))
                .collect()
        })
        .unwrap_or_default())
}

async fn set_tags(
    client: &Client,
    id: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> ResourceResult<()> {
    let (set, remove) = tags::tag_changes(before, after);
    if set.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let tags = set
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build());
    client
        .change_tags_for_resource()
        .resource_type(TagResourceType::Hostedzone)
        .resource_id(id)
        .set_add_tags(Some(tags.collect()).filter(|t: &Vec<Tag>| !t.is_empty()))
        .set_remove_tag_keys(Some(remove).filter(|r| !r.is_empty()))
        .send()
        .await
        .classified()
        .map(|_| ())
}

/// Deletes every record but the zone's own NS and SOA (`force_destroy`), each exactly as
/// Route 53 lists it (a weighted or failover record's routing included, which a DELETE must
/// repeat).
async fn remove_records(client: &Client, id: &str) -> ResourceResult<()> {
    let zone_name = get_zone(client, id)
        .await?
        .map(|(z, _)| canonical_name(z.name()))
        .unwrap_or_default();
    let doomed: Vec<ResourceRecordSet> = all_records(client, id)
        .await?
        .into_iter()
        .filter(|s| {
            let own = canonical_name(s.name()) == zone_name
                && matches!(s.r#type(), RrType::Ns | RrType::Soa);
            !own
        })
        .collect();
    // Route 53 takes at most 1,000 values in one batch.
    for chunk in doomed.chunks(100) {
        let mut batch = ChangeBatch::builder();
        for set in chunk {
            let change = Change::builder()
                .action(ChangeAction::Delete)
                .resource_record_set(set.clone())
                .build()
                .map_err(|e| ResourceError::invalid(format!("change: {e}")))?;
            batch = batch.changes(change);
        }
        let batch = batch
            .build()
            .map_err(|e| ResourceError::invalid(format!("change batch: {e}")))?;
        debug!(
            zone = id,
            records = chunk.len(),
            "ChangeResourceRecordSets DELETE"
        );
        client
            .change_resource_record_sets()
            .hosted_zone_id(id)
            .change_batch(batch)
            .send()
            .await
            .classified()?;
    }
    Ok(())
}

/// Every record set of the zone, page by page (a page may end inside the record sets of one
/// name and type, which the identifier then tells apart).
async fn all_records(client: &Client, id: &str) -> ResourceResult<Vec<ResourceRecordSet>> {
    let mut sets = Vec::new();
    let mut start: Option<(String, RrType, Option<String>)> = None;
    loop {
        let out = client
            .list_resource_record_sets()
            .hosted_zone_id(id)
            .set_start_record_name(start.as_ref().map(|(name, _, _)| name.clone()))
            .set_start_record_type(start.as_ref().map(|(_, kind, _)| kind.clone()))
            .set_start_record_identifier(start.as_ref().and_then(|(_, _, i)| i.clone()))
            .send()
            .await
            .classified()?;
        sets.extend(out.resource_record_sets().iter().cloned());
        start = match (
            out.is_truncated(),
            out.next_record_name(),
            out.next_record_type(),
        ) {
            (true, Some(name), Some(kind)) => Some((
                name.to_string(),
                kind.clone(),
                out.next_record_identifier().map(str::to_string),
            )),
            _ => break,
        };
    }
    Ok(sets)
}

fn observe(
    zone: &HostedZone,
    servers: Vec<String>,
    tags: BTreeMap<String, String>,
    prior: &Props,
) -> Observed {
    let id = bare_zone_id(zone.id()).to_string();
    let mut props = Props::new();
    props.insert("name".into(), json!(canonical_name(zone.name())));
    props.insert("lookup".into(), json!(is_lookup(prior)));
    if is_lookup(prior) {
        props.insert("zone_id".into(), json!(id));
    }
    if let Some(comment) = zone.config().and_then(|c| c.comment()) {
        if !comment.is_empty() {
            props.insert("comment".into(), json!(comment));
        }
    }
    if let Some(force) = prior.get("force_destroy") {
        props.insert("force_destroy".into(), force.clone());
    }
    props.insert("tags".into(), tags::tags_value(tags));
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(id));
    attrs.insert(
        "arn".into(),
        json!(format!("arn:aws:route53:::hostedzone/{id}")),
    );
    attrs.insert("name".into(), json!(canonical_name(zone.name())));
    attrs.insert("name_servers".into(), Value::from(servers));
    Observed { id, props, attrs }
}
