//! The sans-IO SCP decoder: fed the bytes of each direction as they were
//! read, it frames them the way the real scp reads them and pairs each reply
//! with the message it answers, without I/O, without buffering file data,
//! and without ever stopping. docs/decoder.md is its reference.
//!
//! **Each direction is framed on its own.** The source's stream (records,
//! data, the `\0` after each file, `\x01`/`\x02` lines) is read as OpenSSH's
//! `sink()` reads it; the sink's stream (its first `\0`, then one reply per
//! message) as OpenSSH's `response()` reads it (scp.c). How the two
//! directions interleave never changes a frame: the one place the sink's
//! answer changes the source's framing (a refused `C` has no data) is
//! resolved by holding the source's bytes until that answer is known, and
//! `T`/`D` wait the same way so that the directory stack and pending times
//! never depend on timing either. A hold is bounded ([`HOLD_CAP`]); past it
//! the message is taken as accepted, as the source evidently assumed.
//!
//! **Replies are paired by sequence:** reply k answers message k, which is
//! how the real source reads them (one `response()` per message). A reply
//! that comes before its message waits in a bounded queue.
//!
//! **Causality, not observed order.** A relay reads a byte before it passes
//! it on, so a peer's bytes read before the relay had read the reply they
//! should wait for prove that the peer did not wait (`data-before-ack`), and
//! a reply read before the message it answers was read proves the sink
//! answered ahead (`acks-ahead`). Nothing else about order is a verdict.
//!
//! **One root cause, one line.** Findings about how a peer behaves are
//! reported once per session; consequences carry a [`Note`] on their frame
//! and are not reported again.

use std::collections::VecDeque;

use super::msg::{Awaited, Detail, Ended, Msg, Name, Note, ReplyKind, Sent, Violation};
use super::record::{self, Context, Lint, Record, Refusal};
use super::{Dir, Options, Role};

/// Bytes of a line OpenSSH reads, `\n` included: `sink()`'s `buf[2048]` and
/// `response()`'s `rbuf[2048]` each keep room for the NUL. A longer line is
/// cut there and its rest read as the next line.
pub const LINE_MAX: usize = 2047;
/// Source bytes held while a `T`/`C`/`D` awaits its reply.
pub const HOLD_CAP: usize = 64 * 1024;
/// Unpaired messages or replies remembered; beyond it only counted.
pub const QUEUE_CAP: usize = 1024;
/// Directory names remembered on the stack; deeper levels are only counted.
pub const STACK_CAP: usize = 10_000;
/// Total bytes of remembered directory names.
pub const STACK_BYTES_CAP: usize = 64 * 1024;
/// Bytes of a line kept in a violation's detail.
pub const QUOTE_CAP: usize = 200;

/// A message in `dir` ending at absolute offset `end` (bytes since that
/// direction's start); it begins where the previous frame in `dir` ended.
/// Every byte fed belongs to exactly one frame, eventually; frames are never
/// empty and come in stream order within a direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub dir: Dir,
    pub end: u64,
    pub msg: Msg,
    /// Set when this frame is a consequence of something reported earlier.
    pub note: Option<Note>,
}

/// What the decoder reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Frame(Frame),
    /// A file's data starts at absolute offset `at` in `dir`, `size` bytes;
    /// the [`Msg::Data`] frame that ends it follows.
    DataStart {
        dir: Dir,
        at: u64,
        size: u64,
    },
    Violation(Violation),
}

/// What kind of line a direction is inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// A record line, read by `sink()` (source's direction).
    Record,
    /// The end byte after a file's data was not `\0`: `response()` reads the
    /// rest of the line (source's direction).
    End,
    /// A reply line, read by `response()` (sink's direction).
    Reply,
    /// Bytes nobody reads as protocol.
    Text,
}

/// Where the source's direction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SrcState {
    /// At a record boundary.
    Idle,
    Line(LineKind),
    /// A `T`/`C`/`D` awaits its reply: incoming bytes are held.
    Held,
    /// Inside a file's data.
    Data {
        seen: u64,
        started: bool,
    },
    /// After a file's data: its end byte is next.
    AfterData,
}

/// One line being read.
#[derive(Debug, Default)]
struct LineBuf {
    bytes: Vec<u8>,
    /// Absolute offset of its first byte.
    start: u64,
}

/// A message awaiting its reply.
#[derive(Debug, Clone)]
struct Pending {
    what: Awaited,
    /// For a `C`: its size.
    size: u64,
    /// Taken as accepted before its reply came (the hold was full).
    assumed: bool,
    /// Its effect waits for the reply (T, C, D): the source is held.
    holds: bool,
    /// OpenSSH's sink refuses it and exits; a reply other than an ack says so.
    refused: bool,
}

/// A reply waiting for its message.
#[derive(Debug, Clone, Copy)]
struct Reply {
    kind: ReplyKind,
    /// Source bytes fed when the reply's first byte was read.
    src_seen: u64,
}

/// The message whose reply the source should wait for before sending more.
#[derive(Debug, Clone)]
struct LastAwaited {
    what: Awaited,
    /// Source bytes fed when its reply's first byte was read, once it was.
    reply_seen: Option<u64>,
}

