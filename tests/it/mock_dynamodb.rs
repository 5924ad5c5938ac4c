//! `dynamodb.table` and `dynamodb.items` against replayed DynamoDB responses: what the
//! emulator cannot show (tables and indexes that take time, busy and limit errors, throttling,
//! unprocessed batch items, deletion protection), plus plain tests of the item conversion and
//! of the canonical form both sides of a diff must share.
//!
//! Clients run with the SDK's own retries off, so every mocked response is exactly one call
//! and the rules (in `RuleMode::Sequential`) pin the order of calls.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::update_table::UpdateTableInput;
use aws_sdk_dynamodb::operation::update_time_to_live::UpdateTimeToLiveInput;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, BillingModeSummary,
    GlobalSecondaryIndexDescription, IndexStatus, KeySchemaElement, KeyType, Projection,
    ProjectionType, ProvisionedThroughputDescription, ScalarAttributeType, StreamSpecification,
    StreamViewType, TableDescription, TableStatus,
};
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use plinth_aws::resources::dynamodb_items::{
    canonical_value, item_from_attributes, item_to_attributes, DynamodbItems,
};
use plinth_aws::resources::dynamodb_table::{props_from_description, DynamodbTable, TableExtras};
use plinth_core::resource::{ErrorKind, NormalizeContext, OpContext, Progress, ResourceType};
use plinth_core::value::{path_to_string, PathSeg, Props};
use serde_json::{json, Value};

use crate::mock_support::{json_error, json_ok, mocked_aws, REGION};

const ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/users";

fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

fn any_order_client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

fn table_type(client: Client) -> DynamodbTable {
    let aws = mocked_aws();
    aws.insert_dynamodb(REGION, client);
    DynamodbTable::new(aws)
}

fn items_type(client: Client) -> DynamodbItems {
    let aws = mocked_aws();
    aws.insert_dynamodb(REGION, client);
    DynamodbItems::new(aws)
}

/// Keeps every progress message, to show that a wait really happened.
#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);

impl Progress for Recorded {
    fn status(&self, message: &str) {
        self.0.lock().expect("lock").push(message.to_string());
    }
}

fn ctx_with(progress: Arc<Recorded>) -> OpContext {
    OpContext::new(REGION, "users").with_progress(progress)
}

fn ctx() -> OpContext {
    OpContext::new(REGION, "users")
}

fn obj(value: Value) -> Props {
    value.as_object().cloned().expect("an object")
}

/// Desired `users` table properties as the core hands them over: tags merged, normalized.
fn desired(extra: Value) -> Props {
    let mut props = obj(json!({
        "name": "users",
        "partition_key": {"name": "UserId", "type": "S"},
        "tags": {"plinth:stack": "lab", "plinth:workspace": "default", "plinth:resource": "users"},
    }));
    props.extend(obj(extra));
    table_type(client(&[]))
        .normalize(&mut props, &NormalizeContext::default())
        .expect("normalizes");
    props
}

fn gsi(name: &str, attribute: &str) -> Value {
    json!({"name": name, "partition_key": {"name": attribute, "type": "S"}})
}

