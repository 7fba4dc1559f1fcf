//! Settings from flags, environment, config files and defaults, in that order
//! of precedence (design §1), each remembering where it came from.
//!
//! A stand-in cannot take flags, so every option also has an environment
//! variable `SCPTRACE_<NAME>` and a key in `config.toml`.
//!
//! One exception (design §1): in an ssh session, a setting that names a
//! program to run is never taken from the environment, unless the system
//! file says `allow_env_programs = true` ([`EnvPolicy`]). A key restricted to
//! `command="scp -t /backup"` with `AcceptEnv SCPTRACE_*` must not be able
//! to make the stand-in run a file its user uploaded.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The system config file: the one that may set [`ALLOW_ENV_PROGRAMS`].
pub const SYSTEM_CONFIG: &str = "/etc/scptrace/config.toml";

/// The system file's key that lets the environment name programs in ssh
/// sessions too (`allow_env_programs = true`). Read from no other file, and
/// from no environment variable.
pub const ALLOW_ENV_PROGRAMS: &str = "allow_env_programs";

/// Whether the environment may name a program to run, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvPolicy {
    /// The variable that makes this an ssh session (`SSH_CONNECTION` or
    /// `SSH_ORIGINAL_COMMAND`), if one is set.
    pub ssh_session: Option<&'static str>,
    /// `allow_env_programs = true` in the system file.
    pub allow_env_programs: bool,
}

impl EnvPolicy {
    /// This process's: its environment and [`SYSTEM_CONFIG`].
    pub fn current() -> EnvPolicy {
        let system = read_table(Path::new(SYSTEM_CONFIG)).ok().flatten();
        EnvPolicy::from_parts(&process_env, system.as_ref())
    }

    /// From an environment (a lookup) and the system file's table.
    pub fn from_parts(env: &dyn Fn(&str) -> Option<OsString>, system: Option<&toml::Table>) -> EnvPolicy {
        let ssh_session = ["SSH_CONNECTION", "SSH_ORIGINAL_COMMAND"]
            .into_iter()
            .find(|v| env(v).is_some());
        let allow_env_programs = system
            .and_then(|t| t.get(ALLOW_ENV_PROGRAMS))
            .is_some_and(|v| match v {
                toml::Value::Boolean(b) => *b,
                toml::Value::String(s) => s.parse::<Bool>().is_ok_and(|b| b.0),
                _ => false,
            });
        EnvPolicy {
            ssh_session,
            allow_env_programs,
        }
    }

    /// `None` when the environment may name a program to run; else why not,
    /// in words that say how to allow it.
    pub fn refusal(&self) -> Option<String> {
        let var = self.ssh_session?;
        if self.allow_env_programs {
            return None;
        }
        Some(format!(
            "in an ssh session ({var} is set) a program to run comes only from a config file, never from the environment \
             (unless {SYSTEM_CONFIG} says {ALLOW_ENV_PROGRAMS} = true)"
        ))
    }

    /// The value of `var`, an environment variable that names a program to
    /// run: `Ok(None)` when unset or empty, `Err` when set but refused.
    pub fn program_var(&self, var: &str) -> Result<Option<OsString>, Refused> {
        let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        match self.refusal() {
            None => Ok(Some(v)),
            Some(reason) => Err(Refused {
                variable: var.to_string(),
                value: v.to_string_lossy().into_owned(),
                reason,
            }),
        }
    }
}

/// An environment variable that was set and not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub variable: String,
    /// Its value (lossily as text).
    pub value: String,
    pub reason: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = crate::escape::escape_text(&self.value);
        write!(f, "{}={value} ignored: {}", self.variable, self.reason)
    }
}

fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// A config file's table: `None` when the file does not exist.
fn read_table(path: &Path) -> Result<Option<toml::Table>, String> {
    read_config(path).map(|f| f.map(|f| f.table))
}

/// A config file read and parsed: `None` when it does not exist. Messages
/// name `FILE:LINE` where the TOML parser gives a place.
fn read_config(path: &Path) -> Result<Option<ConfigFile>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => match text.parse::<toml::Table>() {
            Ok(table) => Ok(Some(ConfigFile {
                path: path.to_path_buf(),
                text,
                table,
            })),
            Err(e) => {
                let at = match e.span() {
                    Some(span) => format!("{}:{}", path.display(), line_at(&text, span.start)),
                    None => path.display().to_string(),
                };
                Err(format!(
                    "{at}: not valid TOML, ignored: {}; fix the file (see docs/usage.md, the config file)",
                    e.message().trim_end()
                ))
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {}, ignored", path.display(), crate::errtext::io(&e))),
    }
}

