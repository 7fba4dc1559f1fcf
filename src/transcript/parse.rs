//! Reads text transcript lines back into [`Event`]s: the exact inverse of
//! [`render`](super::text::render), so `show`, `check` and `replay` work on
//! saved transcripts.
//!
//! Exactness is the contract: for every line this module accepts,
//! `render(parse(line)) == line`, byte for byte. Anything `render` would never
//! write (a stray escape, a non-canonical number, a header after the
//! invocation) is a [`ParseError`] with its line number, never a guess.
//!
//! One exception, so that a hand-made transcript or one written before
//! scptrace escaped free text can still be shown: a control character in
//! free text (a note, a problem, a header value, the invocation, an
//! annotation) is read as it is, and `render` spells it out
//! ([`escape_text`](crate::escape::escape_text)); the line it writes then
//! reads back and renders to itself.
//!
//! What the text form does not hold is recovered from a bytes line's
//! annotation: its [`Kind`], `len` and decoded message (see
//! [`annotate::read`]).

use std::fmt;

use super::annotate;
use super::repair::{Repairs, spaced_annotation};
use super::{Bytes, Entry, Event, Kind, Stream};
use crate::escape::unescape;

/// Why a transcript line could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number in the file.
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The event; `t` is 0 when the line had no timestamp.
    pub event: Event,
    /// Whether the line carried a `+SECONDS ` prefix (header lines never do).
    pub timestamped: bool,
}

/// Reads a text transcript line by line, tracking what only the position of a
/// line decides: its number, and whether header lines are still allowed.
#[derive(Debug, Default)]
pub struct Parser {
    line: u64,
    started: bool,
    repairs: Repairs,
    /// A bytes line had its TAB: the file's TABs are intact, so spaces
    /// are never read as one (bytes holding `  # ` stay bytes).
    tabs: bool,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Parses the next line, without its `\n`. An empty line is skipped
    /// (`Ok(None)`): scptrace never writes one, but a hand-edited file may have
    /// them. A pasted copy's CR LF line ending and spaces where the TAB
    /// before an annotation was are repaired ([`repair`](super::repair)),
    /// and counted in [`Parser::repairs`].
    pub fn next_line(&mut self, line: &[u8]) -> Result<Option<Parsed>, ParseError> {
        self.line += 1;
        // scptrace escapes every CR it writes, so a raw one ending a line is
        // a CR LF copy's.
        let line = match line.strip_suffix(b"\r") {
            Some(l) => {
                self.repairs.crlf += 1;
                l
            }
            None => line,
        };
        if line.is_empty() {
            return Ok(None);
        }
        let (parsed, repaired) = parse_line_with(line, !self.tabs).map_err(|reason| ParseError {
            line: self.line,
            reason,
        })?;
        self.repairs.spaces += u64::from(repaired);
        if let Entry::Bytes(Bytes { note: Some(_), .. }) = &parsed.event.entry
            && !repaired
        {
            self.tabs = true;
        }
        if matches!(parsed.event.entry, Entry::Header { .. }) {
            if self.started {
                return Err(ParseError {
                    line: self.line,
                    reason: "a header line (`# key: value`) after the transcript started".into(),
                });
            }
        } else {
            self.started = true;
        }
        Ok(Some(parsed))
    }

    /// What was repaired in the lines read so far.
    pub fn repairs(&self) -> Repairs {
        self.repairs
    }
}

/// Parses a whole text transcript held in memory.
#[allow(dead_code)] // for tests and tools; `show` and `check` stream with `Parser`
pub fn parse_text(text: &[u8]) -> Result<Vec<Parsed>, ParseError> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    if text.is_empty() {
        return Ok(out);
    }
    for line in body.split(|&b| b == b'\n') {
        if let Some(ev) = p.next_line(line)? {
            out.push(ev);
        }
    }
    Ok(out)
}

const INVOCATION: &str = ">>> New command invocation: ";

/// Parses one line (without its `\n`) on its own, ignoring its position,
/// strictly: only what `render` writes. The error is the reason, without a
/// line number.
pub fn parse_line(line: &[u8]) -> Result<Parsed, String> {
    parse_line_with(line, false).map(|(p, _)| p)
}

