//! Running as `scp`: finding the real scp, and telling a server invocation
//! (traced) from a client one (exec'd untouched).

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::config::Settings;
use crate::paths;

/// Whether `argv0`'s file name is `scp`: then we are the stand-in.
pub fn invoked_as_scp(argv0: &OsStr) -> bool {
    Path::new(argv0).file_name() == Some(OsStr::new("scp"))
}

/// How the real scp was found (for `doctor` and the transcript header).
#[derive(Debug, Clone)]
pub struct RealScp {
    pub path: PathBuf,
    pub how: String,
}

/// Finds the real scp (design §2): the configured one, else the first `scp`
/// on PATH that is not this program, else /usr/bin/scp. One that turns out to
/// be scptrace itself is an error, never a fork loop. In an ssh session it
/// must also pass [`paths::safe_path`] (design §1), and the path returned is
/// the resolved one that was checked.
pub fn find_real_scp(settings: &Settings) -> Result<RealScp> {
    find_real_scp_in(settings, std::env::var_os("PATH").as_deref())
}

pub fn find_real_scp_in(settings: &Settings, path_var: Option<&OsStr>) -> Result<RealScp> {
    let found = find_unchecked(settings, path_var)?;
    let Some(var) = settings.env_policy.ssh_session else {
        return Ok(found);
    };
    let owners: Vec<u32> = paths::own_owner().into_iter().collect();
    match paths::safe_path(&found.path, &owners) {
        Ok(path) => Ok(RealScp { path, how: found.how }),
        Err(why) => bail!(
            "refusing to run the real scp {} ({}) in an ssh session ({var} is set): {why}; \
             it must be owned by root or by the stand-in's owner, in directories only they can write",
            found.path.display(),
            found.how
        ),
    }
}

fn find_unchecked(settings: &Settings, path_var: Option<&OsStr>) -> Result<RealScp> {
    let is_me = |p: &Path| paths::is_self(p);
    if let Some(p) = &settings.real_scp.value {
        if is_me(p) {
            bail!(
                "the real scp configured ({}, from {}) is scptrace itself; point it at the real scp, e.g. /usr/bin/scp",
                p.display(),
                settings.real_scp.origin
            );
        }
        return Ok(RealScp {
            path: p.clone(),
            how: format!("from {}", settings.real_scp.origin),
        });
    }
    if let Some(cand) = paths::all_on_path(OsStr::new("scp"), path_var).find(|c| !is_me(c)) {
        return Ok(RealScp {
            path: cand,
            how: "first scp on PATH that is not scptrace".into(),
        });
    }
    let fallback = PathBuf::from("/usr/bin/scp");
    if is_me(&fallback) {
        bail!("every scp on PATH and /usr/bin/scp is scptrace itself; set SCPTRACE_REAL_SCP to the real scp");
    }
    if !paths::is_executable_file(&fallback) {
        bail!(
            "no real scp found: no scp on PATH other than scptrace, and no /usr/bin/scp; set SCPTRACE_REAL_SCP"
        );
    }
    Ok(RealScp {
        path: fallback,
        how: "fallback /usr/bin/scp".into(),
    })
}

/// Marks the real scp we start (or exec) with how and by whom:
/// `exec:PID` when we exec it (it keeps our pid), `spawn:PID` when we spawn
/// it (its parent is PID). A stand-in whose own pid matches an `exec:` mark,
/// or whose parent's matches a `spawn:` mark, was started by scptrace as "the
/// real scp": the resolution loops, e.g. through a copy of scptrace on PATH
/// that is not the same file. Anything else the real scp starts in turn
/// passes: a client's `-S` program that runs `scp -t` locally is the
/// client's child, whose parent is the exec'd pid (a bare pid, as this
/// variable used to hold, matched either way: a false loop, issue 10).
pub const HOP_VAR: &str = "SCPTRACE_HOP";

/// How the real scp is started, for [`mark_hop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// We exec it: it is this very process.
    Exec,
    /// We spawn it: it is our child.
    Spawn,
}

/// How many stand-ins are above this one in the process tree (through the
/// environment). Real chains are short (a client exec'd by a stand-in whose
/// `-S` program starts a server stand-in: 2); a resolution loop through
/// wrappers the pid check cannot see grows without end.
pub const DEPTH_VAR: &str = "SCPTRACE_DEPTH";

/// More nested stand-ins than this is a loop.
const MAX_DEPTH: u32 = 8;

/// Fails when this stand-in was started by scptrace as the real scp.
pub fn check_hop() -> Result<()> {
    let depth = std::env::var(DEPTH_VAR)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    if depth >= MAX_DEPTH {
        bail!(
            "{depth} scptrace stand-ins are running inside each other: the real scp resolves to scptrace again (through a wrapper?); set SCPTRACE_REAL_SCP to the real scp, e.g. /usr/bin/scp"
        );
    }
    let Some(v) = std::env::var_os(HOP_VAR) else {
        return Ok(());
    };
    let v = v.to_string_lossy();
    let looped = match v.split_once(':') {
        Some(("exec", pid)) => pid.parse::<i32>().ok() == Some(nix::unistd::getpid().as_raw()),
        Some(("spawn", pid)) => pid.parse::<i32>().ok() == Some(nix::unistd::getppid().as_raw()),
        _ => false,
    };
    if looped {
        bail!(
            "the real scp resolved to scptrace again (another copy of it is on PATH?); set SCPTRACE_REAL_SCP to the real scp, e.g. /usr/bin/scp"
        );
    }
    Ok(())
}

/// Sets [`HOP_VAR`] for the real scp we start next, `how` we start it
/// (single-threaded: called before any thread or child exists).
pub fn mark_hop(how: Hop) {
    let kind = match how {
        Hop::Exec => "exec",
        Hop::Spawn => "spawn",
    };
    let pid = format!("{kind}:{}", nix::unistd::getpid().as_raw());
    let depth = std::env::var(DEPTH_VAR)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    // SAFETY: the stand-in is single-threaded at this point.
    unsafe {
        std::env::set_var(HOP_VAR, pid);
        std::env::set_var(DEPTH_VAR, (depth + 1).to_string());
    }
}

/// Turns our own `spawn:` mark into an `exec:` one: the stand-in marked the
/// real scp as spawned, and the session then exec'd it after all (tracing
/// could not be set up), so the guard must compare with our pid.
pub fn mark_exec_if_spawn() {
    let me = nix::unistd::getpid().as_raw();
    if std::env::var(HOP_VAR).ok() == Some(format!("spawn:{me}")) {
        // SAFETY: single-threaded: no thread has been started yet.
        unsafe { std::env::set_var(HOP_VAR, format!("exec:{me}")) };
    }
}

/// Replaces this process with the real scp, same argv: for client invocations,
/// which must keep the terminal and the progress meter to themselves.
pub fn exec_real(real: &Path, argv0: &OsStr, args: &[OsString]) -> anyhow::Error {
    let mut cmd = std::process::Command::new(real);
    let err = crate::tap::child::with_start_signals(&mut cmd)
        .arg0(argv0)
        .args(args)
        .exec();
    anyhow::anyhow!(
        "cannot run the real scp {}: {}",
        real.display(),
        crate::errtext::io(&err)
    )
}
