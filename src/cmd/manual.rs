//! The manual: scptrace(1) and one page per subcommand, scptrace-NAME(1).
//! clap_mangen renders what the clap definition holds (name, synopsis,
//! description, options, the subcommand list); the sections clap has no
//! place for (exit status, environment, files, examples, see also) are
//! written here, in one table per page, so the pages stay complete when an
//! option changes. A paragraph of a subcommand's `after_help` that starts
//! with "Exit status" is that page's EXIT STATUS, so it is written once.

use std::io;

use clap::CommandFactory;
use roff::{Roff, bold, italic, roman};

use super::cli::Cli;

/// Every environment variable scptrace reads or sets, and what it does.
/// `tests/it/man.rs` checks that every `SCPTRACE_*` name in src/ is here.
const ENV: &[(&str, &str)] = &[
    (
        "SCPTRACE_LOG_DIR",
        "Directory for transcripts (config key log_dir). Default: $XDG_STATE_HOME/scptrace, else ~/.local/state/scptrace.",
    ),
    (
        "SCPTRACE_REAL_SCP",
        "The real scp the stand-in and replay run (config key real_scp). In an ssh session it is not taken from the \
         environment unless /etc/scptrace/config.toml says allow_env_programs = true.",
    ),
    (
        "SCPTRACE_SFTP_SERVER",
        "The sftp-server replay runs for an SFTP transcript (config key sftp_server). Default: \
         /usr/lib/openssh/sftp-server or another usual place. In an ssh session it is not taken from the \
         environment unless /etc/scptrace/config.toml says allow_env_programs = true.",
    ),
    (
        "SCPTRACE_FRAMING",
        "message (one line per protocol message) or raw (one per read); config key framing.",
    ),
    (
        "SCPTRACE_DATA",
        "head (the first 32 bytes of each file), full or none; config key data.",
    ),
    (
        "SCPTRACE_FORMAT",
        "Transcript format: text or jsonl; config key format.",
    ),
    (
        "SCPTRACE_TIMESTAMPS",
        "true: prefix each event with seconds since start; config key timestamps.",
    ),
    (
        "SCPTRACE_COLOR",
        "auto, always or never; config key color. NO_COLOR (non-empty) turns auto off.",
    ),
    (
        "SCPTRACE_PAGER",
        "The pager show uses on a terminal, run by /bin/sh -c (before PAGER; default less -R; empty or cat: none). \
         Never when piped, with --no-pager, or under an sshd ForceCommand.",
    ),
    (
        "SCPTRACE_MAX_LOG_BYTES",
        "Transcript cap in bytes (default 64 MiB): past it file contents are no longer shown, past 1.25 times it only \
         the exit status follows; config key max_log_bytes.",
    ),
    (
        "SCPTRACE_KEEP",
        "Keep at most this many transcripts in the log directory (0: all); config key keep.",
    ),
    (
        "SCPTRACE_KEEP_DAYS",
        "Delete transcripts older than this many days (0: never); config key keep_days.",
    ),
    (
        "SCPTRACE_SPLICE",
        "0 or false: never move file data with splice(2); config key splice.",
    ),
    (
        "SCPTRACE_FORCED",
        "Set to 1 by scptrace forced for every command it runs, so that scptrace doctor run through it can say so.",
    ),
    (
        "SCPTRACE_ACTIVE",
        "Set to 1 by scptrace forced for the scp it traces: a stand-in started inside it runs the real scp untraced.",
    ),
    (
        "SCPTRACE_HOP",
        "Set by the stand-in for the real scp it runs: finds a stand-in that resolves to itself.",
    ),
    (
        "SCPTRACE_DEPTH",
        "How many stand-ins run inside each other; past a few, the stand-in stops with an error.",
    ),
    (
        "SCPTRACE_ALLOW_ENV_PROGRAMS",
        "Not read: allow_env_programs is taken only from /etc/scptrace/config.toml, so that a client cannot choose \
         what runs.",
    ),
    (
        "SCPTRACE_AS_SSH",
        "Set by scptrace record for the scp client it runs: marks scptrace started as its ssh program.",
    ),
    (
        "XDG_STATE_HOME, XDG_CONFIG_HOME, HOME",
        "Where the log directory and the user's config file are.",
    ),
    (
        "SSH_ORIGINAL_COMMAND",
        "Read by scptrace forced: the command the client asked for. SHELL: the shell forced runs it with (outside an \
         ssh session; inside one, the passwd shell, as sshd does).",
    ),
];

