//! The stand-in as a process among processes (issue 10, "Relay and stand-in
//! defects"): what it passes on to the real scp (signal dispositions), how it
//! copes with what its parent gave it (an ignored SIGCHLD, few fds), the loop
//! guard, and tracing that degrades instead of breaking. Each test compares
//! with plain scp run the same way.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};

use crate::util::*;

/// Runs `program args` under `sh` with SIGPIPE ignored (`trap '' PIPE`, as a
/// parent may), stdin `input`, and stdout a pipe the test closes after 100
/// bytes. Returns the exit status and stderr.
fn with_sigpipe_ignored(
    sb: &Sandbox,
    program: &std::path::Path,
    args: &[&str],
    input: &[u8],
) -> (ExitStatus, String) {
    with_sigpipe_ignored_env(sb, program, args, input, &[])
}

/// [`with_sigpipe_ignored`] with more environment.
fn with_sigpipe_ignored_env(
    sb: &Sandbox,
    program: &std::path::Path,
    args: &[&str],
    input: &[u8],
    env: &[(&str, &str)],
) -> (ExitStatus, String) {
    let mut cmd = sb.command_in("sh");
    cmd.arg("-c")
        .arg("trap '' PIPE; exec \"$@\"")
        .arg("sh")
        .arg(program)
        .args(args)
        .env("SCPTRACE_LOG_DIR", sb.logs())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().unwrap();
    // Written at once (it fits a pipe) and held open: the server must end by
    // the broken pipe, not by our EOF.
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, input).unwrap();
    let err = reader(child.stderr.take().unwrap());
    let mut out = child.stdout.take().unwrap();
    let mut head = [0u8; 100];
    out.read_exact(&mut head).unwrap();
    drop(out);
    let status = wait_deadline(&mut child, DEADLINE, &cmd);
    drop(stdin);
    (status, String::from_utf8_lossy(&err.join().unwrap()).into_owned())
}

/// Issue 10: a SIGPIPE its parent ignored stayed ignored for plain scp (a
/// write to the closed reader fails with EPIPE, exit 1), but std resets it
/// for a child and for an exec, so the traced scp died of SIGPIPE (141).
/// Both the traced server (`-f`) and the exec'd client must end as plain.
#[test]
fn ignored_sigpipe_is_passed_on() {
    let sb = Sandbox::new();
    fs::write(sb.p("big"), random_bytes(4 << 20, 10)).unwrap();
    let big = sb.p("big");
    let big = big.to_str().unwrap();
    // The server: `scp -f big`, its reader gone after 100 bytes.
    let (plain, plain_err) = with_sigpipe_ignored(&sb, REAL_SCP.as_ref(), &["-f", big], &[0; 4]);
    assert_eq!(plain.code(), Some(1), "plain scp -f: {plain:?} {plain_err}");
    let (traced, traced_err) = with_sigpipe_ignored(&sb, &sb.standin(), &["-f", big], &[0; 4]);
    assert_eq!(
        (traced.code(), traced.signal()),
        (plain.code(), plain.signal()),
        "traced scp -f: {traced_err}"
    );
    assert_eq!(traced_err, plain_err);
    let logs = files_in(&sb.logs());
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(Transcript::read(&logs[0]).exit(), 1);
    // The same server exec'd untraced by the stand-in (inside `forced`,
    // which traces already): the exec must keep the disposition too.
    let (execd, execd_err) = with_sigpipe_ignored_env(
        &sb,
        &sb.standin(),
        &["-f", big],
        &[0; 4],
        &[("SCPTRACE_ACTIVE", "1")],
    );
    assert_eq!(
        (execd.code(), execd.signal()),
        (plain.code(), plain.signal()),
        "exec'd scp -f: {execd_err}"
    );
    assert_eq!(execd_err, plain_err);
}

/// `scptrace run -o T -- PROGRAM…` started by a parent that ignores SIGCHLD.
fn run_with_sigchld_ignored(sb: &Sandbox, t: &std::path::Path, program: &[&str]) -> Command {
    let mut cmd = sb.command_in("python3");
    cmd.arg("-c")
        .arg(
            "import os, signal, sys\n\
             signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n\
             os.execv(sys.argv[1], sys.argv[1:])",
        )
        .arg(bin())
        .args(["run", "-o"])
        .arg(t)
        .arg("--")
        .args(program);
    cmd
}

