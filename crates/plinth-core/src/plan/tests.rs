//! The planner against the fake type and hand-made states, and the plan's renderings.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::plan::render::{render, summary, to_display_json};
use crate::plan::{Action, Mode, Plan, PlanError, ResourceChange};
use crate::resource::ResourceError;
use crate::stack::Lifecycle;
use crate::state::{OutputState, ResourceState, State, Status};
use crate::testing::{canonical, empty_state, ready, Harness, Op, CREATED_AT};
use crate::value::{is_unknown, Props, SENSITIVE_DISPLAY, UNKNOWN, UNKNOWN_DISPLAY};

const HEAD: &str = "stack: demo\nregion: us-east-1\n";

fn text(body: &str) -> String {
    format!("{HEAD}{body}")
}

async fn plan(h: &Harness, body: &str, state: &State) -> Plan {
    plan_mode(h, body, state, Mode::Apply, &[]).await
}

async fn plan_mode(h: &Harness, body: &str, state: &State, mode: Mode, targets: &[&str]) -> Plan {
    let stack = h.stack(&text(body));
    match h.plan_against(&stack, state, mode, targets).await {
        Ok(p) => p,
        Err(e) => panic!("planning failed: {e}"),
    }
}

async fn plan_err(h: &Harness, body: &str, state: &State, mode: Mode) -> PlanError {
    let stack = h.stack(&text(body));
    match h.plan_against(&stack, state, mode, &[]).await {
        Ok(p) => panic!("expected a plan error, got {:#?}", p.resources),
        Err(e) => e,
    }
}

fn change<'a>(plan: &'a Plan, name: &str) -> &'a ResourceChange {
    plan.change(name)
        .unwrap_or_else(|| panic!("`{name}` is not in the plan: {:#?}", plan.resources))
}

fn after<'a>(plan: &'a Plan, name: &str) -> &'a Props {
    change(plan, name).after.as_ref().expect("after")
}

fn actions(plan: &Plan) -> Vec<(String, Action)> {
    plan.resources
        .iter()
        .map(|r| (r.name.clone(), r.action))
        .collect()
}

/// A state holding `entries`.
fn state_with(entries: Vec<(&str, ResourceState)>) -> State {
    let mut s = empty_state();
    for (name, rs) in entries {
        s.resources.insert(name.to_string(), rs);
    }
    s
}

const ONE: &str = "resources:\n  a:\n    type: test.thing\n    name: alpha\n    size: 3\n";

// ---------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_resource_absent_from_state_is_created_with_the_plinth_tags() {
    let h = Harness::new();
    let p = plan(&h, ONE, &empty_state()).await;
    let a = change(&p, "a");
    assert_eq!(a.action, Action::Create);
    assert_eq!(a.type_name, "test.thing");
    assert_eq!(a.region, "us-east-1");
    assert_eq!(a.id, None);
    assert_eq!(a.before, None);
    assert_eq!(
        a.after.as_ref(),
        Some(&canonical("a", json!({"name": "alpha", "size": 3})))
    );
    assert!(is_unknown(&a.attrs["id"]) && is_unknown(&a.attrs["arn"]));
    assert_eq!(a.attrs["name"], json!("alpha"), "known from the properties");
    assert!(p.has_changes());
    assert_eq!(p.counts().create, 1);
    assert_eq!(p.format_version, "1.0");
    assert_eq!(p.kind, "plinth-plan");
    assert_eq!(
        (p.stack.as_str(), p.workspace.as_str()),
        ("demo", "default")
    );
}

#[tokio::test]
async fn a_resource_whose_read_matches_the_stack_is_a_no_op_after_one_read() {
    let h = Harness::new();
    let rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "size": 3})),
    );
    let id = rs.id.clone();
    let state = state_with(vec![("a", rs.clone())]);
    let p = plan(&h, ONE, &state).await;
    let a = change(&p, "a");
    assert_eq!(a.action, Action::NoOp);
    assert_eq!(a.id.as_deref(), Some(id.as_str()));
    assert_eq!(a.attrs, rs.attrs, "a no-op keeps what AWS reports");
    assert!(!p.has_changes());
    assert_eq!(
        summary(&p),
        "No changes. The stack matches what is deployed."
    );
    assert_eq!(h.cloud.calls_of(Op::Read).len(), 1, "one read per resource");
    assert!(h.cloud.calls_of(Op::Find).is_empty());
}

#[tokio::test]
async fn a_changed_size_is_an_update_in_place_that_keeps_the_known_attributes() {
    let h = Harness::new();
    let rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "size": 1})),
    );
    let state = state_with(vec![("a", rs.clone())]);
    let p = plan(&h, ONE, &state).await;
    let a = change(&p, "a");
    assert_eq!(a.action, Action::Update);
    assert!(a.replace_reasons.is_empty());
    assert_eq!(a.before.as_ref().expect("before")["size"], json!(1));
    assert_eq!(after(&p, "a")["size"], json!(3));
    assert_eq!(a.attrs["arn"], rs.attrs["arn"], "an update keeps the ARN");
    assert_eq!(summary(&p), "Plan: 0 to add, 1 to change, 0 to destroy.");
}

#[tokio::test]
async fn drift_made_outside_plinth_is_found_by_the_read_and_undone() {
    let h = Harness::new();
    let rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "size": 3})),
    );
    h.cloud.tamper(&rs.id, "size", json!(9));
    let p = plan(&h, ONE, &state_with(vec![("a", rs)])).await;
    let a = change(&p, "a");
    assert_eq!(a.action, Action::Update);
    assert_eq!(a.before.as_ref().expect("before")["size"], json!(9));
    assert_eq!(after(&p, "a")["size"], json!(3));
}

#[tokio::test]
async fn a_changed_name_is_a_replacement_that_names_the_property() {
    let h = Harness::new();
    let rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "old", "size": 1})),
    );
    let p = plan(&h, ONE, &state_with(vec![("a", rs.clone())])).await;
    let a = change(&p, "a");
    assert_eq!(a.action, Action::Replace);
    assert_eq!(a.replace_reasons, vec!["name".to_string()]);
    assert_eq!(a.id.as_deref(), Some(rs.id.as_str()));
    assert!(is_unknown(&a.attrs["arn"]), "a new resource gets a new ARN");
    assert_eq!(a.attrs["name"], json!("alpha"));
    assert_eq!(summary(&p), "Plan: 1 to add, 0 to change, 1 to destroy.");
}

#[tokio::test]
async fn a_resource_in_state_but_not_in_the_stack_is_deleted() {
    let h = Harness::new();
    let keep = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "size": 3})),
    );
    let old = ready(&h.cloud, "old", canonical("old", json!({"name": "old"})));
    let state = state_with(vec![("a", keep), ("old", old.clone())]);
    let p = plan(&h, ONE, &state).await;
    assert_eq!(
        actions(&p),
        vec![("a".into(), Action::NoOp), ("old".into(), Action::Delete)]
    );
    let d = change(&p, "old");
    assert_eq!(d.id.as_deref(), Some(old.id.as_str()));
    assert_eq!(d.before.as_ref(), Some(&old.props));
    assert_eq!(d.after, None);
    assert_eq!(d.adopted, None);
}

