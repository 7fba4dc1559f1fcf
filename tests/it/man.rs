//! The manual (issue 13): `make install` installs scptrace.1 and one page per
//! subcommand; each renders with `man -l` without a warning and has the
//! sections a reader looks for; every page named in SEE ALSO exists; every
//! `SCPTRACE_*` variable in the source is in ENVIRONMENT.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::util::{DEADLINE, Input, bin, run};

/// `man -l PAGE`, as plain text on one long line per paragraph (no
/// hyphenation breaks a name), with groff's warnings on stderr.
fn render(page: &Path) -> String {
    let mut c = Command::new("man");
    c.arg("-l")
        .arg(page)
        .env("MANWIDTH", "2000")
        .env("LC_ALL", "C.UTF-8")
        .env("MAN_KEEP_FORMATTING", "")
        .env_remove("MANPAGER")
        .env_remove("PAGER");
    let r = run(&mut c, Input::Null, DEADLINE);
    r.assert_success();
    let err = r.stderr_text();
    assert!(err.trim().is_empty(), "{}: man -l warned:\n{err}", page.display());
    String::from_utf8(r.stdout).expect("UTF-8")
}

/// The text of section `name` of a rendered page: the lines after its
/// heading, up to the next heading (headings are the unindented lines).
fn section<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!("\n{name}\n"))? + name.len() + 2;
    let rest = &text[start..];
    let end = rest
        .match_indices('\n')
        .find(|(i, _)| rest[i + 1..].starts_with(|c: char| c.is_ascii_uppercase()))
        .map_or(rest.len(), |(i, _)| i);
    Some(&rest[..end])
}

/// `name(sect)` references in a SEE ALSO section (its first paragraph: the
/// page's footer line follows).
fn references(see_also: &str) -> Vec<(String, String)> {
    let para = see_also.trim().split("\n\n").next().unwrap_or("");
    para.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (name, sect) = s
                .split_once('(')
                .unwrap_or_else(|| panic!("no (section) in {s:?}"));
            (name.to_string(), sect.trim_end_matches(')').to_string())
        })
        .collect()
}

/// Every `SCPTRACE_NAME` the source mentions.
fn env_names_in_source() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (i, _) in text.match_indices("SCPTRACE_") {
                    let name: String = text[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                        .collect();
                    // `SCPTRACE_<NAME>` and `SCPTRACE_*` in prose are no variables.
                    if name.len() > "SCPTRACE_".len() {
                        names.insert(name);
                    }
                }
            }
        }
    }
    names
}

#[test]
fn make_install_installs_every_page_and_each_is_complete() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("dest");
    // The binary under test, already built: CARGO=true skips make's build step.
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(root)
        .arg("install")
        .arg("CARGO=true")
        .arg(format!("BIN={}", bin().display()))
        .arg(format!("GENDIR={}", t.path().join("gen").display()))
        .arg(format!("DESTDIR={}", dest.display()))
        .arg("prefix=/usr");
    run(&mut make, Input::Null, DEADLINE).assert_success();
    let man1 = dest.join("usr/share/man/man1");
    let pages: BTreeSet<String> = std::fs::read_dir(&man1)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();

    // One page per subcommand listed in --help, and generate is listed.
    let help = run(Command::new(bin()).arg("--help"), Input::Null, DEADLINE);
    let help = String::from_utf8(help.stdout).unwrap();
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(listed.contains(&"generate"), "generate not in --help:\n{help}");
    let mut want: BTreeSet<String> = listed.iter().map(|c| format!("scptrace-{c}.1")).collect();
    want.insert("scptrace.1".into());
    assert_eq!(pages, want, "installed pages vs the commands of --help");

    for page in &pages {
        let text = render(&man1.join(page));
        let mut sections = vec![
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXIT STATUS",
            "SEE ALSO",
        ];
        if page == "scptrace.1" {
            sections.extend(["ENVIRONMENT", "FILES", "EXAMPLES"]);
        }
        for s in sections {
            let body = section(&text, s).unwrap_or_else(|| panic!("{page}: no {s} section:\n{text}"));
            assert!(!body.trim().is_empty(), "{page}: {s} is empty");
        }
        // Every command says what exit status 2 means, at least.
        assert!(section(&text, "EXIT STATUS").unwrap().contains('2'), "{page}");
        for (name, sect) in references(section(&text, "SEE ALSO").unwrap()) {
            if name.starts_with("scptrace") {
                assert_eq!(sect, "1", "{page}: {name}({sect})");
                assert!(
                    pages.contains(&format!("{name}.1")),
                    "{page}: SEE ALSO {name}(1) is not installed"
                );
            } else {
                let found = Command::new("man").args(["-w", &sect, &name]).output().unwrap();
                assert!(
                    found.status.success(),
                    "{page}: SEE ALSO {name}({sect}): no such page here"
                );
            }
        }
    }

    let main = render(&man1.join("scptrace.1"));
    let env = section(&main, "ENVIRONMENT").unwrap();
    for name in env_names_in_source() {
        assert!(
            env.contains(&name),
            "scptrace.1: {name} is used in src/ but not in ENVIRONMENT"
        );
    }
    let files = section(&main, "FILES").unwrap();
    for f in [
        "/etc/scptrace/config.toml",
        "installed.toml",
        ".local/state/scptrace",
        ".config/scptrace/config.toml",
    ] {
        assert!(files.contains(f), "scptrace.1 FILES: no {f}");
    }
    let examples = section(&main, "EXAMPLES").unwrap();
    for e in [
        "scptrace install",
        "scptrace check bug.log",
        "scptrace replay bug.log",
        "scptrace record",
    ] {
        assert!(examples.contains(e), "scptrace.1 EXAMPLES: no {e}");
    }

    // make uninstall takes every page away again.
    let mut un = Command::new("make");
    un.arg("-C")
        .arg(root)
        .arg("uninstall")
        .arg(format!("DESTDIR={}", dest.display()))
        .arg("prefix=/usr");
    run(&mut un, Input::Null, DEADLINE).assert_success();
    assert_eq!(
        std::fs::read_dir(&man1).unwrap().count(),
        0,
        "pages left after make uninstall"
    );
}
