//! State on S3, shared by two working folders standing for two machines: the same state
//! and plan from both, a lock that names its holder and breaks only with its id, and a run
//! killed on one machine recovered exactly by the next apply on the other.

use std::time::{Duration, Instant};

use crate::e2e_interrupt::wide_stack;
use crate::harness::{groups_of_stack, tables_of_stack, Env, Moto};

async fn state_bucket(env: &Env, bucket: &str) {
    env.s3()
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("state bucket");
}

async fn keys(env: &Env, bucket: &str, prefix: &str) -> Vec<String> {
    let out = env
        .s3()
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

const TWO_TABLES: &str = r#"stack: shared-lab
region: us-east-1
resources:
  users:
    type: dynamodb.table
    name: shared-lab-users
    partition_key: { name: id, type: S }
  orders:
    type: dynamodb.table
    name: shared-lab-orders
    partition_key: { name: id, type: S }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn two_machines_share_the_state_and_a_held_lock_names_its_holder_and_breaks_by_its_id() {
    let (one, two) = (Env::new(), Env::new());
    state_bucket(&one, "plinth-state-shared").await;
    let state = "--state=s3://plinth-state-shared/fall";
    for env in [&one, &two] {
        env.write("lab.yaml", TWO_TABLES);
    }
    let applied = one.plinth(&["apply", "lab.yaml", "--yes", state]).ok();
    assert!(
        applied
            .stderr
            .contains("versioning is off on the state bucket plinth-state-shared"),
        "{}",
        applied.stderr
    );
    // The other machine sees the same state: nothing to do.
    two.plinth(&["plan", "lab.yaml", "--detailed-exitcode", state])
        .ok();
    let folder = "fall/shared-lab/default/";
    assert_eq!(
        keys(&one, "plinth-state-shared", folder).await,
        [format!("{folder}state.json")]
    );
    let head = one
        .s3()
        .head_object()
        .bucket("plinth-state-shared")
        .key(format!("{folder}state.json"))
        .send()
        .await
        .expect("state object");
    assert_eq!(
        head.server_side_encryption().map(|e| e.as_str()),
        Some("AES256")
    );
    assert!(!two.path(".plinth").exists(), "nothing kept locally");
    // A sweep on a machine without the state leaves the environment alone.
    let swept = two
        .plinth(&["sweep", "--stack", "shared-lab", "--yes"])
        .ok();
    assert!(
        swept
            .stderr
            .contains("2 resources keep their state on s3://plinth-state-shared/fall: left alone"),
        "{}",
        swept.stderr
    );
    assert_eq!(
        tables_of_stack(&two.dynamodb(), "shared-lab").await.len(),
        2
    );
    // Given the bucket, sweep finds the state there: nothing is unknown.
    let known = two.plinth(&["sweep", "--stack", "shared-lab", state]).ok();
    assert!(
        known.stdout.starts_with("Nothing to sweep in us-east-1")
            && known
                .stdout
                .contains("states looked at: s3://plinth-state-shared/fall"),
        "{}\n{}",
        known.stdout,
        known.stderr
    );

    // A run on another machine died holding the lock.
    let lock = r#"{"pid": 4242, "host": "laptop-7", "command": "plinth apply", "since": "2026-12-01T08:00:00Z", "user": "ta", "id": "dead-run-1"}"#;
    one.s3()
        .put_object()
        .bucket("plinth-state-shared")
        .key(format!("{folder}lock.json"))
        .body(lock.as_bytes().to_vec().into())
        .send()
        .await
        .expect("lock");
    let refused = two
        .plinth(&["apply", "lab.yaml", "--yes", state])
        .expect_code(1);
    for words in [
        "locked by `plinth apply` (ta, pid 4242 on laptop-7",
        "plinth state unlock dead-run-1",
    ] {
        assert!(
            refused.stderr.contains(words),
            "{words}\n{}",
            refused.stderr
        );
    }
    let wrong = two
        .plinth(&["state", "unlock", "lab.yaml", "not-it", state])
        .expect_code(1);
    assert!(
        wrong
            .stderr
            .contains("the lock's id is dead-run-1, not not-it"),
        "{}",
        wrong.stderr
    );
    two.plinth(&["state", "unlock", "lab.yaml", "dead-run-1", state])
        .ok();
    two.plinth(&["plan", "lab.yaml", "--detailed-exitcode", state])
        .ok();

    // Held again by a run that ends in a moment: `--lock-timeout` waits for it.
    let lock_key = format!("{folder}lock.json");
    one.s3()
        .put_object()
        .bucket("plinth-state-shared")
        .key(&lock_key)
        .body(lock.as_bytes().to_vec().into())
        .send()
        .await
        .expect("lock again");
    let s3 = one.s3();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        s3.delete_object()
            .bucket("plinth-state-shared")
            .key(lock_key)
            .send()
            .await
            .expect("released");
    });
    let waited = two
        .plinth(&[
            "destroy",
            "lab.yaml",
            "--yes",
            "--lock-timeout",
            "2m",
            state,
        ])
        .ok();
    release.await.expect("release task");
    assert!(
        waited
            .stderr
            .contains("waiting up to 2m for the state's lock, held by `plinth apply` (ta"),
        "{}",
        waited.stderr
    );
    assert!(tables_of_stack(&two.dynamodb(), "shared-lab")
        .await
        .is_empty());
    assert_eq!(
        keys(&one, "plinth-state-shared", folder).await,
        [format!("{folder}state.json")],
        "the lock is released"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sweep_finds_an_expired_environment_under_the_prefix_and_destroys_it_through_its_state() {
    let (one, two) = (Env::new(), Env::new());
    state_bucket(&one, "plinth-state-expiring").await;
    let state = "--state=s3://plinth-state-expiring/spring";
    one.write(
        "lab.yaml",
        &TWO_TABLES.replace("shared-lab", "expiring-lab").replace(
            "region: us-east-1\n",
            "region: us-east-1\nexpires_after: 1s\n",
        ),
    );
    one.plinth(&["apply", "lab.yaml", "--yes", state]).ok();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The other machine has no stack file and no local state: the bucket is enough.
    let dry = two.plinth(&["sweep", "--expired", state]).ok();
    assert!(
        dry.stdout.contains("expiring-lab") && dry.stdout.contains("(in state as `users`)"),
        "{}\n{}",
        dry.stdout,
        dry.stderr
    );
    let swept = two.plinth(&["sweep", "--expired", "--yes", state]).ok();
    assert!(swept.stdout.contains("Sweep complete!"), "{}", swept.stdout);
    assert!(tables_of_stack(&two.dynamodb(), "expiring-lab")
        .await
        .is_empty());
    let text = one
        .s3()
        .get_object()
        .bucket("plinth-state-expiring")
        .key("spring/expiring-lab/default/state.json")
        .send()
        .await
        .expect("state object")
        .body
        .collect()
        .await
        .expect("body")
        .to_vec();
    let after: serde_json::Value = serde_json::from_slice(&text).expect("state JSON");
    assert_eq!(after["resources"].as_object().map(|m| m.len()), Some(0));
    assert_eq!(
        keys(
            &one,
            "plinth-state-expiring",
            "spring/expiring-lab/default/"
        )
        .await,
        ["spring/expiring-lab/default/state.json"],
        "the sweep's lock and journal are gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_on_one_machine_is_recovered_exactly_by_the_next_apply_on_the_other() {
    let moto = Moto::start(40);
    let (one, two) = (Env::with_emulator(&moto), Env::with_emulator(&moto));
    state_bucket(&one, "plinth-state-killed").await;
    let state = "--state=s3://plinth-state-killed/class";
    let text = wide_stack("s3killed", 20);
    for env in [&one, &two] {
        env.write("plinth.yaml", &text);
    }
    let mut child = one.spawn("killed", &["apply", "--yes", "--parallelism", "8", state]);
    let journal = "class/s3killed/default/journal/";
    let deadline = Instant::now() + Duration::from_secs(60);
    while keys(&one, "plinth-state-killed", journal).await.len() < 15 {
        assert!(
            child.try_wait().expect("poll").is_none(),
            "finished before the kill"
        );
        assert!(Instant::now() < deadline, "no progress in the journal");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");

    // What the killed run journaled is already there for the other machine to read.
    let list = two.plinth(&["state", "list", state]).ok();
    assert!(
        list.stdout.lines().count() >= 5,
        "the journal reached S3 as the run went:\n{}",
        list.stdout
    );
    // The other machine finds the dead run's lock, breaks it by its id, and converges.
    let refused = two.plinth(&["apply", "--yes", state]).expect_code(1);
    let id = refused
        .stderr
        .split("plinth state unlock ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .expect("the lock id")
        .to_string();
    two.plinth(&["state", "unlock", &id, state]).ok();
    two.plinth(&["apply", "--yes", state]).ok();
    let mut tables = tables_of_stack(&two.dynamodb(), "s3killed").await;
    tables.sort();
    tables.dedup();
    assert_eq!(tables.len(), 20, "every table once: {tables:?}");
    assert_eq!(
        groups_of_stack(&two.ec2(), "s3killed").await.len(),
        20,
        "every group once"
    );
    assert!(
        keys(&one, "plinth-state-killed", journal).await.is_empty(),
        "the journal is folded in"
    );
    one.plinth(&["plan", "--detailed-exitcode", state]).ok();
    one.plinth(&["destroy", "--yes", state]).ok();
    assert!(tables_of_stack(&one.dynamodb(), "s3killed")
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_broken_by_hand_while_an_apply_runs_loses_no_update() {
    let moto = Moto::start(40);
    let (one, two) = (Env::with_emulator(&moto), Env::with_emulator(&moto));
    state_bucket(&one, "plinth-state-broken").await;
    let state = "--state=s3://plinth-state-broken/class";
    let text = wide_stack("s3broken", 12);
    one.write("plinth.yaml", &text);
    // The other machine's stack has one table more: its update must not be lost either.
    two.write(
        "plinth.yaml",
        &format!("{text}  extra:\n    type: dynamodb.table\n    name: s3broken-extra\n    partition_key: {{ name: Id, type: S }}\n"),
    );
    let mut running = one.spawn("first", &["apply", "--yes", "--parallelism", "2", state]);
    let folder = "class/s3broken/default/";
    let deadline = Instant::now() + Duration::from_secs(60);
    while keys(&one, "plinth-state-broken", &format!("{folder}journal/"))
        .await
        .len()
        < 5
    {
        assert!(
            running.try_wait().expect("poll").is_none(),
            "finished too soon"
        );
        assert!(Instant::now() < deadline, "no progress in the journal");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Someone deletes the lock by hand, and the other machine goes ahead at once.
    one.s3()
        .delete_object()
        .bucket("plinth-state-broken")
        .key(format!("{folder}lock.json"))
        .send()
        .await
        .expect("lock broken by hand");
    let second = two.plinth(&["apply", "--yes", state]);
    let first = running.wait().expect("first apply ends");
    let first_err = one.read("first.err");

    // Both wrote the state conditionally: whichever came second was refused, overwrote
    // nothing, and kept its operations in the journal.
    let refused = [first_err.as_str(), second.stderr.as_str()]
        .iter()
        .filter(|err| err.contains("nothing was overwritten"))
        .count();
    assert_eq!(
        refused, 1,
        "exactly one write refused (first: {first:?}):\n{first_err}\n---\n{}",
        second.stderr
    );
    // The next run folds what was kept: every table once, everything in the state.
    two.plinth(&["apply", "--yes", state]).ok();
    two.plinth(&["plan", "--detailed-exitcode", state]).ok();
    let mut tables = tables_of_stack(&two.dynamodb(), "s3broken").await;
    tables.dedup();
    assert_eq!(tables.len(), 13, "every table once: {tables:?}");
    assert_eq!(groups_of_stack(&two.ec2(), "s3broken").await.len(), 12);
    let list = two.plinth(&["state", "list", state]).ok();
    assert_eq!(
        list.stdout.lines().filter(|l| !l.trim().is_empty()).count(),
        25,
        "{}",
        list.stdout
    );
    assert!(
        keys(&one, "plinth-state-broken", &format!("{folder}journal/"))
            .await
            .is_empty(),
        "every journal folded in"
    );
    two.plinth(&["destroy", "--yes", state]).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn state_init_on_an_existing_bucket_keeps_its_encryption_and_lifecycle_rules() {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
        LifecycleRuleFilter, ServerSideEncryption, ServerSideEncryptionByDefault,
        ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    };
    let env = Env::new();
    let s3 = env.s3();
    let bucket = "plinth-state-existing";
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("bucket");
    let kms = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::AwsKms)
        .kms_master_key_id("alias/course-state")
        .build()
        .expect("sse");
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(kms)
                        .build(),
                )
                .build()
                .expect("config"),
        )
        .send()
        .await
        .expect("their encryption");
    let theirs = LifecycleRule::builder()
        .id("logs-30d")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("logs/").build())
        .expiration(LifecycleExpiration::builder().days(30).build())
        .build()
        .expect("rule");
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(theirs)
                .build()
                .expect("lifecycle"),
        )
        .send()
        .await
        .expect("their lifecycle");

    for _ in 0..2 {
        let init = env
            .plinth(&["state", "init", &format!("s3://{bucket}")])
            .ok();
        assert!(
            init.stdout
                .contains("s3://plinth-state-existing (us-east-1) checked")
                && init.stdout.contains("its own setting, SSE-KMS, kept"),
            "{}",
            init.stdout
        );
        let rules = s3
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
            .expect("lifecycle");
        let mut ids: Vec<&str> = rules.rules().iter().filter_map(|r| r.id()).collect();
        ids.sort();
        assert_eq!(ids, ["logs-30d", "plinth-expire-old-state-versions"]);
    }
    let encryption = s3
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .expect("encryption");
    let default = encryption
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .expect("a default");
    assert_eq!(
        default.sse_algorithm(),
        &ServerSideEncryption::AwsKms,
        "not downgraded"
    );
}

fn state_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("state file")).expect("state JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_moves_local_to_s3_and_back_keeping_serial_lineage_and_outputs() {
    let env = Env::new();
    env.write(
        "lab.yaml",
        r#"stack: moved-lab
region: us-east-1
resources:
  users:
    type: dynamodb.table
    name: moved-lab-users
    partition_key: { name: id, type: S }
outputs:
  table: ${users.name}
"#,
    );
    env.plinth(&["apply", "lab.yaml", "--yes"]).ok();
    let local = state_json(&env.path(".plinth/moved-lab/default/state.json"));

    // A bucket made fit for state.
    let init = env
        .plinth(&["state", "init", "s3://plinth-state-moved"])
        .ok();
    assert!(init.stdout.contains("created"), "{}", init.stdout);
    let s3 = env.s3();
    let versioning = s3
        .get_bucket_versioning()
        .bucket("plinth-state-moved")
        .send()
        .await
        .expect("versioning");
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let block = s3
        .get_public_access_block()
        .bucket("plinth-state-moved")
        .send()
        .await
        .expect("public access block");
    let block = block.public_access_block_configuration().expect("config");
    assert_eq!(block.block_public_policy(), Some(true));
    assert_eq!(block.restrict_public_buckets(), Some(true));

    let url = "s3://plinth-state-moved/terms";
    let moved = env
        .plinth(&["state", "migrate", "lab.yaml", "--to", url])
        .ok();
    assert!(moved.stdout.contains("plinth:state"), "{}", moved.stdout);
    // The old copy says where the state went, instead of starting again from nothing.
    let old = env.plinth(&["plan", "lab.yaml"]).expect_code(1);
    assert!(
        old.stderr.contains(&format!("was moved to {url}")),
        "{}",
        old.stderr
    );
    let state = format!("--state={url}");
    let output = env
        .plinth(&["output", "lab.yaml", "table", "--raw", &state])
        .ok();
    assert_eq!(output.stdout.trim(), "moved-lab-users");
    env.plinth(&["state", "pull", "lab.yaml", "-o", "pulled.json", &state])
        .ok();
    let pulled = state_json(&env.path("pulled.json"));
    for key in ["serial", "lineage", "outputs", "resources"] {
        assert_eq!(pulled[key], local[key], "{key} kept on S3");
    }

    // And back to a folder.
    env.plinth(&["state", "migrate", "lab.yaml", "--to", "back", &state])
        .ok();
    let back = state_json(&env.path("back/moved-lab/default/state.json"));
    for key in ["serial", "lineage", "outputs", "resources"] {
        assert_eq!(back[key], local[key], "{key} kept back in a folder");
    }
    let back_dir = format!("--state={}", env.path("back").display());
    env.plinth(&["plan", "lab.yaml", "--detailed-exitcode", &back_dir])
        .ok();
    // A state pushed over it is one serial newer; an older one is refused.
    env.plinth(&["state", "push", "lab.yaml", "pulled.json", &back_dir])
        .ok();
    let stale = env
        .plinth(&["state", "push", "lab.yaml", "pulled.json", &back_dir])
        .expect_code(1);
    assert!(
        stale.stderr.contains("pushing would lose 1 writes"),
        "{}",
        stale.stderr
    );
    env.plinth(&["state", "pull", "lab.yaml", "-o", "again.json", &back_dir])
        .ok();
    let again = state_json(&env.path("again.json"));
    assert_eq!(
        again["serial"].as_u64(),
        local["serial"].as_u64().map(|s| s + 1)
    );
    env.plinth(&["destroy", "lab.yaml", "--yes", &back_dir])
        .ok();
    assert!(tables_of_stack(&env.dynamodb(), "moved-lab")
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_class_split_across_two_machines_gives_each_student_to_one_of_them() {
    let (one, two) = (Env::new(), Env::new());
    state_bucket(&one, "plinth-state-shards").await;
    let state = "--state=s3://plinth-state-shards/class";
    let stack = r#"stack: sharded-lab
region: us-east-1
resources:
  notes:
    type: dynamodb.table
    name: "sharded-${workspace}-notes"
    partition_key: { name: id, type: S }
"#;
    let students = ["ana", "bruno", "carla", "dora", "emil", "fern"];
    for env in [&one, &two] {
        env.write("lab.yaml", stack);
        env.write("students.txt", &students.join("\n"));
    }
    let mut taken = 0;
    for (env, shard) in [(&one, "1/2"), (&two, "2/2")] {
        let run = env
            .plinth(&[
                "apply",
                "lab.yaml",
                "--roster",
                "students.txt",
                "--shard",
                shard,
                "--yes",
                state,
            ])
            .ok();
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("Shard {shard}: ")))
            .unwrap_or_else(|| panic!("a shard line:\n{}", run.stdout));
        let count: usize = line
            .split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .expect("a count");
        taken += count;
    }
    assert_eq!(taken, students.len(), "every student in exactly one shard");
    let mut tables = tables_of_stack(&one.dynamodb(), "sharded-lab").await;
    tables.sort();
    let expected: Vec<String> = students
        .iter()
        .map(|s| format!("sharded-{s}-notes"))
        .collect();
    assert_eq!(tables, expected);
    // Either machine sees the whole class; one destroy takes it down.
    two.plinth(&[
        "destroy",
        "lab.yaml",
        "--roster",
        "students.txt",
        "--yes",
        state,
    ])
    .ok();
    assert!(tables_of_stack(&two.dynamodb(), "sharded-lab")
        .await
        .is_empty());
}
