//! Issue 10, "No raw control bytes reach a terminal or a transcript": every
//! C0, C1, DEL and bidirectional control (and U+2028/U+2029), placed in
//! every part of a transcript and of a command line, through every command
//! and every output form. What may come out is only what
//! [`assert_no_raw_controls`] allows: the newline ending a line, the TAB
//! before an annotation, and with `--color always` ESC starting a colour.
//! Where scptrace quotes a command line (the invocation line), the quoting
//! must also stay exact: bash reads back the very bytes that ran.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::util::*;
use scptrace::shell::shell_split;
use scptrace::transcript::parse::parse_text;

/// Every character that must never come out raw, but LF (which ends a
/// transcript line; it is in [`name_chars`]).
fn hostile() -> String {
    let mut s: String = (0u32..0x20)
        .filter(|&c| c != 0x0a)
        .chain([0x7f])
        .chain(0x80..0xa0)
        .chain([0x061c, 0x200e, 0x200f])
        .chain(0x202a..=0x202e)
        .chain(0x2066..=0x2069)
        .chain([0x2028, 0x2029])
        .filter_map(char::from_u32)
        .collect();
    // A terminal sequence whole, as an attacker would send it.
    s.push_str("\x1b[2J\x1b]0;pwned\x07");
    s
}

/// The same, as a file name or an argument or an environment value can hold
/// it: LF in, NUL and `/` out.
fn name_chars() -> String {
    let mut s: String = hostile().chars().filter(|&c| c != '\0').collect();
    s.push('\n');
    s
}

fn os(s: &str) -> OsString {
    OsString::from(s)
}

fn path_with(dir: &Path, prefix: &str, middle: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{prefix}{middle}{suffix}"))
}

/// A hand-made text transcript holding [`hostile`] everywhere a line has
/// text: header values, the invocation, notes, annotations (file names,
/// warning texts, data, unknown ones), `!!` lines (a violation and a tracing
/// problem), stderr lines; names and texts in bytes escaped as they must be.
fn hostile_transcript() -> String {
    let h = hostile();
    let e = escape(h.as_bytes());
    format!(
        "# scptrace: 0.1.0\n\
         # host: h{h}\n\
         # user: u{h}\n\
         >>> New command invocation: /usr/bin/scp -t /x{h}\n\
         >>> note {h}\n\
         O: \\0\t# ack{h}\n\
         I: C0644 3 {e}\\n\t# file \"{h}\", 3 B, mode 0644\n\
         O: \\0\t# ack\n\
         I: abc\t# data of \"{h}\", 3 B\n\
         I: \\0\t# end of \"{h}\"\n\
         O: \\x01scp: {e}\\n\t# warning: scp: {h}\n\
         O: \\x02{e}\\n\t# error: {h}\n\
         E: {e}\t# {h}\n\
         !! name-slash: the name \"{h}\" contains '/'\n\
         !! tracing problem {h}\n\
         >>> stdin closed\n\
         >>> {h}\n\
         #: 1\n"
    )
}

/// The same as JSON Lines, with DEL, C1 and the bidi controls raw in its
/// strings (valid JSON; C0 must be escaped there).
fn hostile_jsonl(text: &str) -> String {
    let mut out = String::new();
    for p in parse_text(text.as_bytes()).unwrap() {
        let (mut line, mut scratch) = (Vec::new(), Vec::new());
        scptrace::transcript::jsonl::render(&p.event, p.timestamped, &mut scratch, &mut line).unwrap();
        let mut line = String::from_utf8(line).unwrap();
        for c in hostile().chars().filter(|&c| c as u32 >= 0x7f) {
            line = line.replace(&format!("\\u{:04x}", c as u32), &c.to_string());
        }
        out.push_str(&line);
        out.push('\n');
    }
    assert!(
        out.contains('\u{9b}') && out.contains('\u{202e}'),
        "raw in the JSON"
    );
    out
}

fn scptrace(sb: &Sandbox, args: &[&OsStr]) -> Finished {
    let mut c = sb.command(bin());
    c.args(args).current_dir(sb.path());
    run(&mut c, Input::Null, DEADLINE)
}

