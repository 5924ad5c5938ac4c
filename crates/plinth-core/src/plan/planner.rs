//! Desired (the stack) against actual (what AWS reports now) → a [`Plan`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::stream::{self, StreamExt};
use serde_json::Value;

use crate::graph::DepGraph;
use crate::plan::{diff, name_prefix, replace_order};
use crate::plan::{Action, Mode, OutputChange, Plan, ResourceChange, FORMAT_VERSION};
use crate::resource::{
    NormalizeContext, Observed, OpContext, Registry, ResourceError, ResourceType,
};
use crate::schema::{TypeKind, TypeSchema};
use crate::stack::expr::{self, Expr, Ref, SpannedExpr, Target};
use crate::stack::{ResourceDecl, Stack};
use crate::state::{ResourceState, State, Status};
use crate::value::{self, Props};

/// Everything a plan is made from.
pub struct PlanRequest<'a> {
    pub stack: &'a Stack,
    pub graph: &'a DepGraph,
    pub state: &'a State,
    pub registry: &'a Registry,
    pub mode: Mode,
    /// `--target`: limit the plan to these resources (and what they need, or what needs
    /// them when destroying).
    pub targets: Vec<String>,
    /// How many reads run at once while refreshing.
    pub parallelism: usize,
    pub now: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// `what` names the resource: "`users` (dynamodb.table demo-users)".
    #[error("reading {what} failed: {source}")]
    Refresh {
        what: String,
        #[source]
        source: ResourceError,
    },
    #[error("looking up `{name}` ({type_name}) failed: {source}")]
    Lookup {
        name: String,
        type_name: String,
        #[source]
        source: ResourceError,
    },
    #[error("`{name}`: {message}")]
    Invalid { name: String, message: String },
    #[error("the state holds `{name}` of type `{type_name}`, which this plinth does not know")]
    UnknownType { name: String, type_name: String },
    #[error("--target {0}: no resource of that name in the stack or the state")]
    UnknownTarget(String),
    /// The state's resources are in another account than the run's.
    #[error("{0}")]
    Account(String),
    #[error("{}", prevent_destroy_message(.0))]
    PreventDestroy(Vec<(String, Action)>),
}

fn prevent_destroy_message(items: &[(String, Action)]) -> String {
    let list: Vec<String> = items
        .iter()
        .map(|(name, action)| {
            let verb = if *action == Action::Replace {
                "be replaced"
            } else {
                "be destroyed"
            };
            format!("`{name}` would {verb}")
        })
        .collect();
    format!(
        "lifecycle.prevent_destroy forbids this plan: {}. Remove `prevent_destroy` from the resource's lifecycle (and apply) if you really mean it.",
        list.join(", ")
    )
}

/// What the refresh found for one state entry.
pub(crate) struct Refreshed {
    pub(crate) observed: Option<Observed>,
    adopted: Option<bool>,
}

/// How a replacement because of a region move starts its reason.
pub const REGION_REASON: &str = "region ";

/// Reads everything in state (in parallel), diffs it against the stack, and returns the plan.
pub async fn make_plan(req: PlanRequest<'_>) -> Result<Plan, PlanError> {
    check_targets(&req)?;
    check_account(&req)?;
    let refreshed = refresh(&req).await?;
    let (expires_at, expires_after) = expiry(&req);
    let created_at = created_at(&req);
    let mut planner = Planner {
        req: &req,
        refreshed: &refreshed,
        expires_at: expires_at.clone(),
        created_at: created_at.clone(),
        planned_attrs: BTreeMap::new(),
    };
    let mut resources = match req.mode {
        Mode::Apply => planner.plan_stack().await?,
        Mode::Destroy => Vec::new(),
    };
    resources.extend(planner.plan_deletes());
    check_prevent_destroy(&resources, req.stack)?;
    replace_order::create_first_where_held(&mut resources, req.registry);
    replace_order::check_unique_values(&resources, req.registry)?;
    let outputs = planner.plan_outputs();
    let inputs =
        crate::plan::inputs::fingerprint(&resources, req.registry, &req.stack.file.base_dir());
    Ok(Plan {
        format_version: FORMAT_VERSION.to_string(),
        kind: "plinth-plan".into(),
        stack: req.stack.name.clone(),
        workspace: req.stack.workspace.clone(),
        stack_file: req.stack.file.display_path(),
        state: None,
        region: req.stack.region.clone(),
        mode: req.mode,
        lineage: req.state.lineage.clone(),
        serial: req.state.serial,
        expires_at,
        expires_after,
        created_at,
        account: req.stack.account.clone(),
        resources,
        outputs,
        inputs,
        sensitive_values: req.stack.sensitive_values(),
    })
}

