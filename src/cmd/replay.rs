//! `scptrace replay`: play the peer's side of a recorded session against a
//! fresh real scp and report the first point where its replies differ.
//!
//! The recording is read back (text or JSON Lines) into a script: each `I:`
//! line is something to send, each `O:` line something to expect, and
//! `>>> stdin closed` the point where the peer closed its side. A message is
//! sent only once every `O:` byte recorded before it has arrived, as the peer
//! waited for those acks; arriving bytes are compared as they come, as one
//! stream per direction, so how the real scp splits its writes does not
//! matter. `--timeout` bounds each wait for progress.
//!
//! File data that the recording does not hold in full (`--data head` or
//! `none`) is sent as its recorded head followed by synthetic filler up to the
//! recorded size, and expected output data past its recorded head is
//! compared by count only; the report says so.
//!
//! Exit status: 0 when the real scp answered as recorded, 1 when it did not,
//! 2 when the replay could not be run.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::cli::ReplayArgs;
use crate::config::{Flags, Settings};
use crate::fdio;
use crate::paths;
use crate::protocol::scp::Msg;
use crate::shell::{shell_join, shell_split};
use crate::tap::child;
use crate::transcript::read::{ReadError, read_transcript_numbered};
use crate::transcript::{Bytes, Decoded, Entry, Event, Kind, Stream, text};

/// Exit status when the replay could not be run at all.
const CANNOT_RUN: i32 = 2;

pub fn run(args: ReplayArgs) -> Result<i32> {
    match replay(&args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("scptrace: replay: {e:#}");
            Ok(CANNOT_RUN)
        }
    }
}

// ---- the recording ----

/// One event of the recording, with its line number in the file.
struct Line {
    no: u64,
    event: Event,
}

struct Recording {
    name: String,
    lines: Vec<Line>,
}

fn load(path: &Path) -> Result<Recording> {
    let mut lines = Vec::new();
    read_transcript_numbered(path, |no, p| {
        lines.push(Line { no, event: p.event });
        Ok(())
    })
    .map_err(|e| match e {
        ReadError::Io(e) => anyhow!("cannot read {}: {e}", path.display()),
        // `line N: reason`
        ReadError::Parse(e) => anyhow!("{e}"),
        ReadError::Output(e) => anyhow!(e),
    })?;
    let name = path.display().to_string();
    if !lines.iter().any(|l| matches!(l.event.entry, Entry::Bytes(_))) {
        bail!("{name}: the transcript holds no I: or O: bytes to replay");
    }
    Ok(Recording { name, lines })
}

impl Recording {
    fn invocation(&self) -> Option<&str> {
        self.lines.iter().find_map(|l| match &l.event.entry {
            Entry::Invocation(text) => Some(text.as_str()),
            _ => None,
        })
    }

    fn exit(&self) -> Option<i32> {
        self.lines.iter().rev().find_map(|l| match l.event.entry {
            Entry::Exit(code) => Some(code),
            _ => None,
        })
    }

    fn bytes(&self, idx: usize) -> &Bytes {
        match &self.lines[idx].event.entry {
            Entry::Bytes(b) => b,
            _ => unreachable!("script steps point at bytes lines"),
        }
    }
}

/// The scp server command of an invocation line, without its program: the
/// line's own arguments when its program is scp, else (an ssh leg of an
/// older `record`) the remote command in its last argument.
fn scp_command(invocation: &str) -> Option<Vec<OsString>> {
    let words = shell_split(invocation.as_bytes())?;
    let is_scp = |w: &[u8]| Path::new(OsStr::from_bytes(w)).file_name() == Some(OsStr::new("scp"));
    let words = if words.first().is_some_and(|w| is_scp(w)) {
        words
    } else {
        let inner = shell_split(words.last()?)?;
        inner.first().is_some_and(|w| is_scp(w)).then_some(inner)?
    };
    Some(words[1..].iter().map(|w| OsString::from_vec(w.clone())).collect())
}

/// What to run for the replay.
struct Command {
    program: PathBuf,
    argv0: OsString,
    args: Vec<OsString>,
}

impl Command {
    fn text(&self) -> String {
        let mut argv = vec![self.program.as_os_str().as_bytes()];
        argv.extend(self.args.iter().map(|a| a.as_bytes()));
        shell_join(&argv)
    }
}

fn find_program(word: &OsStr) -> Result<PathBuf> {
    if word.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(word));
    }
    if word == "scp" {
        return Ok(crate::tap::standin::find_real_scp(&Settings::load(Flags::default()))?.path);
    }
    paths::find_on_path(word).with_context(|| format!("{}: not found on PATH", word.to_string_lossy()))
}

