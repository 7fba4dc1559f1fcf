//! The tracer: turns what the relay saw into transcript events.
//!
//! The relay reports reads, EOFs and notes; the tracer frames them (per read,
//! or per protocol message through the decoder) and hands events to a
//! [`EventWriter`]. A failing writer is dropped with one warning: tracing problems
//! never reach the transfer. Memory is bounded: a frame keeps at most
//! [`MAX_SHOWN`] bytes (a file's head, or the start of an over-long line).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::config::{DataMode, Framing};
use crate::protocol::scp::decode::Event as DecEvent;
use crate::protocol::scp::{self, Decoder, Dir};
use crate::transcript::{Bytes, Entry, Event, EventWriter, Kind, Stream, annotate};
use crate::warn::warn;

/// How often buffered transcript lines are written out while a transfer runs.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// How much of a file's contents `--data head` shows.
pub const HEAD: usize = 32;

/// Most bytes one transcript line shows; longer frames are cut (records,
/// text) or, with `--data full`, split into several lines (file data).
pub const MAX_SHOWN: usize = 64 * 1024;

/// The transcript size cap and how far it has been reached.
struct Cap {
    written: Rc<Cell<u64>>,
    soft: u64,
    hard: u64,
    quiet: bool,
    truncated: bool,
}

/// A message being assembled in one direction.
#[derive(Default)]
struct PartialFrame {
    shown: Vec<u8>,
    /// Bytes of this frame so far (shown or not).
    len: u64,
    /// The frame is file data: keep only what the data mode shows.
    data: bool,
    /// Bytes of this file already written in earlier lines (`--data full`).
    data_written: u64,
}

/// See the module docs.
pub struct Tracer {
    writer: Option<Box<dyn EventWriter>>,
    /// Where the transcript goes, for the warning if writing fails.
    label: String,
    start: Instant,
    data_mode: DataMode,
    decoder: Option<Decoder>,
    partial: [PartialFrame; 2],
    /// stderr, framed per line when decoding.
    err_line: Vec<u8>,
    err_len: u64,
    events: Vec<DecEvent>,
    cap: Option<Cap>,
    dirty: bool,
    last_flush: Instant,
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

impl Tracer {
    /// A tracer writing to `writer`; `scp` is the traced scp's options when the
    /// program is a legacy scp server, which enables message framing.
    pub fn new(
        writer: Option<Box<dyn EventWriter>>,
        label: String,
        framing: Framing,
        data_mode: DataMode,
        scp: Option<scp::Options>,
    ) -> Tracer {
        let now = Instant::now();
        let decoder = match framing {
            Framing::Message => scp.map(Decoder::new),
            Framing::Raw => None,
        };
        Tracer {
            writer,
            label,
            start: now,
            data_mode,
            decoder,
            partial: Default::default(),
            err_line: Vec::new(),
            err_len: 0,
            events: Vec::new(),
            cap: None,
            dirty: false,
            last_flush: now,
        }
    }

    /// A tracer that records nothing (the log could not be opened).
    pub fn disabled() -> Tracer {
        Tracer::new(None, String::new(), Framing::Raw, DataMode::Full, None)
    }

    fn emit(&mut self, entry: Entry) {
        if self.writer.is_none() {
            return;
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
            if soft {
                self.data_mode = DataMode::None;
                let line = format!(
                    "transcript reached {written} B (max_log_bytes {max}): file contents are no longer shown"
                );
                self.write_entry(Entry::Problem(line));
            }
            if hard {
                let line = format!(
                    "transcript truncated at {written} B (max_log_bytes {max}): only the exit status follows"
                );
                self.write_entry(Entry::Problem(line));
                if !is_exit {
                    return;
                }
            }
        }
        self.write_entry(entry);
    }

    fn write_entry(&mut self, entry: Entry) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let ev = Event {
            t: self.start.elapsed().as_secs_f64(),
            entry,
        };
        if let Err(e) = writer.event(&ev) {
            self.fail(e);
        } else {
            self.dirty = true;
        }
    }