/// The state's resources are in the account the run's credentials are for.
pub(crate) fn check_account(req: &PlanRequest) -> Result<(), PlanError> {
    let (account, caller) = (
        req.stack.account.as_deref(),
        req.stack.caller_account.as_deref(),
    );
    match req.state.account_problem(account, caller) {
        Some(problem) => Err(PlanError::Account(problem)),
        None => Ok(()),
    }
}

fn check_targets(req: &PlanRequest) -> Result<(), PlanError> {
    for t in &req.targets {
        if req.stack.resource(t).is_none() && !req.state.resources.contains_key(t) {
            return Err(PlanError::UnknownTarget(t.clone()));
        }
    }
    Ok(())
}

/// `expires_after` is stamped once: the time stays fixed until the duration itself changes.
fn expiry(req: &PlanRequest) -> (Option<String>, Option<String>) {
    let Some(e) = &req.stack.expires_after else {
        return (None, None);
    };
    if req.state.expires_after.as_deref() == Some(e.text.as_str()) && req.state.expires_at.is_some()
    {
        return (req.state.expires_at.clone(), Some(e.text.clone()));
    }
    let at = humantime::format_rfc3339_seconds(req.now + e.duration).to_string();
    (Some(at), Some(e.text.clone()))
}

/// `plinth:created-at` is stamped once per environment: the state's time while it has one,
/// now for an environment applied for the first time (or again after a full destroy).
/// A destroy stamps nothing.
fn created_at(req: &PlanRequest) -> Option<String> {
    match (&req.state.created_at, req.mode) {
        (Some(at), _) => Some(at.clone()),
        (None, Mode::Apply) => Some(humantime::format_rfc3339_seconds(req.now).to_string()),
        (None, Mode::Destroy) => None,
    }
}

/// Reads what AWS has of every state entry the plan needs (everything, except when
/// destroying), `parallelism` reads at once, batched where the type can.
pub(crate) async fn refresh(
    req: &PlanRequest<'_>,
) -> Result<BTreeMap<String, Refreshed>, PlanError> {
    let mut jobs: Vec<RefreshJob> = Vec::new();
    let mut batches: BTreeMap<(String, String), Vec<(String, ResourceState)>> = BTreeMap::new();
    for (name, rs) in &req.state.resources {
        let rt =
            req.registry
                .get(&rs.type_name)
                .cloned()
                .ok_or_else(|| PlanError::UnknownType {
                    name: name.clone(),
                    type_name: rs.type_name.clone(),
                })?;
        if rt.schema().kind == TypeKind::Lookup {
            continue; // lookups are re-read from the stack, not from state
        }
        // A delete needs the id, which the state has (and every delete takes "not found" for
        // done): a destroy reads only what an interrupted create left without an id, and
        // what an earlier destroy left deleting (gone by now, it is only forgotten).
        if req.mode == Mode::Destroy && rs.status == Status::Ready {
            continue;
        }
        if rt.read_batch_size() > 1 && rs.status != Status::Creating {
            let key = (rs.type_name.clone(), rs.region.clone());
            batches
                .entry(key)
                .or_default()
                .push((name.clone(), rs.clone()));
        } else {
            jobs.push(RefreshJob {
                rt,
                items: vec![(name.clone(), rs.clone())],
            });
        }
    }
    for ((type_name, _), items) in batches {
        let Some(rt) = req.registry.get(&type_name).cloned() else {
            continue;
        };
        for chunk in items.chunks(rt.read_batch_size()) {
            jobs.push(RefreshJob {
                rt: rt.clone(),
                items: chunk.to_vec(),
            });
        }
    }
    let results: Vec<Result<Vec<(String, Refreshed)>, PlanError>> = stream::iter(jobs)
        .map(|job| async move { job.run(req.stack, req.now).await })
        .buffer_unordered(req.parallelism.max(1))
        .collect()
        .await;
    let mut out = BTreeMap::new();
    for result in results {
        out.extend(result?);
    }
    Ok(out)
}

