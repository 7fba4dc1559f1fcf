//! The tracer: turns what the relay saw into transcript events.
//!
//! The relay reports reads, EOFs and notes; the tracer frames them (per read,
//! or per protocol message through the decoder) and hands events, holding the
//! decoder's typed messages and violations, to a [`EventWriter`]. A failing sink is
//! dropped with one warning: tracing problems never reach the transfer.
//!
//! **Order.** Each line is placed by the read that brought its first byte,
//! not by when it was complete: a message whose bytes arrive before a reply
//! comes before that reply in the transcript, even when the decoder could
//! only frame it after the reply (it held the bytes), or when it finished
//! arriving later (a long file's data). A line waits while a message in the
//! other direction that began earlier is still open; so a transcript read
//! back in line order tells what was read before what, which is what the
//! decoder's verdicts about waiting rest on (docs/decoder.md).
//!
//! Memory is bounded: a direction keeps the bytes it has not framed yet (at
//! most the decoder's hold and one line), of file data only the head it
//! shows, and at most [`QUEUE_MAX`] lines wait for an earlier message.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::config::{DataMode, Framing};
use crate::protocol::{self, Decoder, Dir, Protocol};
use crate::tap::logwriter::QueueHandle;
use crate::transcript::{
    Annotation, Bytes, Consequence, Decoded, Entry, Event, EventWriter, Kind, RelayNote, Stream, annotate,
};
use crate::warn::warn;

/// How often buffered transcript lines are written out while a transfer runs.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// How much of a file's contents `--data head` shows.
pub const HEAD: usize = 32;

/// Most bytes one transcript line shows; longer stderr lines are cut, and
/// with `--data full` a file's data is split into lines of this size.
pub const MAX_SHOWN: usize = 64 * 1024;

/// Lines that may wait for an earlier message to be framed, and their bytes;
/// past either, the oldest is written out of order rather than hold more.
pub const QUEUE_MAX: usize = 1024;
pub const QUEUE_BYTES_MAX: usize = 256 * 1024;

/// Bytes of a read fed to the decoder at a time (see `bytes`).
const FEED_PIECE: usize = 2048;

/// Reads remembered per direction to place the lines framed from them.
const READS_MAX: usize = 1024;

/// The transcript size cap and how far it has been reached.
struct Cap {
    written: Rc<Cell<u64>>,
    soft: u64,
    hard: u64,
    quiet: bool,
    truncated: bool,
    /// Say on stderr, once, that the cap was reached (interactive modes).
    announce: bool,
}

/// A file's data being framed in one direction.
struct DataRegion {
    /// The frame's bytes before its data (an SFTP packet's header; empty for
    /// SCP, whose data is a frame of its own).
    prefix: Vec<u8>,
    /// Absolute offset where its data ends.
    end: u64,
    /// The bytes shown so far of the part not yet written.
    head: Vec<u8>,
    /// Bytes of it already written in earlier lines (`--data full`).
    written: u64,
}

/// One direction's bytes not yet framed.
#[derive(Default)]
struct Unframed {
    /// Absolute offset of the first unframed byte.
    base: u64,
    /// Bytes passed so far.
    fed: u64,
    /// The unframed bytes outside a file's data: from `base`, or from the
    /// data's end when `data` is set.
    rest: Vec<u8>,
    data: Option<DataRegion>,
    /// Where each read began (offset), its sequence number and time, for
    /// reads that may still hold unframed bytes.
    reads: VecDeque<(u64, u64, f64)>,
}

impl Unframed {
    /// The sequence number and time of the read that holds byte `at`.
    fn read_of(&self, at: u64) -> Option<(u64, f64)> {
        self.reads
            .iter()
            .rev()
            .find(|(off, ..)| *off <= at)
            .or(self.reads.front())
            .map(|&(_, seq, t)| (seq, t))
    }

    /// Forgets the reads that end at or before `base`.
    fn drop_reads(&mut self) {
        while self.reads.len() > 1 && self.reads[1].0 <= self.base {
            self.reads.pop_front();
        }
    }

    fn open(&self) -> bool {
        self.fed > self.base
    }
}

/// A line waiting to be written, placed by `seq`.
struct Queued {
    seq: u64,
    t: f64,
    entry: Entry,
}

