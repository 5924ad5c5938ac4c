//! Executes a plan: each step starts the moment the steps it waits for are done, up to
//! `parallelism` at once. Every finished step is journaled (fsynced) before the next
//! decision, and every create before it is sent; on an error or Ctrl-C nothing new starts,
//! in-flight steps finish (after Ctrl-C, for at most `cancel_grace`: then plinth stops
//! waiting for them), and the state records exactly what completed.

pub mod steps;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::plan::planner::keep_actual;
use crate::plan::{Action, Mode, Plan, ResourceChange};
use crate::resource::{
    NormalizeContext, Observed, OpContext, Progress, Registry, ResourceError, ResourceType,
};
use crate::schema::TypeSchema;
use crate::stack::expr::{self, Expr, SpannedExpr, Target};
use crate::state::store::StoreError;
use crate::state::StateLock;
use crate::state::{JournalEntry, OutputState, ResourceState, State, Status};
use crate::value::{self, Props};
pub use steps::{Step, StepKind};

/// How one step ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Done,
    Failed(ResourceError),
    /// Not run because a step it waits for failed (named).
    Skipped {
        because: String,
    },
    /// Not run because the run stopped (an error elsewhere, or Ctrl-C).
    NotStarted,
    /// Still running when Ctrl-C's grace period ran out: plinth stopped waiting for it. AWS
    /// may still carry it out; the state keeps what was recorded before (a create's intent,
    /// so the next run finds what it made), and the next plan reads what AWS has.
    Abandoned,
}

/// One step's result, for the summary.
#[derive(Clone, Debug)]
pub struct StepResult {
    pub name: String,
    pub kind: StepKind,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// What the engine tells the user while it works.
pub trait Reporter: Send + Sync {
    fn started(&self, name: &str, kind: StepKind);
    /// Called for steps still running after a couple of seconds, then periodically.
    fn still_running(&self, name: &str, kind: StepKind, elapsed: Duration, status: Option<&str>);
    fn finished(&self, result: &StepResult, id: Option<&str>);
    /// Something a resource type asked to show the person (an invalidation's id).
    fn notice(&self, _name: &str, _message: &str) {}
    /// A delete AWS accepted (or refused for now) and finishes later: recorded as pending
    /// deletion instead of gone. Called instead of `finished` for that step.
    fn deletion_pending(&self, result: &StepResult, _reason: &str) {
        self.finished(result, None);
    }
}

/// Steps at once unless `--parallelism` says otherwise. High, because it is not what
/// bounds the load on AWS: the provider paces each service's requests by itself, so steps
/// of a throttled service wait their turn while the others go on.
pub const DEFAULT_PARALLELISM: usize = 64;

/// Everything apply needs.
pub struct ApplyRequest<'a> {
    pub plan: &'a Plan,
    pub registry: &'a Registry,
    pub store: &'a dyn StateLock,
    pub state: State,
    pub parallelism: usize,
    pub reporter: Arc<dyn Reporter>,
    /// Becomes `true` on Ctrl-C.
    pub cancel: watch::Receiver<bool>,
    /// The stack file's folder (for properties naming files).
    pub base_dir: PathBuf,
    /// When a still-running step is first reported, then how often.
    pub progress_after: Duration,
    pub progress_every: Duration,
    /// `false` for `destroy --no-wait`: deletions AWS carries on with by themselves are
    /// recorded as pending instead of waited for.
    pub wait_for_deletion: bool,
    /// After Ctrl-C, how long steps in flight may go on before plinth stops waiting for them
    /// (a call that never answers, a wait of many minutes) and saves.
    pub cancel_grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// What apply did.
pub struct ApplyReport {
    pub state: State,
    pub results: Vec<StepResult>,
    pub interrupted: bool,
}

impl ApplyReport {
    pub fn failed(&self) -> Vec<&StepResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .collect()
    }
    pub fn count(&self, kinds: &[StepKind]) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Done) && kinds.contains(&r.kind))
            .count()
    }
    pub fn ok(&self) -> bool {
        !self.interrupted
            && self
                .results
                .iter()
                .all(|r| matches!(r.outcome, Outcome::Done))
    }
}

