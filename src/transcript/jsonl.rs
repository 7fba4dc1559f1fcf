//! The JSON Lines transcript form (`--format jsonl`): one JSON object per
//! event, one event per line, in the order scptrace observed them. This
//! module's documentation is the wire format's specification; it changes only
//! by adding fields or kinds.
//!
//! # Objects
//!
//! Every object has these fields, in this order:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `t` | number or `null` | seconds since the trace started, written with six decimals like the text form's timestamps; `null` when not known (a text transcript recorded without `--timestamps`, converted by `scptrace show --format jsonl`) |
//! | `stream` | string | `stdin`, `stdout` or `stderr` for bytes and `closed` events; `meta` for everything else |
//! | `kind` | string | what the event is: one of the names below |
//!
//! ## Bytes events
//!
//! `kind` is one of `raw` (one read, undecoded), `record` (a `C`/`D`/`E`/`T`
//! control record with its newline), `ack` (`\0` from the sink), `warning`
//! (`\x01…\n`), `fatal` (`\x02…\n`), `data` (a file's contents), `data_end`
//! (the `\0` after a file's contents) or `text` (bytes that are not protocol:
//! a shell banner, stderr text). They add:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `len` | integer | how many bytes passed; more than `bytes` holds when only a file's head is shown (`--data head`, `--data none`) |
//! | `bytes` | string | the bytes shown, escaped exactly as in the text form: printable ASCII except `\` as itself, then `\\`, `\0`, `\n`, `\r`, `\t`, and `\xNN` (two lower-case hex digits) for every other byte. Never lossy: file names are arbitrary bytes |
//! | `note` | string or `null` | the annotation the text form shows after `# ` |
//! | `msg` | object or `null` | the decoded message, when the bytes hold a whole one |
//!
//! `msg` objects, by `type` (byte strings inside are escaped like `bytes`):
//!
//! ```text
//! {"type":"file","mode":"0644","size":21,"name":"a"}        C record
//! {"type":"dir","mode":"0755","size":0,"name":"src"}        D record
//! {"type":"end_dir"}                                        E record
//! {"type":"times","mtime":1700000000,"mtime_usec":0,"atime":1700000000,"atime_usec":0}
//! {"type":"ack"}
//! {"type":"warning","text":"scp: x: Permission denied"}    \x01 reply
//! {"type":"error","text":"scp: x: No such file"}           \x02 reply
//! ```
//!
//! Readers must ignore `msg` types and fields they do not know; the order of
//! keys inside `msg` is not significant.
//!
//! No string holds a raw control character: C0 is written with JSON's
//! escapes, and DEL, C1, the bidirectional controls and U+2028/U+2029 as
//! `\uXXXX` too (`escape::Json`); the value read back is the text as it was.
//!
//! ## Other events
//!
//! | `kind` | extra fields | text form |
//! |---|---|---|
//! | `header` | `key`, `value` (strings) | `# key: value` |
//! | `invocation` | `text`: the argv, shell-quoted | `>>> New command invocation: TEXT` |
//! | `closed` | none; `stream` names the stream | `>>> stdin closed` |
//! | `problem` | `text`; `violation`: the violation's name or `null` for a tracing problem | `!! TEXT` |
//! | `note` | `text` | `>>> TEXT` |
//! | `exit` | `code`: integer, negative for a death by signal | `#: CODE` |
//!
//! # Example
//!
//! ```text
//! {"t":0.000000,"stream":"meta","kind":"header","key":"scptrace","value":"0.1.0"}
//! {"t":0.000310,"stream":"meta","kind":"invocation","text":"/usr/bin/scp -t /tmp"}
//! {"t":0.002911,"stream":"stdout","kind":"ack","len":1,"bytes":"\\0","note":"ack","msg":{"type":"ack"}}
//! {"t":0.003050,"stream":"stdin","kind":"record","len":11,"bytes":"C0644 21 a\\n","note":"file \"a\", 21 B, mode 0644","msg":{"mode":"0644","name":"a","size":21,"type":"file"}}
//! {"t":0.004102,"stream":"stdin","kind":"closed"}
//! {"t":0.004960,"stream":"meta","kind":"exit","code":0}
//! ```
//!
//! # Reading it back
//!
//! [`parse_line`] turns an object back into the event it came from, so
//! `scptrace show` converts text → JSON Lines → text byte for byte. Unknown
//! fields are ignored.

