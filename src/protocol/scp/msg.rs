//! What the SCP decoder reports, as typed values: the messages it frames,
//! the notes it attaches to consequences, and the violations it finds.
//! Nothing here renders text: the transcript writers alone turn these into
//! annotations, sentences and JSON (src/transcript/annotate.rs).
//!
//! Names and texts are the raw bytes from the wire (SCP names are arbitrary
//! bytes), never lossy UTF-8; each is at most one line (2,048 bytes).

use super::Dir;
use super::record::{Lint, NameProblem, Refusal};

/// One protocol message, as the real scp reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// `C<mode> <size> <name>\n`: a regular file follows.
    File { mode: u32, size: u64, name: Vec<u8> },
    /// `D<mode> 0 <name>\n`: enter a directory (only with `-r`).
    Dir { mode: u32, name: Vec<u8> },
    /// `E\n`: leave the directory entered last; `name` is that directory's
    /// name when the decoder knows it.
    EndDir { name: Option<Vec<u8>> },
    /// `T<mtime> <mtime_us> <atime> <atime_us>\n`: times for the next `C`/`D`.
    Times {
        mtime: u64,
        mtime_us: u64,
        atime: u64,
        atime_us: u64,
    },
    /// `\0` from the sink: ready, or the message it answers is accepted.
    Ack,
    /// `\x01TEXT\n`: a warning (the transfer goes on). Without `\x01`/`\n`.
    Warning(Vec<u8>),
    /// `\x02TEXT\n`: a fatal error; its sender ends. Without `\x02`/`\n`.
    Fatal(Vec<u8>),
    /// A file's contents: one frame for the whole file. `seen` bytes of
    /// `size` passed; `complete` is false only when the stream ended first.
    Data {
        name: Vec<u8>,
        size: u64,
        seen: u64,
        complete: bool,
    },
    /// The `\0` the source sends after a file's contents.
    DataEnd { name: Vec<u8> },
    /// A line the sink reads as a record and refuses (OpenSSH answers
    /// `\x01scp: …` and exits); `why` is its reason.
    BadRecord { why: Refusal },
    /// A reply that is not `\0`, `\x01` or `\x02`: OpenSSH's `response()`
    /// reads the byte and the rest of the line as an error message, and exits.
    /// The text is the whole line, first byte included.
    BadReply(Vec<u8>),
    /// Bytes that are not protocol: nobody reads them as such (see the
    /// frame's [`Note`]).
    Text,
}

/// A message that awaits the other side's reply, named for sentences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaited {
    /// The sink's first `\0` (it speaks first).
    Ready,
    Times,
    File(Vec<u8>),
    Dir(Vec<u8>),
    EndDir,
    /// The end of a file's data (its `\0`, or an error line in its place).
    DataEnd(Vec<u8>),
    /// A line the sink refuses (its answer is an error).
    Bad,
}

/// What a reply was, named for sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Ack,
    Warning,
    Fatal,
    Bad,
}

/// Why nobody reads a direction's bytes as protocol any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its sender sent a fatal error (`\x02`).
    OwnFatal,
    /// The sink refused a line and exited (OpenSSH's `SCREWUP`).
    SinkRefused,
    /// The sink read an `E` with no directory open and returned.
    SinkReturned,
    /// The sink read a bad end byte after a file's data and exited.
    SinkBadEnd,
    /// The source read a bad reply (`response()` exits on it).
    SourceBadReply,
}

/// A note on a frame that is the consequence of something reported earlier,
/// or a later instance of a once-per-session finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Nobody reads these bytes as protocol (why).
    Unread(Ended),
    /// The sink reads these bytes, sent as the data of a file it refused, as records.
    MisreadData(Vec<u8>),
    /// The rest of a line cut at the sink's 2,047-byte buffer, read as the next record.
    LineRest,
    /// The source's error in place of a file's `\0` (its read failed).
    InPlaceOfEnd(Vec<u8>),
}

/// A protocol violation's stable name (kebab-case in transcripts, `check`
/// and scripts; docs/decoder.md lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Name {
    OutputBeforeProtocol,
    RecordInsteadOfAck,
    AckInsteadOfRecord,
    BadAck,
    BadMode,
    BadSize,
    BadTimes,
    BadName,
    NameDot,
    NameSlash,
    NameTooLong,
    DirWithoutR,
    UnknownRecord,
    BadEnd,
    UnbalancedEnd,
    UnclosedDirs,
    DataShort,
    MissingDataEnd,
    DataBeforeAck,
    AcksAhead,
    ExtraReply,
    UnexpectedReply,
    MissingReply,
    LineWithoutNewline,
    LineTooLong,
    BytesAfterEnd,
    TimesWithoutFile,
}

