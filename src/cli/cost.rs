//! `plinth cost`: what a stack costs to run, before anything runs. Also the cost line that
//! `plan`, `apply` and `destroy` print, and `apply --max-monthly-cost`.
//!
//! Estimates are list prices from a dated price table (built in, or `--prices FILE`) with
//! usage assumptions for what AWS bills by use (built in, or `--usage FILE`); every
//! assumption used is printed with the estimate. `plinth cost` needs no AWS account: it
//! prices the stack as written, and compares with what the state says runs now.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use plinth_core::cost::{
    self, Assumption, Estimate, PlanCost, PriceTable, Pricing, ResourceCost, Usage, HOURS_PER_MONTH,
};
use plinth_core::diag::SourceFile;
use plinth_core::plan::{Mode, Plan};
use plinth_core::resource::Registry;
use plinth_core::state::State;
use serde_json::{json, Value};

use super::plan::PlanView;
use super::{fail, load_stack, offline_registry, stack_path, CliError, CliResult, GlobalArgs, Ui};

/// Where prices and usage assumptions come from (every command that estimates takes these).
#[derive(Debug, Args, Clone, Default)]
pub struct CostOptions {
    /// Price with this table instead of the built-in one (same JSON format as
    /// prices/aws-prices.json).
    #[arg(long = "prices", value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Usage assumptions (YAML) over the built-in, course-sized defaults (docs/cost.md).
    #[arg(long = "usage", value_name = "FILE")]
    pub usage: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// The stack file (default: -f, or plinth.yaml).
    pub stack: Option<PathBuf>,
    #[command(flatten)]
    pub options: CostOptions,
    /// Print the estimate as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The price table and the usage assumptions an estimate is made with.
pub struct PriceInputs {
    pub prices: PriceTable,
    pub usage: Usage,
}

impl PriceInputs {
    pub fn pricing<'a>(&'a self, registry: &'a Registry) -> Pricing<'a> {
        Pricing {
            registry,
            prices: &self.prices,
            usage: &self.usage,
        }
    }
}

impl CostOptions {
    /// Loads the price table and the usage assumptions; a broken file the user named is an
    /// error (with its line and column for a usage file).
    pub fn load(&self) -> Result<PriceInputs, CliError> {
        let prices = match &self.prices {
            Some(path) => {
                let text = read(path, "price table")?;
                PriceTable::parse(&text, &super::display_path(path))?
            }
            None => plinth_aws::cost::shipped_prices()?,
        };
        let mut usage = plinth_aws::cost::default_usage();
        if let Some(path) = &self.usage {
            let text = read(path, "usage file")?;
            usage
                .override_with(&SourceFile::new(path.clone(), text))
                .map_err(CliError::Diagnostics)?;
        }
        Ok(PriceInputs { prices, usage })
    }
}

fn read(path: &std::path::Path, what: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| {
        CliError::Message(format!(
            "reading the {what} {}: {e}",
            super::display_path(path)
        ))
    })
}

