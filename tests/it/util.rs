//! Shared helpers for the integration tests: sandboxes, running commands with
//! a deadline (a hang fails the test instead of blocking CI), driving a
//! program's stdio step by step, reading transcripts back, and building and
//! comparing file trees (bytes, modes, mtimes).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use scptrace::transcript::parse::parse_text;
use scptrace::transcript::{Entry, Event, Kind};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scptrace"))
}

/// A helper program from `tests/clients/`.
pub fn client(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// The real OpenSSH scp, used as the client and as the plain server.
pub const REAL_SCP: &str = "/usr/bin/scp";

/// How long any one command may take before the test fails as a hang.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A temporary directory for one test, holding `standin/scp` (a symlink to
/// the binary under test) and room for `logs/`.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new().prefix("scptrace-it-").tempdir().unwrap();
        fs::create_dir(dir.path().join("standin")).unwrap();
        std::os::unix::fs::symlink(bin(), dir.path().join("standin/scp")).unwrap();
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The directory holding the stand-in symlink `scp`.
    pub fn standin_dir(&self) -> PathBuf {
        self.path().join("standin")
    }

    /// The stand-in itself.
    pub fn standin(&self) -> PathBuf {
        self.standin_dir().join("scp")
    }

    /// The log directory the tests point SCPTRACE_LOG_DIR at (not created).
    pub fn logs(&self) -> PathBuf {
        self.path().join("logs")
    }

    /// `rel` inside the sandbox.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    /// A command with an isolated environment (see [`command`]).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        command(program, self.path())
    }

    /// [`Sandbox::command`] run in the sandbox, with `NO_COLOR=1` (the
    /// hardening tests' commands).
    pub fn command_in(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = self.command(program);
        c.env("NO_COLOR", "1").current_dir(self.path());
        c
    }

    /// `scp -O -S local-ssh ARGS` with the stand-in first on the "remote"
    /// PATH, tracing into `logs/` (override with `env`).
    pub fn scp_client(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = self.command_in(REAL_SCP);
        let path = format!(
            "{}:{}",
            self.standin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.arg("-O")
            .arg("-S")
            .arg(client("local-ssh"))
            .args(args)
            .env("LOCAL_SSH_PATH", path)
            .env("SCPTRACE_LOG_DIR", self.logs());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }
}

/// A command whose scptrace settings come only from what the test sets: no
/// SCPTRACE_* variable from the caller, config files looked up under `home`.
pub fn command(program: impl AsRef<OsStr>, home: &Path) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SCPTRACE_") {
            c.env_remove(k);
        }
    }
    c.env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".state"))
        .env("HOME", home)
        .env_remove("NO_COLOR");
    c
}

/// What a finished command did.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Finished {
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Fails the test unless the command exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "command failed: {:?}\nstderr:\n{}",
            self.status,
            self.stderr_text()
        );
        self
    }
}

/// What a command reads on stdin.
pub enum Input<'a> {
    Null,
    Bytes(&'a [u8]),
    File(&'a Path),
}

/// Runs `cmd` in a process group of its own, feeding `input` and collecting
/// stdout and stderr; kills the whole group and fails the test if it is not
/// done within `timeout`.
pub fn run(cmd: &mut Command, input: Input, timeout: Duration) -> Finished {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.process_group(0);
    let mut feed = None;
    match input {
        Input::Null => {
            cmd.stdin(Stdio::null());
        }
        Input::Bytes(b) => {
            cmd.stdin(Stdio::piped());
            feed = Some(b.to_vec());
        }
        Input::File(p) => {
            cmd.stdin(fs::File::open(p).unwrap());
        }
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let writer = feed.map(|b| {
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            // The program may stop reading early; that is its business.
            let _ = stdin.write_all(&b);
        })
    });
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    let status = wait_deadline(&mut child, timeout, cmd);
    let elapsed = start.elapsed();
    if let Some(w) = writer {
        let _ = w.join();
    }
    Finished {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        elapsed,
    }
}

