//! `lambda.function` and `iam.role` against replayed Lambda and IAM responses: the
//! reproducible package and its `code_sha256`, a create that waits for a new role to become
//! assumable and for the function to leave `Pending`, which update calls each change makes,
//! the Lambda@Edge checks and the replicated-function refusal on delete; a role's trust
//! shorthand, URL-encoded documents read back equal to what the stack says, and a delete
//! that first removes everything AWS lists on the role.
//!
//! Clients run with the SDK's own retries off and the rules in `RuleMode::Sequential`, so
//! every mocked response is exactly one call and any call not mocked fails the test.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_iam::operation::attach_role_policy::AttachRolePolicyOutput;
use aws_sdk_iam::operation::delete_role::DeleteRoleOutput;
use aws_sdk_iam::operation::delete_role_policy::{DeleteRolePolicyInput, DeleteRolePolicyOutput};
use aws_sdk_iam::operation::detach_role_policy::{DetachRolePolicyInput, DetachRolePolicyOutput};
use aws_sdk_iam::operation::get_role::GetRoleOutput;
use aws_sdk_iam::operation::get_role_policy::GetRolePolicyOutput;
use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
use aws_sdk_iam::operation::list_instance_profiles_for_role::ListInstanceProfilesForRoleOutput;
use aws_sdk_iam::operation::list_role_policies::ListRolePoliciesOutput;
use aws_sdk_iam::operation::put_role_policy::PutRolePolicyOutput;
use aws_sdk_iam::operation::remove_role_from_instance_profile::RemoveRoleFromInstanceProfileOutput;
use aws_sdk_iam::operation::tag_role::TagRoleOutput;
use aws_sdk_iam::operation::update_assume_role_policy::UpdateAssumeRolePolicyOutput;
use aws_sdk_iam::types::{AttachedPolicy, InstanceProfile, Role, Tag as IamTag};
use aws_sdk_lambda::operation::create_function::{CreateFunctionInput, CreateFunctionOutput};
use aws_sdk_lambda::operation::delete_function::DeleteFunctionOutput;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::list_versions_by_function::ListVersionsByFunctionOutput;
use aws_sdk_lambda::operation::publish_version::PublishVersionOutput;
use aws_sdk_lambda::operation::update_function_code::{
    UpdateFunctionCodeInput, UpdateFunctionCodeOutput,
};
use aws_sdk_lambda::operation::update_function_configuration::UpdateFunctionConfigurationOutput;
use aws_sdk_lambda::types::{
    Architecture, FunctionConfiguration, LastUpdateStatus, Runtime, State,
};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::DateTime;
use plinth_aws::resources::iam_role::IamRole;
use plinth_aws::resources::lambda_function::{code_sha256, package, LambdaFunction};
use plinth_core::resource::{
    ErrorKind, Linked, NormalizeContext, OpContext, Progress, ResourceType,
};
use plinth_core::value::{path_to_string, PathSeg, Props};
use serde_json::{json, Value};

use crate::mock_support::{mocked_aws, REGION};

const FUNCTION: &str = "site-rewrite";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:site-rewrite";
const ROLE: &str = "site-edge";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/site-edge";
const ROLE_ID: &str = "AROA3XFRBF23EXAMPLE1";
const BASIC_EXECUTION: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

// ---------------------------------------------------------------------------------------------
// Plumbing

fn lambda_type(rules: &[&Rule]) -> LambdaFunction {
    let aws = mocked_aws();
    aws.insert_lambda(
        REGION,
        mock_client!(aws_sdk_lambda, RuleMode::Sequential, rules, |c| c
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())),
    );
    LambdaFunction::new(aws)
}

fn role_type(rules: &[&Rule]) -> IamRole {
    let aws = mocked_aws();
    aws.insert_iam(
        REGION,
        mock_client!(aws_sdk_iam, RuleMode::Sequential, rules, |c| c
            .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled())),
    );
    IamRole::new(aws)
}

fn ctx() -> OpContext {
    OpContext::new(REGION, "rewrite")
}

/// Keeps every progress message, to show that a wait really happened.
#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);

impl Progress for Recorded {
    fn status(&self, message: &str) {
        self.0.lock().expect("lock").push(message.to_string());
    }
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

fn owner_tags() -> Value {
    json!({"plinth:stack": "site", "plinth:workspace": "default", "plinth:resource": "rewrite"})
}

/// A Lambda (restJson) error exactly as AWS sends it: the code in `x-amzn-errortype`.
fn lambda_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = json!({"Type": "User", "Message": message}).to_string();
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(body),
    );
    let headers = response.headers_mut();
    headers.insert("content-type", "application/json");
    headers.insert("x-amzn-errortype", code.to_string());
    headers.insert("x-amzn-requestid", "3f1d2c4b-5a6e-4f70-8b9c-0d1e2f3a4b5c");
    response
}

/// An IAM (awsQuery) error exactly as AWS sends it.
fn iam_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d</RequestId></ErrorResponse>"
    );
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", "text/xml");
    response
}

/// RFC 3986 percent-encoding, as IAM returns policy documents.
fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Sources on disk

