//! The two escapings, and the rule they share (docs/security.md): no raw
//! control character from outside reaches a terminal or a transcript.
//!
//! - [`escape_into`] (and [`escape`], its `String` form) writes **bytes
//!   into a transcript** (design §3): printable ASCII (0x20–0x7e) stands for
//!   itself except `\`; then `\\`, `\0`, `\n`, `\r`, `\t`, and `\xNN`
//!   (lower-case hex) for every other byte. Reversible ([`unescape`]), and
//!   a raw TAB never appears in the output, so a TAB can separate bytes from
//!   an annotation.
//! - [`escape_text`] makes **text safe for a terminal**: every character of
//!   [`is_terminal_control`] spelled out. Everything a command prints that
//!   did not come from scptrace itself goes through it (names, notes,
//!   problems, paths, error messages), and so does the free text of every
//!   transcript line (the text writer applies it).
//!
//! JSON output (JSON Lines, `show --summary --format jsonl`, `doctor
//! --format json`) holds the same characters as JSON `\uXXXX` escapes
//! instead, through [`Json`]: the value read back is unchanged, and no raw
//! control character is written.

use std::borrow::Cow;
use std::fmt;
use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

/// Appends the escaped form of `bytes` to `out`.
pub fn escape_into(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            0 => out.extend_from_slice(b"\\0"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(&[b'\\', b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]),
        }
    }
}

/// The escaped form of `bytes` as a `String` (always ASCII): [`escape_into`].
pub fn escape(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    escape_into(bytes, &mut out);
    // Only ASCII is ever pushed above.
    String::from_utf8(out).unwrap_or_default()
}

/// Whether `c` must never reach a terminal raw: C0 controls (TAB and LF
/// included), DEL, C1 controls (U+0080–U+009F), the line and paragraph
/// separators, and the bidirectional controls that reorder what is shown
/// (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069).
pub fn is_terminal_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

/// Text that is UTF-8 (a note, a problem, an invocation line, a file name,
/// an error message) made safe for a terminal: every character of
/// [`is_terminal_control`] is spelled out, `\xNN` below U+0080 and `\u{N}`
/// above; everything else, backslashes included, stays as it is. The output
/// holds no control character at all, and escaping it again changes
/// nothing. For display only: unlike [`escape`] it is not reversible.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    use std::fmt::Write as _;
    if !text.chars().any(is_terminal_control) {
        return Cow::Borrowed(text);
    }
    let mut s = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        let v = c as u32;
        match c {
            c if !is_terminal_control(c) => s.push(c),
            _ if v < 0x80 => {
                let _ = write!(s, "\\x{v:02x}");
            }
            _ => {
                let _ = write!(s, "\\u{{{v:x}}}");
            }
        }
    }
    Cow::Owned(s)
}

/// [`escape_text`] for output of several lines: each line escaped, the
/// newlines between them kept. For what a command prints line by line
/// ([`println_escaped!`](crate::println_escaped)).
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_terminal_control(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.split('\n').map(escape_text).collect::<Vec<_>>().join("\n"))
}

/// `println!` with every line through [`escape_text`]: for a command whose
/// output shows paths and values from outside (`doctor`, `install`,
/// `uninstall` import it as `println`).
#[macro_export]
macro_rules! println_escaped {
    () => { ::std::println!() };
    ($($arg:tt)*) => {
        ::std::println!("{}", $crate::escape::escape_lines(&::std::format!($($arg)*)))
    };
}

/// A serde_json [`Formatter`] (compact or pretty) that also writes every
/// character of [`is_terminal_control`] that serde_json leaves raw (DEL,
/// C1, the bidirectional controls, U+2028/U+2029) as a `\uXXXX` escape, as
/// it already does for C0. The JSON means the same; only its spelling
/// changes.
#[derive(Debug, Clone, Default)]
pub struct Json<F>(pub F);

impl<F: Formatter> Formatter for Json<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((i, c)) = rest.char_indices().find(|&(_, c)| is_terminal_control(c)) {
            self.0.write_string_fragment(w, &rest[..i])?;
            // Every such character is in the Basic Multilingual Plane: one
            // UTF-16 unit.
            write!(w, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.write_string_fragment(w, rest)
    }

    // The layout is the inner formatter's (PrettyFormatter's indentation).
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// A serializer writing compact JSON through [`Json`] to `w`.
pub fn json_serializer<W: io::Write>(w: W) -> serde_json::Serializer<W, Json<CompactFormatter>> {
    serde_json::Serializer::with_formatter(w, Json(CompactFormatter))
}

/// `value` as compact JSON, through [`Json`].
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    json_string(value, Json(CompactFormatter))
}

/// `value` as indented JSON, through [`Json`].
pub fn to_json_pretty<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    json_string(value, Json(PrettyFormatter::new()))
}

fn json_string<T: Serialize + ?Sized, F: Formatter>(value: &T, f: F) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(128);
    value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, f))?;
    // serde_json writes UTF-8 only.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Why an escaped string could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnescapeError {
    /// Byte offset in the escaped text where the problem starts.
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for UnescapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.reason, self.offset + 1)
    }
}

