//! Interrupting plinth in the middle of an apply: `kill -9` loses nothing and the next run
//! converges without duplicates; Ctrl-C lets in-flight work finish and saves.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::harness::{groups_of_stack, tables_of_stack, Env, Moto};

/// A stack of `n` tables and `n` security groups.
pub fn wide_stack(name: &str, n: usize) -> String {
    let mut text = format!("stack: {name}\nregion: us-east-1\nresources:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  t{i:03}:\n    type: dynamodb.table\n    name: {name}-t{i:03}\n    partition_key: {{ name: Id, type: S }}\n"
        ));
        text.push_str(&format!(
            "  sg{i:03}:\n    type: ec2.security_group\n    name: {name}-sg{i:03}\n    ingress:\n      - {{ protocol: tcp, ports: {}, cidr: 10.0.0.0/8 }}\n",
            1000 + i
        ));
    }
    text
}

pub fn journal_lines(env: &Env, stack: &str) -> usize {
    std::fs::read_to_string(env.path(&format!(".plinth/{stack}/default/journal.jsonl")))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Waits until the running apply has journaled `lines` entries; fails if it ends first.
fn wait_for_journal(child: &mut Child, env: &Env, stack: &str, lines: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while journal_lines(env, stack) < lines {
        assert!(
            child.try_wait().expect("poll plinth").is_none(),
            "plinth finished before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "no progress in the journal");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_in_the_middle_of_a_100_resource_apply_then_apply_again_converges_without_duplicates(
) {
    // Each request takes 40 ms, as real AWS roughly does, so "the middle" lasts long enough.
    let moto = Moto::start(40);
    kill_9_then_apply_again(&Env::with_emulator(&moto)).await;
}

/// A 100-resource apply is killed in the middle; `apply` again converges: every resource
/// once, recorded ready with its own id, and a clean plan.
pub async fn kill_9_then_apply_again(env: &Env) {
    env.write("plinth.yaml", &wide_stack("killed", 50));
    let mut child = env.spawn("killed", &["apply", "--yes", "--parallelism", "8"]);
    wait_for_journal(&mut child, env, "killed", 30);
    child.kill().expect("kill -9");
    child.wait().expect("reap");

    // What the killed run finished is already known to plinth (journal folded on read).
    let listed = env.plinth(&["state", "list"]).ok();
    let recorded = listed.stdout.lines().count();
    assert!(
        recorded >= 15,
        "the journal kept the finished work: {}",
        listed.stdout
    );
    assert!(recorded < 100, "the run was interrupted before the end");

    let rerun = env.plinth(&["apply", "--yes"]).ok();
    assert!(rerun.stdout.contains("Apply complete!"), "{}", rerun.stdout);

    let ddb = env.dynamodb();
    let tables = tables_of_stack(&ddb, "killed").await;
    assert_eq!(tables.len(), 50, "one table each, none twice: {tables:?}");
    let groups = groups_of_stack(&env.ec2(), "killed").await;
    let mut names: Vec<&str> = groups.iter().map(|(_, n)| n.as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), 50, "one group each: {groups:?}");
    assert_eq!(groups.len(), 50, "no duplicate groups: {groups:?}");

    let state = env.state("killed");
    let resources = state["resources"].as_object().expect("resources");
    assert_eq!(resources.len(), 100);
    assert!(
        resources.values().all(|r| r["status"]["state"] == "ready"),
        "every resource recorded as ready"
    );
    let ids: std::collections::BTreeSet<&str> = resources
        .values()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 100, "every resource has its own id");
    assert!(
        !env.path(".plinth/killed/default/journal.jsonl").exists(),
        "the journal was folded into the state"
    );
    env.plinth(&["plan", "--detailed-exitcode"]).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_lets_in_flight_operations_finish_records_them_and_starts_nothing_new() {
    let moto = Moto::start(40);
    let env = Env::with_emulator(&moto);
    env.write("plinth.yaml", &wide_stack("interrupted", 20));
    let mut child = env.spawn("interrupted", &["apply", "--yes", "--parallelism", "2"]);
    wait_for_journal(&mut child, &env, "interrupted", 6);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("send SIGINT");
    assert!(status.success());
    let code = child.wait().expect("wait for plinth").code();
    let stderr = env.read("interrupted.err");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("Interrupt received"), "{stderr}");
    assert!(stderr.contains("Apply interrupted."), "{stderr}");

    // Everything that finished is in the state, written whole, and the rest was not started.
    let state = env.state("interrupted");
    let recorded = state["resources"].as_object().map(|r| r.len()).unwrap_or(0);
    assert!((3..40).contains(&recorded), "{recorded} recorded");
    let tables = tables_of_stack(&env.dynamodb(), "interrupted").await.len();
    let groups = groups_of_stack(&env.ec2(), "interrupted").await.len();
    assert_eq!(tables + groups, recorded, "exactly what exists is recorded");

    env.plinth(&["apply", "--yes"]).ok();
    assert_eq!(
        env.state("interrupted")["resources"]
            .as_object()
            .map(|r| r.len()),
        Some(40)
    );
    env.plinth(&["destroy", "--yes"]).ok();
    assert!(tables_of_stack(&env.dynamodb(), "interrupted")
        .await
        .is_empty());
}
