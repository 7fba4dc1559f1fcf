//! `scptrace show`: render saved transcripts: colour, filters, text or JSON Lines, summaries. (Not yet implemented.)

#![allow(unused_imports)]

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

/// Render saved transcripts: colour, filters, text or JSON Lines, summaries
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Transcript files
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(_args: ShowArgs) -> Result<i32> {
    bail!("`scptrace show` is not implemented yet")
}
