//! The sub-configurations of an `s3.bucket` that sites and course labs use: object
//! ownership, default encryption, CORS, lifecycle rules, static website hosting, server
//! access logging and object lock. (`lifecycle` is every resource's own key in a stack, so
//! the rules are `lifecycle_rules`.) Each has its own S3 call to read, one to set and (most)
//! one to remove; here they are mapped between the canonical properties and the SDK's types.
//!
//! AWS's defaults for a new bucket (since 2023): object ownership `BucketOwnerEnforced`
//! (ACLs off) and SSE-S3 (`AES256`) encryption without a bucket key. The canonical form
//! fills those in, so a stack that says nothing about them plans nothing.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLoggingStatus,
    CorsConfiguration, CorsRule, DefaultRetention, ErrorDocument, ExpirationStatus, IndexDocument,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, LoggingEnabled,
    NoncurrentVersionExpiration, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockRetentionMode, ObjectLockRule, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, Protocol, RedirectAllRequestsTo, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Transition, TransitionStorageClass, WebsiteConfiguration,
};
use aws_sdk_s3::Client;
use plinth_core::resource::{PropIssue, ResourceError, ResourceResult};
use plinth_core::schema::{Prop, Shape};
use plinth_core::value::{bool_of, str_of, PathSeg, Props};
use serde_json::{json, Map, Value};
use tracing::debug;

use crate::errors::SendExt;
use crate::resources::s3_bucket::is_code;

pub const OWNERSHIPS: &[&str] = &[
    "BucketOwnerEnforced",
    "BucketOwnerPreferred",
    "ObjectWriter",
];
/// What a new bucket gets when CreateBucket names no ownership.
pub const DEFAULT_OWNERSHIP: &str = "BucketOwnerEnforced";
const ALGORITHMS: &[&str] = &["AES256", "aws:kms", "aws:kms:dsse"];
const CORS_METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "HEAD"];
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
];
/// Classes S3 refuses to transition to before an object is 30 days old.
const THIRTY_DAY_CLASSES: &[&str] = &["STANDARD_IA", "ONEZONE_IA"];
const LOCK_MODES: &[&str] = &["GOVERNANCE", "COMPLIANCE"];
const PROTOCOLS: &[&str] = &["http", "https"];
/// Regions whose website endpoints have a dash (`s3-website-REGION`), the older form.
const DASH_WEBSITE_REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "eu-west-1",
    "sa-east-1",
    "us-gov-west-1",
];

/// The schema of the sub-configurations, in canonical order.
pub fn props() -> Vec<Prop> {
    vec![
        Prop::new("object_ownership", Shape::Enum(OWNERSHIPS)).doc(
            "who owns objects others upload, and whether ACLs apply; default BucketOwnerEnforced (ACLs off)",
        ),
        Prop::new("encryption", Shape::Object(encryption_props()))
            .known_as(&["server_side_encryption_configuration"])
            .doc("default encryption of new objects; default SSE-S3 (AES256)"),
        Prop::new("cors", Shape::list(Shape::Object(cors_props())))
            .known_as(&["cors_rule"])
            .doc("CORS rules, in the order S3 matches them; default none"),
        Prop::new("lifecycle_rules", Shape::list(Shape::Object(lifecycle_props())))
            .known_as(&["lifecycle_rule"])
            .doc("lifecycle rules: expire or transition objects after some days; default none"),
        Prop::new("website", Shape::Object(website_props()))
            .doc("static website hosting (the `website_endpoint` attribute, HTTP only)"),
        Prop::new("logging", Shape::Object(logging_props()))
            .doc("server access logs delivered to another bucket of this region"),
        Prop::new("object_lock", Shape::Object(lock_props())).doc(
            "object lock (WORM) with an optional default retention; needs versioning: true; removing it replaces the bucket",
        ),
    ]
}

fn encryption_props() -> Vec<Prop> {
    vec![
        Prop::new("algorithm", Shape::Enum(ALGORITHMS))
            .known_as(&["sse_algorithm"])
            .doc("AES256 (SSE-S3), aws:kms (SSE-KMS) or aws:kms:dsse; default AES256"),
        Prop::new("kms_key", Shape::String)
            .known_as(&["kms_master_key_id"])
            .holds_referent()
            .doc("the KMS key's ARN (with aws:kms); default the AWS managed key aws/s3"),
        Prop::new("bucket_key", Shape::Bool)
            .known_as(&["bucket_key_enabled"])
            .doc("use an S3 bucket key to cut KMS requests (with aws:kms); default false"),
    ]
}