impl Name {
    pub const ALL: [Name; 27] = [
        Name::OutputBeforeProtocol,
        Name::RecordInsteadOfAck,
        Name::AckInsteadOfRecord,
        Name::BadAck,
        Name::BadMode,
        Name::BadSize,
        Name::BadTimes,
        Name::BadName,
        Name::NameDot,
        Name::NameSlash,
        Name::NameTooLong,
        Name::DirWithoutR,
        Name::UnknownRecord,
        Name::BadEnd,
        Name::UnbalancedEnd,
        Name::UnclosedDirs,
        Name::DataShort,
        Name::MissingDataEnd,
        Name::DataBeforeAck,
        Name::AcksAhead,
        Name::ExtraReply,
        Name::UnexpectedReply,
        Name::MissingReply,
        Name::LineWithoutNewline,
        Name::LineTooLong,
        Name::BytesAfterEnd,
        Name::TimesWithoutFile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Name::OutputBeforeProtocol => "output-before-protocol",
            Name::RecordInsteadOfAck => "record-instead-of-ack",
            Name::AckInsteadOfRecord => "ack-instead-of-record",
            Name::BadAck => "bad-ack",
            Name::BadMode => "bad-mode",
            Name::BadSize => "bad-size",
            Name::BadTimes => "bad-times",
            Name::BadName => "bad-name",
            Name::NameDot => "name-dot",
            Name::NameSlash => "name-slash",
            Name::NameTooLong => "name-too-long",
            Name::DirWithoutR => "dir-without-r",
            Name::UnknownRecord => "unknown-record",
            Name::BadEnd => "bad-end",
            Name::UnbalancedEnd => "unbalanced-end",
            Name::UnclosedDirs => "unclosed-dirs",
            Name::DataShort => "data-short",
            Name::MissingDataEnd => "missing-data-end",
            Name::DataBeforeAck => "data-before-ack",
            Name::AcksAhead => "acks-ahead",
            Name::ExtraReply => "extra-reply",
            Name::UnexpectedReply => "unexpected-reply",
            Name::MissingReply => "missing-reply",
            Name::LineWithoutNewline => "line-without-newline",
            Name::LineTooLong => "line-too-long",
            Name::BytesAfterEnd => "bytes-after-end",
            Name::TimesWithoutFile => "times-without-file",
        }
    }

    pub fn named(s: &str) -> Option<Name> {
        Name::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// Names reported once per session: they describe how a peer behaves
    /// (it pipelines, it acks ahead), not one message.
    pub fn once_per_session(self) -> bool {
        matches!(
            self,
            Name::DataBeforeAck | Name::AcksAhead | Name::ExtraReply | Name::BadAck
        )
    }
}

/// The values a writer needs to put a violation into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// What was written before the protocol started (capped).
    Text(Vec<u8>),
    /// A line the sink refused: its reason and the line (capped).
    Refused {
        why: Refusal,
        line: Vec<u8>,
    },
    /// A name the sink refused.
    Name {
        problem: NameProblem,
        name: Vec<u8>,
    },
    /// Something OpenSSH accepts but the protocol does not say.
    Lint {
        lint: Lint,
        line: Vec<u8>,
    },
    /// A reply line that is no reply: its first byte and the line (capped).
    BadReply {
        byte: u8,
        line: Vec<u8>,
    },
    /// A record where a reply belongs (capped).
    Record(Vec<u8>),
    /// The source sent `sent` before the reply to `awaited` could have reached it.
    NoWait {
        awaited: Awaited,
        sent: Sent,
    },
    /// The sink answered a message before it could have read it.
    Ahead,
    /// A reply with nothing awaiting one, of this kind.
    Extra {
        reply: ReplyKind,
        text: Vec<u8>,
    },
    /// Counts of what was left unpaired at the end; the first of them.
    Unpaired {
        count: u64,
        first: Option<Awaited>,
    },
    DataShort {
        name: Vec<u8>,
        seen: u64,
        size: u64,
    },
    /// `byte` came where a file's `\0` was due (`None`: the stream ended there).
    MissingDataEnd {
        name: Vec<u8>,
        byte: Option<u8>,
    },
    /// A line of `len` bytes, cut at `max`.
    LineTooLong {
        len: u64,
        max: u64,
    },
    /// The stream ended inside a line of `len` bytes.
    LineWithoutNewline {
        len: u64,
    },
    /// After this direction's own fatal error.
    AfterEnd,
    /// What followed a `T` instead of a `C`/`D`: `T`, `E`, or the end (`None`).
    TimesWithoutFile {
        next: Option<u8>,
    },
    /// Directories never left: how many, and the innermost names (at most five).
    UnclosedDirs {
        depth: u64,
        names: Vec<Option<Vec<u8>>>,
    },
    /// An `E` with no directory open.
    UnbalancedEnd,
    /// The `C`/`D` record had a refused name or was a `D` without `-r`.
    DirWithoutR,
}

/// What the source sent too early, named for sentences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Data(Vec<u8>),
    Record,
    End(Vec<u8>),
}

/// A protocol violation: a name, the direction it concerns (`None` for the
/// session-level ones at the end), and the values for its sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub name: Name,
    pub dir: Option<Dir>,
    pub detail: Detail,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for n in Name::ALL {
            assert_eq!(Name::named(n.as_str()), Some(n));
            assert!(seen.insert(n.as_str()));
            assert!(n.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
        }
        assert_eq!(Name::named("repeated-warning"), None);
    }
}
