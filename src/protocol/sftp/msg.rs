//! The typed SFTP packets the decoder emits, with every field as sent (names,
//! handles and extension data as bytes, never lossy UTF-8), and what pairing
//! adds to them ([`RequestRef`]): the writers annotate from these alone.
//! Also the parsers from a packet's bytes to these types.

use super::wire::{Reader, attr};
use super::{Dir, ty};

/// A name/data pair of strings: an extension in INIT or VERSION (name and
/// version, e.g. `limits@openssh.com` / `1`), or an ATTRS extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtPair {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

/// ATTRS (draft-02 §5). `flags` is as sent, unknown bits included; a field is
/// `Some` exactly when its flag is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attrs {
    pub flags: u32,
    /// `SSH2_FILEXFER_ATTR_SIZE`.
    pub size: Option<u64>,
    /// `SSH2_FILEXFER_ATTR_UIDGID`: (uid, gid).
    pub uid_gid: Option<(u32, u32)>,
    /// `SSH2_FILEXFER_ATTR_PERMISSIONS`: st_mode bits, file type included.
    pub permissions: Option<u32>,
    /// `SSH2_FILEXFER_ATTR_ACMODTIME`: (atime, mtime), in wire order.
    pub atime_mtime: Option<(u32, u32)>,
    /// `SSH2_FILEXFER_ATTR_EXTENDED`: the name/data pairs.
    pub extended: Vec<ExtPair>,
}

impl Attrs {
    /// Flag bits that version 3 does not define.
    pub fn unknown_flags(&self) -> u32 {
        self.flags & !(attr::SIZE | attr::UIDGID | attr::PERMISSIONS | attr::ACMODTIME | attr::EXTENDED)
    }
}

/// One entry of a NAME reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub filename: Vec<u8>,
    /// `ls -l`-style text (OpenSSH fills it for READDIR only).
    pub longname: Vec<u8>,
    pub attrs: Attrs,
}

/// The OpenSSH extensions (PROTOCOL §4.3–4.12), by the name the request
/// carries; `Other` is any other name (the request keeps the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ext {
    PosixRename,
    Statvfs,
    Fstatvfs,
    Hardlink,
    Fsync,
    Lsetstat,
    Limits,
    ExpandPath,
    CopyData,
    HomeDirectory,
    UsersGroupsById,
    Other,
}

impl Ext {
    /// All known extensions, for tests and docs.
    pub const KNOWN: [Ext; 11] = [
        Ext::PosixRename,
        Ext::Statvfs,
        Ext::Fstatvfs,
        Ext::Hardlink,
        Ext::Fsync,
        Ext::Lsetstat,
        Ext::Limits,
        Ext::ExpandPath,
        Ext::CopyData,
        Ext::HomeDirectory,
        Ext::UsersGroupsById,
    ];

    /// The extension a request name selects, exactly as sftp-server.c's
    /// table spells them (copy-data and home-directory have no `@openssh.com`).
    pub fn from_name(name: &[u8]) -> Ext {
        Ext::KNOWN
            .into_iter()
            .find(|e| e.name().as_bytes() == name)
            .unwrap_or(Ext::Other)
    }

    /// The name on the wire; `""` for `Other`.
    pub fn name(self) -> &'static str {
        match self {
            Ext::PosixRename => "posix-rename@openssh.com",
            Ext::Statvfs => "statvfs@openssh.com",
            Ext::Fstatvfs => "fstatvfs@openssh.com",
            Ext::Hardlink => "hardlink@openssh.com",
            Ext::Fsync => "fsync@openssh.com",
            Ext::Lsetstat => "lsetstat@openssh.com",
            Ext::Limits => "limits@openssh.com",
            Ext::ExpandPath => "expand-path@openssh.com",
            Ext::CopyData => "copy-data",
            Ext::HomeDirectory => "home-directory",
            Ext::UsersGroupsById => "users-groups-by-id@openssh.com",
            Ext::Other => "",
        }
    }
}

/// What a request asks for: its type, and for EXTENDED which extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Init,
    Open,
    Close,
    Read,
    Write,
    Lstat,
    Fstat,
    Setstat,
    Fsetstat,
    Opendir,
    Readdir,
    Remove,
    Mkdir,
    Rmdir,
    Realpath,
    Stat,
    Rename,
    Readlink,
    Symlink,
    Extended(Ext),
    /// A type number version 3 does not define (kept so its reply pairs).
    Unknown(u8),
}

