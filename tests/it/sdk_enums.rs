//! The hand-written value lists that could not be the SDK's own, each against the SDK's
//! enumeration: a new SDK release that adds or renames a value fails here, not in a class.
//! (Lists that are the SDK's `values()` need no test: they cannot drift.)

use std::collections::BTreeSet;

use plinth_aws::resources::acm_certificate::{KEY_ALGORITHMS, VALIDATION_METHODS};
use plinth_aws::resources::cloudfront_distribution_config::{
    FUNCTION_EVENTS, METHODS, PRICE_CLASSES, TLS_POLICIES,
};
use plinth_aws::resources::dynamodb_table::{
    BILLING_MODES, PROJECTIONS, STREAM_VIEWS, TABLE_CLASSES,
};
use plinth_aws::resources::elasticache_cluster::AZ_MODES;
use plinth_aws::resources::lambda_function::RETIRED_RUNTIMES;

fn set<'a>(values: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    values.into_iter().map(str::to_string).collect()
}

fn assert_subset(what: &str, ours: &[&str], sdk: &[&str]) {
    let missing: Vec<&&str> = ours.iter().filter(|v| !sdk.contains(v)).collect();
    assert!(
        missing.is_empty(),
        "{what}: {missing:?} are not in the SDK's {sdk:?}"
    );
}

/// Every plinth value is an SDK value once mapped, and every SDK value has a plinth one.
fn assert_same_values(what: &str, ours: &[&str], sdk: &[&str], to_api: fn(&str) -> String) {
    let mapped = set(ours
        .iter()
        .map(|v| to_api(v))
        .collect::<Vec<_>>()
        .iter()
        .map(String::as_str));
    assert_eq!(mapped, set(sdk.iter().copied()), "{what}");
}

#[test]
fn cloudfront_lists_are_the_sdks_or_a_documented_part_of_it() {
    use aws_sdk_cloudfront::types::{EventType, Method, MinimumProtocolVersion, PriceClass};
    assert_eq!(
        set(METHODS.iter().copied()),
        set(Method::values().iter().copied())
    );
    assert_subset("price classes", PRICE_CLASSES, PriceClass::values());
    assert_subset("function events", FUNCTION_EVENTS, EventType::values());
    // The most used CloudFront module's default, refused by the hand list this replaced.
    assert!(TLS_POLICIES.contains(&"TLSv1.2_2025"));
    assert_eq!(TLS_POLICIES, MinimumProtocolVersion::values());
}

#[test]
fn acm_lists_are_the_parts_of_the_sdks_that_requested_certificates_take() {
    use aws_sdk_acm::types::{KeyAlgorithm, ValidationMethod};
    assert_subset(
        "validation methods",
        VALIDATION_METHODS,
        ValidationMethod::values(),
    );
    assert_subset("key algorithms", KEY_ALGORITHMS, KeyAlgorithm::values());
}

#[test]
fn dynamodb_lists_map_one_to_one_onto_the_sdks() {
    use aws_sdk_dynamodb::types::{BillingMode, ProjectionType, StreamViewType, TableClass};
    let upper = |v: &str| v.to_ascii_uppercase();
    assert_same_values("projections", PROJECTIONS, ProjectionType::values(), upper);
    assert_same_values(
        "stream views",
        STREAM_VIEWS,
        StreamViewType::values(),
        upper,
    );
    assert_same_values("table classes", TABLE_CLASSES, TableClass::values(), upper);
    let billing = |v: &str| match v {
        "on_demand" => "PAY_PER_REQUEST".to_string(),
        other => other.to_ascii_uppercase(),
    };
    assert_same_values(
        "billing modes",
        BILLING_MODES,
        BillingMode::values(),
        billing,
    );
}

#[test]
fn elasticache_az_modes_map_one_to_one_onto_the_sdks() {
    use aws_sdk_elasticache::types::AzMode;
    let dashed = |v: &str| v.replace('_', "-");
    assert_same_values("az modes", AZ_MODES, AzMode::values(), dashed);
}

#[test]
fn retired_lambda_runtimes_are_runtimes_the_sdk_knows() {
    use aws_sdk_lambda::types::Runtime;
    assert_subset("retired runtimes", RETIRED_RUNTIMES, Runtime::values());
    assert!(!RETIRED_RUNTIMES.contains(&"nodejs20.x"));
}
