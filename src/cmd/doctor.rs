//! `scptrace doctor`: what a session started the way this one was will run as
//! `scp`, whether it would be traced and where to; each problem with a hint.
//! `ssh HOST scptrace doctor` therefore shows what a remote non-interactive
//! session sees: its PATH, its user, its config.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Result;
use serde::Serialize;

use super::cli::{DoctorArgs, DoctorFormat};
use crate::config::{self, ALLOW_ENV_PROGRAMS, Flags, Origin, SYSTEM_CONFIG, Settings};
use crate::deploy::sshd_path::{self, SessionPath};
use crate::deploy::sshd_sftp::{self, SftpSetup};
use crate::deploy::state::State;
use crate::deploy::{Scope, this_exe};
use crate::paths::{all_on_path, is_executable_file, same_file, user_name};
use crate::tap::logdir::LogDir;
use crate::tap::standin;
use crate::utc::Utc;

// Every line printed here shows paths and values from outside: escaped.
use crate::println_escaped as println;

/// One `scp` found on PATH.
#[derive(Debug, Serialize)]
struct ScpOnPath {
    path: PathBuf,
    is_scptrace: bool,
}

#[derive(Debug, Serialize)]
struct RealScpReport {
    path: Option<PathBuf>,
    how: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct LogDirReport {
    path: PathBuf,
    origin: String,
    writable: bool,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct SettingReport {
    name: &'static str,
    value: String,
    origin: String,
}

/// A program setting the environment tried to set and could not.
#[derive(Debug, Serialize)]
struct RefusedReport {
    variable: String,
    value: String,
    reason: String,
}

/// Whether the environment may name programs here (design §1).
#[derive(Debug, Serialize)]
struct EnvProgramsReport {
    /// The variable that makes this an ssh session, if any.
    ssh_session: Option<&'static str>,
    /// `allow_env_programs = true` in /etc/scptrace/config.toml.
    allow_env_programs: bool,
    /// Whether the environment may name a program to run here.
    allowed: bool,
}

#[derive(Debug, Serialize)]
struct ConfigFileReport {
    path: PathBuf,
    /// `read`, `absent`, or the problem.
    status: String,
}

#[derive(Debug, Serialize)]
struct InstallRecord {
    file: PathBuf,
    steps: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Problem {
    problem: String,
    hint: String,
}

/// Everything doctor found; `--format json` prints exactly this.
#[derive(Debug, Serialize)]
struct Report {
    scptrace_version: &'static str,
    binary: Option<PathBuf>,
    user: String,
    uid: u32,
    /// `SSH_CONNECTION` is set: this is an ssh session.
    ssh_session: bool,
    /// Started by `scptrace forced` (it sets `SCPTRACE_FORCED=1`).
    forced: bool,
    path: String,
    /// Every executable `scp` on PATH, in order; the first is what runs.
    scp_on_path: Vec<ScpOnPath>,
    /// How a legacy scp server would be traced here: `stand-in`, `forced`, or null.
    traced_by: Option<&'static str>,
    real_scp: RealScpReport,
    log_dir: LogDirReport,
    settings: Vec<SettingReport>,
    env_programs: EnvProgramsReport,
    /// Settings naming a program that the environment could not set.
    env_refused: Vec<RefusedReport>,
    config_files: Vec<ConfigFileReport>,
    warnings: Vec<String>,
    openssh: Option<String>,
    caveat: &'static str,
    sshd_default_path: SessionPath,
    install_records: Vec<InstallRecord>,
    /// What sshd runs for an SFTP session, and whether it is traced.
    sftp: SftpSetup,
    would_trace: bool,
    problems: Vec<Problem>,
}

const CAVEAT: &str = "OpenSSH 9.0 and later: scp uses the SFTP protocol unless the client passes -O, \
                      so a stand-in sees only legacy-protocol transfers (`scp -O …`, PuTTY pscp -scp, \
                      libssh2, paramiko and most libraries still speak legacy SCP)";

fn origin(o: &Origin) -> String {
    o.to_string()
}

fn settings_report(s: &Settings) -> Vec<SettingReport> {
    let row = |name, value: String, o: &Origin| SettingReport {
        name,
        value,
        origin: origin(o),
    };
    vec![
        row(
            "log_dir",
            s.log_dir.value.display().to_string(),
            &s.log_dir.origin,
        ),
        row(
            "real_scp",
            s.real_scp
                .value
                .as_ref()
                .map_or("(search PATH)".into(), |p| p.display().to_string()),
            &s.real_scp.origin,
        ),
        row("framing", s.framing.value.to_string(), &s.framing.origin),
        row("data", s.data.value.to_string(), &s.data.origin),
        row("format", s.format.value.to_string(), &s.format.origin),
        row("timestamps", s.timestamps.value.to_string(), &s.timestamps.origin),
        row("color", s.color.value.to_string(), &s.color.origin),
        row(
            "max_log_bytes",
            s.max_log_bytes.value.to_string(),
            &s.max_log_bytes.origin,
        ),
        row("keep", s.keep.value.to_string(), &s.keep.origin),
        row("keep_days", s.keep_days.value.to_string(), &s.keep_days.origin),
        row("splice", s.splice.value.to_string(), &s.splice.origin),
    ]
}

fn config_files() -> Vec<ConfigFileReport> {
    config::config_paths()
        .into_iter()
        .map(|path| {
            let status = match std::fs::read_to_string(&path) {
                Ok(t) => match t.parse::<toml::Table>() {
                    Ok(_) => "read".into(),
                    Err(e) => format!("not valid TOML, ignored: {}", e.message()),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "absent".into(),
                Err(e) => format!("unreadable, ignored: {}", crate::errtext::io(&e)),
            };
            ConfigFileReport { path, status }
        })
        .collect()
}

/// Opens the log directory as the stand-in would and creates and removes a file there.
fn probe_log_dir(dir: &Path) -> Result<(), String> {
    let d = LogDir::open(dir).map_err(|e| e.to_string())?;
    let (p, f) = d.create(&Utc::now(), "doctor-probe").map_err(|e| e.to_string())?;
    drop(f);
    std::fs::remove_file(&p).map_err(|e| {
        format!(
            "cannot remove the probe {}: {}",
            p.display(),
            crate::errtext::io(&e)
        )
    })
}

/// `ssh -V` of the ssh beside the real scp (same package), else the one on PATH.
fn openssh_version(real: Option<&Path>) -> Option<String> {
    let beside = real
        .and_then(|r| r.parent())
        .map(|d| d.join("ssh"))
        .filter(|p| is_executable_file(p));
    let ssh = beside.unwrap_or_else(|| PathBuf::from("ssh"));
    let out = Command::new(ssh)
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn install_records() -> Vec<InstallRecord> {
    Scope::all()
        .into_iter()
        .filter(|s| s.state.exists())
        .map(|s| InstallRecord {
            steps: match State::load(&s.state) {
                Ok(st) => st.steps.iter().map(|x| x.describe()).collect(),
                Err(e) => vec![format!("unreadable: {e:#}")],
            },
            file: s.state,
        })
        .collect()
}

/// Every program setting the environment tried and failed to set: the
/// settings' own (`SCPTRACE_REAL_SCP`), record's leg marker, and a `SHELL`
/// that `forced` would not use (it runs the passwd shell, as sshd does).
fn env_refused(settings: &Settings) -> Vec<RefusedReport> {
    let policy = &settings.env_policy;
    let passwd_shell = crate::passwd::lookup(nix::unistd::getuid().as_raw()).map(|u| u.shell);
    let shell = policy
        .program_var("SHELL")
        .err()
        .filter(|r| passwd_shell.as_deref() != Some(Path::new(&r.value)));
    let as_ssh = policy.program_var(crate::cmd::record::AS_SSH_ENV).err();
    settings
        .refused
        .iter()
        .cloned()
        .chain(as_ssh)
        .chain(shell)
        .map(|r| RefusedReport {
            variable: r.variable,
            value: r.value,
            reason: r.reason,
        })
        .collect()
}

fn gather(sshd_config: &Path) -> Report {
    let exe = this_exe().ok();
    let settings = Settings::load(Flags::default());
    let path = std::env::var("PATH").unwrap_or_default();
    let scp_on_path: Vec<ScpOnPath> = all_on_path(OsStr::new("scp"), Some(OsStr::new(&path)))
        .fold(Vec::<PathBuf>::new(), |mut seen, p| {
            // /bin/scp after /usr/bin/scp on a merged /usr is the same file: once is enough.
            if !seen.iter().any(|q| same_file(q, &p)) {
                seen.push(p);
            }
            seen
        })
        .into_iter()
        .map(|p| ScpOnPath {
            is_scptrace: exe.as_ref().is_some_and(|e| same_file(&p, e)),
            path: p,
        })
        .collect();
    let forced = std::env::var_os("SCPTRACE_FORCED").is_some();
    let active = std::env::var_os("SCPTRACE_ACTIVE").is_some();
    let first = scp_on_path.first();
    let traced_by = if forced {
        Some("forced")
    } else if first.is_some_and(|s| s.is_scptrace) {
        Some("stand-in")
    } else {
        None
    };
    let real = standin::find_real_scp(&settings);
    let real_scp = match &real {
        Ok(r) if !is_executable_file(&r.path) => RealScpReport {
            path: None,
            how: None,
            error: Some(format!(
                "{} ({}) is not an executable file",
                r.path.display(),
                r.how
            )),
        },
        Ok(r) => RealScpReport {
            path: Some(r.path.clone()),
            how: Some(r.how.clone()),
            error: None,
        },
        Err(e) => RealScpReport {
            path: None,
            how: None,
            error: Some(format!("{e:#}")),
        },
    };
    let probe = probe_log_dir(&settings.log_dir.value);
    let log_dir = LogDirReport {
        path: settings.log_dir.value.clone(),
        origin: origin(&settings.log_dir.origin),
        writable: probe.is_ok(),
        error: probe.err(),
    };
    let root = nix::unistd::geteuid().is_root();
    let home = config::home_dir();
    let install_records = install_records();

    let mut problems = Vec::new();
    if traced_by.is_none() {
        let installed_elsewhere = install_records
            .iter()
            .flat_map(|r| r.steps.iter())
            .find(|s| s.starts_with("link "))
            .cloned();
        let problem = match first {
            Some(s) => format!(
                "`scp` on this PATH is {}, not scptrace: sessions run it untraced",
                s.path.display()
            ),
            None => "no `scp` on this PATH at all".to_string(),
        };
        let hint = match installed_elsewhere {
            Some(step) => format!(
                "install made a {step}, but this PATH does not reach it first; put its directory before {} \
                 (SetEnv PATH in sshd_config, or ~/.bashrc), see docs/deploying.md",
                first
                    .and_then(|s| s.path.parent())
                    .map_or("the real scp".into(), |d| d.display().to_string())
            ),
            None => "run `scptrace install` (as root it links /usr/local/bin/scp), or `scptrace install \
                     --authorized-key SHA256:…` to trace one key's sessions; see docs/deploying.md"
                .into(),
        };
        problems.push(Problem { problem, hint });
    }
    if let Some(e) = &real_scp.error {
        problems.push(Problem {
            problem: format!("the real scp: {e}"),
            hint:
                "set real_scp in the config file, or SCPTRACE_REAL_SCP, to the real scp (e.g. /usr/bin/scp)"
                    .into(),
        });
    }
    if let Some(e) = &log_dir.error {
        problems.push(Problem {
            problem: format!("transcripts cannot be written: {e}"),
            hint: format!(
                "set log_dir in {} (or SCPTRACE_LOG_DIR) to a directory this user owns, mode 0700; \
                 transfers still work, untraced",
                config::user_config_path().map_or("the config".into(), |p| p.display().to_string())
            ),
        });
    }
    if active {
        problems.push(Problem {
            problem: "SCPTRACE_ACTIVE is set: this runs inside a session scptrace already traces, so a \
                      stand-in here runs the real scp directly"
                .into(),
            hint: "unset SCPTRACE_ACTIVE (only `scptrace forced` should set it, for its child)".into(),
        });
    }
    let openssh = openssh_version(real_scp.path.as_deref());
    Report {
        scptrace_version: env!("CARGO_PKG_VERSION"),
        binary: exe,
        user: user_name(),
        uid: nix::unistd::geteuid().as_raw(),
        ssh_session: std::env::var_os("SSH_CONNECTION").is_some(),
        forced,
        path,
        scp_on_path,
        traced_by,
        real_scp,
        log_dir,
        settings: settings_report(&settings),
        env_programs: EnvProgramsReport {
            ssh_session: settings.env_policy.ssh_session,
            allow_env_programs: settings.env_policy.allow_env_programs,
            allowed: settings.env_policy.refusal().is_none(),
        },
        env_refused: env_refused(&settings),
        config_files: config_files(),
        warnings: settings.warnings.clone(),
        openssh,
        caveat: CAVEAT,
        sshd_default_path: sshd_path::guess(&user_name(), root, home.as_deref()),
        install_records,
        sftp: sshd_sftp::inspect(sshd_config, &user_name(), this_exe().ok().as_deref(), forced),
        would_trace: problems.is_empty(),
        problems,
    }
}

fn print_text(r: &Report) {
    let show = |p: &Option<PathBuf>| p.as_ref().map_or("?".into(), |p| p.display().to_string());
    println!(
        "scptrace doctor {} (user {}, uid {})",
        r.scptrace_version, r.user, r.uid
    );
    println!("binary:         {}", show(&r.binary));
    let how = match (r.ssh_session, r.forced) {
        (_, true) => "an ssh session that came through `scptrace forced`",
        (true, false) => "an ssh session (SSH_CONNECTION is set)",
        (false, false) => "not an ssh session: run `ssh HOST scptrace doctor` to see what sessions see",
    };
    println!("session:        {how}");
    println!("PATH:           {}", r.path);
    match r.scp_on_path.first() {
        Some(s) => println!(
            "scp on PATH:    {}{}",
            s.path.display(),
            if s.is_scptrace {
                "  (scptrace: the stand-in)"
            } else {
                "  (not scptrace)"
            }
        ),
        None => println!("scp on PATH:    none"),
    }
    for s in r.scp_on_path.iter().skip(1) {
        println!(
            "                then {}{}",
            s.path.display(),
            if s.is_scptrace { "  (scptrace)" } else { "" }
        );
    }
    match (&r.real_scp.path, &r.real_scp.how) {
        (Some(p), Some(h)) => println!("real scp:       {} ({h})", p.display()),
        _ => println!(
            "real scp:       NOT FOUND: {}",
            r.real_scp.error.as_deref().unwrap_or("?")
        ),
    }
    println!(
        "log directory:  {} ({}): {}",
        r.log_dir.path.display(),
        r.log_dir.origin,
        if r.log_dir.writable {
            "writable"
        } else {
            "NOT WRITABLE"
        }
    );
    println!(
        "OpenSSH:        {}",
        r.openssh.as_deref().unwrap_or("unknown (no ssh -V)")
    );
    println!(
        "sshd's PATH:    {}  (for this user, guessed from {})",
        r.sshd_default_path.value, r.sshd_default_path.source
    );
    println!("config files:");
    for c in &r.config_files {
        println!("  {}  ({})", c.path.display(), c.status);
    }
    println!("settings:");
    let w = r.settings.iter().map(|s| s.value.len()).max().unwrap_or(0);
    for s in &r.settings {
        println!("  {:<14} {:<w$}  {}", s.name, s.value, s.origin);
    }
    let ep = &r.env_programs;
    println!(
        "programs from the environment: {}",
        match (ep.ssh_session, ep.allowed) {
            (None, _) => "allowed (not an ssh session)".to_string(),
            (Some(v), true) => format!(
                "allowed in this ssh session ({v} is set): {ALLOW_ENV_PROGRAMS} = true in {SYSTEM_CONFIG}"
            ),
            (Some(v), false) => format!(
                "not in this ssh session ({v} is set), unless {SYSTEM_CONFIG} says {ALLOW_ENV_PROGRAMS} = true"
            ),
        }
    );
    for x in &r.env_refused {
        println!(
            "  ignored: {}={}",
            x.variable,
            crate::escape::escape_text(&x.value)
        );
    }
    for w in &r.warnings {
        // The refused settings were just listed.
        if r.env_refused
            .iter()
            .any(|x| w.starts_with(&format!("{}=", x.variable)))
        {
            continue;
        }
        println!("warning: {w}");
    }
    if r.install_records.is_empty() {
        println!("install record: none");
    }
    for rec in &r.install_records {
        println!("install record: {}", rec.file.display());
        for s in &rec.steps {
            println!("  {s}");
        }
    }
    let s = &r.sftp;
    println!(
        "SFTP:           Subsystem sftp {}  (from {})",
        s.subsystem.as_deref().unwrap_or("(none)"),
        s.source
    );
    if let Some(f) = &s.force_command {
        println!("                ForceCommand {f}");
    }
    println!(
        "                {}",
        match (s.traced_by, &s.subsystem) {
            (Some("sftp-server"), _) =>
                "SFTP sessions are traced by the Subsystem wrapper (`scptrace sftp-server`)",
            (Some(_), _) => "SFTP sessions are traced by `scptrace forced`",
            (None, None) =>
                "no SFTP subsystem: sshd runs nothing for an SFTP session (scp without -O fails), so none is traced",
            (None, Some(_)) =>
                "SFTP sessions are NOT traced: use `Subsystem sftp /usr/local/bin/scptrace sftp-server` (docs/deploying.md, way 5)",
        }
    );
    println!("note: {}", r.caveat);
    if r.would_trace {
        let by = match r.traced_by {
            Some("forced") => "`scptrace forced`",
            _ => "the stand-in",
        };
        println!(
            "ok: a legacy scp server started like this session is traced by {by} into {}",
            r.log_dir.path.display()
        );
    } else {
        for p in &r.problems {
            println!("problem: {}", p.problem);
            println!("  hint: {}", p.hint);
        }
    }
}

pub fn run(args: DoctorArgs) -> Result<i32> {
    let report = gather(&args.sshd_config);
    match args.format {
        DoctorFormat::Text => print_text(&report),
        DoctorFormat::Json => println!("{}", crate::escape::to_json_pretty(&report)?),
    }
    Ok(if report.would_trace { 0 } else { 1 })
}
