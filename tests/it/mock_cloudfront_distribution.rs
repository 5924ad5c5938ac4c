//! `cloudfront.distribution` against replayed CloudFront responses: what the emulator cannot
//! show (the ETag/If-Match protocol and `PreconditionFailed`, `InProgress` → `Deployed`,
//! `DistributionNotDisabled`, Origin Access Control ids and Lambda@Edge associations in the
//! returned configuration), plus the checks and the canonical form both sides of a diff share.
//!
//! Clients run with the SDK's own retries off and the rules in `RuleMode::Sequential`, so every
//! mocked response is exactly one call and the order of calls is pinned.

use std::sync::{Arc, Mutex};

use aws_sdk_cloudfront::config::retry::RetryConfig;
use aws_sdk_cloudfront::operation::create_distribution_with_tags::{
    CreateDistributionWithTagsInput, CreateDistributionWithTagsOutput,
};
use aws_sdk_cloudfront::operation::create_invalidation::{
    CreateInvalidationInput, CreateInvalidationOutput,
};
use aws_sdk_cloudfront::operation::delete_distribution::{
    DeleteDistributionInput, DeleteDistributionOutput,
};
use aws_sdk_cloudfront::operation::get_distribution::GetDistributionOutput;
use aws_sdk_cloudfront::operation::get_distribution_config::GetDistributionConfigOutput;
use aws_sdk_cloudfront::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_cloudfront::operation::tag_resource::{TagResourceInput, TagResourceOutput};
use aws_sdk_cloudfront::operation::update_distribution::{
    UpdateDistributionInput, UpdateDistributionOutput,
};
use aws_sdk_cloudfront::types::{
    Aliases, AllowedMethods, CacheBehavior, CacheBehaviors, CachedMethods, CertificateSource,
    CustomErrorResponse, CustomErrorResponses, CustomHeaders, CustomOriginConfig,
    DefaultCacheBehavior, Distribution as AwsDistribution, DistributionConfig, EventType,
    FunctionAssociations, GeoRestriction, GeoRestrictionType, HttpVersion, Invalidation,
    LambdaFunctionAssociation, LambdaFunctionAssociations, LoggingConfig, Method,
    MinimumProtocolVersion, Origin, OriginCustomHeader, OriginProtocolPolicy, OriginShield,
    OriginSslProtocols, Origins, PriceClass, Restrictions, S3OriginConfig, SslProtocol,
    SslSupportMethod, Tag, Tags, TrustedKeyGroups, TrustedSigners, ViewerCertificate,
    ViewerProtocolPolicy,
};
use aws_sdk_cloudfront::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::DateTime;
use plinth_aws::resources::cloudfront_distribution::Distribution;
use plinth_aws::Aws;
use plinth_core::resource::{
    ErrorKind, Linked, NormalizeContext, OpContext, Progress, ResourceError, ResourceType,
};
use plinth_core::value::{path_to_string, PathSeg, Props, UNKNOWN};
use serde_json::{json, Value};

use crate::mock_support::{mocked_aws, REGION};

const ID: &str = "E2QWRUHAPOMQZL";
const ARN: &str = "arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL";
const DOMAIN: &str = "d111111abcdef8.cloudfront.net";
const OAC: &str = "E3QZ8JXOE1MZ5R";
const CERT: &str =
    "arn:aws:acm:us-east-1:123456789012:certificate/1f4bb7d2-8c3e-4a5b-9d6f-0e1a2b3c4d5e";
const LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:rewrite:3";
const BUCKET_DOMAIN: &str = "site-bucket.s3.us-east-1.amazonaws.com";
const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const ALL_VIEWER_EXCEPT_HOST: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";
const CALLER_REFERENCE: &str = "plinth-1718000000000000000-0123456789abcdef";
const INVALIDATION: &str = "I2J0I21PCUYOIK";

// ---------------------------------------------------------------------------------------------
// Plumbing

fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_cloudfront, RuleMode::Sequential, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

fn distribution_type(rules: &[&Rule]) -> Distribution {
    let aws: Arc<Aws> = mocked_aws();
    aws.insert_cloudfront(REGION, client(rules));
    Distribution::new(aws)
}

/// Keeps every progress message, to show that a wait really happened.
#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);

impl Progress for Recorded {
    fn status(&self, message: &str) {
        self.0.lock().expect("lock").push(message.to_string());
    }
}

impl Recorded {
    fn saw(&self, text: &str) -> bool {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .any(|m| m.contains(text))
    }
}

fn ctx_with(progress: Arc<Recorded>) -> OpContext {
    OpContext::new(REGION, "cdn").with_progress(progress)
}

fn ctx() -> OpContext {
    OpContext::new(REGION, "cdn")
}

fn obj(value: Value) -> Props {
    value.as_object().cloned().expect("an object")
}

/// Everything a mocked call received, in order.
type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn taken<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().expect("log lock").clone()
}

/// A CloudFront (REST-XML) error response exactly as AWS sends it.
fn cloudfront_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>3f6b1c2a-5d4e-4f8a-9b0c-1d2e3f4a5b6c</RequestId></ErrorResponse>"
    );
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", "text/xml");
    response
        .headers_mut()
        .insert("x-amz-request-id", "3f6b1c2a-5d4e-4f8a-9b0c-1d2e3f4a5b6c");
    response
}

fn precondition_failed() -> HttpResponse {
    cloudfront_error(
        412,
        "PreconditionFailed",
        "The If-Match version is missing or not valid for the resource.",
    )
}

fn not_disabled() -> HttpResponse {
    cloudfront_error(
        409,
        "DistributionNotDisabled",
        "The distribution you are trying to delete has not been disabled.",
    )
}

fn no_such_distribution() -> HttpResponse {
    cloudfront_error(
        404,
        "NoSuchDistribution",
        "The specified distribution does not exist.",
    )
}

fn owner_tags() -> Value {
    json!({"plinth:stack": "web", "plinth:workspace": "default", "plinth:resource": "cdn"})
}

/// Desired properties as the core hands them over: tags merged, normalized.
fn normalized(value: Value) -> Props {
    let mut props = obj(value);
    distribution_type(&[])
        .normalize(&mut props, &NormalizeContext::default())
        .expect("normalizes");
    props
}

/// The site a stack declares: an S3 origin behind an OAC with a viewer-request Lambda@Edge
/// function, an API origin for `/api/*`, a certificate with two aliases and an SPA error page.
fn written() -> Value {
    let mut tags = owner_tags();
    tags["course"] = json!("web101");
    json!({
        "comment": "site",
        "aliases": ["www.example.com", "example.com"],
        "default_root_object": "index.html",
        "price_class": "PriceClass_100",
        "certificate": CERT,
        "origins": [
            {"id": "site", "domain_name": BUCKET_DOMAIN, "origin_access_control": OAC},
            {
                "id": "api",
                "domain_name": "api.example.com",
                "custom": {"protocol_policy": "https-only"},
                "custom_headers": {"X-Origin-Secret": "s3cr3t"}
            }
        ],
        "default_behavior": {
            "origin": "site",
            "lambda_functions": [{"event": "viewer-request", "arn": LAMBDA}]
        },
        "behaviors": [{
            "path": "/api/*",
            "origin": "api",
            "allowed_methods": ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"],
            "cache_policy": "managed:CachingDisabled",
            "origin_request_policy": "managed:AllViewerExceptHostHeader"
        }],
        "custom_error_responses": [
            {"error_code": 404, "response_code": 200, "response_page": "/index.html", "ttl": 0}
        ],
        "invalidate_on": ["digest-1"],
        "tags": tags,
    })
}