fn cors_props() -> Vec<Prop> {
    vec![
        Prop::new("id", Shape::String).doc("a name for the rule"),
        Prop::new("allowed_origins", Shape::list(Shape::String))
            .required()
            .doc("origins allowed (https://example.com, *)"),
        Prop::new("allowed_methods", Shape::list(Shape::Enum(CORS_METHODS)))
            .required()
            .doc("methods allowed"),
        Prop::new("allowed_headers", Shape::list(Shape::String))
            .doc("request headers allowed in a preflight; default none"),
        Prop::new("expose_headers", Shape::list(Shape::String))
            .doc("response headers browsers may read; default none"),
        Prop::new("max_age_seconds", Shape::int_range(0, i32::MAX as i64))
            .doc("how long browsers cache the preflight answer"),
    ]
}

fn lifecycle_props() -> Vec<Prop> {
    vec![
        Prop::new("id", Shape::String)
            .required()
            .doc("the rule's name, unique in the bucket (up to 255 characters)"),
        Prop::new("enabled", Shape::Bool).doc("default true"),
        Prop::new("prefix", Shape::String)
            .doc("only keys starting with this; default \"\" (every object)"),
        Prop::new("expire_after_days", Shape::int_range(1, i32::MAX as i64))
            .doc("delete (or, versioned, hide) objects this many days after creation"),
        Prop::new(
            "expire_noncurrent_after_days",
            Shape::int_range(1, i32::MAX as i64),
        )
        .doc("delete old versions this many days after they stopped being current"),
        Prop::new(
            "abort_incomplete_uploads_after_days",
            Shape::int_range(1, i32::MAX as i64),
        )
        .doc("abort multipart uploads still unfinished after this many days"),
        Prop::new(
            "transitions",
            Shape::list(Shape::Object(transition_props())),
        )
        .doc("move objects to cheaper storage classes; default none"),
    ]
}

fn transition_props() -> Vec<Prop> {
    vec![
        Prop::new("after_days", Shape::int_range(0, i32::MAX as i64))
            .required()
            .doc("days after creation"),
        Prop::new("storage_class", Shape::Enum(STORAGE_CLASSES))
            .required()
            .doc("the class to move to"),
    ]
}

fn website_props() -> Vec<Prop> {
    vec![
        Prop::new("index_document", Shape::String)
            .doc("served for a request of a folder (index.html)"),
        Prop::new("error_document", Shape::String).doc("served for 4xx errors (error.html)"),
        Prop::new("redirect_all_to", Shape::String)
            .doc("instead of serving: redirect every request to this host name"),
        Prop::new("redirect_protocol", Shape::Enum(PROTOCOLS))
            .doc("the protocol of those redirects; default that of the request"),
    ]
}

fn logging_props() -> Vec<Prop> {
    vec![
        Prop::new("target_bucket", Shape::String)
            .required()
            .doc("the bucket receiving the logs (its policy must let logging.s3.amazonaws.com put objects)"),
        Prop::new("target_prefix", Shape::String).doc("a key prefix for the logs; default \"\""),
    ]
}

fn lock_props() -> Vec<Prop> {
    vec![
        Prop::new("mode", Shape::Enum(LOCK_MODES)).doc(
            "the default retention's mode: GOVERNANCE (force_destroy can bypass it) or COMPLIANCE (nobody can delete before it ends)",
        ),
        Prop::new("days", Shape::int_range(1, 36_500)).doc("the default retention in days"),
        Prop::new("years", Shape::int_range(1, 100)).doc("the default retention in years"),
    ]
}

