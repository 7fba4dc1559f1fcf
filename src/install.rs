//! `scptrace install`, `uninstall` and `doctor` (design §6): put the `scp`
//! stand-in in place on this machine, take away exactly what was put, and
//! explain what a non-interactive ssh session here will run as `scp`.
//!
//! Every change `install` makes is written down in `installed.toml` next to
//! the config file it used (see `state.rs`) before the next change is made, so
//! an interrupted install can still be undone.

mod conffile;
mod doctor;
mod keys;
mod sshd_path;
mod state;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use crate::config::{self, Flags, Settings};
use crate::escape;
use crate::standin;
use crate::transcript::shell_quote;
use crate::utc::Utc;

pub use doctor::{DoctorArgs, doctor};
use state::{State, Step};

/// The config key install sets.
const REAL_SCP_KEY: &str = "real_scp";
/// Where system-wide installs record their config and state.
const SYSTEM_DIR: &str = "/etc/scptrace";

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

/// A config file and the install record next to it.
#[derive(Debug, Clone)]
struct Scope {
    name: &'static str,
    config: PathBuf,
    state: PathBuf,
    /// Mode for files install creates there.
    mode: u32,
}

impl Scope {
    fn system() -> Scope {
        Scope {
            name: "system",
            config: Path::new(SYSTEM_DIR).join("config.toml"),
            state: Path::new(SYSTEM_DIR).join("installed.toml"),
            mode: 0o644,
        }
    }

    fn user() -> Result<Scope> {
        let config = config::user_config_path()
            .ok_or_else(|| anyhow!("no user config directory: set HOME or XDG_CONFIG_HOME"))?;
        let state = config.with_file_name("installed.toml");
        Ok(Scope {
            name: "user",
            config,
            state,
            mode: 0o600,
        })
    }

    /// The scopes `uninstall` undoes: the one asked for, else the user's and,
    /// for root, the system's.
    fn for_uninstall(args: &ScopeArgs) -> Vec<Scope> {
        let root = nix::unistd::geteuid().is_root();
        let mut out = Vec::new();
        if !args.system
            && let Ok(u) = Scope::user()
        {
            out.push(u);
        }
        if args.system || (!args.user && root) {
            out.push(Scope::system());
        }
        out
    }

    /// Every scope (`doctor` reports each record it finds).
    fn all() -> Vec<Scope> {
        Scope::user().into_iter().chain([Scope::system()]).collect()
    }
}

/// This program, with every symlink resolved: what the link points to.
fn this_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot tell where this scptrace binary is")?;
    std::fs::canonicalize(&exe).with_context(|| format!("cannot resolve {}", exe.display()))
}

/// (device, inode), following symlinks.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn same_file(a: &Path, b: &Path) -> bool {
    identity(a).is_some() && identity(a) == identity(b)
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

fn writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

