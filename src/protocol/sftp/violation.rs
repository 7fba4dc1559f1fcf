//! The SFTP decoder's findings, as typed values: a stable kebab-case name for
//! `check`, filters and scripts, and the values a writer needs to render a
//! sentence. One finding per root cause (design §4); docs/sftp-decoder.md
//! lists them all.

use super::Dir;
use super::msg::{Op, RequestRef};

/// Which finding; its `as_str` is stable (documented, used by `check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationName {
    NotSftp,
    TooLong,
    DecoderLimit,
    ShortPacket,
    LongPacket,
    UnexpectedType,
    Truncated,
    UnknownId,
    DuplicateId,
    WrongReply,
    Unsupported,
    StaleTail,
    StatusError,
    ClosedHandle,
    UnknownHandle,
    Outstanding,
    NoReply,
}

impl ViolationName {
    pub const ALL: [ViolationName; 17] = [
        ViolationName::NotSftp,
        ViolationName::TooLong,
        ViolationName::DecoderLimit,
        ViolationName::ShortPacket,
        ViolationName::LongPacket,
        ViolationName::UnexpectedType,
        ViolationName::Truncated,
        ViolationName::UnknownId,
        ViolationName::DuplicateId,
        ViolationName::WrongReply,
        ViolationName::Unsupported,
        ViolationName::StaleTail,
        ViolationName::StatusError,
        ViolationName::ClosedHandle,
        ViolationName::UnknownHandle,
        ViolationName::Outstanding,
        ViolationName::NoReply,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ViolationName::NotSftp => "not-sftp",
            ViolationName::TooLong => "too-long",
            ViolationName::DecoderLimit => "decoder-limit",
            ViolationName::ShortPacket => "short-packet",
            ViolationName::LongPacket => "long-packet",
            ViolationName::UnexpectedType => "unexpected-type",
            ViolationName::Truncated => "truncated",
            ViolationName::UnknownId => "unknown-id",
            ViolationName::DuplicateId => "duplicate-id",
            ViolationName::WrongReply => "wrong-reply",
            ViolationName::Unsupported => "unsupported",
            ViolationName::StaleTail => "stale-tail",
            ViolationName::StatusError => "status-error",
            ViolationName::ClosedHandle => "closed-handle",
            ViolationName::UnknownHandle => "unknown-handle",
            ViolationName::Outstanding => "outstanding",
            ViolationName::NoReply => "no-reply",
        }
    }
}

/// The packet a direction must start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Init,
    Version,
}

/// Which length limit a packet passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// OpenSSH's `SFTP_MAX_MSG_LENGTH` (256 KiB): its client and server drop
    /// the connection ("Received message too long", "bad message").
    OpenSsh,
    /// The max-packet-length of the server's limits@openssh.com reply.
    MaxPacket,
    /// The max-write-length of the server's limits@openssh.com reply.
    MaxWrite,
}

/// Which of the decoder's own bounds was reached (a tracing limit, not the
/// peers' fault; docs/sftp-decoder.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// [`super::REQUESTS_CAP`] outstanding requests: later ones are not remembered.
    Requests,
    /// [`super::HANDLES_CAP`] open handles: later ones are not mapped to paths.
    Handles,
    /// A packet's fields over [`super::MAX_PACKET`] bytes: framed, not decoded.
    Header,
}

/// Why a type was not expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unexpected {
    /// Version 3 defines no such type.
    Unknown,
    /// A reply type from the client, or a request type from the server.
    WrongDirection,
    /// INIT or VERSION again, after the session started.
    Repeated,
}

