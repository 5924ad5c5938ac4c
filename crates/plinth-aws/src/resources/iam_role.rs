//! `iam.role`: an IAM role with its trust policy, attached managed policies and inline
//! policies.
//!
//! IAM is global; its API lives in us-east-1. Policy documents are compared as JSON values
//! in one canonical form on both sides of the diff: AWS hands documents back URL-encoded and
//! turns a one-element list into a plain string (`"Service": "lambda.amazonaws.com"`), so
//! every list-or-string field is made a sorted list, whoever wrote it. A role is deleted only
//! after everything attached to it (as AWS lists it, not as the state remembers it) is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_iam::types::{Role, Tag};
use aws_sdk_iam::Client;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, is_unknown, reorder, str_of, unknown, Props};
use serde_json::{json, Map, Value};
use tracing::debug;

use crate::errors::{self, SendExt};
use crate::resources::tags;
use crate::wait;
use crate::Aws;

/// IAM's endpoint is global and signed for us-east-1.
pub const IAM_REGION: &str = "us-east-1";
/// The services `trust:` accepts, as written (each stands for `<name>.amazonaws.com`).
pub const TRUST_SERVICES: &[&str] = &[
    "lambda",
    "edgelambda",
    "ec2",
    "ecs-tasks",
    "states",
    "events",
    "apigateway",
];
const POLICY_VERSION: &str = "2012-10-17";
const DEFAULT_PATH: &str = "/";
const DEFAULT_SESSION: i64 = 3600;
const MAX_NAME: usize = 64;
const MAX_POLICY_NAME: usize = 128;
const MAX_DESCRIPTION: usize = 1000;
/// A role whose policies were just detached may still count as attached for a moment.
const DELETE_LIMIT: Duration = Duration::from_secs(2 * 60);
/// Property order in canonical form (the schema's).
const ORDER: &[&str] = &[
    "name",
    "path",
    "description",
    "trust_policy",
    "managed_policies",
    "policies",
    "max_session_duration",
    "tags",
];
/// Statement keys whose value may be one string or a list of them.
const LIST_KEYS: &[&str] = &["Action", "NotAction", "Resource", "NotResource"];
const PRINCIPAL_KEYS: &[&str] = &["Principal", "NotPrincipal"];

