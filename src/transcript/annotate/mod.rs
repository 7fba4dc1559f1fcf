//! How decoded values appear in a transcript: a message's line [`Kind`], its
//! annotation, a violation's sentence, and a message's JSON Lines `msg`
//! object; and the inverse, reading an annotation back. The protocol layer
//! produces typed values; only this module puts them into words.
//!
//! The vocabulary here is part of the transcript format (docs/decoder.md):
//! the parser, `check`, `show --summary` and other tools depend on it.

pub mod sftp;

use serde::ser::SerializeMap;

use super::{Annotation, Bytes, Consequence, Decoded, Finding, Kind};
use crate::escape::{escape, unescape};
use crate::protocol::scp::msg::{Awaited, Detail, Ended, Name, ReplyKind, Sent};
use crate::protocol::scp::record::{Lint, NameProblem, Refusal};
use crate::protocol::scp::{Msg, Note, Violation};

/// The transcript line kind for a message.
pub fn kind(msg: &Decoded) -> Kind {
    let msg = match msg {
        Decoded::Scp(m) => m,
        Decoded::Sftp(_) => return Kind::Packet,
    };
    match msg {
        Msg::File { .. } | Msg::Dir { .. } | Msg::EndDir { .. } | Msg::Times { .. } => Kind::Record,
        Msg::BadRecord { .. } => Kind::Record,
        Msg::Ack => Kind::Ack,
        Msg::Warning(_) => Kind::Warning,
        Msg::Fatal(_) => Kind::Fatal,
        Msg::Data { .. } => Kind::Data,
        Msg::DataEnd { .. } => Kind::DataEnd,
        Msg::BadReply(_) | Msg::Text => Kind::Text,
    }
}

/// A mode as scp writes it: at least four octal digits (`0644`, `4755`).
fn fmt_mode(mode: u32) -> String {
    format!("{mode:04o}")
}

/// Why scp refused a record, in the words it answers with.
fn refusal(why: Refusal) -> &'static str {
    match why {
        Refusal::Echoed => "scp echoes it back as an error",
        other => other.openssh_text(),
    }
}

/// The annotation of a message alone (docs/decoder.md lists them).
pub fn msg_note(msg: &Decoded) -> String {
    let msg = match msg {
        Decoded::Scp(m) => m,
        Decoded::Sftp(m) => return sftp::msg_note(m),
    };
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
        } => format!("times mtime {mtime}.{mtime_us:06} atime {atime}.{atime_us:06}"),
        Msg::Ack => "ack".to_string(),
        Msg::Warning(text) => format!("warning: {}", escape(text)),
        Msg::Fatal(text) => format!("error: {}", escape(text)),
        Msg::Data {
            name,
            size,
            seen,
            complete: true,
        } if seen == size => format!("data of \"{}\", {size} B", escape(name)),
        Msg::Data { name, size, seen, .. } => {
            format!("data of \"{}\", {seen} of {size} B, incomplete", escape(name))
        }
        Msg::DataEnd { name } => format!("end of \"{}\"", escape(name)),
        Msg::BadRecord { why } => format!("bad record ({})", refusal(*why)),
        Msg::BadReply(_) => "not a reply: scp reads it as an error message".to_string(),
        Msg::Text => "text".to_string(),
    }
}

/// What the decoder noted about a frame, after `; `.
fn consequence_note(c: &Consequence) -> String {
    let Consequence::Scp(note) = c;
    match note {
        Note::Unread(why) => format!("not read: {}", ended(*why)),
        Note::MisreadData(name) => {
            format!(
                "the data of refused \"{}\", read by the sink as a record",
                escape(name)
            )
        }
        Note::LineRest => "the rest of a cut line, read as the next line".to_string(),
        Note::InPlaceOfEnd(name) => format!("in place of the \\0 that ends \"{}\"", escape(name)),
    }
}

fn ended(why: Ended) -> &'static str {
    match why {
        Ended::OwnFatal => "its sender had sent a fatal error",
        Ended::SinkRefused => "the sink had refused a line and exited",
        Ended::SinkReturned => "the sink had ended at an E with no directory open",
        Ended::SinkBadEnd => "the sink had exited at a bad end of a file",
        Ended::SourceBadReply => "the source had exited at a bad reply",
    }
}

