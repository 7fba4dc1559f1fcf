//! What the recorded server held before the session, as far as the
//! recording shows it, so that the replay can re-create it inside the target:
//! the directory an upload STATs, the files a download reads (their recorded
//! bytes at their offsets, sizes and modes from ATTRS), a listed directory's
//! entries. The first request that names a path decides: a successful STAT,
//! OPEN for reading, OPENDIR, REMOVE… shows it was there; a NO_SUCH_FILE shows
//! it was not; a successful create (OPEN with CREAT, MKDIR, SYMLINK, the new
//! name of a RENAME) shows the session made it, and then nothing later about
//! it or below it is re-created. Every parent of a path used successfully
//! was a directory.
//!
//! Pure: fed requests and replies, it returns [`Action`]s; `sftp.rs`
//! carries them out.

use std::collections::HashMap;

use super::paths::{Mapper, ancestors, child};
use super::recorded::Payload;
use crate::protocol::sftp::{Attrs, ExtRequest, Op, ReplyBody, ReqBody, pflags, status};

/// Most paths remembered (and so re-created).
pub const MAX_ENTRIES: usize = 100_000;
/// Most requests waiting for their reply.
const MAX_PENDING: usize = 4096;

/// Something to make inside the target (paths are virtual: the recorded
/// server's, placed by [`Mapper::real`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Dir {
        path: Vec<u8>,
    },
    /// A file: created empty if new, then `size` bytes long if given.
    File {
        path: Vec<u8>,
        size: Option<u64>,
    },
    /// Known bytes at `off`; the file is at least `off + len` long.
    Data {
        path: Vec<u8>,
        off: u64,
        known: Vec<u8>,
        len: u64,
    },
    /// A mode to give the path once everything is made (so that a
    /// read-only directory can still be filled first).
    Mode {
        path: Vec<u8>,
        perm: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// There before the session: a directory.
    Dir,
    /// There before the session: a file (`size`: as re-created so far),
    /// `touched`: the session has written it or changed its size since.
    File { size: u64, sized: bool, touched: bool },
    /// There before, of a type replay does not re-create (a symlink, a FIFO).
    Other,
    /// Made, removed or renamed by the session.
    Session,
    /// Not there.
    Absent,
}

/// A file there before, nothing known of it yet.
const NEW_FILE: Known = Known::File {
    size: 0,
    sized: false,
    touched: false,
};

/// A request waiting for its reply: what the reply will tell about.
#[derive(Debug, Clone)]
struct Pending {
    op: Op,
    p1: Option<Vec<u8>>,
    p2: Option<Vec<u8>>,
    handle: Option<Vec<u8>>,
    pflags: u32,
    offset: u64,
    /// REALPATH / expand-path of a relative path without `..`: its
    /// normalized components (the reply, less them, is the home).
    home_query: Option<Vec<u8>>,
}

/// The recorded server's state before the session, inferred.
pub struct Seed {
    map: HashMap<Vec<u8>, Known>,
    handles: HashMap<Vec<u8>, Vec<u8>>,
    pending: HashMap<u64, Pending>,
    /// Bytes the re-created files hold (their sizes).
    pub bytes: u64,
    /// Paths not remembered past [`MAX_ENTRIES`].
    pub dropped: u64,
    /// Entries of a type not re-created (symlinks, devices…).
    pub others: u64,
    /// The home the recording showed (a REALPATH of `.`), if it did.
    pub home: Option<Vec<u8>>,
    /// Modes are kept to their permission bits (no set-id, no sticky).
    pub modes_cut: u64,
    /// Directories whose recorded mode is set already.
    moded: std::collections::HashSet<Vec<u8>>,
}

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;

fn is_ok(body: &ReplyBody) -> bool {
    !matches!(body, ReplyBody::Status { code, .. } if *code != status::OK)
}

fn is_missing(body: &ReplyBody) -> bool {
    matches!(body, ReplyBody::Status { code, .. } if *code == status::NO_SUCH_FILE)
}

