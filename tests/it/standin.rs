//! The stand-in as a process among processes (issue 10, "Relay and stand-in
//! defects"): what it passes on to the real scp (signal dispositions), how it
//! copes with what its parent gave it (an ignored SIGCHLD, few fds), the loop
//! guard, and tracing that degrades instead of breaking. Each test compares
//! with plain scp run the same way.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

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
