//! `scptrace show`: render saved transcripts (text or JSON Lines, detected per
//! file) with colour, filter them, convert between the two forms, or
//! summarise them.
//!
//! Reading is streamed line by line, so a transcript recorded with
//! `--data full` is never held in memory whole. A malformed line stops that
//! file with `scptrace: FILE:LINE: reason` and exit status 2.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::cli::{OnOff, ShowArgs, StreamSel, TimeMode};
use crate::config::Format;
use crate::escape::{escape, escape_text, to_json};
use crate::protocol::scp::{Dir, Msg};
use crate::protocol::{self, sftp};
use crate::style::Styles;
use crate::transcript::files::{FileRow, Files, Outcome};
use crate::transcript::parse::Parsed;
use crate::transcript::read::{ReadError, display_name, read_transcript, report_repairs};
use crate::transcript::redecode::{Redecoder, verdict};
use crate::transcript::select::Select;
use crate::transcript::styled::{render_styled, render_styled_cut};
use crate::transcript::{Decoded, Entry, Event, Kind, Stream, jsonl};
use crate::utc::Utc;

impl StreamSel {
    fn stream(self) -> Stream {
        match self {
            StreamSel::In => Stream::In,
            StreamSel::Out => Stream::Out,
            StreamSel::Err => Stream::Err,
        }
    }
}

/// The pager to page through, as git chooses it: only on a terminal, not
/// with `--no-pager`, and never under an sshd ForceCommand or `command=` key
/// (`SSH_ORIGINAL_COMMAND` set: there the environment is not only the
/// user's own choice). `SCPTRACE_PAGER`, then `PAGER`, else `less -R`; empty
/// or `cat` means none. Run by `sh -c`, as git runs it.
fn pager_command(args: &ShowArgs) -> Option<String> {
    if args.no_pager || !io::stdout().is_terminal() || std::env::var_os("SSH_ORIGINAL_COMMAND").is_some() {
        return None;
    }
    let chosen = ["SCPTRACE_PAGER", "PAGER"]
        .iter()
        .find_map(|k| std::env::var(k).ok())
        .unwrap_or_else(|| "less -R".to_string());
    let chosen = chosen.trim();
    (!chosen.is_empty() && chosen != "cat").then(|| chosen.to_string())
}

/// Starts the pager with our output as its input (`LESS=FRX` unless set,
/// as git: one screen quits at once, colours pass). `None`: it could not
/// start, and output goes to the terminal.
fn start_pager(cmd: &str) -> Option<std::process::Child> {
    let mut c = std::process::Command::new("/bin/sh");
    c.arg("-c").arg(cmd).stdin(std::process::Stdio::piped());
    if std::env::var_os("LESS").is_none() {
        c.env("LESS", "FRX");
    }
    match c.spawn() {
        Ok(child) => Some(child),
        Err(e) => {
            eprintln!(
                "scptrace: pager: {}: writing to the terminal instead",
                escape_text(&e.to_string())
            );
            None
        }
    }
}

pub fn run(mut args: ShowArgs) -> Result<i32> {
    match super::resolve_at(&args.files) {
        Ok(files) => args.files = files,
        Err(e) => {
            eprintln!("scptrace: {e}");
            return Ok(2);
        }
    }
    let styles = super::stdout_styles(args.color);
    let mut pager = pager_command(&args).and_then(|c| start_pager(&c));
    let sink: Box<dyn Write> = match pager.as_mut().and_then(|p| p.stdin.take()) {
        Some(stdin) => Box::new(stdin),
        None => Box::new(io::stdout().lock()),
    };
    let status = show_all(&args, &styles, sink);
    if let Some(mut p) = pager {
        // Our end of its input is closed (show_all dropped it): wait until
        // the user quits it.
        let _ = p.wait();
    }
    status
}

