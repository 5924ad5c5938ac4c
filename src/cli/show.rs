//! `plinth show`: what the state holds, sensitive values masked.

use std::path::PathBuf;

use clap::Args;
use plinth_core::plan::render;
use plinth_core::resource::Registry;
use plinth_core::state::{ResourceState, State, Status};
use plinth_core::value::{Props, SENSITIVE_DISPLAY};
use serde_json::{json, Value};

use super::{offline_registry, state_of, CliResult, GlobalArgs, Ui};

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The stack file (default: -f, or plinth.yaml).
    pub stack: Option<PathBuf>,
    /// Print the state as JSON (sensitive values masked).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(global: &GlobalArgs, args: ShowArgs, ui: &Ui) -> CliResult {
    let (stack, files) = state_of(global, &args.stack, ui).await?;
    let state = files.read(&stack.name, &stack.workspace)?;
    let registry = offline_registry();
    if args.json {
        ui.out(&serde_json::to_string_pretty(&masked_state(
            &state, &registry,
        ))?);
        return Ok(0);
    }
    if state.resources.is_empty() {
        ui.out(&format!(
            "The state of stack `{}` (workspace `{}`) is empty.",
            state.stack, state.workspace
        ));
        return Ok(0);
    }
    ui.out(&format!(
        "Stack `{}`, workspace `{}`, state serial {}.",
        state.stack, state.workspace, state.serial
    ));
    if let Some(at) = &state.expires_at {
        ui.out(&format!("Expires at {at} ({}).", render::time_left(at)));
    }
    for (name, r) in &state.resources {
        ui.out("");
        ui.out(&format!(
            "{} ({}, {}) [id={}]{}",
            ui.bold(name),
            r.type_name,
            r.region,
            r.id,
            status_note(r)
        ));
        print_map(ui, "", &masked_props(&r.props, &r.type_name, &registry));
        if !r.attrs.is_empty() {
            print_map(ui, "attribute ", &r.attrs);
        }
    }
    super::apply::print_outputs(ui, &state);
    Ok(0)
}

fn status_note(r: &ResourceState) -> String {
    match &r.status {
        Status::Ready => String::new(),
        Status::Creating => {
            " — creation was interrupted; the next plan adopts or recreates it".into()
        }
        Status::PendingDelete { reason, since } => {
            format!(" — deletion pending since {since}: {reason}")
        }
    }
}

fn print_map(ui: &Ui, prefix: &str, props: &Props) {
    let width = props.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in props {
        ui.out(&format!("    {prefix}{k:<width$} = {}", render::inline(v)));
    }
}

/// Properties with sensitive ones masked.
pub fn masked_props(props: &Props, type_name: &str, registry: &Registry) -> Props {
    let schema = registry.schema(type_name);
    props
        .iter()
        .map(|(k, v)| {
            let sensitive = schema.and_then(|s| s.prop(k)).is_some_and(|p| p.sensitive);
            (
                k.clone(),
                if sensitive {
                    json!(SENSITIVE_DISPLAY)
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

pub fn masked_state(state: &State, registry: &Registry) -> Value {
    let mut doc = serde_json::to_value(state).unwrap_or(Value::Null);
    for (name, r) in &state.resources {
        doc["resources"][name]["props"] =
            Value::Object(masked_props(&r.props, &r.type_name, registry));
    }
    for (name, o) in &state.outputs {
        if o.sensitive {
            doc["outputs"][name]["value"] = json!(SENSITIVE_DISPLAY);
        }
    }
    doc
}
