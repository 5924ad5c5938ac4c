//! Plans as people read them (Terraform's conventions) and as machines read them (`--json`).
//! Sensitive properties, sensitive outputs and sensitive variable values are masked in both.

use std::fmt::Write;

use anstyle::{AnsiColor, Style};
use serde_json::{json, Map, Value};

use crate::plan::diff;
use crate::plan::{Action, Mode, Plan, ResourceChange};
use crate::resource::Registry;
use crate::value::{self, Props, SENSITIVE_DISPLAY, UNKNOWN, UNKNOWN_DISPLAY};

fn paint(color: bool, style: Style, text: &str) -> String {
    if color {
        format!("{}{text}{}", style.render(), style.render_reset())
    } else {
        text.to_string()
    }
}

fn action_style(action: Action) -> Style {
    let c = match action {
        Action::Create => AnsiColor::Green,
        Action::Update => AnsiColor::Yellow,
        Action::Replace => AnsiColor::Magenta,
        Action::Delete => AnsiColor::Red,
        Action::Read => AnsiColor::Cyan,
        Action::NoOp => AnsiColor::White,
    };
    Style::new().fg_color(Some(c.into()))
}

/// Whether property `prop` of `type_name` is sensitive.
fn is_sensitive(registry: &Registry, type_name: &str, prop: &str) -> bool {
    registry
        .schema(type_name)
        .and_then(|s| s.prop(prop))
        .is_some_and(|p| p.sensitive)
}

/// Whether plans show property `prop` of `type_name` as a hash.
fn is_shown_as_hash(registry: &Registry, type_name: &str, prop: &str) -> bool {
    registry
        .schema(type_name)
        .and_then(|s| s.prop(prop))
        .is_some_and(|p| p.shown_as_hash)
}

/// A text as plans show a long one: `sha256:0123456789ab… (412 bytes)`.
fn hash_text(value: &Value) -> Value {
    use sha2::{Digest, Sha256};
    let Some(text) = value.as_str().filter(|_| !value::contains_unknown(value)) else {
        return value.clone();
    };
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    Value::String(format!("sha256:{hex}… ({} bytes)", text.len()))
}

/// How wide a plan is drawn where nothing says otherwise (a pipe, CI).
pub const DEFAULT_WIDTH: usize = 100;

/// Plans longer than this many resources are grouped by resource type.
const GROUP_AFTER: usize = 10;

/// A list being created with more elements than this shows its count and its first few.
const LONG_LIST: usize = 10;
const LIST_HEAD: usize = 3;

/// How a plan is drawn: coloured or not, and how wide a line may be before a value is laid
/// out one element and one attribute per line.
#[derive(Clone, Copy, Debug)]
pub struct Draw {
    pub color: bool,
    pub width: usize,
}

/// The whole plan for a terminal, [`DEFAULT_WIDTH`] columns wide.
pub fn render(plan: &Plan, registry: &Registry, color: bool) -> String {
    render_at(
        plan,
        registry,
        Draw {
            color,
            width: DEFAULT_WIDTH,
        },
    )
}

/// The whole plan, drawn `draw.width` columns wide. Long plans are grouped by resource
/// type, the types in the order apply reaches them.
pub fn render_at(plan: &Plan, registry: &Registry, draw: Draw) -> String {
    let color = draw.color;
    let mut out = String::new();
    let changed: Vec<&ResourceChange> = plan
        .resources
        .iter()
        .filter(|r| r.action != Action::NoOp || r.adopted.is_some())
        .collect();
    if !changed.is_empty() {
        let _ = writeln!(
            out,
            "plinth will perform these actions on stack `{}` (workspace `{}`):\n",
            plan.stack, plan.workspace
        );
    }
    if changed.len() > GROUP_AFTER {
        for (type_name, group) in by_type(&changed) {
            let heading = format!("# {type_name} ({})", group.len());
            let _ = writeln!(out, "  {}\n", paint(color, Style::new().bold(), &heading));
            for r in group {
                render_resource(&mut out, r, registry, draw, plan.mode);
            }
        }
    } else {
        for r in changed {
            render_resource(&mut out, r, registry, draw, plan.mode);
        }
    }
    render_outputs(&mut out, plan, color);
    if let Some(at) = &plan.expires_at {
        if plan.mode == Mode::Apply {
            let _ = writeln!(out, "Environment expires at {at} ({}).", time_left(at));
        }
    }
    let _ = writeln!(out, "{}", summary(plan));
    mask_values(&out, &plan.sensitive_values)
}

