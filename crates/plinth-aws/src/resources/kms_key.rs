//! `kms.key`: a customer managed KMS key (what `encryption.kms_key` of buckets, tables and
//! log groups points at).
//!
//! KMS never deletes a key at once: destroy schedules the deletion, AWS keeps the key
//! `PendingDeletion` for the waiting period (7 to 30 days) and deletes it then. From then on
//! the key cannot be used or changed, so it reads as gone, and destroy says when AWS will
//! delete it. CreateKey takes no idempotency token: the key is tagged with the create's
//! token, and a duplicate that a retried create made is scheduled for deletion at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_kms::types::{KeyMetadata, KeySpec, KeyState, KeyUsageType, Tag};
use aws_sdk_kms::Client;
use plinth_core::cost::{CostContext, CostLine};
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{bool_of, reorder, str_of, Props};
use serde_json::{json, Value};
use tracing::{debug, info};

use crate::errors::SendExt;
use crate::resources::ec2_common::CREATE_TOKEN_TAG;
use crate::resources::tags;
use crate::wait;
use crate::{Aws, Unanswered};

const KEY_USAGES: &[&str] = &["ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC"];
const KEY_SPECS: &[&str] = &[
    "SYMMETRIC_DEFAULT",
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
];
const ORDER: &[&str] = &[
    "description",
    "key_usage",
    "key_spec",
    "enabled",
    "rotation",
    "multi_region",
    "policy",
    "deletion_window_days",
    "tags",
];
/// KMS's own default waiting period.
const DEFAULT_WINDOW_DAYS: i64 = 30;
/// The one key policy a key has.
const POLICY_NAME: &str = "default";
/// How long IAM takes to show a new role to KMS, and a new key to its own calls.
const PROPAGATION: std::time::Duration = std::time::Duration::from_secs(2 * 60);
const MALFORMED_POLICY: &str = "MalformedPolicyDocumentException";
const NOT_FOUND: &str = "NotFoundException";
/// How often a key ListKeys named is asked for its tags while it answers NotFound.
const LISTED_RETRIES: u32 = 3;

