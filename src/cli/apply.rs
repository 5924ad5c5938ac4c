//! `plinth apply` and `plinth destroy`: plan, confirm, execute, report.

use std::path::{Path, PathBuf};

use anstyle::AnsiColor;
use clap::Args;
use plinth_aws::session::{store_at, Session, StoreAt};
use plinth_core::engine::{ApplyReport, Outcome};
use plinth_core::plan::{render, Mode, Plan};
use plinth_core::resource::Registry;
use plinth_core::session::outcome::{EnvOutcome, Tally};
use plinth_core::session::{self, Execution, Planned, CANCEL_GRACE};
use plinth_core::state::State;
use tokio::sync::watch;

use super::plan::{show, PlanView};
use super::roster::RosterArgs;
use super::{aws_options, connect, fail, print_stats, CliError, CliResult, GlobalArgs, Ui};

#[derive(Debug, Args, Clone)]
pub struct ApplyArgs {
    /// A stack file, or a plan saved with `plinth plan -o FILE` to apply exactly.
    pub stack_or_plan: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes", visible_alias = "auto-approve")]
    pub yes: bool,
    /// Limit to this resource and what it depends on (repeatable).
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// How many operations run at once. Each AWS service's requests in flight are bounded apart, by
    /// what it allows and how much it throttles.
    #[arg(long, default_value_t = plinth_core::engine::DEFAULT_PARALLELISM)]
    pub parallelism: usize,
    /// Refuse (before any change) a plan whose estimated cost after apply is above this many
    /// USD a month, or whose estimate has a price the table lacks (`plinth cost` explains it).
    #[arg(long, value_name = "USD", value_parser = super::cost::parse_usd)]
    pub max_monthly_cost: Option<f64>,
    #[command(flatten)]
    pub cost: super::cost::CostOptions,
    #[command(flatten)]
    pub roster: RosterArgs,
}

#[derive(Debug, Args, Clone)]
pub struct DestroyArgs {
    /// The stack file (default: -f, or plinth.yaml).
    pub stack: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes", visible_alias = "auto-approve")]
    pub yes: bool,
    /// Return once AWS has accepted every deletion; what it is still deleting (a cache
    /// cluster takes minutes) is recorded as pending and confirmed by the next run.
    #[arg(long)]
    pub no_wait: bool,
    /// Destroy only this resource and what depends on it (repeatable).
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// How many operations run at once. Each AWS service's requests in flight are bounded apart, by
    /// what it allows and how much it throttles.
    #[arg(long, default_value_t = plinth_core::engine::DEFAULT_PARALLELISM)]
    pub parallelism: usize,
    #[command(flatten)]
    pub cost: super::cost::CostOptions,
    #[command(flatten)]
    pub roster: RosterArgs,
}

/// How one environment is applied or destroyed: the same for a single workspace and for
/// each student of a roster.
#[derive(Clone)]
pub struct EnvRun {
    pub targets: Vec<String>,
    pub parallelism: usize,
    pub yes: bool,
    pub wait_for_deletion: bool,
    pub plan_view: PlanView,
    /// A Ctrl-C signal shared by several environments (a roster's); without one, the run
    /// watches Ctrl-C itself while the engine works.
    pub cancel: Option<watch::Receiver<bool>>,
    /// Where the cost estimate's prices and usage assumptions come from.
    pub cost: super::cost::CostOptions,
    /// `apply --max-monthly-cost`.
    pub max_monthly_cost: Option<f64>,
}

impl EnvRun {
    pub fn of_apply(args: &ApplyArgs) -> EnvRun {
        EnvRun {
            cost: args.cost.clone(),
            max_monthly_cost: args.max_monthly_cost,
            ..EnvRun::new(&args.targets, args.parallelism, args.yes, true)
        }
    }

    pub fn of_destroy(args: &DestroyArgs) -> EnvRun {
        EnvRun {
            cost: args.cost.clone(),
            ..EnvRun::new(&args.targets, args.parallelism, args.yes, !args.no_wait)
        }
    }

    fn new(targets: &[String], parallelism: usize, yes: bool, wait_for_deletion: bool) -> EnvRun {
        EnvRun {
            targets: targets.to_vec(),
            parallelism,
            yes,
            wait_for_deletion,
            plan_view: PlanView::Full,
            cancel: None,
            cost: super::cost::CostOptions::default(),
            max_monthly_cost: None,
        }
    }
}

