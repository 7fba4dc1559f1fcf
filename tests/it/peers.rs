//! The scripted peers of `tests/peers/` (issue 9): small Python clients that
//! speak the SCP protocol to the real `scp -t`/`scp -f`, each with one
//! deliberate misbehaviour that real implementations show (pipelining, acks
//! sent ahead, a fatal error at once, odd ack bytes, repeated warnings).
//!
//! Each runs twice, plain and through `scptrace run`: the relay must change
//! nothing (same files, same exit status, same stderr, same bytes from scp),
//! and `scptrace check` must give exactly the verdicts below, one line per
//! root cause. These are the verdicts of the per-direction decoder that
//! issue 9 asks for; the decoder before it gets most of them wrong (see
//! `tests/ref/BEFORE.md`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::or_skip;
use crate::sshd::{self, Skip};
use crate::util::{self, DEADLINE, Finished, Input, Transcript};

/// One scripted peer and the verdict `check` must give on its transcript.
struct Peer {
    /// The script in `tests/peers/`.
    script: &'static str,
    /// The violation names, each on exactly one `!!` line.
    violations: &'static [&'static str],
}

impl Peer {
    /// At most this many lines of `check` output in all: the violations and
    /// one more (a summary, or the one line of a clean session).
    fn max_lines(&self) -> usize {
        self.violations.len() + 1
    }
}

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

fn python3() -> Result<PathBuf, Skip> {
    if !Path::new(util::REAL_SCP).exists() {
        return Err(Skip(format!(
            "no {} (Debian package openssh-client)",
            util::REAL_SCP
        )));
    }
    sshd::which("python3")
        .ok_or_else(|| Skip("no python3 (Debian package python3): the scripted peers need it".into()))
}

/// What one run of a peer left in its work directory.
struct Run {
    dir: PathBuf,
    peer: Finished,
    result: serde_json::Value,
}

impl Run {
    fn field(&self, key: &str) -> &serde_json::Value {
        &self.result[key]
    }
}

fn run_peer(py: &Path, peer: &Peer, dir: &Path, traced: bool) -> Run {
    let mut c = util::command(py, dir);
    c.arg(peers_dir().join(peer.script)).args([
        "--scp",
        util::REAL_SCP,
        "--timeout",
        "30",
        "--step-timeout",
        "10",
    ]);
    if traced {
        c.arg("--scptrace").arg(util::bin());
    } else {
        c.arg("--plain");
    }
    c.arg(dir.join("work"));
    let f = util::run(&mut c, Input::Null, DEADLINE);
    let path = dir.join("work/result.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: no {}: {e}\npeer stderr: {}",
            peer.script,
            path.display(),
            f.stderr_text()
        )
    });
    Run {
        dir: dir.join("work"),
        peer: f,
        result: serde_json::from_str(&text).unwrap(),
    }
}

/// The name of a `!! name: sentence` line (after any `FILE: ` prefix).
pub fn violation_name(line: &str) -> Option<&str> {
    let rest = &line[line.find("!! ")? + 3..];
    Some(rest.split(':').next().unwrap_or(rest).trim())
}