use std::io::{self, Write};

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde::ser::{SerializeMap, Serializer};

use super::parse::{Parsed, is_header_key};
use super::{Bytes, Entry, Event, EventWriter, Kind, Stream, annotate};
use crate::escape::{escape_into, json_serializer, unescape};

/// Writes events as JSON Lines to any `io::Write`.
pub struct JsonlWriter<W: Write> {
    out: W,
    times: bool,
    line: Vec<u8>,
    escaped: Vec<u8>,
}

impl<W: Write> JsonlWriter<W> {
    /// A writer that gives every event its time.
    pub fn new(out: W) -> Self {
        JsonlWriter {
            out,
            times: true,
            line: Vec::with_capacity(256),
            escaped: Vec::with_capacity(256),
        }
    }

    /// Writes one event; `t` is `null` unless `timed`.
    pub fn write_event(&mut self, ev: &Event, timed: bool) -> io::Result<()> {
        self.line.clear();
        render(ev, timed, &mut self.escaped, &mut self.line)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> EventWriter for JsonlWriter<W> {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.write_event(ev, self.times)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Renders one event as a JSON object (no newline) into `out`; `scratch` is
/// a reusable buffer for the escaped bytes.
pub fn render(ev: &Event, timed: bool, scratch: &mut Vec<u8>, out: &mut Vec<u8>) -> io::Result<()> {
    // `t` first, written like the text form's timestamps (six decimals, never
    // in exponent form); the other fields go through serde_json, whose
    // opening brace becomes the comma after `t`.
    out.extend_from_slice(b"{\"t\":");
    if timed {
        write!(out, "{:.6}", ev.t)?;
    } else {
        out.extend_from_slice(b"null");
    }
    let brace = out.len();
    // Through escape::Json: DEL, C1 and bidirectional controls in free text
    // are written as \u escapes, as serde_json writes C0.
    let mut ser = json_serializer(&mut *out);
    let mut m = ser.serialize_map(None)?;
    let stream = match &ev.entry {
        Entry::Bytes(b) => b.stream.name(),
        Entry::Closed(s) => s.name(),
        _ => "meta",
    };
    m.serialize_entry("stream", stream)?;
    match &ev.entry {
        Entry::Header { key, value } => {
            m.serialize_entry("kind", "header")?;
            m.serialize_entry("key", key)?;
            m.serialize_entry("value", value)?;
        }
        Entry::Invocation(text) => {
            m.serialize_entry("kind", "invocation")?;
            m.serialize_entry("text", text)?;
        }
        Entry::Bytes(b) => {
            m.serialize_entry("kind", b.kind.name())?;
            m.serialize_entry("len", &b.len)?;
            scratch.clear();
            escape_into(&b.bytes, scratch);
            // escape_into writes only printable ASCII.
            m.serialize_entry("bytes", std::str::from_utf8(scratch).unwrap_or_default())?;
            m.serialize_entry("note", &annotate::note_text(b))?;
            match b.msg() {
                Some(msg) => annotate::serialize_msg(&mut m, "msg", msg)?,
                None => m.serialize_entry("msg", &())?,
            }
        }
        Entry::Closed(_) => m.serialize_entry("kind", "closed")?,
        Entry::Violation(f) => {
            m.serialize_entry("kind", "problem")?;
            m.serialize_entry("text", &annotate::violation_line(f))?;
            m.serialize_entry("violation", f.name())?;
        }
        Entry::StoredViolation { name, text } => {
            m.serialize_entry("kind", "problem")?;
            m.serialize_entry("text", &format!("{name}: {text}"))?;
            m.serialize_entry("violation", name)?;
        }
        Entry::Problem(text) => {
            m.serialize_entry("kind", "problem")?;
            m.serialize_entry("text", text)?;
            m.serialize_entry("violation", &())?;
        }
        Entry::Note(text) => {
            m.serialize_entry("kind", "note")?;
            m.serialize_entry("text", text)?;
        }
        Entry::Relay(n) if n.is_problem() => {
            m.serialize_entry("kind", "problem")?;
            m.serialize_entry("text", &n.text())?;
            m.serialize_entry("violation", &())?;
        }
        Entry::Relay(n) => {
            m.serialize_entry("kind", "note")?;
            m.serialize_entry("text", &n.text())?;
        }
        Entry::Exit(code) => {
            m.serialize_entry("kind", "exit")?;
            m.serialize_entry("code", code)?;
        }
    }
    m.end()?;
    out[brace] = b',';
    Ok(())
}

/// An object as read, every field optional until its kind says otherwise.
#[derive(Deserialize)]
struct Wire {
    t: Option<f64>,
    stream: String,
    kind: String,
    len: Option<u64>,
    bytes: Option<String>,
    note: Option<String>,
    /// Recovered from `note`, which says the same.
    #[allow(dead_code)]
    msg: Option<IgnoredAny>,
    violation: Option<String>,
    key: Option<String>,
    value: Option<String>,
    text: Option<String>,
    code: Option<i32>,
}

fn need<T>(v: Option<T>, kind: &str, field: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("a `{kind}` object needs `{field}`"))
}

fn stream_named(name: &str) -> Option<Stream> {
    match name {
        "stdin" => Some(Stream::In),
        "stdout" => Some(Stream::Out),
        "stderr" => Some(Stream::Err),
        _ => None,
    }
}

fn kind_named(name: &str) -> Option<Kind> {
    [
        Kind::Raw,
        Kind::Record,
        Kind::Ack,
        Kind::Warning,
        Kind::Fatal,
        Kind::Data,
        Kind::DataEnd,
        Kind::Text,
        Kind::Packet,
    ]
    .into_iter()
    .find(|k| k.name() == name)
}

/// Parses one JSON Lines object back into the event it was written from. The
/// error is the reason, without a line number.
pub fn parse_line(line: &[u8]) -> Result<Parsed, String> {
    let w: Wire = serde_json::from_slice(line).map_err(|e| format!("bad JSON object: {e}"))?;
    let kind = w.kind.as_str();
    let meta = |entry: Entry| {
        if w.stream == "meta" {
            Ok(entry)
        } else {
            Err(format!("a `{kind}` object has stream `meta`, not `{}`", w.stream))
        }
    };
    let entry = match kind {
        "header" => {
            let key = need(w.key, kind, "key")?;
            if !is_header_key(&key) {
                return Err(format!("bad header key {key:?}"));
            }
            meta(Entry::Header {
                key,
                value: need(w.value, kind, "value")?,
            })?
        }
        "invocation" => meta(Entry::Invocation(need(w.text, kind, "text")?))?,
        "problem" => {
            let text = need(w.text, kind, "text")?;
            match w.violation {
                Some(name) => {
                    let Some(rest) = text
                        .strip_prefix(name.as_str())
                        .and_then(|t| t.strip_prefix(": "))
                    else {
                        return Err(format!(
                            "a problem naming violation `{name}` must start with `{name}: `"
                        ));
                    };
                    let text = rest.to_string();
                    meta(Entry::StoredViolation { name, text })?
                }
                None => meta(Entry::Problem(text))?,
            }
        }
        "note" => meta(Entry::Note(need(w.text, kind, "text")?))?,
        "exit" => meta(Entry::Exit(need(w.code, kind, "code")?))?,
        "closed" => {
            Entry::Closed(stream_named(&w.stream).ok_or_else(|| format!("unknown stream `{}`", w.stream))?)
        }
        _ => {
            let Some(k) = kind_named(kind) else {
                return Err(format!("unknown kind `{kind}`"));
            };
            let stream = stream_named(&w.stream).ok_or_else(|| {
                format!(
                    "a bytes object needs stream stdin, stdout or stderr, not `{}`",
                    w.stream
                )
            })?;
            let escaped = need(w.bytes, kind, "bytes")?;
            let bytes = unescape(escaped.as_bytes()).map_err(|e| format!("bad escaped `bytes`: {e}"))?;
            let note = w.note.map(|n| annotate::read(&n, bytes.len()).2);
            Entry::Bytes(Bytes {
                stream,
                len: need(w.len, kind, "len")?,
                bytes,
                kind: k,
                note,
            })
        }
    };
    Ok(Parsed {
        timestamped: w.t.is_some(),
        event: Event {
            t: w.t.unwrap_or(0.0),
            entry,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::parse::parse_text;
    use crate::transcript::text;
    use serde_json::Value;

    const SESSION: &str = "# scptrace: 0.1.0\n\
# start: 2026-11-25T15:16:22.271759Z\n\
>>> New command invocation: /usr/bin/scp -t 'a b'\n\
+0.001000 O: \\0\t# ack\n\
+0.002000 I: C0644 21 a\\xff\\x1b\\n\t# file \"a\\xff\\x1b\", 21 B, mode 0644\n\
+0.003000 I: file a\t# data of \"a\\xff\\x1b\", 21 B, first 6 shown\n\
+0.004000 I: \\0\t# end of \"a\\xff\\x1b\"\n\
+0.004211 O: \\x02scp: nope\\n\t# error: scp: nope\n\
+0.005000 >>> received SIGTERM, forwarded to the child\n\
+0.005000 !! bad-mode: the mode is bad\n\
+0.005000 !! reading stdin failed: EIO\n\
+0.006000 >>> stdin closed\n\
+12.345678 #: -9\n";

    fn to_jsonl(parsed: &[Parsed]) -> Vec<u8> {
        let mut w = JsonlWriter::new(Vec::new());
        for p in parsed {
            w.write_event(&p.event, p.timestamped).unwrap();
        }
        w.into_inner()
    }

    fn to_text(parsed: &[Parsed]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut line = Vec::new();
        for p in parsed {
            text::render(&p.event, p.timestamped, &mut line);
            out.extend_from_slice(&line);
        }
        out
    }

    #[test]
    fn text_to_jsonl_and_back_is_identical() {
        let untimed: String = SESSION
            .lines()
            .map(|l| match l.strip_prefix('+') {
                Some(rest) => format!("{}\n", rest.split_once(' ').unwrap().1),
                None => format!("{l}\n"),
            })
            .collect();
        for session in [SESSION.to_string(), untimed] {
            let parsed = parse_text(session.as_bytes()).unwrap();
            let jsonl = to_jsonl(&parsed);
            let back: Vec<Parsed> = jsonl
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| parse_line(l).unwrap())
                .collect();
            assert_eq!(back, parsed);
            assert_eq!(String::from_utf8(to_text(&back)).unwrap(), session);
        }
    }

    #[test]
    fn wire_shape() {
        let parsed = parse_text(SESSION.as_bytes()).unwrap();
        let jsonl = String::from_utf8(to_jsonl(&parsed)).unwrap();
        let lines: Vec<&str> = jsonl.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"t":null,"stream":"meta","kind":"header","key":"scptrace","value":"0.1.0"}"#
        );
        assert_eq!(
            lines[3],
            r#"{"t":0.001000,"stream":"stdout","kind":"ack","len":1,"bytes":"\\0","note":"ack","msg":{"type":"ack"}}"#
        );
        let rec: Value = serde_json::from_str(lines[4]).unwrap();
        assert_eq!(rec["kind"], "record");
        assert_eq!(rec["bytes"], "C0644 21 a\\xff\\x1b\\n");
        assert_eq!(rec["msg"]["name"], "a\\xff\\x1b");
        let data: Value = serde_json::from_str(lines[5]).unwrap();
        assert_eq!(
            (data["kind"].as_str(), data["len"].as_u64()),
            (Some("data"), Some(21))
        );
        assert!(!jsonl.contains('\x1b'), "no raw control bytes in JSON Lines");
        let v: Value = serde_json::from_str(lines[9]).unwrap();
        assert_eq!(v["violation"], "bad-mode");
        let v: Value = serde_json::from_str(lines[10]).unwrap();
        assert_eq!(v["violation"], Value::Null);
        assert_eq!(lines[11], r#"{"t":0.006000,"stream":"stdin","kind":"closed"}"#);
        assert_eq!(
            lines[12],
            r#"{"t":12.345678,"stream":"meta","kind":"exit","code":-9}"#
        );
    }

    #[test]
    fn rejects_bad_objects() {
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"t":0.000000,"stream":"stdin","kind":"warp"}"#,
            r#"{"t":0.000000,"stream":"meta","kind":"raw","len":1,"bytes":"a"}"#,
            r#"{"t":0.000000,"stream":"stdin","kind":"raw","bytes":"a"}"#,
            r#"{"t":0.000000,"stream":"stdin","kind":"raw","len":1,"bytes":"\\q"}"#,
            r#"{"t":0.000000,"stream":"stdin","kind":"exit","code":0}"#,
            r#"{"t":0.000000,"stream":"meta","kind":"exit"}"#,
            r#"{"t":0.000000,"stream":"meta","kind":"header","key":"a b","value":"x"}"#,
            r#"{"t":0.000000,"stream":"meta","kind":"closed"}"#,
        ] {
            assert!(parse_line(bad.as_bytes()).is_err(), "accepted {bad}");
        }
        let ok = r#"{"stream":"stdin","kind":"raw","len":1,"bytes":"a","future":1}"#;
        let p = parse_line(ok.as_bytes()).unwrap();
        assert!(!p.timestamped);
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::transcript::parse::{self, arb};
    use crate::transcript::text;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any event the text form holds survives text → JSON Lines → text.
        #[test]
        fn text_jsonl_text(p in arb::parsed()) {
            let mut line = Vec::new();
            text::render(&p.event, p.timestamped, &mut line);
            let (mut json, mut scratch) = (Vec::new(), Vec::new());
            render(&p.event, p.timestamped, &mut scratch, &mut json).unwrap();
            prop_assert!(!json.contains(&b'\n'));
            let back = parse_line(&json).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&json))))?;
            prop_assert_eq!(&back, &p);
            let mut again = Vec::new();
            text::render(&back.event, back.timestamped, &mut again);
            prop_assert_eq!(&again, &line);
            let reparsed = parse::parse_line(again.strip_suffix(b"\n").unwrap()).unwrap();
            prop_assert_eq!(reparsed, p);
        }

        /// JSON Lines keeps fields the text form cannot: any kind and len on
        /// any bytes, and an annotation it does not know.
        #[test]
        fn jsonl_round_trip(
            stream in arb::stream(),
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
            kind in prop_oneof![
                Just(Kind::Raw), Just(Kind::Record), Just(Kind::Ack), Just(Kind::Warning),
                Just(Kind::Fatal), Just(Kind::Data), Just(Kind::DataEnd), Just(Kind::Text),
            ],
            len in any::<u64>(),
            note in proptest::option::of("x-\\PC{0,20}"),
            micros in 0u64..1_000_000_000_000,
            timed in any::<bool>(),
        ) {
            let ev = Event {
                t: if timed { micros as f64 / 1e6 } else { 0.0 },
                entry: Entry::Bytes(Bytes { stream, bytes, len, kind, note: note.map(crate::transcript::Annotation::Other) }),
            };
            let (mut json, mut scratch) = (Vec::new(), Vec::new());
            render(&ev, timed, &mut scratch, &mut json).unwrap();
            let back = parse_line(&json).unwrap();
            prop_assert_eq!(back, Parsed { event: ev, timestamped: timed });
        }

        /// No input makes the reader panic.
        #[test]
        fn reader_survives_garbage(line in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_line(&line);
        }
    }
}

