//! A session: one environment opened over AWS — the stack loaded once for a workspace, its
//! state store (a local folder, or S3), the connection its resources are reached through and
//! the account they are in. What is done with it (plan, apply, destroy, a class of students)
//! is `plinth_core::session`; this binds it to AWS, in one place for every backend and account.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use plinth_core::diag::Diagnostics;
use plinth_core::resource::{ErrorKind, OpContext, Registry, ResourceError};
use plinth_core::roster::{AccountAccess, Roster, DEFAULT_ROLE_NAME};
use plinth_core::session::{self, Accounts, Environment};
use plinth_core::stack::load::{LoadOptions, Parsed};
use plinth_core::stack::Stack;
use plinth_core::state::location::{self, S3_SCHEME};
use plinth_core::state::store::StateFiles;
use plinth_core::state::{State, StateStore};
use plinth_core::teardown::{self, Leftover, TaggedResource, STACK_TAG, WORKSPACE_TAG};
use plinth_core::value::Props;

use crate::state_s3::{self, S3Store};
use crate::tagging::{self, TagFilter};
use crate::{Aws, AwsOptions, RoleToAssume};

/// Where state lives and how long to wait for its lock, as the command line names it.
#[derive(Clone, Debug, Default)]
pub struct StateOptions {
    /// `--state`: an `s3://` URL or a folder.
    pub flag: Option<String>,
    /// `--state-dir`, each time given (the last one counts).
    pub dirs: Vec<PathBuf>,
    /// `--lock-timeout`.
    pub lock_timeout: Option<Duration>,
}

/// Everything a session is opened with besides the stack and the connection.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// How to connect, when the state is on S3 and nothing is connected yet.
    pub aws: AwsOptions,
    pub load: LoadOptions,
    pub state: StateOptions,
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

/// Why a session could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Problems in the stack or variable files, each at its place.
    Stack(Diagnostics),
    Other(String),
}

/// One environment, opened.
pub struct Session {
    /// The connection its resources are reached through.
    pub aws: Arc<Aws>,
    pub env: Environment,
}

impl Session {
    /// Loads a parsed stack for `options`' workspace and variables over `connection`, then
    /// records the accounts, binds `${account_id}` and opens the state store. The load's
    /// warnings go to `warn` as soon as the stack is loaded, whatever happens next.
    pub async fn load(
        options: &SessionOptions,
        connection: Connection,
        parsed: &Parsed,
        warn: &(dyn Fn(&Diagnostics) + Sync),
    ) -> Result<Session, OpenError> {
        let Connection {
            aws,
            state_aws,
            account,
        } = connection;
        let registry = crate::registry(&aws);
        let mut load = options.load.clone();
        load.fallback_region = load.fallback_region.or_else(|| aws.default_region());
        let loaded = session::load(parsed, &registry, &load).map_err(OpenError::Stack)?;
        warn(&loaded.warnings);
        let mut stack = loaded.stack;
        // Asked once the stack is known good, in its region (the partition of the
        // credentials); cached per connection.
        let caller = state_aws.account_id(&stack.region).await.map_err(|e| {
            OpenError::Other(format!(
                "reading which account your credentials are for: {e}"
            ))
        })?;
        let accounts = Accounts {
            resources: account.unwrap_or_else(|| caller.clone()),
            caller,
        };
        session::bind_accounts(&mut stack, &accounts);
        let named = named_state(&options.state, &stack).map_err(OpenError::Other)?;
        let store = store_at(
            named.clone(),
            &StoreAt::of(&stack),
            Some(&state_aws),
            &options.aws,
        )
        .await
        .map_err(OpenError::Other)?;
        // Remote state is stamped on what the stack makes (`plinth:state`), so `sweep`
        // elsewhere never takes it for an orphan.
        if let Some(url) = named.as_ref().filter(|s| location::is_s3(s)) {
            stack.state = Some(url.clone());
        }
        Ok(Session {
            aws,
            env: Environment {
                registry,
                stack,
                graph: loaded.graph,
                store,
                lock_timeout: options.state.lock_timeout,
                state: named,
            },
        })
    }
}

/// What a destroy left of an environment, asked of AWS by its tags.
pub struct TeardownCheck {
    /// The regions searched.
    pub searched: Vec<String>,
    /// The regions that could not be searched, and why.
    pub failed: Vec<(String, ResourceError)>,
    /// What is left, and why: pending deletion, still in state, or unknown to it.
    pub leftovers: Vec<(TaggedResource, Leftover)>,
}

