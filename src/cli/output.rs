//! `plinth output [NAME]`: outputs from state. All outputs mask sensitive values; asking for
//! one by name prints its value (that is how scripts read a secret on purpose).

use clap::Args;
use plinth_core::plan::render;
use plinth_core::value::SENSITIVE_DISPLAY;
use serde_json::{Map, Value};

use super::{fail, split_stack_file, state_of, CliResult, GlobalArgs, Ui};

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// `[STACK_FILE] [NAME]`: the stack file (ends in .yaml or .yml), then one output's
    /// name; without a name, all outputs.
    #[arg(value_name = "STACK_FILE|NAME", num_args = 0..=2)]
    pub args: Vec<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print a string output without quotes (for shell scripts).
    #[arg(long)]
    pub raw: bool,
}

pub async fn run(global: &GlobalArgs, args: OutputArgs, ui: &Ui) -> CliResult {
    let (stack_file, mut names) = split_stack_file(args.args);
    if names.len() > 1 {
        return fail("expected at most one output name; usage: plinth output [STACK_FILE] [NAME]");
    }
    let (stack, files) = state_of(global, &stack_file, ui).await?;
    let state = files.read(&stack.name, &stack.workspace)?;
    let Some(name) = &names.pop() else {
        if args.json {
            let all: Map<String, Value> = state
                .outputs
                .iter()
                .map(|(k, o)| {
                    let value = if o.sensitive { Value::String(SENSITIVE_DISPLAY.into()) } else { o.value.clone() };
                    (k.clone(), serde_json::json!({"value": value, "sensitive": o.sensitive, "description": o.description}))
                })
                .collect();
            ui.out(&serde_json::to_string_pretty(&all)?);
        } else {
            for (k, o) in &state.outputs {
                let shown = if o.sensitive {
                    SENSITIVE_DISPLAY.to_string()
                } else {
                    render::inline(&o.value)
                };
                ui.out(&format!("{k} = {shown}"));
            }
        }
        return Ok(0);
    };
    let Some(output) = state.outputs.get(name) else {
        let names: Vec<&str> = state.outputs.keys().map(String::as_str).collect();
        return fail(format!(
            "no output `{name}` in state; outputs: {}",
            if names.is_empty() {
                "none (apply first)".into()
            } else {
                names.join(", ")
            }
        ));
    };
    // Explicitly requested: printed unmasked, even when sensitive, on stdout only.
    let text = match (&output.value, args.raw, args.json) {
        (Value::String(s), true, _) => s.clone(),
        (v, _, true) => serde_json::to_string_pretty(v)?,
        (v, _, false) => render::inline(v),
    };
    println!("{text}");
    Ok(0)
}
