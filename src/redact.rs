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

struct Registry {
    /// From the configuration: kept for the life of the process.
    fixed: Vec<String>,
    /// Issued bearer tokens, oldest first.
    tokens: VecDeque<String>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    fixed: Vec::new(),
    tokens: VecDeque::new(),
});

/// Registers a fixed secret and its percent-encoded forms (as it would appear in a URL
/// or a form body that a server echoes).
pub fn register(secret: &str) {
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    for form in forms(secret) {
        if !registry.fixed.contains(&form) {
            registry.fixed.push(form);
        }
    }
}

/// Registers a client secret and the credential HTTP Basic makes of it.
pub fn register_client(client_id: &str, secret: &str) {
    register(secret);
    if secret.chars().count() < MIN_LEN {
        return;
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    // Without its `=` padding: a server that strips it still echoes a match, and the
    // padded form contains the unpadded one.
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
    register(url);
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
            register(part);
        }
    }
}

/// `text` with every registered secret replaced by `[redacted]`. A secret cut short at the
/// very end of `text` (a body truncated by whoever read it first) is redacted too, from
/// [`MIN_LEN`] characters on. Borrowed when nothing matched.
#[must_use]
pub fn scrub(text: &str) -> Cow<'_, str> {
    if text.len() < MIN_LEN {
        return Cow::Borrowed(text);
    }
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    let mut secrets: Vec<&str> = registry
        .fixed
        .iter()
        .chain(registry.tokens.iter())
        .map(String::as_str)
        .collect();
    // Longest first: a secret that contains another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = Cow::Borrowed(text);
    for secret in &secrets {
        if out.contains(secret) {
            out = Cow::Owned(out.replace(secret, REDACTED));
        }
    }
    for secret in &secrets {
        if let Some(cut) = truncated_tail(&out, secret) {
            let mut owned = out.into_owned();
            owned.replace_range(cut, REDACTED);
            out = Cow::Owned(owned);
        }
    }
    out
}

/// Where `text` ends in a leading part of `secret` of at least [`MIN_LEN`] characters,
/// optionally followed by an ellipsis that says it was cut.
fn truncated_tail(text: &str, secret: &str) -> Option<std::ops::Range<usize>> {
    let body = text
        .strip_suffix('…')
        .or_else(|| text.strip_suffix("..."))
        .unwrap_or(text);
    let last = body.chars().next_back()?;
    if !secret.contains(last) {
        return None;
    }
    let mut ends: Vec<usize> = secret
        .char_indices()
        .map(|(i, _)| i)
        .skip(MIN_LEN)
        .collect();
    ends.reverse();
    ends.into_iter()
        .find(|&end| body.ends_with(&secret[..end]))
        .map(|end| body.len() - end..body.len())
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
        let secret = "redact-test-Client Secret/1";
        register_client("redact-client", secret);
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("redact-client:{secret}"));
        let text = format!(
            "401: got Basic {basic} for secret {secret}, form {}",
            percent_encode(secret, true)
        );
        let out = scrub(&text);
        assert!(!out.contains(secret), "{out}");
        assert!(!out.contains(&basic[..20]), "{out}");
        assert!(!out.contains("Secret%2F1"), "{out}");
        assert_eq!(out.matches(REDACTED).count(), 3, "{out}");
    }

    #[test]
    fn short_strings_are_not_registered() {
        register("short");
        assert_eq!(scrub("a short word stays"), "a short word stays");
    }

    #[test]
    fn text_without_secrets_is_borrowed() {
        register("redact-test-unused-secret");
        assert!(matches!(scrub("nothing to hide here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_secret_cut_off_at_the_end_is_redacted_from_eight_characters() {
        register("redact-test-TRUNCATED-0123456789");
        assert_eq!(scrub("body: redact-test-TRUNC…"), "body: [redacted]…");
        assert_eq!(scrub("body: redact-test-TRUNC"), "body: [redacted]");
        // Seven characters of it are not enough to tell.
        assert_eq!(scrub("body: redact-"), "body: redact-");
    }

    #[test]
    fn only_the_last_tokens_are_kept() {
        let first = "redact-test-token-first-000";
        register_token(first);
        assert_eq!(scrub(first), REDACTED);
        for i in 0..MAX_TOKENS {
            register_token(&format!("redact-test-token-later-{i:03}"));
        }
        assert_eq!(scrub(first), first);
        let last = format!("redact-test-token-later-{:03}", MAX_TOKENS - 1);
        assert_eq!(scrub(&last), REDACTED);
    }

    #[test]
    fn a_webhook_url_and_its_token_parts_are_registered() {
        register_url("https://hooks.example.com/services/T0001/B0001/redactTestHookKey12345?x=1");
        let out = scrub("hook said: bad key redactTestHookKey12345 for services");
        assert_eq!(out, "hook said: bad key [redacted] for services");
    }
}
