//! The command line: one file per command; this file holds the shared arguments, the
//! loading every command does, and the mapping of errors to messages and exit codes.

mod accounts;
mod apply;
mod cost;
mod graph;
mod import;
mod output;
mod plan;
mod roster;
mod schema;
mod show;
mod state;
mod state_move;
mod sweep;
mod ui;
mod validate;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use plinth_aws::{Aws, AwsOptions};
use plinth_core::diag::{self, Diagnostics};
use plinth_core::graph::DepGraph;
use plinth_core::resource::Registry;
use plinth_core::stack::load::Parsed;
use plinth_core::stack::vars::VarInputs;
use plinth_core::stack::{self, LoadOptions, Stack};
use plinth_core::state::location::{self, S3_SCHEME};
use plinth_core::state::store::StateFiles;
use plinth_core::state::store::StoreError;
use plinth_core::state::{State, StateLock, StateStore};

pub use ui::Ui;

/// Infrastructure as code for AWS course and lab environments.
#[derive(Debug, Parser)]
#[command(name = "plinth", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The stack file (commands that take a STACK_FILE argument accept it there too).
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        env = "PLINTH_STACK",
        default_value = "plinth.yaml"
    )]
    pub file: PathBuf,
    /// Keeps one environment's state apart from another's.
    #[arg(
        short = 'w',
        long,
        global = true,
        env = "PLINTH_WORKSPACE",
        default_value = "default"
    )]
    pub workspace: String,
    /// Where state lives (default: `.plinth` beside the stack file). `sweep` takes it more
    /// than once, to look in several places; other commands use the last one given.
    #[arg(long, global = true, env = "PLINTH_STATE_DIR", action = clap::ArgAction::Append)]
    pub state_dir: Vec<PathBuf>,
    /// Where state lives: `s3://BUCKET/PREFIX` (shared by every machine that names it, with
    /// a lock), or a folder. Beats the stack file's `state:`.
    #[arg(
        long = "state",
        global = true,
        env = "PLINTH_STATE",
        value_name = "s3://BUCKET/PREFIX|DIR"
    )]
    pub state: Option<String>,
    /// How long to wait for the state's lock when another command holds it (e.g. 5m);
    /// without it, a held lock is an error naming its holder.
    #[arg(long, global = true, env = "PLINTH_LOCK_TIMEOUT", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub lock_timeout: Option<std::time::Duration>,
    /// Send every AWS call here (an emulator); the SDK also reads AWS_ENDPOINT_URL.
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// The AWS profile to use.
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Set a variable: NAME=VALUE (repeatable).
    #[arg(long = "var", global = true, value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a YAML file (repeatable; later files win).
    #[arg(long = "var-file", global = true, value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// No colour, even on a terminal.
    #[arg(long, global = true, env = "NO_COLOR", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_color: bool,
    /// More logging (-v info, -vv debug, -vvv trace); PLINTH_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print how many AWS calls were made, by operation, when the command ends.
    #[arg(long, global = true)]
    pub stats: bool,
    /// Attempts per AWS call, the first included (default 25): throttling, 5xx answers and
    /// lost connections are retried with backoff, within five minutes per call.
    #[arg(long, global = true, env = "PLINTH_MAX_ATTEMPTS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: Option<u32>,
    /// How long an AWS call may wait for its answer before it is given up and retried
    /// (default 60s; S3 uploads five times that).
    #[arg(long, global = true, env = "PLINTH_READ_TIMEOUT", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub read_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a stack file without calling AWS.
    Validate(validate::ValidateArgs),
    /// Show what apply would change.
    Plan(plan::PlanArgs),
    /// Make AWS match the stack (or apply a saved plan exactly).
    Apply(apply::ApplyArgs),
    /// Delete everything the stack created.
    Destroy(apply::DestroyArgs),
    /// Show the state: resources, their ids and attributes, and outputs.
    Show(show::ShowArgs),
    /// Print outputs (all, or one by name).
    Output(output::OutputArgs),
    /// Inspect or edit the state.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Bring an existing AWS resource under plinth's management.
    Import(import::ImportArgs),
    /// Print the dependency graph in Graphviz DOT.
    Graph(graph::GraphArgs),
    /// Print a JSON Schema of the stack format (for editors).
    Schema,
    /// Estimate what the stack costs to run (list prices, usage assumptions), without AWS.
    Cost(cost::CostArgs),
    /// Find expired environments and what no state knows (by their tags); --yes removes them.
    Sweep(sweep::SweepArgs),
}

