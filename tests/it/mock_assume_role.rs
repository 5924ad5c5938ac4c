//! A student's account is reached through `sts:AssumeRole`, whose credentials last an hour
//! by default (15 minutes at least): an apply of a class outlasts them. Replayed STS
//! answers and a clock the test moves show they are renewed, not used past expiry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_types::body::SdkBody;
use plinth_aws::{Aws, RoleToAssume};

/// 2026-12-01T12:00:00Z.
const START: u64 = 1_796_126_400;

/// What AWS answers to `AssumeRole`: credentials `ASIA<n>` expiring 15 minutes after START
/// plus `n - 1` quarters of an hour (each renewal is asked for later).
fn assume_role_answer(n: usize) -> String {
    let expires = START + 900 * n as u64;
    let expiration = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(expires));
    format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:plinth-lab-ana</AssumedRoleId>
      <Arn>arn:aws:sts::111122223333:assumed-role/OrganizationAccountAccessRole/plinth-lab-ana</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIA{n}</AccessKeyId>
      <SecretAccessKey>secret{n}</SecretAccessKey>
      <SessionToken>token{n}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#
    )
}

#[tokio::test]
async fn credentials_of_a_students_role_are_renewed_when_they_expire() {
    let assumed = Arc::new(AtomicUsize::new(0));
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let signed_with: Arc<Mutex<Vec<String>>> = Arc::default();
    let http = {
        let (assumed, signed_with, asked) = (assumed.clone(), signed_with.clone(), asked.clone());
        aws_smithy_http_client::test_util::infallible_client_fn(move |request| {
            let body = request
                .body()
                .bytes()
                .map(|b| String::from_utf8_lossy(b).to_string());
            let body = body.unwrap_or_default();
            if body.contains("Action=AssumeRole") {
                asked.lock().expect("lock").push(body);
                let n = assumed.fetch_add(1, Ordering::SeqCst) + 1;
                return http::Response::builder()
                    .status(200)
                    .body(SdkBody::from(assume_role_answer(n)))
                    .expect("response");
            }
            let authorization = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let key = authorization
                .split("Credential=")
                .nth(1)
                .and_then(|c| c.split('/').next())
                .unwrap_or_default();
            signed_with.lock().expect("lock").push(key.to_string());
            http::Response::builder()
                .status(200)
                .body(SdkBody::from(r#"{"TableNames":[]}"#))
                .expect("response")
        })
    };
    let clock = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(START));
    let base = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .http_client(http)
        .time_source(clock.clone())
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            Credentials::for_tests(),
        ))
        .build();
    let instructor = Aws::from_config(base);
    let role = RoleToAssume {
        role_arn: "arn:aws:iam::111122223333:role/OrganizationAccountAccessRole".into(),
        session_name: RoleToAssume::session_name_of(&["plinth", "lab", "ana"]),
        external_id: Some("course-42".into()),
    };
    let student = instructor.assuming(&role).await;
    let list = || async {
        student
            .dynamodb("us-east-1")
            .list_tables()
            .send()
            .await
            .expect("ListTables")
    };

    list().await;
    clock.advance(Duration::from_secs(5 * 60));
    list().await;
    assert_eq!(assumed.load(Ordering::SeqCst), 1, "still valid: asked once");

    // Past the first credentials' 15 minutes: renewed before the call, not used expired.
    clock.advance(Duration::from_secs(11 * 60));
    list().await;
    assert_eq!(assumed.load(Ordering::SeqCst), 2);
    assert_eq!(
        *signed_with.lock().expect("lock"),
        ["ASIA1", "ASIA1", "ASIA2"],
        "each call signed with credentials valid at its time"
    );
    // The role, its session name and external id, as STS is asked for them.
    let asked = asked.lock().expect("lock").clone();
    assert_eq!(asked.len(), 2);
    for body in &asked {
        for part in [
            "RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2FOrganizationAccountAccessRole",
            "RoleSessionName=plinth-lab-ana",
            "ExternalId=course-42",
        ] {
            assert!(body.contains(part), "{part} in {body}");
        }
    }
    // The student's calls count in the run's figures (--stats).
    assert_eq!(
        instructor.stats.by_operation().get("DynamoDB.ListTables"),
        Some(&3)
    );
}

#[test]
fn a_session_name_is_what_sts_accepts() {
    assert_eq!(
        RoleToAssume::session_name_of(&["plinth", "week2 lab", "ana"]),
        "plinth-week2-lab-ana"
    );
    let long = "x".repeat(100);
    assert_eq!(RoleToAssume::session_name_of(&["plinth", &long]).len(), 64);
}
