//! One traced run: open the transcript, spawn the program, relay, and end
//! the way the program ended. Shared by `run`, the `scp` stand-in and `forced`.

use std::cell::Cell;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::Result;

use crate::config::{Format, Settings};
use crate::paths;
use crate::protocol::Protocol;
use crate::shell::shell_join;
use crate::tap::child;
use crate::tap::logdir::{self, LogDir};
use crate::tap::logwriter::{self, QueueHandle};
use crate::tap::relay;
use crate::tap::trace::Tracer;
use crate::transcript::{self, EventWriter};
use crate::utc::Utc;
use crate::warn::warn;

/// What to run.
pub struct Target {
    /// The executable.
    pub program: PathBuf,
    /// What the child sees as `argv[0]`.
    pub argv0: OsString,
    pub args: Vec<OsString>,
    /// The protocol the program speaks, when known: a legacy scp server (with
    /// its options) or an SFTP server. Enables decoding.
    pub proto: Option<Protocol>,
    /// The invocation line's text when it is not `program args…` (e.g. the
    /// remote command of an ssh leg in `record`).
    pub shown: Option<String>,
    /// `>>>` lines written right after the invocation (how the streams were set up).
    pub notes: Vec<String>,
    /// A person started this and reads our stderr (`run`, `record`): the
    /// transcript cap is also said there. In the stand-in and forced modes
    /// our stderr is what the ssh client shows next to the transfer, and
    /// the tap says nothing of its own there mid-transfer.
    pub interactive: bool,
}

/// Where the transcript goes.
pub enum Output {
    /// A file the user named.
    File(PathBuf),
    /// A new file in the log directory.
    LogDir,
    /// Our stderr, live (`record -o -`).
    Stderr,
}

/// Size of the transcript's write buffer: lines reach the file in batches.
const LOG_BUF: usize = 64 * 1024;

fn open_writer(
    settings: &Settings,
    output: &Output,
    start: &Utc,
    tag: &str,
    written: &Rc<Cell<u64>>,
) -> std::io::Result<(String, Box<dyn EventWriter>, Option<QueueHandle>)> {
    let (label, file) = match output {
        Output::File(p) => (p.display().to_string(), logdir::create_named(p)?),
        Output::Stderr => {
            let w = std::io::LineWriter::new(StderrWriter);
            let styles = crate::style::Styles::for_stderr(settings.color.value);
            if settings.format.value == Format::Text && styles != crate::style::Styles::plain() {
                let writer =
                    crate::transcript::styled::StyledWriter::new(w, styles, settings.timestamps.value);
                return Ok(("stderr".into(), Box::new(writer), None));
            }
            return Ok((
                "stderr".into(),
                make_writer(settings.format.value, settings.timestamps.value, w),
                None,
            ));
        }
        Output::LogDir => {
            let dir = LogDir::open(&settings.log_dir.value)?;
            let (p, f) = dir.create(start, tag)?;
            (p.display().to_string(), f)
        }
    };
    // Written by a thread of its own: a slow destination never stalls the relay.
    let (queued, handle) = logwriter::start(file, LOG_BUF, label.clone())?;
    let w = Counting {
        inner: queued,
        written: written.clone(),
    };
    Ok((
        label,
        make_writer(settings.format.value, settings.timestamps.value, w),
        Some(handle),
    ))
}

/// A transcript writer of the given format over any `Write`.
pub fn make_writer<W: Write + 'static>(format: Format, timestamps: bool, w: W) -> Box<dyn EventWriter> {
    match format {
        Format::Text => Box::new(transcript::text::TextWriter::new(w, timestamps)),
        Format::Jsonl => Box::new(transcript::jsonl::JsonlWriter::new(w)),
    }
}