/// Defaults filled in, so a bucket that says nothing matches what AWS reports of a new one.
pub fn canonicalize(props: &mut Props) {
    props
        .entry("object_ownership")
        .or_insert(json!(DEFAULT_OWNERSHIP));
    let encryption = props
        .entry("encryption")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(e) = encryption {
        e.retain(|_, v| !v.is_null());
        e.entry("algorithm").or_insert(json!("AES256"));
        e.entry("bucket_key").or_insert(json!(false));
    }
    for key in ["cors", "lifecycle_rules"] {
        props.entry(key).or_insert(json!([]));
    }
    for_each_item(props, "cors", |rule| {
        for key in ["allowed_headers", "expose_headers"] {
            rule.entry(key).or_insert(json!([]));
        }
    });
    for_each_item(props, "lifecycle_rules", |rule| {
        rule.entry("enabled").or_insert(json!(true));
        rule.entry("prefix").or_insert(json!(""));
        let transitions = rule.entry("transitions").or_insert(json!([]));
        if let Value::Array(list) = transitions {
            list.sort_by_key(|t| t.get("after_days").and_then(Value::as_i64));
        }
    });
    if let Some(Value::Object(logging)) = props.get_mut("logging") {
        logging.entry("target_prefix").or_insert(json!(""));
    }
}

fn for_each_item(props: &mut Props, key: &str, mut f: impl FnMut(&mut Map<String, Value>)) {
    if let Some(Value::Array(items)) = props.get_mut(key) {
        for item in items.iter_mut() {
            if let Value::Object(item) = item {
                item.retain(|_, v| !v.is_null());
                f(item);
            }
        }
    }
}

/// What S3 would refuse, said before anything is made.
pub fn check(props: &Props) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    if let Some(e) = props.get("encryption").and_then(Value::as_object) {
        let kms = str_of(e, "algorithm").is_some_and(|a| a.starts_with("aws:kms"));
        if e.get("kms_key").is_some() && !kms {
            issues.push(PropIssue::at(
                &["encryption", "kms_key"],
                "a KMS key needs algorithm aws:kms (or aws:kms:dsse)",
            ));
        }
        if bool_of(e, "bucket_key") == Some(true) && str_of(e, "algorithm") != Some("aws:kms") {
            issues.push(PropIssue::at(
                &["encryption", "bucket_key"],
                "bucket keys work with algorithm aws:kms only",
            ));
        }
    }
    issues.extend(check_lifecycle(props));
    if let Some(w) = props.get("website").and_then(Value::as_object) {
        let redirect = w.get("redirect_all_to").is_some();
        let index = w.get("index_document").is_some();
        if redirect == index {
            issues.push(PropIssue::at(
                &["website"],
                "a website has either index_document (to serve the bucket) or redirect_all_to",
            ));
        }
        if redirect && w.get("error_document").is_some() {
            issues.push(PropIssue::at(
                &["website", "error_document"],
                "a website that redirects every request serves no error document",
            ));
        }
        if !redirect && w.get("redirect_protocol").is_some() {
            issues.push(PropIssue::at(
                &["website", "redirect_protocol"],
                "redirect_protocol goes with redirect_all_to",
            ));
        }
        if str_of(w, "index_document").is_some_and(|d| d.is_empty() || d.contains('/')) {
            issues.push(PropIssue::at(
                &["website", "index_document"],
                "the index document is a file name without a slash (index.html)",
            ));
        }
    }
    if let Some(lock) = props.get("object_lock").and_then(Value::as_object) {
        if bool_of(props, "versioning") != Some(true) {
            issues.push(PropIssue::at(
                &["object_lock"],
                "object lock needs `versioning: true` (S3 turns versioning on for it)",
            ));
        }
        let mode = lock.get("mode").is_some();
        let periods =
            usize::from(lock.get("days").is_some()) + usize::from(lock.get("years").is_some());
        if mode != (periods == 1) || periods > 1 {
            issues.push(PropIssue::at(
                &["object_lock"],
                "a default retention has a mode and either days or years (or give neither for none)",
            ));
        }
    }
    issues
}

