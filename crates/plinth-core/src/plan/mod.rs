//! The plan: what apply will do, as plain data. The terminal renderer, `--json` and saved
//! plan files all read this one model.

pub mod diff;
pub mod drift;
pub mod inputs;
pub mod name_prefix;
pub mod planner;
pub mod render;
pub mod replace_order;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stack::expr::SpannedExpr;
use crate::stack::Lifecycle;
use crate::value::Props;

pub use planner::{make_plan, PlanError, PlanRequest};

/// Bumped when the plan JSON changes incompatibly.
pub const FORMAT_VERSION: &str = "1.0";

/// What happens to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    /// A lookup read for the first time (or whose inputs are known only at apply).
    Read,
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    /// Terraform's symbols, which people already read.
    pub fn symbol(self, create_before_destroy: bool) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Read => "<=",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace if create_before_destroy => "+/-",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
    pub fn is_change(self) -> bool {
        !matches!(self, Action::NoOp | Action::Read)
    }
}

/// Whether the plan converges the stack or tears it down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Apply,
    Destroy,
}

/// One resource's planned change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResourceChange {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub region: String,
    pub action: Action,
    /// For `Replace`: the properties whose change forces a new resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_reasons: Vec<String>,
    /// For `Replace`: the staying resources that hold this one, so the new one is created
    /// before the old one is deleted (as `create_before_destroy` would).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_first_because: Option<Vec<String>>,
    /// For `Update`: what applying it will do that the diff does not show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The physical id now (for update, replace, delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Canonical properties as AWS reports them now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Props>,
    /// Canonical desired properties; unknown values are the `UNKNOWN` sentinel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Props>,
    /// Attributes as they are now (no-op, update) or as a lookup read them.
    #[serde(default, skip_serializing_if = "Props::is_empty")]
    pub attrs: Props,
    /// Values the type looked up when planning ([`crate::resource::ResourceType::resolve`]): apply uses
    /// these, not a second lookup, so it does what the plan showed.
    #[serde(default, skip_serializing_if = "Props::is_empty")]
    pub resolved: Props,
    /// The properties with references still in, resolved at apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<SpannedExpr>,
    /// What this resource waits for (its references and `depends_on`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<String>,
    /// References in deferrable properties (security-group rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub soft_deps: Vec<String>,
    /// Targets of references applied in a second step, after both sides exist.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub deferred: BTreeSet<String>,
    /// What the resource referred to when last applied (orders its deletion).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prior_deps: Vec<String>,
    /// Of those, references from deferrable properties.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prior_soft_deps: Vec<String>,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// The state said this was being created when a run was killed; plan found it and
    /// adopts it (`Some(true)`) or did not (`Some(false)`, it is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<bool>,
}

impl ResourceChange {
    /// Whether a replacement creates the new resource before deleting the old one: asked
    /// for in the stack, or needed because something that stays still uses it.
    pub fn creates_first(&self) -> bool {
        self.lifecycle.create_before_destroy || self.create_first_because.is_some()
    }
}

/// One output's planned value.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputChange {
    pub name: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<SpannedExpr>,
}

/// A whole plan. Saved with `plan -o`, applied with `apply FILE`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    /// Always `plinth-plan`, so `apply FILE` can tell a plan from a stack file.
    pub kind: String,
    pub stack: String,
    pub workspace: String,
    pub stack_file: String,
    /// Where the state lives when it is not the default folder beside the stack file
    /// (`s3://BUCKET/PREFIX`, or a folder): applying the plan uses the same state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub region: String,
    pub mode: Mode,
    /// The state this plan was made against; apply refuses if it moved on.
    pub lineage: String,
    pub serial: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after: Option<String>,
    /// When the environment was first applied (stamped as `plinth:created-at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The account the plan is for when it is not the caller's own (a student's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub resources: Vec<ResourceChange>,
    pub outputs: Vec<OutputChange>,
    /// What the files the changes read at apply time held when the plan was made: applying
    /// a saved plan refuses if one changed.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub inputs: inputs::Fingerprints,
    /// Values to mask wherever they appear (sensitive variables). Saved plan files carry
    /// them (they carry the values anyway); `--json` output never does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_values: Vec<String>,
}

/// How many resources each action touches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
}

impl Counts {
    /// Resources a plan adds: a replacement adds one (and destroys one).
    pub fn to_add(&self) -> usize {
        self.create + self.replace
    }
    /// Resources a plan destroys, replacements included.
    pub fn to_destroy(&self) -> usize {
        self.delete + self.replace
    }
}

impl Plan {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.resources {
            match r.action {
                Action::Create => c.create += 1,
                Action::Update => c.update += 1,
                Action::Replace => c.replace += 1,
                // Forgetting what is already gone (or was only looked up) destroys nothing.
                Action::Delete if r.adopted == Some(false) => {}
                Action::Delete => c.delete += 1,
                Action::NoOp | Action::Read => {}
            }
        }
        c
    }

    /// True when apply would change any resource or output.
    pub fn has_changes(&self) -> bool {
        self.resources.iter().any(|r| r.action.is_change())
            || self.outputs.iter().any(|o| o.action.is_change())
            || self.resources.iter().any(|r| r.adopted.is_some())
    }

    pub fn change(&self, name: &str) -> Option<&ResourceChange> {
        self.resources.iter().find(|r| r.name == name)
    }

    /// Per-resource map for quick lookups.
    pub fn by_name(&self) -> BTreeMap<&str, &ResourceChange> {
        self.resources
            .iter()
            .map(|r| (r.name.as_str(), r))
            .collect()
    }
}