/// Both streams of `f` hold no raw control (stdout colour with `sgr`), and
/// scptrace did not panic.
fn assert_clean(f: &Finished, sgr: bool, what: &str) {
    assert!(
        !f.stderr_text().contains("panicked"),
        "{what}: {}",
        f.stderr_text()
    );
    assert_no_raw_controls(&f.stdout, sgr, &format!("{what} (stdout)"));
    assert_no_raw_controls(&f.stderr, false, &format!("{what} (stderr)"));
}

/// Every line of JSON output parses.
fn assert_json_lines(out: &[u8], what: &str) {
    for l in String::from_utf8_lossy(out).lines().filter(|l| !l.is_empty()) {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{what}: {e}: {l}"));
    }
}

/// Issue 10: `show` (every form), `check` and `replay` on transcripts
/// holding every control character, text and JSON Lines, named with them
/// on the command line, and missing. On main, `show --format jsonl` and
/// `--summary --format jsonl` let DEL, C1 and bidi controls through, the
/// text forms and `check` let bidi controls through, and errors printed
/// file names raw.
/// `ls` on a log directory whose transcripts hold controls in their start
/// header, their invocation (the program's name is shown) and a junk line
/// (quoted in the "not a transcript" line): none reaches the terminal raw.
#[test]
fn ls_keeps_controls_from_the_log_directory_off_the_terminal() {
    let sb = Sandbox::new();
    let h = hostile();
    let logs = sb.p("ls-logs");
    fs::create_dir_all(&logs).unwrap();
    let text = hostile_transcript();
    fs::write(logs.join("20260101T000000.000001Z-1-scp.log"), &text).unwrap();
    fs::write(
        logs.join("20260101T000000.000002Z-2-scp.log"),
        hostile_jsonl(&text),
    )
    .unwrap();
    let odd = format!("# start: s{h}\n>>> New command invocation: /usr/bin/p{h}\n#: 0\n");
    fs::write(logs.join("20260101T000000.000003Z-3-p.log"), odd).unwrap();
    fs::write(
        logs.join("20260101T000000.000004Z-4-junk.log"),
        format!("junk {h}\n"),
    )
    .unwrap();
    for args in [&["ls"][..], &["ls", "--format", "jsonl"]] {
        let mut c = sb.command(bin());
        c.args(args).current_dir(sb.path()).env("SCPTRACE_LOG_DIR", &logs);
        let f = run(&mut c, Input::Null, DEADLINE);
        assert_clean(&f, false, &format!("{args:?}"));
        assert_eq!(f.status.code(), Some(0), "{args:?}: {}", f.stderr_text());
        let out = String::from_utf8_lossy(&f.stdout).into_owned();
        assert_eq!(out.lines().count(), if args.len() == 1 { 5 } else { 4 }, "{out}");
        assert!(out.contains("junk") && out.contains("not a transcript"), "{out}");
        if args.len() > 1 {
            assert_json_lines(&f.stdout, &format!("{args:?}"));
        }
    }
}