/// A DescribeTable body for the on-demand `users` table with these (index, key, status).
fn users_table(status: &str, indexes: &[(&str, &str, &str)]) -> Value {
    let mut definitions = vec![json!({"AttributeName": "UserId", "AttributeType": "S"})];
    let gsis: Vec<Value> = indexes
        .iter()
        .map(|(name, attribute, status)| {
            definitions.push(json!({"AttributeName": attribute, "AttributeType": "S"}));
            json!({
                "IndexName": name,
                "KeySchema": [{"AttributeName": attribute, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
                "IndexStatus": status,
                "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0, "NumberOfDecreasesToday": 0},
                "IndexArn": format!("{ARN}/index/{name}")
            })
        })
        .collect();
    let mut table = json!({
        "TableName": "users",
        "TableArn": ARN,
        "TableId": "0b1c2d3e-0000-4000-8000-000000000000",
        "TableStatus": status,
        "AttributeDefinitions": definitions,
        "KeySchema": [{"AttributeName": "UserId", "KeyType": "HASH"}],
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0, "NumberOfDecreasesToday": 0},
        "CreationDateTime": 1.7e9,
        "ItemCount": 0,
        "TableSizeBytes": 0,
        "DeletionProtectionEnabled": false
    });
    if !gsis.is_empty() {
        table["GlobalSecondaryIndexes"] = Value::Array(gsis);
    }
    table
}

fn describe_rule(status: &str, indexes: &[(&str, &str, &str)]) -> Rule {
    let body = json!({ "Table": users_table(status, indexes) });
    mock!(Client::describe_table)
        .match_requests(|r| r.table_name() == Some("users"))
        .then_http_response(move || json_ok(body.clone()))
}

/// DescribeTable answering `table`, as changed by `edit`.
fn describe_edited(edit: impl Fn(&mut Value)) -> Rule {
    let mut table = users_table("ACTIVE", &[]);
    edit(&mut table);
    let body = json!({ "Table": table });
    mock!(Client::describe_table).then_http_response(move || json_ok(body.clone()))
}

fn not_found_rule() -> Rule {
    mock!(Client::describe_table).then_http_response(|| {
        json_error(
            400,
            "ResourceNotFoundException",
            "Requested resource not found: Table: users not found",
        )
    })
}

/// DescribeTimeToLive and DescribeContinuousBackups of a table that does not exist.
fn settings_of_a_missing_table() -> (Rule, Rule) {
    let ttl = mock!(Client::describe_time_to_live).then_http_response(|| {
        json_error(
            400,
            "ResourceNotFoundException",
            "Requested resource not found: Table: users not found",
        )
    });
    let pitr = mock!(Client::describe_continuous_backups)
        .then_http_response(|| json_error(400, "TableNotFoundException", "Table not found: users"));
    (ttl, pitr)
}

/// The index names an UpdateTable creates, and the attributes it defines.
fn creates(input: &UpdateTableInput) -> (Vec<String>, Vec<String>) {
    let created = input
        .global_secondary_index_updates()
        .iter()
        .filter_map(|u| u.create().map(|c| c.index_name().to_string()))
        .collect();
    let mut defined: Vec<String> = input
        .attribute_definitions()
        .iter()
        .map(|d| d.attribute_name().to_string())
        .collect();
    defined.sort();
    (created, defined)
}

// ---------------------------------------------------------------------------------------------
// dynamodb.table

#[tokio::test]
async fn create_sends_everything_and_waits_from_creating_to_active() {
    let create = mock!(Client::create_table)
        .match_requests(|r| {
            let tags: Vec<(&str, &str)> = r.tags().iter().map(|t| (t.key(), t.value())).collect();
            r.table_name() == Some("users")
                && r.billing_mode() == Some(&BillingMode::PayPerRequest)
                && r.provisioned_throughput().is_none()
                && r.attribute_definitions().len() == 1
                && r.key_schema()[0].attribute_name() == "UserId"
                && r.deletion_protection_enabled() == Some(false)
                && tags.contains(&("plinth:stack", "lab"))
                && tags.len() == 3
        })
        .then_http_response(|| json_ok(json!({"TableDescription": users_table("CREATING", &[])})));
    let creating = describe_rule("CREATING", &[]);
    let active = describe_rule("ACTIVE", &[]);
    let table = table_type(client(&[&create, &creating, &active]));
    let progress = Arc::new(Recorded::default());

    let props = desired(json!({}));
    let observed = table
        .create(&ctx_with(progress.clone()), &props)
        .await
        .expect("created");

    assert_eq!(
        (create.num_calls(), creating.num_calls(), active.num_calls()),
        (1, 1, 1)
    );
    assert_eq!(observed.id, "users");
    assert_eq!(
        observed.props, props,
        "the observation is the canonical desired state"
    );
    assert_eq!(observed.attrs.get("arn"), Some(&json!(ARN)));
    assert_eq!(observed.attrs.get("stream_arn"), None);
    let messages = progress.0.lock().expect("lock").clone();
    assert_eq!(
        messages,
        vec!["waiting for table users to be ACTIVE (CREATING)".to_string()]
    );
}

#[tokio::test]
async fn create_sets_ttl_and_retries_pitr_while_backups_are_unavailable() {
    let create = mock!(Client::create_table)
        .then_http_response(|| json_ok(json!({"TableDescription": users_table("CREATING", &[])})));
    let active = describe_rule("ACTIVE", &[]);
    let ttl = mock!(Client::update_time_to_live)
        .match_requests(|r| {
            r.time_to_live_specification()
                .is_some_and(|s| s.enabled() && s.attribute_name() == "ExpiresAt")
        })
        .then_http_response(|| {
            json_ok(
                json!({"TimeToLiveSpecification": {"Enabled": true, "AttributeName": "ExpiresAt"}}),
            )
        });
    let backups_busy = mock!(Client::update_continuous_backups).then_http_response(|| {
        json_error(
            400,
            "ContinuousBackupsUnavailableException",
            "Backups are being enabled for the table: users. Please retry later",
        )
    });
    let pitr = mock!(Client::update_continuous_backups)
        .match_requests(|r| {
            r.point_in_time_recovery_specification()
                .is_some_and(|s| s.point_in_time_recovery_enabled())
        })
        .then_http_response(|| {
            json_ok(json!({"ContinuousBackupsDescription": {
                "ContinuousBackupsStatus": "ENABLED",
                "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "ENABLED"}
            }}))
        });
    let table = table_type(client(&[&create, &active, &ttl, &backups_busy, &pitr]));

    let props = desired(json!({"ttl_attribute": "ExpiresAt", "point_in_time_recovery": true}));
    let observed = table.create(&ctx(), &props).await.expect("created");

    assert_eq!(
        (ttl.num_calls(), backups_busy.num_calls(), pitr.num_calls()),
        (1, 1, 1)
    );
    assert_eq!(
        observed.props.get("ttl_attribute"),
        Some(&json!("ExpiresAt"))
    );
    assert_eq!(
        observed.props.get("point_in_time_recovery"),
        Some(&json!(true))
    );
}

#[tokio::test]
async fn create_retries_throttling_but_reports_a_taken_name() {
    let throttled = mock!(Client::create_table).then_http_response(|| {
        json_error(
            400,
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        )
    });
    let created = mock!(Client::create_table)
        .then_http_response(|| json_ok(json!({"TableDescription": users_table("CREATING", &[])})));
    let active = describe_rule("ACTIVE", &[]);
    let table = table_type(client(&[&throttled, &created, &active]));
    table
        .create(&ctx(), &desired(json!({})))
        .await
        .expect("created after a retry");
    assert_eq!((throttled.num_calls(), created.num_calls()), (1, 1));

    // Someone else's table under the name (its owner tags are another stack's).
    let mut rules = table_reads("another-stack");
    rules.push(table_exists());
    let table = table_type(any_order_client(&rules.iter().collect::<Vec<_>>()));
    let err = table
        .create(&ctx(), &desired(json!({})))
        .await
        .expect_err("name taken");
    assert_eq!(err.kind, ErrorKind::Invalid, "not retried as busy: {err}");
    assert!(
        err.message.contains("a table named users already exists"),
        "{err}"
    );
    assert_eq!(rules[4].num_calls(), 1);
}

#[tokio::test]
async fn gsi_addition_is_retried_after_limit_exceeded_and_in_use() {
    let limited = mock!(Client::update_table).then_http_response(|| {
        json_error(
            400,
            "LimitExceededException",
            "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table",
        )
    });
    let in_use = mock!(Client::update_table).then_http_response(|| {
        json_error(
            400,
            "ResourceInUseException",
            "Attempt to change a resource which is still in use: Table is being updated: users",
        )
    });
    let accepted = mock!(Client::update_table)
        .match_requests(|r| creates(r) == (vec!["by_email".into()], vec!["Email".into(), "UserId".into()]))
        .then_http_response(|| {
            json_ok(json!({"TableDescription": users_table("UPDATING", &[("by_email", "Email", "CREATING")])}))
        });
    let building = describe_rule("ACTIVE", &[("by_email", "Email", "CREATING")]);
    let built = describe_rule("ACTIVE", &[("by_email", "Email", "ACTIVE")]);
    let table = table_type(client(&[&limited, &in_use, &accepted, &building, &built]));
    let progress = Arc::new(Recorded::default());

    let before = desired(json!({}));
    let after = desired(json!({"global_secondary_indexes": [gsi("by_email", "Email")]}));
    let observed = table
        .update(&ctx_with(progress.clone()), "users", &before, &after)
        .await
        .expect("updated");

    assert_eq!(
        (
            limited.num_calls(),
            in_use.num_calls(),
            accepted.num_calls()
        ),
        (1, 1, 1)
    );
    assert_eq!((building.num_calls(), built.num_calls()), (1, 1));
    assert_eq!(observed.props, after);
    let messages = progress.0.lock().expect("lock").clone();
    assert!(
        messages
            .contains(&"creating index by_email: LimitExceededException — retrying".to_string()),
        "{messages:?}"
    );
    assert!(
        messages
            .contains(&"creating index by_email: ResourceInUseException — retrying".to_string()),
        "{messages:?}"
    );
    assert!(
        messages.contains(
            &"waiting for table users to be ACTIVE (index by_email CREATING)".to_string()
        ),
        "{messages:?}"
    );
}

#[tokio::test]
async fn two_gsi_additions_are_two_updates_with_a_wait_between() {
    let first = mock!(Client::update_table)
        .match_requests(|r| {
            creates(r)
                == (
                    vec!["by_email".into()],
                    vec!["Email".into(), "UserId".into()],
                )
        })
        .then_http_response(|| json_ok(json!({"TableDescription": users_table("UPDATING", &[])})));
    let first_building = describe_rule("ACTIVE", &[("by_email", "Email", "CREATING")]);
    let first_built = describe_rule("ACTIVE", &[("by_email", "Email", "ACTIVE")]);
    let second = mock!(Client::update_table)
        .match_requests(|r| {
            creates(r)
                == (
                    vec!["by_team".into()],
                    vec!["Email".into(), "Team".into(), "UserId".into()],
                )
        })
        .then_http_response(|| json_ok(json!({"TableDescription": users_table("UPDATING", &[])})));
    let both = describe_rule(
        "ACTIVE",
        &[
            ("by_email", "Email", "ACTIVE"),
            ("by_team", "Team", "ACTIVE"),
        ],
    );
    let table = table_type(client(&[
        &first,
        &first_building,
        &first_built,
        &second,
        &both,
    ]));

    let before = desired(json!({}));
    // Written out of order: canonical form sorts indexes by name.
    let after = desired(
        json!({"global_secondary_indexes": [gsi("by_team", "Team"), gsi("by_email", "Email")]}),
    );
    let observed = table
        .update(&ctx(), "users", &before, &after)
        .await
        .expect("updated");

    for rule in [&first, &first_building, &first_built, &second, &both] {
        assert_eq!(rule.num_calls(), 1);
    }
    let names: Vec<&Value> = after["global_secondary_indexes"]
        .as_array()
        .expect("list")
        .iter()
        .map(|g| &g["name"])
        .collect();
    assert_eq!(names, vec![&json!("by_email"), &json!("by_team")]);
    assert_eq!(observed.props, after);
}

#[tokio::test]
async fn changed_gsi_is_deleted_then_created_and_capacity_changes_in_place() {
    let provisioned = |extra: Value| {
        let mut p =
            obj(json!({"billing_mode": "provisioned", "read_capacity": 5, "write_capacity": 5}));
        p.extend(obj(extra));
        desired(Value::Object(p))
    };
    let before = provisioned(json!({"global_secondary_indexes": [
        {"name": "by_email", "partition_key": {"name": "Email", "type": "S"}, "read_capacity": 1, "write_capacity": 1},
        {"name": "by_team", "partition_key": {"name": "Team", "type": "S"}, "read_capacity": 1, "write_capacity": 1}
    ]}));
    let after = provisioned(json!({"read_capacity": 10, "global_secondary_indexes": [
        {"name": "by_email", "partition_key": {"name": "Email", "type": "S"}, "read_capacity": 2, "write_capacity": 1},
        {"name": "by_team", "partition_key": {"name": "Team", "type": "S"}, "projection": "keys_only", "read_capacity": 1, "write_capacity": 1}
    ]}));
    let delete = mock!(Client::update_table)
        .match_requests(|r| {
            let updates = r.global_secondary_index_updates();
            updates.len() == 1
                && updates[0]
                    .delete()
                    .is_some_and(|d| d.index_name() == "by_team")
        })
        .then_http_response(|| json_ok(json!({"TableDescription": users_table("UPDATING", &[])})));
    let gone = describe_rule("ACTIVE", &[("by_email", "Email", "ACTIVE")]);
    let capacity = mock!(Client::update_table)
        .match_requests(|r| {
            let updates = r.global_secondary_index_updates();
            r.billing_mode().is_none()
                && r.provisioned_throughput()
                    .map(|t| (t.read_capacity_units(), t.write_capacity_units()))
                    == Some((10, 5))
                && updates.len() == 1
                && updates[0].update().is_some_and(|u| {
                    u.index_name() == "by_email"
                        && u.provisioned_throughput().map(|t| t.read_capacity_units()) == Some(2)
                })
        })
        .then_http_response(|| json_ok(json!({"TableDescription": users_table("UPDATING", &[])})));
    let updated = describe_rule("ACTIVE", &[("by_email", "Email", "ACTIVE")]);
    let recreate = mock!(Client::update_table)
        .match_requests(|r| {
            let create = r
                .global_secondary_index_updates()
                .first()
                .and_then(|u| u.create());
            create.is_some_and(|c| {
                c.index_name() == "by_team"
                    && c.projection().and_then(|p| p.projection_type())
                        == Some(&ProjectionType::KeysOnly)
            })
        })
        .then_http_response(|| json_ok(json!({"TableDescription": users_table("UPDATING", &[])})));
    let done = describe_rule(
        "ACTIVE",
        &[
            ("by_email", "Email", "ACTIVE"),
            ("by_team", "Team", "ACTIVE"),
        ],
    );
    let table = table_type(client(&[
        &delete, &gone, &capacity, &updated, &recreate, &done,
    ]));

    table
        .update(&ctx(), "users", &before, &after)
        .await
        .expect("updated");
    for rule in [&delete, &gone, &capacity, &updated, &recreate, &done] {
        assert_eq!(rule.num_calls(), 1);
    }
}

#[tokio::test]
async fn read_of_a_missing_table_is_none_and_throttling_is_retryable() {
    // The table, its TTL and its backups are read at once; for a missing table each says so
    // in its own words.
    let missing = not_found_rule();
    let (ttl, pitr) = settings_of_a_missing_table();
    let table = table_type(any_order_client(&[&missing, &ttl, &pitr]));
    assert_eq!(
        table
            .read(&ctx(), "users", &Props::new())
            .await
            .expect("read"),
        None
    );
    assert_eq!(missing.num_calls(), 1);

    let throttled = mock!(Client::describe_table).then_http_response(|| {
        json_error(
            400,
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        )
    });
    let (ttl, pitr) = settings_of_a_missing_table();
    let table = table_type(any_order_client(&[&throttled, &ttl, &pitr]));
    let err = table
        .read(&ctx(), "users", &Props::new())
        .await
        .expect_err("throttled");
    assert_eq!(err.kind, ErrorKind::Retryable);
    assert_eq!(err.code.as_deref(), Some("ThrottlingException"));
}

#[tokio::test]
async fn read_returns_what_normalize_gives_for_the_same_table() {
    let mut table_json = users_table(
        "ACTIVE",
        &[
            ("by_team", "Team", "ACTIVE"),
            ("by_email", "Email", "ACTIVE"),
        ],
    );
    table_json["GlobalSecondaryIndexes"][0]["Projection"] =
        json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": ["Name", "Age"]});
    table_json["StreamSpecification"] =
        json!({"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"});
    table_json["LatestStreamArn"] = json!(format!("{ARN}/stream/2024-01-01T00:00:00.000"));
    let describe = {
        let body = json!({ "Table": table_json });
        mock!(Client::describe_table).then_http_response(move || json_ok(body.clone()))
    };
    let ttl = mock!(Client::describe_time_to_live).then_http_response(|| {
        json_ok(json!({"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "ExpiresAt"}}))
    });
    let pitr = mock!(Client::describe_continuous_backups).then_http_response(|| {
        json_ok(json!({"ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}
        }}))
    });
    let tags = mock!(Client::list_tags_of_resource)
        .match_requests(|r| r.resource_arn() == Some(ARN))
        .then_http_response(|| {
            json_ok(json!({"Tags": [
                {"Key": "plinth:resource", "Value": "users"},
                {"Key": "aws:cloudformation:stack-name", "Value": "not ours"},
                {"Key": "plinth:stack", "Value": "lab"},
                {"Key": "plinth:workspace", "Value": "default"}
            ]}))
        });
    let table = table_type(any_order_client(&[&describe, &ttl, &pitr, &tags]));

    let observed = table
        .read(&ctx(), "users", &Props::new())
        .await
        .expect("read")
        .expect("exists");
    let want = desired(json!({
        "billing_mode": "on_demand",
        "global_secondary_indexes": [
            {"name": "by_team", "partition_key": {"name": "Team", "type": "S"},
             "projection": "include", "non_key_attributes": ["Age", "Name"]},
            gsi("by_email", "Email")
        ],
        "stream_view_type": "new_and_old_images",
        "ttl_attribute": "ExpiresAt"
    }));
    assert_eq!(observed.props, want);
    assert_eq!(
        serde_json::to_string(&observed.props).expect("json"),
        serde_json::to_string(&want).expect("json"),
        "same order too, so plans and state files are stable"
    );
    assert_eq!(
        observed.attrs.get("stream_arn"),
        Some(&json!(format!("{ARN}/stream/2024-01-01T00:00:00.000")))
    );
    for rule in [&describe, &ttl, &pitr, &tags] {
        assert_eq!(rule.num_calls(), 1);
    }
}

#[tokio::test]
async fn delete_waits_until_the_table_is_gone() {
    let delete = mock!(Client::delete_table)
        .then_http_response(|| json_ok(json!({"TableDescription": users_table("DELETING", &[])})));
    // The table as AWS has it first (a destroy reads nothing else before deleting).
    let present = describe_rule("ACTIVE", &[]);
    let deleting = describe_rule("DELETING", &[]);
    let gone = not_found_rule();
    let table = table_type(client(&[&present, &delete, &deleting, &gone]));
    table
        .delete(&ctx(), "users", &desired(json!({})))
        .await
        .expect("deleted");
    assert_eq!(
        (
            present.num_calls(),
            delete.num_calls(),
            deleting.num_calls(),
            gone.num_calls()
        ),
        (1, 1, 1, 1)
    );

    // Already gone: success, without a delete or a wait.
    let missing = not_found_rule();
    let table = table_type(client(&[&missing]));
    table
        .delete(&ctx(), "users", &desired(json!({})))
        .await
        .expect("nothing to delete");
    assert_eq!(missing.num_calls(), 1);
}

#[tokio::test]
async fn deletion_protection_refuses_delete_without_disabling_it() {
    // AWS says protected: refused before any change is asked for (one rule: a DeleteTable
    // would fail the test).
    let protected = describe_edited(|t| t["DeletionProtectionEnabled"] = json!(true));
    let table = table_type(client(&[&protected]));
    let props = desired(json!({}));
    let err = table
        .delete(&ctx(), "users", &props)
        .await
        .expect_err("protected");
    assert_eq!(protected.num_calls(), 1);
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message.contains("set deletion_protection: false"),
        "{err}"
    );

    // Protected between the read and the delete: the same clear error, no retries.
    let present = describe_rule("ACTIVE", &[]);
    let refused = mock!(Client::delete_table).then_http_response(|| {
        json_error(
            400,
            "ValidationException",
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
        )
    });
    let table = table_type(client(&[&present, &refused]));
    let err = table
        .delete(&ctx(), "users", &desired(json!({})))
        .await
        .expect_err("protected in AWS");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message.contains("set deletion_protection: false"),
        "{err}"
    );
    assert_eq!(refused.num_calls(), 1);
}

/// What reading the ACTIVE `users` table answers, its owner tags naming stack `owner`.
fn table_reads(owner: &'static str) -> Vec<Rule> {
    let describe = describe_rule("ACTIVE", &[]);
    let ttl = mock!(Client::describe_time_to_live).then_http_response(|| {
        json_ok(json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}))
    });
    let pitr = mock!(Client::describe_continuous_backups).then_http_response(|| {
        json_ok(
            json!({"ContinuousBackupsDescription": {"ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}}}),
        )
    });
    let tags = mock!(Client::list_tags_of_resource).then_http_response(move || {
        json_ok(json!({"Tags": [
            {"Key": "plinth:stack", "Value": owner},
            {"Key": "plinth:workspace", "Value": "default"},
            {"Key": "plinth:resource", "Value": "users"}
        ]}))
    });
    vec![describe, ttl, pitr, tags]
}

#[tokio::test]
async fn find_adopts_only_a_table_with_this_resources_tags() {
    let reads = |owner: &'static str| {
        let rules = table_reads(owner);
        table_type(any_order_client(&rules.iter().collect::<Vec<_>>()))
    };
    let props = desired(json!({}));
    let ours = reads("lab").find(&ctx(), &props).await.expect("find");
    assert_eq!(ours.map(|o| o.id), Some("users".to_string()));
    let theirs = reads("another-stack")
        .find(&ctx(), &props)
        .await
        .expect("find");
    assert_eq!(theirs, None);
}

/// CreateTable's answer when the name is taken, exactly as AWS sends it.
fn table_exists() -> Rule {
    mock!(Client::create_table).then_http_response(|| {
        json_error(400, "ResourceInUseException", "Table already exists: users")
    })
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_adopts_the_table_it_made() {
    // The SDK sent CreateTable again after the first answer was lost: AWS says the table
    // exists, and it carries this resource's owner tags (given at creation).
    let mut rules = table_reads("lab");
    rules.push(table_exists());
    let table = table_type(any_order_client(&rules.iter().collect::<Vec<_>>()));
    let observed = table
        .create(&ctx(), &desired(json!({})))
        .await
        .expect("adopted, not refused");
    assert_eq!(observed.id, "users");
    assert_eq!(rules[4].num_calls(), 1, "one create, not a second");
}

// ---------------------------------------------------------------------------------------------
// dynamodb.table: canonical form and checks, no mocks

fn description(gsi_names: &[&str]) -> TableDescription {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key")
    };
    let mut definitions = vec!["UserId", "Joined"];
    definitions.extend(gsi_names.iter().map(|_| "Team"));
    definitions.dedup();
    let mut builder = TableDescription::builder()
        .table_name("users")
        .table_arn(ARN)
        .table_status(TableStatus::Active)
        .key_schema(key("UserId", KeyType::Hash))
        .key_schema(key("Joined", KeyType::Range))
        .billing_mode_summary(
            BillingModeSummary::builder()
                .billing_mode(BillingMode::Provisioned)
                .build(),
        )
        .provisioned_throughput(
            ProvisionedThroughputDescription::builder()
                .read_capacity_units(5)
                .write_capacity_units(3)
                .build(),
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::KeysOnly)
                .build()
                .expect("stream"),
        )
        .deletion_protection_enabled(true);
    for name in definitions {
        let ty = if name == "Joined" {
            ScalarAttributeType::N
        } else {
            ScalarAttributeType::S
        };
        builder = builder.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ty)
                .build()
                .expect("definition"),
        );
    }
    for name in gsi_names {
        builder = builder.global_secondary_indexes(
            GlobalSecondaryIndexDescription::builder()
                .index_name(*name)
                .key_schema(key("Team", KeyType::Hash))
                .key_schema(key("Joined", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .index_status(IndexStatus::Active)
                .provisioned_throughput(
                    ProvisionedThroughputDescription::builder()
                        .read_capacity_units(1)
                        .write_capacity_units(2)
                        .build(),
                )
                .build(),
        );
    }
    builder.build()
}

#[test]
fn described_table_and_normalized_desired_props_are_equal() {
    let desc = description(&["z_index", "a_index"]);
    let extras = TableExtras {
        ttl_attribute: None,
        point_in_time_recovery: false,
        tags: [("plinth:stack".to_string(), "lab".to_string())].into(),
    };
    let read = props_from_description(&desc, &extras).expect("maps");
    let index = |name: &str| {
        json!({"name": name, "partition_key": {"name": "Team", "type": "S"},
               "sort_key": {"name": "Joined", "type": "N"}, "projection": "keys_only",
               "read_capacity": 1, "write_capacity": 2})
    };
    let mut want = obj(json!({
        "name": "users",
        "partition_key": {"name": "UserId", "type": "S"},
        "sort_key": {"name": "Joined", "type": "N"},
        "billing_mode": "provisioned",
        "read_capacity": 5,
        "write_capacity": 3,
        "global_secondary_indexes": [index("z_index"), index("a_index")],
        "local_secondary_indexes": [],
        "stream_view_type": "keys_only",
        "deletion_protection": true,
        "tags": {"plinth:stack": "lab"}
    }));
    DynamodbTable::new(mocked_aws())
        .normalize(&mut want, &NormalizeContext::default())
        .expect("normalizes");
    assert_eq!(read, want);
    assert_eq!(
        want.get("table_class"),
        Some(&json!("standard")),
        "default filled in"
    );
    assert_eq!(want.get("point_in_time_recovery"), Some(&json!(false)));
    assert_eq!(
        want.get("local_secondary_indexes"),
        None,
        "empty lists are absent"
    );
    assert_eq!(
        want["global_secondary_indexes"][0]["name"],
        json!("a_index")
    );
}

#[test]
fn check_reports_capacity_projection_and_type_problems_by_path() {
    let table = DynamodbTable::new(mocked_aws());
    let issues = table.check(&obj(json!({
        "name": "users",
        "partition_key": {"name": "UserId", "type": "S"},
        "billing_mode": "provisioned",
        "read_capacity": 5,
        "global_secondary_indexes": [
            {"name": "by_id", "partition_key": {"name": "UserId", "type": "N"},
             "projection": "include", "read_capacity": 1, "write_capacity": 1}
        ]
    })));
    let found: Vec<(String, String)> = issues
        .iter()
        .map(|i| {
            (
                plinth_core::value::path_to_string(&i.path),
                i.message.clone(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "write_capacity".to_string(),
                "write_capacity is required for the table when billing_mode is provisioned"
                    .to_string()
            ),
            (
                "global_secondary_indexes[0].non_key_attributes".to_string(),
                "non_key_attributes is required when projection is include".to_string()
            ),
            (
                "global_secondary_indexes[0].partition_key.type".to_string(),
                "attribute UserId is type N here but S at partition_key".to_string()
            ),
        ]
    );

    let on_demand = table.check(&obj(json!({
        "name": "users",
        "partition_key": {"name": "UserId", "type": "S"},
        "read_capacity": 5,
        "local_secondary_indexes": [{"name": "by_age", "sort_key": {"name": "Age", "type": "N"}}]
    })));
    let paths: Vec<Vec<PathSeg>> = on_demand.iter().map(|i| i.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            vec![PathSeg::Key("read_capacity".into())],
            vec![PathSeg::Key("local_secondary_indexes".into())],
        ]
    );

    // Values not known until apply are skipped, not reported.
    let unknown = table.check(&obj(json!({
        "name": "users",
        "partition_key": {"name": "UserId", "type": "S"},
        "billing_mode": plinth_core::value::UNKNOWN,
    })));
    assert_eq!(unknown, vec![]);
}

// ---------------------------------------------------------------------------------------------
// dynamodb.items

fn user_item(id: &str, score: i64) -> Value {
    json!({"UserId": id, "Score": score})
}

/// What one BatchWriteItem asks for: `put u-1` / `delete u-2`, in request order.
fn writes(input: &BatchWriteItemInput) -> Vec<String> {
    let id = |attrs: &std::collections::HashMap<String, AttributeValue>| {
        attrs
            .get("UserId")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    input
        .request_items()
        .and_then(|m| m.get("users"))
        .map(|requests| {
            requests
                .iter()
                .map(|r| match (r.put_request(), r.delete_request()) {
                    (Some(put), _) => format!("put {}", id(put.item())),
                    (_, Some(delete)) => format!("delete {}", id(delete.key())),
                    _ => "?".to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn gets(input: &BatchGetItemInput) -> Vec<String> {
    input
        .request_items()
        .and_then(|m| m.get("users"))
        .map(|k| {
            k.keys()
                .iter()
                .map(|key| {
                    key.get("UserId")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn items_props(items: Vec<Value>) -> Props {
    let mut props = obj(json!({"table": "users", "items": items}));
    items_type(client(&[]))
        .normalize(&mut props, &NormalizeContext::default())
        .expect("normalizes");
    props
}

#[tokio::test]
async fn batch_writes_hold_25_and_unprocessed_items_are_resent() {
    let items: Vec<Value> = (0..27)
        .map(|i| user_item(&format!("u-{i:02}"), i))
        .collect();
    let describe = describe_rule("ACTIVE", &[]);
    let first = mock!(Client::batch_write_item)
        .match_requests(|r| {
            let w = writes(r);
            w.len() == 25 && w[0] == "put u-00" && w[24] == "put u-24"
        })
        .then_http_response(|| {
            json_ok(json!({"UnprocessedItems": {"users": [
                {"PutRequest": {"Item": {"UserId": {"S": "u-23"}, "Score": {"N": "23"}}}},
                {"PutRequest": {"Item": {"UserId": {"S": "u-24"}, "Score": {"N": "24"}}}}
            ]}}))
        });
    let resent = mock!(Client::batch_write_item)
        .match_requests(|r| writes(r) == ["put u-23", "put u-24"])
        .then_http_response(|| json_ok(json!({"UnprocessedItems": {}})));
    let rest = mock!(Client::batch_write_item)
        .match_requests(|r| writes(r) == ["put u-25", "put u-26"])
        .then_http_response(|| json_ok(json!({"UnprocessedItems": {}})));
    let seeded = items_type(client(&[&describe, &first, &resent, &rest]));

    let props = items_props(items);
    let observed = seeded.create(&ctx(), &props).await.expect("written");

    for rule in [&describe, &first, &resent, &rest] {
        assert_eq!(rule.num_calls(), 1);
    }
    assert_eq!(observed.id, "users");
    assert_eq!(observed.attrs.get("count"), Some(&json!(27)));
    assert_eq!(observed.props, props);
}

#[tokio::test]
async fn throttled_batch_write_is_retried() {
    let describe = describe_rule("ACTIVE", &[]);
    let throttled = mock!(Client::batch_write_item).then_http_response(|| {
        json_error(
            400,
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
        )
    });
    let accepted = mock!(Client::batch_write_item)
        .match_requests(|r| writes(r) == ["put u-1"])
        .then_http_response(|| json_ok(json!({"UnprocessedItems": {}})));
    let seeded = items_type(client(&[&describe, &throttled, &accepted]));
    seeded
        .create(&ctx(), &items_props(vec![user_item("u-1", 1)]))
        .await
        .expect("written after a retry");
    assert_eq!((throttled.num_calls(), accepted.num_calls()), (1, 1));
}

#[tokio::test]
async fn items_without_their_key_or_with_a_repeated_key_are_refused() {
    let describe = describe_rule("ACTIVE", &[]);
    let seeded = items_type(client(&[&describe]));
    let props = items_props(vec![user_item("u-1", 1), json!({"Name": "no key"})]);
    let err = seeded
        .create(&ctx(), &props)
        .await
        .expect_err("missing key");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(
        err.message,
        "items[1] has no UserId attribute (the table's partition key)"
    );

    let describe = describe_rule("ACTIVE", &[]);
    let seeded = items_type(client(&[&describe]));
    let props = items_props(vec![
        user_item("u-1", 1),
        user_item("u-2", 2),
        user_item("u-1", 3),
    ]);
    let err = seeded
        .create(&ctx(), &props)
        .await
        .expect_err("repeated key");
    assert_eq!(
        err.message,
        "items[0] and items[2] have the same key [\"u-1\"]"
    );
}

#[tokio::test]
async fn read_gets_exactly_the_managed_keys_in_prior_order_resending_unprocessed_keys() {
    let prior = items_props(vec![
        user_item("u-3", 3),
        user_item("u-1", 1),
        user_item("u-2", 2),
    ]);
    let describe = describe_rule("ACTIVE", &[]);
    let first = mock!(Client::batch_get_item)
        .match_requests(|r| {
            gets(r) == ["u-3", "u-1", "u-2"]
                && r.request_items().and_then(|m| m.get("users")).and_then(|k| k.consistent_read()) == Some(true)
        })
        .then_http_response(|| {
            json_ok(json!({
                "Responses": {"users": [{"UserId": {"S": "u-1"}, "Score": {"N": "1.0"}}]},
                "UnprocessedKeys": {"users": {"Keys": [{"UserId": {"S": "u-3"}}, {"UserId": {"S": "u-2"}}], "ConsistentRead": true}}
            }))
        });
    let second = mock!(Client::batch_get_item)
        .match_requests(|r| gets(r) == ["u-3", "u-2"])
        .then_http_response(|| {
            // u-2 was deleted behind plinth's back; u-3 changed.
            json_ok(json!({
                "Responses": {"users": [{"UserId": {"S": "u-3"}, "Score": {"N": "30"}}]},
                "UnprocessedKeys": {}
            }))
        });
    let seeded = items_type(client(&[&describe, &first, &second]));

    let observed = seeded
        .read(&ctx(), "users", &prior)
        .await
        .expect("read")
        .expect("table exists");

    assert_eq!(
        observed.props.get("items"),
        Some(&json!([user_item("u-3", 30), user_item("u-1", 1)]))
    );
    assert_eq!(observed.attrs.get("count"), Some(&json!(2)));
    for rule in [&describe, &first, &second] {
        assert_eq!(rule.num_calls(), 1);
    }
}

#[tokio::test]
async fn read_without_a_table_is_none_and_import_scans_everything() {
    let missing = not_found_rule();
    let seeded = items_type(client(&[&missing]));
    let prior = items_props(vec![user_item("u-1", 1)]);
    assert_eq!(
        seeded.read(&ctx(), "users", &prior).await.expect("read"),
        None
    );

    let describe = describe_rule("ACTIVE", &[]);
    let page1 = mock!(Client::scan)
        .match_requests(|r| r.exclusive_start_key().is_none())
        .then_http_response(|| {
            json_ok(
                json!({"Items": [{"UserId": {"S": "u-2"}}], "Count": 1, "ScannedCount": 1,
                           "LastEvaluatedKey": {"UserId": {"S": "u-2"}}}),
            )
        });
    let page2 = mock!(Client::scan)
        .match_requests(|r| r.exclusive_start_key().is_some())
        .then_http_response(|| {
            json_ok(json!({"Items": [{"UserId": {"S": "u-1"}, "Tags": {"SS": ["b", "a"]}}], "Count": 1, "ScannedCount": 1}))
        });
    let seeded = items_type(client(&[&describe, &page1, &page2]));
    let observed = seeded
        .read(&ctx(), "users", &Props::new())
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        observed.props.get("items"),
        Some(&json!([{"Tags": {"$string_set": ["a", "b"]}, "UserId": "u-1"}, {"UserId": "u-2"}]))
    );
}

#[tokio::test]
async fn update_puts_only_changed_items_and_deletes_only_removed_ones() {
    let before = items_props(vec![
        user_item("u-1", 1),
        user_item("u-2", 2),
        user_item("u-3", 3),
    ]);
    let after = items_props(vec![
        user_item("u-1", 1),
        user_item("u-2", 20),
        user_item("u-4", 4),
    ]);
    let describe = describe_rule("ACTIVE", &[]);
    let write = mock!(Client::batch_write_item)
        .match_requests(|r| writes(r) == ["delete u-3", "put u-2", "put u-4"])
        .then_http_response(|| json_ok(json!({"UnprocessedItems": {}})));
    let seeded = items_type(client(&[&describe, &write]));

    let observed = seeded
        .update(&ctx(), "users", &before, &after)
        .await
        .expect("updated");
    assert_eq!(write.num_calls(), 1);
    assert_eq!(observed.props, after);
    assert_eq!(observed.attrs.get("count"), Some(&json!(3)));

    // Nothing changed: no write at all.
    let describe = describe_rule("ACTIVE", &[]);
    let seeded = items_type(client(&[&describe]));
    seeded
        .update(&ctx(), "users", &after, &after)
        .await
        .expect("no-op");
}

#[tokio::test]
async fn delete_removes_the_managed_items_and_a_missing_table_is_success() {
    let props = items_props(vec![user_item("u-1", 1), user_item("u-2", 2)]);
    let describe = describe_rule("ACTIVE", &[]);
    let write = mock!(Client::batch_write_item)
        .match_requests(|r| writes(r) == ["delete u-1", "delete u-2"])
        .then_http_response(|| json_ok(json!({"UnprocessedItems": {}})));
    let seeded = items_type(client(&[&describe, &write]));
    seeded
        .delete(&ctx(), "users", &props)
        .await
        .expect("deleted");
    assert_eq!(write.num_calls(), 1);

    let missing = not_found_rule();
    let seeded = items_type(client(&[&missing]));
    seeded
        .delete(&ctx(), "users", &props)
        .await
        .expect("table already gone");
}

// ---------------------------------------------------------------------------------------------
// dynamodb.items: conversion and canonical form, no mocks

#[test]
fn plain_values_convert_to_the_attribute_values_they_stand_for() {
    let item = json!({
        "UserId": "u-1",
        "Age": 41,
        "Ratio": 0.25,
        "Whole": 2.0,
        "Admin": true,
        "Manager": null,
        "Roles": ["a", 1],
        "Address": {"City": "Oslo"},
        "Avatar": {"$binary": "aGVsbG8="},
        "Tags": {"$string_set": ["b", "a"]},
        "Scores": {"$number_set": [3, 1.5]},
        "Keys": {"$binary_set": ["AQ==", "AA=="]}
    });
    let attrs = item_to_attributes(&item).expect("converts");
    assert_eq!(attrs["UserId"], AttributeValue::S("u-1".into()));
    assert_eq!(attrs["Age"], AttributeValue::N("41".into()));
    assert_eq!(attrs["Ratio"], AttributeValue::N("0.25".into()));
    assert_eq!(attrs["Whole"], AttributeValue::N("2".into()));
    assert_eq!(attrs["Admin"], AttributeValue::Bool(true));
    assert_eq!(attrs["Manager"], AttributeValue::Null(true));
    assert_eq!(
        attrs["Roles"],
        AttributeValue::L(vec![
            AttributeValue::S("a".into()),
            AttributeValue::N("1".into())
        ])
    );
    assert_eq!(
        attrs["Address"],
        AttributeValue::M([("City".to_string(), AttributeValue::S("Oslo".into()))].into())
    );
    assert_eq!(
        attrs["Avatar"],
        AttributeValue::B(Blob::new(b"hello".to_vec()))
    );
    assert_eq!(
        attrs["Tags"],
        AttributeValue::Ss(vec!["b".into(), "a".into()])
    );
    assert_eq!(
        attrs["Scores"],
        AttributeValue::Ns(vec!["3".into(), "1.5".into()])
    );
    assert_eq!(
        attrs["Keys"],
        AttributeValue::Bs(vec![Blob::new(vec![1]), Blob::new(vec![0])])
    );

    // And back: sets sorted, 2.0 is 2 (as DynamoDB stores it), typed maps as written.
    let back = item_from_attributes(&attrs).expect("converts back");
    let mut want = item.clone();
    want["Whole"] = json!(2);
    want["Tags"] = json!({"$string_set": ["a", "b"]});
    want["Scores"] = json!({"$number_set": [1.5, 3]});
    want["Keys"] = json!({"$binary_set": ["AA==", "AQ=="]});
    assert_eq!(back, want);
    assert_eq!(
        canonical_value(&back).expect("canonical"),
        back,
        "canonical form is a fixed point"
    );
}

#[test]
fn numbers_compare_the_way_dynamodb_stores_them() {
    assert_eq!(canonical_value(&json!(1.0)).expect("n"), json!(1));
    assert_eq!(canonical_value(&json!(-0.0)).expect("n"), json!(0));
    assert_eq!(canonical_value(&json!(1e3)).expect("n"), json!(1000));
    assert_eq!(canonical_value(&json!(0.1)).expect("n"), json!(0.1));
    assert_eq!(
        canonical_value(&json!(u64::MAX)).expect("n"),
        json!(u64::MAX)
    );
    let stored: std::collections::HashMap<String, AttributeValue> =
        [("N".to_string(), AttributeValue::N("1.50E+1".into()))].into();
    assert_eq!(
        item_from_attributes(&stored).expect("reads"),
        json!({"N": 15})
    );
}

#[test]
fn numbers_a_float_cannot_hold_reach_dynamodb_and_come_back_with_every_digit() {
    let n = |av: &AttributeValue| av.as_n().expect("an N").clone();
    let item = json!({
        "Price": {"$number": "12345678901234567.890"},
        "BigInt": {"$number": "12345678901234567890123"},
        "Tiny": {"$number": "1.00000000000000000001E-100"},
        "Set": {"$number_set": [{"$number": "12345678901234567.89"}, 1.5]},
    });
    let attrs = item_to_attributes(&item).expect("converts");
    assert_eq!(
        n(&attrs["Price"]),
        "12345678901234567.89",
        "normalised as DynamoDB does"
    );
    assert_eq!(n(&attrs["BigInt"]), "12345678901234567890123");
    assert_eq!(n(&attrs["Tiny"]), "1.00000000000000000001E-100");
    // What DynamoDB answers, in whatever spelling, reads back as the stack wrote it.
    let stored: std::collections::HashMap<String, AttributeValue> = [
        (
            "Price".to_string(),
            AttributeValue::N("12345678901234567.89".into()),
        ),
        (
            "BigInt".to_string(),
            AttributeValue::N("1.2345678901234567890123E+22".into()),
        ),
        ("Plain".to_string(), AttributeValue::N("1.50".into())),
    ]
    .into();
    assert_eq!(
        item_from_attributes(&stored).expect("reads"),
        json!({
            "BigInt": {"$number": "12345678901234567890123"},
            "Plain": 1.5,
            "Price": {"$number": "12345678901234567.89"},
        })
    );
    // The canonical form of what the stack wrote equals what the read gives: no false change.
    assert_eq!(
        canonical_value(&json!({"$number": "12345678901234567.890"})).expect("n"),
        json!({"$number": "12345678901234567.89"})
    );
    assert_ne!(
        canonical_value(&json!({"$number": "12345678901234567.89"})).expect("n"),
        canonical_value(&json!({"$number": "12345678901234567.88"})).expect("n"),
        "a cent is a difference"
    );
}

#[test]
fn numbers_dynamodb_cannot_hold_are_errors_at_their_place() {
    let err = |item: Value| item_to_attributes(&item).expect_err("refused");
    let digits = format!("1.{}", "1".repeat(38));
    assert_eq!(
        err(json!({"Pi": {"$number": digits}})),
        format!("Pi: {digits} has 39 significant digits; DynamoDB keeps at most 38")
    );
    assert!(err(json!({"Huge": {"$number": "1E126"}}))
        .starts_with("Huge: 1E126 is out of DynamoDB's range"));
    assert!(err(json!({"Small": 1e-131})).starts_with("Small: 1e-131 is out of DynamoDB's range"));
    let rt = items_type(client(&[]));
    let written =
        obj(json!({"table": "users", "items": [{"id": "a", "n": {"$number": "1E-131"}}]}));
    let issues = rt.check(&written);
    assert_eq!(issues.len(), 1);
    assert_eq!(path_to_string(&issues[0].path), "items[0].n");
}

#[test]
fn bad_typed_values_are_errors_naming_where_they_are() {
    let err = |item: Value| item_to_attributes(&item).expect_err("refused");
    assert_eq!(
        err(json!({"Tags": {"$string_set": ["a", "a"]}})),
        "Tags.$string_set[1]: duplicate set member \"a\""
    );
    assert_eq!(
        err(json!({"Scores": {"$number_set": [1, 1.0]}})),
        "Scores.$number_set[1]: duplicate set member 1.0"
    );
    assert_eq!(
        err(json!({"Tags": {"$string_set": []}})),
        "Tags.$string_set: DynamoDB sets cannot be empty"
    );
    assert!(err(json!({"Data": [{"$binary": "not base64!"}]}))
        .starts_with("Data[0].$binary: \"not base64!\" is not valid base64"));
    assert_eq!(
        item_to_attributes(&json!("x")).expect_err("not a map"),
        "each item must be a map, found \"x\""
    );
}

#[test]
fn normalize_merges_items_file_and_canonicalises() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("users.yaml"),
        "- UserId: u-2\n  Score: 2.0\n  Tags: {$string_set: [pear, apple]}\n- {UserId: u-3}\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("more.json"),
        r#"[{"UserId": "u-4", "Score": 1.5}]"#,
    )
    .expect("write");
    let seeded = items_type(client(&[]));
    let ctx = NormalizeContext {
        base_dir: dir.path().to_path_buf(),
    };

    let mut props = obj(
        json!({"table": "users", "items": [{"UserId": "u-1", "Score": 1.0}], "items_file": "users.yaml"}),
    );
    seeded.normalize(&mut props, &ctx).expect("normalizes");
    assert_eq!(
        Value::Object(props.clone()),
        json!({"table": "users", "items": [
            {"Score": 1, "UserId": "u-1"},
            {"Score": 2, "Tags": {"$string_set": ["apple", "pear"]}, "UserId": "u-2"},
            {"UserId": "u-3"}
        ]})
    );
    assert!(!props.contains_key("items_file"));

    let mut json_file = obj(json!({"table": "users", "items_file": "more.json"}));
    seeded.normalize(&mut json_file, &ctx).expect("normalizes");
    assert_eq!(
        json_file.get("items"),
        Some(&json!([{"Score": 1.5, "UserId": "u-4"}]))
    );

    // The same items written differently are the same canonical items.
    let mut again = obj(json!({"table": "users", "items": [
        {"UserId": "u-1", "Score": 1},
        {"UserId": "u-2", "Tags": {"$string_set": ["pear", "apple"]}, "Score": 2},
        {"UserId": "u-3"}
    ]}));
    seeded.normalize(&mut again, &ctx).expect("normalizes");
    assert_eq!(again, props);
    assert_eq!(
        serde_json::to_string(&again).expect("json"),
        serde_json::to_string(&props).expect("json"),
        "maps in items are sorted, so equal items also serialise identically"
    );

    let mut missing = obj(json!({"table": "users", "items_file": "nope.yaml"}));
    let err = seeded
        .normalize(&mut missing, &ctx)
        .expect_err("no such file");
    assert!(err.message.contains("nope.yaml"), "{err}");

    std::fs::write(dir.path().join("map.yaml"), "UserId: u-1\n").expect("write");
    let mut not_a_list = obj(json!({"table": "users", "items_file": "map.yaml"}));
    let err = seeded.normalize(&mut not_a_list, &ctx).expect_err("a map");
    assert!(
        err.message
            .ends_with("expected a list of items, found a map"),
        "{err}"
    );

    let mut bad_item = obj(
        json!({"table": "users", "items": [{"UserId": "u-1"}, {"Set": {"$number_set": ["x"]}}]}),
    );
    let err = seeded.normalize(&mut bad_item, &ctx).expect_err("bad set");
    assert_eq!(
        err.message,
        "items[1].Set.$number_set[0]: expected a number, found \"x\""
    );
}

// ---------------------------------------------------------------------------------------------
// TTL: DynamoDB takes one change per table in about an hour

fn ttl_change(enabled: bool, attribute: &'static str) -> impl Fn(&UpdateTimeToLiveInput) -> bool {
    move |r: &UpdateTimeToLiveInput| {
        r.time_to_live_specification()
            .is_some_and(|s| s.enabled() == enabled && s.attribute_name() == attribute)
    }
}

#[tokio::test]
async fn moving_ttl_to_another_attribute_turns_it_off_now_and_says_when_to_apply_again() {
    let before = desired(json!({"ttl_attribute": "ExpiresAt"}));
    let after = desired(json!({"ttl_attribute": "DeleteAfter"}));
    let table = table_type(client(&[]));
    let notes = table.change_notes(&before, &after);
    assert!(
        notes.len() == 1
            && notes[0].contains("turns TTL off on ExpiresAt")
            && notes[0].contains("an hour later"),
        "{notes:?}"
    );
    let off = mock!(Client::update_time_to_live)
        .match_requests(ttl_change(false, "ExpiresAt"))
        .then_http_response(|| {
            json_ok(
                json!({"TimeToLiveSpecification": {"Enabled": false, "AttributeName": "ExpiresAt"}}),
            )
        });
    let active = describe_rule("ACTIVE", &[]);
    let table = table_type(client(&[&off, &active]));
    let ctx = ctx();
    let observed = table
        .update(&ctx, "users", &before, &after)
        .await
        .expect("the first half");
    assert_eq!(off.num_calls(), 1, "no second TTL change in the same hour");
    assert_eq!(
        observed.props.get("ttl_attribute"),
        None,
        "TTL is off: the next plan turns it on"
    );
    assert!(
        ctx.notices()
            .iter()
            .any(|n| n.contains("apply again then to turn it on for DeleteAfter")),
        "{:?}",
        ctx.notices()
    );
}

#[tokio::test]
async fn a_second_ttl_change_within_the_hour_is_a_clear_error_not_a_retry_loop() {
    let refused = mock!(Client::update_time_to_live).then_http_response(|| {
        json_error(
            400,
            "ValidationException",
            "Time to live has been modified multiple times within a fixed interval",
        )
    });
    let table = table_type(client(&[&refused]));
    let err = table
        .update(
            &ctx(),
            "users",
            &desired(json!({})),
            &desired(json!({"ttl_attribute": "DeleteAfter"})),
        )
        .await
        .expect_err("refused");
    assert_eq!(refused.num_calls(), 1);
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message
            .contains("one TTL change per table in about an hour")
            && err.message.contains("apply again in an hour"),
        "{err}"
    );
}

#[tokio::test]
async fn a_ttl_change_whose_answer_was_lost_is_done_when_aws_says_it_already_is() {
    // The SDK sent UpdateTimeToLive again after the first answer was lost.
    let already = mock!(Client::update_time_to_live).then_http_response(|| {
        json_error(400, "ValidationException", "TimeToLive is already enabled")
    });
    let active = describe_rule("ACTIVE", &[]);
    let table = table_type(client(&[&already, &active]));
    let observed = table
        .update(
            &ctx(),
            "users",
            &desired(json!({})),
            &desired(json!({"ttl_attribute": "ExpiresAt"})),
        )
        .await
        .expect("already enabled is done");
    assert_eq!(
        observed.props.get("ttl_attribute"),
        Some(&json!("ExpiresAt"))
    );
}

// ---------------------------------------------------------------------------------------------
// Autoscaling (Application Auto Scaling)

/// An Application Auto Scaling (JSON 1.1) error exactly as AWS sends it.
fn autoscaling_error(
    aws_type: &str,
    message: &str,
) -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    use aws_smithy_runtime_api::http::StatusCode;
    let body = format!(r#"{{"__type":"{aws_type}","Message":"{message}"}}"#);
    let mut response = aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
        StatusCode::try_from(400).expect("status"),
        aws_smithy_types::body::SdkBody::from(body),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.1");
    response
}

fn autoscaling_client(rules: &[&Rule]) -> aws_sdk_applicationautoscaling::Client {
    mock_client!(
        aws_sdk_applicationautoscaling,
        RuleMode::Sequential,
        rules,
        |c| c.retry_config(aws_sdk_applicationautoscaling::config::retry::RetryConfig::disabled())
    )
}

fn autoscaled_desired() -> Props {
    desired(json!({
        "billing_mode": "provisioned",
        "read_capacity": null,
        "write_capacity": null,
        "autoscaling": {"read": {"min": 5, "max": 100}, "write": {"min": 5, "max": 50}}
    }))
}

#[tokio::test]
async fn a_deleted_table_deregisters_its_scalable_targets_first() {
    use aws_sdk_applicationautoscaling::operation::deregister_scalable_target::DeregisterScalableTargetOutput;
    use aws_sdk_applicationautoscaling::operation::describe_scalable_targets::DescribeScalableTargetsOutput;
    use aws_sdk_applicationautoscaling::types::{
        ScalableDimension, ScalableTarget, ServiceNamespace,
    };
    use aws_sdk_applicationautoscaling::Client as Scaling;
    let target = |dimension: ScalableDimension| {
        ScalableTarget::builder()
            .service_namespace(ServiceNamespace::Dynamodb)
            .resource_id("table/users")
            .scalable_dimension(dimension)
            .min_capacity(5)
            .max_capacity(100)
            .role_arn("arn:aws:iam::123456789012:role/aws-service-role/dynamodb.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable")
            .creation_time(aws_sdk_applicationautoscaling::primitives::DateTime::from_secs(0))
            .build()
            .expect("target")
    };
    // Whatever is registered, whoever registered it (a swept table's state says nothing).
    let registered = mock!(Scaling::describe_scalable_targets)
        .match_requests(|r| r.resource_ids() == ["table/users"])
        .then_output(move || {
            DescribeScalableTargetsOutput::builder()
                .scalable_targets(target(ScalableDimension::DynamoDbTableReadCapacityUnits))
                .scalable_targets(target(ScalableDimension::DynamoDbTableWriteCapacityUnits))
                .build()
        });
    let read = mock!(Scaling::deregister_scalable_target)
        .match_requests(|r| {
            r.resource_id() == Some("table/users")
                && r.scalable_dimension().map(|d| d.as_str())
                    == Some("dynamodb:table:ReadCapacityUnits")
        })
        .then_output(|| DeregisterScalableTargetOutput::builder().build());
    // Deregistered by hand meanwhile: nothing left to do.
    let write = mock!(Scaling::deregister_scalable_target).then_http_response(|| {
        autoscaling_error("ObjectNotFoundException", "No scalable target registered for service namespace: dynamodb, resource ID: table/users, scalable dimension: dynamodb:table:WriteCapacityUnits")
    });
    let delete = mock!(Client::delete_table)
        .then_http_response(|| json_ok(json!({"TableDescription": users_table("DELETING", &[])})));
    let gone = not_found_rule();
    // Provisioned, as AWS describes a table that always was (no BillingModeSummary).
    let provisioned = describe_edited(|t| {
        t.as_object_mut().map(|t| t.remove("BillingModeSummary"));
    });
    let aws = mocked_aws();
    aws.insert_dynamodb(REGION, client(&[&provisioned, &delete, &gone]));
    aws.insert_autoscaling(REGION, autoscaling_client(&[&registered, &read, &write]));
    let swept =
        desired(json!({"billing_mode": "provisioned", "read_capacity": 5, "write_capacity": 5}));
    DynamodbTable::new(aws)
        .delete(&ctx(), "users", &swept)
        .await
        .expect("deleted");
    assert_eq!(
        (
            registered.num_calls(),
            read.num_calls(),
            write.num_calls(),
            delete.num_calls()
        ),
        (1, 1, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn registering_is_retried_while_the_service_linked_role_propagates() {
    use aws_sdk_applicationautoscaling::operation::put_scaling_policy::PutScalingPolicyOutput;
    use aws_sdk_applicationautoscaling::operation::register_scalable_target::RegisterScalableTargetOutput;
    use aws_sdk_applicationautoscaling::Client as Scaling;
    use plinth_aws::resources::dynamodb_autoscaling::{apply, Scaling as Range, Scalings};
    let not_yet = mock!(Scaling::register_scalable_target).then_http_response(|| {
        autoscaling_error("ValidationException", "Unable to assume IAM role: arn:aws:iam::123456789012:role/aws-service-role/dynamodb.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable")
    });
    let registered = mock!(Scaling::register_scalable_target)
        .match_requests(|r| r.min_capacity() == Some(5) && r.max_capacity() == Some(100))
        .then_output(|| RegisterScalableTargetOutput::builder().build());
    let policy = mock!(Scaling::put_scaling_policy)
        .match_requests(|r| {
            r.target_tracking_scaling_policy_configuration()
                .map(|c| c.target_value())
                == Some(70.0)
        })
        .then_output(|| {
            PutScalingPolicyOutput::builder()
                .policy_arn("arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:1:resource/dynamodb/table/users:policyName/plinth-read-capacity-utilization")
                .build()
                .expect("output")
        });
    let client = autoscaling_client(&[&not_yet, &registered, &policy]);
    let mut wanted = Scalings::new();
    wanted.insert(
        "read",
        Range {
            min: 5,
            max: 100,
            target: 70.0,
        },
    );
    apply(
        &ctx(),
        &client,
        "table/users",
        false,
        (&Scalings::new(), &wanted),
    )
    .await
    .expect("registered once the role is usable");
    assert_eq!(
        (
            not_yet.num_calls(),
            registered.num_calls(),
            policy.num_calls()
        ),
        (1, 1, 1)
    );
}

#[test]
fn autoscaling_owns_its_capacities_and_checks_what_aws_refuses() {
    let table = DynamodbTable::new(mocked_aws());
    let props = autoscaled_desired();
    assert!(!props.contains_key("read_capacity"), "{props:?}");
    assert_eq!(
        props["autoscaling"]["read"]["target"],
        json!(70.0),
        "the default target"
    );
    assert!(table.check(&props).is_empty(), "{:?}", table.check(&props));
    let mut both = props.clone();
    both.insert("read_capacity".into(), json!(10));
    both.insert(
        "autoscaling".into(),
        json!({"read": {"min": 50, "max": 10, "target": 95}}),
    );
    let found: Vec<String> = table
        .check(&both)
        .iter()
        .map(|i| format!("{}: {}", path_to_string(&i.path), i.message))
        .collect();
    for expected in [
        "read_capacity: read_capacity is set by autoscaling",
        "autoscaling.read.min: min (50) is above max (10)",
        "autoscaling.read.target: the target utilization is a percentage from 20 to 90",
        "write_capacity: write_capacity is required",
    ] {
        assert!(
            found.iter().any(|f| f.starts_with(expected)),
            "{expected} in {found:#?}"
        );
    }
}

#[test]
fn an_autoscaled_minimum_from_a_variable_is_still_autoscaled_at_validate() {
    let table = DynamodbTable::new(mocked_aws());
    let mut props = obj(json!({
        "name": "users",
        "partition_key": {"name": "UserId", "type": "S"},
        "billing_mode": "provisioned",
        "write_capacity": 5,
        "autoscaling": {"read": {"min": plinth_core::value::UNKNOWN, "max": 100}}
    }));
    table
        .normalize(&mut props, &NormalizeContext::default())
        .expect("normalizes");
    assert!(table.check(&props).is_empty(), "{:?}", table.check(&props));
    assert!(!props.contains_key("read_capacity"));
}

#[test]
fn replicas_need_the_new_and_old_images_stream_and_autoscaled_provisioned_writes() {
    let table = DynamodbTable::new(mocked_aws());
    let messages = |extra: Value| -> Vec<String> {
        table
            .check(&desired(extra))
            .iter()
            .map(|i| format!("{}: {}", path_to_string(&i.path), i.message))
            .collect()
    };
    let ok = messages(json!({"replicas": ["eu-west-1"], "stream_view_type": "new_and_old_images"}));
    assert!(ok.is_empty(), "{ok:?}");
    let no_stream = messages(json!({"replicas": ["eu-west-1"], "stream_view_type": "new_image"}));
    assert!(
        no_stream
            .iter()
            .any(|m| m.starts_with("stream_view_type: replicas are kept in sync")),
        "{no_stream:?}"
    );
    let fixed = messages(json!({
        "replicas": ["eu-west-1"],
        "stream_view_type": "new_and_old_images",
        "billing_mode": "provisioned",
        "read_capacity": 5,
        "write_capacity": 5
    }));
    assert!(
        fixed
            .iter()
            .any(|m| m.contains("needs its writes autoscaled")),
        "{fixed:?}"
    );
    let scaled = messages(json!({
        "replicas": ["eu-west-1"],
        "stream_view_type": "new_and_old_images",
        "billing_mode": "provisioned",
        "read_capacity": 5,
        "autoscaling": {"write": {"min": 5, "max": 50}}
    }));
    assert!(scaled.is_empty(), "{scaled:?}");
    let bad_region =
        messages(json!({"replicas": ["Europe"], "stream_view_type": "new_and_old_images"}));
    assert!(
        bad_region
            .iter()
            .any(|m| m.starts_with("replicas[0]: expected a region name")),
        "{bad_region:?}"
    );
    // A set: sorted, duplicates dropped, absent when empty.
    let props = desired(json!({"replicas": ["us-west-2", "eu-west-1", "us-west-2"]}));
    assert_eq!(props["replicas"], json!(["eu-west-1", "us-west-2"]));
    assert!(!desired(json!({"replicas": []})).contains_key("replicas"));
}

#[tokio::test]
async fn a_batch_of_tables_asks_for_its_tags_in_one_call_by_the_arns_of_the_account() {
    use aws_sdk_resourcegroupstagging::operation::get_resources::GetResourcesOutput;
    use aws_sdk_resourcegroupstagging::types::{ResourceTagMapping, Tag};
    const ORDERS_ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";
    let mut orders = users_table("ACTIVE", &[]);
    orders["TableName"] = json!("orders");
    orders["TableArn"] = json!(ORDERS_ARN);
    let describe_users = describe_rule("ACTIVE", &[]);
    let describe_orders = mock!(Client::describe_table)
        .match_requests(|r| r.table_name() == Some("orders"))
        .then_http_response(move || json_ok(json!({ "Table": orders.clone() })));
    let ttl = mock!(Client::describe_time_to_live).then_http_response(|| {
        json_ok(json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}))
    });
    let pitr = mock!(Client::describe_continuous_backups).then_http_response(|| {
        json_ok(json!({"ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}
        }}))
    });
    // The index says someone changed the orders table's tags by hand: being an index that
    // lags, it is not taken at its word, the table's own tags are read.
    let own_tags = mock!(Client::list_tags_of_resource)
        .match_requests(|r| r.resource_arn() == Some(ORDERS_ARN))
        .then_http_response(|| json_ok(json!({"Tags": [{"Key": "course", "Value": "db102"}]})));
    let identity = mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
        aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
            .account("123456789012")
            .build()
    });
    let mapping = |arn: &str, course: &str| {
        ResourceTagMapping::builder()
            .resource_arn(arn)
            .tags(
                Tag::builder()
                    .key("course")
                    .value(course)
                    .build()
                    .expect("tag"),
            )
            .build()
    };
    let index = mock!(aws_sdk_resourcegroupstagging::Client::get_resources)
        .match_requests(|r| r.resource_arn_list() == [ARN, ORDERS_ARN])
        .then_output(move || {
            GetResourcesOutput::builder()
                .resource_tag_mapping_list(mapping(ARN, "db101"))
                .resource_tag_mapping_list(mapping(ORDERS_ARN, "db102"))
                .build()
        });
    let aws = mocked_aws();
    aws.insert_dynamodb(
        REGION,
        any_order_client(&[&describe_users, &describe_orders, &ttl, &pitr, &own_tags]),
    );
    aws.insert_sts(
        REGION,
        mock_client!(aws_sdk_sts, RuleMode::MatchAny, &[&identity]),
    );
    aws.insert_tagging(
        REGION,
        mock_client!(aws_sdk_resourcegroupstagging, RuleMode::MatchAny, &[&index]),
    );
    let table = DynamodbTable::new(aws);
    let tagged = |name: &str| {
        let mut props = desired(json!({"tags": {"course": "db101"}}));
        props.insert("name".into(), json!(name));
        props
    };
    let items = [
        ("users".to_string(), tagged("users")),
        ("orders".to_string(), tagged("orders")),
    ];

    let read = table.read_batch(&ctx(), &items).await.expect("read");

    let tags_of = |i: usize| read[i].as_ref().expect("exists").props.get("tags").cloned();
    assert_eq!(tags_of(0), Some(json!({"course": "db101"})));
    assert_eq!(
        tags_of(1),
        Some(json!({"course": "db102"})),
        "read from the table"
    );
    assert_eq!(index.num_calls(), 1, "one call for the tags of both");
    assert_eq!(
        own_tags.num_calls(),
        1,
        "and one for the table it disagreed on"
    );
    assert_eq!(
        (describe_users.num_calls(), describe_orders.num_calls()),
        (1, 1)
    );
}
