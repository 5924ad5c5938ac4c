//! plinth's AWS resource types.
//!
//! Every type is one file under `resources/`, implements [`plinth_core::resource::ResourceType`]
//! and is listed once in [`registry`]. Everything else here is shared plumbing: SDK clients per
//! region, error classification and waiting.

pub mod arn;
pub mod batch;
pub mod clients;
pub mod cost;
pub mod errors;
pub mod rate_limit;
pub mod resources;
pub mod session;
pub mod state_s3;
pub mod sweep;
pub mod tagging;
pub mod wait;

pub use clients::{Aws, AwsOptions, CallStats, Persistence, RoleToAssume, Unanswered};

use std::sync::Arc;

use plinth_core::resource::Registry;

/// Every resource type plinth knows, backed by the given clients.
pub fn registry(aws: &Arc<Aws>) -> Registry {
    let mut registry = Registry::new();
    for resource_type in resources::all(aws) {
        registry.register(resource_type);
    }
    registry
}