/// A relative path without `..`, as `/`-joined components (empty for `.`):
/// what its REALPATH adds to the home.
fn below_home(p: &[u8]) -> Option<Vec<u8>> {
    if p.starts_with(b"/") {
        return None;
    }
    let mut v = Vec::new();
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => {
                v.push(b'/');
                v.extend_from_slice(c);
            }
        }
    }
    Some(v)
}

/// The home a REALPATH answer shows: `abs` less the relative `rest`.
fn home_of(abs: &[u8], rest: &[u8]) -> Option<Vec<u8>> {
    let abs = super::paths::normalize(b"/", abs).virt;
    if rest.is_empty() {
        return Some(abs);
    }
    let h = abs.strip_suffix(rest)?;
    Some(if h.is_empty() { b"/".to_vec() } else { h.to_vec() })
}

impl Default for Seed {
    fn default() -> Self {
        Seed::new()
    }
}

impl Seed {
    pub fn new() -> Seed {
        Seed {
            map: HashMap::new(),
            handles: HashMap::new(),
            pending: HashMap::new(),
            bytes: 0,
            dropped: 0,
            others: 0,
            home: None,
            modes_cut: 0,
            moded: Default::default(),
        }
    }

    /// A recorded request (number `seq`).
    pub fn request(&mut self, m: &Mapper, seq: u64, body: &ReqBody) {
        let place = |p: &[u8]| m.place(p).ok().map(|p| p.virt);
        let (a, b) = body.paths();
        let (mut p1, p2) = (a.and_then(place), b.and_then(place));
        let mut home_query = None;
        match body {
            ReqBody::Realpath { path } => home_query = below_home(path),
            ReqBody::Extended {
                ext: ExtRequest::ExpandPath { path },
                ..
            } => {
                home_query = match path.strip_prefix(b"~/") {
                    Some(rest) => below_home(rest),
                    None if path == b"~" => Some(Vec::new()),
                    None => below_home(path).filter(|_| !path.starts_with(b"~")),
                };
                p1 = m.expand(path).ok().map(|p| p.virt);
            }
            ReqBody::Extended {
                ext: ExtRequest::HomeDirectory { .. },
                ..
            } => p1 = None,
            _ => {}
        }
        let pflags = match body {
            ReqBody::Open { pflags, .. } => *pflags,
            _ => 0,
        };
        let offset = match body {
            ReqBody::Read { offset, .. } => *offset,
            _ => 0,
        };
        if self.pending.len() >= MAX_PENDING {
            return;
        }
        self.pending.insert(
            seq,
            Pending {
                op: body.op(),
                p1,
                p2,
                handle: body.handles().0.map(<[u8]>::to_vec),
                pflags,
                offset,
                home_query,
            },
        );
    }