/// The decoder of one scp session. See the module docs.
#[derive(Debug)]
pub struct Decoder {
    opts: Options,
    // ---- source's direction
    src_state: SrcState,
    src_line: LineBuf,
    src_fed: u64,
    /// Bytes held while `Held`, from `hold_start`.
    hold: Vec<u8>,
    hold_start: u64,
    /// Why nobody reads the source's bytes as protocol any more.
    src_ended: Option<Ended>,
    src_eof: bool,
    /// The source's EOF came while held: applied once the hold is resolved.
    src_eof_deferred: bool,
    /// The next source line is the rest of a cut line.
    src_line_rest: bool,
    /// Source bytes up to this offset are the data of a refused file (name)
    /// that the source sent without waiting.
    misread: Option<(Vec<u8>, u64)>,
    // ---- sink's direction
    snk_state: Option<LineKind>,
    snk_line: LineBuf,
    snk_fed: u64,
    snk_ended: Option<Ended>,
    snk_line_rest: bool,
    /// The sink's direction has framed a reply (it has started speaking).
    snk_started: bool,
    snk_eof: bool,
    /// Source bytes fed when the current sink line's first byte was read.
    snk_first_src_seen: Option<u64>,
    // ---- pairing
    awaiting: VecDeque<Pending>,
    awaiting_extra: u64,
    early: VecDeque<Reply>,
    early_extra: u64,
    last: Option<LastAwaited>,
    /// Replies reported as extra: the pairing is shifted by this many.
    extras: u64,
    /// An early reply that answers a file's end whose `\0` had not been read
    /// yet while all its data had (the sink acks on the data: pscp).
    end_preacked: bool,
    // ---- the model
    file: Option<(Vec<u8>, u64)>,
    stack: Vec<Option<Vec<u8>>>,
    stack_bytes: usize,
    depth: u64,
    /// No line read yet at the current sink level (`first` in `sink()`).
    first: bool,
    /// The session's first record line has not been read.
    session_first: bool,
    times_pending: bool,
    truncated: bool,
    any_bytes: bool,
    finished: bool,
    /// Names reported once per session, as a bit set over `Name` order.
    reported: u64,
    /// The violation of the line being framed, emitted right after its frame.
    refusal: Option<(Name, Detail)>,
    /// The record being applied is one OpenSSH refuses (see `record::Parsed::lenient`).
    refusing: bool,
    /// The hold overflowed once: the source does not wait and the sink does
    /// not answer; from then on nothing is held (taken as accepted).
    hold_off: bool,
}

fn quote(b: &[u8]) -> Vec<u8> {
    b[..b.len().min(QUOTE_CAP)].to_vec()
}

impl Decoder {
    pub fn new(opts: Options) -> Self {
        let mut d = Decoder {
            opts,
            src_state: SrcState::Idle,
            src_line: LineBuf::default(),
            src_fed: 0,
            hold: Vec::new(),
            hold_start: 0,
            src_ended: None,
            src_eof: false,
            src_eof_deferred: false,
            src_line_rest: false,
            misread: None,
            snk_state: None,
            snk_line: LineBuf::default(),
            snk_fed: 0,
            snk_ended: None,
            snk_line_rest: false,
            snk_started: false,
            snk_eof: false,
            snk_first_src_seen: None,
            awaiting: VecDeque::new(),
            awaiting_extra: 0,
            early: VecDeque::new(),
            early_extra: 0,
            last: None,
            extras: 0,
            end_preacked: false,
            file: None,
            stack: Vec::new(),
            stack_bytes: 0,
            depth: 0,
            first: true,
            session_first: true,
            times_pending: false,
            truncated: false,
            any_bytes: false,
            finished: false,
            reported: 0,
            refusal: None,
            refusing: false,
            hold_off: false,
        };
        // The sink speaks first: its `\0` answers the session's start
        // (`sink()` writes it before reading; `-f` calls `response()` first).
        d.awaiting.push_back(Pending {
            what: Awaited::Ready,
            size: 0,
            assumed: false,
            holds: false,
            refused: false,
        });
        d.last = Some(LastAwaited {
            what: Awaited::Ready,
            reply_seen: None,
        });
        d
    }

    /// The direction that carries records and data.
    pub fn src_dir(&self) -> Dir {
        match self.opts.role {
            Role::Sink => Dir::In,
            Role::Source => Dir::Out,
        }
    }

    fn snk_dir(&self) -> Dir {
        match self.opts.role {
            Role::Sink => Dir::Out,
            Role::Source => Dir::In,
        }
    }

    /// Decodes `input`, the next bytes read in `dir`; consumes all of it.
    pub fn feed(&mut self, dir: Dir, input: &[u8], out: &mut Vec<Event>) {
        if input.is_empty() {
            return;
        }
        self.any_bytes = true;
        if dir == self.src_dir() {
            let base = self.src_fed;
            self.src_fed += input.len() as u64;
            self.src_bytes(input, base, out);
        } else {
            self.snk_bytes(input, out);
        }
    }

    /// Bytes of the current file's data not yet seen in `dir`: what a relay
    /// may move without showing it (0 unless `dir` is inside a file's data).
    pub fn data_remaining(&self, dir: Dir) -> u64 {
        match self.src_state {
            SrcState::Data { seen, .. } if dir == self.src_dir() => self.file_size().saturating_sub(seen),
            _ => 0,
        }
    }

    /// Whether the source's bytes are held: a `T`/`C`/`D` awaits its reply.
    pub fn is_held(&self) -> bool {
        self.src_state == SrcState::Held
    }

    /// `n` data bytes passed in `dir` unseen (splice): the same events as
    /// feeding them. `n` beyond [`Decoder::data_remaining`] is ignored.
    pub fn skip(&mut self, dir: Dir, n: u64, out: &mut Vec<Event>) {
        let n = n.min(self.data_remaining(dir));
        if n == 0 {
            return;
        }
        self.any_bytes = true;
        let base = self.src_fed;
        self.src_fed += n;
        self.data_bytes(n, base, out);
    }

    /// `dir` reached its end: frames what is open in it and flags what is
    /// missing. A source held for a reply is ended once the reply is known.
    pub fn eof(&mut self, dir: Dir, out: &mut Vec<Event>) {
        if dir == self.src_dir() {
            if self.src_eof || self.src_eof_deferred {
                return;
            }
            if self.src_state == SrcState::Held {
                self.src_eof_deferred = true;
                return;
            }
            self.src_eof = true;
            self.src_eof_now(out);
        } else {
            if self.snk_eof {
                return;
            }
            self.snk_eof = true;
            if let Some(kind) = self.snk_state.take() {
                self.end_snk_line(kind, LineEnd::Eof, out);
            }
        }
    }

