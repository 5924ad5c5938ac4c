//! Test support: a fake cloud with two resource types, stack loading from strings, and a
//! harness that plans and applies against a temporary state folder.
//!
//! The fake records every call with its start and end instant, so tests can assert ordering
//! and overlap; latency and failures are configured per logical resource name.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use crate::engine::{self, ApplyReport, ApplyRequest, Outcome, Reporter, StepKind, StepResult};
use crate::graph::DepGraph;
use crate::plan::{make_plan, Mode, Plan, PlanError, PlanRequest};
use crate::resource::{
    ErrorKind, Linked, Observed, OpContext, PropIssue, Registry, ResourceError, ResourceResult,
    ResourceType,
};
use crate::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use crate::stack::load::{load_str, LoadOptions};
use crate::stack::Stack;
use crate::state::store::{LockedState, StateFiles};
use crate::state::{ResourceState, State, Status};
use crate::value::{self, PathSeg, Props};

/// Locks a mutex, ignoring poisoning (a failed assertion in one task must not hide others).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The operations the fake records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Read,
    Find,
    Create,
    Update,
    Delete,
    Lookup,
    /// One call reading several resources (`read_batch`).
    ReadBatch,
}

/// One call to the fake, with when it started and ended.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub op: Op,
    pub name: String,
    pub region: String,
    /// The create token the call was given, if any.
    pub token: Option<String>,
    pub start: Instant,
    pub end: Instant,
}

/// One object the fake "cloud" holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Object {
    pub type_name: String,
    /// The logical name of the resource that created it.
    pub name: String,
    pub props: Props,
    pub attrs: Props,
}

/// The shared in-memory service behind every fake type.
pub(crate) struct FakeCloud {
    objects: Mutex<BTreeMap<String, Object>>,
    next_id: AtomicUsize,
    default_latency: Mutex<Duration>,
    latency: Mutex<HashMap<String, Duration>>,
    op_latency: Mutex<HashMap<(Op, String), Duration>>,
    failures: Mutex<HashMap<(Op, String), ResourceError>>,
    /// Objects reads do not see yet (eventual consistency), with how many reads to miss.
    unseen: Mutex<HashMap<String, usize>>,
    log: Mutex<Vec<Call>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// How many resources one `read_batch` call reads (1: the type reads one at a time).
    batch_size: AtomicUsize,
    /// What the image `latest` names now (as an SSM parameter names an AMI).
    latest_image: Mutex<String>,
    /// When the cloud was made: call instants are reported relative to it.
    pub epoch: Instant,
}

impl FakeCloud {
    pub fn new() -> Arc<FakeCloud> {
        Arc::new(FakeCloud {
            objects: Mutex::new(BTreeMap::new()),
            next_id: AtomicUsize::new(1),
            default_latency: Mutex::new(Duration::ZERO),
            latency: Mutex::new(HashMap::new()),
            op_latency: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            unseen: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            batch_size: AtomicUsize::new(1),
            latest_image: Mutex::new("img-1".into()),
            epoch: Instant::now(),
        })
    }

    /// Makes `image: latest` name `image` from now on.
    pub fn set_latest_image(&self, image: &str) {
        *lock(&self.latest_image) = image.to_string();
    }

    /// Every call to any resource takes this long unless configured otherwise.
    pub fn set_default_latency(&self, d: Duration) {
        *lock(&self.default_latency) = d;
    }
    /// Every call for the resource `name` takes this long.
    pub fn set_latency(&self, name: &str, d: Duration) {
        lock(&self.latency).insert(name.to_string(), d);
    }
    /// `op` on `name` takes this long (overrides the per-name latency).
    pub fn set_op_latency(&self, op: Op, name: &str, d: Duration) {
        lock(&self.op_latency).insert((op, name.to_string()), d);
    }
    /// `op` on `name` fails (after its latency) with `error`.
    pub fn fail(&self, op: Op, name: &str, error: ResourceError) {
        lock(&self.failures).insert((op, name.to_string()), error);
    }

    /// Lets the fake types read up to `n` resources in one call.
    pub fn set_batch_size(&self, n: usize) {
        self.batch_size.store(n, Ordering::SeqCst);
    }

