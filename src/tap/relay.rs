//! The relay: one mio event loop moving bytes between our stdio and the
//! child's pipes, unchanged and promptly, with a fixed buffer per direction
//! (design §2). It formats nothing: what it sees goes to the [`Tracer`].

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::ExitStatus;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SpliceFFlags, fcntl, splice};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{Shutdown, shutdown};
use nix::unistd;

use crate::fdio::{self, std_fd};
use crate::tap::child::{self, SignalPipe, Spawned};
use crate::tap::trace::Tracer;
use crate::transcript::{RelayNote, Stream};

/// Bytes buffered per direction: the whole of the relay's data memory.
pub const BUF_SIZE: usize = 128 * 1024;

const SIGNALS: Token = Token(100);

/// Capacity asked for the child's stdin and stdout pipes.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// A flow's fd: who closes it is in the type.
enum Fd {
    /// One of the child's pipe ends: ours, closed by dropping it.
    Child(OwnedFd),
    /// One of our std fds (0–2): never closed, only retired ([`StdFds::retire`]).
    Std(BorrowedFd<'static>),
}

impl AsFd for Fd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Fd::Child(fd) => fd.as_fd(),
            Fd::Std(fd) => fd.as_fd(),
        }
    }
}

/// One side of a flow: a file descriptor and what we know of its readiness.
struct Endpoint {
    /// `None` once closed, or no longer watched.
    fd: Option<Fd>,
    /// epoll refuses regular files and /dev/null: those are always ready.
    pollable: bool,
    /// Edge-triggered readiness: set by an event, cleared on EAGAIN.
    ready: bool,
}

impl Endpoint {
    fn child(fd: impl Into<OwnedFd>) -> Endpoint {
        Endpoint::new(Fd::Child(fd.into()))
    }

    fn std(fd: RawFd) -> Endpoint {
        Endpoint::new(Fd::Std(std_fd(fd)))
    }

    fn new(fd: Fd) -> Endpoint {
        Endpoint {
            fd: Some(fd),
            pollable: true,
            ready: false,
        }
    }

    /// The number of the std fd it is, if it is one (and open).
    fn std_no(&self) -> Option<RawFd> {
        match &self.fd {
            Some(Fd::Std(fd)) => Some(fd.as_raw_fd()),
            _ => None,
        }
    }
}

/// One direction: a source, a destination, and the bytes in between.
struct Flow {
    stream: Stream,
    src: Endpoint,
    dst: Endpoint,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The source reached its end (or failed); nothing more will be read.
    src_eof: bool,
    /// That end was the source's own (EOF or a read error), not our giving up.
    eof_seen: bool,
    /// The end is in the transcript (`>>> … closed`), or never will be.
    reported: bool,
    /// The destination was closed by us or failed; nothing more will be written.
    dst_done: bool,
    /// splice(2) may be tried (cleared when the kernel refuses it for these fds).
    splice: bool,
}

impl Flow {
    fn new(stream: Stream, src: Endpoint, dst: Endpoint) -> Flow {
        Flow {
            stream,
            src,
            dst,
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            src_eof: false,
            eof_seen: false,
            reported: false,
            dst_done: false,
            splice: true,
        }
    }

    fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Everything read has been delivered (or can never be).
    fn drained(&self) -> bool {
        self.src_eof && (self.pending() == 0 || self.dst_done)
    }
}

/// Our fds 0–2 as the relay found them. Their file status flags are put
/// back when the relay is done with them, but never while another of our fds
/// is the same open file description and still in use: with fds 0 and 1 one
/// socket, putting fd 1 back to blocking made fd 0 blocking too, and the
/// relay then sat in `read(0)` with the child a zombie (issue 10). Such a
/// shared description gets its flags back through the last fd that holds it.
struct StdFds {
    /// `F_GETFL` at start (`None`: not open).
    flags: [Option<i32>; 3],
    /// `shared[i][j]`: fds i and j are one open file description.
    shared: [[bool; 3]; 3],
    /// Still what we were given (not yet replaced by /dev/null).
    live: [Cell<bool>; 3],
}

