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

mod sessions {
    use std::path::Path;
    use std::sync::Arc;

    use plinth_aws::session::{beside, store_at, StoreAt};
    use plinth_aws::{Aws, AwsOptions};

    fn at(stack_path: &Path) -> StoreAt<'_> {
        StoreAt {
            stack_path,
            stack: "lab",
            workspace: "ana",
            region: "eu-west-1",
        }
    }

    #[test]
    fn the_default_state_folder_is_beside_the_stack_file() {
        assert_eq!(
            beside(Path::new("labs/week2.yaml")),
            Path::new("labs/.plinth")
        );
        assert_eq!(beside(Path::new("week2.yaml")), Path::new("./.plinth"));
    }

    #[tokio::test]
    async fn a_named_folder_or_the_default_one_holds_the_environment_s_state() {
        let stack = Path::new("labs/week2.yaml");
        let none = AwsOptions::default();
        let named = store_at(Some("/srv/state".into()), &at(stack), None, &none)
            .await
            .expect("a folder");
        assert_eq!(named.location(), "/srv/state/lab/ana");
        let default = store_at(None, &at(stack), None, &none)
            .await
            .expect("beside");
        assert_eq!(default.location(), "labs/.plinth/lab/ana");
    }

    #[tokio::test]
    async fn a_bucket_url_is_a_bucket_and_a_bad_one_is_refused() {
        let stack = Path::new("week2.yaml");
        let aws = Arc::new(Aws::offline());
        let none = AwsOptions::default();
        let s3 = store_at(
            Some("s3://class-state/fall".into()),
            &at(stack),
            Some(&aws),
            &none,
        )
        .await
        .expect("a bucket");
        assert!(
            s3.location().starts_with("s3://class-state/fall"),
            "{}",
            s3.location()
        );
        let Err(why) = store_at(Some("s3:///fall".into()), &at(stack), Some(&aws), &none).await
        else {
            panic!("a URL without a bucket must be refused");
        };
        assert!(why.contains("expected s3://BUCKET/PREFIX"), "{why}");
    }
}

#[test]
fn txt_values_are_quoted_in_strings_of_255_and_read_back_as_written() {
    use plinth_aws::resources::route53_record::{quoted, unquoted};
    assert_eq!(quoted("v=spf1 -all"), "\"v=spf1 -all\"");
    assert_eq!(quoted(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
    let dkim = format!("v=DKIM1; k=rsa; p={}", "A".repeat(400));
    let sent = quoted(&dkim);
    let strings: Vec<&str> = sent.split("\" \"").collect();
    assert_eq!(strings.len(), 2, "{sent}");
    assert_eq!(strings[0].len(), 1 + 255, "{sent}");
    for text in ["v=spf1 -all", r#"say "hi" \o/"#, dkim.as_str(), ""] {
        assert_eq!(unquoted(&quoted(text)), text, "round trip of {text:?}");
    }
    // Route 53 lists a long value as several strings: read as one.
    assert_eq!(unquoted("\"abc\" \"def\""), "abcdef");
    // A value written without quotes is taken as it is.
    assert_eq!(unquoted("v=spf1 -all"), "v=spf1 -all");
}

#[test]
fn a_zip_source_is_deployed_byte_for_byte_and_a_false_zip_is_refused() {
    use plinth_aws::resources::lambda_function::{code_sha256, package};
    let zip = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/functions/prebuilt/hello.zip");
    let bytes = std::fs::read(&zip).expect("the example's zip");
    assert_eq!(package(&zip).expect("a package"), bytes);
    assert_eq!(
        code_sha256(&package(&zip).expect("a package")),
        code_sha256(&bytes)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("fake.zip");
    std::fs::write(&fake, "not a zip").expect("write");
    let err = package(&fake).expect_err("refused");
    assert!(err.message.contains("not a zip archive"), "{}", err.message);
}
