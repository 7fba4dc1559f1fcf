//! End-to-end tests through a real OpenSSH sshd on a loopback port (issue 4),
//! one per scp client implementation: first that each client round-trips a
//! file through the plain scp, proving the harness in `sshd.rs`.

use std::fs;
use std::path::Path;

use crate::or_skip;
use crate::sshd::{Client, Op, Sshd, SshdOpts};
use crate::util::{self, Finished};

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
    assert!(
        out.contains(&format!("{bin}:/usr/local/bin:/usr/bin:/bin")),
        "{out}"
    );
    assert!(out.contains(&sshd.log_dir().display().to_string()), "{out}");
    assert_eq!(sshd.remote_scp(), "/usr/bin/scp");
    sshd.install_standin();
    assert_eq!(Path::new(&sshd.remote_scp()), sshd.bin_dir().join("scp"));
}
