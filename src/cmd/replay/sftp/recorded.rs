//! The recorded conversation, packet by packet: a transcript's `I:` and `O:`
//! lines fed to the SFTP decoder again (the bytes are what counts, never the
//! annotations, which a sender may have edited), each packet with the head
//! of its payload (WRITE's or DATA's data) the recording holds.

use crate::protocol::Dir;
use crate::protocol::sftp::{Decoder, Event, MAX_PACKET, Msg};
use crate::transcript::{Bytes, Stream};

/// Most payload bytes kept of one packet (a packet's payload is at most
/// this long in any OpenSSH peer).
pub const PAYLOAD_CAP: usize = MAX_PACKET as usize;

/// WRITE's or DATA's data: the bytes the recording holds (a head), and the
/// length the packet declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payload {
    pub known: Vec<u8>,
    pub len: u64,
}

/// One recorded packet, complete.
#[derive(Debug, Clone)]
pub struct Packet {
    /// The line it ends on.
    pub no: u64,
    pub dir: Dir,
    pub msg: Msg,
    pub payload: Option<Payload>,
}

struct Collect {
    /// Absolute offset of the payload's first byte in its direction.
    at: u64,
    len: u64,
    known: Vec<u8>,
    /// Bytes the recording lacked came: nothing after them is known.
    gap: bool,
}

impl Collect {
    /// Takes the part of `input` (starting at absolute `base`) in the payload.
    fn take(&mut self, base: u64, input: Input) {
        let end = self.at + self.len;
        let from = self.at.max(base);
        let to = end.min(base + input.len());
        if from >= to {
            return;
        }
        match input {
            Input::Real(b) if !self.gap && self.known.len() < PAYLOAD_CAP => {
                // Only a prefix is kept: bytes must follow the known ones.
                if from - self.at == self.known.len() as u64 {
                    let s = &b[(from - base) as usize..(to - base) as usize];
                    let room = PAYLOAD_CAP - self.known.len();
                    self.known.extend_from_slice(&s[..s.len().min(room)]);
                }
            }
            Input::Real(_) => {}
            Input::Counted(_) => self.gap = true,
        }
    }
}

#[derive(Clone, Copy)]
enum Input<'a> {
    Real(&'a [u8]),
    Counted(u64),
}

impl Input<'_> {
    fn len(&self) -> u64 {
        match self {
            Input::Real(b) => b.len() as u64,
            Input::Counted(n) => *n,
        }
    }
}

/// Both directions of the recording, decoded as they come.
pub struct Recorded {
    dec: Decoder,
    events: Vec<Event>,
    fed: [u64; 2],
    collect: [Option<Collect>; 2],
    /// Bytes of `I:`/`O:` lines counted past what the decoder could take
    /// (edited lines): not replayed.
    pub lost: u64,
}

impl Default for Recorded {
    fn default() -> Self {
        Recorded::new()
    }
}

impl Recorded {
    pub fn new() -> Recorded {
        Recorded {
            dec: Decoder::new(),
            events: Vec::new(),
            fed: [0; 2],
            collect: [None, None],
            lost: 0,
        }
    }

    /// One bytes line: the packets it completes go to `out`.
    pub fn line(&mut self, no: u64, b: &Bytes, out: &mut Vec<Packet>) {
        let dir = match b.stream {
            Stream::In => Dir::In,
            Stream::Out => Dir::Out,
            Stream::Err => return,
        };
        let base = self.fed[dir.index()];
        self.dec.feed(dir, &b.bytes, &mut self.events);
        self.fed[dir.index()] += b.bytes.len() as u64;
        self.handle(no, dir, base, Input::Real(&b.bytes), out);
        let missing = b.len.saturating_sub(b.bytes.len() as u64);
        let counted = missing.min(self.dec.data_remaining(dir));
        if counted > 0 {
            let base = self.fed[dir.index()];
            self.dec.skip(dir, counted, &mut self.events);
            self.fed[dir.index()] += counted;
            self.handle(no, dir, base, Input::Counted(counted), out);
        }
        self.lost = self.lost.saturating_add(missing - counted);
    }

    /// The recording ended: packets cut short are framed.
    pub fn finish(&mut self, no: u64, out: &mut Vec<Packet>) {
        self.dec.finish(&mut self.events);
        for dir in [Dir::In, Dir::Out] {
            let base = self.fed[dir.index()];
            self.handle(no, dir, base, Input::Counted(0), out);
        }
    }

    fn handle(&mut self, no: u64, dir: Dir, base: u64, input: Input, out: &mut Vec<Packet>) {
        if let Some(c) = &mut self.collect[dir.index()] {
            c.take(base, input);
        }
        for ev in self.events.drain(..) {
            match ev {
                Event::DataStart { dir: d, at, len } => {
                    let mut c = Collect {
                        at,
                        len,
                        known: Vec::new(),
                        gap: false,
                    };
                    if d == dir {
                        c.take(base, input);
                    }
                    self.collect[d.index()] = Some(c);
                }
                Event::Frame { dir: d, msg, .. } => {
                    let payload = self.collect[d.index()].take().map(|c| Payload {
                        known: c.known,
                        len: c.len,
                    });
                    out.push(Packet {
                        no,
                        dir: d,
                        msg,
                        payload,
                    });
                }
                Event::Violation(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::Kind;

    fn line(stream: Stream, bytes: &[u8], len: u64) -> Bytes {
        Bytes {
            stream,
            bytes: bytes.to_vec(),
            len,
            kind: Kind::Packet,
            note: None,
        }
    }

    #[test]
    fn a_write_shown_in_part_keeps_its_head() {
        let mut r = Recorded::new();
        let mut out = Vec::new();
        r.line(1, &line(Stream::In, b"\0\0\0\x05\x01\0\0\0\x03", 9), &mut out);
        // WRITE id=5 handle "h" off 0, 10 bytes of data: 3 shown.
        let mut w = vec![0, 0, 0, 32, 6, 0, 0, 0, 5, 0, 0, 0, 1, b'h'];
        w.extend_from_slice(&[0; 8]);
        w.extend_from_slice(&[0, 0, 0, 10]);
        w.extend_from_slice(b"abc");
        r.line(2, &line(Stream::In, &w, w.len() as u64 + 7), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].no, 2);
        let p = out[1].payload.as_ref().unwrap();
        assert_eq!((p.known.as_slice(), p.len), (&b"abc"[..], 10));
        assert!(matches!(out[1].msg, Msg::Request(_)));
    }

    #[test]
    fn a_payload_over_several_lines_is_whole() {
        let mut r = Recorded::new();
        let mut out = Vec::new();
        r.line(1, &line(Stream::In, b"\0\0\0\x05\x01\0\0\0\x03", 9), &mut out);
        let mut w = vec![0, 0, 0, 32, 6, 0, 0, 0, 5, 0, 0, 0, 1, b'h'];
        w.extend_from_slice(&[0; 8]);
        w.extend_from_slice(&[0, 0, 0, 10]);
        w.extend_from_slice(b"abcd");
        r.line(2, &line(Stream::In, &w, w.len() as u64), &mut out);
        assert_eq!(out.len(), 1);
        r.line(3, &line(Stream::In, b"efghij", 6), &mut out);
        let p = out[1].payload.as_ref().unwrap();
        assert_eq!(p.known, b"abcdefghij");
        assert_eq!(out[1].no, 3);
    }
}