/// Sets up `tracing`: warnings by default, more with -v, or `PLINTH_LOG`.
pub fn init_logging(global: &GlobalArgs, ui: &Ui) {
    let default = match global.verbose {
        0 => "warn",
        1 => "info,aws=warn",
        2 => "debug,aws_smithy_runtime=info,hyper=info",
        // The SDK's own trace logs print request bodies; the masking writer below still
        // hides sensitive values, and bodies are rarely what a person debugging wants.
        _ => "trace,aws_smithy_runtime=debug,aws_smithy_http_client=debug,hyper=debug,h2=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLINTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ui.log_writer())
        .with_target(false)
        .try_init();
}

/// Runs a command and returns the process exit code.
pub async fn run(cli: Cli, ui: Ui) -> u8 {
    let result = match cli.command {
        Command::Validate(a) => validate::run(&cli.global, a, &ui).await,
        Command::Plan(a) => plan::run(&cli.global, a, &ui).await,
        Command::Apply(a) => apply::run_apply(&cli.global, a, &ui).await,
        Command::Destroy(a) => apply::run_destroy(&cli.global, a, &ui).await,
        Command::Show(a) => show::run(&cli.global, a, &ui).await,
        Command::Output(a) => output::run(&cli.global, a, &ui).await,
        Command::State(c) => state::run(&cli.global, c, &ui).await,
        Command::Import(a) => import::run(&cli.global, a, &ui).await,
        Command::Graph(a) => graph::run(&cli.global, a, &ui).await,
        Command::Schema => schema::run(&ui),
        Command::Cost(a) => cost::run(&cli.global, a, &ui).await,
        Command::Sweep(a) => sweep::run(&cli.global, a, &ui).await,
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            ui.error(&err);
            1
        }
    }
}

/// A failed command, printed once by `run`.
#[derive(Debug)]
pub enum CliError {
    /// Problems in a stack or variable file, each with its position.
    Diagnostics(Diagnostics),
    Message(String),
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> CliError {
        CliError::Message(error_chain(&e))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let s = cause.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = cause.source();
    }
    text
}

pub fn fail<T>(message: impl Into<String>) -> Result<T, CliError> {
    Err(CliError::Message(message.into()))
}

pub type CliResult = Result<u8, CliError>;

/// The stack file: the command's own argument if given, else `-f`.
pub fn stack_path(global: &GlobalArgs, arg: &Option<PathBuf>) -> PathBuf {
    arg.clone().unwrap_or_else(|| global.file.clone())
}

/// A command's positionals, of which the first may be the stack file: one that ends in
/// `.yaml` or `.yml` is (no output, resource or type name does), so `plinth output lab.yaml`
/// reads `lab.yaml` the way `plinth show lab.yaml` does.
pub fn split_stack_file(mut args: Vec<String>) -> (Option<PathBuf>, Vec<String>) {
    let is_stack_file = args.first().is_some_and(|first| {
        matches!(
            Path::new(first).extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        )
    });
    if is_stack_file {
        let stack = args.remove(0);
        (Some(PathBuf::from(stack)), args)
    } else {
        (None, args)
    }
}

