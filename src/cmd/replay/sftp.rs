//! Replaying an SFTP session: the recorded client's requests sent to a fresh
//! real sftp-server rooted in the target directory, each once the replies it
//! waited for have come, and each reply compared with the recorded one
//! (`compare.rs`).
//!
//! Nothing of the transcript chooses what runs: the program is the
//! sftp-server from the config (`sftp_server`) or its usual place, with the
//! arguments replay gives it (`-d HOME -u 022`). Every path in a request is
//! placed inside the target (`paths.rs`: the target stands for the recorded
//! server's `/`), every handle mapped to the live one, and each request
//! built again from its decoded fields: a packet replay cannot decode (an
//! unknown extension, raw bytes) is never sent. What the recording shows of
//! the server's files before the session (the directory an upload went to,
//! the files a download read, with their recorded bytes) is re-created
//! first (`seed.rs`), within the byte cap.
//!
//! The transcript is read three times as a stream: to plan (the home, the
//! bytes the replay would write, before anything is written), to re-create
//! the server's files, and to converse (`converse.rs`).

mod compare;
mod converse;
mod paths;
mod recorded;
mod seed;
mod wire;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};

use super::engine::Command;
use super::{Plan, Protocol, Refusal, Transcript, human_size};
use crate::config::Settings;
use crate::escape::escape;
use crate::protocol::sftp::{Ext, ExtRequest, Msg, ReqBody};
use crate::transcript::Entry;
use paths::Mapper;
use recorded::{Packet, Recorded};
use seed::{Action, Seed};

/// The SFTP side of a replay.
pub struct Sftp {
    cap: u64,
    rec: Recorded,
    seed: Seed,
    packets: Vec<Packet>,
    /// WRITE data and copy-data lengths the replay would send.
    write_bytes: u64,
    /// The line where the bytes first pass the cap.
    over: Option<u64>,
    last_no: u64,
    mapper: Option<Mapper>,
    /// Re-created before the session: bytes, entries not made.
    seeded: u64,
    not_made: u64,
    notes: Vec<String>,
}

impl Sftp {
    pub fn new(cap: u64) -> Sftp {
        Sftp {
            cap,
            rec: Recorded::new(),
            seed: Seed::new(),
            packets: Vec::new(),
            write_bytes: 0,
            over: None,
            last_no: 0,
            mapper: None,
            seeded: 0,
            not_made: 0,
            notes: Vec::new(),
        }
    }

    fn total(&self) -> u64 {
        self.write_bytes.saturating_add(self.seed.bytes)
    }

    /// The first pass's view of one packet: the home, the bytes.
    fn planned_packet(&mut self, m: &Mapper, p: Packet) {
        match p.msg {
            Msg::Request(r) => {
                let n = match &r.body {
                    ReqBody::Write { len, .. } => u64::from(*len),
                    ReqBody::Extended {
                        ext: ExtRequest::CopyData { read_len, .. },
                        ..
                    } => *read_len,
                    _ => 0,
                };
                self.write_bytes = self.write_bytes.saturating_add(n);
                self.seed.request(m, r.seq, &r.body);
            }
            Msg::Reply(r) => {
                if let Some(to) = &r.to {
                    let mut actions = Vec::new();
                    self.seed.reply(to.seq, &r.body, p.payload.as_ref(), &mut actions);
                }
            }
            _ => {}
        }
        if self.total() > self.cap && self.over.is_none() {
            self.over = Some(p.no);
        }
    }
}

impl Protocol for Sftp {
    fn plan(&mut self, no: u64, entry: &Entry) -> Result<(), Refusal> {
        self.last_no = no;
        if let Entry::Bytes(b) = entry {
            self.rec.line(no, b, &mut self.packets);
            // Where relative paths land does not change the counts: a home
            // of `/` will do for this pass.
            let m = Mapper::new(b"/", None);
            for p in std::mem::take(&mut self.packets) {
                self.planned_packet(&m, p);
            }
        }
        Ok(())
    }

    fn planned(&mut self) -> Result<(), Refusal> {
        let m = Mapper::new(b"/", None);
        self.rec.finish(self.last_no, &mut self.packets);
        for p in std::mem::take(&mut self.packets) {
            self.planned_packet(&m, p);
        }
        if let Some(line) = self.over {
            return Err(Refusal {
                line,
                what: format!(
                    "replaying this SFTP session would write {} B into the target ({} B of WRITE and copy-data, {} B of the server's files re-created), more than the cap of {}; nothing was written; raise the cap with --max-bytes {}",
                    self.total(),
                    self.write_bytes,
                    self.seed.bytes,
                    human_size(self.cap),
                    human_size(self.total())
                ),
            });
        }
        Ok(())
    }