/// Reads `r` to its end on a thread of its own.
pub fn reader<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// Waits for `child` (started in its own process group); on timeout kills
/// the group and fails the test.
pub fn wait_deadline(child: &mut Child, timeout: Duration, what: &dyn std::fmt::Debug) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            kill_group(child.id());
            let _ = child.wait();
            panic!("timed out after {timeout:?}: {what:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills a process group with SIGKILL.
pub fn kill_group(pgid: u32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// A running program driven step by step: write to its stdin, wait for
/// bytes on its stdout (each wait with a deadline).
pub struct Dialog {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
    err: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Dialog {
    /// Starts `cmd` (in its own process group) with piped stdio.
    pub fn start(cmd: &mut Command) -> Dialog {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let err = reader(child.stderr.take().unwrap());
        Dialog {
            stdin: child.stdin.take(),
            child,
            stdout: rx,
            pending: Vec::new(),
            err: Some(err),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes `bytes` to the program's stdin in one write call.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stdin.as_mut().unwrap().write_all(bytes).unwrap();
        self.stdin.as_mut().unwrap().flush().unwrap();
    }

    /// Closes the program's stdin.
    pub fn close(&mut self) {
        self.stdin = None;
    }

    /// Waits until the program has written exactly `want` next on stdout.
    pub fn expect(&mut self, want: &[u8]) {
        let got = self.read_within(want.len(), Duration::from_secs(20));
        assert_eq!(escape(&got), escape(want), "unexpected bytes on stdout");
    }

    /// The next `n` bytes on stdout (30 s at most).
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        self.read_within(n, Duration::from_secs(30))
    }

    /// Stdout up to and including the next newline.
    pub fn read_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        loop {
            let b = self.read_exact(1);
            line.extend_from_slice(&b);
            if b == b"\n" {
                return line;
            }
        }
    }

    /// The next `n` bytes on stdout; fails the test if they take longer than `limit`.
    fn read_within(&mut self, n: usize, limit: Duration) -> Vec<u8> {
        let deadline = Instant::now() + limit;
        while self.pending.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(b) => self.pending.extend_from_slice(&b),
                Err(e) => panic!(
                    "waiting for {n} bytes on stdout: {e:?}; got {} bytes, ending {:?}",
                    self.pending.len(),
                    escape(&self.pending[self.pending.len().saturating_sub(64)..])
                ),
            }
        }
        self.pending.drain(..n).collect()
    }

    /// Everything else the program writes on stdout until EOF.
    pub fn rest_of_stdout(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.pending);
        while let Ok(b) = self.stdout.recv_timeout(DEADLINE) {
            v.extend_from_slice(&b);
        }
        v
    }

    /// Closes stdin, waits for the exit (with a deadline) and returns the
    /// status and what was written to stderr.
    pub fn finish(mut self) -> (ExitStatus, Vec<u8>) {
        self.close();
        self.wait()
    }

    /// Waits for the exit (with a deadline) with stdin still open, and
    /// returns the status and what was written to stderr.
    pub fn wait(mut self) -> (ExitStatus, Vec<u8>) {
        let st = wait_deadline(&mut self.child, DEADLINE, &"dialog");
        let err = self.err.take().unwrap().join().unwrap();
        (st, err)
    }

    /// Waits for the exit with `wait` (stdin left as it is) and returns the
    /// status, the rest of stdout and stderr.
    pub fn wait_using(
        mut self,
        wait: impl FnOnce(&mut Child) -> ExitStatus,
    ) -> (ExitStatus, Vec<u8>, Vec<u8>) {
        let st = wait(&mut self.child);
        let out = self.rest_of_stdout();
        let err = self.err.take().unwrap().join().unwrap();
        (st, out, err)
    }
}

impl Drop for Dialog {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill_group(self.child.id());
            let _ = self.child.wait();
        }
    }
}

/// The pids of `pid`'s children (from /proc, all threads).
pub fn children(pid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = fs::read_to_string(t.path().join("children")) {
                v.extend(s.split_whitespace().map(|x| x.parse::<u32>().unwrap()));
            }
        }
    }
    v
}

/// Waits until `pid` has exactly one child and returns it.
pub fn wait_for_child(pid: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = children(pid);
        if c.len() == 1 {
            return c[0];
        }
        assert!(Instant::now() < deadline, "{pid} has children {c:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------- transcripts

/// Escapes bytes the way transcripts do (design §3).
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            0 => s.push_str("\\0"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// Reverses [`escape`]; fails the test on anything `escape` never writes.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        assert!(
            (0x20..=0x7e).contains(&c),
            "raw byte {c:#04x} in escaped text {s:?}"
        );
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *b
            .get(i + 1)
            .unwrap_or_else(|| panic!("lone \\ at the end of {s:?}"));
        i += 2;
        out.push(match e {
            b'\\' => b'\\',
            b'0' => 0,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'x' => {
                let h = s.get(i..i + 2).unwrap_or_else(|| panic!("short \\x in {s:?}"));
                assert!(
                    h.bytes().all(|d| matches!(d, b'0'..=b'9' | b'a'..=b'f')),
                    "bad \\x{h} in {s:?}"
                );
                let v = u8::from_str_radix(h, 16).unwrap();
                assert!(
                    !(0x20..=0x7e).contains(&v) || v == b'\\',
                    "printable byte written as \\x{h}"
                );
                i += 2;
                v
            }
            _ => panic!("unknown escape \\{} in {s:?}", e as char),
        });
    }
    out
}