/// [`parse_line`]; `repair`: also read spaces where the TAB before an
/// annotation was (and say so: `true`).
fn parse_line_with(line: &[u8], repair: bool) -> Result<(Parsed, bool), String> {
    let (t, timestamped, rest) = if line.first() == Some(&b'+') {
        let (t, rest) = split_timestamp(line)?;
        (t, true, rest)
    } else {
        (0.0, false, line)
    };
    let (entry, repaired) = parse_entry(rest, timestamped, line.len() - rest.len(), repair)?;
    Ok((
        Parsed {
            event: Event { t, entry },
            timestamped,
        },
        repaired,
    ))
}

/// Splits `+SECONDS ` off a line. Only the form `render` writes is accepted:
/// decimal digits, a point, exactly six digits.
fn split_timestamp(line: &[u8]) -> Result<(f64, &[u8]), String> {
    let Some(sp) = line.iter().position(|&b| b == b' ') else {
        return Err("a timestamp (`+SECONDS `) must be followed by a space and an event".into());
    };
    let text = &line[1..sp];
    let canonical = text.len() >= 8
        && text[text.len() - 7] == b'.'
        && text
            .iter()
            .enumerate()
            .all(|(i, &b)| b.is_ascii_digit() || i == text.len() - 7);
    let t = std::str::from_utf8(text)
        .ok()
        .filter(|_| canonical)
        .and_then(|s| s.parse::<f64>().ok().filter(|t| format!("{t:.6}") == s));
    match t {
        Some(t) => Ok((t, &line[sp + 1..])),
        None => Err(format!(
            "bad timestamp `+{}`: expected seconds with six decimals, like `+0.004211`",
            String::from_utf8_lossy(text)
        )),
    }
}

fn utf8(b: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(b).map_err(|e| format!("not valid UTF-8 at column {}", e.valid_up_to() + 1))
}

/// `at` is the column (0-based) where `rest` starts in the line. With
/// `repair`, a bytes line may have spaces for its TAB (then `true`).
fn parse_entry(rest: &[u8], timestamped: bool, at: usize, repair: bool) -> Result<(Entry, bool), String> {
    if let [s @ (b'I' | b'O' | b'E'), b':', b' ', ..] = rest {
        let stream = match s {
            b'I' => Stream::In,
            b'O' => Stream::Out,
            _ => Stream::Err,
        };
        let body = &rest[3..];
        if repair
            && !body.contains(&b'\t')
            && let Some((bytes, note)) = spaced_annotation(body, at + 3)?
        {
            return Ok((Entry::Bytes(bytes_line(stream, bytes, Some(note))), true));
        }
        return parse_bytes(stream, body, at + 3).map(|b| (Entry::Bytes(b), false));
    }
    parse_other(rest, timestamped).map(|e| (e, false))
}

/// Any line but a bytes line.
fn parse_other(rest: &[u8], timestamped: bool) -> Result<Entry, String> {
    match rest {
        [b'I' | b'O' | b'E', b':', ..] => Err("a bytes line needs a space after the colon".into()),
        [b'#', b':', ..] => {
            let text = utf8(rest)?;
            let n = text.strip_prefix("#: ").unwrap_or("");
            match n.parse::<i32>() {
                Ok(code) if code.to_string() == n => Ok(Entry::Exit(code)),
                _ => Err(format!("bad exit status line `{text}`: expected `#: N`")),
            }
        }
        [b'#', ..] => {
            if timestamped {
                return Err("header lines carry no timestamp".into());
            }
            let text = utf8(rest)?;
            let Some(kv) = text.strip_prefix("# ") else {
                return Err("a header line must start with `# `".into());
            };
            match kv.split_once(": ") {
                Some((key, value)) if is_header_key(key) => Ok(Entry::Header {
                    key: key.to_string(),
                    value: value.to_string(),
                }),
                _ => Err(format!(
                    "bad header line `{text}`: expected `# key: value` with a key of letters, digits, `-`, `_` or `.`"
                )),
            }
        }
        [b'>', b'>', b'>', ..] => {
            let text = utf8(rest)?;
            if let Some(argv) = text.strip_prefix(INVOCATION) {
                return Ok(Entry::Invocation(argv.to_string()));
            }
            let Some(note) = text.strip_prefix(">>> ") else {
                return Err("`>>>` must be followed by a space".into());
            };
            Ok(match note {
                "stdin closed" => Entry::Closed(Stream::In),
                "stdout closed" => Entry::Closed(Stream::Out),
                "stderr closed" => Entry::Closed(Stream::Err),
                _ => Entry::Note(note.to_string()),
            })
        }
        [b'!', b'!', ..] => {
            let text = utf8(rest)?;
            let Some(p) = text.strip_prefix("!! ") else {
                return Err("`!!` must be followed by a space".into());
            };
            // A violation names itself first, from the decoders' vocabulary;
            // anything else is a tracing problem.
            Ok(match p.split_once(": ") {
                Some((name, rest)) if annotate::is_violation_name(name) => Entry::StoredViolation {
                    name: name.to_string(),
                    text: rest.to_string(),
                },
                _ => Entry::Problem(p.to_string()),
            })
        }
        _ => {
            let shown: String = String::from_utf8_lossy(&rest[..rest.len().min(20)]).into();
            Err(format!(
                "unknown line `{}`: expected `I:`, `O:`, `E:`, `>>>`, `!!`, `#:` or a `# ` header",
                crate::escape::escape_text(&shown)
            ))
        }
    }
}