/// Runs the plan against the locked state.
pub async fn apply(req: ApplyRequest<'_>) -> Result<ApplyReport, EngineError> {
    let steps = steps::build(req.plan).map_err(EngineError::Internal)?;
    let live = Arc::new(Mutex::new(req.state.clone()));
    let mut run = Run {
        req: &req,
        steps: &steps,
        live: live.clone(),
        results: BTreeMap::new(),
    };
    run.record_stamps()?;
    let interrupted = run.execute().await?;
    let results = run.ordered_results();
    let mut state = lock(&live).clone();
    finish_state(&mut state, req.plan, &results, interrupted);
    req.store.write(&mut state)?;
    Ok(ApplyReport {
        state,
        results,
        interrupted,
    })
}

/// Sleeps until `at`, or forever when there is no `at`.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Run<'a> {
    req: &'a ApplyRequest<'a>,
    steps: &'a [Step],
    live: Arc<Mutex<State>>,
    results: BTreeMap<usize, StepResult>,
}

/// What a spawned step sends back.
struct Finished {
    index: usize,
    result: Result<StepOutput, ResourceError>,
    elapsed: Duration,
}

enum StepOutput {
    Observed(Observed),
    /// Gone, or (`Some(reason)`) accepted by AWS and still in progress.
    Deleted(Option<String>),
    Nothing,
}

