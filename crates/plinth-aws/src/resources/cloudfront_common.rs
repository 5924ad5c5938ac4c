//! What the CloudFront types share: the AWS-managed policies stacks name as `managed:Name`,
//! and the ETag/If-Match protocol every CloudFront change and delete goes through.

use std::future::Future;
use std::time::Duration;

use plinth_core::resource::{ErrorKind, OpContext, PropIssue, ResourceResult};
use plinth_core::schema::{Prop, Shape};
use plinth_core::value::{contains_unknown, Props};
use serde_json::{json, Map, Value};

/// CloudFront's control plane lives in us-east-1, whatever the stack's region.
pub const CLOUDFRONT_REGION: &str = "us-east-1";

/// The prefix by which a stack names an AWS-managed policy instead of an id.
pub const MANAGED_PREFIX: &str = "managed:";

/// AWS-managed cache policies: name → id (the ids are the same in every account).
pub const MANAGED_CACHE_POLICIES: &[(&str, &str)] = &[
    ("Amplify", "2e54312d-136d-493c-8eb9-b001f22f67d2"),
    ("CachingDisabled", "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"),
    ("CachingOptimized", "658327ea-f89d-4fab-a63d-7e88639e58f6"),
    (
        "CachingOptimizedForUncompressedObjects",
        "b2884449-e4de-46a7-ac36-70bc7f1ddd6d",
    ),
    (
        "Elemental-MediaPackage",
        "08627262-05a9-4f76-9ded-b50ca2e3a84f",
    ),
    (
        "UseOriginCacheControlHeaders",
        "83da9c7e-98b4-4e11-a168-04f0df8e2c65",
    ),
    (
        "UseOriginCacheControlHeaders-QueryStrings",
        "4cc15a8a-d715-48a4-82b8-cc0b614638fe",
    ),
];

/// AWS-managed origin request policies: name → id.
pub const MANAGED_ORIGIN_REQUEST_POLICIES: &[(&str, &str)] = &[
    ("AllViewer", "216adef6-5c7f-47e4-b989-5492eafa07d3"),
    (
        "AllViewerAndCloudFrontHeaders-2022-06",
        "33f36d7e-f396-46d9-90e0-52428a34d9dc",
    ),
    (
        "AllViewerExceptHostHeader",
        "b689b0a8-53d0-40ab-baf2-68738e2966ac",
    ),
    ("CORS-CustomOrigin", "59781a5b-3903-41f3-afcb-af62929ccde1"),
    ("CORS-S3Origin", "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf"),
    (
        "Elemental-MediaTailor-PersonalizedManifests",
        "775133bc-15f2-49f9-abea-afb2e0bf67d2",
    ),
    (
        "UserAgentRefererHeaders",
        "acba4595-bd28-49b8-b9fe-13317c0390fa",
    ),
];

/// AWS-managed response headers policies: name → id.
pub const MANAGED_RESPONSE_HEADERS_POLICIES: &[(&str, &str)] = &[
    (
        "CORS-and-SecurityHeadersPolicy",
        "e61eb60c-9c35-4d20-a928-2b84e02af89c",
    ),
    (
        "CORS-With-Preflight",
        "5cc3b908-e619-4b99-88e5-2cf7f45965bd",
    ),
    (
        "CORS-With-Preflight-and-SecurityHeadersPolicy",
        "eaab4381-ed33-4a86-88ca-d9558dc6cd63",
    ),
    (
        "SecurityHeadersPolicy",
        "67f7725c-6f97-4210-82d7-5512b31e9d03",
    ),
    ("SimpleCORS", "60669652-455b-4ae9-85a4-c4c02393f86c"),
];

/// The id a policy reference stands for: `managed:Name` looked up in `table`, anything else
/// is already an id. `None` for a managed name that does not exist.
pub fn policy_id(reference: &str, table: &[(&str, &str)]) -> Option<String> {
    match reference.strip_prefix(MANAGED_PREFIX) {
        Some(name) => table
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| id.to_string()),
        None => Some(reference.to_string()),
    }
}

/// How a stack names the policy with this id: `managed:Name` for an AWS-managed one (so a
/// read diffs equal to what the stack wrote), the id otherwise.
pub fn policy_reference(id: &str, table: &[(&str, &str)]) -> String {
    table
        .iter()
        .find(|(_, i)| *i == id)
        .map(|(name, _)| format!("{MANAGED_PREFIX}{name}"))
        .unwrap_or_else(|| id.to_string())
}