#[tokio::test]
async fn a_deleted_resource_already_gone_is_only_forgotten() {
    let h = Harness::new();
    let old = ready(&h.cloud, "old", canonical("old", json!({"name": "old"})));
    h.cloud.remove(&old.id);
    let p = plan(&h, "resources: {}\n", &state_with(vec![("old", old)])).await;
    let d = change(&p, "old");
    assert_eq!(d.action, Action::Delete);
    assert_eq!(d.adopted, Some(false));
    let shown = render(&p, &h.registry, false);
    assert!(shown.contains("old (test.thing, us-east-1)"), "{shown}");
    assert!(shown.contains("will be forgotten"), "{shown}");
    assert!(!shown.contains("will be destroyed"), "{shown}");
}

#[tokio::test]
async fn a_resource_gone_from_the_cloud_but_still_in_the_stack_is_created_again() {
    let h = Harness::new();
    let rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "size": 3})),
    );
    h.cloud.remove(&rs.id);
    let p = plan(&h, ONE, &state_with(vec![("a", rs)])).await;
    assert_eq!(change(&p, "a").action, Action::Create);
}

#[tokio::test]
async fn prevent_destroy_blocks_a_delete_with_a_clear_error() {
    let h = Harness::new();
    let mut old = ready(&h.cloud, "old", canonical("old", json!({"name": "old"})));
    old.lifecycle = Lifecycle {
        prevent_destroy: true,
        ..Default::default()
    };
    let err = plan_err(&h, ONE, &state_with(vec![("old", old)]), Mode::Apply).await;
    assert!(
        matches!(&err, PlanError::PreventDestroy(items) if items == &vec![("old".to_string(), Action::Delete)])
    );
    let msg = err.to_string();
    assert!(msg.contains("`old` would be destroyed"), "{msg}");
    assert!(msg.contains("Remove `prevent_destroy`"), "{msg}");
}

#[tokio::test]
async fn prevent_destroy_blocks_a_replacement_with_a_clear_error() {
    let h = Harness::new();
    let rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "old", "size": 3})),
    );
    let body = "resources:\n  a:\n    type: test.thing\n    name: alpha\n    size: 3\n    lifecycle: { prevent_destroy: true }\n";
    let err = plan_err(&h, body, &state_with(vec![("a", rs)]), Mode::Apply).await;
    let msg = err.to_string();
    assert!(msg.contains("`a` would be replaced"), "{msg}");
}

#[tokio::test]
async fn prevent_destroy_blocks_destroy_mode_too_but_not_an_in_place_update() {
    let h = Harness::new();
    let rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "size": 1})),
    );
    let state = state_with(vec![("a", rs)]);
    let body = "resources:\n  a:\n    type: test.thing\n    name: alpha\n    size: 3\n    lifecycle: { prevent_destroy: true }\n";
    let err = plan_err(&h, body, &state, Mode::Destroy).await;
    assert!(err.to_string().contains("`a` would be destroyed"), "{err}");
    let p = plan(&h, body, &state).await;
    assert_eq!(change(&p, "a").action, Action::Update);
}

#[tokio::test]
async fn prevent_destroy_does_not_block_forgetting_what_is_already_gone() {
    let h = Harness::new();
    let mut old = ready(&h.cloud, "old", canonical("old", json!({"name": "old"})));
    old.lifecycle.prevent_destroy = true;
    h.cloud.remove(&old.id);
    let p = plan(&h, "resources: {}\n", &state_with(vec![("old", old)])).await;
    assert_eq!(change(&p, "old").adopted, Some(false));
}

#[tokio::test]
async fn ignore_changes_hides_a_drift_of_the_listed_property() {
    let h = Harness::new();
    let rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "size": 7})),
    );
    let body = "resources:\n  a:\n    type: test.thing\n    name: alpha\n    size: 3\n    lifecycle: { ignore_changes: [size] }\n";
    let p = plan(&h, body, &state_with(vec![("a", rs)])).await;
    assert_eq!(change(&p, "a").action, Action::NoOp);
    assert_eq!(after(&p, "a")["size"], json!(7), "keeps what AWS has");
}

#[tokio::test]
async fn ignore_changes_does_not_hide_other_properties() {
    let h = Harness::new();
    let rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "size": 7, "mode": "slow"})),
    );
    let body = "resources:\n  a:\n    type: test.thing\n    name: alpha\n    size: 3\n    mode: fast\n    lifecycle: { ignore_changes: [size] }\n";
    let p = plan(&h, body, &state_with(vec![("a", rs)])).await;
    assert_eq!(change(&p, "a").action, Action::Update);
    assert_eq!(after(&p, "a")["size"], json!(7));
    assert_eq!(after(&p, "a")["mode"], json!("fast"));
}

// ---------------------------------------------------------------------------------------
// Unknown values and references
// ---------------------------------------------------------------------------------------

const CHAIN: &str = "resources:\n  x:\n    type: test.thing\n    name: xname\n  y:\n    type: test.thing\n    name: \"y-${x.name}\"\n    peer: ${x.arn}\n";

#[tokio::test]
async fn unknown_attributes_of_a_created_resource_reach_its_dependents() {
    let h = Harness::new();
    let p = plan(&h, CHAIN, &empty_state()).await;
    assert_eq!(change(&p, "x").action, Action::Create);
    let y = change(&p, "y");
    assert_eq!(y.action, Action::Create);
    assert_eq!(y.deps, vec!["x".to_string()]);
    assert_eq!(after(&p, "y")["peer"], json!(UNKNOWN));
    assert_eq!(
        after(&p, "y")["name"],
        json!("y-xname"),
        "a name known from x's properties is known at plan time"
    );
    let shown = render(&p, &h.registry, false);
    assert!(
        shown.contains(&format!("peer = {UNKNOWN_DISPLAY}")),
        "{shown}"
    );
    assert!(!shown.contains(UNKNOWN), "the sentinel never shows");
    let j = to_display_json(&p, &h.registry);
    let y = &j["resource_changes"][1];
    assert_eq!(y["name"], json!("y"));
    assert_eq!(y["after"]["peer"], Value::Null);
    assert_eq!(y["after_unknown"], json!(["peer"]));
}

#[tokio::test]
async fn an_existing_dependent_of_a_new_resource_is_updated_with_an_unknown_value() {
    let h = Harness::new();
    let y = ready(
        &h.cloud,
        "y",
        canonical("y", json!({"name": "y-xname", "peer": "arn:old"})),
    );
    let p = plan(&h, CHAIN, &state_with(vec![("y", y)])).await;
    assert_eq!(change(&p, "x").action, Action::Create);
    assert_eq!(change(&p, "y").action, Action::Update);
    assert_eq!(after(&p, "y")["peer"], json!(UNKNOWN));
}

