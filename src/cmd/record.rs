//! `scptrace record`: trace the client side of a transfer with nothing
//! installed remotely, by running the local scp with scptrace as its ssh
//! program (`scp -S`), so that the ssh leg's stdin and stdout are traced.
//!
//! Two processes take part. The *recorder* (`scptrace record -- scp ARGS`)
//! runs the scp client with `-S <this executable>` and the environment
//! marker [`AS_SSH_ENV`] naming a private *rendezvous* directory; it waits for
//! the client, prints the transcripts' paths and ends like the client. Each
//! *leg* (this executable started by scp as its ssh program, one per
//! connection) reads the plan from the rendezvous, claims a connection
//! number there, and runs the real ssh traced: `I:` is what the local client
//! sends to the remote scp, `O:` what comes back, `E:` ssh's stderr.
//!
//! The rendezvous directory holds `plan` (TOML, written once by the recorder)
//! and `leg-N` (created exclusively by the N-th leg, holding its transcript's
//! path). Paths in both are escaped like transcript bytes, so any path survives.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::cli::RecordArgs;
use crate::config::{Flags, Settings};
use crate::escape::{escape, escape_text, unescape};
use crate::paths::{find_on_path, is_executable_file, is_self};
use crate::protocol::{Protocol, scp};
use crate::tap::child;
use crate::tap::logdir::LogDir;
use crate::tap::session::{self, Output, Target};
use crate::utc::Utc;

/// The environment marker: set (to the rendezvous directory) by the recorder
/// for the scp client, so that scptrace started as its ssh program acts as a
/// leg. A leg removes it before starting the real ssh.
pub const AS_SSH_ENV: &str = "SCPTRACE_AS_SSH";

/// The link to this executable in the rendezvous that the recorder gives
/// scp as its `-S` program, so that a leg's `argv[0]` is
/// `<rendezvous>/ssh`: the proof that the marker was set by a recorder,
/// which the environment alone cannot give (design §1: in an ssh session the
/// environment does not choose what runs, and a leg runs the plan's ssh).
const LEG_LINK: &str = "ssh";

/// Where each leg writes its transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PlanOutput {
    /// `-o -`: live on stderr.
    Stderr,
    /// Default: a new file per connection in the log directory.
    LogDir,
    /// `-o FILE`: FILE for the first connection, then FILE-2, FILE-3…
    File(#[serde(with = "escaped")] PathBuf),
}

/// What the recorder tells its legs, as TOML in the rendezvous's `plan`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Plan {
    /// The real ssh program, resolved.
    #[serde(with = "escaped")]
    ssh: PathBuf,
    /// What the real ssh sees as `argv[0]`: what scp would have passed.
    #[serde(with = "escaped")]
    ssh_argv0: OsString,
    output: PlanOutput,
    /// No flags given: no `[flags]` table.
    #[serde(default, with = "plan_flags")]
    flags: Flags,
}

/// The client's arguments, read the way its getopt does (no permutation:
/// options end at the first operand or `--`).
#[derive(Debug, Default, PartialEq)]
struct ClientArgs {
    /// The arguments with any `-S program` taken out.
    rest: Vec<OsString>,
    /// The user's own `-S program`, last one wins as in scp.
    ssh: Option<OsString>,
    /// `-O` is present: legacy protocol asked for.
    legacy: bool,
    /// `-s` is present: SFTP asked for.
    sftp: bool,
}

