//! `s3.bucket`, `s3.objects` and `s3.bucket_policy` against replayed S3 responses (REST-XML,
//! the bodies and status codes real S3 sends): where a bucket is created and how it is set
//! up, what a bucket without any configuration reads as, emptying a versioned bucket on
//! destroy, the errors a person has to act on, syncing a folder file by file, and the OAC
//! grant `allow_cloudfront` stands for.
//!
//! Clients run with the SDK's own retries off and the rules in `RuleMode::Sequential`, so every
//! mocked response is exactly one call and the order of calls is pinned: a call the code
//! should not make, or one with other inputs than a rule's `match_requests`, fails the test.

use std::path::Path;
use std::sync::Arc;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::operation::create_bucket::CreateBucketOutput;
use aws_sdk_s3::operation::delete_bucket::DeleteBucketOutput;
use aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput;
use aws_sdk_s3::operation::head_bucket::HeadBucketOutput;
use aws_sdk_s3::operation::put_bucket_policy::PutBucketPolicyOutput;
use aws_sdk_s3::operation::put_bucket_tagging::PutBucketTaggingOutput;
use aws_sdk_s3::operation::put_bucket_versioning::PutBucketVersioningOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::operation::put_public_access_block::PutPublicAccessBlockOutput;
use aws_sdk_s3::types::{BucketVersioningStatus, PublicAccessBlockConfiguration};
use aws_sdk_s3::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use plinth_aws::resources::s3_bucket::Bucket;
use plinth_aws::resources::s3_bucket_policy::BucketPolicy;
use plinth_aws::resources::s3_objects::{content_type, Objects};
use plinth_aws::Aws;
use plinth_core::resource::{ErrorKind, NormalizeContext, OpContext, ResourceType};
use plinth_core::value::{is_unknown, path_to_string, Props, UNKNOWN};
use serde_json::{json, Value};

use crate::mock_support::{mocked_aws, REGION};

const BUCKET: &str = "demo-site-123456789012";
const OTHER_REGION: &str = "eu-west-1";
const CDN_ARN: &str = "arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL";
const CDN_ARN_2: &str = "arn:aws:cloudfront::123456789012:distribution/E1ABCDEF012345";

// ---------------------------------------------------------------------------------------------
// Plumbing

fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_s3, RuleMode::Sequential, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

/// An `Aws` whose S3 client in `region` answers with `rules`.
fn aws_in(region: &str, rules: &[&Rule]) -> Arc<Aws> {
    let aws = mocked_aws();
    aws.insert_s3(region, client(rules));
    aws
}

/// As [`aws_in`], for a bucket's read: S3 has one call per setting and plinth sends them
/// at once, so the rules match by operation, in any order.
fn aws_reading(region: &str, rules: &[&Rule]) -> Arc<Aws> {
    let aws = mocked_aws();
    aws.insert_s3(
        region,
        mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled())),
    );
    aws
}

