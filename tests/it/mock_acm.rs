//! `acm.certificate` against replayed ACM responses: what the emulator cannot show (moto has
//! its validation records at once, issues every certificate after a fixed wait, never fails
//! one and never keeps one in use), namely polling until ACM adds the validation records, the
//! notices that tell the person which CNAMEs to create, the wait for ISSUED and its failures,
//! and a delete retried while CloudFront still holds the certificate.
//!
//! Clients run with the SDK's own retries off; most rules run in `RuleMode::Sequential`, so
//! every mocked response is exactly one call and the order of calls is pinned.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_acm::config::retry::RetryConfig;
use aws_sdk_acm::operation::add_tags_to_certificate::{
    AddTagsToCertificateInput, AddTagsToCertificateOutput,
};
use aws_sdk_acm::operation::delete_certificate::DeleteCertificateOutput;
use aws_sdk_acm::operation::describe_certificate::DescribeCertificateOutput;
use aws_sdk_acm::operation::list_certificates::ListCertificatesOutput;
use aws_sdk_acm::operation::list_tags_for_certificate::ListTagsForCertificateOutput;
use aws_sdk_acm::operation::remove_tags_from_certificate::{
    RemoveTagsFromCertificateInput, RemoveTagsFromCertificateOutput,
};
use aws_sdk_acm::operation::request_certificate::{
    RequestCertificateInput, RequestCertificateOutput,
};
use aws_sdk_acm::types::{
    CertificateDetail, CertificateStatus, CertificateSummary, DomainStatus, DomainValidation,
    FailureReason, KeyAlgorithm, RecordType, ResourceRecord, Tag, ValidationMethod,
};
use aws_sdk_acm::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use plinth_aws::resources::acm_certificate::Certificate;
use plinth_core::resource::{ErrorKind, NormalizeContext, OpContext, ResourceType};
use plinth_core::value::{path_to_string, Props, UNKNOWN};
use serde_json::{json, Value};

use crate::mock_cloudfront_policies::Recorded;
use crate::mock_support::{mocked_aws, REGION};

const ARN: &str =
    "arn:aws:acm:us-east-1:123456789012:certificate/1f2e3d4c-5b6a-4798-a1b2-c3d4e5f60718";
const OTHER_ARN: &str =
    "arn:aws:acm:us-east-1:123456789012:certificate/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const DISTRIBUTION_ARN: &str = "arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL";
/// The names of the certificate, as AWS lists them: the domain first.
const NAMES: &[&str] = &["example.com", "www.example.com", "*.example.com"];

// ---------------------------------------------------------------------------------------------
// Plumbing

fn certificate_type(mode: RuleMode, rules: &[&Rule]) -> Certificate {
    let aws = mocked_aws();
    aws.insert_acm(
        REGION,
        mock_client!(aws_sdk_acm, mode, rules, |c| c
            .retry_config(RetryConfig::disabled())),
    );
    Certificate::new(aws)
}

fn in_order(rules: &[&Rule]) -> Certificate {
    certificate_type(RuleMode::Sequential, rules)
}

fn ctx() -> OpContext {
    OpContext::new(REGION, "cert")
}

fn obj(value: Value) -> Props {
    value.as_object().cloned().expect("an object")
}

type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn taken<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().expect("log lock").clone()
}

fn owner_tags(resource: &str) -> Value {
    json!({"plinth:stack": "site", "plinth:workspace": "default", "plinth:resource": resource})
}

/// The certificate a stack declares, as the core hands it over: tags merged, normalized.
fn desired(extra: Value) -> Props {
    let mut props = obj(json!({
        "domain_name": "example.com",
        "subject_alternative_names": ["www.example.com", "*.example.com", "example.com"],
        "tags": owner_tags("cert"),
    }));
    props.extend(obj(extra));
    Certificate::new(mocked_aws())
        .normalize(&mut props, &NormalizeContext::default())
        .expect("normalizes");
    props
}

