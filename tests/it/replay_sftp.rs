//! `scptrace replay` of SFTP transcripts (issue 12 item 5, with issue 10's
//! replay safety): the recorded requests go to a fresh real
//! /usr/lib/openssh/sftp-server rooted in a directory replay controls, in the
//! recorded order, and each reply is compared with the recorded one.
//!
//! The transcripts are the reference sessions of tests/ref/sftp/ (the real
//! OpenSSH scp and sftp against the real sftp-server), rendered by the
//! tracer exactly as `record` writes them, and fresh ones recorded through
//! `scp -S local-ssh`.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use scptrace::config::{DataMode, Framing};
use scptrace::escape::escape;
use scptrace::protocol::Protocol;
use scptrace::tap::trace::Tracer;
use scptrace::transcript::Stream;
use scptrace::transcript::text::TextWriter;

use crate::replay::replay;
use crate::util::*;

const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

fn ref_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ref/sftp")
        .join(case)
}

/// Renders a reference session as the transcript `record` would write of
/// it: the tracer fed each recorded read in the recorded order.
fn render(case: &str, data: DataMode, out: &Path) {
    let d = ref_dir(case);
    let inb = fs::read(d.join("in.bin")).unwrap();
    let outb = fs::read(d.join("out.bin")).unwrap();
    let chunks = fs::read_to_string(d.join("chunks.txt")).unwrap();
    let file = fs::File::create(out).unwrap();
    let w = TextWriter::new(file, false);
    let mut t = Tracer::new(
        Some(Box::new(w)),
        case.into(),
        Framing::Message,
        data,
        Some(Protocol::Sftp),
    );
    t.header("scptrace", "0.1.0");
    t.invocation("subsystem sftp".into());
    let (mut i, mut o) = (0usize, 0usize);
    for l in chunks.lines() {
        let (dir, n) = l.split_once(' ').unwrap();
        let n: usize = n.parse().unwrap();
        match dir {
            "I" => {
                t.bytes(Stream::In, &inb[i..i + n]);
                i += n;
            }
            _ => {
                t.bytes(Stream::Out, &outb[o..o + n]);
                o += n;
            }
        }
    }
    assert_eq!(
        (i, o),
        (inb.len(), outb.len()),
        "{case}: chunks.txt covers the streams"
    );
    t.closed(Stream::In);
    t.closed(Stream::Out);
    t.flush();
}

fn report(f: &Finished) -> String {
    String::from_utf8_lossy(&f.stdout).into_owned()
}

fn code(f: &Finished) -> i32 {
    f.status.code().unwrap_or(-1)
}

/// The sessions the real OpenSSH scp and sftp had with the real sftp-server.
const CLEAN: [&str; 14] = [
    "upload",
    "upload-new-name",
    "upload-pipelined",
    "upload-p",
    "upload-r",
    "download",
    "download-pipelined",
    "download-r",
    "download-p",
    "download-missing",
    "upload-missing-dir",
    "home-path",
    "tilde-user",
    "sftp-batch",
];