/// One read call's worth of state entries: a single resource, or a batch of one type in
/// one region.
struct RefreshJob {
    rt: Arc<dyn ResourceType>,
    items: Vec<(String, ResourceState)>,
}

impl RefreshJob {
    async fn run(
        self,
        stack: &Stack,
        now: SystemTime,
    ) -> Result<Vec<(String, Refreshed)>, PlanError> {
        if let [(name, rs)] = self.items.as_slice() {
            return Ok(vec![
                refresh_one(stack, name.clone(), rs.clone(), self.rt, now).await?,
            ]);
        }
        let Some((first_name, first)) = self.items.first() else {
            return Ok(Vec::new());
        };
        let ctx = OpContext::new(first.region.clone(), first_name.clone())
            .with_environment(&stack.name, &stack.workspace);
        let ids: Vec<(String, Props)> = self
            .items
            .iter()
            .map(|(_, rs)| (rs.id.clone(), rs.props.clone()))
            .collect();
        let what = format!(
            "{} {} resources in {}",
            ids.len(),
            first.type_name,
            first.region
        );
        let observed =
            self.rt
                .read_batch(&ctx, &ids)
                .await
                .map_err(|source| PlanError::Refresh {
                    what: what.clone(),
                    source,
                })?;
        // A short answer would make resources look deleted, and be created twice.
        if observed.len() != ids.len() {
            let message = format!("answered {} of {} reads", observed.len(), ids.len());
            return Err(PlanError::Refresh {
                what,
                source: ResourceError::other(message),
            });
        }
        let mut out = Vec::with_capacity(observed.len());
        for ((name, rs), mut observed) in self.items.into_iter().zip(observed) {
            if observed.is_none() && settling(&rs, now).is_some() {
                let ctx = OpContext::new(rs.region.clone(), name.clone())
                    .with_environment(&stack.name, &stack.workspace);
                observed = read_settled(self.rt.as_ref(), &ctx, &rs, now)
                    .await
                    .map_err(|source| PlanError::Refresh {
                        what: format!("`{name}` ({} {})", rs.type_name, rs.id),
                        source,
                    })?;
            }
            let refreshed = Refreshed {
                observed,
                adopted: None,
            };
            out.push((name, refreshed));
        }
        Ok(out)
    }
}

/// How long after plinth created or changed a resource a read that does not find it is not
/// believed: AWS's reads are eventually consistent (Terraform's AWS provider waits two
/// minutes too), and taking "not found" for "gone" would plan a second create.
pub const SETTLE: Duration = Duration::from_secs(120);
const SETTLE_FIRST_POLL: Duration = Duration::from_millis(500);
const SETTLE_MAX_POLL: Duration = Duration::from_secs(10);

/// What is left of the window in which `rs`, changed by plinth at `changed_at`, may still be
/// invisible to reads.
fn settling(rs: &ResourceState, now: SystemTime) -> Option<Duration> {
    if rs.status != Status::Ready {
        return None;
    }
    let changed = humantime::parse_rfc3339(rs.changed_at.as_deref()?).ok()?;
    let age = now.duration_since(changed).unwrap_or_default();
    SETTLE.checked_sub(age).filter(|left| !left.is_zero())
}

/// Reads `rs`; while AWS does not show it and it is still settling, reads again with backoff.
async fn read_settled(
    rt: &dyn ResourceType,
    ctx: &OpContext,
    rs: &ResourceState,
    now: SystemTime,
) -> Result<Option<Observed>, ResourceError> {
    let mut observed = rt.read(ctx, &rs.id, &rs.props).await?;
    let Some(left) = settling(rs, now) else {
        return Ok(observed);
    };
    let until = tokio::time::Instant::now() + left;
    let mut delay = SETTLE_FIRST_POLL;
    while observed.is_none() && tokio::time::Instant::now() < until {
        tracing::info!(
            resource = %ctx.name,
            id = %rs.id,
            "not found yet, though plinth made or changed it moments ago: reading again"
        );
        let wait = delay.min(until.saturating_duration_since(tokio::time::Instant::now()));
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(SETTLE_MAX_POLL);
        observed = rt.read(ctx, &rs.id, &rs.props).await?;
    }
    Ok(observed)
}