fn check_lifecycle(props: &Props) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    let rules = props.get("lifecycle_rules").and_then(Value::as_array);
    let mut ids = std::collections::BTreeSet::new();
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let at = |key: &str, message: String| PropIssue {
            path: [PathSeg::Key("lifecycle_rules".into()), PathSeg::Index(i)]
                .into_iter()
                .chain((!key.is_empty()).then(|| PathSeg::Key(key.into())))
                .collect(),
            message,
        };
        if let Some(id) = rule.get("id").and_then(Value::as_str) {
            if id.len() > 255 {
                issues.push(at(
                    "id",
                    format!("a rule id has at most 255 characters, not {}", id.len()),
                ));
            }
            if !ids.insert(id) {
                issues.push(at("id", format!("two lifecycle rules are named {id:?}")));
            }
        }
        let actions = [
            "expire_after_days",
            "expire_noncurrent_after_days",
            "abort_incomplete_uploads_after_days",
        ];
        let transitions = rule.get("transitions").and_then(Value::as_array);
        let has_transition = transitions.is_some_and(|t| !t.is_empty());
        if !has_transition && actions.iter().all(|a| rule.get(*a).is_none()) {
            issues.push(at(
                "",
                "a lifecycle rule needs an action: expire_after_days, expire_noncurrent_after_days, abort_incomplete_uploads_after_days or transitions".into(),
            ));
        }
        for t in transitions.into_iter().flatten() {
            let class = t.get("storage_class").and_then(Value::as_str).unwrap_or("");
            let days = t.get("after_days").and_then(Value::as_i64).unwrap_or(0);
            if THIRTY_DAY_CLASSES.contains(&class) && days < 30 {
                issues.push(at(
                    "transitions",
                    format!(
                        "S3 moves objects to {class} after 30 days at the earliest, not {days}"
                    ),
                ));
            }
            let expires = rule.get("expire_after_days").and_then(Value::as_i64);
            if expires.is_some_and(|e| e <= days) {
                issues.push(at(
                    "transitions",
                    format!("objects expire before (or when) they would move to {class}"),
                ));
            }
        }
    }
    issues
}

/// `NAME.s3-website-REGION.amazonaws.com` (or `.s3-website.REGION.` in newer regions).
pub fn website_endpoint(name: &str, region: &str) -> String {
    format!("{name}.{}", website_domain(region))
}

pub fn website_domain(region: &str) -> String {
    if DASH_WEBSITE_REGIONS.contains(&region) {
        format!("s3-website-{region}.amazonaws.com")
    } else {
        format!("s3-website.{region}.amazonaws.com")
    }
}

fn built<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> ResourceResult<T> {
    r.map_err(|e| ResourceError::other(format!("building {what}: {e}")))
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|items| {
        items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}

fn int(v: &Map<String, Value>, key: &str) -> Option<i32> {
    v.get(key)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

// --- Object ownership -------------------------------------------------------------------

pub async fn put_ownership(client: &Client, name: &str, ownership: &str) -> ResourceResult<()> {
    let rule = built(
        "the ownership rule",
        OwnershipControlsRule::builder()
            .object_ownership(ObjectOwnership::from(ownership))
            .build(),
    )?;
    let controls = built(
        "the ownership controls",
        OwnershipControls::builder().rules(rule).build(),
    )?;
    debug!(bucket = name, ownership, "PutBucketOwnershipControls");
    client
        .put_bucket_ownership_controls()
        .bucket(name)
        .ownership_controls(controls)
        .send()
        .await
        .classified()
        .map(|_| ())
}

pub async fn read_ownership(client: &Client, name: &str) -> ResourceResult<Value> {
    match client
        .get_bucket_ownership_controls()
        .bucket(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(out
            .ownership_controls()
            .and_then(|c| c.rules().first())
            .map(|r| json!(r.object_ownership().as_str()))
            .unwrap_or(json!("ObjectWriter"))),
        // A bucket without controls is the pre-2023 default: the writer owns its objects.
        Err(err) if is_code(&err, "OwnershipControlsNotFoundError") => Ok(json!("ObjectWriter")),
        Err(err) => Err(err),
    }
}

// --- Default encryption -----------------------------------------------------------------

pub fn is_default_encryption(encryption: &Value) -> bool {
    *encryption == json!({"algorithm": "AES256", "bucket_key": false})
}

pub async fn put_encryption(client: &Client, name: &str, encryption: &Value) -> ResourceResult<()> {
    let e = encryption.as_object().cloned().unwrap_or_default();
    let algorithm = str_of(&e, "algorithm").unwrap_or("AES256");
    let default = built(
        "the default encryption",
        ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::from(algorithm))
            .set_kms_master_key_id(str_of(&e, "kms_key").map(str::to_string))
            .build(),
    )?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default)
        .bucket_key_enabled(bool_of(&e, "bucket_key").unwrap_or(false))
        .build();
    let configuration = built(
        "the encryption configuration",
        ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build(),
    )?;
    debug!(bucket = name, algorithm, "PutBucketEncryption");
    client
        .put_bucket_encryption()
        .bucket(name)
        .server_side_encryption_configuration(configuration)
        .send()
        .await
        .classified()
        .map(|_| ())
}