    /// The next `reads` reads of object `id` do not find it, as AWS's reads right after a
    /// create may not.
    pub fn unseen_for(&self, id: &str, reads: usize) {
        lock(&self.unseen).insert(id.to_string(), reads);
    }

    /// Whether a read misses `id` now (and counts the miss).
    fn misses(&self, id: &str) -> bool {
        let mut unseen = lock(&self.unseen);
        match unseen.get_mut(id) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    /// Lifts every injected failure.
    pub fn clear_failures(&self) {
        lock(&self.failures).clear();
    }

    fn latency_for(&self, op: Op, name: &str) -> Duration {
        if let Some(d) = lock(&self.op_latency).get(&(op, name.to_string())) {
            return *d;
        }
        if let Some(d) = lock(&self.latency).get(name) {
            return *d;
        }
        *lock(&self.default_latency)
    }

    /// Wraps one call: counts it in flight, sleeps its latency, applies an injected failure
    /// or runs `body`, and logs it.
    async fn call<T>(
        &self,
        op: Op,
        ctx: &OpContext,
        body: impl FnOnce(&FakeCloud) -> ResourceResult<T>,
    ) -> ResourceResult<T> {
        let name = ctx.name.as_str();
        let start = Instant::now();
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let latency = self.latency_for(op, name);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let injected = lock(&self.failures).get(&(op, name.to_string())).cloned();
        let result = match injected {
            Some(e) => Err(e),
            None => body(self),
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        lock(&self.log).push(Call {
            op,
            name: name.to_string(),
            region: ctx.region.clone(),
            token: ctx.create_token.clone(),
            start,
            end: Instant::now(),
        });
        result
    }

    /// All calls so far, in the order they ended.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.log).clone()
    }
    /// Calls of one kind, in the order they ended.
    pub fn calls_of(&self, op: Op) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.op == op).collect()
    }
    /// The single call `op` on `name`; panics when there is not exactly one.
    pub fn call_of(&self, op: Op, name: &str) -> Call {
        let found: Vec<Call> = self
            .calls()
            .into_iter()
            .filter(|c| c.op == op && c.name == name)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected exactly one {op:?} of `{name}`, got {found:?}"
        );
        found[0].clone()
    }
    /// Names that saw `op`, in the order the calls ended.
    pub fn names_of(&self, op: Op) -> Vec<String> {
        self.calls_of(op).into_iter().map(|c| c.name).collect()
    }
    /// The most calls that were ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
    /// Milliseconds since the cloud was made (for readable failure messages).
    pub fn ms(&self, at: Instant) -> u128 {
        at.duration_since(self.epoch).as_millis()
    }
    pub fn clear_log(&self) {
        lock(&self.log).clear();
        self.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// Everything that exists, by id.
    pub fn objects(&self) -> BTreeMap<String, Object> {
        lock(&self.objects).clone()
    }
    /// The one object created for the logical name `name`.
    pub fn object_named(&self, name: &str) -> Option<(String, Object)> {
        lock(&self.objects)
            .iter()
            .find(|(_, o)| o.name == name)
            .map(|(id, o)| (id.clone(), o.clone()))
    }
    /// Puts an object in the cloud as if something had created it; returns its id.
    pub fn insert(&self, type_name: &str, name: &str, props: Props) -> String {
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        let id = format!("thing-{n}");
        let attrs = thing_attrs(&id, &props);
        lock(&self.objects).insert(
            id.clone(),
            Object {
                type_name: type_name.to_string(),
                name: name.to_string(),
                props,
                attrs,
            },
        );
        id
    }
    /// Changes an object behind plinth's back (drift).
    pub fn tamper(&self, id: &str, key: &str, value: Value) {
        if let Some(o) = lock(&self.objects).get_mut(id) {
            o.props.insert(key.to_string(), value);
        }
    }
    pub fn remove(&self, id: &str) {
        lock(&self.objects).remove(id);
    }
}

fn thing_attrs(id: &str, props: &Props) -> Props {
    let mut attrs = Props::new();
    attrs.insert("id".into(), json!(id));
    attrs.insert("arn".into(), json!(format!("arn:fake:thing/{id}")));
    if let Some(name) = props.get("name") {
        attrs.insert("name".into(), name.clone());
    }
    attrs
}