fn user_name() -> String {
    let uid = nix::unistd::geteuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

fn now() -> String {
    Utc::now().rfc3339()
}

/// Writes `bytes` to `path` through a temp file renamed over it, so readers
/// (sshd, a running stand-in) see the old or the new file, never half of one.
/// Keeps an existing file's mode and owner; a new file gets `mode`.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let old = std::fs::metadata(path).ok();
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or(OsStr::new("file")).to_string_lossy();
    let tmp = dir.join(format!(".{name}.scptrace-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        let perm = old.as_ref().map_or(mode, |m| m.mode() & 0o7777);
        f.set_permissions(std::fs::Permissions::from_mode(perm))?;
        if let Some(m) = &old
            && (m.uid() != nix::unistd::geteuid().as_raw() || m.gid() != nix::unistd::getegid().as_raw())
        {
            // Root editing someone else's file: it stays theirs (sshd's StrictModes cares).
            std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// What is at the place of the link.
enum AtLink {
    Absent,
    /// Already a link to this binary.
    Ours,
    /// Something else: what, in words.
    Foreign(String),
}

fn at_link(link: &Path, exe: &Path) -> AtLink {
    match std::fs::symlink_metadata(link) {
        Err(_) => AtLink::Absent,
        Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(link) {
            Ok(_) if same_file(link, exe) => AtLink::Ours,
            Ok(t) => AtLink::Foreign(format!("a symlink to {}", t.display())),
            Err(e) => AtLink::Foreign(format!("an unreadable symlink ({e})")),
        },
        Ok(m) if m.is_file() && same_file(link, exe) => AtLink::Ours,
        Ok(m) if m.is_file() => AtLink::Foreign("a regular file (a real scp?)".into()),
        Ok(_) => AtLink::Foreign("not a regular file".into()),
    }
}

/// The directories of a PATH value, each resolved (for comparing).
fn path_dirs(path: &str) -> Vec<PathBuf> {
    std::env::split_paths(OsStr::new(path)).collect()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || same_file(a, b)
}

/// Whether `dir` comes before the real scp's directory on `path`.
fn precedes(path: &str, dir: &Path, real_dir: &Path) -> bool {
    for d in path_dirs(path) {
        if same_dir(&d, dir) {
            return true;
        }
        if same_dir(&d, real_dir) {
            return false;
        }
    }
    false
}

/// The default link directory: /usr/local/bin when it comes before the real
/// scp's directory on the session PATH (it is on every user's default PATH),
/// else the first writable directory that does.
fn default_dir(session: &sshd_path::SessionPath, real: &Path) -> Result<PathBuf> {
    let real_dir = real.parent().unwrap_or(Path::new("/"));
    let before: Vec<PathBuf> = path_dirs(&session.value)
        .into_iter()
        .take_while(|d| !same_dir(d, real_dir))
        .filter(|d| d.is_dir())
        .collect();
    let usable = |d: &PathBuf| writable(d);
    if let Some(d) = before
        .iter()
        .find(|d| *d == Path::new("/usr/local/bin"))
        .filter(|d| usable(d))
    {
        return Ok(d.clone());
    }
    if let Some(d) = before.iter().find(|d| usable(d)) {
        return Ok(d.clone());
    }
    bail!(
        "no directory that you can write comes before {} on the PATH sshd gives your sessions\n  \
         PATH={} ({})\n\
         hint: as root, `scptrace install` links /usr/local/bin/scp;\n\
         hint: without root, `scptrace install --authorized-key SHA256:…` forces scptrace on one key,\n\
         hint: or `scptrace install --dir ~/bin` plus `PATH=$HOME/bin:$PATH` at the top of ~/.bashrc\n\
         (see docs/deploying.md)",
        real_dir.display(),
        session.value,
        session.source
    )
}

/// How to name this binary in a command run over ssh: its bare name when the
/// session PATH finds it, else its absolute path.
fn invocation_name(exe: &Path, session_path: &str) -> String {
    let found = path_dirs(session_path)
        .iter()
        .map(|d| d.join("scptrace"))
        .find(|p| is_executable_file(p));
    match found {
        Some(p) if same_file(&p, exe) => "scptrace".into(),
        _ => shell_quote(exe.as_os_str().as_bytes()),
    }
}

pub fn run(args: InstallArgs) -> Result<i32> {
    let exe = this_exe()?;
    if let Some(key) = &args.authorized_key {
        return install_key(&exe, key, args.authorized_keys.as_deref(), &args.scope);
    }
    install_link(&exe, &args)
}

/// Validates `--real`: an absolute path to an executable that is not scptrace.
fn check_real(real: &Path, exe: &Path) -> Result<PathBuf> {
    if !real.is_absolute() {
        bail!("--real {}: give an absolute path", real.display());
    }
    if !is_executable_file(real) {
        bail!("--real {}: not an executable file", real.display());
    }
    if same_file(real, exe) {
        bail!(
            "--real {}: that is scptrace itself, not the real scp",
            real.display()
        );
    }
    Ok(real.to_path_buf())
}

fn install_link(exe: &Path, args: &InstallArgs) -> Result<i32> {
    let root = nix::unistd::geteuid().is_root();
    let home = config::home_dir();
    let session = sshd_path::guess(&user_name(), root, home.as_deref());
    let settings = Settings::load(Flags::default());
    let real = match &args.real {
        Some(r) => check_real(r, exe)?,
        None => standin::find_real_scp_in(&settings, Some(OsStr::new(&session.value)))?.path,
    };
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => default_dir(&session, &real)?,
    };
    let dir = std::fs::canonicalize(&dir).with_context(|| format!("--dir {}", dir.display()))?;
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let link = dir.join("scp");
    let under_home = home
        .as_ref()
        .and_then(|h| std::fs::canonicalize(h).ok())
        .is_some_and(|h| dir.starts_with(h));
    let scope = if args.scope.system || (!args.scope.user && root && !under_home) {
        Scope::system()
    } else {
        Scope::user()?
    };

    // Check everything before changing anything.
    let at = at_link(&link, exe);
    if let AtLink::Foreign(what) = &at {
        bail!(
            "{} already exists and is {what}; install replaces only what it created.\n\
             hint: remove it yourself if it is a leftover, or choose another directory with --dir",
            link.display()
        );
    }
    if matches!(at, AtLink::Absent) && !writable(&dir) {
        bail!(
            "cannot create {}: {} is not writable by you",
            link.display(),
            dir.display()
        );
    }
    let config_text = match std::fs::read_to_string(&scope.config) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", scope.config.display())),
    };
    let real_str = real
        .to_str()
        .ok_or_else(|| anyhow!("{}: the real scp's path is not UTF-8", real.display()))?;
    let (new_config, previous) = conffile::set(config_text.as_deref().unwrap_or(""), REAL_SCP_KEY, real_str)
        .map_err(|e| anyhow!("config {}: {e}", scope.config.display()))?;
    let mut state = State::load(&scope.state)?;

    println!("scptrace install ({} scope):", scope.name);
    // The config first: the stand-in is never live without it.
    let current = config_text
        .as_deref()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get(REAL_SCP_KEY).and_then(|v| v.as_str().map(str::to_string)));
    if current.as_deref() == Some(real_str) {
        println!(
            "  kept    {} = {:?} in {} (already set)",
            REAL_SCP_KEY,
            real_str,
            scope.config.display()
        );
    } else {
        if let Some(parent) = scope.config.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        write_atomic(&scope.config, new_config.as_bytes(), 0o644)?;
        state.steps.push(Step::ConfigKey {
            file: scope.config.clone(),
            key: REAL_SCP_KEY.into(),
            line: conffile::key_line(REAL_SCP_KEY, real_str),
            previous: previous.clone(),
            created: config_text.is_none(),
            at: now(),
        });
        state.save(&scope.state, scope.mode)?;
        println!(
            "  set     {} in {} (was: {})",
            conffile::key_line(REAL_SCP_KEY, real_str),
            scope.config.display(),
            previous.as_deref().unwrap_or("unset")
        );
    }
    match at {
        AtLink::Ours => println!(
            "  kept    {} -> {} (already in place)",
            link.display(),
            exe.display()
        ),
        _ => {
            std::os::unix::fs::symlink(exe, &link)
                .with_context(|| format!("cannot create the link {}", link.display()))?;
            state.steps.push(Step::Link {
                path: link.clone(),
                target: exe.to_path_buf(),
                at: now(),
            });
            state.save(&scope.state, scope.mode)?;
            println!("  linked  {} -> {}", link.display(), exe.display());
        }
    }
    println!(
        "  record  {} (`scptrace uninstall` undoes what is listed there)",
        scope.state.display()
    );
    println!();

    let real_dir = real.parent().unwrap_or(Path::new("/"));
    println!(
        "PATH of a non-interactive ssh session here (best guess, from {}):\n  {}",
        session.source, session.value
    );
    if precedes(&session.value, &dir, real_dir) {
        println!(
            "{} comes before {} there, so `scp` started by sshd is now scptrace, which runs {} and traces\n\
             legacy scp server transfers into each user's log directory (log_dir, default ~/.local/state/scptrace).",
            dir.display(),
            real_dir.display(),
            real.display()
        );
    } else {
        println!(
            "warning: {} does not come before {} on that PATH: sessions still run the real scp.\n\
             hint: put it first with `SetEnv PATH={}:…` in sshd_config, or `PATH={}:$PATH` at the top\n\
             of ~/.bashrc (Debian's bash reads it for ssh commands); see docs/deploying.md",
            dir.display(),
            real_dir.display(),
            dir.display(),
            dir.display()
        );
    }
    let me = invocation_name(exe, &session.value);
    println!("\nCheck from a client (the session's own PATH decides):");
    println!("  ssh HOST {me} doctor");
    println!(
        "  ssh HOST command -v scp        # should print {}",
        link.display()
    );
    println!(
        "OpenSSH 9.0 and later scp uses SFTP unless given -O: trace with `scp -O …` (other clients use legacy SCP)."
    );
    Ok(0)
}

/// Reads a `--authorized-key` argument: a fingerprint, a key line, or a .pub file.
fn key_spec(text: &str) -> Result<keys::KeySpec> {
    let p = Path::new(text);
    if !text.starts_with("SHA256:") && !text.contains(' ') && p.is_file() {
        let content = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let line = content
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| anyhow!("{}: no key in it", p.display()))?;
        return keys::KeySpec::parse(line).map_err(|e| anyhow!("{}: {e}", p.display()));
    }
    Ok(keys::KeySpec::parse(text)?)
}

