//! `scptrace ls`: the transcripts in the log directory, newest first (the
//! order `@1`, `@2` name them), one line each: start time, program and
//! mode, files and bytes, exit status, violations. Files, bytes and
//! violations come from decoding the bytes again (transcript/redecode.rs,
//! transcript/files.rs), as `show --summary` and `check` do, never from the
//! `!!` lines. A file that cannot be read is one line saying so, never a stop.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;

use super::cli::LsArgs;
use crate::config::{Flags, Format, Settings};
use crate::escape::{escape_text, to_json};
use crate::protocol::{self, Protocol, scp};
use crate::transcript::Entry;
use crate::transcript::files::Files;
use crate::transcript::read::{ReadError, read_transcript};
use crate::transcript::redecode::{Redecoder, protocol_of};

/// One transcript's line, or why it has none.
struct Row {
    file: PathBuf,
    start: Option<String>,
    invocation: Option<String>,
    program: String,
    files: u64,
    bytes: u64,
    exit: Option<i32>,
    violations: u64,
    error: Option<String>,
}

/// What the traced session was: `scp -t`, `scp -f`, `sftp-server`, or the
/// program's own name (escaped later, with the rest of the line).
fn program_of(invocation: &str) -> String {
    match protocol_of(invocation) {
        Some(Protocol::Scp(o)) if o.role == scp::Role::Sink => "scp -t".into(),
        Some(Protocol::Scp(_)) => "scp -f".into(),
        Some(Protocol::Sftp) => "sftp-server".into(),
        None => {
            let first = crate::shell::shell_split(invocation.as_bytes())
                .and_then(|w| w.into_iter().next())
                .unwrap_or_default();
            let name = String::from_utf8_lossy(&first).into_owned();
            name.rsplit('/').next().unwrap_or_default().to_string()
        }
    }
}

fn row(path: &Path) -> Row {
    let mut r = Row {
        file: path.to_path_buf(),
        start: None,
        invocation: None,
        program: "-".into(),
        files: 0,
        bytes: 0,
        exit: None,
        violations: 0,
        error: None,
    };
    let mut files = Files::default();
    let mut redecoder: Option<Redecoder> = None;
    let mut violations = 0u64;
    let mut take = |t: Option<f64>, evs: &[protocol::Event], files: &mut Files| {
        for e in evs {
            files.event(t, e);
            violations += u64::from(matches!(e, protocol::Event::Violation(_)));
        }
    };
    let read = read_transcript(path, |p| {
        match &p.event.entry {
            Entry::Header { key, value } if key == "start" && r.start.is_none() => {
                r.start = Some(value.clone());
            }
            Entry::Invocation(text) if r.invocation.is_none() => {
                redecoder = Redecoder::for_invocation(text);
                r.program = program_of(text);
                r.invocation = Some(text.clone());
            }
            Entry::Exit(code) => r.exit = Some(*code),
            _ => {}
        }
        if let Some(d) = redecoder.as_mut() {
            let evs = d.event(&p.event.entry).to_vec();
            take(p.timestamped.then_some(p.event.t), &evs, &mut files);
        }
        Ok(())
    });
    if let Some(d) = redecoder.as_mut() {
        let evs = d.finish().to_vec();
        take(None, &evs, &mut files);
    }
    r.violations = violations;
    r.files = files.rows.len() as u64;
    r.bytes = files.rows.iter().map(|f| f.seen).sum();
    r.error = match read {
        Ok(_) => None,
        Err(ReadError::Io(e)) => Some(format!("cannot be read: {}", crate::errtext::io(&e))),
        Err(ReadError::Parse(e)) => Some(format!("not a transcript: line {}: {}", e.line, e.reason)),
        Err(ReadError::Output(e)) => Some(crate::errtext::io(&e)),
    };
    r
}

fn exit_text(exit: Option<i32>) -> String {
    match exit {
        Some(c) if c < 0 => format!("signal {}", -c),
        Some(c) => c.to_string(),
        None => "-".into(),
    }
}

fn json_line(r: &Row) -> serde_json::Result<String> {
    let v = match &r.error {
        Some(e) => json!({"file": r.file.display().to_string(), "error": e}),
        None => json!({
            "file": r.file.display().to_string(),
            "start": r.start,
            "program": r.program,
            "command": r.invocation,
            "files": r.files,
            "bytes": r.bytes,
            "exit": r.exit,
            "violations": r.violations,
        }),
    };
    Ok(to_json(&v)? + "\n")
}

/// Aligned columns under a header line; every field escaped for the terminal.
fn text_lines(rows: &[Row]) -> String {
    let head = ["START", "PROGRAM", "FILES", "BYTES", "EXIT", "VIOLATIONS", "FILE"];
    let mut cells: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let file = escape_text(&r.file.display().to_string()).into_owned();
        cells.push(match &r.error {
            Some(e) => vec![format!("{file}: {}", escape_text(e))],
            None => vec![
                escape_text(r.start.as_deref().unwrap_or("-")).into_owned(),
                escape_text(&r.program).into_owned(),
                r.files.to_string(),
                r.bytes.to_string(),
                exit_text(r.exit),
                r.violations.to_string(),
                file,
            ],
        });
    }
    let mut width = [0usize; 6];
    for c in cells.iter().filter(|c| c.len() == head.len()) {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let mut out = String::new();
    for c in &cells {
        if c.len() == head.len() {
            for (i, s) in c.iter().enumerate() {
                match i {
                    // Numbers to the right, text to the left; the file name last, unpadded.
                    2..=5 => out.push_str(&format!("{s:>w$}  ", w = width[i])),
                    6 => out.push_str(s),
                    _ => out.push_str(&format!("{s:<w$}  ", w = width[i])),
                }
            }
        } else {
            out.push_str(&c.join(""));
        }
        out.push('\n');
    }
    out
}

pub fn run(args: LsArgs) -> Result<i32> {
    let dir = Settings::load(Flags::default()).log_dir.value;
    let paths = match crate::tap::logdir::transcripts(&dir) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            eprintln!(
                "scptrace: {}",
                escape_text(&format!(
                    "log directory {}: {}: check its permissions, or set log_dir",
                    dir.display(),
                    crate::errtext::io(&e)
                ))
            );
            return Ok(2);
        }
    };
    if paths.is_empty() {
        eprintln!(
            "scptrace: {}",
            escape_text(&format!("no transcript in the log directory {}", dir.display()))
        );
        return Ok(0);
    }
    let rows: Vec<Row> = paths.iter().map(|p| row(p)).collect();
    let text = match args.format {
        Format::Text => text_lines(&rows),
        Format::Jsonl => rows
            .iter()
            .map(json_line)
            .collect::<serde_json::Result<String>>()?,
    };
    match io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            eprintln!("scptrace: writing output: {}", crate::errtext::io(&e));
            Ok(2)
        }
        _ => Ok(0),
    }
}
