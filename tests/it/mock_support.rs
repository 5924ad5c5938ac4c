//! Shared helpers for SDK-level tests: an `Aws` whose clients are aws-smithy-mocks clients,
//! and raw HTTP responses carrying the exact bodies real AWS sends.

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use plinth_aws::Aws;

pub const REGION: &str = "us-east-1";

/// An `Aws` with no real clients; tests install mocked ones with `insert_*`.
pub fn mocked_aws() -> Arc<Aws> {
    let conf = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .build();
    Arc::new(Aws::from_config(conf))
}

/// A JSON-protocol (DynamoDB) error response exactly as AWS sends it.
pub fn json_error(status: u16, aws_type: &str, message: &str) -> HttpResponse {
    let body = format!(
        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{aws_type}","message":"{message}"}}"#
    );
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(body),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
        .headers_mut()
        .insert("x-amzn-requestid", "00000000-0000-0000-0000-000000000000");
    response
}

/// An EC2 (query protocol) error response exactly as AWS sends it.
pub fn ec2_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestID></Response>"
    );
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(body),
    );
    response
        .headers_mut()
        .insert("content-type", "text/xml;charset=UTF-8");
    response
}

/// A successful JSON-protocol (DynamoDB) response with this body, as AWS sends it, so the
/// SDK's real deserializer reads it.
pub fn json_ok(body: serde_json::Value) -> HttpResponse {
    let mut response = HttpResponse::new(
        StatusCode::try_from(200).expect("valid status"),
        SdkBody::from(body.to_string()),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
        .headers_mut()
        .insert("x-amzn-requestid", "00000000-0000-0000-0000-000000000000");
    response
}

/// An ElastiCache (query protocol) error response exactly as AWS sends it.
pub fn elasticache_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<ErrorResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>5e2f1c4b-8d3a-4f6e-9b7c-0a1d2e3f4a5b</RequestId></ErrorResponse>"
    );
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", "text/xml");
    response
        .headers_mut()
        .insert("x-amzn-requestid", "5e2f1c4b-8d3a-4f6e-9b7c-0a1d2e3f4a5b");
    response
}
