//! `scptrace uninstall`: undo exactly what `install` recorded in
//! `installed.toml`, newest step first; anything changed since is left alone
//! and reported.

use std::ffi::OsStr;

use anyhow::{Context, Result, anyhow};

use super::cli::UninstallArgs;
use crate::deploy::state::{State, Step};
use crate::deploy::{Scope, conffile, keyfile, keys, owner, write_atomic};
use crate::escape;

// Every line printed here shows paths and values from outside: escaped.
use crate::println_escaped as println;

/// What happened to one step on uninstall.
enum Undo {
    Done(String),
    /// Changed since install: left alone, dropped from the record.
    Left(String),
}

fn undo(step: &Step) -> Result<Undo> {
    match step {
        Step::Link { path, target, .. } => {
            let Ok(m) = std::fs::symlink_metadata(path) else {
                return Ok(Undo::Done(format!("link {} was already gone", path.display())));
            };
            let ours = m.file_type().is_symlink() && std::fs::read_link(path).is_ok_and(|t| t == *target);
            if !ours {
                return Ok(Undo::Left(format!(
                    "{} is no longer the link to {} that install made; left as is",
                    path.display(),
                    target.display()
                )));
            }
            // As the directory's controller, like install made it.
            owner::as_controller(path, "removing the link", || {
                std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))
            })?;
            Ok(Undo::Done(format!("removed link {}", path.display())))
        }
        Step::ConfigKey {
            file,
            key,
            line,
            previous,
            created,
            ..
        } => {
            owner::require_root_controlled(file, "the config file")?;
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Undo::Left(format!(
                        "{} is gone; nothing to restore",
                        file.display()
                    )));
                }
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
            };
            let out = match conffile::restore(&text, key, line, previous.as_deref()) {
                Ok(o) => o,
                Err(e) => {
                    return Ok(Undo::Left(format!(
                        "{key} in {}: {e}; left as is",
                        file.display()
                    )));
                }
            };
            if *created && out.trim().is_empty() {
                std::fs::remove_file(file).with_context(|| format!("cannot remove {}", file.display()))?;
                return Ok(Undo::Done(format!(
                    "removed {} (install created it)",
                    file.display()
                )));
            }
            write_atomic(file, out.as_bytes(), 0o644)?;
            Ok(Undo::Done(match previous {
                Some(p) => format!("restored `{p}` in {}", file.display()),
                None => format!("removed {key} from {}", file.display()),
            }))
        }
        Step::AuthorizedKey {
            file,
            backup,
            line_before,
            line_after,
            ..
        } => {
            let edit = keys::LineEdit {
                line: 0,
                before: escape::unescape(line_before.as_bytes())
                    .map_err(|e| anyhow!("install record: line_before: {e}"))?,
                after: escape::unescape(line_after.as_bytes())
                    .map_err(|e| anyhow!("install record: line_after: {e}"))?,
            };
            // As the file's controller: root restoring a user's file does it as that user.
            Ok(match keyfile::restore(file, backup, &edit)? {
                keyfile::Restored::Done(m) => Undo::Done(m),
                keyfile::Restored::Left(m) => Undo::Left(m),
            })
        }
    }
}

pub fn run(args: UninstallArgs) -> Result<i32> {
    let mut found = false;
    let mut failed = 0;
    for scope in Scope::for_uninstall(args.scope.user, args.scope.system) {
        if !scope.state.exists() {
            continue;
        }
        found = true;
        let mut state = State::load(&scope.state)?;
        println!("scptrace uninstall: {}", scope.state.display());
        let mut keep = Vec::new();
        while let Some(step) = state.steps.pop() {
            match undo(&step) {
                Ok(Undo::Done(msg)) => println!("  undone  {msg}"),
                Ok(Undo::Left(msg)) => println!("  skipped {msg}"),
                Err(e) => {
                    println!("  FAILED  {}: {e:#}", step.describe());
                    failed += 1;
                    keep.push(step);
                }
            }
        }
        keep.reverse();
        state.steps = keep;
        state.save(&scope.state, scope.mode)?;
        if state.steps.is_empty() {
            println!("  removed {}", scope.state.display());
            // The scptrace config directory, when nothing else is left in it.
            if let Some(dir) = scope.state.parent()
                && dir.file_name() == Some(OsStr::new("scptrace"))
                && std::fs::remove_dir(dir).is_ok()
            {
                println!("  removed {} (empty)", dir.display());
            }
        } else {
            println!(
                "  kept    {} with the {} step(s) that failed; fix the cause and run uninstall again",
                scope.state.display(),
                state.steps.len()
            );
        }
    }
    if !found {
        let places: Vec<String> = Scope::for_uninstall(args.scope.user, args.scope.system)
            .iter()
            .map(|s| s.state.display().to_string())
            .collect();
        println!(
            "scptrace uninstall: nothing to undo (no install record at {})",
            places.join(" or ")
        );
    }
    Ok(i32::from(failed > 0))
}