/// The schema of `test.thing`.
pub(crate) fn thing_schema() -> TypeSchema {
    TypeSchema {
        type_name: "test.thing",
        description: "a fake managed resource",
        kind: TypeKind::Managed,
        taggable: true,
        properties: vec![
            Prop::new("name", Shape::String)
                .required()
                .replaces()
                .unique(),
            Prop::new("zone", Shape::String).replaces(),
            // Like a certificate a distribution serves: what it names cannot be deleted
            // while it does.
            Prop::new("holder", Shape::String).holds_referent(),
            Prop::new("size", Shape::int_range(0, 1000)).known_as(&["size_in_gb"]),
            Prop::new("mode", Shape::Enum(&["fast", "slow", "fixed"])),
            Prop::new("peer", Shape::String),
            Prop::new("subnets", Shape::list(Shape::String)),
            Prop::new(
                "rules",
                Shape::list(Shape::Object(vec![
                    Prop::new("peer", Shape::String).required(),
                    Prop::new("port", Shape::int_range(1, 65535)),
                ])),
            )
            .deferrable(),
            Prop::new("secret", Shape::String).sensitive(),
            Prop::new("tags", Shape::map(Shape::String)),
            Prop::new("global", Shape::Bool),
            // `image: latest` is resolved when planning into `image_id`, as an AMI is.
            Prop::new("image", Shape::String),
            Prop::new("image_id", Shape::String).computed().replaces(),
            Prop::new("script", Shape::String).shown_as_hash(),
            Prop::new(
                "edges",
                Shape::list(Shape::Object(vec![
                    Prop::new("peer", Shape::String)
                        .required()
                        .pins_referent_region("us-east-1"),
                    Prop::new("limit", Shape::int_range(0, 1000)),
                ])),
            ),
        ],
        attributes: vec![
            Attr::new("id", Shape::String, "the physical id"),
            Attr::new("arn", Shape::String, "the ARN"),
            Attr::new("name", Shape::String, "the name"),
        ],
    }
}

/// The schema of `test.network`, a lookup with a list attribute.
pub(crate) fn network_schema() -> TypeSchema {
    TypeSchema {
        type_name: "test.network",
        description: "a fake lookup",
        kind: TypeKind::Lookup,
        taggable: false,
        properties: vec![Prop::new("name", Shape::String)],
        attributes: vec![
            Attr::new("id", Shape::String, "the network id"),
            Attr::new("cidr", Shape::String, "the CIDR block"),
            Attr::new("subnet_ids", Shape::list(Shape::String), "subnets"),
        ],
    }
}

/// A resource type backed by a [`FakeCloud`].
pub(crate) struct FakeType {
    schema: TypeSchema,
    cloud: Arc<FakeCloud>,
}

impl FakeType {
    pub fn new(schema: TypeSchema, cloud: Arc<FakeCloud>) -> FakeType {
        FakeType { schema, cloud }
    }
}