/// An ACM (awsJson1_1) error response exactly as AWS sends it.
fn acm_error(code: &str, message: &str) -> HttpResponse {
    let body = format!(r#"{{"__type":"{code}","message":"{message}"}}"#);
    let mut response = HttpResponse::new(
        StatusCode::try_from(400).expect("valid status"),
        SdkBody::from(body),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.1");
    response
        .headers_mut()
        .insert("x-amzn-requestid", "3b1f6a2e-9c4d-4e8f-a7b6-5d4c3b2a1f0e");
    response
}

fn not_found(arn: &str) -> HttpResponse {
    acm_error(
        "ResourceNotFoundException",
        &format!("Could not find certificate {arn}."),
    )
}

fn in_use() -> HttpResponse {
    acm_error(
        "ResourceInUseException",
        &format!("Certificate {ARN} in use."),
    )
}

/// The CNAME ACM asks for: one per name, a wildcard sharing its base domain's.
fn record_for(name: &str) -> (String, String) {
    let bare = name.trim_start_matches("*.");
    (
        format!("_3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c.{bare}."),
        format!(
            "_{}.jkddzztszm.acm-validations.aws.",
            bare.replace('.', "-")
        ),
    )
}

/// What DescribeCertificate says about the certificate.
struct Described {
    status: CertificateStatus,
    records: bool,
    in_use_by: Vec<&'static str>,
    failure: Option<FailureReason>,
}

impl Described {
    fn pending(records: bool) -> Described {
        Described {
            status: CertificateStatus::PendingValidation,
            records,
            in_use_by: Vec::new(),
            failure: None,
        }
    }
    fn issued() -> Described {
        Described {
            status: CertificateStatus::Issued,
            ..Described::pending(true)
        }
    }
    fn detail(&self, arn: &str) -> CertificateDetail {
        let domain_status = if self.status == CertificateStatus::Issued {
            DomainStatus::Success
        } else {
            DomainStatus::PendingValidation
        };
        let mut b = CertificateDetail::builder()
            .certificate_arn(arn)
            .domain_name("example.com")
            .status(self.status.clone())
            .key_algorithm(KeyAlgorithm::Rsa2048)
            .set_failure_reason(self.failure.clone())
            .set_in_use_by(Some(self.in_use_by.iter().map(|s| s.to_string()).collect()));
        for name in NAMES {
            b = b.subject_alternative_names(*name);
            let (record_name, value) = record_for(name);
            let record = ResourceRecord::builder()
                .name(record_name)
                .r#type(RecordType::Cname)
                .value(value)
                .build()
                .expect("record");
            let option = DomainValidation::builder()
                .domain_name(*name)
                .validation_domain(*name)
                .validation_status(domain_status.clone())
                .validation_method(ValidationMethod::Dns)
                .set_resource_record(self.records.then_some(record))
                .build()
                .expect("validation option");
            b = b.domain_validation_options(option);
        }
        b.build()
    }
}

fn describe(described: Described) -> Rule {
    mock!(Client::describe_certificate)
        .match_requests(|req| req.certificate_arn() == Some(ARN))
        .then_output(move || {
            DescribeCertificateOutput::builder()
                .certificate(described.detail(ARN))
                .build()
        })
}

fn aws_tags(tags: &Value) -> Vec<Tag> {
    let sorted: std::collections::BTreeMap<&String, &Value> =
        tags.as_object().expect("tags").iter().collect();
    sorted
        .into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v.as_str().unwrap_or(""))
                .build()
                .expect("tag")
        })
        .collect()
}

fn list_tags(arn: &'static str, tags: Value) -> Rule {
    mock!(Client::list_tags_for_certificate)
        .match_requests(move |req| req.certificate_arn() == Some(arn))
        .then_output(move || {
            ListTagsForCertificateOutput::builder()
                .set_tags(Some(aws_tags(&tags)))
                .build()
        })
}

/// RequestCertificate answering `arn`, keeping what it was sent.
fn request(seen: &Log<RequestCertificateInput>, arn: &'static str) -> Rule {
    let seen = seen.clone();
    mock!(Client::request_certificate).then_compute_output(move |req| {
        seen.lock().expect("lock").push(req.clone());
        RequestCertificateOutput::builder()
            .certificate_arn(arn)
            .build()
    })
}

fn expected_records() -> Value {
    let (wildcard_name, wildcard_value) = record_for("*.example.com");
    let (www_name, www_value) = record_for("www.example.com");
    json!([
        {"domain": "*.example.com", "name": wildcard_name, "type": "CNAME", "value": wildcard_value},
        {"domain": "www.example.com", "name": www_name, "type": "CNAME", "value": www_value},
    ])
}