/// The tracing variables (for the pages of the commands that trace).
const TRACE_ENV: &[&str] = &[
    "SCPTRACE_LOG_DIR",
    "SCPTRACE_FRAMING",
    "SCPTRACE_DATA",
    "SCPTRACE_FORMAT",
    "SCPTRACE_TIMESTAMPS",
    "SCPTRACE_COLOR",
    "SCPTRACE_MAX_LOG_BYTES",
    "SCPTRACE_KEEP",
    "SCPTRACE_KEEP_DAYS",
    "SCPTRACE_SPLICE",
];

/// FILES: (path, what).
const FILES: &[(&str, &str)] = &[
    (
        "/etc/scptrace/config.toml",
        "The system config file, read after the user's. Only it may say allow_env_programs = true.",
    ),
    (
        "$XDG_CONFIG_HOME/scptrace/config.toml (~/.config/scptrace/config.toml)",
        "The user's config file. A setting comes from the command line, else its SCPTRACE_* variable, else the user's file, \
         else the system file, else its default.",
    ),
    (
        "/etc/scptrace/installed.toml, ~/.config/scptrace/installed.toml",
        "What scptrace install changed (next to the config file it wrote); scptrace uninstall undoes exactly that.",
    ),
    (
        "$SCPTRACE_LOG_DIR, $XDG_STATE_HOME/scptrace, ~/.local/state/scptrace",
        "The log directory (the first that is set): one transcript per traced run, START-PID-TAG.log, mode 0600, in a \
         directory of mode 0700 that must be the user's own.",
    ),
    (
        "~/.ssh/authorized_keys, authorized_keys.scptrace-backup-TIME",
        "The file install --authorized-key edits, and the copy it keeps of it.",
    ),
];

/// What one page adds to what clap knows.
struct Page {
    /// EXIT STATUS lines (code, meaning), when `after_help` has no
    /// "Exit status" paragraph.
    exit: &'static [(&'static str, &'static str)],
    /// EXAMPLES: (command lines, what they do).
    examples: &'static [(&'static str, &'static str)],
    /// Names from [`ENV`] this command reads.
    env: &'static [&'static str],
    /// Whether FILES applies (the command reads config files).
    files: bool,
    /// Other pages, besides scptrace(1).
    see_also: &'static [&'static str],
}

const USAGE_EXIT: (&str, &str) = ("2", "The command line is wrong (clap's usage message on stderr).");
const TRACED_EXIT: &[(&str, &str)] = &[
    (
        "N",
        "The traced program's exit status; a program killed by a signal kills scptrace with the same signal. A \
         transcript that cannot be written never changes it (a warning on stderr).",
    ),
    ("1", "scptrace could not start the program (a message on stderr)."),
];