pub async fn run(global: &GlobalArgs, args: CostArgs, ui: &Ui) -> CliResult {
    let inputs = args.options.load()?;
    let path = stack_path(global, &args.stack);
    let registry = offline_registry();
    let (stack, graph) = load_stack(global, &path, &registry, None, ui)?;
    ui.add_secrets(stack.sensitive_values());
    let desired = cost::desired_resources(&stack, &graph, &registry)?;
    let pricing = inputs.pricing(&registry);
    let estimate = cost::estimate(&desired, &pricing);
    // What runs now, when this workspace has state: no lock, a read is enough.
    let store = super::store_of(global, &stack).await?;
    let now = store
        .read(&stack.name, &stack.workspace)
        .ok()
        .filter(|state| !state.resources.is_empty())
        .map(|state| cost::estimate(&cost::running_now(&state), &pricing));
    let assumptions = inputs.usage.used();
    if args.json {
        let doc = json!({
            "stack": stack.name,
            "workspace": stack.workspace,
            "prices": prices_json(&inputs.prices),
            "hours_per_month": HOURS_PER_MONTH,
            "resources": estimate.resources,
            "total": total_json(&estimate),
            "assumptions": assumptions,
            "free_tier": free_tier_json(&estimate),
            "now": now.as_ref().map(total_json),
        });
        ui.out(&serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    ui.out(&format!(
        "Estimated cost of stack `{}` (workspace `{}`) once applied:\n",
        stack.name, stack.workspace
    ));
    ui.out_raw(&table(&estimate));
    print_assumptions(ui, &assumptions);
    print_free_tier(ui, &estimate, &inputs.prices);
    ui.out(&format!(
        "\nPrices of {} ({}): {} Hours per month: {HOURS_PER_MONTH}.",
        inputs.prices.as_of, inputs.prices.origin, inputs.prices.source
    ));
    if let Some(now) = &now {
        ui.out(&format!(
            "Running now, per the state: {}/month ({}/hour).",
            usd(now.monthly),
            usd_hourly(now.hourly)
        ));
    }
    Ok(0)
}

fn prices_json(prices: &PriceTable) -> Value {
    json!({"as_of": prices.as_of, "source": prices.source, "origin": prices.origin})
}

fn total_json(estimate: &Estimate) -> Value {
    json!({
        "hourly": estimate.hourly,
        "monthly": estimate.monthly,
        "complete": estimate.is_complete(),
        "price_unknown": estimate.price_unknown,
    })
}

/// The free-tier offers the estimate's lines are eligible for, each with its resources.
fn free_tier_offers(estimate: &Estimate) -> BTreeMap<String, Vec<String>> {
    let mut offers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &estimate.resources {
        for offer in r.lines.iter().filter_map(|l| l.free_tier.as_ref()) {
            let names = offers.entry(offer.clone()).or_default();
            if !names.contains(&r.name) {
                names.push(r.name.clone());
            }
        }
    }
    offers
}

fn free_tier_json(estimate: &Estimate) -> Value {
    let offers: Vec<Value> = free_tier_offers(estimate)
        .into_iter()
        .map(|(offer, resources)| json!({"offer": offer, "resources": resources}))
        .collect();
    Value::Array(offers)
}

/// `$12.41`
pub fn usd(amount: f64) -> String {
    format!("${:.2}", amount.abs())
}

/// `$0.0170`: hourly figures are small, so four decimals.
pub fn usd_hourly(amount: f64) -> String {
    format!("${:.4}", amount.abs())
}

/// The per-resource table, with a total row.
fn table(estimate: &Estimate) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "RESOURCE".into(),
        "TYPE".into(),
        "REGION".into(),
        "$/HOUR".into(),
        "$/MONTH".into(),
        "NOTES".into(),
    ]];
    for r in &estimate.resources {
        rows.push([
            r.name.clone(),
            r.type_name.clone(),
            r.region.clone(),
            figure(r.hourly, 4, r),
            figure(r.monthly, 2, r),
            notes(r),
        ]);
    }
    let unknown = estimate.price_unknown.len();
    rows.push([
        "total".into(),
        String::new(),
        String::new(),
        format!("{:.4}", estimate.hourly),
        format!("{:.2}", estimate.monthly),
        if unknown == 0 {
            String::new()
        } else {
            format!(
                "without {unknown} resource{} whose price is unknown",
                if unknown == 1 { "" } else { "s" }
            )
        },
    ]);
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A resource's sum; `?` when nothing of it could be priced, `+?` when only some of it.
fn figure(amount: f64, decimals: usize, r: &ResourceCost) -> String {
    let known = r.lines.iter().any(|l| l.is_known());
    match (r.price_unknown, known) {
        (true, false) => "?".into(),
        (true, true) => format!("{amount:.decimals$}+?"),
        _ => format!("{amount:.decimals$}"),
    }
}

/// What each line charges for: usage-priced ones marked `*`, free-tier ones `[free tier]`.
fn notes(r: &ResourceCost) -> String {
    let parts: Vec<String> = r
        .lines
        .iter()
        .map(|l| {
            let mut text = l.what.clone();
            if let Some(why) = &l.unknown {
                text = format!("{text}: price unknown ({why})");
            }
            if l.usage_priced {
                text.push_str(" *");
            }
            if l.free_tier.is_some() {
                text.push_str(" [free tier]");
            }
            text
        })
        .collect();
    if parts.is_empty() {
        "no charge".into()
    } else {
        parts.join("; ")
    }
}

fn print_assumptions(ui: &Ui, assumptions: &[Assumption]) {
    if assumptions.is_empty() {
        return;
    }
    ui.out("\n* usage-priced, from these assumptions (per month; change them with --usage FILE):");
    let key_width = assumptions.iter().map(|a| a.key.len()).max().unwrap_or(0);
    let values: Vec<String> = assumptions.iter().map(|a| a.value.to_string()).collect();
    let value_width = values.iter().map(String::len).max().unwrap_or(0);
    for (a, value) in assumptions.iter().zip(&values) {
        let from = a
            .from
            .as_ref()
            .map(|f| format!(" (from {f})"))
            .unwrap_or_default();
        ui.out(&format!(
            "  {:<key_width$} = {value:<value_width$}  {}{from}",
            a.key, a.meaning
        ));
    }
}

fn print_free_tier(ui: &Ui, estimate: &Estimate, prices: &PriceTable) {
    let offers = free_tier_offers(estimate);
    if offers.is_empty() {
        return;
    }
    ui.out("\n[free tier] eligible (not subtracted above):");
    for (offer, resources) in &offers {
        ui.out(&format!("  {offer} — {}", resources.join(", ")));
    }
    if let Some(caveat) = prices.text(&["free_tier", "caveat"]) {
        ui.out(&format!("  {caveat}"));
    }
}

/// A plan's cost: loads the prices and prices what runs after the plan and now.
pub fn of_plan(
    plan: &Plan,
    state: &State,
    registry: &Registry,
    options: &CostOptions,
) -> Result<(PlanCost, PriceTable), CliError> {
    let inputs = options.load()?;
    let cost = cost::plan_cost(plan, state, &inputs.pricing(registry));
    Ok((cost, inputs.prices))
}

