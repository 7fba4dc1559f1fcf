//! The SFTP conversation: the transcript read once more, line by line; each
//! recorded request rebuilt for the target and sent, each recorded reply
//! awaited from the live sftp-server (the live reply to the same request)
//! and compared. A request is sent when its line comes, so after every
//! reply recorded before it has arrived: the recorded order.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;

use super::compare::reply_diff;
use super::is_unknown_extension;
use super::paths::{Mapper, Placed, Unsendable};
use super::recorded::{Packet, Recorded};
use super::wire::{LiveReply, Replies, encode, init, sanitize};
use crate::cmd::replay::engine::{Command, Context, Live, Outgoing, Stop, Window};
use crate::cmd::replay::report::{self, Head};
use crate::cmd::replay::{CONTEXT, Plan, Transcript, shrink_bytes};
use crate::escape::escape;
use crate::protocol::Msg as Decoded;
use crate::protocol::sftp::{Attrs, ExtRequest, Msg, Op, Reply, ReqBody, Request, RequestRef, ty};
use crate::transcript::{Annotation, Bytes, Entry, Kind, Stream};

/// The handle sent for one the live server never issued (a recorded handle
/// used after its CLOSE, or never given): sftp-server knows no such handle.
const NO_HANDLE: &[u8] = b"\xff\xff\xff\xff";
/// Most handles mapped at once.
const HANDLES_CAP: usize = 4096;
/// Most requests sent and not yet compared.
const PENDING_CAP: usize = 65_536;

/// The first difference.
#[derive(Debug, Clone)]
enum Diff {
    /// The live reply is another one.
    Reply(String),
    /// No live reply came: the server closed its stdout, or went quiet.
    Missing(Stop),
    /// The server did not read this request within the timeout.
    Stalled(u64),
    /// A recorded reply that no real sftp-server sends (an unknown id, bytes
    /// that are no reply).
    NotAReply(String),
    /// The live server sent a reply the recording does not have.
    Extra(String),
    /// All matched, but the server did not end its output.
    NoEnd,
    Exit(i32),
}

/// Counts of what replay changed or left out, each with its first line.
#[derive(Default)]
struct Tally {
    n: u64,
    first: u64,
}

impl Tally {
    fn add(&mut self, no: u64) {
        if self.n == 0 {
            self.first = no;
        }
        self.n += 1;
    }
}

#[derive(Default)]
struct Tallies {
    clamped: Tally,
    unsendable: Tally,
    unsendable_why: String,
    links: Tally,
    owners: Tally,
    special: Tally,
    unknown_ext: Tally,
    copy_all: Tally,
    not_packets: Tally,
    not_compared: Tally,
    init_ext: Tally,
}

struct State<'a> {
    m: &'a Mapper,
    live: Live<Replies>,
    /// Recorded handle → live handle.
    handles: HashMap<Vec<u8>, Vec<u8>>,
    /// Recorded requests sent whose reply is still to compare.
    pending: HashSet<u64>,
    next_id: u32,
    t: Tallies,
    sent: usize,
    matched: usize,
    /// The last lines of the live conversation, for the report.
    log: std::collections::VecDeque<Entry>,
    in_closed_at: Option<u64>,
}

/// A live packet as a transcript line.
fn live_entry(stream: Stream, head: &[u8], len: u64, msg: Msg) -> Entry {
    let b = Bytes {
        stream,
        bytes: head.to_vec(),
        len,
        kind: Kind::Packet,
        note: Some(Annotation::Msg {
            msg: Decoded::Sftp(Box::new(msg)),
            consequence: None,
            latency_us: None,
        }),
    };
    Entry::Bytes(shrink_bytes(&b))
}

