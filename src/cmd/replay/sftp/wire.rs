//! The live side's bytes: requests built again from their decoded fields
//! (with paths placed inside the target and handles mapped, never a
//! recorded packet passed on as it was), and the live sftp-server's replies
//! read back, framed and decoded.

use std::collections::HashMap;

use crate::protocol::sftp::msg::{parse_hello, parse_reply};
use crate::protocol::sftp::wire::attr;
use crate::protocol::sftp::{Attrs, ExtPair, ExtRequest, MAX_PACKET, Msg, Op, Reply, ReplyBody, ReqBody, ty};

use super::super::engine::Sink;

/// Builds one packet: the length field is filled in by [`Packet::finish`].
pub struct Packet {
    pub buf: Vec<u8>,
}

impl Packet {
    pub fn new(t: u8) -> Packet {
        Packet {
            buf: vec![0, 0, 0, 0, t],
        }
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn string(&mut self, s: &[u8]) -> &mut Self {
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.buf.extend_from_slice(s);
        self
    }
    /// ATTRS, with only the fields replay passes on (see [`sanitize`]).
    pub fn attrs(&mut self, a: &Attrs) -> &mut Self {
        let mut flags = 0;
        if a.size.is_some() {
            flags |= attr::SIZE;
        }
        if a.uid_gid.is_some() {
            flags |= attr::UIDGID;
        }
        if a.permissions.is_some() {
            flags |= attr::PERMISSIONS;
        }
        if a.atime_mtime.is_some() {
            flags |= attr::ACMODTIME;
        }
        if !a.extended.is_empty() {
            flags |= attr::EXTENDED;
        }
        self.u32(flags);
        if let Some(s) = a.size {
            self.u64(s);
        }
        if let Some((u, g)) = a.uid_gid {
            self.u32(u).u32(g);
        }
        if let Some(p) = a.permissions {
            self.u32(p);
        }
        if let Some((at, mt)) = a.atime_mtime {
            self.u32(at).u32(mt);
        }
        if !a.extended.is_empty() {
            self.u32(a.extended.len() as u32);
            for ExtPair { name, data } in &a.extended {
                self.string(name).string(data);
            }
        }
        self
    }
    /// The packet, its length field set to hold `payload` more bytes after it.
    pub fn finish(mut self, payload: u64) -> Vec<u8> {
        let len = (self.buf.len() as u64 - 4 + payload).min(u64::from(u32::MAX)) as u32;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf
    }
}

/// A request packet from its fields (WRITE: without its data, which
/// follows: `payload` bytes). `None` for what replay never sends (an
/// extension it does not know: its fields could name anything).
pub fn encode(id: u32, body: &ReqBody, payload: u64) -> Option<Vec<u8>> {
    use ReqBody as B;
    let op = body.op();
    let mut p = Packet::new(op.type_byte());
    p.u32(id);
    match body {
        B::Open { path, pflags, attrs } => {
            p.string(path).u32(*pflags).attrs(attrs);
        }
        B::Close { handle } | B::Fstat { handle } | B::Readdir { handle } => {
            p.string(handle);
        }
        B::Read { handle, offset, len } => {
            p.string(handle).u64(*offset).u32(*len);
        }
        B::Write { handle, offset, len } => {
            p.string(handle).u64(*offset).u32(*len);
        }
        B::Lstat { path }
        | B::Opendir { path }
        | B::Remove { path }
        | B::Rmdir { path }
        | B::Realpath { path }
        | B::Stat { path }
        | B::Readlink { path } => {
            p.string(path);
        }
        B::Setstat { path, attrs } | B::Mkdir { path, attrs } => {
            p.string(path).attrs(attrs);
        }
        B::Fsetstat { handle, attrs } => {
            p.string(handle).attrs(attrs);
        }
        B::Rename { old, new } => {
            p.string(old).string(new);
        }
        B::Symlink { target, link } => {
            p.string(target).string(link);
        }
        B::Extended { name, ext } => {
            p.string(name);
            match ext {
                ExtRequest::PosixRename { old, new } | ExtRequest::Hardlink { old, new } => {
                    p.string(old).string(new);
                }
                ExtRequest::Statvfs { path } | ExtRequest::ExpandPath { path } => {
                    p.string(path);
                }
                ExtRequest::Fstatvfs { handle } | ExtRequest::Fsync { handle } => {
                    p.string(handle);
                }
                ExtRequest::Lsetstat { path, attrs } => {
                    p.string(path).attrs(attrs);
                }
                ExtRequest::Limits => {}
                ExtRequest::CopyData {
                    read_handle,
                    read_offset,
                    read_len,
                    write_handle,
                    write_offset,
                } => {
                    p.string(read_handle)
                        .u64(*read_offset)
                        .u64(*read_len)
                        .string(write_handle)
                        .u64(*write_offset);
                }
                ExtRequest::HomeDirectory { user } => {
                    p.string(user);
                }
                ExtRequest::UsersGroupsById { uids, gids } => {
                    let list = |v: &[u32]| v.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
                    p.string(&list(uids)).string(&list(gids));
                }
                ExtRequest::Other { .. } => return None,
            }
        }
    }
    Some(p.finish(payload))
}

/// INIT: the version only (OpenSSH's server reads nothing more).
pub fn init(version: u32) -> Vec<u8> {
    let mut p = Packet::new(ty::INIT);
    p.u32(version);
    p.finish(0)
}

/// What replay changed in a request's ATTRS.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// An owner or group: never set (replay runs as whoever runs it).
    pub owner: bool,
    /// Set-id or sticky bits: never set.
    pub special: bool,
    /// Extended attributes: never set.
    pub extended: bool,
}

