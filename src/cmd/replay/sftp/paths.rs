//! Where a recorded SFTP path lands in the replay: the target directory
//! stands for the recorded server's `/`, as a chroot would. A path is
//! resolved lexically (`.` and `..` removed, a `..` at `/` staying at `/`, as
//! the kernel does at a root) against the recorded home when it is relative,
//! and sent to the live sftp-server as an absolute path under the target.
//! No `..` ever reaches the server, so no path can climb out through a
//! symlink either: the symlinks a replay makes point inside the target too
//! ([`Mapper::link_target`]). Pure: no I/O.

/// The longest path sent (PATH_MAX less a little).
pub const MAX_PATH: usize = 4000;

/// Why a recorded path is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsendable {
    Nul,
    TooLong,
}

impl Unsendable {
    pub fn why(self) -> &'static str {
        match self {
            Unsendable::Nul => "holds a NUL byte (sftp-server would drop the session)",
            Unsendable::TooLong => "is too long once placed inside the target",
        }
    }
}

/// A recorded path, placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The recorded server's path it stands for: absolute, normalized.
    pub virt: Vec<u8>,
    /// A `..` climbed above `/` (stopped there).
    pub clamped: bool,
}

/// Places recorded paths inside the target.
#[derive(Debug, Clone)]
pub struct Mapper {
    /// The target directory, absolute, without a trailing `/`.
    root: Vec<u8>,
    /// The recorded home (where relative paths start): absolute, normalized.
    home: Vec<u8>,
}

/// `base` joined with `path`, normalized lexically; absolute `path`s ignore `base`.
pub fn normalize(base: &[u8], path: &[u8]) -> Placed {
    let mut comps: Vec<&[u8]> = Vec::new();
    if !path.starts_with(b"/") {
        comps.extend(base.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b"."));
    }
    let mut clamped = false;
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => clamped |= comps.pop().is_none(),
            c => comps.push(c),
        }
    }
    let mut virt = Vec::with_capacity(path.len() + base.len() + 1);
    for c in &comps {
        virt.push(b'/');
        virt.extend_from_slice(c);
    }
    if virt.is_empty() {
        virt.push(b'/');
    }
    Placed { virt, clamped }
}

/// The parent of a normalized virtual path (`/` for `/`).
pub fn parent(virt: &[u8]) -> &[u8] {
    match virt.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/",
        Some(i) => &virt[..i],
    }
}

/// The proper ancestors of a normalized virtual path, nearest `/` first
/// (without `/` itself).
pub fn ancestors(virt: &[u8]) -> impl Iterator<Item = &[u8]> {
    virt.iter()
        .enumerate()
        .skip(1)
        .filter(|&(_, &b)| b == b'/')
        .map(move |(i, _)| &virt[..i])
}

