//! Records the reference corpus `tests/ref/<case>/` (issue 9): one real
//! session per client the end-to-end tests run, through the same loopback
//! sshd (`sshd.rs`), with the stand-in in `--framing raw --data full` (one
//! transcript line per read: the real interleaving and every byte, so a new
//! decoder can re-decode them), and the figures of today's decoder for
//! `tests/ref/BEFORE.md`.
//!
//! Opt-in; without `SCPTRACE_SAVE_REF` this does nothing:
//!
//! ```text
//! SCPTRACE_SAVE_REF=$PWD/tests/ref cargo test --release --test it refcorpus -- --nocapture
//! ```
//!
//! Each case runs three times on the same sshd with the same paths: plain
//! scp (no stand-in), the stand-in with default settings (its live `!!`
//! lines and `check` on them are the "before" figures), and the stand-in
//! with `framing = "raw"`, `data = "full"` in the sessions' config file (the
//! transcript saved). Both traced runs must look exactly like the plain one
//! to the client (exit status, stdout, stderr, files). Written under DIR:
//! `<case>/transcript.log`, `<case>/README`, `<case>/before.txt` (the exact
//! output of `scptrace check transcript.log` there, and its exit status) and
//! `e2e-figures.md` (the table rows).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::peers::violation_name;
use crate::sshd::{Client, Op, Skip, Sshd, SshdOpts};
use crate::util::{self, DEADLINE, Finished, Input, Node, Transcript};

/// `src/one.bin`: every byte value, then 1000 bytes of noise (mode 0640).
fn one_file(root: &Path) {
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend(util::random_bytes(1000, 1));
    util::put(&root.join("src/one.bin"), &data, 0o640, 1_200_000_000);
    fs::create_dir_all(root.join("dst")).unwrap();
}

/// `src/a.txt` and `src/b.bin`.
fn two_files(root: &Path) {
    util::put(&root.join("src/a.txt"), b"first file\n", 0o644, 1_200_000_001);
    util::put(
        &root.join("src/b.bin"),
        &util::random_bytes(500, 2),
        0o600,
        1_200_000_002,
    );
    fs::create_dir_all(root.join("dst")).unwrap();
}

/// A small version of `util::sample_tree` at `src/tree` (the same shapes,
/// names and modes; 2 kB where that has 70 kB).
fn tree(root: &Path) {
    let t = root.join("src/tree");
    fs::create_dir_all(&t).unwrap();
    let all: Vec<u8> = (0..=255u8).collect();
    util::put(&t.join("empty"), b"", 0o644, 1_000_000_001);
    util::put(
        &t.join("with space.txt"),
        b"a name with a space\n",
        0o644,
        1_000_000_002,
    );
    util::put(
        &t.join(util::UTF8_NAME),
        "ünïcødé cöntent\n".as_bytes(),
        0o644,
        1_000_000_003,
    );
    util::put(&t.join("all-bytes.bin"), &all, 0o644, 1_000_000_004);
    util::put(&t.join("secret"), b"0600\n", 0o600, 1_000_000_005);
    util::put(&t.join("run.sh"), b"#!/bin/sh\necho 0755\n", 0o755, 1_000_000_006);
    util::put(
        &t.join("private/key"),
        b"0700 dir, 0600 file\n",
        0o600,
        1_000_000_007,
    );
    util::put(&t.join("private/tool"), b"0700 file\n", 0o700, 1_000_000_008);
    util::put(
        &t.join("nested/deeper/deepest/leaf.txt"),
        b"leaf\n",
        0o644,
        1_000_000_009,
    );
    util::put(
        &t.join("nested/deeper/mid.bin"),
        &util::random_bytes(2_000, 7),
        0o644,
        1_000_000_010,
    );
    util::put(
        &t.join("nested/top.txt"),
        b"line one\r\nline\ttwo\\\0\n",
        0o644,
        1_000_000_011,
    );
    fs::create_dir(t.join("empty-dir")).unwrap();
    fs::create_dir(t.join("nested/empty too")).unwrap();
    for (d, mode, s) in [
        ("nested/empty too", 0o755, 1_000_000_100),
        ("nested/deeper/deepest", 0o755, 1_000_000_101),
        ("nested/deeper", 0o755, 1_000_000_102),
        ("nested", 0o755, 1_000_000_103),
        ("private", 0o700, 1_000_000_104),
        ("empty-dir", 0o755, 1_000_000_105),
        ("", 0o755, 1_000_000_106),
    ] {
        let p = t.join(d);
        util::set_mode(&p, mode);
        util::set_time(&p, s);
    }
    fs::create_dir_all(root.join("dst")).unwrap();
}

