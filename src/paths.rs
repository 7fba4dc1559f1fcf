//! Files as a program finder sees them: looking a name up on PATH, whether a
//! file is an executable, whether two paths are one file (and whether one is
//! this very program), and this user's name. One home for what `run`,
//! `record`, `replay`, the stand-in, `install` and `doctor` all need.

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

/// (device, inode) of this running executable.
pub fn own_identity() -> Option<(u64, u64)> {
    identity(Path::new("/proc/self/exe")).or_else(|| std::env::current_exe().ok().and_then(|p| identity(&p)))
}

/// Whether `path` is this very executable (e.g. a stand-in installed as `scp`).
pub fn is_self(path: &Path) -> bool {
    let me = own_identity();
    me.is_some() && identity(path) == me
}

/// The name of the effective user, else its uid as a number.
pub fn user_name() -> String {
    let uid = nix::unistd::geteuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}
