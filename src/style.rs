//! Colour, decided once: `--color auto|always|never`, `NO_COLOR` and whether
//! stdout is a terminal resolve into one [`Styles`] value, and renderers apply
//! its styles unconditionally. The plain set applies nothing, so coloured and
//! plain output come from the same code path and differ only in escape codes.
//!
//! Transcripts themselves are never coloured: only `show` and `check` output.

use std::io::IsTerminal;

use owo_colors::Style;

use crate::config::ColorWhen;

/// The styles of every part of rendered output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Styles {
    /// The `I:` letter: bytes the peer sent.
    pub stdin: Style,
    /// The `O:` letter: bytes scp answered.
    pub stdout: Style,
    /// The `E:` letter: scp's stderr.
    pub stderr: Style,
    /// Escape sequences inside bytes (`\0`, `\n`, `\xNN`).
    pub escape: Style,
    /// The `# …` annotation after a bytes line.
    pub note: Style,
    /// `!!` lines.
    pub problem: Style,
    /// A violation's name in a `!!` line.
    pub violation: Style,
    /// `>>>` lines.
    pub meta: Style,
    /// `# key: value` header lines.
    pub header: Style,
    /// The `+SECONDS` prefix.
    pub timestamp: Style,
    /// `#: 0`.
    pub exit_ok: Style,
    /// `#: N` for N ≠ 0.
    pub exit_bad: Style,
    /// File names in headings, labels in summaries.
    pub label: Style,
}

impl Styles {
    /// No styling at all: output is byte for byte what the text form holds.
    pub const fn plain() -> Styles {
        let s = Style::new();
        Styles {
            stdin: s,
            stdout: s,
            stderr: s,
            escape: s,
            note: s,
            problem: s,
            violation: s,
            meta: s,
            header: s,
            timestamp: s,
            exit_ok: s,
            exit_bad: s,
            label: s,
        }
    }

    /// The colour set.
    pub const fn colored() -> Styles {
        let s = Style::new();
        Styles {
            stdin: s.green().bold(),
            stdout: s.blue().bold(),
            stderr: s.magenta().bold(),
            escape: s.yellow(),
            note: s.dimmed(),
            problem: s.red(),
            violation: s.red().bold(),
            meta: s.cyan(),
            header: s.dimmed(),
            timestamp: s.dimmed(),
            exit_ok: s.green(),
            exit_bad: s.red().bold(),
            label: s.bold(),
        }
    }

    /// The decision itself, without looking at the environment: `always` and
    /// `never` win; `auto` colours a terminal unless `NO_COLOR` is set to a
    /// non-empty value (no-color.org) or `TERM` is `dumb`.
    pub fn choose(when: ColorWhen, is_terminal: bool, no_color: bool, dumb_term: bool) -> Styles {
        let on = match when {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => is_terminal && !no_color && !dumb_term,
        };
        if on { Styles::colored() } else { Styles::plain() }
    }

    /// The styles for output to this process's stdout.
    pub fn for_stdout(when: ColorWhen) -> Styles {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|v| v == "dumb");
        Styles::choose(when, std::io::stdout().is_terminal(), no_color, dumb)
    }

    /// The styles for output to this process's stderr (`record -o -`).
    pub fn for_stderr(when: ColorWhen) -> Styles {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|v| v == "dumb");
        Styles::choose(when, std::io::stderr().is_terminal(), no_color, dumb)
    }

    /// Whether no style applies anything.
    #[cfg(test)]
    pub fn is_plain(&self) -> bool {
        *self == Styles::plain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision() {
        use ColorWhen::*;
        let c = |w, tty, nc, dumb| !Styles::choose(w, tty, nc, dumb).is_plain();
        assert!(c(Always, false, true, true), "always wins over NO_COLOR");
        assert!(!c(Never, true, false, false));
        assert!(c(Auto, true, false, false));
        assert!(!c(Auto, false, false, false), "not a terminal");
        assert!(!c(Auto, true, true, false), "NO_COLOR");
        assert!(!c(Auto, true, false, true), "TERM=dumb");
    }

    #[test]
    fn plain_styles_write_nothing() {
        let p = Styles::plain();
        for s in [p.stdin, p.escape, p.problem, p.meta, p.exit_bad, p.label] {
            assert_eq!(format!("{}", s.style("x")), "x");
        }
        let c = Styles::colored();
        assert_ne!(format!("{}", c.problem.style("x")), "x");
    }
}
