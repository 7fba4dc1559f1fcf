//! Error text for people: one format, `scptrace: FILE[:LINE]: what, what to
//! do` (docs/usage.md), and OS errors as their plain strerror text, never
//! Rust's `… (os error 2)` rendering.
//!
//! Besides the messages built with [`io`], the two places every message
//! leaves through (`main`'s error line and [`crate::warn`]) pass their text
//! through [`strip_os_error`], so an io::Error shown with `{e}` deep inside
//! some context still reads the same.

use std::fmt;

/// An io::Error as a person reads it: `No such file or directory` for an OS
/// error (strerror's text), its own message otherwise.
pub fn io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => strip_os_error(&e.to_string()),
    }
}

/// `text` without any ` (os error N)` that Rust's io::Error display added.
pub fn strip_os_error(text: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            out.push_str(&rest[..at]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..at + MARK.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A failure to set up what was asked, found before anything ran (a
/// transcript `-o` cannot create, …): `main` prints it like any error and
/// exits 2, the status clap gives a bad command line, instead of 1.
#[derive(Debug)]
pub struct Setup(pub String);

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Setup {}

/// The exit status of a [`Setup`] failure.
pub const SETUP_EXIT: i32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_as_strerror() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(e.to_string(), "No such file or directory (os error 2)");
        assert_eq!(io(&e), "No such file or directory");
        let custom = std::io::Error::other("too many connections");
        assert_eq!(io(&custom), "too many connections");
    }

    #[test]
    fn suffixes_are_stripped_wherever_they_are() {
        assert_eq!(
            strip_os_error("cannot open a: Permission denied (os error 13); b: x (os error 2)"),
            "cannot open a: Permission denied; b: x"
        );
        // Not Rust's suffix: left alone.
        assert_eq!(strip_os_error("a (os error x) b"), "a (os error x) b");
        assert_eq!(strip_os_error("a (os error 12"), "a (os error 12");
        assert_eq!(strip_os_error("plain"), "plain");
    }
}
