//! Transcripts as users send them (issue 13): pasted into a mail or a bug
//! tracker, their TABs become spaces (`expand`) and their lines end in CR LF.
//! Real transfers, legacy SCP and SFTP, are recorded with real scp; each copy
//! must get the original's `check` verdict and `show` output, with one note
//! saying what was repaired.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::record::{arranged, local_ssh, os, record, remote};
use crate::util::*;

/// The files sent: a name and contents holding `  # ` (what the split must
/// not be fooled by), contents ending in spaces, and a file longer than the
/// 32 bytes `--data head` shows.
fn source(sb: &Sandbox) -> PathBuf {
    let src = sb.p("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a  # b.txt"), b"hello  # world\n").unwrap();
    fs::write(src.join("spaces"), b"ends in spaces   ").unwrap();
    fs::write(src.join("big.bin"), random_bytes(3000, 7)).unwrap();
    src
}

/// `f` passed through a shell filter, written next to it as `f.NAME`.
fn filtered(f: &Path, name: &str, filter: &str) -> PathBuf {
    let out = f.with_extension(name);
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("({filter}) < \"$1\" > \"$2\""))
        .arg("sh")
        .arg(f)
        .arg(&out)
        .status()
        .unwrap()
        .success();
    assert!(ok, "{filter}");
    out
}

fn scptrace(sb: &Sandbox, args: &[&str], file: &Path) -> Finished {
    let mut c = sb.command_in(bin());
    c.args(args).arg(file);
    run(&mut c, Input::Null, DEADLINE)
}

/// Every pasted form of `log` reads as `log` does, with the note.
fn assert_pasted_forms_read_the_same(sb: &Sandbox, log: &Path) {
    let text = fs::read_to_string(log).unwrap();
    assert!(text.contains('\t'), "{text}");
    let forms = [
        ("expanded", "expand", "TABs had become spaces"),
        ("crlf", "sed 's/$/\\r/'", "CRLF line endings"),
        ("both", "expand | sed 's/$/\\r/'", "TABs had become spaces"),
    ];
    let check = scptrace(sb, &["check"], log);
    let verdict = |f: &Finished, file: &Path| -> Vec<String> {
        let name = format!("{}:", file.display());
        String::from_utf8_lossy(&f.stdout)
            .lines()
            .filter(|l| !l.contains(" note: repaired on reading"))
            .map(|l| l.replacen(&name, "FILE:", 1))
            .collect()
    };
    let show_args: [&[&str]; 3] = [&["show"], &["show", "--format", "jsonl"], &["show", "--summary"]];
    for (name, filter, what) in forms {
        let copy = filtered(log, name, filter);
        assert_ne!(fs::read(&copy).unwrap(), text.as_bytes());
        let c = scptrace(sb, &["check"], &copy);
        assert_eq!(
            c.status.code(),
            check.status.code(),
            "{name}: {}",
            String::from_utf8_lossy(&c.stdout)
        );
        assert_eq!(verdict(&c, &copy), verdict(&check, log), "{name}");
        let out = String::from_utf8_lossy(&c.stdout).into_owned();
        let notes: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("repaired on reading"))
            .collect();
        assert_eq!(notes.len(), 1, "{name}: one note\n{out}");
        assert!(notes[0].contains(what), "{name}: {out}");
        for args in show_args {
            let orig = scptrace(sb, args, log);
            let s = scptrace(sb, args, &copy);
            assert_eq!(s.status.code(), Some(0), "{name} {args:?}: {}", s.stderr_text());
            // The summary names the file; everything else must be the same.
            let same = |f: &Finished, file: &Path| {
                String::from_utf8_lossy(&f.stdout).replace(&file.display().to_string(), "FILE")
            };
            assert_eq!(same(&s, &copy), same(&orig, log), "{name} {args:?}");
            let err = s.stderr_text();
            assert_eq!(err.lines().count(), 1, "{name} {args:?}: {err}");
            assert!(
                err.contains("note: repaired on reading") && err.contains(what),
                "{err}"
            );
        }
    }
}

#[test]
fn pasted_legacy_scp_transcripts_read_as_the_original() {
    let sb = Sandbox::new();
    let src = source(&sb);
    let dst = sb.p("dst");
    fs::create_dir_all(&dst).unwrap();
    let log = sb.p("t.log");
    let mut args = vec![os("-r"), os(&src), remote(&dst)];
    record(&sb, &["-o", log.to_str().unwrap()], &args).assert_success();
    assert_eq!(fs::read(dst.join("src/a  # b.txt")).unwrap(), b"hello  # world\n");
    assert_pasted_forms_read_the_same(&sb, &log);
    // And one with a violation: a name the sink refuses.
    let t = fs::read_to_string(&log).unwrap();
    assert!(t.contains("# file \"a  # b.txt\""), "{t}");
    // A download of a file that is not there: an error reply.
    let log2 = sb.p("t2.log");
    args = vec![remote(&sb.p("nonexistent")), os(sb.p("got"))];
    let r = record(&sb, &["-o", log2.to_str().unwrap()], &args);
    assert!(!r.status.success());
    assert_pasted_forms_read_the_same(&sb, &log2);
}

#[test]
fn pasted_sftp_transcripts_read_as_the_original() {
    let sb = Sandbox::new();
    let src = source(&sb);
    for (log, dst) in [("s.log", "dst/"), ("s2.log", "missing/")] {
        let log = sb.p(log);
        let mut c = arranged(&sb, bin());
        c.arg("record")
            .arg("-o")
            .arg(&log)
            .args(["--", REAL_SCP, "-s", "-S"])
            .arg(local_ssh())
            .arg("-r")
            .arg(&src)
            .arg(remote(&sb.p(dst)));
        fs::create_dir_all(sb.p("dst")).unwrap();
        run(&mut c, Input::Null, DEADLINE);
        let t = fs::read_to_string(&log).unwrap();
        assert!(t.contains(">>> New command invocation: subsystem sftp"), "{t}");
        assert_pasted_forms_read_the_same(&sb, &log);
    }
    assert_eq!(fs::read(sb.p("dst/src/spaces")).unwrap(), b"ends in spaces   ");
}

/// A line that the spaces leave ambiguous is refused with the places it
/// could be split, not guessed.
#[test]
fn an_ambiguous_pasted_line_is_refused() {
    let sb = Sandbox::new();
    let log = sb.p("amb.log");
    fs::write(
        &log,
        ">>> New command invocation: /usr/bin/scp -t /tmp\n\
         O: \\0      # ack\n\
         I: \\x01w  # data of \"x\", 38 B\\n  # warning: w  # data of \"x\", 38 B\n#: 1\n",
    )
    .unwrap();
    let c = scptrace(&sb, &["check"], &log);
    assert_eq!(c.status.code(), Some(2));
    let err = c.stderr_text();
    assert!(
        err.contains("amb.log:3: no TAB before an annotation") && err.contains("column"),
        "{err}"
    );
}