    /// The session is over: resolves a hold (as accepted: the source's
    /// intent), closes both directions, then reports what the whole session
    /// left undone, unless something reported already explains it.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if self.finished {
            return;
        }
        self.finished = true;
        while self.src_state == SrcState::Held {
            self.force_accept(out);
        }
        let (s, k) = (self.src_dir(), self.snk_dir());
        self.src_eof_deferred = false;
        self.eof(s, out);
        self.eof(k, out);
        if !self.any_bytes {
            return;
        }
        let clean = !self.truncated && self.src_ended.is_none() && self.snk_ended.is_none();
        if clean && self.depth > 0 {
            let names = self.stack.iter().rev().take(5).cloned().collect();
            self.violation(
                out,
                Name::UnclosedDirs,
                None,
                Detail::UnclosedDirs {
                    depth: self.depth,
                    names,
                },
            );
        }
        if clean && self.times_pending {
            self.violation(
                out,
                Name::TimesWithoutFile,
                None,
                Detail::TimesWithoutFile { next: None },
            );
        }
        let missing = self.awaiting.len() as u64 + self.awaiting_extra;
        if clean && missing > 0 {
            let first = self.awaiting.front().map(|p| p.what.clone());
            self.violation(
                out,
                Name::MissingReply,
                None,
                Detail::Unpaired {
                    count: missing,
                    first,
                },
            );
        }
        let unpaired = (self.early.len() as u64 + self.early_extra).saturating_sub(self.extras);
        if clean && unpaired > 0 && !self.was_reported(Name::AcksAhead) {
            self.violation(
                out,
                Name::UnexpectedReply,
                None,
                Detail::Unpaired {
                    count: unpaired,
                    first: None,
                },
            );
        }
    }

    /// Heap bytes held by the decoder, for tests of the memory bound.
    #[cfg(test)]
    pub fn buffered_bytes(&self) -> usize {
        self.src_line.bytes.capacity()
            + self.snk_line.bytes.capacity()
            + self.hold.capacity()
            + self.stack.capacity() * std::mem::size_of::<Option<Vec<u8>>>()
            + self.stack_bytes
            + self.awaiting.capacity() * std::mem::size_of::<Pending>()
            + self
                .awaiting
                .iter()
                .map(|p| awaited_bytes(&p.what))
                .sum::<usize>()
            + self.early.capacity() * std::mem::size_of::<Reply>()
            + self.file.as_ref().map_or(0, |f| f.0.capacity())
            + self.misread.as_ref().map_or(0, |m| m.0.capacity())
            + self.last.as_ref().map_or(0, |l| awaited_bytes(&l.what))
    }

    // ---- violations and notes -------------------------------------------

    fn was_reported(&self, name: Name) -> bool {
        self.reported & (1 << name as u64) != 0
    }

    /// Reports a violation; one reported once per session comes only the
    /// first time (returns false after).
    fn violation(&mut self, out: &mut Vec<Event>, name: Name, dir: Option<Dir>, detail: Detail) -> bool {
        if name.once_per_session() && self.was_reported(name) {
            return false;
        }
        self.reported |= 1 << name as u64;
        out.push(Event::Violation(Violation { name, dir, detail }));
        true
    }

    fn file_name(&self) -> Vec<u8> {
        self.file.as_ref().map(|f| f.0.clone()).unwrap_or_default()
    }

    fn file_size(&self) -> u64 {
        self.file.as_ref().map_or(0, |f| f.1)
    }

    // ---- the source's direction ------------------------------------------

    /// Runs the source's state machine over `input`, whose first byte is at
    /// absolute offset `base`; whatever arrives while held is kept.
    fn src_bytes(&mut self, input: &[u8], base: u64, out: &mut Vec<Event>) {
        let mut pos = 0;
        while pos < input.len() {
            let at = base + pos as u64;
            match self.src_state {
                SrcState::Held => {
                    if self.hold.is_empty() {
                        self.hold_start = at;
                    }
                    let rest = &input[pos..];
                    if self.hold.len() + rest.len() > HOLD_CAP {
                        // The source went on for this long without the reply:
                        // it assumed acceptance; so do we, and hold no more.
                        self.hold_off = true;
                        self.force_accept(out);
                        continue;
                    }
                    self.hold.extend_from_slice(rest);
                    return;
                }
                SrcState::Data { .. } => {
                    let n = self
                        .data_remaining(self.src_dir())
                        .min((input.len() - pos) as u64);
                    self.data_bytes(n, at, out);
                    pos += n as usize;
                }
                SrcState::Line(kind) => pos += self.src_line_bytes(kind, &input[pos..], at, out),
                SrcState::AfterData => {
                    let b = input[pos];
                    self.check_wait(at, Sent::End(self.file_name()), out);
                    if b == 0 {
                        pos += 1;
                        self.src_state = SrcState::Idle;
                        let name = self.file_name();
                        self.src_frame(at + 1, Msg::DataEnd { name: name.clone() }, None, out);
                        self.push_awaited(Awaited::DataEnd(name), 0, false);
                    } else {
                        // `response()` reads the end byte and, if it is not
                        // NUL, the rest of its line.
                        self.start_src_line(LineKind::End, at);
                    }
                }
                SrcState::Idle => {
                    let b = input[pos];
                    let kind = if self.src_ended.is_some() {
                        LineKind::Text
                    } else {
                        // The rest of a cut line is not a new message.
                        if !matches!(b, 1 | 2) && !self.src_line_rest {
                            self.check_wait(at, Sent::Record, out);
                        }
                        LineKind::Record
                    };
                    self.start_src_line(kind, at);
                }
            }
        }
    }

    fn start_src_line(&mut self, kind: LineKind, at: u64) {
        self.src_line.bytes.clear();
        self.src_line.start = at;
        self.src_state = SrcState::Line(kind);
    }

    /// Adds bytes to the source's current line; returns how many it took.
    fn src_line_bytes(&mut self, kind: LineKind, input: &[u8], at: u64, out: &mut Vec<Event>) -> usize {
        let mut taken = 0;
        for &b in input {
            self.src_line.bytes.push(b);
            taken += 1;
            let how = line_end(kind, &self.src_line.bytes);
            if how != LineEnd::Open {
                self.end_src_line(kind, at + taken as u64, how, out);
                return taken;
            }
        }
        taken
    }

    /// A source line ended (`how`); `end` is its absolute end offset.
    fn end_src_line(&mut self, kind: LineKind, end: u64, how: LineEnd, out: &mut Vec<Event>) {
        let line = std::mem::take(&mut self.src_line.bytes);
        let start = self.src_line.start;
        self.src_state = SrcState::Idle;
        let rest = std::mem::take(&mut self.src_line_rest);
        if how == LineEnd::Full && kind != LineKind::Text {
            self.src_line_rest = true;
        }
        match kind {
            LineKind::Text => {
                let note = self.src_ended.map(Note::Unread);
                self.src_frame(end, Msg::Text, note, out);
                if self.src_ended == Some(Ended::OwnFatal) && !self.was_reported(Name::BytesAfterEnd) {
                    self.violation(out, Name::BytesAfterEnd, Some(self.src_dir()), Detail::AfterEnd);
                }
            }
            LineKind::End => self.end_after_data_line(line, end, how, rest, out),
            LineKind::Record | LineKind::Reply => self.end_record_line(line, start, end, how, rest, out),
        }
    }

    /// The end byte after a file's data was not `\0`: `response()` read it as
    /// a warning (the source's read error, then the sink acks as usual), a
    /// fatal error, or any other byte as an error message, and exits.
    fn end_after_data_line(
        &mut self,
        line: Vec<u8>,
        end: u64,
        how: LineEnd,
        rest: bool,
        out: &mut Vec<Event>,
    ) {
        let dir = self.src_dir();
        let name = self.file_name();
        match line.first() {
            Some(1) => {
                self.src_frame(
                    end,
                    Msg::Warning(line_text(&line)),
                    Some(Note::InPlaceOfEnd(name.clone())),
                    out,
                );
                self.cut_line_violations(dir, &line, how, rest, out);
                if how != LineEnd::Eof {
                    self.push_awaited(Awaited::DataEnd(name), 0, false);
                }
            }
            Some(2) => {
                self.src_frame(end, Msg::Fatal(line_text(&line)), None, out);
                self.cut_line_violations(dir, &line, how, rest, out);
                self.src_ended = Some(Ended::OwnFatal);
            }
            _ => {
                self.src_frame(end, Msg::BadReply(line.clone()), None, out);
                let byte = line.first().copied();
                self.violation(
                    out,
                    Name::MissingDataEnd,
                    Some(dir),
                    Detail::MissingDataEnd { name, byte },
                );
                self.src_ended = Some(Ended::SinkBadEnd);
            }
        }
    }

    /// Violations of a line cut at the buffer size or by the end of the stream.
    fn cut_line_violations(&mut self, dir: Dir, line: &[u8], how: LineEnd, rest: bool, out: &mut Vec<Event>) {
        if rest {
            return;
        }
        let len = line.len() as u64;
        match how {
            LineEnd::Eof => {
                self.violation(
                    out,
                    Name::LineWithoutNewline,
                    Some(dir),
                    Detail::LineWithoutNewline { len },
                );
            }
            LineEnd::Full => {
                let max = LINE_MAX as u64;
                self.violation(
                    out,
                    Name::LineTooLong,
                    Some(dir),
                    Detail::LineTooLong { len, max },
                );
            }
            LineEnd::Newline | LineEnd::Open => {}
        }
    }

    /// A record line read by `sink()`: frames it as the sink understood it
    /// and applies it.
    fn end_record_line(
        &mut self,
        line: Vec<u8>,
        start: u64,
        end: u64,
        how: LineEnd,
        rest: bool,
        out: &mut Vec<Event>,
    ) {
        let dir = self.src_dir();
        let misread = self.misread_note(start);
        // A line cut at the buffer is reported as such; what scp then made
        // of its head or its rest is a consequence.
        let consequence = rest || misread.is_some();
        let lint_ok = !consequence && how != LineEnd::Full;
        let note = misread.or(rest.then_some(Note::LineRest));
        let first = std::mem::replace(&mut self.first, false);
        let session_first = std::mem::replace(&mut self.session_first, false);
        // `if (buf[0] == '\01' || buf[0] == '\02')`: shown, counted, and `\x02` exits.
        match line.first() {
            Some(1) => {
                self.src_frame(end, Msg::Warning(line_text(&line)), note, out);
                self.cut_line_violations(dir, &line, how, consequence, out);
                return;
            }
            Some(2) => {
                self.src_frame(end, Msg::Fatal(line_text(&line)), note, out);
                self.cut_line_violations(dir, &line, how, consequence, out);
                self.src_ended = Some(Ended::OwnFatal);
                return;
            }
            _ => {}
        }
        if how == LineEnd::Eof {
            // `SCREWUP("lost connection")` inside the line.
            self.src_frame(
                end,
                Msg::BadRecord {
                    why: Refusal::LostConnection,
                },
                note,
                out,
            );
            self.cut_line_violations(dir, &line, how, consequence, out);
            return;
        }
        let parsed = record::parse(
            &line,
            Context {
                recursive: self.opts.recursive,
                first,
            },
        );
        match parsed.outcome {
            Err(why) => {
                if !consequence {
                    let (name, detail) = refusal_violation(why, &line, session_first);
                    self.refusal = Some((name, detail));
                }
                match parsed.lenient {
                    // A well-formed record OpenSSH refuses for its values: the
                    // sink's reply tells whether this sink did (and exited).
                    Some(rec) => {
                        self.refusing = true;
                        self.apply_record(rec, None, &line, end, note, consequence, out);
                        self.refusing = false;
                    }
                    None => {
                        self.src_frame(end, Msg::BadRecord { why }, note, out);
                        self.flush_refusal(out);
                        // The sink answers with its error and exits.
                        self.push_awaited(Awaited::Bad, 0, false);
                        self.src_ended = Some(Ended::SinkRefused);
                    }
                }
                self.cut_line_violations(dir, &line, how, consequence, out);
            }
            Ok(rec) => {
                let lint = parsed.lint.filter(|_| lint_ok);
                self.apply_record(rec, lint, &line, end, note, consequence, out);
                self.cut_line_violations(dir, &line, how, consequence, out);
            }
        }
    }

    /// The note for a source line starting at `start` inside the data of a
    /// refused file that the source sent without waiting.
    fn misread_note(&mut self, start: u64) -> Option<Note> {
        match &self.misread {
            Some((name, until)) if start < *until => Some(Note::MisreadData(name.clone())),
            Some(_) => {
                self.misread = None;
                None
            }
            None => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_record(
        &mut self,
        rec: Record,
        lint: Option<Lint>,
        line: &[u8],
        end: u64,
        note: Option<Note>,
        consequence: bool,
        out: &mut Vec<Event>,
    ) {
        let dir = self.src_dir();
        match rec {
            Record::File { mode, size, name } => {
                self.file = Some((name.clone(), size));
                let msg = Msg::File {
                    mode,
                    size,
                    name: name.clone(),
                };
                self.file_or_dir(
                    msg,
                    Awaited::File(name),
                    size,
                    lint,
                    line,
                    end,
                    note,
                    consequence,
                    out,
                );
            }
            Record::Dir { mode, name } => {
                let msg = Msg::Dir {
                    mode,
                    name: name.clone(),
                };
                self.file_or_dir(
                    msg,
                    Awaited::Dir(name),
                    0,
                    lint,
                    line,
                    end,
                    note,
                    consequence,
                    out,
                );
            }
            Record::End => {
                let top = self.depth == 0;
                let name = if top { None } else { self.pop_dir() };
                self.src_frame(end, Msg::EndDir { name }, note, out);
                if !consequence {
                    if let Some(l) = lint {
                        self.violation(
                            out,
                            lint_name(l),
                            Some(dir),
                            Detail::Lint {
                                lint: l,
                                line: quote(line),
                            },
                        );
                    }
                    if self.times_pending {
                        self.violation(
                            out,
                            Name::TimesWithoutFile,
                            Some(dir),
                            Detail::TimesWithoutFile { next: Some(b'E') },
                        );
                    }
                    if top {
                        self.violation(out, Name::UnbalancedEnd, Some(dir), Detail::UnbalancedEnd);
                    }
                }
                self.times_pending = false;
                self.push_awaited(Awaited::EndDir, 0, false);
                if top {
                    // `goto done`: the top-level `sink()` returns and scp exits.
                    self.src_ended = Some(Ended::SinkReturned);
                }
            }
            Record::Times {
                mtime,
                mtime_us,
                atime,
                atime_us,
            } => {
                self.src_frame(
                    end,
                    Msg::Times {
                        mtime,
                        mtime_us,
                        atime,
                        atime_us,
                    },
                    note,
                    out,
                );
                if !consequence {
                    if let Some(l) = lint {
                        self.violation(
                            out,
                            lint_name(l),
                            Some(dir),
                            Detail::Lint {
                                lint: l,
                                line: quote(line),
                            },
                        );
                    }
                    if self.times_pending {
                        self.violation(
                            out,
                            Name::TimesWithoutFile,
                            Some(dir),
                            Detail::TimesWithoutFile { next: Some(b'T') },
                        );
                    }
                }
                self.times_pending = false;
                self.push_awaited(Awaited::Times, 0, true);
            }
        }
    }

    /// A `C` or `D`: frames it, reports what is wrong with it (OpenSSH's
    /// refusal, a lint), and awaits its reply, holding the source.
    #[allow(clippy::too_many_arguments)]
    fn file_or_dir(
        &mut self,
        msg: Msg,
        awaited: Awaited,
        size: u64,
        lint: Option<Lint>,
        line: &[u8],
        end: u64,
        note: Option<Note>,
        consequence: bool,
        out: &mut Vec<Event>,
    ) {
        self.times_pending = false;
        self.src_frame(end, msg, note, out);
        self.flush_refusal(out);
        if let (Some(l), false) = (lint, consequence) {
            let dir = Some(self.src_dir());
            let line = quote(line);
            self.violation(out, lint_name(l), dir, Detail::Lint { lint: l, line });
        }
        let refused = self.refusing;
        self.push_awaited_refused(awaited, size, refused);
    }

    /// Emits the violation of the line just framed, if any.
    fn flush_refusal(&mut self, out: &mut Vec<Event>) {
        if let Some((name, detail)) = self.refusal.take() {
            let dir = Some(self.src_dir());
            self.violation(out, name, dir, detail);
        }
    }

    fn src_frame(&mut self, end: u64, msg: Msg, note: Option<Note>, out: &mut Vec<Event>) {
        out.push(Event::Frame(Frame {
            dir: self.src_dir(),
            end,
            msg,
            note,
        }));
    }

    /// File data: `n` bytes at absolute offset `at` (fed or skipped).
    fn data_bytes(&mut self, n: u64, at: u64, out: &mut Vec<Event>) {
        let SrcState::Data { seen, started } = self.src_state else {
            return;
        };
        let dir = self.src_dir();
        if !started {
            self.check_wait(at, Sent::Data(self.file_name()), out);
            out.push(Event::DataStart {
                dir,
                at,
                size: self.file_size(),
            });
        }
        let seen = seen + n;
        self.src_state = SrcState::Data { seen, started: true };
        if seen >= self.file_size() {
            let (name, size) = (self.file_name(), self.file_size());
            self.src_frame(
                at + n,
                Msg::Data {
                    name,
                    size,
                    seen: size,
                    complete: true,
                },
                None,
                out,
            );
            self.src_state = SrcState::AfterData;
        }
    }

    /// The source's stream ended, not while held.
    fn src_eof_now(&mut self, out: &mut Vec<Event>) {
        let dir = self.src_dir();
        match self.src_state {
            SrcState::Idle | SrcState::Held => {}
            SrcState::Line(kind) => {
                let end = self.src_fed;
                self.end_src_line(kind, end, LineEnd::Eof, out);
            }
            SrcState::Data { seen, started } => {
                let (name, size) = (self.file_name(), self.file_size());
                if started {
                    let msg = Msg::Data {
                        name: name.clone(),
                        size,
                        seen,
                        complete: false,
                    };
                    let end = self.src_fed;
                    self.src_frame(end, msg, None, out);
                }
                self.violation(
                    out,
                    Name::DataShort,
                    Some(dir),
                    Detail::DataShort { name, seen, size },
                );
                self.truncated = true;
                self.src_state = SrcState::Idle;
            }
            SrcState::AfterData => {
                let name = self.file_name();
                self.violation(
                    out,
                    Name::MissingDataEnd,
                    Some(dir),
                    Detail::MissingDataEnd { name, byte: None },
                );
                self.src_state = SrcState::Idle;
            }
        }
    }

    /// The source starts a message at `at`: if the reply to the message
    /// before it had not been read by then, the source did not wait for it.
    fn check_wait(&mut self, at: u64, sent: Sent, out: &mut Vec<Event>) {
        let Some(last) = self.last.take() else {
            return;
        };
        let waited = last.reply_seen.is_some_and(|seen| seen <= at);
        if waited {
            return;
        }
        // A refused file's data, sent anyway, is read as records.
        if let (Awaited::File(name), Sent::Record) = (&last.what, &sent) {
            let size = self.file.as_ref().map_or(0, |f| f.1);
            self.misread = Some((name.clone(), at.saturating_add(size).saturating_add(1)));
        }
        let dir = Some(self.src_dir());
        self.violation(
            out,
            Name::DataBeforeAck,
            dir,
            Detail::NoWait {
                awaited: last.what,
                sent,
            },
        );
    }

    // ---- the sink's direction ---------------------------------------------

    fn snk_bytes(&mut self, input: &[u8], out: &mut Vec<Event>) {
        let mut pos = 0;
        while pos < input.len() {
            let b = input[pos];
            let Some(kind) = self.snk_state else {
                if self.snk_ended.is_none() && b == 0 {
                    pos += 1;
                    self.snk_fed += 1;
                    self.snk_started = true;
                    let end = self.snk_fed;
                    self.snk_frame(end, Msg::Ack, None, out);
                    let seen = self.src_fed;
                    self.on_reply(ReplyKind::Ack, seen, &[], out);
                    continue;
                }
                self.snk_line.bytes.clear();
                self.snk_line.start = self.snk_fed;
                self.snk_first_src_seen = Some(self.src_fed);
                self.snk_state = Some(if self.snk_ended.is_some() {
                    LineKind::Text
                } else {
                    LineKind::Reply
                });
                continue;
            };
            pos += 1;
            self.snk_fed += 1;
            self.snk_line.bytes.push(b);
            let how = line_end(kind, &self.snk_line.bytes);
            if how != LineEnd::Open {
                self.snk_state = None;
                self.end_snk_line(kind, how, out);
            }
        }
    }

    /// A sink line ended (`how`).
    fn end_snk_line(&mut self, kind: LineKind, how: LineEnd, out: &mut Vec<Event>) {
        let line = std::mem::take(&mut self.snk_line.bytes);
        let dir = self.snk_dir();
        let end = self.snk_fed;
        let src_seen = self.snk_first_src_seen.take().unwrap_or(self.src_fed);
        let rest = std::mem::take(&mut self.snk_line_rest);
        if how == LineEnd::Full && kind == LineKind::Reply {
            self.snk_line_rest = true;
        }
        let first_reply = !self.snk_started;
        self.snk_started = true;
        if kind == LineKind::Text {
            self.snk_frame(end, Msg::Text, self.snk_ended.map(Note::Unread), out);
            if self.snk_ended == Some(Ended::OwnFatal) && !self.was_reported(Name::BytesAfterEnd) {
                self.violation(out, Name::BytesAfterEnd, Some(dir), Detail::AfterEnd);
            }
            return;
        }
        let note = rest.then_some(Note::LineRest);
        let reply = match line.first() {
            Some(1) => {
                self.snk_frame(end, Msg::Warning(line_text(&line)), note, out);
                ReplyKind::Warning
            }
            Some(2) => {
                self.snk_frame(end, Msg::Fatal(line_text(&line)), note, out);
                ReplyKind::Fatal
            }
            _ => {
                // `response()`'s default case: the byte and the rest of the
                // line are an error message; scp prints it and exits.
                let parsed = record::parse(
                    &line,
                    Context {
                        recursive: true,
                        first: false,
                    },
                );
                let record = match parsed.outcome {
                    Ok(rec) if how == LineEnd::Newline => Some(record_msg(rec)),
                    _ => None,
                };
                let is_record = record.is_some();
                self.snk_frame(
                    end,
                    record.unwrap_or_else(|| Msg::BadReply(line.clone())),
                    note,
                    out,
                );
                if !rest {
                    if is_record {
                        self.violation(
                            out,
                            Name::RecordInsteadOfAck,
                            Some(dir),
                            Detail::Record(quote(&line)),
                        );
                    } else if first_reply && !record::looks_like_record(&line) {
                        self.violation(
                            out,
                            Name::OutputBeforeProtocol,
                            Some(dir),
                            Detail::Text(quote(&line)),
                        );
                    } else {
                        let byte = line.first().copied().unwrap_or(0);
                        self.violation(
                            out,
                            Name::BadAck,
                            Some(dir),
                            Detail::BadReply {
                                byte,
                                line: quote(&line),
                            },
                        );
                    }
                }
                ReplyKind::Bad
            }
        };
        self.cut_line_violations(dir, &line, how, rest, out);
        if how == LineEnd::Eof {
            // `response()` read part of a line, then `lostconn()`: no reply.
            return;
        }
        let text = line_text(&line);
        self.on_reply(reply, src_seen, &text, out);
        match reply {
            ReplyKind::Fatal => self.snk_ended = Some(Ended::OwnFatal),
            // `response()` exits after printing it: the source reads no more.
            ReplyKind::Bad => self.snk_ended = Some(Ended::SourceBadReply),
            ReplyKind::Ack | ReplyKind::Warning => {}
        }
    }

    fn snk_frame(&mut self, end: u64, msg: Msg, note: Option<Note>, out: &mut Vec<Event>) {
        out.push(Event::Frame(Frame {
            dir: self.snk_dir(),
            end,
            msg,
            note,
        }));
    }

    // ---- pairing ----------------------------------------------------------

    /// A message that awaits a reply. `holds`: its reply decides what comes
    /// next (T, C, D), so the source is held until it is known.
    fn push_awaited(&mut self, what: Awaited, size: u64, holds: bool) {
        self.push_pending(what, size, holds, false);
    }

    /// A `C`/`D` awaiting its reply; `refused`: OpenSSH's sink refuses it.
    fn push_awaited_refused(&mut self, what: Awaited, size: u64, refused: bool) {
        self.push_pending(what, size, true, refused);
    }

    fn push_pending(&mut self, what: Awaited, size: u64, holds: bool, refused: bool) {
        self.last = Some(LastAwaited {
            what: what.clone(),
            reply_seen: None,
        });
        let mut p = Pending {
            what,
            size,
            assumed: false,
            holds,
            refused,
        };
        // A reply that came early answers it now.
        let early = if self.end_preacked && matches!(p.what, Awaited::DataEnd(_)) {
            self.end_preacked = false;
            self.pop_early()
        } else if self.end_preacked {
            None
        } else {
            self.pop_early()
        };
        if let Some(r) = early {
            if let Some(l) = self.last.as_mut() {
                l.reply_seen = Some(r.src_seen);
            }
            let accepted = r.kind == ReplyKind::Ack;
            self.effect(&p, accepted);
            if p.refused && !accepted {
                self.src_ended = Some(Ended::SinkRefused);
            }
            return;
        }
        if self.awaiting.len() >= QUEUE_CAP || self.awaiting_extra > 0 {
            // Unremembered: its effect cannot wait for the reply; the source
            // evidently went on, so take it as accepted.
            self.awaiting_extra += 1;
            self.effect(&p, true);
            return;
        }
        if holds && self.hold_off {
            // The hold overflowed before: taken as accepted at once.
            p.assumed = true;
            self.effect(&p, true);
        } else if holds {
            self.src_state = SrcState::Held;
        }
        self.awaiting.push_back(p);
    }

    fn pop_early(&mut self) -> Option<Reply> {
        if let Some(r) = self.early.pop_front() {
            return Some(r);
        }
        if self.early_extra > 0 {
            self.early_extra -= 1;
            return Some(Reply {
                kind: ReplyKind::Ack,
                src_seen: 0,
            });
        }
        None
    }

    /// A reply was framed (`src_seen`: source bytes fed when its first byte
    /// was read): pair it with the oldest message awaiting one, or queue it
    /// until that message comes.
    fn on_reply(&mut self, kind: ReplyKind, src_seen: u64, text: &[u8], out: &mut Vec<Event>) {
        if let Some(p) = self.awaiting.pop_front() {
            if self.awaiting.is_empty()
                && let Some(l) = self.last.as_mut()
            {
                l.reply_seen = Some(src_seen);
            }
            if !p.assumed {
                let accepted = kind == ReplyKind::Ack;
                self.effect(&p, accepted);
                if p.refused && !accepted {
                    // OpenSSH's sink sent its error and exited.
                    self.src_ended = Some(Ended::SinkRefused);
                }
                if p.holds {
                    self.release_hold(out);
                }
            }
            return;
        }
        if self.awaiting_extra > 0 {
            self.awaiting_extra -= 1;
            return;
        }
        // Nothing awaits a reply yet.
        let dir = Some(self.snk_dir());
        if self.src_state == SrcState::AfterData && !self.end_preacked && kind == ReplyKind::Ack {
            // All of a file's data has been read and its `\0` not yet: a sink
            // that acks on the data (pscp) races the source's end byte.
            self.end_preacked = true;
        } else if self.src_eof || self.src_eof_deferred || self.src_ended.is_some() {
            // The source is gone or ended: the sink may say so ("lost connection").
        } else {
            // Replies queued beyond those that an extra reply shifted are new.
            let queued = self.early.len() as u64 + self.early_extra;
            if queued >= self.extras {
                match kind {
                    ReplyKind::Ack => {
                        self.violation(out, Name::AcksAhead, dir, Detail::Ahead);
                    }
                    // A sink cannot refuse what it has not seen: this one
                    // answers something twice. The source takes it as the
                    // answer to its next message.
                    ReplyKind::Warning => {
                        self.extras += 1;
                        let text = quote(text);
                        self.violation(out, Name::ExtraReply, dir, Detail::Extra { reply: kind, text });
                    }
                    // A sink may abort at any time; a bad reply is reported as such.
                    ReplyKind::Fatal | ReplyKind::Bad => {}
                }
            }
        }
        let r = Reply { kind, src_seen };
        if self.early.len() < QUEUE_CAP && self.early_extra == 0 {
            self.early.push_back(r);
        } else {
            self.early_extra += 1;
        }
    }

    /// What a reply to `p` changes: whether data follows a `C`, whether a
    /// `D` was entered, whether a `T`'s times stand. Ends a hold on `p`.
    fn effect(&mut self, p: &Pending, accepted: bool) {
        match &p.what {
            Awaited::Times => self.times_pending = accepted,
            Awaited::File(name) => {
                self.file = Some((name.clone(), p.size));
                self.src_state = match (accepted, p.size) {
                    (false, _) => SrcState::Idle,
                    (true, 0) => SrcState::AfterData,
                    (true, _) => SrcState::Data {
                        seen: 0,
                        started: false,
                    },
                };
            }
            Awaited::Dir(name) => {
                if accepted {
                    let name = name.clone();
                    self.push_dir(&name);
                    // The recursive `sink()` starts its own `first` loop.
                    self.first = true;
                }
            }
            Awaited::Ready | Awaited::EndDir | Awaited::DataEnd(_) | Awaited::Bad => {}
        }
        if p.holds && self.src_state == SrcState::Held {
            self.src_state = SrcState::Idle;
        }
    }

    /// The hold is full, or the session is over, without the reply: take the
    /// message that holds the source as accepted (as the source evidently
    /// did) and go on; its reply, when it comes, changes nothing.
    fn force_accept(&mut self, out: &mut Vec<Event>) {
        let held = self.awaiting.iter_mut().rev().find(|p| p.holds && !p.assumed);
        if let Some(p) = held {
            p.assumed = true;
            let p = p.clone();
            self.effect(&p, true);
        }
        if self.src_state == SrcState::Held {
            self.src_state = SrcState::Idle;
        }
        self.release_hold(out);
    }

    /// Decodes the bytes held while the source waited, then a deferred EOF.
    fn release_hold(&mut self, out: &mut Vec<Event>) {
        if self.src_state == SrcState::Held {
            return;
        }
        let held = std::mem::take(&mut self.hold);
        if !held.is_empty() {
            let base = self.hold_start;
            self.src_bytes(&held, base, out);
        }
        if self.src_eof_deferred && self.src_state != SrcState::Held {
            self.src_eof_deferred = false;
            self.src_eof = true;
            self.src_eof_now(out);
        }
    }

    // ---- the directory stack -----------------------------------------------

    fn push_dir(&mut self, name: &[u8]) {
        if self.stack.len() < STACK_CAP && self.depth == self.stack.len() as u64 {
            let keep = self.stack_bytes + name.len() <= STACK_BYTES_CAP;
            if keep {
                self.stack_bytes += name.len();
            }
            self.stack.push(keep.then(|| name.to_vec()));
        }
        self.depth += 1;
    }

    fn pop_dir(&mut self) -> Option<Vec<u8>> {
        if self.depth == 0 {
            return None;
        }
        self.depth -= 1;
        if self.depth < self.stack.len() as u64 {
            let name = self.stack.pop().flatten();
            if let Some(n) = &name {
                self.stack_bytes -= n.len();
            }
            name
        } else {
            None
        }
    }
}

/// How a line being read stands after its latest byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineEnd {
    Open,
    /// At its `\n`.
    Newline,
    /// At the reader's buffer size: the rest is read as the next line.
    Full,
    /// Cut by the end of the stream.
    Eof,
}

