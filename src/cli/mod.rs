//! The command line: one file per command; this file holds the shared arguments, the
//! loading every command does, and the mapping of errors to messages and exit codes.

mod apply;
mod completions;
mod cost;
mod drift;
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
use plinth_aws::session::{
    named_state, store_at, Connection, OpenError, Session, SessionOptions, StateOptions, StoreAt,
};
use plinth_aws::{Aws, AwsOptions};
use plinth_core::diag::{self, Diagnostics};
use plinth_core::graph::DepGraph;
use plinth_core::resource::Registry;
use plinth_core::session;
use plinth_core::stack::load::Parsed;
use plinth_core::stack::vars::VarInputs;
use plinth_core::stack::{self, LoadOptions, Stack};
use plinth_core::state::location;
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
    /// List what changed outside plinth since it last applied (exit 2 when something did).
    Drift(drift::DriftArgs),
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
    /// Print a shell completion script: `source <(plinth completions bash)`.
    Completions(completions::CompletionsArgs),
    /// Print plinth's man page (or write one per command with --out DIR).
    Man(completions::ManArgs),
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
        Command::Drift(a) => drift::run(&cli.global, a, &ui).await,
        Command::Show(a) => show::run(&cli.global, a, &ui).await,
        Command::Output(a) => output::run(&cli.global, a, &ui).await,
        Command::State(c) => state::run(&cli.global, c, &ui).await,
        Command::Import(a) => import::run(&cli.global, a, &ui).await,
        Command::Graph(a) => graph::run(&cli.global, a, &ui).await,
        Command::Schema => schema::run(&ui),
        Command::Completions(a) => completions::completions(a, &ui),
        Command::Man(a) => completions::man(a, &ui),
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

/// How to reach AWS, from the command line.
pub fn aws_options(global: &GlobalArgs, region: Option<String>) -> AwsOptions {
    AwsOptions {
        endpoint_url: global.endpoint_url.clone(),
        profile: global.profile.clone(),
        max_attempts: global.max_attempts,
        read_timeout: global.read_timeout,
        region,
    }
}

/// Loads the AWS configuration chain.
pub async fn connect(global: &GlobalArgs, region: Option<String>) -> Arc<Aws> {
    Arc::new(Aws::load(&aws_options(global, region)).await)
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
    let mut options = load_options(global);
    options.fallback_region = fallback_region.or(options.fallback_region);
    let loaded = session::load(&parsed, registry, &options).map_err(CliError::Diagnostics)?;
    print_warnings(&loaded.warnings, ui);
    Ok((loaded.stack, loaded.graph))
}

fn print_warnings(warnings: &Diagnostics, ui: &Ui) {
    for w in warnings.warnings() {
        ui.diagnostic(w);
    }
}

/// The workspace and variables of the command line, and the region from the environment
/// for a stack that names none.
pub fn load_options(global: &GlobalArgs) -> LoadOptions {
    LoadOptions {
        vars: VarInputs {
            files: global.var_files.clone(),
            pairs: global.vars.clone(),
        },
        workspace: global.workspace.clone(),
        fallback_region: env_region(),
    }
}

/// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
fn env_region() -> Option<String> {
    std::env::var("AWS_REGION")
        .ok()
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
}

/// Where state lives and how long to wait for its lock, from the command line.
pub fn state_options(global: &GlobalArgs) -> StateOptions {
    StateOptions {
        flag: global.state.clone(),
        dirs: global.state_dir.clone(),
        lock_timeout: global.lock_timeout,
    }
}

/// Everything a session is opened with, from the command line.
pub fn session_options(global: &GlobalArgs) -> SessionOptions {
    let mut load = load_options(global);
    // A stack naming no region takes its connection's (which already has the environment's).
    load.fallback_region = None;
    SessionOptions {
        aws: aws_options(global, None),
        load,
        state: state_options(global),
    }
}

