//! After a full destroy: asks AWS (by the environment's tags) whether anything is left, and
//! says what and why — still being deleted, or unknown to the state.

use anstyle::AnsiColor;
use plinth_aws::session::Session;
use plinth_core::teardown::{Leftover, TaggedResource};

use super::Ui;

/// The exit code of a destroy that left something its state does not know.
pub const UNKNOWN_LEFTOVERS: u8 = 3;

/// Checks the teardown after `plinth destroy` ended with `code`, and returns the exit code:
/// `code`, or [`UNKNOWN_LEFTOVERS`] when something tagged with the environment is neither
/// gone nor pending deletion. A targeted or unsuccessful destroy is not checked.
/// `other_regions`: where the destroyed resources kept copies (a global table's replicas).
pub async fn after_destroy(
    session: &Session,
    targets: &[String],
    other_regions: &[String],
    code: u8,
    ui: &Ui,
) -> u8 {
    if code != 0 || !targets.is_empty() {
        return code;
    }
    let env = &session.env;
    let stack = &env.stack;
    let state = match env.read_state() {
        Ok(state) => state,
        Err(e) => {
            ui.err(&format!("warning: the teardown was not verified: {e}"));
            return code;
        }
    };
    let check = session.check_teardown(&state, other_regions).await;
    for (region, err) in &check.failed {
        ui.err(&format!(
            "{}: could not check {region} for what the destroy left: {err}",
            ui.colored(AnsiColor::Yellow, "warning")
        ));
    }
    if check.searched.is_empty() {
        return code;
    }
    let environment = format!("stack `{}` / workspace `{}`", stack.name, stack.workspace);
    let leftovers = check.leftovers;
    if leftovers.is_empty() {
        let account = match &stack.account {
            Some(id) => format!(" of account {id}"),
            None => String::new(),
        };
        ui.out(&format!(
            "\nTeardown verified: nothing tagged with {environment} is left in {}{account}.",
            check.searched.join(", ")
        ));
        return code;
    }
    report(ui, &environment, &leftovers)
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
