//! The text form with colour: the same lines as [`text`](super::text), with
//! the parts styled once per event from a [`Styles`] set. `show` renders
//! saved transcripts with it, and `record -o -` writes live ones to a terminal.
//! With [`Styles::plain`] the output is byte for byte the text form.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;

use owo_colors::Style;

use super::text::{Paint, Part, render_with};
use super::{Event, EventWriter, Stream};
use crate::escape::escape_into;
use crate::style::Styles;

/// Renders one event as a text line (newline included) with `styles`,
/// appending it to `line`. This is [`text`](super::text)'s renderer with
/// the parts styled (free text is escaped there, for both): with
/// [`Styles::plain`] the line is byte for byte what
/// [`render`](super::text::render) writes.
pub fn render_styled(ev: &Event, timed: bool, st: &Styles, scratch: &mut Vec<u8>, line: &mut Vec<u8>) {
    render_with(
        ev,
        timed,
        &mut Painted {
            st,
            scratch,
            cut: None,
        },
        line,
    );
}

/// [`render_styled`], showing at most `cut` characters of a bytes line's
/// escaped bytes, then how many more there were: `… [+188,600 chars]`
/// (for display only: such a line is not the text form).
pub fn render_styled_cut(
    ev: &Event,
    timed: bool,
    st: &Styles,
    scratch: &mut Vec<u8>,
    line: &mut Vec<u8>,
    cut: Option<usize>,
) {
    render_with(ev, timed, &mut Painted { st, scratch, cut }, line);
}

/// The parts of a line in their [`Styles`].
struct Painted<'a> {
    st: &'a Styles,
    /// The escaped bytes of a bytes line, before they are styled.
    scratch: &'a mut Vec<u8>,
    /// Most characters of escaped bytes shown.
    cut: Option<usize>,
}

/// Where to cut escaped bytes to at most `max` characters: never inside an
/// escape (`\xNN` is 4 characters, `\0` and the others 2).
pub fn cut_point(escaped: &[u8], max: usize) -> usize {
    let mut i = 0;
    while i < escaped.len() {
        let n = match (escaped[i], escaped.get(i + 1)) {
            (b'\\', Some(b'x')) => 4,
            (b'\\', _) => 2,
            _ => 1,
        };
        if i + n > max {
            break;
        }
        i += n;
    }
    i.min(escaped.len())
}

/// `188600` as `188,600`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Painted<'_> {
    fn style(&self, part: Part) -> Option<Style> {
        let st = self.st;
        Some(match part {
            Part::Gap => return None,
            Part::Timestamp => st.timestamp,
            Part::Header => st.header,
            Part::Meta => st.meta,
            Part::Label => st.label,
            Part::Letter(Stream::In) => st.stdin,
            Part::Letter(Stream::Out) => st.stdout,
            Part::Letter(Stream::Err) => st.stderr,
            Part::Note => st.note,
            Part::Problem => st.problem,
            Part::Violation => st.violation,
            Part::ExitOk => st.exit_ok,
            Part::ExitBad => st.exit_bad,
        })
    }
}

impl Paint for Painted<'_> {
    fn span(&mut self, part: Part, prefix: &str, text: &str, line: &mut Vec<u8>) {
        let Some(style) = self.style(part) else {
            line.extend_from_slice(prefix.as_bytes());
            line.extend_from_slice(text.as_bytes());
            return;
        };
        let _ = if prefix.is_empty() {
            write!(line, "{}", style.style(text))
        } else {
            write!(line, "{}", style.style(format_args!("{prefix}{text}")))
        };
    }

    fn part(&mut self, part: Part, text: fmt::Arguments<'_>, line: &mut Vec<u8>) {
        let text = match text.as_str() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(text.to_string()),
        };
        self.span(part, "", &text, line);
    }

    fn bytes(&mut self, bytes: &[u8], line: &mut Vec<u8>) {
        self.scratch.clear();
        escape_into(bytes, self.scratch);
        match self.cut {
            Some(max) if self.scratch.len() > max => {
                let at = cut_point(self.scratch, max);
                styled_escaped(&self.scratch[..at], self.st, line);
                let more = format!("… [+{} chars]", thousands(self.scratch.len() - at));
                let _ = write!(line, "{}", self.st.meta.style(more));
            }
            _ => styled_escaped(self.scratch, self.st, line),
        }
    }
}

/// Writes escaped bytes with the escape sequences (`\0`, `\n`, `\xNN`, …) in
/// their own style (a run of them as one span), the literal runs unstyled.
fn styled_escaped(escaped: &[u8], st: &Styles, line: &mut Vec<u8>) {
    let mut i = 0;
    while i < escaped.len() {
        let start = i;
        if escaped[i] == b'\\' {
            while i < escaped.len() && escaped[i] == b'\\' {
                i += if escaped.get(i + 1) == Some(&b'x') { 4 } else { 2 };
            }
            i = i.min(escaped.len());
            // Escaped text is ASCII.
            let seq = std::str::from_utf8(&escaped[start..i]).unwrap_or_default();
            let _ = write!(line, "{}", st.escape.style(seq));
        } else {
            while i < escaped.len() && escaped[i] != b'\\' {
                i += 1;
            }
            line.extend_from_slice(&escaped[start..i]);
        }
    }
}

/// A live transcript writer with colour (`record -o -` on a terminal): the
/// same lines as the text form, styled once per event.
pub struct StyledWriter<W: std::io::Write> {
    out: W,
    styles: Styles,
    timestamps: bool,
    scratch: Vec<u8>,
    line: Vec<u8>,
}

