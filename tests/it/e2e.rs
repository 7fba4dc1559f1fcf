//! End-to-end tests through a real OpenSSH sshd on a loopback port (issue 4),
//! one per scp client implementation: first that each client round-trips a
//! file through the plain scp, proving the harness in `sshd.rs`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::or_skip;
use crate::sshd::{Client, Op, Skip, Sshd, SshdOpts};
use crate::util::{self, DEADLINE, Finished, Input, Node, Transcript};

fn assert_clean(f: &Finished, what: &str) {
    assert!(
        f.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        f.status,
        String::from_utf8_lossy(&f.stdout),
        f.stderr_text()
    );
    assert!(f.stderr.is_empty(), "{what}: stderr: {}", f.stderr_text());
    assert!(
        f.stdout.is_empty(),
        "{what}: stdout: {}",
        String::from_utf8_lossy(&f.stdout)
    );
}

/// Uploads one file with `client` and downloads it back; both copies must be
/// byte-identical to the original, and the client silent and successful.
fn round_trip(client: Client) {
    let sshd = or_skip!(Sshd::start(SshdOpts::default()));
    let work = sshd.work();
    // Every byte value, then enough pseudo-random data for several reads.
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend(util::random_bytes(200_000, 42));
    let src = work.join("original.bin");
    fs::write(&src, &data).unwrap();
    let remote_dir = work.join("remote");
    fs::create_dir(&remote_dir).unwrap();
    let uploaded = remote_dir.join("uploaded.bin");
    let downloaded = work.join("downloaded.bin");

    let up = or_skip!(sshd.transfer(client, Op::Put, &[&src], &uploaded));
    assert_clean(&up, &format!("{client:?} upload"));
    assert!(
        fs::read(&uploaded).unwrap() == data,
        "{client:?}: uploaded bytes differ"
    );

    let down = or_skip!(sshd.transfer(client, Op::Get, &[&uploaded], &downloaded));
    assert_clean(&down, &format!("{client:?} download"));
    assert!(
        fs::read(&downloaded).unwrap() == data,
        "{client:?}: downloaded bytes differ"
    );

    // Plain scp on the server: no stand-in ran, so no transcript.
    assert!(sshd.transcripts().is_empty(), "transcripts without a stand-in");
}

#[test]
fn openssh_round_trip() {
    round_trip(Client::OpenSsh);
}

#[test]
fn pscp_round_trip() {
    round_trip(Client::Pscp);
}

#[test]
fn paramiko_round_trip() {
    round_trip(Client::Paramiko);
}

#[test]
fn asyncssh_round_trip() {
    round_trip(Client::Asyncssh);
}

#[test]
fn curl_round_trip() {
    round_trip(Client::Curl);
}

#[test]
fn net_scp_round_trip() {
    round_trip(Client::NetScp);
}

#[test]
fn dbclient_round_trip() {
    round_trip(Client::Dbclient);
}

/// The harness itself: sessions get our PATH, with `bin/` first, and the
/// stand-in placed there is what `scp` resolves to.
#[test]
fn sshd_session_path() {
    let sshd = or_skip!(Sshd::start(SshdOpts::default()));
    let f = sshd.ssh("echo $PATH; echo $SCPTRACE_LOG_DIR");
    assert!(f.status.success(), "ssh: {}", f.stderr_text());
    let out = String::from_utf8_lossy(&f.stdout).into_owned();
    let bin = sshd.bin_dir().display().to_string();
    // Exactly ours: the user's ~/.bashrc did not run (SshdOpts::user_rc).
    assert!(
        out.starts_with(&format!("{bin}:/usr/local/bin:/usr/bin:/bin\n")),
        "{out}"
    );
    assert!(out.contains(&sshd.log_dir().display().to_string()), "{out}");
    assert_eq!(sshd.remote_scp(), "/usr/bin/scp");
    sshd.install_standin();
    assert_eq!(Path::new(&sshd.remote_scp()), sshd.bin_dir().join("scp"));
}

