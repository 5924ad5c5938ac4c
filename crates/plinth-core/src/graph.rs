//! The dependency graph of a stack: who must exist before whom.
//!
//! An edge runs from a dependency to its dependent, so topological order is creation order
//! and its reverse is deletion order. References inside `deferrable` properties (security
//! group rules) are soft: they order like any reference unless that would close a cycle, in
//! which case the reference is *deferred* — the dependent is created without it and
//! completed by a second, in-place step once both exist.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::{has_path_connecting, tarjan_scc, toposort};
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use petgraph::Direction;

use crate::diag::{Diagnostic, Diagnostics, SourceFile, Span};
use crate::resource::Registry;
use crate::stack::expr::Target;
use crate::stack::Stack;

/// Why one resource depends on another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// A reference or `depends_on`.
    Hard,
    /// A reference in a deferrable property that did not close a cycle.
    Soft,
}

#[derive(Clone, Debug, Default)]
pub struct DepGraph {
    graph: StableDiGraph<String, EdgeKind>,
    index: BTreeMap<String, NodeIndex>,
    /// dependent → targets whose references are applied in a second step.
    deferred: BTreeMap<String, BTreeSet<String>>,
}

/// One reference between resources, with where it was written.
struct Edge {
    from: String,
    to: String,
    span: Span,
    soft: bool,
}

impl DepGraph {
    /// Builds the graph of a loaded stack; a cycle is an error naming its resources.
    pub fn build(stack: &Stack, registry: &Registry) -> Result<DepGraph, Diagnostics> {
        let mut g = DepGraph::default();
        for r in &stack.resources {
            g.add_node(&r.name);
        }
        let edges = collect_edges(stack, registry);
        for e in edges.iter().filter(|e| !e.soft) {
            g.add_edge(&e.to, &e.from, EdgeKind::Hard);
        }
        let cycles = g.cycles(&stack.file, &edges);
        if !cycles.is_empty() {
            return Err(cycles);
        }
        for e in edges.iter().filter(|e| e.soft) {
            let (Some(&dependent), Some(&target)) = (g.index.get(&e.from), g.index.get(&e.to))
            else {
                continue;
            };
            if has_path_connecting(&g.graph, dependent, target, None) {
                g.deferred
                    .entry(e.from.clone())
                    .or_default()
                    .insert(e.to.clone());
            } else {
                g.add_edge(&e.to, &e.from, EdgeKind::Soft);
            }
        }
        Ok(g)
    }

    fn add_node(&mut self, name: &str) {
        let idx = self.graph.add_node(name.to_string());
        self.index.insert(name.to_string(), idx);
    }

    fn add_edge(&mut self, dependency: &str, dependent: &str, kind: EdgeKind) {
        if let (Some(&a), Some(&b)) = (self.index.get(dependency), self.index.get(dependent)) {
            if self.graph.find_edge(a, b).is_none() {
                self.graph.add_edge(a, b, kind);
            }
        }
    }

