//! The one boundary between the core and a cloud API.
//!
//! A resource type is the only code that knows a service. The core hands it canonical,
//! fully resolved properties (plain JSON) and gets back what the service reports, mapped
//! into the same canonical shape, so the planner can diff the two without knowing either.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cost::{CostContext, CostLine};
use crate::schema::TypeSchema;
use crate::teardown::{TagFilter, TaggedResource};
use crate::value::{PathSeg, Props};

/// What a service reports about one resource, in canonical form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The physical id the type reads, updates and deletes by (a table name, `sg-…`).
    pub id: String,
    /// Properties in the same canonical shape `normalize` gives desired properties.
    pub props: Props,
    /// Attributes others reference (`arn`, `stream_arn`, …).
    pub attrs: Props,
}

/// How an operation failed, so the engine knows whether to retry, wait or stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// Throttled or a transient service error: retry with backoff.
    Retryable,
    /// The thing does not exist.
    NotFound,
    /// The thing is busy or referenced (ResourceInUse, DependencyViolation): wait and retry.
    InUse,
    /// The service rejected the request as invalid: do not retry.
    Invalid,
    /// The service (or emulator) does not implement the operation.
    Unsupported,
    /// Access denied or missing credentials.
    Auth,
    /// A wait ran past its timeout.
    Timeout,
    /// Anything else.
    Other,
}

/// A failed operation: what kind, the service's error code, and its message.
#[derive(Clone, Debug, thiserror::Error, Serialize, Deserialize)]
#[error("{}{message}", code.as_ref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct ResourceError {
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub message: String,
}

impl ResourceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ResourceError {
        ResourceError {
            kind,
            code: None,
            message: message.into(),
        }
    }
    pub fn with_code(mut self, code: impl Into<String>) -> ResourceError {
        self.code = Some(code.into());
        self
    }
    pub fn invalid(message: impl Into<String>) -> ResourceError {
        ResourceError::new(ErrorKind::Invalid, message)
    }
    pub fn other(message: impl Into<String>) -> ResourceError {
        ResourceError::new(ErrorKind::Other, message)
    }
    pub fn timeout(waited: Duration, what: &str) -> ResourceError {
        ResourceError::new(
            ErrorKind::Timeout,
            format!(
                "timed out after {} waiting for {what}",
                humantime::format_duration(Duration::from_secs(waited.as_secs()))
            ),
        )
    }
}

pub type ResourceResult<T> = Result<T, ResourceError>;

/// Receives progress from long operations ("waiting for table ACTIVE").
pub trait Progress: Send + Sync {
    fn status(&self, message: &str);
}

/// A progress sink that drops everything (plan-time reads, tests).
pub struct NoProgress;
impl Progress for NoProgress {
    fn status(&self, _message: &str) {}
}

/// Per-operation time limits; a stack can override them in `lifecycle.timeouts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Timeouts {
    pub create: Option<Duration>,
    pub update: Option<Duration>,
    pub delete: Option<Duration>,
}

/// Everything an operation needs besides its properties.
#[derive(Clone)]
pub struct OpContext {
    /// The region the resource lives in.
    pub region: String,
    /// The logical name in the stack (`users`).
    pub name: String,
    /// The stack and workspace the resource belongs to (empty outside an environment, e.g.
    /// for `sweep`): with `name`, what marks a resource that takes no tags as this stack's.
    pub stack: String,
    pub workspace: String,
    /// For a create: a token unique to this create, the same when a create that was never
    /// seen answered is sent again by a later run. Types whose API takes an idempotency token
    /// (CloudFront's CallerReference, ACM's IdempotencyToken) send it, so AWS recognises the
    /// repeat instead of making a second resource. 32 hexadecimal digits.
    pub create_token: Option<String>,
    /// When the current operation must give up waiting, if the stack set a limit.
    pub deadline: Option<Instant>,
    /// When the operation started: a type's own default limit counts from here, however
    /// often it is asked for, so a loop of waits shares one budget.
    pub started: Instant,
    pub progress: Arc<dyn Progress>,
    /// `false` under `destroy --no-wait`: a delete AWS carries on with by itself (a cache
    /// cluster stays `deleting` for minutes) may return once AWS accepted it, after calling
    /// [`OpContext::deletion_pending`].
    pub wait_for_deletion: bool,
    /// The stack file's folder: relative paths in properties (a site folder, a function's
    /// code) are relative to it, as in `normalize`.
    pub base_dir: PathBuf,
    pending: Arc<std::sync::Mutex<Option<String>>>,
    notices: Arc<std::sync::Mutex<Vec<String>>>,
}

