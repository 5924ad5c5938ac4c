//! `plinth graph`: the dependency graph in Graphviz DOT (`plinth graph | dot -Tsvg`).

use std::path::PathBuf;

use clap::Args;

use super::{load_stack, offline_registry, stack_path, CliResult, GlobalArgs, Ui};

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The stack file (default: -f, or plinth.yaml).
    pub stack: Option<PathBuf>,
}

pub async fn run(global: &GlobalArgs, args: GraphArgs, ui: &Ui) -> CliResult {
    let path = stack_path(global, &args.stack);
    let registry = offline_registry();
    let (stack, graph) = load_stack(global, &path, &registry, Some("us-east-1".into()), ui)?;
    ui.out_raw(&graph.to_dot(&stack));
    Ok(0)
}