fn desired() -> Props {
    normalized(written())
}

/// `desired()` with some top-level properties replaced.
fn desired_with(changes: Value) -> Props {
    let mut value = written();
    for (k, v) in obj(changes) {
        value[k.as_str()] = v;
    }
    normalized(value)
}

// ---------------------------------------------------------------------------------------------
// What CloudFront answers for the site: built by hand the way AWS reports it (methods in its
// own order, ResponseCode as a string, empty OAC ids and disabled extras filled in), not with
// plinth's own mapping.

fn methods(list: &[&str]) -> Vec<Method> {
    list.iter().map(|m| Method::from(*m)).collect()
}

fn allowed(allowed: &[&str], cached: &[&str]) -> AllowedMethods {
    AllowedMethods::builder()
        .quantity(allowed.len() as i32)
        .set_items(Some(methods(allowed)))
        .cached_methods(
            CachedMethods::builder()
                .quantity(cached.len() as i32)
                .set_items(Some(methods(cached)))
                .build()
                .expect("cached methods"),
        )
        .build()
        .expect("allowed methods")
}

fn no_signers() -> (TrustedSigners, TrustedKeyGroups) {
    (
        TrustedSigners::builder()
            .enabled(false)
            .quantity(0)
            .build()
            .expect("signers"),
        TrustedKeyGroups::builder()
            .enabled(false)
            .quantity(0)
            .build()
            .expect("key groups"),
    )
}

fn no_functions() -> FunctionAssociations {
    FunctionAssociations::builder()
        .quantity(0)
        .build()
        .expect("functions")
}

fn shield_off() -> OriginShield {
    OriginShield::builder()
        .enabled(false)
        .build()
        .expect("shield")
}

fn site_origin() -> Origin {
    Origin::builder()
        .id("site")
        .domain_name(BUCKET_DOMAIN)
        .origin_path("")
        .custom_headers(
            CustomHeaders::builder()
                .quantity(0)
                .build()
                .expect("headers"),
        )
        .s3_origin_config(
            S3OriginConfig::builder()
                .origin_access_identity("")
                .origin_read_timeout(30)
                .build(),
        )
        .connection_attempts(3)
        .connection_timeout(10)
        .origin_shield(shield_off())
        .origin_access_control_id(OAC)
        .build()
        .expect("site origin")
}

fn api_origin() -> Origin {
    let header = OriginCustomHeader::builder()
        .header_name("X-Origin-Secret")
        .header_value("s3cr3t")
        .build()
        .expect("header");
    Origin::builder()
        .id("api")
        .domain_name("api.example.com")
        .origin_path("")
        .custom_headers(
            CustomHeaders::builder()
                .quantity(1)
                .items(header)
                .build()
                .expect("headers"),
        )
        .custom_origin_config(
            CustomOriginConfig::builder()
                .http_port(80)
                .https_port(443)
                .origin_protocol_policy(OriginProtocolPolicy::HttpsOnly)
                .origin_ssl_protocols(
                    OriginSslProtocols::builder()
                        .quantity(1)
                        .items(SslProtocol::TlSv12)
                        .build()
                        .expect("protocols"),
                )
                .origin_read_timeout(30)
                .origin_keepalive_timeout(5)
                .build()
                .expect("custom origin"),
        )
        .connection_attempts(3)
        .connection_timeout(10)
        .origin_shield(shield_off())
        .origin_access_control_id("")
        .build()
        .expect("api origin")
}

fn default_behavior() -> DefaultCacheBehavior {
    let (signers, key_groups) = no_signers();
    let rewrite = LambdaFunctionAssociation::builder()
        .lambda_function_arn(LAMBDA)
        .event_type(EventType::ViewerRequest)
        .include_body(false)
        .build()
        .expect("association");
    DefaultCacheBehavior::builder()
        .target_origin_id("site")
        .trusted_signers(signers)
        .trusted_key_groups(key_groups)
        .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
        .allowed_methods(allowed(&["HEAD", "GET"], &["HEAD", "GET"]))
        .smooth_streaming(false)
        .compress(true)
        .lambda_function_associations(
            LambdaFunctionAssociations::builder()
                .quantity(1)
                .items(rewrite)
                .build()
                .expect("associations"),
        )
        .function_associations(no_functions())
        .field_level_encryption_id("")
        .cache_policy_id(CACHING_OPTIMIZED)
        .build()
        .expect("default behavior")
}

fn api_behavior() -> CacheBehavior {
    let (signers, key_groups) = no_signers();
    CacheBehavior::builder()
        .path_pattern("/api/*")
        .target_origin_id("api")
        .trusted_signers(signers)
        .trusted_key_groups(key_groups)
        .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
        .allowed_methods(allowed(
            &["HEAD", "DELETE", "POST", "GET", "OPTIONS", "PUT", "PATCH"],
            &["HEAD", "GET"],
        ))
        .smooth_streaming(false)
        .compress(true)
        .lambda_function_associations(
            LambdaFunctionAssociations::builder()
                .quantity(0)
                .build()
                .expect("associations"),
        )
        .function_associations(no_functions())
        .field_level_encryption_id("")
        .cache_policy_id(CACHING_DISABLED)
        .origin_request_policy_id(ALL_VIEWER_EXCEPT_HOST)
        .build()
        .expect("api behavior")
}

/// The site's configuration as GetDistributionConfig reports it (AWS still fills the
/// deprecated `Certificate` and `CertificateSource`).
#[allow(deprecated)]
fn site_config(enabled: bool, comment: &str) -> DistributionConfig {
    DistributionConfig::builder()
        .caller_reference(CALLER_REFERENCE)
        .aliases(
            Aliases::builder()
                .quantity(2)
                .items("www.example.com")
                .items("example.com")
                .build()
                .expect("aliases"),
        )
        .default_root_object("index.html")
        .origins(
            Origins::builder()
                .quantity(2)
                .items(site_origin())
                .items(api_origin())
                .build()
                .expect("origins"),
        )
        .default_cache_behavior(default_behavior())
        .cache_behaviors(
            CacheBehaviors::builder()
                .quantity(1)
                .items(api_behavior())
                .build()
                .expect("behaviors"),
        )
        .custom_error_responses(
            CustomErrorResponses::builder()
                .quantity(1)
                .items(
                    CustomErrorResponse::builder()
                        .error_code(404)
                        .response_page_path("/index.html")
                        .response_code("200")
                        .error_caching_min_ttl(0)
                        .build()
                        .expect("error response"),
                )
                .build()
                .expect("error responses"),
        )
        .comment(comment)
        .logging(
            LoggingConfig::builder()
                .enabled(false)
                .include_cookies(false)
                .bucket("")
                .prefix("")
                .build(),
        )
        .price_class(PriceClass::PriceClass100)
        .enabled(enabled)
        .viewer_certificate(
            ViewerCertificate::builder()
                .cloud_front_default_certificate(false)
                .acm_certificate_arn(CERT)
                .ssl_support_method(SslSupportMethod::SniOnly)
                .minimum_protocol_version(MinimumProtocolVersion::TlSv122021)
                .certificate(CERT)
                .certificate_source(CertificateSource::Acm)
                .build(),
        )
        .restrictions(
            Restrictions::builder()
                .geo_restriction(
                    GeoRestriction::builder()
                        .restriction_type(GeoRestrictionType::None)
                        .quantity(0)
                        .build()
                        .expect("geo"),
                )
                .build(),
        )
        .web_acl_id("")
        .http_version(HttpVersion::Http2)
        .is_ipv6_enabled(true)
        .staging(false)
        .build()
        .expect("distribution config")
}

