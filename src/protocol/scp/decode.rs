//! The sans-IO SCP decoder (design §4): fed the bytes of each direction in the
//! order they were read, it frames them into protocol messages and flags every
//! deviation, without doing I/O, buffering file data, or ever stopping.
//!
//! The two directions are decoded separately but share one model of the
//! conversation: the source's direction carries records (`C`/`D`/`E`/`T`),
//! file data and the `\0` after each file; the sink's direction carries
//! replies (`\0`, `\x01…\n`, `\x02…\n`). Replies are matched first in, first
//! out against what awaits one, which is how the decoder learns whether the
//! sink accepted a file (data follows) or refused it (the next record follows).
//! docs/decoder.md describes the state machine and every violation.
//!
//! Memory is bounded whatever the input: a line buffer of [`LINE_CAP`] bytes per
//! direction, at most [`STACK_CAP`] remembered directory names (and
//! [`STACK_BYTES_CAP`] bytes of them), at most [`PENDING_CAP`] remembered
//! outstanding replies; beyond that only counts. File data is counted, never
//! copied, and skipped over with one slice computation per call.

use std::collections::VecDeque;

use super::msg::Msg;
use super::{Dir, Options, Role};
use crate::escape::escape;

/// Bytes of a line (record, warning, text) kept; a longer record line is
/// flagged `line-too-long`, and a text frame ends after this many bytes.
pub const LINE_CAP: usize = 4096;
/// The longest name that is not flagged `name-too-long`.
pub const NAME_MAX: usize = 1024;
/// Directory names remembered on the stack; deeper levels are only counted.
pub const STACK_CAP: usize = 10_000;
/// Total bytes of remembered directory names; beyond it names are forgotten.
pub const STACK_BYTES_CAP: usize = 64 * 1024;
/// Outstanding replies remembered by kind; beyond it only counted.
pub const PENDING_CAP: usize = 1024;
/// Bytes of a text quoted in a violation sentence.
const QUOTE_CAP: usize = 200;

/// A protocol violation: a stable kebab-case `name` (for `check`, filters and
/// scripts) and a one-sentence `text` for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub name: &'static str,
    pub text: String,
}

/// What the decoder reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A message in `dir` ends at byte offset `end` (exclusive) of the current
    /// input (for `feed`: an index into the slice passed; for `skip`: a count
    /// within the n skipped; for `eof`/`finish`: 0). The message's bytes begin
    /// where the previous Frame in the same dir ended (possibly in an earlier
    /// call). Every byte fed belongs to exactly one Frame eventually (at the
    /// latest at eof); a Frame is never empty.
    Frame { dir: Dir, end: usize, msg: Msg },
    /// File data begins at offset `at` of the current input in `dir` (where the
    /// previous Frame ended). Always followed later by a Frame with Msg::Data.
    DataStart { dir: Dir, at: usize, size: u64 },
    /// A protocol violation, emitted right after the Frame it concerns (or at
    /// the point it happens). `dir` is `None` for the session-level ones that
    /// [`Decoder::finish`] reports.
    Violation { dir: Option<Dir>, v: Violation },
}

/// What kind of line a direction is in the middle of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// A `C`/`D`/`E`/`T` line (in the sink's direction: a record instead of a reply).
    Record,
    /// `\x01…\n`.
    Warning,
    /// `\x02…\n`.
    Fatal,
    /// Source's direction: a line starting with a byte that starts no record.
    Unknown,
    /// Sink's direction: a reply line starting with a byte that is no reply.
    BadAck,
    /// Before the protocol started: text, unless it turns out a clean record.
    Pre,
    /// After the session ended: text.
    After,
}

/// Where a direction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// At a message boundary.
    Idle,
    /// Inside a line.
    Line(Line),
    /// Source's direction, after a `C` whose reply has not been seen yet.
    AfterFile,
    /// Source's direction, inside a file's data (`started`: DataStart emitted).
    Data { started: bool, seen: u64 },
    /// Source's direction, after a file's data: the `\0` (or an error) is next.
    DataEnd,
}

/// One direction's decoding state.
#[derive(Debug)]
struct Side {
    st: St,
    /// The first [`LINE_CAP`] bytes of the current line.
    line: Vec<u8>,
    /// Bytes of the current line so far (may exceed `line.len()`).
    len: u64,
    /// The current warning/error line follows a file's data (it stands for the `\0`).
    after_data: bool,
    /// A protocol byte has been seen in this direction.
    started: bool,
    /// `bytes-after-end` was reported for this direction.
    after_end_flagged: bool,
}

impl Side {
    fn new() -> Side {
        Side {
            st: St::Idle,
            line: Vec::new(),
            len: 0,
            after_data: false,
            started: false,
            after_end_flagged: false,
        }
    }

    fn push_line(&mut self, bytes: &[u8]) {
        let room = LINE_CAP.saturating_sub(self.line.len());
        self.line.extend_from_slice(bytes.get(..room).unwrap_or(bytes));
        self.len = self.len.saturating_add(bytes.len() as u64);
    }
}

/// Something in the source's direction that awaits the sink's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// The sink's first `\0` (it speaks first).
    Ready,
    Times,
    File,
    /// A `D` that made the directory stack `depth` deep.
    Dir {
        depth: u64,
    },
    /// An `E`; `top`: with no directory open (it ends an OpenSSH sink).
    EndDir {
        top: bool,
    },
    /// The `\0` (or error) after a file's data.
    DataEnd,
    /// A bad or unknown record (OpenSSH answers it with an error).
    Bad,
}

/// How a reply answered what awaited it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Ack,
    Warning,
    Fatal,
    /// A reply that is not one (bad ack byte, a record): OpenSSH's `response()`
    /// reads it as an error message.
    Garbage,
}

/// Why a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineEnd {
    /// At its newline.
    Newline,
    /// At the end of the stream.
    Eof,
    /// A text frame reached [`LINE_CAP`] bytes.
    Cap,
    /// Text before the protocol ends where the sink's first `\0` begins.
    Nul,
}

/// Why the session is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// A `\x02` fatal error was sent in this direction.
    Fatal(Dir),
    /// The sink acknowledged an `E` with no directory open: an OpenSSH sink returns.
    TopLevelEnd,
}

/// The file whose record was seen last.
#[derive(Debug)]
struct File {
    name: Vec<u8>,
    size: u64,
}

/// The decoder of one scp session. See the module docs.
#[derive(Debug)]
pub struct Decoder {
    opts: Options,
    /// The source's direction (records and data).
    src: Side,
    /// The sink's direction (replies).
    snk: Side,
    file: Option<File>,
    /// Warnings replied since the last record (for `repeated-warning`).
    warnings: u32,
    pending: VecDeque<Pending>,
    /// Outstanding replies beyond [`PENDING_CAP`], counted only.
    pending_extra: u64,
    /// Names of the open directories, innermost last; at most [`STACK_CAP`].
    stack: Vec<Option<Vec<u8>>>,
    stack_bytes: usize,
    /// Open directories (may exceed `stack.len()`).
    depth: u64,
    /// A `T` awaits its `C`/`D`.
    times_pending: bool,
    /// The sink answered a file's end before its end byte was seen: a sink
    /// that acks as soon as it has the data (PuTTY's pscp does) races the
    /// source's `\0` across the two directions. That end then awaits nothing.
    end_preacked: bool,
    ended: Option<End>,
    /// A direction ended in the middle of a file's data.
    truncated: bool,
    /// The source's direction reached its end.
    src_closed: bool,
    any_bytes: bool,
    finished: bool,
}

fn violation(out: &mut Vec<Event>, dir: Option<Dir>, name: &'static str, text: String) {
    out.push(Event::Violation {
        dir,
        v: Violation { name, text },
    });
}

/// `text` escaped for a sentence, at most [`QUOTE_CAP`] bytes of it.
fn quote(text: &[u8]) -> String {
    match text.get(..QUOTE_CAP) {
        Some(head) if head.len() < text.len() => format!("\"{}\"...", escape(head)),
        _ => format!("\"{}\"", escape(text)),
    }
}

fn byte_desc(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}' (0x{b:02x})", b as char)
    } else {
        format!("0x{b:02x}")
    }
}

impl Decoder {
    pub fn new(opts: Options) -> Self {
        let mut pending = VecDeque::new();
        pending.push_back(Pending::Ready);
        Decoder {
            opts,
            src: Side::new(),
            snk: Side::new(),
            file: None,
            warnings: 0,
            pending,
            pending_extra: 0,
            stack: Vec::new(),
            stack_bytes: 0,
            depth: 0,
            times_pending: false,
            end_preacked: false,
            ended: None,
            truncated: false,
            src_closed: false,
            any_bytes: false,
            finished: false,
        }
    }

    /// The direction that carries records and data.
    fn src_dir(&self) -> Dir {
        match self.opts.role {
            Role::Sink => Dir::In,
            Role::Source => Dir::Out,
        }
    }

    fn file_name(&self) -> Vec<u8> {
        self.file.as_ref().map(|f| f.name.clone()).unwrap_or_default()
    }

    fn file_size(&self) -> u64 {
        self.file.as_ref().map_or(0, |f| f.size)
    }

    /// Decodes `input`, the next bytes read in `dir`; consumes all of it.
    pub fn feed(&mut self, dir: Dir, input: &[u8], out: &mut Vec<Event>) {
        if input.is_empty() {
            return;
        }
        self.any_bytes = true;
        let is_src = dir == self.src_dir();
        let mut pos = 0;
        while pos < input.len() {
            pos = if is_src {
                self.step_src(dir, input, pos, out)
            } else {
                self.step_snk(dir, input, pos, out)
            };
        }
    }

    /// Bytes of the current file's data not yet seen in `dir` (0 if `dir` is
    /// not inside a file's data, or the sink has not accepted the file yet).
    pub fn data_remaining(&self, dir: Dir) -> u64 {
        if dir != self.src_dir() {
            return 0;
        }
        match self.src.st {
            St::Data { seen, .. } => self.file_size().saturating_sub(seen),
            _ => 0,
        }
    }

    /// `n` data bytes passed in `dir` without being looked at (splice): the same
    /// events as feeding them, with offsets counted within the `n`. `n` must not
    /// exceed [`Decoder::data_remaining`]; any excess is ignored.
    pub fn skip(&mut self, dir: Dir, n: u64, out: &mut Vec<Event>) {
        let n = n.min(self.data_remaining(dir));
        if n == 0 {
            return;
        }
        self.any_bytes = true;
        if let St::Data { started, seen } = self.src.st {
            if !started {
                out.push(Event::DataStart {
                    dir,
                    at: 0,
                    size: self.file_size(),
                });
            }
            let seen = seen.saturating_add(n);
            self.src.st = St::Data { started: true, seen };
            if seen >= self.file_size() {
                self.data_done(dir, usize::try_from(n).unwrap_or(usize::MAX), out);
            }
        }
    }

    /// `dir` reached its end: frames what is pending in it (a line without its
    /// newline, incomplete data) and flags what is missing.
    pub fn eof(&mut self, dir: Dir, out: &mut Vec<Event>) {
        let is_src = dir == self.src_dir();
        // Idempotent: every branch leaves the direction at a message boundary.
        self.src_closed |= is_src;
        let side = if is_src { &self.src } else { &self.snk };
        match side.st {
            St::Idle | St::AfterFile => {}
            St::Line(kind) => self.end_line(dir, is_src, kind, 0, LineEnd::Eof, out),
            St::Data { started, seen } => {
                let (name, size) = (self.file_name(), self.file_size());
                if started {
                    let msg = Msg::Data {
                        name: name.clone(),
                        size,
                        seen,
                        complete: false,
                    };
                    out.push(Event::Frame { dir, end: 0, msg });
                }
                violation(
                    out,
                    Some(dir),
                    "data-short",
                    format!(
                        "the stream ended after {seen} of the {size} bytes announced for {}",
                        quote(&name)
                    ),
                );
                self.src.st = St::Idle;
                self.truncated = true;
            }
            St::DataEnd => {
                let name = self.file_name();
                violation(
                    out,
                    Some(dir),
                    "missing-data-end",
                    format!(
                        "the stream ended where the \\0 after the data of {} was expected",
                        quote(&name)
                    ),
                );
                self.src.st = St::Idle;
            }
        }
    }