/// The line number (from 1) of byte offset `at` in `text`.
fn line_at(text: &str, at: usize) -> usize {
    1 + text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// The line (from 1) where top-level `key` is set in a config file's text:
/// `key = …` (bare or quoted), or a table `[key]` / `[key.…]`.
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let l = line.trim_start();
            let (l, table) = match l.strip_prefix('[') {
                Some(rest) => (rest.trim_start_matches('[').trim_start(), true),
                None => (l, false),
            };
            let rest = ['"', '\'']
                .iter()
                .find_map(|q| l.strip_prefix(*q)?.strip_prefix(key)?.strip_prefix(*q))
                .or_else(|| l.strip_prefix(key));
            rest.is_some_and(|r| {
                let r = r.trim_start();
                if table {
                    r.starts_with([']', '.'])
                } else {
                    r.starts_with(['=', '.'])
                }
            })
        })
        .map(|n| n + 1)
}

/// The number of one-character edits (insert, delete, replace, swap two
/// neighbours) from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, v) in d[0].iter_mut().enumerate() {
        *v = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The known key nearest to `unknown`, if it is near enough to be a slip
/// (a third of its length in edits, at least 2), or differs only in case,
/// `-` for `_`.
fn nearest_key<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    let folded = unknown.to_ascii_lowercase().replace('-', "_");
    if let Some(k) = known.iter().find(|k| **k == folded) {
        return Some(k);
    }
    let limit = (unknown.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(&folded, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Where a setting's value came from (shown by `doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env(&'static str),
    File(PathBuf),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag => write!(f, "command-line flag"),
            Origin::Env(v) => write!(f, "environment {v}"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Default => write!(f, "default"),
        }
    }
}

/// A value and its origin.
#[derive(Debug, Clone)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

macro_rules! choice {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
        pub enum $name { $($variant),+ }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!("expected one of: {}", [$($text),+].join(", "))),
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $($name::$variant => $text),+ })
            }
        }
    };
}

choice!(
    /// How bytes are cut into transcript lines.
    Framing { Message = "message", Raw = "raw" }
);
choice!(
    /// How much of each file's contents the transcript shows.
    DataMode { Head = "head", None = "none", Full = "full" }
);
choice!(
    /// Transcript format.
    Format { Text = "text", Jsonl = "jsonl" }
);
choice!(
    /// When to colour output.
    ColorWhen { Auto = "auto", Always = "always", Never = "never" }
);

/// Values given on the command line; `None` where the flag was absent.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub log_dir: Option<PathBuf>,
    pub real_scp: Option<PathBuf>,
    pub framing: Option<Framing>,
    pub data: Option<DataMode>,
    pub format: Option<Format>,
    pub timestamps: Option<bool>,
    pub color: Option<ColorWhen>,
    pub max_log_bytes: Option<u64>,
    pub keep: Option<u64>,
    pub keep_days: Option<u64>,
    pub splice: Option<bool>,
}

/// Every setting, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub log_dir: Setting<PathBuf>,
    /// `None` means: search PATH, then /usr/bin/scp.
    pub real_scp: Setting<Option<PathBuf>>,
    /// The sftp-server `replay` runs; `None` means: the usual install paths.
    pub sftp_server: Setting<Option<PathBuf>>,
    pub framing: Setting<Framing>,
    pub data: Setting<DataMode>,
    pub format: Setting<Format>,
    pub timestamps: Setting<bool>,
    pub color: Setting<ColorWhen>,
    /// Transcript size past which file data is no longer shown (0 = no cap).
    pub max_log_bytes: Setting<u64>,
    /// Keep at most this many transcripts in the log directory (0 = keep all).
    pub keep: Setting<u64>,
    /// Delete transcripts older than this many days (0 = keep all).
    pub keep_days: Setting<u64>,
    /// Move file data with splice(2) where possible (off: always read/write).
    pub splice: Setting<bool>,
    /// Whether the environment could name programs.
    pub env_policy: EnvPolicy,
    /// Program settings the environment tried to set and could not (each
    /// is also one of `warnings`).
    pub refused: Vec<Refused>,
    /// Problems met while loading (unreadable or invalid files, bad values).
    pub warnings: Vec<String>,
}