/// Whether `line` (its latest byte included) ends here, by the rules of the
/// reader of `kind`: both of OpenSSH's readers take the first byte apart and
/// then read `do { … } while (cp < &buf[sizeof(buf) - 1] && ch != '\n')`, so
/// the first byte never ends a line, except in `sink()`, which refuses a
/// first `\n` at once (`SCREWUP("unexpected <newline>")`). `response()`
/// keeps a `\x01`/`\x02` out of its buffer: those lines hold one byte more.
fn line_end(kind: LineKind, line: &[u8]) -> LineEnd {
    let max = match (kind, line.first()) {
        (LineKind::Reply | LineKind::End, Some(1 | 2)) => LINE_MAX + 1,
        _ => LINE_MAX,
    };
    let newline = line.last() == Some(&b'\n');
    match kind {
        LineKind::Record if line == b"\n" => LineEnd::Newline,
        LineKind::Text if newline => LineEnd::Newline,
        _ if newline && line.len() > 1 => LineEnd::Newline,
        _ if line.len() >= max => LineEnd::Full,
        _ => LineEnd::Open,
    }
}

/// A warning's or fatal error's text: the line without its first byte and newline.
fn line_text(line: &[u8]) -> Vec<u8> {
    let t = line.get(1..).unwrap_or(&[]);
    t.strip_suffix(b"\n").unwrap_or(t).to_vec()
}

