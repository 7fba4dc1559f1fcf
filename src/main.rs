//! scptrace: a transparent tap on the legacy SCP protocol. `main` only
//! dispatches: on the name we were started as, then on the subcommand.

use std::ffi::OsString;

use anyhow::Result;
use clap::Parser;

use scptrace::cmd::cli::{Cli, Command};
use scptrace::cmd::{
    as_scp, check, doctor, forced, generate, install, ls, record, replay, run, show, uninstall,
};
use scptrace::errtext;
use scptrace::escape::escape_lines;
use scptrace::tap::standin;

/// The signal dispositions we were started with, read before Rust's runtime
/// sets SIGPIPE to ignore (see `child::record_start_signals`).
#[used]
#[unsafe(link_section = ".init_array")]
static RECORD_START_SIGNALS: extern "C" fn() = scptrace::tap::child::record_start_signals;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args.first().cloned().unwrap_or_else(|| "scptrace".into());
    // Started by `scp -S` under `scptrace record`: be its ssh program.
    let result = if let Some(dir) = record::as_ssh_marker(&argv0) {
        record::run_as_ssh(dir, &args)
    } else if standin::invoked_as_scp(&argv0) {
        as_scp::run(argv0, args[1..].to_vec())
    } else {
        run_cli(parse_cli(&args))
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // Error messages quote paths and words from outside (some, from
            // install, have lines of their own).
            let text = errtext::strip_os_error(&format!("{e:#}"));
            eprintln!("scptrace: {}", escape_lines(&text));
            let setup = e.downcast_ref::<errtext::Setup>().is_some();
            std::process::exit(if setup { errtext::SETUP_EXIT } else { 1 });
        }
    }
}

/// The command line, or clap's message (exit 2) with any control character
/// in the words it quotes spelled out; help and version as clap prints them.
fn parse_cli(args: &[OsString]) -> Cli {
    match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprint!("{}", escape_lines(&e.render().to_string()));
            std::process::exit(e.exit_code());
        }
    }
}

fn run_cli(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Record(a) => record::run(a),
        Command::Show(a) => show::run(a),
        Command::Check(a) => check::run(a),
        Command::Ls(a) => ls::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Forced(a) => forced::run(a),
        Command::SftpServer(a) => scptrace::cmd::sftp_server::run(a),
        Command::Install(a) => install::run(a),
        Command::Uninstall(a) => uninstall::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Generate(a) => generate::run(a),
    }
}