async fn refresh_one(
    stack: &Stack,
    name: String,
    rs: ResourceState,
    rt: Arc<dyn ResourceType>,
    now: SystemTime,
) -> Result<(String, Refreshed), PlanError> {
    let ctx = OpContext::new(rs.region.clone(), name.clone())
        .with_environment(&stack.name, &stack.workspace);
    let refresh_error = |source| PlanError::Refresh {
        what: format!("`{name}` ({} {})", rs.type_name, rs.id),
        source,
    };
    let refreshed = match rs.status {
        Status::Creating => {
            // The token of the create that was never seen answered: types that tag their
            // creates with it find exactly what that create made.
            let ctx = match &rs.create_token {
                Some(token) => ctx.with_create_token(token.clone()),
                None => ctx,
            };
            let observed = rt.find(&ctx, &rs.props).await.map_err(refresh_error)?;
            let adopted = Some(observed.is_some());
            Refreshed { observed, adopted }
        }
        Status::Ready | Status::PendingDelete { .. } => Refreshed {
            observed: read_settled(rt.as_ref(), &ctx, &rs, now)
                .await
                .map_err(refresh_error)?,
            adopted: None,
        },
    };
    Ok((name, refreshed))
}

struct Planner<'a> {
    req: &'a PlanRequest<'a>,
    refreshed: &'a BTreeMap<String, Refreshed>,
    expires_at: Option<String>,
    created_at: Option<String>,
    /// Attributes of each planned resource as they will be after apply (unknown where
    /// only apply can tell).
    planned_attrs: BTreeMap<String, Props>,
}

