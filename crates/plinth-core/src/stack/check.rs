//! Checks expressions against a resource type's declared shapes, with positions.

use serde_json::Value;

use crate::diag::{Diagnostic, Diagnostics, SourceFile, Span};
use crate::schema::{Prop, Shape, TypeSchema};
use crate::stack::expr::{Expr, SpannedExpr, Target};

/// "unknown key `x` in …; expected one of …", with a suggestion when one is close.
pub fn unknown_key(
    file: &SourceFile,
    span: Span,
    key: &str,
    allowed: &[&str],
    context: &str,
) -> Diagnostic {
    let d = Diagnostic::error(
        file,
        span,
        format!(
            "unknown key `{key}` in {context}; expected one of: {}",
            allowed.join(", ")
        ),
    );
    match did_you_mean(key, allowed) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d,
    }
}

/// An unknown key among `props` (plus `reserved` keys): when it is what the AWS API or
/// Terraform calls one of them, in any case or spelling (`num_cache_nodes`,
/// `NumCacheNodes`), that property is named; else the closest name.
pub fn unknown_prop(
    file: &SourceFile,
    span: Span,
    key: &str,
    props: &[Prop],
    reserved: &[&str],
    context: &str,
) -> Diagnostic {
    let mut allowed: Vec<&str> = props.iter().map(|p| p.name).collect();
    allowed.extend(reserved);
    let flat = flatten(key);
    let same = props.iter().find(|p| flatten(p.name) == flat);
    let alias = props
        .iter()
        .find(|p| p.aliases.iter().any(|a| flatten(a) == flat));
    let d = unknown_key(file, span, key, &allowed, context);
    match same.or(alias) {
        Some(p) => {
            let why = if same.is_some() {
                String::new()
            } else {
                format!(" (`{key}` is what the AWS API or Terraform calls it)")
            };
            d.with_help(format!("did you mean `{}`?{why}", p.name))
        }
        None => d,
    }
}

