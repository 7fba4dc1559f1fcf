//! `scptrace sftp-server`: sshd's `Subsystem sftp` command. Runs the real
//! sftp-server (the one named after `--`, else the usual install paths) with
//! its stdio traced to the log directory, decoded as SFTP. sshd runs nothing
//! for a subsystem that is not configured, so this is the way to trace the
//! SFTP sessions of OpenSSH ≥ 9.0's scp on a server.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};

use super::cli::SftpServerArgs;
use crate::config::Settings;
use crate::protocol::Protocol;
use crate::tap::session::{self, Target};

pub fn run(args: SftpServerArgs) -> Result<i32> {
    let settings = Settings::load(args.trace.flags());
    let (program, rest): (PathBuf, Vec<OsString>) = match args.command.split_first() {
        Some((p, rest)) => (
            crate::paths::find_on_path(p).unwrap_or_else(|| PathBuf::from(p)),
            rest.to_vec(),
        ),
        None => match super::forced::sftp_server() {
            Some(p) => (p, Vec::new()),
            None => bail!(
                "no sftp-server found in the usual places; name it: scptrace sftp-server -- /path/to/sftp-server"
            ),
        },
    };
    let target = Target {
        argv0: program
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "sftp-server".into()),
        program,
        args: rest,
        proto: Some(Protocol::Sftp),
        shown: None,
        notes: Vec::new(),
        interactive: false,
    };
    let output = super::output(args.trace.output.clone());
    match session::run_traced(target, &settings, output)? {}
}