impl Run<'_> {
    /// Records the environment's times before any resource is touched, so a killed run
    /// keeps the ones its resources were tagged with.
    fn record_stamps(&self) -> Result<(), EngineError> {
        if self.req.plan.mode != Mode::Apply {
            return Ok(());
        }
        let entry = JournalEntry::Expiry {
            expires_at: self.req.plan.expires_at.clone(),
            expires_after: self.req.plan.expires_after.clone(),
        };
        self.journal(&entry)?;
        // The planner refused a state whose resources are elsewhere: this is a first apply,
        // or one after a full destroy, and the state learns where its resources now go.
        if self.req.plan.account != lock(&self.live).account {
            let account = JournalEntry::Account {
                account: self.req.plan.account.clone(),
            };
            self.journal(&account)?;
        }
        // A plan saved by an older plinth has no creation time: keep the state's.
        if self.req.plan.created_at.is_none() {
            return Ok(());
        }
        let created = JournalEntry::Created {
            created_at: self.req.plan.created_at.clone(),
        };
        self.journal(&created)
    }

    fn journal(&self, entry: &JournalEntry) -> Result<(), EngineError> {
        self.req.store.record(entry)?;
        lock(&self.live).apply_entry(entry);
        Ok(())
    }

    /// The ready-set loop. Returns whether it was interrupted by Ctrl-C.
    async fn execute(&mut self) -> Result<bool, EngineError> {
        let n = self.steps.len();
        let mut waiting: Vec<usize> = self.steps.iter().map(|s| s.deps.len()).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, s) in self.steps.iter().enumerate() {
            for &d in &s.deps {
                dependents[d].push(i);
            }
        }
        let mut ready: VecDeque<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        let mut in_flight: JoinSet<Finished> = JoinSet::new();
        let mut running: BTreeSet<usize> = BTreeSet::new();
        let mut give_up_at: Option<tokio::time::Instant> = None;
        let mut cancel = self.req.cancel.clone();
        // Interrupted before anything started: start nothing.
        let mut interrupted = *cancel.borrow();
        let mut stopping = interrupted;
        // A dropped sender can never cancel; stop watching it rather than spin on it.
        let mut watching = !interrupted;
        loop {
            while !stopping && in_flight.len() < self.req.parallelism.max(1) {
                let Some(i) = ready.pop_front() else { break };
                match self.prepare(i) {
                    Ok(job) => {
                        self.req
                            .reporter
                            .started(&self.steps[i].name, self.steps[i].kind);
                        running.insert(i);
                        in_flight.spawn(job);
                    }
                    Err(err) => {
                        self.fail(i, err, &dependents);
                        stopping = true;
                    }
                }
            }
            if in_flight.is_empty() {
                break;
            }
            tokio::select! {
                joined = in_flight.join_next() => {
                    let Some(joined) = joined else { break };
                    let finished = joined.map_err(|e| EngineError::Internal(format!("a step panicked: {e}")))?;
                    let i = finished.index;
                    running.remove(&i);
                    match self.complete(finished) {
                        Ok(()) => {
                            for &d in &dependents[i] {
                                waiting[d] -= 1;
                                if waiting[d] == 0 && !self.results.contains_key(&d) {
                                    ready.push_back(d);
                                }
                            }
                        }
                        Err(err) => {
                            self.fail(i, err, &dependents);
                            stopping = true;
                        }
                    }
                }
                changed = cancel.changed(), if watching => {
                    match changed {
                        Ok(()) if *cancel.borrow() => {
                            interrupted = true;
                            stopping = true;
                            watching = false;
                            // No grace that long (`Duration::MAX`): wait for them all.
                            give_up_at = tokio::time::Instant::now().checked_add(self.req.cancel_grace);
                        }
                        Ok(()) => {}
                        Err(_) => watching = false,
                    }
                }
                _ = sleep_until_some(give_up_at) => {
                    in_flight.abort_all();
                    // A step may have finished just before it was aborted: record it.
                    while let Some(joined) = in_flight.join_next().await {
                        if let Ok(finished) = joined {
                            let i = finished.index;
                            running.remove(&i);
                            if let Err(err) = self.complete(finished) {
                                self.fail(i, err, &dependents);
                            }
                        }
                    }
                    for i in std::mem::take(&mut running) {
                        self.abandon(i);
                    }
                    break;
                }
            }
        }
        for i in 0..n {
            self.results.entry(i).or_insert_with(|| StepResult {
                name: self.steps[i].name.clone(),
                kind: self.steps[i].kind,
                outcome: Outcome::NotStarted,
                elapsed: Duration::ZERO,
            });
        }
        Ok(interrupted)
    }

    /// Records a step plinth stopped waiting for after Ctrl-C.
    fn abandon(&mut self, i: usize) {
        let result = StepResult {
            name: self.steps[i].name.clone(),
            kind: self.steps[i].kind,
            outcome: Outcome::Abandoned,
            elapsed: Duration::ZERO,
        };
        self.req.reporter.finished(&result, None);
        self.results.insert(i, result);
    }

    /// Marks a failed step and every step downstream of it as skipped because of it.
    fn fail(&mut self, i: usize, err: ResourceError, dependents: &[Vec<usize>]) {
        let elapsed = self.results.get(&i).map(|r| r.elapsed).unwrap_or_default();
        let result = StepResult {
            name: self.steps[i].name.clone(),
            kind: self.steps[i].kind,
            outcome: Outcome::Failed(err),
            elapsed,
        };
        self.req.reporter.finished(&result, None);
        self.results.insert(i, result);
        let mut todo: Vec<usize> = dependents[i].clone();
        let mut seen = BTreeSet::new();
        while let Some(d) = todo.pop() {
            if !seen.insert(d) || self.results.contains_key(&d) {
                continue;
            }
            self.results.insert(
                d,
                StepResult {
                    name: self.steps[d].name.clone(),
                    kind: self.steps[d].kind,
                    outcome: Outcome::Skipped {
                        because: self.steps[i].name.clone(),
                    },
                    elapsed: Duration::ZERO,
                },
            );
            todo.extend(dependents[d].iter().copied());
        }
    }

    fn change(&self, i: usize) -> Result<&ResourceChange, ResourceError> {
        self.req.plan.change(&self.steps[i].name).ok_or_else(|| {
            ResourceError::other(format!("no planned change for `{}`", self.steps[i].name))
        })
    }

    fn rt(&self, change: &ResourceChange) -> Result<Arc<dyn ResourceType>, ResourceError> {
        self.req
            .registry
            .get(&change.type_name)
            .cloned()
            .ok_or_else(|| {
                ResourceError::invalid(format!("unknown resource type `{}`", change.type_name))
            })
    }

    /// Resolves a step's inputs against the live state and journals a create's intent;
    /// returns the operation to spawn.
    fn prepare(
        &mut self,
        i: usize,
    ) -> Result<impl std::future::Future<Output = Finished> + Send + 'static, ResourceError> {
        let step = self.steps[i].clone();
        let change = self.change(i)?.clone();
        let rt = self.rt(&change)?;
        let timeouts = change.lifecycle.timeouts;
        let limit = match step.kind {
            StepKind::Create => timeouts.create,
            StepKind::Delete => timeouts.delete,
            _ => timeouts.update,
        };
        let progress = Arc::new(LatestStatus::default());
        // A delete acts where the resource is (a replacement may move it to another region).
        let region = match step.kind {
            StepKind::Delete => lock(&self.live)
                .resources
                .get(&state_name(&step))
                .map(|r| r.region.clone())
                .unwrap_or_else(|| change.region.clone()),
            _ => change.region.clone(),
        };
        let mut ctx = OpContext::new(region, change.name.clone())
            .with_environment(&self.req.plan.stack, &self.req.plan.workspace)
            .with_deadline(limit)
            .with_progress(progress.clone())
            .with_base_dir(self.req.base_dir.clone());
        // Only a plain delete may be left running: a replacement needs the old one gone.
        if step.kind == StepKind::Delete
            && change.action == Action::Delete
            && !self.req.wait_for_deletion
        {
            ctx = ctx.without_waiting_for_deletion();
        }
        let op = self.operation(&step, &change, rt)?;
        let reporter = self.req.reporter.clone();
        let (after, every) = (self.req.progress_after, self.req.progress_every);
        Ok(async move {
            let started = Instant::now();
            let notices = ctx.clone();
            let work = op.run(ctx);
            tokio::pin!(work);
            let mut next_report = after;
            let result = loop {
                tokio::select! {
                    r = &mut work => break r,
                    _ = tokio::time::sleep_until((started + next_report).into()) => {
                        let status = progress.get();
                        reporter.still_running(&step.name, step.kind, started.elapsed(), status.as_deref());
                        next_report += every;
                    }
                }
            };
            for message in notices.notices() {
                reporter.notice(&step.name, &message);
            }
            Finished {
                index: i,
                result,
                elapsed: started.elapsed(),
            }
        })
    }

    fn operation(
        &mut self,
        step: &Step,
        change: &ResourceChange,
        rt: Arc<dyn ResourceType>,
    ) -> Result<Operation, ResourceError> {
        let id = change.id.clone().unwrap_or_default();
        let before = change.before.clone().unwrap_or_default();
        Ok(match step.kind {
            StepKind::Create => {
                let props = self.desired(change, rt.as_ref(), true)?;
                // A create an earlier run sent and never saw answered is sent again with the
                // same token, so AWS can tell it is the same create.
                let token = lock(&self.live)
                    .resources
                    .get(&change.name)
                    .filter(|r| r.status == Status::Creating)
                    .and_then(|r| r.create_token.clone())
                    .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
                let intent = ResourceState {
                    type_name: change.type_name.clone(),
                    region: change.region.clone(),
                    id: String::new(),
                    status: Status::Creating,
                    props: props.clone(),
                    attrs: Props::new(),
                    deps: change.deps.clone(),
                    soft_deps: change.soft_deps.clone(),
                    lifecycle: change.lifecycle.clone(),
                    changed_at: None,
                    create_token: Some(token.clone()),
                };
                self.journal_intent(change, intent)
                    .map_err(|e| ResourceError::other(e.to_string()))?;
                Operation::Create { rt, props, token }
            }
            StepKind::Update => {
                let mut props = self.desired(change, rt.as_ref(), true)?;
                keep_actual(
                    rt.schema(),
                    &mut props,
                    &before,
                    &change.lifecycle.ignore_changes,
                );
                Operation::Update {
                    rt,
                    id,
                    before,
                    after: props,
                }
            }
            StepKind::CompleteDeferred => {
                let current = lock(&self.live).resources.get(&change.name).cloned();
                let current = current.ok_or_else(|| {
                    ResourceError::other(format!("`{}` is not in state", change.name))
                })?;
                let mut props = self.desired(change, rt.as_ref(), false)?;
                keep_actual(
                    rt.schema(),
                    &mut props,
                    &current.props,
                    &change.lifecycle.ignore_changes,
                );
                Operation::Update {
                    rt,
                    id: current.id,
                    before: current.props,
                    after: props,
                }
            }
            StepKind::Delete => Operation::Delete {
                rt,
                id,
                props: before,
            },
            StepKind::Read => {
                let props = self.desired(change, rt.as_ref(), false)?;
                Operation::Read { rt, props }
            }
            StepKind::Adopt | StepKind::Forget => Operation::Nothing,
        })
    }

    /// Journals that a create is about to be sent, so that a run killed before its answer is
    /// recorded adopts what it made instead of making it twice. The new half of a
    /// create-before-destroy replacement takes the name at once; the old one waits under its
    /// deposed name for its deletion (and stays there if the create fails, as after a kill:
    /// the next run finds or creates the new one and deletes the old).
    fn journal_intent(
        &mut self,
        change: &ResourceChange,
        intent: ResourceState,
    ) -> Result<(), EngineError> {
        let name = change.name.clone();
        if !(change.action == Action::Replace && change.creates_first()) {
            return self.journal(&JournalEntry::Begin {
                name,
                resource: intent,
            });
        }
        let old = lock(&self.live).resources.get(&name).cloned();
        if let Some(old) = old.filter(|old| old.status != Status::Creating) {
            self.journal(&JournalEntry::Put {
                name: deposed_name(&name),
                resource: old,
            })?;
        }
        self.journal(&JournalEntry::Put {
            name,
            resource: intent,
        })
    }

    /// The change's properties resolved against what exists now. With `withhold`, elements
    /// of deferrable lists that refer to not-yet-created deferred targets are left for the
    /// second step.
    fn desired(
        &self,
        change: &ResourceChange,
        rt: &dyn ResourceType,
        withhold: bool,
    ) -> Result<Props, ResourceError> {
        let Some(template) = &change.template else {
            let mut props = change.after.clone().unwrap_or_default();
            props.extend(change.resolved.clone());
            return Ok(props);
        };
        let mut template = template.clone();
        if withhold {
            let pending: BTreeSet<String> = steps::split_targets(change, self.req.plan)
                .into_iter()
                .filter(|t| !self.done_for(t))
                .collect();
            if !pending.is_empty() {
                tracing::debug!(resource = %change.name, ?pending, "leaving references to these for a second step");
                withhold_deferred(&mut template, rt.schema(), &pending);
            }
        }
        let state = lock(&self.live).clone();
        let value = template.eval(&|r| resolve_live(&state, r));
        let mut props = match value {
            Value::Object(m) => m,
            _ => Props::new(),
        };
        // A name given by its prefix: the state's, or the one the plan generated.
        let prior = state.resources.get(&change.name).map(|r| &r.props);
        let prefixed = crate::plan::name_prefix::take(rt.schema(), &mut props, prior)
            .map_err(ResourceError::invalid)?;
        for p in prefixed {
            if let Some(name) = change.resolved.get(p.prop) {
                props.insert(p.prop.to_string(), name.clone());
            }
        }
        if value::contains_unknown(&Value::Object(props.clone())) {
            return Err(ResourceError::other("a referenced value is still unknown at apply time (its resource failed or was not applied)"));
        }
        rt.normalize(
            &mut props,
            &NormalizeContext {
                base_dir: self.req.base_dir.clone(),
            },
        )?;
        // What the plan looked up (an AMI, a zone) is applied as planned, not looked up again.
        for (key, value) in &change.resolved {
            props.insert(key.clone(), value.clone());
        }
        Ok(props)
    }

    /// Whether the target's planned create/replace (if any) has completed in this run.
    fn done_for(&self, target: &str) -> bool {
        let planned = self.req.plan.change(target).map(|c| c.action);
        if !matches!(planned, Some(Action::Create | Action::Replace)) {
            return true;
        }
        self.steps.iter().enumerate().any(|(i, s)| {
            s.name == target
                && s.kind == StepKind::Create
                && matches!(
                    self.results.get(&i).map(|r| &r.outcome),
                    Some(Outcome::Done)
                )
        })
    }

    /// Records a finished step in the journal and the live state.
    fn complete(&mut self, finished: Finished) -> Result<(), ResourceError> {
        let i = finished.index;
        let step = &self.steps[i];
        let change = self.change(i)?.clone();
        let output = match finished.result {
            Ok(o) => o,
            Err(err) => {
                self.results.insert(
                    i,
                    StepResult {
                        name: step.name.clone(),
                        kind: step.kind,
                        outcome: Outcome::Failed(err.clone()),
                        elapsed: finished.elapsed,
                    },
                );
                return Err(err);
            }
        };
        let pending = match &output {
            StepOutput::Deleted(Some(reason)) => Some(reason.clone()),
            _ => None,
        };
        let entries = self.entries_for(step, &change, output);
        for entry in &entries {
            self.journal(entry).map_err(|e| {
                ResourceError::other(format!(
                    "could not record the result in the state journal: {e}"
                ))
            })?;
        }
        let id = lock(&self.live)
            .resources
            .get(&step.name)
            .map(|r| r.id.clone());
        let result = StepResult {
            name: step.name.clone(),
            kind: step.kind,
            outcome: Outcome::Done,
            elapsed: finished.elapsed,
        };
        match &pending {
            Some(reason) => self.req.reporter.deletion_pending(&result, reason),
            None => self.req.reporter.finished(&result, id.as_deref()),
        }
        self.results.insert(i, result);
        Ok(())
    }

    fn entries_for(
        &self,
        step: &Step,
        change: &ResourceChange,
        output: StepOutput,
    ) -> Vec<JournalEntry> {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let record = |o: Observed| ResourceState {
            type_name: change.type_name.clone(),
            region: change.region.clone(),
            id: o.id,
            status: Status::Ready,
            props: o.props,
            attrs: o.attrs,
            deps: change.deps.clone(),
            soft_deps: change.soft_deps.clone(),
            lifecycle: change.lifecycle.clone(),
            changed_at: Some(now.clone()),
            create_token: None,
        };
        match (step.kind, output) {
            (StepKind::Delete, StepOutput::Deleted(Some(reason))) => {
                // AWS finishes (or refused for now) the deletion: the entry stays, saying so.
                let name = state_name(step);
                let Some(mut resource) = lock(&self.live).resources.get(&name).cloned() else {
                    return Vec::new();
                };
                let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                resource.status = Status::PendingDelete {
                    reason,
                    since: since.to_string(),
                };
                vec![JournalEntry::Put { name, resource }]
            }
            (StepKind::Delete, _) if step.deposed => vec![JournalEntry::Remove {
                name: deposed_name(&change.name),
            }],
            (StepKind::Delete | StepKind::Forget, _) => vec![JournalEntry::Remove {
                name: change.name.clone(),
            }],
            (StepKind::Adopt, _) => vec![JournalEntry::Put {
                name: change.name.clone(),
                resource: record(Observed {
                    id: change.id.clone().unwrap_or_default(),
                    props: change.before.clone().unwrap_or_default(),
                    attrs: change.attrs.clone(),
                }),
            }],
            (_, StepOutput::Observed(o)) => vec![JournalEntry::Put {
                name: change.name.clone(),
                resource: record(o),
            }],
            (_, StepOutput::Deleted(_) | StepOutput::Nothing) => Vec::new(),
        }
    }

    fn ordered_results(&self) -> Vec<StepResult> {
        self.results.values().cloned().collect()
    }
}

