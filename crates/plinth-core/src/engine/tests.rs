//! The engine against the fake cloud, with real (short) latencies: scheduling without level
//! barriers, bounded parallelism, failure and cancellation, delete order, replacements,
//! deferred references and recovery from the journal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;

use crate::engine::{deposed_name, ApplyReport, Outcome, StepKind};
use crate::plan::{Action, Mode, Plan};
use crate::resource::ResourceError;
use crate::state::{State, Status};
use crate::testing::{outcomes, word, Call, Event, Harness, Op, Recorder};

const HEAD: &str = "stack: demo\nregion: us-east-1\n";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A `test.thing` named after itself, with extra YAML lines (indented by four spaces).
fn thing(name: &str, extra: &[&str]) -> String {
    let mut s = format!("  {name}:\n    type: test.thing\n    name: {name}\n");
    for line in extra {
        s.push_str(&format!("    {line}\n"));
    }
    s
}

fn stack_text(resources: &[String]) -> String {
    format!("{HEAD}resources:\n{}", resources.concat())
}

/// Plans `text` against the locked state and returns everything needed to apply it.
async fn plan_locked(
    h: &Harness,
    text: &str,
    mode: Mode,
) -> (Plan, crate::state::store::LockedState, State) {
    let stack = h.stack(text);
    let (locked, state) = h.lock();
    let plan = h
        .plan_against(&stack, &state, mode, &[])
        .await
        .expect("a plan");
    (plan, locked, state)
}

fn outcome_words(report: &ApplyReport) -> BTreeMap<String, String> {
    outcomes(report)
        .into_iter()
        .map(|((name, kind), o)| (format!("{name}:{kind:?}"), word(&o)))
        .collect()
}

fn expect_words(report: &ApplyReport, expected: &[(&str, &str)]) {
    let expected: BTreeMap<String, String> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(outcome_words(report), expected);
}

fn ready_names(state: &State) -> Vec<String> {
    state
        .resources
        .iter()
        .filter(|(_, r)| r.status == Status::Ready)
        .map(|(n, _)| n.clone())
        .collect()
}

fn show(h: &Harness, calls: &[Call]) -> String {
    calls
        .iter()
        .map(|c| {
            format!(
                "{:?} {} {}..{}ms",
                c.op,
                c.name,
                h.cloud.ms(c.start),
                h.cloud.ms(c.end)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------
// Scheduling
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_resource_starts_the_moment_its_own_dependencies_finish() {
    let h = Harness::new();
    h.cloud.set_latency("a", ms(300));
    h.cloud.set_latency("b", ms(20));
    h.cloud.set_latency("c", ms(10));
    h.cloud.set_latency("d", ms(10));
    let text = stack_text(&[
        thing("a", &[]),
        thing("b", &[]),
        thing("c", &["peer: ${a.arn}"]),
        thing("d", &["peer: ${b.arn}"]),
    ]);
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok());
    let a = h.cloud.call_of(Op::Create, "a");
    let b = h.cloud.call_of(Op::Create, "b");
    let c = h.cloud.call_of(Op::Create, "c");
    let d = h.cloud.call_of(Op::Create, "d");
    let log = show(&h, &h.cloud.calls());
    assert!(d.start >= b.end, "d waits for b\n{log}");
    assert!(
        d.start < a.end,
        "d must not wait for a, which it does not need (no level barrier)\n{log}"
    );
    assert!(
        d.start.duration_since(b.end) < ms(100),
        "d starts right after b\n{log}"
    );
    assert!(c.start >= a.end, "c waits for a\n{log}");
}

#[tokio::test]
async fn parallelism_bounds_how_many_operations_run_at_once() {
    let mut h = Harness::new();
    h.parallelism = 3;
    h.cloud.set_default_latency(ms(60));
    let names: Vec<String> = (1..=9).map(|i| format!("r{i}")).collect();
    let text = stack_text(&names.iter().map(|n| thing(n, &[])).collect::<Vec<_>>());
    let started = Instant::now();
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    let took = started.elapsed();
    assert!(report.ok());
    assert_eq!(h.cloud.calls_of(Op::Create).len(), 9);
    assert_eq!(
        h.cloud.max_in_flight(),
        3,
        "exactly N at once\n{}",
        show(&h, &h.cloud.calls())
    );
    assert!(took >= ms(180), "9 steps of 60ms, 3 at a time: {took:?}");
}

#[tokio::test]
async fn a_parallelism_of_one_runs_steps_strictly_one_after_another() {
    let mut h = Harness::new();
    h.parallelism = 1;
    h.cloud.set_default_latency(ms(15));
    let text = stack_text(&[thing("a", &[]), thing("b", &[]), thing("c", &[])]);
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok());
    let calls = h.cloud.calls_of(Op::Create);
    assert_eq!(h.cloud.max_in_flight(), 1);
    for pair in calls.windows(2) {
        assert!(pair[1].start >= pair[0].end, "{}", show(&h, &calls));
    }
}

#[tokio::test]
async fn the_total_time_is_close_to_the_critical_path() {
    let h = Harness::new();
    // Critical path a → b → c: 450ms. x alone: 400ms. y → z: 100ms.
    // Level by level it would take max(a, x, y) + max(b, z) + c = 400 + 150 + 150 = 700ms.
    for (n, l) in [
        ("a", 150),
        ("b", 150),
        ("c", 150),
        ("x", 400),
        ("y", 50),
        ("z", 50),
    ] {
        h.cloud.set_latency(n, ms(l));
    }
    let text = stack_text(&[
        thing("a", &[]),
        thing("b", &["peer: ${a.arn}"]),
        thing("c", &["peer: ${b.arn}"]),
        thing("x", &[]),
        thing("y", &[]),
        thing("z", &["peer: ${y.arn}"]),
    ]);
    let stack = h.stack(&text);
    let (locked, state) = h.lock();
    let plan = h
        .plan_against(&stack, &state, Mode::Apply, &[])
        .await
        .expect("plan");
    let (_tx, rx) = watch::channel(false);
    let started = Instant::now();
    let report = h
        .run(&plan, &locked, state, rx, Arc::new(Recorder::default()))
        .await;
    let took = started.elapsed();
    assert!(report.ok());
    assert!(took >= ms(450), "cannot beat the critical path: {took:?}");
    assert!(
        took < ms(600),
        "took {took:?}; the critical path is 450ms and level-by-level would be 700ms\n{}",
        show(&h, &h.cloud.calls())
    );
}

#[tokio::test]
async fn a_dependent_receives_the_real_attributes_of_what_it_waits_for() {
    let h = Harness::new();
    let text = stack_text(&[
        thing("x", &[]),
        thing("y", &["peer: ${x.arn}", "tags: { owner: \"${x.id}\" }"]),
    ]);
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok());
    let (x_id, _) = h.cloud.object_named("x").expect("x exists");
    let (_, y) = h.cloud.object_named("y").expect("y exists");
    assert_eq!(y.props["peer"], json!(format!("arn:fake:thing/{x_id}")));
    assert_eq!(y.props["tags"]["owner"], json!(x_id));
    let state = h.stored_state();
    assert_eq!(state.resources["y"].deps, vec!["x".to_string()]);
    assert_eq!(
        state.resources["y"].id,
        h.cloud.object_named("y").expect("y").0
    );
}

#[tokio::test]
async fn a_second_apply_of_the_same_stack_changes_nothing() {
    let h = Harness::new();
    let text = format!(
        "{}outputs:\n  y_arn: ${{y.arn}}\n",
        stack_text(&[
            thing("x", &["size: 2"]),
            thing(
                "y",
                &["peer: ${x.arn}", "rules: [{ peer: \"${x.id}\", port: 80 }]"]
            ),
        ])
    );
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok());
    let state = h.stored_state();
    let (y_id, _) = h.cloud.object_named("y").expect("y");
    assert_eq!(
        state.outputs["y_arn"].value,
        json!(format!("arn:fake:thing/{y_id}")),
        "outputs are written once every step succeeded"
    );
    h.cloud.clear_log();
    let stack = h.stack(&text);
    let plan = h
        .plan_against(&stack, &state, Mode::Apply, &[])
        .await
        .expect("plan");
    assert!(
        !plan.has_changes(),
        "{:#?}",
        plan.resources
            .iter()
            .map(|r| (&r.name, r.action))
            .collect::<Vec<_>>()
    );
    assert_eq!(h.cloud.calls_of(Op::Read).len(), 2, "one read per resource");
}