// ---------------------------------------------------------------------------------------------
// Create

#[tokio::test]
async fn create_polls_until_the_records_appear_prints_them_and_waits_for_issued() {
    let seen = log();
    let request = request(&seen, ARN);
    let no_records_yet = describe(Described::pending(false));
    let records = describe(Described::pending(true));
    let still_pending = describe(Described::pending(true));
    let issued = describe(Described::issued());
    let rt = in_order(&[&request, &no_records_yet, &records, &still_pending, &issued]);
    let progress = Arc::new(Recorded::default());
    let ctx = ctx().with_progress(progress.clone());
    let props = desired(json!({}));

    let observed = rt.create(&ctx, &props).await.expect("created");

    let input = taken(&seen).pop().expect("RequestCertificate called");
    assert_eq!(input.domain_name(), Some("example.com"));
    assert_eq!(
        input.subject_alternative_names(),
        ["*.example.com", "www.example.com"]
    );
    assert_eq!(input.validation_method(), Some(&ValidationMethod::Dns));
    assert_eq!(input.key_algorithm(), Some(&KeyAlgorithm::Rsa2048));
    assert_eq!(input.tags(), aws_tags(&owner_tags("cert")));
    let token = input.idempotency_token().expect("a token");
    assert_eq!(token.len(), 32);
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()), "{token}");

    assert_eq!(issued.num_calls(), 1, "waited until ISSUED");
    let (wildcard_name, wildcard_value) = record_for("*.example.com");
    let (www_name, www_value) = record_for("www.example.com");
    assert_eq!(
        ctx.notices(),
        vec![
            format!("validate *.example.com: create CNAME {wildcard_name} → {wildcard_value}"),
            format!("validate www.example.com: create CNAME {www_name} → {www_value}"),
        ]
    );
    assert!(
        progress.saw(&format!(
            "waiting for the validation records of {ARN} (PENDING_VALIDATION)"
        )),
        "{:?}",
        progress.messages()
    );
    assert!(
        progress.saw(
            "waiting for DNS validation (PENDING_VALIDATION): create the CNAME records shown above"
        ),
        "{:?}",
        progress.messages()
    );
    assert_eq!(observed.id, ARN);
    assert_eq!(observed.props, props);
    assert_eq!(observed.attrs["status"], json!("ISSUED"));
    assert_eq!(observed.attrs["arn"], json!(ARN));
    assert_eq!(observed.attrs["domain_name"], json!("example.com"));
    assert_eq!(observed.attrs["validation_records"], expected_records());
}

/// The token makes the SDK's retries of one request idempotent; each create has its own, so
/// a stack destroyed and applied again within the hour never names a deleted certificate.
#[tokio::test]
async fn each_create_sends_a_token_of_its_own() {
    let seen = log();
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let request = request(&seen, ARN);
        let records = describe(Described::pending(true));
        let props = desired(json!({"tags": owner_tags("cert"), "wait_for_validation": false}));
        let observed = in_order(&[&request, &records])
            .create(&ctx(), &props)
            .await
            .expect("created");
        assert_eq!(observed.attrs["status"], json!("PENDING_VALIDATION"));
        assert_eq!(observed.props, props, "not waiting is what was asked");
        let input = taken(&seen).pop().expect("requested");
        tokens.push(input.idempotency_token().expect("token").to_string());
    }
    assert_ne!(tokens[0], tokens[1]);
}

#[tokio::test]
async fn create_of_a_certificate_acm_refuses_fails_with_the_reason_and_deletes_it() {
    let seen = log();
    let request = request(&seen, ARN);
    let records = describe(Described::pending(true));
    let failed = describe(Described {
        status: CertificateStatus::Failed,
        failure: Some(FailureReason::CaaError),
        ..Described::pending(true)
    });
    let delete = mock!(Client::delete_certificate)
        .match_requests(|req| req.certificate_arn() == Some(ARN))
        .then_output(|| DeleteCertificateOutput::builder().build());
    let rt = in_order(&[&request, &records, &failed, &delete]);

    let err = rt
        .create(&ctx(), &desired(json!({})))
        .await
        .expect_err("FAILED is an error");

    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message
            .contains(&format!("certificate {ARN} is FAILED: CAA_ERROR")),
        "{err}"
    );
    assert!(err.message.contains("plinth deleted it"), "{err}");
    assert_eq!(delete.num_calls(), 1);
}

