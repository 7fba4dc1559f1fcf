//! `scptrace record`: trace the client side: run a local scp with scptrace as its ssh program. (Not yet implemented.)

#![allow(unused_imports)]

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

/// Trace the client side: run a local scp with scptrace as its ssh program
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The scp command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

pub fn run(_args: RecordArgs) -> Result<i32> {
    bail!("`scptrace record` is not implemented yet")
}
