//! Transcript writing off the data path: the relay hands whole lines to a
//! bounded queue and a writer thread writes them to the file. A slow or
//! blocked destination (a FIFO whose reader pauses, a hung NFS log dir) made
//! the relay wait in `write(2)`, and with it the transfer: a 0.02 s upload
//! took 6 s (issue 10). Now a full queue is waited for only while its writer
//! is taking bytes (a disk slower than the network: backpressure, as a plain
//! write would be, so `--data full` keeps every line); once the writer took
//! nothing for [`STALL`], lines are dropped and counted without waiting, and
//! the tracer writes one `!!` line saying how many. At the end the rest is
//! waited for as long as it is being written, and at most [`END_STALL`] of
//! no progress. Memory stays bounded: at most [`QUEUE_BYTES`] queued plus one
//! buffer of lines being gathered.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::tap::logdir::WholeLines;
use crate::warn::warn;

/// Most bytes waiting for the writer thread.
pub const QUEUE_BYTES: usize = 2 << 20;

/// How long a full queue's writer may take nothing before lines are dropped.
pub const STALL: Duration = Duration::from_millis(500);

/// At the end, how long the destination may take nothing before scptrace
/// exits without the rest of the transcript: the peer waits for our exit
/// status, so a stuck destination may cost the transfer this much, once. A
/// slow one that keeps taking bytes is waited for.
pub const END_STALL: Duration = Duration::from_secs(1);

enum Chunk {
    /// Lines that may be dropped, or skipped after a write failed.
    Lines(Vec<u8>),
    /// Written even after a failure: the `!!` line saying the transcript was
    /// cut (see `Tracer::fail`).
    Last(Vec<u8>),
}

#[derive(Default)]
struct State {
    queue: VecDeque<Chunk>,
    bytes: usize,
    /// No more chunks will come.
    closed: bool,
    /// The writer thread has ended.
    finished: bool,
    /// A write failed (the file was cut back to its last whole line); handed
    /// to the relay's side once.
    error: Option<io::Error>,
    /// Bytes written so far, to tell a slow destination from a stuck one.
    written: u64,
    /// The thread holds a chunk it has not finished writing.
    busy: bool,
    /// The queue was found stuck when `written` was this (see `Queued::room`).
    stuck_at: Option<u64>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// At the end: nothing more is dropped (what is left is small).
    ending: AtomicBool,
    /// The failure was handed to the tracer: what comes is its last line.
    reported: AtomicBool,
    /// An end wait ran out: no more waiting.
    gave_up: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in the other thread leaves plain data behind; go on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_for<'a>(&self, st: MutexGuard<'a, State>, limit: Duration) -> MutexGuard<'a, State> {
        self.wake
            .wait_timeout(st, limit)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0)
    }

    /// Waits until `done` holds, as long as bytes keep being written: true
    /// if it holds, false after [`END_STALL`] without progress.
    fn wait_while_progress(&self, done: impl Fn(&State) -> bool) -> bool {
        let mut st = self.lock();
        let mut seen = st.written;
        let mut since = Instant::now();
        while !done(&st) {
            let left = END_STALL.saturating_sub(since.elapsed());
            if left.is_zero() || self.gave_up.load(Ordering::Relaxed) {
                self.gave_up.store(true, Ordering::Relaxed);
                return false;
            }
            st = self.wait_for(st, left);
            if st.written != seen {
                seen = st.written;
                since = Instant::now();
            }
        }
        true
    }

    /// The writer's failure, if it had one not handed over yet.
    fn take_error(&self) -> Option<io::Error> {
        if self.reported.load(Ordering::Relaxed) {
            return None;
        }
        let e = self.lock().error.take()?;
        self.reported.store(true, Ordering::Relaxed);
        Some(e)
    }
}

/// What the tracer sees of the queue: how many lines were dropped.
#[derive(Clone)]
pub struct QueueHandle {
    shared: Arc<Shared>,
    dropped: Arc<AtomicU64>,
}

impl QueueHandle {
    /// Lines dropped and not yet reported, taken only when the queue has room
    /// again (so the line reporting them is not dropped in turn), or at once
    /// when `now` (the end).
    pub fn take_dropped(&self, now: bool) -> Option<u64> {
        if self.dropped.load(Ordering::Relaxed) == 0 {
            return None;
        }
        if !now && self.shared.lock().bytes > QUEUE_BYTES / 2 {
            return None;
        }
        Some(self.dropped.swap(0, Ordering::Relaxed)).filter(|&n| n > 0)
    }

    /// The end is near: nothing more is dropped (see `Tracer::exit`).
    pub fn ending(&self) {
        self.shared.ending.store(true, Ordering::Relaxed);
    }

    /// Waits until everything queued is written (while the destination takes
    /// bytes; see [`END_STALL`]) and returns the writer's failure, if any, so
    /// the tracer can say so in its last line.
    pub fn settle(&self) -> Option<io::Error> {
        self.shared
            .wait_while_progress(|st| st.queue.is_empty() && !st.busy);
        self.shared.take_error()
    }
}

