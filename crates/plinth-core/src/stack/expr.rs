//! Values with references: `${var.x}`, `${users.arn}`, interpolation and `$${` escapes.
//!
//! A string that is exactly one reference keeps the referenced value's type; a reference
//! inside a longer string is interpolated. Expressions are plain data so a saved plan can
//! carry them and resolve them at apply time, when created resources' attributes are known.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diag::Span;
use crate::value::{self, PathSeg};

/// What a reference points at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Target {
    Var {
        name: String,
    },
    StackName,
    StackRegion,
    Workspace,
    AccountId,
    Resource {
        resource: String,
        attr: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        path: Vec<PathSeg>,
    },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Var { name } => write!(f, "var.{name}"),
            Target::StackName => write!(f, "stack.name"),
            Target::StackRegion => write!(f, "stack.region"),
            Target::Workspace => write!(f, "workspace"),
            Target::AccountId => write!(f, "account_id"),
            Target::Resource {
                resource,
                attr,
                path,
            } => {
                write!(f, "{resource}.{attr}")?;
                for seg in path {
                    match seg {
                        PathSeg::Key(k) => write!(f, ".{k}")?,
                        PathSeg::Index(i) => write!(f, "[{i}]")?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// A reference and where it was written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ref {
    pub target: Target,
    #[serde(skip)]
    pub span: Span,
}

/// A piece of an interpolated string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Text(String),
    Ref(Ref),
}

/// A value that may contain references.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// A scalar (or `null`) with no references.
    Lit(Value),
    /// A string that is exactly one reference: keeps the referenced value's type.
    Ref(Ref),
    /// A string with references inside: always a string.
    Concat(Vec<Part>),
    List(Vec<SpannedExpr>),
    Map(Vec<(String, SpannedExpr)>),
}

/// An expression and where it was written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpannedExpr {
    #[serde(flatten)]
    pub expr: Expr,
    #[serde(skip)]
    pub span: Span,
    /// For map entries: where the key was written (errors about the key point there).
    #[serde(skip)]
    pub key_span: Span,
}

impl SpannedExpr {
    pub fn new(expr: Expr, span: Span) -> SpannedExpr {
        SpannedExpr {
            expr,
            span,
            key_span: span,
        }
    }
    pub fn lit(value: Value) -> SpannedExpr {
        SpannedExpr::new(Expr::Lit(value), Span::default())
    }

    /// Every reference inside, with the path of the value it sits in.
    pub fn refs(&self) -> Vec<&Ref> {
        let mut out = Vec::new();
        collect_refs(self, &mut out);
        out
    }

    /// Every reference with the path of the value it sits in.
    pub fn refs_with_paths(&self) -> Vec<(Vec<PathSeg>, &Ref)> {
        let mut out = Vec::new();
        collect_refs_with_paths(self, &mut Vec::new(), &mut out);
        out
    }

