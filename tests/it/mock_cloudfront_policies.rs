//! `cloudfront.cache_policy` and `cloudfront.origin_access_control` against replayed CloudFront
//! responses: what the emulator cannot show (moto has no cache policies at all, and ignores
//! `If-Match`), namely the mapping of AWS's nested `Quantity`/`Items` form to plinth's plain
//! one, the ETag/If-Match protocol with a `PreconditionFailed` retried from a fresh read, and
//! deletes retried while a distribution still uses the policy or the OAC.
//!
//! Clients run with the SDK's own retries off and the rules in `RuleMode::Sequential`, so every
//! mocked response is exactly one call and the order of calls is pinned.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudfront::config::retry::RetryConfig;
use aws_sdk_cloudfront::operation::create_cache_policy::{
    CreateCachePolicyInput, CreateCachePolicyOutput,
};
use aws_sdk_cloudfront::operation::create_origin_access_control::{
    CreateOriginAccessControlInput, CreateOriginAccessControlOutput,
};
use aws_sdk_cloudfront::operation::delete_cache_policy::DeleteCachePolicyOutput;
use aws_sdk_cloudfront::operation::delete_origin_access_control::DeleteOriginAccessControlOutput;
use aws_sdk_cloudfront::operation::list_cache_policies::ListCachePoliciesOutput;
use aws_sdk_cloudfront::operation::update_cache_policy::{
    UpdateCachePolicyInput, UpdateCachePolicyOutput,
};
use aws_sdk_cloudfront::operation::update_origin_access_control::{
    UpdateOriginAccessControlInput, UpdateOriginAccessControlOutput,
};
use aws_sdk_cloudfront::types::{
    CachePolicy, CachePolicyConfig, CachePolicyList, CachePolicySummary,
    CachePolicyType as AwsCachePolicyType, OriginAccessControl,
};
use aws_sdk_cloudfront::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::DateTime;
use plinth_aws::resources::cloudfront_cache_policy::CachePolicyType;
use plinth_aws::resources::cloudfront_origin_access_control::OriginAccessControlType;
use plinth_aws::resources::tags;
use plinth_aws::Aws;
use plinth_core::resource::{ErrorKind, NormalizeContext, OpContext, Progress, ResourceType};
use plinth_core::value::{path_to_string, Props, UNKNOWN};
use serde_json::{json, Value};

use crate::mock_support::{mocked_aws, REGION};

const POLICY_ID: &str = "4d2e7c1a-9b3f-4e8d-a6c5-2f1b0e9d8c7a";
const OAC_ID: &str = "E1F83G5XZ4Q7KM";

// ---------------------------------------------------------------------------------------------
// Plumbing

fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_cloudfront, RuleMode::Sequential, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

fn aws_with(rules: &[&Rule]) -> Arc<Aws> {
    let aws = mocked_aws();
    aws.insert_cloudfront(REGION, client(rules));
    aws
}

fn policy_type(rules: &[&Rule]) -> CachePolicyType {
    CachePolicyType::new(aws_with(rules))
}

fn oac_type(rules: &[&Rule]) -> OriginAccessControlType {
    OriginAccessControlType::new(aws_with(rules))
}

/// Keeps every progress message, to show that a wait really happened.
#[derive(Default)]
pub struct Recorded(Mutex<Vec<String>>);

impl Progress for Recorded {
    fn status(&self, message: &str) {
        self.0.lock().expect("lock").push(message.to_string());
    }
}

impl Recorded {
    pub fn messages(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }
    pub fn saw(&self, text: &str) -> bool {
        self.messages().iter().any(|m| m.contains(text))
    }
}

fn ctx() -> OpContext {
    OpContext::new(REGION, "edge")
}

fn ctx_with(progress: Arc<Recorded>) -> OpContext {
    ctx().with_progress(progress)
}

fn obj(value: Value) -> Props {
    value.as_object().cloned().expect("an object")
}

fn normalized(rt: &dyn ResourceType, value: Value) -> Props {
    let mut props = obj(value);
    rt.normalize(&mut props, &NormalizeContext::default())
        .expect("normalizes");
    props
}

/// Everything a mocked call received, in order.
type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn taken<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().expect("log lock").clone()
}

fn issues(rt: &dyn ResourceType, value: Value) -> Vec<(String, String)> {
    rt.check(&obj(value))
        .iter()
        .map(|i| (path_to_string(&i.path), i.message.clone()))
        .collect()
}

