//! scp's SFTP mode (issue 12, item 6) with the real programs: OpenSSH's scp
//! (no `-O`) and the real /usr/lib/openssh/sftp-server, through `scp -S
//! tests/clients/local-ssh` (which runs the subsystem's command line locally
//! through `sh -c`, as sshd does), traced three ways:
//!
//! - `scptrace record -- scp …`: the client's ssh leg;
//! - `scptrace sftp-server -- SERVER`: what sshd's `Subsystem sftp` runs;
//! - `scptrace forced` with `SSH_ORIGINAL_COMMAND` the sftp-server's path:
//!   what a ForceCommand gets for a subsystem request.
//!
//! Every traced run is compared with the same command run plain (the same
//! world in a second directory): the trees byte for byte, the exit status,
//! and stderr; then `scptrace check` must give the verdict a user expects
//! (clean for a good transfer, the one named finding for a fault). The fault
//! cases put `tests/faults/sftp_proxy.py` between the transcript and the
//! server. The loopback-sshd cases (`Subsystem` wrapper, ForceCommand, and
//! the clients scp, `sftp -b`, paramiko, asyncssh) are at the end.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::record::client_stderr;
use crate::util::*;

const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
/// Fixed times, so `-p` results compare exactly.
const T0: u64 = 1_700_000_000;

/// How the transfer is traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Record,
    SftpServer,
    Forced,
}

const ALL_VIAS: [Via; 3] = [Via::Record, Via::SftpServer, Via::Forced];

/// `'s'` for sh, with `'` inside spelled `'\''`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn proxy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faults/sftp_proxy.py")
}

/// The server command line with a fault proxy in front of the real sftp-server.
fn faulty(fault: &str) -> String {
    format!(
        "python3 {} {fault} -- {SFTP_SERVER}",
        sh_quote(&proxy().display().to_string())
    )
}

/// The files of one run: `home/` is the "remote" side (the sftp-server's
/// working directory, and `~`), `local/` the client's.
fn world(root: &Path) {
    let put = |rel: &str, bytes: &[u8]| {
        crate::util::put(&root.join(rel), bytes, 0o644, T0);
    };
    put("local/a.txt", b"file a, 21 bytes....\n");
    put("local/big.bin", &random_bytes(600_000, 1));
    put("local/tree/one.txt", &random_bytes(100, 2));
    put("local/tree/sub/two.txt", &random_bytes(70_000, 3));
    fs::create_dir_all(root.join("local/tree/empty")).unwrap();
    fs::create_dir_all(root.join("local/got")).unwrap();
    put("home/dst/old.txt", &random_bytes(3_000, 4));
    put("home/src/f.txt", &random_bytes(5_000, 5));
    put("home/src/tree/x.txt", &random_bytes(300, 6));
    put("home/src/tree/deeper/y.txt", &random_bytes(10, 7));
    put("home/notes.txt", b"notes in the home directory\n");
    set_mode(&root.join("local/tree/sub/two.txt"), 0o600);
    for d in [
        "local/tree/sub",
        "local/tree/empty",
        "local/tree",
        "home/src/tree/deeper",
        "home/src/tree",
    ] {
        set_time(&root.join(d), T0 + 100);
    }
}

/// One run of `scp -S local-ssh ARGS` in `root/home`, plain (`via` None) or traced.
struct Run {
    f: Finished,
    transcript: PathBuf,
}

fn scp(root: &Path, via: Option<Via>, server: &str, args: &[&str]) -> Run {
    let transcript = root.with_extension("log");
    let t = sh_quote(&transcript.display().to_string());
    let b = sh_quote(&bin().display().to_string());
    let server_line = match via {
        None | Some(Via::Record) => server.to_string(),
        Some(Via::SftpServer) => format!("{b} sftp-server -o {t} -- {server}"),
        Some(Via::Forced) => format!("SSH_ORIGINAL_COMMAND={} {b} forced -o {t}", sh_quote(server)),
    };
    let mut c = command_for(root, via);
    if via == Some(Via::Record) {
        c.arg("record").arg("-o").arg(&transcript).args(["--", REAL_SCP]);
    }
    c.arg("-S")
        .arg(client("local-ssh"))
        .args(args)
        .env("LOCAL_SSH_SFTP_SERVER", server_line);
    Run {
        f: run(&mut c, Input::Null, DEADLINE),
        transcript,
    }
}

