//! Setting and restoring one top-level key of `config.toml` by editing its
//! line, so an admin's comments, order and other keys survive an install and
//! an uninstall byte for byte (re-rendering the table with the toml crate would drop comments and order).

use std::fmt;

/// Why a config file was not edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// The file is not valid TOML now; editing it could only make it worse.
    Invalid(String),
    /// The key's line is no longer the one install wrote.
    Changed { now: String },
    /// The key is written in a form this editor does not handle (a table, a
    /// multi-line value, a dotted key).
    Unhandled(String),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Invalid(e) => write!(f, "not valid TOML: {e}"),
            EditError::Changed { now } => write!(f, "changed since install (now `{now}`)"),
            EditError::Unhandled(k) => write!(f, "`{k}` is not a plain top-level `key = value` line"),
        }
    }
}

impl std::error::Error for EditError {}

/// Byte ranges of each line (without its `\n`).
fn line_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        out.push((pos, pos + line.trim_end_matches('\n').len()));
        pos += line.len();
    }
    out
}

/// Whether `line` assigns top-level `key` (`key = …` or `"key" = …`).
fn assigns(line: &str, key: &str) -> bool {
    let t = line.trim_start();
    let rest = if let Some(r) = t.strip_prefix(key) {
        r
    } else if let Some(r) = t.strip_prefix(&format!("\"{key}\"")) {
        r
    } else {
        return false;
    };
    rest.trim_start().starts_with('=')
}

fn is_table_header(line: &str) -> bool {
    line.trim_start().starts_with('[')
}

/// The line assigning top-level `key`, if any, as (index into `ranges`).
fn find(text: &str, ranges: &[(usize, usize)], key: &str) -> Option<usize> {
    ranges
        .iter()
        .take_while(|&&(s, e)| !is_table_header(&text[s..e]))
        .position(|&(s, e)| assigns(&text[s..e], key))
}

fn parse(text: &str) -> Result<toml::Table, EditError> {
    text.parse::<toml::Table>()
        .map_err(|e| EditError::Invalid(e.message().to_string()))
}

/// The line `key = "value"`, with TOML's string quoting.
pub fn key_line(key: &str, value: &str) -> String {
    format!("{key} = {}", toml::Value::String(value.to_string()))
}

/// Sets top-level `key` to the string `value`: replaces the line that assigns
/// it, or adds one at the end of the top-level keys. Returns the new text and
/// the line it replaced.
pub fn set(text: &str, key: &str, value: &str) -> Result<(String, Option<String>), EditError> {
    let before = parse(text)?;
    let ranges = line_ranges(text);
    let line = key_line(key, value);
    let (mut out, previous) = match find(text, &ranges, key) {
        Some(i) => {
            let (s, e) = ranges[i];
            (
                format!("{}{line}{}", &text[..s], &text[e..]),
                Some(text[s..e].to_string()),
            )
        }
        None if before.contains_key(key) => return Err(EditError::Unhandled(key.to_string())),
        None => {
            let at = ranges
                .iter()
                .find(|&&(s, e)| is_table_header(&text[s..e]))
                .map_or(text.len(), |&(s, _)| s);
            let head = &text[..at];
            let sep = if head.is_empty() || head.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            (format!("{head}{sep}{line}\n{}", &text[at..]), None)
        }
    };
    check(&out, &before, key, Some(value))?;
    if !out.ends_with('\n') && text.ends_with('\n') {
        out.push('\n');
    }
    Ok((out, previous))
}

/// Undoes [`set`]: the line `installed` (what set wrote) becomes `previous`
/// again, or goes away when there was none. Any other form of the key is left
/// alone and reported as [`EditError::Changed`].
pub fn restore(text: &str, key: &str, installed: &str, previous: Option<&str>) -> Result<String, EditError> {
    let before = parse(text)?;
    let ranges = line_ranges(text);
    let Some(i) = find(text, &ranges, key) else {
        return Err(EditError::Changed { now: "unset".into() });
    };
    let (s, e) = ranges[i];
    if text[s..e].trim() != installed.trim() {
        return Err(EditError::Changed {
            now: text[s..e].trim().to_string(),
        });
    }
    let out = match previous {
        Some(p) => format!("{}{p}{}", &text[..s], &text[e..]),
        None => {
            // Drop the line and its newline.
            let end = if text[e..].starts_with('\n') { e + 1 } else { e };
            format!("{}{}", &text[..s], &text[end..])
        }
    };
    let want = previous.map(|p| {
        parse(p)
            .ok()
            .and_then(|t| t.get(key).cloned())
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            .unwrap_or_default()
    });
    check(&out, &before, key, want.as_deref())?;
    Ok(out)
}

/// The edited text must parse, hold `key` as wanted, and keep every other key.
fn check(out: &str, before: &toml::Table, key: &str, want: Option<&str>) -> Result<(), EditError> {
    let after = parse(out)?;
    let got = after
        .get(key)
        .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
    let others = |t: &toml::Table| {
        let mut t = t.clone();
        t.remove(key);
        t
    };
    if got.as_deref() != want || others(&after) != others(before) {
        return Err(EditError::Unhandled(key.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_and_removes_keeping_everything_else() {
        let text = "# my settings\ndata = \"full\"  # all of it\n\n[extra]\nx = 1\n";
        let (out, prev) = set(text, "real_scp", "/usr/bin/scp").unwrap();
        assert_eq!(prev, None);
        assert_eq!(
            out,
            "# my settings\ndata = \"full\"  # all of it\n\nreal_scp = \"/usr/bin/scp\"\n[extra]\nx = 1\n"
        );
        let line = key_line("real_scp", "/usr/bin/scp");
        assert_eq!(restore(&out, "real_scp", &line, None).unwrap(), text);
    }

    #[test]
    fn replaces_and_restores_a_previous_value() {
        let text = "real_scp = '/opt/scp'   # old\nkeep = 3";
        let (out, prev) = set(text, "real_scp", "/usr/bin/scp").unwrap();
        assert_eq!(prev.as_deref(), Some("real_scp = '/opt/scp'   # old"));
        assert_eq!(out, "real_scp = \"/usr/bin/scp\"\nkeep = 3");
        let line = key_line("real_scp", "/usr/bin/scp");
        assert_eq!(restore(&out, "real_scp", &line, prev.as_deref()).unwrap(), text);
    }

    #[test]
    fn empty_file_and_changed_value() {
        let (out, _) = set("", "real_scp", "/usr/bin/scp").unwrap();
        assert_eq!(out, "real_scp = \"/usr/bin/scp\"\n");
        let line = key_line("real_scp", "/usr/bin/scp");
        assert_eq!(restore(&out, "real_scp", &line, None).unwrap(), "");
        let changed = "real_scp = \"/other\"\n";
        assert!(matches!(
            restore(changed, "real_scp", &line, None),
            Err(EditError::Changed { .. })
        ));
        assert!(matches!(
            set("x = [", "real_scp", "/a"),
            Err(EditError::Invalid(_))
        ));
    }
}
