//! Telling leftovers apart and choosing what `sweep` removes, against hand-made states.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::*;
use crate::state::{ResourceState, State, Status};
use crate::testing::{props, registry, FakeCloud};

const NOW_SECS: u64 = 1_900_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// RFC 3339 for `offset` seconds from [`now`] (negative: earlier).
fn at(offset: i64) -> String {
    let secs = NOW_SECS as i64 + offset;
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs as u64)).to_string()
}

fn tagged(arn: &str, region: &str, tags: &[(&str, &str)]) -> TaggedResource {
    TaggedResource {
        arn: arn.into(),
        region: region.into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn of(stack: &str, workspace: &str, arn: &str) -> TaggedResource {
    tagged(
        arn,
        "us-east-1",
        &[(STACK_TAG, stack), (WORKSPACE_TAG, workspace)],
    )
}

fn entry(id: &str, attrs: serde_json::Value, status: Status) -> ResourceState {
    ResourceState {
        type_name: "test.thing".into(),
        region: "us-east-1".into(),
        id: id.into(),
        status,
        props: props(json!({"name": id})),
        attrs: props(attrs),
        deps: Vec::new(),
        soft_deps: Vec::new(),
        lifecycle: Default::default(),
        changed_at: None,
        create_token: None,
    }
}

fn state_of(stack: &str, entries: Vec<(&str, ResourceState)>) -> State {
    let mut state = State::new(stack, "default");
    for (name, e) in entries {
        state.resources.insert(name.into(), e);
    }
    state
}

fn pending() -> Status {
    Status::PendingDelete {
        reason: "replicas remain".into(),
        since: at(-60),
    }
}

#[test]
fn an_arn_stands_for_an_entry_by_id_by_its_type_or_by_an_arn_attribute() {
    let reg = registry(&FakeCloud::new());
    let by_id = entry(
        "arn:aws:acm:us-east-1:1:certificate/c1",
        json!({}),
        Status::Ready,
    );
    assert!(stands_for(
        &by_id,
        &reg,
        "arn:aws:acm:us-east-1:1:certificate/c1"
    ));

    // The type maps its ARN to the id, with no attribute to compare.
    let by_type = entry("thing-7", json!({}), Status::Ready);
    assert!(stands_for(&by_type, &reg, "arn:fake:thing/thing-7"));
    assert!(!stands_for(&by_type, &reg, "arn:fake:thing/thing-70"));

    let by_attr = entry(
        "fn-name",
        json!({"arn": "arn:aws:lambda:us-east-1:1:function:rewrite"}),
        Status::Ready,
    );
    assert!(stands_for(
        &by_attr,
        &reg,
        "arn:aws:lambda:us-east-1:1:function:rewrite"
    ));

    // A version ARN names the function it qualifies, and only that one.
    let qualified = entry(
        "fn-name",
        json!({"qualified_arn": "arn:aws:lambda:us-east-1:1:function:rewrite:3"}),
        Status::Ready,
    );
    assert!(stands_for(
        &qualified,
        &reg,
        "arn:aws:lambda:us-east-1:1:function:rewrite"
    ));
    assert!(!stands_for(
        &qualified,
        &reg,
        "arn:aws:lambda:us-east-1:1:function:rewr"
    ));
}

#[test]
fn a_create_interrupted_before_its_id_was_recorded_is_recorded_by_its_tags() {
    let reg = registry(&FakeCloud::new());
    let mut interrupted = entry("", json!({}), Status::Creating);
    interrupted.attrs.clear();
    let state = state_of("lab", vec![("users", interrupted)]);
    let mut found = of("lab", "default", "arn:fake:thing/thing-9");
    assert!(
        !records(&state, &reg, &found),
        "no logical name in its tags"
    );
    found.tags.insert(RESOURCE_TAG.into(), "users".into());
    assert!(records(&state, &reg, &found));
    let mut elsewhere = found.clone();
    elsewhere.tags.insert(WORKSPACE_TAG.into(), "ana".into());
    assert!(!records(&state, &reg, &elsewhere), "another workspace's");
}

#[test]
fn leftovers_are_pending_deletions_failed_deletes_or_unknown_to_state() {
    let reg = registry(&FakeCloud::new());
    let state = state_of(
        "lab",
        vec![
            ("rewrite", entry("thing-1", json!({}), pending())),
            ("table", entry("thing-2", json!({}), Status::Ready)),
        ],
    );
    let found = vec![
        of("lab", "default", "arn:fake:thing/thing-1"),
        of("lab", "default", "arn:fake:thing/thing-2"),
        of("lab", "default", "arn:fake:thing/thing-3"),
    ];
    let why: Vec<Leftover> = leftovers(&state, &reg, &found)
        .into_iter()
        .map(|(_, why)| why)
        .collect();
    assert_eq!(
        why,
        [
            Leftover::PendingDeletion {
                name: "rewrite".into(),
                reason: "replicas remain".into()
            },
            Leftover::StillInState {
                name: "table".into()
            },
            Leftover::UnknownToState,
        ]
    );
}

#[test]
fn environments_group_by_stack_and_workspace_and_skip_what_names_no_stack() {
    let found = vec![
        of("web", "ana", "arn:1"),
        of("lab", "default", "arn:2"),
        of("lab", "ana", "arn:3"),
        tagged("arn:4", "us-east-1", &[(WORKSPACE_TAG, "ana")]),
        of("lab", "default", "arn:5"),
    ];
    let envs = environments(found, &[]);
    let keys: Vec<(String, String, Vec<String>)> = envs
        .iter()
        .map(|e| {
            (
                e.stack.clone(),
                e.workspace.clone(),
                e.resources.iter().map(|r| r.arn.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("lab".into(), "ana".into(), vec!["arn:3".to_string()]),
            (
                "lab".into(),
                "default".into(),
                vec!["arn:2".into(), "arn:5".into()]
            ),
            ("web".into(), "ana".into(), vec!["arn:1".into()]),
        ]
    );
}

#[test]
fn an_environment_expires_and_ages_by_the_earliest_stamps_of_its_tags_and_state() {
    let found = vec![
        tagged(
            "arn:1",
            "eu-west-1",
            &[
                (STACK_TAG, "lab"),
                (EXPIRES_AT_TAG, &at(-3_600)),
                (CREATED_AT_TAG, &at(-7_200)),
            ],
        ),
        tagged(
            "arn:2",
            "us-east-1",
            &[
                (STACK_TAG, "lab"),
                (EXPIRES_AT_TAG, &at(-60)),
                (CREATED_AT_TAG, &at(-100)),
            ],
        ),
        tagged(
            "arn:3",
            "eu-west-1",
            &[(STACK_TAG, "lab"), (EXPIRES_AT_TAG, "not a time")],
        ),
    ];
    let env = &environments(found, &[])[0];
    assert_eq!(env.expired_for(now()), Some(Duration::from_secs(3_600)));
    assert_eq!(env.age(now()), Some(Duration::from_secs(7_200)));
    assert_eq!(env.regions(), ["eu-west-1", "us-east-1"]);
    assert_eq!(env.state, None);

    // The state knows the environment is older and expired earlier than its tags say.
    let mut state = state_of("lab", vec![("a", entry("t1", json!({}), Status::Ready))]);
    state.expires_at = Some(at(-86_400));
    state.created_at = Some(at(-2 * 86_400));
    let found = vec![tagged(
        "arn:1",
        "us-east-1",
        &[(STACK_TAG, "lab"), (EXPIRES_AT_TAG, &at(60))],
    )];
    let env = &environments(found, &[state])[0];
    assert_eq!(env.state, Some(0));
    assert_eq!(env.expired_for(now()), Some(Duration::from_secs(86_400)));
    assert_eq!(env.age(now()), Some(Duration::from_secs(2 * 86_400)));

    let fresh = &environments(
        vec![tagged(
            "arn:1",
            "us-east-1",
            &[(STACK_TAG, "lab"), (EXPIRES_AT_TAG, &at(60))],
        )],
        &[],
    )[0];
    assert_eq!(fresh.expired_for(now()), None, "expires in a minute");
    assert_eq!(fresh.age(now()), None, "no creation time");
}

#[test]
fn an_environment_only_a_state_records_is_seen_and_an_emptied_state_is_not() {
    let mut expired = state_of("far", vec![("a", entry("t1", json!({}), Status::Ready))]);
    expired.expires_at = Some(at(-10));
    let emptied = state_of("done", vec![]);
    let envs = environments(vec![], &[emptied, expired]);
    assert_eq!(envs.len(), 1);
    assert_eq!((envs[0].stack.as_str(), envs[0].state), ("far", Some(1)));
    assert!(envs[0].resources.is_empty());
    assert_eq!(envs[0].expired_for(now()), Some(Duration::from_secs(10)));
}

fn orphan_arns(c: &Candidate) -> Vec<&str> {
    c.orphans.iter().map(|r| r.arn.as_str()).collect()
}

/// Four environments: `old` expired (its state is visible), `live` not expired (state
/// visible), `lost` not expired and in no state, `gone` expired and in no state.
fn four() -> (Vec<Environment>, Vec<State>) {
    let with = |stack: &str, arn: &str, expires: i64, created: i64| {
        tagged(
            arn,
            "us-east-1",
            &[
                (STACK_TAG, stack),
                (WORKSPACE_TAG, "default"),
                (EXPIRES_AT_TAG, &at(expires)),
                (CREATED_AT_TAG, &at(created)),
            ],
        )
    };
    let states = vec![
        state_of("old", vec![("a", entry("o1", json!({}), Status::Ready))]),
        state_of("live", vec![("a", entry("l1", json!({}), Status::Ready))]),
    ];
    let envs = environments(
        vec![
            with("old", "arn:fake:thing/o1", -7_200, -3 * 86_400),
            with("old", "arn:fake:thing/o-stray", -7_200, -3 * 86_400),
            with("live", "arn:fake:thing/l1", 3_600, -3_600),
            with("lost", "arn:fake:thing/x1", 3_600, -5 * 86_400),
            with("gone", "arn:fake:thing/g1", -60, -3_600),
        ],
        &states,
    );
    (envs, states)
}

fn chosen(filter: &SweepFilter) -> Vec<String> {
    let (envs, states) = four();
    let reg = registry(&FakeCloud::new());
    candidates(envs, &states, &reg, filter, now())
        .iter()
        .map(|c| c.env.stack.clone())
        .collect()
}

#[test]
fn sweep_takes_expired_environments_and_those_no_state_knows() {
    let (envs, states) = four();
    let reg = registry(&FakeCloud::new());
    let found = candidates(envs, &states, &reg, &SweepFilter::default(), now());
    let stacks: Vec<&str> = found.iter().map(|c| c.env.stack.as_str()).collect();
    assert_eq!(stacks, ["gone", "lost", "old"], "`live` is neither");
    let old = &found[2];
    assert_eq!(old.expired_for, Some(Duration::from_secs(7_200)));
    assert_eq!(old.env.state, Some(0));
    assert_eq!(
        orphan_arns(old),
        ["arn:fake:thing/o-stray"],
        "the state knows o1; the stray is removed with it"
    );
    let lost = &found[1];
    assert_eq!(lost.expired_for, None);
    assert_eq!(lost.env.state, None);
    assert_eq!(orphan_arns(lost), ["arn:fake:thing/x1"]);
}

#[test]
fn sweep_filters_by_expiry_stack_workspace_and_age() {
    let expired = SweepFilter {
        expired_only: true,
        ..Default::default()
    };
    assert_eq!(chosen(&expired), ["gone", "old"]);
    let stacks = SweepFilter {
        stacks: vec!["lost".into(), "live".into()],
        ..Default::default()
    };
    assert_eq!(chosen(&stacks), ["lost"]);
    let other_workspace = SweepFilter {
        workspaces: vec!["ana".into()],
        ..Default::default()
    };
    assert!(chosen(&other_workspace).is_empty());
    let older = SweepFilter {
        older_than: Some(Duration::from_secs(2 * 86_400)),
        ..Default::default()
    };
    assert_eq!(chosen(&older), ["lost", "old"], "gone is an hour old");
}

#[test]
fn older_than_never_takes_an_environment_without_a_creation_time() {
    let envs = environments(vec![of("lab", "default", "arn:fake:thing/t1")], &[]);
    let reg = registry(&FakeCloud::new());
    let any_age = SweepFilter {
        older_than: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    assert!(candidates(envs.clone(), &[], &reg, &any_age, now()).is_empty());
    assert_eq!(
        candidates(envs, &[], &reg, &SweepFilter::default(), now()).len(),
        1
    );
}

#[test]
fn ages_read_in_their_two_largest_units() {
    let cases = [
        (0, "0s"),
        (45, "45s"),
        (60, "1m"),
        (3_725, "1h 2m"),
        (7_200, "2h"),
        (2 * 86_400 + 4 * 3_600 + 59, "2d 4h"),
        (3 * 86_400 + 30, "3d"),
    ];
    for (secs, text) in cases {
        assert_eq!(short_age(Duration::from_secs(secs)), text, "{secs}s");
    }
    assert_eq!(parse_age("2d"), Ok(Duration::from_secs(2 * 86_400)));
    assert_eq!(parse_age("90m"), Ok(Duration::from_secs(5_400)));
    let err = parse_age("soon").expect_err("not a duration");
    assert!(err.contains("`soon` is not a duration"), "{err}");
}