/// scp itself, or scptrace for record; in `root/home`, with a private HOME.
fn command_for(root: &Path, via: Option<Via>) -> Command {
    let program = if via == Some(Via::Record) {
        bin()
    } else {
        PathBuf::from(REAL_SCP)
    };
    let mut c = command(program, &root.join("client-home"));
    c.current_dir(root.join("home"))
        .env("SHELL", "/bin/sh")
        .env("SCPTRACE_DATA", "head")
        .env("SCPTRACE_LOG_DIR", root.join("logs"));
    c
}

/// `scptrace check FILE`: its exit status and the violation lines (`!! name: …`),
/// without tracing problems.
fn check(t: &Path) -> (i32, Vec<String>, String) {
    let mut c = command(bin(), t.parent().unwrap());
    c.arg("check").arg(t).env("NO_COLOR", "1");
    let f = run(&mut c, Input::Null, DEADLINE);
    let out = String::from_utf8_lossy(&f.stdout).into_owned();
    let prefix = format!("{}: !! ", t.display());
    let lines = out
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|l| !l.ends_with("(a tracing problem)"))
        .map(str::to_string)
        .collect();
    (f.status.code().unwrap_or(-1), lines, out)
}

/// What one case must give.
struct Expect<'a> {
    exit: i32,
    /// The finding `check` must report (one line), or None: clean.
    finding: Option<&'a str>,
    /// Text that line must contain.
    finding_has: &'a [&'a str],
    /// Compare mtimes in this subtree of the world (`-p` cases).
    times_in: Option<&'a str>,
    /// The transport exits at once: OpenSSH's scp then either dies of
    /// SIGPIPE writing INIT (lostconn(): "lost connection", exit 1) or reads
    /// EOF first ("Connection closed", exit 255), by a race of its own that
    /// plain runs show too. Both count as the same outcome.
    transport_race: bool,
}

const CLEAN: Expect = Expect {
    exit: 0,
    finding: None,
    finding_has: &[],
    times_in: None,
    transport_race: false,
};

/// The client's exit code and stderr (scptrace's own lines left out); with
/// `transport_race`, scp's two ways of noticing a transport that exited at
/// once (see [`Expect::transport_race`]) are given as one: exit 255, and the
/// last line dropped.
fn outcome(f: &Finished, transport_race: bool) -> (Option<i32>, String) {
    let (mut code, mut err) = (f.status.code(), client_stderr(f));
    if transport_race {
        for (exit, last) in [(1, "lost connection\n"), (255, "Connection closed\n")] {
            if code == Some(exit) && err.ends_with(last) {
                err.truncate(err.len() - last.len());
                code = Some(255);
            }
        }
    }
    (code, err)
}