fn show_all(args: &ShowArgs, styles: &Styles, sink: Box<dyn Write>) -> Result<i32> {
    let mut out = BufWriter::with_capacity(64 * 1024, sink);
    let mut status = 0;
    let many = args.files.len() > 1;
    for (i, path) in args.files.iter().enumerate() {
        let result = if args.summary {
            summarise(path, args, styles, &mut out)
        } else {
            if many && args.format == Format::Text && !args.violations {
                let gap = if i > 0 { "\n" } else { "" };
                let heading = format!("==> {} <==", display_name(path));
                writeln!(out, "{gap}{}", styles.label.style(escape_text(&heading))).map_err(ReadError::Output)
            } else {
                Ok(())
            }
            .and_then(|()| show_one(path, args, styles, many, &mut out))
        };
        match result {
            Ok(()) => {}
            Err(ReadError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(status),
            Err(e @ ReadError::Output(_)) => {
                e.report(path);
                return Ok(2);
            }
            Err(e) => {
                // Whatever was shown of this file stays shown; the error comes
                // after it, and the other files are still shown.
                if let Err(e) = out.flush()
                    && e.kind() == io::ErrorKind::BrokenPipe
                {
                    return Ok(2);
                }
                e.report(path);
                status = 2;
            }
        }
    }
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            eprintln!("scptrace: writing output: {}", crate::errtext::io(&e));
            Ok(2)
        }
        _ => Ok(status),
    }
}

/// Renders one file's events, filtered, in the chosen form.
fn show_one(
    path: &Path,
    args: &ShowArgs,
    styles: &Styles,
    many: bool,
    out: &mut impl Write,
) -> Result<(), ReadError> {
    let mut line = Vec::with_capacity(256);
    let mut scratch = Vec::with_capacity(256);
    if args.violations {
        return show_violations(path, args, styles, many, out);
    }
    let width = match args.width {
        Some(0) => None,
        Some(w) => Some(w),
        None if io::stdout().is_terminal() && args.format == Format::Text => terminal_width(),
        None => None,
    };
    let (mut start_us, mut prev_t) = (None, None);
    let mut select = args.file.as_ref().map(|g| FileFilter {
        redecoder: None,
        select: Select::new(g.as_bytes()),
        shown: Vec::new(),
    });
    let repairs = read_transcript(path, |p| {
        if let Entry::Header { key, value } = &p.event.entry
            && key == "start"
        {
            start_us = parse_rfc3339(value);
        }
        if !wanted(&p.event.entry, args) {
            return Ok(());
        }
        if let Some(f) = select.as_mut()
            && let Entry::Invocation(text) = &p.event.entry
            && f.redecoder.is_none()
        {
            f.redecoder = Redecoder::for_invocation(text);
        }
        let mut timed = p.timestamped && args.timestamps != Some(OnOff::Off);
        line.clear();
        match args.format {
            Format::Jsonl => {
                jsonl::render(&p.event, timed, &mut scratch, &mut line)?;
                line.push(b'\n');
            }
            Format::Text => {
                if args.violations && many {
                    let name = format!("{}: ", display_name(path));
                    let _ = write!(line, "{}", styles.label.style(escape_text(&name)));
                }
                let mut prefix = 0;
                if timed && let Some(t) = time_prefix(args.time, p.event.t, start_us, prev_t) {
                    let _ = write!(line, "{} ", styles.timestamp.style(&t));
                    prefix = t.len() + 1;
                    timed = false;
                } else if timed {
                    prefix = format!("+{:.6} ", p.event.t).len();
                }
                if p.timestamped {
                    prev_t = Some(p.event.t);
                }
                let cut = width.and_then(|w| bytes_budget(w, &p.event, prefix));
                render_styled_cut(&p.event, timed, styles, &mut scratch, &mut line, cut);
            }
        }
        match select.as_mut() {
            None => out.write_all(&line),
            Some(f) => {
                f.line(&p.event.entry, &line);
                for l in f.shown.drain(..) {
                    out.write_all(&l)?;
                }
                Ok(())
            }
        }
    })?;
    if let Some(f) = select.as_mut()
        && f.select.matched == 0
    {
        // Said in the transcript's own form, so a pipe still reads it.
        let glob = args.file.as_deref().unwrap_or_default();
        let ev = Event {
            t: 0.0,
            entry: Entry::Note(format!(
                "show --file {}: no file matches",
                escape(glob.as_bytes())
            )),
        };
        line.clear();
        match args.format {
            Format::Jsonl => {
                jsonl::render(&ev, false, &mut scratch, &mut line).map_err(ReadError::Output)?;
                line.push(b'\n');
            }
            Format::Text => render_styled(&ev, false, styles, &mut scratch, &mut line),
        }
        out.write_all(&line).map_err(ReadError::Output)?;
    }
    report_repairs(path, &repairs);
    Ok(())
}

/// `--file`: the transcript decoded again, and the selection it drives.
struct FileFilter {
    redecoder: Option<Redecoder>,
    select: Select<Vec<u8>>,
    /// Rendered lines to write now.
    shown: Vec<Vec<u8>>,
}