fn command(rec: &Recording, args: &ReplayArgs) -> Result<Command> {
    let recorded = || -> Result<Vec<OsString>> {
        let inv = rec
            .invocation()
            .with_context(|| format!("{}: no `>>> New command invocation:` line", rec.name))?;
        let mut words = scp_command(inv).with_context(|| {
            format!(
                "{}: cannot find an scp command in the invocation line ({inv}); give one after --",
                rec.name
            )
        })?;
        if let Some(t) = &args.target {
            let n = words.len();
            match n {
                1.. if crate::protocol::scp::Options::from_scp_args(&words[..n - 1]).is_some() => {
                    words[n - 1] = t.clone().into_os_string()
                }
                _ => bail!(
                    "{}: the recorded command ({inv}) has no path to replace with --target",
                    rec.name
                ),
            }
        }
        Ok(words)
    };
    match args.command.split_first() {
        Some((prog, rest)) if !rest.is_empty() => {
            if args.target.is_some() {
                bail!("--target replaces the recorded path; with PROGRAM ARGS given, put the path in ARGS");
            }
            Ok(Command {
                program: find_program(prog)?,
                argv0: prog.clone(),
                args: rest.to_vec(),
            })
        }
        Some((prog, _)) => Ok(Command {
            program: find_program(prog)?,
            argv0: prog.clone(),
            args: recorded()?,
        }),
        None => Ok(Command {
            program: find_program(OsStr::new("scp"))?,
            argv0: "scp".into(),
            args: recorded()?,
        }),
    }
}

// ---- the script ----

#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// Send the `I:` bytes of this line.
    Send(usize),
    /// Expect the `O:` bytes of this line.
    Expect(usize),
    /// The peer closed scp's stdin here.
    CloseIn(usize),
}

fn script(rec: &Recording) -> Vec<Step> {
    let mut steps = Vec::new();
    for (i, l) in rec.lines.iter().enumerate() {
        match &l.event.entry {
            Entry::Bytes(b) if b.len == 0 => {}
            Entry::Bytes(b) if b.stream == Stream::In => steps.push(Step::Send(i)),
            Entry::Bytes(b) if b.stream == Stream::Out => steps.push(Step::Expect(i)),
            Entry::Closed(Stream::In) if !steps.iter().any(|s| matches!(s, Step::CloseIn(_))) => {
                steps.push(Step::CloseIn(i))
            }
            _ => {}
        }
    }
    steps
}

/// Files whose data lines hold a different count than their final line's
/// annotation gives (`data of "a", 21 B`): a transcript that lost bytes, or
/// one edited by hand. Each as (line index, name, bytes held, size).
fn short_data(rec: &Recording) -> Vec<(usize, String, u64, u64)> {
    let mut found = Vec::new();
    let mut held = [0u64; 3];
    for (i, l) in rec.lines.iter().enumerate() {
        let Entry::Bytes(b) = &l.event.entry else { continue };
        let slot = b.stream as usize;
        if b.kind != Kind::Data {
            held[slot] = 0;
            continue;
        }
        held[slot] += b.len;
        let Some(Decoded::Scp(Msg::Data { name, seen, .. })) = b.msg() else {
            continue;
        }; // a part: more follows
        if held[slot] != *seen {
            found.push((i, crate::escape::escape(name), held[slot], *seen));
        }
        held[slot] = 0;
    }
    found
}

/// Filler for file contents the recording does not hold.
const FILLER: &[u8] = b"scptrace replay: synthetic contents\n";

/// Bytes of one `I:` line on their way to scp's stdin.
struct Outgoing {
    head: Vec<u8>,
    total: u64,
    sent: u64,
}

impl Outgoing {
    fn new(b: &Bytes) -> Outgoing {
        Outgoing {
            head: b.bytes.clone(),
            total: b.len.max(b.bytes.len() as u64),
            sent: 0,
        }
    }

    fn done(&self) -> bool {
        self.sent >= self.total
    }

    /// The next bytes to write, at most `buf.len()`.
    fn fill<'a>(&self, buf: &'a mut [u8]) -> &'a [u8] {
        let n = (self.total - self.sent).min(buf.len() as u64) as usize;
        for (k, slot) in buf[..n].iter_mut().enumerate() {
            let pos = self.sent as usize + k;
            *slot = match self.head.get(pos) {
                Some(&b) => b,
                None => FILLER[pos % FILLER.len()],
            };
        }
        &buf[..n]
    }
}

