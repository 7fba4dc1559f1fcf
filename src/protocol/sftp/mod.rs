//! SFTP version 3 (draft-ietf-secsh-filexfer-02) with OpenSSH's extensions, as
//! OpenSSH's scp has spoken it by default since 9.0: a pure, sans-IO decoder
//! of both directions of one session (docs/sftp-decoder.md).
//!
//! - [`wire`]: the byte readers (u32, u64, string, ATTRS), bounds-checked.
//! - [`msg`]: the typed packets, and what pairing adds to them.
//! - [`violation`]: the typed findings.
//! - [`decode`]: the per-direction framing and the [`Decoder`] API.
//! - [`conv`]: the conversation model: requests paired with replies by id,
//!   handles mapped to paths, the findings that need both directions.
//!
//! Nothing here does I/O, reads a clock or formats a sentence: the tracer
//! drives the decoder, and the transcript writers render what it returns.

pub mod conv;
pub mod decode;
pub mod msg;
pub mod violation;
pub mod wire;

#[cfg(test)]
mod tests;

pub use decode::{Decoder, Event};
pub use msg::{
    Attrs, Ext, ExtPair, ExtReply, ExtRequest, Limits, Msg, Name, Op, Reply, ReplyBody, ReqBody, Request,
    RequestRef, Statvfs,
};
pub use violation::{Bound, Detail, Expected, Limit, Unexpected, Violation, ViolationName};

/// A direction, named from the traced program's point of view: the traced
/// program is the SFTP server (sftp-server), so `In` carries requests.
pub use super::Dir;

/// OpenSSH's `SFTP_MAX_MSG_LENGTH` (sftp-common.h): the longest packet, not
/// counting its length field, that its client and server accept. It is also
/// the largest packet whose fields the decoder buffers (a NAME reply can be
/// that long); WRITE and DATA payloads are counted, never buffered.
pub const MAX_PACKET: u32 = 256 * 1024;
/// Outstanding requests remembered for pairing (OpenSSH pipelines at most 64).
pub const REQUESTS_CAP: usize = 1024;
/// Open handles mapped to their paths.
pub const HANDLES_CAP: usize = 1024;
/// Recently closed handles remembered, to tell "used after CLOSE" from "never issued".
pub const CLOSED_CAP: usize = 64;
/// The longest handle that is tracked: the draft says 256 bytes at most.
pub const HANDLE_CAP: usize = 256;
/// Bytes of a path (or an extension name) kept in a [`RequestRef`] and in the
/// handle map; the request's own frame carries the whole path.
pub const PATH_CAP: usize = 1024;
/// Bytes of text a finding quotes (shell output, a status message).
pub const QUOTE_CAP: usize = 200;

/// STATUS codes of version 3 (sftp.h).
pub mod status {
    pub const OK: u32 = 0;
    pub const EOF: u32 = 1;
    pub const NO_SUCH_FILE: u32 = 2;
    pub const PERMISSION_DENIED: u32 = 3;
    pub const FAILURE: u32 = 4;
    pub const BAD_MESSAGE: u32 = 5;
    pub const NO_CONNECTION: u32 = 6;
    pub const CONNECTION_LOST: u32 = 7;
    pub const OP_UNSUPPORTED: u32 = 8;

    /// The code's name in sftp.h without its `SSH2_FX_` prefix, if it has one.
    pub fn name(code: u32) -> Option<&'static str> {
        Some(match code {
            OK => "OK",
            EOF => "EOF",
            NO_SUCH_FILE => "NO_SUCH_FILE",
            PERMISSION_DENIED => "PERMISSION_DENIED",
            FAILURE => "FAILURE",
            BAD_MESSAGE => "BAD_MESSAGE",
            NO_CONNECTION => "NO_CONNECTION",
            CONNECTION_LOST => "CONNECTION_LOST",
            OP_UNSUPPORTED => "OP_UNSUPPORTED",
            _ => return None,
        })
    }
}

/// OPEN's pflags (sftp.h `SSH2_FXF_*`).
pub mod pflags {
    pub const READ: u32 = 0x01;
    pub const WRITE: u32 = 0x02;
    pub const APPEND: u32 = 0x04;
    pub const CREAT: u32 = 0x08;
    pub const TRUNC: u32 = 0x10;
    pub const EXCL: u32 = 0x20;
}

/// Packet type numbers (sftp.h `SSH2_FXP_*`).
pub mod ty {
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const READ: u8 = 5;
    pub const WRITE: u8 = 6;
    pub const LSTAT: u8 = 7;
    pub const FSTAT: u8 = 8;
    pub const SETSTAT: u8 = 9;
    pub const FSETSTAT: u8 = 10;
    pub const OPENDIR: u8 = 11;
    pub const READDIR: u8 = 12;
    pub const REMOVE: u8 = 13;
    pub const MKDIR: u8 = 14;
    pub const RMDIR: u8 = 15;
    pub const REALPATH: u8 = 16;
    pub const STAT: u8 = 17;
    pub const RENAME: u8 = 18;
    pub const READLINK: u8 = 19;
    pub const SYMLINK: u8 = 20;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const DATA: u8 = 103;
    pub const NAME: u8 = 104;
    pub const ATTRS: u8 = 105;
    pub const EXTENDED: u8 = 200;
    pub const EXTENDED_REPLY: u8 = 201;

    /// The type's name in sftp.h without its `SSH2_FXP_` prefix, if it has one.
    pub fn name(t: u8) -> Option<&'static str> {
        Some(match t {
            INIT => "INIT",
            VERSION => "VERSION",
            OPEN => "OPEN",
            CLOSE => "CLOSE",
            READ => "READ",
            WRITE => "WRITE",
            LSTAT => "LSTAT",
            FSTAT => "FSTAT",
            SETSTAT => "SETSTAT",
            FSETSTAT => "FSETSTAT",
            OPENDIR => "OPENDIR",
            READDIR => "READDIR",
            REMOVE => "REMOVE",
            MKDIR => "MKDIR",
            RMDIR => "RMDIR",
            REALPATH => "REALPATH",
            STAT => "STAT",
            RENAME => "RENAME",
            READLINK => "READLINK",
            SYMLINK => "SYMLINK",
            STATUS => "STATUS",
            HANDLE => "HANDLE",
            DATA => "DATA",
            NAME => "NAME",
            ATTRS => "ATTRS",
            EXTENDED => "EXTENDED",
            EXTENDED_REPLY => "EXTENDED_REPLY",
            _ => return None,
        })
    }

    /// A type a client sends (INIT and the requests).
    pub fn is_request(t: u8) -> bool {
        matches!(t, INIT | OPEN..=SYMLINK | EXTENDED)
    }

    /// A type a server sends (VERSION and the replies).
    pub fn is_reply(t: u8) -> bool {
        matches!(t, VERSION | STATUS..=ATTRS | EXTENDED_REPLY)
    }
}
