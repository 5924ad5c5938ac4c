//! The session layer against the fake cloud and a temporary state folder: loading once for
//! a workspace and an account, planning and carrying out under the lock, waiting for a held
//! lock on a paused clock, the outcome of a run, and a class of students.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::class::{self, StudentRow, Verdict};
use super::outcome::{EnvOutcome, EnvResult, Tally};
use super::{bind_accounts, load, lock_waiting, Accounts, Environment, Execution};
use crate::diag::SourceFile;
use crate::plan::Mode;
use crate::resource::ResourceError;
use crate::roster::{self, Student};
use crate::stack::load::Parsed;
use crate::state::store::{StateFiles, StoreError};
use crate::state::StateStore;
use crate::teardown::{self, TaggedResource, STATE_TAG};
use crate::testing::{options, Harness, Op, Recorder};

const STACK: &str = "stack: demo\nregion: us-east-1\nresources:\n  a:\n    type: test.thing\n    name: a-${account_id}\n  b:\n    type: test.thing\n    name: b\n    depends_on: [a]\n";

fn parsed(text: &str) -> Parsed {
    Parsed::from_text(SourceFile::new("stack.yaml", text)).expect("the stack parses")
}

fn accounts(caller: &str, resources: &str) -> Accounts {
    Accounts {
        caller: caller.into(),
        resources: resources.into(),
    }
}

fn environment(h: &Harness, text: &str) -> Environment {
    let mut loaded = load(&parsed(text), &h.registry, &h.options).expect("the stack loads");
    bind_accounts(&mut loaded.stack, &accounts("111111111111", "222222222222"));
    Environment {
        registry: h.registry.clone(),
        stack: loaded.stack,
        graph: loaded.graph,
        store: Arc::new(h.files()),
        lock_timeout: None,
        state: None,
    }
}

fn execution() -> (watch::Sender<bool>, Execution) {
    let (tx, rx) = watch::channel(false);
    let how = Execution {
        parallelism: 4,
        wait_for_deletion: true,
        cancel: rx,
        reporter: Arc::new(Recorder::default()),
    };
    (tx, how)
}

async fn converge(env: &Environment, mode: Mode) -> EnvOutcome {
    let planned = env.plan(mode, &[], 4, "test").await.expect("a plan");
    let (_tx, how) = execution();
    let report = env.execute(planned, &how).await.expect("the run");
    EnvOutcome::of_report(&report, &Tally::of(&report))
}

#[test]
fn binding_accounts_binds_the_resources_account_and_records_the_caller() {
    let h = Harness::new();
    let env = environment(&h, STACK);
    assert_eq!(env.stack.account.as_deref(), Some("222222222222"));
    assert_eq!(env.stack.caller_account.as_deref(), Some("111111111111"));
    let name = format!("{:?}", env.stack.resource("a").expect("a").props);
    assert!(name.contains("a-222222222222"), "{name}");
}

#[test]
fn loading_alone_asks_for_no_account() {
    let h = Harness::new();
    let text =
        "stack: demo\nregion: us-east-1\nresources:\n  b:\n    type: test.thing\n    name: b\n";
    let loaded = load(&parsed(text), &h.registry, &options()).expect("loads");
    assert_eq!(loaded.stack.account, None);
    assert_eq!(loaded.stack.caller_account, None);
}

#[test]
fn a_bad_workspace_name_is_refused_before_anything_loads() {
    let h = Harness::new();
    let mut bad = options();
    bad.workspace = "../etc".into();
    let Err(diags) = load(&parsed(STACK), &h.registry, &bad) else {
        panic!("a workspace naming another folder must be refused");
    };
    assert!(diags.to_string().contains("workspace"), "{diags}");
}