/// Exactly `names`, in order, after an optional stack file: told apart by their number
/// (`import s3.bucket.yaml ID` names a resource `yaml`, not a stack file).
pub fn positionals<const N: usize>(
    command: &str,
    names: [&str; N],
    mut args: Vec<String>,
) -> Result<(Option<PathBuf>, [String; N]), CliError> {
    let stack = (args.len() == N + 1).then(|| PathBuf::from(args.remove(0)));
    let rest = args;
    let usage = || {
        let names: Vec<String> = names.iter().map(|n| n.to_uppercase()).collect();
        format!("usage: plinth {command} [STACK_FILE] {}", names.join(" "))
    };
    let given = rest.len();
    match <[String; N]>::try_from(rest) {
        Ok(values) => Ok((stack, values)),
        Err(_) => fail(format!(
            "expected {N} argument(s) after the stack file, got {given}; {}",
            usage()
        )),
    }
}

/// A registry whose clients are never used (validate, schema, graph make no calls).
pub fn offline_registry() -> Registry {
    plinth_aws::registry(&Arc::new(Aws::offline()))
}

/// Loads the AWS configuration chain.
pub async fn connect(global: &GlobalArgs, region: Option<String>) -> Arc<Aws> {
    let options = AwsOptions {
        endpoint_url: global.endpoint_url.clone(),
        profile: global.profile.clone(),
        max_attempts: global.max_attempts,
        read_timeout: global.read_timeout,
        region,
    };
    Arc::new(Aws::load(&options).await)
}

/// Reads and checks the stack file; prints warnings, returns errors as diagnostics.
pub fn load_stack(
    global: &GlobalArgs,
    path: &Path,
    registry: &Registry,
    fallback_region: Option<String>,
    ui: &Ui,
) -> Result<(Stack, DepGraph), CliError> {
    let parsed = stack::load::parse(path).map_err(CliError::Diagnostics)?;
    load_parsed(global, &parsed, registry, fallback_region, ui)
}

/// [`load_stack`] of a file already parsed (a roster loads one parse for every student).
pub fn load_parsed(
    global: &GlobalArgs,
    parsed: &Parsed,
    registry: &Registry,
    fallback_region: Option<String>,
    ui: &Ui,
) -> Result<(Stack, DepGraph), CliError> {
    let options = LoadOptions {
        vars: VarInputs {
            files: global.var_files.clone(),
            pairs: global.vars.clone(),
        },
        workspace: global.workspace.clone(),
        fallback_region: fallback_region
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok()),
    };
    validate_workspace(&global.workspace)?;
    let (stack, warnings) = parsed
        .load(registry, &options)
        .map_err(CliError::Diagnostics)?;
    for w in warnings.warnings() {
        ui.diagnostic(w);
    }
    let graph = DepGraph::build(&stack, registry).map_err(CliError::Diagnostics)?;
    Ok((stack, graph))
}

fn validate_workspace(name: &str) -> Result<(), CliError> {
    match plinth_core::state::workspace_name_problem(name) {
        Some(problem) => fail(format!("workspace {problem}")),
        None => Ok(()),
    }
}

/// The AWS connections an environment is worked on through.
#[derive(Clone)]
pub struct Connection {
    /// Where the resources are: the caller's own account, or a student's through a role.
    pub aws: Arc<Aws>,
    /// Where the state is: always with the caller's own credentials (an instructor's state
    /// bucket holds every student's state, whatever account the student's resources are in).
    pub state_aws: Arc<Aws>,
    /// The student's account, when `aws` works in one through a role (already checked);
    /// `None`: whichever the credentials are for, asked once.
    pub account: Option<String>,
}

impl Connection {
    /// Everything with the caller's own credentials.
    pub fn own(aws: Arc<Aws>) -> Connection {
        Connection {
            state_aws: aws.clone(),
            aws,
            account: None,
        }
    }
}

/// Everything a command that talks to AWS needs.
pub struct Session {
    pub aws: Arc<Aws>,
    pub registry: Registry,
    pub stack: Stack,
    pub graph: DepGraph,
    pub store: Arc<dyn StateStore>,
    /// How long to wait for the state's lock (`--lock-timeout`).
    pub lock_timeout: Option<std::time::Duration>,
    /// Where the state was named (`--state`, `--state-dir`, the stack's `state:`), if it was.
    pub state: Option<String>,
}