#[async_trait]
impl ResourceType for FakeType {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        if value::str_of(props, "mode") == Some("fixed") && props.contains_key("size") {
            return vec![PropIssue::at(
                &["size"],
                "cannot be set when `mode` is fixed",
            )];
        }
        Vec::new()
    }

    /// `image: latest` is what the cloud names latest now, unless the thing already runs
    /// an image it was given as latest (as `ec2.instance` keeps its AMI).
    async fn resolve(
        &self,
        _ctx: &OpContext,
        desired: &mut Props,
        current: Option<&Props>,
    ) -> ResourceResult<Vec<String>> {
        if value::str_of(desired, "image") != Some("latest") {
            return Ok(Vec::new());
        }
        let latest = lock(&self.cloud.latest_image).clone();
        let running = current
            .filter(|c| value::str_of(c, "image") == Some("latest"))
            .and_then(|c| value::str_of(c, "image_id"))
            .map(str::to_string);
        let image = running.clone().unwrap_or_else(|| latest.clone());
        desired.insert("image_id".into(), Value::String(image.clone()));
        Ok(match running {
            Some(running) if running != latest => {
                vec![format!(
                    "latest now names {latest}; the thing keeps {running}"
                )]
            }
            Some(_) => Vec::new(),
            None => vec![format!("latest is {latest}")],
        })
    }

    /// A thing with `global: true` lives in us-east-1 (like IAM or CloudFront).
    fn pinned_region(&self, props: &Props) -> Option<&'static str> {
        (value::bool_of(props, "global") == Some(true)).then_some("us-east-1")
    }

    /// An edge's peer may not be bigger than the edge's `limit` (like Lambda@Edge limits).
    fn check_linked(&self, props: &Props, linked: &[Linked]) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        for l in linked {
            let [PathSeg::Key(edges), PathSeg::Index(i), PathSeg::Key(_)] = l.path.as_slice()
            else {
                continue;
            };
            let limit = props
                .get(edges.as_str())
                .and_then(|e| e.get(*i))
                .and_then(|e| e.get("limit"))
                .and_then(Value::as_i64);
            let size = value::i64_of(&l.props, "size");
            if let (Some(limit), Some(size)) = (limit, size) {
                if size > limit {
                    issues.push(PropIssue {
                        path: l.path.clone(),
                        message: format!("`{}` has size {size}, more than {limit}", l.resource),
                    });
                }
            }
        }
        issues
    }

    fn read_batch_size(&self) -> usize {
        self.cloud.batch_size.load(Ordering::SeqCst)
    }

    /// `arn:fake:thing/<id>` names a thing (as its `arn` attribute says).
    fn id_from_arn(&self, arn: &str) -> Option<String> {
        if self.schema.kind != TypeKind::Managed {
            return None;
        }
        arn.strip_prefix("arn:fake:thing/").map(str::to_string)
    }

    async fn read_batch(
        &self,
        ctx: &OpContext,
        items: &[(String, Props)],
    ) -> ResourceResult<Vec<Option<Observed>>> {
        let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        self.cloud
            .call(Op::ReadBatch, ctx, move |c| {
                let objects = lock(&c.objects);
                Ok(ids
                    .iter()
                    .map(|id| {
                        objects.get(id).map(|o| Observed {
                            id: id.clone(),
                            props: o.props.clone(),
                            attrs: o.attrs.clone(),
                        })
                    })
                    .collect())
            })
            .await
    }

    fn known_attrs(&self, props: &Props) -> Props {
        let mut out = Props::new();
        if self.schema.kind == TypeKind::Managed {
            if let Some(name) = props.get("name").filter(|v| v.is_string()) {
                out.insert("name".into(), name.clone());
            }
        }
        out
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let id = id.to_string();
        self.cloud
            .call(Op::Read, ctx, |c| {
                if c.misses(&id) {
                    return Ok(None);
                }
                Ok(lock(&c.objects).get(&id).map(|o| Observed {
                    id: id.clone(),
                    props: o.props.clone(),
                    attrs: o.attrs.clone(),
                }))
            })
            .await
    }

    async fn find(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Option<Observed>> {
        let type_name = self.schema.type_name;
        let wanted = props.get("name").cloned();
        self.cloud
            .call(Op::Find, ctx, |c| {
                Ok(lock(&c.objects)
                    .iter()
                    .find(|(_, o)| {
                        o.type_name == type_name && o.props.get("name") == wanted.as_ref()
                    })
                    .map(|(id, o)| Observed {
                        id: id.clone(),
                        props: o.props.clone(),
                        attrs: o.attrs.clone(),
                    }))
            })
            .await
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        ctx.progress
            .status(&format!("waiting for `{}` to be ready", ctx.name));
        let type_name = self.schema.type_name;
        let name = ctx.name.clone();
        let props = props.clone();
        self.cloud
            .call(Op::Create, ctx, move |c| {
                if value::contains_unknown(&Value::Object(props.clone())) {
                    return Err(ResourceError::invalid("create got an unknown value"));
                }
                let id = c.insert(type_name, &name, props.clone());
                let attrs = lock(&c.objects)[&id].attrs.clone();
                Ok(Observed { id, props, attrs })
            })
            .await
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        _before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let id = id.to_string();
        let after = after.clone();
        self.cloud
            .call(Op::Update, ctx, move |c| {
                let mut objects = lock(&c.objects);
                let Some(o) = objects.get_mut(&id) else {
                    return Err(ResourceError::new(
                        ErrorKind::NotFound,
                        format!("{id} does not exist"),
                    ));
                };
                o.props = after.clone();
                o.attrs = thing_attrs(&id, &after);
                Ok(Observed {
                    id: id.clone(),
                    props: after,
                    attrs: o.attrs.clone(),
                })
            })
            .await
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        // Like a cache cluster: when nobody waits, the deletion is reported as under way.
        if !ctx.wait_for_deletion {
            ctx.deletion_pending("the fake cloud is still deleting it");
        }
        let id = id.to_string();
        let lookup = self.schema.kind == TypeKind::Lookup;
        self.cloud
            .call(Op::Delete, ctx, move |c| {
                if lookup {
                    return Err(ResourceError::invalid(format!(
                        "{id} was only looked up: plinth must never delete it"
                    )));
                }
                let mut objects = lock(&c.objects);
                let arn = format!("arn:fake:thing/{id}");
                if let Some((user, _)) = objects
                    .iter()
                    .find(|(_, o)| o.props.get("holder") == Some(&Value::String(arn.clone())))
                {
                    return Err(ResourceError::other(format!("{id} is in use by {user}")));
                }
                match objects.remove(&id) {
                    Some(_) => Ok(()),
                    None => Err(ResourceError::new(
                        ErrorKind::NotFound,
                        format!("{id} does not exist"),
                    )),
                }
            })
            .await
    }

    async fn lookup(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let name = value::str_of(props, "name")
            .unwrap_or("default")
            .to_string();
        self.cloud
            .call(Op::Lookup, ctx, move |_| {
                Ok(Observed {
                    id: format!("net-{name}"),
                    props: Props::new(),
                    attrs: json!({
                        "id": format!("net-{name}"),
                        "cidr": "10.0.0.0/16",
                        "subnet_ids": ["subnet-a", "subnet-b"],
                    })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                })
            })
            .await
    }
}

