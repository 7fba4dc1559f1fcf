//! Replaying a legacy SCP session: which server flags to give the real scp,
//! how many bytes the replay will make it write, and, for a download
//! (`scp -f`), re-creating the recorded source inside the target directory.
//!
//! Nothing of the recorded command line is used but the server flags replay
//! understands (`-t` or `-f`, and `-r -p -d -v`): no program, no other option,
//! no path. The records' names are untrusted bytes: a name that could reach
//! outside the target (`/`, `.`, `..`, empty, NUL) is refused before anything
//! is written.

use std::ffi::{OsStr, OsString};
use std::fs::{File, FileTimes, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::{FILLER, Protocol, Refusal, Transcript, fill, human_size, outgoing_total};
use crate::config::Settings;
use crate::escape::escape;
use crate::protocol::scp::decode::Event as DecEvent;
use crate::protocol::scp::{Decoder, Dir, Frame, Msg, Options, Role, getopt};
use crate::shell::shell_split;
use crate::transcript::{Bytes, Entry, Stream};

/// The server flags of a recorded scp invocation that replay passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerFlags {
    pub role: Role,
    pub recursive: bool,
    pub preserve: bool,
    pub target_dir: bool,
    pub verbose: bool,
}

impl ServerFlags {
    /// Reads scp's arguments (without `argv[0]`) as its getopt would, up to
    /// the first operand; `None` unless exactly one of `-t`/`-f` is there.
    pub fn from_args(args: &[Vec<u8>]) -> Option<ServerFlags> {
        let (mut to, mut from) = (false, false);
        let mut f = ServerFlags {
            role: Role::Sink,
            recursive: false,
            preserve: false,
            target_dir: false,
            verbose: false,
        };
        let args: Vec<&OsStr> = args.iter().map(|a| OsStr::from_bytes(a)).collect();
        for opt in getopt(&args).0 {
            match opt.letter {
                b't' => to = true,
                b'f' => from = true,
                b'r' => f.recursive = true,
                b'p' => f.preserve = true,
                b'd' => f.target_dir = true,
                b'v' => f.verbose = true,
                _ => {}
            }
        }
        f.role = match (to, from) {
            (true, false) => Role::Sink,
            (false, true) => Role::Source,
            _ => return None,
        };
        Some(f)
    }

    /// The scp server session an invocation line describes: its own
    /// arguments (whatever its program), or, for the ssh leg that `record`
    /// wrote before it gave the remote command, the remote command in the
    /// last argument.
    pub fn from_invocation(invocation: &str) -> Option<ServerFlags> {
        let words = shell_split(invocation.as_bytes())?;
        let (_, args) = words.split_first()?;
        ServerFlags::from_args(args).or_else(|| {
            let inner = shell_split(args.last()?)?;
            ServerFlags::from_args(inner.get(1..)?)
        })
    }

    /// The flags in the order OpenSSH's client writes them, then `-t`/`-f`.
    pub fn args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        for (on, flag) in [
            (self.verbose, "-v"),
            (self.recursive, "-r"),
            (self.preserve, "-p"),
            (self.target_dir, "-d"),
        ] {
            if on {
                v.push(flag.into());
            }
        }
        v.push(match self.role {
            Role::Sink => "-t".into(),
            Role::Source => "-f".into(),
        });
        v
    }

    fn options(&self) -> Options {
        Options {
            role: self.role,
            recursive: self.recursive,
            target_dir: self.target_dir,
            preserve: self.preserve,
        }
    }
}

/// Most top-level entries of a download passed to `scp -f` (its argv).
const MAX_TOP: usize = 10_000;
/// Most files and directories a download's source may have.
const MAX_ENTRIES: u64 = 100_000;
/// Longest path re-created (PATH_MAX, less room for the target itself).
const MAX_PATH: usize = 3800;

/// The SCP side of a replay.
pub struct Scp {
    pub flags: ServerFlags,
    cap: u64,
    /// Upload: what the decoder makes of the bytes replay sends.
    upload: Option<Upload>,
    /// Download: the source as the first pass found it (nothing written).
    plan: Option<Source>,
    /// Download: the names to give `scp -f`, from the second pass.
    top: Vec<Vec<u8>>,
}

