//! What changed outside plinth: every resource in the state read again and compared with
//! what plinth last applied (the state), not with the stack, so an edited stack file is
//! not mistaken for a change someone made in the console.

use serde::Serialize;
use serde_json::Value;

use crate::plan::planner::{self, keep_actual, PlanError, PlanRequest};
use crate::resource::Registry;
use crate::schema::TypeKind;
use crate::state::{ResourceState, Status};
use crate::value::{Props, SENSITIVE_DISPLAY};

/// One resource that is not as plinth left it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Drift {
    /// The logical name in the stack.
    pub resource: String,
    pub type_name: String,
    pub id: String,
    /// `None`: the resource is gone.
    pub changes: Option<Vec<PropertyDrift>>,
}

/// One property, where AWS no longer has what plinth applied.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PropertyDrift {
    /// `capacity.read`, `ingress`.
    pub property: String,
    /// What plinth applied (`None`: it set nothing there).
    pub expected: Option<Value>,
    /// What AWS has now (`None`: nothing).
    pub actual: Option<Value>,
}

impl Drift {
    pub fn is_gone(&self) -> bool {
        self.changes.is_none()
    }
}

/// Reads every resource the state holds and lists those that differ from the state, in the
/// state's order. Resources plinth was still creating or deleting, and lookups, are left
/// out: their state is not a settled expectation. Sensitive properties are masked.
pub async fn detect(req: &PlanRequest<'_>) -> Result<Vec<Drift>, PlanError> {
    planner::check_account(req)?;
    let refreshed = planner::refresh(req).await?;
    let mut drifted = Vec::new();
    for (name, rs) in &req.state.resources {
        if !settled(req.registry, rs) {
            continue;
        }
        let Some(found) = refreshed.get(name) else {
            continue;
        };
        let changes = match &found.observed {
            None => None,
            Some(observed) => {
                let changes = compare(req.registry, rs, &observed.props);
                if changes.is_empty() {
                    continue;
                }
                Some(changes)
            }
        };
        drifted.push(Drift {
            resource: name.clone(),
            type_name: rs.type_name.clone(),
            id: rs.id.clone(),
            changes,
        });
    }
    Ok(drifted)
}

fn settled(registry: &Registry, rs: &ResourceState) -> bool {
    rs.status == Status::Ready
        && registry
            .schema(&rs.type_name)
            .is_some_and(|s| s.kind != TypeKind::Lookup)
}

/// The properties where `actual` differs from what the state says was applied; what the
/// stack leaves to AWS and what `ignore_changes` names are not expectations.
fn compare(registry: &Registry, rs: &ResourceState, actual: &Props) -> Vec<PropertyDrift> {
    let Some(schema) = registry.schema(&rs.type_name) else {
        return Vec::new();
    };
    let mut expected = rs.props.clone();
    keep_actual(schema, &mut expected, actual, &rs.lifecycle.ignore_changes);
    let mut out = Vec::new();
    // In the order the type declares its properties, as plans show them.
    let mut keys: Vec<&String> = expected.keys().chain(actual.keys()).collect();
    keys.sort_by_key(|k| {
        (
            schema.properties.iter().position(|p| p.name == k.as_str()),
            *k,
        )
    });
    keys.dedup();
    for key in keys {
        let first = out.len();
        differences(key, expected.get(key), actual.get(key), &mut out);
        if schema.prop(key).is_some_and(|p| p.sensitive) {
            for change in &mut out[first..] {
                change.expected = change.expected.as_ref().map(|_| masked());
                change.actual = change.actual.as_ref().map(|_| masked());
            }
        }
    }
    out
}

fn masked() -> Value {
    Value::String(SENSITIVE_DISPLAY.to_string())
}

/// Maps are compared key by key (`capacity.read`); anything else as a whole.
fn differences(
    path: &str,
    expected: Option<&Value>,
    actual: Option<&Value>,
    out: &mut Vec<PropertyDrift>,
) {
    if !crate::plan::diff::differs(expected, actual) {
        return;
    }
    if let (Some(Value::Object(e)), Some(Value::Object(a))) = (expected, actual) {
        let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            differences(&format!("{path}.{key}"), e.get(key), a.get(key), out);
        }
        return;
    }
    out.push(PropertyDrift {
        property: path.to_string(),
        expected: expected.cloned(),
        actual: actual.cloned(),
    });
}

/// Drift as the text `plinth drift` prints for one environment: a table of resource,
/// property, expected and actual, values on one line, sensitive variable values masked.
pub fn render(drifted: &[Drift], secrets: &[String]) -> String {
    let show = |v: &Option<Value>| {
        v.as_ref()
            .map_or_else(|| "(none)".to_string(), crate::plan::render::inline)
    };
    let mut rows: Vec<[String; 4]> = vec![[
        "resource".into(),
        "property".into(),
        "expected".into(),
        "actual".into(),
    ]];
    for d in drifted {
        let resource = format!("{} ({})", d.resource, d.type_name);
        match &d.changes {
            None => rows.push([
                resource,
                "-".into(),
                format!("exists ({})", d.id),
                "deleted outside plinth".into(),
            ]),
            Some(changes) => rows.extend(changes.iter().map(|c| {
                [
                    resource.clone(),
                    c.property.clone(),
                    show(&c.expected),
                    show(&c.actual),
                ]
            })),
        }
    }
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line = format!(
            "  {:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    crate::plan::render::mask_values(&out, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{canonical, ready, Harness};
    use serde_json::json;

    #[test]
    fn drift_names_each_changed_leaf_masks_secrets_and_skips_what_is_ignored() {
        let h = Harness::new();
        let applied = json!({"name": "a", "size": 1, "secret": "hunter22", "mode": "fast"});
        let mut rs = ready(&h.cloud, "a", canonical("a", applied));
        rs.lifecycle.ignore_changes = vec!["mode".into()];
        let mut actual = rs.props.clone();
        actual.insert("size".into(), json!(2));
        actual.insert("secret".into(), json!("changed-by-hand"));
        actual.insert("mode".into(), json!("slow"));
        if let Some(Value::Object(tags)) = actual.get_mut("tags") {
            tags.insert("owner".into(), json!("bruno"));
        }
        let found = compare(&h.registry, &rs, &actual);
        let paths: Vec<&str> = found.iter().map(|c| c.property.as_str()).collect();
        assert_eq!(paths, ["size", "secret", "tags.owner"]);
        assert_eq!(found[0].expected, Some(json!(1)));
        assert_eq!(found[0].actual, Some(json!(2)));
        assert_eq!(found[1].expected, Some(masked()));
        assert_eq!(found[1].actual, Some(masked()));
        assert_eq!(
            (found[2].expected.clone(), found[2].actual.clone()),
            (None, Some(json!("bruno")))
        );
        let text = render(
            &[Drift {
                resource: "a".into(),
                type_name: "test.thing".into(),
                id: rs.id.clone(),
                changes: Some(found),
            }],
            &[],
        );
        assert!(
            !text.contains("hunter22") && !text.contains("changed-by-hand"),
            "{text}"
        );
        // Unchanged, nothing is reported.
        assert!(compare(&h.registry, &rs, &rs.props.clone()).is_empty());
    }
}
