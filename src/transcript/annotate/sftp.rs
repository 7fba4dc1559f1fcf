//! How SFTP packets and findings appear in a transcript: one annotation per
//! packet (`OPEN id=3 "dst/a" WRITE|CREAT {perm 0644}`, `HANDLE id=3
//! h:00000000 = "dst/a"`), one sentence per finding, and the `msg` object of
//! JSON Lines. docs/transcript-format.md lists the vocabulary.

use std::fmt::Write as _;

use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use crate::escape::escape;
use crate::protocol::sftp::violation::{Bound, Detail, Expected, Limit, Unexpected};
use crate::protocol::sftp::{
    Attrs, ExtPair, ExtReply, ExtRequest, Msg, Op, Reply, ReplyBody, ReqBody, Request, RequestRef, Violation,
    pflags, status, ty,
};

/// Names of a NAME reply shown in its annotation; the rest are counted.
const NAMES_SHOWN: usize = 5;

fn q(b: &[u8]) -> String {
    format!("\"{}\"", escape(b))
}

/// A handle as the annotation writes it: `h:` and its bytes in hex.
fn handle(h: &[u8]) -> String {
    let mut s = String::from("h:");
    for b in h.iter().take(64) {
        let _ = write!(s, "{b:02x}");
    }
    if h.len() > 64 {
        s.push_str("...");
    }
    s
}

/// A handle with the path it was opened with, when known.
fn handle_path(h: &[u8], path: Option<&[u8]>) -> String {
    match path {
        Some(p) => format!("{} = {}", handle(h), q(p)),
        None => handle(h),
    }
}

pub fn status_name(code: u32) -> String {
    match code {
        status::OK => "OK".into(),
        status::EOF => "EOF".into(),
        status::NO_SUCH_FILE => "NO_SUCH_FILE".into(),
        status::PERMISSION_DENIED => "PERMISSION_DENIED".into(),
        status::FAILURE => "FAILURE".into(),
        status::BAD_MESSAGE => "BAD_MESSAGE".into(),
        status::NO_CONNECTION => "NO_CONNECTION".into(),
        status::CONNECTION_LOST => "CONNECTION_LOST".into(),
        status::OP_UNSUPPORTED => "OP_UNSUPPORTED".into(),
        c => format!("status {c}"),
    }
}

