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

/// Which protocol a traced session speaks, and what its decoder needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The legacy SCP protocol, with the traced scp's options.
    Scp(scp::Options),
    /// SFTP v3: the traced program is an SFTP server.
    Sftp,
}

/// A message decoded by one of the decoders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Scp(scp::Msg),
    /// Boxed: an SFTP packet is five times an SCP message, and events are
    /// queued by the thousand in a burst.
    Sftp(Box<sftp::Msg>),
}

/// A violation found by one of the decoders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Scp(scp::Violation),
    Sftp(sftp::Violation),
}

impl Violation {
    /// The violation's stable name.
    pub fn name(&self) -> &'static str {
        match self {
            Violation::Scp(v) => v.name.as_str(),
            Violation::Sftp(v) => v.name.as_str(),
        }
    }
}

/// What either decoder reports, in one shape: a frame (with the SCP
/// decoder's note on a consequence), where file data starts inside the frame
/// being framed, or a violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Frame {
        dir: Dir,
        end: u64,
        msg: Msg,
        note: Option<scp::Note>,
    },
    DataStart {
        dir: Dir,
        at: u64,
        len: u64,
    },
    Violation(Violation),
}

/// The decoder of one session, whichever protocol it speaks. (One per
/// session, never moved around: the variants' sizes do not matter.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Decoder {
    Scp(scp::Decoder, Vec<scp::Event>),
    Sftp(sftp::Decoder, Vec<sftp::Event>),
}

impl Decoder {
    pub fn new(p: Protocol) -> Decoder {
        match p {
            Protocol::Scp(o) => Decoder::Scp(scp::Decoder::new(o), Vec::new()),
            Protocol::Sftp => Decoder::Sftp(sftp::Decoder::new(), Vec::new()),
        }
    }

    pub fn feed(&mut self, dir: Dir, bytes: &[u8], out: &mut Vec<Event>) {
        match self {
            Decoder::Scp(d, ev) => {
                d.feed(dir, bytes, ev);
                convert_scp(ev, out);
            }
            Decoder::Sftp(d, ev) => {
                d.feed(dir, bytes, ev);
                convert_sftp(ev, out);
            }
        }
    }

    pub fn skip(&mut self, dir: Dir, n: u64, out: &mut Vec<Event>) {
        match self {
            Decoder::Scp(d, ev) => {
                d.skip(dir, n, ev);
                convert_scp(ev, out);
            }
            Decoder::Sftp(d, ev) => {
                d.skip(dir, n, ev);
                convert_sftp(ev, out);
            }
        }
    }

    pub fn eof(&mut self, dir: Dir, out: &mut Vec<Event>) {
        match self {
            Decoder::Scp(d, ev) => {
                d.eof(dir, ev);
                convert_scp(ev, out);
            }
            Decoder::Sftp(d, ev) => {
                d.eof(dir, ev);
                convert_sftp(ev, out);
            }
        }
    }

    pub fn finish(&mut self, out: &mut Vec<Event>) {
        match self {
            Decoder::Scp(d, ev) => {
                d.finish(ev);
                convert_scp(ev, out);
            }
            Decoder::Sftp(d, ev) => {
                d.finish(ev);
                convert_sftp(ev, out);
            }
        }
    }

    /// File data the relay may move unseen in `dir` (see each decoder).
    pub fn data_remaining(&self, dir: Dir) -> u64 {
        match self {
            Decoder::Scp(d, _) => d.data_remaining(dir),
            Decoder::Sftp(d, _) => d.data_remaining(dir),
        }
    }

    /// Whether the SCP decoder holds the source's bytes for a reply.
    pub fn is_held(&self) -> bool {
        matches!(self, Decoder::Scp(d, _) if d.is_held())
    }
}

/// A scratch vector that a burst made large is given back (a read of many
/// small messages makes thousands of events at once).
fn trim<T>(v: &mut Vec<T>) {
    if v.capacity() > 1024 {
        *v = Vec::new();
    }
}

fn convert_scp(ev: &mut Vec<scp::Event>, out: &mut Vec<Event>) {
    out.extend(ev.drain(..).map(|e| match e {
        scp::Event::Frame(f) => Event::Frame {
            dir: f.dir,
            end: f.end,
            msg: Msg::Scp(f.msg),
            note: f.note,
        },
        scp::Event::DataStart { dir, at, size } => Event::DataStart { dir, at, len: size },
        scp::Event::Violation(v) => Event::Violation(Violation::Scp(v)),
    }));
    trim(ev);
}

fn convert_sftp(ev: &mut Vec<sftp::Event>, out: &mut Vec<Event>) {
    out.extend(ev.drain(..).map(|e| match e {
        sftp::Event::Frame { dir, end, msg } => Event::Frame {
            dir,
            end,
            msg: Msg::Sftp(Box::new(msg)),
            note: None,
        },
        sftp::Event::DataStart { dir, at, len } => Event::DataStart { dir, at, len },
        sftp::Event::Violation(v) => Event::Violation(Violation::Sftp(v)),
    }));
    trim(ev);
}
