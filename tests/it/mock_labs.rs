//! `ec2.instance`, `route53.record` and `lambda.event_source_mapping` against replayed AWS
//! answers, for what the emulator shows at once and AWS takes its time over: an instance
//! `pending`, then `running`, and `shutting-down` before `terminated`; an instance profile
//! EC2 does not know yet; a record change `PENDING` before `INSYNC`; a mapping `Creating`,
//! and refused while Lambda does not yet see the role's new permission.

use std::sync::{Arc, Mutex};

use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_volumes::DescribeVolumesOutput;
use aws_sdk_ec2::operation::run_instances::{RunInstancesInput, RunInstancesOutput};
use aws_sdk_ec2::operation::terminate_instances::TerminateInstancesOutput;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, EbsInstanceBlockDevice, Image, Instance,
    InstanceBlockDeviceMapping, InstanceState, InstanceStateName, InstanceType, Reservation,
    Volume, VolumeType,
};
use aws_sdk_lambda::operation::create_event_source_mapping::CreateEventSourceMappingOutput;
use aws_sdk_lambda::operation::get_event_source_mapping::GetEventSourceMappingOutput;
use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsOutput;
use aws_sdk_route53::operation::get_change::GetChangeOutput;
use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
use aws_sdk_route53::types::{ChangeInfo, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use plinth_aws::resources::ec2_instance::InstanceResource;
use plinth_aws::resources::lambda_event_source_mapping::EventSourceMappingType;
use plinth_aws::resources::route53_record::RecordType;
use plinth_core::resource::{NormalizeContext, OpContext, Progress, ResourceType};
use plinth_core::value::Props;
use serde_json::{json, Value};

use crate::mock_support::{ec2_error, mocked_aws, REGION};

const INSTANCE: &str = "i-0123456789abcdef0";
const IMAGE: &str = "ami-0ed094fb1304fd857";
const VOLUME: &str = "vol-0123456789abcdef0";
const STREAM: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-12-01T00:00:00.000";
const MAPPING: &str = "14e0db71-5d35-4eb5-b481-8945cf9d10c2";

/// Keeps every progress message, to show that a wait really happened.
#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);

impl Progress for Recorded {
    fn status(&self, message: &str) {
        self.0.lock().expect("lock").push(message.to_string());
    }
}

impl Recorded {
    fn any(&self, text: &str) -> bool {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .any(|m| m.contains(text))
    }
}

fn obj(value: Value) -> Props {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn normalized(rt: &dyn ResourceType, value: Value) -> Props {
    let mut props = obj(value);
    rt.normalize(&mut props, &NormalizeContext::default())
        .expect("normalizes");
    props
}

fn instance_in(state: InstanceStateName) -> Instance {
    Instance::builder()
        .instance_id(INSTANCE)
        .image_id(IMAGE)
        .instance_type(InstanceType::T3Micro)
        .state(InstanceState::builder().name(state).build())
        .root_device_name("/dev/xvda")
        .block_device_mappings(
            InstanceBlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(EbsInstanceBlockDevice::builder().volume_id(VOLUME).build())
                .build(),
        )
        .build()
}

fn described(state: InstanceStateName) -> DescribeInstancesOutput {
    DescribeInstancesOutput::builder()
        .reservations(
            Reservation::builder()
                .owner_id("123456789012")
                .instances(instance_in(state))
                .build(),
        )
        .build()
}

/// A launch right after its instance profile was made: EC2 does not know the profile for
/// some seconds and refuses the launch (retried), then the instance is `pending` before it
/// is `running`. The launch asks for IMDSv2, an encrypted gp3 root volume of the image's
/// size, and the user data in base64. Destroy waits through `shutting-down`.
#[tokio::test]
async fn a_launch_waits_out_a_new_profile_and_pending_and_terminate_waits_for_terminated() {
    let image = mock!(aws_sdk_ec2::Client::describe_images).then_output(|| {
        DescribeImagesOutput::builder()
            .images(
                Image::builder()
                    .image_id(IMAGE)
                    .root_device_name("/dev/xvda")
                    .block_device_mappings(
                        BlockDeviceMapping::builder()
                            .device_name("/dev/xvda")
                            .ebs(EbsBlockDevice::builder().volume_size(8).build())
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let not_yet = mock!(aws_sdk_ec2::Client::run_instances).then_http_response(|| {
        ec2_error(
            400,
            "InvalidParameterValue",
            "Value (labs-bastion) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name",
        )
    });
    let sent: Arc<Mutex<Vec<RunInstancesInput>>> = Arc::default();
    let launched = mock!(aws_sdk_ec2::Client::run_instances).then_compute_output({
        let sent = sent.clone();
        move |req| {
            sent.lock().expect("lock").push(req.clone());
            RunInstancesOutput::builder()
                .instances(instance_in(InstanceStateName::Pending))
                .build()
        }
    });
    let starting = mock!(aws_sdk_ec2::Client::describe_instances)
        .sequence()
        .output(|| described(InstanceStateName::Pending))
        .output(|| described(InstanceStateName::Running))
        .output(|| described(InstanceStateName::Running))
        .build();
    let volume = mock!(aws_sdk_ec2::Client::describe_volumes).then_output(|| {
        DescribeVolumesOutput::builder()
            .volumes(
                Volume::builder()
                    .volume_id(VOLUME)
                    .size(8)
                    .volume_type(VolumeType::Gp3)
                    .encrypted(true)
                    .build(),
            )
            .build()
    });
    let terminate = mock!(aws_sdk_ec2::Client::terminate_instances)
        .then_output(|| TerminateInstancesOutput::builder().build());
    let stopping = mock!(aws_sdk_ec2::Client::describe_instances)
        .sequence()
        .output(|| described(InstanceStateName::ShuttingDown))
        .output(|| described(InstanceStateName::Terminated))
        .build();
    // The token's earlier instances are looked up first (none): the launch uses it as is.
    let made = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| DescribeInstancesOutput::builder().build());
    let rules: [&Rule; 8] = [
        &image, &made, &not_yet, &launched, &starting, &volume, &terminate, &stopping,
    ];
    let aws = mocked_aws();
    aws.insert_ec2(
        REGION,
        mock_client!(aws_sdk_ec2, RuleMode::Sequential, &rules, |c| c
            .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())),
    );
    let rt = InstanceResource::new(aws);
    let props = normalized(
        &rt,
        json!({
            "ami": IMAGE,
            "instance_type": "t3.micro",
            "instance_profile": "labs-bastion",
            "user_data": "#!/bin/bash\necho hello\n",
            "tags": {"plinth:stack": "labs", "plinth:workspace": "default", "plinth:resource": "bastion"},
        }),
    );
    let progress = Arc::new(Recorded::default());
    let ctx = OpContext::new(REGION, "bastion")
        .with_create_token("0123456789abcdef0123456789abcdef".into())
        .with_progress(progress.clone());

    let observed = rt.create(&ctx, &props).await.expect("launched");

    assert_eq!(observed.id, INSTANCE);
    assert_eq!(
        not_yet.num_calls() + launched.num_calls(),
        2,
        "retried once"
    );
    assert!(progress.any("iamInstanceProfile") || progress.any("InvalidParameterValue"));
    assert!(progress.any("pending"), "waited through pending");
    let input = sent.lock().expect("lock").pop().expect("RunInstances sent");
    assert_eq!(
        input.client_token(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(
        input
            .metadata_options()
            .and_then(|m| m.http_tokens())
            .map(|t| t.as_str()),
        Some("required")
    );
    let root = &input.block_device_mappings()[0];
    assert_eq!(root.device_name(), Some("/dev/xvda"));
    let ebs = root.ebs().expect("ebs");
    assert_eq!(
        (
            ebs.volume_size(),
            ebs.encrypted(),
            ebs.delete_on_termination()
        ),
        (Some(8), Some(true), Some(true))
    );
    use base64::Engine as _;
    assert_eq!(
        input
            .user_data()
            .map(|u| base64::engine::general_purpose::STANDARD
                .decode(u)
                .expect("base64")),
        Some(b"#!/bin/bash\necho hello\n".to_vec())
    );

    rt.delete(&ctx, INSTANCE, &props).await.expect("terminated");
    assert!(
        progress.any("shutting-down"),
        "waited through shutting-down"
    );
}

fn route53_error(code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>4b1e1ca8-5b59-4e3b-9c3e-EXAMPLE</RequestId></ErrorResponse>"
    );
    HttpResponse::new(
        StatusCode::try_from(400).expect("valid status"),
        SdkBody::from(body),
    )
}

fn change(status: ChangeStatus) -> ChangeInfo {
    ChangeInfo::builder()
        .id("/change/C2682N5HXP0BZ4")
        .status(status)
        .submitted_at(aws_smithy_types::DateTime::from_secs(1_780_000_000))
        .build()
        .expect("change info")
}

/// A record change is `PENDING` until it has reached every name server: the create waits
/// for `INSYNC`. A CREATE the SDK sent again after a lost answer finds the record with
/// exactly its values and is done.
#[tokio::test]
async fn a_record_waits_for_insync_and_a_repeated_create_of_the_same_record_is_done() {
    let created = mock!(aws_sdk_route53::Client::change_resource_record_sets).then_output(|| {
        ChangeResourceRecordSetsOutput::builder()
            .change_info(change(ChangeStatus::Pending))
            .build()
    });
    let syncing = mock!(aws_sdk_route53::Client::get_change)
        .sequence()
        .output(|| {
            GetChangeOutput::builder()
                .change_info(change(ChangeStatus::Pending))
                .build()
        })
        .output(|| {
            GetChangeOutput::builder()
                .change_info(change(ChangeStatus::Insync))
                .build()
        })
        .build();
    let exists = mock!(aws_sdk_route53::Client::change_resource_record_sets).then_http_response(
        || {
            route53_error(
                "InvalidChangeBatch",
                "[Tried to create resource record set [name='api.labs.example.net.', type='CNAME'] but it already exists]",
            )
        },
    );
    let listed = mock!(aws_sdk_route53::Client::list_resource_record_sets).then_output(|| {
        ListResourceRecordSetsOutput::builder()
            .resource_record_sets(
                ResourceRecordSet::builder()
                    .name("api.labs.example.net.")
                    .r#type(RrType::Cname)
                    .ttl(60)
                    .resource_records(
                        ResourceRecord::builder()
                            .value("example.org")
                            .build()
                            .expect("record"),
                    )
                    .build()
                    .expect("record set"),
            )
            .is_truncated(false)
            .max_items(1)
            .build()
            .expect("listing")
    });
    let rules: [&Rule; 4] = [&created, &syncing, &exists, &listed];
    let aws = mocked_aws();
    aws.insert_route53(
        REGION,
        mock_client!(aws_sdk_route53, RuleMode::Sequential, &rules, |c| {
            c.retry_config(aws_sdk_route53::config::retry::RetryConfig::disabled())
        }),
    );
    let rt = RecordType::new(aws);
    let props = normalized(
        &rt,
        json!({
            "zone_id": "/hostedzone/Z0123456789ABC",
            "name": "API.labs.example.net.",
            "record_type": "CNAME",
            "ttl": 60,
            "records": ["example.org"],
        }),
    );
    assert_eq!(props["zone_id"], "Z0123456789ABC");
    assert_eq!(props["name"], "api.labs.example.net");
    let progress = Arc::new(Recorded::default());
    let ctx = OpContext::new(REGION, "api").with_progress(progress.clone());

    let first = rt.create(&ctx, &props).await.expect("created");
    assert_eq!(first.id, "Z0123456789ABC_api.labs.example.net_CNAME");
    assert_eq!(syncing.num_calls(), 2, "waited until INSYNC");
    assert!(progress.any("PENDING"));

    let again = rt
        .create(&ctx, &props)
        .await
        .expect("the record is there already");
    assert_eq!(again.id, first.id);
    assert_eq!(listed.num_calls(), 1);
}

fn lambda_error(code: &str, message: &str) -> HttpResponse {
    let mut response = HttpResponse::new(
        StatusCode::try_from(400).expect("valid status"),
        SdkBody::from(json!({"Type": "User", "message": message}).to_string()),
    );
    response
        .headers_mut()
        .insert("x-amzn-errortype", code.to_string());
    response
        .headers_mut()
        .insert("content-type", "application/json");
    response
}

fn mapping_in(state: &str) -> GetEventSourceMappingOutput {
    GetEventSourceMappingOutput::builder()
        .uuid(MAPPING)
        .event_source_arn(STREAM)
        .function_arn("arn:aws:lambda:us-east-1:123456789012:function:on-order")
        .starting_position(aws_sdk_lambda::types::EventSourcePosition::Latest)
        .batch_size(10)
        .maximum_batching_window_in_seconds(0)
        .maximum_retry_attempts(-1)
        .bisect_batch_on_function_error(false)
        .state(state)
        .build()
}

/// Right after the role gained its stream permissions Lambda refuses the mapping ("ensure
/// the role can perform …"): the create is retried. The new mapping is `Creating`, then
/// `Enabled`.
#[tokio::test]
async fn a_mapping_waits_out_the_role_permission_and_creating() {
    let refused = mock!(aws_sdk_lambda::Client::create_event_source_mapping)
        .then_http_response(|| {
            lambda_error(
                "InvalidParameterValueException",
                &format!("Cannot access stream {STREAM}. Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions on your stream in IAM."),
            )
        });
    let created = mock!(aws_sdk_lambda::Client::create_event_source_mapping).then_output(|| {
        CreateEventSourceMappingOutput::builder()
            .uuid(MAPPING)
            .state("Creating")
            .build()
    });
    let starting = mock!(aws_sdk_lambda::Client::get_event_source_mapping)
        .sequence()
        .output(|| mapping_in("Creating"))
        .output(|| mapping_in("Enabled"))
        .build();
    let rules: [&Rule; 3] = [&refused, &created, &starting];
    let aws = mocked_aws();
    aws.insert_lambda(
        REGION,
        mock_client!(aws_sdk_lambda, RuleMode::Sequential, &rules, |c| c
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())),
    );
    let rt = EventSourceMappingType::new(aws);
    let props = normalized(
        &rt,
        json!({
            "function_name": "arn:aws:lambda:us-east-1:123456789012:function:on-order",
            "event_source_arn": STREAM,
            "batch_size": 10,
        }),
    );
    assert_eq!(props["function_name"], "on-order");
    assert_eq!(props["starting_position"], "LATEST");
    let progress = Arc::new(Recorded::default());
    let ctx = OpContext::new(REGION, "new_orders").with_progress(progress.clone());

    let observed = rt.create(&ctx, &props).await.expect("created");

    assert_eq!(observed.id, MAPPING);
    assert_eq!(refused.num_calls() + created.num_calls(), 2, "retried once");
    assert!(progress.any("Creating"), "waited through Creating");
    assert_eq!(observed.props, props, "reads back as desired");
}
