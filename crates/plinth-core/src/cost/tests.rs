//! Price lookups, usage assumptions and estimates, with a fake priced type.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::diag::SourceFile;
use crate::plan::Mode;
use crate::resource::{Observed, OpContext, Registry, ResourceError, ResourceResult, ResourceType};
use crate::schema::TypeSchema;
use crate::state::Status;
use crate::testing::{self, Harness};
use crate::value::Props;

const TABLE: &str = r#"{
  "as_of": "2030-01-01",
  "source": "made up for tests",
  "regions": {
    "us-east-1": { "thing": { "fast": 0.5, "slow": 0.1 }, "storage_gb_month": 0.25 },
    "eu-west-1": { "thing": { "fast": 0.6 }, "storage_gb_month": 0.3, "broken": -1 }
  },
  "global": { "edge": { "per_million": 0.6 } },
  "free": { "test.thing": "things are free" },
  "free_tier": { "thing": { "modes": ["slow"], "note": "slow things: free for a while" } }
}"#;

const DEFAULTS: &[UsageDefault] = &[
    UsageDefault::number("thing.storage_gb", 2.0, "GB per thing"),
    UsageDefault::number("thing.requests", 1000.0, "requests per thing"),
    UsageDefault::text("edge.where", "north_america", "where viewers are"),
];

fn table() -> PriceTable {
    PriceTable::parse(TABLE, "test table").expect("the test table parses")
}

/// `test.thing` priced by the hour by its `mode` (default fast) times its `size`, plus its
/// assumed storage; slow things are free-tier eligible.
struct PricedThing {
    schema: TypeSchema,
}

fn thing_cost(props: &Props, ctx: &CostContext) -> Vec<CostLine> {
    let mode = known_str(props, "mode").unwrap_or("fast");
    let size = props.get("size").and_then(|v| v.as_i64()).unwrap_or(1);
    let nodes = match ctx.regional_price(&["thing", mode]) {
        Ok(price) => CostLine::per_hour(format!("{size} × {mode}"), price * size as f64)
            .with_free_tier(
                ctx.prices
                    .lists(&["free_tier", "thing", "modes"], mode)
                    .then(|| "slow things: free for a while".to_string()),
            ),
        Err(e) => CostLine::unknown(format!("{size} × {mode}"), e.to_string()),
    };
    let gb = ctx.usage("thing.storage_gb");
    let storage = match ctx.regional_price(&["storage_gb_month"]) {
        Ok(price) => CostLine::usage_per_month(format!("{gb} GB"), gb * price),
        Err(e) => CostLine::unknown("storage", e.to_string()),
    };
    vec![nodes, storage]
}

#[async_trait]
impl ResourceType for PricedThing {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }
    fn cost(&self, props: &Props, ctx: &CostContext) -> Vec<CostLine> {
        thing_cost(props, ctx)
    }
    async fn read(&self, _: &OpContext, _: &str, _: &Props) -> ResourceResult<Option<Observed>> {
        Err(ResourceError::other("pricing only"))
    }
    async fn create(&self, _: &OpContext, _: &Props) -> ResourceResult<Observed> {
        Err(ResourceError::other("pricing only"))
    }
    async fn update(
        &self,
        _: &OpContext,
        _: &str,
        _: &Props,
        _: &Props,
    ) -> ResourceResult<Observed> {
        Err(ResourceError::other("pricing only"))
    }
    async fn delete(&self, _: &OpContext, _: &str, _: &Props) -> ResourceResult<()> {
        Err(ResourceError::other("pricing only"))
    }
}

/// Prices `test.thing`; `test.network` (a lookup) keeps the trait's default: no cost.
fn priced_registry() -> Registry {
    let mut registry = testing::registry(&testing::FakeCloud::new());
    registry.register(Arc::new(PricedThing {
        schema: testing::thing_schema(),
    }));
    registry
}

