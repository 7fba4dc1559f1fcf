//! Fuzz target `sftp`: arbitrary bytes, cut into directions and chunks, fed
//! to the SFTP decoder (`scptrace::protocol::sftp`), then the same bytes fed
//! one byte at a time to a second decoder. Checks the decoder's contract
//! (docs/sftp-decoder.md §2): no panic; frames never empty, contiguous per
//! direction and never past the input; a DataStart inside the frame being
//! built, that frame covering its payload unless cut; a raw frame's `seen`
//! equal to its bytes; every violation's name that of its detail, in
//! kebab-case; after `finish` every byte in exactly one frame; and the
//! splitting of the input (and splicing payloads instead of reading them)
//! never changes what is decoded.
//!
//! Input: a sequence of operations, each an op byte (bit 0: direction; bits
//! 1–3: 0–4 feed, 5 skip (as a splice would), 6 eof, 7 feed) and a length
//! byte (255: two more bytes, little-endian), followed by that many bytes of
//! payload. `scripts/capture-sftp-ref.py --seeds` writes the captured
//! sessions in this form to fuzz/seeds/sftp/.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scptrace::protocol::sftp::{Decoder, Dir, Event, Msg, Violation};

/// Events with each frame's start made explicit.
#[derive(Debug, PartialEq)]
enum Abs {
    Frame(Dir, u64, u64, Msg),
    DataStart(Dir, u64, u64),
    Violation(Violation),
}

struct Run {
    dec: Decoder,
    fed: [u64; 2],
    framed: [u64; 2],
    data: [Option<(u64, u64)>; 2],
    out: Vec<Abs>,
}

impl Run {
    fn new() -> Run {
        Run {
            dec: Decoder::new(),
            fed: [0, 0],
            framed: [0, 0],
            data: [None, None],
            out: Vec::new(),
        }
    }

    fn absorb(&mut self, events: Vec<Event>) {
        for ev in events {
            match ev {
                Event::Frame { dir, end, msg } => {
                    let d = dir.index();
                    assert!(end > self.framed[d], "empty or backwards frame {msg:?}");
                    assert!(end <= self.fed[d], "frame past the input {msg:?}");
                    let cut = match &msg {
                        Msg::Truncated { .. } => true,
                        Msg::Raw { declared, seen } => {
                            assert_eq!(*seen, end - self.framed[d], "raw frame length");
                            *seen < 4 + u64::from(*declared)
                        }
                        _ => false,
                    };
                    if let Some((at, len)) = self.data[d].take() {
                        assert!(cut || end >= at + len, "frame ends inside its payload");
                    }
                    let start = std::mem::replace(&mut self.framed[d], end);
                    self.out.push(Abs::Frame(dir, start, end, msg));
                }
                Event::DataStart { dir, at, len } => {
                    let d = dir.index();
                    assert!(len > 0, "empty payload announced");
                    assert!(at >= self.framed[d] && at <= self.fed[d], "DataStart outside its frame");
                    assert!(self.data[d].replace((at, len)).is_none(), "two DataStarts in a frame");
                    self.out.push(Abs::DataStart(dir, at, len));
                }
                Event::Violation(v) => {
                    assert_eq!(v.name, v.detail.name());
                    assert!(v.name.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
                    self.out.push(Abs::Violation(v));
                }
            }
        }
    }

    fn feed(&mut self, dir: Dir, bytes: &[u8]) {
        self.fed[dir.index()] += bytes.len() as u64;
        let mut ev = Vec::new();
        self.dec.feed(dir, bytes, &mut ev);
        self.absorb(ev);
    }

    fn skip(&mut self, dir: Dir, n: u64) {
        assert!(n <= self.dec.data_remaining(dir));
        self.fed[dir.index()] += n;
        let mut ev = Vec::new();
        self.dec.skip(dir, n, &mut ev);
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
    let mut rest = data;
    let mut chunked = Run::new();
    let mut bytewise = Run::new();
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
                // A splice: only payload the decoder announced may be skipped.
                let n = chunked.dec.data_remaining(dir).min(payload.len() as u64) as usize;
                if n > 0 {
                    chunked.skip(dir, n as u64);
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