/// A CloudFront (restXml) error response exactly as AWS sends it.
fn cloudfront_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>8c3e1b52-7a4d-4f0e-9d2b-6e5f4a3b2c1d</RequestId></ErrorResponse>"
    );
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", "text/xml");
    response
        .headers_mut()
        .insert("x-amzn-requestid", "8c3e1b52-7a4d-4f0e-9d2b-6e5f4a3b2c1d");
    response
}

/// A successful CloudFront response: an XML document and its ETag header.
fn cloudfront_ok(etag: &str, body: &str) -> HttpResponse {
    let mut response = HttpResponse::new(
        StatusCode::try_from(200).expect("valid status"),
        SdkBody::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"
        )),
    );
    response.headers_mut().insert("content-type", "text/xml");
    response.headers_mut().insert("etag", etag.to_string());
    response
        .headers_mut()
        .insert("x-amzn-requestid", "8c3e1b52-7a4d-4f0e-9d2b-6e5f4a3b2c1d");
    response
}

fn precondition_failed() -> HttpResponse {
    cloudfront_error(
        412,
        "PreconditionFailed",
        "The If-Match version is missing or not valid for the resource.",
    )
}

// ---------------------------------------------------------------------------------------------
// cloudfront.cache_policy

/// The policy a stack declares: an hour by default, session and lang cookies, every query
/// string but utm_source, gzip but no Brotli.
fn policy_desired() -> Props {
    normalized(
        &policy_type(&[]),
        json!({
            "name": "site-assets",
            "comment": "site assets",
            "default_ttl": 3600,
            "min_ttl": 0,
            "max_ttl": 86400,
            "brotli": false,
            "cookies": {"behavior": "whitelist", "names": ["session", "lang"]},
            "query_strings": {"behavior": "allExcept", "names": ["utm_source"]},
        }),
    )
}

/// GetCachePolicy's body for that policy, exactly as AWS nests it.
const POLICY_XML: &str = r#"<CachePolicy xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Id>4d2e7c1a-9b3f-4e8d-a6c5-2f1b0e9d8c7a</Id><LastModifiedTime>2024-05-01T10:00:00.000Z</LastModifiedTime><CachePolicyConfig><Comment>site assets</Comment><Name>site-assets</Name><DefaultTTL>3600</DefaultTTL><MaxTTL>86400</MaxTTL><MinTTL>0</MinTTL><ParametersInCacheKeyAndForwardedToOrigin><EnableAcceptEncodingGzip>true</EnableAcceptEncodingGzip><EnableAcceptEncodingBrotli>false</EnableAcceptEncodingBrotli><HeadersConfig><HeaderBehavior>none</HeaderBehavior></HeadersConfig><CookiesConfig><CookieBehavior>whitelist</CookieBehavior><Cookies><Quantity>2</Quantity><Items><Name>session</Name><Name>lang</Name></Items></Cookies></CookiesConfig><QueryStringsConfig><QueryStringBehavior>allExcept</QueryStringBehavior><QueryStrings><Quantity>1</Quantity><Items><Name>utm_source</Name></Items></QueryStrings></QueryStringsConfig></ParametersInCacheKeyAndForwardedToOrigin></CachePolicyConfig></CachePolicy>"#;

fn get_policy_xml(etag: &'static str) -> Rule {
    mock!(Client::get_cache_policy)
        .match_requests(|req| req.id() == Some(POLICY_ID))
        .then_http_response(move || cloudfront_ok(etag, POLICY_XML))
}

fn policy_of(config: CachePolicyConfig) -> CachePolicy {
    CachePolicy::builder()
        .id(POLICY_ID)
        .last_modified_time(DateTime::from_secs(1_714_557_600))
        .cache_policy_config(config)
        .build()
        .expect("policy")
}

fn policy_not_found() -> HttpResponse {
    cloudfront_error(404, "NoSuchCachePolicy", "The cache policy does not exist.")
}

fn policy_in_use() -> HttpResponse {
    cloudfront_error(
        409,
        "CachePolicyInUse",
        "Cannot delete this cache policy because it is attached to one or more cache behaviors.",
    )
}