/// A header key: what `render` can write and this module can split off again.
pub fn is_header_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn parse_bytes(stream: Stream, rest: &[u8], at: usize) -> Result<Bytes, String> {
    let (escaped, note) = match rest.iter().position(|&b| b == b'\t') {
        None => (rest, None),
        Some(tab) => {
            let note = utf8(&rest[tab + 1..])?;
            let Some(note) = note.strip_prefix("# ") else {
                return Err("an annotation after the TAB must start with `# `".into());
            };
            (&rest[..tab], Some(note.to_string()))
        }
    };
    let bytes = unescape(escaped)
        .map_err(|e| format!("bad escaped bytes: {} at column {}", e.reason, at + e.offset + 1))?;
    Ok(bytes_line(stream, bytes, note))
}

/// A bytes line's kind and length, from its annotation.
fn bytes_line(stream: Stream, bytes: Vec<u8>, note: Option<String>) -> Bytes {
    let (kind, len, note) = match &note {
        Some(n) => {
            let (k, len, a) = annotate::read(n, bytes.len());
            (k, len, Some(a))
        }
        None => (Kind::Raw, bytes.len() as u64, None),
    };
    Bytes {
        stream,
        bytes,
        len,
        kind,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escape::escape;
    use crate::protocol::scp::Msg;
    use crate::protocol::scp::record::Refusal;
    use crate::transcript::text::render;
    use crate::transcript::{Annotation, Decoded, annotate};

    fn round_trip(line: &str) -> Parsed {
        let p = parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let mut out = Vec::new();
        render(&p.event, p.timestamped, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("{line}\n"),
            "render(parse(line)) differs"
        );
        p
    }

    fn bytes_of(p: &Parsed) -> &Bytes {
        match &p.event.entry {
            Entry::Bytes(b) => b,
            e => panic!("not a bytes line: {e:?}"),
        }
    }

    const CORPUS: &[&str] = &[
        "# scptrace: 0.1.0",
        "# start: 2026-11-25T15:16:22.271759Z",
        "# pid: 13626",
        "# host: vm",
        "# user: root",
        "# program: /usr/bin/scp",
        "# empty: ",
        "# odd: value: with: colons",
        ">>> New command invocation: /usr/bin/scp -d -t /tmp",
        ">>> New command invocation: /usr/bin/scp -t 'a b' $'\\x1b'",
        "O: \\0\t# ack",
        "I: C0644 21 a\\n\t# file \"a\", 21 B, mode 0644",
        "I: file a file a file a\\n\t# data of \"a\", 21 B",
        "I: \\0\t# end of \"a\"",
        "I: D0755 0 src\\n\t# enter dir \"src\", mode 0755",
        "I: E\\n\t# leave dir \"src\"",
        "I: T1700000000 0 1700000000 0\\n\t# times mtime 1700000000.000000 atime 1700000000.000000",
        "O: \\x01scp: x\\n\t# warning: scp: x",
        "O: \\x02scp: /nope: No such file or directory\\n\t# error: scp: /nope: No such file or directory",
        "I: abc\t# data of \"big\", 3 of 100000 B, incomplete",
        "I: \t# data of \"big\", 100000 B, not shown",
        "I: 0123456789abcdef0123456789abcdef\t# data of \"x, y\", 5000000000 B, first 32 shown",
        "O: Welcome to my shell\\n\t# text",
        "I: C0644 x a\\n\t# bad record (protocol error: size not present)",
        "I: something new\t# a future annotation",
        "E: scp: protocol error: mode not delimited\\n",
        "I: ",
        "I: \\\\\\t\\r\\xff\\x7f\\x80",
        ">>> stdin closed",
        ">>> stdout closed",
        ">>> stderr closed",
        ">>> received SIGTERM, forwarded to the child",
        ">>> stdin closed early",
        "!! bad-mode: the mode `04755` is not four octal digits",
        "!! reading stdin failed: Input/output error",
        "!! ",
        "#: 0",
        "#: 1",
        "#: -9",
        "+0.000000 O: \\0\t# ack",
        "+0.004211 I: C0644 21 a\\n",
        "+12345.678901 >>> stdin closed",
        "+1.000000 !! name-slash: x",
        "+1.500000 #: 0",
        "+0.100000 >>> New command invocation: scp -f x",
    ];

    #[test]
    fn corpus_round_trips() {
        for line in CORPUS {
            round_trip(line);
        }
    }

    #[test]
    fn every_byte_value_round_trips() {
        for b in 0..=255u8 {
            for stream in ["I", "O", "E"] {
                let line = format!("{stream}: {}", escape(&[b]));
                let p = round_trip(&line);
                assert_eq!(bytes_of(&p).bytes, vec![b]);
            }
        }
        let all: Vec<u8> = (0..=255u8).collect();
        let line = format!("I: {}\t# data of \"all\", 256 B", escape(&all));
        let p = round_trip(&line);
        assert_eq!(bytes_of(&p).bytes, all);
        assert_eq!(bytes_of(&p).len, 256);
    }

    #[test]
    fn kinds_and_lengths_from_notes() {
        let cases: &[(&str, Kind, u64)] = &[
            ("O: \\0\t# ack", Kind::Ack, 1),
            (
                "I: C0644 21 a\\n\t# file \"a\", 21 B, mode 0644",
                Kind::Record,
                11,
            ),
            (
                "I: file a file a file a\\n\t# data of \"a\", 21 B",
                Kind::Data,
                21,
            ),
            (
                "I: abc\t# data of \"big\", 3 of 100000 B, incomplete",
                Kind::Data,
                3,
            ),
            ("I: \t# data of \"big\", 100000 B, not shown", Kind::Data, 100000),
            (
                "I: abcd\t# data of \"a\", \", 9 B\", 7 B, first 4 shown",
                Kind::Data,
                7,
            ),
            ("I: \\0\t# end of \"a\"", Kind::DataEnd, 1),
            ("O: \\x01x\\n\t# warning: x", Kind::Warning, 3),
            ("O: \\x02x\\n\t# error: x", Kind::Fatal, 3),
            ("O: hi\\n\t# text", Kind::Text, 3),
            ("I: E\\n\t# leave dir \"d\"", Kind::Record, 2),
            (
                "I: C0644 x a\\n\t# bad record (protocol error: size not present)",
                Kind::Record,
                10,
            ),
            ("I: xyz\t# data of \"a\", lots", Kind::Raw, 3),
            ("E: xyz\t# 5000 B, first 3 shown", Kind::Text, 5000),
            ("E: xyz\t# 05000 B, first 3 shown", Kind::Raw, 3),
            ("I: abc\t# data, more follows", Kind::Data, 3),
            (
                "I: C0644 \t# bad record (protocol error: bad mode), 9000 B, first 6 shown",
                Kind::Record,
                9000,
            ),
            ("O: hello\t# text, 70000 B, first 5 shown", Kind::Text, 70000),
            ("I: xyz", Kind::Raw, 3),
        ];
        for (line, kind, len) in cases {
            let p = round_trip(line);
            let b = bytes_of(&p);
            assert_eq!((b.kind, b.len), (*kind, *len), "{line}");
        }
    }

    #[test]
    fn messages_from_notes() {
        let b = |line: &str| bytes_of(&round_trip(line)).msg().cloned();
        let scp = |m: Msg| Some(Decoded::Scp(m));
        assert_eq!(
            b("I: C0644 21 a\\n\t# file \"a\", 21 B, mode 0644"),
            scp(Msg::File {
                mode: 0o644,
                size: 21,
                name: b"a".to_vec()
            })
        );
        assert_eq!(
            b("I: D0755 0 s\\xffrc\\n\t# enter dir \"s\\xffrc\", mode 0755"),
            scp(Msg::Dir {
                mode: 0o755,
                name: b"s\xffrc".to_vec()
            })
        );
        assert_eq!(
            b("I: T1 2 3 4\\n\t# times mtime 1.000002 atime 3.000004"),
            scp(Msg::Times {
                mtime: 1,
                mtime_us: 2,
                atime: 3,
                atime_us: 4
            })
        );
        assert_eq!(b("I: E\\n\t# leave dir"), scp(Msg::EndDir { name: None }));
        assert_eq!(b("O: \\0\t# ack"), scp(Msg::Ack));
        assert_eq!(
            b("I: abc\t# data of \"big\", 3 of 9 B, incomplete"),
            scp(Msg::Data {
                name: b"big".to_vec(),
                size: 9,
                seen: 3,
                complete: false
            })
        );
        assert_eq!(
            b("I: C0644 x a\\n\t# bad record (protocol error: size not present)"),
            scp(Msg::BadRecord {
                why: Refusal::SizeNotPresent
            })
        );
        assert_eq!(b("I: C0644 21 a\\n"), None, "raw lines carry no msg");
        assert_eq!(
            b("I: x\t# file \"a\", 21 B, mode 644"),
            None,
            "not what the decoder writes"
        );
        assert_eq!(b("I: x\t# times mtime 1.2 atime 3.4"), None);
        assert_eq!(b("I: x\t# data of \"a\", 9 B, first 07 shown"), None);
        assert_eq!(b("I: x\t# data of \"a\", 9 B, bits shown"), None);
    }

    #[test]
    fn every_decoder_annotation_is_understood() {
        let all: Vec<u8> = (0..=255u8).collect();
        let names: [&[u8]; 6] = [b"a", b"", &all, b"x\", 9 B\", y", b"\"\"", b"p; not read: q"];
        let mut msgs = vec![
            Msg::Ack,
            Msg::BadRecord {
                why: Refusal::BadMode,
            },
            Msg::Text,
            Msg::EndDir { name: None },
            Msg::Times {
                mtime: u64::MAX,
                mtime_us: 999_999,
                atime: 0,
                atime_us: 7,
            },
        ];
        for n in names {
            msgs.extend([
                Msg::File {
                    mode: 0o4755,
                    size: 1 << 40,
                    name: n.to_vec(),
                },
                Msg::Dir {
                    mode: 0o7,
                    name: n.to_vec(),
                },
                Msg::EndDir {
                    name: Some(n.to_vec()),
                },
                Msg::Warning(n.to_vec()),
                Msg::Fatal(n.to_vec()),
                Msg::Data {
                    name: n.to_vec(),
                    size: 21,
                    seen: 21,
                    complete: true,
                },
                Msg::Data {
                    name: n.to_vec(),
                    size: 21,
                    seen: 3,
                    complete: false,
                },
                Msg::DataEnd { name: n.to_vec() },
            ]);
        }
        for m in msgs {
            let d = Decoded::Scp(m.clone());
            let data = matches!(m, Msg::Data { .. });
            // Only data lines show less than what passed: every other frame
            // is at most one line of 2,048 bytes.
            let cuts: &[(u64, u64)] = if data {
                &[(1, 1), (0, 50), (2, 50)]
            } else {
                &[(1, 1)]
            };
            for &(shown, len) in cuts {
                let len = match &m {
                    Msg::Data { seen, .. } if shown < len => *seen,
                    _ => len,
                };
                if data && len < shown {
                    continue;
                }
                let b = Bytes {
                    stream: Stream::In,
                    bytes: vec![b'x'; shown as usize],
                    len,
                    kind: annotate::kind(&d),
                    note: Some(Annotation::Msg {
                        msg: d.clone(),
                        consequence: None,
                        latency_us: None,
                    }),
                };
                let text = annotate::note_text(&b).unwrap();
                let (kind, l, a) = annotate::read(&text, shown as usize);
                assert_eq!((kind, l), (b.kind, b.len), "{text}");
                let back = Bytes {
                    note: Some(a),
                    ..b.clone()
                };
                assert_eq!(annotate::note_text(&back), Some(text));
            }
        }
    }

    #[test]
    fn rejects_what_render_never_writes() {
        for bad in [
            "X: abc",
            "I:abc",
            "I: a\tb",
            "I: \\q",
            "I: \\x41",
            "I: caf\u{e9}",
            "I: a\r",
            "#: +1",
            "#: 01",
            "#: x",
            "#:0",
            "#",
            "# nokey",
            "# bad key: v",
            "#  : v",
            ">>>",
            ">>>x",
            "!!x",
            "+1.5 I: a",
            "+1.5000000 I: a",
            "+ I: a",
            "+1.000000",
            "+1.000000 # key: v",
            "+-1.000000 I: a",
            "hello",
        ] {
            assert!(parse_line(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
        assert!(parse_line(b"I: x\t# \xff").is_err());
    }

    #[test]
    fn headers_only_before_the_transcript_starts() {
        let ok = b"# scptrace: 0.1.0\n# pid: 1\n>>> New command invocation: scp -t x\nO: \\0\n#: 0\n";
        assert_eq!(parse_text(ok).unwrap().len(), 5);
        let late = b"# scptrace: 0.1.0\n>>> New command invocation: scp -t x\n# pid: 1\n";
        let e = parse_text(late).unwrap_err();
        assert_eq!(e.line, 3);
        let bad = b"# scptrace: 0.1.0\n\nO: \\q\n";
        let e = parse_text(bad).unwrap_err();
        assert_eq!(e.line, 3, "blank lines count");
        assert_eq!(e.reason, "bad escaped bytes: unknown escape at column 4");
        assert_eq!(parse_text(b"").unwrap(), vec![]);
        assert_eq!(parse_text(b"#: 0").unwrap().len(), 1, "no final newline");
    }

    #[test]
    fn stored_violations_and_tracing_problems() {
        let e = |l: &str| parse_line(l.as_bytes()).unwrap().event.entry;
        assert_eq!(
            e("!! bad-mode: x"),
            Entry::StoredViolation {
                name: "bad-mode".into(),
                text: "x".into()
            }
        );
        // Only the decoders' own names: anything else is a tracing problem.
        assert_eq!(e("!! trailing: x"), Entry::Problem("trailing: x".into()));
        assert_eq!(
            e("!! reading stdin failed: EIO"),
            Entry::Problem("reading stdin failed: EIO".into())
        );
        assert_eq!(e("!! bad-mode"), Entry::Problem("bad-mode".into()));
    }
}

/// Strategies for property tests of the transcript forms: arbitrary events as
/// the text form holds them (a bytes line's kind, len and msg consistent with
/// its annotation, as the tracer writes them).
#[cfg(test)]
pub(crate) mod arb {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::protocol::scp::Msg;
    use crate::transcript::{Annotation, Decoded};

    /// Free text as the writers write it: no terminal control
    /// (`escape::is_terminal_control`).
    pub(crate) fn text() -> impl Strategy<Value = String> {
        "[^\\x00-\\x1f\\x7f-\\x9f\\u{61c}\\u{200e}\\u{200f}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}\\u{2028}\\u{2029}]{0,24}"
    }

    fn name() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            vec(any::<u8>(), 0..12),
            Just(b"a\", 9 B, mode 0644".to_vec()),
            Just(b"x, not shown".to_vec()),
            Just(b"\"".to_vec()),
        ]
    }

    pub(crate) fn stream() -> impl Strategy<Value = Stream> {
        prop_oneof![Just(Stream::In), Just(Stream::Out), Just(Stream::Err)]
    }

    pub(crate) fn msg() -> impl Strategy<Value = Msg> {
        prop_oneof![
            (any::<u32>(), any::<u64>(), name()).prop_map(|(mode, size, name)| Msg::File {
                mode,
                size,
                name
            }),
            (any::<u32>(), name()).prop_map(|(mode, name)| Msg::Dir { mode, name }),
            proptest::option::of(name()).prop_map(|name| Msg::EndDir { name }),
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
                |(mtime, mtime_us, atime, atime_us)| {
                    Msg::Times {
                        mtime,
                        mtime_us,
                        atime,
                        atime_us,
                    }
                }
            ),
            Just(Msg::Ack),
            name().prop_map(Msg::Warning),
            name().prop_map(Msg::Fatal),
            (name(), any::<u64>()).prop_map(|(name, size)| Msg::Data {
                name,
                size,
                seen: size,
                complete: true
            }),
            (name(), any::<u64>(), any::<u64>()).prop_map(|(name, size, seen)| Msg::Data {
                name,
                size,
                seen,
                complete: false
            }),
            name().prop_map(|name| Msg::DataEnd { name }),
            Just(Msg::BadRecord {
                why: crate::protocol::scp::record::Refusal::ExpectedControlRecord
            }),
            Just(Msg::Text),
        ]
    }

    fn bytes() -> impl Strategy<Value = Bytes> {
        let raw = (stream(), vec(any::<u8>(), 0..40)).prop_map(|(stream, bytes)| Bytes {
            stream,
            len: bytes.len() as u64,
            bytes,
            kind: Kind::Raw,
            note: None,
        });
        // 0: all shown; 1: only a head shown (len past it).
        let decoded = (stream(), vec(any::<u8>(), 0..40), msg(), 0..2u8, 1u64..1000)
            .prop_map(|(stream, bytes, m, cut, extra)| {
                let mut len = bytes.len() as u64 + if cut > 0 { extra } else { 0 };
                if let Msg::Data { seen, .. } = m {
                    len = seen;
                }
                let msg = Decoded::Scp(m);
                Bytes {
                    stream,
                    bytes,
                    len,
                    kind: annotate::kind(&msg),
                    note: Some(Annotation::Msg {
                        msg,
                        consequence: None,
                        latency_us: None,
                    }),
                }
            })
            // What the text form can hold: a data line shows at most its length,
            // and a name or text that itself ends like the tracer's suffix reads
            // back as that text (as the old filter, by re-reading).
            .prop_filter("what the text form holds", |b| {
                let Some(text) = annotate::note_text(b) else {
                    return false;
                };
                let (k, len, a) = annotate::read(&text, b.bytes.len());
                (k, len, Some(a)) == (b.kind, b.len, b.note.clone())
            });
        let future = (stream(), vec(any::<u8>(), 0..8), text()).prop_map(|(stream, bytes, t)| Bytes {
            stream,
            len: bytes.len() as u64,
            bytes,
            kind: Kind::Raw,
            note: Some(Annotation::Other(format!("x-{t}"))),
        });
        prop_oneof![raw, decoded, future]
    }

    pub(crate) fn entry() -> impl Strategy<Value = Entry> {
        let closed = ["stdin closed", "stdout closed", "stderr closed"];
        prop_oneof![
            ("[A-Za-z0-9_.-]{1,12}", text()).prop_map(|(key, value)| Entry::Header { key, value }),
            text().prop_map(Entry::Invocation),
            bytes().prop_map(Entry::Bytes),
            stream().prop_map(Entry::Closed),
            text().prop_map(Entry::Problem),
            text()
                .prop_filter("not another line kind", move |t| {
                    !closed.contains(&t.as_str()) && !t.starts_with("New command invocation: ")
                })
                .prop_map(Entry::Note),
            any::<i32>().prop_map(Entry::Exit),
        ]
    }

    /// An event and whether its line is timestamped, as the text form can
    /// hold it: microsecond times, none on header lines.
    pub(crate) fn parsed() -> impl Strategy<Value = Parsed> {
        (entry(), any::<bool>(), 0u64..1_000_000_000_000).prop_map(|(entry, ts, micros)| {
            let timestamped = ts && !matches!(entry, Entry::Header { .. });
            let t = if timestamped { micros as f64 / 1e6 } else { 0.0 };
            Parsed {
                event: Event { t, entry },
                timestamped,
            }
        })
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::transcript::text::render;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any event the tracer can write reads back as itself.
        #[test]
        fn text_round_trip(p in arb::parsed()) {
            let mut line = Vec::new();
            render(&p.event, p.timestamped, &mut line);
            let body = line.strip_suffix(b"\n").unwrap();
            prop_assert!(!body.contains(&b'\n'));
            let back = parse_line(body).map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(body))))?;
            prop_assert_eq!(&back, &p);
            let mut again = Vec::new();
            render(&back.event, back.timestamped, &mut again);
            prop_assert_eq!(again, line);
        }

        /// No input makes the parser panic, and whatever it accepts renders
        /// back to exactly the input (with any control character in its
        /// free text spelled out: [`rendered_again`]).
        #[test]
        fn parser_accepts_only_what_render_writes(line in proptest::collection::vec(any::<u8>(), 0..60)) {
            let line: Vec<u8> = line.into_iter().filter(|&b| b != b'\n').collect();
            if let Ok(p) = parse_line(&line) {
                let out = rendered_again(&p)?;
                if !has_controls(&line) {
                    prop_assert_eq!(out.strip_suffix(b"\n").unwrap(), &line[..]);
                }
            }
        }

        /// Free text holding any character at all (a hand-made transcript)
        /// renders with no control but the TAB before an annotation, and
        /// that line reads back and renders to itself.
        #[test]
        fn controls_in_free_text_are_spelled_out(
            t in "[^\n]{0,24}",
            kind in 0..5u8,
        ) {
            let entry = match kind {
                0 => Entry::Note(format!("n{t}")),
                1 => Entry::Problem(t),
                2 => Entry::Invocation(t),
                3 => Entry::Header { key: "host".into(), value: t },
                _ => Entry::Bytes(Bytes {
                    stream: Stream::In,
                    bytes: b"x".to_vec(),
                    len: 1,
                    kind: Kind::Raw,
                    note: Some(crate::transcript::Annotation::Other(format!("x-{t}"))),
                }),
            };
            let out = rendered_again(&Parsed { event: Event { t: 0.0, entry }, timestamped: false })?;
            prop_assert!(!has_controls(&out[..out.len() - 1]), "{:?}", String::from_utf8_lossy(&out));
        }

        /// Text-like garbage, closer to real lines than random bytes.
        #[test]
        fn near_miss_lines(prefix in prop_oneof![
            Just(""), Just("I: "), Just("O: "), Just("+1.000000 "), Just("#: "), Just("# "),
            Just(">>> "), Just("!! "),
        ], rest in "[ -~\t]{0,30}") {
            let line = format!("{prefix}{rest}");
            if let Ok(p) = parse_line(line.as_bytes()) {
                let out = rendered_again(&p)?;
                if !has_controls(line.as_bytes()) {
                    prop_assert_eq!(String::from_utf8_lossy(&out), format!("{line}\n"));
                }
            }
        }
    }

    /// Whether `line` holds a control character but the first TAB of a
    /// bytes line (before its annotation), as only free text can.
    fn has_controls(line: &[u8]) -> bool {
        let text = String::from_utf8_lossy(line);
        let body = match text.strip_prefix('+') {
            Some(t) => t.find(' ').map_or(0, |sp| sp + 2),
            None => 0,
        };
        let is_bytes = ["I: ", "O: ", "E: "].iter().any(|p| text[body..].starts_with(p));
        let tab = is_bytes.then(|| text.find('\t')).flatten();
        text.char_indices()
            .any(|(i, c)| crate::escape::is_terminal_control(c) && Some(i) != tab)
    }

    /// `p` rendered; that line must read back as an event that renders to it
    /// again (a fixed point, controls spelled out or not).
    fn rendered_again(p: &Parsed) -> Result<Vec<u8>, TestCaseError> {
        let mut out = Vec::new();
        render(&p.event, p.timestamped, &mut out);
        let back = parse_line(out.strip_suffix(b"\n").unwrap())
            .map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&out))))?;
        let mut again = Vec::new();
        render(&back.event, back.timestamped, &mut again);
        prop_assert_eq!(&again, &out);
        Ok(out)
    }
}
