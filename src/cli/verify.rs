//! After a full destroy: asks AWS (by the environment's tags) whether anything is left, and
//! says what and why — still being deleted, or unknown to the state.

use std::collections::BTreeSet;
use std::sync::Arc;

use anstyle::AnsiColor;
use futures::future::join_all;
use plinth_aws::tagging::{self, TagFilter};
use plinth_core::resource::{ErrorKind, OpContext, Registry, ResourceType};
use plinth_core::teardown::{self, Leftover, TaggedResource, STACK_TAG, WORKSPACE_TAG};
use plinth_core::value::Props;

use super::{Session, Ui};

/// The exit code of a destroy that left something its state does not know.
pub const UNKNOWN_LEFTOVERS: u8 = 3;

/// Checks the teardown after `plinth destroy` ended with `code`, and returns the exit code:
/// `code`, or [`UNKNOWN_LEFTOVERS`] when something tagged with the environment is neither
/// gone nor pending deletion. A targeted or unsuccessful destroy is not checked.
pub async fn after_destroy(session: &Session, targets: &[String], code: u8, ui: &Ui) -> u8 {
    if code != 0 || !targets.is_empty() {
        return code;
    }
    let stack = &session.stack;
    let state = match session.store.read(&stack.name, &stack.workspace) {
        Ok(state) => state,
        Err(e) => {
            ui.err(&format!("warning: the teardown was not verified: {e}"));
            return code;
        }
    };
    let regions = regions_used(session, &state);
    let filters = [
        TagFilter::equals(STACK_TAG, &stack.name),
        TagFilter::equals(WORKSPACE_TAG, &stack.workspace),
    ];
    let types = types_used(session, &state);
    let search = tagging::find_tagged(&session.aws, &regions, &filters, &types).await;
    for (region, err) in &search.failed {
        ui.err(&format!(
            "{}: could not check {region} for what the destroy left: {err}",
            ui.colored(AnsiColor::Yellow, "warning")
        ));
    }
    if search.searched.is_empty() {
        return code;
    }
    let environment = format!("stack `{}` / workspace `{}`", stack.name, stack.workspace);
    let found = still_there(&session.registry, search.found).await;
    let leftovers = teardown::leftovers(&state, &session.registry, &found);
    if leftovers.is_empty() {
        let account = match &stack.account {
            Some(id) => format!(" of account {id}"),
            None => String::new(),
        };
        ui.out(&format!(
            "\nTeardown verified: nothing tagged with {environment} is left in {}{account}.",
            search.searched.join(", ")
        ));
        return code;
    }
    report(ui, &environment, &leftovers)
}

/// What the tagging API listed that really exists: it answers from an index that may
/// still hold what was deleted a moment ago, so each resource of a type plinth knows is
/// read; one whose read fails, or of a type plinth does not know, is kept.
async fn still_there(registry: &Registry, found: Vec<TaggedResource>) -> Vec<TaggedResource> {
    let checks = join_all(found.iter().map(|r| exists(registry, r))).await;
    found
        .into_iter()
        .zip(checks)
        .filter_map(|(r, exists)| exists.then_some(r))
        .collect()
}

async fn exists(registry: &Registry, resource: &TaggedResource) -> bool {
    let Some((type_name, id)) = registry.resolve_arn(&resource.arn) else {
        return true;
    };
    let Some(rt) = registry.get(type_name) else {
        return true;
    };
    let ctx = OpContext::new(resource.region.clone(), id.clone());
    match rt.read(&ctx, &id, &Props::new()).await {
        Ok(found) => found.is_some(),
        Err(e) => e.kind != ErrorKind::NotFound,
    }
}

/// Every region the environment used: where its resources are declared (pinned regions
/// included) and where the state still has something, and the stack's own.
fn regions_used(session: &Session, state: &plinth_core::state::State) -> Vec<String> {
    let stack = &session.stack;
    let mut regions: BTreeSet<String> = stack.resources.iter().map(|r| r.region.clone()).collect();
    regions.extend(state.resources.values().map(|r| r.region.clone()));
    regions.insert(stack.region.clone());
    regions.retain(|r| !r.is_empty());
    regions.into_iter().collect()
}

/// The types the environment used (declared or still in state), asked to find tagged
/// resources of theirs that the tagging API does not list (IAM roles).
fn types_used(session: &Session, state: &plinth_core::state::State) -> Vec<Arc<dyn ResourceType>> {
    let names: BTreeSet<&str> = session
        .stack
        .resources
        .iter()
        .map(|r| r.type_name.as_str())
        .chain(state.resources.values().map(|r| r.type_name.as_str()))
        .collect();
    names
        .into_iter()
        .filter_map(|n| session.registry.get(n).cloned())
        .collect()
}

/// Lists what is left and why; the exit code says whether any of it is unknown to state.
fn report(ui: &Ui, environment: &str, leftovers: &[(TaggedResource, Leftover)]) -> u8 {
    ui.out(&format!(
        "\nTeardown check: {} tagged with {environment} {} still in AWS:",
        plural(leftovers.len(), "resource"),
        if leftovers.len() == 1 { "is" } else { "are" }
    ));
    for (resource, why) in leftovers {
        let why = match why {
            Leftover::PendingDeletion { name, reason } => {
                format!("pending deletion (`{name}`: {reason})")
            }
            Leftover::StillInState { name } => {
                format!("still in state as `{name}` (its delete failed)")
            }
            Leftover::UnknownToState => "unknown to state: tagged with this environment, but \
                 not a resource its state records (a duplicate from an interrupted create, or \
                 made by hand)"
                .to_string(),
        };
        ui.out(&format!("  {} ({}) — {why}", resource.arn, resource.region));
    }
    let unknown = leftovers
        .iter()
        .filter(|(_, why)| *why == Leftover::UnknownToState)
        .count();
    if unknown == 0 {
        ui.out("The next `plinth destroy` (or apply) confirms what is pending is gone.");
        return 0;
    }
    ui.err(&format!(
        "{}: {} tagged with {environment} {} not in its state, so destroy did not delete {}; \
         delete {} by hand, or run `plinth sweep` with --stack and --workspace to remove {}",
        ui.colored(AnsiColor::Red, "error"),
        plural(unknown, "resource"),
        if unknown == 1 { "is" } else { "are" },
        if unknown == 1 { "it" } else { "them" },
        if unknown == 1 { "it" } else { "them" },
        if unknown == 1 { "it" } else { "them" },
    ));
    UNKNOWN_LEFTOVERS
}

pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
