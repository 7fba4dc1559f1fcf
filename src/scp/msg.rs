//! The messages of the legacy SCP protocol as the decoder frames them, with the
//! annotation text and the JSON object the transcript writers attach to them.
//!
//! The vocabulary here (`Msg::note`, `Msg::to_json`) is part of the transcript
//! format: the text parser, `check`, `show --summary` and docs/decoder.md depend
//! on it, so change it only together with them.

use serde_json::{Value, json};

use crate::escape::escape;
use crate::transcript::Kind;

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

impl Msg {
    /// The transcript line kind for this message.
    pub fn kind(&self) -> Kind {
        match self {
            Msg::File { .. } | Msg::Dir { .. } | Msg::EndDir { .. } | Msg::Times { .. } => Kind::Record,
            Msg::BadRecord => Kind::Record,
            Msg::Ack => Kind::Ack,
            Msg::Warning(_) => Kind::Warning,
            Msg::Fatal(_) => Kind::Fatal,
            Msg::Data { .. } => Kind::Data,
            Msg::DataEnd { .. } => Kind::DataEnd,
            Msg::Text => Kind::Text,
        }
    }

    /// The annotation, without the leading `# ` (docs/decoder.md lists them).
    pub fn note(&self) -> String {
        match self {
            Msg::File { mode, size, name } => {
                format!("file \"{}\", {size} B, mode {}", escape(name), fmt_mode(*mode))
            }
            Msg::Dir { mode, name } => {
                format!("enter dir \"{}\", mode {}", escape(name), fmt_mode(*mode))
            }
            Msg::EndDir { name: Some(name) } => format!("leave dir \"{}\"", escape(name)),
            Msg::EndDir { name: None } => "leave dir".to_string(),
            Msg::Times {
                mtime,
                mtime_us,
                atime,
                atime_us,
            } => {
                format!("times mtime {mtime}.{mtime_us:06} atime {atime}.{atime_us:06}")
            }
            Msg::Ack => "ack".to_string(),
            Msg::Warning(text) => format!("warning: {}", escape(text)),
            Msg::Fatal(text) => format!("error: {}", escape(text)),
            Msg::Data {
                name,
                size,
                seen,
                complete: true,
            } if seen == size => {
                format!("data of \"{}\", {size} B", escape(name))
            }
            Msg::Data { name, size, seen, .. } => {
                format!("data of \"{}\", {seen} of {size} B, incomplete", escape(name))
            }
            Msg::DataEnd { name } => format!("end of \"{}\"", escape(name)),
            Msg::BadRecord => "bad record".to_string(),
            Msg::Text => "text".to_string(),
        }
    }

    /// The `msg` object of a JSON Lines event. Byte strings (names, texts) are
    /// written in the transcript's escaped form, so no byte is lost and the value
    /// is always valid UTF-8 (ASCII).
    pub fn to_json(&self) -> Value {
        match self {
            Msg::File { mode, size, name } => json!({
                "type": "file", "mode": fmt_mode(*mode), "size": size, "name": escape(name),
            }),
            Msg::Dir { mode, name } => json!({
                "type": "dir", "mode": fmt_mode(*mode), "name": escape(name),
            }),
            Msg::EndDir { name } => json!({
                "type": "end_dir", "name": name.as_deref().map(escape),
            }),
            Msg::Times {
                mtime,
                mtime_us,
                atime,
                atime_us,
            } => json!({
                "type": "times", "mtime": mtime, "mtime_us": mtime_us,
                "atime": atime, "atime_us": atime_us,
            }),
            Msg::Ack => json!({ "type": "ack" }),
            Msg::Warning(text) => json!({ "type": "warning", "text": escape(text) }),
            Msg::Fatal(text) => json!({ "type": "fatal", "text": escape(text) }),
            Msg::Data {
                name,
                size,
                seen,
                complete,
            } => json!({
                "type": "data", "name": escape(name), "size": size, "seen": seen,
                "complete": complete,
            }),
            Msg::DataEnd { name } => json!({ "type": "data_end", "name": escape(name) }),
            Msg::BadRecord => json!({ "type": "bad_record" }),
            Msg::Text => json!({ "type": "text" }),
        }
    }
}

