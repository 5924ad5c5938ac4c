//! `plinth`: parse arguments, run the command, map the outcome to an exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // Diagnostics start with `file:line:column`; wrapping would split that line apart.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    let ui = cli::Ui::new(&args.global);
    cli::init_logging(&args.global, &ui);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // The command runs as a task on the runtime's workers, not on this thread: the S3 state
    // store blocks in place (a journal write is a barrier), and a nested wait on the thread
    // that drives `block_on` can take the wake-up meant for the command itself, which then
    // waits forever (seen with a roster of 100 students on S3 state).
    let code = runtime.block_on(async { tokio::spawn(cli::run(args, ui)).await });
    match code {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: the command stopped unexpectedly: {e}");
            ExitCode::from(1)
        }
    }
}
