//! `logs.log_group`: a CloudWatch Logs group, with how long it keeps events and the KMS key
//! it encrypts them with (what Lambda functions, ElastiCache log delivery and labs write to).
//!
//! A group's name is unique in its region. A create that finds the name taken takes the
//! group over when its owner tags say it is this stack's (an interrupted create), and
//! refuses otherwise. Without a retention, AWS keeps events forever and bills their
//! storage for as long: course stacks should give one.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::LogGroup;
use aws_sdk_cloudwatchlogs::Client;
use plinth_core::cost::{count_text, price_text, CostContext, CostLine};
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{known_str, reorder, str_of, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::errors::{self, SendExt};
use crate::resources::tags;
use crate::wait::{self, Poll};
use crate::Aws;

/// The retentions CloudWatch Logs accepts, in days.
const RETENTIONS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
const ORDER: &[&str] = &["name", "retention_days", "kms_key", "tags"];
const EXISTS: &str = "ResourceAlreadyExistsException";
/// How long DescribeLogGroups may take to list a new group.
const LISTING_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

pub struct LogGroupType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl LogGroupType {
    pub fn new(aws: Arc<Aws>) -> LogGroupType {
        LogGroupType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "logs.log_group",
        description: "A CloudWatch Logs group with its retention and encryption key",
        kind: TypeKind::Managed,
        taggable: true,
        properties: with_name_prefixes(vec![
            Prop::new("name", Shape::String)
                .prefixable(512)
                .required()
                .replaces()
                .unique()
                .doc("the group's name (/aws/lambda/NAME, /course/week3): letters, digits and _-/.#"),
            Prop::new("retention_days", Shape::integer())
                .known_as(&["retention_in_days"])
                .doc("days events are kept: 1, 3, 5, 7, 14, 30, 60, 90, … 3653; default forever"),
            Prop::new("kms_key", Shape::String)
                .known_as(&["kms_key_id"])
                .holds_referent()
                .doc("the ARN of the KMS key events are encrypted with (its policy must let logs.REGION.amazonaws.com use it)"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the group"),
        ]),
        attributes: vec![
            Attr::new("name", Shape::String, "the group's name"),
            Attr::new(
                "arn",
                Shape::String,
                "arn:aws:logs:REGION:ACCOUNT:log-group:NAME (without :*)",
            ),
        ],
    }
}

#[async_trait]
impl ResourceType for LogGroupType {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(&self, props: &Props, ctx: &CostContext) -> Vec<CostLine> {
        let (ingest, store) = match (
            ctx.regional_price(&["logs", "ingestion_gb"]),
            ctx.regional_price(&["logs", "storage_gb_month"]),
        ) {
            (Ok(i), Ok(s)) => (i, s),
            (Err(e), _) | (_, Err(e)) => {
                return vec![CostLine::unknown(
                    "log ingestion and storage",
                    e.to_string(),
                )]
            }
        };
        let ingested = ctx.usage("logs.ingested_gb");
        let stored = ctx.usage("logs.stored_gb");
        let kept = match props.get("retention_days").and_then(Value::as_i64) {
            Some(days) => format!("kept {days} days"),
            None => "kept forever: give retention_days".to_string(),
        };
        vec![
            CostLine::usage_per_month(
                format!(
                    "{} GB ingested × ${}/GB",
                    count_text(ingested),
                    price_text(ingest)
                ),
                ingested * ingest,
            ),
            CostLine::usage_per_month(
                format!(
                    "{} GB stored × ${}/GB-month ({kept})",
                    count_text(stored),
                    price_text(store)
                ),
                stored * store,
            ),
        ]
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(days) = props.get("retention_days").and_then(Value::as_i64) {
            if !RETENTIONS.contains(&days) {
                let allowed: Vec<String> = RETENTIONS.iter().map(i64::to_string).collect();
                issues.push(PropIssue::at(
                    &["retention_days"],
                    format!(
                        "CloudWatch Logs keeps events for one of {} days, not {days}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        if let Some(key) = known_str(props, "kms_key") {
            if !(key.starts_with("arn:") && key.contains(":key/")) {
                issues.push(PropIssue::at(
                    &["kms_key"],
                    format!("{key:?}: CloudWatch Logs takes the key's ARN (${{kms.key.NAME.arn}})"),
                ));
            }
        }
        if let Some(name) = known_str(props, "name") {
            let bad = name
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || "_-/.#".contains(*c)));
            if name.is_empty() || name.len() > 512 {
                issues.push(PropIssue::at(
                    &["name"],
                    "a log group name has 1 to 512 characters",
                ));
            } else if let Some(c) = bad {
                issues.push(PropIssue::at(
                    &["name"],
                    format!(
                        "{name:?} has {c:?}: a log group name has letters, digits and _-/.# only"
                    ),
                ));
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        props.retain(|_, v| !v.is_null());
        let tags = tags::tags_of(props);
        props.insert("tags".into(), tags::tags_value(tags));
        reorder(props, ORDER);
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
        let client = self.aws.logs(&ctx.region);
        let Some(group) = describe(&client, id).await? else {
            return Ok(None);
        };
        let tags = match group_tags(&client, &group).await {
            Ok(tags) => tags,
            // Deleted between the calls.
            Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        Ok(Some(observe(&group, tags)))
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let Some(name) = known_str(props, "name") else {
            return Ok(None);
        };
        Ok(self
            .read(ctx, name, props)
            .await?
            .and_then(|observed| tags::ours(observed, props)))
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "logs", "log-group:")
            .map(|name| name.trim_end_matches(":*").to_string())
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.logs(&ctx.region);
        let name = str_of(props, "name")
            .ok_or_else(|| ResourceError::invalid("logs.log_group needs a name"))?;
        let user_tags: std::collections::HashMap<String, String> =
            tags::user_tags(props).into_iter().collect();
        debug!(group = name, "CreateLogGroup");
        match client
            .create_log_group()
            .log_group_name(name)
            .set_kms_key_id(str_of(props, "kms_key").map(str::to_string))
            .set_tags((!user_tags.is_empty()).then_some(user_tags))
            .send()
            .await
            .classified()
        {
            Ok(_) => {}
            Err(err) if errors::has_code(&err, &[EXISTS]) => {
                let what = format!("a log group named {name}");
                let found =
                    errors::adopt_if_ours(err, &[EXISTS], &what, || self.find(ctx, props)).await?;
                return self.update(ctx, name, &found.props, props).await;
            }
            Err(err) => return Err(err),
        }
        if let Some(days) = props.get("retention_days").and_then(Value::as_i64) {
            put_retention(&client, name, Some(days)).await?;
        }
        // The ARN from the group itself: a listing right after the create may not show it.
        let what = format!("log group {name} to be listed");
        let group = wait::until(ctx, &what, LISTING_LIMIT, || {
            let client = &client;
            async move {
                Ok(match describe(client, name).await? {
                    Some(group) => Poll::Ready(group),
                    None => Poll::Pending("not listed yet".to_string()),
                })
            }
        })
        .await?;
        Ok(Observed {
            id: name.to_string(),
            props: props.clone(),
            attrs: attrs_of(name, Some(&group)),
        })
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.logs(&ctx.region);
        let changed = |key: &str| before.get(key) != after.get(key);
        if changed("retention_days") {
            let days = after.get("retention_days").and_then(Value::as_i64);
            put_retention(&client, id, days).await?;
        }
        if changed("kms_key") {
            set_key(&client, id, str_of(after, "kms_key")).await?;
        }
        let group = describe(&client, id)
            .await?
            .ok_or_else(|| errors::vanished(&format!("log group {id}")))?;
        if changed("tags") {
            update_tags(&client, &group, before, after).await?;
        }
        Ok(Observed {
            id: id.to_string(),
            props: after.clone(),
            attrs: attrs_of(id, Some(&group)),
        })
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = self.aws.logs(&ctx.region);
        debug!(group = id, "DeleteLogGroup");
        match client
            .delete_log_group()
            .log_group_name(id)
            .send()
            .await
            .classified()
        {
            Ok(_) => Ok(()),
            Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// The group of exactly this name: DescribeLogGroups matches by prefix, so the page is
/// searched for it.
async fn describe(client: &Client, name: &str) -> ResourceResult<Option<LogGroup>> {
    let mut token = None;
    loop {
        let out = client
            .describe_log_groups()
            .log_group_name_prefix(name)
            .set_next_token(token.take())
            .send()
            .await
            .classified()?;
        if let Some(group) = out
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(name))
        {
            return Ok(Some(group.clone()));
        }
        match out.next_token() {
            Some(next) => token = Some(next.to_string()),
            None => return Ok(None),
        }
    }
}

/// The ARN tagging calls take: without the `:*` DescribeLogGroups' `arn` ends with.
fn tagging_arn(group: &LogGroup) -> String {
    group
        .log_group_arn()
        .map(str::to_string)
        .or_else(|| group.arn().map(|a| a.trim_end_matches(":*").to_string()))
        .unwrap_or_default()
}

async fn group_tags(client: &Client, group: &LogGroup) -> ResourceResult<BTreeMap<String, String>> {
    let out = client
        .list_tags_for_resource()
        .resource_arn(tagging_arn(group))
        .send()
        .await
        .classified()?;
    Ok(out
        .tags()
        .map(|t| {
            t.iter()
                .filter(|(k, _)| !tags::is_reserved(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default())
}

async fn put_retention(client: &Client, name: &str, days: Option<i64>) -> ResourceResult<()> {
    match days.and_then(|d| i32::try_from(d).ok()) {
        Some(days) => {
            debug!(group = name, days, "PutRetentionPolicy");
            client
                .put_retention_policy()
                .log_group_name(name)
                .retention_in_days(days)
                .send()
                .await
                .classified()
                .map(|_| ())
        }
        None => {
            debug!(group = name, "DeleteRetentionPolicy");
            client
                .delete_retention_policy()
                .log_group_name(name)
                .send()
                .await
                .classified()
                .map(|_| ())
        }
    }
}

async fn set_key(client: &Client, name: &str, key: Option<&str>) -> ResourceResult<()> {
    match key {
        Some(key) => {
            debug!(group = name, "AssociateKmsKey");
            client
                .associate_kms_key()
                .log_group_name(name)
                .kms_key_id(key)
                .send()
                .await
                .classified()
                .map(|_| ())
        }
        None => {
            debug!(group = name, "DisassociateKmsKey");
            client
                .disassociate_kms_key()
                .log_group_name(name)
                .send()
                .await
                .classified()
                .map(|_| ())
        }
    }
}

async fn update_tags(
    client: &Client,
    group: &LogGroup,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let (set, remove) = tags::tag_changes(&tags::user_tags(before), &tags::user_tags(after));
    let arn = tagging_arn(group);
    if !set.is_empty() {
        client
            .tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .classified()?;
    }
    if !remove.is_empty() {
        client
            .untag_resource()
            .resource_arn(&arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .classified()?;
    }
    Ok(())
}

fn observe(group: &LogGroup, tags: BTreeMap<String, String>) -> Observed {
    let name = group.log_group_name().unwrap_or_default();
    let mut props = Props::new();
    props.insert("name".into(), json!(name));
    if let Some(days) = group.retention_in_days() {
        props.insert("retention_days".into(), json!(days));
    }
    if let Some(key) = group.kms_key_id() {
        props.insert("kms_key".into(), json!(key));
    }
    props.insert("tags".into(), tags::tags_value(tags));
    Observed {
        id: name.to_string(),
        props,
        attrs: attrs_of(name, Some(group)),
    }
}

fn attrs_of(name: &str, group: Option<&LogGroup>) -> Props {
    let mut attrs = Props::new();
    attrs.insert("name".into(), json!(name));
    if let Some(group) = group {
        attrs.insert("arn".into(), json!(tagging_arn(group)));
    }
    attrs
}
