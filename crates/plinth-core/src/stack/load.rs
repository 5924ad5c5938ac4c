//! Reads a stack file into a checked [`Stack`], collecting every problem with its position.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::diag::{Diagnostic, Diagnostics, SourceFile, Span};
use crate::resource::{Linked, NormalizeContext, PropIssue, Registry, Timeouts};
use crate::schema::{Shape, TypeKind, LIFECYCLE_KEYS, RESERVED_KEYS};
use crate::stack::check::{self, AttrShapes};
use crate::stack::expr::{self, Expr, Ref, SpannedExpr, Target};
use crate::stack::vars::{self, VarInputs};
use crate::stack::yaml::{self, Key, Node, NodeValue};
use crate::stack::{Expiry, Lifecycle, OutputDecl, ResourceDecl, Stack, VarValue};
use crate::value::{self, PathSeg, Props};

const TOP_KEYS: &[&str] = &[
    "stack",
    "region",
    "description",
    "vars",
    "tags",
    "expires_after",
    "state",
    "resources",
    "outputs",
];
const OUTPUT_KEYS: &[&str] = &["value", "description", "sensitive"];

/// What the command line adds to a stack file.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub vars: VarInputs,
    pub workspace: String,
    /// The region when the stack names none (`AWS_REGION`, the profile's region).
    pub fallback_region: Option<String>,
}

/// What a stack file says of itself before any variable is bound: lets a caller set up AWS
/// for its region, check values given elsewhere (a roster line) against its variables, or
/// name it, before (and apart from) the full load.
#[derive(Clone, Debug, Default)]
pub struct Declared {
    /// `stack:`, when it is plain text.
    pub name: Option<String>,
    /// `region:`, when it is plain text (a region made of variables is known only after a
    /// full load).
    pub region: Option<String>,
    pub vars: Vec<vars::VarDecl>,
}

/// A stack file read and parsed, not yet checked: parsed once, then loaded for each
/// workspace that needs it (every student of a roster).
#[derive(Clone, Debug)]
pub struct Parsed {
    pub file: SourceFile,
    root: Node,
}

/// Reads and parses the stack file at `path`.
pub fn parse(path: &Path) -> Result<Parsed, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic::plain(format!(
            "cannot read stack file {}: {e}",
            path.display()
        ))])
    })?;
    Parsed::from_text(SourceFile::new(path, text))
}

impl Parsed {
    /// Parses text already in memory.
    pub fn from_text(file: SourceFile) -> Result<Parsed, Diagnostics> {
        let root = yaml::parse(&file).map_err(|d| Diagnostics(vec![*d]))?;
        Ok(Parsed { file, root })
    }

    /// What the file says of itself before any variable is bound.
    pub fn declared(&self) -> Declared {
        let plain = |key: &str| {
            self.root
                .get(key)
                .and_then(|n| n.as_str())
                .filter(|s| !s.contains("${"))
                .map(str::to_string)
        };
        let mut ignored = Diagnostics::default();
        Declared {
            name: plain("stack"),
            region: plain("region"),
            vars: self
                .root
                .get("vars")
                .map(|n| vars::declarations(&self.file, n, &mut ignored))
                .unwrap_or_default(),
        }
    }

    /// Checks the stack for one workspace and its variables. Warnings come back with the
    /// stack; errors instead of it.
    pub fn load(
        &self,
        registry: &Registry,
        options: &LoadOptions,
    ) -> Result<(Stack, Diagnostics), Diagnostics> {
        let mut loader = Loader {
            file: &self.file,
            registry,
            diags: Diagnostics::default(),
        };
        let stack = loader.stack(&self.root, options);
        let mut diags = loader.diags;
        if let (Some(stack), false) = (&stack, diags.has_errors()) {
            if let Err(cycles) = crate::graph::DepGraph::build(stack, registry) {
                diags.extend(cycles);
            }
        }
        match stack {
            Some(stack) => diags.into_result(stack),
            None => Err(diags),
        }
    }
}

/// [`Declared`] of the stack file at `path`, if it parses.
pub fn declared(path: &Path) -> Option<Declared> {
    parse(path).ok().map(|p| p.declared())
}

