//! Files as a program finder sees them: looking a name up on PATH, whether a
//! file is an executable, whether two paths are one file (and whether one is
//! this very program), whether a program is safe to run ([`safe_path`]), and
//! this user's name. One home for what `run`, `record`, `replay`, the
//! stand-in, `install` and `doctor` all need.

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Whether `path` is a regular file (following symlinks) with an execute bit.
pub fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

/// Every executable `name` in the directories of `path_var` (a PATH value),
/// in PATH order; none when `path_var` is `None`.
pub fn all_on_path<'a>(name: &'a OsStr, path_var: Option<&'a OsStr>) -> impl Iterator<Item = PathBuf> + 'a {
    path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(move |d| d.join(name))
        .filter(|p| is_executable_file(p))
}

/// The first executable `name` on this process's PATH, as `execvp` finds it.
pub fn find_on_path(name: &OsStr) -> Option<PathBuf> {
    let path_var = std::env::var_os("PATH");
    all_on_path(name, path_var.as_deref()).next()
}

/// (device, inode) of a file, following symlinks.
pub fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether `a` and `b` are the same existing file (after symlinks).
pub fn same_file(a: &Path, b: &Path) -> bool {
    identity(a).is_some() && identity(a) == identity(b)
}

/// The metadata of this running executable: /proc/self/exe, else the file
/// argv[0] names (as execvp found it) where there is no /proc, as in a
/// chroot (sshd's ChrootDirectory, the static binary copied into one): the
/// stand-in must still tell itself from the real scp there. argv[0] only
/// decides what is not run (this program), never what is.
fn own_metadata() -> Option<std::fs::Metadata> {
    if let Ok(m) = std::fs::metadata("/proc/self/exe") {
        return Some(m);
    }
    let argv0 = std::env::args_os().next()?;
    let path = if std::os::unix::ffi::OsStrExt::as_bytes(argv0.as_os_str()).contains(&b'/') {
        PathBuf::from(argv0)
    } else {
        find_on_path(&argv0)?
    };
    std::fs::metadata(path).ok()
}

/// (device, inode) of this running executable.
pub fn own_identity() -> Option<(u64, u64)> {
    own_metadata().map(|m| (m.dev(), m.ino()))
}

/// Whether `path` is this very executable (e.g. a stand-in installed as `scp`).
pub fn is_self(path: &Path) -> bool {
    let me = own_identity();
    me.is_some() && identity(path) == me
}

/// The name of the effective user (`passwd::user_name`: no NSS).
pub fn user_name() -> String {
    crate::passwd::user_name(nix::unistd::geteuid().as_raw())
}

/// The owner (uid) of this running executable.
pub fn own_owner() -> Option<u32> {
    own_metadata().map(|m| m.uid())
}

/// OpenSSH's `safe_path()` (misc.c), for a program about to be run: `path`,
/// every symlink resolved, must be a regular file owned by root or by one of
/// `owners` and not writable by group or others, and so must each directory
/// above it, up to `/`. Then no one but root and those owners can have put
/// it there or can change it before it runs. Returns the resolved path,
/// which is what the caller must run (what was checked); else, in one
/// line, why not.
pub fn safe_path(path: &Path, owners: &[u32]) -> Result<PathBuf, String> {
    let real =
        std::fs::canonicalize(path).map_err(|e| format!("{}: {}", path.display(), crate::errtext::io(&e)))?;
    let trusted = |uid: u32| uid == 0 || owners.contains(&uid);
    let bad = |what: &str, p: &Path, m: &std::fs::Metadata| -> Option<String> {
        if !trusted(m.uid()) {
            return Some(format!(
                "{what} {} is owned by uid {}, not by root{}",
                p.display(),
                m.uid(),
                match owners.iter().find(|&&o| o != 0) {
                    Some(o) => format!(" or uid {o}"),
                    None => String::new(),
                }
            ));
        }
        (m.mode() & 0o022 != 0).then(|| {
            format!(
                "{what} {} is writable by group or others (mode {:04o})",
                p.display(),
                m.mode() & 0o7777
            )
        })
    };
    let m =
        std::fs::metadata(&real).map_err(|e| format!("{}: {}", real.display(), crate::errtext::io(&e)))?;
    if !m.is_file() {
        return Err(format!("{} is not a regular file", real.display()));
    }
    if let Some(why) = bad("the file", &real, &m) {
        return Err(why);
    }
    for dir in real.ancestors().skip(1) {
        let m =
            std::fs::metadata(dir).map_err(|e| format!("{}: {}", dir.display(), crate::errtext::io(&e)))?;
        if let Some(why) = bad("its directory", dir, &m) {
            return Err(why);
        }
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn mode(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn safe_path_is_opensshs() {
        assert_eq!(
            safe_path(Path::new("/bin/sh"), &[]).map(|p| p.is_absolute()),
            Ok(true)
        );
        assert!(safe_path(Path::new("/nonexistent/scp"), &[]).is_err());
        assert!(
            safe_path(Path::new("/usr/bin"), &[])
                .unwrap_err()
                .contains("not a regular file")
        );
        // Under /tmp (mode 1777): its directory is writable by others.
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("scp");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        mode(&f, 0o755);
        let err = safe_path(&f, &[]).unwrap_err();
        assert!(err.contains("writable by group or others"), "{err}");
        // A safe program through a symlink: the resolved file is what counts.
        let link = t.path().join("link");
        symlink("/bin/sh", &link).unwrap();
        assert_eq!(safe_path(&link, &[]), safe_path(Path::new("/bin/sh"), &[]));
    }

    #[test]
    fn safe_path_owners_and_modes() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        // The walk goes from the file upwards and names the first problem;
        // the temp dir's own parent (1777) would be the last one.
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("bin");
        std::fs::create_dir(&d).unwrap();
        let f = d.join("scp");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        mode(&f, 0o755);
        std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        let err = safe_path(&f, &[]).unwrap_err();
        assert!(err.contains("the file") && err.contains("uid 65534"), "{err}");
        std::os::unix::fs::chown(&f, Some(0), None).unwrap();
        mode(&f, 0o775);
        let err = safe_path(&f, &[]).unwrap_err();
        assert!(err.contains("the file") && err.contains("mode 0775"), "{err}");
        mode(&f, 0o755);
        std::os::unix::fs::chown(&d, Some(65534), None).unwrap();
        let err = safe_path(&f, &[]).unwrap_err();
        assert!(
            err.contains("its directory") && err.contains("uid 65534"),
            "{err}"
        );
        // The stand-in's owner is trusted like root: the walk gets past it.
        let err = safe_path(&f, &[65534]).unwrap_err();
        assert!(!err.contains("uid 65534") && err.contains("mode 1777"), "{err}");
    }
}
