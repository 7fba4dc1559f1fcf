//! The subcommands, one module each, and `cli.rs` with every clap struct.
//! Only `main.rs` calls into here; nothing below imports from here.

pub mod as_scp;
pub mod check;
pub mod cli;
pub mod doctor;
pub mod forced;
pub mod generate;
pub mod install;
pub mod ls;
pub mod manual;
pub mod record;
pub mod replay;
pub mod run;
pub mod sftp_server;
pub mod show;
pub mod uninstall;

use std::path::PathBuf;

use crate::config::{ColorWhen, Flags, Settings};
use crate::style::Styles;
use crate::tap::session::Output;

/// Where `-o` sends a transcript: `-` is stderr, live (design §1: for every
/// command), any other path a file; without `-o`, the log directory.
pub fn output(o: Option<PathBuf>) -> Output {
    match o {
        Some(p) if p.as_os_str() == "-" => Output::Stderr,
        Some(p) => Output::File(p),
        None => Output::LogDir,
    }
}

/// Fails, before anything runs, when `-o FILE` cannot be written (the
/// interactive modes, `run` and `record`: a person is there to fix it; the
/// stand-in and forced modes warn and go on untraced instead, since a
/// transfer must never fail for its transcript).
pub fn check_output(output: &Output) -> anyhow::Result<()> {
    let Output::File(path) = output else {
        return Ok(());
    };
    crate::tap::logdir::probe_named(path).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(nix::libc::ELOOP) => "it is a symbolic link, which scptrace never writes through".into(),
            _ => crate::errtext::io(&e),
        };
        anyhow::Error::new(crate::errtext::Setup(format!(
            "{}: cannot create transcript: {why}; give -o a writable path",
            path.display()
        )))
    })
}

/// `show` and `check` take `@1` for the newest transcript in the log
/// directory, `@2` for the one before, …; a file of that name is itself.
pub fn resolve_at(files: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut listing: Option<(PathBuf, Vec<PathBuf>)> = None;
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let n = f
            .to_str()
            .and_then(|s| s.strip_prefix('@'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n >= 1 && !f.exists());
        let Some(n) = n else {
            out.push(f.clone());
            continue;
        };
        if listing.is_none() {
            let dir = Settings::load(Flags::default()).log_dir.value;
            let list = crate::tap::logdir::transcripts(&dir).map_err(|e| {
                crate::escape::escape_text(&format!(
                    "{}: log directory {}: {e}: name the transcript instead",
                    f.display(),
                    dir.display()
                ))
                .to_string()
            })?;
            listing = Some((dir, list));
        }
        let Some((dir, list)) = listing.as_ref() else {
            continue;
        };
        match list.get(n - 1) {
            Some(p) => out.push(p.clone()),
            None => {
                return Err(crate::escape::escape_text(&format!(
                    "{}: the log directory {} holds {} transcript(s) (@1 is the newest)",
                    f.display(),
                    dir.display(),
                    list.len()
                ))
                .to_string());
            }
        }
    }
    Ok(out)
}

/// The styles for a command's output on stdout (`show`, `check`): `--color`
/// if given, else the environment and config files, else `auto`.
pub fn stdout_styles(color: Option<ColorWhen>) -> Styles {
    let settings = Settings::load(Flags {
        color,
        ..Flags::default()
    });
    Styles::for_stdout(settings.color.value)
}
