//! `scptrace show` and `scptrace check` on transcripts of real traced
//! transfers: rendering, JSON Lines conversion both ways, summaries, and the
//! exit statuses of `check` (0 clean, 1 violations, 2 unreadable/malformed).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scptrace"))
}

pub(crate) fn sandbox() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("scptrace-show-")
        .tempdir()
        .unwrap()
}

/// Runs `scptrace ARGS` with no stdin, colour left to its defaults, and a
/// deadline (a hang fails the test).
pub(crate) fn scptrace(args: &[&str], cwd: &Path) -> Output {
    scptrace_env(args, cwd, &[])
}

pub(crate) fn scptrace_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("NO_COLOR")
        .env_remove("SCPTRACE_COLOR")
        .env("XDG_CONFIG_HOME", cwd.join("no-config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("scptrace {args:?} hung"))
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Uploads one file to a real `scp -t` through `scptrace run`, the way a
/// client does: wait for scp's `\0`, send the record, wait, send the data and
/// its `\0`, wait, close. Returns the transcript's path.
fn traced_upload(dir: &Path, name: &str, extra: &[&str], record: &[u8]) -> PathBuf {
    traced_upload_of(dir, name, extra, record, b"file a file a file a\n")
}

/// [`traced_upload`] of a file `a` with the given contents.
pub(crate) fn traced_upload_of(
    dir: &Path,
    name: &str,
    extra: &[&str],
    record: &[u8],
    data: &[u8],
) -> PathBuf {
    let dst = dir.join("dst");
    fs::create_dir_all(&dst).unwrap();
    let log = dir.join(name);
    let mut child = Command::new(bin())
        .arg("run")
        .args(extra)
        .arg("-o")
        .arg(&log)
        .args(["--", "scp", "-t"])
        .arg(&dst)
        .env("XDG_CONFIG_HOME", dir.join("no-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut b = [0u8; 1];
        while output.read_exact(&mut b).is_ok() {
            if tx.send(b[0]).is_err() {
                break;
            }
        }
    });
    let reply = || rx.recv_timeout(DEADLINE).expect("a reply from scp");
    assert_eq!(reply(), 0, "scp's ready \\0");
    input.write_all(record).unwrap();
    let accepted = reply() == 0;
    if accepted {
        input.write_all(data).unwrap();
        input.write_all(b"\0").unwrap();
        assert_eq!(reply(), 0, "scp's \\0 after the data");
    }
    drop(input);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait().unwrap()));
    let status = rx.recv_timeout(DEADLINE).expect("scptrace run ended");
    if accepted {
        assert!(status.success(), "{status:?}");
        assert_eq!(fs::read(dst.join("a")).unwrap(), data);
    }
    log
}

pub(crate) fn clean_upload(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    traced_upload(dir, name, extra, b"C0644 21 a\n")
}

#[test]
fn show_renders_a_real_transcript_as_recorded() {
    let d = sandbox();
    let log = clean_upload(d.path(), "t.log", &[]);
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("I: C0644 21 a\\n"), "{text}");
    let o = scptrace(&["show", log.to_str().unwrap()], d.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        text,
        "to a pipe, show writes the transcript unchanged"
    );

    let o = scptrace(&["show", "--color", "always", log.to_str().unwrap()], d.path());
    let colored = stdout(&o);
    assert!(colored.contains('\x1b'), "--color always colours");
    assert_eq!(
        strip_sgr(&colored),
        text,
        "colour adds escape codes and nothing else"
    );

    let o = scptrace_env(
        &["show", log.to_str().unwrap()],
        d.path(),
        &[("SCPTRACE_COLOR", "always")],
    );
    assert!(stdout(&o).contains('\x1b'), "SCPTRACE_COLOR is honoured");
    let o = scptrace_env(
        &["show", "--color", "never", log.to_str().unwrap()],
        d.path(),
        &[("SCPTRACE_COLOR", "always")],
    );
    assert!(!stdout(&o).contains('\x1b'), "the flag wins over the environment");
}

