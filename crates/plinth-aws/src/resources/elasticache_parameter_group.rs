//! `elasticache.parameter_group`: engine parameters (`maxmemory-policy`, …) for caches of
//! one family (`redis7`, `valkey8`, `memcached1.6`).
//!
//! Only the parameters a stack sets are managed: `read` asks for the user-set ones
//! (`Source=user`), so the hundreds of engine defaults never show as differences. A changed
//! or added parameter is set with ModifyCacheParameterGroup (AWS takes at most 20 per call);
//! a removed one goes back to its default with ResetCacheParameterGroup.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_elasticache::types::{CacheParameterGroup, ParameterNameValue};
use aws_sdk_elasticache::Client;
use plinth_core::plan::planner::fill_computed;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, str_of, PathSeg, Props};
use serde_json::{json, Map, Value};
use tracing::debug;

use crate::resources::elasticache_common::{self as common, known_str, SendExt};
use crate::resources::tags;
use crate::wait;
use crate::Aws;

const DEFAULT_DESCRIPTION: &str = "Managed by plinth";
/// AWS's limit of parameters per ModifyCacheParameterGroup call.
pub const PARAMETERS_PER_CALL: usize = 20;
const MAX_NAME: usize = 255;
/// Changing parameters of a group in use waits for the clusters using it.
const UPDATE_LIMIT: Duration = Duration::from_secs(15 * 60);
/// A group in use by a cluster that is being deleted is freed when the cluster is gone.
const DELETE_LIMIT: Duration = Duration::from_secs(30 * 60);
/// The engines parameter group families are named after (`redis7`, `memcached1.6`).
const FAMILY_ENGINES: &[&str] = &["redis", "valkey", "memcached"];
/// Property order in canonical form (the schema's).
const ORDER: &[&str] = &["name", "family", "description", "parameters", "tags"];

