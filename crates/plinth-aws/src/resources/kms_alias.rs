//! `kms.alias`: a friendly name (`alias/site`) for a KMS key, which can be moved to another
//! key without changing what refers to it.
//!
//! Aliases take no tags: the alias name, unique in the account and region, is what the
//! state holds. A create whose answer was lost finds the alias pointing at its key and
//! takes it; an alias of the name pointing elsewhere is somebody else's and is refused.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_kms::types::KeyMetadata;
use aws_sdk_kms::Client;
use plinth_core::cost::{CostContext, CostLine};
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{known_str, str_of, Props};
use serde_json::json;
use tracing::debug;

use crate::errors::SendExt;
use crate::Aws;

pub struct KmsAlias {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl KmsAlias {
    pub fn new(aws: Arc<Aws>) -> KmsAlias {
        KmsAlias {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "kms.alias",
        description: "A name for a KMS key (alias/NAME)",
        kind: TypeKind::Managed,
        taggable: false,
        properties: vec![
            Prop::new("name", Shape::String)
                .required()
                .replaces()
                .unique()
                .doc("alias/ and a name, unique in the account and region (alias/aws/ is AWS's)"),
            Prop::new("target_key", Shape::String)
                .required()
                .holds_referent()
                .known_as(&["target_key_id"])
                .doc("the key's id or ARN (${kms.key.NAME.arn}); changing it moves the alias"),
        ],
        attributes: vec![
            Attr::new("name", Shape::String, "alias/NAME"),
            Attr::new(
                "arn",
                Shape::String,
                "arn:aws:kms:REGION:ACCOUNT:alias/NAME",
            ),
            Attr::new(
                "target_key_arn",
                Shape::String,
                "the ARN of the key it names",
            ),
        ],
    }
}

#[async_trait]
impl ResourceType for KmsAlias {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(&self, _props: &Props, ctx: &CostContext) -> Vec<CostLine> {
        crate::cost::free(ctx, "kms.alias")
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let Some(name) = known_str(props, "name") else {
            return Vec::new();
        };
        let rest = name.strip_prefix("alias/").unwrap_or_default();
        let bad_char = rest
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/_-".contains(*c)));
        let problem = if !name.starts_with("alias/") {
            Some(format!("{name:?}: an alias name starts with alias/"))
        } else if name.starts_with("alias/aws/") {
            Some(format!("{name:?}: names under alias/aws/ are AWS's own"))
        } else if rest.is_empty() || rest.len() > 250 {
            Some(format!(
                "{name:?}: an alias has 1 to 250 characters after alias/"
            ))
        } else {
            bad_char.map(|c| {
                format!("{name:?} has {c:?}: an alias has letters, digits, /, _ and - only")
            })
        };
        problem
            .map(|p| vec![PropIssue::at(&["name"], p)])
            .unwrap_or_default()
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        props.retain(|_, v| !v.is_null());
        Ok(())
    }