/// What S3 answers for the sub-configurations of a bucket made since 2023 with nothing
/// set: ownership BucketOwnerEnforced, SSE-S3, and none of the others.
fn new_bucket_settings() -> Vec<Rule> {
    const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
    vec![
        mock!(Client::get_bucket_ownership_controls).then_http_response(|| {
            xml_ok(&format!(r#"<OwnershipControls xmlns="{NS}"><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>"#))
        }),
        mock!(Client::get_bucket_encryption).then_http_response(|| {
            xml_ok(&format!(r#"<ServerSideEncryptionConfiguration xmlns="{NS}"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>false</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>"#))
        }),
        mock!(Client::get_bucket_cors).then_http_response(|| {
            s3_error(404, "NoSuchCORSConfiguration", "The CORS configuration does not exist")
        }),
        mock!(Client::get_bucket_lifecycle_configuration).then_http_response(|| {
            s3_error(404, "NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist")
        }),
        mock!(Client::get_bucket_website).then_http_response(|| {
            s3_error(404, "NoSuchWebsiteConfiguration", "The specified bucket does not have a website configuration")
        }),
        mock!(Client::get_bucket_logging)
            .then_http_response(|| xml_ok(&format!(r#"<BucketLoggingStatus xmlns="{NS}" />"#))),
        mock!(Client::get_object_lock_configuration).then_http_response(|| {
            s3_error(404, "ObjectLockConfigurationNotFoundError", "Object Lock configuration does not exist for this bucket")
        }),
    ]
}

/// `rules` followed by [`new_bucket_settings`].
fn with_new_settings<'a>(rules: &[&'a Rule], settings: &'a [Rule]) -> Vec<&'a Rule> {
    rules.iter().copied().chain(settings.iter()).collect()
}

fn ctx_in(region: &str) -> OpContext {
    OpContext::new(region, "site")
}

fn obj(value: Value) -> Props {
    value.as_object().cloned().expect("an object")
}

fn owner_tags() -> Value {
    json!({"plinth:stack": "lab", "plinth:workspace": "default", "plinth:resource": "site"})
}

fn normalized(rt: &dyn ResourceType, value: Value) -> Props {
    normalized_in(rt, value, Path::new(""))
}

fn normalized_in(rt: &dyn ResourceType, value: Value, base_dir: &Path) -> Props {
    let mut props = obj(value);
    rt.normalize(
        &mut props,
        &NormalizeContext {
            base_dir: base_dir.to_path_buf(),
        },
    )
    .expect("normalizes");
    props
}

fn issues(rt: &dyn ResourceType, value: Value) -> Vec<(String, String)> {
    rt.check(&obj(value))
        .iter()
        .map(|i| (path_to_string(&i.path), i.message.clone()))
        .collect()
}

fn with_status(status: u16, body: impl Into<SdkBody>, content_type: &str) -> HttpResponse {
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        body.into(),
    );
    response
        .headers_mut()
        .insert("content-type", content_type.to_string());
    response
        .headers_mut()
        .insert("x-amz-request-id", "4442587FB7D0A2F9");
    response
}

/// An S3 (REST-XML) error response exactly as S3 sends it.
fn s3_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><BucketName>{BUCKET}</BucketName><RequestId>4442587FB7D0A2F9</RequestId><HostId>ncGYi4k9Rm1ywIXNz/GOkQvvZL7YiP0Lc5jmcdIvuS5XKlkBBxc1Ef2yk3l0lfc86RMDiAhOtNc=</HostId></Error>"
    );
    with_status(status, body, "application/xml")
}

/// A successful S3 answer with this XML body.
fn xml_ok(body: &str) -> HttpResponse {
    with_status(
        200,
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"),
        "application/xml",
    )
}

/// HeadBucket of a bucket that does not exist: 404 and no body (a HEAD answer has none).
fn head_missing() -> HttpResponse {
    with_status(404, SdkBody::empty(), "application/xml")
}

fn no_such_bucket() -> HttpResponse {
    s3_error(404, "NoSuchBucket", "The specified bucket does not exist")
}

fn head_ok() -> Rule {
    mock!(Client::head_bucket)
        .match_requests(|r| r.bucket() == Some(BUCKET))
        .then_output(|| HeadBucketOutput::builder().bucket_region(REGION).build())
}

fn block_is(c: Option<&PublicAccessBlockConfiguration>, expected: [bool; 4]) -> bool {
    c.is_some_and(|c| {
        [
            c.block_public_acls(),
            c.ignore_public_acls(),
            c.block_public_policy(),
            c.restrict_public_buckets(),
        ] == expected.map(Some)
    })
}

// ---------------------------------------------------------------------------------------------
// s3.bucket: create

fn bucket_desired(extra: Value) -> Props {
    let mut props = obj(json!({"name": BUCKET, "tags": owner_tags()}));
    props.extend(obj(extra));
    normalized(&Bucket::new(mocked_aws()), Value::Object(props))
}

fn tagged_with_owner_tags() -> Rule {
    mock!(Client::put_bucket_tagging)
        .match_requests(|r| {
            let tags: Vec<(&str, &str)> = r
                .tagging()
                .map(|t| t.tag_set().iter().map(|t| (t.key(), t.value())).collect())
                .unwrap_or_default();
            tags == [
                ("plinth:resource", "site"),
                ("plinth:stack", "lab"),
                ("plinth:workspace", "default"),
            ]
        })
        .then_output(|| PutBucketTaggingOutput::builder().build())
}

fn blocked_by_default() -> Rule {
    mock!(Client::put_public_access_block)
        .match_requests(|r| block_is(r.public_access_block_configuration(), [true; 4]))
        .then_output(|| PutPublicAccessBlockOutput::builder().build())
}

#[tokio::test]
async fn create_outside_us_east_1_names_the_region_and_blocks_public_access_by_default() {
    let create = mock!(Client::create_bucket)
        .match_requests(|r| {
            r.bucket() == Some(BUCKET)
                && r.create_bucket_configuration()
                    .and_then(|c| c.location_constraint())
                    .map(|l| l.as_str())
                    == Some(OTHER_REGION)
        })
        .then_output(|| CreateBucketOutput::builder().build());
    let block = blocked_by_default();
    let tagging = tagged_with_owner_tags();
    let rt = Bucket::new(aws_in(OTHER_REGION, &[&create, &block, &tagging]));

    let created = rt
        .create(&ctx_in(OTHER_REGION), &bucket_desired(json!({})))
        .await
        .expect("creates");

    assert_eq!(
        (create.num_calls(), block.num_calls(), tagging.num_calls()),
        (1, 1, 1),
        "no PutBucketVersioning while versioning is off"
    );
    assert_eq!(created.id, BUCKET);
    assert_eq!(
        created.attrs,
        obj(json!({
            "name": BUCKET,
            "arn": format!("arn:aws:s3:::{BUCKET}"),
            "regional_domain_name": format!("{BUCKET}.s3.eu-west-1.amazonaws.com"),
            "domain_name": format!("{BUCKET}.s3.amazonaws.com"),
        }))
    );
}

#[tokio::test]
async fn create_in_us_east_1_sends_no_location_constraint_and_checks_the_name_first() {
    // us-east-1 answers CreateBucket of a bucket this account owns with 200: look first.
    let head = mock!(Client::head_bucket)
        .match_requests(|r| r.bucket() == Some(BUCKET))
        .then_http_response(head_missing);
    let create = mock!(Client::create_bucket)
        .match_requests(|r| r.bucket() == Some(BUCKET) && r.create_bucket_configuration().is_none())
        .then_output(|| CreateBucketOutput::builder().build());
    let block = blocked_by_default();
    let versioning = mock!(Client::put_bucket_versioning)
        .match_requests(|r| {
            r.versioning_configuration().and_then(|v| v.status())
                == Some(&BucketVersioningStatus::Enabled)
        })
        .then_output(|| PutBucketVersioningOutput::builder().build());
    let tagging = tagged_with_owner_tags();
    let rt = Bucket::new(aws_in(
        REGION,
        &[&head, &create, &block, &versioning, &tagging],
    ));

    let desired = bucket_desired(json!({"versioning": true}));
    let created = rt.create(&ctx_in(REGION), &desired).await.expect("creates");

    assert_eq!(
        [
            head.num_calls(),
            create.num_calls(),
            block.num_calls(),
            versioning.num_calls(),
            tagging.num_calls()
        ],
        [1; 5]
    );
    assert_eq!(created.props, desired);
    assert_eq!(
        created.attrs["regional_domain_name"],
        json!(format!("{BUCKET}.s3.us-east-1.amazonaws.com"))
    );
}

#[tokio::test]
async fn a_bucket_name_another_account_holds_is_an_invalid_error_naming_the_global_namespace() {
    let create = mock!(Client::create_bucket).then_http_response(|| {
        s3_error(
            409,
            "BucketAlreadyExists",
            "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
        )
    });
    let rt = Bucket::new(aws_in(OTHER_REGION, &[&create]));

    let err = rt
        .create(&ctx_in(OTHER_REGION), &bucket_desired(json!({})))
        .await
        .expect_err("the name is taken");

    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message
            .contains("bucket names are global across all AWS accounts"),
        "{err}"
    );
    assert!(err.message.contains(BUCKET), "{err}");
}

#[tokio::test]
async fn an_owned_bucket_of_someone_else_in_this_account_is_refused_not_taken_over() {
    let create = mock!(Client::create_bucket).then_http_response(|| {
        s3_error(
            409,
            "BucketAlreadyOwnedByYou",
            "Your previous request to create the named bucket succeeded and you already own it.",
        )
    });
    let versioning = mock!(Client::get_bucket_versioning).then_http_response(|| {
        xml_ok(r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>"#)
    });
    let block = mock!(Client::get_public_access_block).then_http_response(no_block);
    let tags = mock!(Client::get_bucket_tagging)
        .then_http_response(|| xml_ok(&tagging_xml(&[("plinth:stack", "other"), ("team", "x")])));
    let settings = new_bucket_settings();
    let rt = Bucket::new(aws_reading(
        OTHER_REGION,
        &with_new_settings(&[&create, &versioning, &block, &tags], &settings),
    ));

    let err = rt
        .create(&ctx_in(OTHER_REGION), &bucket_desired(json!({})))
        .await
        .expect_err("not this stack's bucket");

    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message.contains("already exists in this account")
            && err.message.contains("not this stack's"),
        "{err}"
    );
    assert_eq!(tags.num_calls(), 1, "the owner tags decided");
}

// ---------------------------------------------------------------------------------------------
// s3.bucket: read

fn no_block() -> HttpResponse {
    s3_error(
        404,
        "NoSuchPublicAccessBlockConfiguration",
        "The public access block configuration was not found",
    )
}

fn tagging_xml(tags: &[(&str, &str)]) -> String {
    let tags: String = tags
        .iter()
        .map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>"))
        .collect();
    format!(
        r#"<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>{tags}</TagSet></Tagging>"#
    )
}

#[tokio::test]
async fn a_bucket_without_any_configuration_reads_as_the_canonical_defaults() {
    let head = head_ok();
    let versioning = mock!(Client::get_bucket_versioning).then_http_response(|| {
        xml_ok(r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>"#)
    });
    let block = mock!(Client::get_public_access_block).then_http_response(no_block);
    let tags = mock!(Client::get_bucket_tagging)
        .then_http_response(|| s3_error(404, "NoSuchTagSet", "The TagSet does not exist"));
    let settings = new_bucket_settings();
    let rt = Bucket::new(aws_reading(
        REGION,
        &with_new_settings(&[&head, &versioning, &block, &tags], &settings),
    ));

    let prior = obj(json!({"force_destroy": true}));
    let read = rt
        .read(&ctx_in(REGION), BUCKET, &prior)
        .await
        .expect("reads")
        .expect("exists");

    let expected = normalized(
        &rt,
        json!({
            "name": BUCKET,
            "force_destroy": true,
            "public_access_block": {
                "block_public_acls": false, "ignore_public_acls": false,
                "block_public_policy": false, "restrict_public_buckets": false
            },
        }),
    );
    assert_eq!(read.props, expected);
    assert_eq!(
        serde_json::to_string(&read.props).expect("json"),
        serde_json::to_string(&expected).expect("json"),
        "same keys in the same order"
    );
    assert_eq!(read.props["versioning"], json!(false));
    assert_eq!(read.props["tags"], json!({}));
}

#[tokio::test]
async fn suspended_versioning_reads_as_off_and_an_unchanged_bucket_as_its_desired_props() {
    let head = head_ok();
    let versioning = mock!(Client::get_bucket_versioning).then_http_response(|| {
        xml_ok(r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Suspended</Status></VersioningConfiguration>"#)
    });
    let block = mock!(Client::get_public_access_block).then_http_response(|| {
        xml_ok(r#"<PublicAccessBlockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>"#)
    });
    let tags = mock!(Client::get_bucket_tagging).then_http_response(|| {
        xml_ok(&tagging_xml(&[
            ("plinth:workspace", "default"),
            ("plinth:stack", "lab"),
            ("aws:cloudformation:stack-name", "old"),
            ("plinth:resource", "site"),
        ]))
    });
    let settings = new_bucket_settings();
    let rt = Bucket::new(aws_reading(
        REGION,
        &with_new_settings(&[&head, &versioning, &block, &tags], &settings),
    ));

    let desired = bucket_desired(json!({}));
    let read = rt
        .read(&ctx_in(REGION), BUCKET, &desired)
        .await
        .expect("reads")
        .expect("exists");

    assert_eq!(read.props["versioning"], json!(false));
    assert_eq!(read.props, desired, "no difference to plan");
}

#[tokio::test]
async fn a_missing_bucket_reads_as_gone() {
    let head = mock!(Client::head_bucket).then_http_response(head_missing);
    let rt = Bucket::new(aws_in(REGION, &[&head]));

    let read = rt
        .read(&ctx_in(REGION), BUCKET, &Props::new())
        .await
        .expect("reads");

    assert!(read.is_none());
    assert_eq!(head.num_calls(), 1);
}

#[tokio::test]
async fn a_bucket_in_another_region_is_reported_with_its_region() {
    let head = mock!(Client::head_bucket).then_http_response(|| {
        let mut response = with_status(301, SdkBody::empty(), "application/xml");
        response
            .headers_mut()
            .insert("x-amz-bucket-region", OTHER_REGION);
        response
    });
    let rt = Bucket::new(aws_in(REGION, &[&head]));

    let err = rt
        .read(&ctx_in(REGION), BUCKET, &Props::new())
        .await
        .expect_err("wrong region");

    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("is in eu-west-1"), "{err}");
}

#[test]
fn bucket_names_are_checked_against_s3s_rules() {
    let rt = Bucket::new(mocked_aws());
    for bad in [
        "ab",
        "My-Bucket",
        "-starts-with-hyphen",
        "ends-with-dot.",
        "192.168.5.4",
        "two..dots",
        "under_score",
    ] {
        let found = issues(&rt, json!({"name": bad}));
        assert!(found.len() == 1 && found[0].0 == "name", "{bad}: {found:?}");
    }
    assert!(issues(&rt, json!({"name": "demo-site.v2"})).is_empty());
    assert!(issues(&rt, json!({"name": format!("demo-{UNKNOWN}")})).is_empty());
}

#[test]
fn a_partial_public_access_block_is_completed_with_true() {
    let props = bucket_desired(json!({"public_access_block": {"block_public_policy": false}}));
    assert_eq!(
        props["public_access_block"],
        json!({
            "block_public_acls": true, "ignore_public_acls": true,
            "block_public_policy": false, "restrict_public_buckets": true
        })
    );
    assert_eq!(
        (&props["versioning"], &props["force_destroy"]),
        (&json!(false), &json!(false))
    );
}

// ---------------------------------------------------------------------------------------------
// s3.bucket: update

#[tokio::test]
async fn update_turns_versioning_off_by_suspending_it_and_removes_emptied_tags() {
    let versioning = mock!(Client::put_bucket_versioning)
        .match_requests(|r| {
            r.versioning_configuration().and_then(|v| v.status())
                == Some(&BucketVersioningStatus::Suspended)
        })
        .then_output(|| PutBucketVersioningOutput::builder().build());
    let untag = mock!(Client::delete_bucket_tagging)
        .match_requests(|r| r.bucket() == Some(BUCKET))
        .then_output(|| {
            aws_sdk_s3::operation::delete_bucket_tagging::DeleteBucketTaggingOutput::builder()
                .build()
        });
    let rt = Bucket::new(aws_in(REGION, &[&versioning, &untag]));
    let before = bucket_desired(json!({"versioning": true}));
    let after = normalized(&rt, json!({"name": BUCKET}));

    let updated = rt
        .update(&ctx_in(REGION), BUCKET, &before, &after)
        .await
        .expect("updates");

    assert_eq!((versioning.num_calls(), untag.num_calls()), (1, 1));
    assert_eq!(updated.props, after);
}

// ---------------------------------------------------------------------------------------------
// s3.bucket: delete

fn versions_page(
    range: std::ops::Range<usize>,
    markers: usize,
    next: Option<(&str, &str)>,
) -> String {
    let versions: String = range
        .map(|i| {
            format!(
                "<Version><Key>file-{i:04}.txt</Key><VersionId>v{i}</VersionId><IsLatest>false</IsLatest><LastModified>2024-05-02T09:12:41.000Z</LastModified><ETag>&quot;5d41402abc4b2a76b9719d911017c592&quot;</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass><Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID></Owner></Version>"
            )
        })
        .collect();
    let delete_markers: String = (0..markers)
        .map(|i| {
            format!(
                "<DeleteMarker><Key>gone-{i}.txt</Key><VersionId>dm{i}</VersionId><IsLatest>true</IsLatest><LastModified>2024-05-03T10:00:00.000Z</LastModified><Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID></Owner></DeleteMarker>"
            )
        })
        .collect();
    let (truncated, next) = match next {
        Some((key, version)) => (
            "true",
            format!("<NextKeyMarker>{key}</NextKeyMarker><NextVersionIdMarker>{version}</NextVersionIdMarker>"),
        ),
        None => ("false", String::new()),
    };
    format!(
        r#"<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>{BUCKET}</Name><Prefix></Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>{next}<MaxKeys>1000</MaxKeys><IsTruncated>{truncated}</IsTruncated>{versions}{delete_markers}</ListVersionsResult>"#
    )
}

fn deleted_quietly(expected: Vec<(String, Option<String>)>) -> Rule {
    mock!(Client::delete_objects)
        .match_requests(move |r| {
            let Some(delete) = r.delete() else {
                return false;
            };
            let sent: Vec<(String, Option<String>)> = delete
                .objects()
                .iter()
                .map(|o| (o.key().to_string(), o.version_id().map(str::to_string)))
                .collect();
            r.bucket() == Some(BUCKET) && delete.quiet() == Some(true) && sent == expected
        })
        .then_output(|| DeleteObjectsOutput::builder().build())
}

fn version_ids(range: std::ops::Range<usize>) -> Vec<(String, Option<String>)> {
    range
        .map(|i| (format!("file-{i:04}.txt"), Some(format!("v{i}"))))
        .collect()
}

#[tokio::test]
async fn force_destroy_deletes_every_version_and_delete_marker_in_batches_then_the_bucket() {
    // Page 1: 1000 versions and 3 delete markers (two batches); page 2: 2 more versions.
    let page1 = mock!(Client::list_object_versions)
        .match_requests(|r| r.bucket() == Some(BUCKET) && r.key_marker().is_none())
        .then_http_response(|| xml_ok(&versions_page(0..1000, 3, Some(("file-0999.txt", "v999")))));
    let batch1 = deleted_quietly(version_ids(0..1000));
    let markers: Vec<(String, Option<String>)> = (0..3)
        .map(|i| (format!("gone-{i}.txt"), Some(format!("dm{i}"))))
        .collect();
    let batch2 = deleted_quietly(markers);
    let page2 = mock!(Client::list_object_versions)
        .match_requests(|r| {
            r.key_marker() == Some("file-0999.txt") && r.version_id_marker() == Some("v999")
        })
        .then_http_response(|| xml_ok(&versions_page(1000..1002, 0, None)));
    let batch3 = deleted_quietly(version_ids(1000..1002));
    let delete = mock!(Client::delete_bucket)
        .match_requests(|r| r.bucket() == Some(BUCKET))
        .then_output(|| DeleteBucketOutput::builder().build());
    let rt = Bucket::new(aws_in(
        REGION,
        &[&page1, &batch1, &batch2, &page2, &batch3, &delete],
    ));

    let props = bucket_desired(json!({"force_destroy": true}));
    rt.delete(&ctx_in(REGION), BUCKET, &props)
        .await
        .expect("deletes");

    assert_eq!(
        [
            page1.num_calls(),
            batch1.num_calls(),
            batch2.num_calls(),
            page2.num_calls(),
            batch3.num_calls(),
            delete.num_calls()
        ],
        [1; 6]
    );
}

#[tokio::test]
async fn a_key_deleteobjects_could_not_delete_fails_the_destroy_naming_it() {
    let page = mock!(Client::list_object_versions)
        .then_http_response(|| xml_ok(&versions_page(0..1, 0, None)));
    let refused = mock!(Client::delete_objects).then_http_response(|| {
        xml_ok(r#"<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Error><Key>file-0000.txt</Key><VersionId>v0</VersionId><Code>AccessDenied</Code><Message>Access Denied because object protected by object lock.</Message></Error></DeleteResult>"#)
    });
    let rt = Bucket::new(aws_in(REGION, &[&page, &refused]));

    let props = bucket_desired(json!({"force_destroy": true}));
    let err = rt
        .delete(&ctx_in(REGION), BUCKET, &props)
        .await
        .expect_err("a version is locked");

    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(
        err.message.contains("file-0000.txt") && err.message.contains("object lock"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bucket_with_objects_is_not_emptied_without_force_destroy() {
    let delete = mock!(Client::delete_bucket).then_http_response(|| {
        s3_error(
            409,
            "BucketNotEmpty",
            "The bucket you tried to delete is not empty",
        )
    });
    let rt = Bucket::new(aws_in(REGION, &[&delete]));

    let err = rt
        .delete(&ctx_in(REGION), BUCKET, &bucket_desired(json!({})))
        .await
        .expect_err("not empty");

    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(
        err.message,
        format!(
            "bucket {BUCKET} is not empty (objects or old versions remain): set \
             `force_destroy: true` (and apply it) to have destroy empty it"
        )
    );
    assert_eq!(delete.num_calls(), 1, "no listing, no DeleteObjects");
}

#[tokio::test]
async fn deleting_a_bucket_that_is_already_gone_succeeds() {
    let delete = mock!(Client::delete_bucket).then_http_response(no_such_bucket);
    let rt = Bucket::new(aws_in(REGION, &[&delete]));

    rt.delete(&ctx_in(REGION), BUCKET, &bucket_desired(json!({})))
        .await
        .expect("already gone is done");

    assert_eq!(delete.num_calls(), 1);
}

// ---------------------------------------------------------------------------------------------
// s3.objects

const HI_MD5: &str = "aa162a988073e543610734f26010e848"; // "<h1>hi</h1>\n"
const HELLO_AGAIN_MD5: &str = "f2034b240a895c96bcb29c5adb5a57b5"; // "<h1>hello again</h1>\n"
const CSS_MD5: &str = "5217c451387ecae56cb932c4c7942b22"; // "body { color: red }\n"
const JSON_MD5: &str = "4588ff3797b78d819d858fa3bdd82b09"; // "{\"a\":1}\n"

/// A site folder: index.html, css/site.css, data.json.
fn site_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("site/css")).expect("mkdir");
    std::fs::write(dir.path().join("site/index.html"), "<h1>hi</h1>\n").expect("write");
    std::fs::write(
        dir.path().join("site/css/site.css"),
        "body { color: red }\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("site/data.json"), "{\"a\":1}\n").expect("write");
    dir
}

fn objects_desired(dir: &Path, extra: Value) -> Props {
    let mut props = obj(json!({"bucket": BUCKET, "source": "site", "prefix": "web"}));
    props.extend(obj(extra));
    normalized_in(&Objects::new(mocked_aws()), Value::Object(props), dir)
}

fn digest_of(props: &Props) -> Value {
    Objects::new(mocked_aws()).known_attrs(props)["digest"].clone()
}

#[test]
fn normalize_lists_every_file_under_the_prefix_with_its_md5() {
    let dir = site_folder();
    let props = objects_desired(dir.path(), json!({}));

    assert_eq!(props["prefix"], json!("web/"), "a trailing slash is added");
    assert_eq!(
        props["files"],
        json!({
            "web/css/site.css": CSS_MD5,
            "web/data.json": JSON_MD5,
            "web/index.html": HI_MD5,
        })
    );
    assert_eq!(
        props["source"],
        json!("site"),
        "kept as written: relative to the stack file"
    );
    let attrs = Objects::new(mocked_aws()).known_attrs(&props);
    assert_eq!(attrs["count"], json!(3));
    assert_eq!(attrs["digest"].as_str().map(str::len), Some(64));

    let again = normalized_in(
        &Objects::new(mocked_aws()),
        Value::Object(props.clone()),
        dir.path(),
    );
    assert_eq!(again, props, "normalizing twice changes nothing");
}

#[test]
fn the_digest_follows_contents_and_names_and_nothing_else() {
    let dir = site_folder();
    let first = digest_of(&objects_desired(dir.path(), json!({})));
    assert_eq!(digest_of(&objects_desired(dir.path(), json!({}))), first);
    // Rewriting a file with the same bytes is no change.
    std::fs::write(dir.path().join("site/index.html"), "<h1>hi</h1>\n").expect("write");
    assert_eq!(digest_of(&objects_desired(dir.path(), json!({}))), first);

    std::fs::write(dir.path().join("site/index.html"), "<h1>hello again</h1>\n").expect("write");
    let edited = digest_of(&objects_desired(dir.path(), json!({})));
    assert_ne!(edited, first);

    std::fs::rename(
        dir.path().join("site/data.json"),
        dir.path().join("site/data2.json"),
    )
    .expect("rename");
    assert_ne!(digest_of(&objects_desired(dir.path(), json!({}))), edited);
}

#[test]
fn a_missing_source_folder_is_an_invalid_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut props = obj(json!({"bucket": BUCKET, "source": "nowhere"}));
    let err = Objects::new(mocked_aws())
        .normalize(
            &mut props,
            &NormalizeContext {
                base_dir: dir.path().to_path_buf(),
            },
        )
        .expect_err("no folder");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message.starts_with("source folder") && err.message.ends_with("does not exist"),
        "{err}"
    );
}

#[test]
fn an_unknown_bucket_still_gives_known_files_and_digest() {
    let dir = site_folder();
    let props = objects_desired(dir.path(), json!({"bucket": UNKNOWN}));
    assert_eq!(props["files"]["web/index.html"], json!(HI_MD5));
    assert!(Objects::new(mocked_aws()).known_attrs(&props)["digest"].is_string());
}

#[test]
fn content_types_come_from_the_extension_with_a_charset_for_text_unless_overridden() {
    let overrides = obj(json!({".webmanifest": "application/manifest+json", ".HTML": "text/html"}));
    let cases = [
        ("web/index.html", None, "text/html; charset=utf-8"),
        ("web/app.js", None, "text/javascript; charset=utf-8"),
        ("web/app.mjs", None, "application/javascript; charset=utf-8"),
        ("web/data.json", None, "application/json; charset=utf-8"),
        ("web/logo.png", None, "image/png"),
        ("web/logo.svg", None, "image/svg+xml"),
        ("web/blob.unknownext", None, "application/octet-stream"),
        (
            "web/site.webmanifest",
            Some(&overrides),
            "application/manifest+json",
        ),
        ("web/INDEX.HTML", Some(&overrides), "text/html"),
    ];
    for (key, overrides, expected) in cases {
        assert_eq!(content_type(key, overrides), expected, "{key}");
    }
}

/// What `read` reports for a prefix holding these (key, md5) objects.
fn objects_read(dir: &Path, objects: &[(&str, &str)]) -> Props {
    let mut props = objects_desired(dir, json!({}));
    let files: serde_json::Map<String, Value> = objects
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    props.insert("files".into(), Value::Object(files));
    props
}

fn put(key: &'static str, content_type: &'static str) -> Rule {
    mock!(Client::put_object)
        .match_requests(move |r| {
            r.bucket() == Some(BUCKET)
                && r.key() == Some(key)
                && r.content_type() == Some(content_type)
                && r.cache_control().is_none()
        })
        .then_output(|| PutObjectOutput::builder().e_tag("\"x\"").build())
}

#[tokio::test]
async fn update_uploads_only_the_changed_file_and_deletes_the_removed_key() {
    let dir = site_folder();
    let before = objects_read(
        dir.path(),
        &[
            ("web/css/site.css", CSS_MD5),
            ("web/data.json", JSON_MD5),
            ("web/index.html", HI_MD5),
            ("web/old.js", "6cd237310244539a24846274a3f71803"),
        ],
    );
    std::fs::write(dir.path().join("site/index.html"), "<h1>hello again</h1>\n").expect("write");
    let after = objects_desired(dir.path(), json!({}));
    let upload = put("web/index.html", "text/html; charset=utf-8");
    let delete = deleted_quietly(vec![("web/old.js".to_string(), None)]);
    let rt = Objects::new(aws_in(REGION, &[&upload, &delete]));
    let ctx = ctx_in(REGION).with_base_dir(dir.path().to_path_buf());

    let updated = rt
        .update(&ctx, &format!("{BUCKET}/web/"), &before, &after)
        .await
        .expect("updates");

    assert_eq!((upload.num_calls(), delete.num_calls()), (1, 1));
    assert_eq!(updated.id, format!("{BUCKET}/web/"));
    assert_eq!(updated.props, after);
    assert_eq!(
        updated.props["files"]["web/index.html"],
        json!(HELLO_AGAIN_MD5)
    );
    assert_eq!(updated.attrs, rt.known_attrs(&after));
    assert_eq!(
        ctx.notices(),
        ["uploaded 1 file(s), deleted 1: web/index.html, web/old.js"]
    );
}

#[tokio::test]
async fn create_lists_the_prefix_and_uploads_with_overrides_and_cache_control() {
    let dir = site_folder();
    let props = objects_desired(
        dir.path(),
        json!({"content_types": {".json": "application/vnd.demo+json"}, "cache_control": "max-age=60"}),
    );
    let list = mock!(Client::list_objects_v2)
        .match_requests(|r| r.bucket() == Some(BUCKET) && r.prefix() == Some("web/"))
        .then_http_response(|| {
            xml_ok(&format!(
                r#"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>{BUCKET}</Name><Prefix>web/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>web/css/site.css</Key><LastModified>2024-05-02T09:12:41.000Z</LastModified><ETag>&quot;{CSS_MD5}&quot;</ETag><Size>20</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"#
            ))
        });
    // Two uploads in parallel: in whichever order they go out.
    let uploads = mock!(Client::put_object)
        .match_requests(|r| {
            r.cache_control() == Some("max-age=60")
                && matches!(
                    (r.key(), r.content_type()),
                    (Some("web/data.json"), Some("application/vnd.demo+json"))
                        | (Some("web/index.html"), Some("text/html; charset=utf-8"))
                )
        })
        .then_output(|| PutObjectOutput::builder().build());
    let aws = mocked_aws();
    aws.insert_s3(
        REGION,
        mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[&list, &uploads], |c| c
            .retry_config(RetryConfig::disabled())),
    );
    let rt = Objects::new(aws);
    let ctx = ctx_in(REGION).with_base_dir(dir.path().to_path_buf());

    let created = rt.create(&ctx, &props).await.expect("creates");

    assert_eq!((list.num_calls(), uploads.num_calls()), (1, 2));
    assert_eq!(created.props, props);
    assert_eq!(
        ctx.notices(),
        ["uploaded 2 file(s), deleted 0: web/data.json, web/index.html"]
    );
}

#[tokio::test]
async fn read_lists_every_page_and_takes_etags_as_md5s() {
    let page = |token: Option<&str>, key: &str, md5: &str| {
        let next = token
            .map(|t| format!("<NextContinuationToken>{t}</NextContinuationToken>"))
            .unwrap_or_default();
        format!(
            r#"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>{BUCKET}</Name><Prefix>web/</Prefix><KeyCount>1</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>{}</IsTruncated>{next}<Contents><Key>{key}</Key><LastModified>2024-05-02T09:12:41.000Z</LastModified><ETag>&quot;{md5}&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"#,
            token.is_some()
        )
    };
    let first = page(Some("1ueGcxLPRx1Tr"), "web/a.html", HI_MD5);
    let second = page(None, "web/b.css", CSS_MD5);
    let page1 = mock!(Client::list_objects_v2)
        .match_requests(|r| r.continuation_token().is_none())
        .then_http_response(move || xml_ok(&first));
    let page2 = mock!(Client::list_objects_v2)
        .match_requests(|r| r.continuation_token() == Some("1ueGcxLPRx1Tr"))
        .then_http_response(move || xml_ok(&second));
    let rt = Objects::new(aws_in(REGION, &[&page1, &page2]));
    let prior =
        obj(json!({"source": "/srv/site", "content_types": {}, "cache_control": "no-cache"}));

    let read = rt
        .read(&ctx_in(REGION), &format!("{BUCKET}/web/"), &prior)
        .await
        .expect("reads")
        .expect("exists");

    assert_eq!(
        Value::Object(read.props),
        json!({
            "bucket": BUCKET,
            "source": "/srv/site",
            "prefix": "web/",
            "content_types": {},
            "cache_control": "no-cache",
            "files": {"web/a.html": HI_MD5, "web/b.css": CSS_MD5},
        })
    );
    assert_eq!(read.attrs["count"], json!(2));
}

#[tokio::test]
async fn objects_of_a_deleted_bucket_read_as_gone_and_delete_as_done() {
    let list = mock!(Client::list_objects_v2).then_http_response(no_such_bucket);
    let list_again = mock!(Client::list_objects_v2).then_http_response(no_such_bucket);
    let rt = Objects::new(aws_in(REGION, &[&list, &list_again]));
    let id = format!("{BUCKET}/");

    let read = rt
        .read(&ctx_in(REGION), &id, &Props::new())
        .await
        .expect("reads");
    rt.delete(&ctx_in(REGION), &id, &Props::new())
        .await
        .expect("nothing left to delete");

    assert!(read.is_none());
    assert_eq!((list.num_calls(), list_again.num_calls()), (1, 1));
}

// ---------------------------------------------------------------------------------------------
// s3.bucket_policy

fn oac_grant(source_arn: Value) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowCloudFrontServicePrincipalReadOnly",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{BUCKET}/*"),
            "Condition": {"StringEquals": {"AWS:SourceArn": source_arn}}
        }]
    })
}

