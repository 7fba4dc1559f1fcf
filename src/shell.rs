//! POSIX shell words: quoting an argv so an invocation line can be pasted into
//! a shell, and the one lexer that splits a line back into words: invocation
//! lines (check, replay, record) and sshd's `SSH_ORIGINAL_COMMAND` (forced).

use crate::escape::is_terminal_control;

/// Quotes one argument for a POSIX shell so the invocation line can be
/// pasted, exactly: a word of `A-Za-z0-9@%+=:,./-_` as it is; UTF-8 without
/// a control character in `'…'`; anything else (a C0 or C1 control, DEL, a
/// bidirectional control, U+2028/U+2029, invalid UTF-8) in bash's `$'…'`,
/// with `\xNN` for every byte of those characters. The result never holds a
/// control character ([`crate::escape::is_terminal_control`]).
pub fn shell_quote(arg: &[u8]) -> String {
    use std::fmt::Write as _;
    let safe = !arg.is_empty()
        && arg
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b));
    if safe {
        return String::from_utf8_lossy(arg).into_owned();
    }
    if let Ok(s) = std::str::from_utf8(arg)
        && !s.chars().any(is_terminal_control)
    {
        return format!("'{}'", s.replace('\'', "'\\''"));
    }
    let mut out = String::from("$'");
    let hex = |out: &mut String, bytes: &[u8]| {
        for b in bytes {
            let _ = write!(out, "\\x{b:02x}");
        }
    };
    for chunk in arg.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\'' => out.push_str("\\'"),
                '\\' => out.push_str("\\\\"),
                c if is_terminal_control(c) => hex(&mut out, c.encode_utf8(&mut [0; 4]).as_bytes()),
                c => out.push(c),
            }
        }
        hex(&mut out, chunk.invalid());
    }
    out.push('\'');
    out
}

