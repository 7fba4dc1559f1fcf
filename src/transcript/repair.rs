//! Reading transcripts that were pasted somewhere and copied back: a mail
//! client or a bug tracker turns the TAB before an annotation into spaces
//! (`expand t.log`) and LF into CRLF. scptrace never writes either, so the
//! strict reader ([`parse_line`](super::parse::parse_line)) refuses a CR and
//! reads a TAB-less line as bytes only; the [`Parser`](super::parse::Parser)
//! repairs both, and says so ([`Repairs`]), so that `check` reaches the
//! verdict the original would have had.
//!
//! Where the spaces end the bytes is not always visible, since escaped bytes
//! may themselves hold `  # `. A split is taken only when the annotation after
//! it is one the decoder writes and the bytes before it are what that
//! annotation says: a record, reply or text line ends in the escaped `\n` that
//! ends its frame, an ack or a file's end is one `\0`, a data line holds the
//! byte count its annotation gives (all of the file, or the head the suffix
//! names), an SFTP packet holds the length its first four bytes give. When
//! more than one split fits, the line is refused with the places it could be
//! split, never guessed.

use super::annotate::{self, sftp};
use super::{Annotation, Decoded, Kind};
use crate::escape::unescape;
use crate::protocol::scp::Msg;

/// What had to be repaired in one transcript, counted in lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repairs {
    /// Lines that ended in CR LF.
    pub crlf: u64,
    /// Bytes lines whose annotation followed spaces instead of a TAB.
    pub spaces: u64,
}

impl Repairs {
    pub fn any(&self) -> bool {
        self.crlf > 0 || self.spaces > 0
    }

    /// The one note that says what was repaired, or `None` when nothing was:
    /// `TABs had become spaces (12 lines), CRLF line endings (40 lines)`.
    pub fn note(&self) -> Option<String> {
        let lines = |n: u64| {
            if n == 1 {
                "1 line".to_string()
            } else {
                format!("{n} lines")
            }
        };
        let mut parts = Vec::new();
        if self.spaces > 0 {
            parts.push(format!(
                "TABs had become spaces ({}, read as TABs)",
                lines(self.spaces)
            ));
        }
        if self.crlf > 0 {
            parts.push(format!("CRLF line endings ({})", lines(self.crlf)));
        }
        (!parts.is_empty()).then(|| format!("repaired on reading: {}", parts.join(", ")))
    }
}

/// Most places a line is tried at: past that the line is refused, so a
/// line of many `  # ` costs bounded work.
const MAX_CANDIDATES: usize = 256;

/// For the body of a bytes line (after `I: `) that holds no TAB: the bytes
/// and the annotation, if spaces stand where the TAB was and exactly one
/// place fits (see the module documentation). `Ok(None)`: no place fits,
/// the line is bytes only. `at` is the column of `rest` in the line, for the
/// message of an ambiguous line.
pub fn spaced_annotation(rest: &[u8], at: usize) -> Result<Option<(Vec<u8>, String)>, String> {
    let mut found: Vec<(usize, Vec<u8>, String)> = Vec::new();
    let mut tried = 0;
    let mut i = 1;
    while i + 1 < rest.len() {
        // `# ` after at least one space: the first space is where the TAB was
        // at the latest; the bytes may end in spaces of their own.
        if rest[i] == b'#' && rest[i + 1] == b' ' && rest[i - 1] == b' ' {
            tried += 1;
            if tried > MAX_CANDIDATES {
                return Err(format!(
                    "no TAB before an annotation, and more than {MAX_CANDIDATES} places where spaces could stand for it: put the TAB back"
                ));
            }
            let Ok(note) = std::str::from_utf8(&rest[i + 2..]) else {
                i += 1;
                continue;
            };
            let mut start = i - 1;
            while start > 0 && rest[start - 1] == b' ' {
                start -= 1;
            }
            for end in start..i {
                if let Ok(bytes) = unescape(&rest[..end])
                    && fits(&bytes, note)
                {
                    found.push((i, bytes, note.to_string()));
                }
            }
        }
        i += 1;
    }
    match found.len() {
        0 => Ok(None),
        1 => {
            let (_, bytes, note) = found.pop().unwrap_or_default();
            Ok(Some((bytes, note)))
        }
        _ => {
            let mut cols: Vec<String> = found.iter().map(|(c, ..)| (at + c + 1).to_string()).collect();
            cols.dedup();
            Err(format!(
                "no TAB before an annotation, and the spaces could stand for it in more than one place (the bytes would end differently; the annotation at column {}): put the TAB back where it was",
                cols.join(" or ")
            ))
        }
    }
}

