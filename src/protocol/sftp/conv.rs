//! The conversation model of one SFTP session: requests paired with their
//! replies by id, handles mapped to the paths they were opened with, what the
//! server announced, and the findings that need both directions to see.
//!
//! The framing ([`super::decode`]) hands it each complete packet; it returns
//! the typed [`Msg`] and pushes the findings. Every table is bounded; past a
//! bound the model forgets (and says so once) rather than grow.

use std::collections::{HashMap, VecDeque};

use super::decode::Event;
use super::msg::{self, ExtPair, ExtReply, Limits, Msg, Op, Reply, ReplyBody, ReqBody, Request, RequestRef};
use super::violation::{Bound, Detail, Limit, Unexpected, Violation};
use super::{
    CLOSED_CAP, Dir, HANDLE_CAP, HANDLES_CAP, MAX_PACKET, PATH_CAP, QUOTE_CAP, REQUESTS_CAP, pflags, status,
    ty,
};

/// Kinds of `unsupported` and files of `stale-tail` remembered, so each is
/// reported once; past this, new ones are reported every time (never lost).
pub(crate) const SEEN_CAP: usize = 64;

/// One complete packet, as the framing hands it over.
pub(crate) struct Packet<'a> {
    pub dir: Dir,
    /// The buffered bytes from the type byte on (for WRITE and DATA: up to
    /// the end of the header; the payload was counted, not kept).
    pub body: &'a [u8],
    /// The packet's length field.
    pub len: u32,
    /// WRITE/DATA: the data length the header declares, and how many data
    /// bytes the packet held.
    pub payload: Option<(u32, u64)>,
    /// WRITE/DATA: bytes after the data (a packet longer than its fields).
    pub tail: u64,
    /// Where the packet's frame ends in `dir`.
    pub end: u64,
}

/// An outstanding request.
#[derive(Debug)]
struct Pending {
    r: RequestRef,
    /// The request itself was already reported (its handle, its shape, its
    /// type): an error reply to it is a consequence, not reported again.
    flagged: bool,
    /// OPEN's pflags (a HANDLE reply maps them with the handle).
    pflags: Option<u32>,
    /// FSETSTAT/SETSTAT/lsetstat: the size it sets, and the pflags the file
    /// was opened with, if it is open (or was) in this session.
    size_set: Option<u64>,
    target_pflags: Option<u32>,
}