/// Runs `args` plain and traced by `via` in two fresh worlds; compares them and
/// checks the verdict. Returns the plain world's root and the traced run.
fn case(via: Via, server: &str, args: &[&str], want: &Expect) -> (tempfile::TempDir, Run) {
    let sb = tempfile::Builder::new()
        .prefix("scptrace-sftp-")
        .tempdir()
        .unwrap();
    let (a, b) = (sb.path().join("plain"), sb.path().join("traced"));
    world(&a);
    world(&b);
    // Without the ForceCommand, sshd would run the Subsystem command through
    // the user's passwd shell, as forced does: the plain run does the same.
    let plain_server = match via {
        // By its name, so that its argv[0] is the name, as sshd gives it.
        Via::Forced => format!(
            "exec {} -c {}",
            passwd_shell().rsplit('/').next().unwrap_or("sh"),
            sh_quote(server)
        ),
        _ => server.to_string(),
    };
    let p = scp(&a, None, &plain_server, args);
    let t = scp(&b, Some(via), server, args);
    let what = format!("{via:?} {args:?}");
    let (p_code, p_err) = outcome(&p.f, want.transport_race);
    let (t_code, t_err) = outcome(&t.f, want.transport_race);
    assert_eq!(p_code, Some(want.exit), "{what}: plain: {}", p.f.stderr_text());
    assert_eq!(t_code, p_code, "{what}: {}", t.f.stderr_text());
    assert_eq!(t_err, p_err, "{what}: stderr");
    assert_eq!(t.f.stdout, p.f.stdout, "{what}: stdout");
    assert_same_tree(&snapshot(&a), &snapshot(&b), false, &what);
    if let Some(sub) = want.times_in {
        assert_same_tree(&snapshot_of(&a, sub), &snapshot_of(&b, sub), true, &what);
    }
    let (code, found, out) = check(&t.transcript);
    // Every line reads back, and the last is the exit status.
    let tr = Transcript::parse(&t.transcript);
    let server_exit = tr.exit();
    if want.exit == 0 {
        assert_eq!(server_exit, 0, "{what}");
    }
    match want.finding {
        None => {
            assert_eq!(code, 0, "{what}: check is not clean:\n{out}");
            assert!(found.is_empty(), "{what}:\n{out}");
        }
        Some(name) => {
            assert_eq!(code, 1, "{what}:\n{out}");
            assert_eq!(found.len(), 1, "{what}: one root cause, one line:\n{out}");
            assert!(found[0].starts_with(&format!("{name}: ")), "{what}:\n{out}");
            for s in want.finding_has {
                assert!(found[0].contains(s), "{what}: {s:?} not in\n{out}");
            }
        }
    }
    (sb, t)
}

fn passwd_shell() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or("/bin/sh".into(), |u| u.shell.display().to_string())
}

fn text(p: &Path) -> String {
    String::from_utf8_lossy(&fs::read(p).unwrap()).into_owned()
}

/// The traced world (the plain one is the same).
fn traced(sb: &tempfile::TempDir) -> PathBuf {
    sb.path().join("traced")
}

fn sftp_server_present() -> bool {
    Path::new(SFTP_SERVER).exists() && Path::new(REAL_SCP).exists()
}

macro_rules! need_sftp_server {
    () => {
        if !sftp_server_present() {
            crate::sshd::skip_or_fail(&crate::sshd::Skip(format!(
                "no {SFTP_SERVER} or {REAL_SCP} (Debian openssh-sftp-server, openssh-client)"
            )));
            return;
        }
    };
}

#[test]
fn upload_one_file_and_a_big_one() {
    need_sftp_server!();
    for via in ALL_VIAS {
        let (sb, t) = case(
            via,
            SFTP_SERVER,
            &["../local/a.txt", "../local/big.bin", "localhost:dst/"],
            &CLEAN,
        );
        let w = traced(&sb);
        assert_eq!(
            fs::read(w.join("home/dst/a.txt")).unwrap(),
            fs::read(w.join("local/a.txt")).unwrap()
        );
        assert_eq!(
            fs::read(w.join("home/dst/big.bin")).unwrap(),
            fs::read(w.join("local/big.bin")).unwrap()
        );
        let tr = text(&t.transcript);
        assert!(
            tr.contains("# OPEN id=") && tr.contains("\"dst/big.bin\" WRITE|CREAT"),
            "{tr}"
        );
        // 600,000 bytes in WRITEs of at most 261,120 (the limits reply).
        assert!(tr.contains("off 522240 len 77760"), "{tr}");
    }
}

