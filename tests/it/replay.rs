//! `scptrace replay` (issue 5): transcripts recorded from real transfers
//! (by `record` through the local `-S` arrangement, and by the stand-in on
//! the other side) are played against a fresh real `scp -t` or `scp -f`.
//! Unchanged they must replay cleanly and produce the same files; edited
//! (a size, an ack, a name) they must fail at the first difference and show
//! what the real scp answered.
//!
//! Issue 10: a transcript is hostile input. It must not choose what runs or
//! where anything is written, must not make replay write without bound or
//! hold it in memory, and must not put control characters on the terminal.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::record::{os, record, remote, standin_transcripts};
use crate::util::*;

/// `scptrace replay ARGS`, with temporary directories made inside the
/// sandbox.
pub(crate) fn replay(sb: &Sandbox, args: &[&OsStr]) -> Finished {
    replay_env(sb, args, &[])
}

fn replay_env(sb: &Sandbox, args: &[&OsStr], env: &[(&str, &OsStr)]) -> Finished {
    let tmp = sb.path().join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let mut c = sb.command(bin());
    c.current_dir(sb.path())
        .env("TMPDIR", &tmp)
        .arg("replay")
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c, Input::Null, DEADLINE)
}

/// The directory replay said it made (`working in DIR (a new directory…`).
fn working_dir(f: &Finished) -> PathBuf {
    let err = f.stderr_text();
    err.lines()
        .find_map(|l| l.strip_prefix("scptrace: replay: working in "))
        .and_then(|r| r.split(" (a new directory").next())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no working directory named in:\n{err}"))
}

fn report(f: &Finished) -> String {
    String::from_utf8_lossy(&f.stdout).into_owned()
}

/// A fresh empty directory under the sandbox.
fn fresh(sb: &Sandbox, name: &str) -> PathBuf {
    let d = sb.path().join(name);
    fs::create_dir(&d).unwrap();
    d
}

/// Uploads `files` (name, contents) with record; returns the transcript.
fn recorded_upload(sb: &Sandbox, files: &[(&str, &[u8])], opts: &[&str]) -> PathBuf {
    let src = fresh(sb, "src");
    let dst = fresh(sb, "dst");
    let mut args: Vec<_> = files
        .iter()
        .map(|(name, bytes)| {
            fs::write(src.join(name), bytes).unwrap();
            os(src.join(name))
        })
        .collect();
    args.push(remote(&dst.join("")));
    let t = sb.path().join("t.log");
    let mut all = opts.to_vec();
    all.extend(["-o", t.to_str().unwrap()]);
    record(sb, &all, &args).assert_success();
    t
}

fn a_and_small() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a", b"file a file a file a\n".to_vec()),
        ("with space", b"a name with a space\n".to_vec()),
        ("empty", Vec::new()),
        ("random.bin", random_bytes(60_000, 9)),
    ]
}

fn as_refs<'a>(v: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    v.iter().map(|(n, b)| (*n, b.as_slice())).collect()
}

fn assert_files(dir: &Path, files: &[(&str, Vec<u8>)]) {
    for (name, bytes) in files {
        let got = fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == *bytes, "{name}: contents differ");
    }
    assert_eq!(files_in(dir).len(), files.len());
}

#[test]
fn replay_of_a_recorded_upload_recreates_the_files() {
    let sb = Sandbox::new();
    let files = a_and_small();
    let t = recorded_upload(&sb, &as_refs(&files), &["--data", "full"]);
    let target = fresh(&sb, "replayed");
    let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
    assert_eq!(f.status.code(), Some(0), "{}{}", report(&f), f.stderr_text());
    assert!(report(&f).contains("answered as recorded"), "{}", report(&f));
    assert!(!report(&f).contains("synthetic"), "{}", report(&f));
    assert_files(&target, &files);

    // The stand-in's transcript of the same transfer replays as well.
    let theirs = &standin_transcripts(&sb)[0].path;
    let target2 = fresh(&sb, "replayed2");
    let f = replay(
        &sb,
        &[theirs.as_os_str(), "--target".as_ref(), target2.as_os_str()],
    );
    assert_eq!(f.status.code(), Some(0), "{}", report(&f));
    assert_files(&target2, &files);
}