#[tokio::test]
async fn cache_policy_create_maps_ttls_keys_and_compression() {
    let seen: Log<CreateCachePolicyInput> = log();
    let create = mock!(Client::create_cache_policy).then_compute_output({
        let seen = seen.clone();
        move |req| {
            seen.lock().expect("lock").push(req.clone());
            CreateCachePolicyOutput::builder()
                .cache_policy(policy_of(
                    req.cache_policy_config().expect("config").clone(),
                ))
                .e_tag("E1ST")
                .build()
        }
    });
    let rt = policy_type(&[&create]);
    let props = policy_desired();

    let observed = rt.create(&ctx(), &props).await.expect("created");

    let input = taken(&seen).pop().expect("CreateCachePolicy called");
    let config = input.cache_policy_config().expect("config");
    assert_eq!(config.name(), "site-assets");
    assert_eq!(config.comment(), Some("site assets"));
    assert_eq!(
        (config.min_ttl(), config.default_ttl(), config.max_ttl()),
        (0, Some(3600), Some(86400))
    );
    let key = config
        .parameters_in_cache_key_and_forwarded_to_origin()
        .expect("cache key");
    assert!(key.enable_accept_encoding_gzip());
    assert_eq!(key.enable_accept_encoding_brotli(), Some(false));
    let cookies = key.cookies_config().expect("cookies");
    assert_eq!(cookies.cookie_behavior().as_str(), "whitelist");
    let names = cookies.cookies().expect("cookie names");
    assert_eq!(names.quantity(), 2);
    assert_eq!(names.items(), ["lang", "session"]);
    let headers = key.headers_config().expect("headers");
    assert_eq!(headers.header_behavior().as_str(), "none");
    assert!(headers.headers().is_none(), "no names with none");
    let query = key.query_strings_config().expect("query strings");
    assert_eq!(query.query_string_behavior().as_str(), "allExcept");
    assert_eq!(
        query.query_strings().expect("names").items(),
        ["utm_source"]
    );

    assert_eq!(observed.id, POLICY_ID);
    assert_eq!(observed.props, props);
    assert_eq!(Value::Object(observed.attrs), json!({"id": POLICY_ID}));
}

#[tokio::test]
async fn cache_policy_read_round_trips_to_the_normalized_props() {
    let get = get_policy_xml("E2QWRUHAPOMQZL");
    let gone = mock!(Client::get_cache_policy).then_http_response(policy_not_found);
    let rt = policy_type(&[&get, &gone]);

    let observed = rt
        .read(&ctx(), POLICY_ID, &Props::new())
        .await
        .expect("read")
        .expect("exists");

    assert_eq!(observed.props, policy_desired());
    assert_eq!(
        Value::Object(observed.props.clone()),
        json!({
            "name": "site-assets",
            "comment": "site assets",
            "default_ttl": 3600,
            "min_ttl": 0,
            "max_ttl": 86400,
            "gzip": true,
            "brotli": false,
            "cookies": {"behavior": "whitelist", "names": ["lang", "session"]},
            "headers": {"behavior": "none", "names": []},
            "query_strings": {"behavior": "allExcept", "names": ["utm_source"]},
        })
    );
    let keys: Vec<&String> = observed.props.keys().collect();
    let desired = policy_desired();
    assert_eq!(keys, desired.keys().collect::<Vec<_>>(), "same key order");

    let missing = rt
        .read(&ctx(), POLICY_ID, &Props::new())
        .await
        .expect("NoSuchCachePolicy is an answer");
    assert_eq!(missing, None);
}

#[test]
fn cache_policy_defaults_fill_every_key_of_the_canonical_form() {
    let props = normalized(&policy_type(&[]), json!({"name": "minimal"}));
    assert_eq!(
        Value::Object(props),
        json!({
            "name": "minimal",
            "comment": "",
            "default_ttl": 86400,
            "min_ttl": 1,
            "max_ttl": 31536000,
            "gzip": true,
            "brotli": true,
            "cookies": {"behavior": "none", "names": []},
            "headers": {"behavior": "none", "names": []},
            "query_strings": {"behavior": "none", "names": []},
        })
    );
}

