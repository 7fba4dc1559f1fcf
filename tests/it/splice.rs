//! The zero-copy data path (design §2, issue 3 item 6): with splice(2) on and
//! off, the same transfers give the same files and the same transcripts, and
//! splice is really used when it is on.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::util::{DEADLINE, Input, Sandbox, Transcript, client, files_in, put, random_bytes, run};

/// One upload or download through `scp -O -S local-ssh` with the stand-in on
/// the "remote" PATH. `strace_out`, when given, wraps the client in strace to
/// count splice calls of every process.
fn transfer(sb: &Sandbox, splice: &str, upload: bool, tag: &str, strace_out: Option<&Path>) -> Transcript {
    let logs = sb.path().join(format!("logs-{tag}"));
    // The same target every time: it is in the invocation line.
    let dst = sb.path().join("dst");
    let _ = fs::remove_dir_all(&dst);
    fs::create_dir_all(&dst).unwrap();
    let src = sb.path().join("src/big.bin");
    let (from, to) = if upload {
        (src.display().to_string(), format!("localhost:{}/", dst.display()))
    } else {
        (
            format!("localhost:{}", src.display()),
            format!("{}/", dst.display()),
        )
    };
    let mut cmd: Command = match strace_out {
        Some(out) => {
            let mut c = sb.command("strace");
            c.arg("-f")
                .arg("-qq")
                .arg("-e")
                .arg("trace=splice")
                .arg("-o")
                .arg(out)
                .arg("/usr/bin/scp");
            c
        }
        None => sb.command("/usr/bin/scp"),
    };
    cmd.arg("-O")
        .arg("-q")
        .arg("-S")
        .arg(client("local-ssh"))
        .arg(&from)
        .arg(&to);
    cmd.env(
        "LOCAL_SSH_PATH",
        format!("{}:/usr/bin:/bin", sb.standin_dir().display()),
    )
    .env("SCPTRACE_LOG_DIR", &logs)
    .env("SCPTRACE_SPLICE", splice);
    run(&mut cmd, Input::Null, DEADLINE).assert_success();
    assert_eq!(
        fs::read(dst.join("big.bin")).unwrap(),
        fs::read(&src).unwrap(),
        "{tag}: file differs"
    );
    let logs = files_in(&logs);
    assert_eq!(logs.len(), 1, "{tag}: one transcript expected, got {logs:?}");
    Transcript::read(&logs[0])
}

fn have_strace() -> bool {
    Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn same_transcripts_either_way(upload: bool) {
    let sb = Sandbox::new();
    // Bigger than the pipe and the relay's buffer, odd-sized to end mid-chunk.
    put(
        &sb.path().join("src/big.bin"),
        &random_bytes(3 * 1024 * 1024 + 12345, 7),
        0o644,
        1_600_000_000,
    );
    let on = transfer(&sb, "1", upload, "on", None);
    let off = transfer(&sb, "0", upload, "off", None);
    // Header lines differ (pid, start); everything after must not, except
    // `>>> stdin closed` in a download: scptrace ends without waiting for it
    // (the client closes only after our EOF), so it is there or not by timing.
    let body = |t: &Transcript| -> Vec<String> {
        t.body
            .iter()
            .filter(|l| upload || l.as_str() != ">>> stdin closed")
            .cloned()
            .collect()
    };
    assert_eq!(
        body(&on),
        body(&off),
        "transcripts differ between splice on and off"
    );
    assert!(
        on.body.iter().any(|l| l.ends_with("B, first 32 shown")),
        "the file's data line shows its head: {:#?}",
        on.body
    );
    if have_strace() {
        let count = |path: &Path| {
            fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("splice("))
                .count()
        };
        let (s_on, s_off) = (sb.path().join("strace-on"), sb.path().join("strace-off"));
        transfer(&sb, "1", upload, "on2", Some(&s_on));
        transfer(&sb, "0", upload, "off2", Some(&s_off));
        assert!(count(&s_on) > 0, "splice on: no splice(2) call was made");
        assert_eq!(count(&s_off), 0, "splice off: splice(2) was called anyway");
    } else {
        eprintln!("SKIP part: strace missing, splice use not counted");
    }
}

#[test]
fn splice_on_and_off_give_the_same_upload_transcript() {
    same_transcripts_either_way(true);
}

#[test]
fn splice_on_and_off_give_the_same_download_transcript() {
    same_transcripts_either_way(false);
}