impl StdFds {
    fn new() -> StdFds {
        let flags = [0, 1, 2].map(|fd| fdio::get_flags(std_fd(fd)));
        let mut shared = [[false; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                shared[i][j] = i != j
                    && flags[i].is_some()
                    && flags[j].is_some()
                    && fdio::same_description(std_fd(i as RawFd), std_fd(j as RawFd));
            }
        }
        StdFds {
            flags,
            shared,
            live: [Cell::new(true), Cell::new(true), Cell::new(true)],
        }
    }

    /// Whether another live fd of ours is the same open file description as `fd`.
    fn shares(&self, fd: usize) -> bool {
        (0..3).any(|j| self.shared[fd][j] && self.live[j].get())
    }

    /// Replaces one of our std fds with /dev/null: the original is released
    /// (so the peer can see EOF) while the number stays taken. Its flags are
    /// put back first (the file description lives on in other processes),
    /// unless another of our fds still uses it (see above).
    fn retire(&self, fd: RawFd) {
        let i = fd as usize;
        if !self.live[i].get() {
            return;
        }
        if !self.shares(i)
            && let Some(flags) = self.flags[i]
        {
            fdio::set_flags(std_fd(fd), flags);
        }
        self.live[i].set(false);
        if let Ok(null) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            // Failing leaves the fd as it was: only the peer's EOF is late.
            let _ = match fd {
                0 => unistd::dup2_stdin(&null),
                1 => unistd::dup2_stdout(&null),
                _ => unistd::dup2_stderr(&null),
            };
        }
    }
}

/// The relay is done: the flags of the fds still ours go back (a tty or a
/// file description shared with other processes must not stay non-blocking).
impl Drop for StdFds {
    fn drop(&mut self) {
        for fd in 0..3 {
            if let (true, Some(flags)) = (self.live[fd].get(), self.flags[fd]) {
                fdio::set_flags(std_fd(fd as RawFd), flags);
            }
        }
    }
}

/// What the flows' helpers need besides the flow: the poll, and our std fds.
struct Ctx {
    poll: Poll,
    std: StdFds,
    /// The child's stdout ended, fd 1 is a socket, and fd 2 is that socket
    /// too: `shutdown(SHUT_WR)` on it waits for the child's stderr to be
    /// relayed (it would cut stderr as well).
    shutdown_pending: Cell<bool>,
}

/// What the relay hands back: how the child ended.
pub struct Relayed {
    pub status: ExitStatus,
    /// A signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) that came after the child
    /// exited and ended the wait for the rest of its output: scptrace dies of it.
    pub ended_by: Option<Signal>,
}

