//! `scptrace check`: list the protocol violations in saved transcripts, for
//! scripts and CI: exit 1 if there are any, 0 if none, 2 if a file cannot be
//! read or is malformed.
//!
//! A transcript recorded per message already holds the decoder's verdict as
//! `!! name: sentence` lines. One recorded with `--framing raw` holds only
//! bytes: it is decoded again ([`Redecoder`]), exactly as the tracer would
//! have decoded it live, so raw transcripts (including the seed logger's) can
//! be checked.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;

use super::cli::CheckArgs;
use crate::protocol::scp;
use crate::transcript::Entry;
use crate::transcript::parse::violation_name;
use crate::transcript::read::{ReadError, clean, display_name, read_transcript};
use crate::transcript::redecode::Redecoder;

/// The violations of one transcript, as `name: sentence` texts, in order.
pub fn violations(path: &Path) -> Result<Vec<String>, ReadError> {
    let mut recorded = Vec::new();
    let mut decoded = Vec::new();
    let mut redecoder: Option<Redecoder> = None;
    let mut seen_invocation = false;
    let collect = |evs: &[scp::Event], into: &mut Vec<String>| {
        for e in evs {
            if let scp::Event::Violation { v, .. } = e {
                into.push(format!("{}: {}", v.name, v.text));
            }
        }
    };
    read_transcript(path, |p| {
        match &p.event.entry {
            Entry::Invocation(text) if !seen_invocation => {
                seen_invocation = true;
                redecoder = Redecoder::for_invocation(text);
            }
            Entry::Problem(text) if violation_name(text).is_some() => recorded.push(text.clone()),
            _ => {}
        }
        if let Some(r) = redecoder.as_mut() {
            collect(r.event(&p.event.entry), &mut decoded);
        }
        Ok(())
    })?;
    match redecoder {
        Some(mut r) => {
            collect(r.finish(), &mut decoded);
            Ok(if r.applies() { decoded } else { recorded })
        }
        None => Ok(recorded),
    }
}

pub fn run(args: CheckArgs) -> Result<i32> {
    let st = super::stdout_styles(args.color);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut status = 0;
    for path in &args.files {
        match violations(path) {
            Ok(list) => {
                for v in &list {
                    let name = violation_name(v).unwrap_or_default();
                    let line = format!(
                        "{} {}{}{}\n",
                        st.label.style(clean(&format!("{}:", display_name(path)))),
                        st.problem.style("!! "),
                        st.violation.style(name),
                        st.problem.style(clean(&v[name.len()..])),
                    );
                    match out.write_all(line.as_bytes()) {
                        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(1),
                        Err(e) => {
                            eprintln!("scptrace: writing output: {e}");
                            return Ok(2);
                        }
                        Ok(()) => {}
                    }
                }
                if !list.is_empty() && status == 0 {
                    status = 1;
                }
            }
            Err(e) => {
                e.report(path);
                status = 2;
            }
        }
    }
    Ok(status)
}
