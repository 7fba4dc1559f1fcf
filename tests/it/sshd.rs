//! A private OpenSSH sshd on a loopback port, and every scp client we test
//! against it (issue 4): the harness of the end-to-end tests in `e2e.rs`.
//!
//! Each [`Sshd`] lives in a temporary directory of its own: host key, client
//! key, `authorized_keys`, `sshd_config`, sshd's log, the clients' `HOME`
//! (with a `known_hosts` naming the host key, so no client ever prompts or
//! prints a "Permanently added" warning), the directory that comes first on
//! the PATH sshd gives sessions (`bin/`, where a test puts the `scp`
//! stand-in) and the stand-in's log directory (`logs/`). Nothing outside it is
//! read or written, except `/run/sshd` (sshd's privilege separation
//! directory, created if missing) and the clients' own state, which lands in
//! that `HOME`. The system's sshd is neither used nor touched.
//!
//! A missing dependency is a [`Skip`], reported by [`skip_or_fail`]; under
//! `SCPTRACE_REQUIRE_E2E=1` a skip fails the test. `scripts/test-deps.sh`
//! installs everything.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util::{self, DEADLINE, Finished, Input};

/// Why an end-to-end test cannot run here: a one-line reason.
#[derive(Debug, Clone)]
pub struct Skip(pub String);

impl Skip {
    fn new(reason: impl Into<String>) -> Skip {
        Skip(reason.into())
    }
}

/// Reports a skipped test: prints `SKIP: reason` (and the test passes), or,
/// when `SCPTRACE_REQUIRE_E2E=1` (CI), fails it.
pub fn skip_or_fail(reason: &Skip) {
    if std::env::var_os("SCPTRACE_REQUIRE_E2E").is_some_and(|v| v == "1") {
        panic!("SCPTRACE_REQUIRE_E2E=1 but: {}", reason.0);
    }
    eprintln!("SKIP: {}", reason.0);
}

/// Unwraps a `Result<T, Skip>`, or reports the skip and returns from the
/// enclosing test.
#[macro_export]
macro_rules! or_skip {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(skip) => {
                $crate::sshd::skip_or_fail(&skip);
                return;
            }
        }
    };
}

/// How to set up an [`Sshd`].
#[derive(Debug, Clone, Default)]
pub struct SshdOpts {
    /// Put the `scp` stand-in (a symlink to the binary under test) into
    /// `bin/` from the start; see also [`Sshd::install_standin`].
    pub standin: bool,
    /// Options prefixed to the client key's line in `authorized_keys`, e.g.
    /// `command="/path/scptrace forced"`.
    pub key_options: Option<String>,
    /// `ForceCommand` for every session.
    pub force_command: Option<String>,
    /// More `SetEnv NAME=VALUE` pairs for sessions.
    pub env: Vec<(String, String)>,
    /// Let the login shell read the user's startup files. Debian's bash,
    /// started by sshd, reads `~/.bashrc` (SSH_SOURCE_BASHRC) unless SHLVL
    /// says it is nested; by default the sessions get `SHLVL=1`, so that
    /// the PATH is exactly ours and no rc file (this machine's root runs
    /// `pyenv init`, 0.3 s a session) slows every connection.
    pub user_rc: bool,
    /// More sshd_config lines, e.g. `AcceptEnv SCPTRACE_*`.
    pub extra_config: Vec<String>,
    /// The `Subsystem sftp` command (default `internal-sftp`); `Some("")`
    /// leaves the line out: no sftp subsystem.
    pub sftp_subsystem: Option<String>,
}

/// The kinds of transfer [`Sshd::transfer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Local sources to a remote destination.
    Put,
    /// Remote sources to a local destination.
    Get,
    /// Local trees to a remote destination, recursive, preserving times
    /// (and modes, where the client can).
    PutTree,
    /// Remote trees to a local destination, likewise.
    GetTree,
}