impl State<'_> {
    fn log(&mut self, e: Entry) {
        if self.log.len() > CONTEXT {
            self.log.pop_front();
        }
        self.log.push_back(e);
    }

    fn place(&mut self, no: u64, p: &[u8]) -> Result<Vec<u8>, Unsendable> {
        let Placed { virt, clamped } = self.m.place(p)?;
        if clamped {
            self.t.clamped.add(no);
        }
        Ok(self.m.real(&virt))
    }

    fn handle(&self, h: &[u8]) -> Vec<u8> {
        self.handles.get(h).cloned().unwrap_or_else(|| NO_HANDLE.to_vec())
    }

    fn attrs(&mut self, no: u64, a: &Attrs) -> Attrs {
        let (clean, cut) = sanitize(a);
        if cut.owner {
            self.t.owners.add(no);
        }
        if cut.special {
            self.t.special.add(no);
        }
        clean
    }

    /// The request as the live server gets it; `None`: not sent.
    fn translate(&mut self, no: u64, body: &ReqBody) -> Result<Option<ReqBody>, Unsendable> {
        use ReqBody as B;
        let b = match body {
            B::Open { path, pflags, attrs } => B::Open {
                path: self.place(no, path)?,
                pflags: *pflags,
                attrs: self.attrs(no, attrs),
            },
            B::Close { handle } => B::Close {
                handle: self.handle(handle),
            },
            B::Read { handle, offset, len } => B::Read {
                handle: self.handle(handle),
                offset: *offset,
                len: *len,
            },
            B::Write { handle, offset, len } => B::Write {
                handle: self.handle(handle),
                offset: *offset,
                len: *len,
            },
            B::Fstat { handle } => B::Fstat {
                handle: self.handle(handle),
            },
            B::Readdir { handle } => B::Readdir {
                handle: self.handle(handle),
            },
            B::Fsetstat { handle, attrs } => B::Fsetstat {
                handle: self.handle(handle),
                attrs: self.attrs(no, attrs),
            },
            B::Lstat { path } => B::Lstat {
                path: self.place(no, path)?,
            },
            B::Stat { path } => B::Stat {
                path: self.place(no, path)?,
            },
            B::Opendir { path } => B::Opendir {
                path: self.place(no, path)?,
            },
            B::Remove { path } => B::Remove {
                path: self.place(no, path)?,
            },
            B::Rmdir { path } => B::Rmdir {
                path: self.place(no, path)?,
            },
            B::Realpath { path } => B::Realpath {
                path: self.place(no, path)?,
            },
            B::Readlink { path } => B::Readlink {
                path: self.place(no, path)?,
            },
            B::Setstat { path, attrs } => B::Setstat {
                path: self.place(no, path)?,
                attrs: self.attrs(no, attrs),
            },
            B::Mkdir { path, attrs } => B::Mkdir {
                path: self.place(no, path)?,
                attrs: self.attrs(no, attrs),
            },
            B::Rename { old, new } => B::Rename {
                old: self.place(no, old)?,
                new: self.place(no, new)?,
            },
            B::Symlink { target, link } => {
                let link_virt = self.m.place(link)?;
                let (target, rewritten) = self.m.link_target(&link_virt.virt, target)?;
                if rewritten {
                    self.t.links.add(no);
                }
                B::Symlink {
                    target,
                    link: self.place(no, link)?,
                }
            }
            B::Extended { name, ext } => {
                let ext = match ext {
                    ExtRequest::PosixRename { old, new } => ExtRequest::PosixRename {
                        old: self.place(no, old)?,
                        new: self.place(no, new)?,
                    },
                    ExtRequest::Hardlink { old, new } => ExtRequest::Hardlink {
                        old: self.place(no, old)?,
                        new: self.place(no, new)?,
                    },
                    ExtRequest::Statvfs { path } => ExtRequest::Statvfs {
                        path: self.place(no, path)?,
                    },
                    ExtRequest::Lsetstat { path, attrs } => ExtRequest::Lsetstat {
                        path: self.place(no, path)?,
                        attrs: self.attrs(no, attrs),
                    },
                    ExtRequest::ExpandPath { path } => {
                        let p = self.m.expand(path)?;
                        if p.clamped {
                            self.t.clamped.add(no);
                        }
                        ExtRequest::ExpandPath {
                            path: self.m.real(&p.virt),
                        }
                    }
                    ExtRequest::Fstatvfs { handle } => ExtRequest::Fstatvfs {
                        handle: self.handle(handle),
                    },
                    ExtRequest::Fsync { handle } => ExtRequest::Fsync {
                        handle: self.handle(handle),
                    },
                    ExtRequest::CopyData { read_len: 0, .. } => {
                        // "Until the end of the file": replay could not bound
                        // what it writes.
                        self.t.copy_all.add(no);
                        return Ok(None);
                    }
                    ExtRequest::CopyData {
                        read_handle,
                        read_offset,
                        read_len,
                        write_handle,
                        write_offset,
                    } => ExtRequest::CopyData {
                        read_handle: self.handle(read_handle),
                        read_offset: *read_offset,
                        read_len: *read_len,
                        write_handle: self.handle(write_handle),
                        write_offset: *write_offset,
                    },
                    ExtRequest::Other { .. } => {
                        self.t.unknown_ext.add(no);
                        return Ok(None);
                    }
                    e @ (ExtRequest::Limits
                    | ExtRequest::HomeDirectory { .. }
                    | ExtRequest::UsersGroupsById { .. }) => e.clone(),
                };
                B::Extended {
                    name: name.clone(),
                    ext,
                }
            }
        };
        Ok(Some(b))
    }

    /// A live id for recorded request `id`: the same, unless a live request
    /// still waits with it (then the next free one).
    fn live_id(&mut self, id: u32) -> u32 {
        if !self.live.m.ids.contains_key(&id) {
            return id;
        }
        loop {
            self.next_id = self.next_id.wrapping_add(1);
            if !self.live.m.ids.contains_key(&self.next_id) {
                return self.next_id;
            }
        }
    }

    /// Sends `bytes` (then filler to `total`), as the line `no` did.
    fn send(&mut self, no: u64, head: Vec<u8>, total: u64) -> Option<Diff> {
        if !self.live.stdin_open() {
            return None;
        }
        let mut out = Outgoing::from_head(head, total);
        match self.live.pump(Some(&mut out), &|_| true) {
            Ok(()) => {
                self.sent += 1;
                None
            }
            Err(Stop::InClosed) => {
                self.in_closed_at.get_or_insert(no);
                None
            }
            Err(Stop::TimedOut) => Some(Diff::Stalled(no)),
            Err(why) => Some(Diff::Missing(why)),
        }
    }

    fn request(&mut self, no: u64, r: &Request, payload: Option<&super::recorded::Payload>) -> Option<Diff> {
        if is_unknown_extension(&r.body) {
            self.t.unknown_ext.add(no);
            return None;
        }
        let body = match self.translate(no, &r.body) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(why) => {
                if self.t.unsendable.n == 0 {
                    self.t.unsendable_why = why.why().into();
                }
                self.t.unsendable.add(no);
                return None;
            }
        };
        if self.pending.len() >= PENDING_CAP {
            return Some(Diff::Stalled(no));
        }
        let id = self.live_id(r.id);
        let data = payload.map_or(0, |p| p.len);
        let Some(mut head) = encode(id, &body, data) else {
            self.t.unknown_ext.add(no);
            return None;
        };
        let shown_head = head.len();
        if let Some(p) = payload {
            head.extend_from_slice(&p.known);
        }
        let total = shown_head as u64 + data;
        self.live.m.ids.insert(id, (r.seq, body.op()));
        self.pending.insert(r.seq);
        let msg = Msg::Request(Request {
            id,
            seq: r.seq,
            body,
            handle_path: None,
            handle2_path: None,
            extra: 0,
        });
        let e = live_entry(Stream::In, &head, total, msg);
        self.log(e);
        self.send(no, head, total)
    }

    /// Waits for the live reply to request `seq` (the version for `None`).
    fn await_reply(&mut self, seq: Option<u64>) -> Result<LiveReply, Diff> {
        let have = |l: &Live<Replies>| match seq {
            Some(s) => l.m.arrived.contains_key(&s),
            None => l.m.version.is_some(),
        };
        match self.live.pump(None, &have) {
            Ok(()) => {}
            Err(Stop::Diverged) => {
                return Err(Diff::NotAReply(self.live.m.broken.clone().unwrap_or_default()));
            }
            Err(why) => return Err(Diff::Missing(why)),
        }
        let got = match seq {
            Some(s) => self.live.m.take(s),
            None => self.live.m.version.take(),
        };
        got.ok_or(Diff::Missing(Stop::TimedOut))
    }

    fn reply(&mut self, p: &Packet) -> Option<Diff> {
        match &p.msg {
            Msg::Version { version, ext, .. } => {
                let live = match self.await_reply(None) {
                    Ok(l) => l,
                    Err(d) => return Some(d),
                };
                self.log(live_entry(Stream::Out, &live.head, live.len, live.msg.clone()));
                if let Msg::Version {
                    version: lv, ext: le, ..
                } = &live.msg
                    && (lv != version || le != ext)
                {
                    let names = |e: &[crate::protocol::sftp::ExtPair]| {
                        e.iter()
                            .map(|x| format!("{}={}", escape(&x.name), escape(&x.data)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    return Some(Diff::Reply(format!(
                        "VERSION {lv} with {}, recorded VERSION {version} with {}",
                        names(le),
                        names(ext)
                    )));
                }
                self.matched += 1;
                None
            }
            Msg::Reply(r) => {
                let Some(to) = &r.to else {
                    return Some(Diff::NotAReply(format!(
                        "the recorded server answered id {} that no request waited with; a real sftp-server answers only requests",
                        r.id
                    )));
                };
                if !self.pending.remove(&to.seq) {
                    // Its request was not sent (see the notes).
                    self.t.not_compared.add(p.no);
                    return None;
                }
                let live = match self.await_reply(Some(to.seq)) {
                    Ok(l) => l,
                    Err(d) => return Some(d),
                };
                let Msg::Reply(lr) = &live.msg else {
                    return Some(Diff::NotAReply(String::new()));
                };
                let mut shown = lr.clone();
                shown.to = Some(to.clone());
                self.log(live_entry(Stream::Out, &live.head, live.len, Msg::Reply(shown)));
                if let Some(what) = reply_diff(
                    self.m,
                    to.op,
                    &r.body,
                    p.payload.as_ref(),
                    &lr.body,
                    live.data.as_deref(),
                ) {
                    return Some(Diff::Reply(what));
                }
                self.after_match(to, r, lr);
                self.matched += 1;
                None
            }
            other => Some(Diff::NotAReply(format!(
                "the recording holds {} where a reply was due; a real sftp-server sends only replies",
                not_a_reply(other)
            ))),
        }
    }

    /// What a matched reply changes: a handle to map, one to forget.
    fn after_match(&mut self, to: &RequestRef, rec: &Reply, live: &Reply) {
        use crate::protocol::sftp::ReplyBody as R;
        match (&rec.body, &live.body) {
            (R::Handle { handle: rh }, R::Handle { handle: lh })
                if self.handles.len() < HANDLES_CAP || self.handles.contains_key(rh) =>
            {
                self.handles.insert(rh.clone(), lh.clone());
            }
            (R::Status { code: 0, .. }, _) if to.op == Op::Close => {
                if let Some(h) = &to.handle {
                    self.handles.remove(h);
                }
            }
            _ => {}
        }
    }
}

fn not_a_reply(m: &Msg) -> String {
    match m {
        Msg::Raw { declared, seen } => format!("{seen} B that are not SFTP (a length of {declared})"),
        Msg::Truncated { ty, .. } => format!(
            "a packet cut short ({})",
            ty.and_then(ty::name).unwrap_or("type unknown")
        ),
        Msg::Malformed { ty, .. } => format!(
            "a packet too short for its fields ({})",
            ty.and_then(ty::name).unwrap_or("type unknown")
        ),
        Msg::Unknown { ty, .. } => format!("a packet of type {ty}, which is no reply"),
        Msg::Undecoded { ty, len, .. } => format!("a {len} B packet of type {ty}, too long to read"),
        _ => "a packet".into(),
    }
}

/// How a replay went, for the report.
struct Outcome {
    diff: Option<Diff>,
    window: Window,
    nth: Option<usize>,
}

pub fn run(
    t: &Transcript,
    cmd: &Command,
    timeout: Duration,
    plan: &mut Plan,
    head: &Head,
    m: &Mapper,
) -> Result<(String, bool)> {
    let live = Live::spawn(cmd, timeout, Replies::default())?;
    let mut s = State {
        m,
        live,
        handles: HashMap::new(),
        pending: HashSet::new(),
        next_id: 0x4000_0000,
        t: Tallies::default(),
        sent: 0,
        matched: 0,
        log: Default::default(),
        in_closed_at: None,
    };
    let mut ctx = Context::default();
    let mut rec = Recorded::new();
    let mut packets = Vec::new();
    let mut lines = t.lines()?;
    let mut o = Outcome {
        diff: None,
        window: Window::default(),
        nth: None,
    };
    let (mut requests, mut replies, mut last) = (0usize, 0usize, 0u64);
    let mut closed_in = false;
    let mut ended = false;
    while !ended {
        let line = Transcript::next(&mut lines)?;
        match &line {
            Some(l) => {
                last = l.no;
                ctx.line(l.no, &l.parsed.event.entry);
                if let Some(w) = &ctx.frozen {
                    if w.full() {
                        break;
                    }
                    continue;
                }
                match &l.parsed.event.entry {
                    Entry::Bytes(b) => rec.line(l.no, b, &mut packets),
                    Entry::Closed(Stream::In) if !closed_in => {
                        closed_in = true;
                        s.live.close_stdin();
                    }
                    _ => {}
                }
            }
            None => {
                rec.finish(last, &mut packets);
                ended = true;
            }
        }
        for p in packets.drain(..) {
            if o.diff.is_some() {
                break;
            }
            let d = match (&p.msg, p.dir) {
                (Msg::Init { version, ext, .. }, crate::protocol::Dir::In) => {
                    requests += 1;
                    if !ext.is_empty() {
                        s.t.init_ext.add(p.no);
                    }
                    s.log(live_entry(
                        Stream::In,
                        &init(*version),
                        9,
                        Msg::Init {
                            version: *version,
                            ext: Vec::new(),
                            extra: 0,
                        },
                    ));
                    s.send(p.no, init(*version), 9)
                }
                (Msg::Request(r), crate::protocol::Dir::In) => {
                    requests += 1;
                    s.request(p.no, r, p.payload.as_ref())
                }
                (_, crate::protocol::Dir::In) => {
                    s.t.not_packets.add(p.no);
                    None
                }
                (_, crate::protocol::Dir::Out) => {
                    replies += 1;
                    let d = s.reply(&p);
                    if d.is_some() {
                        o.nth = Some(replies);
                    }
                    d
                }
            };
            if let Some(d) = d {
                o.diff = Some(d);
                ctx.freeze();
            }
        }
    }
    if o.diff.is_none() {
        s.live.close_stdin();
        let done = |l: &Live<Replies>| !l.stdout_open();
        match s.live.pump(None, &done) {
            Ok(()) | Err(Stop::OutClosed) => {}
            Err(Stop::Diverged) => {
                o.diff = Some(Diff::NotAReply(s.live.m.broken.clone().unwrap_or_default()))
            }
            Err(_) => o.diff = Some(Diff::NoEnd),
        }
        if o.diff.is_none() {
            let extra =
                s.live.m.arrived.len() + s.live.m.stray.len() + usize::from(s.live.m.version.is_some());
            if extra > 0 {
                let first = (s.live.m.version.iter())
                    .chain(s.live.m.arrived.values())
                    .chain(&s.live.m.stray)
                    .next()
                    .cloned();
                if let Some(r) = first {
                    s.log(live_entry(Stream::Out, &r.head, r.len, r.msg));
                }
                o.diff = Some(Diff::Extra(format!(
                    "the real sftp-server sent {extra} repl{} the recording does not have (a request the recorded server never answered)",
                    if extra == 1 { "y" } else { "ies" }
                )));
            }
        }
        s.live.finish(s.live.timeout);
        if o.diff.is_none()
            && let (Some((_, recorded)), Some(real)) =
                (plan.exit, s.live.status.map(crate::tap::child::status_code))
            && recorded != real
        {
            o.diff = Some(Diff::Exit(recorded));
        }
        o.window = match o.diff {
            Some(Diff::Exit(_)) => ctx.exit_window(),
            _ => ctx.bytes_window(),
        };
    } else {
        s.live.finish(s.live.timeout.min(Duration::from_millis(500)));
        o.window = ctx.frozen.take().unwrap_or_default();
    }
    plan.notes.extend(tally_notes(&s.t));
    if s.in_closed_at.is_some() {
        plan.notes.push(format!(
            "the real sftp-server stopped reading its stdin at line {}",
            s.in_closed_at.unwrap_or(0)
        ));
    }
    let text = render(head, plan, &s, &o, requests, replies);
    Ok((text, o.diff.is_some()))
}

fn tally_notes(t: &Tallies) -> Vec<String> {
    let mut v = Vec::new();
    let mut note = |x: &Tally, what: &str| {
        if x.n > 0 {
            v.push(format!(
                "{} request(s) {what} (the first at line {})",
                x.n, x.first
            ));
        }
    };
    note(
        &t.clamped,
        "climbed above / with `..`: resolved at /, which is the target",
    );
    note(&t.unsendable, &format!("not sent: a path {}", t.unsendable_why));
    note(
        &t.links,
        "made a symlink pointing outside its directory: pointed at the same place inside the target",
    );
    note(&t.owners, "set an owner or group: not set");
    note(&t.special, "set set-id or sticky bits: not set");
    note(
        &t.unknown_ext,
        "named an extension replay does not know: not sent",
    );
    note(
        &t.copy_all,
        "asked copy-data to copy until the end of a file: not sent",
    );
    note(
        &t.not_packets,
        "were not SFTP requests replay can read (cut, too short, unknown type): not sent",
    );
    note(
        &t.not_compared,
        "of the recorded server were replies to requests not sent: not compared",
    );
    note(&t.init_ext, "INIT carried extensions: sent without them");
    v
}

fn render(h: &Head, plan: &Plan, s: &State, o: &Outcome, requests: usize, replies: usize) -> String {
    let mut r = report::head(h, plan);
    let status = report::status_text(s.live.status, s.live.killed);
    let recorded_exit = plan
        .exit
        .map(|(_, c)| format!("recorded {c}"))
        .unwrap_or_else(|| "none recorded".into());
    let summary = format!(
        "{} of {requests} requests sent, {} of {replies} replies matched; {status} ({recorded_exit})",
        s.sent, s.matched
    );
    let Some(diff) = &o.diff else {
        let _ = writeln!(r, "{} answered as recorded", h.who);
        let _ = writeln!(r, "summary: {summary}");
        return r;
    };
    let timeout = s.live.timeout.as_secs_f64();
    let who = &h.who;
    let what = match diff {
        Diff::Reply(d) => format!("{who} answered {d}"),
        Diff::Missing(Stop::OutClosed) => format!("{who} closed its stdout instead of this reply"),
        Diff::Missing(_) => format!("{who} sent nothing for {timeout} s where this reply was due"),
        Diff::Stalled(no) => format!("{who} did not read the request of line {no} within {timeout} s"),
        Diff::NotAReply(d) => d.clone(),
        Diff::Extra(d) => d.clone(),
        Diff::NoEnd => {
            format!("{who} did not close its stdout within {timeout} s after the last recorded message")
        }
        Diff::Exit(rec) => format!("the exit status differs: {status}, recorded {rec}"),
    };
    let at = o.window.at;
    match (diff, o.nth) {
        (Diff::Reply(_) | Diff::Missing(_) | Diff::NotAReply(_), Some(n)) => {
            let _ = writeln!(
                r,
                "DIFFERENCE at line {at} of {} (the {} reply): {}",
                h.name,
                report::ordinal(n),
                crate::escape::escape_text(&what)
            );
        }
        _ => {
            let _ = writeln!(
                r,
                "DIFFERENCE at line {at} of {}: {}",
                h.name,
                crate::escape::escape_text(&what)
            );
        }
    }
    let width = report::recorded(&mut r, &o.window);
    let _ = writeln!(r, "replayed:");
    let pad = " ".repeat(width);
    let n = s.log.len();
    for (k, e) in s.log.iter().enumerate() {
        let mark = if k + 1 == n && matches!(diff, Diff::Reply(_) | Diff::Extra(_)) {
            ">"
        } else {
            " "
        };
        let _ = writeln!(r, "  {mark} {pad}  {}", report::render_entry(e));
    }
    for line in report::live_tail(&s.live.err_buf, s.live.out_eof, s.live.killed, s.live.status) {
        let _ = writeln!(r, "    {pad}  {}", report::render_entry(&line));
    }
    let _ = writeln!(r, "summary: {summary}");
    r
}
