//! The report replay prints: what ran, the notes, and either "answered as
//! recorded" or the first difference with the recorded lines around it and
//! what the real program did instead.
//!
//! Everything that comes from the transcript (bytes, annotations, notes,
//! `!!` lines, the invocation, names) is escaped here, so that no control
//! character from a transcript reaches the terminal: bytes with
//! [`escape`], text with [`escape_text`]. The only control characters the
//! report holds are the newline that ends each line and the TAB that
//! separates a bytes line from its annotation, as in a transcript.

use std::fmt::Write as _;

use super::engine::{Command, Diff, Live, Outcome, Stop};
use super::{CONTEXT, MAX_LINE, Plan};
use crate::escape::{escape, escape_text};
use crate::shell::shell_join;
use crate::transcript::{Bytes, Entry, Event, Kind, Stream, text};

/// One line of a transcript as the report shows it: escaped, and cut to
/// [`MAX_LINE`] characters.
pub fn render_entry(entry: &Entry) -> String {
    let s = match entry {
        Entry::Bytes(b) => {
            let mut s = format!("{}: {}", b.stream.letter(), escape(&b.bytes));
            if let Some(note) = crate::transcript::annotate::note_text(b) {
                let _ = write!(s, "\t# {}", escape_text(&note));
            }
            s
        }
        other => {
            let mut line = Vec::new();
            text::render(
                &Event {
                    t: 0.0,
                    entry: other.clone(),
                },
                false,
                &mut line,
            );
            let s = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line)).into_owned();
            escape_text(&s).into_owned()
        }
    };
    if s.len() > MAX_LINE {
        let cut = (0..=MAX_LINE).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        format!("{}…", &s[..cut])
    } else {
        s
    }
}

fn bytes_entry(stream: Stream, bytes: &[u8]) -> Entry {
    Entry::Bytes(Bytes {
        stream,
        bytes: bytes[..bytes.len().min(MAX_LINE + 1)].to_vec(),
        len: bytes.len() as u64,
        kind: Kind::Raw,
        note: None,
    })
}

/// Cuts real output into lines the way SCP messages end: after `\n`, and
/// after a `\0` that stands alone (an ack).
pub fn cut_messages(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || (b == 0 && i == start) {
            out.push(&bytes[start..=i]);
            start = i + 1;
        }
    }
    if start < bytes.len() {
        out.push(&bytes[start..]);
    }
    out
}

pub fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The command as the report names it.
pub fn command_text(cmd: &Command, user_args: bool) -> String {
    let mut argv = vec![cmd.program.as_os_str().as_encoded_bytes()];
    argv.extend(cmd.args.iter().map(|a| a.as_encoded_bytes()));
    let mut s = escape_text(&shell_join(&argv)).into_owned();
    if user_args {
        let _ = write!(s, " (in {})", super::shown_path(&cmd.dir));
    }
    s
}

/// What the report names: the transcript, the command, who answers.
pub struct Head {
    pub name: String,
    pub cmd_text: String,
    pub who: String,
}

/// The report's first line and the plan's notes.
pub fn head(h: &Head, plan: &Plan) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "replay of {} against: {}", h.name, h.cmd_text);
    plan_notes(&mut r, plan);
    r
}

fn plan_notes(r: &mut String, plan: &Plan) {
    for (line, name, held, size) in &plan.short {
        let _ = writeln!(
            r,
            "note: line {line}: the data lines of \"{}\" hold {held} B, its annotation says {size} B: the transcript lacks bytes that passed (or was edited); replay sends what it holds",
            escape_text(name)
        );
    }
    if plan.short_more > 0 {
        let _ = writeln!(r, "note: {} more file(s) like that", plan.short_more);
    }
    for note in &plan.notes {
        let _ = writeln!(r, "note: {note}");
    }
}

/// How the program ended, for the summary.
pub fn status_text(status: Option<std::process::ExitStatus>, killed: bool) -> String {
    match (status.map(crate::tap::child::status_code), killed) {
        (_, true) => "still running at the end, killed".to_string(),
        (Some(c), _) => format!("exit status {c}"),
        (None, _) => "exit status unknown".to_string(),
    }
}

