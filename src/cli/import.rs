//! `plinth import TYPE.NAME ID`: records an existing resource in state, so the next plan
//! diffs the stack against it instead of creating a second one.

use clap::Args;
use plinth_core::resource::OpContext;
use plinth_core::state::{ResourceState, Status};

use super::{fail, positionals, CliResult, GlobalArgs, Ui};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// `[STACK_FILE] TYPE.NAME ID`: the resource's type and logical name, e.g.
    /// `dynamodb.table.users`, then its id in AWS (a table name, a security group id).
    #[arg(value_name = "STACK_FILE|TYPE.NAME|ID", num_args = 2..=3, required = true)]
    pub args: Vec<String>,
}

pub async fn run(global: &GlobalArgs, args: ImportArgs, ui: &Ui) -> CliResult {
    let (stack_file, [address, id]) = positionals("import", ["type.name", "id"], args.args)?;
    let args = Address { address, id };
    let Some((type_name, name)) = args.address.rsplit_once('.') else {
        return fail(format!(
            "`{}`: expected TYPE.NAME, e.g. dynamodb.table.users",
            args.address
        ));
    };
    let session = super::open(global, &stack_file, ui).await?;
    let env = &session.env;
    if env.registry.get(&args.address).is_some() {
        return fail(format!(
            "`{}` is a type: add the resource's logical name, e.g. {}.users",
            args.address, args.address
        ));
    }
    let Some(rt) = env.registry.get(type_name).cloned() else {
        return fail(format!(
            "unknown resource type `{type_name}`; types: {}",
            env.registry.type_names().join(", ")
        ));
    };
    let decl = env.stack.resource(name);
    if let Some(d) = decl {
        if d.type_name != type_name {
            return fail(format!(
                "`{name}` is a {} in the stack file, not a {type_name}",
                d.type_name
            ));
        }
    }
    let (locked, mut state) = env.lock("plinth import").await?;
    let stack = &env.stack;
    if let Some(problem) =
        state.account_problem(stack.account.as_deref(), stack.caller_account.as_deref())
    {
        return fail(problem);
    }
    if let Some(existing) = state.resources.get(name) {
        return fail(format!("`{name}` is already in state (id {}); `plinth state rm {name}` first to import another", existing.id));
    }
    let region = decl
        .map(|d| d.region.clone())
        .unwrap_or_else(|| env.stack.region.clone());
    let ctx = OpContext::new(region.clone(), name)
        .with_environment(&env.stack.name, &env.stack.workspace);
    let observed = rt.read(&ctx, &args.id, &Default::default()).await?;
    let Some(observed) = observed else {
        return fail(format!("no {type_name} with id `{}` in {region}", args.id));
    };
    state.resources.insert(
        name.to_string(),
        ResourceState {
            type_name: type_name.to_string(),
            region,
            id: observed.id.clone(),
            status: Status::Ready,
            props: observed.props,
            attrs: observed.attrs,
            deps: env.graph.dependencies(name),
            soft_deps: env.graph.soft_dependencies(name),
            lifecycle: decl.map(|d| d.lifecycle.clone()).unwrap_or_default(),
            changed_at: None,
            create_token: None,
        },
    );
    // What it was read from is where the environment now is.
    state.account = env.stack.account.clone();
    locked.write(&mut state)?;
    ui.out(&format!("Imported {type_name} `{name}` [id={}]. Run `plinth plan` to see how it differs from the stack file.", observed.id));
    if decl.is_none() {
        ui.out(&format!("Note: `{name}` is not in the stack file, so the next apply would destroy it; add it to the stack first."));
    }
    Ok(0)
}

struct Address {
    address: String,
    id: String,
}