impl Scp {
    pub fn new(flags: ServerFlags, cap: u64) -> Scp {
        let (upload, plan) = match flags.role {
            Role::Sink => (Some(Upload::new(flags.options(), cap)), None),
            Role::Source => (None, Some(Source::new(flags.options(), None, cap))),
        };
        Scp {
            flags,
            cap,
            upload,
            plan,
            top: Vec::new(),
        }
    }
}

impl Protocol for Scp {
    fn plan(&mut self, no: u64, entry: &Entry) -> Result<(), Refusal> {
        let Entry::Bytes(b) = entry else { return Ok(()) };
        if let Some(u) = &mut self.upload {
            u.line(no, b);
        }
        if let Some(s) = &mut self.plan {
            s.line(no, b)?;
        }
        Ok(())
    }

    fn planned(&mut self) -> Result<(), Refusal> {
        if let Some(u) = &self.upload
            && let Some(over) = &u.over
        {
            let file = match &u.last_file {
                Some((name, size, line)) => {
                    format!(
                        " (the data of \"{}\", {size} B, announced at line {line})",
                        escape(name)
                    )
                }
                None => String::new(),
            };
            return Err(Refusal {
                line: *over,
                what: format!(
                    "replaying this upload would send {} B to scp{file}, more than the cap of {}; nothing was written; raise the cap with --max-bytes {}",
                    u.sent,
                    human_size(self.cap),
                    human_size(u.sent)
                ),
            });
        }
        if let Some(s) = &mut self.plan {
            s.finish()?;
            if let Some((line, name, size)) = &s.over {
                return Err(Refusal {
                    line: *line,
                    what: format!(
                        "re-creating the recorded source would write {} B into the target (\"{}\", {size} B, is where it passes the cap of {}); nothing was written; raise the cap with --max-bytes {}",
                        s.bytes,
                        escape(name),
                        human_size(self.cap),
                        human_size(s.bytes)
                    ),
                });
            }
        }
        Ok(())
    }

    fn prepare(&mut self, t: &Transcript, dir: &Path) -> Result<()> {
        if self.flags.role != Role::Source {
            return Ok(());
        }
        let mut src = Source::new(self.flags.options(), Some(dir.to_path_buf()), self.cap);
        let mut lines = t.lines()?;
        while let Some(l) = Transcript::next(&mut lines)? {
            if let Entry::Bytes(b) = &l.parsed.event.entry {
                src.line(l.no, b)?;
            }
        }
        src.finish()?;
        if let Some((line, name, size)) = src.over {
            // The file changed since the first pass checked it.
            return Err(Refusal {
                line,
                what: format!(
                    "\"{}\", {size} B, passes the cap of {}: the transcript changed since replay read it first",
                    escape(&name),
                    human_size(self.cap)
                ),
            }
            .into());
        }
        self.top = src.top;
        Ok(())
    }

    fn server_args(&self, dir: &Path) -> Result<Vec<OsString>> {
        let mut args = self.flags.args();
        match self.flags.role {
            Role::Sink => args.push(dir.as_os_str().to_owned()),
            // Absolute paths: a name starting with `-` is never an option.
            Role::Source => args.extend(
                self.top
                    .iter()
                    .map(|n| dir.join(OsString::from_vec(n.clone())).into_os_string()),
            ),
        }
        Ok(args)
    }

    fn default_program(&self, settings: &Settings) -> Result<(PathBuf, OsString)> {
        let real = crate::tap::standin::find_real_scp(settings)?;
        Ok((real.path, "scp".into()))
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.flags.role == Role::Source && self.top.is_empty() {
            notes.push(
                "the recorded source sent no file or directory record; scp -f was given no source"
                    .to_string(),
            );
        }
        notes
    }

    fn difference_notes(&self) -> Vec<String> {
        if self.flags.role == Role::Source && self.flags.recursive {
            return vec![
                "scp -r -f sends a directory's entries in the order the file system lists them, which replay cannot choose: a record in another order than recorded may be only that".to_string(),
            ];
        }
        Vec::new()
    }
}

