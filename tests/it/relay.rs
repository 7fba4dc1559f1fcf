//! The relay's defects of issue 10 ("Relay and stand-in defects"), each
//! against the real scp (`scp -t`/`-f`) through the built binary: stdio that
//! share one socket, signals after the child exited, and what an aborted
//! download counts. Each test failed before its fix (docs/relay.md).

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

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

/// Reads one byte from `peer`, which must be scp's `\0` ack.
fn ack(peer: &mut UnixStream, what: &str) {
    let mut b = [9u8];
    peer.read_exact(&mut b)
        .unwrap_or_else(|e| panic!("{what}: waiting for an ack: {e}"));
    assert_eq!(b, [0], "{what}: not an ack");
}

/// fds 0, 1 and 2 one socket (inetd style), and a program that writes to
/// stderr after its stdout is closed: a wrapper around the real `scp -t`.
/// scptrace passed the stdout EOF on with `shutdown(SHUT_WR)`, which also
/// cut stderr: the peer never got the wrapper's last line.
#[test]
fn one_socket_for_all_stdio_keeps_stderr_after_stdout_ends() {
    let sb = Sandbox::new();
    let script = "/usr/bin/scp -t dst; exec 1>&-; sleep 0.2; echo after scp >&2";
    let argv = ["/bin/sh", "-c", script];
    let mut results = Vec::new();
    for (cmd, dst) in [(plain(&sb, &argv), "plain"), (traced(&sb, &argv), "traced")] {
        let _ = fs::remove_dir_all(sb.p("dst"));
        fs::create_dir(sb.p("dst")).unwrap();
        let (mut child, mut peer) = spawn_on_socket(cmd, true);
        peer.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        ack(&mut peer, dst);
        peer.write_all(b"C0644 6 f\n").unwrap();
        ack(&mut peer, dst);
        peer.write_all(b"hello\n\0").unwrap();
        ack(&mut peer, dst);
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let r = peer.read_to_end(&mut rest);
        let st = wait_at_most(&mut child, Duration::from_secs(20));
        assert!(r.is_ok(), "{dst}: reading the rest: {r:?}");
        assert_eq!(fs::read(sb.p("dst/f")).unwrap(), b"hello\n", "{dst}");
        results.push((st.map(ExitStatus::into_raw), rest));
    }
    assert_eq!(results[0].1, b"after scp\n", "plain");
    assert_eq!(
        String::from_utf8_lossy(&results[1].1),
        String::from_utf8_lossy(&results[0].1),
        "what the peer got after the acks, traced vs plain"
    );
    assert_eq!(results[1].0, results[0].0, "wait status, traced vs plain");
    let t = Transcript::parse(&sb.p("T"));
    assert_eq!(t.stream('E'), b"after scp\n");
    assert!(
        !t.has_line(|l| l.contains("writing our stderr failed")),
        "{}",
        tail(&t.text)
    );
}

/// The program exits but a grandchild keeps its pipes (`sleep 6 &`): a
/// SIGTERM or SIGINT then ends the wait for their EOF, and scptrace dies of
/// it (default disposition) as a shell expects. It used to note the signal
/// and linger until the grandchild was done (6 s).
#[test]
fn signal_after_the_child_exited_ends_the_drain() {
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let sb = Sandbox::new();
        fs::create_dir(sb.p("dst")).unwrap();
        let mut cmd = traced(&sb, &["/bin/sh", "-c", "sleep 6 & exec /usr/bin/scp -t dst"]);
        let mut d = Dialog::start(&mut cmd);
        let pid = d.pid();
        d.expect(b"\0");
        d.send(b"C0644 3 f\nhi\n\0");
        d.expect(b"\0\0");
        d.close();
        // The real scp ends on EOF; wait until it has been reaped (only
        // `sleep`, now the init's, holds the pipes).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !children(pid).is_empty() {
            assert!(Instant::now() < deadline, "the real scp did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(100));
        let sent = Instant::now();
        kill(Pid::from_raw(pid as i32), sig).unwrap();
        let (st, _out, err) = d.wait_using(|c| {
            let st = wait_at_most(c, Duration::from_secs(10));
            st.unwrap_or_else(|| panic!("scptrace still running 10 s after {sig}"))
        });
        let took = sent.elapsed();
        // The sleep in the group, if scptrace left first.
        kill_group(pid);
        assert!(
            took < Duration::from_secs(4),
            "{sig}: scptrace took {took:?} (the grandchild holds the pipes for 6 s)"
        );
        assert_eq!(
            st.signal(),
            Some(sig as i32),
            "{sig}: {st:?}, stderr {}",
            String::from_utf8_lossy(&err)
        );
        assert_eq!(fs::read(sb.p("dst/f")).unwrap(), b"hi\n");
        let t = Transcript::parse(&sb.p("T"));
        assert_eq!(t.exit(), 0, "{sig}: the child's own status");
        assert!(
            t.has_line(|l| l.starts_with(">>> received ")
                && l.contains(sig.as_str())
                && l.contains("after the child exited")),
            "{sig}:\n{}",
            tail(&t.text)
        );
    }
}