/// Whether `bytes` are what the annotation `note` says a line holds.
fn fits(bytes: &[u8], note: &str) -> bool {
    let shown = bytes.len() as u64;
    let (kind, len, a) = annotate::read(note, bytes.len());
    // `, first N shown` and `, LEN B, first N shown` were matched against
    // the bytes' count by `read` itself.
    let head = len != shown;
    let one_line = || bytes.iter().position(|&b| b == b'\n') == Some(bytes.len() - 1);
    match (&a, kind) {
        (Annotation::Other(n), Kind::Packet) if sftp::looks_like_packet_note(n) => {
            head || bytes.len() >= 4 && {
                let n = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                u64::from(n) + 4 == shown
            }
        }
        (Annotation::Other(_), _) => false,
        (Annotation::DataPart, _) => shown == 65_536,
        (Annotation::CutText, _) => head,
        (Annotation::Msg { msg, .. }, _) => match msg {
            Decoded::Scp(Msg::Data { seen, .. }) => head || shown == *seen,
            Decoded::Scp(Msg::Ack | Msg::DataEnd { .. }) => bytes == b"\0",
            Decoded::Scp(Msg::Warning(t) | Msg::Fatal(t)) if !head => {
                bytes.len() == t.len() + 2 && &bytes[1..bytes.len() - 1] == t.as_slice() && one_line()
            }
            // A run of text nobody reads as protocol may end without a
            // newline (the stream ended): then only its non-space end is
            // certain, and trailing spaces make it ambiguous.
            Decoded::Scp(Msg::Text) if !bytes.contains(&b'\n') => bytes.last().is_some_and(|&b| b != b' '),
            Decoded::Scp(_) => head || !bytes.is_empty() && one_line(),
            Decoded::Sftp(_) => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Result<Option<(String, String)>, String> {
        spaced_annotation(line.as_bytes(), 3).map(|o| o.map(|(b, n)| (crate::escape::escape(&b), n)))
    }

    fn some(b: &str, n: &str) -> Result<Option<(String, String)>, String> {
        Ok(Some((b.to_string(), n.to_string())))
    }

    #[test]
    fn framing_decides_where_the_bytes_end() {
        // What `expand` makes of the examples in docs/transcript-format.md.
        assert_eq!(split("\\0      # ack"), some("\\0", "ack"));
        assert_eq!(
            split("C0644 21 a\\n    # file \"a\", 21 B, mode 0644"),
            some("C0644 21 a\\n", "file \"a\", 21 B, mode 0644")
        );
        // A name holding `  # `: only the split after the record's \n fits.
        assert_eq!(
            split("C0644 15 a  # b.txt\\n # file \"a  # b.txt\", 15 B, mode 0644"),
            some("C0644 15 a  # b.txt\\n", "file \"a  # b.txt\", 15 B, mode 0644")
        );
        // Data holding `  # ` and ending in spaces: the count decides.
        assert_eq!(
            split("hi  # x      # data of \"f\", 9 B"),
            some("hi  # x  ", "data of \"f\", 9 B")
        );
        assert_eq!(
            split("0123  # data of \"f\", 100 B, first 4 shown"),
            some("0123", "data of \"f\", 100 B, first 4 shown")
        );
        // An SFTP packet: its length prefix.
        assert_eq!(
            split("\\0\\0\\0\\x05\\x01\\0\\0\\0\\x03   # INIT version 3"),
            some("\\0\\0\\0\\x05\\x01\\0\\0\\0\\x03", "INIT version 3")
        );
        // Not an annotation the decoder writes: bytes only.
        assert_eq!(split("scp: a  # b\\n"), Ok(None));
        assert_eq!(split("\\0  # ack, or so"), Ok(None));
    }

    #[test]
    fn ambiguous_lines_are_refused() {
        // A warning whose text ends like an annotation that fits the line
        // up to it: both places fit.
        let e = split("\\x01w  # data of \"x\", 38 B\\n  # warning: w  # data of \"x\", 38 B").unwrap_err();
        assert!(
            e.contains("more than one place") && e.contains("column 34 or 48"),
            "{e}"
        );
        // Text without a newline ends in its last non-space.
        assert_eq!(split("abc    # text"), some("abc", "text"));
        let many = "  # x".repeat(MAX_CANDIDATES + 1);
        assert!(split(&many).unwrap_err().contains("more than 256"));
    }

    #[test]
    fn the_note() {
        assert_eq!(Repairs::default().note(), None);
        let r = Repairs { crlf: 3, spaces: 1 };
        assert_eq!(
            r.note().unwrap(),
            "repaired on reading: TABs had become spaces (1 line, read as TABs), CRLF line endings (3 lines)"
        );
    }
}
