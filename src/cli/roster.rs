//! `--roster FILE` for `plan`, `apply`, `destroy` and `drift`: one environment per student.
//! Each student's environment goes through the very functions a single workspace goes through
//! (`plan_environment`, `apply_environment`, `destroy_environment`, `drift_environment`), in its own workspace
//! with its own variables, several at once; one student's failure never stops the others.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use plinth_aws::session::{student_connection, SessionOptions};
use plinth_aws::Aws;
use plinth_core::roster::{self, Roster, Student};
use plinth_core::session::class::{self, StudentRow, Verdict};
use plinth_core::session::outcome::{first_line, EnvOutcome, EnvResult};
use plinth_core::stack::load::{Declared, Parsed};
use plinth_core::stack::vars::VarDecl;
use tokio::sync::watch;

use super::apply::{
    apply_environment, destroy_environment, watch_interrupts, ApplyArgs, DestroyArgs, EnvRun,
};
use super::drift::{drift_environment, DriftArgs};
use super::plan::{plan_environment, show, PlanArgs, PlanView};
use super::ui::short_duration;
use super::{
    connect_in, display_path, fail, open_over, print_stats, session_options, stack_path, CliError,
    CliResult, GlobalArgs, Ui,
};

/// The roster options `plan`, `apply`, `destroy` and `drift` share.
#[derive(Debug, Args, Clone)]
pub struct RosterArgs {
    /// One environment per student listed in FILE (one per line: `NAME [VAR=VALUE…]`; see
    /// docs/roster.md), each in its own workspace with its own variables.
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
    /// With --roster: how many environments are worked on at once (--parallelism still
    /// bounds the operations within each). Default: 4 per AWS account the roster names
    /// (the environments of one account share its rate limits), at most 16.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..),
        requires = "roster"
    )]
    pub max_environments: Option<u16>,
    /// With --roster: this machine's share of the class (`--shard 2/3`), for a class split
    /// across machines (CI runners, say). Each student always falls in the same share; with
    /// state on S3, the per-environment locks keep two machines off the same student.
    #[arg(long, value_name = "I/N", requires = "roster")]
    pub shard: Option<roster::Shard>,
    /// With --roster: the role assumed in a student's `account=` (a line's `role_arn=`
    /// names its role outright).
    #[arg(long, value_name = "NAME", default_value = roster::DEFAULT_ROLE_NAME, value_parser = parse_role_name, requires = "roster")]
    pub role_name: String,
}

pub fn parse_role_name(name: &str) -> Result<String, String> {
    match roster::role_name_problem(name) {
        Some(problem) => Err(problem),
        None => Ok(name.to_string()),
    }
}

/// What the roster does to each student's environment (owned: each student runs as a task
/// of its own).
#[derive(Clone)]
enum RosterCommand {
    Plan(Arc<PlanArgs>),
    Apply(Arc<ApplyArgs>),
    Destroy(Arc<DestroyArgs>),
    Drift(Arc<DriftArgs>),
}

impl RosterCommand {
    fn verb(&self) -> &'static str {
        match self {
            RosterCommand::Plan(_) => "plan",
            RosterCommand::Apply(_) => "apply",
            RosterCommand::Destroy(_) => "destroy",
            RosterCommand::Drift(_) => "drift check",
        }
    }

    fn done(&self) -> &'static str {
        match self {
            RosterCommand::Plan(_) => "planned",
            RosterCommand::Apply(_) => "applied",
            RosterCommand::Destroy(_) => "destroyed",
            RosterCommand::Drift(_) => "checked for drift",
        }
    }

    /// The summary table's count columns: planned, or done.
    fn count_headers(&self) -> [&'static str; 3] {
        match self {
            RosterCommand::Plan(_) => ["to add", "to change", "to destroy"],
            RosterCommand::Drift(_) => ["drifted", "properties", "deleted"],
            _ => ["added", "changed", "destroyed"],
        }
    }
}

pub async fn plan(global: &GlobalArgs, roster: &Path, args: &PlanArgs, ui: &Ui) -> CliResult {
    if args.json || args.out.is_some() {
        return fail("--roster prints each student's plan for people; --json and -o are for one workspace at a time (--workspace NAME)");
    }
    let rows = run(
        global,
        roster,
        &args.stack,
        RosterCommand::Plan(Arc::new(args.clone())),
        ui,
    )
    .await?;
    let code = class::exit_code(&rows);
    let changes = rows.iter().any(|r| r.outcome.result == EnvResult::Changes);
    Ok(if code == 0 && args.detailed_exitcode && changes {
        2
    } else {
        code
    })
}

