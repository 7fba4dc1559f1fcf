//! `scptrace replay`: play the peer's side of a recorded session against a
//! fresh real scp in server mode, in a directory replay controls, and report
//! the first point where its replies differ from the recorded ones.
//!
//! A transcript is untrusted input (people send them to maintainers), so it
//! chooses nothing that runs and no path that is written: the program is the
//! real scp from the config (or the user's own `-- PROGRAM`), its arguments
//! are the server flags replay understands, re-derived from the recorded
//! ones, and the paths are inside the target directory (`target.rs`).
//!
//! The transcript is read three times, each time as a stream through the
//! shared reader (`transcript::read`): a first pass plans (what protocol,
//! how many bytes the replay would write, whether every name is safe) before
//! anything runs or is written; a download's source is then re-created from
//! a second pass; the third pass drives the conversation (`engine.rs`). The
//! protocol-specific parts sit behind the `Protocol` trait: `scp.rs` for the
//! legacy protocol; an SFTP replay would be a second implementation of it,
//! beside it (with its own comparison of replies, see `engine.rs`).
//!
//! Exit status: 0 when the real scp answered as recorded, 1 when it did not,
//! 2 when the replay could not be run.

mod engine;
mod report;
mod scp;
mod sftp;
mod target;

use std::ffi::OsString;
use std::fs::File;
use std::io::{Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::cli::ReplayArgs;
use crate::config::{Flags, Settings};
use crate::escape::{escape, escape_text};
use crate::protocol::scp::Msg;
use crate::transcript::read::{Line, ReadError, Reader, display_name, is_stdin};
use crate::transcript::{Annotation, Bytes, Decoded, Entry, Kind, Stream};

/// Exit status when the replay could not be run at all.
const CANNOT_RUN: i32 = 2;

pub fn run(args: ReplayArgs) -> Result<i32> {
    let name = escape_text(&display_name(&args.file)).into_owned();
    match replay(&args, &name) {
        Ok(code) => Ok(code),
        Err(e) => {
            let msg = match e.downcast_ref::<Refusal>() {
                Some(r) if r.line > 0 => format!("{name}:{}: {}", r.line, r.what),
                Some(r) => format!("{name}: {}", r.what),
                None => format!("replay: {}", crate::errtext::strip_os_error(&format!("{e:#}"))),
            };
            eprintln!("scptrace: {}", escape_text(&msg));
            Ok(CANNOT_RUN)
        }
    }
}

/// A reason not to replay, found at a line of the transcript (0: at its end).
#[derive(Debug)]
pub struct Refusal {
    pub line: u64,
    pub what: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

impl std::error::Error for Refusal {}

/// The longest transcript line replay reads. scptrace writes at most 64 KiB
/// of bytes per line (256 KiB escaped, a little more in JSON Lines with its
/// annotation); a longer line is not one of its transcripts.
const MAX_TRANSCRIPT_LINE: usize = 1024 * 1024;

/// The transcript, open: each pass reads the same file from its start.
pub struct Transcript {
    file: File,
}

impl Transcript {
    /// Opens `path`; `-` is standard input, copied first into an unlinked
    /// temporary file so that it can be read more than once.
    fn open(path: &Path) -> std::io::Result<Transcript> {
        if is_stdin(path) {
            let template = std::env::temp_dir().join("scptrace-replay-stdin-XXXXXX");
            let (fd, tmp) = nix::unistd::mkstemp(&template).map_err(std::io::Error::from)?;
            let _ = std::fs::remove_file(&tmp);
            let mut file = File::from(fd);
            std::io::copy(&mut std::io::stdin().lock(), &mut file)?;
            return Ok(Transcript { file });
        }
        let file = File::open(path)?;
        if file.metadata()?.is_dir() {
            return Err(std::io::Error::from_raw_os_error(nix::libc::EISDIR));
        }
        Ok(Transcript { file })
    }

    /// The shared transcript reader, from the first line.
    fn lines(&self) -> Result<Reader<&File>> {
        let mut f = &self.file;
        f.rewind().map_err(|e| read_error(ReadError::Io(e)))?;
        Ok(Reader::new(f).with_max_line(MAX_TRANSCRIPT_LINE))
    }

    /// The next line, errors as replay reports them.
    fn next(lines: &mut Reader<&File>) -> Result<Option<Line>> {
        lines.next_line().map_err(read_error)
    }
}

fn read_error(e: ReadError) -> anyhow::Error {
    match e {
        // No line number: the file itself failed (the name is added by `run`).
        ReadError::Io(e) | ReadError::Output(e) => Refusal {
            line: 0,
            what: format!("cannot read: {}", crate::errtext::io(&e)),
        }
        .into(),
        ReadError::Parse(e) => Refusal {
            line: e.line,
            what: format!(
                "{}; replay reads only transcripts as scptrace writes them (docs/transcript-format.md): fix this line or record again",
                e.reason
            ),
        }
        .into(),
    }
}

/// What a protocol brings to a replay. [`scp::Scp`] is the legacy SCP one.
pub(crate) trait Protocol {
    /// Sees every line of the first pass, before anything runs or is
    /// written: refuses what replay must not do (an unsafe name).
    fn plan(&mut self, no: u64, entry: &Entry) -> Result<(), Refusal>;
    /// After the first pass: refuses what needs the whole transcript to
    /// judge (more bytes than the cap).
    fn planned(&mut self) -> Result<(), Refusal>;
    /// Prepares the target directory (a download's source), reading the
    /// transcript again if it needs to.
    fn prepare(&mut self, t: &Transcript, dir: &Path) -> Result<()>;
    /// The arguments of the program in server mode, working in `dir`.
    fn server_args(&self, dir: &Path) -> Result<Vec<OsString>>;
    /// The program run when the user names none, and its argv[0].
    fn default_program(&self, settings: &Settings) -> Result<(PathBuf, OsString)>;
    /// Notes for the report.
    fn notes(&self) -> Vec<String>;
    /// An SFTP session (the report names the real sftp-server).
    fn is_sftp(&self) -> bool {
        false
    }
    /// Notes for a report of a difference: what may explain it.
    fn difference_notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// The program's working directory, given the target.
    fn workdir(&self, dir: &Path) -> PathBuf {
        dir.to_path_buf()
    }
    /// Runs the program and plays the recording to it; the report, and
    /// whether it differed. By default a byte stream, compared byte for
    /// byte (`engine.rs`).
    fn converse(
        &mut self,
        t: &Transcript,
        cmd: &engine::Command,
        timeout: Duration,
        plan: &mut Plan,
        head: &report::Head,
    ) -> Result<(String, bool)> {
        let mut live = engine::Live::spawn(cmd, timeout, engine::Matcher::default())?;
        let outcome = engine::run(t, &mut live, plan.send_bytes, plan.exit.map(|e| e.1))?;
        if outcome.diff.is_some() {
            plan.notes.extend(self.difference_notes());
        }
        let text = report::render(head, plan, &live, &outcome);
        Ok((text, outcome.diff.is_some()))
    }
}

/// A recording that is not an scp server session, replayed against the
/// user's own `-- PROGRAM ARGS`: bytes in, bytes compared, nothing to
/// prepare. The cap still bounds what replay sends.
struct Raw {
    cap: u64,
    sent: u64,
    over: Option<u64>,
}

impl Protocol for Raw {
    fn plan(&mut self, no: u64, entry: &Entry) -> Result<(), Refusal> {
        if let Entry::Bytes(b) = entry
            && b.stream == Stream::In
        {
            self.sent = self.sent.saturating_add(outgoing_total(b));
            if self.sent > self.cap && self.over.is_none() {
                self.over = Some(no);
            }
        }
        Ok(())
    }
    fn planned(&mut self) -> Result<(), Refusal> {
        match self.over {
            Some(line) => Err(Refusal {
                line,
                what: format!(
                    "replaying this would send {} B to the program, more than the cap of {}; raise the cap with --max-bytes {}",
                    self.sent,
                    human_size(self.cap),
                    human_size(self.sent)
                ),
            }),
            None => Ok(()),
        }
    }
    fn prepare(&mut self, _: &Transcript, _: &Path) -> Result<()> {
        Ok(())
    }
    fn server_args(&self, _: &Path) -> Result<Vec<OsString>> {
        // No scp session, so no server arguments: PROGRAM alone runs alone.
        Ok(Vec::new())
    }
    fn default_program(&self, _: &Settings) -> Result<(PathBuf, OsString)> {
        bail!(
            "this transcript is not an scp server session: give -- PROGRAM [ARGS] to replay it against a program of your choice"
        )
    }
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What the first pass found, for the replay and its report.
#[derive(Default)]
pub struct Plan {
    /// `I:` and `O:` lines with bytes.
    pub to_send: usize,
    pub out_lines: usize,
    /// Bytes replay sends, filler included.
    pub send_bytes: u64,
    /// The last `#: N` line and its status.
    pub exit: Option<(u64, i32)>,
    /// Files whose data lines hold another count than their annotation
    /// gives: line, name, bytes held, size (the first few).
    pub short: Vec<(u64, String, u64, u64)>,
    pub short_more: usize,
    pub notes: Vec<String>,
    held: [u64; 3],
    invocation: Option<u64>,
    any_bytes: bool,
}

/// Notes of [`Plan::short`] kept.
const SHORT_KEPT: usize = 10;

impl Plan {
    fn line(&mut self, no: u64, entry: &Entry) {
        match entry {
            Entry::Bytes(b) => {
                let total = outgoing_total(b);
                if total > 0 {
                    self.any_bytes = true;
                    match b.stream {
                        Stream::In => {
                            self.to_send += 1;
                            self.send_bytes = self.send_bytes.saturating_add(total);
                        }
                        Stream::Out => self.out_lines += 1,
                        Stream::Err => {}
                    }
                }
                self.short_data(no, b);
            }
            Entry::Exit(code) => self.exit = Some((no, *code)),
            _ => {}
        }
    }

    /// A data line's annotation (`data of "a", 21 B`) against the count of
    /// the data lines that make up that file: a transcript that lost bytes,
    /// or one edited by hand.
    fn short_data(&mut self, no: u64, b: &Bytes) {
        let slot = b.stream as usize;
        if b.kind != Kind::Data {
            self.held[slot] = 0;
            return;
        }
        self.held[slot] = self.held[slot].saturating_add(b.len);
        let Some(Decoded::Scp(Msg::Data { name, seen, .. })) = b.msg() else {
            return;
        }; // a part: more follows
        let seen = *seen;
        if self.held[slot] != seen {
            if self.short.len() < SHORT_KEPT {
                let name = crate::escape::escape(&name[..name.len().min(200)]);
                self.short.push((no, name, self.held[slot], seen));
            } else {
                self.short_more += 1;
            }
        }
        self.held[slot] = 0;
    }
}

/// The first pass: the protocol, the plan, and every refusal replay can
/// make before it runs or writes anything.
fn plan(t: &Transcript, args: &ReplayArgs) -> Result<(Box<dyn Protocol>, Plan)> {
    // The user's own program, not the transcript's: then bytes that are no
    // scp server session can be replayed too.
    let user_program = !args.command.is_empty();
    let mut p = Plan::default();
    let mut proto: Option<Box<dyn Protocol>> = None;
    let raw = |cap| -> Box<dyn Protocol> {
        Box::new(Raw {
            cap,
            sent: 0,
            over: None,
        })
    };
    let mut lines = t.lines()?;
    while let Some(l) = Transcript::next(&mut lines)? {
        let (no, event) = (l.no, l.parsed.event);
        let refuse = |what: String| Refusal { line: no, what };
        match &event.entry {
            Entry::Invocation(text) => {
                if p.invocation.is_some() {
                    return Err(refuse(
                        "a second invocation line: a transcript holds one session; cut the file in two and replay each".into(),
                    )
                    .into());
                }
                if p.any_bytes {
                    return Err(refuse(
                        "the invocation line comes after I:/O: lines; scptrace writes it first: fix the transcript".into(),
                    )
                    .into());
                }
                p.invocation = Some(no);
                let sftp =
                    crate::transcript::redecode::protocol_of(text) == Some(crate::protocol::Protocol::Sftp);
                proto = match scp::ServerFlags::from_invocation(text) {
                    _ if sftp => Some(Box::new(sftp::Sftp::new(args.max_bytes))),
                    Some(flags) => Some(Box::new(scp::Scp::new(flags, args.max_bytes))),
                    None if user_program => Some(raw(args.max_bytes)),
                    None => {
                        return Err(refuse(
                            "not an scp server session (no -t or -f among scp's options) nor an SFTP one (subsystem sftp, sftp-server): replay runs only the real scp in server mode or the real sftp-server; to replay these bytes against a program of your choice, give -- PROGRAM [ARGS]".into(),
                        )
                        .into());
                    }
                };
            }
            Entry::Bytes(_) if proto.is_none() => {
                if !user_program {
                    return Err(refuse(
                        "an I:/O: line before any `>>> New command invocation:` line: replay needs the recorded scp server command to know what to run; give -- PROGRAM [ARGS] to replay the bytes anyway".into(),
                    )
                    .into());
                }
                proto = Some(raw(args.max_bytes));
            }
            _ => {}
        }
        p.line(no, &event.entry);
        if let Some(proto) = &mut proto {
            proto.plan(no, &event.entry)?;
        }
    }
    let Some(mut proto) = proto.filter(|_| p.any_bytes) else {
        return Err(Refusal {
            line: 0,
            what: "the transcript holds no I: or O: bytes to replay".into(),
        }
        .into());
    };
    proto.planned()?;
    Ok((proto, p))
}

/// The program to run and its argv[0]: the user's, or the protocol's
/// default (the real scp). Resolved before the target is made, so that a
/// missing program leaves nothing behind.
fn program(args: &ReplayArgs, proto: &dyn Protocol) -> Result<(PathBuf, OsString)> {
    let settings = Settings::load(Flags::default());
    match args.command.first() {
        Some(prog) => Ok((find_program(prog, &settings)?, prog.clone())),
        None => proto.default_program(&settings),
    }
}

/// The program's arguments: the user's own, else the server arguments.
fn program_args(args: &ReplayArgs, proto: &dyn Protocol, dir: &Path) -> Result<Vec<OsString>> {
    match args.command.get(1..) {
        Some(rest) if !rest.is_empty() => Ok(rest.to_vec()),
        _ => proto.server_args(dir),
    }
}

/// The user's PROGRAM: a path as given, `scp` the real scp, any other name
/// looked up on PATH.
fn find_program(word: &std::ffi::OsStr, settings: &Settings) -> Result<PathBuf> {
    if word.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(word));
    }
    if word == "scp" {
        return Ok(crate::tap::standin::find_real_scp(settings)?.path);
    }
    crate::paths::find_on_path(word)
        .with_context(|| format!("{}: not found on PATH", shown_path(Path::new(word))))
}

fn replay(args: &ReplayArgs, name: &str) -> Result<i32> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout needs a positive number of seconds");
    }
    let timeout = Duration::from_secs_f64(args.timeout.min(86_400.0));
    let t = Transcript::open(&args.file).map_err(|e| Refusal {
        line: 0,
        what: crate::errtext::io(&e),
    })?;
    let (mut proto, mut plan) = plan(&t, args)?;
    let (program, argv0) = program(args, proto.as_ref())?;
    if std::fs::metadata(&program).map(|m| !m.is_file()).unwrap_or(true) {
        bail!(
            "cannot run {}: no such program; set {} in the config (or SCPTRACE_{}), or give -- PROGRAM",
            shown_path(&program),
            if proto.is_sftp() {
                "sftp_server"
            } else {
                "real_scp"
            },
            if proto.is_sftp() {
                "SFTP_SERVER"
            } else {
                "REAL_SCP"
            },
        );
    }
    let target = target::prepare(args.target.as_deref())?;
    if args.target.is_none() {
        eprintln!(
            "scptrace: replay: working in {} (a new directory; replay leaves it in place)",
            shown_path(&target.dir)
        );
    }
    proto.prepare(&t, &target.dir)?;
    plan.notes.extend(proto.notes());
    let cmd = engine::Command {
        program,
        argv0,
        args: program_args(args, proto.as_ref(), &target.dir)?,
        dir: proto.workdir(&target.dir),
    };
    let who = if !args.command.is_empty() {
        "the program"
    } else if proto.is_sftp() {
        "the real sftp-server"
    } else {
        "the real scp"
    };
    let head = report::Head {
        name: name.to_string(),
        cmd_text: report::command_text(&cmd, args.command.len() > 1),
        who: who.to_string(),
    };
    let (text, differs) = proto.converse(&t, &cmd, timeout, &mut plan, &head)?;
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("cannot write the report")?;
    Ok(if differs { 1 } else { 0 })
}