#[tokio::test]
async fn a_reference_to_a_replaced_resource_changes_the_dependent() {
    let h = Harness::new();
    let x = ready(&h.cloud, "x", canonical("x", json!({"name": "old-x"})));
    let y = ready(
        &h.cloud,
        "y",
        canonical(
            "y",
            json!({"name": "y-xname", "peer": x.attrs["arn"].clone()}),
        ),
    );
    let p = plan(&h, CHAIN, &state_with(vec![("x", x), ("y", y)])).await;
    assert_eq!(change(&p, "x").action, Action::Replace);
    let y = change(&p, "y");
    assert_eq!(y.action, Action::Update, "peer changes in place");
    assert_eq!(after(&p, "y")["peer"], json!(UNKNOWN));
}

#[tokio::test]
async fn a_dependent_of_an_unchanged_resource_sees_its_real_attributes() {
    let h = Harness::new();
    let x = ready(&h.cloud, "x", canonical("x", json!({"name": "xname"})));
    let arn = x.attrs["arn"].clone();
    let y = ready(
        &h.cloud,
        "y",
        canonical("y", json!({"name": "y-xname", "peer": arn.clone()})),
    );
    let p = plan(&h, CHAIN, &state_with(vec![("x", x), ("y", y)])).await;
    assert_eq!(change(&p, "x").action, Action::NoOp);
    assert_eq!(change(&p, "y").action, Action::NoOp);
    assert_eq!(after(&p, "y")["peer"], arn);
    assert!(!p.has_changes());
}

#[tokio::test]
async fn a_lookup_is_read_at_plan_time_and_its_list_attribute_reaches_dependents() {
    let h = Harness::new();
    let body = "resources:\n  net:\n    type: test.network\n  a:\n    type: test.thing\n    name: a\n    subnets: ${net.subnet_ids}\n";
    let p = plan(&h, body, &empty_state()).await;
    let net = change(&p, "net");
    assert_eq!(net.action, Action::Read);
    assert_eq!(net.id.as_deref(), Some("net-default"));
    assert_eq!(after(&p, "a")["subnets"], json!(["subnet-a", "subnet-b"]));
    assert_eq!(h.cloud.calls_of(Op::Lookup).len(), 1);
}

#[tokio::test]
async fn mutual_rule_references_plan_as_two_creates_one_of_them_deferred() {
    let h = Harness::new();
    let body = "resources:\n  x:\n    type: test.thing\n    name: x\n    rules: [{ peer: \"${y.id}\", port: 80 }]\n  y:\n    type: test.thing\n    name: y\n    rules: [{ peer: \"${x.id}\", port: 81 }]\n";
    let p = plan(&h, body, &empty_state()).await;
    assert_eq!(change(&p, "x").action, Action::Create);
    assert_eq!(change(&p, "y").action, Action::Create);
    let deferred: Vec<&str> = p
        .resources
        .iter()
        .filter(|r| !r.deferred.is_empty())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(deferred.len(), 1, "{:#?}", p.resources);
    for n in ["x", "y"] {
        assert_eq!(after(&p, n)["rules"][0]["peer"], json!(UNKNOWN));
    }
}

#[tokio::test]
async fn stack_tags_and_resource_tags_merge_and_plinth_tags_cannot_be_overridden() {
    let h = Harness::new();
    let body = "tags:\n  course: aws\n  owner: stack\nresources:\n  a:\n    type: test.thing\n    name: a\n    tags:\n      owner: me\n      plinth:stack: forged\n      plinth:created-at: \"1999-01-01T00:00:00Z\"\n";
    let p = plan(&h, body, &empty_state()).await;
    assert_eq!(
        Value::Object(after(&p, "a")["tags"].as_object().cloned().expect("tags")),
        json!({
            "course": "aws",
            "owner": "me",
            "plinth:created-at": CREATED_AT,
            "plinth:resource": "a",
            "plinth:stack": "demo",
            "plinth:workspace": "default",
        })
    );
}

// ---------------------------------------------------------------------------------------
// Targets, destroy, outputs
// ---------------------------------------------------------------------------------------

const THREE: &str = "resources:\n  a:\n    type: test.thing\n    name: a\n  b:\n    type: test.thing\n    name: b\n    peer: ${a.arn}\n  c:\n    type: test.thing\n    name: c\n";

#[tokio::test]
async fn targets_limit_the_plan_to_the_target_and_what_it_needs() {
    let h = Harness::new();
    let old = ready(&h.cloud, "old", canonical("old", json!({"name": "old"})));
    let state = state_with(vec![("old", old)]);
    let p = plan_mode(&h, THREE, &state, Mode::Apply, &["b"]).await;
    let mut names: Vec<(String, Action)> = actions(&p);
    names.sort();
    assert_eq!(
        names,
        vec![("a".into(), Action::Create), ("b".into(), Action::Create)],
        "c is not needed and `old` is not targeted"
    );
    let p = plan_mode(&h, THREE, &state, Mode::Apply, &["old"]).await;
    assert_eq!(actions(&p), vec![("old".into(), Action::Delete)]);
}

#[tokio::test]
async fn an_unknown_target_is_an_error() {
    let h = Harness::new();
    let stack = h.stack(&text(THREE));
    let err = h
        .plan_against(&stack, &empty_state(), Mode::Apply, &["nope"])
        .await
        .expect_err("unknown target");
    assert!(matches!(&err, PlanError::UnknownTarget(t) if t == "nope"));
    assert!(err.to_string().contains("--target nope"), "{err}");
}

#[tokio::test]
async fn destroy_mode_deletes_everything_in_state_and_its_outputs() {
    let h = Harness::new();
    let a = ready(&h.cloud, "a", canonical("a", json!({"name": "a"})));
    let mut b = ready(&h.cloud, "b", canonical("b", json!({"name": "b"})));
    b.deps = vec!["a".into()];
    let mut state = state_with(vec![("a", a), ("b", b)]);
    state.outputs.insert(
        "arn".into(),
        OutputState {
            value: json!("arn:x"),
            sensitive: false,
            description: None,
        },
    );
    let p = plan_mode(&h, THREE, &state, Mode::Destroy, &[]).await;
    let mut acts = actions(&p);
    acts.sort();
    assert_eq!(
        acts,
        vec![("a".into(), Action::Delete), ("b".into(), Action::Delete)],
        "c was never created: nothing to do"
    );
    assert_eq!(p.mode, Mode::Destroy);
    assert_eq!(p.outputs.len(), 1);
    assert_eq!(p.outputs[0].action, Action::Delete);
    assert_eq!(summary(&p), "Plan: 0 to add, 0 to change, 2 to destroy.");
    // b must be deleted before a: the plan carries what each referred to.
    assert_eq!(change(&p, "b").prior_deps, vec!["a".to_string()]);
}

#[tokio::test]
async fn a_targeted_destroy_takes_what_depends_on_the_target_along() {
    let h = Harness::new();
    let a = ready(&h.cloud, "a", canonical("a", json!({"name": "a"})));
    let mut b = ready(&h.cloud, "b", canonical("b", json!({"name": "b"})));
    b.deps = vec!["a".into()];
    let c = ready(&h.cloud, "c", canonical("c", json!({"name": "c"})));
    let state = state_with(vec![("a", a), ("b", b), ("c", c)]);
    let p = plan_mode(&h, THREE, &state, Mode::Destroy, &["a"]).await;
    let mut acts = actions(&p);
    acts.sort();
    assert_eq!(
        acts,
        vec![("a".into(), Action::Delete), ("b".into(), Action::Delete)]
    );
    let p = plan_mode(&h, THREE, &state, Mode::Destroy, &["b"]).await;
    assert_eq!(actions(&p), vec![("b".into(), Action::Delete)]);
}

