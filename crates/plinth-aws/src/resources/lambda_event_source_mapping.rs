//! `lambda.event_source_mapping`: Lambda reading a DynamoDB stream (or a Kinesis stream, an
//! SQS queue) and invoking a function with batches of its records.
//!
//! AWS allows one mapping per function and stream, and refuses a second
//! (`ResourceConflictException`): a create sent again after a lost answer, or by a run that
//! was killed, finds that one and takes it. The function's role must be allowed to read the
//! stream (the AWS-managed `AWSLambdaDynamoDBExecutionRole` policy); a policy attached a
//! moment ago is not yet seen by Lambda, which refuses the mapping meanwhile, so the create
//! is retried. A mapping is `Creating`, `Updating` or `Deleting` for a while: each change is
//! waited for.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::operation::get_event_source_mapping::GetEventSourceMappingOutput;
use aws_sdk_lambda::types::{EventSourcePosition, Filter, FilterCriteria};
use aws_sdk_lambda::Client;
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{bool_of, contains_unknown, known_str, reorder, Props};
use serde_json::{json, Value};
use tracing::debug;

use crate::errors::{has_code, vanished, SendExt};
use crate::wait::{self, Poll};
use crate::Aws;

pub const STARTING_POSITIONS: &[&str] = &["TRIM_HORIZON", "LATEST"];
/// Lambda moves a mapping out of Creating or Updating within a minute or so.
const READY_LIMIT: Duration = Duration::from_secs(5 * 60);
const DELETE_LIMIT: Duration = Duration::from_secs(5 * 60);
/// How long a role's new permission to read the stream may stay unseen by Lambda (IAM is
/// eventually consistent; Terraform's provider waits two minutes too).
const PERMISSION_LIMIT: Duration = Duration::from_secs(2 * 60);
const ORDER: &[&str] = &[
    "function_name",
    "event_source_arn",
    "starting_position",
    "batch_size",
    "maximum_batching_window_in_seconds",
    "maximum_retry_attempts",
    "bisect_batch_on_function_error",
    "filters",
    "enabled",
];