fn flags(f: u32) -> String {
    let names = [
        (pflags::READ, "READ"),
        (pflags::WRITE, "WRITE"),
        (pflags::APPEND, "APPEND"),
        (pflags::CREAT, "CREAT"),
        (pflags::TRUNC, "TRUNC"),
        (pflags::EXCL, "EXCL"),
    ];
    let mut parts: Vec<String> = names
        .iter()
        .filter(|(bit, _)| f & bit != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let rest = f & !names.iter().fold(0, |a, (b, _)| a | b);
    if rest != 0 {
        parts.push(format!("0x{rest:x}"));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}

fn attrs(a: &Attrs) -> String {
    let mut parts = Vec::new();
    if let Some(s) = a.size {
        parts.push(format!("size {s}"));
    }
    if let Some((u, g)) = a.uid_gid {
        parts.push(format!("uid {u} gid {g}"));
    }
    if let Some(p) = a.permissions {
        parts.push(format!("perm {:04o}", p & 0o7777));
    }
    if let Some((at, mt)) = a.atime_mtime {
        parts.push(format!("atime {at} mtime {mt}"));
    }
    for e in &a.extended {
        parts.push(format!("{}={}", q(&e.name), q(&e.data)));
    }
    let unknown = a.unknown_flags();
    if unknown != 0 {
        parts.push(format!("flags 0x{:x}", a.flags));
    }
    format!("{{{}}}", parts.join(", "))
}

fn exts(e: &[ExtPair]) -> String {
    if e.is_empty() {
        return String::new();
    }
    let list: Vec<String> = e
        .iter()
        .map(|p| format!("{}={}", escape(&p.name), escape(&p.data)))
        .collect();
    format!(
        ", {} extension{}: {}",
        e.len(),
        if e.len() == 1 { "" } else { "s" },
        list.join(" ")
    )
}

fn path_of(h: &[u8], known: &Option<Vec<u8>>) -> String {
    handle_path(h, known.as_deref())
}

fn request(r: &Request) -> String {
    let id = r.id;
    let hp = &r.handle_path;
    let body = match &r.body {
        ReqBody::Open {
            path,
            pflags,
            attrs: a,
        } => format!("{} {} {}", q(path), flags(*pflags), attrs(a)),
        ReqBody::Close { handle } => path_of(handle, hp),
        ReqBody::Read { handle, offset, len } => format!("{} off {offset} len {len}", path_of(handle, hp)),
        ReqBody::Write { handle, offset, len } => format!("{} off {offset} len {len}", path_of(handle, hp)),
        ReqBody::Lstat { path }
        | ReqBody::Opendir { path }
        | ReqBody::Remove { path }
        | ReqBody::Rmdir { path }
        | ReqBody::Realpath { path }
        | ReqBody::Stat { path }
        | ReqBody::Readlink { path } => q(path),
        ReqBody::Fstat { handle } | ReqBody::Readdir { handle } => path_of(handle, hp),
        ReqBody::Setstat { path, attrs: a } | ReqBody::Mkdir { path, attrs: a } => {
            format!("{} {}", q(path), attrs(a))
        }
        ReqBody::Fsetstat { handle, attrs: a } => format!("{} {}", path_of(handle, hp), attrs(a)),
        ReqBody::Rename { old, new } => format!("{} -> {}", q(old), q(new)),
        ReqBody::Symlink { target, link } => format!("{} -> {}", q(link), q(target)),
        ReqBody::Extended { name, ext } => {
            let args = match ext {
                ExtRequest::PosixRename { old, new } | ExtRequest::Hardlink { old, new } => {
                    format!(" {} -> {}", q(old), q(new))
                }
                ExtRequest::Statvfs { path } | ExtRequest::ExpandPath { path } => format!(" {}", q(path)),
                ExtRequest::Fstatvfs { handle } | ExtRequest::Fsync { handle } => {
                    format!(" {}", path_of(handle, hp))
                }
                ExtRequest::Lsetstat { path, attrs: a } => format!(" {} {}", q(path), attrs(a)),
                ExtRequest::Limits => String::new(),
                ExtRequest::CopyData {
                    read_handle,
                    read_offset,
                    read_len,
                    write_handle,
                    write_offset,
                } => format!(
                    " {} off {read_offset} len {read_len} -> {} off {write_offset}",
                    path_of(read_handle, hp),
                    handle_path(write_handle, r.handle2_path.as_deref())
                ),
                ExtRequest::HomeDirectory { user } => format!(" user {}", q(user)),
                ExtRequest::UsersGroupsById { uids, gids } => format!(" uids {uids:?} gids {gids:?}"),
                ExtRequest::Other { data } => format!(", {} B of data", data.len()),
            };
            return format!("EXTENDED id={id} {}{args}", escape(name)) + &extra(r.extra);
        }
    };
    format!("{} id={id} {body}{}", r.body.op().as_str(), extra(r.extra))
}

fn extra(n: u32) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(", {n} B past its fields")
    }
}

/// What a reply answers, for its annotation: `for OPEN "dst/a"`.
fn for_req(to: &Option<RequestRef>) -> String {
    let Some(r) = to else {
        return ", answers no request".into();
    };
    let mut s = format!(" for {}", op_name(r));
    if let Some(p) = &r.path {
        let _ = write!(s, " {}", q(p));
    } else if let Some(h) = &r.handle {
        let _ = write!(s, " {}", handle(h));
    }
    s
}

fn op_name(r: &RequestRef) -> String {
    match (&r.op, &r.ext_name) {
        (Op::Extended(_), Some(n)) => escape(n),
        (op, _) => op.as_str().to_string(),
    }
}

