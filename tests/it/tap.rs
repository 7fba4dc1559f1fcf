//! The core tap against the real thing (issue 2): `scptrace run`, the `scp`
//! stand-in under OpenSSH's own client (`scp -O -S`, no sshd), faults, and
//! the log files. Each test compares what passes through scptrace with what
//! passes without it, and the transcript with what a recorder in the middle
//! (tests/clients/tee-ssh) saw independently.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::util::*;

// ------------------------------------------------------------ the seed case

const SEED_FILES: [(&[u8], &[u8]); 2] = [
    (b"C0644 21 a\n", b"file a file a file a\n\0"),
    (b"C0644 21 b\n", b"file b file b file b\n\0"),
];

/// Speaks the seed's upload to a `scp -t` behind `d`, waiting for each ack.
fn seed_dialog(d: &mut Dialog) {
    d.expect(b"\0");
    for (record, data) in SEED_FILES {
        d.send(record);
        d.expect(b"\0");
        d.send(data);
        d.expect(b"\0");
    }
}

/// The seed's upload as one byte string (for a file on stdin).
fn seed_bytes() -> Vec<u8> {
    SEED_FILES.iter().flat_map(|(r, d)| [*r, *d].concat()).collect()
}

fn assert_seed_files_arrived(dir: &Path) {
    for name in ["a", "b"] {
        let p = dir.join(name);
        let got = fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(got, format!("file {name} file {name} file {name}\n").as_bytes());
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o644);
    }
}

/// The seed logger's lines for the seed dialog, after the header.
const SEED_LINES: [&str; 14] = [
    ">>> New command invocation: /usr/bin/scp -d -t dst",
    "O: \\0",
    "I: C0644 21 a\\n",
    "O: \\0",
    "I: file a file a file a\\n\\0",
    "O: \\0",
    "I: C0644 21 b\\n",
    "O: \\0",
    "I: file b file b file b\\n\\0",
    "O: \\0",
    ">>> stdin closed",
    ">>> stdout closed",
    ">>> stderr closed",
    "#: 0",
];

/// Runs the seed dialog through `scptrace run [extra] -o T -- scp -d -t dst`.
fn traced_seed(sb: &Sandbox, extra: &[&str]) -> Transcript {
    fs::create_dir(sb.path().join("dst")).unwrap();
    let mut cmd = sb.command(bin());
    cmd.current_dir(sb.path())
        .arg("run")
        .args(extra)
        .args(["-o", "T", "--", "scp", "-d", "-t", "dst"]);
    let mut d = Dialog::start(&mut cmd);
    seed_dialog(&mut d);
    let (st, err) = d.finish();
    assert!(st.success(), "{st:?} {}", String::from_utf8_lossy(&err));
    assert_eq!(String::from_utf8_lossy(&err), "");
    assert_seed_files_arrived(&sb.path().join("dst"));
    let t = Transcript::read(&sb.path().join("T"));
    assert_eq!(t.header("program"), Some(REAL_SCP), "{t:?}");
    for key in ["scptrace", "start", "pid", "host", "user"] {
        assert!(t.header(key).is_some(), "no `# {key}:` header in {t:?}");
    }
    t
}

#[test]
fn seed_dialog_raw_transcript_is_the_seed_loggers() {
    let sb = Sandbox::new();
    let t = traced_seed(&sb, &["--framing", "raw"]);
    assert_eq!(t.body, SEED_LINES, "{}", t.body.join("\n"));
}