#[test]
fn upload_over_a_longer_file_truncates_it() {
    need_sftp_server!();
    for via in ALL_VIAS {
        let (sb, _) = case(
            via,
            SFTP_SERVER,
            &["../local/a.txt", "localhost:dst/old.txt"],
            &CLEAN,
        );
        let w = traced(&sb);
        assert_eq!(
            fs::read(w.join("home/dst/old.txt")).unwrap(),
            b"file a, 21 bytes....\n"
        );
    }
}

#[test]
fn download_one_file() {
    need_sftp_server!();
    for via in ALL_VIAS {
        let (sb, t) = case(
            via,
            SFTP_SERVER,
            &["localhost:src/f.txt", "../local/got/"],
            &CLEAN,
        );
        let w = traced(&sb);
        assert_eq!(
            fs::read(w.join("local/got/f.txt")).unwrap(),
            fs::read(w.join("home/src/f.txt")).unwrap()
        );
        let tr = text(&t.transcript);
        assert!(tr.contains("# DATA id=") && tr.contains("len 5000"), "{tr}");
        assert!(tr.contains("STATUS id=") && tr.contains(" EOF "), "{tr}");
    }
}

#[test]
fn recursive_trees_both_ways() {
    need_sftp_server!();
    for via in ALL_VIAS {
        let (sb, t) = case(
            via,
            SFTP_SERVER,
            &["-r", "../local/tree", "localhost:dst/"],
            &CLEAN,
        );
        let w = traced(&sb);
        assert_same_tree(
            &snapshot_of(&w, "local/tree"),
            &snapshot_of(&w, "home/dst/tree"),
            false,
            "-r up",
        );
        assert!(text(&t.transcript).contains("# MKDIR id="));
        let (sb, t) = case(
            via,
            SFTP_SERVER,
            &["-r", "localhost:src/tree", "../local/got/"],
            &CLEAN,
        );
        let w = traced(&sb);
        assert_same_tree(
            &snapshot_of(&w, "home/src/tree"),
            &snapshot_of(&w, "local/got/tree"),
            false,
            "-r down",
        );
        assert!(text(&t.transcript).contains("# READDIR id="));
    }
}

#[test]
fn preserve_times_and_modes_with_p() {
    need_sftp_server!();
    for via in ALL_VIAS {
        let up = Expect {
            times_in: Some("home/dst"),
            ..CLEAN
        };
        let (sb, t) = case(
            via,
            SFTP_SERVER,
            &["-p", "-r", "../local/tree", "localhost:dst/"],
            &up,
        );
        let w = traced(&sb);
        assert_same_tree(
            &snapshot_of(&w, "local/tree"),
            &snapshot_of(&w, "home/dst/tree"),
            true,
            "-p up",
        );
        assert!(text(&t.transcript).contains("# SETSTAT id="));
        let down = Expect {
            times_in: Some("local/got"),
            ..CLEAN
        };
        let (sb, _) = case(
            via,
            SFTP_SERVER,
            &["-p", "-r", "localhost:src/tree", "../local/got/"],
            &down,
        );
        let w = traced(&sb);
        assert_same_tree(
            &snapshot_of(&w, "home/src/tree"),
            &snapshot_of(&w, "local/got/tree"),
            true,
            "-p down",
        );
    }
}

#[test]
fn a_missing_remote_directory_and_a_missing_file() {
    need_sftp_server!();
    for via in ALL_VIAS {
        // Into a directory that does not exist: the OPEN fails, a status-error with its path.
        let want = Expect {
            exit: 1,
            finding: Some("status-error"),
            finding_has: &["OPEN", "\"nodir/sub/\"", "NO_SUCH_FILE"],
            times_in: None,
            transport_race: false,
        };
        let (_sb, t) = case(
            via,
            SFTP_SERVER,
            &["../local/a.txt", "localhost:nodir/sub/"],
            &want,
        );
        assert!(
            client_stderr(&t.f).contains("nodir/sub/"),
            "{}",
            t.f.stderr_text()
        );
        // A remote file that does not exist: scp's STATs are answered
        // NO_SUCH_FILE, lookups that found nothing; the server did nothing
        // wrong, so check is clean (scp's own stderr says the rest).
        let want = Expect { exit: 1, ..CLEAN };
        let (_sb, t) = case(
            via,
            SFTP_SERVER,
            &["localhost:src/missing.txt", "../local/got/"],
            &want,
        );
        assert!(
            t.f.stderr_text().contains("No such file or directory"),
            "{}",
            t.f.stderr_text()
        );
    }
}