fn reply(r: &Reply) -> String {
    let id = r.id;
    let body = match &r.body {
        ReplyBody::Status { code, message, .. } => {
            let msg = message
                .as_deref()
                .filter(|m| !m.is_empty())
                .map(|m| format!(" {}", q(m)));
            format!(
                "STATUS id={id} {}{}{}",
                status_name(*code),
                msg.unwrap_or_default(),
                for_req(&r.to)
            )
        }
        ReplyBody::Handle { handle: h } => {
            let path = r.to.as_ref().and_then(|t| t.path.clone());
            format!("HANDLE id={id} {}", handle_path(h, path.as_deref()))
        }
        ReplyBody::Data { len } => {
            let at =
                r.to.as_ref()
                    .and_then(|t| t.offset)
                    .map(|o| format!(" off {o}"))
                    .unwrap_or_default();
            format!("DATA id={id} len {len}{}{at}", for_req(&r.to))
        }
        ReplyBody::Name { names } => {
            let shown: Vec<String> = names.iter().take(NAMES_SHOWN).map(|n| q(&n.filename)).collect();
            let more = if names.len() > NAMES_SHOWN { ", ..." } else { "" };
            format!(
                "NAME id={id} {} name{}: {}{more}{}",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                shown.join(", "),
                for_req(&r.to)
            )
        }
        ReplyBody::Attrs { attrs: a } => format!("ATTRS id={id} {}{}", attrs(a), for_req(&r.to)),
        ReplyBody::Extended(e) => {
            let what = match e {
                ExtReply::Limits(l) => format!(
                    " max-packet {} max-read {} max-write {} max-open-handles {}",
                    l.max_packet, l.max_read, l.max_write, l.max_open_handles
                ),
                ExtReply::Statvfs(v) => format!(
                    " bsize {} blocks {} bfree {} bavail {} files {} ffree {} namemax {}",
                    v.bsize, v.blocks, v.bfree, v.bavail, v.files, v.ffree, v.namemax
                ),
                ExtReply::UsersGroups { users, groups } => {
                    let u: Vec<String> = users.iter().map(|n| q(n)).collect();
                    let g: Vec<String> = groups.iter().map(|n| q(n)).collect();
                    format!(" users [{}] groups [{}]", u.join(", "), g.join(", "))
                }
                ExtReply::Other { data } => format!(", {} B", data.len()),
            };
            format!("EXTENDED_REPLY id={id}{what}{}", for_req(&r.to))
        }
    };
    body + &extra(r.extra)
}

fn type_name(t: u8) -> String {
    ty::name(t)
        .map(str::to_string)
        .unwrap_or_else(|| format!("type {t}"))
}

fn opt_id(id: Option<u32>) -> String {
    id.map(|i| format!(" id={i}")).unwrap_or_default()
}

/// A packet's annotation, without the leading `# `.
pub fn msg_note(m: &Msg) -> String {
    match m {
        Msg::Init {
            version,
            ext,
            extra: x,
        } => format!("INIT version {version}{}{}", exts(ext), extra(*x)),
        Msg::Version {
            version,
            ext,
            extra: x,
            ..
        } => {
            format!("VERSION {version}{}{}", exts(ext), extra(*x))
        }
        Msg::Request(r) => request(r),
        Msg::Reply(r) => reply(r),
        Msg::Unknown { ty: t, id, body } => {
            format!("unknown packet type {t}{}, {} B", opt_id(*id), body.len())
        }
        Msg::Malformed { ty: t, id, .. } => format!(
            "malformed {}{}",
            t.map(type_name).unwrap_or_else(|| "packet".into()),
            opt_id(*id)
        ),
        Msg::Undecoded { ty: t, id, len, .. } => {
            format!("{}{}, {len} B, not decoded", type_name(*t), opt_id(*id))
        }
        Msg::Raw { declared, seen } => format!("raw chunk, length field {declared}, {seen} B"),
        Msg::Truncated {
            ty: t,
            id,
            declared,
            seen,
        } => format!(
            "truncated {}{}, {seen} of {} B",
            t.map(type_name).unwrap_or_else(|| "packet".into()),
            opt_id(*id),
            declared.map_or_else(|| "?".to_string(), |d| (u64::from(d) + 4).to_string())
        ),
    }
}

