//! The tap: the I/O around the pure parts. Find the real scp, spawn it, relay
//! every byte between it and the peer, feed the decoder and the transcript
//! writer, and end the way the child ended.

pub mod child;
pub mod logdir;
pub mod logwriter;
pub mod relay;
pub mod session;
pub mod standin;
pub mod trace;