#[test]
fn seed_dialog_default_framing_same_bytes() {
    let sb = Sandbox::new();
    let t = traced_seed(&sb, &[]);
    let bare = t.bare();
    if bare == SEED_LINES {
        return;
    }
    // Per-message framing may cut the same bytes into more lines; the bytes
    // per stream and every non-byte line must stay the seed's.
    let expect = Transcript {
        path: PathBuf::from("seed"),
        header: Vec::new(),
        body: SEED_LINES.iter().map(|s| s.to_string()).collect(),
        text: Vec::new(),
        events: Vec::new(),
    };
    for tag in ['I', 'O', 'E'] {
        assert_eq!(
            escape(&t.stream(tag)),
            escape(&expect.stream(tag)),
            "{tag}: bytes differ"
        );
    }
    let others = |ls: Vec<&str>| -> Vec<String> {
        ls.into_iter()
            .filter(|l| !["I: ", "O: ", "E: "].iter().any(|p| l.starts_with(p)))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(others(bare), others(expect.bare()));
}

// --------------------------------------------- real transfers: plain vs traced
// The transfer_* tests are parallel cases (the same steps, another transfer
// each): their repeated lines are on purpose.

/// What tests/clients/tee-ssh recorded for one remote command.
#[derive(Debug, PartialEq, Eq)]
struct Wire {
    cmd: String,
    input: Vec<u8>,
    output: Vec<u8>,
    err: Vec<u8>,
    rc: i32,
}

fn read_wires(dir: &Path) -> Vec<Wire> {
    files_in(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cmd"))
        .map(|p| {
            // scp does not wait for its ssh program after an error, so tee-ssh
            // may still be writing its records: its `rc` file comes last.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !p.with_extension("rc").exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let read = |ext: &str| fs::read(p.with_extension(ext)).unwrap();
            Wire {
                cmd: String::from_utf8(read("cmd")).unwrap(),
                input: read("in"),
                output: read("out"),
                err: read("err"),
                rc: String::from_utf8(read("rc")).unwrap().parse().unwrap(),
            }
        })
        .collect()
}

/// Two sibling directories set up identically, `plain/` and `traced/`; the
/// same scp client command runs in each with the same relative paths, the
/// remote command through plain scp in one and through the stand-in in the
/// other, both behind tee-ssh.
struct Pair {
    sb: Sandbox,
}

/// The two runs of a [`Pair`].
struct Runs {
    traced: Finished,
}

impl Pair {
    fn new(setup: impl Fn(&Path)) -> Pair {
        let sb = Sandbox::new();
        for side in ["plain", "traced"] {
            let d = sb.path().join(side);
            fs::create_dir(&d).unwrap();
            setup(&d);
            fs::create_dir(sb.path().join(format!("rec-{side}"))).unwrap();
        }
        Pair { sb }
    }

    fn side(&self, side: &str) -> PathBuf {
        self.sb.path().join(side)
    }

    fn client(&self, side: &str, args: &[&str]) -> Finished {
        let path = match side {
            "plain" => "/usr/bin:/bin".to_string(),
            _ => format!("{}:/usr/bin:/bin", self.sb.standin_dir().display()),
        };
        let mut c = self.sb.command(REAL_SCP);
        c.current_dir(self.side(side))
            .arg("-O")
            .arg("-S")
            .arg(client("tee-ssh"))
            .args(args)
            .env("TEE_SSH_DIR", self.side(&format!("rec-{side}")))
            .env("LOCAL_SSH_PATH", path)
            .env("SCPTRACE_LOG_DIR", self.sb.logs())
            .env("SCPTRACE_FRAMING", "raw")
            .env("SCPTRACE_DATA", "full")
            // Every byte, however big the transcript (default cap: 64 MiB).
            .env("SCPTRACE_MAX_LOG_BYTES", "0");
        run(&mut c, Input::Null, DEADLINE)
    }

    /// Runs `scp -O -S tee-ssh ARGS` on both sides and checks everything
    /// that must be the same: exit code, stderr, the whole resulting trees
    /// (with mtimes if `mtimes`), the bytes on the wire; and that each
    /// transcript holds exactly the bytes that passed. `remote` is the number
    /// of remote commands the client runs.
    fn check(&self, args: &[&str], mtimes: bool, remote: usize) -> Runs {
        let plain = self.client("plain", args);
        let traced = self.client("traced", args);
        assert_eq!(
            plain.status.code(),
            traced.status.code(),
            "exit codes differ; stderr plain:\n{}\ntraced:\n{}",
            plain.stderr_text(),
            traced.stderr_text()
        );
        assert_eq!(traced.stderr_text(), plain.stderr_text(), "client stderr differs");
        assert_eq!(traced.stderr, plain.stderr);
        assert_eq!(traced.stdout, plain.stdout);
        assert_same_tree(
            &snapshot(&self.side("plain")),
            &snapshot(&self.side("traced")),
            mtimes,
            "plain vs traced",
        );

        let wires_plain = read_wires(&self.side("rec-plain"));
        let wires = read_wires(&self.side("rec-traced"));
        assert_eq!(wires.len(), remote, "remote commands: {wires:?}");
        assert_eq!(wires_plain.len(), remote);
        for (p, t) in wires_plain.iter().zip(&wires) {
            assert_eq!(p.cmd, t.cmd);
            assert_eq!(p.rc, t.rc, "{}: remote exit codes differ", p.cmd);
            assert_eq!(escape(&p.err), escape(&t.err), "{}: remote stderr differs", p.cmd);
            assert!(
                p.output == t.output,
                "{}: the client received other bytes: {} vs {}",
                p.cmd,
                short(&p.output),
                short(&t.output)
            );
            assert!(
                p.input == t.input,
                "{}: the server received other bytes: {} vs {}",
                p.cmd,
                short(&p.input),
                short(&t.input)
            );
        }
        check_transcripts(&self.sb.logs(), &wires);
        Runs { traced }
    }
}

/// Bytes for a failure message: escaped, long ones cut in the middle.
fn short(b: &[u8]) -> String {
    if b.len() <= 200 {
        format!("{:?} ({} B)", escape(b), b.len())
    } else {
        let (h, t) = (&b[..100], &b[b.len() - 100..]);
        format!("{:?}…{:?} ({} B)", escape(h), escape(t), b.len())
    }
}

/// Every wire has exactly one transcript, and it holds the bytes that passed:
/// I: = what the client sent, O: = what it got, E: = the server's stderr,
/// `#: N` = the server's exit status.
fn check_transcripts(logs: &Path, wires: &[Wire]) {
    let mut ts: Vec<Transcript> = files_in(logs).iter().map(|p| Transcript::read(p)).collect();
    assert_eq!(ts.len(), wires.len(), "transcripts in {}", logs.display());
    for w in wires {
        let args = w.cmd.strip_prefix("scp ").expect("remote command is scp");
        let want = format!("{REAL_SCP} {args}");
        let i = ts
            .iter()
            .position(|t| t.invocation() == want && t.stream('I') == w.input)
            .unwrap_or_else(|| {
                let t = ts.iter().find(|t| t.invocation() == want);
                let t = t.unwrap_or_else(|| panic!("no transcript of {want:?} in {ts:#?}"));
                let got = t.stream('I');
                panic!(
                    "{}: I: holds {} bytes, the client sent {}; first difference at {:?}",
                    t.path.display(),
                    got.len(),
                    w.input.len(),
                    got.iter().zip(&w.input).position(|(a, b)| a != b)
                )
            });
        let t = ts.remove(i);
        let out = t.stream('O');
        assert!(
            out == w.output,
            "{}: O: holds {} bytes, the client received {}; first difference at {:?}",
            t.path.display(),
            out.len(),
            w.output.len(),
            out.iter().zip(&w.output).position(|(a, b)| a != b)
        );
        assert_eq!(escape(&t.stream('E')), escape(&w.err), "{}: E:", t.path.display());
        assert_eq!(t.exit(), w.rc, "{}: exit", t.path.display());
        // (`stdin closed` only where the client closed its side before the
        // server exited: scptrace does not wait for it.)
        let bare = t.bare();
        for closed in ["stdout", "stderr"] {
            let line = format!(">>> {closed} closed");
            assert!(bare.contains(&line.as_str()), "{}: no {line:?}", t.path.display());
        }
    }
}

/// A side with `src/` (made by `fill`) and an empty `dst/`.
fn with_src(fill: impl Fn(&Path)) -> impl Fn(&Path) {
    move |side: &Path| {
        fs::create_dir(side.join("src")).unwrap();
        fill(&side.join("src"));
        fs::create_dir(side.join("dst")).unwrap();
    }
}

fn two_files(src: &Path) {
    put(&src.join("a"), b"file a file a file a\n", 0o644, 1_200_000_000);
    put(&src.join("b"), &random_bytes(100_000, 2), 0o600, 1_200_000_001);
}

#[test]
fn transfer_upload_one_file() {
    let p = Pair::new(with_src(two_files));
    let r = p.check(&["src/b", "localhost:dst"], false, 1);
    r.traced.assert_success();
    let side = p.side("traced");
    assert_eq!(fs::read(side.join("dst/b")).unwrap(), random_bytes(100_000, 2));
}

#[test]
fn transfer_download_one_file() {
    let p = Pair::new(with_src(two_files));
    let r = p.check(&["localhost:src/b", "dst"], false, 1);
    r.traced.assert_success();
    let side = p.side("traced");
    assert_eq!(fs::read(side.join("dst/b")).unwrap(), random_bytes(100_000, 2));
}

#[test]
fn transfer_upload_two_files_with_d() {
    let p = Pair::new(with_src(two_files));
    p.check(&["src/a", "src/b", "localhost:dst"], false, 1)
        .traced
        .assert_success();
    let t = Transcript::read(&files_in(&p.sb.logs())[0]);
    assert_eq!(t.invocation(), format!("{REAL_SCP} -d -t dst"));
    let side = p.side("traced");
    assert_same_tree(
        &snapshot(&side.join("src")),
        &snapshot(&side.join("dst")),
        false,
        "src vs dst",
    );
}

#[test]
fn transfer_download_two_files() {
    let p = Pair::new(with_src(two_files));
    p.check(&["localhost:src/a", "localhost:src/b", "dst"], false, 2)
        .traced
        .assert_success();
    let side = p.side("traced");
    assert_eq!(fs::read(side.join("dst/a")).unwrap(), b"file a file a file a\n");
    assert_eq!(fs::read(side.join("dst/b")).unwrap(), random_bytes(100_000, 2));
}

#[test]
fn transfer_tree_upload_recursive_preserve() {
    let p = Pair::new(with_src(sample_tree));
    p.check(&["-r", "-p", "src", "localhost:dst"], true, 1)
        .traced
        .assert_success();
    let side = p.side("traced");
    assert_same_tree(
        &snapshot(&side.join("src")),
        &snapshot(&side.join("dst/src")),
        true,
        "src vs dst/src",
    );
}

#[test]
fn transfer_tree_download_recursive_preserve() {
    let p = Pair::new(with_src(sample_tree));
    p.check(&["-r", "-p", "localhost:src", "dst"], true, 1)
        .traced
        .assert_success();
    let side = p.side("traced");
    assert_same_tree(
        &snapshot(&side.join("src")),
        &snapshot(&side.join("dst/src")),
        true,
        "src vs dst/src",
    );
}

const BIG: usize = 50 << 20;

fn big_file(src: &Path) {
    put(&src.join("big"), &random_bytes(BIG, 50), 0o644, 1_300_000_000);
}

#[test]
fn transfer_50mib_upload() {
    let p = Pair::new(with_src(big_file));
    p.check(&["-p", "src/big", "localhost:dst"], true, 1)
        .traced
        .assert_success();
    let got = fs::read(p.side("traced").join("dst/big")).unwrap();
    assert!(got == random_bytes(BIG, 50), "dst/big differs from src/big");
}

#[test]
fn transfer_50mib_download() {
    let p = Pair::new(with_src(big_file));
    p.check(&["-p", "localhost:src/big", "dst"], true, 1)
        .traced
        .assert_success();
    let got = fs::read(p.side("traced").join("dst/big")).unwrap();
    assert!(got == random_bytes(BIG, 50), "dst/big differs from src/big");
}

/// An error case: both runs fail the same way, with a message on stderr.
fn check_error(args: &[&str], remote: usize, message: &str) {
    let p = Pair::new(with_src(two_files));
    let r = p.check(args, false, remote);
    assert_eq!(r.traced.status.code(), Some(1), "{}", r.traced.stderr_text());
    assert!(
        r.traced.stderr_text().contains(message),
        "stderr {:?} does not say {message:?}",
        r.traced.stderr_text()
    );
}

#[test]
fn error_missing_remote_source() {
    check_error(
        &["localhost:src/nope", "dst"],
        1,
        "src/nope: No such file or directory",
    );
}

#[test]
fn error_missing_target_dir_two_files() {
    check_error(&["src/a", "src/b", "localhost:nodir"], 1, "nodir");
}

#[test]
fn error_missing_target_dir_one_file() {
    check_error(
        &["src/a", "localhost:nodir/a"],
        1,
        "nodir/a: No such file or directory",
    );
}

/// Root ignores permission bits, so a 0555 directory is no test here. A
/// path under a regular file fails for everyone (ENOTDIR).
#[test]
fn error_unwritable_target_under_regular_file() {
    check_error(&["src/a", "src/b", "localhost:src/a/sub"], 1, "Not a directory");
}

/// A target that cannot be written even by root: the data has no room.
#[test]
fn error_unwritable_target_dev_full() {
    check_error(&["src/a", "localhost:/dev/full"], 1, "No space left on device");
}

/// The download's local side cannot write: the traced server still sees
/// exactly what the plain one saw.
#[test]
fn error_download_into_unwritable_local_target() {
    check_error(&["localhost:src/b", "src/a/sub"], 1, "Not a directory");
}

#[test]
fn error_local_source_missing() {
    check_error(
        &["src/nope", "localhost:dst"],
        1,
        "src/nope: No such file or directory",
    );
}

#[test]
fn error_local_source_missing_among_others() {
    check_error(&["src/nope", "src/a", "localhost:dst"], 1, "src/nope");
}

// ------------------------------------------------------------------- faults

/// `scptrace run -o T -- scp -t dst` driven by the test, after announcing a
/// 10 MB file and sending 1 MB of it.
fn midway(sb: &Sandbox) -> (Dialog, u32) {
    fs::create_dir(sb.path().join("dst")).unwrap();
    let mut cmd = sb.command(bin());
    cmd.current_dir(sb.path())
        .args(["run", "--framing", "raw", "-o", "T", "--", "scp", "-t", "dst"]);
    let mut d = Dialog::start(&mut cmd);
    d.expect(b"\0");
    d.send(b"C0644 10000000 big\n");
    d.expect(b"\0");
    d.send(&random_bytes(1_000_000, 3));
    // The real scp has the megabyte once the file holds it.
    let deadline = Instant::now() + Duration::from_secs(10);
    // scp writes whole buffers of 16 KiB: the file grows to 999,424 bytes.
    while fs::metadata(sb.path().join("dst/big")).map_or(0, |m| m.len()) < 900_000 {
        assert!(Instant::now() < deadline, "the first megabyte never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    let child = wait_for_child(d.pid());
    (d, child)
}

#[test]
fn fault_real_scp_sigkilled_midway() {
    let sb = Sandbox::new();
    let (d, child) = midway(&sb);
    kill(Pid::from_raw(child as i32), Signal::SIGKILL).unwrap();
    let (st, err) = d.wait();
    assert_eq!(
        st.signal(),
        Some(9),
        "scptrace ended with {st:?}, the real scp by SIGKILL; stderr {:?}",
        String::from_utf8_lossy(&err)
    );
    let t = Transcript::read(&sb.path().join("T"));
    assert_eq!(t.exit(), -9, "{}", t.body.join("\n"));
    // Everything that passed before the kill is in the transcript.
    let i = t.stream('I');
    let written = fs::metadata(sb.path().join("dst/big")).unwrap().len() as usize;
    assert!(i.len() >= 19 + written, "I: holds {} bytes", i.len());
    assert!(i.len() <= 19 + 1_000_000, "I: holds {} bytes", i.len());
    assert_eq!(i[..19], *b"C0644 10000000 big\n");
    assert!(i[19..] == random_bytes(1_000_000, 3)[..i.len() - 19]);
}

/// `sig` sent to scptrace mid-transfer is forwarded: the real scp dies of
/// it, the transcript says so and ends with `#: -N`, and scptrace dies of
/// the same signal.
fn check_forwarded(sig: Signal) {
    let sb = Sandbox::new();
    let (d, child) = midway(&sb);
    kill(Pid::from_raw(d.pid() as i32), sig).unwrap();
    // stdin stays open: its EOF would end the real scp before the signal.
    let (st, err) = d.wait();
    let t = Transcript::read(&sb.path().join("T"));
    let not_data = t
        .bare()
        .iter()
        .filter(|l| !l.starts_with("I: "))
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        st.signal(),
        Some(sig as i32),
        "scptrace ended with {st:?}; stderr {:?}; transcript:\n{not_data}",
        String::from_utf8_lossy(&err),
    );
    assert!(
        !Path::new(&format!("/proc/{child}")).exists(),
        "the real scp ({child}) outlived scptrace"
    );
    assert!(
        t.bare()
            .iter()
            .any(|l| l.starts_with(">>> ") && l.contains(sig.as_str())),
        "no `>>>` line about {sig}:\n{not_data}"
    );
    // -N: the real scp itself died of the forwarded signal.
    assert_eq!(t.exit(), -(sig as i32), "{not_data}");
}

#[test]
fn fault_sigterm_to_scptrace_is_forwarded() {
    check_forwarded(Signal::SIGTERM);
}

#[test]
fn fault_sigint_to_scptrace_is_forwarded() {
    check_forwarded(Signal::SIGINT);
}

#[test]
fn fault_sighup_to_scptrace_is_forwarded() {
    check_forwarded(Signal::SIGHUP);
}

/// Runs `scp ARGS` with stdin from `input`, plainly and through `scptrace run`.
fn plain_and_run<'a>(sb: &Sandbox, args: &[&str], input: &dyn Fn() -> Input<'a>) -> (Finished, Finished) {
    for d in ["p", "t"] {
        fs::create_dir(sb.path().join(d)).unwrap();
    }
    // Both started as `scp` from the same PATH: argv[0] is the same.
    let mut plain = sb.command("scp");
    plain
        .current_dir(sb.path().join("p"))
        .args(args)
        .env("PATH", "/usr/bin:/bin");
    let plain = run(&mut plain, input(), DEADLINE);
    let mut traced = sb.command(bin());
    traced
        .current_dir(sb.path().join("t"))
        .args(["run", "--framing", "raw", "-o", "../T", "--", "scp"])
        .args(args)
        .env("PATH", "/usr/bin:/bin");
    let traced = run(&mut traced, input(), DEADLINE);
    assert_eq!(plain.status.code(), traced.status.code());
    assert_eq!(traced.stderr_text(), plain.stderr_text());
    assert_eq!(escape(&traced.stdout), escape(&plain.stdout));
    (plain, traced)
}

#[test]
fn stdin_dev_null() {
    let sb = Sandbox::new();
    let (plain, _) = plain_and_run(&sb, &["-t", "."], &|| Input::Null);
    assert_eq!(plain.stdout, b"\0");
    let t = Transcript::read(&sb.path().join("T"));
    assert_eq!(t.exit(), plain.status.code().unwrap());
    assert_eq!(t.stream('I'), b"");
    assert_eq!(t.stream('O'), b"\0");
}

#[test]
fn stdin_regular_file_with_upload() {
    let sb = Sandbox::new();
    let dialog = sb.path().join("dialog");
    fs::write(&dialog, seed_bytes()).unwrap();
    let (plain, traced) = plain_and_run(&sb, &["-d", "-t", "."], &|| Input::File(&dialog));
    plain.assert_success();
    traced.assert_success();
    assert_seed_files_arrived(&sb.path().join("t"));
    assert_seed_files_arrived(&sb.path().join("p"));
    let t = Transcript::read(&sb.path().join("T"));
    assert_eq!(t.stream('I'), seed_bytes());
    assert_eq!(t.stream('O'), b"\0\0\0\0\0");
    assert_eq!(t.exit(), 0);
}

fn warnings(stderr: &[u8]) -> usize {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.starts_with("scptrace: warning:"))
        .count()
}

/// The stand-in under a real client with an impossible log directory: the
/// transfer is as without scptrace, plus one warning line.
#[test]
fn log_dir_unwritable_transfer_goes_on() {
    let p = Pair::new(with_src(two_files));
    fs::write(p.sb.path().join("file.txt"), "a regular file").unwrap();
    let mut results = Vec::new();
    for side in ["plain", "traced"] {
        let path = match side {
            "plain" => "/usr/bin:/bin".to_string(),
            _ => format!("{}:/usr/bin:/bin", p.sb.standin_dir().display()),
        };
        let mut c = p.sb.command(REAL_SCP);
        c.current_dir(p.side(side))
            .args(["-O", "-S"])
            .arg(client("local-ssh"))
            .args(["src/a", "src/b", "localhost:dst"])
            .env("LOCAL_SSH_PATH", path)
            .env("SCPTRACE_LOG_DIR", p.sb.path().join("file.txt/logs"));
        results.push(run(&mut c, Input::Null, DEADLINE));
    }
    let (plain, traced) = (&results[0], &results[1]);
    plain.assert_success();
    traced.assert_success();
    assert_eq!(warnings(&traced.stderr), 1, "{}", traced.stderr_text());
    assert_eq!(
        traced.stderr_text().lines().count(),
        1,
        "{}",
        traced.stderr_text()
    );
    assert_same_tree(
        &snapshot(&p.side("plain")),
        &snapshot(&p.side("traced")),
        false,
        "plain vs traced",
    );
}

/// `-o` names a file that opens but cannot be written (/dev/full: every
/// write fails with ENOSPC): the transfer goes on. One that cannot even be
/// created (under a regular file) is refused before scp starts, since a
/// person is there to fix it (issue 13; tests/it/cli.rs has more).
#[test]
fn log_file_unwritable_transfer_goes_on() {
    let sb = Sandbox::new();
    fs::write(sb.path().join("file.txt"), "a regular file").unwrap();
    fs::create_dir(sb.path().join("dst")).unwrap();
    let mut cmd = sb.command(bin());
    cmd.current_dir(sb.path())
        .args(["run", "-o", "file.txt/T", "--", "scp", "-d", "-t", "dst"]);
    let f = run(&mut cmd, Input::Null, DEADLINE);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
    assert_eq!(
        f.stderr_text(),
        "scptrace: file.txt/T: cannot create transcript: Not a directory; give -o a writable path\n"
    );
    assert!(fs::read_dir(sb.path().join("dst")).unwrap().next().is_none());
    let out = "/dev/full";
    let sb = Sandbox::new();
    fs::create_dir(sb.path().join("dst")).unwrap();
    let mut cmd = sb.command(bin());
    cmd.current_dir(sb.path())
        .args(["run", "-o", out, "--", "scp", "-d", "-t", "dst"]);
    let mut d = Dialog::start(&mut cmd);
    seed_dialog(&mut d);
    let (st, err) = d.finish();
    assert!(st.success(), "-o {out}: {st:?}");
    assert_seed_files_arrived(&sb.path().join("dst"));
    assert_eq!(warnings(&err), 1, "-o {out}: {}", String::from_utf8_lossy(&err));
    assert_eq!(
        String::from_utf8_lossy(&err).lines().count(),
        1,
        "-o {out}: {}",
        String::from_utf8_lossy(&err)
    );
}

/// How many processes `cmd` started (itself included), counted with strace
/// when it is installed and allowed here; None otherwise.
fn count_processes(sb: &Sandbox, cmd: &mut std::process::Command, input: Input) -> (Finished, Option<usize>) {
    let strace = Path::new("/usr/bin/strace");
    let usable = strace.exists()
        && std::process::Command::new(strace)
            .args(["-f", "-qq", "-o", "/dev/null", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !usable {
        eprintln!("strace not usable here: processes not counted");
        return (run(cmd, input, Duration::from_secs(5)), None);
    }
    let log = sb.path().join("strace.out");
    let mut wrapped = sb.command(strace);
    wrapped
        .args(["-f", "-qq", "-e", "trace=execve", "-o"])
        .arg(&log)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        wrapped.current_dir(d);
    }
    let f = run(&mut wrapped, input, Duration::from_secs(5));
    let text = fs::read_to_string(&log).unwrap();
    let mut pids: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    pids.sort();
    pids.dedup();
    (f, Some(pids.len()))
}

/// SCPTRACE_REAL_SCP names the stand-in itself: a clear error at once, for
/// a server invocation and for a client one.
#[test]
fn loop_guard_real_scp_is_the_standin() {
    let sb = Sandbox::new();
    fs::create_dir(sb.path().join("dst")).unwrap();
    for args in [&["-t", "dst"][..], &["dst", "dst2"][..]] {
        let mut cmd = sb.command(sb.standin());
        cmd.current_dir(sb.path())
            .args(args)
            .env("SCPTRACE_REAL_SCP", sb.standin())
            .env("SCPTRACE_LOG_DIR", sb.logs());
        let start = Instant::now();
        let (f, procs) = count_processes(&sb, &mut cmd, Input::Null);
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!f.status.success(), "scp {args:?}: {:?}", f.status);
        let err = f.stderr_text();
        assert!(
            err.starts_with("scptrace: ") && err.contains("SCPTRACE_REAL_SCP"),
            "scp {args:?}: unclear error {err:?}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        if let Some(n) = procs {
            assert!(n <= 2, "scp {args:?}: {n} processes");
        }
        assert!(f.stdout.is_empty(), "{:?}", f.stdout);
    }
}

/// The only `scp` on PATH is the stand-in: /usr/bin/scp is the fallback.
#[test]
fn standin_alone_on_path_falls_back_to_usr_bin_scp() {
    let sb = Sandbox::new();
    fs::create_dir(sb.path().join("dst")).unwrap();
    let dialog = sb.path().join("dialog");
    fs::write(&dialog, seed_bytes()).unwrap();
    let mut cmd = sb.command("/bin/sh");
    cmd.current_dir(sb.path())
        .args(["-c", "exec scp -d -t dst"])
        .env("PATH", sb.standin_dir())
        .env("SCPTRACE_LOG_DIR", sb.logs());
    let f = run(&mut cmd, Input::File(&dialog), Duration::from_secs(10));
    f.assert_success();
    assert_eq!(f.stdout, b"\0\0\0\0\0");
    assert_seed_files_arrived(&sb.path().join("dst"));
    let logs = files_in(&sb.logs());
    assert_eq!(logs.len(), 1);
    let t = Transcript::read(&logs[0]);
    assert_eq!(t.invocation(), format!("{REAL_SCP} -d -t dst"));
    assert_eq!(t.exit(), 0);
}

/// Two different files that are both scptrace (a copy named `scp`, and the
/// stand-in symlink) on PATH: neither may take the other for the real scp
/// and spawn it, back and forth, forever.
#[test]
fn loop_guard_copy_and_symlink_on_path() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.path().join("copy")).unwrap();
    fs::copy(bin(), sb.path().join("copy/scp")).unwrap();
    fs::create_dir(sb.path().join("dst")).unwrap();
    let dialog = sb.path().join("dialog");
    fs::write(&dialog, seed_bytes()).unwrap();
    let mut cmd = sb.command("/bin/sh");
    cmd.current_dir(sb.path())
        .args(["-c", "exec scp -d -t dst"])
        .env(
            "PATH",
            format!(
                "{}:{}:/usr/bin:/bin",
                sb.path().join("copy").display(),
                sb.standin_dir().display()
            ),
        )
        .env("SCPTRACE_LOG_DIR", sb.logs());
    let start = Instant::now();
    let mut child = {
        use std::os::unix::process::CommandExt;
        cmd.stdin(fs::File::open(&dialog).unwrap())
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(sb.path().join("stderr")).unwrap())
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let mut done = None;
    while start.elapsed() < Duration::from_secs(5) {
        if let Some(st) = child.try_wait().unwrap() {
            done = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if done.is_none() {
        kill_group(child.id());
        let _ = child.wait();
    }
    let transcripts = files_in(&sb.logs()).len();
    let st = done.unwrap_or_else(|| {
        panic!("still running after 5 s: a fork loop ({transcripts} transcripts written)")
    });
    assert!(transcripts <= 2, "{transcripts} transcripts: nested tracing");
    if st.success() {
        assert_seed_files_arrived(&sb.path().join("dst"));
    } else {
        let err = fs::read_to_string(sb.path().join("stderr")).unwrap();
        assert!(err.contains("scptrace"), "{st:?} without a clear error: {err:?}");
    }
}

/// The stand-in invoked as a client execs the real scp: the copy is made,
/// no transcript is written, and the process is the real scp (the ssh
/// program it runs has it as parent).
#[test]
fn standin_as_client_execs_real_scp() {
    let sb = Sandbox::new();
    put(&sb.path().join("a"), b"client copy\n", 0o640, 1_100_000_000);
    let mut cmd = sb.command(sb.standin());
    cmd.current_dir(sb.path())
        .args(["-p", "a", "b"])
        .env("SCPTRACE_LOG_DIR", sb.logs());
    run(&mut cmd, Input::Null, Duration::from_secs(10)).assert_success();
    let (a, b) = (snapshot(&sb.path().join("a")), snapshot(&sb.path().join("b")));
    assert_same_tree(&a, &b, true, "a vs b");
    assert!(files_in(&sb.logs()).is_empty(), "a client invocation was traced");

    let probe = sb.path().join("probe");
    fs::write(
        &probe,
        "#!/bin/sh\nreadlink /proc/$PPID/exe > \"$PROBE_OUT\"\nexit 1\n",
    )
    .unwrap();
    set_mode(&probe, 0o755);
    let mut cmd = sb.command(sb.standin());
    cmd.current_dir(sb.path())
        .args(["-O", "-S"])
        .arg(&probe)
        .args(["localhost:x", "y"])
        .env("PROBE_OUT", sb.path().join("parent"))
        .env("SCPTRACE_LOG_DIR", sb.logs());
    let f = run(&mut cmd, Input::Null, Duration::from_secs(10));
    assert!(!f.status.success());
    let parent = fs::read_to_string(sb.path().join("parent")).unwrap();
    assert_eq!(
        parent.trim_end(),
        fs::canonicalize(REAL_SCP).unwrap().to_str().unwrap()
    );
    assert!(files_in(&sb.logs()).is_empty());
}

/// scp prefixes its own messages with argv[0]: the child must get `scp`, as
/// given, so stderr is byte for byte the plain one's.
#[test]
fn child_gets_argv0_as_given() {
    let sb = Sandbox::new();
    let args = ["-t", "-Z", "dst"];
    // scptrace run -- scp …
    let (plain, _) = plain_and_run(&sb, &args, &|| Input::Null);
    assert!(
        plain.stderr_text().starts_with("scp: "),
        "{}",
        plain.stderr_text()
    );
    let t = Transcript::read(&sb.path().join("T"));
    assert_eq!(t.stream('E'), plain.stderr);

    // the stand-in, found on PATH by a shell as sshd would
    let mut results = Vec::new();
    for path in [
        "/usr/bin:/bin".to_string(),
        format!("{}:/usr/bin:/bin", sb.standin_dir().display()),
    ] {
        let mut cmd = sb.command("/bin/sh");
        cmd.current_dir(sb.path())
            .args(["-c", "exec scp -t -Z dst"])
            .env("PATH", path)
            .env("SCPTRACE_LOG_DIR", sb.logs());
        results.push(run(&mut cmd, Input::Null, Duration::from_secs(10)));
    }
    assert_eq!(results[1].stderr_text(), results[0].stderr_text());
    assert_eq!(results[1].status.code(), results[0].status.code());
    let logs = files_in(&sb.logs());
    assert_eq!(logs.len(), 1);
    let t = Transcript::read(&logs[0]);
    assert_eq!(t.stream('E'), results[0].stderr);
    assert!(t.stream('E').starts_with(b"scp: "));
}

// ---------------------------------------------------------------- log files

/// Runs the stand-in as `scp -d -t DST` with the seed's upload on stdin.
fn standin_upload(sb: &Sandbox, logs: &Path, dst: &str) -> Finished {
    let dialog = sb.path().join("dialog");
    if !dialog.exists() {
        fs::write(&dialog, seed_bytes()).unwrap();
    }
    fs::create_dir_all(sb.path().join(dst)).unwrap();
    let mut cmd = sb.command(sb.standin());
    cmd.current_dir(sb.path())
        .args(["-d", "-t", dst])
        .env("SCPTRACE_LOG_DIR", logs)
        .env("SCPTRACE_FRAMING", "raw");
    let f = run(&mut cmd, Input::File(&dialog), DEADLINE);
    f.assert_success();
    assert_eq!(f.stdout, b"\0\0\0\0\0");
    assert_seed_files_arrived(&sb.path().join(dst));
    f
}

#[test]
fn log_files_one_per_invocation_private() {
    let sb = Sandbox::new();
    let logs = sb.path().join("state/deep/logs");
    standin_upload(&sb, &logs, "d1");
    let dir_mode = fs::metadata(&logs).unwrap().mode() & 0o7777;
    assert_eq!(dir_mode, 0o700, "log directory mode {dir_mode:04o}");
    let first = files_in(&logs);
    assert_eq!(first.len(), 1, "{first:?}");
    let before = fs::read(&first[0]).unwrap();
    standin_upload(&sb, &logs, "d2");
    let all = files_in(&logs);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(fs::read(&first[0]).unwrap(), before, "first transcript changed");
    for (p, dst) in all.iter().zip(["d1", "d2"]) {
        let m = fs::symlink_metadata(p).unwrap();
        assert!(m.is_file());
        assert_eq!(m.mode() & 0o7777, 0o600, "{} mode", p.display());
        let t = Transcript::read(p);
        assert_eq!(t.invocation(), format!("{REAL_SCP} -d -t {dst}"));
        assert_eq!(t.stream('I'), seed_bytes());
        assert_eq!(t.exit(), 0);
    }
}

#[test]
fn log_files_fifty_at_once_are_distinct_and_complete() {
    let sb = Sandbox::new();
    let logs = sb.logs();
    fs::write(sb.path().join("dialog"), seed_bytes()).unwrap();
    let barrier = std::sync::Barrier::new(50);
    std::thread::scope(|s| {
        for i in 0..50 {
            let (sb, logs, barrier) = (&sb, &logs, &barrier);
            s.spawn(move || {
                fs::create_dir(sb.path().join(format!("d{i}"))).unwrap();
                barrier.wait();
                standin_upload(sb, logs, &format!("d{i}"));
            });
        }
    });
    let all = files_in(&logs);
    assert_eq!(all.len(), 50, "{all:?}");
    // Names sort by start time (files_in sorts by name).
    let starts: Vec<String> = all
        .iter()
        .map(|p| Transcript::read(p).header("start").unwrap().to_string())
        .collect();
    for (w, p) in starts.windows(2).zip(all.windows(2)) {
        assert!(
            w[0] <= w[1],
            "{:?} sorts before {:?} but started later",
            p[0],
            p[1]
        );
    }
    let mut seen: Vec<String> = all
        .iter()
        .map(|p| {
            let t = Transcript::read(p);
            assert_eq!(t.exit(), 0, "{}", p.display());
            assert_eq!(t.stream('I'), seed_bytes(), "{}", p.display());
            assert_eq!(t.stream('O'), b"\0\0\0\0\0", "{}", p.display());
            t.invocation().to_string()
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 50, "two transcripts of one invocation");
}

/// SCPTRACE_LOG_DIR is a symlink to a private directory: not followed (the
/// transfer goes on untraced, with one warning), nothing written behind it.
#[test]
fn log_dir_symlink_is_not_followed() {
    let sb = Sandbox::new();
    let real = sb.path().join("real");
    fs::create_dir(&real).unwrap();
    set_mode(&real, 0o700);
    let link = sb.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let dialog = sb.path().join("dialog");
    fs::write(&dialog, seed_bytes()).unwrap();
    fs::create_dir(sb.path().join("dst")).unwrap();
    let mut cmd = sb.command(sb.standin());
    cmd.current_dir(sb.path())
        .args(["-d", "-t", "dst"])
        .env("SCPTRACE_LOG_DIR", &link);
    let f = run(&mut cmd, Input::File(&dialog), DEADLINE);
    f.assert_success();
    assert_eq!(f.stdout, b"\0\0\0\0\0");
    assert_seed_files_arrived(&sb.path().join("dst"));
    assert_eq!(warnings(&f.stderr), 1, "{}", f.stderr_text());
    assert!(files_in(&real).is_empty(), "wrote through the symlink");
}

// ------------------------------------------------------- relay guarantees

/// The invocation line is shell-quoted so that pasting it runs the same
/// argv (bash, for the `$'…'` form of control characters).
#[test]
fn invocation_line_can_be_pasted() {
    let sb = Sandbox::new();
    let args = [
        "a b",
        "it's",
        "$HOME",
        "back\\slash",
        "tab\there",
        "new\nline",
        "",
        "ünï",
        "*",
        "-t",
        "--",
        "\"q\"",
        "semi;colon",
        "~",
    ];
    let mut cmd = sb.command(bin());
    cmd.current_dir(sb.path())
        .args(["run", "-o", "T", "--", "/bin/true"])
        .args(args);
    run(&mut cmd, Input::Null, DEADLINE).assert_success();
    let t = Transcript::read(&sb.path().join("T"));
    let line = t.invocation();
    let mut sh = sb.command("/bin/bash");
    sh.arg("-c").arg(format!("printf '%s\\0' {line}"));
    let f = run(&mut sh, Input::Null, DEADLINE);
    f.assert_success();
    let mut want = b"/bin/true\0".to_vec();
    for a in args {
        want.extend_from_slice(a.as_bytes());
        want.push(0);
    }
    assert_eq!(escape(&f.stdout), escape(&want), "pasting {line:?}");
}

/// The header names this run: its pid, this host, a UTC start time.
#[test]
fn header_describes_the_run() {
    let sb = Sandbox::new();
    fs::create_dir(sb.path().join("dst")).unwrap();
    let mut cmd = sb.command(bin());
    cmd.current_dir(sb.path())
        .args(["run", "-o", "T", "--", "scp", "-d", "-t", "dst"]);
    let mut d = Dialog::start(&mut cmd);
    let pid = d.pid();
    seed_dialog(&mut d);
    let (st, _) = d.finish();
    assert!(st.success());
    let t = Transcript::read(&sb.path().join("T"));
    assert_eq!(t.header("pid"), Some(pid.to_string().as_str()));
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(t.header("host"), Some(host.trim()));
    let start = t.header("start").unwrap();
    let b = start.as_bytes();
    let shape_ok = b.len() >= 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.' || c == b'Z',
            _ if i == b.len() - 1 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
    assert!(shape_ok, "start {start:?} is not RFC 3339 UTC");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let year: u64 = start[..4].parse().unwrap();
    let this_year = 1970 + now / 31_556_952;
    assert!(year.abs_diff(this_year) <= 1, "start {start:?}");
}

/// stdin and stdout are one socket (as sshd and `scp -S` give them): when
/// the program closes its stdout, the peer must see EOF while the program
/// still reads stdin, so scptrace must shutdown(SHUT_WR) the socket.
#[test]
fn socket_stdout_is_shut_down_when_the_child_closes_stdout() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let sb = Sandbox::new();
    let (mut peer, ours) = UnixStream::pair().unwrap();
    let mut child = {
        let mut cmd = sb.command(bin());
        cmd.current_dir(sb.path())
            .args(["run", "--framing", "raw", "-o", "T", "--", "/bin/sh", "-c"])
            .arg("printf hi; exec 1>&-; cat > got")
            .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                ours.try_clone().unwrap(),
            )))
            .stdout(std::process::Stdio::from(std::os::fd::OwnedFd::from(ours)))
            .stderr(std::process::Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.spawn().unwrap()
        // cmd, and with it our copies of scptrace's end, dropped here
    };
    peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let r = peer.read_to_end(&mut got);
    if r.is_err() {
        kill_group(child.id());
        let _ = child.wait();
        panic!("no EOF on the socket after the child closed its stdout: {r:?}, got {got:?}");
    }
    assert_eq!(got, b"hi");
    peer.write_all(b"bye").unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let st = wait_deadline(&mut child, DEADLINE, &"scptrace run -- sh");
    assert!(st.success(), "{st:?}");
    assert_eq!(fs::read(sb.path().join("got")).unwrap(), b"bye");
    let t = Transcript::read(&sb.path().join("T"));
    assert_eq!(t.stream('O'), b"hi");
    assert_eq!(t.stream('I'), b"bye");
}

