//! The live half of a replay, the same for any byte-stream protocol: the
//! real program with its pipes, the recorded `I:` bytes going in, its output
//! compared with the recorded `O:` bytes as it arrives, and the pacing (a
//! message is sent only once every `O:` byte recorded before it has
//! arrived, as the peer waited for them).
//!
//! The transcript is read once, line by line, while the conversation goes
//! on: what is kept is the recorded line being compared, a bounded amount of
//! real output, and the few lines the report shows around a difference. A
//! protocol whose replies cannot be compared byte for byte (SFTP: handles
//! and times) would bring its own comparison in place of [`Matcher`].

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::{CONTEXT, Transcript, fill, outgoing_total, shrink, shrink_bytes};
use crate::fdio;
use crate::transcript::{Bytes, Entry, Stream};

/// What to run.
pub struct Command {
    pub program: PathBuf,
    pub argv0: OsString,
    pub args: Vec<OsString>,
    /// The program's working directory: the target.
    pub dir: PathBuf,
}

/// Bytes of one `I:` line on their way to the program's stdin: the recorded
/// ones, then filler up to the recorded count.
pub struct Outgoing {
    head: Vec<u8>,
    pub total: u64,
    pub sent: u64,
}

impl Outgoing {
    pub fn new(b: Bytes) -> Outgoing {
        let total = outgoing_total(&b);
        Outgoing {
            head: b.bytes,
            total,
            sent: 0,
        }
    }

    /// Bytes to send: `head`, then filler up to `total` bytes.
    pub fn from_head(head: Vec<u8>, total: u64) -> Outgoing {
        Outgoing {
            total: total.max(head.len() as u64),
            head,
            sent: 0,
        }
    }

    fn done(&self) -> bool {
        self.sent >= self.total
    }

    /// The next bytes to write, at most `buf.len()`.
    pub fn fill<'a>(&self, buf: &'a mut [u8]) -> &'a [u8] {
        let n = (self.total - self.sent).min(buf.len() as u64) as usize;
        let buf = &mut buf[..n];
        let from_head = self.head.len().saturating_sub(self.sent as usize).min(n);
        if from_head > 0 {
            let s = self.sent as usize;
            buf[..from_head].copy_from_slice(&self.head[s..s + from_head]);
        }
        fill(&mut buf[from_head..], self.sent + from_head as u64);
        buf
    }
}

/// One recorded `O:` line: `shown` bytes to compare, `len` bytes in all
/// (past `shown`, file data the recording does not hold is only counted).
pub struct Seg {
    pub no: u64,
    /// Its place among the recorded `O:` lines, from 1.
    pub nth: usize,
    pub shown: Vec<u8>,
    pub len: u64,
    /// The line as the report shows it.
    entry: Entry,
}

/// Most real output held beyond the recorded line being compared.
const EXTRA_CAP: usize = 1024 * 1024;
/// Most real output kept for the report after the divergence.
const KEEP_AFTER: usize = 64 * 1024;

/// Compares the real output, as it arrives, with the recorded line at hand;
/// bytes beyond it wait in `extra` for the next one.
#[derive(Default)]
pub struct Matcher {
    pub cur: Option<Seg>,
    pub off: u64,
    pub extra: Vec<u8>,
    /// The offset in `cur` where the real output first differs.
    pub diverged: Option<u64>,
    /// Real bytes from the divergence on.
    pub after: Vec<u8>,
    pub matched: usize,
    /// The last lines of the replayed conversation, for the report: the
    /// recorded line each stands for (`None`: something not recorded).
    pub log: VecDeque<(Option<u64>, Entry)>,
}

/// What consumes the program's stdout: the byte [`Matcher`], or SFTP's
/// packet reader (`sftp::engine`).
pub trait Sink {
    fn feed(&mut self, data: &[u8]);
    /// Whether to read more now (false: hold it in the pipe).
    fn wants_output(&self) -> bool;
    /// A difference is found: stop at once.
    fn diverged(&self) -> bool {
        false
    }
}

impl Sink for Matcher {
    fn feed(&mut self, data: &[u8]) {
        Matcher::feed(self, data)
    }
    fn wants_output(&self) -> bool {
        Matcher::wants_output(self)
    }
    fn diverged(&self) -> bool {
        self.diverged.is_some()
    }
}

impl Matcher {
    pub fn caught_up(&self) -> bool {
        self.diverged.is_none() && self.cur.is_none()
    }

