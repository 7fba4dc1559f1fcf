//! The reference corpus (tests/ref/<case>/transcript.log, real sessions
//! recorded one line per read with every byte) decoded again: whole, byte by
//! byte, at every split of every read and at reordered interleavings of the
//! two directions. The verdict must be the one stored beside each case
//! (expected.txt); re-chunking may change nothing; reordering may change
//! verdicts about waiting (they rest on the order) but never a frame.

use std::fs;
use std::path::{Path, PathBuf};

use scptrace::protocol::scp::{Decoder, Dir, Event, Frame, Options};
use scptrace::transcript::parse::parse_text;
use scptrace::transcript::{Entry, Stream};

/// What a transcript holds, as the relay saw it.
enum Step {
    Read(Dir, Vec<u8>),
    Eof(Dir),
}

struct Case {
    name: String,
    opts: Options,
    steps: Vec<Step>,
    expected: Vec<String>,
}

fn corpus() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ref");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .expect("tests/ref")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("transcript.log").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 30, "the corpus has {} cases", dirs.len());
    dirs.iter().map(|d| load(d)).collect()
}

fn load(dir: &Path) -> Case {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let text = fs::read(dir.join("transcript.log")).unwrap();
    let mut opts = None;
    let mut steps = Vec::new();
    for p in parse_text(&text).unwrap_or_else(|e| panic!("{name}: {e}")) {
        match p.event.entry {
            Entry::Invocation(inv) => {
                let words = scptrace::shell::shell_split(inv.as_bytes()).unwrap();
                let at = words.iter().position(|w| w.ends_with(b"scp")).unwrap();
                let args: Vec<std::ffi::OsString> = words[at + 1..]
                    .iter()
                    .map(|w| std::os::unix::ffi::OsStringExt::from_vec(w.clone()))
                    .collect();
                opts = Options::from_scp_args(&args);
            }
            Entry::Bytes(b) if b.stream != Stream::Err => {
                assert_eq!(b.len, b.bytes.len() as u64, "{name}: recorded with --data full");
                steps.push(Step::Read(dir_of(b.stream), b.bytes));
            }
            Entry::Closed(s) if s != Stream::Err => steps.push(Step::Eof(dir_of(s))),
            _ => {}
        }
    }
    let expected = fs::read_to_string(dir.join("expected.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    Case {
        opts: opts.unwrap_or_else(|| panic!("{name}: no scp server invocation")),
        name,
        steps,
        expected,
    }
}

fn dir_of(s: Stream) -> Dir {
    if s == Stream::In { Dir::In } else { Dir::Out }
}

/// Decodes the steps, each read cut into chunks by `cut(len)`.
fn decode(o: Options, steps: &[(Dir, Vec<u8>, bool)], cut: &dyn Fn(usize) -> Vec<usize>) -> Vec<Event> {
    let mut d = Decoder::new(o);
    let mut out = Vec::new();
    for (dir, bytes, eof) in steps {
        if *eof {
            d.eof(*dir, &mut out);
            continue;
        }
        let mut rest = &bytes[..];
        for n in cut(bytes.len()) {
            let n = n.min(rest.len());
            if n == 0 {
                continue;
            }
            d.feed(*dir, &rest[..n], &mut out);
            rest = &rest[n..];
        }
        if !rest.is_empty() {
            d.feed(*dir, rest, &mut out);
        }
    }
    d.finish(&mut out);
    out
}

fn flat(c: &Case) -> Vec<(Dir, Vec<u8>, bool)> {
    c.steps
        .iter()
        .map(|s| match s {
            Step::Read(d, b) => (*d, b.clone(), false),
            Step::Eof(d) => (*d, Vec::new(), true),
        })
        .collect()
}

fn names(evs: &[Event]) -> Vec<String> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Violation(v) => Some(v.name.as_str().to_string()),
            _ => None,
        })
        .collect()
}

/// The frames of one direction, without notes (which say what was read
/// before what, and so may follow the order).
fn frames(evs: &[Event], dir: Dir) -> Vec<(u64, String)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Frame(Frame { dir: d, end, msg, .. }) if *d == dir => Some((*end, format!("{msg:?}"))),
            _ => None,
        })
        .collect()
}

#[test]
fn reference_sessions_decode_to_their_stored_verdict_at_every_split() {
    for c in corpus() {
        let steps = flat(&c);
        let whole = decode(c.opts, &steps, &|len| vec![len]);
        assert_eq!(names(&whole), c.expected, "{}: verdict", c.name);
        assert_eq!(
            decode(c.opts, &steps, &|len| vec![1; len]),
            whole,
            "{}: byte by byte",
            c.name
        );
        for k in 2..9 {
            assert_eq!(
                decode(c.opts, &steps, &|len| vec![k; len.div_ceil(k)]),
                whole,
                "{}: chunks of {k}",
                c.name
            );
        }
        // Every split of every read, one read at a time.
        for (i, (_, bytes, eof)) in steps.iter().enumerate() {
            if *eof {
                continue;
            }
            for at in 1..bytes.len() {
                let mut split = steps.clone();
                let (d, b, _) = split.remove(i);
                split.insert(i, (d, b[at..].to_vec(), false));
                split.insert(i, (d, b[..at].to_vec(), false));
                assert_eq!(
                    decode(c.opts, &split, &|len| vec![len]),
                    whole,
                    "{}: read {i} split at {at}",
                    c.name
                );
            }
        }
    }
}

#[test]
fn reordering_the_two_directions_never_changes_a_frame() {
    for c in corpus() {
        let steps = flat(&c);
        let whole = decode(c.opts, &steps, &|len| vec![len]);
        let of =
            |d: Dir| -> Vec<(Dir, Vec<u8>, bool)> { steps.iter().filter(|s| s.0 == d).cloned().collect() };
        let (ins, outs) = (of(Dir::In), of(Dir::Out));
        // All of one direction first, then the other; and a strict alternation.
        let mut orders: Vec<Vec<(Dir, Vec<u8>, bool)>> = vec![
            ins.iter().chain(outs.iter()).cloned().collect(),
            outs.iter().chain(ins.iter()).cloned().collect(),
        ];
        let mut alt = Vec::new();
        let (mut a, mut b) = (ins.iter(), outs.iter());
        loop {
            match (a.next(), b.next()) {
                (None, None) => break,
                (x, y) => alt.extend(x.into_iter().chain(y).cloned()),
            }
        }
        orders.push(alt);
        for (k, order) in orders.iter().enumerate() {
            for cut in [1usize, 3, 1 << 20] {
                let got = decode(c.opts, order, &|len| vec![cut; len.div_ceil(cut)]);
                for d in [Dir::In, Dir::Out] {
                    assert_eq!(
                        frames(&got, d),
                        frames(&whole, d),
                        "{}: order {k}, chunks of {cut}, {d:?}",
                        c.name
                    );
                }
            }
        }
    }
}