// ------------------------------------------------------------ plain vs traced

/// What one run of a case left behind.
struct Outcome {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// The case's result path (file or tree), if it exists.
    tree: Option<BTreeMap<PathBuf, Node>>,
}

type Run = Box<dyn Fn(&Sshd, &Path) -> Result<Finished, Skip>>;

/// One transfer, run twice on the same sshd with the same paths: through
/// the plain scp, then with the stand-in first on the sessions' PATH.
struct Case {
    name: &'static str,
    /// Builds the case's files under its root (an empty directory).
    prepare: fn(&Path),
    /// Runs the client, given the case's root.
    run: Run,
    /// The path under the root whose contents must come out the same.
    result: &'static str,
    /// Whether preserved mtimes must match too (`-p` and the like): every
    /// time a run kept from the source (the fixtures' times are in 2001-2008)
    /// must be the same in the other run. Times a client sets to "now" (some
    /// do for directories) cannot match and are not compared.
    mtimes: bool,
    /// Whether the transfer succeeds (it is checked on the plain run).
    success: bool,
    /// Transcripts the traced run writes (server-side scp invocations).
    transcripts: usize,
    /// The server-side scp's exit status, when it is known (by default 0
    /// for a successful transfer).
    server_exit: Option<i32>,
    /// Violations `scptrace check` must report in each transcript, as
    /// substrings of its output; none means it must find none.
    violations: &'static [&'static str],
    /// How the transcript's invocation line starts: the real scp's path,
    /// except under `forced`, which records the original command.
    invocation: &'static str,
}

impl Case {
    fn new(name: &'static str, prepare: fn(&Path), result: &'static str, run: Run) -> Case {
        Case {
            name,
            prepare,
            run,
            result,
            mtimes: false,
            success: true,
            transcripts: 1,
            server_exit: Some(0),
            violations: &[],
            invocation: "/usr/bin/scp ",
        }
    }
    fn mtimes(mut self) -> Case {
        self.mtimes = true;
        self
    }
    fn fails(mut self) -> Case {
        self.success = false;
        self.server_exit = None;
        self
    }
    fn server_exit(mut self, code: i32) -> Case {
        self.server_exit = Some(code);
        self
    }
    fn violations(mut self, v: &'static [&'static str]) -> Case {
        self.violations = v;
        self
    }
}

/// A client transfer between paths relative to the case's root.
fn xfer(client: Client, op: Op, srcs: &'static [&'static str], dst: &'static str) -> Run {
    Box::new(move |sshd: &Sshd, root: &Path| {
        let srcs: Vec<PathBuf> = srcs.iter().map(|s| root.join(s)).collect();
        let srcs: Vec<&Path> = srcs.iter().map(PathBuf::as_path).collect();
        sshd.transfer(client, op, &srcs, &root.join(dst))
    })
}

/// OpenSSH `scp -O ARGS`, where `@PATH` is the remote PATH under the root
/// and any other argument starting with a letter a local path under it.
fn openssh(args: &'static [&'static str]) -> Run {
    Box::new(move |sshd: &Sshd, root: &Path| Ok(sshd.openssh_scp(&scp_args(sshd, root, args))))
}

/// The same with `pscp -scp`.
fn pscp(args: &'static [&'static str]) -> Run {
    Box::new(move |sshd: &Sshd, root: &Path| sshd.pscp(&scp_args(sshd, root, args)))
}

fn scp_args(sshd: &Sshd, root: &Path, args: &[&str]) -> Vec<OsString> {
    args.iter()
        .map(|a| {
            if let Some(r) = a.strip_prefix('@') {
                if r.starts_with('/') {
                    sshd.remote(r)
                } else {
                    sshd.remote(root.join(r))
                }
            } else if a.starts_with('-') || a.starts_with('/') {
                OsString::from(a)
            } else {
                root.join(a).into_os_string()
            }
        })
        .collect()
}