/// Where settings come from: config files, user's first, and which of them
/// is the system file (the one that may set [`ALLOW_ENV_PROGRAMS`]), and
/// the environment.
pub struct Sources<'a> {
    pub files: Vec<PathBuf>,
    pub system: Option<PathBuf>,
    pub env: &'a dyn Fn(&str) -> Option<OsString>,
}

/// A parsed config file.
struct ConfigFile {
    path: PathBuf,
    /// Its text, to name the line of a key in messages.
    text: String,
    table: toml::Table,
}

/// The config files that apply, user's first.
pub fn config_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        paths.push(PathBuf::from(x).join("scptrace/config.toml"));
    } else if let Some(h) = home_dir() {
        paths.push(h.join(".config/scptrace/config.toml"));
    }
    paths.push(PathBuf::from("/etc/scptrace/config.toml"));
    paths
}

/// The user-level config file (where `install` records the real scp).
pub fn user_config_path() -> Option<PathBuf> {
    config_paths()
        .into_iter()
        .next()
        .filter(|p| !p.starts_with("/etc"))
}

pub fn home_dir() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(h));
    }
    crate::passwd::lookup(nix::unistd::geteuid().as_raw())
        .map(|u| u.dir)
        .filter(|d| !d.as_os_str().is_empty())
}

/// The default log directory: `$XDG_STATE_HOME/scptrace`, else `~/.local/state/scptrace`.
pub fn default_log_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("scptrace");
    }
    home_dir()
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join(".local/state/scptrace")
}

struct Loader<'a> {
    files: Vec<ConfigFile>,
    /// Every key asked for so far: what the files may hold.
    known: Vec<&'static str>,
    env: &'a dyn Fn(&str) -> Option<OsString>,
    policy: EnvPolicy,
    refused: Vec<Refused>,
    warnings: Vec<String>,
}