impl Op {
    fn recursive(self) -> bool {
        matches!(self, Op::PutTree | Op::GetTree)
    }
    fn is_put(self) -> bool {
        matches!(self, Op::Put | Op::PutTree)
    }
    fn script_name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::PutTree => "put-r",
            Op::GetTree => "get-r",
        }
    }
}

/// The scp client implementations the end-to-end tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// OpenSSH `scp -O` (legacy protocol) with OpenSSH `ssh`.
    OpenSsh,
    /// PuTTY `pscp -scp`.
    Pscp,
    /// The Python `scp` package over paramiko.
    Paramiko,
    /// asyncssh's `scp()`.
    Asyncssh,
    /// curl's `scp://` (libssh2): single files only.
    Curl,
    /// Ruby net-scp.
    NetScp,
    /// OpenSSH `scp -O` with dropbear's `dbclient` as the ssh program.
    Dbclient,
}

impl Client {
    pub const ALL: [Client; 7] = [
        Client::OpenSsh,
        Client::Pscp,
        Client::Paramiko,
        Client::Asyncssh,
        Client::Curl,
        Client::NetScp,
        Client::Dbclient,
    ];

    /// Whether it can copy directory trees.
    pub fn recursive(self) -> bool {
        self != Client::Curl
    }
}

/// The user the tests log in as: whoever runs them.
pub fn user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".to_string())
}

/// The first executable called `name` on the tests' PATH (or in the sbin
/// directories, which a non-root PATH may lack).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

fn need(name: &str, package: &str) -> Result<PathBuf, Skip> {
    which(name).ok_or_else(|| {
        Skip::new(format!(
            "no {name} (Debian package {package}; run scripts/test-deps.sh as root)"
        ))
    })
}

