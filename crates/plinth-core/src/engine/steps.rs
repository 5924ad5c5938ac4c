//! A plan as a graph of steps: each step is one operation on one resource, with the steps
//! it must wait for.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::toposort;
use petgraph::graph::DiGraph;

use crate::plan::{Action, Plan, ResourceChange};

/// One operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StepKind {
    Create,
    Update,
    /// The second step of a resource whose references close a cycle.
    CompleteDeferred,
    Delete,
    /// A lookup.
    Read,
    /// Record a resource an interrupted run created.
    Adopt,
    /// Drop a resource that is already gone from state.
    Forget,
}

impl StepKind {
    pub fn verb(self) -> &'static str {
        match self {
            StepKind::Create => "creating",
            StepKind::Update | StepKind::CompleteDeferred => "updating",
            StepKind::Delete => "destroying",
            StepKind::Read => "reading",
            StepKind::Adopt => "adopting",
            StepKind::Forget => "forgetting",
        }
    }
    pub fn past(self) -> &'static str {
        match self {
            StepKind::Create => "created",
            StepKind::Update | StepKind::CompleteDeferred => "updated",
            StepKind::Delete => "destroyed",
            StepKind::Read => "read",
            StepKind::Adopt => "adopted",
            StepKind::Forget => "forgotten",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub kind: StepKind,
    /// Indexes of the steps this one waits for.
    pub deps: Vec<usize>,
    /// For the delete half of a create-before-destroy replacement: the old resource.
    pub deposed: bool,
}

/// The steps of a plan in a valid order; `Err` names a cycle (a planner bug, never input).
pub fn build(plan: &Plan) -> Result<Vec<Step>, String> {
    let by_name = plan.by_name();
    let mut steps: Vec<Step> = Vec::new();
    let mut index: BTreeMap<(String, StepKind), usize> = BTreeMap::new();
    let mut add = |steps: &mut Vec<Step>, name: &str, kind: StepKind, deposed: bool| {
        index.insert((name.to_string(), kind), steps.len());
        steps.push(Step {
            name: name.to_string(),
            kind,
            deps: Vec::new(),
            deposed,
        });
    };
    for r in &plan.resources {
        match r.action {
            Action::NoOp if r.adopted == Some(true) => {
                add(&mut steps, &r.name, StepKind::Adopt, false)
            }
            Action::NoOp => {}
            Action::Read => add(&mut steps, &r.name, StepKind::Read, false),
            Action::Create => add(&mut steps, &r.name, StepKind::Create, false),
            Action::Update => add(&mut steps, &r.name, StepKind::Update, false),
            Action::Replace => {
                add(&mut steps, &r.name, StepKind::Delete, r.creates_first());
                add(&mut steps, &r.name, StepKind::Create, false);
            }
            Action::Delete if r.adopted == Some(false) => {
                add(&mut steps, &r.name, StepKind::Forget, false)
            }
            Action::Delete => add(&mut steps, &r.name, StepKind::Delete, false),
        }
        if needs_deferred_step(r, plan) {
            add(&mut steps, &r.name, StepKind::CompleteDeferred, false);
        }
    }
    let find = |name: &str, kind: StepKind| index.get(&(name.to_string(), kind)).copied();
    let producer = |name: &str| {
        [
            StepKind::Create,
            StepKind::Update,
            StepKind::Read,
            StepKind::Adopt,
        ]
        .into_iter()
        .find_map(|k| find(name, k))
    };
    let deps: Vec<Vec<usize>> = steps
        .iter()
        .map(|s| match by_name.get(s.name.as_str()) {
            Some(r) => step_deps(s, r, plan, &find, &producer),
            None => Vec::new(),
        })
        .collect();
    for (step, deps) in steps.iter_mut().zip(deps) {
        step.deps = deps;
    }
    check_acyclic(&steps)?;
    Ok(steps)
}