#[tokio::test]
async fn an_in_place_change_is_one_update_call() {
    let h = Harness::new();
    h.converge(&stack_text(&[thing("a", &["size: 1"])]), Mode::Apply)
        .await;
    let (id, _) = h.cloud.object_named("a").expect("a");
    h.cloud.clear_log();
    let (plan, report, _) = h
        .converge(&stack_text(&[thing("a", &["size: 2"])]), Mode::Apply)
        .await;
    assert_eq!(plan.change("a").expect("a").action, Action::Update);
    assert!(report.ok());
    let ops: Vec<Op> = h
        .cloud
        .calls()
        .iter()
        .filter(|c| c.op != Op::Read)
        .map(|c| c.op)
        .collect();
    assert_eq!(ops, vec![Op::Update]);
    assert_eq!(h.cloud.objects()[&id].props["size"], json!(2));
    assert_eq!(h.stored_state().resources["a"].props["size"], json!(2));
}

#[tokio::test]
async fn a_long_step_is_reported_as_still_running_with_its_latest_status() {
    let mut h = Harness::new();
    h.progress_after = ms(30);
    h.progress_every = ms(40);
    h.cloud.set_latency("a", ms(150));
    let (_, report, recorder) = h
        .converge(&stack_text(&[thing("a", &[])]), Mode::Apply)
        .await;
    assert!(report.ok());
    let still: Vec<Option<String>> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::StillRunning {
                name,
                kind: StepKind::Create,
                status,
            } if name == "a" => Some(status),
            _ => None,
        })
        .collect();
    assert!(
        (2..=4).contains(&still.len()),
        "at 30, 70, 110ms: {still:?}"
    );
    assert!(still
        .iter()
        .all(|s| s.as_deref() == Some("waiting for `a` to be ready")));
    let events = recorder.events();
    assert!(matches!(&events[0], Event::Started { name, kind: StepKind::Create } if name == "a"));
    assert!(matches!(
        events.last(),
        Some(Event::Finished {
            name,
            kind: StepKind::Create,
            outcome: Outcome::Done,
            id: Some(_),
        }) if name == "a"
    ));
}

// ---------------------------------------------------------------------------------------
// Failure and cancellation
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_failed_step_skips_its_dependents_and_stops_new_work_while_in_flight_steps_finish() {
    let mut h = Harness::new();
    h.parallelism = 2;
    h.cloud.set_latency("a_bad", ms(50));
    h.cloud.set_latency("b_slow", ms(250));
    h.cloud.set_default_latency(ms(10));
    h.cloud.fail(
        Op::Create,
        "a_bad",
        ResourceError::invalid("the service said no"),
    );
    let text = format!(
        "{}outputs:\n  slow: ${{b_slow.arn}}\n",
        stack_text(&[
            thing("a_bad", &[]),
            thing("b_slow", &[]),
            thing("c_dep", &["peer: ${a_bad.arn}"]),
            thing("d_dep", &["peer: ${c_dep.arn}"]),
            thing("q1", &[]),
            thing("q2", &[]),
        ])
    );
    let (_, report, recorder) = h.converge(&text, Mode::Apply).await;
    expect_words(
        &report,
        &[
            ("a_bad:Create", "failed"),
            ("b_slow:Create", "done"),
            ("c_dep:Create", "skipped(a_bad)"),
            ("d_dep:Create", "skipped(a_bad)"),
            ("q1:Create", "not started"),
            ("q2:Create", "not started"),
        ],
    );
    assert!(!report.ok());
    assert!(!report.interrupted);
    let failed: Vec<&str> = report.failed().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(failed, vec!["a_bad"]);
    // Only the two that started ever reached the cloud; the slow one finished after the
    // failure instead of being abandoned.
    let mut created = h.cloud.names_of(Op::Create);
    created.sort();
    assert_eq!(created, vec!["a_bad", "b_slow"]);
    let bad = h.cloud.call_of(Op::Create, "a_bad");
    let slow = h.cloud.call_of(Op::Create, "b_slow");
    assert!(slow.end > bad.end);
    let started: Vec<String> = recorder.started().into_iter().map(|(n, _)| n).collect();
    assert_eq!(started, vec!["a_bad", "b_slow"]);
    // The state holds exactly what completed (plus the marker of the create that failed,
    // so a next run can adopt it if the service made it after all).
    let state = h.stored_state();
    assert_eq!(ready_names(&state), vec!["b_slow"]);
    assert_eq!(
        state.resources["b_slow"].id,
        h.cloud.object_named("b_slow").expect("b").0
    );
    for absent in ["c_dep", "d_dep", "q1", "q2"] {
        assert!(!state.resources.contains_key(absent), "{absent} in state");
    }
    let bad = &state.resources["a_bad"];
    assert_eq!(
        (bad.status.clone(), bad.id.as_str()),
        (Status::Creating, "")
    );
    assert!(state.outputs.is_empty(), "outputs wait for a complete run");
}