#[tokio::test]
async fn cache_policy_update_sends_if_match_and_retries_a_precondition_failed_with_a_fresh_etag() {
    let first_read = get_policy_xml("E1OLD");
    let seen: Log<UpdateCachePolicyInput> = log();
    let stale = mock!(Client::update_cache_policy)
        .match_requests(|req| req.if_match() == Some("E1OLD"))
        .then_http_response(precondition_failed);
    let second_read = get_policy_xml("E2NEW");
    let update = mock!(Client::update_cache_policy)
        .match_requests(|req| req.id() == Some(POLICY_ID) && req.if_match() == Some("E2NEW"))
        .then_compute_output({
            let seen = seen.clone();
            move |req| {
                seen.lock().expect("lock").push(req.clone());
                UpdateCachePolicyOutput::builder()
                    .cache_policy(policy_of(
                        req.cache_policy_config().expect("config").clone(),
                    ))
                    .e_tag("E3")
                    .build()
            }
        });
    let rt = policy_type(&[&first_read, &stale, &second_read, &update]);
    let before = policy_desired();
    let mut after = before.clone();
    after.insert("default_ttl".into(), json!(600));
    after.insert(
        "headers".into(),
        json!({"behavior": "whitelist", "names": ["Origin"]}),
    );
    assert!(rt.replace_reasons(&before, &after).is_empty(), "in place");

    let observed = rt
        .update(&ctx(), POLICY_ID, &before, &after)
        .await
        .expect("updated after one PreconditionFailed");

    assert_eq!(stale.num_calls(), 1);
    assert_eq!(update.num_calls(), 1);
    let sent = taken(&seen).pop().expect("UpdateCachePolicy sent");
    let config = sent.cache_policy_config().expect("config");
    assert_eq!(config.default_ttl(), Some(600));
    let headers = config
        .parameters_in_cache_key_and_forwarded_to_origin()
        .and_then(|k| k.headers_config())
        .expect("headers");
    assert_eq!(headers.header_behavior().as_str(), "whitelist");
    assert_eq!(headers.headers().expect("names").items(), ["Origin"]);
    assert_eq!(observed.props, after);
}

#[tokio::test]
async fn cache_policy_delete_retries_while_a_cache_behavior_uses_it() {
    let mut rules = Vec::new();
    for etag in ["E1", "E1", "E2"] {
        rules.push(get_policy_xml(etag));
        let delete = mock!(Client::delete_cache_policy)
            .match_requests(move |req| req.id() == Some(POLICY_ID) && req.if_match() == Some(etag));
        rules.push(if etag == "E2" {
            delete.then_output(|| DeleteCachePolicyOutput::builder().build())
        } else {
            delete.then_http_response(policy_in_use)
        });
    }
    let rt = policy_type(&rules.iter().collect::<Vec<_>>());
    let progress = Arc::new(Recorded::default());
    let ctx = ctx_with(progress.clone());

    rt.delete(&ctx, POLICY_ID, &Props::new())
        .await
        .expect("deleted once free");

    assert!(rules.iter().all(|r| r.num_calls() == 1), "every call made");
    assert!(
        progress.saw("deleting cache policy 4d2e7c1a-9b3f-4e8d-a6c5-2f1b0e9d8c7a: CachePolicyInUse — retrying"),
        "{:?}",
        progress.messages()
    );
    assert_eq!(ctx.pending_deletion(), None);
}

#[tokio::test]
async fn cache_policy_still_in_use_at_the_deadline_says_what_holds_it_and_gone_is_deleted() {
    let get = mock!(Client::get_cache_policy)
        .sequence()
        .http_response(|| cloudfront_ok("E1", POLICY_XML))
        .repeatedly()
        .build();
    let delete = mock!(Client::delete_cache_policy)
        .sequence()
        .http_response(policy_in_use)
        .repeatedly()
        .build();
    let aws = mocked_aws();
    aws.insert_cloudfront(
        REGION,
        mock_client!(
            aws_sdk_cloudfront,
            RuleMode::MatchAny,
            [&get, &delete],
            |c| c.retry_config(RetryConfig::disabled())
        ),
    );
    let rt = CachePolicyType::new(aws);
    let ctx = ctx().with_deadline(Some(Duration::from_millis(300)));

    let err = rt
        .delete(&ctx, POLICY_ID, &Props::new())
        .await
        .expect_err("still in use at the deadline");

    assert_eq!(err.kind, ErrorKind::InUse);
    assert_eq!(err.code.as_deref(), Some("CachePolicyInUse"));
    assert!(err.message.contains("still uses the cache policy"), "{err}");
    assert!(delete.num_calls() >= 2, "retried");

    let gone = mock!(Client::get_cache_policy).then_http_response(policy_not_found);
    policy_type(&[&gone])
        .delete(&ctx, POLICY_ID, &Props::new())
        .await
        .expect("already gone is deleted");
    assert_eq!(gone.num_calls(), 1);
}