impl Op {
    /// The request's type name (sftp.h without `SSH2_FXP_`); `"EXTENDED"`
    /// for every extension, `"UNKNOWN"` for an undefined type.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Unknown(_) => "UNKNOWN",
            Op::Extended(_) => "EXTENDED",
            op => ty::name(op.type_byte()).unwrap_or("UNKNOWN"),
        }
    }

    /// The packet type that carries it.
    pub fn type_byte(self) -> u8 {
        match self {
            Op::Init => ty::INIT,
            Op::Open => ty::OPEN,
            Op::Close => ty::CLOSE,
            Op::Read => ty::READ,
            Op::Write => ty::WRITE,
            Op::Lstat => ty::LSTAT,
            Op::Fstat => ty::FSTAT,
            Op::Setstat => ty::SETSTAT,
            Op::Fsetstat => ty::FSETSTAT,
            Op::Opendir => ty::OPENDIR,
            Op::Readdir => ty::READDIR,
            Op::Remove => ty::REMOVE,
            Op::Mkdir => ty::MKDIR,
            Op::Rmdir => ty::RMDIR,
            Op::Realpath => ty::REALPATH,
            Op::Stat => ty::STAT,
            Op::Rename => ty::RENAME,
            Op::Readlink => ty::READLINK,
            Op::Symlink => ty::SYMLINK,
            Op::Extended(_) => ty::EXTENDED,
            Op::Unknown(t) => t,
        }
    }

    /// The request of packet type `t` (EXTENDED as `Extended(Other)`: its
    /// name says which).
    pub fn from_type(t: u8) -> Op {
        match t {
            ty::INIT => Op::Init,
            ty::OPEN => Op::Open,
            ty::CLOSE => Op::Close,
            ty::READ => Op::Read,
            ty::WRITE => Op::Write,
            ty::LSTAT => Op::Lstat,
            ty::FSTAT => Op::Fstat,
            ty::SETSTAT => Op::Setstat,
            ty::FSETSTAT => Op::Fsetstat,
            ty::OPENDIR => Op::Opendir,
            ty::READDIR => Op::Readdir,
            ty::REMOVE => Op::Remove,
            ty::MKDIR => Op::Mkdir,
            ty::RMDIR => Op::Rmdir,
            ty::REALPATH => Op::Realpath,
            ty::STAT => Op::Stat,
            ty::RENAME => Op::Rename,
            ty::READLINK => Op::Readlink,
            ty::SYMLINK => Op::Symlink,
            ty::EXTENDED => Op::Extended(Ext::Other),
            t => Op::Unknown(t),
        }
    }

    /// The reply types a server may answer it with (draft-02 §6–8, PROTOCOL
    /// §4 for the extensions). STATUS is always allowed; `None`: any type
    /// (an unknown request or extension).
    pub fn replies(self) -> Option<&'static [u8]> {
        const STATUS: &[u8] = &[ty::STATUS];
        Some(match self {
            Op::Init => &[ty::VERSION],
            Op::Open | Op::Opendir => &[ty::STATUS, ty::HANDLE],
            Op::Read => &[ty::STATUS, ty::DATA],
            Op::Lstat | Op::Fstat | Op::Stat => &[ty::STATUS, ty::ATTRS],
            Op::Readdir | Op::Realpath | Op::Readlink => &[ty::STATUS, ty::NAME],
            Op::Close
            | Op::Write
            | Op::Setstat
            | Op::Fsetstat
            | Op::Remove
            | Op::Mkdir
            | Op::Rmdir
            | Op::Rename
            | Op::Symlink => STATUS,
            Op::Extended(e) => match e {
                Ext::PosixRename | Ext::Hardlink | Ext::Fsync | Ext::Lsetstat | Ext::CopyData => STATUS,
                Ext::Statvfs | Ext::Fstatvfs | Ext::Limits | Ext::UsersGroupsById => {
                    &[ty::STATUS, ty::EXTENDED_REPLY]
                }
                Ext::ExpandPath | Ext::HomeDirectory => &[ty::STATUS, ty::NAME],
                Ext::Other => return None,
            },
            Op::Unknown(_) => return None,
        })
    }
}

