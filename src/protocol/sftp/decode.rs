//! The SFTP decoder's API and its per-direction framing: each direction is a
//! stream of `uint32 length` + packet, cut into frames however its bytes
//! arrive; the fields of each packet are buffered (at most [`MAX_PACKET`]
//! bytes), WRITE and DATA payloads only counted, so that the relay can move
//! them with splice. Complete packets go to the conversation model
//! ([`super::conv`]), which decodes and pairs them.
//!
//! When a direction's framing cannot be trusted (it does not start with
//! INIT/VERSION, or a length is past what any OpenSSH peer accepts), the
//! finding is reported once and the rest of that direction is framed raw:
//! length-prefixed chunks, counted, not decoded.

use super::conv::{Conv, Packet};
use super::msg::{self, ExtPair, Limits, Msg};
use super::violation::{Bound, Detail, Expected, Violation};
use super::{Dir, MAX_PACKET, QUOTE_CAP, ty};

/// What the decoder reports, in the order it learns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// One packet (or one unframeable chunk) in `dir` ends at absolute
    /// offset `end` (bytes since that direction's start). It begins where the
    /// previous Frame in `dir` ended. Every byte fed belongs to exactly one
    /// Frame eventually (at the latest at eof). Never empty.
    Frame { dir: Dir, end: u64, msg: Msg },
    /// The payload of the packet being framed (WRITE's data, DATA's data,
    /// the bytes of a raw chunk) starts at absolute offset `at` in `dir` and
    /// is `len` bytes long; the tracer shows only its head. Emitted before
    /// that packet's Frame; never for an empty payload.
    DataStart { dir: Dir, at: u64, len: u64 },
    /// A finding, emitted before the Frame of the packet it concerns (or at
    /// eof / finish for the ones about a cut or the whole session).
    Violation(Violation),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Before the first packet: it must be INIT (In) or VERSION (Out).
    Start,
    Packets,
    /// Length-prefixed chunks, not decoded.
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Reading the uint32 length (into `buf`).
    Len,
    /// Buffering the packet's fields (into `buf`).
    Body { len: u32 },
    /// Counting a WRITE's or DATA's data: `present` bytes of the `declared`,
    /// `left` of them still to come, then `tail` bytes past them.
    Payload {
        len: u32,
        declared: u32,
        present: u64,
        left: u64,
        tail: u64,
    },
    /// Counting the bytes past the data.
    Tail {
        len: u32,
        declared: u32,
        present: u64,
        tail: u64,
        left: u64,
    },
    /// Counting a packet whose fields are too long to buffer.
    Skip { len: u32, left: u64 },
    /// Raw framing: counting the bytes a length claims.
    Raw { declared: u32, left: u64 },
}

/// A `not-sftp` finding waiting for its quote.
#[derive(Debug, Clone, Copy)]
struct NotSftp {
    expected: Expected,
    len: u32,
    ty: Option<u8>,
}

/// What the buffered bytes call for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Buffer up to this many bytes, then decide again.
    Need(usize),
    /// The payload header is this long (from the type byte on).
    Payload(usize),
    /// Buffer the whole packet.
    Whole,
    /// Too long to buffer: count it (once the type and id are in).
    Skip,
}

#[derive(Debug)]
struct Side {
    dir: Dir,
    /// Bytes fed (and skipped) so far.
    fed: u64,
    /// Where the current frame began.
    start: u64,
    mode: Mode,
    st: St,
    /// The current packet's bytes: its length field, then its fields.
    buf: Vec<u8>,
    /// The start of the direction, for `not-sftp`.
    quote: Vec<u8>,
    not_sftp: Option<NotSftp>,
}

/// Bytes to pass: either read (fed) or only counted (skipped by a splice).
#[derive(Debug, Clone, Copy)]
enum Input<'a> {
    Bytes(&'a [u8]),
    Count(u64),
}

impl Input<'_> {
    fn len(self) -> u64 {
        match self {
            Input::Bytes(b) => b.len() as u64,
            Input::Count(n) => n,
        }
    }
}

impl Side {
    fn new(dir: Dir) -> Side {
        Side {
            dir,
            fed: 0,
            start: 0,
            mode: Mode::Start,
            st: St::Len,
            buf: Vec::new(),
            quote: Vec::new(),
            not_sftp: None,
        }
    }

    fn expected(&self) -> Expected {
        match self.dir {
            Dir::In => Expected::Init,
            Dir::Out => Expected::Version,
        }
    }