impl OpContext {
    pub fn new(region: impl Into<String>, name: impl Into<String>) -> OpContext {
        OpContext {
            region: region.into(),
            name: name.into(),
            stack: String::new(),
            workspace: String::new(),
            create_token: None,
            deadline: None,
            started: Instant::now(),
            progress: Arc::new(NoProgress),
            wait_for_deletion: true,
            base_dir: PathBuf::new(),
            pending: Arc::default(),
            notices: Arc::default(),
        }
    }
    pub fn without_waiting_for_deletion(mut self) -> OpContext {
        self.wait_for_deletion = false;
        self
    }
    /// Says the delete was accepted but AWS is still carrying it out (`reason` says what is
    /// going on); the engine records the resource as pending deletion instead of gone.
    pub fn deletion_pending(&self, reason: impl Into<String>) {
        if let Ok(mut slot) = self.pending.lock() {
            *slot = Some(reason.into());
        }
    }
    /// Something the person running plinth should read once the operation is done (an
    /// invalidation's id, DNS records to create); the engine prints it with the result.
    pub fn notice(&self, message: impl Into<String>) {
        if let Ok(mut notices) = self.notices.lock() {
            notices.push(message.into());
        }
    }
    /// What [`OpContext::notice`] collected, in order.
    pub fn notices(&self) -> Vec<String> {
        self.notices.lock().map(|n| n.clone()).unwrap_or_default()
    }
    /// What [`OpContext::deletion_pending`] reported, if anything.
    pub fn pending_deletion(&self) -> Option<String> {
        self.pending.lock().ok().and_then(|slot| slot.clone())
    }
    pub fn with_create_token(mut self, token: String) -> OpContext {
        self.create_token = Some(token);
        self
    }
    /// The stack and workspace the resource belongs to.
    pub fn with_environment(mut self, stack: &str, workspace: &str) -> OpContext {
        self.stack = stack.to_string();
        self.workspace = workspace.to_string();
        self
    }
    pub fn with_base_dir(mut self, base_dir: PathBuf) -> OpContext {
        self.base_dir = base_dir;
        self
    }
    pub fn with_deadline(mut self, limit: Option<Duration>) -> OpContext {
        self.deadline = limit.map(|d| self.started + d);
        self
    }
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> OpContext {
        self.progress = progress;
        self
    }
    /// This context with its deadline fixed, so several calls share one budget: the stack's
    /// timeout, or `default` from the start of the operation.
    pub fn with_default_deadline(&self, default: Duration) -> OpContext {
        let mut ctx = self.clone();
        ctx.deadline = Some(self.deadline_or(default));
        ctx
    }
    /// The deadline: the stack's, or `default` from the start of the operation. Asking again
    /// gives the same answer.
    pub fn deadline_or(&self, default: Duration) -> Instant {
        self.deadline.unwrap_or(self.started + default)
    }
}

/// What `normalize` may need from outside the properties.
#[derive(Clone, Debug, Default)]
pub struct NormalizeContext {
    /// The folder of the stack file, for properties naming files (`items_file`).
    pub base_dir: PathBuf,
}

/// A semantic problem in a resource's properties, located by its path for the message.
#[derive(Clone, Debug, PartialEq)]
pub struct PropIssue {
    pub path: Vec<PathSeg>,
    pub message: String,
}

impl PropIssue {
    pub fn at(path: &[&str], message: impl Into<String>) -> PropIssue {
        PropIssue {
            path: path.iter().map(|s| PathSeg::Key(s.to_string())).collect(),
            message: message.into(),
        }
    }
}

