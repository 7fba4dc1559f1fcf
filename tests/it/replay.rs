//! `scptrace replay` (issue 5): transcripts recorded from real transfers
//! (by `record` through the local `-S` arrangement, and by the stand-in on
//! the other side) are played against a fresh real `scp -t` or `scp -f`.
//! Unchanged they must replay cleanly and produce the same files; edited
//! (a size, an ack, a name) they must fail at the first difference and show
//! what the real scp answered.

use std::fs;
use std::path::{Path, PathBuf};

use crate::record::{os, record, remote, standin_transcripts};
use crate::util::*;

/// `scptrace replay ARGS`.
fn replay(sb: &Sandbox, args: &[&std::ffi::OsStr]) -> Finished {
    let mut c = sb.command(bin());
    c.current_dir(sb.path()).arg("replay").args(args);
    run(&mut c, Input::Null, DEADLINE)
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
fn replay_of_a_download_against_the_source() {
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
    // The recorded path still holds the file: replay as recorded.
    let f = replay(&sb, &[t.as_os_str()]);
    assert_eq!(f.status.code(), Some(0), "{}", report(&f));
    assert!(report(&f).contains("compared by size"), "{}", report(&f));
    // Another file of the same name and size, other contents: the shown head differs.
    let other = fresh(&sb, "other").join("big");
    fs::write(&other, random_bytes(100_000, 6)).unwrap();
    let f = replay(&sb, &[t.as_os_str(), "--target".as_ref(), other.as_os_str()]);
    assert_eq!(f.status.code(), Some(1), "{}", report(&f));
    assert!(report(&f).contains("DIFFERENCE at line"), "{}", report(&f));
    assert!(report(&f).contains("data of \"big\""), "{}", report(&f));
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

#[test]
fn replay_that_cannot_run_exits_2() {
    let sb = Sandbox::new();
    let missing = sb.path().join("missing.log");
    let f = replay(&sb, &[missing.as_os_str()]);
    assert_eq!(f.status.code(), Some(2));
    assert!(
        f.stderr_text().contains("scptrace: replay: cannot read"),
        "{}",
        f.stderr_text()
    );

    let garbage = sb.path().join("garbage.log");
    fs::write(&garbage, "I: \\q\n").unwrap();
    let f = replay(&sb, &[garbage.as_os_str()]);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
    assert!(f.stderr_text().contains("line 1"), "{}", f.stderr_text());

    let t = seed_upload(&sb);
    let f = replay(&sb, &[t.as_os_str(), "--".as_ref(), "/nonexistent/scp".as_ref()]);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr_text());
    assert!(
        f.stderr_text().contains("/nonexistent/scp"),
        "{}",
        f.stderr_text()
    );
}
