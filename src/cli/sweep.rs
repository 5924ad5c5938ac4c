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
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anstyle::AnsiColor;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory};
use plinth_aws::arn::GLOBAL_REGION;
use plinth_aws::session::{self, ClassAccount};
use plinth_aws::tagging::{self, TagFilter, TagSearch};
use plinth_aws::Aws;
use plinth_core::cost::{self, Pricing, Running};
use plinth_core::resource::Registry;
use plinth_core::roster;
use plinth_core::state::location::S3_SCHEME;
use plinth_core::state::store::StateFiles;
use plinth_core::state::{State, StateStore, Status};
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
    /// How many reads and deletions run at once. Each AWS service's requests in flight are bounded apart, by
    /// what it allows and how much it throttles.
    #[arg(long, default_value_t = plinth_core::engine::DEFAULT_PARALLELISM)]
    pub parallelism: usize,
    /// Also search the students' own accounts this roster names (`account=`, `role_arn=`).
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
    /// With --roster: the role assumed in a student's `account=`.
    #[arg(long, value_name = "NAME", default_value = roster::DEFAULT_ROLE_NAME, value_parser = super::roster::parse_role_name, requires = "roster")]
    pub role_name: String,
}

/// A state in view: under a `--state-dir` folder or the `--state` bucket.
pub struct InView {
    pub store: Arc<dyn StateStore>,
    /// The folder a destroy through the state resolves relative paths against.
    pub base_dir: PathBuf,
    pub state: State,
}

/// The state files sweep can see, and those it cannot read (their environments are left
/// alone: what they record would look unknown).
struct StatesInView {
    readable: Vec<InView>,
    unreadable: Vec<(String, String, String)>,
    /// Where they were looked for, for messages.
    places: Vec<String>,
    /// The `s3://` locations among them: what is tagged `plinth:state` with one of them
    /// has its state in view.
    remote: Vec<String>,
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
    let filter = filter_of(global, &args)?;
    let aws = connect(global, None).await;
    let view = states_in_view(global, &aws).await?;
    let (accounts, unreached) = accounts_to_sweep(&args, &aws, ui).await?;
    note_accounts_left_out(&view, &accounts, args.roster.is_some(), ui);
    let mut code = u8::from(unreached);
    for account in &accounts {
        if accounts.len() > 1 {
            ui.out(&ui.bold(&format!("\n{}", account_heading(account))));
        }
        let caller = &accounts[0].id;
        let swept = sweep_account(global, &args, &filter, (account, caller), &view, ui).await?;
        code = code.max(swept);
    }
    print_stats(global, &aws);
    Ok(code)
}

fn account_heading(account: &ClassAccount) -> String {
    match (account.own, account.students.is_empty()) {
        (true, true) => format!("Your own account, {}:", account.id),
        (true, false) => format!(
            "Your own account, {} (and {}'s):",
            account.id,
            account.students.join(", ")
        ),
        (false, _) => format!("Account {} ({}):", account.id, account.students.join(", ")),
    }
}

/// The caller's own account, then each account the roster names (students sharing one
/// search it once). An account that cannot be reached is said, and the rest still swept.
async fn accounts_to_sweep(
    args: &SweepArgs,
    aws: &Arc<Aws>,
    ui: &Ui,
) -> Result<(Vec<ClassAccount>, bool), CliError> {
    let roster = match &args.roster {
        Some(path) => Some(roster::read(path).map_err(CliError::Diagnostics)?),
        None => None,
    };
    let (accounts, unreached) =
        session::class_accounts(aws, roster.as_ref(), &args.role_name, "sweep")
            .await
            .map_err(CliError::Message)?;
    for why in &unreached {
        ui.error(&CliError::Message(why.clone()));
    }
    Ok((accounts, !unreached.is_empty()))
}

/// States whose resources are in an account this sweep does not search: said, since
/// nothing of theirs is looked at.
fn note_accounts_left_out(view: &StatesInView, accounts: &[ClassAccount], roster: bool, ui: &Ui) {
    let left_out: BTreeSet<&str> = view
        .readable
        .iter()
        .filter(|v| !accounts.iter().any(|a| a.holds(&v.state)))
        .filter_map(|v| v.state.account.as_deref())
        .collect();
    if left_out.is_empty() {
        return;
    }
    let how = match roster {
        true => "the roster does not name them, or they could not be reached",
        false => "give --roster FILE, the roster naming them",
    };
    ui.err(&format!(
        "{}: environments in other accounts are not searched ({}): {how}",
        ui.colored(AnsiColor::Yellow, "note"),
        left_out.into_iter().collect::<Vec<_>>().join(", ")
    ));
}

