//! The SFTP wire types (RFC 4251 §5 as the filexfer draft uses them: uint32,
//! uint64, string, and the draft's ATTRS), read from a packet's bytes with
//! every length checked, so that no input can make the decoder panic.

use super::msg::{Attrs, ExtPair};

/// ATTRS flag bits (sftp.h `SSH2_FILEXFER_ATTR_*`).
pub mod attr {
    pub const SIZE: u32 = 0x0000_0001;
    pub const UIDGID: u32 = 0x0000_0002;
    pub const PERMISSIONS: u32 = 0x0000_0004;
    pub const ACMODTIME: u32 = 0x0000_0008;
    pub const EXTENDED: u32 = 0x8000_0000;
}

/// A cursor over one packet's bytes. Every read returns `None` when the
/// packet ends first (the packet is shorter than its fields) and then leaves
/// the cursor where it was.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub fn left(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }

    pub fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }

    pub fn u64(&mut self) -> Option<u64> {
        let b: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_be_bytes(b))
    }

    /// A `string`: uint32 length, then that many bytes (never UTF-8 checked).
    pub fn string(&mut self) -> Option<&'a [u8]> {
        let save = self.buf;
        let n = self.u32()?;
        match usize::try_from(n).ok().and_then(|n| self.take(n)) {
            Some(s) => Some(s),
            None => {
                self.buf = save;
                None
            }
        }
    }

    /// A string, copied.
    pub fn bytes(&mut self) -> Option<Vec<u8>> {
        self.string().map(<[u8]>::to_vec)
    }

    /// ATTRS as sftp-common.c's `decode_attrib` reads them: flags, then each
    /// field its flag announces. Unknown flag bits are kept in `flags` and
    /// otherwise ignored, as OpenSSH does.
    pub fn attrs(&mut self) -> Option<Attrs> {
        let save = self.buf;
        let r = self.attrs_inner();
        if r.is_none() {
            self.buf = save;
        }
        r
    }

    fn attrs_inner(&mut self) -> Option<Attrs> {
        let flags = self.u32()?;
        let mut a = Attrs {
            flags,
            ..Attrs::default()
        };
        if flags & attr::SIZE != 0 {
            a.size = Some(self.u64()?);
        }
        if flags & attr::UIDGID != 0 {
            a.uid_gid = Some((self.u32()?, self.u32()?));
        }
        if flags & attr::PERMISSIONS != 0 {
            a.permissions = Some(self.u32()?);
        }
        if flags & attr::ACMODTIME != 0 {
            a.atime_mtime = Some((self.u32()?, self.u32()?));
        }
        if flags & attr::EXTENDED != 0 {
            let count = self.u32()?;
            // Each pair takes at least 8 bytes: a count the packet cannot hold
            // fails on the first missing pair, and never sizes an allocation.
            let mut ext = Vec::with_capacity((count as usize).min(self.left() / 8));
            for _ in 0..count {
                ext.push(self.pair()?);
            }
            a.extended = ext;
        }
        Some(a)
    }

    /// A name/data pair of strings (VERSION's extensions, ATTRS' extended).
    pub fn pair(&mut self) -> Option<ExtPair> {
        let save = self.buf;
        match (self.bytes(), self.bytes()) {
            (Some(name), Some(data)) => Some(ExtPair { name, data }),
            _ => {
                self.buf = save;
                None
            }
        }
    }

    /// Pairs until the packet ends; `None` if it ends inside one.
    pub fn pairs(&mut self) -> Option<Vec<ExtPair>> {
        let mut v = Vec::new();
        while self.left() > 0 {
            v.push(self.pair()?);
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fail_without_moving() {
        let mut r = Reader::new(&[0, 0, 0, 5, b'a', b'b']);
        assert_eq!(r.string(), None);
        assert_eq!(r.left(), 6);
        assert_eq!(r.u32(), Some(5));
        assert_eq!(r.u64(), None);
        assert_eq!(r.rest(), b"ab");
        assert_eq!(r.u8(), None);
    }

    #[test]
    fn attrs_with_every_flag() {
        let mut b = vec![];
        b.extend_from_slice(
            &(attr::SIZE | attr::UIDGID | attr::PERMISSIONS | attr::ACMODTIME | attr::EXTENDED).to_be_bytes(),
        );
        b.extend_from_slice(&21u64.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        b.extend_from_slice(&0o100644u32.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 4]);
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, b'n', 0, 0, 0, 0]);
        let a = Reader::new(&b).attrs().unwrap();
        assert_eq!(a.size, Some(21));
        assert_eq!(a.uid_gid, Some((1, 2)));
        assert_eq!(a.permissions, Some(0o100644));
        assert_eq!(a.atime_mtime, Some((3, 4)));
        assert_eq!(
            a.extended,
            vec![ExtPair {
                name: b"n".to_vec(),
                data: vec![]
            }]
        );
        // A huge extended count in a short packet fails, quickly.
        let mut r = Reader::new(&[0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.attrs(), None);
        assert_eq!(r.left(), 8);
    }
}