/// An OpenSSH extension request's fields (after its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtRequest {
    PosixRename {
        old: Vec<u8>,
        new: Vec<u8>,
    },
    Statvfs {
        path: Vec<u8>,
    },
    Fstatvfs {
        handle: Vec<u8>,
    },
    Hardlink {
        old: Vec<u8>,
        new: Vec<u8>,
    },
    Fsync {
        handle: Vec<u8>,
    },
    Lsetstat {
        path: Vec<u8>,
        attrs: Attrs,
    },
    Limits,
    ExpandPath {
        path: Vec<u8>,
    },
    CopyData {
        read_handle: Vec<u8>,
        read_offset: u64,
        /// 0: until the end of the file.
        read_len: u64,
        write_handle: Vec<u8>,
        write_offset: u64,
    },
    /// An empty user is the server's own user.
    HomeDirectory {
        user: Vec<u8>,
    },
    UsersGroupsById {
        uids: Vec<u32>,
        gids: Vec<u32>,
    },
    /// An extension the decoder does not know: the bytes after its name.
    Other {
        data: Vec<u8>,
    },
}

/// A request's fields (draft-02 §6), without the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReqBody {
    Open {
        path: Vec<u8>,
        pflags: u32,
        attrs: Attrs,
    },
    Close {
        handle: Vec<u8>,
    },
    Read {
        handle: Vec<u8>,
        offset: u64,
        len: u32,
    },
    /// The data is not carried: it passed as the payload ([`super::Event::DataStart`]).
    Write {
        handle: Vec<u8>,
        offset: u64,
        len: u32,
    },
    Lstat {
        path: Vec<u8>,
    },
    Fstat {
        handle: Vec<u8>,
    },
    Setstat {
        path: Vec<u8>,
        attrs: Attrs,
    },
    Fsetstat {
        handle: Vec<u8>,
        attrs: Attrs,
    },
    Opendir {
        path: Vec<u8>,
    },
    Readdir {
        handle: Vec<u8>,
    },
    Remove {
        path: Vec<u8>,
    },
    Mkdir {
        path: Vec<u8>,
        attrs: Attrs,
    },
    Rmdir {
        path: Vec<u8>,
    },
    Realpath {
        path: Vec<u8>,
    },
    Stat {
        path: Vec<u8>,
    },
    Rename {
        old: Vec<u8>,
        new: Vec<u8>,
    },
    Readlink {
        path: Vec<u8>,
    },
    /// In OpenSSH's order (PROTOCOL §4.1, the reverse of the draft's): the
    /// first string is the link's target, the second the link to create.
    Symlink {
        target: Vec<u8>,
        link: Vec<u8>,
    },
    Extended {
        name: Vec<u8>,
        ext: ExtRequest,
    },
}

impl ReqBody {
    pub fn op(&self) -> Op {
        match self {
            ReqBody::Open { .. } => Op::Open,
            ReqBody::Close { .. } => Op::Close,
            ReqBody::Read { .. } => Op::Read,
            ReqBody::Write { .. } => Op::Write,
            ReqBody::Lstat { .. } => Op::Lstat,
            ReqBody::Fstat { .. } => Op::Fstat,
            ReqBody::Setstat { .. } => Op::Setstat,
            ReqBody::Fsetstat { .. } => Op::Fsetstat,
            ReqBody::Opendir { .. } => Op::Opendir,
            ReqBody::Readdir { .. } => Op::Readdir,
            ReqBody::Remove { .. } => Op::Remove,
            ReqBody::Mkdir { .. } => Op::Mkdir,
            ReqBody::Rmdir { .. } => Op::Rmdir,
            ReqBody::Realpath { .. } => Op::Realpath,
            ReqBody::Stat { .. } => Op::Stat,
            ReqBody::Rename { .. } => Op::Rename,
            ReqBody::Readlink { .. } => Op::Readlink,
            ReqBody::Symlink { .. } => Op::Symlink,
            ReqBody::Extended { name, .. } => Op::Extended(Ext::from_name(name)),
        }
    }

    /// The handles it uses: (the first, copy-data's write handle).
    pub fn handles(&self) -> (Option<&[u8]>, Option<&[u8]>) {
        match self {
            ReqBody::Close { handle }
            | ReqBody::Read { handle, .. }
            | ReqBody::Write { handle, .. }
            | ReqBody::Fstat { handle }
            | ReqBody::Fsetstat { handle, .. }
            | ReqBody::Readdir { handle }
            | ReqBody::Extended {
                ext: ExtRequest::Fstatvfs { handle } | ExtRequest::Fsync { handle },
                ..
            } => (Some(handle), None),
            ReqBody::Extended {
                ext:
                    ExtRequest::CopyData {
                        read_handle,
                        write_handle,
                        ..
                    },
                ..
            } => (Some(read_handle), Some(write_handle)),
            _ => (None, None),
        }
    }

