//! The command line (clap derive). Every tracing option also has an
//! environment variable and a config key: see `config.rs`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    Record(crate::record::RecordArgs),
    /// Render saved transcripts: colour, filters, text or JSON Lines, summaries
    Show(crate::show::ShowArgs),
    /// Decode transcripts and list protocol violations; exit 1 if any
    Check(crate::check::CheckArgs),
    /// Speak a transcript's I: side to a fresh real scp and report where the replies differ
    Replay(crate::replay::ReplayArgs),
    /// Run as an sshd ForceCommand or authorized_keys command=
    Forced(crate::forced::ForcedArgs),
    /// Put the scp stand-in in place on this machine
    Install(crate::install::InstallArgs),
    /// Undo exactly what `install` did
    Uninstall(crate::install::UninstallArgs),
    /// Explain what a non-interactive ssh session on this machine runs as `scp`
    Doctor(crate::install::DoctorArgs),
    /// Print the man page or a shell completion script
    #[command(hide = true)]
    Generate(crate::generate::GenerateArgs),
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
    /// Prefix each event with seconds since start [env: SCPTRACE_TIMESTAMPS]
    #[arg(long)]
    pub timestamps: bool,
    /// When to use colour on a terminal [env: SCPTRACE_COLOR]
    #[arg(long, value_enum)]
    pub color: Option<ColorWhen>,
}

impl TraceOpts {
    pub fn flags(&self) -> Flags {
        Flags {
            log_dir: self.log_dir.clone(),
            framing: self.framing,
            data: self.data,
            format: self.format,
            timestamps: self.timestamps.then_some(true),
            color: self.color,
            ..Flags::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub trace: TraceOpts,
    /// The program and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM"
    )]
    pub command: Vec<OsString>,
}