#[tokio::test]
async fn outputs_are_planned_with_their_values_and_flags() {
    let h = Harness::new();
    let x = ready(&h.cloud, "x", canonical("x", json!({"name": "xname"})));
    let mut state = state_with(vec![("x", x.clone())]);
    for (name, value) in [("same", json!("xname")), ("gone", json!("bye"))] {
        state.outputs.insert(
            name.into(),
            OutputState {
                value,
                sensitive: false,
                description: None,
            },
        );
    }
    let body = "resources:\n  x:\n    type: test.thing\n    name: xname\n  y:\n    type: test.thing\n    name: y\noutputs:\n  same: ${x.name}\n  x_arn: { value: \"${x.arn}\", description: the arn, sensitive: true }\n  y_arn: ${y.arn}\n";
    let p = plan(&h, body, &state).await;
    let out = |n: &str| {
        p.outputs
            .iter()
            .find(|o| o.name == n)
            .unwrap_or_else(|| panic!("no output {n}"))
    };
    assert_eq!(out("same").action, Action::NoOp);
    let x_arn = out("x_arn");
    assert_eq!(x_arn.action, Action::Create);
    assert_eq!(x_arn.after.as_ref(), Some(&x.attrs["arn"]));
    assert!(x_arn.sensitive);
    assert_eq!(x_arn.description.as_deref(), Some("the arn"));
    assert_eq!(out("y_arn").after.as_ref(), Some(&json!(UNKNOWN)));
    assert_eq!(out("gone").action, Action::Delete);
    assert_eq!(out("gone").before.as_ref(), Some(&json!("bye")));
}

// ---------------------------------------------------------------------------------------
// Interrupted creates, refresh, expiry
// ---------------------------------------------------------------------------------------

fn creating(props: Props) -> ResourceState {
    ResourceState {
        type_name: "test.thing".into(),
        region: "us-east-1".into(),
        id: String::new(),
        status: Status::Creating,
        props,
        attrs: Props::new(),
        deps: vec![],
        soft_deps: vec![],
        lifecycle: Default::default(),
        changed_at: None,
        create_token: None,
    }
}

#[tokio::test]
async fn a_creating_entry_is_adopted_when_find_returns_the_resource() {
    let h = Harness::new();
    let wanted = canonical("a", json!({"name": "alpha", "size": 3}));
    let id = h.cloud.insert("test.thing", "a", wanted.clone());
    let p = plan(&h, ONE, &state_with(vec![("a", creating(wanted))])).await;
    let a = change(&p, "a");
    assert_eq!(a.action, Action::NoOp);
    assert_eq!(a.adopted, Some(true));
    assert_eq!(a.id.as_deref(), Some(id.as_str()));
    assert!(p.has_changes(), "adopting is a change to record");
    assert_eq!(h.cloud.calls_of(Op::Find).len(), 1);
    assert!(h.cloud.calls_of(Op::Read).is_empty(), "no id to read by");
    let shown = render(&p, &h.registry, false);
    assert!(shown.contains("will be adopted"), "{shown}");
}

#[tokio::test]
async fn a_creating_entry_that_find_cannot_see_is_created() {
    let h = Harness::new();
    let wanted = canonical("a", json!({"name": "alpha", "size": 3}));
    let p = plan(&h, ONE, &state_with(vec![("a", creating(wanted))])).await;
    let a = change(&p, "a");
    assert_eq!(a.action, Action::Create);
    assert_eq!(a.adopted, Some(false));
}

#[tokio::test]
async fn an_adopted_resource_that_differs_is_updated() {
    let h = Harness::new();
    let found = canonical("a", json!({"name": "alpha", "size": 1}));
    h.cloud.insert("test.thing", "a", found.clone());
    let p = plan(&h, ONE, &state_with(vec![("a", creating(found))])).await;
    let a = change(&p, "a");
    assert_eq!(a.action, Action::Update);
    assert_eq!(a.adopted, Some(true));
}

#[tokio::test]
async fn a_failed_read_is_a_plan_error_naming_the_resource_and_id() {
    let h = Harness::new();
    let rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "size": 3})),
    );
    let id = rs.id.clone();
    h.cloud.fail(
        Op::Read,
        "a",
        ResourceError::other("boom").with_code("Throttled"),
    );
    let err = plan_err(&h, ONE, &state_with(vec![("a", rs)]), Mode::Apply).await;
    let msg = err.to_string();
    assert!(matches!(err, PlanError::Refresh { .. }));
    assert!(msg.contains("`a`") && msg.contains(&id), "{msg}");
    assert!(msg.contains("Throttled: boom"), "{msg}");
}

#[tokio::test]
async fn a_state_entry_of_an_unknown_type_is_a_plan_error() {
    let h = Harness::new();
    let mut rs = ready(&h.cloud, "a", canonical("a", json!({"name": "alpha"})));
    rs.type_name = "test.gone".into();
    let err = plan_err(&h, ONE, &state_with(vec![("a", rs)]), Mode::Apply).await;
    assert!(
        matches!(&err, PlanError::UnknownType { name, type_name } if name == "a" && type_name == "test.gone"),
        "{err}"
    );
}

#[tokio::test]
async fn the_refresh_reads_resources_in_parallel() {
    let h = Harness::new();
    h.cloud.set_default_latency(Duration::from_millis(100));
    let mut entries = Vec::new();
    let mut body = String::from("resources:\n");
    let names: Vec<String> = (0..8).map(|i| format!("r{i}")).collect();
    for n in &names {
        body.push_str(&format!("  {n}:\n    type: test.thing\n    name: {n}\n"));
        entries.push(ready(&h.cloud, n, canonical(n, json!({"name": n}))));
    }
    let state = state_with(names.iter().map(String::as_str).zip(entries).collect());
    let p = plan(&h, &body, &state).await;
    assert!(!p.has_changes());
    assert_eq!(h.cloud.calls_of(Op::Read).len(), 8);
    assert!(h.cloud.max_in_flight() > 1, "reads overlapped");
}

/// `n` unchanged resources `r0`… in state and in the stack, `region` per resource.
fn unchanged(h: &Harness, regions: &[&str]) -> (String, State) {
    let mut body = String::from("resources:\n");
    let mut entries = Vec::new();
    for (i, region) in regions.iter().enumerate() {
        let n = format!("r{i}");
        body.push_str(&format!(
            "  {n}:\n    type: test.thing\n    region: {region}\n    name: {n}\n"
        ));
        let mut rs = ready(&h.cloud, &n, canonical(&n, json!({ "name": n })));
        rs.region = region.to_string();
        entries.push((n, rs));
    }
    let mut state = empty_state();
    state.resources.extend(entries);
    (body, state)
}