fn nothing(root: &Path) {
    fs::create_dir_all(root.join("dst")).unwrap();
}

type RunFn = Box<dyn Fn(&Sshd, &Path) -> Result<Finished, Skip>>;

struct Case {
    name: String,
    /// Who the client is, for the README and the table.
    client: String,
    /// What the client is asked to do, in words (paths relative to the case's root).
    command: String,
    prepare: fn(&Path),
    run: RunFn,
    /// The path under the root whose contents must come out the same.
    result: &'static str,
}

fn generic(client: Client, label: &str, op: Op) -> Case {
    let (prepare, srcs, dst, result): (fn(&Path), &'static str, &'static str, &'static str) = match op {
        Op::Put => (one_file, "src/one.bin", "dst/one.bin", "dst"),
        Op::Get => (one_file, "src/one.bin", "dst/one.bin", "dst"),
        Op::PutTree => (tree, "src/tree", "dst/tree", "dst"),
        Op::GetTree => (tree, "src/tree", "dst/tree", "dst"),
    };
    let opname = match op {
        Op::Put => "put",
        Op::Get => "get",
        Op::PutTree => "put-r",
        Op::GetTree => "get-r",
    };
    let (from, to) = match op {
        Op::Put | Op::PutTree => (srcs.to_string(), format!("REMOTE:{dst}")),
        Op::Get | Op::GetTree => (format!("REMOTE:{srcs}"), dst.to_string()),
    };
    let flags = if matches!(op, Op::PutTree | Op::GetTree) {
        " (recursive, times preserved: -r -p)"
    } else {
        ""
    };
    Case {
        name: format!("{label}-{opname}"),
        client: label.to_string(),
        command: format!("{opname} {from} {to}{flags}"),
        prepare,
        run: Box::new(move |sshd: &Sshd, root: &Path| {
            sshd.transfer(client, op, &[&root.join(srcs)], &root.join(dst))
        }),
        result,
    }
}

/// OpenSSH `scp -O ARGS` with `@PATH` for a remote path under the root.
fn openssh(name: &str, prepare: fn(&Path), args: &'static [&'static str], result: &'static str) -> Case {
    Case {
        name: name.to_string(),
        client: "openssh".to_string(),
        command: format!(
            "scp -O {}",
            args.iter()
                .map(|a| a
                    .strip_prefix('@')
                    .map_or(a.to_string(), |r| format!("REMOTE:{r}")))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        prepare,
        run: Box::new(move |sshd: &Sshd, root: &Path| {
            let v: Vec<std::ffi::OsString> = args
                .iter()
                .map(|a| match a.strip_prefix('@') {
                    Some(r) => sshd.remote(root.join(r)),
                    None if a.starts_with('-') => a.into(),
                    None => root.join(a).into_os_string(),
                })
                .collect();
            Ok(sshd.openssh_scp(&v))
        }),
        result,
    }
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        openssh("openssh-put", one_file, &["src/one.bin", "@dst/"], "dst"),
        openssh(
            "openssh-put-two",
            two_files,
            &["src/a.txt", "src/b.bin", "@dst/"],
            "dst",
        ),
        openssh("openssh-get", one_file, &["@src/one.bin", "dst/"], "dst"),
        openssh(
            "openssh-put-r",
            tree,
            &["-r", "-p", "src/tree", "@dst/tree"],
            "dst",
        ),
        openssh(
            "openssh-get-r",
            tree,
            &["-r", "-p", "@src/tree", "dst/tree"],
            "dst",
        ),
        openssh("openssh-get-missing", nothing, &["@src/nope", "dst/"], "dst"),
        openssh(
            "openssh-put-no-target-dir",
            one_file,
            &["src/one.bin", "@nodir/sub/"],
            "dst",
        ),
    ];
    for (client, label) in [
        (Client::Pscp, "pscp"),
        (Client::Paramiko, "paramiko"),
        (Client::Asyncssh, "asyncssh"),
        (Client::NetScp, "net-scp"),
        (Client::Dbclient, "dbclient"),
        (Client::Curl, "curl"),
    ] {
        v.push(generic(client, label, Op::Put));
        v.push(generic(client, label, Op::Get));
        if client.recursive() {
            v.push(generic(client, label, Op::PutTree));
            v.push(generic(client, label, Op::GetTree));
        }
    }
    v
}

