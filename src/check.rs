//! `scptrace check`: list the protocol violations in saved transcripts, for
//! scripts and CI: exit 1 if there are any, 0 if none, 2 if a file cannot be
//! read or is malformed.
//!
//! A transcript recorded per message already holds the decoder's verdict as
//! `!! name: sentence` lines. One recorded with `--framing raw` holds only
//! bytes: it is decoded again here, exactly as the tracer would have decoded
//! it live, so raw transcripts (including the seed logger's) can be checked.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use crate::config::{ColorWhen, Flags, Settings};
use crate::scp::{self, Decoder};
use crate::show::{ReadError, clean, display_name, read_transcript};
use crate::style::Styles;
use crate::transcript::parse::violation_name;
use crate::transcript::{Entry, Kind, Stream};

/// Decode transcripts and list protocol violations; exit 1 if any
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Transcript files, text or JSON Lines; `-` for standard input
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// When to colour the output [env: SCPTRACE_COLOR] [default: auto]
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorWhen>,
}

/// Decodes a transcript framed per read again, fed event by event.
#[derive(Debug)]
pub(crate) struct Redecoder {
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
    pub(crate) fn for_invocation(text: &str) -> Option<Redecoder> {
        Some(Redecoder {
            dec: Decoder::new(scp_options(text)?),
            out: Vec::new(),
            raw_only: true,
            fed: false,
        })
    }

    /// Feeds one transcript event; returns what the decoder made of it.
    pub(crate) fn event(&mut self, entry: &Entry) -> &[scp::Event] {
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
    pub(crate) fn finish(&mut self) -> &[scp::Event] {
        self.out.clear();
        if self.raw_only {
            self.dec.finish(&mut self.out);
        }
        &self.out
    }

    /// Whether the transcript was framed per read and held bytes, so that
    /// what this decoder found is the verdict.
    pub(crate) fn applies(&self) -> bool {
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
    let words = crate::replay::shell_split(text.as_bytes())?;
    let at = words
        .iter()
        .position(|w| Path::new(std::ffi::OsStr::from_bytes(w)).file_name() == Some("scp".as_ref()))?;
    let args: Vec<OsString> = words[at + 1..]
        .iter()
        .map(|w| OsString::from_vec(w.clone()))
        .collect();
    scp::Options::from_scp_args(&args)
}

/// The violations of one transcript, as `name: sentence` texts, in order.
pub(crate) fn violations(path: &Path) -> Result<Vec<String>, ReadError> {
    let mut recorded = Vec::new();
    let mut decoded = Vec::new();
    let mut redecoder: Option<Redecoder> = None;
    let mut seen_invocation = false;
    let collect = |evs: &[scp::Event], into: &mut Vec<String>| {
        for e in evs {
            if let scp::Event::Violation { v, .. } = e {
                into.push(format!("{}: {}", v.name, v.text));
            }
        }
    };
    read_transcript(path, |p| {
        match &p.event.entry {
            Entry::Invocation(text) if !seen_invocation => {
                seen_invocation = true;
                redecoder = Redecoder::for_invocation(text);
            }
            Entry::Problem(text) if violation_name(text).is_some() => recorded.push(text.clone()),
            _ => {}
        }
        if let Some(r) = redecoder.as_mut() {
            collect(r.event(&p.event.entry), &mut decoded);
        }
        Ok(())
    })?;
    match redecoder {
        Some(mut r) => {
            collect(r.finish(), &mut decoded);
            Ok(if r.applies() { decoded } else { recorded })
        }
        None => Ok(recorded),
    }
}

pub fn run(args: CheckArgs) -> Result<i32> {
    let settings = Settings::load(Flags {
        color: args.color,
        ..Flags::default()
    });
    let st = Styles::for_stdout(settings.color.value);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut status = 0;
    for path in &args.files {
        match violations(path) {
            Ok(list) => {
                for v in &list {
                    let name = violation_name(v).unwrap_or_default();
                    let line = format!(
                        "{} {}{}{}\n",
                        st.label.style(clean(&format!("{}:", display_name(path)))),
                        st.problem.style("!! "),
                        st.violation.style(name),
                        st.problem.style(clean(&v[name.len()..])),
                    );
                    match out.write_all(line.as_bytes()) {
                        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(1),
                        Err(e) => {
                            eprintln!("scptrace: writing output: {e}");
                            return Ok(2);
                        }
                        Ok(()) => {}
                    }
                }
                if !list.is_empty() && status == 0 {
                    status = 1;
                }
            }
            Err(e) => {
                e.report(path);
                status = 2;
            }
        }
    }
    Ok(status)
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