/// Issue 10: with SIGCHLD ignored by the parent, a child that exited before
/// scptrace installed its handler was reaped by the kernel, and the wait
/// failed: `scptrace: No child processes (os error 10)`, exit 1, no `#:`
/// line. The child's status must come through every time (a race, so many
/// runs of a program that exits at once; before the fix about 1 in 10 lost).
#[test]
fn ignored_sigchld_and_a_fast_child_keep_the_childs_status() {
    let sb = Sandbox::new();
    for i in 0..40 {
        let t = sb.p(&format!("t{i}.log"));
        let mut cmd = run_with_sigchld_ignored(&sb, &t, &["/bin/false"]);
        let f = run(&mut cmd, Input::Null, DEADLINE);
        assert_eq!(f.stderr_text(), "", "run {i}");
        assert_eq!(f.status.code(), Some(1), "run {i}");
        assert_eq!(Transcript::read(&t).exit(), 1, "run {i}");
    }
    // The child itself still starts with SIGCHLD ignored, as plain.
    let mut cmd = run_with_sigchld_ignored(&sb, &sb.p("ign.log"), &["grep", "SigIgn", "/proc/self/status"]);
    let f = run(&mut cmd, Input::Null, DEADLINE);
    f.assert_success();
    let ign = String::from_utf8_lossy(&f.stdout);
    let bits = u64::from_str_radix(ign.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
    assert_ne!(
        bits & (1 << (17 - 1)),
        0,
        "SIGCHLD not ignored in the child: {ign}"
    );
}

/// `scp` on the client's PATH is the stand-in too, so the client goes
/// through it (exec'd), and its `-S` program runs the "remote" `scp -t`
/// locally, through the stand-in again: a legitimate chain.
fn client_through_the_standin(sb: &Sandbox, args: &[&str]) -> Finished {
    let path = format!(
        "{}:{}",
        sb.standin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = sb.command_in(sb.standin());
    c.arg("-O")
        .arg("-S")
        .arg(client("local-ssh"))
        .args(args)
        .env("PATH", &path)
        .env("LOCAL_SSH_PATH", &path)
        .env("SCPTRACE_LOG_DIR", sb.logs());
    run(&mut c, Input::Null, DEADLINE)
}

/// Issue 10: the loop guard took that chain for a loop. The client, exec'd
/// with `SCPTRACE_HOP` set to its pid, started the server stand-in as its
/// `-S` program's exec, whose parent is that pid: "the real scp resolved to
/// scptrace again", and the upload failed. Now it goes through, traced once
/// (the server side); a true loop is still caught (tap::loop_guard_*).
#[test]
fn loop_guard_lets_a_client_through_the_standin_reach_a_server_through_it() {
    let sb = Sandbox::new();
    let data = random_bytes(100_000, 3);
    fs::write(sb.p("a"), &data).unwrap();
    fs::create_dir(sb.p("up")).unwrap();
    let f = client_through_the_standin(&sb, &["a", "localhost:up/"]);
    assert_eq!(f.stderr_text(), "");
    f.assert_success();
    assert_eq!(fs::read(sb.p("up/a")).unwrap(), data);
    // And a download the same way.
    let f = client_through_the_standin(&sb, &["localhost:up/a", "b"]);
    assert_eq!(f.stderr_text(), "");
    f.assert_success();
    assert_eq!(fs::read(sb.p("b")).unwrap(), data);
    let logs = files_in(&sb.logs());
    assert_eq!(logs.len(), 2, "{logs:?}");
    for log in logs {
        let t = Transcript::read(&log);
        assert!(
            t.invocation().contains(" -t ") || t.invocation().contains(" -f "),
            "{}",
            t.invocation()
        );
        assert_eq!(t.exit(), 0);
    }
}

/// Issue 10: `-o FILE` over an existing 0644 file truncated it in place and
/// kept 0644, so the transcript was readable by everyone. Now a new 0600 file
/// replaces it; a FIFO or a device is still written as it is.
#[test]
fn output_file_over_an_existing_readable_file_is_private() {
    use std::os::unix::fs::MetadataExt;
    let sb = Sandbox::new();
    let t = sb.p("t.log");
    fs::write(
        &t,
        "an older, longer file that the transcript replaces\n".repeat(100),
    )
    .unwrap();
    set_mode(&t, 0o644);
    let mut cmd = sb.command_in(bin());
    cmd.args(["run", "-o"]).arg(&t).args(["--", "/bin/echo", "hi"]);
    let f = run(&mut cmd, Input::Null, DEADLINE);
    f.assert_success();
    assert_eq!(f.stdout, b"hi\n");
    assert_eq!(fs::metadata(&t).unwrap().mode() & 0o7777, 0o600);
    let text = fs::read_to_string(&t).unwrap();
    assert!(!text.contains("an older"), "{text}");
    assert_eq!(Transcript::read(&t).exit(), 0);
    // Nothing left behind in the directory but the transcript.
    let names: Vec<_> = fs::read_dir(sb.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("t.log"))
        .collect();
    assert_eq!(names, ["t.log"]);
    // A new file: 0600 as before.
    let n = sb.p("new.log");
    let mut cmd = sb.command_in(bin());
    cmd.args(["run", "-o"]).arg(&n).args(["--", "/bin/true"]);
    run(&mut cmd, Input::Null, DEADLINE).assert_success();
    assert_eq!(fs::metadata(&n).unwrap().mode() & 0o7777, 0o600);
}

/// Runs `program -t dst` under `ulimit -n N`, one file on stdin: (stdout,
/// stderr, exit code, the file as it arrived).
fn upload_with_fd_limit(
    sb: &Sandbox,
    program: &std::path::Path,
    n: u32,
) -> (Vec<u8>, String, Option<i32>, Option<Vec<u8>>) {
    let dst = sb.p("dst");
    let _ = fs::remove_dir_all(&dst);
    fs::create_dir(&dst).unwrap();
    let input = sb.p("upload.in");
    fs::write(&input, b"C0644 6 f\nhello\n\0").unwrap();
    let mut cmd = sb.command_in("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {n} && exec \"$@\""))
        .arg("sh")
        .arg(program)
        .args(["-t", "dst"])
        .env("SCPTRACE_LOG_DIR", sb.logs());
    let f = run(&mut cmd, Input::File(&input), DEADLINE);
    (
        f.stdout.clone(),
        f.stderr_text(),
        f.status.code(),
        fs::read(dst.join("f")).ok(),
    )
}

/// Issue 10: with few fds (`ulimit -n 8`) the stand-in failed half-way,
/// `scptrace: cannot run /usr/bin/scp: Too many open files`, and nothing was
/// uploaded. Tracing that cannot be set up falls back to exec'ing the real
/// scp untraced with one warning, so every limit behaves as plain scp does.
#[test]
fn too_few_fds_run_the_real_scp_untraced() {
    let sb = Sandbox::new();
    let mut fell_back = 0;
    for n in 5..=14 {
        let plain = upload_with_fd_limit(&sb, REAL_SCP.as_ref(), n);
        assert_eq!(plain.1, "", "plain scp under ulimit -n {n}");
        let traced = upload_with_fd_limit(&sb, &sb.standin(), n);
        assert_eq!(traced.0, plain.0, "stdout under ulimit -n {n}: {}", traced.1);
        assert_eq!(traced.2, plain.2, "exit code under ulimit -n {n}: {}", traced.1);
        assert_eq!(traced.3, plain.3, "the file under ulimit -n {n}: {}", traced.1);
        if !traced.1.is_empty() {
            assert_eq!(traced.1.lines().count(), 1, "{}", traced.1);
            assert!(
                traced.1.starts_with("scptrace: warning: ")
                    && traced.1.contains("Too many open files")
                    && traced.1.contains("running /usr/bin/scp untraced"),
                "{}",
                traced.1
            );
            fell_back += 1;
        }
    }
    assert!(fell_back > 0, "no limit made tracing fail");
    assert_eq!(upload_with_fd_limit(&sb, &sb.standin(), 8).1.lines().count(), 1);
}

/// Issue 10: a log directory that is refused (here 0777) or an `-o` file that
/// cannot be created left scptrace relaying untraced; now the real scp is
/// exec'd untraced (one warning), so it runs exactly as plain: same pid as
/// the stand-in (a wrapper named as the real scp records its pid), the
/// upload byte-identical, nothing written to the refused place.
#[test]
fn a_refused_transcript_runs_the_real_scp_untraced() {
    let sb = Sandbox::new();
    let wrapper = sb.p("real-scp");
    fs::write(
        &wrapper,
        format!("#!/bin/sh\necho $$ > \"$PID_TO\"\nexec {REAL_SCP} \"$@\"\n"),
    )
    .unwrap();
    set_mode(&wrapper, 0o755);
    let open = sb.p("open-logs");
    fs::create_dir(&open).unwrap();
    set_mode(&open, 0o777);
    let data = random_bytes(300_000, 4);
    let mut input = format!("C0644 {} f\n", data.len()).into_bytes();
    input.extend_from_slice(&data);
    input.push(0);
    fs::write(sb.p("upload.in"), &input).unwrap();
    // (`run -o missing/t.log` was the second case; since issue 13 an
    // interactive mode refuses an -o it cannot create before anything runs,
    // exit 2: checked at the end here, and in tests/it/cli.rs.)
    let cases: [(&str, Vec<String>, std::path::PathBuf); 1] =
        [("log dir 0777", vec!["-t".into(), "dst".into()], sb.standin())];
    for (what, args, program) in cases {
        let dst = sb.p("dst");
        let _ = fs::remove_dir_all(&dst);
        fs::create_dir(&dst).unwrap();
        let pid_to = sb.p("pid");
        let mut cmd = sb.command_in(&program);
        cmd.args(&args)
            .env("SCPTRACE_LOG_DIR", &open)
            .env("SCPTRACE_REAL_SCP", &wrapper)
            .env("PID_TO", &pid_to)
            .stdin(fs::File::open(sb.p("upload.in")).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap();
        let out = reader(child.stdout.take().unwrap());
        let err = reader(child.stderr.take().unwrap());
        let status = wait_deadline(&mut child, DEADLINE, &cmd);
        let err = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
        assert_eq!(status.code(), Some(0), "{what}: {err}");
        assert_eq!(out.join().unwrap(), b"\0\0\0", "{what}");
        assert_eq!(fs::read(dst.join("f")).unwrap(), data, "{what}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(
            err.starts_with("scptrace: warning: ") && err.contains("untraced"),
            "{what}: {err}"
        );
        let pid = fs::read_to_string(&pid_to).unwrap();
        assert_eq!(
            pid.trim(),
            child.id().to_string(),
            "{what}: the real scp was not exec'd"
        );
        assert!(files_in(&open).is_empty(), "{what}");
    }
    let dst = sb.p("dst");
    let _ = fs::remove_dir_all(&dst);
    fs::create_dir(&dst).unwrap();
    let mut cmd = sb.command_in(bin());
    cmd.args(["run", "-o"])
        .arg(sb.p("missing/t.log"))
        .arg("--")
        .arg(&wrapper)
        .args(["-t", "dst"])
        .env("PID_TO", sb.p("pid-run"));
    let f = run(&mut cmd, Input::File(&sb.p("upload.in")), DEADLINE);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
    assert!(
        f.stderr_text().contains("cannot create transcript"),
        "{}",
        f.stderr_text()
    );
    assert!(!sb.p("pid-run").exists(), "the program ran");
    assert!(!dst.join("f").exists());
}

/// Issue 10: a slow or blocked transcript destination stalled the transfer
/// (the relay waited in `write(2)` on the transcript): a FIFO reader pausing
/// 6 s made a 0.02 s upload take 6 s. Here the reader of `-o FIFO` reads 16
/// bytes, then nothing until the 8 MiB upload is complete at its
/// destination (at most 20 s), then the rest. The upload must complete
/// while the reader waits (the order, not a timing, is asserted), and the
/// transcript must say that lines were dropped and still end with `#: 0`.
#[test]
fn a_blocked_transcript_destination_never_stalls_the_transfer() {
    use std::time::{Duration, Instant};
    let sb = Sandbox::new();
    let fifo = sb.p("t.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let data = random_bytes(8 << 20, 5);
    let mut input = format!("C0644 {} f\n", data.len()).into_bytes();
    input.extend_from_slice(&data);
    input.push(0);
    fs::write(sb.p("upload.in"), &input).unwrap();
    fs::create_dir(sb.p("dst")).unwrap();
    let (at, want) = (sb.p("dst/f"), data.len() as u64);
    let from = fifo.clone();
    let paused = std::thread::spawn(move || {
        // Opening blocks until scptrace opens its end.
        let mut r = fs::File::open(&from).unwrap();
        let mut got = vec![0u8; 16];
        r.read_exact(&mut got).unwrap();
        let start = Instant::now();
        let mut complete = false;
        while start.elapsed() < Duration::from_secs(20) {
            if fs::metadata(&at).is_ok_and(|m| m.len() == want) {
                complete = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        r.read_to_end(&mut got).unwrap();
        (complete, got)
    });
    let mut cmd = sb.command_in(bin());
    cmd.args(["run", "--data", "full", "-o"])
        .arg(&fifo)
        .args(["--", REAL_SCP, "-t", "dst"]);
    let f = run(&mut cmd, Input::File(&sb.p("upload.in")), DEADLINE);
    let (complete, transcript) = paused.join().unwrap();
    f.assert_success();
    assert!(
        complete,
        "the upload did not complete while the transcript's reader paused"
    );
    assert_eq!(f.stdout, b"\0\0\0");
    assert_eq!(fs::read(sb.p("dst/f")).unwrap(), data);
    let text = String::from_utf8_lossy(&transcript);
    let end = tail(&transcript);
    assert!(
        text.lines()
            .any(|l| l.starts_with("!! ") && l.contains("transcript lines dropped here")),
        "no line about the dropped lines: {end}"
    );
    assert!(text.trim_end().ends_with("#: 0"), "{end}");
    assert_eq!(f.stderr_text(), "");
}
