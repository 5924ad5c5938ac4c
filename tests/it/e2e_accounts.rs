//! One AWS account per student: a roster line's `account=` or `role_arn=` puts that
//! student's environment in their own account, through `sts:AssumeRole`. The emulator's STS
//! lets a role in any account be assumed, and what its credentials make is in that account
//! only, as on AWS.

use crate::harness::{groups_of_stack, tables_of_stack, Env, Moto};

const LAB: &str = include_str!("../../stacks/week2-data-lab.yaml");
const USERS: &str = include_str!("../../stacks/data/users.yaml");
const STACK: &str = "week2-data-lab";
const ANA_ACCOUNT: &str = "111111111111";
const BRUNO_ACCOUNT: &str = "222222222222";
/// The emulator's own account, where the instructor's credentials work.
const OWN_ACCOUNT: &str = "123456789012";

fn table_names(student: &str) -> Vec<String> {
    vec![format!("{student}-orders"), format!("{student}-users")]
}

fn roster_row<'a>(stdout: &'a str, student: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&student))
        .unwrap_or_else(|| panic!("a summary row for {student}:\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_student_with_an_account_has_their_environment_there_and_only_there() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.write("lab.yaml", LAB);
    env.write("data/users.yaml", USERS);
    env.write(
        "students.txt",
        &format!(
            "ana account={ANA_ACCOUNT}\nbruno role_arn=arn:aws:iam::{BRUNO_ACCOUNT}:role/LabAdmin external_id=course-7\ncarla\n"
        ),
    );
    let roster = ["--roster", "students.txt", "--yes"];

    let apply = env
        .plinth(&[&["apply", "lab.yaml"][..], &roster[..]].concat())
        .ok();
    assert_eq!(
        roster_row(&apply.stdout, "ana")[..3],
        ["ana", ANA_ACCOUNT, "ok"]
    );
    assert_eq!(
        roster_row(&apply.stdout, "bruno")[..3],
        ["bruno", BRUNO_ACCOUNT, "ok"]
    );
    assert_eq!(
        roster_row(&apply.stdout, "carla")[..3],
        ["carla", "yours", "ok"]
    );

    // Each account holds its own student's environment and nobody else's.
    let placement = [
        (ANA_ACCOUNT, "ana"),
        (BRUNO_ACCOUNT, "bruno"),
        (OWN_ACCOUNT, "carla"),
    ];
    for (account, student) in placement {
        let credentials = env.credentials_in(account).await;
        let tables = tables_of_stack(&env.dynamodb_in(&credentials), STACK).await;
        assert_eq!(tables, table_names(student), "tables of account {account}");
        let groups = groups_of_stack(&env.ec2_in(&credentials), STACK).await;
        assert_eq!(
            groups.len(),
            3,
            "{student}'s groups in {account}: {groups:?}"
        );
        assert!(
            groups.iter().all(|(_, name)| name.starts_with(student)),
            "{groups:?}"
        );
    }
    // The state says where each environment is; all states stay with the instructor.
    let state = |student: &str| -> serde_json::Value {
        let text = env.read(&format!(".plinth/{STACK}/{student}/state.json"));
        serde_json::from_str(&text).expect("state is JSON")
    };
    assert_eq!(state("ana")["account"], ANA_ACCOUNT);
    assert_eq!(state("bruno")["account"], BRUNO_ACCOUNT);
    assert_eq!(state("carla")["account"], OWN_ACCOUNT, "recorded too");

    let plan = env
        .plinth(&[
            "plan",
            "lab.yaml",
            "--roster",
            "students.txt",
            "--detailed-exitcode",
        ])
        .ok();
    for student in ["ana", "bruno", "carla"] {
        assert!(
            plan.stdout.contains(&format!("[{student}] No changes.")),
            "{}",
            plan.stdout
        );
    }

    // Without the roster, ana's workspace would be looked for in the instructor's account,
    // found empty and made again: refused, naming where it is.
    let alone = env
        .plinth(&["plan", "lab.yaml", "-w", "ana"])
        .expect_code(1);
    assert!(
        alone
            .stderr
            .contains(&format!("account {ANA_ACCOUNT} (its state says so)")),
        "{}",
        alone.stderr
    );
    // And a roster that moves her to another account is refused for her alone.
    env.write(
        "moved.txt",
        &format!("ana account={BRUNO_ACCOUNT}\ncarla\n"),
    );
    let moved = env
        .plinth(&["plan", "lab.yaml", "--roster", "moved.txt"])
        .expect_code(1);
    assert_eq!(roster_row(&moved.stdout, "ana")[2], "failed");
    assert_eq!(roster_row(&moved.stdout, "carla")[2], "no");

    // Bruno's state is lost: sweep finds his environment in his account, by its tags, and
    // only with the roster naming the account; ana's and carla's are known to their states.
    std::fs::remove_dir_all(env.path(&format!(".plinth/{STACK}/bruno"))).expect("lose a state");
    let own_only = env.plinth(&["sweep", "--stack", STACK]).ok();
    assert!(
        own_only.stdout.starts_with("Nothing to sweep"),
        "{}",
        own_only.stdout
    );
    assert!(
        own_only.stderr.contains(&format!(
            "environments in other accounts are not searched ({ANA_ACCOUNT})"
        )),
        "{}",
        own_only.stderr
    );
    let dry = env
        .plinth(&["sweep", "--stack", STACK, "--roster", "students.txt"])
        .ok();
    let heading = format!("Account {BRUNO_ACCOUNT} (bruno):");
    let (before, after) = dry
        .stdout
        .split_once(&heading)
        .unwrap_or_else(|| panic!("a heading for bruno's account:\n{}", dry.stdout));
    assert!(after.contains("1 environment to remove"), "{}", dry.stdout);
    assert!(after.contains(&format!("{STACK}  bruno")), "{}", dry.stdout);
    assert!(
        !before.contains("to remove"),
        "nothing elsewhere:\n{}",
        dry.stdout
    );
    env.plinth(&[
        "sweep",
        "--stack",
        STACK,
        "--roster",
        "students.txt",
        "--yes",
    ])
    .ok();
    let bruno = env.credentials_in(BRUNO_ACCOUNT).await;
    assert!(tables_of_stack(&env.dynamodb_in(&bruno), STACK)
        .await
        .is_empty());
    assert!(groups_of_stack(&env.ec2_in(&bruno), STACK).await.is_empty());
    assert_eq!(
        tables_of_stack(
            &env.dynamodb_in(&env.credentials_in(ANA_ACCOUNT).await),
            STACK
        )
        .await,
        table_names("ana"),
        "ana's environment is hers and known: untouched"
    );

    let destroy = env
        .plinth(&[&["destroy", "lab.yaml"][..], &roster[..]].concat())
        .ok();
    for (account, student) in placement {
        if account == ANA_ACCOUNT {
            assert!(
                destroy.stdout.contains(&format!(
                    "nothing tagged with stack `{STACK}` / workspace `{student}` is left in us-east-1 of account {account}."
                )),
                "{}",
                destroy.stdout
            );
        }
        let credentials = env.credentials_in(account).await;
        assert!(tables_of_stack(&env.dynamodb_in(&credentials), STACK)
            .await
            .is_empty());
        assert!(groups_of_stack(&env.ec2_in(&credentials), STACK)
            .await
            .is_empty());
        let tagged = env
            .tagging_in(&credentials)
            .get_resources()
            .send()
            .await
            .expect("tagging API");
        assert!(
            tagged.resource_tag_mapping_list().is_empty(),
            "account {account} still has {:?}",
            tagged.resource_tag_mapping_list()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_roster_line_with_a_bad_account_stops_the_run_before_anything_is_done() {
    let env = Env::new();
    env.write("lab.yaml", LAB);
    env.write("data/users.yaml", USERS);
    env.write("students.txt", "ana account=1111\nbo external_id=xyz9\n");
    let run = env
        .plinth(&["plan", "lab.yaml", "--roster", "students.txt"])
        .expect_code(1);
    assert!(
        run.stderr.contains(
            "students.txt:1:5: `account=1111`: expected an AWS account id, twelve digits"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("students.txt:2:4: external_id= goes with account= or role_arn="),
        "{}",
        run.stderr
    );
    let bad_role = env
        .plinth(&[
            "plan",
            "lab.yaml",
            "--roster",
            "students.txt",
            "--role-name",
            "a/b",
        ])
        .expect_code(2);
    assert!(
        bad_role.stderr.contains("is not an IAM role name"),
        "{}",
        bad_role.stderr
    );
}
