//! Settings from flags, environment, config files and defaults, in that order
//! of precedence (design §1), each remembering where it came from.
//!
//! A stand-in cannot take flags, so every option also has an environment
//! variable `SCPTRACE_<NAME>` and a key in `config.toml`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

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
    /// Problems met while loading (unreadable or invalid files, bad values).
    pub warnings: Vec<String>,
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

struct Loader {
    files: Vec<ConfigFile>,
    warnings: Vec<String>,
}

impl Loader {
    fn new(paths: &[PathBuf]) -> Loader {
        let mut files = Vec::new();
        let mut warnings = Vec::new();
        for path in paths {
            match std::fs::read_to_string(path) {
                Ok(text) => match text.parse::<toml::Table>() {
                    Ok(table) => files.push(ConfigFile {
                        path: path.clone(),
                        table,
                    }),
                    Err(e) => warnings.push(format!(
                        "config {}: not valid TOML, ignored: {}",
                        path.display(),
                        e.message()
                    )),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warnings.push(format!("config {}: {e}, ignored", path.display())),
            }
        }
        Loader { files, warnings }
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
        if let Some(v) = std::env::var_os(env).filter(|v| !v.is_empty()) {
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
        Settings::load_from(flags, &config_paths())
    }

    pub fn load_from(flags: Flags, paths: &[PathBuf]) -> Settings {
        let mut l = Loader::new(paths);
        let log_dir = l.pick("log_dir", "SCPTRACE_LOG_DIR", flags.log_dir, default_log_dir());
        let real = l.pick("real_scp", "SCPTRACE_REAL_SCP", flags.real_scp, PathBuf::new());
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
}
