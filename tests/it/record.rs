//! `scptrace record` (issue 5): the client side traced with nothing installed
//! remotely. OpenSSH's scp runs `tests/clients/local-ssh` as its ssh (the
//! user's `-S`, which record wraps); local-ssh runs the "remote" scp locally
//! with the stand-in first on its PATH, so the same transfer is traced twice,
//! from the client's side by record and from the server's side by the
//! stand-in, and the two transcripts must agree message for message.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// The ssh program the tests give scp with `-S` (record wraps it).
pub(crate) fn local_ssh() -> PathBuf {
    client("local-ssh")
}

/// A command with the local-ssh arrangement's environment: the "remote"
/// scp is the stand-in, tracing with `--data full` into `logs/`.
pub(crate) fn arranged(sb: &Sandbox, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = sb.command(program);
    c.current_dir(sb.path())
        .env(
            "LOCAL_SSH_PATH",
            format!("{}:/usr/bin:/bin", sb.standin_dir().display()),
        )
        .env("SCPTRACE_LOG_DIR", sb.logs())
        .env("SCPTRACE_DATA", "full");
    c
}

/// `scptrace record OPTS -- /usr/bin/scp -O -S local-ssh ARGS`.
pub(crate) fn record(sb: &Sandbox, opts: &[&str], args: &[OsString]) -> Finished {
    let mut c = arranged(sb, bin());
    c.arg("record")
        .args(opts)
        .args(["--", REAL_SCP, "-O", "-S"])
        .arg(local_ssh())
        .args(args);
    run(&mut c, Input::Null, DEADLINE)
}

/// The same transfer without record.
fn plain(sb: &Sandbox, args: &[OsString]) -> Finished {
    let mut c = arranged(sb, REAL_SCP);
    c.args(["-O", "-S"]).arg(local_ssh()).args(args);
    run(&mut c, Input::Null, DEADLINE)
}

pub(crate) fn os(p: impl AsRef<std::ffi::OsStr>) -> OsString {
    p.as_ref().to_os_string()
}

/// `localhost:PATH`.
pub(crate) fn remote(p: &Path) -> OsString {
    let mut s = OsString::from("localhost:");
    s.push(p);
    s
}

/// The `I:` and `O:` lines of a transcript, annotations included, except
/// file data: how `--data full` cuts a file's contents into lines depends on
/// the reads each side happened to make, so data is compared as bytes.
fn messages(t: &Transcript) -> Vec<String> {
    t.body
        .iter()
        .filter(|l| l.starts_with("I: ") || l.starts_with("O: "))
        .filter(|l| {
            !l.split_once('\t')
                .is_some_and(|(_, note)| note.starts_with("# data"))
        })
        .cloned()
        .collect()
}

/// Fails with the first differing line, shortened, not the whole lists.
fn assert_same_lines(a: &[String], b: &[String], what: &str) {
    let short = |l: Option<&String>| l.map(|l| l.chars().take(120).collect::<String>());
    if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        panic!(
            "{what}: line {i} differs:\n  {:?}\n  {:?}",
            short(a.get(i)),
            short(b.get(i))
        );
    }
}

/// The stand-in's transcripts, oldest first.
pub(crate) fn standin_transcripts(sb: &Sandbox) -> Vec<Transcript> {
    files_in(&sb.logs()).iter().map(|p| Transcript::read(p)).collect()
}

/// The `scptrace: transcript: PATH` lines record printed.
pub(crate) fn printed_paths(f: &Finished) -> Vec<PathBuf> {
    f.stderr_text()
        .lines()
        .filter_map(|l| l.strip_prefix("scptrace: transcript: "))
        .map(PathBuf::from)
        .collect()
}

