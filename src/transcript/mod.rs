//! What a transcript is made of, independent of how it is written.
//!
//! The relay and the tracer produce [`Event`]s holding typed values (the
//! decoders' messages and violations); a writer per format (text, JSON
//! Lines) consumes them through [`EventWriter`] and alone renders them as text,
//! through [`annotate`]. Nothing here does I/O itself.

pub mod annotate;
pub mod files;
pub mod jsonl;
pub mod parse;
pub mod read;
pub mod redecode;
pub mod repair;
pub mod select;
pub mod styled;
pub mod text;

use std::io;

/// One of the traced program's standard streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Bytes the peer sent to the program's stdin (`I:`).
    In,
    /// Bytes the program wrote to its stdout (`O:`).
    Out,
    /// Bytes the program wrote to its stderr (`E:`).
    Err,
}

impl Stream {
    /// The text form's line prefix letter.
    pub fn letter(self) -> char {
        match self {
            Stream::In => 'I',
            Stream::Out => 'O',
            Stream::Err => 'E',
        }
    }

    /// The name used in `>>> NAME closed` and in JSON Lines.
    pub fn name(self) -> &'static str {
        match self {
            Stream::In => "stdin",
            Stream::Out => "stdout",
            Stream::Err => "stderr",
        }
    }
}

/// What a bytes line holds, as far as the tracer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One read, undecoded (`--framing raw`, or a program that is not scp).
    Raw,
    /// A control record: `C`, `D`, `E` or `T`, with its newline.
    Record,
    /// `\0` from the sink.
    Ack,
    /// `\x01…\n`: a warning; the transfer goes on.
    Warning,
    /// `\x02…\n`: a fatal error.
    Fatal,
    /// A file's contents.
    Data,
    /// The `\0` the source sends after a file's contents.
    DataEnd,
    /// Bytes that are not protocol: a shell banner, stderr text, garbage.
    Text,
    /// One SFTP packet (its payload's head only, when it carries file data).
    Packet,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::Record => "record",
            Kind::Ack => "ack",
            Kind::Warning => "warning",
            Kind::Fatal => "fatal",
            Kind::Data => "data",
            Kind::DataEnd => "data_end",
            Kind::Text => "text",
            Kind::Packet => "packet",
        }
    }
}

/// A line of bytes that passed on one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Bytes {
    pub stream: Stream,
    /// The bytes shown (all of them, or a file's head).
    pub bytes: Vec<u8>,
    /// How many bytes passed; more than `bytes.len()` when only a head is shown.
    pub len: u64,
    pub kind: Kind,
    /// What the line is, for its annotation (written after `# `).
    pub note: Option<Annotation>,
}

impl Bytes {
    /// The decoded message this line holds, if any.
    pub fn msg(&self) -> Option<&Decoded> {
        match &self.note {
            Some(Annotation::Msg { msg, .. }) => Some(msg),
            _ => None,
        }
    }
}

pub use crate::protocol::{Msg as Decoded, Violation as Finding};

/// A consequence the decoder noted on a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consequence {
    Scp(crate::protocol::scp::Note),
}

/// What a bytes line is, as its annotation says. The writers render it
/// (`annotate::note_text`); reading a transcript back recovers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Annotation {
    /// A decoded message, and what the decoder noted about it.
    Msg {
        msg: Decoded,
        consequence: Option<Consequence>,
        /// For a reply: microseconds since the request it answers was read.
        latency_us: Option<u64>,
    },
    /// A part of a long file's data (`--data full` splits it into lines).
    DataPart,
    /// A stderr line longer than what a line shows: its length is `len`.
    CutText,
    /// An annotation read back that this version does not write (a newer
    /// scptrace's, or a hand edit): kept as written.
    Other(String),
}

/// One transcript line.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// `# key: value`, before the invocation line.
    Header {
        key: String,
        value: String,
    },
    /// `>>> New command invocation: ARGV` (already shell-quoted).
    Invocation(String),
    Bytes(Bytes),
    /// `>>> stdin closed` and so on.
    Closed(Stream),
    /// `!! NAME: SENTENCE`: a protocol violation found while tracing; the
    /// writers put it into words.
    Violation(Finding),
    /// `!! NAME: SENTENCE` read back from a transcript: what it says, not
    /// trusted (`check` decodes the bytes again).
    StoredViolation {
        name: String,
        text: String,
    },
    /// `!! TEXT`: a tracing problem (the log cap, a full disk).
    Problem(String),
    /// `>>> TEXT`: any other thing scptrace observed (a signal forwarded, a
    /// stream that failed).
    Note(String),
    /// A `>>>` (or `!!`) line about what the relay observed, written by the
    /// writers from the data ([`RelayNote::text`]); read back, it is a
    /// `Note` or a `Problem`.
    Relay(RelayNote),
    /// `#: N`; negative for a death by signal.
    Exit(i32),
}

