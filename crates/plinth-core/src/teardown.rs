//! What is left of environments, found by their `plinth:*` tags: after a destroy, checked
//! against the state (`Teardown verified` or each leftover and why), and for `sweep`
//! (environments that expired, and resources that no state file knows).
//!
//! Resources are named by the address the tag search reports (an ARN); resource types say
//! which of their physical ids an address stands for ([`ResourceType::id_from_arn`]), so
//! nothing here knows a service.
//!
//! [`ResourceType::id_from_arn`]: crate::resource::ResourceType::id_from_arn

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::resource::{Registry, ResourceType};
use crate::stack::Stack;
use crate::state::{ResourceState, State, Status};
use crate::value::Props;
use serde_json::Value;

pub const STACK_TAG: &str = "plinth:stack";
pub const WORKSPACE_TAG: &str = "plinth:workspace";
pub const RESOURCE_TAG: &str = "plinth:resource";
pub const CREATED_AT_TAG: &str = "plinth:created-at";
/// Where an environment's state is kept, when not in a local folder (`s3://BUCKET/PREFIX`).
pub const STATE_TAG: &str = "plinth:state";
pub const EXPIRES_AT_TAG: &str = "plinth:expires-at";

/// The workspace of a resource whose tags name none (every plinth resource has one).
const NO_WORKSPACE: &str = "default";

/// One resource a tag search found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaggedResource {
    pub arn: String,
    /// Where it lives (where it was found, for addresses that name no region).
    pub region: String,
    pub tags: BTreeMap<String, String>,
}

impl TaggedResource {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
    pub fn stack(&self) -> Option<&str> {
        self.tag(STACK_TAG)
    }
    pub fn workspace(&self) -> &str {
        self.tag(WORKSPACE_TAG).unwrap_or(NO_WORKSPACE)
    }
    fn time_tag(&self, key: &str) -> Option<SystemTime> {
        self.tag(key)
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
    }
}

/// One tag a search requires: this key with one of these values (any value when empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagFilter {
    pub key: String,
    pub values: Vec<String>,
}

impl TagFilter {
    pub fn equals(key: &str, value: &str) -> TagFilter {
        TagFilter::one_of(key, &[value.to_string()])
    }
    pub fn one_of(key: &str, values: &[String]) -> TagFilter {
        TagFilter {
            key: key.to_string(),
            values: values.to_vec(),
        }
    }
    /// Whether every filter holds for `tags`.
    pub fn all_match(filters: &[TagFilter], tags: &BTreeMap<String, String>) -> bool {
        filters.iter().all(|f| {
            tags.get(&f.key)
                .is_some_and(|v| f.values.is_empty() || f.values.contains(v))
        })
    }
}

/// Whether `arn` names the resource a state entry records: its id is the ARN, its type
/// says the ARN stands for its id, or one of its attributes is the ARN (or a qualified form
/// of it, such as a function's version ARN, or one of a list: the member clusters of a
/// replication group, which AWS tags with the group's tags, are part of it).
pub fn stands_for(entry: &ResourceState, registry: &Registry, arn: &str) -> bool {
    if entry.id == arn {
        return true;
    }
    let by_type = registry
        .get(&entry.type_name)
        .and_then(|t| t.id_from_arn(arn));
    if !entry.id.is_empty() && by_type.as_deref() == Some(entry.id.as_str()) {
        return true;
    }
    names(&entry.attrs, arn)
}

/// Whether one of these attributes (or an element of a list attribute) is `arn`, or a
/// qualified form of it.
pub fn names(attrs: &Props, arn: &str) -> bool {
    let texts = attrs.values().flat_map(|v| match v {
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>(),
        other => other.as_str().into_iter().collect(),
    });
    texts.into_iter().any(|attr| {
        attr == arn
            || attr
                .strip_prefix(arn)
                .is_some_and(|rest| rest.starts_with(':'))
    })
}

/// The state entry (by logical name) that `arn` stands for.
pub fn entry_for<'s>(
    state: &'s State,
    registry: &Registry,
    arn: &str,
) -> Option<(&'s str, &'s ResourceState)> {
    state
        .resources
        .iter()
        .find(|(_, entry)| stands_for(entry, registry, arn))
        .map(|(name, entry)| (name.as_str(), entry))
}

/// Whether a state records `resource`: by its ARN, or, for a create that was interrupted
/// before its id was recorded (the next plan adopts it), by the environment and logical
/// name its tags give.
pub fn records(state: &State, registry: &Registry, resource: &TaggedResource) -> bool {
    if entry_for(state, registry, &resource.arn).is_some() {
        return true;
    }
    let same_environment =
        resource.stack() == Some(state.stack.as_str()) && resource.workspace() == state.workspace;
    same_environment
        && resource
            .tag(RESOURCE_TAG)
            .and_then(|name| state.resources.get(name))
            .is_some_and(|entry| entry.status == Status::Creating)
}