    /// The map entry `key`, for map expressions.
    pub fn get(&self, key: &str) -> Option<&SpannedExpr> {
        match &self.expr {
            Expr::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The closest span for a path inside this value (for semantic errors).
    pub fn span_at(&self, path: &[PathSeg]) -> Span {
        let Some((first, rest)) = path.split_first() else {
            return self.span;
        };
        let child = match (&self.expr, first) {
            (Expr::Map(entries), PathSeg::Key(k)) => {
                entries.iter().find(|(name, _)| name == k).map(|(_, v)| v)
            }
            (Expr::List(items), PathSeg::Index(i)) => items.get(*i),
            _ => None,
        };
        match child {
            Some(c) if rest.is_empty() => c.key_span,
            Some(c) => c.span_at(rest),
            None => self.span,
        }
    }

    /// Replaces references `resolve` can answer; the rest stay. Used to bind variables and
    /// built-ins once at load time.
    pub fn bind(
        &mut self,
        resolve: &mut dyn FnMut(&Ref) -> Option<Value>,
    ) -> Result<(), BindError> {
        match &mut self.expr {
            Expr::Lit(_) => Ok(()),
            Expr::Ref(r) => {
                if let Some(v) = resolve(r) {
                    self.expr = Expr::Lit(v);
                }
                Ok(())
            }
            Expr::Concat(parts) => {
                for part in parts.iter_mut() {
                    if let Part::Ref(r) = part {
                        if let Some(v) = resolve(r) {
                            let text = interpolate_text(&v).ok_or_else(|| BindError {
                                span: r.span,
                                message: format!(
                                    "`${{{}}}` is {} and cannot be put inside a string",
                                    r.target,
                                    kind_of(&v)
                                ),
                            })?;
                            *part = Part::Text(text);
                        }
                    }
                }
                self.expr = simplify_concat(std::mem::take(parts));
                Ok(())
            }
            Expr::List(items) => items.iter_mut().try_for_each(|i| i.bind(resolve)),
            Expr::Map(entries) => entries.iter_mut().try_for_each(|(_, v)| v.bind(resolve)),
        }
    }

    /// Evaluates to plain JSON, asking `resolve` for each remaining reference.
    /// Unknown values come back as the `UNKNOWN` sentinel.
    pub fn eval(&self, resolve: &dyn Fn(&Ref) -> Value) -> Value {
        match &self.expr {
            Expr::Lit(v) => v.clone(),
            Expr::Ref(r) => resolve(r),
            Expr::Concat(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => out.push_str(t),
                        Part::Ref(r) => {
                            let v = resolve(r);
                            out.push_str(&interpolate_text(&v).unwrap_or_else(|| v.to_string()));
                        }
                    }
                }
                Value::String(out)
            }
            Expr::List(items) => Value::Array(items.iter().map(|i| i.eval(resolve)).collect()),
            Expr::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.eval(resolve)))
                    .collect(),
            ),
        }
    }
}

/// A reference that could not be bound (a list put inside a string).
#[derive(Clone, Debug)]
pub struct BindError {
    pub span: Span,
    pub message: String,
}

fn collect_refs<'a>(e: &'a SpannedExpr, out: &mut Vec<&'a Ref>) {
    match &e.expr {
        Expr::Lit(_) => {}
        Expr::Ref(r) => out.push(r),
        Expr::Concat(parts) => out.extend(parts.iter().filter_map(|p| match p {
            Part::Ref(r) => Some(r),
            Part::Text(_) => None,
        })),
        Expr::List(items) => items.iter().for_each(|i| collect_refs(i, out)),
        Expr::Map(entries) => entries.iter().for_each(|(_, v)| collect_refs(v, out)),
    }
}

fn collect_refs_with_paths<'a>(
    e: &'a SpannedExpr,
    path: &mut Vec<PathSeg>,
    out: &mut Vec<(Vec<PathSeg>, &'a Ref)>,
) {
    match &e.expr {
        Expr::Lit(_) | Expr::Ref(_) | Expr::Concat(_) => {
            let mut refs = Vec::new();
            collect_refs(e, &mut refs);
            out.extend(refs.into_iter().map(|r| (path.clone(), r)));
        }
        Expr::List(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(PathSeg::Index(i));
                collect_refs_with_paths(item, path, out);
                path.pop();
            }
        }
        Expr::Map(entries) => {
            for (k, v) in entries {
                path.push(PathSeg::Key(k.clone()));
                collect_refs_with_paths(v, path, out);
                path.pop();
            }
        }
    }
}

fn simplify_concat(parts: Vec<Part>) -> Expr {
    let mut merged: Vec<Part> = Vec::new();
    for part in parts {
        match (merged.last_mut(), part) {
            (Some(Part::Text(prev)), Part::Text(t)) => prev.push_str(&t),
            (_, p) => merged.push(p),
        }
    }
    if merged.iter().all(|p| matches!(p, Part::Text(_))) {
        let text: String = merged
            .into_iter()
            .map(|p| match p {
                Part::Text(t) => t,
                Part::Ref(_) => String::new(),
            })
            .collect();
        Expr::Lit(Value::String(text))
    } else {
        Expr::Concat(merged)
    }
}

/// How a value reads inside a string; `None` for lists and maps, which have no one reading.
fn interpolate_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
        _ => "a scalar",
    }
}