#[cfg(test)]
mod doc_examples {
    use super::*;
    use crate::transcript::parse::parse_line as parse_text_line;
    use crate::transcript::text;

    const DOC: &str = include_str!("../../docs/transcript-format.md");

    /// Every JSON Lines example in docs/transcript-format.md is exactly what
    /// the writer writes for the event it stands for.
    #[test]
    fn json_examples_are_exact() {
        let mut n = 0;
        for line in DOC.lines().filter(|l| l.starts_with("{\"t\"")) {
            let p = parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
            let (mut out, mut scratch) = (Vec::new(), Vec::new());
            render(&p.event, p.timestamped, &mut scratch, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), line);
            n += 1;
        }
        assert!(n >= 10, "{n} examples");
    }

    /// Every line of the text examples (the code blocks of §1) reads back and
    /// renders the same.
    #[test]
    fn text_examples_are_exact() {
        let mut n = 0;
        let mut blocks = DOC.split("```\n").skip(1).step_by(2);
        for block in blocks.by_ref().take(2) {
            for line in block.lines() {
                let p = parse_text_line(line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
                let mut out = Vec::new();
                text::render(&p.event, p.timestamped, &mut out);
                assert_eq!(String::from_utf8(out).unwrap(), format!("{line}\n"));
                n += 1;
            }
        }
        assert!(n >= 25, "{n} lines");
    }
}