fn install_key(exe: &Path, key: &str, file: Option<&Path>, scope_args: &ScopeArgs) -> Result<i32> {
    let spec = key_spec(key)?;
    let file = match file {
        Some(f) => f.to_path_buf(),
        None => config::home_dir()
            .ok_or_else(|| anyhow!("no home directory: give --authorized-keys FILE"))?
            .join(".ssh/authorized_keys"),
    };
    // Edit the file itself when authorized_keys is a symlink.
    let file = std::fs::canonicalize(&file).with_context(|| format!("{}", file.display()))?;
    let content = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let command = format!("{} forced", shell_quote(exe.as_os_str().as_bytes()));
    let option = keys::command_option(&command);
    let (new, edit) = match keys::add_command(&content, &spec, &option) {
        Ok(x) => x,
        Err(keys::KeyError::HasCommand { line, option: o })
            if o.contains("scptrace") && o.contains("forced") =>
        {
            println!(
                "scptrace install: {}, line {line}: that key already runs scptrace forced ({o}); nothing to do",
                file.display()
            );
            return Ok(0);
        }
        Err(e) => bail!("{}: {e}", file.display()),
    };
    let scope = if scope_args.system {
        Scope::system()
    } else {
        Scope::user()?
    };
    let mut state = State::load(&scope.state)?;

    let mode = std::fs::metadata(&file)?.mode() & 0o7777;
    let name = file
        .file_name()
        .unwrap_or(OsStr::new("authorized_keys"))
        .to_string_lossy();
    let backup = file.with_file_name(format!("{name}.scptrace-backup-{}", Utc::now().compact()));
    let mut b = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&backup)
        .with_context(|| format!("cannot create the backup {}", backup.display()))?;
    b.write_all(&content)
        .and_then(|()| b.sync_all())
        .with_context(|| format!("cannot write the backup {}", backup.display()))?;
    write_atomic(&file, &new, mode)?;
    state.steps.push(Step::AuthorizedKey {
        file: file.clone(),
        backup: backup.clone(),
        line_before: escape::escape(&edit.before),
        line_after: escape::escape(&edit.after),
        at: now(),
    });
    state.save(&scope.state, scope.mode)?;

    println!("scptrace install:");
    println!("  edited  {}, line {} ({spec}):", file.display(), edit.line);
    println!("          it now starts with {option}");
    println!("  backup  {}", backup.display());
    println!(
        "  record  {} (`scptrace uninstall` restores the line byte for byte)",
        scope.state.display()
    );
    println!(
        "\nSessions that log in with this key now run `scptrace forced`: legacy scp server commands\n\
         (scp -t/-f) are traced into the log directory; a shell, other commands and sftp run as before."
    );
    println!("Check from a client, logging in with that key:");
    println!("  ssh -i KEY HOST scptrace doctor      # says the session came through scptrace forced");
    println!(
        "OpenSSH 9.0 and later scp uses SFTP unless given -O: trace with `scp -O …` (other clients use legacy SCP)."
    );
    Ok(0)
}