/// A resource another resource refers to, for [`ResourceType::lint`]: through which
/// property, and what that resource is (its properties canonical, unknowns unresolved).
#[derive(Clone, Debug)]
pub struct Linked {
    pub prop: String,
    /// Where in the properties the reference sits (`default_behavior.lambda_functions[0].arn`).
    pub path: Vec<PathSeg>,
    pub resource: String,
    pub type_name: String,
    pub props: Props,
}

/// One AWS (or other service) resource type. Implementations live in their own crate,
/// one type per file, and are registered in one list.
#[async_trait]
pub trait ResourceType: Send + Sync {
    fn schema(&self) -> &TypeSchema;

    /// Semantic checks the schema's shapes cannot express (capacity required with
    /// provisioned billing, …). Values may still be unknown here; skip those.
    fn check(&self, _props: &Props) -> Vec<PropIssue> {
        Vec::new()
    }

    /// Warnings (not errors) about a resource seen with what it refers to: a cache whose
    /// security group admits its port from anywhere. Shown by validate, plan and apply.
    fn lint(&self, _props: &Props, _linked: &[Linked]) -> Vec<PropIssue> {
        Vec::new()
    }

    /// Errors about a resource seen with what it refers to (a viewer-request Lambda@Edge
    /// function with more memory than CloudFront allows). Reported before any call.
    fn check_linked(&self, _props: &Props, _linked: &[Linked]) -> Vec<PropIssue> {
        Vec::new()
    }

