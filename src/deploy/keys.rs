//! `authorized_keys` lines, without I/O: finding one key by its fingerprint or
//! by its line, and adding or taking away the `command="… forced"` option so
//! that the rest of the line stays byte for byte what it was.
//!
//! A line is `[options] keytype base64-blob [comment]` (sshd(8), AUTHORIZED_KEYS
//! FILE FORMAT). Options may hold quoted strings with spaces and commas, so the
//! line is cut into fields the way sshd does: whitespace outside double quotes
//! separates fields, and `\"` inside quotes is a literal quote. A field is the
//! key type when the next field decodes to a blob that starts with that name.

use std::fmt;
use std::ops::Range;

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Which key the user means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// `SHA256:…` as `ssh-keygen -lf` prints it (unpadded base64).
    Fingerprint(String),
    /// The key blob, from a public key line (`ssh-ed25519 AAAA… comment`).
    Blob(Vec<u8>),
}

impl KeySpec {
    /// Reads what the user gave: a `SHA256:` fingerprint or a key line (with or
    /// without options and comment).
    pub fn parse(text: &str) -> Result<KeySpec, KeyError> {
        let text = text.trim();
        if let Some(b64) = text.strip_prefix("SHA256:") {
            return match base64_decode(b64.trim_end_matches('=')) {
                Some(d) if d.len() == 32 => Ok(KeySpec::Fingerprint(format!("SHA256:{}", base64_encode(&d)))),
                _ => Err(KeyError::BadSpec(text.to_string())),
            };
        }
        if text.starts_with("MD5:") {
            return Err(KeyError::Md5(text.to_string()));
        }
        match parse_line(text.as_bytes()) {
            Some(k) => Ok(KeySpec::Blob(k.blob)),
            None => Err(KeyError::BadSpec(text.to_string())),
        }
    }

    fn matches(&self, key: &ParsedKey) -> bool {
        match self {
            KeySpec::Fingerprint(f) => fingerprint(&key.blob) == *f,
            KeySpec::Blob(b) => key.blob == *b,
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Fingerprint(fp) => f.write_str(fp),
            KeySpec::Blob(b) => write!(f, "the key {}", fingerprint(b)),
        }
    }
}

/// Why a key could not be found or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    BadSpec(String),
    Md5(String),
    NotFound { spec: String, present: Vec<String> },
    Ambiguous { spec: String, lines: Vec<usize> },
    HasCommand { line: usize, option: String },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::BadSpec(s) => write!(
                f,
                "{s:?} is neither a SHA256:… fingerprint (as `ssh-keygen -lf KEY.pub` prints it), nor a public key line, nor a readable .pub file"
            ),
            KeyError::Md5(s) => write!(
                f,
                "{s}: MD5 fingerprints are not supported; give the SHA256:… one (`ssh-keygen -lf KEY.pub`)"
            ),
            KeyError::NotFound { spec, present } => {
                write!(f, "no line holds {spec}")?;
                if present.is_empty() {
                    write!(f, "; the file holds no keys")
                } else {
                    write!(f, "; the keys there are: {}", present.join(", "))
                }
            }
            KeyError::Ambiguous { spec, lines } => write!(
                f,
                "{spec} is on more than one line ({}); remove the duplicates first",
                lines.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ")
            ),
            KeyError::HasCommand { line, option } => write!(
                f,
                "line {line} already has a forced command ({option}); scptrace forced would replace it, so nothing was changed"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// The parts of one key line, as byte ranges into it.
#[derive(Debug, Clone)]
struct ParsedKey {
    /// The options field, when there is one.
    options: Option<Range<usize>>,
    /// Where the key type starts.
    key_start: usize,
    blob: Vec<u8>,
}

/// `SHA256:` and the unpadded base64 of the blob's SHA-256, as ssh-keygen prints.
pub fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", base64_encode(&Sha256::digest(blob)))
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

/// Cuts a line into fields: runs of non-space bytes, where spaces inside
/// double quotes do not cut (sshd's option syntax).
fn fields(line: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i == line.len() {
            break;
        }
        let start = i;
        let mut quoted = false;
        while i < line.len() && (quoted || !is_space(line[i])) {
            match line[i] {
                b'\\' if quoted && line.get(i + 1) == Some(&b'"') => i += 1,
                b'"' => quoted = !quoted,
                _ => {}
            }
            i += 1;
        }
        out.push(start..i);
    }
    out
}

/// The blob when `b64` decodes to an SSH public key blob of type `ktype`.
fn key_blob(ktype: &[u8], b64: &[u8]) -> Option<Vec<u8>> {
    let blob = base64_decode(std::str::from_utf8(b64).ok()?)?;
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    (blob.get(4..4 + len)? == ktype).then_some(blob)
}

