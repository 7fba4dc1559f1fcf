//! `scptrace generate man|bash|zsh|fish|elvish`: the man page and shell
//! completions, generated from the clap definition so they never drift.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::cli::{Cli, GenerateArgs, What};

pub fn run(args: GenerateArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    match args.what {
        What::Man => clap_mangen::Man::new(cmd)
            .render(&mut out)
            .context("writing the man page")?,
        What::Bash => clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "scptrace", &mut out),
        What::Zsh => clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "scptrace", &mut out),
        What::Fish => clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "scptrace", &mut out),
        What::Elvish => clap_complete::generate(clap_complete::Shell::Elvish, &mut cmd, "scptrace", &mut out),
    }
    out.flush().context("writing to stdout")?;
    Ok(0)
}
