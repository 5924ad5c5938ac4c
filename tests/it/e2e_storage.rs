//! What published S3, DynamoDB and logging configurations use (issue 13, items 2, 3 and 6):
//! the examples `s3-site-features.yaml` and `kms-encryption.yaml` applied, checked in the
//! emulator, changed outside plinth and put back, and destroyed to nothing — with the KMS
//! key scheduled for deletion, not deleted, as KMS does.

use aws_sdk_kms::types::KeyState;
use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{Env, Moto};

const ACCOUNT: &str = "123456789012";

fn bucket(name: &str) -> String {
    format!("e2e-example-{name}-{ACCOUNT}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_bucket_with_cors_lifecycle_website_logging_and_object_lock() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_examples("s3-site-features.yaml", "site.yaml");
    let vars = ["--var", "student=e2e"];
    let run = |cmd: &'static str, extra: &[&'static str]| {
        let mut args = vec![cmd, "site.yaml"];
        args.extend(vars);
        args.extend(extra);
        env.plinth(&args)
    };
    let apply = run("apply", &["--yes"]).ok();
    assert!(
        apply.stdout.contains(&format!(
            "website = \"http://{}.s3-website-us-east-1.amazonaws.com\"",
            bucket("website")
        )),
        "{}",
        apply.stdout
    );

    let s3 = env.s3();
    let site = bucket("website");
    let website = s3
        .get_bucket_website()
        .bucket(&site)
        .send()
        .await
        .expect("website");
    assert_eq!(
        website.index_document().map(|d| d.suffix()),
        Some("index.html")
    );
    assert_eq!(website.error_document().map(|d| d.key()), Some("404.html"));
    let cors = s3
        .get_bucket_cors()
        .bucket(&site)
        .send()
        .await
        .expect("cors");
    let rule = &cors.cors_rules()[0];
    assert_eq!(rule.allowed_origins(), ["https://app.example.com"]);
    assert_eq!(rule.allowed_methods(), ["GET", "HEAD"]);
    assert_eq!(rule.max_age_seconds(), Some(3000));
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&site)
        .send()
        .await
        .expect("lifecycle");
    let rule = &lifecycle.rules()[0];
    assert_eq!(rule.id(), Some("old-builds"));
    assert_eq!(rule.expiration().and_then(|e| e.days()), Some(90));
    assert_eq!(rule.transitions()[0].days(), Some(30));
    let logging = s3
        .get_bucket_logging()
        .bucket(&site)
        .send()
        .await
        .expect("logging");
    let target = logging.logging_enabled().expect("logging on");
    assert_eq!(target.target_bucket(), bucket("access-logs"));
    assert_eq!(target.target_prefix(), "site/");
    let ownership = s3
        .get_bucket_ownership_controls()
        .bucket(&site)
        .send()
        .await
        .expect("ownership");
    let rules = ownership.ownership_controls().expect("controls").rules();
    assert_eq!(rules[0].object_ownership().as_str(), "BucketOwnerEnforced");
    let archive = bucket("archive");
    let lock = s3
        .get_object_lock_configuration()
        .bucket(&archive)
        .send()
        .await
        .expect("object lock");
    let retention = lock
        .object_lock_configuration()
        .and_then(|c| c.rule())
        .and_then(|r| r.default_retention())
        .expect("a default retention");
    assert_eq!(retention.mode().map(|m| m.as_str()), Some("GOVERNANCE"));
    assert_eq!(retention.days(), Some(1));

    let replan = run("plan", &["--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "re-plans clean:\n{}", replan.stdout);

    // Someone widens CORS and drops the lifecycle in the console: the plan shows both, and
    // apply puts them back.
    let wide = aws_sdk_s3::types::CorsRule::builder()
        .allowed_origins("*")
        .allowed_methods("GET")
        .build()
        .expect("rule");
    s3.put_bucket_cors()
        .bucket(&site)
        .cors_configuration(
            aws_sdk_s3::types::CorsConfiguration::builder()
                .cors_rules(wide)
                .build()
                .expect("cors"),
        )
        .send()
        .await
        .expect("put cors");
    s3.delete_bucket_lifecycle()
        .bucket(&site)
        .send()
        .await
        .expect("delete lifecycle");
    let drifted = run("plan", &["--detailed-exitcode"]);
    assert_eq!(drifted.code, 2, "{}", drifted.stdout);
    assert!(drifted.stdout.contains("~ cors"), "{}", drifted.stdout);
    assert!(
        drifted.stdout.contains("~ lifecycle_rules"),
        "{}",
        drifted.stdout
    );
    run("apply", &["--yes"]).ok();
    let cors = s3
        .get_bucket_cors()
        .bucket(&site)
        .send()
        .await
        .expect("cors");
    assert_eq!(
        cors.cors_rules()[0].allowed_origins(),
        ["https://app.example.com"]
    );
    assert_eq!(run("plan", &["--detailed-exitcode"]).code, 0);

    // An object under the governance retention: force_destroy deletes it with the bypass.
    s3.put_object()
        .bucket(&archive)
        .key("grades.csv")
        .body(ByteStream::from_static(b"alice,A\n"))
        .send()
        .await
        .expect("put into the archive");
    let destroy = run("destroy", &["--yes"]).ok();
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    for name in ["website", "archive", "access-logs"] {
        let gone = s3.head_bucket().bucket(bucket(name)).send().await;
        assert!(gone.is_err(), "bucket {name} is gone");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kms_key_encrypts_a_bucket_a_table_and_a_log_group_and_is_scheduled_for_deletion() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_examples("kms-encryption.yaml", "kms.yaml");
    let vars = ["--var", "student=e2e"];
    let run = |cmd: &'static str, extra: &[&'static str]| {
        let mut args = vec![cmd, "kms.yaml"];
        args.extend(vars);
        args.extend(extra);
        env.plinth(&args)
    };
    let cost = run("cost", &[]).ok();
    assert!(
        cost.stdout.contains("customer managed key at $1.00/month"),
        "{}",
        cost.stdout
    );
    run("apply", &["--yes"]).ok();

    let state = env.state("example-kms");
    let key_id = state["resources"]["key"]["id"]
        .as_str()
        .expect("key id")
        .to_string();
    let kms = env.kms();
    let key = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("key");
    let meta = key.key_metadata().expect("metadata");
    let key_arn = meta.arn().expect("arn").to_string();
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    let rotation = kms
        .get_key_rotation_status()
        .key_id(&key_id)
        .send()
        .await
        .expect("rotation");
    assert!(rotation.key_rotation_enabled());
    let by_alias = kms
        .describe_key()
        .key_id("alias/e2e-example-data")
        .send()
        .await
        .expect("the alias names the key");
    assert_eq!(
        by_alias.key_metadata().map(|k| k.key_id()),
        Some(key_id.as_str())
    );

    let s3 = env.s3();
    let encryption = s3
        .get_bucket_encryption()
        .bucket(bucket("encrypted"))
        .send()
        .await
        .expect("bucket encryption");
    let rule = &encryption
        .server_side_encryption_configuration()
        .expect("configuration")
        .rules()[0];
    let default = rule
        .apply_server_side_encryption_by_default()
        .expect("default");
    assert_eq!(default.sse_algorithm().as_str(), "aws:kms");
    assert_eq!(default.kms_master_key_id(), Some(key_arn.as_str()));
    assert_eq!(rule.bucket_key_enabled(), Some(true));

    let table = env
        .dynamodb()
        .describe_table()
        .table_name("e2e-example-encrypted-orders")
        .send()
        .await
        .expect("table");
    let sse = table
        .table()
        .and_then(|t| t.sse_description())
        .expect("SSE on");
    assert_eq!(sse.kms_master_key_arn(), Some(key_arn.as_str()));

    let logs = env.logs();
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/example/e2e/app")
        .send()
        .await
        .expect("log groups");
    let group = &groups.log_groups()[0];
    assert_eq!(group.retention_in_days(), Some(7));
    assert_eq!(group.kms_key_id(), Some(key_arn.as_str()));

    assert_eq!(run("plan", &["--detailed-exitcode"]).code, 0);

    // The table goes back to the AWS owned key outside plinth: the plan says so.
    env.dynamodb()
        .update_table()
        .table_name("e2e-example-encrypted-orders")
        .sse_specification(
            aws_sdk_dynamodb::types::SseSpecification::builder()
                .enabled(false)
                .build(),
        )
        .send()
        .await
        .expect("update table");
    let drifted = run("plan", &["--detailed-exitcode"]);
    assert_eq!(drifted.code, 2, "{}", drifted.stdout);
    assert!(
        drifted.stdout.contains("~ encryption") && drifted.stdout.contains("\"aws_owned\""),
        "{}",
        drifted.stdout
    );
    run("apply", &["--yes"]).ok();
    assert_eq!(run("plan", &["--detailed-exitcode"]).code, 0);

    let destroy = run("destroy", &["--yes"]).ok();
    assert!(
        destroy
            .stdout
            .contains(&format!("KMS key {key_id} is scheduled for deletion on "))
            && destroy.stdout.contains("after its 7-day waiting period"),
        "{}",
        destroy.stdout
    );
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    let key = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("key");
    assert_eq!(
        key.key_metadata().and_then(|k| k.key_state()),
        Some(&KeyState::PendingDeletion)
    );
    let alias = kms
        .describe_key()
        .key_id("alias/e2e-example-data")
        .send()
        .await;
    assert!(alias.is_err(), "the alias is deleted");
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/example/e2e/app")
        .send()
        .await
        .expect("log groups");
    assert!(groups.log_groups().is_empty());

    // A second destroy finds nothing to do: the key pending deletion is not a leftover.
    let again = run("destroy", &["--yes"]).ok();
    assert!(
        again.stdout.contains("Teardown verified"),
        "{}",
        again.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_s3_kms_logs_and_cloudfront_would_refuse_is_said_at_plan_time() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.write(
        "bad.yaml",
        "stack: bad-storage\nregion: us-east-1\nresources:\n  b:\n    type: s3.bucket\n    name: bad-storage-bucket-e2e\n    lifecycle_rules:\n      - { id: ia, transitions: [{ after_days: 7, storage_class: STANDARD_IA }] }\n    object_lock: { mode: GOVERNANCE, days: 1 }\n  k:\n    type: kms.key\n    key_spec: RSA_2048\n    rotation: true\n  a:\n    type: kms.alias\n    name: alias/aws/mine\n    target_key: ${k.arn}\n  g:\n    type: logs.log_group\n    name: /bad/group\n    retention_days: 10\n  h:\n    type: cloudfront.response_headers_policy\n    name: bad-headers\n    cors: { allow_origins: [\"*\"], allow_methods: [GET], allow_credentials: true }\n  o:\n    type: cloudfront.origin_request_policy\n    name: bad-forward\n    headers: { behavior: whitelist }\n  a2:\n    type: cloudfront.origin_request_policy\n    name: bad-auth\n    headers: { behavior: whitelist, names: [Authorization] }\n",
    );
    let plan = env.plinth(&["plan", "bad.yaml"]);
    assert_ne!(plan.code, 0);
    for expected in [
        "after 30 days at the earliest, not 7",
        "object lock needs `versioning: true`",
        "KMS rotates symmetric encryption keys only, not RSA_2048",
        "names under alias/aws/ are AWS's own",
        "keeps events for one of 1, 3, 5, 7, 14",
        "browsers refuse credentials with Access-Control-Allow-Origin: *",
        "behavior whitelist needs the names it applies to",
        "CloudFront does not forward Authorization through an origin request policy",
    ] {
        assert!(
            plan.stderr.contains(expected),
            "{expected}:\n{}",
            plan.stderr
        );
    }
}

/// (resource id, dimension, min, max, target) of every DynamoDB scalable target of
/// `table`, sorted.
async fn scaling_of(env: &Env, table: &str) -> Vec<(String, String, i32, i32, Option<f64>)> {
    use aws_sdk_applicationautoscaling::types::ServiceNamespace;
    let client = env.autoscaling();
    let targets = client
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Dynamodb)
        .send()
        .await
        .expect("targets");
    let mut out = Vec::new();
    for target in targets.scalable_targets() {
        if !target.resource_id().starts_with(&format!("table/{table}")) {
            continue;
        }
        let policies = client
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Dynamodb)
            .resource_id(target.resource_id())
            .scalable_dimension(target.scalable_dimension().clone())
            .send()
            .await
            .expect("policies");
        let goal = policies
            .scaling_policies()
            .first()
            .and_then(|p| p.target_tracking_scaling_policy_configuration())
            .map(|c| c.target_value());
        out.push((
            target.resource_id().to_string(),
            target.scalable_dimension().as_str().to_string(),
            target.min_capacity(),
            target.max_capacity(),
            goal,
        ));
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

/// Issue 13, item 5: a provisioned table and its index autoscaled through Application Auto
/// Scaling; the capacities AWS then sets never show in a plan and are never set back; the
/// targets change in place and go before the table does.
#[tokio::test(flavor = "multi_thread")]
async fn an_autoscaled_table_keeps_what_aws_scaled_and_leaves_no_target_behind() {
    use aws_sdk_dynamodb::types::ProvisionedThroughput;
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_examples("dynamodb-autoscaling.yaml", "scores.yaml");
    let args = |cmd: &'static str, extra: &[&'static str]| {
        let mut all = vec![cmd, "scores.yaml", "--var", "student=e2e"];
        all.extend(extra);
        all
    };
    env.plinth(&args("apply", &["--yes"])).ok();
    let table = "e2e-autoscaled-scores";
    let index = format!("table/{table}/index/by-lab");
    let own = format!("table/{table}");
    let row = |id: &str, dimension: &str, min, max, target| {
        (
            id.to_string(),
            dimension.to_string(),
            min,
            max,
            Some(target),
        )
    };
    assert_eq!(
        scaling_of(&env, table).await,
        [
            row(&own, "dynamodb:table:ReadCapacityUnits", 5, 100, 70.0),
            row(&own, "dynamodb:table:WriteCapacityUnits", 5, 50, 70.0),
            row(&index, "dynamodb:index:ReadCapacityUnits", 2, 20, 60.0),
        ]
    );
    let ddb = env.dynamodb();
    let described = ddb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("table");
    let throughput = described
        .table()
        .and_then(|t| t.provisioned_throughput())
        .expect("throughput");
    assert_eq!(
        (
            throughput.read_capacity_units(),
            throughput.write_capacity_units()
        ),
        (Some(5), Some(5)),
        "the table starts at the minimums"
    );
    assert_eq!(env.plinth(&args("plan", &["--detailed-exitcode"])).code, 0);

    // AWS scales the reads up under load: no difference, and nothing sets them back.
    ddb.update_table()
        .table_name(table)
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(40)
                .write_capacity_units(5)
                .build()
                .expect("throughput"),
        )
        .send()
        .await
        .expect("scaled");
    let plan = env.plinth(&args("plan", &["--detailed-exitcode"]));
    assert_eq!(plan.code, 0, "{}", plan.stdout);

    // Writes may grow further; the index's reads go back to a fixed capacity.
    let stack = env.read("scores.yaml");
    env.write(
        "scores.yaml",
        &stack
            .replace("write: { min: 5, max: 50 }", "write: { min: 5, max: 80 }")
            .replace(
                "        autoscaling:\n          read: { min: 2, max: 20, target: 60 }\n",
                "        read_capacity: 2\n",
            ),
    );
    let plan = env.plinth(&args("plan", &["--detailed-exitcode"]));
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("updated in place"), "{}", plan.stdout);
    env.plinth(&args("apply", &["--yes"])).ok();
    assert_eq!(
        scaling_of(&env, table).await,
        [
            row(&own, "dynamodb:table:ReadCapacityUnits", 5, 100, 70.0),
            row(&own, "dynamodb:table:WriteCapacityUnits", 5, 80, 70.0),
        ]
    );
    let described = ddb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("table");
    let read = described
        .table()
        .and_then(|t| t.provisioned_throughput())
        .and_then(|t| t.read_capacity_units());
    assert_eq!(read, Some(40), "what AWS scaled to stays");
    assert_eq!(env.plinth(&args("plan", &["--detailed-exitcode"])).code, 0);

    let destroy = env.plinth(&args("destroy", &["--yes"])).ok();
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    assert_eq!(scaling_of(&env, table).await, [], "no target left behind");
    assert!(ddb.describe_table().table_name(table).send().await.is_err());
}