/// The recorded lines around the difference; returns the width of the
/// line numbers.
pub fn recorded(r: &mut String, window: &super::engine::Window) -> usize {
    let at = window.at;
    let _ = writeln!(r, "recorded:");
    let width = window
        .lines
        .iter()
        .map(|l| l.0)
        .max()
        .unwrap_or(at)
        .to_string()
        .len();
    let lo = window
        .lines
        .iter()
        .position(|l| l.0 == at)
        .unwrap_or(0)
        .saturating_sub(CONTEXT);
    for (no, entry) in window.lines.iter().skip(lo) {
        let mark = if *no == at { ">" } else { " " };
        let _ = writeln!(r, "  {mark} {no:>width$}  {}", render_entry(entry));
    }
    width
}

/// The program's stderr, the end of its output, its status: the last lines
/// of what was replayed.
pub fn live_tail(
    err: &[u8],
    out_eof: bool,
    killed: bool,
    status: Option<std::process::ExitStatus>,
) -> Vec<Entry> {
    let mut v = Vec::new();
    for piece in cut_messages(err).into_iter().take(12) {
        v.push(bytes_entry(Stream::Err, piece));
    }
    if out_eof {
        v.push(Entry::Closed(Stream::Out));
    }
    if killed {
        v.push(Entry::Note("still running: killed by scptrace replay".into()));
    }
    if let Some(st) = status {
        v.push(Entry::Exit(crate::tap::child::status_code(st)));
    }
    v
}

