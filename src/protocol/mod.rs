//! The protocols scptrace decodes, each a pure, sans-IO state machine (design §4).

pub mod sftp;
