//! scptrace as a library: the pure parts (escaping, the SCP decoder, the
//! transcript formats) and the I/O around them (relay, child, log files), so
//! that tests, fuzz targets and benchmarks reach them directly. `main.rs` only
//! dispatches.

pub mod check;
pub mod child;
pub mod cli;
pub mod config;
pub mod escape;
pub mod forced;
pub mod generate;
pub mod install;
pub mod logdir;
pub mod protocol;
pub mod record;
pub mod relay;
pub mod replay;
pub mod scp;
pub mod session;
pub mod show;
pub mod standin;
pub mod style;
pub mod trace;
pub mod transcript;
pub mod utc;
pub mod warn;
