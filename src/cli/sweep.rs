//! `plinth sweep`: finds environments to remove by their `plinth:*` tags — expired ones
//! (`plinth:expires-at` in the past) and what no state file in view records (a lost state,
//! a duplicate from an interrupted create, something tagged by hand) — lists them, and with
//! `--yes` removes them.
//!
//! An expired environment whose state is in view is destroyed through that state (the
//! normal destroy: dependency order, `prevent_destroy` honoured); what no state records is
//! deleted by type in a fixed teardown order, each resource read first so its delete gets
//! current properties. Without `--yes` nothing changes. Nothing to do is exit 0, so
//! `plinth sweep --expired --yes` is safe to run from cron.

mod remove;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anstyle::AnsiColor;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory};
use plinth_aws::arn::GLOBAL_REGION;
use plinth_aws::tagging::{self, TagFilter, TagSearch};
use plinth_aws::Aws;
use plinth_core::cost::{self, Pricing, Running};
use plinth_core::resource::Registry;
use plinth_core::state::store::StateFiles;
use plinth_core::state::{State, Status};
use plinth_core::teardown::{self, short_age, Candidate, SweepFilter, STACK_TAG, WORKSPACE_TAG};

use self::remove::{Found, Orphan, Removal, Target};
use super::verify::plural;
use super::{connect, fail, print_stats, CliError, CliResult, GlobalArgs, Ui};

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Remove what is listed (without it, sweep only lists and changes nothing).
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// Only this stack's environments (repeatable).
    #[arg(long = "stack", value_name = "NAME")]
    pub stacks: Vec<String>,
    /// Search this region (repeatable; default: the configured region and us-east-1).
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,
    /// Only environments created at least this long ago (by `plinth:created-at`), e.g. 2d.
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<String>,
    /// Only expired environments, not those merely unknown to the states in view.
    #[arg(long)]
    pub expired: bool,
    /// How many reads and deletions run at once.
    #[arg(long, default_value_t = 16)]
    pub parallelism: usize,
}

/// A state file under one of the `--state-dir` folders.
pub struct InView {
    pub files: StateFiles,
    pub state: State,
}

/// The state files sweep can see, and those it cannot read (their environments are left
/// alone: what they record would look unknown).
struct StatesInView {
    readable: Vec<InView>,
    unreadable: Vec<(String, String, String)>,
}

/// One environment to remove, with what no state records read by its type.
struct Work<'a> {
    candidate: Candidate,
    in_view: Option<&'a InView>,
    orphans: Vec<Orphan>,
}

impl Work<'_> {
    fn label(&self) -> String {
        format!(
            "{}/{}",
            self.candidate.env.stack, self.candidate.env.workspace
        )
    }
    /// Expired with its state in view: destroyed through the state.
    fn through_state(&self) -> Option<&InView> {
        self.in_view
            .filter(|_| self.candidate.expired_for.is_some())
    }
}

pub async fn run(global: &GlobalArgs, args: SweepArgs, ui: &Ui) -> CliResult {
    if let Some(url) = global.state.as_ref().filter(|s| s.contains("://")) {
        return fail(format!(
            "sweep reads local state folders only, not {url} yet; its environments are left alone by any sweep (their resources are tagged plinth:state)"
        ));
    }
    let filter = filter_of(global, &args)?;
    let aws = connect(global, None).await;
    let registry = plinth_aws::registry(&aws);
    let regions = regions_to_search(&args, aws.default_region());
    let view = states_in_view(global);
    let mut search = search(&aws, &registry, &regions, &filter, ui).await?;
    leave_remote_state_alone(&mut search.found, ui);
    let now = SystemTime::now();
    let states: Vec<State> = view.readable.iter().map(|v| v.state.clone()).collect();
    let envs = teardown::environments(search.found, &states);
    let mut candidates = teardown::candidates(envs, &states, &registry, &filter, now);
    candidates.retain(|c| readable(&view, c, ui));
    let work = inspect(&registry, candidates, &view, args.parallelism).await;
    let code = if work.is_empty() {
        nothing_to_do(ui, global, &filter, &search.searched);
        0
    } else {
        warn_if_no_state(ui, global, &view);
        print_table(ui, &registry, &work, &search.searched, now);
        if args.yes {
            remove_all(&registry, &work, args.parallelism, ui).await
        } else {
            ui.out("\nDry run: nothing was changed. Add --yes to remove what is listed.");
            0
        }
    };
    print_stats(global, &aws);
    Ok(code)
}

