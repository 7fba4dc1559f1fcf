//! The PATH that sshd gives a non-interactive session of this user, as well
//! as it can be known without logging in (`ssh HOST scptrace doctor` shows the
//! real one).
//!
//! sshd builds it in this order, a later source replacing an earlier one
//! (OpenSSH session.c, `do_setup_env`):
//! 1. the compiled-in default: `_PATH_STDPATH` (`--with-default-path`), or for
//!    root `SUPERUSER_PATH` (`--with-superuser-path`). `sshd -T` does not print
//!    it, but both are plain strings in the sshd binary; on Debian they are
//!    `/usr/local/bin:/usr/bin:/bin:/usr/games` and
//!    `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
//! 2. `~/.ssh/environment`, only with `PermitUserEnvironment yes`;
//! 3. the PAM environment (`pam_env`: `/etc/environment` on Debian), with `UsePAM yes`;
//! 4. `SetEnv PATH=…` in sshd_config (Match blocks included).
//!
//! The user's shell may still change it (Debian's bash reads `~/.bashrc` for
//! ssh sessions): that part only a real session shows.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::paths;
use std::process::{Command, Stdio};

/// A PATH and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionPath {
    pub value: String,
    pub source: String,
}

/// Debian's compiled-in defaults, used when the sshd binary cannot be read.
const DEBIAN_USER: &str = "/usr/local/bin:/usr/bin:/bin:/usr/games";
const DEBIAN_ROOT: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The sshd binary: on PATH, else the usual places.
fn sshd_binary() -> Option<PathBuf> {
    let from_path = paths::find_on_path(OsStr::new("sshd"));
    from_path.or_else(|| {
        ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/usr/bin/sshd"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })
}

/// Whether `s` looks like a PATH: two or more absolute directories, colon-separated,
/// one of them a `bin`.
fn looks_like_path(s: &str) -> bool {
    let dirs: Vec<&str> = s.split(':').collect();
    dirs.len() >= 2
        && dirs.iter().all(|d| {
            d.starts_with('/') && d.len() > 1 && d.bytes().all(|b| b.is_ascii_graphic() && b != b'%')
        })
        && dirs.iter().any(|d| d.ends_with("/bin"))
}

/// The PATH-like strings in a binary, in order (as `strings` would show them).
pub fn paths_in_binary(bytes: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for run in bytes.split(|&b| b == 0) {
        if run.len() < 8 || run.len() > 512 || !run.starts_with(b"/") {
            continue;
        }
        if let Ok(s) = std::str::from_utf8(run)
            && looks_like_path(s)
            && !out.iter().any(|o| o == s)
        {
            out.push(s.to_string());
        }
    }
    out
}

/// Picks the default for root (the one with the most `sbin` directories) or
/// for other users (the fewest) from the candidates found in sshd.
pub fn pick_default(candidates: &[String], root: bool) -> Option<String> {
    let sbins = |s: &String| s.split(':').filter(|d| d.ends_with("/sbin")).count();
    if root {
        candidates.iter().max_by_key(|s| sbins(s)).cloned()
    } else {
        candidates.iter().min_by_key(|s| sbins(s)).cloned()
    }
}

/// `sshd -T` for this user, as key/value lines; `None` when it cannot run
/// (not root, no host keys readable, no sshd).
fn sshd_t(sshd: &Path, user: &str) -> Option<Vec<(String, String)>> {
    let specs = [
        format!("user={user}"),
        format!("user={user},host=localhost,addr=127.0.0.1"),
    ];
    for spec in specs {
        let out = Command::new(sshd)
            .args(["-T", "-C", &spec])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            return Some(
                text.lines()
                    .filter_map(|l| l.split_once(' '))
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                    .collect(),
            );
        }
    }
    None
}

/// A `PATH=…` assignment in an environment file (`/etc/environment`,
/// `~/.ssh/environment`): `PATH=value`, quotes optional, `export ` tolerated.
pub fn path_in_env_file(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("export ").unwrap_or(l).trim_start();
            l.strip_prefix("PATH=")
        })
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
        .rfind(|v| !v.is_empty())
}

/// Guesses the PATH of a non-interactive ssh session of `user` (`root` when uid 0).
pub fn guess(user: &str, root: bool, home: Option<&Path>) -> SessionPath {
    let sshd = sshd_binary();
    let (mut value, mut source) = match sshd.as_ref().and_then(|p| std::fs::read(p).ok()) {
        Some(bytes) => match pick_default(&paths_in_binary(&bytes), root) {
            Some(v) => (
                v,
                format!(
                    "sshd's compiled-in default for {} (found in {})",
                    if root { "root" } else { "users" },
                    sshd.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
                ),
            ),
            None => fallback(root),
        },
        None => fallback(root),
    };
    let config = sshd.as_ref().and_then(|p| sshd_t(p, user));
    let setting = |k: &str| {
        config
            .as_ref()
            .and_then(|c| c.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()))
    };
    if setting("permituserenvironment").is_some_and(|v| v != "no")
        && let Some(h) = home
        && let Some(p) = std::fs::read_to_string(h.join(".ssh/environment"))
            .ok()
            .and_then(|t| path_in_env_file(&t))
    {
        value = p;
        source = "~/.ssh/environment (PermitUserEnvironment)".into();
    }
    // Without `sshd -T` (not root), assume the usual UsePAM yes.
    if setting("usepam").is_none_or(|v| v == "yes")
        && let Some(p) = std::fs::read_to_string("/etc/environment")
            .ok()
            .and_then(|t| path_in_env_file(&t))
    {
        value = p;
        source = "/etc/environment (pam_env)".into();
    }
    if let Some(c) = &config
        && let Some(p) = c
            .iter()
            .filter(|(k, _)| k == "setenv")
            .filter_map(|(_, v)| v.strip_prefix("PATH="))
            .next()
    {
        value = p.trim_matches('"').to_string();
        source = "SetEnv in sshd_config (sshd -T)".into();
    }
    SessionPath { value, source }
}

fn fallback(root: bool) -> (String, String) {
    let v = if root { DEBIAN_ROOT } else { DEBIAN_USER };
    (
        v.to_string(),
        "Debian's sshd default (sshd binary not readable)".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_debians_two_defaults_in_a_binary() {
        let bin = b"\x7fELF\0junk\0/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\0%s/%s\0/usr/local/bin:/usr/bin:/bin:/usr/games\0/etc/ssh/sshd_config\0/a:/b%s\0";
        let found = paths_in_binary(bin);
        assert_eq!(found, vec![DEBIAN_ROOT.to_string(), DEBIAN_USER.to_string()]);
        assert_eq!(pick_default(&found, true).as_deref(), Some(DEBIAN_ROOT));
        assert_eq!(pick_default(&found, false).as_deref(), Some(DEBIAN_USER));
    }

    #[test]
    fn environment_files() {
        let t = "LANG=C\n# PATH=/no\nPATH=\"/opt/bin:/usr/bin\"\n";
        assert_eq!(path_in_env_file(t).as_deref(), Some("/opt/bin:/usr/bin"));
        assert_eq!(path_in_env_file("export PATH=/x:/y").as_deref(), Some("/x:/y"));
        assert_eq!(path_in_env_file("LANG=C"), None);
    }
}