impl ConfigFile {
    /// `FILE:LINE` of `key` in it (`FILE` alone when the line is not found).
    fn place(&self, key: &str) -> String {
        match key_line(&self.text, key) {
            Some(n) => format!("{}:{n}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }
}

impl<'a> Loader<'a> {
    /// Notes `key` as one the files may hold.
    fn know(&mut self, key: &'static str) {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
    }

    /// One warning for each key in a file that no setting reads (a slip
    /// like `max_log_byte` would otherwise be ignored without a word),
    /// naming the nearest known key. Called once every setting is picked.
    fn unknown_keys(&mut self) {
        for f in &self.files {
            // In the file's order.
            let mut unknown: Vec<(Option<usize>, &String)> = f
                .table
                .keys()
                .filter(|k| !self.known.contains(&k.as_str()))
                .map(|k| (key_line(&f.text, k), k))
                .collect();
            unknown.sort();
            for (_, key) in unknown {
                let hint = match nearest_key(key, &self.known) {
                    Some(k) => format!("did you mean \"{k}\"?"),
                    None => format!("known keys: {}", self.known.join(", ")),
                };
                self.warnings
                    .push(format!("{}: unknown key \"{key}\" ignored; {hint}", f.place(key)));
            }
        }
    }

    fn new(sources: &Sources<'a>) -> Loader<'a> {
        let mut files = Vec::new();
        let mut warnings = Vec::new();
        for path in &sources.files {
            match read_config(path) {
                Ok(Some(f)) => files.push(f),
                Ok(None) => {}
                Err(w) => warnings.push(w),
            }
        }
        let system = files
            .iter()
            .find(|f| sources.system.as_ref() == Some(&f.path))
            .map(|f| &f.table);
        let policy = EnvPolicy::from_parts(sources.env, system);
        for f in &files {
            if sources.system.as_ref() != Some(&f.path) && f.table.contains_key(ALLOW_ENV_PROGRAMS) {
                warnings.push(format!(
                    "{}: {ALLOW_ENV_PROGRAMS} is read only from {SYSTEM_CONFIG}; ignored here",
                    f.place(ALLOW_ENV_PROGRAMS)
                ));
            }
        }
        Loader {
            files,
            known: vec![ALLOW_ENV_PROGRAMS],
            env: sources.env,
            policy,
            refused: Vec::new(),
            warnings,
        }
    }

    /// Like [`Loader::pick`], for a setting that names a program to run: the
    /// environment is skipped (and the refusal noted) where [`EnvPolicy`]
    /// says so.
    fn pick_program<T: FromStr>(
        &mut self,
        key: &'static str,
        env: &'static str,
        flag: Option<T>,
        default: T,
    ) -> Setting<T>
    where
        T::Err: fmt::Display,
    {
        if flag.is_none()
            && let Some(v) = (self.env)(env).filter(|v| !v.is_empty())
            && let Some(reason) = self.policy.refusal()
        {
            let r = Refused {
                variable: env.to_string(),
                value: v.to_string_lossy().into_owned(),
                reason,
            };
            self.warnings.push(r.to_string());
            self.refused.push(r);
            return self.pick_files(key, default);
        }
        self.pick(key, env, flag, default)
    }

    /// Resolves one setting: flag, then `SCPTRACE_<NAME>`, then files, then default.
    fn pick<T: FromStr>(
        &mut self,
        key: &'static str,
        env: &'static str,
        flag: Option<T>,
        default: T,
    ) -> Setting<T>
    where
        T::Err: fmt::Display,
    {
        self.know(key);
        if let Some(value) = flag {
            return Setting {
                value,
                origin: Origin::Flag,
            };
        }
        if let Some(v) = (self.env)(env).filter(|v| !v.is_empty()) {
            let text = v.to_string_lossy();
            match text.parse::<T>() {
                Ok(value) => {
                    return Setting {
                        value,
                        origin: Origin::Env(env),
                    };
                }
                Err(e) => self.warnings.push(format!("{env}={text}: {e}; ignored")),
            }
        }
        self.pick_files(key, default)
    }

    /// The files' value for `key`, else `default`.
    fn pick_files<T: FromStr>(&mut self, key: &'static str, default: T) -> Setting<T>
    where
        T::Err: fmt::Display,
    {
        self.know(key);
        for file in &self.files {
            let Some(item) = file.table.get(key) else { continue };
            let text = match item {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => other.to_string(),
            };
            match text.parse::<T>() {
                Ok(value) => {
                    return Setting {
                        value,
                        origin: Origin::File(file.path.clone()),
                    };
                }
                Err(e) => self
                    .warnings
                    .push(format!("{}: {key} = {text}: {e}; ignored", file.place(key))),
            }
        }
        Setting {
            value: default,
            origin: Origin::Default,
        }
    }
}

/// A boolean that also accepts the usual words.
#[derive(Debug, Clone, Copy)]
struct Bool(bool);

impl FromStr for Bool {
    type Err = String;
    fn from_str(s: &str) -> Result<Bool, String> {
        match s.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Bool(true)),
            "0" | "false" | "no" | "off" => Ok(Bool(false)),
            _ => Err("expected true or false".into()),
        }
    }
}

/// A size (`--max-bytes`, `--max-log-bytes`, `max_log_bytes`): a count of
/// bytes, optionally with K, M, G or T (powers of 1024, also written KiB,
/// MiB…), or B.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected a number of bytes, like 200M or 2G"))?;
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(format!("`{s}`: unknown unit; use K, M, G or T")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("`{s}`: too large"))
}

/// A setting that is a size, read by [`parse_size`] (`max_log_bytes = "64M"`).
#[derive(Debug, Clone, Copy)]
struct ByteSize(u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<ByteSize, String> {
        parse_size(s).map(ByteSize)
    }
}

/// Default cap on one transcript's size: 64 MiB.
pub const DEFAULT_MAX_LOG_BYTES: u64 = 64 << 20;

impl Settings {
    /// Resolves every setting from `flags`, the environment and the standard files.
    pub fn load(flags: Flags) -> Settings {
        Settings::load_with(
            flags,
            &Sources {
                files: config_paths(),
                system: Some(PathBuf::from(SYSTEM_CONFIG)),
                env: &process_env,
            },
        )
    }

    /// From these files (none of them the system file) and this process's environment.
    pub fn load_from(flags: Flags, paths: &[PathBuf]) -> Settings {
        Settings::load_with(
            flags,
            &Sources {
                files: paths.to_vec(),
                system: None,
                env: &process_env,
            },
        )
    }

    pub fn load_with(flags: Flags, sources: &Sources) -> Settings {
        let mut l = Loader::new(sources);
        let log_dir = l.pick("log_dir", "SCPTRACE_LOG_DIR", flags.log_dir, default_log_dir());
        let real = l.pick_program("real_scp", "SCPTRACE_REAL_SCP", flags.real_scp, PathBuf::new());
        let real_scp = Setting {
            value: Some(real.value).filter(|p| !p.as_os_str().is_empty()),
            origin: real.origin,
        };
        let sftp = l.pick_program("sftp_server", "SCPTRACE_SFTP_SERVER", None, PathBuf::new());
        let sftp_server = Setting {
            value: Some(sftp.value).filter(|p| !p.as_os_str().is_empty()),
            origin: sftp.origin,
        };
        let framing = l.pick("framing", "SCPTRACE_FRAMING", flags.framing, Framing::Message);
        let data = l.pick("data", "SCPTRACE_DATA", flags.data, DataMode::Head);
        let format = l.pick("format", "SCPTRACE_FORMAT", flags.format, Format::Text);
        let ts = l.pick(
            "timestamps",
            "SCPTRACE_TIMESTAMPS",
            flags.timestamps.map(Bool),
            Bool(false),
        );
        let color = l.pick("color", "SCPTRACE_COLOR", flags.color, ColorWhen::Auto);
        let max_log_bytes = l.pick(
            "max_log_bytes",
            "SCPTRACE_MAX_LOG_BYTES",
            flags.max_log_bytes.map(ByteSize),
            ByteSize(DEFAULT_MAX_LOG_BYTES),
        );
        let keep = l.pick("keep", "SCPTRACE_KEEP", flags.keep, 0);
        let keep_days = l.pick("keep_days", "SCPTRACE_KEEP_DAYS", flags.keep_days, 0);
        let splice = l.pick("splice", "SCPTRACE_SPLICE", flags.splice.map(Bool), Bool(true));
        l.unknown_keys();
        Settings {
            log_dir,
            real_scp,
            sftp_server,
            framing,
            data,
            format,
            timestamps: Setting {
                value: ts.value.0,
                origin: ts.origin,
            },
            color,
            max_log_bytes: Setting {
                value: max_log_bytes.value.0,
                origin: max_log_bytes.origin,
            },
            keep,
            keep_days,
            splice: Setting {
                value: splice.value.0,
                origin: splice.origin,
            },
            env_policy: l.policy,
            refused: l.refused,
            warnings: l.warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_flag_env_file_default() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user.toml");
        let system = dir.path().join("system.toml");
        std::fs::write(&user, "data = \"none\"\n").unwrap();
        std::fs::write(&system, "data = \"full\"\nframing = \"raw\"\nkeep = 5\n").unwrap();
        let s = Settings::load_from(Flags::default(), &[user.clone(), system.clone()]);
        assert_eq!(s.data.value, DataMode::None);
        assert_eq!(s.data.origin, Origin::File(user.clone()));
        assert_eq!(s.framing.value, Framing::Raw);
        assert_eq!(s.keep.value, 5);
        assert_eq!(s.format.origin, Origin::Default);
        let flags = Flags {
            data: Some(DataMode::Full),
            ..Flags::default()
        };
        let s = Settings::load_from(flags, &[user, system]);
        assert_eq!((s.data.value, s.data.origin), (DataMode::Full, Origin::Flag));
    }

    #[test]
    fn unknown_keys_are_named_once_with_the_nearest_known_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "# c\nmax_log_byte = 0\n\"Data\" = \"none\"\n[colour]\nx = 1\nkeep = 3\nallow_env_programs = true\n",
        )
        .unwrap();
        let s = Settings::load_from(Flags::default(), std::slice::from_ref(&f));
        let p = f.display();
        let unknown: Vec<&String> = s.warnings.iter().filter(|w| w.contains("unknown key")).collect();
        assert_eq!(
            unknown,
            [
                &format!("{p}:2: unknown key \"max_log_byte\" ignored; did you mean \"max_log_bytes\"?"),
                &format!("{p}:3: unknown key \"Data\" ignored; did you mean \"data\"?"),
                &format!("{p}:4: unknown key \"colour\" ignored; did you mean \"color\"?"),
            ]
        );
        // Known keys, and keys inside a table, are no one's business here.
        assert_eq!(s.keep.value, 0, "keep is inside [colour]");
        // A flag for a key does not make the key unknown.
        let s = Settings::load_from(
            Flags {
                max_log_bytes: Some(1),
                ..Flags::default()
            },
            &[f],
        );
        assert!(
            s.warnings
                .iter()
                .all(|w| !w.contains("\"max_log_bytes\" ignored"))
        );
    }

    #[test]
    fn nearest_keys_and_lines() {
        let known = ["data", "keep", "keep_days", "max_log_bytes", "color"];
        assert_eq!(nearest_key("max-log-bytes", &known), Some("max_log_bytes"));
        assert_eq!(nearest_key("keep_day", &known), Some("keep_days"));
        assert_eq!(nearest_key("dtaa", &known), Some("data"));
        assert_eq!(nearest_key("frobnicate", &known), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let text = "a = 1\n  'b' = 2\n[[c]]\nd.e = 3\nbb = 4\n";
        assert_eq!(key_line(text, "a"), Some(1));
        assert_eq!(key_line(text, "b"), Some(2));
        assert_eq!(key_line(text, "c"), Some(3));
        assert_eq!(key_line(text, "d"), Some(4));
        assert_eq!(key_line(text, "bb"), Some(5));
        assert_eq!(key_line(text, "x"), None);
        assert_eq!(line_at("a\nb\nc", 4), 3);
    }

    #[test]
    fn sizes_in_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "max_log_bytes = \"16M\"\n").unwrap();
        let s = Settings::load_from(Flags::default(), std::slice::from_ref(&f));
        assert_eq!(s.max_log_bytes.value, 16 << 20);
        std::fs::write(&f, "max_log_bytes = 4096\n").unwrap();
        let s = Settings::load_from(Flags::default(), std::slice::from_ref(&f));
        assert_eq!(s.max_log_bytes.value, 4096);
        std::fs::write(&f, "max_log_bytes = \"lots\"\n").unwrap();
        let s = Settings::load_from(Flags::default(), std::slice::from_ref(&f));
        assert_eq!(s.max_log_bytes.value, DEFAULT_MAX_LOG_BYTES);
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].starts_with(&format!("{}:1: max_log_bytes = lots", f.display())));
    }

    #[test]
    fn bad_file_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "data = [").unwrap();
        let s = Settings::load_from(Flags::default(), &[bad]);
        assert_eq!(s.warnings.len(), 1);
        assert_eq!(s.data.value, DataMode::Head);
    }

    /// An environment of `pairs` only.
    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    fn load(dir: &Path, user: &str, system: &str, env: &'static [(&'static str, &'static str)]) -> Settings {
        let (u, s) = (dir.join("user.toml"), dir.join("system.toml"));
        std::fs::write(&u, user).unwrap();
        std::fs::write(&s, system).unwrap();
        let env = env_of(env);
        Settings::load_with(
            Flags::default(),
            &Sources {
                files: vec![u, s.clone()],
                system: Some(s),
                env: &env,
            },
        )
    }

    const EVIL: (&str, &str) = ("SCPTRACE_REAL_SCP", "/backup/evil");
    const DATA: (&str, &str) = ("SCPTRACE_DATA", "none");

    #[test]
    fn in_an_ssh_session_the_environment_names_no_program() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user.toml");
        for session in ["SSH_CONNECTION", "SSH_ORIGINAL_COMMAND"] {
            let env: &'static [(&str, &str)] = match session {
                "SSH_CONNECTION" => &[("SSH_CONNECTION", "10.0.0.1 5 10.0.0.2 22"), EVIL, DATA],
                _ => &[("SSH_ORIGINAL_COMMAND", ""), EVIL, DATA],
            };
            let s = load(dir.path(), "real_scp = \"/usr/bin/scp\"\n", "", env);
            assert_eq!(
                s.real_scp.value.as_deref(),
                Some(Path::new("/usr/bin/scp")),
                "{session}"
            );
            assert_eq!(s.real_scp.origin, Origin::File(user.clone()));
            assert_eq!(s.env_policy.ssh_session, Some(session));
            assert_eq!(s.refused.len(), 1);
            assert_eq!(s.refused[0].variable, "SCPTRACE_REAL_SCP");
            assert_eq!(s.refused[0].value, "/backup/evil");
            assert!(s.refused[0].reason.contains(session), "{}", s.refused[0].reason);
            assert!(s.refused[0].reason.contains(ALLOW_ENV_PROGRAMS));
            assert_eq!(s.warnings, [s.refused[0].to_string()]);
            // A setting that names no program still comes from the environment.
            assert_eq!(
                (s.data.value, s.data.origin),
                (DataMode::None, Origin::Env("SCPTRACE_DATA"))
            );
        }
        // Refused and no file sets it: the default (search PATH).
        let s = load(dir.path(), "", "", &[("SSH_CONNECTION", "x"), EVIL]);
        assert_eq!((s.real_scp.value, s.real_scp.origin), (None, Origin::Default));
    }

    #[test]
    fn the_sftp_server_replay_runs_is_a_program_setting_too() {
        let dir = tempfile::tempdir().unwrap();
        const SFTP: (&str, &str) = ("SCPTRACE_SFTP_SERVER", "/backup/evil");
        let file = "sftp_server = \"/opt/sftp-server\"\n";
        let s = load(dir.path(), file, "", &[("SSH_CONNECTION", "x"), SFTP]);
        assert_eq!(
            s.sftp_server.value.as_deref(),
            Some(Path::new("/opt/sftp-server"))
        );
        assert_eq!(s.refused.len(), 1);
        assert_eq!(s.refused[0].variable, "SCPTRACE_SFTP_SERVER");
        assert!(
            !s.warnings.iter().any(|w| w.contains("unknown key")),
            "{:?}",
            s.warnings
        );
        let s = load(dir.path(), "", "", &[SFTP]);
        assert_eq!(s.sftp_server.value.as_deref(), Some(Path::new("/backup/evil")));
        let s = load(dir.path(), "", "", &[]);
        assert_eq!(
            (s.sftp_server.value, s.sftp_server.origin),
            (None, Origin::Default)
        );
    }

    #[test]
    fn outside_an_ssh_session_or_when_the_system_file_allows_it_the_environment_may() {
        let dir = tempfile::tempdir().unwrap();
        let s = load(dir.path(), "real_scp = \"/usr/bin/scp\"\n", "", &[EVIL]);
        assert_eq!(s.real_scp.value.as_deref(), Some(Path::new("/backup/evil")));
        assert_eq!(s.real_scp.origin, Origin::Env("SCPTRACE_REAL_SCP"));
        assert!(s.refused.is_empty() && s.env_policy.ssh_session.is_none());

        for allow in ["allow_env_programs = true\n", "allow_env_programs = \"yes\"\n"] {
            let s = load(dir.path(), "", allow, &[("SSH_CONNECTION", "x"), EVIL]);
            assert!(s.env_policy.allow_env_programs, "{allow}");
            assert_eq!(s.real_scp.origin, Origin::Env("SCPTRACE_REAL_SCP"));
            assert!(s.refused.is_empty());
        }
        let s = load(
            dir.path(),
            "",
            "allow_env_programs = false\n",
            &[("SSH_CONNECTION", "x"), EVIL],
        );
        assert_eq!(s.refused.len(), 1);
    }

    #[test]
    fn only_the_system_file_may_allow_env_programs() {
        let dir = tempfile::tempdir().unwrap();
        let s = load(
            dir.path(),
            "allow_env_programs = true\n",
            "",
            &[("SSH_CONNECTION", "x"), EVIL],
        );
        assert!(!s.env_policy.allow_env_programs);
        assert_eq!(s.refused.len(), 1);
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("read only from /etc/scptrace/config.toml")),
            "{:?}",
            s.warnings
        );
        // Nor an environment variable of that name.
        let s = load(
            dir.path(),
            "",
            "",
            &[
                ("SSH_CONNECTION", "x"),
                ("SCPTRACE_ALLOW_ENV_PROGRAMS", "true"),
                EVIL,
            ],
        );
        assert_eq!(s.refused.len(), 1);
        // A flag is no environment: it always counts.
        let env = env_of(&[("SSH_CONNECTION", "x"), EVIL]);
        let s = Settings::load_with(
            Flags {
                real_scp: Some("/opt/scp".into()),
                ..Flags::default()
            },
            &Sources {
                files: Vec::new(),
                system: None,
                env: &env,
            },
        );
        assert_eq!(s.real_scp.origin, Origin::Flag);
        assert!(s.refused.is_empty());
    }
}