impl FileFilter {
    /// One transcript line, rendered as `line`. Lines about the session
    /// (header, invocation, notes, `closed`, exit) are kept; stderr is not
    /// about a file's messages and is left out.
    fn line(&mut self, entry: &Entry, line: &[u8]) {
        let evs: Vec<protocol::Event> = match self.redecoder.as_mut() {
            Some(r) => r.event(entry).to_vec(),
            None => Vec::new(),
        };
        match entry {
            Entry::Bytes(b) if b.stream == Stream::Err => {}
            Entry::Bytes(b) => {
                let dir = if b.stream == Stream::In { Dir::In } else { Dir::Out };
                self.select.bytes(dir, &evs, line.to_vec(), &mut self.shown);
            }
            Entry::StoredViolation { .. } | Entry::Violation(_) => {
                self.select.violation(line.to_vec(), &mut self.shown)
            }
            _ => {
                self.select.events(&evs);
                self.shown.push(line.to_vec());
            }
        }
    }
}

/// `--violations`: what decoding the bytes finds (never the `!!` lines the
/// transcript holds, as `check`), and the tracing problems it records.
fn show_violations(
    path: &Path,
    args: &ShowArgs,
    styles: &Styles,
    many: bool,
    out: &mut impl Write,
) -> Result<(), ReadError> {
    let v = verdict(path)?;
    report_repairs(path, &v.repairs);
    let events = v
        .found
        .into_iter()
        .map(Entry::Violation)
        .chain(v.problems.into_iter().map(Entry::Problem));
    let (mut line, mut scratch) = (Vec::new(), Vec::new());
    for entry in events {
        let ev = Event { t: 0.0, entry };
        line.clear();
        match args.format {
            Format::Jsonl => {
                jsonl::render(&ev, false, &mut scratch, &mut line).map_err(ReadError::Output)?;
                line.push(b'\n');
            }
            Format::Text => {
                if many {
                    let name = format!("{}: ", display_name(path));
                    let _ = write!(line, "{}", styles.label.style(escape_text(&name)));
                }
                render_styled(&ev, false, styles, &mut scratch, &mut line);
            }
        }
        out.write_all(&line).map_err(ReadError::Output)?;
    }
    Ok(())
}

fn wanted(entry: &Entry, args: &ShowArgs) -> bool {
    let stream = match entry {
        Entry::Bytes(b) => b.stream,
        Entry::Closed(s) => *s,
        _ => return true,
    };
    args.stream.is_empty() || args.stream.iter().any(|s| s.stream() == stream)
}

// ---- --summary ----------------------------------------------------------

/// What passed in one direction.
#[derive(Debug, Default, Clone)]
struct Traffic {
    files: u64,
    /// Sum of the sizes announced by `C` records.
    announced: u64,
    /// File data bytes that passed.
    data: u64,
    incomplete: u64,
    dirs: u64,
    /// Texts of `\x01` replies, escaped.
    warnings: Vec<String>,
    /// Texts of `\x02` replies (SFTP: STATUS errors), escaped.
    errors: Vec<String>,
    /// SFTP requests by type.
    requests: BTreeMap<String, u64>,
}