/// Runs `target` traced; returns only if it could not be started.
pub fn run_traced(target: Target, settings: &Settings, output: Output) -> Result<std::convert::Infallible> {
    let start = Utc::now();
    for w in &settings.warnings {
        warn(w);
    }
    // Name transcripts of scp sessions `…-scp.log` whatever runs them (forced
    // mode runs the user's shell), so they sort and glob together.
    let tag = match target.proto {
        Some(Protocol::Scp(_)) => "scp".to_string(),
        Some(Protocol::Sftp) => "sftp".to_string(),
        None => target
            .program
            .file_name()
            .map(|n| String::from_utf8_lossy(n.as_bytes()).into_owned())
            .unwrap_or_else(|| "trace".into()),
    };
    if matches!(output, Output::LogDir) && (settings.keep.value > 0 || settings.keep_days.value > 0) {
        logdir::prune(
            &settings.log_dir.value,
            settings.keep.value,
            settings.keep_days.value,
        );
    }
    // Everything tracing needs that can fail, before anything runs: failing
    // here, the program is exec'd untraced, as it would run without us.
    let reserve = match child::FdReserve::take() {
        Ok(r) => r,
        Err(e) => return Err(exec_untraced(&target, &format!("cannot trace: {e}"))),
    };
    let signals = match child::SignalPipe::new() {
        Ok(p) => p,
        Err(e) => return Err(exec_untraced(&target, &format!("cannot trace: {e}"))),
    };
    let written = Rc::new(Cell::new(0));
    let mut tracer = match open_writer(settings, &output, &start, &tag, &written) {
        Ok((label, writer, queue)) => {
            let mut t = Tracer::new(
                Some(writer),
                label,
                settings.framing.value,
                settings.data.value,
                target.proto,
            );
            t.set_queue(queue);
            t
        }
        Err(e) => return Err(exec_untraced(&target, &e.to_string())),
    };
    tracer.set_cap(written, settings.max_log_bytes.value, target.interactive);
    tracer.header("scptrace", env!("CARGO_PKG_VERSION"));
    tracer.header("start", &start.rfc3339());
    tracer.header("pid", &std::process::id().to_string());
    if let Ok(h) = nix::unistd::gethostname() {
        tracer.header("host", &h.to_string_lossy());
    }
    tracer.header("user", &paths::user_name());
    tracer.header("program", &target.program.display().to_string());
    let shown = target.shown.clone().unwrap_or_else(|| {
        let mut argv: Vec<OsString> = vec![target.program.clone().into_os_string()];
        argv.extend(target.args.iter().cloned());
        shell_join(&argv.iter().map(|a| a.as_bytes()).collect::<Vec<_>>())
    });
    tracer.invocation(shown);
    for note in &target.notes {
        tracer.note(note.clone());
    }

    // Our own exit-status wait needs a SIGCHLD that is not ignored.
    child::default_sigchld();
    drop(reserve);
    let spawned = match child::spawn(&target.program, &target.argv0, &target.args) {
        Ok(s) => {
            // A transcript past RLIMIT_FSIZE must fail with EFBIG, not kill us.
            child::ignore_sigxfsz();
            s
        }
        Err(e) => {
            let e = crate::errtext::io(&e);
            tracer.problem(format!("cannot start {}: {e}", target.program.display()));
            tracer.flush();
            return Err(anyhow::anyhow!("cannot run {}: {e}", target.program.display()));
        }
    };
    // Only now our handlers: the child was started with the dispositions we
    // were given (an ignored SIGHUP under nohup stays ignored for it). A child
    // that exits before this is found by the relay's first wait.
    signals.install()?;
    let relayed = relay::relay(spawned, &signals, &mut tracer, settings.splice.value)?;
    tracer.exit(child::status_code(relayed.status));
    tracer.flush();
    tracer.settle();
    drop(tracer);
    if let Some(sig) = relayed.ended_by {
        child::die_by(sig, false);
    }
    child::exit_like(relayed.status)
}

/// Replaces this process with `target`, untraced, after one warning: what
/// a failure to set up tracing falls back to, so the transfer runs exactly as
/// without scptrace (docs/relay.md, "Tracing never breaks a transfer").
/// Returns only if the exec failed.
fn exec_untraced(target: &Target, why: &str) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    warn(&format!("{why}; running {} untraced", target.program.display()));
    crate::tap::standin::mark_exec_if_spawn();
    let mut cmd = std::process::Command::new(&target.program);
    let err = child::with_start_signals(&mut cmd)
        .arg0(&target.argv0)
        .args(&target.args)
        .exec();
    anyhow::anyhow!("cannot run {}: {err}", target.program.display())
}

/// Our stderr as a `Write` that survives it being non-blocking (see `warn`).
struct StderrWriter;

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::warn::write_stderr(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Counts the bytes written through it, for the transcript size cap.
struct Counting<W: Write> {
    inner: W,
    written: Rc<Cell<u64>>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written.set(self.written.get() + n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
