//! Fuzz target `trace`: arbitrary reads on the three streams of a traced scp
//! go through the tracer (decoder, framing, data modes, size cap) into a
//! transcript writer, and the transcript must read back. Checks: no panic;
//! the text form parses, line by line, with `render(parse(line)) == line`;
//! JSON Lines parse; the transcript is printable ASCII; it ends with `#: N`.
//!
//! Input: byte 0 picks the settings (bit 0: -f instead of -t; bit 1: -r;
//! bit 2: --framing raw; bits 3–4: --data head/none/full; bit 5: JSON Lines;
//! bit 6: timestamps; bit 7: a size cap of 1024 + 64 × byte 1). Then
//! operations: an op byte (bits 0–1: stdin, stdout, stderr; bits 2–4: 0–4 a
//! read, 5 a splice of up to the payload's length, 6 EOF, 7 a read) and a
//! length byte, then the payload.
#![no_main]

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use scptrace::config::{DataMode, Format, Framing};
use scptrace::protocol::scp::{Options, Role};
use scptrace::tap::session::make_writer;
use scptrace::tap::trace::Tracer;
use scptrace::transcript::parse::Parser;
use scptrace::transcript::{Entry, Stream, jsonl, text};

/// The transcript in memory, counting bytes as the size cap expects (the
/// same as tests/it/harden.rs's tracer_roundtrip, another crate: keep the two
/// in step).
struct Buf(Rc<RefCell<Vec<u8>>>, Rc<Cell<u64>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        self.1.set(self.1.get() + b.len() as u64);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let [o, c, rest @ ..] = data else { return };
    let mut rest: &[u8] = rest;
    let opts = Options {
        role: if o & 1 == 0 { Role::Sink } else { Role::Source },
        recursive: o & 2 != 0,
        target_dir: false,
        preserve: false,
    };
    let framing = if o & 4 == 0 {
        Framing::Message
    } else {
        Framing::Raw
    };
    let mode = match (o >> 3) & 3 {
        0 | 3 => DataMode::Head,
        1 => DataMode::None,
        _ => DataMode::Full,
    };
    let format = if o & 32 == 0 { Format::Text } else { Format::Jsonl };
    let timestamps = o & 64 != 0;
    let out = Rc::new(RefCell::new(Vec::new()));
    let written = Rc::new(Cell::new(0));
    let sink = make_writer(format, timestamps, Buf(out.clone(), written.clone()));
    let mut t = Tracer::new(Some(sink), "fuzz".into(), framing, mode, Some(scptrace::protocol::Protocol::Scp(opts)));
    if o & 128 != 0 {
        t.set_cap(written, 1024 + 64 * u64::from(*c), false);
    }
    t.header("scptrace", "0.0.0");
    t.invocation("/usr/bin/scp -t /tmp".into());
    while let [op, len, tail @ ..] = rest {
        let (payload, r) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = r;
        let stream = match op & 3 {
            0 | 3 => Stream::In,
            1 => Stream::Out,
            _ => Stream::Err,
        };
        match (op >> 2) & 7 {
            5 => {
                let n = t.splice_budget(stream).min(payload.len() as u64);
                if n > 0 {
                    t.spliced(stream, n);
                }
            }
            6 => t.closed(stream),
            _ => t.bytes(stream, payload),
        }
    }
    t.exit(-9);
    t.flush();
    drop(t);
    let out = out.borrow();
    assert!(
        out.iter()
            .all(|&b| (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\t'),
        "a transcript byte that is not printable ASCII"
    );
    assert!(out.ends_with(b"\n"), "the transcript does not end with a newline");
    let body = &out[..out.len() - 1];
    let mut last = None;
    match format {
        Format::Text => {
            let mut p = Parser::new();
            let mut line = Vec::new();
            for (i, l) in body.split(|&b| b == b'\n').enumerate() {
                let parsed = p
                    .next_line(l)
                    .unwrap_or_else(|e| {
                        panic!(
                            "line {} does not parse: {e}: {}",
                            i + 1,
                            String::from_utf8_lossy(l)
                        )
                    })
                    .expect("an empty line");
                text::render(&parsed.event, parsed.timestamped, &mut line);
                assert_eq!(&line[..line.len() - 1], l, "render(parse(line)) != line");
                last = Some(parsed.event.entry);
            }
        }
        Format::Jsonl => {
            for (i, l) in body.split(|&b| b == b'\n').enumerate() {
                let parsed = jsonl::parse_line(l).unwrap_or_else(|e| {
                    panic!(
                        "line {} does not parse: {e}: {}",
                        i + 1,
                        String::from_utf8_lossy(l)
                    )
                });
                last = Some(parsed.event.entry);
            }
        }
    }
    assert_eq!(
        last,
        Some(Entry::Exit(-9)),
        "the transcript does not end with its exit status"
    );
});