/// A function folder: `index.js`, `lib/util.js` and an executable `bin/run.sh`.
fn function_folder(root: &Path) {
    let dir = root.join("rewrite");
    std::fs::create_dir_all(dir.join("lib")).expect("mkdir");
    std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
    std::fs::write(
        dir.join("index.js"),
        "exports.handler = async (e) => e.Records[0].cf.request;\n",
    )
    .expect("write");
    std::fs::write(dir.join("lib/util.js"), "module.exports = {};\n").expect("write");
    std::fs::write(dir.join("bin/run.sh"), "#!/bin/sh\necho hi\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("bin/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
    }
}

fn touch_all(dir: &Path, when: SystemTime) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            touch_all(&path, when);
        } else {
            std::fs::File::options()
                .write(true)
                .open(&path)
                .expect("open")
                .set_modified(when)
                .expect("set mtime");
        }
    }
}

/// Each central-directory entry of a zip: its name, DOS time and date, and unix mode.
fn zip_entries(zip: &[u8]) -> Vec<(String, u16, u16, u32)> {
    let u16_at = |i: usize| u16::from_le_bytes([zip[i], zip[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([zip[i], zip[i + 1], zip[i + 2], zip[i + 3]]);
    let mut out = Vec::new();
    let mut i = 0;
    while i + 46 <= zip.len() {
        if u32_at(i) != 0x0201_4b50 {
            i += 1;
            continue;
        }
        let (name_len, extra_len, comment_len) = (
            u16_at(i + 28) as usize,
            u16_at(i + 30) as usize,
            u16_at(i + 32) as usize,
        );
        let name = String::from_utf8_lossy(&zip[i + 46..i + 46 + name_len]).into_owned();
        out.push((name, u16_at(i + 12), u16_at(i + 14), u32_at(i + 38) >> 16));
        i += 46 + name_len + extra_len + comment_len;
    }
    out
}

fn edge_props(rt: &LambdaFunction, root: &Path, extra: Value) -> Props {
    let mut props = obj(json!({
        "name": FUNCTION,
        "source": "rewrite",
        "runtime": "nodejs20.x",
        "handler": "index.handler",
        "role": ROLE_ARN,
        "edge": true,
        "timeout": 5,
        "tags": owner_tags(),
    }));
    props.extend(obj(extra));
    rt.normalize(
        &mut props,
        &NormalizeContext {
            base_dir: root.to_path_buf(),
        },
    )
    .expect("normalizes");
    props
}

/// What Lambda reports for the function with these props.
fn configuration(props: &Props, update: LastUpdateStatus, state: State) -> FunctionConfiguration {
    FunctionConfiguration::builder()
        .function_name(FUNCTION)
        .function_arn(FUNCTION_ARN)
        .runtime(Runtime::from(props["runtime"].as_str().expect("runtime")))
        .handler(props["handler"].as_str().expect("handler"))
        .role(props["role"].as_str().expect("role"))
        .memory_size(props["memory_size"].as_i64().expect("memory") as i32)
        .timeout(props["timeout"].as_i64().expect("timeout") as i32)
        .description("")
        .architectures(Architecture::X8664)
        .code_sha256(props["code_sha256"].as_str().expect("sha"))
        .version("$LATEST")
        .state(state)
        .last_update_status(update)
        .build()
}

fn get_function(config: FunctionConfiguration) -> GetFunctionOutput {
    let mut out = GetFunctionOutput::builder().configuration(config);
    for (k, v) in owner_tags().as_object().expect("tags") {
        out = out.tags(k, v.as_str().expect("tag"));
    }
    out.build()
}

fn issues(rt: &dyn ResourceType, props: &Props) -> Vec<(String, String)> {
    rt.check(props)
        .iter()
        .map(|i| (path_to_string(&i.path), i.message.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// lambda.function

#[test]
fn the_package_is_the_same_bytes_whatever_the_file_times_and_changes_with_the_content() {
    let root = tempfile::tempdir().expect("tempdir");
    function_folder(root.path());
    let rt = lambda_type(&[]);
    let dir = root.path().join("rewrite");

    touch_all(
        &dir,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000),
    );
    let first = edge_props(&rt, root.path(), json!({}));
    let zip = package(&dir).expect("zips");
    touch_all(
        &dir,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    let again = edge_props(&rt, root.path(), json!({}));
    assert_eq!(package(&dir).expect("zips"), zip, "the same bytes");
    assert_eq!(first["code_sha256"], again["code_sha256"]);
    assert_eq!(first["code_sha256"], json!(code_sha256(&zip)));
    assert_eq!(code_sha256(&zip).len(), 44, "base64 of 32 bytes");

    // Sorted "/"-separated names, the fixed time 1980-01-01 00:00, 0644 or 0755.
    let entries = zip_entries(&zip);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["bin/run.sh", "index.js", "lib/util.js"]);
    assert!(
        entries.iter().all(|e| e.1 == 0 && e.2 == 0x21),
        "{entries:?}"
    );
    let modes: Vec<u32> = entries.iter().map(|e| e.3 & 0o777).collect();
    assert_eq!(modes, [0o755, 0o644, 0o644]);

    std::fs::write(
        dir.join("index.js"),
        "exports.handler = async () => ({});\n",
    )
    .expect("write");
    let changed = edge_props(&rt, root.path(), json!({}));
    assert_ne!(changed["code_sha256"], first["code_sha256"]);

    // A single file is one entry named by its file name.
    let single = package(&dir.join("lib/util.js")).expect("zips");
    let names: Vec<String> = zip_entries(&single).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["util.js"]);

    // A missing source names the path it looked for.
    let mut missing = obj(
        json!({"name": FUNCTION, "source": "nowhere", "runtime": "nodejs20.x",
        "handler": "index.handler", "role": ROLE_ARN}),
    );
    let err = rt
        .normalize(
            &mut missing,
            &NormalizeContext {
                base_dir: root.path().to_path_buf(),
            },
        )
        .expect_err("no such source");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("nowhere"), "{}", err.message);

    // Written by hand, code_sha256 is refused unless it is what the source hashes to.
    let err = rt
        .normalize(
            &mut obj(json!({"name": FUNCTION, "source": "rewrite", "code_sha256": "abc="})),
            &NormalizeContext {
                base_dir: root.path().to_path_buf(),
            },
        )
        .expect_err("read-only");
    assert!(
        err.message.contains("computed from source"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn create_retries_until_the_new_role_is_assumable_waits_until_active_and_reports_version_1() {
    let root = tempfile::tempdir().expect("tempdir");
    function_folder(root.path());
    let offline = lambda_type(&[]);
    let props = edge_props(&offline, root.path(), json!({}));
    assert_eq!(
        props["publish"],
        json!(true),
        "edge functions publish by default"
    );

    let sent: Log<CreateFunctionInput> = log();
    let create = mock!(aws_sdk_lambda::Client::create_function)
        .sequence()
        .http_response(|| {
            lambda_error(
                400,
                "InvalidParameterValueException",
                "The role defined for the function cannot be assumed by Lambda.",
            )
        })
        .build();
    let created = mock!(aws_sdk_lambda::Client::create_function).then_compute_output({
        let sent = sent.clone();
        move |req| {
            sent.lock().expect("lock").push(req.clone());
            CreateFunctionOutput::builder()
                .function_name(FUNCTION)
                .function_arn(format!("{FUNCTION_ARN}:1"))
                .version("1")
                .state(State::Pending)
                .build()
        }
    });
    let waits = {
        let (pending, active) = (
            configuration(&props, LastUpdateStatus::Successful, State::Pending),
            configuration(&props, LastUpdateStatus::Successful, State::Active),
        );
        mock!(aws_sdk_lambda::Client::get_function)
            .sequence()
            .output(move || get_function(pending.clone()))
            .output(move || get_function(active.clone()))
            .build()
    };
    // The one client gets both create rules in order; the second serves the retry.
    let rt = lambda_type(&[&create, &created, &waits]);
    let props = edge_props(&rt, root.path(), json!({}));
    let progress = Arc::new(Recorded::default());
    let ctx = ctx()
        .with_progress(progress.clone())
        .with_base_dir(root.path().to_path_buf());

    let observed = rt.create(&ctx, &props).await.expect("created");

    assert_eq!(create.num_calls() + created.num_calls(), 2, "retried once");
    assert_eq!(waits.num_calls(), 2, "waited through Pending");
    let messages = progress.0.lock().expect("lock").clone();
    assert!(
        messages.iter().any(
            |m| m.contains("cannot be assumed") || m.contains("InvalidParameterValueException")
        ),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("Pending")),
        "{messages:?}"
    );
    let input = taken(&sent).pop().expect("CreateFunction sent");
    assert_eq!(input.publish(), Some(true));
    assert_eq!(input.role(), Some(ROLE_ARN));
    assert_eq!(input.timeout(), Some(5));
    assert_eq!(input.architectures(), [Architecture::X8664]);
    assert!(input.environment().is_none(), "no empty Environment block");
    let zip = input
        .code()
        .and_then(|c| c.zip_file())
        .expect("zip bytes sent");
    assert_eq!(json!(code_sha256(zip.as_ref())), props["code_sha256"]);
    assert_eq!(
        input
            .tags()
            .and_then(|t| t.get("plinth:stack"))
            .map(String::as_str),
        Some("site")
    );

    assert_eq!(
        Value::Object(observed.attrs),
        json!({"arn": FUNCTION_ARN, "version": "1", "qualified_arn": format!("{FUNCTION_ARN}:1"), "name": FUNCTION})
    );
    assert_eq!(observed.props, props, "reads back as desired");
}

#[test]
fn edge_functions_are_checked_before_any_call() {
    let rt = lambda_type(&[]);
    let base = obj(
        json!({"name": FUNCTION, "source": "rewrite", "runtime": "nodejs20.x",
        "handler": "index.handler", "role": ROLE_ARN, "edge": true}),
    );
    assert!(issues(&rt, &base).is_empty(), "{:?}", issues(&rt, &base));
    assert_eq!(rt.pinned_region(&base), Some("us-east-1"));

    let mut bad = base.clone();
    bad.extend(obj(json!({"environment": {"STAGE": "prod"}, "timeout": 31,
        "architectures": "arm64", "publish": false, "runtime": "java21"})));
    let found = issues(&rt, &bad);
    for (path, text) in [
        ("environment", "cannot have environment variables"),
        ("timeout", "at most 30 seconds"),
        ("architectures", "only x86_64"),
        ("publish", "numbered version"),
        ("runtime", "Node.js"),
    ] {
        assert!(
            found.iter().any(|(p, m)| p == path && m.contains(text)),
            "no issue at {path} containing {text:?} in {found:#?}"
        );
    }
    assert_eq!(found.len(), 5, "{found:#?}");

    // The same values are fine for a regular function, which stays in the stack's region.
    let mut regular = bad.clone();
    regular.insert("edge".into(), json!(false));
    assert!(issues(&rt, &regular).is_empty());
    assert_eq!(rt.pinned_region(&regular), None);
    regular.remove("edge");
    assert_eq!(rt.pinned_region(&regular), None);
}

#[test]
fn an_edge_function_warns_when_its_role_does_not_trust_edgelambda() {
    let rt = lambda_type(&[]);
    let role = role_type(&[]);
    let props = obj(json!({"name": FUNCTION, "role": "(known after apply)", "edge": true}));
    let linked = |trust: Value| {
        let mut role_props = obj(json!({"name": ROLE, "trust": trust}));
        role.normalize(&mut role_props, &NormalizeContext::default())
            .expect("normalizes");
        vec![Linked {
            prop: "role".into(),
            path: vec![PathSeg::Key("role".into())],
            resource: "edge_role".into(),
            type_name: "iam.role".into(),
            props: role_props,
        }]
    };
    let warnings = rt.lint(&props, &linked(json!(["lambda"])));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(path_to_string(&warnings[0].path), "role");
    assert!(warnings[0].message.contains("edgelambda.amazonaws.com"));
    assert!(rt
        .lint(&props, &linked(json!(["lambda", "edgelambda"])))
        .is_empty());
    let mut regular = props.clone();
    regular.insert("edge".into(), json!(false));
    assert!(rt.lint(&regular, &linked(json!(["lambda"]))).is_empty());
}

#[tokio::test]
async fn only_changed_code_updates_the_code_and_publishes_and_only_memory_updates_the_configuration(
) {
    let root = tempfile::tempdir().expect("tempdir");
    function_folder(root.path());
    let offline = lambda_type(&[]);
    let before = edge_props(&offline, root.path(), json!({}));
    std::fs::write(
        root.path().join("rewrite/index.js"),
        "exports.handler = async (e) => ({status: '302'});\n",
    )
    .expect("write");

    // The code: UpdateFunctionCode, wait, PublishVersion; no configuration call.
    let after = edge_props(&offline, root.path(), json!({}));
    assert_ne!(before["code_sha256"], after["code_sha256"]);
    let code_sent: Log<UpdateFunctionCodeInput> = log();
    let code = mock!(aws_sdk_lambda::Client::update_function_code).then_compute_output({
        let code_sent = code_sent.clone();
        move |req| {
            code_sent.lock().expect("lock").push(req.clone());
            UpdateFunctionCodeOutput::builder()
                .function_name(FUNCTION)
                .last_update_status(LastUpdateStatus::InProgress)
                .build()
        }
    });
    let waits = {
        let (busy, done) = (
            configuration(&after, LastUpdateStatus::InProgress, State::Active),
            configuration(&after, LastUpdateStatus::Successful, State::Active),
        );
        mock!(aws_sdk_lambda::Client::get_function)
            .sequence()
            .output(move || get_function(busy.clone()))
            .output(move || get_function(done.clone()))
            .build()
    };
    let publish = mock!(aws_sdk_lambda::Client::publish_version)
        .match_requests(|req| req.function_name() == Some(FUNCTION))
        .then_output(|| PublishVersionOutput::builder().version("2").build());
    let rt = lambda_type(&[&code, &waits, &publish]);
    let after = edge_props(&rt, root.path(), json!({}));

    let observed = rt
        .update(
            &ctx().with_base_dir(root.path().to_path_buf()),
            FUNCTION,
            &before,
            &after,
        )
        .await
        .expect("updated");

    let input = taken(&code_sent).pop().expect("UpdateFunctionCode sent");
    let zip = input.zip_file().expect("zip bytes");
    assert_eq!(json!(code_sha256(zip.as_ref())), after["code_sha256"]);
    assert_eq!(input.architectures(), [Architecture::X8664]);
    assert_eq!(waits.num_calls(), 2, "waited for the update to finish");
    assert_eq!(publish.num_calls(), 1);
    assert_eq!(observed.attrs["version"], json!("2"));
    assert_eq!(
        observed.attrs["qualified_arn"],
        json!(format!("{FUNCTION_ARN}:2"))
    );
    assert_eq!(observed.props, after);

    // Only the memory: UpdateFunctionConfiguration, wait, PublishVersion; no code call.
    let bigger = edge_props(&rt, root.path(), json!({"memory_size": 256}));
    let config = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .match_requests(|req| req.memory_size() == Some(256) && req.timeout() == Some(5))
        .then_output(|| UpdateFunctionConfigurationOutput::builder().build());
    let done = mock!(aws_sdk_lambda::Client::get_function).then_output({
        let config = configuration(&bigger, LastUpdateStatus::Successful, State::Active);
        move || get_function(config.clone())
    });
    let publish = mock!(aws_sdk_lambda::Client::publish_version)
        .then_output(|| PublishVersionOutput::builder().version("3").build());
    let rt = lambda_type(&[&config, &done, &publish]);
    let observed = rt
        .update(&ctx(), FUNCTION, &after, &bigger)
        .await
        .expect("updated");
    assert_eq!(config.num_calls(), 1);
    assert_eq!(observed.props["memory_size"], json!(256));
    assert_eq!(observed.attrs["version"], json!("3"));
}

#[tokio::test]
async fn delete_is_pending_while_cloudfront_still_holds_replicas_and_done_when_gone() {
    let replicated = mock!(aws_sdk_lambda::Client::delete_function)
        .match_requests(|req| req.function_name() == Some(FUNCTION))
        .then_http_response(|| {
            lambda_error(
                400,
                "InvalidParameterValueException",
                "Lambda was unable to delete arn:aws:lambda:us-east-1:123456789012:function:site-rewrite:1 because it is a replicated function. Please see our documentation for Deleting Lambda@Edge Functions and Replicas.",
            )
        });
    let ctx_pending = ctx();
    lambda_type(&[&replicated])
        .delete(&ctx_pending, FUNCTION, &Props::new())
        .await
        .expect("recorded as pending, not failed");
    assert_eq!(replicated.num_calls(), 1, "not retried: only time fixes it");
    let reason = ctx_pending.pending_deletion().expect("pending");
    assert!(reason.contains("Lambda@Edge replicas"), "{reason}");

    // An update in progress is waited out; a function already gone is deleted.
    let busy_then_gone = mock!(aws_sdk_lambda::Client::delete_function)
        .sequence()
        .http_response(|| {
            lambda_error(
                409,
                "ResourceConflictException",
                "The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:us-east-1:123456789012:function:site-rewrite",
            )
        })
        .http_response(|| {
            lambda_error(
                404,
                "ResourceNotFoundException",
                "Function not found: arn:aws:lambda:us-east-1:123456789012:function:site-rewrite",
            )
        })
        .build();
    let ctx_gone = ctx();
    lambda_type(&[&busy_then_gone])
        .delete(&ctx_gone, FUNCTION, &Props::new())
        .await
        .expect("gone");
    assert_eq!(busy_then_gone.num_calls(), 2);
    assert_eq!(ctx_gone.pending_deletion(), None);

    let deleted = mock!(aws_sdk_lambda::Client::delete_function)
        .then_output(|| DeleteFunctionOutput::builder().build());
    let ctx_done = ctx();
    lambda_type(&[&deleted])
        .delete(&ctx_done, FUNCTION, &Props::new())
        .await
        .expect("deleted");
    assert_eq!(ctx_done.pending_deletion(), None);
}

#[tokio::test]
async fn a_function_create_whose_answer_was_lost_waits_for_it_and_adopts_it() {
    let root = tempfile::tempdir().expect("tempdir");
    function_folder(root.path());
    let props = edge_props(&lambda_type(&[]), root.path(), json!({}));
    // The SDK sent CreateFunction again after the first answer was lost.
    let exists = mock!(aws_sdk_lambda::Client::create_function).then_http_response(|| {
        lambda_error(
            409,
            "ResourceConflictException",
            "Function already exist: site-rewrite",
        )
    });
    let read = |state: State| {
        let config = configuration(&props, LastUpdateStatus::Successful, state);
        mock!(aws_sdk_lambda::Client::get_function)
            .then_output(move || get_function(config.clone()))
    };
    let versions = || {
        mock!(aws_sdk_lambda::Client::list_versions_by_function).then_output(|| {
            ListVersionsByFunctionOutput::builder()
                .versions(FunctionConfiguration::builder().version("$LATEST").build())
                .versions(FunctionConfiguration::builder().version("1").build())
                .build()
        })
    };
    // Read (still Pending), wait until Active, then the update's own read.
    let (pending, active, current) = (
        read(State::Pending),
        read(State::Active),
        read(State::Active),
    );
    let (read_versions, update_versions) = (versions(), versions());
    let rt = lambda_type(&[
        &exists,
        &pending,
        &read_versions,
        &active,
        &current,
        &update_versions,
    ]);

    let observed = rt
        .create(&ctx().with_base_dir(root.path().to_path_buf()), &props)
        .await
        .expect("adopted");

    assert_eq!(exists.num_calls(), 1, "never a second function");
    assert_eq!(active.num_calls(), 1, "waited until Active before adopting");
    assert_eq!(update_versions.num_calls(), 1);
    assert_eq!(observed.id, FUNCTION);
    assert_eq!(observed.attrs["version"], json!("1"));
    assert_eq!(observed.props, props);
}

#[tokio::test]
async fn a_function_name_taken_by_someone_else_is_a_clear_clash() {
    let root = tempfile::tempdir().expect("tempdir");
    function_folder(root.path());
    let props = edge_props(&lambda_type(&[]), root.path(), json!({}));
    let exists = mock!(aws_sdk_lambda::Client::create_function).then_http_response(|| {
        lambda_error(
            409,
            "ResourceConflictException",
            "Function already exist: site-rewrite",
        )
    });
    let theirs = mock!(aws_sdk_lambda::Client::get_function).then_output({
        let config = configuration(&props, LastUpdateStatus::Successful, State::Active);
        move || {
            GetFunctionOutput::builder()
                .configuration(config.clone())
                .build()
        }
    });
    let versions = mock!(aws_sdk_lambda::Client::list_versions_by_function)
        .then_output(|| ListVersionsByFunctionOutput::builder().build());
    let rt = lambda_type(&[&exists, &theirs, &versions]);

    let err = rt
        .create(&ctx().with_base_dir(root.path().to_path_buf()), &props)
        .await
        .expect_err("not ours");

    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains(FUNCTION), "{}", err.message);
}

// ---------------------------------------------------------------------------------------------
// iam.role

fn role_props(extra: Value) -> Props {
    let mut props = obj(json!({
        "name": ROLE,
        "description": "runs the rewrite",
        "trust": ["lambda"],
        "managed_policies": [BASIC_EXECUTION],
        "policies": {"logs": {"Version": "2012-10-17", "Statement": {
            "Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}}},
        "tags": owner_tags(),
    }));
    props.extend(obj(extra));
    role_type(&[])
        .normalize(&mut props, &NormalizeContext::default())
        .expect("normalizes");
    props
}

fn role(trust_document: &str) -> Role {
    let mut role = Role::builder()
        .path("/")
        .role_name(ROLE)
        .role_id(ROLE_ID)
        .arn(ROLE_ARN)
        .create_date(DateTime::from_secs(1_700_000_000))
        .description("runs the rewrite")
        .max_session_duration(3600)
        .assume_role_policy_document(url_encoded(trust_document));
    for (k, v) in owner_tags().as_object().expect("tags") {
        role = role.tags(
            IamTag::builder()
                .key(k)
                .value(v.as_str().expect("tag"))
                .build()
                .expect("tag"),
        );
    }
    role.build().expect("role")
}

fn attached(arns: &[&str]) -> Vec<AttachedPolicy> {
    arns.iter()
        .map(|arn| {
            AttachedPolicy::builder()
                .policy_arn(*arn)
                .policy_name(arn.rsplit('/').next().expect("name"))
                .build()
        })
        .collect()
}

#[test]
fn the_trust_shorthand_becomes_the_policy_document_and_defaults_are_filled() {
    let props = role_props(json!({"trust": ["lambda", "edgelambda"]}));
    assert_eq!(
        Value::Object(props.clone()),
        json!({
            "name": ROLE,
            "path": "/",
            "description": "runs the rewrite",
            "trust_policy": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": ["edgelambda.amazonaws.com", "lambda.amazonaws.com"]},
                "Action": ["sts:AssumeRole"],
            }]},
            "managed_policies": [BASIC_EXECUTION],
            "policies": {"logs": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": ["*"]}]}},
            "max_session_duration": 3600,
            "tags": owner_tags(),
        })
    );
    // The same policy written out, as a JSON string with one-element strings, is the same.
    let written = role_props(
        json!({"trust": null, "trust_policy": r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com","edgelambda.amazonaws.com"]},"Action":"sts:AssumeRole"}]}"#}),
    );
    assert_eq!(written, props);

    let rt = role_type(&[]);
    assert!(issues(&rt, &props).is_empty(), "{:?}", issues(&rt, &props));
    assert_eq!(rt.pinned_region(&props), Some("us-east-1"));
    let both = obj(json!({"name": ROLE, "trust": ["lambda"], "trust_policy": {}}));
    assert!(issues(&rt, &both)
        .iter()
        .any(|(p, m)| p == "trust" && m.contains("not both")));
    let neither = obj(json!({"name": ROLE}));
    assert!(issues(&rt, &neither)
        .iter()
        .any(|(p, m)| p == "trust" && m.contains("needs trust")));
}

#[tokio::test]
async fn a_role_read_decodes_url_encoded_documents_into_exactly_the_desired_form() {
    let props = role_props(json!({}));
    // AWS's form: one service as a plain string, URL-encoded; the inline policy likewise.
    let get = mock!(aws_sdk_iam::Client::get_role)
        .match_requests(|req| req.role_name() == Some(ROLE))
        .then_output(|| {
            GetRoleOutput::builder()
                .role(role(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#))
                .build()
        });
    let managed = mock!(aws_sdk_iam::Client::list_attached_role_policies)
        .sequence()
        .output(|| {
            ListAttachedRolePoliciesOutput::builder()
                .set_attached_policies(Some(attached(&[BASIC_EXECUTION])))
                .is_truncated(false)
                .build()
        })
        .build();
    let names = mock!(aws_sdk_iam::Client::list_role_policies).then_output(|| {
        ListRolePoliciesOutput::builder()
            .policy_names("logs")
            .is_truncated(false)
            .build()
            .expect("output")
    });
    let inline = mock!(aws_sdk_iam::Client::get_role_policy)
        .match_requests(|req| req.policy_name() == Some("logs"))
        .then_output(|| {
            GetRolePolicyOutput::builder()
                .role_name(ROLE)
                .policy_name("logs")
                .policy_document(url_encoded(
                    r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}]}"#,
                ))
                .build()
                .expect("output")
        });
    let rt = role_type(&[&get, &managed, &names, &inline]);

    let observed = rt
        .read(&ctx(), ROLE, &props)
        .await
        .expect("read")
        .expect("exists");

    assert_eq!(observed.props, props);
    assert_eq!(
        Value::Object(observed.attrs),
        json!({"arn": ROLE_ARN, "name": ROLE, "id": ROLE_ID})
    );

    let gone = mock!(aws_sdk_iam::Client::get_role).then_http_response(|| {
        iam_error(
            404,
            "NoSuchEntity",
            "The role with name site-edge cannot be found.",
        )
    });
    assert!(role_type(&[&gone])
        .read(&ctx(), ROLE, &props)
        .await
        .expect("read")
        .is_none());
}

#[tokio::test]
async fn a_role_update_calls_only_for_what_differs() {
    let before = role_props(json!({}));
    let after = role_props(json!({
        "trust": ["lambda", "edgelambda"],
        "managed_policies": ["arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"],
        "policies": {"s3": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}]}},
        "tags": {"plinth:stack": "site", "plinth:workspace": "default",
            "plinth:resource": "rewrite", "course": "aws"},
    }));
    let get = mock!(aws_sdk_iam::Client::get_role)
        .then_output(|| GetRoleOutput::builder().role(role("{}")).build());
    let expected_trust = after["trust_policy"].clone();
    let trust = mock!(aws_sdk_iam::Client::update_assume_role_policy)
        .match_requests(move |req| {
            req.policy_document()
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .is_some_and(|d| d == expected_trust)
        })
        .then_output(|| UpdateAssumeRolePolicyOutput::builder().build());
    // No UpdateRole: neither the description nor the session length changed.
    let attach = mock!(aws_sdk_iam::Client::attach_role_policy)
        .match_requests(|req| {
            req.policy_arn() == Some("arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess")
        })
        .then_output(|| AttachRolePolicyOutput::builder().build());
    let detach = mock!(aws_sdk_iam::Client::detach_role_policy)
        .match_requests(|req| req.policy_arn() == Some(BASIC_EXECUTION))
        .then_output(|| DetachRolePolicyOutput::builder().build());
    let put = mock!(aws_sdk_iam::Client::put_role_policy)
        .match_requests(|req| req.policy_name() == Some("s3"))
        .then_output(|| PutRolePolicyOutput::builder().build());
    let delete = mock!(aws_sdk_iam::Client::delete_role_policy)
        .match_requests(|req| req.policy_name() == Some("logs"))
        .then_output(|| DeleteRolePolicyOutput::builder().build());
    let tag = mock!(aws_sdk_iam::Client::tag_role)
        .match_requests(|req| {
            req.tags().len() == 1
                && req.tags()[0].key() == "course"
                && req.tags()[0].value() == "aws"
        })
        .then_output(|| TagRoleOutput::builder().build());
    let rt = role_type(&[&get, &trust, &attach, &detach, &put, &delete, &tag]);

    let observed = rt
        .update(&ctx(), ROLE, &before, &after)
        .await
        .expect("updated");

    for rule in [&trust, &attach, &detach, &put, &delete, &tag] {
        assert_eq!(rule.num_calls(), 1);
    }
    assert_eq!(observed.props, after);
    assert_eq!(observed.attrs["arn"], json!(ROLE_ARN));
}

#[tokio::test]
async fn a_role_delete_removes_everything_aws_lists_first_and_retries_the_conflict() {
    let extra = "arn:aws:iam::123456789012:policy/attached-by-hand";
    let attached_pages = mock!(aws_sdk_iam::Client::list_attached_role_policies)
        .sequence()
        .output(move || {
            ListAttachedRolePoliciesOutput::builder()
                .set_attached_policies(Some(attached(&[BASIC_EXECUTION])))
                .is_truncated(true)
                .marker("page-2")
                .build()
        })
        .output(move || {
            ListAttachedRolePoliciesOutput::builder()
                .set_attached_policies(Some(attached(&[extra])))
                .is_truncated(false)
                .build()
        })
        .build();
    let detached: Log<DetachRolePolicyInput> = log();
    let detach_rule = |log: Log<DetachRolePolicyInput>| {
        mock!(aws_sdk_iam::Client::detach_role_policy).then_compute_output(move |req| {
            log.lock().expect("lock").push(req.clone());
            DetachRolePolicyOutput::builder().build()
        })
    };
    let (detach, detach_again) = (detach_rule(detached.clone()), detach_rule(detached.clone()));
    let inline_pages = mock!(aws_sdk_iam::Client::list_role_policies)
        .sequence()
        .output(|| {
            ListRolePoliciesOutput::builder()
                .policy_names("logs")
                .is_truncated(true)
                .marker("page-2")
                .build()
                .expect("output")
        })
        .output(|| {
            ListRolePoliciesOutput::builder()
                .policy_names("added-by-hand")
                .is_truncated(false)
                .build()
                .expect("output")
        })
        .build();
    let deleted_inline: Log<DeleteRolePolicyInput> = log();
    let delete_inline = |log: Log<DeleteRolePolicyInput>| {
        mock!(aws_sdk_iam::Client::delete_role_policy).then_compute_output(move |req| {
            log.lock().expect("lock").push(req.clone());
            DeleteRolePolicyOutput::builder().build()
        })
    };
    let (inline_1, inline_2) = (
        delete_inline(deleted_inline.clone()),
        delete_inline(deleted_inline.clone()),
    );
    let profiles = mock!(aws_sdk_iam::Client::list_instance_profiles_for_role).then_output(|| {
        ListInstanceProfilesForRoleOutput::builder()
            .instance_profiles(
                InstanceProfile::builder()
                    .path("/")
                    .instance_profile_name("site-edge-profile")
                    .instance_profile_id("AIPA3XFRBF23EXAMPLE2")
                    .arn("arn:aws:iam::123456789012:instance-profile/site-edge-profile")
                    .create_date(DateTime::from_secs(1_700_000_000))
                    .set_roles(Some(vec![]))
                    .build()
                    .expect("profile"),
            )
            .is_truncated(false)
            .build()
            .expect("output")
    });
    let remove = mock!(aws_sdk_iam::Client::remove_role_from_instance_profile)
        .match_requests(|req| {
            req.instance_profile_name() == Some("site-edge-profile")
                && req.role_name() == Some(ROLE)
        })
        .then_output(|| RemoveRoleFromInstanceProfileOutput::builder().build());
    let delete = mock!(aws_sdk_iam::Client::delete_role)
        .sequence()
        .http_response(|| {
            iam_error(
                409,
                "DeleteConflict",
                "Cannot delete entity, must detach all policies first.",
            )
        })
        .output(|| DeleteRoleOutput::builder().build())
        .build();
    let rt = role_type(&[
        &attached_pages,
        &detach,
        &detach_again,
        &inline_pages,
        &inline_1,
        &inline_2,
        &profiles,
        &remove,
        &delete,
    ]);

    // The state knows of no policies: what AWS lists is what is removed.
    rt.delete(&ctx(), ROLE, &Props::new())
        .await
        .expect("deleted");

    assert_eq!(attached_pages.num_calls(), 2);
    let detached: Vec<String> = taken(&detached)
        .iter()
        .map(|d| d.policy_arn().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        detached,
        [extra, BASIC_EXECUTION],
        "both pages, in ARN order"
    );
    assert_eq!(inline_pages.num_calls(), 2);
    let deleted: Vec<String> = taken(&deleted_inline)
        .iter()
        .map(|d| d.policy_name().unwrap_or_default().to_string())
        .collect();
    assert_eq!(deleted, ["logs", "added-by-hand"]);
    assert_eq!(remove.num_calls(), 1);
    assert_eq!(delete.num_calls(), 2, "DeleteConflict retried");

    // A role already gone is deleted.
    let gone = mock!(aws_sdk_iam::Client::list_attached_role_policies).then_http_response(|| {
        iam_error(
            404,
            "NoSuchEntity",
            "The role with name site-edge cannot be found.",
        )
    });
    role_type(&[&gone])
        .delete(&ctx(), ROLE, &Props::new())
        .await
        .expect("already gone");
}

#[tokio::test]
async fn a_role_create_whose_answer_was_lost_adopts_the_role_it_made() {
    // The SDK sent CreateRole again after the first answer was lost.
    let exists = mock!(aws_sdk_iam::Client::create_role).then_http_response(|| {
        iam_error(
            409,
            "EntityAlreadyExists",
            "Role with name site-edge already exists.",
        )
    });
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let get = || {
        mock!(aws_sdk_iam::Client::get_role)
            .then_output(move || GetRoleOutput::builder().role(role(trust)).build())
    };
    let managed = mock!(aws_sdk_iam::Client::list_attached_role_policies).then_output(|| {
        ListAttachedRolePoliciesOutput::builder()
            .set_attached_policies(Some(attached(&[BASIC_EXECUTION])))
            .is_truncated(false)
            .build()
    });
    let names = mock!(aws_sdk_iam::Client::list_role_policies).then_output(|| {
        ListRolePoliciesOutput::builder()
            .policy_names("logs")
            .is_truncated(false)
            .build()
            .expect("output")
    });
    let inline = mock!(aws_sdk_iam::Client::get_role_policy).then_output(|| {
        GetRolePolicyOutput::builder()
            .role_name(ROLE)
            .policy_name("logs")
            .policy_document(url_encoded(
                r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}]}"#,
            ))
            .build()
            .expect("output")
    });
    let (read, again) = (get(), get());
    let rt = role_type(&[&exists, &read, &managed, &names, &inline, &again]);
    let props = role_props(json!({}));
    let observed = rt.create(&ctx(), &props).await.expect("adopted");
    assert_eq!(observed.id, ROLE);
    assert_eq!(exists.num_calls(), 1);
}
