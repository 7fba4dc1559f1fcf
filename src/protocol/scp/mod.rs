//! The legacy SCP (rcp) protocol: what a traced scp's arguments mean (read by
//! the one getopt scanner, [`getopt`], that the stand-in, `check`, `record`
//! and `replay` share), the syntax of its records, and the sans-IO decoder
//! that turns the bytes of each direction into messages.

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

/// OpenSSH scp's options that take a value: its getopt string is
/// `12346ABCTdfOpqRrstvD:F:J:M:P:S:c:i:l:o:X:`, client and server alike.
pub const WITH_VALUE: &[u8] = b"DFJMPSXcilo";

/// One option letter of an scp command line, as scp's getopt reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt<'a> {
    /// Which argument the letter is in.
    pub word: usize,
    pub letter: u8,
    /// For a letter in [`WITH_VALUE`]: the rest of its word, or the next
    /// argument when the word ends there (`None` if there is none).
    pub value: Option<&'a [u8]>,
    /// The value is the next argument, not the rest of the word.
    pub value_next: bool,
}

/// Reads scp's arguments (without `argv[0]`) the way its getopt does, with no
/// permutation: options end at the first operand, at `--`, or at `-`. Returns
/// the options in order and the index of the first argument that is not one
/// (the `--` itself, if that is what ended them).
pub fn getopt<S: AsRef<OsStr>>(args: &[S]) -> (Vec<Opt<'_>>, usize) {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_ref().as_bytes();
        if a == b"--" || a.len() < 2 || a[0] != b'-' {
            break;
        }
        let word = i;
        i += 1;
        for (j, &letter) in a.iter().enumerate().skip(1) {
            if !WITH_VALUE.contains(&letter) {
                opts.push(Opt {
                    word,
                    letter,
                    value: None,
                    value_next: false,
                });
                continue;
            }
            let inline = &a[j + 1..];
            let (value, value_next) = if inline.is_empty() {
                let next = args.get(i).map(|v| v.as_ref().as_bytes());
                i += 1; // the value is the next argument
                (next, true)
            } else {
                (Some(inline), false)
            };
            opts.push(Opt {
                word,
                letter,
                value,
                value_next,
            });
            break; // the value ends the word
        }
    }
    (opts, i.min(args.len()))
}

impl Options {
    /// Reads a legacy scp server's arguments (without `argv[0]`) the way scp's
    /// getopt would; `None` unless exactly one of `-t`/`-f` is present.
    pub fn from_scp_args<S: AsRef<OsStr>>(args: &[S]) -> Option<Options> {
        let (mut to, mut from) = (false, false);
        let mut o = Options {
            role: Role::Sink,
            recursive: false,
            target_dir: false,
            preserve: false,
        };
        for opt in getopt(args).0 {
            match opt.letter {
                b't' => to = true,
                b'f' => from = true,
                b'r' => o.recursive = true,
                b'd' => o.target_dir = true,
                b'p' => o.preserve = true,
                _ => {}
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

    #[test]
    fn getopt_reads_values_inline_and_next() {
        let (opts, operands) = getopt(&["-rP22", "-S", "my ssh", "-M", "--", "-t"]);
        let seen: Vec<(usize, u8, Option<&[u8]>, bool)> = opts
            .iter()
            .map(|o| (o.word, o.letter, o.value, o.value_next))
            .collect();
        assert_eq!(
            seen,
            [
                (0, b'r', None, false),
                (0, b'P', Some(&b"22"[..]), false),
                (1, b'S', Some(&b"my ssh"[..]), true),
                (3, b'M', Some(&b"--"[..]), true),
                (5, b't', None, false),
            ]
        );
        assert_eq!(operands, 6, "-M took `--` as its value, so -t is an option");
        let (opts, operands) = getopt(&["-v", "-", "-t"]);
        assert_eq!((opts.len(), operands), (1, 1), "`-` is an operand");
    }
}
