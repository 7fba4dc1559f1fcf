//! scptrace as a library, in layers (docs/architecture.md): the commands on
//! top (`cmd`), the tap and the install machinery in the middle (`tap`,
//! `deploy`), the transcript format below them, the pure protocol below that,
//! and small leaf modules at the bottom. Tests, fuzz targets and benchmarks
//! reach every layer directly; `main.rs` only dispatches.

// The top layer: one module per subcommand, and the clap definition.
pub mod cmd;

// The middle layer: the I/O around the pure parts.
pub mod deploy;
pub mod tap;

// The transcript format: events, writers, readers.
pub mod transcript;

// The pure protocol: no I/O at all.
pub mod protocol;

// Leaves: used by every layer, using only each other.
pub mod config;
pub mod errtext;
pub mod escape;
pub mod fdio;
pub mod passwd;
pub mod paths;
pub mod shell;
pub mod style;
pub mod utc;
pub mod warn;