/// A reply's latency as its annotation writes it: `0.2 ms`, `12 ms`, `1.5 s`.
fn fmt_latency(us: u64) -> String {
    if us < 10_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else if us < 1_000_000 {
        format!("{} ms", us / 1000)
    } else {
        format!("{:.1} s", us as f64 / 1e6)
    }
}

/// The tracer's annotation of a part of a long file's data (`--data full`).
const DATA_PART: &str = "data, more follows";

/// A bytes line's whole annotation, as written after `# `: the message's,
/// then `, first N shown` / `, not shown` when the line holds only the start
/// of what passed (`, LEN B, first N shown` for a cut record or text), then
/// `; ` and the decoder's note on a consequence.
pub fn note_text(b: &Bytes) -> Option<String> {
    let shown = b.bytes.len() as u64;
    match b.note.as_ref()? {
        Annotation::Msg {
            msg,
            consequence,
            latency_us,
        } => {
            let mut s = msg_note(msg);
            if let Some(us) = latency_us {
                s.push_str(&format!(" ({})", fmt_latency(*us)));
            }
            if b.len > shown {
                let data = b.kind == Kind::Data;
                if data && shown == 0 {
                    s.push_str(", not shown");
                } else if data {
                    s.push_str(&format!(", first {shown} shown"));
                } else {
                    s.push_str(&format!(", {} B, first {shown} shown", b.len));
                }
            }
            if let Some(c) = consequence {
                s.push_str("; ");
                s.push_str(&consequence_note(c));
            }
            Some(s)
        }
        // Parts exist only under `--data full`, which shows every byte.
        Annotation::DataPart => Some(DATA_PART.to_string()),
        Annotation::CutText => Some(format!("{} B, first {shown} shown", b.len)),
        Annotation::Other(text) => Some(text.clone()),
    }
}

// ---- violations ------------------------------------------------------------

/// Bytes of a text quoted in a sentence; longer ones end in `...`.
const QUOTE: usize = 200;

fn quote(b: &[u8]) -> String {
    match b.get(..QUOTE) {
        Some(head) if head.len() < b.len() => format!("\"{}\"...", escape(head)),
        _ => format!("\"{}\"", escape(b)),
    }
}

fn byte_desc(b: u8) -> String {
    match b {
        b'\n' => "'\\n' (0x0a)".to_string(),
        0x21..=0x7e => format!("'{}' (0x{b:02x})", b as char),
        _ => format!("0x{b:02x}"),
    }
}

fn awaited(a: &Awaited) -> String {
    match a {
        Awaited::Ready => "the sink's first \\0 (ready)".to_string(),
        Awaited::Times => "a T record".to_string(),
        Awaited::File(n) => format!("the C record of {}", quote(n)),
        Awaited::Dir(n) => format!("the D record of {}", quote(n)),
        Awaited::EndDir => "an E record".to_string(),
        Awaited::DataEnd(n) => format!("the end of {}", quote(n)),
        Awaited::Bad => "a refused line".to_string(),
    }
}

fn sent(s: &Sent) -> String {
    match s {
        Sent::Data(n) => format!("the data of {}", quote(n)),
        Sent::Record => "its next record".to_string(),
        Sent::End(n) => format!("the end of {}", quote(n)),
    }
}

fn lint(l: Lint, line: &[u8]) -> String {
    match l {
        Lint::EndTrailing => format!(
            "an E record with bytes before its newline: {} (OpenSSH ignores them)",
            quote(line)
        ),
        Lint::TimesIgnored => format!(
            "a time in {} is past 2^63-1: OpenSSH acks the T record and ignores its times",
            quote(line)
        ),
        Lint::NameNul => format!(
            "the name in {} contains a \\0 byte: scp uses only the bytes before it",
            quote(line)
        ),
        Lint::NameTooLong => format!(
            "the name in {} is longer than 1024 bytes (OpenSSH's source cuts D names there)",
            quote(line)
        ),
    }
}