    /// Caps the transcript (`max_log_bytes`): past `max` bytes, counted by
    /// `written`, file contents are no longer shown; past 1.25 × `max`
    /// nothing but the exit status is written.
    pub fn set_cap(&mut self, written: Rc<Cell<u64>>, max: u64) {
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
        });
    }

    fn fail(&mut self, e: std::io::Error) {
        if let Some(mut writer) = self.writer.take() {
            // Say so in the transcript if it can still take a line (it rarely can).
            let ev = Event {
                t: self.start.elapsed().as_secs_f64(),
                entry: Entry::Problem(format!("transcript truncated: writing it failed: {e}")),
            };
            let _ = writer.event(&ev).and_then(|()| writer.flush());
            warn(&format!(
                "cannot write transcript {}: {e}; the transfer goes on untraced",
                self.label
            ));
        }
    }

    /// A header line (`# key: value`).
    pub fn header(&mut self, key: &str, value: &str) {
        self.emit(Entry::Header {
            key: key.to_string(),
            value: value.to_string(),
        });
    }

    pub fn invocation(&mut self, argv: String) {
        self.emit(Entry::Invocation(argv));
    }

    /// Bytes that passed on `stream`, as read.
    pub fn bytes(&mut self, stream: Stream, data: &[u8]) {
        if self.decoder.is_none() {
            self.emit_raw(stream, data);
            return;
        }
        match dir_of(stream) {
            Some(dir) => {
                let mut events = std::mem::take(&mut self.events);
                if let Some(d) = self.decoder.as_mut() {
                    d.feed(dir, data, &mut events);
                }
                self.absorb(dir, Some(data), data.len(), &mut events);
                self.events = events;
            }
            None => self.stderr_bytes(data),
        }
    }

    fn emit_raw(&mut self, stream: Stream, data: &[u8]) {
        self.emit(Entry::Bytes(Bytes {
            stream,
            bytes: data.to_vec(),
            len: data.len() as u64,
            kind: Kind::Raw,
            note: None,
            msg: None,
        }));
    }

    /// stderr is not protocol: one line per text line, cut at [`MAX_SHOWN`].
    fn stderr_bytes(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
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
        let note = (len > bytes.len() as u64).then(|| format!("{len} B, first {} shown", bytes.len()));
        self.emit(Entry::Bytes(Bytes {
            stream: Stream::Err,
            bytes,
            len,
            kind: Kind::Text,
            note,
            msg: None,
        }));
    }

    /// Applies decoder events to the bytes of one feed (`data`), or to `n`
    /// bytes that were moved without being read (`data` is `None`).
    fn absorb(&mut self, dir: Dir, data: Option<&[u8]>, n: usize, events: &mut Vec<DecEvent>) {
        let mut pos = 0;
        for ev in events.drain(..) {
            match ev {
                DecEvent::Frame { dir: d, end, msg } => {
                    let end = end.min(n);
                    if d == dir {
                        self.take(dir, data, pos, end);
                        pos = end.max(pos);
                    }
                    self.finish_frame(d, &msg);
                }
                DecEvent::DataStart { dir: d, at, .. } => {
                    if d == dir {
                        let at = at.min(n);
                        self.take(dir, data, pos, at);
                        pos = at.max(pos);
                    }
                    let p = &mut self.partial[d as usize];
                    p.data = true;
                    p.data_written = 0;
                }
                DecEvent::Violation { v, .. } => {
                    self.emit(Entry::Problem(format!("{}: {}", v.name, v.text)));
                }
            }
        }
        if pos < n {
            self.take(dir, data, pos, n);
        }
    }

    /// Adds bytes `from..to` of the current input to the partial frame.
    fn take(&mut self, dir: Dir, data: Option<&[u8]>, mut from: usize, to: usize) {
        while from < to {
            let full = self.partial[dir as usize].data && self.data_mode == DataMode::Full;
            if full && self.partial[dir as usize].shown.len() >= MAX_SHOWN {
                // --data full: a long file becomes several lines, each at most
                // MAX_SHOWN bytes, so memory stays bounded. A part is written
                // only once more bytes follow, so the last line is never empty.
                self.emit_data_part(dir);
            }
            let limit = self.shown_limit(dir);
            let p = &mut self.partial[dir as usize];
            let room = limit.saturating_sub(p.shown.len());
            // In full mode take only what fits this line; the loop does the rest.
            let n = if full && data.is_some() {
                (to - from).min(room.max(1))
            } else {
                to - from
            };
            p.len += n as u64;
            if let Some(data) = data {
                let slice = &data[from..from + n];
                p.shown.extend_from_slice(&slice[..n.min(room)]);
            }
            from += n;
        }
    }

    fn shown_limit(&self, dir: Dir) -> usize {
        let p = &self.partial[dir as usize];
        if !p.data {
            return MAX_SHOWN;
        }
        match self.data_mode {
            DataMode::Head => HEAD,
            DataMode::None => 0,
            DataMode::Full => MAX_SHOWN,
        }
    }

    fn emit_data_part(&mut self, dir: Dir) {
        let p = &mut self.partial[dir as usize];
        let bytes = std::mem::take(&mut p.shown);
        let len = std::mem::take(&mut p.len);
        p.data_written += len;
        self.emit(Entry::Bytes(Bytes {
            stream: stream_of(dir),
            bytes,
            len,
            kind: Kind::Data,
            note: Some("data, more follows".into()),
            msg: None,
        }));
    }

    fn finish_frame(&mut self, dir: Dir, msg: &scp::Msg) {
        let p = std::mem::take(&mut self.partial[dir as usize]);
        let mut note = annotate::note(msg);
        let shown = p.shown.len() as u64;
        if p.len > shown {
            if p.data && shown == 0 {
                note.push_str(", not shown");
            } else if !p.data {
                // A cut record or text: its length is not in the note otherwise.
                note.push_str(&format!(", {} B, first {shown} shown", p.len));
            } else {
                note.push_str(&format!(", first {shown} shown"));
            }
        }
        self.emit(Entry::Bytes(Bytes {
            stream: stream_of(dir),
            bytes: p.shown,
            len: p.len,
            kind: annotate::kind(msg),
            note: Some(note),
            msg: Some(annotate::msg_json(msg)),
        }));
    }

    pub fn closed(&mut self, stream: Stream) {
        if let (Some(dir), Some(d)) = (dir_of(stream), self.decoder.as_mut()) {
            let mut events = std::mem::take(&mut self.events);
            d.eof(dir, &mut events);
            self.absorb(dir, None, 0, &mut events);
            self.events = events;
        } else if stream == Stream::Err {
            self.flush_stderr_line();
        }
        self.emit(Entry::Closed(stream));
    }

    /// A `!!` line: a violation or a tracing problem.
    pub fn problem(&mut self, text: String) {
        self.emit(Entry::Problem(text));
    }

    /// A `>>>` line: something observed that is neither bytes nor a violation.
    pub fn note(&mut self, text: String) {
        self.emit(Entry::Note(text));
    }

    /// The program ended: close what is open, then `#: N`.
    pub fn exit(&mut self, code: i32) {
        self.flush_stderr_line();
        if let Some(d) = self.decoder.as_mut() {
            let mut events = std::mem::take(&mut self.events);
            d.finish(&mut events);
            // Frames at finish carry no new bytes; they close what is pending.
            self.absorb(Dir::In, None, 0, &mut events);
        }
        self.emit(Entry::Exit(code));
    }

    /// How many bytes on `stream` the relay may move without showing them to
    /// the tracer: file data past the shown head. 0 means: read normally.
    pub fn splice_budget(&self, stream: Stream) -> u64 {
        let (Some(dir), Some(d)) = (dir_of(stream), self.decoder.as_ref()) else {
            return 0;
        };
        if self.writer.is_none() {
            return 0;
        }
        let p = &self.partial[dir as usize];
        if !p.data || p.shown.len() < self.shown_limit(dir) || self.data_mode == DataMode::Full {
            return 0;
        }
        d.data_remaining(dir)
    }

    /// `n` bytes moved without being read (see [`Tracer::splice_budget`]).
    pub fn spliced(&mut self, stream: Stream, n: u64) {
        let (Some(dir), Some(d)) = (dir_of(stream), self.decoder.as_mut()) else {
            return;
        };
        let mut events = std::mem::take(&mut self.events);
        d.skip(dir, n, &mut events);
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.absorb(dir, None, n, &mut events);
        self.events = events;
    }

    /// Whether buffered lines are waiting for [`Tracer::flush`].
    pub fn wants_flush(&self) -> bool {
        self.dirty && self.writer.is_some()
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
        if let Some(writer) = self.writer.as_mut()
            && let Err(e) = writer.flush()
        {
            self.fail(e);
        }
    }
}