/// The changes grouped by type, each type where its first resource comes in the plan's
/// order (the order apply works in), each group in that order too.
fn by_type<'a>(changes: &[&'a ResourceChange]) -> Vec<(&'a str, Vec<&'a ResourceChange>)> {
    let mut groups: Vec<(&str, Vec<&ResourceChange>)> = Vec::new();
    for r in changes {
        match groups.iter_mut().find(|(t, _)| *t == r.type_name) {
            Some((_, group)) => group.push(r),
            None => groups.push((r.type_name.as_str(), vec![r])),
        }
    }
    groups
}

/// "Plan: 1 to add, 2 to change, 0 to destroy." or the no-changes sentence.
pub fn summary(plan: &Plan) -> String {
    if !plan.has_changes() {
        return "No changes. The stack matches what is deployed.".into();
    }
    let c = plan.counts();
    format!(
        "Plan: {} to add, {} to change, {} to destroy.",
        c.to_add(),
        c.update,
        c.to_destroy()
    )
}

fn header(r: &ResourceChange) -> String {
    let what = match r.action {
        Action::Create if r.adopted == Some(false) => {
            "will be created (an earlier create did not finish, and nothing was found to adopt)"
                .to_string()
        }
        Action::Create => "will be created".to_string(),
        Action::Update => "will be updated in place".to_string(),
        Action::Replace => format!(
            "must be replaced ({} forces replacement)",
            r.replace_reasons.join(", ")
        ),
        Action::Delete if r.adopted == Some(false) => {
            "will be forgotten (it is gone, or was only looked up)".to_string()
        }
        Action::Delete => "will be destroyed".to_string(),
        Action::Read => "will be read".to_string(),
        Action::NoOp if r.adopted == Some(true) => {
            "was created by an interrupted run and will be adopted".to_string()
        }
        Action::NoOp => "has no changes".to_string(),
    };
    let id =
        r.id.as_deref()
            .filter(|i| !i.is_empty())
            .map(|i| format!(" [{i}]"))
            .unwrap_or_default();
    format!("{} ({}, {}){id} {what}", r.name, r.type_name, r.region)
}

fn render_resource(
    out: &mut String,
    r: &ResourceChange,
    registry: &Registry,
    draw: Draw,
    mode: Mode,
) {
    let color = draw.color;
    let style = action_style(r.action);
    let symbol = r.action.symbol(r.creates_first());
    let _ = writeln!(
        out,
        "  {} {}",
        paint(color, style.bold(), &format!("{symbol:>3}")),
        header(r)
    );
    let empty = Props::new();
    let before = r.before.as_ref().unwrap_or(&empty);
    let after = r.after.as_ref().unwrap_or(&empty);
    let mut keys: Vec<String> = match r.action {
        Action::Create | Action::Read => after.keys().cloned().collect(),
        Action::Update | Action::Replace => diff::changed_keys(before, after)
            .into_iter()
            .filter(|k| diff::differs(before.get(k), after.get(k)))
            .collect(),
        Action::Delete if mode == Mode::Destroy => Vec::new(),
        Action::Delete | Action::NoOp => Vec::new(),
    };
    // In the order the type declares its properties: the order its documentation uses.
    if let Some(schema) = registry.schema(&r.type_name) {
        let rank = |k: &String| {
            schema
                .properties
                .iter()
                .position(|p| p.name == k)
                .unwrap_or(usize::MAX)
        };
        keys.sort_by_key(rank);
    }
    let width = keys.iter().map(String::len).max().unwrap_or(0);
    for key in keys {
        let sensitive = is_sensitive(registry, &r.type_name, &key);
        let forces = r.action == Action::Replace && r.replace_reasons.contains(&key);
        let hashed = is_shown_as_hash(registry, &r.type_name, &key);
        let shown = |v: Option<&Value>| v.map(|v| if hashed { hash_text(v) } else { v.clone() });
        render_prop(
            out,
            (&key, width),
            shown(before.get(&key)).as_ref(),
            shown(after.get(&key)).as_ref(),
            Shown {
                sensitive,
                forces,
                creating: r.action != Action::Update,
            },
            draw,
        );
    }
    let create_first = r.create_first_because.as_ref().map(|holders| {
        format!(
            "the new one is created first and the old one destroyed last: {} still {} it",
            crate::plan::replace_order::names(holders),
            if holders.len() == 1 { "uses" } else { "use" }
        )
    });
    for note in create_first.iter().chain(&r.notes) {
        let _ = writeln!(
            out,
            "      {}",
            paint(color, Style::new().dimmed(), &format!("# {note}"))
        );
    }
    out.push('\n');
}