#[test]
fn replay_of_the_design_example_transcript() {
    let sb = Sandbox::new();
    let t = sb.path().join("seed.log");
    fs::write(
        &t,
        "# scptrace: 0.1.0\n\
         >>> New command invocation: /usr/bin/scp -d -t /tmp\n\
         O: \\0\n\
         I: C0644 21 a\\n\t# file \"a\", 21 B, mode 0644\n\
         O: \\0\n\
         I: file a file a file a\\n\t# data of \"a\", 21 B\n\
         I: \\0\t# end of \"a\"\n\
         O: \\0\n\
         >>> stdin closed\n\
         >>> stdout closed\n\
         >>> stderr closed\n\
         #: 0\n",
    )
    .unwrap();
    let target = fresh(&sb, "x");
    let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
    assert_eq!(f.status.code(), Some(0), "{}", report(&f));
    assert_eq!(fs::read(target.join("a")).unwrap(), b"file a file a file a\n");
    assert!(
        report(&f).contains(&format!("against: /usr/bin/scp -d -t {}", target.display())),
        "{}",
        report(&f)
    );
    // The same from standard input (read more than once: it is copied first).
    let target = fresh(&sb, "y");
    let mut c = sb.command(bin());
    c.current_dir(sb.path())
        .arg("replay")
        .arg("-")
        .arg("--target")
        .arg(&target);
    let f = run(&mut c, Input::File(&t), DEADLINE);
    assert_eq!(f.status.code(), Some(0), "{}{}", report(&f), f.stderr_text());
    assert!(
        report(&f).starts_with("replay of (standard input) against"),
        "{}",
        report(&f)
    );
    assert_eq!(fs::read(target.join("a")).unwrap(), b"file a file a file a\n");
}

#[test]
fn replay_with_data_head_sends_synthetic_contents_of_the_recorded_size() {
    let sb = Sandbox::new();
    let big = random_bytes(300_000, 3);
    let files = [("a", b"file a file a file a\n".to_vec()), ("big", big.clone())];
    let t = recorded_upload(&sb, &as_refs(&files), &["--data", "head"]);
    let target = fresh(&sb, "replayed");
    let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
    assert_eq!(f.status.code(), Some(0), "{}", report(&f));
    assert!(report(&f).contains("synthetic"), "{}", report(&f));
    // Small enough to be shown whole: exact.
    assert_eq!(fs::read(target.join("a")).unwrap(), files[0].1);
    let got = fs::read(target.join("big")).unwrap();
    assert_eq!(got.len(), big.len());
    assert_eq!(got[..32], big[..32], "the recorded head comes first");
    assert_ne!(got, big);
}

#[test]
fn replay_with_data_none_sends_synthetic_contents() {
    let sb = Sandbox::new();
    let files = [("secret", b"do not show me\n".to_vec())];
    let t = recorded_upload(&sb, &as_refs(&files), &["--data", "none"]);
    assert!(!fs::read_to_string(&t).unwrap().contains("do not show me"));
    let target = fresh(&sb, "replayed");
    let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
    assert_eq!(f.status.code(), Some(0), "{}", report(&f));
    assert!(report(&f).contains("synthetic"), "{}", report(&f));
    assert_eq!(fs::metadata(target.join("secret")).unwrap().len(), 15);
}

#[test]
fn replay_of_a_jsonl_recording() {
    let sb = Sandbox::new();
    let files = a_and_small();
    let t = recorded_upload(&sb, &as_refs(&files), &["--data", "full", "--format", "jsonl"]);
    assert!(fs::read_to_string(&t).unwrap().starts_with('{'));
    let target = fresh(&sb, "replayed");
    let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
    assert_eq!(f.status.code(), Some(0), "{}{}", report(&f), f.stderr_text());
    assert_files(&target, &files);
}

#[test]
fn replay_of_a_recursive_upload_with_times() {
    let sb = Sandbox::new();
    let src = sb.path().join("tree");
    sample_tree(&src);
    let dst = fresh(&sb, "dst");
    let t = sb.path().join("t.log");
    record(
        &sb,
        &["--data", "full", "-o", t.to_str().unwrap()],
        &[os("-r"), os("-p"), os(&src), remote(&dst)],
    )
    .assert_success();
    let target = fresh(&sb, "replayed");
    let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
    assert_eq!(f.status.code(), Some(0), "{}", report(&f));
    assert_same_tree(
        &snapshot(&dst),
        &snapshot(&target),
        true,
        "recorded upload vs replay",
    );
}

