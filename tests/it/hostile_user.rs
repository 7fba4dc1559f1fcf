//! Hostile users (issue 10): a user who races root while root edits that
//! user's `authorized_keys`, and a user whose key is restricted to one scp
//! command and who tries to choose, through the environment, what the
//! stand-in runs. Each adversary is a real process of a real other user
//! (`nobody`) or a real sshd session; every one is bounded in time and killed
//! by its pid at the end.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::{self, DEADLINE, Finished, Input, bin};

const NOBODY: u32 = 65534;
/// The system's python (the adversary needs ctypes only). Not the test
/// venv's or a pyenv shim under /root: `nobody` must be able to run it.
const PYTHON: &str = "/usr/bin/python3";

const KEY1: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIANE4uYPozZ+Ur9d4bbDj4W43rJ0+o9D5vxsuAhlbWFW test@example";
const KEY1_FP: &str = "SHA256:VwYP8KYXVoUa7OSdl/nTzIJs+VPG3pI6d3NqGPhwno0";
const KEY2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEQn173/jVQt/X6ObZ94IRBTr3ShnM+O/qgIlXJ2BpZ9 other";

fn adversary_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adversaries/swap_dir.py")
}

/// Why the race tests cannot run here, if they cannot.
fn race_prerequisites() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (root edits another user's file; the adversary runs as nobody)".into());
    }
    if !Path::new(PYTHON).is_file() {
        return Some(format!("no {PYTHON}"));
    }
    None
}

/// One try's world: `home/` of the user (nobody) with `.ssh/authorized_keys`,
/// and `decoy/`, root's private directory (standing for /root/.ssh) that the
/// adversary tries to make root write into. Root's own config and install
/// record live in `root/`.
struct World {
    dir: tempfile::TempDir,
    decoy_before: Vec<(String, Vec<u8>)>,
}