// ---- comparing the real output with the recorded one ----

/// One recorded `O:` line: `shown` bytes to compare, `len` bytes in all.
struct Seg {
    idx: usize,
    shown: Vec<u8>,
    len: u64,
}

/// Where the real output first left the recording.
#[derive(Debug, Clone, Copy)]
struct Diverged {
    seg: usize,
    off: u64,
}

/// Most real output kept for the report after the divergence.
const KEEP_AFTER: usize = 64 * 1024;

/// Compares the real scp's stdout, as it arrives, with the recorded `O:`
/// lines known so far; bytes beyond them wait in `extra` for the next ones.
#[derive(Default)]
struct Matcher {
    segs: Vec<Seg>,
    cur: usize,
    off: u64,
    extra: Vec<u8>,
    diverged: Option<Diverged>,
    /// Real bytes from the divergence on (the matched part of its line excluded).
    after: Vec<u8>,
    /// The replayed conversation so far, for the report.
    log: Vec<Item>,
    matched: usize,
}

impl Matcher {
    fn caught_up(&self) -> bool {
        self.diverged.is_none() && self.cur == self.segs.len()
    }

    fn push(&mut self, seg: Seg) {
        self.segs.push(seg);
        if !self.extra.is_empty() {
            let held = std::mem::take(&mut self.extra);
            self.feed(&held);
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.diverged.is_some() {
                let room = KEEP_AFTER.saturating_sub(self.after.len());
                self.after.extend_from_slice(&data[..data.len().min(room)]);
                return;
            }
            let Some(seg) = self.segs.get(self.cur) else {
                self.extra.extend_from_slice(data);
                return;
            };
            let off = self.off as usize;
            if off < seg.shown.len() {
                // Compare the shown part byte for byte.
                let want = &seg.shown[off..];
                let n = want.len().min(data.len());
                if let Some(k) = (0..n).find(|&k| want[k] != data[k]) {
                    self.off += k as u64;
                    self.diverged = Some(Diverged {
                        seg: self.cur,
                        off: self.off,
                    });
                    data = &data[k..];
                    continue;
                }
                self.off += n as u64;
                data = &data[n..];
            } else {
                // Past the recorded head of file data: count only.
                let n = (seg.len - self.off).min(data.len() as u64);
                self.off += n;
                data = &data[n as usize..];
            }
            if self.off >= self.segs[self.cur].len {
                self.finish_seg();
            }
        }
    }

    fn finish_seg(&mut self) {
        self.log.push(Item::Recorded(self.segs[self.cur].idx));
        self.cur += 1;
        self.off = 0;
        self.matched += 1;
    }
}

/// A line of the replayed conversation in the report.
enum Item {
    /// Sent or received exactly as this recorded line says.
    Recorded(usize),
    /// Something the recording does not have.
    Real(Entry),
}

// ---- the live scp ----

/// Why a wait ended without what it waited for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    /// The real output left the recording.
    Diverged,
    /// The real scp closed its stdout while more was expected.
    OutClosed,
    /// No progress within the timeout.
    TimedOut,
    /// The real scp stopped reading its stdin.
    InClosed,
}

/// The real scp, its pipes (non-blocking), and what came back so far.
struct Live {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    err_buf: Vec<u8>,
    m: Matcher,
    timeout: Duration,
    status: Option<ExitStatus>,
    /// Bytes read from stdout and stderr, to notice silence.
    read_total: u64,
    /// The real scp closed its stdout.
    out_eof: bool,
    /// It had to be killed at the end.
    killed: bool,
}

/// Most stderr kept for the report.
const KEEP_STDERR: usize = 16 * 1024;