pub fn render(h: &Head, plan: &Plan, live: &Live, o: &Outcome) -> String {
    let (name, who) = (h.name.as_str(), h.who.as_str());
    let mut r = String::new();
    let _ = writeln!(r, "replay of {name} against: {}", h.cmd_text);
    if o.synthetic > 0 {
        let _ = writeln!(
            r,
            "note: the recording holds only part of the contents of {} I: data line(s) (--data head or none); they were sent as the recorded head followed by synthetic filler up to the recorded size",
            o.synthetic
        );
    }
    if o.counted > 0 {
        let _ = writeln!(
            r,
            "note: {} O: data line(s) were compared by size past their recorded head",
            o.counted
        );
    }
    plan_notes(&mut r, plan);
    if let Some(line) = o.in_closed_at {
        let _ = writeln!(
            r,
            "note: the real program stopped reading its stdin at line {line}"
        );
    }
    let status = status_text(live.status, live.killed);
    let recorded_exit = plan
        .exit
        .map(|(_, c)| format!("recorded {c}"))
        .unwrap_or_else(|| "none recorded".into());
    let summary = format!(
        "{} of {} I: messages sent, {} of {} O: replies matched; {status} ({recorded_exit})",
        o.sent, plan.to_send, live.m.matched, plan.out_lines,
    );
    let Some(diff) = o.diff else {
        let _ = writeln!(r, "{who} answered as recorded");
        let _ = writeln!(r, "summary: {summary}");
        return r;
    };

    let timeout = live.timeout.as_secs_f64();
    let what = match diff {
        Diff::Bytes { off } => format!("{who} sent other bytes (from byte {off} of this line on)"),
        Diff::Missing { off, why } => {
            let when = if off > 0 {
                format!("after {off} bytes of this line")
            } else {
                "instead of this line".to_string()
            };
            let how = match why {
                Stop::OutClosed => "closed its stdout".to_string(),
                _ => format!("sent nothing more for {timeout} s"),
            };
            format!("{who} {how} {when}")
        }
        Diff::Stalled { .. } => format!("{who} did not read this line within {timeout} s"),
        Diff::Extra => format!(
            "{who} sent {} B more than recorded after this line",
            live.m.extra.len()
        ),
        Diff::NoEnd => {
            format!("{who} did not close its stdout within {timeout} s after the last recorded message")
        }
        Diff::Exit { recorded } => format!("the exit status differs: {status}, recorded {recorded}"),
    };
    let at = o.window.at;
    match (diff, o.nth) {
        (Diff::Bytes { .. } | Diff::Missing { .. }, Some(n)) => {
            let _ = writeln!(
                r,
                "DIFFERENCE at line {at} of {name} (the {} O: reply): {what}",
                ordinal(n)
            );
        }
        _ => {
            let _ = writeln!(r, "DIFFERENCE at line {at} of {name}: {what}");
        }
    }

    // The recording around that line.
    let width = recorded(&mut r, &o.window);

    // The replay: its last lines before the difference, then what differed.
    let _ = writeln!(r, "replayed:");
    let pad = " ".repeat(width);
    let mut tail: Vec<(bool, Entry)> = Vec::new();
    match diff {
        Diff::Bytes { off } => {
            // The matched start of the line, then what came instead.
            let shown = &o.seg_shown;
            let mut real = shown[..(off as usize).min(shown.len())].to_vec();
            real.extend_from_slice(&live.m.after);
            for (k, piece) in cut_messages(&real).into_iter().enumerate().take(12) {
                tail.push((k == 0, bytes_entry(Stream::Out, piece)));
            }
        }
        Diff::Missing { off, why } => {
            if off > 0 {
                let shown = &o.seg_shown;
                let got = &shown[..(off as usize).min(shown.len())];
                tail.push((false, bytes_entry(Stream::Out, got)));
            }
            tail.push((
                true,
                match why {
                    Stop::OutClosed => Entry::Closed(Stream::Out),
                    _ => Entry::Note(format!("nothing more within {timeout} s")),
                },
            ));
        }
        Diff::Extra => {
            for (k, piece) in cut_messages(&live.m.extra).into_iter().enumerate().take(12) {
                tail.push((k == 0, bytes_entry(Stream::Out, piece)));
            }
        }
        Diff::Stalled { .. } | Diff::NoEnd | Diff::Exit { .. } => {}
    }
    let closed_shown = matches!(
        diff,
        Diff::Missing {
            why: Stop::OutClosed,
            ..
        }
    );
    for e in live_tail(
        &live.err_buf,
        live.out_eof && !closed_shown,
        live.killed,
        live.status,
    ) {
        let marked = matches!((diff, &e), (Diff::Exit { .. }, Entry::Exit(_)));
        tail.push((marked, e));
    }
    for (no, entry) in &live.m.log {
        let stalled = matches!((diff, no), (Diff::Stalled { line }, Some(n)) if line == *n);
        let mark = if stalled { ">" } else { " " };
        let _ = writeln!(r, "  {mark} {pad}  {}", render_entry(entry));
    }
    for (marked, entry) in &tail {
        let mark = if *marked { ">" } else { " " };
        let _ = writeln!(r, "  {mark} {pad}  {}", render_entry(entry));
    }
    let _ = writeln!(r, "summary: {summary}");
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_output_is_cut_into_messages() {
        assert_eq!(
            cut_messages(b"\0\x01scp: x\n\0tail"),
            vec![&b"\0"[..], b"\x01scp: x\n", b"\0", b"tail"]
        );
    }

    #[test]
    fn rendered_lines_hold_no_terminal_control() {
        let bad = "\x1b[2J\x07\r\x7f\u{9b}\u{202e}";
        let entries = [
            Entry::Invocation(format!("scp -t {bad}")),
            Entry::Note(bad.into()),
            Entry::Problem(bad.into()),
            Entry::Header {
                key: "k".into(),
                value: bad.into(),
            },
            Entry::Bytes(Bytes {
                stream: Stream::In,
                bytes: bad.as_bytes().to_vec(),
                len: 3,
                kind: Kind::Raw,
                note: Some(crate::transcript::Annotation::Other(bad.into())),
            }),
        ];
        for e in &entries {
            let s = render_entry(e);
            let (bytes, note) = s.split_once('\t').unwrap_or((&s, ""));
            for part in [bytes, note] {
                assert!(!part.chars().any(crate::escape::is_terminal_control), "{s:?}");
            }
        }
    }
}
