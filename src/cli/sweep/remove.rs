//! How `sweep` removes an environment: through its state when one is in view (the normal
//! destroy), and by type, in a fixed teardown order, for what no state knows.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anstyle::AnsiColor;
use futures::stream::{self, StreamExt};
use plinth_aws::sweep::teardown_rank;
use plinth_core::engine::{self, ApplyRequest};
use plinth_core::graph::DepGraph;
use plinth_core::plan::{self, render, Mode, PlanError, PlanRequest};
use plinth_core::resource::{ErrorKind, Observed, OpContext, Registry, ResourceError};
use plinth_core::stack::Stack;
use plinth_core::state::Status;
use plinth_core::teardown::{TaggedResource, RESOURCE_TAG};
use plinth_core::value::Props;
use serde_json::Value;
use tokio::sync::watch;

use super::InView;
use crate::cli::ui::{short_duration, LineReporter};
use crate::cli::Ui;

/// A resource no state knows, as its type sees it.
pub struct Orphan {
    pub resource: TaggedResource,
    pub target: Target,
}

/// What an orphan's ARN names.
pub enum Target {
    /// No type of plinth's recognises the ARN: it cannot be swept.
    Unknown,
    Known {
        type_name: &'static str,
        id: String,
        found: Found,
    },
}

/// What reading an orphan found.
pub enum Found {
    Exists(Box<Observed>),
    Gone,
    ReadFailed(ResourceError),
}

impl Orphan {
    pub fn type_name(&self) -> &str {
        match &self.target {
            Target::Known { type_name, .. } => type_name,
            Target::Unknown => "?",
        }
    }
    /// Its logical name in the stack, or its id, for progress lines.
    pub fn label(&self) -> String {
        match (&self.target, self.resource.tag(RESOURCE_TAG)) {
            (_, Some(name)) => name.to_string(),
            (Target::Known { id, .. }, None) => id.clone(),
            (Target::Unknown, None) => self.resource.arn.clone(),
        }
    }
    /// Its read found nothing: deleted since the tagging API indexed it.
    pub fn is_gone(&self) -> bool {
        matches!(
            self.target,
            Target::Known {
                found: Found::Gone,
                ..
            }
        )
    }
    fn rank(&self) -> usize {
        teardown_rank(self.type_name())
    }
    /// Whether what was read of it names `arn` as a part of it.
    fn contains(&self, arn: &str) -> bool {
        match &self.target {
            Target::Known {
                found: Found::Exists(observed),
                ..
            } => self.resource.arn != arn && plinth_core::teardown::names(&observed.attrs, arn),
            _ => false,
        }
    }
}

/// Maps each resource to its type and id and reads it, `parallelism` at a time.
pub async fn inspect(
    registry: &Registry,
    resources: Vec<TaggedResource>,
    parallelism: usize,
) -> Vec<Orphan> {
    let mut orphans: Vec<Orphan> = stream::iter(resources)
        .map(|resource| inspect_one(registry, resource))
        .buffered(parallelism.max(1))
        .collect()
        .await;
    orphans.sort_by_key(Orphan::rank);
    orphans
}

async fn inspect_one(registry: &Registry, resource: TaggedResource) -> Orphan {
    let resolved = registry
        .resolve_arn(&resource.arn)
        .and_then(|(type_name, id)| registry.get(type_name).map(|rt| (type_name, id, rt)));
    let Some((type_name, id, rt)) = resolved else {
        return Orphan {
            resource,
            target: Target::Unknown,
        };
    };
    let ctx = OpContext::new(resource.region.clone(), id.clone());
    let found = match rt.read(&ctx, &id, &Props::new()).await {
        Ok(Some(observed)) => Found::Exists(Box::new(observed)),
        Ok(None) => Found::Gone,
        Err(e) if e.kind == ErrorKind::NotFound => Found::Gone,
        Err(e) => Found::ReadFailed(e),
    };
    Orphan {
        resource,
        target: Target::Known {
            type_name,
            id,
            found,
        },
    }
}