#[tokio::test]
async fn a_type_that_reads_in_batches_is_read_in_as_few_calls_as_its_batch_size_allows() {
    let h = Harness::new();
    h.cloud.set_batch_size(3);
    let (body, state) = unchanged(&h, &["us-east-1"; 7]);
    let p = plan(&h, &body, &state).await;
    assert!(!p.has_changes(), "{:#?}", actions(&p));
    // 3 + 3 in batches; the one left over is read on its own.
    assert_eq!(h.cloud.calls_of(Op::ReadBatch).len(), 2);
    assert_eq!(h.cloud.calls_of(Op::Read).len(), 1);
}

#[tokio::test]
async fn batches_never_mix_regions() {
    let h = Harness::new();
    h.cloud.set_batch_size(10);
    let (body, state) = unchanged(&h, &["us-east-1", "eu-west-1", "us-east-1", "eu-west-1"]);
    let p = plan(&h, &body, &state).await;
    assert!(!p.has_changes());
    assert_eq!(h.cloud.calls_of(Op::ReadBatch).len(), 2);
}

#[tokio::test]
async fn a_batch_read_tells_each_resource_apart() {
    let h = Harness::new();
    h.cloud.set_batch_size(10);
    let (body, state) = unchanged(&h, &["us-east-1"; 3]);
    h.cloud.remove(&state.resources["r1"].id);
    h.cloud.tamper(&state.resources["r2"].id, "size", json!(5));
    let p = plan(&h, &body, &state).await;
    assert_eq!(
        actions(&p),
        vec![
            ("r0".into(), Action::NoOp),
            ("r1".into(), Action::Create),
            ("r2".into(), Action::Update),
        ]
    );
    assert_eq!(h.cloud.calls_of(Op::ReadBatch).len(), 1);
}

#[tokio::test]
async fn an_interrupted_create_is_looked_up_alone_even_for_a_batching_type() {
    let h = Harness::new();
    h.cloud.set_batch_size(10);
    let (body, mut state) = unchanged(&h, &["us-east-1"; 3]);
    let mut interrupted = state.resources["r2"].clone();
    interrupted.status = Status::Creating;
    interrupted.id = String::new();
    state.resources.insert("r2".into(), interrupted);
    let p = plan(&h, &body, &state).await;
    assert_eq!(change(&p, "r2").adopted, Some(true));
    assert_eq!(h.cloud.calls_of(Op::Find).len(), 1);
    assert_eq!(h.cloud.calls_of(Op::ReadBatch).len(), 1);
}

#[tokio::test]
async fn an_interrupted_create_is_looked_up_with_its_create_token() {
    let h = Harness::new();
    let (body, mut state) = unchanged(&h, &["us-east-1"; 2]);
    let mut interrupted = state.resources["r1"].clone();
    interrupted.status = Status::Creating;
    interrupted.id = String::new();
    interrupted.create_token = Some("0123456789abcdef0123456789abcdef".into());
    state.resources.insert("r1".into(), interrupted);
    plan(&h, &body, &state).await;
    // Types that tag a create with its token find exactly what that create made.
    let find = h.cloud.call_of(Op::Find, "r1");
    assert_eq!(
        find.token.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    let reads = h.cloud.calls_of(Op::Read);
    assert!(reads.iter().all(|c| c.token.is_none()), "{reads:?}");
}

#[tokio::test]
async fn a_failed_batch_read_is_a_plan_error_saying_what_was_read() {
    let h = Harness::new();
    h.cloud.set_batch_size(10);
    let (body, state) = unchanged(&h, &["us-east-1"; 2]);
    // The batch is named after its first resource.
    h.cloud
        .fail(Op::ReadBatch, "r0", ResourceError::other("throttled"));
    let err = plan_err(&h, &body, &state, Mode::Apply).await;
    let msg = err.to_string();
    assert!(matches!(err, PlanError::Refresh { .. }), "{msg}");
    assert!(msg.contains("2 test.thing resources in us-east-1"), "{msg}");
    assert!(msg.contains("throttled"), "{msg}");
}

fn at_epoch(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[tokio::test]
async fn expiry_is_stamped_once_from_now_and_tagged() {
    let h = Harness::new();
    let body = "expires_after: 8h\nresources:\n  a:\n    type: test.thing\n    name: a\n";
    let stack = h.stack(&text(body));
    let now = at_epoch(1_700_000_000);
    let p = h
        .plan_at(&stack, &empty_state(), Mode::Apply, &[], now)
        .await
        .expect("plan");
    let expected =
        humantime::format_rfc3339_seconds(now + Duration::from_secs(8 * 3600)).to_string();
    assert_eq!(p.expires_at.as_deref(), Some(expected.as_str()));
    assert_eq!(p.expires_after.as_deref(), Some("8h"));
    assert_eq!(
        after(&p, "a")["tags"]["plinth:expires-at"],
        json!(expected),
        "every taggable resource carries the expiry"
    );
}

#[tokio::test]
async fn expiry_is_kept_while_expires_after_is_unchanged_and_restamped_when_it_changes() {
    let h = Harness::new();
    let mut state = empty_state();
    state.expires_at = Some("2030-01-01T00:00:00Z".into());
    state.expires_after = Some("8h".into());
    let now = at_epoch(1_700_000_000);
    let stack = h.stack(&text(
        "expires_after: 8h\nresources:\n  a:\n    type: test.thing\n    name: a\n",
    ));
    let p = h
        .plan_at(&stack, &state, Mode::Apply, &[], now)
        .await
        .expect("plan");
    assert_eq!(p.expires_at.as_deref(), Some("2030-01-01T00:00:00Z"));
    assert_eq!(
        after(&p, "a")["tags"]["plinth:expires-at"],
        json!("2030-01-01T00:00:00Z")
    );
    // A later plan at another time still keeps it.
    let p = h
        .plan_at(&stack, &state, Mode::Apply, &[], at_epoch(1_800_000_000))
        .await
        .expect("plan");
    assert_eq!(p.expires_at.as_deref(), Some("2030-01-01T00:00:00Z"));

    let stack = h.stack(&text(
        "expires_after: 2h\nresources:\n  a:\n    type: test.thing\n    name: a\n",
    ));
    let p = h
        .plan_at(&stack, &state, Mode::Apply, &[], now)
        .await
        .expect("plan");
    let expected =
        humantime::format_rfc3339_seconds(now + Duration::from_secs(2 * 3600)).to_string();
    assert_eq!(p.expires_at.as_deref(), Some(expected.as_str()));
    assert_eq!(p.expires_after.as_deref(), Some("2h"));
}

#[tokio::test]
async fn without_expires_after_no_expiry_tag_is_added() {
    let h = Harness::new();
    let p = plan(&h, ONE, &empty_state()).await;
    assert_eq!(p.expires_at, None);
    assert!(after(&p, "a")["tags"].get("plinth:expires-at").is_none());
}

#[tokio::test]
async fn a_new_environment_is_stamped_with_its_creation_time_in_utc_seconds() {
    let h = Harness::new();
    let stack = h.stack(&text(ONE));
    let now = at_epoch(1_700_000_000) + Duration::from_millis(750);
    let fresh = crate::state::State::new("demo", "default");
    let p = h
        .plan_at(&stack, &fresh, Mode::Apply, &[], now)
        .await
        .expect("plan");
    assert_eq!(p.created_at.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(
        after(&p, "a")["tags"]["plinth:created-at"],
        json!("2023-11-14T22:13:20Z")
    );
}

#[tokio::test]
async fn the_creation_time_is_kept_by_later_plans_and_never_stamped_by_a_destroy() {
    let h = Harness::new();
    let stack = h.stack(&text(ONE));
    let p = h
        .plan_at(
            &stack,
            &empty_state(),
            Mode::Apply,
            &[],
            at_epoch(1_800_000_000),
        )
        .await
        .expect("plan");
    assert_eq!(p.created_at.as_deref(), Some(CREATED_AT));
    assert_eq!(
        after(&p, "a")["tags"]["plinth:created-at"],
        json!(CREATED_AT)
    );

    let fresh = crate::state::State::new("demo", "default");
    let p = h
        .plan_at(&stack, &fresh, Mode::Destroy, &[], at_epoch(1_800_000_000))
        .await
        .expect("plan");
    assert_eq!(p.created_at, None);
}

// ---------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------

/// A plan with one of each: create `fresh`, update `grow`, replace `rename`, delete `old`,
/// and an unchanged `same`.
async fn mixed_plan(h: &Harness) -> Plan {
    let grow = ready(
        &h.cloud,
        "grow",
        canonical(
            "grow",
            json!({"name": "grow", "size": 1, "subnets": ["s-1", "s-2"]}),
        ),
    );
    let rename = ready(
        &h.cloud,
        "rename",
        canonical("rename", json!({"name": "before", "size": 2})),
    );
    let old = ready(&h.cloud, "old", canonical("old", json!({"name": "old"})));
    let same = ready(&h.cloud, "same", canonical("same", json!({"name": "same"})));
    let state = state_with(vec![
        ("grow", grow),
        ("rename", rename),
        ("old", old),
        ("same", same),
    ]);
    let body = "resources:\n  fresh:\n    type: test.thing\n    name: fresh\n    size: 1\n    mode: fast\n  grow:\n    type: test.thing\n    name: grow\n    size: 10\n    subnets: [s-1, s-3]\n  rename:\n    type: test.thing\n    name: after\n    size: 2\n    peer: ${fresh.arn}\n  same:\n    type: test.thing\n    name: same\noutputs:\n  fresh_arn: ${fresh.arn}\n";
    plan(h, body, &state).await
}

#[tokio::test]
async fn the_terminal_rendering_of_a_mixed_plan() {
    let h = Harness::new();
    let p = mixed_plan(&h).await;
    let shown = render(&p, &h.registry, false);
    assert!(!shown.contains('\u{1b}'), "no colour when asked for none");
    insta::assert_snapshot!(shown);
}

#[tokio::test]
async fn colour_is_only_added_when_asked_for() {
    let h = Harness::new();
    let p = mixed_plan(&h).await;
    assert!(render(&p, &h.registry, true).contains('\u{1b}'));
}

#[tokio::test]
async fn the_json_rendering_has_a_format_version_and_a_summary() {
    let h = Harness::new();
    let p = mixed_plan(&h).await;
    let j = to_display_json(&p, &h.registry);
    assert_eq!(j["format_version"], json!("1.0"));
    assert_eq!(j["stack"], json!("demo"));
    assert_eq!(j["mode"], json!("apply"));
    assert_eq!(
        j["summary"],
        json!({"add": 2, "change": 1, "destroy": 2, "has_changes": true})
    );
    let actions: Vec<(String, String)> = j["resource_changes"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().expect("name").to_string(),
                r["action"].as_str().expect("action").to_string(),
            )
        })
        .collect();
    let mut sorted = actions.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            ("fresh".into(), "create".into()),
            ("grow".into(), "update".into()),
            ("old".into(), "delete".into()),
            ("rename".into(), "replace".into()),
            ("same".into(), "no_op".into()),
        ]
    );
    let rename = j["resource_changes"]
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["name"] == json!("rename"))
        .expect("rename");
    assert_eq!(rename["replace_reasons"], json!(["name"]));
    assert_eq!(rename["after_unknown"], json!(["peer"]));
    assert!(j.get("sensitive_values").is_none());
    assert!(!j.to_string().contains(UNKNOWN));
}

