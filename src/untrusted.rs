//! Text that came from outside (a server's error body, a report id from discovery, a
//! stored item's status, a file name someone else put in the archive) made safe to show.
//!
//! - [`escape`]: control characters (C0, DEL, C1), line and paragraph separators, and
//!   bidi and invisible format characters shown as escapes (`\n`, `\t`, `\u{1b}`,
//!   `\u{202e}`), the length capped with a `…(+N chars)` marker. The result is one line
//!   that looks like what it is: a forged log line, a terminal escape sequence or a
//!   right-to-left override cannot hide in it.
//! - [`sanitize`]: [`crate::redact::scrub`] first (a secret is matched before it is
//!   escaped or cut), then [`escape`]. This is what every output boundary uses.
//! - [`json_escape_invisible`]: for a line that is already JSON: the same characters as
//!   `\uXXXX`, which keeps the JSON valid and its decoded value unchanged.
//!
//! A backslash is left alone, so [`escape`] is idempotent: text escaped where it was
//! stored (the ledger) and escaped again where it is printed reads the same. The escapes
//! are for people, not a reversible encoding.

use std::borrow::Cow;
use std::fmt::Write;

/// A log field value: long enough for an error chain, short enough that one hostile
/// body cannot flood the log.
pub const LOG_FIELD_MAX: usize = 2048;
/// A cell of a table printed to the terminal (`once`, `reports`, `ledger list`).
pub const CELL_MAX: usize = 300;
/// Error text stored in the ledger or sent to the webhook.
pub const STORED_MAX: usize = 2048;
/// The one `error:` line a failing command prints.
pub const ERROR_LINE_MAX: usize = 4096;

/// Whether `c` must not reach a terminal or a log line as itself.
#[must_use]
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        // C0 (newline, carriage return and tab included: each one breaks a line or a
        // column), DEL, C1 (8-bit terminal controls).
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // Soft hyphen, Arabic letter mark, Mongolian vowel separator: invisible.
        | '\u{ad}' | '\u{61c}' | '\u{180e}'
        // Zero-width space, non-joiner, joiner, left-to-right and right-to-left marks.
        | '\u{200b}'..='\u{200f}'
        // Line and paragraph separators (line breaks to some terminals and editors),
        // bidi embeddings and overrides (U+202E turns the rest of a line around).
        | '\u{2028}'..='\u{202e}'
        // Word joiner, invisible operators, bidi isolates, deprecated format controls.
        | '\u{2060}'..='\u{206f}'
        // Byte order mark / zero-width no-break space.
        | '\u{feff}'
        // Interlinear annotation controls.
        | '\u{fff9}'..='\u{fffb}'
        // Musical format controls, then tags (invisible; used to smuggle ASCII text).
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0000}'..='\u{e007f}'
    )
}

/// `s` on one line with every [`is_unsafe`] character escaped, at most `max_chars`
/// characters plus a `…(+N chars)` marker saying how many were left out. Borrowed when
/// nothing had to change.
#[must_use]
pub fn escape(s: &str, max_chars: usize) -> Cow<'_, str> {
    let clean = !s.chars().any(is_unsafe);
    if clean && (max_chars == usize::MAX || s.chars().nth(max_chars).is_none()) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(max_chars.saturating_mul(4)) + 16);
    let mut shown = 0usize;
    let mut piece = String::new();
    for (consumed, c) in s.chars().enumerate() {
        piece.clear();
        push_escaped(&mut piece, c);
        let width = piece.chars().count();
        if shown + width > max_chars {
            let left = s.chars().count() - consumed;
            // Writing to a String cannot fail.
            let _ = write!(out, "…(+{left} chars)");
            return Cow::Owned(out);
        }
        out.push_str(&piece);
        shown += width;
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_unsafe(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// A table cell from text a server may have written: secrets out, escaped, capped.
pub fn cell(text: &str) -> String {
    sanitize(text, CELL_MAX)
}

/// Secrets replaced by `[redacted]`, then [`escape`]d and capped: server text made fit
/// for a log line, a table cell, the ledger or a webhook.
#[must_use]
pub fn sanitize(s: &str, max_chars: usize) -> String {
    let scrubbed = crate::redact::scrub(s);
    escape(&scrubbed, max_chars).into_owned()
}

/// `s` cut to `max_chars` characters with the same marker as [`escape`], nothing escaped:
/// for JSON, whose own escaping keeps the value exact.
#[must_use]
pub fn truncate(s: &str, max_chars: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max_chars) {
        None => Cow::Borrowed(s),
        Some((at, _)) => {
            let left = s[at..].chars().count();
            Cow::Owned(format!("{}…(+{left} chars)", &s[..at]))
        }
    }
}

/// `s` with every [`is_unsafe`] character escaped and nothing cut off, for text whose
/// full length matters more than its size (an `error:` line's chain).
#[must_use]
pub fn escape_all(s: &str) -> Cow<'_, str> {
    escape(s, usize::MAX)
}