/// The orphan `part` is a part of (a replication group, for its member clusters), if any.
pub fn whole_of<'a>(orphans: &'a [Orphan], part: &Orphan) -> Option<&'a Orphan> {
    orphans.iter().find(|o| o.contains(&part.resource.arn))
}

/// How removing one thing ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// AWS accepted the deletion and carries it out later (Lambda@Edge replicas).
    Pending(String),
    Failed(String),
}

/// Deletes orphans in the teardown order; within one step of the order, `parallelism` at
/// a time. Returns one outcome per orphan, in the order given.
pub async fn delete_orphans(
    registry: &Registry,
    env: &str,
    orphans: &[Orphan],
    parallelism: usize,
    ui: &Ui,
) -> Vec<Removal> {
    let mut outcomes: Vec<Option<Removal>> = vec![None; orphans.len()];
    // A part of another orphan (a replication group's member cluster, tagged with the
    // group's tags) goes with it: deleting it alone is refused.
    for (i, orphan) in orphans.iter().enumerate() {
        if let Some(whole) = whole_of(orphans, orphan) {
            ui.out(&format!(
                "{env} {} ({}): goes with {}",
                orphan.label(),
                orphan.type_name(),
                whole.label()
            ));
            outcomes[i] = Some(Removal::Removed);
        }
    }
    let mut ranks: Vec<usize> = orphans.iter().map(Orphan::rank).collect();
    ranks.sort_unstable();
    ranks.dedup();
    for rank in ranks {
        let step: Vec<usize> = (0..orphans.len())
            .filter(|&i| orphans[i].rank() == rank && outcomes[i].is_none())
            .collect();
        let done: Vec<(usize, Removal)> = stream::iter(step)
            .map(|i| async move { (i, delete_orphan(registry, env, &orphans[i], ui).await) })
            .buffer_unordered(parallelism.max(1))
            .collect()
            .await;
        for (i, removal) in done {
            outcomes[i] = Some(removal);
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Removal::Failed("not attempted".into())))
        .collect()
}

async fn delete_orphan(registry: &Registry, env: &str, orphan: &Orphan, ui: &Ui) -> Removal {
    let label = format!("{env} {} ({})", orphan.label(), orphan.type_name());
    let (type_name, id, observed) = match &orphan.target {
        Target::Unknown => {
            let why = "no type of plinth's has this ARN, so sweep cannot delete it";
            ui.err(&format!("{label}: {why}: {}", orphan.resource.arn));
            return Removal::Failed(why.into());
        }
        Target::Known {
            found: Found::Gone, ..
        } => {
            ui.out(&format!("{label}: already gone"));
            return Removal::Removed;
        }
        Target::Known {
            found: Found::ReadFailed(e),
            ..
        } => {
            ui.err(&format!("{label}: reading it failed: {e}"));
            return Removal::Failed(format!("reading it failed: {e}"));
        }
        Target::Known {
            type_name,
            id,
            found: Found::Exists(observed),
        } => (*type_name, id, observed),
    };
    let Some(rt) = registry.get(type_name) else {
        return Removal::Failed(format!("this plinth does not know {type_name}"));
    };
    ui.out(&format!("{}: Destroying…", ui.bold(&label)));
    let ctx = OpContext::new(orphan.resource.region.clone(), orphan.label());
    let props = emptied(registry, type_name, observed.props.clone());
    let started = Instant::now();
    match rt.delete(&ctx, id, &props).await {
        Ok(()) => match ctx.pending_deletion() {
            Some(reason) => {
                ui.out(&format!(
                    "{}: Deletion accepted after {}; AWS is still carrying it out: {reason}",
                    ui.bold(&label),
                    short_duration(started.elapsed())
                ));
                Removal::Pending(reason)
            }
            None => {
                ui.out(&format!(
                    "{}: Destruction complete after {}",
                    ui.bold(&label),
                    short_duration(started.elapsed())
                ));
                Removal::Removed
            }
        },
        Err(e) => {
            ui.err(&format!(
                "{}: Destruction failed after {}: {e}",
                ui.bold(&label),
                short_duration(started.elapsed())
            ));
            Removal::Failed(e.to_string())
        }
    }
}