#[tokio::test]
async fn after_a_failed_run_a_rerun_creates_only_what_is_missing() {
    let h = Harness::new();
    h.cloud
        .fail(Op::Create, "b", ResourceError::other("transient"));
    let text = stack_text(&[thing("a", &[]), thing("b", &["peer: ${a.arn}"])]);
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(!report.ok());
    let a_id = h.cloud.object_named("a").expect("a").0;
    h.cloud.clear_failures();
    h.cloud.clear_log();
    let (plan, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok(), "{:?}", outcome_words(&report));
    assert_eq!(plan.change("a").expect("a").action, Action::NoOp);
    assert_eq!(h.cloud.names_of(Op::Create), vec!["b"]);
    assert_eq!(h.cloud.object_named("a").expect("a").0, a_id);
    assert_eq!(ready_names(&h.stored_state()), vec!["a", "b"]);
}

#[tokio::test]
async fn cancelling_stops_scheduling_lets_the_running_step_finish_and_saves() {
    let mut h = Harness::new();
    h.parallelism = 1;
    h.cloud.set_default_latency(ms(100));
    let text = stack_text(&[thing("a", &[]), thing("b", &[]), thing("c", &[])]);
    let (plan, locked, state) = plan_locked(&h, &text, Mode::Apply).await;
    let (tx, rx) = watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        tokio::time::sleep(ms(150)).await;
        let _ = tx.send(true);
        tx
    });
    let report = h
        .run(&plan, &locked, state, rx, Arc::new(Recorder::default()))
        .await;
    let _tx = ctrl_c.await.expect("sender task");
    assert!(report.interrupted);
    assert!(!report.ok());
    expect_words(
        &report,
        &[
            ("a:Create", "done"),
            ("b:Create", "done"),
            ("c:Create", "not started"),
        ],
    );
    assert_eq!(h.cloud.names_of(Op::Create), vec!["a", "b"]);
    drop(locked);
    let saved = h.stored_state();
    assert_eq!(ready_names(&saved), vec!["a", "b"]);
    assert!(!h.files().journal().exists(), "folded into the state file");
}

#[tokio::test(start_paused = true)]
async fn after_ctrl_c_a_step_that_never_ends_is_abandoned_after_the_grace_and_the_run_saves() {
    let mut h = Harness::new();
    h.cancel_grace = Duration::from_secs(10);
    // `hung` is a call that never answers; `quick` finishes at once.
    h.cloud
        .set_op_latency(Op::Create, "hung", Duration::from_secs(24 * 3600));
    let text = stack_text(&[thing("hung", &[]), thing("quick", &[])]);
    let (plan, locked, state) = plan_locked(&h, &text, Mode::Apply).await;
    let (tx, rx) = watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = tx.send(true);
        tx
    });
    let started = tokio::time::Instant::now();
    let report = h
        .run(&plan, &locked, state, rx, Arc::new(Recorder::default()))
        .await;
    let _tx = ctrl_c.await.expect("sender task");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(11),
        "Ctrl-C, then the grace"
    );
    assert!(report.interrupted);
    expect_words(
        &report,
        &[("hung:Create", "abandoned"), ("quick:Create", "done")],
    );
    drop(locked);
    let saved = h.stored_state();
    assert_eq!(ready_names(&saved), vec!["quick"]);
    // The create was sent: its intent is kept, so the next run finds what it made.
    assert_eq!(saved.resources["hung"].status, Status::Creating);
}

#[tokio::test]
async fn a_run_cancelled_before_it_starts_starts_nothing_and_records_nothing() {
    let h = Harness::new();
    let text = stack_text(&[thing("a", &[]), thing("b", &[])]);
    let (plan, locked, state) = plan_locked(&h, &text, Mode::Apply).await;
    let (tx, rx) = watch::channel(false);
    tx.send(true).expect("cancel");
    let report = h
        .run(&plan, &locked, state, rx, Arc::new(Recorder::default()))
        .await;
    assert!(report.interrupted);
    expect_words(
        &report,
        &[("a:Create", "not started"), ("b:Create", "not started")],
    );
    assert!(h.cloud.names_of(Op::Create).is_empty());
    drop(locked);
    assert!(ready_names(&h.stored_state()).is_empty());
}

#[tokio::test]
async fn a_run_whose_cancel_sender_is_gone_still_completes() {
    let h = Harness::new();
    h.cloud.set_default_latency(ms(50));
    let text = stack_text(&[thing("a", &[]), thing("b", &["peer: ${a.arn}"])]);
    let (plan, locked, state) = plan_locked(&h, &text, Mode::Apply).await;
    let (tx, rx) = watch::channel(false);
    drop(tx);
    let report = tokio::time::timeout(
        Duration::from_secs(5),
        h.run(&plan, &locked, state, rx, Arc::new(Recorder::default())),
    )
    .await
    .expect("the run finishes");
    assert!(report.ok());
    assert!(!report.interrupted);
}

// ---------------------------------------------------------------------------------------
// Deletes and replacements
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn destroy_without_waiting_records_pending_deletions_that_the_next_run_confirms() {
    let mut h = Harness::new();
    let text = stack_text(&[thing("a", &[]), thing("b", &["peer: ${a.arn}"])]);
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok());
    h.wait_for_deletion = false;
    let (_, report, _) = h.converge(&text, Mode::Destroy).await;
    assert!(report.ok());
    let state = h.stored_state();
    assert_eq!(state.resources.len(), 2, "kept as pending, not forgotten");
    assert!(state
        .resources
        .values()
        .all(|r| matches!(&r.status, Status::PendingDelete { reason, .. } if reason.contains("still deleting"))));
    // The next destroy reads them, finds them gone, and only forgets them.
    h.wait_for_deletion = true;
    h.cloud.clear_log();
    let (plan, report, _) = h.converge(&text, Mode::Destroy).await;
    assert!(report.ok());
    assert_eq!(
        plan.counts().delete,
        0,
        "nothing left to delete in the cloud"
    );
    assert!(h.cloud.names_of(Op::Delete).is_empty());
    assert!(h.stored_state().resources.is_empty());
}

#[tokio::test]
async fn destroy_runs_in_reverse_dependency_order() {
    let h = Harness::new();
    let text = format!(
        "{HEAD}expires_after: 8h\nresources:\n{}",
        [
            thing("a", &[]),
            thing("b", &["peer: ${a.arn}"]),
            thing("c", &["depends_on: [b]"]),
            thing("solo", &[]),
        ]
        .concat()
    );
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok());
    assert!(h.stored_state().expires_at.is_some());
    h.cloud.set_default_latency(ms(30));
    h.cloud.clear_log();
    let (plan, report, _) = h.converge(&text, Mode::Destroy).await;
    assert_eq!(plan.counts().delete, 4);
    assert!(report.ok(), "{:?}", outcome_words(&report));
    let deletes = h.cloud.calls_of(Op::Delete);
    let del = |n: &str| h.cloud.call_of(Op::Delete, n);
    assert!(del("c").end <= del("b").start, "{}", show(&h, &deletes));
    assert!(del("b").end <= del("a").start, "{}", show(&h, &deletes));
    assert!(
        del("solo").start < del("c").end,
        "an unrelated delete does not wait\n{}",
        show(&h, &deletes)
    );
    assert!(h.cloud.objects().is_empty());
    let state = h.stored_state();
    assert!(state.resources.is_empty());
    assert_eq!(
        state.expires_at, None,
        "a destroyed stack no longer expires"
    );
}