    fn prepare(&mut self, t: &Transcript, dir: &Path) -> Result<()> {
        let home = self.seed.home.take();
        let m = Mapper::new(dir.as_os_str().as_bytes(), home.as_deref());
        let mut fs = Maker::new(&m);
        fs.dir(m.home())?;
        let mut seed = Seed::new();
        let mut rec = Recorded::new();
        let mut packets = Vec::new();
        let mut actions = Vec::new();
        let mut lines = t.lines()?;
        let mut last = 0;
        loop {
            let line = Transcript::next(&mut lines)?;
            match &line {
                Some(l) => {
                    last = l.no;
                    if let Entry::Bytes(b) = &l.parsed.event.entry {
                        rec.line(l.no, b, &mut packets);
                    }
                }
                None => rec.finish(last, &mut packets),
            }
            for p in packets.drain(..) {
                match p.msg {
                    Msg::Request(r) => seed.request(&m, r.seq, &r.body),
                    Msg::Reply(r) => {
                        if let Some(to) = &r.to {
                            seed.reply(to.seq, &r.body, p.payload.as_ref(), &mut actions);
                        }
                    }
                    _ => {}
                }
                if seed.bytes.saturating_add(self.write_bytes) > self.cap {
                    return Err(Refusal {
                        line: p.no,
                        what: format!(
                            "re-creating the server's files passes the cap of {} here: the transcript changed since replay read it first",
                            human_size(self.cap)
                        ),
                    }
                    .into());
                }
                for a in actions.drain(..) {
                    fs.apply(a);
                }
            }
            if line.is_none() {
                break;
            }
        }
        fs.modes();
        self.seeded = seed.bytes;
        self.not_made = fs.failed + seed.others + seed.dropped;
        if let Some(h) = &home {
            self.notes.push(format!(
                "relative paths start at the recorded home \"{}\" (its REALPATH of \".\"), inside the target",
                escape(h)
            ));
        }
        if seed.modes_cut > 0 {
            self.notes.push(format!(
                "{} recorded mode(s) had set-id or sticky bits: re-created without them",
                seed.modes_cut
            ));
        }
        if self.not_made > 0 {
            self.notes.push(format!(
                "{} entries the recording shows on the server (symlinks, devices, or ones that could not be made) were not re-created",
                self.not_made
            ));
        }
        self.mapper = Some(m);
        Ok(())
    }

    fn server_args(&self, _: &Path) -> Result<Vec<OsString>> {
        let Some(m) = &self.mapper else {
            bail!("the target was not prepared");
        };
        // sftp-server expands %d, %u and %% in -d's directory.
        let home = m.real(m.home());
        let mut d = Vec::with_capacity(home.len());
        for &b in &home {
            if b == b'%' {
                d.push(b'%');
            }
            d.push(b);
        }
        Ok(vec![
            "-d".into(),
            OsString::from_vec(d),
            // The usual umask of an ssh session, whatever the replaying
            // user's: the modes of new files then compare.
            "-u".into(),
            "022".into(),
        ])
    }

    fn default_program(&self, settings: &Settings) -> Result<(PathBuf, OsString)> {
        Ok((find_sftp_server(settings)?, "sftp-server".into()))
    }

    fn notes(&self) -> Vec<String> {
        let mut n = self.notes.clone();
        if self.seeded > 0 {
            n.push(format!(
                "{} B of the server's files re-created in the target from the recording (data it did not show is zeros)",
                self.seeded
            ));
        }
        n
    }

    fn is_sftp(&self) -> bool {
        true
    }

    fn workdir(&self, dir: &Path) -> PathBuf {
        self.mapper.as_ref().map_or_else(
            || dir.to_path_buf(),
            |m| PathBuf::from(OsString::from_vec(m.real(m.home()))),
        )
    }

    fn converse(
        &mut self,
        t: &Transcript,
        cmd: &Command,
        timeout: Duration,
        plan: &mut Plan,
        head: &super::report::Head,
    ) -> Result<(String, bool)> {
        let Some(m) = self.mapper.clone() else {
            bail!("the target was not prepared");
        };
        converse::run(t, cmd, timeout, plan, head, &m)
    }
}