// ---- findings ----------------------------------------------------------------

fn req_desc(r: &RequestRef) -> String {
    let mut s = op_name(r);
    if let Some(id) = r.id {
        let _ = write!(s, " id={id}");
    }
    if let Some(p) = &r.path {
        let _ = write!(s, " {}", q(p));
    } else if let Some(h) = &r.handle {
        let _ = write!(s, " {}", handle(h));
    }
    s
}

fn quote_text(t: &[u8]) -> String {
    q(&t[..t.len().min(200)]) + if t.len() > 200 { "..." } else { "" }
}

/// A finding's sentence, without its name.
pub fn violation_text(v: &Violation) -> String {
    match &v.detail {
        Detail::NotSftp {
            expected, text, len, ..
        } => {
            let who = match expected {
                Expected::Init => "the client's first bytes are not an INIT packet",
                Expected::Version => "the server's first bytes are not a VERSION packet",
            };
            format!(
                "{who} (shell start-up output?): {}; read as a length they make {len} (\"Received message too long {len}\"); the rest of that direction is not decoded",
                quote_text(text)
            )
        }
        Detail::TooLong { len, limit, which } => {
            let what = match which {
                Limit::OpenSsh => "OpenSSH's 256 KiB limit (its peers drop the connection)",
                Limit::MaxPacket => "the max-packet-length the server announced",
                Limit::MaxWrite => "the max-write-length the server announced",
            };
            format!("a packet of {len} B, over {what} ({limit} B)")
        }
        Detail::DecoderLimit { bound, cap } => {
            let what = match bound {
                Bound::Requests => "outstanding requests",
                Bound::Handles => "open handles",
                Bound::Header => "bytes of a packet's fields",
            };
            format!(
                "more than {cap} {what}: scptrace's decoder stops tracking past this bound (a tracing limit, not the peers' fault)"
            )
        }
        Detail::ShortPacket { ty: t, id, len } => format!(
            "a {}{} packet of {len} B too short for its fields",
            t.map(type_name).unwrap_or_else(|| "typeless".into()),
            opt_id(*id)
        ),
        Detail::LongPacket { ty: t, id, extra: x } => {
            format!(
                "a {}{} packet with {x} B past its fields",
                type_name(*t),
                opt_id(*id)
            )
        }
        Detail::UnexpectedType { ty: t, why } => {
            let w = match why {
                Unexpected::Unknown => "version 3 defines no such type",
                Unexpected::WrongDirection => "it is sent in the wrong direction",
                Unexpected::Repeated => "the session has started already",
            };
            format!("a packet of type {} where {w}", type_name(*t))
        }
        Detail::Truncated {
            ty: t,
            id,
            declared,
            seen,
            unanswered,
            oldest,
        } => format!(
            "the stream ended inside a {}{} packet, after {seen} of {} B{}",
            t.map(type_name).unwrap_or_else(|| "".into()),
            opt_id(*id),
            declared.map_or_else(|| "?".to_string(), |d| (u64::from(d) + 4).to_string()),
            match oldest {
                Some(first) => format!(
                    ", leaving {unanswered} request{} unanswered, the oldest: {}",
                    if *unanswered == 1 { "" } else { "s" },
                    req_desc(first)
                ),
                None => String::new(),
            }
        ),
        Detail::UnknownId { id, ty: t } => {
            format!(
                "a {} reply with id {id}, which no outstanding request has",
                type_name(*t)
            )
        }
        Detail::DuplicateId { id, first } => {
            format!(
                "a request with id {id}, already used by the outstanding {}",
                req_desc(first)
            )
        }
        Detail::WrongReply { ty: t, req } => {
            format!(
                "{} answered with {}, which it cannot be",
                req_desc(req),
                type_name(*t)
            )
        }
        Detail::Unsupported { req } => {
            format!("the server does not support {} (OP_UNSUPPORTED)", req_desc(req))
        }
        Detail::StaleTail {
            req,
            path,
            size,
            code,
        } => format!(
            "{} setting the size to {size} failed ({}) on {} opened for WRITE without TRUNC: the file may keep its old bytes past {size} (OpenSSH's scp relies on this to truncate)",
            req_desc(req),
            status_name(*code),
            path.as_deref().map(q).unwrap_or_else(|| "a file".into())
        ),
        Detail::StatusError { req, code, message } => {
            let m = if message.is_empty() {
                String::new()
            } else {
                format!(": {}", quote_text(message))
            };
            format!("{} failed with {}{m}", req_desc(req), status_name(*code))
        }
        Detail::ClosedHandle { handle: h, path, op } => format!(
            "{} used {} after its CLOSE",
            op.as_str(),
            handle_path(h, path.as_deref())
        ),
        Detail::UnknownHandle { handle: h, op } => {
            format!(
                "{} used {}, which the server never issued",
                op.as_str(),
                handle(h)
            )
        }
        Detail::Outstanding { count, first } => format!(
            "the session ended with {count} request{} unanswered, the oldest: {}",
            if *count == 1 { "" } else { "s" },
            req_desc(first)
        ),
        Detail::NoReply {
            count,
            first: Some(first),
        } => format!(
            "the server sent nothing at all ({count} request{} unanswered, the first: {}): no subsystem, or the transport exited?",
            if *count == 1 { "" } else { "s" },
            req_desc(first)
        ),
        Detail::NoReply { first: None, .. } => {
            "no byte either way: the server sent nothing, and nothing the client sent reached it (not even INIT): no subsystem, or the transport exited before reading?".to_string()
        }
    }
}

