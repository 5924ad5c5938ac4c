//! Plain JSON values with one extra idea: a value not known until apply.
//!
//! Unknown values are a sentinel string so that plans, state and diffs stay plain
//! `serde_json::Value` data that serialises without a custom format. The sentinel
//! contains control characters no YAML plain string can produce by accident.

use serde_json::{Map, Value};

/// The sentinel for a value that is known only after apply.
pub const UNKNOWN: &str = "\u{1}plinth:unknown\u{1}";

/// What plan output prints for an unknown value.
pub const UNKNOWN_DISPLAY: &str = "(known after apply)";

/// What plan output and logs print instead of a sensitive value.
pub const SENSITIVE_DISPLAY: &str = "(sensitive value)";

pub fn unknown() -> Value {
    Value::String(UNKNOWN.to_string())
}

pub fn is_unknown(value: &Value) -> bool {
    matches!(value, Value::String(s) if s == UNKNOWN)
}

/// True when the value or anything inside it is unknown.
pub fn contains_unknown(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(UNKNOWN),
        Value::Array(items) => items.iter().any(contains_unknown),
        Value::Object(map) => map.values().any(contains_unknown),
        _ => false,
    }
}

/// Reads `value[path[0]][path[1]]…` where numeric segments index arrays.
pub fn get_path<'a>(value: &'a Value, path: &[PathSeg]) -> Option<&'a Value> {
    let mut current = value;
    for seg in path {
        current = match (seg, current) {
            (PathSeg::Key(k), Value::Object(map)) => map.get(k)?,
            (PathSeg::Index(i), Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

/// One step into a value: a map key or a list index.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(untagged)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

impl std::fmt::Display for PathSeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathSeg::Key(k) => write!(f, "{k}"),
            PathSeg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Renders a path the way a user writes it: `ingress[0].ports`.
pub fn path_to_string(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSeg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A JSON object, the shape of every resource's properties and attributes.
pub type Props = Map<String, Value>;

/// The listed properties that are set, under the same names: the attributes a type knows
/// before its resource exists (a table's `name`). Unknown values stay unknown.
pub fn pick(props: &Props, keys: &[&str]) -> Props {
    keys.iter()
        .filter_map(|k| props.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// Convenience: the string at `key`, if it is a string.
pub fn str_of<'a>(props: &'a Props, key: &str) -> Option<&'a str> {
    props.get(key).and_then(Value::as_str)
}

/// The string at `key` when it is known: not missing, not a string, nor holding a value only
/// apply will know (semantic checks skip those).
pub fn known_str<'a>(props: &'a Props, key: &str) -> Option<&'a str> {
    props
        .get(key)
        .filter(|v| !contains_unknown(v))
        .and_then(Value::as_str)
}

/// Puts the keys in `order` first, in that order; the rest follow as they were (the
/// canonical key order a type reads and normalizes to, so plans list properties alike).
pub fn reorder(props: &mut Props, order: &[&str]) {
    let mut rest = std::mem::take(props);
    for key in order {
        if let Some(value) = rest.shift_remove(*key) {
            props.insert((*key).to_string(), value);
        }
    }
    props.extend(rest);
}

/// Convenience: the integer at `key`, if it is one.
pub fn i64_of(props: &Props, key: &str) -> Option<i64> {
    props.get(key).and_then(Value::as_i64)
}

/// Convenience: the bool at `key`, if it is one.
pub fn bool_of(props: &Props, key: &str) -> Option<bool> {
    props.get(key).and_then(Value::as_bool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_is_found_at_any_depth() {
        assert!(contains_unknown(&json!({"a": [1, {"b": UNKNOWN}]})));
        assert!(contains_unknown(&json!(format!("prefix-{UNKNOWN}"))));
        assert!(!contains_unknown(&json!({"a": [1, {"b": "x"}]})));
    }

    #[test]
    fn path_reads_nested_values_and_prints_like_the_stack_file() {
        let v = json!({"ingress": [{"ports": 80}]});
        let path = vec![
            PathSeg::Key("ingress".into()),
            PathSeg::Index(0),
            PathSeg::Key("ports".into()),
        ];
        assert_eq!(get_path(&v, &path), Some(&json!(80)));
        assert_eq!(path_to_string(&path), "ingress[0].ports");
    }
}