/// The ATTRS a request may set in the target: no owner, no set-id or sticky
/// bits, no extended pairs (sftp-server rejects those anyway).
pub fn sanitize(a: &Attrs) -> (Attrs, Cut) {
    let cut = Cut {
        owner: a.uid_gid.is_some(),
        special: a.permissions.is_some_and(|p| p & 0o7000 != 0),
        extended: !a.extended.is_empty(),
    };
    let clean = Attrs {
        flags: 0,
        size: a.size,
        uid_gid: None,
        permissions: a.permissions.map(|p| p & 0o777),
        atime_mtime: a.atime_mtime,
        extended: Vec::new(),
    };
    (clean, cut)
}

/// A reply read from the live sftp-server.
#[derive(Debug, Clone)]
pub struct LiveReply {
    /// The packet's first bytes, for the report.
    pub head: Vec<u8>,
    /// The packet's length with its length field.
    pub len: u64,
    pub msg: Msg,
    /// DATA's data (at most [`MAX_PACKET`] bytes).
    pub data: Option<Vec<u8>>,
}

/// Most live bytes held unread by the replay (replies waiting for their
/// recorded counterpart): past it the pipe holds the rest.
const HELD_CAP: usize = 8 << 20;
/// Bytes of a live packet kept for the report.
const HEAD_KEPT: usize = 512;

/// Reads the live sftp-server's stdout: replies, by the recorded request
/// they answer.
#[derive(Default)]
pub struct Replies {
    buf: Vec<u8>,
    /// Live request ids outstanding: the recorded request's number, its op.
    pub ids: HashMap<u32, (u64, Op)>,
    pub arrived: HashMap<u64, LiveReply>,
    pub version: Option<LiveReply>,
    /// Replies to no outstanding request, or that cannot be read.
    pub stray: Vec<LiveReply>,
    held: usize,
    /// The live output stopped being SFTP (a packet too long).
    pub broken: Option<String>,
    /// Replies read.
    pub count: usize,
}

