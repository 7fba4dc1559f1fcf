//! `scptrace replay`: speak a transcript's I: side to a fresh real scp and report where the replies differ.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

/// Speak a transcript's I: side to a fresh real scp and report where the replies differ
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The transcript to replay
    pub file: PathBuf,
}

pub fn run(_args: ReplayArgs) -> Result<i32> {
    bail!("`scptrace replay` is not implemented yet")
}

/// Splits a POSIX shell command line into words, the inverse of
/// [`shell_join`](crate::transcript::shell_join): blanks separate words;
/// `'…'`, `"…"` (with `\"`, `\\`, `\$`, `` \` `` escapes), bash's `$'…'`
/// (with `\\`, `\'`, `\n`, `\t`, `\r`, `\0`, `\xHH`) and a backslash outside
/// quotes quote. `None` for an unterminated quote.
pub fn shell_split(s: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut words = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            b' ' | b'\t' | b'\n' => {
                if let Some(w) = cur.take() {
                    words.push(w);
                }
                i += 1;
            }
            b'\'' => {
                let w = cur.get_or_insert_with(Vec::new);
                let end = i + 1 + s[i + 1..].iter().position(|&b| b == b'\'')?;
                w.extend_from_slice(&s[i + 1..end]);
                i = end + 1;
            }
            b'"' => {
                let w = cur.get_or_insert_with(Vec::new);
                i += 1;
                loop {
                    match *s.get(i)? {
                        b'"' => break,
                        b'\\' if matches!(s.get(i + 1), Some(b'"' | b'\\' | b'$' | b'`')) => {
                            w.push(s[i + 1]);
                            i += 2;
                        }
                        b => {
                            w.push(b);
                            i += 1;
                        }
                    }
                }
                i += 1;
            }
            b'$' if s.get(i + 1) == Some(&b'\'') => {
                let w = cur.get_or_insert_with(Vec::new);
                i += 2;
                loop {
                    match *s.get(i)? {
                        b'\'' => break,
                        b'\\' => {
                            let e = *s.get(i + 1)?;
                            i += 2;
                            match e {
                                b'n' => w.push(b'\n'),
                                b't' => w.push(b'\t'),
                                b'r' => w.push(b'\r'),
                                b'0' => w.push(0),
                                b'x' => {
                                    let hex = s.get(i..i + 2)?;
                                    let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                                    w.push(v);
                                    i += 2;
                                }
                                other => w.push(other),
                            }
                        }
                        b => {
                            w.push(b);
                            i += 1;
                        }
                    }
                }
                i += 1;
            }
            b'\\' => {
                let w = cur.get_or_insert_with(Vec::new);
                if let Some(&n) = s.get(i + 1) {
                    if n != b'\n' {
                        w.push(n);
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
            _ => {
                cur.get_or_insert_with(Vec::new).push(c);
                i += 1;
            }
        }
    }
    if let Some(w) = cur {
        words.push(w);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::shell_join;

    #[test]
    fn shell_split_inverts_shell_join() {
        let argvs: Vec<Vec<Vec<u8>>> = vec![
            vec![
                b"/usr/bin/scp".to_vec(),
                b"-d".to_vec(),
                b"-t".to_vec(),
                b"/tmp".to_vec(),
            ],
            vec![
                b"a b".to_vec(),
                b"it's".to_vec(),
                b"".to_vec(),
                b"\xffx\n\t'\\".to_vec(),
            ],
            vec!["é".as_bytes().to_vec(), b"$HOME".to_vec(), b"\"q\"".to_vec()],
        ];
        for argv in argvs {
            assert_eq!(shell_split(shell_join(&argv).as_bytes()).unwrap(), argv);
        }
        assert_eq!(
            shell_split(br#"scp -t "a \"b\"" c\ d"#).unwrap(),
            vec![
                b"scp".to_vec(),
                b"-t".to_vec(),
                b"a \"b\"".to_vec(),
                b"c d".to_vec()
            ]
        );
        assert!(shell_split(b"scp 'a").is_none());
    }
}