    /// The session is over (the program exited): closes both directions as
    /// [`Decoder::eof`] does, then reports what the whole session left undone.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.eof(Dir::In, out);
        self.eof(Dir::Out, out);
        // Nothing happened at all, or the conversation was cut short on
        // purpose: what is still open says nothing more.
        if !self.any_bytes || matches!(self.ended, Some(End::Fatal(_))) || self.truncated {
            return;
        }
        if self.depth > 0 {
            let names: Vec<String> = self
                .stack
                .iter()
                .rev()
                .take(5)
                .map(|n| n.as_deref().map_or_else(|| "?".to_string(), quote))
                .collect();
            let more = if self.depth > 5 { ", ..." } else { "" };
            violation(
                out,
                None,
                "unclosed-dirs",
                format!(
                    "the session ended with {} director{} entered by D and never left by E (innermost first: {}{more})",
                    self.depth,
                    if self.depth == 1 { "y" } else { "ies" },
                    names.join(", ")
                ),
            );
        }
        if self.times_pending {
            violation(
                out,
                None,
                "times-without-file",
                "the session ended after a T record that no C or D record followed".to_string(),
            );
        }
        let open = (self.pending.len() as u64).saturating_add(self.pending_extra);
        if open > 0 {
            let first = match self.pending.front() {
                Some(Pending::Ready) => "the sink's first \\0 (ready)",
                Some(Pending::Times) => "a T record",
                Some(Pending::File) => "a C record",
                Some(Pending::Dir { .. }) => "a D record",
                Some(Pending::EndDir { .. }) => "an E record",
                Some(Pending::DataEnd) => "the end of a file",
                Some(Pending::Bad) | None => "a bad record",
            };
            violation(
                out,
                None,
                "missing-reply",
                format!(
                    "the session ended with {open} message{} never answered by the sink, the first: {first}",
                    if open == 1 { "" } else { "s" }
                ),
            );
        }
    }

    /// Heap bytes held by the decoder, for tests of the memory bound.
    #[cfg(test)]
    pub fn buffered_bytes(&self) -> usize {
        self.src.line.capacity()
            + self.snk.line.capacity()
            + self.stack.capacity() * std::mem::size_of::<Option<Vec<u8>>>()
            + self.stack_bytes
            + self.pending.capacity() * std::mem::size_of::<Pending>()
            + self.file.as_ref().map_or(0, |f| f.name.capacity())
    }

    // ---- the source's direction -------------------------------------------

    /// Decodes from `input[pos]` in the source's direction; returns the new
    /// position. Either consumes at least one byte or changes the state to one
    /// that will.
    fn step_src(&mut self, dir: Dir, input: &[u8], pos: usize, out: &mut Vec<Event>) -> usize {
        let Some(&b) = input.get(pos) else {
            return input.len();
        };
        match self.src.st {
            St::Line(kind) => self.scan_line(dir, true, kind, input, pos, out),
            St::Data { started, seen } => {
                if !started {
                    out.push(Event::DataStart {
                        dir,
                        at: pos,
                        size: self.file_size(),
                    });
                }
                let remaining = self.file_size().saturating_sub(seen);
                let avail = input.len() - pos;
                let n = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
                let seen = seen.saturating_add(n as u64);
                self.src.st = St::Data { started: true, seen };
                let end = pos + n;
                if seen >= self.file_size() {
                    self.data_done(dir, end, out);
                }
                end
            }
            _ if self.ended.is_some() => {
                self.src.st = St::Line(Line::After);
                pos
            }
            St::AfterFile => {
                let name = self.file_name();
                violation(
                    out,
                    Some(dir),
                    "data-before-ack",
                    format!(
                        "the source went on after the C record of {} before the sink accepted it",
                        quote(&name)
                    ),
                );
                self.src.st = self.data_state();
                pos
            }
            St::DataEnd => match b {
                0 => {
                    self.src.st = St::Idle;
                    self.src.started = true;
                    let msg = Msg::DataEnd {
                        name: self.file_name(),
                    };
                    out.push(Event::Frame {
                        dir,
                        end: pos + 1,
                        msg,
                    });
                    self.push_data_end();
                    pos + 1
                }
                1 | 2 => {
                    self.src.after_data = true;
                    self.src.st = St::Line(if b == 1 { Line::Warning } else { Line::Fatal });
                    pos
                }
                _ => {
                    let name = self.file_name();
                    violation(
                        out,
                        Some(dir),
                        "missing-data-end",
                        format!(
                            "byte {} after the data of {} is not the \\0 that ends it; read as the start of the next record",
                            byte_desc(b),
                            quote(&name)
                        ),
                    );
                    self.src.st = St::Idle;
                    pos
                }
            },
            St::Idle => {
                let started = self.src.started;
                match b {
                    0 => {
                        self.src.started = true;
                        out.push(Event::Frame {
                            dir,
                            end: pos + 1,
                            msg: Msg::Ack,
                        });
                        violation(
                            out,
                            Some(dir),
                            "ack-instead-of-record",
                            "an ack (\\0) from the source, where its next record was expected".to_string(),
                        );
                        return pos + 1;
                    }
                    1 => self.src.st = St::Line(Line::Warning),
                    2 => self.src.st = St::Line(Line::Fatal),
                    _ if !started => self.src.st = St::Line(Line::Pre),
                    b'C' | b'D' | b'E' | b'T' => self.src.st = St::Line(Line::Record),
                    _ => self.src.st = St::Line(Line::Unknown),
                }
                pos
            }
        }
    }

    /// The state after an accepted `C`.
    fn data_state(&self) -> St {
        if self.file_size() == 0 {
            St::DataEnd
        } else {
            St::Data {
                started: false,
                seen: 0,
            }
        }
    }

    fn data_done(&mut self, dir: Dir, end: usize, out: &mut Vec<Event>) {
        let size = self.file_size();
        let msg = Msg::Data {
            name: self.file_name(),
            size,
            seen: size,
            complete: true,
        };
        out.push(Event::Frame { dir, end, msg });
        self.src.st = St::DataEnd;
    }

    // ---- the sink's direction ---------------------------------------------

    fn step_snk(&mut self, dir: Dir, input: &[u8], pos: usize, out: &mut Vec<Event>) -> usize {
        let Some(&b) = input.get(pos) else {
            return input.len();
        };
        match self.snk.st {
            St::Line(kind) => return self.scan_line(dir, false, kind, input, pos, out),
            _ if self.ended.is_some() => self.snk.st = St::Line(Line::After),
            _ => match b {
                0 => {
                    self.snk.started = true;
                    out.push(Event::Frame {
                        dir,
                        end: pos + 1,
                        msg: Msg::Ack,
                    });
                    self.reply(dir, Reply::Ack, out);
                    return pos + 1;
                }
                1 => self.snk.st = St::Line(Line::Warning),
                2 => self.snk.st = St::Line(Line::Fatal),
                _ if !self.snk.started => self.snk.st = St::Line(Line::Pre),
                b'C' | b'D' | b'E' | b'T' => self.snk.st = St::Line(Line::Record),
                _ => self.snk.st = St::Line(Line::BadAck),
            },
        }
        pos
    }

    /// A reply arrived: match it with what awaits one and apply its effect.
    fn reply(&mut self, dir: Dir, reply: Reply, out: &mut Vec<Event>) {
        let mut repeated = false;
        if reply == Reply::Warning {
            self.warnings = self.warnings.saturating_add(1);
            if self.warnings == 2 {
                repeated = true;
                let about = match &self.file {
                    Some(f) => format!("for {}", quote(&f.name)),
                    None => "for the same record".to_string(),
                };
                violation(
                    out,
                    Some(dir),
                    "repeated-warning",
                    format!(
                        "a second warning reply {about}; a source that reads one reply per message loses step"
                    ),
                );
            }
        }
        if reply == Reply::Fatal {
            self.ended = Some(End::Fatal(dir));
        }
        if self.pending.is_empty()
            && self.pending_extra == 0
            && self.src.st == St::DataEnd
            && !self.end_preacked
        {
            // All of the file's data has passed and its end byte has not been
            // seen yet: this reply answers that end (see `end_preacked`).
            self.end_preacked = true;
            return;
        }
        let Some(p) = self.pop_pending() else {
            // A fatal error needs no question; a bad reply was flagged already;
            // once the source is gone, the sink may say so ("lost connection").
            if !repeated && !self.src_closed && matches!(reply, Reply::Ack | Reply::Warning) {
                violation(
                    out,
                    Some(dir),
                    "unexpected-reply",
                    "a reply from the sink when no record or file end was waiting for one".to_string(),
                );
            }
            return;
        };
        let ok = reply == Reply::Ack;
        match p {
            Pending::Ready | Pending::DataEnd | Pending::Bad => {}
            Pending::Times => {
                if !ok {
                    // The source skips the file the refused times were for.
                    self.times_pending = false;
                }
            }
            Pending::File => {
                if self.src.st == St::AfterFile {
                    self.src.st = if ok { self.data_state() } else { St::Idle };
                }
            }
            Pending::Dir { depth } => {
                if !ok && self.depth == depth {
                    // Refused: the source does not descend, and sends no E.
                    self.pop_dir();
                }
            }
            Pending::EndDir { top } => {
                if top && ok && self.ended.is_none() {
                    self.ended = Some(End::TopLevelEnd);
                }
            }
        }
    }

    // ---- lines ----------------------------------------------------------

    /// Consumes line bytes from `input[pos..]`; frames the line at its end.
    fn scan_line(
        &mut self,
        dir: Dir,
        is_src: bool,
        kind: Line,
        input: &[u8],
        pos: usize,
        out: &mut Vec<Event>,
    ) -> usize {
        let rest = input.get(pos..).unwrap_or_default();
        let side = if is_src { &mut self.src } else { &mut self.snk };
        let mut kind = kind;
        if kind == Line::Pre && is_src {
            // The source's first line: its second byte tells a record (which
            // runs to its newline) from text (cut at LINE_CAP), so take the
            // first byte alone.
            match (side.line.as_slice(), rest.first()) {
                ([], Some(&b)) => {
                    side.push_line(&[b]);
                    if b == b'\n' {
                        self.end_line(dir, is_src, kind, pos + 1, LineEnd::Newline, out);
                    }
                    return pos + 1;
                }
                ([first], Some(&second)) if looks_like_record(&[*first, second]) => {
                    kind = Line::Record;
                    side.st = St::Line(kind);
                }
                _ => {}
            }
        }
        let text_like = matches!(kind, Line::Pre | Line::After);
        // Text frames are cut at LINE_CAP bytes; protocol lines run to their newline.
        let room = if text_like {
            usize::try_from((LINE_CAP as u64).saturating_sub(side.len))
                .unwrap_or(0)
                .max(1)
        } else {
            usize::MAX
        };
        // Before the protocol, the sink's text ends where its first \0 begins.
        let stop_nul = kind == Line::Pre && !is_src;
        let window = rest.get(..room).unwrap_or(rest);
        let hit = window.iter().position(|&b| b == b'\n' || (stop_nul && b == 0));
        match hit {
            Some(i) if window.get(i) == Some(&b'\n') => {
                side.push_line(window.get(..=i).unwrap_or_default());
                let end = pos + i + 1;
                self.end_line(dir, is_src, kind, end, LineEnd::Newline, out);
                end
            }
            Some(i) => {
                side.push_line(window.get(..i).unwrap_or_default());
                let end = pos + i;
                if side.len == 0 {
                    // Cannot happen (a text line starts with a byte that is not
                    // \0), but never emit an empty frame.
                    side.st = St::Idle;
                    return end;
                }
                self.end_line(dir, is_src, kind, end, LineEnd::Nul, out);
                end
            }
            None => {
                side.push_line(window);
                let end = pos + window.len();
                if text_like && side.len >= LINE_CAP as u64 {
                    self.end_line(dir, is_src, kind, end, LineEnd::Cap, out);
                }
                end
            }
        }
    }

    /// Frames the current line of a direction, which ends at `end`;
    /// `newline`: it ended with its newline (else: at EOF, at the text cap, or
    /// before a \0).
    fn end_line(
        &mut self,
        dir: Dir,
        is_src: bool,
        kind: Line,
        end: usize,
        why: LineEnd,
        out: &mut Vec<Event>,
    ) {
        let newline = why == LineEnd::Newline;
        let side = if is_src { &mut self.src } else { &mut self.snk };
        let mut line = std::mem::take(&mut side.line);
        let len = side.len;
        let after_data = side.after_data;
        side.len = 0;
        side.after_data = false;
        side.st = St::Idle;
        let too_long = len > LINE_CAP as u64;
        if newline && !too_long {
            line.pop();
        }
        let complete = newline && !too_long;
        let kind = match kind {
            // Before the protocol, a line is text unless it is a record: in the
            // source's direction, one that looks like a record (even a bad one
            // or one cut by EOF); in the sink's, a clean one.
            Line::Pre
                if is_src && looks_like_record(&line) && matches!(why, LineEnd::Newline | LineEnd::Eof) =>
            {
                Line::Record
            }
            Line::Pre if !is_src && complete && is_clean_record(&line) => Line::Record,
            // In the sink's direction, a line that starts like a record but is
            // not a clean one is just a bad reply.
            Line::Record if !is_src && (!complete || !is_clean_record(&line)) => Line::BadAck,
            k => k,
        };
        let at_eof = why == LineEnd::Eof && !matches!(kind, Line::Pre | Line::After);
        let mut viols: Vec<(&'static str, String)> = Vec::new();
        if too_long && !matches!(kind, Line::Pre | Line::After) {
            viols.push((
                "line-too-long",
                format!("a line of {len} bytes, longer than the {LINE_CAP} a record may take"),
            ));
        }
        if at_eof {
            viols.push((
                "line-without-newline",
                format!("the stream ended inside a line ({len} bytes without a newline)"),
            ));
        }
        let msg = match kind {
            Line::Warning | Line::Fatal => {
                if is_src {
                    self.src.started = true;
                } else {
                    self.snk.started = true;
                }
                let text = line.get(1..).unwrap_or_default().to_vec();
                let fatal = kind == Line::Fatal;
                let msg = if fatal {
                    Msg::Fatal(text)
                } else {
                    Msg::Warning(text)
                };
                self.emit(dir, end, msg, &viols, out);
                if is_src {
                    if fatal {
                        self.ended = Some(End::Fatal(dir));
                    } else if after_data && !at_eof {
                        // OpenSSH's source reports a read error in place of the
                        // \0; the sink still answers it.
                        self.push_data_end();
                    }
                } else if !at_eof {
                    self.reply(dir, if fatal { Reply::Fatal } else { Reply::Warning }, out);
                } else if fatal {
                    self.ended = Some(End::Fatal(dir));
                }
                return;
            }
            Line::After => {
                let side = if is_src { &mut self.src } else { &mut self.snk };
                if !side.after_end_flagged {
                    side.after_end_flagged = true;
                    let why = match self.ended {
                        Some(End::Fatal(d)) if d == dir => "after this side's fatal error",
                        Some(End::Fatal(_)) => "after the other side's fatal error",
                        _ => "after the E record that ended the sink",
                    };
                    viols.push((
                        "bytes-after-end",
                        format!("bytes after the session ended ({why})"),
                    ));
                }
                Msg::Text
            }
            Line::BadAck => {
                let b = line.first().copied().unwrap_or(0);
                viols.insert(
                    0,
                    (
                        "bad-ack",
                        format!(
                            "reply byte {} is not \\0, \\x01 or \\x02; the line read as an error message: {}",
                            byte_desc(b),
                            quote(&line)
                        ),
                    ),
                );
                self.emit(dir, end, Msg::Text, &viols, out);
                if !at_eof {
                    self.reply(dir, Reply::Garbage, out);
                }
                return;
            }
            Line::Unknown => {
                let b = line.first().copied().unwrap_or(0);
                let text = if b == b'\n' || (line.is_empty() && newline) {
                    "an empty line where a record was expected".to_string()
                } else {
                    format!(
                        "a line starting with {}, which starts no record: {}",
                        byte_desc(b),
                        quote(&line)
                    )
                };
                viols.insert(0, ("unknown-record", text));
                self.emit(dir, end, Msg::BadRecord, &viols, out);
                if !at_eof {
                    self.push_pending(Pending::Bad);
                }
                return;
            }
            Line::Pre => {
                let mut shown = line;
                if newline && too_long {
                    // `line` holds the head only.
                } else if newline {
                    shown.push(b'\n');
                }
                viols.push((
                    "output-before-protocol",
                    format!(
                        "{} before the protocol started (a shell start-up file that prints?): {}",
                        if is_src {
                            "the source wrote"
                        } else {
                            "the sink wrote"
                        },
                        quote(&shown)
                    ),
                ));
                Msg::Text
            }
            Line::Record => {
                if complete {
                    return self.end_record(dir, is_src, end, line, out);
                }
                // Source's direction, too long or cut by EOF: what we hold
                // cannot be trusted.
                if matches!(line.first(), Some(b'C' | b'D')) {
                    self.times_pending = false;
                }
                self.warnings = 0;
                self.src.started = true;
                self.emit(dir, end, Msg::BadRecord, &viols, out);
                if !at_eof {
                    self.push_pending(Pending::Bad);
                }
                return;
            }
        };
        self.emit(dir, end, msg, &viols, out);
    }

    fn emit(&self, dir: Dir, end: usize, msg: Msg, viols: &[(&'static str, String)], out: &mut Vec<Event>) {
        out.push(Event::Frame { dir, end, msg });
        for (name, text) in viols {
            violation(out, Some(dir), name, text.clone());
        }
    }

    /// Frames a complete record line (without its newline) and applies it.
    fn end_record(&mut self, dir: Dir, is_src: bool, end: usize, line: Vec<u8>, out: &mut Vec<Event>) {
        let mut viols = Vec::new();
        let parsed = parse_record(&line, &mut viols);
        if !is_src {
            // A record where a reply belongs: both sides think they are the source?
            self.snk.started = true;
            viols.clear();
            viols.push(record_instead_of_ack());
            self.emit(dir, end, parsed.unwrap_or(Msg::BadRecord), &viols, out);
            self.reply(dir, Reply::Garbage, out);
            return;
        }
        self.src.started = true;
        self.warnings = 0;
        let letter = line.first().copied().unwrap_or(0);
        let msg = match parsed {
            Some(Msg::File { mode, size, name }) => {
                self.times_pending = false;
                self.file = Some(File {
                    name: name.clone(),
                    size,
                });
                self.src.st = St::AfterFile;
                self.push_pending(Pending::File);
                Msg::File { mode, size, name }
            }
            Some(Msg::Dir { mode, name }) => {
                self.times_pending = false;
                if !self.opts.recursive {
                    viols.push((
                        "dir-without-r",
                        "a D record, but scp was not started with -r (OpenSSH: \"received directory without -r\")"
                            .to_string(),
                    ));
                }
                self.push_dir(&name);
                self.push_pending(Pending::Dir { depth: self.depth });
                Msg::Dir { mode, name }
            }
            Some(Msg::EndDir { .. }) => {
                if self.times_pending {
                    self.times_pending = false;
                    viols.push((
                        "times-without-file",
                        "a T record followed by an E record instead of a C or D record".to_string(),
                    ));
                }
                let top = self.depth == 0;
                let name = if top {
                    viols.push((
                        "unbalanced-end",
                        "an E record with no directory open (an OpenSSH sink ends here)".to_string(),
                    ));
                    None
                } else {
                    self.pop_dir()
                };
                self.push_pending(Pending::EndDir { top });
                Msg::EndDir { name }
            }
            Some(msg @ Msg::Times { .. }) => {
                if self.times_pending {
                    viols.push((
                        "times-without-file",
                        "a T record followed by another T record instead of a C or D record".to_string(),
                    ));
                }
                self.times_pending = true;
                self.push_pending(Pending::Times);
                msg
            }
            _ => {
                if matches!(letter, b'C' | b'D') {
                    self.times_pending = false;
                }
                self.push_pending(Pending::Bad);
                Msg::BadRecord
            }
        };
        self.emit(dir, end, msg, &viols, out);
    }

    // ---- bookkeeping ----------------------------------------------------

    /// A file's end (its `\0`, or an error in its place) awaits a reply,
    /// unless the sink has answered it already.
    fn push_data_end(&mut self) {
        if std::mem::take(&mut self.end_preacked) {
            return;
        }
        self.push_pending(Pending::DataEnd);
    }

    fn push_pending(&mut self, p: Pending) {
        if self.pending_extra > 0 || self.pending.len() >= PENDING_CAP {
            self.pending_extra = self.pending_extra.saturating_add(1);
        } else {
            self.pending.push_back(p);
        }
    }

    fn pop_pending(&mut self) -> Option<Pending> {
        if let Some(p) = self.pending.pop_front() {
            return Some(p);
        }
        if self.pending_extra > 0 {
            self.pending_extra -= 1;
            return Some(Pending::Bad);
        }
        None
    }

    fn push_dir(&mut self, name: &[u8]) {
        if self.stack.len() < STACK_CAP && self.depth == self.stack.len() as u64 {
            let keep = self.stack_bytes.saturating_add(name.len()) <= STACK_BYTES_CAP;
            if keep {
                self.stack_bytes = self.stack_bytes.saturating_add(name.len());
            }
            self.stack.push(keep.then(|| name.to_vec()));
        }
        self.depth = self.depth.saturating_add(1);
    }

    /// Leaves the innermost directory; its name if remembered.
    fn pop_dir(&mut self) -> Option<Vec<u8>> {
        if self.depth == 0 {
            return None;
        }
        self.depth -= 1;
        if self.depth < self.stack.len() as u64 {
            let name = self.stack.pop().flatten();
            if let Some(n) = &name {
                self.stack_bytes = self.stack_bytes.saturating_sub(n.len());
            }
            name
        } else {
            None
        }
    }
}

fn record_instead_of_ack() -> (&'static str, String) {
    (
        "record-instead-of-ack",
        "a record from the sink, where a reply (\\0, \\x01 or \\x02) was expected".to_string(),
    )
}

/// Whether a line (without its newline) from the source, before the protocol
/// started, is meant as a record rather than text: `C`, `D` or `T` and a digit
/// or a space (`Debian GNU/Linux` and `This account…` are text), or `E` alone.
fn looks_like_record(line: &[u8]) -> bool {
    match line {
        [b'C' | b'D' | b'T', d, ..] => d.is_ascii_digit() || *d == b' ',
        [b'E'] => true,
        _ => false,
    }
}

/// Whether a complete line (without its newline) is a well-formed record.
fn is_clean_record(line: &[u8]) -> bool {
    let mut v = Vec::new();
    parse_record(line, &mut v).is_some() && v.iter().all(|(n, _)| !is_syntax(n))
}

/// Violations that mean a line is not well-formed (as opposed to a well-formed
/// record with a dangerous or unusual value).
fn is_syntax(name: &str) -> bool {
    matches!(name, "bad-mode" | "bad-size" | "bad-times" | "bad-end")
}

/// Splits `s` at its first space: (before, after); `None` if there is none.
fn split_space(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == b' ')?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// A decimal number made of ASCII digits only, if it fits in a u64.
fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Parses a complete record line (without its newline): `C`, `D`, `E`, `T`.
/// Pushes the violations found; `None` if the line cannot be read as a record
/// at all (the caller frames it as [`Msg::BadRecord`]).
fn parse_record(line: &[u8], viols: &mut Vec<(&'static str, String)>) -> Option<Msg> {
    let (&letter, body) = line.split_first()?;
    match letter {
        b'C' | b'D' => parse_file_or_dir(letter, body, viols),
        b'E' => {
            if !body.is_empty() {
                viols.push((
                    "bad-end",
                    format!("an E record with bytes before its newline: {}", quote(body)),
                ));
            }
            Some(Msg::EndDir { name: None })
        }
        b'T' => parse_times(body, viols),
        _ => None,
    }
}

fn parse_file_or_dir(letter: u8, body: &[u8], viols: &mut Vec<(&'static str, String)>) -> Option<Msg> {
    let Some((mode_s, rest)) = split_space(body) else {
        viols.push((
            "bad-mode",
            format!(
                "the mode {} is not followed by a space (OpenSSH: \"mode not delimited\")",
                quote(body)
            ),
        ));
        return None;
    };
    let octal = !mode_s.is_empty() && mode_s.len() <= 10 && mode_s.iter().all(|b| (b'0'..=b'7').contains(b));
    if mode_s.len() != 4 || !octal {
        viols.push((
            "bad-mode",
            format!(
                "the mode {} is not exactly four octal digits followed by a space",
                quote(mode_s)
            ),
        ));
    }
    if !octal {
        return None;
    }
    let mode = mode_s.iter().fold(0u32, |acc, &b| {
        acc.saturating_mul(8).saturating_add(u32::from(b - b'0'))
    });
    let Some((size_s, name)) = split_space(rest) else {
        let why = if decimal(rest).is_some() {
            format!(
                "the size {} is not followed by a space and a name (OpenSSH: \"size not delimited\")",
                quote(rest)
            )
        } else {
            format!(
                "the size {} is not a decimal number followed by a space",
                quote(rest)
            )
        };
        viols.push(("bad-size", why));
        return None;
    };
    let Some(size) = decimal(size_s) else {
        let why = if size_s.is_empty() {
            "the size is missing (OpenSSH: \"size not present\")".to_string()
        } else if size_s.iter().all(u8::is_ascii_digit) {
            format!("the size {} is out of range (more than 2^64-1)", quote(size_s))
        } else {
            format!("the size {} is not a decimal number", quote(size_s))
        };
        viols.push(("bad-size", why));
        return None;
    };
    if size > i64::MAX as u64 {
        viols.push((
            "bad-size",
            format!("the size {size} is out of range for a file (more than 2^63-1; OpenSSH: \"size out of range\")"),
        ));
    }
    check_name(name, viols);
    Some(if letter == b'C' {
        Msg::File {
            mode,
            size,
            name: name.to_vec(),
        }
    } else {
        Msg::Dir {
            mode,
            name: name.to_vec(),
        }
    })
}

fn check_name(name: &[u8], viols: &mut Vec<(&'static str, String)>) {
    if name.is_empty() {
        viols.push(("bad-name", "the name is empty".to_string()));
    } else if name.contains(&0) {
        viols.push((
            "bad-name",
            format!(
                "the name {} contains a \\0 byte, which cuts it short for a C program",
                quote(name)
            ),
        ));
    }
    if name == b"." || name == b".." {
        viols.push((
            "name-dot",
            format!("the name {} would make the sink write to the target directory itself or its parent (CVE-2018-20685)", quote(name)),
        ));
    }
    if name.contains(&b'/') {
        viols.push((
            "name-slash",
            format!(
                "the name {} contains '/', so it could escape the target directory (CVE-2019-6111)",
                quote(name)
            ),
        ));
    }
    if name.len() > NAME_MAX {
        viols.push((
            "name-too-long",
            format!("the name is {} bytes long, more than {NAME_MAX}", name.len()),
        ));
    }
}

fn parse_times(body: &[u8], viols: &mut Vec<(&'static str, String)>) -> Option<Msg> {
    let mut fail = |why: String| {
        viols.push(("bad-times", why));
        None
    };
    let fields: Vec<&[u8]> = body.split(|&b| b == b' ').collect();
    let [m, mu, a, au] = fields.as_slice() else {
        return fail(format!(
            "the T record has {} space-separated fields instead of 4 (\"T<mtime> <mtime_us> <atime> <atime_us>\"): {}",
            fields.len(),
            quote(body)
        ));
    };
    let mut nums = [0u64; 4];
    let names = ["mtime", "mtime microseconds", "atime", "atime microseconds"];
    for (i, f) in [m, mu, a, au].into_iter().enumerate() {
        let (Some(slot), Some(what)) = (nums.get_mut(i), names.get(i)) else {
            return None;
        };
        match decimal(f) {
            Some(v) => *slot = v,
            None if f.is_empty() => {
                return fail(format!("the {what} field of the T record is missing"));
            }
            None => {
                return fail(format!(
                    "the {what} field {} is not a decimal number that fits in 64 bits",
                    quote(f)
                ));
            }
        }
    }
    let [mtime, mtime_us, atime, atime_us] = nums;
    for (what, us) in [("mtime", mtime_us), ("atime", atime_us)] {
        if us > 999_999 {
            return fail(format!(
                "the {what} microseconds {us} are out of range (0 to 999999)"
            ));
        }
    }
    for (what, s) in [("mtime", mtime), ("atime", atime)] {
        if s > i64::MAX as u64 {
            viols.push((
                "bad-times",
                format!("the {what} {s} is out of range for a time_t (OpenSSH ignores the times)"),
            ));
        }
    }
    Some(Msg::Times {
        mtime,
        mtime_us,
        atime,
        atime_us,
    })
}

#[cfg(test)]
mod tests {

    /// A sink that acks a file as soon as it has the data (PuTTY's pscp) can
    /// have its ack seen before the source's end byte: not a violation, and
    /// the end byte then awaits nothing.
    #[test]
    fn ack_overtaking_the_end_byte_is_not_a_violation() {
        use crate::protocol::scp::{Options, Role};
        let opts = Options {
            role: Role::Source,
            recursive: false,
            target_dir: false,
            preserve: false,
        };
        for overtake in [false, true] {
            let mut d = Decoder::new(opts);
            let mut ev = Vec::new();
            d.feed(Dir::In, b"\0", &mut ev);
            d.feed(Dir::Out, b"C0644 3 a\n", &mut ev);
            d.feed(Dir::In, b"\0", &mut ev);
            d.feed(Dir::Out, b"abc", &mut ev);
            if overtake {
                d.feed(Dir::In, b"\0", &mut ev);
                d.feed(Dir::Out, b"\0", &mut ev);
            } else {
                d.feed(Dir::Out, b"\0", &mut ev);
                d.feed(Dir::In, b"\0", &mut ev);
            }
            d.eof(Dir::In, &mut ev);
            d.eof(Dir::Out, &mut ev);
            d.finish(&mut ev);
            let v: Vec<_> = ev
                .iter()
                .filter(|e| matches!(e, Event::Violation { .. }))
                .collect();
            assert!(v.is_empty(), "overtake={overtake}: {v:?}");
        }
        // A second early ack is still one too many.
        let mut d = Decoder::new(opts);
        let mut ev = Vec::new();
        d.feed(Dir::In, b"\0", &mut ev);
        d.feed(Dir::Out, b"C0644 3 a\nabc", &mut ev);
        d.feed(Dir::In, b"\0\0\0", &mut ev);
        assert!(
            ev.iter()
                .any(|e| matches!(e, Event::Violation { v, .. } if v.name == "unexpected-reply"))
        );
    }

    use super::*;
    use crate::protocol::scp::Role;
    use crate::transcript::annotate::note;

    // ---- harness --------------------------------------------------------

    /// One decoded item, with a frame's bytes reconstructed from the offsets.
    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Item {
        Frame {
            dir: Dir,
            bytes: Vec<u8>,
            msg: Msg,
        },
        DataStart {
            dir: Dir,
            size: u64,
        },
        Violation {
            dir: Option<Dir>,
            name: &'static str,
            text: String,
        },
    }

    fn ix(dir: Dir) -> usize {
        match dir {
            Dir::In => 0,
            Dir::Out => 1,
        }
    }

    /// Drives a decoder and checks the framing contract on every event: frames
    /// are non-empty, contiguous per direction, DataStart is where the previous
    /// frame ended, and (after `finish`) every byte is in exactly one frame.
    pub(super) struct Harness {
        pub dec: Decoder,
        fed: [Vec<u8>; 2],
        framed: [usize; 2],
        pub items: Vec<Item>,
    }

    impl Harness {
        pub fn new(opts: Options) -> Self {
            Harness {
                dec: Decoder::new(opts),
                fed: [vec![], vec![]],
                framed: [0, 0],
                items: vec![],
            }
        }

        fn absorb(&mut self, base: [usize; 2], events: Vec<Event>) {
            for ev in events {
                match ev {
                    Event::Frame { dir, end, msg } => {
                        let d = ix(dir);
                        let abs = base[d] + end;
                        assert!(abs > self.framed[d], "empty or backwards frame {msg:?}");
                        assert!(abs <= self.fed[d].len(), "frame past the input {msg:?}");
                        let bytes = self.fed[d][self.framed[d]..abs].to_vec();
                        self.framed[d] = abs;
                        if let Msg::Data { seen, .. } = &msg {
                            assert_eq!(*seen, bytes.len() as u64, "data frame length");
                        }
                        self.items.push(Item::Frame { dir, bytes, msg });
                    }
                    Event::DataStart { dir, at, size } => {
                        let d = ix(dir);
                        assert_eq!(base[d] + at, self.framed[d], "DataStart not at a frame boundary");
                        self.items.push(Item::DataStart { dir, size });
                    }
                    Event::Violation { dir, v } => {
                        assert!(!v.text.is_empty());
                        assert!(v.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
                        self.items.push(Item::Violation {
                            dir,
                            name: v.name,
                            text: v.text,
                        });
                    }
                }
            }
        }

        pub fn feed(&mut self, dir: Dir, bytes: &[u8]) {
            let base = [self.fed[0].len(), self.fed[1].len()];
            self.fed[ix(dir)].extend_from_slice(bytes);
            let mut ev = Vec::new();
            self.dec.feed(dir, bytes, &mut ev);
            self.absorb(base, ev);
            assert!(
                self.dec.buffered_bytes() <= BOUND,
                "buffers grew to {}",
                self.dec.buffered_bytes()
            );
        }

        /// Passes `bytes` (which must be file data) with `skip`, as a splice would.
        pub fn skip(&mut self, dir: Dir, bytes: &[u8]) {
            assert!(bytes.len() as u64 <= self.dec.data_remaining(dir));
            let base = [self.fed[0].len(), self.fed[1].len()];
            self.fed[ix(dir)].extend_from_slice(bytes);
            let mut ev = Vec::new();
            self.dec.skip(dir, bytes.len() as u64, &mut ev);
            self.absorb(base, ev);
        }

        pub fn eof(&mut self, dir: Dir) {
            let base = [self.fed[0].len(), self.fed[1].len()];
            let mut ev = Vec::new();
            self.dec.eof(dir, &mut ev);
            self.absorb(base, ev);
        }

        pub fn finish(mut self) -> Vec<Item> {
            let base = [self.fed[0].len(), self.fed[1].len()];
            let mut ev = Vec::new();
            self.dec.finish(&mut ev);
            self.absorb(base, ev);
            for d in 0..2 {
                assert_eq!(
                    self.framed[d],
                    self.fed[d].len(),
                    "bytes left unframed in dir {d}"
                );
            }
            self.items
        }
    }

    /// The memory bound the proptest and every harness call check.
    const BOUND: usize = 2 * LINE_CAP
        + STACK_CAP * std::mem::size_of::<Option<Vec<u8>>>() * 2
        + STACK_BYTES_CAP
        + PENDING_CAP * std::mem::size_of::<Pending>() * 2
        + LINE_CAP;

    /// Segments in the order they were read; an empty one is that direction's EOF.
    pub(super) type Session = Vec<(Dir, Vec<u8>)>;

    fn seg(dir: Dir, b: &[u8]) -> (Dir, Vec<u8>) {
        (dir, b.to_vec())
    }

    fn opts(role: Role, recursive: bool, preserve: bool) -> Options {
        Options {
            role,
            recursive,
            target_dir: false,
            preserve,
        }
    }
    fn sink() -> Options {
        opts(Role::Sink, false, false)
    }
    fn sink_r() -> Options {
        opts(Role::Sink, true, true)
    }
    fn source() -> Options {
        opts(Role::Source, false, false)
    }

    /// Feeds each segment whole, then ends both directions and finishes.
    pub(super) fn run(o: Options, s: &Session) -> Vec<Item> {
        let mut h = Harness::new(o);
        for (d, b) in s {
            if b.is_empty() {
                h.eof(*d);
            }
            h.feed(*d, b);
        }
        h.eof(Dir::In);
        h.eof(Dir::Out);
        h.finish()
    }

    fn run_chunked(o: Options, s: &Session, chunk: impl Fn(usize, usize) -> Vec<usize>) -> Vec<Item> {
        let mut h = Harness::new(o);
        for (i, (d, b)) in s.iter().enumerate() {
            if b.is_empty() {
                h.eof(*d);
            }
            let mut start = 0;
            for cut in chunk(i, b.len()).into_iter().chain([b.len()]) {
                if cut > start && cut <= b.len() {
                    h.feed(*d, &b[start..cut]);
                    start = cut;
                }
            }
        }
        h.eof(Dir::In);
        h.eof(Dir::Out);
        h.finish()
    }

    /// Feeds with a splice-like driver: whenever the decoder says data is
    /// next, the data is skipped; everything else is fed a byte at a time.
    fn run_spliced(o: Options, s: &Session) -> Vec<Item> {
        let mut h = Harness::new(o);
        for (d, b) in s {
            if b.is_empty() {
                h.eof(*d);
            }
            let mut rest = &b[..];
            while !rest.is_empty() {
                let r = h.dec.data_remaining(*d);
                let n = if r > 0 {
                    (r.min(rest.len() as u64)) as usize
                } else {
                    1
                };
                if r > 0 {
                    h.skip(*d, &rest[..n]);
                } else {
                    h.feed(*d, &rest[..n]);
                }
                rest = &rest[n..];
            }
        }
        h.eof(Dir::In);
        h.eof(Dir::Out);
        h.finish()
    }

    /// Merges neighbouring segments of the same direction (reads coalesced).
    fn coalesced(s: &Session) -> Session {
        let mut out: Session = Vec::new();
        for (d, b) in s {
            match out.last_mut() {
                Some((ld, lb)) if ld == d && !lb.is_empty() && !b.is_empty() => lb.extend_from_slice(b),
                _ => out.push((*d, b.clone())),
            }
        }
        out
    }

    /// httparse-style: whole, coalesced, byte by byte, split at every position
    /// of the session, and spliced must all give the same items.
    pub(super) fn check_splits(o: Options, s: &Session) -> Vec<Item> {
        let whole = run(o, s);
        assert_eq!(run(o, &coalesced(s)), whole, "coalesced reads differ");
        let bytewise = run_chunked(o, s, |_, len| (1..len).collect());
        assert_eq!(bytewise, whole, "byte by byte differs");
        for (i, (_, b)) in s.iter().enumerate() {
            for k in 1..b.len() {
                let got = run_chunked(o, s, |j, _| if j == i { vec![k] } else { vec![] });
                assert_eq!(got, whole, "split of segment {i} at {k} differs");
            }
        }
        assert_eq!(run_spliced(o, s), whole, "spliced data differs");
        whole
    }

    fn frames(items: &[Item]) -> Vec<(Dir, Vec<u8>, Msg)> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Frame { dir, bytes, msg } => Some((*dir, bytes.clone(), msg.clone())),
                _ => None,
            })
            .collect()
    }

    fn msgs(items: &[Item]) -> Vec<Msg> {
        frames(items).into_iter().map(|f| f.2).collect()
    }

    fn notes(items: &[Item]) -> Vec<String> {
        frames(items).into_iter().map(|f| note(&f.2)).collect()
    }

    fn viols(items: &[Item]) -> Vec<&'static str> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Violation { name, .. } => Some(*name),
                _ => None,
            })
            .collect()
    }

    fn viol_text(items: &[Item], which: &str) -> String {
        items
            .iter()
            .find_map(|i| match i {
                Item::Violation { name, text, .. } if *name == which => Some(text.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {which} in {items:#?}"))
    }

    use Dir::{In, Out};

    // ---- realistic sessions ----------------------------------------------

    pub(super) fn upload_two() -> Session {
        vec![
            seg(Out, b"\0"),
            seg(In, b"C0644 21 a\n"),
            seg(Out, b"\0"),
            seg(In, b"file a file a file a\n"),
            seg(In, b"\0"),
            seg(Out, b"\0"),
            seg(In, b"C0600 3 b\n"),
            seg(Out, b"\0"),
            seg(In, b"xyz\0"),
            seg(Out, b"\0"),
        ]
    }

    fn tree_rp() -> Session {
        vec![
            seg(Out, b"\0"),
            seg(In, b"T1700000000 0 1700000001 0\n"),
            seg(Out, b"\0"),
            seg(In, b"D0755 0 top\n"),
            seg(Out, b"\0"),
            seg(In, b"T1700000002 123456 1700000003 999999\n"),
            seg(Out, b"\0"),
            seg(In, b"C0644 5 f\n"),
            seg(Out, b"\0"),
            seg(In, b"hello\0"),
            seg(Out, b"\0"),
            seg(In, b"D0700 0 empty\n"),
            seg(Out, b"\0"),
            seg(In, b"E\n"),
            seg(Out, b"\0"),
            seg(In, b"D0755 0 sub\n"),
            seg(Out, b"\0"),
            seg(In, b"C0600 0 nothing\n"),
            seg(Out, b"\0"),
            seg(In, b"\0"),
            seg(Out, b"\0"),
            seg(In, b"E\n"),
            seg(Out, b"\0"),
            seg(In, b"E\n"),
            seg(Out, b"\0"),
        ]
    }

    fn download() -> Session {
        vec![
            seg(In, b"\0"),
            seg(Out, b"C0644 5 f\n"),
            seg(In, b"\0"),
            seg(Out, b"hel"),
            seg(Out, b"lo\0"),
            seg(In, b"\0"),
            seg(Out, b"\x01scp: /x/missing: No such file or directory\n"),
            seg(Out, b"C0755 2 g\n"),
            seg(In, b"\0"),
            seg(Out, b"#!\0"),
            seg(In, b"\0"),
        ]
    }

    fn error_replies() -> Session {
        vec![
            seg(Out, b"\0"),
            // Refused: no data follows, the next record does.
            seg(In, b"C0644 4 locked\n"),
            seg(Out, b"\x01scp: /t/locked: Permission denied\n"),
            seg(In, b"C0644 4 full\n"),
            seg(Out, b"\0"),
            seg(In, b"abcd\0"),
            seg(Out, b"\x01scp: /t/full: No space left on device\n"),
            // The source could not read a file: zeros, then an error for the \0.
            seg(In, b"C0644 2 bad\n"),
            seg(Out, b"\0"),
            seg(In, b"\0\0\x01scp: bad: Input/output error\n"),
            seg(Out, b"\0"),
            seg(In, b"C0644 1 last\n"),
            seg(Out, b"\x02scp: fatal\n"),
        ]
    }

    #[test]
    fn upload_two_files() {
        let items = check_splits(sink(), &upload_two());
        assert_eq!(viols(&items), Vec::<&str>::new());
        assert_eq!(
            notes(&items),
            [
                "ack",
                "file \"a\", 21 B, mode 0644",
                "ack",
                "data of \"a\", 21 B",
                "end of \"a\"",
                "ack",
                "file \"b\", 3 B, mode 0600",
                "ack",
                "data of \"b\", 3 B",
                "end of \"b\"",
                "ack",
            ]
        );
        let f = frames(&items);
        assert_eq!(
            f[3],
            (
                In,
                b"file a file a file a\n".to_vec(),
                Msg::Data {
                    name: b"a".to_vec(),
                    size: 21,
                    seen: 21,
                    complete: true
                }
            )
        );
        assert_eq!(f[8].1, b"xyz");
        assert!(items.contains(&Item::DataStart { dir: In, size: 21 }));
    }

    #[test]
    fn recursive_tree_with_times() {
        let items = check_splits(sink_r(), &tree_rp());
        assert_eq!(viols(&items), Vec::<&str>::new());
        let n: Vec<String> = notes(&items).into_iter().filter(|n| n != "ack").collect();
        assert_eq!(
            n,
            [
                "times mtime 1700000000.000000 atime 1700000001.000000",
                "enter dir \"top\", mode 0755",
                "times mtime 1700000002.123456 atime 1700000003.999999",
                "file \"f\", 5 B, mode 0644",
                "data of \"f\", 5 B",
                "end of \"f\"",
                "enter dir \"empty\", mode 0700",
                "leave dir \"empty\"",
                "enter dir \"sub\", mode 0755",
                "file \"nothing\", 0 B, mode 0600",
                "end of \"nothing\"",
                "leave dir \"sub\"",
                "leave dir \"top\"",
            ]
        );
    }

    #[test]
    fn download_with_missing_file() {
        let items = check_splits(source(), &download());
        assert_eq!(viols(&items), Vec::<&str>::new());
        let m = msgs(&items);
        assert_eq!(m[5], Msg::Ack);
        assert_eq!(
            m[6],
            Msg::Warning(b"scp: /x/missing: No such file or directory".to_vec())
        );
        assert_eq!(
            m[9],
            Msg::Data {
                name: b"g".to_vec(),
                size: 2,
                seen: 2,
                complete: true
            }
        );
        assert!(
            frames(&items)
                .iter()
                .all(|(d, _, m)| (*d == Out) == !matches!(m, Msg::Ack))
        );
    }

    #[test]
    fn error_replies_keep_sync() {
        let items = check_splits(sink(), &error_replies());
        assert_eq!(viols(&items), Vec::<&str>::new(), "{items:#?}");
        let n = notes(&items);
        assert_eq!(
            n,
            [
                "ack",
                "file \"locked\", 4 B, mode 0644",
                "warning: scp: /t/locked: Permission denied",
                "file \"full\", 4 B, mode 0644",
                "ack",
                "data of \"full\", 4 B",
                "end of \"full\"",
                "warning: scp: /t/full: No space left on device",
                "file \"bad\", 2 B, mode 0644",
                "ack",
                "data of \"bad\", 2 B",
                "warning: scp: bad: Input/output error",
                "ack",
                "file \"last\", 1 B, mode 0644",
                "error: scp: fatal",
            ]
        );
    }

    #[test]
    fn big_sizes_are_normal() {
        let size: u64 = 5 << 30;
        let s = vec![
            seg(Out, b"\0"),
            seg(In, format!("C0644 {size} big\n").as_bytes()),
            seg(Out, b"\0"),
        ];
        let mut h = Harness::new(sink());
        for (d, b) in &s {
            h.feed(*d, b);
        }
        assert_eq!(h.dec.data_remaining(In), size);
        assert_eq!(h.dec.data_remaining(Out), 0);
        h.feed(In, &[7; 1000]);
        let mut ev = Vec::new();
        h.dec.skip(In, size - 1000, &mut ev);
        assert!(
            matches!(ev.as_slice(), [Event::Frame { end, msg: Msg::Data { complete: true, .. }, .. }] if *end as u64 == size - 1000)
        );
    }

    // ---- every message and violation, from crafted streams ----------------

    /// A `-t` session: the sink's ready, then `records` from the source, each
    /// answered by `\0`.
    fn upload(records: &[&[u8]]) -> Session {
        let mut s = vec![seg(Out, b"\0")];
        for r in records {
            s.push(seg(In, r));
            s.push(seg(Out, b"\0"));
        }
        s
    }

    /// A `-t` session: the sink's ready, then `record`, refused as OpenSSH does.
    fn refused(record: &[u8]) -> Session {
        vec![
            seg(Out, b"\0"),
            seg(In, record),
            seg(Out, b"\x01scp: protocol error: ...\n"),
        ]
    }

    /// The violations of a session checked under every splitting.
    fn vnames(o: Options, s: &Session) -> Vec<&'static str> {
        viols(&check_splits(o, s))
    }

    #[test]
    fn output_before_protocol_sink_side() {
        let s = vec![
            seg(Out, b"Welcome to host\nhello"),
            seg(Out, b"\0"),
            seg(In, b"C0644 1 a\n"),
        ];
        let items = check_splits(sink(), &s);
        let f = frames(&items);
        assert_eq!(f[0], (Out, b"Welcome to host\n".to_vec(), Msg::Text));
        assert_eq!(f[1], (Out, b"hello".to_vec(), Msg::Text));
        assert_eq!(f[2], (Out, b"\0".to_vec(), Msg::Ack));
        assert_eq!(
            viols(&items)[..2],
            ["output-before-protocol", "output-before-protocol"]
        );
        assert!(viol_text(&items, "output-before-protocol").contains("\"Welcome to host\\n\""));
    }

    #[test]
    fn output_before_protocol_source_side() {
        // `-f` traced through ssh: the remote shell's banner precedes the records.
        let s = vec![
            seg(In, b"\0"),
            seg(Out, b"Debian GNU/Linux 12\nThis is a test\nC0644 1 a\n"),
            seg(In, b"\0"),
            seg(Out, b"x\0"),
            seg(In, b"\0"),
        ];
        let items = check_splits(source(), &s);
        assert_eq!(
            viols(&items),
            ["output-before-protocol", "output-before-protocol"]
        );
        let m = msgs(&items);
        assert_eq!(m[1..3], [Msg::Text, Msg::Text]);
        assert!(matches!(&m[3], Msg::File { name, .. } if name == b"a"));
        // A clean first record is no preamble.
        assert_eq!(vnames(sink(), &upload_two()), Vec::<&str>::new());
    }

    #[test]
    fn text_frames_are_capped() {
        let mut banner = vec![b'x'; LINE_CAP + 10];
        banner.push(b'\n');
        let items = run(sink(), &vec![seg(Out, &banner), seg(Out, b"\0")]);
        let f = frames(&items);
        assert_eq!(f[0].1.len(), LINE_CAP);
        assert_eq!(f[1].1.len(), 11);
        assert_eq!(f[2].2, Msg::Ack);
    }

    #[test]
    fn record_instead_of_ack() {
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"C0644 1 a\n"),
            seg(Out, b"C0644 1 a\n"),
            seg(In, b"C0644 1 b\n"),
        ];
        let items = check_splits(sink(), &s);
        assert_eq!(viols(&items), ["record-instead-of-ack", "missing-reply"]);
        let f = frames(&items);
        assert_eq!(f[2].0, Out);
        assert!(matches!(&f[2].2, Msg::File { name, .. } if name == b"a"));
        // The odd reply counts as a refusal: the next record is not data.
        assert!(matches!(&f[3].2, Msg::File { name, .. } if name == b"b"));
        // Before the protocol too: both sides think they send.
        let s = vec![seg(In, b"D0755 0 d\n"), seg(Out, b"C0644 1 a\n")];
        let v = vnames(opts(Role::Source, true, false), &s);
        assert_eq!(v, ["record-instead-of-ack", "missing-reply"]);
    }

    #[test]
    fn ack_instead_of_record() {
        let s = vec![seg(Out, b"\0"), seg(In, b"\0"), seg(In, b"C0644 1 a\n")];
        let items = check_splits(sink(), &s);
        assert_eq!(viols(&items), ["ack-instead-of-record", "missing-reply"]);
        assert_eq!(frames(&items)[1], (In, b"\0".to_vec(), Msg::Ack));
    }

    #[test]
    fn bad_ack() {
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"C0644 1 a\n"),
            seg(Out, b"?what\n"),
            seg(In, b"C0644 1 b\n"),
        ];
        let items = check_splits(sink(), &s);
        assert_eq!(viols(&items), ["bad-ack", "missing-reply"]);
        assert_eq!(frames(&items)[2], (Out, b"?what\n".to_vec(), Msg::Text));
        assert!(viol_text(&items, "bad-ack").contains("'?' (0x3f)"));
        // A line that starts like a record but is none is a bad reply too.
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"C0644 1 a\n"),
            seg(Out, b"Cannot write\n"),
        ];
        assert_eq!(vnames(sink(), &s), ["bad-ack"]);
    }

    #[test]
    fn bad_mode() {
        // OpenSSH: "mode not delimited"; the digits still give a mode.
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"C04755 5 x\n"),
            seg(Out, b"\x01scp: protocol error: mode not delimited\n"),
        ];
        let items = check_splits(sink(), &s);
        assert_eq!(viols(&items), ["bad-mode"]);
        assert_eq!(
            msgs(&items)[1],
            Msg::File {
                mode: 0o4755,
                size: 5,
                name: b"x".to_vec()
            }
        );
        for bad in [&b"C0x44 5 x\n"[..], b"C0644\n", b"C 5 x\n", b"C644 5 x\n"] {
            let items = run(sink(), &refused(bad));
            assert_eq!(viols(&items), ["bad-mode"], "{}", escape(bad));
            let ok = msgs(&items)[1] == Msg::BadRecord || bad == b"C644 5 x\n";
            assert!(ok, "{}", escape(bad));
        }
    }

    #[test]
    fn bad_size() {
        for bad in [
            &b"C0644 abc x\n"[..],
            b"C0644  x\n",
            b"C0644 99999999999999999999999 x\n",
            b"C0644 12\n",
            b"C0644 -1 x\n",
            b"D0755 x d\n",
        ] {
            let items = run(sink_r(), &upload(&[bad]));
            assert_eq!(viols(&items), ["bad-size"], "{}", escape(bad));
            assert_eq!(msgs(&items)[1], Msg::BadRecord);
        }
        // Past off_t: flagged, but the record is still a file.
        let items = run(sink(), &upload(&[b"C0644 9223372036854775808 x\n"]));
        assert!(viols(&items).starts_with(&["bad-size"]));
        assert!(matches!(
            msgs(&items)[1],
            Msg::File {
                size: 9_223_372_036_854_775_808,
                ..
            }
        ));
        // 4 GiB and more is normal.
        let items = run(sink(), &upload(&[b"C0644 4294967296 x\n"]));
        assert_eq!(viols(&items), ["data-short"]);
    }

    #[test]
    fn bad_times() {
        for bad in [
            &b"T1 0 1\n"[..],
            b"T1 1000000 1 0\n",
            b"T1 0 1 1000000\n",
            b"T1 0 1 x\n",
            b"T 0 1 0\n",
            b"T1 0 1 0 \n",
            b"T1  0 1 0\n",
            b"T99999999999999999999 0 1 0\n",
        ] {
            let items = run(sink(), &upload(&[bad, b"C0644 0 a\n", b"\0"]));
            assert_eq!(viols(&items), ["bad-times"], "{}", escape(bad));
            assert_eq!(msgs(&items)[1], Msg::BadRecord, "{}", escape(bad));
        }
        let items = run(
            sink(),
            &upload(&[b"T18446744073709551615 0 1 0\n", b"C0644 0 a\n", b"\0"]),
        );
        assert_eq!(viols(&items), ["bad-times"]);
        assert!(matches!(msgs(&items)[1], Msg::Times { mtime: u64::MAX, .. }));
    }

    #[test]
    fn bad_names() {
        let cases: [(&[u8], &[&str]); 8] = [
            (b"C0644 0 \n", &["bad-name"]),
            (b"C0644 0 a\0b\n", &["bad-name"]),
            (b"C0644 0 .\n", &["name-dot"]),
            (b"C0644 0 ..\n", &["name-dot"]),
            (b"C0644 0 a/b\n", &["name-slash"]),
            (b"C0644 0 ../../etc/passwd\n", &["name-slash"]),
            (b"D0755 0 ..\n", &["name-dot", "unclosed-dirs"]),
            (b"D0755 0 /tmp\n", &["name-slash", "unclosed-dirs"]),
        ];
        for (rec, want) in cases {
            let mut recs = vec![rec];
            if rec[0] == b'C' {
                recs.push(b"\0");
            }
            let items = check_splits(sink_r(), &upload(&recs));
            assert_eq!(viols(&items), want, "{}", escape(rec));
            assert!(matches!(msgs(&items)[1], Msg::File { .. } | Msg::Dir { .. }));
        }
        let long = [&b"C0644 0 "[..], &[b'n'; NAME_MAX + 1], b"\n"].concat();
        let items = run(sink(), &upload(&[&long, b"\0"]));
        assert_eq!(viols(&items), ["name-too-long"]);
        let ok = [&b"C0644 0 "[..], &[b'n'; NAME_MAX], b"\n"].concat();
        assert_eq!(viols(&run(sink(), &upload(&[&ok, b"\0"]))), Vec::<&str>::new());
    }

    #[test]
    fn dir_without_r() {
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"D0755 0 d\n"),
            seg(Out, b"\x01scp: protocol error: received directory without -r\n"),
        ];
        let items = check_splits(sink(), &s);
        // Refused: the directory was not entered, so nothing is left open.
        assert_eq!(viols(&items), ["dir-without-r"]);
        assert_eq!(
            vnames(sink_r(), &upload(&[b"D0755 0 d\n", b"E\n"])),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn unbalanced_end_and_bytes_after_it() {
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"E\n"),
            seg(Out, b"\0"),
            seg(In, b"C0644 1 a\n"),
        ];
        let items = check_splits(sink_r(), &s);
        assert_eq!(viols(&items), ["unbalanced-end", "bytes-after-end"]);
        let m = msgs(&items);
        assert_eq!(m[1], Msg::EndDir { name: None });
        assert_eq!(note(&m[1]), "leave dir");
        assert_eq!(m[3], Msg::Text);
    }

    #[test]
    fn unclosed_dirs() {
        let items = check_splits(sink_r(), &upload(&[b"D0755 0 a\n", b"D0755 0 b\n", b"E\n"]));
        assert_eq!(viols(&items), ["unclosed-dirs"]);
        assert!(viol_text(&items, "unclosed-dirs").contains("1 directory"));
        assert!(viol_text(&items, "unclosed-dirs").contains("\"a\""));
        // Not after a fatal error: that ends everything anyway.
        let mut s = upload(&[b"D0755 0 a\n"]);
        s.push(seg(In, b"\x02scp: giving up\n"));
        assert_eq!(vnames(sink_r(), &s), Vec::<&str>::new());
    }

    #[test]
    fn data_short() {
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"C0644 10 a\n"),
            seg(Out, b"\0"),
            seg(In, b"abcd"),
        ];
        let items = check_splits(sink(), &s);
        assert_eq!(viols(&items), ["data-short"]);
        assert!(viol_text(&items, "data-short").contains("4 of the 10 bytes"));
        let m = msgs(&items);
        assert_eq!(
            m[3],
            Msg::Data {
                name: b"a".to_vec(),
                size: 10,
                seen: 4,
                complete: false
            }
        );
        assert_eq!(note(&m[3]), "data of \"a\", 4 of 10 B, incomplete");
        // Nothing of it at all: no empty frame, still the violation.
        let items = run(sink(), &upload(&[b"C0644 10 a\n"]));
        assert_eq!(viols(&items), ["data-short"]);
        assert_eq!(frames(&items).len(), 3);
    }

    #[test]
    fn missing_data_end() {
        // libssh2 sends the next record right after the data.
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"C0644 3 a\n"),
            seg(Out, b"\0"),
            seg(In, b"abcC0644 1 b\n"),
            seg(Out, b"\0"),
            seg(In, b"x"),
        ];
        let items = check_splits(sink(), &s);
        assert_eq!(viols(&items), ["missing-data-end", "missing-data-end"]);
        let m = msgs(&items);
        assert!(matches!(&m[3], Msg::Data { complete: true, .. }));
        assert!(matches!(&m[4], Msg::File { name, .. } if name == b"b"));
        assert!(viol_text(&items, "missing-data-end").contains("'C' (0x43)"));
    }

    #[test]
    fn repeated_warning() {
        // An old sink reports a write error during the data, then again after it.
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"C0644 4 a\n"),
            seg(Out, b"\0"),
            seg(In, b"ab"),
            seg(Out, b"\x01scp: a: No space left on device\n"),
            seg(In, b"cd\0"),
            seg(Out, b"\x01scp: a: No space left on device\n"),
        ];
        let items = check_splits(sink(), &s);
        assert_eq!(viols(&items), ["unexpected-reply", "repeated-warning"]);
        assert!(viol_text(&items, "repeated-warning").contains("\"a\""));
        // One warning per file is normal.
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"C0644 1 a\n"),
            seg(Out, b"\x01scp: a: Permission denied\n"),
        ];
        assert_eq!(vnames(sink(), &s), Vec::<&str>::new());
    }

    #[test]
    fn unexpected_reply() {
        let s = vec![seg(Out, b"\0"), seg(Out, b"\0")];
        assert_eq!(vnames(sink(), &s), ["unexpected-reply"]);
    }

    #[test]
    fn line_without_newline() {
        let items = check_splits(sink(), &vec![seg(Out, b"\0"), seg(In, b"C0644 1 a")]);
        assert_eq!(viols(&items), ["line-without-newline"]);
        assert_eq!(frames(&items)[1], (In, b"C0644 1 a".to_vec(), Msg::BadRecord));
        let items = check_splits(sink(), &vec![seg(Out, b"\0\x01scp: cut")]);
        assert_eq!(viols(&items), ["line-without-newline"]);
        assert_eq!(msgs(&items)[1], Msg::Warning(b"scp: cut".to_vec()));
    }

    #[test]
    fn bytes_after_end() {
        // scp -t said fatal and exited; the peer's bytes go nowhere.
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"C0644 1 a\n"),
            seg(Out, b"\x02scp: fatal\n"),
            seg(In, b"x\0C0644 1 b\n"),
            seg(Out, b"junk"),
        ];
        let items = check_splits(sink(), &s);
        assert_eq!(viols(&items), ["bytes-after-end", "bytes-after-end"]);
        let f = frames(&items);
        assert_eq!(f[3], (In, b"x\0C0644 1 b\n".to_vec(), Msg::Text));
        assert_eq!(f[4], (Out, b"junk".to_vec(), Msg::Text));
        // The source's own fatal error ends it too, but not data in flight.
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"C0644 4 a\n"),
            seg(Out, b"\0"),
            seg(In, b"ab"),
            seg(Out, b"\x02scp: disk on fire\n"),
            seg(In, b"cd\0more"),
        ];
        let items = check_splits(sink(), &s);
        assert_eq!(viols(&items), ["bytes-after-end"]);
        let f = frames(&items);
        assert_eq!(
            f[4],
            (
                In,
                b"abcd".to_vec(),
                Msg::Data {
                    name: b"a".to_vec(),
                    size: 4,
                    seen: 4,
                    complete: true
                }
            )
        );
        assert_eq!(f[5], (In, b"\0more".to_vec(), Msg::Text));
    }

    #[test]
    fn line_too_long() {
        let mut rec = b"C0644 1 ".to_vec();
        rec.extend(std::iter::repeat_n(b'n', LINE_CAP + 100));
        rec.push(b'\n');
        let s = vec![
            seg(Out, b"\0"),
            seg(In, &rec),
            seg(Out, b"\x01scp: protocol error\n"),
        ];
        let items = check_splits(sink(), &s);
        assert_eq!(viols(&items), ["line-too-long"]);
        assert_eq!(frames(&items)[1], (In, rec.clone(), Msg::BadRecord));
        // A warning may be long too; its text is cut, the frame is whole.
        let mut w = b"\x01".to_vec();
        w.extend(std::iter::repeat_n(b'w', LINE_CAP * 2));
        w.push(b'\n');
        let items = run(sink(), &vec![seg(Out, &w)]);
        assert_eq!(viols(&items), ["line-too-long"]);
        assert!(matches!(&msgs(&items)[0], Msg::Warning(t) if t.len() == LINE_CAP - 1));
    }

    #[test]
    fn unknown_record() {
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"C0644 0 a\n"),
            seg(Out, b"\0"),
            seg(In, b"\0"),
            seg(Out, b"\0"),
            seg(In, b"X marks\n"),
        ];
        let items = check_splits(sink(), &s);
        assert_eq!(viols(&items), ["unknown-record", "missing-reply"]);
        assert!(viol_text(&items, "unknown-record").contains("'X'"));
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"C0644 0 a\n"),
            seg(Out, b"\0"),
            seg(In, b"\0"),
            seg(Out, b"\0"),
            seg(In, b"\n"),
        ];
        let items = check_splits(sink(), &s);
        assert!(viol_text(&items, "unknown-record").contains("empty line"));
    }

    #[test]
    fn times_without_file() {
        assert_eq!(
            vnames(
                sink_r(),
                &upload(&[b"T1 0 1 0\n", b"T2 0 2 0\n", b"C0644 0 a\n", b"\0"])
            ),
            ["times-without-file"]
        );
        assert_eq!(
            vnames(sink_r(), &upload(&[b"D0755 0 d\n", b"T1 0 1 0\n", b"E\n"])),
            ["times-without-file"]
        );
        assert_eq!(
            vnames(sink_r(), &upload(&[b"T1 0 1 0\n"])),
            ["times-without-file"]
        );
        // Refused times: the source skips that file, nothing is pending.
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"T1 0 1 0\n"),
            seg(Out, b"\x01scp: no\n"),
        ];
        assert_eq!(vnames(sink(), &s), Vec::<&str>::new());
    }

    #[test]
    fn data_before_ack() {
        let s = vec![seg(Out, b"\0"), seg(In, b"C0644 3 a\nabc\0"), seg(Out, b"\0\0")];
        let items = check_splits(sink(), &s);
        assert_eq!(viols(&items), ["data-before-ack"]);
        assert!(matches!(&msgs(&items)[2], Msg::Data { complete: true, .. }));
    }

    #[test]
    fn missing_reply() {
        let items = check_splits(sink(), &vec![seg(In, b"C0644 0 a\n")]);
        assert_eq!(viols(&items), ["missing-reply"]);
        assert!(viol_text(&items, "missing-reply").contains("2 messages"));
        // A session with no bytes at all says nothing.
        assert_eq!(run(sink(), &vec![]), vec![]);
    }

    #[test]
    fn bad_end() {
        let items = check_splits(sink_r(), &upload(&[b"D0755 0 d\n", b"E d\n"]));
        assert_eq!(viols(&items), ["bad-end"]);
        assert_eq!(
            msgs(&items)[3],
            Msg::EndDir {
                name: Some(b"d".to_vec())
            }
        );
    }

    #[test]
    fn fatal_and_warning_from_source() {
        let s = vec![
            seg(In, b"\0"),
            seg(Out, b"\x01scp: a: not a regular file\n\x02scp: b: fatal\n"),
        ];
        let items = check_splits(source(), &s);
        assert_eq!(viols(&items), Vec::<&str>::new());
        let m = msgs(&items);
        assert_eq!(m[1], Msg::Warning(b"scp: a: not a regular file".to_vec()));
        assert_eq!(m[2], Msg::Fatal(b"scp: b: fatal".to_vec()));
        assert_eq!(note(&m[2]), "error: scp: b: fatal");
    }

    #[test]
    fn refused_dir_is_not_entered() {
        let s = vec![
            seg(Out, b"\0"),
            seg(In, b"D0755 0 ro\n"),
            seg(Out, b"\x01scp: ro: Permission denied\n"),
            seg(In, b"D0755 0 ok\n"),
            seg(Out, b"\0"),
            seg(In, b"E\n"),
            seg(Out, b"\0"),
        ];
        let items = check_splits(sink_r(), &s);
        assert_eq!(viols(&items), Vec::<&str>::new());
        assert_eq!(
            msgs(&items)[5],
            Msg::EndDir {
                name: Some(b"ok".to_vec())
            }
        );
    }

    #[test]
    fn deep_trees_stay_bounded() {
        let mut h = Harness::new(sink_r());
        h.feed(Out, b"\0");
        let name = vec![b'd'; 1000];
        let d = [&b"D0755 0 "[..], &name, b"\n"].concat();
        for _ in 0..STACK_CAP + 50 {
            h.feed(In, &d);
            h.feed(Out, b"\0");
        }
        assert_eq!(h.dec.depth, (STACK_CAP + 50) as u64);
        assert!(h.dec.stack_bytes <= STACK_BYTES_CAP);
        for _ in 0..STACK_CAP + 50 {
            h.feed(In, b"E\n");
            h.feed(Out, b"\0");
        }
        let items = h.finish();
        assert_eq!(viols(&items), Vec::<&str>::new());
        assert_eq!(msgs(&items).last(), Some(&Msg::Ack));
        assert!(msgs(&items).contains(&Msg::EndDir { name: Some(name) }));
    }

    #[test]
    fn pipelined_records_stay_bounded() {
        let mut h = Harness::new(sink());
        for _ in 0..PENDING_CAP * 3 {
            h.feed(In, b"T1 0 1 0\n");
        }
        assert_eq!(h.dec.pending.len(), PENDING_CAP);
        let v = viols(&h.finish());
        // Each T after the first has no file; at the end: a T and replies missing.
        assert_eq!(v.len(), PENDING_CAP * 3 - 1 + 2);
    }

    #[test]
    fn skip_equals_feed() {
        let mut data = vec![0u8; 300_000];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        let s = vec![
            seg(Out, b"\0"),
            seg(In, format!("C0644 {} big\n", data.len()).as_bytes()),
            seg(Out, b"\0"),
            seg(In, &data[..1000]),
            seg(In, &data[1000..]),
            seg(In, b"\0"),
            seg(Out, b"\0"),
        ];
        let fed = run(sink(), &s);
        assert_eq!(run_spliced(sink(), &s), fed);
        assert_eq!(
            run_chunked(sink(), &s, |_, len| (1..len).step_by(4096).collect()),
            fed
        );
        assert_eq!(viols(&fed), Vec::<&str>::new());
    }

    #[test]
    fn garbage_is_bounded() {
        let mut h = Harness::new(opts(Role::Source, true, true));
        let mut x: u32 = 12345;
        let mut buf = vec![0u8; 64 * 1024];
        for round in 0..32 {
            for b in buf.iter_mut() {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *b = (x >> 16) as u8;
                // Few newlines: long lines.
                if *b == b'\n' && round % 2 == 0 {
                    *b = b'C';
                }
            }
            h.feed(if round % 3 == 0 { In } else { Out }, &buf);
        }
        h.finish();
    }

    // ---- sessions with the real OpenSSH scp ------------------------------

    mod real {
        use super::*;
        use std::io::{Read, Write};
        use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

        const SCP: &str = "/usr/bin/scp";

        fn have_scp() -> bool {
            let ok = std::path::Path::new(SCP).exists();
            if !ok {
                eprintln!("skipped: {SCP} is missing");
            }
            ok
        }

        /// A conversation with a real scp server, message by message: what we
        /// sent (`In`) and what it answered (`Out`), in causal order.
        struct Peer {
            child: Child,
            stdin: Option<ChildStdin>,
            stdout: ChildStdout,
            session: Session,
        }

        impl Peer {
            fn start(args: &[&str]) -> Peer {
                Peer::spawn(Command::new("timeout").arg("20").arg(SCP).args(args))
            }

            /// Through `sh -c SCRIPT`, for a shell that prints first.
            fn shell(script: &str) -> Peer {
                Peer::spawn(Command::new("timeout").args(["20", "sh", "-c", script]))
            }

            fn spawn(cmd: &mut Command) -> Peer {
                // `timeout` ends a test that waits for a reply that never comes.
                let mut child = cmd
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn scp");
                let stdin = child.stdin.take();
                let stdout = child.stdout.take().expect("stdout");
                Peer {
                    child,
                    stdin,
                    stdout,
                    session: vec![],
                }
            }

            fn send(&mut self, b: &[u8]) {
                if let Some(w) = self.stdin.as_mut() {
                    // scp may have exited already: the bytes still count as sent.
                    let _ = w.write_all(b).and_then(|()| w.flush());
                }
                self.session.push(seg(In, b));
            }

            fn byte(&mut self) -> Option<u8> {
                let mut b = [0u8];
                match self.stdout.read(&mut b) {
                    Ok(1) => Some(b[0]),
                    _ => None,
                }
            }

            fn record(&mut self, got: Vec<u8>) -> Option<Vec<u8>> {
                if got.is_empty() {
                    return None;
                }
                self.session.push(seg(Out, &got));
                Some(got)
            }

            /// One line (up to its newline), as scp's `response()` reads a
            /// message; just the byte if it is a `\0`.
            fn reply(&mut self) -> Option<Vec<u8>> {
                let mut got = Vec::new();
                while let Some(b) = self.byte() {
                    got.push(b);
                    if b == b'\n' || (b == 0 && got.len() == 1) {
                        break;
                    }
                }
                self.record(got)
            }

            fn exact(&mut self, n: usize) -> Option<Vec<u8>> {
                let mut got = vec![0u8; n];
                let k = self.stdout.read_exact(&mut got).map_or(0, |()| n);
                got.truncate(k);
                self.record(got)
            }

            /// Closes scp's stdin, reads what it still says, waits for it.
            fn finish(mut self) -> Session {
                drop(self.stdin.take());
                self.session.push(seg(In, b""));
                let mut rest = Vec::new();
                let _ = self.stdout.read_to_end(&mut rest);
                self.record(rest);
                let _ = self.child.wait();
                self.session
            }

            /// Plays an OpenSSH-like sink against `scp -f`: acks every record
            /// and file, reads each file's data.
            fn act_as_sink(&mut self) {
                self.send(b"\0");
                while let Some(line) = self.reply() {
                    match line.first() {
                        Some(1) => continue,
                        Some(b'C') => {
                            let size: usize = String::from_utf8_lossy(&line)
                                .split(' ')
                                .nth(1)
                                .and_then(|s| s.parse().ok())
                                .expect("size");
                            self.send(b"\0");
                            if size > 0 {
                                self.exact(size);
                            }
                            self.exact(1);
                            self.send(b"\0");
                        }
                        Some(b'T' | b'D' | b'E') => self.send(b"\0"),
                        _ => break,
                    }
                }
            }
        }

        /// Replays the `In` side of a crafted session against the real scp,
        /// reading one reply wherever the session has an `Out` segment.
        fn replay(args: &[&str], s: &Session) -> Session {
            let mut p = Peer::start(args);
            for (d, b) in s {
                match d {
                    In => p.send(b),
                    Out => {
                        p.reply();
                    }
                }
            }
            p.finish()
        }

        fn tmp() -> tempfile::TempDir {
            tempfile::tempdir().expect("tempdir")
        }

        #[test]
        fn real_upload_is_the_crafted_session() {
            if !have_scp() {
                return;
            }
            let dir = tmp();
            let target = dir.path().to_str().unwrap();
            let recorded = replay(&["-t", target], &upload_two());
            assert_eq!(recorded, [upload_two(), vec![seg(In, b"")]].concat());
            let items = check_splits(sink(), &recorded);
            assert_eq!(viols(&items), Vec::<&str>::new());
            assert_eq!(
                std::fs::read(dir.path().join("a")).unwrap(),
                b"file a file a file a\n"
            );
        }

        #[test]
        fn real_recursive_upload_is_the_crafted_session() {
            if !have_scp() {
                return;
            }
            let dir = tmp();
            let target = dir.path().to_str().unwrap();
            let recorded = replay(&["-r", "-p", "-t", target], &tree_rp());
            assert_eq!(recorded, [tree_rp(), vec![seg(In, b"")]].concat());
            assert_eq!(viols(&check_splits(sink_r(), &recorded)), Vec::<&str>::new());
            assert!(dir.path().join("top/empty").is_dir());
            assert_eq!(std::fs::read(dir.path().join("top/f")).unwrap(), b"hello");
        }

        #[test]
        fn real_download() {
            if !have_scp() {
                return;
            }
            let dir = tmp();
            std::fs::write(dir.path().join("f"), b"hello").unwrap();
            std::fs::write(dir.path().join("g"), b"").unwrap();
            let (f, g, missing) = (
                dir.path().join("f"),
                dir.path().join("g"),
                dir.path().join("missing"),
            );
            let mut p = Peer::start(&[
                "-f",
                f.to_str().unwrap(),
                missing.to_str().unwrap(),
                g.to_str().unwrap(),
            ]);
            p.act_as_sink();
            let s = p.finish();
            let items = check_splits(source(), &s);
            assert_eq!(viols(&items), Vec::<&str>::new());
            let n = notes(&items);
            assert!(n.contains(&"data of \"f\", 5 B".to_string()), "{n:?}");
            assert!(
                n.contains(&"file \"g\", 0 B, mode 0644".to_string())
                    || n.iter().any(|x| x.starts_with("file \"g\", 0 B")),
                "{n:?}"
            );
            assert!(
                n.iter()
                    .any(|x| x.starts_with("warning: scp: ")
                        && x.ends_with("missing: No such file or directory")),
                "{n:?}"
            );
        }

        #[test]
        fn real_recursive_download() {
            if !have_scp() {
                return;
            }
            let dir = tmp();
            let top = dir.path().join("top");
            std::fs::create_dir_all(top.join("sub/deeper")).unwrap();
            std::fs::create_dir_all(top.join("empty")).unwrap();
            std::fs::write(top.join("a"), b"0123456789").unwrap();
            std::fs::write(top.join("sub/b"), b"").unwrap();
            std::fs::write(top.join("sub/deeper/c"), b"c").unwrap();
            let mut p = Peer::start(&["-r", "-p", "-f", top.to_str().unwrap()]);
            p.act_as_sink();
            let s = p.finish();
            let items = check_splits(opts(Role::Source, true, true), &s);
            assert_eq!(viols(&items), Vec::<&str>::new());
            let m = msgs(&items);
            let count = |f: fn(&Msg) -> bool| m.iter().filter(|x| f(x)).count();
            assert_eq!(count(|x| matches!(x, Msg::Dir { .. })), 4);
            assert_eq!(count(|x| matches!(x, Msg::EndDir { name: Some(_) })), 4);
            assert_eq!(count(|x| matches!(x, Msg::File { .. })), 3);
            assert_eq!(count(|x| matches!(x, Msg::Times { .. })), 7);
            assert_eq!(count(|x| matches!(x, Msg::DataEnd { .. })), 3);
            assert_eq!(m.last(), Some(&Msg::Ack));
        }

        /// A bad record sent to the real `scp -t`: the decoder flags it, and
        /// scp refuses it with the message OpenSSH's sink() has for it.
        #[test]
        fn real_sink_refuses_what_the_decoder_flags() {
            if !have_scp() {
                return;
            }
            /// Records sent first, the bad one, -r, the violation, what scp says.
            type Case<'a> = (&'a [&'a [u8]], &'a [u8], bool, &'a str, &'a str);
            let cases: [Case; 12] = [
                (&[], b"C04755 5 x\n", false, "bad-mode", "mode not delimited"),
                (&[], b"C0x44 5 x\n", false, "bad-mode", "bad mode"),
                (
                    &[],
                    b"D0755 0 d\n",
                    false,
                    "dir-without-r",
                    "received directory without -r",
                ),
                (
                    &[],
                    b"C0644 1 a/b\n",
                    false,
                    "name-slash",
                    "unexpected filename: a/b",
                ),
                (&[], b"C0644 1 ..\n", false, "name-dot", "unexpected filename: .."),
                (&[], b"D0755 0 .\n", true, "name-dot", "unexpected filename: ."),
                (&[], b"C0644 1 \n", false, "bad-name", "unexpected filename"),
                (
                    &[],
                    b"T1 1000000 1 0\n",
                    false,
                    "bad-times",
                    "mtime.usec not delimited",
                ),
                (&[], b"C0644 x a\n", false, "bad-size", "size not present"),
                (
                    &[],
                    b"C0644 99999999999999999999 a\n",
                    false,
                    "bad-size",
                    "size out of range",
                ),
                (&[], b"C0644 5\n", false, "bad-size", "size not delimited"),
                (
                    &[b"C0644 0 a\n", b"\0"],
                    b"X marks\n",
                    false,
                    "unknown-record",
                    "expected control record",
                ),
            ];
            for (before, bad, recursive, name, said) in cases {
                let dir = tmp();
                let target = dir.path().to_str().unwrap();
                let args: &[&str] = if recursive {
                    &["-r", "-t", target]
                } else {
                    &["-t", target]
                };
                let mut p = Peer::start(args);
                p.reply();
                for r in before {
                    p.send(r);
                    p.reply();
                }
                p.send(bad);
                p.reply();
                let s = p.finish();
                let items = check_splits(Options { recursive, ..sink() }, &s);
                assert!(
                    viols(&items).contains(&name),
                    "{}: {:?}",
                    escape(bad),
                    viols(&items)
                );
                let m = msgs(&items);
                let answer = m.iter().rev().find_map(|x| match x {
                    Msg::Warning(t) => Some(String::from_utf8_lossy(t).to_string()),
                    _ => None,
                });
                let answer = answer.unwrap_or_else(|| panic!("{}: no warning in {m:?}", escape(bad)));
                assert!(answer.contains(said), "{}: scp said {answer:?}", escape(bad));
            }
        }

        #[test]
        fn real_data_short_and_cut_line() {
            if !have_scp() {
                return;
            }
            let dir = tmp();
            let target = dir.path().to_str().unwrap();
            let mut p = Peer::start(&["-t", target]);
            p.reply();
            p.send(b"C0644 10 a\n");
            p.reply();
            p.send(b"abcd");
            let items = check_splits(sink(), &p.finish());
            assert_eq!(viols(&items), ["data-short"]);

            let mut p = Peer::start(&["-t", target]);
            p.reply();
            p.send(b"C0644 1 b");
            let items = check_splits(sink(), &p.finish());
            assert_eq!(viols(&items), ["line-without-newline"]);
            // scp complained about the lost connection: that answers nothing, but is no violation.
            assert!(matches!(msgs(&items).last(), Some(Msg::Warning(_))), "{items:?}");
        }

        #[test]
        fn real_source_meets_a_bad_ack_and_a_record() {
            if !have_scp() {
                return;
            }
            let dir = tmp();
            let f = dir.path().join("f");
            std::fs::write(&f, b"hello").unwrap();
            let mut p = Peer::start(&["-f", f.to_str().unwrap()]);
            p.send(b"\0");
            p.reply();
            p.send(b"?what\n");
            let items = check_splits(source(), &p.finish());
            assert_eq!(viols(&items), ["bad-ack"]);

            // Both sides think they send: the peer's "ready" is a record.
            let mut p = Peer::start(&["-f", f.to_str().unwrap()]);
            p.send(b"C0644 1 x\n");
            let items = check_splits(source(), &p.finish());
            assert_eq!(viols(&items), ["record-instead-of-ack"]);
        }

        #[test]
        fn real_shell_banner_before_protocol() {
            if !have_scp() {
                return;
            }
            let dir = tmp();
            let script = format!("echo 'Welcome to host'; exec {SCP} -t '{}'", dir.path().display());
            let mut p = Peer::shell(&script);
            p.reply();
            p.reply();
            p.send(b"C0644 2 a\n");
            p.reply();
            p.send(b"hi\0");
            p.reply();
            let items = check_splits(sink(), &p.finish());
            assert_eq!(viols(&items), ["output-before-protocol"]);
            assert!(viol_text(&items, "output-before-protocol").contains("Welcome to host"));
            assert_eq!(frames(&items)[0], (Out, b"Welcome to host\n".to_vec(), Msg::Text));
        }

        #[test]
        fn real_sink_with_missing_target() {
            if !have_scp() {
                return;
            }
            let dir = tmp();
            let missing = dir.path().join("nope");
            let mut p = Peer::start(&["-d", "-t", missing.to_str().unwrap()]);
            p.reply();
            let items = check_splits(opts(Role::Sink, false, false), &p.finish());
            assert_eq!(viols(&items), Vec::<&str>::new());
            assert!(matches!(&msgs(&items)[0], Msg::Warning(t) if t.ends_with(b"No such file or directory")));
        }
    }

    // ---- property tests -------------------------------------------------

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn chunk() -> impl Strategy<Value = Vec<u8>> {
            let pieces: Vec<Vec<u8>> = [
                &b"C0644 "[..],
                b"C0644 3 abc\n",
                b"C0644 0 e\n",
                b"C0755 5 ..\n",
                b"D0755 0 d\n",
                b"E\n",
                b"T1 0 2 0\n",
                b"\0",
                b"\x01scp: w\n",
                b"\x02f\n",
                b"\n",
                b"3 ab\n",
                b"xyz",
                b"Welcome\n",
            ]
            .iter()
            .map(|p| p.to_vec())
            .collect();
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::sample::select(pieces),
                (0usize..3, any::<u8>()).prop_map(|(k, b)| vec![b; k * LINE_CAP / 2 + 1]),
            ]
        }

        fn options() -> impl Strategy<Value = Options> {
            (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(src, r, d, p)| Options {
                role: if src { Role::Source } else { Role::Sink },
                recursive: r,
                target_dir: d,
                preserve: p,
            })
        }

        #[derive(Debug, Clone)]
        enum Op {
            Feed(bool, Vec<u8>),
            /// Skip this share (in 1/256) of the data remaining, if any.
            Skip(bool, u8),
            Eof(bool),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                8 => (any::<bool>(), chunk()).prop_map(|(d, b)| Op::Feed(d, b)),
                1 => (any::<bool>(), any::<u8>()).prop_map(|(d, k)| Op::Skip(d, k)),
                1 => any::<bool>().prop_map(Op::Eof),
            ]
        }

        fn dir(b: bool) -> Dir {
            if b { In } else { Out }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            /// Anything, in any order: no panic, buffers bounded (checked on
            /// every feed by the harness), frames contiguous, every byte framed.
            #[test]
            fn arbitrary_input_never_breaks_it(o in options(), ops in proptest::collection::vec(op(), 0..60)) {
                let mut h = Harness::new(o);
                let mut x = 0u8;
                for op in ops {
                    match op {
                        Op::Feed(d, b) => h.feed(dir(d), &b),
                        Op::Skip(d, k) => {
                            let r = h.dec.data_remaining(dir(d));
                            let n = (r.min(1 << 16) * u64::from(k) / 255) as usize;
                            let bytes: Vec<u8> = (0..n).map(|_| { x = x.wrapping_add(1); x }).collect();
                            h.skip(dir(d), &bytes);
                        }
                        Op::Eof(d) => h.eof(dir(d)),
                    }
                }
                h.finish();
            }

            /// The same session split differently gives the same items.
            #[test]
            fn splitting_never_matters(
                o in options(),
                segs in proptest::collection::vec((any::<bool>(), chunk()), 0..30),
                step in 1usize..9,
            ) {
                let s: Session = segs.into_iter().map(|(d, b)| (dir(d), b)).collect();
                let whole = run(o, &s);
                prop_assert_eq!(&run(o, &coalesced(&s)), &whole);
                prop_assert_eq!(&run_chunked(o, &s, |_, len| (step..len).step_by(step).collect()), &whole);
                prop_assert_eq!(&run_spliced(o, &s), &whole);
            }
        }
    }
}