/// What the relay observed besides bytes and ends, as data (the relay
/// formats nothing); the writers put it into words: `>>>` lines, and a `!!`
/// line for a failed read.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayNote {
    /// A signal (its name) received while the child ran, passed on to it.
    Forwarded(&'static str),
    /// A signal (its name) received after the child exited: it ended the
    /// wait for the rest of the child's output.
    AfterExit(&'static str),
    /// Writing to the destination of `stream` failed with `errno`; `lost`
    /// bytes read from its source were not delivered.
    WriteFailed { stream: Stream, errno: i32, lost: u64 },
    /// Reading the source of `stream` failed with `errno`: its end.
    ReadFailed { stream: Stream, errno: i32 },
    /// The child exited with `lost` bytes from the peer that its full stdin
    /// pipe never took.
    NotTaken { lost: u64 },
}

impl RelayNote {
    /// Whether it is a tracing problem (`!!`) rather than a note (`>>>`).
    pub fn is_problem(&self) -> bool {
        matches!(self, RelayNote::ReadFailed { .. })
    }

    /// The line's text, after `>>> ` or `!! `.
    pub fn text(&self) -> String {
        // strerror's text, as every message of ours (crate::errtext).
        let os = |errno: &i32| crate::errtext::io(&io::Error::from_raw_os_error(*errno));
        match self {
            RelayNote::Forwarded(sig) => format!("received {sig}, forwarded to the child"),
            RelayNote::AfterExit(sig) => {
                format!("received {sig} after the child exited: not waiting for the rest of its output")
            }
            RelayNote::WriteFailed { stream, errno, lost } => {
                let e = os(errno);
                match stream {
                    Stream::In => {
                        format!("the child closed its stdin ({e}); {lost} bytes from the peer not delivered")
                    }
                    Stream::Out => {
                        format!(
                            "writing our stdout failed ({e}); {lost} bytes of the child's output not delivered"
                        )
                    }
                    Stream::Err => {
                        format!(
                            "writing our stderr failed ({e}); {lost} bytes of the child's stderr not delivered"
                        )
                    }
                }
            }
            RelayNote::ReadFailed { stream, errno } => {
                let what = match stream {
                    Stream::In => "our stdin",
                    Stream::Out => "the child's stdout",
                    Stream::Err => "the child's stderr",
                };
                format!("reading {what} failed: {}", os(errno))
            }
            RelayNote::NotTaken { lost } => {
                format!("{lost} bytes from the peer not delivered: the child's stdin was full when it exited")
            }
        }
    }
}

/// An entry with the time it was observed, in seconds since the trace started.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub t: f64,
    pub entry: Entry,
}

/// What consumes events: a transcript writer (text, JSON Lines, styled), or a
/// test's vector. (Not the protocol's sink, `Role::Sink`.)
pub trait EventWriter {
    fn event(&mut self, ev: &Event) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

impl EventWriter for Vec<Event> {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.push(ev.clone());
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_line(entry: Entry) -> String {
        let mut line = Vec::new();
        text::render(&Event { t: 0.0, entry }, false, &mut line);
        String::from_utf8(line).unwrap()
    }

    /// The relay's typed notes come out as the sentences the relay used to
    /// format itself, and read back as the `Note` or `Problem` they were.
    #[test]
    fn relay_notes_render_as_lines_and_read_back() {
        let cases = [
            (
                RelayNote::Forwarded("SIGTERM"),
                ">>> received SIGTERM, forwarded to the child\n",
            ),
            (
                RelayNote::AfterExit("SIGINT"),
                ">>> received SIGINT after the child exited: not waiting for the rest of its output\n",
            ),
            (
                RelayNote::WriteFailed {
                    stream: Stream::Out,
                    errno: 32,
                    lost: 16384,
                },
                ">>> writing our stdout failed (Broken pipe); 16384 bytes of the child's output not delivered\n",
            ),
            (
                RelayNote::WriteFailed {
                    stream: Stream::In,
                    errno: 32,
                    lost: 5,
                },
                ">>> the child closed its stdin (Broken pipe); 5 bytes from the peer not delivered\n",
            ),
            (
                RelayNote::WriteFailed {
                    stream: Stream::Err,
                    errno: 32,
                    lost: 0,
                },
                ">>> writing our stderr failed (Broken pipe); 0 bytes of the child's stderr not delivered\n",
            ),
            (
                RelayNote::ReadFailed {
                    stream: Stream::In,
                    errno: 5,
                },
                "!! reading our stdin failed: I/O error\n",
            ),
            (
                RelayNote::NotTaken { lost: 7 },
                ">>> 7 bytes from the peer not delivered: the child's stdin was full when it exited\n",
            ),
        ];
        for (note, want) in cases {
            let got = text_line(Entry::Relay(note.clone()));
            assert_eq!(got, want);
            let back = parse::parse_line(got.trim_end().as_bytes()).unwrap().event.entry;
            let text = note.text();
            let expected = if note.is_problem() {
                Entry::Problem(text.clone())
            } else {
                Entry::Note(text.clone())
            };
            assert_eq!(back, expected, "{want}");
            let mut scratch = Vec::new();
            let mut json = Vec::new();
            jsonl::render(
                &Event {
                    t: 0.0,
                    entry: Entry::Relay(note.clone()),
                },
                false,
                &mut scratch,
                &mut json,
            )
            .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(v["text"], text.as_str(), "{want}");
            assert_eq!(v["kind"], if note.is_problem() { "problem" } else { "note" });
            let back = jsonl::parse_line(&json).unwrap().event.entry;
            assert_eq!(back, expected, "JSON: {want}");
        }
    }
}