/// An upload as the real scp will read it: the decoder is fed what replay
/// will send (the recorded bytes, and the filler where the recording lacks
/// them), to name the file being sent when the cap is reached.
struct Upload {
    decoder: Decoder,
    events: Vec<DecEvent>,
    cap: u64,
    /// Bytes replay will send in all.
    sent: u64,
    /// The line where `sent` first passes the cap.
    over: Option<u64>,
    /// The last file announced: name, size, line.
    last_file: Option<(Vec<u8>, u64, u64)>,
}

impl Upload {
    fn new(opts: Options, cap: u64) -> Upload {
        Upload {
            decoder: Decoder::new(opts),
            events: Vec::new(),
            cap,
            sent: 0,
            over: None,
            last_file: None,
        }
    }

    fn line(&mut self, no: u64, b: &Bytes) {
        let dir = match b.stream {
            Stream::In => Dir::In,
            Stream::Out => Dir::Out,
            Stream::Err => return,
        };
        if self.over.is_none() {
            feed_as_sent(&mut self.decoder, dir, b, &mut self.events);
            for ev in self.events.drain(..) {
                if let DecEvent::Frame(Frame {
                    msg: Msg::File { name, size, .. },
                    dir: Dir::In,
                    ..
                }) = ev
                {
                    self.last_file = Some((name, size, no));
                }
            }
        }
        if dir == Dir::In {
            self.sent = self.sent.saturating_add(outgoing_total(b));
            if self.sent > self.cap && self.over.is_none() {
                self.over = Some(no);
            }
        }
    }
}

/// Feeds the decoder what a bytes line stands for: its bytes, then, where
/// it holds fewer than passed, file data counted without bytes, and past the
/// data the filler replay would send (two periods of it are enough: each
/// further line of filler starts with `s`, which starts no record).
fn feed_as_sent(d: &mut Decoder, dir: Dir, b: &Bytes, out: &mut Vec<DecEvent>) {
    d.feed(dir, &b.bytes, out);
    let missing = outgoing_total(b) - b.bytes.len() as u64;
    let counted = missing.min(d.data_remaining(dir));
    d.skip(dir, counted, out);
    let rest = missing - counted;
    if rest > 0 && b.stream == Stream::In {
        let mut buf = [0u8; 2 * FILLER.len()];
        let n = rest.min(buf.len() as u64) as usize;
        let start = b.bytes.len() as u64 + counted;
        fill(&mut buf[..n], start);
        d.feed(dir, &buf[..n], out);
    }
}

/// A directory being re-created.
struct OpenDir {
    path: PathBuf,
    mode: u32,
    times: Option<(SystemTime, SystemTime)>,
}

/// A file being re-created.
struct OpenFile {
    /// `None` in the planning pass, and for a name seen twice (the first
    /// one's contents stay).
    file: Option<File>,
    name: Vec<u8>,
    size: u64,
    written: u64,
    mode: u32,
    times: Option<(SystemTime, SystemTime)>,
}

/// The source of a download, re-created from the records and data the
/// recorded scp sent (`O:`). With `root` `None` nothing is written: the
/// first pass checks names, counts and the cap.
struct Source {
    root: Option<PathBuf>,
    decoder: Decoder,
    events: Vec<DecEvent>,
    cap: u64,
    /// Bytes announced so far (all files, seen twice or not).
    bytes: u64,
    /// Where `bytes` first passed the cap: line, name, size.
    over: Option<(u64, Vec<u8>, u64)>,
    entries: u64,
    stack: Vec<OpenDir>,
    /// Depth of directories entered past a refused or missing one: none here.
    file: Option<OpenFile>,
    /// File data started in an earlier line and goes on.
    in_data: bool,
    /// Bytes of the source's stream fed so far.
    out_fed: u64,
    times: Option<(SystemTime, SystemTime)>,
    top: Vec<Vec<u8>>,
}

/// What the bytes of one decoder call are: real ones, or `n` counted ones
/// (file data the recording does not hold), which are written as filler.
#[derive(Clone, Copy)]
enum Input<'a> {
    Real(&'a [u8]),
    Counted(usize),
}

impl Input<'_> {
    fn len(&self) -> usize {
        match self {
            Input::Real(b) => b.len(),
            Input::Counted(n) => *n,
        }
    }
}