impl Session {
    /// Connects, loads the stack and binds `${account_id}` if the stack uses it.
    pub async fn open(
        global: &GlobalArgs,
        stack_arg: &Option<PathBuf>,
        ui: &Ui,
    ) -> Result<Session, CliError> {
        let path = stack_path(global, stack_arg);
        let parsed = stack::load::parse(&path).map_err(CliError::Diagnostics)?;
        let aws = connect_in(global, parsed.declared().region).await;
        Session::load(global, Connection::own(aws), &parsed, ui).await
    }

    /// Loads the parsed stack for `global`'s workspace and variables over connections
    /// already made (a roster opens one session per student over its connections).
    pub async fn load(
        global: &GlobalArgs,
        connection: Connection,
        parsed: &Parsed,
        ui: &Ui,
    ) -> Result<Session, CliError> {
        let path = parsed.file.path.as_path();
        let Connection {
            aws,
            state_aws,
            account,
        } = connection;
        let registry = plinth_aws::registry(&aws);
        let (mut stack, graph) = load_parsed(global, parsed, &registry, aws.default_region(), ui)?;
        // Where the resources are, recorded in the state: no later run from another account
        // (another instructor's credentials, a student's role) takes them for gone.
        let caller = state_aws.account_id(&stack.region).await.map_err(|e| {
            CliError::Message(format!(
                "reading which account your credentials are for: {e}"
            ))
        })?;
        let account = account.unwrap_or_else(|| caller.clone());
        stack.caller_account = Some(caller);
        if stack.needs_account_id() {
            stack.bind_account_id(&account);
        }
        ui.add_secrets(stack.sensitive_values());
        stack.account = Some(account);
        let (store, state) = state_store(global, Some(&state_aws), path, &stack).await?;
        // Remote state is stamped on what the stack makes (`plinth:state`), so `sweep`
        // elsewhere never takes it for an orphan.
        if let Some(url) = state.as_ref().filter(|s| s.starts_with(S3_SCHEME)) {
            stack.state = Some(url.clone());
        }
        Ok(Session {
            aws,
            registry,
            stack,
            graph,
            store,
            lock_timeout: global.lock_timeout,
            state,
        })
    }
}

/// Connects for a stack file. A region the stack names spares the SDK its own region lookup
/// (which may try the instance metadata service); without one, the SDK's chain decides.
pub async fn connect_for_stack(global: &GlobalArgs, path: &Path) -> Arc<Aws> {
    let region = stack::load::declared(path).and_then(|d| d.region);
    connect_in(global, region).await
}

/// Connects for the region a stack file names (when it names one).
pub async fn connect_in(global: &GlobalArgs, stack_region: Option<String>) -> Arc<Aws> {
    let declared = stack_region
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok());
    connect(global, declared).await
}

/// Where a stack's state is named: `--state`, else `--state-dir`, else the stack file's
/// `state:`; `None` for the default folder beside the stack file.
pub fn state_location(global: &GlobalArgs, stack: Option<&str>) -> Option<String> {
    global
        .state
        .clone()
        .or_else(|| global.state_dir.last().map(|d| d.display().to_string()))
        .or_else(|| stack.map(str::to_string))
}

/// The state files of a stack file's stack and workspace, in a local folder.
pub fn state_files(
    global: &GlobalArgs,
    stack_path: &Path,
    stack: &str,
    workspace: &str,
) -> StateFiles {
    let root = state_location(global, None)
        .filter(|l| !l.starts_with(S3_SCHEME))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            stack_path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join(".plinth")
        });
    StateFiles::new(&root, stack, workspace)
}

/// The state store of a stack: on S3 when its location is an `s3://` URL (connecting for
/// it when `aws` is not given), else a local folder.
pub async fn state_store(
    global: &GlobalArgs,
    aws: Option<&Arc<Aws>>,
    stack_path: &Path,
    stack: &Stack,
) -> Result<(Arc<dyn StateStore>, Option<String>), CliError> {
    let base_dir = stack.file.base_dir();
    let named = location::resolve(&location::Named {
        flag: global.state.as_deref(),
        dirs: &global.state_dir,
        stack: stack.state.as_deref(),
        stack_dir: &base_dir,
    })
    .map_err(CliError::Message)?;
    let at = StoreAt {
        stack_path,
        stack: &stack.name,
        workspace: &stack.workspace,
        region: &stack.region,
    };
    Ok((store_at(named.clone(), aws, global, &at).await?, named))
}

