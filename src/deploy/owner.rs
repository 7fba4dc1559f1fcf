//! Root's edits of files that another user controls, made as that user.
//!
//! `install --authorized-key` and `uninstall`, run as root on a user's
//! `~/.ssh/authorized_keys`, write a backup, a temp file and a rename in a
//! directory the user can change at any moment: a user who swaps `~/.ssh`
//! for a symlink to `/root/.ssh` between two of root's calls would have root
//! write there. So root first finds out who controls the path
//! ([`controller`]: who can replace any directory on the way), and when that
//! is another user, forks a child that becomes that user (setgroups, setgid,
//! setuid) before it touches anything ([`as_controller`]). The child can then
//! do, whatever the user swaps, only what the user could have done alone;
//! it reports back over a pipe.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use nix::unistd::{ForkResult, Gid, Uid};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Who can change what a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Controller {
    /// Only root: every directory on the way is root's and closed to others.
    Root,
    /// The user who owns the first directory on the way that is not root's
    /// (`dir`): that user can replace anything below it.
    User { uid: u32, gid: u32, dir: PathBuf },
}

/// Symlinks followed on the way, at most (Linux's own limit).
const MAX_LINKS: u32 = 40;

/// Finds who controls `path` (absolute, or taken relative to the current
/// directory). It walks the path from `/` one name at a time, without ever
/// following a symlink it has not read itself: each name it looks at lies in
/// a directory it has already found to be root's, so nobody else can change
/// the answer between the look and the edit. A symlink there (root's, as its
/// directory is) is read and followed by hand. The first directory owned by
/// someone else decides: that user controls everything below it. A
/// directory of root's that group or others may write (without the sticky
/// bit, which keeps each name its owner's) is an error: anyone could replace
/// what is below it. A name that does not exist ends the walk: the edit will
/// meet it.
pub fn controller(path: &Path) -> Result<Controller> {
    let path = std::path::absolute(path).with_context(|| format!("{}", path.display()))?;
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, &path);
    let mut at = PathBuf::from("/");
    // `at` is sticky and writable by others (like /tmp): each name in it can
    // be replaced by its owner.
    let mut sticky_open = false;
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            at.pop();
            sticky_open = std::fs::metadata(&at).is_ok_and(|m| is_sticky_open(m.mode()));
            continue;
        }
        let next = at.join(&name);
        let m = match std::fs::symlink_metadata(&next) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Controller::Root),
            Err(e) => return Err(e).with_context(|| format!("cannot look at {}", next.display())),
        };
        // Someone else's directory is theirs to change; in a sticky directory
        // open to all, so is any name they own (a file, a symlink).
        if m.uid() != 0 && (m.is_dir() || sticky_open) {
            return Ok(Controller::User {
                uid: m.uid(),
                gid: m.gid(),
                dir: if m.is_dir() { next } else { at },
            });
        }
        if m.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                bail!("{}: too many symlinks", path.display());
            }
            let target =
                std::fs::read_link(&next).with_context(|| format!("cannot read {}", next.display()))?;
            if target.is_absolute() {
                at = PathBuf::from("/");
                sticky_open = false;
            }
            push_components(&mut todo, &target);
            continue;
        }
        if !m.is_dir() {
            // A file in a directory only root can change: root may edit it.
            return Ok(Controller::Root);
        }
        if m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0 {
            bail!(
                "{} is root's but writable by group or others (mode {:04o}): anyone could replace what is below it, so root does not edit there",
                next.display(),
                m.mode() & 0o7777
            );
        }
        sticky_open = is_sticky_open(m.mode());
        at = next;
    }
    Ok(Controller::Root)
}

fn is_sticky_open(mode: u32) -> bool {
    mode & 0o022 != 0 && mode & 0o1000 != 0
}

/// Pushes the names of `p` onto `todo` so that the first is popped first.
fn push_components(todo: &mut Vec<OsString>, p: &Path) {
    let names: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    todo.extend(names.into_iter().rev());
}

/// Runs `edit` with the rights of whoever controls `path`: in this process
/// when we are not root, or when only root controls it; else in a child that
/// has become that user first. `what` names the edit in errors.
///
/// Must be called while this process has a single thread (the commands that
/// use it start none): the child runs ordinary Rust code after `fork`.
pub fn as_controller<T, F>(path: &Path, what: &str, edit: F) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T>,
{
    if !nix::unistd::geteuid().is_root() {
        return edit();
    }
    match controller(path)? {
        Controller::Root => edit(),
        Controller::User { uid, gid, dir } => as_user(uid, gid, edit)
            .with_context(|| format!("{what} (done as uid {uid}, who controls {})", dir.display())),
    }
}

/// Root keeps its own files (its config, its install record) only where no
/// one else can change them: the install record tells a later `uninstall`
/// what to edit, as root.
pub fn require_root_controlled(path: &Path, what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    match controller(path)? {
        Controller::Root => Ok(()),
        Controller::User { uid, dir, .. } => bail!(
            "{what} {} is in {}, which uid {uid} controls: root keeps its config and install record only where no one else can change them (is HOME another user's, as under `sudo` without -H? use --system, or sudo -H)",
            path.display(),
            dir.display()
        ),
    }
}

/// The child's answer: the edit's value, or its error in words.
type Answer<T> = std::result::Result<T, String>;