fn page(name: &str) -> Page {
    let tracing = |exit, examples, see_also| Page {
        exit,
        examples,
        env: TRACE_ENV,
        files: true,
        see_also,
    };
    match name {
        "run" => tracing(
            TRACED_EXIT,
            &[
                (
                    "scptrace run -o t.log -- scp -d -t /tmp",
                    "Trace a legacy scp server's stdio into t.log.",
                ),
                (
                    "scptrace run --data full -o - -- cat",
                    "Trace any program, live on stderr, file contents in full.",
                ),
            ],
            &["scptrace-show", "scptrace-check"],
        ),
        "record" => tracing(
            &[
                ("N", "The scp client's own exit status."),
                ("1", "scptrace could not start the client (a message on stderr)."),
            ],
            &[
                (
                    "scptrace record -o bug.log -- scp -r reports host:/srv/upload/",
                    "Trace the client side of one scp command: nothing is installed on host.",
                ),
                (
                    "scptrace record --data none -o bug.log -- scp -O file host:/tmp/",
                    "The same, with no file contents in the transcript.",
                ),
            ],
            &["scp(1)", "ssh(1)", "scptrace-check"],
        ),
        "forced" | "sftp-server" => tracing(
            TRACED_EXIT,
            &[
                (
                    "ForceCommand /usr/local/bin/scptrace forced",
                    "In sshd_config (inside a Match block to trace some users only).",
                ),
                (
                    "scptrace install --authorized-key SHA256:...",
                    "Force scptrace forced on one key in ~/.ssh/authorized_keys, without root.",
                ),
                (
                    "Subsystem sftp /usr/local/bin/scptrace sftp-server",
                    "In sshd_config: trace SFTP sessions.",
                ),
            ],
            &[
                "sshd_config(5)",
                "sftp-server(8)",
                "scptrace-install",
                "scptrace-doctor",
            ],
        ),
        "show" => Page {
            exit: &[
                ("0", "Every file was read to its end."),
                (
                    "2",
                    "A file could not be read or is not a transcript (scptrace: FILE:LINE: what is wrong).",
                ),
            ],
            examples: &[
                (
                    "scptrace show t.log",
                    "Render a transcript, coloured on a terminal.",
                ),
                (
                    "scptrace show --summary ~/.local/state/scptrace/*.log",
                    "One summary per transcript.",
                ),
                (
                    "scptrace show --format jsonl t.log > t.jsonl",
                    "Convert to JSON Lines (losslessly, either way).",
                ),
                ("scptrace show --violations t.log", "Only the !! lines."),
            ],
            env: &["SCPTRACE_COLOR", "SCPTRACE_PAGER"],
            files: true,
            see_also: &["scptrace-check"],
        },
        "check" => Page {
            exit: &[],
            examples: &[
                (
                    "scptrace check bug.log",
                    "List the protocol violations in a transcript (exit status 1 if any).",
                ),
                (
                    "scptrace check ~/.local/state/scptrace/*.log",
                    "Check every transcript of the log directory.",
                ),
            ],
            env: &["SCPTRACE_COLOR"],
            files: true,
            see_also: &["scptrace-show", "scptrace-replay"],
        },
        "ls" => Page {
            exit: &[
                (
                    "0",
                    "Listed (also for an empty or missing log directory, said on stderr).",
                ),
                (
                    "2",
                    "The log directory cannot be listed (scptrace: log directory DIR: what is wrong).",
                ),
            ],
            examples: &[
                (
                    "scptrace ls",
                    "The log directory's transcripts, newest first: start, program and mode, files, bytes, exit, violations.",
                ),
                (
                    "scptrace ls --format jsonl",
                    "The same, one JSON object per transcript.",
                ),
                (
                    "scptrace show --summary @1",
                    "The first line's transcript, summarised.",
                ),
            ],
            env: &["SCPTRACE_LOG_DIR"],
            files: true,
            see_also: &["scptrace-show", "scptrace-check"],
        },
        "replay" => Page {
            exit: &[],
            examples: &[
                (
                    "scptrace replay bug.log",
                    "Play the client's side against the real scp, in a new temporary directory.",
                ),
                (
                    "scptrace replay bug.log --target /tmp/x -- /path/to/your/scp",
                    "Against your own build of scp, in /tmp/x.",
                ),
                (
                    "scptrace replay sftp.log",
                    "An SFTP session (scp's default mode): its requests against the real sftp-server, rooted in a new temporary directory.",
                ),
            ],
            env: &["SCPTRACE_REAL_SCP", "SCPTRACE_SFTP_SERVER"],
            files: true,
            see_also: &["scp(1)", "scptrace-check"],
        },
        "install" => Page {
            exit: &[
                ("0", "Everything is in place (or already was)."),
                (
                    "1",
                    "Nothing could be or was changed: the reason and a hint on stderr.",
                ),
            ],
            examples: &[
                (
                    "sudo scptrace install",
                    "Link /usr/local/bin/scp to scptrace for every user's ssh sessions.",
                ),
                (
                    "scptrace install --authorized-key SHA256:...",
                    "Without root: trace one key's sessions.",
                ),
                (
                    "scptrace install --user --dir ~/.local/bin",
                    "Without root, into a directory of yours.",
                ),
                (
                    "ssh HOST scptrace doctor",
                    "From a client: check what a session there runs as scp.",
                ),
            ],
            env: &["SCPTRACE_REAL_SCP"],
            files: true,
            see_also: &["scptrace-uninstall", "scptrace-doctor", "sshd_config(5)"],
        },
        "uninstall" => Page {
            exit: &[
                (
                    "0",
                    "Every recorded step was undone, or left alone because it had changed since (reported).",
                ),
                (
                    "1",
                    "A step failed: it stays in installed.toml; fix the cause and run uninstall again.",
                ),
            ],
            examples: &[("sudo scptrace uninstall", "Undo what sudo scptrace install did.")],
            env: &[],
            files: true,
            see_also: &["scptrace-install"],
        },
        "doctor" => Page {
            exit: &[
                (
                    "0",
                    "A legacy scp server started like this session would be traced.",
                ),
                ("1", "It would not: each problem on its own line, with a hint."),
            ],
            examples: &[
                (
                    "ssh HOST scptrace doctor",
                    "What a non-interactive session on HOST runs as scp, and why.",
                ),
                (
                    "ssh -i KEY HOST scptrace doctor --format json",
                    "The same for one key's sessions, as JSON.",
                ),
            ],
            env: &[
                "SCPTRACE_REAL_SCP",
                "SCPTRACE_LOG_DIR",
                "SCPTRACE_FORCED",
                "SCPTRACE_ACTIVE",
            ],
            files: true,
            see_also: &["scptrace-install", "sshd(8)"],
        },
        "generate" => Page {
            exit: &[("0", "Written."), ("1", "Could not write (a message on stderr).")],
            examples: &[
                (
                    "scptrace generate man --dir /usr/local/share/man/man1",
                    "Write every page of this manual.",
                ),
                (
                    "scptrace generate bash > /etc/bash_completion.d/scptrace",
                    "Bash completion.",
                ),
            ],
            env: &[],
            files: false,
            see_also: &[],
        },
        _ => Page {
            exit: &[("0", "Success."), ("1", "An error (a message on stderr).")],
            examples: &[],
            env: &[],
            files: true,
            see_also: &[],
        },
    }
}