/// A registry with `test.thing` and `test.network`, both backed by `cloud`.
pub(crate) fn registry(cloud: &Arc<FakeCloud>) -> Registry {
    let mut r = Registry::new();
    r.register(Arc::new(FakeType::new(thing_schema(), cloud.clone())));
    r.register(Arc::new(FakeType::new(network_schema(), cloud.clone())));
    r
}

/// Load options as the CLI gives them by default (workspace `default`, no fallback region).
pub(crate) fn options() -> LoadOptions {
    LoadOptions {
        vars: Default::default(),
        workspace: "default".into(),
        fallback_region: None,
    }
}

/// Loads `text` as `stack.yaml` with the fake registry.
pub(crate) fn load_with(
    text: &str,
    registry: &Registry,
    options: &LoadOptions,
) -> Result<(Stack, Diagnostics), Diagnostics> {
    load_str(SourceFile::new("stack.yaml", text), registry, options)
}

/// Loads `text` with the fake registry and default options.
pub(crate) fn load(text: &str) -> Result<Stack, Diagnostics> {
    load_with(text, &registry(&FakeCloud::new()), &options()).map(|(s, _)| s)
}

/// Loads `text` and expects it to fail; returns the errors.
pub(crate) fn load_err(text: &str) -> Diagnostics {
    match load(text) {
        Ok(stack) => panic!("expected errors, got a stack: {stack:#?}"),
        Err(d) => d,
    }
}

/// The only error of a failed load (panics when there is not exactly one).
pub(crate) fn only_error(text: &str) -> Diagnostic {
    let diags = load_err(text);
    let errors: Vec<&Diagnostic> = diags.errors().collect();
    assert_eq!(errors.len(), 1, "expected exactly one error, got:\n{diags}");
    errors[0].clone()
}