fn scan_client_args(args: &[OsString]) -> ClientArgs {
    let mut out = ClientArgs::default();
    let (opts, operands) = scp::getopt(args);
    // Each option word is rebuilt without any S option (and its value);
    // everything else is kept as given.
    let mut kept = vec![b'-'];
    let flush = |kept: &mut Vec<u8>, rest: &mut Vec<OsString>| {
        if kept.len() > 1 {
            rest.push(OsString::from_vec(std::mem::replace(kept, vec![b'-'])));
        }
    };
    let mut word = None;
    for o in &opts {
        if word != Some(o.word) {
            flush(&mut kept, &mut out.rest);
            word = Some(o.word);
        }
        match o.letter {
            b'S' => {
                if let Some(v) = o.value {
                    out.ssh = Some(OsString::from_vec(v.to_vec()));
                }
                continue;
            }
            b'O' => out.legacy = true,
            b's' => out.sftp = true,
            _ => {}
        }
        kept.push(o.letter);
        match (o.value, o.value_next) {
            (Some(v), false) => kept.extend_from_slice(v),
            (Some(v), true) => {
                flush(&mut kept, &mut out.rest);
                out.rest.push(OsString::from_vec(v.to_vec()));
            }
            (None, _) => {}
        }
    }
    flush(&mut kept, &mut out.rest);
    out.rest.extend(args[operands..].iter().cloned());
    out
}

/// `OpenSSH_9.2p1 Debian…` → (9, 2).
fn parse_openssh_version(text: &str) -> Option<(u32, u32)> {
    let rest = &text[text.find("OpenSSH_")? + "OpenSSH_".len()..];
    let mut parts = rest.splitn(2, '.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts.next()?.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((major, minor.parse().ok()?))
}

/// The OpenSSH version of the installation `client` belongs to, from
/// `ssh -V` of the ssh beside it (else the one on PATH). scp has no version
/// option; its ssh does, and they come in one package.
fn openssh_version(client: &Path) -> Option<(u32, u32)> {
    let beside = client.parent().map(|d| d.join("ssh"));
    let ssh = beside
        .filter(|p| is_executable_file(p))
        .or_else(|| find_on_path(OsStr::new("ssh")))?;
    let out = Command::new(ssh).arg("-V").stdin(Stdio::null()).output().ok()?;
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    parse_openssh_version(&text)
}

/// A program word as `execvp` resolves it: a name with a `/` is a path
/// (made absolute here, since the leg that uses it may start elsewhere), a
/// bare name is looked up on PATH.
fn resolve_program(word: &OsStr) -> Result<PathBuf> {
    if word.as_bytes().contains(&b'/') {
        let p = Path::new(word);
        return Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()
                .context("cannot read the current directory")?
                .join(p)
        });
    }
    find_on_path(word).with_context(|| format!("{}: not found on PATH", word.to_string_lossy()))
}

/// The ssh OpenSSH's scp runs without `-S`: `$bindir/ssh` of its own
/// installation (it does not search PATH), else `ssh` on PATH.
fn default_ssh(client: &Path) -> Result<(OsString, PathBuf)> {
    if let Some(p) = client.parent().map(|d| d.join("ssh"))
        && is_executable_file(&p)
    {
        return Ok((p.clone().into_os_string(), p));
    }
    let p = find_on_path(OsStr::new("ssh"))
        .context("no ssh beside the scp client nor on PATH; give one with -S")?;
    Ok((p.clone().into_os_string(), p))
}

/// FILE for connection 1, FILE-N before the extension for the others:
/// `t.log` → `t-2.log`, `t` → `t-2`, `.t` → `.t-2`.
fn leg_path(path: &Path, n: u32) -> PathBuf {
    if n <= 1 {
        return path.to_path_buf();
    }
    let name = path.file_name().map(OsStr::as_bytes).unwrap_or_default();
    let cut = match name.iter().rposition(|&b| b == b'.') {
        Some(0) | None => name.len(),
        Some(i) => i,
    };
    let mut new = name[..cut].to_vec();
    new.extend_from_slice(format!("-{n}").as_bytes());
    new.extend_from_slice(&name[cut..]);
    path.with_file_name(OsStr::from_bytes(&new))
}

// ---- the rendezvous directory ----

/// The recorder's private directory, removed when dropped.
struct Rendezvous {
    path: PathBuf,
    owned: bool,
}

