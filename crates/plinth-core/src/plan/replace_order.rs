//! Which replacements must create the new resource before deleting the old one.
//!
//! AWS refuses to delete what something still uses (a certificate a distribution serves, a
//! security group a cache sits in): replaced delete-first, the delete fails for as long as
//! the user stays. So a replaced resource that a staying resource holds (through a property
//! marked `holds_referent`) is created first, the holder moves to it, and the old one goes
//! last — what Terraform users have to ask for with `create_before_destroy`. Where AWS cannot
//! hold the old and the new one at once (a unique name that does not change), the plan
//! says so before anything runs.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::plan::planner::PlanError;
use crate::plan::{Action, ResourceChange};
use crate::resource::Registry;
use crate::stack::expr::Target;
use crate::value::{self, PathSeg, UNKNOWN};

/// Marks each replacement that a staying resource holds as created first, with why.
pub fn create_first_where_held(changes: &mut [ResourceChange], registry: &Registry) {
    let index: BTreeMap<String, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    // Holders come after what they hold in creation order: walking backwards settles a
    // holder (which may itself be created first) before what it holds.
    for i in (0..changes.len()).rev() {
        if !stays(&changes[i]) {
            continue;
        }
        for held in held_by(&changes[i], registry) {
            let Some(&h) = index.get(&held) else {
                continue;
            };
            let holder = changes[i].name.clone();
            let target = &mut changes[h];
            if target.action != Action::Replace || target.lifecycle.create_before_destroy {
                continue;
            }
            mark(target, &holder);
        }
    }
    // What a create-first replacement refers to must exist before the old one goes: a
    // dependency replaced delete-first would wait for the old one's deletion, which waits
    // for the new one, which waits for the dependency (a cycle). So it is created first too.
    loop {
        let mut marked = false;
        for i in 0..changes.len() {
            if !(changes[i].action == Action::Replace && changes[i].creates_first()) {
                continue;
            }
            let user = changes[i].name.clone();
            let hard: Vec<String> = changes[i]
                .deps
                .iter()
                .filter(|d| !changes[i].soft_deps.contains(d))
                .cloned()
                .collect();
            for dep in hard {
                let Some(&d) = index.get(&dep) else {
                    continue;
                };
                let target = &mut changes[d];
                if target.action == Action::Replace && !target.creates_first() {
                    mark(target, &user);
                    marked = true;
                }
            }
        }
        if !marked {
            break;
        }
    }
}

fn mark(target: &mut ResourceChange, user: &str) {
    let because = target.create_first_because.get_or_insert_with(Vec::new);
    if !because.iter().any(|u| u == user) {
        because.push(user.to_string());
        because.sort();
    }
}

/// Whether the resource is still there, referring to what it holds, while its replaced
/// referents change over: it is updated in place, unchanged, or itself created first.
fn stays(c: &ResourceChange) -> bool {
    match c.action {
        Action::Update | Action::NoOp => true,
        Action::Replace => c.creates_first(),
        _ => false,
    }
}

/// The resources `c` refers to through a property that holds its referent (and that the
/// stack does not leave to AWS with `ignore_changes`: such a holder never moves).
fn held_by(c: &ResourceChange, registry: &Registry) -> Vec<String> {
    let (Some(template), Some(schema)) = (&c.template, registry.schema(&c.type_name)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, reference) in template.refs_with_paths() {
        let Target::Resource { resource, .. } = &reference.target else {
            continue;
        };
        let ignored =
            matches!(path.first(), Some(PathSeg::Key(k)) if c.lifecycle.ignore_changes.contains(k));
        if !ignored
            && schema.prop_at(&path).is_some_and(|p| p.holds_referent)
            && !out.contains(resource)
        {
            out.push(resource.clone());
        }
    }
    out
}

/// Refuses a plan whose create-first replacement AWS cannot carry out: the new resource
/// would take a unique value the old one still has.
pub fn check_unique_values(
    changes: &[ResourceChange],
    registry: &Registry,
) -> Result<(), PlanError> {
    for c in changes
        .iter()
        .filter(|c| c.action == Action::Replace && c.creates_first())
    {
        let (Some(before), Some(after), Some(schema)) =
            (&c.before, &c.after, registry.schema(&c.type_name))
        else {
            continue;
        };
        for prop in &schema.properties {
            let Some(scope) = prop.unique_within else {
                continue;
            };
            let same = |key: &str| match (before.get(key), after.get(key)) {
                (Some(a), Some(b)) => a == b && !value::contains_unknown(b),
                (None, None) => true,
                _ => false,
            };
            let Some(Value::String(taken)) = after.get(prop.name) else {
                continue;
            };
            if taken == UNKNOWN
                || !same(prop.name)
                || !scope.iter().all(|k| same(k))
                || moves_region(c)
            {
                continue;
            }
            return Err(PlanError::Invalid {
                name: c.name.clone(),
                message: collision_message(c, prop.name, taken, schema.type_name),
            });
        }
    }
    Ok(())
}

/// A resource moving to another region is unique there on its own.
fn moves_region(c: &ResourceChange) -> bool {
    c.replace_reasons
        .iter()
        .any(|r| r.starts_with(crate::plan::planner::REGION_REASON))
}

fn collision_message(c: &ResourceChange, prop: &str, taken: &str, type_name: &str) -> String {
    let why = match &c.create_first_because {
        Some(holders) => format!(
            "{} still {} it, so the new one must exist before the old one is deleted",
            names(holders),
            if holders.len() == 1 { "uses" } else { "use" }
        ),
        None => "lifecycle.create_before_destroy asks for the new one first".to_string(),
    };
    let fix = match &c.create_first_because {
        Some(_) => format!("give it a new `{prop}` (for example `{taken}-2`)"),
        None => format!(
            "give it a new `{prop}` (for example `{taken}-2`) or remove create_before_destroy"
        ),
    };
    format!(
        "must be replaced ({} forces replacement) and {why}; but AWS allows one {type_name} \
         with {prop} `{taken}` at a time: {fix}",
        c.replace_reasons.join(", ")
    )
}

/// `a`, `a` and `b`, `a`, `b` and `c`.
pub fn names(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}
