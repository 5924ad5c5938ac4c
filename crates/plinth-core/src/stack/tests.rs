//! The stack language end to end: YAML text in, a checked `Stack` or positioned errors out.
//!
//! Expected positions are computed from the text (the line and column of the offending
//! token), never copied from what the loader reports.

use std::time::Duration;

use serde_json::{json, Value};

use crate::diag::{Diagnostic, Diagnostics};
use crate::stack::expr::{Expr, SpannedExpr, Target};
use crate::stack::vars::VarInputs;
use crate::stack::Stack;
use crate::testing::{
    at, load, load_err, load_with, only_error, options, position, position_nth, registry, FakeCloud,
};
use crate::value::UNKNOWN;

/// A stack header every test can prepend.
const HEAD: &str = "stack: demo\nregion: us-east-1\n";

fn with_head(body: &str) -> String {
    format!("{HEAD}{body}")
}

fn load_ok(text: &str) -> Stack {
    match load(text) {
        Ok(s) => s,
        Err(d) => panic!("the stack should load:\n{d}"),
    }
}

fn load_vars(text: &str, vars: VarInputs) -> Result<Stack, Diagnostics> {
    let mut opts = options();
    opts.vars = vars;
    load_with(text, &registry(&FakeCloud::new()), &opts).map(|(s, _)| s)
}

/// A resource's property expression.
fn prop<'a>(stack: &'a Stack, resource: &str, key: &str) -> &'a SpannedExpr {
    stack
        .resource(resource)
        .unwrap_or_else(|| panic!("no resource `{resource}`"))
        .props
        .get(key)
        .unwrap_or_else(|| panic!("`{resource}` has no `{key}`"))
}

/// A property that must be a plain value after loading.
fn lit(stack: &Stack, resource: &str, key: &str) -> Value {
    match &prop(stack, resource, key).expr {
        Expr::Lit(v) => v.clone(),
        other => panic!("`{resource}.{key}` is not a literal: {other:?}"),
    }
}

fn var(stack: &Stack, name: &str) -> Value {
    stack
        .vars
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no variable `{name}`"))
        .value
        .clone()
}

/// The first error whose message contains `needle`.
fn error_with(diags: &Diagnostics, needle: &str) -> Diagnostic {
    diags
        .errors()
        .find(|d| d.message.contains(needle))
        .cloned()
        .unwrap_or_else(|| panic!("no error mentions `{needle}`:\n{diags}"))
}

fn assert_mentions(d: &Diagnostic, words: &[&str]) {
    for w in words {
        assert!(d.message.contains(w), "`{w}` missing from: {}", d.message);
    }
}

fn help(d: &Diagnostic) -> &str {
    d.help.as_deref().unwrap_or("")
}

// ---------------------------------------------------------------------------------------
// What a valid stack becomes
// ---------------------------------------------------------------------------------------

#[test]
fn a_minimal_stack_loads_with_its_header_and_resources() {
    let stack = load_ok(&with_head(
        "description: a lab\ntags:\n  course: aws\n  week: 3\nresources:\n  a:\n    type: test.thing\n    name: alpha\n    size: 3\n",
    ));
    assert_eq!(stack.name, "demo");
    assert_eq!(stack.region, "us-east-1");
    assert_eq!(stack.workspace, "default");
    assert_eq!(stack.description.as_deref(), Some("a lab"));
    assert_eq!(
        stack.tags.iter().collect::<Vec<_>>(),
        vec![
            (&"course".to_string(), &"aws".to_string()),
            (&"week".to_string(), &"3".to_string())
        ],
        "tags are strings, numbers included"
    );
    let a = stack.resource("a").expect("a");
    assert_eq!(a.type_name, "test.thing");
    assert_eq!(a.region, "us-east-1");
    assert_eq!(lit(&stack, "a", "name"), json!("alpha"));
    assert_eq!(lit(&stack, "a", "size"), json!(3));
    assert!(stack.expires_after.is_none());
}

/// Every string a stack file can hold, each made of variables and built-ins.
const EVERYWHERE: &str = r#"vars:
  course: aws
  term: fall
  where: eu-west-1
  other: us-west-2
  hours: 8
stack: "${var.course}-lab"
region: ${var.where}
description: "${var.course} lab in ${stack.region}"
expires_after: ${var.hours}h
tags:
  Name: "${var.course}-${var.term}"
  Stack: ${stack.name}
  Where: ${stack.region}
  Who: ${workspace}
resources:
  a:
    type: test.thing
    region: ${var.other}
    name: "${stack.name}-a"
    tags:
      term: ${var.term}
    rules:
      - peer: "${var.course}-peer"
    lifecycle:
      timeouts:
        create: ${var.hours}m
outputs:
  where:
    value: ${a.arn}
    description: "${var.course} in ${stack.region}"
"#;

#[test]
fn every_string_of_the_stack_file_resolves_variables_and_builtins() {
    let stack = load_ok(EVERYWHERE);
    assert_eq!(stack.name, "aws-lab");
    assert_eq!(stack.region, "eu-west-1");
    assert_eq!(stack.description.as_deref(), Some("aws lab in eu-west-1"));
    assert_eq!(
        stack.expires_after.as_ref().map(|e| e.duration),
        Some(Duration::from_secs(8 * 3600))
    );
    let tags: Vec<(&str, &str)> = stack
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        tags,
        [
            ("Name", "aws-fall"),
            ("Stack", "aws-lab"),
            ("Where", "eu-west-1"),
            ("Who", "default")
        ]
    );
    let a = stack.resource("a").expect("a");
    assert_eq!(a.region, "us-west-2");
    assert_eq!(
        a.lifecycle.timeouts.create,
        Some(Duration::from_secs(8 * 60))
    );
    assert_eq!(lit(&stack, "a", "name"), json!("aws-lab-a"));
    let value = |key: &str| prop(&stack, "a", key).eval(&|_| Value::Null);
    assert_eq!(value("tags"), json!({"term": "fall"}));
    assert_eq!(value("rules"), json!([{"peer": "aws-peer"}]));
    let out = &stack.outputs[0];
    assert_eq!(out.description.as_deref(), Some("aws in eu-west-1"));
    let unresolved = |text: &str| text.contains("${");
    assert!(!unresolved(&format!(
        "{:?}{:?}",
        stack.tags, stack.description
    )));
}