pub async fn run_apply(global: &GlobalArgs, args: ApplyArgs, ui: &Ui) -> CliResult {
    if let Some(roster) = &args.roster.roster {
        return super::roster::apply(global, roster, &args, ui).await;
    }
    if let Some(path) = &args.stack_or_plan {
        if is_plan_file(path) {
            return apply_saved(global, path, &args, ui).await;
        }
    }
    let session = super::open(global, &args.stack_or_plan, ui).await?;
    let outcome = apply_environment(&session, &EnvRun::of_apply(&args), ui).await?;
    print_stats(global, &session.aws);
    Ok(outcome.code)
}

pub async fn run_destroy(global: &GlobalArgs, args: DestroyArgs, ui: &Ui) -> CliResult {
    if let Some(roster) = &args.roster.roster {
        return super::roster::destroy(global, roster, &args, ui).await;
    }
    let session = super::open(global, &args.stack, ui).await?;
    let outcome = destroy_environment(&session, &EnvRun::of_destroy(&args), ui).await?;
    print_stats(global, &session.aws);
    Ok(outcome.code)
}

/// Plans, confirms and applies one environment (one workspace).
pub async fn apply_environment(
    session: &Session,
    run: &EnvRun,
    ui: &Ui,
) -> Result<EnvOutcome, CliError> {
    let env = &session.env;
    let planned = env
        .plan(Mode::Apply, &run.targets, run.parallelism, "plinth apply")
        .await?;
    show(&planned.plan, &env.registry, run.plan_view, ui);
    let cost = super::cost::print_for_plan(
        &planned.plan,
        &planned.state,
        &env.registry,
        &run.cost,
        run.plan_view,
        ui,
    )?;
    if !planned.plan.has_changes() {
        print_outputs(ui, &planned.state);
        return Ok(EnvOutcome::no_changes());
    }
    super::cost::check_budget(run.max_monthly_cost, &cost)?;
    if !ui.confirm("Do you want to perform these actions?", run.yes)? {
        ui.out("Apply cancelled.");
        return Ok(EnvOutcome::failed("apply cancelled"));
    }
    run_engine(&env.registry, &env.stack.file.base_dir(), planned, run, ui).await
}

/// Plans, confirms and destroys one environment (one workspace), then checks that nothing
/// tagged with it is left.
pub async fn destroy_environment(
    session: &Session,
    run: &EnvRun,
    ui: &Ui,
) -> Result<EnvOutcome, CliError> {
    // Read before the destroy empties the state: where its resources keep copies.
    let other_regions = match session.env.read_state() {
        Ok(state) => plinth_core::teardown::other_regions_of(&state, &session.env.registry),
        Err(_) => Vec::new(),
    };
    let outcome = destroy_unverified(session, run, ui).await?;
    let code =
        super::verify::after_destroy(session, &run.targets, &other_regions, outcome.code, ui).await;
    Ok(outcome.with_leftovers(code))
}

async fn destroy_unverified(
    session: &Session,
    run: &EnvRun,
    ui: &Ui,
) -> Result<EnvOutcome, CliError> {
    let env = &session.env;
    let planned = env
        .plan(
            Mode::Destroy,
            &run.targets,
            run.parallelism,
            "plinth destroy",
        )
        .await?;
    let plan = &planned.plan;
    if plan.resources.is_empty() {
        ui.out(&format!(
            "Nothing to destroy: the state of stack `{}` (workspace `{}`) is empty.",
            plan.stack, plan.workspace
        ));
        return Ok(EnvOutcome::no_changes());
    }
    show(plan, &env.registry, run.plan_view, ui);
    super::cost::print_for_plan(
        plan,
        &planned.state,
        &env.registry,
        &run.cost,
        run.plan_view,
        ui,
    )?;
    if !ui.confirm(
        "Do you really want to destroy all these resources?",
        run.yes,
    )? {
        ui.out("Destroy cancelled.");
        return Ok(EnvOutcome::failed("destroy cancelled"));
    }
    run_engine(&env.registry, &env.stack.file.base_dir(), planned, run, ui).await
}

