//! The legacy SCP (rcp) protocol: what a traced scp's arguments mean, the
//! syntax of its records, and the sans-IO decoder that turns the bytes of
//! each direction into messages.

pub mod decode;
pub mod msg;
pub mod record;

pub use crate::protocol::Dir;
pub use decode::{Decoder, Event, Frame};
pub use msg::{Msg, Name, Note, Violation};

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// What the traced scp does in the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `scp -t`: scp receives; the peer sends records and data, scp sends acks.
    Sink,
    /// `scp -f`: scp sends records and data, the peer acks.
    Source,
}

/// What the decoder needs to know about the traced scp's command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub role: Role,
    /// `-r`: `D`/`E` records are allowed.
    pub recursive: bool,
    /// `-d`: the target must be a directory.
    pub target_dir: bool,
    /// `-p`: `T` records are expected.
    pub preserve: bool,
}

impl Options {
    /// Reads a legacy scp server's arguments (without `argv[0]`) the way scp's
    /// getopt would; `None` unless exactly one of `-t`/`-f` is present.
    pub fn from_scp_args<S: AsRef<OsStr>>(args: &[S]) -> Option<Options> {
        // Options of OpenSSH scp that take a value; their values must be skipped.
        const WITH_VALUE: &[u8] = b"cDFiJlPSoX";
        let (mut to, mut from) = (false, false);
        let mut o = Options {
            role: Role::Sink,
            recursive: false,
            target_dir: false,
            preserve: false,
        };
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_ref().as_bytes();
            i += 1;
            if a == b"--" || a.len() < 2 || a[0] != b'-' {
                break; // getopt stops at the first operand
            }
            let mut j = 1;
            while j < a.len() {
                let c = a[j];
                j += 1;
                match c {
                    b't' => to = true,
                    b'f' => from = true,
                    b'r' => o.recursive = true,
                    b'd' => o.target_dir = true,
                    b'p' => o.preserve = true,
                    c if WITH_VALUE.contains(&c) => {
                        if j == a.len() {
                            i += 1; // the value is the next argument
                        }
                        j = a.len();
                    }
                    _ => {}
                }
            }
        }
        match (to, from) {
            (true, false) => Some(Options {
                role: Role::Sink,
                ..o
            }),
            (false, true) => Some(Options {
                role: Role::Source,
                ..o
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_args() {
        let o = Options::from_scp_args(&["-d", "-t", "/tmp"]).unwrap();
        assert_eq!((o.role, o.target_dir, o.recursive), (Role::Sink, true, false));
        let o = Options::from_scp_args(&["-v", "-r", "-p", "-f", "src"]).unwrap();
        assert_eq!((o.role, o.recursive, o.preserve), (Role::Source, true, true));
        assert_eq!(Options::from_scp_args(&["-prt", "x"]).unwrap().role, Role::Sink);
        assert!(Options::from_scp_args(&["a", "host:b"]).is_none());
        assert!(Options::from_scp_args(&["-o", "-t", "x", "y"]).is_none());
        assert!(Options::from_scp_args(&["-t", "-f", "x"]).is_none());
        assert!(Options::from_scp_args(&["--", "-t"]).is_none());
    }
}
