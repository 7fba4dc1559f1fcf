//! Reading a transcript for replay, one line at a time, as often as replay
//! needs to (it reads the file once to plan, once more to re-create a
//! download's source, and once to replay). Memory is bounded by the longest
//! line accepted, [`MAX_LINE`], whatever the size of the file.
//!
//! Text and JSON Lines are told apart by the first non-empty line (`{` starts
//! JSON Lines), as `show` does; the lines themselves are parsed by the
//! transcript module's parsers.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::Path;

use crate::transcript::parse::Parser;
use crate::transcript::{Event, jsonl};

/// The longest line read. scptrace writes at most 64 KiB of bytes per line
/// (256 KiB escaped; a little more in JSON Lines, with its annotation);
/// anything longer is not one of its transcripts.
pub const MAX_LINE: usize = 1024 * 1024;

/// One event and the number of its line in the file (1-based).
#[derive(Debug)]
pub struct Line {
    pub no: u64,
    pub event: Event,
}

/// Why a transcript could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// Line `line` is not a transcript line; `reason` says why.
    Parse {
        line: u64,
        reason: String,
    },
}

/// An open transcript; each [`Transcript::lines`] reads it from the start.
/// The file stays open between passes, so every pass reads the same file.
pub struct Transcript {
    file: File,
}

impl Transcript {
    pub fn open(path: &Path) -> io::Result<Transcript> {
        let file = File::open(path)?;
        if file.metadata()?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory"));
        }
        Ok(Transcript { file })
    }

    /// A reader from the first line.
    pub fn lines(&self) -> io::Result<Lines<'_>> {
        let mut f = &self.file;
        f.rewind()?;
        Ok(Lines {
            r: BufReader::with_capacity(64 * 1024, f),
            buf: Vec::with_capacity(4096),
            text: Parser::new(),
            json: None,
            no: 0,
        })
    }
}

/// The lines of a transcript, in order.
pub struct Lines<'a> {
    r: BufReader<&'a File>,
    buf: Vec<u8>,
    text: Parser,
    json: Option<bool>,
    no: u64,
}

impl Lines<'_> {
    /// The next event, `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<Line>, ReadError> {
        loop {
            self.buf.clear();
            let n = (&mut self.r)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(ReadError::Io)?;
            if n == 0 {
                return Ok(None);
            }
            self.no += 1;
            if self.buf.len() > MAX_LINE {
                return Err(ReadError::Parse {
                    line: self.no,
                    reason: format!(
                        "longer than {} KiB: scptrace never writes such a line",
                        MAX_LINE / 1024
                    ),
                });
            }
            let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
            if self.json.is_none() && !line.is_empty() {
                self.json = Some(line[0] == b'{');
            }
            let parsed = if self.json == Some(true) {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                jsonl::parse_line(line)
                    .map(Some)
                    .map_err(|reason| ReadError::Parse {
                        line: self.no,
                        reason,
                    })?
            } else {
                // The text parser sees every line, blank ones included, so
                // that its line numbers are the file's.
                self.text.next_line(line).map_err(|e| ReadError::Parse {
                    line: e.line,
                    reason: e.reason,
                })?
            };
            if let Some(p) = parsed {
                return Ok(Some(Line {
                    no: self.no,
                    event: p.event,
                }));
            }
        }
    }
}
