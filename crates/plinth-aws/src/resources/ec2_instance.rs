//! `ec2.instance`: one EC2 instance, such as a bastion reached through Session Manager.
//!
//! The AMI is an id or an SSM public parameter (`ssm:/aws/service/…`), resolved when
//! planning so the plan shows the image it launches. A running instance keeps its image when
//! AWS publishes a newer one under the same parameter (the plan says so): a lab's bastion is
//! not replaced mid-week because Amazon Linux shipped a patch. `RunInstances` takes the
//! create token as its `ClientToken`, so a create sent again after a lost answer or a killed
//! run gets the same instance back; the token is also a tag, so `find` recognises exactly
//! that create. An instance profile made a moment ago is not yet usable by EC2 (IAM is
//! eventually consistent): the launch is retried meanwhile. A type change stops the
//! instance, changes it and starts it again; user data runs at first boot only, so a change
//! to it makes a new instance.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeValue, BlockDeviceMapping, EbsBlockDevice, HttpTokensState,
    IamInstanceProfileSpecification, Instance, InstanceMetadataEndpointState,
    InstanceMetadataOptionsRequest, InstanceMetadataTagsState,
    InstanceNetworkInterfaceSpecification, InstanceStateName, InstanceType,
    ResourceType as Ec2ResourceType, VolumeType,
};
use aws_sdk_ec2::Client;
use base64::Engine as _;
use plinth_core::cost::{price_text, CostContext, CostLine};
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{bool_of, contains_unknown, reorder, Props};
use serde_json::{json, Map, Value};
use tracing::debug;

use crate::errors::{has_code, vanished, SendExt};
use crate::resources::ec2_common::{self as common, known_str};
use crate::resources::tags;
use crate::wait::{self, Poll};
use crate::Aws;

/// A launch, and a stop or start, takes a minute or two; AWS allows far longer.
const RUNNING_LIMIT: Duration = Duration::from_secs(10 * 60);
const STOPPED_LIMIT: Duration = Duration::from_secs(10 * 60);
const TERMINATED_LIMIT: Duration = Duration::from_secs(10 * 60);
/// EBS starts a resize within seconds.
const RESIZE_LIMIT: Duration = Duration::from_secs(5 * 60);
/// AWS refuses user data over 16 KB (before base64).
const MAX_USER_DATA: usize = 16 * 1024;
/// Where the AMI is named by an SSM parameter.
const SSM_PREFIX: &str = "ssm:";
const HTTP_TOKENS: &[&str] = &["required", "optional"];
const ENABLED_DISABLED: &[&str] = &["enabled", "disabled"];
const VOLUME_TYPES: &[&str] = &["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"];
/// The root device name and size when the image cannot be described (Amazon Linux's).
const DEFAULT_ROOT_DEVICE: &str = "/dev/xvda";
const DEFAULT_ROOT_SIZE: i32 = 8;
const ORDER: &[&str] = &[
    "ami",
    "image_id",
    "instance_type",
    "subnet_id",
    "security_group_ids",
    "associate_public_ip_address",
    "instance_profile",
    "key_name",
    "user_data_file",
    "user_data",
    "metadata_options",
    "root_volume",
    "tags",
];
/// What AWS answers while something the launch names was made a moment ago and is not
/// visible to EC2 yet (a subnet, a group).
const NOT_VISIBLE: &[&str] = &["InvalidSubnetID.NotFound", "InvalidGroup.NotFound"];

