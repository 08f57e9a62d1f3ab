//! URLs in the configuration: [`BaseUrl`] (an account's data-center URL, normalised as the
//! file is read) and the rules every configured URL follows (http(s), a host, no
//! credentials; plain `http://` only to loopback unless allowed out loud).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A data-center URL: `https://host[:port][/path]`, without a trailing `/` or `/api/2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// Checks and normalises `raw`; the error says what is wrong and how to write it.
    pub fn parse(raw: &str) -> Result<Self, String> {
        normalize_base_url(raw).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for BaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

/// The host of a plain `http://` URL whose host is not loopback; `None` for `https://`
/// and for `127.0.0.0/8`, `::1` (and `::ffff:127.x.y.z`) and `localhost`, which never leave
/// the machine.
pub fn plain_http_host(url: &str) -> Option<String> {
    let url = url.trim();
    let scheme = url.get(..7)?;
    if !scheme.eq_ignore_ascii_case("http://") {
        return None;
    }
    let rest = &url[7..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    (!is_loopback_host(host)).then(|| host.to_ascii_lowercase())
}

/// `localhost`, or an IP address of the loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// An http(s) URL with a host; query strings are allowed (notification URLs may carry them).
pub fn is_http_url_with_query(raw: &str) -> bool {
    let without_query = raw.split(['?', '#']).next().unwrap_or_default();
    !raw.chars().any(char::is_whitespace) && normalize_base_url(without_query).is_ok()
}

/// `https://host[:port][/path]` with no query, fragment or credentials; returns it without a
/// trailing `/` and without a trailing `/api/2`.
pub fn normalize_base_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let lower = url.to_ascii_lowercase();
    let scheme = ["https://", "http://"]
        .into_iter()
        .find(|s| lower.starts_with(s))
        .ok_or_else(|| {
            format!(
                "{url:?} is not an http(s) URL; write it like \"https://eu2-cloud.acronis.com\""
            )
        })?;
    if url.contains(['?', '#']) || url.chars().any(char::is_whitespace) {
        return Err(format!(
            "{url:?} must not contain a query, a fragment or spaces; give only the data-center URL"
        ));
    }
    let rest = &url[scheme.len()..];
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err(
            "must not contain credentials; set client_id and a client secret instead".to_owned(),
        );
    }
    let host_ok = match authority.rsplit_once(':') {
        _ if authority.starts_with('[') => authority.ends_with(']') || authority.contains("]:"),
        Some((host, port)) => {
            !host.is_empty() && !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())
        }
        None => !authority.is_empty(),
    };
    if !host_ok {
        return Err(format!(
            "{url:?} has no valid host; write it like \"https://eu2-cloud.acronis.com\""
        ));
    }
    let path = path.trim_end_matches('/');
    let path = path
        .strip_suffix("/api/2")
        .unwrap_or(path)
        .trim_end_matches('/');
    Ok(format!("{}{authority}{path}", &lower[..scheme.len()]))
}