// ---- shared by the parts ----

/// Lines of context shown on each side of a difference.
const CONTEXT: usize = 3;
/// Longest line shown in a report.
const MAX_LINE: usize = 300;

/// Filler for file contents the recording does not hold.
const FILLER: &[u8] = b"scptrace replay: synthetic contents\n";

/// Fills `buf` with filler as from offset `at` of a stream.
fn fill(buf: &mut [u8], at: u64) {
    let start = (at % FILLER.len() as u64) as usize;
    for (k, slot) in buf.iter_mut().enumerate() {
        *slot = FILLER[(start + k) % FILLER.len()];
    }
}

/// How many bytes an `I:` line stands for (what replay sends for it) or an
/// `O:` line (what is expected): those it holds, or the count it gives when
/// that is more.
fn outgoing_total(b: &Bytes) -> u64 {
    b.len.max(b.bytes.len() as u64)
}

/// A copy of a bytes line small enough to keep for the report.
fn shrink_bytes(b: &Bytes) -> Bytes {
    Bytes {
        stream: b.stream,
        bytes: b.bytes[..b.bytes.len().min(MAX_LINE + 1)].to_vec(),
        len: b.len,
        kind: b.kind,
        // What the report shows of the note, cut like any long text.
        note: crate::transcript::annotate::note_text(b).map(|n| Annotation::Other(cut(&n))),
    }
}