/// How one property is shown.
#[derive(Clone, Copy)]
struct Shown {
    sensitive: bool,
    /// Its change is why the resource is replaced.
    forces: bool,
    /// The value is all new (a create, a replacement): a long list shows only its start.
    creating: bool,
}

/// Where a property's lines start: six spaces, the sign and a space.
const PROP_INDENT: usize = 8;
/// Where a changed list's elements start.
const ELEMENT_INDENT: usize = 12;

fn render_prop(
    out: &mut String,
    (key, width): (&str, usize),
    before: Option<&Value>,
    after: Option<&Value>,
    how: Shown,
    draw: Draw,
) {
    let color = draw.color;
    let note = if how.forces {
        paint(
            color,
            Style::new().fg_color(Some(AnsiColor::Magenta.into())),
            "  # forces replacement",
        )
    } else {
        String::new()
    };
    // A value after `key = `, laid out on several lines if one would be too wide.
    let show = |v: &Value, collapse: bool| {
        if how.sensitive {
            SENSITIVE_DISPLAY.to_string()
        } else {
            layout(
                v,
                PROP_INDENT,
                PROP_INDENT + width + 3,
                draw.width,
                collapse,
            )
            .join("\n")
        }
    };
    match (before, after) {
        (None, Some(a)) => {
            let _ = writeln!(
                out,
                "      {} {key:<width$} = {}{note}",
                sign(color, '+'),
                show(a, how.creating)
            );
        }
        (Some(b), None) => {
            let _ = writeln!(
                out,
                "      {} {key:<width$} = {}{note}",
                sign(color, '-'),
                show(b, false)
            );
        }
        (Some(Value::Array(b)), Some(Value::Array(a)))
            if !how.sensitive && !value::contains_unknown(&Value::Array(a.clone())) =>
        {
            let _ = writeln!(out, "      {} {key}{note}", sign(color, '~'));
            let change = diff::list_change(b, a);
            let element =
                |v: &Value| layout(v, ELEMENT_INDENT, ELEMENT_INDENT, draw.width, false).join("\n");
            for v in change.removed {
                let _ = writeln!(out, "          {} {}", sign(color, '-'), element(v));
            }
            for v in change.added {
                let _ = writeln!(out, "          {} {}", sign(color, '+'), element(v));
            }
            if change.kept > 0 {
                let _ = writeln!(
                    out,
                    "            ({} unchanged {} hidden)",
                    change.kept,
                    if change.kept == 1 {
                        "element"
                    } else {
                        "elements"
                    }
                );
            }
        }
        (Some(Value::Object(b)), Some(Value::Object(a))) if !how.sensitive => {
            let _ = writeln!(out, "      {} {key}{note}", sign(color, '~'));
            let inner_width = diff::changed_keys(b, a)
                .iter()
                .map(String::len)
                .max()
                .unwrap_or(0);
            let at = ELEMENT_INDENT + inner_width + 3;
            let shown = |v: &Value| layout(v, ELEMENT_INDENT, at, draw.width, false).join("\n");
            for k in diff::changed_keys(b, a) {
                match (b.get(&k), a.get(&k)) {
                    (None, Some(v)) => {
                        let _ = writeln!(
                            out,
                            "          {} {k:<inner_width$} = {}",
                            sign(color, '+'),
                            shown(v)
                        );
                    }
                    (Some(v), None) => {
                        let _ = writeln!(
                            out,
                            "          {} {k:<inner_width$} = {}",
                            sign(color, '-'),
                            shown(v)
                        );
                    }
                    (Some(x), Some(y)) => {
                        let _ = writeln!(
                            out,
                            "          {} {k:<inner_width$} = {} → {}",
                            sign(color, '~'),
                            inline(x),
                            inline(y)
                        );
                    }
                    (None, None) => {}
                }
            }
        }
        (Some(b), Some(a)) => {
            let _ = writeln!(
                out,
                "      {} {key:<width$} = {} → {}{note}",
                sign(color, '~'),
                show(b, false),
                show(a, false)
            );
        }
        (None, None) => {}
    }
}