/// Which environment's state, for [`store_at`].
pub struct StoreAt<'a> {
    pub stack_path: &'a Path,
    pub stack: &'a str,
    pub workspace: &'a str,
    pub region: &'a str,
}

/// The store at `named` (an `s3://` URL or a folder; `None`: beside the stack file).
pub async fn store_at(
    named: Option<String>,
    aws: Option<&Arc<Aws>>,
    global: &GlobalArgs,
    at: &StoreAt<'_>,
) -> Result<Arc<dyn StateStore>, CliError> {
    let Some(url) = named.clone().filter(|l| l.starts_with(S3_SCHEME)) else {
        let local = match named {
            Some(dir) => StateFiles::new(Path::new(&dir), at.stack, at.workspace),
            None => state_files(global, at.stack_path, at.stack, at.workspace),
        };
        return Ok(Arc::new(local));
    };
    let Some((bucket, prefix)) = plinth_aws::state_s3::parse_url(&url) else {
        return fail(format!("`{url}`: expected s3://BUCKET/PREFIX"));
    };
    let aws = match aws {
        Some(aws) => aws.clone(),
        None => connect_for_stack(global, at.stack_path).await,
    };
    let region = aws
        .default_region()
        .unwrap_or_else(|| at.region.to_string());
    Ok(Arc::new(plinth_aws::state_s3::S3Store::new(
        &aws, &region, &bucket, &prefix,
    )))
}

/// Takes the state's lock, waiting up to `--lock-timeout` (with progress) while another
/// command holds it.
pub async fn lock_state(
    lock_timeout: Option<std::time::Duration>,
    store: &dyn StateStore,
    stack: &str,
    workspace: &str,
    command: &str,
) -> Result<(Box<dyn StateLock>, State), CliError> {
    let started = std::time::Instant::now();
    let limit = lock_timeout.unwrap_or_default();
    let mut said = false;
    loop {
        match store.lock_and_read(stack, workspace, command) {
            Err(StoreError::Locked { holder, .. } | StoreError::RemoteLocked { holder, .. })
                if started.elapsed() < limit =>
            {
                if !said {
                    tracing::warn!(
                        "waiting up to {} for the state's lock, held by {holder}",
                        humantime::format_duration(limit)
                    );
                    said = true;
                }
                tokio::time::sleep(LOCK_POLL).await;
            }
            other => return Ok(other?),
        }
    }
}

/// How often a waiting command asks for a held lock again.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// For commands that only read state: the stack's name from the file, and its store (AWS
/// is reached only for state on S3).
pub async fn state_of(
    global: &GlobalArgs,
    stack_arg: &Option<PathBuf>,
    ui: &Ui,
) -> Result<(Stack, Arc<dyn StateStore>), CliError> {
    let path = stack_path(global, stack_arg);
    let registry = offline_registry();
    let (stack, _) = load_stack(global, &path, &registry, Some("us-east-1".into()), ui)?;
    ui.add_secrets(stack.sensitive_values());
    let (store, _) = state_store(global, None, &path, &stack).await?;
    Ok((stack, store))
}

/// Prints `--stats` to stderr as one JSON line, for people and benchmarks alike.
pub fn print_stats(global: &GlobalArgs, aws: &Aws) {
    if !global.stats {
        return;
    }
    let (throttled, paced) = aws.throttling();
    let stats = serde_json::json!({
        "aws_calls": aws.stats.total(),
        "aws_attempts": aws.stats.attempts(),
        "throttled": throttled,
        "paced_seconds": (paced.as_secs_f64() * 10.0).round() / 10.0,
        "by_operation": aws.stats.by_operation(),
    });
    eprintln!("plinth-stats: {stats}");
}

pub fn display_path(p: &Path) -> String {
    diag::display_path(p)
}