pub struct KmsKey {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl KmsKey {
    pub fn new(aws: Arc<Aws>) -> KmsKey {
        KmsKey {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "kms.key",
        description: "A customer managed KMS key ($1/month while it exists)",
        kind: TypeKind::Managed,
        taggable: true,
        properties: vec![
            Prop::new("description", Shape::String).doc("what the key is for; default \"\""),
            Prop::new("key_usage", Shape::Enum(KEY_USAGES))
                .replaces()
                .doc("default ENCRYPT_DECRYPT"),
            Prop::new("key_spec", Shape::Enum(KEY_SPECS))
                .replaces()
                .known_as(&["customer_master_key_spec"])
                .doc("default SYMMETRIC_DEFAULT (AES-256, what S3, DynamoDB and Logs use)"),
            Prop::new("enabled", Shape::Bool)
                .known_as(&["is_enabled"])
                .doc("a disabled key cannot be used; default true"),
            Prop::new("rotation", Shape::Bool)
                .known_as(&["enable_key_rotation"])
                .doc("rotate the key material every year (symmetric keys only); default false"),
            Prop::new("multi_region", Shape::Bool)
                .replaces()
                .doc("a multi-Region primary key; default false"),
            Prop::new("policy", Shape::Any)
                .doc("the key policy (a JSON document); default KMS's, which lets the account's IAM policies grant use"),
            Prop::new("deletion_window_days", Shape::int_range(7, 30))
                .known_as(&["deletion_window_in_days"])
                .doc("days KMS waits after destroy before deleting the key; default 30"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the key"),
        ],
        attributes: vec![
            Attr::new("key_id", Shape::String, "the key's id (a UUID)"),
            Attr::new("arn", Shape::String, "arn:aws:kms:REGION:ACCOUNT:key/ID"),
        ],
    }
}

#[async_trait]
impl ResourceType for KmsKey {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(&self, props: &Props, ctx: &CostContext) -> Vec<CostLine> {
        let month = match ctx.regional_price(&["kms", "key_month"]) {
            Ok(month) => month,
            Err(e) => return vec![CostLine::unknown("KMS key", e.to_string())],
        };
        let mut lines = vec![CostLine::per_month(
            format!(
                "customer managed key at ${}/month (prorated hourly)",
                plinth_core::cost::price_text(month)
            ),
            month,
        )];
        if bool_of(props, "rotation") == Some(true) {
            lines.push(CostLine::free(
                "rotation: the first two yearly rotations add $1/month each, from a year on",
            ));
        }
        if let Ok(per_10000) = ctx.regional_price(&["kms", "requests_per_10000"]) {
            let requests = ctx.usage("kms.requests");
            lines.push(
                CostLine::usage_per_month(
                    format!(
                        "{} requests × ${}/10,000",
                        plinth_core::cost::count_text(requests),
                        plinth_core::cost::price_text(per_10000)
                    ),
                    requests / 10_000.0 * per_10000,
                )
                .with_free_tier(crate::cost::free_tier(ctx, "kms")),
            );
        }
        lines
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        let spec = str_of(props, "key_spec").unwrap_or("SYMMETRIC_DEFAULT");
        let usage = str_of(props, "key_usage").unwrap_or("ENCRYPT_DECRYPT");
        if bool_of(props, "rotation") == Some(true) && spec != "SYMMETRIC_DEFAULT" {
            issues.push(PropIssue::at(
                &["rotation"],
                format!("KMS rotates symmetric encryption keys only, not {spec}"),
            ));
        }
        let fits = match usage {
            "GENERATE_VERIFY_MAC" => spec.starts_with("HMAC_"),
            "SIGN_VERIFY" => spec.starts_with("RSA_") || spec.starts_with("ECC_"),
            _ => spec == "SYMMETRIC_DEFAULT" || spec.starts_with("RSA_"),
        };
        if !fits {
            issues.push(PropIssue::at(
                &["key_spec"],
                format!("a {spec} key cannot be used for {usage}"),
            ));
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        props.retain(|_, v| !v.is_null());
        props.entry("description").or_insert(json!(""));
        props.entry("key_usage").or_insert(json!("ENCRYPT_DECRYPT"));
        props
            .entry("key_spec")
            .or_insert(json!("SYMMETRIC_DEFAULT"));
        props.entry("enabled").or_insert(json!(true));
        props.entry("rotation").or_insert(json!(false));
        props.entry("multi_region").or_insert(json!(false));
        props
            .entry("deletion_window_days")
            .or_insert(json!(DEFAULT_WINDOW_DAYS));
        // A policy given as JSON text is the same document as one written in YAML.
        if let Some(Value::String(text)) = props.get("policy") {
            if let Ok(document) = serde_json::from_str::<Value>(text) {
                props.insert("policy".into(), document);
            }
        }
        let tags = tags::tags_of(props);
        props.insert("tags".into(), tags::tags_value(tags));
        reorder(props, ORDER);
        Ok(())
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.kms(&ctx.region);
        let Some(key) = describe(&client, id).await? else {
            return Ok(None);
        };
        if gone(&key) {
            return Ok(None);
        }
        observe(&client, &key, prior).await.map(Some)
    }

    /// The key an interrupted create made, by its token; any more it made (the SDK sent
    /// the create again) are scheduled for deletion.
    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let client = self.aws.kms(&ctx.region);
        let mut made = made_by(&client, ctx, props).await?.into_iter();
        let Some(key) = made.next() else {
            return Ok(None);
        };
        for duplicate in made {
            info!(
                key = duplicate.key_id(),
                kept = key.key_id(),
                "deleting the duplicate KMS key a retried create made"
            );
            schedule_deletion(&client, duplicate.key_id(), 7).await?;
        }
        observe(&client, &key, props).await.map(Some)
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "kms", "key/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.kms(&ctx.region);
        let unanswered = Unanswered::default();
        let policy = match props.get("policy") {
            Some(document) => Some(policy_text(document)?),
            None => None,
        };
        let request = client
            .create_key()
            .description(str_of(props, "description").unwrap_or_default())
            .key_usage(KeyUsageType::from(
                str_of(props, "key_usage").unwrap_or("ENCRYPT_DECRYPT"),
            ))
            .key_spec(KeySpec::from(
                str_of(props, "key_spec").unwrap_or("SYMMETRIC_DEFAULT"),
            ))
            .multi_region(bool_of(props, "multi_region").unwrap_or(false))
            .set_policy(policy)
            .set_tags(Some(kms_tags(props, ctx.create_token.as_deref())?));
        // A policy naming a role made moments ago is refused until IAM shows it everywhere;
        // a refused create made nothing, so it is sent again.
        let out = wait::retry_while_busy(ctx, "creating the KMS key", PROPAGATION, || {
            debug!(resource = ctx.name, "CreateKey");
            let request = request.clone();
            let unanswered = unanswered.clone();
            async move {
                request
                    .customize()
                    .interceptor(unanswered)
                    .send()
                    .await
                    .classified()
                    .map_err(|err| busy_if(err, &[MALFORMED_POLICY]))
            }
        })
        .await?;
        let key = out
            .key_metadata()
            .cloned()
            .ok_or_else(|| ResourceError::other("CreateKey returned no key"))?;
        let id = key.key_id().to_string();
        if unanswered.seen() {
            // An attempt the SDK sent again may have made a key too.
            for duplicate in made_by(&client, ctx, props).await? {
                if duplicate.key_id() != id {
                    info!(
                        key = duplicate.key_id(),
                        kept = id,
                        "deleting the duplicate KMS key a retried create made"
                    );
                    schedule_deletion(&client, duplicate.key_id(), 7).await?;
                }
            }
        }
        // A new key can be NotFound for moments to the calls after its create.
        let settle = |what: &'static str, on: bool, rotation: bool| {
            let (client, id) = (&client, &id);
            wait::retry_while_busy(ctx, what, PROPAGATION, move || async move {
                let result = if rotation {
                    set_rotation(client, id, on).await
                } else {
                    set_enabled(client, id, on).await
                };
                result.map_err(|err| busy_if(err, &[NOT_FOUND]))
            })
        };
        if bool_of(props, "rotation") == Some(true) {
            settle("turning rotation on", true, true).await?;
        }
        if bool_of(props, "enabled") == Some(false) {
            settle("disabling the key", false, false).await?;
        }
        Ok(Observed {
            id: id.clone(),
            props: props.clone(),
            attrs: attrs(&key),
        })
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.kms(&ctx.region);
        let changed = |key: &str| before.get(key) != after.get(key);
        let enable = bool_of(after, "enabled").unwrap_or(true);
        // A disabled key refuses rotation and policy changes: enabled first, disabled last.
        if changed("enabled") && enable {
            set_enabled(&client, id, true).await?;
        }
        if changed("description") {
            debug!(key = id, "UpdateKeyDescription");
            client
                .update_key_description()
                .key_id(id)
                .description(str_of(after, "description").unwrap_or_default())
                .send()
                .await
                .classified()?;
        }
        if changed("rotation") {
            set_rotation(&client, id, bool_of(after, "rotation").unwrap_or(false)).await?;
        }
        let key = describe(&client, id)
            .await?
            .ok_or_else(|| crate::errors::vanished(&format!("KMS key {id}")))?;
        if changed("policy") {
            // A policy left out goes back to KMS's default, as on a new key.
            let text = match after.get("policy") {
                Some(document) => policy_text(document)?,
                None => default_policy(key.arn().unwrap_or_default()),
            };
            debug!(key = id, "PutKeyPolicy");
            client
                .put_key_policy()
                .key_id(id)
                .policy_name(POLICY_NAME)
                .policy(text)
                .send()
                .await
                .classified()?;
        }
        if changed("tags") {
            update_tags(&client, id, before, after).await?;
        }
        if changed("enabled") && !enable {
            set_enabled(&client, id, false).await?;
        }
        Ok(Observed {
            id: id.to_string(),
            props: after.clone(),
            attrs: attrs(&key),
        })
    }

    async fn delete(&self, ctx: &OpContext, id: &str, props: &Props) -> ResourceResult<()> {
        let client = self.aws.kms(&ctx.region);
        let Some(key) = describe(&client, id).await? else {
            return Ok(());
        };
        if gone(&key) {
            return Ok(());
        }
        let days = props
            .get("deletion_window_days")
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_WINDOW_DAYS);
        match schedule_deletion(&client, id, days).await {
            Ok(when) => {
                ctx.notice(format!(
                    "KMS key {id} is scheduled for deletion{when}, after its {days}-day waiting \
                     period; it can no longer be used (CancelKeyDeletion brings it back until then)"
                ));
                Ok(())
            }
            // Scheduled meanwhile (by another run, or by hand).
            Err(err) if err.code.as_deref() == Some("KMSInvalidStateException") => {
                match describe(&client, id).await? {
                    Some(key) if !gone(&key) => Err(err),
                    _ => Ok(()),
                }
            }
            Err(err) => Err(err),
        }
    }
}

/// A key on its way out: nothing can be done with it any more, and AWS deletes it by itself.
fn gone(key: &KeyMetadata) -> bool {
    matches!(
        key.key_state(),
        Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion)
    )
}