impl Replies {
    fn packet(&mut self, p: &[u8]) {
        let head = p[..p.len().min(HEAD_KEPT)].to_vec();
        let len = p.len() as u64;
        let body = &p[4..];
        let Some((&t, rest)) = body.split_first() else {
            return;
        };
        self.count += 1;
        let reply = |msg, data| LiveReply {
            head: head.clone(),
            len,
            msg,
            data,
        };
        if t == ty::VERSION
            && let Ok((version, ext)) = parse_hello(rest)
        {
            self.version = Some(reply(
                Msg::Version {
                    version,
                    ext,
                    extra: 0,
                    to: None,
                },
                None,
            ));
            return;
        }
        let id = rest
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let Some((seq, op)) = id.and_then(|id| self.ids.remove(&id)) else {
            self.stray.push(reply(
                Msg::Unknown {
                    ty: t,
                    id,
                    body: rest[..rest.len().min(HEAD_KEPT)].to_vec(),
                },
                None,
            ));
            return;
        };
        match parse_reply(t, rest, Some(op)) {
            Ok((id, body, extra)) => {
                let data =
                    matches!(body, ReplyBody::Data { .. }).then(|| rest.get(8..).unwrap_or(&[]).to_vec());
                let msg = Msg::Reply(Reply {
                    id,
                    body,
                    to: None,
                    extra: extra as u32,
                });
                self.held += p.len();
                self.arrived.insert(seq, reply(msg, data));
            }
            Err(_) => self.stray.push(reply(
                Msg::Malformed {
                    ty: Some(t),
                    id,
                    to: None,
                },
                None,
            )),
        }
    }

    /// The live reply to recorded request `seq`, taken.
    pub fn take(&mut self, seq: u64) -> Option<LiveReply> {
        let r = self.arrived.remove(&seq)?;
        self.held = self.held.saturating_sub(r.len as usize);
        Some(r)
    }
}

impl Sink for Replies {
    fn feed(&mut self, data: &[u8]) {
        if self.broken.is_some() {
            return;
        }
        self.buf.extend_from_slice(data);
        let mut at = 0;
        while let Some(l) = self.buf.get(at..at + 4) {
            let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]);
            if len == 0 || len > MAX_PACKET + 1024 {
                self.broken = Some(format!(
                    "the real sftp-server sent a packet length of {len}, which no SFTP peer accepts"
                ));
                self.buf.clear();
                return;
            }
            let end = at + 4 + len as usize;
            if self.buf.len() < end {
                break;
            }
            let p = self.buf[at..end].to_vec();
            self.packet(&p);
            at = end;
        }
        self.buf.drain(..at);
    }

    fn wants_output(&self) -> bool {
        self.held + self.buf.len() < HELD_CAP
    }

    fn diverged(&self) -> bool {
        self.broken.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_however_they_are_cut() {
        let mut r = Replies::default();
        r.ids.insert(7, (3, Op::Stat));
        let mut p = Packet::new(ty::STATUS);
        p.u32(7).u32(2).string(b"No such file").string(b"");
        let bytes = p.finish(0);
        for b in &bytes {
            r.feed(std::slice::from_ref(b));
        }
        let got = r.take(3).unwrap();
        assert!(matches!(
            got.msg,
            Msg::Reply(Reply {
                id: 7,
                body: ReplyBody::Status { code: 2, .. },
                ..
            })
        ));
        assert!(r.ids.is_empty() && r.wants_output());
        // An id nobody asked with.
        r.feed(&bytes);
        assert_eq!(r.stray.len(), 1);
        r.feed(&[0xff, 0xff, 0xff, 0xff]);
        assert!(r.diverged());
    }

    #[test]
    fn attrs_lose_owner_and_special_bits() {
        let a = Attrs {
            flags: 0,
            size: Some(3),
            uid_gid: Some((0, 0)),
            permissions: Some(0o104755),
            atime_mtime: Some((1, 2)),
            extended: vec![ExtPair {
                name: b"x".to_vec(),
                data: b"y".to_vec(),
            }],
        };
        let (clean, cut) = sanitize(&a);
        assert_eq!(
            cut,
            Cut {
                owner: true,
                special: true,
                extended: true
            }
        );
        let mut p = Packet::new(ty::SETSTAT);
        p.attrs(&clean);
        let b = p.finish(0);
        // flags SIZE|PERMISSIONS|ACMODTIME, size, perm 0755, times.
        assert_eq!(&b[5..9], &(1u32 | 4 | 8).to_be_bytes());
        assert_eq!(&b[17..21], &0o755u32.to_be_bytes());
    }
}
