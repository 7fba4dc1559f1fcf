//! The files of a session, for `show --summary`'s per-file table: built from
//! the decoder's events (a transcript decoded again), never from
//! annotations. SCP: one row per `C` record, its path within the transfer
//! (the `D` records around it), the data seen and the sink's answer. SFTP: one
//! row per OPEN, the bytes written and read through its handle, its requests
//! by type and its errors, until its CLOSE is answered.

use std::collections::BTreeMap;

use crate::escape::escape;
use crate::protocol::sftp::{self, Op, ReplyBody, ReqBody};
use crate::protocol::{Dir, Event, Msg, scp};

/// How a file's transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// SCP: the sink acknowledged the file's end. SFTP: its CLOSE succeeded.
    Done,
    /// SCP: the sink answered the record or the data with a warning or an
    /// error (its text, escaped). SFTP: a request on it failed (the first
    /// error).
    Refused(String),
    /// The session ended before the file did.
    Incomplete,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    /// The direction the contents went: `Dir::In` to the traced program
    /// (an upload to a server), `Dir::Out` from it.
    pub dir: Dir,
    /// The path within the transfer (SCP: inside the directories sent;
    /// SFTP: as opened), escaped.
    pub name: String,
    pub mode: Option<u32>,
    /// SCP: the size the record announced.
    pub size: Option<u64>,
    /// Bytes of contents that passed: SCP the data seen; SFTP written + read.
    pub seen: u64,
    pub outcome: Outcome,
    /// Seconds from the file's end (SCP: its `\0`; SFTP: its CLOSE) to the
    /// answer, when the transcript has timestamps.
    pub latency: Option<f64>,
    /// SFTP: requests on it by type.
    pub requests: BTreeMap<&'static str, u64>,
}

/// Where an SCP file is in its exchange.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// The record was sent; its answer is awaited.
    Record,
    /// Accepted: data is passing.
    Data,
    /// Its `\0` was sent at this time; the answer is awaited.
    End(Option<f64>),
}

/// Builds the table from decoder events, in transcript order.
#[derive(Debug, Default)]
pub struct Files {
    pub rows: Vec<FileRow>,
    /// SCP: the directories the source is in.
    dirs: Vec<String>,
    /// SCP: the row in exchange and where it is.
    open: Option<(usize, Phase)>,
    /// SFTP: OPEN requests awaiting their HANDLE (by request seq), and rows by handle.
    opening: BTreeMap<u64, usize>,
    handles: BTreeMap<Vec<u8>, usize>,
    /// SFTP: CLOSE requests by seq: the row and the request's time.
    closing: BTreeMap<u64, (usize, Option<f64>)>,
}

impl Files {
    /// One decoder event, seen on a line recorded at `t` (if timestamped).
    pub fn event(&mut self, t: Option<f64>, ev: &Event) {
        self.event_row(t, ev);
    }

    /// As [`Files::event`], and says which row the event is about (a file's
    /// record, data or end, a request on it or a reply to one), for
    /// `show --file`.
    pub fn event_row(&mut self, t: Option<f64>, ev: &Event) -> Option<usize> {
        let Event::Frame { dir, msg, .. } = ev else {
            return None;
        };
        match msg {
            Msg::Scp(m) => {
                let before = self.open.map(|(i, _)| i);
                self.scp(t, *dir, m);
                let concerned = matches!(
                    m,
                    scp::Msg::File { .. } | scp::Msg::Data { .. } | scp::Msg::DataEnd { .. }
                ) || (matches!(m, scp::Msg::Ack | scp::Msg::Warning(_) | scp::Msg::Fatal(_))
                    && before.is_some_and(|i| self.rows[i].dir != *dir));
                if matches!(m, scp::Msg::File { .. }) {
                    Some(self.rows.len() - 1)
                } else if concerned {
                    before
                } else {
                    None
                }
            }
            Msg::Sftp(m) => self.sftp(t, m),
        }
    }

    fn scp(&mut self, t: Option<f64>, dir: Dir, m: &scp::Msg) {
        use scp::Msg as M;
        match m {
            M::Dir { name, .. } => self.dirs.push(escape(name)),
            M::EndDir { .. } => {
                self.dirs.pop();
            }
            M::File { mode, size, name } => {
                let mut path = self.dirs.join("/");
                if !path.is_empty() {
                    path.push('/');
                }
                path.push_str(&escape(name));
                self.rows.push(FileRow {
                    dir,
                    name: path,
                    mode: Some(*mode),
                    size: Some(*size),
                    seen: 0,
                    outcome: Outcome::Incomplete,
                    latency: None,
                    requests: BTreeMap::new(),
                });
                self.open = Some((self.rows.len() - 1, Phase::Record));
            }
            M::Data { seen, .. } => {
                if let Some((i, _)) = self.open {
                    self.rows[i].seen = *seen;
                }
            }
            M::DataEnd { .. } => {
                if let Some((i, _)) = self.open {
                    self.open = Some((i, Phase::End(t)));
                }
            }
            M::Ack | M::Warning(_) | M::Fatal(_) => {
                let Some((i, phase)) = self.open else { return };
                if self.rows[i].dir == dir {
                    return;
                }
                let refused = match m {
                    M::Warning(text) | M::Fatal(text) => Some(escape(text)),
                    _ => None,
                };
                match (phase, refused) {
                    (Phase::Record, None) => self.open = Some((i, Phase::Data)),
                    (Phase::End(sent), None) => {
                        self.rows[i].outcome = Outcome::Done;
                        self.rows[i].latency = sent.zip(t).map(|(a, b)| (b - a).max(0.0));
                        self.open = None;
                    }
                    (_, Some(text)) => {
                        self.rows[i].outcome = Outcome::Refused(text);
                        self.open = None;
                    }
                    (Phase::Data, None) => {}
                }
            }
            _ => {}
        }
    }

