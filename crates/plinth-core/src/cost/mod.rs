//! What a stack costs to run, worked out before anything runs.
//!
//! The core knows no prices: a price table is a JSON document (loaded and looked up here,
//! by path), usage assumptions are named numbers with built-in defaults a YAML file may
//! override, and each resource type turns its canonical properties into [`CostLine`]s
//! through [`crate::resource::ResourceType::cost`]. [`estimate`] adds them up for a set of
//! resources: the stack as written, the state as it is, or what a plan leaves running.

pub mod estimate;
pub mod prices;
#[cfg(test)]
mod tests;
pub mod usage;

use serde::{Deserialize, Serialize};

use crate::value::{self, Props};

pub use estimate::{
    desired_resources, estimate, plan_cost, running_after, running_as_read, running_now, Estimate,
    PlanCost, Pricing, ResourceCost, Running,
};
pub use prices::{PriceError, PriceTable};
pub use usage::{Assumption, Usage, UsageDefault, UsageValue};

/// Hours in a month, as AWS's own pricing examples count them (365 × 24 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// One priced part of a resource: its nodes, its capacity, its requests, its storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostLine {
    /// What is charged, with the arithmetic ("2 × cache.t3.micro nodes at $0.017/h").
    pub what: String,
    /// USD per hour; `None` when the price is unknown.
    pub hourly: Option<f64>,
    /// USD per month (730 hours); `None` when the price is unknown.
    pub monthly: Option<f64>,
    /// Priced from usage assumptions (requests, storage, transfer), not from what runs.
    #[serde(default)]
    pub usage_priced: bool,
    /// The free-tier offer this line is eligible for (not subtracted: it is per account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_tier: Option<String>,
    /// Why the price is unknown (a node type missing from the table, a value known only
    /// after apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

impl CostLine {
    /// Something billed by the hour while it runs.
    pub fn per_hour(what: impl Into<String>, usd_per_hour: f64) -> CostLine {
        CostLine {
            what: what.into(),
            hourly: Some(usd_per_hour),
            monthly: Some(usd_per_hour * HOURS_PER_MONTH),
            usage_priced: false,
            free_tier: None,
            unknown: None,
        }
    }

    /// Something billed by the month while it exists, whatever its use (a volume's
    /// provisioned GB, a hosted zone).
    pub fn per_month(what: impl Into<String>, usd_per_month: f64) -> CostLine {
        CostLine {
            usage_priced: false,
            ..CostLine::usage_per_month(what, usd_per_month)
        }
    }

    /// Something billed by use, priced from the usage assumptions for a month.
    pub fn usage_per_month(what: impl Into<String>, usd_per_month: f64) -> CostLine {
        CostLine {
            what: what.into(),
            hourly: Some(usd_per_month / HOURS_PER_MONTH),
            monthly: Some(usd_per_month),
            usage_priced: true,
            free_tier: None,
            unknown: None,
        }
    }

    /// Something AWS does not charge for.
    pub fn free(what: impl Into<String>) -> CostLine {
        CostLine::per_hour(what, 0.0)
    }

    /// A part whose price cannot be worked out; the estimate says so instead of failing.
    pub fn unknown(what: impl Into<String>, why: impl Into<String>) -> CostLine {
        CostLine {
            what: what.into(),
            hourly: None,
            monthly: None,
            usage_priced: false,
            free_tier: None,
            unknown: Some(why.into()),
        }
    }

    /// Marks the line as eligible for a free-tier offer (`None`: not eligible).
    pub fn with_free_tier(mut self, offer: Option<String>) -> CostLine {
        self.free_tier = offer;
        self
    }

    /// Marks the line as priced from usage assumptions.
    pub fn usage_priced(mut self) -> CostLine {
        self.usage_priced = true;
        self
    }

    pub fn is_known(&self) -> bool {
        self.monthly.is_some()
    }
}

/// What [`crate::resource::ResourceType::cost`] works from besides the properties.
#[derive(Clone, Copy)]
pub struct CostContext<'a> {
    /// The region the resource runs in.
    pub region: &'a str,
    pub prices: &'a PriceTable,
    pub usage: &'a Usage,
}

impl CostContext<'_> {
    /// A price kept per region: `regions.<region>.<path…>`.
    pub fn regional_price(&self, path: &[&str]) -> Result<f64, PriceError> {
        self.prices.regional(self.region, path)
    }
    /// A price that is the same everywhere: `global.<path…>`.
    pub fn global_price(&self, path: &[&str]) -> Result<f64, PriceError> {
        self.prices.global(path)
    }
    /// A usage assumption that is a number (recorded as used, for the assumptions list).
    pub fn usage(&self, key: &str) -> f64 {
        self.usage.number(key)
    }
    /// A usage assumption that is a word (recorded as used).
    pub fn usage_text(&self, key: &str) -> String {
        self.usage.text(key)
    }
}

/// The string property `key` when it is known now (not a reference resolved at apply).
pub fn known_str<'a>(props: &'a Props, key: &str) -> Option<&'a str> {
    props
        .get(key)
        .filter(|v| !value::contains_unknown(v))
        .and_then(serde_json::Value::as_str)
}

/// A price as people write it: no trailing zeros, at least two decimals ("0.017", "0.25",
/// "0.0000166667").
pub fn price_text(usd: f64) -> String {
    let text = format!("{usd:.10}");
    let trimmed = text.trim_end_matches('0');
    match trimmed.split_once('.') {
        Some((whole, decimals)) if decimals.len() < 2 => format!("{whole}.{decimals:0<2}"),
        Some(_) => trimmed.to_string(),
        None => format!("{trimmed}.00"),
    }
}

/// A count with thousands separators ("1,000,000"); fractions keep their decimals.
pub fn count_text(n: f64) -> String {
    if n.fract() != 0.0 || n.abs() >= 1e15 {
        return format!("{n}");
    }
    let digits = format!("{}", n.abs() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0.0 {
        out.insert(0, '-');
    }
    out
}