pub async fn apply(global: &GlobalArgs, roster: &Path, args: &ApplyArgs, ui: &Ui) -> CliResult {
    require_yes(args.yes, "apply")?;
    if let Some(path) = &args.stack_or_plan {
        if super::apply::is_plan_file(path) {
            return fail(format!(
                "--roster applies a stack file to each student; {} is a saved plan of one workspace",
                path.display()
            ));
        }
    }
    let rows = run(
        global,
        roster,
        &args.stack_or_plan,
        RosterCommand::Apply(Arc::new(args.clone())),
        ui,
    )
    .await?;
    Ok(class::exit_code(&rows))
}

pub async fn destroy(global: &GlobalArgs, roster: &Path, args: &DestroyArgs, ui: &Ui) -> CliResult {
    require_yes(args.yes, "destroy")?;
    let rows = run(
        global,
        roster,
        &args.stack,
        RosterCommand::Destroy(Arc::new(args.clone())),
        ui,
    )
    .await?;
    Ok(class::exit_code(&rows))
}

/// `plinth drift --roster`: each student's drift, then the class's table; exit 2 when
/// someone's environment drifted and nobody's check failed.
pub async fn drift(global: &GlobalArgs, roster: &Path, args: &DriftArgs, ui: &Ui) -> CliResult {
    if args.json {
        return fail("--roster prints each student's drift for people; --json is for one workspace at a time (--workspace NAME)");
    }
    let rows = run(
        global,
        roster,
        &args.stack,
        RosterCommand::Drift(Arc::new(args.clone())),
        ui,
    )
    .await?;
    let code = class::exit_code(&rows);
    let drifted = rows.iter().any(|r| r.outcome.result == EnvResult::Drifted);
    Ok(if code == 0 && drifted { 2 } else { code })
}

/// Nobody confirms N plans one by one: a roster acts only with `--yes`.
fn require_yes(yes: bool, verb: &str) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    fail(format!(
        "{verb} --roster works on every student's environment without asking for each: pass --yes to go ahead (`plinth plan --roster FILE` shows what would change)"
    ))
}

/// Everything each student's run shares.
struct RosterRun {
    options: SessionOptions,
    roster: Roster,
    stack_path: PathBuf,
    parsed: Parsed,
    decls: Vec<VarDecl>,
    aws: Arc<Aws>,
    /// The stack's name, for the names of role sessions in students' accounts.
    stack_name: String,
    command: RosterCommand,
    /// Environments worked on at once.
    at_once: usize,
    cancel: watch::Receiver<bool>,
    ui: Ui,
}

/// Checks the roster (nothing runs if it has a problem), then runs every student, at most
/// `--max-environments` at once, and prints the summary table.
async fn run(
    global: &GlobalArgs,
    roster_path: &Path,
    stack_arg: &Option<PathBuf>,
    command: RosterCommand,
    ui: &Ui,
) -> Result<Vec<StudentRow>, CliError> {
    if global.workspace != "default" {
        return fail(format!(
            "--roster gives each student their own workspace; --workspace (or PLINTH_WORKSPACE) `{}` would contradict it",
            global.workspace
        ));
    }
    let mut roster = roster::read(roster_path).map_err(CliError::Diagnostics)?;
    if let Some(shard) = shard_of(&command) {
        let all = roster.students.len();
        roster.students.retain(|s| shard.takes(&s.name));
        ui.out(&format!(
            "Shard {shard}: {} of the roster's {all} students.",
            roster.students.len()
        ));
    }
    let path = stack_path(global, stack_arg);
    // Parsed once for the whole class: a file that does not even parse fails the command
    // here, once, instead of once per student.
    let parsed = plinth_core::stack::load::parse(&path).map_err(CliError::Diagnostics)?;
    let declared = parsed.declared();
    warn_of_shadowed_vars(&declared);
    let aws = connect_in(global, declared.region.clone()).await;
    let (cancel, interrupts) = watch_interrupts(ui);
    let at_once = match max_environments(&command) {
        Some(n) => n.into(),
        None => {
            // Asked only when a line names an account (and then asked anyway, once).
            let names_accounts = roster.students.iter().any(|s| s.account.is_some());
            let caller = match names_accounts {
                true => aws.account_id(&aws.home_region()).await.ok(),
                false => None,
            };
            class::environments_at_once(&roster.students, caller.as_deref())
        }
    };
    let context = Arc::new(RosterRun {
        options: session_options(global),
        roster: roster.clone(),
        stack_path: path,
        parsed,
        decls: declared.vars,
        aws: aws.clone(),
        stack_name: declared.name.unwrap_or_default(),
        cancel: cancel.clone(),
        command,
        at_once,
        ui: ui.clone(),
    });
    let started = Instant::now();
    let work = context.clone();
    let rows = class::run(roster.students, at_once, cancel, move |student| {
        let context = work.clone();
        async move { run_student(&context, &student).await }
    })
    .await;
    interrupts.abort();
    print_summary(&context, &rows, started.elapsed());
    print_stats(global, &aws);
    Ok(rows)
}