    fn reset(&mut self) {
        self.st = St::Len;
        self.start = self.fed;
        self.buf.clear();
        // A NAME reply may have grown it to 256 KiB: do not keep that.
        if self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::new();
        }
    }

    /// In `Body`: what the bytes buffered so far call for.
    fn plan(&self, len: u32) -> Plan {
        let total = total(len);
        let have = self.buf.len();
        if have < 5 || self.mode == Mode::Start {
            return if have < 5 {
                Plan::Need(5.min(total))
            } else {
                Plan::Whole
            };
        }
        let big = len > MAX_PACKET;
        match msg::payload_header(self.dir, self.buf.get(4..).unwrap_or(&[])) {
            Err(need) => Plan::Need((4 + need).min(total)),
            Ok(Some(h)) if h <= len as usize && h <= MAX_PACKET as usize => Plan::Payload(h),
            _ if big => Plan::Skip,
            _ => Plan::Whole,
        }
    }

    /// How many bytes `buf` should hold before the next decision.
    fn want(&self) -> usize {
        match self.st {
            St::Len => 4,
            St::Body { len } => match self.plan(len) {
                Plan::Need(n) => n,
                Plan::Payload(h) => 4 + h,
                Plan::Whole => total(len),
                // Type and id first, for pairing.
                Plan::Skip => total(len).min(4 + 5),
            },
            _ => 0,
        }
    }
}

/// A packet's length with its length field (no overflow where usize is 32 bits).
fn total(len: u32) -> usize {
    (len as usize).saturating_add(4)
}

/// The sans-IO SFTP decoder of one session (docs/sftp-decoder.md).
#[derive(Debug)]
pub struct Decoder {
    sides: [Side; 2],
    conv: Conv,
    finished: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder for a session whose traced program is the SFTP server:
    /// [`Dir::In`] carries the client's requests, [`Dir::Out`] the replies.
    pub fn new() -> Decoder {
        Decoder {
            sides: [Side::new(Dir::In), Side::new(Dir::Out)],
            conv: Conv::new(),
            finished: false,
        }
    }

