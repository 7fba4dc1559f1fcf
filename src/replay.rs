//! `scptrace replay`: speak a transcript's I: side to a fresh real scp and report where the replies differ. (Not yet implemented.)

#![allow(unused_imports)]

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

/// Speak a transcript's I: side to a fresh real scp and report where the replies differ
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The transcript to replay
    pub file: PathBuf,
}

pub fn run(_args: ReplayArgs) -> Result<i32> {
    bail!("`scptrace replay` is not implemented yet")
}