fn role_name(command: &RosterCommand) -> &str {
    match command {
        RosterCommand::Plan(a) => &a.roster.role_name,
        RosterCommand::Apply(a) => &a.roster.role_name,
        RosterCommand::Destroy(a) => &a.roster.role_name,
        RosterCommand::Drift(a) => &a.roster.role_name,
    }
}

fn shard_of(command: &RosterCommand) -> Option<roster::Shard> {
    match command {
        RosterCommand::Plan(a) => a.roster.shard,
        RosterCommand::Apply(a) => a.roster.shard,
        RosterCommand::Destroy(a) => a.roster.shard,
        RosterCommand::Drift(a) => a.roster.shard,
    }
}

fn max_environments(command: &RosterCommand) -> Option<u16> {
    match command {
        RosterCommand::Plan(a) => a.roster.max_environments,
        RosterCommand::Apply(a) => a.roster.max_environments,
        RosterCommand::Destroy(a) => a.roster.max_environments,
        RosterCommand::Drift(a) => a.roster.max_environments,
    }
}

/// A stack variable named like a roster's account words never gets a value from a line:
/// `account=` there names the student's account.
fn warn_of_shadowed_vars(declared: &Declared) {
    for decl in declared
        .vars
        .iter()
        .filter(|d| roster::ACCOUNT_KEYS.contains(&d.name.as_str()))
    {
        tracing::warn!(
            "the stack declares a variable `{}`; on a roster line `{}=` names the student's AWS account instead, so the variable keeps its default (or --var)",
            decl.name,
            decl.name
        );
    }
}

/// One student's environment, with every failure turned into its summary row's outcome.
async fn run_student(context: &RosterRun, student: &Student) -> EnvOutcome {
    let ui = context.ui.prefixed(&student.name);
    match environment(context, student, &ui).await {
        Ok(outcome) => outcome,
        Err(e) => {
            ui.error(&e);
            EnvOutcome::failed(cause(&e))
        }
    }
}

/// Exactly what the single-workspace command does, in the student's workspace with the
/// student's variables, in the student's account.
async fn environment(
    context: &RosterRun,
    student: &Student,
    ui: &Ui,
) -> Result<EnvOutcome, CliError> {
    context
        .roster
        .check_vars(student, &context.decls)
        .map_err(CliError::Diagnostics)?;
    let mut options = context.options.clone();
    options.load = class::student_options(&options.load, student, &context.decls);
    let session_name = ["plinth", &context.stack_name, &student.name];
    let connection = student_connection(
        &context.aws,
        student.account.as_ref(),
        role_name(&context.command),
        &session_name,
    )
    .await
    .map_err(CliError::Message)?;
    let session = open_over(&options, connection, &context.parsed, ui).await?;
    match &context.command {
        RosterCommand::Plan(args) => {
            let (plan, _) = plan_environment(&session, args).await?;
            let view = if args.full {
                PlanView::Full
            } else {
                PlanView::SummaryLine
            };
            show(&plan, &session.env.registry, view, ui);
            Ok(EnvOutcome::of_plan(&plan))
        }
        RosterCommand::Apply(args) => {
            let run = in_roster(context, EnvRun::of_apply(args));
            apply_environment(&session, &run, ui).await
        }
        RosterCommand::Destroy(args) => {
            let run = in_roster(context, EnvRun::of_destroy(args));
            destroy_environment(&session, &run, ui).await
        }
        RosterCommand::Drift(args) => {
            let drifted = drift_environment(&session, args).await?;
            super::drift::show(&session, &drifted, ui);
            Ok(EnvOutcome::of_drift(&drifted))
        }
    }
}