fn client_description(label: &str, versions: &BTreeMap<&str, String>) -> String {
    let v = |k: &str| {
        versions
            .get(k)
            .cloned()
            .unwrap_or_else(|| "version unknown".into())
    };
    match label {
        "openssh" => format!("OpenSSH scp -O (legacy protocol) with OpenSSH ssh ({})", v("ssh")),
        "pscp" => format!("PuTTY pscp -scp ({})", v("pscp")),
        "paramiko" => format!(
            "Python scp package over paramiko, tests/clients/paramiko_scp.py ({})",
            v("python")
        ),
        "asyncssh" => format!("asyncssh scp(), tests/clients/asyncssh_scp.py ({})", v("python")),
        "net-scp" => format!("Ruby net-scp, tests/clients/net_scp.rb ({})", v("ruby")),
        "dbclient" => format!(
            "OpenSSH scp -O with dropbear's dbclient as its ssh program, tests/clients/dbclient-ssh ({}, {})",
            v("ssh"),
            v("dbclient")
        ),
        "curl" => format!("curl scp:// (libssh2) ({})", v("curl")),
        _ => label.to_string(),
    }
}

fn first_line(cmd: &str) -> String {
    let mut c = Command::new("sh");
    c.args(["-c", cmd]);
    let f = util::run(&mut c, Input::Null, DEADLINE);
    let text = format!("{}{}", String::from_utf8_lossy(&f.stdout), f.stderr_text());
    text.lines().next().unwrap_or("unknown").trim().to_string()
}

fn versions() -> BTreeMap<&'static str, String> {
    let venv = std::env::var("SCPTRACE_TEST_VENV").unwrap_or_else(|_| "target/test-venv".into());
    let mut m = BTreeMap::new();
    m.insert("ssh", first_line("ssh -V"));
    m.insert("pscp", first_line("pscp -V"));
    m.insert("dbclient", first_line("dbclient -V"));
    m.insert("curl", first_line("curl -V"));
    m.insert(
        "python",
        first_line(&format!(
            "{venv}/bin/python -c \"import paramiko, scp, asyncssh; \
             print('paramiko', paramiko.__version__, 'scp', scp.__version__, 'asyncssh', asyncssh.__version__)\""
        )),
    );
    m.insert(
        "ruby",
        first_line("ruby -e \"require 'net/scp'; puts 'net-scp ' + Net::SCP::VERSION::STRING\""),
    );
    m
}

/// What one run did, as the client and the files show it.
struct Outcome {
    finished: Finished,
    tree: Option<BTreeMap<PathBuf, Node>>,
    transcripts: Vec<PathBuf>,
}

fn run_once(sshd: &Sshd, case: &Case) -> Result<Outcome, Skip> {
    let root = sshd.work().join(&case.name);
    if root.exists() {
        fs::remove_dir_all(&root).unwrap();
    }
    fs::create_dir_all(&root).unwrap();
    (case.prepare)(&root);
    let before = sshd.transcripts();
    let finished = (case.run)(sshd, &root)?;
    let result = root.join(case.result);
    let tree = fs::symlink_metadata(&result)
        .ok()
        .map(|_| util::snapshot(&result));
    let transcripts = sshd
        .transcripts()
        .into_iter()
        .filter(|t| !before.contains(t))
        .collect();
    Ok(Outcome {
        finished,
        tree,
        transcripts,
    })
}