/// scptrace makes its stdio non-blocking for the event loop; the open file
/// descriptions are shared with whoever gave them, so their flags must be
/// as before once it has exited.
#[test]
fn nonblock_flags_restored_on_shared_stdio() {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use std::io::{Read, Write};
    let sb = Sandbox::new();
    // O_CLOEXEC: no other process (of this test binary's parallel tests, or
    // scptrace itself) may inherit a write end and hold EOF back.
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let keep = [
        in_r.try_clone().unwrap(),
        out_w.try_clone().unwrap(),
        err_w.try_clone().unwrap(),
    ];
    let mut child = {
        let mut cmd = sb.command(bin());
        cmd.current_dir(sb.path())
            .args(["run", "-o", "T", "--", "/bin/sh", "-c", "cat; echo done >&2"])
            .stdin(std::process::Stdio::from(in_r))
            .stdout(std::process::Stdio::from(out_w))
            .stderr(std::process::Stdio::from(err_w));
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.spawn().unwrap()
    };
    let mut w = fs::File::from(in_w);
    w.write_all(b"through\n").unwrap();
    drop(w);
    let st = wait_deadline(&mut child, DEADLINE, &"scptrace run -- cat");
    assert!(st.success(), "{st:?}");
    let left: Vec<&str> = keep
        .iter()
        .zip(["stdin", "stdout", "stderr"])
        .filter(|(fd, _)| {
            let fl = OFlag::from_bits_truncate(fcntl(*fd, FcntlArg::F_GETFL).unwrap());
            fl.contains(OFlag::O_NONBLOCK)
        })
        .map(|(_, name)| name)
        .collect();
    assert!(left.is_empty(), "left O_NONBLOCK on the shared {left:?}");
    drop(keep);
    let mut out = Vec::new();
    fs::File::from(out_r).read_to_end(&mut out).unwrap();
    assert_eq!(out, b"through\n");
    let mut err = Vec::new();
    fs::File::from(err_r).read_to_end(&mut err).unwrap();
    assert_eq!(err, b"done\n");
}

