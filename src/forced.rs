//! `scptrace forced`: run as an sshd ForceCommand / authorized_keys command=: trace legacy scp, run anything else untouched. (Not yet implemented.)

#![allow(unused_imports)]

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

/// Run as an sshd ForceCommand / authorized_keys command=: trace legacy scp, run anything else untouched
#[derive(Debug, Args)]
pub struct ForcedArgs {}

pub fn run(_args: ForcedArgs) -> Result<i32> {
    bail!("`scptrace forced` is not implemented yet")
}