/// A line of JSON with every non-ASCII [`is_unsafe`] character (and DEL) written as a
/// `\uXXXX` escape (a surrogate pair above U+FFFF). serde_json already escapes C0; such
/// characters can only stand inside JSON strings, where the escape decodes to the same
/// text, so the line stays valid JSON with the same values and no raw bidi override or
/// C1 control reaches a terminal that shows it.
#[must_use]
pub fn json_escape_invisible(line: &str) -> Cow<'_, str> {
    let needs = |c: char| !c.is_ascii_control() && is_unsafe(c) || c == '\u{7f}';
    if !line.chars().any(needs) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        if needs(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let s = "report 6a7b8c9d: HTTP 404 (not found) — ünïcödé 報告";
        assert!(matches!(escape(s, 1000), Cow::Borrowed(_)));
        assert_eq!(escape(s, 1000), s);
    }

    #[test]
    fn a_forged_log_line_stays_on_one_line_with_the_newline_visible() {
        let s = "x\n2026-11-30T00:00:00Z  INFO injected: archived path=/etc/passwd";
        let out = escape(s, 1000);
        assert!(!out.contains('\n'), "{out}");
        assert!(out.starts_with("x\\n2026-11-30T00:00:00Z"), "{out}");
    }

    #[test]
    fn controls_bidi_and_invisible_characters_become_escapes() {
        let s = "a\u{1b}[31mb\u{0}c\rd\te\u{7f}f\u{85}g\u{202e}h\u{2066}i\u{200b}j\u{feff}k\u{2028}l\u{e0041}m";
        let out = escape(s, 1000);
        assert_eq!(
            out,
            "a\\u{1b}[31mb\\u{0}c\\rd\\te\\u{7f}f\\u{85}g\\u{202e}h\\u{2066}i\\u{200b}j\\u{feff}k\\u{2028}l\\u{e0041}m"
        );
        assert!(!out.chars().any(is_unsafe), "{out}");
    }

    #[test]
    fn escaping_twice_changes_nothing_more() {
        let s = "line\none \u{202e} \\n already";
        let once = escape(s, usize::MAX).into_owned();
        assert_eq!(escape(&once, usize::MAX), once);
    }

    #[test]
    fn long_text_is_cut_with_a_marker_saying_how_much_is_left() {
        let s = "é".repeat(50);
        assert_eq!(escape(&s, 10), format!("{}…(+40 chars)", "é".repeat(10)));
        assert_eq!(escape(&s, 50), s);
        // Escapes count with their full width, and are never cut in half.
        assert_eq!(escape("ab\ncd", 3), "ab…(+3 chars)");
    }

    #[test]
    fn json_lines_keep_their_value_with_bidi_and_c1_escaped() {
        let value = serde_json::json!({"message": "a\u{202e}b\u{85}c\u{7f}d\u{e0041}e\n"});
        let line = value.to_string();
        let out = json_escape_invisible(&line);
        assert!(!out.chars().any(is_unsafe), "{out}");
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, value);
        assert!(matches!(
            json_escape_invisible("{\"a\":1}"),
            Cow::Borrowed(_)
        ));
    }
}
