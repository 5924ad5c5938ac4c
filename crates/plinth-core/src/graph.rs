//! The dependency graph of a stack: who must exist before whom.
//!
//! An edge runs from a dependency to its dependent, so topological order is creation order
//! and its reverse is deletion order. References inside `deferrable` properties (security
//! group rules) are soft: they order like any reference unless that would close a cycle, in
//! which case the reference is *deferred* — the dependent is created without it and
//! completed by a second, in-place step once both exist.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::{has_path_connecting, tarjan_scc};
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
        let mut waiting: BTreeMap<NodeIndex, usize> = self
            .graph
            .node_indices()
            .map(|i| (i, self.graph.edges_directed(i, Direction::Incoming).count()))
            .collect();
        let mut ready: BTreeSet<(String, NodeIndex)> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(i, _)| (self.graph[*i].clone(), *i))
            .collect();
        let mut order = Vec::with_capacity(waiting.len());
        while let Some((name, i)) = ready.pop_first() {
            order.push(name);
            for e in self.graph.edges_directed(i, Direction::Outgoing) {
                let dependent = e.target();
                if let Some(n) = waiting.get_mut(&dependent) {
                    *n -= 1;
                    if *n == 0 {
                        ready.insert((self.graph[dependent].clone(), dependent));
                    }
                }
            }
        }
        if order.len() < self.graph.node_count() {
            // Only a cyclic graph gets here, and `build` refuses those.
            return self.index.keys().cloned().collect();
        }
        order
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{load, registry, FakeCloud};

    const HEAD: &str = "stack: demo\nregion: us-east-1\nresources:\n";

    fn stack(resources: &str) -> Stack {
        match load(&format!("{HEAD}{resources}")) {
            Ok(s) => s,
            Err(d) => panic!("the stack should load:\n{d}"),
        }
    }

    fn graph(stack: &Stack) -> DepGraph {
        DepGraph::build(stack, &registry(&FakeCloud::new())).expect("acyclic")
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// a ← b ← c (depends_on), d refers to a and c; e stands alone.
    fn diamond() -> Stack {
        stack(
            "  d:\n    type: test.thing\n    name: \"${a.name}-${c.name}\"\n  c:\n    type: test.thing\n    name: c\n    depends_on: [b]\n  b:\n    type: test.thing\n    name: b\n    peer: ${a.arn}\n  a:\n    type: test.thing\n    name: a\n  e:\n    type: test.thing\n    name: e\n",
        )
    }

    #[test]
    fn creation_order_puts_every_dependency_before_its_dependents() {
        let g = graph(&diamond());
        let order = g.creation_order();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, names(&["a", "b", "c", "d", "e"]), "each once");
        let pos = |n: &str| order.iter().position(|x| x == n).expect("present");
        for (dep, dependent) in [("a", "b"), ("b", "c"), ("a", "d"), ("c", "d")] {
            assert!(
                pos(dep) < pos(dependent),
                "{dep} must come before {dependent}: {order:?}"
            );
        }
    }

    #[test]
    fn creation_order_breaks_ties_by_name() {
        let g = graph(&stack(
            "  fresh:\n    type: test.thing\n    name: f\n  grow:\n    type: test.thing\n    name: g\n  rename:\n    type: test.thing\n    name: r\n    peer: ${fresh.arn}\n  same:\n    type: test.thing\n    name: s\n  alpha:\n    type: test.thing\n    name: a\n    depends_on: [same]\n",
        ));
        // Among what is ready at each point, the smallest name comes first.
        assert_eq!(
            g.creation_order(),
            names(&["fresh", "grow", "rename", "same", "alpha"])
        );
    }

    #[test]
    fn direct_dependencies_and_dependents_come_from_references_and_depends_on() {
        let g = graph(&diamond());
        assert_eq!(g.dependencies("d"), names(&["a", "c"]));
        assert_eq!(g.dependencies("c"), names(&["b"]), "depends_on is an edge");
        assert_eq!(g.dependencies("a"), Vec::<String>::new());
        assert_eq!(g.dependents("a"), names(&["b", "d"]));
        assert_eq!(g.dependents("e"), Vec::<String>::new());
        assert_eq!(g.dependencies("nope"), Vec::<String>::new());
    }

    #[test]
    fn two_references_to_the_same_resource_make_one_edge() {
        let g = graph(&stack(
            "  a:\n    type: test.thing\n    name: a\n  b:\n    type: test.thing\n    name: \"${a.name}\"\n    peer: \"${a.arn}/${a.id}\"\n",
        ));
        assert_eq!(g.dependencies("b"), names(&["a"]));
        let dot = g.to_dot(&diamond());
        assert_eq!(dot.matches("\"a\" -> \"b\"").count(), 1, "{dot}");
    }

    #[test]
    fn with_dependencies_and_with_dependents_are_transitive() {
        let g = graph(&diamond());
        assert_eq!(g.with_dependencies(&names(&["c"])), set(&["a", "b", "c"]));
        assert_eq!(
            g.with_dependencies(&names(&["d"])),
            set(&["a", "b", "c", "d"])
        );
        assert_eq!(g.with_dependencies(&names(&["e"])), set(&["e"]));
        assert_eq!(g.with_dependents(&names(&["b"])), set(&["b", "c", "d"]));
        assert_eq!(
            g.with_dependents(&names(&["a"])),
            set(&["a", "b", "c", "d"])
        );
        assert_eq!(
            g.with_dependents(&names(&["b", "e"])),
            set(&["b", "c", "d", "e"])
        );
    }

    /// x and y each have a rule naming the other.
    fn mutual() -> Stack {
        stack(
            "  x:\n    type: test.thing\n    name: x\n    rules: [{ peer: \"${y.id}\", port: 80 }]\n  y:\n    type: test.thing\n    name: y\n    rules: [{ peer: \"${x.id}\", port: 81 }]\n",
        )
    }

    #[test]
    fn mutual_references_in_deferrable_rules_make_one_soft_edge_and_one_deferred_reference() {
        let s = mutual();
        let g = graph(&s);
        let deferred: Vec<(String, BTreeSet<String>)> = ["x", "y"]
            .iter()
            .map(|n| (n.to_string(), g.deferred(n)))
            .filter(|(_, d)| !d.is_empty())
            .collect();
        assert_eq!(
            deferred.len(),
            1,
            "exactly one side is deferred: {deferred:?}"
        );
        let (later, targets) = &deferred[0];
        let first = if later == "x" { "y" } else { "x" };
        assert_eq!(targets, &set(&[first]));
        // The other reference is an ordinary (soft) edge: `first` waits for `later`.
        assert_eq!(g.dependencies(first), names(&[later]));
        assert_eq!(g.dependencies(later), Vec::<String>::new());
        assert_eq!(g.soft_dependencies(first), names(&[later]));
        assert_eq!(g.soft_dependencies(later), names(&[first]));
        let order = g.creation_order();
        assert_eq!(order, names(&[later.as_str(), first]));
        // A --target of either side brings the other along.
        assert_eq!(g.with_dependencies(&names(&[later])), set(&["x", "y"]));
    }

    #[test]
    fn a_deferrable_reference_that_closes_no_cycle_is_an_ordinary_soft_edge() {
        let g = graph(&stack(
            "  a:\n    type: test.thing\n    name: a\n    rules: [{ peer: \"${b.id}\" }]\n  b:\n    type: test.thing\n    name: b\n",
        ));
        assert_eq!(g.dependencies("a"), names(&["b"]));
        assert_eq!(g.soft_dependencies("a"), names(&["b"]));
        assert!(g.deferred("a").is_empty());
        assert_eq!(g.creation_order(), names(&["b", "a"]));
    }

    #[test]
    fn when_a_hard_reference_and_a_rule_form_a_loop_the_rule_is_deferred() {
        // x needs y's arn (hard); y's rule names x (soft): y first, its rule later.
        let g = graph(&stack(
            "  x:\n    type: test.thing\n    name: x\n    peer: ${y.arn}\n  y:\n    type: test.thing\n    name: y\n    rules: [{ peer: \"${x.id}\" }]\n",
        ));
        assert_eq!(g.deferred("y"), set(&["x"]));
        assert!(g.deferred("x").is_empty());
        assert_eq!(g.dependencies("x"), names(&["y"]));
        assert_eq!(g.dependencies("y"), Vec::<String>::new());
        assert_eq!(g.creation_order(), names(&["y", "x"]));
    }

    #[test]
    fn a_hard_cycle_is_an_error_naming_its_members() {
        // Loading refuses cycles, so make one by hand in a loaded stack.
        let mut s = diamond();
        let a = s.resources.iter_mut().find(|r| r.name == "a").expect("a");
        a.depends_on.push(("d".into(), Span::default()));
        let err = DepGraph::build(&s, &registry(&FakeCloud::new())).expect_err("a cycle");
        let messages: Vec<&str> = err.errors().map(|d| d.message.as_str()).collect();
        assert_eq!(messages.len(), 1, "{err}");
        let chain = messages[0]
            .strip_prefix("dependency cycle: ")
            .expect("a cycle message");
        let mut members: Vec<&str> = chain.split(" → ").skip(1).collect();
        members.sort();
        // a → d (depends_on), d → c, c → b, b → a: every member once, `e` not at all.
        assert_eq!(members, vec!["a", "b", "c", "d"], "{chain}");
    }

    #[test]
    fn two_separate_cycles_are_two_errors() {
        let mut s = stack(
            "  a:\n    type: test.thing\n    name: a\n  b:\n    type: test.thing\n    name: b\n    peer: ${a.arn}\n  c:\n    type: test.thing\n    name: c\n  d:\n    type: test.thing\n    name: d\n    peer: ${c.arn}\n",
        );
        for (from, to) in [("a", "b"), ("c", "d")] {
            s.resources
                .iter_mut()
                .find(|r| r.name == from)
                .expect("resource")
                .depends_on
                .push((to.into(), Span::default()));
        }
        let err = DepGraph::build(&s, &registry(&FakeCloud::new())).expect_err("cycles");
        assert_eq!(err.errors().count(), 2, "{err}");
    }

    #[test]
    fn dot_output_lists_nodes_with_types_and_every_kind_of_edge() {
        let s = stack(
            "  a:\n    type: test.thing\n    name: a\n  b:\n    type: test.thing\n    name: b\n    peer: ${a.arn}\n  c:\n    type: test.thing\n    name: c\n    rules: [{ peer: \"${b.id}\" }]\n  x:\n    type: test.thing\n    name: x\n    peer: ${y.arn}\n  y:\n    type: test.thing\n    name: y\n    rules: [{ peer: \"${x.id}\" }]\n",
        );
        let g = graph(&s);
        let dot = g.to_dot(&s);
        assert!(dot.starts_with("digraph plinth {"), "{dot}");
        assert!(dot.trim_end().ends_with('}'), "{dot}");
        assert!(dot.contains("\"a\" [label = \"a\\ntest.thing\"];"), "{dot}");
        assert!(dot.contains("  \"a\" -> \"b\";\n"), "a hard edge: {dot}");
        assert!(
            dot.contains("  \"b\" -> \"c\" [style = dotted];\n"),
            "a soft edge: {dot}"
        );
        assert!(dot.contains("  \"y\" -> \"x\";\n"), "{dot}");
        assert!(
            dot.contains("  \"x\" -> \"y\" [style = dashed, label = \"deferred\"];\n"),
            "a deferred reference: {dot}"
        );
        assert_eq!(dot.matches("->").count(), 4, "{dot}");
    }
}