#[tokio::test]
async fn an_environment_applies_plans_clean_then_destroys_to_nothing() {
    let h = Harness::new();
    let env = environment(&h, STACK);
    let applied = converge(&env, Mode::Apply).await;
    assert_eq!((applied.code, &applied.result), (0, &EnvResult::Ok));
    assert_eq!((applied.added, applied.changed), (2, 0));
    assert_eq!(h.cloud.objects().len(), 2);
    let stored = env.read_state().expect("state");
    assert_eq!(stored.account.as_deref(), Some("222222222222"));

    let again = env.plan(Mode::Apply, &[], 4, "test").await.expect("plan");
    assert_eq!(EnvOutcome::of_plan(&again.plan), EnvOutcome::no_changes());
    drop(again);

    let destroyed = converge(&env, Mode::Destroy).await;
    assert_eq!((destroyed.code, destroyed.destroyed), (0, 2));
    assert!(h.cloud.objects().is_empty());
    assert!(env.read_state().expect("state").resources.is_empty());
}

#[tokio::test]
async fn a_plan_of_changes_counts_them() {
    let h = Harness::new();
    let env = environment(&h, STACK);
    let planned = env.plan(Mode::Apply, &[], 4, "test").await.expect("plan");
    let outcome = EnvOutcome::of_plan(&planned.plan);
    assert_eq!(outcome.result, EnvResult::Changes);
    assert_eq!((outcome.added, outcome.destroyed, outcome.code), (2, 0, 0));
}

#[tokio::test]
async fn a_failed_step_is_the_root_cause_and_what_needs_it_is_not_counted() {
    let h = Harness::new();
    h.cloud.fail(
        Op::Create,
        "a",
        ResourceError::invalid("the service said no"),
    );
    let env = environment(&h, STACK);
    let outcome = converge(&env, Mode::Apply).await;
    assert_eq!(outcome.code, 1);
    let EnvResult::Failed(cause) = &outcome.result else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(
        cause.contains("`a`") && cause.contains("the service said no"),
        "{cause}"
    );
    assert_eq!(outcome.added, 0);
}

#[tokio::test]
async fn the_plan_holds_the_lock_until_it_is_dropped() {
    let h = Harness::new();
    let env = environment(&h, STACK);
    let planned = env.plan(Mode::Apply, &[], 4, "first").await.expect("plan");
    let Err(err) = env.lock("second").await else {
        panic!("a second command must not take a held lock");
    };
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    drop(planned);
    env.lock("third").await.expect("the lock is free again");
}

#[tokio::test(start_paused = true)]
async fn a_held_lock_is_waited_for_until_its_holder_lets_go() {
    let h = Harness::new();
    let files = h.files();
    let (held, _) = files
        .lock_and_read("demo", "default", "first")
        .expect("lock");
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(7)).await;
        drop(held);
    });
    let started = tokio::time::Instant::now();
    let store: &dyn StateStore = &files;
    let waited = lock_waiting(
        store,
        ("demo", "default"),
        "second",
        Some(Duration::from_secs(60)),
    )
    .await;
    assert!(waited.is_ok(), "the lock is taken once it is free");
    assert!(started.elapsed() >= Duration::from_secs(7));
    release.await.expect("released");
}