#[tokio::test]
async fn a_failed_delete_keeps_the_resource_and_what_it_depends_on() {
    let h = Harness::new();
    let text = stack_text(&[
        thing("a", &[]),
        thing("b", &["peer: ${a.arn}"]),
        thing("other", &[]),
    ]);
    h.converge(&text, Mode::Apply).await;
    h.cloud
        .fail(Op::Delete, "b", ResourceError::other("DependencyViolation"));
    let (_, report, _) = h.converge(&text, Mode::Destroy).await;
    let words = outcome_words(&report);
    assert_eq!(words["b:Delete"], "failed");
    assert_eq!(words["a:Delete"], "skipped(b)");
    assert!(
        words["other:Delete"] == "done" || words["other:Delete"] == "not started",
        "{words:?}"
    );
    let state = h.stored_state();
    assert!(state.resources.contains_key("a") && state.resources.contains_key("b"));
    assert!(h.cloud.object_named("a").is_some(), "a was never deleted");
}

#[tokio::test]
async fn a_resource_that_stops_referring_to_another_is_updated_before_that_one_is_deleted() {
    let h = Harness::new();
    h.converge(
        &stack_text(&[thing("x", &[]), thing("y", &["peer: ${x.arn}"])]),
        Mode::Apply,
    )
    .await;
    h.cloud.set_default_latency(ms(30));
    h.cloud.clear_log();
    let (plan, report, _) = h
        .converge(
            &stack_text(&[thing("y", &["peer: standalone"])]),
            Mode::Apply,
        )
        .await;
    assert_eq!(plan.change("x").expect("x").action, Action::Delete);
    assert_eq!(plan.change("y").expect("y").action, Action::Update);
    assert!(report.ok());
    let update = h.cloud.call_of(Op::Update, "y");
    let delete = h.cloud.call_of(Op::Delete, "x");
    assert!(update.end <= delete.start, "{}", show(&h, &h.cloud.calls()));
}

#[tokio::test]
async fn a_plain_replacement_deletes_before_it_creates() {
    let h = Harness::new();
    h.converge(&stack_text(&[thing("a", &[])]), Mode::Apply)
        .await;
    let (old_id, _) = h.cloud.object_named("a").expect("a");
    h.cloud.clear_log();
    let text = format!("{HEAD}resources:\n  a:\n    type: test.thing\n    name: renamed\n");
    let (plan, report, _) = h.converge(&text, Mode::Apply).await;
    assert_eq!(plan.change("a").expect("a").action, Action::Replace);
    assert!(report.ok(), "{:?}", outcome_words(&report));
    let delete = h.cloud.call_of(Op::Delete, "a");
    let create = h.cloud.call_of(Op::Create, "a");
    assert!(delete.end <= create.start, "{}", show(&h, &h.cloud.calls()));
    let state = h.stored_state();
    assert_ne!(state.resources["a"].id, old_id);
    assert_eq!(state.resources["a"].props["name"], json!("renamed"));
    assert_eq!(h.cloud.objects().len(), 1);
}

#[tokio::test]
async fn a_resource_moved_to_another_region_is_deleted_there_and_created_anew() {
    let h = Harness::new();
    h.converge(
        &stack_text(&[thing("a", &["region: eu-west-1"])]),
        Mode::Apply,
    )
    .await;
    h.cloud.clear_log();
    let (plan, report, _) = h
        .converge(&stack_text(&[thing("a", &[])]), Mode::Apply)
        .await;
    let change = plan.change("a").expect("a");
    assert_eq!(change.action, Action::Replace);
    assert_eq!(change.replace_reasons, ["region (eu-west-1 → us-east-1)"]);
    assert!(report.ok(), "{:?}", outcome_words(&report));
    assert_eq!(h.cloud.call_of(Op::Delete, "a").region, "eu-west-1");
    assert_eq!(h.cloud.call_of(Op::Create, "a").region, "us-east-1");
    assert_eq!(h.stored_state().resources["a"].region, "us-east-1");
    assert_eq!(h.cloud.objects().len(), 1);
}

#[tokio::test]
async fn a_create_before_destroy_replacement_creates_before_it_deletes() {
    let h = Harness::new();
    let cbd = "lifecycle: { create_before_destroy: true }";
    h.converge(&stack_text(&[thing("a", &[cbd])]), Mode::Apply)
        .await;
    let (old_id, _) = h.cloud.object_named("a").expect("a");
    h.cloud.clear_log();
    let text =
        format!("{HEAD}resources:\n  a:\n    type: test.thing\n    name: renamed\n    {cbd}\n");
    let (plan, report, _) = h.converge(&text, Mode::Apply).await;
    assert_eq!(plan.change("a").expect("a").action, Action::Replace);
    assert!(report.ok(), "{:?}", outcome_words(&report));
    let create = h.cloud.call_of(Op::Create, "a");
    let delete = h.cloud.call_of(Op::Delete, "a");
    assert!(create.end <= delete.start, "{}", show(&h, &h.cloud.calls()));
    let objects = h.cloud.objects();
    assert_eq!(objects.len(), 1);
    assert!(!objects.contains_key(&old_id), "the old one was deleted");
    let state = h.stored_state();
    assert_eq!(state.resources.keys().collect::<Vec<_>>(), vec!["a"]);
    assert!(!state.resources.contains_key(&deposed_name("a")));
    assert_ne!(state.resources["a"].id, old_id);
}

#[tokio::test]
async fn a_failed_delete_of_a_deposed_resource_keeps_it_in_state_for_the_next_run() {
    let h = Harness::new();
    let cbd = "lifecycle: { create_before_destroy: true }";
    h.converge(&stack_text(&[thing("a", &[cbd])]), Mode::Apply)
        .await;
    let (old_id, _) = h.cloud.object_named("a").expect("a");
    h.cloud
        .fail(Op::Delete, "a", ResourceError::other("still in use"));
    let text =
        format!("{HEAD}resources:\n  a:\n    type: test.thing\n    name: renamed\n    {cbd}\n");
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(!report.ok());
    let state = h.stored_state();
    let deposed = state
        .resources
        .get(&deposed_name("a"))
        .expect("the old half waits for deletion");
    assert_eq!(deposed.id, old_id);
    assert_ne!(state.resources["a"].id, old_id);
    // The next run deletes the leftover and nothing else.
    h.cloud.clear_failures();
    h.cloud.clear_log();
    let (plan, report, _) = h.converge(&text, Mode::Apply).await;
    assert_eq!(
        plan.change(&deposed_name("a")).expect("planned").action,
        Action::Delete
    );
    assert!(report.ok(), "{:?}", outcome_words(&report));
    assert!(!h.stored_state().resources.contains_key(&deposed_name("a")));
    assert_eq!(h.cloud.objects().len(), 1);
}

