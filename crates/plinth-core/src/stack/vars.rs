//! Variables: declarations with defaults, `--var-file` files and `--var name=value`.
//! Later sources win: default, then each var file in order, then each `--var`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::diag::{Diagnostic, Diagnostics, SourceFile, Span};
use crate::stack::yaml::{self, Node, NodeValue};

/// The declared type of a variable; `--var` strings are converted to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarType {
    String,
    Number,
    Bool,
    List,
    Map,
    Any,
}

impl VarType {
    fn parse(s: &str) -> Option<VarType> {
        Some(match s {
            "string" => VarType::String,
            "number" => VarType::Number,
            "bool" => VarType::Bool,
            "list" => VarType::List,
            "map" => VarType::Map,
            "any" => VarType::Any,
            _ => return None,
        })
    }
    fn of(value: &Value) -> VarType {
        match value {
            Value::String(_) => VarType::String,
            Value::Number(_) => VarType::Number,
            Value::Bool(_) => VarType::Bool,
            Value::Array(_) => VarType::List,
            // A number a float cannot hold exactly, kept as its decimal text.
            v if crate::decimal::tagged_text(v).is_some() => VarType::Number,
            Value::Object(_) => VarType::Map,
            Value::Null => VarType::Any,
        }
    }
    fn describe(self) -> &'static str {
        match self {
            VarType::String => "a string",
            VarType::Number => "a number",
            VarType::Bool => "true or false",
            VarType::List => "a list",
            VarType::Map => "a map",
            VarType::Any => "any value",
        }
    }
    fn accepts(self, value: &Value) -> bool {
        self == VarType::Any || value.is_null() || VarType::of(value) == self
    }
}

/// A variable as declared under `vars:`.
#[derive(Clone, Debug)]
pub struct VarDecl {
    pub name: String,
    pub span: Span,
    pub default: Option<Value>,
    pub description: Option<String>,
    pub var_type: VarType,
    pub sensitive: bool,
}

const VAR_KEYS: &[&str] = &["default", "description", "type", "sensitive"];

/// Reads `vars:`. A plain scalar is shorthand for `{default: value}`.
pub fn declarations(file: &SourceFile, node: &Node, diags: &mut Diagnostics) -> Vec<VarDecl> {
    let Some(entries) = node.as_map() else {
        diags.push(Diagnostic::error(
            file,
            node.span,
            format!(
                "`vars` must be a map of variable names, found {}",
                node.kind()
            ),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, body) in entries {
        if !is_var_name(&key.name) {
            diags.push(Diagnostic::error(
                file,
                key.span,
                format!(
                    "`{}` is not a valid variable name: expected letters, digits and `_`, starting with a letter",
                    key.name
                ),
            ));
            continue;
        }
        out.push(declaration(file, &key.name, key.span, body, diags));
    }
    out
}

fn declaration(
    file: &SourceFile,
    name: &str,
    span: Span,
    body: &Node,
    diags: &mut Diagnostics,
) -> VarDecl {
    let mut decl = VarDecl {
        name: name.to_string(),
        span,
        default: None,
        description: None,
        var_type: VarType::Any,
        sensitive: false,
    };
    let Some(entries) = body.as_map() else {
        if !matches!(body.value, NodeValue::Null) {
            decl.default = Some(body.to_json());
            decl.var_type = VarType::of(&body.to_json());
        }
        return decl;
    };
    let mut declared_type = None;
    for (key, value) in entries {
        match key.name.as_str() {
            "default" => decl.default = Some(value.to_json()),
            "description" => decl.description = value.as_str().map(str::to_string),
            "sensitive" => match value.value {
                NodeValue::Bool(b) => decl.sensitive = b,
                _ => diags.push(Diagnostic::error(
                    file,
                    value.span,
                    format!("`sensitive` must be true or false, found {}", value.kind()),
                )),
            },
            "type" => match value.as_str().and_then(VarType::parse) {
                Some(t) => declared_type = Some((t, value.span)),
                None => diags.push(Diagnostic::error(
                    file,
                    value.span,
                    "`type` must be one of string, number, bool, list, map, any",
                )),
            },
            other => diags.push(super::check::unknown_key(
                file,
                key.span,
                other,
                VAR_KEYS,
                "a variable",
            )),
        }
    }
    decl.var_type = match (declared_type, &decl.default) {
        (Some((t, _)), _) => t,
        (None, Some(d)) => VarType::of(d),
        (None, None) => VarType::String,
    };
    if let (Some((t, type_span)), Some(default)) = (declared_type, &decl.default) {
        if !t.accepts(default) {
            diags.push(Diagnostic::error(
                file,
                type_span,
                format!("the default of `{name}` is not {}", t.describe()),
            ));
        }
    }
    decl
}

pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where variable values come from besides defaults.
#[derive(Clone, Debug, Default)]
pub struct VarInputs {
    /// `--var-file` paths, in order.
    pub files: Vec<PathBuf>,
    /// `--var name=value`, in order.
    pub pairs: Vec<String>,
}

/// The final value of every declared variable.
pub fn resolve(
    decls: &[VarDecl],
    inputs: &VarInputs,
    stack_file: &SourceFile,
    diags: &mut Diagnostics,
) -> BTreeMap<String, Value> {
    let mut values: BTreeMap<String, Value> = decls
        .iter()
        .filter_map(|d| d.default.clone().map(|v| (d.name.clone(), v)))
        .collect();
    for path in &inputs.files {
        read_var_file(path, decls, &mut values, diags);
    }
    for pair in &inputs.pairs {
        apply_pair(pair, decls, &mut values, diags);
    }
    for d in decls {
        if !values.contains_key(&d.name) {
            diags.push(
                Diagnostic::error(
                    stack_file,
                    d.span,
                    format!(
                        "variable `{}` has no default and no value was given",
                        d.name
                    ),
                )
                .with_help(format!(
                    "pass --var {}=VALUE or set it in a --var-file, or give it a `default:`",
                    d.name
                )),
            );
        }
    }
    values
}

fn read_var_file(
    path: &PathBuf,
    decls: &[VarDecl],
    values: &mut BTreeMap<String, Value>,
    diags: &mut Diagnostics,
) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::plain(format!(
                "cannot read variable file {}: {e}",
                path.display()
            )));
            return;
        }
    };
    let file = SourceFile::new(path.clone(), text);
    let node = match yaml::parse(&file) {
        Ok(n) => n,
        Err(d) => {
            diags.push(*d);
            return;
        }
    };
    let Some(entries) = node.as_map() else {
        diags.push(Diagnostic::error(
            &file,
            node.span,
            format!(
                "a variable file must be a map of name: value, found {}",
                node.kind()
            ),
        ));
        return;
    };
    for (key, value) in entries {
        let Some(decl) = decls.iter().find(|d| d.name == key.name) else {
            diags.push(unknown_var(Some((&file, key.span)), &key.name, decls));
            continue;
        };
        let json = value.to_json();
        if !decl.var_type.accepts(&json) {
            diags.push(Diagnostic::error(
                &file,
                value.span,
                format!(
                    "`{}` must be {}, found {}",
                    key.name,
                    decl.var_type.describe(),
                    value.kind()
                ),
            ));
            continue;
        }
        values.insert(key.name.clone(), json);
    }
}

