//! Where transcripts go (design §5): one new file per invocation, 0600, in a
//! 0700 directory, created without following symlinks and never overwriting.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{Mode, fstat};

use crate::utc::Utc;

/// A log directory, opened and checked.
pub struct LogDir {
    path: PathBuf,
    fd: OwnedFd,
}

fn nix_io(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl LogDir {
    /// Creates the directory (0700) if needed and opens it without following a
    /// symlink at its last component. Refuses a directory owned by someone
    /// else or writable by group or others: a transcript there could be read
    /// or swapped by them.
    pub fn open(path: &Path) -> io::Result<LogDir> {
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
        {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {}", path.display(), crate::errtext::io(&e)),
                ));
            }
        }
        let fd = open(
            path,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            let why = if e == nix::Error::ELOOP || e == nix::Error::ENOTDIR {
                "is a symlink or not a directory; refusing to follow it".to_string()
            } else {
                nix_io(e).to_string()
            };
            io::Error::other(format!("log directory {}: {why}", path.display()))
        })?;
        let st = fstat(fd.as_fd()).map_err(nix_io)?;
        let me = nix::unistd::geteuid().as_raw();
        if st.st_uid != me {
            return Err(io::Error::other(format!(
                "log directory {} is owned by uid {}, not by this user (uid {me}); refusing to write there",
                path.display(),
                st.st_uid
            )));
        }
        if st.st_mode & 0o022 != 0 {
            return Err(io::Error::other(format!(
                "log directory {} is writable by group or others (mode {:04o}); run: chmod 700 {}",
                path.display(),
                st.st_mode & 0o7777,
                path.display()
            )));
        }
        check_ancestors(&fd, path, me)?;
        Ok(LogDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a new transcript file named after `start` (sortable by start
    /// time), the pid and `tag`; a clash gets a counter, never an overwrite.
    pub fn create(&self, start: &Utc, tag: &str) -> io::Result<(PathBuf, File)> {
        let pid = std::process::id();
        let stem = format!("{}-{pid}-{tag}", start.compact());
        for n in 0..1000u32 {
            let name = if n == 0 {
                format!("{stem}.log")
            } else {
                format!("{stem}-{n}.log")
            };
            let flags =
                OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            match openat(
                self.fd.as_fd(),
                name.as_str(),
                flags,
                Mode::from_bits_truncate(0o600),
            ) {
                Ok(fd) => return Ok((self.path.join(name), File::from(fd))),
                Err(nix::Error::EEXIST) => continue,
                Err(e) => {
                    return Err(io::Error::other(format!(
                        "cannot create a transcript in {}: {}",
                        self.path.display(),
                        nix_io(e)
                    )));
                }
            }
        }
        Err(io::Error::other(format!(
            "{}: too many transcripts with the same name",
            self.path.display()
        )))
    }
}

/// Every directory above the log directory (as it really is, symlinks
/// resolved) must be owned by root or by us, and not writable by group or
/// others unless sticky (like /tmp): otherwise someone else could swap a
/// parent for a symlink of their choosing between our checks and our writes.
/// The same rule as OpenSSH's `safe_path` for authorized_keys.
fn check_ancestors(fd: &OwnedFd, shown: &Path, me: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
        return Ok(()); // no /proc: the last component's checks still hold
    };
    for dir in real.ancestors().skip(1) {
        let Ok(m) = std::fs::metadata(dir) else { continue };
        let owner_ok = m.uid() == 0 || m.uid() == me;
        let open = m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0;
        if !owner_ok || open {
            return Err(io::Error::other(format!(
                "log directory {}: its parent {} is {}; someone else could redirect transcripts (use a directory under your home)",
                shown.display(),
                dir.display(),
                if owner_ok {
                    format!("writable by group or others (mode {:04o})", m.mode() & 0o7777)
                } else {
                    format!("owned by uid {}", m.uid())
                }
            )));
        }
    }
    Ok(())
}