fn aws_distribution(status: &str, config: DistributionConfig) -> AwsDistribution {
    AwsDistribution::builder()
        .id(ID)
        .arn(ARN)
        .status(status)
        .last_modified_time(DateTime::from_secs(1_718_000_000))
        .in_progress_invalidation_batches(0)
        .domain_name(DOMAIN)
        .distribution_config(config)
        .build()
        .expect("distribution")
}

fn site(status: &str) -> AwsDistribution {
    aws_distribution(status, site_config(true, "site"))
}

/// GetDistribution answering with each (status, enabled, etag) in turn.
fn get_distribution_answers(answers: &[(&'static str, bool, &'static str)]) -> Rule {
    let mut sequence = mock!(Client::get_distribution).sequence();
    for (status, enabled, etag) in answers.iter().copied() {
        sequence = sequence.output(move || {
            GetDistributionOutput::builder()
                .distribution(aws_distribution(status, site_config(enabled, "site")))
                .e_tag(etag)
                .build()
        });
    }
    sequence.build()
}

fn get_config(enabled: bool, etag: &'static str) -> Rule {
    mock!(Client::get_distribution_config).then_output(move || {
        GetDistributionConfigOutput::builder()
            .distribution_config(site_config(enabled, "site"))
            .e_tag(etag)
            .build()
    })
}

fn list_tags(tags: Value) -> Rule {
    mock!(Client::list_tags_for_resource)
        .match_requests(|r| r.resource() == Some(ARN))
        .then_output(move || {
            let items = tags
                .as_object()
                .expect("tags")
                .iter()
                .map(|(k, v)| {
                    Tag::builder()
                        .key(k)
                        .value(v.as_str().unwrap_or_default())
                        .build()
                        .expect("tag")
                })
                .collect();
            ListTagsForResourceOutput::builder()
                .tags(Tags::builder().set_items(Some(items)).build())
                .build()
        })
}

/// UpdateDistribution recording its input and answering with `status` and `etag`.
fn update_recorded(
    seen: &Log<UpdateDistributionInput>,
    status: &'static str,
    etag: &'static str,
) -> Rule {
    let seen = seen.clone();
    mock!(Client::update_distribution)
        .match_requests(move |r| {
            seen.lock().expect("log").push(r.clone());
            true
        })
        .then_output(move || {
            UpdateDistributionOutput::builder()
                .distribution(aws_distribution(status, site_config(true, "site")))
                .e_tag(etag)
                .build()
        })
}

fn update_failing(seen: &Log<UpdateDistributionInput>, response: fn() -> HttpResponse) -> Rule {
    let seen = seen.clone();
    mock!(Client::update_distribution)
        .match_requests(move |r| {
            seen.lock().expect("log").push(r.clone());
            true
        })
        .then_http_response(response)
}

fn delete_recorded(seen: &Log<DeleteDistributionInput>) -> Rule {
    let seen = seen.clone();
    mock!(Client::delete_distribution)
        .match_requests(move |r| {
            seen.lock().expect("log").push(r.clone());
            true
        })
        .then_output(|| DeleteDistributionOutput::builder().build())
}

fn delete_failing(seen: &Log<DeleteDistributionInput>, response: fn() -> HttpResponse) -> Rule {
    let seen = seen.clone();
    mock!(Client::delete_distribution)
        .match_requests(move |r| {
            seen.lock().expect("log").push(r.clone());
            true
        })
        .then_http_response(response)
}

fn invalidation_recorded(seen: &Log<CreateInvalidationInput>) -> Rule {
    let seen = seen.clone();
    mock!(Client::create_invalidation)
        .match_requests(move |r| {
            seen.lock().expect("log").push(r.clone());
            true
        })
        .then_output(|| {
            CreateInvalidationOutput::builder()
                .location(format!(
                    "https://cloudfront.amazonaws.com/2020-05-31/distribution/{ID}/invalidation/{INVALIDATION}"
                ))
                .invalidation(
                    Invalidation::builder()
                        .id(INVALIDATION)
                        .status("InProgress")
                        .create_time(DateTime::from_secs(1_718_000_100))
                        .build()
                        .expect("invalidation"),
                )
                .build()
        })
}