impl Session {
    /// Searches every region and type the environment used (`state`: as the destroy left
    /// it; `other_regions`: where its resources kept copies before) for what is still
    /// tagged with it.
    pub async fn check_teardown(&self, state: &State, other_regions: &[String]) -> TeardownCheck {
        let env = &self.env;
        let stack = &env.stack;
        let filters = [
            TagFilter::equals(STACK_TAG, &stack.name),
            TagFilter::equals(WORKSPACE_TAG, &stack.workspace),
        ];
        let regions = teardown::regions_with(stack, state, other_regions);
        let types = teardown::types_used(stack, state, &env.registry);
        let search = tagging::find_tagged(&self.aws, &regions, &filters, &types).await;
        let found = still_there(&env.registry, search.found).await;
        TeardownCheck {
            searched: search.searched,
            failed: search.failed,
            leftovers: teardown::leftovers(state, &env.registry, &found),
        }
    }
}

/// What the tagging API listed that really exists: it answers from an index that may
/// still hold what was deleted a moment ago, so each resource of a type plinth knows is
/// read; one whose read fails, or of a type plinth does not know, is kept.
async fn still_there(registry: &Registry, found: Vec<TaggedResource>) -> Vec<TaggedResource> {
    let checks = join_all(found.iter().map(|r| exists(registry, r))).await;
    found
        .into_iter()
        .zip(checks)
        .filter_map(|(r, exists)| exists.then_some(r))
        .collect()
}

async fn exists(registry: &Registry, resource: &TaggedResource) -> bool {
    let Some((type_name, id)) = registry.resolve_arn(&resource.arn) else {
        return true;
    };
    let Some(rt) = registry.get(type_name) else {
        return true;
    };
    let ctx = OpContext::new(resource.region.clone(), id.clone());
    match rt.read(&ctx, &id, &Props::new()).await {
        Ok(found) => found.is_some(),
        Err(e) => e.kind != ErrorKind::NotFound,
    }
}

/// Where a stack's state is named (`--state`, `--state-dir`, the stack's `state:`), or
/// `None` for the folder beside the stack file.
pub fn named_state(state: &StateOptions, stack: &Stack) -> Result<Option<String>, String> {
    location::resolve(&location::Named {
        flag: state.flag.as_deref(),
        dirs: &state.dirs,
        stack: stack.state.as_deref(),
        stack_dir: &stack.file.base_dir(),
    })
}

/// Which environment's state, for [`store_at`].
pub struct StoreAt<'a> {
    pub stack_path: &'a Path,
    pub stack: &'a str,
    pub workspace: &'a str,
    /// The stack's region: where a state bucket is reached when the connection has none.
    pub region: &'a str,
}