const SECRET_VAR: &str = "hunter2-token-value";
const SECRET_PROP: &str = "literal-password-9";
const OLD_SECRET: &str = "previous-password-7";

async fn secret_plan(h: &Harness) -> Plan {
    let b = ready(
        &h.cloud,
        "b",
        canonical("b", json!({"name": "b", "secret": OLD_SECRET})),
    );
    let body = format!(
        "vars:\n  token:\n    default: {SECRET_VAR}\n    sensitive: true\nresources:\n  a:\n    type: test.thing\n    name: a\n    secret: ${{var.token}}\n    peer: \"p-${{var.token}}\"\n  b:\n    type: test.thing\n    name: b\n    secret: {SECRET_PROP}\noutputs:\n  tok:\n    value: ${{var.token}}\n    sensitive: true\n  leak: \"x-${{var.token}}\"\n  sec: ${{a.name}}\n"
    );
    plan(h, &body, &state_with(vec![("b", b)])).await
}

#[tokio::test]
async fn sensitive_properties_and_variables_never_appear_in_the_terminal_plan() {
    let h = Harness::new();
    let p = secret_plan(&h).await;
    assert_eq!(change(&p, "b").action, Action::Update, "the secret changed");
    let shown = render(&p, &h.registry, false);
    for secret in [SECRET_VAR, SECRET_PROP, OLD_SECRET] {
        assert!(!shown.contains(secret), "`{secret}` leaked:\n{shown}");
    }
    assert!(shown.contains(SENSITIVE_DISPLAY), "{shown}");
    assert!(
        shown.contains(&format!(
            "secret = {SENSITIVE_DISPLAY} → {SENSITIVE_DISPLAY}"
        )),
        "{shown}"
    );
    let coloured = render(&p, &h.registry, true);
    for secret in [SECRET_VAR, SECRET_PROP, OLD_SECRET] {
        assert!(!coloured.contains(secret), "`{secret}` leaked:\n{coloured}");
    }
}

#[tokio::test]
async fn sensitive_properties_and_variables_never_appear_in_the_json_plan() {
    let h = Harness::new();
    let p = secret_plan(&h).await;
    let j = to_display_json(&p, &h.registry).to_string();
    for secret in [SECRET_VAR, SECRET_PROP, OLD_SECRET] {
        assert!(!j.contains(secret), "`{secret}` leaked:\n{j}");
    }
    assert!(j.contains(SENSITIVE_DISPLAY));
    // The saved plan keeps the values (it must apply them) and lists what to mask.
    assert_eq!(p.sensitive_values, vec![SECRET_VAR.to_string()]);
}

