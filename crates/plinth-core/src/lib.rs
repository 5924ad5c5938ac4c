//! plinth's core: the stack language, the dependency graph, the planner, the engine and
//! state. It knows no cloud service; resource types plug in through [`resource::ResourceType`].

pub mod cost;
pub mod decimal;
pub mod diag;
pub mod engine;
pub mod graph;
pub mod plan;
pub mod resource;
pub mod roster;
pub mod schema;
pub mod session;
pub mod stack;
pub mod state;
pub mod teardown;
#[cfg(test)]
pub(crate) mod testing;
pub mod value;