/// S3 reports the key as it was given: a key given as an ARN reads back as that ARN.
pub async fn read_encryption(client: &Client, name: &str) -> ResourceResult<Value> {
    let out = match client
        .get_bucket_encryption()
        .bucket(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => out,
        // Not seen on AWS since 2023 (every bucket is encrypted), but what it would mean.
        Err(err) if is_code(&err, "ServerSideEncryptionConfigurationNotFoundError") => {
            return Ok(json!({"algorithm": "AES256", "bucket_key": false}))
        }
        Err(err) => return Err(err),
    };
    let rule = out
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first());
    let default = rule.and_then(|r| r.apply_server_side_encryption_by_default());
    let mut e = Map::new();
    e.insert(
        "algorithm".into(),
        json!(default
            .map(|d| d.sse_algorithm().as_str())
            .unwrap_or("AES256")),
    );
    if let Some(key) = default.and_then(|d| d.kms_master_key_id()) {
        e.insert("kms_key".into(), json!(key));
    }
    e.insert(
        "bucket_key".into(),
        json!(rule.and_then(|r| r.bucket_key_enabled()).unwrap_or(false)),
    );
    Ok(Value::Object(e))
}

// --- CORS -------------------------------------------------------------------------------

pub async fn put_cors(client: &Client, name: &str, cors: &Value) -> ResourceResult<()> {
    let rules = cors.as_array().cloned().unwrap_or_default();
    if rules.is_empty() {
        debug!(bucket = name, "DeleteBucketCors");
        return client
            .delete_bucket_cors()
            .bucket(name)
            .send()
            .await
            .classified()
            .map(|_| ());
    }
    let mut sdk_rules = Vec::new();
    for rule in rules.iter().filter_map(Value::as_object) {
        sdk_rules.push(built(
            "a CORS rule",
            CorsRule::builder()
                .set_id(str_of(rule, "id").map(str::to_string))
                .set_allowed_origins(strings(rule.get("allowed_origins")))
                .set_allowed_methods(strings(rule.get("allowed_methods")))
                .set_allowed_headers(strings(rule.get("allowed_headers")))
                .set_expose_headers(strings(rule.get("expose_headers")))
                .set_max_age_seconds(int(rule, "max_age_seconds"))
                .build(),
        )?);
    }
    let configuration = built(
        "the CORS configuration",
        CorsConfiguration::builder()
            .set_cors_rules(Some(sdk_rules))
            .build(),
    )?;
    debug!(bucket = name, rules = rules.len(), "PutBucketCors");
    client
        .put_bucket_cors()
        .bucket(name)
        .cors_configuration(configuration)
        .send()
        .await
        .classified()
        .map(|_| ())
}

pub async fn read_cors(client: &Client, name: &str) -> ResourceResult<Value> {
    let out = match client
        .get_bucket_cors()
        .bucket(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => out,
        Err(err) if is_code(&err, "NoSuchCORSConfiguration") => return Ok(json!([])),
        Err(err) => return Err(err),
    };
    let rules = out
        .cors_rules()
        .iter()
        .map(|r| {
            let mut rule = Map::new();
            if let Some(id) = r.id() {
                rule.insert("id".into(), json!(id));
            }
            rule.insert("allowed_origins".into(), json!(r.allowed_origins()));
            rule.insert("allowed_methods".into(), json!(r.allowed_methods()));
            rule.insert("allowed_headers".into(), json!(r.allowed_headers()));
            rule.insert("expose_headers".into(), json!(r.expose_headers()));
            if let Some(age) = r.max_age_seconds() {
                rule.insert("max_age_seconds".into(), json!(age));
            }
            Value::Object(rule)
        })
        .collect();
    Ok(Value::Array(rules))
}

// --- Lifecycle --------------------------------------------------------------------------