/// Quotes a whole argv, space-separated.
pub fn shell_join<A: AsRef<[u8]>>(argv: &[A]) -> String {
    argv.iter()
        .map(|a| shell_quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A shell command line (sshd's `SSH_ORIGINAL_COMMAND` in `forced`, the
/// remote command of an ssh leg in `record`) as an invocation line shows it:
/// as it is when it is UTF-8 without a control character; else what `shell`
/// is given to run it, `SHELL -c LINE`, with the line quoted as one word by
/// [`shell_quote`]. Either way exact, pasteable, and free of control
/// characters.
pub fn command_line(shell: &[u8], line: &[u8]) -> String {
    match printable(line) {
        Some(s) => s.to_string(),
        None => shell_join(&[shell, &b"-c"[..], line]),
    }
}

/// `line` as text when it is UTF-8 without a control character.
pub fn printable(line: &[u8]) -> Option<&str> {
    std::str::from_utf8(line)
        .ok()
        .filter(|s| !s.chars().any(is_terminal_control))
}

/// Splits a POSIX shell command line into words, the inverse of
/// [`shell_join`]: blanks separate words;
/// `'…'`, `"…"` (with `\"`, `\\`, `\$`, `` \` `` escapes), bash's `$'…'`
/// (with `\\`, `\'`, `\n`, `\t`, `\r`, `\0`, `\xHH`) and a backslash outside
/// quotes quote. `None` for an unterminated quote. Operators are not
/// recognised (they stay in the words): [`simple_words`] does that.
pub fn shell_split(s: &[u8]) -> Option<Vec<Vec<u8>>> {
    lex(s).map(|l| l.words)
}

/// Splits `cmd` into words the way a POSIX shell would for a simple command
/// (quoting as [`shell_split`]); `None` when it is not one: an operator
/// (`;`, `&`, `|`, `<`, `>`, `(`, `)`), a command substitution (`` ` ``,
/// `$(`), an unquoted newline, a trailing backslash, or unbalanced quotes.
/// For recognising a command only: a shell still runs the original text.
pub fn simple_words(cmd: &[u8]) -> Option<Vec<Vec<u8>>> {
    lex(cmd).filter(|l| l.simple).map(|l| l.words)
}

/// What [`lex`] read from a command line.
struct Lexed {
    words: Vec<Vec<u8>>,
    /// No operator, command substitution, unquoted newline or trailing
    /// backslash: the line is one simple command.
    simple: bool,
}

/// The one shell lexer: words as the shell would make them (no expansion),
/// and whether the line is a simple command. `None` for an unterminated
/// quote. A backslash-newline is a line continuation, outside quotes and
/// inside `"…"`.
fn lex(s: &[u8]) -> Option<Lexed> {
    let mut words = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    let mut simple = true;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            b' ' | b'\t' | b'\n' => {
                simple &= c != b'\n';
                words.extend(cur.take());
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
                        b'\\' if s.get(i + 1) == Some(&b'\n') => i += 2,
                        b => {
                            let substitution = b == b'`' || (b == b'$' && s.get(i + 1) == Some(&b'('));
                            simple &= !substitution;
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
            b'\\' => match s.get(i + 1) {
                Some(b'\n') => i += 2,
                Some(&n) => {
                    cur.get_or_insert_with(Vec::new).push(n);
                    i += 2;
                }
                None => {
                    simple = false;
                    cur.get_or_insert_with(Vec::new);
                    i += 1;
                }
            },
            _ => {
                let operator = b";&|<>()`".contains(&c);
                let substitution = c == b'$' && s.get(i + 1) == Some(&b'(');
                simple &= !operator && !substitution;
                cur.get_or_insert_with(Vec::new).push(c);
                i += 1;
            }
        }
    }
    words.extend(cur);
    Some(Lexed { words, simple })
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

    /// Issue 10: C1 controls and bidirectional overrides were quoted raw in
    /// `'…'`, so the invocation line put them on the terminal.
    #[test]
    fn quoting_leaves_no_control_character_and_stays_exact() {
        assert_eq!(shell_quote("c1\u{9b}31m".as_bytes()), "$'c1\\xc2\\x9b31m'");
        assert_eq!(shell_quote("a\u{202e}txt".as_bytes()), "$'a\\xe2\\x80\\xaetxt'");
        assert_eq!(shell_quote("é\x1b'\\".as_bytes()), "$'é\\x1b\\'\\\\'");
        assert_eq!(shell_quote("é ok".as_bytes()), "'é ok'");
        let mut words: Vec<Vec<u8>> = (0u32..0x3000)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b").into_bytes())
            .collect();
        words.extend((0..=255u8).map(|b| vec![b'x', b, b'\'']));
        for w in &words {
            let q = shell_quote(w);
            assert!(!q.chars().any(is_terminal_control), "{q:?}");
            assert_eq!(
                shell_split(q.as_bytes()).unwrap(),
                std::slice::from_ref(w),
                "{q:?}"
            );
        }
    }

    #[test]
    fn a_command_line_with_controls_is_shown_as_its_shell_runs_it() {
        assert_eq!(command_line(b"/bin/sh", b"scp -t '/a b'"), "scp -t '/a b'");
        let hostile = b"scp -t /x\x1b[2J\x07\r\xc2\x9b";
        let shown = command_line(b"/bin/sh", hostile);
        assert_eq!(shown, "/bin/sh -c $'scp -t /x\\x1b[2J\\x07\\x0d\\xc2\\x9b'");
        assert_eq!(
            shell_split(shown.as_bytes()).unwrap(),
            [b"/bin/sh".to_vec(), b"-c".to_vec(), hostile.to_vec()]
        );
        assert!(command_line(b"sh", b"scp\t-t x").starts_with("sh -c $'scp\\x09"));
        assert!(command_line(b"sh", b"scp -t \xff").starts_with("sh -c $'"));
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

    #[test]
    fn one_lexer_two_views() {
        let w = |v: &[&str]| v.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
        // shell_split keeps operators in the words; simple_words refuses them.
        assert_eq!(shell_split(b"a;b c").unwrap(), w(&["a;b", "c"]));
        assert_eq!(simple_words(b"a;b c"), None);
        // Both read bash's $'...' and a backslash-newline continuation.
        assert_eq!(simple_words(b"scp $'-t' x").unwrap(), w(&["scp", "-t", "x"]));
        assert_eq!(shell_split(b"scp -t a\\\nb").unwrap(), w(&["scp", "-t", "ab"]));
        assert_eq!(
            simple_words(b"scp -t \"a\\\nb\"").unwrap(),
            w(&["scp", "-t", "ab"])
        );
    }
}