#[test]
fn a_dangling_reference_in_any_string_of_the_stack_file_is_the_same_error() {
    // Each place of EVERYWHERE in turn refers to a variable the stack does not declare.
    let places = [
        ("\"${var.course}-lab\"", "\"${var.cours}-lab\""),
        ("region: ${var.where}", "region: ${var.wher}"),
        ("lab in ${stack.region}\"", "lab in ${var.regio}\""),
        ("${var.hours}h", "${var.hour}h"),
        (
            "\"${var.course}-${var.term}\"",
            "\"${var.course}-${var.trem}\"",
        ),
        ("region: ${var.other}", "region: ${var.othr}"),
        ("create: ${var.hours}m", "create: ${var.huors}m"),
        ("\"${var.course} in", "\"${var.coures} in"),
    ];
    for (from, to) in places {
        assert!(EVERYWHERE.contains(from), "{from}");
        let text = EVERYWHERE.replacen(from, to, 1);
        let diags = load_err(&text);
        let errors: Vec<&Diagnostic> = diags.errors().collect();
        let bad = to.split("${var.").last().and_then(|r| r.split('}').next());
        let bad = bad.expect("a variable");
        assert!(
            errors.iter().any(
                |d| d.message.starts_with(&format!("unknown variable `{bad}`"))
                    && at(d) == position(&text, &format!("${{var.{bad}}}"))
            ),
            "{to}: {diags}"
        );
        assert!(
            errors
                .iter()
                .all(|d| !d.message.contains("${") || d.message.contains("unknown variable")),
            "one cause, one error: {diags}"
        );
    }
}

#[test]
fn stack_tags_cannot_wait_for_a_resource_and_say_so() {
    let text = with_head(
        "tags:\n  Peer: ${a.arn}\n  Other: ${b.arn}\n  Account: ${account_id}\nresources:\n  a:\n    type: test.thing\n    name: a\n",
    );
    let diags = load_err(&text);
    let peer = error_with(&diags, "${a.arn}");
    assert_eq!(at(&peer), position(&text, "${a.arn}"));
    assert_mentions(&peer, &["tag `Peer`", "before any resource exists"]);
    let other = error_with(&diags, "undeclared resource `b`");
    assert_eq!(at(&other), position(&text, "${b.arn}"));
    let account = error_with(&diags, "${account_id}");
    assert_eq!(at(&account), position(&text, "${account_id}"));
    assert_eq!(diags.errors().count(), 3, "{diags}");
}

#[test]
fn a_variable_without_a_value_is_one_error_however_often_it_is_used() {
    let text = with_head(
        "vars:\n  default_sg_id:\n    type: string\ntags:\n  Sg: ${var.default_sg_id}\nresources:\n  a:\n    type: test.thing\n    name: ${var.default_sg_id}\n    peer: x-${var.default_sg_id}\n    tags:\n      a: ${var.default_sg_id}\n      b: ${var.default_sg_id}\noutputs:\n  sg: ${var.default_sg_id}\n",
    );
    let d = only_error(&text);
    assert_mentions(&d, &["`default_sg_id` has no default"]);
    assert_eq!(at(&d), position(&text, "default_sg_id:"));
}

#[test]
fn a_reference_to_a_resource_of_an_unknown_type_is_not_reported_again() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thingy\n    name: a\n  b:\n    type: test.thing\n    name: b\n    peer: ${a.arn}\n    depends_on: [a]\n",
    );
    let d = only_error(&text);
    assert_mentions(&d, &["unknown resource type `test.thingy`"]);
}

#[test]
fn resources_may_override_the_region_and_the_fallback_region_fills_a_missing_one() {
    let text = "stack: demo\nresources:\n  a:\n    type: test.thing\n    name: a\n  b:\n    type: test.thing\n    region: eu-west-1\n    name: b\n";
    let mut opts = options();
    opts.fallback_region = Some("us-west-2".into());
    let (stack, _) = load_with(text, &registry(&FakeCloud::new()), &opts).expect("loads");
    assert_eq!(stack.region, "us-west-2");
    assert_eq!(stack.resource("a").expect("a").region, "us-west-2");
    assert_eq!(stack.resource("b").expect("b").region, "eu-west-1");
}

#[test]
fn variable_defaults_are_used_when_nothing_else_is_given() {
    let stack = load_ok(&with_head(
        "vars:\n  student:\n    default: ana\n    description: who\n  size: 4\nresources:\n  a:\n    type: test.thing\n    name: ${var.student}\n    size: ${var.size}\n",
    ));
    assert_eq!(var(&stack, "student"), json!("ana"));
    assert_eq!(var(&stack, "size"), json!(4), "a plain scalar is a default");
    assert_eq!(lit(&stack, "a", "name"), json!("ana"));
    assert_eq!(lit(&stack, "a", "size"), json!(4));
}

#[test]
fn cli_vars_override_defaults_and_take_the_declared_type() {
    let text = with_head(
        "vars:\n  student: ana\n  size: 4\n  fast:\n    type: bool\n    default: false\nresources:\n  a:\n    type: test.thing\n    name: ${var.student}\n    size: ${var.size}\n    peer: \"fast=${var.fast}\"\n",
    );
    let stack = load_vars(
        &text,
        VarInputs {
            files: vec![],
            pairs: vec!["student=ben".into(), "size=7".into(), "fast=true".into()],
        },
    )
    .expect("loads");
    assert_eq!(lit(&stack, "a", "name"), json!("ben"));
    assert_eq!(lit(&stack, "a", "size"), json!(7), "`7` became a number");
    assert_eq!(lit(&stack, "a", "peer"), json!("fast=true"));
}

#[test]
fn later_variable_sources_win_default_then_files_in_order_then_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("first.yaml");
    let second = dir.path().join("second.yaml");
    std::fs::write(&first, "b: from-first\nc: from-first\nd: from-first\n").expect("write");
    std::fs::write(&second, "c: from-second\nd: from-second\n").expect("write");
    let text = with_head(
        "vars:\n  a: default\n  b: default\n  c: default\n  d: default\nresources:\n  x:\n    type: test.thing\n    name: \"${var.a}/${var.b}/${var.c}/${var.d}\"\n",
    );
    let stack = load_vars(
        &text,
        VarInputs {
            files: vec![first, second],
            pairs: vec!["d=from-cli".into()],
        },
    )
    .expect("loads");
    assert_eq!(var(&stack, "a"), json!("default"));
    assert_eq!(var(&stack, "b"), json!("from-first"));
    assert_eq!(var(&stack, "c"), json!("from-second"));
    assert_eq!(var(&stack, "d"), json!("from-cli"));
    assert_eq!(
        lit(&stack, "x", "name"),
        json!("default/from-first/from-second/from-cli")
    );
}