#[cfg(test)]
fn awaited_bytes(a: &Awaited) -> usize {
    match a {
        Awaited::File(n) | Awaited::Dir(n) | Awaited::DataEnd(n) => n.capacity(),
        _ => 0,
    }
}

/// The violation a lint is reported as.
fn lint_name(lint: Lint) -> Name {
    match lint {
        Lint::EndTrailing => Name::BadEnd,
        Lint::TimesIgnored => Name::BadTimes,
        Lint::NameNul => Name::BadName,
        Lint::NameTooLong => Name::NameTooLong,
    }
}

fn record_msg(rec: Record) -> Msg {
    match rec {
        Record::File { mode, size, name } => Msg::File { mode, size, name },
        Record::Dir { mode, name } => Msg::Dir { mode, name },
        Record::End => Msg::EndDir { name: None },
        Record::Times {
            mtime,
            mtime_us,
            atime,
            atime_us,
        } => Msg::Times {
            mtime,
            mtime_us,
            atime,
            atime_us,
        },
    }
}

/// The violation for a line the sink refused.
fn refusal_violation(why: Refusal, line: &[u8], session_first: bool) -> (Name, Detail) {
    use record::NameProblem;
    let refused = Detail::Refused {
        why,
        line: quote(line),
    };
    if line.first() == Some(&0) {
        return (Name::AckInsteadOfRecord, refused);
    }
    // The session's first line, and it is no record: a shell start-up file
    // that prints (a bare `echo` gives "\n"), as scp.c's comment on the echo says.
    if session_first && !record::looks_like_record(line) {
        return (Name::OutputBeforeProtocol, Detail::Text(quote(line)));
    }
    let name = match why {
        Refusal::UnexpectedNewline
        | Refusal::Echoed
        | Refusal::ExpectedControlRecord
        | Refusal::LostConnection => Name::UnknownRecord,
        Refusal::BadMode | Refusal::ModeNotDelimited => Name::BadMode,
        Refusal::SizeNotPresent | Refusal::SizeNotDelimited | Refusal::SizeOutOfRange => Name::BadSize,
        Refusal::MtimeSecNotPresent
        | Refusal::MtimeSecNotDelimited
        | Refusal::MtimeUsecNotDelimited
        | Refusal::AtimeSecNotPresent
        | Refusal::AtimeSecNotDelimited
        | Refusal::AtimeUsecNotDelimited => Name::BadTimes,
        Refusal::DirWithoutR => Name::DirWithoutR,
        Refusal::UnexpectedFilename(p) => {
            let name = line
                .strip_suffix(b"\n")
                .unwrap_or(line)
                .splitn(3, |&b| b == b' ')
                .nth(2)
                .unwrap_or(&[]);
            let n = match p {
                NameProblem::Empty => Name::BadName,
                NameProblem::Dot => Name::NameDot,
                NameProblem::Slash => Name::NameSlash,
            };
            return (
                n,
                Detail::Name {
                    problem: p,
                    name: quote(name),
                },
            );
        }
    };
    (name, refused)
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
