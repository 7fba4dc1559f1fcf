//! An `authorized_keys` file on disk: the edit `install --authorized-key`
//! makes (backup, then the file rewritten through a temp file) and the one
//! `uninstall` undoes, each done with the rights of whoever controls the
//! file's directory (`owner::as_controller`): root editing a user's file
//! does it as that user, so nothing the user swaps in the meantime can make
//! root write anywhere else. The line edits themselves are `keys`' (no I/O).

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::keys::{self, KeyError, KeySpec, LineEdit};
use super::owner;
use super::write_atomic;
use crate::utc::Utc;

/// What [`add_forced`] did. (Paths cross the pipe from the child as bytes:
/// they need not be UTF-8.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Added {
    /// The line now starts with the option; the whole file was saved first.
    Edited {
        /// The file edited (symlinks resolved, as its controller sees them).
        #[serde(with = "path_bytes")]
        file: PathBuf,
        #[serde(with = "path_bytes")]
        backup: PathBuf,
        edit: LineEdit,
    },
    /// That key already runs scptrace forced: nothing changed.
    AlreadyForced {
        #[serde(with = "path_bytes")]
        file: PathBuf,
        line: usize,
        option: String,
    },
}

/// A path as its bytes, for serde.
mod path_bytes {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
        p.as_os_str().as_bytes().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        Vec::<u8>::deserialize(d).map(|b| PathBuf::from(OsString::from_vec(b)))
    }
}

/// Puts `option` in front of the line of `spec`'s key in `file`, after
/// saving the whole file next to it as `NAME.scptrace-backup-TIME` (same
/// mode, the file's owner's). `dry_run`: the same checks and the same
/// answer, with nothing written (the backup named is not created).
pub fn add_forced(file: &Path, spec: &KeySpec, option: &str, dry_run: bool) -> Result<Added> {
    let file = owner::absolute(file)?;
    owner::as_controller(&file, &format!("editing {}", file.display()), || {
        add_forced_here(&file, spec, option, dry_run)
    })
}

fn add_forced_here(file: &Path, spec: &KeySpec, option: &str, dry_run: bool) -> Result<Added> {
    // Edit the file itself when authorized_keys is a symlink.
    let file = std::fs::canonicalize(file).with_context(|| format!("{}", file.display()))?;
    let content = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let (new, edit) = match keys::add_command(&content, spec, option) {
        Ok(x) => x,
        Err(KeyError::HasCommand { line, option: o }) if o.contains("scptrace") && o.contains("forced") => {
            return Ok(Added::AlreadyForced {
                file,
                line,
                option: o,
            });
        }
        Err(e) => bail!("{}: {e}", file.display()),
    };
    let mode = std::fs::metadata(&file)
        .with_context(|| format!("{}", file.display()))?
        .mode()
        & 0o7777;
    let name = file
        .file_name()
        .map_or("authorized_keys".into(), |n| n.to_string_lossy().into_owned());
    let backup = file.with_file_name(format!("{name}.scptrace-backup-{}", Utc::now().compact()));
    if dry_run {
        return Ok(Added::Edited { file, backup, edit });
    }
    let mut b = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&backup)
        .with_context(|| format!("cannot create the backup {}", backup.display()))?;
    b.write_all(&content)
        .and_then(|()| b.sync_all())
        .with_context(|| format!("cannot write the backup {}", backup.display()))?;
    write_atomic(&file, &new, mode)?;
    Ok(Added::Edited { file, backup, edit })
}

/// What [`restore`] did, in words for `uninstall`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Restored {
    Done(String),
    /// The file changed since: left alone.
    Left(String),
}

/// Undoes [`add_forced`]: the line install changed becomes what it was, and
/// the backup goes once the file equals it again.
pub fn restore(file: &Path, backup: &Path, edit: &LineEdit) -> Result<Restored> {
    let file = owner::absolute(file)?;
    owner::as_controller(&file, &format!("restoring {}", file.display()), || {
        restore_here(&file, backup, edit)
    })
}

fn restore_here(file: &Path, backup: &Path, edit: &LineEdit) -> Result<Restored> {
    let content = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let Some(out) = keys::restore(&content, edit) else {
        return Ok(Restored::Left(format!(
            "{}: the line install changed is no longer there as install left it; left as is \
             (the original file is in {})",
            file.display(),
            backup.display()
        )));
    };
    let mode = std::fs::metadata(file)
        .with_context(|| format!("{}", file.display()))?
        .mode()
        & 0o7777;
    write_atomic(file, &out, mode)?;
    let mut msg = format!("restored the key line in {}", file.display());
    // The backup is install's too: remove it once it is no longer needed.
    if std::fs::read(backup).is_ok_and(|b| b == out) {
        std::fs::remove_file(backup).with_context(|| format!("cannot remove {}", backup.display()))?;
        msg.push_str(&format!("; removed the backup {}", backup.display()));
    } else if backup.exists() {
        msg.push_str(&format!(
            "; kept the backup {} (the file changed since)",
            backup.display()
        ));
    }
    Ok(Restored::Done(msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn answers_cross_the_pipe_whatever_the_paths() {
        let odd = PathBuf::from(OsStr::from_bytes(b"/home/x\xff/.ssh/authorized_keys"));
        let a = Added::Edited {
            file: odd.clone(),
            backup: odd.with_extension("bak"),
            edit: LineEdit {
                line: 2,
                before: b"k\xfe".to_vec(),
                after: b"command=\"x\" k\xfe".to_vec(),
            },
        };
        let back: Added = serde_json::from_slice(&serde_json::to_vec(&a).unwrap()).unwrap();
        match back {
            Added::Edited { file, backup, edit } => {
                assert_eq!(file, odd);
                assert_eq!(backup, odd.with_extension("bak"));
                assert_eq!(edit.before, b"k\xfe");
            }
            other => panic!("{other:?}"),
        }
    }
}
