//! `plinth apply` and `plinth destroy`: plan, confirm, execute, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anstyle::AnsiColor;
use clap::Args;
use plinth_core::engine::{self, ApplyReport, ApplyRequest, Outcome, StepKind};
use plinth_core::plan::{render, Mode, Plan};
use plinth_core::state::store::LockedState;
use plinth_core::state::State;
use tokio::sync::watch;

use super::ui::LineReporter;
use super::{
    connect, fail, print_stats, state_files, CliError, CliResult, GlobalArgs, Session, Ui,
};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A stack file, or a plan saved with `plinth plan -o FILE` to apply exactly.
    pub stack_or_plan: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes", visible_alias = "auto-approve")]
    pub yes: bool,
    /// Limit to this resource and what it depends on (repeatable).
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// How many operations run at once.
    #[arg(long, default_value_t = 16)]
    pub parallelism: usize,
}

#[derive(Debug, Args)]
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
    /// How many operations run at once.
    #[arg(long, default_value_t = 16)]
    pub parallelism: usize,
}

pub async fn run_apply(global: &GlobalArgs, args: ApplyArgs, ui: &Ui) -> CliResult {
    if let Some(path) = &args.stack_or_plan {
        if is_plan_file(path) {
            return apply_saved(global, path, &args, ui).await;
        }
    }
    let session = Session::open(global, &args.stack_or_plan, ui).await?;
    let (locked, state, plan) = super::plan::make(
        &session,
        Mode::Apply,
        &args.targets,
        args.parallelism,
        "plinth apply",
    )
    .await?;
    ui.out_raw(&render::render(&plan, &session.registry, ui.color));
    if !plan.has_changes() {
        print_outputs(ui, &state);
        print_stats(global, &session.aws);
        return Ok(0);
    }
    if !ui.confirm("Do you want to perform these actions?", args.yes)? {
        ui.out("Apply cancelled.");
        return Ok(1);
    }
    let options = RunOptions::of(&session, args.parallelism, true);
    let code = run_engine(options, &locked, state, &plan, ui).await?;
    print_stats(global, &session.aws);
    Ok(code)
}

pub async fn run_destroy(global: &GlobalArgs, args: DestroyArgs, ui: &Ui) -> CliResult {
    let session = Session::open(global, &args.stack, ui).await?;
    let (locked, state, plan) = super::plan::make(
        &session,
        Mode::Destroy,
        &args.targets,
        args.parallelism,
        "plinth destroy",
    )
    .await?;
    if plan.resources.is_empty() {
        ui.out(&format!(
            "Nothing to destroy: the state of stack `{}` (workspace `{}`) is empty.",
            plan.stack, plan.workspace
        ));
        print_stats(global, &session.aws);
        return Ok(0);
    }
    ui.out_raw(&render::render(&plan, &session.registry, ui.color));
    if !ui.confirm(
        "Do you really want to destroy all these resources?",
        args.yes,
    )? {
        ui.out("Destroy cancelled.");
        return Ok(1);
    }
    let options = RunOptions::of(&session, args.parallelism, !args.no_wait);
    let code = run_engine(options, &locked, state, &plan, ui).await?;
    print_stats(global, &session.aws);
    Ok(code)
}

/// A saved plan is JSON with `"kind": "plinth-plan"`; anything else is a stack file.
fn is_plan_file(path: &Path) -> bool {
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
    let registry = plinth_aws::registry(&aws);
    let stack_file = PathBuf::from(&plan.stack_file);
    let files = state_files(global, &stack_file, &plan.stack, &plan.workspace);
    let (locked, mut state) =
        files.lock_and_read(&plan.stack, &plan.workspace, "plinth apply (saved plan)")?;
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
    ui.out_raw(&render::render(&plan, &registry, ui.color));
    if !plan.has_changes() {
        return Ok(0);
    }
    let options = RunOptions {
        registry: &registry,
        base_dir: base_dir(&stack_file),
        parallelism: args.parallelism,
        wait_for_deletion: true,
    };
    let code = run_engine(options, &locked, state, &plan, ui).await?;
    print_stats(global, &aws);
    Ok(code)
}

