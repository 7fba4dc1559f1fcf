//! What protocol-trace users expect of `show` (issue 13): times as strace
//! shows them (`--time`), long lines cut at display time (`--width`), a
//! per-file table (`--summary`), one file's lines (`--file`), `ls` and
//! `@N`, and the pager. On transcripts of real transfers.

use std::fs;

use crate::show::{clean_upload, sandbox, scptrace, stderr, stdout, traced_upload_of};

/// `HH:MM:SS.UUUUUU` as microseconds since midnight.
fn micros_of_day(s: &str) -> i64 {
    let (hms, us) = s.split_once('.').unwrap();
    let v: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    assert_eq!((v.len(), us.len()), (3, 6), "{s}");
    ((v[0] * 60 + v[1]) * 60 + v[2]) * 1_000_000 + us.parse::<i64>().unwrap()
}

#[test]
fn time_absolute_relative_delta() {
    let d = sandbox();
    let log = clean_upload(d.path(), "t.log", &["--timestamps"]);
    let f = log.to_str().unwrap();
    let text = fs::read_to_string(&log).unwrap();
    let start = text
        .lines()
        .find_map(|l| l.strip_prefix("# start: "))
        .unwrap()
        .to_string();
    // The start header's time of day, in microseconds.
    let start_us = micros_of_day(start.split_once('T').unwrap().1.trim_end_matches('Z'));
    let rel = stdout(&scptrace(&["show", f], d.path()));
    assert_eq!(rel, text, "relative is the default: as recorded");
    assert_eq!(
        stdout(&scptrace(&["show", "--time", "relative", f], d.path())),
        text
    );
    let abs = stdout(&scptrace(&["show", "--time", "absolute", f], d.path()));
    let delta = stdout(&scptrace(&["show", "--time", "delta", f], d.path()));
    let (mut n, mut prev) = (0, 0i64);
    for ((r, a), dl) in rel.lines().zip(abs.lines()).zip(delta.lines()) {
        let Some(t) = r.strip_prefix('+') else {
            assert_eq!((r, r), (a, dl), "header lines carry no time");
            continue;
        };
        let (t, rest) = t.split_once(' ').unwrap();
        let (ts, tus) = t.split_once('.').unwrap();
        let t_us: i64 = ts.parse::<i64>().unwrap() * 1_000_000 + tus.parse::<i64>().unwrap();
        let (at, arest) = a.split_once(' ').unwrap();
        assert_eq!(arest, rest);
        assert_eq!(
            micros_of_day(at),
            (start_us + t_us) % 86_400_000_000,
            "{a} from {start} + {t}"
        );
        let (dt, drest) = dl.split_once(' ').unwrap();
        assert_eq!(drest, rest);
        let (ds, dus) = dt.strip_prefix('+').unwrap().split_once('.').unwrap();
        assert_eq!(
            ds.parse::<i64>().unwrap() * 1_000_000 + dus.parse::<i64>().unwrap(),
            t_us - prev,
            "{dl}"
        );
        prev = t_us;
        n += 1;
    }
    assert!(n >= 8, "{abs}");
    // --timestamps is a switch for show as for run; =off hides them.
    let on = stdout(&scptrace(&["show", "--timestamps", f], d.path()));
    assert_eq!(on, text);
    let off = stdout(&scptrace(&["show", "--timestamps=off", f], d.path()));
    assert!(!off.contains("\n+") && off.contains("\nO: \\0\t# ack\n"), "{off}");
    let o = scptrace(&["show", "--time", "sometimes", f], d.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn width_cuts_long_lines_at_display_time() {
    let d = sandbox();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let log = traced_upload_of(
        d.path(),
        "full.log",
        &["--data", "full"],
        b"C0644 200000 a\n",
        &data,
    );
    let f = log.to_str().unwrap();
    let text = fs::read_to_string(&log).unwrap();
    let longest = text.lines().map(str::len).max().unwrap();
    assert!(longest > 100_000, "{longest}");
    // To a pipe, nothing is cut unless asked.
    assert_eq!(stdout(&scptrace(&["show", f], d.path())), text);
    let cut = stdout(&scptrace(&["show", "--width", "100", f], d.path()));
    assert_eq!(cut.lines().count(), text.lines().count());
    let mut cuts = 0;
    for (c, t) in cut.lines().zip(text.lines()) {
        assert!(c.chars().count() <= 100 + 8, "{c}");
        if c == t {
            continue;
        }
        cuts += 1;
        // `I: HEAD… [+N chars]\t# NOTE`: the head is the original's start,
        // never cut inside an escape, and N says how much is missing.
        let (shown, note) = c.split_once('\t').unwrap();
        let (tb, tnote) = t.split_once('\t').unwrap();
        assert_eq!(note, tnote, "the annotation stays whole");
        let (head, more) = shown.split_once("… [+").unwrap();
        let n: usize = more
            .strip_suffix(" chars]")
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap();
        assert_eq!(head.len() + n, tb.len(), "{c}");
        assert!(tb.starts_with(head));
        let escaped = &head[3..];
        assert!(
            !crate::util::unescape(escaped).is_empty(),
            "the head is whole escapes: {escaped}"
        );
    }
    assert!(cuts >= 3, "{cut}");
    assert_eq!(stdout(&scptrace(&["show", "--width", "0", f], d.path())), text);
}

/// `show --summary`'s per-file table, for a real legacy upload (one file
/// refused by the real sink) and a real SFTP upload; and the duration from
/// the recorded times, whatever the file's modification time.
#[test]
fn summary_lists_each_file() {
    use crate::record::{arranged, local_ssh, os, record, remote};
    use crate::util::{DEADLINE, Input, REAL_SCP, Sandbox, bin, run};
    let sb = Sandbox::new();
    let src = sb.p("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/a.txt"), b"hello\n").unwrap();
    fs::write(src.join("b"), vec![7u8; 5000]).unwrap();
    let dst = sb.p("dst");
    // The sink cannot write `b`: a directory is in its place.
    fs::create_dir_all(dst.join("src/b")).unwrap();
    let log = sb.p("t.log");
    let args = vec![os("-r"), os(&src), remote(&dst)];
    let r = record(&sb, &["--timestamps", "-o", log.to_str().unwrap()], &args);
    assert!(!r.status.success(), "scp reports the refused file");
    let f = log.to_str().unwrap();
    let o = scptrace(&["show", "--summary", f], sb.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = stdout(&o);
    let row = |name: &str| {
        s.lines()
            .find(|l| l.trim_start().starts_with("→ scp") && l.contains(name))
            .unwrap_or_else(|| panic!("no row for {name} in\n{s}"))
            .to_string()
    };
    let a = row("src/sub/a.txt");
    assert!(
        a.contains("0644") && a.contains("6 B") && a.contains("6 B seen") && a.contains("acked"),
        "{a}"
    );
    assert!(a.contains(" ms"), "an ack latency: {a}");
    let b = row("src/b ");
    // The real sink answers the record: no data passed.
    assert!(
        b.contains("5000 B  0 B seen") && b.contains("refused: scp: ") && b.contains("Is a directory"),
        "{b}"
    );
    assert!(s.contains("files       2"), "{s}");
    let j = stdout(&scptrace(
        &["show", "--summary", "--format", "jsonl", f],
        sb.path(),
    ));
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let ja = files.iter().find(|x| x["name"] == "src/sub/a.txt").unwrap();
    assert_eq!(
        (ja["outcome"].as_str(), ja["size"].as_u64(), ja["mode"].as_str()),
        (Some("acked"), Some(6), Some("0644"))
    );
    assert!(ja["latency"].as_f64().unwrap() >= 0.0);
    let jb = files.iter().find(|x| x["name"] == "src/b").unwrap();
    assert_eq!(jb["outcome"], "refused");

    // The duration is the last recorded time: touching the file changes nothing.
    let duration = v["duration"].as_f64().unwrap();
    let last: f64 = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix('+')?.split_once(' ')?.0.parse().ok())
        .fold(0.0, f64::max);
    assert_eq!(duration, last);
    assert!(
        std::process::Command::new("touch")
            .args(["-d", "2001-01-01", f])
            .status()
            .unwrap()
            .success()
    );
    let j2 = stdout(&scptrace(
        &["show", "--summary", "--format", "jsonl", f],
        sb.path(),
    ));
    let v2: serde_json::Value = serde_json::from_str(j2.trim()).unwrap();
    assert_eq!(v2["duration"].as_f64(), Some(duration));
    assert_eq!(v2["duration_from"], "timestamps");

    // SFTP: files from OPEN to CLOSE, with their requests.
    let slog = sb.p("s.log");
    fs::create_dir_all(sb.p("sdst")).unwrap();
    let mut c = arranged(&sb, bin());
    c.arg("record")
        .arg("-o")
        .arg(&slog)
        .args(["--", REAL_SCP, "-s", "-S"])
        .arg(local_ssh());
    c.arg("-r").arg(&src).arg(remote(&sb.p("sdst")));
    run(&mut c, Input::Null, DEADLINE).assert_success();
    let s = stdout(&scptrace(
        &["show", "--summary", slog.to_str().unwrap()],
        sb.path(),
    ));
    let line = s
        .lines()
        .find(|l| l.contains("sdst/src/b"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(
        line.contains("5000 B seen")
            && line.contains("closed")
            && line.contains("OPEN ×1")
            && line.contains("WRITE ×1"),
        "{line}"
    );
}

/// Runs `scptrace ARGS` with its stdout (and stdin, stderr) a pty, as on a
/// terminal (python's pty module), with `env`; returns what reached the pty.
fn on_a_terminal(args: &[&str], cwd: &std::path::Path, env: &[(&str, &str)]) -> String {
    let mut c = std::process::Command::new("python3");
    c.arg("-c")
        .arg("import os,pty,sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))")
        .arg(crate::util::bin())
        .args(args)
        .current_dir(cwd)
        .env("XDG_CONFIG_HOME", cwd.join("no-config"))
        .env_remove("SSH_ORIGINAL_COMMAND")
        .env_remove("PAGER")
        .env_remove("SCPTRACE_PAGER");
    for (k, v) in env {
        c.env(k, v);
    }
    let r = crate::util::run(&mut c, crate::util::Input::Null, crate::util::DEADLINE);
    assert_eq!(r.status.code(), Some(0), "{}", r.stderr_text());
    String::from_utf8_lossy(&r.stdout).into_owned()
}

/// On a terminal `show` pages through $SCPTRACE_PAGER (then $PAGER), as git
/// does; never with --no-pager, when piped, or under a ForceCommand.
#[test]
fn show_pages_on_a_terminal_only() {
    let d = sandbox();
    let log = clean_upload(d.path(), "t.log", &[]);
    let f = log.to_str().unwrap();
    let text = fs::read_to_string(&log).unwrap();
    let paged = d.path().join("paged");
    // A fake pager that records that it ran and what it was given.
    let fake = format!("cat > '{}'", paged.display());
    let shown = on_a_terminal(
        &["show", "--color", "never", f],
        d.path(),
        &[("SCPTRACE_PAGER", &fake)],
    );
    assert_eq!(
        fs::read_to_string(&paged).unwrap(),
        text,
        "the pager got the transcript"
    );
    assert!(!shown.contains("I: C0644"), "and the terminal did not: {shown}");
    fs::remove_file(&paged).unwrap();
    // PAGER when SCPTRACE_PAGER is not set.
    on_a_terminal(&["show", "--color", "never", f], d.path(), &[("PAGER", &fake)]);
    assert!(paged.exists(), "PAGER ran");
    fs::remove_file(&paged).unwrap();
    for (args, env, why) in [
        (
            vec!["show", "--no-pager", "--color", "never", f],
            vec![("SCPTRACE_PAGER", fake.as_str())],
            "--no-pager",
        ),
        (
            vec!["show", "--color", "never", f],
            vec![
                ("SCPTRACE_PAGER", fake.as_str()),
                ("SSH_ORIGINAL_COMMAND", "scptrace show x"),
            ],
            "a ForceCommand session",
        ),
    ] {
        let shown = on_a_terminal(&args, d.path(), &env);
        assert!(!paged.exists(), "{why}: no pager");
        assert!(
            shown.contains("I: C0644 21 a\\n"),
            "{why}: straight to the terminal: {shown}"
        );
    }
    // Piped: never.
    let o = crate::show::scptrace_env(&["show", f], d.path(), &[("SCPTRACE_PAGER", &fake)]);
    assert_eq!(stdout(&o), text);
    assert!(!paged.exists(), "piped: no pager");
}

/// `show @1` is the newest transcript in the log directory, `check @2` the
/// one before; past the last, a one-line error and exit 2.
#[test]
fn at_n_names_the_log_directorys_transcripts() {
    let d = sandbox();
    let logs = d.path().join("logs");
    let env = [("SCPTRACE_LOG_DIR", logs.to_str().unwrap())];
    for word in ["first", "second"] {
        let o = crate::show::scptrace_env(&["run", "--", "echo", word], d.path(), &env);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let newest = stdout(&crate::show::scptrace_env(&["show", "@1"], d.path(), &env));
    assert!(
        newest.contains("invocation: /usr/bin/echo second") || newest.contains("echo second"),
        "{newest}"
    );
    let before = stdout(&crate::show::scptrace_env(&["show", "@2"], d.path(), &env));
    assert!(before.contains("echo first"), "{before}");
    let c = crate::show::scptrace_env(&["check", "@2"], d.path(), &env);
    assert!(stdout(&c).contains("-echo.log: not decoded"), "{}", stdout(&c));
    let o = crate::show::scptrace_env(&["check", "@3"], d.path(), &env);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("@3: the log directory") && stderr(&o).contains("holds 2 transcript(s)"),
        "{}",
        stderr(&o)
    );
}

/// `show --file GLOB` on a real recursive upload: only the matching file's
/// record, data and acks, inside its directory's `D`/`E`; SFTP the same
/// file's OPEN/HANDLE/WRITE/CLOSE and their STATUS; no match: the header,
/// a note, exit 0.
#[test]
fn file_shows_one_files_lines() {
    use crate::record::{arranged, local_ssh, os, record, remote};
    use crate::util::{DEADLINE, Input, REAL_SCP, Sandbox, bin, run};
    let sb = Sandbox::new();
    let src = sb.p("dir");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"AAAA-contents\n").unwrap();
    fs::write(src.join("b.txt"), b"BBBB-contents\n").unwrap();
    let dst = sb.p("dst");
    fs::create_dir_all(&dst).unwrap();
    let log = sb.p("t.log");
    let args = vec![os("-r"), os(&src), remote(&dst)];
    let r = record(&sb, &["--data", "full", "-o", log.to_str().unwrap()], &args);
    r.assert_success();
    let f = log.to_str().unwrap();
    let o = scptrace(&["show", "--timestamps=off", "--file", "dir/b*", f], sb.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.lines().any(|l| l.starts_with("I: D0755 0 dir")), "{s}");
    assert!(s.lines().any(|l| l.starts_with("I: C0644 14 b.txt")), "{s}");
    assert!(s.contains("BBBB-contents"), "{s}");
    assert!(s.lines().any(|l| l.starts_with("I: E")), "{s}");
    assert!(!s.contains("a.txt") && !s.contains("AAAA"), "{s}");
    // The D, b's record, its end and the E each answered: four acks.
    let acks = s.lines().filter(|l| l.starts_with("O: \\0")).count();
    assert_eq!(acks, 4, "{s}");
    assert!(s.lines().any(|l| l.starts_with("#: ")), "the exit line: {s}");
    assert!(s.starts_with("# scptrace: "), "the header: {s}");

    let none = scptrace(&["show", "--file", "nothing*", f], sb.path());
    assert_eq!(none.status.code(), Some(0), "{}", stderr(&none));
    let n = stdout(&none);
    assert!(
        n.starts_with("# scptrace: ") && n.contains("no file matches"),
        "{n}"
    );
    assert!(
        !n.lines().any(|l| l.starts_with("I: ") || l.starts_with("O: ")),
        "{n}"
    );

    // The same upload over SFTP (scp without -O).
    let slog = sb.p("s.log");
    let sdst = sb.p("sdst");
    fs::create_dir_all(&sdst).unwrap();
    let mut c = arranged(&sb, bin());
    c.args(["record", "--data", "full", "-o", slog.to_str().unwrap()])
        .args(["--", REAL_SCP, "-S"])
        .arg(local_ssh())
        .args([os("-r"), os(&src), remote(&sdst)]);
    run(&mut c, Input::Null, DEADLINE).assert_success();
    assert_eq!(fs::read(sdst.join("dir/b.txt")).unwrap(), b"BBBB-contents\n");
    let o = scptrace(
        &[
            "show",
            "--timestamps=off",
            "--file",
            "*/b.txt",
            slog.to_str().unwrap(),
        ],
        sb.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = stdout(&o);
    let has = |w: &str| s.lines().any(|l| l.contains(w));
    assert!(has("OPEN") && has("b.txt"), "{s}");
    assert!(
        has("HANDLE") && has("WRITE") && has("CLOSE") && has("STATUS"),
        "{s}"
    );
    assert!(!s.contains("a.txt") && !s.contains("no file matches"), "{s}");
}