/// A saved plan is JSON with `"kind": "plinth-plan"`; anything else is a stack file.
pub fn is_plan_file(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    text.trim_start().starts_with('{')
        && serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("kind")
                    .and_then(|k| k.as_str())
                    .map(|k| k == "plinth-plan")
            })
            .unwrap_or(false)
}

async fn apply_saved(global: &GlobalArgs, path: &Path, args: &ApplyArgs, ui: &Ui) -> CliResult {
    let text = std::fs::read_to_string(path)?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| {
        CliError::Message(format!(
            "{} is not a readable plinth plan: {e}",
            path.display()
        ))
    })?;
    if plan.format_version.split('.').next() != Some("1") {
        return fail(format!(
            "{} has plan format {}, this plinth reads 1.x",
            path.display(),
            plan.format_version
        ));
    }
    ui.add_secrets(plan.sensitive_values.clone());
    let aws = connect(global, Some(plan.region.clone())).await;
    if let Some(planned) = &plan.account {
        let caller = aws.account_id(&aws.home_region()).await.map_err(|e| {
            CliError::Message(format!(
                "reading which account your credentials are for: {e}"
            ))
        })?;
        if &caller != planned {
            return fail(format!(
                "{} was planned for account {planned}, and your credentials are for account {caller}: apply it with credentials of {planned}",
                path.display()
            ));
        }
    }
    let registry = plinth_aws::registry(&aws);
    let stack_file = PathBuf::from(&plan.stack_file);
    let at = StoreAt {
        stack_path: &stack_file,
        stack: &plan.stack,
        workspace: &plan.workspace,
        region: &plan.region,
    };
    let named = global
        .state
        .clone()
        .or_else(|| plan.state.clone())
        .or_else(|| global.state_dir.last().map(|d| d.display().to_string()));
    let store = store_at(named, &at, Some(&aws), &aws_options(global, None))
        .await
        .map_err(CliError::Message)?;
    let (lock, mut state) = super::lock_state(
        global.lock_timeout,
        &*store,
        &plan.stack,
        &plan.workspace,
        "plinth apply (saved plan)",
    )
    .await?;
    if state.serial == 0 && plan.serial == 0 {
        state.lineage = plan.lineage.clone();
    } else if state.lineage != plan.lineage || state.serial != plan.serial {
        return fail(format!(
            "the state changed since this plan was made (plan: serial {}, state now: serial {}{}); make a new plan",
            plan.serial,
            state.serial,
            if state.lineage != plan.lineage { ", and a different lineage" } else { "" }
        ));
    }
    let changed = plinth_core::plan::inputs::changed_since(&plan.inputs, &base_dir(&stack_file));
    if !changed.is_empty() {
        return fail(format!(
            "files this plan was made from changed since, so it would not apply what was planned: {}; make a new plan",
            changed.join(", ")
        ));
    }
    ui.out_raw(&render::render_at(&plan, &registry, ui.draw()));
    let cost =
        super::cost::print_for_plan(&plan, &state, &registry, &args.cost, PlanView::Full, ui)?;
    if !plan.has_changes() {
        return Ok(0);
    }
    super::cost::check_budget(args.max_monthly_cost, &cost)?;
    let planned = Planned { lock, state, plan };
    let run = EnvRun::of_apply(args);
    let outcome = run_engine(&registry, &base_dir(&stack_file), planned, &run, ui).await?;
    print_stats(global, &aws);
    Ok(outcome.code)
}

fn base_dir(stack_file: &Path) -> PathBuf {
    stack_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Ctrl-C once: `true` is sent, so no new work starts while what is in flight finishes (for
/// up to [`CANCEL_GRACE`]) and is recorded; twice: quit at once. Watches until the returned task is
/// aborted.
pub fn watch_interrupts(ui: &Ui) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let interrupt_ui = ui.clone();
    let task = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            interrupt_ui.err(&format!("\nInterrupt received: no new operations will start; waiting up to {}s for those in flight to finish and recording them. Press Ctrl-C again to quit at once (finished operations are already in the journal).", CANCEL_GRACE.as_secs()));
            let _ = cancel_tx.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupt_ui.clear_status();
                std::process::exit(130);
            }
        }
    });
    (cancel_rx, task)
}