impl Source {
    fn new(opts: Options, root: Option<PathBuf>, cap: u64) -> Source {
        Source {
            root,
            decoder: Decoder::new(opts),
            events: Vec::new(),
            cap,
            bytes: 0,
            over: None,
            entries: 0,
            stack: Vec::new(),
            file: None,
            in_data: false,
            out_fed: 0,
            times: None,
            top: Vec::new(),
        }
    }

    fn line(&mut self, no: u64, b: &Bytes) -> Result<(), Refusal> {
        match b.stream {
            Stream::In => {
                // The peer's acks: they decide whether data follows a record.
                feed_as_sent(&mut self.decoder, Dir::In, b, &mut self.events);
                self.events.clear();
                Ok(())
            }
            Stream::Out => {
                let base = self.out_fed;
                self.out_fed += b.bytes.len() as u64;
                self.decoder.feed(Dir::Out, &b.bytes, &mut self.events);
                self.handle(no, Input::Real(&b.bytes), base)?;
                let missing = b.len.saturating_sub(b.bytes.len() as u64);
                let counted = missing.min(self.decoder.data_remaining(Dir::Out));
                if counted > 0 {
                    let base = self.out_fed;
                    self.out_fed += counted;
                    self.decoder.skip(Dir::Out, counted, &mut self.events);
                    let n = usize::try_from(counted).unwrap_or(usize::MAX);
                    self.handle(no, Input::Counted(n), base)?;
                }
                // Bytes missing past the data (a cut record line) are unknown:
                // nothing to re-create from them.
                Ok(())
            }
            Stream::Err => Ok(()),
        }
    }

    /// Acts on the decoder's events for one call with `input`, which began
    /// at absolute offset `base` of the source's stream (the decoder's
    /// offsets are absolute; a frame begun in an earlier input is clamped).
    fn handle(&mut self, no: u64, input: Input, base: u64) -> Result<(), Refusal> {
        let events = std::mem::take(&mut self.events);
        let rel = |abs: u64| {
            usize::try_from(abs.saturating_sub(base))
                .unwrap_or(usize::MAX)
                .min(input.len())
        };
        let mut data_from = self.in_data.then_some(0usize);
        let mut result = Ok(());
        for ev in &events {
            let step = match ev {
                DecEvent::DataStart {
                    dir: Dir::Out, at, ..
                } => {
                    data_from = Some(rel(*at));
                    Ok(())
                }
                DecEvent::Frame(Frame {
                    dir: Dir::Out,
                    end,
                    msg,
                    ..
                }) => match msg {
                    Msg::Data { .. } => {
                        let end = rel(*end);
                        let from = data_from.take().unwrap_or(end);
                        self.write(no, input, from, end).and_then(|()| self.end_file(no))
                    }
                    Msg::DataEnd { .. } => self.end_file(no),
                    other => self.record(no, other),
                },
                _ => Ok(()),
            };
            if step.is_err() {
                result = step;
                break;
            }
        }
        self.events = events;
        self.events.clear();
        result?;
        self.in_data = data_from.is_some();
        if let Some(from) = data_from {
            self.write(no, input, from, input.len())?;
        }
        Ok(())
    }

    fn refuse(&self, no: u64, what: String) -> Refusal {
        Refusal { line: no, what }
    }