#[tokio::test]
async fn create_that_times_out_says_which_records_to_create() {
    let seen = log();
    let request = request(&seen, ARN);
    let pending = mock!(Client::describe_certificate)
        .sequence()
        .output(|| {
            DescribeCertificateOutput::builder()
                .certificate(Described::pending(true).detail(ARN))
                .build()
        })
        .repeatedly()
        .build();
    let rt = certificate_type(RuleMode::MatchAny, &[&request, &pending]);
    let ctx = ctx().with_deadline(Some(Duration::from_millis(500)));

    let err = rt
        .create(&ctx, &desired(json!({})))
        .await
        .expect_err("times out");

    assert_eq!(err.kind, ErrorKind::Timeout);
    let (wildcard_name, wildcard_value) = record_for("*.example.com");
    let (www_name, _) = record_for("www.example.com");
    assert!(err.message.contains("waiting for DNS validation"), "{err}");
    assert!(
        err.message
            .contains(&format!("CNAME {wildcard_name} → {wildcard_value}")),
        "{err}"
    );
    assert!(err.message.contains(&www_name), "{err}");
    assert!(err.message.contains("run apply again"), "{err}");
    assert_eq!(ctx.notices().len(), 2, "the records were printed first");
}

// ---------------------------------------------------------------------------------------------
// Read, find, update

#[tokio::test]
async fn read_maps_validation_records_and_reports_the_wait_as_done_only_once_issued() {
    let issued = describe(Described::issued());
    let tags = list_tags(
        ARN,
        json!({"plinth:stack": "site", "plinth:workspace": "default", "plinth:resource": "cert", "aws:cloudformation:stack-name": "x"}),
    );
    let pending = describe(Described::pending(true));
    let pending_tags = list_tags(ARN, owner_tags("cert"));
    let gone = mock!(Client::describe_certificate).then_http_response(|| not_found(ARN));
    let rt = in_order(&[&issued, &tags, &pending, &pending_tags, &gone]);
    let prior = desired(json!({"wait_for_validation": false}));

    let observed = rt
        .read(&ctx(), ARN, &prior)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        observed.props, prior,
        "the domain is not an alternative name"
    );
    assert_eq!(
        Value::Object(observed.attrs),
        json!({
            "arn": ARN,
            "status": "ISSUED",
            "domain_name": "example.com",
            "validation_records": expected_records(),
        })
    );

    // Still pending while the stack wants the wait (a create that timed out, adopted): the
    // plan shows wait_for_validation false → true, and the update waits.
    let wanted = desired(json!({}));
    let observed = rt
        .read(&ctx(), ARN, &wanted)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(observed.props["wait_for_validation"], json!(false));
    assert_eq!(observed.attrs["status"], json!("PENDING_VALIDATION"));

    let missing = rt.read(&ctx(), ARN, &wanted).await.expect("read");
    assert_eq!(missing, None);
}

#[tokio::test]
async fn a_key_algorithm_aws_reports_with_hyphens_is_no_difference() {
    // DescribeCertificate answers `RSA-2048`, the request takes `RSA_2048` (the SDK keeps
    // the unknown spelling as it came).
    let hyphenated = mock!(Client::describe_certificate).then_output(|| {
        let mut detail = Described::issued().detail(ARN);
        detail.key_algorithm = Some(KeyAlgorithm::from("RSA-2048"));
        DescribeCertificateOutput::builder()
            .certificate(detail)
            .build()
    });
    let tags = list_tags(ARN, owner_tags("cert"));
    let rt = in_order(&[&hyphenated, &tags]);
    let applied = desired(json!({}));
    let observed = rt
        .read(&ctx(), ARN, &applied)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(observed.props["key_algorithm"], json!("RSA_2048"));
    assert!(rt.replace_reasons(&observed.props, &applied).is_empty());
}

