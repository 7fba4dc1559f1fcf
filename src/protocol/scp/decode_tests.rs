//! Tests of the SCP decoder: bytes in, frames and violations out. Every
//! session is fed whole, byte by byte, at every split, and in interleavings
//! of its two directions; frames must never change, and only causality may
//! change a verdict.

use super::*;
use crate::protocol::scp::Role;
use crate::protocol::scp::msg::Sent;
use crate::protocol::scp::record::NameProblem;
use Dir::{In, Out};

// ---- harness ---------------------------------------------------------------

type Session = Vec<(Dir, Vec<u8>)>;

fn seg(dir: Dir, b: &[u8]) -> (Dir, Vec<u8>) {
    (dir, b.to_vec())
}

/// One decoded item, a frame with its bytes reconstructed from the offsets.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Frame {
        dir: Dir,
        bytes: Vec<u8>,
        msg: Msg,
        note: Option<Note>,
    },
    DataStart {
        dir: Dir,
        size: u64,
    },
    Violation(Violation),
}

fn ix(dir: Dir) -> usize {
    match dir {
        In => 0,
        Out => 1,
    }
}

/// Drives a decoder and checks the framing contract on every event: frames
/// are non-empty and contiguous per direction, end within what was fed, a
/// DataStart is where the previous frame ended, and after `finish` every
/// byte is in exactly one frame.
struct Harness {
    dec: Decoder,
    fed: [Vec<u8>; 2],
    framed: [usize; 2],
    items: Vec<Item>,
}

impl Harness {
    fn new(opts: Options) -> Self {
        Harness {
            dec: Decoder::new(opts),
            fed: [vec![], vec![]],
            framed: [0, 0],
            items: vec![],
        }
    }

    fn absorb(&mut self, events: Vec<Event>) {
        for ev in events {
            match ev {
                Event::Frame(Frame { dir, end, msg, note }) => {
                    let d = ix(dir);
                    let end = end as usize;
                    assert!(end > self.framed[d], "empty or backwards frame {msg:?}");
                    assert!(end <= self.fed[d].len(), "frame past the input {msg:?}");
                    let bytes = self.fed[d][self.framed[d]..end].to_vec();
                    self.framed[d] = end;
                    if let Msg::Data { seen, .. } = &msg {
                        assert_eq!(*seen, bytes.len() as u64, "data frame length");
                    }
                    self.items.push(Item::Frame {
                        dir,
                        bytes,
                        msg,
                        note,
                    });
                }
                Event::DataStart { dir, at, size } => {
                    assert_eq!(
                        at as usize,
                        self.framed[ix(dir)],
                        "DataStart where the last frame ended"
                    );
                    self.items.push(Item::DataStart { dir, size });
                }
                Event::Violation(v) => self.items.push(Item::Violation(v)),
            }
        }
    }

    fn feed(&mut self, dir: Dir, bytes: &[u8]) {
        self.fed[ix(dir)].extend_from_slice(bytes);
        let mut ev = Vec::new();
        self.dec.feed(dir, bytes, &mut ev);
        self.absorb(ev);
    }

    /// Like `feed`, but passes what it can as splice would (`skip`).
    fn splice(&mut self, dir: Dir, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let r = self.dec.data_remaining(dir);
            if r == 0 {
                let n = 1;
                self.feed(dir, &bytes[..n]);
                bytes = &bytes[n..];
                continue;
            }
            let n = (r as usize).min(bytes.len());
            self.fed[ix(dir)].extend_from_slice(&bytes[..n]);
            let mut ev = Vec::new();
            self.dec.skip(dir, n as u64, &mut ev);
            self.absorb(ev);
            bytes = &bytes[n..];
        }
    }

    fn eof(&mut self, dir: Dir) {
        let mut ev = Vec::new();
        self.dec.eof(dir, &mut ev);
        self.absorb(ev);
    }

    fn finish(mut self) -> Vec<Item> {
        let mut ev = Vec::new();
        self.dec.finish(&mut ev);
        self.absorb(ev);
        for d in [In, Out] {
            assert_eq!(
                self.framed[ix(d)],
                self.fed[ix(d)].len(),
                "unframed bytes in {d:?}"
            );
        }
        assert!(self.dec.buffered_bytes() < 1 << 20, "memory bound");
        self.items
    }
}

fn opts(role: Role, recursive: bool) -> Options {
    Options {
        role,
        recursive,
        target_dir: false,
        preserve: false,
    }
}
fn sink() -> Options {
    opts(Role::Sink, false)
}
fn sink_r() -> Options {
    opts(Role::Sink, true)
}
fn source() -> Options {
    opts(Role::Source, false)
}
fn source_r() -> Options {
    opts(Role::Source, true)
}

/// Feeds a session in its order, each segment whole, then both EOFs.
fn run(o: Options, s: &Session) -> Vec<Item> {
    run_chunked(o, s, |len| vec![len])
}