/// The managed names of `table`, for error messages.
pub fn managed_names(table: &[(&str, &str)]) -> String {
    table
        .iter()
        .map(|(name, _)| format!("{MANAGED_PREFIX}{name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deletes with `delete_once` (one delete with a fresh ETag), re-read and re-sent on
/// PreconditionFailed, and retried up to `limit` while a distribution still uses the
/// resource; when it still does then, the error says so with `in_use_hint`.
pub async fn delete_when_unused<F, Fut>(
    ctx: &OpContext,
    what: &str,
    limit: Duration,
    in_use_hint: &str,
    delete_once: F,
) -> ResourceResult<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ResourceResult<()>>,
{
    let delete_once = &delete_once;
    let result =
        crate::wait::delete_when_free(ctx, what, limit, || with_fresh_etag(what, delete_once))
            .await;
    match result {
        Err(mut err) if err.kind == ErrorKind::InUse => {
            err.message.push_str(in_use_hint);
            Err(err)
        }
        other => other,
    }
}

/// How often a change is re-read and re-sent when CloudFront answers PreconditionFailed.
const PRECONDITION_ATTEMPTS: u32 = 5;

/// Runs `attempt` — which reads the current ETag and sends its change with `If-Match` — again
/// when CloudFront answers `PreconditionFailed` (someone changed the resource since the
/// read), so each retry works from a fresh ETag.
pub async fn with_fresh_etag<T, F, Fut>(what: &str, mut attempt: F) -> ResourceResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ResourceResult<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(err)
                if err.code.as_deref() == Some("PreconditionFailed")
                    && tries < PRECONDITION_ATTEMPTS =>
            {
                tracing::debug!("{what}: PreconditionFailed, re-reading the ETag ({tries})");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The `{behavior, names}` parts of cache and origin request policies

/// `{behavior, names}`: which cookies, headers or query strings a policy takes (in a cache
/// key, or forwarded to the origin); `behavior_alias` is the API's name for `behavior`.
pub fn key_part(
    behaviors: &'static [&'static str],
    behavior_alias: &'static [&'static str],
) -> Shape {
    Shape::Object(vec![
        Prop::new("behavior", Shape::Enum(behaviors))
            .required()
            .known_as(behavior_alias)
            .doc("which of them the policy takes"),
        Prop::new("names", Shape::list(Shape::String))
            .doc("the names for whitelist (included) or allExcept (left out)"),
    ])
}

/// Names go with the `naming` behaviors only (`whitelist`, `allExcept`), and those need at
/// least one.
pub fn check_names(props: &Props, part: &str, naming: &[&str]) -> Vec<PropIssue> {
    let Some(Value::Object(config)) = props.get(part) else {
        return Vec::new();
    };
    let Some(behavior) = config
        .get("behavior")
        .filter(|v| !contains_unknown(v))
        .and_then(Value::as_str)
    else {
        return Vec::new();
    };
    let names = config.get("names");
    if names.is_some_and(contains_unknown) {
        return Vec::new();
    }
    let count = names.and_then(Value::as_array).map_or(0, Vec::len);
    let naming_one = naming.contains(&behavior);
    if naming_one && count == 0 {
        vec![PropIssue::at(
            &[part, "names"],
            format!("behavior {behavior} needs the names it applies to"),
        )]
    } else if !naming_one && count > 0 {
        vec![PropIssue::at(
            &[part, "names"],
            format!(
                "names go with behavior {}, not {behavior}",
                naming.join(" or ")
            ),
        )]
    } else {
        Vec::new()
    }
}

/// `{behavior, names}` with `none` and `[]` filled in and the names sorted and unique.
pub fn canonical_key_part(config: Value) -> Value {
    let Value::Object(mut config) = config else {
        // A whole reference, unknown until apply: left as it is.
        return config;
    };
    let behavior = config.remove("behavior").unwrap_or_else(|| json!("none"));
    let mut names = config.remove("names").unwrap_or_else(|| json!([]));
    if let Value::Array(items) = &mut names {
        if !items.iter().any(contains_unknown) {
            items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            items.dedup();
        }
    }
    let mut out = Map::new();
    out.insert("behavior".into(), behavior);
    out.insert("names".into(), names);
    out.extend(config);
    Value::Object(out)
}

/// A policy part's behavior and names, from canonical props.
pub fn behavior_and_names(props: &Props, part: &str) -> (String, Vec<String>) {
    let config = props.get(part).and_then(Value::as_object);
    let behavior = config
        .and_then(|c| c.get("behavior"))
        .and_then(Value::as_str)
        .unwrap_or("none")
        .to_string();
    let names = config
        .and_then(|c| c.get("names"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    (behavior, names)
}

/// AWS's `Quantity` of a list of names.
pub fn count(names: &[String]) -> i32 {
    i32::try_from(names.len()).unwrap_or(i32::MAX)
}

/// The plain `{behavior, names}` of one policy part as AWS reports it.
pub fn plain(behavior: &str, names: Option<&[String]>) -> Value {
    json!({"behavior": behavior, "names": names.unwrap_or_default()})
}