#[test]
fn a_variable_without_a_default_is_required_and_a_cli_value_satisfies_it() {
    let text = with_head(
        "vars:\n  student:\n    description: who\nresources:\n  a:\n    type: test.thing\n    name: ${var.student}\n",
    );
    let diags = load_err(&text);
    let d = error_with(&diags, "has no default");
    assert_eq!(at(&d), position(&text, "student:"));
    assert!(help(&d).contains("--var student=VALUE"), "{d:?}");

    let stack = load_vars(
        &text,
        VarInputs {
            files: vec![],
            pairs: vec!["student=cy".into()],
        },
    )
    .expect("loads once given");
    assert_eq!(lit(&stack, "a", "name"), json!("cy"));
}

#[test]
fn a_whole_reference_to_a_list_variable_keeps_the_list() {
    let stack = load_ok(&with_head(
        "vars:\n  ids: [subnet-1, subnet-2]\nresources:\n  a:\n    type: test.thing\n    name: a\n    subnets: ${var.ids}\n",
    ));
    assert_eq!(lit(&stack, "a", "subnets"), json!(["subnet-1", "subnet-2"]));
}

#[test]
fn whole_references_to_map_and_object_list_variables_are_checked_element_by_element() {
    let stack = load_ok(&with_head(
        "vars:\n  tags:\n    default: { team: infra, week: \"3\" }\n  rules:\n    default:\n      - { peer: sg-1, port: 443 }\nresources:\n  a:\n    type: test.thing\n    name: a\n    tags: ${var.tags}\n    rules: ${var.rules}\n",
    ));
    assert_eq!(
        lit(&stack, "a", "tags"),
        json!({"team": "infra", "week": "3"})
    );
    assert_eq!(
        lit(&stack, "a", "rules"),
        json!([{"peer": "sg-1", "port": 443}])
    );
}

#[test]
fn a_list_variable_with_elements_of_the_wrong_type_is_an_error_at_the_reference() {
    let text = with_head(
        "vars:\n  nums: [1, 2]\n  rules:\n    default:\n      - { port: 99999 }\nresources:\n  a:\n    type: test.thing\n    name: a\n    subnets: ${var.nums}\n    rules: ${var.rules}\n",
    );
    let diags = load_err(&text);
    let element = error_with(&diags, "expected a string, found an integer");
    assert_eq!(at(&element), position(&text, "${var.nums}"));
    let range = error_with(&diags, "99999 is out of range");
    assert_eq!(at(&range), position(&text, "${var.rules}"));
    let missing = error_with(&diags, "missing required key `peer`");
    assert_eq!(at(&missing), position(&text, "${var.rules}"));
}

#[test]
fn a_whole_reference_to_a_list_attribute_stays_a_typed_reference() {
    let stack = load_ok(&with_head(
        "resources:\n  net:\n    type: test.network\n  a:\n    type: test.thing\n    name: a\n    subnets: ${net.subnet_ids}\n    peer: \"first-${net.subnet_ids[0]}\"\n",
    ));
    let Expr::Ref(r) = &prop(&stack, "a", "subnets").expr else {
        panic!("not a whole reference");
    };
    assert_eq!(
        r.target,
        Target::Resource {
            resource: "net".into(),
            attr: "subnet_ids".into(),
            path: vec![]
        }
    );
    // At plan time it evaluates to the attribute's value, list and all.
    let v = prop(&stack, "a", "subnets").eval(&|_| json!(["s-1", "s-2"]));
    assert_eq!(v, json!(["s-1", "s-2"]));
    assert!(matches!(prop(&stack, "a", "peer").expr, Expr::Concat(_)));
}

#[test]
fn references_inside_longer_strings_interpolate_and_builtins_are_bound() {
    let text = with_head(
        "vars:\n  student: ana\n  n: 3\nresources:\n  a:\n    type: test.thing\n    name: \"${stack.name}-${var.student}-${workspace}-${stack.region}-${var.n}\"\n",
    );
    let mut opts = options();
    opts.workspace = "staging".into();
    let (stack, _) = load_with(&text, &registry(&FakeCloud::new()), &opts).expect("loads");
    assert_eq!(
        lit(&stack, "a", "name"),
        json!("demo-ana-staging-us-east-1-3")
    );
    assert_eq!(stack.workspace, "staging");
}

#[test]
fn double_dollar_escapes_stay_literal_and_are_not_references() {
    let stack = load_ok(&with_head(
        "vars:\n  x: value\nresources:\n  a:\n    type: test.thing\n    name: \"$${var.x} and $${nothing.here} but ${var.x}\"\n",
    ));
    assert_eq!(
        lit(&stack, "a", "name"),
        json!("${var.x} and ${nothing.here} but value"),
        "no dangling-reference error, and the escapes were not bound"
    );
}

#[test]
fn a_lone_dollar_is_just_text() {
    let stack = load_ok(&with_head(
        "resources:\n  a:\n    type: test.thing\n    name: \"costs $5 or $\"\n",
    ));
    assert_eq!(lit(&stack, "a", "name"), json!("costs $5 or $"));
}

#[test]
fn account_id_is_left_for_bind_account_id() {
    let mut stack = load_ok(&with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    peer: \"arn:aws:iam::${account_id}:root\"\noutputs:\n  account: ${account_id}\n",
    ));
    assert!(stack.needs_account_id());
    assert!(matches!(prop(&stack, "a", "peer").expr, Expr::Concat(_)));
    stack.bind_account_id("123456789012");
    assert!(!stack.needs_account_id());
    assert_eq!(
        lit(&stack, "a", "peer"),
        json!("arn:aws:iam::123456789012:root")
    );
    assert_eq!(
        stack.outputs[0].value.expr,
        Expr::Lit(json!("123456789012"))
    );
}

#[test]
fn a_stack_without_account_id_does_not_ask_for_it() {
    let stack = load_ok(&with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n",
    ));
    assert!(!stack.needs_account_id());
}