impl Rendezvous {
    /// A new 0700 directory under the temp dir, never an existing one.
    fn create() -> io::Result<Rendezvous> {
        let base = std::env::temp_dir();
        let pid = std::process::id();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        for n in 0..100u32 {
            let path = base.join(format!("scptrace-record-{pid}-{nanos:08x}-{n}"));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Rendezvous { path, owned: true }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "cannot create a directory in {}: {}",
                            base.display(),
                            crate::errtext::io(&e)
                        ),
                    ));
                }
            }
        }
        Err(io::Error::other(format!(
            "cannot create a fresh directory in {}",
            base.display()
        )))
    }

    /// The recorder's directory, as a leg sees it (never removed by a leg).
    fn join(path: PathBuf) -> Rendezvous {
        Rendezvous { path, owned: false }
    }

    /// Creates `name` exclusively (0600, no symlink) with `contents`.
    fn create_file(&self, name: &str, contents: &[u8]) -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(self.path.join(name))?;
        f.write_all(contents)
    }

    fn write_plan(&self, plan: &Plan) -> io::Result<()> {
        self.create_file("plan", plan.to_text().as_bytes())
    }

    fn read_plan(&self) -> Result<Plan> {
        let text = std::fs::read_to_string(self.path.join("plan"))
            .with_context(|| format!("cannot read {}", self.path.join("plan").display()))?;
        Plan::from_text(&text)
    }

    /// Claims the next connection number: the first `leg-N` not yet taken.
    fn claim_leg(&self) -> io::Result<u32> {
        for n in 1..10_000u32 {
            match self.create_file(&format!("leg-{n}"), b"") {
                Ok(()) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("too many connections"))
    }

    /// Notes where leg `n` writes its transcript.
    fn set_leg_path(&self, n: u32, path: &Path) -> io::Result<()> {
        let mut text = escape(path.as_os_str().as_bytes());
        text.push('\n');
        std::fs::write(self.path.join(format!("leg-{n}")), text)
    }

    /// Connections made, in order, each with its transcript's path if any.
    fn legs(&self) -> Vec<(u32, Option<PathBuf>)> {
        let mut legs: Vec<(u32, Option<PathBuf>)> = std::fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let n: u32 = name.to_str()?.strip_prefix("leg-")?.parse().ok()?;
                let text = std::fs::read(e.path()).unwrap_or_default();
                let line = text.strip_suffix(b"\n").unwrap_or(&text);
                let path = (!line.is_empty())
                    .then(|| unescape(line).ok())
                    .flatten()
                    .map(|b| PathBuf::from(OsString::from_vec(b)));
                Some((n, path))
            })
            .collect();
        legs.sort_by_key(|l| l.0);
        legs
    }
}

impl Drop for Rendezvous {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

impl Plan {
    /// The plan as TOML; byte strings (paths, `argv[0]`) escaped like
    /// transcript bytes, so any path survives.
    fn to_text(&self) -> String {
        // Strings, booleans and tables only: serialising cannot fail.
        toml::to_string(self).expect("a plan is plain TOML")
    }

    /// Reads a plan back; keys a newer recorder added are ignored.
    fn from_text(text: &str) -> Result<Plan> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("bad plan: {}", e.message()))
    }
}

/// Serde for byte strings (`PathBuf`, `OsString`) as escaped text.
mod escaped {
    use std::ffi::{OsStr, OsString};
    use std::os::unix::ffi::{OsStrExt, OsStringExt};

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::escape::{escape, unescape};

    pub fn serialize<T: AsRef<OsStr>, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&escape(v.as_ref().as_bytes()))
    }

    pub fn deserialize<'de, T: From<OsString>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = unescape(text.as_bytes()).map_err(D::Error::custom)?;
        Ok(T::from(OsString::from_vec(bytes)))
    }
}

/// Serde for the [`Flags`] a leg needs: the ones `TraceOpts` sets.
mod plan_flags {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    use crate::config::Flags;
    use crate::escape::{escape, unescape};

    #[derive(Default, Serialize, Deserialize)]
    #[serde(default)]
    struct PlanFlags {
        /// Escaped like transcript bytes.
        #[serde(skip_serializing_if = "Option::is_none")]
        log_dir: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        framing: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        format: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        timestamps: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        color: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_log_bytes: Option<u64>,
    }

