//! `plinth state list|show|rm`: inspect the state, or forget a resource without deleting it.

use clap::Subcommand;
use plinth_core::plan::render;

use super::{fail, offline_registry, state_of, CliResult, GlobalArgs, Ui};

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List resources in state.
    List,
    /// Show one resource's state (sensitive values masked).
    Show { name: String },
    /// Forget a resource: it stays in AWS, plinth stops managing it.
    Rm { name: String },
}

pub async fn run(global: &GlobalArgs, command: StateCommand, ui: &Ui) -> CliResult {
    let (stack, files) = state_of(global, &None, ui)?;
    match command {
        StateCommand::List => {
            let state = files.read(&stack.name, &stack.workspace)?;
            for (name, r) in &state.resources {
                ui.out(&format!("{name}\t{}\t{}\t{}", r.type_name, r.region, r.id));
            }
            Ok(0)
        }
        StateCommand::Show { name } => {
            let state = files.read(&stack.name, &stack.workspace)?;
            let Some(r) = state.resources.get(&name) else {
                return fail(format!("no resource `{name}` in state"));
            };
            let registry = offline_registry();
            let mut doc = serde_json::to_value(r)?;
            doc["props"] = serde_json::Value::Object(super::show::masked_props(
                &r.props,
                &r.type_name,
                &registry,
            ));
            ui.out(&serde_json::to_string_pretty(&doc)?);
            Ok(0)
        }
        StateCommand::Rm { name } => {
            let (locked, mut state) =
                files.lock_and_read(&stack.name, &stack.workspace, "plinth state rm")?;
            let Some(removed) = state.resources.remove(&name) else {
                return fail(format!("no resource `{name}` in state"));
            };
            locked.write(&mut state)?;
            ui.out(&format!(
                "Removed `{name}` ({} {}) from state. It still exists in AWS; plinth no longer manages it. ({})",
                removed.type_name,
                removed.id,
                render::inline(&serde_json::Value::String(removed.region))
            ));
            Ok(0)
        }
    }
}
