//! `scptrace show`: render saved transcripts (text or JSON Lines, detected per
//! file) with colour, filter them, convert between the two forms, or
//! summarise them.
//!
//! Reading is streamed line by line, so a transcript recorded with
//! `--data full` is never held in memory whole. A malformed line stops that
//! file with `scptrace: FILE:LINE: reason` and exit status 2.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::check::Redecoder;
use crate::config::{ColorWhen, Flags, Format, Settings};
use crate::escape::{escape, escape_into};
use crate::scp::{self, Msg};
use crate::style::Styles;
use crate::transcript::parse::{self, ParseError, Parsed, Parser, violation_name};
use crate::transcript::{Entry, Event, Kind, Stream, jsonl};

/// Render saved transcripts: colour, filters, text or JSON Lines, summaries
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Transcript files, text or JSON Lines (detected from the first line); `-` for standard input
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output form: text lines, or JSON Lines (converts either way, losslessly)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// When to colour the output [env: SCPTRACE_COLOR] [default: auto]
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorWhen>,
    /// Show the recorded timestamps (on) or hide them (off) [default: as recorded]
    #[arg(long, value_enum, value_name = "on|off")]
    pub timestamps: Option<OnOff>,
    /// Show only these streams' bytes and `closed` lines (comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', value_name = "in,out,err")]
    pub stream: Vec<StreamSel>,
    /// Show only the `!!` lines (protocol violations and tracing problems)
    #[arg(long)]
    pub violations: bool,
    /// Summarise each transcript instead: files, bytes, directories, warnings,
    /// errors, violations, duration, exit status
    #[arg(long, conflicts_with_all = ["stream", "violations", "timestamps"])]
    pub summary: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamSel {
    /// I: lines (the peer's bytes)
    In,
    /// O: lines (scp's stdout)
    Out,
    /// E: lines (scp's stderr)
    Err,
}

impl StreamSel {
    fn stream(self) -> Stream {
        match self {
            StreamSel::In => Stream::In,
            StreamSel::Out => Stream::Out,
            StreamSel::Err => Stream::Err,
        }
    }
}

/// Why a transcript could not be read to its end.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Opening or reading the file failed.
    Io(io::Error),
    /// A line is malformed.
    Parse(ParseError),
    /// Writing what was read failed (e.g. a closed pipe): stop everything.
    Output(io::Error),
}

impl ReadError {
    /// Prints the error as `scptrace: FILE[:LINE]: reason`.
    pub(crate) fn report(&self, path: &Path) {
        let path = display_name(path);
        match self {
            ReadError::Io(e) => eprintln!("scptrace: {path}: {e}"),
            ReadError::Parse(e) => eprintln!("scptrace: {path}:{}: {}", e.line, e.reason),
            ReadError::Output(e) => eprintln!("scptrace: writing output: {e}"),
        }
    }
}

/// `-` stands for standard input.
pub(crate) fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How a transcript file is named in messages.
pub(crate) fn display_name(path: &Path) -> String {
    if is_stdin(path) {
        "(standard input)".to_string()
    } else {
        path.display().to_string()
    }
}

/// Reads a transcript file (`-`: standard input), text or JSON Lines, calling `each` for every event
/// in order. JSON Lines is recognised by a first non-empty line starting
/// with `{`. An error from `each` is an output error.
pub(crate) fn read_transcript(
    path: &Path,
    mut each: impl FnMut(Parsed) -> io::Result<()>,
) -> Result<(), ReadError> {
    let input: Box<dyn Read> = if is_stdin(path) {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path).map_err(ReadError::Io)?)
    };
    let mut r = BufReader::with_capacity(64 * 1024, input);
    let mut buf = Vec::with_capacity(256);
    let mut text = Parser::new();
    let mut json: Option<bool> = None;
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf).map_err(ReadError::Io)? == 0 {
            return Ok(());
        }
        line_no += 1;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if json.is_none() && !line.is_empty() {
            json = Some(line[0] == b'{');
        }
        // The text parser sees every line, blank ones included, so its line
        // numbers are the file's.
        let parsed = if json == Some(true) {
            if line.is_empty() {
                continue;
            }
            jsonl::parse_line(line).map(Some).map_err(|reason| ParseError {
                line: line_no,
                reason,
            })
        } else {
            text.next_line(line)
        };
        if let Some(p) = parsed.map_err(ReadError::Parse)? {
            each(p).map_err(ReadError::Output)?;
        }
    }
}