#[test]
fn tilde_paths() {
    need_sftp_server!();
    let user = crate::sshd::user();
    let pw_home = nix::unistd::User::from_name(&user).unwrap().unwrap().dir;
    for via in ALL_VIAS {
        // `~/x`: scp sends it relative, to the server's start directory.
        let (sb, t) = case(
            via,
            SFTP_SERVER,
            &["localhost:~/notes.txt", "../local/got/"],
            &CLEAN,
        );
        assert_eq!(
            fs::read(traced(&sb).join("local/got/notes.txt")).unwrap(),
            b"notes in the home directory\n"
        );
        assert!(text(&t.transcript).contains("# LSTAT id=2 \"notes.txt\""));
        // `~user/…`: sent as expand-path@openssh.com, expanded by the server
        // with the user's passwd home; up from there to this world.
        let ups = "../".repeat(pw_home.components().count() - 1);
        let sb = tempfile::Builder::new()
            .prefix("scptrace-sftp-")
            .tempdir()
            .unwrap();
        let root = sb.path();
        let (a, b) = (root.join("plain"), root.join("traced"));
        world(&a);
        world(&b);
        let target = |w: &Path| {
            format!(
                "localhost:~{user}/{ups}{}/",
                w.join("home/dst").display().to_string().trim_start_matches('/')
            )
        };
        let p = scp(&a, None, SFTP_SERVER, &["../local/a.txt", &target(&a)]);
        let t = scp(&b, Some(via), SFTP_SERVER, &["../local/a.txt", &target(&b)]);
        p.f.assert_success();
        t.f.assert_success();
        assert_eq!(client_stderr(&t.f), client_stderr(&p.f));
        assert_same_tree(&snapshot(&a), &snapshot(&b), false, "~user");
        assert_eq!(
            fs::read(b.join("home/dst/a.txt")).unwrap(),
            b"file a, 21 bytes....\n"
        );
        let tr = text(&t.transcript);
        assert!(tr.contains("expand-path@openssh.com"), "{tr}");
        let (code, found, out) = check(&t.transcript);
        assert_eq!((code, found.len()), (0, 0), "{out}");
    }
}

// ---- faults, through tests/faults/sftp_proxy.py ------------------------------