/// A transcript read back: the `# key: value` header and the lines after it,
/// the file's bytes, and (from [`Transcript::parse`]) its events as the
/// library's parser reads them.
#[derive(Debug)]
pub struct Transcript {
    pub path: PathBuf,
    pub header: Vec<(String, String)>,
    pub body: Vec<String>,
    /// The whole file.
    pub text: Vec<u8>,
    /// The events, from [`Transcript::parse`] only (empty from `read`).
    pub events: Vec<Event>,
}

impl Transcript {
    /// Reads a transcript as text: it must be UTF-8 and end with a newline.
    pub fn read(path: &Path) -> Transcript {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let text = String::from_utf8(bytes.clone())
            .unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display()));
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} does not end with a newline",
            path.display()
        );
        let (header, body) = split_header(&text);
        Transcript {
            path: path.to_path_buf(),
            header,
            body,
            text: bytes,
            events: Vec::new(),
        }
    }

    /// Reads a transcript through the library's parser: the parse must
    /// succeed (every line whole and well-formed) or the test fails.
    pub fn parse(path: &Path) -> Transcript {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let events = parse_text(&bytes)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}\n{}", path.display(), tail(&bytes)))
            .into_iter()
            .map(|p| p.event)
            .collect();
        let (header, body) = split_header(&String::from_utf8_lossy(&bytes));
        Transcript {
            path: path.to_path_buf(),
            header,
            body,
            text: bytes,
            events,
        }
    }

    pub fn header(&self, key: &str) -> Option<&str> {
        self.header
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The body lines without their annotations (the part before a TAB).
    pub fn bare(&self) -> Vec<&str> {
        self.body
            .iter()
            .map(|l| l.split_once('\t').map_or(l.as_str(), |(a, _)| a))
            .collect()
    }

    /// The bytes of one stream (`'I'`, `'O'` or `'E'`), unescaped and joined.
    pub fn stream(&self, tag: char) -> Vec<u8> {
        let prefix = format!("{tag}: ");
        let mut v = Vec::new();
        for l in self.bare() {
            if let Some(rest) = l.strip_prefix(&prefix) {
                v.extend(unescape(rest));
            }
        }
        v
    }

    /// The `>>> New command invocation: ` line's text.
    pub fn invocation(&self) -> &str {
        let first = self.body.first().map(String::as_str).unwrap_or("");
        first
            .strip_prefix(">>> New command invocation: ")
            .unwrap_or_else(|| panic!("first line after the header is {first:?}"))
    }

    /// The `#: N` line's N, which must be the last line (the last event,
    /// for a parsed transcript).
    pub fn exit(&self) -> i32 {
        if !self.events.is_empty() {
            return match self.events.last().map(|e| &e.entry) {
                Some(Entry::Exit(n)) => *n,
                other => panic!(
                    "{}: does not end with `#: N` but {other:?}\n{}",
                    self.path.display(),
                    tail(&self.text)
                ),
            };
        }
        let last = self.body.last().map(String::as_str).unwrap_or("");
        last.strip_prefix("#: ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}: last line is {last:?}, not `#: N`", self.path.display()))
    }

    /// All lines of the file, header included.
    pub fn lines(&self) -> Vec<&str> {
        std::str::from_utf8(&self.text)
            .expect("a transcript is ASCII")
            .lines()
            .collect()
    }

    pub fn has_line(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.lines().into_iter().any(pred)
    }

    /// The invocation lines' texts (parsed transcripts).
    pub fn invocations(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match &e.entry {
                Entry::Invocation(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The `!!` lines' texts (parsed transcripts).
    /// The `!!` lines: violations (`name: sentence`) and tracing problems.
    pub fn problems(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match &e.entry {
                Entry::Problem(s) => Some(s.clone()),
                Entry::StoredViolation { name, text } => Some(format!("{name}: {text}")),
                _ => None,
            })
            .collect()
    }

    /// Total bytes of file data in data frames, shown or not (parsed transcripts).
    pub fn data_bytes(&self) -> u64 {
        self.events
            .iter()
            .filter_map(|e| match &e.entry {
                Entry::Bytes(b) if b.kind == Kind::Data => Some(b.len),
                _ => None,
            })
            .sum()
    }
}

/// The `# key: value` lines at the top of a transcript, and the lines after.
fn split_header(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut header = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next_if(|l| l.starts_with("# ")) {
        let (k, v) = l[2..]
            .split_once(": ")
            .unwrap_or_else(|| panic!("bad header line {l:?}"));
        header.push((k.to_string(), v.to_string()));
    }
    (header, lines.map(str::to_string).collect())
}

/// The end of a text (its last lines, at most 2 KiB), for failure messages.
pub fn tail(text: &[u8]) -> String {
    let s = String::from_utf8_lossy(&text[text.len().saturating_sub(2048)..]).into_owned();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

/// The regular files in `dir`, sorted by name.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

// ---------------------------------------------------------------- file trees

/// Deterministic pseudo-random bytes (xorshift64*), fast enough for 50 MiB.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Sets a file's or directory's atime and mtime to `secs` after the epoch.
pub fn set_time(path: &Path, secs: u64) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    let f = fs::File::open(path).unwrap();
    f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t))
        .unwrap();
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes a file with the given mode and times.
pub fn put(path: &Path, bytes: &[u8], mode: u32, secs: u64) {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(path, bytes).unwrap();
    set_mode(path, mode);
    set_time(path, secs);
}

