//! The sans-IO SCP decoder (design §4). Placeholder until the decoder lands:
//! it recognises nothing, so every transcript is framed per read.

use super::{Dir, Options};

/// See the module docs.
pub struct Decoder {
    #[allow(dead_code)]
    opts: Options,
}

/// What the decoder reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {}

impl Decoder {
    pub fn new(opts: Options) -> Self {
        Decoder { opts }
    }

    pub fn feed(&mut self, _dir: Dir, _input: &[u8], _out: &mut Vec<Event>) {}
}