#[tokio::test]
async fn a_create_before_destroy_replacement_is_journaled_before_its_create_so_a_failure_strands_nothing(
) {
    let h = Harness::new();
    let cbd = "lifecycle: { create_before_destroy: true }";
    h.converge(&stack_text(&[thing("a", &[cbd])]), Mode::Apply)
        .await;
    let (old_id, _) = h.cloud.object_named("a").expect("a");
    h.cloud
        .fail(Op::Create, "a", ResourceError::other("connection reset"));
    let text =
        format!("{HEAD}resources:\n  a:\n    type: test.thing\n    name: renamed\n    {cbd}\n");
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(!report.ok());
    // What a kill -9 after the create was sent leaves too: the new half as a create in
    // flight, the old one waiting under its deposed name.
    let state = h.stored_state();
    assert_eq!(state.resources["a"].status, Status::Creating);
    assert_eq!(state.resources[&deposed_name("a")].id, old_id);
    h.cloud.clear_failures();
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok(), "{:?}", outcome_words(&report));
    let objects = h.cloud.objects();
    assert_eq!(
        objects.len(),
        1,
        "one new thing, the old one deleted: {objects:?}"
    );
    assert!(!objects.contains_key(&old_id));
    let state = h.stored_state();
    assert_eq!(state.resources.keys().collect::<Vec<_>>(), vec!["a"]);
    assert_eq!(state.resources["a"].status, Status::Ready);
}

#[tokio::test]
async fn a_deposed_resource_whose_deletion_aws_carries_on_with_keeps_its_reason_in_state() {
    let mut h = Harness::new();
    let cbd = "lifecycle: { create_before_destroy: true }";
    h.converge(&stack_text(&[thing("a", &[cbd])]), Mode::Apply)
        .await;
    let (old_id, _) = h.cloud.object_named("a").expect("a");
    h.cloud
        .fail(Op::Delete, "a", ResourceError::other("still in use"));
    let text =
        format!("{HEAD}resources:\n  a:\n    type: test.thing\n    name: renamed\n    {cbd}\n");
    h.converge(&text, Mode::Apply).await;
    h.cloud.clear_failures();
    // The leftover is deleted outright next time; under --no-wait AWS carries on with it.
    h.wait_for_deletion = false;
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok(), "{:?}", outcome_words(&report));
    let state = h.stored_state();
    let deposed = &state.resources[&deposed_name("a")];
    assert_eq!(deposed.id, old_id);
    assert!(
        matches!(&deposed.status, Status::PendingDelete { reason, .. } if reason.contains("still deleting")),
        "{:?}",
        deposed.status
    );
}

// ---------------------------------------------------------------------------------------
// Deferred references
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn mutual_rule_references_create_both_then_complete_the_deferred_rules() {
    let h = Harness::new();
    let text = stack_text(&[
        thing("x", &["rules: [{ peer: \"${y.id}\", port: 80 }]"]),
        thing("y", &["rules: [{ peer: \"${x.id}\", port: 81 }]"]),
    ]);
    let (plan, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok(), "{:?}", outcome_words(&report));
    let later = plan
        .resources
        .iter()
        .find(|r| !r.deferred.is_empty())
        .expect("one side is deferred")
        .name
        .clone();
    let words = outcome_words(&report);
    assert_eq!(words[&format!("{later}:CompleteDeferred")], "done");
    assert_eq!(words.len(), 3, "{words:?}");
    // Both exist before the deferred rule is added.
    let second = h.cloud.call_of(Op::Update, &later);
    for n in ["x", "y"] {
        assert!(h.cloud.call_of(Op::Create, n).end <= second.start);
    }
    let (x_id, x) = h.cloud.object_named("x").expect("x");
    let (y_id, y) = h.cloud.object_named("y").expect("y");
    assert_eq!(x.props["rules"], json!([{"peer": y_id, "port": 80}]));
    assert_eq!(y.props["rules"], json!([{"peer": x_id, "port": 81}]));
    // And the result is stable: the next plan has nothing to do.
    let state = h.stored_state();
    let stack = h.stack(&text);
    let again = h
        .plan_against(&stack, &state, Mode::Apply, &[])
        .await
        .expect("plan");
    assert!(!again.has_changes(), "{:#?}", again.resources);
}

#[tokio::test]
async fn mutual_rule_references_are_destroyed_cleanly() {
    let h = Harness::new();
    let text = stack_text(&[
        thing("x", &["rules: [{ peer: \"${y.id}\" }]"]),
        thing("y", &["rules: [{ peer: \"${x.id}\" }]"]),
    ]);
    assert!(h.converge(&text, Mode::Apply).await.1.ok());
    let (_, report, _) = h.converge(&text, Mode::Destroy).await;
    assert!(report.ok(), "{:?}", outcome_words(&report));
    assert!(h.cloud.objects().is_empty());
    assert!(h.stored_state().resources.is_empty());
}

// ---------------------------------------------------------------------------------------
// The journal
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_run_killed_midway_is_recovered_from_the_journal() {
    let h = Harness::new();
    h.cloud.set_latency("a", ms(20));
    h.cloud.set_latency("b", ms(20));
    h.cloud.set_op_latency(Op::Create, "slow", ms(2_000));
    let text = stack_text(&[
        thing("a", &[]),
        thing("b", &["peer: ${a.arn}"]),
        thing("slow", &[]),
    ]);
    let (plan, locked, state) = plan_locked(&h, &text, Mode::Apply).await;
    let (_tx, rx) = watch::channel(false);
    // Dropping the apply future midway is what a kill does to it: no final state write.
    let killed = tokio::time::timeout(
        ms(300),
        h.run(&plan, &locked, state, rx, Arc::new(Recorder::default())),
    )
    .await;
    assert!(killed.is_err(), "the run was still going");
    assert!(h.files().journal().exists());
    assert!(
        !h.files().state().exists(),
        "never written by the killed run"
    );
    drop(locked);

    let (_locked, recovered) = h.lock();
    assert_eq!(ready_names(&recovered), vec!["a", "b"]);
    assert_eq!(
        recovered.resources["a"].id,
        h.cloud.object_named("a").expect("a").0
    );
    assert_eq!(recovered.resources["b"].deps, vec!["a".to_string()]);
    assert_eq!(
        recovered.resources["slow"].status,
        Status::Creating,
        "an operation in flight is remembered as started"
    );
    assert!(!h.files().journal().exists(), "folded into the state");
    assert!(h.files().state().exists());

    // The next plan looks for the interrupted one and, not finding it, creates it.
    let stack = h.stack(&text);
    let plan = h
        .plan_against(&stack, &recovered, Mode::Apply, &[])
        .await
        .expect("plan");
    let slow = plan.change("slow").expect("slow");
    assert_eq!((slow.action, slow.adopted), (Action::Create, Some(false)));
    assert_eq!(plan.change("a").expect("a").action, Action::NoOp);
}