/// The examples of scptrace(1): the README's, then the bug-report workflow
/// of docs/reporting-bugs.md.
const MAIN_EXAMPLES: &[(&str, &str)] = &[
    (
        "scptrace run -o t.log -- scp -d -t /tmp",
        "Trace any program's stdio.",
    ),
    (
        "scptrace install",
        "Put the scp stand-in first on the PATH sshd gives sessions.",
    ),
    (
        "ssh HOST scptrace doctor",
        "What a remote non-interactive session runs as scp.",
    ),
    (
        "scptrace record -- scp -O file host:/tmp/",
        "The client side, nothing installed remotely.",
    ),
    (
        "scptrace show t.log",
        "Render, filter, summarise, convert to JSON Lines.",
    ),
    (
        "scptrace check t.log",
        "List protocol violations (exit status 1 if any).",
    ),
    (
        "scptrace replay t.log --target /tmp/x",
        "Speak the recorded side to a fresh scp.",
    ),
    (
        "sudo scptrace install\nssh HOST scptrace doctor",
        "Reporting a bug, 1. capture: on the server, put the stand-in in place and check it from the client \
         (without root: scptrace install --authorized-key SHA256:...; on the client only: scptrace record). \
         Reproduce the bug; the transcript is in ~/.local/state/scptrace/ of the user the client logged in as.",
    ),
    (
        "scptrace record --data none -o bug.log -- scp ...",
        "2. Keep file contents out: data lines then give only the sizes. For the stand-in and forced, data = \"none\" \
         in the session user's config file (or /etc/scptrace/config.toml), or SCPTRACE_DATA=none.",
    ),
    (
        "scptrace check bug.log\nscptrace show --summary bug.log",
        "3. Check: paste both into the report with the transcript, the failing command and both sides' versions.",
    ),
    (
        "scptrace replay bug.log -- /path/to/your/scp",
        "4. Replay (the maintainer): play the client's side against a build of scp and see where its replies differ.",
    ),
    ("sudo scptrace uninstall", "Put everything back."),
];

const MAIN_EXIT: &[(&str, &str)] = &[
    (
        "0",
        "Success (see each command's page: check, replay and doctor say more).",
    ),
    (
        "1",
        "An error, or what the command was asked to find (violations, a difference, a problem).",
    ),
    USAGE_EXIT,
    (
        "N",
        "run, record, forced, sftp-server and the stand-in (scptrace started as scp) exit with the traced \
         program's status.",
    ),
];

const MAIN_DESCRIPTION: &str = "\
Started as scp (a link named scp that points to it, first on the PATH sshd gives sessions: see scptrace-install(1)), \
scptrace traces legacy scp server invocations (scp -t, scp -f) and hands anything else to the real scp with exec, \
untouched. A traced run spawns the real scp with piped stdio, relays every byte unchanged between the peer and it, \
and writes an annotated transcript: I: lines are what the peer sent, O: what scp answered, E: its stderr, with the \
bytes escaped reversibly and the protocol decoded after a TAB and #.