async fn describe(client: &Client, id: &str) -> ResourceResult<Option<KeyMetadata>> {
    match client.describe_key().key_id(id).send().await.classified() {
        Ok(out) => Ok(out.key_metadata().cloned()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Schedules the deletion; the date AWS will delete the key, as text (` on 2026-12-09`).
async fn schedule_deletion(client: &Client, id: &str, days: i64) -> ResourceResult<String> {
    let days = i32::try_from(days).unwrap_or(DEFAULT_WINDOW_DAYS as i32);
    debug!(key = id, days, "ScheduleKeyDeletion");
    let out = client
        .schedule_key_deletion()
        .key_id(id)
        .pending_window_in_days(days)
        .send()
        .await
        .classified()?;
    Ok(out
        .deletion_date()
        .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
        .map(|d| format!(" on {}", d.get(..10).unwrap_or(&d)))
        .unwrap_or_default())
}

async fn set_rotation(client: &Client, id: &str, on: bool) -> ResourceResult<()> {
    debug!(key = id, on, "EnableKeyRotation / DisableKeyRotation");
    if on {
        client
            .enable_key_rotation()
            .key_id(id)
            .send()
            .await
            .classified()
            .map(|_| ())
    } else {
        client
            .disable_key_rotation()
            .key_id(id)
            .send()
            .await
            .classified()
            .map(|_| ())
    }
}

async fn set_enabled(client: &Client, id: &str, on: bool) -> ResourceResult<()> {
    debug!(key = id, on, "EnableKey / DisableKey");
    if on {
        client
            .enable_key()
            .key_id(id)
            .send()
            .await
            .classified()
            .map(|_| ())
    } else {
        client
            .disable_key()
            .key_id(id)
            .send()
            .await
            .classified()
            .map(|_| ())
    }
}

/// The keys one create made, found by its token tag: KMS lists keys by id only, so each
/// key's tags are read (a lab account has few keys; this runs only after a lost answer and
/// for an interrupted create).
async fn made_by(
    client: &Client,
    ctx: &OpContext,
    props: &Props,
) -> ResourceResult<Vec<KeyMetadata>> {
    let Some(token) = &ctx.create_token else {
        return Ok(Vec::new());
    };
    let wanted = tags::tags_of(props);
    let mut made = Vec::new();
    let mut pages = client.list_keys().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(crate::errors::classify)?;
        for entry in page.keys() {
            let Some(id) = entry.key_id() else { continue };
            let tags = match tags_of_listed(client, id).await {
                Ok(tags) => tags,
                // AWS managed keys, or a key deleted meanwhile.
                Err(err)
                    if matches!(
                        err.kind,
                        ErrorKind::NotFound | ErrorKind::Auth | ErrorKind::Invalid
                    ) =>
                {
                    continue
                }
                Err(err) => return Err(err),
            };
            let ours = tags.get(CREATE_TOKEN_TAG) == Some(token)
                && tags::OWNER_TAGS
                    .iter()
                    .all(|k| tags.get(*k) == wanted.get(*k));
            if !ours {
                continue;
            }
            if let Some(key) = describe(client, id).await?.filter(|k| !gone(k)) {
                made.push(key);
            }
        }
    }
    Ok(made)
}

/// The tags of a key ListKeys just named: a key made moments ago may answer NotFound a
/// few times first (the duplicate a lost answer left is exactly such a key).
async fn tags_of_listed(client: &Client, id: &str) -> ResourceResult<BTreeMap<String, String>> {
    let mut tries = 0;
    loop {
        match key_tags(client, id).await {
            Err(err) if err.kind == ErrorKind::NotFound && tries < LISTED_RETRIES => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

/// `err` as something to wait out when its code is one of `codes`.
fn busy_if(err: ResourceError, codes: &[&str]) -> ResourceError {
    if err.code.as_deref().is_some_and(|c| codes.contains(&c)) {
        ResourceError {
            kind: ErrorKind::InUse,
            ..err
        }
    } else {
        err
    }
}

/// Every tag of the key, the create token included.
async fn key_tags(client: &Client, id: &str) -> ResourceResult<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    let mut marker = None;
    loop {
        let out = client
            .list_resource_tags()
            .key_id(id)
            .set_marker(marker.take())
            .send()
            .await
            .classified()?;
        tags.extend(
            out.tags()
                .iter()
                .map(|t| (t.tag_key().to_string(), t.tag_value().to_string())),
        );
        match out.next_marker() {
            Some(next) if out.truncated() => marker = Some(next.to_string()),
            _ => return Ok(tags),
        }
    }
}

async fn observe(client: &Client, key: &KeyMetadata, prior: &Props) -> ResourceResult<Observed> {
    let id = key.key_id();
    let rotatable = key.key_spec() == Some(&KeySpec::SymmetricDefault);
    let rotation = if rotatable {
        client
            .get_key_rotation_status()
            .key_id(id)
            .send()
            .await
            .classified()?
            .key_rotation_enabled()
    } else {
        false
    };
    let all_tags = key_tags(client, id).await?;
    let user_tags = all_tags
        .into_iter()
        .filter(|(k, _)| !tags::is_reserved(k) && k != CREATE_TOKEN_TAG);
    let mut props = Props::new();
    props.insert("description".into(), json!(key.description().unwrap_or("")));
    props.insert(
        "key_usage".into(),
        json!(key
            .key_usage()
            .map(|u| u.as_str())
            .unwrap_or("ENCRYPT_DECRYPT")),
    );
    props.insert(
        "key_spec".into(),
        json!(key
            .key_spec()
            .map(|s| s.as_str())
            .unwrap_or("SYMMETRIC_DEFAULT")),
    );
    props.insert("enabled".into(), json!(key.enabled()));
    props.insert("rotation".into(), json!(rotation));
    props.insert(
        "multi_region".into(),
        json!(key.multi_region().unwrap_or(false)),
    );
    // KMS's default policy names the account: compared only when the stack gives one.
    if prior.contains_key("policy") {
        let text = client
            .get_key_policy()
            .key_id(id)
            .policy_name(POLICY_NAME)
            .send()
            .await
            .classified()?;
        if let Some(document) = text
            .policy()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
        {
            props.insert("policy".into(), document);
        }
    }
    // Lives only in plinth: how long destroy asks KMS to wait.
    props.insert(
        "deletion_window_days".into(),
        prior
            .get("deletion_window_days")
            .cloned()
            .unwrap_or(json!(DEFAULT_WINDOW_DAYS)),
    );
    props.insert("tags".into(), tags::tags_value(user_tags));
    reorder(&mut props, ORDER);
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs: attrs(key),
    })
}

fn attrs(key: &KeyMetadata) -> Props {
    let mut attrs = Props::new();
    attrs.insert("key_id".into(), json!(key.key_id()));
    attrs.insert("arn".into(), json!(key.arn().unwrap_or_default()));
    attrs
}

/// KMS's default key policy: the account (through its IAM policies) may do everything.
fn default_policy(key_arn: &str) -> String {
    let parts: Vec<&str> = key_arn.split(':').collect();
    let (partition, account) = (
        parts.get(1).copied().unwrap_or("aws"),
        parts.get(4).copied().unwrap_or_default(),
    );
    json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:{partition}:iam::{account}:root")},
            "Action": "kms:*",
            "Resource": "*"
        }]
    })
    .to_string()
}