    fn record(&mut self, no: u64, msg: &Msg) -> Result<(), Refusal> {
        match msg {
            Msg::Times {
                mtime,
                mtime_us,
                atime,
                atime_us,
            } => {
                let t = |s: u64, us: u64| {
                    SystemTime::UNIX_EPOCH
                        .checked_add(Duration::from_secs(s) + Duration::from_micros(us.min(999_999)))
                        .unwrap_or(SystemTime::UNIX_EPOCH)
                };
                self.times = Some((t(*mtime, *mtime_us), t(*atime, *atime_us)));
            }
            Msg::File { mode, size, name } => {
                self.end_file(no)?;
                let path = self.entry(no, name, "file")?;
                self.bytes = self.bytes.saturating_add(*size);
                if self.bytes > self.cap && self.over.is_none() {
                    self.over = Some((no, name.clone(), *size));
                }
                let file = match (&path, self.over.is_some()) {
                    (Some(p), false) => self.create_file(no, p, name)?,
                    _ => None,
                };
                self.file = Some(OpenFile {
                    file,
                    name: name.clone(),
                    size: *size,
                    written: 0,
                    mode: *mode,
                    times: self.times.take(),
                });
            }
            Msg::Dir { mode, name } => {
                self.end_file(no)?;
                let path = self.entry(no, name, "directory")?;
                let path = match path {
                    Some(p) => {
                        self.create_dir(no, &p, name)?;
                        p
                    }
                    None => PathBuf::new(),
                };
                self.stack.push(OpenDir {
                    path,
                    mode: *mode,
                    times: self.times.take(),
                });
            }
            Msg::EndDir { .. } => {
                self.end_file(no)?;
                if let Some(d) = self.stack.pop() {
                    self.close_dir(no, d)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks a record's name and counts it; the path to create (`None` in
    /// the planning pass).
    fn entry(&mut self, no: u64, name: &[u8], what: &str) -> Result<Option<PathBuf>, Refusal> {
        let bad = if name.is_empty() {
            Some("is empty")
        } else if name == b"." || name == b".." {
            Some("is . or ..")
        } else if name.contains(&b'/') {
            Some("contains /")
        } else if name.contains(&0) {
            Some("contains a NUL byte")
        } else {
            None
        };
        if let Some(why) = bad {
            return Err(self.refuse(
                no,
                format!(
                    "the recorded scp sent a {what} named \"{}\", which {why}: replay re-creates a download's source only inside its target, and a real scp -f never sends such a name; nothing of this entry was created",
                    escape(name)
                ),
            ));
        }
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(self.refuse(
                no,
                format!("the recorded source has more than {MAX_ENTRIES} files and directories; replay re-creates at most that many"),
            ));
        }
        if self.stack.is_empty() {
            if self.top.len() >= MAX_TOP {
                return Err(self.refuse(
                    no,
                    format!("the recorded download has more than {MAX_TOP} top-level sources; replay passes at most that many to scp -f"),
                ));
            }
            self.top.push(name.to_vec());
        }
        let Some(root) = &self.root else { return Ok(None) };
        let parent = self.stack.last().map_or(root.as_path(), |d| d.path.as_path());
        let path = parent.join(OsStr::from_bytes(name));
        if path.as_os_str().len() > MAX_PATH {
            return Err(self.refuse(
                no,
                format!(
                    "the path of \"{}\" in the re-created source would be longer than {MAX_PATH} bytes",
                    escape(name)
                ),
            ));
        }
        Ok(Some(path))
    }

    fn io_refusal(&self, no: u64, what: &str, name: &[u8], e: std::io::Error) -> Refusal {
        self.refuse(
            no,
            format!(
                "cannot {what} \"{}\" in the target: {}",
                escape(name),
                crate::errtext::io(&e)
            ),
        )
    }

    fn create_file(&self, no: u64, path: &Path, name: &[u8]) -> Result<Option<File>, Refusal> {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(f) => Ok(Some(f)),
            // The same name again (`scp -f a a` sends it twice): the first
            // one's contents stay.
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    && std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.io_refusal(no, "create the file", name, e)),
        }
    }

    fn create_dir(&self, no: u64, path: &Path, name: &[u8]) -> Result<(), Refusal> {
        match std::fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => Ok(()),
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    && std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) =>
            {
                Ok(())
            }
            Err(e) => Err(self.io_refusal(no, "create the directory", name, e)),
        }
    }

    /// Writes the data bytes `from..to` of `input` into the current file.
    fn write(&mut self, no: u64, input: Input, from: usize, to: usize) -> Result<(), Refusal> {
        let Some(f) = &mut self.file else { return Ok(()) };
        let n = to.saturating_sub(from);
        let room = usize::try_from(f.size - f.written).unwrap_or(usize::MAX);
        let n = n.min(room);
        if n == 0 {
            return Ok(());
        }
        if let Some(file) = &mut f.file {
            let r = match input {
                Input::Real(b) => file.write_all(&b[from..from + n]),
                Input::Counted(_) => write_filler(file, f.written, n as u64),
            };
            if let Err(e) = r {
                let name = f.name.clone();
                return Err(self.io_refusal(no, "write the file", &name, e));
            }
        }
        if let Some(f) = &mut self.file {
            f.written += n as u64;
        }
        Ok(())
    }

    /// Ends the current file: filler up to its announced size (the recording
    /// lacks the rest, or the transfer was cut), its mode and times.
    fn end_file(&mut self, no: u64) -> Result<(), Refusal> {
        let Some(mut f) = self.file.take() else {
            return Ok(());
        };
        let Some(file) = &mut f.file else { return Ok(()) };
        let r = write_filler(file, f.written, f.size - f.written)
            .and_then(|()| {
                if let Some((m, a)) = f.times {
                    file.set_times(FileTimes::new().set_modified(m).set_accessed(a))?;
                }
                Ok(())
            })
            .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(f.mode & 0o777)));
        r.map_err(|e| self.io_refusal(no, "write the file", &f.name, e))
    }

    fn close_dir(&self, no: u64, d: OpenDir) -> Result<(), Refusal> {
        if self.root.is_none() {
            return Ok(());
        }
        let name = d
            .path
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        let r = (|| {
            if let Some((m, a)) = d.times {
                File::open(&d.path)?.set_times(FileTimes::new().set_modified(m).set_accessed(a))?;
            }
            std::fs::set_permissions(&d.path, std::fs::Permissions::from_mode(d.mode & 0o777))
        })();
        r.map_err(|e| self.io_refusal(no, "set the mode and times of the directory", &name, e))
    }

    /// The end of the transcript: the file and directories still open.
    fn finish(&mut self) -> Result<(), Refusal> {
        let no = 0;
        self.end_file(no)?;
        while let Some(d) = self.stack.pop() {
            self.close_dir(no, d)?;
        }
        Ok(())
    }
}