/// The stale-tail corruption: a server that refuses FSETSTAT, and OpenSSH's
/// scp, which opened the file WRITE|CREAT without TRUNC and relied on
/// FSETSTAT {size} to truncate it: a 21-byte upload over a 3,000-byte file
/// leaves 3,000 bytes, the old tail after the new head, and scp exits 0.
#[test]
fn refused_fsetstat_leaves_the_old_tail_and_check_names_it() {
    need_sftp_server!();
    for via in [Via::Record, Via::SftpServer] {
        let want = Expect {
            exit: 0,
            finding: Some("stale-tail"),
            finding_has: &[
                "FSETSTAT",
                "\"dst/old.txt\"",
                "size to 21",
                "OP_UNSUPPORTED",
                "without TRUNC",
            ],
            times_in: None,
            transport_race: false,
        };
        let (sb, t) = case(
            via,
            &faulty("refuse-fsetstat"),
            &["../local/a.txt", "localhost:dst/old.txt"],
            &want,
        );
        assert_eq!(
            client_stderr(&t.f),
            format!("{REAL_SCP}: remote fsetstat: Operation unsupported\n")
        );
        // The file is wrong, plain and traced alike (the trees are equal).
        let w = traced(&sb);
        let got = fs::read(w.join("home/dst/old.txt")).unwrap();
        let old = random_bytes(3_000, 4);
        assert_eq!(got.len(), 3_000, "the old length stays");
        assert_eq!(&got[..21], b"file a, 21 bytes....\n");
        assert_eq!(&got[21..], &old[21..], "the old tail stays");
    }
    // With -O (legacy protocol, scp -t truncates itself) the same upload is right.
    let sb = tempfile::Builder::new()
        .prefix("scptrace-sftp-")
        .tempdir()
        .unwrap();
    world(sb.path());
    let mut c = command_for(sb.path(), None);
    c.args(["-O", "-S"])
        .arg(client("local-ssh"))
        .args(["../local/a.txt", "localhost:dst/old.txt"]);
    run(&mut c, Input::Null, DEADLINE).assert_success();
    assert_eq!(
        fs::read(sb.path().join("home/dst/old.txt")).unwrap(),
        b"file a, 21 bytes....\n"
    );
}

#[test]
fn a_banner_before_version_is_shell_output_with_its_text() {
    need_sftp_server!();
    for via in [Via::Record, Via::SftpServer] {
        let want = Expect {
            exit: 255,
            finding: Some("not-sftp"),
            finding_has: &["Welcome to the build host!", "1466264675"],
            times_in: None,
            transport_race: false,
        };
        let (_sb, t) = case(
            via,
            &faulty("banner"),
            &["../local/a.txt", "localhost:dst/"],
            &want,
        );
        assert!(
            client_stderr(&t.f).contains("scp: Received message too long 1466264675\n"),
            "{}",
            t.f.stderr_text()
        );
    }
}

#[test]
fn no_subsystem_the_transport_exits_127() {
    need_sftp_server!();
    let missing = "/nonexistent/libexec/sftp-server";
    for via in [Via::Record, Via::Forced] {
        let want = Expect {
            exit: 255,
            finding: Some("no-reply"),
            finding_has: &["the server sent nothing", "INIT", "no subsystem"],
            times_in: None,
            transport_race: true,
        };
        let (_sb, t) = case(via, missing, &["../local/a.txt", "localhost:dst/"], &want);
        // dash (local-ssh's sh) says `sh: 1: PATH: not found`; forced runs
        // the passwd shell, as sshd would (bash: `No such file or directory`).
        let said = match via {
            Via::Forced if passwd_shell().ends_with("/bash") => {
                format!("bash: line 1: {missing}: No such file or directory")
            }
            Via::Forced => format!("{missing}: "),
            _ => format!("sh: 1: {missing}: not found"),
        };
        let err = client_stderr(&t.f);
        assert!(err.contains(&format!("{said}\n")), "{err}");
        let tr = Transcript::parse(&t.transcript);
        assert_eq!(tr.exit(), 127, "{}", text(&t.transcript));
        assert!(
            text(&t.transcript).contains(&format!("E: {said}")),
            "{}",
            text(&t.transcript)
        );
    }
}

#[test]
fn a_truncated_reply_is_one_finding_naming_the_unanswered_request() {
    need_sftp_server!();
    for via in [Via::Record, Via::SftpServer] {
        let want = Expect {
            exit: 255,
            finding: Some("truncated"),
            finding_has: &[
                "inside a HANDLE packet",
                "leaving 1 request unanswered",
                "OPEN id=3 \"dst/a.txt\"",
            ],
            times_in: None,
            transport_race: false,
        };
        let (_sb, t) = case(
            via,
            &faulty("cut-reply"),
            &["../local/a.txt", "localhost:dst/"],
            &want,
        );
        assert!(
            client_stderr(&t.f).contains("Connection closed"),
            "{}",
            t.f.stderr_text()
        );
    }
}