/// Creates a transcript at an explicit path (`-o FILE`), never through a
/// symlink. A new file is 0600. An existing regular file is replaced by a
/// new 0600 file renamed over it (the user named it), so its old mode (say
/// 0644, readable by all) never applies to a transcript: truncating it in
/// place kept that mode (issue 10). Anything else that exists (a FIFO, a
/// device such as /dev/full) is written as it is.
pub fn create_named(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let fail = |e: io::Error| {
        let why = crate::errtext::io(&e);
        io::Error::new(e.kind(), format!("cannot write {}: {why}", path.display()))
    };
    let new_file = |p: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(p)
    };
    let existing = match std::fs::symlink_metadata(path) {
        Ok(m) => m.file_type(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return new_file(path).map_err(fail),
        Err(e) => return Err(fail(e)),
    };
    if existing.is_symlink() {
        return Err(fail(io::Error::other("is a symlink; refusing to follow it")));
    }
    if !existing.is_file() {
        // A FIFO or a device: nothing to replace, no mode of ours to give.
        let kind_ok = existing.is_fifo() || existing.is_char_device();
        if !kind_ok {
            return Err(fail(io::Error::other(
                "not a regular file, FIFO or character device",
            )));
        }
        return std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(path)
            .map_err(fail);
    }
    // A temporary name in the same directory, then rename(2) over the file.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.scptrace-tmp", std::process::id()));
    let file = new_file(&tmp).map_err(fail)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(file)
}

/// Whether `-o FILE` can be written, found before anything runs, leaving
/// the file system as it was. It asks what [`create_named`] will need: a new
/// or replaced regular file needs a file created in its directory (tried
/// with a name of our own, removed again); a FIFO or a device is taken as it
/// is; a symlink (ELOOP) or anything else fails.
pub fn probe_named(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let try_create = |p: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(p)?;
        std::fs::remove_file(p)
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => try_create(path),
        Err(e) => Err(e),
        Ok(m) if m.file_type().is_symlink() => Err(io::Error::from_raw_os_error(nix::libc::ELOOP)),
        Ok(m) if m.is_dir() => Err(io::Error::from_raw_os_error(nix::libc::EISDIR)),
        Ok(m) if m.file_type().is_fifo() || m.file_type().is_char_device() => Ok(()),
        Ok(m) if m.is_file() => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            try_create(&path.with_file_name(format!(".{name}.{}.scptrace-probe", std::process::id())))
        }
        Ok(_) => Err(io::Error::other("not a regular file, FIFO or character device")),
    }
}

/// The transcript file's write buffer. It holds whole lines (a transcript
/// writer hands over one line per `write_all`, and this takes all of it) and
/// writes them out when full or flushed. When a write fails (disk full,
/// RLIMIT_FSIZE, quota), the file is cut back to its last whole line and
/// what was buffered is dropped, so the file stays a valid transcript and
/// the tracer's last `!!` line lands on a line of its own if there is room.
/// A `BufWriter` left a half-written line at the end instead, and kept the
/// failed bytes, so that `!!` line was never written (found by
/// tests/it/harden.rs `fault_log_disk_full_mid_transfer`).
pub struct WholeLines {
    file: File,
    buf: Vec<u8>,
    cap: usize,
    /// Bytes of the file that hold complete lines (all written so far,
    /// since only whole lines are buffered, unless a write failed).
    good: u64,
}

impl WholeLines {
    pub fn new(file: File, cap: usize) -> WholeLines {
        WholeLines {
            file,
            buf: Vec::with_capacity(cap),
            cap,
            good: 0,
        }
    }

    fn write_out(&mut self) -> io::Result<()> {
        use std::io::Write;
        let mut done = 0;
        while done < self.buf.len() {
            match self.file.write(&self.buf[done..]) {
                Ok(0) => return self.cut(done, io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.cut(done, e),
            }
        }
        self.good += done as u64;
        self.buf.clear();
        Ok(())
    }

    /// A write failed after `done` bytes of the buffer: cut the file back to
    /// the last whole line and drop the rest. A file that cannot be cut (a
    /// device, a pipe) is left as it is.
    fn cut(&mut self, done: usize, e: io::Error) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let whole = self.buf[..done]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        self.good += whole as u64;
        if self.file.set_len(self.good).is_ok() {
            let _ = self.file.seek(SeekFrom::Start(self.good));
        }
        self.buf.clear();
        Err(e)
    }
}