pub async fn put_lifecycle(client: &Client, name: &str, lifecycle: &Value) -> ResourceResult<()> {
    let rules = lifecycle.as_array().cloned().unwrap_or_default();
    if rules.is_empty() {
        debug!(bucket = name, "DeleteBucketLifecycle");
        return client
            .delete_bucket_lifecycle()
            .bucket(name)
            .send()
            .await
            .classified()
            .map(|_| ());
    }
    let sdk_rules = rules
        .iter()
        .filter_map(Value::as_object)
        .map(lifecycle_rule)
        .collect::<ResourceResult<Vec<_>>>()?;
    let configuration = built(
        "the lifecycle configuration",
        BucketLifecycleConfiguration::builder()
            .set_rules(Some(sdk_rules))
            .build(),
    )?;
    debug!(
        bucket = name,
        rules = rules.len(),
        "PutBucketLifecycleConfiguration"
    );
    client
        .put_bucket_lifecycle_configuration()
        .bucket(name)
        .lifecycle_configuration(configuration)
        .send()
        .await
        .classified()
        .map(|_| ())
}

fn lifecycle_rule(rule: &Map<String, Value>) -> ResourceResult<LifecycleRule> {
    let status = if bool_of(rule, "enabled").unwrap_or(true) {
        ExpirationStatus::Enabled
    } else {
        ExpirationStatus::Disabled
    };
    let filter = LifecycleRuleFilter::builder()
        .prefix(str_of(rule, "prefix").unwrap_or(""))
        .build();
    let transitions = rule
        .get("transitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .map(|t| {
            Transition::builder()
                .set_days(int(t, "after_days"))
                .set_storage_class(str_of(t, "storage_class").map(TransitionStorageClass::from))
                .build()
        })
        .collect::<Vec<_>>();
    built(
        "a lifecycle rule",
        LifecycleRule::builder()
            .set_id(str_of(rule, "id").map(str::to_string))
            .status(status)
            .filter(filter)
            .set_expiration(
                int(rule, "expire_after_days")
                    .map(|d| LifecycleExpiration::builder().days(d).build()),
            )
            .set_noncurrent_version_expiration(int(rule, "expire_noncurrent_after_days").map(|d| {
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(d)
                    .build()
            }))
            .set_abort_incomplete_multipart_upload(
                int(rule, "abort_incomplete_uploads_after_days").map(|d| {
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(d)
                        .build()
                }),
            )
            .set_transitions((!transitions.is_empty()).then_some(transitions))
            .build(),
    )
}

pub async fn read_lifecycle(client: &Client, name: &str) -> ResourceResult<Value> {
    let out = match client
        .get_bucket_lifecycle_configuration()
        .bucket(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => out,
        Err(err) if is_code(&err, "NoSuchLifecycleConfiguration") => return Ok(json!([])),
        Err(err) => return Err(err),
    };
    let rules = out.rules().iter().map(observed_rule).collect();
    Ok(Value::Array(rules))
}

fn observed_rule(r: &LifecycleRule) -> Value {
    let mut rule = Map::new();
    rule.insert("id".into(), json!(r.id().unwrap_or("")));
    rule.insert(
        "enabled".into(),
        json!(*r.status() == ExpirationStatus::Enabled),
    );
    // The deprecated rule-level prefix, where a rule was made with it.
    #[allow(deprecated)]
    let prefix = r.filter().and_then(|f| f.prefix()).or(r.prefix());
    rule.insert("prefix".into(), json!(prefix.unwrap_or("")));
    if let Some(days) = r.expiration().and_then(|e| e.days()) {
        rule.insert("expire_after_days".into(), json!(days));
    }
    if let Some(days) = r
        .noncurrent_version_expiration()
        .and_then(|e| e.noncurrent_days())
    {
        rule.insert("expire_noncurrent_after_days".into(), json!(days));
    }
    if let Some(days) = r
        .abort_incomplete_multipart_upload()
        .and_then(|a| a.days_after_initiation())
    {
        rule.insert("abort_incomplete_uploads_after_days".into(), json!(days));
    }
    let mut transitions: Vec<Value> = r
        .transitions()
        .iter()
        .map(|t| {
            json!({
                "after_days": t.days().unwrap_or(0),
                "storage_class": t.storage_class().map(|c| c.as_str()).unwrap_or(""),
            })
        })
        .collect();
    transitions.sort_by_key(|t| t.get("after_days").and_then(Value::as_i64));
    rule.insert("transitions".into(), Value::Array(transitions));
    Value::Object(rule)
}

// --- Website ----------------------------------------------------------------------------