    /// The recorded reply to request `seq`.
    pub fn reply(&mut self, seq: u64, body: &ReplyBody, payload: Option<&Payload>, out: &mut Vec<Action>) {
        let Some(r) = self.pending.remove(&seq) else {
            return;
        };
        let ok = is_ok(body);
        let hpath = r.handle.as_ref().and_then(|h| self.handles.get(h)).cloned();
        match (r.op, body) {
            (Op::Stat | Op::Lstat, ReplyBody::Attrs { attrs }) => {
                if let Some(p) = &r.p1 {
                    self.attrs(p, attrs, out);
                }
            }
            (Op::Fstat, ReplyBody::Attrs { attrs }) => {
                if let Some(p) = &hpath {
                    self.attrs(p, attrs, out);
                }
            }
            (Op::Open, ReplyBody::Handle { handle }) => {
                if let Some(p) = r.p1 {
                    if r.pflags & pflags::CREAT != 0 {
                        self.made(&p, out);
                    } else {
                        self.existed(&p, NEW_FILE, out);
                    }
                    if r.pflags & (pflags::WRITE | pflags::TRUNC | pflags::APPEND) != 0 {
                        self.touch(&p);
                    }
                    self.handle(handle, p);
                }
            }
            (Op::Opendir, ReplyBody::Handle { handle }) => {
                if let Some(p) = r.p1 {
                    self.existed(&p, Known::Dir, out);
                    self.handle(handle, p);
                }
            }
            (Op::Readdir, ReplyBody::Name { names }) => {
                if let Some(d) = &hpath
                    && self.map.get(d) == Some(&Known::Dir)
                {
                    for n in names {
                        let f = &n.filename;
                        if f.is_empty() || f == b"." || f == b".." || f.contains(&b'/') || f.contains(&0) {
                            continue;
                        }
                        let c = child(d, f);
                        self.attrs(&c, &n.attrs, out);
                    }
                }
            }
            (Op::Read, ReplyBody::Data { .. }) => {
                if let (Some(p), Some(data)) = (&hpath, payload) {
                    self.data(p, r.offset, data, out);
                }
            }
            (Op::Close, _) if ok => {
                if let Some(h) = &r.handle {
                    self.handles.remove(h);
                }
            }
            (Op::Write | Op::Fsetstat | Op::Extended(crate::protocol::sftp::Ext::CopyData), _) => {
                if let Some(p) = &hpath {
                    self.touch(p);
                }
            }
            (
                Op::Realpath | Op::Extended(crate::protocol::sftp::Ext::ExpandPath),
                ReplyBody::Name { names },
            ) => {
                if let Some(n) = names.first()
                    && n.filename.starts_with(b"/")
                {
                    if self.home.is_none()
                        && let Some(rest) = &r.home_query
                    {
                        self.home = home_of(&n.filename, rest);
                    }
                    // sftp-server's realpath resolves every component but
                    // the last, which may not exist: its parents do.
                    if let Some(p) = &r.p1 {
                        if r.home_query.as_deref() == Some(b"") {
                            self.existed(p, Known::Dir, out);
                        } else {
                            self.parents(p, out);
                        }
                    }
                }
            }
            (Op::Mkdir | Op::Symlink, _) if ok => {
                if let Some(p) = &r.p1 {
                    self.made(p, out);
                }
            }
            (Op::Mkdir, ReplyBody::Status { code, .. }) if *code == status::FAILURE => {
                if let Some(p) = &r.p1 {
                    self.existed(p, Known::Dir, out);
                }
            }
            (Op::Rmdir, _) if ok => {
                if let Some(p) = &r.p1 {
                    self.existed(p, Known::Dir, out);
                    self.gone(p);
                }
            }
            (
                Op::Remove
                | Op::Rename
                | Op::Extended(crate::protocol::sftp::Ext::PosixRename | crate::protocol::sftp::Ext::Hardlink),
                _,
            ) if ok => {
                if let Some(p) = &r.p1 {
                    self.existed(p, NEW_FILE, out);
                    if r.op != Op::Extended(crate::protocol::sftp::Ext::Hardlink) {
                        self.gone(p);
                    }
                }
                if let Some(p) = &r.p2 {
                    self.made(p, out);
                }
            }
            (
                Op::Setstat
                | Op::Extended(crate::protocol::sftp::Ext::Lsetstat | crate::protocol::sftp::Ext::Statvfs)
                | Op::Readlink,
                _,
            ) if ok => {
                if let Some(p) = &r.p1 {
                    let kind = if r.op == Op::Readlink {
                        Known::Other
                    } else if matches!(r.op, Op::Extended(crate::protocol::sftp::Ext::Statvfs)) {
                        Known::Dir
                    } else {
                        NEW_FILE
                    };
                    self.existed(p, kind, out);
                    if r.op == Op::Setstat {
                        self.touch(p);
                    }
                }
            }
            _ if is_missing(body) => {
                if let Some(p) = &r.p1
                    && !self.map.contains_key(p)
                {
                    self.remember(p.clone(), Known::Absent);
                }
            }
            _ => {}
        }
    }

    fn handle(&mut self, h: &[u8], p: Vec<u8>) {
        if self.handles.len() < MAX_PENDING {
            self.handles.insert(h.to_vec(), p);
        }
    }