/// A run that already has its confirmation (`--yes`), prints one summary line for its
/// plan, and stops on the roster's Ctrl-C.
fn in_roster(context: &RosterRun, run: EnvRun) -> EnvRun {
    EnvRun {
        plan_view: PlanView::SummaryLine,
        cancel: Some(context.cancel.clone()),
        ..run
    }
}

/// A failed student's root error, one line.
fn cause(e: &CliError) -> String {
    match e {
        CliError::Diagnostics(d) => {
            let mut errors = d.errors();
            let first = errors.next().map(ToString::to_string).unwrap_or_default();
            match errors.count() {
                0 => first_line(&first),
                more => format!("{} (and {more} more)", first_line(&first)),
            }
        }
        CliError::Message(m) => first_line(m),
    }
}

/// The per-student table, then one sentence naming who failed.
fn print_summary(context: &RosterRun, rows: &[StudentRow], elapsed: Duration) {
    let ui = &context.ui;
    let [add, change, destroy] = context.command.count_headers();
    // The account column only when the roster gives someone an account of their own.
    let accounts = rows.iter().any(|r| r.account.is_some());
    let mut header = vec!["student"];
    header.extend(accounts.then_some("account"));
    header.extend(["result", add, change, destroy, "time", "cause"]);
    let mut table = vec![header.into_iter().map(str::to_string).collect::<Vec<_>>()];
    for row in rows {
        let o = &row.outcome;
        let cause = match &o.result {
            EnvResult::Failed(c) => c.clone(),
            _ => String::new(),
        };
        let mut cells = vec![row.student.clone()];
        if accounts {
            cells.push(row.account.clone().unwrap_or_else(|| OWN_ACCOUNT.into()));
        }
        cells.extend([
            o.result.text().to_string(),
            o.added.to_string(),
            o.changed.to_string(),
            o.destroyed.to_string(),
            short_duration(row.elapsed),
            cause,
        ]);
        table.push(cells);
    }
    ui.out(&format!(
        "\nRoster {}: {} of {} for {} student{}, {} at a time, in {}.\n",
        display_path(&context.roster.file.path),
        context.command.verb(),
        display_path(&context.stack_path),
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        context.at_once,
        short_duration(elapsed)
    ));
    ui.out(&render_table(&table));
    print_verdict(context, rows);
}

/// What the account column says of a student in the caller's own account.
const OWN_ACCOUNT: &str = "yours";

/// Columns padded to their widest cell; the four before the last (counts and times)
/// right-aligned, the last (the cause) as it is.
fn render_table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let right = columns.saturating_sub(5)..columns.saturating_sub(1);
    let lines: Vec<String> = rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, cell)| match i {
                    _ if right.contains(&i) => format!("{cell:>w$}", w = widths[i]),
                    _ if i + 1 == columns => cell.clone(),
                    _ => format!("{cell:<w$}", w = widths[i]),
                })
                .collect();
            format!("  {}", cells.join("  ").trim_end())
        })
        .collect();
    lines.join("\n")
}

fn print_verdict(context: &RosterRun, rows: &[StudentRow]) {
    let ui = &context.ui;
    let Verdict { failed, stopped } = Verdict::of(rows);
    if failed.is_empty() && stopped.is_empty() {
        ui.out(&format!(
            "\nAll {} environments {}.",
            rows.len(),
            context.command.done()
        ));
        return;
    }
    if !failed.is_empty() {
        ui.err(&format!(
            "\n{} of {} environments failed: {}. Run the command again to retry them (environments already done have nothing left to do).",
            failed.len(),
            rows.len(),
            failed.join(", ")
        ));
    }
    if !stopped.is_empty() {
        ui.err(&format!(
            "Interrupted before finishing: {}.",
            stopped.join(", ")
        ));
    }
}