/// The `ec2.instance` resource type.
pub struct InstanceResource {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl InstanceResource {
    pub fn new(aws: Arc<Aws>) -> InstanceResource {
        InstanceResource {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "ec2.instance",
        description: "An EC2 instance (a bastion reached with Session Manager, no SSH key)",
        kind: TypeKind::Managed,
        taggable: true,
        properties: vec![
            Prop::new("ami", Shape::String).required().doc(
                "the image: an AMI id (ami-…) or an SSM public parameter, e.g. \
                 ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64, \
                 resolved when planning",
            ),
            Prop::new("image_id", Shape::String)
                .computed()
                .replaces()
                .doc("the AMI id launched (what `ami` resolved to); set by plinth"),
            Prop::new("instance_type", Shape::String)
                .required()
                .doc("the instance type, e.g. t3.micro; changed by stopping and starting it"),
            Prop::new("subnet_id", Shape::String)
                .computed()
                .replaces()
                .doc("the subnet (subnet-…); default: a default subnet of the default VPC"),
            Prop::new("security_group_ids", Shape::list(Shape::String))
                .computed()
                .known_as(&["vpc_security_group_ids"])
                .doc("the security groups; default: the VPC's default group"),
            Prop::new("associate_public_ip_address", Shape::Bool)
                .computed()
                .replaces()
                .doc(
                    "whether it gets a public IPv4 address (billed by the hour); default: the \
                     subnet's setting",
                ),
            Prop::new("instance_profile", Shape::String)
                .known_as(&["iam_instance_profile"])
                .doc("the IAM instance profile's name, e.g. ${profile.name}"),
            Prop::new("key_name", Shape::String)
                .replaces()
                .doc("an EC2 key pair for SSH; default none (use Session Manager)"),
            Prop::new("user_data_file", Shape::String)
                .doc("a file, relative to the stack file, whose text is the user data"),
            Prop::new("user_data", Shape::String)
                .replaces()
                .shown_as_hash()
                .doc(
                    "the script cloud-init runs at first boot (up to 16 KB); plans show its \
                     hash; a change makes a new instance",
                ),
            Prop::new(
                "metadata_options",
                Shape::Object(vec![
                    Prop::new("http_tokens", Shape::Enum(HTTP_TOKENS))
                        .doc("required (IMDSv2 only, the default) or optional"),
                    Prop::new("http_endpoint", Shape::Enum(ENABLED_DISABLED))
                        .doc("whether the metadata service answers; default enabled"),
                    Prop::new("http_put_response_hop_limit", Shape::int_range(1, 64))
                        .doc("how far a token may travel; default 1 (2 for containers)"),
                    Prop::new("instance_metadata_tags", Shape::Enum(ENABLED_DISABLED))
                        .doc("whether tags are readable from the metadata; default disabled"),
                ]),
            )
            .doc("the instance metadata service (IMDS); IMDSv2 is required by default"),
            Prop::new(
                "root_volume",
                Shape::Object(vec![
                    Prop::new("size", Shape::int_range(1, 16384))
                        .doc("GiB; default the image's; growing it is done in place"),
                    Prop::new("type", Shape::Enum(VOLUME_TYPES)).doc("default gp3"),
                    Prop::new("encrypted", Shape::Bool).doc("default true"),
                ]),
            )
            .doc("the root EBS volume, deleted with the instance"),
            Prop::new("tags", Shape::map(Shape::String)).doc("tags of the instance"),
        ],
        attributes: vec![
            Attr::new("id", Shape::String, "the instance id (i-…)"),
            Attr::new("arn", Shape::String, "the instance ARN"),
            Attr::new("image_id", Shape::String, "the AMI it runs"),
            Attr::new("private_ip", Shape::String, "its private IPv4 address"),
            Attr::new(
                "public_ip",
                Shape::String,
                "its public IPv4 address, if any",
            ),
            Attr::new("private_dns", Shape::String, "its private DNS name"),
            Attr::new("public_dns", Shape::String, "its public DNS name, if any"),
            Attr::new("availability_zone", Shape::String, "its zone"),
            Attr::new("subnet_id", Shape::String, "its subnet"),
            Attr::new("vpc_id", Shape::String, "its VPC"),
        ],
    }
}

#[async_trait]
impl ResourceType for InstanceResource {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(&self, props: &Props, ctx: &CostContext) -> Vec<CostLine> {
        instance_cost(props, ctx)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(ami) = known_str(props, "ami") {
            if !ami.starts_with("ami-") && !ami.starts_with(SSM_PREFIX) {
                issues.push(PropIssue::at(
                    &["ami"],
                    format!("expected an AMI id (ami-…) or ssm:/parameter/name, not {ami:?}"),
                ));
            }
        }
        if let Some(subnet) = known_str(props, "subnet_id").filter(|s| !s.starts_with("subnet-")) {
            issues.push(PropIssue::at(
                &["subnet_id"],
                format!("expected a subnet id (subnet-…), not {subnet:?}"),
            ));
        }
        if let Some(size) = known_str(props, "user_data").map(str::len) {
            if size > MAX_USER_DATA {
                issues.push(PropIssue::at(
                    &["user_data"],
                    format!("{size} bytes: AWS takes at most 16 KB of user data"),
                ));
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, ctx: &NormalizeContext) -> ResourceResult<()> {
        props.retain(|_, v| !v.is_null());
        if let Some(path) = known_str(props, "user_data_file").map(str::to_string) {
            if props.contains_key("user_data") {
                return Err(ResourceError::invalid(
                    "give user_data or user_data_file, not both",
                ));
            }
            let file = ctx.base_dir.join(&path);
            let text = std::fs::read_to_string(&file).map_err(|e| {
                ResourceError::invalid(format!("user_data_file {}: {e}", file.display()))
            })?;
            props.insert("user_data".into(), json!(text));
        }
        if let Some(ami) = known_str(props, "ami").filter(|a| a.starts_with("ami-")) {
            props.insert("image_id".into(), json!(ami));
        }
        canonicalize(props);
        Ok(())
    }

    fn disk_inputs(&self, props: &Props) -> Vec<String> {
        known_str(props, "user_data_file")
            .map(str::to_string)
            .into_iter()
            .collect()
    }

    /// An SSM parameter is read when planning. An instance launched from it keeps its
    /// image while the parameter still names the same `ami`; a newer image is only said.
    async fn resolve(
        &self,
        ctx: &OpContext,
        desired: &mut Props,
        current: Option<&Props>,
    ) -> ResourceResult<Vec<String>> {
        let Some(parameter) = known_str(desired, "ami")
            .and_then(|a| a.strip_prefix(SSM_PREFIX))
            .map(str::to_string)
        else {
            return Ok(Vec::new());
        };
        let latest = ssm_parameter(&self.aws, &ctx.region, &parameter).await?;
        let running = current
            .filter(|c| c.get("ami") == desired.get("ami"))
            .and_then(|c| known_str(c, "image_id"))
            .map(str::to_string);
        let notes = match &running {
            Some(image) if *image != latest => vec![format!(
                "ssm:{parameter} now names {latest}; the instance keeps {image} until it is \
                 replaced"
            )],
            Some(_) => Vec::new(),
            None => vec![format!("ssm:{parameter} is {latest}")],
        };
        // Set even when it is what runs: apply makes a replacement from exactly this.
        desired.insert("image_id".into(), json!(running.unwrap_or(latest)));
        Ok(notes)
    }

    fn known_attrs(&self, props: &Props) -> Props {
        plinth_core::value::pick(props, &["image_id", "subnet_id"])
    }

    fn change_notes(&self, before: &Props, after: &Props) -> Vec<String> {
        let mut notes = Vec::new();
        if before.get("instance_type") != after.get("instance_type") {
            notes.push(
                "the instance is stopped, changed and started again (a few minutes; a public \
                 IP address it had changes)"
                    .to_string(),
            );
        }
        notes
    }

    /// The root volume grows in place; a smaller one, another type or another encryption
    /// needs a new instance.
    fn replace_reasons(&self, before: &Props, after: &Props) -> Vec<String> {
        let mut reasons = self.schema.replaced_properties(before, after);
        let volume = |p: &Props, key: &str| {
            p.get("root_volume")
                .and_then(|v| v.get(key))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let shrinks = match (
            volume(before, "size").as_i64(),
            volume(after, "size").as_i64(),
        ) {
            (Some(b), Some(a)) => a < b,
            _ => false,
        };
        let remade = volume(before, "type") != volume(after, "type")
            || volume(before, "encrypted") != volume(after, "encrypted");
        if shrinks || remade {
            reasons.push("root_volume".to_string());
        }
        reasons
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(&ctx.region);
        let Some((instance, owner)) = describe(&ec2, id).await? else {
            return Ok(None);
        };
        if is_gone(&instance) {
            return Ok(None);
        }
        let volume = root_volume(&ec2, &instance).await?;
        observe(&ctx.region, &instance, &owner, volume, prior).map(Some)
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let ec2 = self.aws.ec2(&ctx.region);
        let made = made_by(&ec2, ctx, props).await?;
        let Some((instance, owner)) = made.into_iter().find(|(i, _)| !is_gone(i)) else {
            return Ok(None);
        };
        debug!(instance = ?instance.instance_id(), "adopting an instance an interrupted create made");
        // As it is now: `find` runs when planning, which does not wait for a launch to end.
        let volume = root_volume(&ec2, &instance).await?;
        observe(&ctx.region, &instance, &owner, volume, props).map(Some)
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::name_after(arn, "ec2", "instance/")
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let ec2 = self.aws.ec2(&ctx.region);
        let image = known_str(props, "image_id")
            .ok_or_else(|| ResourceError::invalid("ec2.instance: the AMI is not resolved"))?;
        let root_device = root_device_of(&ec2, image).await?;
        let mut token = client_token(&ec2, ctx, props).await?;
        let mut fresh_tokens = 0;
        let id = loop {
            match self
                .launch(ctx, &ec2, props, &root_device, token.as_deref())
                .await
            {
                // The token's instance was terminated (and no longer listed): a new token.
                Err(err) if has_code(&err, TOKEN_TERMINATED) && fresh_tokens < 3 => {
                    fresh_tokens += 1;
                    token = ctx.create_token.as_deref().map(fresh_token);
                }
                other => break other?,
            }
        };
        wait_for_state(ctx, &ec2, &id, InstanceStateName::Running).await?;
        self.read(ctx, &id, props)
            .await?
            .ok_or_else(|| vanished(&format!("instance {id}")))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let ec2 = self.aws.ec2(&ctx.region);
        let changed = |key: &str| before.get(key) != after.get(key);
        common::update_tags(&ec2, id, before, after).await?;
        if changed("security_group_ids") {
            set_groups(&ec2, id, after).await?;
        }
        if changed("metadata_options") {
            set_metadata_options(&ec2, id, after).await?;
        }
        if changed("instance_profile") {
            // A profile made a moment ago is unknown to EC2 for some seconds.
            let what = "changing the instance profile while it is not visible yet";
            let ec2 = &ec2;
            wait::retry_while_busy(ctx, what, wait::VISIBLE_LIMIT, || async move {
                set_instance_profile(ec2, id, after)
                    .await
                    .map_err(profile_not_visible)
            })
            .await?;
        }
        if changed("root_volume") {
            grow_root_volume(ctx, &ec2, id, after).await?;
        }
        if changed("instance_type") {
            change_type(ctx, &ec2, id, after).await?;
        }
        self.read(ctx, id, after)
            .await?
            .ok_or_else(|| vanished(&format!("instance {id}")))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let ec2 = self.aws.ec2(&ctx.region);
        debug!(instance = id, "TerminateInstances");
        let answer = ec2
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
            .classified();
        match common::unless_gone(answer) {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            // Sent again after its answer was lost, a terminate may be refused: what counts
            // is whether the instance is on its way out.
            Err(err) => match describe(&ec2, id).await? {
                Some((instance, _)) if is_gone(&instance) => {}
                None => return Ok(()),
                Some(_) => return Err(err),
            },
        }
        let what = format!("instance {id} to terminate");
        let ec2 = &ec2;
        wait::until_deleted(
            ctx,
            &what,
            "terminating (its network interface leaves the subnet once it is terminated)",
            TERMINATED_LIMIT,
            || async move {
                Ok(describe(ec2, id).await?.and_then(|(i, _)| {
                    (state_of(&i) != Some(&InstanceStateName::Terminated))
                        .then(|| state_name(&i).to_string())
                }))
            },
        )
        .await
    }
}

impl InstanceResource {
    /// One launch, sent again while what it names is not visible yet.
    async fn launch(
        &self,
        ctx: &OpContext,
        ec2: &Client,
        props: &Props,
        root_device: &RootDevice,
        token: Option<&str>,
    ) -> ResourceResult<String> {
        let what = "launching the instance while what it names is not visible yet";
        common::retry_while_invisible(ctx, what, NOT_VISIBLE, || async move {
            run_instance(ec2, ctx, props, root_device, token)
                .await
                .map_err(profile_not_visible)
        })
        .await
    }
}

fn canonicalize(props: &mut Props) {
    let metadata = props
        .get("metadata_options")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let text =
        |key: &str, default: &str| metadata.get(key).cloned().unwrap_or_else(|| json!(default));
    let hops = metadata
        .get("http_put_response_hop_limit")
        .cloned()
        .unwrap_or_else(|| json!(1));
    props.insert(
        "metadata_options".into(),
        json!({
            "http_tokens": text("http_tokens", "required"),
            "http_endpoint": text("http_endpoint", "enabled"),
            "http_put_response_hop_limit": hops,
            "instance_metadata_tags": text("instance_metadata_tags", "disabled"),
        }),
    );
    if let Some(Value::Object(volume)) = props.get_mut("root_volume") {
        volume.entry("type").or_insert_with(|| json!("gp3"));
        volume.entry("encrypted").or_insert_with(|| json!(true));
    } else {
        props.insert(
            "root_volume".into(),
            json!({"type": "gp3", "encrypted": true}),
        );
    }
    if let Some(Value::Array(groups)) = props.get_mut("security_group_ids") {
        if !groups.iter().any(contains_unknown) {
            groups.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            groups.dedup();
        }
    }
    props.insert("tags".into(), tags::tags_value(tags::tags_of(props)));
    reorder(props, ORDER);
}

/// What the instance costs: its hours by type, its root volume's GB-months, and a public
/// IPv4 address when it asks for one.
fn instance_cost(props: &Props, ctx: &CostContext) -> Vec<CostLine> {
    let mut lines = Vec::new();
    match props.get("instance_type").and_then(Value::as_str) {
        Some(kind) if !contains_unknown(&json!(kind)) => {
            let what = format!("{kind} instance");
            match ctx.regional_price(&["ec2", "instance_hour", kind]) {
                Ok(hour) => lines.push(CostLine::per_hour(
                    format!("{what} at ${}/h", price_text(hour)),
                    hour,
                )),
                Err(e) => lines.push(CostLine::unknown(what, e.to_string())),
            }
        }
        _ => lines.push(crate::cost::known_after_apply(
            "instance hours",
            "instance_type",
        )),
    }
    let volume = props.get("root_volume");
    let kind = volume
        .and_then(|v| v.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("gp3");
    // Amazon Linux images have an 8 GiB root volume.
    let size = volume
        .and_then(|v| v.get("size"))
        .and_then(Value::as_f64)
        .unwrap_or(8.0);
    match ctx.regional_price(&["ec2", "ebs_gb_month", kind]) {
        Ok(per_gb) => lines.push(CostLine::per_month(
            format!(
                "{} GiB {kind} root volume × ${}/GB-month",
                plinth_core::cost::count_text(size),
                price_text(per_gb)
            ),
            size * per_gb,
        )),
        Err(e) => lines.push(CostLine::unknown(
            format!("{kind} root volume"),
            e.to_string(),
        )),
    }
    if bool_of(props, "associate_public_ip_address") == Some(true) {
        lines.push(crate::cost::public_ipv4_line(ctx));
    }
    lines
}

/// The value of an SSM parameter (an AMI id under `/aws/service/…`).
async fn ssm_parameter(aws: &Aws, region: &str, name: &str) -> ResourceResult<String> {
    debug!(parameter = name, "GetParameter");
    let out = aws
        .ssm(region)
        .get_parameter()
        .name(name)
        .send()
        .await
        .classified()
        .map_err(|mut err| {
            err.message = format!("SSM parameter {name} in {region}: {}", err.message);
            err
        })?;
    out.parameter()
        .and_then(|p| p.value())
        .filter(|v| v.starts_with("ami-"))
        .map(str::to_string)
        .ok_or_else(|| {
            ResourceError::invalid(format!("SSM parameter {name} in {region} holds no AMI id"))
        })
}

/// The image's root device name, which the root volume's mapping must use, and its size
/// (GiB), which the mapping repeats when the stack leaves it to the image.
async fn root_device_of(ec2: &Client, image: &str) -> ResourceResult<RootDevice> {
    let answer = ec2
        .describe_images()
        .image_ids(image)
        .send()
        .await
        .classified();
    let image = common::unless_gone(answer)?.and_then(|out| out.images().first().cloned());
    let name = image
        .as_ref()
        .and_then(|i| i.root_device_name())
        .unwrap_or(DEFAULT_ROOT_DEVICE)
        .to_string();
    let size = image
        .as_ref()
        .and_then(|i| {
            i.block_device_mappings()
                .iter()
                .find(|m| m.device_name() == Some(name.as_str()))
        })
        .and_then(|m| m.ebs())
        .and_then(|e| e.volume_size());
    Ok(RootDevice {
        name,
        size: size.unwrap_or(DEFAULT_ROOT_SIZE),
    })
}

struct RootDevice {
    name: String,
    size: i32,
}

async fn run_instance(
    ec2: &Client,
    ctx: &OpContext,
    props: &Props,
    root_device: &RootDevice,
    token: Option<&str>,
) -> ResourceResult<String> {
    let image = known_str(props, "image_id").unwrap_or_default();
    let kind = known_str(props, "instance_type")
        .ok_or_else(|| ResourceError::invalid("ec2.instance needs an instance_type"))?;
    let subnet = known_str(props, "subnet_id").map(str::to_string);
    let groups = string_list(props, "security_group_ids");
    let public = bool_of(props, "associate_public_ip_address");
    let mut request = ec2
        .run_instances()
        .image_id(image)
        .instance_type(InstanceType::from(kind))
        .min_count(1)
        .max_count(1)
        .set_client_token(token.map(str::to_string))
        .set_key_name(known_str(props, "key_name").map(str::to_string))
        .metadata_options(metadata_request(props))
        .block_device_mappings(root_mapping(props, root_device))
        .set_tag_specifications(common::tag_specs(Ec2ResourceType::Instance, props, ctx));
    // A public address is asked for on the interface, which then carries subnet and groups.
    request = match public {
        Some(public) => request.network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .set_subnet_id(subnet)
                .set_groups(groups)
                .associate_public_ip_address(public)
                .delete_on_termination(true)
                .build(),
        ),
        None => request.set_subnet_id(subnet).set_security_group_ids(groups),
    };
    if let Some(profile) = known_str(props, "instance_profile") {
        request = request.iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name(profile)
                .build(),
        );
    }
    if let Some(text) = known_str(props, "user_data") {
        request = request.user_data(base64::engine::general_purpose::STANDARD.encode(text));
    }
    debug!(image, kind, "RunInstances");
    let out = request.send().await.classified()?;
    out.instances()
        .first()
        .and_then(Instance::instance_id)
        .map(str::to_string)
        .ok_or_else(|| ResourceError::other("RunInstances returned no instance"))
}

/// A profile created a moment ago is unknown to EC2 for some seconds: AWS answers
/// `InvalidParameterValue` naming `iamInstanceProfile`; treated as "not visible yet".
fn profile_not_visible(err: ResourceError) -> ResourceError {
    let about_profile = err.message.contains("iamInstanceProfile")
        || err.message.contains("IAM Instance Profile")
        || has_code(&err, &["NoSuchEntity"]);
    if about_profile && (has_code(&err, &["InvalidParameterValue", "NoSuchEntity"])) {
        ResourceError {
            kind: ErrorKind::InUse,
            ..err
        }
    } else {
        err
    }
}

fn metadata_request(props: &Props) -> InstanceMetadataOptionsRequest {
    let m = metadata_of(props);
    InstanceMetadataOptionsRequest::builder()
        .http_tokens(HttpTokensState::from(m.tokens.as_str()))
        .http_endpoint(InstanceMetadataEndpointState::from(m.endpoint.as_str()))
        .http_put_response_hop_limit(m.hops)
        .instance_metadata_tags(InstanceMetadataTagsState::from(m.tags.as_str()))
        .build()
}

struct Metadata {
    tokens: String,
    endpoint: String,
    hops: i32,
    tags: String,
}

fn metadata_of(props: &Props) -> Metadata {
    let m = props.get("metadata_options").cloned().unwrap_or_default();
    let text = |key: &str, default: &str| {
        m.get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    Metadata {
        tokens: text("http_tokens", "required"),
        endpoint: text("http_endpoint", "enabled"),
        hops: m
            .get("http_put_response_hop_limit")
            .and_then(Value::as_i64)
            .and_then(|h| i32::try_from(h).ok())
            .unwrap_or(1),
        tags: text("instance_metadata_tags", "disabled"),
    }
}

fn root_mapping(props: &Props, device: &RootDevice) -> BlockDeviceMapping {
    let volume = props.get("root_volume").cloned().unwrap_or_default();
    let size = volume
        .get("size")
        .and_then(Value::as_i64)
        .and_then(|s| i32::try_from(s).ok())
        .unwrap_or(device.size);
    let kind = volume.get("type").and_then(Value::as_str).unwrap_or("gp3");
    let encrypted = volume
        .get("encrypted")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    BlockDeviceMapping::builder()
        .device_name(&device.name)
        .ebs(
            EbsBlockDevice::builder()
                .volume_size(size)
                .volume_type(VolumeType::from(kind))
                .encrypted(encrypted)
                .delete_on_termination(true)
                .build(),
        )
        .build()
}

fn string_list(props: &Props, key: &str) -> Option<Vec<String>> {
    props.get(key).and_then(Value::as_array).map(|list| {
        list.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}

/// The `ClientToken`: the create token, unless an instance it launched has since been
/// terminated (AWS answers a token's terminated instance, or `IdempotentInstanceTerminated`,
/// for as long as it keeps the token, longer than it lists the instance): then the token
/// with a fresh suffix. Whatever the suffix, the instance carries the create token as a tag,
/// which is how a later run recognises it.
async fn client_token(
    ec2: &Client,
    ctx: &OpContext,
    props: &Props,
) -> ResourceResult<Option<String>> {
    let Some(token) = &ctx.create_token else {
        return Ok(None);
    };
    let gone = made_by(ec2, ctx, props)
        .await?
        .iter()
        .any(|(i, _)| is_gone(i));
    Ok(Some(if gone {
        fresh_token(token)
    } else {
        token.clone()
    }))
}

fn fresh_token(token: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{token}-{}", &suffix[..8])
}

/// What EC2 answers a token whose instance it has terminated.
const TOKEN_TERMINATED: &[&str] = &["IdempotentInstanceTerminated"];

/// The instances one create of this resource launched (its owner tags and token).
async fn made_by(
    ec2: &Client,
    ctx: &OpContext,
    props: &Props,
) -> ResourceResult<Vec<(Instance, String)>> {
    let Some(filters) = common::created_by(props, ctx) else {
        return Ok(Vec::new());
    };
    let out = ec2
        .describe_instances()
        .set_filters(Some(filters))
        .send()
        .await
        .classified()?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| {
            let owner = r.owner_id().unwrap_or_default().to_string();
            r.instances()
                .iter()
                .map(move |i| (i.clone(), owner.clone()))
        })
        .collect())
}

async fn describe(ec2: &Client, id: &str) -> ResourceResult<Option<(Instance, String)>> {
    let answer = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .classified();
    Ok(common::unless_gone(answer)?.and_then(|out| {
        out.reservations().iter().find_map(|r| {
            let instance = r.instances().first()?.clone();
            Some((instance, r.owner_id().unwrap_or_default().to_string()))
        })
    }))
}

fn state_of(instance: &Instance) -> Option<&InstanceStateName> {
    instance.state().and_then(|s| s.name())
}

fn state_name(instance: &Instance) -> &str {
    state_of(instance).map_or("unknown", InstanceStateName::as_str)
}

/// Terminated or on its way: AWS lists such an instance for an hour, but it is gone.
fn is_gone(instance: &Instance) -> bool {
    matches!(
        state_of(instance),
        Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)
    )
}

fn instance_id(instance: &Instance) -> ResourceResult<&str> {
    instance
        .instance_id()
        .ok_or_else(|| ResourceError::other("DescribeInstances returned an instance without id"))
}

/// Waits until the instance is in `wanted` (running after a launch or start, stopped after
/// a stop); an instance that terminates meanwhile failed to launch, with AWS's reason.
async fn wait_for_state(
    ctx: &OpContext,
    ec2: &Client,
    id: &str,
    wanted: InstanceStateName,
) -> ResourceResult<Instance> {
    let what = format!("instance {id} to be {}", wanted.as_str());
    let limit = if wanted == InstanceStateName::Stopped {
        STOPPED_LIMIT
    } else {
        RUNNING_LIMIT
    };
    let since = tokio::time::Instant::now();
    let wanted = &wanted;
    wait::until(ctx, &what, limit, move || async move {
        match describe(ec2, id).await? {
            Some((i, _)) if state_of(&i) == Some(wanted) => Ok(Poll::Ready(i)),
            Some((i, _)) if is_gone(&i) => Err(ResourceError::other(format!(
                "instance {id} terminated while starting: {}",
                i.state_reason()
                    .and_then(|r| r.message())
                    .unwrap_or("AWS gave no reason")
            ))),
            Some((i, _)) => Ok(Poll::Pending(state_name(&i).to_string())),
            None => wait::not_visible_yet(since, || vanished(&format!("instance {id}"))),
        }
    })
    .await
}

/// The root volume's size, type and encryption, as EBS reports them.
async fn root_volume(ec2: &Client, instance: &Instance) -> ResourceResult<Option<Value>> {
    let root = instance.root_device_name().unwrap_or(DEFAULT_ROOT_DEVICE);
    let Some(volume_id) = root_volume_id(instance, root) else {
        return Ok(None);
    };
    let answer = ec2
        .describe_volumes()
        .volume_ids(volume_id)
        .send()
        .await
        .classified();
    let Some(out) = common::unless_gone(answer)? else {
        return Ok(None);
    };
    Ok(out.volumes().first().map(|v| {
        json!({
            "size": v.size().unwrap_or_default(),
            "type": v.volume_type().map_or("gp3", VolumeType::as_str),
            "encrypted": v.encrypted().unwrap_or(false),
        })
    }))
}

fn root_volume_id<'a>(instance: &'a Instance, root: &str) -> Option<&'a str> {
    let mappings = instance.block_device_mappings();
    mappings
        .iter()
        .find(|m| m.device_name() == Some(root))
        .or_else(|| mappings.first())
        .and_then(|m| m.ebs())
        .and_then(|e| e.volume_id())
}

async fn set_groups(ec2: &Client, id: &str, after: &Props) -> ResourceResult<()> {
    let Some(groups) = string_list(after, "security_group_ids") else {
        return Ok(());
    };
    debug!(instance = id, ?groups, "ModifyInstanceAttribute groups");
    ec2.modify_instance_attribute()
        .instance_id(id)
        .set_groups(Some(groups))
        .send()
        .await
        .classified()
        .map(|_| ())
}

async fn set_metadata_options(ec2: &Client, id: &str, after: &Props) -> ResourceResult<()> {
    let m = metadata_of(after);
    debug!(
        instance = id,
        tokens = m.tokens,
        "ModifyInstanceMetadataOptions"
    );
    ec2.modify_instance_metadata_options()
        .instance_id(id)
        .http_tokens(HttpTokensState::from(m.tokens.as_str()))
        .http_endpoint(InstanceMetadataEndpointState::from(m.endpoint.as_str()))
        .http_put_response_hop_limit(m.hops)
        .instance_metadata_tags(InstanceMetadataTagsState::from(m.tags.as_str()))
        .send()
        .await
        .classified()
        .map(|_| ())
}

/// Associates, replaces or removes the instance profile, as AWS has it now.
async fn set_instance_profile(ec2: &Client, id: &str, after: &Props) -> ResourceResult<()> {
    let out = ec2
        .describe_iam_instance_profile_associations()
        .filters(common::filter("instance-id", id))
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("state")
                .values("associated")
                .values("associating")
                .build(),
        )
        .send()
        .await
        .classified()?;
    let current = out
        .iam_instance_profile_associations()
        .first()
        .and_then(|a| a.association_id())
        .map(str::to_string);
    let spec = |name: &str| {
        IamInstanceProfileSpecification::builder()
            .name(name)
            .build()
    };
    match (current, known_str(after, "instance_profile")) {
        (Some(association), Some(name)) => {
            debug!(
                instance = id,
                profile = name,
                "ReplaceIamInstanceProfileAssociation"
            );
            ec2.replace_iam_instance_profile_association()
                .association_id(association)
                .iam_instance_profile(spec(name))
                .send()
                .await
                .classified()
                .map(|_| ())
        }
        (None, Some(name)) => {
            debug!(instance = id, profile = name, "AssociateIamInstanceProfile");
            ec2.associate_iam_instance_profile()
                .instance_id(id)
                .iam_instance_profile(spec(name))
                .send()
                .await
                .classified()
                .map(|_| ())
        }
        (Some(association), None) => {
            debug!(instance = id, "DisassociateIamInstanceProfile");
            ec2.disassociate_iam_instance_profile()
                .association_id(association)
                .send()
                .await
                .classified()
                .map(|_| ())
        }
        (None, None) => Ok(()),
    }
}

/// Grows the root volume to the size asked for (EBS resizes it while the instance runs).
async fn grow_root_volume(
    ctx: &OpContext,
    ec2: &Client,
    id: &str,
    after: &Props,
) -> ResourceResult<()> {
    let Some(size) = after
        .get("root_volume")
        .and_then(|v| v.get("size"))
        .and_then(Value::as_i64)
        .and_then(|s| i32::try_from(s).ok())
    else {
        return Ok(());
    };
    let (instance, _) = describe(ec2, id)
        .await?
        .ok_or_else(|| vanished(&format!("instance {id}")))?;
    let root = instance.root_device_name().unwrap_or(DEFAULT_ROOT_DEVICE);
    let Some(volume) = root_volume_id(&instance, root) else {
        return Ok(());
    };
    debug!(instance = id, volume, size, "ModifyVolume");
    ec2.modify_volume()
        .volume_id(volume)
        .size(size)
        .send()
        .await
        .classified()?;
    // EBS reports the new size once the modification is under way (then it optimizes for
    // hours, which needs no wait); a read before that would record the old size.
    let what = format!("volume {volume} to be {size} GiB");
    wait::until(&own_budget(ctx), &what, RESIZE_LIMIT, || async move {
        let out = ec2
            .describe_volumes()
            .volume_ids(volume)
            .send()
            .await
            .classified()?;
        match out.volumes().first().and_then(|v| v.size()) {
            Some(now) if now >= size => Ok(Poll::Ready(())),
            now => Ok(Poll::Pending(format!("{} GiB", now.unwrap_or_default()))),
        }
    })
    .await
}

/// A context whose default wait limits count from now: each wait of a multi-step change
/// (stop, then start) gets its own, within the stack's deadline if it set one.
fn own_budget(ctx: &OpContext) -> OpContext {
    let mut ctx = ctx.clone();
    ctx.started = tokio::time::Instant::now();
    ctx
}

/// Stops the instance, changes its type and starts it again.
async fn change_type(ctx: &OpContext, ec2: &Client, id: &str, after: &Props) -> ResourceResult<()> {
    let kind = known_str(after, "instance_type")
        .ok_or_else(|| ResourceError::invalid("ec2.instance needs an instance_type"))?;
    debug!(instance = id, "StopInstances");
    ec2.stop_instances()
        .instance_ids(id)
        .send()
        .await
        .classified()?;
    wait_for_state(&own_budget(ctx), ec2, id, InstanceStateName::Stopped).await?;
    debug!(instance = id, kind, "ModifyInstanceAttribute instanceType");
    let modified = ec2
        .modify_instance_attribute()
        .instance_id(id)
        .instance_type(AttributeValue::builder().value(kind).build())
        .send()
        .await
        .classified();
    // Refused (a type of another architecture, say): the instance is started again as it
    // was, not left stopped, and the refusal reported.
    let started = start(ctx, ec2, id).await;
    modified?;
    started
}

async fn start(ctx: &OpContext, ec2: &Client, id: &str) -> ResourceResult<()> {
    debug!(instance = id, "StartInstances");
    ec2.start_instances()
        .instance_ids(id)
        .send()
        .await
        .classified()?;
    wait_for_state(&own_budget(ctx), ec2, id, InstanceStateName::Running)
        .await
        .map(|_| ())
}

/// The instance as properties. `ami`, the user data and its file are what was applied
/// (`prior`): AWS keeps the image id only, and user data cannot change while it runs.
fn observe(
    region: &str,
    instance: &Instance,
    owner: &str,
    volume: Option<Value>,
    prior: &Props,
) -> ResourceResult<Observed> {
    let id = instance_id(instance)?;
    let image = instance.image_id().unwrap_or_default();
    let mut props = Props::new();
    let ami = prior
        .get("ami")
        .filter(|a| {
            a.as_str()
                .is_some_and(|a| a.starts_with(SSM_PREFIX) || a == image)
        })
        .cloned()
        .unwrap_or_else(|| json!(image));
    props.insert("ami".into(), ami);
    props.insert("image_id".into(), json!(image));
    if let Some(kind) = instance.instance_type() {
        props.insert("instance_type".into(), json!(kind.as_str()));
    }
    if let Some(subnet) = instance.subnet_id() {
        props.insert("subnet_id".into(), json!(subnet));
    }
    props.insert("security_group_ids".into(), json!(groups_of(instance)));
    if let Some(public) = prior.get("associate_public_ip_address") {
        // AWS does not report the request; whether a running instance holds an address
        // tells (a stopped one holds none, whatever it asked for).
        let running = state_of(instance) == Some(&InstanceStateName::Running);
        let has = instance.public_ip_address().is_some();
        let value = if running { json!(has) } else { public.clone() };
        props.insert("associate_public_ip_address".into(), value);
    }
    if let Some(profile) = instance
        .iam_instance_profile()
        .and_then(|p| p.arn())
        .and_then(|arn| arn.rsplit('/').next())
    {
        props.insert("instance_profile".into(), json!(profile));
    }
    if let Some(key) = instance.key_name() {
        props.insert("key_name".into(), json!(key));
    }
    for key in ["user_data_file", "user_data"] {
        if let Some(value) = prior.get(key) {
            props.insert(key.into(), value.clone());
        }
    }
    if let Some(m) = instance.metadata_options() {
        props.insert(
            "metadata_options".into(),
            json!({
                "http_tokens": m.http_tokens().map_or("optional", HttpTokensState::as_str),
                "http_endpoint": m.http_endpoint().map_or("enabled", InstanceMetadataEndpointState::as_str),
                "http_put_response_hop_limit": m.http_put_response_hop_limit().unwrap_or(1),
                "instance_metadata_tags": m.instance_metadata_tags().map_or("disabled", InstanceMetadataTagsState::as_str),
            }),
        );
    }
    if let Some(mut volume) = volume {
        // Left to the image, the size is whatever the image has.
        let asked_size = prior.get("root_volume").and_then(|v| v.get("size"));
        if asked_size.is_none() {
            if let Some(v) = volume.as_object_mut() {
                v.remove("size");
            }
        }
        props.insert("root_volume".into(), volume);
    }
    props.insert(
        "tags".into(),
        tags::tags_value(common::tags_from(instance.tags())),
    );
    canonicalize(&mut props);
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs: attrs_of(region, instance, owner, id),
    })
}

