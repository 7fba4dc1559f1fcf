//! What sshd does with an SFTP session here (for `doctor`): the `Subsystem
//! sftp` command it runs, any `ForceCommand`, and whether either is scptrace.
//! `sshd -T` (which needs root: it reads the host keys) evaluates Match
//! blocks for this user; without it the config file is read best-effort:
//! top-level lines only, `Include` not followed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The usual sshd_config.
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";

/// The SFTP part of doctor's report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SftpSetup {
    /// The `Subsystem sftp` command, None when there is none.
    pub subsystem: Option<String>,
    /// The `ForceCommand`, None when there is none.
    pub force_command: Option<String>,
    /// Where those came from: `sshd -T …` or the file, parsed best-effort.
    pub source: String,
    /// How SFTP sessions would be traced: `sftp-server` (the Subsystem
    /// wrapper) or `forced`; None: untraced.
    pub traced_by: Option<&'static str>,
}

/// The keyword's value on a config line (`Keyword value`, `Keyword=value`,
/// case-insensitive keyword), or None.
fn value<'a>(line: &'a str, keyword: &str) -> Option<&'a str> {
    let line = line.trim();
    let end = line.find(|c: char| c.is_whitespace() || c == '=')?;
    if !line[..end].eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = line[end..].trim_start();
    Some(rest.strip_prefix('=').unwrap_or(rest).trim())
}

/// From an sshd_config text, the top-level `Subsystem sftp` command and
/// `ForceCommand` (sshd takes the first of each), ignoring `Match` blocks.
/// Also reads `sshd -T` output, which has the same shape.
pub fn parse(text: &str) -> (Option<String>, Option<String>) {
    let (mut subsystem, mut force) = (None, None);
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') {
            continue;
        }
        if value(l, "match").is_some() {
            break;
        }
        if subsystem.is_none()
            && let Some(v) = value(l, "subsystem")
            && let Some(cmd) = v
                .strip_prefix("sftp")
                .filter(|c| c.starts_with(char::is_whitespace))
        {
            subsystem = Some(cmd.trim().to_string());
        }
        if force.is_none()
            && let Some(v) = value(l, "forcecommand")
            && v != "none"
        {
            force = Some(v.to_string());
        }
    }
    (subsystem, force)
}

/// Whether a command line runs scptrace with `sub` (`sftp-server`, `forced`)
/// as its first argument: its program is `exe`, or is called scptrace.
pub fn runs_scptrace(command: &str, sub: &str, exe: Option<&Path>) -> bool {
    let mut words = command.split_whitespace();
    let (Some(program), Some(first)) = (words.next(), words.next()) else {
        return false;
    };
    let p = Path::new(program);
    let is_us =
        exe.is_some_and(|e| crate::paths::same_file(p, e)) || p.file_name().is_some_and(|n| n == "scptrace");
    is_us && first == sub
}

/// Works out the setup from `config` for `user`; `forced_now`: this session
/// came through `scptrace forced` (a key's `command=` traces SFTP too).
pub fn inspect(config: &Path, user: &str, exe: Option<&Path>, forced_now: bool) -> SftpSetup {
    let sshd = crate::paths::find_on_path(std::ffi::OsStr::new("sshd")).or_else(|| {
        ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    });
    let spec = format!("user={user},host=localhost,addr=127.0.0.1");
    let from_t = sshd.and_then(|s| {
        let out = Command::new(s)
            .arg("-T")
            .arg("-f")
            .arg(config)
            .args(["-C", &spec])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    let ((subsystem, force_command), source) = match from_t {
        Some(t) => (parse(&t), format!("sshd -T -f {} -C {spec}", config.display())),
        None => match std::fs::read_to_string(config) {
            Ok(t) => (
                parse(&t),
                format!(
                    "{}, read best-effort (sshd -T failed: it needs root, and a config it accepts): Match blocks and Include not followed",
                    config.display()
                ),
            ),
            Err(e) => (
                (None, None),
                format!("{} unreadable ({e}) and sshd -T failed", config.display()),
            ),
        },
    };
    let traced_by = if subsystem.is_none() {
        None
    } else if subsystem
        .as_deref()
        .is_some_and(|s| runs_scptrace(s, "sftp-server", exe))
    {
        Some("sftp-server")
    } else if forced_now
        || force_command
            .as_deref()
            .is_some_and(|f| runs_scptrace(f, "forced", exe))
    {
        Some("forced")
    } else {
        None
    };
    SftpSetup {
        subsystem,
        force_command,
        source,
        traced_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_top_level_lines_as_sshd_does() {
        let text = "# Subsystem sftp /commented\nPort 22\nsubsystem   sftp  /usr/lib/openssh/sftp-server -l INFO\n\
                    Subsystem sftp /second/ignored\nForceCommand=/usr/local/bin/scptrace forced\n\
                    Match User bob\n  Subsystem sftp internal-sftp\n";
        assert_eq!(
            parse(text),
            (
                Some("/usr/lib/openssh/sftp-server -l INFO".into()),
                Some("/usr/local/bin/scptrace forced".into())
            )
        );
        assert_eq!(parse("Subsystem sftpx /x\nSubsystemX sftp /y\n"), (None, None));
        // sshd -T's form.
        assert_eq!(
            parse("forcecommand none\nsubsystem sftp internal-sftp\n"),
            (Some("internal-sftp".into()), None)
        );
    }

    #[test]
    fn knows_scptrace_by_name_or_by_file() {
        assert!(runs_scptrace(
            "/usr/local/bin/scptrace sftp-server -- /x",
            "sftp-server",
            None
        ));
        assert!(!runs_scptrace(
            "/usr/local/bin/scptrace forced",
            "sftp-server",
            None
        ));
        assert!(!runs_scptrace(
            "/usr/lib/openssh/sftp-server",
            "sftp-server",
            None
        ));
        assert!(!runs_scptrace("internal-sftp", "forced", None));
    }
}
