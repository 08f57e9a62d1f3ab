//! Secrets that must never leave the process, and [`scrub`], which replaces each of them
//! by `[redacted]` in text that is about to be logged, stored, printed or sent.
//!
//! A server can echo what it was sent: a token endpoint's 401 body quoting the
//! `Authorization` header, a listing error quoting the bearer token. That text travels
//! as an ordinary error message, so every output boundary scrubs it: the log formatter,
//! the ledger's error columns, the webhook payload, the tables and the `error:` line.
//!
//! - [`register`]: a fixed secret (an S3 secret key, a webhook's token), with its
//!   percent-encoded forms.
//! - [`register_client`]: a client secret and its HTTP Basic form
//!   `base64(client_id:secret)`, as it travels in the `Authorization` header.
//! - [`register_token`]: a bearer token when it is issued; only the last
//!   [`MAX_TOKENS`] are kept, since a long-running daemon gets a new one every ~2 hours.
//!
//! Strings shorter than [`MIN_LEN`] are not registered: scrubbing them would blank out
//! ordinary words.
//!
//! The registry is process-wide on purpose: the formatter of every log line, the ledger,
//! the notifier and the CLI's printing all have to see it, and threading a handle through
//! each of their types (and every type the lead's network code adds later) would leave a
//! path that forgot it. Secrets are only ever added, at config load and token issue.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{PoisonError, RwLock};

use base64::Engine;

/// What a secret is replaced by.
pub const REDACTED: &str = "[redacted]";
/// Shorter strings are not registered.
pub const MIN_LEN: usize = 8;
/// Bearer tokens remembered (across all accounts); older ones have long expired.
pub const MAX_TOKENS: usize = 32;

/// One registered string.
struct Secret {
    text: String,
    /// An opaque random string (a client secret, a token, a key): a leading part of it,
    /// from [`MIN_LEN`] characters on, is redacted too, since whoever read a server's body
    /// first may have cut it short mid-secret. Not for URLs, whose first characters
    /// (`https://host/`) are not secret at all.
    partial: bool,
}

struct Registry {
    /// From the configuration: kept for the life of the process.
    fixed: Vec<Secret>,
    /// Issued bearer tokens, oldest first.
    tokens: VecDeque<String>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    fixed: Vec::new(),
    tokens: VecDeque::new(),
});

/// Registers an opaque secret (an S3 secret key) and its percent-encoded forms (as it
/// would appear in a URL or a form body that a server echoes).
pub fn register(secret: &str) {
    register_forms(secret, true);
}

fn register_forms(secret: &str, partial: bool) {
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    for text in forms(secret) {
        if !registry.fixed.iter().any(|s| s.text == text) {
            registry.fixed.push(Secret { text, partial });
        }
    }
    // Longest first, once here rather than at every scrub (every log field is scrubbed):
    // a URL that contains another is replaced whole.
    registry
        .fixed
        .sort_by_key(|s| std::cmp::Reverse(s.text.len()));
}

