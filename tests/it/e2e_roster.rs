//! One environment per student: `--roster` brings up, re-plans and tears down one
//! environment per line of a roster file in one command, each in its own workspace with its
//! own variables; one student's failure stays theirs. And `--workspace` / `${workspace}`,
//! which the roster is built on.

use std::collections::BTreeMap;

use crate::harness::{groups_of_stack, tables_of_stack, Env, Moto};

const LAB: &str = include_str!("../../stacks/week2-data-lab.yaml");
const USERS: &str = include_str!("../../stacks/data/users.yaml");
const STUDENTS: [&str; 5] = ["ana", "bruno", "carla", "dora", "emil"];

fn lab_env(moto: &Moto, stack: &str) -> Env {
    let env = Env::with_emulator(moto);
    env.write("lab.yaml", stack);
    env.write("data/users.yaml", USERS);
    env
}

/// The summary table's row for `student`, split at whitespace (`no changes` is two words).
fn table_row(stdout: &str, student: &str) -> Vec<String> {
    let rows: Vec<Vec<String>> = stdout
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .filter(|words: &Vec<String>| words.first().map(String::as_str) == Some(student))
        .collect();
    assert_eq!(rows.len(), 1, "one summary row for {student}:\n{stdout}");
    rows[0].clone()
}

/// The row's first words: student, result and the three counts.
fn row_start(stdout: &str, student: &str) -> Vec<String> {
    let row = table_row(stdout, student);
    let result_words = if row.get(1).map(String::as_str) == Some("no") {
        2
    } else {
        1
    };
    row[..2 + result_words + 2].to_vec()
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// Tags of everything the Resource Groups Tagging API finds for `stack`, by ARN, every
/// page of it.
async fn tagged(env: &Env, stack: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let filter = aws_sdk_resourcegroupstagging::types::TagFilter::builder()
        .key("plinth:stack")
        .values(stack)
        .build();
    let mut found = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let out = env
            .tagging()
            .get_resources()
            .tag_filters(filter.clone())
            .set_pagination_token(token.clone())
            .send()
            .await
            .expect("tagging API");
        for m in out.resource_tag_mapping_list() {
            let tags = m
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            found.insert(m.resource_arn().unwrap_or_default().to_string(), tags);
        }
        token = out
            .pagination_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return found;
        }
    }
}

async fn table_tags(env: &Env, table: &str) -> BTreeMap<String, String> {
    let ddb = env.dynamodb();
    let arn = ddb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap_or_else(|e| panic!("table {table} exists: {e:?}"))
        .table()
        .and_then(|t| t.table_arn().map(str::to_string))
        .expect("arn");
    ddb.list_tags_of_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("tags")
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// Group name → its `plinth:workspace` tag, for the stack's groups.
async fn group_workspaces(env: &Env, stack: &str) -> BTreeMap<String, String> {
    let out = env
        .ec2()
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:plinth:stack")
                .values(stack)
                .build(),
        )
        .send()
        .await
        .expect("describe groups");
    out.security_groups()
        .iter()
        .map(|g| {
            let workspace = g
                .tags()
                .iter()
                .find(|t| t.key() == Some("plinth:workspace"))
                .and_then(|t| t.value())
                .unwrap_or_default();
            (
                g.group_name().unwrap_or_default().to_string(),
                workspace.to_string(),
            )
        })
        .collect()
}