fn if_matches(updates: &[UpdateDistributionInput]) -> Vec<String> {
    updates
        .iter()
        .map(|u| u.if_match().unwrap_or_default().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// create

#[tokio::test]
async fn create_sends_the_mapped_configuration_and_waits_until_deployed() {
    let sent: Log<CreateDistributionWithTagsInput> = log();
    let seen = sent.clone();
    let create = mock!(Client::create_distribution_with_tags)
        .match_requests(move |r| {
            seen.lock().expect("log").push(r.clone());
            true
        })
        .then_output(|| {
            CreateDistributionWithTagsOutput::builder()
                .distribution(site("InProgress"))
                .location(format!(
                    "https://cloudfront.amazonaws.com/2020-05-31/distribution/{ID}"
                ))
                .e_tag("E1CREATED")
                .build()
        });
    let polls = get_distribution_answers(&[
        ("InProgress", true, "E1CREATED"),
        ("Deployed", true, "E1CREATED"),
    ]);
    let rt = distribution_type(&[&create, &polls]);
    let progress = Arc::new(Recorded::default());

    let observed = rt
        .create(&ctx_with(progress.clone()), &desired())
        .await
        .expect("created");

    let sent = taken(&sent);
    assert_eq!(sent.len(), 1);
    let with_tags = sent[0]
        .distribution_config_with_tags()
        .expect("config with tags");
    let config = with_tags.distribution_config().expect("config");
    assert!(!config.caller_reference().is_empty());
    assert!(config.enabled());
    assert_eq!(config.comment(), "site");
    assert_eq!(
        config.aliases().expect("aliases").items(),
        ["example.com", "www.example.com"]
    );
    assert_eq!(config.default_root_object(), Some("index.html"));

    let origins = config.origins().expect("origins").items();
    let s3 = origins
        .iter()
        .find(|o| o.id() == "site")
        .expect("site origin");
    assert_eq!(s3.domain_name(), BUCKET_DOMAIN);
    assert_eq!(s3.origin_access_control_id(), Some(OAC));
    assert_eq!(
        s3.s3_origin_config()
            .expect("S3 origin config")
            .origin_access_identity(),
        ""
    );
    assert!(s3.custom_origin_config().is_none());
    let api = origins
        .iter()
        .find(|o| o.id() == "api")
        .expect("api origin");
    let custom = api.custom_origin_config().expect("custom origin");
    assert_eq!(
        custom.origin_protocol_policy(),
        &OriginProtocolPolicy::HttpsOnly
    );
    assert_eq!(api.origin_access_control_id(), None);
    assert_eq!(
        api.custom_headers().expect("headers").items()[0].header_value(),
        "s3cr3t"
    );

    let default = config.default_cache_behavior().expect("default behavior");
    assert_eq!(default.target_origin_id(), "site");
    assert_eq!(
        default.viewer_protocol_policy(),
        &ViewerProtocolPolicy::RedirectToHttps
    );
    assert_eq!(default.cache_policy_id(), Some(CACHING_OPTIMIZED));
    let lambdas = default
        .lambda_function_associations()
        .expect("lambdas")
        .items();
    assert_eq!(lambdas.len(), 1);
    assert_eq!(lambdas[0].event_type(), &EventType::ViewerRequest);
    assert_eq!(lambdas[0].lambda_function_arn(), LAMBDA);

    let api_behavior = &config.cache_behaviors().expect("behaviors").items()[0];
    assert_eq!(api_behavior.path_pattern(), "/api/*");
    assert_eq!(api_behavior.cache_policy_id(), Some(CACHING_DISABLED));
    assert_eq!(
        api_behavior.origin_request_policy_id(),
        Some(ALL_VIEWER_EXCEPT_HOST)
    );
    assert_eq!(
        api_behavior.allowed_methods().expect("methods").quantity(),
        7
    );

    let certificate = config.viewer_certificate().expect("certificate");
    assert_eq!(certificate.acm_certificate_arn(), Some(CERT));
    assert_eq!(
        certificate.ssl_support_method(),
        Some(&SslSupportMethod::SniOnly)
    );
    assert_eq!(
        certificate.minimum_protocol_version(),
        Some(&MinimumProtocolVersion::TlSv122021)
    );
    assert_eq!(certificate.cloud_front_default_certificate(), None);

    let error = &config.custom_error_responses().expect("errors").items()[0];
    assert_eq!(error.error_code(), 404);
    assert_eq!(error.response_code(), Some("200"));
    assert_eq!(error.response_page_path(), Some("/index.html"));
    assert_eq!(error.error_caching_min_ttl(), Some(0));

    let tags: Vec<(&str, Option<&str>)> = with_tags
        .tags()
        .expect("tags")
        .items()
        .iter()
        .map(|t| (t.key(), t.value()))
        .collect();
    assert!(tags.contains(&("plinth:resource", Some("cdn"))));
    assert!(tags.contains(&("course", Some("web101"))));

    assert!(progress.saw("distribution deploying (InProgress)"));
    assert_eq!(observed.id, ID);
    assert_eq!(observed.props, desired());
    assert_eq!(observed.attrs["status"], json!("Deployed"));
    assert_eq!(observed.attrs["domain_name"], json!(DOMAIN));
    assert_eq!(observed.attrs["hosted_zone_id"], json!("Z2FDTNDATAQYW2"));
    assert_eq!(observed.attrs["arn"], json!(ARN));
}

#[tokio::test]
async fn create_without_waiting_returns_the_distribution_in_progress() {
    let create = mock!(Client::create_distribution_with_tags).then_output(|| {
        CreateDistributionWithTagsOutput::builder()
            .distribution(site("InProgress"))
            .e_tag("E1CREATED")
            .build()
    });
    // No GetDistribution rule: a poll would fail the create.
    let rt = distribution_type(&[&create]);

    let observed = rt
        .create(&ctx(), &desired_with(json!({"wait_for_deployment": false})))
        .await
        .expect("created");

    assert_eq!(observed.attrs["status"], json!("InProgress"));
    assert_eq!(observed.props["wait_for_deployment"], json!(false));
}

// ---------------------------------------------------------------------------------------------
// read

#[tokio::test]
async fn read_maps_a_full_answer_back_to_the_normalized_desired_properties() {
    let get = get_distribution_answers(&[("Deployed", true, "E1")]);
    let mut tags = owner_tags();
    tags["course"] = json!("web101");
    let rt = distribution_type(&[&get, &list_tags(tags)]);
    let prior = desired();

    let observed = rt
        .read(&ctx(), ID, &prior)
        .await
        .expect("read")
        .expect("exists");

    assert_eq!(
        Value::Object(observed.props.clone()),
        Value::Object(desired()),
        "read differs from the normalized stack"
    );
    assert_eq!(observed.props["invalidate_on"], json!(["digest-1"]));
    assert_eq!(observed.attrs["hosted_zone_id"], json!("Z2FDTNDATAQYW2"));
}

#[tokio::test]
#[allow(deprecated)]
async fn read_of_a_minimal_distribution_equals_its_defaults() {
    let minimal = DistributionConfig::builder()
        .caller_reference(CALLER_REFERENCE)
        .aliases(Aliases::builder().quantity(0).build().expect("aliases"))
        .origins(
            Origins::builder()
                .quantity(1)
                .items(site_origin())
                .build()
                .expect("origins"),
        )
        .default_cache_behavior({
            let (signers, key_groups) = no_signers();
            DefaultCacheBehavior::builder()
                .target_origin_id("site")
                .trusted_signers(signers)
                .trusted_key_groups(key_groups)
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .allowed_methods(allowed(&["HEAD", "GET"], &["HEAD", "GET"]))
                .compress(true)
                .lambda_function_associations(
                    LambdaFunctionAssociations::builder()
                        .quantity(0)
                        .build()
                        .expect("lambdas"),
                )
                .function_associations(no_functions())
                .cache_policy_id(CACHING_OPTIMIZED)
                .build()
                .expect("behavior")
        })
        .cache_behaviors(
            CacheBehaviors::builder()
                .quantity(0)
                .build()
                .expect("behaviors"),
        )
        .custom_error_responses(
            CustomErrorResponses::builder()
                .quantity(0)
                .build()
                .expect("errors"),
        )
        .comment("")
        .default_root_object("")
        .price_class(PriceClass::PriceClassAll)
        .enabled(true)
        // CloudFront's own certificate: AWS reports vip and TLSv1 whatever was sent.
        .viewer_certificate(
            ViewerCertificate::builder()
                .cloud_front_default_certificate(true)
                .ssl_support_method(SslSupportMethod::Vip)
                .minimum_protocol_version(MinimumProtocolVersion::TlSv1)
                .certificate_source(CertificateSource::Cloudfront)
                .build(),
        )
        .restrictions(
            Restrictions::builder()
                .geo_restriction(
                    GeoRestriction::builder()
                        .restriction_type(GeoRestrictionType::None)
                        .quantity(0)
                        .build()
                        .expect("geo"),
                )
                .build(),
        )
        .http_version(HttpVersion::Http2)
        .is_ipv6_enabled(true)
        .build()
        .expect("config");
    let get = mock!(Client::get_distribution).then_output(move || {
        GetDistributionOutput::builder()
            .distribution(aws_distribution("Deployed", minimal.clone()))
            .e_tag("E1")
            .build()
    });
    let rt = distribution_type(&[&get, &list_tags(owner_tags())]);
    let stack = normalized(json!({
        "origins": [{"id": "site", "domain_name": BUCKET_DOMAIN, "origin_access_control": OAC}],
        "default_behavior": {"origin": "site"},
        "tags": owner_tags(),
    }));

    let observed = rt
        .read(&ctx(), ID, &Props::new())
        .await
        .expect("read")
        .expect("exists");

    assert_eq!(Value::Object(observed.props), Value::Object(stack.clone()));
    assert_eq!(stack["minimum_protocol_version"], json!("TLSv1"));
    assert!(!stack.contains_key("ssl_support_method"));
}

#[tokio::test]
async fn read_of_a_deleted_distribution_is_none() {
    let get = mock!(Client::get_distribution).then_http_response(no_such_distribution);
    let rt = distribution_type(&[&get]);

    let observed = rt.read(&ctx(), ID, &desired()).await.expect("read");

    assert!(observed.is_none());
}

#[tokio::test]
async fn find_adopts_the_distribution_an_interrupted_create_left_behind() {
    use aws_sdk_resourcegroupstagging::operation::get_resources::{
        GetResourcesInput, GetResourcesOutput,
    };
    use aws_sdk_resourcegroupstagging::types::ResourceTagMapping;
    let asked: Log<GetResourcesInput> = log();
    let seen = asked.clone();
    let lookup = mock!(aws_sdk_resourcegroupstagging::Client::get_resources)
        .match_requests(move |r| {
            seen.lock().expect("log").push(r.clone());
            true
        })
        .then_output(|| {
            GetResourcesOutput::builder()
                .resource_tag_mapping_list(
                    ResourceTagMapping::builder()
                        .resource_arn(
                            "arn:aws:cloudfront::123456789012:streaming-distribution/EXAMPLE",
                        )
                        .build(),
                )
                .resource_tag_mapping_list(ResourceTagMapping::builder().resource_arn(ARN).build())
                .build()
        });
    let tagging = mock_client!(
        aws_sdk_resourcegroupstagging,
        RuleMode::Sequential,
        &[&lookup]
    );
    let mut tags = owner_tags();
    tags["course"] = json!("web101");
    let get = get_distribution_answers(&[("Deployed", true, "E1")]);
    let aws = mocked_aws();
    aws.insert_cloudfront(REGION, client(&[&get, &list_tags(tags)]));
    aws.insert_tagging(REGION, tagging);
    let rt = Distribution::new(aws);

    let found = rt
        .find(&ctx(), &desired())
        .await
        .expect("looked up")
        .expect("adopted");

    assert_eq!(found.id, ID);
    let asked = taken(&asked);
    assert_eq!(asked[0].resource_type_filters(), ["cloudfront"]);
    let filters: Vec<(&str, &[String])> = asked[0]
        .tag_filters()
        .iter()
        .map(|f| (f.key().unwrap_or_default(), f.values()))
        .collect();
    assert_eq!(filters.len(), 3);
    assert!(filters.contains(&("plinth:resource", &["cdn".to_string()][..])));
}

// ---------------------------------------------------------------------------------------------
// update

#[tokio::test]
async fn update_retries_precondition_failed_with_the_fresh_etag() {
    let updates: Log<UpdateDistributionInput> = log();
    let rules = [
        get_config(true, "E1FIRST"),
        update_failing(&updates, precondition_failed),
        get_config(true, "E2SECOND"),
        update_recorded(&updates, "InProgress", "E3UPDATED"),
        get_distribution_answers(&[("Deployed", true, "E3UPDATED")]),
    ];
    let rt = distribution_type(&rules.iter().collect::<Vec<_>>());
    let after = desired_with(json!({"comment": "site v2"}));

    let observed = rt
        .update(&ctx(), ID, &desired(), &after)
        .await
        .expect("updated");

    let updates = taken(&updates);
    assert_eq!(if_matches(&updates), ["E1FIRST", "E2SECOND"]);
    let config = updates[1].distribution_config().expect("config");
    assert_eq!(config.comment(), "site v2");
    // The distribution keeps its CallerReference and what plinth does not manage; logging,
    // which the stack leaves out, is sent switched off as CloudFront requires it.
    assert_eq!(config.caller_reference(), CALLER_REFERENCE);
    assert_eq!(config.web_acl_id(), Some(""));
    let logging = config.logging().expect("logging is always sent");
    assert!(!logging.enabled());
    assert_eq!(logging.bucket(), "");
    assert_eq!(observed.attrs["status"], json!("Deployed"));
}

#[tokio::test]
async fn update_changes_tags_without_rewriting_the_configuration() {
    let tagged: Log<TagResourceInput> = log();
    let seen = tagged.clone();
    let get = get_distribution_answers(&[("Deployed", true, "E1")]);
    let tag = mock!(Client::tag_resource)
        .match_requests(move |r| {
            seen.lock().expect("log").push(r.clone());
            true
        })
        .then_output(|| TagResourceOutput::builder().build());
    let rt = distribution_type(&[&get, &tag]);
    let mut tags = owner_tags();
    tags["course"] = json!("web102");

    rt.update(&ctx(), ID, &desired(), &desired_with(json!({"tags": tags})))
        .await
        .expect("updated");

    let tagged = taken(&tagged);
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0].resource(), Some(ARN));
    let items = tagged[0].tags().expect("tags").items();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].key(), items[0].value()),
        ("course", Some("web102"))
    );
}

