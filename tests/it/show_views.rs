//! What protocol-trace users expect of `show` (issue 13): times as strace
//! shows them (`--time`), long lines cut at display time (`--width`), a
//! per-file table (`--summary`), one file's lines (`--file`), `ls` and
//! `@N`, and the pager. On transcripts of real transfers.

use std::fs;

use crate::show::{clean_upload, sandbox, scptrace, stderr, stdout, traced_upload_of};

/// `HH:MM:SS.UUUUUU` as microseconds since midnight.
fn micros_of_day(s: &str) -> i64 {
    let (hms, us) = s.split_once('.').unwrap();
    let v: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    assert_eq!((v.len(), us.len()), (3, 6), "{s}");
    ((v[0] * 60 + v[1]) * 60 + v[2]) * 1_000_000 + us.parse::<i64>().unwrap()
}

#[test]
fn time_absolute_relative_delta() {
    let d = sandbox();
    let log = clean_upload(d.path(), "t.log", &["--timestamps"]);
    let f = log.to_str().unwrap();
    let text = fs::read_to_string(&log).unwrap();
    let start = text
        .lines()
        .find_map(|l| l.strip_prefix("# start: "))
        .unwrap()
        .to_string();
    // The start header's time of day, in microseconds.
    let start_us = micros_of_day(start.split_once('T').unwrap().1.trim_end_matches('Z'));
    let rel = stdout(&scptrace(&["show", f], d.path()));
    assert_eq!(rel, text, "relative is the default: as recorded");
    assert_eq!(
        stdout(&scptrace(&["show", "--time", "relative", f], d.path())),
        text
    );
    let abs = stdout(&scptrace(&["show", "--time", "absolute", f], d.path()));
    let delta = stdout(&scptrace(&["show", "--time", "delta", f], d.path()));
    let (mut n, mut prev) = (0, 0i64);
    for ((r, a), dl) in rel.lines().zip(abs.lines()).zip(delta.lines()) {
        let Some(t) = r.strip_prefix('+') else {
            assert_eq!((r, r), (a, dl), "header lines carry no time");
            continue;
        };
        let (t, rest) = t.split_once(' ').unwrap();
        let (ts, tus) = t.split_once('.').unwrap();
        let t_us: i64 = ts.parse::<i64>().unwrap() * 1_000_000 + tus.parse::<i64>().unwrap();
        let (at, arest) = a.split_once(' ').unwrap();
        assert_eq!(arest, rest);
        assert_eq!(
            micros_of_day(at),
            (start_us + t_us) % 86_400_000_000,
            "{a} from {start} + {t}"
        );
        let (dt, drest) = dl.split_once(' ').unwrap();
        assert_eq!(drest, rest);
        let (ds, dus) = dt.strip_prefix('+').unwrap().split_once('.').unwrap();
        assert_eq!(
            ds.parse::<i64>().unwrap() * 1_000_000 + dus.parse::<i64>().unwrap(),
            t_us - prev,
            "{dl}"
        );
        prev = t_us;
        n += 1;
    }
    assert!(n >= 8, "{abs}");
    // --timestamps is a switch for show as for run; =off hides them.
    let on = stdout(&scptrace(&["show", "--timestamps", f], d.path()));
    assert_eq!(on, text);
    let off = stdout(&scptrace(&["show", "--timestamps=off", f], d.path()));
    assert!(!off.contains("\n+") && off.contains("\nO: \\0\t# ack\n"), "{off}");
    let o = scptrace(&["show", "--time", "sometimes", f], d.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn width_cuts_long_lines_at_display_time() {
    let d = sandbox();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let log = traced_upload_of(
        d.path(),
        "full.log",
        &["--data", "full"],
        b"C0644 200000 a\n",
        &data,
    );
    let f = log.to_str().unwrap();
    let text = fs::read_to_string(&log).unwrap();
    let longest = text.lines().map(str::len).max().unwrap();
    assert!(longest > 100_000, "{longest}");
    // To a pipe, nothing is cut unless asked.
    assert_eq!(stdout(&scptrace(&["show", f], d.path())), text);
    let cut = stdout(&scptrace(&["show", "--width", "100", f], d.path()));
    assert_eq!(cut.lines().count(), text.lines().count());
    let mut cuts = 0;
    for (c, t) in cut.lines().zip(text.lines()) {
        assert!(c.chars().count() <= 100 + 8, "{c}");
        if c == t {
            continue;
        }
        cuts += 1;
        // `I: HEAD… [+N chars]\t# NOTE`: the head is the original's start,
        // never cut inside an escape, and N says how much is missing.
        let (shown, note) = c.split_once('\t').unwrap();
        let (tb, tnote) = t.split_once('\t').unwrap();
        assert_eq!(note, tnote, "the annotation stays whole");
        let (head, more) = shown.split_once("… [+").unwrap();
        let n: usize = more
            .strip_suffix(" chars]")
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap();
        assert_eq!(head.len() + n, tb.len(), "{c}");
        assert!(tb.starts_with(head));
        let escaped = &head[3..];
        assert!(
            !crate::util::unescape(escaped).is_empty(),
            "the head is whole escapes: {escaped}"
        );
    }
    assert!(cuts >= 3, "{cut}");
    assert_eq!(stdout(&scptrace(&["show", "--width", "0", f], d.path())), text);
}