/// Reads what is there from a non-blocking pipe into `f`; `false` at EOF or
/// on an error (either way the pipe is done).
fn read_ready(r: &mut impl Read, mut f: impl FnMut(&[u8])) -> bool {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => f(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

impl Live {
    fn spawn(cmd: &Command, timeout: Duration) -> Result<Live> {
        let sp = child::spawn(&cmd.program, &cmd.argv0, &cmd.args)
            .with_context(|| format!("cannot run {}", cmd.program.display()))?;
        fdio::set_nonblocking(&sp.stdin)?;
        fdio::set_nonblocking(&sp.stdout)?;
        fdio::set_nonblocking(&sp.stderr)?;
        Ok(Live {
            child: sp.child,
            stdin: Some(sp.stdin),
            stdout: Some(sp.stdout),
            stderr: Some(sp.stderr),
            err_buf: Vec::new(),
            m: Matcher::default(),
            timeout,
            status: None,
            read_total: 0,
            out_eof: false,
            killed: false,
        })
    }

    /// Moves bytes (reading stdout and stderr, writing `out` if given) until
    /// `done` holds and `out` is written, or a [`Stop`].
    fn pump(&mut self, mut out: Option<&mut Outgoing>, done: &dyn Fn(&Live) -> bool) -> Result<(), Stop> {
        let mut deadline = Instant::now() + self.timeout;
        let mut wbuf = vec![0u8; 64 * 1024];
        loop {
            if self.m.diverged.is_some() {
                return Err(Stop::Diverged);
            }
            let writing = out.as_ref().is_some_and(|o| !o.done());
            if !writing && done(self) {
                return Ok(());
            }
            if writing && self.stdin.is_none() {
                return Err(Stop::InClosed);
            }
            if !writing && self.stdout.is_none() {
                return Err(Stop::OutClosed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Stop::TimedOut);
            }
            let (r_out, r_err, r_in) = {
                use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
                let mut fds = Vec::with_capacity(3);
                if let Some(s) = &self.stdout {
                    fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
                }
                if let Some(s) = &self.stderr {
                    fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
                }
                if let (true, Some(s)) = (writing, &self.stdin) {
                    fds.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
                }
                let ms = (deadline - now).as_millis().min(60_000) as u16;
                // EINTR: just look again.
                let _ = poll(&mut fds, PollTimeout::from(ms.max(1)));
                let ready = |i: usize| {
                    fds.get(i)
                        .and_then(|f| f.revents())
                        .is_some_and(|r| !r.is_empty())
                };
                let mut i = 0;
                let r_out = self.stdout.is_some() && {
                    i += 1;
                    ready(i - 1)
                };
                let r_err = self.stderr.is_some() && {
                    i += 1;
                    ready(i - 1)
                };
                (r_out, r_err, writing && self.stdin.is_some() && ready(i))
            };
            let before = self.read_total;
            self.read_pipes(r_out, r_err);
            let mut progress = self.read_total != before || (r_out && self.stdout.is_none());
            if r_in && let (Some(o), Some(s)) = (out.as_deref_mut(), self.stdin.as_mut()) {
                match s.write(o.fill(&mut wbuf)) {
                    Ok(n) => {
                        o.sent += n as u64;
                        progress = true;
                    }
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                    // EPIPE and the like: scp closed its stdin (it exited, or gave up).
                    Err(_) => {
                        self.stdin = None;
                        return Err(Stop::InClosed);
                    }
                }
            }
            if progress {
                deadline = Instant::now() + self.timeout;
            }
        }
    }

    /// Gathers what the real scp still says until it has been quiet for
    /// `quiet` (for the report), then makes sure it has ended and records
    /// its status: one that still runs after another `quiet` is killed.
    fn finish(&mut self, quiet: Duration) {
        let give_up = Instant::now() + quiet * 20;
        while (self.stdout.is_some() || self.stderr.is_some()) && Instant::now() < give_up {
            let before = self.read_total;
            self.collect_once(quiet);
            if self.read_total == before && (self.stdout.is_some() || self.stderr.is_some()) {
                break;
            }
        }
        let deadline = Instant::now() + quiet;
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    self.status = Some(st);
                    return;
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => break,
            }
        }
        // Still running (waiting for input that will not come): end it.
        let _ = self.child.kill();
        self.status = self.child.wait().ok();
        self.killed = true;
    }

    /// One round of reading whatever stdout and stderr have, waiting up to
    /// `quiet` for something to arrive.
    fn collect_once(&mut self, quiet: Duration) {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        {
            let mut fds = Vec::new();
            for s in [
                self.stdout.as_ref().map(|s| s.as_fd()),
                self.stderr.as_ref().map(|s| s.as_fd()),
            ]
            .into_iter()
            .flatten()
            {
                fds.push(PollFd::new(s, PollFlags::POLLIN));
            }
            let ms = quiet.as_millis().min(60_000) as u16;
            let _ = poll(&mut fds, PollTimeout::from(ms.max(1)));
        }
        self.read_pipes(true, true);
    }

    /// Reads whatever the ready pipes hold: stdout into the matcher, stderr
    /// into `err_buf`.
    fn read_pipes(&mut self, out: bool, err: bool) {
        let total = &mut self.read_total;
        if out && let Some(s) = self.stdout.as_mut() {
            let m = &mut self.m;
            if !read_ready(s, |b| {
                *total += b.len() as u64;
                m.feed(b);
            }) {
                self.stdout = None;
                self.out_eof = true;
            }
        }
        if err && let Some(s) = self.stderr.as_mut() {
            let keep = &mut self.err_buf;
            if !read_ready(s, |b| {
                *total += b.len() as u64;
                let room = KEEP_STDERR.saturating_sub(keep.len());
                keep.extend_from_slice(&b[..b.len().min(room)]);
            }) {
                self.stderr = None;
            }
        }
    }
}