/// `src/one.bin` (every byte value, then 100 kB of noise; mode 0640, a
/// fixed time) and an empty `dst/`.
fn one_file(root: &Path) {
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend(util::random_bytes(100_000, 1));
    util::put(&root.join("src/one.bin"), &data, 0o640, 1_200_000_000);
    fs::create_dir(root.join("dst")).unwrap();
}

/// `src/a.txt`, `src/b.bin` and an empty `dst/`.
fn two_files(root: &Path) {
    util::put(&root.join("src/a.txt"), b"first file\n", 0o644, 1_200_000_001);
    util::put(
        &root.join("src/b.bin"),
        &util::random_bytes(5_000, 2),
        0o600,
        1_200_000_002,
    );
    fs::create_dir(root.join("dst")).unwrap();
}

/// The sample tree at `src/tree` and an empty `dst/`.
fn tree(root: &Path) {
    util::sample_tree(&root.join("src/tree"));
    fs::create_dir(root.join("dst")).unwrap();
}

/// `dst/` only (for errors about the source).
fn nothing(root: &Path) {
    fs::create_dir(root.join("dst")).unwrap();
}

fn snapshot(p: &Path) -> Option<BTreeMap<PathBuf, Node>> {
    fs::symlink_metadata(p).ok().map(|_| util::snapshot(p))
}

/// Times before this (2008) come from the fixtures, not from the clock.
const FIXTURE_TIMES_BEFORE: i64 = 1_230_000_000;