    fn remember(&mut self, p: Vec<u8>, k: Known) -> bool {
        if self.map.len() >= MAX_ENTRIES && !self.map.contains_key(&p) {
            self.dropped += 1;
            return false;
        }
        self.map.insert(p, k);
        true
    }

    /// Whether `p` or a directory above it is the session's (or gone).
    fn session_made(&self, p: &[u8]) -> bool {
        std::iter::once(p)
            .chain(ancestors(p))
            .any(|a| matches!(self.map.get(a), Some(Known::Session)))
    }

    /// Every directory above `p` was there.
    fn parents(&mut self, p: &[u8], out: &mut Vec<Action>) {
        let dirs: Vec<Vec<u8>> = ancestors(p).map(<[u8]>::to_vec).collect();
        for a in dirs {
            match self.map.get(&a) {
                None | Some(Known::Absent) => {
                    if self.remember(a.clone(), Known::Dir) {
                        out.push(Action::Dir { path: a });
                    }
                }
                // Made by the session: what is below is too.
                Some(Known::Session) => return,
                Some(_) => {}
            }
        }
    }

    /// `p` was there before the session (if nothing decided otherwise).
    fn existed(&mut self, p: &[u8], k: Known, out: &mut Vec<Action>) {
        if self.map.contains_key(p) || self.session_made(p) || p == b"/" {
            return;
        }
        self.parents(p, out);
        if !self.remember(p.to_vec(), k) {
            return;
        }
        match k {
            Known::Dir => out.push(Action::Dir { path: p.to_vec() }),
            Known::File { .. } => out.push(Action::File {
                path: p.to_vec(),
                size: None,
            }),
            Known::Other => self.others += 1,
            _ => {}
        }
    }

    /// The session made `p`.
    fn made(&mut self, p: &[u8], out: &mut Vec<Action>) {
        // Not there before (or not known to be): the session's now.
        if matches!(self.map.get(p), None | Some(Known::Absent)) && !self.session_made(p) {
            self.parents(p, out);
            self.remember(p.to_vec(), Known::Session);
        }
    }

    /// The session removed or renamed `p`: nothing more is learnt about it.
    fn gone(&mut self, p: &[u8]) {
        if let Some(k) = self.map.get_mut(p) {
            *k = Known::Session;
        }
    }

    fn touch(&mut self, p: &[u8]) {
        if let Some(Known::File { touched, .. }) = self.map.get_mut(p) {
            *touched = true;
        }
    }

    /// What an ATTRS says of `p`: its type, size and mode.
    fn attrs(&mut self, p: &[u8], a: &Attrs, out: &mut Vec<Action>) {
        let Some(perm) = a.permissions else {
            // No type: a file is the likely thing a STAT is asked of.
            return self.file_size(p, a.size, None, out);
        };
        match perm & S_IFMT {
            S_IFDIR => {
                self.existed(p, Known::Dir, out);
                if self.map.get(p) == Some(&Known::Dir)
                    && self.moded.len() < MAX_ENTRIES
                    && self.moded.insert(p.to_vec())
                {
                    self.mode(p, perm, out);
                }
            }
            S_IFREG | 0 => self.file_size(p, a.size, Some(perm), out),
            _ => self.existed(p, Known::Other, out),
        }
    }

    fn mode(&mut self, p: &[u8], perm: u32, out: &mut Vec<Action>) {
        if perm & 0o7000 != 0 {
            self.modes_cut += 1;
        }
        out.push(Action::Mode {
            path: p.to_vec(),
            perm: perm & 0o777,
        });
    }

    fn file_size(&mut self, p: &[u8], size: Option<u64>, perm: Option<u32>, out: &mut Vec<Action>) {
        self.existed(p, NEW_FILE, out);
        let Some(Known::File {
            size: cur,
            sized,
            touched,
        }) = self.map.get(p).copied()
        else {
            return;
        };
        if sized || touched {
            return;
        }
        if let Some(perm) = perm {
            self.mode(p, perm, out);
        }
        let Some(size) = size else { return };
        self.bytes = self.bytes.saturating_add(size.saturating_sub(cur));
        self.map.insert(
            p.to_vec(),
            Known::File {
                size: size.max(cur),
                sized: true,
                touched: false,
            },
        );
        out.push(Action::File {
            path: p.to_vec(),
            size: Some(size.max(cur)),
        });
    }