    pub fn serialize<S: Serializer>(f: &Flags, s: S) -> Result<S::Ok, S::Error> {
        PlanFlags {
            log_dir: f.log_dir.as_ref().map(|d| escape(d.as_os_str().as_bytes())),
            framing: f.framing.map(|v| v.to_string()),
            data: f.data.map(|v| v.to_string()),
            format: f.format.map(|v| v.to_string()),
            timestamps: f.timestamps,
            color: f.color.map(|v| v.to_string()),
            max_log_bytes: f.max_log_bytes,
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Flags, D::Error> {
        fn choice<T: std::str::FromStr<Err = String>, E: Error>(v: Option<String>) -> Result<Option<T>, E> {
            v.map(|v| v.parse().map_err(E::custom)).transpose()
        }
        let p = PlanFlags::deserialize(d)?;
        let log_dir = match p.log_dir {
            Some(t) => {
                let b = unescape(t.as_bytes()).map_err(D::Error::custom)?;
                Some(PathBuf::from(OsString::from_vec(b)))
            }
            None => None,
        };
        Ok(Flags {
            log_dir,
            framing: choice(p.framing)?,
            data: choice(p.data)?,
            format: choice(p.format)?,
            timestamps: p.timestamps,
            color: choice(p.color)?,
            max_log_bytes: p.max_log_bytes,
            ..Flags::default()
        })
    }
}

// ---- the recorder ----

pub fn run(args: RecordArgs) -> Result<i32> {
    let mut flags = args.trace.flags();
    // The legs read paths where the client runs them: make them absolute.
    if let Some(d) = flags.log_dir.take() {
        flags.log_dir = Some(std::path::absolute(&d).unwrap_or(d));
    }
    let output = match &args.trace.output {
        Some(p) if p.as_os_str() == "-" => PlanOutput::Stderr,
        Some(p) => PlanOutput::File(std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        None => PlanOutput::LogDir,
    };
    if let Some(p) = &args.trace.output {
        super::check_output(&super::output(Some(p.clone())))?;
    }
    // Said here, once, not by each connection's leg (which reads the same
    // files in the same environment and says nothing of them).
    let settings = Settings::load(flags.clone());
    for w in &settings.warnings {
        crate::warn::warn(w);
    }
    let client_word = &args.command[0];
    let mut client = resolve_program(client_word)?;
    if is_self(&client) {
        // `scp` here is the scptrace stand-in: the client is the real scp.
        client = crate::tap::standin::find_real_scp(&settings)?.path;
    }
    let scanned = scan_client_args(&args.command[1..]);
    let (ssh_argv0, ssh) = match &scanned.ssh {
        Some(s) => (s.clone(), resolve_program(s).context("the -S program")?),
        None => default_ssh(&client)?,
    };
    if is_self(&ssh) {
        bail!(
            "the ssh program {} is scptrace itself; record wraps a real ssh",
            ssh.display()
        );
    }
    // Whichever protocol the client speaks is traced; the legacy one is the
    // user's own `-O`, or `--legacy`, which adds it to an OpenSSH scp that
    // would speak SFTP.
    let mut extra: Vec<OsString> = Vec::new();
    if args.legacy && !scanned.legacy {
        match openssh_version(&client) {
            Some((major, _)) if major >= 9 => extra.push("-O".into()),
            Some(_) => {}
            None => crate::warn::warn(
                "--legacy: the client is not an OpenSSH scp; it is run as given (no -O added)",
            ),
        }
    }
    let exe = std::env::current_exe().context("cannot find the scptrace executable")?;
    let rdv = Rendezvous::create()?;
    rdv.write_plan(&Plan {
        ssh,
        ssh_argv0,
        output: output.clone(),
        flags,
    })?;
    let leg = rdv.path.join(LEG_LINK);
    std::os::unix::fs::symlink(&exe, &leg).with_context(|| format!("cannot create {}", leg.display()))?;

    let signals = child::install_signal_pipe()?;
    let mut cmd = Command::new(&client);
    child::with_start_signals(&mut cmd)
        .arg0(client_word)
        .args(&extra)
        .arg("-S")
        .arg(&leg)
        .args(&scanned.rest)
        .env(AS_SSH_ENV, &rdv.path);
    let mut proc = cmd
        .spawn()
        .with_context(|| format!("cannot run {}", client.display()))?;
    let status = wait_forwarding(&mut proc, &signals)?;

    let legs = rdv.legs();
    drop(rdv);
    let mut report = String::new();
    if legs.is_empty() {
        report.push_str("scptrace: the client made no ssh connection: nothing was recorded\n");
    }
    if output != PlanOutput::Stderr {
        for (n, path) in &legs {
            // A leg that could not create its file named it all the same.
            match path.as_ref().filter(|p| p.exists()) {
                Some(p) => report.push_str(&format!(
                    "scptrace: transcript: {}\n",
                    escape_text(&p.display().to_string())
                )),
                None => report.push_str(&format!("scptrace: connection {n}: no transcript\n")),
            }
        }
    }
    crate::warn::write_stderr(report.as_bytes());
    child::exit_like(status)
}

/// Waits for the client. SIGTERM and SIGHUP sent to us are passed on;
/// SIGINT and SIGQUIT are not (a terminal sends them to the client too, as
/// `system(3)` assumes), so the client sees each signal exactly once.
fn wait_forwarding(proc: &mut Child, signals: &child::SignalPipe) -> Result<ExitStatus> {
    let pid = Pid::from_raw(proc.id() as i32);
    let mut got = Vec::new();
    loop {
        if let Some(status) = proc.try_wait().context("waiting for the scp client")? {
            return Ok(status);
        }
        let mut fds = [nix::poll::PollFd::new(
            signals.read.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        // EINTR and timeouts both just mean: look again.
        let _ = nix::poll::poll(&mut fds, 1000u16);
        got.clear();
        child::drain_signals(signals, &mut got);
        for &sig in &got {
            if matches!(sig, Signal::SIGTERM | Signal::SIGHUP) {
                let _ = kill(pid, sig);
            }
        }
    }
}

// ---- a leg: scptrace as the client's ssh program ----

/// The rendezvous directory when this process was started as a leg: the
/// marker is set and `argv0` is the recorder's link in it; or, where the
/// environment may name programs (not in an ssh session, or allowed by the
/// system file), the marker alone. A marker that does not count is ignored
/// with one warning.
pub fn as_ssh_marker(argv0: &OsStr) -> Option<OsString> {
    let dir = std::env::var_os(AS_SSH_ENV).filter(|v| !v.is_empty())?;
    if Path::new(argv0) == Path::new(&dir).join(LEG_LINK) {
        return Some(dir);
    }
    match crate::config::EnvPolicy::current().program_var(AS_SSH_ENV) {
        Ok(d) => d,
        Err(refused) => {
            crate::warn::warn(&refused.to_string());
            None
        }
    }
}

/// The remote command's scp options and its text, from the ssh argv (the
/// command is its last argument, e.g. `scp -d -t /tmp/`).
fn remote_command(args: &[OsString]) -> (Option<Protocol>, Option<String>) {
    let Some(last) = args.last() else {
        return (None, None);
    };
    if ssh_subsystem(args) {
        // `… -s -- HOST sftp`: scp's (and sftp's) SFTP leg.
        let shown = crate::shell::shell_quote(last.as_bytes());
        let sftp = last.as_bytes() == b"sftp";
        return (sftp.then_some(Protocol::Sftp), Some(format!("subsystem {shown}")));
    }
    // The remote user's shell runs it: shown as `sh -c …` when it holds
    // control characters.
    let text = crate::shell::command_line(b"sh", last.as_bytes());
    let words = crate::shell::shell_split(last.as_bytes()).unwrap_or_else(|| {
        last.as_bytes()
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    });
    let is_scp = words
        .first()
        .is_some_and(|w| Path::new(OsStr::from_bytes(w)).file_name() == Some(OsStr::new("scp")));
    let opts = if is_scp {
        let rest: Vec<OsString> = words[1..].iter().map(|w| OsString::from_vec(w.clone())).collect();
        scp::Options::from_scp_args(&rest).map(Protocol::Scp)
    } else {
        None
    };
    (opts, Some(text))
}

/// Whether an ssh command line asks for a subsystem (`-s`), as ssh's getopt
/// reads it: options end at `--` or the first operand, and these take a value.
fn ssh_subsystem(args: &[OsString]) -> bool {
    const WITH_VALUE: &[u8] = b"BbcDEeFIiJLlmOoPpQRSWw";
    let mut args = args.iter();
    while let Some(a) = args.next() {
        let a = a.as_bytes();
        if a == b"--" || a.len() < 2 || a[0] != b'-' {
            return false;
        }
        for (i, &c) in a.iter().enumerate().skip(1) {
            if c == b's' {
                return true;
            }
            if WITH_VALUE.contains(&c) {
                // The rest of this word is the value, or the next word.
                if i + 1 == a.len() {
                    args.next();
                }
                break;
            }
        }
    }
    false
}

/// Runs the real ssh traced, as connection N of the recorder's session.
/// Returns only on failure; otherwise ends like ssh.
pub fn run_as_ssh(dir: OsString, argv: &[OsString]) -> Result<i32> {
    // SAFETY: single-threaded here, before any thread or child exists.
    // Nothing below this leg (the real ssh, a ProxyCommand, a "remote" scp
    // run locally) may take itself for a leg.
    unsafe { std::env::remove_var(AS_SSH_ENV) };
    let rdv = Rendezvous::join(PathBuf::from(dir));
    let plan = rdv.read_plan().with_context(|| {
        format!(
            "{AS_SSH_ENV} is set to {}, which is no running `scptrace record`; unset it",
            rdv.path.display()
        )
    })?;
    let args: Vec<OsString> = argv.get(1..).unwrap_or_default().to_vec();
    let (opts, shown) = remote_command(&args);
    let mut settings = Settings::load(plan.flags.clone());
    // The recorder said them already.
    settings.warnings.clear();
    let leg = match rdv.claim_leg() {
        Ok(n) => Some(n),
        Err(e) => {
            crate::warn::warn(&format!(
                "record: {}; this connection is numbered 0",
                crate::errtext::io(&e)
            ));
            None
        }
    };
    let output = match &plan.output {
        PlanOutput::Stderr => Output::Stderr,
        PlanOutput::File(p) => Output::File(leg_path(p, leg.unwrap_or(0))),
        PlanOutput::LogDir => {
            match LogDir::open(&settings.log_dir.value).and_then(|d| d.create(&Utc::now(), "record")) {
                Ok((p, file)) => {
                    drop::<File>(file);
                    Output::File(p)
                }
                // The session meets the same problem, warns once and goes on untraced.
                Err(_) => Output::LogDir,
            }
        }
    };
    if let (Some(n), Output::File(p)) = (leg, &output) {
        let _ = rdv.set_leg_path(n, p);
    }
    let target = Target {
        program: plan.ssh,
        argv0: plan.ssh_argv0,
        args,
        proto: opts,
        shown,
        notes: vec![
            "scp gave this ssh program one socketpair as stdin and stdout; ssh's stderr is relayed as E:"
                .into(),
        ],
        interactive: true,
    };
    match session::run_traced(target, &settings, output)? {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn client_args_lose_s_and_keep_the_rest() {
        let c = scan_client_args(&os(&["-O", "-S", "x/ssh", "-r", "a", "h:b"]));
        assert_eq!(c.ssh, Some("x/ssh".into()));
        assert!(c.legacy && !c.sftp);
        assert_eq!(c.rest, os(&["-O", "-r", "a", "h:b"]));

        let c = scan_client_args(&os(&["-rSmyssh", "-P", "22", "a", "-S", "h:b"]));
        assert_eq!(c.ssh, Some("myssh".into()));
        assert!(!c.legacy);
        assert_eq!(c.rest, os(&["-r", "-P", "22", "a", "-S", "h:b"]));

        let c = scan_client_args(&os(&["-o", "-S", "-rS", "s", "--", "-O"]));
        assert_eq!(c.ssh, Some("s".into()));
        assert!(!c.legacy);
        assert_eq!(c.rest, os(&["-o", "-S", "-r", "--", "-O"]));

        let c = scan_client_args(&os(&["-Os", "-S"]));
        assert!(c.legacy && c.sftp);
        assert_eq!(c.ssh, None);
        assert_eq!(c.rest, os(&["-Os"]));
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_openssh_version("OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0"),
            Some((9, 2))
        );
        assert_eq!(parse_openssh_version("OpenSSH_10.0p2, LibreSSL"), Some((10, 0)));
        assert_eq!(parse_openssh_version("OpenSSH_8.9"), Some((8, 9)));
        assert_eq!(parse_openssh_version("Dropbear v2022.83"), None);
    }

    #[test]
    fn leg_paths() {
        let p = |s: &str, n| leg_path(Path::new(s), n).display().to_string();
        assert_eq!(p("/x/t.log", 1), "/x/t.log");
        assert_eq!(p("/x/t.log", 2), "/x/t-2.log");
        assert_eq!(p("/x/t", 3), "/x/t-3");
        assert_eq!(p("/x/.t", 2), "/x/.t-2");
        assert_eq!(p("/x/a.b.jsonl", 2), "/x/a.b-2.jsonl");
    }

    #[test]
    fn plan_round_trips() {
        let plan = Plan {
            ssh: "/usr/bin/ssh".into(),
            ssh_argv0: OsString::from_vec(b"we\tird \xff".to_vec()),
            output: PlanOutput::File("/tmp/a b\n.log".into()),
            flags: Flags {
                log_dir: Some("/l".into()),
                data: Some(crate::config::DataMode::Full),
                timestamps: Some(true),
                max_log_bytes: Some(4096),
                ..Flags::default()
            },
        };
        let back = Plan::from_text(&plan.to_text()).unwrap();
        assert_eq!(back.ssh, plan.ssh);
        assert_eq!(back.ssh_argv0, plan.ssh_argv0);
        assert_eq!(back.output, plan.output);
        assert_eq!(back.flags.data, plan.flags.data);
        assert_eq!(back.flags.timestamps, Some(true));
        assert_eq!(back.flags.max_log_bytes, Some(4096));
        assert_eq!(back.flags.log_dir, plan.flags.log_dir);
        assert_eq!(back.flags.framing, None);
    }

    #[test]
    fn remote_commands() {
        let scp_of = |o: Option<Protocol>| match o {
            Some(Protocol::Scp(o)) => o,
            other => panic!("not scp: {other:?}"),
        };
        let (o, s) = remote_command(&os(&["-x", "--", "localhost", "scp -d -t /tmp/"]));
        assert_eq!(scp_of(o).role, scp::Role::Sink);
        assert_eq!(s.as_deref(), Some("scp -d -t /tmp/"));
        let (o, _) = remote_command(&os(&["h", "scp -r -p -f 'a b'"]));
        assert!(scp_of(o).recursive);
        // A remote command named sftp is not the subsystem.
        let (o, _) = remote_command(&os(&["h", "sftp"]));
        assert!(o.is_none());
        // scp's and sftp's SFTP legs: `-s -- HOST sftp`.
        let (o, s) = remote_command(&os(&["-x", "-oRequestTTY=no", "-s", "--", "localhost", "sftp"]));
        assert_eq!(o, Some(Protocol::Sftp));
        assert_eq!(s.as_deref(), Some("subsystem sftp"));
        let (o, _) = remote_command(&os(&["-oPort 2222", "-l", "u", "-s", "--", "h", "sftp"]));
        assert_eq!(o, Some(Protocol::Sftp));
        // `-l -s` is a user named `-s`.
        let (o, _) = remote_command(&os(&["-l", "-s", "--", "h", "sftp"]));
        assert!(o.is_none());
    }
}
