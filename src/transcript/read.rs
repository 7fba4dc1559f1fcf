//! Reading a saved transcript back: the one reader that `show`, `check` and
//! `replay` share. Text or JSON Lines (told apart once, by the first
//! non-empty line), streamed line by line, so a transcript recorded with
//! `--data full` is never held in memory whole. The only I/O of its own is
//! opening the file named (or standard input).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use super::jsonl;
use super::parse::{ParseError, Parsed, Parser};
use super::repair::Repairs;
use crate::escape::escape_text;

/// Why a transcript could not be read to its end.
#[derive(Debug)]
pub enum ReadError {
    /// Opening or reading the file failed.
    Io(io::Error),
    /// A line is malformed.
    Parse(ParseError),
    /// Writing what was read failed (e.g. a closed pipe): stop everything.
    Output(io::Error),
}

impl ReadError {
    /// Prints the error as `scptrace: FILE[:LINE]: reason`, escaped for the
    /// terminal (the file name and the reason, which may quote the line,
    /// come from outside).
    pub fn report(&self, path: &Path) {
        let path = display_name(path);
        let msg = match self {
            ReadError::Io(e) => format!("{path}: {}", crate::errtext::io(e)),
            ReadError::Parse(e) => format!("{path}:{}: {}", e.line, e.reason),
            ReadError::Output(e) => format!("writing output: {}", crate::errtext::io(e)),
        };
        eprintln!("scptrace: {}", escape_text(&msg));
    }
}

/// Says on stderr, once per file, what reading it had to repair:
/// `scptrace: FILE: note: repaired on reading: …` (nothing when nothing was).
pub fn report_repairs(path: &Path, repairs: &Repairs) {
    if let Some(note) = repairs.note() {
        eprintln!(
            "scptrace: {}",
            escape_text(&format!("{}: note: {note}", display_name(path)))
        );
    }
}

/// `-` stands for standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How a transcript file is named in messages.
pub fn display_name(path: &Path) -> String {
    if is_stdin(path) {
        "(standard input)".to_string()
    } else {
        path.display().to_string()
    }
}

/// Reads a transcript file (`-`: standard input), text or JSON Lines, calling `each` for every event
/// in order. JSON Lines is recognised by a first non-empty line starting
/// with `{`. An error from `each` is an output error. Returns what had to
/// be repaired (a pasted copy's CR LF, spaces for TABs).
pub fn read_transcript(
    path: &Path,
    mut each: impl FnMut(Parsed) -> io::Result<()>,
) -> Result<Repairs, ReadError> {
    read_transcript_numbered(path, |_, p| each(p))
}

/// [`read_transcript`], giving `each` the line number of every event too.
pub fn read_transcript_numbered(
    path: &Path,
    mut each: impl FnMut(u64, Parsed) -> io::Result<()>,
) -> Result<Repairs, ReadError> {
    let input: Box<dyn Read> = if is_stdin(path) {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path).map_err(ReadError::Io)?)
    };
    let mut r = Reader::new(input);
    while let Some(line) = r.next_line()? {
        each(line.no, line.parsed).map_err(ReadError::Output)?;
    }
    Ok(r.repairs())
}

/// One event read, with the number of its line in the file (from 1).
#[derive(Debug)]
pub struct Line {
    pub no: u64,
    pub parsed: Parsed,
}

/// The reader itself, for a caller that pulls one event at a time (replay
/// acts on each line before it reads the next). Reads any `io::Read`, so a
/// caller can read the same open file more than once.
pub struct Reader<R: Read> {
    r: BufReader<R>,
    buf: Vec<u8>,
    text: Parser,
    json: Option<bool>,
    no: u64,
    max_line: Option<usize>,
    /// JSON Lines lines that ended in CR LF.
    json_crlf: u64,
}

impl<R: Read> Reader<R> {
    pub fn new(input: R) -> Self {
        Reader {
            r: BufReader::with_capacity(64 * 1024, input),
            buf: Vec::with_capacity(256),
            text: Parser::new(),
            json: None,
            no: 0,
            max_line: None,
            json_crlf: 0,
        }
    }

    /// Refuses lines longer than `max` bytes (a parse error) instead of
    /// holding them: memory stays bounded whatever the input.
    pub fn with_max_line(mut self, max: usize) -> Self {
        self.max_line = Some(max);
        self
    }

    /// The next event, `None` at the end of the input.
    pub fn next_line(&mut self) -> Result<Option<Line>, ReadError> {
        loop {
            self.buf.clear();
            let limit = self.max_line.map_or(u64::MAX, |m| m as u64 + 1);
            if (&mut self.r)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
                .map_err(ReadError::Io)?
                == 0
            {
                return Ok(None);
            }
            self.no += 1;
            if let Some(max) = self.max_line
                && self.buf.len() > max
            {
                return Err(ReadError::Parse(ParseError {
                    line: self.no,
                    reason: format!("a line longer than {max} bytes: scptrace never writes one"),
                }));
            }
            let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
            if self.json.is_none() && !line.is_empty() && line != b"\r" {
                self.json = Some(line[0] == b'{');
            }
            // The text parser sees every line, blank ones included, so its line
            // numbers are the file's.
            let parsed = if self.json == Some(true) {
                let line = match line.strip_suffix(b"\r") {
                    Some(l) => {
                        self.json_crlf += 1;
                        l
                    }
                    None => line,
                };
                if line.is_empty() {
                    continue;
                }
                jsonl::parse_line(line).map(Some).map_err(|reason| ParseError {
                    line: self.no,
                    reason,
                })
            } else {
                self.text.next_line(line)
            };
            if let Some(parsed) = parsed.map_err(ReadError::Parse)? {
                return Ok(Some(Line { no: self.no, parsed }));
            }
        }
    }

    /// What had to be repaired in the lines read so far
    /// ([`Repairs::note`] says it in words).
    pub fn repairs(&self) -> Repairs {
        let mut r = self.text.repairs();
        r.crlf += self.json_crlf;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_numbers_lines_and_bounds_them() {
        let text = b"# k: v\n>>> New command invocation: scp -t x\n\nO: \\0\n#: 0\n";
        let mut r = Reader::new(&text[..]);
        let mut nos = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            nos.push(l.no);
        }
        assert_eq!(nos, [1, 2, 4, 5]);
        let long = format!("O: {}\n", "a".repeat(100));
        let mut r = Reader::new(long.as_bytes()).with_max_line(50);
        assert!(matches!(
            r.next_line(),
            Err(ReadError::Parse(ParseError { line: 1, .. }))
        ));
        let mut r = Reader::new(long.as_bytes()).with_max_line(200);
        assert!(r.next_line().unwrap().is_some());
    }
}
