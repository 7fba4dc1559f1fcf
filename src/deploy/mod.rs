//! The install machinery that `install`, `uninstall` and `doctor` share: where
//! a scope's config and install record live ([`Scope`]), the edits they make
//! (`conffile` for config.toml, `keys` for authorized_keys lines, `keyfile`
//! for the file on disk), the record of those edits (`state`), the PATH sshd
//! gives a session (`sshd_path`), and `owner`: root's edits under a
//! directory another user controls are made as that user.

pub mod conffile;
pub mod keyfile;
pub mod keys;
pub mod owner;
pub mod sshd_path;
pub mod sshd_sftp;
pub mod state;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

use crate::config;
use crate::utc::Utc;

/// Where system-wide installs record their config and state.
pub const SYSTEM_DIR: &str = "/etc/scptrace";

/// A config file and the install record next to it.
#[derive(Debug, Clone)]
pub struct Scope {
    pub name: &'static str,
    pub config: PathBuf,
    pub state: PathBuf,
    /// Mode for files install creates there.
    pub mode: u32,
}

impl Scope {
    pub fn system() -> Scope {
        Scope {
            name: "system",
            config: Path::new(SYSTEM_DIR).join("config.toml"),
            state: Path::new(SYSTEM_DIR).join("installed.toml"),
            mode: 0o644,
        }
    }

    pub fn user() -> Result<Scope> {
        let config = config::user_config_path()
            .ok_or_else(|| anyhow!("no user config directory: set HOME or XDG_CONFIG_HOME"))?;
        let state = config.with_file_name("installed.toml");
        Ok(Scope {
            name: "user",
            config,
            state,
            mode: 0o600,
        })
    }

    /// The scopes `uninstall` undoes: the one asked for (`--user`,
    /// `--system`), else the user's and, for root, the system's.
    pub fn for_uninstall(user: bool, system: bool) -> Vec<Scope> {
        let root = nix::unistd::geteuid().is_root();
        let mut out = Vec::new();
        if !system && let Ok(u) = Scope::user() {
            out.push(u);
        }
        if system || (!user && root) {
            out.push(Scope::system());
        }
        out
    }

    /// Every scope (`doctor` reports each record it finds).
    pub fn all() -> Vec<Scope> {
        Scope::user().into_iter().chain([Scope::system()]).collect()
    }
}

/// This program, with every symlink resolved: what the link points to.
pub fn this_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot tell where this scptrace binary is")?;
    std::fs::canonicalize(&exe).with_context(|| format!("cannot resolve {}", exe.display()))
}

pub fn writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

pub fn now() -> String {
    Utc::now().rfc3339()
}

/// Writes `bytes` to `path` through a temp file renamed over it, so readers
/// (sshd, a running stand-in) see the old or the new file, never half of one.
/// Keeps an existing file's mode and owner; a new file gets `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let old = std::fs::metadata(path).ok();
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or(OsStr::new("file")).to_string_lossy();
    let tmp = dir.join(format!(".{name}.scptrace-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        let perm = old.as_ref().map_or(mode, |m| m.mode() & 0o7777);
        f.set_permissions(std::fs::Permissions::from_mode(perm))?;
        if let Some(m) = &old
            && (m.uid() != nix::unistd::geteuid().as_raw() || m.gid() != nix::unistd::getegid().as_raw())
        {
            // Root editing someone else's file: it stays theirs (sshd's StrictModes cares).
            std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}