/// A violation's sentence, without its name.
pub fn violation_text(f: &Finding) -> String {
    let (name, detail) = match f {
        Finding::Scp(Violation { name, detail, .. }) => (name, detail),
        Finding::Sftp(v) => return sftp::violation_text(v),
    };
    match detail {
        Detail::Text(t) => format!(
            "text where the protocol should start (a shell start-up file that prints?): {}",
            quote(t)
        ),
        Detail::Refused { why, line } => {
            let what = match name {
                Name::AckInsteadOfRecord => "an ack (\\0) from the source, where its next record was expected: ",
                Name::UnknownRecord => "a line that is no record: ",
                _ => "",
            };
            format!(
                "{what}{}; OpenSSH's sink answers \"{}\" and exits",
                quote(line),
                refusal(*why)
            )
        }
        Detail::Name { problem, name } => match problem {
            NameProblem::Empty => {
                "the name is empty; OpenSSH's sink answers \"error: unexpected filename\" and exits".to_string()
            }
            NameProblem::Dot => format!(
                "the name {} would make the sink write to the target directory itself or its parent (CVE-2018-20685); OpenSSH refuses it and exits",
                quote(name)
            ),
            NameProblem::Slash => format!(
                "the name {} contains '/', so it could escape the target directory (CVE-2019-6111); OpenSSH refuses it and exits",
                quote(name)
            ),
        },
        Detail::Lint { lint: l, line } => lint(*l, line),
        Detail::BadReply { byte, line } => format!(
            "reply byte {} is not \\0, \\x01 or \\x02: OpenSSH's scp reads {} as an error message and exits",
            byte_desc(*byte),
            quote(line)
        ),
        Detail::Record(line) => format!(
            "a record from the sink where a reply belongs (both sides think they are the source): {}",
            quote(line)
        ),
        Detail::NoWait { awaited: a, sent: s } => format!(
            "the source sent {} before the sink's reply to {} could have reached it: it does not wait for replies (reported once)",
            sent(s),
            awaited(a)
        ),
        Detail::Ahead => "the sink sent an ack before the message it answers could have reached it: it acks ahead (reported once; OpenSSH's source reads one reply per message, in order)".to_string(),
        Detail::Extra { reply, text } => {
            let what = match reply {
                ReplyKind::Warning => format!("a warning ({})", quote(text)),
                _ => "a reply".to_string(),
            };
            format!(
                "{what} when no message awaited one: a second reply to one message; the source takes it as the answer to its next message (reported once)"
            )
        }
        Detail::Unpaired { count, first } => match (name, first) {
            (Name::MissingReply, Some(f)) => format!(
                "the session ended with {count} message{} never answered by the sink, the first: {}",
                if *count == 1 { "" } else { "s" },
                awaited(f)
            ),
            (Name::MissingReply, None) => format!("the session ended with {count} messages never answered by the sink"),
            _ => format!(
                "the session ended with {count} repl{} that answered nothing",
                if *count == 1 { "y" } else { "ies" }
            ),
        },
        Detail::DataShort { name, seen, size } => {
            format!("the stream ended after {seen} of the {size} bytes announced for {}", quote(name))
        }
        Detail::MissingDataEnd { name, byte: Some(b) } => format!(
            "byte {} after the data of {} is not the \\0 that ends it: OpenSSH's sink reads the line as an error message and exits",
            byte_desc(*b),
            quote(name)
        ),
        Detail::MissingDataEnd { name, byte: None } => format!(
            "the stream ended where the \\0 after the data of {} was expected",
            quote(name)
        ),
        Detail::LineTooLong { len, max } => format!(
            "a line longer than the {max} bytes OpenSSH reads as one ({len} kept): the rest is read as the next line"
        ),
        Detail::LineWithoutNewline { len } => {
            format!("the stream ended inside a line ({len} bytes without a newline)")
        }
        Detail::AfterEnd => "bytes after this side's own fatal error".to_string(),
        Detail::TimesWithoutFile { next: Some(b'E') } => {
            "a T record followed by an E record instead of a C or D record".to_string()
        }
        Detail::TimesWithoutFile { next: Some(_) } => {
            "a T record followed by another T record instead of a C or D record".to_string()
        }
        Detail::TimesWithoutFile { next: None } => {
            "the session ended after a T record that no C or D record followed".to_string()
        }
        Detail::UnclosedDirs { depth, names } => {
            let shown: Vec<String> = names
                .iter()
                .map(|n| n.as_deref().map_or_else(|| "?".to_string(), quote))
                .collect();
            let more = if *depth > names.len() as u64 { ", ..." } else { "" };
            format!(
                "the session ended with {depth} director{} entered by D and never left by E (innermost first: {}{more})",
                if *depth == 1 { "y" } else { "ies" },
                shown.join(", ")
            )
        }
        Detail::UnbalancedEnd => "an E record with no directory open: an OpenSSH sink ends here".to_string(),
        Detail::DirWithoutR => "a D record, but scp was not started with -r".to_string(),
    }
}

