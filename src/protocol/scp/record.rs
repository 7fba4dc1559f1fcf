//! The syntax of one SCP control record, read exactly the way OpenSSH's
//! `sink()` reads it (scp.c, the `for (first = 1;; first = 0)` loop): the
//! line is a C string (it ends at its first NUL for every check), the mode
//! is four octal digits, sizes and times go through `strtoull`/`strtol`, and
//! each failure is the `SCREWUP` reason scp answers with before it exits.
//!
//! Pure: bytes in, a typed [`Parsed`] out. The decoder decides what a
//! refusal means for the conversation; writers turn it into words.

/// The longest name that is not flagged [`Lint::NameTooLong`]: OpenSSH's
/// source cuts `D` names at 1024 bytes (`"D%04o %d %.1024s\n"` in `rsource`).
pub const NAME_MAX: usize = 1024;

/// A record the sink accepts as such.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `C<mode> <size> <name>`.
    File { mode: u32, size: u64, name: Vec<u8> },
    /// `D<mode> <size> <name>` (the size is parsed, then ignored).
    Dir { mode: u32, name: Vec<u8> },
    /// Any line starting with `E`: `if (buf[0] == 'E')` acks and returns
    /// without looking at the rest.
    End,
    /// `T<mtime> <mtime_us> <atime> <atime_us>`.
    Times {
        mtime: u64,
        mtime_us: u64,
        atime: u64,
        atime_us: u64,
    },
}

/// Why OpenSSH's sink refuses a line: it sends `\x01scp: …\n` and exits 1.
/// The variants are its messages, in the order `sink()` checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The line's first byte is `\n`: `SCREWUP("unexpected <newline>")`.
    UnexpectedNewline,
    MtimeSecNotPresent,
    MtimeSecNotDelimited,
    MtimeUsecNotDelimited,
    AtimeSecNotPresent,
    AtimeSecNotDelimited,
    AtimeUsecNotDelimited,
    /// The first record of a sink level is not `C`/`D`/`T`/`E`/`\x01`/`\x02`:
    /// scp echoes the line back (`run_err("%s", cp)`; the comment there is
    /// about a shell's "No match.") and exits.
    Echoed,
    /// A later line that is no record: `SCREWUP("expected control record")`.
    ExpectedControlRecord,
    BadMode,
    ModeNotDelimited,
    SizeNotPresent,
    SizeNotDelimited,
    SizeOutOfRange,
    /// `run_err("error: unexpected filename: %s")`: empty, `.`, `..` or with `/`.
    UnexpectedFilename(NameProblem),
    /// `SCREWUP("received directory without -r")`.
    DirWithoutR,
    /// The stream ended inside the line: `SCREWUP("lost connection")`.
    LostConnection,
}

/// What is wrong with a name OpenSSH refuses (CVE-2018-20685).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameProblem {
    Empty,
    Dot,
    Slash,
}

impl Refusal {
    /// The text OpenSSH's sink sends, after `scp: ` (the echo's is the line itself).
    pub fn openssh_text(self) -> &'static str {
        match self {
            Refusal::UnexpectedNewline => "protocol error: unexpected <newline>",
            Refusal::MtimeSecNotPresent => "protocol error: mtime.sec not present",
            Refusal::MtimeSecNotDelimited => "protocol error: mtime.sec not delimited",
            Refusal::MtimeUsecNotDelimited => "protocol error: mtime.usec not delimited",
            Refusal::AtimeSecNotPresent => "protocol error: atime.sec not present",
            Refusal::AtimeSecNotDelimited => "protocol error: atime.sec not delimited",
            Refusal::AtimeUsecNotDelimited => "protocol error: atime.usec not delimited",
            Refusal::Echoed => "(the line itself)",
            Refusal::ExpectedControlRecord => "protocol error: expected control record",
            Refusal::BadMode => "protocol error: bad mode",
            Refusal::ModeNotDelimited => "protocol error: mode not delimited",
            Refusal::SizeNotPresent => "protocol error: size not present",
            Refusal::SizeNotDelimited => "protocol error: size not delimited",
            Refusal::SizeOutOfRange => "protocol error: size out of range",
            Refusal::UnexpectedFilename(_) => "error: unexpected filename",
            Refusal::DirWithoutR => "protocol error: received directory without -r",
            Refusal::LostConnection => "protocol error: lost connection",
        }
    }
}