/// The state entry a step works on: the old half of a create-before-destroy replacement
/// waits under its deposed name.
fn state_name(step: &Step) -> String {
    if step.deposed {
        deposed_name(&step.name)
    } else {
        step.name.clone()
    }
}

/// Where the old half of a create-before-destroy replacement waits for its deletion.
pub fn deposed_name(name: &str) -> String {
    format!("{name}{DEPOSED_SUFFIX}")
}

pub(crate) const DEPOSED_SUFFIX: &str = "#deposed";

/// One operation, owned so it can run on its own task.
enum Operation {
    Create {
        rt: Arc<dyn ResourceType>,
        props: Props,
        /// The idempotency token the create is sent with.
        token: String,
    },
    Update {
        rt: Arc<dyn ResourceType>,
        id: String,
        before: Props,
        after: Props,
    },
    Delete {
        rt: Arc<dyn ResourceType>,
        id: String,
        props: Props,
    },
    Read {
        rt: Arc<dyn ResourceType>,
        props: Props,
    },
    Nothing,
}

impl Operation {
    async fn run(self, ctx: OpContext) -> Result<StepOutput, ResourceError> {
        match self {
            Operation::Create { rt, props, token } => {
                let ctx = ctx.with_create_token(token);
                rt.create(&ctx, &props).await.map(StepOutput::Observed)
            }
            Operation::Update {
                rt,
                id,
                before,
                after,
            } => rt
                .update(&ctx, &id, &before, &after)
                .await
                .map(StepOutput::Observed),
            Operation::Delete { rt, id, props } => {
                rt.delete(&ctx, &id, &props).await?;
                Ok(StepOutput::Deleted(ctx.pending_deletion()))
            }
            Operation::Read { rt, props } => {
                rt.lookup(&ctx, &props).await.map(StepOutput::Observed)
            }
            Operation::Nothing => Ok(StepOutput::Nothing),
        }
    }
}

