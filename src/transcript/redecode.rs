//! Decoding a saved transcript again: one recorded with `--framing raw` (or
//! by the seed logger) holds only bytes, so `check` and `show --summary` feed
//! them to the decoder exactly as the tracer would have fed them live.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use super::{Entry, Kind, Stream};
use crate::protocol::scp::{self, Decoder};
use crate::shell::shell_split;

/// Decodes a transcript framed per read again, fed event by event.
#[derive(Debug)]
pub struct Redecoder {
    dec: Decoder,
    out: Vec<scp::Event>,
    /// Every bytes line so far was one read (kind `raw`).
    raw_only: bool,
    /// Some stdin/stdout bytes were fed.
    fed: bool,
}

impl Redecoder {
    /// A decoder for the session an invocation line describes, if it runs a
    /// legacy scp server (`scp … -t …` or `scp … -f …`, possibly after a
    /// wrapper such as `ssh host`).
    pub fn for_invocation(text: &str) -> Option<Redecoder> {
        Some(Redecoder {
            dec: Decoder::new(scp_options(text)?),
            out: Vec::new(),
            raw_only: true,
            fed: false,
        })
    }

    /// Feeds one transcript event; returns what the decoder made of it.
    pub fn event(&mut self, entry: &Entry) -> &[scp::Event] {
        self.out.clear();
        match entry {
            Entry::Bytes(b) if b.kind != Kind::Raw => self.raw_only = false,
            Entry::Bytes(b) if self.raw_only && b.stream != Stream::Err => {
                self.fed |= !b.bytes.is_empty();
                self.dec.feed(dir(b.stream), &b.bytes, &mut self.out);
            }
            Entry::Closed(s) if self.raw_only && *s != Stream::Err => self.dec.eof(dir(*s), &mut self.out),
            Entry::Exit(_) if self.raw_only => self.dec.finish(&mut self.out),
            _ => {}
        }
        &self.out
    }

    /// The end of the transcript: what the decoder still has to say.
    pub fn finish(&mut self) -> &[scp::Event] {
        self.out.clear();
        if self.raw_only {
            self.dec.finish(&mut self.out);
        }
        &self.out
    }

    /// Whether the transcript was framed per read and held bytes, so that
    /// what this decoder found is the verdict.
    pub fn applies(&self) -> bool {
        self.raw_only && self.fed
    }
}

fn dir(s: Stream) -> scp::Dir {
    if s == Stream::In {
        scp::Dir::In
    } else {
        scp::Dir::Out
    }
}

/// The scp server options in an invocation line: the words after the first
/// one named `scp`.
fn scp_options(text: &str) -> Option<scp::Options> {
    let words = shell_split(text.as_bytes())?;
    let at = words
        .iter()
        .position(|w| Path::new(OsStr::from_bytes(w)).file_name() == Some("scp".as_ref()))?;
    let args: Vec<OsString> = words[at + 1..]
        .iter()
        .map(|w| OsString::from_vec(w.clone()))
        .collect();
    scp::Options::from_scp_args(&args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::parse::parse_text;

    fn decode(text: &str) -> (Vec<String>, bool) {
        let mut r: Option<Redecoder> = None;
        let mut found = Vec::new();
        for p in parse_text(text.as_bytes()).unwrap() {
            if let Entry::Invocation(t) = &p.event.entry {
                r = Redecoder::for_invocation(t);
            }
            if let Some(r) = r.as_mut() {
                for e in r.event(&p.event.entry) {
                    if let scp::Event::Violation { v, .. } = e {
                        found.push(v.name.to_string());
                    }
                }
            }
        }
        let mut r = r.expect("an scp invocation");
        for e in r.finish() {
            if let scp::Event::Violation { v, .. } = e {
                found.push(v.name.to_string());
            }
        }
        (found, r.applies())
    }

    #[test]
    fn invocation_options() {
        let o = scp_options("/usr/bin/scp -r -p -t dst").unwrap();
        assert_eq!((o.role, o.recursive, o.preserve), (scp::Role::Sink, true, true));
        let o = scp_options("ssh -x host scp -f '/tmp/a b'").unwrap();
        assert_eq!(o.role, scp::Role::Source);
        assert!(scp_options("/usr/bin/cat").is_none());
        assert!(scp_options("/usr/bin/scp a host:b").is_none());
    }

    #[test]
    fn raw_transcripts_are_decoded_again() {
        let clean_upload = ">>> New command invocation: /usr/bin/scp -t /tmp\n\
O: \\0\nI: C0644 21 a\\n\nO: \\0\nI: file a file a file a\\n\\0\nO: \\0\n\
>>> stdin closed\n>>> stdout closed\n#: 0\n";
        assert_eq!(decode(clean_upload), (vec![], true));
        let slash = clean_upload.replace("C0644 21 a", "C0644 21 ../a");
        let (found, applies) = decode(&slash);
        assert!(applies);
        assert!(found.contains(&"name-slash".to_string()), "{found:?}");
        // Split reads are one session all the same.
        let split = slash.replace("I: C0644 21 ../a\\n\n", "I: C06\nI: 44 21 ../a\\n\n");
        assert_eq!(decode(&split).0, found);
    }

    #[test]
    fn decoded_transcripts_are_not_decoded_again() {
        let framed = ">>> New command invocation: /usr/bin/scp -t /tmp\n\
O: \\0\t# ack\nI: C0644 21 ../a\\n\t# file \"../a\", 21 B, mode 0644\n#: 0\n";
        assert!(!decode(framed).1);
    }
}