impl Traffic {
    /// An SFTP packet: requests counted by type, errors kept, data counted.
    fn sftp(&mut self, m: &sftp::Msg) {
        match m {
            sftp::Msg::Request(r) => {
                *self.requests.entry(r.body.op().as_str().to_string()).or_default() += 1;
                if let sftp::ReqBody::Write { len, .. } = r.body {
                    self.data = self.data.saturating_add(u64::from(len));
                }
                if let sftp::ReqBody::Open { .. } = r.body {
                    self.files += 1;
                }
            }
            sftp::Msg::Reply(r) => match &r.body {
                sftp::ReplyBody::Data { len } => self.data = self.data.saturating_add(u64::from(*len)),
                sftp::ReplyBody::Status { code, message, .. } if *code > sftp::status::EOF => {
                    let msg = message.as_deref().map(escape).unwrap_or_default();
                    let what = crate::transcript::annotate::sftp::status_name(*code);
                    self.errors.push(format!("{what} {msg}").trim_end().to_string());
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn msg(&mut self, m: &Msg) {
        match m {
            Msg::File { size, .. } => {
                self.files += 1;
                self.announced = self.announced.saturating_add(*size);
            }
            Msg::Dir { .. } => self.dirs += 1,
            Msg::Data { seen, complete, .. } => {
                self.data = self.data.saturating_add(*seen);
                self.incomplete += u64::from(!complete);
            }
            Msg::Warning(t) => self.warnings.push(escape(t)),
            Msg::Fatal(t) => self.errors.push(escape(t)),
            _ => {}
        }
    }

    fn json(&self, bytes: u64, lines: u64) -> serde_json::Value {
        json!({
            "bytes": bytes, "lines": lines, "files": self.files, "announced": self.announced,
            "data": self.data, "incomplete": self.incomplete, "dirs": self.dirs,
            "warnings": self.warnings, "errors": self.errors, "requests": self.requests,
        })
    }
}

/// Everything `--summary` reports about one transcript.
#[derive(Default)]
struct Summary {
    headers: BTreeMap<String, String>,
    invocation: Option<String>,
    /// Bytes and lines per stream (I, O, E).
    bytes: [u64; 3],
    lines: [u64; 3],
    /// Bytes lines framed per message / per read.
    decoded_lines: u64,
    raw_lines: u64,
    /// Per direction (I, O), from annotations.
    flows: [Traffic; 2],
    violations: BTreeMap<String, u64>,
    problems: Vec<String>,
    notes: Vec<String>,
    exit: Option<i32>,
    last_t: Option<f64>,
    redecoder: Option<Redecoder>,
    /// Per direction, from re-decoding a transcript framed per read.
    redecoded: [Traffic; 2],
    redecoded_violations: BTreeMap<String, u64>,
    /// The per-file table, from decoding the bytes again.
    files: Files,
}

fn ix(s: Stream) -> usize {
    match s {
        Stream::In => 0,
        Stream::Out => 1,
        Stream::Err => 2,
    }
}

impl Summary {
    fn event(&mut self, p: &Parsed) {
        if p.timestamped {
            self.last_t = Some(self.last_t.map_or(p.event.t, |t| t.max(p.event.t)));
        }
        match &p.event.entry {
            Entry::Header { key, value } => {
                self.headers.entry(key.clone()).or_insert_with(|| value.clone());
            }
            Entry::Invocation(text) => {
                if self.invocation.is_none() {
                    self.redecoder = Redecoder::for_invocation(text);
                    self.invocation = Some(text.clone());
                }
            }
            Entry::Bytes(b) => {
                let i = ix(b.stream);
                self.bytes[i] = self.bytes[i].saturating_add(b.len);
                self.lines[i] += 1;
                if b.kind == Kind::Raw {
                    self.raw_lines += 1;
                } else {
                    self.decoded_lines += 1;
                }
                if let (Some(Decoded::Scp(m)), true) = (b.msg(), i < 2) {
                    self.flows[i].msg(m);
                }
            }
            Entry::StoredViolation { name, .. } => *self.violations.entry(name.clone()).or_default() += 1,
            Entry::Violation(f) => *self.violations.entry(f.name().to_string()).or_default() += 1,
            Entry::Problem(text) => self.problems.push(text.clone()),
            Entry::Note(text) => self.notes.push(text.clone()),
            Entry::Relay(n) if n.is_problem() => self.problems.push(n.text()),
            Entry::Relay(n) => self.notes.push(n.text()),
            Entry::Exit(code) => self.exit = Some(*code),
            Entry::Closed(_) => {}
        }
        if let Some(r) = self.redecoder.as_mut() {
            let evs = r.event(&p.event.entry).to_vec();
            let t = p.timestamped.then_some(p.event.t);
            for e in &evs {
                self.files.event(t, e);
            }
            self.redecoded_events(&evs);
        }
    }

    fn redecoded_events(&mut self, evs: &[protocol::Event]) {
        for e in evs {
            match e {
                protocol::Event::Frame { dir, msg, .. } => {
                    let i = if *dir == Dir::In { 0 } else { 1 };
                    match msg {
                        protocol::Msg::Scp(m) => self.redecoded[i].msg(m),
                        protocol::Msg::Sftp(m) => self.redecoded[i].sftp(m),
                    }
                }
                protocol::Event::Violation(v) => {
                    *self.redecoded_violations.entry(v.name().to_string()).or_default() += 1;
                }
                protocol::Event::DataStart { .. } => {}
            }
        }
    }

    fn finish(&mut self) {
        if let Some(r) = self.redecoder.as_mut() {
            let evs = r.finish().to_vec();
            for e in &evs {
                self.files.event(None, e);
            }
            self.redecoded_events(&evs);
        }
    }

    /// Whether the counts come from decoding the bytes again (always, for
    /// an scp server session: a verdict never comes from stored `!!` lines).
    fn redecoded(&self) -> bool {
        self.redecoder.is_some()
    }

    fn framing(&self) -> &'static str {
        match (self.decoded_lines > 0, self.raw_lines > 0) {
            (true, false) => "message",
            (false, true) => "raw",
            (true, true) => "mixed",
            (false, false) => "none",
        }
    }

    /// Seconds the session took: its last recorded timestamp (times count
    /// from the `start` header's instant). Never the file's modification
    /// time: a copied file has another one.
    fn duration(&self) -> Option<f64> {
        self.last_t
    }

    fn flows(&self) -> &[Traffic; 2] {
        if self.redecoded() {
            &self.redecoded
        } else {
            &self.flows
        }
    }

    fn violations(&self) -> &BTreeMap<String, u64> {
        if self.redecoded() {
            &self.redecoded_violations
        } else {
            &self.violations
        }
    }
}

/// `2026-11-25T15:16:22.271759Z` (the `start` header) as microseconds
/// since the epoch.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|v| v.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (hh, mm) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let sec = t.next()?;
    let (ss, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let ss: i64 = ss.parse().ok()?;
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let us: i64 = format!("{frac:0<6}").parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000 + us)
}

/// `show --time`'s prefix for a line recorded `t` seconds after the start:
/// `absolute` the UTC time of day `15:28:11.876483` (from the `start`
/// header, in microseconds since the epoch; `None` without one), `delta`
/// the seconds since the previous timed line, as `+0.000123`.
fn time_prefix(mode: TimeMode, t: f64, start_us: Option<i64>, prev: Option<f64>) -> Option<String> {
    let us = (t * 1e6).round() as i64;
    match mode {
        TimeMode::Relative => None,
        TimeMode::Absolute => {
            let at = start_us? + us;
            let u = Utc::from_unix(at.div_euclid(1_000_000), at.rem_euclid(1_000_000) as u32);
            Some(format!("{:02}:{:02}:{:02}.{:06}", u.hour, u.min, u.sec, u.micros))
        }
        TimeMode::Delta => {
            let d = us - prev.map_or(0, |p| (p * 1e6).round() as i64);
            Some(format!(
                "+{}.{:06}",
                d.div_euclid(1_000_000),
                d.rem_euclid(1_000_000)
            ))
        }
    }
}

/// The most characters of escaped bytes a line may show in `width`
/// columns: what is left after its prefix and its annotation (its TAB
/// counted as 8), and the `… [+N chars]` that says what was cut; at least
/// 16. `None`: the line fits, or nearly.
fn bytes_budget(width: usize, ev: &Event, prefix: usize) -> Option<usize> {
    let Entry::Bytes(b) = &ev.entry else {
        return None;
    };
    let note = crate::transcript::annotate::note_text(b).map_or(0, |n| n.chars().count() + 10);
    let escaped: usize = b
        .bytes
        .iter()
        .map(|&c| match c {
            b'\\' | 0 | b'\n' | b'\r' | b'\t' => 2,
            0x20..=0x7e => 1,
            _ => 4,
        })
        .sum();
    let rest = prefix + 3 + note;
    if rest + escaped <= width {
        return None;
    }
    // A cut that would save no more than the marker costs is no cut.
    let budget = width.saturating_sub(rest + MARKER).max(16);
    (escaped > budget + MARKER).then_some(budget)
}

/// Columns the `… [+188,600 chars]` marker takes, at most.
const MARKER: usize = 22;

/// The width of the terminal on stdout, if it is one.
fn terminal_width() -> Option<usize> {
    nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, nix::pty::Winsize);
    let mut ws = nix::pty::Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one Winsize into `ws`, which outlives the call.
    unsafe { tiocgwinsz(1, &mut ws) }.ok()?;
    (ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

fn signal_name(n: i32) -> Option<&'static str> {
    nix::sys::signal::Signal::try_from(n).ok().map(|s| s.as_str())
}

fn summarise(path: &Path, args: &ShowArgs, st: &Styles, out: &mut impl Write) -> Result<(), ReadError> {
    let mut s = Summary::default();
    let repairs = read_transcript(path, |p| {
        s.event(&p);
        Ok(())
    })?;
    report_repairs(path, &repairs);
    s.finish();
    let text = match args.format {
        Format::Jsonl => summary_json(path, &s).map_err(|e| ReadError::Output(e.into()))?,
        Format::Text => summary_text(path, &s, st),
    };
    out.write_all(text.as_bytes()).map_err(ReadError::Output)
}

fn summary_json(path: &Path, s: &Summary) -> serde_json::Result<String> {
    let flows = s.flows();
    let duration = s.duration();
    let v = json!({
        "file": display_name(path),
        "command": s.invocation,
        "start": s.headers.get("start"),
        "host": s.headers.get("host"),
        "user": s.headers.get("user"),
        "duration": duration,
        "duration_from": duration.map(|_| "timestamps"),
        "framing": s.framing(),
        "redecoded": s.redecoded(),
        "stdin": flows[0].json(s.bytes[0], s.lines[0]),
        "stdout": flows[1].json(s.bytes[1], s.lines[1]),
        "stderr": {"bytes": s.bytes[2], "lines": s.lines[2]},
        "violations": s.violations(),
        "problems": s.problems,
        "notes": s.notes,
        "exit": s.exit,
        "files": s.files.rows.iter().map(file_json).collect::<Vec<_>>(),
    });
    Ok(to_json(&v)? + "\n")
}

/// A file's direction as the summary's rows name them.
fn file_dir(r: &FileRow) -> &'static str {
    if r.dir == Dir::In { "→ scp" } else { "← scp" }
}

/// A row's outcome in words: `acked`, `refused: TEXT`, `incomplete` (SCP);
/// `closed`, `error: STATUS TEXT`, `incomplete` (SFTP).
fn file_outcome(r: &FileRow) -> String {
    let scp = r.size.is_some();
    match (&r.outcome, scp) {
        (Outcome::Done, true) => "acked".to_string(),
        (Outcome::Done, false) => "closed".to_string(),
        (Outcome::Refused(t), true) => format!("refused: {t}"),
        (Outcome::Refused(t), false) => format!("error: {t}"),
        (Outcome::Incomplete, _) => "incomplete".to_string(),
    }
}

fn fmt_secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.1} ms", s * 1000.0)
    } else {
        format!("{s:.3} s")
    }
}