/// A violation as its `!!` line writes it: `NAME: SENTENCE`.
pub fn violation_line(f: &Finding) -> String {
    format!("{}: {}", f.name(), violation_text(f))
}

/// Whether `name` is a violation name of one of the decoders.
pub fn is_violation_name(name: &str) -> bool {
    Name::named(name).is_some()
        || crate::protocol::sftp::ViolationName::ALL
            .iter()
            .any(|n| n.as_str() == name)
}

// ---- JSON Lines ------------------------------------------------------------

/// Writes a message's `msg` object as the value of `key`. Byte strings are
/// written in the transcript's escaped form, so no byte is lost and the
/// value is always ASCII.
pub fn serialize_msg<M: SerializeMap>(m: &mut M, key: &str, msg: &Decoded) -> Result<(), M::Error> {
    m.serialize_entry(key, &MsgJson(msg))
}

struct MsgJson<'a>(&'a Decoded);

impl serde::Serialize for MsgJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let msg = match self.0 {
            Decoded::Scp(m) => m,
            Decoded::Sftp(m) => return sftp::serialize(m, s),
        };
        let mut m = s.serialize_map(None)?;
        // Keys in alphabetical order, as the transcript format has always
        // written them (docs/transcript-format.md).
        match msg {
            Msg::File { mode, size, name } => {
                m.serialize_entry("mode", &fmt_mode(*mode))?;
                m.serialize_entry("name", &escape(name))?;
                m.serialize_entry("size", size)?;
                m.serialize_entry("type", "file")?;
            }
            Msg::Dir { mode, name } => {
                m.serialize_entry("mode", &fmt_mode(*mode))?;
                m.serialize_entry("name", &escape(name))?;
                m.serialize_entry("type", "dir")?;
            }
            Msg::EndDir { name } => {
                m.serialize_entry("name", &name.as_deref().map(escape))?;
                m.serialize_entry("type", "end_dir")?;
            }
            Msg::Times {
                mtime,
                mtime_us,
                atime,
                atime_us,
            } => {
                m.serialize_entry("atime", atime)?;
                m.serialize_entry("atime_us", atime_us)?;
                m.serialize_entry("mtime", mtime)?;
                m.serialize_entry("mtime_us", mtime_us)?;
                m.serialize_entry("type", "times")?;
            }
            Msg::Ack => m.serialize_entry("type", "ack")?,
            Msg::Warning(text) => {
                m.serialize_entry("text", &escape(text))?;
                m.serialize_entry("type", "warning")?;
            }
            Msg::Fatal(text) => {
                m.serialize_entry("text", &escape(text))?;
                m.serialize_entry("type", "fatal")?;
            }
            Msg::Data {
                name,
                size,
                seen,
                complete,
            } => {
                m.serialize_entry("complete", complete)?;
                m.serialize_entry("name", &escape(name))?;
                m.serialize_entry("seen", seen)?;
                m.serialize_entry("size", size)?;
                m.serialize_entry("type", "data")?;
            }
            Msg::DataEnd { name } => {
                m.serialize_entry("name", &escape(name))?;
                m.serialize_entry("type", "data_end")?;
            }
            Msg::BadRecord { why } => {
                m.serialize_entry("type", "bad_record")?;
                m.serialize_entry("why", refusal(*why))?;
            }
            Msg::BadReply(_) => m.serialize_entry("type", "bad_reply")?,
            Msg::Text => m.serialize_entry("type", "text")?,
        }
        m.end()
    }
}

// ---- reading back ----------------------------------------------------------