/// Relays our stdin/stdout/stderr to and from the child until the child has
/// exited and its output is drained. Does not wait for EOF on our stdin: in a
/// download the client closes its side only after it saw ours end.
/// `splice` false forces plain read/write for everything (`SCPTRACE_SPLICE=0`).
pub fn relay(sp: Spawned, signals: &SignalPipe, tracer: &mut Tracer, splice: bool) -> io::Result<Relayed> {
    let std = StdFds::new();
    // Failures are ignored here as before: a blocking fd only costs promptness.
    for fd in [0, 1, 2] {
        let _ = fdio::set_nonblocking(std_fd(fd));
    }
    let Spawned {
        mut child,
        stdin,
        stdout,
        stderr,
    } = sp;
    for fd in [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()] {
        let _ = fdio::set_nonblocking(fd);
    }
    // Bigger pipes to the child: fewer wake-ups per MiB on bulk data. Best
    // effort (the limit is /proc/sys/fs/pipe-max-size; failing is harmless).
    for fd in [stdin.as_fd(), stdout.as_fd()] {
        let _ = fcntl(fd, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    }
    let mut flows = [
        Flow::new(Stream::In, Endpoint::std(0), Endpoint::child(stdin)),
        Flow::new(Stream::Out, Endpoint::child(stdout), Endpoint::std(1)),
        Flow::new(Stream::Err, Endpoint::child(stderr), Endpoint::std(2)),
    ];
    for f in flows.iter_mut() {
        f.splice = splice;
    }
    let mut cx = Ctx {
        poll: Poll::new()?,
        std,
        shutdown_pending: Cell::new(false),
    };
    for (i, f) in flows.iter_mut().enumerate() {
        register(&cx.poll, &mut f.src, Token(2 * i), Interest::READABLE);
        register(&cx.poll, &mut f.dst, Token(2 * i + 1), Interest::WRITABLE);
    }
    cx.poll.registry().register(
        &mut SourceFd(&signals.read.as_raw_fd()),
        SIGNALS,
        Interest::READABLE,
    )?;

    let pid = unistd::Pid::from_raw(child.id() as i32);
    let mut status: Option<ExitStatus> = child.try_wait()?;
    let mut events = Events::with_capacity(16);
    let mut sigs = Vec::new();
    let mut ended_by = None;
    while ended_by.is_none() {
        // Move bytes until nothing moves; readiness flags persist until EAGAIN.
        loop {
            let mut progress = false;
            for i in 0..flows.len() {
                if i == 1 && flows[1].src_eof && !flows[1].dst_done && flows[1].pending() == 0 {
                    // The child's stdout ended: before that end reaches our
                    // stdout, pass on what the child wrote to stderr until
                    // then. The peer acts on the end at once (scp prints
                    // "Connection closed"), and its message must not overtake
                    // the child's, which came first (`sh: …: not found`).
                    let err = &mut flows[2];
                    if err.src.fd.is_some() && !err.src_eof {
                        err.src.ready = true;
                        progress |= pump(err, &cx, tracer);
                    }
                }
                progress |= pump(&mut flows[i], &cx, tracer);
            }
            let err = &flows[2];
            if err.eof_seen
                && !err.reported
                && err.drained()
                && (flows[1].reported || (status.is_some() && !stdout_ending(&flows[1])))
            {
                // The child's stderr ended. When a process exits, the kernel
                // reports its stdout and stderr hang-ups in either order, so
                // "stderr closed" waits for stdout's end: the transcript stays
                // the same from run to run. After the exit it waits only for
                // an end that is sure to come (a grandchild may hold stdout).
                tracer.closed(Stream::Err);
                flows[2].reported = true;
                close_endpoint(&mut flows[2].src, &cx);
                progress = true;
            }
            if !progress {
                break;
            }
        }
        if cx.shutdown_pending.get() && flows[2].drained() {
            cx.shutdown_pending.set(false);
            let _ = shutdown(std_fd(1).as_raw_fd(), Shutdown::Write);
        }
        if status.is_some() && flows[1].drained() && flows[2].drained() {
            break;
        }
        tracer.flush_if_due();
        let busy = flows.iter().any(has_unpollable_work);
        let timeout = if busy {
            Some(Duration::ZERO)
        } else if tracer.wants_flush() {
            Some(crate::tap::trace::FLUSH_EVERY)
        } else {
            None
        };
        match cx.poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if events.is_empty() && !busy {
            tracer.flush();
        }
        for ev in events.iter() {
            if ev.token() == SIGNALS {
                child::drain_signals(signals, &mut sigs);
                // Whether the child is still there to be told.
                if status.is_none() {
                    status = child.try_wait()?;
                }
                for sig in sigs.drain(..) {
                    if sig == Signal::SIGCHLD {
                        continue;
                    }
                    if status.is_none() {
                        // The child may already be gone: then there is nobody to tell.
                        let _ = kill(pid, sig);
                        tracer.relay_note(RelayNote::Forwarded(sig.as_str()));
                    } else if ended_by.is_none() {
                        // Only the drain is left (a grandchild may hold the
                        // pipes for as long as it likes): the signal ends it,
                        // and scptrace then dies of it, as its sender expects.
                        tracer.relay_note(RelayNote::AfterExit(sig.as_str()));
                        ended_by = Some(sig);
                    }
                }
                continue;
            }
            let Some(f) = flows.get_mut(ev.token().0 / 2) else {
                continue;
            };
            // Errors and hang-ups count as ready: the next read or write says what happened.
            if ev.token().0 % 2 == 0 {
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    f.src.ready = true;
                }
            } else if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                f.dst.ready = true;
            }
        }
    }
    let lost = flows[0].pending();
    if lost > 0 && !flows[0].dst_done {
        // The transcript shows delivered bytes only: say what was not.
        tracer.relay_note(RelayNote::NotTaken { lost: lost as u64 });
    }
    tracer.flush();
    // The child's stdin end, if still open, closes with the process.
    let status = match status {
        Some(s) => s,
        None => child.wait()?,
    };
    Ok(Relayed { status, ended_by })
}