impl<'a> StoreAt<'a> {
    pub fn of(stack: &'a Stack) -> StoreAt<'a> {
        StoreAt {
            stack_path: &stack.file.path,
            stack: &stack.name,
            workspace: &stack.workspace,
            region: &stack.region,
        }
    }
}

/// The store at `named`: on S3 for an `s3://` URL (over `aws`, else a connection made with
/// `connect`, whose region is the stack file's or the SDK's own choice), a folder otherwise,
/// or `.plinth` beside the stack file when nothing is named.
pub async fn store_at(
    named: Option<String>,
    at: &StoreAt<'_>,
    aws: Option<&Arc<Aws>>,
    connect: &AwsOptions,
) -> Result<Arc<dyn StateStore>, String> {
    let Some(url) = named.clone().filter(|l| l.starts_with(S3_SCHEME)) else {
        let root = match named {
            Some(dir) => PathBuf::from(dir),
            None => beside(at.stack_path),
        };
        return Ok(Arc::new(StateFiles::new(&root, at.stack, at.workspace)));
    };
    let Some((bucket, prefix)) = state_s3::parse_url(&url) else {
        return Err(format!("`{url}`: expected s3://BUCKET/PREFIX"));
    };
    let aws = match aws {
        Some(aws) => aws.clone(),
        None => {
            let options = AwsOptions {
                region: connect
                    .region
                    .clone()
                    .or_else(|| Some(at.region.to_string())),
                ..connect.clone()
            };
            Arc::new(Aws::load(&options).await)
        }
    };
    let region = aws
        .default_region()
        .unwrap_or_else(|| at.region.to_string());
    Ok(Arc::new(S3Store::new(&aws, &region, &bucket, &prefix)))
}

/// The default state folder: `.plinth` beside the stack file.
pub fn beside(stack_path: &Path) -> PathBuf {
    stack_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(".plinth")
}

/// The role a roster line's account is reached through; the session's name (`parts` joined)
/// says in the account's CloudTrail who worked there and for what.
pub fn role_for(access: &AccountAccess, role_name: &str, parts: &[&str]) -> RoleToAssume {
    RoleToAssume {
        role_arn: access.role_arn(role_name),
        session_name: RoleToAssume::session_name_of(parts),
        external_id: access.external_id.clone(),
    }
}

/// A connection working in `access`'s account through `role`, checked with one
/// `GetCallerIdentity`: a role that cannot be assumed fails here, clearly, before anything is
/// read or changed, and so would one that leads somewhere else.
pub async fn reach(
    aws: &Aws,
    role: &RoleToAssume,
    access: &AccountAccess,
) -> Result<Arc<Aws>, String> {
    let assumed = aws.assuming(role).await;
    let expected = access.account_id();
    let reached = assumed
        .account_id(&aws.home_region())
        .await
        .map_err(|e| {
            format!(
                "cannot work in account {expected} as {}: {e}. The role must exist in that account and trust yours (AWS Organizations makes {DEFAULT_ROLE_NAME} in the accounts it creates; --role-name names another, a line's role_arn= any role)",
                role.role_arn
            )
        })?;
    if reached != expected {
        return Err(format!(
            "assuming {} reached account {reached}, not {expected}",
            role.role_arn
        ));
    }
    Ok(Arc::new(assumed))
}

/// A roster student's connection: through their role when their line names an account
/// other than the caller's, else the caller's own (the management account of an
/// organisation has no OrganizationAccountAccessRole).
pub async fn student_connection(
    own: &Arc<Aws>,
    access: Option<&AccountAccess>,
    role_name: &str,
    session_name: &[&str],
) -> Result<Connection, String> {
    let Some(access) = access else {
        return Ok(Connection::own(own.clone()));
    };
    let caller = own.account_id(&own.home_region()).await.ok();
    if caller.as_deref() == Some(access.account_id()) {
        return Ok(Connection::own(own.clone()));
    }
    let role = role_for(access, role_name, session_name);
    Ok(Connection {
        aws: reach(own, &role, access).await?,
        state_aws: own.clone(),
        account: Some(access.account_id().to_string()),
    })
}

/// One account a class's environments are in, reached.
pub struct ClassAccount {
    pub id: String,
    /// Whether it is the one the caller's credentials are for.
    pub own: bool,
    /// The roster's students in it.
    pub students: Vec<String>,
    pub aws: Arc<Aws>,
}

impl ClassAccount {
    /// Whether `state`'s environment is in this account.
    pub fn holds(&self, state: &State) -> bool {
        state.is_in_account(&self.id, self.own)
    }
}

/// The caller's own account, then each account `roster` names, reached through its role
/// (`purpose` names the role sessions); students sharing an account (the caller's own, even)
/// share one entry. An account that cannot be reached is returned apart, with why, so the
/// others are still worked on.
pub async fn class_accounts(
    own: &Arc<Aws>,
    roster: Option<&Roster>,
    role_name: &str,
    purpose: &str,
) -> Result<(Vec<ClassAccount>, Vec<String>), String> {
    let id = own
        .account_id(&own.home_region())
        .await
        .map_err(|e| format!("reading which account your credentials are for: {e}"))?;
    let mut accounts = vec![ClassAccount {
        id,
        own: true,
        students: Vec::new(),
        aws: own.clone(),
    }];
    let mut unreached = Vec::new();
    let students = roster.map(|r| r.students.as_slice()).unwrap_or_default();
    for student in students {
        let Some(access) = &student.account else {
            continue;
        };
        let id = access.account_id().to_string();
        if let Some(known) = accounts.iter_mut().find(|a| a.id == id) {
            known.students.push(student.name.clone());
            continue;
        }
        let role = role_for(access, role_name, &["plinth", purpose, &student.name]);
        match reach(own, &role, access).await {
            Ok(aws) => accounts.push(ClassAccount {
                id,
                own: false,
                students: vec![student.name.clone()],
                aws,
            }),
            Err(why) => unreached.push(why),
        }
    }
    Ok((accounts, unreached))
}
