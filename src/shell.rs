//! POSIX shell words: quoting an argv so an invocation line can be pasted into
//! a shell, and splitting such a line back into words. Used by the tracer
//! (invocation lines), by the readers of those lines (check, replay, record)
//! and by install (the forced command).

/// Quotes one argument for a POSIX shell so the invocation line can be pasted.
pub fn shell_quote(arg: &[u8]) -> String {
    let safe = !arg.is_empty()
        && arg
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b));
    let s = String::from_utf8_lossy(arg);
    if safe {
        s.into_owned()
    } else if arg.iter().all(|&b| (0x20..=0x7e).contains(&b) || b >= 0x80) && std::str::from_utf8(arg).is_ok()
    {
        format!("'{}'", s.replace('\'', "'\\''"))
    } else {
        // Control bytes or invalid UTF-8: bash's $'…' keeps them exact.
        let mut out = String::from("$'");
        for &b in arg {
            match b {
                b'\'' => out.push_str("\\'"),
                b'\\' => out.push_str("\\\\"),
                0x20..=0x7e => out.push(b as char),
                _ => out.push_str(&format!("\\x{b:02x}")),
            }
        }
        out.push('\'');
        out
    }
}

/// Quotes a whole argv, space-separated.
pub fn shell_join<A: AsRef<[u8]>>(argv: &[A]) -> String {
    argv.iter()
        .map(|a| shell_quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits a POSIX shell command line into words, the inverse of
/// [`shell_join`]: blanks separate words;
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

    #[test]
    fn quoting() {
        assert_eq!(
            shell_join(&["/usr/bin/scp", "-d", "-t", "/tmp"]),
            "/usr/bin/scp -d -t /tmp"
        );
        assert_eq!(shell_quote(b"a b"), "'a b'");
        assert_eq!(shell_quote(b"it's"), "'it'\\''s'");
        assert_eq!(shell_quote(b""), "''");
        assert_eq!(shell_quote(b"\xffx\n"), "$'\\xffx\\x0a'");
    }

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
