//! The protocols scptrace decodes, as pure state machines: bytes in, typed
//! messages and violations out, no I/O, no clock. Nothing here knows how a
//! transcript renders them (that is `transcript::annotate`).

pub mod scp;

/// A direction of the conversation, named from the traced program's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// The peer's bytes, arriving on the program's stdin (`I:`).
    In,
    /// The program's bytes, leaving on its stdout (`O:`).
    Out,
}