/// Everything tagged `plinth:stack` (of the stacks asked for) in the regions; a region that
/// cannot be searched is a warning, none at all an error.
async fn search(
    aws: &Aws,
    registry: &Registry,
    regions: &[String],
    filter: &SweepFilter,
    ui: &Ui,
) -> Result<TagSearch, CliError> {
    let mut filters = vec![TagFilter::one_of(STACK_TAG, &filter.stacks)];
    if !filter.workspaces.is_empty() {
        filters.push(TagFilter::one_of(WORKSPACE_TAG, &filter.workspaces));
    }
    let every_type: Vec<_> = registry
        .type_names()
        .into_iter()
        .filter_map(|n| registry.get(n).cloned())
        .collect();
    let search = tagging::find_tagged(aws, regions, &filters, &every_type).await;
    for (region, err) in &search.failed {
        ui.err(&format!(
            "{}: could not search {region}: {err}",
            ui.colored(AnsiColor::Yellow, "warning")
        ));
    }
    if search.searched.is_empty() {
        return fail("no region could be searched; nothing was changed");
    }
    Ok(search)
}

/// Environments whose state is kept elsewhere (`plinth:state`, on S3) are not this sweep's:
/// without their state, everything they made would look like an orphan.
fn leave_remote_state_alone(found: &mut Vec<teardown::TaggedResource>, ui: &Ui) {
    let mut elsewhere: std::collections::BTreeMap<String, usize> = Default::default();
    found.retain(|r| match r.tag(teardown::STATE_TAG) {
        Some(url) => {
            *elsewhere.entry(url.to_string()).or_default() += 1;
            false
        }
        None => true,
    });
    for (url, count) in elsewhere {
        ui.err(&format!(
            "{}: {count} resources keep their state on {url}: left alone (sweep reads local states only)",
            ui.colored(AnsiColor::Yellow, "note")
        ));
    }
}

/// Run away from its states, sweep takes every environment for an orphan: say so first.
fn warn_if_no_state(ui: &Ui, global: &GlobalArgs, view: &StatesInView) {
    if view.readable.is_empty() && view.unreadable.is_empty() {
        ui.err(&format!(
            "{}: no state file under {}: everything plinth tagged counts as unknown to state. \
             Run sweep where the states are, or give --state-dir.",
            ui.colored(AnsiColor::Yellow, "warning"),
            roots(global).join(", ")
        ));
    }
}

fn nothing_to_do(ui: &Ui, global: &GlobalArgs, filter: &SweepFilter, searched: &[String]) {
    let what = if filter.expired_only {
        "no expired environment"
    } else {
        "no expired environment, and nothing that no state knows"
    };
    ui.out(&format!(
        "Nothing to sweep in {}: {what} (states looked at: {}).",
        searched.join(", "),
        roots(global).join(", ")
    ));
}

/// The filters from the arguments. `--workspace` is the global option: it filters only
/// when given (its default, `default`, would otherwise hide every other workspace).
fn filter_of(global: &GlobalArgs, args: &SweepArgs) -> Result<SweepFilter, CliError> {
    let older_than = match &args.older_than {
        Some(text) => Some(teardown::parse_age(text).map_err(CliError::Message)?),
        None => None,
    };
    let workspaces = if workspace_given() {
        vec![global.workspace.clone()]
    } else {
        Vec::new()
    };
    Ok(SweepFilter {
        stacks: args.stacks.clone(),
        workspaces,
        older_than,
        expired_only: args.expired,
    })
}