fn state_of(env: &Env, stack: &str, workspace: &str) -> serde_json::Value {
    let path = env.path(&format!(".plinth/{stack}/{workspace}/state.json"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("state is JSON")
}

fn resource_ids(state: &serde_json::Value) -> BTreeMap<String, String> {
    state["resources"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(name, r)| (name.clone(), r["id"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_roster_of_five_brings_up_replans_and_tears_down_five_isolated_environments() {
    let moto = Moto::start(0);
    let env = lab_env(&moto, LAB);
    env.write(
        "students.txt",
        "# week 2, group A\nana\nbruno   # joined late\n\ncarla\ndora\nemil\n",
    );

    let apply = env
        .plinth(&["apply", "lab.yaml", "--roster", "students.txt", "--yes"])
        .ok();
    assert!(
        apply
            .stdout
            .contains("Roster students.txt: apply of lab.yaml for 5 students, 4 at a time"),
        "{}",
        apply.stdout
    );
    for s in STUDENTS {
        // Each student's lines carry their name, even where they interleave.
        assert!(
            apply
                .stdout
                .contains(&format!("[{s}] orders: Creation complete after")),
            "{}",
            apply.stdout
        );
        assert!(apply
            .stdout
            .contains(&format!("[{s}] Plan: 6 to add, 0 to change, 0 to destroy.")));
        assert_eq!(row_start(&apply.stdout, s), words(&format!("{s} ok 6 0 0")));
    }
    assert!(apply.stdout.contains("All 5 environments applied."));

    // In the emulator: each student's tables and groups, named for them and tagged with
    // their workspace, with their own seed data.
    let ddb = env.dynamodb();
    let mut expected_tables: Vec<String> = STUDENTS
        .iter()
        .flat_map(|s| [format!("{s}-orders"), format!("{s}-users")])
        .collect();
    expected_tables.sort();
    assert_eq!(
        tables_of_stack(&ddb, "week2-data-lab").await,
        expected_tables
    );
    let groups = group_workspaces(&env, "week2-data-lab").await;
    let mut expected_groups = BTreeMap::new();
    for s in STUDENTS {
        for tier in ["web", "app", "cache"] {
            expected_groups.insert(format!("{s}-{tier}"), s.to_string());
        }
        for table in [format!("{s}-orders"), format!("{s}-users")] {
            let tags = table_tags(&env, &table).await;
            assert_eq!(tags["plinth:workspace"], s, "{table}");
            assert_eq!(tags["plinth:stack"], "week2-data-lab", "{table}");
        }
        let seeded = ddb
            .scan()
            .table_name(format!("{s}-users"))
            .send()
            .await
            .expect("scan");
        assert_eq!(seeded.count(), 30, "{s}'s seed data");
    }
    assert_eq!(groups, expected_groups);
    let tagged_before = tagged(&env, "week2-data-lab").await;
    assert_eq!(tagged_before.len(), 25, "10 tables and 15 groups");
    for s in STUDENTS {
        let theirs = tagged_before
            .values()
            .filter(|t| t.get("plinth:workspace").map(String::as_str) == Some(s))
            .count();
        assert_eq!(theirs, 5, "{s}: 2 tables and 3 groups");
    }

    // Five separate state files, each its student's workspace and resources only.
    let workspaces: Vec<String> = std::fs::read_dir(env.path(".plinth/week2-data-lab"))
        .expect("state folder")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(workspaces, STUDENTS);
    for s in STUDENTS {
        let state = state_of(&env, "week2-data-lab", s);
        assert_eq!(state["workspace"], s);
        let ids = resource_ids(&state);
        assert_eq!(ids.len(), 6, "{s}: {ids:?}");
        assert_eq!(ids["orders"], format!("{s}-orders"));
        assert_eq!(ids["users"], format!("{s}-users"));
        assert_eq!(
            state["outputs"]["orders_table"]["value"],
            format!("{s}-orders")
        );
    }

    // Re-planning the whole class: nothing to do anywhere.
    let plan = env
        .plinth(&[
            "plan",
            "lab.yaml",
            "--roster",
            "students.txt",
            "--detailed-exitcode",
        ])
        .ok();
    for s in STUDENTS {
        assert!(
            plan.stdout.contains(&format!(
                "[{s}] No changes. The stack matches what is deployed."
            )),
            "{}",
            plan.stdout
        );
        assert_eq!(
            row_start(&plan.stdout, s),
            words(&format!("{s} no changes 0 0 0"))
        );
    }
    assert!(
        !plan.stdout.contains("will be created"),
        "only summary lines without --full"
    );

    // One command tears all five down; nothing tagged with the stack remains.
    let destroy = env
        .plinth(&["destroy", "lab.yaml", "--roster", "students.txt", "--yes"])
        .ok();
    for s in STUDENTS {
        assert_eq!(
            row_start(&destroy.stdout, s),
            words(&format!("{s} ok 0 0 6"))
        );
        assert_eq!(resource_ids(&state_of(&env, "week2-data-lab", s)).len(), 0);
    }
    assert!(destroy.stdout.contains("All 5 environments destroyed."));
    assert_eq!(tagged(&env, "week2-data-lab").await, BTreeMap::new());
    assert!(tables_of_stack(&ddb, "week2-data-lab").await.is_empty());
    assert!(groups_of_stack(&env.ec2(), "week2-data-lab")
        .await
        .is_empty());
}

/// The week 2 lab with the orders table's read capacity as a number variable.
fn capacity_lab() -> String {
    let with_var = LAB
        .replacen(
            "vars:\n",
            "vars:\n  read_capacity: { default: 5, type: number }\n",
            1,
        )
        .replacen(
            "    read_capacity: 5\n",
            "    read_capacity: ${var.read_capacity}\n",
            1,
        )
        .replacen("stack: week2-data-lab", "stack: capacity-lab", 1);
    assert!(with_var.contains("${var.read_capacity}") && with_var.contains("capacity-lab"));
    with_var
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_student_fails_alone_and_the_summary_says_why() {
    let moto = Moto::start(0);
    let env = lab_env(&moto, &capacity_lab());
    // kim's users table is already taken (made by hand): an error only AWS can report.
    env.dynamodb()
        .create_table()
        .table_name("kim-users")
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("Id")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("Id")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .expect("key"),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .expect("table made by hand");
    env.write(
        "students.txt",
        "fay read_capacity=3\ngus\nhal\nivy\neve read_capacity=lots\nkim\n",
    );

    let run = env
        .plinth(&[
            "apply",
            "lab.yaml",
            "--roster",
            "students.txt",
            "--yes",
            "--max-environments",
            "2",
        ])
        .expect_code(1);
    for s in ["fay", "gus", "hal", "ivy"] {
        assert_eq!(row_start(&run.stdout, s), words(&format!("{s} ok 6 0 0")));
    }
    let eve = table_row(&run.stdout, "eve").join(" ");
    assert!(
        eve.starts_with("eve failed 0 0 0")
            && eve.ends_with("students.txt:5:5: `read_capacity` must be a number, found `lots`"),
        "{eve}"
    );
    let kim = table_row(&run.stdout, "kim").join(" ");
    assert!(
        kim.starts_with("kim failed")
            && kim.contains("creating `users`")
            && kim.contains("kim-users already exists"),
        "{kim}"
    );
    assert!(
        run.stderr.contains("2 of 6 environments failed: eve, kim."),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("[eve]   × students.txt:5:5"),
        "{}",
        run.stderr
    );

    // The others are really there, each with its own variables; eve has nothing at all.
    let ddb = env.dynamodb();
    let capacity = |table: &'static str| {
        let ddb = ddb.clone();
        async move {
            ddb.describe_table()
                .table_name(table)
                .send()
                .await
                .expect("table")
                .table()
                .and_then(|t| t.provisioned_throughput())
                .and_then(|p| p.read_capacity_units())
        }
    };
    assert_eq!(capacity("fay-orders").await, Some(3));
    assert_eq!(capacity("gus-orders").await, Some(5));
    let tables = tables_of_stack(&ddb, "capacity-lab").await;
    assert!(tables.iter().all(|t| !t.starts_with("eve-")), "{tables:?}");
    for s in ["fay", "gus", "hal", "ivy"] {
        assert!(tables.contains(&format!("{s}-users")), "{tables:?}");
        assert_eq!(resource_ids(&state_of(&env, "capacity-lab", s)).len(), 6);
    }
    assert!(!env.path(".plinth/capacity-lab/eve/state.json").exists());
    let kim_state = resource_ids(&state_of(&env, "capacity-lab", "kim"));
    assert_eq!(
        kim_state["orders"], "kim-orders",
        "kim's other resources were made"
    );
    assert_eq!(
        kim_state.get("users").map(String::as_str).unwrap_or(""),
        "",
        "kim's users table is not theirs: {kim_state:?}"
    );

    // Tearing the class down: eve's line is still broken, everyone else's environment goes,
    // and the table made by hand is not kim's to delete.
    let destroy = env
        .plinth(&["destroy", "lab.yaml", "--roster", "students.txt", "--yes"])
        .expect_code(1);
    assert!(
        destroy.stderr.contains("1 of 6 environments failed: eve."),
        "{}",
        destroy.stderr
    );
    assert_eq!(row_start(&destroy.stdout, "fay"), words("fay ok 0 0 6"));
    // What kim's failed apply made before it stopped starting new work depends on timing:
    // the destroy takes exactly that.
    let kim_made = kim_state.values().filter(|id| !id.is_empty()).count();
    assert!(kim_made >= 3, "{kim_state:?}");
    assert_eq!(
        row_start(&destroy.stdout, "kim"),
        words(&format!("kim ok 0 0 {kim_made}"))
    );
    assert!(tables_of_stack(&ddb, "capacity-lab").await.is_empty());
    ddb.describe_table()
        .table_name("kim-users")
        .send()
        .await
        .expect("the table made by hand is still there");
}

#[tokio::test(flavor = "multi_thread")]
async fn roster_file_errors_name_file_line_and_column_and_nothing_runs() {
    let env = Env::new();
    env.write(
        "plinth.yaml",
        "stack: roster-errors\nregion: us-east-1\nresources:\n  t:\n    type: dynamodb.table\n    name: \"roster-errors-${workspace}\"\n    partition_key: { name: Id, type: S }\n",
    );
    env.write("students.txt", "ana\nbo\nana\nbad.name\nbo tier\n");

    let run = env
        .plinth(&["apply", "--roster", "students.txt", "--yes"])
        .expect_code(1);
    for expected in [
        "students.txt:3:1: student `ana` is listed twice (first on line 1)",
        "students.txt:4:1: `bad.name`: expected letters, digits, `-` and `_` (at most 64)",
        "students.txt:5:4: expected NAME=VALUE after the student's name, found `tier`",
        "error: 3 problems found",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    assert!(!run.stdout.contains("Roster"), "no summary: {}", run.stdout);
    assert!(!env.path(".plinth").exists(), "no state was touched");
    let names = env
        .dynamodb()
        .list_tables()
        .send()
        .await
        .expect("list tables")
        .table_names()
        .to_vec();
    assert!(
        names.iter().all(|n| !n.starts_with("roster-errors")),
        "{names:?}"
    );

    // A valid roster still needs --yes: nobody confirms N plans one by one.
    env.write("students.txt", "ana\nbo\n");
    let run = env
        .plinth(&["apply", "--roster", "students.txt"])
        .expect_code(1);
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
    assert!(!env.path(".plinth").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workspaces_of_one_stack_coexist_named_by_workspace() {
    let env = Env::new();
    env.write(
        "plinth.yaml",
        r#"
stack: ws-isolation
region: us-east-1
resources:
  table:
    type: dynamodb.table
    name: "ws-isolation-${workspace}-table"
    partition_key: { name: Id, type: S }
  group:
    type: ec2.security_group
    name: "ws-isolation-${workspace}"
    description: "the ${workspace} environment"
"#,
    );
    env.plinth(&["apply", "--yes", "--workspace", "blue"]).ok();
    // The environment variable chooses the workspace as well as the flag does.
    let green = env
        .command(&["apply", "--yes"])
        .env("PLINTH_WORKSPACE", "green")
        .output()
        .expect("run plinth");
    assert_eq!(
        green.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&green.stderr)
    );

    let ddb = env.dynamodb();
    assert_eq!(
        tables_of_stack(&ddb, "ws-isolation").await,
        ["ws-isolation-blue-table", "ws-isolation-green-table"]
    );
    for w in ["blue", "green"] {
        let tags = table_tags(&env, &format!("ws-isolation-{w}-table")).await;
        assert_eq!(tags["plinth:workspace"], w);
        let state = state_of(&env, "ws-isolation", w);
        assert_eq!(state["workspace"], w);
        assert_eq!(
            resource_ids(&state)["table"],
            format!("ws-isolation-{w}-table")
        );
    }
    let groups = group_workspaces(&env, "ws-isolation").await;
    assert_eq!(
        groups,
        BTreeMap::from([
            ("ws-isolation-blue".to_string(), "blue".to_string()),
            ("ws-isolation-green".to_string(), "green".to_string()),
        ])
    );
    assert!(
        !env.path(".plinth/ws-isolation/default/state.json").exists(),
        "nothing went to the default workspace"
    );

    // Each workspace plans clean on its own, and destroying one leaves the other.
    env.plinth(&["plan", "--detailed-exitcode", "-w", "blue"])
        .ok();
    env.plinth(&["destroy", "--yes", "-w", "blue"]).ok();
    assert_eq!(
        tables_of_stack(&ddb, "ws-isolation").await,
        ["ws-isolation-green-table"]
    );
    assert_eq!(
        group_workspaces(&env, "ws-isolation").await,
        BTreeMap::from([("ws-isolation-green".to_string(), "green".to_string())])
    );
    env.plinth(&["plan", "--detailed-exitcode", "-w", "green"])
        .ok();
    env.plinth(&["destroy", "--yes", "-w", "green"]).ok();
    assert!(tables_of_stack(&ddb, "ws-isolation").await.is_empty());

    // A workspace name that cannot name a folder is refused before anything runs.
    let bad = env.plinth(&["plan", "-w", "../escape"]).expect_code(1);
    assert!(
        bad.stderr
            .contains("workspace `../escape`: expected letters, digits, `-` and `_`"),
        "{}",
        bad.stderr
    );
}

/// The lines of `stdout` that `student`'s drift table printed (prefixed with their name).
fn drift_lines<'a>(stdout: &'a str, student: &str) -> Vec<&'a str> {
    let prefix = format!("[{student}]   ");
    stdout
        .lines()
        .filter(|l| l.starts_with(&prefix) && !l.contains("resource  "))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_across_a_roster_names_exactly_what_students_changed_by_hand() {
    let moto = Moto::start(0);
    let env = lab_env(&moto, LAB);
    env.write("students.txt", "ana\nbruno\ncarla\n");
    env.plinth(&["apply", "lab.yaml", "--roster", "students.txt", "--yes"])
        .ok();

    // Right after apply nothing has drifted: no false alarms for a class that did nothing.
    let clean = env
        .plinth(&["drift", "lab.yaml", "--roster", "students.txt"])
        .ok();
    for s in ["ana", "bruno", "carla"] {
        assert!(
            clean.stdout.contains(&format!(
                "[{s}] No drift: everything in the state is as plinth left it."
            )),
            "{}",
            clean.stdout
        );
        assert_eq!(
            row_start(&clean.stdout, s),
            words(&format!("{s} no changes 0 0 0"))
        );
    }

    // Bruno raises his table's read capacity in the console; Carla opens SSH on her web tier.
    env.dynamodb()
        .update_table()
        .table_name("bruno-orders")
        .provisioned_throughput(
            aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                .read_capacity_units(7)
                .write_capacity_units(5)
                .build()
                .expect("throughput"),
        )
        .send()
        .await
        .expect("change bruno's capacity");
    let carla_web = env
        .ec2()
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-name")
                .values("carla-web")
                .build(),
        )
        .send()
        .await
        .expect("describe")
        .security_groups()[0]
        .group_id()
        .expect("id")
        .to_string();
    env.ec2()
        .authorize_security_group_ingress()
        .group_id(&carla_web)
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .cidr_ip("0.0.0.0/0")
        .send()
        .await
        .expect("open SSH on carla's web tier");

    let drift = env
        .plinth(&["drift", "lab.yaml", "--roster", "students.txt"])
        .expect_code(2);
    let out = &drift.stdout;
    assert!(drift_lines(out, "ana").is_empty(), "{out}");
    let bruno = drift_lines(out, "bruno");
    assert_eq!(bruno.len(), 1, "{out}");
    assert_eq!(
        words(bruno[0]),
        words("[bruno] orders (dynamodb.table) read_capacity 5 7"),
        "{out}"
    );
    let carla = drift_lines(out, "carla");
    assert_eq!(carla.len(), 1, "{out}");
    assert!(
        carla[0].contains("web_sg (ec2.security_group)  ingress")
            && carla[0].contains("from_port = 22"),
        "{out}"
    );
    assert_eq!(row_start(out, "ana"), words("ana no changes 0 0 0"));
    assert_eq!(row_start(out, "bruno"), words("bruno drifted 1 1 0"));
    assert_eq!(row_start(out, "carla"), words("carla drifted 1 1 0"));

    // One workspace alone, as JSON: the same finding, for a machine.
    let json = env
        .plinth(&["drift", "lab.yaml", "--workspace", "bruno", "--json"])
        .expect_code(2);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        doc["drifted"],
        serde_json::json!([{
            "resource": "orders", "type_name": "dynamodb.table", "id": "bruno-orders",
            "changes": [{"property": "read_capacity", "expected": 5, "actual": 7}]
        }])
    );

    // Drift only reads: the state is untouched, and destroy still takes everything.
    env.plinth(&["destroy", "lab.yaml", "--roster", "students.txt", "--yes"])
        .ok();
    assert!(tables_of_stack(&env.dynamodb(), "week2-data-lab")
        .await
        .is_empty());
    assert!(groups_of_stack(&env.ec2(), "week2-data-lab")
        .await
        .is_empty());
}
