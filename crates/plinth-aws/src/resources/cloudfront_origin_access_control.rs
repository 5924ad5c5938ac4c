//! `cloudfront.origin_access_control`: lets CloudFront sign its requests to an origin (an S3
//! bucket, most often), so the origin can stay private and admit only the distribution.
//!
//! CloudFront is global (its control plane answers in us-east-1) and an origin access control
//! takes no tags: its description carries the stack's marker instead ([`tags::owner_marker`]),
//! so a create whose answer was lost, or that an interrupted run sent, is found by its name
//! and marker and adopted. Every change and delete sends the ETag of a fresh read as
//! `If-Match`, read again when someone else changed it meanwhile. A distribution that is still being updated to
//! let go of the OAC keeps it in use (`OriginAccessControlInUse`) for minutes: the delete is
//! retried until it is free.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    OriginAccessControl, OriginAccessControlConfig, OriginAccessControlOriginTypes,
    OriginAccessControlSigningBehaviors, OriginAccessControlSigningProtocols,
};
use aws_sdk_cloudfront::Client;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{with_name_prefixes, Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, str_of, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::errors::{adopt_if_ours, vanished, SendExt};
use crate::resources::cloudfront_common::{delete_when_unused, with_fresh_etag, CLOUDFRONT_REGION};
use crate::resources::tags;
use crate::Aws;

// The SDK's enumerations: a new SDK release brings new values.
const ORIGIN_TYPES: &[&str] = OriginAccessControlOriginTypes::values();
const SIGNING_BEHAVIORS: &[&str] = OriginAccessControlSigningBehaviors::values();
const SIGNING_PROTOCOLS: &[&str] = OriginAccessControlSigningProtocols::values();
/// AWS's limits for an origin access control's name and description (the marker included).
const MAX_NAME: usize = 64;
const MAX_DESCRIPTION: usize = 256;
/// A distribution being updated holds on to the OAC until its deployment finishes.
const DELETE_LIMIT: Duration = Duration::from_secs(20 * 60);
/// Property order in canonical form (the schema's), with each default.
const DEFAULTS: &[(&str, &str)] = &[
    ("description", ""),
    ("origin_type", "s3"),
    ("signing_behavior", "always"),
    ("signing_protocol", "sigv4"),
];

/// The `cloudfront.origin_access_control` resource type.
pub struct OriginAccessControlType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl OriginAccessControlType {
    pub fn new(aws: Arc<Aws>) -> OriginAccessControlType {
        OriginAccessControlType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "cloudfront.origin_access_control",
        description: "A CloudFront origin access control: CloudFront signs its requests to a \
                      private origin (an S3 bucket)",
        kind: TypeKind::Managed,
        taggable: false,
        properties: with_name_prefixes(vec![
            Prop::new("name", Shape::String)
                .prefixable(64)
                .required()
                .unique()
                .doc("the name, unique in the account (at most 64 characters)"),
            Prop::new("description", Shape::String).doc(
                "a description (at most 234 characters: plinth adds its marker); default empty",
            ),
            Prop::new("origin_type", Shape::Enum(ORIGIN_TYPES))
                .known_as(&["origin_access_control_origin_type"])
                .doc("the kind of origin it signs for; default s3"),
            Prop::new("signing_behavior", Shape::Enum(SIGNING_BEHAVIORS)).doc(
                "always: sign every request; never: sign none; no-override: sign unless the \
                 viewer sent an Authorization header; default always",
            ),
            Prop::new("signing_protocol", Shape::Enum(SIGNING_PROTOCOLS))
                .doc("how requests are signed; default sigv4"),
        ]),
        attributes: vec![Attr::new(
            "id",
            Shape::String,
            "the origin access control id, for a distribution's origin",
        )],
    }
}

#[async_trait]
impl ResourceType for OriginAccessControlType {
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

    fn pinned_region(&self, _props: &Props) -> Option<&'static str> {
        Some(CLOUDFRONT_REGION)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let known = |key: &str| {
            props
                .get(key)
                .filter(|v| !contains_unknown(v))
                .and_then(Value::as_str)
        };
        let mut issues = Vec::new();
        if let Some(name) = known("name") {
            if name.trim().is_empty() || name.chars().count() > MAX_NAME {
                issues.push(PropIssue::at(
                    &["name"],
                    format!(
                        "an origin access control name has 1 to {MAX_NAME} characters, not {}",
                        name.chars().count()
                    ),
                ));
            }
        }
        let room = MAX_DESCRIPTION - tags::MARKER_LENGTH;
        if let Some(description) = known("description") {
            if description.chars().count() > room {
                issues.push(PropIssue::at(
                    &["description"],
                    format!(
                        "a description has at most {room} characters here (AWS allows \
                         {MAX_DESCRIPTION}; plinth's marker takes the rest), not {}",
                        description.chars().count()
                    ),
                ));
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props);
        Ok(())
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.cloudfront(&ctx.region);
        match get(&client, id).await? {
            Some((oac, _)) => observe(&oac).map(Some),
            None => Ok(None),
        }
    }

    /// The origin access control of this name that carries this resource's marker.
    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let (Some(name), Some(marker)) = (str_of(props, "name"), tags::owner_marker(ctx)) else {
            return Ok(None);
        };
        let client = self.aws.cloudfront(&ctx.region);
        let mut page: Option<String> = None;
        loop {
            let out = client
                .list_origin_access_controls()
                .set_marker(page.clone())
                .send()
                .await
                .classified()?;
            let Some(list) = out.origin_access_control_list() else {
                return Ok(None);
            };
            let found = list.items().iter().find(|summary| {
                summary.name() == name
                    && tags::unmarked(summary.description()).1 == Some(marker.clone())
            });
            if let Some(summary) = found {
                debug!(
                    id = summary.id(),
                    name, "found this stack's origin access control"
                );
                return self.read(ctx, summary.id(), props).await;
            }
            match list
                .next_marker()
                .filter(|m| !m.is_empty() && list.is_truncated())
            {
                Some(next) => page = Some(next.to_string()),
                None => return Ok(None),
            }
        }
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "cloudfront", "origin-access-control/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.cloudfront(&ctx.region);
        let config = config_of(props, tags::owner_marker(ctx).as_deref())?;
        debug!(name = config.name(), "CreateOriginAccessControl");
        let created = client
            .create_origin_access_control()
            .origin_access_control_config(config.clone())
            .send()
            .await
            .classified();
        match created {
            Ok(out) => {
                let oac = out.origin_access_control().ok_or_else(|| {
                    ResourceError::other(
                        "CreateOriginAccessControl returned no origin access control",
                    )
                })?;
                observe(oac)
            }
            Err(err) => {
                let what = format!("an origin access control named {}", config.name());
                let found =
                    adopt_if_ours(err, &["OriginAccessControlAlreadyExists"], &what, || {
                        self.find(ctx, props)
                    })
                    .await?;
                if found.props == *props {
                    Ok(found)
                } else {
                    self.update(ctx, &found.id, &found.props, props).await
                }
            }
        }
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        _before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = &self.aws.cloudfront(&ctx.region);
        let config = &config_of(after, tags::owner_marker(ctx).as_deref())?;
        let what = format!("updating origin access control {id}");
        let oac = with_fresh_etag(&what, || async move {
            let (_, etag) = get(client, id)
                .await?
                .ok_or_else(|| vanished(&format!("origin access control {id}")))?;
            debug!(id, "UpdateOriginAccessControl");
            let out = client
                .update_origin_access_control()
                .id(id)
                .if_match(etag)
                .origin_access_control_config(config.clone())
                .send()
                .await
                .classified()?;
            out.origin_access_control().cloned().ok_or_else(|| {
                ResourceError::other("UpdateOriginAccessControl returned no origin access control")
            })
        })
        .await?;
        observe(&oac)
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = &self.aws.cloudfront(&ctx.region);
        let what = format!("deleting origin access control {id}");
        delete_when_unused(
            ctx,
            &what,
            DELETE_LIMIT,
            "; a distribution's origin still uses the origin access control: remove it \
                     from the distribution first",
            || delete_once(client, id),
        )
        .await
    }
}