#[tokio::test]
async fn after_a_run_that_fails_midway_the_locked_read_returns_what_completed() {
    let h = Harness::new();
    h.cloud.fail(Op::Create, "c", ResourceError::other("nope"));
    let text = stack_text(&[
        thing("a", &[]),
        thing("b", &["peer: ${a.arn}"]),
        thing("c", &["peer: ${b.arn}"]),
    ]);
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(!report.ok());
    let (_locked, state) = h.lock();
    assert_eq!(ready_names(&state), vec!["a", "b"]);
    assert_eq!(state.serial, 1, "one write, by the failed run");
}

// ---------------------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------------------

const WITH_LOOKUP: &str = "  net:\n    type: test.network\n    name: main\n";

#[tokio::test]
async fn a_lookup_is_read_recorded_and_feeds_its_dependents() {
    let h = Harness::new();
    let text = stack_text(&[
        WITH_LOOKUP.to_string(),
        thing("a", &["subnets: ${net.subnet_ids}", "peer: ${net.id}"]),
    ]);
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok(), "{:?}", outcome_words(&report));
    let (_, a) = h.cloud.object_named("a").expect("a");
    assert_eq!(a.props["subnets"], json!(["subnet-a", "subnet-b"]));
    assert_eq!(a.props["peer"], json!("net-main"));
    let state = h.stored_state();
    assert_eq!(state.resources["net"].id, "net-main");
    assert_eq!(state.resources["net"].type_name, "test.network");
}

#[tokio::test]
async fn destroying_a_stack_never_deletes_what_was_only_looked_up() {
    let h = Harness::new();
    let text = stack_text(&[WITH_LOOKUP.to_string(), thing("a", &["peer: ${net.id}"])]);
    assert!(h.converge(&text, Mode::Apply).await.1.ok());
    h.cloud.clear_log();
    let (plan, report, _) = h.converge(&text, Mode::Destroy).await;
    assert!(report.ok(), "{:?}", outcome_words(&report));
    assert!(
        h.cloud.calls_of(Op::Delete).iter().all(|c| c.name != "net"),
        "{}",
        show(&h, &h.cloud.calls())
    );
    assert!(
        h.stored_state().resources.is_empty(),
        "the lookup is forgotten"
    );
    assert_eq!(plan.counts().delete, 1, "only `a` is destroyed");
}

#[tokio::test]
async fn removing_a_lookup_from_the_stack_only_forgets_it() {
    let h = Harness::new();
    assert!(h
        .converge(&stack_text(&[WITH_LOOKUP.to_string()]), Mode::Apply)
        .await
        .1
        .ok());
    h.cloud.clear_log();
    let (_, report, _) = h
        .converge(&stack_text(&[thing("a", &[])]), Mode::Apply)
        .await;
    assert!(report.ok(), "{:?}", outcome_words(&report));
    assert!(h.cloud.calls_of(Op::Delete).is_empty());
    assert!(!h.stored_state().resources.contains_key("net"));
}

#[tokio::test]
async fn a_dependent_of_a_replaced_resource_gets_the_new_attributes() {
    let h = Harness::new();
    h.converge(
        &stack_text(&[thing("x", &[]), thing("y", &["peer: ${x.arn}"])]),
        Mode::Apply,
    )
    .await;
    let (old_x, _) = h.cloud.object_named("x").expect("x");
    let text = format!(
        "{HEAD}resources:\n  x:\n    type: test.thing\n    name: x2\n{}",
        thing("y", &["peer: ${x.arn}"])
    );
    let (plan, report, _) = h.converge(&text, Mode::Apply).await;
    assert_eq!(plan.change("x").expect("x").action, Action::Replace);
    assert_eq!(plan.change("y").expect("y").action, Action::Update);
    assert!(report.ok(), "{:?}", outcome_words(&report));
    let (new_x, _) = h.cloud.object_named("x").expect("x");
    assert_ne!(new_x, old_x);
    let (_, y) = h.cloud.object_named("y").expect("y");
    assert_eq!(y.props["peer"], json!(format!("arn:fake:thing/{new_x}")));
}

// ---------------------------------------------------------------------------------------
// Saved plans, adoption, outputs and expiry
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_saved_plan_read_back_from_json_applies_the_same() {
    let h = Harness::new();
    let text = format!(
        "{}outputs:\n  y_peer: \"${{y.name}}:${{x.arn}}\"\n",
        stack_text(&[
            thing("x", &["rules: [{ peer: \"${y.id}\" }]"]),
            thing(
                "y",
                &["peer: \"to-${x.arn}\"", "rules: [{ peer: \"${x.id}\" }]"]
            ),
        ])
    );
    let (plan, locked, state) = plan_locked(&h, &text, Mode::Apply).await;
    let saved = serde_json::to_string_pretty(&plan).expect("serialises");
    let read_back: Plan = serde_json::from_str(&saved).expect("deserialises");
    let (_tx, rx) = watch::channel(false);
    let report = h
        .run(
            &read_back,
            &locked,
            state,
            rx,
            Arc::new(Recorder::default()),
        )
        .await;
    assert!(report.ok(), "{:?}", outcome_words(&report));
    let (x_id, _) = h.cloud.object_named("x").expect("x");
    let (y_id, y) = h.cloud.object_named("y").expect("y");
    assert_eq!(y.props["peer"], json!(format!("to-arn:fake:thing/{x_id}")));
    assert_eq!(
        h.cloud.object_named("x").expect("x").1.props["rules"][0]["peer"],
        json!(y_id)
    );
    assert_eq!(
        report.state.outputs["y_peer"].value,
        json!(format!("y:arn:fake:thing/{x_id}"))
    );
}

#[tokio::test]
async fn a_create_before_destroy_replacement_lets_dependents_move_before_the_old_one_goes() {
    let h = Harness::new();
    let cbd = "lifecycle: { create_before_destroy: true }";
    h.converge(
        &stack_text(&[thing("x", &[cbd]), thing("y", &["peer: ${x.arn}"])]),
        Mode::Apply,
    )
    .await;
    let (old_x, _) = h.cloud.object_named("x").expect("x");
    h.cloud.set_default_latency(ms(20));
    h.cloud.clear_log();
    let text = format!(
        "{HEAD}resources:\n  x:\n    type: test.thing\n    name: x2\n    {cbd}\n{}",
        thing("y", &["peer: ${x.arn}"])
    );
    let (_, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok(), "{:?}", outcome_words(&report));
    let create = h.cloud.call_of(Op::Create, "x");
    let update = h.cloud.call_of(Op::Update, "y");
    let delete = h.cloud.call_of(Op::Delete, "x");
    let log = show(&h, &h.cloud.calls());
    assert!(create.end <= update.start, "{log}");
    assert!(update.end <= delete.start, "the old x goes last\n{log}");
    let (new_x, _) = h.cloud.object_named("x").expect("x");
    assert_ne!(new_x, old_x);
    assert_eq!(
        h.cloud.object_named("y").expect("y").1.props["peer"],
        json!(format!("arn:fake:thing/{new_x}"))
    );
}