/// 1-based line and column of the `n`th (0-based) occurrence of `needle` in `text`.
pub(crate) fn position_nth(text: &str, needle: &str, n: usize) -> (usize, usize) {
    let offset = text
        .match_indices(needle)
        .nth(n)
        .unwrap_or_else(|| panic!("`{needle}` occurs fewer than {} times", n + 1))
        .0;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// 1-based line and column of the first occurrence of `needle` in `text`.
pub(crate) fn position(text: &str, needle: &str) -> (usize, usize) {
    position_nth(text, needle, 0)
}

/// Where a diagnostic points.
pub(crate) fn at(d: &Diagnostic) -> (usize, usize) {
    (d.span.line, d.span.column)
}

/// `props` as a JSON object (panics on anything else).
pub(crate) fn props(v: Value) -> Props {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// The tags plinth adds to a taggable resource of stack `demo`, workspace `default`.
pub(crate) fn plinth_tags(resource: &str) -> Value {
    json!({
        "plinth:created-at": CREATED_AT,
        "plinth:resource": resource,
        "plinth:stack": "demo",
        "plinth:workspace": "default",
    })
}

/// A `test.thing`'s canonical props as the planner computes them for stack `demo`:
/// `declared` plus the plinth tags.
pub(crate) fn canonical(resource: &str, declared: Value) -> Props {
    let mut p = props(declared);
    p.insert("tags".into(), plinth_tags(resource));
    p
}

/// One reporter event.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    Started {
        name: String,
        kind: StepKind,
    },
    StillRunning {
        name: String,
        kind: StepKind,
        status: Option<String>,
    },
    Finished {
        name: String,
        kind: StepKind,
        outcome: Outcome,
        id: Option<String>,
    },
}

/// A reporter that remembers everything it was told.
#[derive(Default)]
pub(crate) struct Recorder {
    pub events: Mutex<Vec<Event>>,
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }
    pub fn started(&self) -> Vec<(String, StepKind)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Started { name, kind } => Some((name, kind)),
                _ => None,
            })
            .collect()
    }
}

impl Reporter for Recorder {
    fn started(&self, name: &str, kind: StepKind) {
        lock(&self.events).push(Event::Started {
            name: name.into(),
            kind,
        });
    }
    fn still_running(&self, name: &str, kind: StepKind, _elapsed: Duration, status: Option<&str>) {
        lock(&self.events).push(Event::StillRunning {
            name: name.into(),
            kind,
            status: status.map(str::to_string),
        });
    }
    fn finished(&self, result: &StepResult, id: Option<&str>) {
        lock(&self.events).push(Event::Finished {
            name: result.name.clone(),
            kind: result.kind,
            outcome: result.outcome.clone(),
            id: id.map(str::to_string),
        });
    }
}

/// A fake cloud, its registry and a temporary state folder, for plan and apply tests.
pub(crate) struct Harness {
    pub cloud: Arc<FakeCloud>,
    pub registry: Registry,
    pub dir: tempfile::TempDir,
    pub options: LoadOptions,
    pub parallelism: usize,
    /// When the engine first reports a still-running step, then how often.
    pub progress_after: Duration,
    pub progress_every: Duration,
    /// `false` runs like `destroy --no-wait`.
    pub wait_for_deletion: bool,
    pub cancel_grace: Duration,
}

impl Harness {
    pub fn new() -> Harness {
        let cloud = FakeCloud::new();
        Harness {
            registry: registry(&cloud),
            cloud,
            dir: tempfile::tempdir().expect("a temporary state folder"),
            options: options(),
            parallelism: 16,
            progress_after: Duration::from_secs(60),
            progress_every: Duration::from_secs(60),
            wait_for_deletion: true,
            cancel_grace: Duration::from_secs(60),
        }
    }

    /// Loads a stack that must be valid.
    pub fn stack(&self, text: &str) -> Stack {
        match load_with(text, &self.registry, &self.options) {
            Ok((stack, _)) => stack,
            Err(d) => panic!("the stack should load:\n{d}"),
        }
    }

    pub fn graph(&self, stack: &Stack) -> DepGraph {
        DepGraph::build(stack, &self.registry).expect("an acyclic graph")
    }

    /// Plans `stack` against `state`.
    pub async fn plan_against(
        &self,
        stack: &Stack,
        state: &State,
        mode: Mode,
        targets: &[&str],
    ) -> Result<Plan, PlanError> {
        self.plan_at(stack, state, mode, targets, SystemTime::now())
            .await
    }