/// The `iam.role` resource type.
pub struct IamRole {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl IamRole {
    pub fn new(aws: Arc<Aws>) -> IamRole {
        IamRole {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "iam.role",
        description: "An IAM role: who may assume it and the policies it grants",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("name", Shape::String)
                .prefixable(64)
                .required()
                .replaces()
                .known_as(&["role_name"])
                .unique()
                .doc("the role name, unique in the account"),
            Prop::new("path", Shape::String)
                .replaces()
                .doc("the role path; default \"/\""),
            Prop::new("description", Shape::String).doc("the role description; default \"\""),
            Prop::new("trust", Shape::list(Shape::Enum(TRUST_SERVICES))).doc(
                "services that may assume the role (lambda, edgelambda, ec2, ecs-tasks, states, \
                 events, apigateway); shorthand for trust_policy",
            ),
            Prop::new("trust_policy", Shape::Any)
                .known_as(&["assume_role_policy", "assume_role_policy_document"])
                .doc("the assume-role policy document (a map or a JSON string)"),
            Prop::new("managed_policies", Shape::list(Shape::String))
                .known_as(&["managed_policy_arns", "policy_arns"])
                .doc("ARNs of managed policies to attach; default none"),
            Prop::new("policies", Shape::map(Shape::Any))
                .known_as(&["inline_policy"])
                .doc("inline policies: name → policy document (a map or a JSON string)"),
            Prop::new("max_session_duration", Shape::int_range(3600, 43200))
                .doc("the longest session, in seconds; default 3600"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the role"),
        ]),
        attributes: vec![
            Attr::new("arn", Shape::String, "the role ARN"),
            Attr::new("name", Shape::String, "the role name"),
            Attr::new("id", Shape::String, "the role's unique id (AROA…)"),
        ],
    }
}

#[async_trait]
impl ResourceType for IamRole {
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
        if let Some(path) = known_str(props, "path") {
            if !path.starts_with('/') || !path.ends_with('/') || path.len() > 512 {
                issues.push(PropIssue::at(
                    &["path"],
                    format!("a role path starts and ends with \"/\" (\"/\" or \"/service/\"), not {path:?}"),
                ));
            }
        }
        if known_str(props, "description").is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
            issues.push(PropIssue::at(
                &["description"],
                format!("a role description has at most {MAX_DESCRIPTION} characters"),
            ));
        }
        match (props.get("trust"), props.get("trust_policy")) {
            (Some(_), Some(_)) => issues.push(PropIssue::at(
                &["trust"],
                "give either trust (a list of services) or trust_policy (a document), not both",
            )),
            (None, None) => issues.push(PropIssue::at(
                &["trust"],
                "a role needs trust (e.g. [lambda]) or trust_policy: who may assume it",
            )),
            (None, Some(doc)) => {
                if let Err(problem) = document(doc) {
                    issues.push(PropIssue::at(&["trust_policy"], problem));
                }
            }
            (Some(_), None) => {}
        }
        if let Some(Value::Object(policies)) = props.get("policies") {
            for (name, doc) in policies {
                if let Some(problem) = policy_name_problem(name) {
                    issues.push(PropIssue::at(&["policies", name], problem));
                } else if let Err(problem) = document(doc) {
                    issues.push(PropIssue::at(&["policies", name], problem));
                }
            }
        }
        if let Some(Value::Array(arns)) = props.get("managed_policies") {
            for arn in arns.iter().filter(|a| !contains_unknown(a)) {
                let ok = arn
                    .as_str()
                    .is_some_and(|a| a.starts_with("arn:") && a.contains(":policy/"));
                if !ok {
                    issues.push(PropIssue::at(
                        &["managed_policies"],
                        format!("expected a policy ARN (arn:aws:iam::…:policy/…), not {arn}"),
                    ));
                }
            }
        }
        issues
    }

    fn pinned_region(&self, _props: &Props) -> Option<&'static str> {
        Some(IAM_REGION)
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        props.retain(|_, v| !v.is_null());
        if let Some(trust) = props.shift_remove("trust") {
            if props.contains_key("trust_policy") {
                return Err(ResourceError::invalid(
                    "give either trust or trust_policy, not both",
                ));
            }
            props.insert("trust_policy".into(), trust_document(&trust)?);
        }
        if let Some(doc) = props.get("trust_policy") {
            let doc = document(doc).map_err(ResourceError::invalid)?;
            props.insert("trust_policy".into(), doc);
        }
        let policies = match props.get("policies") {
            Some(Value::Object(map)) => inline_documents(map)?,
            Some(other) => other.clone(),
            None => json!({}),
        };
        props.insert("policies".into(), policies);
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
        let client = self.aws.iam(&ctx.region);
        let Some(role) = get_role(&client, id).await? else {
            return Ok(None);
        };
        let listed = async {
            let managed = attached_policies(&client, id).await?;
            Ok::<_, ResourceError>((managed, inline_policies(&client, id).await?))
        };
        match listed.await {
            Ok((managed, inline)) => observe(&role, managed, inline).map(Some),
            // Deleted between the calls.
            Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
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
        crate::arn::last_segment_after(arn, "iam", "role/")
    }

    /// The Resource Groups Tagging API does not list IAM roles: roles are listed and their
    /// tags read, once (roles are global; plinth keeps them in their pinned region).
    async fn find_tagged(
        &self,
        ctx: &OpContext,
        filters: &[plinth_core::teardown::TagFilter],
    ) -> ResourceResult<Vec<plinth_core::teardown::TaggedResource>> {
        if self.pinned_region(&Props::new()) != Some(ctx.region.as_str()) {
            return Ok(Vec::new());
        }
        tagged_roles(&self.aws.iam(&ctx.region), &ctx.region, filters).await
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.iam(&ctx.region);
        let name = required_name(props)?;
        let role = match create_role(&client, props).await {
            Ok(role) => role,
            Err(err) if err.code.as_deref() == Some("EntityAlreadyExists") => {
                return self.adopt(ctx, name, props, err).await;
            }
            Err(err) => return Err(err),
        };
        for arn in string_list(props, "managed_policies") {
            attach(&client, name, &arn).await?;
        }
        for (policy, doc) in documents_of(props, "policies") {
            put_inline(&client, name, &policy, &doc).await?;
        }
        // Built from what was sent: IAM is eventually consistent, a read right after a
        // create may not see the role yet.
        Ok(Observed {
            id: name.to_string(),
            props: props.clone(),
            attrs: attrs_of(&role),
        })
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.iam(&ctx.region);
        let role = get_role(&client, id)
            .await?
            .ok_or_else(|| errors::vanished(&format!("IAM role {id}")))?;
        let changed = |key: &str| before.get(key) != after.get(key);
        if changed("trust_policy") {
            debug!(role = id, "UpdateAssumeRolePolicy");
            client
                .update_assume_role_policy()
                .role_name(id)
                .policy_document(document_text(after.get("trust_policy"))?)
                .send()
                .await
                .classified()?;
        }
        if changed("description") || changed("max_session_duration") {
            debug!(role = id, "UpdateRole");
            client
                .update_role()
                .role_name(id)
                .description(str_of(after, "description").unwrap_or_default())
                .max_session_duration(session_of(after))
                .send()
                .await
                .classified()?;
        }
        update_managed(&client, id, before, after).await?;
        update_inline(&client, id, before, after).await?;
        update_tags(&client, id, before, after).await?;
        Ok(Observed {
            id: id.to_string(),
            props: after.clone(),
            attrs: attrs_of(&role),
        })
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = self.aws.iam(&ctx.region);
        match detach_everything(&client, id).await {
            Err(err) if err.kind == ErrorKind::NotFound => return Ok(()),
            other => other?,
        }
        let what = format!("deleting IAM role {id}");
        let client = &client;
        wait::retry_while_busy(ctx, &what, DELETE_LIMIT, || async move {
            match client.delete_role().role_name(id).send().await.classified() {
                Ok(_) => {
                    debug!(role = id, "deleted IAM role");
                    Ok(())
                }
                Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
                Err(err) => Err(err),
            }
        })
        .await
    }
}