pub fn run(args: ShowArgs) -> Result<i32> {
    let settings = Settings::load(Flags {
        color: args.color,
        ..Flags::default()
    });
    let styles = Styles::for_stdout(settings.color.value);
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut status = 0;
    let many = args.files.len() > 1;
    for (i, path) in args.files.iter().enumerate() {
        let result = if args.summary {
            summarise(path, &args, &styles, &mut out)
        } else {
            if many && args.format == Format::Text && !args.violations {
                let gap = if i > 0 { "\n" } else { "" };
                let heading = format!("==> {} <==", display_name(path));
                writeln!(out, "{gap}{}", styles.label.style(clean(&heading))).map_err(ReadError::Output)
            } else {
                Ok(())
            }
            .and_then(|()| show_one(path, &args, &styles, many, &mut out))
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
            eprintln!("scptrace: writing output: {e}");
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
    read_transcript(path, |p| {
        if !wanted(&p.event.entry, args) {
            return Ok(());
        }
        let timed = p.timestamped && args.timestamps != Some(OnOff::Off);
        line.clear();
        match args.format {
            Format::Jsonl => {
                jsonl::render(&p.event, timed, &mut scratch, &mut line)?;
                line.push(b'\n');
            }
            Format::Text => {
                if args.violations && many {
                    let name = format!("{}: ", display_name(path));
                    let _ = write!(line, "{}", styles.label.style(clean(&name)));
                }
                render_styled(&p.event, timed, styles, &mut scratch, &mut line);
            }
        }
        out.write_all(&line)
    })
}

fn wanted(entry: &Entry, args: &ShowArgs) -> bool {
    if args.violations {
        return matches!(entry, Entry::Problem(_));
    }
    let stream = match entry {
        Entry::Bytes(b) => b.stream,
        Entry::Closed(s) => *s,
        _ => return true,
    };
    args.stream.is_empty() || args.stream.iter().any(|s| s.stream() == stream)
}

/// Free text from a transcript (notes, problems, headers, the invocation) with
/// every terminal control character spelled out, so that no byte from a
/// transcript can drive the terminal. scptrace never writes such characters
/// there; a hand-made or damaged file might. TAB is left alone.
pub(crate) fn clean(text: &str) -> Cow<'_, str> {
    let bad = |c: char| (c.is_control() && c != '\t') || c == '\u{2028}' || c == '\u{2029}';
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut s = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            let v = c as u32;
            if v < 0x80 {
                s.push_str(&format!("\\x{v:02x}"));
            } else {
                s.push_str(&format!("\\u{{{v:x}}}"));
            }
        } else {
            s.push(c);
        }
    }
    Cow::Owned(s)
}

