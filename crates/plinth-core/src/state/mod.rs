//! What plinth believes exists: one JSON document per stack and workspace.
//!
//! `serial` grows with every write and `lineage` names one state's history, so a saved plan
//! can refuse to apply against a state that moved on.

pub mod location;
pub mod store;

/// Where one environment's state lives: a local folder, or a bucket shared by several
/// machines. Readers see what really exists (a journal a killed run left is folded in);
/// a writer first takes the lock, and every write goes through it.
pub trait StateStore: Send + Sync {
    /// Where the state is, for messages (`.plinth/lab/ana`, `s3://bucket/prefix/lab/ana`).
    fn location(&self) -> String;
    /// The state without locking (`show`, `output`, the cost of what runs).
    fn read(&self, stack: &str, workspace: &str) -> Result<State, store::StoreError>;
    /// Takes the lock, folds any journal a killed run left, and returns the state.
    fn lock_and_read(
        &self,
        stack: &str,
        workspace: &str,
        command: &str,
    ) -> Result<(Box<dyn StateLock>, State), store::StoreError>;
    /// Leaves word that the state moved to `to`: every later command here refuses, naming
    /// where it went, instead of starting again from the old copy.
    fn mark_moved(&self, stack: &str, workspace: &str, to: &str) -> Result<(), store::StoreError>;
    /// Takes that word back (a state moved here again).
    fn clear_moved(&self, stack: &str, workspace: &str) -> Result<(), store::StoreError>;
    /// Breaks the lock whose id is `id` (its holder is gone) and says whose it was.
    fn unlock(
        &self,
        stack: &str,
        workspace: &str,
        id: &str,
    ) -> Result<store::LockInfo, store::StoreError>;
}

/// A held lock on one state. Both calls return once what they were given is durable: the
/// engine journals a create before sending it, so a run killed at any point is recovered
/// exactly by the next one, from any machine that sees the same store.
pub trait StateLock: Send + Sync {
    /// Records one finished (or about to start) operation.
    fn record(&self, entry: &JournalEntry) -> Result<(), store::StoreError>;
    /// Writes the whole state (one serial more) and drops the journal it now contains.
    fn write(&self, state: &mut State) -> Result<(), store::StoreError>;
}

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stack::Lifecycle;
use crate::value::Props;

pub const STATE_VERSION: u32 = 1;

/// Why `name` cannot be a workspace, if it cannot: it names a folder under `.plinth/<stack>/`
/// and is stamped on every resource as `plinth:workspace`, so it stays plain.
pub fn workspace_name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (!ok).then(|| format!("`{name}`: expected letters, digits, `-` and `_` (at most 64)"))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub lineage: String,
    pub serial: u64,
    pub stack: String,
    pub workspace: String,
    /// When the environment expires (RFC 3339), fixed at first apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The `expires_after` that `expires_at` was computed from; a new value re-stamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after: Option<String>,
    /// When the environment was first applied (RFC 3339, UTC, seconds): stamped once as
    /// `plinth:created-at`, so `sweep` can tell an environment's age without its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The account the resources are in (the caller's, or a student's reached through a
    /// role); fixed at apply, so no later run looks for them elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceState>,
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputState>,
}

/// One resource as last applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    #[serde(rename = "type")]
    pub type_name: String,
    pub region: String,
    /// The physical id; empty while `status` is `Creating`.
    pub id: String,
    pub status: Status,
    /// Canonical properties as last applied (or, for `Creating`, as requested).
    pub props: Props,
    #[serde(default)]
    pub attrs: Props,
    /// Resources this one referred to when applied (orders its deletion after they stop).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<String>,
    /// References from deferrable properties: they do not order deletion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub soft_deps: Vec<String>,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// When plinth last created or changed it (RFC 3339): for a while after, AWS may not
    /// show it yet, and a read that finds nothing is not believed at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<String>,
    /// While `Creating`: the idempotency token the create was sent with, so sending it again
    /// (after a kill) is recognised by AWS as the same create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_token: Option<String>,
}

/// Where a resource is in its life, as far as plinth knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Status {
    Ready,
    /// A create started but its result was never recorded (plinth was killed): the next
    /// plan looks it up by name and tags and adopts it, or creates it.
    Creating,
    /// Deletion was accepted but had not finished when plinth stopped.
    PendingDelete {
        reason: String,
        since: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputState {
    pub value: Value,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl State {
    pub fn new(stack: &str, workspace: &str) -> State {
        State {
            version: STATE_VERSION,
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            stack: stack.to_string(),
            workspace: workspace.to_string(),
            expires_at: None,
            expires_after: None,
            created_at: None,
            account: None,
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
        }
    }

    /// Applies one journal entry.
    pub fn apply_entry(&mut self, entry: &JournalEntry) {
        match entry {
            JournalEntry::Begin { name, resource } => {
                // A create that never finished: remember what was asked, so the next run can
                // adopt the resource instead of making a second one.
                self.resources
                    .entry(name.clone())
                    .or_insert_with(|| resource.clone());
            }
            JournalEntry::Put { name, resource } => {
                self.resources.insert(name.clone(), resource.clone());
            }
            JournalEntry::Remove { name } => {
                self.resources.remove(name);
            }
            JournalEntry::Outputs { outputs } => self.outputs = outputs.clone(),
            JournalEntry::Expiry {
                expires_at,
                expires_after,
            } => {
                self.expires_at = expires_at.clone();
                self.expires_after = expires_after.clone();
            }
            JournalEntry::Created { created_at } => self.created_at = created_at.clone(),
            JournalEntry::Account { account } => self.account = account.clone(),
        }
    }

    /// Whether this environment's resources are in account `id` (`own`: the caller's). A
    /// state that records none was written before plinth recorded accounts, by the caller's
    /// own credentials.
    pub fn is_in_account(&self, id: &str, own: bool) -> bool {
        match &self.account {
            Some(recorded) => recorded == id,
            None => own,
        }
    }

    /// Why a run in `account` must not touch this environment, if it must not: its
    /// resources are in another account, where this run would find none of them, take them
    /// for deleted and make them all again (or, destroying, forget what still bills). A state
    /// that records no account was written before plinth recorded it, by the credentials of
    /// the caller (`caller`), so its resources are taken to be there.
    pub fn account_problem(&self, account: Option<&str>, caller: Option<&str>) -> Option<String> {
        let recorded = self.account.as_deref().or(caller)?;
        if self.resources.is_empty() || account == Some(recorded) {
            return None;
        }
        Some(match account {
            Some(asked) => format!(
                "the environment's resources are in account {recorded} (its state says so), and this run works in account {asked}: run it in account {recorded} (with its credentials, or from the roster line naming account={recorded}); to move the environment, destroy it there first"
            ),
            None => format!(
                "the environment's resources are in account {recorded} (its state says so), and this run does not say which account it works in"
            ),
        })
    }
}

/// One finished (or started) operation, appended and fsynced as it happens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum JournalEntry {
    /// A create is about to be sent.
    Begin {
        name: String,
        resource: ResourceState,
    },
    Put {
        name: String,
        resource: ResourceState,
    },
    Remove {
        name: String,
    },
    Outputs {
        outputs: BTreeMap<String, OutputState>,
    },
    Expiry {
        expires_at: Option<String>,
        expires_after: Option<String>,
    },
    /// When the environment was first applied.
    Created {
        created_at: Option<String>,
    },
    /// The account the environment is applied in (a student's own).
    Account {
        account: Option<String>,
    },
}