fn policy_text(document: &Value) -> ResourceResult<String> {
    match document {
        Value::String(text) => Ok(text.clone()),
        other => serde_json::to_string(other)
            .map_err(|e| ResourceError::invalid(format!("the key policy: {e}"))),
    }
}

fn kms_tags(props: &Props, token: Option<&str>) -> ResourceResult<Vec<Tag>> {
    let mut pairs: Vec<(String, String)> = tags::user_tags(props).into_iter().collect();
    if let Some(token) = token {
        pairs.push((CREATE_TOKEN_TAG.to_string(), token.to_string()));
    }
    pairs.into_iter().map(|(k, v)| kms_tag(k, v)).collect()
}

fn kms_tag(key: String, value: String) -> ResourceResult<Tag> {
    Tag::builder()
        .tag_key(key)
        .tag_value(value)
        .build()
        .map_err(|e| ResourceError::other(format!("building a tag: {e}")))
}

async fn update_tags(
    client: &Client,
    id: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let (set, remove) = tags::tag_changes(&tags::user_tags(before), &tags::user_tags(after));
    if !set.is_empty() {
        let tags = set
            .into_iter()
            .map(|(k, v)| kms_tag(k, v))
            .collect::<ResourceResult<Vec<_>>>()?;
        client
            .tag_resource()
            .key_id(id)
            .set_tags(Some(tags))
            .send()
            .await
            .classified()?;
    }
    if !remove.is_empty() {
        client
            .untag_resource()
            .key_id(id)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .classified()?;
    }
    Ok(())
}
