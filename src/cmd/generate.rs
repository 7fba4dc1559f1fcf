//! `scptrace generate man|bash|zsh|fish|elvish`: the man pages and shell
//! completions, generated from the clap definition so they never drift.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::cli::{Cli, GenerateArgs, What};
use super::manual;

pub fn run(args: GenerateArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    match args.what {
        What::Man => {
            let pages = manual::pages().context("rendering the man pages")?;
            match &args.dir {
                None => out
                    .write_all(pages[0].text.as_bytes())
                    .context("writing to stdout")?,
                Some(dir) => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    for p in &pages {
                        let path = dir.join(&p.file_name);
                        std::fs::write(&path, &p.text)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                    }
                }
            }
        }
        What::Bash => clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "scptrace", &mut out),
        What::Zsh => clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "scptrace", &mut out),
        What::Fish => clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "scptrace", &mut out),
        What::Elvish => clap_complete::generate(clap_complete::Shell::Elvish, &mut cmd, "scptrace", &mut out),
    }
    out.flush().context("writing to stdout")?;
    Ok(0)
}