// ---- JSON Lines --------------------------------------------------------------

/// The packet's `msg` object: its type in lower case, its id, and its fields
/// (byte strings escaped as transcript bytes).
pub fn serialize<S: Serializer>(m: &Msg, s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(None)?;
    let e = |b: &[u8]| escape(b);
    match m {
        Msg::Init { version, ext, .. } | Msg::Version { version, ext, .. } => {
            let t = if matches!(m, Msg::Init { .. }) {
                "init"
            } else {
                "version"
            };
            map.serialize_entry("type", t)?;
            map.serialize_entry("version", version)?;
            map.serialize_entry("extensions", &ExtsJson(ext))?;
        }
        Msg::Request(r) => {
            let op = r.body.op();
            map.serialize_entry("type", &op.as_str().to_ascii_lowercase())?;
            map.serialize_entry("id", &r.id)?;
            if let ReqBody::Extended { name, .. } = &r.body {
                map.serialize_entry("name", &e(name))?;
            }
            let (p1, p2) = r.body.paths();
            if let Some(p) = p1 {
                map.serialize_entry("path", &e(p))?;
            }
            if let Some(p) = p2 {
                map.serialize_entry("path2", &e(p))?;
            }
            let (h1, h2) = r.body.handles();
            if let Some(h) = h1 {
                map.serialize_entry("handle", &e(h))?;
            }
            if let Some(h) = h2 {
                map.serialize_entry("handle2", &e(h))?;
            }
            if let Some(p) = &r.handle_path {
                map.serialize_entry("handle_path", &e(p))?;
            }
            match &r.body {
                ReqBody::Open { pflags: f, .. } => map.serialize_entry("pflags", f)?,
                ReqBody::Read { offset, len, .. } | ReqBody::Write { offset, len, .. } => {
                    map.serialize_entry("offset", offset)?;
                    map.serialize_entry("len", len)?;
                }
                _ => {}
            }
            if let Some(a) = r.body.attrs() {
                map.serialize_entry("attrs", &AttrsJson(a))?;
            }
        }
        Msg::Reply(r) => {
            let t = ty::name(r.body.type_byte())
                .unwrap_or("reply")
                .to_ascii_lowercase();
            map.serialize_entry("type", &t)?;
            map.serialize_entry("id", &r.id)?;
            match &r.body {
                ReplyBody::Status { code, message, .. } => {
                    map.serialize_entry("code", code)?;
                    map.serialize_entry("status", &status_name(*code))?;
                    map.serialize_entry("message", &message.as_deref().map(e))?;
                }
                ReplyBody::Handle { handle: h } => map.serialize_entry("handle", &e(h))?,
                ReplyBody::Data { len } => map.serialize_entry("len", len)?,
                ReplyBody::Name { names } => {
                    let list: Vec<String> = names.iter().map(|n| e(&n.filename)).collect();
                    map.serialize_entry("names", &list)?;
                }
                ReplyBody::Attrs { attrs: a } => map.serialize_entry("attrs", &AttrsJson(a))?,
                ReplyBody::Extended(_) => {}
            }
            if let Some(to) = &r.to {
                map.serialize_entry("request", &op_name(to).to_ascii_lowercase())?;
                map.serialize_entry("request_path", &to.path.as_deref().map(e))?;
            }
        }
        Msg::Unknown { ty: t, id, .. } => {
            map.serialize_entry("type", "unknown")?;
            map.serialize_entry("packet_type", t)?;
            map.serialize_entry("id", id)?;
        }
        Msg::Malformed { ty: t, id, .. } => {
            map.serialize_entry("type", "malformed")?;
            map.serialize_entry("packet_type", t)?;
            map.serialize_entry("id", id)?;
        }
        Msg::Undecoded { ty: t, id, len, .. } => {
            map.serialize_entry("type", "undecoded")?;
            map.serialize_entry("packet_type", t)?;
            map.serialize_entry("id", id)?;
            map.serialize_entry("len", len)?;
        }
        Msg::Raw { declared, seen } => {
            map.serialize_entry("type", "raw")?;
            map.serialize_entry("declared", declared)?;
            map.serialize_entry("seen", seen)?;
        }
        Msg::Truncated {
            ty: t,
            id,
            declared,
            seen,
        } => {
            map.serialize_entry("type", "truncated")?;
            map.serialize_entry("packet_type", t)?;
            map.serialize_entry("id", id)?;
            map.serialize_entry("declared", declared)?;
            map.serialize_entry("seen", seen)?;
        }
    }
    map.end()
}