#[test]
fn replay_of_a_download_recreates_the_source_in_the_target() {
    let sb = Sandbox::new();
    let src = fresh(&sb, "src");
    let file = src.join("big");
    fs::write(&file, random_bytes(100_000, 4)).unwrap();
    let dst = fresh(&sb, "dst");
    let t = sb.path().join("t.log");
    record(
        &sb,
        &["--data", "head", "-o", t.to_str().unwrap()],
        &[remote(&file), os(&dst)],
    )
    .assert_success();
    // The recorded source is gone: replay does not need it.
    fs::remove_dir_all(&src).unwrap();
    let target = sb.path().join("replayed");
    let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
    assert_eq!(f.status.code(), Some(0), "{}{}", report(&f), f.stderr_text());
    assert!(report(&f).contains("compared by size"), "{}", report(&f));
    assert!(
        report(&f).contains(&format!("against: /usr/bin/scp -f {}/big", target.display())),
        "{}",
        report(&f)
    );
    assert!(!src.exists());
    // The recorded head, then filler up to the recorded size.
    let got = fs::read(target.join("big")).unwrap();
    assert_eq!(got.len(), 100_000);
    assert_eq!(got[..32], random_bytes(100_000, 4)[..32]);
    // The peer's answer edited into an error: scp skips the file's data.
    let e = sb.path().join("refused.log");
    let at = edited(&t, &e, "O: C0644 100000 big", |l| Some(l.to_string()));
    let text = fs::read_to_string(&e).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines[at].starts_with("I: \\0"), "{}", lines[at]);
    lines[at] = "I: \\x02no\\n";
    fs::write(&e, lines.join("\n") + "\n").unwrap();
    let f = replay(&sb, &[e.as_os_str(), "--timeout".as_ref(), "2".as_ref()]);
    assert_eq!(f.status.code(), Some(1), "{}{}", report(&f), f.stderr_text());
    assert_eq!(difference_line(&report(&f)), at + 2, "{}", report(&f));
}

#[test]
fn replay_of_a_recursive_download_with_times_recreates_the_tree() {
    let sb = Sandbox::new();
    let src = sb.path().join("tree");
    sample_tree(&src);
    let dst = fresh(&sb, "dst");
    let t = sb.path().join("t.log");
    record(
        &sb,
        &["--data", "full", "-o", t.to_str().unwrap()],
        &[os("-r"), os("-p"), remote(&src), os(&dst)],
    )
    .assert_success();
    let before = snapshot(&src);
    fs::remove_dir_all(&src).unwrap();
    let target = sb.path().join("replayed");
    let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
    assert_eq!(f.status.code(), Some(0), "{}{}", report(&f), f.stderr_text());
    assert!(
        report(&f).contains(&format!(
            "against: /usr/bin/scp -r -p -f {}/tree",
            target.display()
        )),
        "{}",
        report(&f)
    );
    assert_same_tree(
        &before,
        &snapshot(&target.join("tree")),
        true,
        "recorded source vs re-created",
    );
}

/// The transcript's lines with `edit` applied to the first one starting
/// with `prefix`; `None` from `edit` removes the line.
fn edited(t: &Path, out: &Path, prefix: &str, edit: impl Fn(&str) -> Option<String>) -> usize {
    let text = fs::read_to_string(t).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {text}"));
    match edit(&lines[at]) {
        Some(new) => lines[at] = new,
        None => {
            lines.remove(at);
        }
    }
    fs::write(out, lines.join("\n") + "\n").unwrap();
    at + 1
}

fn seed_upload(sb: &Sandbox) -> PathBuf {
    let files = [
        ("a", b"file a file a file a\n".to_vec()),
        ("b", b"bbb\n".to_vec()),
    ];
    recorded_upload(sb, &as_refs(&files), &["--data", "full"])
}

/// The report's `DIFFERENCE at line N` number.
fn difference_line(report: &str) -> usize {
    report
        .lines()
        .find_map(|l| l.strip_prefix("DIFFERENCE at line "))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no DIFFERENCE line in:\n{report}"))
}

#[test]
fn replay_of_a_name_with_a_slash_shows_scps_error() {
    let sb = Sandbox::new();
    let t = seed_upload(&sb);
    let e = sb.path().join("slash.log");
    let at = edited(&t, &e, "I: C0644 21 a\\n", |_| Some("I: C0644 21 x/a\\n".into()));
    let target = fresh(&sb, "replayed");
    let f = replay(&sb, &[e.as_os_str(), "--target".as_ref(), target.as_os_str()]);
    let r = report(&f);
    assert_eq!(f.status.code(), Some(1), "{r}");
    // The difference is the reply to the edited record, the next line.
    assert_eq!(difference_line(&r), at + 1, "{r}");
    assert!(
        r.contains("O: \\x01scp: error: unexpected filename: x/a\\n"),
        "{r}"
    );
    assert!(r.contains("#: 1"), "{r}");
    assert!(files_in(&target).is_empty());
}

// The edited-recording tests are parallel cases (one edit each, the same
// replay and checks): their repeated lines are on purpose.

#[test]
fn replay_of_a_changed_size_stops_where_scp_waits() {
    let sb = Sandbox::new();
    let t = seed_upload(&sb);
    let e = sb.path().join("size.log");
    let at = edited(&t, &e, "I: C0644 21 a\\n", |_| Some("I: C0644 22 a\\n".into()));
    let target = fresh(&sb, "replayed");
    let f = replay(
        &sb,
        &[
            e.as_os_str(),
            "--target".as_ref(),
            target.as_os_str(),
            "--timeout".as_ref(),
            "1".as_ref(),
        ],
    );
    let r = report(&f);
    assert_eq!(f.status.code(), Some(1), "{r}");
    // scp takes the data's end marker as the 22nd byte and waits for one
    // more: no ack where the recording has one, after the data and its end.
    assert_eq!(difference_line(&r), at + 4, "{r}");
    assert!(r.contains("nothing more within 1 s"), "{r}");
}