/// Roles whose tags match `filters`, as the tagging API would report them. AWS's own
/// service-linked roles are skipped: no stack makes those.
async fn tagged_roles(
    client: &Client,
    region: &str,
    filters: &[plinth_core::teardown::TagFilter],
) -> ResourceResult<Vec<plinth_core::teardown::TaggedResource>> {
    let roles = client
        .list_roles()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(errors::classify)?;
    let mut found = Vec::new();
    for role in roles
        .iter()
        .filter(|r| !r.path().starts_with("/aws-service-role/"))
    {
        let tags = match role_tags(client, role.role_name()).await {
            Ok(tags) => tags,
            // Deleted between the two calls.
            Err(err) if err.kind == ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        if plinth_core::teardown::TagFilter::all_match(filters, &tags) {
            found.push(plinth_core::teardown::TaggedResource {
                arn: role.arn().to_string(),
                region: region.to_string(),
                tags,
            });
        }
    }
    Ok(found)
}

async fn role_tags(client: &Client, name: &str) -> ResourceResult<BTreeMap<String, String>> {
    let tags = client
        .list_role_tags()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(errors::classify)?;
    Ok(tags
        .into_iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect())
}

impl IamRole {
    /// CreateRole found the name taken: a role this stack made (an interrupted create) is
    /// brought to `props`; anyone else's is a clash.
    async fn adopt(
        &self,
        ctx: &OpContext,
        name: &str,
        props: &Props,
        err: ResourceError,
    ) -> ResourceResult<Observed> {
        match self.read(ctx, name, props).await? {
            Some(found) if tags::owned_by(&tags::tags_of(&found.props), props) => {
                debug!(role = name, "adopting an IAM role this stack created");
                self.update(ctx, name, &found.props, props).await
            }
            _ => Err(errors::name_taken(
                err,
                "EntityAlreadyExists",
                &format!("an IAM role named {name}"),
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Policy documents

/// The trust policy `trust: [lambda, edgelambda]` stands for.
fn trust_document(trust: &Value) -> ResourceResult<Value> {
    if contains_unknown(trust) {
        return Ok(unknown());
    }
    let items = trust
        .as_array()
        .ok_or_else(|| ResourceError::invalid("trust must be a list of services"))?;
    let mut services = BTreeSet::new();
    for item in items {
        let short = item
            .as_str()
            .filter(|s| TRUST_SERVICES.contains(s))
            .ok_or_else(|| {
                ResourceError::invalid(format!(
                    "trust: {item} is not one of {}",
                    TRUST_SERVICES.join(", ")
                ))
            })?;
        services.insert(format!("{short}.amazonaws.com"));
    }
    let doc = json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": services.into_iter().collect::<Vec<_>>()},
            "Action": "sts:AssumeRole",
        }],
    });
    Ok(canonical_document(&doc))
}

/// A policy document written as a map or as a JSON string, in canonical form.
fn document(doc: &Value) -> Result<Value, String> {
    if contains_unknown(doc) {
        return Ok(doc.clone());
    }
    let parsed = match doc {
        Value::String(text) => serde_json::from_str::<Value>(text)
            .map_err(|e| format!("not a JSON policy document: {e}"))?,
        other => other.clone(),
    };
    if !parsed.is_object() {
        return Err(format!("a policy document is a map, not {parsed}"));
    }
    Ok(canonical_document(&parsed))
}

fn inline_documents(map: &Map<String, Value>) -> ResourceResult<Value> {
    let mut sorted = BTreeMap::new();
    for (name, doc) in map {
        let doc = document(doc)
            .map_err(|problem| ResourceError::invalid(format!("policies.{name}: {problem}")))?;
        sorted.insert(name.clone(), doc);
    }
    Ok(Value::Object(sorted.into_iter().collect()))
}

/// One form for documents that mean the same: a single statement becomes a list of one;
/// actions, resources and principals become sorted lists (AWS shortens one-element lists
/// to a string, people write either); a bare account id as principal becomes the root ARN
/// AWS stores in its place.
pub fn canonical_document(doc: &Value) -> Value {
    let Value::Object(map) = doc else {
        return doc.clone();
    };
    let mut out = map.clone();
    if let Some(statements) = out.get_mut("Statement") {
        let list = match statements.take() {
            Value::Array(items) => items,
            single => vec![single],
        };
        *statements = Value::Array(list.iter().map(canonical_statement).collect());
    }
    Value::Object(out)
}

fn canonical_statement(statement: &Value) -> Value {
    let Value::Object(map) = statement else {
        return statement.clone();
    };
    let mut out = map.clone();
    for key in LIST_KEYS {
        if let Some(value) = out.get_mut(*key) {
            *value = sorted_list(value);
        }
    }
    for key in PRINCIPAL_KEYS {
        if let Some(Value::Object(principals)) = out.get_mut(*key) {
            for (kind, value) in principals.iter_mut() {
                let mut list = sorted_list(value);
                if kind == "AWS" {
                    list = account_root_arns(list);
                }
                *value = list;
            }
        }
    }
    Value::Object(out)
}

/// A string or a list of strings as a sorted list without duplicates; anything else as is.
fn sorted_list(value: &Value) -> Value {
    let items = match value {
        Value::String(_) => vec![value.clone()],
        Value::Array(items) if items.iter().all(Value::is_string) => items.clone(),
        other => return other.clone(),
    };
    let set: BTreeSet<String> = items
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    json!(set.into_iter().collect::<Vec<_>>())
}

fn account_root_arns(list: Value) -> Value {
    let Value::Array(items) = list else {
        return list;
    };
    let arns: BTreeSet<String> = items
        .iter()
        .filter_map(Value::as_str)
        .map(|p| {
            if p.len() == 12 && p.chars().all(|c| c.is_ascii_digit()) {
                format!("arn:aws:iam::{p}:root")
            } else {
                p.to_string()
            }
        })
        .collect();
    json!(arns.into_iter().collect::<Vec<_>>())
}

/// The services a role's trust policy lets assume it (from `trust_policy`, or `trust` as
/// written); `None` while it is not known yet.
pub fn trusted_services(props: &Props) -> Option<BTreeSet<String>> {
    if let Some(trust) = props.get("trust") {
        if contains_unknown(trust) {
            return None;
        }
        return Some(
            trust
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .map(|s| format!("{s}.amazonaws.com"))
                .collect(),
        );
    }
    let doc = document(props.get("trust_policy")?).ok()?;
    if contains_unknown(&doc) {
        return None;
    }
    let statements = doc.get("Statement")?.as_array()?.clone();
    let services = statements
        .iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .filter(|s| allows_assume_role(s.get("Action")))
        .filter_map(|s| s.get("Principal")?.get("Service")?.as_array().cloned())
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    Some(services)
}

fn allows_assume_role(action: Option<&Value>) -> bool {
    let Some(Value::Array(actions)) = action else {
        return false;
    };
    actions
        .iter()
        .filter_map(Value::as_str)
        .any(|a| matches!(a, "sts:AssumeRole" | "sts:*" | "*"))
}

/// AWS returns policy documents URL-encoded (RFC 3986: `%7B%22Version…`).
fn decoded_document(raw: &str) -> ResourceResult<Value> {
    let text = if raw.trim_start().starts_with('{') {
        raw.to_string()
    } else {
        percent_decode(raw)?
    };
    let doc: Value = serde_json::from_str(&text).map_err(|e| {
        ResourceError::other(format!("IAM returned a policy that is not JSON: {e}"))
    })?;
    Ok(canonical_document(&doc))
}

fn percent_decode(text: &str) -> ResourceResult<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| ResourceError::other("IAM returned a policy that is not UTF-8"))
}