#[tokio::test]
async fn cache_policy_name_taken_is_a_clash_to_resolve() {
    let create = mock!(Client::create_cache_policy).then_http_response(|| {
        cloudfront_error(
            409,
            "CachePolicyAlreadyExists",
            "A cache policy with this name already exists. You must provide a unique name. To modify an existing cache policy, use UpdateCachePolicy.",
        )
    });
    let err = policy_type(&[&create])
        .create(&ctx(), &policy_desired())
        .await
        .expect_err("name taken");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message
            .contains("a cache policy named site-assets already exists"),
        "{err}"
    );
}

#[test]
fn cache_policy_check_keeps_ttls_in_order_and_names_with_their_behaviors() {
    let rt = policy_type(&[]);
    let found = issues(
        &rt,
        json!({
            "name": "p",
            "min_ttl": 600,
            "default_ttl": 60,
            "cookies": {"behavior": "none", "names": ["session"]},
            "headers": {"behavior": "whitelist"},
            "query_strings": {"behavior": "allExcept", "names": []},
        }),
    );
    assert_eq!(
        found,
        vec![
            (
                "min_ttl".to_string(),
                "min_ttl (600) is more than default_ttl (60)".to_string()
            ),
            (
                "cookies.names".to_string(),
                "names go with behavior whitelist or allExcept, not none".to_string()
            ),
            (
                "headers.names".to_string(),
                "behavior whitelist needs the names it applies to".to_string()
            ),
            (
                "query_strings.names".to_string(),
                "behavior allExcept needs the names it applies to".to_string()
            ),
        ]
    );
    let found = issues(
        &rt,
        json!({"name": "p", "default_ttl": 90000, "max_ttl": 3600}),
    );
    assert_eq!(
        found,
        vec![(
            "default_ttl".to_string(),
            "default_ttl (90000) is more than max_ttl (3600)".to_string()
        )]
    );
    // Values known only at apply are not judged.
    let found = issues(
        &rt,
        json!({"name": "p", "default_ttl": UNKNOWN, "cookies": {"behavior": "whitelist", "names": UNKNOWN}}),
    );
    assert!(found.is_empty(), "{found:?}");
    let ok = issues(
        &rt,
        json!({"name": "p", "min_ttl": 0, "default_ttl": 0, "max_ttl": 0, "cookies": {"behavior": "all"}}),
    );
    assert!(ok.is_empty(), "{ok:?}");
}

// ---------------------------------------------------------------------------------------------
// cloudfront.origin_access_control

fn oac_xml(description: &str, behavior: &str) -> String {
    format!(
        r#"<OriginAccessControl xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Id>{OAC_ID}</Id><OriginAccessControlConfig><Name>site-oac</Name><Description>{description}</Description><SigningProtocol>sigv4</SigningProtocol><SigningBehavior>{behavior}</SigningBehavior><OriginAccessControlOriginType>s3</OriginAccessControlOriginType></OriginAccessControlConfig></OriginAccessControl>"#
    )
}

fn get_oac(etag: &'static str, description: &'static str) -> Rule {
    mock!(Client::get_origin_access_control)
        .match_requests(|req| req.id() == Some(OAC_ID))
        .then_http_response(move || cloudfront_ok(etag, &oac_xml(description, "always")))
}

fn oac_of(
    req_config: Option<&aws_sdk_cloudfront::types::OriginAccessControlConfig>,
) -> OriginAccessControl {
    OriginAccessControl::builder()
        .id(OAC_ID)
        .set_origin_access_control_config(req_config.cloned())
        .build()
        .expect("oac")
}

fn oac_in_use() -> HttpResponse {
    cloudfront_error(
        409,
        "OriginAccessControlInUse",
        "Cannot delete this origin access control because it's in use by one or more origins.",
    )
}

