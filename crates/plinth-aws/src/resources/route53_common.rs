//! What the Route 53 types (and ACM's automatic validation) share: record changes, waiting
//! for them to reach every name server, and names in one canonical form.
//!
//! Route 53 is global; its API lives in us-east-1. It answers names with a trailing dot and
//! lower-cased, and a leading `*` as `\052`: names are compared without the dot, lower-case,
//! with the `*` written plainly.

use std::time::Duration;

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord,
    ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client;
use plinth_core::resource::{ErrorKind, OpContext, ResourceError, ResourceResult};
use tracing::debug;

use crate::errors::SendExt;
use crate::wait::{self, Poll};

/// Route 53's endpoint is global and signed for us-east-1.
pub const ROUTE53_REGION: &str = "us-east-1";
/// A change reaches all of Route 53's name servers within a minute, usually seconds.
const INSYNC_LIMIT: Duration = Duration::from_secs(5 * 60);

/// A DNS name as plinth compares it: lower-case, no trailing dot, `*` unescaped.
pub fn canonical_name(name: &str) -> String {
    name.trim_end_matches('.')
        .replace("\\052", "*")
        .to_ascii_lowercase()
}

/// A hosted zone id without the `/hostedzone/` prefix AWS sometimes puts before it.
pub fn bare_zone_id(id: &str) -> &str {
    id.trim_start_matches("/hostedzone/")
}

/// One record set to write or remove.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordSet {
    pub name: String,
    pub kind: String,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    pub alias: Option<Alias>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Alias {
    pub name: String,
    pub zone_id: String,
    pub evaluate_target_health: bool,
}

impl RecordSet {
    fn to_sdk(&self) -> ResourceResult<ResourceRecordSet> {
        let mut set = ResourceRecordSet::builder()
            .name(&self.name)
            .r#type(RrType::from(self.kind.as_str()));
        if let Some(alias) = &self.alias {
            set = set.alias_target(
                AliasTarget::builder()
                    .dns_name(&alias.name)
                    .hosted_zone_id(&alias.zone_id)
                    .evaluate_target_health(alias.evaluate_target_health)
                    .build()
                    .map_err(|e| ResourceError::invalid(format!("alias: {e}")))?,
            );
        } else {
            set = set.set_ttl(self.ttl);
            for value in &self.values {
                set = set.resource_records(
                    ResourceRecord::builder()
                        .value(value)
                        .build()
                        .map_err(|e| ResourceError::invalid(format!("record: {e}")))?,
                );
            }
        }
        set.build()
            .map_err(|e| ResourceError::invalid(format!("record set: {e}")))
    }

    /// The record set as Route 53 reports it.
    pub fn from_sdk(set: &ResourceRecordSet) -> RecordSet {
        RecordSet {
            name: canonical_name(set.name()),
            kind: set.r#type().as_str().to_string(),
            ttl: set.ttl(),
            values: set
                .resource_records()
                .iter()
                .map(|r| r.value().to_string())
                .collect(),
            alias: set.alias_target().map(|a| Alias {
                name: canonical_name(a.dns_name()),
                zone_id: a.hosted_zone_id().to_string(),
                evaluate_target_health: a.evaluate_target_health(),
            }),
        }
    }
}

/// Sends one batch of changes to `zone` and returns the change's id.
pub async fn change(
    client: &Client,
    zone: &str,
    changes: Vec<(ChangeAction, &RecordSet)>,
) -> ResourceResult<String> {
    let mut batch = ChangeBatch::builder();
    for (action, set) in changes {
        debug!(
            zone,
            ?action,
            name = set.name,
            kind = set.kind,
            "ChangeResourceRecordSets"
        );
        batch = batch.changes(
            Change::builder()
                .action(action)
                .resource_record_set(set.to_sdk()?)
                .build()
                .map_err(|e| ResourceError::invalid(format!("change: {e}")))?,
        );
    }
    let batch = batch
        .build()
        .map_err(|e| ResourceError::invalid(format!("change batch: {e}")))?;
    let out = client
        .change_resource_record_sets()
        .hosted_zone_id(bare_zone_id(zone))
        .change_batch(batch)
        .send()
        .await
        .classified()?;
    Ok(out
        .change_info()
        .map(|c| c.id().to_string())
        .unwrap_or_default())
}

/// Waits until a change has reached all of Route 53's name servers (`INSYNC`).
pub async fn wait_insync(ctx: &OpContext, client: &Client, change: &str) -> ResourceResult<()> {
    if change.is_empty() {
        return Ok(());
    }
    let what = format!("Route 53 change {change} to reach every name server");
    // Its own budget from now, not what is left of the operation's (a certificate may have
    // spent minutes waiting for ACM before its records were written).
    let mut ctx = ctx.clone();
    ctx.started = tokio::time::Instant::now();
    wait::until(&ctx, &what, INSYNC_LIMIT, || async move {
        let out = client.get_change().id(change).send().await.classified()?;
        match out.change_info().map(|c| c.status()) {
            Some(ChangeStatus::Insync) => Ok(Poll::Ready(())),
            Some(status) => Ok(Poll::Pending(status.as_str().to_string())),
            None => Ok(Poll::Pending("no status yet".into())),
        }
    })
    .await
}

/// The record set of `name` and `kind` in `zone`, if there is one.
pub async fn find_record(
    client: &Client,
    zone: &str,
    name: &str,
    kind: &str,
) -> ResourceResult<Option<RecordSet>> {
    let answer = client
        .list_resource_record_sets()
        .hosted_zone_id(bare_zone_id(zone))
        .start_record_name(name)
        .start_record_type(RrType::from(kind))
        .max_items(1)
        .send()
        .await
        .classified();
    let out = match answer {
        Ok(out) => out,
        Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let wanted = canonical_name(name);
    Ok(out
        .resource_record_sets()
        .iter()
        .map(RecordSet::from_sdk)
        .find(|s| s.name == wanted && s.kind == kind))
}

/// Whether Route 53 refused a change because the record is not there (a DELETE of a
/// record already gone) — done, for a delete.
pub fn is_missing_record(err: &ResourceError) -> bool {
    err.code.as_deref() == Some("InvalidChangeBatch")
        && err.message.contains("but it was not found")
}

/// Whether Route 53 refused a CREATE because the record exists.
pub fn is_existing_record(err: &ResourceError) -> bool {
    err.code.as_deref() == Some("InvalidChangeBatch") && err.message.contains("already exists")
}