impl std::io::Write for WholeLines {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.buf.is_empty() && self.buf.len() + data.len() > self.cap {
            self.write_out()?;
        }
        // One line may be longer than `cap` (a 64 KiB data line, escaped):
        // it is taken whole all the same; memory stays bounded by the line.
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out()
    }
}

impl Drop for WholeLines {
    fn drop(&mut self) {
        let _ = self.write_out();
    }
}

/// Retention, applied when a stand-in starts: keep the `keep - 1` newest
/// transcripts (making room for the new one) and none older than `keep_days`.
/// Only our own names (`YYYYMMDDTHHMMSS….log`) are considered; failures are
/// ignored, since retention must never stand in the way of a transfer.
///
/// The directory goes through the same checks as for writing ([`LogDir::open`]):
/// retention used to list and delete by path before those checks, so it
/// followed a symlink planted at the log directory and deleted in a directory
/// that was then refused (found by tests/it/harden.rs
/// `logdir_symlink_at_the_directory`, `logdir_group_or_world_writable`).
pub fn prune(dir: &Path, keep: u64, keep_days: u64) {
    if let Ok(d) = LogDir::open(dir) {
        d.prune(keep, keep_days);
    }
}

impl LogDir {
    /// [`prune`] on this checked directory: listed and unlinked through its
    /// fd, so a path swapped meanwhile changes nothing.
    pub fn prune(&self, keep: u64, keep_days: u64) {
        use std::os::fd::AsRawFd;
        // The fd's own directory (a magic link, not a path lookup).
        let listing = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        let Ok(rd) = std::fs::read_dir(listing) else {
            return;
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_transcript_name(n))
            .collect();
        names.sort();
        let mut doomed: Vec<&String> = Vec::new();
        if keep > 0 {
            let keep_old = usize::try_from(keep - 1).unwrap_or(usize::MAX);
            let excess = names.len().saturating_sub(keep_old);
            doomed.extend(names.iter().take(excess));
        }
        if keep_days > 0 {
            let cutoff = std::time::SystemTime::now()
                .checked_sub(std::time::Duration::from_secs(keep_days.saturating_mul(86_400)))
                .map(Utc::from_system);
            if let Some(cutoff) = cutoff {
                let cutoff = cutoff.compact();
                doomed.extend(names.iter().filter(|n| n.as_str() < cutoff.as_str()));
            }
        }
        for name in doomed {
            let _ = nix::unistd::unlinkat(
                self.fd.as_fd(),
                name.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

/// The transcripts scptrace wrote into `dir`, newest first (their names
/// begin with their start time, so they sort as time does).
pub fn transcripts(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_transcript_name(n))
        .collect();
    names.sort_by(|a, b| b.cmp(a));
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

fn is_transcript_name(n: &str) -> bool {
    let b = n.as_bytes();
    n.ends_with(".log") && b.len() > 16 && b[..8].iter().all(u8::is_ascii_digit) && b[8] == b'T'
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_private_files_and_never_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let d = LogDir::open(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let t = Utc::from_unix(1_700_000_000, 1);
        let (p1, _) = d.create(&t, "scp").unwrap();
        let (p2, _) = d.create(&t, "scp").unwrap();
        assert_ne!(p1, p2);
        assert_eq!(
            std::fs::metadata(&p1).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn prune_keeps_the_newest() {
        let tmp = tempfile::tempdir().unwrap();
        let d = LogDir::open(tmp.path()).unwrap();
        for s in 0..5 {
            d.create(&Utc::from_unix(1_700_000_000 + s, 0), "scp").unwrap();
        }
        std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        prune(tmp.path(), 3, 0);
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(left[0].starts_with("20231114T221323"), "{left:?}");
        assert_eq!(left[2], "notes.txt");
        prune(tmp.path(), 0, 1);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_a_log_dir_under_an_open_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = LogDir::open(&open.join("logs")).err().expect("refused");
        assert!(e.to_string().contains("writable by group or others"), "{e}");
        // Sticky, like /tmp: fine.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        LogDir::open(&open.join("logs2")).unwrap();
    }

    #[test]
    fn refuses_symlinked_dir_and_open_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(LogDir::open(&link).is_err());
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(LogDir::open(&real).is_err());
    }
}
