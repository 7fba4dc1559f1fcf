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
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The signals scptrace forwards to the child.
pub const FORWARDED: [Signal; 4] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT];

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

/// Signals ignored when the process started (bit N for signal N), recorded
/// by [`record_start_signals`] before Rust's runtime sets SIGPIPE to ignore.
static START_IGNORED: AtomicU64 = AtomicU64::new(0);
static START_RECORDED: AtomicBool = AtomicBool::new(false);

/// The signals whose disposition scptrace itself changes (or std changes in
/// a child): each child and each exec gets them back as we were started.
const CHANGED: [nix::libc::c_int; 7] = [
    nix::libc::SIGPIPE,
    nix::libc::SIGCHLD,
    nix::libc::SIGXFSZ,
    nix::libc::SIGINT,
    nix::libc::SIGTERM,
    nix::libc::SIGHUP,
    nix::libc::SIGQUIT,
];

/// Records the signal dispositions this process was started with.
/// `main.rs` calls it from `.init_array`, i.e. before Rust's runtime runs:
/// std sets SIGPIPE to SIG_IGN before `main`, so by then the parent's choice
/// is gone. Only async-signal-safe libc calls, no allocation.
pub extern "C" fn record_start_signals() {
    use nix::libc;
    let mut ignored = 0u64;
    for sig in 1..64 {
        // SAFETY: querying only (a null new action); `old` is plain data.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN {
                ignored |= 1 << sig;
            }
        }
    }
    START_IGNORED.store(ignored, Ordering::Relaxed);
    START_RECORDED.store(true, Ordering::Relaxed);
}

/// Puts back, in a child between fork and exec, the dispositions of
/// `CHANGED` we were started with. std's spawn and exec reset SIGPIPE to
/// SIG_DFL (the signal mask they leave alone): a parent's
/// `trap '' PIPE` was lost, so scp died of SIGPIPE (141) where plain scp
/// got EPIPE and exited 1 (issue 10). Async-signal-safe.
fn restore_start_signals() -> io::Result<()> {
    use nix::libc;
    if !START_RECORDED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let ignored = START_IGNORED.load(Ordering::Relaxed);
    // SAFETY: sigaction and sigemptyset are async-signal-safe; the struct is
    // plain data on our stack.
    unsafe {
        for sig in CHANGED {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = if ignored & (1 << sig) != 0 {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            };
            libc::sigemptyset(&mut act.sa_mask);
            if libc::sigaction(sig, &act, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Makes `cmd` start its program with the signal dispositions scptrace was
/// started with (see `restore_start_signals`), for spawn and
/// for exec alike.
pub fn with_start_signals(cmd: &mut Command) -> &mut Command {
    // SAFETY: the hook only makes async-signal-safe calls.
    unsafe { cmd.pre_exec(restore_start_signals) }
}

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
    let pipe = SignalPipe::new()?;
    pipe.install()?;
    Ok(pipe)
}

impl SignalPipe {
    /// The self-pipe alone, no handler yet: what can fail (fds), before the
    /// child is spawned (see `session::run_traced`).
    pub fn new() -> io::Result<SignalPipe> {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
        SIGNAL_PIPE.store(w.as_raw_fd(), Ordering::Relaxed);
        Ok(SignalPipe { read: r, _write: w })
    }

    /// Installs the handlers that write into this pipe (see [`install_signal_pipe`]).
    pub fn install(&self) -> io::Result<()> {
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
        Ok(())
    }
}

/// File descriptors held for the spawn, taken before anything runs: the
/// child's three pipes and std's exec-status pipe (8 fds, all open at once
/// during the spawn; five are free again after it, enough for the relay's
/// epoll fd and the /dev/null that releases our stdio). When they cannot be
/// had (`ulimit -n 8`, a full file table), the program is run untraced
/// instead of failing half-way (issue 10: "Too many open files").
pub struct FdReserve(#[allow(dead_code)] Vec<(OwnedFd, OwnedFd)>);

impl FdReserve {
    pub fn take() -> io::Result<FdReserve> {
        let pipes = (0..4)
            .map(|_| nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
        Ok(FdReserve(pipes))
    }
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

/// Sets SIGCHLD to its default before a child is spawned. Ignored (as a
/// parent may leave it), the kernel reaps a child that exits before our
/// handler is installed, and the wait then failed with ECHILD: exit 1 and
/// "No child processes" instead of the child's status (issue 10). The child
/// still starts with the disposition we were given (`with_start_signals`).
pub fn default_sigchld() {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // Safe: SIG_DFL installs no code. Failure leaves it as it was.
    let _ = unsafe { signal::sigaction(Signal::SIGCHLD, &dfl) };
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
    with_start_signals(&mut cmd)
        .arg0(argv0)
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
        die_by(sig, status.core_dumped());
    }
    std::process::exit(status.code().unwrap_or(1))
}

/// Ends this process by `sig`: default disposition, unblocked, raised. A
/// core file only if `core` (the child dumped one, so the parent sees the
/// same status bits); otherwise none of our own.
pub fn die_by(sig: Signal, core: bool) -> ! {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    unsafe {
        let _ = signal::sigaction(sig, &dfl);
    }
    if !core {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    }
    let mut set = SigSet::empty();
    set.add(sig);
    let _ = set.thread_unblock();
    let _ = signal::raise(sig);
    // A signal whose default is not fatal (SIGCHLD, SIGCONT…): the shell convention.
    std::process::exit(128 + sig as i32)
}