#[tokio::test]
async fn a_replacement_that_a_staying_resource_holds_applies_in_one_run_without_asking() {
    let h = Harness::new();
    h.converge(
        &stack_text(&[thing("x", &[]), thing("y", &["holder: ${x.arn}"])]),
        Mode::Apply,
    )
    .await;
    let (old_x, _) = h.cloud.object_named("x").expect("x");
    h.cloud.set_default_latency(ms(20));
    h.cloud.clear_log();
    // The fake refuses to delete a thing another one holds, as ACM refuses a certificate
    // CloudFront serves: delete-first, this run would fail.
    let text = format!(
        "{HEAD}resources:\n  x:\n    type: test.thing\n    name: x2\n{}",
        thing("y", &["holder: ${x.arn}"])
    );
    let (plan, report, _) = h.converge(&text, Mode::Apply).await;
    assert_eq!(
        plan.change("x").expect("x").create_first_because,
        Some(vec!["y".to_string()])
    );
    assert!(report.ok(), "{:?}", outcome_words(&report));
    let log = show(&h, &h.cloud.calls());
    let (create, update, delete) = (
        h.cloud.call_of(Op::Create, "x"),
        h.cloud.call_of(Op::Update, "y"),
        h.cloud.call_of(Op::Delete, "x"),
    );
    assert!(create.end <= update.start, "{log}");
    assert!(update.end <= delete.start, "the old x goes last\n{log}");
    let (new_x, _) = h.cloud.object_named("x").expect("x");
    assert_ne!(new_x, old_x);
    assert!(!h.cloud.objects().contains_key(&old_x), "the old x is gone");
    assert_eq!(h.cloud.objects().len(), 2);
    assert_eq!(
        h.cloud.object_named("y").expect("y").1.props["holder"],
        json!(format!("arn:fake:thing/{new_x}"))
    );
    assert!(!h.stored_state().resources.contains_key(&deposed_name("x")));
}

#[tokio::test]
async fn an_interrupted_create_found_by_the_next_plan_is_adopted_not_duplicated() {
    let h = Harness::new();
    h.cloud.set_op_latency(Op::Create, "a", ms(2_000));
    let text = stack_text(&[thing("a", &["size: 2"])]);
    let (plan, locked, state) = plan_locked(&h, &text, Mode::Apply).await;
    let wanted = plan.change("a").expect("a").after.clone().expect("after");
    let (_tx, rx) = watch::channel(false);
    let killed = tokio::time::timeout(
        ms(100),
        h.run(&plan, &locked, state, rx, Arc::new(Recorder::default())),
    )
    .await;
    assert!(killed.is_err());
    drop(locked);
    // The service finished the create after plinth died.
    let id = h.cloud.insert("test.thing", "a", wanted);
    h.cloud.clear_log();
    let (plan, report, _) = h.converge(&text, Mode::Apply).await;
    let a = plan.change("a").expect("a");
    assert_eq!((a.action, a.adopted), (Action::NoOp, Some(true)));
    assert!(report.ok(), "{:?}", outcome_words(&report));
    assert_eq!(outcome_words(&report)["a:Adopt"], "done");
    assert!(h.cloud.calls_of(Op::Create).is_empty(), "not created twice");
    let state = h.stored_state();
    assert_eq!(state.resources["a"].status, Status::Ready);
    assert_eq!(state.resources["a"].id, id);
    assert_eq!(h.cloud.objects().len(), 1);
}

#[tokio::test]
async fn an_output_only_change_is_applied_without_any_step() {
    let h = Harness::new();
    let base = stack_text(&[thing("a", &[])]);
    h.converge(&format!("{base}outputs:\n  v: one\n"), Mode::Apply)
        .await;
    assert_eq!(h.stored_state().outputs["v"].value, json!("one"));
    h.cloud.clear_log();
    let (plan, report, _) = h
        .converge(
            &format!(
                "{base}outputs:\n  v: two\n  id: {{ value: \"${{a.id}}\", sensitive: true }}\n"
            ),
            Mode::Apply,
        )
        .await;
    assert!(plan.has_changes());
    assert!(report.results.is_empty());
    assert!(report.ok());
    let state = h.stored_state();
    assert_eq!(state.outputs["v"].value, json!("two"));
    assert_eq!(
        state.outputs["id"].value,
        json!(h.cloud.object_named("a").expect("a").0)
    );
    assert!(state.outputs["id"].sensitive);
}

#[tokio::test]
async fn the_expiry_is_recorded_by_apply_and_kept_by_later_plans() {
    let h = Harness::new();
    let text = format!("{HEAD}expires_after: 8h\nresources:\n{}", thing("a", &[]));
    let (plan, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok());
    let stamped = plan.expires_at.clone().expect("stamped");
    let state = h.stored_state();
    assert_eq!(state.expires_at.as_deref(), Some(stamped.as_str()));
    assert_eq!(state.expires_after.as_deref(), Some("8h"));
    let (_, a) = h.cloud.object_named("a").expect("a");
    assert_eq!(a.props["tags"]["plinth:expires-at"], json!(stamped));
    // A later plan (at a later time) keeps the stamp, so nothing changes.
    let stack = h.stack(&text);
    let later = h
        .plan_at(
            &stack,
            &state,
            Mode::Apply,
            &[],
            std::time::SystemTime::now() + Duration::from_secs(3600),
        )
        .await
        .expect("plan");
    assert_eq!(later.expires_at.as_deref(), Some(stamped.as_str()));
    assert!(!later.has_changes());
}

#[tokio::test]
async fn the_creation_time_is_recorded_by_apply_kept_by_later_applies_and_cleared_by_destroy() {
    let h = Harness::new();
    let text = stack_text(&[thing("a", &[])]);
    let (plan, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok());
    let created = plan.created_at.clone().expect("stamped");
    assert!(humantime::parse_rfc3339(&created).is_ok(), "{created}");
    assert_eq!(
        h.stored_state().created_at.as_deref(),
        Some(created.as_str())
    );
    let (_, a) = h.cloud.object_named("a").expect("a");
    assert_eq!(a.props["tags"]["plinth:created-at"], json!(created));

    // Another resource, a second later: it gets the environment's time, not its own.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let text = stack_text(&[thing("a", &[]), thing("b", &[])]);
    let (plan, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok());
    assert_eq!(plan.counts().create, 1, "a is unchanged");
    let (_, b) = h.cloud.object_named("b").expect("b");
    assert_eq!(b.props["tags"]["plinth:created-at"], json!(created));

    let (_, report, _) = h.converge(&text, Mode::Destroy).await;
    assert!(report.ok());
    assert_eq!(
        h.stored_state().created_at,
        None,
        "the next apply is a new environment"
    );
}