/// See the module docs.
pub struct Tracer {
    sink: Option<Box<dyn EventWriter>>,
    /// Where the transcript goes, for the warning if writing fails.
    label: String,
    start: Instant,
    data_mode: DataMode,
    decoder: Option<Decoder>,
    dirs: [Unframed; 2],
    /// stderr, framed per line when decoding: the line, its length, and the
    /// read its first byte came in.
    err_line: Vec<u8>,
    err_len: u64,
    err_first: Option<(u64, f64)>,
    events: Vec<protocol::Event>,
    /// When recent SFTP requests were read (their frame's end offset in
    /// `In`, the time), for the latency of the replies that answer them.
    requests: VecDeque<(u64, f64)>,
    /// Observations so far (reads, splices, EOFs).
    seq: u64,
    queue: VecDeque<Queued>,
    /// Bytes the queued lines show.
    queued_bytes: usize,
    cap: Option<Cap>,
    /// The writer thread's queue, for the count of lines it dropped.
    log_queue: Option<QueueHandle>,
    dirty: bool,
    last_flush: Instant,
}

/// The bytes a queued line holds, for the queue's bound.
fn entry_bytes(e: &Entry) -> usize {
    match e {
        Entry::Bytes(b) => b.bytes.len() + 64,
        _ => 64,
    }
}

fn dir_of(stream: Stream) -> Option<Dir> {
    match stream {
        Stream::In => Some(Dir::In),
        Stream::Out => Some(Dir::Out),
        Stream::Err => None,
    }
}

fn stream_of(dir: Dir) -> Stream {
    match dir {
        Dir::In => Stream::In,
        Dir::Out => Stream::Out,
    }
}

fn ix(dir: Dir) -> usize {
    match dir {
        Dir::In => 0,
        Dir::Out => 1,
    }
}

impl Tracer {
    /// A tracer writing to `sink`; `proto` is the protocol the traced program
    /// speaks, when it is known (an scp server, an SFTP server), which enables
    /// message framing.
    pub fn new(
        sink: Option<Box<dyn EventWriter>>,
        label: String,
        framing: Framing,
        data_mode: DataMode,
        proto: Option<Protocol>,
    ) -> Tracer {
        let now = Instant::now();
        let decoder = match framing {
            Framing::Message => proto.map(Decoder::new),
            Framing::Raw => None,
        };
        Tracer {
            sink,
            label,
            start: now,
            data_mode,
            decoder,
            dirs: Default::default(),
            err_line: Vec::new(),
            err_len: 0,
            err_first: None,
            events: Vec::new(),
            requests: VecDeque::new(),
            seq: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
            cap: None,
            log_queue: None,
            dirty: false,
            last_flush: now,
        }
    }