    /// The paths it names: (the first, the second of a rename or link).
    pub fn paths(&self) -> (Option<&[u8]>, Option<&[u8]>) {
        match self {
            ReqBody::Open { path, .. }
            | ReqBody::Lstat { path }
            | ReqBody::Setstat { path, .. }
            | ReqBody::Opendir { path }
            | ReqBody::Remove { path }
            | ReqBody::Mkdir { path, .. }
            | ReqBody::Rmdir { path }
            | ReqBody::Realpath { path }
            | ReqBody::Stat { path }
            | ReqBody::Readlink { path }
            | ReqBody::Extended {
                ext:
                    ExtRequest::Statvfs { path }
                    | ExtRequest::Lsetstat { path, .. }
                    | ExtRequest::ExpandPath { path },
                ..
            } => (Some(path), None),
            ReqBody::Rename { old, new }
            | ReqBody::Extended {
                ext: ExtRequest::PosixRename { old, new } | ExtRequest::Hardlink { old, new },
                ..
            } => (Some(old), Some(new)),
            // The link is what the request creates; the target may not exist.
            ReqBody::Symlink { target, link } => (Some(link), Some(target)),
            ReqBody::Extended {
                ext: ExtRequest::HomeDirectory { user },
                ..
            } => (Some(user), None),
            _ => (None, None),
        }
    }

    /// The ATTRS it sets (OPEN's initial ones included).
    pub fn attrs(&self) -> Option<&Attrs> {
        match self {
            ReqBody::Open { attrs, .. }
            | ReqBody::Setstat { attrs, .. }
            | ReqBody::Fsetstat { attrs, .. }
            | ReqBody::Mkdir { attrs, .. }
            | ReqBody::Extended {
                ext: ExtRequest::Lsetstat { attrs, .. },
                ..
            } => Some(attrs),
            _ => None,
        }
    }
}

/// A request, as decoded from the client's direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u32,
    /// The request's number in the session: INIT is 0, the first request 1.
    /// A reply's [`RequestRef::seq`] names the request it answers.
    pub seq: u64,
    pub body: ReqBody,
    /// The path its handle was opened with (the handle map); for copy-data,
    /// the read handle's.
    pub handle_path: Option<Vec<u8>>,
    /// copy-data's write handle's path.
    pub handle2_path: Option<Vec<u8>>,
    /// Bytes in the packet past its fields (`long-packet`); 0 normally.
    pub extra: u32,
}

/// statvfs@openssh.com / fstatvfs@openssh.com's reply (PROTOCOL §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Statvfs {
    pub bsize: u64,
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub favail: u64,
    pub fsid: u64,
    /// 1: read-only, 2: no setuid.
    pub flag: u64,
    pub namemax: u64,
}

/// limits@openssh.com's reply (PROTOCOL §4.8); 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub max_packet: u64,
    pub max_read: u64,
    pub max_write: u64,
    pub max_open_handles: u64,
}

/// An EXTENDED_REPLY's fields, by the extension its request named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtReply {
    Statvfs(Statvfs),
    Limits(Limits),
    /// users-groups-by-id@openssh.com: names in the order of the ids asked
    /// for; an empty name for an id with none.
    UsersGroups {
        users: Vec<Vec<u8>>,
        groups: Vec<Vec<u8>>,
    },
    /// The request is unknown (or an extension without a reply format): the
    /// bytes after the id.
    Other {
        data: Vec<u8>,
    },
}

/// A reply's fields (draft-02 §7), without the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyBody {
    /// `message` and `lang` are `None` when absent (servers speaking version
    /// 2 or less omit them; OpenSSH's sftp-server does too for such clients).
    Status {
        code: u32,
        message: Option<Vec<u8>>,
        lang: Option<Vec<u8>>,
    },
    Handle {
        handle: Vec<u8>,
    },
    /// The data is not carried: it passed as the payload.
    Data {
        len: u32,
    },
    Name {
        names: Vec<Name>,
    },
    Attrs {
        attrs: Attrs,
    },
    Extended(ExtReply),
}