fn strip_sgr(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn jsonl_conversion_is_lossless_both_ways() {
    let d = sandbox();
    for (name, extra) in [
        ("plain.log", &[][..]),
        ("timed.log", &["--timestamps"][..]),
        ("raw.log", &["--framing", "raw", "--timestamps"][..]),
        ("none.log", &["--data", "none"][..]),
    ] {
        let log = clean_upload(d.path(), name, extra);
        let o = scptrace(&["show", "--format", "jsonl", log.to_str().unwrap()], d.path());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let jsonl = stdout(&o);
        for line in jsonl.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            for field in ["t", "stream", "kind"] {
                assert!(v.get(field).is_some(), "{field} missing in {line}");
            }
            if v["stream"] != "meta" && v["kind"] != "closed" {
                assert!(v["len"].is_u64() && v["bytes"].is_string(), "{line}");
            }
        }
        assert!(jsonl.contains(r#""kind":"exit","code":0"#), "{jsonl}");
        let json_path = d.path().join(format!("{name}.jsonl"));
        fs::write(&json_path, &jsonl).unwrap();
        let o = scptrace(&["show", json_path.to_str().unwrap()], d.path());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(
            stdout(&o),
            fs::read_to_string(&log).unwrap(),
            "{name}: text → jsonl → text"
        );
        let o = scptrace(
            &["show", "--format", "jsonl", json_path.to_str().unwrap()],
            d.path(),
        );
        assert_eq!(stdout(&o), jsonl, "{name}: jsonl → jsonl");
    }
}

/// `--data full` splits a long file into several data lines; they read back
/// as data and convert both ways like any other.
#[test]
fn full_data_in_parts() {
    let d = sandbox();
    let data: Vec<u8> = (0..150_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let log = traced_upload_of(
        d.path(),
        "full.log",
        &["--data", "full"],
        b"C0644 150000 a\n",
        &data,
    );
    let o = scptrace(&["show", "--format", "jsonl", log.to_str().unwrap()], d.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let jsonl = stdout(&o);
    let data_lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "data")
        .collect();
    assert!(data_lines.len() >= 3, "{} data lines", data_lines.len());
    let total: u64 = data_lines.iter().map(|v| v["len"].as_u64().unwrap()).sum();
    assert_eq!(total, 150_000, "the parts add up to the file");
    let shown: Vec<u8> = data_lines
        .iter()
        .flat_map(|v| unescape(v["bytes"].as_str().unwrap()))
        .collect();
    assert_eq!(shown, data, "--data full shows every byte");
    let json_path = d.path().join("full.jsonl");
    fs::write(&json_path, &jsonl).unwrap();
    let o = scptrace(&["show", json_path.to_str().unwrap()], d.path());
    assert_eq!(stdout(&o), fs::read_to_string(&log).unwrap());
    let o = scptrace(&["show", "--summary", log.to_str().unwrap()], d.path());
    assert!(stdout(&o).contains("1 file, 150000 B of data"), "{}", stdout(&o));
    let o = scptrace(&["check", log.to_str().unwrap()], d.path());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// The transcript escaping reversed (design §3), for the tests' own checks.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b[i + 1] {
            b'0' => out.push(0),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'\\' => out.push(b'\\'),
            b'x' => {
                out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                i += 2;
            }
            c => panic!("bad escape {c}"),
        }
        i += 2;
    }
    out
}

#[test]
fn decoded_messages_in_jsonl() {
    let d = sandbox();
    let log = clean_upload(d.path(), "t.log", &[]);
    let o = scptrace(&["show", "--format", "jsonl", log.to_str().unwrap()], d.path());
    let events: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let record = events
        .iter()
        .find(|e| e["kind"] == "record")
        .expect("a record line");
    assert_eq!(
        record["msg"],
        serde_json::json!({"type": "file", "mode": "0644", "size": 21, "name": "a"})
    );
    assert_eq!(record["stream"], "stdin");
    assert_eq!(record["len"], 11);
    let data = events.iter().find(|e| e["kind"] == "data").expect("a data line");
    assert_eq!(
        (data["len"].as_u64(), data["msg"]["name"].as_str()),
        (Some(21), Some("a"))
    );
}

#[test]
fn a_live_jsonl_transcript_reads_back() {
    let d = sandbox();
    let log = clean_upload(d.path(), "live.jsonl", &["--format", "jsonl"]);
    let live = fs::read_to_string(&log).unwrap();
    assert!(live.starts_with('{'), "{live}");
    let o = scptrace(&["show", log.to_str().unwrap()], d.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains(">>> New command invocation: "), "{text}");
    assert!(
        text.contains("I: C0644 21 a\\n\t# file \"a\", 21 B, mode 0644"),
        "{text}"
    );
    let o = scptrace(&["show", "--format", "jsonl", log.to_str().unwrap()], d.path());
    assert_eq!(stdout(&o), live, "jsonl → jsonl is identical");
    let o = scptrace(&["check", log.to_str().unwrap()], d.path());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn summary_of_an_upload() {
    let d = sandbox();
    let log = clean_upload(d.path(), "t.log", &["--timestamps"]);
    let o = scptrace(&["show", "--summary", log.to_str().unwrap()], d.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = stdout(&o);
    for want in [
        "scp -t ",
        "peer → scp  1 file, 21 B of data",
        "scp → peer  no files, 3 B in 3 lines",
        "violations  none",
        "errors      none",
        "exit        0",
        " s\n",
    ] {
        assert!(s.contains(want), "{want:?} not in\n{s}");
    }
    let o = scptrace(
        &["show", "--summary", "--format", "jsonl", log.to_str().unwrap()],
        d.path(),
    );
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["stdin"]["files"], 1);
    assert_eq!(v["stdin"]["data"], 21);
    assert_eq!(v["exit"], 0);
    assert_eq!(v["framing"], "message");
    assert!(v["duration"].as_f64().unwrap() > 0.0);

    // Raw framing: the counts come from decoding the bytes again.
    let raw = clean_upload(d.path(), "raw.log", &["--framing", "raw"]);
    let o = scptrace(&["show", "--summary", raw.to_str().unwrap()], d.path());
    let s = stdout(&o);
    assert!(s.contains("re-decoded"), "{s}");
    assert!(s.contains("peer → scp  1 file, 21 B of data"), "{s}");
    // No timestamps recorded: unknown, never guessed from the file's
    // modification time (a copy has another one).
    assert!(
        s.contains("duration    unknown (recorded without timestamps"),
        "{s}"
    );
}

#[test]
fn filters() {
    let d = sandbox();
    let log = clean_upload(d.path(), "t.log", &[]);
    let o = scptrace(&["show", "--stream", "in", log.to_str().unwrap()], d.path());
    let s = stdout(&o);
    assert!(s.contains("I: ") && !s.contains("O: "), "{s}");
    assert!(
        s.contains(">>> stdin closed") && !s.contains(">>> stdout closed"),
        "{s}"
    );
    assert!(
        s.contains("#: 0") && s.contains("# scptrace: "),
        "meta lines stay: {s}"
    );
    let o = scptrace(&["show", "--stream", "out,err", log.to_str().unwrap()], d.path());
    let s = stdout(&o);
    assert!(!s.contains("I: ") && s.contains("O: \\0\t# ack"), "{s}");
    let o = scptrace(&["show", "--violations", log.to_str().unwrap()], d.path());
    assert_eq!(stdout(&o), "", "a clean upload has no `!!` lines");

    let timed = clean_upload(d.path(), "timed.log", &["--timestamps"]);
    let o = scptrace(&["show", "--timestamps=off", timed.to_str().unwrap()], d.path());
    let s = stdout(&o);
    assert!(!s.lines().any(|l| l.starts_with('+')), "{s}");
    assert!(s.contains("\nO: \\0\t# ack\n"), "{s}");
}

#[test]
fn check_a_clean_upload() {
    let d = sandbox();
    for (name, extra) in [("t.log", &[][..]), ("raw.log", &["--framing", "raw"][..])] {
        let log = clean_upload(d.path(), name, extra);
        let o = scptrace(&["check", log.to_str().unwrap()], d.path());
        assert_eq!(o.status.code(), Some(0), "{name}: {}{}", stdout(&o), stderr(&o));
        // Never silent: one line says the transcript was decoded whole, clean.
        assert_eq!(
            stdout(&o),
            format!("{}: clean: 6 messages decoded, no violation\n", log.display())
        );
    }
}

#[test]
fn check_lists_violations_and_exits_1() {
    let d = sandbox();
    // A crafted transcript: the decoder's `!!` line is what counts.
    let crafted = d.path().join("crafted.log");
    fs::write(
        &crafted,
        "# scptrace: 0.1.0\n\
>>> New command invocation: /usr/bin/scp -t /tmp\n\
O: \\0\t# ack\n\
I: C0644 21 ../a\\n\t# file \"../a\", 21 B, mode 0644\n\
!! name-slash: the name \"../a\" contains '/', so it could escape the target directory (CVE-2019-6111)\n\
O: \\x02scp: error: unexpected filename: ../a\\n\t# error: scp: error: unexpected filename: ../a\n\
#: 1\n",
    )
    .unwrap();
    let o = scptrace(&["check", crafted.to_str().unwrap()], d.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "{0}: !! name-slash: the name \"../a\" contains '/', so it could escape the target directory (CVE-2019-6111); OpenSSH refuses it and exits\n\
{0}: 1 violation(s) in 3 messages\n",
            crafted.display()
        )
    );

    // The same name sent to the real scp, traced per message and per read:
    // the tracer flags it live, and check decodes the raw transcript again.
    for (name, extra) in [("live.log", &[][..]), ("raw.log", &["--framing", "raw"][..])] {
        let log = traced_upload(d.path(), name, extra, b"C0644 21 ../a\n");
        let o = scptrace(&["check", log.to_str().unwrap()], d.path());
        assert_eq!(
            o.status.code(),
            Some(1),
            "{name}: {}",
            fs::read_to_string(&log).unwrap()
        );
        assert!(
            stdout(&o).contains(&format!("{}: !! name-slash: ", log.display())),
            "{name}: {}",
            stdout(&o)
        );
    }

    // Several files: each violation is listed with its file; 1 overall.
    let clean = clean_upload(d.path(), "clean.log", &[]);
    let o = scptrace(
        &["check", clean.to_str().unwrap(), crafted.to_str().unwrap()],
        d.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o).lines().count(), 3, "{}", stdout(&o));
}

