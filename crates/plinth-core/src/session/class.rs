//! A class: one environment per student of a roster, several at once, each a task of its
//! own so that one student's slow store write, failure or panic never holds up or stops the
//! others.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::outcome::{EnvOutcome, EnvResult};
use crate::roster::{Student, STUDENT_VAR};
use crate::stack::load::LoadOptions;
use crate::stack::vars::VarDecl;

/// One student's line of the class summary.
#[derive(Clone, Debug)]
pub struct StudentRow {
    pub student: String,
    /// The student's own account, when the roster names one.
    pub account: Option<String>,
    pub outcome: EnvOutcome,
    pub elapsed: Duration,
}

/// The environments of one account share its AWS rate limits (AWS throttles per account
/// and region): past this many at once they only wait on each other.
pub const ENVIRONMENTS_PER_ACCOUNT: usize = 4;
/// Environments in many accounts do not slow each other down at AWS; this bounds the memory
/// and connections of this machine.
pub const MOST_ENVIRONMENTS_AT_ONCE: usize = 16;

/// How many environments to work on at once when `--max-environments` is not given:
/// [`ENVIRONMENTS_PER_ACCOUNT`] for each account the students are in (those without an
/// `account=` share the instructor's, `caller`), at most [`MOST_ENVIRONMENTS_AT_ONCE`] and
/// never more than there are students.
pub fn environments_at_once(students: &[Student], caller: Option<&str>) -> usize {
    let accounts: std::collections::BTreeSet<Option<&str>> = students
        .iter()
        .map(|s| s.account.as_ref().map(|a| a.account_id()))
        .map(|account| account.filter(|id| Some(*id) != caller))
        .collect();
    (accounts.len() * ENVIRONMENTS_PER_ACCOUNT)
        .min(MOST_ENVIRONMENTS_AT_ONCE)
        .min(students.len())
        .max(1)
}

/// Runs `work` for every student, at most `at_once` at a time and in roster order. A
/// student not yet begun when Ctrl-C comes (`cancel`) is not started; one whose work
/// panics fails alone.
pub async fn run<W, F>(
    students: Vec<Student>,
    at_once: usize,
    cancel: watch::Receiver<bool>,
    work: W,
) -> Vec<StudentRow>
where
    W: Fn(Student) -> F + Clone + Send + 'static,
    F: Future<Output = EnvOutcome> + Send + 'static,
{
    // Made up front, none starts before `buffered` polls it: at most `at_once` run at once.
    let runs: Vec<_> = students
        .into_iter()
        .map(|student| one_student(student, cancel.clone(), work.clone()))
        .collect();
    futures::stream::iter(runs)
        .buffered(at_once.max(1))
        .collect()
        .await
}

async fn one_student<W, F>(student: Student, cancel: watch::Receiver<bool>, work: W) -> StudentRow
where
    W: Fn(Student) -> F + Send + 'static,
    F: Future<Output = EnvOutcome> + Send + 'static,
{
    let started = Instant::now();
    let name = student.name.clone();
    let account = student.account.as_ref().map(|a| a.account_id().to_string());
    let outcome = if *cancel.borrow() {
        EnvOutcome::not_started()
    } else {
        match tokio::spawn(work(student)).await {
            Ok(outcome) => outcome,
            Err(e) => EnvOutcome::failed(format!("the run stopped unexpectedly: {e}")),
        }
    };
    StudentRow {
        student: name,
        account,
        outcome,
        elapsed: started.elapsed(),
    }
}

/// A student's load options: their own workspace, and their variables (their name as
/// `student` when the stack declares it, then their line's) after the class's own.
pub fn student_options(base: &LoadOptions, student: &Student, decls: &[VarDecl]) -> LoadOptions {
    let declares_student = decls.iter().any(|d| d.name == STUDENT_VAR);
    let mut options = base.clone();
    options.workspace = student.name.clone();
    options
        .vars
        .pairs
        .extend(student.var_pairs(declares_student));
    options
}

/// 1 when any student failed, 130 when the run was interrupted, else 0.
pub fn exit_code(rows: &[StudentRow]) -> u8 {
    let verdict = Verdict::of(rows);
    if !verdict.failed.is_empty() {
        1
    } else if !verdict.stopped.is_empty() {
        130
    } else {
        0
    }
}

/// Who failed, and who Ctrl-C stopped or kept from starting.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub failed: Vec<String>,
    pub stopped: Vec<String>,
}

impl Verdict {
    pub fn of(rows: &[StudentRow]) -> Verdict {
        let named = |f: fn(&EnvResult) -> bool| -> Vec<String> {
            rows.iter()
                .filter(|r| f(&r.outcome.result))
                .map(|r| r.student.clone())
                .collect()
        };
        Verdict {
            failed: named(|r| matches!(r, EnvResult::Failed(_))),
            stopped: named(|r| matches!(r, EnvResult::Interrupted | EnvResult::NotStarted)),
        }
    }
}