/// A case's name, its options to `run`, and its environment.
type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);

/// Bytes waiting in a pipe (`FIONREAD`).
fn pipe_len(fd: &impl AsRawFd) -> usize {
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let r = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
    assert_eq!(r, 0, "FIONREAD");
    n as usize
}

/// A download whose reader stops after 100 bytes (`… | head -c100`): the
/// transcript counts the bytes delivered (read by the reader, or left in its
/// pipe when it went away), not the ones scptrace had read from the real scp
/// and could not write, and shows them before the note on the failure. It
/// used to count every byte read (the data line said up to 196608 of a
/// 65536-byte delivery, and with `--data full` its last line came after the
/// note).
#[test]
fn aborted_download_counts_delivered_bytes() {
    let big = random_bytes(3 << 20, 11);
    let cases: [Case; 3] = [
        ("default", &[], &[]),
        ("--data full", &["--data", "full"], &[]),
        ("SCPTRACE_SPLICE=0", &[], &[("SCPTRACE_SPLICE", "0")]),
    ];
    for (what, opts, env) in cases {
        let sb = Sandbox::new();
        fs::write(sb.p("BIG"), &big).unwrap();
        let mut cmd = sb.command_in(bin());
        cmd.arg("run")
            .args(opts)
            .args(["-o", "T", "--", "/usr/bin/scp", "-f", "BIG"]);
        cmd.envs(env.iter().copied());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let err = reader(child.stderr.take().unwrap());
        stdin.write_all(b"\0").unwrap();
        let mut record = Vec::new();
        while !record.ends_with(b"\n") {
            let mut b = [0u8];
            out.read_exact(&mut b).unwrap();
            record.push(b[0]);
        }
        assert_eq!(record, b"C0644 3145728 BIG\n", "{what}");
        stdin.write_all(b"\0").unwrap();
        let mut head = [0u8; 100];
        out.read_exact(&mut head).unwrap();
        // Stop reading: wait for the pipe to fill and stay full.
        let mut last = (pipe_len(&out), Instant::now());
        let deadline = Instant::now() + Duration::from_secs(20);
        while last.1.elapsed() < Duration::from_millis(500) {
            assert!(Instant::now() < deadline, "{what}: the pipe never settled");
            std::thread::sleep(Duration::from_millis(20));
            let n = pipe_len(&out);
            if n != last.0 {
                last = (n, Instant::now());
            }
        }
        let delivered = (100 + last.0) as u64;
        drop(out); // the reader goes away
        let st = wait_deadline(&mut child, DEADLINE, &what);
        drop(stdin);
        let err = err.join().unwrap();
        assert_eq!(
            st.signal(),
            Some(13),
            "{what}: {st:?} {}",
            String::from_utf8_lossy(&err)
        );
        assert_eq!(&head[..], &big[..100], "{what}");
        let t = Transcript::parse(&sb.p("T"));
        assert_eq!(t.exit(), -13, "{what}");
        assert_eq!(
            t.data_bytes(),
            delivered,
            "{what}: the data lines count {} B, {delivered} B were delivered:\n{}",
            t.data_bytes(),
            tail(&t.text)
        );
        assert!(
            t.problems()
                .iter()
                .any(|p| p.contains(&format!("after {delivered} of the 3145728 bytes"))),
            "{what}: {:?}",
            t.problems()
        );
        if opts.contains(&"full") {
            let o = t.stream('O');
            assert_eq!(
                &o[record.len()..],
                &big[..delivered as usize],
                "{what}: the O: data"
            );
        }
        let lines = t.bare();
        let note = lines
            .iter()
            .position(|l| l.starts_with(">>> writing our stdout failed"))
            .unwrap_or_else(|| panic!("{what}: no note on the failed write:\n{}", tail(&t.text)));
        let last_o = lines.iter().rposition(|l| l.starts_with("O: ")).unwrap();
        assert!(
            last_o < note,
            "{what}: an O: line after the note:\n{}",
            tail(&t.text)
        );
    }
}