/// One delete with the current ETag; gone already counts as deleted.
async fn delete_once(client: &Client, id: &str) -> ResourceResult<()> {
    let Some((_, etag)) = get(client, id).await? else {
        return Ok(());
    };
    debug!(id, "DeleteOriginAccessControl");
    match client
        .delete_origin_access_control()
        .id(id)
        .if_match(etag)
        .send()
        .await
        .classified()
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

/// The origin access control and its current ETag, `None` when it does not exist.
async fn get(client: &Client, id: &str) -> ResourceResult<Option<(OriginAccessControl, String)>> {
    let out = match client
        .get_origin_access_control()
        .id(id)
        .send()
        .await
        .classified()
    {
        Ok(out) => out,
        Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let oac = out.origin_access_control().cloned().ok_or_else(|| {
        ResourceError::other("GetOriginAccessControl returned no origin access control")
    })?;
    let etag = out
        .e_tag()
        .ok_or_else(|| ResourceError::other("GetOriginAccessControl returned no ETag"))?;
    Ok(Some((oac, etag.to_string())))
}

/// Defaults filled, keys in schema order: for desired and read props alike.
fn canonicalize(props: &mut Props) {
    props.retain(|_, v| !v.is_null());
    let mut rest = std::mem::take(props);
    if let Some(name) = rest.shift_remove("name") {
        props.insert("name".into(), name);
    }
    for (key, default) in DEFAULTS {
        let value = rest.shift_remove(*key).unwrap_or_else(|| json!(default));
        props.insert((*key).to_string(), value);
    }
    props.extend(rest);
}

/// The config AWS is sent: the properties, the description carrying `marker`.
fn config_of(props: &Props, marker: Option<&str>) -> ResourceResult<OriginAccessControlConfig> {
    let value = |key: &str, default: &'static str| str_of(props, key).unwrap_or(default);
    OriginAccessControlConfig::builder()
        .name(str_of(props, "name").unwrap_or_default())
        .description(tags::marked(value("description", ""), marker))
        .origin_access_control_origin_type(OriginAccessControlOriginTypes::from(value(
            "origin_type",
            "s3",
        )))
        .signing_behavior(OriginAccessControlSigningBehaviors::from(value(
            "signing_behavior",
            "always",
        )))
        .signing_protocol(OriginAccessControlSigningProtocols::from(value(
            "signing_protocol",
            "sigv4",
        )))
        .build()
        .map_err(|err| ResourceError::invalid(format!("origin access control: {err}")))
}

fn observe(oac: &OriginAccessControl) -> ResourceResult<Observed> {
    let config = oac.origin_access_control_config().ok_or_else(|| {
        ResourceError::other(format!(
            "CloudFront returned origin access control {} without its configuration",
            oac.id()
        ))
    })?;
    let mut props = Props::new();
    props.insert("name".into(), json!(config.name()));
    let (description, _marker) = tags::unmarked(config.description().unwrap_or_default());
    props.insert("description".into(), json!(description));
    props.insert(
        "origin_type".into(),
        json!(config.origin_access_control_origin_type().as_str()),
    );
    props.insert(
        "signing_behavior".into(),
        json!(config.signing_behavior().as_str()),
    );
    props.insert(
        "signing_protocol".into(),
        json!(config.signing_protocol().as_str()),
    );
    canonicalize(&mut props);
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(oac.id()));
    Ok(Observed {
        id: oac.id().to_string(),
        props,
        attrs,
    })
}