impl World {
    fn new() -> World {
        // In /tmp itself, not $TMPDIR: nobody must be able to reach it.
        let dir = tempfile::Builder::new()
            .prefix("scptrace-race-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        // nobody must reach its home through the test's directory.
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["home/.ssh", "decoy", "root"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        fs::set_permissions(d.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(d.join("decoy"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(d.join("decoy/authorized_keys"), b"# root's own keys\n").unwrap();
        fs::set_permissions(d.join("home/.ssh"), fs::Permissions::from_mode(0o700)).unwrap();
        let keys = d.join("home/.ssh/authorized_keys");
        fs::write(&keys, format!("{KEY2}\nno-pty {KEY1}\n")).unwrap();
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o600)).unwrap();
        for p in ["home", "home/.ssh", "home/.ssh/authorized_keys"] {
            chown(d.join(p), Some(NOBODY), Some(NOBODY)).unwrap();
        }
        let mut w = World {
            dir,
            decoy_before: Vec::new(),
        };
        w.decoy_before = w.decoy();
        w
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn ssh_dir(&self) -> PathBuf {
        self.path().join("home/.ssh")
    }
    fn keys(&self) -> PathBuf {
        self.ssh_dir().join("authorized_keys")
    }
    /// Every entry of the decoy directory with its contents.
    fn decoy(&self) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(self.path().join("decoy"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap_or_default(),
                )
            })
            .collect();
        v.sort();
        v
    }
    /// Root wrote outside the user's real ~/.ssh: the decoy changed.
    fn root_wrote_into_the_decoy(&self) -> bool {
        self.decoy() != self.decoy_before
    }
    /// scptrace as root, with root's own config and record in `root/`.
    fn scptrace(&self) -> Command {
        let mut c = util::command(bin(), &self.path().join("root"));
        c.env("PATH", "/usr/bin:/bin").current_dir(self.path());
        c
    }
}

/// The adversary, running as nobody, watching `dir`.
struct Adversary {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Adversary {
    /// Starts it and waits (at most 10 s) until it watches: it swaps `dir`
    /// for a symlink to `target` once a name holding `mark` is `event`
    /// (`create`d or `open`ed) there.
    fn start(dir: &Path, target: &Path, mark: &str, event: &str) -> Adversary {
        // A copy next to the world: `nobody` may not reach the checkout
        // (CI clones under a directory of root's).
        let script = dir.parent().unwrap().with_file_name("swap_dir.py");
        fs::copy(adversary_script(), &script).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg(dir)
            .arg(target)
            .arg(mark)
            .arg(event)
            .arg("10")
            .uid(NOBODY)
            .gid(NOBODY)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("starting the adversary");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let a = Adversary { child, lines };
        let first = a.lines.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            first.as_deref().ok(),
            Some("ready"),
            "the adversary did not start"
        );
        a
    }

    /// Its verdict (`swapped NAME`, `no-swap …`, `timeout`), waiting at most
    /// 12 s, then it is gone (killed by pid if need be).
    fn finish(mut self) -> String {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(12))
            .unwrap_or_else(|_| "no verdict".into());
        self.stop();
        line
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Adversary {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How the tries went.
#[derive(Debug, Default)]
struct Tally {
    tries: u32,
    swapped: u32,
    /// Root wrote into the decoy.
    won: u32,
    succeeded: u32,
}

fn run_scptrace(cmd: &mut Command) -> Finished {
    util::run(cmd, Input::Null, DEADLINE)
}

/// Install with the adversary racing, `tries` times.
fn race_install(tries: u32) -> Tally {
    let mut t = Tally::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while t.tries < tries && Instant::now() < deadline {
        let w = World::new();
        // Right after the backup appears.
        let adv = Adversary::start(&w.ssh_dir(), &w.path().join("decoy"), "scptrace-backup", "create");
        let f = run_scptrace(
            w.scptrace()
                .args([
                    "install",
                    "--user",
                    "--authorized-key",
                    KEY1_FP,
                    "--authorized-keys",
                ])
                .arg(w.keys()),
        );
        let verdict = adv.finish();
        t.tries += 1;
        t.swapped += u32::from(verdict.starts_with("swapped"));
        t.won += u32::from(w.root_wrote_into_the_decoy());
        t.succeeded += u32::from(f.status.success());
        if !w.root_wrote_into_the_decoy() && verdict.starts_with("swapped") && f.status.success() {
            // Edited despite the swap: then it must have been the real file.
            let real = w.path().join("home/.ssh.swap/authorized_keys");
            let text = fs::read_to_string(&real).unwrap_or_default();
            assert!(text.contains("forced"), "{verdict}: {text}\n{}", f.stderr_text());
        }
    }
    t
}

/// Uninstall with the adversary racing (install itself undisturbed), `tries` times.
fn race_uninstall(tries: u32) -> Tally {
    let mut t = Tally::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while t.tries < tries && Instant::now() < deadline {
        let w = World::new();
        let f = run_scptrace(
            w.scptrace()
                .args([
                    "install",
                    "--user",
                    "--authorized-key",
                    KEY1_FP,
                    "--authorized-keys",
                ])
                .arg(w.keys()),
        );
        f.assert_success();
        assert!(!w.root_wrote_into_the_decoy());
        // Right after uninstall opens the file to read it.
        let adv = Adversary::start(&w.ssh_dir(), &w.path().join("decoy"), "authorized_keys", "open");
        let f = run_scptrace(w.scptrace().args(["uninstall", "--user"]));
        let verdict = adv.finish();
        t.tries += 1;
        t.swapped += u32::from(verdict.starts_with("swapped"));
        t.won += u32::from(w.root_wrote_into_the_decoy());
        t.succeeded +=
            u32::from(f.status.success() && !String::from_utf8_lossy(&f.stdout).contains("FAILED"));
    }
    t
}

/// Root runs `install --authorized-key` on nobody's ~/.ssh/authorized_keys
/// while nobody swaps ~/.ssh for a symlink to root's private directory the
/// moment scptrace's first file (the backup) appears there. Root must never
/// write outside the user's real ~/.ssh.
#[test]
fn root_editing_a_users_authorized_keys_never_writes_where_the_user_redirects() {
    if let Some(why) = race_prerequisites() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let t = race_install(20);
    eprintln!("FIGURE race.install {t:?}");
    assert!(t.tries >= 10, "{t:?}");
    assert!(
        t.swapped > 0,
        "the adversary never got to swap: the test proves nothing: {t:?}"
    );
    assert_eq!(
        t.won, 0,
        "root wrote into the directory the user swapped in: {t:?}"
    );
}

/// The same adversary against `uninstall`, which rewrites the file and
/// removes the backup: it swaps as soon as the file is opened.
#[test]
fn root_uninstalling_from_a_users_authorized_keys_never_writes_where_the_user_redirects() {
    if let Some(why) = race_prerequisites() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let t = race_uninstall(20);
    eprintln!("FIGURE race.uninstall {t:?}");
    assert!(t.tries >= 10, "{t:?}");
    assert!(
        t.swapped > 0,
        "the adversary never got to swap: the test proves nothing: {t:?}"
    );
    assert_eq!(
        t.won, 0,
        "root wrote into the directory the user swapped in: {t:?}"
    );
}

/// Without an adversary, root's edit of another user's file leaves it as
/// the user's: owner, group and mode kept, the backup the user's too, and
/// uninstall gives the file back byte for byte.
#[test]
fn root_edits_a_users_authorized_keys_as_that_user() {
    if let Some(why) = race_prerequisites() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let w = World::new();
    let before = fs::read(w.keys()).unwrap();
    let f = run_scptrace(
        w.scptrace()
            .args([
                "install",
                "--user",
                "--authorized-key",
                KEY1_FP,
                "--authorized-keys",
            ])
            .arg(w.keys()),
    );
    f.assert_success();
    let m = fs::metadata(w.keys()).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (NOBODY, NOBODY, 0o600));
    let text = fs::read_to_string(w.keys()).unwrap();
    assert!(text.contains("forced\",no-pty "), "{text}");
    let backups: Vec<PathBuf> = util::files_in(&w.ssh_dir())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("scptrace-backup-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let b = fs::metadata(&backups[0]).unwrap();
    assert_eq!((b.uid(), b.mode() & 0o777), (NOBODY, 0o600));
    let out = run_scptrace(w.scptrace().args(["uninstall", "--user"]));
    out.assert_success();
    assert_eq!(fs::read(w.keys()).unwrap(), before);
    assert_eq!(fs::metadata(w.keys()).unwrap().uid(), NOBODY);
    assert!(!backups[0].exists());
    assert!(!w.root_wrote_into_the_decoy());
}

/// The user's key is restricted to `command="scp -t BACKUP",restrict`, sshd
/// has `AcceptEnv SCPTRACE_*` and the stand-in is `scp` on the session
/// PATH. The user uploads an executable (and a `plan` naming it) into BACKUP,
/// then connects with `SCPTRACE_REAL_SCP=BACKUP/evil`, and with
/// `SCPTRACE_AS_SSH=BACKUP` (which makes scptrace act as `record`'s ssh leg
/// and run the plan's ssh). Neither may run `evil`; the upload itself goes
/// ahead through the real scp.
#[test]
fn a_restricted_key_cannot_choose_what_runs_through_the_environment() {
    use crate::sshd::{Sshd, SshdOpts};
    let backup = tempfile::Builder::new()
        .prefix("scptrace-backup-")
        .tempdir()
        .unwrap();
    let bk = backup.path().to_path_buf();
    let sshd = crate::or_skip!(Sshd::start(SshdOpts {
        standin: true,
        key_options: Some(format!("command=\"scp -t {}\",restrict", bk.display())),
        extra_config: vec!["AcceptEnv SCPTRACE_*".into()],
        ..SshdOpts::default()
    }));
    let work = sshd.work();
    let pwned = work.join("pwned");
    let evil = work.join("evil");
    fs::write(
        &evil,
        format!(
            "#!/bin/sh\necho \"ran as $0 $*\" >> '{}'\nexec /usr/bin/scp \"$@\"\n",
            pwned.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o755)).unwrap();
    let plan = work.join("plan");
    fs::write(
        &plan,
        format!(
            "ssh = \"{}\"\nssh_argv0 = \"ssh\"\noutput = \"stderr\"\n",
            bk.join("evil").display()
        ),
    )
    .unwrap();
    let up = sshd.openssh_scp(&[evil.as_os_str(), plan.as_os_str(), &sshd.remote("ignored")]);
    assert!(up.status.success(), "{}", up.stderr_text());
    assert!(
        fs::metadata(bk.join("evil")).is_ok_and(|m| m.mode() & 0o111 != 0),
        "the upload made an executable"
    );
    assert!(!pwned.exists());

    let mut ran = Vec::new();
    for (var, value) in [
        ("SCPTRACE_REAL_SCP", bk.join("evil")),
        ("SCPTRACE_AS_SSH", bk.clone()),
    ] {
        let name = format!("{var}.txt");
        fs::write(work.join(&name), format!("uploaded with {var}\n")).unwrap();
        let mut c = sshd.command("/usr/bin/scp");
        c.arg("-O")
            .args(sshd.scp_opts())
            .arg("-o")
            .arg(format!("SetEnv={var}={}", value.display()))
            .arg(work.join(&name))
            .arg(sshd.remote("ignored"));
        let f = util::run(&mut c, Input::Null, DEADLINE);
        let evil_ran = fs::read_to_string(&pwned).unwrap_or_default();
        let _ = fs::remove_file(&pwned);
        eprintln!(
            "FIGURE env.{var}: scp exit {:?}, evil ran: {:?}, file arrived: {}, stderr: {:?}",
            f.status.code(),
            evil_ran.trim(),
            bk.join(&name).exists(),
            f.stderr_text().trim()
        );
        if !evil_ran.is_empty() {
            ran.push(format!("{var}: {}", evil_ran.trim()));
            continue;
        }
        assert!(f.status.success(), "{var}: {}", f.stderr_text());
        assert_eq!(
            fs::read_to_string(bk.join(&name)).unwrap_or_default(),
            format!("uploaded with {var}\n"),
            "{var}: the upload goes ahead through the real scp"
        );
        assert!(
            f.stderr_text().contains(var) && f.stderr_text().contains("ignored"),
            "{var}: one warning says why: {}",
            f.stderr_text()
        );
    }
    assert!(ran.is_empty(), "the environment chose what ran: {ran:?}");
    // The stand-in's transcripts name the real scp as the program, never `evil`.
    let transcripts = sshd.transcripts();
    assert!(!transcripts.is_empty());
    for t in transcripts {
        let text = fs::read_to_string(&t).unwrap();
        let program = text.lines().find(|l| l.starts_with("# program: "));
        assert_eq!(
            program,
            Some("# program: /usr/bin/scp"),
            "{}: {text}",
            t.display()
        );
    }
}

/// `doctor` in an ssh session names each program setting the environment
/// tried to set and could not, with the reason, in text and in JSON.
#[test]
fn doctor_shows_the_settings_the_environment_could_not_set() {
    let home = tempfile::tempdir().unwrap();
    let doctor = |json: bool| {
        let mut c = util::command(bin(), home.path());
        c.arg("doctor")
            .env("PATH", "/usr/bin:/bin")
            .env("SSH_CONNECTION", "127.0.0.1 50000 127.0.0.1 22")
            .env("SCPTRACE_REAL_SCP", "/tmp/evil")
            .env("SCPTRACE_DATA", "none");
        if json {
            c.args(["--format", "json"]);
        }
        util::run(&mut c, Input::Null, DEADLINE)
    };
    let text = String::from_utf8_lossy(&doctor(false).stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("SCPTRACE_REAL_SCP"))
        .unwrap_or_else(|| panic!("no line about SCPTRACE_REAL_SCP:\n{text}"));
    assert!(line.contains("not set") || line.contains("ignored"), "{line}");
    assert!(text.contains("allow_env_programs"), "{text}");
    assert!(!text.contains("real scp:       /tmp/evil"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&doctor(true).stdout).unwrap();
    let refused = json["env_refused"].as_array().cloned().unwrap_or_default();
    assert_eq!(refused.len(), 1, "{json:#}");
    assert_eq!(refused[0]["variable"], "SCPTRACE_REAL_SCP");
    assert_eq!(refused[0]["value"], "/tmp/evil");
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("ssh session"),
        "{json:#}"
    );
    // A setting that names no program still comes from the environment.
    let data = json["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "data")
        .cloned()
        .unwrap();
    assert_eq!(data["origin"], "environment SCPTRACE_DATA");
    let real = json["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "real_scp")
        .cloned()
        .unwrap();
    assert_ne!(real["value"], "/tmp/evil", "{json:#}");
}

/// In an ssh session the real scp must pass OpenSSH's `safe_path` rule,
/// wherever it was configured: a `real_scp` in the user's config file that
/// lies under /tmp (writable by all) is refused with one line and a non-zero
/// exit, for a server invocation and for a client one, and never runs.
#[test]
fn standin_in_an_ssh_session_refuses_a_real_scp_that_others_could_have_placed() {
    let sb = util::Sandbox::new();
    let marker = sb.path().join("ran");
    let evil = sb.path().join("evil");
    fs::write(
        &evil,
        format!(
            "#!/bin/sh\necho ran >> '{}'\nexec /usr/bin/scp \"$@\"\n",
            marker.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o755)).unwrap();
    let home = sb.path().join("home");
    fs::create_dir_all(home.join(".config/scptrace")).unwrap();
    fs::write(
        home.join(".config/scptrace/config.toml"),
        format!("real_scp = \"{}\"\n", evil.display()),
    )
    .unwrap();
    fs::create_dir(sb.path().join("dst")).unwrap();
    for args in [&["-t", "dst"][..], &["-q", "a", "b"][..]] {
        let mut c = util::command(sb.standin(), &home);
        c.args(args)
            .current_dir(sb.path())
            .env("SSH_CONNECTION", "127.0.0.1 50000 127.0.0.1 22")
            .env("SCPTRACE_LOG_DIR", sb.logs());
        let f = util::run(&mut c, Input::Bytes(b""), DEADLINE);
        let err = f.stderr_text();
        eprintln!(
            "FIGURE safe_path.{}: exit {:?}, ran: {}, stderr: {err:?}",
            args[0],
            f.status.code(),
            marker.exists()
        );
        assert!(!marker.exists(), "{args:?}: the unsafe real scp ran");
        assert_eq!(f.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            err.starts_with("scptrace: refusing to run the real scp ")
                && err.contains("writable by group or others"),
            "{args:?}: {err}"
        );
    }
    // Outside an ssh session the same config is the user's own business.
    let mut c = util::command(sb.standin(), &home);
    c.args(["-t", "dst"])
        .current_dir(sb.path())
        .env("SCPTRACE_LOG_DIR", sb.logs());
    util::run(&mut c, Input::Bytes(b""), DEADLINE);
    assert!(marker.exists());
}

/// `record` run inside an ssh session (a user logged in to a jump host)
/// still works: its legs are recognised by their `argv[0]`, the link in the
/// rendezvous, not by the environment marker alone.
#[test]
fn record_inside_an_ssh_session_still_finds_its_legs() {
    let sb = util::Sandbox::new();
    fs::write(sb.path().join("a"), b"from a jump host\n").unwrap();
    fs::create_dir(sb.path().join("dst")).unwrap();
    let t = sb.path().join("t.log");
    let mut c = crate::record::arranged(&sb, bin());
    c.env("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22")
        .args(["record", "-o"])
        .arg(&t)
        .args(["--", util::REAL_SCP, "-O", "-S"])
        .arg(crate::record::local_ssh())
        .arg(sb.path().join("a"))
        .arg(crate::record::remote(&sb.path().join("dst/")));
    let f = util::run(&mut c, Input::Null, DEADLINE);
    f.assert_success();
    assert!(!f.stderr_text().contains("ignored"), "{}", f.stderr_text());
    assert_eq!(fs::read(sb.path().join("dst/a")).unwrap(), b"from a jump host\n");
    let text = fs::read_to_string(&t).unwrap();
    assert!(text.contains("I: C0644 17 a\\n"), "{text}");
}