/// Reads and checks a stack file. Warnings come back with the stack; errors instead of it.
pub fn load(
    path: &Path,
    registry: &Registry,
    options: &LoadOptions,
) -> Result<(Stack, Diagnostics), Diagnostics> {
    parse(path)?.load(registry, options)
}

/// [`load`] for text already in memory.
pub fn load_str(
    file: SourceFile,
    registry: &Registry,
    options: &LoadOptions,
) -> Result<(Stack, Diagnostics), Diagnostics> {
    Parsed::from_text(file)?.load(registry, options)
}

struct Loader<'a> {
    file: &'a SourceFile,
    registry: &'a Registry,
    diags: Diagnostics,
}

impl Loader<'_> {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(self.file, span, message));
    }

    fn stack(&mut self, root: &Node, options: &LoadOptions) -> Option<Stack> {
        let Some(entries) = root.as_map() else {
            self.error(
                root.span,
                format!(
                    "a stack file must be a map with `stack:` and `resources:`, found {}",
                    root.kind()
                ),
            );
            return None;
        };
        for (key, _) in entries {
            if !TOP_KEYS.contains(&key.name.as_str()) {
                let d =
                    check::unknown_key(self.file, key.span, &key.name, TOP_KEYS, "the stack file");
                self.diags.push(d);
            }
        }
        let decls = root
            .get("vars")
            .map(|n| vars::declarations(self.file, n, &mut self.diags))
            .unwrap_or_default();
        let values = vars::resolve(&decls, &options.vars, self.file, &mut self.diags);
        let declared: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
        let resource_names = declared_resource_names(root);
        // Each string goes through the same resolution; the name and the region are
        // resolved first (from variables and the workspace), since the rest may use them.
        let mut builtins = Builtins {
            vars: &values,
            declared: &declared,
            resources: &resource_names,
            stack_name: Builtin::Later,
            region: Builtin::Later,
            workspace: &options.workspace,
        };
        let name = self.stack_name(root, &builtins);
        builtins.stack_name = Builtin::from(&name);
        let region = self.region(root, options, &builtins);
        builtins.region = Builtin::from(&region);
        let description = root
            .get("description")
            .and_then(|n| self.text(n, "`description`", &builtins));
        let expires_after = root
            .get("expires_after")
            .and_then(|n| self.expiry(n, &builtins));
        let tags = root
            .get("tags")
            .map(|n| self.string_map(n, "`tags`", &builtins))
            .unwrap_or_default();
        let state = root
            .get("state")
            .and_then(|n| self.text(n, "`state`", &builtins));
        let mut resources = match root.get("resources") {
            Some(n) => self.resources(n, &region, &builtins),
            None => {
                self.error(
                    root.span,
                    "missing required key `resources`: expected a map of resources",
                );
                Vec::new()
            }
        };
        let mut outputs = root
            .get("outputs")
            .map(|n| self.outputs(n, &builtins))
            .unwrap_or_default();
        let (name, region) = (name.clone()?, region.clone()?);
        self.bind(&mut resources, &mut outputs, &builtins);
        self.check_resources(&resources, &outputs, &resource_names);
        self.pin_regions(&mut resources);
        let vars = decls
            .iter()
            .map(|d| VarValue {
                name: d.name.clone(),
                value: values.get(&d.name).cloned().unwrap_or(Value::Null),
                sensitive: d.sensitive,
            })
            .collect();
        Some(Stack {
            file: self.file.clone(),
            name,
            region,
            description,
            workspace: options.workspace.clone(),
            tags,
            expires_after,
            state,
            account: None,
            caller_account: None,
            vars,
            resources,
            outputs,
        })
    }

    fn stack_name(&mut self, root: &Node, b: &Builtins) -> Option<String> {
        let Some(node) = root.get("stack") else {
            self.error(
                root.span,
                "missing required key `stack`: expected the stack's name, e.g. `stack: week3-lab`",
            );
            return None;
        };
        let name = self.text(node, "`stack`", b)?;
        let valid = name.len() <= 40
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            self.error(
                node.span,
                format!("`{name}` is not a valid stack name: expected lowercase letters, digits and `-`, starting with a letter, at most 40 characters"),
            );
            return None;
        }
        Some(name)
    }

    fn region(&mut self, root: &Node, options: &LoadOptions, b: &Builtins) -> Option<String> {
        match root.get("region") {
            Some(node) => self.text(node, "`region`", b),
            None => match &options.fallback_region {
                Some(r) => Some(r.clone()),
                None => {
                    self.error(
                        root.span,
                        "no region: add `region:` to the stack file or set AWS_REGION",
                    );
                    None
                }
            },
        }
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            NodeValue::Str(s) => Some(s.clone()),
            _ => {
                self.error(
                    node.span,
                    format!("{what} must be a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// A string of the stack file outside the resources' properties (the name, the region,
    /// tags, descriptions, durations): resolved like any property, except that nothing
    /// here can wait for a resource.
    fn text(&mut self, node: &Node, what: &str, b: &Builtins) -> Option<String> {
        let NodeValue::Str(_) = &node.value else {
            return self.string(node, what);
        };
        let before = self.diags.0.len();
        let mut e = self.expr(node);
        self.bind_expr(&mut e, b);
        let mut resolved = self.diags.0.len() == before;
        for r in e.refs() {
            match &r.target {
                Target::Resource { resource, .. } if !b.resources.contains(&resource.as_str()) => {
                    self.dangling(r.span, resource, b.resources)
                }
                // Already reported: a variable without a value, or an unknown one; a name
                // or region that failed to load.
                Target::Var { .. } => {}
                Target::StackName if b.stack_name == Builtin::Failed => {}
                Target::StackRegion if b.region == Builtin::Failed => {}
                target => self.error(
                    r.span,
                    format!(
                        "{what} cannot use `${{{target}}}`: it is read before {}",
                        match target {
                            Target::Resource { .. } => "any resource exists; only variables, `${stack.name}`, `${stack.region}` and `${workspace}` can be used here",
                            Target::AccountId => "AWS is asked for the account; only variables, `${stack.name}`, `${stack.region}` and `${workspace}` can be used here",
                            _ => "this value is known",
                        }
                    ),
                ),
            }
            resolved = false;
        }
        if !resolved {
            return None;
        }
        match e.eval(&|_| Value::Null) {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(v) => Some(v.to_string()),
            other => {
                let kind = match other {
                    Value::Array(_) => "a list",
                    Value::Object(_) => "a map",
                    _ => "nothing",
                };
                self.error(node.span, format!("{what} must be a string, found {kind}"));
                None
            }
        }
    }

    fn string_map(&mut self, node: &Node, what: &str, b: &Builtins) -> BTreeMap<String, String> {
        let Some(entries) = node.as_map() else {
            self.error(
                node.span,
                format!("{what} must be a map of strings, found {}", node.kind()),
            );
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for (key, value) in entries {
            let text = match &value.value {
                NodeValue::Str(_) => match self.text(value, &format!("tag `{}`", key.name), b) {
                    Some(text) => text,
                    None => continue,
                },
                NodeValue::Int(i) => i.to_string(),
                NodeValue::Float(f) => f.to_string(),
                NodeValue::Decimal(text) => text.clone(),
                NodeValue::Bool(b) => b.to_string(),
                _ => {
                    self.error(
                        value.span,
                        format!(
                            "tag `{}` must be a string, found {}",
                            key.name,
                            value.kind()
                        ),
                    );
                    continue;
                }
            };
            out.insert(key.name.clone(), text);
        }
        out
    }

    fn expiry(&mut self, node: &Node, b: &Builtins) -> Option<Expiry> {
        let text = self.text(node, "`expires_after`", b)?;
        match humantime::parse_duration(&text) {
            // Any positive time: a course lab lives for hours, a test of `sweep` for seconds.
            Ok(duration) if duration >= Duration::from_secs(1) => Some(Expiry { text, duration }),
            _ => {
                self.error(
                    node.span,
                    format!(
                        "`{text}` is not a duration: expected e.g. 90m, 8h or 3d (at least 1s)"
                    ),
                );
                None
            }
        }
    }

    fn resources(
        &mut self,
        node: &Node,
        default_region: &Option<String>,
        b: &Builtins,
    ) -> Vec<ResourceDecl> {
        let Some(entries) = node.as_map() else {
            self.error(
                node.span,
                format!(
                    "`resources` must be a map of resource names, found {}",
                    node.kind()
                ),
            );
            return Vec::new();
        };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (key, body) in entries {
            if !seen.insert(key.name.clone()) {
                self.error(key.span, format!("duplicate resource name `{}`", key.name));
                continue;
            }
            if let Some(decl) = self.resource(key, body, default_region, b) {
                out.push(decl);
            }
        }
        out
    }

    fn resource(
        &mut self,
        key: &Key,
        body: &Node,
        default_region: &Option<String>,
        b: &Builtins,
    ) -> Option<ResourceDecl> {
        let name = &key.name;
        let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            self.error(key.span, format!("`{name}` is not a valid resource name: expected lowercase letters, digits and `_`, starting with a letter"));
        }
        let Some(entries) = body.as_map() else {
            self.error(
                body.span,
                format!(
                    "resource `{name}` must be a map with a `type`, found {}",
                    body.kind()
                ),
            );
            return None;
        };
        let type_name = self.resource_type(key, body)?;
        let schema = self.registry.schema(&type_name)?.clone();
        let region_span = body.get("region").map(|n| n.span);
        let region = match body.get("region") {
            Some(n) => self.text(n, "`region`", b)?,
            None => default_region.clone().unwrap_or_default(),
        };
        let depends_on = body
            .get("depends_on")
            .map(|n| self.name_list(n))
            .unwrap_or_default();
        let lifecycle = body
            .get("lifecycle")
            .map(|n| self.lifecycle(n, &schema, b))
            .unwrap_or_default();
        let mut props = Vec::new();
        for (k, v) in entries {
            if RESERVED_KEYS.contains(&k.name.as_str()) {
                continue;
            }
            if schema.prop(&k.name).is_none() {
                let d = check::unknown_prop(
                    self.file,
                    k.span,
                    &k.name,
                    &schema.properties,
                    RESERVED_KEYS,
                    &format!("{type_name} `{name}`"),
                );
                self.diags.push(d);
                continue;
            }
            let mut e = self.expr(v);
            e.key_span = k.span;
            props.push((k.name.clone(), e));
        }
        if schema.kind == TypeKind::Lookup && lifecycle != Lifecycle::default() {
            self.error(
                key.span,
                format!("{type_name} is a lookup: it has no lifecycle"),
            );
        }
        Some(ResourceDecl {
            name: name.clone(),
            name_span: key.span,
            type_name,
            region,
            region_span,
            depends_on,
            lifecycle,
            props: SpannedExpr {
                expr: Expr::Map(props),
                span: body.span,
                key_span: key.span,
            },
        })
    }

    fn resource_type(&mut self, key: &Key, body: &Node) -> Option<String> {
        let Some(node) = body.get("type") else {
            self.error(
                key.span,
                format!(
                    "resource `{}` has no `type`: expected one of {}",
                    key.name,
                    self.registry.type_names().join(", ")
                ),
            );
            return None;
        };
        let type_name = self.string(node, "`type`")?;
        if self.registry.get(&type_name).is_none() {
            let names = self.registry.type_names();
            let mut d = Diagnostic::error(
                self.file,
                node.span,
                format!(
                    "unknown resource type `{type_name}`: expected one of {}",
                    names.join(", ")
                ),
            );
            if let Some(s) = check::did_you_mean(&type_name, &names) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            self.diags.push(d);
            return None;
        }
        Some(type_name)
    }

    fn name_list(&mut self, node: &Node) -> Vec<(String, Span)> {
        let NodeValue::Seq(items) = &node.value else {
            self.error(
                node.span,
                format!(
                    "`depends_on` must be a list of resource names, found {}",
                    node.kind()
                ),
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|i| {
                // `${name.attr}` and bare names are both accepted: people write either.
                let text = self.string(i, "each `depends_on` entry")?;
                let bare = text.trim_start_matches("${").trim_end_matches('}');
                let name = bare.split('.').next().unwrap_or(bare).to_string();
                Some((name, i.span))
            })
            .collect()
    }

    fn lifecycle(
        &mut self,
        node: &Node,
        schema: &crate::schema::TypeSchema,
        b: &Builtins,
    ) -> Lifecycle {
        let mut out = Lifecycle::default();
        let Some(entries) = node.as_map() else {
            self.error(
                node.span,
                format!("`lifecycle` must be a map, found {}", node.kind()),
            );
            return out;
        };
        for (key, value) in entries {
            match key.name.as_str() {
                "prevent_destroy" => out.prevent_destroy = self.boolean(value, "prevent_destroy"),
                "create_before_destroy" => {
                    out.create_before_destroy = self.boolean(value, "create_before_destroy")
                }
                "ignore_changes" => out.ignore_changes = self.ignore_changes(value, schema),
                "timeouts" => out.timeouts = self.timeouts(value, b),
                other => {
                    let d = check::unknown_key(
                        self.file,
                        key.span,
                        other,
                        LIFECYCLE_KEYS,
                        "`lifecycle`",
                    );
                    self.diags.push(d);
                }
            }
        }
        out
    }

    fn boolean(&mut self, node: &Node, what: &str) -> bool {
        match node.value {
            NodeValue::Bool(b) => b,
            _ => {
                self.error(
                    node.span,
                    format!("`{what}` must be true or false, found {}", node.kind()),
                );
                false
            }
        }
    }

    fn ignore_changes(&mut self, node: &Node, schema: &crate::schema::TypeSchema) -> Vec<String> {
        let NodeValue::Seq(items) = &node.value else {
            self.error(
                node.span,
                format!(
                    "`ignore_changes` must be a list of property names, found {}",
                    node.kind()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Some(name) = self.string(item, "each `ignore_changes` entry") else {
                continue;
            };
            if schema.prop(&name).is_none() {
                let d = check::unknown_prop(
                    self.file,
                    item.span,
                    &name,
                    &schema.properties,
                    &[],
                    &format!("`ignore_changes` of a {}", schema.type_name),
                );
                self.diags.push(d);
                continue;
            }
            out.push(name);
        }
        out
    }

    fn timeouts(&mut self, node: &Node, b: &Builtins) -> Timeouts {
        let mut out = Timeouts::default();
        let Some(entries) = node.as_map() else {
            self.error(
                node.span,
                format!(
                    "`timeouts` must be a map of create/update/delete durations, found {}",
                    node.kind()
                ),
            );
            return out;
        };
        for (key, value) in entries {
            let slot = match key.name.as_str() {
                "create" => &mut out.create,
                "update" => &mut out.update,
                "delete" => &mut out.delete,
                other => {
                    let d = check::unknown_key(
                        self.file,
                        key.span,
                        other,
                        &["create", "update", "delete"],
                        "`timeouts`",
                    );
                    self.diags.push(d);
                    continue;
                }
            };
            let text = match &value.value {
                NodeValue::Str(_) => match self.text(value, "a timeout", b) {
                    Some(text) => text,
                    None => continue,
                },
                _ => String::new(),
            };
            match humantime::parse_duration(&text) {
                Ok(d) => *slot = Some(d),
                _ => self.diags.push(Diagnostic::error(
                    self.file,
                    value.span,
                    "expected a duration such as 30m or 1h",
                )),
            }
        }
        out
    }

    fn outputs(&mut self, node: &Node, b: &Builtins) -> Vec<OutputDecl> {
        let Some(entries) = node.as_map() else {
            self.error(
                node.span,
                format!(
                    "`outputs` must be a map of output names, found {}",
                    node.kind()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, body) in entries {
            let long_form = body
                .as_map()
                .filter(|m| m.iter().any(|(k, _)| k.name == "value"));
            let decl = match long_form {
                None => OutputDecl {
                    name: key.name.clone(),
                    value: self.expr(body),
                    description: None,
                    sensitive: false,
                },
                Some(m) => {
                    let mut decl = OutputDecl {
                        name: key.name.clone(),
                        value: SpannedExpr::lit(Value::Null),
                        description: None,
                        sensitive: false,
                    };
                    for (k, v) in m {
                        match k.name.as_str() {
                            "value" => decl.value = self.expr(v),
                            "description" => decl.description = self.text(v, "`description`", b),
                            "sensitive" => decl.sensitive = self.boolean(v, "sensitive"),
                            other => {
                                let d = check::unknown_key(
                                    self.file,
                                    k.span,
                                    other,
                                    OUTPUT_KEYS,
                                    &format!("output `{}`", key.name),
                                );
                                self.diags.push(d);
                            }
                        }
                    }
                    decl
                }
            };
            out.push(decl);
        }
        out
    }

    /// Whether a scalar was written in quotes (its content starts one column later).
    fn quoted(&self, node: &Node) -> bool {
        matches!(
            self.file.text.as_bytes().get(node.span.offset),
            Some(b'"' | b'\'')
        )
    }

    /// A YAML value as an expression: strings are parsed for references.
    fn expr(&mut self, node: &Node) -> SpannedExpr {
        let e = match &node.value {
            NodeValue::Str(s) => match expr::parse_string(s, node.span, self.quoted(node)) {
                Ok(e) => e,
                Err(err) => {
                    let quote = usize::from(self.quoted(node));
                    let span = Span {
                        column: node.span.column + quote + expr::column_offset(s, err.offset),
                        offset: node.span.offset + quote + err.offset,
                        len: 2,
                        ..node.span
                    };
                    self.error(span, err.message);
                    Expr::Lit(Value::String(s.clone()))
                }
            },
            NodeValue::Seq(items) => Expr::List(items.iter().map(|i| self.expr(i)).collect()),
            NodeValue::Map(entries) => Expr::Map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let mut e = self.expr(v);
                        e.key_span = k.span;
                        (k.name.clone(), e)
                    })
                    .collect(),
            ),
            _ => Expr::Lit(node.to_json()),
        };
        SpannedExpr::new(e, node.span)
    }

    /// Binds variables and built-ins; reports unknown variables.
    fn bind(&mut self, resources: &mut [ResourceDecl], outputs: &mut [OutputDecl], b: &Builtins) {
        for r in resources.iter_mut() {
            self.bind_expr(&mut r.props, b);
        }
        for o in outputs.iter_mut() {
            self.bind_expr(&mut o.value, b);
        }
    }

    /// Binds what `b` knows in `e`. A variable the stack does not declare is an error; one
    /// it declares but has no value for was reported once already, where it is declared.
    fn bind_expr(&mut self, e: &mut SpannedExpr, b: &Builtins) {
        let mut unknown: Vec<Ref> = Vec::new();
        let result = e.bind(&mut |r: &Ref| {
            let v = b.value(r);
            if let (None, Target::Var { name }) = (&v, &r.target) {
                if !b.declared.contains(&name.as_str()) {
                    unknown.push(r.clone());
                }
            }
            v
        });
        if let Err(err) = result {
            self.error(err.span, err.message);
        }
        for r in unknown {
            let Target::Var { name } = &r.target else {
                continue;
            };
            let names = b.declared;
            let mut d = Diagnostic::error(
                self.file,
                r.span,
                format!(
                    "unknown variable `{name}`: declare it under `vars:` (declared: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            );
            if let Some(s) = check::did_you_mean(name, names) {
                d = d.with_help(format!("did you mean `var.{s}`?"));
            }
            self.diags.push(d);
        }
    }

    /// References to resources, shapes and each type's own semantic checks.
    fn check_resources(
        &mut self,
        resources: &[ResourceDecl],
        outputs: &[OutputDecl],
        declared: &[&str],
    ) {
        let shapes = DeclaredAttrs {
            resources,
            registry: self.registry,
        };
        let names = declared;
        for r in resources {
            for (dep, span) in &r.depends_on {
                if !names.contains(&dep.as_str()) {
                    self.dangling(*span, dep, names);
                } else if dep == &r.name {
                    self.error(*span, format!("`{}` cannot depend on itself", r.name));
                }
            }
            for reference in r.props.refs() {
                self.check_ref(reference, resources, names, Some(&r.name));
            }
            let Some(rt) = self.registry.get(&r.type_name) else {
                continue;
            };
            let mut local = Diagnostics::default();
            check::check_props(
                self.file,
                rt.schema(),
                &r.props,
                r.name_span,
                &shapes,
                &mut local,
            );
            let clean = !local.has_errors();
            self.diags.extend(local);
            if clean {
                let props = eval_with_unknowns(&r.props);
                for issue in rt.check(&props) {
                    self.issue(&r.props, issue);
                }
                let linked = self.linked(r, resources);
                for issue in rt.check_linked(&props, &linked) {
                    self.issue(&r.props, issue);
                }
                for warning in rt.lint(&self.canonical(&r.type_name, &props), &linked) {
                    let d = self.positioned(&r.props, warning);
                    self.diags.push(Diagnostic {
                        severity: crate::diag::Severity::Warning,
                        ..d
                    });
                }
            }
        }
        for o in outputs {
            for reference in o.value.refs() {
                self.check_ref(reference, resources, names, None);
            }
        }
    }

    fn check_ref(
        &mut self,
        r: &Ref,
        resources: &[ResourceDecl],
        names: &[&str],
        owner: Option<&str>,
    ) {
        let Target::Resource { resource, attr, .. } = &r.target else {
            return;
        };
        let Some(decl) = resources.iter().find(|d| &d.name == resource) else {
            // A resource declared but not loaded (an unknown type) was reported already.
            if !names.contains(&resource.as_str()) {
                self.dangling(r.span, resource, names);
            }
            return;
        };
        if owner == Some(resource.as_str()) {
            return self.error(
                r.span,
                format!("`${{{}}}`: a resource cannot refer to itself", r.target),
            );
        }
        let Some(schema) = self.registry.schema(&decl.type_name) else {
            return;
        };
        if schema.attr(attr).is_none() {
            let attrs: Vec<&str> = schema.attributes.iter().map(|a| a.name).collect();
            let mut d = Diagnostic::error(
                self.file,
                r.span,
                format!(
                    "`${{{}}}`: {} has no attribute `{attr}`; it has {}",
                    r.target,
                    decl.type_name,
                    attrs.join(", ")
                ),
            );
            if let Some(s) = check::did_you_mean(attr, &attrs) {
                d = d.with_help(format!("did you mean `{resource}.{s}`?"));
            }
            self.diags.push(d);
        }
    }

    fn dangling(&mut self, span: Span, name: &str, names: &[&str]) {
        let mut d = Diagnostic::error(
            self.file,
            span,
            format!(
                "reference to undeclared resource `{name}`; the stack declares {}",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ),
        );
        if let Some(s) = check::did_you_mean(name, names) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.diags.push(d);
    }

    fn issue(&mut self, props: &SpannedExpr, issue: PropIssue) {
        let d = self.positioned(props, issue);
        self.diags.push(d);
    }

    fn positioned(&self, props: &SpannedExpr, issue: PropIssue) -> Diagnostic {
        let span = props.span_at(&issue.path);
        let path = value::path_to_string(&issue.path);
        let message = if path.is_empty() {
            issue.message
        } else {
            format!("`{path}`: {}", issue.message)
        };
        Diagnostic::error(self.file, span, message)
    }

    /// Properties as their type's `normalize` makes them (unknowns left in); as written
    /// when it cannot (a file it reads is missing: `plan` reports that).
    fn canonical(&self, type_name: &str, props: &Props) -> Props {
        let mut canonical = props.clone();
        let base_dir = self.file.base_dir();
        match self.registry.get(type_name) {
            Some(rt)
                if rt
                    .normalize(&mut canonical, &NormalizeContext { base_dir })
                    .is_ok() =>
            {
                canonical
            }
            _ => props.clone(),
        }
    }

    /// The resources `r` refers to, with where it refers to them, for `lint`/`check_linked`.
    fn linked(&self, r: &ResourceDecl, resources: &[ResourceDecl]) -> Vec<Linked> {
        let mut out = Vec::new();
        for (path, reference) in r.props.refs_with_paths() {
            let Target::Resource { resource, .. } = &reference.target else {
                continue;
            };
            let Some(target) = resources.iter().find(|d| &d.name == resource) else {
                continue;
            };
            let Some(PathSeg::Key(prop)) = path.first() else {
                continue;
            };
            if out
                .iter()
                .any(|l: &Linked| l.path == path && &l.resource == resource)
            {
                continue;
            }
            let props = self.canonical(&target.type_name, &eval_with_unknowns(&target.props));
            out.push(Linked {
                prop: prop.clone(),
                path: path.clone(),
                resource: resource.clone(),
                type_name: target.type_name.clone(),
                props,
            });
        }
        out
    }

    /// Moves resources AWS keeps in one region there (Lambda@Edge functions and the
    /// certificates of CloudFront distributions live in us-east-1): a resource's type may
    /// pin it, or a property of another resource may pin what it refers to. A `region:`
    /// written on the resource that says otherwise is an error.
    fn pin_regions(&mut self, resources: &mut [ResourceDecl]) {
        let mut pins: Vec<(usize, &'static str, String)> = Vec::new();
        for (i, r) in resources.iter().enumerate() {
            let Some(rt) = self.registry.get(&r.type_name) else {
                continue;
            };
            if let Some(region) = rt.pinned_region(&eval_with_unknowns(&r.props)) {
                pins.push((i, region, format!("AWS requires {} here", r.type_name)));
            }
            for (path, reference) in r.props.refs_with_paths() {
                let Target::Resource { resource, .. } = &reference.target else {
                    continue;
                };
                let Some(region) = rt.schema().prop_at(&path).and_then(|p| p.pins_region) else {
                    continue;
                };
                if let Some(t) = resources.iter().position(|d| &d.name == resource) {
                    let why = format!(
                        "`{}.{}` of {} refers to it",
                        r.name,
                        value::path_to_string(&path),
                        r.type_name
                    );
                    pins.push((t, region, why));
                }
            }
        }
        for (i, region, why) in pins {
            let r = &mut resources[i];
            if r.region == region {
                continue;
            }
            if let Some(span) = r.region_span {
                let message = format!(
                    "`{}` must be in {region} ({why}), but its `region` says {}",
                    r.name, r.region
                );
                self.error(span, message);
                continue;
            }
            r.region = region.to_string();
        }
    }
}

/// Every reference to a resource evaluated as unknown: what a type's `check` sees at load.
pub fn eval_with_unknowns(props: &SpannedExpr) -> Props {
    match props.eval(&|_| value::unknown()) {
        Value::Object(m) => m,
        _ => Props::new(),
    }
}

/// What a stack's strings can use besides resources, as far as it is known yet.
struct Builtins<'a> {
    vars: &'a BTreeMap<String, Value>,
    /// Every declared variable, with a value or not.
    declared: &'a [&'a str],
    /// Every resource name the file declares, loaded or not.
    resources: &'a [&'a str],
    stack_name: Builtin<'a>,
    region: Builtin<'a>,
    workspace: &'a str,
}

/// A built-in value while the stack's header is being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Builtin<'a> {
    /// Read after the string being resolved: using it there is a cycle.
    Later,
    /// Its own value was in error (and reported).
    Failed,
    Known(&'a str),
}

impl<'a> Builtin<'a> {
    fn from(loaded: &'a Option<String>) -> Builtin<'a> {
        match loaded {
            Some(value) => Builtin::Known(value),
            None => Builtin::Failed,
        }
    }
    fn value(self) -> Option<Value> {
        match self {
            Builtin::Known(value) => Some(Value::String(value.to_string())),
            Builtin::Later | Builtin::Failed => None,
        }
    }
}

impl Builtins<'_> {
    fn value(&self, r: &Ref) -> Option<Value> {
        match &r.target {
            Target::Var { name } => self.vars.get(name).cloned(),
            Target::StackName => self.stack_name.value(),
            Target::StackRegion => self.region.value(),
            Target::Workspace => Some(Value::String(self.workspace.to_string())),
            Target::AccountId | Target::Resource { .. } => None,
        }
    }
}

/// The names under `resources:`, whether or not each loads.
fn declared_resource_names(root: &Node) -> Vec<&str> {
    root.get("resources")
        .and_then(Node::as_map)
        .map(|entries| entries.iter().map(|(k, _)| k.name.as_str()).collect())
        .unwrap_or_default()
}

struct DeclaredAttrs<'a> {
    resources: &'a [ResourceDecl],
    registry: &'a Registry,
}

impl AttrShapes for DeclaredAttrs<'_> {
    fn attr_shape(&self, resource: &str, attr: &str) -> Option<Shape> {
        let decl = self.resources.iter().find(|d| d.name == resource)?;
        Some(
            self.registry
                .schema(&decl.type_name)?
                .attr(attr)?
                .shape
                .clone(),
        )
    }
}