/// Registers a client secret and the credential HTTP Basic makes of it.
pub fn register_client(client_id: &str, secret: &str) {
    register(secret);
    if secret.chars().count() < MIN_LEN {
        return;
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    // With and without its `=` padding: a server may strip it.
    register(&basic);
    register(basic.trim_end_matches('='));
}

/// Registers a freshly issued bearer token, forgetting the oldest beyond [`MAX_TOKENS`].
pub fn register_token(token: &str) {
    if token.chars().count() < MIN_LEN {
        return;
    }
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    if registry.tokens.iter().any(|t| t == token) {
        return;
    }
    registry.tokens.push_back(token.to_owned());
    while registry.tokens.len() > MAX_TOKENS {
        registry.tokens.pop_front();
    }
}

/// Registers the parts of a webhook or ping URL that carry its token: the whole URL, and
/// each path segment or query value of 16 characters or more (a Slack hook's key, a
/// healthchecks.io UUID). Short segments such as `services` are names, not secrets.
pub fn register_url(url: &str) {
    register_forms(url, false);
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let Some((_, path)) = rest.split_once('/') else {
        return;
    };
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let values = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').map(|(_, v)| v));
    for part in path.split('/').chain(values) {
        if part.chars().count() >= 16 {
            register_forms(part, false);
        }
    }
}

/// `text` with every registered secret replaced by `[redacted]`; of an opaque secret, a
/// leading part of at least [`MIN_LEN`] characters too (a body cut short mid-secret).
/// Borrowed when nothing matched.
#[must_use]
pub fn scrub(text: &str) -> Cow<'_, str> {
    if text.len() < MIN_LEN {
        return Cow::Borrowed(text);
    }
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    // URLs whole, longest first (the registry keeps them in that order).
    let whole = registry
        .fixed
        .iter()
        .filter(|s| !s.partial)
        .map(|s| s.text.as_str());
    for secret in whole {
        if out.contains(secret) {
            out = Cow::Owned(out.replace(secret, REDACTED));
        }
    }
    // Opaque secrets, whole or cut short: every stretch where one of them (or a leading
    // part of it) stands is found first and the stretches merged, so that two secrets
    // sharing their first characters (JWTs do) cannot leave the rest of the longer match
    // behind.
    let opaque = registry
        .fixed
        .iter()
        .filter(|s| s.partial)
        .map(|s| s.text.as_str())
        .chain(registry.tokens.iter().map(String::as_str));
    let mut stretches: Vec<(usize, usize)> = Vec::new();
    for secret in opaque {
        find_leading_parts(&out, secret, &mut stretches);
    }
    if stretches.is_empty() {
        return out;
    }
    stretches.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(stretches.len());
    for (start, end) in stretches {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut redacted = String::with_capacity(out.len());
    let mut done = 0;
    for (start, end) in merged {
        redacted.push_str(&out[done..start]);
        redacted.push_str(REDACTED);
        done = end;
    }
    redacted.push_str(&out[done..]);
    Cow::Owned(redacted)
}

/// Adds to `stretches` every byte range of `text` holding a leading part of `secret` of
/// at least [`MIN_LEN`] characters (the whole of a shorter secret), as long as it goes.
fn find_leading_parts(text: &str, secret: &str, stretches: &mut Vec<(usize, usize)>) {
    let needle = secret
        .char_indices()
        .nth(MIN_LEN)
        .map_or(secret, |(end, _)| &secret[..end]);
    let mut from = 0;
    while let Some(found) = text[from..].find(needle) {
        let at = from + found;
        let candidate = &text[at..];
        let mut len = candidate
            .bytes()
            .zip(secret.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        // Equal bytes from a boundary end on one, unless the last character differs
        // after its first byte.
        while !candidate.is_char_boundary(len) {
            len -= 1;
        }
        stretches.push((at, at + len));
        from = at + len;
    }
}

/// The secret as written, percent-encoded (RFC 3986 unreserved characters kept), and as
/// a form body encodes it (space as `+`); only the forms long enough to register.
fn forms(secret: &str) -> Vec<String> {
    if secret.chars().count() < MIN_LEN {
        return Vec::new();
    }
    let mut out = vec![secret.to_owned()];
    let percent = percent_encode(secret, false);
    let form = percent_encode(secret, true);
    for encoded in [percent, form] {
        if !out.contains(&encoded) {
            out.push(encoded);
        }
    }
    out
}

fn percent_encode(s: &str, space_as_plus: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b));
            }
            b' ' if space_as_plus => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The registry is shared by every test of this binary: each test uses its own strings.

    #[test]
    fn a_client_secret_and_its_basic_form_are_scrubbed() {
        let secret = "clientsecret-test Secret/1";
        register_client("redactclient", secret);
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("redactclient:{secret}"));
        let text = format!(
            "401: got Basic {basic} for secret {secret}, form {}",
            percent_encode(secret, true)
        );
        let out = scrub(&text);
        assert!(!out.contains(secret), "{out}");
        assert!(!out.contains(&basic[..20]), "{out}");
        assert_eq!(
            out,
            "401: got Basic [redacted] for secret [redacted], form [redacted]"
        );
    }

    #[test]
    fn short_strings_are_not_registered() {
        register("short");
        assert_eq!(scrub("a short word stays"), "a short word stays");
    }

    #[test]
    fn text_without_secrets_is_borrowed() {
        register("unusedsecret-test-0001");
        assert!(matches!(scrub("nothing to hide here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_secret_cut_short_is_redacted_from_eight_characters_on() {
        register("truncatedsecret-0123456789");
        assert_eq!(scrub("body: truncated…"), "body: [redacted]…");
        assert_eq!(
            scrub("(HTTP 401: truncatedsecret-01); check"),
            "(HTTP 401: [redacted]); check"
        );
        // Seven characters of it are not enough to tell.
        assert_eq!(scrub("body: truncat"), "body: truncat");
    }

    #[test]
    fn a_url_is_redacted_whole_never_by_its_first_characters() {
        register_url("https://urltest.example.com/hook/T1");
        assert_eq!(
            scrub("see https://urltest.example.com/other"),
            "see https://urltest.example.com/other"
        );
        assert_eq!(
            scrub("to https://urltest.example.com/hook/T1 failed"),
            "to [redacted] failed"
        );
    }

    #[test]
    fn only_the_last_tokens_are_kept() {
        let first = "firsttoken-test-000";
        register_token(first);
        assert_eq!(scrub(first), REDACTED);
        for i in 0..MAX_TOKENS {
            register_token(&format!("latertoken-test-{i:03}"));
        }
        assert_eq!(scrub(first), first);
        let last = format!("latertoken-test-{:03}", MAX_TOKENS - 1);
        assert_eq!(scrub(&last), REDACTED);
    }

    #[test]
    fn a_webhook_url_and_its_token_parts_are_registered() {
        register_url("https://hooks.example.com/services/T0001/B0001/redactTestHookKey12345?x=1");
        let out = scrub("hook said: bad key redactTestHookKey12345 for services");
        assert_eq!(out, "hook said: bad key [redacted] for services");
    }
}