#[test]
fn depends_on_accepts_bare_names_and_references() {
    let stack = load_ok(&with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n  b:\n    type: test.thing\n    name: b\n  c:\n    type: test.thing\n    name: c\n    depends_on: [a, \"${b.id}\"]\n",
    ));
    let deps: Vec<&str> = stack
        .resource("c")
        .expect("c")
        .depends_on
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(deps, vec!["a", "b"]);
}

#[test]
fn lifecycle_keys_are_read() {
    let stack = load_ok(&with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    lifecycle:\n      prevent_destroy: true\n      create_before_destroy: true\n      ignore_changes: [size, tags]\n      timeouts:\n        create: 30m\n        delete: 1h\n",
    ));
    let l = &stack.resource("a").expect("a").lifecycle;
    assert!(l.prevent_destroy);
    assert!(l.create_before_destroy);
    assert_eq!(l.ignore_changes, vec!["size", "tags"]);
    assert_eq!(l.timeouts.create, Some(Duration::from_secs(30 * 60)));
    assert_eq!(l.timeouts.update, None);
    assert_eq!(l.timeouts.delete, Some(Duration::from_secs(3600)));
    assert!(
        stack
            .resource("a")
            .expect("a")
            .props
            .get("lifecycle")
            .is_none(),
        "reserved keys are not properties"
    );
}

#[test]
fn outputs_have_a_short_and_a_long_form() {
    let stack = load_ok(&with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\noutputs:\n  arn: ${a.arn}\n  secret:\n    value: \"${a.id}\"\n    description: the id\n    sensitive: true\n  plain: 42\n",
    ));
    let by_name = |n: &str| {
        stack
            .outputs
            .iter()
            .find(|o| o.name == n)
            .unwrap_or_else(|| panic!("no output {n}"))
    };
    let arn = by_name("arn");
    assert!(!arn.sensitive);
    assert_eq!(arn.description, None);
    assert!(matches!(&arn.value.expr, Expr::Ref(r) if r.target.to_string() == "a.arn"));
    let secret = by_name("secret");
    assert!(secret.sensitive);
    assert_eq!(secret.description.as_deref(), Some("the id"));
    assert!(matches!(&secret.value.expr, Expr::Ref(r) if r.target.to_string() == "a.id"));
    assert_eq!(by_name("plain").value.expr, Expr::Lit(json!(42)));
}

#[test]
fn expires_after_is_parsed_into_a_duration() {
    let stack = load_ok(&with_head(
        "expires_after: 8h\nresources:\n  a:\n    type: test.thing\n    name: a\n",
    ));
    let e = stack.expires_after.expect("expiry");
    assert_eq!(e.text, "8h");
    assert_eq!(e.duration, Duration::from_secs(8 * 3600));

    let stack = load_ok(&with_head(
        "expires_after: 3d\nresources:\n  a:\n    type: test.thing\n    name: a\n",
    ));
    assert_eq!(
        stack.expires_after.expect("expiry").duration,
        Duration::from_secs(3 * 86400)
    );
}

#[test]
fn sensitive_variable_values_are_listed_for_masking() {
    let stack = load_ok(&with_head(
        "vars:\n  token:\n    default: hunter2-token\n    sensitive: true\n  pin:\n    default: 4242\n    sensitive: true\n  plain: visible\nresources:\n  a:\n    type: test.thing\n    name: a\n    secret: ${var.token}\n",
    ));
    let mut values = stack.sensitive_values();
    values.sort();
    assert_eq!(
        values,
        vec!["4242".to_string(), "hunter2-token".to_string()]
    );
}

#[test]
fn a_taggable_resource_accepts_its_own_tags_and_references_in_them() {
    let stack = load_ok(&with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n  b:\n    type: test.thing\n    name: b\n    tags:\n      owner: ${a.name}\n      team: infra\n",
    ));
    let tags = prop(&stack, "b", "tags");
    assert_eq!(
        tags.eval(&|_| json!(UNKNOWN)),
        json!({"owner": UNKNOWN, "team": "infra"})
    );
}

// ---------------------------------------------------------------------------------------
// A corpus of broken inputs: each names the right place and says what was expected.
// ---------------------------------------------------------------------------------------

#[test]
fn an_unknown_top_level_key_is_located_and_suggests_the_right_one() {
    let text = with_head("descripton: x\nresources:\n  a:\n    type: test.thing\n    name: a\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "descripton"));
    assert_mentions(
        &d,
        &["unknown key `descripton`", "the stack file", "resources"],
    );
    assert_eq!(help(&d), "did you mean `description`?");
}

#[test]
fn an_unknown_property_is_located_and_suggests_the_right_one() {
    let text = with_head("resources:\n  a:\n    type: test.thing\n    name: a\n    sise: 3\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "sise"));
    assert_mentions(&d, &["unknown key `sise`", "test.thing `a`", "size"]);
    assert_eq!(help(&d), "did you mean `size`?");
}

#[test]
fn numbers_a_float_would_round_keep_every_digit_and_others_stay_numbers() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    size: 3\n    secret: x\n    rules:\n      - peer: p\n        port: 80\n  b:\n    type: test.thing\n    name: b\n    tags:\n      price: 12345678901234567.89\n      big: 12345678901234567890123\n      plain: 1.50\n      sci: 1e3\n      u64: 10000000000000000000\n      list: [0.1, 12345678901234567.890]\n",
    );
    let root = crate::stack::yaml::parse(&crate::diag::SourceFile::new("s.yaml", text.clone()))
        .expect("parses");
    let tags = root
        .get("resources")
        .and_then(|r| r.get("b"))
        .and_then(|b| b.get("tags"))
        .expect("tags")
        .to_json();
    assert_eq!(tags["price"], json!({"$number": "12345678901234567.89"}));
    assert_eq!(tags["big"], json!({"$number": "12345678901234567890123"}));
    assert_eq!(tags["plain"], json!(1.5));
    assert_eq!(tags["sci"], json!(1000.0));
    assert_eq!(tags["u64"], json!(10000000000000000000u64));
    assert_eq!(
        tags["list"],
        json!([0.1, {"$number": "12345678901234567.89"}])
    );
    // Where a property takes a number, one that does not fit says so at its place.
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    size: 12345678901234567890123\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "12345678901234567890123"));
    assert_mentions(&d, &["has more digits than this property holds"]);
}