/// The groups of the instance's primary network interface (what `SecurityGroups` reports,
/// and what ModifyInstanceAttribute changes), read from the interface when it is listed.
fn groups_of(instance: &Instance) -> Vec<&str> {
    let primary = instance.network_interfaces().iter().find(|n| {
        n.attachment()
            .and_then(|a| a.device_index())
            .is_some_and(|i| i == 0)
    });
    let groups = match primary {
        Some(interface) => interface.groups(),
        None => instance.security_groups(),
    };
    groups.iter().filter_map(|g| g.group_id()).collect()
}

fn attrs_of(region: &str, instance: &Instance, owner: &str, id: &str) -> Props {
    let mut attrs = Map::new();
    attrs.insert("id".into(), json!(id));
    if !owner.is_empty() {
        attrs.insert(
            "arn".into(),
            json!(common::arn(region, owner, "instance", id)),
        );
    }
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            attrs.insert(key.into(), json!(v));
        }
    };
    put("image_id", instance.image_id());
    put("private_ip", instance.private_ip_address());
    put("public_ip", instance.public_ip_address());
    put("private_dns", instance.private_dns_name());
    put("public_dns", instance.public_dns_name());
    put(
        "availability_zone",
        instance.placement().and_then(|p| p.availability_zone()),
    );
    put("subnet_id", instance.subnet_id());
    put("vpc_id", instance.vpc_id());
    attrs
}
