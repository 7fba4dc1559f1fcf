//! The protocols scptrace decodes, as pure state machines: bytes in, typed
//! messages and violations out, no I/O, no clock. Nothing here knows how a
//! transcript renders them (that is `transcript::annotate`).

pub mod scp;
pub mod sftp;

/// A direction of the conversation, named from the traced program's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// The peer's bytes, arriving on the program's stdin (`I:`).
    In,
    /// The program's bytes, leaving on its stdout (`O:`).
    Out,
}

impl Dir {
    /// 0 for `In`, 1 for `Out`: an index into per-direction arrays.
    pub fn index(self) -> usize {
        match self {
            Dir::In => 0,
            Dir::Out => 1,
        }
    }
}
