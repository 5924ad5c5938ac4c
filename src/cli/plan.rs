//! `plinth plan`: what apply would change, for a person (`--json` for a machine), optionally
//! saved (`-o FILE`) for `plinth apply FILE`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::Args;
use plinth_core::plan::{self, render, Mode, Plan, PlanRequest};
use plinth_core::state::State;
use plinth_core::state::StateLock;

use plinth_core::resource::Registry;

use super::roster::RosterArgs;
use super::{print_stats, CliResult, GlobalArgs, Session, Ui};

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
    /// How many AWS reads run at once.
    #[arg(long, default_value_t = 16)]
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
        PlanView::Full => ui.out_raw(&render::render(plan, registry, ui.color)),
        PlanView::SummaryLine => ui.out(&render::summary(plan)),
    }
}

/// Takes the lock, reads the state and makes the plan. The lock is returned so apply can
/// hold it from planning through applying.
pub async fn make(
    session: &Session,
    mode: Mode,
    targets: &[String],
    parallelism: usize,
    command: &str,
) -> Result<(Box<dyn StateLock>, State, Plan), super::CliError> {
    let (locked, state) = super::lock_state(
        session.lock_timeout,
        &*session.store,
        &session.stack.name,
        &session.stack.workspace,
        command,
    )
    .await?;
    let request = PlanRequest {
        stack: &session.stack,
        graph: &session.graph,
        state: &state,
        registry: &session.registry,
        mode,
        targets: targets.to_vec(),
        parallelism,
        now: SystemTime::now(),
    };
    let plan = plan::make_plan(request).await?;
    Ok((locked, state, plan))
}

pub async fn run(global: &GlobalArgs, args: PlanArgs, ui: &Ui) -> CliResult {
    if let Some(roster) = &args.roster.roster {
        return super::roster::plan(global, roster, &args, ui).await;
    }
    let session = Session::open(global, &args.stack, ui).await?;
    let plan = plan_environment(&session, &args).await?;
    // What runs now, for the cost comparison: the state the plan was made from.
    let state = session
        .store
        .read(&session.stack.name, &session.stack.workspace)?;
    let (cost, prices) = super::cost::of_plan(&plan, &state, &session.registry, &args.cost)?;
    if args.json {
        let mut doc = render::to_display_json(&plan, &session.registry);
        doc["cost"] = super::cost::plan_json(&cost, &prices);
        ui.out(&serde_json::to_string_pretty(&doc)?);
    } else {
        show(&plan, &session.registry, PlanView::Full, ui);
        ui.out(&super::cost::plan_line(&cost, plan.mode));
    }
    if let Some(out) = &args.out {
        let mut saved = plan.clone();
        saved.state = session.state.clone();
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
pub async fn plan_environment(session: &Session, args: &PlanArgs) -> Result<Plan, super::CliError> {
    let mode = if args.destroy {
        Mode::Destroy
    } else {
        Mode::Apply
    };
    let (locked, _state, plan) = make(
        session,
        mode,
        &args.targets,
        args.parallelism,
        "plinth plan",
    )
    .await?;
    drop(locked);
    Ok(plan)
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