/// Why something tagged with an environment is still there after its destroy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leftover {
    /// AWS accepted its deletion and is still carrying it out; the state keeps it as
    /// pending and the next run confirms it is gone.
    PendingDeletion { name: String, reason: String },
    /// The state still records it as existing: its delete failed (and the destroy said why).
    StillInState { name: String },
    /// Tagged with the environment, but not a resource its state records: a duplicate
    /// from an interrupted create, or something made by hand.
    UnknownToState,
}

/// What a destroy left, each with why, in the order found.
pub fn leftovers(
    state: &State,
    registry: &Registry,
    found: &[TaggedResource],
) -> Vec<(TaggedResource, Leftover)> {
    found
        .iter()
        .map(|resource| {
            let why = match entry_for(state, registry, &resource.arn) {
                Some((name, entry)) => match &entry.status {
                    Status::PendingDelete { reason, .. } => Leftover::PendingDeletion {
                        name: name.to_string(),
                        reason: reason.clone(),
                    },
                    _ => Leftover::StillInState {
                        name: name.to_string(),
                    },
                },
                None => Leftover::UnknownToState,
            };
            (resource.clone(), why)
        })
        .collect()
}

/// One environment as `sweep` sees it: what its tags found, and its state when a state
/// file in view records resources of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    pub stack: String,
    pub workspace: String,
    /// What the tag search found.
    pub resources: Vec<TaggedResource>,
    /// Which of the states given to [`environments`] is this environment's.
    pub state: Option<usize>,
    /// The earliest `plinth:expires-at` of its resources or its state.
    pub expires_at: Option<SystemTime>,
    /// The earliest `plinth:created-at` of its resources or its state.
    pub created_at: Option<SystemTime>,
}

impl Environment {
    /// How long ago it expired, if it has.
    pub fn expired_for(&self, now: SystemTime) -> Option<Duration> {
        now.duration_since(self.expires_at?).ok()
    }
    /// How long it has existed, when its resources or state say.
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        Some(
            now.duration_since(self.created_at?)
                .unwrap_or(Duration::ZERO),
        )
    }
    /// The regions of what the tags found, sorted.
    pub fn regions(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.resources.iter().map(|r| r.region.as_str()).collect();
        set.into_iter().map(str::to_string).collect()
    }
    fn earliest_tag(&self, key: &str) -> Option<SystemTime> {
        self.resources.iter().filter_map(|r| r.time_tag(key)).min()
    }
}

fn parse_time(text: Option<&String>) -> Option<SystemTime> {
    text.and_then(|t| humantime::parse_rfc3339_weak(t).ok())
}

fn earlier(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<SystemTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Groups what the tags found by stack and workspace (resources naming no stack are
/// nobody's environment and left out), adds the environments that only a state in `states`
/// records, and sorts them by stack, then workspace.
pub fn environments(found: Vec<TaggedResource>, states: &[State]) -> Vec<Environment> {
    let mut groups: BTreeMap<(String, String), Vec<TaggedResource>> = BTreeMap::new();
    for resource in found {
        let Some(stack) = resource.stack().map(str::to_string) else {
            continue;
        };
        let key = (stack, resource.workspace().to_string());
        groups.entry(key).or_default().push(resource);
    }
    for state in states.iter().filter(|s| !s.resources.is_empty()) {
        let key = (state.stack.clone(), state.workspace.clone());
        groups.entry(key).or_default();
    }
    groups
        .into_iter()
        .map(|((stack, workspace), resources)| {
            let state = states.iter().position(|s| {
                s.stack == stack && s.workspace == workspace && !s.resources.is_empty()
            });
            let mut env = Environment {
                stack,
                workspace,
                resources,
                state,
                expires_at: None,
                created_at: None,
            };
            let recorded = state.map(|i| &states[i]);
            env.expires_at = earlier(
                env.earliest_tag(EXPIRES_AT_TAG),
                parse_time(recorded.and_then(|s| s.expires_at.as_ref())),
            );
            env.created_at = earlier(
                env.earliest_tag(CREATED_AT_TAG),
                parse_time(recorded.and_then(|s| s.created_at.as_ref())),
            );
            env
        })
        .collect()
}

/// Which environments `sweep` looks at.
#[derive(Clone, Debug, Default)]
pub struct SweepFilter {
    /// Only these stacks (empty: all).
    pub stacks: Vec<String>,
    /// Only these workspaces (empty: all).
    pub workspaces: Vec<String>,
    /// Only environments at least this old (by `plinth:created-at`; one without is
    /// never old enough).
    pub older_than: Option<Duration>,
    /// Only expired environments, not those that are merely unknown to every state.
    pub expired_only: bool,
}

impl SweepFilter {
    fn admits(&self, env: &Environment, now: SystemTime) -> bool {
        let listed =
            |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        listed(&self.stacks, &env.stack)
            && listed(&self.workspaces, &env.workspace)
            && self
                .older_than
                .is_none_or(|min| env.age(now).is_some_and(|age| age >= min))
    }
}

/// An environment `sweep` would remove, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub env: Environment,
    /// How long ago it expired, when it has.
    pub expired_for: Option<Duration>,
    /// What the tags found that no visible state records.
    pub orphans: Vec<TaggedResource>,
}

/// The environments to remove: expired ones, and (unless `expired_only`) those holding
/// resources no state in `states` knows.
pub fn candidates(
    envs: Vec<Environment>,
    states: &[State],
    registry: &Registry,
    filter: &SweepFilter,
    now: SystemTime,
) -> Vec<Candidate> {
    envs.into_iter()
        .filter(|env| filter.admits(env, now))
        .filter_map(|env| {
            let orphans: Vec<TaggedResource> = env
                .resources
                .iter()
                .filter(|r| !states.iter().any(|s| records(s, registry, r)))
                .cloned()
                .collect();
            let expired_for = env.expired_for(now);
            let wanted = expired_for.is_some() || (!filter.expired_only && !orphans.is_empty());
            wanted.then_some(Candidate {
                env,
                expired_for,
                orphans,
            })
        })
        .collect()
}

/// A duration as a person reads an age: its two largest units ("2d 4h", "3h 12m", "45s").
pub fn short_age(d: Duration) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let secs = d.as_secs();
    let Some(first) = UNITS.iter().position(|(size, _)| secs >= *size) else {
        return "0s".into();
    };
    let (size, unit) = UNITS[first];
    let mut text = format!("{}{unit}", secs / size);
    if let Some((next, next_unit)) = UNITS.get(first + 1) {
        let rest = secs % size / next;
        if rest > 0 {
            text.push_str(&format!(" {rest}{next_unit}"));
        }
    }
    text
}

