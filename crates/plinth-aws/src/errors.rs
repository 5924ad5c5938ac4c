//! Turns SDK errors into the core's [`ResourceError`] with a kind the engine acts on.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::future::Future;

use plinth_core::resource::{ErrorKind, Observed, ResourceError, ResourceResult};

/// Error codes by what they mean for the caller. Codes are the service's own strings.
const NOT_FOUND: &[&str] = &[
    "ResourceNotFoundException",
    // Application Auto Scaling: no such scalable target or policy.
    "ObjectNotFoundException",
    "TableNotFoundException",
    "InvalidGroup.NotFound",
    "InvalidGroupId.NotFound",
    "InvalidGroupId.Malformed",
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidAssociationID.NotFound",
    "InvalidRoute.NotFound",
    "NatGatewayNotFound",
    "InvalidAllocationID.NotFound",
    "InvalidPermission.NotFound",
    "NoSuchBucket",
    "NoSuchKey",
    "NoSuchBucketPolicy",
    "NoSuchTagSet",
    "NoSuchPublicAccessBlockConfiguration",
    "NoSuchEntity",
    "NoSuchDistribution",
    "NoSuchCachePolicy",
    "NoSuchOriginAccessControl",
    "NoSuchOriginRequestPolicy",
    "NoSuchResponseHeadersPolicy",
    "NoSuchInvalidation",
    "NoSuchResource",
    "NoSuchHostedZone",
    "NoSuchChange",
    "InvalidInstanceID.NotFound",
    "InvalidVolume.NotFound",
    "InvalidAMIID.NotFound",
    "NoSuchFunctionExists",
    // KMS.
    "NotFoundException",
    // S3's sub-configurations that were never set.
    "NoSuchCORSConfiguration",
    "NoSuchLifecycleConfiguration",
    "NoSuchWebsiteConfiguration",
    "OwnershipControlsNotFoundError",
    "ServerSideEncryptionConfigurationNotFoundError",
    "ObjectLockConfigurationNotFoundError",
];
const IN_USE: &[&str] = &[
    "ResourceInUseException",
    // Application Auto Scaling: another change to the target is under way.
    "ConcurrentUpdateException",
    "DependencyViolation",
    "LimitExceededException",
    "InvalidGroup.InUse",
    "DistributionNotDisabled",
    "CachePolicyInUse",
    "OriginRequestPolicyInUse",
    "ResponseHeadersPolicyInUse",
    "OriginAccessControlInUse",
    "FunctionInUse",
    "DeleteConflict",
    "ResourceConflictException",
    "ConflictException",
    "OperationAborted",
];
const RETRYABLE: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "PriorRequestNotComplete",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "InternalServerError",
    "InternalFailure",
    "InternalServiceException",
    "ServiceUnavailable",
    "ServiceFailure",
    "ServiceException",
    "InternalError",
    // KMS: its key store or a dependency did not answer in time.
    "KMSInternalException",
    "DependencyTimeoutException",
    // CloudWatch Logs.
    "ServiceUnavailableException",
];
const AUTH: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
];

/// The kind a service error code stands for.
pub fn kind_of_code(code: &str) -> ErrorKind {
    if NOT_FOUND.contains(&code) {
        ErrorKind::NotFound
    } else if IN_USE.contains(&code) {
        ErrorKind::InUse
    } else if RETRYABLE.contains(&code) {
        ErrorKind::Retryable
    } else if AUTH.contains(&code) {
        ErrorKind::Auth
    } else if code.starts_with("Invalid")
        || code.contains("Validation")
        || code.ends_with(".Duplicate")
    {
        ErrorKind::Invalid
    } else {
        ErrorKind::Other
    }
}

/// Classifies any SDK error.
pub fn classify<E>(err: SdkError<E, Response>) -> ResourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().map(str::to_string);
            // An answer without a body (S3's HEAD requests, some 403s) has no message: the
            // SDK's own text for it ("unhandled error") says nothing, the status does.
            let message = service
                .err()
                .message()
                .map(str::to_string)
                .unwrap_or_default();
            let status = service.raw().status().as_u16();
            let body = service
                .raw()
                .body()
                .bytes()
                .map(|b| String::from_utf8_lossy(b).to_lowercase());
            let unsupported = status == 501
                || body.as_deref().is_some_and(|b| {
                    b.contains("not yet implemented") || b.contains("not implemented")
                });
            let kind = match (&code, unsupported) {
                (_, true) => ErrorKind::Unsupported,
                (Some(c), _) => kind_of_code(c),
                (None, _) if status == 403 => ErrorKind::Auth,
                // The SDK has already retried transient 5xx answers with backoff; one that
                // is still failing is not retried again for minutes.
                (None, _) => ErrorKind::Other,
            };
            let message = if message.is_empty() {
                format!("HTTP {status} without an error message")
            } else {
                message
            };
            ResourceError {
                kind,
                code,
                message,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ResourceError::new(ErrorKind::Retryable, describe_chain(&err))
        }
        _ => ResourceError::new(ErrorKind::Other, describe_chain(&err)),
    }
}

/// The error and its sources, joined: the SDK's top-level messages alone are vague
/// ("dispatch failure").
fn describe_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// A create's "already exists" error is a name clash for the person to resolve, not
/// something busy to retry: `what` names it ("a table named users").
pub fn name_taken(err: ResourceError, code: &str, what: &str) -> ResourceError {
    if err.code.as_deref() != Some(code) {
        return err;
    }
    taken(err, what)
}

fn taken(err: ResourceError, what: &str) -> ResourceError {
    ResourceError {
        kind: ErrorKind::Invalid,
        message: format!(
            "{what} already exists in this account and region ({})",
            err.message
        ),
        ..err
    }
}

/// Whether `err` carries one of these service error codes.
pub fn has_code(err: &ResourceError, codes: &[&str]) -> bool {
    err.code.as_deref().is_some_and(|c| codes.contains(&c))
}

/// What a create does when AWS answers that the resource already exists (an error with one of
/// `codes`). When `find` recognises it as this stack's resource (by its owner tags, or, for
/// what takes no tags, its name and plinth marker), the create made it itself — the SDK sent
/// the create again after its first answer was lost — or an earlier run was interrupted right
/// after sending it: the resource is adopted and the create carries on with it. Otherwise it
/// is someone else's and the name is taken (`what`: "a table named users"). Any other error
/// comes back as it is.
pub async fn adopt_if_ours<F, Fut>(
    err: ResourceError,
    codes: &[&str],
    what: &str,
    find: F,
) -> Result<Observed, ResourceError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Option<Observed>, ResourceError>>,
{
    if !has_code(&err, codes) {
        return Err(err);
    }
    match find().await? {
        Some(found) => {
            tracing::info!(id = %found.id, "{what} already exists and is this stack's: adopting it");
            Ok(found)
        }
        None => Err(taken(err, what)),
    }
}

/// A read's answer: `None` when AWS says the thing is not there.
pub fn unless_gone<T>(answer: ResourceResult<T>) -> ResourceResult<Option<T>> {
    match answer {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// A resource that was just created or changed and then could not be read back.
pub fn vanished(what: &str) -> ResourceError {
    ResourceError::new(
        ErrorKind::NotFound,
        format!("{what} disappeared while it was being changed"),
    )
}

/// Shorthand for `.map_err(classify)` on a `send()` result.
pub trait SendExt<T> {
    fn classified(self) -> Result<T, ResourceError>;
}

impl<T, E> SendExt<T> for Result<T, SdkError<E, Response>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn classified(self) -> Result<T, ResourceError> {
        self.map_err(classify)
    }
}