    /// The region AWS requires for a resource with these properties, whatever the stack's
    /// (`None`: the stack's or the resource's own `region`). Values may still be unknown.
    fn pinned_region(&self, _props: &Props) -> Option<&'static str> {
        None
    }

    /// Regions besides its own where the resource keeps tagged copies (a global table's
    /// replicas): the teardown check searches them too.
    fn other_regions(&self, _props: &Props) -> Vec<String> {
        Vec::new()
    }

    /// Brings resolved desired properties into canonical form: defaults AWS would apply
    /// filled in, lists that are sets sorted, shorthands expanded. `read` must return the
    /// same shape, so that an unchanged resource diffs as equal.
    fn normalize(&self, _props: &mut Props, _ctx: &NormalizeContext) -> ResourceResult<()> {
        Ok(())
    }

    /// Values only AWS can give, looked up when planning so the plan shows them and apply
    /// uses exactly them (an AMI an SSM public parameter names; a hosted zone found by name).
    /// `current` holds the resource's properties as read now (`None` before it exists), so a
    /// type can keep what the resource already has. Returns notes for the plan to show.
    /// Values may still be unknown here; skip those.
    async fn resolve(
        &self,
        _ctx: &OpContext,
        _desired: &mut Props,
        _current: Option<&Props>,
    ) -> ResourceResult<Vec<String>> {
        Ok(Vec::new())
    }

    /// Files and folders, relative to the stack file, that applying these properties reads
    /// (a function's code, a site's folder): a saved plan fingerprints them, and applying it
    /// refuses if they changed since.
    fn disk_inputs(&self, _props: &Props) -> Vec<String> {
        Vec::new()
    }

    /// Attributes known from desired properties before the resource exists (a table's
    /// `name`), so plans show them instead of "(known after apply)".
    fn known_attrs(&self, _props: &Props) -> Props {
        Props::new()
    }

    /// What running a resource with these canonical properties in `ctx.region` costs, by
    /// line (nodes, capacity, requests, storage), from the price table and the usage
    /// assumptions in `ctx`. A price missing from the table is a line that says so, never an
    /// error. The default: nothing is billed.
    fn cost(&self, _props: &Props, _ctx: &CostContext) -> Vec<CostLine> {
        Vec::new()
    }

    /// What changing `before` into `after` in place will do that the diff does not show (a TTL
    /// move DynamoDB spreads over two applies an hour apart), for the plan to say.
    fn change_notes(&self, _before: &Props, _after: &Props) -> Vec<String> {
        Vec::new()
    }

    /// Why changing `before` into `after` needs a new resource; empty when it can be done in
    /// place. The default names each changed property the schema marks `Replace`.
    fn replace_reasons(&self, before: &Props, after: &Props) -> Vec<String> {
        self.schema().replaced_properties(before, after)
    }

    /// The current state of the resource with this id, `None` when it no longer exists.
    /// `prior` holds the properties last applied (null on import).
    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>>;

    /// How many resources [`ResourceType::read_batch`] reads in one call; 1 (the default)
    /// means the type reads one at a time.
    fn read_batch_size(&self) -> usize {
        1
    }

    /// Reads several resources of this type in one region at once, where the API allows
    /// (a plan then costs fewer calls than resources). Returns one answer per item, in order.
    async fn read_batch(
        &self,
        ctx: &OpContext,
        items: &[(String, Props)],
    ) -> ResourceResult<Vec<Option<Observed>>> {
        let mut out = Vec::with_capacity(items.len());
        for (id, prior) in items {
            out.push(self.read(ctx, id, prior).await?);
        }
        Ok(out)
    }

    /// Finds an existing resource these desired properties identify (by name and the
    /// `plinth:*` tags), so a create that was interrupted before its result was recorded
    /// is adopted instead of duplicated. `None` when there is nothing to adopt.
    async fn find(&self, _ctx: &OpContext, _props: &Props) -> ResourceResult<Option<Observed>> {
        Ok(None)
    }

    /// The physical id of this type's resource that an ARN names (as the Resource Groups
    /// Tagging API reports it), so `sweep` can delete what no state file knows and a
    /// teardown check can tell a state's resource when it sees it. `None`: the ARN is not
    /// this type's, or the type cannot be swept.
    fn id_from_arn(&self, _arn: &str) -> Option<String> {
        None
    }

    /// Resources of this type carrying every tag in `filters`, for a type the Resource
    /// Groups Tagging API does not list (IAM roles), so teardown checks and `sweep` see them
    /// too. Asked once per region searched. The default: none (the tagging API lists them).
    async fn find_tagged(
        &self,
        _ctx: &OpContext,
        _filters: &[TagFilter],
    ) -> ResourceResult<Vec<TaggedResource>> {
        Ok(Vec::new())
    }

    /// Creates the resource and waits until it is usable.
    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed>;

    /// Changes the resource in place from `before` (as read) to `after` (desired).
    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed>;

    /// Deletes the resource and, unless the type says otherwise, waits until it is gone.
    async fn delete(&self, ctx: &OpContext, id: &str, props: &Props) -> ResourceResult<()>;

    /// For lookups (`TypeKind::Lookup`): reads what the properties select.
    async fn lookup(&self, _ctx: &OpContext, _props: &Props) -> ResourceResult<Observed> {
        Err(ResourceError::new(
            ErrorKind::Unsupported,
            format!("{} is not a lookup", self.schema().type_name),
        ))
    }
}

/// All resource types, by type name.
#[derive(Clone, Default)]
pub struct Registry {
    types: BTreeMap<&'static str, Arc<dyn ResourceType>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }
    pub fn register(&mut self, resource_type: Arc<dyn ResourceType>) {
        self.types
            .insert(resource_type.schema().type_name, resource_type);
    }
    pub fn get(&self, type_name: &str) -> Option<&Arc<dyn ResourceType>> {
        self.types.get(type_name)
    }
    pub fn schema(&self, type_name: &str) -> Option<&TypeSchema> {
        self.types.get(type_name).map(|t| t.schema())
    }
    pub fn type_names(&self) -> Vec<&'static str> {
        self.types.keys().copied().collect()
    }
    pub fn schemas(&self) -> Vec<&TypeSchema> {
        self.types.values().map(|t| t.schema()).collect()
    }
    /// The type and physical id an ARN names, when some type recognises it.
    pub fn resolve_arn(&self, arn: &str) -> Option<(&'static str, String)> {
        self.types
            .iter()
            .find_map(|(name, t)| t.id_from_arn(arn).map(|id| (*name, id)))
    }
}

/// Makes a JSON value out of anything serialisable, for attributes built in code.
pub fn to_value<T: Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