/// Writes `n` bytes of filler, as from offset `at` of a file.
fn write_filler(file: &mut File, mut at: u64, mut n: u64) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    while n > 0 {
        let k = n.min(buf.len() as u64) as usize;
        fill(&mut buf[..k], at);
        file.write_all(&buf[..k])?;
        at += k as u64;
        n -= k as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<Vec<u8>> {
        s.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn server_flags_from_recorded_arguments() {
        let f = ServerFlags::from_args(&words(&["-d", "-t", "/tmp"])).unwrap();
        assert_eq!((f.role, f.target_dir, f.recursive), (Role::Sink, true, false));
        let f = ServerFlags::from_args(&words(&["-v", "-prf", "x"])).unwrap();
        assert_eq!(
            (f.role, f.verbose, f.recursive, f.preserve),
            (Role::Source, true, true, true)
        );
        assert_eq!(f.args(), ["-v", "-r", "-p", "-f"]);
        // An option's value is not read as flags; operands end the options.
        assert!(ServerFlags::from_args(&words(&["-o", "-t", "h:x", "y"])).is_none());
        assert!(ServerFlags::from_args(&words(&["-M", "-t", "x"])).is_none());
        assert!(ServerFlags::from_args(&words(&["x", "-t"])).is_none());
        assert!(ServerFlags::from_args(&words(&["-t", "-f", "x"])).is_none());
    }

    #[test]
    fn server_flags_from_invocation_lines() {
        let f = |s: &str| ServerFlags::from_invocation(s).map(|f| f.args());
        assert_eq!(f("/usr/bin/scp -d -t /tmp").unwrap(), ["-d", "-t"]);
        // Whatever the program: only the flags count.
        assert_eq!(f("/usr/bin/evil -t x").unwrap(), ["-t"]);
        assert_eq!(
            f("/usr/bin/ssh -x -- host 'scp -r -t /x/'").unwrap(),
            ["-r", "-t"]
        );
        assert_eq!(
            f(r#"scp -o 'ProxyCommand=sh -c "id > /tmp/pwned"' h:x /tmp/y"#),
            None
        );
        assert_eq!(f("/bin/cat"), None);
        assert_eq!(f("scp 'unterminated"), None);
    }
}