#[test]
fn replay_without_an_ack_stops_at_the_missing_reply() {
    let sb = Sandbox::new();
    let t = seed_upload(&sb);
    let e = sb.path().join("noack.log");
    // Remove the `\0` that ends file a's data: scp waits for it.
    let at = edited(&t, &e, "I: \\0\t# end of \"a\"", |_| None);
    let target = fresh(&sb, "replayed");
    let f = replay(
        &sb,
        &[
            e.as_os_str(),
            "--target".as_ref(),
            target.as_os_str(),
            "--timeout".as_ref(),
            "1".as_ref(),
        ],
    );
    let r = report(&f);
    assert_eq!(f.status.code(), Some(1), "{r}");
    assert_eq!(difference_line(&r), at, "{r}");
    assert!(r.contains("O: \\0"), "{r}");
}

#[test]
fn replay_runs_the_program_given_after_dashdash() {
    let sb = Sandbox::new();
    let t = seed_upload(&sb);
    let target = fresh(&sb, "replayed");
    let f = replay(
        &sb,
        &[
            t.as_os_str(),
            "--".as_ref(),
            REAL_SCP.as_ref(),
            "-t".as_ref(),
            target.as_os_str(),
        ],
    );
    assert_eq!(f.status.code(), Some(0), "{}", report(&f));
    assert_eq!(files_in(&target).len(), 2);
    // A program alone gets the recorded arguments, with --target applied.
    let target2 = fresh(&sb, "replayed2");
    let f = replay(
        &sb,
        &[
            t.as_os_str(),
            "--target".as_ref(),
            target2.as_os_str(),
            "--".as_ref(),
            REAL_SCP.as_ref(),
        ],
    );
    assert_eq!(f.status.code(), Some(0), "{}", report(&f));
    assert_eq!(files_in(&target2).len(), 2);
}

/// Bytes that are no scp session replay against the user's own program,
/// never against anything the transcript names.
#[test]
fn replay_of_another_program_needs_the_users_own() {
    let sb = Sandbox::new();
    let t = sb.path().join("cat.log");
    fs::write(
        &t,
        ">>> New command invocation: /bin/cat\n\
         I: hello\\n\n\
         O: hello\\n\n\
         >>> stdin closed\n\
         >>> stdout closed\n\
         #: 0\n",
    )
    .unwrap();
    let f = replay(&sb, &[t.as_os_str()]);
    assert_eq!(f.status.code(), Some(2), "{}{}", report(&f), f.stderr_text());
    let f = replay(&sb, &[t.as_os_str(), "--".as_ref(), "cat".as_ref()]);
    assert_eq!(f.status.code(), Some(0), "{}{}", report(&f), f.stderr_text());
    assert!(
        report(&f).contains("the program answered as recorded"),
        "{}",
        report(&f)
    );
    let f = replay(
        &sb,
        &[t.as_os_str(), "--".as_ref(), "/bin/cat".as_ref(), "-n".as_ref()],
    );
    assert_eq!(f.status.code(), Some(1), "{}{}", report(&f), f.stderr_text());
}

#[test]
fn replay_that_cannot_run_exits_2() {
    let sb = Sandbox::new();
    let missing = sb.path().join("missing.log");
    let f = replay(&sb, &[missing.as_os_str()]);
    assert_eq!(f.status.code(), Some(2));
    // The file named first, the reason in plain words (issue 13).
    assert_eq!(
        f.stderr_text().trim_end(),
        format!("scptrace: {}: No such file or directory", missing.display())
    );

    let garbage = sb.path().join("garbage.log");
    fs::write(&garbage, "I: \\q\n").unwrap();
    let f = replay(&sb, &[garbage.as_os_str()]);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
    assert!(
        f.stderr_text().contains("garbage.log:1: bad escaped bytes"),
        "{}",
        f.stderr_text()
    );

    let t = seed_upload(&sb);
    let f = replay(&sb, &[t.as_os_str(), "--".as_ref(), "/nonexistent/scp".as_ref()]);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
    assert!(
        f.stderr_text().contains("/nonexistent/scp"),
        "{}",
        f.stderr_text()
    );
}

/// `scp -t` with one 3-byte file `a` (`abc`), under the invocation `inv`.
fn one_file_upload(inv: &str) -> String {
    format!(
        ">>> New command invocation: {inv}\n\
         O: \\0\t# ack\n\
         I: C0644 3 a\\n\t# file \"a\", 3 B, mode 0644\n\
         O: \\0\t# ack\n\
         I: abc\t# data of \"a\", 3 B\n\
         I: \\0\t# end of \"a\"\n\
         O: \\0\t# ack\n\
         >>> stdin closed\n\
         >>> stdout closed\n\
         >>> stderr closed\n\
         #: 0\n"
    )
}

