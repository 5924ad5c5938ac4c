//! A dated price table: a JSON document with `as_of`, `source`, prices per region under
//! `regions.<region>` and prices that are the same everywhere under `global`. The core
//! looks prices up by path; which paths exist is the resource types' business.

use serde_json::Value;

/// Why a price table cannot be used, or a price is not in it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PriceError {
    #[error("the price table {origin} is not valid JSON: {message}")]
    Unreadable { origin: String, message: String },
    #[error("the price table {origin} has no {field}")]
    MissingField { origin: String, field: String },
    #[error(
        "no prices for region {region} in the price table of {as_of} (it has {known}); \
         add the region to a copy of the table and pass it with --prices FILE"
    )]
    NoRegion {
        region: String,
        as_of: String,
        known: String,
    },
    #[error(
        "no price for {what}{} in the price table of {as_of}; add it to a copy of the table \
         and pass it with --prices FILE",
        region.as_ref().map(|r| format!(" in {r}")).unwrap_or_default()
    )]
    NoPrice {
        what: String,
        region: Option<String>,
        as_of: String,
    },
}

/// A loaded price table.
#[derive(Clone, Debug)]
pub struct PriceTable {
    doc: Value,
    /// The date the prices were recorded (YYYY-MM-DD).
    pub as_of: String,
    /// Where the prices come from, and what to check them against.
    pub source: String,
    /// Where the table was loaded from (a path, or "built in").
    pub origin: String,
}

impl PriceTable {
    /// Parses a table, checking the parts every lookup relies on.
    pub fn parse(text: &str, origin: &str) -> Result<PriceTable, PriceError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| PriceError::Unreadable {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        let field = |name: &str| -> Result<String, PriceError> {
            doc.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
                .ok_or_else(|| PriceError::MissingField {
                    origin: origin.to_string(),
                    field: format!("`{name}` (a string)"),
                })
        };
        let as_of = field("as_of")?;
        let source = field("source")?;
        if !doc.get("regions").is_some_and(Value::is_object) {
            return Err(PriceError::MissingField {
                origin: origin.to_string(),
                field: "`regions` (a map from region to prices)".into(),
            });
        }
        Ok(PriceTable {
            doc,
            as_of,
            source,
            origin: origin.to_string(),
        })
    }

    /// The regions the table has prices for.
    pub fn regions(&self) -> Vec<&str> {
        self.doc
            .get("regions")
            .and_then(Value::as_object)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// `regions.<region>.<path…>`: a price that differs by region.
    pub fn regional(&self, region: &str, path: &[&str]) -> Result<f64, PriceError> {
        let Some(prices) = self.doc.get("regions").and_then(|r| r.get(region)) else {
            return Err(PriceError::NoRegion {
                region: region.to_string(),
                as_of: self.as_of.clone(),
                known: self.regions().join(", "),
            });
        };
        number_at(prices, path).ok_or_else(|| PriceError::NoPrice {
            what: path.join("."),
            region: Some(region.to_string()),
            as_of: self.as_of.clone(),
        })
    }

    /// `global.<path…>`: a price that is the same in every region.
    pub fn global(&self, path: &[&str]) -> Result<f64, PriceError> {
        let prices = self.doc.get("global").unwrap_or(&Value::Null);
        number_at(prices, path).ok_or_else(|| PriceError::NoPrice {
            what: path.join("."),
            region: None,
            as_of: self.as_of.clone(),
        })
    }

    /// A piece of text at `path` from the top (free-tier offers, notes).
    pub fn text(&self, path: &[&str]) -> Option<&str> {
        at(&self.doc, path).and_then(Value::as_str)
    }

    /// Whether the list at `path` holds `item` (the node types a free tier covers).
    pub fn lists(&self, path: &[&str], item: &str) -> bool {
        at(&self.doc, path)
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().any(|v| v.as_str() == Some(item)))
    }
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

/// A price is a number that is not negative; anything else counts as missing.
fn number_at(value: &Value, path: &[&str]) -> Option<f64> {
    at(value, path)
        .and_then(Value::as_f64)
        .filter(|n| n.is_finite() && *n >= 0.0)
}