/// What a bytes line's annotation says: the line's [`Kind`], how many bytes
/// passed (`len`), and the annotation as a value. `shown` is how many bytes
/// the line holds. An annotation is understood only when [`note_text`] would
/// write exactly it again; anything else is [`Annotation::Other`], kept as
/// written, with kind raw.
pub fn read(note: &str, shown: usize) -> (Kind, u64, Annotation) {
    let shown = shown as u64;
    let check = |kind: Kind, len: u64, a: Annotation| {
        let b = Bytes {
            stream: super::Stream::In,
            bytes: vec![0; shown as usize],
            len,
            kind,
            note: Some(a.clone()),
        };
        (note_text(&b).as_deref() == Some(note)).then_some((kind, len, a))
    };
    // An SFTP packet's: kept as written (its fields are in its bytes), its
    // length from the tracer's suffix when only a head is shown.
    if sftp::looks_like_packet_note(note) {
        let len = note
            .strip_suffix(" shown")
            .and_then(|r| r.rsplit_once(", first "))
            .filter(|(_, n)| canonical_u64(n) == Some(shown))
            .and_then(|(r, _)| r.rsplit_once(", "))
            .and_then(|(_, l)| l.strip_suffix(" B").and_then(canonical_u64))
            .filter(|l| *l > shown)
            .unwrap_or(shown);
        return (Kind::Packet, len, Annotation::Other(note.to_string()));
    }
    // The tracer's own annotations.
    if note == DATA_PART {
        return (Kind::Data, shown, Annotation::DataPart);
    }
    if let Some((len, rest)) = note.split_once(" B, first ")
        && let Some(len) = canonical_u64(len)
        && rest.strip_suffix(" shown").and_then(canonical_u64) == Some(shown)
        && let Some(r) = check(Kind::Text, len, Annotation::CutText)
    {
        return r;
    }
    // A message, its tracer suffix, and a consequence after the last `; `
    // that reads back (a name may itself hold "; ").
    let mut candidates = vec![(note, None)];
    let mut at = note.len();
    while let Some(i) = note[..at].rfind("; ") {
        if let Some(c) = read_consequence(&note[i + 2..]) {
            candidates.push((&note[..i], Some(c)));
        }
        at = i;
    }
    for (body, consequence) in candidates {
        for (msg_part, suffix) in split_suffix(body, shown) {
            let Some(msg) = read_msg(msg_part) else {
                continue;
            };
            let kind = kind(&msg);
            // A data line without a suffix shows every byte it stands for (the
            // last line of a file split by `--data full`, or a whole one).
            let len = match (&msg, suffix) {
                (Decoded::Scp(Msg::Data { seen, .. }), Suffix::Head) => *seen,
                (_, Suffix::Len(len)) => len,
                _ => shown,
            };
            let a = Annotation::Msg {
                msg,
                consequence: consequence.clone(),
                latency_us: None,
            };
            if let Some(r) = check(kind, len, a) {
                return r;
            }
        }
    }
    (Kind::Raw, shown, Annotation::Other(note.to_string()))
}

/// What the tracer appended to a message's annotation.
#[derive(Debug, Clone, Copy)]
enum Suffix {
    None,
    /// `, first N shown` or `, not shown`: a file's head.
    Head,
    /// `, LEN B, first N shown`: a cut line of LEN bytes.
    Len(u64),
}

/// The ways an annotation may end in the tracer's suffix: the message part
/// and the suffix it would have.
fn split_suffix(body: &str, shown: u64) -> Vec<(&str, Suffix)> {
    let mut out = vec![(body, Suffix::None)];
    if let Some(m) = body.strip_suffix(", not shown") {
        out.push((m, Suffix::Head));
    }
    if let Some(rest) = body.strip_suffix(" shown")
        && let Some((m, n)) = rest.rsplit_once(", first ")
        && canonical_u64(n) == Some(shown)
    {
        out.push((m, Suffix::Head));
        if let Some((m2, len)) = m.rsplit_once(", ")
            && let Some(len) = len.strip_suffix(" B").and_then(canonical_u64)
        {
            out.push((m2, Suffix::Len(len)));
        }
    }
    out
}

/// A decimal number written the way Rust writes a `u64`.
fn canonical_u64(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().filter(|v| v.to_string() == s)
}

fn read_consequence(s: &str) -> Option<Consequence> {
    let name = |q: &str| unescape(q.as_bytes()).ok();
    let note = if let Some(why) = s.strip_prefix("not read: ") {
        let e = [
            Ended::OwnFatal,
            Ended::SinkRefused,
            Ended::SinkReturned,
            Ended::SinkBadEnd,
            Ended::SourceBadReply,
        ]
        .into_iter()
        .find(|e| ended(*e) == why)?;
        Note::Unread(e)
    } else if let Some(rest) = s.strip_prefix("the data of refused \"") {
        Note::MisreadData(name(rest.strip_suffix("\", read by the sink as a record")?)?)
    } else if let Some(rest) = s.strip_prefix("in place of the \\0 that ends \"") {
        Note::InPlaceOfEnd(name(rest.strip_suffix('"')?)?)
    } else if s == "the rest of a cut line, read as the next line" {
        Note::LineRest
    } else {
        return None;
    };
    Some(Consequence::Scp(note))
}