/// The regions DynamoDB lists as replicas of `table` (in `region`), with their status.
async fn replicas_of(env: &Env, region: &str, table: &str) -> Option<Vec<(String, String)>> {
    let out = env
        .dynamodb_at(region)
        .describe_table()
        .table_name(table)
        .send()
        .await
        .ok()?;
    let mut replicas: Vec<(String, String)> = out
        .table()?
        .replicas()
        .iter()
        .map(|r| {
            (
                r.region_name().unwrap_or_default().to_string(),
                r.replica_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    replicas.sort();
    Some(replicas)
}

/// Issue 13, item 5: a global table replicated to another region, tagged there, a region
/// added and one removed in place, and both copies gone after destroy.
#[tokio::test(flavor = "multi_thread")]
async fn a_global_table_gains_and_loses_replicas_in_place_and_destroys_them_all() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_examples("dynamodb-global-table.yaml", "global.yaml");
    let args = |cmd: &'static str, extra: &[&'static str]| {
        let mut all = vec![cmd, "global.yaml", "--var", "student=e2e"];
        all.extend(extra);
        all
    };
    env.plinth(&args("apply", &["--yes"])).ok();
    let table = "e2e-global-scores";
    assert_eq!(
        replicas_of(&env, "us-east-1", table).await,
        Some(vec![("eu-west-1".to_string(), "ACTIVE".to_string())])
    );
    let replica_arn = format!("arn:aws:dynamodb:eu-west-1:123456789012:table/{table}");
    let tags = env
        .dynamodb_at("eu-west-1")
        .list_tags_of_resource()
        .resource_arn(&replica_arn)
        .send()
        .await
        .expect("the replica's tags");
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "plinth:stack" && t.value() == "example-global"),
        "the replica carries the stack's tags: {:?}",
        tags.tags()
    );
    assert_eq!(env.plinth(&args("plan", &["--detailed-exitcode"])).code, 0);

    // Another region, and Europe no more: in place, one region at a time.
    let stack = env.read("global.yaml");
    env.write(
        "global.yaml",
        &stack.replace("replicas: [eu-west-1]", "replicas: [us-west-2]"),
    );
    let plan = env.plinth(&args("plan", &["--detailed-exitcode"]));
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("updated in place"), "{}", plan.stdout);
    env.plinth(&args("apply", &["--yes"])).ok();
    assert_eq!(
        replicas_of(&env, "us-east-1", table).await,
        Some(vec![("us-west-2".to_string(), "ACTIVE".to_string())])
    );
    assert_eq!(
        replicas_of(&env, "eu-west-1", table).await,
        None,
        "the European copy is gone"
    );
    assert_eq!(env.plinth(&args("plan", &["--detailed-exitcode"])).code, 0);

    let destroy = env.plinth(&args("destroy", &["--yes"])).ok();
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    // The replica's region is searched too, not only the stack's.
    assert!(
        destroy.stdout.contains("is left in us-east-1, us-west-2"),
        "{}",
        destroy.stdout
    );
    for region in ["us-east-1", "us-west-2", "eu-west-1"] {
        assert_eq!(replicas_of(&env, region, table).await, None, "{region}");
        let left = env.tagged(region, Some("example-global")).await;
        assert!(left.is_empty(), "{region}: {left:?}");
    }
}