struct ExtsJson<'a>(&'a [ExtPair]);

impl serde::Serialize for ExtsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for p in self.0 {
            seq.serialize_element(&[escape(&p.name), escape(&p.data)])?;
        }
        seq.end()
    }
}

struct AttrsJson<'a>(&'a Attrs);

impl serde::Serialize for AttrsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("flags", &a.flags)?;
        if let Some(v) = a.size {
            m.serialize_entry("size", &v)?;
        }
        if let Some((u, g)) = a.uid_gid {
            m.serialize_entry("uid", &u)?;
            m.serialize_entry("gid", &g)?;
        }
        if let Some(p) = a.permissions {
            m.serialize_entry("permissions", &format!("{:o}", p))?;
        }
        if let Some((at, mt)) = a.atime_mtime {
            m.serialize_entry("atime", &at)?;
            m.serialize_entry("mtime", &mt)?;
        }
        m.end()
    }
}

/// Whether an annotation is one this module writes (for reading transcripts
/// back: such a line is a packet, framed per message).
pub fn looks_like_packet_note(note: &str) -> bool {
    let head = note.split(' ').next().unwrap_or("");
    matches!(
        head,
        "INIT"
            | "VERSION"
            | "OPEN"
            | "CLOSE"
            | "READ"
            | "WRITE"
            | "LSTAT"
            | "FSTAT"
            | "SETSTAT"
            | "FSETSTAT"
            | "OPENDIR"
            | "READDIR"
            | "REMOVE"
            | "MKDIR"
            | "RMDIR"
            | "REALPATH"
            | "STAT"
            | "RENAME"
            | "READLINK"
            | "SYMLINK"
            | "EXTENDED"
            | "STATUS"
            | "HANDLE"
            | "DATA"
            | "NAME"
            | "ATTRS"
            | "EXTENDED_REPLY"
            | "unknown"
            | "malformed"
            | "raw"
            | "truncated"
    )
}
