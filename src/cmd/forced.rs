//! `scptrace forced`: run as an sshd `ForceCommand` or an authorized_keys
//! `command="…"`. A legacy scp server command, or the SFTP subsystem's
//! configured command (a path to sftp-server, or `internal-sftp`), is run the
//! way sshd would have run it, with its stdio traced; anything else (a login,
//! another command, another subsystem) runs exactly as sshd would have run
//! it, untraced.
//!
//! What sshd would have done (OpenSSH session.c, `do_child`): with no command,
//! exec the user's shell as a login shell (`argv[0]` `-bash`); with a command,
//! `shell -c COMMAND` with `argv[0]` the shell's file name. A subsystem request
//! arrives as its configured command (`/usr/lib/openssh/sftp-server`), or as
//! `internal-sftp`, which sshd would have run in-process: here it becomes the
//! sftp-server binary with the same arguments.
//!
//! Environment: every child gets `SCPTRACE_FORCED=1` (so `scptrace doctor`
//! run through here can say so), and the traced one also `SCPTRACE_ACTIVE=1`,
//! which makes a stand-in `scp` on the PATH run the real scp directly instead
//! of tracing the same transfer a second time.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};

use super::cli::ForcedArgs;
use crate::config::Settings;
use crate::protocol::Protocol;
use crate::protocol::scp;
use crate::shell::{self, simple_words};
use crate::tap::session::{self, Target};

/// What the original command is.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// No command: an interactive login (or `ssh -T` without a command).
    Login,
    /// A legacy scp server.
    Scp(scp::Options),
    /// `internal-sftp [args]`: sshd's in-process sftp server.
    InternalSftp(Vec<OsString>),
    /// A path to an sftp-server: the configured `Subsystem sftp` command.
    SftpServer,
    /// Anything else.
    Other,
}

/// Whether `w` is a shell variable assignment (`NAME=value`).
fn is_assignment(w: &[u8]) -> bool {
    match w.iter().position(|&b| b == b'=') {
        Some(n) if n > 0 => {
            (w[0].is_ascii_alphabetic() || w[0] == b'_')
                && w[..n].iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
        }
        _ => false,
    }
}

fn classify(original: Option<&OsStr>) -> Request {
    let Some(cmd) = original else {
        return Request::Login;
    };
    let Some(words) = simple_words(cmd.as_bytes()) else {
        return Request::Other;
    };
    let mut words = words.into_iter().skip_while(|w| is_assignment(w));
    let Some(first) = words.next() else {
        return Request::Other;
    };
    let args: Vec<OsString> = words.map(OsString::from_vec).collect();
    if first == b"internal-sftp" {
        return Request::InternalSftp(args);
    }
    if Path::new(OsStr::from_bytes(&first)).file_name() == Some(OsStr::new("sftp-server")) {
        return Request::SftpServer;
    }
    if Path::new(OsStr::from_bytes(&first)).file_name() == Some(OsStr::new("scp"))
        && let Some(opts) = scp::Options::from_scp_args(&args)
    {
        return Request::Scp(opts);
    }
    Request::Other
}

/// The user's shell, as sshd picks it: `$SHELL` (sshd sets it to the passwd
/// shell), else the passwd entry, else /bin/sh. In an ssh session the
/// environment names no program (design §1): there, as sshd itself does,
/// the passwd entry, unless the system file allows the environment.
fn user_shell() -> PathBuf {
    if let Ok(Some(s)) = crate::config::EnvPolicy::current().program_var("SHELL") {
        return PathBuf::from(s);
    }
    crate::passwd::lookup(nix::unistd::getuid().as_raw())
        .map(|u| u.shell)
        .filter(|s| !s.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("/bin/sh"))
}

/// The shell's file name: its `argv[0]` for `-c`, as sshd gives it.
fn shell_name(shell: &Path) -> OsString {
    shell
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_else(|| shell.as_os_str().to_os_string())
}

