//! `scptrace check`: decode saved transcripts and say what their bytes hold,
//! for people, scripts and CI. Never silent: every file gets at least one
//! line. The verdict comes from decoding the bytes (transcript/redecode.rs),
//! never from the `!!` lines a transcript holds; a note says when those
//! differ. Exit status: see [`Status`].

use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;

use super::cli::CheckArgs;
use crate::escape::escape_text;
use crate::style::Styles;
use crate::transcript::annotate::violation_text;
use crate::transcript::read::display_name;
use crate::transcript::redecode::{Coverage, Verdict, verdict};

/// `check`'s exit status; over several files the first of 2, 1, 3, 0 that
/// any file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Decoded whole, from the invocation to the exit status: no violation.
    Clean = 0,
    /// Not decoded whole (empty, cut short, not an scp server session), and
    /// no violation in what was decoded.
    Incomplete = 3,
    /// Violations found.
    Violations = 1,
    /// A file could not be read, or is not a transcript.
    Unreadable = 2,
}

impl Status {
    fn rank(self) -> u8 {
        match self {
            Status::Clean => 0,
            Status::Incomplete => 1,
            Status::Violations => 2,
            Status::Unreadable => 3,
        }
    }
}

/// The lines `check` prints for one transcript, and its status.
pub fn report(path: &Path, v: &Verdict, st: &Styles) -> (Vec<String>, Status) {
    let label = st
        .label
        .style(escape_text(&format!("{}:", display_name(path))))
        .to_string();
    let mut lines = Vec::new();
    for f in &v.found {
        lines.push(format!(
            "{label} {}{}{}",
            st.problem.style("!! "),
            st.violation.style(f.name()),
            st.problem.style(escape_text(&format!(": {}", violation_text(f))))
        ));
    }
    for p in &v.problems {
        lines.push(format!(
            "{label} {}",
            st.problem
                .style(escape_text(&format!("!! {p} (a tracing problem)")))
        ));
    }
    let n = v.messages;
    let messages = format!("{n} message{}", if n == 1 { "" } else { "s" });
    let status = match (&v.coverage, v.found.is_empty()) {
        (Coverage::Empty, _) => {
            lines.push(format!("{label} empty: no line to decode"));
            Status::Incomplete
        }
        (Coverage::NotScp { invocation: None }, _) => {
            lines.push(format!(
                "{label} not decoded: no `>>> New command invocation` line, so the session is unknown"
            ));
            Status::Incomplete
        }
        (
            Coverage::NotScp {
                invocation: Some(inv),
            },
            _,
        ) => {
            lines.push(format!(
                "{label} not decoded: not a legacy scp server session (scp -t or -f): {}",
                escape_text(inv)
            ));
            Status::Incomplete
        }
        (Coverage::Cut, true) => {
            lines.push(format!(
                "{label} cut short (no exit status line, or truncated): no violation in the {messages} decoded"
            ));
            Status::Incomplete
        }
        (Coverage::Cut, false) => {
            lines.push(format!(
                "{label} cut short (no exit status line, or truncated): {} violation(s) in the {messages} decoded",
                v.found.len()
            ));
            Status::Violations
        }
        (Coverage::Whole, true) => {
            lines.push(format!("{label} clean: {messages} decoded, no violation"));
            Status::Clean
        }
        (Coverage::Whole, false) => {
            lines.push(format!("{label} {} violation(s) in {messages}", v.found.len()));
            Status::Violations
        }
    };
    if v.gaps > 0 {
        lines.push(format!(
            "{label} note: {} data line(s) claim more bytes than decoding expects there; only their shown bytes were decoded",
            v.gaps
        ));
    }
    if let Some(note) = v.repairs.note() {
        lines.push(format!("{label} note: {note}"));
    }
    if v.disagrees() {
        lines.push(format!(
            "{label} note: the transcript's own !! lines ({}) differ from what decoding its bytes finds ({}); the verdict above is from the bytes",
            v.stored.len(),
            v.found.len()
        ));
    }
    (lines, status)
}

pub fn run(mut args: CheckArgs) -> Result<i32> {
    match super::resolve_at(&args.files) {
        Ok(files) => args.files = files,
        Err(e) => {
            eprintln!("scptrace: {e}");
            return Ok(Status::Unreadable as i32);
        }
    }
    let st = super::stdout_styles(args.color);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut status = Status::Clean;
    for path in &args.files {
        let this = match verdict(path) {
            Ok(v) => {
                let (lines, s) = report(path, &v, &st);
                for line in lines {
                    match writeln!(out, "{line}") {
                        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(s as i32),
                        Err(e) => {
                            eprintln!("scptrace: writing output: {}", crate::errtext::io(&e));
                            return Ok(Status::Unreadable as i32);
                        }
                        Ok(()) => {}
                    }
                }
                s
            }
            Err(e) => {
                e.report(path);
                Status::Unreadable
            }
        };
        if this.rank() > status.rank() {
            status = this;
        }
    }
    Ok(status as i32)
}