fn document_text(doc: Option<&Value>) -> ResourceResult<String> {
    match doc {
        Some(doc) if doc.is_object() => Ok(doc.to_string()),
        _ => Err(ResourceError::invalid(
            "iam.role needs a trust policy (trust or trust_policy)",
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Canonical properties

/// Defaults filled, sets sorted, tags in key order: for desired and read props alike.
fn canonicalize(props: &mut Props) {
    props.entry("path").or_insert_with(|| json!(DEFAULT_PATH));
    props.entry("description").or_insert_with(|| json!(""));
    props
        .entry("max_session_duration")
        .or_insert_with(|| json!(DEFAULT_SESSION));
    let managed = props.entry("managed_policies").or_insert_with(|| json!([]));
    if !contains_unknown(managed) {
        *managed = sorted_list(managed);
    }
    props.entry("policies").or_insert_with(|| json!({}));
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    reorder(props, ORDER);
}

fn known_str<'a>(props: &'a Props, key: &str) -> Option<&'a str> {
    props
        .get(key)
        .filter(|v| !is_unknown(v))
        .and_then(Value::as_str)
}

fn name_problem(name: &str) -> Option<String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if name.is_empty() || name.chars().count() > MAX_NAME {
        Some(format!("a role name has 1 to {MAX_NAME} characters"))
    } else if !name.chars().all(valid) {
        Some(format!(
            "{name:?}: a role name has only letters, digits and +=,.@_-"
        ))
    } else {
        None
    }
}

fn policy_name_problem(name: &str) -> Option<String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if name.is_empty() || name.chars().count() > MAX_POLICY_NAME || !name.chars().all(valid) {
        Some(format!(
            "{name:?}: an inline policy name has 1 to {MAX_POLICY_NAME} letters, digits and +=,.@_-"
        ))
    } else {
        None
    }
}

