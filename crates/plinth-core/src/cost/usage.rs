//! Usage assumptions: how much a resource is used in a month (requests, storage, data out),
//! for the parts AWS bills by use. Every assumption has a built-in default (given by the
//! resource types' crate); a YAML usage file overrides any of them, nested by section:
//!
//! ```yaml
//! dynamodb: { reads: 5000000, storage_gb: 3 }
//! cloudfront: { transfer_out_gb: 50 }
//! ```
//!
//! Lookups are recorded, so an estimate lists exactly the assumptions it used.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde::Serialize;

use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use crate::stack::check;
use crate::stack::yaml::{self, Node, NodeValue};

/// A built-in assumption: its dotted key, its default and what it counts.
#[derive(Clone, Copy, Debug)]
pub struct UsageDefault {
    pub key: &'static str,
    pub value: DefaultValue,
    /// What the number counts, for the assumptions list ("reads per on-demand table").
    pub meaning: &'static str,
}

#[derive(Clone, Copy, Debug)]
pub enum DefaultValue {
    Number(f64),
    Text(&'static str),
}

impl UsageDefault {
    pub const fn number(key: &'static str, value: f64, meaning: &'static str) -> UsageDefault {
        UsageDefault {
            key,
            value: DefaultValue::Number(value),
            meaning,
        }
    }
    pub const fn text(
        key: &'static str,
        value: &'static str,
        meaning: &'static str,
    ) -> UsageDefault {
        UsageDefault {
            key,
            value: DefaultValue::Text(value),
            meaning,
        }
    }
}

/// An assumption's value.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum UsageValue {
    Number(f64),
    Text(String),
}

impl std::fmt::Display for UsageValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsageValue::Number(n) => write!(f, "{}", super::count_text(*n)),
            UsageValue::Text(t) => write!(f, "{t}"),
        }
    }
}

/// One assumption an estimate used, as it is listed with the estimate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assumption {
    pub key: String,
    pub value: UsageValue,
    pub meaning: String,
    /// The usage file that set it; `None` for the built-in default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

#[derive(Clone, Debug)]
struct Entry {
    value: UsageValue,
    meaning: String,
    from: Option<String>,
}

/// The assumptions in force: the defaults, with any usage file's values over them.
#[derive(Debug)]
pub struct Usage {
    entries: BTreeMap<String, Entry>,
    used: Mutex<BTreeSet<String>>,
}

impl Clone for Usage {
    fn clone(&self) -> Usage {
        Usage {
            entries: self.entries.clone(),
            used: Mutex::new(self.used.lock().map(|u| u.clone()).unwrap_or_default()),
        }
    }
}

impl Usage {
    pub fn new(defaults: &[UsageDefault]) -> Usage {
        let entries = defaults
            .iter()
            .map(|d| {
                let value = match d.value {
                    DefaultValue::Number(n) => UsageValue::Number(n),
                    DefaultValue::Text(t) => UsageValue::Text(t.to_string()),
                };
                let entry = Entry {
                    value,
                    meaning: d.meaning.to_string(),
                    from: None,
                };
                (d.key.to_string(), entry)
            })
            .collect();
        Usage {
            entries,
            used: Mutex::new(BTreeSet::new()),
        }
    }