/// Reads a message's annotation back (the inverse of [`msg_note`]); the
/// caller checks that it writes the same text again.
fn read_msg(note: &str) -> Option<Decoded> {
    let name = |quoted: &str| unescape(quoted.as_bytes()).ok();
    let msg = if let Some(text) = note.strip_prefix("warning: ") {
        Msg::Warning(name(text)?)
    } else if let Some(text) = note.strip_prefix("error: ") {
        Msg::Fatal(name(text)?)
    } else if let Some(rest) = note.strip_prefix("times mtime ") {
        let (m, a) = rest.split_once(" atime ")?;
        let (mtime, mtime_us) = seconds(m)?;
        let (atime, atime_us) = seconds(a)?;
        Msg::Times {
            mtime,
            mtime_us,
            atime,
            atime_us,
        }
    } else if let Some(rest) = note.strip_prefix("leave dir \"") {
        Msg::EndDir {
            name: Some(name(rest.strip_suffix('"')?)?),
        }
    } else if let Some(rest) = note.strip_prefix("end of \"") {
        Msg::DataEnd {
            name: name(rest.strip_suffix('"')?)?,
        }
    } else if let Some(rest) = note.strip_prefix("file \"") {
        // The name may hold anything, `", ` included; what follows the last
        // `", ` never holds a quote.
        let (n, tail) = rest.rsplit_once("\", ")?;
        let (size, mode) = tail.split_once(" B, mode ")?;
        Msg::File {
            mode: octal(mode)?,
            size: size.parse().ok()?,
            name: name(n)?,
        }
    } else if let Some(rest) = note.strip_prefix("enter dir \"") {
        let (n, mode) = rest.rsplit_once("\", mode ")?;
        Msg::Dir {
            mode: octal(mode)?,
            name: name(n)?,
        }
    } else if let Some(rest) = note.strip_prefix("data of \"") {
        let (n, tail) = rest.rsplit_once("\", ")?;
        let name = name(n)?;
        if let Some(counts) = tail.strip_suffix(" B, incomplete") {
            let (seen, size) = counts.split_once(" of ")?;
            Msg::Data {
                name,
                size: size.parse().ok()?,
                seen: seen.parse().ok()?,
                complete: false,
            }
        } else {
            let size = tail.strip_suffix(" B")?.parse().ok()?;
            Msg::Data {
                name,
                size,
                seen: size,
                complete: true,
            }
        }
    } else if let Some(why) = note
        .strip_prefix("bad record (")
        .and_then(|r| r.strip_suffix(')'))
    {
        let why = ALL_REFUSALS.iter().copied().find(|r| refusal(*r) == why)?;
        Msg::BadRecord { why }
    } else {
        match note {
            "ack" => Msg::Ack,
            "leave dir" => Msg::EndDir { name: None },
            "not a reply: scp reads it as an error message" => Msg::BadReply(Vec::new()),
            "text" => Msg::Text,
            _ => return None,
        }
    };
    Some(Decoded::Scp(msg))
}

const ALL_REFUSALS: [Refusal; 19] = [
    Refusal::UnexpectedNewline,
    Refusal::MtimeSecNotPresent,
    Refusal::MtimeSecNotDelimited,
    Refusal::MtimeUsecNotDelimited,
    Refusal::AtimeSecNotPresent,
    Refusal::AtimeSecNotDelimited,
    Refusal::AtimeUsecNotDelimited,
    Refusal::Echoed,
    Refusal::ExpectedControlRecord,
    Refusal::BadMode,
    Refusal::ModeNotDelimited,
    Refusal::SizeNotPresent,
    Refusal::SizeNotDelimited,
    Refusal::SizeOutOfRange,
    Refusal::UnexpectedFilename(NameProblem::Empty),
    Refusal::UnexpectedFilename(NameProblem::Dot),
    Refusal::UnexpectedFilename(NameProblem::Slash),
    Refusal::DirWithoutR,
    Refusal::LostConnection,
];

/// `SECONDS.MICROSECONDS` as a `times` annotation writes it.
fn seconds(s: &str) -> Option<(u64, u64)> {
    let (sec, us) = s.split_once('.')?;
    Some((sec.parse().ok()?, us.parse().ok()?))
}

