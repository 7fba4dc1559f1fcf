//! `show --file GLOB`: which lines of a transcript are about the files whose
//! path (within the transfer, as `show --summary`'s table names it) matches.
//! Decided from the bytes decoded again ([`Files`]), never from annotations.
//! SCP: a matching file's `C` record (and its `T`), data, end `\0` and the
//! sink's answers to them, and the `D`/`E` records (with their answers) of
//! the directories it is in, so its path reads. A `D` is only known to be
//! wanted when a matching `C` comes inside it: its lines are held until then,
//! and dropped at its `E` if none came. SFTP: the OPEN of a matching path,
//! every request on the handle it returned until CLOSE, and their replies.

use super::files::Files;
use crate::protocol::{Dir, Event, Msg, scp, sftp};

/// Whether `name` matches `pat`: `*` any run of bytes (`/` included), `?`
/// one byte, `[abc]`/`[a-z]`/`[!a]` one byte of (or not of) a set, `\\x` the
/// byte x; everything else itself.
pub fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where to resume after the last `*`: (pattern after it, name position).
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(pat, p, name[n]),
            Some(b'\\') if p + 1 < pat.len() => (pat[p + 1] == name[n]).then_some(p + 2),
            Some(&c) => (c == name[n]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                n += 1;
            }
            (None, Some((sp, sn))) => {
                p = sp;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// A `[...]` at `pat[at]` against byte `c`: the pattern position after it
/// when it matches. An unclosed `[` is a plain byte.
fn class(pat: &[u8], at: usize, c: u8) -> Option<usize> {
    let mut i = at + 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let first = i;
    let mut hit = false;
    while i < pat.len() && (pat[i] != b']' || i == first) {
        if i + 2 < pat.len() && pat[i + 1] == b'-' && pat[i + 2] != b']' {
            hit |= (pat[i]..=pat[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= pat[i] == c;
            i += 1;
        }
    }
    if i >= pat.len() {
        return (c == b'[').then_some(at + 1);
    }
    (hit != negate).then_some(i + 1)
}

/// What becomes of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fate {
    Drop,
    Hold,
    Keep,
}

/// The selection, fed the decoder's events line by line. `L` is a rendered
/// line: held ones are kept here until their fate is known.
#[derive(Debug)]
pub struct Select<L> {
    glob: Vec<u8>,
    files: Files,
    held: Vec<L>,
    /// SCP: per directory entered, where its lines start in `held` and
    /// whether they were shown (a matching file came inside it).
    dirs: Vec<(usize, bool)>,
    /// SCP: where a `T` record's lines start in `held` (it belongs to the
    /// next `C` or `D`).
    times: Option<usize>,
    /// The fate of the last message each way (for answers, and for lines the
    /// decoder makes no message of, such as a file's data read by read).
    last: [Fate; 2],
    /// Files matched so far.
    pub matched: u64,
}

fn ix(d: Dir) -> usize {
    if d == Dir::In { 0 } else { 1 }
}

fn other(d: Dir) -> Dir {
    if d == Dir::In { Dir::Out } else { Dir::In }
}

impl<L> Select<L> {
    pub fn new(glob: &[u8]) -> Self {
        Select {
            glob: glob.to_vec(),
            files: Files::default(),
            held: Vec::new(),
            dirs: Vec::new(),
            times: None,
            last: [Fate::Drop; 2],
            matched: 0,
        }
    }

    /// One bytes line going `dir`, with the events the decoder made of it:
    /// pushes onto `out` the lines to show now, in order.
    pub fn bytes(&mut self, dir: Dir, evs: &[Event], line: L, out: &mut Vec<L>) {
        let mut fate = None::<Fate>;
        for ev in evs {
            let f = self.event(ev, out);
            fate = Some(fate.map_or(f, |g| g.max(f)));
        }
        let fate = fate.unwrap_or(self.last[ix(dir)]);
        self.last[ix(dir)] = fate;
        self.place(fate, line, out);
    }

    /// A `!!` line: it is about the line before it, and shares its fate.
    pub fn violation(&mut self, line: L, out: &mut Vec<L>) {
        let fate = self.last[0].max(self.last[1]);
        self.place(fate, line, out);
    }

    /// Events with no line of their own (the decoder's last words).
    pub fn events(&mut self, evs: &[Event]) {
        let mut sink = Vec::new();
        for ev in evs {
            self.event(ev, &mut sink);
        }
    }

    fn place(&mut self, fate: Fate, line: L, out: &mut Vec<L>) {
        match fate {
            Fate::Keep => out.push(line),
            Fate::Hold => self.held.push(line),
            Fate::Drop => {}
        }
    }

    fn event(&mut self, ev: &Event, out: &mut Vec<L>) -> Fate {
        let row = self.files.event_row(None, ev);
        let (dir, msg) = match ev {
            Event::Frame { dir, msg, .. } => (*dir, msg),
            Event::DataStart { dir, .. } => return self.last[ix(*dir)],
            Event::Violation(_) => return Fate::Drop,
        };
        let matches = |s: &Self, i: usize| glob_match(&s.glob, s.files.rows[i].name.as_bytes());
        match msg {
            Msg::Sftp(m) => match row {
                Some(i) if matches(self, i) => {
                    if let sftp::Msg::Request(r) = &**m
                        && matches!(r.body, sftp::ReqBody::Open { .. })
                    {
                        self.matched += 1;
                    }
                    Fate::Keep
                }
                _ => Fate::Drop,
            },
            Msg::Scp(m) => match m {
                scp::Msg::Times { .. } => {
                    self.times.get_or_insert(self.held.len());
                    Fate::Hold
                }
                scp::Msg::Dir { .. } => {
                    let at = self.times.take().unwrap_or(self.held.len());
                    self.dirs.push((at, false));
                    Fate::Hold
                }
                scp::Msg::EndDir { .. } => match self.dirs.pop() {
                    Some((_, true)) => Fate::Keep,
                    Some((at, false)) => {
                        self.held.truncate(at);
                        Fate::Drop
                    }
                    None => Fate::Drop,
                },
                scp::Msg::File { .. } => {
                    let at = self.times.take();
                    if row.is_some_and(|i| matches(self, i)) {
                        self.matched += 1;
                        out.append(&mut self.held);
                        for d in &mut self.dirs {
                            *d = (0, true);
                        }
                        Fate::Keep
                    } else {
                        if let Some(at) = at {
                            self.held.truncate(at);
                        }
                        Fate::Drop
                    }
                }
                scp::Msg::Ack | scp::Msg::Warning(_) | scp::Msg::Fatal(_) => match row {
                    Some(i) => {
                        if matches(self, i) {
                            Fate::Keep
                        } else {
                            Fate::Drop
                        }
                    }
                    // An answer to a directory's record, or to a `T`.
                    None => self.last[ix(other(dir))],
                },
                _ => match row {
                    Some(i) if matches(self, i) => Fate::Keep,
                    Some(_) => Fate::Drop,
                    None => self.last[ix(dir)],
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Decoder, Protocol};

    #[test]
    fn globs() {
        let m = |p: &str, n: &str| glob_match(p.as_bytes(), n.as_bytes());
        assert!(m("dir/b*", "dir/b"));
        assert!(m("dir/b*", "dir/bee.txt"));
        assert!(!m("dir/b*", "dir/a"));
        assert!(m("*", "d/e/f"));
        assert!(m("*.txt", "d/x.txt"));
        assert!(!m("*.txt", "d/x.txt2"));
        assert!(m("?", "a") && !m("?", "ab") && !m("?", ""));
        assert!(m("[ab]c", "bc") && !m("[ab]c", "cc"));
        assert!(m("[a-c]", "b") && !m("[!a-c]", "b") && m("[!a-c]", "d"));
        assert!(m("[]]", "]"));
        assert!(m("a[", "a[") && !m("a[", "a"));
        assert!(m("\\*", "*") && !m("\\*", "x"));
        assert!(m("a*b*c", "aXbYbZc") && !m("a*b*c", "aXbY"));
        assert!(m("", "") && !m("", "a"));
    }

    /// Lines (direction, bytes), each fed as one line; the lines shown.
    fn select(proto: Protocol, glob: &str, steps: &[(Dir, &'static [u8])]) -> Vec<&'static [u8]> {
        let mut d = Decoder::new(proto);
        let mut s = Select::new(glob.as_bytes());
        let (mut out, mut evs) = (Vec::new(), Vec::new());
        for (dir, bytes) in steps {
            evs.clear();
            d.feed(*dir, bytes, &mut evs);
            s.bytes(*dir, &evs, *bytes, &mut out);
        }
        out
    }

    #[test]
    fn scp_keeps_one_file_and_its_directories() {
        let o = scp::Options::from_scp_args(&["-r", "-t", "/x"]).unwrap();
        let steps: &[(Dir, &'static [u8])] = &[
            (Dir::Out, b"\0"),
            (Dir::In, b"D0755 0 d\n"),
            (Dir::Out, b"\0"),
            (Dir::In, b"D0755 0 e\n"),
            (Dir::Out, b"\0"),
            (Dir::In, b"C0644 3 x\n"),
            (Dir::Out, b"\0"),
            (Dir::In, b"xxx\0"),
            (Dir::Out, b"\0"),
            (Dir::In, b"E\n"),
            (Dir::Out, b"\0"),
            (Dir::In, b"C0644 3 a\n"),
            (Dir::Out, b"\0"),
            (Dir::In, b"abc\0"),
            (Dir::Out, b"\0"),
            (Dir::In, b"C0600 5 b\n"),
            (Dir::Out, b"\x01scp: b: Permission denied\n"),
            (Dir::In, b"E\n"),
            (Dir::Out, b"\0"),
        ];
        let shown = select(Protocol::Scp(o), "d/b*", steps);
        let want: Vec<&[u8]> = vec![
            b"D0755 0 d\n",
            b"\0",
            b"C0600 5 b\n",
            b"\x01scp: b: Permission denied\n",
            b"E\n",
            b"\0",
        ];
        assert_eq!(shown, want);
        let shown = select(Protocol::Scp(o), "d/a", steps);
        let want: Vec<&[u8]> = vec![
            b"D0755 0 d\n",
            b"\0",
            b"C0644 3 a\n",
            b"\0",
            b"abc\0",
            b"\0",
            b"E\n",
            b"\0",
        ];
        assert_eq!(shown, want);
        assert!(select(Protocol::Scp(o), "zz", steps).is_empty());
    }
}