impl Planner<'_> {
    async fn plan_stack(&mut self) -> Result<Vec<ResourceChange>, PlanError> {
        let scope = self.scope();
        let mut changes = Vec::new();
        for name in self.req.graph.creation_order() {
            if !scope.contains(&name) {
                continue;
            }
            let Some(decl) = self.req.stack.resource(&name) else {
                continue;
            };
            let change = self.plan_resource(decl).await?;
            self.planned_attrs.insert(name, change.attrs.clone());
            changes.push(change);
        }
        // References that close a cycle were evaluated before their target was planned:
        // evaluate those resources again now that every attribute is planned.
        for change in changes.iter_mut().filter(|c| !c.deferred.is_empty()) {
            if let Some(decl) = self.req.stack.resource(&change.name) {
                *change = self.plan_resource(decl).await?;
            }
        }
        Ok(changes)
    }

    fn scope(&self) -> BTreeSet<String> {
        if self.req.targets.is_empty() {
            self.req
                .stack
                .resources
                .iter()
                .map(|r| r.name.clone())
                .collect()
        } else {
            self.req.graph.with_dependencies(&self.req.targets)
        }
    }

    async fn plan_resource(&self, decl: &ResourceDecl) -> Result<ResourceChange, PlanError> {
        let rt = self.rt(&decl.name, &decl.type_name)?;
        let schema = rt.schema();
        let stamps = Stamps {
            created_at: self.created_at.as_deref(),
            expires_at: self.expires_at.as_deref(),
        };
        let template = desired_template(decl, self.req.stack, schema, &stamps);
        let mut desired = self.evaluate(&template);
        let invalid = |message: String| PlanError::Invalid {
            name: decl.name.clone(),
            message,
        };
        let prior = self.req.state.resources.get(&decl.name).map(|rs| &rs.props);
        let prefixed = name_prefix::take(schema, &mut desired, prior).map_err(invalid)?;
        let base_dir = self.req.stack.file.base_dir();
        rt.normalize(&mut desired, &NormalizeContext { base_dir })
            .map_err(|e| invalid(e.message))?;
        let samples = prefixed.iter().map(|p| name_prefix::sample(&desired, p));
        let issues = rt
            .check(&desired)
            .into_iter()
            .chain(samples.flat_map(|sample| rt.check(&sample)));
        if let Some(issue) = issues.into_iter().next() {
            let path = value::path_to_string(&issue.path);
            return Err(invalid(format!("{path}: {}", issue.message)));
        }
        let mut change = self.base_change(decl, template);
        if schema.kind == TypeKind::Lookup {
            return self.plan_lookup(change, rt.as_ref(), desired).await;
        }
        let refreshed = self.refreshed.get(&decl.name);
        change.adopted = refreshed.and_then(|r| r.adopted);
        let observed = refreshed.and_then(|r| r.observed.as_ref());
        let unresolved = desired.clone();
        self.resolve_values(&mut change, rt.as_ref(), &mut desired, observed)
            .await?;
        let Some(observed) = observed else {
            change.action = Action::Create;
            let fresh = prefixed.iter().filter(|p| !p.existing);
            new_names(&mut change, &mut desired, fresh);
            change.attrs = planned_attrs_unknown(schema, rt.known_attrs(&desired));
            change.after = Some(desired);
            return Ok(change);
        };
        keep_actual(
            schema,
            &mut desired,
            &observed.props,
            &decl.lifecycle.ignore_changes,
        );
        change.id = Some(observed.id.clone());
        change.before = Some(observed.props.clone());
        let changed = diff::changed_keys(&observed.props, &desired)
            .into_iter()
            .any(|k| diff::differs(observed.props.get(&k), desired.get(&k)));
        let moved_from = self
            .req
            .state
            .resources
            .get(&decl.name)
            .map(|rs| rs.region.as_str())
            .filter(|region| *region != decl.region);
        if let Some(old_region) = moved_from {
            // A resource cannot move between regions: the new one is made where it should be.
            change.action = Action::Replace;
            change.replace_reasons =
                vec![format!("{REGION_REASON}({old_region} → {})", decl.region)];
            self.resolve_anew(&mut change, rt.as_ref(), &mut desired, unresolved, observed)
                .await?;
            new_names(&mut change, &mut desired, prefixed.iter());
            change.attrs = planned_attrs_unknown(schema, rt.known_attrs(&desired));
        } else if !changed {
            change.action = Action::NoOp;
            change.attrs = observed.attrs.clone();
        } else {
            change.replace_reasons = rt.replace_reasons(&observed.props, &desired);
            if change.replace_reasons.is_empty() {
                change.action = Action::Update;
                // A name that changes in place (a cache policy's) to a new prefix.
                let fresh = prefixed.iter().filter(|p| !p.existing);
                new_names(&mut change, &mut desired, fresh);
                change
                    .notes
                    .extend(rt.change_notes(&observed.props, &desired));
                change.attrs = overlay(observed.attrs.clone(), rt.known_attrs(&desired));
            } else {
                change.action = Action::Replace;
                self.resolve_anew(&mut change, rt.as_ref(), &mut desired, unresolved, observed)
                    .await?;
                new_names(&mut change, &mut desired, prefixed.iter());
                change.attrs = planned_attrs_unknown(schema, rt.known_attrs(&desired));
            }
        }
        change.after = Some(desired);
        Ok(change)
    }

    /// Lets the type look up what only AWS knows ([`ResourceType::resolve`]), keeping what
    /// it set for apply and its notes for the plan.
    async fn resolve_values(
        &self,
        change: &mut ResourceChange,
        rt: &dyn ResourceType,
        desired: &mut Props,
        observed: Option<&Observed>,
    ) -> Result<(), PlanError> {
        let ctx = OpContext::new(change.region.clone(), change.name.clone())
            .with_environment(&self.req.stack.name, &self.req.stack.workspace);
        let before = desired.clone();
        change.notes = rt
            .resolve(&ctx, desired, observed.map(|o| &o.props))
            .await
            .map_err(|source| PlanError::Lookup {
                name: change.name.clone(),
                type_name: change.type_name.clone(),
                source,
            })?;
        change.resolved = desired
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(())
    }

    /// For a replacement: the new resource is resolved as a new one (what the old one keeps,
    /// the image it was launched from, is not what a new one gets), then takes what the old
    /// one has for what the stack leaves to AWS, as any desired properties do.
    async fn resolve_anew(
        &self,
        change: &mut ResourceChange,
        rt: &dyn ResourceType,
        desired: &mut Props,
        unresolved: Props,
        observed: &Observed,
    ) -> Result<(), PlanError> {
        if change.resolved.is_empty() {
            return Ok(());
        }
        *desired = unresolved;
        self.resolve_values(change, rt, desired, None).await?;
        keep_actual(
            rt.schema(),
            desired,
            &observed.props,
            &change.lifecycle.ignore_changes,
        );
        Ok(())
    }

    async fn plan_lookup(
        &self,
        mut change: ResourceChange,
        rt: &dyn ResourceType,
        desired: Props,
    ) -> Result<ResourceChange, PlanError> {
        let previous = self.req.state.resources.get(&change.name);
        change.action = Action::Read;
        if value::contains_unknown(&Value::Object(desired.clone())) {
            change.attrs = planned_attrs_unknown(rt.schema(), Props::new());
        } else {
            let ctx = OpContext::new(change.region.clone(), change.name.clone())
                .with_environment(&self.req.stack.name, &self.req.stack.workspace);
            let observed = rt
                .lookup(&ctx, &desired)
                .await
                .map_err(|source| PlanError::Lookup {
                    name: change.name.clone(),
                    type_name: change.type_name.clone(),
                    source,
                })?;
            if previous.is_some_and(|p| p.attrs == observed.attrs && p.id == observed.id) {
                change.action = Action::NoOp;
            }
            change.id = Some(observed.id);
            change.attrs = observed.attrs;
        }
        change.after = Some(desired);
        Ok(change)
    }

    fn base_change(&self, decl: &ResourceDecl, template: SpannedExpr) -> ResourceChange {
        let graph = self.req.graph;
        let prior = self.req.state.resources.get(&decl.name);
        ResourceChange {
            name: decl.name.clone(),
            type_name: decl.type_name.clone(),
            region: decl.region.clone(),
            action: Action::NoOp,
            replace_reasons: Vec::new(),
            create_first_because: None,
            notes: Vec::new(),
            id: None,
            before: None,
            after: None,
            attrs: Props::new(),
            template: Some(template),
            deps: graph.dependencies(&decl.name),
            soft_deps: graph.soft_dependencies(&decl.name),
            deferred: graph.deferred(&decl.name),
            prior_deps: prior.map(|p| p.deps.clone()).unwrap_or_default(),
            prior_soft_deps: prior.map(|p| p.soft_deps.clone()).unwrap_or_default(),
            lifecycle: decl.lifecycle.clone(),
            adopted: None,
            resolved: Props::new(),
        }
    }

    fn rt(&self, name: &str, type_name: &str) -> Result<Arc<dyn ResourceType>, PlanError> {
        self.req
            .registry
            .get(type_name)
            .cloned()
            .ok_or_else(|| PlanError::UnknownType {
                name: name.into(),
                type_name: type_name.into(),
            })
    }

    fn evaluate(&self, template: &SpannedExpr) -> Props {
        let value = template.eval(&|r| self.resolve(r));
        match value {
            Value::Object(m) => m,
            _ => Props::new(),
        }
    }

    fn resolve(&self, r: &Ref) -> Value {
        let Target::Resource {
            resource,
            attr,
            path,
        } = &r.target
        else {
            return value::unknown();
        };
        let attrs = match self.planned_attrs.get(resource) {
            Some(a) => a,
            // A deferred target not planned yet: what exists now, if anything.
            None => match self
                .refreshed
                .get(resource)
                .and_then(|r| r.observed.as_ref())
            {
                Some(o) => &o.attrs,
                None => return value::unknown(),
            },
        };
        expr::attribute(attrs, attr, path)
    }

    fn plan_deletes(&self) -> Vec<ResourceChange> {
        let state = self.req.state;
        let destroy_scope = self.destroy_scope();
        let mut out = Vec::new();
        for (name, rs) in &state.resources {
            let in_stack = self.req.stack.resource(name).is_some();
            let wanted = match self.req.mode {
                Mode::Destroy => destroy_scope.contains(name),
                Mode::Apply => {
                    !in_stack && (self.req.targets.is_empty() || self.req.targets.contains(name))
                }
            };
            if !wanted {
                continue;
            }
            let observed = self.refreshed.get(name).and_then(|r| r.observed.as_ref());
            let gone = observed.is_none() && self.refreshed.contains_key(name);
            let lookup = self
                .req
                .registry
                .schema(&rs.type_name)
                .is_some_and(|s| s.kind == TypeKind::Lookup);
            out.push(ResourceChange {
                name: name.clone(),
                type_name: rs.type_name.clone(),
                region: rs.region.clone(),
                action: Action::Delete,
                replace_reasons: Vec::new(),
                create_first_because: None,
                notes: Vec::new(),
                // What the read found: for an interrupted create the state has no id yet,
                // only `find` knows it.
                id: Some(observed.map_or_else(|| rs.id.clone(), |o| o.id.clone())),
                before: Some(
                    observed
                        .map(|o| o.props.clone())
                        .unwrap_or_else(|| rs.props.clone()),
                ),
                after: None,
                attrs: rs.attrs.clone(),
                template: None,
                deps: Vec::new(),
                soft_deps: Vec::new(),
                deferred: BTreeSet::new(),
                prior_deps: rs.deps.clone(),
                prior_soft_deps: rs.soft_deps.clone(),
                lifecycle: self
                    .req
                    .stack
                    .resource(name)
                    .map(|d| d.lifecycle.clone())
                    .unwrap_or_else(|| rs.lifecycle.clone()),
                // Already gone (deleted by hand, or a pending deletion that finished), or a
                // lookup, which plinth never created: apply only forgets it.
                adopted: (gone || lookup).then_some(false),
                resolved: Props::new(),
            });
        }
        out
    }

    /// For a targeted destroy: the targets and everything that (per state) depends on them.
    fn destroy_scope(&self) -> BTreeSet<String> {
        let state = self.req.state;
        if self.req.targets.is_empty() {
            return state.resources.keys().cloned().collect();
        }
        let mut scope: BTreeSet<String> = BTreeSet::new();
        let mut todo = self.req.targets.clone();
        while let Some(n) = todo.pop() {
            if scope.insert(n.clone()) {
                for (other, rs) in &state.resources {
                    if rs.deps.contains(&n) {
                        todo.push(other.clone());
                    }
                }
            }
        }
        scope
    }

    fn plan_outputs(&self) -> Vec<OutputChange> {
        let state = self.req.state;
        let mut out = Vec::new();
        if self.req.mode == Mode::Apply {
            for o in &self.req.stack.outputs {
                let after = o.value.eval(&|r| self.resolve(r));
                let before = state.outputs.get(&o.name).map(|s| s.value.clone());
                let action = match &before {
                    None => Action::Create,
                    Some(b) if diff::differs(Some(b), Some(&after)) => Action::Update,
                    Some(_) => Action::NoOp,
                };
                out.push(OutputChange {
                    name: o.name.clone(),
                    action,
                    before,
                    after: Some(after),
                    sensitive: o.sensitive,
                    description: o.description.clone(),
                    template: Some(o.value.clone()),
                });
            }
        }
        for (name, s) in &state.outputs {
            let kept = self.req.mode == Mode::Apply
                && self.req.stack.outputs.iter().any(|o| &o.name == name);
            if !kept {
                out.push(OutputChange {
                    name: name.clone(),
                    action: Action::Delete,
                    before: Some(s.value.clone()),
                    after: None,
                    sensitive: s.sensitive,
                    description: s.description.clone(),
                    template: None,
                });
            }
        }
        out
    }
}