    fn wants_output(&self) -> bool {
        self.cur.is_some() || self.diverged.is_some() || self.extra.len() < EXTRA_CAP
    }

    pub fn log(&mut self, no: Option<u64>, entry: Entry) {
        if self.log.len() > CONTEXT {
            self.log.pop_front();
        }
        self.log.push_back((no, entry));
    }

    pub fn push(&mut self, seg: Seg) {
        self.cur = Some(seg);
        self.off = 0;
        if !self.extra.is_empty() {
            let held = std::mem::take(&mut self.extra);
            self.feed(&held);
        }
    }

    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.diverged.is_some() {
                let room = KEEP_AFTER.saturating_sub(self.after.len());
                self.after.extend_from_slice(&data[..data.len().min(room)]);
                return;
            }
            let Some(seg) = &self.cur else {
                self.extra.extend_from_slice(data);
                return;
            };
            let off = self.off as usize;
            if off < seg.shown.len() {
                // The shown part, byte for byte.
                let want = &seg.shown[off..];
                let n = want.len().min(data.len());
                if let Some(k) = (0..n).find(|&k| want[k] != data[k]) {
                    self.off += k as u64;
                    self.diverged = Some(self.off);
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
            if self.off >= seg.len {
                let seg = self.cur.take().map(|s| (s.no, s.entry));
                if let Some((no, entry)) = seg {
                    self.log(Some(no), entry);
                }
                self.off = 0;
                self.matched += 1;
            }
        }
    }
}

/// Why a wait ended without what it waited for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// The real output left the recording.
    Diverged,
    /// The program closed its stdout while more was expected.
    OutClosed,
    /// No progress within the timeout.
    TimedOut,
    /// The program stopped reading its stdin.
    InClosed,
}

/// The real program, its pipes (non-blocking), and what came back so far.
pub struct Live<S: Sink = Matcher> {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    pub err_buf: Vec<u8>,
    pub m: S,
    pub timeout: Duration,
    pub status: Option<ExitStatus>,
    /// Bytes read from stdout and stderr, to notice silence.
    read_total: u64,
    /// The program closed its stdout.
    pub out_eof: bool,
    /// It had to be killed at the end.
    pub killed: bool,
}

/// Most stderr kept for the report.
const KEEP_STDERR: usize = 16 * 1024;
/// Most bytes read from one pipe before looking at the others again.
const READ_BURST: usize = 1024 * 1024;