fn register(poll: &Poll, end: &mut Endpoint, token: Token, interest: Interest) {
    let Some(fd) = &end.fd else { return };
    match poll
        .registry()
        .register(&mut SourceFd(&fd.as_fd().as_raw_fd()), token, interest)
    {
        Ok(()) => {}
        // EPERM: a regular file or /dev/null, which never blocks: always ready.
        Err(_) => {
            end.pollable = false;
            end.ready = true;
        }
    }
}

fn has_unpollable_work(f: &Flow) -> bool {
    let can_read = !f.src_eof && !f.src.pollable && f.end < f.buf.len() && !f.dst_done;
    let can_write = f.pending() > 0 && !f.dst.pollable && !f.dst_done;
    can_read || can_write
}

/// One round of reading and writing for a flow; true if anything changed.
fn pump(f: &mut Flow, cx: &Ctx, tracer: &mut Tracer) -> bool {
    let mut progress = false;
    // Write first: room in the buffer is what lets us read again.
    while f.pending() > 0 && !f.dst_done && f.dst.ready {
        let Some(dst) = &f.dst.fd else { break };
        match unistd::write(dst, &f.buf[f.start..f.end]) {
            Ok(n) => {
                // What reached our stdout and stderr is what the transcript
                // holds, in the order it did: bytes our write never took are
                // not in it (an aborted download counted bytes its reader
                // never got). Our stdin's bytes are counted as read.
                if f.stream != Stream::In {
                    tracer.bytes(f.stream, &f.buf[f.start..f.start + n]);
                }
                f.start += n;
                progress = true;
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => f.dst.ready = false,
            // EPIPE and the like: the reader is gone, and will stay gone.
            Err(e) => {
                dst_failed(f, cx, tracer, e);
                progress = true;
            }
        }
    }
    if f.pending() == 0 {
        f.start = 0;
        f.end = 0;
    }
    if f.src_eof && f.pending() == 0 && !f.dst_done {
        // Everything read has been written: pass the EOF on.
        report_end(f, tracer);
        close_dst(f, cx);
        progress = true;
    }
    if f.splice && f.pending() == 0 && !f.src_eof && !f.dst_done && f.src.ready && f.dst.ready {
        let budget = tracer.splice_budget(f.stream);
        if budget > 0
            && let Some(moved) = splice_step(f, cx, tracer, budget)
        {
            return moved || progress;
        }
    }
    if !f.src_eof && f.src.ready && !f.dst_done && f.end < f.buf.len() {
        let Some(src) = &f.src.fd else { return progress };
        match unistd::read(src, &mut f.buf[f.end..]) {
            Ok(0) => {
                if f.stream == Stream::Err {
                    // Reported by the caller, after a look at stdout: see `relay`.
                    f.src_eof = true;
                    f.eof_seen = true;
                    return true;
                }
                src_ended(f, cx, tracer);
                progress = true;
            }
            Ok(n) => {
                if f.stream == Stream::In {
                    // What the peer sent, whether the child takes it or not
                    // (its verdicts rest on it; a note counts what was not).
                    tracer.bytes(f.stream, &f.buf[f.end..f.end + n]);
                }
                f.end += n;
                progress = true;
            }
            Err(Errno::EINTR) => progress = true,
            Err(Errno::EAGAIN) => f.src.ready = false,
            // EIO on a hung-up tty, ECONNRESET on a socket: an end, with a reason.
            Err(e) => {
                tracer.relay_note(RelayNote::ReadFailed {
                    stream: f.stream,
                    errno: e as i32,
                });
                src_ended(f, cx, tracer);
                progress = true;
            }
        }
    }
    progress
}

/// The source ended; the transcript says so at once for our stdin (its
/// bytes are counted as read), for the child's output once what it gave is
/// delivered ([`report_end`]).
fn src_ended(f: &mut Flow, cx: &Ctx, tracer: &mut Tracer) {
    f.src_eof = true;
    f.eof_seen = true;
    close_endpoint(&mut f.src, cx);
    if f.stream == Stream::In {
        report_end(f, tracer);
    }
}

/// `>>> stdin closed` when our stdin ends, `stdout closed` after the last
/// byte delivered (stderr's is written by the loop, see `relay`).
fn report_end(f: &mut Flow, tracer: &mut Tracer) {
    if f.eof_seen && !f.reported && f.stream != Stream::Err {
        tracer.closed(f.stream);
        f.reported = true;
    }
}

/// The destination will never take more bytes: drop what is buffered and stop
/// reading the source, closing it so the writer on the far side learns it too
/// (the child gets EPIPE as it would have without us).
fn dst_failed(f: &mut Flow, cx: &Ctx, tracer: &mut Tracer, e: Errno) {
    let lost = f.pending() as u64;
    // An end of the source that came before the failure is told first.
    report_end(f, tracer);
    tracer.relay_note(RelayNote::WriteFailed {
        stream: f.stream,
        errno: e as i32,
        lost,
    });
    f.reported = true;
    f.dst_done = true;
    f.start = 0;
    f.end = 0;
    close_endpoint(&mut f.dst, cx);
    if !f.src_eof {
        f.src_eof = true;
        close_endpoint(&mut f.src, cx);
    }
}

/// Passes EOF on to the destination.
fn close_dst(f: &mut Flow, cx: &Ctx) {
    f.dst_done = true;
    if f.stream == Stream::Err {
        // Our stderr stays open for our own warnings; scptrace exits soon anyway.
        return;
    }
    if f.dst.std_no() == Some(1) {
        match fdio::fd_type(std_fd(1)) {
            // stdin and stdout may be one socket: close() alone would not end
            // it, and shutdown() alone does, without touching our stdin.
            libc::S_IFSOCK => {
                // With fd 2 the same socket (inetd style), this would also
                // cut the child's stderr still to come: the relay does it
                // once stderr is drained.
                if fdio::same_file(std_fd(1), std_fd(2)) {
                    cx.shutdown_pending.set(true);
                } else {
                    let _ = shutdown(std_fd(1).as_raw_fd(), Shutdown::Write);
                }
                forget_endpoint(&mut f.dst, cx);
                return;
            }
            libc::S_IFIFO => {}
            // A tty or a file has no EOF to pass on; keep it as it is.
            _ => {
                forget_endpoint(&mut f.dst, cx);
                return;
            }
        }
    }
    close_endpoint(&mut f.dst, cx);
}

fn close_endpoint(end: &mut Endpoint, cx: &Ctx) {
    let Some(fd) = end.fd.take() else { return };
    end.ready = false;
    if end.pollable {
        let _ = cx
            .poll
            .registry()
            .deregister(&mut SourceFd(&fd.as_fd().as_raw_fd()));
    }
    match fd {
        // Dropped: closed.
        Fd::Child(_) => {}
        Fd::Std(std) => {
            let no = std.as_raw_fd();
            if no == 1 || (no == 0 && fdio::fd_type(std) == libc::S_IFIFO) {
                // A pipe's far end learns of the close (EOF, or EPIPE for a
                // writer into our stdin, as without us). A socket or a
                // terminal on stdin is only no longer watched: it may share
                // its file description with stdout (a socketpair) or with
                // the user's shell.
                cx.std.retire(no);
            }
        }
    }
}

/// Stops watching one of our std fds without closing it.
fn forget_endpoint(end: &mut Endpoint, cx: &Ctx) {
    if let Some(fd) = end.fd.take()
        && end.pollable
    {
        let _ = cx
            .poll
            .registry()
            .deregister(&mut SourceFd(&fd.as_fd().as_raw_fd()));
    }
    end.ready = false;
}

/// Most bytes one splice call moves: keeps the loop turning between flows.
const SPLICE_CHUNK: u64 = 1 << 20;

/// Moves file data the tracer does not need to see straight from source to
/// destination in the kernel (one side is always the child's pipe), and only
/// counts it. `Some(changed)`, or `None` to fall back to a plain read this time.
fn splice_step(f: &mut Flow, cx: &Ctx, tracer: &mut Tracer, budget: u64) -> Option<bool> {
    let len = budget.min(SPLICE_CHUNK) as usize;
    let (Some(src), Some(dst)) = (&f.src.fd, &f.dst.fd) else {
        return None;
    };
    let flags = SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE;
    match splice(src, None, dst, None, len, flags) {
        Ok(0) => {
            src_ended(f, cx, tracer);
            Some(true)
        }
        Ok(n) => {
            tracer.spliced(f.stream, n as u64);
            Some(true)
        }
        Err(Errno::EINTR) => Some(true),
        Err(Errno::EAGAIN) => {
            // Either side may be the one that is not ready; ask the kernel which,
            // since an edge-triggered flag wrongly cleared would stall the flow.
            let src_ready = fd_ready(src.as_fd(), PollFlags::POLLIN);
            let dst_ready = fd_ready(dst.as_fd(), PollFlags::POLLOUT);
            f.src.ready &= src_ready;
            f.dst.ready &= dst_ready;
            if f.src.ready && f.dst.ready {
                // Both claim readiness yet splice would block (a nearly full
                // pipe): a plain read this round cannot spin.
                return None;
            }
            Some(true)
        }
        // EINVAL, ENOSYS, EBADF, ESPIPE: these fds do not splice (a tty, some
        // files): plain read/write from now on, which the tracer sees as
        // ordinary reads. EPIPE, ECONNRESET…: whichever side failed, a plain
        // read and write tell the two apart and report it the usual way.
        Err(_) => {
            f.splice = false;
            None
        }
    }
}

/// Whether the child's stdout will report its end without anyone else's help:
/// its EOF was read but bytes before it are still to be delivered, or no
/// writer is left on the pipe (POLLHUP, set even with bytes still buffered).
/// False when a grandchild still holds the pipe's write end.
fn stdout_ending(out: &Flow) -> bool {
    if out.reported {
        return false;
    }
    if out.eof_seen {
        return true;
    }
    let Some(fd) = &out.src.fd else {
        return false;
    };
    let mut p = [PollFd::new(fd.as_fd(), PollFlags::empty())];
    matches!(poll(&mut p, PollTimeout::ZERO), Ok(n) if n > 0)
        && p[0].revents().is_some_and(|r| r.contains(PollFlags::POLLHUP))
}

/// Whether a zero-timeout poll reports `events` (or an error/hang-up) on `fd`.
fn fd_ready(fd: BorrowedFd, events: PollFlags) -> bool {
    let mut p = [PollFd::new(fd, events)];
    matches!(poll(&mut p, PollTimeout::ZERO), Ok(n) if n > 0) && p[0].revents().is_some_and(|r| !r.is_empty())
}