#[tokio::test]
async fn the_account_an_environment_is_applied_in_is_recorded_and_no_run_for_another_touches_it() {
    let h = Harness::new();
    let text = stack_text(&[thing("a", &[])]);
    let mut in_account = h.stack(&text);
    in_account.account = Some("111122223333".into());
    let (plan, report, _) = h.converge_stack(&in_account, Mode::Apply).await;
    assert!(report.ok());
    assert_eq!(plan.account.as_deref(), Some("111122223333"));
    assert_eq!(h.stored_state().account.as_deref(), Some("111122223333"));

    // Another account would find nothing and make it all again.
    let state = h.stored_state();
    for (other, says) in [
        (None, "does not say which account"),
        (
            Some("444455556666"),
            "this run works in account 444455556666",
        ),
    ] {
        let mut stack = h.stack(&text);
        stack.account = other.map(str::to_string);
        for mode in [Mode::Apply, Mode::Destroy] {
            let err = h
                .plan_at(&stack, &state, mode, &[], std::time::SystemTime::now())
                .await
                .expect_err("another account");
            let text = err.to_string();
            assert!(
                text.contains("account 111122223333 (its state says so)"),
                "{text}"
            );
            assert!(text.contains(says), "{text}");
        }
    }

    // A state from before accounts were recorded has its resources in the caller's account.
    let mut legacy = state.clone();
    legacy.account = None;
    let caller = Some("123456789012");
    assert_eq!(legacy.account_problem(caller, caller), None);
    let moved = legacy
        .account_problem(Some("444455556666"), caller)
        .expect("a student's account is not where they are");
    assert!(
        moved.contains("account 123456789012 (its state says so)"),
        "{moved}"
    );

    // Destroyed in its account, the environment may start again anywhere.
    let (_, report, _) = h.converge_stack(&in_account, Mode::Destroy).await;
    assert!(report.ok());
    let (plan, report, _) = h.converge(&text, Mode::Apply).await;
    assert!(report.ok());
    assert_eq!(plan.account, None);
    assert_eq!(
        h.stored_state().account,
        None,
        "now in the caller's own account"
    );
}

#[tokio::test]
async fn destroying_after_an_interrupted_create_deletes_the_resource_the_service_made() {
    let h = Harness::new();
    h.cloud.set_op_latency(Op::Create, "a", ms(2_000));
    let text = stack_text(&[thing("a", &[]), thing("b", &[])]);
    let (plan, locked, state) = plan_locked(&h, &text, Mode::Apply).await;
    let wanted = plan.change("a").expect("a").after.clone().expect("after");
    let (_tx, rx) = watch::channel(false);
    let killed = tokio::time::timeout(
        ms(200),
        h.run(&plan, &locked, state, rx, Arc::new(Recorder::default())),
    )
    .await;
    assert!(killed.is_err());
    drop(locked);
    // The service finished the create after plinth died; now the user tears down.
    let id = h.cloud.insert("test.thing", "a", wanted);
    h.cloud.clear_log();
    let (plan, report, _) = h.converge(&text, Mode::Destroy).await;
    let a = plan.change("a").expect("a");
    assert_eq!(a.action, Action::Delete);
    assert_eq!(a.id.as_deref(), Some(id.as_str()), "the id `find` returned");
    assert!(report.ok(), "{:?}", outcome_words(&report));
    assert!(h.cloud.objects().is_empty(), "{:?}", h.cloud.objects());
    assert!(h.stored_state().resources.is_empty());
}

#[tokio::test]
async fn a_targeted_apply_never_stores_an_unknown_output_value() {
    let h = Harness::new();
    let text = format!(
        "{}outputs:\n  a_arn: ${{a.arn}}\n  b_arn: ${{b.arn}}\n",
        stack_text(&[thing("a", &[]), thing("b", &[])])
    );
    let stack = h.stack(&text);
    let (locked, state) = h.lock();
    let plan = h
        .plan_against(&stack, &state, Mode::Apply, &["a"])
        .await
        .expect("plan");
    assert!(plan.change("b").is_none(), "b is not targeted");
    let (_tx, rx) = watch::channel(false);
    let report = h
        .run(&plan, &locked, state, rx, Arc::new(Recorder::default()))
        .await;
    assert!(report.ok());
    let state = h.stored_state();
    let (a_id, _) = h.cloud.object_named("a").expect("a");
    assert_eq!(
        state.outputs.get("a_arn").map(|o| &o.value),
        Some(&json!(format!("arn:fake:thing/{a_id}")))
    );
    assert!(
        !state.outputs.contains_key("b_arn"),
        "b was never applied: no value to record"
    );
    for (name, o) in &state.outputs {
        assert!(
            !crate::value::contains_unknown(&o.value),
            "output `{name}` stored the unknown sentinel: {:?}",
            o.value
        );
    }
}

/// What the plan looked up is what apply uses: the image `latest` named when planning, even
/// if it names another by the time the plan is applied. Once it runs, a newer `latest` is
/// said in the plan and changes nothing.
#[tokio::test]
async fn a_value_resolved_when_planning_is_applied_as_planned_and_kept_after() {
    let h = Harness::new();
    let text = stack_text(&[thing("web", &["image: latest"])]);
    let (plan, locked, state) = plan_locked(&h, &text, Mode::Apply).await;
    let web = plan.change("web").expect("web is planned");
    assert_eq!(web.notes, ["latest is img-1"]);
    assert_eq!(web.resolved.get("image_id"), Some(&json!("img-1")));

    h.cloud.set_latest_image("img-2");
    let (_tx, rx) = watch::channel(false);
    let report = h
        .run(&plan, &locked, state, rx, Arc::new(Recorder::default()))
        .await;
    expect_words(&report, &[("web:Create", "done")]);
    drop(locked);
    let (_, object) = h.cloud.object_named("web").expect("web exists");
    assert_eq!(
        object.props["image_id"],
        json!("img-1"),
        "applied as planned"
    );

    let (again, _locked, _state) = plan_locked(&h, &text, Mode::Apply).await;
    let web = again.change("web").expect("web is planned");
    assert_eq!(web.action, Action::NoOp);
    assert_eq!(web.notes, ["latest now names img-2; the thing keeps img-1"]);
    drop(_locked);

    // A replacement is a new thing: it gets what `latest` names now.
    let moved = stack_text(&[thing("web", &["image: latest", "zone: b"])]);
    let (replaced, _locked, _state) = plan_locked(&h, &moved, Mode::Apply).await;
    let web = replaced.change("web").expect("web is planned");
    assert_eq!(web.action, Action::Replace);
    assert_eq!(web.resolved.get("image_id"), Some(&json!("img-2")));
    assert_eq!(web.notes, ["latest is img-2"]);
}