It never changes a transfer: a transcript that cannot be written costs a warning, never the transfer. Its verdicts \
come from decoding the bytes again. Nothing it reads (a transcript, a peer, the environment) chooses a program or a \
path, or reaches the terminal unescaped.";

const SEE_ALSO_SYSTEM: &[&str] = &["scp(1)", "ssh(1)", "sshd(8)", "sshd_config(5)", "sftp-server(8)"];

/// One rendered page: its file name (`scptrace-run.1`) and roff text.
pub struct Rendered {
    pub file_name: String,
    pub text: String,
}

/// Every page: scptrace(1) first, then one per listed subcommand.
pub fn pages() -> io::Result<Vec<Rendered>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut out = vec![render_main(&cmd, &subs)?];
    for sub in &subs {
        out.push(render_sub(sub)?);
    }
    Ok(out)
}

/// The page's name as in SEE ALSO: `scptrace-run(1)`.
fn page_ref(cmd: &clap::Command) -> String {
    format!("{}(1)", cmd.get_display_name().unwrap_or(cmd.get_name()))
}

const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// clap_mangen's part of a page (each section call writes roff's two-line
/// apostrophe preamble; the page keeps the first).
fn clap_sections(man: &clap_mangen::Man, options: bool, subcommands: bool) -> io::Result<String> {
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if options {
        man.render_options_section(&mut buf)?;
    }
    if subcommands {
        man.render_subcommands_section(&mut buf)?;
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    Ok(format!("{PREAMBLE}{}", text.replace(PREAMBLE, "")))
}

fn finish(head: String, tail: &Roff) -> String {
    format!("{head}{}", tail.render().replacen(PREAMBLE, "", 1))
}

fn render_main(cmd: &clap::Command, subs: &[clap::Command]) -> io::Result<Rendered> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut head = clap_sections(&man, true, true)?;
    // The longer description after the list of commands would read oddly:
    // it goes right after clap's one-line DESCRIPTION instead.
    let mut extra = Roff::new();
    prose(&mut extra, MAIN_DESCRIPTION);
    if let Some(at) = head.find(".SH OPTIONS") {
        head.insert_str(at, &extra.render().replacen(PREAMBLE, "", 1));
    }
    let mut r = Roff::new();
    table(&mut r, "EXIT STATUS", MAIN_EXIT);
    let env: Vec<&str> = ENV.iter().map(|(n, _)| *n).collect();
    environment(&mut r, &env);
    files(&mut r);
    examples(&mut r, MAIN_EXAMPLES);
    let mut see: Vec<String> = subs.iter().map(page_ref).collect();
    see.extend(SEE_ALSO_SYSTEM.iter().map(|s| s.to_string()));
    see_also(&mut r, &see);
    Ok(Rendered {
        file_name: man.get_filename(),
        text: finish(head, &r),
    })
}

fn render_sub(sub: &clap::Command) -> io::Result<Rendered> {
    let p = page(sub.get_name());
    // after_help is shown in DESCRIPTION, except its "Exit status" paragraph.
    let after = sub.get_after_help().map(|s| s.to_string()).unwrap_or_default();
    let (exit_para, details): (Vec<&str>, Vec<&str>) = after
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .partition(|p| p.starts_with("Exit status"));
    let man = clap_mangen::Man::new(sub.clone().after_help(None::<&str>).after_long_help(None::<&str>));
    let has_args = sub.get_arguments().any(|a| !a.is_hide_set());
    let mut head = clap_sections(&man, has_args, false)?;
    let mut desc = Roff::new();
    for para in &details {
        prose(&mut desc, para);
    }
    let at = head.find(".SH OPTIONS").unwrap_or(head.len());
    head.insert_str(at, &desc.render().replacen(PREAMBLE, "", 1));

    let mut r = Roff::new();
    if let Some(para) = exit_para.first() {
        r.control("SH", ["EXIT STATUS"]);
        prose(&mut r, para);
        r.control("PP", []).text([roman(
            "Exit status 2 also means that the command line is wrong (clap's usage message on stderr).",
        )]);
    } else {
        let mut rows = p.exit.to_vec();
        rows.push(USAGE_EXIT);
        table(&mut r, "EXIT STATUS", &rows);
    }
    if !p.env.is_empty() {
        environment(&mut r, p.env);
    }
    if p.files {
        files(&mut r);
    }
    if !p.examples.is_empty() {
        examples(&mut r, p.examples);
    }
    let mut see = vec!["scptrace(1)".to_string()];
    for s in p.see_also {
        see.push(if s.contains('(') {
            s.to_string()
        } else {
            format!("{s}(1)")
        });
    }
    see_also(&mut r, &see);
    Ok(Rendered {
        file_name: man.get_filename(),
        text: finish(head, &r),
    })
}