/// What happened to one step on uninstall.
enum Undo {
    Done(String),
    /// Changed since install: left alone, dropped from the record.
    Left(String),
}

fn undo(step: &Step) -> Result<Undo> {
    match step {
        Step::Link { path, target, .. } => {
            let Ok(m) = std::fs::symlink_metadata(path) else {
                return Ok(Undo::Done(format!("link {} was already gone", path.display())));
            };
            let ours = m.file_type().is_symlink() && std::fs::read_link(path).is_ok_and(|t| t == *target);
            if !ours {
                return Ok(Undo::Left(format!(
                    "{} is no longer the link to {} that install made; left as is",
                    path.display(),
                    target.display()
                )));
            }
            std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
            Ok(Undo::Done(format!("removed link {}", path.display())))
        }
        Step::ConfigKey {
            file,
            key,
            line,
            previous,
            created,
            ..
        } => {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Undo::Left(format!(
                        "{} is gone; nothing to restore",
                        file.display()
                    )));
                }
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
            };
            let out = match conffile::restore(&text, key, line, previous.as_deref()) {
                Ok(o) => o,
                Err(e) => {
                    return Ok(Undo::Left(format!(
                        "{key} in {}: {e}; left as is",
                        file.display()
                    )));
                }
            };
            if *created && out.trim().is_empty() {
                std::fs::remove_file(file).with_context(|| format!("cannot remove {}", file.display()))?;
                return Ok(Undo::Done(format!(
                    "removed {} (install created it)",
                    file.display()
                )));
            }
            write_atomic(file, out.as_bytes(), 0o644)?;
            Ok(Undo::Done(match previous {
                Some(p) => format!("restored `{p}` in {}", file.display()),
                None => format!("removed {key} from {}", file.display()),
            }))
        }
        Step::AuthorizedKey {
            file,
            backup,
            line_before,
            line_after,
            ..
        } => {
            let edit = keys::LineEdit {
                line: 0,
                before: escape::unescape(line_before.as_bytes())
                    .map_err(|e| anyhow!("install record: line_before: {e}"))?,
                after: escape::unescape(line_after.as_bytes())
                    .map_err(|e| anyhow!("install record: line_after: {e}"))?,
            };
            let content = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let Some(out) = keys::restore(&content, &edit) else {
                return Ok(Undo::Left(format!(
                    "{}: the line install changed is no longer there as install left it; left as is \
                     (the original file is in {})",
                    file.display(),
                    backup.display()
                )));
            };
            let mode = std::fs::metadata(file)?.mode() & 0o7777;
            write_atomic(file, &out, mode)?;
            let mut msg = format!("restored the key line in {}", file.display());
            // The backup is install's too: remove it once it is no longer needed.
            if std::fs::read(backup).is_ok_and(|b| b == out) {
                std::fs::remove_file(backup)
                    .with_context(|| format!("cannot remove {}", backup.display()))?;
                msg.push_str(&format!("; removed the backup {}", backup.display()));
            } else if backup.exists() {
                msg.push_str(&format!(
                    "; kept the backup {} (the file changed since)",
                    backup.display()
                ));
            }
            Ok(Undo::Done(msg))
        }
    }
}

