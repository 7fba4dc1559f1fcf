//! The command line (issue 13, "Command line"): unknown flags, the
//! transcript cap's flag and notice, misspelt config keys, an `-o` that
//! cannot be written, and one error format without `(os error N)`. Every
//! test runs the built binary.

use std::fs;
use std::path::{Path, PathBuf};

use crate::record::{arranged, local_ssh, os, printed_paths, record, remote, standin_transcripts};
use crate::util::*;

/// `scptrace ARGS` in the sandbox, stdin empty.
fn scptrace(sb: &Sandbox, args: &[&str]) -> Finished {
    let mut c = sb.command_in(bin());
    c.args(args);
    run(&mut c, Input::Null, DEADLINE)
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

// ---- 1. unknown flags are clap's usage error, the program's own pass through ----

#[test]
fn unknown_flags_before_the_program_are_a_usage_error() {
    let sb = Sandbox::new();
    for cmd in ["run", "record"] {
        let f = scptrace(&sb, &[cmd, "--bogus", "--", "true"]);
        let err = f.stderr_text();
        assert_eq!(f.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.starts_with("error: unexpected argument '--bogus' found"),
            "{cmd}: {err}"
        );
        assert!(
            err.contains(&format!("Usage: scptrace {cmd} [OPTIONS]")),
            "{cmd}: {err}"
        );
        assert!(!err.contains("not found on PATH"), "{cmd}: {err}");
    }
}

/// An scp sink session: one 6-byte file `f`, as a client would send it.
const UPLOAD: &[u8] = b"C0644 6 f\nhello\n\0";

#[test]
fn the_programs_own_arguments_pass_through_untouched() {
    let sb = Sandbox::new();
    // `--` then the program, with options of its own, some of them ours too.
    for (i, form) in [
        &["--", REAL_SCP, "-O", "-t"][..],
        &["scp", "-t"][..], // the first word that is no flag starts the program
        &["--", "scp", "-d", "-t"][..],
    ]
    .into_iter()
    .enumerate()
    {
        let dst = sb.p(&format!("dst{i}"));
        fs::create_dir(&dst).unwrap();
        let t = sb.p(&format!("t{i}.log"));
        let mut c = sb.command_in(bin());
        c.args(["run", "-o", t.to_str().unwrap()]).args(form).arg(&dst);
        let f = run(&mut c, Input::Bytes(UPLOAD), DEADLINE);
        f.assert_success();
        assert_eq!(fs::read(dst.join("f")).unwrap(), b"hello\n", "{form:?}");
        let tr = Transcript::read(&t);
        let words: Vec<&str> = form.iter().copied().filter(|w| *w != "--").collect();
        let want = format!("{} {}", words[1..].join(" "), dst.display());
        assert!(
            tr.invocation().ends_with(&format!("scp {want}")),
            "{form:?}: {}",
            tr.invocation()
        );
        assert_eq!(tr.exit(), 0);
    }
    // Flags scptrace has, after the program, are the program's.
    let mut c = sb.command_in(bin());
    c.args(["run", "-o", sb.p("echo.log").to_str().unwrap()])
        .args(["echo", "--data", "full", "-o", "x", "--bogus", "--", "-t"]);
    let f = run(&mut c, Input::Null, DEADLINE);
    f.assert_success();
    assert_eq!(f.stdout, b"--data full -o x --bogus -- -t\n");
}

// ---- 2. --max-log-bytes, and the one line on stderr ----

/// The stderr lines about the cap.
fn cap_notices(f: &Finished) -> Vec<String> {
    f.stderr_text()
        .lines()
        .filter(|l| l.contains("max_log_bytes"))
        .map(str::to_string)
        .collect()
}

#[test]
fn max_log_bytes_caps_the_transcript_and_record_says_so_once() {
    let sb = Sandbox::new();
    let src = sb.p("big.bin");
    fs::write(&src, random_bytes(1 << 20, 13)).unwrap();
    let dst = sb.p("dst");
    fs::create_dir(&dst).unwrap();
    let t = sb.p("t.log");
    // The remote stand-in is capped too (from the environment): it must not
    // say so on its stderr, which the client shows.
    let mut c = arranged(&sb, bin());
    c.env("SCPTRACE_MAX_LOG_BYTES", "32K")
        .args(["record", "--data", "full", "--max-log-bytes", "64K", "-o"])
        .arg(&t)
        .args(["--", REAL_SCP, "-O", "-S"])
        .arg(local_ssh())
        .arg(&src)
        .arg(remote(&dst.join("")));
    let f = run(&mut c, Input::Null, DEADLINE);
    f.assert_success();
    assert_eq!(fs::read(dst.join("big.bin")).unwrap(), fs::read(&src).unwrap());
    let notices = cap_notices(&f);
    assert_eq!(notices.len(), 1, "{}", f.stderr_text());
    assert_eq!(
        notices[0],
        format!(
            "scptrace: warning: transcript {} reached max_log_bytes (65536 B): file contents are no longer shown in it; \
             --max-log-bytes SIZE raises the cap, 0 removes it",
            t.display()
        )
    );
    let tr = Transcript::parse(&t);
    let reached: Vec<String> = tr
        .problems()
        .into_iter()
        .filter(|p| p.starts_with("transcript reached"))
        .collect();
    assert_eq!(reached.len(), 1, "{:?}", tr.problems());
    assert!(reached[0].ends_with("(max_log_bytes 65536): file contents are no longer shown"));
    // 1.25 × the cap, plus the one data line that crossed it (up to 64 KiB
    // of bytes, escaped), against over 3 MiB for the whole file escaped.
    assert!(tr.text.len() < 400 << 10, "{} B", tr.text.len());
    assert_eq!(tr.exit(), 0);
    // The stand-in capped its own transcript, silently.
    let theirs = standin_transcripts(&sb);
    assert_eq!(theirs.len(), 1);
    assert!(
        theirs[0].has_line(|l| l.starts_with("!! transcript reached") && l.contains("max_log_bytes 32768")),
        "{}",
        tail(&theirs[0].text)
    );

    // 0: no cap, no notice, every byte shown.
    let t0 = sb.p("t0.log");
    let dst0 = sb.p("dst0");
    fs::create_dir(&dst0).unwrap();
    let g = record(
        &sb,
        &[
            "--data",
            "full",
            "--max-log-bytes",
            "0",
            "-o",
            t0.to_str().unwrap(),
        ],
        &[os(&src), remote(&dst0.join(""))],
    );
    g.assert_success();
    assert!(cap_notices(&g).is_empty(), "{}", g.stderr_text());
    let tr0 = Transcript::parse(&t0);
    assert!(tr0.problems().is_empty(), "{:?}", tr0.problems());
    assert!(tr0.stream('I').len() > 1 << 20);
}

#[test]
fn run_says_the_cap_once_and_bad_sizes_are_usage_errors() {
    let sb = Sandbox::new();
    let t = sb.p("t.log");
    let dst = sb.p("dst");
    fs::create_dir(&dst).unwrap();
    let data = random_bytes(200_000, 3);
    let mut upload = format!("C0644 {} f\n", data.len()).into_bytes();
    upload.extend_from_slice(&data);
    upload.push(0);
    let mut c = sb.command_in(bin());
    c.args(["run", "--data", "full", "--max-log-bytes", "16k", "-o"])
        .arg(&t)
        .args(["--", REAL_SCP, "-t"])
        .arg(&dst);
    let f = run(&mut c, Input::Bytes(&upload), DEADLINE);
    f.assert_success();
    assert_eq!(fs::read(dst.join("f")).unwrap(), data);
    assert_eq!(cap_notices(&f).len(), 1, "{}", f.stderr_text());
    assert!(
        Transcript::read(&t)
            .has_line(|l| l.starts_with("!! transcript reached") && l.contains("(max_log_bytes 16384)"))
    );

    for bad in ["12Q", "-1", "lots"] {
        let flag = format!("--max-log-bytes={bad}");
        let f = scptrace(&sb, &["run", &flag, "--", "true"]);
        assert_eq!(f.status.code(), Some(2), "{bad}: {}", f.stderr_text());
        assert!(
            f.stderr_text().contains("invalid value") && f.stderr_text().contains("--max-log-bytes"),
            "{bad}: {}",
            f.stderr_text()
        );
    }
}

// ---- 3. unknown config keys ----

/// Writes the user's config file (under the sandbox's XDG_CONFIG_HOME).
fn user_config(sb: &Sandbox, text: &str) -> PathBuf {
    let dir = sb.p(".config/scptrace");
    fs::create_dir_all(&dir).unwrap();
    let p = dir.join("config.toml");
    fs::write(&p, text).unwrap();
    p
}

const MISSPELT: &str = "# tracing\ndata = \"head\"\nmax_log_byte = 0\n";

fn misspelt_warning(config: &Path) -> String {
    format!(
        "scptrace: warning: {}:3: unknown key \"max_log_byte\" ignored; did you mean \"max_log_bytes\"?",
        config.display()
    )
}

#[test]
fn a_misspelt_config_key_is_named_with_the_nearest_known_one() {
    let sb = Sandbox::new();
    let config = user_config(&sb, MISSPELT);
    let want = misspelt_warning(&config);

    let f = scptrace(&sb, &["run", "-o", sb.p("t.log").to_str().unwrap(), "--", "true"]);
    f.assert_success();
    assert_eq!(lines(&f.stderr_text()), [want.as_str()]);

    // doctor lists it, in text and JSON.
    let d = scptrace(&sb, &["doctor"]);
    let out = String::from_utf8_lossy(&d.stdout).into_owned();
    let bare = want.strip_prefix("scptrace: ").unwrap();
    assert!(out.lines().any(|l| l == bare), "{out}");
    let j = scptrace(&sb, &["doctor", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    let warnings: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    assert!(
        warnings.contains(&bare.strip_prefix("warning: ").unwrap()),
        "{warnings:?}"
    );

    // A key far from every known one gets the list instead.
    let config = user_config(&sb, "frobnicate = 1\n");
    let f = scptrace(
        &sb,
        &["run", "-o", sb.p("t2.log").to_str().unwrap(), "--", "true"],
    );
    let err = f.stderr_text();
    assert!(
        err.starts_with(&format!(
            "scptrace: warning: {}:1: unknown key \"frobnicate\" ignored; known keys: ",
            config.display()
        )) && err.contains("max_log_bytes"),
        "{err}"
    );
}

#[test]
fn record_warns_of_an_unknown_key_once_for_all_its_connections() {
    let sb = Sandbox::new();
    let config = user_config(&sb, MISSPELT);
    let src = sb.p("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), b"a\n").unwrap();
    fs::write(src.join("b"), b"b\n").unwrap();
    let dst = sb.p("dst");
    fs::create_dir(&dst).unwrap();
    // The "remote" scp is the plain one here: only record reads the config.
    let mut c = sb.command_in(bin());
    c.env("LOCAL_SSH_PATH", "/usr/bin:/bin")
        .args(["record", "-o"])
        .arg(sb.p("t.log"))
        .args(["--", REAL_SCP, "-O", "-S"])
        .arg(local_ssh())
        .arg(remote(&src.join("a")))
        .arg(remote(&src.join("b")))
        .arg(&dst);
    let f = run(&mut c, Input::Null, DEADLINE);
    f.assert_success();
    assert_eq!(printed_paths(&f).len(), 2, "two connections: {}", f.stderr_text());
    let want = misspelt_warning(&config);
    let warned = f.stderr_text().lines().filter(|l| *l == want).count();
    assert_eq!(warned, 1, "{}", f.stderr_text());
}

#[test]
fn the_standin_warns_of_an_unknown_key_without_touching_the_transfer() {
    let sb = Sandbox::new();
    let config = user_config(&sb, MISSPELT);
    let src = sb.p("a.bin");
    fs::write(&src, random_bytes(50_000, 9)).unwrap();
    let dst = sb.p("dst");
    fs::create_dir(&dst).unwrap();
    let mut c = sb.scp_client(
        &[src.to_str().unwrap(), &format!("localhost:{}/", dst.display())],
        &[],
    );
    let f = run(&mut c, Input::Null, DEADLINE);
    f.assert_success();
    assert_eq!(fs::read(dst.join("a.bin")).unwrap(), fs::read(&src).unwrap());
    // The stand-in's stderr is what the client shows: one line there.
    assert_eq!(lines(&f.stderr_text()), [misspelt_warning(&config).as_str()]);
    let t = &standin_transcripts(&sb)[0];
    assert_eq!(t.exit(), 0);
}

// ---- 4. an -o that cannot be written fails before anything runs ----

#[test]
fn an_unwritable_output_fails_before_the_program_starts() {
    let sb = Sandbox::new();
    let bad = sb.p("nonexist/t.log");
    let want = format!(
        "scptrace: {}: cannot create transcript: No such file or directory; give -o a writable path",
        bad.display()
    );
    // run: the program would create the marker.
    let marker = sb.p("marker");
    let mut c = sb.command_in(bin());
    c.args(["run", "-o"]).arg(&bad).args(["--", "touch"]).arg(&marker);
    let f = run(&mut c, Input::Null, DEADLINE);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
    assert_eq!(lines(&f.stderr_text()), [want.as_str()]);
    assert!(!marker.exists(), "the program ran");

    // record: the upload would create dst/a.
    let a = sb.p("a");
    fs::write(&a, b"a\n").unwrap();
    let dst = sb.p("dst");
    fs::create_dir(&dst).unwrap();
    let f = record(
        &sb,
        &["-o", bad.to_str().unwrap()],
        &[os(&a), remote(&dst.join(""))],
    );
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
    assert_eq!(lines(&f.stderr_text()), [want.as_str()]);
    assert!(!dst.join("a").exists(), "the client ran");
    assert!(files_in(&sb.logs()).is_empty());

    // A directory, and a symlink (never written through): the same, with the reason.
    for (target, why) in [
        (sb.p("dst"), "Is a directory"),
        (
            sb.p("link.log"),
            "it is a symbolic link, which scptrace never writes through",
        ),
    ] {
        if target.ends_with("link.log") {
            std::os::unix::fs::symlink(sb.p("elsewhere"), &target).unwrap();
        }
        let f = scptrace(
            &sb,
            &[
                "run",
                "-o",
                target.to_str().unwrap(),
                "--",
                "touch",
                marker.to_str().unwrap(),
            ],
        );
        assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
        assert_eq!(
            lines(&f.stderr_text()),
            [format!(
                "scptrace: {}: cannot create transcript: {why}; give -o a writable path",
                target.display()
            )
            .as_str()]
        );
        assert!(!marker.exists() && !sb.p("elsewhere").exists());
    }

    // A writable -o that did not exist is created by the run, not by the check.
    let good = sb.p("good.log");
    let f = record(
        &sb,
        &["-o", good.to_str().unwrap()],
        &[os(&a), remote(&dst.join(""))],
    );
    f.assert_success();
    assert_eq!(printed_paths(&f), vec![good.clone()]);
    assert_eq!(Transcript::read(&good).exit(), 0);
}

// ---- 5. one error format: the file named, no `(os error N)` ----

#[test]
fn read_errors_name_the_file_and_read_as_plain_words() {
    let sb = Sandbox::new();
    let missing = sb.p("missing.log");
    let dir = sb.p("adir");
    fs::create_dir(&dir).unwrap();
    let mut cases: Vec<(PathBuf, &str)> = vec![
        (missing, "No such file or directory"),
        (dir, "Is a directory"),
        // Opens, then every read fails with EIO.
        (PathBuf::from("/proc/self/mem"), "I/O error"),
    ];
    let unreadable = sb.p("unreadable.log");
    fs::write(&unreadable, b"# scptrace: 1\n").unwrap();
    set_mode(&unreadable, 0o000);
    if fs::read(&unreadable).is_err() {
        // (Not as root, who reads it anyway.)
        cases.push((unreadable, "Permission denied"));
    }
    for (file, why) in &cases {
        let name = file.to_str().unwrap();
        for cmd in [&["show"][..], &["check"], &["show", "--summary"], &["replay"]] {
            let mut args = cmd.to_vec();
            args.push(name);
            let f = scptrace(&sb, &args);
            let err = f.stderr_text();
            assert_eq!(f.status.code(), Some(2), "{args:?}: {err}");
            assert!(!err.contains("(os error"), "{args:?}: {err}");
            let line = err
                .lines()
                .find(|l| l.contains(why))
                .unwrap_or_else(|| panic!("{args:?}: no {why:?} in {err}"));
            assert!(
                line.starts_with(&format!("scptrace: {name}: ")),
                "{args:?}: {line}"
            );
        }
    }
}

#[test]
fn the_transcript_says_why_a_program_could_not_start_in_plain_words() {
    let sb = Sandbox::new();
    let t = sb.p("t.log");
    let f = scptrace(
        &sb,
        &["run", "-o", t.to_str().unwrap(), "--", "/nonexistent/prog"],
    );
    assert_eq!(f.status.code(), Some(1));
    assert_eq!(
        lines(&f.stderr_text()),
        ["scptrace: cannot run /nonexistent/prog: No such file or directory"]
    );
    let tr = Transcript::read(&t);
    assert!(
        tr.has_line(|l| l == "!! cannot start /nonexistent/prog: No such file or directory"),
        "{}",
        tail(&tr.text)
    );
}

// ---- 6. doctor's json and everyone else's jsonl ----

#[test]
fn doctor_help_says_why_it_is_json_not_jsonl() {
    let sb = Sandbox::new();
    let f = scptrace(&sb, &["doctor", "--help"]);
    f.assert_success();
    let out = String::from_utf8_lossy(&f.stdout).replace('\n', " ");
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.contains("`json` is one pretty-printed object"), "{out}");
    assert!(
        out.contains("use `jsonl`, a stream of one object per line"),
        "{out}"
    );
}
