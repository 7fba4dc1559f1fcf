//! `install`, `uninstall`, `forced` and `doctor` (design §1, §6), run as the
//! built binary in a sandbox: HOME, XDG_CONFIG_HOME and XDG_STATE_HOME point
//! into a temp dir and every link goes into a `--dir` there, so the real
//! /usr/local/bin, /etc and ~ are never touched. Transfers use the real
//! OpenSSH scp client with an `-S` program that plays sshd's part.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scptrace"))
}

const REAL_SCP: &str = "/usr/bin/scp";

/// A sandboxed home for one test.
struct Sb {
    dir: tempfile::TempDir,
}

impl Sb {
    fn new() -> Sb {
        let dir = tempfile::Builder::new()
            .prefix("scptrace-deploy-")
            .tempdir()
            .unwrap();
        for d in ["home/bin", "home/.ssh", "src", "dst"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Sb { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn home(&self) -> PathBuf {
        self.path().join("home")
    }
    /// Where tests put the `scp` link.
    fn bindir(&self) -> PathBuf {
        self.home().join("bin")
    }
    fn config_dir(&self) -> PathBuf {
        self.home().join(".config/scptrace")
    }
    fn config(&self) -> PathBuf {
        self.config_dir().join("config.toml")
    }
    fn state(&self) -> PathBuf {
        self.config_dir().join("installed.toml")
    }
    fn logs(&self) -> PathBuf {
        self.home().join(".state/scptrace")
    }
    fn transcripts(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(self.logs())
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
    /// A command with only the environment the test gives it.
    fn cmd(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("XDG_STATE_HOME", self.home().join(".state"))
            .env("SHELL", "/bin/sh")
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C")
            .current_dir(self.path());
        c
    }
    fn scptrace(&self) -> Command {
        self.cmd(bin())
    }
    /// An `-S` program for scp that runs the remote command as sshd would
    /// with `command="scptrace forced"` on the key: in the home directory,
    /// with SSH_ORIGINAL_COMMAND set.
    fn forced_ssh(&self) -> PathBuf {
        let p = self.path().join("forced-ssh");
        let script = format!(
            "#!/bin/sh\n# ssh stand-in: runs the remote command as sshd does with a forced command\n\
             for last; do :; done\nSSH_ORIGINAL_COMMAND=$last\nexport SSH_ORIGINAL_COMMAND\n\
             cd \"$HOME\" || exit 1\nexec '{}' forced\n",
            bin().display()
        );
        fs::write(&p, script).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }
}

/// Runs `cmd` with stdin from `input`, failing the test after 60 s instead of hanging.
fn run(cmd: &mut Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id() as i32;
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::Relaxed) {
                if start.elapsed() > Duration::from_secs(60) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait");
    done.store(true, Ordering::Relaxed);
    let _ = writer.join();
    assert!(!watchdog.join().unwrap(), "command hung and was killed: {cmd:?}");
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn install(sb: &Sb) -> Output {
    let dir = sb.bindir();
    run(sb.scptrace().arg("install").arg("--dir").arg(&dir), b"")
}

fn uninstall(sb: &Sb) -> Output {
    run(sb.scptrace().args(["uninstall", "--user"]), b"")
}

fn scp_available() -> bool {
    Path::new(REAL_SCP).is_file()
}

/// A real OpenSSH client upload of `src/a.txt` to `dst/` where the "remote"
/// command runs with `dir` first on its PATH (tests/clients/local-ssh).
fn upload_through_path(sb: &Sb, dir: &Path) -> Output {
    fs::write(sb.path().join("src/a.txt"), b"file a file a file a\n").unwrap();
    let local_ssh = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/local-ssh");
    let dst = format!("localhost:{}/", sb.path().join("dst").display());
    run(
        sb.cmd(REAL_SCP)
            .env("LOCAL_SSH_PATH", format!("{}:/usr/bin:/bin", dir.display()))
            .arg("-O")
            .arg("-S")
            .arg(&local_ssh)
            .arg("src/a.txt")
            .arg(dst),
        b"",
    )
}

#[test]
fn install_links_scp_and_records_real_scp_and_state() {
    let sb = Sb::new();
    let out = ok(&install(&sb));
    let link = sb.bindir().join("scp");
    assert_eq!(fs::read_link(&link).unwrap(), fs::canonicalize(bin()).unwrap());
    let config = fs::read_to_string(sb.config()).unwrap();
    assert!(config.contains(r#"real_scp = "/usr/bin/scp""#), "{config}");
    let state = fs::read_to_string(sb.state()).unwrap();
    assert!(state.contains("kind = \"link\""), "{state}");
    assert!(state.contains("kind = \"config_key\""), "{state}");
    assert!(out.contains("linked"), "{out}");
    assert!(out.contains("doctor"), "{out}");
    assert!(out.contains("command -v scp"), "{out}");

    // Again: nothing new to do, nothing new recorded.
    let again = ok(&install(&sb));
    assert!(again.contains("already in place"), "{again}");
    assert_eq!(fs::read_to_string(sb.state()).unwrap(), state);
}

// The tests below are parallel cases (one way of installing each, then the
// same transfer and the same checks of its transcript): their repeated lines
// are on purpose.

#[test]
fn installed_link_traces_a_legacy_upload() {
    if !scp_available() {
        eprintln!("skipped: no {REAL_SCP}");
        return;
    }
    let sb = Sb::new();
    ok(&install(&sb));
    ok(&upload_through_path(&sb, &sb.bindir()));
    assert_eq!(
        fs::read(sb.path().join("dst/a.txt")).unwrap(),
        b"file a file a file a\n"
    );
    let logs = sb.transcripts();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let t = fs::read_to_string(&logs[0]).unwrap();
    assert!(t.contains(">>> New command invocation: /usr/bin/scp -t "), "{t}");
    assert!(t.contains("I: C0644 21 a.txt\\n"), "{t}");
    assert!(t.contains("#: 0"), "{t}");
}

#[test]
fn install_refuses_to_replace_a_foreign_scp() {
    let sb = Sb::new();
    let link = sb.bindir().join("scp");
    fs::write(&link, b"#!/bin/sh\necho a real scp\n").unwrap();
    let out = install(&sb);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("already exists") && err.contains("regular file"),
        "{err}"
    );
    assert_eq!(fs::read(&link).unwrap(), b"#!/bin/sh\necho a real scp\n");
    assert!(!sb.state().exists() && !sb.config().exists(), "nothing changed");

    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("/usr/bin/scp", &link).unwrap();
    let out = install(&sb);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("a symlink to /usr/bin/scp"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("/usr/bin/scp"));
    assert!(!sb.state().exists());
}

#[test]
fn uninstall_removes_exactly_what_install_added() {
    let sb = Sb::new();
    fs::create_dir_all(sb.config_dir()).unwrap();
    let before = "# mine\ndata = \"full\"   # keep this\n";
    fs::write(sb.config(), before).unwrap();
    fs::write(sb.bindir().join("other-tool"), b"x").unwrap();
    ok(&install(&sb));
    assert!(fs::read_to_string(sb.config()).unwrap().contains("real_scp"));

    let out = ok(&uninstall(&sb));
    assert!(out.contains("removed link"), "{out}");
    assert!(out.contains("removed real_scp"), "{out}");
    assert_eq!(fs::read_to_string(sb.config()).unwrap(), before);
    assert!(!sb.bindir().join("scp").exists());
    assert!(sb.bindir().join("other-tool").exists());
    assert!(!sb.state().exists());

    let out = ok(&uninstall(&sb));
    assert!(out.contains("nothing to undo"), "{out}");
}

#[test]
fn uninstall_restores_a_previous_real_scp_and_leaves_a_replaced_link() {
    let sb = Sb::new();
    fs::create_dir_all(sb.config_dir()).unwrap();
    let before = "real_scp = '/bin/scp'\nkeep = 9\n";
    fs::write(sb.config(), before).unwrap();
    let out = run(
        sb.scptrace()
            .args(["install", "--real", "/usr/bin/scp", "--dir"])
            .arg(sb.bindir()),
        b"",
    );
    ok(&out);
    // Someone replaces the link with their own file after install.
    let link = sb.bindir().join("scp");
    fs::remove_file(&link).unwrap();
    fs::write(&link, b"theirs").unwrap();

    let out = ok(&uninstall(&sb));
    assert!(out.contains("skipped"), "{out}");
    assert_eq!(fs::read(&link).unwrap(), b"theirs");
    assert_eq!(fs::read_to_string(sb.config()).unwrap(), before);
    assert!(!sb.state().exists());
}

const KEY1: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIANE4uYPozZ+Ur9d4bbDj4W43rJ0+o9D5vxsuAhlbWFW test@example";
const KEY1_FP: &str = "SHA256:VwYP8KYXVoUa7OSdl/nTzIJs+VPG3pI6d3NqGPhwno0";
const KEY2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEQn173/jVQt/X6ObZ94IRBTr3ShnM+O/qgIlXJ2BpZ9 other";

fn authorized_keys(sb: &Sb) -> PathBuf {
    sb.home().join(".ssh/authorized_keys")
}

/// An authorized_keys file with options on the key, a CRLF line, a comment
/// and a byte that is not UTF-8, mode 0600.
fn write_authorized_keys(sb: &Sb) -> Vec<u8> {
    let mut content = Vec::new();
    content.extend_from_slice(b"# my keys \xff\n");
    content.extend_from_slice(format!("{KEY2}\r\n").as_bytes());
    content.extend_from_slice(format!("no-pty,from=\"127.0.0.1,::1\" {KEY1} café\n").as_bytes());
    let p = authorized_keys(sb);
    fs::write(&p, &content).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    content
}

fn backups(sb: &Sb) -> Vec<PathBuf> {
    fs::read_dir(sb.home().join(".ssh"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("scptrace-backup-"))
        .collect()
}

fn check_forced_line(sb: &Sb, original: &[u8]) {
    let now = fs::read(authorized_keys(sb)).unwrap();
    let lines: Vec<&[u8]> = now.split(|&b| b == b'\n').collect();
    let orig: Vec<&[u8]> = original.split(|&b| b == b'\n').collect();
    assert_eq!(lines[0], orig[0]);
    assert_eq!(lines[1], orig[1]);
    let want = format!(
        "command=\"{} forced\",no-pty,from=\"127.0.0.1,::1\" {KEY1} café",
        fs::canonicalize(bin()).unwrap().display()
    );
    assert_eq!(text(lines[2]), want);
    let mode = fs::metadata(authorized_keys(sb)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let b = backups(sb);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(fs::read(&b[0]).unwrap(), original);
}

#[test]
fn authorized_key_by_fingerprint_keeps_options_and_backup_and_uninstall_restores() {
    let sb = Sb::new();
    let original = write_authorized_keys(&sb);
    let out = ok(&run(
        sb.scptrace().args(["install", "--authorized-key", KEY1_FP]),
        b"",
    ));
    assert!(out.contains("backup"), "{out}");
    check_forced_line(&sb, &original);

    let again = ok(&run(
        sb.scptrace().args(["install", "--authorized-key", KEY1_FP]),
        b"",
    ));
    assert!(again.contains("already runs scptrace forced"), "{again}");

    let out = ok(&uninstall(&sb));
    assert!(out.contains("restored the key line"), "{out}");
    assert_eq!(fs::read(authorized_keys(&sb)).unwrap(), original);
    assert!(
        backups(&sb).is_empty(),
        "the backup goes once the file is restored"
    );
    assert!(!sb.state().exists());
}

#[test]
fn authorized_key_by_line_in_another_file_and_by_pub_file() {
    let sb = Sb::new();
    let original = write_authorized_keys(&sb);
    // The line as `cat id_ed25519.pub` prints it (another comment), and a
    // file that is not the default one.
    let line = KEY1.replace("test@example", "laptop");
    let file = sb.path().join("keys");
    fs::rename(authorized_keys(&sb), &file).unwrap();
    let out = run(
        sb.scptrace()
            .args(["install", "--authorized-key", &line, "--authorized-keys"])
            .arg(&file),
        b"",
    );
    ok(&out);
    let now = text(&fs::read(&file).unwrap());
    assert!(now.contains("forced\",no-pty,"), "{now}");
    ok(&uninstall(&sb));
    assert_eq!(fs::read(&file).unwrap(), original);

    let sb = Sb::new();
    let original = write_authorized_keys(&sb);
    let pubfile = sb.path().join("id.pub");
    fs::write(&pubfile, format!("{KEY1}\n")).unwrap();
    ok(&run(
        sb.scptrace().arg("install").arg("--authorized-key").arg(&pubfile),
        b"",
    ));
    check_forced_line(&sb, &original);
    ok(&uninstall(&sb));
    assert_eq!(fs::read(authorized_keys(&sb)).unwrap(), original);
}

#[test]
fn authorized_key_refuses_another_forced_command_and_unknown_keys() {
    let sb = Sb::new();
    let content = format!("command=\"/usr/bin/backup-only\" {KEY1}\n{KEY2}\n");
    fs::write(authorized_keys(&sb), &content).unwrap();
    let out = run(sb.scptrace().args(["install", "--authorized-key", KEY1_FP]), b"");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already has a forced command"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        sb.scptrace().args([
            "install",
            "--authorized-key",
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ]),
        b"",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no line holds"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read_to_string(authorized_keys(&sb)).unwrap(), content);
    assert!(backups(&sb).is_empty());
    assert!(!sb.state().exists());
}

#[test]
fn forced_traces_an_scp_upload_and_the_file_arrives() {
    if !scp_available() {
        eprintln!("skipped: no {REAL_SCP}");
        return;
    }
    let sb = Sb::new();
    fs::write(sb.path().join("src/a.txt"), b"hello forced\n").unwrap();
    let dst = format!("localhost:{}/", sb.path().join("dst").display());
    let out = run(
        sb.cmd(REAL_SCP)
            .arg("-O")
            .arg("-S")
            .arg(sb.forced_ssh())
            .arg("src/a.txt")
            .arg(&dst),
        b"",
    );
    ok(&out);
    assert_eq!(fs::read(sb.path().join("dst/a.txt")).unwrap(), b"hello forced\n");
    let logs = sb.transcripts();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let t = fs::read_to_string(&logs[0]).unwrap();
    assert!(t.contains(">>> New command invocation: "), "{t}");
    assert!(t.contains("scp -t "), "{t}");
    assert!(t.contains("I: C0644 13 a.txt\\n"), "{t}");
    assert!(t.contains("#: 0"), "{t}");
}

#[test]
fn forced_runs_other_commands_untraced_as_the_shell_would() {
    let sb = Sb::new();
    let out = run(
        sb.scptrace().arg("forced").env(
            "SSH_ORIGINAL_COMMAND",
            "echo hi; echo \"forced=$SCPTRACE_FORCED\"",
        ),
        b"",
    );
    assert_eq!(ok(&out), "hi\nforced=1\n");
    let out = run(
        sb.scptrace()
            .arg("forced")
            .env("SSH_ORIGINAL_COMMAND", "cat; exit 3"),
        b"through\n",
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"through\n");
    // A client command (scp without -t/-f) is not a server: untraced too.
    let out = run(
        sb.scptrace()
            .arg("forced")
            .env("SSH_ORIGINAL_COMMAND", "scp 2>/dev/null; echo $?"),
        b"",
    );
    assert_eq!(ok(&out), "1\n");
    assert!(sb.transcripts().is_empty(), "{:?}", sb.transcripts());
}

#[test]
fn forced_without_a_command_starts_a_login_shell() {
    let sb = Sb::new();
    let out = run(sb.scptrace().arg("forced"), b"echo \"argv0=$0\"\n");
    assert_eq!(ok(&out), "argv0=-sh\n");
    assert!(sb.transcripts().is_empty());
}

#[test]
fn forced_scp_download_expands_glob_and_tilde_as_the_shell_would() {
    if !scp_available() {
        eprintln!("skipped: no {REAL_SCP}");
        return;
    }
    let sb = Sb::new();
    fs::create_dir_all(sb.home().join("files")).unwrap();
    fs::write(sb.home().join("files/x1.txt"), b"one\n").unwrap();
    fs::write(sb.home().join("files/x2.txt"), b"two\n").unwrap();
    fs::write(sb.home().join("files/y.dat"), b"not me\n").unwrap();
    let out = run(
        sb.cmd(REAL_SCP)
            .arg("-O")
            .arg("-S")
            .arg(sb.forced_ssh())
            .arg("localhost:~/files/*.txt")
            .arg("dst/"),
        b"",
    );
    ok(&out);
    assert_eq!(fs::read(sb.path().join("dst/x1.txt")).unwrap(), b"one\n");
    assert_eq!(fs::read(sb.path().join("dst/x2.txt")).unwrap(), b"two\n");
    assert!(!sb.path().join("dst/y.dat").exists());
    let logs = sb.transcripts();
    assert_eq!(logs.len(), 1);
    let t = fs::read_to_string(&logs[0]).unwrap();
    assert!(
        t.contains("O: C0644 4 x1.txt\\n") && t.contains("O: C0644 4 x2.txt\\n"),
        "{t}"
    );
}

#[test]
fn forced_with_the_stand_in_on_path_traces_once() {
    if !scp_available() {
        eprintln!("skipped: no {REAL_SCP}");
        return;
    }
    let sb = Sb::new();
    ok(&install(&sb));
    fs::write(sb.path().join("src/a.txt"), b"once\n").unwrap();
    let dst = format!("localhost:{}/", sb.path().join("dst").display());
    let path = format!("{}:/usr/bin:/bin", sb.bindir().display());
    let out = run(
        sb.cmd(REAL_SCP)
            .env("PATH", &path)
            .arg("-O")
            .arg("-S")
            .arg(sb.forced_ssh())
            .arg("src/a.txt")
            .arg(&dst),
        b"",
    );
    ok(&out);
    assert_eq!(fs::read(sb.path().join("dst/a.txt")).unwrap(), b"once\n");
    assert_eq!(sb.transcripts().len(), 1, "{:?}", sb.transcripts());
}

fn doctor(cmd: &mut Command, args: &[&str]) -> (Option<i32>, String) {
    let out = run(cmd.arg("doctor").args(args), b"");
    (out.status.code(), text(&out.stdout))
}

#[test]
fn doctor_says_ok_when_scp_on_path_is_the_stand_in() {
    let sb = Sb::new();
    ok(&install(&sb));
    let path = format!("{}:/usr/bin:/bin", sb.bindir().display());
    let (code, out) = doctor(sb.scptrace().env("PATH", &path), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("(scptrace: the stand-in)"), "{out}");
    assert!(out.contains("real scp:       /usr/bin/scp"), "{out}");
    assert!(out.contains(": writable"), "{out}");
    assert!(out.contains("-O"), "the OpenSSH 9 caveat: {out}");
    assert!(out.contains("ok: "), "{out}");
    assert!(!out.contains("problem:"), "{out}");
    // Each setting with its origin.
    assert!(out.contains(&sb.config().display().to_string()), "{out}");
    assert!(out.contains("install record: "), "{out}");

    let (code, json) = doctor(sb.scptrace().env("PATH", &path), &["--format", "json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["would_trace"], true);
    assert_eq!(v["traced_by"], "stand-in");
    assert_eq!(v["log_dir"]["writable"], true);
    let real_scp = v["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "real_scp")
        .unwrap();
    assert_eq!(real_scp["origin"], sb.config().display().to_string());
}

#[test]
fn doctor_reports_each_problem_with_a_hint() {
    let sb = Sb::new();
    // The log directory would be under a regular file, and scp on PATH is the real one.
    fs::write(sb.home().join(".state"), b"not a directory").unwrap();
    let (code, out) = doctor(&mut sb.scptrace(), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("NOT WRITABLE"), "{out}");
    let problems: Vec<&str> = out.lines().filter(|l| l.starts_with("problem: ")).collect();
    assert_eq!(problems.len(), 2, "{out}");
    assert!(problems.iter().any(|p| p.contains("not scptrace")), "{out}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("transcripts cannot be written")),
        "{out}"
    );
    let hints = out
        .lines()
        .filter(|l| l.trim_start().starts_with("hint: "))
        .count();
    assert_eq!(hints, 2, "{out}");

    let (code, json) = doctor(&mut sb.scptrace(), &["--format", "json"]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["would_trace"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 2);
}

#[test]
fn doctor_through_forced_knows_the_session_is_traced() {
    let sb = Sb::new();
    // What `ssh -i KEY HOST scptrace doctor` runs with command="scptrace forced" on the key.
    let cmd = format!("'{}' doctor", bin().display());
    let out = run(sb.scptrace().arg("forced").env("SSH_ORIGINAL_COMMAND", &cmd), b"");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("came through `scptrace forced`"), "{stdout}");
    assert!(stdout.contains("traced by `scptrace forced`"), "{stdout}");
}

/// The whole way 3 of docs/deploying.md through a real sshd (the loopback
/// harness of `sshd.rs`): `install --authorized-key` on the key the client
/// logs in with, then a legacy upload is traced and arrives, a shell command
/// and an SFTP transfer (sshd's `internal-sftp`, run as the sftp-server
/// binary) run untraced, `doctor` over ssh says the session is traced, and
/// `uninstall` gives back the authorized_keys file byte for byte.
#[test]
fn install_authorized_key_then_forced_through_a_real_sshd() {
    use crate::sshd::{Sshd, SshdOpts};
    let sshd = crate::or_skip!(Sshd::start(SshdOpts::default()));
    let keys = sshd.dir().join("authorized_keys");
    let original = fs::read(&keys).unwrap();
    let pubkey = sshd.dir().join("client_ed25519.pub");
    let scptrace = || {
        let mut c = sshd.command(bin());
        c.env("PATH", "/usr/bin:/bin").env("SHELL", "/bin/sh");
        c
    };
    ok(&run(
        scptrace()
            .args(["install", "--user", "--authorized-key"])
            .arg(&pubkey)
            .arg("--authorized-keys")
            .arg(&keys),
        b"",
    ));
    let now = text(&fs::read(&keys).unwrap());
    assert!(now.starts_with("command=\""), "{now}");

    let work = sshd.work();
    fs::write(work.join("up.txt"), b"through sshd and scptrace forced\n").unwrap();
    fs::create_dir(work.join("remote")).unwrap();
    let up = sshd.openssh_scp(&[
        work.join("up.txt").into_os_string(),
        sshd.remote(work.join("remote/")),
    ]);
    assert!(up.status.success(), "{}", up.stderr_text());
    assert_eq!(
        fs::read(work.join("remote/up.txt")).unwrap(),
        b"through sshd and scptrace forced\n"
    );
    let logs = sshd.transcripts();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let t = fs::read_to_string(&logs[0]).unwrap();
    assert!(
        t.contains("scp -t ") && t.contains("I: C0644 33 up.txt\\n"),
        "{t}"
    );

    let echo = sshd.ssh("echo hi");
    assert_eq!(text(&echo.stdout), "hi\n", "{}", echo.stderr_text());

    // OpenSSH 9's default protocol: an sftp subsystem request, its configured
    // command in SSH_ORIGINAL_COMMAND: traced too, decoded as SFTP.
    let mut sftp = sshd.command("/usr/bin/scp");
    sftp.args(sshd.scp_opts())
        .arg(work.join("up.txt"))
        .arg(sshd.remote(work.join("remote/sftp.txt")));
    let f = run(&mut sftp, b"");
    ok(&f);
    assert!(work.join("remote/sftp.txt").exists());

    let doc = sshd.ssh(&format!("'{}' doctor", bin().display()));
    let out = text(&doc.stdout);
    assert_eq!(doc.status.code(), Some(0), "{out}");
    assert!(out.contains("came through `scptrace forced`"), "{out}");
    let logs = sshd.transcripts();
    assert_eq!(logs.len(), 2, "the legacy upload and the SFTP one: {logs:?}");
    let sftp_log = logs
        .iter()
        .map(|l| fs::read_to_string(l).unwrap())
        .find(|t| t.contains("# INIT version 3"))
        .expect("an SFTP transcript");
    assert!(
        sftp_log.contains("# OPEN id=") && sftp_log.contains("sftp.txt"),
        "{sftp_log}"
    );

    ok(&run(scptrace().args(["uninstall", "--user"]), b""));
    assert_eq!(fs::read(&keys).unwrap(), original);
}

/// Issue 13: the printed `ssh -i KEY HOST scptrace doctor` failed with
/// "command not found" when scptrace is not on the session's PATH. The hint
/// names the binary so that the session finds it; run as printed, through
/// the forced command, it reaches doctor. install also says where the
/// transcripts go.
#[test]
fn authorized_key_hint_runs_doctor_where_scptrace_is_not_on_path() {
    let sb = Sb::new();
    write_authorized_keys(&sb);
    let out = ok(&run(
        sb.scptrace().args(["install", "--authorized-key", KEY1_FP]),
        b"",
    ));
    assert!(
        out.contains(&format!("Transcripts go to {}", sb.logs().display())),
        "{out}"
    );
    let hint = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("ssh -i KEY HOST "))
        .unwrap_or_else(|| panic!("no ssh -i hint:\n{out}"));
    let remote = hint.split("  #").next().unwrap().trim();
    assert!(remote.ends_with(" doctor"), "{remote}");
    // The client's `ssh -i KEY HOST REMOTE`, as sshd runs it for that key.
    let mut session = sb.cmd(sb.forced_ssh());
    session.args(["-i", "KEY", "HOST", remote]);
    let r = run(&mut session, b"");
    let said = format!("{}{}", text(&r.stdout), text(&r.stderr));
    assert_ne!(r.status.code(), Some(127), "{remote}: {said}");
    assert!(said.contains("scptrace forced"), "{remote}: {said}");
}

/// Every entry under `root`: its path, and for a file its mode and bytes,
/// for a symlink its target, for a directory its mode (and mtime, so an
/// entry created and removed again shows too).
fn tree(root: &Path) -> Vec<(PathBuf, String)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        let what = if m.file_type().is_symlink() {
            format!("link {}", fs::read_link(&p).unwrap().display())
        } else if m.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            format!("dir {:o} {}.{}", m.mode(), m.mtime(), m.mtime_nsec())
        } else {
            format!("file {:o} {:?}", m.mode(), fs::read(&p).unwrap())
        };
        out.push((p, what));
    }
    out.sort();
    out
}

/// Issue 13: `install --dry-run` prints every change it would make and makes
/// none: the sandbox (home, config, authorized_keys, link directory) is the
/// same byte for byte; the real install then makes exactly those changes.
#[test]
fn install_dry_run_prints_the_changes_and_changes_nothing() {
    let sb = Sb::new();
    write_authorized_keys(&sb);
    let before = tree(sb.path());
    let dir = sb.bindir();
    let link = ok(&run(
        sb.scptrace()
            .args(["install", "--dry-run", "--real", REAL_SCP, "--dir"])
            .arg(&dir),
        b"",
    ));
    let key = ok(&run(
        sb.scptrace()
            .args(["install", "--dry-run", "--authorized-key", KEY1_FP]),
        b"",
    ));
    assert_eq!(tree(sb.path()), before, "--dry-run changed files:\n{link}\n{key}");
    for want in [
        "nothing is changed".to_string(),
        format!("set     real_scp = \"{REAL_SCP}\" in {}", sb.config().display()),
        format!("link    {}/scp -> ", dir.display()),
        format!("record  {}", sb.state().display()),
    ] {
        assert!(link.contains(&want), "no {want:?} in:\n{link}");
    }
    let keys = authorized_keys(&sb);
    for want in [
        format!("edit    {}, line ", keys.display()),
        "to start with command=".to_string(),
        format!("backup  {}.scptrace-backup-", keys.display()),
        format!("record  {}", sb.state().display()),
    ] {
        assert!(key.contains(&want), "no {want:?} in:\n{key}");
    }
    // Without --dry-run, the same changes happen.
    let real = ok(&run(
        sb.scptrace()
            .args(["install", "--real", REAL_SCP, "--dir"])
            .arg(&dir),
        b"",
    ));
    assert!(
        real.contains(&format!("linked  {}/scp -> ", dir.display())),
        "{real}"
    );
    assert!(fs::symlink_metadata(dir.join("scp")).is_ok());
    assert!(sb.state().exists() && sb.config().exists());
}

/// doctor's SFTP lines (issue 12 item 4), from the loopback sshd's own
/// configs (hermetic: `--sshd-config`), read by `sshd -T` as root, else the
/// file best-effort; and then through that sshd, over ssh, what a session
/// sees. The system's /etc/ssh is not read.
#[test]
fn doctor_reports_the_sftp_subsystem_and_whether_it_is_traced() {
    use crate::sshd::{Sshd, SshdOpts};
    let sb = Sb::new();
    let root = nix::unistd::geteuid().is_root();
    let wrapper = format!("{} sftp-server -- /usr/lib/openssh/sftp-server", bin().display());
    let traced = crate::or_skip!(Sshd::start(SshdOpts {
        sftp_subsystem: Some(wrapper.clone()),
        ..SshdOpts::default()
    }));
    let cfg = traced.dir().join("sshd_config");
    let sftp_lines = |out: &str| -> Vec<String> {
        let mut lines = out.lines().skip_while(|l| !l.starts_with("SFTP:"));
        let first = lines.next().unwrap_or("").to_string();
        std::iter::once(first)
            .chain(
                lines
                    .take_while(|l| l.starts_with("                "))
                    .map(str::to_string),
            )
            .collect()
    };
    let (_, out) = doctor(&mut sb.scptrace(), &["--sshd-config", cfg.to_str().unwrap()]);
    let s = sftp_lines(&out);
    assert_eq!(
        s[0].split("  (from ").next().unwrap(),
        format!("SFTP:           Subsystem sftp {wrapper}"),
        "{out}"
    );
    if root {
        assert!(s[0].contains("(from sshd -T -f "), "{out}");
    }
    assert!(
        s.last().unwrap().contains("traced by the Subsystem wrapper"),
        "{out}"
    );
    let (_, json) = doctor(
        &mut sb.scptrace(),
        &["--format", "json", "--sshd-config", cfg.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["sftp"]["traced_by"], "sftp-server");
    assert_eq!(v["sftp"]["subsystem"], wrapper.as_str());

    // ForceCommand forced with internal-sftp: traced by forced.
    let forced = crate::or_skip!(Sshd::start(SshdOpts {
        force_command: Some(format!("{} forced", bin().display())),
        ..SshdOpts::default()
    }));
    let cfg2 = forced.dir().join("sshd_config");
    let (_, out) = doctor(&mut sb.scptrace(), &["--sshd-config", cfg2.to_str().unwrap()]);
    let s = sftp_lines(&out);
    assert!(
        s[0].starts_with("SFTP:           Subsystem sftp internal-sftp  (from "),
        "{out}"
    );
    assert_eq!(
        s[1].trim(),
        format!("ForceCommand {} forced", bin().display()),
        "{out}"
    );
    assert!(s[2].contains("traced by `scptrace forced`"), "{out}");

    // A plain sftp-server; and a config sshd -T refuses (its host key is
    // missing), with no Subsystem line: read best-effort, and said so.
    let plain = sb.home().join("sshd_config.plain");
    fs::write(
        &plain,
        "HostKey /nonexistent/host_key\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
    )
    .unwrap();
    let (_, out) = doctor(&mut sb.scptrace(), &["--sshd-config", plain.to_str().unwrap()]);
    let s = sftp_lines(&out);
    assert!(s[0].contains("read best-effort"), "{out}");
    assert!(s[1].contains("SFTP sessions are NOT traced"), "{out}");
    let none = sb.home().join("sshd_config.none");
    fs::write(
        &none,
        "HostKey /nonexistent/host_key\nMatch User x\n  Subsystem sftp /y\n",
    )
    .unwrap();
    let (code, out) = doctor(&mut sb.scptrace(), &["--sshd-config", none.to_str().unwrap()]);
    let s = sftp_lines(&out);
    assert!(s[0].starts_with("SFTP:           Subsystem sftp (none)"), "{out}");
    assert!(s[1].contains("sshd runs nothing for an SFTP session"), "{out}");
    // SFTP is reported, not a problem of the legacy check: the exit status is as before.
    let (code_default, _) = doctor(&mut sb.scptrace(), &["--sshd-config", cfg.to_str().unwrap()]);
    assert_eq!(code, code_default);

    // Over ssh through the forced sshd: the session came through forced.
    let doc = forced.ssh(&format!(
        "'{}' doctor --sshd-config '{}'",
        bin().display(),
        cfg2.display()
    ));
    let out = text(&doc.stdout);
    assert!(
        sftp_lines(&out)
            .last()
            .unwrap()
            .contains("traced by `scptrace forced`"),
        "{out}"
    );
}