/// Sweeping means nothing stays: a type that keeps its contents unless told otherwise
/// (`force_destroy`, a bucket's objects) is told to take them along.
fn emptied(registry: &Registry, type_name: &str, mut props: Props) -> Props {
    let has_force_destroy = registry
        .schema(type_name)
        .is_some_and(|s| s.properties.iter().any(|p| p.name == "force_destroy"));
    if has_force_destroy {
        props.insert("force_destroy".into(), Value::Bool(true));
    }
    props
}

/// Destroys everything an environment's state records, as `plinth destroy` would without
/// the stack file: a destroy plan, then the engine (reverse dependency order, waits,
/// pending deletions recorded). `prevent_destroy` refuses it, as it refuses a destroy.
/// `registry` works in `account` (`caller`'s own, or a student's): the planner refuses a
/// state whose resources are elsewhere.
pub async fn destroy_through_state(
    registry: &Registry,
    (account, caller): (&str, &str),
    in_view: &InView,
    parallelism: usize,
    ui: &Ui,
) -> Removal {
    match try_destroy_through_state(registry, (account, caller), in_view, parallelism, ui).await {
        Ok(removal) => removal,
        Err(message) => {
            ui.err(&format!(
                "{}: {message}",
                ui.colored(AnsiColor::Red, "error")
            ));
            Removal::Failed(message)
        }
    }
}

async fn try_destroy_through_state(
    registry: &Registry,
    (account, caller): (&str, &str),
    in_view: &InView,
    parallelism: usize,
    ui: &Ui,
) -> Result<Removal, String> {
    let (name, workspace) = (&in_view.state.stack, &in_view.state.workspace);
    let mut stack = Stack::declaring_nothing(
        std::path::Path::new(&in_view.store.location()),
        name,
        workspace,
    );
    stack.account = Some(account.to_string());
    stack.caller_account = Some(caller.to_string());
    let graph = DepGraph::build(&stack, registry).map_err(|d| d.to_string())?;
    let (locked, state) = in_view
        .store
        .lock_and_read(name, workspace, "plinth sweep")
        .map_err(|e| e.to_string())?;
    let request = PlanRequest {
        stack: &stack,
        graph: &graph,
        state: &state,
        registry,
        mode: Mode::Destroy,
        targets: Vec::new(),
        parallelism,
        now: SystemTime::now(),
    };
    let plan = match plan::make_plan(request).await {
        Ok(plan) => plan,
        Err(e @ PlanError::PreventDestroy(_)) => {
            return Err(format!("{name}/{workspace} was not destroyed: {e}"))
        }
        Err(e) => return Err(format!("planning the destroy of {name}/{workspace}: {e}")),
    };
    ui.out_raw(&render::render_at(&plan, registry, ui.draw()));
    ui.out("");
    // Nobody cancels a sweep half way: Ctrl-C ends the process, and the journal keeps
    // every operation that finished.
    let (_cancel, never) = watch::channel(false);
    let report = engine::apply(ApplyRequest {
        plan: &plan,
        registry,
        store: &*locked,
        state,
        parallelism: parallelism.max(1),
        reporter: Arc::new(LineReporter { ui: ui.clone() }),
        cancel: never,
        base_dir: in_view.base_dir.clone(),
        progress_after: Duration::from_secs(2),
        progress_every: Duration::from_secs(10),
        wait_for_deletion: true,
        cancel_grace: Duration::MAX,
    })
    .await
    .map_err(|e| e.to_string())?;
    if !report.ok() {
        let failed: Vec<String> = report.failed().iter().map(|r| r.name.clone()).collect();
        return Err(format!(
            "destroying {name}/{workspace} failed for {}; its state records what is left",
            failed.join(", ")
        ));
    }
    let pending: Vec<String> = report
        .state
        .resources
        .iter()
        .filter_map(|(n, r)| match &r.status {
            Status::PendingDelete { reason, .. } => Some(format!("{n}: {reason}")),
            _ => None,
        })
        .collect();
    Ok(if pending.is_empty() {
        Removal::Removed
    } else {
        Removal::Pending(pending.join("; "))
    })
}
