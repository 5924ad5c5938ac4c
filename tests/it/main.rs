//! The one integration-test binary (each extra binary would relink the whole AWS SDK).
//!
//! - `mock_*`: SDK-level tests replaying real AWS responses for what the emulator lacks.
//! - `e2e_*`: the real `plinth` binary against a moto server the harness starts.
//! - `sdk_enums`: the value lists that are not the SDK's own, against the SDK's.
//! - `aws_units`: plinth-aws's plain functions (the crate has no test binary of its own).

mod aws_units;
mod cost_rules;
mod e2e_accounts;
mod e2e_cli;
mod e2e_cost;
mod e2e_edge;
mod e2e_elasticache;
mod e2e_faults;
mod e2e_interrupt;
mod e2e_labs;
mod e2e_lifecycle;
mod e2e_network;
mod e2e_plans;
mod e2e_roster;
mod e2e_state_s3;
mod e2e_storage;
mod e2e_sweep;
mod harness;
mod mock_acm;
mod mock_assume_role;
mod mock_cloudfront_distribution;
mod mock_cloudfront_policies;
mod mock_dynamodb;
mod mock_ec2;
mod mock_elasticache_cluster;
mod mock_elasticache_groups;
mod mock_labs;
mod mock_lambda;
mod mock_s3;
mod mock_state_s3;
mod mock_support;
mod net_faults;
mod sdk_enums;