/// Keeps the most recent status a resource type reported, for progress lines.
#[derive(Default)]
struct LatestStatus(Mutex<Option<String>>);

impl LatestStatus {
    fn get(&self) -> Option<String> {
        lock(&self.0).clone()
    }
}

impl Progress for LatestStatus {
    fn status(&self, message: &str) {
        *lock(&self.0) = Some(message.to_string());
    }
}

fn resolve_live(state: &State, r: &expr::Ref) -> Value {
    let Target::Resource {
        resource,
        attr,
        path,
    } = &r.target
    else {
        return value::unknown();
    };
    let Some(rs) = state.resources.get(resource) else {
        return value::unknown();
    };
    if rs.status != Status::Ready {
        return value::unknown();
    }
    expr::attribute(&rs.attrs, attr, path)
}

/// Drops elements of deferrable list properties that refer to `pending` resources.
fn withhold_deferred(template: &mut SpannedExpr, schema: &TypeSchema, pending: &BTreeSet<String>) {
    let Expr::Map(entries) = &mut template.expr else {
        return;
    };
    for (key, value) in entries.iter_mut() {
        if !schema.prop(key).is_some_and(|p| p.deferrable) {
            continue;
        }
        if let Expr::List(items) = &mut value.expr {
            items.retain(|item| {
                !item.refs().iter().any(|r| matches!(&r.target, Target::Resource { resource, .. } if pending.contains(resource)))
            });
        }
    }
}