#[test]
fn a_reply_with_an_unknown_id() {
    need_sftp_server!();
    for via in [Via::Record, Via::SftpServer] {
        let want = Expect {
            exit: 255,
            finding: Some("unknown-id"),
            finding_has: &["EXTENDED_REPLY", "id 30583"],
            times_in: None,
            transport_race: false,
        };
        let (_sb, t) = case(
            via,
            &faulty("unknown-id"),
            &["../local/a.txt", "localhost:dst/"],
            &want,
        );
        assert!(
            client_stderr(&t.f).contains("ID mismatch (30583 != 1)"),
            "{}",
            t.f.stderr_text()
        );
    }
}

/// The proxy relays faithfully when told no fault (so the faults above are
/// the proxy's doing, not its relaying).
#[test]
fn the_proxy_without_a_fault_changes_nothing() {
    need_sftp_server!();
    let (sb, _) = case(
        Via::SftpServer,
        &faulty("none"),
        &["../local/big.bin", "localhost:dst/"],
        &CLEAN,
    );
    let w = traced(&sb);
    assert_eq!(
        fs::read(w.join("home/dst/big.bin")).unwrap(),
        fs::read(w.join("local/big.bin")).unwrap()
    );
}

// ---- over the loopback sshd ---------------------------------------------------

mod over_sshd {
    use std::fs;
    use std::path::{Path, PathBuf};

    use crate::sshd::{Skip, Sshd, SshdOpts};
    use crate::util::*;

    /// The SFTP clients driven over sshd.
    const CLIENTS: [&str; 4] = ["scp", "sftp -b", "paramiko", "asyncssh"];

    /// One client's upload or download: (put?, local file, remote file).
    fn transfer(sshd: &Sshd, client: &str, put: bool, local: &Path, remote: &Path) -> Result<Finished, Skip> {
        match client {
            "scp" => {
                let mut c = sshd.command(REAL_SCP);
                c.args(sshd.scp_opts());
                if put {
                    c.arg(local).arg(sshd.remote(remote));
                } else {
                    c.arg(sshd.remote(remote)).arg(local);
                }
                Ok(run(&mut c, Input::Null, DEADLINE))
            }
            "sftp -b" => {
                let batch = sshd.work().join("batch");
                let line = if put {
                    format!("put {} {}\n", local.display(), remote.display())
                } else {
                    format!("get {} {}\n", remote.display(), local.display())
                };
                fs::write(&batch, line).unwrap();
                let mut c = sshd.command("/usr/bin/sftp");
                c.args(sshd.scp_opts())
                    .arg("-b")
                    .arg(&batch)
                    .arg(format!("{}@127.0.0.1", sshd.user()));
                Ok(run(&mut c, Input::Null, DEADLINE))
            }
            "paramiko" | "asyncssh" => {
                let script = format!("{client}_sftp.py");
                let op = if put { "put" } else { "get" };
                let (src, dst) = if put { (local, remote) } else { (remote, local) };
                sshd.python_sftp(&script, op, src, dst)
            }
            other => panic!("no client {other}"),
        }
    }