/// How a traced run differs from the plain one, in words; empty if not.
fn differences(plain: &Outcome, traced: &Outcome) -> Vec<String> {
    let mut d = Vec::new();
    let (a, b) = (&plain.finished, &traced.finished);
    if a.status != b.status {
        d.push(format!("client exit {:?} vs {:?}", a.status, b.status));
    }
    if a.stdout != b.stdout {
        d.push(format!(
            "client stdout {:?} vs {:?}",
            util::escape(&a.stdout),
            util::escape(&b.stdout)
        ));
    }
    if a.stderr != b.stderr {
        d.push(format!(
            "client stderr {:?} vs {:?}",
            util::escape(&a.stderr),
            util::escape(&b.stderr)
        ));
    }
    match (&plain.tree, &traced.tree) {
        (Some(x), Some(y)) => {
            let r = std::panic::catch_unwind(|| util::assert_same_tree(x, y, false, "files"));
            if let Err(e) = r {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "trees differ".into());
                d.push(msg);
            }
        }
        (None, None) => {}
        (x, y) => d.push(format!(
            "result exists plain: {}, traced: {}",
            x.is_some(),
            y.is_some()
        )),
    }
    d
}

/// `scptrace check FILE` run in FILE's directory: (output, exit code).
pub fn check(path: &Path) -> (String, i32) {
    let mut c = Command::new(util::bin());
    c.current_dir(path.parent().unwrap())
        .args(["check", "--color", "never"])
        .arg(path.file_name().unwrap());
    let f = util::run(&mut c, Input::Null, DEADLINE);
    (
        format!("{}{}", String::from_utf8_lossy(&f.stdout), f.stderr_text()),
        f.status.code().unwrap_or(-1),
    )
}