    fn known_attrs(&self, props: &Props) -> Props {
        let mut attrs = Props::new();
        if let Some(name) = known_str(props, "name") {
            attrs.insert("name".into(), json!(name));
        }
        attrs
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.kms(&ctx.region);
        Ok(target(&client, id)
            .await?
            .map(|key| observe(id, &key, prior)))
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let Some(name) = known_str(props, "name") else {
            return Ok(None);
        };
        let client = self.aws.kms(&ctx.region);
        // Untagged: an alias is this stack's only when it names the stack's key.
        Ok(target(&client, name)
            .await?
            .filter(|key| names_key(key, props))
            .map(|key| observe(name, &key, props)))
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.kms(&ctx.region);
        let name = str_of(props, "name")
            .ok_or_else(|| ResourceError::invalid("kms.alias needs a name"))?;
        let key = str_of(props, "target_key")
            .ok_or_else(|| ResourceError::invalid("kms.alias needs a target_key"))?;
        debug!(alias = name, "CreateAlias");
        match client
            .create_alias()
            .alias_name(name)
            .target_key_id(key)
            .send()
            .await
            .classified()
        {
            Ok(_) => {}
            Err(err) if err.code.as_deref() == Some("AlreadyExistsException") => {
                match target(&client, name).await? {
                    // A create whose answer was lost, or an earlier run's.
                    Some(found) if names_key(&found, props) => {}
                    _ => {
                        return Err(ResourceError::invalid(format!(
                            "the alias {name} already exists in {} and names another key; \
                             choose another name, or move it with `aws kms update-alias`",
                            ctx.region
                        ))
                        .with_code("AlreadyExistsException"))
                    }
                }
            }
            Err(err) => return Err(err),
        }
        self.settled(ctx, &client, name, props).await
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        _before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.kms(&ctx.region);
        let key = str_of(after, "target_key")
            .ok_or_else(|| ResourceError::invalid("kms.alias needs a target_key"))?;
        debug!(alias = id, "UpdateAlias");
        client
            .update_alias()
            .alias_name(id)
            .target_key_id(key)
            .send()
            .await
            .classified()?;
        self.settled(ctx, &client, id, after).await
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = self.aws.kms(&ctx.region);
        debug!(alias = id, "DeleteAlias");
        match client
            .delete_alias()
            .alias_name(id)
            .send()
            .await
            .classified()
        {
            Ok(_) => Ok(()),
            Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err),
        }
    }
}

impl KmsAlias {
    /// What the alias is after a create or update, built from what was asked; the key's
    /// ARN for the attributes comes from the key (an alias just made may not resolve yet).
    async fn settled(
        &self,
        ctx: &OpContext,
        client: &Client,
        name: &str,
        props: &Props,
    ) -> ResourceResult<Observed> {
        let key_ref = str_of(props, "target_key").unwrap_or_default();
        let key = target(client, key_ref).await?;
        let arn = key.as_ref().and_then(KeyMetadata::arn).unwrap_or_default();
        Ok(Observed {
            id: name.to_string(),
            props: props.clone(),
            attrs: alias_attrs(&ctx.region, name, arn),
        })
    }
}

/// The key the alias names, `None` when there is no such alias.
async fn target(client: &Client, alias: &str) -> ResourceResult<Option<KeyMetadata>> {
    match client
        .describe_key()
        .key_id(alias)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(out.key_metadata().cloned()),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Whether `key` is the key the properties name (by id or ARN).
fn names_key(key: &KeyMetadata, props: &Props) -> bool {
    let wanted = str_of(props, "target_key").unwrap_or_default();
    wanted == key.key_id() || Some(wanted) == key.arn()
}

/// The alias as AWS has it; the key named as the stack names it (id or ARN).
fn observe(name: &str, key: &KeyMetadata, prior: &Props) -> Observed {
    let arn = key.arn().unwrap_or_default();
    let by_arn = str_of(prior, "target_key").is_some_and(|k| k.starts_with("arn:"));
    let mut props = Props::new();
    props.insert("name".into(), json!(name));
    props.insert(
        "target_key".into(),
        json!(if by_arn { arn } else { key.key_id() }),
    );
    let region = arn.split(':').nth(3).unwrap_or_default();
    Observed {
        id: name.to_string(),
        props,
        attrs: alias_attrs(region, name, arn),
    }
}

fn alias_attrs(region: &str, name: &str, key_arn: &str) -> Props {
    let account = key_arn.split(':').nth(4).unwrap_or_default();
    let partition = key_arn.split(':').nth(1).unwrap_or("aws");
    let mut attrs = Props::new();
    attrs.insert("name".into(), json!(name));
    attrs.insert(
        "arn".into(),
        json!(format!("arn:{partition}:kms:{region}:{account}:{name}")),
    );
    attrs.insert("target_key_arn".into(), json!(key_arn));
    attrs
}