/// A handle the server issued.
#[derive(Debug, Clone)]
struct Handle {
    path: Option<Vec<u8>>,
    /// OPEN's pflags; `None` for OPENDIR's handles (and unpaired ones).
    pflags: Option<u32>,
    /// A CLOSE for it was sent (its reply decides).
    closing: bool,
    /// `closed-handle` was reported for it.
    reported: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Conv {
    /// Requests seen (the next one's `seq`).
    seq: u64,
    /// Outstanding requests in the order sent.
    pending: Vec<Pending>,
    /// The table overflowed: some requests were not remembered.
    requests_lost: bool,
    handles: HashMap<Vec<u8>, Handle>,
    handles_lost: bool,
    /// Recently closed handles (the oldest first).
    closed: VecDeque<(Vec<u8>, Handle)>,
    /// The direction is framed raw: its packets are not decoded.
    raw: [bool; 2],
    pub client_version: Option<u32>,
    pub server_version: Option<u32>,
    pub server_ext: Vec<ExtPair>,
    pub limits: Option<Limits>,
    /// One-per-root-cause memory.
    too_long: [bool; 2],
    decoder_limit: [bool; 3],
    unsupported_seen: Vec<(Op, Option<Vec<u8>>)>,
    stale_seen: Vec<Vec<u8>>,
    long_seen: [TypeSet; 2],
    unexpected_seen: [TypeSet; 2],
    duplicate_seen: bool,
    unknown_handles: Vec<Vec<u8>>,
    short_seen: [TypeSet; 2],
    /// Replies whose id matched no request, not yet explained by the
    /// client reusing an outstanding id (for `duplicate-id`, `outstanding`).
    unknown_replies: u64,
    /// The server's output ended inside a packet: what is left unanswered
    /// was reported with that `truncated`, not as `outstanding`.
    out_cut: bool,
}

/// A set of packet types (one bit per type byte).
#[derive(Debug, Default, Clone, Copy)]
struct TypeSet([u64; 4]);

impl TypeSet {
    /// Adds `t`; true if it was not in the set yet.
    fn first(&mut self, t: u8) -> bool {
        let (w, b) = (usize::from(t / 64), t % 64);
        let Some(word) = self.0.get_mut(w) else {
            return false;
        };
        let new = *word & (1 << b) == 0;
        *word |= 1 << b;
        new
    }
}

fn cut(b: &[u8], cap: usize) -> Vec<u8> {
    b.get(..cap).unwrap_or(b).to_vec()
}

fn u32_at(b: &[u8]) -> Option<u32> {
    let x = b.get(..4)?;
    Some(u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

fn push(out: &mut Vec<Event>, dir: Option<Dir>, d: Detail) {
    out.push(Event::Violation(Violation::new(dir, d)));
}

impl Conv {
    pub fn new() -> Conv {
        Conv::default()
    }

    /// The longest packet `dir` may carry without `too-long`: what the server
    /// announced for the client's packets, OpenSSH's limit otherwise.
    pub fn limit(&self, dir: Dir) -> (u64, Limit) {
        match (dir, self.limits) {
            (Dir::In, Some(l)) if l.max_packet > 0 => (l.max_packet, Limit::MaxPacket),
            _ => (u64::from(MAX_PACKET), Limit::OpenSsh),
        }
    }

    /// Reports `too-long` once per direction; false if already reported.
    pub fn too_long(&mut self, dir: Dir, d: Detail, out: &mut Vec<Event>) -> bool {
        let seen = &mut self.too_long[dir.index()];
        if *seen {
            return false;
        }
        *seen = true;
        push(out, Some(dir), d);
        true
    }

    /// Reports a bound reached, once per bound.
    pub fn decoder_limit(&mut self, dir: Dir, bound: Bound, out: &mut Vec<Event>) {
        let (i, cap) = match bound {
            Bound::Requests => (0, REQUESTS_CAP as u64),
            Bound::Handles => (1, HANDLES_CAP as u64),
            Bound::Header => (2, u64::from(MAX_PACKET)),
        };
        if !std::mem::replace(&mut self.decoder_limit[i], true) {
            push(out, Some(dir), Detail::DecoderLimit { bound, cap });
        }
    }

    /// `dir` is framed raw from now on.
    pub fn set_raw(&mut self, dir: Dir) {
        self.raw[dir.index()] = true;
    }

    /// Without the client's requests (raw, or the table overflowed), replies
    /// cannot be paired: their ids prove nothing.
    fn pairing_lost(&self) -> bool {
        self.raw[0] || self.requests_lost
    }

    fn short(&mut self, dir: Dir, t: Option<u8>, id: Option<u32>, len: u32, out: &mut Vec<Event>) {
        // Once per type and direction: a peer that gets a type wrong, gets it
        // wrong every time.
        if let Some(t) = t
            && !self.short_seen[dir.index()].first(t)
        {
            return;
        }
        push(out, Some(dir), Detail::ShortPacket { ty: t, id, len });
    }

    fn long(&mut self, dir: Dir, t: u8, id: Option<u32>, extra: u64, out: &mut Vec<Event>) {
        if extra == 0 || !self.long_seen[dir.index()].first(t) {
            return;
        }
        let extra = u32::try_from(extra).unwrap_or(u32::MAX);
        push(out, Some(dir), Detail::LongPacket { ty: t, id, extra });
    }

    fn unexpected(&mut self, dir: Dir, t: u8, why: Unexpected, out: &mut Vec<Event>) {
        if self.unexpected_seen[dir.index()].first(t) {
            push(out, Some(dir), Detail::UnexpectedType { ty: t, why });
        }
    }

    /// Decodes one complete packet of `p.dir`.
    pub fn packet(&mut self, p: Packet<'_>, out: &mut Vec<Event>) -> Msg {
        let Some((&t, rest)) = p.body.split_first() else {
            self.short(p.dir, None, None, p.len, out);
            return Msg::Malformed {
                ty: None,
                id: None,
                to: None,
            };
        };
        match p.dir {
            Dir::In => self.request(t, rest, &p, out),
            Dir::Out => self.reply(t, rest, &p, out),
        }
    }

    /// A packet whose fields were too long to buffer: paired, not decoded.
    pub fn undecoded(
        &mut self,
        dir: Dir,
        t: u8,
        id: Option<u32>,
        len: u32,
        end: u64,
        out: &mut Vec<Event>,
    ) -> Msg {
        let mut to = None;
        match dir {
            Dir::In if ty::is_request(t) && t != ty::INIT => {
                if let Some(id) = id {
                    let r = self.new_ref(Some(id), Op::from_type(t), end);
                    self.register(dir, r, false, out);
                }
            }
            Dir::Out if ty::is_reply(t) => {
                if let Some(i) = id.and_then(|id| self.find(id)) {
                    to = Some(self.pending.remove(i).r);
                }
            }
            _ => {}
        }
        Msg::Undecoded { ty: t, id, len, to }
    }

    fn new_ref(&mut self, id: Option<u32>, op: Op, end: u64) -> RequestRef {
        let seq = self.seq;
        self.seq += 1;
        RequestRef {
            id,
            seq,
            end,
            op,
            ext_name: None,
            path: None,
            path2: None,
            handle: None,
            offset: None,
            len: None,
        }
    }

    fn find(&self, id: u32) -> Option<usize> {
        self.pending.iter().position(|p| p.r.id == Some(id))
    }

    /// Remembers an outstanding request, unless the table is full or the
    /// server's direction is raw (its replies will never be paired).
    fn register(
        &mut self,
        dir: Dir,
        r: RequestRef,
        flagged: bool,
        out: &mut Vec<Event>,
    ) -> Option<&mut Pending> {
        if self.raw[1] {
            return None;
        }
        if self.pending.len() >= REQUESTS_CAP {
            self.requests_lost = true;
            self.decoder_limit(dir, Bound::Requests, out);
            return None;
        }
        self.pending.push(Pending {
            r,
            flagged,
            pflags: None,
            size_set: None,
            target_pflags: None,
        });
        self.pending.last_mut()
    }

    // ---- the client's direction ------------------------------------------

    fn request(&mut self, t: u8, rest: &[u8], p: &Packet<'_>, out: &mut Vec<Event>) -> Msg {
        let dir = Dir::In;
        if t == ty::INIT {
            let r = self.new_ref(None, Op::Init, p.end);
            let repeated = self.client_version.is_some();
            if repeated {
                self.unexpected(dir, t, Unexpected::Repeated, out);
            }
            return match msg::parse_hello(rest) {
                Ok((version, ext)) => {
                    self.client_version.get_or_insert(version);
                    self.register(dir, r, repeated, out);
                    Msg::Init {
                        version,
                        ext,
                        extra: 0,
                    }
                }
                Err(_) => {
                    self.short(dir, Some(t), None, p.len, out);
                    self.register(dir, r, true, out);
                    Msg::Malformed {
                        ty: Some(t),
                        id: None,
                        to: None,
                    }
                }
            };
        }
        if ty::is_reply(t) {
            self.unexpected(dir, t, Unexpected::WrongDirection, out);
            return Msg::Unknown {
                ty: t,
                id: u32_at(rest),
                body: rest.to_vec(),
            };
        }
        if !ty::is_request(t) {
            self.unexpected(dir, t, Unexpected::Unknown, out);
            let id = u32_at(rest);
            if id.is_some() {
                // OpenSSH's server answers nothing to it (it logs "Unknown
                // message"); another may answer OP_UNSUPPORTED, which pairs.
                let r = self.new_ref(id, Op::Unknown(t), p.end);
                self.register(dir, r, true, out);
            }
            return Msg::Unknown {
                ty: t,
                id,
                body: rest.to_vec(),
            };
        }
        let (id, body, left) = match msg::parse_request(t, rest) {
            Ok(x) => x,
            Err(s) => {
                self.short(dir, Some(t), s.id, p.len, out);
                if s.id.is_some() {
                    let r = self.new_ref(s.id, Op::from_type(t), p.end);
                    self.register(dir, r, true, out);
                }
                return Msg::Malformed {
                    ty: Some(t),
                    id: s.id,
                    to: None,
                };
            }
        };
        let mut flagged = false;
        let extra = match p.payload {
            Some((declared, present)) => {
                if present < u64::from(declared) {
                    self.short(dir, Some(t), Some(id), p.len, out);
                    flagged = true;
                }
                if let Some(max) = self.limits.map(|l| l.max_write).filter(|&m| m > 0)
                    && u64::from(declared) > max
                {
                    let d = Detail::TooLong {
                        len: u64::from(declared),
                        limit: max,
                        which: Limit::MaxWrite,
                    };
                    self.too_long(dir, d, out);
                }
                p.tail
            }
            None => left as u64,
        };
        self.long(dir, t, Some(id), extra, out);
        let op = body.op();
        let mut r = self.new_ref(Some(id), op, p.end);

        // Handles: their paths, and whether they may be used at all.
        let (h1, h2) = body.handles();
        let (handle_path, f1) = match h1 {
            Some(h) => self.use_handle(h, op, out),
            None => (None, false),
        };
        let (handle2_path, f2) = match h2 {
            Some(h) => self.use_handle(h, op, out),
            None => (None, false),
        };
        flagged |= f1 | f2;
        if let (ReqBody::Close { handle }, false) = (&body, flagged)
            && let Some(hd) = self.handles.get_mut(handle.as_slice())
        {
            hd.closing = true;
        }

        let (p1, p2) = body.paths();
        r.path = p1.map(|x| cut(x, PATH_CAP)).or_else(|| handle_path.clone());
        r.path2 = p2.map(|x| cut(x, PATH_CAP)).or_else(|| handle2_path.clone());
        r.handle = h1.map(|h| cut(h, HANDLE_CAP));
        if let ReqBody::Extended { name, .. } = &body {
            r.ext_name = Some(cut(name, PATH_CAP));
        }
        match &body {
            ReqBody::Read { offset, len, .. } | ReqBody::Write { offset, len, .. } => {
                r.offset = Some(*offset);
                r.len = Some(u64::from(*len));
            }
            _ => {}
        }

        if let Some(i) = self.find(id)
            && self.unknown_replies > 0
        {
            // A reply came with an id nobody asked for, and the client now
            // reuses this one: that reply was its answer, mislabelled
            // (reported already).
            self.unknown_replies -= 1;
            self.pending.remove(i);
        }
        if let Some(first) = self.find(id).map(|i| &self.pending[i].r) {
            if !std::mem::replace(&mut self.duplicate_seen, true) {
                push(
                    out,
                    Some(dir),
                    Detail::DuplicateId {
                        id,
                        first: first.clone(),
                    },
                );
            }
            flagged = true;
        }

        // What a refused size change would leave behind.
        let size_set = body
            .attrs()
            .and_then(|a| a.size)
            .filter(|_| matches!(op, Op::Fsetstat | Op::Setstat | Op::Extended(msg::Ext::Lsetstat)));
        let target_pflags = match (&body, size_set) {
            (_, None) => None,
            (ReqBody::Fsetstat { handle, .. }, _) => self.handle_info(handle).and_then(|h| h.pflags),
            _ => r.path.as_deref().and_then(|path| self.pflags_of_path(path)),
        };
        let open_pflags = match &body {
            ReqBody::Open { pflags, .. } => Some(*pflags),
            _ => None,
        };
        if let Some(pend) = self.register(dir, r, flagged, out) {
            pend.pflags = open_pflags;
            pend.size_set = size_set;
            pend.target_pflags = target_pflags;
        }
        Msg::Request(Request {
            id,
            seq: self.seq - 1,
            body,
            handle_path,
            handle2_path,
            extra: u32::try_from(extra).unwrap_or(u32::MAX),
        })
    }

    fn handle_info(&self, h: &[u8]) -> Option<&Handle> {
        self.handles
            .get(h)
            .or_else(|| self.closed.iter().rev().find(|(k, _)| k == h).map(|(_, v)| v))
    }

    /// The pflags of a file opened (now or earlier) by `path`: of several
    /// opens, one that could leave a stale tail (the map's order is random,
    /// the choice must not be).
    fn pflags_of_path(&self, path: &[u8]) -> Option<u32> {
        let open = self
            .handles
            .values()
            .filter_map(|h| Some((h.path.as_deref()?, h.pflags?)));
        let closed = self
            .closed
            .iter()
            .filter_map(|(_, h)| Some((h.path.as_deref()?, h.pflags?)));
        let risky = |f: u32| f & pflags::WRITE != 0 && f & pflags::TRUNC == 0;
        open.chain(closed)
            .filter(|(p, _)| *p == path)
            .map(|(_, f)| f)
            .max_by_key(|&f| (risky(f), f))
    }

    /// Checks a handle a request uses: its path, and whether the request was
    /// reported for it (used after CLOSE, or never issued).
    fn use_handle(&mut self, h: &[u8], op: Op, out: &mut Vec<Event>) -> (Option<Vec<u8>>, bool) {
        if h.len() > HANDLE_CAP {
            return (None, false); // never tracked (the draft allows 256 bytes)
        }
        if let Some(hd) = self.handles.get_mut(h) {
            if !hd.closing {
                return (hd.path.clone(), false);
            }
            // Sent after its CLOSE: the server handles requests in order, so
            // the handle is gone by then (unless that CLOSE fails).
            let report = !std::mem::replace(&mut hd.reported, true);
            let path = hd.path.clone();
            if report {
                let d = Detail::ClosedHandle {
                    handle: h.to_vec(),
                    path: path.clone(),
                    op,
                };
                push(out, Some(Dir::In), d);
            }
            return (path, true);
        }
        if let Some((_, hd)) = self.closed.iter_mut().rev().find(|(k, _)| k == h) {
            let report = !std::mem::replace(&mut hd.reported, true);
            let path = hd.path.clone();
            if report {
                let d = Detail::ClosedHandle {
                    handle: h.to_vec(),
                    path: path.clone(),
                    op,
                };
                push(out, Some(Dir::In), d);
            }
            return (path, true);
        }
        // Without every HANDLE reply, an unmapped handle proves nothing.
        if self.handles_lost || self.raw[1] {
            return (None, false);
        }
        if self.unknown_handles.iter().any(|k| k == h) {
            return (None, true);
        }
        if self.unknown_handles.len() < SEEN_CAP {
            self.unknown_handles.push(h.to_vec());
        }
        push(
            out,
            Some(Dir::In),
            Detail::UnknownHandle {
                handle: h.to_vec(),
                op,
            },
        );
        (None, true)
    }

    // ---- the server's direction ------------------------------------------

    fn reply(&mut self, t: u8, rest: &[u8], p: &Packet<'_>, out: &mut Vec<Event>) -> Msg {
        let dir = Dir::Out;
        if t == ty::VERSION {
            let to = self
                .pending
                .iter()
                .position(|p| p.r.op == Op::Init)
                .map(|i| self.pending.remove(i).r);
            if to.is_none() && self.server_version.is_some() {
                self.unexpected(dir, t, Unexpected::Repeated, out);
            }
            return match msg::parse_hello(rest) {
                Ok((version, ext)) => {
                    if self.server_version.is_none() {
                        self.server_version = Some(version);
                        self.server_ext = ext.clone();
                    }
                    Msg::Version {
                        version,
                        ext,
                        extra: 0,
                        to,
                    }
                }
                Err(_) => {
                    self.short(dir, Some(t), None, p.len, out);
                    Msg::Malformed {
                        ty: Some(t),
                        id: None,
                        to,
                    }
                }
            };
        }
        if ty::is_request(t) {
            self.unexpected(dir, t, Unexpected::WrongDirection, out);
            return Msg::Unknown {
                ty: t,
                id: u32_at(rest),
                body: rest.to_vec(),
            };
        }
        if !ty::is_reply(t) {
            self.unexpected(dir, t, Unexpected::Unknown, out);
            let id = u32_at(rest);
            // It answers its id (no second finding for that request).
            if let Some(i) = id.and_then(|id| self.find(id)) {
                self.pending.remove(i);
            }
            return Msg::Unknown {
                ty: t,
                id,
                body: rest.to_vec(),
            };
        }
        let Some(id) = u32_at(rest) else {
            self.short(dir, Some(t), None, p.len, out);
            return Msg::Malformed {
                ty: Some(t),
                id: None,
                to: None,
            };
        };
        let pend = self.find(id).map(|i| self.pending.remove(i));
        let op = pend.as_ref().map(|p| p.r.op);
        let (body, left) = match msg::parse_reply(t, rest, op) {
            Ok((_, b, left)) => (b, left),
            Err(_) => {
                if !pend.as_ref().is_some_and(|p| p.flagged) {
                    self.short(dir, Some(t), Some(id), p.len, out);
                }
                return Msg::Malformed {
                    ty: Some(t),
                    id: Some(id),
                    to: pend.map(|p| p.r),
                };
            }
        };
        let extra = match p.payload {
            Some((declared, present)) => {
                if present < u64::from(declared) {
                    self.short(dir, Some(t), Some(id), p.len, out);
                }
                p.tail
            }
            None => left as u64,
        };
        self.long(dir, t, Some(id), extra, out);
        match &pend {
            None => {
                self.unknown_replies += 1;
                if !self.pairing_lost() {
                    push(out, Some(dir), Detail::UnknownId { id, ty: t });
                }
                if let ReplyBody::Handle { handle } = &body {
                    // Its request is unknown, but the handle is real.
                    self.map_handle(handle, None, None, out);
                }
            }
            Some(pend) => self.answered(pend, &body, out),
        }
        Msg::Reply(Reply {
            id,
            body,
            to: pend.map(|p| p.r),
            extra: u32::try_from(extra).unwrap_or(u32::MAX),
        })
    }

    /// What a reply to a known request changes, and what it reveals.
    fn answered(&mut self, pend: &Pending, body: &ReplyBody, out: &mut Vec<Event>) {
        let dir = Some(Dir::Out);
        let op = pend.r.op;
        let t = body.type_byte();
        if op.replies().is_some_and(|ok| !ok.contains(&t)) {
            if !pend.flagged {
                push(
                    out,
                    dir,
                    Detail::WrongReply {
                        ty: t,
                        req: pend.r.clone(),
                    },
                );
            }
            return;
        }
        match body {
            ReplyBody::Handle { handle } => {
                let pf = if op == Op::Open { pend.pflags } else { None };
                self.map_handle(handle, pend.r.path.clone(), pf, out);
            }
            ReplyBody::Extended(ExtReply::Limits(l)) => self.limits = Some(*l),
            ReplyBody::Status { code, message, .. } => {
                if op == Op::Close
                    && let Some(h) = &pend.r.handle
                {
                    if *code == status::OK {
                        self.close_handle(h);
                    } else if let Some(hd) = self.handles.get_mut(h.as_slice()) {
                        hd.closing = false; // the CLOSE failed: still open
                    }
                }
                if !pend.flagged {
                    self.status_finding(pend, *code, message.as_deref(), out);
                }
            }
            _ => {}
        }
    }

    fn status_finding(&mut self, pend: &Pending, code: u32, message: Option<&[u8]>, out: &mut Vec<Event>) {
        let dir = Some(Dir::Out);
        let op = pend.r.op;
        match code {
            status::OK => return,
            // The normal end of a file or a directory listing.
            status::EOF if matches!(op, Op::Read | Op::Readdir) => return,
            // A lookup that finds nothing is an answer (scp STATs its target
            // to learn whether it is a directory), not an error.
            status::NO_SUCH_FILE if matches!(op, Op::Stat | Op::Lstat) => return,
            _ => {}
        }
        if let (Some(size), Some(pf)) = (pend.size_set, pend.target_pflags)
            && pf & pflags::WRITE != 0
            && pf & pflags::TRUNC == 0
        {
            let key = pend
                .r
                .path
                .clone()
                .or_else(|| pend.r.handle.clone())
                .unwrap_or_default();
            if self.stale_seen.contains(&key) {
                return;
            }
            if self.stale_seen.len() < SEEN_CAP {
                self.stale_seen.push(key);
            }
            let d = Detail::StaleTail {
                req: pend.r.clone(),
                path: pend.r.path.clone(),
                size,
                code,
            };
            push(out, dir, d);
            return;
        }
        if code == status::OP_UNSUPPORTED {
            let key = (op, pend.r.ext_name.clone());
            if self.unsupported_seen.contains(&key) {
                return;
            }
            if self.unsupported_seen.len() < SEEN_CAP {
                self.unsupported_seen.push(key);
            }
            push(out, dir, Detail::Unsupported { req: pend.r.clone() });
            return;
        }
        let d = Detail::StatusError {
            req: pend.r.clone(),
            code,
            message: message.map(|m| cut(m, QUOTE_CAP)).unwrap_or_default(),
        };
        push(out, dir, d);
    }

    fn map_handle(&mut self, h: &[u8], path: Option<Vec<u8>>, pflags: Option<u32>, out: &mut Vec<Event>) {
        if h.len() > HANDLE_CAP {
            return;
        }
        if !self.handles.contains_key(h) && self.handles.len() >= HANDLES_CAP {
            self.handles_lost = true;
            self.decoder_limit(Dir::Out, Bound::Handles, out);
            return;
        }
        // sftp-server reuses handle values: a reissued handle is new.
        self.closed.retain(|(k, _)| k != h);
        self.handles.insert(
            h.to_vec(),
            Handle {
                path,
                pflags,
                closing: false,
                reported: false,
            },
        );
    }

    fn close_handle(&mut self, h: &[u8]) {
        if let Some(hd) = self.handles.remove(h) {
            if self.closed.len() >= CLOSED_CAP {
                self.closed.pop_front();
            }
            self.closed.push_back((h.to_vec(), hd));
        }
    }

    // ---- the end -----------------------------------------------------------

    /// The requests no reply will answer: how many, and the oldest (those
    /// already reported are left out).
    fn unanswered(&self) -> Option<(u64, RequestRef)> {
        let mut live = self.pending.iter().filter(|p| !p.flagged);
        let first = live.next()?;
        Some((1 + live.count() as u64, first.r.clone()))
    }

    /// The server's output was cut inside a packet: one root cause with
    /// the requests it leaves unanswered (so far; later ones are too), which
    /// `truncated` reports, in place of `outstanding` at the end.
    pub fn cut_out(&mut self) -> (u64, Option<RequestRef>) {
        self.out_cut = true;
        match self.unanswered() {
            Some((count, first)) if !self.raw[1] && count > self.unknown_replies => (count, Some(first)),
            _ => (0, None),
        }
    }

    /// The session is over: what is left unanswered. `out_bytes` is how many
    /// bytes the server sent in all.
    pub fn finish(&mut self, in_bytes: u64, out_bytes: u64, out: &mut Vec<Event>) {
        let Some((count, first)) = self.unanswered() else {
            // Not a byte either way: the client always starts with INIT, so
            // none of it reached the server (a relay counts what it delivered,
            // and a transport that exits at once reads nothing).
            if in_bytes == 0 && out_bytes == 0 {
                push(
                    out,
                    None,
                    Detail::NoReply {
                        count: 0,
                        first: None,
                    },
                );
            }
            return;
        };
        if out_bytes == 0 {
            push(
                out,
                None,
                Detail::NoReply {
                    count,
                    first: Some(first),
                },
            );
        } else if !self.raw[1] && !self.out_cut && count > self.unknown_replies {
            // Not when the server's direction went raw (its replies were
            // never decoded), nor when as many replies came with unknown ids
            // (they are the answers, mislabelled: reported already).
            push(out, None, Detail::Outstanding { count, first });
        }
        self.pending.clear();
    }

    /// Bytes held in the tables (for the memory-bound tests).
    #[cfg(test)]
    pub fn stored_bytes(&self) -> usize {
        fn r(r: &RequestRef) -> usize {
            let l = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, Vec::len);
            std::mem::size_of::<Pending>() + l(&r.ext_name) + l(&r.path) + l(&r.path2) + l(&r.handle)
        }
        let h = |k: &Vec<u8>, v: &Handle| {
            k.len() + v.path.as_ref().map_or(0, Vec::len) + std::mem::size_of::<Handle>()
        };
        self.pending.iter().map(|p| r(&p.r)).sum::<usize>()
            + self.handles.iter().map(|(k, v)| h(k, v)).sum::<usize>()
            + self.closed.iter().map(|(k, v)| h(k, v)).sum::<usize>()
            + self
                .server_ext
                .iter()
                .map(|e| e.name.len() + e.data.len())
                .sum::<usize>()
            + self.stale_seen.iter().map(Vec::len).sum::<usize>()
            + self.unknown_handles.iter().map(Vec::len).sum::<usize>()
            + self
                .unsupported_seen
                .iter()
                .map(|(_, n)| n.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
    }
}
