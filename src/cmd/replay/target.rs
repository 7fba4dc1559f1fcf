//! The directory a replay works in. It is always one that replay controls:
//! the user's `--target DIR`, which must be empty (or not exist yet, and is
//! then created 0700), else a new temporary directory (mkdtemp, 0700). The
//! real scp receives an upload there, a download's source is re-created
//! there, and the program runs with it as its working directory. No path
//! from the transcript ever chooses it.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::shown_path;

/// The directory, absolute.
pub struct Target {
    pub dir: PathBuf,
}

/// Checks or creates `--target`, or makes a temporary directory.
pub fn prepare(wanted: Option<&Path>) -> Result<Target> {
    let Some(path) = wanted else {
        return temporary();
    };
    let shown = shown_path(path);
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().mode(0o700).create(path).with_context(|| {
                format!("--target {shown}: cannot create it; give an existing empty directory, or a new path whose parent exists")
            })?;
        }
        Err(e) => bail!(
            "--target {shown}: {}; give an empty directory, or leave --target out for a new temporary one",
            crate::errtext::io(&e)
        ),
        Ok(_) => {
            let meta = std::fs::metadata(path).with_context(|| format!("--target {shown}"))?;
            if !meta.is_dir() {
                bail!(
                    "--target {shown}: not a directory; give an empty directory, or a path that does not exist yet"
                );
            }
            let me = nix::unistd::geteuid().as_raw();
            if meta.uid() != me || meta.mode() & 0o022 != 0 {
                bail!(
                    "--target {shown}: {}; another user could put files or symlinks in it during the replay; give a directory of your own that only you can write to, or a new path",
                    if meta.uid() != me {
                        "owned by another user"
                    } else {
                        "writable by group or others"
                    }
                );
            }
            let mut entries =
                std::fs::read_dir(path).with_context(|| format!("--target {shown}: cannot list it"))?;
            if entries.next().is_some() {
                bail!(
                    "--target {shown}: not empty; replay writes only into an empty directory: give an empty or new one, or leave --target out for a new temporary one"
                );
            }
        }
    }
    let dir = std::fs::canonicalize(path).with_context(|| format!("--target {shown}"))?;
    Ok(Target { dir })
}

/// A new directory `scptrace-replay-XXXXXX` in `$TMPDIR` (else /tmp), 0700.
fn temporary() -> Result<Target> {
    let template = std::env::temp_dir().join("scptrace-replay-XXXXXX");
    let dir = nix::unistd::mkdtemp(&template).with_context(|| {
        format!(
            "cannot create a temporary directory like {}; set TMPDIR to a writable directory, or give --target DIR",
            shown_path(&template)
        )
    })?;
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    Ok(Target { dir })
}