#[tokio::test(start_paused = true)]
async fn a_lock_held_past_the_timeout_names_its_holder() {
    let h = Harness::new();
    let files = h.files();
    let (_held, _) = files
        .lock_and_read("demo", "default", "first")
        .expect("lock");
    let started = tokio::time::Instant::now();
    let Err(err) = lock_waiting(
        &files,
        ("demo", "default"),
        "second",
        Some(Duration::from_secs(5)),
    )
    .await
    else {
        panic!("a lock never let go must fail the wait");
    };
    let StoreError::Locked { holder, .. } = &err else {
        panic!("expected the lock's holder, got {err}");
    };
    assert!(holder.contains("first"), "{holder}");
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn leftovers_after_a_destroy_fail_it_and_none_leave_it_alone() {
    let done = EnvOutcome {
        destroyed: 3,
        ..EnvOutcome::no_changes()
    };
    assert_eq!(done.clone().with_leftovers(0), done);
    let left = done.with_leftovers(3);
    assert_eq!((left.code, left.destroyed), (3, 3));
    assert!(matches!(left.result, EnvResult::Failed(_)));
}

fn students(names: &[&str]) -> Vec<Student> {
    let text: String = names.iter().map(|n| format!("{n}\n")).collect();
    roster::parse(SourceFile::new("class.roster", text))
        .expect("a roster")
        .students
}

#[tokio::test]
async fn a_class_runs_at_most_so_many_at_once_in_roster_order() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (_tx, cancel) = watch::channel(false);
    let (now, peak) = (in_flight.clone(), most.clone());
    let rows = class::run(
        students(&["ana", "bo", "cy", "di", "ed"]),
        2,
        cancel,
        move |student: Student| {
            let (now, peak) = (now.clone(), peak.clone());
            async move {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                match student.name.as_str() {
                    "cy" => EnvOutcome::failed("cy's table\nmore detail"),
                    _ => EnvOutcome::no_changes(),
                }
            }
        },
    )
    .await;
    let names: Vec<&str> = rows.iter().map(|r| r.student.as_str()).collect();
    assert_eq!(names, ["ana", "bo", "cy", "di", "ed"]);
    assert_eq!(most.load(Ordering::SeqCst), 2);
    assert_eq!(
        rows[2].outcome.result,
        EnvResult::Failed("cy's table".into())
    );
    assert_eq!(class::exit_code(&rows), 1);
    assert_eq!(Verdict::of(&rows).failed, ["cy"]);
}

#[test]
fn by_default_a_class_runs_four_environments_per_account_at_once_and_sixteen_at_most() {
    let in_one_account = students(&["ana", "bo", "cy", "di", "ed", "flo"]);
    assert_eq!(class::environments_at_once(&in_one_account, None), 4);
    let lines: Vec<String> = (0..10)
        .map(|i| match i % 2 {
            0 => format!("s{i} account=111111111111"),
            _ => format!("s{i} role_arn=arn:aws:iam::222222222222:role/Lab"),
        })
        .collect();
    let two_accounts: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(
        class::environments_at_once(&students(&two_accounts), None),
        8
    );
    assert_eq!(
        class::environments_at_once(&students(&two_accounts), Some("111111111111")),
        8,
        "the caller's own account and the other"
    );
    let with_the_callers = students(&["ana", "bo account=111111111111", "cy", "di", "ed"]);
    assert_eq!(
        class::environments_at_once(&with_the_callers, Some("111111111111")),
        4,
        "one account: the caller's"
    );
    assert_eq!(
        class::environments_at_once(&students(&["ana", "bo"]), None),
        2
    );
    let lines: Vec<String> = (0..30)
        .map(|i| format!("s{i} account={:012}", 100_000_000_000u64 + i))
        .collect();
    let many: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(class::environments_at_once(&students(&many), None), 16);
}

#[tokio::test]
async fn a_student_whose_run_panics_fails_alone() {
    let (_tx, cancel) = watch::channel(false);
    let rows = class::run(
        students(&["ana", "bo"]),
        2,
        cancel,
        |student: Student| async move {
            if student.name == "ana" {
                panic!("a bug");
            }
            EnvOutcome::no_changes()
        },
    )
    .await;
    assert!(
        matches!(&rows[0].outcome.result, EnvResult::Failed(c) if c.contains("stopped unexpectedly"))
    );
    assert_eq!(rows[1].outcome, EnvOutcome::no_changes());
}

#[tokio::test]
async fn after_ctrl_c_no_student_starts() {
    let (tx, cancel) = watch::channel(false);
    let started = Arc::new(AtomicUsize::new(0));
    let count = started.clone();
    let rows = class::run(students(&["ana", "bo", "cy"]), 1, cancel, move |_| {
        let (count, tx) = (count.clone(), tx.clone());
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(true);
            EnvOutcome {
                code: 130,
                result: EnvResult::Interrupted,
                ..EnvOutcome::no_changes()
            }
        }
    })
    .await;
    assert_eq!(started.load(Ordering::SeqCst), 1);
    let results: Vec<&EnvResult> = rows.iter().map(|r| &r.outcome.result).collect();
    assert_eq!(
        results,
        [
            &EnvResult::Interrupted,
            &EnvResult::NotStarted,
            &EnvResult::NotStarted
        ]
    );
    assert_eq!(class::exit_code(&rows), 130);
    assert_eq!(Verdict::of(&rows).stopped, ["ana", "bo", "cy"]);
}