/// Feeds each segment cut into the chunk lengths `chunks(len)` gives.
fn run_chunked(o: Options, s: &Session, chunks: impl Fn(usize) -> Vec<usize>) -> Vec<Item> {
    let mut h = Harness::new(o);
    for (dir, bytes) in s {
        let mut rest = &bytes[..];
        for n in chunks(bytes.len()) {
            let n = n.min(rest.len());
            h.feed(*dir, &rest[..n]);
            rest = &rest[n..];
        }
        if !rest.is_empty() {
            h.feed(*dir, rest);
        }
    }
    h.eof(In);
    h.eof(Out);
    h.finish()
}

/// Feeds a session whole, byte by byte, split at every point of every
/// segment, and with file data spliced; demands the same items each time.
fn check_splits(o: Options, s: &Session) -> Vec<Item> {
    let whole = run(o, s);
    assert_eq!(run_chunked(o, s, |len| vec![1; len]), whole, "byte by byte");
    let longest = s.iter().map(|(_, b)| b.len()).max().unwrap_or(0);
    for at in 1..longest {
        assert_eq!(run_chunked(o, s, |_| vec![at]), whole, "split at {at}");
    }
    let mut h = Harness::new(o);
    for (dir, bytes) in s {
        h.splice(*dir, bytes);
    }
    h.eof(In);
    h.eof(Out);
    assert_eq!(h.finish(), whole, "spliced");
    whole
}

fn frames(items: &[Item]) -> Vec<(Dir, Vec<u8>, Msg)> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Frame { dir, bytes, msg, .. } => Some((*dir, bytes.clone(), msg.clone())),
            _ => None,
        })
        .collect()
}

fn names(items: &[Item]) -> Vec<&'static str> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Violation(v) => Some(v.name.as_str()),
            _ => None,
        })
        .collect()
}

fn violation(items: &[Item], name: Name) -> Violation {
    items
        .iter()
        .find_map(|i| match i {
            Item::Violation(v) if v.name == name => Some(v.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {name:?} in {:?}", names(items)))
}

fn notes(items: &[Item]) -> Vec<(Vec<u8>, Note)> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Frame {
                bytes, note: Some(n), ..
            } => Some((bytes.clone(), n.clone())),
            _ => None,
        })
        .collect()
}

/// All of one direction's bytes, in order.
fn stream(s: &Session, dir: Dir) -> Vec<u8> {
    s.iter()
        .filter(|(d, _)| *d == dir)
        .flat_map(|(_, b)| b.clone())
        .collect()
}

// ---- realistic sessions ------------------------------------------------------

fn upload_two() -> Session {
    vec![
        seg(Out, b"\0"),
        seg(In, b"C0644 21 a\n"),
        seg(Out, b"\0"),
        seg(In, b"file a file a file a\n"),
        seg(In, b"\0"),
        seg(Out, b"\0"),
        seg(In, b"C0600 3 b\n"),
        seg(Out, b"\0"),
        seg(In, b"xyz\0"),
        seg(Out, b"\0"),
    ]
}

fn tree_rp() -> Session {
    vec![
        seg(Out, b"\0"),
        seg(In, b"T1700000000 0 1700000001 0\n"),
        seg(Out, b"\0"),
        seg(In, b"D0755 0 top\n"),
        seg(Out, b"\0"),
        seg(In, b"T1700000002 123456 1700000003 999999\n"),
        seg(Out, b"\0"),
        seg(In, b"C0644 5 f\n"),
        seg(Out, b"\0"),
        seg(In, b"hello\0"),
        seg(Out, b"\0"),
        seg(In, b"D0700 0 empty\n"),
        seg(Out, b"\0"),
        seg(In, b"E\n"),
        seg(Out, b"\0"),
        seg(In, b"D0755 0 sub\n"),
        seg(Out, b"\0"),
        seg(In, b"C0600 0 nothing\n"),
        seg(Out, b"\0"),
        seg(In, b"\0"),
        seg(Out, b"\0"),
        seg(In, b"E\n"),
        seg(Out, b"\0"),
        seg(In, b"E\n"),
        seg(Out, b"\0"),
    ]
}

fn download() -> Session {
    vec![
        seg(In, b"\0"),
        seg(Out, b"C0644 5 f\n"),
        seg(In, b"\0"),
        seg(Out, b"hel"),
        seg(Out, b"lo\0"),
        seg(In, b"\0"),
        seg(Out, b"\x01scp: /x/missing: No such file or directory\n"),
        seg(Out, b"C0755 2 g\n"),
        seg(In, b"\0"),
        seg(Out, b"#!\0"),
        seg(In, b"\0"),
    ]
}

/// The download the issue describes: a tree, each message acked.
fn download_tree() -> Session {
    let mut s = vec![seg(In, b"\0")];
    let mut msg = |m: &[u8]| {
        s.push(seg(Out, m));
        s.push(seg(In, b"\0"));
    };
    msg(b"D0755 0 tree\n");
    for d in ["a", "b"] {
        msg(format!("D0755 0 {d}\n").as_bytes());
        for f in ["x", "y", "z"] {
            msg(format!("C0644 4 {f}\n").as_bytes());
            msg(b"data\0");
        }
        msg(b"E\n");
    }
    msg(b"C0644 0 empty\n");
    msg(b"\0");
    msg(b"E\n");
    s
}