/// The `elasticache.parameter_group` resource type.
pub struct ParameterGroup {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl ParameterGroup {
    pub fn new(aws: Arc<Aws>) -> ParameterGroup {
        ParameterGroup {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "elasticache.parameter_group",
        description: "An ElastiCache parameter group: engine parameters for one family",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("name", Shape::String)
                .prefixable(255)
                .required()
                .replaces()
                .known_as(&["cache_parameter_group_name"])
                .unique()
                .doc("the group name: a lowercase letter, then letters, digits and hyphens"),
            Prop::new("family", Shape::String)
                .required()
                .replaces()
                .known_as(&["cache_parameter_group_family"])
                .doc("the engine family, e.g. redis7, valkey8, memcached1.6"),
            Prop::new("description", Shape::String)
                .replaces()
                .doc("the group description; default \"Managed by plinth\"; AWS cannot change it"),
            Prop::new(
                "parameters",
                Shape::map(Shape::OneOf(vec![Shape::String, Shape::Number])),
            )
            .known_as(&["parameter", "parameter_name_values"])
            .doc("parameter values by name, e.g. maxmemory-policy: allkeys-lru; others keep their defaults"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the group"),
        ]),
        attributes: vec![
            Attr::new("name", Shape::String, "the group name"),
            Attr::new("arn", Shape::String, "the group ARN"),
        ],
    }
}

#[async_trait]
impl ResourceType for ParameterGroup {
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
        if let Some(problem) = known_str(props, "name").and_then(name_problem) {
            issues.push(PropIssue::at(&["name"], problem));
        }
        if let Some(problem) = known_str(props, "family").and_then(family_problem) {
            issues.push(PropIssue::at(&["family"], problem));
        }
        if known_str(props, "description").is_some_and(|d| d.trim().is_empty()) {
            issues.push(PropIssue::at(
                &["description"],
                "AWS requires a description; leave the key out for \"Managed by plinth\"",
            ));
        }
        if let Some(Value::Object(parameters)) = props.get("parameters") {
            for (name, value) in parameters {
                let at = vec![
                    PathSeg::Key("parameters".into()),
                    PathSeg::Key(name.clone()),
                ];
                if name.trim().is_empty() {
                    issues.push(PropIssue {
                        path: at,
                        message: "a parameter needs a name".into(),
                    });
                } else if value.as_str().is_some_and(|v| v.is_empty()) {
                    issues.push(PropIssue {
                        path: at,
                        message: format!(
                            "{name} has an empty value; remove it to go back to the default"
                        ),
                    });
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
        plinth_core::value::pick(props, &["name"])
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.elasticache(&ctx.region);
        let Some(group) = describe(&client, id).await? else {
            return Ok(None);
        };
        let arn = arn_of(&group)?;
        let extras =
            futures::try_join!(user_parameters(&client, id), common::tags_of(&client, arn));
        let (parameters, tags) = match extras {
            Ok(extras) => extras,
            // Deleted between the calls.
            Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        observe(&group, parameters, tags).map(Some)
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
        crate::arn::name_after(arn, "elasticache", "parametergroup:")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.elasticache(&ctx.region);
        let name = str_of(props, "name")
            .ok_or_else(|| ResourceError::invalid("elasticache.parameter_group needs a name"))?;
        let family = str_of(props, "family")
            .ok_or_else(|| ResourceError::invalid("elasticache.parameter_group needs a family"))?;
        debug!(name, family, "CreateCacheParameterGroup");
        let created = client
            .create_cache_parameter_group()
            .cache_parameter_group_name(name)
            .cache_parameter_group_family(family)
            .description(str_of(props, "description").unwrap_or(DEFAULT_DESCRIPTION))
            .set_tags(Some(common::tag_list(props)).filter(|t| !t.is_empty()))
            .send()
            .await
            .classified();
        let out = match created {
            Ok(out) => out,
            Err(err) => {
                let what = format!("a cache parameter group named {name}");
                let found = crate::errors::adopt_if_ours(
                    err,
                    &["CacheParameterGroupAlreadyExists"],
                    &what,
                    || self.find(ctx, props),
                )
                .await?;
                let mut after = props.clone();
                fill_computed(&self.schema, &mut after, &found.props);
                return self.update(ctx, name, &found.props, &after).await;
            }
        };
        let group = out
            .cache_parameter_group()
            .cloned()
            .ok_or_else(|| ResourceError::other("CreateCacheParameterGroup returned no group"))?;
        let ctx = ctx.with_default_deadline(UPDATE_LIMIT);
        let wanted = parameters_of(props);
        apply_parameters(&ctx, &client, name, &BTreeMap::new(), &wanted).await?;
        // Created with exactly these tags and parameters: no need to read them back.
        observe(&group, wanted, tags::user_tags(props))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.elasticache(&ctx.region);
        let group = describe(&client, id).await?.ok_or_else(|| {
            ResourceError::new(
                ErrorKind::NotFound,
                format!("cache parameter group {id} disappeared while it was being changed"),
            )
        })?;
        let ctx = ctx.with_default_deadline(UPDATE_LIMIT);
        let wanted = parameters_of(after);
        apply_parameters(&ctx, &client, id, &parameters_of(before), &wanted).await?;
        common::update_tags(&client, arn_of(&group)?, before, after).await?;
        observe(&group, wanted, tags::user_tags(after))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = self.aws.elasticache(&ctx.region);
        let what = format!("deleting cache parameter group {id}");
        let client = &client;
        let result = wait::delete_when_free(ctx, &what, DELETE_LIMIT, || async move {
            match client
                .delete_cache_parameter_group()
                .cache_parameter_group_name(id)
                .send()
                .await
                .classified()
            {
                Ok(_) => {
                    debug!(name = id, "deleted cache parameter group");
                    Ok(())
                }
                Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
                Err(err) => Err(err),
            }
        })
        .await;
        match result {
            Err(mut err) if err.kind == ErrorKind::InUse => {
                err.message.push_str(
                    "; a cache cluster or replication group still uses the parameter group: \
                     point it at another parameter group (or delete it) first; one that is \
                     being deleted lets go once it is gone, then destroy again",
                );
                Err(err)
            }
            other => other,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical form and checks

/// Defaults filled, parameter values as strings in name order, tags in key order: for
/// desired and read props alike.
fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props
        .entry("description")
        .or_insert_with(|| json!(DEFAULT_DESCRIPTION));
    let parameters = match props.get("parameters") {
        Some(Value::Object(map)) => {
            let sorted: BTreeMap<&String, Value> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, parameter_text(v)))
                .collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        // A whole map not known until apply stays unknown.
        Some(other) => other.clone(),
        None => Value::Object(Map::new()),
    };
    props.insert("parameters".into(), parameters);
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    let mut rest = std::mem::take(props);
    for key in ORDER {
        if let Some(value) = rest.shift_remove(*key) {
            props.insert((*key).to_string(), value);
        }
    }
    props.extend(rest);
}

/// AWS keeps every parameter value as a string: `5` and `"5"` are the same setting.
fn parameter_text(value: &Value) -> Value {
    match value {
        Value::String(_) => value.clone(),
        Value::Number(n) => Value::String(n.to_string()),
        other => Value::String(other.to_string()),
    }
}

fn parameters_of(props: &Props) -> BTreeMap<String, String> {
    props
        .get("parameters")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter(|(_, v)| !contains_unknown(v))
                .filter_map(|(k, v)| match parameter_text(v) {
                    Value::String(s) => Some((k.clone(), s)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What is wrong with a parameter group name, if anything.
fn name_problem(name: &str) -> Option<String> {
    let rule = format!(
        "a parameter group name has 1 to {MAX_NAME} lowercase letters, digits and hyphens, starts \
         with a letter, has no \"--\" and does not end with \"-\""
    );
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(format!(
            "{name:?} has uppercase letters; AWS stores parameter group names lowercase, so write {:?}",
            name.to_ascii_lowercase()
        ));
    }
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.contains("--")
        && !name.ends_with('-');
    (!ok).then(|| format!("invalid name {name:?}: {rule}"))
}

/// A family is an engine name and its version: `redis7`, `redis6.x`, `valkey8`, `memcached1.6`.
fn family_problem(family: &str) -> Option<String> {
    let engine = FAMILY_ENGINES
        .iter()
        .find(|e| family.starts_with(**e))
        .copied();
    let version = engine.map(|e| &family[e.len()..]);
    let ok = version.is_some_and(|v| {
        v.starts_with(|c: char| c.is_ascii_digit())
            && v.chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == 'x')
    });
    (!ok).then(|| {
        format!(
            "unknown family {family:?}: a family is an engine and its version, e.g. redis7, \
             valkey8 or memcached1.6"
        )
    })
}

// ---------------------------------------------------------------------------------------------
// AWS calls

/// Sets the parameters that are new or changed and resets the removed ones, at most
/// [`PARAMETERS_PER_CALL`] per call; calls nothing when `before` and `after` agree.
async fn apply_parameters(
    ctx: &OpContext,
    client: &Client,
    name: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> ResourceResult<()> {
    let set: Vec<ParameterNameValue> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| {
            ParameterNameValue::builder()
                .parameter_name(k)
                .parameter_value(v)
                .build()
        })
        .collect();
    let reset: Vec<ParameterNameValue> = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .map(|k| ParameterNameValue::builder().parameter_name(k).build())
        .collect();
    for chunk in set.chunks(PARAMETERS_PER_CALL) {
        let request = client
            .modify_cache_parameter_group()
            .cache_parameter_group_name(name)
            .set_parameter_name_values(Some(chunk.to_vec()));
        debug!(
            group = name,
            count = chunk.len(),
            "ModifyCacheParameterGroup"
        );
        wait::retry_while_busy(ctx, "setting parameters", UPDATE_LIMIT, || {
            let request = request.clone();
            async move { request.send().await.classified().map(|_| ()) }
        })
        .await?;
    }
    for chunk in reset.chunks(PARAMETERS_PER_CALL) {
        let request = client
            .reset_cache_parameter_group()
            .cache_parameter_group_name(name)
            .reset_all_parameters(false)
            .set_parameter_name_values(Some(chunk.to_vec()));
        debug!(
            group = name,
            count = chunk.len(),
            "ResetCacheParameterGroup"
        );
        wait::retry_while_busy(ctx, "resetting parameters", UPDATE_LIMIT, || {
            let request = request.clone();
            async move { request.send().await.classified().map(|_| ()) }
        })
        .await?;
    }
    Ok(())
}

async fn describe(client: &Client, name: &str) -> ResourceResult<Option<CacheParameterGroup>> {
    match client
        .describe_cache_parameter_groups()
        .cache_parameter_group_name(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(out.cache_parameter_groups().first().cloned()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// The parameters a user set (not engine or system defaults), by name.
async fn user_parameters(client: &Client, name: &str) -> ResourceResult<BTreeMap<String, String>> {
    let mut parameters = BTreeMap::new();
    let mut marker: Option<String> = None;
    loop {
        let out = client
            .describe_cache_parameters()
            .cache_parameter_group_name(name)
            .source("user")
            .set_marker(marker.take())
            .send()
            .await
            .classified()?;
        for parameter in out.parameters() {
            if let (Some(key), Some(value)) =
                (parameter.parameter_name(), parameter.parameter_value())
            {
                parameters.insert(key.to_string(), value.to_string());
            }
        }
        match out.marker() {
            Some(next) if !next.is_empty() => marker = Some(next.to_string()),
            _ => return Ok(parameters),
        }
    }
}

fn arn_of(group: &CacheParameterGroup) -> ResourceResult<&str> {
    group.arn().ok_or_else(|| {
        ResourceError::other("DescribeCacheParameterGroups returned a group without an ARN")
    })
}

fn observe(
    group: &CacheParameterGroup,
    parameters: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
) -> ResourceResult<Observed> {
    let name = group.cache_parameter_group_name().ok_or_else(|| {
        ResourceError::other("AWS returned a cache parameter group without a name")
    })?;
    let mut props = Props::new();
    props.insert("name".into(), json!(name));
    props.insert(
        "family".into(),
        json!(group.cache_parameter_group_family().unwrap_or_default()),
    );
    props.insert(
        "description".into(),
        json!(group.description().unwrap_or_default()),
    );
    props.insert("parameters".into(), json!(parameters));
    props.insert("tags".into(), tags::tags_value(tags));
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("name".into(), json!(name));
    attrs.insert("arn".into(), json!(arn_of(group)?));
    Ok(Observed {
        id: name.to_string(),
        props,
        attrs,
    })
}