#[tokio::test]
async fn a_changed_invalidate_on_creates_an_invalidation_and_a_notice() {
    let updates: Log<UpdateDistributionInput> = log();
    let invalidations: Log<CreateInvalidationInput> = log();
    let rules = [
        get_config(true, "E1"),
        update_recorded(&updates, "InProgress", "E2"),
        invalidation_recorded(&invalidations),
        get_distribution_answers(&[("Deployed", true, "E2")]),
    ];
    let rt = distribution_type(&rules.iter().collect::<Vec<_>>());
    let after = desired_with(json!({"comment": "site v2", "invalidate_on": ["digest-2"]}));
    let ctx = ctx();

    rt.update(&ctx, ID, &desired(), &after)
        .await
        .expect("updated");

    assert_eq!(taken(&updates).len(), 1);
    let invalidations = taken(&invalidations);
    assert_eq!(invalidations.len(), 1);
    assert_eq!(invalidations[0].distribution_id(), Some(ID));
    let batch = invalidations[0].invalidation_batch().expect("batch");
    assert_eq!(batch.paths().expect("paths").items(), ["/*"]);
    assert!(!batch.caller_reference().is_empty());
    assert_eq!(
        ctx.notices(),
        [format!("invalidation {INVALIDATION} created for /*")]
    );
}