#[tokio::test]
async fn find_adopts_only_this_stacks_certificate_for_the_domain() {
    let list = mock!(Client::list_certificates)
        .match_requests(|req| {
            req.certificate_statuses().len() == CertificateStatus::values().len()
                && req.includes().map(|f| f.key_types()) == Some(&[KeyAlgorithm::Rsa2048][..])
        })
        .then_output(|| {
            let summary = |arn: &str, domain: &str| {
                CertificateSummary::builder()
                    .certificate_arn(arn)
                    .domain_name(domain)
                    .build()
            };
            ListCertificatesOutput::builder()
                .certificate_summary_list(summary(OTHER_ARN, "example.com"))
                .certificate_summary_list(summary(
                    "arn:aws:acm:us-east-1:123456789012:certificate/0000",
                    "example.org",
                ))
                .certificate_summary_list(summary(ARN, "example.com"))
                .build()
        });
    let foreign = mock!(Client::describe_certificate)
        .match_requests(|req| req.certificate_arn() == Some(OTHER_ARN))
        .then_output(|| {
            DescribeCertificateOutput::builder()
                .certificate(Described::issued().detail(OTHER_ARN))
                .build()
        });
    let foreign_tags = list_tags(
        OTHER_ARN,
        json!({"plinth:stack": "someone-else", "plinth:workspace": "default", "plinth:resource": "cert"}),
    );
    let ours = describe(Described::pending(true));
    let our_tags = list_tags(ARN, owner_tags("cert"));
    let rt = in_order(&[&list, &foreign, &foreign_tags, &ours, &our_tags]);

    let found = rt
        .find(&ctx(), &desired(json!({})))
        .await
        .expect("find")
        .expect("adopted");

    assert_eq!(found.id, ARN);
    assert_eq!(our_tags.num_calls(), 1);
}

#[tokio::test]
async fn update_changes_tags_by_difference_and_waits_for_a_pending_certificate() {
    let added: Log<AddTagsToCertificateInput> = log();
    let add = mock!(Client::add_tags_to_certificate).then_compute_output({
        let added = added.clone();
        move |req| {
            added.lock().expect("lock").push(req.clone());
            AddTagsToCertificateOutput::builder().build()
        }
    });
    let removed: Log<RemoveTagsFromCertificateInput> = log();
    let remove = mock!(Client::remove_tags_from_certificate).then_compute_output({
        let removed = removed.clone();
        move |req| {
            removed.lock().expect("lock").push(req.clone());
            RemoveTagsFromCertificateOutput::builder().build()
        }
    });
    let pending = describe(Described::pending(true));
    let issued = describe(Described::issued());
    let rt = in_order(&[&add, &remove, &pending, &issued]);
    let mut before_tags = owner_tags("cert");
    before_tags["a"] = json!("1");
    before_tags["b"] = json!("2");
    let mut after_tags = owner_tags("cert");
    after_tags["a"] = json!("1");
    after_tags["c"] = json!("3");
    let before = desired(json!({"tags": before_tags, "wait_for_validation": false}));
    let after = desired(json!({"tags": after_tags}));
    assert!(rt.replace_reasons(&before, &after).is_empty(), "in place");
    let ctx = ctx();

    let observed = rt
        .update(&ctx, ARN, &before, &after)
        .await
        .expect("updated");

    let add = taken(&added).pop().expect("tagged");
    assert_eq!(add.certificate_arn(), Some(ARN));
    assert_eq!(
        add.tags(),
        [Tag::builder().key("c").value("3").build().expect("tag")]
    );
    let remove = taken(&removed).pop().expect("untagged");
    assert_eq!(
        remove.tags(),
        [Tag::builder().key("b").build().expect("tag")],
        "removed by key whatever its value"
    );
    assert_eq!(issued.num_calls(), 1, "waited for ISSUED");
    assert_eq!(ctx.notices().len(), 2, "the records to create were shown");
    assert_eq!(observed.props, after);
}

// ---------------------------------------------------------------------------------------------
// Delete

