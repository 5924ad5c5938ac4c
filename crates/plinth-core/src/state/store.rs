//! The local state backend: `.plinth/<stack>/<workspace>/` beside the stack file.
//!
//! - `state.json` is replaced atomically (temp file, fsync, rename, fsync the folder);
//!   the previous one is kept as `state.json.backup`.
//! - `journal.jsonl` receives every finished operation, fsynced, while an apply runs; it is
//!   folded into the state at the end, or at the next start if plinth was killed.
//! - `lock` is locked by the operating system (flock) for as long as a command holds the
//!   state, and names the pid, host and command holding it. The OS lets go of it when the
//!   process ends, however it ends: there is no stale lock to take over, so two processes
//!   can never both believe they hold it.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::state::{JournalEntry, State, StateLock, StateStore, STATE_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid plinth state file: {source}\n  the previous state is kept beside it as state.json.backup")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the state is locked by {holder}\n  lock file: {path}\n  wait for that command to finish (the lock is released when its process ends)")]
    Locked { path: PathBuf, holder: String },
    #[error("{path} belongs to stack `{found}`, not `{expected}`")]
    WrongStack {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{path} belongs to workspace `{found}`, not `{expected}`; it was copied or moved here by hand: put it back under .plinth/<stack>/{found}/, or use --workspace {found}")]
    WrongWorkspace {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{location}: {message}")]
    Remote { location: String, message: String },
    #[error("the state at {location} was moved to {to}: use --state {to} (or `state: {to}` in the stack file)")]
    Moved { location: String, to: String },
    #[error("the state at {location} is locked by {holder}, lock id {id}\n  wait for it (--lock-timeout 5m), or, if that run is gone, break the lock with `plinth state unlock {id}`")]
    RemoteLocked {
        location: String,
        holder: String,
        id: String,
    },
    #[error("the state at {location} was written by someone else since this run read it (was its lock broken?): nothing was overwritten, and this run's operations stay in the journal there; run the command again to fold them in")]
    Conflict { location: String },
    #[error("{path} was written by a newer plinth (state format {found}; this plinth knows up to {known}): upgrade plinth to use it. The file is left as it is.")]
    NewerVersion {
        path: PathBuf,
        found: u32,
        known: u32,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Who holds a lock.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockInfo {
    pub pid: u32,
    pub host: String,
    pub command: String,
    pub since: String,
    /// Who ran it (`$USER`); names the holder of a shared lock.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Names a shared lock, for `plinth state unlock ID`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
}

impl LockInfo {
    /// This process, running `command`.
    pub fn here(command: &str, id: &str) -> LockInfo {
        LockInfo {
            pid: std::process::id(),
            host: hostname(),
            command: command.to_string(),
            since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            user: std::env::var("USER").unwrap_or_default(),
            id: id.to_string(),
        }
    }
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` ({}pid {} on {}, since {})",
            self.command,
            if self.user.is_empty() {
                String::new()
            } else {
                format!("{}, ", self.user)
            },
            self.pid,
            self.host,
            self.since
        )
    }
}

/// The files of one stack and workspace.
#[derive(Clone, Debug)]
pub struct StateFiles {
    pub dir: PathBuf,
}

impl StateFiles {
    /// `root/<stack>/<workspace>/`.
    pub fn new(root: &Path, stack: &str, workspace: &str) -> StateFiles {
        StateFiles {
            dir: root.join(stack).join(workspace),
        }
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn backup(&self) -> PathBuf {
        self.dir.join("state.json.backup")
    }
    pub fn journal(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join("lock")
    }
    /// Where the state went, after `plinth state migrate`.
    pub fn moved_to(&self) -> PathBuf {
        self.dir.join("moved-to")
    }

    fn refuse_if_moved(&self) -> Result<(), StoreError> {
        match fs::read_to_string(self.moved_to()) {
            Ok(to) => Err(StoreError::Moved {
                location: self.dir.display().to_string(),
                to: to.trim().to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.moved_to())(e)),
        }
    }

    /// Reads the state without locking (for `show`, `output`); a journal left by a killed
    /// run is folded in memory so readers see what really exists.
    pub fn read(&self, stack: &str, workspace: &str) -> Result<State, StoreError> {
        self.refuse_if_moved()?;
        let mut state = self.read_file(stack, workspace)?;
        for entry in self.read_journal()? {
            state.apply_entry(&entry);
        }
        Ok(state)
    }

    fn read_file(&self, stack: &str, workspace: &str) -> Result<State, StoreError> {
        let path = self.state();
        match fs::read_to_string(&path) {
            Ok(text) => parse_state(&text, &path, stack, workspace),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::new(stack, workspace)),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Journal entries in order. A torn last line (killed mid-write) is ignored: its
    /// operation was not acknowledged as recorded.
    fn read_journal(&self) -> Result<Vec<JournalEntry>, StoreError> {
        let path = self.journal();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut out = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io_err(&path))?;
            match serde_json::from_str::<JournalEntry>(&line) {
                Ok(entry) => out.push(entry),
                Err(_) => {
                    tracing::warn!(path = %path.display(), "ignoring a torn journal line");
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Takes the lock, folds any journal a killed run left, and returns the state.
    pub fn lock_and_read(
        &self,
        stack: &str,
        workspace: &str,
        command: &str,
    ) -> Result<(LockedState, State), StoreError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let lock = Lock::acquire(&self.lock(), command)?;
        self.refuse_if_moved()?;
        let mut state = self.read_file(stack, workspace)?;
        let entries = self.read_journal()?;
        let locked = LockedState {
            files: self.clone(),
            journal: Mutex::new(None),
            _lock: lock,
        };
        if !entries.is_empty() {
            tracing::info!(
                entries = entries.len(),
                "recovering operations recorded by an interrupted run"
            );
            for entry in &entries {
                state.apply_entry(entry);
            }
            locked.write(&mut state)?;
        }
        Ok((locked, state))
    }
}

/// A state document read from `path` (a file, or an object's URL), checked: a newer format,
/// another stack's or another workspace's state is refused, never silently rewritten.
pub fn parse_state(
    text: &str,
    path: &Path,
    stack: &str,
    workspace: &str,
) -> Result<State, StoreError> {
    let path = path.to_path_buf();
    // The format version first: a newer state may not even parse as this one's.
    let version = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64));
    if let Some(found) = version.filter(|v| *v > u64::from(STATE_VERSION)) {
        return Err(StoreError::NewerVersion {
            path,
            found: u32::try_from(found).unwrap_or(u32::MAX),
            known: STATE_VERSION,
        });
    }
    let state: State = serde_json::from_str(text).map_err(|source| StoreError::Corrupt {
        path: path.clone(),
        source,
    })?;
    if state.workspace != workspace {
        return Err(StoreError::WrongWorkspace {
            path,
            found: state.workspace,
            expected: workspace.to_string(),
        });
    }
    if state.stack != stack {
        return Err(StoreError::WrongStack {
            path,
            found: state.stack,
            expected: stack.to_string(),
        });
    }
    Ok(state)
}

impl StateStore for StateFiles {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }
    fn read(&self, stack: &str, workspace: &str) -> Result<State, StoreError> {
        StateFiles::read(self, stack, workspace)
    }
    fn lock_and_read(
        &self,
        stack: &str,
        workspace: &str,
        command: &str,
    ) -> Result<(Box<dyn StateLock>, State), StoreError> {
        let (locked, state) = StateFiles::lock_and_read(self, stack, workspace, command)?;
        Ok((Box::new(locked), state))
    }
    fn mark_moved(&self, _stack: &str, _workspace: &str, to: &str) -> Result<(), StoreError> {
        let path = self.moved_to();
        fs::write(&path, format!("{to}\n")).map_err(io_err(&path))?;
        sync_dir(&self.dir)
    }
    fn clear_moved(&self, _stack: &str, _workspace: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.moved_to()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.moved_to())(e)),
        }
    }
    fn unlock(&self, _stack: &str, _workspace: &str, _id: &str) -> Result<LockInfo, StoreError> {
        Err(StoreError::Remote {
            location: self.location(),
            message: "a local lock ends with the process that holds it: there is nothing to break"
                .into(),
        })
    }
}

impl StateLock for LockedState {
    fn record(&self, entry: &JournalEntry) -> Result<(), StoreError> {
        LockedState::record(self, entry)
    }
    fn write(&self, state: &mut State) -> Result<(), StoreError> {
        LockedState::write(self, state)
    }
}

/// A held lock on one state; the journal and the final write go through it.
pub struct LockedState {
    files: StateFiles,
    journal: Mutex<Option<File>>,
    _lock: Lock,
}

impl LockedState {
    pub fn files(&self) -> &StateFiles {
        &self.files
    }

    /// Appends one entry to the journal and fsyncs it before returning.
    pub fn record(&self, entry: &JournalEntry) -> Result<(), StoreError> {
        let path = self.files.journal();
        let mut guard = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let file = options.open(&path).map_err(io_err(&path))?;
            *guard = Some(file);
        }
        let Some(file) = guard.as_mut() else {
            return Ok(());
        };
        let mut line =
            serde_json::to_vec(entry).map_err(|e| io_err(&path)(std::io::Error::other(e)))?;
        line.push(b'\n');
        file.write_all(&line).map_err(io_err(&path))?;
        file.sync_data().map_err(io_err(&path))
    }

    /// Writes the state atomically with a backup of the previous one, then drops the journal.
    pub fn write(&self, state: &mut State) -> Result<(), StoreError> {
        state.serial += 1;
        let path = self.files.state();
        let tmp = self.files.dir.join("state.json.tmp");
        let mut text = serde_json::to_vec_pretty(state)
            .map_err(|e| io_err(&path)(std::io::Error::other(e)))?;
        text.push(b'\n');
        {
            let mut f = private_file(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&text).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        if path.exists() {
            fs::copy(&path, self.files.backup()).map_err(io_err(&self.files.backup()))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(&self.files.dir)?;
        // Only now is everything in the journal also in the state file.
        *self.journal.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match fs::remove_file(self.files.journal()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&self.files.journal())(e)),
        }
        sync_dir(&self.files.dir)
    }
}

/// State holds values of sensitive properties (an AUTH token): only its owner may read it.
fn private_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// The lock file, locked by the OS for as long as this value lives. The file itself stays
/// (removing it would let a second process lock a new file while a third still holds the old
/// one); its content only says who held it last.
struct Lock {
    _file: File,
}

impl Lock {
    fn acquire(path: &Path, command: &str) -> Result<Lock, StoreError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io_err(path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(path)
                    .ok()
                    .and_then(|t| serde_json::from_str::<LockInfo>(&t).ok())
                    .map_or_else(|| "another plinth".to_string(), |h| h.to_string());
                return Err(StoreError::Locked {
                    path: path.to_path_buf(),
                    holder,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(path)(e)),
        }
        let info = LockInfo::here(command, "");
        let text = serde_json::to_string(&info).unwrap_or_default();
        file.set_len(0)
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|_| file.sync_data())
            .map_err(io_err(path))?;
        Ok(Lock { _file: file })
    }
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{ResourceState, Status};

    fn resource(id: &str) -> ResourceState {
        ResourceState {
            type_name: "test.thing".into(),
            region: "us-east-1".into(),
            id: id.into(),
            status: Status::Ready,
            props: Default::default(),
            attrs: Default::default(),
            deps: vec![],
            soft_deps: vec![],
            lifecycle: Default::default(),
            changed_at: None,
            create_token: None,
        }
    }

    #[test]
    fn a_second_locker_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = StateFiles::new(dir.path(), "demo", "default");
        let (_held, _) = files
            .lock_and_read("demo", "default", "apply")
            .expect("first lock");
        let err = files
            .lock_and_read("demo", "default", "plan")
            .err()
            .expect("second lock refused");
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    }

    #[test]
    fn a_lock_file_nobody_holds_is_taken_and_names_its_new_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = StateFiles::new(dir.path(), "demo", "default");
        fs::create_dir_all(&files.dir).expect("state folder");
        // What a killed run leaves: the file, naming a process that is gone, but no OS lock.
        let left = LockInfo {
            pid: 4_194_303,
            host: "another-host".into(),
            command: "plinth apply".into(),
            since: "2026-01-01T00:00:00Z".into(),
            user: String::new(),
            id: String::new(),
        };
        fs::write(files.lock(), serde_json::to_string(&left).expect("json")).expect("lock file");
        let (held, _) = files
            .lock_and_read("demo", "default", "plinth plan")
            .expect("nobody holds it");
        let now: LockInfo =
            serde_json::from_str(&fs::read_to_string(files.lock()).expect("lock file"))
                .expect("lock info");
        assert_eq!(
            (now.pid, now.command.as_str()),
            (std::process::id(), "plinth plan")
        );
        let err = files
            .lock_and_read("demo", "default", "plinth apply")
            .err()
            .expect("held");
        assert!(err.to_string().contains("`plinth plan`"), "{err}");
        drop(held);
        files
            .lock_and_read("demo", "default", "plinth apply")
            .expect("released when its holder is dropped");
    }

    #[test]
    fn a_state_of_a_newer_format_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = StateFiles::new(dir.path(), "demo", "default");
        fs::create_dir_all(&files.dir).expect("state folder");
        let newer = r#"{"version": 99, "lineage": "x", "serial": 7, "stack": "demo", "workspace": "default", "resources": {}, "future": true}"#;
        fs::write(files.state(), newer).expect("state");
        let err = files
            .lock_and_read("demo", "default", "plinth apply")
            .err()
            .expect("refused");
        assert!(
            matches!(err, StoreError::NewerVersion { found: 99, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("upgrade plinth"), "{err}");
        assert_eq!(fs::read_to_string(files.state()).expect("state"), newer);
    }

    #[test]
    fn a_state_of_another_workspace_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ana = StateFiles::new(dir.path(), "demo", "ana");
        let (locked, mut state) = ana.lock_and_read("demo", "ana", "apply").expect("lock");
        locked.write(&mut state).expect("write");
        drop(locked);
        let bob = StateFiles::new(dir.path(), "demo", "bob");
        fs::create_dir_all(&bob.dir).expect("folder");
        fs::copy(ana.state(), bob.state()).expect("copied by hand");
        let err = bob.read("demo", "bob").expect_err("refused");
        assert!(
            matches!(&err, StoreError::WrongWorkspace { found, .. } if found == "ana"),
            "{err}"
        );
    }

    #[test]
    fn a_journal_left_by_a_killed_run_is_folded_in_at_the_next_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = StateFiles::new(dir.path(), "demo", "default");
        {
            let (locked, mut state) = files
                .lock_and_read("demo", "default", "apply")
                .expect("lock");
            locked.write(&mut state).expect("write");
            locked
                .record(&JournalEntry::Put {
                    name: "a".into(),
                    resource: resource("id-a"),
                })
                .expect("record");
            locked
                .record(&JournalEntry::Begin {
                    name: "b".into(),
                    resource: ResourceState {
                        status: Status::Creating,
                        ..resource("")
                    },
                })
                .expect("record");
            // Simulate a crash: the lock is dropped, the journal stays, a torn line follows.
            let mut f = OpenOptions::new()
                .append(true)
                .open(files.journal())
                .expect("journal");
            f.write_all(b"{\"op\":\"put\",\"na").expect("torn write");
        }
        let (_locked, state) = files
            .lock_and_read("demo", "default", "apply")
            .expect("relock");
        assert_eq!(state.resources["a"].id, "id-a");
        assert_eq!(state.resources["b"].status, Status::Creating);
        assert_eq!(state.serial, 2, "recovery wrote the folded state");
        assert!(!files.journal().exists(), "journal removed once folded");
    }

    #[test]
    fn writes_keep_a_backup_of_the_previous_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = StateFiles::new(dir.path(), "demo", "default");
        let (locked, mut state) = files
            .lock_and_read("demo", "default", "apply")
            .expect("lock");
        locked.write(&mut state).expect("first write");
        state.resources.insert("a".into(), resource("id-a"));
        locked.write(&mut state).expect("second write");
        let backup: State =
            serde_json::from_str(&fs::read_to_string(files.backup()).expect("backup"))
                .expect("json");
        assert_eq!(backup.serial, 1);
        assert!(backup.resources.is_empty());
        assert_eq!(files.read("demo", "default").expect("read").serial, 2);
    }

    #[cfg(unix)]
    #[test]
    fn state_and_journal_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let files = StateFiles::new(dir.path(), "demo", "default");
        let (locked, mut state) = files
            .lock_and_read("demo", "default", "apply")
            .expect("lock");
        locked
            .record(&JournalEntry::Remove { name: "x".into() })
            .expect("record");
        let journal_mode = fs::metadata(files.journal())
            .expect("journal")
            .permissions()
            .mode();
        locked.write(&mut state).expect("write");
        let state_mode = fs::metadata(files.state())
            .expect("state")
            .permissions()
            .mode();
        assert_eq!(state_mode & 0o777, 0o600);
        assert_eq!(journal_mode & 0o777, 0o600);
    }

    #[test]
    fn a_state_of_another_stack_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = StateFiles::new(dir.path(), "demo", "default");
        let (locked, mut state) = files
            .lock_and_read("demo", "default", "apply")
            .expect("lock");
        locked.write(&mut state).expect("write");
        drop(locked);
        assert!(matches!(
            files.read("other", "default"),
            Err(StoreError::WrongStack { .. })
        ));
    }
}