fn assert_same_preserved_times(a: &BTreeMap<PathBuf, Node>, b: &BTreeMap<PathBuf, Node>, what: &str) {
    let mut diffs = Vec::new();
    let mut preserved = 0;
    for (p, na) in a {
        let nb = &b[p];
        if na.mtime.0 < FIXTURE_TIMES_BEFORE || nb.mtime.0 < FIXTURE_TIMES_BEFORE {
            preserved += 1;
            if na.mtime != nb.mtime {
                diffs.push(format!("{p:?}: mtime {:?} vs {:?}", na.mtime, nb.mtime));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: preserved times differ:\n{}",
        diffs.join("\n")
    );
    assert!(preserved > 0, "{what}: no time was preserved");
}

fn run_once(sshd: &Sshd, case: &Case) -> Result<Outcome, Skip> {
    let root = sshd.work().join(case.name);
    if root.exists() {
        fs::remove_dir_all(&root).unwrap();
    }
    fs::create_dir_all(&root).unwrap();
    (case.prepare)(&root);
    let f = (case.run)(sshd, &root)?;
    Ok(Outcome {
        status: f.status,
        stdout: f.stdout,
        stderr: f.stderr,
        tree: snapshot(&root.join(case.result)),
    })
}

/// Starts an sshd whose sessions resolve `scp` to the stand-in once it is
/// installed (checked), for the comparison cases.
fn comparison_sshd() -> Result<Sshd, Skip> {
    let sshd = Sshd::start(SshdOpts::default())?;
    sshd.install_standin();
    assert_eq!(
        Path::new(&sshd.remote_scp()),
        sshd.bin_dir().join("scp"),
        "the stand-in is not what sessions run as scp"
    );
    sshd.remove_standin();
    Ok(sshd)
}

/// Runs `case` plain and traced and fails on any difference the client or
/// the files show; checks the transcripts. Returns them.
fn compare(sshd: &Sshd, case: &Case) -> Result<Vec<Transcript>, Skip> {
    let what = case.name;
    sshd.remove_standin();
    let plain = run_once(sshd, case)?;
    assert_eq!(
        plain.status.success(),
        case.success,
        "{what}: plain run: {:?}\nstderr: {}",
        plain.status,
        String::from_utf8_lossy(&plain.stderr)
    );
    if case.success {
        assert!(
            plain.tree.is_some(),
            "{what}: no {} after the plain run",
            case.result
        );
    }

    let before = sshd.transcripts();
    sshd.install_standin();
    let traced = run_once(sshd, case);
    sshd.remove_standin();
    let traced = traced?;
    let new: Vec<PathBuf> = sshd
        .transcripts()
        .into_iter()
        .filter(|t| !before.contains(t))
        .collect();

    assert_eq!(plain.status, traced.status, "{what}: client exit status");
    assert_eq!(
        util::escape(&plain.stderr),
        util::escape(&traced.stderr),
        "{what}: client stderr"
    );
    assert_eq!(
        util::escape(&plain.stdout),
        util::escape(&traced.stdout),
        "{what}: client stdout"
    );
    match (&plain.tree, &traced.tree) {
        (Some(a), Some(b)) => {
            util::assert_same_tree(a, b, false, what);
            if case.mtimes {
                assert_same_preserved_times(a, b, what);
            }
        }
        (None, None) => {}
        (a, b) => panic!(
            "{what}: {} exists plain: {}, traced: {}",
            case.result,
            a.is_some(),
            b.is_some()
        ),
    }

    assert_eq!(
        new.len(),
        case.transcripts,
        "{what}: transcripts written: {new:?}\nsshd log:\n{}",
        sshd.log()
    );
    let transcripts: Vec<Transcript> = new.iter().map(|p| Transcript::read(p)).collect();
    for t in &transcripts {
        check_transcript(t, case);
    }
    Ok(transcripts)
}

/// A stand-in transcript of a server-side scp: the real scp run with -t or
/// -f, both directions seen, an exit status, and `scptrace check` reporting
/// exactly the expected violations.
fn check_transcript(t: &Transcript, case: &Case) {
    let what = format!("{}: {}", case.name, t.path.display());
    let inv = t.invocation();
    assert!(inv.starts_with(case.invocation), "{what}: invocation {inv}");
    assert!(
        inv.split(' ')
            .any(|a| a.starts_with('-') && !a.starts_with("--") && (a.contains('t') || a.contains('f'))),
        "{what}: no -t/-f in {inv}"
    );
    let bare = t.bare();
    assert!(
        bare.iter().any(|l| l.starts_with("I: ")),
        "{what}: no I: line\n{}",
        t.body.join("\n")
    );
    assert!(
        bare.iter().any(|l| l.starts_with("O: ")),
        "{what}: no O: line\n{}",
        t.body.join("\n")
    );
    let mut c = Command::new(util::bin());
    c.arg("check").arg("--color").arg("never").arg(&t.path);
    let f = util::run(&mut c, Input::Null, DEADLINE);
    let report = format!("{}{}", String::from_utf8_lossy(&f.stdout), f.stderr_text());
    if std::env::var_os("SCPTRACE_E2E_SHOW").is_some() {
        eprintln!("=== {what}\n{}\n--- check:\n{report}", t.body.join("\n"));
    }
    if let Some(code) = case.server_exit {
        assert_eq!(t.exit(), code, "{what}: server scp exit\n{}", t.body.join("\n"));
    }
    // Exactly the expected violations, each once, in the check report and
    // in the transcript itself.
    let expected = if case.violations.is_empty() {
        Some(0)
    } else {
        Some(1)
    };
    assert_eq!(
        f.status.code(),
        expected,
        "{what}: scptrace check: {report}\n{}",
        t.body.join("\n")
    );
    let flagged: Vec<&str> = report.lines().filter(|l| l.contains("!! ")).collect();
    assert_eq!(
        flagged.len(),
        case.violations.len(),
        "{what}: violations {flagged:?}, expected {:?}",
        case.violations
    );
    for v in case.violations {
        assert!(
            flagged.iter().any(|l| l.contains(v)),
            "{what}: check does not report {v:?}:\n{report}"
        );
        assert!(
            bare.iter().any(|l| l.starts_with("!! ") && l.contains(v)),
            "{what}: the transcript does not flag {v:?}"
        );
    }
}

fn compare_all(cases: Vec<Case>) {
    let sshd = or_skip!(comparison_sshd());
    for case in &cases {
        or_skip!(compare(&sshd, case));
    }
}

#[test]
fn openssh_uploads_plain_vs_traced() {
    use Client::OpenSsh;
    compare_all(vec![
        Case::new("up-one", one_file, "dst", openssh(&["src/one.bin", "@dst/"])),
        Case::new(
            "up-two",
            two_files,
            "dst",
            openssh(&["src/a.txt", "src/b.bin", "@dst/"]),
        ),
        Case::new(
            "up-tree",
            tree,
            "dst/tree",
            openssh(&["-r", "-p", "src/tree", "@dst/tree"]),
        )
        .mtimes(),
        Case::new(
            "up-generic",
            one_file,
            "dst",
            xfer(OpenSsh, Op::Put, &["src/one.bin"], "dst/x"),
        ),
    ]);
}

#[test]
fn openssh_downloads_plain_vs_traced() {
    compare_all(vec![
        Case::new("down-one", one_file, "dst", openssh(&["@src/one.bin", "dst/"])),
        Case::new(
            "down-tree",
            tree,
            "dst/tree",
            openssh(&["-r", "-p", "@src/tree", "dst/tree"]),
        )
        .mtimes(),
        Case::new("down-glob", tree, "dst", openssh(&["@src/tree/*.txt", "dst/"])),
    ]);
}

#[test]
fn openssh_errors_plain_vs_traced() {
    let unwritable: &'static str = if nix::unistd::geteuid().is_root() {
        // root writes anywhere it has a permission bit to override; sysfs
        // refuses new files even to root.
        "@/sys/"
    } else {
        "@ro/"
    };
    let up_unwritable: &'static [&'static str] = Box::leak(Box::new(["src/one.bin", unwritable]));
    compare_all(vec![
        Case::new(
            "missing-remote-source",
            nothing,
            "dst",
            openssh(&["@src/nope", "dst/"]),
        )
        .fails(),
        Case::new(
            "missing-local-source",
            nothing,
            "dst",
            openssh(&["src/nope", "@dst/"]),
        )
        .fails(),
        Case::new(
            "missing-target-dir",
            one_file,
            "dst",
            openssh(&["src/one.bin", "@nodir/sub/"]),
        )
        .fails(),
        Case::new(
            "unwritable-target",
            |root| {
                one_file(root);
                fs::create_dir(root.join("ro")).unwrap();
                util::set_mode(&root.join("ro"), 0o555);
            },
            "dst",
            openssh(up_unwritable),
        )
        .fails(),
    ]);
}