fn required_name(props: &Props) -> ResourceResult<&str> {
    str_of(props, "name").ok_or_else(|| ResourceError::invalid("iam.role needs a name"))
}

fn session_of(props: &Props) -> i32 {
    props
        .get("max_session_duration")
        .and_then(Value::as_i64)
        .and_then(|s| i32::try_from(s).ok())
        .unwrap_or(DEFAULT_SESSION as i32)
}

fn string_list(props: &Props, key: &str) -> BTreeSet<String> {
    props
        .get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn documents_of(props: &Props, key: &str) -> BTreeMap<String, Value> {
    props
        .get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Tags as IAM takes them (roles and instance profiles alike).
pub fn iam_tags(tags: BTreeMap<String, String>) -> ResourceResult<Vec<Tag>> {
    tags.into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| ResourceError::invalid(format!("tag: {e}")))
        })
        .collect()
}

fn attrs_of(role: &Role) -> Props {
    let mut attrs = Props::new();
    attrs.insert("arn".into(), json!(role.arn()));
    attrs.insert("name".into(), json!(role.role_name()));
    attrs.insert("id".into(), json!(role.role_id()));
    attrs
}

fn observe(
    role: &Role,
    managed: BTreeSet<String>,
    inline: BTreeMap<String, Value>,
) -> ResourceResult<Observed> {
    let trust = role
        .assume_role_policy_document()
        .ok_or_else(|| ResourceError::other("GetRole returned a role without a trust policy"))?;
    let tags = role
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .filter(|(key, _)| !tags::is_reserved(key));
    let mut props = Props::new();
    props.insert("name".into(), json!(role.role_name()));
    props.insert("path".into(), json!(role.path()));
    props.insert(
        "description".into(),
        json!(role.description().unwrap_or_default()),
    );
    props.insert("trust_policy".into(), decoded_document(trust)?);
    props.insert("managed_policies".into(), json!(managed));
    props.insert(
        "policies".into(),
        Value::Object(inline.into_iter().collect()),
    );
    if let Some(seconds) = role.max_session_duration() {
        props.insert("max_session_duration".into(), json!(seconds));
    }
    props.insert("tags".into(), tags::tags_value(tags));
    canonicalize(&mut props);
    Ok(Observed {
        id: role.role_name().to_string(),
        props,
        attrs: attrs_of(role),
    })
}

