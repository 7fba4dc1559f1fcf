//! Decoding a saved transcript's bytes again, for `check` and
//! `show --violations`: a verdict comes from the bytes, never from the `!!`
//! lines a transcript holds (those can be edited, or come from another
//! version). Works for transcripts framed per read (`--framing raw`, the
//! seed logger's) and per message alike: their lines are fed in order, and
//! a line that shows only a file's head has the rest of its length passed
//! as unseen data, exactly as splice passes it live.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use super::read::{ReadError, read_transcript};
use super::repair::Repairs;
use super::{Entry, Kind, Stream};
use crate::protocol::{self, Decoder, Dir, Event, Protocol, scp};
use crate::shell::shell_split;

/// A decoder fed a transcript's events.
#[derive(Debug)]
pub struct Redecoder {
    dec: Decoder,
    out: Vec<Event>,
    /// Data lines whose unshown length the decoder did not expect.
    gaps: u64,
}

/// Filler fed for unshown data while the decoder still holds a file's bytes
/// (its reply came later in the transcript): the decoder needs the count.
const FILL: [u8; 4096] = [0; 4096];

impl Redecoder {
    /// A decoder for the session an invocation line describes, if it runs a
    /// legacy scp server (`scp … -t …` or `scp … -f …`, possibly after a
    /// wrapper such as `ssh host`) or an SFTP server.
    pub fn for_invocation(text: &str) -> Option<Redecoder> {
        Some(Redecoder {
            dec: Decoder::new(protocol_of(text)?),
            out: Vec::new(),
            gaps: 0,
        })
    }

    /// Feeds one transcript event; returns what the decoder made of it.
    pub fn event(&mut self, entry: &Entry) -> &[Event] {
        self.out.clear();
        match entry {
            Entry::Bytes(b) if b.stream != Stream::Err => {
                let dir = dir(b.stream);
                self.dec.feed(dir, &b.bytes, &mut self.out);
                let mut missing = b.len.saturating_sub(b.bytes.len() as u64);
                while missing > 0 {
                    let r = self.dec.data_remaining(dir);
                    if r > 0 {
                        let n = r.min(missing);
                        self.dec.skip(dir, n, &mut self.out);
                        missing -= n;
                    } else if self.dec.is_held() && matches!(b.kind, Kind::Data | Kind::Packet) {
                        let n = (FILL.len() as u64).min(missing);
                        self.dec.feed(dir, &FILL[..n as usize], &mut self.out);
                        missing -= n;
                    } else {
                        self.gaps += 1;
                        break;
                    }
                }
            }
            Entry::Closed(s) if *s != Stream::Err => self.dec.eof(dir(*s), &mut self.out),
            Entry::Exit(_) => self.dec.finish(&mut self.out),
            _ => {}
        }
        &self.out
    }

    /// The end of the transcript: what the decoder still has to say.
    pub fn finish(&mut self) -> &[Event] {
        self.out.clear();
        self.dec.finish(&mut self.out);
        &self.out
    }
}

fn dir(s: Stream) -> Dir {
    if s == Stream::In { Dir::In } else { Dir::Out }
}

/// The protocol of the session an invocation line runs: an SFTP server
/// (`…/sftp-server`, `internal-sftp`, or `record`'s `subsystem sftp` leg), or
/// a legacy scp server. In `SHELL -c LINE` (how `forced` and `record` show a
/// command line that holds control characters, `shell::command_line`), the
/// session LINE runs.
pub fn protocol_of(text: &str) -> Option<Protocol> {
    if text == "subsystem sftp" {
        return Some(Protocol::Sftp);
    }
    let words = shell_split(text.as_bytes())?;
    protocol_of_words(&words).or_else(|| match words.as_slice() {
        [_, c, line] if c == b"-c" => protocol_of_words(&shell_split(line)?),
        _ => None,
    })
}

