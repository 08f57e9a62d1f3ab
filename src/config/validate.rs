//! `validate`: every check that needs no secret; each error names the key and what to do.

use super::*;

/// Checks everything that can be checked without reading secrets; the error names the key.
///
/// # Errors
/// [`ConfigError::Invalid`] for the first bad value.
pub fn validate(s: &Settings) -> Result<(), ConfigError> {
    if s.archive.dir.as_os_str().is_empty() {
        return Err(invalid(
            "archive.dir",
            "must not be empty; set the archive folder",
        ));
    }
    if s.ledger.path.as_os_str().is_empty() {
        return Err(invalid(
            "ledger.path",
            "must not be empty; set the ledger file",
        ));
    }
    for (key, value) in [
        ("http.timeout", s.http.timeout),
        ("http.connect_timeout", s.http.connect_timeout),
        ("http.read_timeout", s.http.read_timeout),
        ("ledger.busy_timeout", s.ledger.busy_timeout),
    ] {
        if value.is_zero() {
            return Err(invalid(
                key,
                "must be greater than 0, e.g. \"30s\" or \"5m\"",
            ));
        }
    }
    if !(s.http.requests_per_second.is_finite() && s.http.requests_per_second >= 0.0) {
        return Err(invalid(
            "http.requests_per_second",
            "must be 0 (no limit) or a positive number of requests per second",
        ));
    }
    if s.http.retries > 20 {
        return Err(invalid(
            "http.retries",
            "at most 20; retries beyond that only hammer a server that is down",
        ));
    }
    if s.http.max_json_size < 64 * 1024 {
        return Err(invalid(
            "http.max_json_size",
            "at least 64KiB; the default 64MiB fits tenants with hundreds of thousands of stored items",
        ));
    }
    if s.archive.max_file_size == 0 {
        return Err(invalid(
            "archive.max_file_size",
            "must be greater than 0, e.g. \"10GiB\"",
        ));
    }
    check_output(s)?;
    validate_s3(s)?;
    check_schedule("defaults.schedule", &s.defaults.schedule)?;
    check_concurrency("defaults.concurrency", s.defaults.concurrency)?;
    check_formats("defaults.formats", &s.defaults.formats)?;
    check_accounts(&s.accounts)
}

/// `[log]`, `[server]` and `[notify]`: what the daemon tells, and where.
fn check_output(s: &Settings) -> Result<(), ConfigError> {
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&s.log.level) {
        return Err(invalid(
            "log.level",
            format!(
                "invalid tracing filter {:?} ({e}); use e.g. \"info\" or \"report_archiver=debug,info\"",
                s.log.level
            ),
        ));
    }
    if s.server.staleness.is_zero() {
        return Err(invalid(
            "server.staleness",
            "must be greater than 0; use a little more than the longest gap between passes, e.g. \"3h\"",
        ));
    }
    if s.notify.timeout.is_zero() {
        return Err(invalid(
            "notify.timeout",
            "must be greater than 0, e.g. \"10s\"",
        ));
    }
    for (key, url) in [
        ("notify.webhook_url", &s.notify.webhook_url),
        ("notify.ping_url", &s.notify.ping_url),
    ] {
        // The URL is a secret (it carries the hook's token): the message never repeats it.
        if let Some(url) = url
            && !is_http_url_with_query(url.expose_secret())
        {
            return Err(invalid(
                key,
                "is not an http(s) URL with a host; write it like \"https://hc-ping.com/<uuid>\"",
            ));
        }
        if let Some(url) = url
            && !s.notify.allow_http
            && let Some(host) = plain_http_host(url.expose_secret())
        {
            return Err(invalid(
                key,
                format!(
                    "is plain http:// to {host}, which is not loopback: the URL's token and every notification would cross the network readable; use https://, or set notify.allow_http = true if the link is protected otherwise"
                ),
            ));
        }
    }
    Ok(())
}