/// Renders one event as a text line (newline included) with `styles`. With
/// [`Styles::plain`] the line is byte for byte what
/// [`render`](crate::transcript::text::render) writes (for lines without
/// control characters in their free text, see [`clean`]).
pub(crate) fn render_styled(ev: &Event, timed: bool, st: &Styles, scratch: &mut Vec<u8>, line: &mut Vec<u8>) {
    let is_header = matches!(ev.entry, Entry::Header { .. });
    if timed && !is_header {
        let _ = write!(line, "{} ", st.timestamp.style(format_args!("+{:.6}", ev.t)));
    }
    match &ev.entry {
        Entry::Header { key, value } => {
            let text = format!("# {key}: {value}");
            let _ = write!(line, "{}", st.header.style(clean(&text)));
        }
        Entry::Invocation(argv) => {
            let _ = write!(
                line,
                "{}{}",
                st.meta.style(">>> New command invocation: "),
                st.label.style(clean(argv))
            );
        }
        Entry::Bytes(b) => {
            let letter = format!("{}:", b.stream.letter());
            let _ = write!(line, "{} ", st.stream(b.stream).style(letter));
            scratch.clear();
            escape_into(&b.bytes, scratch);
            styled_escaped(scratch, st, line);
            if let Some(note) = &b.note {
                let _ = write!(line, "\t{}", st.note.style(format_args!("# {}", clean(note))));
            }
        }
        Entry::Closed(s) => {
            let _ = write!(line, "{}", st.meta.style(format_args!(">>> {} closed", s.name())));
        }
        Entry::Problem(text) => {
            let text = clean(text);
            match violation_name(&text) {
                Some(name) => {
                    let rest = &text[name.len()..];
                    let _ = write!(
                        line,
                        "{}{}{}",
                        st.problem.style("!! "),
                        st.violation.style(name),
                        st.problem.style(rest)
                    );
                }
                None => {
                    let _ = write!(line, "{}", st.problem.style(format_args!("!! {text}")));
                }
            }
        }
        Entry::Note(text) => {
            let _ = write!(line, "{}", st.meta.style(format_args!(">>> {}", clean(text))));
        }
        Entry::Exit(code) => {
            let style = if *code == 0 { st.exit_ok } else { st.exit_bad };
            let _ = write!(line, "{}", style.style(format_args!("#: {code}")));
        }
    }
    line.push(b'\n');
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

// ---- --summary ----------------------------------------------------------

/// What passed in one direction.
#[derive(Debug, Default, Clone)]
struct Flow {
    files: u64,
    /// Sum of the sizes announced by `C` records.
    announced: u64,
    /// File data bytes that passed.
    data: u64,
    incomplete: u64,
    dirs: u64,
    /// Texts of `\x01` replies, escaped.
    warnings: Vec<String>,
    /// Texts of `\x02` replies, escaped.
    errors: Vec<String>,
}

impl Flow {
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
            "warnings": self.warnings, "errors": self.errors,
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
    flows: [Flow; 2],
    violations: BTreeMap<String, u64>,
    problems: Vec<String>,
    notes: Vec<String>,
    exit: Option<i32>,
    last_t: Option<f64>,
    redecoder: Option<Redecoder>,
    /// Per direction, from re-decoding a transcript framed per read.
    redecoded: [Flow; 2],
    redecoded_violations: BTreeMap<String, u64>,
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
                if let (Some(note), true) = (&b.note, i < 2)
                    && let (_, _, Some(m)) = parse::annotation(note, b.bytes.len())
                {
                    self.flows[i].msg(&m);
                }
            }
            Entry::Problem(text) => match violation_name(text) {
                Some(name) => *self.violations.entry(name.to_string()).or_default() += 1,
                None => self.problems.push(text.clone()),
            },
            Entry::Note(text) => self.notes.push(text.clone()),
            Entry::Exit(code) => self.exit = Some(*code),
            Entry::Closed(_) => {}
        }
        if let Some(r) = self.redecoder.as_mut() {
            let evs = r.event(&p.event.entry).to_vec();
            self.redecoded_events(&evs);
        }
    }

    fn redecoded_events(&mut self, evs: &[scp::Event]) {
        for e in evs {
            match e {
                scp::Event::Frame { dir, msg, .. } => {
                    let i = if *dir == scp::Dir::In { 0 } else { 1 };
                    self.redecoded[i].msg(msg);
                }
                scp::Event::Violation { v, .. } => {
                    *self.redecoded_violations.entry(v.name.to_string()).or_default() += 1;
                }
                scp::Event::DataStart { .. } => {}
            }
        }
    }

    fn finish(&mut self) {
        if let Some(r) = self.redecoder.as_mut() {
            let evs = r.finish().to_vec();
            self.redecoded_events(&evs);
        }
    }

    /// Whether the counts come from re-decoding a raw transcript.
    fn redecoded(&self) -> bool {
        self.redecoder.as_ref().is_some_and(Redecoder::applies)
    }

    fn framing(&self) -> &'static str {
        match (self.decoded_lines > 0, self.raw_lines > 0) {
            (true, false) => "message",
            (false, true) => "raw",
            (true, true) => "mixed",
            (false, false) => "none",
        }
    }

    /// Seconds the session took, and where that figure comes from.
    fn duration(&self, path: &Path) -> Option<(f64, &'static str)> {
        if let Some(t) = self.last_t {
            return Some((t, "timestamps"));
        }
        let start = parse_rfc3339(self.headers.get("start")?)?;
        if is_stdin(path) {
            return None;
        }
        let mtime = std::fs::metadata(path).ok()?.modified().ok()?;
        let end = mtime.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
        // File times come from a coarse clock (a few ms behind the one the
        // header was taken from): a short session can seem to end before it
        // started.
        (end + 1.0 >= start).then_some(((end - start).max(0.0), "header"))
    }

    fn flows(&self) -> &[Flow; 2] {
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

/// `2026-11-25T15:16:22.271759Z` (the `start` header) as seconds since the epoch.
fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|v| v.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (hh, mm) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let ss: f64 = t.next()?.parse().ok()?;
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
    Some((days * 86_400 + hh * 3600 + mm * 60) as f64 + ss)
}

