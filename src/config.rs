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
    match std::fs::read_to_string(path) {
        Ok(text) => text.parse::<toml::Table>().map(Some).map_err(|e| {
            format!(
                "config {}: not valid TOML, ignored: {}",
                path.display(),
                e.message()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("config {}: {e}, ignored", path.display())),
    }
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
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.dir)
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
    env: &'a dyn Fn(&str) -> Option<OsString>,
    policy: EnvPolicy,
    refused: Vec<Refused>,
    warnings: Vec<String>,
}

impl<'a> Loader<'a> {
    fn new(sources: &Sources<'a>) -> Loader<'a> {
        let mut files = Vec::new();
        let mut warnings = Vec::new();
        for path in &sources.files {
            match read_table(path) {
                Ok(Some(table)) => files.push(ConfigFile {
                    path: path.clone(),
                    table,
                }),
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
                    "config {}: {ALLOW_ENV_PROGRAMS} is read only from {SYSTEM_CONFIG}; ignored here",
                    f.path.display()
                ));
            }
        }
        Loader {
            files,
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
        key: &str,
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
    fn pick<T: FromStr>(&mut self, key: &str, env: &'static str, flag: Option<T>, default: T) -> Setting<T>
    where
        T::Err: fmt::Display,
    {
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
    fn pick_files<T: FromStr>(&mut self, key: &str, default: T) -> Setting<T>
    where
        T::Err: fmt::Display,
    {
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
                Err(e) => self.warnings.push(format!(
                    "config {}: {key} = {text}: {e}; ignored",
                    file.path.display()
                )),
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
            flags.max_log_bytes,
            DEFAULT_MAX_LOG_BYTES,
        );
        let keep = l.pick("keep", "SCPTRACE_KEEP", flags.keep, 0);
        let keep_days = l.pick("keep_days", "SCPTRACE_KEEP_DAYS", flags.keep_days, 0);
        let splice = l.pick("splice", "SCPTRACE_SPLICE", flags.splice.map(Bool), Bool(true));
        Settings {
            log_dir,
            real_scp,
            framing,
            data,
            format,
            timestamps: Setting {
                value: ts.value.0,
                origin: ts.origin,
            },
            color,
            max_log_bytes,
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