/// The sftp-server replay runs: the config's `sftp_server`, else the first
/// of the usual install paths. In an ssh session it must pass the same
/// safe-path check as the real scp.
pub fn find_sftp_server(settings: &Settings) -> Result<PathBuf> {
    let path = match &settings.sftp_server.value {
        Some(p) => p.clone(),
        None => match super::super::forced::sftp_server() {
            Some(p) => p,
            None => bail!(
                "no sftp-server found in the usual places (/usr/lib/openssh/sftp-server…); set sftp_server in the config (or SCPTRACE_SFTP_SERVER), or give -- PROGRAM"
            ),
        },
    };
    if crate::paths::is_self(&path) {
        bail!(
            "the sftp-server configured ({}) is scptrace itself; point sftp_server at the real one, e.g. /usr/lib/openssh/sftp-server",
            super::shown_path(&path)
        );
    }
    let Some(var) = settings.env_policy.ssh_session else {
        return Ok(path);
    };
    let owners: Vec<u32> = crate::paths::own_owner().into_iter().collect();
    match crate::paths::safe_path(&path, &owners) {
        Ok(p) => Ok(p),
        Err(why) => bail!(
            "refusing to run the sftp-server {} in an ssh session ({var} is set): {why}; it must be owned by root or by scptrace's owner, in directories only they can write",
            super::shown_path(&path)
        ),
    }
}

/// Carries out [`Action`]s inside the target. Paths are virtual ones placed
/// by the mapper: normalized, without `..`, so always below the target; the
/// target held nothing and replay makes only directories and regular files
/// there, opened without following a symlink.
struct Maker<'a> {
    m: &'a Mapper,
    modes: HashMap<Vec<u8>, u32>,
    failed: u64,
}

fn os(p: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(p))
}

impl<'a> Maker<'a> {
    fn new(m: &'a Mapper) -> Maker<'a> {
        Maker {
            m,
            modes: HashMap::new(),
            failed: 0,
        }
    }

    /// A directory and its parents.
    fn dir(&mut self, virt: &[u8]) -> Result<()> {
        let real = self.m.real(virt);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(os(&real))
            .map_err(|e| anyhow::anyhow!("cannot make {} in the target: {e}", escape(virt)))
    }

    fn open(&self, virt: &[u8]) -> std::io::Result<std::fs::File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(os(&self.m.real(virt)))
    }

    fn apply(&mut self, a: Action) {
        let r = match &a {
            Action::Dir { path } => match std::fs::DirBuilder::new()
                .mode(0o700)
                .create(os(&self.m.real(path)))
            {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
                r => r,
            },
            Action::File { path, size } => self.open(path).and_then(|f| match size {
                Some(n) => f.set_len(*n),
                None => Ok(()),
            }),
            Action::Data {
                path,
                off,
                known,
                len,
            } => self.open(path).and_then(|f| {
                f.write_all_at(known, *off)?;
                let end = off.saturating_add(*len);
                if f.metadata()?.len() < end {
                    f.set_len(end)?;
                }
                Ok(())
            }),
            Action::Mode { path, perm } => {
                if self.modes.len() < seed::MAX_ENTRIES {
                    self.modes.insert(path.clone(), *perm);
                }
                Ok(())
            }
        };
        if r.is_err() {
            self.failed += 1;
        }
    }

    /// The recorded modes, deepest first (a directory's own mode may forbid
    /// reaching into it).
    fn modes(&mut self) {
        let mut v: Vec<(Vec<u8>, u32)> = self.modes.drain().collect();
        v.sort_by_key(|m| std::cmp::Reverse(m.0.len()));
        for (p, perm) in v {
            let real = self.m.real(&p);
            let r = std::fs::symlink_metadata(os(&real)).and_then(|md| {
                if md.file_type().is_symlink() {
                    return Ok(());
                }
                std::fs::set_permissions(os(&real), std::fs::Permissions::from_mode(perm & 0o777))
            });
            if r.is_err() {
                self.failed += 1;
            }
        }
    }
}

/// An EXTENDED request replay never sends.
fn is_unknown_extension(body: &ReqBody) -> bool {
    matches!(body.op(), crate::protocol::sftp::Op::Extended(Ext::Other))
}