/// A value as lines: on one line (`inline`) when it fits from column `at` within `width`,
/// else one element of a list and one attribute of a map per line, Terraform's way, each
/// nested value laid out the same way. The first line continues a line already begun;
/// the others carry their own indentation, `indent` being that of the line the value
/// belongs to. `collapse`: a list of more than ten elements shows its first three and how
/// many there are (the value is being created, so nothing is hidden that was there).
fn layout(v: &Value, indent: usize, at: usize, width: usize, collapse: bool) -> Vec<String> {
    let one = inline(v);
    let fits = at + one.chars().count() <= width;
    let inner = indent + 4;
    let pad = |n: usize| " ".repeat(n);
    match v {
        Value::Array(items)
            if !items.is_empty() && (!fits || (collapse && items.len() > LONG_LIST)) =>
        {
            let shown = match collapse && items.len() > LONG_LIST {
                true => &items[..LIST_HEAD],
                false => &items[..],
            };
            let mut lines = vec!["[".to_string()];
            for item in shown {
                let mut element = layout(item, inner, inner, width, false);
                element[0] = format!("{}{}", pad(inner), element[0]);
                if let Some(last) = element.last_mut() {
                    last.push(',');
                }
                lines.extend(element);
            }
            if shown.len() < items.len() {
                lines.push(format!(
                    "{}# … and {} more: {} elements in all",
                    pad(inner),
                    items.len() - shown.len(),
                    items.len()
                ));
            }
            lines.push(format!("{}]", pad(indent)));
            lines
        }
        Value::Object(map) if !map.is_empty() && !fits => {
            let key_width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
            let mut lines = vec!["{".to_string()];
            for (k, item) in map {
                let mut attr = layout(item, inner, inner + key_width + 3, width, false);
                attr[0] = format!("{}{k:<key_width$} = {}", pad(inner), attr[0]);
                lines.extend(attr);
            }
            lines.push(format!("{}}}", pad(indent)));
            lines
        }
        _ => vec![one],
    }
}

fn sign(color: bool, c: char) -> String {
    let action = match c {
        '+' => Action::Create,
        '-' => Action::Delete,
        _ => Action::Update,
    };
    paint(color, action_style(action), &c.to_string())
}

fn render_outputs(out: &mut String, plan: &Plan, color: bool) {
    let changed: Vec<_> = plan
        .outputs
        .iter()
        .filter(|o| o.action.is_change())
        .collect();
    if changed.is_empty() {
        return;
    }
    let _ = writeln!(out, "Changes to outputs:");
    let width = changed.iter().map(|o| o.name.len()).max().unwrap_or(0);
    for o in changed {
        let show = |v: &Option<Value>| match v {
            _ if o.sensitive => SENSITIVE_DISPLAY.to_string(),
            Some(v) => inline(v),
            None => "null".into(),
        };
        let line = match o.action {
            Action::Create => format!(
                "{} {:<width$} = {}",
                sign(color, '+'),
                o.name,
                show(&o.after)
            ),
            Action::Delete => format!(
                "{} {:<width$} = {}",
                sign(color, '-'),
                o.name,
                show(&o.before)
            ),
            _ => format!(
                "{} {:<width$} = {} → {}",
                sign(color, '~'),
                o.name,
                show(&o.before),
                show(&o.after)
            ),
        };
        let _ = writeln!(out, "  {line}");
    }
    out.push('\n');
}