/// The environment's times, stamped on every taggable resource.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stamps<'a> {
    /// `plinth:created-at`: when the environment was first applied.
    pub created_at: Option<&'a str>,
    /// `plinth:expires-at`: when `sweep --expired` may remove it.
    pub expires_at: Option<&'a str>,
}

/// The properties to evaluate: the declared ones, with the stack's tags, the resource's
/// own and the `plinth:*` tags merged for taggable types.
pub fn desired_template(
    decl: &ResourceDecl,
    stack: &Stack,
    schema: &TypeSchema,
    stamps: &Stamps,
) -> SpannedExpr {
    let mut template = decl.props.clone();
    if !schema.taggable {
        return template;
    }
    let Expr::Map(entries) = &mut template.expr else {
        return template;
    };
    let mut tags: Vec<(String, SpannedExpr)> = stack
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), SpannedExpr::lit(Value::String(v.clone()))))
        .collect();
    let own = entries
        .iter()
        .position(|(k, _)| k == "tags")
        .map(|i| entries.remove(i).1);
    if let Some(SpannedExpr {
        expr: Expr::Map(own),
        ..
    }) = own
    {
        for (k, v) in own {
            tags.retain(|(existing, _)| existing != &k);
            tags.push((k, v));
        }
    }
    let mut plinth = vec![
        ("plinth:stack", stack.name.clone()),
        ("plinth:workspace", stack.workspace.clone()),
        ("plinth:resource", decl.name.clone()),
    ];
    if let Some(at) = stamps.created_at {
        plinth.push(("plinth:created-at", at.to_string()));
    }
    if let Some(at) = stamps.expires_at {
        plinth.push(("plinth:expires-at", at.to_string()));
    }
    // State kept elsewhere (s3://…): `sweep` on a machine without it must not take the
    // environment for an orphan.
    if let Some(url) = stack.state.as_deref().filter(|s| s.contains("://")) {
        plinth.push((crate::teardown::STATE_TAG, url.to_string()));
    }
    for (k, v) in plinth {
        tags.retain(|(existing, _)| existing != k);
        tags.push((k.to_string(), SpannedExpr::lit(Value::String(v))));
    }
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    entries.push((
        "tags".into(),
        SpannedExpr::new(Expr::Map(tags), template.span),
    ));
    template
}