// ---- the replay and its report ----

/// The first difference found.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Diff {
    /// The real bytes differ from recorded `O:` segment `seg`.
    Bytes { seg: usize, off: u64 },
    /// The real scp ended its output (`OutClosed`) or went quiet
    /// (`TimedOut`) where segment `seg` was expected.
    Missing { seg: usize, off: u64, why: Stop },
    /// The real scp did not take `I:` line `line` within the timeout.
    Stalled { line: usize },
    /// The real scp sent more than the recording has.
    Extra,
    /// All replies matched, but the real scp did not end its output.
    NoEnd,
    /// All replies matched, but the exit status differs.
    Exit { recorded: i32 },
}

/// How a replay went, for the report.
struct Outcome {
    diff: Option<Diff>,
    sent: usize,
    to_send: usize,
    synthetic: Vec<usize>,
    /// Recorded `O:` data compared by count past its head.
    counted: usize,
    /// The `I:` line before which scp stopped reading its stdin.
    in_closed_at: Option<usize>,
}

fn replay(args: &ReplayArgs) -> Result<i32> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout needs a positive number of seconds");
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let rec = load(&args.file)?;
    let cmd = command(&rec, args)?;
    let steps = script(&rec);
    let mut live = Live::spawn(&cmd, timeout)?;
    let mut o = Outcome {
        diff: None,
        sent: 0,
        to_send: steps.iter().filter(|s| matches!(s, Step::Send(_))).count(),
        synthetic: Vec::new(),
        counted: 0,
        in_closed_at: None,
    };
    let missing = |live: &Live, why: Stop| match why {
        Stop::Diverged => {
            let d = live.m.diverged.expect("Diverged is only returned once diverged");
            Diff::Bytes {
                seg: d.seg,
                off: d.off,
            }
        }
        why => Diff::Missing {
            seg: live.m.cur,
            off: live.m.off,
            why,
        },
    };
    for &step in &steps {
        match step {
            Step::Expect(i) => {
                let b = rec.bytes(i);
                if b.len > b.bytes.len() as u64 {
                    o.counted += 1;
                }
                live.m.push(Seg {
                    idx: i,
                    shown: b.bytes.clone(),
                    len: b.len.max(b.bytes.len() as u64),
                });
            }
            Step::Send(i) | Step::CloseIn(i) => {
                // Wait for every reply recorded before this point.
                if let Err(why) = live.pump(None, &|l: &Live| l.m.caught_up()) {
                    o.diff = Some(missing(&live, why));
                    break;
                }
                if let Step::CloseIn(_) = step {
                    live.stdin = None;
                    live.m.log.push(Item::Recorded(i));
                    continue;
                }
                if live.stdin.is_none() {
                    continue; // scp stopped reading earlier; noted there
                }
                let b = rec.bytes(i);
                if b.len > b.bytes.len() as u64 {
                    o.synthetic.push(i);
                }
                live.m.log.push(Item::Recorded(i));
                let mut out = Outgoing::new(b);
                match live.pump(Some(&mut out), &|_: &Live| true) {
                    Ok(()) => o.sent += 1,
                    Err(Stop::InClosed) => {
                        o.in_closed_at = Some(i);
                        live.m.log.push(Item::Real(Entry::Note(format!(
                            "the real scp stopped reading its stdin after {} of {} B of this line",
                            out.sent, out.total
                        ))));
                    }
                    Err(Stop::TimedOut) => {
                        o.diff = Some(Diff::Stalled { line: i });
                        break;
                    }
                    Err(why) => {
                        o.diff = Some(missing(&live, why));
                        break;
                    }
                }
            }
        }
    }
    if o.diff.is_none()
        && let Err(why) = live.pump(None, &|l: &Live| l.m.caught_up())
    {
        o.diff = Some(missing(&live, why));
    }
    if o.diff.is_none() {
        // The peer's side is done: close it, as the recorded peer did at the
        // latest, and wait for scp to end its output.
        live.stdin = None;
        match live.pump(None, &|l: &Live| l.stdout.is_none()) {
            Ok(()) | Err(Stop::OutClosed) => {}
            Err(_) => o.diff = Some(Diff::NoEnd),
        }
        if !live.m.extra.is_empty() {
            o.diff = Some(Diff::Extra);
        }
        live.finish(timeout);
    } else {
        // What the real scp says after the difference, briefly, for the report.
        live.finish(timeout.min(Duration::from_millis(500)));
    }
    let real_exit = live.status.map(child::status_code);
    if o.diff.is_none()
        && let (Some(recorded), Some(real)) = (rec.exit(), real_exit)
        && recorded != real
    {
        o.diff = Some(Diff::Exit { recorded });
    }
    let report = render_report(&rec, &cmd, &live, &o);
    std::io::stdout()
        .write_all(report.as_bytes())
        .context("cannot write the report")?;
    Ok(if o.diff.is_some() { 1 } else { 0 })
}