impl ReplyBody {
    pub fn type_byte(&self) -> u8 {
        match self {
            ReplyBody::Status { .. } => ty::STATUS,
            ReplyBody::Handle { .. } => ty::HANDLE,
            ReplyBody::Data { .. } => ty::DATA,
            ReplyBody::Name { .. } => ty::NAME,
            ReplyBody::Attrs { .. } => ty::ATTRS,
            ReplyBody::Extended(_) => ty::EXTENDED_REPLY,
        }
    }
}

/// What pairing knows about a request, carried by its reply (and by the
/// findings that concern it), so that a writer can annotate a reply without
/// state of its own: "HANDLE id=3 h:00000000 = \"dst/a\"".
///
/// Latency: the tracer notes the time at which each request's Frame ended
/// (in `In`, at offset `end`, or by `seq`); the reply's time minus that is
/// the request's latency. The decoder itself has no clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRef {
    /// `None` for INIT, which has no id.
    pub id: Option<u32>,
    /// The request's number in the session ([`Request::seq`]).
    pub seq: u64,
    /// Where the request's frame ended in `In` (an absolute offset).
    pub end: u64,
    pub op: Op,
    /// EXTENDED's name as sent.
    pub ext_name: Option<Vec<u8>>,
    /// The path it names, or its handle's path; at most [`super::PATH_CAP`] bytes.
    pub path: Option<Vec<u8>>,
    /// The second path (RENAME's new name, SYMLINK's target, hardlink and
    /// posix-rename's new path, copy-data's write handle's path).
    pub path2: Option<Vec<u8>>,
    /// The handle it uses (the first, for copy-data).
    pub handle: Option<Vec<u8>>,
    /// READ and WRITE: the offset and length asked for (WRITE: of the data).
    pub offset: Option<u64>,
    pub len: Option<u64>,
}

/// One frame's decoded content: a packet, or what the bytes were when they
/// could not be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// The client's hello (`uint32 version`, then extension pairs if any).
    Init {
        version: u32,
        ext: Vec<ExtPair>,
        extra: u32,
    },
    /// The server's hello: its version and the extensions it announces.
    Version {
        version: u32,
        ext: Vec<ExtPair>,
        extra: u32,
        /// The INIT it answers.
        to: Option<RequestRef>,
    },
    Request(Request),
    Reply(Reply),
    /// A type version 3 does not define, or one sent in the wrong direction
    /// (a reply type from the client, a request type from the server):
    /// `body` is every byte after the type.
    Unknown {
        ty: u8,
        id: Option<u32>,
        body: Vec<u8>,
    },
    /// A known type whose fields do not fit in its packet (`short-packet`);
    /// `to` is the request it answers, for a reply whose id was readable.
    Malformed {
        ty: Option<u8>,
        id: Option<u32>,
        to: Option<RequestRef>,
    },
    /// A packet too long for the decoder to buffer its fields (over
    /// [`super::MAX_PACKET`], within limits the server announced): framed, paired
    /// by id, not decoded.
    Undecoded {
        ty: u8,
        id: Option<u32>,
        len: u32,
        to: Option<RequestRef>,
    },
    /// Raw framing, after a finding that makes the direction's framing
    /// untrustworthy (`not-sftp`, `too-long`): a uint32 length and the bytes
    /// it claims. `seen` is the frame's length in bytes, at most 4 + declared
    /// (less when the direction ended first).
    Raw {
        declared: u32,
        seen: u64,
    },
    /// A packet cut by the end of its direction (`truncated`): what was known.
    Truncated {
        ty: Option<u8>,
        id: Option<u32>,
        declared: Option<u32>,
        seen: u64,
    },
}

/// A reply, as decoded from the server's direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: u32,
    pub body: ReplyBody,
    /// The request it answers; `None` for an unknown id.
    pub to: Option<RequestRef>,
    /// Bytes in the packet past its fields (`long-packet`); 0 normally.
    pub extra: u32,
}

// ---- parsers --------------------------------------------------------------

/// Why a packet's fields could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    /// The id, if the packet held one.
    pub id: Option<u32>,
}

/// Reads a request of type `t` (not INIT) from the bytes after its type;
/// returns the id, the body and the count of bytes past the fields.
pub(crate) fn parse_request(t: u8, body: &[u8]) -> Result<(u32, ReqBody, usize), Short> {
    let mut r = Reader::new(body);
    let id = r.u32().ok_or(Short { id: None })?;
    let short = Short { id: Some(id) };
    let b = request_fields(t, &mut r).ok_or(short)?;
    Ok((id, b, r.left()))
}