/// A malformed reference inside a string, with the byte offset of the problem in the string.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

/// Parses a string that may contain `${…}` references. `span` is the string's place in the
/// file and `quoted` whether it starts with a quote; reference spans are offset from it
/// (exact unless the string contains escapes or spans lines).
pub fn parse_string(text: &str, span: Span, quoted: bool) -> Result<Expr, ParseError> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    let mut consumed = 0usize;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos..];
        if after.starts_with("$${") {
            literal.push_str(&rest[..pos]);
            literal.push_str("${");
            rest = &rest[pos + 3..];
            consumed += pos + 3;
        } else if let Some(inner_start) = after.strip_prefix("${") {
            literal.push_str(&rest[..pos]);
            let close = inner_start.find('}').ok_or_else(|| ParseError {
                offset: consumed + pos,
                message: "unterminated reference: expected `}` to close `${`".into(),
            })?;
            let inner = &inner_start[..close];
            let ref_offset = consumed + pos;
            let target = parse_target(inner.trim()).map_err(|message| ParseError {
                offset: ref_offset,
                message,
            })?;
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(Part::Ref(Ref {
                target,
                span: sub_span(span, text, ref_offset, quoted, close + 3),
            }));
            let used = pos + 2 + close + 1;
            rest = &rest[used..];
            consumed += used;
        } else {
            literal.push_str(&rest[..pos + 1]);
            rest = &rest[pos + 1..];
            consumed += pos + 1;
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    Ok(match parts.as_slice() {
        [] => Expr::Lit(Value::String(String::new())),
        [Part::Ref(r)] => Expr::Ref(r.clone()),
        _ => simplify_concat(parts),
    })
}

/// The span of `len` bytes at byte `offset` of `text`, a string written at `span` (after
/// its opening quote when `quoted`). Columns count characters, as the YAML parser's do.
fn sub_span(span: Span, text: &str, offset: usize, quoted: bool, len: usize) -> Span {
    if !span.is_known() {
        return span;
    }
    let quote = usize::from(quoted);
    Span {
        offset: span.offset + quote + offset,
        len,
        line: span.line,
        column: span.column + quote + column_offset(text, offset),
    }
}

/// How many characters precede byte `offset` of `text`.
pub fn column_offset(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|s| s.chars().count())
        .unwrap_or(offset)
}

fn parse_target(inner: &str) -> Result<Target, String> {
    if inner.is_empty() {
        return Err(
            "empty reference `${}`: expected e.g. `${var.name}` or `${resource.attribute}`".into(),
        );
    }
    match inner {
        "stack.name" => return Ok(Target::StackName),
        "stack.region" => return Ok(Target::StackRegion),
        "workspace" => return Ok(Target::Workspace),
        "account_id" => return Ok(Target::AccountId),
        _ => {}
    }
    if let Some(name) = inner.strip_prefix("var.") {
        if is_identifier(name) {
            return Ok(Target::Var { name: name.into() });
        }
        return Err(format!(
            "`${{{inner}}}`: expected `${{var.NAME}}` with a variable name"
        ));
    }
    if inner.starts_with("stack.") {
        return Err(format!(
            "`${{{inner}}}`: the stack has only `stack.name` and `stack.region`"
        ));
    }
    let segments = split_path(inner).ok_or_else(|| {
        format!("`${{{inner}}}`: expected `${{resource.attribute}}`, optionally followed by `.key` or `[index]`")
    })?;
    let mut iter = segments.into_iter();
    let (Some(PathSeg::Key(resource)), Some(PathSeg::Key(attr))) = (iter.next(), iter.next())
    else {
        return Err(format!(
            "`${{{inner}}}`: expected `${{resource.attribute}}` (e.g. `${{users.arn}}`), `${{var.name}}`, `${{stack.name}}`, `${{stack.region}}`, `${{workspace}}` or `${{account_id}}`"
        ));
    };
    Ok(Target::Resource {
        resource,
        attr,
        path: iter.collect(),
    })
}