/// Something OpenSSH accepts that the protocol does not say, or that other
/// implementations trip over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lint {
    /// An `E` line with bytes after the `E`.
    EndTrailing,
    /// A seconds field past 2^63−1: scp acks the `T` and ignores the times
    /// (`TYPE_OVERFLOW(time_t, ull)` sets `setimes = 0`).
    TimesIgnored,
    /// A NUL in the name: scp uses only the bytes before it.
    NameNul,
    /// A name longer than [`NAME_MAX`].
    NameTooLong,
}

/// What `sink()` makes of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub outcome: Result<Record, Refusal>,
    pub lint: Option<Lint>,
    /// For a well-formed `C`/`D` that OpenSSH refuses for its values (a size
    /// past 2^63−1, a name it will not write, a `D` without `-r`): the
    /// record as sent. A sink that is not OpenSSH may accept it; its reply
    /// tells.
    pub lenient: Option<Record>,
}

/// Where a line is read: the sink's options and its loop state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// `-r`: `D` records are allowed.
    pub recursive: bool,
    /// No line has been read yet at this sink level (`first` in `sink()`;
    /// each `D` starts a new level with its own `first`).
    pub first: bool,
}

/// Parses one record line as read by `sink()`: `line` is every byte it read,
/// including the final `\n` if the line has one (a line cut at the buffer's
/// size has none). `\x01`/`\x02` lines are not records; the caller handles
/// them before calling this.
pub fn parse(line: &[u8], cx: Context) -> Parsed {
    if line.first() == Some(&b'\n') {
        return refused(Refusal::UnexpectedNewline);
    }
    // `if (ch == '\n') *--cp = 0;`, then every check works on a C string.
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let c = match line.iter().position(|&b| b == 0) {
        Some(i) => &line[..i],
        None => line,
    };
    match c.first() {
        Some(b'E') => Parsed {
            outcome: Ok(Record::End),
            lint: (line.len() > 1).then_some(Lint::EndTrailing),
            lenient: None,
        },
        Some(b'T') => parse_times(&c[1..]),
        Some(&letter @ (b'C' | b'D')) => parse_file(letter, c, line, cx),
        _ if cx.first => refused(Refusal::Echoed),
        _ => refused(Refusal::ExpectedControlRecord),
    }
}

fn refused(r: Refusal) -> Parsed {
    Parsed {
        outcome: Err(r),
        lint: None,
        lenient: None,
    }
}

/// `strtoull(cp, &cp, 10)` where `isdigit(*cp)` was checked first: the digits,
/// saturating at 2^64−1 as glibc does (scp ignores ERANGE).
fn strtoull(s: &[u8]) -> (u64, &[u8]) {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let v = s[..n].iter().fold(0u64, |acc, &b| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(b - b'0')))
            .unwrap_or(u64::MAX)
    });
    (v, &s[n..])
}

/// `strtol(cp, &cp, 10)`: leading white space, a sign, digits; with no digits
/// the value is 0 and nothing is consumed. Saturates like glibc's.
fn strtol(s: &[u8]) -> (i64, &[u8]) {
    let ws = s
        .iter()
        .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .count();
    let mut rest = &s[ws..];
    let neg = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return (0, s);
    }
    let mag = rest[..n].iter().fold(0i64, |acc, &b| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(i64::from(b - b'0')))
            .unwrap_or(i64::MAX)
    });
    (if neg { mag.saturating_neg() } else { mag }, &rest[n..])
}

