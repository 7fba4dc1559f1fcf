//! Started as `scp` (a link or copy named `scp`): trace a legacy scp server
//! invocation (`-t`/`-f`), and exec the real scp untouched for anything else,
//! so a client keeps the terminal and its progress meter.

use std::ffi::OsString;

use anyhow::Result;

use crate::config::{Flags, Settings};
use crate::protocol::Protocol;
use crate::protocol::scp;
use crate::tap::session::{self, Output, Target};
use crate::tap::standin::{self, Hop};

/// Runs the stand-in with scp's arguments (without `argv[0]`).
pub fn run(argv0: OsString, args: Vec<OsString>) -> Result<i32> {
    standin::check_hop()?;
    let settings = Settings::load(Flags::default());
    let real = standin::find_real_scp(&settings)?;
    // Inside a transfer `scptrace forced` already traces: don't trace it twice.
    let opts = match scp::Options::from_scp_args(&args) {
        Some(opts) if std::env::var_os("SCPTRACE_ACTIVE").is_none() => opts,
        _ => {
            standin::mark_hop(Hop::Exec);
            return Err(standin::exec_real(&real.path, &argv0, &args));
        }
    };
    standin::mark_hop(Hop::Spawn);
    let target = Target {
        program: real.path,
        argv0,
        args,
        proto: Some(Protocol::Scp(opts)),
        shown: None,
        notes: Vec::new(),
        interactive: false,
    };
    match session::run_traced(target, &settings, Output::LogDir)? {}
}