fn file_json(r: &FileRow) -> serde_json::Value {
    let (outcome, text) = match (&r.outcome, r.size.is_some()) {
        (Outcome::Done, true) => ("acked", None),
        (Outcome::Done, false) => ("closed", None),
        (Outcome::Refused(t), true) => ("refused", Some(t)),
        (Outcome::Refused(t), false) => ("error", Some(t)),
        (Outcome::Incomplete, _) => ("incomplete", None),
    };
    json!({
        "direction": if r.dir == Dir::In { "stdin" } else { "stdout" },
        "name": r.name, "mode": r.mode.map(|m| format!("{m:04o}")), "size": r.size,
        "seen": r.seen, "outcome": outcome, "text": text, "latency": r.latency,
        "requests": r.requests,
    })
}

/// The per-file table: direction, name, mode, size, bytes seen, outcome,
/// latency (of the sink's answer to the file's end; SFTP: of its CLOSE),
/// and for SFTP the requests on it.
fn file_table(o: &mut String, rows: &[FileRow], st: &Styles) {
    if rows.is_empty() {
        return;
    }
    o.push_str(&format!(
        "  {} {}\n",
        st.label.style(format_args!("{:<11}", "files")),
        rows.len()
    ));
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let mut outcome = file_outcome(r);
            if !r.requests.is_empty() {
                let list: Vec<String> = r.requests.iter().map(|(op, n)| format!("{op} ×{n}")).collect();
                outcome.push_str(&format!(" ({})", list.join(", ")));
            }
            [
                file_dir(r).to_string(),
                r.name.clone(),
                r.mode.map_or("-".into(), |m| format!("{m:04o}")),
                r.size.map_or("-".into(), |n| format!("{n} B")),
                format!("{} B seen", r.seen),
                r.latency.map_or("-".into(), fmt_secs),
                outcome,
            ]
        })
        .collect();
    let mut w = [0usize; 6];
    for c in &cells {
        for (i, v) in c.iter().take(6).enumerate() {
            w[i] = w[i].max(v.chars().count());
        }
    }
    for c in cells {
        let pad = |i: usize| {
            let v = escape_text(&c[i]);
            let n = w[i].saturating_sub(c[i].chars().count());
            if (3..=5).contains(&i) {
                format!("{}{v}", " ".repeat(n))
            } else {
                format!("{v}{}", " ".repeat(n))
            }
        };
        o.push_str(&format!(
            "    {}  {}  {}  {}  {}  {}  {}\n",
            pad(0),
            pad(1),
            pad(2),
            pad(3),
            pad(4),
            pad(5),
            escape_text(&c[6])
        ));
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn flow_line(f: &Traffic, bytes: u64, lines: u64, framing_known: bool) -> String {
    let mut parts = Vec::new();
    if framing_known && !f.requests.is_empty() {
        // SFTP: requests by type, and the file data they carried.
        let list: Vec<String> = f.requests.iter().map(|(op, n)| format!("{op} ×{n}")).collect();
        parts.push(format!(
            "{} B of file data; requests: {}",
            f.data,
            list.join(", ")
        ));
    } else if framing_known {
        if f.files == 0 {
            parts.push("no files".to_string());
        } else {
            let mut files = format!("{}, {} B of data", plural(f.files, "file", "files"), f.data);
            if f.data != f.announced {
                files.push_str(&format!(" ({} B announced)", f.announced));
            }
            if f.incomplete > 0 {
                files.push_str(&format!(", {} incomplete", f.incomplete));
            }
            parts.push(files);
        }
        if f.dirs > 0 {
            parts.push(plural(f.dirs, "directory", "directories"));
        }
    }
    if framing_known && !f.requests.is_empty() && f.files > 0 {
        parts.push(plural(f.files, "file opened", "files opened"));
    }
    parts.push(format!("{bytes} B in {}", plural(lines, "line", "lines")));
    parts.join(", ")
}

fn summary_text(path: &Path, s: &Summary, st: &Styles) -> String {
    let mut o = String::new();
    let row = |o: &mut String, label: &str, value: &str| {
        o.push_str(&format!(
            "  {} {}\n",
            st.label.style(format_args!("{label:<11}")),
            escape_text(value)
        ));
    };
    o.push_str(&format!("{}\n", st.label.style(escape_text(&display_name(path)))));
    row(
        &mut o,
        "command",
        s.invocation.as_deref().unwrap_or("(no invocation line)"),
    );
    if let Some(start) = s.headers.get("start") {
        let mut v = start.clone();
        for key in ["host", "user"] {
            if let Some(h) = s.headers.get(key) {
                v.push_str(&format!(", {key} {h}"));
            }
        }
        row(&mut o, "started", &v);
    }
    let duration = match s.duration() {
        Some(d) => format!("{d:.6} s"),
        None => {
            "unknown (recorded without timestamps: record with --timestamps, or --format jsonl)".to_string()
        }
    };
    row(&mut o, "duration", &duration);
    let framing = match (s.framing(), s.redecoded()) {
        ("message", _) => "one line per protocol message".to_string(),
        ("raw", true) => "one line per read (counts below re-decoded)".to_string(),
        ("raw", false) => "one line per read".to_string(),
        ("mixed", _) => "mixed".to_string(),
        _ => "no bytes".to_string(),
    };
    row(&mut o, "framing", &framing);
    let known = s.framing() != "raw" || s.redecoded();
    let flows = s.flows();
    row(
        &mut o,
        "peer → scp",
        &flow_line(&flows[0], s.bytes[0], s.lines[0], known),
    );
    row(
        &mut o,
        "scp → peer",
        &flow_line(&flows[1], s.bytes[1], s.lines[1], known),
    );
    row(
        &mut o,
        "stderr",
        &format!("{} B in {}", s.bytes[2], plural(s.lines[2], "line", "lines")),
    );
    for (label, pick) in [
        (
            "warnings",
            (|f: &Traffic| &f.warnings) as fn(&Traffic) -> &Vec<String>,
        ),
        ("errors", |f: &Traffic| &f.errors),
    ] {
        let mut items = Vec::new();
        for (dir, f) in ["from the peer", "from scp"].iter().zip(flows.iter()) {
            for t in pick(f) {
                items.push(format!("{t} ({dir})"));
            }
        }
        if items.is_empty() {
            row(&mut o, label, if known { "none" } else { "unknown" });
        } else {
            row(&mut o, label, &format!("{}: {}", items.len(), items.join("; ")));
        }
    }
    let v = s.violations();
    let total: u64 = v.values().sum();
    if total == 0 {
        row(
            &mut o,
            "violations",
            if known { "none" } else { "unknown (not decoded)" },
        );
    } else {
        let list: Vec<String> = v.iter().map(|(n, c)| format!("{n} ×{c}")).collect();
        let text = format!("{total}: {}", list.join(", "));
        o.push_str(&format!(
            "  {} {}\n",
            st.label.style(format_args!("{:<11}", "violations")),
            st.problem.style(escape_text(&text))
        ));
    }
    if !s.problems.is_empty() {
        row(&mut o, "problems", &s.problems.join("; "));
    }
    if !s.notes.is_empty() {
        row(&mut o, "notes", &s.notes.join("; "));
    }
    file_table(&mut o, &s.files.rows, st);
    let exit = match s.exit {
        None => "unknown (no `#:` line: the trace ended early)".to_string(),
        Some(c) if c < 0 => match signal_name(-c) {
            Some(name) => format!("{c} (killed by signal {}, {name})", -c),
            None => format!("{c} (killed by signal {})", -c),
        },
        Some(c) => c.to_string(),
    };
    let style = if s.exit == Some(0) {
        st.exit_ok
    } else {
        st.exit_bad
    };
    o.push_str(&format!(
        "  {} {}\n",
        st.label.style(format_args!("{:<11}", "exit")),
        style.style(exit)
    ));
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::parse::parse_text;
    use crate::transcript::styled::tests::{SESSION, assert_only_our_escapes};

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000000Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:01.500000Z"),
            Some(951_868_801_500_000)
        );
        assert_eq!(parse_rfc3339("2026-11-25T15:16:22Z"), Some(1_795_619_782_000_000));
        assert_eq!(
            parse_rfc3339("2026-11-25T15:16:22.271759Z"),
            Some(1_795_619_782_271_759)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn only_lines_too_long_are_cut() {
        let ev = |bytes: &[u8]| Event {
            t: 0.0,
            entry: Entry::Bytes(crate::transcript::Bytes {
                stream: Stream::In,
                bytes: bytes.to_vec(),
                len: bytes.len() as u64,
                kind: Kind::Raw,
                note: None,
            }),
        };
        assert_eq!(bytes_budget(80, &ev(&[b'a'; 77]), 0), None);
        assert_eq!(
            bytes_budget(30, &ev(&[b'a'; 30]), 0),
            None,
            "saves less than the marker"
        );
        assert_eq!(bytes_budget(80, &ev(&[b'a'; 200]), 0), Some(80 - 3 - MARKER));
        // \xNN counts 4.
        assert_eq!(bytes_budget(80, &ev(&[0xff; 50]), 0), Some(80 - 3 - MARKER));
        assert_eq!(bytes_budget(10, &ev(&[b'a'; 200]), 0), Some(16));
    }

    #[test]
    fn time_prefixes() {
        let start = parse_rfc3339("2026-11-25T23:59:59.999990Z");
        assert_eq!(
            time_prefix(TimeMode::Absolute, 0.000011, start, None).as_deref(),
            Some("00:00:00.000001")
        );
        assert_eq!(time_prefix(TimeMode::Absolute, 1.0, None, None), None);
        assert_eq!(time_prefix(TimeMode::Relative, 1.0, start, None), None);
        assert_eq!(
            time_prefix(TimeMode::Delta, 1.5, start, Some(0.25)).as_deref(),
            Some("+1.250000")
        );
        assert_eq!(
            time_prefix(TimeMode::Delta, 0.004211, start, None).as_deref(),
            Some("+0.004211")
        );
    }

    #[test]
    fn summary_counts() {
        let mut s = Summary::default();
        for p in parse_text(SESSION.as_bytes()).unwrap() {
            s.event(&p);
        }
        s.finish();
        assert_eq!(s.framing(), "message");
        assert_eq!(
            (s.flows[0].files, s.flows[0].data, s.flows[0].announced),
            (1, 21, 21)
        );
        assert_eq!(s.flows[1].errors, vec!["scp: \\x1b]0;pwned\\x07".to_string()]);
        assert_eq!(s.violations.get("name-slash"), Some(&1));
        assert_eq!(s.problems.len(), 1);
        assert_eq!(s.exit, Some(1));
        assert_eq!(s.last_t, Some(0.007));
        let text = summary_text(Path::new("t.log"), &s, &Styles::plain());
        // The counts come from decoding the bytes: the C record was answered
        // with a fatal error, so no data was read as data, and the source sent
        // it without waiting. The transcript's own `!!` line is not trusted.
        assert!(text.contains("1 file, 0 B of data (21 B announced)"), "{text}");
        assert!(text.contains("violations  1: data-before-ack ×1"), "{text}");
        assert!(!text.contains('\x1b'));
        assert_only_our_escapes(summary_text(Path::new("t.log"), &s, &Styles::colored()).as_bytes());
    }
}