/// The name with a UTF-8 character outside ASCII in the sample tree.
pub const UTF8_NAME: &str = "grüße ✓ ünïcødé.txt";

/// Builds the sample tree under `root` (created): nested directories, an
/// empty directory, an empty file, a name with a space, a UTF-8 name, a file
/// holding all 256 byte values, modes 0600/0700/0755, fixed whole-second
/// times (so that `scp -p` can reproduce them exactly). One `put` per case:
/// the repeats are the data.
pub fn sample_tree(root: &Path) {
    fs::create_dir_all(root).unwrap();
    let all: Vec<u8> = (0..=255u8).collect();
    put(&root.join("empty"), b"", 0o644, 1_000_000_001);
    put(
        &root.join("with space.txt"),
        b"a name with a space\n",
        0o644,
        1_000_000_002,
    );
    put(
        &root.join(UTF8_NAME),
        "ünïcødé cöntent\n".as_bytes(),
        0o644,
        1_000_000_003,
    );
    put(&root.join("all-bytes.bin"), &all, 0o644, 1_000_000_004);
    put(&root.join("secret"), b"0600\n", 0o600, 1_000_000_005);
    put(
        &root.join("run.sh"),
        b"#!/bin/sh\necho 0755\n",
        0o755,
        1_000_000_006,
    );
    put(
        &root.join("private/key"),
        b"0700 dir, 0600 file\n",
        0o600,
        1_000_000_007,
    );
    put(&root.join("private/tool"), b"0700 file\n", 0o700, 1_000_000_008);
    put(
        &root.join("nested/deeper/deepest/leaf.txt"),
        b"leaf\n",
        0o644,
        1_000_000_009,
    );
    put(
        &root.join("nested/deeper/mid.bin"),
        &random_bytes(70_000, 7),
        0o644,
        1_000_000_010,
    );
    put(
        &root.join("nested/top.txt"),
        b"line one\r\nline\ttwo\\\0\n",
        0o644,
        1_000_000_011,
    );
    fs::create_dir(root.join("empty-dir")).unwrap();
    fs::create_dir(root.join("nested/empty too")).unwrap();
    // Directories last, deepest first: their times change as entries appear.
    for (d, mode, t) in [
        ("nested/empty too", 0o755, 1_000_000_100),
        ("nested/deeper/deepest", 0o755, 1_000_000_101),
        ("nested/deeper", 0o755, 1_000_000_102),
        ("nested", 0o755, 1_000_000_103),
        ("private", 0o700, 1_000_000_104),
        ("empty-dir", 0o755, 1_000_000_105),
        ("", 0o755, 1_000_000_106),
    ] {
        let p = root.join(d);
        set_mode(&p, mode);
        set_time(&p, t);
    }
}

/// One entry of a tree snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub mode: u32,
    /// (seconds, nanoseconds)
    pub mtime: (i64, i64),
}

#[derive(Clone, PartialEq, Eq)]
pub enum NodeKind {
    File(Vec<u8>),
    Dir,
    Symlink(PathBuf),
    Other,
}

impl std::fmt::Debug for NodeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeKind::File(b) if b.len() > 64 => write!(f, "File({} bytes)", b.len()),
            NodeKind::File(b) => write!(f, "File({:?})", escape(b)),
            NodeKind::Dir => write!(f, "Dir"),
            NodeKind::Symlink(p) => write!(f, "Symlink({p:?})"),
            NodeKind::Other => write!(f, "Other"),
        }
    }
}

