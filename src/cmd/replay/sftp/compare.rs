//! Whether a live reply is the recorded one, ignoring what differs between
//! any two runs of the same server: handle values, request ids (compared by
//! the request they answer), times (ATTRS atime and mtime), owners (uid and
//! gid: the replay runs as whoever runs it), a directory's size (a file
//! system's detail), a NAME's long name (`ls -l` text: owners, times) and the
//! order of a directory listing. Paths the live server answers are read as
//! the recorded server's (the target is `/`). Pure.

use super::paths::Mapper;
use super::recorded::Payload;
use crate::escape::escape;
use crate::protocol::sftp::{Attrs, Ext, ExtReply, Name, Op, ReplyBody};
use crate::transcript::annotate::sftp::status_name;

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;

/// What a reply is, briefly, for a sentence.
fn what(b: &ReplyBody) -> String {
    match b {
        ReplyBody::Status { code, message, .. } => match message {
            Some(m) => format!("STATUS {} \"{}\"", status_name(*code), escape(m)),
            None => format!("STATUS {}", status_name(*code)),
        },
        ReplyBody::Handle { .. } => "HANDLE".into(),
        ReplyBody::Data { len } => format!("DATA of {len} B"),
        ReplyBody::Name { names } => format!("NAME with {} entries", names.len()),
        ReplyBody::Attrs { .. } => "ATTRS".into(),
        ReplyBody::Extended(_) => "EXTENDED_REPLY".into(),
    }
}

fn attrs_diff(rec: &Attrs, live: &Attrs) -> Option<String> {
    let dir = rec.permissions.is_some_and(|p| p & S_IFMT == S_IFDIR);
    if !dir && rec.size != live.size {
        return Some(format!("size {}, recorded {}", opt(live.size), opt(rec.size)));
    }
    // Set-id and sticky bits are never re-created (see seed.rs).
    let mode = |p: Option<u32>| p.map(|p| p & !0o7000);
    if mode(rec.permissions) != mode(live.permissions) {
        let show = |p: Option<u32>| p.map_or("none".into(), |p| format!("{p:o}"));
        return Some(format!(
            "mode {}, recorded {}",
            show(live.permissions),
            show(rec.permissions)
        ));
    }
    if rec.extended != live.extended {
        return Some("other extended attributes".into());
    }
    None
}

fn opt(v: Option<u64>) -> String {
    v.map_or("none".into(), |v| v.to_string())
}

fn names_diff(m: &Mapper, op: Op, rec: &[Name], live: &[Name]) -> Option<String> {
    if rec.len() != live.len() {
        return Some(format!("{} names, recorded {}", live.len(), rec.len()));
    }
    let listing = op == Op::Readdir;
    let path = |n: &Name, is_live: bool| {
        if !listing && is_live {
            m.unreal(&n.filename)
        } else {
            n.filename.clone()
        }
    };
    let mut r: Vec<(Vec<u8>, &Name)> = rec.iter().map(|n| (path(n, false), n)).collect();
    let mut l: Vec<(Vec<u8>, &Name)> = live.iter().map(|n| (path(n, true), n)).collect();
    if listing {
        r.sort_by(|a, b| a.0.cmp(&b.0));
        l.sort_by(|a, b| a.0.cmp(&b.0));
    }
    for ((rp, rn), (lp, ln)) in r.iter().zip(&l) {
        if rp != lp {
            return Some(format!("name \"{}\", recorded \"{}\"", escape(lp), escape(rp)));
        }
        // The attributes of `.` and `..` are those of directories replay did
        // not make as recorded (its target, their parents).
        if listing && (rp == b"." || rp == b"..") {
            continue;
        }
        if let Some(d) = attrs_diff(&rn.attrs, &ln.attrs) {
            return Some(format!("\"{}\": {d}", escape(rp)));
        }
    }
    None
}