#[test]
fn the_aws_or_terraform_name_of_a_property_is_answered_with_the_plinth_name() {
    for key in ["size_in_gb", "SizeInGB", "sizeInGb"] {
        let text = with_head(&format!(
            "resources:\n  a:\n    type: test.thing\n    name: a\n    {key}: 3\n"
        ));
        let d = only_error(&text);
        assert_eq!(at(&d), position(&text, key));
        assert_eq!(
            help(&d),
            format!("did you mean `size`? (`{key}` is what the AWS API or Terraform calls it)")
        );
    }
    // The same name in another case or spelling is the name.
    let text = with_head("resources:\n  a:\n    type: test.thing\n    name: a\n    Size: 3\n");
    assert_eq!(help(&only_error(&text)), "did you mean `size`?");
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    lifecycle:\n      ignore_changes: [size_in_gb]\n",
    );
    assert!(help(&only_error(&text)).starts_with("did you mean `size`?"));
}

#[test]
fn an_unknown_key_inside_a_nested_object_is_located() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    rules:\n      - peer: x\n        pport: 80\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "pport"));
    assert_mentions(&d, &["unknown key `pport`", "peer, port"]);
    assert_eq!(help(&d), "did you mean `port`?");
}

#[test]
fn a_value_of_the_wrong_type_says_what_was_expected() {
    let text = with_head("resources:\n  a:\n    type: test.thing\n    name: a\n    size: big\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "big"));
    assert_mentions(
        &d,
        &["expected an integer from 0 to 1000", "found a string"],
    );
}

#[test]
fn a_map_where_a_string_belongs_is_an_error() {
    let text = with_head("resources:\n  a:\n    type: test.thing\n    name:\n      first: x\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "first"));
    assert_mentions(&d, &["expected a string", "found a map"]);
}

#[test]
fn a_bad_enum_value_lists_the_choices_and_suggests_one() {
    let text = with_head("resources:\n  a:\n    type: test.thing\n    name: a\n    mode: fastt\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "fastt"));
    assert_mentions(
        &d,
        &[
            "`fastt` is not valid here",
            "one of fast, slow, fixed",
            "did you mean `fast`?",
        ],
    );
    // Far from every choice: no suggestion, still the list.
    let text = with_head("resources:\n  a:\n    type: test.thing\n    name: a\n    mode: quick\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "quick"));
    assert_mentions(&d, &["one of fast, slow, fixed"]);
    assert!(!d.message.contains("did you mean"), "{d}");
}

#[test]
fn an_integer_out_of_range_names_the_range() {
    let text = with_head("resources:\n  a:\n    type: test.thing\n    name: a\n    size: 5000\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "5000"));
    assert_mentions(&d, &["5000 is out of range", "from 0 to 1000"]);
}

#[test]
fn an_integer_out_of_range_inside_a_flow_list_is_located() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    rules: [{ peer: x, port: 70000 }]\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "70000"));
    assert_mentions(&d, &["70000 is out of range", "from 1 to 65535"]);
}

#[test]
fn a_missing_required_property_names_it_and_points_at_the_resource() {
    let text = with_head("resources:\n  a:\n    type: test.thing\n    size: 3\n");
    let d = only_error(&text);
    assert_mentions(
        &d,
        &[
            "missing required key `name`",
            "test.thing",
            "expected a string",
        ],
    );
    assert_eq!(at(&d), position(&text, "a:"), "at the resource's name");
}

#[test]
fn a_resource_with_only_a_type_is_missing_its_required_property_at_its_name() {
    let text = with_head("resources:\n  a:\n    type: test.thing\n");
    let d = only_error(&text);
    assert_mentions(&d, &["missing required key `name`"]);
    assert_eq!(at(&d), position(&text, "a:"));
}

#[test]
fn a_missing_required_key_in_a_nested_object_is_reported() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    rules:\n      - port: 80\n",
    );
    let d = only_error(&text);
    assert_mentions(&d, &["missing required key `peer`", "expected a string"]);
    assert_eq!(at(&d), position(&text, "port: 80"), "the list item's map");
}

#[test]
fn a_resource_without_a_type_lists_the_known_types() {
    let text = with_head("resources:\n  a:\n    name: a\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "a:"));
    assert_mentions(
        &d,
        &["resource `a` has no `type`", "test.network", "test.thing"],
    );
}

#[test]
fn an_unknown_resource_type_suggests_a_known_one() {
    let text = with_head("resources:\n  a:\n    type: test.thign\n    name: a\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "test.thign"));
    assert_mentions(&d, &["unknown resource type `test.thign`"]);
    assert_eq!(help(&d), "did you mean `test.thing`?");
}

#[test]
fn a_dangling_reference_names_the_declared_resources() {
    let text =
        with_head("resources:\n  a:\n    type: test.thing\n    name: a\n    peer: ${b.arn}\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${b.arn}"));
    assert_mentions(&d, &["undeclared resource `b`", "the stack declares a"]);
}

#[test]
fn a_dangling_reference_inside_a_quoted_string_points_at_the_reference() {
    let text = with_head(
        "resources:\n  users:\n    type: test.thing\n    name: a\n    peer: \"x-${user.arn}-y\"\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${user.arn}"));
    assert_eq!(help(&d), "did you mean `users`?");
}

#[test]
fn a_dangling_reference_at_the_start_of_a_plain_string_points_at_the_reference() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    peer: ${b.arn}-suffix\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${b.arn}"));
}

#[test]
fn a_dangling_reference_in_a_plain_string_after_text_points_at_the_reference() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    peer: pre-${b.arn}-post\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${b.arn}"));
}

#[test]
fn a_reference_after_non_ascii_text_points_at_the_reference() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    peer: \"Lab — ${ghost.arn}\"\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${ghost.arn}"));
}

#[test]
fn a_dangling_depends_on_is_located() {
    let text =
        with_head("resources:\n  a:\n    type: test.thing\n    name: a\n    depends_on: [ghost]\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "ghost"));
    assert_mentions(&d, &["undeclared resource `ghost`"]);
}

#[test]
fn a_dangling_reference_in_an_output_is_an_error() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\noutputs:\n  x: ${nope.arn}\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${nope.arn}"));
    assert_mentions(&d, &["undeclared resource `nope`"]);
}

#[test]
fn an_unknown_attribute_lists_the_real_ones_and_suggests_one() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n  b:\n    type: test.thing\n    name: b\n    peer: ${a.arm}\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${a.arm}"));
    assert_mentions(&d, &["test.thing has no attribute `arm`", "id, arn, name"]);
    assert_eq!(help(&d), "did you mean `a.arn`?");
}