/// A destroy reads nothing before it deletes, yet a replica someone added in the console
/// (the state knows none) is not left behind billing: DeleteTable's answer names it.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_added_outside_plinth_is_destroyed_with_its_table() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_examples("dynamodb-global-table.yaml", "global.yaml");
    let stack = env.read("global.yaml");
    env.write(
        "global.yaml",
        &stack.replace("replicas: [eu-west-1]", "replicas: []"),
    );
    let args = |cmd: &'static str| vec![cmd, "global.yaml", "--var", "student=e2e", "--yes"];
    env.plinth(&args("apply")).ok();
    let table = "e2e-global-scores";
    assert_eq!(replicas_of(&env, "us-east-1", table).await, Some(vec![]));
    env.dynamodb()
        .update_table()
        .table_name(table)
        .replica_updates(
            aws_sdk_dynamodb::types::ReplicationGroupUpdate::builder()
                .create(
                    aws_sdk_dynamodb::types::CreateReplicationGroupMemberAction::builder()
                        .region_name("us-west-2")
                        .build()
                        .expect("replica action"),
                )
                .build(),
        )
        .send()
        .await
        .expect("a replica added by hand");
    // Until it is ACTIVE (the emulator settles it as AWS does).
    for _ in 0..50 {
        let replicas = replicas_of(&env, "us-east-1", table).await;
        if replicas == Some(vec![("us-west-2".to_string(), "ACTIVE".to_string())]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(replicas_of(&env, "us-west-2", table).await.is_some());

    env.plinth(&args("destroy")).ok();
    for region in ["us-east-1", "us-west-2"] {
        assert_eq!(replicas_of(&env, region, table).await, None, "{region}");
    }
}