#[tokio::test]
async fn origin_access_control_create_read_update_delete_with_if_match() {
    let rt_offline = oac_type(&[]);
    let desired = normalized(&rt_offline, json!({"name": "site-oac"}));
    assert_eq!(
        Value::Object(desired.clone()),
        json!({"name": "site-oac", "description": "", "origin_type": "s3", "signing_behavior": "always", "signing_protocol": "sigv4"})
    );
    assert_eq!(rt_offline.pinned_region(&desired), Some("us-east-1"));

    // Create.
    let created: Log<CreateOriginAccessControlInput> = log();
    let create = mock!(Client::create_origin_access_control).then_compute_output({
        let created = created.clone();
        move |req| {
            created.lock().expect("lock").push(req.clone());
            CreateOriginAccessControlOutput::builder()
                .origin_access_control(oac_of(req.origin_access_control_config()))
                .e_tag("E1")
                .build()
        }
    });
    // Read.
    let read = get_oac("E1", "");
    // Update: one stale ETag, then the fresh one.
    let update_read = get_oac("E1", "");
    let stale = mock!(Client::update_origin_access_control)
        .match_requests(|req| req.if_match() == Some("E1"))
        .then_http_response(precondition_failed);
    let fresh_read = get_oac("E2", "");
    let updated: Log<UpdateOriginAccessControlInput> = log();
    let update = mock!(Client::update_origin_access_control)
        .match_requests(|req| req.id() == Some(OAC_ID) && req.if_match() == Some("E2"))
        .then_compute_output({
            let updated = updated.clone();
            move |req| {
                updated.lock().expect("lock").push(req.clone());
                UpdateOriginAccessControlOutput::builder()
                    .origin_access_control(oac_of(req.origin_access_control_config()))
                    .e_tag("E3")
                    .build()
            }
        });
    // Delete: in use once (a distribution still being updated), then free.
    let delete_read = get_oac("E3", "site bucket");
    let in_use = mock!(Client::delete_origin_access_control)
        .match_requests(|req| req.if_match() == Some("E3"))
        .then_http_response(oac_in_use);
    let delete_read_again = get_oac("E3", "site bucket");
    let delete = mock!(Client::delete_origin_access_control)
        .match_requests(|req| req.id() == Some(OAC_ID) && req.if_match() == Some("E3"))
        .then_output(|| DeleteOriginAccessControlOutput::builder().build());
    let rt = oac_type(&[
        &create,
        &read,
        &update_read,
        &stale,
        &fresh_read,
        &update,
        &delete_read,
        &in_use,
        &delete_read_again,
        &delete,
    ]);

    let observed = rt.create(&ctx(), &desired).await.expect("created");
    let input = taken(&created)
        .pop()
        .expect("CreateOriginAccessControl called");
    let config = input.origin_access_control_config().expect("config");
    assert_eq!(config.name(), "site-oac");
    assert_eq!(config.description(), Some(""));
    assert_eq!(config.origin_access_control_origin_type().as_str(), "s3");
    assert_eq!(config.signing_behavior().as_str(), "always");
    assert_eq!(config.signing_protocol().as_str(), "sigv4");
    assert_eq!(observed.id, OAC_ID);
    assert_eq!(observed.props, desired);
    assert_eq!(Value::Object(observed.attrs), json!({"id": OAC_ID}));

    let read_back = rt
        .read(&ctx(), OAC_ID, &desired)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read_back.props, desired, "a re-plan shows no change");

    let mut after = desired.clone();
    after.insert("description".into(), json!("site bucket"));
    after.insert("signing_behavior".into(), json!("no-override"));
    assert!(rt.replace_reasons(&desired, &after).is_empty(), "in place");
    let observed = rt
        .update(&ctx(), OAC_ID, &desired, &after)
        .await
        .expect("updated");
    let sent = taken(&updated)
        .pop()
        .expect("UpdateOriginAccessControl sent");
    let config = sent.origin_access_control_config().expect("config");
    assert_eq!(config.description(), Some("site bucket"));
    assert_eq!(config.signing_behavior().as_str(), "no-override");
    assert_eq!(observed.props, after);
    assert_eq!(stale.num_calls(), 1);

    let progress = Arc::new(Recorded::default());
    let ctx = ctx_with(progress.clone());
    rt.delete(&ctx, OAC_ID, &after).await.expect("deleted");
    assert_eq!(in_use.num_calls(), 1);
    assert_eq!(delete.num_calls(), 1);
    assert!(
        progress.saw("OriginAccessControlInUse — retrying"),
        "{:?}",
        progress.messages()
    );
}

#[tokio::test]
async fn origin_access_control_missing_reads_as_none_and_a_taken_name_is_a_clash() {
    let gone = mock!(Client::get_origin_access_control).then_http_response(|| {
        cloudfront_error(
            404,
            "NoSuchOriginAccessControl",
            "The specified origin access control does not exist.",
        )
    });
    let taken_name = mock!(Client::create_origin_access_control).then_http_response(|| {
        cloudfront_error(
            409,
            "OriginAccessControlAlreadyExists",
            "An origin access control with the same name already exists.",
        )
    });
    let rt = oac_type(&[&gone, &taken_name]);

    let read = rt.read(&ctx(), OAC_ID, &Props::new()).await.expect("read");
    assert_eq!(read, None);

    let desired = normalized(&rt, json!({"name": "site-oac"}));
    let err = rt.create(&ctx(), &desired).await.expect_err("name taken");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message
            .contains("an origin access control named site-oac already exists"),
        "{err}"
    );
}