    /// A tracer that records nothing (the log could not be opened).
    pub fn disabled() -> Tracer {
        Tracer::new(None, String::new(), Framing::Raw, DataMode::Full, None)
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    // ---- writing, in order ---------------------------------------------------

    /// Queues `entry`, placed by the read `seq` (its time `t`), then writes
    /// what no earlier open message holds back.
    fn push(&mut self, seq: u64, t: f64, entry: Entry) {
        if self.sink.is_none() {
            return;
        }
        // After every line of an equal or earlier read.
        let at = self.queue.partition_point(|q| q.seq <= seq);
        self.queued_bytes += entry_bytes(&entry);
        self.queue.insert(at, Queued { seq, t, entry });
        self.drain(false);
    }

    /// The read of the earliest byte not framed yet, in either direction.
    fn oldest_open(&self) -> Option<u64> {
        self.dirs
            .iter()
            .filter(|d| d.open())
            .filter_map(|d| d.read_of(d.base).map(|(seq, _)| seq))
            .min()
    }

    /// Writes the queued lines no open message precedes (all of them if `all`).
    fn drain(&mut self, all: bool) {
        let limit = if all { None } else { self.oldest_open() };
        while let Some(q) = self.queue.front() {
            let blocked = limit.is_some_and(|open| q.seq > open);
            if blocked && self.queue.len() <= QUEUE_MAX && self.queued_bytes <= QUEUE_BYTES_MAX {
                break;
            }
            let Some(q) = self.queue.pop_front() else { break };
            self.queued_bytes = self.queued_bytes.saturating_sub(entry_bytes(&q.entry));
            self.emit(q.t, q.entry);
        }
    }

    fn emit(&mut self, t: f64, entry: Entry) {
        if self.sink.is_none() {
            return;
        }
        // Lines the writer thread dropped (its destination too slow): said
        // once there is room again, and at the latest before the exit status.
        let at_end = matches!(entry, Entry::Exit(_));
        if let Some(n) = self.log_queue.as_ref().and_then(|q| q.take_dropped(at_end)) {
            let line = format!(
                "{n} transcript lines dropped here: its destination did not keep up, and the transfer does not wait for it"
            );
            self.write_entry(t, Entry::Problem(line));
        }
        if let Some(cap) = self.cap.as_mut() {
            let written = cap.written.get();
            let is_exit = matches!(entry, Entry::Exit(_));
            if cap.truncated && !is_exit {
                return;
            }
            // Both limits are checked at once: a line that crosses both gets
            // the soft limit's `!!` first. Checked one after the other, the
            // soft one came after "only the exit status follows", right
            // before `#:` (tests/it/harden.rs `cap_keeps_the_transcript_small`).
            let soft = !cap.quiet && written >= cap.soft;
            let hard = !cap.truncated && written >= cap.hard;
            cap.quiet |= soft;
            cap.truncated |= hard;
            let max = cap.soft;
            if (soft || hard) && std::mem::take(&mut cap.announce) {
                // One line for the person watching; the `!!` lines say the rest.
                crate::warn::warn(&format!(
                    "transcript {} reached max_log_bytes ({max} B): file contents are no longer shown in it; \
                     --max-log-bytes SIZE raises the cap, 0 removes it",
                    self.label
                ));
            }
            if soft {
                self.data_mode = DataMode::None;
                let line = format!(
                    "transcript reached {written} B (max_log_bytes {max}): file contents are no longer shown"
                );
                self.write_entry(t, Entry::Problem(line));
            }
            if hard {
                let line = format!(
                    "transcript truncated at {written} B (max_log_bytes {max}): only the exit status follows"
                );
                self.write_entry(t, Entry::Problem(line));
                if !is_exit {
                    return;
                }
            }
        }
        self.write_entry(t, entry);
    }

    fn write_entry(&mut self, t: f64, entry: Entry) {
        let Some(sink) = self.sink.as_mut() else { return };
        let ev = Event { t, entry };
        if let Err(e) = sink.event(&ev) {
            self.fail(e);
        } else {
            self.dirty = true;
        }
    }

    /// Caps the transcript (`max_log_bytes`): past `max` bytes, counted by
    /// `written`, file contents are no longer shown; past 1.25 × `max`
    /// nothing but the exit status is written. With `announce`, reaching it
    /// is also said once on stderr.
    pub fn set_cap(&mut self, written: Rc<Cell<u64>>, max: u64, announce: bool) {
        if max == 0 {
            return;
        }
        // Exactly 1.25 × max, as docs/security.md promises. The hard limit
        // used to be at least 1 MiB past max, so a 4 KiB cap still allowed a
        // transcript of over 1 MiB (tests/it/harden.rs
        // `cap_keeps_the_transcript_small`).
        let hard = max.saturating_add(max / 4);
        self.cap = Some(Cap {
            written,
            soft: max,
            hard,
            quiet: false,
            truncated: false,
            announce,
        });
    }

    /// Hands the tracer the writer thread's queue (see `logwriter`).
    pub fn set_queue(&mut self, queue: Option<QueueHandle>) {
        self.log_queue = queue;
    }

    /// At the end: waits for the writer thread to write what is queued (as
    /// long as its destination takes bytes), and if writing failed there,
    /// says so in the transcript's last line and warns, as for a failure
    /// seen earlier.
    pub fn settle(&mut self) {
        let failed = match (&self.sink, &self.log_queue) {
            (Some(_), Some(q)) => q.settle(),
            _ => None,
        };
        if let Some(e) = failed {
            self.fail(e);
        }
    }

    fn fail(&mut self, e: std::io::Error) {
        let e = crate::errtext::io(&e);
        if let Some(mut sink) = self.sink.take() {
            // Say so in the transcript if it can still take a line (it rarely can).
            let ev = Event {
                t: self.start.elapsed().as_secs_f64(),
                entry: Entry::Problem(format!("transcript truncated: writing it failed: {e}")),
            };
            let _ = sink.event(&ev).and_then(|()| sink.flush());
            warn(&format!(
                "cannot write transcript {}: {e}; the transfer goes on untraced",
                self.label
            ));
        }
        self.queue.clear();
        self.queued_bytes = 0;
    }

    /// A line that belongs to no read: placed after everything seen so far.
    fn push_now(&mut self, entry: Entry) {
        let (seq, t) = (self.seq, self.now());
        self.push(seq, t, entry);
    }

    // ---- the relay's reports -------------------------------------------------

    /// A header line (`# key: value`).
    pub fn header(&mut self, key: &str, value: &str) {
        self.push_now(Entry::Header {
            key: key.to_string(),
            value: value.to_string(),
        });
    }

    pub fn invocation(&mut self, argv: String) {
        self.push_now(Entry::Invocation(argv));
    }

    /// Bytes that passed on `stream`: delivered to its destination, in the
    /// order they were (the relay reports a write, not the read before it).
    pub fn bytes(&mut self, stream: Stream, data: &[u8]) {
        self.seq += 1;
        if data.is_empty() {
            return;
        }
        if self.decoder.is_none() {
            let (seq, t) = (self.seq, self.now());
            self.push(
                seq,
                t,
                Entry::Bytes(Bytes {
                    stream,
                    bytes: data.to_vec(),
                    len: data.len() as u64,
                    kind: Kind::Raw,
                    note: None,
                }),
            );
            return;
        }
        let Some(dir) = dir_of(stream) else {
            self.stderr_bytes(data);
            return;
        };
        self.note_read(dir);
        // In pieces: a read of many tiny messages would otherwise make tens
        // of thousands of events at once, all held in memory together.
        for piece in data.chunks(FEED_PIECE) {
            self.keep(dir, piece);
            let mut events = std::mem::take(&mut self.events);
            if let Some(d) = self.decoder.as_mut() {
                d.feed(dir, piece, &mut events);
            }
            self.absorb(&mut events);
            self.events = events;
        }
    }

    /// Remembers that a read began at the direction's end.
    fn note_read(&mut self, dir: Dir) {
        let t = self.now();
        let seq = self.seq;
        let u = &mut self.dirs[ix(dir)];
        u.reads.push_back((u.fed, seq, t));
        if u.reads.len() > READS_MAX {
            // Keep the read holding the oldest unframed byte; a line framed
            // from a forgotten one is placed by the read before it.
            u.reads.remove(1);
        }
    }

    /// How many bytes of a file's data a line shows.
    fn data_limit(&self) -> usize {
        match self.data_mode {
            DataMode::Head => HEAD,
            DataMode::None => 0,
            DataMode::Full => MAX_SHOWN,
        }
    }

    /// Keeps the bytes a line will show: everything outside a file's data,
    /// of the data only its head (and with `--data full`, line by line).
    fn keep(&mut self, dir: Dir, mut data: &[u8]) {
        while !data.is_empty() {
            let u = &mut self.dirs[ix(dir)];
            let in_data = match &u.data {
                Some(region) => region.end.saturating_sub(u.fed).min(data.len() as u64) as usize,
                None => 0,
            };
            if in_data == 0 {
                u.rest.extend_from_slice(data);
                u.fed += data.len() as u64;
                return;
            }
            u.fed += in_data as u64;
            self.keep_data(dir, &data[..in_data]);
            data = &data[in_data..];
        }
    }

    /// Keeps the shown part of file data (already counted in `fed`).
    fn keep_data(&mut self, dir: Dir, mut data: &[u8]) {
        let limit = self.data_limit();
        let full = self.data_mode == DataMode::Full;
        while !data.is_empty() {
            let Some(region) = self.dirs[ix(dir)].data.as_mut() else {
                return;
            };
            if full && region.head.len() >= MAX_SHOWN {
                // --data full: a long file becomes several lines, each at most
                // MAX_SHOWN bytes, so memory stays bounded. A part is written
                // only once more bytes follow, so the last line is never empty.
                self.data_part(dir);
                continue;
            }
            let take = if full {
                data.len().min(MAX_SHOWN - region.head.len())
            } else {
                data.len()
            };
            let room = limit.saturating_sub(region.head.len());
            region.head.extend_from_slice(&data[..take.min(room)]);
            data = &data[take..];
        }
    }

    /// Writes the data shown so far as a part of a long file (`--data full`).
    fn data_part(&mut self, dir: Dir) {
        let u = &mut self.dirs[ix(dir)];
        let Some(region) = u.data.as_mut() else { return };
        let mut bytes = std::mem::take(&mut region.prefix);
        bytes.append(&mut region.head);
        let len = bytes.len() as u64;
        let first = u.base + region.written;
        region.written += len;
        let (seq, t) = u.read_of(first).unwrap_or((self.seq, 0.0));
        self.push(
            seq,
            t,
            Entry::Bytes(Bytes {
                stream: stream_of(dir),
                bytes,
                len,
                kind: Kind::Data,
                note: Some(Annotation::DataPart),
            }),
        );
    }

    /// Applies the decoder's events.
    fn absorb(&mut self, events: &mut Vec<protocol::Event>) {
        for ev in events.drain(..) {
            match ev {
                protocol::Event::Frame { dir, end, msg, note } => self.frame(dir, end, msg, note),
                protocol::Event::DataStart { dir, at, len } => self.data_start(dir, at, len),
                protocol::Event::Violation(v) => self.push_now(Entry::Violation(v)),
            }
        }
        // A burst of small messages made it large: give the memory back.
        if events.capacity() > 1024 {
            *events = Vec::new();
        }
    }

    fn data_start(&mut self, dir: Dir, at: u64, size: u64) {
        let u = &mut self.dirs[ix(dir)];
        // Data begins where the last frame ended (SCP) or inside the packet
        // being framed (SFTP); bytes already kept from there (read before the
        // decoder knew) are data.
        let before = (at.saturating_sub(u.base) as usize).min(u.rest.len());
        let prefix: Vec<u8> = u.rest.drain(..before).collect();
        let held = (u.rest.len() as u64).min(size) as usize;
        let data: Vec<u8> = u.rest.drain(..held).collect();
        u.data = Some(DataRegion {
            prefix,
            end: at.saturating_add(size),
            head: Vec::new(),
            written: 0,
        });
        self.keep_data(dir, &data);
    }

    fn frame(&mut self, dir: Dir, end: u64, msg: Decoded, note: Option<crate::protocol::scp::Note>) {
        let u = &mut self.dirs[ix(dir)];
        let start = u.base;
        let (bytes, first) = match u.data.take() {
            Some(region) => {
                let mut bytes = region.prefix;
                bytes.extend_from_slice(&region.head);
                // Bytes of the frame past its data (an SFTP packet's excess).
                let tail = (end.saturating_sub(region.end) as usize).min(u.rest.len());
                bytes.extend(u.rest.drain(..tail));
                (bytes, start + region.written)
            }
            None => {
                let n = (end.saturating_sub(start) as usize).min(u.rest.len());
                (u.rest.drain(..n).collect(), start)
            }
        };
        let len = end.saturating_sub(first);
        let (seq, t) = u.read_of(first).unwrap_or((self.seq, 0.0));
        u.base = end;
        u.drop_reads();
        let latency_us = self.latency(dir, end, t, &msg);
        let kind = annotate::kind(&msg);
        self.push(
            seq,
            t,
            Entry::Bytes(Bytes {
                stream: stream_of(dir),
                bytes,
                len,
                kind,
                note: Some(Annotation::Msg {
                    msg,
                    consequence: note.map(Consequence::Scp),
                    latency_us,
                }),
            }),
        );
    }

    /// An SFTP request's time is kept; a reply's latency is its time minus
    /// that of the request it answers (found by where that request ended).
    fn latency(&mut self, dir: Dir, end: u64, t: f64, msg: &Decoded) -> Option<u64> {
        use crate::protocol::sftp::Msg as S;
        let Decoded::Sftp(m) = msg else { return None };
        match (dir, m.as_ref()) {
            (Dir::In, S::Request(_) | S::Init { .. }) => {
                if self.requests.len() >= 1024 {
                    self.requests.pop_front();
                }
                self.requests.push_back((end, t));
                None
            }
            (Dir::Out, S::Reply(r)) => {
                let to = r.to.as_ref()?.end;
                self.reply_latency(to, t)
            }
            (Dir::Out, S::Version { to: Some(r), .. }) => self.reply_latency(r.end, t),
            _ => None,
        }
    }

    fn reply_latency(&mut self, request_end: u64, t: f64) -> Option<u64> {
        let i = self.requests.iter().position(|(e, _)| *e == request_end)?;
        let (_, t0) = self.requests.remove(i)?;
        Some(((t - t0).max(0.0) * 1e6) as u64)
    }

    /// stderr is not protocol: one line per text line, cut at [`MAX_SHOWN`].
    fn stderr_bytes(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.err_first.is_none() {
                self.err_first = Some((self.seq, self.now()));
            }
            let (part, rest, eol) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..=i], &data[i + 1..], true),
                None => (data, &data[data.len()..], false),
            };
            let room = MAX_SHOWN.saturating_sub(self.err_line.len());
            self.err_line.extend_from_slice(&part[..part.len().min(room)]);
            self.err_len += part.len() as u64;
            if eol {
                self.flush_stderr_line();
            }
            data = rest;
        }
    }

    fn flush_stderr_line(&mut self) {
        if self.err_len == 0 {
            return;
        }
        let bytes = std::mem::take(&mut self.err_line);
        let len = std::mem::take(&mut self.err_len);
        let (seq, t) = self.err_first.take().unwrap_or((self.seq, self.now()));
        let note = (len > bytes.len() as u64).then_some(Annotation::CutText);
        self.push(
            seq,
            t,
            Entry::Bytes(Bytes {
                stream: Stream::Err,
                bytes,
                len,
                kind: Kind::Text,
                note,
            }),
        );
    }

    pub fn closed(&mut self, stream: Stream) {
        self.seq += 1;
        if let (Some(dir), Some(d)) = (dir_of(stream), self.decoder.as_mut()) {
            let mut events = std::mem::take(&mut self.events);
            d.eof(dir, &mut events);
            self.absorb(&mut events);
            self.events = events;
        } else if stream == Stream::Err {
            self.flush_stderr_line();
        }
        self.push_now(Entry::Closed(stream));
    }

    /// A `!!` line about tracing itself (a failed read, the log cap).
    pub fn problem(&mut self, text: String) {
        // An observation of its own: lines framed later from bytes passed
        // before it (the rest of a data frame) are placed before it.
        self.seq += 1;
        self.push_now(Entry::Problem(text));
    }

    /// A `>>>` line: something observed that is neither bytes nor a violation.
    pub fn note(&mut self, text: String) {
        // As for `problem`: after every byte passed so far.
        self.seq += 1;
        self.push_now(Entry::Note(text));
    }

    /// What the relay observed (a signal, a failed read or write), as data.
    pub fn relay_note(&mut self, note: RelayNote) {
        // As for `problem`: after every byte passed so far.
        self.seq += 1;
        self.push_now(Entry::Relay(note));
    }

    /// The program ended: close what is open, then `#: N`.
    pub fn exit(&mut self, code: i32) {
        if let Some(q) = &self.log_queue {
            // The last lines are few: from now on none is dropped.
            q.ending();
        }
        self.flush_stderr_line();
        if let Some(d) = self.decoder.as_mut() {
            let mut events = std::mem::take(&mut self.events);
            d.finish(&mut events);
            self.absorb(&mut events);
            self.events = events;
        }
        self.drain(true);
        let t = self.now();
        self.emit(t, Entry::Exit(code));
    }

    /// How many bytes on `stream` the relay may move without showing them to
    /// the tracer: file data past the shown head. 0 means: read normally.
    pub fn splice_budget(&self, stream: Stream) -> u64 {
        let (Some(dir), Some(d)) = (dir_of(stream), self.decoder.as_ref()) else {
            return 0;
        };
        if self.sink.is_none() || self.data_mode == DataMode::Full {
            return 0;
        }
        let u = &self.dirs[ix(dir)];
        match &u.data {
            Some(region) if region.head.len() >= self.data_limit() => d.data_remaining(dir),
            _ => 0,
        }
    }

    /// `n` bytes moved without being read (see [`Tracer::splice_budget`]).
    pub fn spliced(&mut self, stream: Stream, n: u64) {
        let Some(dir) = dir_of(stream) else { return };
        self.seq += 1;
        self.note_read(dir);
        self.dirs[ix(dir)].fed += n;
        let mut events = std::mem::take(&mut self.events);
        if let Some(d) = self.decoder.as_mut() {
            d.skip(dir, n, &mut events);
        }
        self.absorb(&mut events);
        self.events = events;
    }

    /// Whether buffered lines are waiting for [`Tracer::flush`].
    pub fn wants_flush(&self) -> bool {
        self.dirty && self.sink.is_some()
    }

    /// Writes buffered lines out if the last flush is long enough ago.
    pub fn flush_if_due(&mut self) {
        if self.dirty && self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        self.last_flush = Instant::now();
        self.dirty = false;
        if let Some(sink) = self.sink.as_mut()
            && let Err(e) = sink.flush()
        {
            self.fail(e);
        }
    }
}