fn cut(s: &str) -> String {
    s.chars().take(MAX_LINE + 1).collect()
}

/// A copy of a line small enough to keep for the report.
fn shrink(entry: &Entry) -> Entry {
    match entry {
        Entry::Bytes(b) => Entry::Bytes(shrink_bytes(b)),
        Entry::Header { key, value } => Entry::Header {
            key: cut(key),
            value: cut(value),
        },
        Entry::Invocation(s) => Entry::Invocation(cut(s)),
        Entry::Problem(s) => Entry::Problem(cut(s)),
        Entry::Note(s) => Entry::Note(cut(s)),
        other => other.clone(),
    }
}

/// A path for a message: its text with controls spelled out, or its escaped
/// bytes when it is not UTF-8.
fn shown_path(p: &Path) -> String {
    let b = p.as_os_str().as_bytes();
    match std::str::from_utf8(b) {
        Ok(s) => escape_text(s).into_owned(),
        Err(_) => escape(b),
    }
}

const UNITS: [(u64, &str); 4] = [(1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];

/// A byte count the way `--max-bytes` takes it: exact with a suffix where
/// one fits, else rounded up to the next MiB (so it is enough as a cap).
fn human_size(n: u64) -> String {
    for (unit, suffix) in UNITS {
        if n >= unit && n.is_multiple_of(unit) {
            return format!("{}{suffix}", n / unit);
        }
    }
    if n < 1 << 20 {
        return n.to_string();
    }
    format!("{}M", n.div_ceil(1 << 20))
}

/// `--max-bytes`: see [`crate::config::parse_size`] (one reading of sizes
/// for every flag and config key).
pub(crate) use crate::config::parse_size;

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("200000000"), Ok(200_000_000));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert!(parse_size("x").is_err());
        assert!(parse_size("1Q").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(human_size(64 << 20), "64M");
        assert_eq!(human_size(200_000_000), "191M");
        assert_eq!(human_size(1000), "1000");
        for n in [1u64, 1000, 1 << 20, 200_000_000, (5 << 30) + 1] {
            assert!(parse_size(&human_size(n)).unwrap() >= n);
        }
    }

    #[test]
    fn filler_continues_across_calls() {
        let mut a = [0u8; 50];
        fill(&mut a, 0);
        let mut b = [0u8; 20];
        fill(&mut b, 30);
        assert_eq!(&a[30..], &b[..]);
        assert_eq!(&a[..FILLER.len()], FILLER);
    }
}