#[tokio::test]
async fn an_unchanged_invalidate_on_creates_no_invalidation() {
    let updates: Log<UpdateDistributionInput> = log();
    // No CreateInvalidation rule: the call would fail the update.
    let rules = [
        get_config(true, "E1"),
        update_recorded(&updates, "InProgress", "E2"),
        get_distribution_answers(&[("Deployed", true, "E2")]),
    ];
    let rt = distribution_type(&rules.iter().collect::<Vec<_>>());
    let ctx = ctx();

    rt.update(
        &ctx,
        ID,
        &desired(),
        &desired_with(json!({"comment": "site v2"})),
    )
    .await
    .expect("updated");

    assert_eq!(taken(&updates).len(), 1);
    assert!(ctx.notices().is_empty());
}

#[tokio::test]
async fn only_invalidate_on_changed_makes_no_update_call() {
    let invalidations: Log<CreateInvalidationInput> = log();
    // No GetDistributionConfig or UpdateDistribution rule, and no wait afterwards.
    let rules = [
        get_distribution_answers(&[("Deployed", true, "E1")]),
        invalidation_recorded(&invalidations),
    ];
    let rt = distribution_type(&rules.iter().collect::<Vec<_>>());
    let after = desired_with(json!({
        "invalidate_on": ["digest-2"],
        "invalidation_paths": ["/index.html", "/assets/*"],
    }));
    let ctx = ctx();

    let observed = rt
        .update(&ctx, ID, &desired(), &after)
        .await
        .expect("updated");

    let invalidations = taken(&invalidations);
    assert_eq!(invalidations.len(), 1);
    let paths = invalidations[0]
        .invalidation_batch()
        .and_then(|b| b.paths())
        .expect("paths");
    assert_eq!(paths.quantity(), 2);
    assert_eq!(paths.items(), ["/index.html", "/assets/*"]);
    assert_eq!(
        ctx.notices(),
        [format!(
            "invalidation {INVALIDATION} created for /index.html, /assets/*"
        )]
    );
    assert_eq!(observed.props["invalidate_on"], json!(["digest-2"]));
}

// ---------------------------------------------------------------------------------------------
// delete

#[tokio::test]
async fn delete_disables_waits_and_deletes_with_the_fresh_etag() {
    let updates: Log<UpdateDistributionInput> = log();
    let deletes: Log<DeleteDistributionInput> = log();
    let rules = [
        get_config(true, "E1ENABLED"),
        update_recorded(&updates, "InProgress", "E2DISABLING"),
        get_distribution_answers(&[
            ("InProgress", false, "E2DISABLING"),
            ("Deployed", false, "E3DISABLED"),
            ("Deployed", false, "E3DISABLED"),
        ]),
        delete_failing(&deletes, not_disabled),
        get_distribution_answers(&[("Deployed", false, "E4DISABLED")]),
        delete_recorded(&deletes),
    ];
    let rt = distribution_type(&rules.iter().collect::<Vec<_>>());
    let progress = Arc::new(Recorded::default());

    rt.delete(&ctx_with(progress.clone()), ID, &desired())
        .await
        .expect("deleted");

    let updates = taken(&updates);
    assert_eq!(if_matches(&updates), ["E1ENABLED"]);
    assert!(!updates[0].distribution_config().expect("config").enabled());
    assert!(progress.saw("disabling: waiting for Deployed (InProgress)"));
    let deletes = taken(&deletes);
    let etags: Vec<Option<&str>> = deletes.iter().map(|d| d.if_match()).collect();
    assert_eq!(etags, [Some("E3DISABLED"), Some("E4DISABLED")]);
    assert!(deletes.iter().all(|d| d.id() == Some(ID)));
}

#[tokio::test]
async fn delete_of_a_distribution_already_gone_succeeds() {
    let get = mock!(Client::get_distribution_config).then_http_response(no_such_distribution);
    let rt = distribution_type(&[&get]);

    rt.delete(&ctx(), ID, &desired())
        .await
        .expect("nothing to delete");
}

#[tokio::test]
async fn delete_without_waiting_leaves_it_pending_and_a_later_delete_finishes_it() {
    let updates: Log<UpdateDistributionInput> = log();
    let first = [
        get_config(true, "E1ENABLED"),
        update_recorded(&updates, "InProgress", "E2DISABLING"),
    ];
    let rt = distribution_type(&first.iter().collect::<Vec<_>>());
    let ctx = ctx().without_waiting_for_deletion();

    rt.delete(&ctx, ID, &desired()).await.expect("left pending");

    assert_eq!(if_matches(&taken(&updates)), ["E1ENABLED"]);
    let reason = ctx.pending_deletion().expect("recorded as pending");
    assert!(
        reason.starts_with("disabled; CloudFront deletes it once"),
        "{reason}"
    );
    assert!(reason.contains("the next plinth destroy/apply finishes it"));

    let deletes: Log<DeleteDistributionInput> = log();
    let second = [
        get_config(false, "E3DISABLED"),
        get_distribution_answers(&[
            ("Deployed", false, "E3DISABLED"),
            ("Deployed", false, "E3DISABLED"),
        ]),
        delete_recorded(&deletes),
    ];
    let rt = distribution_type(&second.iter().collect::<Vec<_>>());
    let later = self::ctx().without_waiting_for_deletion();

    rt.delete(&later, ID, &desired()).await.expect("deleted");

    assert_eq!(later.pending_deletion(), None);
    let deletes = taken(&deletes);
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].if_match(), Some("E3DISABLED"));
}

// ---------------------------------------------------------------------------------------------
// checks

fn issues(value: Value) -> Vec<(String, String)> {
    distribution_type(&[])
        .check(&obj(value))
        .iter()
        .map(|i| (path_to_string(&i.path), i.message.clone()))
        .collect()
}

fn assert_issue(found: &[(String, String)], path: &str, text: &str) {
    assert!(
        found.iter().any(|(p, m)| p == path && m.contains(text)),
        "no issue at {path} containing {text:?} in {found:#?}"
    );
}

#[test]
fn the_site_passes_its_checks() {
    assert_eq!(issues(written()), []);
}