/// The relay's side: gathers whole lines (a transcript writer hands over one
/// line per `write_all`) and queues them in batches.
pub struct Queued {
    shared: Arc<Shared>,
    dropped: Arc<AtomicU64>,
    buf: Vec<u8>,
    cap: usize,
    label: String,
}

/// Starts the writer thread for `file`; `buf` is the batch size.
pub fn start(file: File, buf: usize, label: String) -> io::Result<(Queued, QueueHandle)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
        ending: AtomicBool::new(false),
        reported: AtomicBool::new(false),
        gave_up: AtomicBool::new(false),
    });
    let theirs = shared.clone();
    std::thread::Builder::new()
        .name("scptrace-log".into())
        .spawn(move || write_loop(file, &theirs))?;
    let dropped = Arc::new(AtomicU64::new(0));
    let handle = QueueHandle {
        shared: shared.clone(),
        dropped: dropped.clone(),
    };
    Ok((
        Queued {
            shared,
            dropped,
            buf: Vec::with_capacity(buf),
            cap: buf,
            label,
        },
        handle,
    ))
}

fn write_loop(file: File, shared: &Shared) {
    let mut out = WholeLines::new(file, 0);
    let mut failed = false;
    loop {
        let chunk = {
            let mut st = shared.lock();
            loop {
                if let Some(c) = st.queue.pop_front() {
                    let len = match &c {
                        Chunk::Lines(b) | Chunk::Last(b) => b.len(),
                    };
                    st.bytes -= len;
                    st.busy = true;
                    break c;
                }
                if st.closed {
                    st.finished = true;
                    shared.wake.notify_all();
                    return;
                }
                st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        let (bytes, last) = match chunk {
            Chunk::Lines(b) => (b, false),
            Chunk::Last(b) => (b, true),
        };
        if failed && !last {
            shared.lock().busy = false;
            continue;
        }
        let res = out.write_all(&bytes).and_then(|()| out.flush());
        let mut st = shared.lock();
        st.busy = false;
        match res {
            Ok(()) => st.written += bytes.len() as u64,
            Err(e) if !failed => {
                failed = true;
                st.error = Some(e);
            }
            Err(_) => {}
        }
        shared.wake.notify_all();
    }
}

impl Queued {
    fn send(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let bytes = std::mem::replace(&mut self.buf, Vec::with_capacity(self.cap));
        let last = self.shared.reported.load(Ordering::Relaxed);
        let ending = self.shared.ending.load(Ordering::Relaxed);
        let st = self.shared.lock();
        let (mut st, fits) = if last || ending {
            (st, true)
        } else {
            self.room(st, bytes.len())
        };
        if last {
            st.bytes += bytes.len();
            st.queue.push_back(Chunk::Last(bytes));
        } else if fits {
            st.bytes += bytes.len();
            st.queue.push_back(Chunk::Lines(bytes));
        } else {
            // Full and stuck: never wait; count what is lost (whole lines).
            let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            self.dropped.fetch_add(lines, Ordering::Relaxed);
            return;
        }
        self.shared.wake.notify_all();
    }

    /// Whether `len` more bytes fit. A full queue whose writer is taking
    /// bytes (a disk slower than the network) is waited for, as a plain
    /// file write would be, so `--data full` keeps every line; once the
    /// writer took nothing for [`STALL`], the queue counts as stuck and
    /// chunks are dropped at once, without waiting, until it moves again.
    fn room<'a>(&self, mut st: MutexGuard<'a, State>, len: usize) -> (MutexGuard<'a, State>, bool) {
        if st.stuck_at.is_some_and(|at| at != st.written) {
            st.stuck_at = None;
        }
        let mut since = Instant::now();
        let mut seen = st.written;
        while st.bytes + len > QUEUE_BYTES {
            if st.stuck_at.is_some() || st.finished {
                return (st, false);
            }
            let left = STALL.saturating_sub(since.elapsed());
            if left.is_zero() {
                st.stuck_at = Some(st.written);
                return (st, false);
            }
            st = self.shared.wait_for(st, left);
            if st.written != seen {
                seen = st.written;
                since = Instant::now();
            }
        }
        (st, true)
    }

    /// A failure the writer thread met, once: the tracer then writes its last
    /// line and stops (`Tracer::fail`).
    fn failure(&mut self) -> io::Result<()> {
        match self.shared.take_error() {
            Some(e) => {
                self.buf.clear();
                Err(e)
            }
            None => Ok(()),
        }
    }
}

impl Write for Queued {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.failure()?;
        if !self.buf.is_empty() && self.buf.len() + data.len() > self.cap {
            self.send();
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.failure()?;
        self.send();
        Ok(())
    }
}

impl Drop for Queued {
    /// Hands over what is left and waits for the writer thread, while it
    /// makes progress: a stuck destination costs at most [`END_STALL`].
    fn drop(&mut self) {
        self.shared.ending.store(true, Ordering::Relaxed);
        self.send();
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        if !self.shared.wait_while_progress(|st| st.finished) {
            let pending = self.shared.lock().bytes;
            warn(&format!(
                "transcript {}: its destination took nothing for {} s; exiting without the last {pending} B of it (and what its writer held)",
                self.label,
                END_STALL.as_secs()
            ));
        }
    }
}