/// The build directory (where `scripts/test-deps.sh` put the Python venv):
/// two levels above the binary under test (`target/debug/scptrace`).
fn target_dir() -> PathBuf {
    let bin = util::bin();
    bin.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The venv's python, if it has paramiko, scp and asyncssh (checked once).
fn venv_python() -> Result<PathBuf, Skip> {
    static PY: OnceLock<Result<PathBuf, Skip>> = OnceLock::new();
    PY.get_or_init(|| {
        let venv = std::env::var_os("SCPTRACE_TEST_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("test-venv"));
        let py = venv.join("bin/python");
        let ok = Command::new(&py)
            .args([
                "-c",
                "import importlib.util as u, sys; \
                 sys.exit(not all(u.find_spec(m) for m in ('paramiko', 'scp', 'asyncssh')))",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(py)
        } else {
            Err(Skip::new(format!(
                "no Python venv with paramiko, scp and asyncssh at {} (run scripts/test-deps.sh)",
                venv.display()
            )))
        }
    })
    .clone()
}

/// Ruby with net-scp (checked once).
fn ruby() -> Result<PathBuf, Skip> {
    static RUBY: OnceLock<Result<PathBuf, Skip>> = OnceLock::new();
    RUBY.get_or_init(|| {
        let ruby = need("ruby", "ruby-net-scp")?;
        let ok = Command::new(&ruby)
            .args([
                "-e",
                "require 'net/scp'; require 'ed25519'; require 'bcrypt_pbkdf'",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(ruby)
        } else {
            Err(Skip::new(
                "ruby lacks net-scp or ed25519 (Debian ruby-net-scp ruby-ed25519 ruby-bcrypt-pbkdf)",
            ))
        }
    })
    .clone()
}

/// curl with the scp:// protocol (libssh2), checked once.
fn curl() -> Result<PathBuf, Skip> {
    static CURL: OnceLock<Result<PathBuf, Skip>> = OnceLock::new();
    CURL.get_or_init(|| {
        let curl = need("curl", "curl")?;
        let out = Command::new(&curl)
            .arg("-V")
            .output()
            .map_err(|e| Skip::new(format!("curl -V: {e}")))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let has_scp = text
            .lines()
            .filter_map(|l| l.strip_prefix("Protocols:"))
            .any(|l| l.split_whitespace().any(|p| p == "scp"));
        if has_scp {
            Ok(curl)
        } else {
            Err(Skip::new("curl has no scp:// support (built without libssh2)"))
        }
    })
    .clone()
}

/// A file from `tests/clients/`.
pub fn client_script(name: &str) -> PathBuf {
    util::client(name)
}

/// Runs a setup command to completion; fails the test if it fails.
fn setup(cmd: &mut Command) {
    let f = util::run(cmd, Input::Null, DEADLINE);
    assert!(
        f.status.success(),
        "{cmd:?} failed: {:?}\n{}",
        f.status,
        f.stderr_text()
    );
}

/// A running sshd on 127.0.0.1, killed when dropped.
pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    user: String,
    host_fingerprint: String,
}

impl Sshd {
    /// Sets up the temporary directory, starts `sshd -D` on a free loopback
    /// port and waits until it listens.
    pub fn start(opts: SshdOpts) -> Result<Sshd, Skip> {
        let sshd = need("sshd", "openssh-server")?;
        let keygen = need("ssh-keygen", "openssh-client")?;
        need("ssh", "openssh-client")?;
        if !Path::new("/usr/bin/scp").exists() {
            return Err(Skip::new("no /usr/bin/scp (Debian package openssh-client)"));
        }
        // sshd refuses to start without its privilege separation directory.
        let privsep = Path::new("/run/sshd");
        if !privsep.is_dir() {
            fs::create_dir_all(privsep).map_err(|e| {
                Skip::new(format!(
                    "cannot create sshd's privilege separation dir /run/sshd: {e}"
                ))
            })?;
            fs::set_permissions(privsep, fs::Permissions::from_mode(0o755)).ok();
        }

        let dir = tempfile::Builder::new()
            .prefix("scptrace-e2e-")
            .tempdir()
            .expect("creating a temp dir");
        let d = dir.path();
        for sub in ["bin", "home/.ssh", "work", "remote-config", "remote-state"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        fs::set_permissions(d.join("home/.ssh"), fs::Permissions::from_mode(0o700)).unwrap();
        for key in ["host_ed25519", "client_ed25519"] {
            setup(
                Command::new(&keygen)
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                    .arg(d.join(key)),
            );
        }
        let user = user();
        let client_pub = fs::read_to_string(d.join("client_ed25519.pub")).unwrap();
        let key_line = match &opts.key_options {
            Some(o) => format!("{o} {client_pub}"),
            None => client_pub,
        };
        fs::write(d.join("authorized_keys"), key_line).unwrap();
        let host_pub = fs::read_to_string(d.join("host_ed25519.pub")).unwrap();
        let host_key: String = host_pub.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        let fp = Command::new(&keygen)
            .args(["-l", "-E", "sha256", "-f"])
            .arg(d.join("host_ed25519.pub"))
            .output()
            .unwrap();
        let host_fingerprint = String::from_utf8_lossy(&fp.stdout)
            .split_whitespace()
            .nth(1)
            .expect("ssh-keygen -l prints a fingerprint")
            .to_string();
        if opts.standin {
            symlink(util::bin(), d.join("bin/scp")).unwrap();
        }

        // The port: one the kernel just handed out; sshd may still lose a race
        // for it, so retry with another.
        let mut last_log = String::new();
        for _attempt in 0..8 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .expect("binding a loopback port")
                .port();
            // OpenSSH matches `[host]:port`, dropbear (2022.83) only `host`.
            fs::write(
                d.join("home/.ssh/known_hosts"),
                format!("[127.0.0.1]:{port} {host_key}\n127.0.0.1 {host_key}\n"),
            )
            .unwrap();
            let config = Self::config(d, port, &opts);
            fs::write(d.join("sshd_config"), config).unwrap();
            let log = d.join("sshd.log");
            let _ = fs::remove_file(&log);
            let mut child = Command::new(&sshd)
                .arg("-D")
                .arg("-f")
                .arg(d.join("sshd_config"))
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .env_clear()
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", sshd.display()));
            let want = format!("Server listening on 127.0.0.1 port {port}.");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let text = fs::read_to_string(&log).unwrap_or_default();
                if text.contains(&want) {
                    return Ok(Sshd {
                        dir,
                        port,
                        child,
                        user,
                        host_fingerprint,
                    });
                }
                if let Some(st) = child.try_wait().unwrap() {
                    last_log = format!("sshd exited {st}:\n{text}");
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("sshd not listening after 10 s:\n{text}");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if !last_log.contains("Address already in use") {
                break;
            }
        }
        panic!("{last_log}");
    }

    fn config(d: &Path, port: u16, opts: &SshdOpts) -> String {
        let p = |s: &str| d.join(s).display().to_string();
        let mut c = String::new();
        let _ = write!(
            c,
            "# written by scptrace's tests/it/sshd.rs\n\
             ListenAddress 127.0.0.1:{port}\n\
             HostKey {host}\n\
             PidFile {pid}\n\
             AuthorizedKeysFile {auth}\n\
             UsePAM no\n\
             StrictModes no\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UseDNS no\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             X11Forwarding no\n\
             MaxStartups 64:30:128\n\
             {subsystem}\
             # sntrup761 costs 150 ms of CPU a connection and tells nothing about scp\n\
             KexAlgorithms -sntrup761x25519-sha512@openssh.com\n\
             LogLevel VERBOSE\n",
            host = p("host_ed25519"),
            pid = p("sshd.pid"),
            auth = p("authorized_keys"),
            subsystem = match opts.sftp_subsystem.as_deref() {
                None => "Subsystem sftp internal-sftp\n".to_string(),
                Some("") => String::new(),
                Some(c) => format!("Subsystem sftp {c}\n"),
            },
        );
        // Sessions get only what sshd sets (USER, HOME, SHELL, SSH_*) plus
        // these; the remote config and state dirs keep the user's own
        // scptrace config out.
        c.push_str("SetEnv");
        let mut env = vec![
            (
                "PATH".to_string(),
                format!("{}:/usr/local/bin:/usr/bin:/bin", p("bin")),
            ),
            ("SCPTRACE_LOG_DIR".to_string(), p("logs")),
            ("XDG_CONFIG_HOME".to_string(), p("remote-config")),
            ("XDG_STATE_HOME".to_string(), p("remote-state")),
        ];
        if !opts.user_rc {
            env.push(("SHLVL".to_string(), "1".to_string()));
        }
        env.extend(opts.env.iter().cloned());
        for (k, v) in env {
            let _ = write!(c, " \"{k}={v}\"");
        }
        c.push('\n');
        if let Some(fc) = &opts.force_command {
            let _ = writeln!(c, "ForceCommand {fc}");
        }
        for line in &opts.extra_config {
            let _ = writeln!(c, "{line}");
        }
        c
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory holding everything.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// First on the PATH of sessions: where the `scp` stand-in goes.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir().join("bin")
    }

    /// SCPTRACE_LOG_DIR of sessions (not created beforehand).
    pub fn log_dir(&self) -> PathBuf {
        self.dir().join("logs")
    }

    /// An empty directory for the test's own files.
    pub fn work(&self) -> PathBuf {
        self.dir().join("work")
    }

    /// HOME of the clients (holds `.ssh/known_hosts`).
    pub fn home(&self) -> PathBuf {
        self.dir().join("home")
    }

    /// The client's private key (OpenSSH format).
    pub fn key(&self) -> PathBuf {
        self.dir().join("client_ed25519")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.home().join(".ssh/known_hosts")
    }

    /// The host key's `SHA256:…` fingerprint.
    pub fn host_fingerprint(&self) -> &str {
        &self.host_fingerprint
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// `USER@127.0.0.1:PATH`, a remote path for scp and pscp.
    pub fn remote(&self, path: impl AsRef<OsStr>) -> OsString {
        let mut s = OsString::from(format!("{}@127.0.0.1:", self.user));
        s.push(path.as_ref());
        s
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir().join("sshd.log")).unwrap_or_default()
    }

    /// Puts `bin/scp`, a symlink to the binary under test, first on the
    /// PATH of sessions.
    pub fn install_standin(&self) {
        let link = self.bin_dir().join("scp");
        let _ = fs::remove_file(&link);
        symlink(util::bin(), link).unwrap();
    }

    /// Takes the stand-in away again: sessions run the real scp.
    pub fn remove_standin(&self) {
        let _ = fs::remove_file(self.bin_dir().join("scp"));
    }

    /// The transcripts written so far, sorted by name (= start time).
    pub fn transcripts(&self) -> Vec<PathBuf> {
        util::files_in(&self.log_dir())
    }

    /// A command for a client program: HOME is ours, no SCPTRACE_* from the
    /// caller (see [`util::command`]).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        util::command(program, &self.home())
    }

    /// Options for OpenSSH `ssh`: no config file, our key only, our
    /// known_hosts only, never a prompt.
    pub fn ssh_opts(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["-p".into(), self.port.to_string().into()];
        v.extend(self.common_opts());
        v
    }

    /// The same for OpenSSH `scp` (`-P` for the port).
    pub fn scp_opts(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["-P".into(), self.port.to_string().into()];
        v.extend(self.common_opts());
        v
    }

    fn common_opts(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["-F".into(), "/dev/null".into(), "-i".into()];
        v.push(self.key().into());
        for o in [
            format!("UserKnownHostsFile={}", self.known_hosts().display()),
            "GlobalKnownHostsFile=/dev/null".to_string(),
            "StrictHostKeyChecking=yes".to_string(),
            "UpdateHostKeys=no".to_string(),
            "BatchMode=yes".to_string(),
            "IdentitiesOnly=yes".to_string(),
            "ControlMaster=no".to_string(),
        ] {
            v.push("-o".into());
            v.push(o.into());
        }
        v
    }

    /// `ssh USER@127.0.0.1 COMMAND`.
    pub fn ssh(&self, command: &str) -> Finished {
        let mut c = self.command("ssh");
        c.args(self.ssh_opts())
            .arg(format!("{}@127.0.0.1", self.user))
            .arg(command);
        util::run(&mut c, Input::Null, DEADLINE)
    }

    /// What `scp` resolves to in a session's shell (`command -v scp`).
    pub fn remote_scp(&self) -> String {
        let f = self.ssh("command -v scp");
        assert!(f.status.success(), "ssh: {}", f.stderr_text());
        String::from_utf8_lossy(&f.stdout).trim().to_string()
    }

    /// OpenSSH `scp -O` with [`Sshd::scp_opts`], then `args`.
    pub fn openssh_scp<S: AsRef<OsStr>>(&self, args: &[S]) -> Finished {
        let mut c = self.command("/usr/bin/scp");
        c.arg("-O").args(self.scp_opts()).args(args);
        util::run(&mut c, Input::Null, DEADLINE)
    }

    /// The client key in PuTTY's format (made on first use).
    pub fn ppk(&self) -> Result<PathBuf, Skip> {
        let ppk = self.dir().join("client_ed25519.ppk");
        if !ppk.exists() {
            let puttygen = need("puttygen", "putty-tools")?;
            setup(
                self.command(puttygen)
                    .arg(self.key())
                    .args(["-O", "private", "-o"])
                    .arg(&ppk),
            );
        }
        Ok(ppk)
    }

    /// PuTTY `pscp -scp -batch -q -noagent -P PORT -i KEY.ppk -hostkey FP`,
    /// then `args`. `-q` drops the progress lines pscp prints on stdout.
    pub fn pscp<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Finished, Skip> {
        let pscp = need("pscp", "putty-tools")?;
        let ppk = self.ppk()?;
        let mut c = self.command(pscp);
        c.args(["-scp", "-batch", "-q", "-noagent", "-P"])
            .arg(self.port.to_string())
            .arg("-i")
            .arg(ppk)
            .arg("-hostkey")
            .arg(&self.host_fingerprint)
            .args(args);
        Ok(util::run(&mut c, Input::Null, DEADLINE))
    }

    /// The client key in dropbear's format (made on first use).
    pub fn dropbear_key(&self) -> Result<PathBuf, Skip> {
        let db = self.dir().join("client_ed25519.dropbear");
        if !db.exists() {
            let convert = need("dropbearconvert", "dropbear-bin")?;
            setup(
                self.command(convert)
                    .args(["openssh", "dropbear"])
                    .arg(self.key())
                    .arg(&db),
            );
        }
        Ok(db)
    }

    /// OpenSSH `scp -O -S tests/clients/dbclient-ssh -P PORT -i KEY`, then
    /// `args`: dropbear's dbclient as the ssh program.
    pub fn dbclient_scp<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Finished, Skip> {
        need("dbclient", "dropbear-bin")?;
        let key = self.dropbear_key()?;
        let mut c = self.command("/usr/bin/scp");
        c.arg("-O")
            .arg("-S")
            .arg(client_script("dbclient-ssh"))
            .arg("-P")
            .arg(self.port.to_string())
            .arg("-i")
            .arg(key)
            .args(args);
        Ok(util::run(&mut c, Input::Null, DEADLINE))
    }

    /// `tests/clients/paramiko_scp.py` or `asyncssh_scp.py` (`script`):
    /// HOST PORT USER KEY KNOWN_HOSTS OP SRC... DST.
    fn python<S: AsRef<OsStr>>(
        &self,
        script: &str,
        op: Op,
        srcs: &[S],
        dst: impl AsRef<OsStr>,
    ) -> Result<Finished, Skip> {
        self.python_script(script, op.script_name(), srcs, dst)
    }

    /// `tests/clients/paramiko_sftp.py` or `asyncssh_sftp.py` (`script`):
    /// one file, `op` "put" or "get".
    pub fn python_sftp(&self, script: &str, op: &str, src: &Path, dst: &Path) -> Result<Finished, Skip> {
        self.python_script(script, op, &[src], dst)
    }

    /// A client script of tests/clients/ under the venv's Python:
    /// HOST PORT USER KEY KNOWN_HOSTS OP SRC... DST.
    fn python_script<S: AsRef<OsStr>>(
        &self,
        script: &str,
        op: &str,
        srcs: &[S],
        dst: impl AsRef<OsStr>,
    ) -> Result<Finished, Skip> {
        let py = venv_python()?;
        let mut c = self.command(py);
        c.arg(client_script(script))
            .args(["127.0.0.1", &self.port.to_string(), &self.user])
            .arg(self.key())
            .arg(self.known_hosts())
            .arg(op)
            .args(srcs)
            .arg(dst);
        Ok(util::run(&mut c, Input::Null, DEADLINE))
    }

    /// The Python `scp` package over paramiko.
    pub fn paramiko_scp<S: AsRef<OsStr>>(
        &self,
        op: Op,
        srcs: &[S],
        dst: impl AsRef<OsStr>,
    ) -> Result<Finished, Skip> {
        self.python("paramiko_scp.py", op, srcs, dst)
    }

    /// asyncssh's scp.
    pub fn asyncssh_scp<S: AsRef<OsStr>>(
        &self,
        op: Op,
        srcs: &[S],
        dst: impl AsRef<OsStr>,
    ) -> Result<Finished, Skip> {
        self.python("asyncssh_scp.py", op, srcs, dst)
    }

    /// Ruby net-scp (`tests/clients/net_scp.rb`), one source.
    pub fn net_scp(&self, op: Op, src: impl AsRef<OsStr>, dst: impl AsRef<OsStr>) -> Result<Finished, Skip> {
        let ruby = ruby()?;
        let mut c = self.command(ruby);
        c.arg(client_script("net_scp.rb"))
            .args(["127.0.0.1", &self.port.to_string(), &self.user])
            .arg(self.key())
            .arg(self.known_hosts())
            .arg(op.script_name())
            .arg(src)
            .arg(dst);
        Ok(util::run(&mut c, Input::Null, DEADLINE))
    }

    /// curl `scp://USER@127.0.0.1:PORT/PATH`: with `upload`, `local` is sent
    /// to the absolute `remote` path (`-T`), else `remote` is fetched into
    /// `local` (`-o`). The host key is pinned by its SHA-256.
    pub fn curl_scp(&self, upload: bool, local: &Path, remote: &Path) -> Result<Finished, Skip> {
        let curl = curl()?;
        assert!(remote.is_absolute(), "curl_scp wants an absolute remote path");
        let url = format!(
            "scp://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            percent_encode(remote.as_os_str())
        );
        let mut c = self.command(curl);
        // -q: no ~/.curlrc; -sS: no progress meter, but errors.
        c.args(["-q", "-sS", "--key"])
            .arg(self.key())
            .arg("--pubkey")
            .arg(self.dir().join("client_ed25519.pub"))
            .arg("--hostpubsha256")
            .arg(self.host_fingerprint.trim_start_matches("SHA256:"))
            .arg(if upload { "-T" } else { "-o" })
            .arg(local)
            .arg(url);
        Ok(util::run(&mut c, Input::Null, DEADLINE))
    }

    /// One transfer with any client: `Op::Put` copies local `srcs` to the
    /// remote path `dst`, `Op::Get` the remote `srcs` to the local `dst`
    /// (paths on this machine either way: the server is local). The tree ops
    /// copy recursively and preserve times (`-r -p`).
    pub fn transfer(&self, client: Client, op: Op, srcs: &[&Path], dst: &Path) -> Result<Finished, Skip> {
        let remote = |p: &Path| self.remote(p);
        let (from, to): (Vec<OsString>, OsString) = if op.is_put() {
            (
                srcs.iter().map(|p| p.as_os_str().to_owned()).collect(),
                remote(dst),
            )
        } else {
            (
                srcs.iter().map(|p| remote(p)).collect(),
                dst.as_os_str().to_owned(),
            )
        };
        let mut scp_args: Vec<OsString> = Vec::new();
        if op.recursive() {
            scp_args.extend(["-r".into(), "-p".into()]);
        }
        scp_args.extend(from);
        scp_args.push(to);
        match client {
            Client::OpenSsh => Ok(self.openssh_scp(&scp_args)),
            Client::Pscp => self.pscp(&scp_args),
            Client::Dbclient => self.dbclient_scp(&scp_args),
            Client::Paramiko => self.paramiko_scp(op, srcs, dst),
            Client::Asyncssh => self.asyncssh_scp(op, srcs, dst),
            Client::NetScp => {
                assert_eq!(srcs.len(), 1, "net_scp.rb copies one source");
                self.net_scp(op, srcs[0], dst)
            }
            Client::Curl => {
                assert!(!op.recursive(), "curl copies single files only");
                assert_eq!(srcs.len(), 1, "curl copies one file");
                if op.is_put() {
                    self.curl_scp(true, srcs[0], dst)
                } else {
                    self.curl_scp(false, dst, srcs[0])
                }
            }
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Only the listener: a session's processes are their own sessions
        // and end with their connections.
        util::kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

/// Percent-encodes a path for a URL, keeping `/` and unreserved bytes.
fn percent_encode(path: &OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut s = String::new();
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}
