//! `installed.toml`: the record of what `install` changed, next to the config
//! file it wrote, so that `uninstall` undoes exactly that and nothing else.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One change `install` made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// A symlink `path` → `target` that install created.
    Link {
        path: PathBuf,
        target: PathBuf,
        at: String,
    },
    /// The line `line` that install wrote for `key` in `file`, replacing
    /// `previous` (absent: the key was unset). `created`: the file was new.
    ConfigKey {
        file: PathBuf,
        key: String,
        line: String,
        previous: Option<String>,
        created: bool,
        at: String,
    },
    /// A key line in an authorized_keys file, before and after install
    /// prefixed it (escaped as transcripts escape bytes: the lines need not be
    /// UTF-8), and the backup of the whole file.
    AuthorizedKey {
        file: PathBuf,
        backup: PathBuf,
        line_before: String,
        line_after: String,
        at: String,
    },
}

impl Step {
    /// One line for people: what the step did.
    pub fn describe(&self) -> String {
        match self {
            Step::Link { path, target, .. } => {
                format!("link {} -> {}", path.display(), target.display())
            }
            Step::ConfigKey {
                file, line, previous, ..
            } => format!(
                "config {} in {} (was: {})",
                line,
                file.display(),
                previous.as_deref().unwrap_or("unset")
            ),
            Step::AuthorizedKey { file, backup, .. } => format!(
                "authorized_keys {}: command= option added to one key (backup {})",
                file.display(),
                backup.display()
            ),
        }
    }
}

/// The whole record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
}

const HEADER: &str = "# Written by `scptrace install`: what it changed, so that `scptrace uninstall`\n\
                      # undoes exactly that. Edit only if you undo a step by hand.\n\n";

impl State {
    /// Reads the record; a missing file is an empty one. Root reads only a
    /// record no one else can change: it says what root will edit.
    pub fn load(path: &Path) -> Result<State> {
        super::owner::require_root_controlled(path, "the install record")?;
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("{} is not a valid install record", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the record atomically (a temp file renamed over it); an empty
    /// record removes the file.
    pub fn save(&self, path: &Path, mode: u32) -> Result<()> {
        super::owner::require_root_controlled(path, "the install record")?;
        if self.steps.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).with_context(|| format!("cannot remove {}", path.display()))
                }
                _ => Ok(()),
            };
        }
        let text = format!(
            "{HEADER}{}",
            toml::to_string(self).context("cannot render the install record")?
        );
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = dir.join(format!(".installed.toml.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write()
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_toml() {
        let s = State {
            steps: vec![
                Step::Link {
                    path: "/usr/local/bin/scp".into(),
                    target: "/usr/local/bin/scptrace".into(),
                    at: "2026-01-01T00:00:00.000000Z".into(),
                },
                Step::ConfigKey {
                    file: "/etc/scptrace/config.toml".into(),
                    key: "real_scp".into(),
                    line: "real_scp = \"/usr/bin/scp\"".into(),
                    previous: None,
                    created: true,
                    at: "t".into(),
                },
                Step::AuthorizedKey {
                    file: "/root/.ssh/authorized_keys".into(),
                    backup: "/root/.ssh/authorized_keys.scptrace-backup-x".into(),
                    line_before: "ssh-ed25519 AAAA c\\xff".into(),
                    line_after: "command=\"x\" ssh-ed25519 AAAA c\\xff".into(),
                    at: "t".into(),
                },
            ],
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/installed.toml");
        s.save(&p, 0o600).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("[[step]]\nkind = \"link\""), "{text}");
        assert_eq!(State::load(&p).unwrap(), s);
        State::default().save(&p, 0o600).unwrap();
        assert!(!p.exists());
        assert_eq!(State::load(&p).unwrap(), State::default());
    }
}
