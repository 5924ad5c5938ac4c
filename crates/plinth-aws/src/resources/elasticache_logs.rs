//! ElastiCache log delivery (Redis/Valkey slow log and engine log to CloudWatch Logs), as
//! a `log_delivery` list on a replication group: the terraform-aws-elasticache default.
//!
//! Canonical form: one entry per log type, sorted by type, `{ log_type, log_group, format }`.
//! A change sends only the entries that differ; a log type removed is sent with
//! `Enabled: false`. An entry AWS reports as `disabling` is already gone for the stack.

use aws_sdk_elasticache::types::{
    CloudWatchLogsDestinationDetails, DestinationDetails, DestinationType,
    LogDeliveryConfiguration, LogDeliveryConfigurationRequest, LogDeliveryConfigurationStatus,
    LogFormat, LogType,
};
use plinth_core::resource::PropIssue;
use plinth_core::schema::{Prop, Shape};
use plinth_core::value::{contains_unknown, str_of, PathSeg, Props};
use serde_json::{json, Map, Value};

const LOG_TYPES: &[&str] = &["slow-log", "engine-log"];
const FORMATS: &[&str] = &["json", "text"];

pub fn prop() -> Prop {
    Prop::new(
        "log_delivery",
        Shape::list(Shape::Object(vec![
            Prop::new("log_type", Shape::Enum(LOG_TYPES))
                .required()
                .doc("slow-log (commands slower than slowlog-log-slower-than) or engine-log"),
            Prop::new("log_group", Shape::String)
                .required()
                .doc("the CloudWatch Logs group's name (${logs.log_group.NAME.name})"),
            Prop::new("format", Shape::Enum(FORMATS)).doc("json (default) or text"),
        ])),
    )
    .known_as(&["log_delivery_configuration", "log_delivery_configurations"])
    .doc("slow and engine logs delivered to CloudWatch Logs; default none")
}

/// Entries sorted by log type, the format filled in.
pub fn canonicalize(props: &mut Props) {
    let Some(Value::Array(entries)) = props.get_mut("log_delivery") else {
        props.insert("log_delivery".into(), json!([]));
        return;
    };
    for entry in entries.iter_mut() {
        if let Value::Object(e) = entry {
            e.retain(|_, v| !v.is_null());
            e.entry("format").or_insert(json!("json"));
        }
    }
    if !entries.iter().any(contains_unknown) {
        entries.sort_by(|a, b| {
            a.get("log_type")
                .and_then(Value::as_str)
                .cmp(&b.get("log_type").and_then(Value::as_str))
        });
    }
}

/// One entry per log type: AWS keeps one configuration of each.
pub fn check(props: &Props) -> Vec<PropIssue> {
    let mut issues = Vec::new();
    let entries = props.get("log_delivery").and_then(Value::as_array);
    let mut seen = std::collections::BTreeSet::new();
    for (i, entry) in entries.into_iter().flatten().enumerate() {
        if let Some(kind) = entry.get("log_type").and_then(Value::as_str) {
            if !seen.insert(kind) {
                issues.push(PropIssue {
                    path: vec![
                        PathSeg::Key("log_delivery".into()),
                        PathSeg::Index(i),
                        PathSeg::Key("log_type".into()),
                    ],
                    message: format!("{kind} is delivered to one place only: two entries name it"),
                });
            }
        }
    }
    if !seen.is_empty() && str_of(props, "engine") == Some("memcached") {
        issues.push(PropIssue::at(
            &["log_delivery"],
            "Memcached has no slow or engine log to deliver",
        ));
    }
    issues
}

fn entries(props: &Props) -> Vec<Map<String, Value>> {
    props
        .get("log_delivery")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .cloned()
        .collect()
}

fn enabled(entry: &Map<String, Value>) -> LogDeliveryConfigurationRequest {
    let group = str_of(entry, "log_group").unwrap_or_default();
    LogDeliveryConfigurationRequest::builder()
        .log_type(LogType::from(str_of(entry, "log_type").unwrap_or_default()))
        .destination_type(DestinationType::CloudWatchLogs)
        .destination_details(
            DestinationDetails::builder()
                .cloud_watch_logs_details(
                    CloudWatchLogsDestinationDetails::builder()
                        .log_group(group)
                        .build(),
                )
                .build(),
        )
        .log_format(LogFormat::from(str_of(entry, "format").unwrap_or("json")))
        .enabled(true)
        .build()
}

/// What a create sends; `None` for no log delivery.
pub fn create_requests(props: &Props) -> Option<Vec<LogDeliveryConfigurationRequest>> {
    let requests: Vec<_> = entries(props).iter().map(enabled).collect();
    (!requests.is_empty()).then_some(requests)
}

/// What a modify sends to go from `before` to `after`; `None` when nothing changes.
pub fn change_requests(
    before: &Props,
    after: &Props,
) -> Option<Vec<LogDeliveryConfigurationRequest>> {
    let (old, new) = (entries(before), entries(after));
    let kind = |e: &Map<String, Value>| str_of(e, "log_type").map(str::to_string);
    let mut requests: Vec<_> = new
        .iter()
        .filter(|e| !old.contains(e))
        .map(enabled)
        .collect();
    for gone in old
        .iter()
        .filter(|o| !new.iter().any(|n| kind(n) == kind(o)))
    {
        requests.push(
            LogDeliveryConfigurationRequest::builder()
                .log_type(LogType::from(str_of(gone, "log_type").unwrap_or_default()))
                .enabled(false)
                .build(),
        );
    }
    (!requests.is_empty()).then_some(requests)
}

/// The canonical list of what AWS reports.
pub fn observed(configs: &[LogDeliveryConfiguration]) -> Value {
    let mut entries: Vec<Value> = configs
        .iter()
        .filter(|c| c.status() != Some(&LogDeliveryConfigurationStatus::Disabling))
        .filter(|c| c.destination_type() == Some(&DestinationType::CloudWatchLogs))
        .filter_map(|c| {
            let group = c
                .destination_details()
                .and_then(|d| d.cloud_watch_logs_details())
                .and_then(|d| d.log_group())?;
            Some(json!({
                "log_type": c.log_type()?.as_str(),
                "log_group": group,
                "format": c.log_format().map(|f| f.as_str()).unwrap_or("json"),
            }))
        })
        .collect();
    entries.sort_by(|a, b| a["log_type"].as_str().cmp(&b["log_type"].as_str()));
    Value::Array(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(value: Value) -> Props {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_change_sends_what_differs_and_disables_what_went() {
        let before = props(json!({"log_delivery": [
            {"log_type": "engine-log", "log_group": "/a", "format": "json"},
            {"log_type": "slow-log", "log_group": "/a", "format": "json"}]}));
        let after = props(json!({"log_delivery": [
            {"log_type": "slow-log", "log_group": "/b", "format": "text"}]}));
        let requests = change_requests(&before, &after).expect("changes");
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].log_type(), Some(&LogType::SlowLog));
        assert_eq!(requests[0].enabled(), Some(true));
        assert_eq!(requests[1].log_type(), Some(&LogType::EngineLog));
        assert_eq!(requests[1].enabled(), Some(false));
        assert!(change_requests(&after, &after).is_none());
    }

    #[test]
    fn two_entries_of_one_type_are_refused() {
        let p = props(json!({"log_delivery": [
            {"log_type": "slow-log", "log_group": "/a"},
            {"log_type": "slow-log", "log_group": "/b"}]}));
        assert_eq!(check(&p).len(), 1);
    }
}
