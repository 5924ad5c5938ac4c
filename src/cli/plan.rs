//! `plinth plan`: what apply would change, for a person (`--json` for a machine), optionally
//! saved (`-o FILE`) for `plinth apply FILE`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use plinth_aws::session::Session;
use plinth_core::plan::{render, Mode, Plan};
use plinth_core::resource::Registry;
use plinth_core::session::Planned;
use plinth_core::state::State;

use super::roster::RosterArgs;
use super::{print_stats, CliResult, GlobalArgs, Ui};

#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    /// The stack file (default: -f, or plinth.yaml).
    pub stack: Option<PathBuf>,
    /// Save the plan here, for `plinth apply FILE`.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Print the plan as JSON (with `format_version`) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan the destruction of everything in state.
    #[arg(long)]
    pub destroy: bool,
    /// Limit the plan to this resource and what it depends on (repeatable).
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// How many AWS reads run at once. Each AWS service's requests in flight are bounded apart, by
    /// what it allows and how much it throttles.
    #[arg(long, default_value_t = plinth_core::engine::DEFAULT_PARALLELISM)]
    pub parallelism: usize,
    #[command(flatten)]
    pub cost: super::cost::CostOptions,
    #[command(flatten)]
    pub roster: RosterArgs,
    /// With --roster: print each student's whole plan, not only its summary line.
    #[arg(long, requires = "roster")]
    pub full: bool,
}

/// How much of a plan is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanView {
    /// Every change, property by property, then the summary line.
    Full,
    /// Only "Plan: 1 to add, …" (or "No changes."): one line per student of a roster.
    SummaryLine,
}

/// Prints a plan for a person.
pub fn show(plan: &Plan, registry: &Registry, view: PlanView, ui: &Ui) {
    match view {
        PlanView::Full => ui.out_raw(&render::render_at(plan, registry, ui.draw())),
        PlanView::SummaryLine => ui.out(&render::summary(plan)),
    }
}

pub async fn run(global: &GlobalArgs, args: PlanArgs, ui: &Ui) -> CliResult {
    if let Some(roster) = &args.roster.roster {
        return super::roster::plan(global, roster, &args, ui).await;
    }
    let session = super::open(global, &args.stack, ui).await?;
    let env = &session.env;
    // What runs now, for the cost comparison: the state the plan was made from.
    let (plan, state) = plan_environment(&session, &args).await?;
    let (cost, prices) = super::cost::of_plan(&plan, &state, &env.registry, &args.cost)?;
    if args.json {
        let mut doc = render::to_display_json(&plan, &env.registry);
        doc["cost"] = super::cost::plan_json(&cost, &prices);
        ui.out(&serde_json::to_string_pretty(&doc)?);
    } else {
        show(&plan, &env.registry, PlanView::Full, ui);
        ui.out(&super::cost::plan_line(&cost, plan.mode));
    }
    if let Some(out) = &args.out {
        let mut saved = plan.clone();
        saved.state = env.state.clone();
        save(&saved, out)?;
        if !args.json {
            ui.out(&format!(
                "\nSaved the plan to {}. Apply exactly this plan with: plinth apply {}",
                out.display(),
                out.display()
            ));
        }
    }
    print_stats(global, &session.aws);
    Ok(if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    })
}

/// Plans one environment, holding its lock only while planning: `plinth plan` for one
/// workspace and for each student of a roster alike.
pub async fn plan_environment(
    session: &Session,
    args: &PlanArgs,
) -> Result<(Plan, State), super::CliError> {
    let mode = if args.destroy {
        Mode::Destroy
    } else {
        Mode::Apply
    };
    let Planned { plan, state, .. } = session
        .env
        .plan(mode, &args.targets, args.parallelism, "plinth plan")
        .await?;
    Ok((plan, state))
}

/// Writes a plan file atomically; it holds values of sensitive variables, so only the owner
/// may read it.
fn save(plan: &Plan, path: &Path) -> Result<(), super::CliError> {
    let text = serde_json::to_vec_pretty(plan)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = open_private(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
