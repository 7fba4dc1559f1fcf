//! `scptrace run -- PROGRAM ARGS…`: trace any program's stdio the same way
//! the stand-in traces scp (the seed case: `scptrace run -o t.log -- scp -d -t /tmp`).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::cli::RunArgs;
use crate::config::Settings;
use crate::paths;
use crate::protocol::Protocol;
use crate::protocol::scp;
use crate::tap::session::{self, Target};

pub fn run(a: RunArgs) -> Result<i32> {
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
        proto: scp_opts.map(Protocol::Scp),
        shown: None,
        notes: Vec::new(),
        interactive: true,
    };
    let output = super::output(a.trace.output);
    super::check_output(&output)?;
    match session::run_traced(target, &settings, output)? {}
}

fn is_scp(program: &Path) -> bool {
    program.file_name().is_some_and(|n| n == "scp")
}

/// A bare name is looked up on PATH, so the invocation line shows the real path.
fn resolve_program(program: &Path) -> PathBuf {
    if program.components().count() > 1 {
        return program.to_path_buf();
    }
    paths::find_on_path(program.as_os_str()).unwrap_or_else(|| program.to_path_buf())
}