    fn sftp(&mut self, t: Option<f64>, m: &sftp::Msg) -> Option<usize> {
        match m {
            sftp::Msg::Request(r) => {
                let row = match &r.body {
                    ReqBody::Open { path, pflags, .. } => {
                        let dir = if pflags & sftp::pflags::WRITE != 0 {
                            Dir::In
                        } else {
                            Dir::Out
                        };
                        self.rows.push(FileRow {
                            dir,
                            name: escape(path),
                            mode: None,
                            size: None,
                            seen: 0,
                            outcome: Outcome::Incomplete,
                            latency: None,
                            requests: BTreeMap::new(),
                        });
                        let i = self.rows.len() - 1;
                        self.opening.insert(r.seq, i);
                        Some(i)
                    }
                    ReqBody::Write { handle, len, .. } => {
                        let i = self.handles.get(handle).copied();
                        if let Some(i) = i {
                            self.rows[i].seen += u64::from(*len);
                        }
                        i
                    }
                    ReqBody::Close { handle } => {
                        let i = self.handles.get(handle).copied();
                        if let Some(i) = i {
                            self.closing.insert(r.seq, (i, t));
                        }
                        i
                    }
                    ReqBody::Read { handle, .. }
                    | ReqBody::Fstat { handle, .. }
                    | ReqBody::Fsetstat { handle, .. } => self.handles.get(handle).copied(),
                    _ => None,
                };
                if let Some(i) = row {
                    *self.rows[i].requests.entry(r.body.op().as_str()).or_default() += 1;
                }
                row
            }
            sftp::Msg::Reply(r) => {
                let to = r.to.as_ref()?;
                let row = self
                    .opening
                    .remove(&to.seq)
                    .or_else(|| to.handle.as_ref().and_then(|h| self.handles.get(h).copied()));
                let i = row?;
                match &r.body {
                    ReplyBody::Handle { handle } if to.op == Op::Open => {
                        self.handles.insert(handle.clone(), i);
                    }
                    ReplyBody::Data { len } => self.rows[i].seen += u64::from(*len),
                    ReplyBody::Status { code, message, .. }
                        if *code > sftp::status::EOF && self.rows[i].outcome == Outcome::Incomplete =>
                    {
                        let what = crate::transcript::annotate::sftp::status_name(*code);
                        let msg = message.as_deref().map(escape).unwrap_or_default();
                        self.rows[i].outcome =
                            Outcome::Refused(format!("{what} {msg}").trim_end().to_string());
                    }
                    ReplyBody::Status { code, .. } if to.op == Op::Close && *code == sftp::status::OK => {
                        if let Some((_, sent)) = self.closing.remove(&to.seq) {
                            self.rows[i].latency = sent.zip(t).map(|(a, b)| (b - a).max(0.0));
                        }
                        if self.rows[i].outcome == Outcome::Incomplete {
                            self.rows[i].outcome = Outcome::Done;
                        }
                        if let Some(h) = &to.handle {
                            self.handles.remove(h);
                        }
                    }
                    _ => {}
                }
                Some(i)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Decoder, Protocol};

    fn table(proto: Protocol, steps: &[(Dir, &[u8])]) -> Vec<FileRow> {
        let mut d = Decoder::new(proto);
        let mut f = Files::default();
        let mut out = Vec::new();
        for (i, (dir, bytes)) in steps.iter().enumerate() {
            out.clear();
            d.feed(*dir, bytes, &mut out);
            for e in &out {
                f.event(Some(i as f64), e);
            }
        }
        out.clear();
        d.finish(&mut out);
        for e in &out {
            f.event(None, e);
        }
        f.rows
    }

    #[test]
    fn scp_files_with_paths_outcomes_and_latency() {
        let o = scp::Options::from_scp_args(&["-r", "-t", "/x"]).unwrap();
        let rows = table(
            Protocol::Scp(o),
            &[
                (Dir::Out, b"\0"),
                (Dir::In, b"D0755 0 d\n"),
                (Dir::Out, b"\0"),
                (Dir::In, b"C0644 3 a\n"),
                (Dir::Out, b"\0"),
                (Dir::In, b"abc\0"),
                (Dir::Out, b"\0"),
                (Dir::In, b"C0600 5 b\n"),
                (Dir::Out, b"\x01scp: b: Permission denied\n"),
                (Dir::In, b"E\n"),
                (Dir::Out, b"\0"),
                (Dir::In, b"C0644 9 c\n"),
                (Dir::Out, b"\0"),
                (Dir::In, b"xy"),
            ],
        );
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["d/a", "d/b", "c"]);
        assert_eq!(
            (rows[0].mode, rows[0].size, rows[0].seen),
            (Some(0o644), Some(3), 3)
        );
        assert_eq!(rows[0].outcome, Outcome::Done);
        assert_eq!(rows[0].latency, Some(1.0));
        assert_eq!(
            rows[1].outcome,
            Outcome::Refused("scp: b: Permission denied".into())
        );
        assert_eq!((rows[2].outcome.clone(), rows[2].seen), (Outcome::Incomplete, 2));
        assert!(rows.iter().all(|r| r.dir == Dir::In));
    }
}