// ---------------------------------------------------------------------------------------
// Calls

async fn get_role(client: &Client, name: &str) -> ResourceResult<Option<Role>> {
    match client.get_role().role_name(name).send().await.classified() {
        Ok(out) => Ok(out.role().cloned()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

async fn create_role(client: &Client, props: &Props) -> ResourceResult<Role> {
    let name = required_name(props)?;
    let description = str_of(props, "description").filter(|d| !d.is_empty());
    let tags = iam_tags(tags::user_tags(props))?;
    debug!(role = name, "CreateRole");
    let out = client
        .create_role()
        .role_name(name)
        .path(str_of(props, "path").unwrap_or(DEFAULT_PATH))
        .assume_role_policy_document(document_text(props.get("trust_policy"))?)
        .set_description(description.map(str::to_string))
        .max_session_duration(session_of(props))
        .set_tags(Some(tags).filter(|t| !t.is_empty()))
        .send()
        .await
        .classified()?;
    out.role()
        .cloned()
        .ok_or_else(|| ResourceError::other("CreateRole returned no role"))
}

/// The ARNs of the managed policies attached to the role, every page.
async fn attached_policies(client: &Client, role: &str) -> ResourceResult<BTreeSet<String>> {
    let policies = client
        .list_attached_role_policies()
        .role_name(role)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(errors::classify)?;
    Ok(policies
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect())
}

async fn inline_policy_names(client: &Client, role: &str) -> ResourceResult<Vec<String>> {
    client
        .list_role_policies()
        .role_name(role)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(errors::classify)
}

/// The inline policies, name → canonical document.
async fn inline_policies(client: &Client, role: &str) -> ResourceResult<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for name in inline_policy_names(client, role).await? {
        match client
            .get_role_policy()
            .role_name(role)
            .policy_name(&name)
            .send()
            .await
            .classified()
        {
            Ok(policy) => {
                out.insert(name, decoded_document(policy.policy_document())?);
            }
            // Deleted since it was listed: the role itself is still there.
            Err(err) if err.kind == ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(out)
}

async fn attach(client: &Client, role: &str, arn: &str) -> ResourceResult<()> {
    debug!(role, policy = arn, "AttachRolePolicy");
    client
        .attach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await
        .classified()
        .map(|_| ())
}

async fn detach(client: &Client, role: &str, arn: &str) -> ResourceResult<()> {
    debug!(role, policy = arn, "DetachRolePolicy");
    client
        .detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await
        .classified()
        .map(|_| ())
        .or_else(gone_is_done)
}

/// Removing something already gone is the outcome a removal wants.
fn gone_is_done(err: ResourceError) -> ResourceResult<()> {
    if err.kind == ErrorKind::NotFound {
        Ok(())
    } else {
        Err(err)
    }
}

async fn put_inline(client: &Client, role: &str, name: &str, doc: &Value) -> ResourceResult<()> {
    debug!(role, policy = name, "PutRolePolicy");
    client
        .put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(doc.to_string())
        .send()
        .await
        .classified()
        .map(|_| ())
}

async fn delete_inline(client: &Client, role: &str, name: &str) -> ResourceResult<()> {
    debug!(role, policy = name, "DeleteRolePolicy");
    client
        .delete_role_policy()
        .role_name(role)
        .policy_name(name)
        .send()
        .await
        .classified()
        .map(|_| ())
        .or_else(gone_is_done)
}

async fn update_managed(
    client: &Client,
    role: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let (old, new) = (
        string_list(before, "managed_policies"),
        string_list(after, "managed_policies"),
    );
    // Attach before detaching, so a swap never leaves the role without either.
    for arn in new.difference(&old) {
        attach(client, role, arn).await?;
    }
    for arn in old.difference(&new) {
        detach(client, role, arn).await?;
    }
    Ok(())
}

async fn update_inline(
    client: &Client,
    role: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let (old, new) = (
        documents_of(before, "policies"),
        documents_of(after, "policies"),
    );
    for (name, doc) in &new {
        if old.get(name) != Some(doc) {
            put_inline(client, role, name, doc).await?;
        }
    }
    for name in old.keys().filter(|name| !new.contains_key(*name)) {
        delete_inline(client, role, name).await?;
    }
    Ok(())
}

async fn update_tags(
    client: &Client,
    role: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let (set, remove) = tags::tag_changes(&tags::user_tags(before), &tags::user_tags(after));
    if !set.is_empty() {
        client
            .tag_role()
            .role_name(role)
            .set_tags(Some(iam_tags(set)?))
            .send()
            .await
            .classified()?;
    }
    if !remove.is_empty() {
        client
            .untag_role()
            .role_name(role)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .classified()?;
    }
    Ok(())
}

/// Everything AWS refuses to delete a role with, as AWS lists it now (a policy attached by
/// hand is in no state): managed policies, inline policies, instance profiles.
async fn detach_everything(client: &Client, role: &str) -> ResourceResult<()> {
    for arn in attached_policies(client, role).await? {
        detach(client, role, &arn).await?;
    }
    for name in inline_policy_names(client, role).await? {
        delete_inline(client, role, &name).await?;
    }
    let profiles = client
        .list_instance_profiles_for_role()
        .role_name(role)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(errors::classify)?;
    for profile in profiles {
        let name = profile.instance_profile_name();
        debug!(role, profile = name, "RemoveRoleFromInstanceProfile");
        client
            .remove_role_from_instance_profile()
            .instance_profile_name(name)
            .role_name(role)
            .send()
            .await
            .classified()
            .map(|_| ())
            .or_else(gone_is_done)?;
    }
    Ok(())
}