fn running(name: &str, region: &str, props: serde_json::Value) -> Running {
    Running {
        name: name.into(),
        type_name: "test.thing".into(),
        region: region.into(),
        props: testing::props(props),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

// ---------------------------------------------------------------------------------------
// The price table

#[test]
fn a_regional_price_is_found_by_region_and_path() {
    let t = table();
    assert_eq!(t.as_of, "2030-01-01");
    assert_eq!(t.source, "made up for tests");
    assert_eq!(t.regional("us-east-1", &["thing", "fast"]), Ok(0.5));
    assert_eq!(t.regional("eu-west-1", &["thing", "fast"]), Ok(0.6));
    assert_eq!(t.regions(), vec!["us-east-1", "eu-west-1"]);
}

#[test]
fn a_region_missing_from_the_table_names_the_regions_it_has() {
    let err = table()
        .regional("ap-south-1", &["thing", "fast"])
        .expect_err("no such region");
    assert_eq!(
        err.to_string(),
        "no prices for region ap-south-1 in the price table of 2030-01-01 (it has us-east-1, \
         eu-west-1); add the region to a copy of the table and pass it with --prices FILE"
    );
}

#[test]
fn a_price_missing_from_the_table_says_what_where_and_the_tables_date() {
    let err = table()
        .regional("eu-west-1", &["thing", "slow"])
        .expect_err("eu-west-1 has no slow things");
    assert_eq!(
        err.to_string(),
        "no price for thing.slow in eu-west-1 in the price table of 2030-01-01; add it to a \
         copy of the table and pass it with --prices FILE"
    );
    // A negative number is no price either.
    assert!(matches!(
        table().regional("eu-west-1", &["broken"]),
        Err(PriceError::NoPrice { .. })
    ));
}

#[test]
fn global_prices_texts_and_lists_are_found_by_path() {
    let t = table();
    assert_eq!(t.global(&["edge", "per_million"]), Ok(0.6));
    assert_eq!(
        t.global(&["edge", "per_billion"])
            .map_err(|e| e.to_string()),
        Err(
            "no price for edge.per_billion in the price table of 2030-01-01; add it to a copy \
             of the table and pass it with --prices FILE"
                .to_string()
        )
    );
    assert_eq!(t.text(&["free", "test.thing"]), Some("things are free"));
    assert!(t.lists(&["free_tier", "thing", "modes"], "slow"));
    assert!(!t.lists(&["free_tier", "thing", "modes"], "fast"));
}

#[test]
fn a_table_that_is_not_json_or_lacks_its_date_source_or_regions_is_refused() {
    let not_json = PriceTable::parse("{ nope", "p.json").expect_err("not JSON");
    assert!(
        not_json
            .to_string()
            .starts_with("the price table p.json is not valid JSON: "),
        "{not_json}"
    );
    for (doc, missing) in [
        (json!({"source": "s", "regions": {}}), "`as_of` (a string)"),
        (
            json!({"as_of": "2030-01-01", "regions": {}}),
            "`source` (a string)",
        ),
        (
            json!({"as_of": "2030-01-01", "source": "s"}),
            "`regions` (a map from region to prices)",
        ),
    ] {
        let err = PriceTable::parse(&doc.to_string(), "p.json").expect_err("incomplete");
        assert_eq!(
            err.to_string(),
            format!("the price table p.json has no {missing}")
        );
    }
}

#[test]
fn hourly_prices_make_monthly_ones_at_730_hours_and_usage_prices_the_other_way() {
    let hourly = CostLine::per_hour("nodes", 0.017);
    assert!(close(hourly.monthly.unwrap_or_default(), 12.41));
    assert!(!hourly.usage_priced);
    let usage = CostLine::usage_per_month("requests", 7.3);
    assert!(close(usage.hourly.unwrap_or_default(), 0.01));
    assert!(usage.usage_priced);
    let unknown = CostLine::unknown("nodes", "no price");
    assert!(!unknown.is_known());
    assert_eq!((unknown.hourly, unknown.monthly), (None, None));
}

#[test]
fn prices_and_counts_are_written_as_people_write_them() {
    assert_eq!(price_text(0.017), "0.017");
    assert_eq!(price_text(0.25), "0.25");
    assert_eq!(price_text(0.2), "0.20");
    assert_eq!(price_text(1.0), "1.00");
    assert_eq!(price_text(0.0000166667), "0.0000166667");
    assert_eq!(count_text(1_000_000.0), "1,000,000");
    assert_eq!(count_text(625.0), "625");
    assert_eq!(count_text(2.5), "2.5");
}

// ---------------------------------------------------------------------------------------
// Usage assumptions

fn usage_file(text: &str) -> SourceFile {
    SourceFile::new("usage.yaml", text)
}

#[test]
fn defaults_hold_until_a_usage_file_overrides_them_and_only_used_ones_are_listed() {
    let mut usage = Usage::new(DEFAULTS);
    assert_eq!(usage.number("thing.storage_gb"), 2.0);
    usage
        .override_with(&usage_file("thing:\n  storage_gb: 7.5\n"))
        .expect("a valid usage file");
    assert_eq!(usage.number("thing.storage_gb"), 7.5);
    assert_eq!(usage.text("edge.where"), "north_america");
    assert_eq!(
        usage.used(),
        vec![
            Assumption {
                key: "edge.where".into(),
                value: UsageValue::Text("north_america".into()),
                meaning: "where viewers are".into(),
                from: None,
            },
            Assumption {
                key: "thing.storage_gb".into(),
                value: UsageValue::Number(7.5),
                meaning: "GB per thing".into(),
                from: Some("usage.yaml".into()),
            },
        ],
        "thing.requests was never looked up, so it is not listed"
    );
    assert_eq!(usage.all().len(), 3);
}

#[test]
fn an_empty_usage_file_changes_nothing() {
    let mut usage = Usage::new(DEFAULTS);
    usage
        .override_with(&usage_file("\n"))
        .expect("empty is fine");
    assert_eq!(usage.number("thing.requests"), 1000.0);
}

#[test]
fn an_unknown_usage_key_is_an_error_at_its_position_with_a_suggestion() {
    let text = "thing:\n  storage_gb: 3\n  requsts: 5\n";
    let diags = Usage::new(DEFAULTS)
        .override_with(&usage_file(text))
        .expect_err("a typo");
    let errors: Vec<_> = diags.errors().collect();
    assert_eq!(errors.len(), 1, "{diags}");
    assert_eq!(
        errors[0].message,
        "unknown key `requsts` in `thing`; expected one of: requests, storage_gb"
    );
    assert_eq!(errors[0].help.as_deref(), Some("did you mean `requests`?"));
    assert_eq!(testing::at(errors[0]), testing::position(text, "requsts"));

    let diags = Usage::new(DEFAULTS)
        .override_with(&usage_file("thingz: { requests: 5 }\n"))
        .expect_err("an unknown section");
    let first = diags.errors().next().map(|d| d.message.clone());
    assert_eq!(
        first.as_deref(),
        Some("unknown key `thingz` in the usage file; expected one of: edge, thing")
    );
}

#[test]
fn a_usage_value_of_the_wrong_kind_or_below_zero_is_an_error() {
    for (text, message) in [
        (
            "thing: { requests: lots }\n",
            "`thing.requests`: expected a number of 0 or more, found a string",
        ),
        (
            "thing: { requests: -5 }\n",
            "`thing.requests`: expected a number of 0 or more, found -5",
        ),
        (
            "edge: { where: 3 }\n",
            "`edge.where`: expected a word, found an integer",
        ),
        ("thing: 5\n", "expected a map in `thing`, found an integer"),
    ] {
        let diags = Usage::new(DEFAULTS)
            .override_with(&usage_file(text))
            .expect_err(text);
        let first = diags.errors().next().map(|d| d.message.clone());
        assert_eq!(first.as_deref(), Some(message), "{text}");
    }
}

// ---------------------------------------------------------------------------------------
// Estimates

#[test]
fn an_estimate_adds_the_known_lines_and_names_resources_with_an_unknown_price() {
    let registry = priced_registry();
    let (prices, usage) = (table(), Usage::new(DEFAULTS));
    let pricing = Pricing {
        registry: &registry,
        prices: &prices,
        usage: &usage,
    };
    let estimate = estimate(
        &[
            running("a", "us-east-1", json!({"name": "a", "size": 2})),
            running("b", "us-east-1", json!({"name": "b", "mode": "slow"})),
            // eu-west-1 has no slow things: that line is unknown, storage is still priced.
            running("c", "eu-west-1", json!({"name": "c", "mode": "slow"})),
        ],
        &pricing,
    );
    let a = &estimate.resources[0];
    // 2 × 0.5 per hour, and 2 GB × 0.25 a month.
    assert!(close(a.hourly, 2.0 * 0.5 + 2.0 * 0.25 / 730.0), "{a:?}");
    assert!(close(a.monthly, 2.0 * 0.5 * 730.0 + 2.0 * 0.25));
    assert!(!a.price_unknown);
    let b = &estimate.resources[1];
    assert_eq!(
        b.lines[0].free_tier.as_deref(),
        Some("slow things: free for a while")
    );
    assert_eq!(b.lines[1].free_tier, None);
    let c = &estimate.resources[2];
    assert!(c.price_unknown);
    assert!(close(c.monthly, 2.0 * 0.3), "only the storage is priced");
    assert_eq!(estimate.price_unknown, vec!["c".to_string()]);
    assert!(!estimate.is_complete());
    assert!(close(estimate.monthly, a.monthly + b.monthly + c.monthly));
    assert!(close(
        estimate.monthly,
        (1.0 + 0.1) * 730.0 + 2.0 * 0.25 * 2.0 + 0.6
    ));
    // Looking up usage recorded it as an assumption used.
    let used: Vec<String> = usage.used().into_iter().map(|a| a.key).collect();
    assert_eq!(used, vec!["thing.storage_gb"]);
}

#[test]
fn a_type_without_a_cost_rule_costs_nothing_and_an_unknown_type_is_an_unknown_price() {
    let registry = priced_registry();
    let (prices, usage) = (table(), Usage::new(DEFAULTS));
    let pricing = Pricing {
        registry: &registry,
        prices: &prices,
        usage: &usage,
    };
    let mut lookup = running("net", "us-east-1", json!({}));
    lookup.type_name = "test.network".into();
    let mut alien = running("alien", "us-east-1", json!({}));
    alien.type_name = "test.alien".into();
    let estimate = estimate(&[lookup, alien], &pricing);
    assert!(estimate.resources[0].lines.is_empty());
    assert_eq!(estimate.resources[0].monthly, 0.0);
    assert_eq!(
        estimate.resources[1].lines[0].unknown.as_deref(),
        Some("this plinth does not know the type test.alien")
    );
    assert_eq!(estimate.price_unknown, vec!["alien".to_string()]);
    // An empty sum is +0.0, never "-0".
    let nothing = super::estimate(&[], &pricing);
    assert!(nothing.monthly.is_sign_positive());
}

const TWO_THINGS: &str = "
stack: demo
region: us-east-1
resources:
  a: { type: test.thing, name: a, size: 2 }
  b: { type: test.thing, name: b, size: 1, mode: slow }
";

const A_BIGGER_AND_C_INSTEAD_OF_B: &str = "
stack: demo
region: us-east-1
resources:
  a: { type: test.thing, name: a, size: 4 }
  c: { type: test.thing, name: c, size: 1 }
";

#[tokio::test]
async fn a_plan_is_priced_by_what_runs_after_it_against_what_runs_now() {
    let h = Harness::new();
    h.converge(TWO_THINGS, Mode::Apply).await;
    let state = h.stored_state();
    let stack = h.stack(A_BIGGER_AND_C_INSTEAD_OF_B);
    let plan = h
        .plan_against(&stack, &state, Mode::Apply, &[])
        .await
        .expect("a plan");
    let registry = priced_registry();
    let (prices, usage) = (table(), Usage::new(DEFAULTS));
    let pricing = Pricing {
        registry: &registry,
        prices: &prices,
        usage: &usage,
    };
    let cost = plan_cost(&plan, &state, &pricing);
    let names = |e: &Estimate| -> Vec<String> {
        let mut n: Vec<String> = e.resources.iter().map(|r| r.name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&cost.now), vec!["a", "b"]);
    assert_eq!(
        names(&cost.after),
        vec!["a", "c"],
        "b is deleted, c created"
    );
    // Now: a = 2 × 0.5/h, b = 1 × 0.1/h; after: a = 4 × 0.5/h, c = 1 × 0.5/h.
    // Each thing also stores 2 GB × 0.25 a month.
    let storage = 2.0 * 0.25;
    assert!(close(cost.now.monthly, (1.0 + 0.1) * 730.0 + 2.0 * storage));
    assert!(close(
        cost.after.monthly,
        (2.0 + 0.5) * 730.0 + 2.0 * storage
    ));
    assert!(close(cost.change_monthly(), (2.5 - 1.1) * 730.0));
    assert!(close(cost.change_hourly(), 2.5 - 1.1));
}

#[tokio::test]
async fn a_no_op_plan_has_no_cost_change_and_a_drift_in_an_ignored_property_is_named() {
    let h = Harness::new();
    let text = "
stack: demo
region: us-east-1
resources:
  a: { type: test.thing, name: a, size: 2, lifecycle: { ignore_changes: [size] } }
  b: { type: test.thing, name: b, size: 1 }
";
    h.converge(text, Mode::Apply).await;
    let state = h.stored_state();
    // Autoscaling (or a person) doubled `a` outside plinth; the stack ignores it.
    let (a_id, _) = h.cloud.object_named("a").expect("a");
    h.cloud.tamper(&a_id, "size", json!(4));
    let plan = h
        .plan_against(&h.stack(text), &state, Mode::Apply, &[])
        .await
        .expect("a plan");
    assert!(!plan.has_changes(), "{:#?}", plan.resources);
    let registry = priced_registry();
    let (prices, usage) = (table(), Usage::new(DEFAULTS));
    let pricing = Pricing {
        registry: &registry,
        prices: &prices,
        usage: &usage,
    };
    let cost = plan_cost(&plan, &state, &pricing);
    assert!(
        close(cost.change_monthly(), 0.0),
        "{}",
        cost.change_monthly()
    );
    assert!(close(cost.change_hourly(), 0.0));
    // Now is what AWS runs as just read: a at 4 × 0.5/h, not the 2 the state recorded.
    assert!(close(cost.now.monthly, (2.0 + 0.5) * 730.0 + 2.0 * 0.5));
    assert_eq!(cost.drifted, vec!["a".to_string()]);
    assert!(close(cost.drift_monthly, 2.0 * 0.5 * 730.0));
}

#[tokio::test]
async fn a_destroy_plan_leaves_nothing_running_and_saves_all_of_it() {
    let h = Harness::new();
    h.converge(TWO_THINGS, Mode::Apply).await;
    let state = h.stored_state();
    let plan = h
        .plan_against(&h.stack(TWO_THINGS), &state, Mode::Destroy, &[])
        .await
        .expect("a plan");
    let registry = priced_registry();
    let (prices, usage) = (table(), Usage::new(DEFAULTS));
    let pricing = Pricing {
        registry: &registry,
        prices: &prices,
        usage: &usage,
    };
    let cost = plan_cost(&plan, &state, &pricing);
    assert!(cost.after.resources.is_empty());
    assert_eq!(cost.after.monthly, 0.0);
    assert!(close(cost.change_monthly(), -cost.now.monthly));
    assert!(close(cost.now.monthly, 1.1 * 730.0 + 2.0 * 0.5));

    // A targeted destroy leaves the rest running as it is.
    let plan = h
        .plan_against(&h.stack(TWO_THINGS), &state, Mode::Destroy, &["b"])
        .await
        .expect("a plan");
    let after = running_after(&plan, &state);
    let names: Vec<&str> = after.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["a"]);
}

#[test]
fn a_resource_whose_deletion_is_under_way_no_longer_runs() {
    let cloud = testing::FakeCloud::new();
    let mut state = testing::empty_state();
    let a = testing::ready(&cloud, "a", testing::props(json!({"name": "a"})));
    let mut b = testing::ready(&cloud, "b", testing::props(json!({"name": "b"})));
    b.status = Status::PendingDelete {
        reason: "still deleting".into(),
        since: "2030-01-01T00:00:00Z".into(),
    };
    state.resources.insert("a".into(), a);
    state.resources.insert("b".into(), b);
    let names: Vec<String> = running_now(&state).into_iter().map(|r| r.name).collect();
    assert_eq!(names, vec!["a"]);
}

#[test]
fn the_stack_as_written_is_priced_without_state_in_declared_order() {
    let h = Harness::new();
    let text = "
stack: demo
region: us-east-1
resources:
  z: { type: test.thing, name: z, size: 3, peer: '${a.name}', subnets: ['${a.arn}'] }
  a: { type: test.thing, name: a, mode: slow }
  net: { type: test.network, name: default }
";
    let stack = h.stack(text);
    let graph = h.graph(&stack);
    let desired = desired_resources(&stack, &graph, &h.registry).expect("resources");
    let names: Vec<&str> = desired.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["z", "a"],
        "declared order; the lookup is left out"
    );
    assert_eq!(desired[0].props.get("size"), Some(&json!(3)));
    assert_eq!(desired[0].region, "us-east-1");
    // `a.name` is known before `a` exists (the type says so); `a.arn` only after apply.
    assert_eq!(desired[0].props.get("peer"), Some(&json!("a")));
    let subnets = desired[0].props.get("subnets").cloned().unwrap_or_default();
    assert!(crate::value::contains_unknown(&subnets), "{subnets}");
}
