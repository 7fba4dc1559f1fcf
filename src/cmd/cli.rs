//! The command line (clap derive): every clap struct of every subcommand, and
//! nothing else, so the whole interface reads in one file and `generate`
//! renders it. Every tracing option also has an environment variable and a
//! config key: see `config.rs`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{ColorWhen, DataMode, Flags, Format, Framing};

/// A transparent tap on the legacy SCP protocol: relays every byte between a
/// peer and the real scp unchanged, and writes an annotated transcript.
#[derive(Debug, Parser)]
#[command(name = "scptrace", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Trace any program's stdin, stdout and stderr (e.g. `scptrace run -o t.log -- scp -d -t /tmp`)
    Run(RunArgs),
    /// Trace the client side: run a local scp with scptrace as its ssh program
    Record(RecordArgs),
    /// Render saved transcripts: colour, filters, text or JSON Lines, summaries
    Show(ShowArgs),
    /// Decode transcripts' bytes and say what they hold; exit 0 only when decoded whole and clean
    Check(CheckArgs),
    /// List the transcripts in the log directory, newest first, one line each
    Ls(LsArgs),
    /// Speak a transcript's I: side to a fresh real scp or sftp-server and report where the replies differ
    Replay(ReplayArgs),
    /// Run as an sshd ForceCommand or authorized_keys command=
    Forced(ForcedArgs),
    /// Run the real sftp-server traced: for sshd's `Subsystem sftp` line
    SftpServer(SftpServerArgs),
    /// Put the scp stand-in in place on this machine
    Install(InstallArgs),
    /// Undo exactly what `install` did
    Uninstall(UninstallArgs),
    /// Explain what a non-interactive ssh session on this machine runs as `scp`
    Doctor(DoctorArgs),
    /// Print the man pages or a shell completion script
    Generate(GenerateArgs),
}

/// Options that shape a transcript.
#[derive(Debug, Clone, Args)]
pub struct TraceOpts {
    /// Write the transcript to FILE (default: a new file in the log directory)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Directory for transcripts [env: SCPTRACE_LOG_DIR] [default: $XDG_STATE_HOME/scptrace]
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// One line per protocol message, or one per read [env: SCPTRACE_FRAMING]
    #[arg(long, value_enum)]
    pub framing: Option<Framing>,
    /// How much of each file's contents to show [env: SCPTRACE_DATA]
    #[arg(long, value_enum)]
    pub data: Option<DataMode>,
    /// Transcript format [env: SCPTRACE_FORMAT]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Prefix each event with seconds since start; `=off` turns off what the
    /// config or environment turned on (the same switch as `show`'s) [env: SCPTRACE_TIMESTAMPS]
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "on", value_name = "on|off")]
    pub timestamps: Option<OnOff>,
    /// When to use colour on a terminal [env: SCPTRACE_COLOR]
    #[arg(long, value_enum)]
    pub color: Option<ColorWhen>,
    /// Past SIZE bytes of transcript, file contents are counted, not shown;
    /// past 1.25 × SIZE only the exit status is written; run and record say so once on stderr
    /// (suffixes K, M, G: powers of 1024; 0: no cap) [env: SCPTRACE_MAX_LOG_BYTES] [default: 64M]
    #[arg(long, value_name = "SIZE", value_parser = super::replay::parse_size)]
    pub max_log_bytes: Option<u64>,
}

impl TraceOpts {
    pub fn flags(&self) -> Flags {
        Flags {
            log_dir: self.log_dir.clone(),
            framing: self.framing,
            data: self.data,
            format: self.format,
            timestamps: self.timestamps.map(|t| t == OnOff::On),
            color: self.color,
            max_log_bytes: self.max_log_bytes,
            ..Flags::default()
        }
    }
}

// (RunArgs and RecordArgs both end in a trailing command; its help and
// value name differ, so each declares its own.)
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub trace: TraceOpts,
    /// The program and its arguments. scptrace's own options come before it
    /// (an unknown one is an error); from PROGRAM on, every word is the
    /// program's, `-` or not; `--` may separate the two
    #[arg(required = true, trailing_var_arg = true, value_name = "PROGRAM")]
    pub command: Vec<OsString>,
}