#[tokio::test]
async fn a_destroy_plan_renders_every_resource_as_destroyed() {
    let h = Harness::new();
    let a = ready(&h.cloud, "a", canonical("a", json!({"name": "a"})));
    let p = plan_mode(&h, THREE, &state_with(vec![("a", a)]), Mode::Destroy, &[]).await;
    let shown = render(&p, &h.registry, false);
    assert!(shown.contains("  - a (test.thing, us-east-1) ["), "{shown}");
    assert!(shown.contains("will be destroyed"), "{shown}");
    assert!(
        shown.ends_with("Plan: 0 to add, 0 to change, 1 to destroy.\n"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_create_before_destroy_replacement_shows_its_own_symbol() {
    let h = Harness::new();
    let rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "old", "size": 3})),
    );
    let body = "resources:\n  a:\n    type: test.thing\n    name: alpha\n    size: 3\n    lifecycle: { create_before_destroy: true }\n";
    let p = plan(&h, body, &state_with(vec![("a", rs)])).await;
    let shown = render(&p, &h.registry, false);
    assert!(shown.contains("+/- a (test.thing"), "{shown}");
    assert!(
        shown.contains("must be replaced (name forces replacement)"),
        "{shown}"
    );
    assert!(shown.contains("# forces replacement"), "{shown}");
}

#[test]
fn time_spans_read_as_people_write_them() {
    use crate::plan::render::short_span;
    use std::time::Duration;
    assert_eq!(
        short_span(Duration::from_secs(3 * 86400 - 60)),
        "2d 23h 59m"
    );
    assert_eq!(
        short_span(Duration::from_secs(7 * 3600 + 5 * 60 + 59)),
        "7h 5m"
    );
    assert_eq!(short_span(Duration::from_secs(86400)), "1d");
    assert_eq!(short_span(Duration::from_secs(30)), "0m");
}

#[tokio::test(start_paused = true)]
async fn a_resource_plinth_changed_moments_ago_that_a_read_does_not_find_is_read_again_not_created_twice(
) {
    let h = Harness::new();
    let mut rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "size": 3})),
    );
    rs.changed_at = Some(
        humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(5)).to_string(),
    );
    h.cloud.unseen_for(&rs.id, 3);
    let state = state_with(vec![("a", rs)]);
    let p = plan(&h, ONE, &state).await;
    assert!(!p.has_changes(), "{:#?}", actions(&p));
    assert_eq!(
        h.cloud.calls_of(Op::Read).len(),
        4,
        "three misses, then found"
    );
}

#[tokio::test(start_paused = true)]
async fn a_resource_missing_after_the_settling_window_is_gone() {
    let h = Harness::new();
    let mut rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "size": 3})),
    );
    // Changed long ago: "not found" is believed at once.
    rs.changed_at = Some(
        humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(3600))
            .to_string(),
    );
    h.cloud.unseen_for(&rs.id, 1);
    let state = state_with(vec![("a", rs.clone())]);
    let p = plan(&h, ONE, &state).await;
    assert_eq!(p.change("a").map(|c| c.action), Some(Action::Create));
    assert_eq!(h.cloud.calls_of(Op::Read).len(), 1);
    // Changed moments ago but really gone: read again until the window closes, then gone.
    let h = Harness::new();
    let mut rs = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "size": 3})),
    );
    rs.changed_at = Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
    h.cloud.remove(&rs.id);
    let started = tokio::time::Instant::now();
    let p = plan(&h, ONE, &state_with(vec![("a", rs)])).await;
    assert_eq!(p.change("a").map(|c| c.action), Some(Action::Create));
    assert!(started.elapsed() <= crate::plan::planner::SETTLE + Duration::from_secs(1));
    assert!(h.cloud.calls_of(Op::Read).len() > 2);
}

// ---------------------------------------------------------------------------------------
// Replacing what something that stays still uses
// ---------------------------------------------------------------------------------------

/// `a` as applied, and `b` holding it (as a distribution holds its certificate).
fn a_held_by_b(h: &Harness) -> State {
    let a = ready(
        &h.cloud,
        "a",
        canonical("a", json!({"name": "alpha", "zone": "z1"})),
    );
    let arn = a.attrs["arn"].clone();
    let b = ready(
        &h.cloud,
        "b",
        canonical("b", json!({"name": "beta", "holder": arn})),
    );
    state_with(vec![("a", a), ("b", b)])
}

fn held(a: &str, b: &str) -> String {
    format!("resources:\n  a:\n    type: test.thing\n{a}  b:\n    type: test.thing\n{b}")
}

#[tokio::test]
async fn a_replaced_resource_that_a_staying_one_holds_is_created_first_and_the_plan_says_why() {
    let h = Harness::new();
    let state = a_held_by_b(&h);
    let body = held(
        "    name: alpha2\n    zone: z1\n",
        "    name: beta\n    holder: ${a.arn}\n",
    );
    let p = plan(&h, &body, &state).await;
    let a = change(&p, "a");
    assert_eq!(a.action, Action::Replace);
    assert_eq!(a.create_first_because, Some(vec!["b".to_string()]));
    assert!(a.creates_first() && !a.lifecycle.create_before_destroy);
    assert_eq!(change(&p, "b").action, Action::Update);
    let shown = render(&p, &h.registry, false);
    assert!(shown.contains("+/- a (test.thing"), "{shown}");
    assert!(
        shown.contains(
            "# the new one is created first and the old one destroyed last: `b` still uses it"
        ),
        "{shown}"
    );
    let json = to_display_json(&p, &h.registry);
    let shown_a = json["resource_changes"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["name"] == "a"))
        .expect("a in the JSON");
    assert_eq!(shown_a["create_first_because"], json!(["b"]));
}

#[tokio::test]
async fn a_reference_that_does_not_hold_or_a_holder_replaced_too_keeps_delete_first() {
    let h = Harness::new();
    let state = a_held_by_b(&h);
    // `peer` refers without holding.
    let body = held(
        "    name: alpha2\n    zone: z1\n",
        "    name: beta\n    peer: ${a.arn}\n",
    );
    let p = plan(&h, &body, &state).await;
    assert_eq!(change(&p, "a").create_first_because, None);
    assert!(render(&p, &h.registry, false).contains("-/+ a (test.thing"));
    // The holder is replaced delete-first as well: it lets go of `a` by going first.
    let body = held(
        "    name: alpha2\n    zone: z1\n",
        "    name: beta2\n    holder: ${a.arn}\n",
    );
    let p = plan(&h, &body, &state).await;
    assert_eq!(change(&p, "b").action, Action::Replace);
    assert_eq!(change(&p, "a").create_first_because, None);
}

#[tokio::test]
async fn a_holder_that_is_created_first_makes_what_it_holds_created_first_too() {
    let h = Harness::new();
    let mut state = a_held_by_b(&h);
    let b_arn = state.resources["b"].attrs["arn"].clone();
    let c = ready(
        &h.cloud,
        "c",
        canonical("c", json!({"name": "gamma", "holder": b_arn})),
    );
    state.resources.insert("c".into(), c);
    let body = format!(
        "{}  c:\n    type: test.thing\n    name: gamma\n    holder: ${{b.arn}}\n",
        held(
            "    name: alpha2\n    zone: z1\n",
            "    name: beta2\n    holder: ${a.arn}\n"
        )
    );
    let p = plan(&h, &body, &state).await;
    assert_eq!(
        change(&p, "b").create_first_because,
        Some(vec!["c".to_string()])
    );
    assert_eq!(
        change(&p, "a").create_first_because,
        Some(vec!["b".to_string()])
    );
}