/// What a writer needs to say what happened; one variant per name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// The direction does not start with INIT/VERSION: `text` is up to
    /// [`super::QUOTE_CAP`] bytes of it from its first byte (shell output),
    /// `len` the uint32 its first four bytes make (1466264675 for "Welc"),
    /// `ty` the type byte if one was read. The rest of the direction is
    /// framed raw.
    NotSftp {
        expected: Expected,
        text: Vec<u8>,
        len: u32,
        ty: Option<u8>,
    },
    /// A packet of `len` bytes (data bytes for `MaxWrite`) over `limit`.
    /// Past OpenSSH's own limit the rest of the direction is framed raw.
    TooLong {
        len: u64,
        limit: u64,
        which: Limit,
    },
    DecoderLimit {
        bound: Bound,
        cap: u64,
    },
    /// A packet of type `ty` (`None`: no type byte) whose `len` bytes do not
    /// hold its fields.
    ShortPacket {
        ty: Option<u8>,
        id: Option<u32>,
        len: u32,
    },
    /// A packet of type `ty` with `extra` bytes past its fields (OpenSSH's
    /// server ignores them).
    LongPacket {
        ty: u8,
        id: Option<u32>,
        extra: u32,
    },
    UnexpectedType {
        ty: u8,
        why: Unexpected,
    },
    /// A packet cut by the end of its direction after `seen` of its
    /// 4 + `declared` bytes. When the server's output is cut, the requests
    /// it leaves unanswered are the same root cause: `unanswered` counts
    /// them, `oldest` is the first (no `outstanding` is reported then).
    Truncated {
        ty: Option<u8>,
        id: Option<u32>,
        declared: Option<u32>,
        seen: u64,
        unanswered: u64,
        oldest: Option<RequestRef>,
    },
    /// A reply of type `ty` whose id no outstanding request has.
    UnknownId {
        id: u32,
        ty: u8,
    },
    /// A request whose id is already outstanding (`first` holds it).
    DuplicateId {
        id: u32,
        first: RequestRef,
    },
    /// A reply of type `ty` that `req` cannot be answered with.
    WrongReply {
        ty: u8,
        req: RequestRef,
    },
    /// `req` was answered OP_UNSUPPORTED (the first of its kind).
    Unsupported {
        req: RequestRef,
    },
    /// `req` (FSETSTAT, SETSTAT or lsetstat with a size) failed with `code`
    /// on a file opened for WRITE without TRUNC: the file at `path` may keep
    /// bytes past `size` (OpenSSH's scp relies on this FSETSTAT to truncate).
    StaleTail {
        req: RequestRef,
        path: Option<Vec<u8>>,
        size: u64,
        code: u32,
    },
    /// `req` failed with `code` and `message` (up to [`super::QUOTE_CAP`] bytes).
    StatusError {
        req: RequestRef,
        code: u32,
        message: Vec<u8>,
    },
    /// An `op` request used `handle` after its CLOSE (`path`: what it was).
    ClosedHandle {
        handle: Vec<u8>,
        path: Option<Vec<u8>>,
        op: Op,
    },
    /// An `op` request used a `handle` the server never issued.
    UnknownHandle {
        handle: Vec<u8>,
        op: Op,
    },
    /// The session ended with `count` requests unanswered; `first` the oldest.
    Outstanding {
        count: u64,
        first: RequestRef,
    },
    /// The server sent no byte at all; `count` requests (`first`: INIT)
    /// unanswered. `first` is None when no byte came from the client either
    /// (none reached the server: a transport that exited before reading).
    NoReply {
        count: u64,
        first: Option<RequestRef>,
    },
}

impl Detail {
    /// The name this detail belongs to.
    pub fn name(&self) -> ViolationName {
        match self {
            Detail::NotSftp { .. } => ViolationName::NotSftp,
            Detail::TooLong { .. } => ViolationName::TooLong,
            Detail::DecoderLimit { .. } => ViolationName::DecoderLimit,
            Detail::ShortPacket { .. } => ViolationName::ShortPacket,
            Detail::LongPacket { .. } => ViolationName::LongPacket,
            Detail::UnexpectedType { .. } => ViolationName::UnexpectedType,
            Detail::Truncated { .. } => ViolationName::Truncated,
            Detail::UnknownId { .. } => ViolationName::UnknownId,
            Detail::DuplicateId { .. } => ViolationName::DuplicateId,
            Detail::WrongReply { .. } => ViolationName::WrongReply,
            Detail::Unsupported { .. } => ViolationName::Unsupported,
            Detail::StaleTail { .. } => ViolationName::StaleTail,
            Detail::StatusError { .. } => ViolationName::StatusError,
            Detail::ClosedHandle { .. } => ViolationName::ClosedHandle,
            Detail::UnknownHandle { .. } => ViolationName::UnknownHandle,
            Detail::Outstanding { .. } => ViolationName::Outstanding,
            Detail::NoReply { .. } => ViolationName::NoReply,
        }
    }
}

/// A finding. `dir` is the direction of the packet it concerns (emitted just
/// before that packet's Frame); `None` for the session-level ones that
/// [`super::Decoder::finish`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub name: ViolationName,
    pub dir: Option<Dir>,
    pub detail: Detail,
}

impl Violation {
    /// A finding whose name follows from its detail.
    pub fn new(dir: Option<Dir>, detail: Detail) -> Violation {
        Violation {
            name: detail.name(),
            dir,
            detail,
        }
    }
}
