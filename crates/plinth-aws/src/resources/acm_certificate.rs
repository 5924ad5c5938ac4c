//! `acm.certificate`: a public TLS certificate from AWS Certificate Manager, validated by DNS.
//!
//! ACM issues the certificate once a CNAME record per domain exists in its DNS zone, which only
//! the person can create: `create` prints the records as notices and (unless told not to) waits
//! until ACM has seen them. A create that timed out leaves the pending certificate behind; the
//! next apply adopts it by its owner tags and waits again, instead of requesting another.
//! A certificate stays in use for minutes after the distribution that used it is deleted
//! (`ResourceInUseException`): the delete is retried, then fails naming what still uses it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use aws_sdk_acm::types::{
    CertificateDetail, CertificateStatus, Filters, KeyAlgorithm, Tag, ValidationMethod,
};
use aws_sdk_acm::Client;
use aws_sdk_route53::types::ChangeAction;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, Progress, PropIssue, ResourceError,
    ResourceResult, ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{bool_of, contains_unknown, known_str, reorder, str_of, PathSeg, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::errors::{classify, vanished, SendExt};
use crate::resources::route53_common::{self, RecordSet, ROUTE53_REGION};
use crate::resources::tags;
use crate::wait::{self, Poll};
use crate::Aws;

pub const VALIDATION_METHODS: &[&str] = &["DNS"];
pub const KEY_ALGORITHMS: &[&str] = &["RSA_2048", "EC_prime256v1", "EC_secp384r1"];
const DEFAULT_KEY_ALGORITHM: &str = "RSA_2048";
/// ACM adds the validation records to a new certificate within seconds.
const RECORDS_LIMIT: Duration = Duration::from_secs(5 * 60);
/// The TTL of validation records plinth writes (ACM's console writes 300 too).
const VALIDATION_TTL: i64 = 300;
/// How long `create` waits for the person to create the DNS records.
const VALIDATION_LIMIT: Duration = Duration::from_secs(45 * 60);
/// CloudFront lets go of a certificate some minutes after its distribution is deleted.
const DELETE_LIMIT: Duration = Duration::from_secs(10 * 60);
/// A certificate ACM just returned that stays unknown this long was deleted: ACM remembers an
/// idempotency token for an hour and answers it with the certificate it first made.
const NOT_VISIBLE_GRACE: Duration = Duration::from_secs(30);
/// Statuses a certificate never leaves for ISSUED.
const FAILED: &[&str] = &[
    "FAILED",
    "VALIDATION_TIMED_OUT",
    "REVOKED",
    "EXPIRED",
    "INACTIVE",
];
/// ACM allows at most this many names (domain and alternative names) in one certificate.
const MAX_NAMES: usize = 100;
/// Property order in canonical form (the schema's).
const ORDER: &[&str] = &[
    "domain_name",
    "subject_alternative_names",
    "validation_method",
    "key_algorithm",
    "validation_zone",
    "wait_for_validation",
    "tags",
];

/// The `acm.certificate` resource type.
pub struct Certificate {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl Certificate {
    pub fn new(aws: Arc<Aws>) -> Certificate {
        Certificate {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    let record = Shape::Object(vec![
        Prop::new("domain", Shape::String),
        Prop::new("name", Shape::String),
        Prop::new("type", Shape::String),
        Prop::new("value", Shape::String),
    ]);
    TypeSchema {
        type_name: "acm.certificate",
        description: "A public TLS certificate from AWS Certificate Manager, validated by DNS",
        kind: TypeKind::Managed,
        taggable: true,
        properties: vec![
            Prop::new("domain_name", Shape::String)
                .required()
                .replaces()
                .doc("the domain the certificate is for (example.com or *.example.com)"),
            Prop::new("subject_alternative_names", Shape::list(Shape::String))
                .replaces()
                .doc("more domains the certificate covers; default none"),
            Prop::new("validation_method", Shape::Enum(VALIDATION_METHODS))
                .replaces()
                .doc("how ACM checks the domains are yours; only DNS"),
            Prop::new("key_algorithm", Shape::Enum(KEY_ALGORITHMS))
                .replaces()
                .doc("the key's algorithm; default RSA_2048"),
            Prop::new("validation_zone", Shape::String).doc(
                "a Route 53 hosted zone (e.g. ${zone.id}) holding the domains: plinth writes \
                 the validation records in it, waits until the certificate is issued, and \
                 removes them on destroy; default none (the records are printed to create)",
            ),
            Prop::new("wait_for_validation", Shape::Bool).doc(
                "wait until ACM has issued the certificate (the DNS records exist); default true",
            ),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the certificate"),
        ],
        attributes: vec![
            Attr::new("arn", Shape::String, "the certificate ARN"),
            Attr::new(
                "status",
                Shape::String,
                "PENDING_VALIDATION, ISSUED, FAILED, …",
            ),
            Attr::new("domain_name", Shape::String, "the certificate's domain"),
            Attr::new(
                "validation_records",
                Shape::list(record),
                "the DNS records that validate the domains: {domain, name, type, value}",
            ),
        ],
    }
}

#[async_trait]
impl ResourceType for Certificate {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    /// Nothing to pay for: the price table says why.
    fn cost(
        &self,
        _props: &plinth_core::value::Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        crate::cost::free(ctx, self.schema.type_name)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(problem) = known_str(props, "domain_name").and_then(domain_problem) {
            issues.push(PropIssue::at(&["domain_name"], problem));
        }
        let Some(Value::Array(names)) = props.get("subject_alternative_names") else {
            return issues;
        };
        if names.len() + 1 > MAX_NAMES {
            issues.push(PropIssue::at(
                &["subject_alternative_names"],
                format!("a certificate covers at most {MAX_NAMES} names, domain_name included"),
            ));
        }
        for (i, name) in names.iter().enumerate() {
            let problem = Some(name)
                .filter(|v| !contains_unknown(v))
                .and_then(Value::as_str)
                .and_then(domain_problem);
            if let Some(message) = problem {
                issues.push(PropIssue {
                    path: vec![
                        PathSeg::Key("subject_alternative_names".into()),
                        PathSeg::Index(i),
                    ],
                    message,
                });
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["domain_name"])
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.acm(&ctx.region);
        let Some(cert) = describe(&client, id).await? else {
            return Ok(None);
        };
        let tags = match tags_of(&client, id).await {
            Ok(tags) => tags,
            // Deleted between the two calls.
            Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        observe(&cert, tags, waited(prior, &cert), prior).map(Some)
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let Some(domain) = known_str(props, "domain_name") else {
            return Ok(None);
        };
        let client = self.aws.acm(&ctx.region);
        let key = str_of(props, "key_algorithm").unwrap_or(DEFAULT_KEY_ALGORITHM);
        let statuses = CertificateStatus::values()
            .iter()
            .map(|s| CertificateStatus::from(*s))
            .collect();
        // Left out, ListCertificates answers only RSA_2048 certificates.
        let filters = Filters::builder()
            .key_types(KeyAlgorithm::from(key))
            .build();
        let summaries = client
            .list_certificates()
            .set_certificate_statuses(Some(statuses))
            .includes(filters)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(classify)?;
        let arns = summaries
            .iter()
            .filter(|s| s.domain_name() == Some(domain))
            .filter_map(|s| s.certificate_arn());
        for arn in arns {
            if let Some(observed) = self.read(ctx, arn, props).await? {
                if let Some(ours) = tags::ours(observed, props) {
                    return Ok(Some(ours));
                }
            }
        }
        Ok(None)
    }

    /// A certificate's id is its ARN.
    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "acm", "certificate/").map(|_| arn.to_string())
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.acm(&ctx.region);
        let cert = request_with_records(ctx, &client, props).await?;
        let arn = arn_of(&cert)?.to_string();
        let records = validation_records(&cert);
        match validation_zone(props) {
            Some(zone) => write_records(ctx, &self.aws, zone, &records).await?,
            None => {
                for record in &records {
                    ctx.notice(record.notice());
                }
            }
        }
        let cert = if wants_wait(props) {
            match wait_issued(ctx, &client, &arn, &records).await {
                Err(err) if err.kind == ErrorKind::Invalid => {
                    return Err(discard(&client, &arn, err).await)
                }
                other => other?,
            }
        } else {
            cert
        };
        // Tagged at the request with exactly these tags: no need to list them again.
        observe(&cert, tags::user_tags(props), waited(props, &cert), props)
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.acm(&ctx.region);
        update_tags(&client, id, before, after).await?;
        let mut cert = describe(&client, id)
            .await?
            .ok_or_else(|| vanished(&format!("certificate {id}")))?;
        // Written again while the certificate waits (UPSERTs change nothing that is there):
        // a create interrupted before it wrote them, or whose write failed, is then done.
        let zone_changed = before.get("validation_zone") != after.get("validation_zone");
        let pending = status_of(&cert) != "ISSUED";
        if let Some(zone) = validation_zone(after).filter(|_| zone_changed || pending) {
            write_records(ctx, &self.aws, zone, &validation_records(&cert)).await?;
        }
        if wants_wait(after) && status_of(&cert) != "ISSUED" {
            let records = validation_records(&cert);
            if validation_zone(after).is_none() {
                for record in &records {
                    ctx.notice(record.notice());
                }
            }
            cert = wait_issued(ctx, &client, id, &records)
                .await
                .map_err(|mut err| {
                    if err.kind == ErrorKind::Invalid {
                        err.message.push_str(&format!(
                            "; for a new certificate run `plinth destroy --target {}` and apply again",
                            ctx.name
                        ));
                    }
                    err
                })?;
        }
        observe(&cert, tags::user_tags(after), waited(after, &cert), after)
    }

    async fn delete(&self, ctx: &OpContext, id: &str, props: &Props) -> ResourceResult<()> {
        let client = &self.aws.acm(&ctx.region);
        // The records to remove, read before the certificate that names them is gone.
        let records = match validation_zone(props) {
            Some(_) => describe(client, id)
                .await?
                .map(|c| validation_records(&c))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let what = format!("deleting certificate {id}");
        let result =
            wait::delete_when_free(ctx, &what, DELETE_LIMIT, move || delete_once(client, id)).await;
        match result {
            Err(err) if err.kind == ErrorKind::InUse => {
                return Err(still_in_use(client, id, err).await)
            }
            other => other?,
        }
        if ctx.pending_deletion().is_some() {
            return Ok(());
        }
        let Some(zone) = validation_zone(props) else {
            return Ok(());
        };
        // Every certificate of a domain in the account has the same validation record, and
        // needs it to renew: a record another certificate still covers stays.
        let covered = names_of_other_certificates(client, id).await?;
        let ours: Vec<Record> = records
            .into_iter()
            .filter(|r| !covered.contains(r.domain.trim_start_matches("*.")))
            .collect();
        remove_records(&self.aws, zone, &ours).await
    }
}

// ---------------------------------------------------------------------------------------------
// Validation records in Route 53

fn validation_zone(props: &Props) -> Option<&str> {
    known_str(props, "validation_zone")
}

fn record_set(record: &Record) -> RecordSet {
    RecordSet {
        name: record.name.clone(),
        kind: record.kind.clone(),
        ttl: Some(VALIDATION_TTL),
        values: vec![record.value.clone()],
        alias: None,
    }
}

/// Writes (UPSERTs: a record another certificate of the same domain wrote is the same
/// record) the validation records in the zone and waits until Route 53 serves them.
async fn write_records(
    ctx: &OpContext,
    aws: &Aws,
    zone: &str,
    records: &[Record],
) -> ResourceResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let route53 = aws.route53(ROUTE53_REGION);
    let sets: Vec<RecordSet> = records.iter().map(record_set).collect();
    let changes = sets.iter().map(|s| (ChangeAction::Upsert, s)).collect();
    let change = route53_common::change(&route53, zone, changes).await?;
    route53_common::wait_insync(ctx, &route53, &change).await?;
    ctx.notice(format!(
        "wrote {} validation record{} in hosted zone {zone}",
        records.len(),
        if records.len() == 1 { "" } else { "s" }
    ));
    Ok(())
}

/// The names (domains and alternative names) of the account's other certificates in this
/// region that are issued or on their way to it.
async fn names_of_other_certificates(
    client: &Client,
    arn: &str,
) -> ResourceResult<HashSet<String>> {
    let live = [
        CertificateStatus::Issued,
        CertificateStatus::PendingValidation,
    ];
    let every_key = KEY_ALGORITHMS
        .iter()
        .fold(Filters::builder(), |f, k| {
            f.key_types(KeyAlgorithm::from(*k))
        })
        .build();
    let summaries = client
        .list_certificates()
        .set_certificate_statuses(Some(live.to_vec()))
        .includes(every_key)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(classify)?;
    Ok(summaries
        .iter()
        .filter(|s| s.certificate_arn() != Some(arn))
        .flat_map(|s| {
            s.domain_name()
                .map(str::to_string)
                .into_iter()
                .chain(s.subject_alternative_name_summaries().iter().cloned())
        })
        // A wildcard's record is its base domain's.
        .map(|name| name.trim_start_matches("*.").to_string())
        .collect())
}

/// Removes the validation records this certificate's create wrote, where they still hold
/// its values.
async fn remove_records(aws: &Aws, zone: &str, records: &[Record]) -> ResourceResult<()> {
    let route53 = aws.route53(ROUTE53_REGION);
    for record in records {
        let wanted = record_set(record);
        let current =
            route53_common::find_record(&route53, zone, &wanted.name, &wanted.kind).await?;
        let Some(current) = current.filter(|c| {
            c.values
                .iter()
                .any(|v| v.trim_end_matches('.') == record.value.trim_end_matches('.'))
        }) else {
            continue;
        };
        match route53_common::change(&route53, zone, vec![(ChangeAction::Delete, &current)]).await {
            Err(err) if route53_common::is_missing_record(&err) => {}
            Err(err) if err.kind == ErrorKind::NotFound => {}
            other => {
                other?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Requesting and waiting

/// Requests the certificate and waits until ACM shows its validation records. The token is
/// new for each create: it makes the SDK's own retries of this one request idempotent. An
/// interrupted run is recovered by `find` (domain + owner tags), not by reusing a token:
/// what ACM answers to a token whose certificate was deleted is undocumented.
async fn request_with_records(
    ctx: &OpContext,
    client: &Client,
    props: &Props,
) -> ResourceResult<CertificateDetail> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let arn = request(client, props, &token).await?;
    records_of_new(ctx, client, &arn).await?.ok_or_else(|| {
        ResourceError::new(
            ErrorKind::NotFound,
            format!("ACM answered RequestCertificate with {arn}, which does not exist"),
        )
    })
}

async fn request(client: &Client, props: &Props, token: &str) -> ResourceResult<String> {
    let domain = str_of(props, "domain_name")
        .ok_or_else(|| ResourceError::invalid("acm.certificate needs a domain_name"))?;
    let names = alternative_names(props);
    debug!(domain, token, "RequestCertificate");
    let out = client
        .request_certificate()
        .domain_name(domain)
        .set_subject_alternative_names((!names.is_empty()).then_some(names))
        .validation_method(ValidationMethod::from(
            str_of(props, "validation_method").unwrap_or("DNS"),
        ))
        .key_algorithm(KeyAlgorithm::from(
            str_of(props, "key_algorithm").unwrap_or(DEFAULT_KEY_ALGORITHM),
        ))
        .idempotency_token(token)
        .set_tags(Some(tag_list(&tags::user_tags(props))?).filter(|t| !t.is_empty()))
        .send()
        .await
        .classified()?;
    out.certificate_arn()
        .map(str::to_string)
        .ok_or_else(|| ResourceError::other("RequestCertificate returned no certificate ARN"))
}

/// Polls a just-requested certificate until every domain has its validation record; `None`
/// when it never shows up at all. A certificate that fails at once is deleted.
async fn records_of_new(
    ctx: &OpContext,
    client: &Client,
    arn: &str,
) -> ResourceResult<Option<CertificateDetail>> {
    let started = Instant::now();
    let grace = ctx.deadline.map_or(NOT_VISIBLE_GRACE, |deadline| {
        NOT_VISIBLE_GRACE.min(deadline.saturating_duration_since(started) / 2)
    });
    let what = format!("the validation records of {arn}");
    let result = wait::until(ctx, &what, RECORDS_LIMIT, || async move {
        let Some(cert) = describe(client, arn).await? else {
            return Ok(if started.elapsed() >= grace {
                Poll::Ready(None)
            } else {
                Poll::Pending("not visible yet".into())
            });
        };
        let status = status_of(&cert);
        if FAILED.contains(&status) {
            return Err(failed(&cert));
        }
        Ok(if has_all_records(&cert) {
            Poll::Ready(Some(cert))
        } else {
            Poll::Pending(status.to_string())
        })
    })
    .await;
    match result {
        Err(err) if err.kind == ErrorKind::Invalid => Err(discard(client, arn, err).await),
        other => other,
    }
}

/// Progress lines with what the person should do meanwhile.
struct Hinted {
    inner: Arc<dyn Progress>,
    hint: &'static str,
}

impl Progress for Hinted {
    fn status(&self, message: &str) {
        self.inner.status(&format!("{message}: {}", self.hint));
    }
}

/// Waits until ACM has issued the certificate; a certificate that failed is an `Invalid`
/// error with ACM's reason, a timeout says which records to create.
async fn wait_issued(
    ctx: &OpContext,
    client: &Client,
    arn: &str,
    records: &[Record],
) -> ResourceResult<CertificateDetail> {
    let hinted = ctx.clone().with_progress(Arc::new(Hinted {
        inner: ctx.progress.clone(),
        hint: "create the CNAME records shown above",
    }));
    let result = wait::until(&hinted, "DNS validation", VALIDATION_LIMIT, || async move {
        let cert = describe(client, arn)
            .await?
            .ok_or_else(|| vanished(&format!("certificate {arn}")))?;
        match status_of(&cert) {
            "ISSUED" => Ok(Poll::Ready(cert)),
            status if FAILED.contains(&status) => Err(failed(&cert)),
            status => Ok(Poll::Pending(status.to_string())),
        }
    })
    .await;
    result.map_err(|mut err| {
        if err.kind == ErrorKind::Timeout {
            err.message = format!(
                "{} of certificate {arn}; create these DNS records, then run apply again (it \
                 keeps this certificate and waits for it): {}",
                err.message,
                records
                    .iter()
                    .map(Record::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        err
    })
}

/// The error for a certificate ACM will never issue, with ACM's reason.
fn failed(cert: &CertificateDetail) -> ResourceError {
    let arn = cert.certificate_arn().unwrap_or("the certificate");
    let status = status_of(cert);
    let reason = match cert.failure_reason().map(|r| r.as_str()) {
        Some("CAA_ERROR") => {
            "CAA_ERROR: a CAA record of the domain does not allow Amazon to issue certificates"
                .to_string()
        }
        Some("INVALID_PUBLIC_DOMAIN") => {
            "INVALID_PUBLIC_DOMAIN: the domain is not a public domain".to_string()
        }
        Some(reason) => reason.to_string(),
        None if status == "VALIDATION_TIMED_OUT" => {
            "ACM did not find the DNS records within 72 hours".to_string()
        }
        None => "ACM gave no reason".to_string(),
    };
    ResourceError::invalid(format!("certificate {arn} is {status}: {reason}"))
}

/// Deletes a certificate that failed while being created (it can never be issued), so the
/// next apply requests a new one; `err` is what went wrong.
async fn discard(client: &Client, arn: &str, mut err: ResourceError) -> ResourceError {
    match delete_once(client, arn).await {
        Ok(()) => err.message.push_str("; plinth deleted it"),
        Err(delete_err) => err
            .message
            .push_str(&format!("; deleting it failed too: {delete_err}")),
    }
    err
}

// ---------------------------------------------------------------------------------------------
// Deleting

async fn delete_once(client: &Client, arn: &str) -> ResourceResult<()> {
    debug!(arn, "DeleteCertificate");
    match client
        .delete_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .classified()
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

/// The error for a certificate still in use after the retries, naming what uses it.
async fn still_in_use(client: &Client, arn: &str, err: ResourceError) -> ResourceError {
    let users = match describe(client, arn).await {
        Ok(Some(cert)) => cert.in_use_by().join(", "),
        _ => String::new(),
    };
    let users = if users.is_empty() {
        "another AWS resource".to_string()
    } else {
        users
    };
    ResourceError {
        message: format!(
            "certificate {arn} is still in use by {users}: remove it from those first ({})",
            err.message
        ),
        ..err
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

async fn describe(client: &Client, arn: &str) -> ResourceResult<Option<CertificateDetail>> {
    match client
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(out.certificate().cloned()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

fn status_of(cert: &CertificateDetail) -> &str {
    cert.status().map_or("UNKNOWN", |s| s.as_str())
}

fn arn_of(cert: &CertificateDetail) -> ResourceResult<&str> {
    cert.certificate_arn()
        .ok_or_else(|| ResourceError::other("DescribeCertificate returned no certificate ARN"))
}

fn has_all_records(cert: &CertificateDetail) -> bool {
    let options = cert.domain_validation_options();
    !options.is_empty() && options.iter().all(|o| o.resource_record().is_some())
}

/// One DNS record that validates a domain.
#[derive(Clone, Debug, PartialEq)]
struct Record {
    domain: String,
    name: String,
    kind: String,
    value: String,
}

impl Record {
    fn describe(&self) -> String {
        format!("{} {} → {}", self.kind, self.name, self.value)
    }
    fn notice(&self) -> String {
        format!("validate {}: create {}", self.domain, self.describe())
    }
    fn to_value(&self) -> Value {
        json!({"domain": self.domain, "name": self.name, "type": self.kind, "value": self.value})
    }
}

/// The validation records, sorted by domain, each record once (a wildcard and its base
/// domain share one).
fn validation_records(cert: &CertificateDetail) -> Vec<Record> {
    let mut records: Vec<Record> = cert
        .domain_validation_options()
        .iter()
        .filter_map(|o| {
            let r = o.resource_record()?;
            Some(Record {
                domain: o.domain_name().to_string(),
                name: r.name().to_string(),
                kind: r.r#type().as_str().to_string(),
                value: r.value().to_string(),
            })
        })
        .collect();
    records.sort_by(|a, b| a.domain.cmp(&b.domain));
    let mut seen = HashSet::new();
    records.retain(|r| seen.insert((r.name.clone(), r.kind.clone(), r.value.clone())));
    records
}

/// DescribeCertificate spells key algorithms with hyphens (`RSA-2048`) where the request
/// and the SDK use underscores (`RSA_2048`): read as the request spells them, or every plan
/// would replace the certificate.
pub fn key_algorithm_read(reported: Option<&str>) -> String {
    reported.map_or(DEFAULT_KEY_ALGORITHM.to_string(), |k| k.replace('-', "_"))
}

/// `wait_for_validation` as the certificate shows it: the stack's choice (true when it made
/// none), but false while the certificate is not issued, so a stack that wants the wait sees
/// a change and `update` waits (a certificate adopted after a create that timed out).
fn waited(props: &Props, cert: &CertificateDetail) -> bool {
    wants_wait(props) && status_of(cert) == "ISSUED"
}

fn wants_wait(props: &Props) -> bool {
    bool_of(props, "wait_for_validation").unwrap_or(true)
}

fn observe(
    cert: &CertificateDetail,
    tags: BTreeMap<String, String>,
    wait_for_validation: bool,
    applied: &Props,
) -> ResourceResult<Observed> {
    let arn = arn_of(cert)?;
    let domain = cert.domain_name().unwrap_or_default();
    let method = cert
        .domain_validation_options()
        .first()
        .and_then(|o| o.validation_method())
        .map_or("DNS", |m| m.as_str());
    let mut props = Props::new();
    props.insert("domain_name".into(), json!(domain));
    props.insert(
        "subject_alternative_names".into(),
        json!(cert.subject_alternative_names()),
    );
    props.insert("validation_method".into(), json!(method));
    props.insert(
        "key_algorithm".into(),
        json!(key_algorithm_read(cert.key_algorithm().map(|k| k.as_str()))),
    );
    props.insert("wait_for_validation".into(), json!(wait_for_validation));
    // Where the records were written is plinth's to know: ACM does not say.
    if let Some(zone) = applied.get("validation_zone") {
        props.insert("validation_zone".into(), zone.clone());
    }
    props.insert("tags".into(), tags::tags_value(tags));
    canonicalize(&mut props);
    let records: Vec<Value> = validation_records(cert)
        .iter()
        .map(Record::to_value)
        .collect();
    let mut attrs = Props::new();
    attrs.insert("arn".into(), json!(arn));
    attrs.insert("status".into(), json!(status_of(cert)));
    attrs.insert("domain_name".into(), json!(domain));
    attrs.insert("validation_records".into(), Value::Array(records));
    Ok(Observed {
        id: arn.to_string(),
        props,
        attrs,
    })
}

// ---------------------------------------------------------------------------------------------
// Canonical form and checks

/// Defaults filled, alternative names sorted without the domain itself (AWS reports the domain
/// as the first alternative name), tags in key order: for desired and read props alike.
fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    props
        .entry("validation_method")
        .or_insert_with(|| json!("DNS"));
    props
        .entry("key_algorithm")
        .or_insert_with(|| json!(DEFAULT_KEY_ALGORITHM));
    props
        .entry("wait_for_validation")
        .or_insert_with(|| json!(true));
    let domain = props.get("domain_name").cloned();
    let names = props
        .entry("subject_alternative_names")
        .or_insert_with(|| json!([]));
    if let Value::Array(items) = names {
        let known = !items.iter().any(contains_unknown)
            && domain.as_ref().is_some_and(|d| !contains_unknown(d));
        if known {
            items.retain(|n| Some(n) != domain.as_ref());
            items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            items.dedup();
        }
    }
    let tags = tags::tags_of(props);
    props.insert("tags".into(), tags::tags_value(tags));
    reorder(props, ORDER);
}

/// What is wrong with a domain name for ACM, if anything.
fn domain_problem(domain: &str) -> Option<String> {
    if domain.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(format!(
            "{domain:?} has uppercase letters; DNS names are compared lowercase, so write {:?}",
            domain.to_ascii_lowercase()
        ));
    }
    let bare = domain.strip_prefix("*.").unwrap_or(domain);
    let labels: Vec<&str> = bare.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let ok = domain.len() <= 253 && labels.len() >= 2 && labels.iter().all(label_ok);
    (!ok).then(|| {
        format!(
            "{domain:?} is not a domain name ACM accepts: labels of letters, digits and hyphens \
             joined by dots (example.com), with no dot at the end; \"*.\" in front for a wildcard"
        )
    })
}

/// The alternative names of canonical props (without the domain).
fn alternative_names(props: &Props) -> Vec<String> {
    props
        .get("subject_alternative_names")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Tags

fn tag_list(tags: &BTreeMap<String, String>) -> ResourceResult<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|err| ResourceError::invalid(format!("tag {k}: {err}")))
        })
        .collect()
}

async fn tags_of(client: &Client, arn: &str) -> ResourceResult<BTreeMap<String, String>> {
    let out = client
        .list_tags_for_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .classified()?;
    Ok(out
        .tags()
        .iter()
        .filter(|t| !tags::is_reserved(t.key()))
        .map(|t| {
            (
                t.key().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// Adds or overwrites the tags that changed and removes the ones that are gone.
async fn update_tags(
    client: &Client,
    arn: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let (set, remove) = tags::tag_changes(&tags::user_tags(before), &tags::user_tags(after));
    if !set.is_empty() {
        client
            .add_tags_to_certificate()
            .certificate_arn(arn)
            .set_tags(Some(tag_list(&set)?))
            .send()
            .await
            .classified()?;
    }
    if !remove.is_empty() {
        // A tag given with its key only is removed whatever its value.
        let keys = remove
            .iter()
            .map(|k| {
                Tag::builder()
                    .key(k)
                    .build()
                    .map_err(|err| ResourceError::invalid(format!("tag {k}: {err}")))
            })
            .collect::<ResourceResult<Vec<_>>>()?;
        client
            .remove_tags_from_certificate()
            .certificate_arn(arn)
            .set_tags(Some(keys))
            .send()
            .await
            .classified()?;
    }
    Ok(())
}