fn as_user<T, F>(uid: u32, gid: u32, edit: F) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T>,
{
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    // Output buffered now would be written twice, by both processes.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: the callers are single-threaded (see `as_controller`), so the
    // child is a whole copy of this process and may run ordinary code; it
    // never returns from here (it ends with `_exit`).
    match unsafe { nix::unistd::fork() }.context("cannot fork")? {
        ForkResult::Child => {
            drop(read);
            child(write, uid, gid, edit)
        }
        ForkResult::Parent { child } => {
            drop(write);
            let mut buf = Vec::new();
            let got = std::fs::File::from(read).read_to_end(&mut buf);
            let status = loop {
                match nix::sys::wait::waitpid(child, None) {
                    Err(nix::Error::EINTR) => continue,
                    other => break other,
                }
            };
            got.context("cannot read the answer of the child that made the edit")?;
            match status {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => {}
                other => bail!("the child that made the edit ended badly: {other:?}"),
            }
            let answer: Answer<T> =
                serde_json::from_slice(&buf).context("the child that made the edit gave no answer")?;
            answer.map_err(|e| anyhow!(e))
        }
    }
}

/// The child: become the user, edit, answer, `_exit`. Never returns.
fn child<T, F>(write: OwnedFd, uid: u32, gid: u32, edit: F) -> !
where
    T: Serialize,
    F: FnOnce() -> Result<T>,
{
    let answer: Answer<T> = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop_privileges(uid, gid)?;
        edit()
    })) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err("the edit panicked".into()),
    };
    let bytes = serde_json::to_vec(&answer).unwrap_or_else(|e| {
        serde_json::to_vec(&Answer::<()>::Err(format!("cannot encode the answer: {e}"))).unwrap_or_default()
    });
    let mut f = std::fs::File::from(write);
    let code = i32::from(f.write_all(&bytes).is_err());
    drop(f);
    // SAFETY: `_exit` ends this child at once: no destructor, atexit handler
    // or stdio flush of the parent's state runs a second time.
    unsafe { nix::libc::_exit(code) }
}

/// Becomes `uid`: its groups (from the passwd and group files, else only
/// `gid`), its gid, then its uid; then checks that root cannot come back.
fn drop_privileges(uid: u32, gid: u32) -> Result<()> {
    // From the files, not initgroups(3): no NSS in a static binary.
    let user = crate::passwd::lookup(uid);
    let gid = user.as_ref().map_or(gid, |u| u.gid);
    let groups = match &user {
        Some(u) => crate::passwd::groups(&u.name, gid),
        None => vec![gid],
    };
    let groups: Vec<Gid> = groups.into_iter().map(Gid::from_raw).collect();
    nix::unistd::setgroups(&groups).context("setgroups")?;
    let gid = Gid::from_raw(gid);
    nix::unistd::setgid(gid).context("setgid")?;
    nix::unistd::setuid(Uid::from_raw(uid)).context("setuid")?;
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() || nix::unistd::geteuid().as_raw() != uid {
        bail!("could not drop root's privileges to uid {uid}");
    }
    // Our working directory may be one the user cannot enter; every path
    // the edits use is absolute.
    let _ = std::env::set_current_dir("/");
    Ok(())
}

/// `path` made absolute (lexically, against the working directory), for a
/// child that works from `/`.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("{}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn a_path_of_roots_is_roots() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        std::fs::write(t.path().join("a/b/f"), b"").unwrap();
        if root() {
            assert_eq!(controller(&t.path().join("a/b/f")).unwrap(), Controller::Root);
            // Missing names end the walk.
            assert_eq!(controller(&t.path().join("a/x/y")).unwrap(), Controller::Root);
            assert_eq!(controller(Path::new("/etc/passwd")).unwrap(), Controller::Root);
        }
    }

    #[test]
    fn the_first_directory_of_another_user_decides_symlinks_followed_by_hand() {
        if !root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("home/.ssh")).unwrap();
        std::fs::create_dir_all(d.join("rootdir")).unwrap();
        std::os::unix::fs::chown(d.join("home"), Some(65534), Some(65534)).unwrap();
        let want = Controller::User {
            uid: 65534,
            gid: 65534,
            dir: d.join("home"),
        };
        assert_eq!(controller(&d.join("home/.ssh/authorized_keys")).unwrap(), want);
        // Root's symlink to the user's directory: followed, still the user's.
        symlink(d.join("home"), d.join("link")).unwrap();
        assert_eq!(controller(&d.join("link/.ssh/authorized_keys")).unwrap(), want);
        // `..` out of the user's directory back to root's.
        symlink("../rootdir", d.join("rel")).unwrap();
        assert_eq!(controller(&d.join("rel/x")).unwrap(), Controller::Root);
        assert_eq!(
            controller(&d.join("rootdir/../home/.ssh")).unwrap(),
            want,
            "lexical .. after a real directory"
        );
        // A directory of root's open to everyone, not sticky: refused.
        std::fs::create_dir(d.join("open")).unwrap();
        std::fs::set_permissions(d.join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = controller(&d.join("open/f")).unwrap_err().to_string();
        assert!(err.contains("writable by group or others"), "{err}");
        // Sticky (like /tmp): each name stays its owner's.
        std::fs::set_permissions(d.join("open"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(controller(&d.join("open/f")).unwrap(), Controller::Root);
        std::fs::write(d.join("open/theirs"), b"").unwrap();
        std::os::unix::fs::chown(d.join("open/theirs"), Some(65534), Some(65534)).unwrap();
        assert_eq!(
            controller(&d.join("open/theirs")).unwrap(),
            Controller::User {
                uid: 65534,
                gid: 65534,
                dir: d.join("open")
            },
            "their file in a sticky directory: they can replace it"
        );
        // A symlink loop ends.
        symlink(d.join("loop"), d.join("loop")).unwrap();
        assert!(controller(&d.join("loop/x")).is_err());
    }
}