pub fn uninstall(args: UninstallArgs) -> Result<i32> {
    let mut found = false;
    let mut failed = 0;
    for scope in Scope::for_uninstall(&args.scope) {
        if !scope.state.exists() {
            continue;
        }
        found = true;
        let mut state = State::load(&scope.state)?;
        println!("scptrace uninstall: {}", scope.state.display());
        let mut keep = Vec::new();
        while let Some(step) = state.steps.pop() {
            match undo(&step) {
                Ok(Undo::Done(msg)) => println!("  undone  {msg}"),
                Ok(Undo::Left(msg)) => println!("  skipped {msg}"),
                Err(e) => {
                    println!("  FAILED  {}: {e:#}", step.describe());
                    failed += 1;
                    keep.push(step);
                }
            }
        }
        keep.reverse();
        state.steps = keep;
        state.save(&scope.state, scope.mode)?;
        if state.steps.is_empty() {
            println!("  removed {}", scope.state.display());
            // The scptrace config directory, when nothing else is left in it.
            if let Some(dir) = scope.state.parent()
                && dir.file_name() == Some(OsStr::new("scptrace"))
                && std::fs::remove_dir(dir).is_ok()
            {
                println!("  removed {} (empty)", dir.display());
            }
        } else {
            println!(
                "  kept    {} with the {} step(s) that failed; fix the cause and run uninstall again",
                scope.state.display(),
                state.steps.len()
            );
        }
    }
    if !found {
        let places: Vec<String> = Scope::for_uninstall(&args.scope)
            .iter()
            .map(|s| s.state.display().to_string())
            .collect();
        println!(
            "scptrace uninstall: nothing to undo (no install record at {})",
            places.join(" or ")
        );
    }
    Ok(i32::from(failed > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dir_is_a_writable_dir_before_the_real_scps() {
        let t = tempfile::tempdir().unwrap();
        let d = |n: &str| t.path().join(n);
        for n in ["a", "b", "real"] {
            std::fs::create_dir(d(n)).unwrap();
        }
        let real = d("real/scp");
        std::fs::write(&real, "").unwrap();
        let session = |dirs: &[&str]| sshd_path::SessionPath {
            value: dirs
                .iter()
                .map(|n| d(n).display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
            source: "test".into(),
        };
        let p = session(&["missing", "a", "b", "real"]);
        if writable(&d("a")) {
            assert_eq!(default_dir(&p, &real).unwrap(), d("a"));
        }
        assert!(precedes(&p.value, &d("b"), &d("real")));
        assert!(!precedes(&session(&["real", "b"]).value, &d("b"), &d("real")));
        let err = default_dir(&session(&["real", "a"]), &real)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--authorized-key"), "{err}");
    }
}