/// The `T` branch of `sink()`, after the `T`.
fn parse_times(s: &[u8]) -> Parsed {
    let mut ignored = false;
    let Some(true) = s.first().map(u8::is_ascii_digit) else {
        return refused(Refusal::MtimeSecNotPresent);
    };
    let (mtime, s) = strtoull(s);
    let Some(s) = s.strip_prefix(b" ") else {
        return refused(Refusal::MtimeSecNotDelimited);
    };
    ignored |= mtime > i64::MAX as u64;
    let (mtime_us, s) = strtol(s);
    let s = match s.strip_prefix(b" ") {
        Some(s) if (0..=999_999).contains(&mtime_us) => s,
        _ => return refused(Refusal::MtimeUsecNotDelimited),
    };
    let Some(true) = s.first().map(u8::is_ascii_digit) else {
        return refused(Refusal::AtimeSecNotPresent);
    };
    let (atime, s) = strtoull(s);
    let Some(s) = s.strip_prefix(b" ") else {
        return refused(Refusal::AtimeSecNotDelimited);
    };
    ignored |= atime > i64::MAX as u64;
    let (atime_us, s) = strtol(s);
    if !s.is_empty() || !(0..=999_999).contains(&atime_us) {
        return refused(Refusal::AtimeUsecNotDelimited);
    }
    Parsed {
        outcome: Ok(Record::Times {
            mtime,
            mtime_us: mtime_us.unsigned_abs(),
            atime,
            atime_us: atime_us.unsigned_abs(),
        }),
        lint: ignored.then_some(Lint::TimesIgnored),
        lenient: None,
    }
}

/// The `C`/`D` branch of `sink()`. `c` is the line as a C string, `line` the
/// whole line (without its newline), for the NUL lint.
fn parse_file(letter: u8, c: &[u8], line: &[u8], cx: Context) -> Parsed {
    // `for (++cp; cp < buf + 5; cp++)`: exactly four octal digits.
    let digits = c.get(1..5).unwrap_or(&[]);
    if digits.len() < 4 || !digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return refused(Refusal::BadMode);
    }
    let mode = digits
        .iter()
        .fold(0u32, |acc, &b| (acc << 3) | u32::from(b - b'0'));
    let Some(s) = c[5..].strip_prefix(b" ") else {
        return refused(Refusal::ModeNotDelimited);
    };
    let Some(true) = s.first().map(u8::is_ascii_digit) else {
        return refused(Refusal::SizeNotPresent);
    };
    let (size, s) = strtoull(s);
    let Some(name) = s.strip_prefix(b" ") else {
        return refused(Refusal::SizeNotDelimited);
    };
    let refusal = if size > i64::MAX as u64 {
        Some(Refusal::SizeOutOfRange)
    } else {
        None
    };
    let problem = if name.is_empty() {
        Some(NameProblem::Empty)
    } else if name.contains(&b'/') {
        Some(NameProblem::Slash)
    } else if name == b"." || name == b".." {
        Some(NameProblem::Dot)
    } else {
        None
    };
    let refusal = refusal
        .or(problem.map(Refusal::UnexpectedFilename))
        .or((letter == b'D' && !cx.recursive).then_some(Refusal::DirWithoutR));
    // `name` is a suffix of `c`, and `c` a prefix of `line`: the name as
    // sent runs to the end of the line, NUL and all (what the source meant).
    let sent = &line[c.len() - name.len()..];
    let lint = if c.len() < line.len() {
        Some(Lint::NameNul)
    } else if name.len() > NAME_MAX {
        Some(Lint::NameTooLong)
    } else {
        None
    };
    let name = sent.to_vec();
    let record = if letter == b'C' {
        Record::File { mode, size, name }
    } else {
        Record::Dir { mode, name }
    };
    match refusal {
        Some(r) => Parsed {
            outcome: Err(r),
            lint: None,
            lenient: Some(record),
        },
        None => Parsed {
            outcome: Ok(record),
            lint,
            lenient: None,
        },
    }
}