    pub async fn plan_at(
        &self,
        stack: &Stack,
        state: &State,
        mode: Mode,
        targets: &[&str],
        now: SystemTime,
    ) -> Result<Plan, PlanError> {
        let graph = self.graph(stack);
        make_plan(PlanRequest {
            stack,
            graph: &graph,
            state,
            registry: &self.registry,
            mode,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            parallelism: 8,
            now,
        })
        .await
    }

    pub fn files(&self) -> StateFiles {
        StateFiles::new(self.dir.path(), "demo", "default")
    }

    /// Takes the lock and reads (recovering any journal).
    pub fn lock(&self) -> (LockedState, State) {
        self.files()
            .lock_and_read("demo", "default", "test")
            .expect("the state lock")
    }

    /// Runs `plan` against the locked state with a fresh reporter and a cancel channel
    /// nobody triggers.
    pub async fn run(
        &self,
        plan: &Plan,
        locked: &LockedState,
        state: State,
        cancel: watch::Receiver<bool>,
        reporter: Arc<Recorder>,
    ) -> ApplyReport {
        engine::apply(ApplyRequest {
            plan,
            registry: &self.registry,
            store: locked,
            state,
            parallelism: self.parallelism,
            reporter,
            cancel,
            base_dir: self.dir.path().to_path_buf(),
            progress_after: self.progress_after,
            progress_every: self.progress_every,
            wait_for_deletion: self.wait_for_deletion,
            cancel_grace: self.cancel_grace,
        })
        .await
        .expect("the engine runs")
    }

    /// Locks, plans `text` in `mode` against the stored state, applies, and unlocks.
    pub async fn converge(&self, text: &str, mode: Mode) -> (Plan, ApplyReport, Arc<Recorder>) {
        self.converge_stack(&self.stack(text), mode).await
    }

    /// [`Harness::converge`] for a stack already loaded (and adjusted by the test).
    pub async fn converge_stack(
        &self,
        stack: &Stack,
        mode: Mode,
    ) -> (Plan, ApplyReport, Arc<Recorder>) {
        let stack = stack.clone();
        let (locked, state) = self.lock();
        let plan = self
            .plan_against(&stack, &state, mode, &[])
            .await
            .expect("a plan");
        let (_tx, rx) = watch::channel(false);
        let recorder = Arc::new(Recorder::default());
        let report = self.run(&plan, &locked, state, rx, recorder.clone()).await;
        (plan, report, recorder)
    }

    /// The state as stored (without taking the lock).
    pub fn stored_state(&self) -> State {
        self.files()
            .read("demo", "default")
            .expect("readable state")
    }
}

/// A `Ready` state entry for a `test.thing` the cloud already holds.
pub(crate) fn ready(cloud: &FakeCloud, name: &str, props: Props) -> ResourceState {
    let id = cloud.insert("test.thing", name, props.clone());
    let attrs = cloud.objects()[&id].attrs.clone();
    ResourceState {
        type_name: "test.thing".into(),
        region: "us-east-1".into(),
        id,
        status: Status::Ready,
        props,
        attrs,
        deps: Vec::new(),
        soft_deps: Vec::new(),
        lifecycle: Default::default(),
        changed_at: None,
        create_token: None,
    }
}

/// When the environments of hand-made test states were first applied: a plan keeps it, so
/// expected tags are fixed.
pub(crate) const CREATED_AT: &str = "2030-01-01T00:00:00Z";

/// An empty state of stack `demo`, workspace `default`, created at [`CREATED_AT`].
pub(crate) fn empty_state() -> State {
    let mut state = State::new("demo", "default");
    state.created_at = Some(CREATED_AT.into());
    state
}

/// The outcome of each step by `(name, kind)`.
pub(crate) fn outcomes(report: &ApplyReport) -> BTreeMap<(String, StepKind), Outcome> {
    report
        .results
        .iter()
        .map(|r| ((r.name.clone(), r.kind), r.outcome.clone()))
        .collect()
}

/// A short word for an outcome, for compact assertions.
pub(crate) fn word(o: &Outcome) -> String {
    match o {
        Outcome::Done => "done".into(),
        Outcome::Failed(_) => "failed".into(),
        Outcome::Skipped { because } => format!("skipped({because})"),
        Outcome::NotStarted => "not started".into(),
        Outcome::Abandoned => "abandoned".into(),
    }
}