    fn data(&mut self, p: &[u8], off: u64, data: &Payload, out: &mut Vec<Action>) {
        let Some(Known::File { size, sized, touched }) = self.map.get(p).copied() else {
            return;
        };
        if touched {
            return;
        }
        let end = off.saturating_add(data.len);
        self.bytes = self.bytes.saturating_add(end.saturating_sub(size));
        self.map.insert(
            p.to_vec(),
            Known::File {
                size: size.max(end),
                sized,
                touched,
            },
        );
        out.push(Action::Data {
            path: p.to_vec(),
            off,
            known: data.known.clone(),
            len: data.len,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::sftp::Name;

    fn attrs(perm: u32, size: u64) -> Attrs {
        Attrs {
            flags: 5,
            size: Some(size),
            uid_gid: None,
            permissions: Some(perm),
            atime_mtime: None,
            extended: Vec::new(),
        }
    }

    fn ok() -> ReplyBody {
        ReplyBody::Status {
            code: 0,
            message: None,
            lang: None,
        }
    }

    fn m() -> Mapper {
        Mapper::new(b"/t", Some(b"/home/u"))
    }

    /// OPENDIR `path` (requests `seq` and `seq + 1`), answered with handle
    /// "d", then READDIR answered with `names`.
    fn list(s: &mut Seed, m: &Mapper, seq: u64, path: &[u8], names: Vec<Name>, out: &mut Vec<Action>) {
        s.request(m, seq, &ReqBody::Opendir { path: path.to_vec() });
        let handle = b"d".to_vec();
        s.reply(
            seq,
            &ReplyBody::Handle {
                handle: handle.clone(),
            },
            None,
            out,
        );
        s.request(m, seq + 1, &ReqBody::Readdir { handle });
        s.reply(seq + 1, &ReplyBody::Name { names }, None, out);
    }

    #[test]
    fn the_home_is_what_a_relative_realpath_shows() {
        assert_eq!(
            home_of(b"/h/u/dst/tree", b"/dst/tree").as_deref(),
            Some(&b"/h/u"[..])
        );
        assert_eq!(home_of(b"/h/u", b"").as_deref(), Some(&b"/h/u"[..]));
        assert_eq!(home_of(b"/dst", b"/dst").as_deref(), Some(&b"/"[..]));
        assert_eq!(home_of(b"/elsewhere", b"/dst"), None);
        assert_eq!(below_home(b"./dst/tree/").as_deref(), Some(&b"/dst/tree"[..]));
        assert_eq!(below_home(b"../x"), None);
        assert_eq!(below_home(b"/x"), None);
    }

    #[test]
    fn a_download_recreates_what_it_read() {
        let (m, mut s, mut out) = (m(), Seed::new(), Vec::new());
        s.request(
            &m,
            1,
            &ReqBody::Stat {
                path: b"d/a".to_vec(),
            },
        );
        s.reply(
            1,
            &ReplyBody::Attrs {
                attrs: attrs(0o100640, 5),
            },
            None,
            &mut out,
        );
        s.request(
            &m,
            2,
            &ReqBody::Open {
                path: b"d/a".to_vec(),
                pflags: pflags::READ,
                attrs: Attrs::default(),
            },
        );
        s.reply(
            2,
            &ReplyBody::Handle {
                handle: b"h".to_vec(),
            },
            None,
            &mut out,
        );
        s.request(
            &m,
            3,
            &ReqBody::Read {
                handle: b"h".to_vec(),
                offset: 0,
                len: 100,
            },
        );
        let data = Payload {
            known: b"hello".to_vec(),
            len: 5,
        };
        s.reply(3, &ReplyBody::Data { len: 5 }, Some(&data), &mut out);
        assert_eq!(
            out,
            [
                Action::Dir {
                    path: b"/home".to_vec()
                },
                Action::Dir {
                    path: b"/home/u".to_vec()
                },
                Action::Dir {
                    path: b"/home/u/d".to_vec()
                },
                Action::File {
                    path: b"/home/u/d/a".to_vec(),
                    size: None
                },
                Action::Mode {
                    path: b"/home/u/d/a".to_vec(),
                    perm: 0o640
                },
                Action::File {
                    path: b"/home/u/d/a".to_vec(),
                    size: Some(5)
                },
                Action::Data {
                    path: b"/home/u/d/a".to_vec(),
                    off: 0,
                    known: b"hello".to_vec(),
                    len: 5
                },
            ]
        );
        assert_eq!(s.bytes, 5);
    }

    #[test]
    fn what_the_session_made_is_not_recreated() {
        let (m, mut s, mut out) = (m(), Seed::new(), Vec::new());
        s.request(
            &m,
            1,
            &ReqBody::Stat {
                path: b"/up/new".to_vec(),
            },
        );
        s.reply(
            1,
            &ReplyBody::Status {
                code: status::NO_SUCH_FILE,
                message: None,
                lang: None,
            },
            None,
            &mut out,
        );
        s.request(
            &m,
            2,
            &ReqBody::Mkdir {
                path: b"/up/new".to_vec(),
                attrs: Attrs::default(),
            },
        );
        s.reply(2, &ok(), None, &mut out);
        s.request(
            &m,
            3,
            &ReqBody::Stat {
                path: b"/up/new".to_vec(),
            },
        );
        s.reply(
            3,
            &ReplyBody::Attrs {
                attrs: attrs(0o40755, 4096),
            },
            None,
            &mut out,
        );
        let names = vec![Name {
            filename: b"x".to_vec(),
            longname: Vec::new(),
            attrs: attrs(0o100644, 3),
        }];
        list(&mut s, &m, 4, b"/up/new", names, &mut out);
        // Only the parent the MKDIR needed.
        assert_eq!(
            out,
            [Action::Dir {
                path: b"/up".to_vec()
            }]
        );
    }

    #[test]
    fn a_listed_directory_gets_its_entries_and_the_home_is_learnt() {
        let (m, mut s, mut out) = (m(), Seed::new(), Vec::new());
        s.request(&m, 1, &ReqBody::Realpath { path: b".".to_vec() });
        let name = |f: &[u8], a| Name {
            filename: f.to_vec(),
            longname: b"drwx ... secret".to_vec(),
            attrs: a,
        };
        s.reply(
            1,
            &ReplyBody::Name {
                names: vec![name(b"/home/u", Attrs::default())],
            },
            None,
            &mut out,
        );
        assert_eq!(s.home.as_deref(), Some(&b"/home/u"[..]));
        out.clear();
        let names = vec![
            name(b".", attrs(0o40755, 4096)),
            name(b"..", attrs(0o40755, 4096)),
            name(b"../../etc", attrs(0o40755, 4096)),
            name(b"sub", attrs(0o40700, 4096)),
            name(b"f", attrs(0o104755, 2)),
            name(b"l", attrs(0o120777, 2)),
        ];
        list(&mut s, &m, 2, b"t", names, &mut out);
        assert_eq!(
            out,
            [
                Action::Dir {
                    path: b"/home/u/t".to_vec()
                },
                Action::Dir {
                    path: b"/home/u/t/sub".to_vec()
                },
                Action::Mode {
                    path: b"/home/u/t/sub".to_vec(),
                    perm: 0o700
                },
                Action::File {
                    path: b"/home/u/t/f".to_vec(),
                    size: None
                },
                Action::Mode {
                    path: b"/home/u/t/f".to_vec(),
                    perm: 0o755
                },
                Action::File {
                    path: b"/home/u/t/f".to_vec(),
                    size: Some(2)
                },
            ]
        );
        assert_eq!((s.others, s.modes_cut, s.bytes), (1, 1, 2));
    }
}
