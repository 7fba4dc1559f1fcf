//! Fuzz target `parse`: arbitrary bytes as a text transcript, line by line,
//! through the transcript parser, and through the byte escaping.
//!
//! Checks the parser's contract (src/transcript/parse.rs): no panic, and for
//! every line it accepts, rendering the event gives the line back byte for
//! byte; converting it to JSON Lines and back gives the same event. For the
//! escaping (src/escape.rs): `unescape` is strict (what it accepts is exactly
//! what `escape` writes) and `unescape(escape(b)) == b` for any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scptrace::escape::{escape, unescape};
use scptrace::transcript::parse::Parser;
use scptrace::transcript::{jsonl, text};

fuzz_target!(|data: &[u8]| {
    // The escaping, on the whole input.
    if let Ok(bytes) = unescape(data) {
        assert_eq!(
            escape(&bytes).as_bytes(),
            data,
            "unescape accepted a non-canonical text"
        );
    }
    assert_eq!(
        unescape(escape(data).as_bytes()).as_deref(),
        Ok(data),
        "escape does not round-trip"
    );

    // The parser, line by line.
    let mut p = Parser::new();
    let mut line = Vec::new();
    let mut json = Vec::new();
    let mut scratch = Vec::new();
    for l in data.split(|&b| b == b'\n') {
        let Ok(Some(parsed)) = p.next_line(l) else {
            continue;
        };
        text::render(&parsed.event, parsed.timestamped, &mut line);
        assert_eq!(&line[..line.len() - 1], l, "render(parse(line)) != line");
        json.clear();
        jsonl::render(&parsed.event, parsed.timestamped, &mut scratch, &mut json).unwrap();
        let back = jsonl::parse_line(&json).unwrap_or_else(|e| {
            panic!(
                "JSON Lines of a parsed line does not parse: {e}: {}",
                String::from_utf8_lossy(&json)
            )
        });
        text::render(&back.event, parsed.timestamped, &mut line);
        assert_eq!(
            &line[..line.len() - 1],
            l,
            "text -> JSON Lines -> text changed the line"
        );
    }
    // And the JSON Lines reader on the raw input.
    for l in data.split(|&b| b == b'\n') {
        let _ = jsonl::parse_line(l);
    }
});
