//! One environment worked on — a stack in a workspace, loaded once, with its state store and
//! the registry of its connection — and a class of them (`class`): loading, planning under
//! the state's lock, carrying a plan out, and how it ended. The command line calls these and
//! prints what they return.

pub mod class;
pub mod outcome;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::diag::{Diagnostic, Diagnostics};
use crate::engine::{self, ApplyReport, ApplyRequest, EngineError, Reporter};
use crate::graph::DepGraph;
use crate::plan::{self, Mode, Plan, PlanError, PlanRequest};
use crate::resource::Registry;
use crate::stack::load::{LoadOptions, Parsed};
use crate::stack::Stack;
use crate::state::store::StoreError;
use crate::state::{State, StateLock, StateStore};

/// Why planning or running an environment stopped.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Whose credentials run the command, and which account the environment's resources are
/// in (a student's, through a role; else the same).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accounts {
    pub caller: String,
    pub resources: String,
}

/// A stack loaded for one workspace: what the environment is made of, before its state.
pub struct Loaded {
    pub stack: Stack,
    pub graph: DepGraph,
    /// Warnings of the load, for the caller to print.
    pub warnings: Diagnostics,
}

/// Loads a parsed stack for `options`' workspace and variables: checked, with its
/// dependency graph. Nothing is asked of AWS, so a broken stack is reported as such whatever
/// the credentials.
pub fn load(
    parsed: &Parsed,
    registry: &Registry,
    options: &LoadOptions,
) -> Result<Loaded, Diagnostics> {
    if let Some(problem) = crate::state::workspace_name_problem(&options.workspace) {
        let mut diags = Diagnostics::default();
        diags.push(Diagnostic::plain(format!("workspace {problem}")));
        return Err(diags);
    }
    let (stack, warnings) = parsed.load(registry, options)?;
    let graph = DepGraph::build(&stack, registry)?;
    Ok(Loaded {
        stack,
        graph,
        warnings,
    })
}

/// Records the accounts on a loaded stack (the state keeps them: no later run from another
/// account takes the resources for gone) and binds `${account_id}` to the resources' one.
pub fn bind_accounts(stack: &mut Stack, accounts: &Accounts) {
    if stack.needs_account_id() {
        stack.bind_account_id(&accounts.resources);
    }
    stack.caller_account = Some(accounts.caller.clone());
    stack.account = Some(accounts.resources.clone());
}

/// One environment: its stack, the types its connection reaches, and its state.
pub struct Environment {
    pub registry: Registry,
    pub stack: Stack,
    pub graph: DepGraph,
    pub store: Arc<dyn StateStore>,
    /// How long to wait for the state's lock while another command holds it.
    pub lock_timeout: Option<Duration>,
    /// Where the state was named (`--state`, `--state-dir`, the stack's `state:`), if it was.
    pub state: Option<String>,
}

/// A plan made under the state's lock, which is held until this is dropped: apply keeps it
/// from planning through applying.
pub struct Planned {
    pub lock: Box<dyn StateLock>,
    /// The state the plan was made from.
    pub state: State,
    pub plan: Plan,
}

/// How a plan is carried out.
#[derive(Clone)]
pub struct Execution {
    pub parallelism: usize,
    /// `false` for `destroy --no-wait`.
    pub wait_for_deletion: bool,
    /// Becomes `true` on Ctrl-C.
    pub cancel: watch::Receiver<bool>,
    pub reporter: Arc<dyn Reporter>,
}

/// How long operations in flight may go on after Ctrl-C: a call is answered in well under
/// this, and a wait of many minutes (a cache cluster being created) is not waited out.
pub const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// How often a waiting command asks for a held lock again.
const LOCK_POLL: Duration = Duration::from_secs(2);

impl Environment {
    /// The state as stored, without its lock.
    pub fn read_state(&self) -> Result<State, StoreError> {
        self.store.read(&self.stack.name, &self.stack.workspace)
    }

    /// Takes the state's lock for `command`, waiting up to the lock timeout.
    pub async fn lock(&self, command: &str) -> Result<(Box<dyn StateLock>, State), StoreError> {
        let stack = &self.stack;
        lock_waiting(
            &*self.store,
            (&stack.name, &stack.workspace),
            command,
            self.lock_timeout,
        )
        .await
    }

    /// Takes the lock, reads the state and plans against it.
    pub async fn plan(
        &self,
        mode: Mode,
        targets: &[String],
        parallelism: usize,
        command: &str,
    ) -> Result<Planned, SessionError> {
        let (lock, state) = self.lock(command).await?;
        let plan = plan::make_plan(PlanRequest {
            stack: &self.stack,
            graph: &self.graph,
            state: &state,
            registry: &self.registry,
            mode,
            targets: targets.to_vec(),
            parallelism,
            now: SystemTime::now(),
        })
        .await?;
        Ok(Planned { lock, state, plan })
    }

    /// What changed outside plinth since it last applied: every resource in the state read
    /// again and compared with the state. Read-only: the lock is not taken.
    pub async fn drift(&self, parallelism: usize) -> Result<Vec<plan::drift::Drift>, SessionError> {
        let state = self.read_state()?;
        let drifted = plan::drift::detect(&PlanRequest {
            stack: &self.stack,
            graph: &self.graph,
            state: &state,
            registry: &self.registry,
            mode: Mode::Apply,
            targets: Vec::new(),
            parallelism,
            now: SystemTime::now(),
        })
        .await?;
        Ok(drifted)
    }

    /// Carries out a plan made by [`Environment::plan`].
    pub async fn execute(
        &self,
        planned: Planned,
        how: &Execution,
    ) -> Result<ApplyReport, SessionError> {
        let base_dir = self.stack.file.base_dir();
        execute(&self.registry, &base_dir, planned, how).await
    }
}

/// Carries out a plan under its lock: one environment's, or a saved plan's.
pub async fn execute(
    registry: &Registry,
    base_dir: &Path,
    planned: Planned,
    how: &Execution,
) -> Result<ApplyReport, SessionError> {
    let Planned { lock, state, plan } = planned;
    let report = engine::apply(ApplyRequest {
        plan: &plan,
        registry,
        store: &*lock,
        state,
        parallelism: how.parallelism.max(1),
        reporter: how.reporter.clone(),
        cancel: how.cancel.clone(),
        base_dir: PathBuf::from(base_dir),
        progress_after: Duration::from_secs(2),
        progress_every: Duration::from_secs(10),
        wait_for_deletion: how.wait_for_deletion,
        cancel_grace: CANCEL_GRACE,
    })
    .await?;
    Ok(report)
}

/// Takes the lock of `(stack, workspace)`'s state, asking again every few seconds while
/// another command holds it, for up to `timeout` (none: a held lock is the answer).
pub async fn lock_waiting(
    store: &dyn StateStore,
    (stack, workspace): (&str, &str),
    command: &str,
    timeout: Option<Duration>,
) -> Result<(Box<dyn StateLock>, State), StoreError> {
    let started = tokio::time::Instant::now();
    let limit = timeout.unwrap_or_default();
    let mut said = false;
    loop {
        match store.lock_and_read(stack, workspace, command) {
            Err(StoreError::Locked { holder, .. } | StoreError::RemoteLocked { holder, .. })
                if started.elapsed() < limit =>
            {
                if !said {
                    tracing::warn!(
                        "waiting up to {} for the state's lock, held by {holder}",
                        humantime::format_duration(limit)
                    );
                    said = true;
                }
                tokio::time::sleep(LOCK_POLL).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests;
