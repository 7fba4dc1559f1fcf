//! `scptrace install` (design §6): put the `scp` stand-in in place on this
//! machine, as a link on the session PATH or as a forced command on one key.
//! `uninstall` takes away exactly what was put, `doctor` explains the result.
//!
//! Every change `install` makes is written down in `installed.toml` next to
//! the config file it used (see `deploy::state`) before the next change is
//! made, so an interrupted install can still be undone.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use super::cli::{InstallArgs, ScopeArgs};
use crate::config::{self, Flags, Settings};
use crate::deploy::state::{State, Step};
use crate::deploy::{
    Scope, conffile, keyfile, keys, now, owner, sshd_path, this_exe, writable, write_atomic,
};
use crate::escape;
use crate::paths::{all_on_path, is_executable_file, same_file, user_name};
use crate::shell::shell_quote;
use crate::tap::standin;

// Every line printed here shows paths and values from outside: escaped.
use crate::println_escaped as println;

/// The config key install sets.
const REAL_SCP_KEY: &str = "real_scp";

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
            Err(e) => AtLink::Foreign(format!("an unreadable symlink ({})", crate::errtext::io(&e))),
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
    let found = all_on_path(OsStr::new("scptrace"), Some(OsStr::new(session_path))).next();
    match found {
        Some(p) if same_file(&p, exe) => "scptrace".into(),
        _ => shell_quote(exe.as_os_str().as_bytes()),
    }
}

pub fn run(args: InstallArgs) -> Result<i32> {
    let exe = this_exe()?;
    if let Some(key) = &args.authorized_key {
        return install_key(
            &exe,
            key,
            args.authorized_keys.as_deref(),
            &args.scope,
            args.dry_run,
        );
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
    owner::require_root_controlled(&scope.config, "the config file")?;

    let dry = args.dry_run;
    if dry {
        println!(
            "scptrace install --dry-run ({} scope): nothing is changed; install would:",
            scope.name
        );
    } else {
        println!("scptrace install ({} scope):", scope.name);
    }
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
    } else if dry {
        println!(
            "  set     {} in {} (was: {})",
            conffile::key_line(REAL_SCP_KEY, real_str),
            scope.config.display(),
            previous.as_deref().unwrap_or("unset")
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
        _ if dry => println!("  link    {} -> {}", link.display(), exe.display()),
        _ => {
            // As the directory's controller: root linking into a user's
            // directory does it as that user.
            owner::as_controller(&link, "linking", || {
                std::os::unix::fs::symlink(exe, &link)
                    .with_context(|| format!("cannot create the link {}", link.display()))
            })?;
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
    if dry {
        println!("(dry run: run it again without --dry-run to make these changes)\n");
    }

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

fn install_key(exe: &Path, key: &str, file: Option<&Path>, scope_args: &ScopeArgs, dry: bool) -> Result<i32> {
    let spec = key_spec(key)?;
    let file = match file {
        Some(f) => f.to_path_buf(),
        None => config::home_dir()
            .ok_or_else(|| anyhow!("no home directory: give --authorized-keys FILE"))?
            .join(".ssh/authorized_keys"),
    };
    let scope = if scope_args.system {
        Scope::system()
    } else {
        Scope::user()?
    };
    // Before anything changes: the record must be one we may write.
    let mut state = State::load(&scope.state)?;
    let command = format!("{} forced", shell_quote(exe.as_os_str().as_bytes()));
    let option = keys::command_option(&command);
    // As the file's controller: root editing a user's file does it as that user.
    let (file, backup, edit) = match keyfile::add_forced(&file, &spec, &option, dry)? {
        keyfile::Added::Edited { file, backup, edit } => (file, backup, edit),
        keyfile::Added::AlreadyForced {
            file,
            line,
            option: o,
        } => {
            println!(
                "scptrace install: {}, line {line}: that key already runs scptrace forced ({o}); nothing to do",
                file.display()
            );
            return Ok(0);
        }
    };
    if dry {
        println!("scptrace install --dry-run: nothing is changed; install would:");
        println!("  edit    {}, line {} ({spec}):", file.display(), edit.line);
        println!("          to start with {option}");
        println!("  backup  {} (the whole file, first)", backup.display());
        println!("  record  {} (for `scptrace uninstall`)", scope.state.display());
        return Ok(0);
    }
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
    // The session runs `doctor` through the user's shell: bare `scptrace`
    // only when that PATH finds this binary (issue 13: "command not found").
    let home = config::home_dir();
    let session = sshd_path::guess(&user_name(), nix::unistd::geteuid().is_root(), home.as_deref());
    let me = invocation_name(exe, &session.value);
    let log_dir = Settings::load(Flags::default()).log_dir;
    println!(
        "Transcripts go to {} (log_dir, from {}).",
        log_dir.value.display(),
        log_dir.origin
    );
    println!("Check from a client, logging in with that key:");
    println!("  ssh -i KEY HOST {me} doctor      # says the session came through scptrace forced");
    println!(
        "OpenSSH 9.0 and later scp uses SFTP unless given -O: trace with `scp -O …` (other clients use legacy SCP)."
    );
    Ok(0)
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