/// The sftp-server binary, for `internal-sftp`.
pub fn sftp_server() -> Option<PathBuf> {
    [
        "/usr/lib/openssh/sftp-server",
        "/usr/libexec/openssh/sftp-server",
        "/usr/libexec/sftp-server",
        "/usr/lib/ssh/sftp-server",
        "/usr/lib/sftp-server",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn exec(cmd: &mut std::process::Command, what: &Path) -> anyhow::Error {
    let err = crate::tap::child::with_start_signals(cmd)
        .env("SCPTRACE_FORCED", "1")
        .exec();
    anyhow!("cannot run {}: {}", what.display(), crate::errtext::io(&err))
}

pub fn run(args: ForcedArgs) -> Result<i32> {
    let shell = user_shell();
    let original = std::env::var_os("SSH_ORIGINAL_COMMAND");
    match classify(original.as_deref()) {
        Request::Login => {
            let mut argv0 = OsString::from("-");
            argv0.push(shell_name(&shell));
            Err(exec(std::process::Command::new(&shell).arg0(argv0), &shell))
        }
        Request::InternalSftp(sftp_args) => match sftp_server() {
            // sshd would have run its in-process server: the sftp-server
            // binary is the same code, traced.
            Some(server) => {
                let settings = Settings::load(args.trace.flags());
                // With control characters, the invocation line shows what
                // runs instead: the sftp-server binary and its arguments.
                let shown = original
                    .as_deref()
                    .and_then(|o| shell::printable(o.as_bytes()))
                    .map(str::to_string);
                let target = Target {
                    argv0: "sftp-server".into(),
                    program: server,
                    args: sftp_args,
                    proto: Some(Protocol::Sftp),
                    shown,
                    notes: vec!["internal-sftp, run as the sftp-server binary".into()],
                    interactive: false,
                };
                forced_env();
                let output = super::output(args.trace.output.clone());
                match session::run_traced(target, &settings, output)? {}
            }
            // Let the shell fail the way sshd's users would see it fail elsewhere.
            None => Err(exec(
                &mut shell_command(&shell, original.unwrap_or_default()),
                &shell,
            )),
        },
        // The configured Subsystem command, through the user's shell as sshd
        // runs it (so shell start-up output shows, as it would corrupt the
        // stream without scptrace).
        Request::SftpServer => run_through_shell(&args, &shell, original, Protocol::Sftp),
        Request::Other => Err(exec(
            &mut shell_command(&shell, original.unwrap_or_default()),
            &shell,
        )),
        Request::Scp(opts) => run_through_shell(&args, &shell, original, Protocol::Scp(opts)),
    }
}

/// Runs the original command through the user's shell, as sshd would have,
/// traced as `proto`. Returns only if it could not be started.
fn run_through_shell(
    args: &ForcedArgs,
    shell: &Path,
    original: Option<OsString>,
    proto: Protocol,
) -> Result<i32> {
    let cmd = original.unwrap_or_default();
    let settings = Settings::load(args.trace.flags());
    forced_env();
    let target = Target {
        program: shell.to_path_buf(),
        argv0: shell_name(shell),
        args: vec!["-c".into(), cmd.clone()],
        proto: Some(proto),
        shown: Some(shell::command_line(shell.as_os_str().as_bytes(), cmd.as_bytes())),
        notes: vec!["run through the user's shell, as sshd would have run it".into()],
        interactive: false,
    };
    let output = super::output(args.trace.output.clone());
    match session::run_traced(target, &settings, output)? {}
}

/// Marks the traced child's environment (see the module docs).
fn forced_env() {
    // SAFETY: single-threaded here (no thread has been started yet), so
    // nothing reads the environment concurrently; the child inherits it.
    unsafe {
        std::env::set_var("SCPTRACE_FORCED", "1");
        std::env::set_var("SCPTRACE_ACTIVE", "1");
    }
}

fn shell_command(shell: &Path, cmd: OsString) -> std::process::Command {
    let mut c = std::process::Command::new(shell);
    c.arg0(shell_name(shell)).arg("-c").arg(cmd);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Option<Vec<String>> {
        simple_words(s.as_bytes()).map(|w| w.into_iter().map(|w| String::from_utf8(w).unwrap()).collect())
    }

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(words("scp -t /tmp").unwrap(), ["scp", "-t", "/tmp"]);
        assert_eq!(
            words("  scp  -d -t  'a b'\\ c ").unwrap(),
            ["scp", "-d", "-t", "a b c"]
        );
        assert_eq!(
            words(r#"scp -f "x \"y\" $z" ''"#).unwrap(),
            ["scp", "-f", r#"x "y" $z"#, ""]
        );
        assert_eq!(words("scp -f ~/a*.txt").unwrap(), ["scp", "-f", "~/a*.txt"]);
        for bad in [
            "scp -t x; rm y",
            "scp -t x | cat",
            "scp -t $(pwd)",
            "scp -t `pwd`",
            "scp -t 'x",
            "a\nb",
            "scp -t x > y",
        ] {
            assert_eq!(words(bad), None, "{bad}");
        }
    }

    #[test]
    fn classifies_requests() {
        let c = |s: &str| classify(Some(OsStr::new(s)));
        assert_eq!(classify(None), Request::Login);
        assert!(matches!(c("scp -t /tmp"), Request::Scp(o) if o.role == scp::Role::Sink));
        assert!(matches!(c("/usr/bin/scp -r -f 'my dir'"), Request::Scp(o) if o.role == scp::Role::Source));
        assert!(matches!(c("LC_ALL=C scp -t ."), Request::Scp(_)));
        assert_eq!(c("scp a b"), Request::Other);
        assert_eq!(c("echo hi"), Request::Other);
        assert_eq!(c("scp -t x; echo"), Request::Other);
        assert_eq!(c(""), Request::Other);
        assert_eq!(c("/usr/lib/openssh/sftp-server"), Request::SftpServer);
        assert_eq!(c("/usr/libexec/sftp-server -l INFO"), Request::SftpServer);
        assert_eq!(
            c("internal-sftp -l INFO"),
            Request::InternalSftp(vec!["-l".into(), "INFO".into()])
        );
        assert_eq!(c("rsync --server -e.LsfxC . dst"), Request::Other);
    }
}