    /// Decodes `bytes`, the next bytes of `dir`; consumes all of them.
    pub fn feed(&mut self, dir: Dir, bytes: &[u8], out: &mut Vec<Event>) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self.step(dir.index(), Input::Bytes(rest), out);
            // Every state takes at least one byte; guard against a bug
            // turning into a hang (the bytes would then go unframed).
            debug_assert!(n > 0, "no progress in {:?}", self.sides[dir.index()].st);
            let Some(r) = rest.get(n.max(1) as usize..) else {
                break;
            };
            rest = r;
        }
    }

    /// Payload bytes (WRITE's or DATA's data, a raw chunk's bytes) that come
    /// next in `dir`: the relay may move up to this many with splice, without
    /// showing them, and pass them to [`Decoder::skip`]. Counted, never buffered.
    pub fn data_remaining(&self, dir: Dir) -> u64 {
        let s = &self.sides[dir.index()];
        match s.st {
            St::Payload { left, .. } => left,
            St::Raw { left, .. } if s.not_sftp.is_none() => left,
            _ => 0,
        }
    }

    /// `n` bytes of `dir` passed without being read: the same events as
    /// feeding them. `n` must not exceed [`Decoder::data_remaining`]; more
    /// is a caller's bug, and the excess is ignored.
    pub fn skip(&mut self, dir: Dir, n: u64, out: &mut Vec<Event>) {
        debug_assert!(n <= self.data_remaining(dir), "skip past the payload");
        let mut left = n.min(self.data_remaining(dir));
        while left > 0 {
            let k = self.step(dir.index(), Input::Count(left), out);
            if k == 0 {
                break;
            }
            left -= k;
        }
    }

    /// `dir` ended: a packet cut short is framed (and reported).
    pub fn eof(&mut self, dir: Dir, out: &mut Vec<Event>) {
        let s = &mut self.sides[dir.index()];
        let seen = s.fed - s.start;
        if seen == 0 {
            return;
        }
        let msg = match s.st {
            St::Raw { declared, .. } => {
                report_not_sftp(s, out);
                Msg::Raw { declared, seen }
            }
            st => {
                let declared = match st {
                    St::Len => None,
                    St::Body { len }
                    | St::Payload { len, .. }
                    | St::Tail { len, .. }
                    | St::Skip { len, .. } => Some(len),
                    St::Raw { declared, .. } => Some(declared),
                };
                let t = s.buf.get(4).copied();
                let id = s
                    .buf
                    .get(5..9)
                    .filter(|_| t.is_some_and(|t| t != ty::INIT && t != ty::VERSION))
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                if s.mode != Mode::Raw {
                    let (unanswered, oldest) = match dir {
                        Dir::Out => self.conv.cut_out(),
                        Dir::In => (0, None),
                    };
                    out.push(Event::Violation(Violation::new(
                        Some(dir),
                        Detail::Truncated {
                            ty: t,
                            id,
                            declared,
                            seen,
                            unanswered,
                            oldest,
                        },
                    )));
                }
                Msg::Truncated {
                    ty: t,
                    id,
                    declared,
                    seen,
                }
            }
        };
        out.push(Event::Frame { dir, end: s.fed, msg });
        s.reset();
    }

    /// The session is over: ends both directions, then reports what is left
    /// outstanding. Later calls do nothing.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.eof(Dir::In, out);
        self.eof(Dir::Out, out);
        let (in_bytes, out_bytes) = (self.sides[0].fed, self.sides[1].fed);
        self.conv.finish(in_bytes, out_bytes, out);
    }

    /// The version the client's INIT asked for.
    pub fn client_version(&self) -> Option<u32> {
        self.conv.client_version
    }

    /// The version of the server's (first) VERSION.
    pub fn server_version(&self) -> Option<u32> {
        self.conv.server_version
    }

    /// The extensions the server's VERSION announced (name, version).
    pub fn server_extensions(&self) -> &[ExtPair] {
        &self.conv.server_ext
    }

    /// The server's answer to limits@openssh.com, if it gave one.
    pub fn limits(&self) -> Option<Limits> {
        self.conv.limits
    }

    /// Bytes the decoder holds (buffers and tables), for the memory-bound tests.
    #[cfg(test)]
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.sides
            .iter()
            .map(|s| s.buf.len() + s.quote.len())
            .sum::<usize>()
            + self.conv.stored_bytes()
    }

    /// Passes the next bytes of direction `i` as far as its state allows;
    /// returns how many it took (at least 1 for a non-empty input).
    fn step(&mut self, i: usize, input: Input<'_>, out: &mut Vec<Event>) -> u64 {
        let s = &mut self.sides[i];
        let n = match &mut s.st {
            St::Len | St::Body { .. } => {
                let Input::Bytes(b) = input else {
                    return 0; // fields are never skipped
                };
                let n = s.want().saturating_sub(s.buf.len()).min(b.len());
                s.buf.extend_from_slice(b.get(..n).unwrap_or(b));
                n as u64
            }
            St::Raw { left, .. } if s.not_sftp.is_some() => {
                let Input::Bytes(b) = input else {
                    return 0; // the quote is read, never skipped
                };
                let room = QUOTE_CAP.saturating_sub(s.quote.len());
                let n = (*left).min(room as u64).min(b.len() as u64);
                s.quote.extend_from_slice(b.get(..n as usize).unwrap_or(b));
                *left -= n;
                n
            }
            St::Payload { left, .. }
            | St::Tail { left, .. }
            | St::Skip { left, .. }
            | St::Raw { left, .. } => {
                let n = (*left).min(input.len());
                *left -= n;
                n
            }
        };
        s.fed += n;
        self.settle(i, out);
        n
    }

    /// Acts on what the state now holds, until it needs more input.
    fn settle(&mut self, i: usize, out: &mut Vec<Event>) {
        // Each round either waits for input or moves the state on; a packet
        // needs at most a handful of rounds.
        for _ in 0..16 {
            let Decoder { sides, conv, .. } = self;
            let s = &mut sides[i];
            let dir = s.dir;
            match s.st {
                St::Len => {
                    if s.buf.len() < 4 {
                        return;
                    }
                    let len = u32::from_be_bytes([s.buf[0], s.buf[1], s.buf[2], s.buf[3]]);
                    on_length(s, conv, len, out);
                }
                St::Body { len } => {
                    let total = total(len);
                    if s.mode == Mode::Start && s.buf.len() == 5 {
                        let t = s.buf[4];
                        let want = match dir {
                            Dir::In => ty::INIT,
                            Dir::Out => ty::VERSION,
                        };
                        if t != want {
                            not_sftp(s, conv, len, Some(t));
                            continue;
                        }
                    }
                    if s.buf.len() < s.want() {
                        return;
                    }
                    if s.buf.len() >= total {
                        complete(s, conv, None, 0, out);
                        return;
                    }
                    match s.plan(len) {
                        // (want() covered these: more input first)
                        Plan::Need(_) | Plan::Whole => return,
                        Plan::Payload(h) => {
                            let hdr = s.buf.get(4..).unwrap_or(&[]);
                            let declared = msg::payload_len(hdr).unwrap_or(0);
                            let avail = u64::from(len) - h as u64;
                            let present = u64::from(declared).min(avail);
                            if present > 0 {
                                out.push(Event::DataStart {
                                    dir,
                                    at: s.fed,
                                    len: present,
                                });
                            }
                            s.st = St::Payload {
                                len,
                                declared,
                                present,
                                left: present,
                                tail: avail - present,
                            };
                        }
                        Plan::Skip => {
                            conv.decoder_limit(dir, Bound::Header, out);
                            s.st = St::Skip {
                                len,
                                left: total as u64 - s.buf.len() as u64,
                            };
                        }
                    }
                }
                St::Payload {
                    len,
                    declared,
                    present,
                    left: 0,
                    tail,
                } => {
                    s.st = St::Tail {
                        len,
                        declared,
                        present,
                        tail,
                        left: tail,
                    };
                }
                St::Tail {
                    declared,
                    present,
                    tail,
                    left: 0,
                    ..
                } => {
                    complete(s, conv, Some((declared, present)), tail, out);
                    return;
                }
                St::Skip { len, left: 0 } => {
                    let t = s.buf.get(4).copied().unwrap_or(0);
                    let id = s
                        .buf
                        .get(5..9)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    let end = s.fed;
                    let msg = conv.undecoded(dir, t, id, len, end, out);
                    out.push(Event::Frame { dir, end, msg });
                    s.reset();
                    return;
                }
                St::Raw { declared, left } => {
                    if s.not_sftp.is_some() && (s.quote.len() >= QUOTE_CAP || left == 0) {
                        report_not_sftp(s, out);
                        if left > 0 {
                            out.push(Event::DataStart {
                                dir,
                                at: s.fed,
                                len: left,
                            });
                        }
                    }
                    if left > 0 {
                        return;
                    }
                    let seen = s.fed - s.start;
                    out.push(Event::Frame {
                        dir,
                        end: s.fed,
                        msg: Msg::Raw { declared, seen },
                    });
                    s.reset();
                    return;
                }
                St::Payload { .. } | St::Tail { .. } | St::Skip { .. } => return,
            }
        }
    }
}