/// Connects for the stack file, loads it and opens its state: what every command that
/// talks to AWS about one environment begins with.
pub async fn open(
    global: &GlobalArgs,
    stack_arg: &Option<PathBuf>,
    ui: &Ui,
) -> Result<Session, CliError> {
    let path = stack_path(global, stack_arg);
    let parsed = stack::load::parse(&path).map_err(CliError::Diagnostics)?;
    let aws = connect_in(global, parsed.declared().region).await;
    open_over(&session_options(global), Connection::own(aws), &parsed, ui).await
}

/// Opens a session of a parsed stack over connections already made (a roster opens one per
/// student), printing the load's warnings and masking the stack's secrets from then on.
pub async fn open_over(
    options: &SessionOptions,
    connection: Connection,
    parsed: &Parsed,
    ui: &Ui,
) -> Result<Session, CliError> {
    let warn = |warnings: &Diagnostics| print_warnings(warnings, ui);
    let session = Session::load(options, connection, parsed, &warn)
        .await
        .map_err(opened)?;
    ui.add_secrets(session.env.stack.sensitive_values());
    Ok(session)
}

/// A session that could not be opened, for printing.
pub fn opened(e: OpenError) -> CliError {
    match e {
        OpenError::Stack(d) => CliError::Diagnostics(d),
        OpenError::Other(m) => CliError::Message(m),
    }
}

/// Connects for the region a stack file names (when it names one).
pub async fn connect_in(global: &GlobalArgs, stack_region: Option<String>) -> Arc<Aws> {
    connect(global, stack_region.or_else(env_region)).await
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
    Ok(session::lock_waiting(store, (stack, workspace), command, lock_timeout).await?)
}

/// For commands that only read state: the stack's name from the file, and its store (AWS
/// is reached only for state on S3).
pub async fn state_of(
    global: &GlobalArgs,
    stack_arg: &Option<PathBuf>,
    ui: &Ui,
) -> Result<(Stack, Arc<dyn StateStore>), CliError> {
    let (stack, store, _) = state_with_connection(global, stack_arg, ui).await?;
    Ok((stack, store))
}

/// [`state_of`], with how it connects to AWS: the stack file's region, else the SDK's own
/// choice (state on S3 is reached with these, and so is a state moved there).
pub async fn state_with_connection(
    global: &GlobalArgs,
    stack_arg: &Option<PathBuf>,
    ui: &Ui,
) -> Result<(Stack, Arc<dyn StateStore>, AwsOptions), CliError> {
    let path = stack_path(global, stack_arg);
    let parsed = stack::load::parse(&path).map_err(CliError::Diagnostics)?;
    let connect = aws_options(global, parsed.declared().region.or_else(env_region));
    let mut options = load_options(global);
    // Reading state needs no region; a stack naming none still loads.
    options.fallback_region = options.fallback_region.or(Some("us-east-1".into()));
    let loaded =
        session::load(&parsed, &offline_registry(), &options).map_err(CliError::Diagnostics)?;
    print_warnings(&loaded.warnings, ui);
    let stack = loaded.stack;
    ui.add_secrets(stack.sensitive_values());
    let named = named_state(&state_options(global), &stack).map_err(CliError::Message)?;
    let store = store_at(named, &StoreAt::of(&stack), None, &connect)
        .await
        .map_err(CliError::Message)?;
    Ok((stack, store, connect))
}

/// The state store of a stack loaded without a connection (`plinth cost`), connecting only
/// for state on S3.
pub async fn store_of(global: &GlobalArgs, stack: &Stack) -> Result<Arc<dyn StateStore>, CliError> {
    let named = named_state(&state_options(global), stack).map_err(CliError::Message)?;
    // The file's region is looked up again only when there is a bucket to reach.
    let declared = match named.as_deref().is_some_and(location::is_s3) {
        true => stack::load::declared(&stack.file.path).and_then(|d| d.region),
        false => None,
    };
    let connect = aws_options(global, declared.or_else(env_region));
    store_at(named, &StoreAt::of(stack), None, &connect)
        .await
        .map_err(CliError::Message)
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