#[tokio::test]
async fn delete_retries_while_cloudfront_still_holds_the_certificate() {
    let delete = mock!(Client::delete_certificate)
        .match_requests(|req| req.certificate_arn() == Some(ARN))
        .sequence()
        .http_response(in_use)
        .times(2)
        .output(|| DeleteCertificateOutput::builder().build())
        .build();
    let rt = in_order(&[&delete]);
    let progress = Arc::new(Recorded::default());
    let ctx = ctx().with_progress(progress.clone());

    rt.delete(&ctx, ARN, &desired(json!({})))
        .await
        .expect("deleted once free");

    assert_eq!(delete.num_calls(), 3);
    assert!(
        progress.saw("ResourceInUseException — retrying"),
        "{:?}",
        progress.messages()
    );
    assert_eq!(ctx.pending_deletion(), None);
}

#[tokio::test]
async fn delete_still_in_use_at_the_deadline_names_what_uses_it() {
    let rt = || {
        let delete = mock!(Client::delete_certificate)
            .sequence()
            .http_response(in_use)
            .repeatedly()
            .build();
        let describe = mock!(Client::describe_certificate)
            .sequence()
            .output(|| {
                let mut described = Described::issued();
                described.in_use_by = vec![DISTRIBUTION_ARN];
                DescribeCertificateOutput::builder()
                    .certificate(described.detail(ARN))
                    .build()
            })
            .repeatedly()
            .build();
        certificate_type(RuleMode::MatchAny, &[&delete, &describe])
    };
    let ctx = ctx().with_deadline(Some(Duration::from_millis(300)));

    let err = rt()
        .delete(&ctx, ARN, &desired(json!({})))
        .await
        .expect_err("still in use");

    assert_eq!(err.kind, ErrorKind::InUse);
    assert_eq!(err.code.as_deref(), Some("ResourceInUseException"));
    assert!(
        err.message.contains(&format!(
            "certificate {ARN} is still in use by {DISTRIBUTION_ARN}: remove it from those first"
        )),
        "{err}"
    );

    // Under --no-wait it is left for the next run instead.
    let no_wait = ctx.clone().without_waiting_for_deletion();
    rt().delete(&no_wait, ARN, &desired(json!({})))
        .await
        .expect("left pending");
    let reason = no_wait.pending_deletion().expect("pending");
    assert!(reason.contains("in use."), "{reason}");

    let gone = mock!(Client::delete_certificate).then_http_response(|| not_found(ARN));
    in_order(&[&gone])
        .delete(&ctx, ARN, &desired(json!({})))
        .await
        .expect("already gone is deleted");
    assert_eq!(gone.num_calls(), 1);
}

// ---------------------------------------------------------------------------------------------
// Canonical form and checks

#[test]
fn normalize_fills_defaults_and_keeps_alternative_names_without_the_domain() {
    let props = desired(json!({"tags": {}}));
    assert_eq!(
        Value::Object(props),
        json!({
            "domain_name": "example.com",
            "subject_alternative_names": ["*.example.com", "www.example.com"],
            "validation_method": "DNS",
            "key_algorithm": "RSA_2048",
            "wait_for_validation": true,
            "tags": {},
        })
    );
    let rt = Certificate::new(mocked_aws());
    let before = desired(json!({}));
    let after = desired(json!({"subject_alternative_names": ["www.example.com"]}));
    assert_eq!(
        rt.replace_reasons(&before, &after),
        vec!["subject_alternative_names"]
    );
    let known = rt.known_attrs(&before);
    assert_eq!(Value::Object(known), json!({"domain_name": "example.com"}));
}

#[test]
fn check_rejects_names_acm_refuses_at_their_paths() {
    let rt = Certificate::new(mocked_aws());
    let found: Vec<(String, String)> = rt
        .check(&obj(json!({
            "domain_name": "Example.com",
            "subject_alternative_names": ["www.example.com.", "a.*.example.com", "-x.example.com", UNKNOWN, "*.example.com"],
        })))
        .iter()
        .map(|i| (path_to_string(&i.path), i.message.clone()))
        .collect();
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "domain_name",
            "subject_alternative_names[0]",
            "subject_alternative_names[1]",
            "subject_alternative_names[2]",
        ],
        "{found:#?}"
    );
    assert!(found[0].1.contains("write \"example.com\""), "{found:#?}");
    assert!(found[1].1.contains("no dot at the end"), "{found:#?}");
    assert!(rt
        .check(&obj(json!({"domain_name": "*.example.co.uk"})))
        .is_empty());
}