/// Text with `code` in bold.
fn inline(text: &str) -> Vec<roff::Inline> {
    text.split('`')
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(i, s)| if i % 2 == 1 { bold(s) } else { roman(s) })
        .collect()
}

/// A paragraph of help text: its unindented lines filled as one paragraph,
/// indented runs (lists, tables, sshd_config lines) kept as they are.
fn prose(r: &mut Roff, text: &str) {
    for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        r.control("PP", []);
        let lines: Vec<&str> = para.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let indented = |l: &str| l.starts_with(' ') || l.contains("   ");
            let start = i;
            while i < lines.len() && indented(lines[i]) == indented(lines[start]) {
                i += 1;
            }
            let run = &lines[start..i];
            if indented(run[0]) {
                r.control("nf", []);
                for l in run {
                    r.text(inline(l));
                }
                r.control("fi", []);
            } else {
                r.text(inline(&run.join(" ")));
            }
        }
    }
}

fn table(r: &mut Roff, title: &str, rows: &[(&str, &str)]) {
    r.control("SH", [title]);
    for (term, what) in rows {
        r.control("TP", []).text([bold(*term)]).text(inline(what));
    }
}

fn environment(r: &mut Roff, names: &[&str]) {
    r.control("SH", ["ENVIRONMENT"]);
    for name in names {
        let what = ENV.iter().find(|(n, _)| n == name).map_or("", |(_, w)| w);
        r.control("TP", []).text([bold(*name)]).text(inline(what));
    }
}

fn files(r: &mut Roff) {
    r.control("SH", ["FILES"]);
    for (path, what) in FILES {
        r.control("TP", []).text([italic(*path)]).text(inline(what));
    }
}

fn examples(r: &mut Roff, list: &[(&str, &str)]) {
    r.control("SH", ["EXAMPLES"]);
    for (commands, what) in list {
        r.control("PP", []).text(inline(what));
        r.control("RS", ["4"]).control("nf", []);
        for line in commands.lines() {
            r.text([bold(format!("$ {line}"))]);
        }
        r.control("fi", []).control("RE", []);
    }
}

fn see_also(r: &mut Roff, pages: &[String]) {
    r.control("SH", ["SEE ALSO"]);
    let refs: Vec<roff::Inline> = pages
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            let (name, sect) = p.split_once('(').unwrap_or((p.as_str(), "1)"));
            let sep = if i + 1 < pages.len() { ", " } else { "" };
            [bold(name), roman(format!("({sect}{sep}"))]
        })
        .collect();
    r.text(refs);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_has_the_sections_and_every_env_row_is_described() {
        let pages = pages().unwrap();
        assert!(pages.len() > 5);
        assert_eq!(pages[0].file_name, "scptrace.1");
        for p in &pages {
            for s in [
                ".SH NAME",
                ".SH SYNOPSIS",
                ".SH DESCRIPTION",
                ".SH \"EXIT STATUS\"",
                ".SH \"SEE ALSO\"",
            ] {
                assert!(p.text.contains(s), "{}: no {s}", p.file_name);
            }
            assert_eq!(
                p.text.matches(".ds Aq").count(),
                2,
                "{}: one preamble",
                p.file_name
            );
        }
        for s in [".SH ENVIRONMENT", ".SH FILES", ".SH EXAMPLES"] {
            assert!(pages[0].text.contains(s), "scptrace.1: no {s}");
        }
        for (name, what) in ENV {
            assert!(!what.is_empty(), "{name}");
        }
        for name in TRACE_ENV {
            assert!(ENV.iter().any(|(n, _)| n == name), "{name}");
        }
    }

    #[test]
    fn prose_keeps_indented_lines_and_fills_the_rest() {
        let mut r = Roff::new();
        prose(&mut r, "one\ntwo `code`\n  0  zero\n  1  one\n\n.dot");
        let t = r.to_roff();
        assert!(
            t.contains("one two \\fBcode\\fR\n.nf\n  0  zero\n  1  one\n.fi\n.PP\n\\&.dot"),
            "{t}"
        );
    }
}