/// Trace the client side: run a local scp with scptrace as its ssh program
#[derive(Debug, Args)]
#[command(after_help = "\
Runs SCP ARGS with `-S scptrace`: each ssh connection the client opens is traced
to its own transcript. `-o FILE` writes FILE for the first connection, then FILE-2,
FILE-3... (t.log, t-2.log); `-o -` writes live to stderr; otherwise a new file per
connection in the log directory. The paths are printed on stderr at the end.
A user's own `-S PROGRAM` is honoured (scptrace runs it). An OpenSSH >= 9.0 client
gets `-O` unless ARGS have it. The client's prompts, progress meter, output and
exit status are its own. See docs/reporting-bugs.md.")]
pub struct RecordArgs {
    #[command(flatten)]
    pub trace: TraceOpts,
    /// Make an OpenSSH scp (9.0 and later) speak the legacy SCP protocol: add -O
    #[arg(long)]
    pub legacy: bool,
    /// The scp client and its arguments (e.g. `scp -r dir host:/tmp`); from
    /// SCP on, every word is the client's; `--` may come before it
    #[arg(required = true, trailing_var_arg = true, value_name = "SCP")]
    pub command: Vec<OsString>,
}

/// Render saved transcripts: colour, filters, text or JSON Lines, summaries
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Transcript files, text or JSON Lines (detected from the first line); `-` for standard input,
    /// `@1` for the newest in the log directory, `@2` the one before
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output form: text lines, or JSON Lines (converts either way, losslessly)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// When to colour the output [env: SCPTRACE_COLOR] [default: auto]
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorWhen>,
    /// Show the recorded timestamps (the default), or hide them with `=off`:
    /// a switch, as for `run` and `record` (`--timestamps off` with a space is
    /// no longer read: `off` would be a FILE)
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "on", value_name = "on|off")]
    pub timestamps: Option<OnOff>,
    /// How recorded times are shown: seconds since the start (relative, as
    /// recorded), UTC time of day with microseconds from the `start` header
    /// (absolute, like `strace -tt`), or seconds since the previous line (delta)
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = TimeMode::Relative)]
    pub time: TimeMode,
    /// Cut long bytes lines to N columns, saying how much was cut (0: never)
    /// [default: the terminal's width when stdout is a terminal, else 0]
    #[arg(long, value_name = "N")]
    pub width: Option<usize>,
    /// Never page: write straight to the terminal (otherwise, on a terminal,
    /// output goes through $SCPTRACE_PAGER, else $PAGER, else `less -R`, as git does;
    /// never when piped, nor under an sshd ForceCommand)
    #[arg(long)]
    pub no_pager: bool,
    /// Show only these streams' bytes and `closed` lines (comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', value_name = "in,out,err")]
    pub stream: Vec<StreamSel>,
    /// Show only the lines of the files whose path within the transfer (as
    /// `--summary` names it) matches GLOB (`*`, `?`, `[...]`): their records,
    /// data and replies, and (SCP) the directories they are in; (SFTP) the
    /// OPEN, requests on its handle until CLOSE, and their replies
    #[arg(long, value_name = "GLOB", conflicts_with = "violations")]
    pub file: Option<String>,
    /// Show only the `!!` lines (protocol violations and tracing problems)
    #[arg(long)]
    pub violations: bool,
    /// Summarise each transcript instead: files, bytes, directories, warnings,
    /// errors, violations, duration, exit status
    #[arg(long, conflicts_with_all = ["stream", "violations", "timestamps", "file"])]
    pub summary: bool,
}

/// `show --time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimeMode {
    Relative,
    Absolute,
    Delta,
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

/// Decode transcripts and list protocol violations; exit 1 if any
#[derive(Debug, Args)]
#[command(after_help = "\
The verdict comes from decoding each transcript's bytes again, never from the !!
lines it holds (a note says when those differ); tracing problems it records are
shown. Every file gets at least one line.

Exit status (over several files, the first of 2, 1, 3, 0 that any file has):
  0  decoded whole, from the invocation line to the exit status: no violation
  1  violations found (each listed as `FILE: !! NAME: SENTENCE`)
  2  a file could not be read or is not a transcript
  3  not decoded whole: empty, cut short (no `#:` line, or truncated), or not a
     legacy scp server session; no violation in what was decoded