/// A mode as scp writes it: at least four octal digits (`0644`, `4755`).
fn fmt_mode(mode: u32) -> String {
    format!("{mode:04o}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &[u8]) -> Msg {
        Msg::File {
            mode: 0o644,
            size: 21,
            name: name.to_vec(),
        }
    }

    #[test]
    fn notes_follow_the_vocabulary() {
        let cases: Vec<(Msg, &str)> = vec![
            (file(b"a"), "file \"a\", 21 B, mode 0644"),
            (
                Msg::Dir {
                    mode: 0o755,
                    name: b"src".to_vec(),
                },
                "enter dir \"src\", mode 0755",
            ),
            (
                Msg::EndDir {
                    name: Some(b"src".to_vec()),
                },
                "leave dir \"src\"",
            ),
            (Msg::EndDir { name: None }, "leave dir"),
            (
                Msg::Times {
                    mtime: 1_700_000_000,
                    mtime_us: 0,
                    atime: 1_700_000_001,
                    atime_us: 42,
                },
                "times mtime 1700000000.000000 atime 1700000001.000042",
            ),
            (Msg::Ack, "ack"),
            (
                Msg::Warning(b"scp: x: No such file or directory".to_vec()),
                "warning: scp: x: No such file or directory",
            ),
            (Msg::Fatal(b"scp: bad".to_vec()), "error: scp: bad"),
            (
                Msg::Data {
                    name: b"a".to_vec(),
                    size: 21,
                    seen: 21,
                    complete: true,
                },
                "data of \"a\", 21 B",
            ),
            (
                Msg::Data {
                    name: b"a".to_vec(),
                    size: 21,
                    seen: 5,
                    complete: false,
                },
                "data of \"a\", 5 of 21 B, incomplete",
            ),
            (Msg::DataEnd { name: b"a".to_vec() }, "end of \"a\""),
            (Msg::BadRecord, "bad record"),
            (Msg::Text, "text"),
        ];
        for (msg, note) in cases {
            assert_eq!(msg.note(), note, "{msg:?}");
        }
    }

    #[test]
    fn names_are_escaped_never_lost() {
        let m = file(b"a\tb\n\"\\\xff");
        assert_eq!(m.note(), "file \"a\\tb\\n\"\\\\\\xff\", 21 B, mode 0644");
        assert!(!m.note().contains('\t'));
        let j = m.to_json();
        let back = crate::escape::unescape(j["name"].as_str().unwrap().as_bytes()).unwrap();
        assert_eq!(back, b"a\tb\n\"\\\xff");
    }

    #[test]
    fn json_shapes() {
        assert_eq!(
            file(b"a").to_json(),
            json!({"type":"file","mode":"0644","size":21,"name":"a"})
        );
        assert_eq!(
            Msg::File {
                mode: 0o4755,
                size: 1 << 40,
                name: b"big".to_vec()
            }
            .to_json(),
            json!({"type":"file","mode":"4755","size":1u64 << 40,"name":"big"})
        );
        assert_eq!(
            Msg::Dir {
                mode: 0o700,
                name: b"d".to_vec()
            }
            .to_json(),
            json!({"type":"dir","mode":"0700","name":"d"})
        );
        assert_eq!(
            Msg::EndDir { name: None }.to_json(),
            json!({"type":"end_dir","name":null})
        );
        assert_eq!(
            Msg::EndDir {
                name: Some(b"d".to_vec())
            }
            .to_json(),
            json!({"type":"end_dir","name":"d"})
        );
        assert_eq!(
            Msg::Times {
                mtime: 1,
                mtime_us: 2,
                atime: 3,
                atime_us: 4
            }
            .to_json(),
            json!({"type":"times","mtime":1,"mtime_us":2,"atime":3,"atime_us":4})
        );
        assert_eq!(Msg::Ack.to_json(), json!({"type":"ack"}));
        assert_eq!(
            Msg::Warning(b"w\x01".to_vec()).to_json(),
            json!({"type":"warning","text":"w\\x01"})
        );
        assert_eq!(
            Msg::Fatal(b"f".to_vec()).to_json(),
            json!({"type":"fatal","text":"f"})
        );
        assert_eq!(
            Msg::Data {
                name: b"a".to_vec(),
                size: 3,
                seen: 2,
                complete: false
            }
            .to_json(),
            json!({"type":"data","name":"a","size":3,"seen":2,"complete":false})
        );
        assert_eq!(
            Msg::DataEnd { name: b"a".to_vec() }.to_json(),
            json!({"type":"data_end","name":"a"})
        );
        assert_eq!(Msg::BadRecord.to_json(), json!({"type":"bad_record"}));
        assert_eq!(Msg::Text.to_json(), json!({"type":"text"}));
    }

    #[test]
    fn kinds() {
        assert_eq!(file(b"a").kind(), Kind::Record);
        assert_eq!(Msg::BadRecord.kind(), Kind::Record);
        assert_eq!(Msg::EndDir { name: None }.kind(), Kind::Record);
        assert_eq!(Msg::Ack.kind(), Kind::Ack);
        assert_eq!(Msg::Warning(vec![]).kind(), Kind::Warning);
        assert_eq!(Msg::Fatal(vec![]).kind(), Kind::Fatal);
        assert_eq!(Msg::DataEnd { name: vec![] }.kind(), Kind::DataEnd);
        assert_eq!(
            Msg::Data {
                name: vec![],
                size: 0,
                seen: 0,
                complete: true
            }
            .kind(),
            Kind::Data
        );
        assert_eq!(Msg::Text.kind(), Kind::Text);
    }
}