/// Lines of context shown on each side of a difference.
const CONTEXT: usize = 3;
/// Longest line shown in a report.
const MAX_LINE: usize = 300;

fn render_entry(entry: &Entry) -> String {
    let mut line = Vec::new();
    text::render(
        &Event {
            t: 0.0,
            entry: entry.clone(),
        },
        false,
        &mut line,
    );
    let s = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line)).into_owned();
    if s.len() > MAX_LINE {
        let cut = (0..=MAX_LINE).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        format!("{}…", &s[..cut])
    } else {
        s
    }
}

fn bytes_entry(stream: Stream, bytes: &[u8]) -> Entry {
    Entry::Bytes(Bytes {
        stream,
        bytes: bytes.to_vec(),
        len: bytes.len() as u64,
        kind: Kind::Raw,
        note: None,
    })
}

/// Cuts real output into lines the way SCP messages end: after `\n`, and
/// after a `\0` that stands alone (an ack).
fn cut_messages(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || (b == 0 && i == start) {
            out.push(&bytes[start..=i]);
            start = i + 1;
        }
    }
    if start < bytes.len() {
        out.push(&bytes[start..]);
    }
    out
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn render_report(rec: &Recording, cmd: &Command, live: &Live, o: &Outcome) -> String {
    use std::fmt::Write as _;
    let mut r = String::new();
    let _ = writeln!(r, "replay of {} against: {}", rec.name, cmd.text());
    if !o.synthetic.is_empty() {
        let _ = writeln!(
            r,
            "note: the recording holds only part of the contents of {} I: data line(s) (--data head or none); they were sent as the recorded head followed by synthetic filler up to the recorded size",
            o.synthetic.len()
        );
    }
    if o.counted > 0 {
        let _ = writeln!(
            r,
            "note: {} O: data line(s) were compared by size past their recorded head",
            o.counted
        );
    }
    for (i, name, held, size) in short_data(rec) {
        let _ = writeln!(
            r,
            "note: line {}: the data lines of \"{name}\" hold {held} B, its annotation says {size} B: the transcript lacks bytes that passed (or was edited); replay sends what it holds",
            rec.lines[i].no
        );
    }
    if let Some(i) = o.in_closed_at {
        let _ = writeln!(
            r,
            "note: the real scp stopped reading its stdin at line {}",
            rec.lines[i].no
        );
    }
    let status = match (live.status.map(child::status_code), live.killed) {
        (_, true) => "still running at the end, killed".to_string(),
        (Some(c), _) => format!("exit status {c}"),
        (None, _) => "exit status unknown".to_string(),
    };
    let recorded_exit = rec
        .exit()
        .map(|c| format!("recorded {c}"))
        .unwrap_or_else(|| "none recorded".into());
    let summary = format!(
        "{} of {} I: messages sent, {} of {} O: replies matched; {status} ({recorded_exit})",
        o.sent,
        o.to_send,
        live.m.matched,
        rec.lines
            .iter()
            .filter(|l| matches!(&l.event.entry, Entry::Bytes(b) if b.stream == Stream::Out && b.len > 0))
            .count(),
    );
    let Some(diff) = o.diff else {
        let _ = writeln!(r, "the real scp answered as recorded");
        let _ = writeln!(r, "summary: {summary}");
        return r;
    };

    // Where in the recording, and what happened instead.
    let seg_line = |seg: usize| live.m.segs.get(seg).map(|s| s.idx);
    let last_bytes = rec
        .lines
        .iter()
        .rposition(|l| matches!(l.event.entry, Entry::Bytes(_)))
        .unwrap_or(rec.lines.len() - 1);
    let (at, what): (usize, String) = match diff {
        Diff::Bytes { seg, off } => (
            seg_line(seg).unwrap_or(last_bytes),
            format!("the real scp sent other bytes (from byte {off} of this line on)"),
        ),
        Diff::Missing { seg, off, why } => {
            let when = if off > 0 {
                format!("after {off} bytes of this line")
            } else {
                "instead of this line".to_string()
            };
            let how = match why {
                Stop::OutClosed => "closed its stdout".to_string(),
                _ => format!("sent nothing more for {} s", live.timeout.as_secs_f64()),
            };
            (
                seg_line(seg).unwrap_or(last_bytes),
                format!("the real scp {how} {when}"),
            )
        }
        Diff::Stalled { line } => (
            line,
            format!(
                "the real scp did not read this line within {} s",
                live.timeout.as_secs_f64()
            ),
        ),
        Diff::Extra => (
            last_bytes,
            format!(
                "the real scp sent {} B more than recorded after this line",
                live.m.extra.len()
            ),
        ),
        Diff::NoEnd => (
            last_bytes,
            format!(
                "the real scp did not close its stdout within {} s after the last recorded message",
                live.timeout.as_secs_f64()
            ),
        ),
        Diff::Exit { recorded } => (
            rec.lines
                .iter()
                .rposition(|l| l.event.entry == Entry::Exit(recorded))
                .unwrap_or(last_bytes),
            format!("the exit status differs: {status}, recorded {recorded}"),
        ),
    };
    if let Diff::Bytes { seg, .. } | Diff::Missing { seg, .. } = diff {
        let n = seg + 1;
        let _ = writeln!(
            r,
            "DIFFERENCE at line {} of {} (the {} O: reply): {what}",
            rec.lines[at].no,
            rec.name,
            ordinal(n)
        );
    } else {
        let _ = writeln!(
            r,
            "DIFFERENCE at line {} of {}: {what}",
            rec.lines[at].no, rec.name
        );
    }

    // The recording around that line (headers left out).
    let first = rec
        .lines
        .iter()
        .position(|l| !matches!(l.event.entry, Entry::Header { .. }))
        .unwrap_or(0);
    let _ = writeln!(r, "recorded:");
    let lo = at.saturating_sub(CONTEXT).max(first);
    let hi = (at + CONTEXT + 1).min(rec.lines.len());
    let width = rec.lines[hi - 1].no.to_string().len();
    for (i, l) in rec.lines.iter().enumerate().take(hi).skip(lo) {
        let mark = if i == at { ">" } else { " " };
        let _ = writeln!(r, "  {mark} {:>width$}  {}", l.no, render_entry(&l.event.entry));
    }

    // The replay: its last lines before the difference, then what differed.
    let _ = writeln!(r, "replayed:");
    let pad = " ".repeat(width);
    let mut tail: Vec<(bool, Entry)> = Vec::new();
    match diff {
        Diff::Bytes { seg, off } => {
            // The matched start of the line, then what came instead.
            let shown = live.m.segs.get(seg).map_or(&[][..], |s| &s.shown[..]);
            let mut real = shown[..(off as usize).min(shown.len())].to_vec();
            real.extend_from_slice(&live.m.after);
            for (k, piece) in cut_messages(&real).into_iter().enumerate().take(12) {
                tail.push((k == 0, bytes_entry(Stream::Out, piece)));
            }
        }
        Diff::Missing { seg, off, why } => {
            if off > 0 {
                let shown = live.m.segs.get(seg).map_or(&[][..], |s| &s.shown[..]);
                let got = &shown[..(off as usize).min(shown.len())];
                tail.push((false, bytes_entry(Stream::Out, got)));
            }
            tail.push((
                true,
                match why {
                    Stop::OutClosed => Entry::Closed(Stream::Out),
                    _ => Entry::Note(format!("nothing more within {} s", live.timeout.as_secs_f64())),
                },
            ));
        }
        Diff::Extra => {
            for (k, piece) in cut_messages(&live.m.extra).into_iter().enumerate().take(12) {
                tail.push((k == 0, bytes_entry(Stream::Out, piece)));
            }
        }
        Diff::Stalled { .. } | Diff::NoEnd | Diff::Exit { .. } => {}
    }
    for piece in cut_messages(&live.err_buf).into_iter().take(12) {
        tail.push((false, bytes_entry(Stream::Err, piece)));
    }
    if live.out_eof
        && !matches!(
            diff,
            Diff::Missing {
                why: Stop::OutClosed,
                ..
            }
        )
    {
        tail.push((false, Entry::Closed(Stream::Out)));
    }
    if live.killed {
        tail.push((
            false,
            Entry::Note("still running: killed by scptrace replay".into()),
        ));
    }
    if let Some(st) = live.status {
        tail.push((
            matches!(diff, Diff::Exit { .. }),
            Entry::Exit(child::status_code(st)),
        ));
    }
    let log = &live.m.log;
    for item in &log[log.len().saturating_sub(CONTEXT + 1)..] {
        let entry = match item {
            Item::Recorded(i) => rec.lines[*i].event.entry.clone(),
            Item::Real(e) => e.clone(),
        };
        let stalled = matches!((diff, item), (Diff::Stalled { line }, Item::Recorded(i)) if line == *i);
        let mark = if stalled { ">" } else { " " };
        let _ = writeln!(r, "  {mark} {pad}  {}", render_entry(&entry));
    }
    for (marked, entry) in &tail {
        let mark = if *marked { ">" } else { " " };
        let _ = writeln!(r, "  {mark} {pad}  {}", render_entry(entry));
    }
    let _ = writeln!(r, "summary: {summary}");
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scp_command_from_invocations() {
        let words = |inv: &str| {
            scp_command(inv).map(|v| {
                v.into_iter()
                    .map(|w| w.into_string().unwrap())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(words("/usr/bin/scp -d -t /tmp").unwrap(), ["-d", "-t", "/tmp"]);
        assert_eq!(words("scp -f 'a b'").unwrap(), ["-f", "a b"]);
        // An ssh leg written before the invocation override: the remote command.
        assert_eq!(
            words("/usr/bin/ssh -x -- host 'scp -t /x/'").unwrap(),
            ["-t", "/x/"]
        );
        assert!(words("/bin/cat").is_none());
    }

    fn seg(shown: &[u8], len: u64) -> Seg {
        Seg {
            idx: 0,
            shown: shown.to_vec(),
            len,
        }
    }

    #[test]
    fn matcher_compares_a_stream_however_it_is_cut() {
        let mut m = Matcher::default();
        m.feed(b"\0\0"); // before anything is expected: held
        assert!(!m.caught_up() || m.extra.len() == 2);
        m.push(seg(b"\0", 1));
        assert!(m.caught_up());
        assert_eq!(m.extra, b"\0");
        m.push(seg(b"\0", 1));
        assert!(m.caught_up() && m.extra.is_empty());
        // A data line shown only in part: the rest is counted.
        m.push(seg(b"head", 10));
        m.feed(b"he");
        assert!(!m.caught_up());
        m.feed(b"adXXXXX");
        m.feed(b"Y\0");
        assert!(m.caught_up());
        assert_eq!(m.extra, b"\0");
        assert_eq!(m.matched, 3);
    }

    #[test]
    fn matcher_finds_the_first_different_byte() {
        let mut m = Matcher::default();
        m.push(seg(b"C0644 21 a\n", 11));
        m.feed(b"C0644 ");
        m.feed(b"22 a\nmore");
        let d = m.diverged.unwrap();
        assert_eq!((d.seg, d.off), (0, 7));
        assert_eq!(m.after, b"2 a\nmore");
    }

    #[test]
    fn synthetic_contents_start_with_the_recorded_head() {
        let b = Bytes {
            stream: Stream::In,
            bytes: b"abc".to_vec(),
            len: 100,
            kind: Kind::Data,
            note: None,
        };
        let mut o = Outgoing::new(&b);
        let mut buf = [0u8; 64];
        let first = o.fill(&mut buf).to_vec();
        assert_eq!(&first[..3], b"abc");
        for (k, &b) in first.iter().enumerate().skip(3) {
            assert_eq!(b, FILLER[k % FILLER.len()]);
        }
        o.sent = 64;
        assert_eq!(o.fill(&mut buf).len(), 36);
    }

    #[test]
    fn real_output_is_cut_into_messages() {
        assert_eq!(
            cut_messages(b"\0\x01scp: x\n\0tail"),
            vec![&b"\0"[..], b"\x01scp: x\n", b"\0", b"tail"]
        );
    }

    #[test]
    fn data_lines_short_of_their_annotation_are_found() {
        let text = "I: C0644 6 a\\n\n\
                    I: abc\t# data, more follows\n\
                    I: d\t# data of \"a\", 6 B\n\
                    I: C0644 2 b\\n\n\
                    I: xy\t# data of \"b\", 2 B\n";
        let lines = crate::transcript::parse::parse_text(text.as_bytes())
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(i, p)| Line {
                no: i as u64 + 1,
                event: p.event,
            })
            .collect();
        let rec = Recording {
            name: "t".into(),
            lines,
        };
        assert_eq!(short_data(&rec), vec![(2, "a".to_string(), 4, 6)]);
    }
}
