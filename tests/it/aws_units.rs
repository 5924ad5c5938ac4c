//! plinth-aws's plain functions. They are tested here, not in a `#[cfg(test)]` module: the
//! crate has no test binary of its own, since one would relink the whole SDK.

use plinth_aws::errors::kind_of_code;
use plinth_aws::state_s3::parse_url;
use plinth_core::resource::ErrorKind;

#[test]
fn error_codes_map_to_what_the_engine_does_with_them() {
    assert_eq!(kind_of_code("DependencyViolation"), ErrorKind::InUse);
    assert_eq!(
        kind_of_code("ResourceNotFoundException"),
        ErrorKind::NotFound
    );
    assert_eq!(kind_of_code("ThrottlingException"), ErrorKind::Retryable);
    assert_eq!(kind_of_code("InvalidParameterValue"), ErrorKind::Invalid);
}

#[test]
fn state_urls_name_a_bucket_and_a_prefix() {
    assert_eq!(
        parse_url("s3://class-state/fall/"),
        Some(("class-state".into(), "fall".into()))
    );
    assert_eq!(
        parse_url("s3://class-state"),
        Some(("class-state".into(), String::new()))
    );
    assert_eq!(parse_url("s3:///x"), None);
    assert_eq!(parse_url("/tmp/state"), None);
}