/// Parses one line; `None` for blank lines, comments and lines without a key.
fn parse_line(line: &[u8]) -> Option<ParsedKey> {
    let f = fields(line);
    if f.is_empty() || line[f[0].start] == b'#' {
        return None;
    }
    // The key starts at field 0 (no options) or field 1 (after the options).
    for k in 0..2.min(f.len()) {
        let Some(b64) = f.get(k + 1) else { break };
        if let Some(blob) = key_blob(&line[f[k].clone()], &line[b64.clone()]) {
            return Some(ParsedKey {
                options: (k == 1).then(|| f[0].clone()),
                key_start: f[k].start,
                blob,
            });
        }
    }
    None
}

/// Splits an options field at commas outside quotes.
fn options(field: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut i) = (0, false, 0);
    while i < field.len() {
        match field[i] {
            b'\\' if quoted && field.get(i + 1) == Some(&b'"') => i += 1,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(&field[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&field[start..]);
    out
}

/// The lines of `content`, each without its `\n`.
fn lines(content: &[u8]) -> impl Iterator<Item = (usize, Range<usize>)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= content.len() {
            return None;
        }
        let end = content[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(content.len(), |n| pos + n);
        let r = pos..end;
        pos = end + 1;
        Some(r)
    })
    .enumerate()
    .map(|(n, r)| (n + 1, r))
}

/// What [`add_command`] changed: one line, before and after (without `\n`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineEdit {
    /// 1-based.
    pub line: usize,
    pub before: Vec<u8>,
    pub after: Vec<u8>,
}