/// Issue 10: a transcript whose invocation was a client command with a
/// ProxyCommand made `replay` run that command.
#[test]
fn replay_never_runs_a_recorded_client_command() {
    let sb = Sandbox::new();
    let pwned = sb.path().join("pwned");
    let t = sb.path().join("evil.log");
    fs::write(
        &t,
        format!(
            ">>> New command invocation: scp -o 'ProxyCommand=sh -c \"id > {}\"' h:x {}\n\
             O: \\0\n\
             #: 0\n",
            pwned.display(),
            sb.path().join("y").display()
        ),
    )
    .unwrap();
    let f = replay(&sb, &[t.as_os_str(), "--timeout".as_ref(), "2".as_ref()]);
    assert_eq!(f.status.code(), Some(2), "{}{}", report(&f), f.stderr_text());
    assert!(!pwned.exists(), "the recorded ProxyCommand ran");
    assert!(
        f.stderr_text().contains("evil.log:1: not an scp server session"),
        "{}",
        f.stderr_text()
    );
    assert!(files_in(&sb.path().join("tmp")).is_empty(), "nothing made");
}

/// Issue 10: the recorded program and paths are the transcript's to
/// choose; replay runs the real scp, in its own target, whatever they are.
#[test]
fn replay_runs_the_real_scp_whatever_the_transcript_names() {
    let sb = Sandbox::new();
    let marker = sb.path().join("evil-ran");
    let script = format!("#!/bin/sh\necho \"$@\" > {}\n", marker.display());
    fs::create_dir(sb.path().join("bin")).unwrap();
    for prog in [sb.path().join("evil"), sb.path().join("bin/scp")] {
        fs::write(&prog, &script).unwrap();
        fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
        let t = sb.path().join("t.log");
        fs::write(&t, one_file_upload(&format!("{} -t x", prog.display()))).unwrap();
        let target = sb.path().join("target");
        let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
        let r = report(&f);
        assert_eq!(
            f.status.code(),
            Some(0),
            "{}: {r}{}",
            prog.display(),
            f.stderr_text()
        );
        assert!(!marker.exists(), "{} ran", prog.display());
        assert!(
            r.contains(&format!("against: /usr/bin/scp -t {}\n", target.display())),
            "{r}"
        );
        assert_eq!(fs::read(target.join("a")).unwrap(), b"abc");
        assert!(!sb.path().join("x").exists(), "the recorded path was written");
        fs::remove_dir_all(&target).unwrap();
    }
}

/// Issue 10: without `--target`, an upload went to the recorded path and
/// overwrote a real file there.
#[test]
fn replay_never_writes_to_the_recorded_path() {
    let sb = Sandbox::new();
    let dir = sb.path().join("some/dir");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("a"), "precious\n").unwrap();
    let t = sb.path().join("t.log");
    fs::write(
        &t,
        one_file_upload(&format!("/usr/bin/scp -t {}/", dir.display())),
    )
    .unwrap();
    let f = replay(&sb, &[t.as_os_str()]);
    assert_eq!(f.status.code(), Some(0), "{}{}", report(&f), f.stderr_text());
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "precious\n");
    let work = working_dir(&f);
    assert!(work.starts_with(sb.path().join("tmp")), "{}", work.display());
    assert_eq!(fs::metadata(&work).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(fs::read(work.join("a")).unwrap(), b"abc");
    assert!(
        report(&f).contains(&format!("-t {}\n", work.display())),
        "{}",
        report(&f)
    );
}

#[test]
fn replay_target_must_be_an_empty_directory_of_ours() {
    let sb = Sandbox::new();
    let t = sb.path().join("t.log");
    fs::write(&t, one_file_upload("scp -t /x")).unwrap();
    let target = |p: &Path| replay(&sb, &[t.as_os_str(), "--target".as_ref(), p.as_os_str()]);

    let full = fresh(&sb, "full");
    fs::write(full.join("a"), "precious\n").unwrap();
    let f = target(&full);
    assert_eq!(f.status.code(), Some(2), "{}{}", report(&f), f.stderr_text());
    assert!(f.stderr_text().contains("not empty"), "{}", f.stderr_text());
    assert_eq!(fs::read_to_string(full.join("a")).unwrap(), "precious\n");

    let file = sb.path().join("file");
    fs::write(&file, "x").unwrap();
    let f = target(&file);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
    assert!(f.stderr_text().contains("not a directory"), "{}", f.stderr_text());

    let open = fresh(&sb, "open");
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let f = target(&open);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
    assert!(
        f.stderr_text().contains("writable by group or others"),
        "{}",
        f.stderr_text()
    );
    assert!(files_in(&open).is_empty());

    let orphan = sb.path().join("no/such/parent");
    let f = target(&orphan);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());

    let new = sb.path().join("new");
    let f = target(&new);
    assert_eq!(f.status.code(), Some(0), "{}{}", report(&f), f.stderr_text());
    assert_eq!(fs::metadata(&new).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(fs::read(new.join("a")).unwrap(), b"abc");
}

