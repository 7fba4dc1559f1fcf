//! Spawning the traced program, reaping it, and the signals around it.
//!
//! Signals reach the event loop through a self-pipe: the handlers only write
//! the signal number into a non-blocking pipe, which the loop polls.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The signals scptrace forwards to the child.
pub const FORWARDED: [Signal; 4] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT];

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signo: nix::libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = signo as u8;
        // Async-signal-safe; a full pipe only means a wake-up is already pending.
        unsafe {
            nix::libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

/// The read end of the self-pipe; each byte is a signal number.
pub struct SignalPipe {
    pub read: OwnedFd,
    _write: OwnedFd,
}

/// Installs the handlers for SIGCHLD and the forwarded signals, and ignores
/// SIGPIPE (a closed peer is an EPIPE to handle, never a reason to die).
pub fn install_signal_pipe() -> io::Result<SignalPipe> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    SIGNAL_PIPE.store(w.as_raw_fd(), Ordering::Relaxed);
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in FORWARDED.iter().chain(&[Signal::SIGCHLD]) {
        // Safe: the handler only performs an async-signal-safe write.
        unsafe { signal::sigaction(*sig, &act) }.map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    }
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    unsafe { signal::sigaction(Signal::SIGPIPE, &ign) }
        .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    Ok(SignalPipe { read: r, _write: w })
}

/// Ignores SIGXFSZ from now on. Without this, a transcript that reaches
/// RLIMIT_FSIZE kills scptrace (the default action) and with it the transfer
/// (found by tests/it/harden.rs `fault_log_file_size_limit`); ignored, the
/// write fails with EFBIG, a tracing problem reported once like a full disk.
/// Call it after the child is spawned: an ignored signal survives exec, and
/// the child must start with the disposition we were given.
pub fn ignore_sigxfsz() {
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // Safe: SIG_IGN installs no code. Failure leaves the default, as before.
    let _ = unsafe { signal::sigaction(Signal::SIGXFSZ, &ign) };
}

/// Reads pending signal numbers from the self-pipe.
pub fn drain_signals(pipe: &SignalPipe, out: &mut Vec<Signal>) {
    let mut buf = [0u8; 64];
    loop {
        match nix::unistd::read(&pipe.read, &mut buf) {
            Ok(0) => return,
            Ok(n) => out.extend(
                buf[..n]
                    .iter()
                    .filter_map(|&b| Signal::try_from(i32::from(b)).ok()),
            ),
            Err(nix::Error::EINTR) => continue,
            Err(_) => return, // EAGAIN: drained
        }
    }
}

/// The child with its three pipes.
pub struct Spawned {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

/// Starts `program` with piped stdio. `argv0` is what the child sees as its
/// name: scp prefixes its messages with it, so it must be what we were given.
pub fn spawn(program: &Path, argv0: &OsStr, args: &[OsString]) -> io::Result<Spawned> {
    let mut cmd = Command::new(program);
    cmd.arg0(argv0)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    // Stdio::piped() guarantees all three are present.
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(io::Error::other("child pipes missing"));
    };
    Ok(Spawned {
        child,
        stdin,
        stdout,
        stderr,
    })
}

/// The transcript's `#: N`: the exit code, or minus the signal number.
pub fn status_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => -s,
        _ => -1,
    }
}

/// Ends this process the way the child ended, so our parent sees the same
/// wait status: the same exit code, or death by the same signal.
pub fn exit_like(status: ExitStatus) -> ! {
    if let Some(sig) = status.signal().and_then(|s| Signal::try_from(s).ok()) {
        // Default disposition, unblocked, then raise: the kernel kills us by it.
        let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        unsafe {
            let _ = signal::sigaction(sig, &dfl);
        }
        // Dump core only if the child did, so the parent sees the same status
        // bits; otherwise no core file of our own.
        if !status.core_dumped() {
            let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
        }
        let mut set = SigSet::empty();
        set.add(sig);
        let _ = set.thread_unblock();
        let _ = signal::raise(sig);
        // A signal whose default is not fatal (SIGCHLD, SIGCONT…): the shell convention.
        std::process::exit(128 + sig as i32);
    }
    std::process::exit(status.code().unwrap_or(1))
}