/// The option text for `command="…"`, with `"` and `\` escaped for sshd.
pub fn command_option(command: &str) -> String {
    let mut out = String::from("command=\"");
    for c in command.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Puts `option` (e.g. `command="/usr/bin/scptrace forced"`) in front of the
/// options of the one line holding `spec`'s key; every other byte of the file
/// stays as it was. Refuses a line that already has a `command=` option.
pub fn add_command(content: &[u8], spec: &KeySpec, option: &str) -> Result<(Vec<u8>, LineEdit), KeyError> {
    let mut found = Vec::new();
    let mut present = Vec::new();
    for (n, r) in lines(content) {
        let line = &content[r.clone()];
        let Some(key) = parse_line(line) else { continue };
        if spec.matches(&key) {
            found.push((n, r, key));
        } else {
            present.push(fingerprint(&key.blob));
        }
    }
    let (n, r, key) = match found.len() {
        0 => {
            return Err(KeyError::NotFound {
                spec: spec.to_string(),
                present,
            });
        }
        1 => found.remove(0),
        _ => {
            return Err(KeyError::Ambiguous {
                spec: spec.to_string(),
                lines: found.iter().map(|f| f.0).collect(),
            });
        }
    };
    let line = &content[r.clone()];
    let mut after = Vec::with_capacity(line.len() + option.len() + 1);
    match &key.options {
        Some(opts) => {
            for o in options(&line[opts.clone()]) {
                let name = o.split(|&b| b == b'=').next().unwrap_or_default();
                if name.eq_ignore_ascii_case(b"command") {
                    return Err(KeyError::HasCommand {
                        line: n,
                        option: String::from_utf8_lossy(o).into_owned(),
                    });
                }
            }
            after.extend_from_slice(&line[..opts.start]);
            after.extend_from_slice(option.as_bytes());
            after.push(b',');
            after.extend_from_slice(&line[opts.start..]);
        }
        None => {
            after.extend_from_slice(&line[..key.key_start]);
            after.extend_from_slice(option.as_bytes());
            after.push(b' ');
            after.extend_from_slice(&line[key.key_start..]);
        }
    }
    let mut out = Vec::with_capacity(content.len() + option.len() + 1);
    out.extend_from_slice(&content[..r.start]);
    out.extend_from_slice(&after);
    out.extend_from_slice(&content[r.end..]);
    let edit = LineEdit {
        line: n,
        before: line.to_vec(),
        after,
    };
    Ok((out, edit))
}

/// Undoes [`add_command`]: the one line equal to `edit.after` becomes
/// `edit.before` again. `None` when no line, or more than one, is equal to it
/// (the file was changed since).
pub fn restore(content: &[u8], edit: &LineEdit) -> Option<Vec<u8>> {
    let hits: Vec<Range<usize>> = lines(content)
        .filter(|(_, r)| content[r.clone()] == edit.after[..])
        .map(|(_, r)| r)
        .collect();
    let [r] = hits.as_slice() else { return None };
    let mut out = Vec::with_capacity(content.len());
    out.extend_from_slice(&content[..r.start]);
    out.extend_from_slice(&edit.before);
    out.extend_from_slice(&content[r.end..]);
    Some(out)
}

/// Standard base64, written without padding (the form of OpenSSH's
/// fingerprints), read with or without it. Strict otherwise: characters
/// outside the alphabet and set bits past the last byte are refused, as
/// OpenSSH's own decoder refuses them.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 without padding (the form of OpenSSH's fingerprints).
pub fn base64_encode(data: &[u8]) -> String {
    B64.encode(data)
}

/// Standard base64, padding optional; `None` for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    B64.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real ed25519 key; `ssh-keygen -lf` prints the fingerprint below for it.
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIANE4uYPozZ+Ur9d4bbDj4W43rJ0+o9D5vxsuAhlbWFW test@example";
    const FP: &str = "SHA256:VwYP8KYXVoUa7OSdl/nTzIJs+VPG3pI6d3NqGPhwno0";

    fn blob() -> Vec<u8> {
        base64_decode("AAAAC3NzaC1lZDI1NTE5AAAAIANE4uYPozZ+Ur9d4bbDj4W43rJ0+o9D5vxsuAhlbWFW").unwrap()
    }

    #[test]
    fn base64_round_trips() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"hello"), "aGVsbG8");
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("a!bc").is_none());
        assert!(base64_decode("aGVsbG8==").is_none(), "too much padding");
        assert!(base64_decode("aGVsbG9=").is_none(), "set bits past the last byte");
        assert_eq!(base64_encode(&[]), "");
    }

    #[test]
    fn fingerprint_is_ssh_keygens() {
        assert_eq!(fingerprint(&blob()), FP);
        assert_eq!(KeySpec::parse(FP).unwrap(), KeySpec::Fingerprint(FP.into()));
        assert_eq!(KeySpec::parse(KEY).unwrap(), KeySpec::Blob(blob()));
        assert!(matches!(KeySpec::parse("MD5:aa:bb"), Err(KeyError::Md5(_))));
        assert!(matches!(KeySpec::parse("nonsense"), Err(KeyError::BadSpec(_))));
    }

    #[test]
    fn options_with_quoted_spaces_are_one_field() {
        let line = format!(r#"from="10.0.0.1,10.0.0.2",environment="A=b c \"d\"" {KEY}"#);
        let k = parse_line(line.as_bytes()).unwrap();
        assert_eq!(k.blob, blob());
        let opts = &line.as_bytes()[k.options.unwrap()];
        assert_eq!(options(opts).len(), 2);
        assert!(parse_line(b"# comment").is_none());
        assert!(parse_line(b"   ").is_none());
        assert!(parse_line(b"ssh-rsa notbase64").is_none());
    }

    #[test]
    fn adds_command_in_front_and_restores_byte_for_byte() {
        let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEQn173/jVQt/X6ObZ94IRBTr3ShnM+O/qgIlXJ2BpZ9 other";
        let file = format!("# keys\n{other}\r\nno-pty,from=\"a b\" {KEY}\n\n");
        let opt = command_option("/usr/bin/scptrace forced");
        let (out, edit) = add_command(file.as_bytes(), &KeySpec::parse(FP).unwrap(), &opt).unwrap();
        assert_eq!(edit.line, 3);
        let want =
            format!("# keys\n{other}\r\ncommand=\"/usr/bin/scptrace forced\",no-pty,from=\"a b\" {KEY}\n\n");
        assert_eq!(String::from_utf8(out.clone()).unwrap(), want);
        assert_eq!(restore(&out, &edit).unwrap(), file.as_bytes());

        let plain = format!("{KEY}\n");
        let (out, _) = add_command(plain.as_bytes(), &KeySpec::parse(KEY).unwrap(), &opt).unwrap();
        assert_eq!(out, format!("{opt} {KEY}\n").as_bytes());
    }

    #[test]
    fn refuses_existing_command_missing_and_duplicate_keys() {
        let spec = KeySpec::parse(FP).unwrap();
        let forced = format!("restrict,Command=\"echo hi\" {KEY}\n");
        assert!(matches!(
            add_command(forced.as_bytes(), &spec, "command=\"x\""),
            Err(KeyError::HasCommand { line: 1, .. })
        ));
        assert!(matches!(
            add_command(b"# nothing\n", &spec, "command=\"x\""),
            Err(KeyError::NotFound { .. })
        ));
        let twice = format!("{KEY}\n{KEY}\n");
        assert!(matches!(
            add_command(twice.as_bytes(), &spec, "command=\"x\""),
            Err(KeyError::Ambiguous { .. })
        ));
    }

    #[test]
    fn command_option_escapes_quotes() {
        assert_eq!(command_option(r#"/a "b"\c"#), r#"command="/a \"b\"\\c""#);
    }
}
