//! `plinth state list|show|rm|unlock`: inspect the state, forget a resource without deleting
//! it, break a dead run's lock; `init|pull|push|migrate` (in `state_move`) set up, copy and
//! move it.

use clap::Subcommand;
use plinth_core::plan::render;

use std::path::PathBuf;

use super::{fail, offline_registry, positionals, state_of, CliResult, GlobalArgs, Ui};

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List resources in state.
    List {
        /// The stack file (default: -f, or plinth.yaml).
        stack: Option<PathBuf>,
    },
    /// Show one resource's state (sensitive values masked).
    Show {
        /// `[STACK_FILE] NAME`
        #[arg(value_name = "STACK_FILE|NAME", num_args = 1..=2, required = true)]
        args: Vec<String>,
    },
    /// Break the lock of a run that is gone (state on S3), naming its id.
    Unlock {
        /// `[STACK_FILE] LOCK_ID`
        #[arg(value_name = "STACK_FILE|LOCK_ID", num_args = 1..=2, required = true)]
        args: Vec<String>,
    },
    /// Create a bucket for state the right way (private, versioned, encrypted, old
    /// versions expired after 90 days), or complete an existing one.
    Init {
        /// s3://BUCKET
        url: String,
    },
    /// Write the state to a file (readable by you only; it holds sensitive values), for
    /// repair.
    Pull {
        /// The stack file (default: -f, or plinth.yaml).
        stack: Option<PathBuf>,
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: PathBuf,
    },
    /// Replace the state with a file (one `state pull` wrote), under the lock.
    Push {
        /// `[STACK_FILE] FILE`
        #[arg(value_name = "STACK_FILE|FILE", num_args = 1..=2, required = true)]
        args: Vec<String>,
        /// Push a state of another lineage (another history) over this one.
        #[arg(long)]
        force: bool,
    },
    /// Move the state (serial, lineage, outputs) to another backend.
    Migrate {
        /// The stack file (default: -f, or plinth.yaml).
        stack: Option<PathBuf>,
        /// Where to: s3://BUCKET/PREFIX, or a folder.
        #[arg(long = "to", value_name = "URL|DIR")]
        to: String,
    },
    /// Forget a resource: it stays in AWS, plinth stops managing it.
    Rm {
        /// `[STACK_FILE] NAME`
        #[arg(value_name = "STACK_FILE|NAME", num_args = 1..=2, required = true)]
        args: Vec<String>,
    },
}

pub async fn run(global: &GlobalArgs, command: StateCommand, ui: &Ui) -> CliResult {
    let (stack_file, command) = match command {
        StateCommand::Init { url } => return super::state_move::init(global, &url, ui).await,
        StateCommand::Pull { stack, out } => {
            return super::state_move::pull(global, &stack, &out, ui).await
        }
        StateCommand::Push { args, force } => {
            let (stack, [file]) = positionals("state push", ["file"], args)?;
            return super::state_move::push(global, &stack, &PathBuf::from(file), force, ui).await;
        }
        StateCommand::Migrate { stack, to } => {
            return super::state_move::migrate(global, &stack, &to, ui).await
        }
        StateCommand::List { stack } => (stack, Named::List),
        StateCommand::Show { args } => {
            let (stack, [name]) = positionals("state show", ["name"], args)?;
            (stack, Named::Show(name))
        }
        StateCommand::Rm { args } => {
            let (stack, [name]) = positionals("state rm", ["name"], args)?;
            (stack, Named::Rm(name))
        }
        StateCommand::Unlock { args } => {
            let (stack, [id]) = positionals("state unlock", ["lock_id"], args)?;
            (stack, Named::Unlock(id))
        }
    };
    let (stack, files) = state_of(global, &stack_file, ui).await?;
    match command {
        Named::List => {
            let state = files.read(&stack.name, &stack.workspace)?;
            for (name, r) in &state.resources {
                ui.out(&format!("{name}\t{}\t{}\t{}", r.type_name, r.region, r.id));
            }
            Ok(0)
        }
        Named::Show(name) => {
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
        Named::Unlock(id) => {
            let held = files.unlock(&stack.name, &stack.workspace, &id)?;
            ui.out(&format!(
                "Broke the lock {id} of {held} on {}.",
                files.location()
            ));
            Ok(0)
        }
        Named::Rm(name) => {
            let (locked, mut state) = super::lock_state(
                global.lock_timeout,
                &*files,
                &stack.name,
                &stack.workspace,
                "plinth state rm",
            )
            .await?;
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

/// A state command with its stack file taken out.
enum Named {
    List,
    Show(String),
    Rm(String),
    Unlock(String),
}
