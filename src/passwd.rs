//! User look-ups from /etc/passwd and /etc/group, read as files: no NSS.
//!
//! A static binary (`make static`, the one copied onto remote hosts) cannot
//! use glibc's NSS reliably: getpwuid(3) there loads the libnss modules of
//! the glibc it was built with, which another distribution does not have, or
//! crashes on. So a user is their uid, and the name, home, shell and groups
//! come from the files when they have an entry (sshd's users always do:
//! it reads the same files on a host without LDAP, and `$USER`/`$HOME`/
//! `$SHELL` it sets cover the rest). The parsers are pure: bytes in.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// One /etc/passwd entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub dir: PathBuf,
    pub shell: PathBuf,
}

/// The entries of a passwd file, in order; malformed lines (and NIS `+`/`-`
/// lines) are skipped.
pub fn parse_passwd(text: &[u8]) -> impl Iterator<Item = User> + '_ {
    text.split(|b| *b == b'\n').filter_map(|line| {
        let f: Vec<&[u8]> = line
            .strip_suffix(b"\r")
            .unwrap_or(line)
            .split(|b| *b == b':')
            .collect();
        if f.len() != 7 || f[0].is_empty() || f[0].starts_with(b"+") || f[0].starts_with(b"-") {
            return None;
        }
        Some(User {
            name: std::str::from_utf8(f[0]).ok()?.to_string(),
            uid: number(f[2])?,
            gid: number(f[3])?,
            dir: PathBuf::from(OsStr::from_bytes(f[5])),
            shell: PathBuf::from(OsStr::from_bytes(f[6])),
        })
    })
}

fn number(field: &[u8]) -> Option<u32> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// The first entry with this uid (what getpwuid returns).
pub fn by_uid(passwd: &[u8], uid: u32) -> Option<User> {
    parse_passwd(passwd).find(|u| u.uid == uid)
}

/// The groups of `name`: `gid` first, then every group of a group file
/// whose member list names them (what initgroups(3) sets).
pub fn groups_of(group: &[u8], name: &str, gid: u32) -> Vec<u32> {
    let mut out = vec![gid];
    for line in group.split(|b| *b == b'\n') {
        let f: Vec<&[u8]> = line
            .strip_suffix(b"\r")
            .unwrap_or(line)
            .split(|b| *b == b':')
            .collect();
        if f.len() != 4 {
            continue;
        }
        let Some(g) = number(f[2]) else { continue };
        if !out.contains(&g) && f[3].split(|b| *b == b',').any(|m| m == name.as_bytes()) {
            out.push(g);
        }
    }
    out
}

/// The user with this uid, from /etc/passwd; None when it has no entry there
/// (or cannot be read).
pub fn lookup(uid: u32) -> Option<User> {
    by_uid(&std::fs::read("/etc/passwd").ok()?, uid)
}

/// The user's groups from /etc/group, `gid` first (only `gid` without the file).
pub fn groups(name: &str, gid: u32) -> Vec<u32> {
    match std::fs::read("/etc/group") {
        Ok(text) => groups_of(&text, name, gid),
        Err(_) => vec![gid],
    }
}

/// The effective user's name: its passwd entry's, else `$USER` (or
/// `$LOGNAME`) when that is a name, else the uid as a number. Only for
/// display (transcript headers, messages): nothing is decided by it.
pub fn user_name(uid: u32) -> String {
    if let Some(u) = lookup(uid) {
        return u.name;
    }
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(std::env::var_os)
        .filter_map(|v| v.into_string().ok())
        .find(|v| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
        .unwrap_or_else(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/bash\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        # a comment line has no 7 fields\n\
        +nisuser::::::\n\
        broken:x:notanumber:1::/:/bin/sh\n\
        alice:x:1000:1000:Alice,,,:/home/alice:/bin/zsh\r\n\
        alias:x:1000:1000::/home/other:/bin/sh\n\
        nohome:x:1001:1001:::\n";

    #[test]
    fn finds_by_uid_first_entry_wins() {
        let a = by_uid(PASSWD, 1000).unwrap();
        assert_eq!(a.name, "alice");
        assert_eq!(a.gid, 1000);
        assert_eq!(a.dir, PathBuf::from("/home/alice"));
        assert_eq!(a.shell, PathBuf::from("/bin/zsh"), "CR of a CRLF line dropped");
        assert_eq!(by_uid(PASSWD, 0).unwrap().shell, PathBuf::from("/bin/bash"));
        assert!(by_uid(PASSWD, 4242).is_none());
        let n = by_uid(PASSWD, 1001).unwrap();
        assert_eq!(
            (n.dir.as_os_str().is_empty(), n.shell.as_os_str().is_empty()),
            (true, true)
        );
    }

    #[test]
    fn skips_malformed_and_nis_lines() {
        let names: Vec<String> = parse_passwd(PASSWD).map(|u| u.name).collect();
        assert_eq!(names, ["root", "daemon", "alice", "alias", "nohome"]);
        assert_eq!(parse_passwd(b"").count(), 0);
        assert_eq!(
            parse_passwd(b"\xff:x:5:5::/:/bin/sh\n").count(),
            0,
            "a name must be UTF-8"
        );
    }

    #[test]
    fn groups_are_the_primary_then_memberships() {
        let group = b"root:x:0:\nadm:x:4:syslog,alice\nsudo:x:27:alice\nalice:x:1000:\n\
                      bad:x:zz:alice\nother:x:50:alicex,bob\nalso:x:27:alice\n";
        assert_eq!(groups_of(group, "alice", 1000), [1000, 4, 27]);
        assert_eq!(groups_of(group, "bob", 100), [100, 50]);
        assert_eq!(groups_of(b"", "bob", 100), [100]);
    }
}