fn octal(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u32, |acc, b| {
        if (b'0'..=b'7').contains(&b) {
            acc.checked_mul(8)?.checked_add(u32::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::Stream;

    fn scp(m: Msg) -> Decoded {
        Decoded::Scp(m)
    }

    fn file(name: &[u8]) -> Msg {
        Msg::File {
            mode: 0o644,
            size: 21,
            name: name.to_vec(),
        }
    }

    fn line(msg: Msg, shown: usize, len: u64, c: Option<Note>) -> Bytes {
        let msg = scp(msg);
        Bytes {
            stream: Stream::In,
            bytes: vec![b'x'; shown],
            len,
            kind: kind(&msg),
            note: Some(Annotation::Msg {
                msg,
                consequence: c.map(Consequence::Scp),
                latency_us: None,
            }),
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
            (Msg::DataEnd { name: b"a".to_vec() }, "end of \"a\""),
            (
                Msg::BadRecord {
                    why: Refusal::ExpectedControlRecord,
                },
                "bad record (protocol error: expected control record)",
            ),
            (Msg::Text, "text"),
        ];
        for (msg, note) in cases {
            assert_eq!(msg_note(&scp(msg.clone())), note, "{msg:?}");
        }
    }

    #[test]
    fn every_annotation_reads_back() {
        let data = |seen, complete| Msg::Data {
            name: b"a; b\", c".to_vec(),
            size: 100,
            seen,
            complete,
        };
        let lines = vec![
            line(file(b"a"), 11, 11, None),
            line(file(b"odd\", 3 B, mode 0600; not read: x"), 30, 30, None),
            line(data(100, true), 32, 100, None),
            line(data(100, true), 0, 100, None),
            line(data(40, false), 32, 40, None),
            line(data(100, true), 100, 100, None),
            line(Msg::Text, 5, 5, Some(Note::Unread(Ended::SinkRefused))),
            line(
                Msg::BadRecord {
                    why: Refusal::ExpectedControlRecord,
                },
                6,
                6,
                Some(Note::MisreadData(b"x; y".to_vec())),
            ),
            line(
                Msg::Warning(b"w".to_vec()),
                3,
                3,
                Some(Note::InPlaceOfEnd(b"f".to_vec())),
            ),
            line(Msg::BadReply(vec![]), 3, 3, None),
            line(Msg::Text, 2047, 2047, Some(Note::LineRest)),
        ];
        for b in lines {
            let text = note_text(&b).unwrap();
            let (kind, len, a) = read(&text, b.bytes.len());
            assert_eq!((kind, len), (b.kind, b.len), "{text}");
            let back = Bytes {
                note: Some(a),
                ..b.clone()
            };
            assert_eq!(note_text(&back).as_deref(), Some(text.as_str()));
        }
        // What this version does not write is kept, as raw.
        assert_eq!(
            read("something new", 3),
            (Kind::Raw, 3, Annotation::Other("something new".into()))
        );
    }

    #[test]
    fn json_shapes() {
        let json = |m: Msg| {
            let mut out = Vec::new();
            let mut ser = serde_json::Serializer::new(&mut out);
            serde::Serialize::serialize(&MsgJson(&scp(m)), &mut ser).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            json(file(b"a")),
            r#"{"mode":"0644","name":"a","size":21,"type":"file"}"#
        );
        assert_eq!(
            json(Msg::EndDir { name: None }),
            r#"{"name":null,"type":"end_dir"}"#
        );
        assert_eq!(
            json(Msg::Warning(b"w\x01".to_vec())),
            r#"{"text":"w\\x01","type":"warning"}"#
        );
        assert_eq!(
            json(Msg::BadRecord {
                why: Refusal::BadMode
            }),
            r#"{"type":"bad_record","why":"protocol error: bad mode"}"#
        );
    }

    #[test]
    fn sentences_quote_escaped_and_capped() {
        let v = Finding::Scp(Violation {
            name: Name::OutputBeforeProtocol,
            dir: None,
            detail: Detail::Text(b"Welcome\x1b[2J\n".to_vec()),
        });
        let s = violation_line(&v);
        assert!(s.starts_with("output-before-protocol: "));
        assert!(s.contains("\"Welcome\\x1b[2J\\n\""), "{s}");
        assert!(!s.bytes().any(|b| b < 0x20 || b == 0x7f));
        let long = Finding::Scp(Violation {
            name: Name::OutputBeforeProtocol,
            dir: None,
            detail: Detail::Text(vec![b'a'; 500]),
        });
        assert!(violation_text(&long).ends_with("\"..."));
    }
}