pub async fn put_website(
    client: &Client,
    name: &str,
    website: Option<&Value>,
) -> ResourceResult<()> {
    let Some(w) = website.and_then(Value::as_object) else {
        debug!(bucket = name, "DeleteBucketWebsite");
        return client
            .delete_bucket_website()
            .bucket(name)
            .send()
            .await
            .classified()
            .map(|_| ());
    };
    let mut configuration = WebsiteConfiguration::builder();
    if let Some(index) = str_of(w, "index_document") {
        configuration = configuration.index_document(built(
            "the index document",
            IndexDocument::builder().suffix(index).build(),
        )?);
    }
    if let Some(error) = str_of(w, "error_document") {
        configuration = configuration.error_document(built(
            "the error document",
            ErrorDocument::builder().key(error).build(),
        )?);
    }
    if let Some(host) = str_of(w, "redirect_all_to") {
        configuration = configuration.redirect_all_requests_to(built(
            "the redirect",
            RedirectAllRequestsTo::builder()
                .host_name(host)
                .set_protocol(str_of(w, "redirect_protocol").map(Protocol::from))
                .build(),
        )?);
    }
    debug!(bucket = name, "PutBucketWebsite");
    client
        .put_bucket_website()
        .bucket(name)
        .website_configuration(configuration.build())
        .send()
        .await
        .classified()
        .map(|_| ())
}

pub async fn read_website(client: &Client, name: &str) -> ResourceResult<Option<Value>> {
    let out = match client
        .get_bucket_website()
        .bucket(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => out,
        Err(err) if is_code(&err, "NoSuchWebsiteConfiguration") => return Ok(None),
        Err(err) => return Err(err),
    };
    let mut w = Map::new();
    if let Some(index) = out.index_document() {
        w.insert("index_document".into(), json!(index.suffix()));
    }
    if let Some(error) = out.error_document() {
        w.insert("error_document".into(), json!(error.key()));
    }
    if let Some(redirect) = out.redirect_all_requests_to() {
        w.insert("redirect_all_to".into(), json!(redirect.host_name()));
        if let Some(protocol) = redirect.protocol() {
            w.insert("redirect_protocol".into(), json!(protocol.as_str()));
        }
    }
    Ok(Some(Value::Object(w)))
}

// --- Server access logging --------------------------------------------------------------

pub async fn put_logging(
    client: &Client,
    name: &str,
    logging: Option<&Value>,
) -> ResourceResult<()> {
    let enabled = match logging.and_then(Value::as_object) {
        Some(l) => Some(built(
            "the logging target",
            LoggingEnabled::builder()
                .set_target_bucket(str_of(l, "target_bucket").map(str::to_string))
                .target_prefix(str_of(l, "target_prefix").unwrap_or(""))
                .build(),
        )?),
        // An empty status turns logging off.
        None => None,
    };
    debug!(bucket = name, on = enabled.is_some(), "PutBucketLogging");
    client
        .put_bucket_logging()
        .bucket(name)
        .bucket_logging_status(
            BucketLoggingStatus::builder()
                .set_logging_enabled(enabled)
                .build(),
        )
        .send()
        .await
        .classified()
        .map(|_| ())
}

pub async fn read_logging(client: &Client, name: &str) -> ResourceResult<Option<Value>> {
    let out = client
        .get_bucket_logging()
        .bucket(name)
        .send()
        .await
        .classified()?;
    Ok(out.logging_enabled().map(|l| {
        json!({
            "target_bucket": l.target_bucket(),
            "target_prefix": l.target_prefix(),
        })
    }))
}

// --- Object lock ------------------------------------------------------------------------

pub async fn put_object_lock(client: &Client, name: &str, lock: &Value) -> ResourceResult<()> {
    let l = lock.as_object().cloned().unwrap_or_default();
    let rule = str_of(&l, "mode").map(|mode| {
        ObjectLockRule::builder()
            .default_retention(
                DefaultRetention::builder()
                    .mode(ObjectLockRetentionMode::from(mode))
                    .set_days(int(&l, "days"))
                    .set_years(int(&l, "years"))
                    .build(),
            )
            .build()
    });
    let configuration = ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .set_rule(rule)
        .build();
    debug!(bucket = name, "PutObjectLockConfiguration");
    client
        .put_object_lock_configuration()
        .bucket(name)
        .object_lock_configuration(configuration)
        .send()
        .await
        .classified()
        .map(|_| ())
}