fn error_replies() -> Session {
    vec![
        seg(Out, b"\0"),
        // Refused: no data follows, the next record does.
        seg(In, b"C0644 4 locked\n"),
        seg(Out, b"\x01scp: /t/locked: Permission denied\n"),
        seg(In, b"C0644 4 full\n"),
        seg(Out, b"\0"),
        seg(In, b"abcd\0"),
        seg(Out, b"\x01scp: /t/full: No space left on device\n"),
        // The source could not read a file: zeros, then an error for the \0.
        seg(In, b"C0644 2 bad\n"),
        seg(Out, b"\0"),
        seg(In, b"\0\0\x01scp: bad: Input/output error\n"),
        seg(Out, b"\0"),
        seg(In, b"C0644 1 last\n"),
        seg(Out, b"\x02scp: fatal\n"),
    ]
}

// ---- clean sessions ------------------------------------------------------------

#[test]
fn clean_sessions_frame_the_same_at_every_split_with_no_violation() {
    for (o, s) in [
        (sink(), upload_two()),
        (sink_r(), tree_rp()),
        (source(), download()),
        (source_r(), download_tree()),
        (sink(), error_replies()),
    ] {
        let items = check_splits(o, &s);
        assert_eq!(names(&items), Vec::<&str>::new(), "{s:?}");
    }
}

#[test]
fn upload_frames() {
    let f = frames(&run(sink(), &upload_two()));
    let msgs: Vec<Msg> = f.iter().map(|(_, _, m)| m.clone()).collect();
    assert_eq!(
        msgs,
        [
            Msg::Ack,
            Msg::File {
                mode: 0o644,
                size: 21,
                name: b"a".to_vec()
            },
            Msg::Ack,
            Msg::Data {
                name: b"a".to_vec(),
                size: 21,
                seen: 21,
                complete: true
            },
            Msg::DataEnd { name: b"a".to_vec() },
            Msg::Ack,
            Msg::File {
                mode: 0o600,
                size: 3,
                name: b"b".to_vec()
            },
            Msg::Ack,
            Msg::Data {
                name: b"b".to_vec(),
                size: 3,
                seen: 3,
                complete: true
            },
            Msg::DataEnd { name: b"b".to_vec() },
            Msg::Ack,
        ]
    );
}