See docs/decoder.md for every violation name.")]
pub struct CheckArgs {
    /// Transcript files, text or JSON Lines; `-` for standard input, `@1` the newest in the log directory
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// When to colour the output [env: SCPTRACE_COLOR] [default: auto]
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorWhen>,
}

/// List the transcripts in the log directory, newest first, one line each
#[derive(Debug, Args)]
#[command(after_help = "\
Each line: the start time (the transcript's `start` header), the program and its mode
(scp -t, scp -f, sftp-server, or the traced program's name), the files transferred
and their bytes (from decoding the bytes again, as show --summary does), the exit
status (- when the transcript has none: cut short), the violations decoding finds,
and the file's name. @1 is the first line, @2 the second, for show and check.
A file that cannot be read or is not a transcript is one line saying so.

Exit status: 0 (also for an empty or missing log directory, said on stderr);
2 when the log directory cannot be listed.")]
pub struct LsArgs {
    /// Output form: aligned text columns, or one JSON object per transcript
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Speak a transcript's I: side to a fresh real scp and report where the replies differ
#[derive(Debug, Args)]
#[command(after_help = "\
Runs only the real scp (real_scp in the config or SCPTRACE_REAL_SCP, else the first
scp on PATH that is not scptrace), in server mode: -t or -f as recorded, with the
recorded -r, -p, -d and -v, and nothing else from the transcript: no program, no
other option, no path. It runs in a directory replay controls: --target DIR, which
must be an empty directory of yours or not exist yet (it is then created, mode
0700); without --target, a new temporary directory, named on stderr and left in
place. An upload (-t) arrives there; for a download (-f), the recorded files and
directories are first re-created there, with the recorded contents or filler of
the recorded size. --max-bytes caps what that may write.

Each recorded I: message is sent once the O: replies recorded before it have
arrived, and what comes back is compared. File contents that a --data head/none
recording lacks are sent as synthetic filler of the recorded size.

-- PROGRAM runs PROGRAM with those server arguments (with none, for a transcript
that is no scp server session); -- PROGRAM ARGS runs exactly that. Either runs in
the target directory.

Exit status: 0 when the replies match the recording, 1 when they differ, 2 when
the replay could not be run (an unreadable transcript, not an scp server session,
--target not empty, over --max-bytes, no real scp). See docs/reporting-bugs.md.")]
pub struct ReplayArgs {
    /// The transcript to replay (text or JSON Lines); `-` for standard input
    pub file: PathBuf,
    /// Directory to replay in: empty, or not existing yet [default: a new temporary directory]
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Seconds to wait for the real scp (or sftp-server) to make progress at each step
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Most bytes the replay may write into the target: the files of an
    /// upload, a download's re-created source, an SFTP session's WRITEs and
    /// re-created files (suffixes K, M, G, T: powers of 1024)
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = super::replay::parse_size)]
    pub max_bytes: u64,
    /// Run this instead of the real scp (or sftp-server): PROGRAM alone gets the server
    /// arguments replay derives; PROGRAM ARGS runs exactly that
    #[arg(last = true, value_name = "PROGRAM")]
    pub command: Vec<OsString>,
}

/// Run as an sshd ForceCommand / authorized_keys command=: trace legacy scp, run anything else untouched
#[derive(Debug, Args)]
#[command(after_help = "\
Reads SSH_ORIGINAL_COMMAND. A legacy scp server command (scp … -t/-f …) runs through the
user's shell, so globs and ~ expand as without scptrace, with its stdio traced into the log
directory. Anything else (a login, a shell command, sftp) runs untraced, as sshd would
have run it.

In sshd_config:       ForceCommand /usr/local/bin/scptrace forced
In authorized_keys:   command=\"/usr/local/bin/scptrace forced\" ssh-ed25519 AAAA…
                      (`scptrace install --authorized-key` writes this one)
See docs/deploying.md.")]
pub struct ForcedArgs {
    #[command(flatten)]
    pub trace: TraceOpts,
}

/// Run the real sftp-server with its stdio traced, for sshd's Subsystem line
#[derive(Debug, Args)]
#[command(after_help = "\
In sshd_config (since OpenSSH 9.5 this may sit inside a Match block, to trace some
users only):
  Subsystem sftp /usr/local/bin/scptrace sftp-server
  Subsystem sftp /usr/local/bin/scptrace sftp-server -- /usr/lib/openssh/sftp-server -l INFO
Without SFTP_SERVER, the first of the usual sftp-server paths that exists is run
(/usr/lib/openssh/sftp-server, /usr/libexec/openssh/sftp-server, ...).
The transcript goes to the log directory. See docs/deploying.md.")]
pub struct SftpServerArgs {
    #[command(flatten)]
    pub trace: TraceOpts,
    /// The sftp-server to run and its arguments
    #[arg(last = true, value_name = "SFTP_SERVER")]
    pub command: Vec<OsString>,
}

/// Put the scp stand-in in place on this machine
#[derive(Debug, Args)]
#[command(after_help = "\
Without --authorized-key: links DIR/scp to this binary and records the real scp as
`real_scp` in the config file (/etc/scptrace/config.toml when root installs into a
directory outside $HOME, else the user's). Refuses to replace a file it did not create.

With --authorized-key: prefixes that key's line in authorized_keys with
command=\"…/scptrace forced\" instead (no PATH change, no admin needed), keeping a backup.

Every change is recorded in installed.toml next to the config; `scptrace uninstall`
undoes exactly those. Check the result with `ssh HOST scptrace doctor`.")]
pub struct InstallArgs {
    /// Directory for the `scp` link [default: the first directory on the PATH that sshd
    /// gives non-interactive sessions here that comes before the real scp, /usr/local/bin
    /// when it does]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The real scp to record [default: the configured one, else the first scp on that
    /// PATH that is not scptrace]
    #[arg(long, value_name = "PATH")]
    pub real: Option<PathBuf>,
    /// Instead of a link, force `scptrace forced` on one key: its SHA256:… fingerprint
    /// (`ssh-keygen -lf KEY.pub`), its public key line, or its .pub file
    #[arg(long, value_name = "FINGERPRINT|LINE", conflicts_with_all = ["dir", "real"])]
    pub authorized_key: Option<String>,
    /// The authorized_keys file to edit [default: ~/.ssh/authorized_keys]
    #[arg(long, value_name = "FILE", requires = "authorized_key")]
    pub authorized_keys: Option<PathBuf>,
    /// Print every change install would make, and make none
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

/// Which config file and install record to use.
#[derive(Debug, Clone, Args)]
pub struct ScopeArgs {
    /// Use the user's config directory ($XDG_CONFIG_HOME/scptrace)
    #[arg(long, conflicts_with = "system")]
    pub user: bool,
    /// Use /etc/scptrace (root only)
    #[arg(long)]
    pub system: bool,
}

/// Undo exactly what `install` did
#[derive(Debug, Args)]
#[command(after_help = "\
Reads installed.toml (the user's, then /etc/scptrace's) and undoes each recorded step,
newest first: removes a link only if it still points where install pointed it, puts
back the config line that was there before, and restores the authorized_keys line
byte for byte. Anything changed since install is left alone and reported.")]
pub struct UninstallArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
}

/// Output format of `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    /// Lines for a person
    Text,
    /// One JSON object: the whole report (not JSON Lines: there is one report)
    Json,
}

/// Explain what a non-interactive ssh session on this machine runs as `scp`
#[derive(Debug, Args)]
#[command(after_help = "\
Run it the way a client's session runs: `ssh HOST scptrace doctor` shows the PATH, user
and config of a remote non-interactive session. Exit status 0 when a legacy scp server
started like this would be traced, 1 otherwise (each problem on its own line, with a hint).")]
pub struct DoctorArgs {
    /// Output format. `json` is one pretty-printed object, since doctor
    /// reports one state; transcripts and `show` use `jsonl`,
    /// a stream of one object per line, since they report a sequence of events
    #[arg(long, value_enum, default_value = "text")]
    pub format: DoctorFormat,
    /// The sshd_config whose `Subsystem sftp` and `ForceCommand` to report
    #[arg(long, value_name = "FILE", default_value = "/etc/ssh/sshd_config")]
    pub sshd_config: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum What {
    /// The man pages (roff): scptrace.1, and with --dir one per command
    Man,
    Bash,
    Zsh,
    Fish,
    Elvish,
}

/// Print the man pages or a shell completion script
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(value_enum)]
    pub what: What,
    /// man: write every page (scptrace.1, scptrace-COMMAND.1) into DIR
    /// instead of scptrace.1 to stdout
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