fn base_dir(stack_file: &Path) -> PathBuf {
    stack_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// How the engine runs a plan, for a stack or a saved plan alike.
struct RunOptions<'a> {
    registry: &'a plinth_core::resource::Registry,
    base_dir: PathBuf,
    parallelism: usize,
    wait_for_deletion: bool,
}

impl<'a> RunOptions<'a> {
    fn of(session: &'a Session, parallelism: usize, wait_for_deletion: bool) -> RunOptions<'a> {
        RunOptions {
            registry: &session.registry,
            base_dir: base_dir(&session.stack.file.path),
            parallelism,
            wait_for_deletion,
        }
    }
}

async fn run_engine(
    options: RunOptions<'_>,
    locked: &LockedState,
    state: State,
    plan: &Plan,
    ui: &Ui,
) -> CliResult {
    ui.out("");
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let interrupt_ui = ui.clone();
    let interrupts = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            interrupt_ui.err("\nInterrupt received: no new operations will start; waiting for those in flight to finish and recording them. Press Ctrl-C again to quit at once (finished operations are already in the journal).");
            let _ = cancel_tx.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let request = ApplyRequest {
        plan,
        registry: options.registry,
        store: locked,
        state,
        parallelism: options.parallelism.max(1),
        reporter: Arc::new(LineReporter { ui: ui.clone() }),
        cancel: cancel_rx,
        base_dir: options.base_dir,
        progress_after: Duration::from_secs(2),
        progress_every: Duration::from_secs(10),
        wait_for_deletion: options.wait_for_deletion,
    };
    let report = engine::apply(request).await;
    interrupts.abort();
    let report = report?;
    Ok(summarize(&report, plan, ui))
}

/// Prints the outcome: root causes once, what was skipped, the counts, then outputs.
fn summarize(report: &ApplyReport, plan: &Plan, ui: &Ui) -> u8 {
    let failed = report.failed();
    for r in &failed {
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
    let not_started = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::NotStarted))
        .count();
    let added = report.count(&[StepKind::Create]);
    let changed = report.count(&[StepKind::Update]);
    let is_pending =
        |name: &str| {
            report.state.resources.get(name).is_some_and(|r| {
                matches!(r.status, plinth_core::state::Status::PendingDelete { .. })
            })
        };
    let deleted: Vec<&str> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Done) && r.kind == StepKind::Delete)
        .map(|r| r.name.as_str())
        .collect();
    let pending_deletion = deleted.iter().filter(|n| is_pending(n)).count();
    let destroyed = deleted.len() - pending_deletion;
    let mut counts = format!("{added} added, {changed} changed, {destroyed} destroyed");
    if pending_deletion > 0 {
        counts.push_str(&format!(", {pending_deletion} still being deleted"));
    }
    let verb = if plan.mode == Mode::Destroy {
        "Destroy"
    } else {
        "Apply"
    };
    print_pending(ui, &report.state);
    if report.ok() {
        ui.out(&format!(
            "\n{} Resources: {counts}.",
            ui.colored(AnsiColor::Green, &format!("{verb} complete!"))
        ));
        if plan.mode == Mode::Apply {
            print_outputs(ui, &report.state);
        }
        return 0;
    }
    let why = if report.interrupted {
        "interrupted"
    } else {
        "failed"
    };
    let pending = if not_started > 0 {
        format!(", {not_started} not started")
    } else {
        String::new()
    };
    ui.err(&format!(
        "\n{} Resources: {counts}{pending}. The state records everything that completed; run the command again to continue.",
        ui.colored(AnsiColor::Red, &format!("{verb} {why}."))
    ));
    if report.interrupted {
        130
    } else {
        1
    }
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