/// VmRSS of a process in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

/// A reader that stops reading: scptrace stops reading its source instead
/// of buffering (the writer blocks), and its memory stays small.
#[test]
fn backpressure_bounded_memory() {
    use std::io::{Read, Write};
    let sb = Sandbox::new();
    const N: usize = 64 << 20;
    let data = random_bytes(N, 64);
    let mut cmd = sb.command(bin());
    cmd.current_dir(sb.path())
        .args(["run", "-o", "/dev/null", "--", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = std::thread::spawn({
        let data = data.clone();
        move || {
            let r = stdin.write_all(&data);
            let _ = tx.send(());
            r
        }
    });
    let mut peak = 0;
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        peak = peak.max(rss_kib(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    let blocked = rx.try_recv().is_err();
    let mut out = Vec::with_capacity(N);
    let reader = std::thread::spawn({
        let mut stdout = child.stdout.take().unwrap();
        move || {
            stdout.read_to_end(&mut out).unwrap();
            out
        }
    });
    writer.join().unwrap().unwrap();
    let out = reader.join().unwrap();
    let st = wait_deadline(&mut child, DEADLINE, &"scptrace run -- cat");
    assert!(st.success());
    assert!(out == data, "cat through scptrace changed the bytes");
    assert!(
        blocked,
        "64 MiB went in while nobody read: buffered, not back-pressured"
    );
    assert!(peak > 0 && peak < 32 * 1024, "scptrace VmRSS {peak} KiB");
}

/// The same for a terminal, as when `scptrace run -- scp -t DIR` is typed at
/// a shell and ended with ^D: the terminal must not stay non-blocking.
#[test]
fn nonblock_flags_restored_on_tty() {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use std::io::{Read, Write};
    let sb = Sandbox::new();
    let pty = nix::pty::openpty(None, None).unwrap();
    for fd in [&pty.master, &pty.slave] {
        // Keep them out of processes other tests start meanwhile.
        fcntl(fd, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).unwrap();
    }
    let keep = pty.slave.try_clone().unwrap();
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let mut child = {
        let mut cmd = sb.command(bin());
        cmd.current_dir(sb.path())
            .args(["run", "-o", "T", "--", "cat"])
            .stdin(std::process::Stdio::from(pty.slave))
            .stdout(std::process::Stdio::from(out_w))
            .stderr(std::process::Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.spawn().unwrap()
    };
    let mut master = fs::File::from(pty.master);
    master.write_all(b"typed\n").unwrap();
    // ^D at the start of a line: EOF for the reader of the terminal.
    std::thread::sleep(Duration::from_millis(200));
    master.write_all(b"\x04").unwrap();
    let st = wait_deadline(&mut child, Duration::from_secs(20), &"scptrace run -- cat");
    assert!(st.success(), "{st:?}");
    let fl = OFlag::from_bits_truncate(fcntl(&keep, FcntlArg::F_GETFL).unwrap());
    assert!(
        !fl.contains(OFlag::O_NONBLOCK),
        "the terminal was left O_NONBLOCK"
    );
    let mut out = Vec::new();
    fs::File::from(out_r).read_to_end(&mut out).unwrap();
    assert_eq!(out, b"typed\n");
    drop(master);
}

/// Exit codes pass through unchanged, and a child killed by a signal makes
/// scptrace die of the same signal, as its parent would have seen.
#[test]
fn exit_status_is_the_childs() {
    let sb = Sandbox::new();
    for (script, code, sig) in [
        ("exit 0", Some(0), None),
        ("exit 1", Some(1), None),
        ("exit 42", Some(42), None),
        ("exit 255", Some(255), None),
        ("kill -USR1 $$", None, Some(10)),
        ("kill -ALRM $$", None, Some(14)),
    ] {
        let mut cmd = sb.command(bin());
        cmd.current_dir(sb.path())
            .args(["run", "-o", "T", "--", "/bin/sh", "-c", script]);
        let f = run(&mut cmd, Input::Null, DEADLINE);
        assert_eq!(f.status.code(), code, "{script}: {:?}", f.status);
        assert_eq!(f.status.signal(), sig, "{script}: {:?}", f.status);
        assert!(!f.status.core_dumped(), "{script}: core dumped");
        let t = Transcript::read(&sb.path().join("T"));
        assert_eq!(t.exit(), code.unwrap_or_else(|| -sig.unwrap()), "{script}");
    }
}

/// The reader of our stdout goes away (`scptrace run -- yes | head -c 10`):
/// scptrace is not killed by SIGPIPE mid-way; the transcript is complete
/// and the exit is the child's (`yes` dies of SIGPIPE, as without us).
#[test]
fn reader_gone_sigpipe_does_not_kill_scptrace() {
    use std::io::Read;
    let sb = Sandbox::new();
    let mut cmd = sb.command(bin());
    cmd.current_dir(sb.path())
        .args(["run", "--framing", "raw", "-o", "T", "--", "yes"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap();
    let mut first = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // (our end of the pipe is closed here)
    assert_eq!(&first, b"y\ny\ny\ny\ny\n");
    let st = wait_deadline(&mut child, DEADLINE, &"scptrace run -- yes");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(st.signal(), Some(13), "{st:?} {err}");
    let t = Transcript::read(&sb.path().join("T"));
    assert_eq!(t.exit(), -13);
    assert!(t.stream('O').starts_with(b"y\ny\ny\n"));
    assert_eq!(err, "", "stderr");
}

/// stdin and stdout regular files, stdout /dev/null: a download driven by
/// acks from a file gives the same bytes as plain scp.
#[test]
fn stdio_regular_files_and_dev_null() {
    let sb = Sandbox::new();
    // One copy each: reading a file can change its atime, which -p sends.
    for d in ["p", "t", "n"] {
        put(
            &sb.path().join(d).join("f"),
            &random_bytes(300_000, 9),
            0o640,
            1_000_000_000,
        );
    }
    let acks = sb.path().join("acks");
    fs::write(&acks, b"\0\0\0\0").unwrap();
    let mut outputs = Vec::new();
    for (name, traced) in [("p/out", false), ("t/out", true)] {
        let mut cmd = if traced {
            let mut c = sb.command(bin());
            c.args(["run", "--framing", "raw", "-o", "../T", "--", "scp"]);
            c
        } else {
            sb.command("scp")
        };
        cmd.current_dir(sb.path().join(&name[..1]))
            .args(["-p", "-f", "f"])
            .env("PATH", "/usr/bin:/bin")
            .stdin(fs::File::open(&acks).unwrap())
            .stdout(fs::File::create(sb.path().join(name)).unwrap())
            .stderr(std::process::Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let st = wait_deadline(&mut child, DEADLINE, &name);
        assert!(st.success(), "{name}: {st:?}");
        outputs.push(fs::read(sb.path().join(name)).unwrap());
    }
    assert!(outputs[0] == outputs[1], "stdout files differ");
    assert!(outputs[0].len() > 300_000);
    let t = Transcript::read(&sb.path().join("T"));
    assert!(t.stream('O') == outputs[1]);
    assert_eq!(t.stream('I'), b"\0\0\0\0");

    // stdout /dev/null
    let mut cmd = sb.command(bin());
    cmd.current_dir(sb.path().join("n"))
        .args(["run", "--framing", "raw", "-o", "../T2", "--", "scp", "-f", "f"])
        .stdin(fs::File::open(&acks).unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap();
    let st = wait_deadline(&mut child, DEADLINE, &"stdout /dev/null");
    assert!(st.success(), "{st:?}");
    let t = Transcript::read(&sb.path().join("T2"));
    assert_eq!(
        t.stream('O').len(),
        outputs[0].len() - "T1000000000 0 1000000000 0\n".len()
    );
    assert_eq!(t.exit(), 0);
}

/// Without SCPTRACE_LOG_DIR: $XDG_STATE_HOME/scptrace, else
/// ~/.local/state/scptrace (design §5).
#[test]
fn log_dir_defaults() {
    let sb = Sandbox::new();
    let dialog = sb.path().join("dialog");
    fs::write(&dialog, seed_bytes()).unwrap();
    for (i, xdg) in [true, false].into_iter().enumerate() {
        let dst = format!("d{i}");
        fs::create_dir(sb.path().join(&dst)).unwrap();
        let mut cmd = sb.command(sb.standin());
        cmd.current_dir(sb.path()).args(["-d", "-t", &dst]);
        if !xdg {
            cmd.env_remove("XDG_STATE_HOME");
        }
        run(&mut cmd, Input::File(&dialog), DEADLINE).assert_success();
        assert_seed_files_arrived(&sb.path().join(&dst));
    }
    // (sb.command sets HOME to the sandbox and XDG_STATE_HOME to .state in it)
    for (dir, dst) in [(".state/scptrace", "d0"), (".local/state/scptrace", "d1")] {
        let logs = files_in(&sb.path().join(dir));
        assert_eq!(logs.len(), 1, "{dir}: {logs:?}");
        let t = Transcript::read(&logs[0]);
        assert_eq!(t.invocation(), format!("{REAL_SCP} -d -t {dst}"));
        assert_eq!(t.exit(), 0);
        let mode = fs::metadata(sb.path().join(dir)).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{dir}");
    }
}