    /// Puts a usage file's values over the current ones. Unknown keys and values of the
    /// wrong kind are errors with their line and column: a typo must not be silently ignored.
    pub fn override_with(&mut self, file: &SourceFile) -> Result<(), Diagnostics> {
        if file.text.trim().is_empty() {
            return Ok(());
        }
        let root = yaml::parse(file).map_err(|d| Diagnostics(vec![*d]))?;
        let mut diags = Diagnostics::default();
        let mut found = Vec::new();
        self.collect(file, &root, "", &mut found, &mut diags);
        if diags.has_errors() {
            return Err(diags);
        }
        for (key, value) in found {
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.value = value;
                entry.from = Some(file.display_path());
            }
        }
        Ok(())
    }

    /// Walks a map level of the usage file (`prefix` is the dotted path so far).
    fn collect(
        &self,
        file: &SourceFile,
        node: &Node,
        prefix: &str,
        found: &mut Vec<(String, UsageValue)>,
        diags: &mut Diagnostics,
    ) {
        let Some(entries) = node.as_map() else {
            let what = if prefix.is_empty() {
                "the usage file".to_string()
            } else {
                format!("`{prefix}`")
            };
            diags.push(Diagnostic::error(
                file,
                node.span,
                format!("expected a map in {what}, found {}", node.kind()),
            ));
            return;
        };
        for (key, value) in entries {
            let path = if prefix.is_empty() {
                key.name.clone()
            } else {
                format!("{prefix}.{}", key.name)
            };
            if let Some(entry) = self.entries.get(&path) {
                match leaf_value(&entry.value, value) {
                    Ok(v) => found.push((path, v)),
                    Err(message) => diags.push(Diagnostic::error(
                        file,
                        value.span,
                        format!("`{path}`: {message}"),
                    )),
                }
            } else if self.has_section(&path) {
                self.collect(file, value, &path, found, diags);
            } else {
                let allowed = self.names_under(prefix);
                let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
                let context = if prefix.is_empty() {
                    "the usage file".to_string()
                } else {
                    format!("`{prefix}`")
                };
                diags.push(check::unknown_key(
                    file, key.span, &key.name, &allowed, &context,
                ));
            }
        }
    }

    fn has_section(&self, path: &str) -> bool {
        let prefix = format!("{path}.");
        self.entries.keys().any(|k| k.starts_with(&prefix))
    }

    /// The names one level below `prefix` ("dynamodb" → reads, writes, storage_gb).
    fn names_under(&self, prefix: &str) -> Vec<String> {
        let start = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}.")
        };
        let names: BTreeSet<String> = self
            .entries
            .keys()
            .filter_map(|k| k.strip_prefix(start.as_str()))
            .map(|rest| rest.split('.').next().unwrap_or(rest).to_string())
            .collect();
        names.into_iter().collect()
    }

    /// A numeric assumption, recorded as used. Keys come from the types' own defaults, so
    /// a missing one is a programming error: it counts as 0 and is logged.
    pub fn number(&self, key: &str) -> f64 {
        self.mark_used(key);
        match self.entries.get(key).map(|e| &e.value) {
            Some(UsageValue::Number(n)) => *n,
            _ => {
                tracing::warn!(key, "no numeric usage assumption of this name; using 0");
                0.0
            }
        }
    }

    /// A word assumption (a CloudFront geography), recorded as used.
    pub fn text(&self, key: &str) -> String {
        self.mark_used(key);
        match self.entries.get(key).map(|e| &e.value) {
            Some(UsageValue::Text(t)) => t.clone(),
            Some(UsageValue::Number(n)) => n.to_string(),
            None => {
                tracing::warn!(key, "no usage assumption of this name");
                String::new()
            }
        }
    }

    fn mark_used(&self, key: &str) {
        if let Ok(mut used) = self.used.lock() {
            used.insert(key.to_string());
        }
    }

    /// The assumptions looked up so far, by key.
    pub fn used(&self) -> Vec<Assumption> {
        let used = self.used.lock().map(|u| u.clone()).unwrap_or_default();
        used.iter().filter_map(|key| self.assumption(key)).collect()
    }

    /// Every assumption, used or not.
    pub fn all(&self) -> Vec<Assumption> {
        self.entries
            .keys()
            .filter_map(|key| self.assumption(key))
            .collect()
    }

    fn assumption(&self, key: &str) -> Option<Assumption> {
        self.entries.get(key).map(|e| Assumption {
            key: key.to_string(),
            value: e.value.clone(),
            meaning: e.meaning.clone(),
            from: e.from.clone(),
        })
    }
}

/// The file's value for an assumption whose default is `default`: same kind, and numbers
/// not negative.
fn leaf_value(default: &UsageValue, node: &Node) -> Result<UsageValue, String> {
    match (default, &node.value) {
        (UsageValue::Number(_), NodeValue::Int(i)) if *i >= 0 => Ok(UsageValue::Number(*i as f64)),
        (UsageValue::Number(_), NodeValue::Float(f)) if f.is_finite() && *f >= 0.0 => {
            Ok(UsageValue::Number(*f))
        }
        (UsageValue::Number(_), NodeValue::Int(i)) => {
            Err(format!("expected a number of 0 or more, found {i}"))
        }
        (UsageValue::Number(_), NodeValue::Float(f)) => {
            Err(format!("expected a number of 0 or more, found {f}"))
        }
        // A usage figure needs no more digits than a float holds.
        (UsageValue::Number(_), NodeValue::Decimal(text)) => match text.parse::<f64>() {
            Ok(f) if f.is_finite() && f >= 0.0 => Ok(UsageValue::Number(f)),
            _ => Err(format!("expected a number of 0 or more, found {text}")),
        },
        (UsageValue::Number(_), _) => Err(format!(
            "expected a number of 0 or more, found {}",
            node.kind()
        )),
        (UsageValue::Text(_), NodeValue::Str(s)) => Ok(UsageValue::Text(s.clone())),
        (UsageValue::Text(_), _) => Err(format!("expected a word, found {}", node.kind())),
    }
}