/// Issue 10: setup problems are not "the real scp answered differently".
#[test]
fn replay_setup_problems_exit_2_not_1() {
    let sb = Sandbox::new();
    let t = sb.path().join("t.log");
    fs::write(&t, one_file_upload("/usr/bin/scp -t /x")).unwrap();
    let err_of = |f: &Finished, want: &str| {
        assert_eq!(f.status.code(), Some(2), "{}{}", report(f), f.stderr_text());
        assert!(
            f.stderr_text().contains(want),
            "want {want:?} in {}",
            f.stderr_text()
        );
        assert!(f.stdout.is_empty(), "{}", report(f));
    };
    err_of(
        &replay(&sb, &[sb.path().join("nope.log").as_os_str()]),
        "nope.log: No such file or directory",
    );
    let cat = sb.path().join("cat.log");
    fs::write(&cat, one_file_upload("/bin/cat")).unwrap();
    err_of(
        &replay(&sb, &[cat.as_os_str()]),
        "cat.log:1: not an scp server session",
    );
    let full = fresh(&sb, "full");
    fs::write(full.join("x"), "").unwrap();
    err_of(
        &replay(&sb, &[t.as_os_str(), "--target".as_ref(), full.as_os_str()]),
        "not empty",
    );
    err_of(
        &replay_env(&sb, &[t.as_os_str()], &[("TMPDIR", "/nonexistent/tmp".as_ref())]),
        "cannot create a temporary directory",
    );
    err_of(
        &replay_env(
            &sb,
            &[t.as_os_str()],
            &[("SCPTRACE_REAL_SCP", "/nonexistent/scp".as_ref())],
        ),
        "cannot run /nonexistent/scp",
    );
    assert!(
        files_in(&sb.path().join("tmp")).is_empty(),
        "a failed setup left a directory"
    );
}

/// A download whose recorded source sends `record` (a `C` or `D` line,
/// escaped) for its first entry.
fn download_with(record: &str) -> String {
    format!(
        ">>> New command invocation: scp -r -f /src/x\n\
         I: \\0\n\
         O: {record}\n\
         I: \\0\n\
         O: C0644 3 f\\n\n\
         I: \\0\n\
         O: abc\t# data of \"f\", 3 B\n\
         O: \\0\n\
         I: \\0\n\
         O: E\\n\n\
         I: \\0\n\
         #: 0\n"
    )
}

/// Issue 10: names in a download's records are untrusted; none may make
/// replay create anything outside its target.
#[test]
fn replay_refuses_unsafe_names_in_a_recorded_download() {
    let sb = Sandbox::new();
    let before = files_in(sb.path());
    for name in ["..", ".", "../x", "a/b", "", "a\\0b", "/abs"] {
        for record in [format!("D0755 0 {name}\\n"), format!("C0644 3 {name}\\n")] {
            let t = sb.path().join("t.log");
            fs::write(&t, download_with(&record)).unwrap();
            let target = sb.path().join("target");
            let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
            let err = f.stderr_text();
            assert_eq!(f.status.code(), Some(2), "{record}: {}{err}", report(&f));
            assert!(
                err.contains("t.log:3: the recorded scp sent a"),
                "{record}: {err}"
            );
            assert!(
                err.contains("nothing of this entry was created"),
                "{record}: {err}"
            );
            assert!(
                !target.exists(),
                "{record}: the target was made before the refusal"
            );
            fs::remove_file(&t).unwrap();
            let mut now = files_in(sb.path());
            now.retain(|p| !p.ends_with("tmp"));
            assert_eq!(now, before, "{record}");
        }
    }
    // A name that is only odd is re-created as it is, inside the target.
    let t = sb.path().join("t.log");
    fs::write(&t, download_with("D0755 0 -rf \\x1b\\n")).unwrap();
    let target = sb.path().join("target");
    let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
    assert_eq!(f.status.code(), Some(0), "{}{}", report(&f), f.stderr_text());
    assert_eq!(fs::read(target.join("-rf \x1b/f")).unwrap(), b"abc");
}

/// Escapes bytes the way transcripts do.
fn esc(bytes: &[u8]) -> String {
    scptrace::escape::escape(bytes)
}