/// A name without case or separators: `NumCacheNodes`, `num-cache-nodes` → `numcachenodes`.
fn flatten(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The closest candidate within a small edit distance.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edits between two words, a swap of neighbours counting as one (`prot` → `port`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Resolves the shape of a resource attribute reference, for whole-reference typing.
pub trait AttrShapes {
    fn attr_shape(&self, resource: &str, attr: &str) -> Option<Shape>;
}

/// Checks one resource's properties (a map expression) against its type.
pub fn check_props(
    file: &SourceFile,
    schema: &TypeSchema,
    props: &SpannedExpr,
    name_span: Span,
    attrs: &dyn AttrShapes,
    diags: &mut Diagnostics,
) {
    let checker = Checker { file, attrs };
    let context = format!("a {} resource", schema.type_name);
    checker.check_object(&schema.properties, props, name_span, &context, "", diags);
}

struct Checker<'a> {
    file: &'a SourceFile,
    attrs: &'a dyn AttrShapes,
}

impl Checker<'_> {
    fn check_object(
        &self,
        props: &[Prop],
        value: &SpannedExpr,
        owner_span: Span,
        context: &str,
        path: &str,
        diags: &mut Diagnostics,
    ) {
        let Expr::Map(entries) = &value.expr else {
            return self.check_other(&Shape::Object(props.to_vec()), value, diags);
        };
        for (key, v) in entries {
            let inner = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let Some(p) = props.iter().find(|p| p.name == key) else {
                diags.push(unknown_prop(
                    self.file,
                    v.key_span,
                    key,
                    props,
                    &[],
                    context,
                ));
                continue;
            };
            let mut found = Diagnostics::default();
            self.check(&p.shape, v, &inner, &mut found);
            let hint = sibling_hint(props, p, v);
            for mut d in found.0 {
                if d.span == v.span && d.help.is_none() {
                    d.help = hint.clone();
                }
                diags.push(d);
            }
        }
        for p in props.iter().filter(|p| p.required) {
            let given = |key: &str| entries.iter().any(|(k, _)| k == key);
            let prefix = p.prefix_max.and(crate::schema::prefix_key(p.name));
            if let Some(prefix) = prefix.filter(|k| given(k)) {
                if given(p.name) {
                    diags.push(Diagnostic::error(
                        self.file,
                        owner_span,
                        format!("{context} has both `{}` and `{prefix}`: give one", p.name),
                    ));
                }
                continue;
            }
            if !given(p.name) {
                diags.push(Diagnostic::error(
                    self.file,
                    owner_span,
                    format!(
                        "missing required key `{}` in {context}: expected {}",
                        p.name,
                        p.shape.describe()
                    ),
                ));
            }
        }
    }

    /// Checks a value against a shape; `path` names it in messages (`ingress[0]`).
    fn check(&self, shape: &Shape, value: &SpannedExpr, path: &str, diags: &mut Diagnostics) {
        // A whole reference to a list or map variable was bound to a literal list or map:
        // check its elements like written ones, at the reference's place.
        if let Some(text) = match &value.expr {
            Expr::Lit(v) => crate::decimal::tagged_text(v),
            _ => None,
        } {
            if !matches!(shape, Shape::Any) {
                diags.push(Diagnostic::error(
                    self.file,
                    value.span,
                    format!(
                        "{text} has more digits than this property holds: expected {}",
                        shape.describe()
                    ),
                ));
            }
            return;
        }
        if let Expr::Lit(v @ (Value::Array(_) | Value::Object(_))) = &value.expr {
            return self.check(shape, &structured(v, value.span), path, diags);
        }
        match shape {
            Shape::Object(props) => {
                let context = format!("`{path}`");
                self.check_object(props, value, value.span, &context, path, diags)
            }
            Shape::List(item) => match &value.expr {
                Expr::List(items) => items
                    .iter()
                    .enumerate()
                    .for_each(|(i, v)| self.check(item, v, &format!("{path}[{i}]"), diags)),
                _ => self.check_other(shape, value, diags),
            },
            Shape::Map(inner) => match &value.expr {
                Expr::Map(entries) => entries
                    .iter()
                    .for_each(|(k, v)| self.check(inner, v, &format!("{path}.{k}"), diags)),
                _ => self.check_other(shape, value, diags),
            },
            Shape::OneOf(shapes) => {
                let fits = shapes.iter().find(|s| {
                    let mut trial = Diagnostics::default();
                    self.check(s, value, path, &mut trial);
                    !trial.has_errors()
                });
                if fits.is_none() {
                    diags.push(self.one_of_mismatch(shapes, shape, value));
                }
            }
            _ => self.check_other(shape, value, diags),
        }
    }

    /// Scalars, references and structure mismatches.
    fn check_other(&self, shape: &Shape, value: &SpannedExpr, diags: &mut Diagnostics) {
        match &value.expr {
            Expr::Lit(v) => {
                if let Some(problem) = scalar_problem(shape, v) {
                    diags.push(Diagnostic::error(self.file, value.span, problem));
                }
            }
            Expr::Ref(r) => {
                if let Target::Resource {
                    resource,
                    attr,
                    path,
                } = &r.target
                {
                    let Some(found) = self.attrs.attr_shape(resource, attr) else {
                        return; // dangling references are reported once, elsewhere
                    };
                    if path.is_empty() && !compatible(&found, shape) {
                        diags.push(Diagnostic::error(
                            self.file,
                            value.span,
                            format!(
                                "`${{{}}}` is {}, expected {}",
                                r.target,
                                found.describe(),
                                shape.describe()
                            ),
                        ));
                    }
                }
            }
            Expr::Concat(_) => {
                if !compatible(&Shape::String, shape) {
                    diags.push(self.mismatch(shape, value));
                }
            }
            Expr::List(_) | Expr::Map(_) => {
                if !matches!(shape, Shape::Any) {
                    diags.push(self.mismatch(shape, value));
                }
            }
        }
    }

    /// For a literal of the right kind but the wrong value (a port out of range), the
    /// specific problem says more than "expected A or B".
    fn one_of_mismatch(&self, shapes: &[Shape], shape: &Shape, value: &SpannedExpr) -> Diagnostic {
        if let Expr::Lit(v) = &value.expr {
            let specific = shapes
                .iter()
                .filter_map(|s| scalar_problem(s, v))
                .find(|p| !p.starts_with("expected "));
            if let Some(problem) = specific {
                return Diagnostic::error(self.file, value.span, problem);
            }
        }
        self.mismatch(shape, value)
    }

    fn mismatch(&self, shape: &Shape, value: &SpannedExpr) -> Diagnostic {
        Diagnostic::error(
            self.file,
            value.span,
            format!(
                "expected {}, found {}",
                shape.describe(),
                expr_kind(&value.expr)
            ),
        )
    }
}

/// For a value of the wrong kind: the sibling property that takes that kind, if the two
/// are named alike (`cidr: [a, b]` where `cidrs` takes a list, `default_behavior: [..]`
/// where `behaviors` does).
fn sibling_hint(props: &[Prop], p: &Prop, value: &SpannedExpr) -> Option<String> {
    let is_list = |shape: &Shape| matches!(shape, Shape::List(_));
    let given_list = matches!(value.expr, Expr::List(_) | Expr::Lit(Value::Array(_)));
    if is_list(&p.shape) == given_list || matches!(p.shape, Shape::Any | Shape::OneOf(_)) {
        return None;
    }
    let stem = |name: &str| name.trim_end_matches('s').to_string();
    let sibling = props.iter().find(|q| {
        q.name != p.name
            && is_list(&q.shape) == given_list
            && (stem(p.name).contains(&stem(q.name)) || stem(q.name).contains(&stem(p.name)))
    })?;
    Some(if given_list {
        format!("`{}` takes a list", sibling.name)
    } else {
        format!(
            "`{}` takes one value; `{}` takes a list",
            sibling.name, p.name
        )
    })
}

