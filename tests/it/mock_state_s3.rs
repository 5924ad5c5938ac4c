//! State on S3 against replayed S3 answers: a state write that finds someone else's state
//! (its lock was broken) is refused and keeps the journal; a conditional write whose answer
//! was lost, retried and refused, is recognised as this run's own.

use std::sync::{Arc, Mutex};

use aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::operation::put_object::{PutObjectInput, PutObjectOutput};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::BucketVersioningStatus;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use plinth_aws::state_s3::S3Store;
use plinth_core::state::store::StoreError;
use plinth_core::state::{JournalEntry, State, StateStore};

use crate::mock_support::{mocked_aws, REGION};

const BUCKET: &str = "class-state";
const FOLDER: &str = "fall/lab/ana/";

fn store(rules: &[&Rule]) -> S3Store {
    let aws = mocked_aws();
    aws.insert_s3(
        REGION,
        mock_client!(aws_sdk_s3, RuleMode::Sequential, rules, |c| c
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())),
    );
    S3Store::new(&aws, REGION, BUCKET, "fall")
}

/// An S3 error exactly as S3 sends it.
fn s3_error(status: u16, code: &str, message: &str, extra: &str) -> HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>{extra}<RequestId>8BBD1F3C2D5E4A7B</RequestId><HostId>Xk3n0lfc86RMDiAhOtNc=</HostId></Error>"
    );
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(body),
    );
    response
        .headers_mut()
        .insert("content-type", "application/xml");
    response
}

fn precondition_failed(condition: &str) -> HttpResponse {
    s3_error(
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
        &format!("<Condition>{condition}</Condition>"),
    )
}

fn put_ok(etag: &'static str) -> Rule {
    mock!(aws_sdk_s3::Client::put_object)
        .then_output(move || PutObjectOutput::builder().e_tag(etag).build())
}

fn object(text: String, etag: &'static str) -> GetObjectOutput {
    GetObjectOutput::builder()
        .body(ByteStream::from(text.into_bytes()))
        .e_tag(etag)
        .build()
}

/// What every lock takes: the lock object, the bucket's versioning, no state yet, no journal.
fn locking() -> Vec<Rule> {
    vec![
        mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r: &PutObjectInput| {
                r.key() == Some(&format!("{FOLDER}lock.json")) && r.if_none_match() == Some("*")
            })
            .then_output(|| PutObjectOutput::builder().e_tag("\"lock-1\"").build()),
        mock!(aws_sdk_s3::Client::get_bucket_versioning).then_output(|| {
            GetBucketVersioningOutput::builder()
                .status(BucketVersioningStatus::Enabled)
                .build()
        }),
        // Not moved elsewhere, and no state yet.
        mock!(aws_sdk_s3::Client::get_object).then_http_response(|| {
            s3_error(
                404,
                "NoSuchKey",
                "The specified key does not exist.",
                "<Key>fall/lab/ana/moved-to</Key>",
            )
        }),
        mock!(aws_sdk_s3::Client::get_object).then_http_response(|| {
            s3_error(
                404,
                "NoSuchKey",
                "The specified key does not exist.",
                "<Key>fall/lab/ana/state.json</Key>",
            )
        }),
        mock!(aws_sdk_s3::Client::list_objects_v2)
            .then_output(|| ListObjectsV2Output::builder().build()),
    ]
}

/// When the lock is let go of: someone else's lock is there, so it is left alone.
fn someone_elses_lock() -> Rule {
    mock!(aws_sdk_s3::Client::get_object).then_output(|| {
        object(
            r#"{"pid": 1, "host": "h", "command": "plinth apply", "since": "x", "id": "theirs"}"#
                .into(),
            "\"lock-2\"",
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_write_that_finds_someone_elses_state_is_refused_and_keeps_the_journal() {
    let others = State::new("lab", "ana");
    let theirs = serde_json::to_string(&others).expect("json");
    let mut rules = locking();
    rules.push(put_ok("\"entry-1\""));
    rules.push(
        mock!(aws_sdk_s3::Client::put_object)
            .then_http_response(|| precondition_failed("If-None-Match")),
    );
    rules.push(
        mock!(aws_sdk_s3::Client::get_object)
            .then_output(move || object(theirs.clone(), "\"state-theirs\"")),
    );
    rules.push(someone_elses_lock());
    let refs: Vec<&Rule> = rules.iter().collect();
    let store = store(&refs);

    let (lock, mut state) = store
        .lock_and_read("lab", "ana", "plinth apply")
        .expect("locked");
    lock.record(&JournalEntry::Remove { name: "old".into() })
        .expect("journaled");
    let err = lock.write(&mut state).expect_err("refused");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("nothing was overwritten"), "{err}");
    drop(lock);
    // Sequential rules: a DeleteObject of the journal (or of their lock) would have failed.
    for rule in &rules {
        assert_eq!(rule.num_calls(), 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_write_whose_answer_was_lost_is_recognised_as_this_runs_own() {
    let written: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let mut rules = locking();
    rules.push(
        mock!(aws_sdk_s3::Client::put_object)
            .then_http_response(|| precondition_failed("If-None-Match")),
    );
    rules.push(mock!(aws_sdk_s3::Client::get_object).then_output({
        let written = written.clone();
        move || object(written.lock().expect("lock").clone(), "\"state-ours\"")
    }));
    rules.push(
        mock!(aws_sdk_s3::Client::list_objects_v2)
            .then_output(|| ListObjectsV2Output::builder().build()),
    );
    rules.push(someone_elses_lock());
    let refs: Vec<&Rule> = rules.iter().collect();
    let store = store(&refs);

    let (lock, mut state) = store
        .lock_and_read("lab", "ana", "plinth apply")
        .expect("locked");
    // What the first attempt wrote before its answer was lost.
    let mut first = state.clone();
    first.serial += 1;
    *written.lock().expect("lock") = serde_json::to_string_pretty(&first).expect("json");
    lock.write(&mut state).expect("recognised as ours");
    assert_eq!(state.serial, 1);
    drop(lock);
    for rule in &rules {
        assert_eq!(rule.num_calls(), 1);
    }
}
