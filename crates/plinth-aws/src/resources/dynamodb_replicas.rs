//! `dynamodb.table`'s `replicas`: the regions a global table (version 2019.11.21) keeps a
//! copy in, every replica read and written like the table itself.
//!
//! AWS takes one replica change per UpdateTable, alone in its call, while the table is
//! ACTIVE; it then reports the table UPDATING and the replica CREATING (or DELETING) until
//! the copy is made, which can take many minutes on a large table. A replica needs the
//! table's stream with new and old images, and on provisioned billing its writes
//! autoscaled: the checks say so before any call. Replicas get the table's tags (again at
//! every change of the table, so a replica left untagged by an interrupted apply is mended),
//! so `plinth sweep` and the teardown check (which asks `other_regions`) find them in their
//! regions; destroy removes them before the table.

use aws_sdk_dynamodb::types::{
    CreateReplicationGroupMemberAction, DeleteReplicationGroupMemberAction, ReplicaStatus,
    ReplicationGroupUpdate, TableDescription,
};
use plinth_core::resource::{PropIssue, ResourceError, ResourceResult};
use plinth_core::schema::{Prop, Shape};
use plinth_core::value::{contains_unknown, str_of, Props};
use serde_json::{json, Value};

pub const KEY: &str = "replicas";

/// The `replicas` property.
pub fn prop() -> Prop {
    Prop::new(KEY, Shape::list(Shape::String))
        .known_as(&["replica", "replica_regions"])
        .doc("regions the table is copied to and kept in sync with (a global table); needs stream_view_type: new_and_old_images, and provisioned writes autoscaled")
}

/// The replica regions `props` names, sorted.
pub fn regions(props: &Props) -> Vec<String> {
    props
        .get(KEY)
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A set: sorted, without duplicates, absent when empty.
pub fn canonicalize(props: &mut Props) {
    let Some(Value::Array(list)) = props.get_mut(KEY) else {
        return;
    };
    if !list.iter().any(contains_unknown) {
        list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        list.dedup();
    }
    if list.is_empty() {
        props.remove(KEY);
    }
}

/// What AWS refuses to replicate; `write_autoscaled`: the table's writes and every global
/// index's are autoscaled.
pub fn check(props: &Props, write_autoscaled: bool) -> Vec<PropIssue> {
    let Some(Value::Array(list)) = props.get(KEY) else {
        return Vec::new();
    };
    if list.is_empty() {
        return Vec::new();
    }
    let mut issues = Vec::new();
    for (i, region) in list.iter().enumerate() {
        let ok = region.as_str().is_some_and(|r| {
            contains_unknown(region)
                || r.split('-').count() >= 3
                    && r.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
        if !ok {
            issues.push(PropIssue {
                path: vec![
                    plinth_core::value::PathSeg::Key(KEY.into()),
                    plinth_core::value::PathSeg::Index(i),
                ],
                message: format!("expected a region name (eu-west-1), not {region}"),
            });
        }
    }
    let stream = props.get("stream_view_type");
    if !stream.is_some_and(contains_unknown)
        && str_of(props, "stream_view_type") != Some("new_and_old_images")
    {
        issues.push(PropIssue::at(
            &["stream_view_type"],
            "replicas are kept in sync through the table's stream: set stream_view_type: new_and_old_images",
        ));
    }
    if str_of(props, "billing_mode") == Some("provisioned") && !write_autoscaled {
        issues.push(PropIssue::at(
            &[KEY],
            "a provisioned global table needs its writes autoscaled, on the table and on each global index (AWS: \"Table write capacity should either be Pay-Per-Request or AutoScaled\"): add autoscaling.write, or use on_demand",
        ));
    }
    if str_of(props, "encryption") == Some("kms") && props.contains_key("kms_key") {
        issues.push(PropIssue::at(
            &["kms_key"],
            "a replica needs a key of its own region, which plinth does not offer yet: leave kms_key out (the AWS managed key of each region) or use encryption: aws_owned",
        ));
    }
    issues
}

/// The replicas a described table has (its own region is not among them); one being
/// deleted is gone already as far as the stack is concerned.
pub fn described(desc: &TableDescription) -> Vec<String> {
    let mut regions: Vec<String> = desc
        .replicas()
        .iter()
        .filter(|r| r.replica_status() != Some(&ReplicaStatus::Deleting))
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    regions.sort();
    regions
}

/// A replica still being made, changed or removed: the table is not settled yet. A replica
/// in a state that does not pass by itself (creation failed, its key unusable, its region
/// disabled) is not waited for: removing it is what fixes it.
pub fn busy(desc: &TableDescription) -> Option<String> {
    desc.replicas()
        .iter()
        .find_map(|r| match r.replica_status() {
            Some(
                status @ (ReplicaStatus::Creating
                | ReplicaStatus::Updating
                | ReplicaStatus::Deleting
                | ReplicaStatus::Archiving),
            ) => Some(format!(
                "replica in {} {}",
                r.region_name().unwrap_or("?"),
                status.as_str()
            )),
            _ => None,
        })
}

pub fn insert(props: &mut Props, desc: &TableDescription) {
    let regions = described(desc);
    if !regions.is_empty() {
        props.insert(KEY.into(), json!(regions));
    }
}

pub fn create_action(region: &str) -> ResourceResult<ReplicationGroupUpdate> {
    let create = CreateReplicationGroupMemberAction::builder()
        .region_name(region)
        .build()
        .map_err(|e| ResourceError::other(e.to_string()))?;
    Ok(ReplicationGroupUpdate::builder().create(create).build())
}

pub fn delete_action(region: &str) -> ResourceResult<ReplicationGroupUpdate> {
    let delete = DeleteReplicationGroupMemberAction::builder()
        .region_name(region)
        .build()
        .map_err(|e| ResourceError::other(e.to_string()))?;
    Ok(ReplicationGroupUpdate::builder().delete(delete).build())
}

/// The replica's ARN: the table's, in the replica's region.
pub fn replica_arn(table_arn: &str, region: &str) -> Option<String> {
    let parts: Vec<&str> = table_arn.splitn(6, ':').collect();
    (parts.len() == 6).then(|| {
        format!(
            "{}:{}:{}:{region}:{}:{}",
            parts[0], parts[1], parts[2], parts[4], parts[5]
        )
    })
}
