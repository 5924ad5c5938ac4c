//! `plinth schema`: a JSON Schema of the stack format, generated from the same resource
//! type declarations the loader checks against, so the two never disagree.

use plinth_core::schema::stack_json_schema;

use super::{offline_registry, CliResult, Ui};

pub fn run(ui: &Ui) -> CliResult {
    let registry = offline_registry();
    let schema = stack_json_schema(&registry.schemas());
    ui.out(&serde_json::to_string_pretty(&schema)?);
    Ok(0)
}