/// Every declared attribute unknown, except those known from desired properties.
fn planned_attrs_unknown(schema: &TypeSchema, known: Props) -> Props {
    let mut attrs: Props = schema
        .attributes
        .iter()
        .map(|a| (a.name.to_string(), value::unknown()))
        .collect();
    for (k, v) in known {
        attrs.insert(k, v);
    }
    attrs
}

fn overlay(mut base: Props, top: Props) -> Props {
    for (k, v) in top {
        base.insert(k, v);
    }
    base
}

/// What AWS keeps of its actual properties: those in `lifecycle.ignore_changes`, and
/// A new resource's names from their prefixes: generated now and applied as planned (in
/// `resolved`), shown as known after apply.
fn new_names<'a>(
    change: &mut ResourceChange,
    desired: &mut Props,
    prefixed: impl Iterator<Item = &'a name_prefix::Prefixed>,
) {
    for p in prefixed {
        desired.insert(
            p.prop.to_string(),
            Value::String(value::UNKNOWN.to_string()),
        );
        change.resolved.insert(
            p.prop.to_string(),
            Value::String(name_prefix::generate(&p.prefix)),
        );
    }
}

/// `computed` ones the stack leaves out.
pub fn keep_actual(schema: &TypeSchema, desired: &mut Props, actual: &Props, ignored: &[String]) {
    apply_ignore_changes(desired, actual, ignored);
    fill_computed(schema, desired, actual);
}

