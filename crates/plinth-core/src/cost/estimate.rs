//! Adding up cost lines: for the stack as written (`plinth cost`), for what runs now (the
//! state) and for what will run once a plan is applied.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::{CostContext, CostLine, PriceTable, Usage};
use crate::graph::DepGraph;
use crate::plan::planner::{desired_template, Stamps};
use crate::plan::{Action, Plan, PlanError};
use crate::resource::{NormalizeContext, Registry};
use crate::schema::TypeKind;
use crate::stack::expr::{self, Ref, Target};
use crate::stack::Stack;
use crate::state::{ResourceState, State, Status};
use crate::value::{self, Props};

/// Everything an estimate is priced with.
#[derive(Clone, Copy)]
pub struct Pricing<'a> {
    pub registry: &'a Registry,
    pub prices: &'a PriceTable,
    pub usage: &'a Usage,
}

/// One resource to price, with canonical properties.
#[derive(Clone, Debug)]
pub struct Running {
    pub name: String,
    pub type_name: String,
    pub region: String,
    pub props: Props,
}

impl Running {
    fn from_state(name: &str, rs: &ResourceState) -> Running {
        Running {
            name: name.to_string(),
            type_name: rs.type_name.clone(),
            region: rs.region.clone(),
            props: rs.props.clone(),
        }
    }
}

/// One resource's price: its lines and their sums (of the lines whose price is known).
#[derive(Clone, Debug, Serialize)]
pub struct ResourceCost {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub region: String,
    pub hourly: f64,
    pub monthly: f64,
    /// Some line's price is unknown: the sums are a lower bound.
    pub price_unknown: bool,
    pub lines: Vec<CostLine>,
}

impl ResourceCost {
    pub fn usage_priced(&self) -> bool {
        self.lines.iter().any(|l| l.usage_priced)
    }
}

/// The price of a set of resources.
#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    pub resources: Vec<ResourceCost>,
    pub hourly: f64,
    pub monthly: f64,
    /// Resources with a line whose price is unknown (the totals leave those lines out).
    pub price_unknown: Vec<String>,
}

impl Estimate {
    pub fn is_complete(&self) -> bool {
        self.price_unknown.is_empty()
    }
}

/// Prices each resource with its type's cost rule.
pub fn estimate(resources: &[Running], pricing: &Pricing) -> Estimate {
    let priced: Vec<ResourceCost> = resources.iter().map(|r| price_one(r, pricing)).collect();
    let price_unknown = priced
        .iter()
        .filter(|r| r.price_unknown)
        .map(|r| r.name.clone())
        .collect();
    Estimate {
        hourly: sum(priced.iter().map(|r| r.hourly)),
        monthly: sum(priced.iter().map(|r| r.monthly)),
        resources: priced,
        price_unknown,
    }
}

fn price_one(r: &Running, pricing: &Pricing) -> ResourceCost {
    let ctx = CostContext {
        region: &r.region,
        prices: pricing.prices,
        usage: pricing.usage,
    };
    let lines = match pricing.registry.get(&r.type_name) {
        Some(rt) => rt.cost(&r.props, &ctx),
        None => vec![CostLine::unknown(
            r.type_name.clone(),
            format!("this plinth does not know the type {}", r.type_name),
        )],
    };
    let known = || lines.iter().filter(|l| l.is_known());
    ResourceCost {
        name: r.name.clone(),
        type_name: r.type_name.clone(),
        region: r.region.clone(),
        hourly: sum(known().filter_map(|l| l.hourly)),
        monthly: sum(known().filter_map(|l| l.monthly)),
        price_unknown: lines.iter().any(|l| !l.is_known()),
        lines,
    }
}

/// Adds up from +0.0 (`Iterator::sum` of nothing is -0.0, which prints as "-0").
fn sum(amounts: impl Iterator<Item = f64>) -> f64 {
    amounts.fold(0.0, |total, amount| total + amount)
}

/// What runs now, per the state. Resources whose deletion is under way no longer count.
pub fn running_now(state: &State) -> Vec<Running> {
    state
        .resources
        .iter()
        .filter(|(_, rs)| !matches!(rs.status, Status::PendingDelete { .. }))
        .map(|(name, rs)| Running::from_state(name, rs))
        .collect()
}

/// What runs now, as the plan's reads just found it: a resource the plan read as AWS
/// reported it, anything else (outside `--target`) as the state last recorded it.
pub fn running_as_read(plan: &Plan, state: &State) -> Vec<Running> {
    let planned = plan.by_name();
    let mut out: Vec<Running> = running_now(state)
        .into_iter()
        .filter(|r| !planned.contains_key(r.name.as_str()))
        .collect();
    for change in &plan.resources {
        // A resource found gone is not running, whatever the state last said.
        let found = change.id.is_some() && change.adopted != Some(false);
        let Some(before) = change.before.as_ref().filter(|_| found) else {
            continue;
        };
        if matches!(
            state.resources.get(&change.name).map(|rs| &rs.status),
            Some(Status::PendingDelete { .. })
        ) {
            continue;
        }
        // Where it runs now: a resource moving region still runs in the old one.
        let region = state
            .resources
            .get(&change.name)
            .map_or(&change.region, |rs| &rs.region);
        out.push(Running {
            name: change.name.clone(),
            type_name: change.type_name.clone(),
            region: region.clone(),
            props: before.clone(),
        });
    }
    out
}