fn check_peer(peer: Peer) {
    let py = or_skip!(python3());
    let tmp = tempfile::Builder::new()
        .prefix("scptrace-peers-")
        .tempdir()
        .unwrap();
    let what = peer.script;

    let plain = run_peer(&py, &peer, &tmp.path().join("plain"), false);
    assert!(
        plain.peer.status.success(),
        "{what} --plain: the real scp did not answer as the script expects ({:?}):\n{}\nresult: {}",
        plain.peer.status,
        plain.peer.stderr_text(),
        plain.result
    );
    let traced = run_peer(&py, &peer, &tmp.path().join("traced"), true);
    let transcript_path = traced.dir.join("transcript.log");
    let transcript_text = std::fs::read_to_string(&transcript_path).unwrap_or_default();

    // The relay changed nothing the peer or the files can see.
    assert_eq!(
        plain.peer.status,
        traced.peer.status,
        "{what}: the peer's verdict on the conversation, plain vs traced\n{}\n{transcript_text}",
        traced.peer.stderr_text()
    );
    for key in ["exit", "stderr", "received"] {
        assert_eq!(
            plain.field(key),
            traced.field(key),
            "{what}: scp's {key}, plain vs traced\n{transcript_text}"
        );
    }
    util::assert_same_tree(
        &util::snapshot(&plain.dir.join("dst")),
        &util::snapshot(&traced.dir.join("dst")),
        false,
        &format!("{what}: dst/, plain vs traced"),
    );

    // The verdict: exactly the expected names, one line each, few lines.
    let mut c = Command::new(util::bin());
    c.current_dir(&traced.dir)
        .args(["check", "--color", "never", "transcript.log"]);
    let f = util::run(&mut c, Input::Null, DEADLINE);
    let report = format!("{}{}", String::from_utf8_lossy(&f.stdout), f.stderr_text());
    let context = format!("\n--- scptrace check:\n{report}--- transcript:\n{transcript_text}");
    let mut got: Vec<&str> = report.lines().filter_map(violation_name).collect();
    got.sort_unstable();
    let mut want = peer.violations.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{what}: the violations check reports{context}");
    let lines = report.lines().count();
    assert!(
        lines <= peer.max_lines(),
        "{what}: check printed {lines} lines, at most {} expected{context}",
        peer.max_lines()
    );
    let code = if peer.violations.is_empty() { 0 } else { 1 };
    assert_eq!(
        f.status.code(),
        Some(code),
        "{what}: check's exit status{context}"
    );

    // The live transcript flags the same, and nothing else.
    let t = Transcript::read(&transcript_path);
    let mut live: Vec<&str> = t
        .bare()
        .into_iter()
        .filter(|l| l.starts_with("!! "))
        .filter_map(violation_name)
        .collect();
    live.sort_unstable();
    assert_eq!(live, want, "{what}: the transcript's own !! lines{context}");
}

/// Sends its first C record before reading the greeting and every later
/// message right after reading the reply before last: one pipelining
/// source, reported once.
#[test]
fn late_ack_upload() {
    check_peer(Peer {
        script: "late_ack_upload.py",
        violations: &["data-before-ack"],
    });
}

/// Every `\0` of a tree download in scp's stdin before it starts: one
/// peer that acks ahead, not one complaint per ack.
#[test]
fn acks_up_front_download() {
    check_peer(Peer {
        script: "acks_up_front_download.py",
        violations: &["acks-ahead"],
    });
}

/// `\x02go away\n` before the greeting is read: the greeting is an ack (it
/// is written at scp's start, whatever the relay read first), the `\x02`
/// line the source's fatal error, and nothing comes after an end.
#[test]
fn fatal_at_once() {
    check_peer(Peer {
        script: "fatal_at_once.py",
        violations: &[],
    });
}

/// Acks of `\0\n`: OpenSSH takes the `\n` as the first byte of an error
/// message and exits; one bad ack, named by the byte scp choked on.
#[test]
fn ack_extra_bytes_download() {
    check_peer(Peer {
        script: "ack_extra_bytes_download.py",
        violations: &["bad-ack"],
    });
}

/// Two warnings for one C record (pre-8.3 OpenSSH, dropbear): one extra
/// reply; that scp then takes it as the next file's reply is its
/// consequence.
#[test]
fn two_warnings_download() {
    check_peer(Peer {
        script: "two_warnings_download.py",
        violations: &["extra-reply"],
    });
}

/// dropbear's sink: an ack for an `E`, then a warning for the same `E`.
/// Everything after (a T skipped, replies one record late) follows from it.
#[test]
fn dropbear_extra_warning() {
    check_peer(Peer {
        script: "dropbear_extra_warning.py",
        violations: &["extra-reply"],
    });
}

/// A C record, its data and `\0` at once, to a sink that refuses the file:
/// the source did not wait (provably: all of it was read before the
/// greeting); OpenSSH's "expected control record" is what it made of the
/// data, not a second root cause.
#[test]
fn refused_pipelined_upload() {
    check_peer(Peer {
        script: "refused_pipelined_upload.py",
        violations: &["data-before-ack"],
    });
}