fn apply_pair(
    pair: &str,
    decls: &[VarDecl],
    values: &mut BTreeMap<String, Value>,
    diags: &mut Diagnostics,
) {
    let Some((name, raw)) = pair.split_once('=') else {
        diags.push(Diagnostic::plain(format!(
            "--var {pair}: expected NAME=VALUE"
        )));
        return;
    };
    let name = name.trim();
    let Some(decl) = decls.iter().find(|d| d.name == name) else {
        diags.push(unknown_var(None, name, decls));
        return;
    };
    match convert(raw, decl.var_type) {
        Ok(v) => {
            values.insert(name.to_string(), v);
        }
        Err(expected) => diags.push(Diagnostic::plain(format!(
            "--var {name}={raw}: expected {expected}"
        ))),
    }
}

/// A `--var` string as the variable's type.
pub(crate) fn convert(raw: &str, var_type: VarType) -> Result<Value, &'static str> {
    match var_type {
        VarType::String | VarType::Any => Ok(Value::String(raw.to_string())),
        VarType::Number => raw
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| {
                raw.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or(())
            })
            .map_err(|_| "a number"),
        VarType::Bool => match raw {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err("true or false"),
        },
        VarType::List | VarType::Map => {
            let file = SourceFile::new("--var", raw.to_string());
            let node =
                yaml::parse(&file).map_err(|_| "a YAML/JSON value such as [a, b] or {k: v}")?;
            let value = node.to_json();
            if var_type.accepts(&value) {
                Ok(value)
            } else if var_type == VarType::List {
                Err("a list such as [a, b]")
            } else {
                Err("a map such as {k: v}")
            }
        }
    }
}

pub(crate) fn unknown_var(
    at: Option<(&SourceFile, Span)>,
    name: &str,
    decls: &[VarDecl],
) -> Diagnostic {
    let names: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
    let message = if names.is_empty() {
        format!("unknown variable `{name}`: the stack declares no variables")
    } else {
        format!(
            "unknown variable `{name}`: the stack declares {}",
            names.join(", ")
        )
    };
    let d = match at {
        Some((file, span)) => Diagnostic::error(file, span, message),
        None => Diagnostic::plain(message),
    };
    match super::check::did_you_mean(name, &names) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cli_values_take_the_declared_type() {
        assert_eq!(convert("3", VarType::Number), Ok(json!(3)));
        assert_eq!(convert("true", VarType::Bool), Ok(json!(true)));
        assert_eq!(convert("[a, b]", VarType::List), Ok(json!(["a", "b"])));
        assert_eq!(convert("x", VarType::Number), Err("a number"));
        assert_eq!(convert("007", VarType::String), Ok(json!("007")));
    }
}
