//! `scptrace ls` (issue 13): the log directory's transcripts, newest first,
//! one line each, on transcripts of real transfers with real `scp -t`/`scp -f`
//! made by `scptrace run` into `SCPTRACE_LOG_DIR`.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::show::{sandbox, scptrace_env, stderr, stdout};
use crate::util::{Dialog, bin};

/// `scptrace run -- scp ARGS` into the log directory `logs`, as a dialog.
fn traced(dir: &Path, logs: &Path, args: &[&str]) -> Dialog {
    Dialog::start(
        Command::new(bin())
            .args(["run", "--", "scp"])
            .args(args)
            .current_dir(dir)
            .env("XDG_CONFIG_HOME", dir.join("no-config"))
            .env("SCPTRACE_LOG_DIR", logs),
    )
}

#[test]
fn ls_lists_newest_first_with_what_each_holds() {
    let d = sandbox();
    let logs = d.path().join("logs");
    let env = [("SCPTRACE_LOG_DIR", logs.to_str().unwrap())];

    // Nothing yet: said on stderr, exit 0, nothing on stdout.
    let o = scptrace_env(&["ls"], d.path(), &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("no transcript in the log directory"),
        "{}",
        stderr(&o)
    );

    // 1: a clean upload of 21 bytes to a real scp -t, waiting for each reply.
    fs::create_dir_all(d.path().join("dst")).unwrap();
    let dst = d.path().join("dst");
    let mut up = traced(d.path(), &logs, &["-t", dst.to_str().unwrap()]);
    up.expect(b"\0");
    up.send(b"C0644 21 a\n");
    up.expect(b"\0");
    up.send(b"file a file a file a\n\0");
    up.expect(b"\0");
    let (st, err) = up.finish();
    assert!(st.success(), "{}", String::from_utf8_lossy(&err));
    assert_eq!(fs::read(dst.join("a")).unwrap(), b"file a file a file a\n");
    std::thread::sleep(std::time::Duration::from_millis(5));

    // 2: a clean download of that file from a real scp -f.
    let mut down = traced(d.path(), &logs, &["-f", dst.join("a").to_str().unwrap()]);
    down.send(b"\0");
    assert_eq!(down.read_line(), b"C0644 21 a\n");
    down.send(b"\0");
    assert_eq!(down.read_exact(22), b"file a file a file a\n\0");
    down.send(b"\0");
    let (st, err) = down.finish();
    assert!(st.success(), "{}", String::from_utf8_lossy(&err));
    std::thread::sleep(std::time::Duration::from_millis(5));

    // 3: a failure: scp -f of a file that does not exist exits 1.
    let mut fail = traced(
        d.path(),
        &logs,
        &["-f", d.path().join("missing").to_str().unwrap()],
    );
    fail.send(b"\0");
    let (st, _) = fail.finish();
    assert_eq!(st.code(), Some(1));

    // And a file that is no transcript, named like one: a line, not a stop.
    fs::write(logs.join("20200101T000000.000000Z-1-junk.log"), "junk\n").unwrap();

    let o = scptrace_env(&["ls"], d.path(), &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    let cols = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        cols(lines[0]),
        ["START", "PROGRAM", "FILES", "BYTES", "EXIT", "VIOLATIONS", "FILE"]
    );
    // START, "scp", "-f", FILES, BYTES, EXIT, VIOLATIONS, FILE
    let (newest, mid, oldest) = (cols(lines[1]), cols(lines[2]), cols(lines[3]));
    assert_eq!(newest[1..7], ["scp", "-f", "0", "0", "1", "0"], "{text}");
    assert_eq!(mid[1..7], ["scp", "-f", "1", "21", "0", "0"], "{text}");
    assert_eq!(oldest[1..7], ["scp", "-t", "1", "21", "0", "0"], "{text}");
    assert!(newest[0] > mid[0] && mid[0] > oldest[0], "newest first: {text}");
    assert!(lines[4].contains("-junk.log: not a transcript: line 1"), "{text}");

    // @1 is ls's first line.
    let show = stdout(&scptrace_env(&["show", "@1"], d.path(), &env));
    assert!(show.contains("missing"), "{show}");

    let o = scptrace_env(&["ls", "--format", "jsonl"], d.path(), &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    let key = |i: usize, k: &str| rows[i][k].clone();
    assert_eq!(
        (key(0, "program"), key(0, "exit"), key(0, "files")),
        ("scp -f".into(), 1.into(), 0.into())
    );
    assert_eq!(
        (key(1, "program"), key(1, "bytes"), key(1, "violations")),
        ("scp -f".into(), 21.into(), 0.into())
    );
    assert_eq!(
        (
            key(2, "program"),
            key(2, "files"),
            key(2, "bytes"),
            key(2, "exit")
        ),
        ("scp -t".into(), 1.into(), 21.into(), 0.into())
    );
    assert!(key(2, "command").as_str().unwrap().contains("scp -t"));
    assert!(key(3, "error").as_str().unwrap().starts_with("not a transcript"));
}
