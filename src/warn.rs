//! One-line warnings on our stderr, safe while stderr is non-blocking.

use std::io;

/// Writes `scptrace: warning: MSG` to fd 2, MSG escaped for the terminal
/// (it names paths and values from outside), waiting out EAGAIN (the relay
/// makes stderr non-blocking) for at most a second so a stuck reader can
/// never stall a transfer.
pub fn warn(msg: &str) {
    let msg = crate::errtext::strip_os_error(msg);
    let line = format!("scptrace: warning: {}\n", crate::escape::escape_text(&msg));
    write_stderr(line.as_bytes());
}

pub fn write_stderr(mut buf: &[u8]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while !buf.is_empty() {
        let n = unsafe { nix::libc::write(2, buf.as_ptr().cast(), buf.len()) };
        if n > 0 {
            buf = &buf[n as usize..];
            continue;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock if std::time::Instant::now() < deadline => {
                let mut fds = [nix::libc::pollfd {
                    fd: 2,
                    events: nix::libc::POLLOUT,
                    revents: 0,
                }];
                unsafe { nix::libc::poll(fds.as_mut_ptr(), 1, 100) };
            }
            _ => return, // stderr gone or stuck: nothing more we can do
        }
    }
}