fn protocol_of_words(words: &[Vec<u8>]) -> Option<Protocol> {
    let sftp = words.iter().any(|w| {
        let name = Path::new(OsStr::from_bytes(w)).file_name();
        name == Some("sftp-server".as_ref()) || w == b"internal-sftp"
    });
    if sftp {
        return Some(Protocol::Sftp);
    }
    scp_args(words).map(Protocol::Scp)
}

/// The scp server options in a command's words: the words after the first
/// one named `scp`.
fn scp_args(words: &[Vec<u8>]) -> Option<scp::Options> {
    let at = words
        .iter()
        .position(|w| Path::new(OsStr::from_bytes(w)).file_name() == Some("scp".as_ref()))?;
    let args: Vec<OsString> = words[at + 1..]
        .iter()
        .map(|w| OsString::from_vec(w.clone()))
        .collect();
    scp::Options::from_scp_args(&args)
}

/// How much of a transcript could be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// Decoded from its invocation line to its exit status.
    Whole,
    /// No line at all.
    Empty,
    /// No `#:` line, or the transcript says it was truncated: what is there
    /// was decoded.
    Cut,
    /// Not a legacy scp server session (or no invocation line): nothing to decode.
    NotScp { invocation: Option<String> },
}

/// What decoding a transcript's bytes found.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub coverage: Coverage,
    /// The violations the bytes hold, in order.
    pub found: Vec<protocol::Violation>,
    /// Tracing problems the transcript reports (a cap, a failed write).
    pub problems: Vec<String>,
    /// The transcript's own violation lines (`name: text`), not trusted.
    pub stored: Vec<String>,
    /// Messages the decoder framed.
    pub messages: u64,
    /// Data lines whose length decoding did not expect there.
    pub gaps: u64,
    /// The transcript is framed per message (it should hold its violations).
    pub framed: bool,
    /// What reading it had to repair (a pasted copy's).
    pub repairs: Repairs,
}

impl Verdict {
    /// Whether the transcript's own `!!` lines name other violations than
    /// its bytes hold (by name and order: sentences may change between
    /// versions, names do not).
    pub fn disagrees(&self) -> bool {
        let found: Vec<&str> = self.found.iter().map(protocol::Violation::name).collect();
        let stored: Vec<&str> = self
            .stored
            .iter()
            .map(|l| l.split_once(": ").map_or(l.as_str(), |(n, _)| n))
            .collect();
        (self.framed || !self.stored.is_empty()) && found != stored
    }
}