#[test]
fn check_rejects_an_undeclared_origin_aliases_without_certificate_and_bad_managed_names() {
    let found = issues(json!({
        "aliases": ["www.example.com"],
        "origins": [{"id": "site", "domain_name": BUCKET_DOMAIN}],
        "default_behavior": {"origin": "site", "cache_policy": "managed:CachingFast"},
        "behaviors": [
            {"path": "/api/*", "origin": "api"},
            {"path": "/img/*", "origin": "site", "response_headers_policy": "managed:Nope"}
        ],
    }));

    assert_issue(
        &found,
        "behaviors[0].origin",
        "no origin or origin group has the id api",
    );
    assert_issue(&found, "aliases", "aliases need a certificate");
    assert_issue(
        &found,
        "default_behavior.cache_policy",
        "managed:CachingFast is not an AWS-managed policy",
    );
    assert_issue(
        &found,
        "default_behavior.cache_policy",
        "managed:CachingOptimized",
    );
    assert_issue(
        &found,
        "behaviors[1].response_headers_policy",
        "managed:SecurityHeadersPolicy",
    );
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[test]
fn check_rejects_origin_groups_cloudfront_refuses() {
    let found = issues(json!({
        "origins": [
            {"id": "primary", "domain_name": BUCKET_DOMAIN},
            {"id": "replica", "domain_name": "replica.s3.us-west-2.amazonaws.com"}
        ],
        "origin_groups": [
            {"id": "site", "primary": "primary", "secondary": "replica"},
            {"id": "primary", "primary": "primary", "secondary": "primary",
             "failover_status_codes": [500, 501]},
            {"id": "site", "primary": "nowhere", "secondary": "replica",
             "failover_status_codes": []}
        ],
        "default_behavior": {
            "origin": "site",
            "allowed_methods": ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
        },
        "behaviors": [{"path": "/img/*", "origin": "replica",
                       "allowed_methods": ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]}],
    }));

    assert_issue(&found, "origin_groups[1].id", "is an origin's id already");
    assert_issue(
        &found,
        "origin_groups[1].secondary",
        "another origin than the primary",
    );
    assert_issue(
        &found,
        "origin_groups[1].failover_status_codes[1]",
        "fails over only on",
    );
    assert_issue(&found, "origin_groups[2].id", "used twice");
    assert_issue(
        &found,
        "origin_groups[2].primary",
        "no origin has the id nowhere",
    );
    assert_issue(
        &found,
        "origin_groups[2].failover_status_codes",
        "at least one status code",
    );
    assert_issue(
        &found,
        "default_behavior.allowed_methods",
        "site is an origin group",
    );
    // A behavior targeting an origin may allow every method.
    assert_eq!(found.len(), 7, "{found:#?}");
}

#[test]
fn check_rejects_method_sets_and_edge_associations_cloudfront_refuses() {
    let found = issues(json!({
        "origins": [
            {"id": "site", "domain_name": BUCKET_DOMAIN},
            {"id": "site", "domain_name": "other.example.com"}
        ],
        "default_behavior": {
            "origin": "site",
            "allowed_methods": ["GET", "HEAD", "POST"],
            "cached_methods": ["GET", "HEAD", "OPTIONS"],
            "lambda_functions": [
                {"event": "viewer-request", "arn": LAMBDA},
                {"event": "viewer-request", "arn": LAMBDA},
                {"event": "origin-response", "arn": LAMBDA, "include_body": true},
                {"event": "origin-request", "arn": "arn:aws:lambda:us-east-1:123456789012:function:rewrite:$LATEST"}
            ],
            "functions": [{"event": "viewer-request", "arn": "arn:aws:cloudfront::123456789012:function/x"}]
        },
        "behaviors": [
            {"path": "/a/*", "origin": "site"},
            {"path": "/a/*", "origin": "site"}
        ],
    }));

    assert_issue(&found, "origins[1].id", "origin id site is used twice");
    assert_issue(
        &found,
        "default_behavior.allowed_methods",
        "[GET, HEAD, OPTIONS]",
    );
    assert_issue(
        &found,
        "default_behavior.cached_methods",
        "OPTIONS is cached but not in allowed_methods",
    );
    assert_issue(
        &found,
        "default_behavior.lambda_functions[1].event",
        "at most one function per event",
    );
    assert_issue(
        &found,
        "default_behavior.lambda_functions[2].include_body",
        "request functions",
    );
    assert_issue(
        &found,
        "default_behavior.lambda_functions[3].arn",
        "not a numbered function version",
    );
    assert_issue(
        &found,
        "default_behavior.functions[0].event",
        "already runs a Lambda@Edge function",
    );
    assert_issue(&found, "behaviors[1].path", "has a behavior already");
}

#[test]
fn check_skips_values_not_known_yet() {
    let found = issues(json!({
        "certificate": UNKNOWN,
        "aliases": [UNKNOWN],
        "origins": [{"id": "site", "domain_name": UNKNOWN, "origin_access_control": UNKNOWN}],
        "default_behavior": {
            "origin": "site",
            "cache_policy": UNKNOWN,
            "lambda_functions": [{"event": "viewer-request", "arn": UNKNOWN}]
        },
    }));

    assert_eq!(found, []);
}

fn linked_function(index: usize, props: Value) -> Linked {
    Linked {
        prop: "default_behavior".into(),
        path: vec![
            PathSeg::Key("default_behavior".into()),
            PathSeg::Key("lambda_functions".into()),
            PathSeg::Index(index),
            PathSeg::Key("arn".into()),
        ],
        resource: "rewrite".into(),
        type_name: "lambda.function".into(),
        props: obj(props),
    }
}

