//! `plinth validate`: checks a stack file completely without calling AWS.

use std::path::PathBuf;

use clap::Args;

use super::{load_stack, offline_registry, stack_path, CliResult, GlobalArgs, Ui};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The stack file (default: -f, or plinth.yaml).
    pub stack: Option<PathBuf>,
}

pub async fn run(global: &GlobalArgs, args: ValidateArgs, ui: &Ui) -> CliResult {
    let path = stack_path(global, &args.stack);
    let registry = offline_registry();
    // The region only matters for AWS calls; validation accepts a stack without one.
    let (stack, graph) = load_stack(global, &path, &registry, Some("us-east-1".into()), ui)?;
    let order = graph.creation_order();
    ui.out(&format!(
        "{} {} is valid: stack `{}`, {} resource{}, {} output{}.",
        ui.colored(anstyle::AnsiColor::Green, "✓"),
        super::display_path(&path),
        stack.name,
        order.len(),
        if order.len() == 1 { "" } else { "s" },
        stack.outputs.len(),
        if stack.outputs.len() == 1 { "" } else { "s" },
    ));
    Ok(0)
}