/// At least one account, each valid, no two with one name.
fn check_accounts(accounts: &[AccountSettings]) -> Result<(), ConfigError> {
    if accounts.is_empty() {
        return Err(invalid(
            "accounts",
            "no account configured; add an [[accounts]] block (see config/example.toml)",
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, a) in accounts.iter().enumerate() {
        validate_account(i, a)?;
        if let Some(first) = seen.insert(&a.name, i) {
            return Err(invalid(
                format!("accounts[{i}].name"),
                format!(
                    "\"{}\" is already used by accounts[{first}]; account names must be unique",
                    a.name
                ),
            ));
        }
    }
    Ok(())
}

pub(super) fn validate_account(i: usize, a: &AccountSettings) -> Result<(), ConfigError> {
    let key = |field: &str| format!("accounts[{i}].{field}");
    if !matches_charset(&a.name, 64, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
    }) {
        return Err(invalid(
            key("name"),
            format!(
                "{:?} is not a valid account name; use 1 to 64 of a-z, 0-9, '_' and '-'",
                a.name
            ),
        ));
    }
    let base_url = a.base_url.as_str();
    if !a.allow_http
        && let Some(host) = plain_http_host(base_url)
    {
        return Err(invalid(
            key("base_url"),
            format!(
                "{base_url:?} is plain http:// to {host}, which is not loopback: the client secret (HTTP Basic) and the bearer token would cross the network readable; use https://, or set allow_http = true in this account if the link is protected otherwise (a VPN, a TLS proxy on this host)"
            ),
        ));
    }
    if a.client_id.trim().is_empty() {
        return Err(invalid(
            key("client_id"),
            "must not be empty; set the API client's ID",
        ));
    }
    check_secret_source(i, a)?;
    for (n, report) in a.reports.iter().enumerate() {
        if !matches_charset(report, 64, |c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid(
                format!("accounts[{i}].reports[{n}]"),
                format!(
                    "{report:?} is not a report ID; use the report's UUID (1 to 64 of A-Z, a-z, 0-9 and '-')"
                ),
            ));
        }
    }
    if let Some(schedule) = &a.schedule {
        check_schedule(&key("schedule"), schedule)?;
    }
    if let Some(concurrency) = a.concurrency {
        check_concurrency(&key("concurrency"), concurrency)?;
    }
    if let Some(formats) = &a.formats {
        check_formats(&key("formats"), formats)?;
    }
    Ok(())
}

/// Exactly one source for the client secret, and a credential name systemd and Docker take.
fn check_secret_source(i: usize, a: &AccountSettings) -> Result<(), ConfigError> {
    let key = |field: &str| format!("accounts[{i}].{field}");
    let sources: Vec<&str> = [
        ("client_secret", a.client_secret.is_some()),
        ("client_secret_file", a.client_secret_file.is_some()),
        ("client_secret_env", a.client_secret_env.is_some()),
        (
            "client_secret_credential",
            a.client_secret_credential.is_some(),
        ),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    match sources.as_slice() {
        [_] => {}
        [] => {
            return Err(invalid(
                key("client_secret"),
                "no client secret; set one of client_secret_credential (systemd/Docker), client_secret_file, client_secret_env or client_secret",
            ));
        }
        many => {
            return Err(invalid(
                key(many[0]),
                format!("set only one of {} (found {})", many.join(", "), many.len()),
            ));
        }
    }
    if let Some(name) = &a.client_secret_credential
        && (!matches_charset(name, 64, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
        }) || name.starts_with('.'))
    {
        return Err(invalid(
            key("client_secret_credential"),
            format!(
                "{name:?} is not a credential name; use the NAME of LoadCredential=NAME:… or of a Docker secret (1 to 64 of A-Z, a-z, 0-9, '-', '_', '.'; not starting with '.')"
            ),
        ));
    }
    Ok(())
}

/// The warnings that a plain `http://` allowed with `allow_http = true` earns at every
/// start: it works, and it sends what should be secret readable over the network.
pub(super) fn plain_http_warnings(s: &Settings) -> Vec<String> {
    let mut warnings = Vec::new();
    for (i, a) in s.accounts.iter().enumerate() {
        if let Some(host) = plain_http_host(a.base_url.as_str()) {
            warnings.push(format!(
                "accounts[{i}].base_url: plain http:// to {host} (allow_http = true): the client secret, the bearer token and every report cross the network unencrypted; switch to https:// as soon as you can"
            ));
        }
    }
    for (key, url) in [
        ("notify.webhook_url", &s.notify.webhook_url),
        ("notify.ping_url", &s.notify.ping_url),
    ] {
        if let Some(host) = url
            .as_ref()
            .and_then(|u| plain_http_host(u.expose_secret()))
        {
            warnings.push(format!(
                "{key}: plain http:// to {host} (notify.allow_http = true): the URL's token and every notification cross the network unencrypted; switch to https:// as soon as you can"
            ));
        }
    }
    if let Some(host) = s
        .archive
        .s3
        .as_ref()
        .and_then(|s3| s3.endpoint.as_deref())
        .and_then(plain_http_host)
    {
        warnings.push(format!(
            "archive.s3.endpoint: plain http:// to {host} (archive.s3.allow_http = true): every archived report crosses the network unencrypted; switch to https:// as soon as you can"
        ));
    }
    warnings
}