/// Reads what is there from a non-blocking pipe into `f`, up to
/// [`READ_BURST`] or while `more()`; `false` at EOF or on an error (either
/// way the pipe is done).
fn read_ready(r: &mut impl Read, mut f: impl FnMut(&[u8]), more: impl Fn() -> bool) -> bool {
    let mut buf = [0u8; 64 * 1024];
    let mut got = 0;
    while got < READ_BURST {
        match r.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                got += n;
                f(&buf[..n]);
                if !more() {
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    true
}

impl<S: Sink> Drop for Live<S> {
    fn drop(&mut self) {
        // An error ended the replay early: leave no program behind.
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl<S: Sink> Live<S> {
    pub fn spawn(cmd: &Command, timeout: Duration, m: S) -> Result<Live<S>> {
        let mut c = std::process::Command::new(&cmd.program);
        c.arg0(&cmd.argv0)
            .args(&cmd.args)
            .current_dir(&cmd.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .with_context(|| format!("cannot run {}", super::shown_path(&cmd.program)))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the program's pipes are missing");
        };
        let live = Live {
            child,
            stdin: Some(stdin),
            stdout: Some(stdout),
            stderr: Some(stderr),
            err_buf: Vec::new(),
            m,
            timeout,
            status: None,
            read_total: 0,
            out_eof: false,
            killed: false,
        };
        for r in [
            live.stdin.as_ref().map(fdio::set_nonblocking),
            live.stdout.as_ref().map(fdio::set_nonblocking),
            live.stderr.as_ref().map(fdio::set_nonblocking),
        ]
        .into_iter()
        .flatten()
        {
            r.context("cannot make the program's pipes non-blocking")?;
        }
        Ok(live)
    }

    fn wants_stdout(&self) -> bool {
        self.stdout.is_some() && self.m.wants_output()
    }

    /// Moves bytes (reading stdout and stderr, writing `out` if given) until
    /// `done` holds and `out` is written, or a [`Stop`].
    pub fn pump(
        &mut self,
        mut out: Option<&mut Outgoing>,
        done: &dyn Fn(&Live<S>) -> bool,
    ) -> Result<(), Stop> {
        let mut deadline = Instant::now() + self.timeout;
        let mut wbuf = vec![0u8; 64 * 1024];
        loop {
            if self.m.diverged() {
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
            let want_out = self.wants_stdout();
            let (r_out, r_err, r_in) = {
                use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
                let mut fds = Vec::with_capacity(3);
                let mut slots = [None; 3];
                if let (true, Some(s)) = (want_out, &self.stdout) {
                    slots[0] = Some(fds.len());
                    fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
                }
                if let Some(s) = &self.stderr {
                    slots[1] = Some(fds.len());
                    fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
                }
                if let (true, Some(s)) = (writing, &self.stdin) {
                    slots[2] = Some(fds.len());
                    fds.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
                }
                if fds.is_empty() {
                    // Nothing could make progress (real output held to its
                    // cap, nothing to write): as good as silent.
                    return Err(Stop::TimedOut);
                }
                let ms = (deadline - now).as_millis().min(60_000) as u16;
                // EINTR: just look again.
                let _ = poll(&mut fds, PollTimeout::from(ms.max(1)));
                let ready = |slot: Option<usize>| {
                    slot.and_then(|i| fds.get(i))
                        .and_then(|f| f.revents())
                        .is_some_and(|r| !r.is_empty())
                };
                (ready(slots[0]), ready(slots[1]), ready(slots[2]))
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
                    // EPIPE and the like: the program closed its stdin (it
                    // exited, or gave up).
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

    /// Closes the program's stdin, as the peer did.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn stdin_open(&self) -> bool {
        self.stdin.is_some()
    }

    pub fn stdout_open(&self) -> bool {
        self.stdout.is_some()
    }

    /// Gathers what the program still says until it has been quiet for
    /// `quiet` (for the report), then makes sure it has ended and records
    /// its status: one that still runs after another `quiet` is killed.
    pub fn finish(&mut self, quiet: Duration) {
        let give_up = Instant::now() + quiet * 20;
        while (self.stdout.is_some() || self.stderr.is_some()) && Instant::now() < give_up {
            let before = self.read_total;
            self.collect_once(quiet);
            if self.read_total == before {
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
        let want_out = self.wants_stdout();
        {
            let mut fds = Vec::new();
            if let (true, Some(s)) = (want_out, &self.stdout) {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            if let Some(s) = &self.stderr {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            if fds.is_empty() {
                return;
            }
            let ms = quiet.as_millis().min(60_000) as u16;
            let _ = poll(&mut fds, PollTimeout::from(ms.max(1)));
        }
        self.read_pipes(want_out, true);
    }

    /// Reads whatever the ready pipes hold: stdout into the matcher (while
    /// it wants more), stderr into `err_buf`.
    fn read_pipes(&mut self, out: bool, err: bool) {
        let total = &mut self.read_total;
        if out && let Some(s) = self.stdout.as_mut() {
            let m = std::cell::RefCell::new(&mut self.m);
            let open = read_ready(
                s,
                |b| {
                    *total += b.len() as u64;
                    m.borrow_mut().feed(b);
                },
                || m.borrow().wants_output(),
            );
            if !open {
                self.stdout = None;
                self.out_eof = true;
            }
        }
        if err && let Some(s) = self.stderr.as_mut() {
            let keep = &mut self.err_buf;
            if !read_ready(
                s,
                |b| {
                    *total += b.len() as u64;
                    let room = KEEP_STDERR.saturating_sub(keep.len());
                    keep.extend_from_slice(&b[..b.len().min(room)]);
                },
                || true,
            ) {
                self.stderr = None;
            }
        }
    }
}

/// The first difference found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Diff {
    /// The real bytes differ from the recorded `O:` line, from `off` on.
    Bytes { off: u64 },
    /// The program ended its output (`OutClosed`) or went quiet
    /// (`TimedOut`) where the recorded `O:` line was expected.
    Missing { off: u64, why: Stop },
    /// The program did not take `I:` line `line` within the timeout.
    Stalled { line: u64 },
    /// The program sent more than the recording has.
    Extra,
    /// All replies matched, but the program did not end its output.
    NoEnd,
    /// All replies matched, but the exit status differs.
    Exit { recorded: i32 },
}

/// Recorded lines around one of them, for the report.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub at: u64,
    pub lines: Vec<(u64, Entry)>,
    /// Lines after `at` in `lines`.
    after: usize,
}

/// The recorded lines the report may show, kept as the transcript goes by:
/// the few last ones, and the windows around the last bytes line and the
/// last exit status line.
#[derive(Default)]
pub(super) struct Context {
    ring: VecDeque<(u64, Entry)>,
    bytes: Window,
    exit: Window,
    /// Once a difference is found: its window, completed by the lines that follow.
    pub frozen: Option<Window>,
}

impl Window {
    fn around(ring: &VecDeque<(u64, Entry)>, at: (u64, Entry)) -> Window {
        let mut lines: Vec<_> = ring.iter().cloned().collect();
        let no = at.0;
        lines.push(at);
        Window {
            at: no,
            lines,
            after: 0,
        }
    }

    fn add(&mut self, line: &(u64, Entry)) {
        if self.after < CONTEXT && !self.lines.is_empty() {
            self.lines.push(line.clone());
            self.after += 1;
        }
    }

    pub fn full(&self) -> bool {
        self.after >= CONTEXT
    }
}

impl Context {
    /// Freezes the window around the last bytes line: the difference is there.
    pub fn freeze(&mut self) {
        self.frozen = Some(std::mem::take(&mut self.bytes));
    }

    /// The window around the last bytes line.
    pub fn bytes_window(&mut self) -> Window {
        std::mem::take(&mut self.bytes)
    }

    /// The window around the last exit status line.
    pub fn exit_window(&mut self) -> Window {
        std::mem::take(&mut self.exit)
    }

    pub fn line(&mut self, no: u64, entry: &Entry) {
        if matches!(entry, Entry::Header { .. }) {
            return;
        }
        let line = (no, shrink(entry));
        if let Some(w) = &mut self.frozen {
            w.add(&line);
            return;
        }
        self.bytes.add(&line);
        self.exit.add(&line);
        match entry {
            Entry::Bytes(_) => self.bytes = Window::around(&self.ring, line.clone()),
            Entry::Exit(_) => self.exit = Window::around(&self.ring, line.clone()),
            _ => {}
        }
        if self.ring.len() >= CONTEXT {
            self.ring.pop_front();
        }
        self.ring.push_back(line);
    }
}

/// How a replay went, for the report.
pub struct Outcome {
    pub diff: Option<Diff>,
    /// The recorded line where it is, and the lines around it.
    pub window: Window,
    /// The difference concerns this recorded `O:` line (its place among them).
    pub nth: Option<usize>,
    /// The shown bytes of the recorded `O:` line at the difference.
    pub seg_shown: Vec<u8>,
    pub sent: usize,
    /// `I:` lines sent with filler.
    pub synthetic: usize,
    /// Recorded `O:` data compared by count past its head.
    pub counted: usize,
    /// The `I:` line before which the program stopped reading its stdin.
    pub in_closed_at: Option<u64>,
}

/// Replays the transcript against `live`: reads it from the start and acts
/// on each line as it comes. `budget` is the number of bytes the first pass
/// found replay would send: a transcript that now holds more has changed
/// since, and is refused.
pub fn run(t: &Transcript, live: &mut Live, budget: u64, recorded_exit: Option<i32>) -> Result<Outcome> {
    let mut o = Outcome {
        diff: None,
        window: Window::default(),
        nth: None,
        seg_shown: Vec::new(),
        sent: 0,
        synthetic: 0,
        counted: 0,
        in_closed_at: None,
    };
    let mut ctx = Context::default();
    let mut lines = t.lines()?;
    let mut nth = 0;
    let mut spent = 0u64;
    let mut closed_in = false;
    let missing = |live: &Live, why: Stop| match why {
        Stop::Diverged => Diff::Bytes {
            off: live.m.diverged.unwrap_or(0),
        },
        why => Diff::Missing { off: live.m.off, why },
    };
    while let Some(l) = Transcript::next(&mut lines)? {
        ctx.line(l.no, &l.parsed.event.entry);
        if let Some(w) = &ctx.frozen {
            if w.full() {
                break;
            }
            continue;
        }
        match l.parsed.event.entry {
            Entry::Bytes(b) if outgoing_total(&b) == 0 => {}
            Entry::Bytes(b) if b.stream == Stream::Out => {
                nth += 1;
                if b.len > b.bytes.len() as u64 {
                    o.counted += 1;
                }
                let entry = Entry::Bytes(shrink_bytes(&b));
                let len = outgoing_total(&b);
                live.m.push(Seg {
                    no: l.no,
                    nth,
                    shown: b.bytes,
                    len,
                    entry,
                });
                if let Err(why) = live.pump(None, &|l: &Live| l.m.caught_up()) {
                    o.diff = Some(missing(live, why));
                }
            }
            Entry::Bytes(b) if b.stream == Stream::In => {
                if !live.stdin_open() {
                    continue; // the program stopped reading earlier; noted there
                }
                let entry = Entry::Bytes(shrink_bytes(&b));
                let mut out = Outgoing::new(b);
                spent = spent.saturating_add(out.total);
                if spent > budget {
                    bail!(
                        "line {}: the transcript changed while it was replayed (it now holds more bytes to send than when replay first read it); replay it again",
                        l.no
                    );
                }
                if out.total > out.head.len() as u64 {
                    o.synthetic += 1;
                }
                live.m.log(Some(l.no), entry);
                match live.pump(Some(&mut out), &|_: &Live| true) {
                    Ok(()) => o.sent += 1,
                    Err(Stop::InClosed) => {
                        o.in_closed_at = Some(l.no);
                        live.m.log(
                            None,
                            Entry::Note(format!(
                                "it stopped reading its stdin after {} of {} B of this line",
                                out.sent, out.total
                            )),
                        );
                    }
                    Err(Stop::TimedOut) => o.diff = Some(Diff::Stalled { line: l.no }),
                    Err(why) => o.diff = Some(missing(live, why)),
                }
            }
            Entry::Closed(Stream::In) if !closed_in => {
                closed_in = true;
                live.close_stdin();
                live.m.log(Some(l.no), Entry::Closed(Stream::In));
            }
            _ => {}
        }
        if o.diff.is_some() {
            if let Some(seg) = &live.m.cur {
                o.nth = Some(seg.nth);
                o.seg_shown = seg.shown.clone();
            }
            ctx.frozen = Some(std::mem::take(&mut ctx.bytes));
        }
    }
    if o.diff.is_none() {
        // The peer's side is done: close it, as the recorded peer did at the
        // latest, and wait for the program to end its output.
        live.close_stdin();
        let done = |l: &Live| !l.stdout_open() || l.m.extra.len() >= EXTRA_CAP;
        match live.pump(None, &done) {
            Ok(()) | Err(Stop::OutClosed) => {}
            Err(_) => o.diff = Some(Diff::NoEnd),
        }
        if !live.m.extra.is_empty() {
            o.diff = Some(Diff::Extra);
        }
        live.finish(live.timeout);
        if o.diff.is_none()
            && let (Some(recorded), Some(real)) =
                (recorded_exit, live.status.map(crate::tap::child::status_code))
            && recorded != real
        {
            o.diff = Some(Diff::Exit { recorded });
        }
        o.window = match o.diff {
            Some(Diff::Exit { .. }) => ctx.exit,
            _ => ctx.bytes,
        };
    } else {
        // What the program says after the difference, briefly, for the report.
        live.finish(live.timeout.min(Duration::from_millis(500)));
        o.window = ctx.frozen.take().unwrap_or_default();
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::Kind;

    fn seg(shown: &[u8], len: u64) -> Seg {
        Seg {
            no: 0,
            nth: 1,
            shown: shown.to_vec(),
            len,
            entry: Entry::Exit(0),
        }
    }

    #[test]
    fn matcher_compares_a_stream_however_it_is_cut() {
        let mut m = Matcher::default();
        m.feed(b"\0\0"); // before anything is expected: held
        assert_eq!(m.extra, b"\0\0");
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
        assert_eq!(m.diverged, Some(7));
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
        let mut o = Outgoing::new(b);
        let mut buf = [0u8; 64];
        let first = o.fill(&mut buf).to_vec();
        assert_eq!(&first[..3], b"abc");
        for (k, &b) in first.iter().enumerate().skip(3) {
            assert_eq!(b, super::super::FILLER[k % super::super::FILLER.len()]);
        }
        o.sent = 64;
        assert_eq!(o.fill(&mut buf).len(), 36);
        o.sent = 1;
        assert_eq!(&o.fill(&mut buf)[..2], b"bc");
    }

    #[test]
    fn the_window_holds_the_lines_around_a_difference() {
        let mut c = Context::default();
        for no in 1..=10 {
            let e = if no % 2 == 0 {
                Entry::Closed(Stream::In)
            } else {
                Entry::Exit(no as i32)
            };
            c.line(no, &e);
        }
        assert_eq!(c.exit.at, 9);
        let nos: Vec<u64> = c.exit.lines.iter().map(|l| l.0).collect();
        assert_eq!(nos, [6, 7, 8, 9, 10]);
    }
}