#[test]
fn a_list_attribute_where_an_integer_belongs_is_a_type_error() {
    let text = with_head(
        "resources:\n  net:\n    type: test.network\n  a:\n    type: test.thing\n    name: a\n    size: ${net.subnet_ids}\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${net.subnet_ids}"));
    assert_mentions(&d, &["is a list of strings", "expected an integer"]);
}

#[test]
fn a_resource_referring_to_itself_is_an_error() {
    let text =
        with_head("resources:\n  a:\n    type: test.thing\n    name: a\n    peer: ${a.arn}\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${a.arn}"));
    assert_mentions(&d, &["cannot refer to itself"]);
}

#[test]
fn an_unknown_variable_lists_the_declared_ones_and_suggests_one() {
    let text = with_head(
        "vars:\n  student: ana\nresources:\n  a:\n    type: test.thing\n    name: \"${var.studnet}-users\"\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${var.studnet}"));
    assert_mentions(&d, &["unknown variable `studnet`", "declared: student"]);
    assert_eq!(help(&d), "did you mean `var.student`?");
}

#[test]
fn an_undeclared_cli_var_is_refused_with_the_declared_names() {
    let text = with_head(
        "vars:\n  student: ana\nresources:\n  a:\n    type: test.thing\n    name: ${var.student}\n",
    );
    let diags = load_vars(
        &text,
        VarInputs {
            files: vec![],
            pairs: vec!["studnt=ben".into()],
        },
    )
    .expect_err("undeclared --var");
    let d = error_with(&diags, "studnt");
    assert_mentions(
        &d,
        &["unknown variable `studnt`", "the stack declares student"],
    );
    assert_eq!(help(&d), "did you mean `student`?");
    // A command-line value has no place in the file: the message stands alone.
    assert!(d.file.is_none());
    assert_eq!(d.to_string(), d.message);
}

#[test]
fn a_cli_var_of_the_wrong_type_or_shape_is_refused() {
    let text = with_head(
        "vars:\n  n: 3\nresources:\n  a:\n    type: test.thing\n    name: a\n    size: ${var.n}\n",
    );
    let diags = load_vars(
        &text,
        VarInputs {
            files: vec![],
            pairs: vec!["n=three".into(), "novalue".into()],
        },
    )
    .expect_err("bad --var");
    assert_mentions(&error_with(&diags, "n=three"), &["expected a number"]);
    assert_mentions(&error_with(&diags, "novalue"), &["expected NAME=VALUE"]);
}

#[test]
fn a_var_file_error_points_into_the_var_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vars.yaml");
    let var_text = "student: ben\nn: lots\nghost: 1\n";
    std::fs::write(&path, var_text).expect("write");
    let text = with_head(
        "vars:\n  student: ana\n  n: 3\nresources:\n  a:\n    type: test.thing\n    name: ${var.student}\n    size: ${var.n}\n",
    );
    let diags = load_vars(
        &text,
        VarInputs {
            files: vec![path.clone()],
            pairs: vec![],
        },
    )
    .expect_err("bad var file");
    let wrong = error_with(&diags, "`n` must be a number");
    assert_eq!(wrong.file.as_ref().expect("file").path, path);
    assert_eq!(at(&wrong), position(var_text, "lots"));
    let ghost = error_with(&diags, "unknown variable `ghost`");
    assert_eq!(at(&ghost), position(var_text, "ghost"));
}

#[test]
fn a_missing_var_file_is_an_error_not_a_panic() {
    let text = with_head(
        "vars:\n  student: ana\nresources:\n  a:\n    type: test.thing\n    name: ${var.student}\n",
    );
    let diags = load_vars(
        &text,
        VarInputs {
            files: vec!["/nonexistent/plinth/vars.yaml".into()],
            pairs: vec![],
        },
    )
    .expect_err("missing file");
    assert_mentions(
        &error_with(&diags, "cannot read variable file"),
        &["vars.yaml"],
    );
}

#[test]
fn a_duplicate_resource_name_is_an_error_at_the_second_one() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: one\n  a:\n    type: test.thing\n    name: two\n",
    );
    let diags = load_err(&text);
    let d = diags.errors().next().cloned().expect("an error");
    // The YAML parser refuses the repeated key before the loader sees it.
    assert!(d.message.contains("duplicate"), "{d}");
    assert!(
        d.message.ends_with(": a") || d.message.contains("`a`"),
        "{d}"
    );
    assert_eq!(at(&d), position_nth(&text, "a:", 1));
}

/// Checks a "dependency cycle: x → y → … → x" message against the stack text: it closes,
/// names exactly `members`, and each resource really refers to the next one (by a
/// reference or `depends_on`) in `refers`.
fn assert_cycle(d: &Diagnostic, members: &[&str], refers: &[(&str, &str)]) {
    let chain = d
        .message
        .strip_prefix("dependency cycle: ")
        .unwrap_or_else(|| panic!("not a cycle message: {}", d.message));
    let names: Vec<&str> = chain.split(" → ").collect();
    assert_eq!(names.first(), names.last(), "the chain closes: {chain}");
    let mut distinct: Vec<&str> = names[1..].to_vec();
    distinct.sort();
    let mut expected = members.to_vec();
    expected.sort();
    assert_eq!(
        distinct, expected,
        "the chain names each member once: {chain}"
    );
    for pair in names.windows(2) {
        assert!(
            refers.contains(&(pair[0], pair[1])),
            "`{}` does not refer to `{}`, yet the message says so: {chain}",
            pair[0],
            pair[1]
        );
    }
    assert!(help(d).contains("refers to the next"), "{d:?}");
}

#[test]
fn a_dependency_cycle_names_its_resources_in_order() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    peer: ${b.arn}\n  b:\n    type: test.thing\n    name: b\n    peer: ${a.arn}\n",
    );
    let d = only_error(&text);
    assert_cycle(&d, &["a", "b"], &[("a", "b"), ("b", "a")]);
    let refs = [position(&text, "${b.arn}"), position(&text, "${a.arn}")];
    assert!(
        refs.contains(&at(&d)),
        "points at one of the references: {d}"
    );
}