/// What will run once `plan` is applied: what it leaves alone as it runs now, what it
/// creates or changes as it will be, nothing of what it deletes.
pub fn running_after(plan: &Plan, state: &State) -> Vec<Running> {
    let planned = plan.by_name();
    let mut out: Vec<Running> = running_as_read(plan, state)
        .into_iter()
        .filter(|r| {
            planned
                .get(r.name.as_str())
                .is_none_or(|c| c.action == Action::NoOp)
        })
        .collect();
    for change in &plan.resources {
        let changes = matches!(
            change.action,
            Action::Create | Action::Update | Action::Replace
        );
        let Some(after) = change.after.as_ref().filter(|_| changes) else {
            continue;
        };
        out.push(Running {
            name: change.name.clone(),
            type_name: change.type_name.clone(),
            region: change.region.clone(),
            props: after.clone(),
        });
    }
    out
}

/// A plan's effect on the bill: what will run after it, what runs now (as just read), and
/// what ran when it was last applied (as the state recorded it).
#[derive(Clone, Debug, Serialize)]
pub struct PlanCost {
    pub after: Estimate,
    pub now: Estimate,
    pub applied: Estimate,
    /// Resources whose price now differs from the last apply's: changed outside plinth,
    /// in properties the stack leaves to AWS or ignores, or gone (marked so). Resources
    /// whose price is unknown either time are left out.
    pub drifted: Vec<String>,
    /// USD per month more (positive) or less that those resources cost now than then.
    pub drift_monthly: f64,
}

impl PlanCost {
    /// USD per month more (positive) or less (negative) than now.
    pub fn change_monthly(&self) -> f64 {
        self.after.monthly - self.now.monthly
    }
    pub fn change_hourly(&self) -> f64 {
        self.after.hourly - self.now.hourly
    }
}

pub fn plan_cost(plan: &Plan, state: &State, pricing: &Pricing) -> PlanCost {
    let now = estimate(&running_as_read(plan, state), pricing);
    let applied = estimate(&running_now(state), pricing);
    let (mut drifted, mut drift_monthly) = (Vec::new(), 0.0);
    for then in applied.resources.iter().filter(|r| !r.price_unknown) {
        match now.resources.iter().find(|r| r.name == then.name) {
            Some(r) if r.price_unknown => {}
            Some(r) if (r.monthly - then.monthly).abs() >= 0.005 => {
                drifted.push(r.name.clone());
                drift_monthly += r.monthly - then.monthly;
            }
            None if then.monthly >= 0.005 => {
                drifted.push(format!("{} (gone)", then.name));
                drift_monthly -= then.monthly;
            }
            _ => {}
        }
    }
    PlanCost {
        after: estimate(&running_after(plan, state), pricing),
        now,
        applied,
        drifted,
        drift_monthly,
    }
}

/// The stack's resources with their canonical desired properties, worked out without AWS
/// and without state: references to other resources are unknown except the attributes a
/// type knows before it exists (a table's name). Lookups are left out: they cost nothing.
pub fn desired_resources(
    stack: &Stack,
    graph: &DepGraph,
    registry: &Registry,
) -> Result<Vec<Running>, PlanError> {
    let base_dir = stack.file.base_dir();
    let mut known_attrs: BTreeMap<String, Props> = BTreeMap::new();
    let mut out = Vec::new();
    for name in graph.creation_order() {
        let Some(decl) = stack.resource(&name) else {
            continue;
        };
        let rt = registry
            .get(&decl.type_name)
            .ok_or_else(|| PlanError::UnknownType {
                name: name.clone(),
                type_name: decl.type_name.clone(),
            })?;
        if rt.schema().kind == TypeKind::Lookup {
            continue;
        }
        let template = desired_template(decl, stack, rt.schema(), &Stamps::default());
        let resolve = |r: &Ref| resolve_known(&known_attrs, r);
        let mut props = match template.eval(&resolve) {
            Value::Object(m) => m,
            _ => Props::new(),
        };
        let ctx = NormalizeContext {
            base_dir: base_dir.clone(),
        };
        rt.normalize(&mut props, &ctx)
            .map_err(|e| PlanError::Invalid {
                name: name.clone(),
                message: e.message,
            })?;
        known_attrs.insert(name.clone(), rt.known_attrs(&props));
        out.push(Running {
            name,
            type_name: decl.type_name.clone(),
            region: decl.region.clone(),
            props,
        });
    }
    // Worked out in dependency order, listed in the order the stack file declares them.
    let declared = |r: &Running| stack.resources.iter().position(|d| d.name == r.name);
    out.sort_by_key(declared);
    Ok(out)
}

fn resolve_known(known: &BTreeMap<String, Props>, r: &Ref) -> Value {
    match &r.target {
        Target::Resource {
            resource,
            attr,
            path,
        } => match known.get(resource) {
            Some(attrs) if attrs.contains_key(attr) => expr::attribute(attrs, attr, path),
            _ => value::unknown(),
        },
        _ => value::unknown(),
    }
}