impl std::error::Error for UnescapeError {}

/// Reverses [`escape`]. Strict: anything `escape` would never produce is an error,
/// so a text that parses is exactly one byte sequence.
pub fn unescape(text: &[u8]) -> Result<Vec<u8>, UnescapeError> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b != b'\\' {
            if !(0x20..=0x7e).contains(&b) {
                return Err(UnescapeError {
                    offset: i,
                    reason: "raw non-printable byte",
                });
            }
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&e) = text.get(i + 1) else {
            return Err(UnescapeError {
                offset: i,
                reason: "lone backslash at end",
            });
        };
        match e {
            b'\\' => out.push(b'\\'),
            b'0' => out.push(0),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'x' => {
                let hi = text.get(i + 2).and_then(|&c| hex_val(c));
                let lo = text.get(i + 3).and_then(|&c| hex_val(c));
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        let v = (h << 4) | l;
                        // A byte with a shorter spelling must use it, or the text
                        // would not be the one escape() writes.
                        if (0x20..=0x7e).contains(&v) || matches!(v, 0 | b'\n' | b'\r' | b'\t') {
                            return Err(UnescapeError {
                                offset: i,
                                reason: "\\x used for a byte with a shorter escape",
                            });
                        }
                        out.push(v);
                        i += 4;
                        continue;
                    }
                    _ => {
                        return Err(UnescapeError {
                            offset: i,
                            reason: "\\x needs two lower-case hex digits",
                        });
                    }
                }
            }
            _ => {
                return Err(UnescapeError {
                    offset: i,
                    reason: "unknown escape",
                });
            }
        }
        i += 2;
    }
    Ok(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        let text = escape(&all);
        assert!(!text.contains('\t'));
        assert!(text.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        assert_eq!(unescape(text.as_bytes()).unwrap(), all);
        for b in 0..=255u8 {
            assert_eq!(unescape(escape(&[b]).as_bytes()).unwrap(), vec![b]);
        }
    }

    #[test]
    fn seed_lines() {
        assert_eq!(escape(b"\0"), "\\0");
        assert_eq!(escape(b"C0644 21 a\n"), "C0644 21 a\\n");
        assert_eq!(escape(b"file a file a file a\n\0"), "file a file a file a\\n\\0");
        assert_eq!(escape(b"\x01scp: x\n"), "\\x01scp: x\\n");
        assert_eq!(escape(b"a\\b\tc\r\xff"), "a\\\\b\\tc\\r\\xff");
    }

    #[test]
    fn text_escape_spells_out_every_terminal_control() {
        assert_eq!(escape_text("plain \\x1b é"), "plain \\x1b é");
        assert!(matches!(escape_text("ok"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            escape_text("a\x1b[2J\x07\r\t\n\x7f\u{9b}\u{202e}\u{2066}\u{200f}\u{61c}b"),
            "a\\x1b[2J\\x07\\x0d\\x09\\x0a\\x7f\\u{9b}\\u{202e}\\u{2066}\\u{200f}\\u{61c}b"
        );
        for c in (0u32..0x110000).filter_map(char::from_u32) {
            let out = escape_text(c.encode_utf8(&mut [0; 4])).into_owned();
            assert!(!out.chars().any(is_terminal_control), "{:x}", c as u32);
        }
    }

    #[test]
    fn lines_keep_their_newlines_and_nothing_else() {
        assert_eq!(escape_lines("a\n\x1b[2Jb\u{202e}\nc"), "a\n\\x1b[2Jb\\u{202e}\nc");
        assert!(matches!(escape_lines("a\nb\n"), Cow::Borrowed(_)));
        assert_eq!(escape_lines("tab\there\r\n"), "tab\\x09here\\x0d\n");
    }

    #[test]
    fn json_writes_every_terminal_control_as_an_escape() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        for out in [to_json(&all).unwrap(), to_json_pretty(&vec![&all]).unwrap()] {
            assert!(
                !out.chars().any(|c| is_terminal_control(c) && c != '\n'),
                "{out:?}"
            );
            let back: serde_json::Value = serde_json::from_str(&out).unwrap();
            let back = back.as_str().or_else(|| back[0].as_str()).unwrap().to_string();
            assert_eq!(back, all, "the value is unchanged");
        }
        assert_eq!(
            to_json("a\x1b\x7f\u{9b}\u{202e}\u{2029}\"\\é").unwrap(),
            r#""a\u001b\u007f\u009b\u202e\u2029\"\\é""#
        );
        let pretty = to_json_pretty(&serde_json::json!({"k": ["v\u{85}"]})).unwrap();
        assert_eq!(pretty, "{\n  \"k\": [\n    \"v\\u0085\"\n  ]\n}");
    }

    #[test]
    fn rejects_what_escape_never_writes() {
        for bad in [
            &b"\\"[..],
            b"\\q",
            b"\\x4",
            b"\\xAB",
            b"\\x41",
            b"\\x00",
            b"a\tb",
            b"\xc3\xa9",
        ] {
            assert!(unescape(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