#[test]
fn a_three_way_cycle_through_depends_on_names_all_three() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    depends_on: [c]\n  b:\n    type: test.thing\n    name: b\n    peer: ${a.arn}\n  c:\n    type: test.thing\n    name: c\n    peer: ${b.arn}\n",
    );
    let d = only_error(&text);
    assert_cycle(&d, &["a", "b", "c"], &[("a", "c"), ("b", "a"), ("c", "b")]);
    let places = [
        position(&text, "c]"),
        position(&text, "${a.arn}"),
        position(&text, "${b.arn}"),
    ];
    assert!(places.contains(&at(&d)), "points at one of the edges: {d}");
}

#[test]
fn a_cycle_beside_an_acyclic_part_names_only_the_cycle() {
    let text = with_head(
        "resources:\n  base:\n    type: test.thing\n    name: base\n  x:\n    type: test.thing\n    name: x\n    peer: ${y.arn}\n    depends_on: [base]\n  y:\n    type: test.thing\n    name: y\n    peer: ${x.arn}\n",
    );
    let d = only_error(&text);
    assert_cycle(&d, &["x", "y"], &[("x", "y"), ("y", "x")]);
}

#[test]
fn a_resource_depending_on_itself_is_an_error() {
    let text =
        with_head("resources:\n  a:\n    type: test.thing\n    name: a\n    depends_on: [a]\n");
    let diags = load_err(&text);
    let d = diags.errors().next().expect("an error");
    assert!(d.message.contains("cannot depend on itself"), "{diags}");
    assert_eq!(at(d), position(&text, "a]"));
}

#[test]
fn a_cycle_through_deferrable_rules_only_is_not_an_error() {
    let stack = load_ok(&with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    rules: [{ peer: \"${b.id}\" }]\n  b:\n    type: test.thing\n    name: b\n    rules: [{ peer: \"${a.id}\" }]\n",
    ));
    assert_eq!(stack.resources.len(), 2);
}

#[test]
fn a_bad_resource_name_says_what_names_look_like() {
    let text = with_head("resources:\n  Bad-Name:\n    type: test.thing\n    name: a\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "Bad-Name"));
    assert_mentions(
        &d,
        &["`Bad-Name` is not a valid resource name", "lowercase"],
    );
}

#[test]
fn a_bad_stack_name_says_what_names_look_like() {
    let text = "stack: Week3_Lab\nregion: us-east-1\nresources:\n  a:\n    type: test.thing\n    name: a\n";
    let d = only_error(text);
    assert_eq!(at(&d), position(text, "Week3_Lab"));
    assert_mentions(&d, &["`Week3_Lab` is not a valid stack name", "at most 40"]);
}

#[test]
fn a_stack_name_longer_than_forty_characters_is_refused() {
    let long = "a".repeat(41);
    let text = format!("stack: {long}\nregion: us-east-1\nresources: {{}}\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, &long));
    let ok = format!(
        "stack: {}\nregion: us-east-1\nresources: {{}}\n",
        "a".repeat(40)
    );
    assert!(load(&ok).is_ok());
}

#[test]
fn a_missing_stack_name_and_region_are_reported() {
    let text = "resources:\n  a:\n    type: test.thing\n    name: a\n";
    let diags = load_err(text);
    let stack = error_with(&diags, "missing required key `stack`");
    assert!(stack.span.is_known());
    let region = error_with(&diags, "no region");
    assert!(region.span.is_known());
}

#[test]
fn an_unterminated_reference_points_at_its_opening() {
    let text = with_head(
        "vars:\n  a: x\nresources:\n  a:\n    type: test.thing\n    name: \"x-${var.a\"\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${var.a"));
    assert_mentions(&d, &["unterminated reference", "`}`"]);
}

#[test]
fn an_unterminated_reference_in_a_plain_string_points_at_its_opening() {
    let text =
        with_head("vars:\n  a: x\nresources:\n  a:\n    type: test.thing\n    name: x-${var.a\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${var.a"));
}

#[test]
fn an_unterminated_reference_after_non_ascii_text_points_at_its_opening() {
    let text = with_head(
        "vars:\n  a: x\nresources:\n  a:\n    type: test.thing\n    name: \"Lab — ${var.a\"\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${var.a"));
}

#[test]
fn a_malformed_reference_says_what_references_look_like() {
    let text =
        with_head("resources:\n  a:\n    type: test.thing\n    name: a\n    peer: \"to-${a}\"\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${a}"));
    assert_mentions(&d, &["expected `${resource.attribute}`"]);
}

#[test]
fn a_list_interpolated_into_a_string_is_an_error_at_the_reference() {
    let text = with_head(
        "vars:\n  ids: [x, y]\nresources:\n  a:\n    type: test.thing\n    name: \"ids-${var.ids}\"\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "${var.ids}"));
    assert_mentions(
        &d,
        &["`${var.ids}` is a list", "cannot be put inside a string"],
    );
}

#[test]
fn a_bad_expires_after_says_what_a_duration_looks_like() {
    let text =
        with_head("expires_after: soon\nresources:\n  a:\n    type: test.thing\n    name: a\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "soon"));
    assert_mentions(&d, &["`soon` is not a duration", "8h"]);

    let text =
        with_head("expires_after: 0s\nresources:\n  a:\n    type: test.thing\n    name: a\n");
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "0s"));
    assert_mentions(&d, &["at least 1s"]);
}

#[test]
fn an_unknown_lifecycle_key_and_an_unknown_ignored_property_are_located() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    lifecycle:\n      prevent_destory: true\n      ignore_changes: [sizes]\n",
    );
    let diags = load_err(&text);
    let key = error_with(&diags, "prevent_destory");
    assert_eq!(at(&key), position(&text, "prevent_destory"));
    assert_eq!(help(&key), "did you mean `prevent_destroy`?");
    let ignored = error_with(&diags, "sizes");
    assert_eq!(at(&ignored), position(&text, "sizes"));
    assert_eq!(help(&ignored), "did you mean `size`?");
    assert_eq!(diags.errors().count(), 2, "{diags}");
}

#[test]
fn a_bad_timeout_and_a_non_boolean_flag_are_located() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    lifecycle:\n      prevent_destroy: yes please\n      timeouts:\n        create: forever\n",
    );
    let diags = load_err(&text);
    let flag = error_with(&diags, "`prevent_destroy` must be true or false");
    assert_eq!(at(&flag), position(&text, "yes please"));
    let timeout = error_with(&diags, "expected a duration");
    assert_eq!(at(&timeout), position(&text, "forever"));
}