#[test]
fn a_class_with_nothing_wrong_exits_zero() {
    let row = |name: &str| StudentRow {
        student: name.into(),
        account: None,
        outcome: EnvOutcome::no_changes(),
        elapsed: Duration::ZERO,
    };
    assert_eq!(class::exit_code(&[row("ana"), row("bo")]), 0);
    assert_eq!(Verdict::of(&[row("ana")]), Verdict::default());
}

#[test]
fn a_student_gets_their_workspace_and_their_variables_after_the_class_s() {
    let roster = roster::parse(SourceFile::new("class.roster", "ana size=2\n")).expect("roster");
    let ana = &roster.students[0];
    let mut base = options();
    base.vars.pairs = vec!["size=1".into()];
    let declared = parsed("stack: demo\nvars:\n  student: {}\n  size: {type: number}\n")
        .declared()
        .vars;
    let with_student = class::student_options(&base, ana, &declared);
    assert_eq!(with_student.workspace, "ana");
    assert_eq!(with_student.vars.pairs, ["size=1", "student=ana", "size=2"]);
    let without = class::student_options(&base, ana, &declared[1..]);
    assert_eq!(without.vars.pairs, ["size=1", "size=2"]);
}

fn tagged(arn: &str, state: Option<&str>) -> TaggedResource {
    TaggedResource {
        arn: arn.into(),
        region: "us-east-1".into(),
        tags: state
            .map(|s| (STATE_TAG.to_string(), s.to_string()))
            .into_iter()
            .collect(),
    }
}

#[test]
fn resources_whose_state_is_elsewhere_are_taken_out_and_counted() {
    let mut found = vec![
        tagged("arn:a", None),
        tagged("arn:b", Some("s3://here/class/")),
        tagged("arn:c", Some("s3://there/other")),
        tagged("arn:d", Some("s3://there/other")),
    ];
    let elsewhere = teardown::keep_states_in_view(&mut found, &["s3://here/class".into()]);
    let kept: Vec<&str> = found.iter().map(|r| r.arn.as_str()).collect();
    assert_eq!(kept, ["arn:a", "arn:b"]);
    assert_eq!(elsewhere.get("s3://there/other"), Some(&2));
    assert_eq!(elsewhere.len(), 1);
}

#[tokio::test]
async fn the_regions_of_a_teardown_check_are_the_stack_s_and_those_its_state_holds() {
    let h = Harness::new();
    let env = environment(&h, STACK);
    converge(&env, Mode::Apply).await;
    let mut state = env.read_state().expect("state");
    if let Some(r) = state.resources.get_mut("b") {
        r.region = "eu-west-1".into();
    }
    assert_eq!(
        teardown::regions_used(&env.stack, &state),
        ["eu-west-1", "us-east-1"]
    );
    let types: Vec<String> = teardown::types_used(&env.stack, &state, &env.registry)
        .iter()
        .map(|t| t.schema().type_name.to_string())
        .collect();
    assert_eq!(types, ["test.thing"]);
}

#[test]
fn local_environments_are_folders_with_a_state_or_a_journal() {
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path();
    for (stack, workspace, file) in [
        ("lab", "ana", "state.json"),
        ("lab", "bo", "journal.jsonl"),
        ("lab", "cy", "notes.txt"),
    ] {
        let folder = StateFiles::new(root, stack, workspace).dir;
        std::fs::create_dir_all(&folder).expect("folder");
        std::fs::write(folder.join(file), "{}").expect("file");
    }
    assert_eq!(
        teardown::local_environments(root),
        [
            ("lab".to_string(), "ana".to_string()),
            ("lab".into(), "bo".into())
        ]
    );
    assert!(teardown::local_environments(&root.join("absent")).is_empty());
}