/// Reads a transcript and decodes its bytes again.
pub fn verdict(path: &Path) -> Result<Verdict, ReadError> {
    let mut v = Verdict {
        coverage: Coverage::Empty,
        found: Vec::new(),
        problems: Vec::new(),
        stored: Vec::new(),
        messages: 0,
        gaps: 0,
        framed: false,
        repairs: Repairs::default(),
    };
    let mut redecoder: Option<Redecoder> = None;
    let (mut any, mut invocation, mut exit, mut truncated) = (false, None, false, false);
    let take = |evs: &[Event], v: &mut Verdict| {
        for e in evs {
            match e {
                Event::Violation(x) => v.found.push(x.clone()),
                Event::Frame { .. } => v.messages += 1,
                Event::DataStart { .. } => {}
            }
        }
    };
    v.repairs = read_transcript(path, |p| {
        any = true;
        match &p.event.entry {
            Entry::Invocation(text) if invocation.is_none() => {
                invocation = Some(text.clone());
                redecoder = Redecoder::for_invocation(text);
            }
            Entry::StoredViolation { name, text } => v.stored.push(format!("{name}: {text}")),
            Entry::Problem(text) => {
                truncated |= text.starts_with("transcript truncated");
                v.problems.push(text.clone());
            }
            Entry::Bytes(b) if b.kind != Kind::Raw && b.stream != Stream::Err => v.framed = true,
            Entry::Exit(_) => exit = true,
            _ => {}
        }
        if let Some(r) = redecoder.as_mut() {
            let evs = r.event(&p.event.entry).to_vec();
            take(&evs, &mut v);
        }
        Ok(())
    })?;
    if let Some(r) = redecoder.as_mut() {
        let evs = r.finish().to_vec();
        take(&evs, &mut v);
        v.gaps = r.gaps;
    }
    v.coverage = if !any {
        Coverage::Empty
    } else if redecoder.is_none() {
        Coverage::NotScp { invocation }
    } else if !exit || truncated {
        Coverage::Cut
    } else {
        Coverage::Whole
    };
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::parse::parse_text;

    fn decode(text: &str) -> Vec<&'static str> {
        let mut r: Option<Redecoder> = None;
        let mut found = Vec::new();
        let mut push = |evs: &[Event]| {
            for e in evs {
                if let Event::Violation(v) = e {
                    found.push(v.name());
                }
            }
        };
        for p in parse_text(text.as_bytes()).unwrap() {
            if let Entry::Invocation(t) = &p.event.entry {
                r = Redecoder::for_invocation(t);
            }
            if let Some(r) = r.as_mut() {
                push(r.event(&p.event.entry));
            }
        }
        let mut r = r.expect("an scp invocation");
        push(r.finish());
        found
    }

    #[test]
    fn invocation_options() {
        let scp_options = |text: &str| match protocol_of(text) {
            Some(Protocol::Scp(o)) => Some(o),
            _ => None,
        };
        let o = scp_options("/usr/bin/scp -r -p -t dst").unwrap();
        assert_eq!((o.role, o.recursive, o.preserve), (scp::Role::Sink, true, true));
        let o = scp_options("ssh -x host scp -f '/tmp/a b'").unwrap();
        assert_eq!(o.role, scp::Role::Source);
        assert!(scp_options("/usr/bin/cat").is_none());
        assert!(scp_options("/usr/bin/scp a host:b").is_none());
        let o = scp_options("/bin/sh -c $'scp -r -t /x\\x1b[2J'").unwrap();
        assert_eq!((o.role, o.recursive), (scp::Role::Sink, true));
        assert_eq!(
            protocol_of("/bin/sh -c $'/usr/lib/openssh/sftp-server -d /x\\x1b'"),
            Some(Protocol::Sftp)
        );
    }

    const CLEAN: &str = ">>> New command invocation: /usr/bin/scp -t /tmp\n\
O: \\0\nI: C0644 21 a\\n\nO: \\0\nI: file a file a file a\\n\\0\nO: \\0\n\
>>> stdin closed\n>>> stdout closed\n#: 0\n";

    #[test]
    fn raw_transcripts_are_decoded_again() {
        assert!(decode(CLEAN).is_empty());
        let slash = CLEAN.replace("C0644 21 a", "C0644 21 ../a");
        assert_eq!(decode(&slash), ["name-slash"]);
        // Split reads are one session all the same.
        let split = slash.replace("I: C0644 21 ../a\\n\n", "I: C06\nI: 44 21 ../a\\n\n");
        assert_eq!(decode(&split), ["name-slash"]);
    }

    #[test]
    fn framed_transcripts_are_decoded_too_and_stored_verdicts_ignored() {
        // An edited framed transcript: the name now has a '/', and no `!!` says so.
        let framed = ">>> New command invocation: /usr/bin/scp -t /tmp\n\
O: \\0\t# ack\nI: C0644 3 sub/a.txt\\n\t# file \"sub/a.txt\", 3 B, mode 0644\n\
O: \\x01scp: error: unexpected filename: sub/a.txt\\n\t# warning: scp: error: unexpected filename: sub/a.txt\n#: 1\n";
        assert_eq!(decode(framed), ["name-slash"]);
        // A head-only data line passes the rest of its length unseen.
        let head = ">>> New command invocation: /usr/bin/scp -t /tmp\n\
O: \\0\t# ack\nI: C0644 100 a\\n\t# file \"a\", 100 B, mode 0644\nO: \\0\t# ack\n\
I: 0123\t# data of \"a\", 100 B, first 4 shown\nI: \\0\t# end of \"a\"\nO: \\0\t# ack\n#: 0\n";
        assert!(decode(head).is_empty(), "{:?}", decode(head));
    }
}