/// Everything of one account: its tagged resources against the states of environments in
/// it.
async fn sweep_account(
    global: &GlobalArgs,
    args: &SweepArgs,
    filter: &SweepFilter,
    (account, caller): (&ClassAccount, &str),
    view: &StatesInView,
    ui: &Ui,
) -> CliResult {
    let registry = plinth_aws::registry(&account.aws);
    let regions = regions_to_search(args, account.aws.default_region());
    let in_account: Vec<&InView> = view
        .readable
        .iter()
        .filter(|v| account.holds(&v.state))
        .collect();
    let mut search = search(&account.aws, &registry, &regions, filter, ui).await?;
    leave_remote_state_alone(&mut search.found, &view.remote, ui);
    let now = SystemTime::now();
    let states: Vec<State> = in_account.iter().map(|v| v.state.clone()).collect();
    let envs = teardown::environments(search.found, &states);
    let mut candidates = teardown::candidates(envs, &states, &registry, filter, now);
    candidates.retain(|c| readable(view, c, ui));
    let work = inspect(&registry, candidates, &in_account, args.parallelism).await;
    if work.is_empty() {
        nothing_to_do(ui, view, filter, &search.searched);
        return Ok(0);
    }
    warn_if_no_state(ui, global, view);
    print_table(ui, &registry, &work, &search.searched, now);
    if args.yes {
        let accounts = (account.id.as_str(), caller);
        Ok(remove_all(&registry, accounts, &work, args.parallelism, ui).await)
    } else {
        ui.out("\nDry run: nothing was changed. Add --yes to remove what is listed.");
        Ok(0)
    }
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

/// Environments whose state is kept on S3 (`plinth:state`) somewhere this sweep does not
/// look are not its own: left alone, and said.
fn leave_remote_state_alone(
    found: &mut Vec<teardown::TaggedResource>,
    in_view: &[String],
    ui: &Ui,
) {
    for (url, count) in teardown::keep_states_in_view(found, in_view) {
        ui.err(&format!(
            "{}: {count} resources keep their state on {url}: left alone (give --state {url} to sweep them)",
            ui.colored(AnsiColor::Yellow, "note")
        ));
    }
}

/// Run away from its states, sweep takes every environment for an orphan: say so first.
fn warn_if_no_state(ui: &Ui, _global: &GlobalArgs, view: &StatesInView) {
    if view.readable.is_empty() && view.unreadable.is_empty() {
        ui.err(&format!(
            "{}: no state under {}: everything plinth tagged counts as unknown to state. \
             Run sweep where the states are, or give --state-dir or --state.",
            ui.colored(AnsiColor::Yellow, "warning"),
            view.places.join(", ")
        ));
    }
}

fn nothing_to_do(ui: &Ui, view: &StatesInView, filter: &SweepFilter, searched: &[String]) {
    let what = if filter.expired_only {
        "no expired environment"
    } else {
        "no expired environment, and nothing that no state knows"
    };
    ui.out(&format!(
        "Nothing to sweep in {}: {what} (states looked at: {}).",
        searched.join(", "),
        view.places.join(", ")
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

/// Where state files are looked for: each `--state-dir` and a `--state` folder, or
/// `.plinth` here when neither is given.
fn state_roots(global: &GlobalArgs) -> Vec<PathBuf> {
    let mut roots = global.state_dir.clone();
    roots.extend(
        global
            .state
            .iter()
            .filter(|s| !s.starts_with(S3_SCHEME))
            .map(PathBuf::from),
    );
    if roots.is_empty() && global.state.is_none() {
        roots.push(PathBuf::from(".plinth"));
    }
    roots
}

/// Every `<root>/<stack>/<workspace>/state.json`, and every state under a `--state` bucket
/// and prefix.
async fn states_in_view(global: &GlobalArgs, aws: &Arc<Aws>) -> Result<StatesInView, CliError> {
    let mut view = StatesInView {
        readable: Vec::new(),
        unreadable: Vec::new(),
        places: Vec::new(),
        remote: Vec::new(),
    };
    for root in state_roots(global) {
        view.places.push(root.display().to_string());
        for (stack, workspace) in teardown::local_environments(&root) {
            let files = StateFiles::new(&root, &stack, &workspace);
            let base_dir = files.dir.clone();
            let store: Arc<dyn StateStore> = Arc::new(files);
            view.add(&store, base_dir, stack, workspace);
        }
    }
    if let Some(url) = global.state.as_ref().filter(|s| s.starts_with(S3_SCHEME)) {
        let Some((bucket, prefix)) = plinth_aws::state_s3::parse_url(url) else {
            return fail(format!("`{url}`: expected s3://BUCKET/PREFIX"));
        };
        let s3 = plinth_aws::state_s3::S3Store::new(aws, &aws.home_region(), &bucket, &prefix);
        let environments = s3.environments().await?;
        let store: Arc<dyn StateStore> = Arc::new(s3);
        for (stack, workspace) in environments {
            view.add(&store, PathBuf::from("."), stack, workspace);
        }
        view.places.push(url.clone());
        view.remote.push(url.clone());
    }
    Ok(view)
}

impl StatesInView {
    fn add(
        &mut self,
        store: &Arc<dyn StateStore>,
        base_dir: PathBuf,
        stack: String,
        workspace: String,
    ) {
        match store.read(&stack, &workspace) {
            Ok(state) => self.readable.push(InView {
                store: store.clone(),
                base_dir,
                state,
            }),
            Err(e) => self.unreadable.push((stack, workspace, e.to_string())),
        }
    }
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
    in_account: &[&'a InView],
    parallelism: usize,
) -> Vec<Work<'a>> {
    let mut work = Vec::new();
    for candidate in candidates {
        let in_view = candidate.env.state.and_then(|i| in_account.get(i).copied());
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
async fn remove_all(
    registry: &Registry,
    accounts: (&str, &str),
    work: &[Work<'_>],
    parallelism: usize,
    ui: &Ui,
) -> u8 {
    let mut failed = Vec::new();
    let mut pending = Vec::new();
    for w in work {
        let label = w.label();
        ui.out(&format!("\nSweeping {}…", ui.bold(&label)));
        let mut outcomes = Vec::new();
        if let Some(v) = w.through_state() {
            let destroy = remove::destroy_through_state(registry, accounts, v, parallelism, ui);
            outcomes.push(destroy.await);
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