/// Everything under `root` (relative paths, `""` is the root itself):
/// kinds, permission bits, mtimes, and file contents. All metadata is taken
/// before any file is read, so reading cannot disturb it.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut metas = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        // root.join("") would add a trailing slash, wrong for a file root.
        let p = if rel.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let m = fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
        }
        metas.insert(rel, m);
    }
    metas
        .into_iter()
        .map(|(rel, m)| {
            let p = if rel.as_os_str().is_empty() {
                root.to_path_buf()
            } else {
                root.join(&rel)
            };
            let kind = if m.file_type().is_symlink() {
                NodeKind::Symlink(fs::read_link(&p).unwrap())
            } else if m.is_dir() {
                NodeKind::Dir
            } else if m.is_file() {
                NodeKind::File(fs::read(&p).unwrap())
            } else {
                NodeKind::Other
            };
            let node = Node {
                kind,
                mode: m.mode() & 0o7777,
                mtime: (m.mtime(), m.mtime_nsec()),
            };
            (rel, node)
        })
        .collect()
}

/// Fails unless the two snapshots hold the same paths, kinds, contents and
/// modes, and (if `mtimes`) the same mtimes, except for the root and
/// top-level directories; names the differences.
pub fn assert_same_tree(a: &BTreeMap<PathBuf, Node>, b: &BTreeMap<PathBuf, Node>, mtimes: bool, what: &str) {
    let mut diffs = Vec::new();
    for (p, na) in a {
        match b.get(p) {
            None => diffs.push(format!("{p:?}: only in the first")),
            Some(nb) => {
                if na.kind != nb.kind {
                    diffs.push(format!("{p:?}: {:?} vs {:?}", na.kind, nb.kind));
                }
                if na.mode != nb.mode {
                    diffs.push(format!("{p:?}: mode {:04o} vs {:04o}", na.mode, nb.mode));
                }
                // The root and its top-level directories change as the
                // test works in them; their times are not the transfer's.
                let top_dir = na.kind == NodeKind::Dir && p.components().count() <= 1;
                if mtimes && !top_dir && na.mtime != nb.mtime {
                    diffs.push(format!("{p:?}: mtime {:?} vs {:?}", na.mtime, nb.mtime));
                }
            }
        }
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        diffs.push(format!("{p:?}: only in the second"));
    }
    assert!(diffs.is_empty(), "{what}: trees differ:\n{}", diffs.join("\n"));
}

/// A snapshot of a subtree, re-rooted (keys relative to `root.join(sub)`).
pub fn snapshot_of(root: &Path, sub: &str) -> BTreeMap<PathBuf, Node> {
    snapshot(&root.join(sub))
}

/// Whether a wait status is death by `sig`.
pub fn killed_by(st: &ExitStatus, sig: i32) -> bool {
    st.signal() == Some(sig)
}

// ---------------------------------------------------------------- control characters

/// Whether `c` must never come out raw (docs/security.md): C0 (TAB and LF
/// included), DEL, C1, the bidirectional controls and U+2028/U+2029. The
/// test's own copy of the rule, not the library's.
pub fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

/// Fails if `out` holds a raw control character (see [`is_control`]) or is
/// not UTF-8. Allowed: the newline that ends a line; one TAB per line where
/// an annotation starts (`# ` follows, after colour); and with `sgr` an ESC
/// that starts a colour sequence `ESC [ digits;… m`.
pub fn assert_no_raw_controls(out: &[u8], sgr: bool, what: &str) {
    let text = std::str::from_utf8(out).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    // The length of the colour sequence starting at `at`, if one does.
    let sgr_len = |at: &str| {
        let body = at.strip_prefix("\x1b[")?;
        let end = body.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
        (body[end..].starts_with('m')).then_some(2 + end + 1)
    };
    for (no, line) in text.split('\n').enumerate() {
        let mut tabs = 0;
        let mut i = 0;
        while let Some(c) = line[i..].chars().next() {
            let rest = &line[i..];
            if c == '\x1b' && sgr {
                let n = sgr_len(rest).unwrap_or_else(|| {
                    panic!("{what}: line {}: an ESC that starts no colour: {rest:?}", no + 1)
                });
                i += n;
                continue;
            }
            if c == '\t' {
                tabs += 1;
                let mut after = &rest[1..];
                while sgr && let Some(n) = sgr_len(after) {
                    after = &after[n..];
                }
                assert!(
                    tabs == 1 && after.starts_with("# "),
                    "{what}: line {}: a TAB that starts no annotation: {line:?}",
                    no + 1
                );
            } else {
                assert!(
                    !is_control(c),
                    "{what}: line {}: raw U+{:04X} at column {i}: {line:?}",
                    no + 1,
                    c as u32
                );
            }
            i += c.len_utf8();
        }
    }
}