/// Issue 10: memory was proportional to the transcript (279 MB RSS for a
/// 206 MB one). A `--data full` upload of one 37 MiB file makes a
/// transcript of more than 100 MB; replaying it stays under 20 MiB.
#[test]
fn replay_streams_a_big_transcript_in_bounded_memory() {
    use std::io::Write as _;
    let sb = Sandbox::new();
    let data = random_bytes(37 << 20, 11);
    let t = sb.path().join("big.log");
    {
        let mut w = std::io::BufWriter::new(fs::File::create(&t).unwrap());
        let n = data.len();
        write!(
            w,
            ">>> New command invocation: /usr/bin/scp -t /srv/\n\
             O: \\0\t# ack\n\
             I: C0644 {n} big\\n\t# file \"big\", {n} B, mode 0644\n\
             O: \\0\t# ack\n"
        )
        .unwrap();
        let mut parts = data.chunks(64 * 1024).peekable();
        while let Some(part) = parts.next() {
            let note = if parts.peek().is_some() {
                "data, more follows".to_string()
            } else {
                format!("data of \"big\", {n} B")
            };
            writeln!(w, "I: {}\t# {note}", esc(part)).unwrap();
        }
        write!(
            w,
            "I: \\0\t# end of \"big\"\n\
             O: \\0\t# ack\n\
             >>> stdin closed\n\
             >>> stdout closed\n\
             >>> stderr closed\n\
             #: 0\n"
        )
        .unwrap();
    }
    let size = fs::metadata(&t).unwrap().len();
    assert!(size > 100_000_000, "{size}");
    let target = sb.path().join("target");
    let rss = sb.path().join("rss");
    let mut c = sb.command("/usr/bin/time");
    c.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss)
        .arg(bin())
        .arg("replay")
        .arg(&t)
        .arg("--target")
        .arg(&target);
    let f = run(&mut c, Input::Null, DEADLINE);
    assert_eq!(f.status.code(), Some(0), "{}{}", report(&f), f.stderr_text());
    let kib: u64 = fs::read_to_string(&rss)
        .unwrap()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS figure in {}", rss.display()));
    eprintln!("FIGURE replay peak RSS for a {size} B transcript = {kib} KiB");
    assert!(kib < 20 * 1024, "peak RSS {kib} KiB for a {size} B transcript");
    assert!(fs::read(target.join("big")).unwrap() == data, "contents differ");
}

/// Issue 10: a 300-byte transcript announcing a 200 MB file made replay
/// write 200 MB.
#[test]
fn replay_caps_the_bytes_it_writes() {
    let sb = Sandbox::new();
    let upload = |size: u64| {
        format!(
            ">>> New command invocation: /usr/bin/scp -t /srv/\n\
             O: \\0\n\
             I: C0644 {size} big\\n\t# file \"big\", {size} B, mode 0644\n\
             O: \\0\n\
             I: x\t# data of \"big\", {size} B, first 1 shown\n\
             I: \\0\t# end of \"big\"\n\
             O: \\0\n\
             >>> stdin closed\n\
             #: 0\n"
        )
    };
    let t = sb.path().join("t.log");
    fs::write(&t, upload(200_000_000)).unwrap();
    assert!(fs::metadata(&t).unwrap().len() < 300);
    let target = sb.path().join("target");
    let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
    let err = f.stderr_text();
    assert_eq!(f.status.code(), Some(2), "{}{err}", report(&f));
    assert!(err.contains("t.log:5: "), "{err}");
    assert!(err.contains("\"big\", 200000000 B"), "{err}");
    assert!(err.contains("--max-bytes 191M"), "{err}");
    assert!(!target.exists(), "written before the refusal");

    // The same below a raised cap, and a download the same way.
    fs::write(&t, upload(2_000_000)).unwrap();
    let f = replay(
        &sb,
        &[
            t.as_os_str(),
            "--target".as_ref(),
            target.as_os_str(),
            "--max-bytes".as_ref(),
            "1M".as_ref(),
        ],
    );
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
    assert!(f.stderr_text().contains("--max-bytes 2M"), "{}", f.stderr_text());
    let f = replay(
        &sb,
        &[
            t.as_os_str(),
            "--target".as_ref(),
            target.as_os_str(),
            "--max-bytes".as_ref(),
            "2M".as_ref(),
        ],
    );
    assert_eq!(f.status.code(), Some(0), "{}{}", report(&f), f.stderr_text());
    assert_eq!(fs::metadata(target.join("big")).unwrap().len(), 2_000_000);

    let download = ">>> New command invocation: scp -f /srv/big\n\
                    I: \\0\n\
                    O: C0644 200000000 big\\n\n\
                    I: \\0\n\
                    O: \t# data of \"big\", 200000000 B, not shown\n\
                    O: \\0\n\
                    I: \\0\n\
                    #: 0\n";
    fs::write(&t, download).unwrap();
    let target = sb.path().join("target2");
    let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), target.as_os_str()]);
    assert_eq!(f.status.code(), Some(2), "{}{}", report(&f), f.stderr_text());
    assert!(f.stderr_text().contains("t.log:3: "), "{}", f.stderr_text());
    assert!(f.stderr_text().contains("--max-bytes"), "{}", f.stderr_text());
    assert!(!target.exists(), "written before the refusal");
}

