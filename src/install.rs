//! `scptrace install`: put the scp stand-in in place on this machine. (Not yet implemented.)

#![allow(unused_imports)]

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

/// Put the scp stand-in in place on this machine
#[derive(Debug, Args)]
pub struct InstallArgs {}

/// Undo exactly what `install` did
#[derive(Debug, Args)]
pub struct UninstallArgs {}

/// Explain what a non-interactive ssh session on this machine runs as `scp`
#[derive(Debug, Args)]
pub struct DoctorArgs {}

pub fn uninstall(_args: UninstallArgs) -> Result<i32> {
    bail!("`scptrace uninstall` is not implemented yet")
}

pub fn doctor(_args: DoctorArgs) -> Result<i32> {
    bail!("`scptrace doctor` is not implemented yet")
}

pub fn run(_args: InstallArgs) -> Result<i32> {
    bail!("`scptrace install` is not implemented yet")
}