#[tokio::test]
async fn origin_access_control_in_use_at_the_deadline_is_an_error_and_pending_under_no_wait() {
    let rules = || {
        let get = mock!(Client::get_origin_access_control)
            .sequence()
            .http_response(|| cloudfront_ok("E1", &oac_xml("", "always")))
            .repeatedly()
            .build();
        let delete = mock!(Client::delete_origin_access_control)
            .sequence()
            .http_response(oac_in_use)
            .repeatedly()
            .build();
        let aws = mocked_aws();
        aws.insert_cloudfront(
            REGION,
            mock_client!(
                aws_sdk_cloudfront,
                RuleMode::MatchAny,
                [&get, &delete],
                |c| c.retry_config(RetryConfig::disabled())
            ),
        );
        OriginAccessControlType::new(aws)
    };
    let ctx = ctx().with_deadline(Some(Duration::from_millis(300)));
    let err = rules()
        .delete(&ctx, OAC_ID, &Props::new())
        .await
        .expect_err("still in use");
    assert_eq!(err.kind, ErrorKind::InUse);
    assert!(
        err.message
            .contains("remove it from the distribution first"),
        "{err}"
    );

    let no_wait = ctx
        .clone()
        .without_waiting_for_deletion()
        .with_deadline(Some(Duration::from_millis(300)));
    rules()
        .delete(&no_wait, OAC_ID, &Props::new())
        .await
        .expect("left pending");
    let reason = no_wait.pending_deletion().expect("pending");
    assert!(
        reason.contains("still in use") && reason.contains("it's in use by one or more origins"),
        "{reason}"
    );
}

#[test]
fn origin_access_control_check_limits_the_name() {
    let rt = oac_type(&[]);
    let long = "n".repeat(65);
    let found = issues(&rt, json!({"name": long}));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "name");
    assert!(found[0].1.contains("1 to 64 characters"), "{found:?}");
    assert!(issues(&rt, json!({"name": "n".repeat(64)})).is_empty());
    assert!(issues(&rt, json!({"name": UNKNOWN})).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Untaggable, yet found again: a marker in the description (OAC) or comment (cache policy)

/// The context of resource `logical` in stack `lab`, workspace `default`.
fn in_environment(logical: &str) -> OpContext {
    OpContext::new(REGION, logical).with_environment("lab", "default")
}

fn oac_list(description: &str) -> Rule {
    let body = format!(
        r#"<OriginAccessControlList xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Marker></Marker><MaxItems>100</MaxItems><IsTruncated>false</IsTruncated><Quantity>1</Quantity><Items><OriginAccessControlSummary><Id>{OAC_ID}</Id><Description>{description}</Description><Name>site-oac</Name><SigningProtocol>sigv4</SigningProtocol><SigningBehavior>always</SigningBehavior><OriginAccessControlOriginType>s3</OriginAccessControlOriginType></OriginAccessControlSummary></Items></OriginAccessControlList>"#
    );
    mock!(Client::list_origin_access_controls).then_http_response(move || cloudfront_ok("", &body))
}

fn oac_exists() -> Rule {
    mock!(Client::create_origin_access_control).then_http_response(|| {
        cloudfront_error(
            409,
            "OriginAccessControlAlreadyExists",
            "An origin access control with the specified parameters already exists.",
        )
    })
}

#[tokio::test]
async fn an_origin_access_control_carries_its_marker_and_a_lost_create_is_adopted_by_it() {
    let ctx = in_environment("oac");
    let marker = tags::owner_marker(&ctx).expect("a marker in an environment");
    assert!(
        marker.starts_with("plinth:") && marker.len() == 19,
        "{marker}"
    );

    // The description AWS keeps carries the marker; a read gives the one written.
    let sent: Log<String> = log();
    let create = mock!(Client::create_origin_access_control).then_compute_output({
        let sent = sent.clone();
        move |req| {
            let config = req.origin_access_control_config();
            sent.lock().expect("log").push(
                config
                    .and_then(|c| c.description())
                    .unwrap_or_default()
                    .to_string(),
            );
            CreateOriginAccessControlOutput::builder()
                .origin_access_control(oac_of(config))
                .build()
        }
    });
    let rt = oac_type(&[&create]);
    let desired = normalized(&rt, json!({"name": "site-oac", "description": "the site"}));
    let observed = rt.create(&ctx, &desired).await.expect("created");
    assert_eq!(taken(&sent), vec![format!("the site ({marker})")]);
    assert_eq!(observed.props, desired, "the marker is not a difference");

    // The SDK sent the create again after the first answer was lost: AWS says the name is
    // taken, and the OAC under it carries this resource's marker.
    let description: &'static str = Box::leak(marker.clone().into_boxed_str());
    let rt = oac_type(&[
        &oac_exists(),
        &oac_list(description),
        &get_oac("E1", description),
    ]);
    let desired = normalized(&rt, json!({"name": "site-oac"}));
    let adopted = rt.create(&ctx, &desired).await.expect("adopted");
    assert_eq!(adopted.id, OAC_ID);

    // Under another resource's marker (or none) it is someone else's.
    let rt = oac_type(&[&oac_exists(), &oac_list("plinth:0123456789ab")]);
    let err = rt.create(&ctx, &desired).await.expect_err("taken");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("already exists"), "{err}");
}