fn request_fields(t: u8, r: &mut Reader<'_>) -> Option<ReqBody> {
    Some(match t {
        ty::OPEN => ReqBody::Open {
            path: r.bytes()?,
            pflags: r.u32()?,
            attrs: r.attrs()?,
        },
        ty::CLOSE => ReqBody::Close { handle: r.bytes()? },
        ty::READ => ReqBody::Read {
            handle: r.bytes()?,
            offset: r.u64()?,
            len: r.u32()?,
        },
        ty::WRITE => ReqBody::Write {
            handle: r.bytes()?,
            offset: r.u64()?,
            len: r.u32()?,
        },
        ty::LSTAT => ReqBody::Lstat { path: r.bytes()? },
        ty::FSTAT => ReqBody::Fstat { handle: r.bytes()? },
        ty::SETSTAT => ReqBody::Setstat {
            path: r.bytes()?,
            attrs: r.attrs()?,
        },
        ty::FSETSTAT => ReqBody::Fsetstat {
            handle: r.bytes()?,
            attrs: r.attrs()?,
        },
        ty::OPENDIR => ReqBody::Opendir { path: r.bytes()? },
        ty::READDIR => ReqBody::Readdir { handle: r.bytes()? },
        ty::REMOVE => ReqBody::Remove { path: r.bytes()? },
        ty::MKDIR => ReqBody::Mkdir {
            path: r.bytes()?,
            attrs: r.attrs()?,
        },
        ty::RMDIR => ReqBody::Rmdir { path: r.bytes()? },
        ty::REALPATH => ReqBody::Realpath { path: r.bytes()? },
        ty::STAT => ReqBody::Stat { path: r.bytes()? },
        ty::RENAME => ReqBody::Rename {
            old: r.bytes()?,
            new: r.bytes()?,
        },
        ty::READLINK => ReqBody::Readlink { path: r.bytes()? },
        ty::SYMLINK => ReqBody::Symlink {
            target: r.bytes()?,
            link: r.bytes()?,
        },
        ty::EXTENDED => {
            let name = r.bytes()?;
            let ext = ext_request(Ext::from_name(&name), r)?;
            ReqBody::Extended { name, ext }
        }
        _ => return None,
    })
}

/// A string holding a list of uint32 (users-groups-by-id's ids).
fn u32_list(s: &[u8]) -> Option<Vec<u32>> {
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut r = Reader::new(s);
    let mut v = Vec::with_capacity(s.len() / 4);
    while r.left() > 0 {
        v.push(r.u32()?);
    }
    Some(v)
}

/// A string holding a list of strings (users-groups-by-id's names).
fn string_list(s: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader::new(s);
    let mut v = Vec::new();
    while r.left() > 0 {
        v.push(r.bytes()?);
    }
    Some(v)
}

fn ext_request(e: Ext, r: &mut Reader<'_>) -> Option<ExtRequest> {
    Some(match e {
        Ext::PosixRename => ExtRequest::PosixRename {
            old: r.bytes()?,
            new: r.bytes()?,
        },
        Ext::Statvfs => ExtRequest::Statvfs { path: r.bytes()? },
        Ext::Fstatvfs => ExtRequest::Fstatvfs { handle: r.bytes()? },
        Ext::Hardlink => ExtRequest::Hardlink {
            old: r.bytes()?,
            new: r.bytes()?,
        },
        Ext::Fsync => ExtRequest::Fsync { handle: r.bytes()? },
        Ext::Lsetstat => ExtRequest::Lsetstat {
            path: r.bytes()?,
            attrs: r.attrs()?,
        },
        Ext::Limits => ExtRequest::Limits,
        Ext::ExpandPath => ExtRequest::ExpandPath { path: r.bytes()? },
        Ext::CopyData => ExtRequest::CopyData {
            read_handle: r.bytes()?,
            read_offset: r.u64()?,
            read_len: r.u64()?,
            write_handle: r.bytes()?,
            write_offset: r.u64()?,
        },
        Ext::HomeDirectory => ExtRequest::HomeDirectory { user: r.bytes()? },
        Ext::UsersGroupsById => ExtRequest::UsersGroupsById {
            uids: u32_list(r.string()?)?,
            gids: u32_list(r.string()?)?,
        },
        Ext::Other => ExtRequest::Other {
            data: r.rest().to_vec(),
        },
    })
}