#[test]
fn every_reference_session_replays_as_recorded() {
    if !Path::new(SFTP_SERVER).exists() {
        eprintln!("skipped: no {SFTP_SERVER}");
        return;
    }
    let sb = Sandbox::new();
    let mut failures = Vec::new();
    for case in CLEAN {
        for data in [DataMode::Head, DataMode::Full] {
            let t = sb.path().join(format!("{case}-{data:?}.log"));
            render(case, data, &t);
            let f = replay(&sb, &[t.as_os_str()]);
            let r = report(&f);
            if code(&f) != 0 || !r.contains("the real sftp-server answered as recorded") {
                failures.push(format!(
                    "{case} ({data:?}): exit {}\n{r}{}",
                    code(&f),
                    f.stderr_text()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A reference session rendered and edited: `edit` gets each line and its
/// number, and returns the line to write.
fn edited(sb: &Sandbox, case: &str, data: DataMode, edit: impl Fn(&str) -> String) -> PathBuf {
    let t = sb.path().join(format!("{case}.orig.log"));
    render(case, data, &t);
    let text = fs::read_to_string(&t).unwrap();
    let out: Vec<String> = text.lines().map(&edit).collect();
    assert_ne!(out.join("\n") + "\n", text, "{case}: the edit changed nothing");
    let e = sb.path().join(format!("{case}.edited.log"));
    fs::write(&e, out.join("\n") + "\n").unwrap();
    e
}

/// The line number of the first `O:` line holding `what`.
fn line_of(t: &Path, what: &str) -> usize {
    let text = fs::read_to_string(t).unwrap();
    1 + text
        .lines()
        .position(|l| l.starts_with("O: ") && l.contains(what))
        .unwrap_or_else(|| panic!("no line with {what:?} in {}", t.display()))
}

#[test]
fn an_edited_reply_is_the_first_difference() {
    if !Path::new(SFTP_SERVER).exists() {
        return;
    }
    let sb = Sandbox::new();
    // The STATUS of the WRITE: OK made FAILURE.
    let t = edited(&sb, "upload", DataMode::Head, |l| {
        if l.starts_with("O: ") && l.contains("OK \"Success\" for WRITE") {
            l.replacen(
                "\\0\\0\\0\\0\\0\\0\\0\\x07Success",
                "\\0\\0\\0\\x04\\0\\0\\0\\x07Success",
                1,
            )
        } else {
            l.to_string()
        }
    });
    let f = replay(&sb, &[t.as_os_str()]);
    let r = report(&f);
    assert_eq!(code(&f), 1, "{r}{}", f.stderr_text());
    let at = line_of(&t, "for WRITE");
    assert!(
        r.contains(&format!("DIFFERENCE at line {at} of ")),
        "the WRITE's reply, line {at}:\n{r}"
    );
    assert!(
        r.contains("answered STATUS OK \"Success\" instead of STATUS FAILURE \"Success\""),
        "{r}"
    );

    // One byte of the recorded data of a file the session wrote, then read
    // back (a file the session only read is re-created from its recorded
    // data, so an edit there changes the file too, not the verdict).
    let session = |data: &[u8]| {
        let h = || s(&u32b(0));
        vec![
            (Stream::In, pkt(1, &[&u32b(3)])),
            (Stream::Out, version()),
            (Stream::In, pkt(3, &[&u32b(1), &s(b"f"), &u32b(0x1b), &u32b(0)])),
            (Stream::Out, pkt(102, &[&u32b(1), &h()])),
            (
                Stream::In,
                pkt(6, &[&u32b(2), &h(), &[0; 8], &s(b"hello world\n")]),
            ),
            (Stream::Out, ok(2)),
            (Stream::In, pkt(5, &[&u32b(3), &h(), &[0; 8], &u32b(100)])),
            (Stream::Out, pkt(103, &[&u32b(3), &s(data)])),
            (Stream::In, pkt(4, &[&u32b(4), &h()])),
            (Stream::Out, ok(4)),
        ]
    };
    let t = sb.path().join("wr.log");
    transcript(&t, "subsystem sftp", &session(b"hello world\n"));
    let f = replay(&sb, &[t.as_os_str()]);
    assert_eq!(code(&f), 0, "unedited: {}{}", report(&f), f.stderr_text());
    transcript(&t, "subsystem sftp", &session(b"hellO world\n"));
    let f = replay(&sb, &[t.as_os_str()]);
    let r = report(&f);
    assert_eq!(code(&f), 1, "{r}{}", f.stderr_text());
    assert!(r.contains("DIFFERENCE at line 9 of "), "{r}");
    assert!(r.contains("answered other data from byte 4 of 12 on"), "{r}");
}

#[test]
fn a_server_that_is_not_sftp_server_differs_where_it_does() {
    if !Path::new(SFTP_SERVER).exists() {
        return;
    }
    let sb = Sandbox::new();
    // FSETSTAT refused by the recorded server; the real one does it.
    let t = sb.path().join("refuse.log");
    render("fault-refuse-fsetstat", DataMode::Head, &t);
    let f = replay(&sb, &[t.as_os_str()]);
    let r = report(&f);
    assert_eq!(code(&f), 1, "{r}{}", f.stderr_text());
    let at = line_of(&t, "OP_UNSUPPORTED");
    assert!(r.contains(&format!("DIFFERENCE at line {at} of ")), "{r}");
    assert!(
        r.contains("answered STATUS OK \"Success\" instead of STATUS OP_UNSUPPORTED"),
        "{r}"
    );
    // Shell output before VERSION; a reply cut short.
    for (case, says) in [
        ("fault-banner", "that are not SFTP"),
        ("fault-cut-reply", "a packet cut short"),
    ] {
        let t = sb.path().join(format!("{case}.log"));
        render(case, DataMode::Head, &t);
        let f = replay(&sb, &[t.as_os_str()]);
        let r = report(&f);
        assert_eq!(code(&f), 1, "{case}: {r}{}", f.stderr_text());
        assert!(r.contains(says), "{case}: {r}");
    }
}

// ---- hostile transcripts -----------------------------------------------------

/// An SFTP packet: type, then fields.
fn pkt(t: u8, fields: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = fields.concat();
    let mut v = ((body.len() + 1) as u32).to_be_bytes().to_vec();
    v.push(t);
    v.extend_from_slice(&body);
    v
}

fn s(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

fn u32b(n: u32) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

fn ok(id: u32) -> Vec<u8> {
    pkt(101, &[&u32b(id), &u32b(0), &s(b"Success"), &s(b"")])
}

/// A transcript of `packets` (stream, bytes) after `invocation`.
fn transcript(path: &Path, invocation: &str, packets: &[(Stream, Vec<u8>)]) {
    let mut t = format!(">>> New command invocation: {invocation}\n");
    for (stream, bytes) in packets {
        let l = if *stream == Stream::In { 'I' } else { 'O' };
        t.push_str(&format!("{l}: {}\n", escape(bytes)));
    }
    t.push_str(">>> stdin closed\n");
    fs::write(path, t).unwrap();
}

/// The real sftp-server's VERSION (from a reference session).
fn version() -> Vec<u8> {
    let out = fs::read(ref_dir("upload").join("out.bin")).unwrap();
    let n = u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
    assert_eq!(out[4], 2, "VERSION first");
    out[..4 + n].to_vec()
}

#[test]
fn hostile_paths_never_leave_the_target() {
    if !Path::new(SFTP_SERVER).exists() {
        return;
    }
    let sb = Sandbox::new();
    let victim = sb.path().join("victim");
    fs::write(&victim, b"precious\n").unwrap();
    let outside = sb.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let passwd = fs::read("/etc/passwd").unwrap();
    let passwd_meta = fs::metadata("/etc/passwd").unwrap();
    let victim_abs = victim.to_str().unwrap().as_bytes().to_vec();
    let escape_path = format!("../../../../../../..{}/pwned", outside.display());
    let open = |id: u32, path: &[u8]| pkt(3, &[&u32b(id), &s(path), &u32b(0x1a), &u32b(0)]);
    let handle = |id: u32, h: u32| pkt(102, &[&u32b(id), &s(&u32b(h))]);
    let write = |id: u32, h: u32, data: &[u8]| pkt(6, &[&u32b(id), &s(&u32b(h)), &[0; 8], &s(data)]);
    let close = |id: u32, h: u32| pkt(4, &[&u32b(id), &s(&u32b(h))]);
    use Stream::{In, Out};
    let packets = vec![
        (In, pkt(1, &[&u32b(3)])),
        (Out, version()),
        // An absolute path to /etc/passwd, written and truncated.
        (In, open(1, b"/etc/passwd")),
        (Out, handle(1, 0)),
        (In, write(2, 0, b"pwned::0:0::/:/bin/sh\n")),
        (Out, ok(2)),
        (In, close(3, 0)),
        (Out, ok(3)),
        // An absolute path to a real file, and a `..` escape.
        (In, open(4, &victim_abs)),
        (Out, handle(4, 0)),
        (In, write(5, 0, b"pwned\n")),
        (Out, ok(5)),
        (In, close(6, 0)),
        (Out, ok(6)),
        (In, open(7, escape_path.as_bytes())),
        (Out, handle(7, 0)),
        (In, close(8, 0)),
        (Out, ok(8)),
        // Renames and removals aimed outside.
        (In, pkt(18, &[&u32b(14), &s(&victim_abs), &s(b"/tmp/moved")])),
        (Out, ok(14)),
        (In, pkt(13, &[&u32b(15), &s(b"/etc/passwd")])),
        (Out, ok(15)),
        // A symlink to outside, then a write through it.
        (
            In,
            pkt(
                20,
                &[&u32b(9), &s(outside.to_str().unwrap().as_bytes()), &s(b"link")],
            ),
        ),
        (Out, ok(9)),
        (In, open(10, b"link/through")),
        (Out, handle(10, 0)),
        (In, close(11, 0)),
        (Out, ok(11)),
        // A relative symlink climbing out, a directory made through it.
        (
            In,
            pkt(20, &[&u32b(12), &s(b"../../../../../../../.."), &s(b"up")]),
        ),
        (Out, ok(12)),
        (
            In,
            pkt(
                14,
                &[
                    &u32b(13),
                    &s(format!("up{}/made", outside.display()).as_bytes()),
                    &u32b(0),
                ],
            ),
        ),
        (Out, ok(13)),
    ];
    let t = sb.path().join("hostile.log");
    transcript(&t, "subsystem sftp", &packets);
    let target = sb.path().join("target");
    let f = replay(&sb, &[t.as_os_str(), OsStr::new("--target"), target.as_os_str()]);
    let r = report(&f);
    // Every request ran (all replies as recorded), and:
    assert_eq!(code(&f), 0, "{r}{}", f.stderr_text());
    // Nothing outside the target changed.
    assert_eq!(fs::read("/etc/passwd").unwrap(), passwd, "/etc/passwd");
    assert_eq!(fs::metadata("/etc/passwd").unwrap().mtime(), passwd_meta.mtime());
    assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "{r}");
    assert!(!Path::new("/tmp/moved").exists());
    // Inside it, where the recorded server's paths are.
    assert_eq!(
        fs::read(target.join("etc/passwd")).unwrap_or_default(),
        b"",
        "written, then removed by the last request: {r}"
    );
    let inner = target.join(victim.strip_prefix("/").unwrap());
    assert!(!inner.exists(), "renamed away: {r}");
    assert_eq!(fs::read(target.join("tmp/moved")).unwrap(), b"pwned\n", "{r}");
    let inside = target.join(outside.strip_prefix("/").unwrap());
    assert!(inside.join("pwned").exists(), "{r}");
    assert!(inside.join("through").exists(), "{r}");
    assert!(inside.join("made").is_dir(), "{r}");
    assert!(r.contains("climbed above / with `..`"), "{r}");
    assert!(r.contains("made a symlink pointing outside its directory"), "{r}");
}

#[test]
fn the_bytes_written_are_capped() {
    if !Path::new(SFTP_SERVER).exists() {
        return;
    }
    let sb = Sandbox::new();
    // 300 WRITEs of 255 KiB each, recorded with only their heads: 75 MiB.
    let t = sb.path().join("big.log");
    let file = fs::File::create(&t).unwrap();
    let mut tr = Tracer::new(
        Some(Box::new(TextWriter::new(file, false))),
        "big".into(),
        Framing::Message,
        DataMode::Head,
        Some(Protocol::Sftp),
    );
    tr.invocation("subsystem sftp".into());
    tr.bytes(Stream::In, &pkt(1, &[&u32b(3)]));
    tr.bytes(Stream::Out, &version());
    tr.bytes(
        Stream::In,
        &pkt(3, &[&u32b(1), &s(b"big"), &u32b(0x1a), &u32b(0)]),
    );
    tr.bytes(Stream::Out, &pkt(102, &[&u32b(1), &s(&u32b(0))]));
    let data = vec![b'x'; 261_120];
    for k in 0..300u32 {
        let off = (u64::from(k) * 261_120).to_be_bytes();
        tr.bytes(Stream::In, &pkt(6, &[&u32b(2), &s(&u32b(0)), &off, &s(&data)]));
        tr.bytes(Stream::Out, &ok(2));
    }
    tr.closed(Stream::In);
    tr.flush();
    drop(tr);
    assert!(fs::metadata(&t).unwrap().len() < 200_000, "a small transcript");
    let target = sb.path().join("target");
    let f = replay(&sb, &[t.as_os_str(), OsStr::new("--target"), target.as_os_str()]);
    assert_eq!(code(&f), 2, "{}{}", report(&f), f.stderr_text());
    let err = f.stderr_text();
    assert!(err.contains("more than the cap of 64M"), "{err}");
    assert!(err.contains("--max-bytes 76500K"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!target.exists());
    // Raised, it runs: the file is the recorded size.
    let target2 = sb.path().join("target2");
    let f = replay(
        &sb,
        &[
            t.as_os_str(),
            OsStr::new("--max-bytes"),
            OsStr::new("76500K"),
            OsStr::new("--target"),
            target2.as_os_str(),
        ],
    );
    assert_eq!(code(&f), 0, "{}{}", report(&f), f.stderr_text());
    assert_eq!(fs::metadata(target2.join("big")).unwrap().len(), 300 * 261_120);
}

#[test]
fn the_transcript_never_chooses_the_program() {
    if !Path::new(SFTP_SERVER).exists() {
        return;
    }
    let sb = Sandbox::new();
    let flag = sb.path().join("PWNED");
    let evil_dir = sb.path().join("evil");
    fs::create_dir(&evil_dir).unwrap();
    let evil = evil_dir.join("sftp-server");
    fs::write(&evil, format!("#!/bin/sh\ntouch {}\n", flag.display())).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut fs::metadata(&evil).unwrap().permissions(), 0o755);
    fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let packets = [(Stream::In, pkt(1, &[&u32b(3)])), (Stream::Out, version())];
    // A program of the transcript's named sftp-server, and one run by a shell.
    for inv in [
        evil.display().to_string(),
        format!("sh -c 'touch {}; {}'", flag.display(), evil.display()),
    ] {
        let t = sb.path().join("evil.log");
        transcript(&t, &inv, &packets);
        let f = replay(&sb, &[t.as_os_str()]);
        let r = report(&f);
        assert_eq!(code(&f), 0, "{inv}: {r}{}", f.stderr_text());
        assert!(r.contains(&format!("against: {SFTP_SERVER} -d ")), "{r}");
        assert!(!flag.exists(), "{inv}: ran the transcript's program");
    }
    // Another subsystem, or none: nothing runs.
    for inv in ["subsystem evil", "sh -c 'touch x'"] {
        let t = sb.path().join("other.log");
        let mut p = packets.to_vec();
        p.insert(
            0,
            (Stream::In, format!("touch {}\n", flag.display()).into_bytes()),
        );
        transcript(&t, inv, &p);
        let f = replay(&sb, &[t.as_os_str()]);
        assert_eq!(code(&f), 2, "{inv}: {}{}", report(&f), f.stderr_text());
        assert!(f.stderr_text().contains("nor an SFTP one"), "{}", f.stderr_text());
        assert!(!flag.exists(), "{inv}");
    }
}

#[test]
fn fresh_recordings_replay_as_recorded() {
    if !Path::new(SFTP_SERVER).exists() {
        return;
    }
    let sb = Sandbox::new();
    let src = sb.path().join("src");
    let dst = sb.path().join("dst");
    fs::create_dir_all(src.join("tree/sub")).unwrap();
    fs::create_dir(&dst).unwrap();
    fs::write(src.join("a.txt"), b"hello\n").unwrap();
    fs::write(src.join("tree/b"), vec![7u8; 100_000]).unwrap();
    fs::write(src.join("tree/sub/c"), b"c\n").unwrap();
    let local_ssh = client("local-ssh");
    let remote = |p: &Path| format!("h:{}", p.display());
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "up",
            vec![src.join("a.txt").display().to_string(), remote(&dst.join(""))],
        ),
        (
            "up-r",
            vec!["-r".into(), src.join("tree").display().to_string(), remote(&dst)],
        ),
        (
            "down",
            vec![
                remote(&dst.join("a.txt")),
                sb.path().join("a.back").display().to_string(),
            ],
        ),
        (
            "down-r",
            vec![
                "-r".into(),
                "-p".into(),
                remote(&dst.join("tree")),
                sb.path().join("back").display().to_string(),
            ],
        ),
    ];
    for (name, args) in cases {
        let t = sb.path().join(format!("{name}.log"));
        let mut c = sb.command(bin());
        c.args(["record", "-o"])
            .arg(&t)
            .args(["--", "/usr/bin/scp", "-q", "-S"])
            .arg(&local_ssh)
            .args(&args);
        run(&mut c, Input::Null, DEADLINE).assert_success();
        let f = replay(&sb, &[t.as_os_str()]);
        let r = report(&f);
        assert_eq!(code(&f), 0, "{name}: {r}{}", f.stderr_text());
        assert!(
            r.contains("the real sftp-server answered as recorded"),
            "{name}: {r}"
        );
    }
}

#[test]
fn no_control_character_of_a_transcript_reaches_the_terminal() {
    if !Path::new(SFTP_SERVER).exists() {
        return;
    }
    let sb = Sandbox::new();
    let bad = "\x1b[2J\x07\r\x7f\u{9b}\u{202e}";
    let path = format!("dir{bad}/f");
    // A STAT of a path with controls, answered (as recorded) with a STATUS
    // whose message holds them too; the real server's message differs.
    let packets = vec![
        (Stream::In, pkt(1, &[&u32b(3)])),
        (Stream::Out, version()),
        (Stream::In, pkt(17, &[&u32b(1), &s(path.as_bytes())])),
        (
            Stream::Out,
            pkt(
                101,
                &[&u32b(1), &u32b(2), &s(format!("gone {bad}").as_bytes()), &s(b"")],
            ),
        ),
    ];
    let t = sb.path().join(format!("t{bad}.log"));
    transcript(&t, "subsystem sftp", &packets);
    let f = replay(&sb, &[t.as_os_str()]);
    assert_eq!(code(&f), 1, "{}{}", report(&f), f.stderr_text());
    for (what, out) in [("stdout", &f.stdout), ("stderr", &f.stderr)] {
        let text = String::from_utf8_lossy(out);
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && c != '\t' && scptrace::escape::is_terminal_control(c)),
            "{what}: {text:?}"
        );
    }
    assert!(
        report(&f).contains("instead of STATUS NO_SUCH_FILE"),
        "{}",
        report(&f)
    );
}
