//! scptrace: a transparent tap on the legacy SCP protocol. `main` only
//! dispatches: on the name we were started as, then on the subcommand.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

use scptrace::cli::{Cli, Command};
use scptrace::config::{Flags, Settings};
use scptrace::session::{Output, Target};
use scptrace::{check, forced, generate, install, record, replay, scp, session, show, standin};

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args.first().cloned().unwrap_or_else(|| "scptrace".into());
    // Started by `scp -S` under `scptrace record`: be its ssh program.
    let result = if let Some(dir) = record::as_ssh_marker() {
        record::run_as_ssh(dir, &args)
    } else if standin::invoked_as_scp(&argv0) {
        run_standin(argv0, args[1..].to_vec())
    } else {
        run_cli(Cli::parse_from(&args))
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("scptrace: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Started as `scp`: trace a server invocation, exec anything else.
fn run_standin(argv0: OsString, args: Vec<OsString>) -> Result<i32> {
    standin::check_hop()?;
    let settings = Settings::load(Flags::default());
    let real = standin::find_real_scp(&settings)?;
    standin::mark_hop();
    // Inside a transfer `scptrace forced` already traces: don't trace it twice.
    if std::env::var_os("SCPTRACE_ACTIVE").is_some() {
        return Err(standin::exec_real(&real.path, &argv0, &args));
    }
    let Some(opts) = scp::Options::from_scp_args(&args) else {
        return Err(standin::exec_real(&real.path, &argv0, &args));
    };
    let target = Target {
        program: real.path,
        argv0,
        args,
        scp: Some(opts),
        shown: None,
        notes: Vec::new(),
    };
    match session::run_traced(target, &settings, Output::LogDir)? {}
}

fn run_cli(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run(a) => {
            let settings = Settings::load(a.trace.flags());
            let program = PathBuf::from(&a.command[0]);
            let args = a.command[1..].to_vec();
            let scp_opts = is_scp(&program)
                .then(|| scp::Options::from_scp_args(&args))
                .flatten();
            let resolved = resolve_program(&program);
            let target = Target {
                program: resolved,
                argv0: a.command[0].clone(),
                args,
                scp: scp_opts,
                shown: None,
                notes: Vec::new(),
            };
            let output = a.trace.output.map(Output::File).unwrap_or(Output::LogDir);
            match session::run_traced(target, &settings, output)? {}
        }
        Command::Record(a) => record::run(a),
        Command::Show(a) => show::run(a),
        Command::Check(a) => check::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Forced(a) => forced::run(a),
        Command::Install(a) => install::run(a),
        Command::Uninstall(a) => install::uninstall(a),
        Command::Doctor(a) => install::doctor(a),
        Command::Generate(a) => generate::run(a),
    }
}

fn is_scp(program: &std::path::Path) -> bool {
    program.file_name().is_some_and(|n| n == "scp")
}

/// A bare name is looked up on PATH, so the invocation line shows the real path.
fn resolve_program(program: &std::path::Path) -> PathBuf {
    if program.components().count() > 1 {
        return program.to_path_buf();
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| program.to_path_buf())
}