/// `a.b[0].c` into segments; `None` when malformed.
fn split_path(text: &str) -> Option<Vec<PathSeg>> {
    let mut out = Vec::new();
    for piece in text.split('.') {
        let (name, mut indexes) = match piece.find('[') {
            Some(i) => (&piece[..i], &piece[i..]),
            None => (piece, ""),
        };
        if !is_identifier(name) {
            return None;
        }
        out.push(PathSeg::Key(name.to_string()));
        while let Some(stripped) = indexes.strip_prefix('[') {
            let close = stripped.find(']')?;
            out.push(PathSeg::Index(stripped[..close].parse().ok()?));
            indexes = &stripped[close + 1..];
        }
        if !indexes.is_empty() {
            return None;
        }
    }
    Some(out)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The value `${resource.attr.path}` reads from a resource's attributes: null when the
/// resource has no such attribute (a table without a stream has no `stream_arn`).
pub fn attribute(attrs: &crate::value::Props, attr: &str, path: &[PathSeg]) -> Value {
    attrs
        .get(attr)
        .and_then(|v| project(v, path))
        .unwrap_or(Value::Null)
}

/// Reads `path` inside an attribute value; unknown stays unknown.
pub fn project(value: &Value, path: &[PathSeg]) -> Option<Value> {
    if value::is_unknown(value) {
        return Some(value.clone());
    }
    value::get_path(value, path).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span() -> Span {
        Span {
            offset: 10,
            len: 20,
            line: 3,
            column: 5,
        }
    }

    #[test]
    fn a_whole_reference_keeps_its_type() {
        let e = parse_string("${vpc.subnet_ids}", span(), false).expect("parses");
        let Expr::Ref(r) = e else {
            panic!("not a ref: {e:?}")
        };
        assert_eq!(r.target.to_string(), "vpc.subnet_ids");
        let bound = SpannedExpr::new(Expr::Ref(r), span());
        assert_eq!(bound.eval(&|_| json!(["a", "b"])), json!(["a", "b"]));
    }

    #[test]
    fn interpolation_and_escapes() {
        let e = parse_string("$${literal}-${var.student}-users", span(), false).expect("parses");
        let mut se = SpannedExpr::new(e, span());
        se.bind(&mut |r| match &r.target {
            Target::Var { name } if name == "student" => Some(json!("ana")),
            _ => None,
        })
        .expect("binds");
        assert_eq!(se.expr, Expr::Lit(json!("${literal}-ana-users")));
    }

    #[test]
    fn a_bound_escape_is_never_read_again_as_a_reference() {
        let mut se = SpannedExpr::new(
            parse_string("$${var.x}", span(), false).expect("parses"),
            span(),
        );
        se.bind(&mut |_| Some(json!("WRONG"))).expect("binds");
        assert_eq!(se.expr, Expr::Lit(json!("${var.x}")));
    }

    #[test]
    fn paths_with_keys_and_indexes() {
        let Expr::Ref(r) = parse_string("${vpc.subnet_ids[1]}", span(), false).expect("parses")
        else {
            panic!("not a ref")
        };
        assert_eq!(
            r.target,
            Target::Resource {
                resource: "vpc".into(),
                attr: "subnet_ids".into(),
                path: vec![PathSeg::Index(1)]
            }
        );
    }

    #[test]
    fn malformed_references_say_what_was_expected() {
        let err = parse_string("x-${users}", span(), false).expect_err("bad ref");
        assert_eq!(err.offset, 2);
        assert!(
            err.message.contains("expected `${resource.attribute}`"),
            "{}",
            err.message
        );
        let err = parse_string("${users.name", span(), false).expect_err("unterminated");
        assert!(err.message.contains("unterminated"), "{}", err.message);
    }

    #[test]
    fn lists_cannot_be_interpolated_into_strings() {
        let mut se = SpannedExpr::new(
            parse_string("ids: ${var.ids}", span(), false).expect("parses"),
            span(),
        );
        let err = se
            .bind(&mut |_| Some(json!(["a"])))
            .expect_err("list in string");
        assert!(err.message.contains("a list"), "{}", err.message);
    }
}