/// Whether `--workspace` (or `PLINTH_WORKSPACE`) was given, rather than defaulted.
fn workspace_given() -> bool {
    let Ok(matches) = super::Cli::command().try_get_matches_from(std::env::args_os()) else {
        return false;
    };
    let Some(sweep) = matches.subcommand_matches("sweep") else {
        return false;
    };
    matches!(
        sweep.value_source("workspace"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

fn regions_to_search(args: &SweepArgs, configured: Option<String>) -> Vec<String> {
    let wanted = if args.regions.is_empty() {
        configured
            .into_iter()
            .chain([GLOBAL_REGION.to_string()])
            .collect()
    } else {
        args.regions.clone()
    };
    let mut seen = BTreeSet::new();
    wanted
        .into_iter()
        .filter(|r| seen.insert(r.clone()))
        .collect()
}

/// Where state files are looked for: each `--state-dir`, or `.plinth` here.
fn roots(global: &GlobalArgs) -> Vec<String> {
    state_roots(global)
        .iter()
        .map(|p| p.display().to_string())
        .collect()
}

fn state_roots(global: &GlobalArgs) -> Vec<PathBuf> {
    if global.state_dir.is_empty() {
        vec![PathBuf::from(".plinth")]
    } else {
        global.state_dir.clone()
    }
}

/// Every `<root>/<stack>/<workspace>/state.json`.
fn states_in_view(global: &GlobalArgs) -> StatesInView {
    let mut view = StatesInView {
        readable: Vec::new(),
        unreadable: Vec::new(),
    };
    for root in state_roots(global) {
        for (stack, workspace) in state_dirs(&root) {
            let files = StateFiles::new(&root, &stack, &workspace);
            match files.read(&stack, &workspace) {
                Ok(state) => view.readable.push(InView { files, state }),
                Err(e) => view.unreadable.push((stack, workspace, e.to_string())),
            }
        }
    }
    view
}

/// The `(stack, workspace)` folders under `root` that hold a state file.
fn state_dirs(root: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for stack in subfolders(root) {
        for workspace in subfolders(&root.join(&stack)) {
            if root
                .join(&stack)
                .join(&workspace)
                .join("state.json")
                .is_file()
            {
                found.push((stack.clone(), workspace));
            }
        }
    }
    found.sort();
    found
}

fn subfolders(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect()
}

/// Leaves out an environment whose state file cannot be read, saying so.
fn readable(view: &StatesInView, c: &Candidate, ui: &Ui) -> bool {
    let problem = view
        .unreadable
        .iter()
        .find(|(stack, workspace, _)| *stack == c.env.stack && *workspace == c.env.workspace);
    match problem {
        Some((stack, workspace, error)) => {
            ui.err(&format!(
                "{}: leaving {stack}/{workspace} alone: its state file cannot be read ({error})",
                ui.colored(AnsiColor::Yellow, "warning")
            ));
            false
        }
        None => true,
    }
}

/// Reads what no state records. What turns out to be gone already (the tagging API's index
/// lags behind deletions) is left out, and so is an environment that then has nothing left
/// to remove.
async fn inspect<'a>(
    registry: &Registry,
    candidates: Vec<Candidate>,
    view: &'a StatesInView,
    parallelism: usize,
) -> Vec<Work<'a>> {
    let mut work = Vec::new();
    for candidate in candidates {
        let in_view = candidate.env.state.map(|i| &view.readable[i]);
        let mut orphans = remove::inspect(registry, candidate.orphans.clone(), parallelism).await;
        orphans.retain(|o| !o.is_gone());
        let w = Work {
            candidate,
            in_view,
            orphans,
        };
        if w.through_state().is_some() || !w.orphans.is_empty() {
            work.push(w);
        }
    }
    work
}

fn print_table(ui: &Ui, registry: &Registry, work: &[Work], searched: &[String], now: SystemTime) {
    ui.out(&format!(
        "{} to remove (searched {}):\n",
        plural(work.len(), "environment"),
        searched.join(", ")
    ));
    let header = ["STACK", "WORKSPACE", "WHY", "AGE", "REGIONS", "EST. COST"].map(String::from);
    let rows: Vec<[String; 6]> = work.iter().map(|w| row(registry, w, now)).collect();
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String; 6]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("  {}", padded.join("  ").trim_end())
    };
    ui.out(&ui.bold(&line(&header)));
    for (w, cells) in work.iter().zip(&rows) {
        ui.out(&line(cells));
        for resource in resource_lines(w) {
            ui.out(&format!("      {resource}"));
        }
    }
}

fn row(registry: &Registry, w: &Work, now: SystemTime) -> [String; 6] {
    let env = &w.candidate.env;
    let mut regions: BTreeSet<String> = env.regions().into_iter().collect();
    if let Some(v) = w.through_state() {
        regions.extend(v.state.resources.values().map(|r| r.region.clone()));
    }
    [
        env.stack.clone(),
        env.workspace.clone(),
        why(w),
        env.age(now).map(short_age).unwrap_or_else(|| "—".into()),
        regions.into_iter().collect::<Vec<_>>().join(", "),
        estimated_cost(registry, w).unwrap_or_else(|| "—".into()),
    ]
}

