//! `effbench completions SHELL` and `effbench man`: shell completion scripts and a man page,
//! both generated from the same clap definitions as the command line itself (clap_complete,
//! clap_mangen), so they never fall behind it.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

/// Print a shell completion script.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench completions bash > ~/.local/share/bash-completion/completions/effbench\n  \
effbench completions zsh > ~/.zfunc/_effbench\n  \
effbench completions fish > ~/.config/fish/completions/effbench.fish"
)]
pub struct Args {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print the man page (roff), or write one page per command into a directory.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench man > effbench.1 && man ./effbench.1\n  \
effbench man --out /usr/local/share/man/man1"
)]
pub struct ManArgs {
    /// Write effbench.1 and effbench-COMMAND.1 for every command into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn completions(args: Args, mut cmd: clap::Command) -> Result<ExitCode> {
    let name = cmd.get_name().to_string();
    clap_complete::generate(args.shell, &mut cmd, name, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: ManArgs, cmd: clap::Command) -> Result<ExitCode> {
    match args.out {
        None => {
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create '{}'", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("cannot write man pages into '{}'", dir.display()))?;
            eprintln!("man pages written to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
