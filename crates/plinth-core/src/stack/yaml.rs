//! A YAML document as a tree of values that each know where they were written.
//!
//! serde-saphyr reports a position for every `Spanned<T>`; deserialising into this tree
//! keeps one for every scalar, list, map and key, so every later error can point at the
//! exact value it is about.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::diag::{Diagnostic, SourceFile, Span};

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: NodeValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A number a float cannot hold exactly, as its normalised decimal text.
    Decimal(String),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A map key and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

impl Node {
    /// What kind of value this is, for "expected …, found …" messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) => "an integer",
            NodeValue::Float(_) | NodeValue::Decimal(_) => "a number",
            NodeValue::Str(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a map",
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            NodeValue::Map(entries) => Some(entries),
            _ => None,
        }
    }
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }
    /// The value as plain JSON (references are not interpreted here).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeValue::Decimal(text) => crate::decimal::Decimal::parse(text)
                .map_or_else(|| Value::String(text.clone()), |d| d.to_json()),
            NodeValue::Str(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn span_of(location: &Location) -> Span {
    let span = location.span();
    Span {
        offset: span.byte_offset().unwrap_or(0) as usize,
        len: span.byte_len().unwrap_or(0) as usize,
        line: location.line() as usize,
        column: location.column() as usize,
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeValue>::deserialize(deserializer)?;
        Ok(Node {
            span: span_of(&spanned.referenced),
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeValue>::deserialize(deserializer)?;
        let name = match spanned.value {
            NodeValue::Str(s) => s,
            NodeValue::Int(i) => i.to_string(),
            NodeValue::Float(f) => f.to_string(),
            NodeValue::Decimal(text) => text,
            NodeValue::Bool(b) => b.to_string(),
            NodeValue::Null => "null".to_string(),
            NodeValue::Seq(_) | NodeValue::Map(_) => {
                return Err(de::Error::custom("a map key must be a plain value"))
            }
        };
        Ok(Key {
            name,
            span: span_of(&spanned.referenced),
        })
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }
    fn visit_none<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeValue, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::Int(v))
    }
    // Integers beyond i64 keep their digits.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeValue, E> {
        Ok(i64::try_from(v).map_or_else(|_| NodeValue::Decimal(v.to_string()), NodeValue::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<NodeValue, E> {
        Ok(i64::try_from(v).map_or_else(|_| NodeValue::Decimal(v.to_string()), NodeValue::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<NodeValue, E> {
        Ok(i64::try_from(v).map_or_else(|_| NodeValue::Decimal(v.to_string()), NodeValue::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<NodeValue, E> {
        Ok(NodeValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(NodeValue::Map(entries))
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// Parses YAML text into a positioned tree; syntax errors name file, line and column.
pub fn parse(file: &SourceFile) -> Result<Node, Box<Diagnostic>> {
    let text: &str = &file.text;
    if text.trim().is_empty() {
        return Err(Box::new(Diagnostic::error(
            file,
            Span {
                offset: 0,
                len: 0,
                line: 1,
                column: 1,
            },
            "the file is empty; expected a YAML map with `stack:` and `resources:`",
        )));
    }
    // YAML 1.2 booleans only: in YAML 1.1 `N`, `y`, `no` and `off` are booleans, which turns
    // a DynamoDB key type `N` into `false`. Numbers with leading zeros (`007`) stay strings.
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
    };
    let mut root = serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|err| {
        let span = err
            .location()
            .map(|l| locate(&span_of(&l), text))
            .unwrap_or(Span {
                offset: 0,
                len: 0,
                line: 1,
                column: 1,
            });
        Box::new(Diagnostic::error(file, span, first_line(&err.to_string())))
    })?;
    keep_exact_numbers(&mut root, text);
    Ok(root)
}

/// Numbers a float would round (`12345678901234567.89`, `12345678901234567890123`) keep
/// their digits, read again from the text as written.
fn keep_exact_numbers(node: &mut Node, text: &str) {
    match &mut node.value {
        NodeValue::Float(_) => {
            let written = text
                .get(node.span.offset..node.span.offset + node.span.len)
                .unwrap_or_default();
            let exact = crate::decimal::Decimal::parse(written)
                .filter(|d| crate::decimal::tagged_text(&d.to_json()).is_some());
            if let Some(d) = exact {
                node.value = NodeValue::Decimal(d.canonical_text());
            }
        }
        NodeValue::Seq(items) => items.iter_mut().for_each(|i| keep_exact_numbers(i, text)),
        NodeValue::Map(entries) => entries
            .iter_mut()
            .for_each(|(_, v)| keep_exact_numbers(v, text)),
        _ => {}
    }
}

/// Error locations may come without a byte offset; derive it from line and column so the
/// snippet shows the right line.
fn locate(span: &Span, text: &str) -> Span {
    if span.offset > 0 || span.line <= 1 {
        return *span;
    }
    let line_start: usize = text
        .split_inclusive('\n')
        .take(span.line - 1)
        .map(str::len)
        .sum();
    let column_bytes: usize = text[line_start..]
        .chars()
        .take(span.column.saturating_sub(1))
        .map(char::len_utf8)
        .sum();
    Span {
        offset: line_start + column_bytes,
        len: span.len.max(1),
        ..*span
    }
}

/// serde-saphyr's messages carry their own position and snippet; keep the sentence only
/// (every diagnostic starts with the position already).
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let without_position = line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(pos, _)| pos.contains("column"))
        .map(|(_, text)| text)
        .unwrap_or(line);
    without_position
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(without_position)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Node {
        parse(&SourceFile::new("t.yaml", text)).expect("parses")
    }

    #[test]
    fn every_value_and_key_knows_its_line_and_column() {
        let node = parse_str("stack: demo\nresources:\n  users:\n    type: dynamodb.table\n");
        let resources = node.get("resources").expect("resources");
        let (key, users) = &resources.as_map().expect("map")[0];
        assert_eq!(
            (key.name.as_str(), key.span.line, key.span.column),
            ("users", 3, 3)
        );
        let ty = users.get("type").expect("type");
        assert_eq!((ty.span.line, ty.span.column), (4, 11));
        assert_eq!(ty.as_str(), Some("dynamodb.table"));
    }

    #[test]
    fn scalars_keep_their_yaml_types() {
        let node = parse_str("a: 1\nb: '1'\nc: true\nd: 1.5\ne: ~\nf: [x]\ng: N\nh: no\ni: 007\n");
        let kinds: Vec<_> = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .map(|k| node.get(k).expect("key").kind())
            .collect();
        assert_eq!(
            kinds,
            [
                "an integer",
                "a string",
                "a boolean",
                "a number",
                "null",
                "a list",
                "a string",
                "a string",
                "a string"
            ]
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse(&SourceFile::new("t.yaml", "a: [1, 2\nb: 3\n")).expect_err("bad yaml");
        assert!(err.span.line >= 1, "{err}");
        assert!(err.to_string().starts_with("t.yaml:"), "{err}");
    }
}