/// How the live reply differs from the recorded one, for a sentence; `None`:
/// the same. `op` is the request's.
pub fn reply_diff(
    m: &Mapper,
    op: Op,
    rec: &ReplyBody,
    rec_data: Option<&Payload>,
    live: &ReplyBody,
    live_data: Option<&[u8]>,
) -> Option<String> {
    use ReplyBody as R;
    let differs = || Some(format!("{} instead of {}", what(live), what(rec)));
    match (rec, live) {
        (
            R::Status {
                code: rc,
                message: rm,
                ..
            },
            R::Status {
                code: lc,
                message: lm,
                ..
            },
        ) => {
            if rc != lc || rm != lm {
                return differs();
            }
            None
        }
        (R::Handle { .. }, R::Handle { .. }) => None,
        (R::Data { len: rl }, R::Data { len: ll }) => {
            if rl != ll {
                return differs();
            }
            let known = rec_data.map_or(&[][..], |d| d.known.as_slice());
            let got = live_data.unwrap_or(&[]);
            if let Some(k) = (0..known.len()).find(|&k| got.get(k) != Some(&known[k])) {
                return Some(format!("other data from byte {k} of {rl} on"));
            }
            None
        }
        (R::Name { names: rn }, R::Name { names: ln }) => {
            if op == Op::Extended(Ext::HomeDirectory) && rn.len() == ln.len() {
                // The live server names the home of the user running the
                // replay: not comparable.
                return None;
            }
            names_diff(m, op, rn, ln).map(|d| format!("NAME: {d}"))
        }
        (R::Attrs { attrs: ra }, R::Attrs { attrs: la }) => attrs_diff(ra, la).map(|d| format!("ATTRS: {d}")),
        (R::Extended(re), R::Extended(le)) => match (re, le) {
            // A file system's counts: never the same twice.
            (ExtReply::Statvfs(_), ExtReply::Statvfs(_)) => None,
            (a, b) if a == b => None,
            _ => Some("another EXTENDED_REPLY".into()),
        },
        _ => differs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(code: u32, msg: &[u8]) -> ReplyBody {
        ReplyBody::Status {
            code,
            message: Some(msg.to_vec()),
            lang: Some(Vec::new()),
        }
    }

    fn attrs(perm: u32, size: u64, mtime: u32) -> Attrs {
        Attrs {
            flags: 15,
            size: Some(size),
            uid_gid: Some((mtime, mtime)),
            permissions: Some(perm),
            atime_mtime: Some((mtime, mtime)),
            extended: Vec::new(),
        }
    }

    #[test]
    fn what_is_ignored_and_what_is_not() {
        let m = Mapper::new(b"/t", Some(b"/root"));
        let d = |r: &ReplyBody, l: &ReplyBody| reply_diff(&m, Op::Stat, r, None, l, None);
        assert_eq!(d(&st(0, b"Success"), &st(0, b"Success")), None);
        assert_eq!(
            d(&st(8, b"Operation unsupported"), &st(0, b"Success")).as_deref(),
            Some("STATUS OK \"Success\" instead of STATUS OP_UNSUPPORTED \"Operation unsupported\"")
        );
        let h = |h: &[u8]| ReplyBody::Handle { handle: h.to_vec() };
        assert_eq!(d(&h(b"\0\0\0\0"), &h(b"\0\0\0\x07")), None);
        let a = |a| ReplyBody::Attrs { attrs: a };
        assert_eq!(d(&a(attrs(0o100644, 5, 1)), &a(attrs(0o100644, 5, 9))), None);
        assert_eq!(d(&a(attrs(0o40755, 4096, 1)), &a(attrs(0o40755, 40, 9))), None);
        assert_eq!(
            d(&a(attrs(0o100644, 5, 1)), &a(attrs(0o100644, 6, 1))).as_deref(),
            Some("ATTRS: size 6, recorded 5")
        );
        assert!(d(&a(attrs(0o100644, 5, 1)), &a(attrs(0o100600, 5, 1))).is_some());
    }

    #[test]
    fn data_is_compared_as_far_as_recorded() {
        let m = Mapper::new(b"/t", None);
        let rec = Payload {
            known: b"abc".to_vec(),
            len: 10,
        };
        let d = |live: &[u8]| {
            reply_diff(
                &m,
                Op::Read,
                &ReplyBody::Data { len: 10 },
                Some(&rec),
                &ReplyBody::Data { len: 10 },
                Some(live),
            )
        };
        assert_eq!(d(b"abcXXXXXXX"), None);
        assert_eq!(
            d(b"abXXXXXXXX").as_deref(),
            Some("other data from byte 2 of 10 on")
        );
    }

    #[test]
    fn paths_and_listings() {
        let m = Mapper::new(b"/t", None);
        let n = |f: &[u8], perm| Name {
            filename: f.to_vec(),
            longname: b"whatever".to_vec(),
            attrs: attrs(perm, 1, 1),
        };
        let name = |v: Vec<Name>| ReplyBody::Name { names: v };
        let rp = name(vec![n(b"/root", 0)]);
        let lp = name(vec![n(b"/t/root", 0)]);
        assert_eq!(reply_diff(&m, Op::Realpath, &rp, None, &lp, None), None);
        let rl = name(vec![n(b"a", 0o100644), n(b"b", 0o40755)]);
        let ll = name(vec![n(b"b", 0o40755), n(b"a", 0o100644)]);
        assert_eq!(reply_diff(&m, Op::Readdir, &rl, None, &ll, None), None);
        let ll = name(vec![n(b"b", 0o40755), n(b"c", 0o100644)]);
        assert!(reply_diff(&m, Op::Readdir, &rl, None, &ll, None).is_some());
    }
}