/// What must never reach the terminal from a transcript.
const BAD: &str = "\x1b[2J\x07\r\x7f\u{9b}\u{202e}";

fn assert_clean(f: &Finished, what: &str) {
    for (name, out) in [("stdout", &f.stdout), ("stderr", &f.stderr)] {
        let text = String::from_utf8_lossy(out);
        for (i, c) in text.char_indices() {
            let bad = (c.is_control() && c != '\n' && c != '\t') || ('\u{202a}'..='\u{202e}').contains(&c);
            assert!(!bad, "{what}: {name} holds U+{:04X} at {i}:\n{text}", c as u32);
        }
    }
}

/// Issue 10: replay printed recorded annotations, notes, `!!` lines, the
/// invocation and the file name raw; a crafted transcript cleared the
/// screen and forged "the real scp answered as recorded".
#[test]
fn replay_puts_no_control_character_from_a_transcript_on_the_terminal() {
    let sb = Sandbox::new();
    let name = esc(format!("a{BAD}").as_bytes());
    // Every kind of line, each holding BAD, placed around the difference
    // (the real scp acks where the recording has an error).
    let body = |extra_before: &str| {
        format!(
            "# host: h{BAD}\n\
             >>> New command invocation: /usr/bin/scp -t /x{BAD}\n\
             >>> a note {BAD}\n\
             O: \\0\t# ack{BAD}\n\
             !! weird: {BAD}\n\
             I: C0644 3 {name}\\n\t# file \"{BAD}\", 3 B, mode 0644\n\
             {extra_before}\
             O: \\x01{name}\\n\t# warning: {BAD}\n\
             !! more: {BAD}\n\
             E: {name}\t# {BAD}\n\
             >>> {BAD}\n\
             #: 0\n"
        )
    };
    let file = sb.path().join(format!("t{BAD}.log"));
    let runs: Vec<(&str, String)> = vec![
        ("first reply", body("")),
        (
            "invocation in context",
            format!(">>> New command invocation: scp -t {BAD}\nO: \\x01{name}\\n\t# {BAD}\n#: 0\n"),
        ),
        (
            "notes before",
            body(&format!(">>> {BAD}\n!! x: {BAD}\nO: \\0\t# {BAD}\n")),
        ),
    ];
    for (what, text) in &runs {
        fs::write(&file, text).unwrap();
        let f = replay(&sb, &[file.as_os_str(), "--timeout".as_ref(), "1".as_ref()]);
        assert_eq!(
            f.status.code(),
            Some(1),
            "{what}: {}{}",
            report(&f),
            f.stderr_text()
        );
        assert!(report(&f).contains("DIFFERENCE"), "{what}");
        assert_clean(&f, what);
        // The same as JSON Lines.
        let mut c = sb.command(bin());
        c.arg("show").arg("--format").arg("jsonl").arg(&file);
        let j = run(&mut c, Input::Null, DEADLINE);
        j.assert_success();
        let jfile = sb.path().join(format!("t{BAD}.jsonl"));
        fs::write(&jfile, &j.stdout).unwrap();
        let f = replay(&sb, &[jfile.as_os_str(), "--timeout".as_ref(), "1".as_ref()]);
        assert_eq!(
            f.status.code(),
            Some(1),
            "{what} (jsonl): {}{}",
            report(&f),
            f.stderr_text()
        );
        assert_clean(&f, what);
    }
    // A download whose names hold them: created, named escaped.
    fs::write(&file, download_with(&format!("D0755 0 {name}\\n"))).unwrap();
    let f = replay(&sb, &[file.as_os_str()]);
    assert_eq!(f.status.code(), Some(0), "{}{}", report(&f), f.stderr_text());
    assert_clean(&f, "download");
    // Refusals and parse errors that quote the line.
    for (what, text) in [
        ("bad header", format!("# {BAD}\n")),
        (
            "bad exit",
            format!(">>> New command invocation: scp -t x\nO: \\0\n#: {BAD}\n"),
        ),
        ("bad name", download_with(&format!("C0644 3 ../{name}\\n"))),
        (
            "not a server",
            format!(">>> New command invocation: {BAD}\nO: \\0\n"),
        ),
    ] {
        fs::write(&file, text).unwrap();
        let f = replay(&sb, &[file.as_os_str()]);
        assert_eq!(
            f.status.code(),
            Some(2),
            "{what}: {}{}",
            report(&f),
            f.stderr_text()
        );
        assert_clean(&f, what);
    }
}
