//! `plinth state init|pull|push|migrate`: a bucket made fit for state, and a state copied
//! out, put back, or moved to another backend with its serial, lineage and outputs.

use std::io::Write;
use std::path::{Path, PathBuf};

use plinth_core::state::store::parse_state;
use plinth_core::state::State;

use plinth_aws::session::{store_at, StoreAt};

use super::{
    connect, fail, lock_state, state_of, state_with_connection, CliError, CliResult, GlobalArgs, Ui,
};

pub async fn init(global: &GlobalArgs, url: &str, ui: &Ui) -> CliResult {
    let Some((bucket, prefix)) = plinth_aws::state_s3::parse_url(url) else {
        return fail(format!("`{url}`: expected s3://BUCKET"));
    };
    if !prefix.is_empty() {
        return fail(format!(
            "`{url}`: name the bucket only (s3://{bucket}); prefixes are chosen with --state"
        ));
    }
    let aws = connect(global, None).await;
    let region = aws.home_region();
    let setup = plinth_aws::state_s3::init_bucket(&aws, &region, &bucket).await?;
    ui.out(&format!(
        "State bucket s3://{bucket} ({region}) {}: {}.\nUse it with --state s3://{bucket}/PREFIX, or `state: s3://{bucket}/PREFIX` in the stack file.",
        if setup.created { "created" } else { "checked" },
        setup.done.join(", ")
    ));
    Ok(0)
}

pub async fn pull(
    global: &GlobalArgs,
    stack_arg: &Option<PathBuf>,
    out: &Path,
    ui: &Ui,
) -> CliResult {
    let (stack, store) = state_of(global, stack_arg, ui).await?;
    let state = store.read(&stack.name, &stack.workspace)?;
    let mut text = serde_json::to_vec_pretty(&state)?;
    text.push(b'\n');
    write_private(out, &text)?;
    ui.out(&format!(
        "Wrote the state of `{}` (workspace `{}`, serial {}) from {} to {}. It holds sensitive values: keep it private.",
        stack.name,
        stack.workspace,
        state.serial,
        store.location(),
        out.display()
    ));
    Ok(0)
}

pub async fn push(
    global: &GlobalArgs,
    stack_arg: &Option<PathBuf>,
    file: &Path,
    force: bool,
    ui: &Ui,
) -> CliResult {
    let (stack, store) = state_of(global, stack_arg, ui).await?;
    let text = std::fs::read_to_string(file)?;
    let mut pushed = parse_state(&text, file, &stack.name, &stack.workspace)?;
    let (locked, current) = lock_state(
        global.lock_timeout,
        &*store,
        &stack.name,
        &stack.workspace,
        "plinth state push",
    )
    .await?;
    if current.serial > 0 && current.lineage != pushed.lineage && !force {
        return fail(format!(
            "{} holds another history (lineage {}, not {}): pushing would replace it; add --force if you mean it",
            store.location(),
            current.lineage,
            pushed.lineage
        ));
    }
    if pushed.serial < current.serial && !force {
        return fail(format!(
            "{} is at serial {}, newer than {} (serial {}): pushing would lose {} writes; add --force if you mean it",
            store.location(),
            current.serial,
            file.display(),
            pushed.serial,
            current.serial - pushed.serial
        ));
    }
    // One serial past what is there, so every reader sees it is newer.
    pushed.serial = current.serial;
    locked.write(&mut pushed)?;
    ui.out(&format!(
        "Pushed {} to {} (serial {}).",
        file.display(),
        store.location(),
        pushed.serial
    ));
    Ok(0)
}

pub async fn migrate(
    global: &GlobalArgs,
    stack_arg: &Option<PathBuf>,
    to: &str,
    ui: &Ui,
) -> CliResult {
    let (stack, from, connect) = state_with_connection(global, stack_arg, ui).await?;
    let at = StoreAt::of(&stack);
    // A folder as an absolute path: the message below is pasted into other places.
    let to = if to.contains("://") {
        to.to_string()
    } else {
        std::env::current_dir()?.join(to).display().to_string()
    };
    let to = to.as_str();
    let target = store_at(Some(to.to_string()), &at, None, &connect)
        .await
        .map_err(CliError::Message)?;
    if target.location() == from.location() {
        return fail(format!("the state is already at {to}"));
    }
    let command = "plinth state migrate";
    let (_held, state) = lock_state(
        global.lock_timeout,
        &*from,
        &stack.name,
        &stack.workspace,
        command,
    )
    .await?;
    if state.serial == 0 {
        return fail(format!(
            "{} has no state for `{}` (workspace `{}`) to move",
            from.location(),
            stack.name,
            stack.workspace
        ));
    }
    target.clear_moved(&stack.name, &stack.workspace)?;
    let (locked, there) = lock_state(
        global.lock_timeout,
        &*target,
        &stack.name,
        &stack.workspace,
        command,
    )
    .await?;
    if !is_empty(&there) {
        return fail(format!(
            "{} already holds a state for `{}` (serial {}): nothing was moved",
            target.location(),
            stack.name,
            there.serial
        ));
    }
    // Written as it is: the same serial (the write adds one), lineage and outputs.
    let mut moved = state.clone();
    moved.serial = state.serial - 1;
    locked.write(&mut moved)?;
    from.mark_moved(&stack.name, &stack.workspace, to)?;
    ui.out(&format!(
        "Moved the state of `{}` (workspace `{}`, serial {}, lineage {}) from {} to {}.\nThe old copy now says where it went (commands there refuse, naming it): use --state {to} (or `state: {to}` in the stack file) from now on.{}",
        stack.name,
        stack.workspace,
        moved.serial,
        moved.lineage,
        from.location(),
        target.location(),
        if to.starts_with("s3://") {
            "\nThe next apply tags every resource with plinth:state (so sweep elsewhere leaves it alone)."
        } else {
            ""
        }
    ));
    Ok(0)
}

fn is_empty(state: &State) -> bool {
    state.serial == 0 && state.resources.is_empty()
}

/// A file only its owner can read (state holds sensitive values).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // A file that was there keeps its mode on open: make it private too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}