/// The `lambda.event_source_mapping` resource type.
pub struct EventSourceMappingType {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl EventSourceMappingType {
    pub fn new(aws: Arc<Aws>) -> EventSourceMappingType {
        EventSourceMappingType {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "lambda.event_source_mapping",
        description: "Lambda invoking a function with batches of a DynamoDB stream's records",
        kind: TypeKind::Managed,
        taggable: false,
        properties: vec![
            Prop::new("function_name", Shape::String)
                .required()
                .known_as(&["function"])
                .doc("the function, by name or ARN, e.g. ${handler.name}"),
            Prop::new("event_source_arn", Shape::String)
                .required()
                .replaces()
                .doc("the stream's ARN, e.g. ${orders.stream_arn}"),
            Prop::new("starting_position", Shape::Enum(STARTING_POSITIONS))
                .replaces()
                .doc("TRIM_HORIZON (the oldest records kept) or LATEST (new ones only); default LATEST"),
            Prop::new("batch_size", Shape::int_range(1, 10_000))
                .doc("the most records in one invocation; default 100"),
            Prop::new("maximum_batching_window_in_seconds", Shape::int_range(0, 300))
                .doc("how long Lambda gathers records before invoking; default 0"),
            Prop::new("maximum_retry_attempts", Shape::int_range(-1, 10_000))
                .doc("retries of a failed batch; default -1 (until the records expire)"),
            Prop::new("bisect_batch_on_function_error", Shape::Bool)
                .doc("split a failing batch in two and retry each; default false"),
            Prop::new("filters", Shape::list(Shape::Any)).doc(
                "event filter patterns (maps or JSON strings), e.g. {eventName: [INSERT]}: \
                 only matching records invoke the function; default none",
            ),
            Prop::new("enabled", Shape::Bool).doc("whether Lambda reads the stream; default true"),
        ],
        attributes: vec![
            Attr::new("id", Shape::String, "the mapping's UUID"),
            Attr::new("arn", Shape::String, "the mapping's ARN"),
            Attr::new("function_arn", Shape::String, "the function's ARN"),
            Attr::new("state", Shape::String, "Enabled, Disabled, …"),
        ],
    }
}

#[async_trait]
impl ResourceType for EventSourceMappingType {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn cost(
        &self,
        _props: &Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        crate::cost::free(ctx, self.schema.type_name)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(arn) = known_str(props, "event_source_arn") {
            let service = arn.split(':').nth(2).unwrap_or_default();
            if !["dynamodb", "kinesis", "sqs"].contains(&service) {
                issues.push(PropIssue::at(
                    &["event_source_arn"],
                    format!("expected a DynamoDB or Kinesis stream's or an SQS queue's ARN, not {arn:?}"),
                ));
            }
            if service == "dynamodb" && !arn.contains("/stream/") {
                issues.push(PropIssue::at(
                    &["event_source_arn"],
                    "a table's ARN is not its stream's: use the table's stream_arn (and give the table a stream)",
                ));
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        canonicalize(props)
    }

    fn known_attrs(&self, _props: &Props) -> Props {
        Props::new()
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let client = self.aws.lambda(&ctx.region);
        match get(&client, id).await? {
            Some(mapping) if mapping.state() != Some("Deleting") => observe(&mapping).map(Some),
            _ => Ok(None),
        }
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let client = self.aws.lambda(&ctx.region);
        let Some(id) = existing(&client, props).await? else {
            return Ok(None);
        };
        self.read(ctx, &id, props).await
    }

    fn id_from_arn(&self, arn: &str) -> Option<String> {
        crate::arn::parse(arn)
            .filter(|a| a.service == "lambda")
            .and_then(|_| arn.split_once(":event-source-mapping:"))
            .map(|(_, id)| id.to_string())
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.lambda(&ctx.region);
        let what = "creating the mapping while the function's role cannot read the stream yet";
        let client_ref = &client;
        let created = wait::retry_while_busy(ctx, what, PERMISSION_LIMIT, || async move {
            create_mapping(client_ref, props)
                .await
                .map_err(permission_not_seen)
        })
        .await;
        let id = match created {
            Ok(id) => id,
            Err(err) if has_code(&err, &["ResourceConflictException"]) => {
                // A create whose answer was lost, or an interrupted run, made it: take it.
                let Some(id) = existing(&client, props).await? else {
                    return Err(err);
                };
                debug!(
                    mapping = id,
                    "adopting the mapping of this function and stream"
                );
                let found = wait_ready(ctx, &client, &id).await?;
                let before = observe(&found)?.props;
                update_mapping(&client, &id, &before, props).await?;
                id
            }
            Err(err) => return Err(err),
        };
        let mapping = wait_ready(ctx, &client, &id).await?;
        refused_if_disabled(&mapping, props)?;
        observe(&mapping)
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.lambda(&ctx.region);
        wait_ready(ctx, &client, id).await?;
        update_mapping(&client, id, before, after).await?;
        let mapping = wait_ready(ctx, &client, id).await?;
        refused_if_disabled(&mapping, after)?;
        observe(&mapping)
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let client = self.aws.lambda(&ctx.region);
        debug!(mapping = id, "DeleteEventSourceMapping");
        let what = format!("deleting event source mapping {id}");
        let client_ref = &client;
        let deleted = wait::retry_while_busy(ctx, &what, DELETE_LIMIT, || async move {
            client_ref
                .delete_event_source_mapping()
                .uuid(id)
                .send()
                .await
                .classified()
        })
        .await;
        match deleted {
            Err(err) if err.kind == ErrorKind::NotFound => return Ok(()),
            other => {
                other?;
            }
        }
        let what = format!("event source mapping {id} to be deleted");
        wait::until_deleted(
            ctx,
            &what,
            "deleting (Lambda stops reading the stream within a minute)",
            DELETE_LIMIT,
            || async move { Ok(get(client_ref, id).await?.map(|m| state_of(&m).to_string())) },
        )
        .await
    }
}

fn canonicalize(props: &mut Props) -> ResourceResult<()> {
    props.retain(|_, v| !v.is_null());
    if let Some(name) = known_str(props, "function_name").map(function_name) {
        props.insert("function_name".into(), json!(name));
    }
    let stream = known_str(props, "event_source_arn").is_some_and(|a| !a.contains(":sqs:"));
    if stream {
        props
            .entry("starting_position")
            .or_insert_with(|| json!("LATEST"));
        props
            .entry("maximum_retry_attempts")
            .or_insert_with(|| json!(-1));
        props
            .entry("bisect_batch_on_function_error")
            .or_insert_with(|| json!(false));
    }
    let default_batch = if stream { 100 } else { 10 };
    props
        .entry("batch_size")
        .or_insert_with(|| json!(default_batch));
    props
        .entry("maximum_batching_window_in_seconds")
        .or_insert_with(|| json!(0));
    if let Some(Value::Array(filters)) = props.get_mut("filters") {
        for filter in filters.iter_mut().filter(|f| !contains_unknown(f)) {
            if let Some(text) = filter.as_str() {
                *filter = serde_json::from_str(text).map_err(|e| {
                    ResourceError::invalid(format!("filters: {text:?} is not JSON: {e}"))
                })?;
            }
        }
    }
    props.entry("filters").or_insert_with(|| json!([]));
    props.entry("enabled").or_insert_with(|| json!(true));
    reorder(props, ORDER);
    Ok(())
}

/// The function's name (with its qualifier, if any) from a name or an ARN.
fn function_name(name_or_arn: &str) -> String {
    match name_or_arn.split_once(":function:") {
        Some((_, rest)) => rest.to_string(),
        None => name_or_arn.to_string(),
    }
}

/// Lambda refuses a mapping whose function's role it does not yet see allowed to read the
/// stream: a policy attached a moment ago. Waited out as "busy".
fn permission_not_seen(err: ResourceError) -> ResourceError {
    let permissions = err.message.contains("ensure the role can perform")
        || err
            .message
            .contains("execution role does not have permissions");
    if permissions && has_code(&err, &["InvalidParameterValueException"]) {
        ResourceError {
            kind: ErrorKind::InUse,
            ..err
        }
    } else {
        err
    }
}

fn int_of(props: &Props, key: &str) -> Option<i32> {
    props
        .get(key)
        .and_then(Value::as_i64)
        .and_then(|v| i32::try_from(v).ok())
}

fn filter_criteria(props: &Props) -> FilterCriteria {
    let filters = props
        .get("filters")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|f| Filter::builder().pattern(f.to_string()).build())
                .collect()
        })
        .unwrap_or_default();
    FilterCriteria::builder().set_filters(Some(filters)).build()
}

async fn create_mapping(client: &Client, props: &Props) -> ResourceResult<String> {
    let function = known_str(props, "function_name")
        .ok_or_else(|| ResourceError::invalid("the mapping needs a function_name"))?;
    let source = known_str(props, "event_source_arn")
        .ok_or_else(|| ResourceError::invalid("the mapping needs an event_source_arn"))?;
    debug!(function, source, "CreateEventSourceMapping");
    let has_filters = props
        .get("filters")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    let out = client
        .create_event_source_mapping()
        .function_name(function)
        .event_source_arn(source)
        .set_starting_position(known_str(props, "starting_position").map(EventSourcePosition::from))
        .set_batch_size(int_of(props, "batch_size"))
        .set_maximum_batching_window_in_seconds(int_of(props, "maximum_batching_window_in_seconds"))
        .set_maximum_retry_attempts(int_of(props, "maximum_retry_attempts"))
        .set_bisect_batch_on_function_error(bool_of(props, "bisect_batch_on_function_error"))
        .set_filter_criteria(has_filters.then(|| filter_criteria(props)))
        .enabled(bool_of(props, "enabled").unwrap_or(true))
        .send()
        .await
        .classified()?;
    out.uuid()
        .map(str::to_string)
        .ok_or_else(|| ResourceError::other("CreateEventSourceMapping returned no UUID"))
}

async fn update_mapping(
    client: &Client,
    id: &str,
    before: &Props,
    after: &Props,
) -> ResourceResult<()> {
    let changed = |key: &str| before.get(key) != after.get(key);
    let keys = [
        "function_name",
        "batch_size",
        "maximum_batching_window_in_seconds",
        "maximum_retry_attempts",
        "bisect_batch_on_function_error",
        "filters",
        "enabled",
    ];
    if !keys.iter().any(|k| changed(k)) {
        return Ok(());
    }
    debug!(mapping = id, "UpdateEventSourceMapping");
    let mut request = client
        .update_event_source_mapping()
        .uuid(id)
        .set_batch_size(int_of(after, "batch_size"))
        .set_maximum_batching_window_in_seconds(int_of(after, "maximum_batching_window_in_seconds"))
        .set_enabled(bool_of(after, "enabled"));
    if changed("function_name") {
        request = request.set_function_name(known_str(after, "function_name").map(str::to_string));
    }
    if !known_str(after, "event_source_arn").is_some_and(|a| a.contains(":sqs:")) {
        request = request
            .set_maximum_retry_attempts(int_of(after, "maximum_retry_attempts"))
            .set_bisect_batch_on_function_error(bool_of(after, "bisect_batch_on_function_error"));
    }
    if changed("filters") {
        // An empty list of filters removes them.
        request = request.filter_criteria(filter_criteria(after));
    }
    request.send().await.classified().map(|_| ())
}

/// The mapping of this function and stream that already exists, if any.
async fn existing(client: &Client, props: &Props) -> ResourceResult<Option<String>> {
    let (Some(function), Some(source)) = (
        known_str(props, "function_name"),
        known_str(props, "event_source_arn"),
    ) else {
        return Ok(None);
    };
    let answer = client
        .list_event_source_mappings()
        .function_name(function)
        .event_source_arn(source)
        .send()
        .await
        .classified();
    let out = match answer {
        Ok(out) => out,
        // The function is gone: so is anything mapped to it.
        Err(err) if err.kind == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    Ok(out
        .event_source_mappings()
        .iter()
        .filter(|m| m.state() != Some("Deleting"))
        .find(|m| m.event_source_arn() == Some(source))
        .and_then(|m| m.uuid())
        .map(str::to_string))
}

async fn get(client: &Client, id: &str) -> ResourceResult<Option<GetEventSourceMappingOutput>> {
    match client
        .get_event_source_mapping()
        .uuid(id)
        .send()
        .await
        .classified()
    {
        Ok(out) => Ok(Some(out)),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Lambda disables a mapping it cannot run (the function or the stream gone, the role
/// without permission) and says why: an error when the stack asked for it enabled.
fn refused_if_disabled(mapping: &GetEventSourceMappingOutput, props: &Props) -> ResourceResult<()> {
    let wanted = bool_of(props, "enabled").unwrap_or(true);
    if wanted && state_of(mapping) == "Disabled" {
        return Err(ResourceError::other(format!(
            "Lambda disabled the event source mapping: {}",
            mapping
                .state_transition_reason()
                .unwrap_or("it gave no reason")
        )));
    }
    Ok(())
}

fn state_of(mapping: &GetEventSourceMappingOutput) -> &str {
    mapping.state().unwrap_or("unknown")
}

/// Waits until the mapping is Enabled or Disabled (not Creating, Updating, Enabling, …).
async fn wait_ready(
    ctx: &OpContext,
    client: &Client,
    id: &str,
) -> ResourceResult<GetEventSourceMappingOutput> {
    let what = format!("event source mapping {id} to be ready");
    let since = tokio::time::Instant::now();
    wait::until(ctx, &what, READY_LIMIT, || async move {
        match get(client, id).await? {
            Some(m) if matches!(state_of(&m), "Enabled" | "Disabled") => Ok(Poll::Ready(m)),
            Some(m) if state_of(&m) == "Deleting" => {
                Err(vanished(&format!("event source mapping {id}")))
            }
            Some(m) => Ok(Poll::Pending(state_of(&m).to_string())),
            None => {
                wait::not_visible_yet(since, || vanished(&format!("event source mapping {id}")))
            }
        }
    })
    .await
}

fn observe(mapping: &GetEventSourceMappingOutput) -> ResourceResult<Observed> {
    let id = mapping
        .uuid()
        .ok_or_else(|| ResourceError::other("an event source mapping without a UUID"))?;
    let mut props = Props::new();
    if let Some(function) = mapping.function_arn() {
        props.insert("function_name".into(), json!(function_name(function)));
    }
    if let Some(source) = mapping.event_source_arn() {
        props.insert("event_source_arn".into(), json!(source));
    }
    if let Some(position) = mapping.starting_position() {
        props.insert("starting_position".into(), json!(position.as_str()));
    }
    let mut put_int = |key: &str, value: Option<i32>| {
        if let Some(v) = value {
            props.insert(key.into(), json!(v));
        }
    };
    put_int("batch_size", mapping.batch_size());
    put_int(
        "maximum_batching_window_in_seconds",
        mapping.maximum_batching_window_in_seconds(),
    );
    put_int("maximum_retry_attempts", mapping.maximum_retry_attempts());
    if let Some(bisect) = mapping.bisect_batch_on_function_error() {
        props.insert("bisect_batch_on_function_error".into(), json!(bisect));
    }
    let filters: Vec<Value> = mapping
        .filter_criteria()
        .map(|c| c.filters())
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.pattern())
        .map(|p| serde_json::from_str(p).unwrap_or_else(|_| json!(p)))
        .collect();
    props.insert("filters".into(), json!(filters));
    let state = state_of(mapping);
    props.insert(
        "enabled".into(),
        json!(!matches!(state, "Disabled" | "Disabling")),
    );
    canonicalize(&mut props)?;
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(id));
    if let Some(arn) = mapping.event_source_mapping_arn() {
        attrs.insert("arn".into(), json!(arn));
    }
    if let Some(function) = mapping.function_arn() {
        attrs.insert("function_arn".into(), json!(function));
    }
    attrs.insert("state".into(), json!(state));
    Ok(Observed {
        id: id.to_string(),
        props,
        attrs,
    })
}
