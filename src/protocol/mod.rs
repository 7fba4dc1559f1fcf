//! The protocols scptrace decodes, as pure state machines: bytes in, typed
//! messages and violations out, no I/O, no clock. Nothing here knows how a
//! transcript renders them (that is `transcript::annotate`).

pub mod scp;
