//! Structural differences between canonical property values.

use serde_json::Value;

use crate::value::{contains_unknown, Props};

/// Keys whose values differ between `before` and `after` (present in either), in `after`'s
/// order then `before`'s.
pub fn changed_keys(before: &Props, after: &Props) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for k in after.keys().chain(before.keys()) {
        if !keys.contains(k) && before.get(k) != after.get(k) {
            keys.push(k.clone());
        }
    }
    keys
}

/// Whether two canonical values differ, counting any unknown as a difference.
pub fn differs(before: Option<&Value>, after: Option<&Value>) -> bool {
    match (before, after) {
        (_, Some(a)) if contains_unknown(a) => true,
        (b, a) => b != a,
    }
}

/// How a list changed, element by element, treating the list as a set (canonical lists of
/// rules and indexes are sorted, so position carries no meaning).
pub struct ListChange<'a> {
    pub removed: Vec<&'a Value>,
    pub added: Vec<&'a Value>,
    pub kept: usize,
}

pub fn list_change<'a>(before: &'a [Value], after: &'a [Value]) -> ListChange<'a> {
    let removed: Vec<&Value> = before.iter().filter(|v| !after.contains(v)).collect();
    let added: Vec<&Value> = after.iter().filter(|v| !before.contains(v)).collect();
    ListChange {
        kept: after.len() - added.len(),
        removed,
        added,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::UNKNOWN;
    use serde_json::json;

    fn props(v: Value) -> Props {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn changed_keys_covers_added_removed_and_modified() {
        let before = props(json!({"a": 1, "b": 2, "c": 3}));
        let after = props(json!({"a": 1, "b": 5, "d": 4}));
        assert_eq!(changed_keys(&before, &after), vec!["b", "d", "c"]);
    }

    #[test]
    fn unknown_always_differs() {
        assert!(differs(Some(&json!("x")), Some(&json!(UNKNOWN))));
        assert!(!differs(Some(&json!("x")), Some(&json!("x"))));
    }

    #[test]
    fn lists_diff_as_sets() {
        let before = vec![json!(1), json!(2), json!(3)];
        let after = vec![json!(3), json!(1), json!(4)];
        let c = list_change(&before, &after);
        assert_eq!(c.removed, vec![&json!(2)]);
        assert_eq!(c.added, vec![&json!(4)]);
        assert_eq!(c.kept, 2);
    }
}