#[test]
fn allow_cloudfront_becomes_the_standard_oac_grant() {
    let rt = BucketPolicy::new(mocked_aws());

    let one = normalized(&rt, json!({"bucket": BUCKET, "allow_cloudfront": CDN_ARN}));
    assert_eq!(
        Value::Object(one),
        json!({"bucket": BUCKET, "policy": oac_grant(json!(CDN_ARN))})
    );

    let two = normalized(
        &rt,
        json!({"bucket": BUCKET, "allow_cloudfront": [CDN_ARN, CDN_ARN_2]}),
    );
    assert_eq!(two["policy"], oac_grant(json!([CDN_ARN_2, CDN_ARN])));

    let pending = normalized(&rt, json!({"bucket": BUCKET, "allow_cloudfront": UNKNOWN}));
    assert!(is_unknown(&pending["policy"]), "{pending:?}");
    let pending = normalized(&rt, json!({"bucket": UNKNOWN, "allow_cloudfront": CDN_ARN}));
    assert!(is_unknown(&pending["policy"]), "{pending:?}");
}

#[test]
fn a_json_string_policy_is_parsed_and_key_order_does_not_matter() {
    let rt = BucketPolicy::new(mocked_aws());
    let text = r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::demo-site-123456789012/*","Principal":"*"}],"Version":"2012-10-17"}"#;
    let from_text = normalized(&rt, json!({"bucket": BUCKET, "policy": text}));
    let from_map = normalized(
        &rt,
        json!({"bucket": BUCKET, "policy": {
            "Version": "2012-10-17",
            "Statement": [{"Principal": "*", "Effect": "Allow", "Action": "s3:GetObject",
                           "Resource": "arn:aws:s3:::demo-site-123456789012/*"}]
        }}),
    );
    assert_eq!(from_text, from_map);
}

#[test]
fn a_policy_needs_exactly_one_of_policy_or_allow_cloudfront() {
    let rt = BucketPolicy::new(mocked_aws());
    let both = issues(
        &rt,
        json!({"bucket": BUCKET, "policy": {"Version": "2012-10-17"}, "allow_cloudfront": CDN_ARN}),
    );
    assert_eq!(both.len(), 1, "{both:?}");
    assert!(both[0].1.contains("exactly one"), "{both:?}");
    let neither = issues(&rt, json!({"bucket": BUCKET}));
    assert_eq!(neither.len(), 1, "{neither:?}");
    assert!(neither[0].1.contains("exactly one"), "{neither:?}");
    assert!(issues(&rt, json!({"bucket": BUCKET, "allow_cloudfront": CDN_ARN})).is_empty());
    let not_an_arn = issues(
        &rt,
        json!({"bucket": BUCKET, "allow_cloudfront": "E2QWRUHAPOMQZL"}),
    );
    assert_eq!(not_an_arn.len(), 1, "{not_an_arn:?}");
    let bad_json = issues(&rt, json!({"bucket": BUCKET, "policy": "{not json"}));
    assert!(bad_json[0].1.contains("not valid JSON"), "{bad_json:?}");

    // Both given also fails where normalize runs before check (plan).
    let mut props = obj(json!({"bucket": BUCKET, "policy": {}, "allow_cloudfront": CDN_ARN}));
    let err = rt
        .normalize(&mut props, &NormalizeContext::default())
        .expect_err("both");
    assert_eq!(err.kind, ErrorKind::Invalid);
}

#[tokio::test]
async fn a_bucket_without_a_policy_reads_as_gone() {
    let get = mock!(Client::get_bucket_policy)
        .match_requests(|r| r.bucket() == Some(BUCKET))
        .then_http_response(|| {
            s3_error(
                404,
                "NoSuchBucketPolicy",
                "The bucket policy does not exist",
            )
        });
    let rt = BucketPolicy::new(aws_in(REGION, &[&get]));

    let read = rt
        .read(&ctx_in(REGION), BUCKET, &Props::new())
        .await
        .expect("reads");

    assert!(read.is_none());
    assert_eq!(get.num_calls(), 1);
}

#[tokio::test]
async fn the_grant_is_put_as_json_and_reads_back_equal() {
    let rt_offline = BucketPolicy::new(mocked_aws());
    let desired = normalized(
        &rt_offline,
        json!({"bucket": BUCKET, "allow_cloudfront": CDN_ARN}),
    );
    let expected = oac_grant(json!(CDN_ARN));
    let sent = expected.clone();
    let put = mock!(Client::put_bucket_policy)
        .match_requests(move |r| {
            r.bucket() == Some(BUCKET)
                && r.policy()
                    .and_then(|p| serde_json::from_str::<Value>(p).ok())
                    .as_ref()
                    == Some(&sent)
        })
        .then_output(|| PutBucketPolicyOutput::builder().build());
    // S3 returns the document compacted, its keys in whatever order it keeps them.
    let get = mock!(Client::get_bucket_policy).then_http_response(|| {
        with_status(
            200,
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Condition":{{"StringEquals":{{"AWS:SourceArn":"{CDN_ARN}"}}}},"Resource":"arn:aws:s3:::{BUCKET}/*","Action":"s3:GetObject","Principal":{{"Service":"cloudfront.amazonaws.com"}},"Effect":"Allow","Sid":"AllowCloudFrontServicePrincipalReadOnly"}}]}}"#
            ),
            "application/json",
        )
    });
    let rt = BucketPolicy::new(aws_in(REGION, &[&put, &get]));

    let created = rt.create(&ctx_in(REGION), &desired).await.expect("puts");
    let read = rt
        .read(&ctx_in(REGION), BUCKET, &desired)
        .await
        .expect("reads")
        .expect("exists");

    assert_eq!(put.num_calls(), 1);
    assert_eq!(created.id, BUCKET);
    assert_eq!(read.props, desired, "no difference to plan");
}