/// Reads a reply of type `t` (not VERSION) from the bytes after its type;
/// `op` (the request it answers, if known) selects an EXTENDED_REPLY's format.
pub(crate) fn parse_reply(t: u8, body: &[u8], op: Option<Op>) -> Result<(u32, ReplyBody, usize), Short> {
    let mut r = Reader::new(body);
    let id = r.u32().ok_or(Short { id: None })?;
    let short = Short { id: Some(id) };
    let b = reply_fields(t, &mut r, op).ok_or(short)?;
    Ok((id, b, r.left()))
}

fn reply_fields(t: u8, r: &mut Reader<'_>, op: Option<Op>) -> Option<ReplyBody> {
    Some(match t {
        ty::STATUS => {
            let code = r.u32()?;
            // Both strings or neither (version < 3); one alone is short.
            let (message, lang) = if r.left() == 0 {
                (None, None)
            } else {
                (Some(r.bytes()?), Some(r.bytes()?))
            };
            ReplyBody::Status { code, message, lang }
        }
        ty::HANDLE => ReplyBody::Handle { handle: r.bytes()? },
        ty::DATA => ReplyBody::Data { len: r.u32()? },
        ty::NAME => {
            let count = r.u32()?;
            // Each entry takes at least 12 bytes: never trust the count.
            let mut names = Vec::with_capacity((count as usize).min(r.left() / 12));
            for _ in 0..count {
                names.push(Name {
                    filename: r.bytes()?,
                    longname: r.bytes()?,
                    attrs: r.attrs()?,
                });
            }
            ReplyBody::Name { names }
        }
        ty::ATTRS => ReplyBody::Attrs { attrs: r.attrs()? },
        ty::EXTENDED_REPLY => ReplyBody::Extended(match op {
            Some(Op::Extended(Ext::Statvfs | Ext::Fstatvfs)) => ExtReply::Statvfs(Statvfs {
                bsize: r.u64()?,
                frsize: r.u64()?,
                blocks: r.u64()?,
                bfree: r.u64()?,
                bavail: r.u64()?,
                files: r.u64()?,
                ffree: r.u64()?,
                favail: r.u64()?,
                fsid: r.u64()?,
                flag: r.u64()?,
                namemax: r.u64()?,
            }),
            Some(Op::Extended(Ext::Limits)) => ExtReply::Limits(Limits {
                max_packet: r.u64()?,
                max_read: r.u64()?,
                max_write: r.u64()?,
                max_open_handles: r.u64()?,
            }),
            Some(Op::Extended(Ext::UsersGroupsById)) => ExtReply::UsersGroups {
                users: string_list(r.string()?)?,
                groups: string_list(r.string()?)?,
            },
            _ => ExtReply::Other {
                data: r.rest().to_vec(),
            },
        }),
        _ => return None,
    })
}

/// Reads INIT or VERSION from the bytes after the type: version, pairs.
pub(crate) fn parse_hello(body: &[u8]) -> Result<(u32, Vec<ExtPair>), Short> {
    let mut r = Reader::new(body);
    let v = r.u32().ok_or(Short { id: None })?;
    let ext = r.pairs().ok_or(Short { id: None })?;
    Ok((v, ext))
}

/// The length of the header a payload packet (WRITE from the client, DATA
/// from the server) needs before its data, counting from the type byte, if
/// `have` (the bytes from the type on) is enough to tell; `None`: need more
/// (at least the returned `Err` count). `Ok(None)`: not a payload packet.
pub(crate) fn payload_header(dir: Dir, have: &[u8]) -> Result<Option<usize>, usize> {
    let Some(&t) = have.first() else {
        return Err(1);
    };
    match (dir, t) {
        // type, id, data length
        (Dir::Out, ty::DATA) => Ok(Some(9)),
        // type, id, handle string, offset, data length
        (Dir::In, ty::WRITE) => {
            let Some(n) = have.get(5..9) else {
                return Err(9);
            };
            let n = u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize;
            Ok(Some(9usize.saturating_add(n).saturating_add(12)))
        }
        _ => Ok(None),
    }
}

/// The data length a complete payload header declares (its last uint32).
pub(crate) fn payload_len(header: &[u8]) -> Option<u32> {
    let n = header.len();
    let b = header.get(n.checked_sub(4)?..)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