/// "Estimated cost: $27.38/month ($0.0375/hour), +$12.41/month from now — see …".
pub fn plan_line(cost: &PlanCost, mode: Mode) -> String {
    let after = &cost.after;
    let change = cost.change_monthly();
    let change_text = if change.abs() < 0.005 {
        "no change from now".to_string()
    } else if change > 0.0 {
        format!("+{}/month from now", usd(change))
    } else {
        format!(
            "saves {}/month ({}/hour) from now",
            usd(change),
            usd_hourly(cost.change_hourly())
        )
    };
    let label = match mode {
        Mode::Apply => "Estimated cost",
        Mode::Destroy => "Estimated cost after destroy",
    };
    let unknown = if after.is_complete() {
        String::new()
    } else {
        format!(
            " (not counting {}, whose price is unknown)",
            after.price_unknown.join(", ")
        )
    };
    format!(
        "{label}: {}/month ({}/hour){unknown}, {change_text}{} — see `plinth cost` for details",
        usd(after.monthly),
        usd_hourly(after.hourly),
        drift_text(cost)
    )
}

/// Why what runs now is priced differently from the last apply, when it is.
fn drift_text(cost: &PlanCost) -> String {
    let drift = cost.drift_monthly;
    if cost.drifted.is_empty() || drift.abs() < 0.005 {
        return String::new();
    }
    let names: Vec<String> = cost.drifted.iter().map(|n| format!("`{n}`")).collect();
    format!(
        " (what runs now costs {}/month {} than at the last apply: {} changed outside plinth)",
        usd(drift.abs()),
        if drift > 0.0 { "more" } else { "less" },
        names.join(", ")
    )
}

/// The plan's cost for `plan --json`.
pub fn plan_json(cost: &PlanCost, prices: &PriceTable) -> Value {
    let resources: Vec<Value> = cost
        .after
        .resources
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "type": r.type_name,
                "region": r.region,
                "hourly": r.hourly,
                "monthly": r.monthly,
                "price_unknown": r.price_unknown,
            })
        })
        .collect();
    json!({
        "monthly": cost.after.monthly,
        "hourly": cost.after.hourly,
        "now_monthly": cost.now.monthly,
        "now_hourly": cost.now.hourly,
        "change_monthly": cost.change_monthly(),
        "change_hourly": cost.change_hourly(),
        "applied_monthly": cost.applied.monthly,
        "drifted": cost.drifted,
        "drift_monthly": cost.drift_monthly,
        "complete": cost.after.is_complete(),
        "price_unknown": cost.after.price_unknown,
        "prices_as_of": prices.as_of,
        "resources": resources,
    })
}

/// Prices a plan `apply` or `destroy` is about to run and prints its cost line under the
/// plan (a roster's one-line plans leave it out).
pub fn print_for_plan(
    plan: &Plan,
    state: &State,
    registry: &Registry,
    options: &CostOptions,
    view: PlanView,
    ui: &Ui,
) -> Result<PlanCost, CliError> {
    let (cost, _) = of_plan(plan, state, registry, options)?;
    if view == PlanView::Full {
        ui.out(&plan_line(&cost, plan.mode));
    }
    Ok(cost)
}

/// `apply --max-monthly-cost`: refuses, before any change, a plan whose estimate is above
/// the limit, or that cannot be checked because a price is unknown.
pub fn check_budget(max_monthly: Option<f64>, cost: &PlanCost) -> Result<(), CliError> {
    let Some(max_monthly) = max_monthly else {
        return Ok(());
    };
    let after = &cost.after;
    if !after.is_complete() {
        let why: Vec<String> = after
            .resources
            .iter()
            .flat_map(|r| {
                r.lines
                    .iter()
                    .filter_map(move |l| l.unknown.as_ref().map(|u| format!("{}: {u}", r.name)))
            })
            .collect();
        return fail(format!(
            "--max-monthly-cost {}: the estimate cannot be checked because a price is unknown ({}); nothing was changed",
            usd(max_monthly),
            why.join("; ")
        ));
    }
    // Compared in whole cents, as both are shown: an estimate of $62.05 fits a $62.05 limit.
    if cents(after.monthly) > cents(max_monthly) {
        return fail(format!(
            "the estimated cost after this apply is {}/month ({}/hour), above --max-monthly-cost {}; nothing was changed. `plinth cost` shows where it comes from.",
            usd(after.monthly),
            usd_hourly(after.hourly),
            usd(max_monthly)
        ));
    }
    Ok(())
}

fn cents(usd: f64) -> i64 {
    (usd * 100.0).round() as i64
}

/// Parses `--max-monthly-cost`: USD, `$` optional.
pub fn parse_usd(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_start_matches('$');
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(format!(
            "expected an amount in USD such as 25 or 12.50, not `{text}`"
        )),
    }
}