fn why(w: &Work) -> String {
    let mut parts = Vec::new();
    if let Some(ago) = w.candidate.expired_for {
        parts.push(format!("expired {} ago", short_age(ago)));
    }
    match (w.in_view.is_some(), w.orphans.len()) {
        (false, _) => parts.push("orphan (no state)".to_string()),
        (true, 0) => {}
        (true, n) => parts.push(format!("{} unknown to state", plural(n, "resource"))),
    }
    parts.join("; ")
}

/// What goes: the state's resources (when destroyed through it), then what no state knows.
fn resource_lines(w: &Work) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(v) = w.through_state() {
        for (name, r) in &v.state.resources {
            let address = r.attrs.get("arn").and_then(|a| a.as_str()).unwrap_or(&r.id);
            let pending = match r.status {
                Status::PendingDelete { .. } => ", pending deletion",
                _ => "",
            };
            lines.push(format!(
                "{:<28} {address} (in state as `{name}`{pending})",
                r.type_name
            ));
        }
    }
    for o in &w.orphans {
        let note = match (&o.target, remove::whole_of(&w.orphans, o)) {
            (_, Some(whole)) => format!(" (part of {}, goes with it)", whole.label()),
            (Target::Unknown, _) => " (no type of plinth's: cannot be swept)".into(),
            (
                Target::Known {
                    found: Found::ReadFailed(_),
                    ..
                },
                _,
            ) => " (could not be read)".into(),
            (Target::Known { .. }, _) => " (unknown to state)".into(),
        };
        lines.push(format!("{:<28} {}{note}", o.type_name(), o.resource.arn));
    }
    lines
}

/// What the environment costs a month while it runs, from each type's cost rule (the
/// state's properties, or what the orphans' reads found); "—" when nothing can be priced.
fn estimated_cost(registry: &Registry, w: &Work) -> Option<String> {
    let mut running: Vec<Running> = w
        .through_state()
        .map(|v| cost::running_now(&v.state))
        .unwrap_or_default();
    // A part (a replication group's member cluster) is priced with its whole.
    for o in w
        .orphans
        .iter()
        .filter(|o| remove::whole_of(&w.orphans, o).is_none())
    {
        if let Target::Known {
            type_name,
            found: Found::Exists(observed),
            ..
        } = &o.target
        {
            running.push(Running {
                name: o.resource.arn.clone(),
                type_name: type_name.to_string(),
                region: o.resource.region.clone(),
                props: observed.props.clone(),
            });
        }
    }
    if running.is_empty() {
        return None;
    }
    let prices = plinth_aws::cost::shipped_prices().ok()?;
    let usage = plinth_aws::cost::default_usage();
    let pricing = Pricing {
        registry,
        prices: &prices,
        usage: &usage,
    };
    let estimate = cost::estimate(&running, &pricing);
    let at_least = if estimate.is_complete() { "" } else { "≥ " };
    Some(format!("{at_least}${:.2}/month", estimate.monthly))
}

/// Removes every listed environment; exit code 1 when anything could not be removed.
async fn remove_all(registry: &Registry, work: &[Work<'_>], parallelism: usize, ui: &Ui) -> u8 {
    let mut failed = Vec::new();
    let mut pending = Vec::new();
    for w in work {
        let label = w.label();
        ui.out(&format!("\nSweeping {}…", ui.bold(&label)));
        let mut outcomes = Vec::new();
        if let Some(v) = w.through_state() {
            outcomes.push(remove::destroy_through_state(registry, v, parallelism, ui).await);
        }
        outcomes
            .extend(remove::delete_orphans(registry, &label, &w.orphans, parallelism, ui).await);
        for outcome in outcomes {
            match outcome {
                Removal::Removed => {}
                Removal::Pending(reason) => pending.push(format!("{label}: {reason}")),
                Removal::Failed(why) => failed.push(format!("{label}: {why}")),
            }
        }
    }
    summarize(ui, work.len(), &pending, &failed)
}

fn summarize(ui: &Ui, envs: usize, pending: &[String], failed: &[String]) -> u8 {
    if !pending.is_empty() {
        ui.out(&format!(
            "\nStill being deleted by AWS ({}); the next sweep (or destroy) finishes them:\n  {}",
            pending.len(),
            pending.join("\n  ")
        ));
    }
    if failed.is_empty() {
        ui.out(&format!(
            "\n{} {} removed.",
            ui.colored(AnsiColor::Green, "Sweep complete!"),
            plural(envs, "environment")
        ));
        return 0;
    }
    ui.err(&format!(
        "\n{} Not removed:\n  {}",
        ui.colored(AnsiColor::Red, "Sweep failed."),
        failed.join("\n  ")
    ));
    1
}
