//! The relay's defects of issue 10 ("Relay and stand-in defects"), each
//! against the real scp (`scp -t`/`-f`) through the built binary: stdio that
//! share one socket, signals after the child exited, and what an aborted
//! download counts. Each test failed before its fix (docs/relay.md).

use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// Starts `cmd` (in its own process group) with its stdin and stdout one end
/// of a socketpair (as `scp -S` and sshd without a pty give them), and its
/// stderr too if `stderr_too` (inetd style; else discarded); returns it with
/// the other end, the peer's.
fn spawn_on_socket(mut cmd: Command, stderr_too: bool) -> (Child, UnixStream) {
    let (peer, ours) = UnixStream::pair().unwrap();
    let fd = |s: &UnixStream| Stdio::from(OwnedFd::from(s.try_clone().unwrap()));
    cmd.stdin(fd(&ours)).stdout(fd(&ours));
    cmd.stderr(if stderr_too { fd(&ours) } else { Stdio::null() });
    cmd.process_group(0);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // `cmd`, and with it our copies of the program's end, dropped here.
    drop(cmd);
    drop(ours);
    (child, peer)
}

/// Waits up to `limit` for `child`; `None` (after killing its group) if it
/// is still running then: a hang, which the caller reports.
fn wait_at_most(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > deadline {
            kill_group(child.id());
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn traced(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.command_in(bin());
    c.args(["run", "-o", "T", "--"]).args(args);
    c
}

fn plain(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.command_in(args[0]);
    c.args(&args[1..]);
    c
}

/// stdin and stdout one socketpair; the peer shuts down its reading side
/// before `scp -t` says ready, then sends a `C` record. Plain scp dies of
/// SIGPIPE on its first ack. scptrace's write to fd 1 fails with EPIPE; it
/// used to put fd 1's saved (blocking) flags back, which made the shared fd 0
/// blocking too, and then sat in `read(0)` with the real scp a zombie, for as
/// long as the peer kept the socket open.
#[test]
fn shared_socketpair_peer_stops_reading_does_not_hang() {
    let sb = Sandbox::new();
    fs::create_dir(sb.p("dst")).unwrap();
    let argv = ["/usr/bin/scp", "-t", "dst"];
    let mut results = Vec::new();
    for cmd in [plain(&sb, &argv), traced(&sb, &argv)] {
        let (mut child, mut peer) = spawn_on_socket(cmd, false);
        peer.shutdown(std::net::Shutdown::Read).unwrap();
        // Long enough for the real scp's ready ack to be written (and fail).
        std::thread::sleep(Duration::from_millis(300));
        // Plain scp is gone by now: the write may fail, that is fine.
        let _ = peer.write_all(b"C0644 5 f\n");
        // The peer holds the socket open: only scptrace's own exit ends this.
        let st = wait_at_most(&mut child, Duration::from_secs(10));
        drop(peer);
        results.push(st);
    }
    let [plain, traced] = [results[0], results[1]];
    assert_eq!(plain.map(|s| s.signal()), Some(Some(13)), "plain scp: {plain:?}");
    let traced = traced.expect("scptrace hung (still running 10 s after the peer stopped reading)");
    assert_eq!(
        traced.into_raw(),
        plain.unwrap().into_raw(),
        "traced {traced:?}, plain {plain:?}"
    );
    let t = Transcript::parse(&sb.p("T"));
    assert_eq!(t.exit(), -13);
    assert!(
        t.has_line(|l| l.starts_with(">>> writing our stdout failed (Broken pipe")),
        "{}",
        tail(&t.text)
    );
}