pub(super) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

pub(super) fn matches_charset(s: &str, max: usize, allowed: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(allowed)
}

pub(super) fn check_schedule(key: &str, schedule: &str) -> Result<(), ConfigError> {
    // The same parser settings as tokio-cron-scheduler, so what passes here schedules there.
    let parsed = CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(schedule);
    match parsed {
        Ok(_) => Ok(()),
        Err(e) => {
            let hint = if schedule.split_whitespace().count() == 5 {
                CRON_HINT.to_owned()
            } else {
                format!("{CRON_HINT}, with an optional 7th year field; times are UTC")
            };
            // The parser's own words name a position, not a field: say which field it is.
            let reason = cron_field_problem(schedule)
                .unwrap_or_else(|| e.to_string().trim_end_matches('.').to_owned());
            Err(invalid(
                key,
                format!("invalid cron schedule {schedule:?} ({reason}); {hint}"),
            ))
        }
    }
}

/// The six (or seven) cron fields in order, with the range of plain numbers in each.
const CRON_FIELDS: [(&str, u32, u32); 7] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
    ("year", 1, 9999),
];

/// Which field of a 6- or 7-field schedule is wrong, in the operator's terms: a number out
/// of its range ("hour field: 25 is out of range 0-23"), else the first field the parser
/// refuses on its own. `None` when the fields cannot be told apart (wrong count).
fn cron_field_problem(schedule: &str) -> Option<String> {
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    if !(6..=7).contains(&fields.len()) {
        return None;
    }
    for (field, (name, low, high)) in fields.iter().zip(CRON_FIELDS) {
        // `a-b/step,c`: the numbers before any `/` are values; a step is not.
        let values = field
            .split(',')
            .flat_map(|item| item.split('/').next().unwrap_or("").split('-'));
        for value in values {
            if let Ok(n) = value.parse::<u64>()
                && !(u64::from(low)..=u64::from(high)).contains(&n)
            {
                return Some(format!("{name} field: {n} is out of range {low}-{high}"));
            }
        }
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build();
    for (i, field) in fields.iter().enumerate() {
        let alone: Vec<&str> = (0..fields.len())
            .map(|j| if j == i { *field } else { "*" })
            .collect();
        if let Err(e) = parser.parse(&alone.join(" ")) {
            let reason = e.to_string();
            return Some(format!(
                "{} field {field:?}: {}",
                CRON_FIELDS[i].0,
                reason.trim_end_matches('.')
            ));
        }
    }
    None
}

pub(super) fn check_concurrency(key: &str, value: usize) -> Result<(), ConfigError> {
    if (1..=64).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{value} is out of range; use 1 to 64 downloads at once"),
        ))
    }
}

pub(super) fn check_formats(key: &str, formats: &[String]) -> Result<(), ConfigError> {
    for (n, format) in formats.iter().enumerate() {
        if !matches_charset(format, 32, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
        }) {
            return Err(invalid(
                format!("{key}[{n}]"),
                format!(
                    "{format:?} is not a format name; use 1 to 32 of a-z, 0-9 and '_', e.g. \"csv_v2_0\""
                ),
            ));
        }
    }
    Ok(())
}

/// The first wait of an item that keeps failing when neither `[defaults]` nor `[http]` says.
pub(super) const DEFAULT_FAILURE_BACKOFF: Duration = Duration::from_secs(600);

/// `failure_backoff` moved from `[http]` (it is a pass policy) to `[defaults]`: the old key
/// still works, with a warning saying where it goes; both at once is a contradiction.
pub(super) fn failure_backoff(
    s: &Settings,
    warnings: &mut Vec<String>,
) -> Result<Duration, ConfigError> {
    match (s.defaults.failure_backoff, s.http.failure_backoff) {
        (Some(_), Some(_)) => Err(invalid(
            "http.failure_backoff",
            "has moved to defaults.failure_backoff, which is set too; remove it from [http]",
        )),
        (None, Some(old)) => {
            warnings.push(
                "http.failure_backoff has moved to [defaults] failure_backoff; it is still read from [http] for now, move it"
                    .to_owned(),
            );
            Ok(old)
        }
        (value, None) => Ok(value.unwrap_or(DEFAULT_FAILURE_BACKOFF)),
    }
}
