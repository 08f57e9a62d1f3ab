//! The `config` crate's messages, rewritten to say which key is wrong and how to fix it.

use super::*;

/// Makes the `config` crate's messages say where the problem is: it drops the dot after an
/// index (`accounts[0]name`), and reports an unknown key as "… for key `section`".
pub(super) fn describe_parse_error(
    e: &config::ConfigError,
    env: Option<&HashMap<String, String>>,
) -> String {
    let msg = dot_after_index(&e.to_string());
    if let Some(rest) = msg.strip_prefix("missing configuration field \"") {
        let key = rest.trim_end_matches('"');
        return format!("{key}: missing; this key is required (see config/example.toml)");
    }
    if msg.starts_with("enum LogFormat") {
        return format!("{msg}; use \"auto\", \"pretty\" or \"json\"");
    }
    let Some(detail) = msg.strip_prefix("unknown field ") else {
        return key_first(msg);
    };
    let (detail, section) = match detail.split_once(" for key `") {
        Some((detail, rest)) => (detail, rest.split('`').next().unwrap_or_default()),
        None => (detail, ""),
    };
    let field = detail.split('`').nth(1).unwrap_or_default();
    let place = match section {
        "" => "at the top level".to_owned(),
        s if s.contains('[') => format!("in {s}"),
        s => format!("in [{s}]"),
    };
    let env_var = [ENV_PREFIX, section, field]
        .iter()
        .filter(|part| !part.is_empty())
        .map(|part| part.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(ENV_SEPARATOR);
    let origin = match env.and_then(|vars| vars.keys().find(|k| k.eq_ignore_ascii_case(&env_var))) {
        Some(name) => format!(" (set by environment variable {name})"),
        None => String::new(),
    };
    format!(
        "unknown field {detail} {place}{origin}; fix the key name or remove it (unknown keys are errors)"
    )
}

/// A value our own types refused (a span, a size, a URL, a mode) comes as "<why> for key
/// `k`"; every other message of ours starts with the key, so this one does too.
fn key_first(msg: String) -> String {
    let Some((why, rest)) = msg.rsplit_once(" for key `") else {
        return msg;
    };
    match rest.strip_suffix('`') {
        Some(key) if !key.contains('`') => format!("{key}: {why}"),
        _ => msg,
    }
}

/// `accounts[0]name` → `accounts[0].name`.
fn dot_after_index(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len() + 4);
    let mut in_index = false;
    let mut prev = ' ';
    for c in msg.chars() {
        if prev == ']' && in_index && (c.is_ascii_alphabetic() || c == '_') {
            out.push('.');
        }
        in_index = match c {
            '[' => true,
            ']' => in_index && prev.is_ascii_digit(),
            _ if c.is_ascii_digit() => in_index,
            _ => false,
        };
        out.push(c);
        prev = c;
    }
    out
}
