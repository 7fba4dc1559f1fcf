//! The text transcript form (design §3): one event per line, and the one
//! renderer of a text line, which `styled.rs` paints for a terminal.
//!
//! No line it writes holds a control character but the TAB before an
//! annotation and the newline at its end: bytes are escaped
//! ([`escape_into`]), and so is free text ([`escape_text`]: a note, a
//! problem, the invocation, a header value, an annotation read back), so
//! neither a transcript nor a terminal showing one gets a raw control from
//! outside (docs/security.md).

use std::fmt;
use std::io::{self, Write};

use super::{Entry, Event, EventWriter, Stream, annotate};
use crate::escape::{escape_into, escape_text};

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
    render_with(ev, timestamps, &mut Plain, line);
}

/// A part of a text line, as a [`Paint`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// The blank between two parts (a space, or the TAB before a note).
    Gap,
    Timestamp,
    /// A `# key: value` line.
    Header,
    /// `>>>` lines and prefixes.
    Meta,
    /// The invocation's argv.
    Label,
    /// `I:`, `O:`, `E:`.
    Letter(Stream),
    /// `# …` after a bytes line.
    Note,
    /// A `!!` line, or its parts around a violation's name.
    Problem,
    /// A violation's name in a `!!` line.
    Violation,
    ExitOk,
    ExitBad,
}

/// How the parts of a line are written: as they are ([`Plain`], the text
/// form), or styled for a terminal (`styled.rs`). The layout of every line
/// is [`render_with`]'s alone.
pub(super) trait Paint {
    /// Appends `prefix` and then `text` as one `part`; `text` is free text,
    /// already escaped by [`render_with`], `prefix` is scptrace's own.
    fn span(&mut self, part: Part, prefix: &str, text: &str, line: &mut Vec<u8>);
    /// Appends formatted `text` as one `part`.
    fn part(&mut self, part: Part, text: fmt::Arguments<'_>, line: &mut Vec<u8>);
    /// Appends the bytes of a bytes line, escaped.
    fn bytes(&mut self, bytes: &[u8], line: &mut Vec<u8>);
}

/// The text form: every part as it is.
pub(super) struct Plain;

impl Paint for Plain {
    #[inline]
    fn span(&mut self, _: Part, prefix: &str, text: &str, line: &mut Vec<u8>) {
        line.extend_from_slice(prefix.as_bytes());
        line.extend_from_slice(text.as_bytes());
    }

    #[inline]
    fn part(&mut self, _: Part, text: fmt::Arguments<'_>, line: &mut Vec<u8>) {
        let _ = line.write_fmt(text);
    }

    #[inline]
    fn bytes(&mut self, bytes: &[u8], line: &mut Vec<u8>) {
        escape_into(bytes, line);
    }
}

/// Free text as one part, every terminal control in it spelled out.
fn free(p: &mut impl Paint, part: Part, prefix: &str, text: &str, line: &mut Vec<u8>) {
    p.span(part, prefix, &escape_text(text), line);
}

/// Renders one event as a text line, newline included, appending it to
/// `line` part by part through `p`: the one text renderer.
pub(super) fn render_with(ev: &Event, timestamps: bool, p: &mut impl Paint, line: &mut Vec<u8>) {
    let is_header = matches!(ev.entry, Entry::Header { .. });
    if timestamps && !is_header {
        // Format: +SECONDS with microseconds, as design §3 shows.
        p.part(Part::Timestamp, format_args!("+{:.6}", ev.t), line);
        p.span(Part::Gap, " ", "", line);
    }
    match &ev.entry {
        Entry::Header { key, value } => p.part(
            Part::Header,
            format_args!("# {}: {}", escape_text(key), escape_text(value)),
            line,
        ),
        Entry::Invocation(argv) => {
            p.span(Part::Meta, ">>> New command invocation: ", "", line);
            free(p, Part::Label, "", argv, line);
        }
        Entry::Bytes(b) => {
            let tag = match b.stream {
                Stream::In => "I:",
                Stream::Out => "O:",
                Stream::Err => "E:",
            };
            p.span(Part::Letter(b.stream), tag, "", line);
            p.span(Part::Gap, " ", "", line);
            p.bytes(&b.bytes, line);
            if let Some(note) = annotate::note_text(b) {
                p.span(Part::Gap, "\t", "", line);
                free(p, Part::Note, "# ", &note, line);
            }
        }
        Entry::Closed(s) => p.part(Part::Meta, format_args!(">>> {} closed", s.name()), line),
        Entry::Violation(f) => {
            p.span(Part::Problem, "!! ", "", line);
            p.span(Part::Violation, "", f.name(), line);
            free(p, Part::Problem, ": ", &annotate::violation_text(f), line);
        }
        Entry::StoredViolation { name, text } => {
            p.span(Part::Problem, "!! ", "", line);
            free(p, Part::Violation, "", name, line);
            free(p, Part::Problem, ": ", text, line);
        }
        Entry::Problem(text) => free(p, Part::Problem, "!! ", text, line),
        Entry::Note(text) => free(p, Part::Meta, ">>> ", text, line),
        Entry::Relay(n) if n.is_problem() => free(p, Part::Problem, "!! ", &n.text(), line),
        Entry::Relay(n) => free(p, Part::Meta, ">>> ", &n.text(), line),
        Entry::Exit(code) => {
            let part = if *code == 0 { Part::ExitOk } else { Part::ExitBad };
            p.part(part, format_args!("#: {code}"), line);
        }
    }
    line.push(b'\n');
}

impl<W: Write> EventWriter for TextWriter<W> {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        render(ev, self.timestamps, &mut self.line);
        self.out.write_all(&self.line)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
