//! File descriptor flags and types, for the relay and `replay`: the file
//! status flags (`F_GETFL`/`F_SETFL`), non-blocking mode, and what kind of
//! file an fd is (pipe, socket, …).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::libc;

/// One of our standard fds (0, 1 or 2). They stay open for the whole
/// process: the relay retires them by putting /dev/null in their place
/// (`dup2`), never by closing them.
pub fn std_fd(fd: RawFd) -> BorrowedFd<'static> {
    assert!((0..=2).contains(&fd), "fd {fd} is not a standard fd");
    // SAFETY: fds 0-2 are open for the life of the process (see above).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// The file status flags (`F_GETFL`), or `None` if the fd is not open.
pub fn get_flags(fd: impl AsFd) -> Option<i32> {
    fcntl(fd.as_fd(), FcntlArg::F_GETFL).ok()
}

/// Sets the file status flags (`F_SETFL`); failure is ignored: the flags are
/// put back on a best-effort basis.
pub fn set_flags(fd: impl AsFd, flags: i32) {
    let _ = fcntl(fd.as_fd(), FcntlArg::F_SETFL(OFlag::from_bits_retain(flags)));
}

/// Adds `O_NONBLOCK` to the fd's file status flags.
pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    let fd = fd.as_fd();
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(io::Error::from)?;
    Ok(())
}

/// The `S_IFMT` bits of what the fd is (0 if fstat fails).
pub fn fd_type(fd: impl AsFd) -> libc::mode_t {
    nix::sys::stat::fstat(fd.as_fd()).map_or(0, |st| st.st_mode & libc::S_IFMT)
}

/// Whether two fds are one open file description (what `dup` makes, and
/// what a parent hands a child as fds 0 and 1 of one socket), so that
/// `F_SETFL` on one changes the other. Asked with `kcmp(KCMP_FILE)`; where
/// that call is missing or refused, two fds of the same file (`st_dev`,
/// `st_ino`) with the same `F_GETFL` flags count as one: erring that way
/// only keeps a flag set a little longer, never changes one in use.
pub fn same_description(a: impl AsFd, b: impl AsFd) -> bool {
    let (a, b) = (a.as_fd(), b.as_fd());
    const KCMP_FILE: libc::c_int = 0;
    let pid = std::process::id() as libc::pid_t;
    // SAFETY: kcmp reads nothing from our memory; the fds are borrowed, open.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_FILE, a.as_raw_fd(), b.as_raw_fd()) };
    if r >= 0 {
        return r == 0;
    }
    same_file(a, b) && get_flags(a).is_some_and(|f| get_flags(b) == Some(f))
}

/// Whether two fds are the same file (`st_dev` and `st_ino`): for sockets,
/// the same socket, which a `shutdown` through either one ends.
pub fn same_file(a: impl AsFd, b: impl AsFd) -> bool {
    let id = |fd: BorrowedFd| nix::sys::stat::fstat(fd).ok().map(|st| (st.st_dev, st.st_ino));
    matches!((id(a.as_fd()), id(b.as_fd())), (Some(x), Some(y)) if x == y)
}