#[test]
fn pscp_plain_vs_traced() {
    compare_all(vec![
        Case::new("pscp-up", one_file, "dst", pscp(&["src/one.bin", "@dst/"])),
        Case::new("pscp-down", one_file, "dst", pscp(&["@src/one.bin", "dst/"])),
        Case::new(
            "pscp-tree",
            tree,
            "dst/tree",
            pscp(&["-r", "-p", "src/tree", "@dst/tree"]),
        )
        .mtimes(),
        Case::new("pscp-missing", nothing, "dst", pscp(&["@src/nope", "dst/"])).fails(),
    ]);
}

/// The four generic ops of one client library.
fn library_cases(client: Client, tag: &'static str) -> Vec<Case> {
    let name = |op: &str| -> &'static str { Box::leak(format!("{tag}-{op}").into_boxed_str()) };
    vec![
        Case::new(
            name("put"),
            one_file,
            "dst",
            xfer(client, Op::Put, &["src/one.bin"], "dst/one.bin"),
        ),
        Case::new(
            name("get"),
            one_file,
            "dst",
            xfer(client, Op::Get, &["src/one.bin"], "dst/one.bin"),
        ),
        Case::new(
            name("put-r"),
            tree,
            "dst/tree",
            xfer(client, Op::PutTree, &["src/tree"], "dst/tree"),
        )
        .mtimes(),
        Case::new(
            name("get-r"),
            tree,
            "dst/tree",
            xfer(client, Op::GetTree, &["src/tree"], "dst/tree"),
        )
        .mtimes(),
    ]
}