pub async fn read_object_lock(client: &Client, name: &str) -> ResourceResult<Option<Value>> {
    let out = match client
        .get_object_lock_configuration()
        .bucket(name)
        .send()
        .await
        .classified()
    {
        Ok(out) => out,
        Err(err) if is_code(&err, "ObjectLockConfigurationNotFoundError") => return Ok(None),
        Err(err) => return Err(err),
    };
    let Some(configuration) = out.object_lock_configuration() else {
        return Ok(None);
    };
    if configuration.object_lock_enabled() != Some(&ObjectLockEnabled::Enabled) {
        return Ok(None);
    }
    let mut l = Map::new();
    if let Some(retention) = configuration.rule().and_then(|r| r.default_retention()) {
        if let Some(mode) = retention.mode() {
            l.insert("mode".into(), json!(mode.as_str()));
        }
        if let Some(days) = retention.days() {
            l.insert("days".into(), json!(days));
        }
        if let Some(years) = retention.years() {
            l.insert("years".into(), json!(years));
        }
    }
    Ok(Some(Value::Object(l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(value: Value) -> Props {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_bucket_that_says_nothing_gets_what_aws_gives_a_new_one() {
        let mut p = props(json!({"name": "b"}));
        canonicalize(&mut p);
        assert_eq!(p["object_ownership"], json!("BucketOwnerEnforced"));
        assert!(is_default_encryption(&p["encryption"]));
        assert_eq!(p["cors"], json!([]));
        assert_eq!(p["lifecycle_rules"], json!([]));
        assert!(p.get("website").is_none());
    }

    #[test]
    fn lifecycle_rules_get_their_defaults_and_sorted_transitions() {
        let mut p = props(json!({"lifecycle_rules": [{"id": "old", "transitions": [
            {"after_days": 90, "storage_class": "GLACIER"},
            {"after_days": 30, "storage_class": "STANDARD_IA"}]}]}));
        canonicalize(&mut p);
        let rule = &p["lifecycle_rules"][0];
        assert_eq!(rule["enabled"], json!(true));
        assert_eq!(rule["prefix"], json!(""));
        assert_eq!(rule["transitions"][0]["after_days"], json!(30));
    }

    #[test]
    fn what_s3_refuses_is_said_at_plan_time() {
        let p = props(json!({
            "versioning": false,
            "encryption": {"algorithm": "AES256", "kms_key": "arn:aws:kms:k", "bucket_key": true},
            "lifecycle_rules": [
                {"id": "a", "transitions": [{"after_days": 7, "storage_class": "STANDARD_IA"}]},
                {"id": "a"}
            ],
            "website": {"index_document": "index.html", "redirect_all_to": "example.com"},
            "object_lock": {"mode": "GOVERNANCE"},
        }));
        let messages: Vec<String> = check(&p).into_iter().map(|i| i.message).collect();
        let has = |text: &str| messages.iter().any(|m| m.contains(text));
        assert!(has("a KMS key needs algorithm aws:kms"), "{messages:?}");
        assert!(has("bucket keys work with algorithm aws:kms only"));
        assert!(has("after 30 days at the earliest, not 7"));
        assert!(has("two lifecycle rules are named \"a\""));
        assert!(has("a lifecycle rule needs an action"));
        assert!(has("either index_document"));
        assert!(has("object lock needs `versioning: true`"));
        assert!(has("a mode and either days or years"));
    }

    #[test]
    fn a_sound_configuration_has_no_issues() {
        let mut p = props(json!({
            "versioning": true,
            "encryption": {"algorithm": "aws:kms", "kms_key": "arn:aws:kms:k", "bucket_key": true},
            "lifecycle_rules": [{"id": "logs", "expire_after_days": 365, "transitions": [
                {"after_days": 30, "storage_class": "STANDARD_IA"}]}],
            "website": {"index_document": "index.html", "error_document": "404.html"},
            "object_lock": {"mode": "GOVERNANCE", "days": 1},
        }));
        canonicalize(&mut p);
        assert!(check(&p).is_empty(), "{:?}", check(&p));
    }

    #[test]
    fn website_endpoints_follow_the_region_s_form() {
        assert_eq!(
            website_endpoint("site", "us-east-1"),
            "site.s3-website-us-east-1.amazonaws.com"
        );
        assert_eq!(
            website_endpoint("site", "eu-central-1"),
            "site.s3-website.eu-central-1.amazonaws.com"
        );
    }
}