/// Whether a line that the sink echoed or refused looks like it was meant as
/// a record (`C`, `D` or `T` and a digit or a space, or `E` alone), rather
/// than text such as `Debian GNU/Linux` or `This account is not available.`:
/// the decoder names the first kind by its defect and the second as output
/// before the protocol.
pub fn looks_like_record(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    match line {
        [b'C' | b'D' | b'T', d, ..] => d.is_ascii_digit() || *d == b' ',
        [b'E'] => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: Context = Context {
        recursive: false,
        first: false,
    };
    const REC: Context = Context {
        recursive: true,
        first: false,
    };

    fn ok(line: &[u8], cx: Context) -> Record {
        match parse(line, cx).outcome {
            Ok(r) => r,
            Err(e) => panic!("{:?}: {e:?}", String::from_utf8_lossy(line)),
        }
    }

    fn err(line: &[u8], cx: Context) -> Refusal {
        match parse(line, cx).outcome {
            Err(e) => e,
            Ok(r) => panic!("{:?}: accepted as {r:?}", String::from_utf8_lossy(line)),
        }
    }

    #[test]
    fn records_openssh_accepts() {
        assert_eq!(
            ok(b"C0644 21 a\n", TOP),
            Record::File {
                mode: 0o644,
                size: 21,
                name: b"a".to_vec()
            }
        );
        assert_eq!(
            ok(b"D0755 0 src\n", REC),
            Record::Dir {
                mode: 0o755,
                name: b"src".to_vec()
            }
        );
        assert_eq!(ok(b"E\n", TOP), Record::End);
        assert_eq!(
            ok(b"T1700000000 999999 1700000000 5\n", TOP),
            Record::Times {
                mtime: 1_700_000_000,
                mtime_us: 999_999,
                atime: 1_700_000_000,
                atime_us: 5
            }
        );
        // Leading zeros, a 4 GiB+ size, a name with spaces and bytes past 0x7f.
        assert_eq!(
            ok(b"C4755 0000005000000000 a b\xff\n", TOP),
            Record::File {
                mode: 0o4755,
                size: 5_000_000_000,
                name: b"a b\xff".to_vec()
            }
        );
        // strtol skips white space and takes a sign before the microseconds.
        assert!(matches!(
            ok(b"T1  +5 2 0\n", TOP),
            Record::Times { mtime_us: 5, .. }
        ));
        // A line cut at the buffer's size has no newline; it is parsed all the same.
        assert!(matches!(ok(b"C0644 1 abc", TOP), Record::File { .. }));
    }

    #[test]
    fn refusals_in_sinks_order() {
        assert_eq!(err(b"\n", TOP), Refusal::UnexpectedNewline);
        assert_eq!(err(b"C04755 1 a\n", TOP), Refusal::ModeNotDelimited);
        assert_eq!(err(b"C644 1 a\n", TOP), Refusal::BadMode);
        assert_eq!(err(b"C0648 1 a\n", TOP), Refusal::BadMode);
        assert_eq!(err(b"C06\n", TOP), Refusal::BadMode);
        assert_eq!(err(b"C0644\n", TOP), Refusal::ModeNotDelimited);
        assert_eq!(err(b"C0644 -1 a\n", TOP), Refusal::SizeNotPresent);
        assert_eq!(err(b"C0644  a\n", TOP), Refusal::SizeNotPresent);
        assert_eq!(err(b"C0644 12\n", TOP), Refusal::SizeNotDelimited);
        assert_eq!(err(b"C0644 12x a\n", TOP), Refusal::SizeNotDelimited);
        assert_eq!(
            err(b"C0644 99999999999999999999 a\n", TOP),
            Refusal::SizeOutOfRange
        );
        assert_eq!(
            err(b"C0644 9223372036854775808 a\n", TOP),
            Refusal::SizeOutOfRange
        );
        assert!(matches!(
            ok(b"C0644 9223372036854775807 a\n", TOP),
            Record::File { .. }
        ));
        assert_eq!(
            err(b"C0644 1 \n", TOP),
            Refusal::UnexpectedFilename(NameProblem::Empty)
        );
        assert_eq!(
            err(b"C0644 1 ..\n", TOP),
            Refusal::UnexpectedFilename(NameProblem::Dot)
        );
        assert_eq!(
            err(b"D0755 0 .\n", REC),
            Refusal::UnexpectedFilename(NameProblem::Dot)
        );
        assert_eq!(
            err(b"C0644 1 ../a\n", TOP),
            Refusal::UnexpectedFilename(NameProblem::Slash)
        );
        assert_eq!(err(b"D0755 0 d\n", TOP), Refusal::DirWithoutR);
        // The name is checked before -r.
        assert_eq!(
            err(b"D0755 0 a/b\n", TOP),
            Refusal::UnexpectedFilename(NameProblem::Slash)
        );
        assert_eq!(err(b"hello\n", TOP), Refusal::ExpectedControlRecord);
        assert_eq!(
            err(
                b"hello\n",
                Context {
                    recursive: false,
                    first: true
                }
            ),
            Refusal::Echoed
        );
        assert_eq!(err(b"\0\n", TOP), Refusal::ExpectedControlRecord);
    }

    #[test]
    fn times_refusals() {
        assert_eq!(err(b"T\n", TOP), Refusal::MtimeSecNotPresent);
        assert_eq!(err(b"T 1 0 1 0\n", TOP), Refusal::MtimeSecNotPresent);
        assert_eq!(err(b"T1\n", TOP), Refusal::MtimeSecNotDelimited);
        assert_eq!(err(b"T1 1000000 1 0\n", TOP), Refusal::MtimeUsecNotDelimited);
        assert_eq!(err(b"T1 -1 1 0\n", TOP), Refusal::MtimeUsecNotDelimited);
        assert_eq!(err(b"T1 x 1 0\n", TOP), Refusal::MtimeUsecNotDelimited);
        assert_eq!(err(b"T1 0 x 0\n", TOP), Refusal::AtimeSecNotPresent);
        assert_eq!(err(b"T1 0 1\n", TOP), Refusal::AtimeSecNotDelimited);
        assert_eq!(err(b"T1 0 1 0 \n", TOP), Refusal::AtimeUsecNotDelimited);
        assert_eq!(err(b"T1 0 1 1000000\n", TOP), Refusal::AtimeUsecNotDelimited);
        let p = parse(b"T99999999999999999999 0 1 0\n", TOP);
        assert!(p.outcome.is_ok());
        assert_eq!(p.lint, Some(Lint::TimesIgnored));
    }

    #[test]
    fn c_string_semantics() {
        // scp stops at the NUL: the name it uses is "a"; the record keeps what was sent.
        let p = parse(b"C0644 1 a\0/b\n", TOP);
        assert_eq!(
            p.outcome,
            Ok(Record::File {
                mode: 0o644,
                size: 1,
                name: b"a\0/b".to_vec()
            })
        );
        assert_eq!(p.lint, Some(Lint::NameNul));
        // A NUL inside the mode is a bad mode.
        assert_eq!(err(b"C06\x0044 1 a\n", TOP), Refusal::BadMode);
        // E ignores the rest of its line.
        let p = parse(b"E d\n", TOP);
        assert_eq!((p.outcome, p.lint), (Ok(Record::End), Some(Lint::EndTrailing)));
        // A line starting with NUL is no record.
        assert_eq!(err(b"\0E\n", TOP), Refusal::ExpectedControlRecord);
        let long = [b"C0644 1 ".as_slice(), &[b'a'; NAME_MAX + 1], b"\n"].concat();
        assert_eq!(parse(&long, TOP).lint, Some(Lint::NameTooLong));
    }

    #[test]
    fn record_or_text() {
        assert!(looks_like_record(b"C0644 1 a\n"));
        assert!(looks_like_record(b"T 1 0 1 0\n"));
        assert!(looks_like_record(b"E\n"));
        assert!(!looks_like_record(b"Debian GNU/Linux 12\n"));
        assert!(!looks_like_record(b"This account is currently not available.\n"));
        assert!(!looks_like_record(b"Welcome\n"));
    }
}