/// `dir/name` for a normalized `dir`.
pub fn child(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = dir.to_vec();
    if !v.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

impl Mapper {
    /// `root`: the target, absolute; `home`: the recorded home, if known.
    pub fn new(root: &[u8], home: Option<&[u8]>) -> Mapper {
        let mut root = root.to_vec();
        while root.len() > 1 && root.ends_with(b"/") {
            root.pop();
        }
        let home = home.map_or_else(|| b"/".to_vec(), |h| normalize(b"/", h).virt);
        Mapper { root, home }
    }

    pub fn home(&self) -> &[u8] {
        &self.home
    }

    /// A recorded path's place.
    pub fn place(&self, path: &[u8]) -> Result<Placed, Unsendable> {
        if path.contains(&0) {
            return Err(Unsendable::Nul);
        }
        let p = normalize(&self.home, path);
        if self.root.len() + p.virt.len() > MAX_PATH {
            return Err(Unsendable::TooLong);
        }
        Ok(p)
    }

    /// The live path of a virtual one: inside the target.
    pub fn real(&self, virt: &[u8]) -> Vec<u8> {
        let mut v = self.root.clone();
        if virt != b"/" {
            v.extend_from_slice(virt);
        }
        v
    }

    /// A live path the server answered, as the recorded server's path: the
    /// target is `/`. Others are kept (they are outside: a difference).
    pub fn unreal(&self, live: &[u8]) -> Vec<u8> {
        match live.strip_prefix(self.root.as_slice()) {
            Some(b"") => b"/".to_vec(),
            Some(rest) if rest.starts_with(b"/") => rest.to_vec(),
            _ => live.to_vec(),
        }
    }

    /// The target to give a SYMLINK whose link is `link` (virtual): a
    /// relative target without `..` stays as recorded (it resolves inside,
    /// below the link's directory); any other becomes the absolute live path
    /// of where it points, inside the target. `true`: rewritten.
    pub fn link_target(&self, link: &[u8], target: &[u8]) -> Result<(Vec<u8>, bool), Unsendable> {
        if target.contains(&0) {
            return Err(Unsendable::Nul);
        }
        let climbs = target.split(|&b| b == b'/').any(|c| c == b"..");
        if !target.starts_with(b"/") && !climbs && !target.is_empty() {
            return Ok((target.to_vec(), false));
        }
        let p = normalize(parent(link), target);
        if self.root.len() + p.virt.len() > MAX_PATH {
            return Err(Unsendable::TooLong);
        }
        Ok((self.real(&p.virt), true))
    }

    /// expand-path@openssh.com's argument: a leading `~` or `~user` is the
    /// recorded home (replay knows no other user's), then placed as a path.
    pub fn expand(&self, path: &[u8]) -> Result<Placed, Unsendable> {
        if let Some(rest) = path.strip_prefix(b"~") {
            let after = rest
                .iter()
                .position(|&b| b == b'/')
                .map_or(&b""[..], |i| &rest[i + 1..]);
            let mut p = self.home.clone();
            p.push(b'/');
            p.extend_from_slice(after);
            return self.place(&p);
        }
        self.place(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Mapper {
        Mapper::new(b"/tmp/t", Some(b"/root"))
    }

    #[test]
    fn paths_land_inside_the_target() {
        let m = m();
        let live = |p: &[u8]| m.real(&m.place(p).unwrap().virt);
        assert_eq!(live(b"/etc/passwd"), b"/tmp/t/etc/passwd");
        assert_eq!(live(b"dst/a"), b"/tmp/t/root/dst/a");
        assert_eq!(live(b"."), b"/tmp/t/root");
        assert_eq!(live(b""), b"/tmp/t/root");
        assert_eq!(live(b"../../../../etc/shadow"), b"/tmp/t/etc/shadow");
        assert_eq!(live(b"/.."), b"/tmp/t");
        assert_eq!(live(b"a/./b//../c/"), b"/tmp/t/root/a/c");
        assert!(m.place(b"../../..").unwrap().clamped);
        assert!(!m.place(b"../x").unwrap().clamped);
        assert_eq!(m.place(b"a\0b"), Err(Unsendable::Nul));
        assert_eq!(m.place(&vec![b'a'; 5000]), Err(Unsendable::TooLong));
    }

    #[test]
    fn live_answers_read_as_the_recorded_server_paths() {
        let m = m();
        assert_eq!(m.unreal(b"/tmp/t/root/x"), b"/root/x");
        assert_eq!(m.unreal(b"/tmp/t"), b"/");
        assert_eq!(m.unreal(b"/tmp/tx"), b"/tmp/tx");
        assert_eq!(m.unreal(b"/home/u"), b"/home/u");
    }

    #[test]
    fn symlinks_point_inside() {
        let m = m();
        assert_eq!(
            m.link_target(b"/root/l", b"a/b").unwrap(),
            (b"a/b".to_vec(), false)
        );
        assert_eq!(
            m.link_target(b"/root/l", b"/etc/passwd").unwrap(),
            (b"/tmp/t/etc/passwd".to_vec(), true)
        );
        assert_eq!(
            m.link_target(b"/root/d/l", b"../../../..").unwrap(),
            (b"/tmp/t".to_vec(), true)
        );
        assert_eq!(
            m.link_target(b"/root/d/l", b"../x").unwrap(),
            (b"/tmp/t/root/x".to_vec(), true)
        );
    }

    #[test]
    fn tilde_is_the_recorded_home() {
        let m = m();
        assert_eq!(m.expand(b"~/x").unwrap().virt, b"/root/x");
        assert_eq!(m.expand(b"~root").unwrap().virt, b"/root");
        assert_eq!(m.expand(b"~bob/../../etc").unwrap().virt, b"/etc");
        assert_eq!(m.expand(b"x").unwrap().virt, b"/root/x");
    }

    #[test]
    fn ancestors_and_parents() {
        let a: Vec<&[u8]> = ancestors(b"/a/b/c").collect();
        assert_eq!(a, [&b"/a"[..], b"/a/b"]);
        assert_eq!(ancestors(b"/").count(), 0);
        assert_eq!(parent(b"/a/b"), b"/a");
        assert_eq!(parent(b"/a"), b"/");
        assert_eq!(child(b"/", b"x"), b"/x");
        assert_eq!(child(b"/a", b"x"), b"/a/x");
    }
}
