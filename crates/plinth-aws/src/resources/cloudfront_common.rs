//! What the CloudFront types share: the AWS-managed policies stacks name as `managed:Name`,
//! and the ETag/If-Match protocol every CloudFront change and delete goes through.

use std::future::Future;
use std::time::Duration;

use plinth_core::resource::ResourceResult;

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
