//! `plinth drift`: what changed outside plinth since it last applied (a capacity raised in
//! the console, a rule added by hand), for one workspace or, with `--roster`, each student.

use std::path::PathBuf;

use clap::Args;
use plinth_aws::session::Session;
use plinth_core::plan::drift::{self, Drift};

use super::roster::RosterArgs;
use super::{print_stats, CliError, CliResult, GlobalArgs, Ui};

#[derive(Debug, Args, Clone)]
pub struct DriftArgs {
    /// The stack file (default: -f, or plinth.yaml).
    pub stack: Option<PathBuf>,
    /// Print what drifted as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How many AWS reads run at once. Each AWS service's requests in flight are bounded apart, by
    /// what it allows and how much it throttles.
    #[arg(long, default_value_t = plinth_core::engine::DEFAULT_PARALLELISM)]
    pub parallelism: usize,
    #[command(flatten)]
    pub roster: RosterArgs,
}

/// Exit 0 when everything is as plinth left it, 2 when something drifted, 1 on error.
pub async fn run(global: &GlobalArgs, args: DriftArgs, ui: &Ui) -> CliResult {
    if let Some(roster) = &args.roster.roster {
        return super::roster::drift(global, roster, &args, ui).await;
    }
    let session = super::open(global, &args.stack, ui).await?;
    let drifted = drift_environment(&session, &args).await?;
    if args.json {
        ui.out(&serde_json::to_string_pretty(&serde_json::json!({
            "stack": session.env.stack.name,
            "workspace": session.env.stack.workspace,
            "drifted": drifted,
        }))?);
    } else {
        show(&session, &drifted, ui);
    }
    print_stats(global, &session.aws);
    Ok(if drifted.is_empty() { 0 } else { 2 })
}

/// One environment's drift: a single workspace and each student of a roster alike.
pub async fn drift_environment(
    session: &Session,
    args: &DriftArgs,
) -> Result<Vec<Drift>, CliError> {
    Ok(session.env.drift(args.parallelism).await?)
}

/// The drift table, or the sentence that there is none.
pub fn show(session: &Session, drifted: &[Drift], ui: &Ui) {
    if drifted.is_empty() {
        ui.out("No drift: everything in the state is as plinth left it.");
        return;
    }
    let n = drifted.len();
    ui.out(&format!(
        "{n} resource{} changed outside plinth (expected: what plinth last applied; actual: what AWS has now):",
        if n == 1 { "" } else { "s" }
    ));
    let secrets = session.env.stack.sensitive_values();
    ui.out(drift::render(drifted, &secrets).trim_end());
    ui.out("Run `plinth plan` to see what apply would do about it.");
}