/// A literal list or map as a list or map expression whose parts all sit at `span`.
fn structured(v: &Value, span: Span) -> SpannedExpr {
    let expr = match v {
        Value::Array(items) => Expr::List(items.iter().map(|i| structured(i, span)).collect()),
        Value::Object(map) => Expr::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), structured(v, span)))
                .collect(),
        ),
        scalar => Expr::Lit(scalar.clone()),
    };
    SpannedExpr::new(expr, span)
}

fn expr_kind(e: &Expr) -> &'static str {
    match e {
        Expr::Lit(v) => value_kind(v),
        Expr::Ref(_) => "a reference",
        Expr::Concat(_) => "a string",
        Expr::List(_) => "a list",
        Expr::Map(_) => "a map",
    }
}

pub fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// What is wrong with a literal for a scalar shape, if anything.
pub fn scalar_problem(shape: &Shape, v: &Value) -> Option<String> {
    let found = value_kind(v);
    let expected = shape.describe();
    match (shape, v) {
        (Shape::Any, _) => None,
        (Shape::String, Value::String(_)) => None,
        (Shape::Number, Value::Number(_)) => None,
        (Shape::Bool, Value::Bool(_)) => None,
        (Shape::Integer { min, max }, Value::Number(n)) => match n.as_i64() {
            None => Some(format!("expected {expected}, found {n}")),
            Some(i) if min.is_some_and(|lo| i < lo) || max.is_some_and(|hi| i > hi) => {
                Some(format!("{i} is out of range: expected {expected}"))
            }
            Some(_) => None,
        },
        (Shape::Enum(values), Value::String(s)) => {
            if values.contains(&s.as_str()) {
                None
            } else {
                let hint = did_you_mean(s, values)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                Some(format!(
                    "`{s}` is not valid here: expected {expected}{hint}"
                ))
            }
        }
        (Shape::OneOf(shapes), _) => {
            if shapes.iter().any(|s| scalar_problem(s, v).is_none()) {
                None
            } else {
                Some(format!("expected {expected}, found {found}"))
            }
        }
        _ => Some(format!("expected {expected}, found {found}")),
    }
}

/// Whether a value of shape `found` may stand where `expected` is wanted.
pub fn compatible(found: &Shape, expected: &Shape) -> bool {
    match (found, expected) {
        (Shape::Any, _) | (_, Shape::Any) => true,
        (_, Shape::OneOf(options)) => options.iter().any(|o| compatible(found, o)),
        (Shape::OneOf(options), _) => options.iter().any(|o| compatible(o, expected)),
        (Shape::String | Shape::Enum(_), Shape::String | Shape::Enum(_)) => true,
        (Shape::Integer { .. }, Shape::Integer { .. } | Shape::Number) => true,
        (Shape::Number, Shape::Number) => true,
        (Shape::Bool, Shape::Bool) => true,
        (Shape::List(a), Shape::List(b)) => compatible(a, b),
        (Shape::Map(_) | Shape::Object(_), Shape::Map(_) | Shape::Object(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("partition_kye", &["partition_key", "sort_key"]),
            Some("partition_key")
        );
        assert_eq!(did_you_mean("zzz", &["partition_key", "sort_key"]), None);
        assert_eq!(did_you_mean("prot", &["port", "protocol"]), Some("port"));
    }

    #[test]
    fn scalar_messages_say_what_was_expected() {
        assert_eq!(
            scalar_problem(&Shape::Enum(&["on_demand", "provisioned"]), &json!("ondemand")),
            Some("`ondemand` is not valid here: expected one of on_demand, provisioned (did you mean `on_demand`?)".into())
        );
        assert_eq!(
            scalar_problem(&Shape::int_range(1, 65535), &json!(70000)),
            Some("70000 is out of range: expected an integer from 1 to 65535".into())
        );
        assert_eq!(
            scalar_problem(&Shape::integer(), &json!("x")),
            Some("expected an integer, found a string".into())
        );
    }

    #[test]
    fn references_are_typed_by_their_attribute() {
        assert!(compatible(
            &Shape::list(Shape::String),
            &Shape::list(Shape::String)
        ));
        assert!(!compatible(&Shape::list(Shape::String), &Shape::String));
        assert!(compatible(
            &Shape::String,
            &Shape::OneOf(vec![Shape::integer(), Shape::String])
        ));
    }
}
