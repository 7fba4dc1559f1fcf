//! `scptrace check`: decode transcripts and list protocol violations; exit 1 if any. (Not yet implemented.)

#![allow(unused_imports)]

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

/// Decode transcripts and list protocol violations; exit 1 if any
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Transcript files
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(_args: CheckArgs) -> Result<i32> {
    bail!("`scptrace check` is not implemented yet")
}