/// `--older-than 2d`: a duration such as 90m, 8h, 2d or 1w.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}): expected e.g. 90m, 8h, 2d or 1w"))
}

#[cfg(test)]
mod tests;

/// Every region an environment used, for its teardown check: where its resources are
/// declared (pinned regions included), where its state still has something, and the
/// stack's own.
pub fn regions_used(stack: &Stack, state: &State) -> Vec<String> {
    regions_with(stack, state, &[])
}

/// [`regions_used`] and `others` (where resources kept copies: what [`other_regions_of`]
/// found in the state before the destroy).
pub fn regions_with(stack: &Stack, state: &State, others: &[String]) -> Vec<String> {
    let mut regions: BTreeSet<String> = stack.resources.iter().map(|r| r.region.clone()).collect();
    regions.extend(state.resources.values().map(|r| r.region.clone()));
    regions.extend(others.iter().cloned());
    regions.insert(stack.region.clone());
    regions.retain(|r| !r.is_empty());
    regions.into_iter().collect()
}

/// The regions besides their own where the resources in `state` keep tagged copies.
pub fn other_regions_of(state: &State, registry: &Registry) -> Vec<String> {
    let regions: BTreeSet<String> = state
        .resources
        .values()
        .filter_map(|r| Some(registry.get(&r.type_name)?.other_regions(&r.props)))
        .flatten()
        .collect();
    regions.into_iter().collect()
}

/// The types an environment used (declared or still in state): asked to find tagged
/// resources of theirs that a region's tag search does not list (IAM roles).
pub fn types_used(stack: &Stack, state: &State, registry: &Registry) -> Vec<Arc<dyn ResourceType>> {
    let names: BTreeSet<&str> = stack
        .resources
        .iter()
        .map(|r| r.type_name.as_str())
        .chain(state.resources.values().map(|r| r.type_name.as_str()))
        .collect();
    names
        .into_iter()
        .filter_map(|n| registry.get(n).cloned())
        .collect()
}

/// Takes out of `found` what keeps its state (`plinth:state`) somewhere other than
/// `in_view`: without that state, everything such an environment made would look like an
/// orphan. Returns how many resources each such place has.
pub fn keep_states_in_view(
    found: &mut Vec<TaggedResource>,
    in_view: &[String],
) -> BTreeMap<String, usize> {
    let mut elsewhere: BTreeMap<String, usize> = BTreeMap::new();
    found.retain(|r| match r.tag(STATE_TAG) {
        Some(url) if !in_view.iter().any(|v| same_location(v, url)) => {
            *elsewhere.entry(url.to_string()).or_default() += 1;
            false
        }
        _ => true,
    });
    elsewhere
}

/// `s3://b/p` and `s3://b/p/` are one place.
pub fn same_location(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The `(stack, workspace)` folders under a local state folder that hold a state file or
/// a journal (a first apply running, or killed, has only its journal), sorted.
pub fn local_environments(root: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for stack in subfolders(root) {
        for workspace in subfolders(&root.join(&stack)) {
            let files = crate::state::store::StateFiles::new(root, &stack, &workspace);
            if files.state().is_file() || files.journal().is_file() {
                found.push((stack.clone(), workspace));
            }
        }
    }
    found.sort();
    found
}

fn subfolders(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect()
}
