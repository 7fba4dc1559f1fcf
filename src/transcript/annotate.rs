//! How a protocol message appears in a transcript: its line [`Kind`], its
//! annotation text and its JSON Lines `msg` object. The protocol layer frames
//! messages; only this module renders them.
//!
//! The vocabulary here ([`note`], [`msg_json`]) is part of the transcript
//! format: the text parser, `check`, `show --summary` and docs/decoder.md depend
//! on it, so change it only together with them.

use serde_json::{Value, json};

use super::Kind;
use crate::escape::escape;
use crate::protocol::scp::Msg;

/// The transcript line kind for this message.
pub fn kind(msg: &Msg) -> Kind {
    match msg {
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
pub fn note(msg: &Msg) -> String {
    match msg {
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
pub fn msg_json(msg: &Msg) -> Value {
    match msg {
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
        for (msg, want) in cases {
            assert_eq!(note(&msg), want, "{msg:?}");
        }
    }

    #[test]
    fn names_are_escaped_never_lost() {
        let m = file(b"a\tb\n\"\\\xff");
        assert_eq!(note(&m), "file \"a\\tb\\n\"\\\\\\xff\", 21 B, mode 0644");
        assert!(!note(&m).contains('\t'));
        let j = msg_json(&m);
        let back = crate::escape::unescape(j["name"].as_str().unwrap().as_bytes()).unwrap();
        assert_eq!(back, b"a\tb\n\"\\\xff");
    }

    #[test]
    fn json_shapes() {
        assert_eq!(
            msg_json(&file(b"a")),
            json!({"type":"file","mode":"0644","size":21,"name":"a"})
        );
        assert_eq!(
            msg_json(&Msg::File {
                mode: 0o4755,
                size: 1 << 40,
                name: b"big".to_vec()
            }),
            json!({"type":"file","mode":"4755","size":1u64 << 40,"name":"big"})
        );
        assert_eq!(
            msg_json(&Msg::Dir {
                mode: 0o700,
                name: b"d".to_vec()
            }),
            json!({"type":"dir","mode":"0700","name":"d"})
        );
        assert_eq!(
            msg_json(&Msg::EndDir { name: None }),
            json!({"type":"end_dir","name":null})
        );
        assert_eq!(
            msg_json(&Msg::EndDir {
                name: Some(b"d".to_vec())
            }),
            json!({"type":"end_dir","name":"d"})
        );
        assert_eq!(
            msg_json(&Msg::Times {
                mtime: 1,
                mtime_us: 2,
                atime: 3,
                atime_us: 4
            }),
            json!({"type":"times","mtime":1,"mtime_us":2,"atime":3,"atime_us":4})
        );
        assert_eq!(msg_json(&Msg::Ack), json!({"type":"ack"}));
        assert_eq!(
            msg_json(&Msg::Warning(b"w\x01".to_vec())),
            json!({"type":"warning","text":"w\\x01"})
        );
        assert_eq!(
            msg_json(&Msg::Fatal(b"f".to_vec())),
            json!({"type":"fatal","text":"f"})
        );
        assert_eq!(
            msg_json(&Msg::Data {
                name: b"a".to_vec(),
                size: 3,
                seen: 2,
                complete: false
            }),
            json!({"type":"data","name":"a","size":3,"seen":2,"complete":false})
        );
        assert_eq!(
            msg_json(&Msg::DataEnd { name: b"a".to_vec() }),
            json!({"type":"data_end","name":"a"})
        );
        assert_eq!(msg_json(&Msg::BadRecord), json!({"type":"bad_record"}));
        assert_eq!(msg_json(&Msg::Text), json!({"type":"text"}));
    }

    #[test]
    fn kinds() {
        assert_eq!(kind(&file(b"a")), Kind::Record);
        assert_eq!(kind(&Msg::BadRecord), Kind::Record);
        assert_eq!(kind(&Msg::EndDir { name: None }), Kind::Record);
        assert_eq!(kind(&Msg::Ack), Kind::Ack);
        assert_eq!(kind(&Msg::Warning(vec![])), Kind::Warning);
        assert_eq!(kind(&Msg::Fatal(vec![])), Kind::Fatal);
        assert_eq!(kind(&Msg::DataEnd { name: vec![] }), Kind::DataEnd);
        assert_eq!(
            kind(&Msg::Data {
                name: vec![],
                size: 0,
                seen: 0,
                complete: true
            }),
            Kind::Data
        );
        assert_eq!(kind(&Msg::Text), Kind::Text);
    }
}