#[tokio::test]
async fn a_create_first_replacement_that_keeps_a_unique_name_is_refused_with_the_fix() {
    let h = Harness::new();
    let state = a_held_by_b(&h);
    let body = held(
        "    name: alpha\n    zone: z2\n",
        "    name: beta\n    holder: ${a.arn}\n",
    );
    let err = plan_err(&h, &body, &state, Mode::Apply).await;
    let message = err.to_string();
    for words in [
        "`a`: must be replaced (zone forces replacement)",
        "`b` still uses it",
        "AWS allows one test.thing with name `alpha` at a time",
        "give it a new `name` (for example `alpha-2`)",
    ] {
        assert!(message.contains(words), "{message}");
    }
    // Asked for in the stack, the same collision is refused the same way.
    let body = "resources:\n  a:\n    type: test.thing\n    name: alpha\n    zone: z2\n    lifecycle: { create_before_destroy: true }\n";
    let message = plan_err(&h, body, &state, Mode::Apply).await.to_string();
    assert!(
        message.contains("or remove create_before_destroy"),
        "{message}"
    );
}

#[tokio::test]
async fn what_a_create_first_replacement_refers_to_is_created_first_too_and_applies_without_a_cycle(
) {
    let h = Harness::new();
    // c holds b; b refers to a (without holding it); a and b are both replaced.
    let a = ready(&h.cloud, "a", canonical("a", json!({"name": "alpha"})));
    let a_arn = a.attrs["arn"].clone();
    let b = ready(
        &h.cloud,
        "b",
        canonical("b", json!({"name": "beta", "peer": a_arn})),
    );
    let b_arn = b.attrs["arn"].clone();
    let c = ready(
        &h.cloud,
        "c",
        canonical("c", json!({"name": "gamma", "holder": b_arn})),
    );
    let state = state_with(vec![("a", a), ("b", b), ("c", c)]);
    let body = "resources:\n  a:\n    type: test.thing\n    name: alpha2\n  b:\n    type: test.thing\n    name: beta2\n    peer: ${a.arn}\n  c:\n    type: test.thing\n    name: gamma\n    holder: ${b.arn}\n";
    let p = plan(&h, body, &state).await;
    assert_eq!(
        change(&p, "b").create_first_because,
        Some(vec!["c".to_string()])
    );
    assert_eq!(
        change(&p, "a").create_first_because,
        Some(vec!["b".to_string()])
    );
    crate::engine::steps::build(&p).expect("the steps form no cycle");
}

#[tokio::test]
async fn a_long_text_is_shown_as_its_hash_and_size_and_json_keeps_it() {
    let h = Harness::new();
    let body = "resources:\n  web:\n    type: test.thing\n    name: web\n    script: \"#!/bin/sh\\necho hi\\n\"\n";
    let p = plan(&h, body, &empty_state()).await;
    let shown = render(&p, &h.registry, false);
    let line = shown
        .lines()
        .find(|l| l.contains("script"))
        .unwrap_or_else(|| panic!("no script line:\n{shown}"));
    assert!(
        line.contains("= \"sha256:") && line.ends_with("(18 bytes)\""),
        "{line}"
    );
    assert!(!shown.contains("echo hi"), "{shown}");
    let json = to_display_json(&p, &h.registry).to_string();
    assert!(json.contains("echo hi"), "plan --json is unchanged: {json}");
}

// ---------------------------------------------------------------------------------------
// Layout: long values, long lists, long plans
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_list_of_more_than_ten_being_created_shows_its_count_and_its_first_three() {
    let h = Harness::new();
    let subnets: Vec<String> = (0..12).map(|i| format!("s-{i}")).collect();
    let body = format!(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    subnets: [{}]\n",
        subnets.join(", ")
    );
    let p = plan(&h, &body, &empty_state()).await;
    let shown = render(&p, &h.registry, false);
    let lines: Vec<&str> = shown.lines().map(str::trim).collect();
    for first in ["\"s-0\",", "\"s-1\",", "\"s-2\","] {
        assert!(lines.contains(&first), "{shown}");
    }
    assert!(!shown.contains("\"s-3\""), "{shown}");
    assert!(
        lines.contains(&"# … and 9 more: 12 elements in all"),
        "{shown}"
    );
    // The saved plan keeps every element.
    assert_eq!(after(&p, "a")["subnets"].as_array().map(Vec::len), Some(12));
}

#[tokio::test]
async fn a_value_wider_than_the_line_is_laid_out_one_attribute_per_line() {
    let h = Harness::new();
    let p = plan(&h, ONE, &empty_state()).await;
    let at = |width| {
        crate::plan::render::render_at(
            &p,
            &h.registry,
            crate::plan::render::Draw {
                color: false,
                width,
            },
        )
    };
    let narrow = at(60);
    let props = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("      "))
            .map(str::to_string)
            .collect()
    };
    assert!(
        props(&narrow).iter().all(|l| l.chars().count() <= 60),
        "{narrow}"
    );
    assert!(narrow.lines().any(|l| l.trim() == "+ tags = {"), "{narrow}");
    assert!(
        narrow
            .lines()
            .any(|l| l.trim().starts_with("plinth:resource") && l.trim().ends_with("= \"a\"")),
        "{narrow}"
    );
    // Wide enough, the same value stays on one line.
    let wide = at(200);
    assert!(
        wide.lines().any(|l| l.trim().starts_with("+ tags = { ")),
        "{wide}"
    );
}

#[tokio::test]
async fn a_long_plan_is_grouped_by_resource_type_in_the_order_apply_reaches_them() {
    let h = Harness::new();
    let mut body = String::from("resources:\n");
    for i in 0..6 {
        body.push_str(&format!(
            "  net{i}:\n    type: test.network\n    name: net{i}\n"
        ));
        body.push_str(&format!(
            "  thing{i}:\n    type: test.thing\n    name: thing{i}\n"
        ));
    }
    let p = plan(&h, &body, &empty_state()).await;
    let shown = render(&p, &h.registry, false);
    let headings: Vec<&str> = shown
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("# test."))
        .collect();
    let first_type = &p.resources[0].type_name;
    let other = if first_type == "test.thing" {
        "test.network"
    } else {
        "test.thing"
    };
    assert_eq!(
        headings,
        vec![format!("# {first_type} (6)"), format!("# {other} (6)")]
    );
    // Each group holds exactly its type's resources.
    let (first, second) = shown
        .split_once(&format!("# {other} (6)"))
        .expect("second group");
    assert_eq!(
        first.matches(&format!("({first_type}, ")).count(),
        6,
        "{shown}"
    );
    assert_eq!(second.matches(&format!("({other}, ")).count(), 6, "{shown}");
    // A short plan is not grouped.
    let short = render(&plan(&h, ONE, &empty_state()).await, &h.registry, false);
    assert!(!short.contains("# test."), "{short}");
}