/// Outputs, dependency lists of unchanged resources and the expiry, once the steps are done.
fn finish_state(state: &mut State, plan: &Plan, results: &[StepResult], interrupted: bool) {
    for change in plan.resources.iter().filter(|c| c.action == Action::NoOp) {
        if let Some(rs) = state.resources.get_mut(&change.name) {
            rs.deps = change.deps.clone();
            rs.soft_deps = change.soft_deps.clone();
            rs.lifecycle = change.lifecycle.clone();
        }
    }
    let all_done = !interrupted && results.iter().all(|r| matches!(r.outcome, Outcome::Done));
    if !all_done {
        return;
    }
    let mut outputs = BTreeMap::new();
    for o in plan.outputs.iter().filter(|o| o.action != Action::Delete) {
        let Some(template) = &o.template else {
            continue;
        };
        let value = template.eval(&|r| resolve_live(state, r));
        if value::contains_unknown(&value) {
            // It refers to something this run did not apply (a `--target` run): keep the
            // last known value, never the unknown sentinel.
            if let Some(previous) = state.outputs.get(&o.name) {
                outputs.insert(o.name.clone(), previous.clone());
            }
            continue;
        }
        outputs.insert(
            o.name.clone(),
            OutputState {
                value,
                sensitive: o.sensitive,
                description: o.description.clone(),
            },
        );
    }
    state.outputs = outputs;
    if plan.mode == Mode::Destroy && state.resources.is_empty() {
        state.expires_at = None;
        state.expires_after = None;
        state.created_at = None;
    }
}