    /// What a client did, with the sshd's directory spelled `DIR`.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        code: Option<i32>,
        stdout: String,
        stderr: String,
        file: Vec<u8>,
    }

    /// Upload then download with each client; per transfer the outcome and
    /// the transcripts it left (none when plain).
    fn round(sshd: &Sshd) -> Vec<(String, Outcome, Vec<PathBuf>)> {
        let w = sshd.work();
        let up = w.join("up.bin");
        let down = w.join("remote-down.bin");
        fs::write(&up, random_bytes(100_000, 11)).unwrap();
        fs::write(&down, random_bytes(70_000, 12)).unwrap();
        let dir = sshd.dir().display().to_string();
        let mut out = Vec::new();
        for client in CLIENTS {
            for put in [true, false] {
                let (local, remote) = if put {
                    (
                        up.clone(),
                        w.join(format!("remote-{}.bin", client.replace(' ', "-"))),
                    )
                } else {
                    (
                        w.join(format!("got-{}.bin", client.replace(' ', "-"))),
                        down.clone(),
                    )
                };
                let before = sshd.transcripts();
                let f = match transfer(sshd, client, put, &local, &remote) {
                    Ok(f) => f,
                    Err(skip) => {
                        crate::sshd::skip_or_fail(&skip);
                        continue;
                    }
                };
                let result = if put { &remote } else { &local };
                let o = Outcome {
                    code: f.status.code(),
                    stdout: String::from_utf8_lossy(&f.stdout).replace(&dir, "DIR"),
                    stderr: f.stderr_text().replace(&dir, "DIR"),
                    file: fs::read(result).unwrap_or_default(),
                };
                assert_eq!(o.code, Some(0), "{client} put={put}: {}", o.stderr);
                let new: Vec<PathBuf> = sshd
                    .transcripts()
                    .into_iter()
                    .filter(|t| !before.contains(t))
                    .collect();
                out.push((
                    format!("{client} {}", if put { "upload" } else { "download" }),
                    o,
                    new,
                ));
            }
        }
        out
    }

    fn compare(traced: &Sshd, plain: &Sshd, how: &str) {
        let p = round(plain);
        let t = round(traced);
        assert_eq!(p.len(), t.len());
        for ((name, po, pt), (_, to, tt)) in p.iter().zip(&t) {
            assert!(pt.is_empty(), "{name}: plain left transcripts {pt:?}");
            assert_eq!(to, po, "{how}: {name}: traced vs plain");
            assert!(!to.file.is_empty(), "{name}");
            assert_eq!(tt.len(), 1, "{how}: {name}: one transcript per session: {tt:?}");
            let tr = Transcript::parse(&tt[0]);
            let text = String::from_utf8_lossy(&tr.text).into_owned();
            assert!(text.contains("\t# INIT version 3"), "{name}: {text}");
            assert!(tr.problems().is_empty(), "{how}: {name}: {:?}", tr.problems());
            let mut c = crate::util::command(bin(), &traced.home());
            c.arg("check").arg(&tt[0]).env("NO_COLOR", "1");
            let f = run(&mut c, Input::Null, DEADLINE);
            assert_eq!(
                f.status.code(),
                Some(0),
                "{how}: {name}: {}",
                String::from_utf8_lossy(&f.stdout)
            );
            if std::env::var_os("SCPTRACE_SFTP_SHOW").is_some() {
                eprintln!("==== {how}: {name}\n{text}");
            }
        }
    }

    fn plain_sshd() -> Result<Sshd, Skip> {
        Sshd::start(SshdOpts {
            sftp_subsystem: Some("/usr/lib/openssh/sftp-server".into()),
            ..SshdOpts::default()
        })
    }

    /// `Subsystem sftp /path/scptrace sftp-server -- /usr/lib/openssh/sftp-server`.
    #[test]
    fn subsystem_wrapper_with_every_client() {
        let plain = crate::or_skip!(plain_sshd());
        let traced = crate::or_skip!(Sshd::start(SshdOpts {
            sftp_subsystem: Some(format!(
                "{} sftp-server -- /usr/lib/openssh/sftp-server",
                bin().display()
            )),
            ..SshdOpts::default()
        }));
        compare(&traced, &plain, "Subsystem wrapper");
    }

    /// `ForceCommand /path/scptrace forced`, with sshd's `Subsystem sftp
    /// internal-sftp` (forced runs the sftp-server binary for it).
    #[test]
    fn force_command_forced_with_every_client() {
        let plain = crate::or_skip!(plain_sshd());
        let traced = crate::or_skip!(Sshd::start(SshdOpts {
            force_command: Some(format!("{} forced", bin().display())),
            ..SshdOpts::default()
        }));
        compare(&traced, &plain, "ForceCommand forced");
    }
}