impl<W: std::io::Write> StyledWriter<W> {
    pub fn new(out: W, styles: Styles, timestamps: bool) -> Self {
        StyledWriter {
            out,
            styles,
            timestamps,
            scratch: Vec::new(),
            line: Vec::new(),
        }
    }
}

impl<W: std::io::Write> EventWriter for StyledWriter<W> {
    fn event(&mut self, ev: &Event) -> std::io::Result<()> {
        self.line.clear();
        render_styled(
            ev,
            self.timestamps,
            &self.styles,
            &mut self.scratch,
            &mut self.line,
        );
        self.out.write_all(&self.line)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn cuts_never_split_an_escape() {
        let e = b"ab\\x01\\0cd";
        assert_eq!(cut_point(e, 2), 2);
        assert_eq!(cut_point(e, 5), 2, "not inside \\x01");
        assert_eq!(cut_point(e, 6), 6);
        assert_eq!(cut_point(e, 7), 6, "not inside \\0");
        assert_eq!(cut_point(e, 100), e.len());
        assert_eq!(thousands(188_600), "188,600");
        assert_eq!(thousands(12), "12");
        assert_eq!(thousands(1_000), "1,000");
    }
    use crate::transcript::parse::{Parsed, parse_text};
    use crate::transcript::text;
    use crate::transcript::{Bytes, Entry, Kind};

    /// A session with hostile bytes everywhere (also `show --summary`'s test input).
    pub(crate) const SESSION: &str = "# scptrace: 0.1.0\n\
# start: 2026-11-25T15:16:22.271759Z\n\
>>> New command invocation: /usr/bin/scp -t /tmp\n\
+0.001000 O: \\0\t# ack\n\
+0.002000 I: C0644 21 a\\x1b[31m\\n\t# file \"a\\x1b[31m\", 21 B, mode 0644\n\
+0.003000 I: file a file a file a\\n\t# data of \"a\\x1b[31m\", 21 B\n\
+0.004000 I: \\0\t# end of \"a\\x1b[31m\"\n\
+0.004211 O: \\x02scp: \\x1b]0;pwned\\x07\\n\t# error: scp: \\x1b]0;pwned\\x07\n\
+0.005000 !! name-slash: the name \"a/\\x1b[2J\" contains '/'\n\
+0.005000 !! reading stdin failed: EIO\n\
+0.006000 >>> stdin closed\n\
+0.007000 #: 1\n";

    fn render_all(parsed: &[Parsed], st: &Styles) -> Vec<u8> {
        let (mut out, mut line, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
        for p in parsed {
            line.clear();
            render_styled(&p.event, p.timestamped, st, &mut scratch, &mut line);
            out.extend_from_slice(&line);
        }
        out
    }

    #[test]
    fn plain_rendering_is_the_text_form() {
        let parsed = parse_text(SESSION.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(render_all(&parsed, &Styles::plain())).unwrap(),
            SESSION
        );
        let mut line = Vec::new();
        for p in &parsed {
            text::render(&p.event, false, &mut line);
            let mut styled = Vec::new();
            render_styled(&p.event, false, &Styles::plain(), &mut Vec::new(), &mut styled);
            assert_eq!(styled, line);
        }
    }

    #[test]
    fn every_byte_renders_plain_as_the_text_form() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let ev = Event {
            t: 1.5,
            entry: Entry::Bytes(Bytes {
                stream: Stream::In,
                len: all.len() as u64,
                bytes: all,
                kind: Kind::Raw,
                note: Some(crate::transcript::Annotation::Other("x".into())),
            }),
        };
        let (mut want, mut got) = (Vec::new(), Vec::new());
        text::render(&ev, true, &mut want);
        render_styled(&ev, true, &Styles::plain(), &mut Vec::new(), &mut got);
        assert_eq!(got, want);
        let mut colored = Vec::new();
        render_styled(&ev, true, &Styles::colored(), &mut Vec::new(), &mut colored);
        assert_only_our_escapes(&colored);
    }

    /// Every ESC in the coloured output belongs to one of our own styles.
    pub(crate) fn assert_only_our_escapes(out: &[u8]) {
        let mut text = String::from_utf8(out.to_vec()).unwrap();
        let c = Styles::colored();
        let mut ours: Vec<String> = [
            c.stdin,
            c.stdout,
            c.stderr,
            c.escape,
            c.note,
            c.problem,
            c.violation,
            c.meta,
            c.header,
            c.timestamp,
            c.exit_ok,
            c.exit_bad,
            c.label,
        ]
        .iter()
        .map(|s| s.prefix_formatter().to_string())
        .collect();
        ours.push("\x1b[0m".to_string());
        for p in &ours {
            text = text.replace(p.as_str(), "");
        }
        assert!(!text.contains('\x1b'), "a raw ESC reached the output: {text:?}");
    }

    #[test]
    fn no_escape_byte_from_a_transcript_reaches_the_terminal() {
        // ESC in names, in an error text, in a violation sentence: all escaped
        // by the transcript; and raw ESC/BEL/CR in free text, which only a
        // damaged or hand-made file holds.
        let hostile = format!("{SESSION}>>> note \x1b[2J\x07\r\n!! bad-mode: \u{9b}31m x\n");
        let parsed = parse_text(hostile.as_bytes()).unwrap();
        let plain = render_all(&parsed, &Styles::plain());
        assert!(!plain.contains(&0x1b), "plain output holds no ESC at all");
        assert!(!plain.contains(&0x07) && !plain.contains(&b'\r'));
        assert!(
            !String::from_utf8_lossy(&plain).contains('\u{9b}'),
            "no C1 CSI either"
        );
        let colored = render_all(&parsed, &Styles::colored());
        assert!(colored.contains(&0x1b), "colour is on");
        assert_only_our_escapes(&colored);
    }
}