/// The length field is in: check it, choose how to frame the packet.
fn on_length(s: &mut Side, conv: &mut Conv, len: u32, out: &mut Vec<Event>) {
    let dir = s.dir;
    match s.mode {
        Mode::Start if !(5..=MAX_PACKET).contains(&len) => not_sftp(s, conv, len, None),
        Mode::Start => s.st = St::Body { len },
        Mode::Packets => {
            let (limit, which) = conv.limit(dir);
            if u64::from(len) > limit {
                let d = Detail::TooLong {
                    len: u64::from(len),
                    limit,
                    which,
                };
                conv.too_long(dir, d, out);
            }
            if u64::from(len) > limit.max(u64::from(MAX_PACKET)) {
                // Past anything an OpenSSH peer accepts (it would drop the
                // connection here): the framing is no longer to be trusted.
                s.mode = Mode::Raw;
                conv.set_raw(dir);
                raw_chunk(s, len, out);
            } else {
                s.st = St::Body { len };
            }
        }
        Mode::Raw => raw_chunk(s, len, out),
    }
}

fn raw_chunk(s: &mut Side, len: u32, out: &mut Vec<Event>) {
    if len > 0 {
        out.push(Event::DataStart {
            dir: s.dir,
            at: s.fed,
            len: u64::from(len),
        });
    }
    s.st = St::Raw {
        declared: len,
        left: u64::from(len),
    };
}

/// The direction does not start as SFTP: quote it, then frame it raw.
fn not_sftp(s: &mut Side, conv: &mut Conv, len: u32, t: Option<u8>) {
    s.mode = Mode::Raw;
    conv.set_raw(s.dir);
    s.quote = s.buf.clone();
    s.not_sftp = Some(NotSftp {
        expected: s.expected(),
        len,
        ty: t,
    });
    let have = s.buf.len() as u64 - 4;
    s.st = St::Raw {
        declared: len,
        left: u64::from(len).saturating_sub(have),
    };
}

fn report_not_sftp(s: &mut Side, out: &mut Vec<Event>) {
    if let Some(n) = s.not_sftp.take() {
        let d = Detail::NotSftp {
            expected: n.expected,
            text: std::mem::take(&mut s.quote),
            len: n.len,
            ty: n.ty,
        };
        out.push(Event::Violation(Violation::new(Some(s.dir), d)));
    }
}

/// A whole packet is in (its payload counted): decode it and frame it.
fn complete(s: &mut Side, conv: &mut Conv, payload: Option<(u32, u64)>, tail: u64, out: &mut Vec<Event>) {
    let end = s.fed;
    let len = match s.st {
        St::Body { len } | St::Tail { len, .. } => len,
        _ => 0,
    };
    let p = Packet {
        dir: s.dir,
        body: s.buf.get(4..).unwrap_or(&[]),
        len,
        payload,
        tail,
        end,
    };
    let msg = conv.packet(p, out);
    if s.mode == Mode::Start {
        s.mode = Mode::Packets;
    }
    out.push(Event::Frame { dir: s.dir, end, msg });
    s.reset();
}
