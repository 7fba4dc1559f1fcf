//! The text transcript form (design §3): one event per line.

use std::io::{self, Write};

use super::{Entry, Event, Sink, annotate};
use crate::escape::escape_into;

/// Writes events as text lines to any `io::Write`.
pub struct TextWriter<W: Write> {
    out: W,
    timestamps: bool,
    line: Vec<u8>,
}

impl<W: Write> TextWriter<W> {
    pub fn new(out: W, timestamps: bool) -> Self {
        TextWriter {
            out,
            timestamps,
            line: Vec::with_capacity(256),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Renders one event as a text line, newline included, into `line`.
pub fn render(ev: &Event, timestamps: bool, line: &mut Vec<u8>) {
    line.clear();
    let is_header = matches!(ev.entry, Entry::Header { .. });
    if timestamps && !is_header {
        // Format: +SECONDS with microseconds, as design §3 shows.
        let _ = write!(line, "+{:.6} ", ev.t);
    }
    match &ev.entry {
        Entry::Header { key, value } => {
            let _ = write!(line, "# {key}: {value}");
        }
        Entry::Invocation(argv) => {
            let _ = write!(line, ">>> New command invocation: {argv}");
        }
        Entry::Bytes(b) => {
            line.push(b.stream.letter() as u8);
            line.extend_from_slice(b": ");
            escape_into(&b.bytes, line);
            if let Some(note) = annotate::note_text(b) {
                line.extend_from_slice(b"\t# ");
                line.extend_from_slice(note.as_bytes());
            }
        }
        Entry::Closed(s) => {
            let _ = write!(line, ">>> {} closed", s.name());
        }
        Entry::Violation(f) => {
            let _ = write!(line, "!! {}", annotate::violation_line(f));
        }
        Entry::StoredViolation { name, text } => {
            let _ = write!(line, "!! {name}: {text}");
        }
        Entry::Problem(text) => {
            let _ = write!(line, "!! {text}");
        }
        Entry::Note(text) => {
            let _ = write!(line, ">>> {text}");
        }
        Entry::Exit(code) => {
            let _ = write!(line, "#: {code}");
        }
    }
    line.push(b'\n');
}

impl<W: Write> Sink for TextWriter<W> {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        render(ev, self.timestamps, &mut self.line);
        self.out.write_all(&self.line)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
