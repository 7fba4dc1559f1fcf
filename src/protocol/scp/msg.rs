//! The messages of the legacy SCP protocol as the decoder frames them. How a
//! transcript renders them (annotation, JSON, line kind) is
//! `transcript::annotate`.

/// One protocol message, framed by [`super::decode::Decoder`].
///
/// Names and texts are the raw bytes from the wire (SCP names are arbitrary
/// bytes); they are escaped only when rendered. A warning's or fatal error's text
/// and a record's name hold at most the decoder's line cap (4 KiB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// `C<mode> <size> <name>\n`: a regular file follows.
    File { mode: u32, size: u64, name: Vec<u8> },
    /// `D<mode> 0 <name>\n`: enter a directory (only with `-r`).
    Dir { mode: u32, name: Vec<u8> },
    /// `E\n`: leave the directory entered last; `name` is that directory's name
    /// when the decoder knows it (`None` for an unbalanced `E`, or one beyond
    /// the remembered depth).
    EndDir { name: Option<Vec<u8>> },
    /// `T<mtime> <mtime_us> <atime> <atime_us>\n`: times for the next `C`/`D`.
    Times {
        mtime: u64,
        mtime_us: u64,
        atime: u64,
        atime_us: u64,
    },
    /// `\0` from the sink: ready, or the record/file before it is accepted.
    Ack,
    /// `\x01TEXT\n`: a warning; the transfer goes on. Without `\x01` and `\n`.
    Warning(Vec<u8>),
    /// `\x02TEXT\n`: a fatal error; the sender ends. Without `\x02` and `\n`.
    Fatal(Vec<u8>),
    /// A file's contents: one frame for the whole file. `seen` bytes of `size`
    /// passed; `complete` is false only when the stream ended first.
    Data {
        name: Vec<u8>,
        size: u64,
        seen: u64,
        complete: bool,
    },
    /// The `\0` the source sends after a file's contents.
    DataEnd { name: Vec<u8> },
    /// A line that is not a valid record; the violation after it says why.
    BadRecord,
    /// Bytes that are not protocol: output before the protocol started, bytes
    /// after the end, a reply line that is garbage.
    Text,
}