#[tokio::test]
async fn a_cache_policy_whose_create_answer_was_lost_is_found_by_name_and_marker() {
    let ctx = in_environment("assets_cache");
    let marker = tags::owner_marker(&ctx).expect("marker");
    let exists = mock!(Client::create_cache_policy).then_http_response(|| {
        cloudfront_error(
            409,
            "CachePolicyAlreadyExists",
            "A cache policy with this name already exists. You must provide a unique name. To modify an existing cache policy, use UpdateCachePolicy.",
        )
    });
    let desired = policy_desired();
    // What a create sends: the comment carries the marker.
    let sent: Log<CachePolicyConfig> = log();
    let create = mock!(Client::create_cache_policy).then_compute_output({
        let sent = sent.clone();
        move |req: &CreateCachePolicyInput| {
            let config = req.cache_policy_config().cloned().expect("config");
            sent.lock().expect("log").push(config.clone());
            CreateCachePolicyOutput::builder()
                .cache_policy(policy_of(config))
                .build()
        }
    });
    policy_type(&[&create])
        .create(&ctx, &desired)
        .await
        .expect("created");
    let config = taken(&sent).pop().expect("sent");
    assert_eq!(
        config.comment(),
        Some(format!("site assets ({marker})").as_str())
    );
    // Then the create is sent again after its answer was lost: the name is taken, and the
    // listed policy of that name carries this resource's marker.
    let listed = CachePolicyList::builder()
        .max_items(100)
        .quantity(1)
        .items(
            CachePolicySummary::builder()
                .r#type(AwsCachePolicyType::Custom)
                .cache_policy(policy_of(config))
                .build()
                .expect("summary"),
        )
        .build()
        .expect("list");
    let list = mock!(Client::list_cache_policies).then_output(move || {
        ListCachePoliciesOutput::builder()
            .cache_policy_list(listed.clone())
            .build()
    });
    let rt = policy_type(&[&exists, &list]);
    let adopted = rt.create(&ctx, &desired).await.expect("adopted");
    assert_eq!(adopted.id, POLICY_ID);
    assert_eq!(adopted.props, desired, "the marker is not a difference");
}

#[test]
fn server_timing_takes_any_rate_of_four_decimals_from_0_to_100() {
    use plinth_aws::resources::cloudfront_response_headers_policy::ResponseHeadersPolicyResource;
    let policy = ResponseHeadersPolicyResource::new(Arc::new(Aws::offline()));
    let issues = |rate: serde_json::Value| {
        let props = obj(json!({"name": "timing", "server_timing": rate}));
        policy.check(&props)
    };
    // Rates that are not exact in binary (2.51 × 10 000 is 25 099.999…) are still 4 decimals.
    for rate in [
        json!(0),
        json!(2.51),
        json!(0.07),
        json!(1.11),
        json!(12.3456),
        json!(100),
    ] {
        assert!(
            issues(rate.clone()).is_empty(),
            "{rate}: {:?}",
            issues(rate.clone())
        );
    }
    for rate in [json!(100.5), json!(-1), json!(1.23456)] {
        assert!(
            issues(rate.clone())
                .iter()
                .any(|i| i.message.contains("percentage from 0 to 100")),
            "{rate}"
        );
    }
}
