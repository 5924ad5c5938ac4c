//! How one environment's plan, apply or destroy ended: its exit code, its counts and its
//! root cause, the same for a single workspace and for each student of a roster.

use crate::engine::{ApplyReport, Outcome, StepKind};
use crate::plan::Plan;
use crate::state::Status;

/// How one environment's apply, destroy or plan ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvResult {
    /// Changes were made.
    Ok,
    NoChanges,
    /// A plan with changes to make.
    Changes,
    /// Resources changed outside plinth (`plinth drift`).
    Drifted,
    /// The root cause, one line.
    Failed(String),
    Interrupted,
    /// Never begun: Ctrl-C came first (a roster's later students).
    NotStarted,
}

impl EnvResult {
    /// The summary table's word for it.
    pub fn text(&self) -> &'static str {
        match self {
            EnvResult::Ok => "ok",
            EnvResult::NoChanges => "no changes",
            EnvResult::Changes => "changes",
            EnvResult::Drifted => "drifted",
            EnvResult::Failed(_) => "failed",
            EnvResult::Interrupted => "interrupted",
            EnvResult::NotStarted => "not started",
        }
    }
}

/// What one environment's run came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvOutcome {
    pub code: u8,
    pub result: EnvResult,
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
}

impl EnvOutcome {
    pub fn no_changes() -> EnvOutcome {
        EnvOutcome::with(0, EnvResult::NoChanges)
    }

    pub fn not_started() -> EnvOutcome {
        EnvOutcome::with(130, EnvResult::NotStarted)
    }

    pub fn failed(cause: impl Into<String>) -> EnvOutcome {
        EnvOutcome::with(1, EnvResult::Failed(first_line(&cause.into())))
    }

    fn with(code: u8, result: EnvResult) -> EnvOutcome {
        EnvOutcome {
            code,
            result,
            added: 0,
            changed: 0,
            destroyed: 0,
        }
    }

    /// What `plinth drift` found, counted in the roster's columns: resources changed,
    /// properties changed, resources deleted outside plinth. Exit code 2 when anything drifted.
    pub fn of_drift(drifted: &[crate::plan::drift::Drift]) -> EnvOutcome {
        if drifted.is_empty() {
            return EnvOutcome::no_changes();
        }
        let changed: Vec<_> = drifted.iter().filter_map(|d| d.changes.as_ref()).collect();
        EnvOutcome {
            code: 2,
            result: EnvResult::Drifted,
            added: changed.len(),
            changed: changed.iter().map(|c| c.len()).sum(),
            destroyed: drifted.len() - changed.len(),
        }
    }

    /// A plan's counts, with changes or none to make.
    pub fn of_plan(plan: &Plan) -> EnvOutcome {
        let counts = plan.counts();
        let result = match plan.has_changes() {
            true => EnvResult::Changes,
            false => EnvResult::NoChanges,
        };
        EnvOutcome {
            added: counts.to_add(),
            changed: counts.update,
            destroyed: counts.to_destroy(),
            ..EnvOutcome::with(0, result)
        }
    }

    /// A finished run: 0 when every step was done, 130 when Ctrl-C stopped it with nothing
    /// failed, else 1 with the first failure as its cause.
    pub fn of_report(report: &ApplyReport, tally: &Tally) -> EnvOutcome {
        let (code, result) = match (report.ok(), root_cause(report), report.interrupted) {
            (true, _, _) => (0, EnvResult::Ok),
            (false, Some(cause), _) => (1, EnvResult::Failed(cause)),
            (false, None, true) => (130, EnvResult::Interrupted),
            (false, None, false) => (1, EnvResult::Failed("not every step finished".into())),
        };
        EnvOutcome {
            added: tally.added,
            changed: tally.changed,
            destroyed: tally.destroyed,
            ..EnvOutcome::with(code, result)
        }
    }

    /// A destroy whose teardown check found something its state does not know.
    pub fn with_leftovers(self, code: u8) -> EnvOutcome {
        if code == self.code {
            return self;
        }
        EnvOutcome {
            code,
            result: EnvResult::Failed(
                "the teardown left resources tagged with this environment (listed above)".into(),
            ),
            ..self
        }
    }
}

/// What a run did, counted: deletions AWS accepted and still carries out apart from those
/// done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
    pub pending_deletion: usize,
    pub not_started: usize,
}

impl Tally {
    pub fn of(report: &ApplyReport) -> Tally {
        let is_pending = |name: &str| {
            report
                .state
                .resources
                .get(name)
                .is_some_and(|r| matches!(r.status, Status::PendingDelete { .. }))
        };
        let deleted: Vec<&str> = report
            .results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Done) && r.kind == StepKind::Delete)
            .map(|r| r.name.as_str())
            .collect();
        let pending_deletion = deleted.iter().filter(|n| is_pending(n)).count();
        Tally {
            added: report.count(&[StepKind::Create]),
            changed: report.count(&[StepKind::Update]),
            destroyed: deleted.len() - pending_deletion,
            pending_deletion,
            not_started: report
                .results
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::NotStarted))
                .count(),
        }
    }
}

/// The first step that failed, as one line: what the rest were skipped for.
pub fn root_cause(report: &ApplyReport) -> Option<String> {
    let failed = report.failed();
    let first = failed.iter().find_map(|r| match &r.outcome {
        Outcome::Failed(e) => Some(first_line(&format!("{} `{}`: {e}", r.kind.verb(), r.name))),
        _ => None,
    })?;
    Some(match failed.len() {
        1 => first,
        n => format!("{first} (and {} more failed)", n - 1),
    })
}

/// A cause for a one-line summary: the first line of a longer message.
pub fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string()
}