/// Properties the stack leaves to AWS (`computed`) take what AWS has.
pub fn fill_computed(schema: &TypeSchema, desired: &mut Props, actual: &Props) {
    for prop in schema.properties.iter().filter(|p| p.computed) {
        if !desired.contains_key(prop.name) {
            if let Some(v) = actual.get(prop.name) {
                desired.insert(prop.name.to_string(), v.clone());
            }
        }
    }
}

/// `lifecycle.ignore_changes`: the listed properties keep what AWS has.
fn apply_ignore_changes(desired: &mut Props, actual: &Props, ignored: &[String]) {
    for prop in ignored {
        match actual.get(prop) {
            Some(v) => desired.insert(prop.clone(), v.clone()),
            None => desired.remove(prop),
        };
    }
}

fn check_prevent_destroy(changes: &[ResourceChange], stack: &Stack) -> Result<(), PlanError> {
    let blocked: Vec<(String, Action)> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .filter(|c| c.adopted != Some(false) || c.action != Action::Delete)
        .filter(|c| {
            stack
                .resource(&c.name)
                .map(|d| d.lifecycle.prevent_destroy)
                .unwrap_or(c.lifecycle.prevent_destroy)
        })
        .map(|c| (c.name.clone(), c.action))
        .collect();
    if blocked.is_empty() {
        Ok(())
    } else {
        Err(PlanError::PreventDestroy(blocked))
    }
}

#[cfg(test)]
mod computed_tests {
    use super::*;
    use crate::schema::{Prop, Shape, TypeKind};
    use serde_json::json;

    #[test]
    fn a_computed_property_left_out_takes_what_aws_has_and_a_written_one_stays() {
        let schema = TypeSchema {
            type_name: "test.grouped",
            description: "",
            kind: TypeKind::Managed,
            taggable: false,
            properties: vec![
                Prop::new("vpc_id", Shape::String).computed().replaces(),
                Prop::new("name", Shape::String),
            ],
            attributes: vec![],
        };
        let actual: Props = json!({"vpc_id": "vpc-1", "name": "a"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut left_out: Props = json!({"name": "b"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        fill_computed(&schema, &mut left_out, &actual);
        assert_eq!(left_out.get("vpc_id"), Some(&json!("vpc-1")));
        let mut written: Props = json!({"vpc_id": "vpc-2", "name": "b"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        fill_computed(&schema, &mut written, &actual);
        assert_eq!(written.get("vpc_id"), Some(&json!("vpc-2")));
        assert!(!left_out.contains_key("missing"));
    }
}