fn signal_name(n: i32) -> Option<&'static str> {
    nix::sys::signal::Signal::try_from(n).ok().map(|s| s.as_str())
}

fn summarise(path: &Path, args: &ShowArgs, st: &Styles, out: &mut impl Write) -> Result<(), ReadError> {
    let mut s = Summary::default();
    read_transcript(path, |p| {
        s.event(&p);
        Ok(())
    })?;
    s.finish();
    let text = match args.format {
        Format::Jsonl => summary_json(path, &s),
        Format::Text => summary_text(path, &s, st),
    };
    out.write_all(text.as_bytes()).map_err(ReadError::Output)
}

fn summary_json(path: &Path, s: &Summary) -> String {
    let flows = s.flows();
    let duration = s.duration(path);
    let v = json!({
        "file": display_name(path),
        "command": s.invocation,
        "start": s.headers.get("start"),
        "host": s.headers.get("host"),
        "user": s.headers.get("user"),
        "duration": duration.map(|d| d.0),
        "duration_from": duration.map(|d| d.1),
        "framing": s.framing(),
        "redecoded": s.redecoded(),
        "stdin": flows[0].json(s.bytes[0], s.lines[0]),
        "stdout": flows[1].json(s.bytes[1], s.lines[1]),
        "stderr": {"bytes": s.bytes[2], "lines": s.lines[2]},
        "violations": s.violations(),
        "problems": s.problems,
        "notes": s.notes,
        "exit": s.exit,
    });
    format!("{v}\n")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn flow_line(f: &Flow, bytes: u64, lines: u64, framing_known: bool) -> String {
    let mut parts = Vec::new();
    if framing_known {
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
    parts.push(format!("{bytes} B in {}", plural(lines, "line", "lines")));
    parts.join(", ")
}

fn summary_text(path: &Path, s: &Summary, st: &Styles) -> String {
    let mut o = String::new();
    let row = |o: &mut String, label: &str, value: &str| {
        o.push_str(&format!(
            "  {} {}\n",
            st.label.style(format_args!("{label:<11}")),
            clean(value)
        ));
    };
    o.push_str(&format!("{}\n", st.label.style(clean(&display_name(path)))));
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
    let duration = match s.duration(path) {
        Some((d, "timestamps")) => format!("{d:.6} s"),
        Some((d, _)) => format!("about {d:.3} s (from the start header to the file's last change)"),
        None => "unknown (no timestamps, no start header)".to_string(),
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
        ("warnings", (|f: &Flow| &f.warnings) as fn(&Flow) -> &Vec<String>),
        ("errors", |f: &Flow| &f.errors),
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
            st.problem.style(clean(&text))
        ));
    }
    if !s.problems.is_empty() {
        row(&mut o, "problems", &s.problems.join("; "));
    }
    if !s.notes.is_empty() {
        row(&mut o, "notes", &s.notes.join("; "));
    }
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

impl<W: std::io::Write> crate::transcript::Sink for StyledWriter<W> {
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
mod tests {
    use super::*;
    use crate::transcript::parse::parse_text;
    use crate::transcript::text;

    const SESSION: &str = "# scptrace: 0.1.0\n\
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
            entry: Entry::Bytes(crate::transcript::Bytes {
                stream: Stream::In,
                len: all.len() as u64,
                bytes: all,
                kind: Kind::Raw,
                note: Some("x".into()),
                msg: None,
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
    fn assert_only_our_escapes(out: &[u8]) {
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

    #[test]
    fn clean_spells_out_controls() {
        assert_eq!(clean("a\x1bb\tc\u{85}"), "a\\x1bb\tc\\u{85}");
        assert!(matches!(clean("plain text"), Cow::Borrowed(_)));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000000Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:01.500000Z"), Some(951_868_801.5));
        assert_eq!(parse_rfc3339("2026-11-25T15:16:22Z"), Some(1_795_619_782.0));
        assert_eq!(parse_rfc3339("yesterday"), None);
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
        assert!(text.contains("1 file, 21 B of data"), "{text}");
        assert!(text.contains("violations  1: name-slash ×1"), "{text}");
        assert!(!text.contains('\x1b'));
        assert_only_our_escapes(summary_text(Path::new("t.log"), &s, &Styles::colored()).as_bytes());
    }
}