/// stderr without scptrace's own lines.
pub(crate) fn client_stderr(f: &Finished) -> String {
    f.stderr_text()
        .lines()
        .filter(|l| !l.starts_with("scptrace: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn assert_same_messages(ours: &Transcript, theirs: &Transcript) {
    let (a, b) = (messages(ours), messages(theirs));
    assert!(!a.is_empty(), "{}: no messages", ours.path.display());
    let what = format!(
        "record's {} vs the stand-in's {}",
        ours.path.display(),
        theirs.path.display()
    );
    assert_same_lines(&a, &b, &what);
    for tag in ['I', 'O'] {
        let (a, b) = (ours.stream(tag), theirs.stream(tag));
        assert!(
            a == b,
            "{what}: {tag}: bytes differ ({} B vs {} B; the file data lines hold fewer bytes than passed?)",
            a.len(),
            b.len()
        );
    }
}

fn two_sources(sb: &Sandbox) -> (PathBuf, PathBuf) {
    let src = sb.path().join("src");
    fs::create_dir(&src).unwrap();
    let a = src.join("a");
    let big = src.join("big.bin");
    fs::write(&a, b"file a file a file a\n").unwrap();
    fs::write(&big, random_bytes(200_000, 5)).unwrap();
    (a, big)
}

#[test]
fn record_upload_equals_the_remote_standins_transcript() {
    let sb = Sandbox::new();
    let (a, big) = two_sources(&sb);
    let dst = sb.path().join("dst");
    fs::create_dir(&dst).unwrap();
    let t = sb.path().join("t.log");
    let args = [os(&a), os(&big), remote(&dst.join(""))];
    let f = record(&sb, &["--data", "full", "-o", t.to_str().unwrap()], &args);
    f.assert_success();
    assert_eq!(fs::read(dst.join("a")).unwrap(), fs::read(&a).unwrap());
    assert_eq!(fs::read(dst.join("big.bin")).unwrap(), fs::read(&big).unwrap());
    assert_eq!(printed_paths(&f), vec![t.clone()]);

    let ours = Transcript::read(&t);
    let theirs = standin_transcripts(&sb);
    assert_eq!(theirs.len(), 1, "one connection, one remote transcript");
    assert_same_messages(&ours, &theirs[0]);
    // The invocation line is the remote command, not the ssh argv.
    assert_eq!(
        ours.invocation(),
        format!("scp -d -t {}/", dst.display()),
        "{:?}",
        ours.body
    );
    assert_eq!(ours.exit(), 0);
}

#[test]
fn record_download_of_two_sources_writes_one_transcript_per_connection() {
    let sb = Sandbox::new();
    let (a, big) = two_sources(&sb);
    let dst = sb.path().join("dst");
    fs::create_dir(&dst).unwrap();
    let t = sb.path().join("t.log");
    let args = [remote(&a), remote(&big), os(&dst)];
    let f = record(&sb, &["--data", "full", "-o", t.to_str().unwrap()], &args);
    f.assert_success();
    assert_eq!(fs::read(dst.join("a")).unwrap(), fs::read(&a).unwrap());
    assert_eq!(fs::read(dst.join("big.bin")).unwrap(), fs::read(&big).unwrap());

    let t2 = sb.path().join("t-2.log");
    assert_eq!(printed_paths(&f), vec![t.clone(), t2.clone()]);
    let theirs = standin_transcripts(&sb);
    assert_eq!(theirs.len(), 2);
    let ours = [Transcript::read(&t), Transcript::read(&t2)];
    // Match by invocation: the log directory's order is by start time.
    for o in &ours {
        let peer = theirs
            .iter()
            .find(|th| th.invocation().ends_with(o.invocation()))
            .unwrap_or_else(|| panic!("no remote transcript for {}", o.invocation()));
        assert_same_messages(o, peer);
    }
    assert!(ours[0].invocation().ends_with(&format!("-f {}", a.display())));
    assert!(ours[1].invocation().ends_with(&format!("-f {}", big.display())));
}

#[test]
fn record_keeps_the_clients_exit_status_and_messages() {
    let sb = Sandbox::new();
    let dst = sb.path().join("dst");
    fs::create_dir(&dst).unwrap();
    let args = [remote(&sb.path().join("missing")), os(&dst)];
    let p = plain(&sb, &args);
    let t = sb.path().join("t.log");
    let r = record(&sb, &["-o", t.to_str().unwrap()], &args);
    assert_eq!(p.status.code(), Some(1), "{}", p.stderr_text());
    assert_eq!(r.status.code(), p.status.code());
    assert_eq!(r.stdout, p.stdout);
    assert_eq!(client_stderr(&r), client_stderr(&p));
    let ours = Transcript::read(&t);
    assert!(
        ours.body
            .iter()
            .any(|l| l.starts_with("O: \\x01scp: ") && l.contains("missing")),
        "{:?}",
        ours.body
    );
}

#[test]
fn record_upload_into_a_missing_directory_fails_like_scp() {
    let sb = Sandbox::new();
    let (a, _) = two_sources(&sb);
    let args = [os(&a), remote(&sb.path().join("no/such/dir/"))];
    let p = plain(&sb, &args);
    let r = record(&sb, &["-o", sb.path().join("t.log").to_str().unwrap()], &args);
    assert_ne!(p.status.code(), Some(0));
    assert_eq!(r.status.code(), p.status.code());
    assert_eq!(client_stderr(&r), client_stderr(&p));
}

#[test]
fn record_traces_whichever_protocol_the_client_speaks() {
    let sb = Sandbox::new();
    let (a, _) = two_sources(&sb);
    let dst = sb.path().join("dst");
    fs::create_dir(&dst).unwrap();
    // OpenSSH 9's scp speaks SFTP unless given -O: record no longer adds it,
    // and the `-s … sftp` leg is decoded as SFTP.
    let t = sb.path().join("t.log");
    let mut c = arranged(&sb, bin());
    c.args(["record", "-o"])
        .arg(&t)
        .args(["--", "scp", "-S"])
        .arg(local_ssh())
        .arg(&a)
        .arg(remote(&dst));
    let f = run(&mut c, Input::Null, DEADLINE);
    f.assert_success();
    assert!(!f.stderr_text().contains("-O"), "{}", f.stderr_text());
    assert_eq!(fs::read(dst.join("a")).unwrap(), fs::read(&a).unwrap());
    let tr = Transcript::read(&t);
    assert_eq!(tr.invocation(), "subsystem sftp");
    let text = String::from_utf8_lossy(&tr.text);
    assert!(text.contains("\t# INIT version 3\n"), "{text}");
    assert!(text.contains("# OPEN id="), "{text}");
    assert!(tr.problems().is_empty(), "{:?}", tr.problems());
    // --legacy adds -O: the legacy protocol, decoded as SCP.
    fs::remove_file(dst.join("a")).unwrap();
    let mut c = arranged(&sb, bin());
    c.args(["record", "--legacy", "-o"])
        .arg(&t)
        .args(["--", "scp", "-S"])
        .arg(local_ssh())
        .arg(&a)
        .arg(remote(&dst));
    let f = run(&mut c, Input::Null, DEADLINE);
    f.assert_success();
    assert_eq!(fs::read(dst.join("a")).unwrap(), fs::read(&a).unwrap());
    assert!(Transcript::read(&t).invocation().starts_with("scp "));
    // With -O given, it is kept as given.
    let g = record(&sb, &["-o", t.to_str().unwrap()], &[os(&a), remote(&dst)]);
    g.assert_success();
    assert!(Transcript::read(&t).invocation().starts_with("scp "));
}

#[test]
fn record_dash_o_dash_writes_the_transcript_live_on_stderr() {
    let sb = Sandbox::new();
    let (a, _) = two_sources(&sb);
    let dst = sb.path().join("dst");
    fs::create_dir(&dst).unwrap();
    let f = record(&sb, &["-o", "-"], &[os(&a), remote(&dst)]);
    f.assert_success();
    let err = f.stderr_text();
    assert!(
        err.contains(&format!(">>> New command invocation: scp -t {}\n", dst.display())),
        "{err}"
    );
    assert!(err.contains("I: C0644 21 a\\n"), "{err}");
    assert!(!err.contains("scptrace: transcript:"), "{err}");
    assert_eq!(fs::read(dst.join("a")).unwrap(), fs::read(&a).unwrap());
}

#[test]
fn record_defaults_to_a_new_file_in_the_log_directory() {
    let sb = Sandbox::new();
    let (a, _) = two_sources(&sb);
    let dst = sb.path().join("dst");
    fs::create_dir(&dst).unwrap();
    let ours = sb.path().join("record-logs");
    let f = record(
        &sb,
        &["--log-dir", ours.to_str().unwrap()],
        &[os(&a), remote(&dst)],
    );
    f.assert_success();
    let printed = printed_paths(&f);
    assert_eq!(printed.len(), 1, "{}", f.stderr_text());
    assert_eq!(files_in(&ours), printed);
    let name = printed[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with("-record.log"), "{name}");
    assert_same_messages(&Transcript::read(&printed[0]), &standin_transcripts(&sb)[0]);
}

#[test]
fn record_of_a_local_copy_says_nothing_was_recorded() {
    let sb = Sandbox::new();
    let (a, _) = two_sources(&sb);
    let b = sb.path().join("b");
    let f = record(&sb, &["-o", "t.log"], &[os(&a), os(&b)]);
    f.assert_success();
    assert_eq!(fs::read(&b).unwrap(), fs::read(&a).unwrap());
    assert!(
        f.stderr_text().contains("made no ssh connection"),
        "{}",
        f.stderr_text()
    );
    assert!(!sb.path().join("t.log").exists());
}

#[test]
fn record_leaves_no_marker_in_the_remote_environment() {
    // The "remote" command is `env`: it must not see SCPTRACE_AS_SSH, or a
    // scptrace started there would take itself for record's ssh leg.
    // The leg is started by hand here, as scp would start it.
    let sb = Sandbox::new();
    let mut leg = arranged(&sb, bin());
    let rdv = sb.path().join("rdv");
    fs::create_dir(&rdv).unwrap();
    fs::write(
        rdv.join("plan"),
        // The plan is TOML (record.rs, Plan); this path needs no escaping.
        format!(
            "ssh = \"{}\"\nssh_argv0 = \"ssh\"\noutput = \"stderr\"\n",
            local_ssh().display()
        ),
    )
    .unwrap();
    leg.env("SCPTRACE_AS_SSH", &rdv)
        .args(["-x", "--", "localhost", "env"]);
    let f = run(&mut leg, Input::Null, DEADLINE);
    f.assert_success();
    let out = String::from_utf8_lossy(&f.stdout).into_owned();
    assert!(out.contains("LOCAL_SSH_PATH="), "{out}");
    assert!(!out.contains("SCPTRACE_AS_SSH"), "{out}");
    assert!(rdv.join("leg-1").exists());
}

#[test]
fn record_through_the_loopback_sshd_equals_the_servers_transcript() {
    use crate::sshd::{Sshd, SshdOpts};
    let sshd = crate::or_skip!(Sshd::start(SshdOpts {
        standin: true,
        env: vec![("SCPTRACE_DATA".into(), "full".into())],
        ..SshdOpts::default()
    }));
    let work = sshd.work();
    let a = work.join("a");
    let mid = work.join("mid.bin");
    fs::write(&a, b"file a file a file a\n").unwrap();
    fs::write(&mid, random_bytes(50_000, 8)).unwrap();
    let remote_dir = work.join("remote");
    fs::create_dir(&remote_dir).unwrap();
    let back = work.join("back");
    fs::create_dir(&back).unwrap();

    let record_scp = |out: &Path, args: &[OsString]| {
        let mut c = sshd.command(bin());
        c.args(["record", "--legacy", "--data", "full", "-o"])
            .arg(out)
            .args(["--", REAL_SCP])
            .args(sshd.scp_opts())
            .args(args);
        run(&mut c, Input::Null, DEADLINE)
    };
    // Up, then back down.
    let up = work.join("up.log");
    let f = record_scp(&up, &[os(&a), os(&mid), sshd.remote(remote_dir.join(""))]);
    f.assert_success();
    let down = work.join("down.log");
    let g = record_scp(&down, &[sshd.remote(remote_dir.join("mid.bin")), os(&back)]);
    g.assert_success();
    assert_eq!(fs::read(remote_dir.join("a")).unwrap(), fs::read(&a).unwrap());
    assert!(fs::read(back.join("mid.bin")).unwrap() == fs::read(&mid).unwrap());

    let theirs: Vec<Transcript> = sshd.transcripts().iter().map(|p| Transcript::read(p)).collect();
    assert_eq!(theirs.len(), 2, "one server transcript per connection");
    for (ours, theirs) in [
        (Transcript::read(&up), &theirs[0]),
        (Transcript::read(&down), &theirs[1]),
    ] {
        assert!(
            theirs
                .invocation()
                .ends_with(ours.invocation().trim_start_matches("scp")),
            "{} vs {}",
            ours.invocation(),
            theirs.invocation()
        );
        assert_same_messages(&ours, theirs);
        assert_eq!(ours.exit(), 0);
    }
}