/// `name ×count, ...` of the `!! name:` lines in `text`, most frequent first.
pub fn name_counts<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut m: BTreeMap<&str, usize> = BTreeMap::new();
    for n in lines.filter_map(violation_name) {
        *m.entry(n).or_default() += 1;
    }
    let mut v: Vec<(&str, usize)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(|(n, c)| format!("{n} ×{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn set_config(sshd: &Sshd, raw: bool) {
    let dir = sshd.dir().join("remote-config/scptrace");
    fs::create_dir_all(&dir).unwrap();
    let text = if raw {
        "# tests/it/refcorpus.rs: the saved sessions\nframing = \"raw\"\ndata = \"full\"\n"
    } else {
        ""
    };
    fs::write(dir.join("config.toml"), text).unwrap();
}

fn list_files(root: &Path) -> String {
    let mut s = String::new();
    if !root.exists() {
        return "  (nothing)\n".into();
    }
    for (p, n) in util::snapshot(root) {
        let shown = if p.as_os_str().is_empty() {
            ".".to_string()
        } else {
            p.display().to_string()
        };
        match &n.kind {
            util::NodeKind::File(b) => {
                let _ = writeln!(s, "  {shown}  {} B, mode {:04o}", b.len(), n.mode);
            }
            util::NodeKind::Dir => {
                let _ = writeln!(s, "  {shown}/  mode {:04o}", n.mode);
            }
            k => {
                let _ = writeln!(s, "  {shown}  {k:?}");
            }
        }
    }
    s
}

#[test]
fn record_reference_corpus() {
    let Some(out) = std::env::var_os("SCPTRACE_SAVE_REF").map(PathBuf::from) else {
        return;
    };
    let only = std::env::var("SCPTRACE_SAVE_REF_ONLY").ok();
    let sshd = crate::or_skip!(Sshd::start(SshdOpts::default()));
    let versions = versions();
    fs::create_dir_all(&out).unwrap();
    let mut rows = String::from(
        "| case | client | `!!` lines (live) | check exit | violations (live transcript) | re-decoded from the raw transcript (before.txt) | transfer |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let mut problems = Vec::new();
    for case in cases() {
        if only.as_deref().is_some_and(|o| !case.name.contains(o)) {
            continue;
        }
        let what = &case.name;
        sshd.remove_standin();
        let plain = match run_once(&sshd, &case) {
            Ok(o) => o,
            Err(skip) => {
                eprintln!("SKIP {what}: {}", skip.0);
                let _ = writeln!(rows, "| {what} | {} | skipped: {} | | | | |", case.client, skip.0);
                continue;
            }
        };
        sshd.install_standin();
        set_config(&sshd, false);
        let live = run_once(&sshd, &case).unwrap();
        set_config(&sshd, true);
        let raw = run_once(&sshd, &case).unwrap();
        set_config(&sshd, false);
        sshd.remove_standin();

        let mut diffs = differences(&plain, &live);
        diffs.extend(
            differences(&plain, &raw)
                .into_iter()
                .map(|d| format!("raw run: {d}")),
        );
        for (o, kind) in [(&live, "live"), (&raw, "raw")] {
            if o.transcripts.len() != 1 {
                diffs.push(format!("{kind} run wrote {} transcripts", o.transcripts.len()));
            }
        }
        if !diffs.is_empty() {
            problems.push(format!("{what}: {}", diffs.join("; ")));
        }

        // The live figures.
        let (mut bangs, mut exit, mut names) = (0, -1, String::from("?"));
        if let Some(t) = live.transcripts.first() {
            let tr = Transcript::read(t);
            bangs = tr.bare().iter().filter(|l| l.starts_with("!! ")).count();
            let (report, code) = check(t);
            exit = code;
            names = name_counts(report.lines());
        }

        // The saved session.
        let dir = out.join(what);
        fs::create_dir_all(&dir).unwrap();
        let mut redecoded = String::from("?");
        let mut server_exit = String::from("?");
        if let Some(t) = raw.transcripts.first() {
            let dest = dir.join("transcript.log");
            fs::copy(t, &dest).unwrap();
            let size = fs::metadata(&dest).unwrap().len();
            if size > 100 * 1024 {
                problems.push(format!("{what}: transcript is {size} bytes"));
            }
            let (report, code) = check(&dest);
            fs::write(
                dir.join("before.txt"),
                format!("$ scptrace check transcript.log\n{report}[exit status {code}]\n"),
            )
            .unwrap();
            redecoded = format!("{} (exit {code})", name_counts(report.lines()));
            let tr = Transcript::read(&dest);
            server_exit = tr.body.last().cloned().unwrap_or_default();
            let root = sshd.work().join(what);
            let readme = format!(
                "{what}: a real session recorded by tests/it/refcorpus.rs\n\
                 \n\
                 client:     {client}\n\
                 asked to:   {command}\n\
                 \x20           (REMOTE: is the loopback sshd of tests/it/sshd.rs, as the same user;\n\
                 \x20           paths are under the case's temporary root, {root})\n\
                 server:     {invocation}\n\
                 \x20           through the scptrace stand-in, `framing = \"raw\"`, `data = \"full\"`\n\
                 \x20           (one transcript line per read, every byte)\n\
                 result:     client {status}, server scp `{server_exit}`; the same as with plain scp\n\
                 \x20           (exit status, stdout, stderr, files){same}\n\
                 recorded:   {date}, scptrace {version}\n\
                 \n\
                 what the source side held (mode, size):\n{source}\
                 \n\
                 before.txt: the output of today's `scptrace check transcript.log`, in this directory.\n",
                client = client_description(&case.client, &versions),
                command = case.command,
                root = root.display(),
                invocation = tr.invocation(),
                status = match raw.finished.status.code() {
                    Some(c) => format!("exit {c}"),
                    None => format!("{:?}", raw.finished.status),
                },
                same = if diffs.is_empty() {
                    ""
                } else {
                    " -- NOT THE SAME, see e2e-figures.md"
                },
                date = tr.header("start").unwrap_or("?"),
                version = tr.header("scptrace").unwrap_or("?"),
                source = list_files(&root.join("src")),
            );
            fs::write(dir.join("README"), readme).unwrap();
        }
        let transfer = if diffs.is_empty() {
            format!(
                "same as plain (client exit {}, server scp exit {})",
                plain.finished.status.code().unwrap_or(-1),
                server_exit.trim_start_matches("#: ")
            )
        } else {
            format!("DIFFERS: {}", diffs.join("; "))
        };
        let _ = writeln!(
            rows,
            "| {what} | {} | {bangs} | {exit} | {names} | {redecoded} | {transfer} |",
            case.client
        );
        eprintln!("recorded {what}");
    }
    fs::write(out.join("e2e-figures.md"), &rows).unwrap();
    eprintln!("{rows}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