#[test]
fn standard_input() {
    let d = sandbox();
    let log = clean_upload(d.path(), "t.log", &[]);
    let run = |args: &[&str], input: Vec<u8>| {
        let mut child = Command::new(bin())
            .args(args)
            .env("XDG_CONFIG_HOME", d.path().join("no-config"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        thread::spawn(move || stdin.write_all(&input));
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
        rx.recv_timeout(DEADLINE).expect("scptrace ended")
    };
    let text = fs::read(&log).unwrap();
    let o = run(&["show", "-"], text.clone());
    assert_eq!((o.status.code(), o.stdout), (Some(0), text.clone()));
    let o = run(&["check", "-"], text);
    assert_eq!(o.status.code(), Some(0));
    let o = run(&["check", "-"], b"O: \\q\n".to_vec());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("scptrace: (standard input):1: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn malformed_or_missing_files_exit_2() {
    let d = sandbox();
    let bad = d.path().join("bad.log");
    fs::write(
        &bad,
        "# scptrace: 0.1.0\n>>> New command invocation: scp -t x\nO: \\q\n#: 0\n",
    )
    .unwrap();
    let missing = d.path().join("missing.log");
    for cmd in ["check", "show"] {
        let o = scptrace(&[cmd, bad.to_str().unwrap()], d.path());
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(
            stderr(&o).starts_with(&format!("scptrace: {}:3: bad escaped bytes", bad.display())),
            "{cmd}: {}",
            stderr(&o)
        );
        let o = scptrace(&[cmd, missing.to_str().unwrap()], d.path());
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(
            stderr(&o).starts_with(&format!("scptrace: {}: ", missing.display())),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    // A malformed file does not hide the violations of the others, nor the
    // lines of itself that came before the bad one.
    let o = scptrace(&["show", bad.to_str().unwrap()], d.path());
    assert!(stdout(&o).contains(">>> New command invocation: scp -t x\n"));
    let bad_json = d.path().join("bad.jsonl");
    fs::write(
        &bad_json,
        "{\"t\":null,\"stream\":\"meta\",\"kind\":\"exit\",\"code\":0}\n{\"t\":0}\n",
    )
    .unwrap();
    let o = scptrace(&["show", bad_json.to_str().unwrap()], d.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("{}:2: ", bad_json.display())),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "#: 0\n");
}