    /// Every cycle among hard edges, as one diagnostic each.
    fn cycles(&self, file: &SourceFile, edges: &[Edge]) -> Diagnostics {
        let mut diags = Diagnostics::default();
        for scc in tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.find_edge(scc[0], scc[0]).is_some();
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            let path = self.cycle_path(&members);
            let names: Vec<&str> = path.iter().map(|i| self.graph[*i].as_str()).collect();
            let first = names.first().copied().unwrap_or_default();
            let span = edges
                .iter()
                .find(|e| e.from == first && names.contains(&e.to.as_str()))
                .map(|e| e.span)
                .unwrap_or_default();
            let mut shown: Vec<&str> = names.iter().rev().copied().collect();
            shown.push(shown[0]);
            diags.push(
                Diagnostic::error(
                    file,
                    span,
                    format!("dependency cycle: {}", shown.join(" → ")),
                )
                .with_help("each of these resources refers to the next; remove one reference or `depends_on`"),
            );
        }
        diags
    }

    /// A cycle through the smallest member, following edges inside the component.
    fn cycle_path(&self, members: &BTreeSet<NodeIndex>) -> Vec<NodeIndex> {
        let Some(&start) = members.iter().min_by_key(|i| self.graph[**i].clone()) else {
            return Vec::new();
        };
        let mut path = vec![start];
        let mut visited = BTreeSet::from([start]);
        let mut current = start;
        loop {
            let mut next: Vec<NodeIndex> = self
                .graph
                .edges_directed(current, Direction::Outgoing)
                .map(|e| e.target())
                .filter(|t| members.contains(t))
                .collect();
            next.sort_by_key(|i| self.graph[*i].clone());
            if next.contains(&start) {
                return path;
            }
            match next.into_iter().find(|n| !visited.contains(n)) {
                Some(n) => {
                    visited.insert(n);
                    path.push(n);
                    current = n;
                }
                None => return path,
            }
        }
    }

    /// Names in creation order (dependencies first), ties by name for stable output.
    pub fn creation_order(&self) -> Vec<String> {
        match toposort(&self.graph, None) {
            Ok(order) => order.into_iter().map(|i| self.graph[i].clone()).collect(),
            Err(_) => self.index.keys().cloned().collect(),
        }
    }

    /// What `name` directly depends on (hard and soft edges, not deferred references).
    pub fn dependencies(&self, name: &str) -> Vec<String> {
        self.neighbours(name, Direction::Incoming)
    }

    /// What directly depends on `name`.
    pub fn dependents(&self, name: &str) -> Vec<String> {
        self.neighbours(name, Direction::Outgoing)
    }

    fn neighbours(&self, name: &str, dir: Direction) -> Vec<String> {
        let Some(&idx) = self.index.get(name) else {
            return Vec::new();
        };
        let mut out: Vec<String> = self
            .graph
            .neighbors_directed(idx, dir)
            .map(|i| self.graph[i].clone())
            .collect();
        out.sort();
        out
    }

    /// Edges of `name` that came from deferrable properties.
    pub fn soft_dependencies(&self, name: &str) -> Vec<String> {
        let Some(&idx) = self.index.get(name) else {
            return Vec::new();
        };
        let mut out: Vec<String> = self
            .graph
            .edges_directed(idx, Direction::Incoming)
            .filter(|e| *e.weight() == EdgeKind::Soft)
            .map(|e| self.graph[e.source()].clone())
            .collect();
        out.extend(self.deferred(name));
        out.sort();
        out.dedup();
        out
    }

    /// Targets `name` refers to only in a second step (cycle-breaking).
    pub fn deferred(&self, name: &str) -> BTreeSet<String> {
        self.deferred.get(name).cloned().unwrap_or_default()
    }

    /// Everything `names` depend on, transitively, plus `names` (for `--target`).
    pub fn with_dependencies(&self, names: &[String]) -> BTreeSet<String> {
        self.closure(names, Direction::Incoming)
    }

    /// Everything that depends on `names`, transitively, plus `names` (targeted destroy).
    pub fn with_dependents(&self, names: &[String]) -> BTreeSet<String> {
        self.closure(names, Direction::Outgoing)
    }

    fn closure(&self, names: &[String], dir: Direction) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = names.to_vec();
        while let Some(n) = todo.pop() {
            if out.insert(n.clone()) {
                todo.extend(self.neighbours(&n, dir));
                if dir == Direction::Incoming {
                    todo.extend(self.deferred(&n));
                }
            }
        }
        out
    }

    /// The graph in Graphviz DOT; deferred references are dashed.
    pub fn to_dot(&self, stack: &Stack) -> String {
        let mut out = String::from("digraph plinth {\n  rankdir = LR;\n  node [shape = box];\n");
        for r in &stack.resources {
            out.push_str(&format!(
                "  \"{}\" [label = \"{}\\n{}\"];\n",
                r.name, r.name, r.type_name
            ));
        }
        for e in (&self.graph).edge_references() {
            let style = match e.weight() {
                EdgeKind::Hard => "",
                EdgeKind::Soft => " [style = dotted]",
            };
            out.push_str(&format!(
                "  \"{}\" -> \"{}\"{style};\n",
                self.graph[e.source()],
                self.graph[e.target()]
            ));
        }
        for (from, targets) in &self.deferred {
            for to in targets {
                out.push_str(&format!(
                    "  \"{to}\" -> \"{from}\" [style = dashed, label = \"deferred\"];\n"
                ));
            }
        }
        out.push_str("}\n");
        out
    }
}

fn collect_edges(stack: &Stack, registry: &Registry) -> Vec<Edge> {
    let mut edges = Vec::new();
    for r in &stack.resources {
        let schema = registry.schema(&r.type_name);
        if let crate::stack::expr::Expr::Map(entries) = &r.props.expr {
            for (prop, value) in entries {
                let soft = schema
                    .and_then(|s| s.prop(prop))
                    .is_some_and(|p| p.deferrable);
                for reference in value.refs() {
                    if let Target::Resource { resource, .. } = &reference.target {
                        edges.push(Edge {
                            from: r.name.clone(),
                            to: resource.clone(),
                            span: reference.span,
                            soft,
                        });
                    }
                }
            }
        }
        for (dep, span) in &r.depends_on {
            edges.push(Edge {
                from: r.name.clone(),
                to: dep.clone(),
                span: *span,
                soft: false,
            });
        }
    }
    edges
}