#[test]
fn every_command_and_form_keeps_controls_from_a_transcript_off_the_terminal() {
    let sb = Sandbox::new();
    let text = hostile_transcript();
    let plain = sb.p("t.log");
    fs::write(&plain, &text).unwrap();
    let jsonl = sb.p("t.jsonl");
    fs::write(&jsonl, hostile_jsonl(&text)).unwrap();
    let named = path_with(sb.path(), "n", &name_chars(), ".log");
    fs::write(&named, &text).unwrap();
    let missing = path_with(sb.path(), "missing", &name_chars(), ".log");
    let forms: Vec<(Vec<&str>, bool, bool)> = vec![
        // (show's arguments, colour, JSON)
        (vec!["--color", "never"], false, false),
        (vec!["--color", "always"], true, false),
        (vec!["--format", "jsonl"], false, true),
        (vec!["--summary", "--color", "never"], false, false),
        (vec!["--summary", "--color", "always"], true, false),
        (vec!["--summary", "--format", "jsonl"], false, true),
        (vec!["--violations", "--color", "never"], false, false),
        (vec!["--violations", "--color", "always"], true, false),
        (vec!["--violations", "--format", "jsonl"], false, true),
    ];
    let file_sets: Vec<Vec<&Path>> = vec![
        vec![&plain],
        vec![&jsonl],
        vec![&named, &jsonl],
        vec![&plain, &missing],
    ];
    for files in &file_sets {
        let what = format!(
            "{:?}",
            files.iter().map(|f| f.file_name().unwrap()).collect::<Vec<_>>()
        );
        for (args, sgr, json) in &forms {
            let mut argv: Vec<&OsStr> = vec!["show".as_ref()];
            argv.extend(args.iter().map(OsStr::new));
            argv.extend(files.iter().map(|f| f.as_os_str()));
            let f = scptrace(&sb, &argv);
            assert_clean(&f, *sgr, &format!("show {args:?} {what}"));
            if *json {
                assert_json_lines(&f.stdout, &format!("show {args:?} {what}"));
            }
            let want = if files.contains(&missing.as_path()) { 2 } else { 0 };
            assert_eq!(
                f.status.code(),
                Some(want),
                "show {args:?} {what}: {}",
                f.stderr_text()
            );
        }
        for color in ["never", "always"] {
            let mut argv: Vec<&OsStr> = vec!["check".as_ref(), "--color".as_ref(), color.as_ref()];
            argv.extend(files.iter().map(|f| f.as_os_str()));
            let f = scptrace(&sb, &argv);
            assert_clean(&f, color == "always", &format!("check --color {color} {what}"));
            assert!(f.status.code().is_some(), "check {what}: {:?}", f.status);
        }
    }
    // The JSON Lines conversion keeps the text exactly (escaped, not lost).
    let f = scptrace(
        &sb,
        &[
            "show".as_ref(),
            "--format".as_ref(),
            "jsonl".as_ref(),
            plain.as_os_str(),
        ],
    );
    let first_note = String::from_utf8_lossy(&f.stdout)
        .lines()
        .find(|l| l.contains(r#""kind":"note""#))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .unwrap();
    assert_eq!(first_note["text"], format!("note {}", hostile()));

    // replay: the report, the notes, the difference, and its refusals.
    for (n, file) in [&plain, &jsonl, &named, &missing].into_iter().enumerate() {
        let target = sb.p(&format!("target{n}"));
        let f = scptrace(
            &sb,
            &[
                "replay".as_ref(),
                file.as_os_str(),
                "--target".as_ref(),
                target.as_os_str(),
                "--timeout".as_ref(),
                "1".as_ref(),
            ],
        );
        assert_clean(
            &f,
            false,
            &format!("replay {}", escape(file.as_os_str().as_bytes())),
        );
    }
}

/// Issue 10: `doctor` printed the log directory, PATH, the scp found and
/// the settings raw, and its JSON let DEL, C1 and bidi controls through.
#[test]
fn doctor_shows_paths_and_settings_from_outside_escaped() {
    let sb = Sandbox::new();
    let n = name_chars();
    let bin_dir = path_with(sb.path(), "bin", &n, "");
    fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(bin(), bin_dir.join("scp")).unwrap();
    let log_dir = path_with(sb.path(), "logs", &n, "");
    let mut path = bin_dir.clone().into_os_string();
    path.push(":/usr/bin:/bin");
    for format in ["text", "json"] {
        let mut c = sb.command(bin());
        c.args(["doctor", "--format", format])
            .env("PATH", &path)
            .env("SCPTRACE_LOG_DIR", &log_dir)
            .env("SCPTRACE_REAL_SCP", path_with(sb.path(), "real", &n, ""));
        let f = run(&mut c, Input::Null, DEADLINE);
        assert_clean(&f, false, &format!("doctor --format {format}"));
        if format == "json" {
            let v: serde_json::Value = serde_json::from_slice(&f.stdout).unwrap();
            assert_eq!(
                v["log_dir"]["path"].as_str().map(str::as_bytes),
                Some(log_dir.as_os_str().as_bytes()),
                "the value is exact"
            );
        }
    }
}

/// `bash` reads `line` as a command and gives back its words, NUL-separated:
/// what pasting the invocation line into a shell would run.
fn bash_words(line: &str) -> Vec<Vec<u8>> {
    let script = format!("set -- {line}; printf '%s\\0' \"$@\"");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut words: Vec<Vec<u8>> = out.stdout.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    words.pop();
    words
}

/// The invocation line of the one transcript in `dir`, checked: the file
/// holds no raw control, and the line's words are `argv`, for our lexer and
/// for bash. An empty first word stands for the `program` header (forced's
/// shell: `$SHELL` is not trusted in an ssh session, so it is the user's
/// passwd shell).
fn invocation_of(dir: &Path, argv: &[&[u8]], what: &str) -> String {
    let logs = files_in(dir);
    assert_eq!(logs.len(), 1, "{what}: {logs:?}");
    let bytes = fs::read(&logs[0]).unwrap();
    assert_no_raw_controls(&bytes, false, &format!("{what}: the transcript"));
    let text = String::from_utf8(bytes).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(">>> New command invocation: "))
        .unwrap_or_else(|| panic!("{what}: no invocation line:\n{text}"))
        .to_string();
    let mut want: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
    if want[0].is_empty() {
        let program = text.lines().find_map(|l| l.strip_prefix("# program: "));
        want[0] = program
            .unwrap_or_else(|| panic!("{what}: no program header"))
            .into();
    }
    assert_eq!(shell_split(line.as_bytes()).unwrap(), want, "{what}: {line}");
    assert_eq!(bash_words(&line), want, "{what}: bash reads {line}");
    line
}

/// Issue 10: `forced` wrote SSH_ORIGINAL_COMMAND raw into the invocation
/// line (ESC, BEL, CR and C1 were seen), and the stand-in quoted C1 and
/// bidi controls raw inside '…'. Now the line holds none, and pasted into
/// bash it is the very command that ran.
#[test]
fn forced_and_the_standin_write_an_exact_invocation_line_without_controls() {
    let sb = Sandbox::new();
    let n = name_chars();
    // The stand-in, with a target directory named with every control, and
    // one with only C1 and bidirectional controls (UTF-8 that main quoted
    // raw in '…').
    let dst = path_with(sb.path(), "d", &n, "");
    let c1_bidi = path_with(
        sb.path(),
        "c1\u{9b}31m\u{85}",
        "-bidi\u{202e}\u{2066}",
        "-sep\u{2028}",
    );
    for dir in [&c1_bidi, &dst] {
        fs::create_dir(dir).unwrap();
        let _ = fs::remove_dir_all(sb.logs());
        let mut c = sb.command(sb.standin());
        c.arg("-t").arg(dir).env("SCPTRACE_LOG_DIR", sb.logs());
        let f = run(&mut c, Input::Null, DEADLINE);
        // stdout is scp's, relayed (its ack): only stderr is ours.
        assert_no_raw_controls(&f.stderr, false, "stand-in (stderr)");
        invocation_of(
            &sb.logs(),
            &[REAL_SCP.as_bytes(), b"-t", dir.as_os_str().as_bytes()],
            "stand-in",
        );
    }

    // forced: the same target in the original command, single-quoted.
    fs::remove_dir_all(sb.logs()).unwrap();
    let cmd = format!("scp -t '{}'", dst.display());
    let mut c = sb.command(bin());
    c.arg("forced")
        .env("SSH_ORIGINAL_COMMAND", &cmd)
        .env("SCPTRACE_LOG_DIR", sb.logs());
    let f = run(&mut c, Input::Null, DEADLINE);
    assert_no_raw_controls(&f.stderr, false, "forced (stderr)");
    let line = invocation_of(&sb.logs(), &[b"", b"-c", cmd.as_bytes()], "forced");
    // check still reads it as the scp server session it is.
    let log = files_in(&sb.logs()).remove(0);
    let f = scptrace(&sb, &["check".as_ref(), log.as_os_str()]);
    assert_clean(&f, false, "check of forced's transcript");
    let out = String::from_utf8_lossy(&f.stdout);
    assert!(!out.contains("not decoded"), "{line}: {out}");

    // The SFTP servers forced traces, and `scptrace sftp-server`: the
    // start directory named with every control.
    const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
    if !Path::new(SFTP_SERVER).exists() {
        eprintln!("skipped the SFTP cases: no {SFTP_SERVER}");
        return;
    }
    let subsystem = format!("{SFTP_SERVER} -d '{}'", dst.display());
    let internal = format!("internal-sftp -d '{}'", dst.display());
    let d = dst.as_os_str().as_bytes();
    // (what, forced's SSH_ORIGINAL_COMMAND or sftp-server, the argv shown)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<&'a [u8]>);
    let cases: Vec<Case> = vec![
        (
            "forced, a Subsystem command",
            Some(&subsystem),
            vec![b"", b"-c", subsystem.as_bytes()],
        ),
        (
            "forced, internal-sftp",
            Some(&internal),
            vec![SFTP_SERVER.as_bytes(), b"-d", d],
        ),
        ("sftp-server", None, vec![SFTP_SERVER.as_bytes(), b"-d", d]),
    ];
    for (what, original, argv) in cases {
        fs::remove_dir_all(sb.logs()).unwrap();
        let mut c = sb.command(bin());
        match original {
            Some(cmd) => c.arg("forced").env("SSH_ORIGINAL_COMMAND", cmd),
            None => c.args(["sftp-server", "--", SFTP_SERVER, "-d"]).arg(&dst),
        };
        c.env("SCPTRACE_LOG_DIR", sb.logs());
        let f = run(&mut c, Input::Null, DEADLINE);
        assert_no_raw_controls(&f.stderr, false, &format!("{what} (stderr)"));
        invocation_of(&sb.logs(), &argv, what);
        let log = files_in(&sb.logs()).remove(0);
        let f = scptrace(&sb, &["check".as_ref(), log.as_os_str()]);
        let out = String::from_utf8_lossy(&f.stdout);
        assert!(!out.contains("not decoded"), "{what}: {out}");
    }
}

/// Issue 10: what the tap writes live on stderr (`run`/`record` `-o -`),
/// into a transcript file, and in its messages. On main, `run -o -` wrote
/// a file named `-`, the invocation line held C1 and bidi controls raw,
/// `record -o -` showed the remote command raw, and error messages and
/// warnings named paths raw.
#[test]
fn the_tap_writes_no_raw_control_live_in_files_or_in_messages() {
    let sb = Sandbox::new();
    let n = name_chars();
    let h = hostile();
    // run -o -: the transcript on stderr, in every form; the peer's bytes
    // (stdin) hold every control, and so does an argument.
    for (extra, sgr, json) in [
        (vec![], false, false),
        (vec!["--color", "always"], true, false),
        (vec!["--format", "jsonl"], false, true),
        (vec!["--timestamps"], false, false),
    ] {
        let mut c = sb.command(bin());
        c.arg("run")
            .args(["-o", "-"])
            .args(&extra)
            .args(["--", "/bin/sh", "-c", "cat", "sh"])
            .arg(&n)
            .current_dir(sb.path());
        let f = run(&mut c, Input::Bytes(h.as_bytes()), DEADLINE);
        let what = format!("run -o - {extra:?}");
        assert!(!sb.p("-").exists(), "{what}: a file named '-'");
        // stdout is cat's, relayed unchanged: the peer's business.
        assert!(f.stdout.starts_with(h.as_bytes()), "{what}: relayed unchanged");
        assert_no_raw_controls(&f.stderr, sgr, &format!("{what} (stderr)"));
        let err = String::from_utf8_lossy(&f.stderr);
        assert!(err.contains("invocation"), "{what}: {err}");
        if json {
            assert_json_lines(&f.stderr, &what);
        }
    }

    // run -o FILE: stderr bytes (E:), a program that cannot start (a `!!`
    // line naming it, the program header), every control in the arguments.
    let t = sb.p("t.log");
    let script = "printf '%s' \"$1\" >&2";
    let mut c = sb.command(bin());
    c.arg("run")
        .arg("-o")
        .arg(&t)
        .args(["--", "/bin/sh", "-c", script, "sh"])
        .arg(&n);
    let f = run(&mut c, Input::Null, DEADLINE);
    assert_eq!(f.stderr, n.as_bytes(), "the program's stderr, relayed unchanged");
    let text = fs::read(&t).unwrap();
    assert_no_raw_controls(&text, false, "run -o FILE: the transcript");
    assert!(String::from_utf8_lossy(&text).contains("E: "));
    let bad_program = path_with(sb.path(), "no", &n, "");
    let mut c = sb.command(bin());
    c.arg("run").arg("-o").arg(&t).arg("--").arg(&bad_program);
    let f = run(&mut c, Input::Null, DEADLINE);
    assert_clean(&f, false, "run of a program that cannot start");
    assert!(f.stderr_text().contains("cannot run"), "{}", f.stderr_text());
    let text = fs::read(&t).unwrap();
    assert_no_raw_controls(&text, false, "run of a program that cannot start: the transcript");
    assert!(String::from_utf8_lossy(&text).contains("!! cannot start"));

    // A transcript that cannot be written: run refuses before starting
    // anything (issue 13), and the error names the path, escaped.
    let not_a_dir = sb.p("file");
    fs::write(&not_a_dir, b"").unwrap();
    let mut c = sb.command(bin());
    c.arg("run")
        .arg("-o")
        .arg(path_with(&not_a_dir, "t", &n, ".log"))
        .args(["--", "/bin/true"]);
    let f = run(&mut c, Input::Null, DEADLINE);
    assert_clean(&f, false, "run -o UNWRITABLE");
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
    assert!(
        f.stderr_text().contains("cannot create transcript"),
        "{}",
        f.stderr_text()
    );
    assert!(f.stderr_text().contains("\\x1b[2J"), "{}", f.stderr_text());

    // clap's own messages quote the word they refuse.
    let f = scptrace(&sb, &["show".as_ref(), "--format".as_ref(), os(&n).as_os_str()]);
    assert_clean(&f, false, "a refused option value");
    assert_eq!(f.status.code(), Some(2));

    // record -o -: a remote path with every control, through local-ssh;
    // the "remote" stand-in traces the same session into logs/.
    fs::write(sb.p("f"), b"hi\n").unwrap();
    let remote_dir = path_with(sb.path(), "r", &n, "");
    let mut dst = OsString::from("localhost:");
    dst.push(&remote_dir);
    let mut c = crate::record::arranged(&sb, bin());
    c.args(["record", "-o", "-", "--", REAL_SCP, "-O", "-S"])
        .arg(crate::record::local_ssh())
        .arg("f")
        .arg(&dst);
    let f = run(&mut c, Input::Null, DEADLINE);
    // The client's own messages come through its stderr too: only the
    // transcript's lines are ours.
    let ours: Vec<u8> = f
        .stderr
        .split(|&b| b == b'\n')
        .filter(|l| {
            [&b">>> "[..], b"I: ", b"O: ", b"E: ", b"!! ", b"#", b"scptrace: "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    assert_no_raw_controls(&ours, false, "record -o - (stderr)");
    let ours = String::from_utf8_lossy(&ours).into_owned();
    let line = ours
        .lines()
        .find_map(|l| l.strip_prefix(">>> New command invocation: "))
        .unwrap_or_else(|| panic!("record -o -: no invocation line:\n{}", f.stderr_text()));
    let words = shell_split(line.as_bytes()).unwrap();
    assert_eq!(words[..2], [b"sh".to_vec(), b"-c".to_vec()], "{line}");
    assert!(
        words[2].ends_with(remote_dir.as_os_str().as_bytes()),
        "{line}: the remote command, exactly"
    );
    for log in files_in(&sb.logs()) {
        assert_no_raw_controls(
            &fs::read(&log).unwrap(),
            false,
            "record: the remote stand-in's transcript",
        );
    }
}