#[test]
fn paramiko_plain_vs_traced() {
    compare_all(library_cases(Client::Paramiko, "paramiko"));
}

#[test]
fn asyncssh_plain_vs_traced() {
    compare_all(library_cases(Client::Asyncssh, "asyncssh"));
}

#[test]
fn net_scp_plain_vs_traced() {
    compare_all(library_cases(Client::NetScp, "net-scp"));
}

#[test]
fn dbclient_plain_vs_traced() {
    compare_all(library_cases(Client::Dbclient, "dbclient"));
}

#[test]
fn curl_plain_vs_traced() {
    use Client::Curl;
    compare_all(vec![
        // libssh2 sends no \0 after the file data and closes the channel;
        // the server scp exits 1 (silently) while curl reports success.
        Case::new(
            "curl-put",
            one_file,
            "dst",
            xfer(Curl, Op::Put, &["src/one.bin"], "dst/one.bin"),
        )
        .server_exit(1)
        .violations(&["missing-data-end"]),
        // Nor does it acknowledge the end of the file in a download: the
        // server scp waits for that \0, sees EOF and exits 1.
        Case::new(
            "curl-get",
            one_file,
            "dst",
            xfer(Curl, Op::Get, &["src/one.bin"], "dst/one.bin"),
        )
        .server_exit(1)
        .violations(&["missing-reply"]),
    ]);
}

/// `scptrace forced` as the key's `command="…"` in authorized_keys: a shell
/// command runs untraced, exactly as without it; an scp upload and download
/// are traced, and the files arrive.
#[test]
fn forced_command_through_authorized_keys() {
    let opts = SshdOpts {
        key_options: Some(format!("command=\"{} forced\"", util::bin().display())),
        ..SshdOpts::default()
    };
    let sshd = or_skip!(Sshd::start(opts));

    let shell = sshd.ssh("echo hello; echo $SSH_ORIGINAL_COMMAND >&2; exit 3");
    assert_eq!(shell.status.code(), Some(3), "{}", shell.stderr_text());
    assert_eq!(String::from_utf8_lossy(&shell.stdout), "hello\n");
    assert_eq!(
        shell.stderr_text(),
        "echo hello; echo $SSH_ORIGINAL_COMMAND >&2; exit 3\n"
    );
    assert!(sshd.transcripts().is_empty(), "a shell command was traced");

    let root = sshd.work().join("forced");
    fs::create_dir(&root).unwrap();
    one_file(&root);
    let up = sshd.openssh_scp(&scp_args(&sshd, &root, &["src/one.bin", "@dst/"]));
    assert_clean(&up, "forced upload");
    assert_eq!(
        fs::read(root.join("dst/one.bin")).unwrap(),
        fs::read(root.join("src/one.bin")).unwrap()
    );
    let down = sshd.openssh_scp(&scp_args(&sshd, &root, &["@dst/one.bin", "back.bin"]));
    assert_clean(&down, "forced download");
    assert_eq!(
        fs::read(root.join("back.bin")).unwrap(),
        fs::read(root.join("src/one.bin")).unwrap()
    );

    let transcripts = sshd.transcripts();
    assert_eq!(transcripts.len(), 2, "{transcripts:?}\n{}", sshd.log());
    let mut case = Case::new("forced", one_file, "dst", openssh(&[]));
    // The original command, as the shell will run it.
    case.invocation = "scp -";
    for p in &transcripts {
        check_transcript(&Transcript::read(p), &case);
    }
}
