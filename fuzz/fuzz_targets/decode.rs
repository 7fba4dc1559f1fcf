//! Fuzz target `decode`: arbitrary bytes, cut into directions and chunks,
//! fed to the SCP decoder, then the same bytes fed one byte at a time to a
//! second decoder. Checks the decoder's contract (docs/decoder.md §3.4, §6):
//! no panic, frames never empty and contiguous per direction, every byte in
//! exactly one frame after `finish`, a data frame's `seen` equal to its bytes,
//! annotations and violation sentences fit on one transcript line, and the
//! splitting of the input never changes what is decoded.
//!
//! Input: byte 0 picks the options (role, -r, -d, -p); then a sequence of
//! operations, each an op byte (bit 0: direction; bits 1–3: 0–4 feed, 5 skip
//! (as a splice would), 6 eof, 7 feed) and a length byte (255: two more
//! bytes, little-endian), followed by that many bytes of payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scptrace::protocol::scp::{Decoder, Dir, Event, Frame, Msg, Options, Role};
use scptrace::transcript::{Annotation, Bytes, Consequence, Decoded, Finding, Stream, annotate};

/// Events as the decoder reports them (offsets are absolute already).
#[derive(Debug, PartialEq)]
enum Abs {
    Frame(Dir, usize, Msg),
    DataStart(Dir, usize, u64),
    Violation(Option<Dir>, &'static str, String),
}

struct Run {
    dec: Decoder,
    fed: [usize; 2],
    framed: [usize; 2],
    out: Vec<Abs>,
}

fn ix(d: Dir) -> usize {
    match d {
        Dir::In => 0,
        Dir::Out => 1,
    }
}

fn one_line(s: &str, what: &str) {
    assert!(
        s.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "{what} is not printable ASCII on one line: {s:?}"
    );
}

impl Run {
    fn new(o: Options) -> Run {
        Run {
            dec: Decoder::new(o),
            fed: [0, 0],
            framed: [0, 0],
            out: Vec::new(),
        }
    }

    /// Checks and records the events of one call.
    fn absorb(&mut self, events: Vec<Event>) {
        for ev in events {
            match ev {
                Event::Frame(Frame { dir, end, msg, note }) => {
                    let d = ix(dir);
                    let abs = end as usize;
                    assert!(abs > self.framed[d], "empty or backwards frame {msg:?}");
                    assert!(abs <= self.fed[d], "frame past the input {msg:?}");
                    if let Msg::Data { seen, .. } = &msg {
                        assert_eq!(*seen as usize, abs - self.framed[d], "data frame length");
                    }
                    let b = Bytes {
                        stream: Stream::In,
                        bytes: Vec::new(),
                        len: 0,
                        kind: annotate::kind(&Decoded::Scp(msg.clone())),
                        note: Some(Annotation::Msg {
                            msg: Decoded::Scp(msg.clone()),
                            consequence: note.map(Consequence::Scp),
                        }),
                    };
                    one_line(&annotate::note_text(&b).unwrap_or_default(), "annotation");
                    self.framed[d] = abs;
                    self.out.push(Abs::Frame(dir, abs, msg));
                }
                Event::DataStart { dir, at, size } => {
                    let abs = at as usize;
                    assert_eq!(abs, self.framed[ix(dir)], "DataStart not at a frame boundary");
                    self.out.push(Abs::DataStart(dir, abs, size));
                }
                Event::Violation(v) => {
                    let (dir, name) = (v.dir, v.name.as_str());
                    let text = annotate::violation_text(&Finding::Scp(v));
                    assert!(!text.is_empty());
                    assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
                    one_line(&text, "violation sentence");
                    self.out.push(Abs::Violation(dir, name, text));
                }
            }
        }
    }

    fn feed(&mut self, dir: Dir, bytes: &[u8]) {
        self.fed[ix(dir)] += bytes.len();
        let mut ev = Vec::new();
        self.dec.feed(dir, bytes, &mut ev);
        self.absorb(ev);
    }

    fn skip(&mut self, dir: Dir, n: usize) {
        assert!(n as u64 <= self.dec.data_remaining(dir));
        self.fed[ix(dir)] += n;
        let mut ev = Vec::new();
        self.dec.skip(dir, n as u64, &mut ev);
        self.absorb(ev);
    }

    fn eof(&mut self, dir: Dir) {
        let mut ev = Vec::new();
        self.dec.eof(dir, &mut ev);
        self.absorb(ev);
    }

    fn finish(mut self) -> Vec<Abs> {
        let mut ev = Vec::new();
        self.dec.finish(&mut ev);
        self.absorb(ev);
        assert_eq!(self.framed, self.fed, "bytes left unframed");
        self.out
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&o, mut rest)) = data.split_first() else {
        return;
    };
    let opts = Options {
        role: if o & 1 == 0 { Role::Sink } else { Role::Source },
        recursive: o & 2 != 0,
        target_dir: o & 4 != 0,
        preserve: o & 8 != 0,
    };
    let mut chunked = Run::new(opts);
    let mut bytewise = Run::new(opts);
    while let [op, len, tail @ ..] = rest {
        let (len, tail) = match (*len, tail) {
            (255, [a, b, t @ ..]) => (usize::from(u16::from_le_bytes([*a, *b])), t),
            (l, t) => (usize::from(l), t),
        };
        let (payload, t) = tail.split_at(len.min(tail.len()));
        rest = t;
        let dir = if op & 1 == 0 { Dir::In } else { Dir::Out };
        match (op >> 1) & 7 {
            5 => {
                // A splice: only file data the decoder announced may be skipped.
                let n = (chunked.dec.data_remaining(dir).min(payload.len() as u64)) as usize;
                if n > 0 {
                    chunked.skip(dir, n);
                    for b in &payload[..n] {
                        bytewise.feed(dir, std::slice::from_ref(b));
                    }
                }
            }
            6 => {
                chunked.eof(dir);
                bytewise.eof(dir);
            }
            _ => {
                chunked.feed(dir, payload);
                for b in payload {
                    bytewise.feed(dir, std::slice::from_ref(b));
                }
            }
        }
    }
    let a = chunked.finish();
    let b = bytewise.finish();
    assert_eq!(a, b, "splitting changed what was decoded");
});