/// A value on one line: strings quoted, maps as `{ k = v }`, unknown as "(known after apply)".
pub fn inline(v: &Value) -> String {
    match v {
        Value::String(s) if s == UNKNOWN => UNKNOWN_DISPLAY.to_string(),
        Value::String(s) if s.contains(UNKNOWN) => UNKNOWN_DISPLAY.to_string(),
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{k} = {}", inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Replaces every occurrence of a sensitive value in text.
pub fn mask_values(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(s.as_str(), SENSITIVE_DISPLAY);
        if let Ok(quoted) = serde_json::to_string(s) {
            out = out.replace(quoted.trim_matches('"'), SENSITIVE_DISPLAY);
        }
    }
    out
}

/// Time left until an RFC 3339 instant, as "7h 59m left" or "expired 5m ago".
pub fn time_left(at: &str) -> String {
    let Ok(when) = humantime::parse_rfc3339(at) else {
        return "unknown".into();
    };
    let now = std::time::SystemTime::now();
    match when.duration_since(now) {
        Ok(left) => format!("{} left", short_span(left)),
        Err(e) => format!("expired {} ago", short_span(e.duration())),
    }
}

/// A span to the minute, as people write it: `2d 23h 59m`, `7h 5m`, `3m`.
pub fn short_span(d: std::time::Duration) -> String {
    let minutes = d.as_secs() / 60;
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let parts: Vec<String> = [(days, "d"), (hours, "h"), (mins, "m")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0m".into()
    } else {
        parts.join(" ")
    }
}

/// The plan for `plan --json`: masked, templates left out, unknowns as null with their
/// property names listed in `after_unknown`.
pub fn to_display_json(plan: &Plan, registry: &Registry) -> Value {
    let resources: Vec<Value> = plan
        .resources
        .iter()
        .map(|r| {
            let mask = |props: &Option<Props>| {
                props
                    .as_ref()
                    .map(|p| mask_props(p, registry, &r.type_name))
            };
            let after_unknown: Vec<&String> = r
                .after
                .iter()
                .flat_map(|a| a.iter())
                .filter(|(_, v)| value::contains_unknown(v))
                .map(|(k, _)| k)
                .collect();
            json!({
                "name": r.name,
                "type": r.type_name,
                "region": r.region,
                "action": r.action,
                "replace_reasons": r.replace_reasons,
                "create_first_because": r.create_first_because,
                "notes": r.notes,
                "id": r.id,
                "before": mask(&r.before),
                "after": mask(&r.after).map(|a| strip_unknown(Value::Object(a))),
                "after_unknown": after_unknown,
                "depends_on": r.deps,
            })
        })
        .collect();
    let outputs: Vec<Value> = plan
        .outputs
        .iter()
        .map(|o| {
            let show = |v: &Option<Value>| match v {
                Some(_) if o.sensitive => json!(SENSITIVE_DISPLAY),
                Some(v) => strip_unknown(v.clone()),
                None => Value::Null,
            };
            json!({"name": o.name, "action": o.action, "before": show(&o.before), "after": show(&o.after), "sensitive": o.sensitive})
        })
        .collect();
    let c = plan.counts();
    let doc = json!({
        "format_version": plan.format_version,
        "stack": plan.stack,
        "workspace": plan.workspace,
        "mode": plan.mode,
        "serial": plan.serial,
        "lineage": plan.lineage,
        "expires_at": plan.expires_at,
        "resource_changes": resources,
        "output_changes": outputs,
        "summary": {"add": c.create + c.replace, "change": c.update, "destroy": c.delete + c.replace, "has_changes": plan.has_changes()},
    });
    let text = mask_values(&doc.to_string(), &plan.sensitive_values);
    serde_json::from_str(&text).unwrap_or(doc)
}

fn mask_props(props: &Props, registry: &Registry, type_name: &str) -> Props {
    props
        .iter()
        .map(|(k, v)| {
            let shown = if is_sensitive(registry, type_name, k) {
                json!(SENSITIVE_DISPLAY)
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect::<Map<_, _>>()
}

fn strip_unknown(v: Value) -> Value {
    match v {
        Value::String(s) if s.contains(UNKNOWN) => Value::Null,
        Value::Array(items) => Value::Array(items.into_iter().map(strip_unknown).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, strip_unknown(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_values_read_like_the_stack_file() {
        assert_eq!(
            inline(&json!({"name": "UserId", "type": "S"})),
            r#"{ name = "UserId", type = "S" }"#
        );
        assert_eq!(inline(&json!([1, "a"])), r#"[1, "a"]"#);
        assert_eq!(inline(&json!(UNKNOWN)), UNKNOWN_DISPLAY);
    }

    #[test]
    fn secrets_are_masked_wherever_they_appear() {
        let text = "token = \"s3cr3t-value\" and again s3cr3t-value";
        let masked = mask_values(text, &["s3cr3t-value".to_string()]);
        assert!(!masked.contains("s3cr3t"), "{masked}");
        assert_eq!(masked.matches(SENSITIVE_DISPLAY).count(), 2);
    }
}