#[test]
fn check_linked_rejects_viewer_functions_over_the_edge_limits_and_non_edge_functions() {
    let rt = distribution_type(&[]);
    let props = obj(json!({
        "origins": [{"id": "site", "domain_name": BUCKET_DOMAIN}],
        "default_behavior": {
            "origin": "site",
            "lambda_functions": [
                {"event": "viewer-request", "arn": UNKNOWN},
                {"event": "origin-request", "arn": UNKNOWN}
            ]
        },
    }));
    let linked = [
        linked_function(0, json!({"edge": true, "memory_size": 256, "timeout": 10})),
        linked_function(
            1,
            json!({"edge": false, "memory_size": 1024, "timeout": 30}),
        ),
    ];

    let found: Vec<(String, String)> = rt
        .check_linked(&props, &linked)
        .iter()
        .map(|i| (path_to_string(&i.path), i.message.clone()))
        .collect();

    assert_issue(
        &found,
        "default_behavior.lambda_functions[0].arn",
        "at most 128 MB",
    );
    assert_issue(
        &found,
        "default_behavior.lambda_functions[0].arn",
        "at most 5 s",
    );
    assert_issue(
        &found,
        "default_behavior.lambda_functions[1].arn",
        "Lambda@Edge functions need `edge: true`",
    );
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn check_linked_accepts_functions_within_the_limits() {
    let rt = distribution_type(&[]);
    let props = obj(json!({
        "origins": [{"id": "site", "domain_name": BUCKET_DOMAIN}],
        "default_behavior": {
            "origin": "site",
            "lambda_functions": [{"event": "viewer-response", "arn": UNKNOWN}]
        },
    }));
    let linked = [linked_function(
        0,
        json!({"edge": true, "memory_size": 128, "timeout": 5}),
    )];

    assert_eq!(rt.check_linked(&props, &linked), []);
}

// ---------------------------------------------------------------------------------------------
// canonical form

#[test]
fn normalize_fills_defaults_sorts_sets_and_is_idempotent() {
    let props = normalized(json!({
        "aliases": ["b.example.com", "a.example.com"],
        "origins": [{"id": "site", "domain_name": BUCKET_DOMAIN}],
        "default_behavior": {
            "origin": "site",
            "allowed_methods": ["OPTIONS", "HEAD", "GET"],
            "cached_methods": ["HEAD", "GET"],
            "cache_policy": CACHING_DISABLED
        },
        "custom_error_responses": [{"error_code": 500}, {"error_code": 403}],
    }));

    assert_eq!(props["aliases"], json!(["a.example.com", "b.example.com"]));
    let behavior = &props["default_behavior"];
    assert_eq!(
        behavior["allowed_methods"],
        json!(["GET", "HEAD", "OPTIONS"])
    );
    assert_eq!(
        behavior["viewer_protocol_policy"],
        json!("redirect-to-https")
    );
    // A managed policy written by id reads back as its name.
    assert_eq!(behavior["cache_policy"], json!("managed:CachingDisabled"));
    assert_eq!(props["custom_error_responses"][0]["error_code"], json!(403));
    assert_eq!(props["custom_error_responses"][0]["ttl"], json!(10));
    assert_eq!(props["origins"][0]["connection_attempts"], json!(3));
    assert!(props["origins"][0].get("custom").is_none());
    assert_eq!(props["invalidation_paths"], json!(["/*"]));
    assert_eq!(props["minimum_protocol_version"], json!("TLSv1"));
    let again = normalized(Value::Object(props.clone()));
    assert_eq!(again, props);
}

#[test]
fn a_certificate_brings_its_tls_defaults() {
    let props = normalized(json!({
        "certificate": CERT,
        "origins": [{"id": "site", "domain_name": BUCKET_DOMAIN}],
        "default_behavior": {"origin": "site"},
    }));

    assert_eq!(props["minimum_protocol_version"], json!("TLSv1.2_2021"));
    assert_eq!(props["ssl_support_method"], json!("sni-only"));
}

#[test]
fn the_distribution_lives_in_us_east_1() {
    let rt = distribution_type(&[]);
    assert_eq!(rt.pinned_region(&Props::new()), Some("us-east-1"));
    let arn = rt
        .schema()
        .prop_at(&[
            PathSeg::Key("default_behavior".into()),
            PathSeg::Key("lambda_functions".into()),
            PathSeg::Index(0),
            PathSeg::Key("arn".into()),
        ])
        .expect("declared");
    assert_eq!(arn.pins_region, Some("us-east-1"));
    assert_eq!(
        rt.schema().prop("certificate").and_then(|p| p.pins_region),
        Some("us-east-1")
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals, replayed with the bodies CloudFront sends, each turned into what to do

async fn refused_create(status: u16, code: &'static str, message: &'static str) -> ResourceError {
    let create = mock!(Client::create_distribution_with_tags)
        .then_http_response(move || cloudfront_error(status, code, message));
    let dist = distribution_type(&[&create]);
    let err = dist
        .create(&ctx(), &desired())
        .await
        .expect_err("CloudFront refused");
    assert_eq!(create.num_calls(), 1, "{code} is not retried");
    assert_eq!(err.kind, ErrorKind::Invalid, "{err}");
    assert_eq!(err.code.as_deref(), Some(code));
    err
}

#[tokio::test]
async fn an_alias_another_distribution_uses_says_to_free_it_or_choose_another() {
    let err = refused_create(
        409,
        "CNAMEAlreadyExists",
        "One or more of the CNAMEs you provided are already associated with a different resource.",
    )
    .await;
    assert!(
        err.message.contains("www.example.com")
            && err
                .message
                .contains("remove it from that distribution first"),
        "{err}"
    );
}

#[tokio::test]
async fn a_certificate_cloudfront_cannot_use_says_what_it_must_be() {
    let err = refused_create(
        400,
        "InvalidViewerCertificate",
        "The specified SSL certificate doesn't exist, isn't in us-east-1 region, isn't valid, or doesn't include a valid certificate chain.",
    )
    .await;
    assert!(
        err.message.contains("us-east-1")
            && err.message.contains("ISSUED")
            && err.message.contains("covers every alias"),
        "{err}"
    );
}

#[tokio::test]
async fn an_edge_function_that_is_not_a_published_version_says_to_use_its_qualified_arn() {
    let err = refused_create(
        400,
        "InvalidLambdaFunctionAssociation",
        "The function ARN must reference a specific function version. (The ARN must end with the version number.) ARN: arn:aws:lambda:us-east-1:123456789012:function:rewrite:$LATEST",
    )
    .await;
    assert!(
        err.message.contains("qualified_arn") && err.message.contains("published version"),
        "{err}"
    );
}

#[tokio::test]
async fn a_create_sent_again_with_its_caller_reference_adopts_the_distribution_it_made() {
    // A run killed after CreateDistribution was sent journaled the create's token; the next
    // run sends the same CallerReference, and CloudFront names the distribution it made.
    let sent: Log<CreateDistributionWithTagsInput> = log();
    let seen = sent.clone();
    let exists = mock!(Client::create_distribution_with_tags)
        .match_requests(move |r| {
            seen.lock().expect("log").push(r.clone());
            true
        })
        .then_http_response(|| {
            cloudfront_error(
                409,
                "DistributionAlreadyExists",
                &format!("The caller reference that you are using to create a distribution is associated with another distribution. Already exists: {ID}"),
            )
        });
    let read = get_distribution_answers(&[("InProgress", true, "E1")]);
    let tags = list_tags(owner_tags());
    let polls = get_distribution_answers(&[("InProgress", true, "E1"), ("Deployed", true, "E1")]);
    let dist = distribution_type(&[&exists, &read, &tags, &polls]);
    let token = "0123456789abcdef0123456789abcdef".to_string();
    let ctx = ctx().with_create_token(token.clone());
    let observed = dist.create(&ctx, &desired()).await.expect("adopted");
    assert_eq!(observed.id, ID);
    let reference = taken(&sent)
        .pop()
        .and_then(|r| r.distribution_config_with_tags)
        .and_then(|c| c.distribution_config)
        .map(|c| c.caller_reference)
        .expect("sent");
    assert_eq!(reference, format!("plinth-{token}"));
    assert_eq!(exists.num_calls(), 1, "no second distribution");

    // The distribution under that reference is another stack's: refused.
    let exists = mock!(Client::create_distribution_with_tags).then_http_response(|| {
        cloudfront_error(
            409,
            "DistributionAlreadyExists",
            &format!("The caller reference that you are using to create a distribution is associated with another distribution. Already exists: {ID}"),
        )
    });
    let read = get_distribution_answers(&[("Deployed", true, "E1")]);
    let tags = list_tags(
        json!({"plinth:stack": "other", "plinth:workspace": "default", "plinth:resource": "cdn"}),
    );
    let dist = distribution_type(&[&exists, &read, &tags]);
    let err = dist.create(&ctx, &desired()).await.expect_err("not ours");
    assert_eq!(err.kind, ErrorKind::Invalid, "{err}");
}
