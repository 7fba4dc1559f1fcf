//! The subcommands, one module each, and `cli.rs` with every clap struct.
//! Only `main.rs` calls into here; nothing below imports from here.

pub mod as_scp;
pub mod check;
pub mod cli;
pub mod doctor;
pub mod forced;
pub mod generate;
pub mod install;
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

/// The styles for a command's output on stdout (`show`, `check`): `--color`
/// if given, else the environment and config files, else `auto`.
pub fn stdout_styles(color: Option<ColorWhen>) -> Styles {
    let settings = Settings::load(Flags {
        color,
        ..Flags::default()
    });
    Styles::for_stdout(settings.color.value)
}