#[test]
fn a_semantic_check_of_the_type_points_at_the_property() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    mode: fixed\n    size: 3\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "size"));
    assert_mentions(&d, &["`size`: cannot be set when `mode` is fixed"]);
}

#[test]
fn an_unknown_output_key_is_located() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\noutputs:\n  x:\n    value: ${a.arn}\n    sensitiv: true\n",
    );
    let d = only_error(&text);
    assert_eq!(at(&d), position(&text, "sensitiv"));
    assert_eq!(help(&d), "did you mean `sensitive`?");
}

#[test]
fn a_yaml_syntax_error_has_a_position_on_the_offending_line() {
    let text = with_head("resources:\n  a:\n    type: test.thing\n    name: [x, y\n  b: 1\n");
    let d = only_error(&text);
    assert!(d.span.is_known(), "{d:?}");
    let open = position(&text, "[x, y").0;
    assert!(
        d.span.line >= open && d.span.line <= open + 1,
        "line {} should be at or just after the unclosed `[` on line {open}: {d}",
        d.span.line
    );
    assert!(d.to_string().starts_with("stack.yaml:"), "{d}");
}

#[test]
fn a_tab_indented_file_is_a_syntax_error_with_a_position() {
    let text = "stack: demo\nresources:\n\ta:\n\t\ttype: test.thing\n";
    let d = only_error(text);
    assert!(d.span.is_known(), "{d:?}");
    assert_eq!(d.span.line, 3, "{d}");
}

#[test]
fn an_empty_file_is_an_error_at_the_start() {
    for text in ["", "\n\n", "   \n# just a comment\n"] {
        let diags = load_err(text);
        let d = diags.errors().next().expect("an error");
        if text.trim().is_empty() {
            assert_eq!(at(d), (1, 1));
            assert_mentions(d, &["empty"]);
        } else {
            assert!(d.span.is_known(), "{d:?}");
        }
    }
}

#[test]
fn a_file_that_is_not_a_map_says_so() {
    let text = "- stack: demo\n";
    let d = only_error(text);
    assert_eq!(at(&d), (1, 1));
    assert_mentions(&d, &["must be a map", "found a list"]);
}

#[test]
fn every_error_of_a_badly_broken_file_is_reported_at_once() {
    let text = with_head(
        "resources:\n  a:\n    type: test.thing\n    name: a\n    sise: 1\n    mode: fsat\n  b:\n    type: test.thing\n    size: -1\n",
    );
    let diags = load_err(&text);
    let messages: Vec<&str> = diags.errors().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 4, "{diags}");
    assert!(diags.errors().all(|d| d.span.is_known()), "{diags}");
}

#[test]
fn no_prefix_of_a_stack_file_panics_the_loader_and_every_error_is_located() {
    let text = with_head(
        "vars:\n  student: ana\nexpires_after: 8h\nresources:\n  a:\n    type: test.thing\n    name: \"${var.student}-a\"\n    rules: [{ peer: \"${b.id}\", port: 80 }]\n  b:\n    type: test.thing\n    name: b\n    peer: ${a.arn}\n    depends_on: [a]\n    lifecycle: { prevent_destroy: true }\noutputs:\n  arn: { value: \"${a.arn}\", sensitive: true }\n",
    );
    assert!(load(&text).is_ok(), "the whole file is valid");
    let cloud = FakeCloud::new();
    let reg = registry(&cloud);
    for end in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
        let prefix = &text[..end];
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            load_with(prefix, &reg, &options())
        }));
        let Ok(result) = result else {
            panic!("the loader panicked on the first {end} bytes:\n{prefix}");
        };
        if let Err(diags) = result {
            assert!(diags.has_errors(), "an Err with no error for:\n{prefix}");
            for d in diags.errors() {
                assert!(
                    d.file.is_some() && d.span.is_known(),
                    "an error without a position for the first {end} bytes:\n{prefix}\n-> {d:?}"
                );
            }
        }
    }
}

#[test]
fn what_a_pinning_property_refers_to_moves_to_its_region() {
    let stack = load_ok(
        "stack: demo\nregion: eu-west-1\nresources:\n  edge:\n    type: test.thing\n    name: e\n    size: 10\n  front:\n    type: test.thing\n    name: f\n    edges:\n      - { peer: \"${edge.id}\", limit: 100 }\n  plain:\n    type: test.thing\n    name: p\n    peer: \"${edge.id}\"\n",
    );
    let region = |name: &str| {
        stack
            .resources
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.region.clone())
            .unwrap_or_default()
    };
    assert_eq!(region("edge"), "us-east-1");
    assert_eq!(region("front"), "eu-west-1");
    assert_eq!(region("plain"), "eu-west-1");
}

#[test]
fn a_type_can_pin_its_own_region() {
    let stack = load_ok(
        "stack: demo\nregion: eu-west-1\nresources:\n  a:\n    type: test.thing\n    name: a\n    global: true\n  b:\n    type: test.thing\n    name: b\n",
    );
    assert_eq!(stack.resources[0].region, "us-east-1");
    assert_eq!(stack.resources[1].region, "eu-west-1");
}

#[test]
fn a_written_region_that_contradicts_a_pin_is_an_error_at_the_region() {
    let text = "stack: demo\nregion: eu-west-1\nresources:\n  edge:\n    type: test.thing\n    name: e\n    region: eu-west-1\n  front:\n    type: test.thing\n    name: f\n    edges:\n      - { peer: \"${edge.id}\" }\n";
    let d = only_error(text);
    assert_eq!(at(&d), position_nth(text, "eu-west-1", 1));
    assert!(
        d.message.contains("`edge` must be in us-east-1")
            && d.message.contains("`front.edges[0].peer`"),
        "{}",
        d.message
    );
}

#[test]
fn check_linked_errors_point_at_the_reference() {
    let text = "stack: demo\nregion: us-east-1\nresources:\n  edge:\n    type: test.thing\n    name: e\n    size: 500\n  front:\n    type: test.thing\n    name: f\n    edges:\n      - { peer: \"${edge.id}\", limit: 100 }\n";
    let d = only_error(text);
    assert_eq!(at(&d), position(text, "peer:"));
    assert!(
        d.message.contains("`edge` has size 500, more than 100"),
        "{}",
        d.message
    );
}