/// Carries out a plan (an environment's, or a saved one), watching Ctrl-C itself unless the
/// run shares a roster's, and prints how it went.
async fn run_engine(
    registry: &Registry,
    base_dir: &Path,
    planned: Planned,
    run: &EnvRun,
    ui: &Ui,
) -> Result<EnvOutcome, CliError> {
    ui.out("");
    let (cancel, interrupts) = match &run.cancel {
        Some(shared) => (shared.clone(), None),
        None => {
            let (rx, task) = watch_interrupts(ui);
            (rx, Some(task))
        }
    };
    let how = Execution {
        parallelism: run.parallelism,
        wait_for_deletion: run.wait_for_deletion,
        cancel,
        reporter: super::ui::reporter(ui),
    };
    let mode = planned.plan.mode;
    let report = session::execute(registry, base_dir, planned, &how).await;
    ui.end_status();
    if let Some(task) = interrupts {
        task.abort();
    }
    Ok(summarize(&report?, mode, ui))
}

/// Prints the outcome: root causes once, what was skipped, the counts, then outputs.
fn summarize(report: &ApplyReport, mode: Mode, ui: &Ui) -> EnvOutcome {
    for r in report.failed() {
        if let Outcome::Failed(e) = &r.outcome {
            ui.err(&format!(
                "\n{}: {} `{}`: {e}",
                ui.colored(AnsiColor::Red, "Error"),
                r.kind.verb(),
                r.name
            ));
        }
    }
    let skipped: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Skipped { because } => Some(format!("{} (needs {because})", r.name)),
            _ => None,
        })
        .collect();
    if !skipped.is_empty() {
        ui.err(&format!(
            "Skipped because of the error: {}",
            skipped.join(", ")
        ));
    }
    let tally = Tally::of(report);
    let mut counts = format!(
        "{} added, {} changed, {} destroyed",
        tally.added, tally.changed, tally.destroyed
    );
    if tally.pending_deletion > 0 {
        counts.push_str(&format!(", {} still being deleted", tally.pending_deletion));
    }
    let verb = if mode == Mode::Destroy {
        "Destroy"
    } else {
        "Apply"
    };
    print_pending(ui, &report.state);
    let outcome = EnvOutcome::of_report(report, &tally);
    if report.ok() {
        ui.out(&format!(
            "\n{} Resources: {counts}.",
            ui.colored(AnsiColor::Green, &format!("{verb} complete!"))
        ));
        if mode == Mode::Apply {
            print_outputs(ui, &report.state);
        }
        return outcome;
    }
    let why = if report.interrupted {
        "interrupted"
    } else {
        "failed"
    };
    let pending = if tally.not_started > 0 {
        format!(", {} not started", tally.not_started)
    } else {
        String::new()
    };
    ui.err(&format!(
        "\n{} Resources: {counts}{pending}. The state records everything that completed; run the command again to continue.",
        ui.colored(AnsiColor::Red, &format!("{verb} {why}."))
    ));
    outcome
}

/// Deletions AWS accepted and is still carrying out, said plainly.
fn print_pending(ui: &Ui, state: &State) {
    let pending: Vec<String> = state
        .resources
        .iter()
        .filter_map(|(name, r)| match &r.status {
            plinth_core::state::Status::PendingDelete { reason, .. } => {
                Some(format!("  {name} ({} {}): {reason}", r.type_name, r.id))
            }
            _ => None,
        })
        .collect();
    if !pending.is_empty() {
        ui.out(&format!(
            "\nStill being deleted ({}), kept in state as pending deletion; the next apply or destroy checks them and deletes what is left:\n{}",
            pending.len(),
            pending.join("\n")
        ));
    }
}

/// Outputs after apply, sensitive ones masked.
pub fn print_outputs(ui: &Ui, state: &State) {
    if state.outputs.is_empty() {
        return;
    }
    ui.out("\nOutputs:\n");
    let width = state.outputs.keys().map(String::len).max().unwrap_or(0);
    for (name, o) in &state.outputs {
        let shown = if o.sensitive {
            plinth_core::value::SENSITIVE_DISPLAY.to_string()
        } else {
            render::inline(&o.value)
        };
        ui.out(&format!("{name:<width$} = {shown}"));
    }
}
