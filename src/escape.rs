//! The reversible byte escaping used in every transcript line (design §3).
//!
//! Printable ASCII (0x20–0x7e) stands for itself except `\`; then `\\`, `\0`,
//! `\n`, `\r`, `\t`, and `\xNN` (lower-case hex) for every other byte. A raw TAB
//! never appears in the output, so a TAB can separate bytes from an annotation.

use std::fmt;

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

/// The escaped form of `bytes` as a `String` (always ASCII).
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

/// Free text that is UTF-8 (a note, a problem, an invocation line, a file
/// name) made safe for a terminal: every character of [`is_terminal_control`]
/// is spelled out, `\xNN` below U+0080 and `\u{N}` above; everything else,
/// backslashes included, stays as it is. For display only: unlike [`escape`]
/// it is not reversible.
pub fn escape_text(text: &str) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;
    if !text.chars().any(is_terminal_control) {
        return std::borrow::Cow::Borrowed(text);
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
    std::borrow::Cow::Owned(s)
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