#[test]
fn tree_names_the_directories_left() {
    let f = frames(&run(sink_r(), &tree_rp()));
    let left: Vec<Option<Vec<u8>>> = f
        .iter()
        .filter_map(|(_, _, m)| match m {
            Msg::EndDir { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        left,
        [
            Some(b"empty".to_vec()),
            Some(b"sub".to_vec()),
            Some(b"top".to_vec())
        ]
    );
}

#[test]
fn refused_file_has_no_data_and_source_error_stands_for_the_end() {
    let items = run(sink(), &error_replies());
    let f = frames(&items);
    // "C…locked" is followed directly by the next record.
    let locked = f.iter().position(|(_, b, _)| b == b"C0644 4 locked\n").unwrap();
    assert_eq!(f[locked + 2].1, b"C0644 4 full\n");
    assert!(notes(&items).iter().any(
        |(b, n)| b == b"\x01scp: bad: Input/output error\n" && *n == Note::InPlaceOfEnd(b"bad".to_vec())
    ));
    // The sink's fatal error ends its direction only.
    assert!(matches!(f.last(), Some((Out, _, Msg::Fatal(_)))));
}

// ---- interleavings -------------------------------------------------------------

/// Re-feeds the session's two byte streams cut into chunks of the given
/// lengths (cycled), merged in the order `order` gives (true: the next chunk
/// of `In`), then returns the items.
fn interleaved(o: Options, s: &Session, cuts: &[usize], order: &[bool]) -> Vec<Item> {
    let mut rest = [stream(s, In), stream(s, Out)];
    let mut pos = [0usize; 2];
    let mut h = Harness::new(o);
    let (mut c, mut k) = (0, 0);
    while pos[0] < rest[0].len() || pos[1] < rest[1].len() {
        let want_in = order.get(k % order.len().max(1)).copied().unwrap_or(true);
        k += 1;
        let d = if (want_in && pos[0] < rest[0].len()) || pos[1] >= rest[1].len() {
            0
        } else {
            1
        };
        let n = cuts.get(c % cuts.len().max(1)).copied().unwrap_or(1).max(1);
        c += 1;
        let end = (pos[d] + n).min(rest[d].len());
        let dir = if d == 0 { In } else { Out };
        let chunk = rest[d][pos[d]..end].to_vec();
        h.feed(dir, &chunk);
        pos[d] = end;
    }
    rest[0].clear();
    h.eof(In);
    h.eof(Out);
    h.finish()
}

#[test]
fn acks_sent_up_front_are_one_violation_and_frame_as_usual() {
    // The issue's downloader: all of its acks at once, before scp -f writes.
    let s = download_tree();
    let acks = stream(&s, In);
    let mut upfront = vec![seg(In, &acks)];
    upfront.push(seg(Out, &stream(&s, Out)));
    let items = run(source_r(), &upfront);
    assert_eq!(names(&items), ["acks-ahead"]);
    assert_eq!(
        frames(&items).iter().filter(|(d, ..)| *d == Out).count(),
        frames(&run(source_r(), &s))
            .iter()
            .filter(|(d, ..)| *d == Out)
            .count()
    );
    assert_eq!(
        frames(&items)
            .into_iter()
            .filter(|(d, ..)| *d == Out)
            .collect::<Vec<_>>(),
        frames(&run(source_r(), &s))
            .into_iter()
            .filter(|(d, ..)| *d == Out)
            .collect::<Vec<_>>()
    );
}

#[test]
fn late_ack_uploader_is_one_data_before_ack() {
    // go-scp: C before reading the greeting, then every reply one step late.
    let s = vec![
        seg(In, b"C0644 3 a\nabc\0"),
        seg(Out, b"\0"),
        seg(Out, b"\0"),
        seg(In, b"C0644 3 b\nxyz\0"),
        seg(Out, b"\0"),
        seg(Out, b"\0"),
        seg(In, b"C0644 3 c\n123\0"),
        seg(Out, b"\0\0\0"),
    ];
    let items = check_splits(sink(), &s);
    assert_eq!(names(&items), ["data-before-ack"]);
    let v = violation(&items, Name::DataBeforeAck);
    assert_eq!(
        v.detail,
        Detail::NoWait {
            awaited: Awaited::Ready,
            sent: Sent::Record
        }
    );
    // The frames are those of the lock-step session.
    let lockstep = vec![
        seg(Out, b"\0"),
        seg(In, b"C0644 3 a\n"),
        seg(Out, b"\0"),
        seg(In, b"abc\0"),
        seg(Out, b"\0"),
        seg(In, b"C0644 3 b\n"),
        seg(Out, b"\0"),
        seg(In, b"xyz\0"),
        seg(Out, b"\0"),
        seg(In, b"C0644 3 c\n"),
        seg(Out, b"\0"),
        seg(In, b"123\0"),
        seg(Out, b"\0"),
    ];
    let sorted = |it: &[Item], d: Dir| frames(it).into_iter().filter(|f| f.0 == d).collect::<Vec<_>>();
    let clean = run(sink(), &lockstep);
    assert_eq!(names(&clean), Vec::<&str>::new());
    for d in [In, Out] {
        assert_eq!(sorted(&items, d), sorted(&clean, d));
    }
}

#[test]
fn fatal_at_once_ends_only_its_senders_direction() {
    // The peer sends \x02 before the greeting was read: the greeting is still
    // the sink's ready, never bytes after the end.
    for s in [
        vec![seg(In, b"\x02go away\n"), seg(Out, b"\0")],
        vec![seg(Out, b"\0"), seg(In, b"\x02go away\n")],
    ] {
        let items = check_splits(sink(), &s);
        assert_eq!(names(&items), Vec::<&str>::new(), "{s:?}");
        let f = frames(&items);
        assert!(f.contains(&(Out, b"\0".to_vec(), Msg::Ack)));
        assert!(f.contains(&(In, b"\x02go away\n".to_vec(), Msg::Fatal(b"go away".to_vec()))));
    }
}

#[test]
fn ack_with_a_newline_is_read_as_scp_reads_it() {
    // A downloader whose acks are "\0\n": response() reads \0 (ok), then
    // "\n" starts an error message that runs to the next "\n".
    let s = vec![seg(In, b"\0\n"), seg(Out, b"C0644 3 a\n"), seg(In, b"\0\n")];
    let items = check_splits(source(), &s);
    assert_eq!(names(&items), ["bad-ack"]);
    let v = violation(&items, Name::BadAck);
    assert_eq!(
        v.detail,
        Detail::BadReply {
            byte: b'\n',
            line: b"\n\0\n".to_vec()
        }
    );
    assert!(frames(&items).contains(&(In, b"\n\0\n".to_vec(), Msg::BadReply(b"\n\0\n".to_vec()))));
}

#[test]
fn two_warnings_for_one_file_are_one_extra_reply() {
    // The second warning is read by OpenSSH's source as the answer to its
    // next message, which it then skips: the pairing shifts by one, and
    // nothing after is reported again.
    let s = vec![
        seg(In, b"\0"),
        seg(Out, b"C0644 3 a\n"),
        seg(In, b"\x01scp: a: denied\n\x01scp: a: again\n"),
        seg(Out, b"C0644 3 b\n"),
        seg(In, b"\0"),
        seg(Out, b"C0644 3 c\n"),
        seg(In, b"\0"),
        seg(Out, b"xyz\0"),
        seg(In, b"\0"),
    ];
    let items = check_splits(source(), &s);
    assert_eq!(names(&items), ["extra-reply"]);
    // "b" is refused (by the extra warning): no data; "c" is accepted (by b's ack).
    let f = frames(&items);
    assert!(
        f.iter()
            .any(|(_, b, m)| b == b"xyz" && matches!(m, Msg::Data { name, .. } if name == b"c"))
    );
}

#[test]
fn refused_file_with_pipelined_data_is_one_data_before_ack() {
    // The source sends data without waiting; the sink refuses the file and
    // reads the data as a record: "protocol error: expected control record".
    let s = vec![
        seg(Out, b"\0"),
        seg(In, b"C0644 6 x\nhello\n\0"),
        seg(Out, b"\x01scp: /d/x: Is a directory\n"),
        seg(Out, b"\x01scp: protocol error: expected control record\n"),
    ];
    let items = check_splits(sink(), &s);
    assert_eq!(names(&items), ["data-before-ack"]);
    let n = notes(&items);
    assert!(
        n.contains(&(b"hello\n".to_vec(), Note::MisreadData(b"x".to_vec()))),
        "{n:?}"
    );
    assert!(frames(&items).contains(&(
        In,
        b"hello\n".to_vec(),
        Msg::BadRecord {
            why: Refusal::ExpectedControlRecord
        }
    )));
}

#[test]
fn interleavings_never_change_frames() {
    let cases: Vec<(Options, Session)> = vec![
        (sink(), upload_two()),
        (sink_r(), tree_rp()),
        (source(), download()),
        (source_r(), download_tree()),
        (sink(), error_replies()),
    ];
    for (o, s) in &cases {
        let want: Vec<_> = frames(&run(*o, s));
        let key =
            |f: &[(Dir, Vec<u8>, Msg)], d: Dir| f.iter().filter(|x| x.0 == d).cloned().collect::<Vec<_>>();
        for cuts in [vec![1], vec![2, 7], vec![1000], vec![3, 1, 4, 1, 5]] {
            for order in [
                vec![true],
                vec![false],
                vec![true, false],
                vec![false, false, true],
                vec![true, true, false],
            ] {
                let got = frames(&interleaved(*o, s, &cuts, &order));
                for d in [In, Out] {
                    assert_eq!(key(&got, d), key(&want, d), "{cuts:?} {order:?} {s:?}");
                }
            }
        }
    }
}

#[test]
fn pscp_acking_on_the_data_races_the_end_byte() {
    // The sink's ack for the file's end arrives when all data, but not the
    // \0, was read: the two directions race; not a violation.
    for overtake in [false, true] {
        let mut s = vec![
            seg(In, b"\0"),
            seg(Out, b"C0644 3 a\n"),
            seg(In, b"\0"),
            seg(Out, b"abc"),
        ];
        if overtake {
            s.push(seg(In, b"\0"));
            s.push(seg(Out, b"\0"));
        } else {
            s.push(seg(Out, b"\0"));
            s.push(seg(In, b"\0"));
        }
        let items = run(source(), &s);
        assert_eq!(names(&items), Vec::<&str>::new(), "overtake={overtake}");
    }
    // A second early ack is an ack ahead.
    let s = vec![
        seg(In, b"\0"),
        seg(Out, b"C0644 3 a\n"),
        seg(In, b"\0"),
        seg(Out, b"abc"),
        seg(In, b"\0\0"),
        seg(Out, b"\0"),
    ];
    assert_eq!(names(&run(source(), &s)), ["acks-ahead"]);
}

// ---- record violations (scp -t, the traced sink is OpenSSH) -----------------------

fn upload(records: &[&[u8]]) -> Session {
    let mut s = vec![seg(Out, b"\0")];
    for r in records {
        s.push(seg(In, r));
        s.push(seg(Out, b"\x01scp: protocol error\n"));
    }
    s
}

#[test]
fn each_refusal_is_named_once_and_the_sink_ends() {
    let cases: &[(&[u8], &str)] = &[
        (b"C04755 1 a\n", "bad-mode"),
        (b"C064 1 a\n", "bad-mode"),
        (b"C0644 x a\n", "bad-size"),
        (b"C0644 12\n", "bad-size"),
        (b"C0644 99999999999999999999 a\n", "bad-size"),
        (b"T1 1000000 1 0\n", "bad-times"),
        (b"T1 0 1\n", "bad-times"),
        (b"C0644 1 \n", "bad-name"),
        (b"C0644 1 ..\n", "name-dot"),
        (b"C0644 1 ../x\n", "name-slash"),
        (b"D0755 0 d\n", "dir-without-r"),
        (b"\n", "unknown-record"),
        (b"hello\n", "unknown-record"),
    ];
    for (line, name) in cases {
        // As the first record and after a clean one. As the session's
        // first line, a line that is no record is shell output.
        for before in [&[][..], &[&b"C0644 0 ok\n"[..], b"\0"][..]] {
            let name = if before.is_empty() && !record::looks_like_record(line) {
                &"output-before-protocol"
            } else {
                name
            };
            let mut s = vec![seg(Out, b"\0")];
            for b in before {
                s.push(seg(In, b));
                s.push(seg(Out, b"\0"));
            }
            s.push(seg(In, line));
            s.push(seg(Out, b"\x01scp: protocol error\n"));
            // What a pipelining source sends next is not read any more.
            s.push(seg(In, b"C0644 1 next\n"));
            let items = check_splits(sink(), &s);
            assert_eq!(
                names(&items),
                [*name],
                "{:?} after {before:?}",
                String::from_utf8_lossy(line)
            );
            let unread = notes(&items);
            assert!(
                unread
                    .iter()
                    .any(|(b, n)| b == b"C0644 1 next\n" && *n == Note::Unread(Ended::SinkRefused)),
                "{unread:?}"
            );
        }
    }
}

#[test]
fn first_line_that_is_text_is_output_before_protocol() {
    for text in [
        &b"Welcome\n"[..],
        b"Debian GNU/Linux 12\n",
        b"This account is currently not available.\n",
    ] {
        let s = vec![seg(Out, b"\0"), seg(In, text), seg(Out, b"\x01scp: Welcome\n")];
        let items = check_splits(sink(), &s);
        assert_eq!(names(&items), ["output-before-protocol"]);
        assert_eq!(
            violation(&items, Name::OutputBeforeProtocol).detail,
            Detail::Text(text.to_vec())
        );
    }
    // Text as the sink's first reply: response() reads it as an error message.
    let s = vec![seg(In, b"Welcome\n\0"), seg(Out, b"")];
    let items = check_splits(source(), &vec![seg(In, b"Welcome\n"), seg(In, b"\0")]);
    let _ = s;
    assert_eq!(names(&items), ["output-before-protocol"]);
    let f = frames(&items);
    assert_eq!(
        f[0],
        (In, b"Welcome\n".to_vec(), Msg::BadReply(b"Welcome\n".to_vec()))
    );
    // Nobody reads the \0 after it: the source has exited.
    assert_eq!(f[1], (In, b"\0".to_vec(), Msg::Text));
}

#[test]
fn lints_openssh_accepts() {
    let s = vec![
        seg(Out, b"\0"),
        seg(In, b"C0644 1 a\0b\n"),
        seg(Out, b"\0"),
        seg(In, b"x\0"),
        seg(Out, b"\0"),
    ];
    assert_eq!(names(&check_splits(sink(), &s)), ["bad-name"]);
    let long = [b"C0644 0 ".as_slice(), &[b'n'; 1100], b"\n"].concat();
    let s = vec![
        seg(Out, b"\0"),
        seg(In, &long),
        seg(Out, b"\0"),
        seg(In, b"\0"),
        seg(Out, b"\0"),
    ];
    assert_eq!(names(&check_splits(sink(), &s)), ["name-too-long"]);
    let s = vec![
        seg(Out, b"\0"),
        seg(In, b"D0755 0 d\n"),
        seg(Out, b"\0"),
        seg(In, b"E d\n"),
        seg(Out, b"\0"),
    ];
    assert_eq!(names(&check_splits(sink_r(), &s)), ["bad-end"]);
}

#[test]
fn unbalanced_end_ends_the_session() {
    let s = vec![
        seg(Out, b"\0"),
        seg(In, b"E\n"),
        seg(Out, b"\0"),
        seg(In, b"C0644 1 a\n"),
    ];
    let items = check_splits(sink_r(), &s);
    assert_eq!(names(&items), ["unbalanced-end"]);
    assert!(notes(&items).contains(&(b"C0644 1 a\n".to_vec(), Note::Unread(Ended::SinkReturned))));
}

#[test]
fn unclosed_dirs_and_times_without_file() {
    let s = vec![seg(Out, b"\0"), seg(In, b"D0755 0 d\n"), seg(Out, b"\0")];
    let items = check_splits(sink_r(), &s);
    assert_eq!(names(&items), ["unclosed-dirs"]);
    assert_eq!(
        violation(&items, Name::UnclosedDirs).detail,
        Detail::UnclosedDirs {
            depth: 1,
            names: vec![Some(b"d".to_vec())]
        }
    );
    let s = vec![
        seg(Out, b"\0"),
        seg(In, b"T1 0 1 0\n"),
        seg(Out, b"\0"),
        seg(In, b"T1 0 1 0\n"),
        seg(Out, b"\0"),
    ];
    assert_eq!(
        names(&check_splits(sink(), &s)),
        ["times-without-file", "times-without-file"]
    );
    // A refused T's times do not stand: no times-without-file for them.
    let s = vec![
        seg(In, b"\0"),
        seg(Out, b"T1 0 1 0\n"),
        seg(In, b"\x01scp: no\n"),
        seg(Out, b"E\n"),
    ];
    assert!(!names(&run(source_r(), &s)).contains(&"times-without-file"));
}

#[test]
fn data_short_and_missing_end() {
    let s = vec![
        seg(Out, b"\0"),
        seg(In, b"C0644 5 a\n"),
        seg(Out, b"\0"),
        seg(In, b"ab"),
    ];
    let items = check_splits(sink(), &s);
    assert_eq!(names(&items), ["data-short"]);
    assert!(frames(&items).iter().any(|(_, b, m)| b == b"ab"
        && matches!(
            m,
            Msg::Data {
                complete: false,
                seen: 2,
                ..
            }
        )));
    let s = vec![
        seg(Out, b"\0"),
        seg(In, b"C0644 2 a\n"),
        seg(Out, b"\0"),
        seg(In, b"ab"),
    ];
    assert_eq!(names(&check_splits(sink(), &s)), ["missing-data-end"]);
    // libssh2: the next record right after the data. response() reads it as
    // an error message and the sink exits.
    let s = vec![
        seg(Out, b"\0"),
        seg(In, b"C0644 2 a\n"),
        seg(Out, b"\0"),
        seg(In, b"abC0644 1 b\nx"),
    ];
    let items = check_splits(sink(), &s);
    assert_eq!(names(&items), ["missing-data-end"]);
    assert_eq!(
        violation(&items, Name::MissingDataEnd).detail,
        Detail::MissingDataEnd {
            name: b"a".to_vec(),
            byte: Some(b'C')
        }
    );
    assert!(notes(&items).contains(&(b"x".to_vec(), Note::Unread(Ended::SinkBadEnd))));
}

#[test]
fn line_limits_follow_the_readers_buffers() {
    // sink() keeps 2047 bytes of a line; the rest is read as the next line:
    // one line-too-long, the rest only noted.
    let long = [b"C0644 1 ".as_slice(), &[b'n'; 3000], b"\n"].concat();
    let s = vec![
        seg(Out, b"\0"),
        seg(In, &long),
        seg(Out, b"\x01scp: name too long\n"),
    ];
    let items = check_splits(sink(), &s);
    assert_eq!(names(&items), ["line-too-long"]);
    let f = frames(&items);
    assert_eq!(f[1].1.len(), LINE_MAX);
    assert!(notes(&items).iter().any(|(_, n)| *n == Note::LineRest));
    // A line cut by EOF.
    let s = vec![seg(Out, b"\0"), seg(In, b"C0644 1 a")];
    let items = check_splits(sink(), &s);
    assert_eq!(names(&items), ["line-without-newline"]);
    assert_eq!(
        frames(&items)[1].2,
        Msg::BadRecord {
            why: Refusal::LostConnection
        }
    );
}

#[test]
fn missing_and_unexpected_replies_only_when_nothing_explains_them() {
    // libssh2's download: no final ack.
    let s = vec![
        seg(In, b"\0"),
        seg(Out, b"C0644 1 a\n"),
        seg(In, b"\0"),
        seg(Out, b"x\0"),
    ];
    let items = check_splits(source(), &s);
    assert_eq!(names(&items), ["missing-reply"]);
    assert_eq!(
        violation(&items, Name::MissingReply).detail,
        Detail::Unpaired {
            count: 1,
            first: Some(Awaited::DataEnd(b"a".to_vec()))
        }
    );
    // After a data-short, the missing ack is a consequence.
    let s = vec![
        seg(Out, b"\0"),
        seg(In, b"C0644 5 a\n"),
        seg(Out, b"\0"),
        seg(In, b"ab"),
    ];
    assert_eq!(names(&run(sink(), &s)), ["data-short"]);
    // A reply after the source is gone says so ("lost connection").
    let mut h = Harness::new(sink());
    h.feed(Out, b"\0");
    h.feed(In, b"C0644 1 a\n");
    h.eof(In);
    h.feed(Out, b"\x01scp: lost connection\n");
    h.eof(Out);
    let items = h.finish();
    assert_eq!(names(&items), Vec::<&str>::new());
}

#[test]
fn record_instead_of_ack_and_bad_ack() {
    let s = vec![seg(Out, b"\0"), seg(In, b"C0644 1 a\n"), seg(Out, b"C0644 1 a\n")];
    let items = check_splits(sink(), &s);
    assert_eq!(names(&items), ["record-instead-of-ack"]);
    let s = vec![seg(In, b"\0"), seg(Out, b"C0644 1 a\n"), seg(In, b"!!!!\n")];
    let items = check_splits(source(), &s);
    assert_eq!(names(&items), ["bad-ack"]);
}

#[test]
fn source_warning_in_place_of_a_record_needs_no_reply() {
    let items = check_splits(source(), &download());
    assert_eq!(names(&items), Vec::<&str>::new());
}

#[test]
fn bytes_after_own_fatal() {
    let s = vec![seg(Out, b"\0"), seg(In, b"\x02bye\nmore\n")];
    let items = check_splits(sink(), &s);
    assert_eq!(names(&items), ["bytes-after-end"]);
}

#[test]
fn ack_instead_of_record() {
    // A source's "\0\n" where a record belongs: sink() reads it as one line.
    let s = vec![
        seg(Out, b"\0"),
        seg(In, b"\0\n"),
        seg(Out, b"\x01scp: protocol error: expected control record\n"),
    ];
    let items = check_splits(sink(), &s);
    assert_eq!(names(&items), ["ack-instead-of-record"]);
    assert_eq!(frames(&items)[1].1, b"\0\n");
}

#[test]
fn refused_dir_is_not_entered_and_times_are_per_reply() {
    let s = vec![
        seg(Out, b"\0"),
        seg(In, b"D0755 0 d\n"),
        seg(Out, b"\x01scp: d: Permission denied\n"),
        seg(In, b"C0644 1 a\n"),
        seg(Out, b"\0"),
        seg(In, b"x\0"),
        seg(Out, b"\0"),
    ];
    let items = check_splits(sink_r(), &s);
    assert_eq!(names(&items), Vec::<&str>::new());
}

#[test]
fn big_sizes_are_normal() {
    // 5 GiB, passed by `skip` as splice would: counted, never buffered.
    let size = 5u64 << 30;
    let rec = format!("C0644 {size} big\n");
    let mut d = Decoder::new(sink());
    let mut ev = Vec::new();
    d.feed(Out, b"\0", &mut ev);
    d.feed(In, rec.as_bytes(), &mut ev);
    d.feed(Out, b"\0", &mut ev);
    assert_eq!(d.data_remaining(In), size);
    d.feed(In, b"abc", &mut ev);
    d.skip(In, size - 6, &mut ev);
    d.feed(In, b"xyz\0", &mut ev);
    d.feed(Out, b"\0", &mut ev);
    d.finish(&mut ev);
    let data_end = rec.len() as u64 + size;
    assert!(ev.contains(&Event::Frame(Frame {
        dir: In,
        end: data_end,
        msg: Msg::Data {
            name: b"big".to_vec(),
            size,
            seen: size,
            complete: true
        },
        note: None
    })));
    assert!(!ev.iter().any(|e| matches!(e, Event::Violation(_))), "{ev:?}");
}

// ---- bounds ------------------------------------------------------------------------

#[test]
fn hold_is_bounded_and_taken_as_accepted() {
    // A source that never waits and a sink that never answers: past the hold
    // cap the file is taken as accepted and its data framed as data.
    let mut h = Harness::new(sink());
    h.feed(Out, b"\0");
    let size = 10 * HOLD_CAP;
    h.feed(In, format!("C0644 {size} a\n").as_bytes());
    for _ in 0..size / 4096 {
        h.feed(In, &[b'x'; 4096]);
        assert!(h.dec.buffered_bytes() <= 2 * HOLD_CAP + 64 * 1024);
    }
    h.feed(In, b"\0");
    h.eof(In);
    h.feed(Out, b"\0\0");
    h.eof(Out);
    let items = h.finish();
    assert!(
        frames(&items)
            .iter()
            .any(|(_, _, m)| matches!(m, Msg::Data { complete: true, .. }))
    );
    assert_eq!(names(&items), ["data-before-ack"]);
}

#[test]
fn garbage_and_pipelines_stay_bounded() {
    let mut h = Harness::new(sink_r());
    for i in 0..20_000u32 {
        h.feed(In, format!("D0755 0 d{i}\n").as_bytes());
        h.feed(Out, b"\0\0\0");
        if i % 1000 == 0 {
            assert!(h.dec.buffered_bytes() < 4 << 20, "{}", h.dec.buffered_bytes());
        }
    }
    let _ = h.finish();
    let mut h = Harness::new(source());
    let junk: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    h.feed(In, &junk);
    h.feed(Out, &junk);
    assert!(h.dec.buffered_bytes() < 1 << 20);
    let _ = h.finish();
}

#[test]
fn name_problems_carry_the_name() {
    let s = upload(&[b"C0644 1 a/b\n"]);
    let items = run(sink(), &s);
    assert_eq!(
        violation(&items, Name::NameSlash).detail,
        Detail::Name {
            problem: NameProblem::Slash,
            name: b"a/b".to_vec()
        }
    );
}

// ---- property tests ------------------------------------------------------------------

mod props {
    use super::*;
    use proptest::prelude::*;

    fn chunk() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            Just(b"C0644 3 a\n".to_vec()),
            Just(b"D0755 0 d\n".to_vec()),
            Just(b"E\n".to_vec()),
            Just(b"T1 0 1 0\n".to_vec()),
            Just(b"\0".to_vec()),
            Just(b"\x01warn\n".to_vec()),
            Just(b"\x02fatal\n".to_vec()),
            Just(b"abc".to_vec()),
        ]
    }

    fn options() -> impl Strategy<Value = Options> {
        (any::<bool>(), any::<bool>()).prop_map(|(t, r)| opts(if t { Role::Sink } else { Role::Source }, r))
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_breaks_the_contract(
            o in options(),
            ops in proptest::collection::vec((any::<bool>(), chunk()), 0..60),
            eof_first in any::<bool>(),
        ) {
            let mut h = Harness::new(o);
            for (d, b) in &ops {
                h.feed(if *d { In } else { Out }, b);
            }
            if eof_first { h.eof(In); }
            let _ = h.finish();
        }

        #[test]
        fn splitting_never_matters(
            o in options(),
            ops in proptest::collection::vec((any::<bool>(), chunk()), 0..30),
            cut in 1usize..7,
        ) {
            let s: Session = ops.iter().map(|(d, b)| (if *d { In } else { Out }, b.clone())).collect();
            let whole = run(o, &s);
            prop_assert_eq!(run_chunked(o, &s, |len| vec![cut; len.div_ceil(cut)]), whole);
        }

        #[test]
        fn interleaving_never_changes_frames_of_a_real_session(
            which in 0usize..5,
            cuts in proptest::collection::vec(1usize..20, 1..8),
            order in proptest::collection::vec(any::<bool>(), 1..8),
        ) {
            let (o, s) = [
                (sink(), upload_two()),
                (sink_r(), tree_rp()),
                (source(), download()),
                (source_r(), download_tree()),
                (sink(), error_replies()),
            ][which].clone();
            let want = frames(&run(o, &s));
            let got = frames(&interleaved(o, &s, &cuts, &order));
            for d in [In, Out] {
                let a: Vec<_> = got.iter().filter(|f| f.0 == d).collect();
                let b: Vec<_> = want.iter().filter(|f| f.0 == d).collect();
                prop_assert_eq!(a, b);
            }
        }
    }
}
