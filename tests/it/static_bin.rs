//! `make static` (issue 13): the one file copied onto a remote host. It runs
//! in a chroot with no libc and no /etc, and as the stand-in in a chroot that
//! holds only it, the real scp and scp's own needs (its libraries from ldd,
//! the /etc/passwd entry and /dev/null it cannot start without), with no
//! /proc. Needs root (chroot); skipped with a note otherwise.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::util::{DEADLINE, Input, REAL_SCP, bin, run};

const CHROOT: &str = "/usr/sbin/chroot";

/// target/static/scptrace, built (or brought up to date) once per test run
/// by `make static`, so the tests check the binary of this source tree.
fn static_bin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut make = Command::new("make");
        make.arg("-C").arg(root).arg("static");
        // A first static build compiles every dependency again.
        run(&mut make, Input::Null, Duration::from_secs(1800)).assert_success();
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
        target.join("static/scptrace")
    })
}

fn can_chroot() -> bool {
    if !nix::unistd::geteuid().is_root() || !Path::new(CHROOT).exists() {
        eprintln!("static_bin: skipped: needs root and {CHROOT}");
        return false;
    }
    true
}

/// `chroot ROOT ARGS` with an empty environment plus `env`.
fn chrooted(root: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = Command::new(CHROOT);
    c.env_clear().envs(env.iter().copied()).arg(root).args(args);
    c
}

fn copy_exe(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::copy(from, to).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn static_binary_is_static_and_runs_with_no_libc_and_no_etc() {
    if !can_chroot() {
        return;
    }
    let exe = static_bin();
    let ldd = Command::new("ldd").arg(exe).output().unwrap();
    let said = String::from_utf8_lossy(&ldd.stdout).into_owned() + &String::from_utf8_lossy(&ldd.stderr);
    assert!(
        said.contains("statically linked") || said.contains("not a dynamic executable"),
        "ldd {}: {said}",
        exe.display()
    );

    // The root holds the binary and a transcript, nothing else.
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    copy_exe(exe, &root.join("scptrace"));
    let transcript = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ref/asyncssh-put/transcript.log");
    fs::copy(&transcript, root.join("t.log")).unwrap();
    let names: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    let v = run(
        &mut chrooted(root, &[], &["/scptrace", "--version"]),
        Input::Null,
        DEADLINE,
    );
    v.assert_success();
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        format!("scptrace {}", env!("CARGO_PKG_VERSION"))
    );

    // check and show give what the dynamic build gives on the same file.
    for args in [
        &["check", "t.log"][..],
        &["show", "t.log"],
        &["show", "--summary", "t.log"],
    ] {
        let mut inside: Vec<&str> = vec!["/scptrace"];
        inside.extend(args);
        let got = run(&mut chrooted(root, &[], &inside), Input::Null, DEADLINE);
        let mut want = Command::new(bin());
        want.env_clear().current_dir(root).args(args);
        let want = run(&mut want, Input::Null, DEADLINE);
        assert_eq!(
            got.status.code(),
            want.status.code(),
            "{args:?}: {}",
            got.stderr_text()
        );
        assert_eq!(got.status.code(), Some(0), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&got.stdout),
            String::from_utf8_lossy(&want.stdout),
            "{args:?}"
        );
        assert!(!got.stdout.is_empty(), "{args:?}");
        assert_eq!(got.stderr_text(), want.stderr_text(), "{args:?}");
    }
}

/// The libraries `ldd PROGRAM` lists (the paths it resolved).
fn libraries(program: &str) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(program).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

#[test]
fn static_standin_traces_a_real_scp_upload_in_a_chroot_with_only_scp() {
    if !can_chroot() {
        return;
    }
    let exe = static_bin();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    copy_exe(exe, &root.join("scptrace"));
    copy_exe(Path::new(REAL_SCP), &root.join("usr/bin/scp"));
    for lib in libraries(REAL_SCP) {
        copy_exe(&lib, &root.join(lib.strip_prefix("/").unwrap()));
    }
    fs::create_dir_all(root.join("standin")).unwrap();
    std::os::unix::fs::symlink("/scptrace", root.join("standin/scp")).unwrap();
    // scp itself exits "unknown user" without a passwd entry, and "Couldn't
    // open /dev/null" without that.
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/home:/bin/sh\n").unwrap();
    fs::create_dir_all(root.join("dev")).unwrap();
    nix::sys::stat::mknod(
        &root.join("dev/null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    fs::create_dir_all(root.join("home")).unwrap();
    fs::create_dir_all(root.join("dst")).unwrap();

    // The client: the real scp, whose "ssh" runs the remote command in the
    // chroot, found on PATH there as sshd's shell would (argv[0] `scp`).
    let src = t.path().join("payload.bin");
    let payload: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&src, &payload).unwrap();
    let ssh = t.path().join("chroot-ssh");
    fs::write(
        &ssh,
        format!(
            "#!/bin/sh\nfor last; do :; done\n\
             exec env -i PATH=/standin:/usr/bin HOME=/home {CHROOT} {} $last\n",
            root.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&ssh, fs::Permissions::from_mode(0o755)).unwrap();
    let mut scp = Command::new(REAL_SCP);
    scp.arg("-O").arg("-S").arg(&ssh).arg(&src).arg("host:/dst/");
    let r = run(&mut scp, Input::Null, DEADLINE);
    r.assert_success();
    assert_eq!(r.stderr_text(), "", "scp's stderr");
    assert_eq!(
        fs::read(root.join("dst/payload.bin")).unwrap(),
        payload,
        "the file arrives identical"
    );

    let logs = root.join("home/.local/state/scptrace");
    let files: Vec<PathBuf> = fs::read_dir(&logs)
        .unwrap_or_else(|e| panic!("{}: {e}", logs.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("# program: /usr/bin/scp\n"), "{text}");
    assert!(
        text.contains(">>> New command invocation: /usr/bin/scp -t /dst/\n"),
        "{text}"
    );
    assert!(
        text.contains("# file \"payload.bin\", 200000 B, mode 0644"),
        "{text}"
    );
    assert!(text.ends_with("#: 0\n"), "{text}");
    // And the verdict on it is a clean session.
    let mut check = Command::new(bin());
    check.env_clear().arg("check").arg(&files[0]);
    let c = run(&mut check, Input::Null, DEADLINE);
    assert_eq!(c.status.code(), Some(0), "{}", String::from_utf8_lossy(&c.stdout));
}