/// Targets whose references `r` applies in a second step:
/// - deferred references (they close a cycle) to something that does not exist yet, and
/// - references in deferrable properties to something replaced delete-first: the old one
///   cannot be deleted while `r` still refers to it (AWS answers DependencyViolation), so
///   `r` first lets go of it, and refers to the new one once it exists.
pub fn split_targets(r: &ResourceChange, plan: &Plan) -> BTreeSet<String> {
    if !matches!(r.action, Action::Create | Action::Update | Action::Replace) {
        return BTreeSet::new();
    }
    let action_of = |t: &str| plan.change(t).map(|c| (c.action, c.creates_first()));
    let deferred = r
        .deferred
        .iter()
        .filter(|t| matches!(action_of(t), Some((Action::Create | Action::Replace, _))));
    let replaced = r
        .soft_deps
        .iter()
        .filter(|t| matches!(action_of(t), Some((Action::Replace, false))));
    deferred.chain(replaced).cloned().collect()
}

fn needs_deferred_step(r: &ResourceChange, plan: &Plan) -> bool {
    !split_targets(r, plan).is_empty()
}

fn step_deps(
    step: &Step,
    r: &ResourceChange,
    plan: &Plan,
    find: &dyn Fn(&str, StepKind) -> Option<usize>,
    producer: &dyn Fn(&str) -> Option<usize>,
) -> Vec<usize> {
    let mut deps = Vec::new();
    let cbd = r.creates_first();
    let split = split_targets(r, plan);
    match step.kind {
        StepKind::Create | StepKind::Update | StepKind::Read => {
            deps.extend(
                r.deps
                    .iter()
                    .filter(|d| !split.contains(*d))
                    .filter_map(|d| producer(d)),
            );
            if step.kind == StepKind::Create && r.action == Action::Replace && !cbd {
                deps.extend(find(&r.name, StepKind::Delete));
            }
        }
        StepKind::CompleteDeferred => {
            deps.extend(producer(&r.name));
            deps.extend(split.iter().filter_map(|d| producer(d)));
        }
        StepKind::Delete => {
            if r.action == Action::Replace && cbd {
                deps.extend(find(&r.name, StepKind::Create));
            }
            // The old half of a create-before-destroy replacement an earlier run left: it goes
            // once its successor exists and whoever referred to it has moved on.
            if let Some(base) = r.name.strip_suffix(super::DEPOSED_SUFFIX) {
                deps.extend(producer(base));
                for other in plan.resources.iter().filter(|o| {
                    o.prior_deps.iter().any(|d| d == base)
                        || o.prior_soft_deps.iter().any(|d| d == base)
                }) {
                    deps.extend(find(&other.name, StepKind::Update));
                    deps.extend(find(&other.name, StepKind::CompleteDeferred));
                    deps.extend(find(&other.name, StepKind::Create));
                }
            }
            let outright = r.action == Action::Delete || cbd;
            for other in &plan.resources {
                if other.name == r.name {
                    continue;
                }
                let hard = other.prior_deps.contains(&r.name);
                let soft = other.prior_soft_deps.contains(&r.name);
                if hard {
                    deps.extend(find(&other.name, StepKind::Delete));
                }
                // Whoever stops referring to this resource does so before it goes.
                if soft && split_targets(other, plan).contains(&r.name) {
                    deps.extend(find(&other.name, StepKind::Update));
                    deps.extend(find(&other.name, StepKind::Create));
                }
                if outright && (hard || soft) {
                    deps.extend(find(&other.name, StepKind::Update));
                    deps.extend(find(&other.name, StepKind::CompleteDeferred));
                    if other.action == Action::Replace {
                        deps.extend(find(&other.name, StepKind::Create));
                    }
                }
            }
        }
        StepKind::Adopt | StepKind::Forget => {}
    }
    deps.sort_unstable();
    deps.dedup();
    deps
}

fn check_acyclic(steps: &[Step]) -> Result<(), String> {
    let mut g = DiGraph::<usize, ()>::new();
    let nodes: Vec<_> = (0..steps.len()).map(|i| g.add_node(i)).collect();
    for (i, s) in steps.iter().enumerate() {
        for &d in &s.deps {
            g.add_edge(nodes[d], nodes[i], ());
        }
    }
    toposort(&g, None).map(|_| ()).map_err(|cycle| {
        let s = &steps[g[cycle.node_id()]];
        format!(
            "internal error: the plan's steps form a cycle through {} of `{}`",
            s.kind.verb(),
            s.name
        )
    })
}
