//! `plinth completions SHELL` and `plinth man`: shell completions and man pages generated
//! from the same argument definitions the parser uses, so they never fall behind it.

use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, CliResult, Ui};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write plinth.1 and a page per command (plinth-plan.1, …) into this folder, instead of
    /// printing plinth.1.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs, ui: &Ui) -> CliResult {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "plinth", &mut script);
    ui.out_raw(&String::from_utf8_lossy(&script));
    Ok(0)
}

pub fn man(args: ManArgs, ui: &Ui) -> CliResult {
    let command = Cli::command();
    match args.out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page)?;
            ui.out_raw(&String::from_utf8_lossy(&page));
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(command, &dir)?;
            ui.err(&format!("man pages written to {}", dir.display()));
        }
    }
    Ok(0)
}
