//! The configuration: built-in defaults → the TOML file → `REPORT_ARCHIVER__SECTION__KEY`
//! environment overrides; client secrets from `client_secret_file` / `client_secret_env`;
//! [`validate`] names the bad key and says what to do.
//!
//! - [`Settings`]: the file as written (every section has defaults, unknown keys are errors).
//! - [`Account`]: one validated account, its secret read and the defaults merged in.
//! - [`Config`]: what [`load`] and [`parse_str`] return; [`Config::effective_toml`] shows it
//!   with every secret masked.
//!
//! Relative paths (archive dir, ledger, secret files) are relative to the working directory.
//!
//! Secret sources per account (exactly one): `client_secret`, `client_secret_file`,
//! `client_secret_env`, or `client_secret_credential = "NAME"`, which reads
//! `$CREDENTIALS_DIRECTORY/NAME` (systemd `LoadCredential=`) or, when that variable is unset,
//! `/run/secrets/NAME` (Docker secrets). Problems that are not errors (a secret file others
//! can read) end up in [`Config::warnings`], logged once logging is up.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use croner::parser::{CronParser, Seconds};

mod byte_size;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Where `load(None)` looks; the CLI resolves `--config` / `$REPORT_ARCHIVER_CONFIG` first.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/report-archiver/config.toml";
/// Env overrides are `REPORT_ARCHIVER__SECTION__KEY` (double underscores).
pub const ENV_PREFIX: &str = "REPORT_ARCHIVER";
const ENV_SEPARATOR: &str = "__";
const MASK: &str = "********";
/// Set by systemd for a unit with `LoadCredential=`; holds one file per credential.
pub const CREDENTIALS_DIRECTORY_ENV: &str = "CREDENTIALS_DIRECTORY";
/// Where Docker (compose and swarm) mounts secrets; used when systemd gave no credentials.
pub const DOCKER_SECRETS_DIR: &str = "/run/secrets";
const CRON_HINT: &str =
    "cron needs 6 fields: sec min hour day-of-month month day-of-week, e.g. \"0 0 * * * *\"";

/// The settings as written in the file (plus env overrides), before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub archive: ArchiveSettings,
    #[serde(default)]
    pub ledger: LedgerSettings,
    #[serde(default)]
    pub defaults: AccountDefaults,
    #[serde(default)]
    pub http: HttpSettings,
    #[serde(default)]
    pub daemon: DaemonSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub notify: NotifySettings,
    /// Raw, as written: the secret fields are still optional here.
    #[serde(default)]
    pub accounts: Vec<AccountSettings>,
}

/// `[archive]`: where the files go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveSettings {
    /// Default `/var/lib/report-archiver/archive`.
    pub dir: PathBuf,
    /// Default false: bodies are stored decompressed; true keeps them as served (`….gz`).
    pub keep_compressed: bool,
    /// Largest file accepted, on the wire and once inflated; bigger is refused. Bytes, or a
    /// string with a unit (`"512MiB"`, `"10GiB"`). Default 10 GiB.
    #[serde(with = "byte_size")]
    pub max_file_size: u64,
    /// Retention: files whose `created_at` is older than this are deleted by `prune` and a
    /// daily job in `run` (e.g. `"7y"`, `"18months"`, `"400d"`). Default: kept forever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<String>,
}

/// `[ledger]`: the SQLite file that remembers what was archived.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerSettings {
    /// Default `/var/lib/report-archiver/ledger.db`.
    pub path: PathBuf,
    /// How long to wait for a database another process holds locked. Default 10 seconds.
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
}

/// `[defaults]`: what an account uses unless it overrides it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountDefaults {
    /// Cron with seconds (6 fields, optional 7th year), UTC. Default `"0 0 * * * *"` (hourly).
    pub schedule: String,
    /// Downloads at once, per account. Default 4.
    pub concurrency: usize,
    /// Formats to archive; empty (the default) means every format.
    pub formats: Vec<String>,
}

/// `[http]`: client timeouts (humantime strings such as `"5m"`, `"10s"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Whole request, body included. Default 5 minutes.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// TCP + TLS connect. Default 10 seconds.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest silence while a body streams; a download has no total limit, only this.
    /// Default 60 seconds.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Retries of one request after a transient failure (connect error, reset, timeout,
    /// 5xx, 429, a cut-off body). Default 4.
    pub retries: u32,
    /// Cap of the exponential backoff between retries (jittered). Default 60 seconds.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Requests per second per account; 0 (the default) means no limit beyond `concurrency`.
    pub requests_per_second: f64,
    /// An item that failed three passes in a row waits this long before the next try,
    /// doubling with each further failure up to a day. Default 10 minutes.
    #[serde(with = "humantime_serde")]
    pub failure_backoff: Duration,
}

/// `[daemon]`: behaviour of `run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonSettings {
    /// How long in-flight downloads may finish after SIGTERM. Default 30 seconds.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

/// `[log]`: how and how much to log (to stderr).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Default `auto`.
    pub format: LogFormat,
    /// A tracing filter; `RUST_LOG` wins when set. Default `"info"`.
    pub level: String,
}

/// `[server]`: the optional HTTP endpoint serving `/healthz` and `/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on, e.g. `"127.0.0.1:9754"`; unset (the default): no endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `/healthz` answers 503 once an account has had no successful pass for this long.
    /// Default 3 hours (two missed hourly passes). Keep it above the longest schedule gap.
    #[serde(with = "humantime_serde")]
    pub staleness: Duration,
}

/// `[notify]`: where to tell someone that passes fail or recover. Both URLs are optional
/// and are treated as secrets (chat webhooks and ping URLs carry their token in the URL).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// POSTed a JSON summary when an account's pass fails after a success (or at its first
    /// pass), and when it succeeds again after a failure. Default: unset.
    pub webhook_url: Option<SecretString>,
    /// healthchecks.io style: `GET <url>` after every successful pass, `GET <url>/fail`
    /// after every failed one. Default: unset.
    pub ping_url: Option<SecretString>,
    /// Limit for one notification request. Default 10 seconds.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable; colours on a terminal, compact under journald.
    #[default]
    Auto,
    /// Multi-line human-readable.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// One `[[accounts]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    pub name: String,
    pub base_url: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<PathBuf>,
    pub client_secret_env: Option<String>,
    /// A credential name: `$CREDENTIALS_DIRECTORY/NAME`, else `/run/secrets/NAME`.
    pub client_secret_credential: Option<String>,
    #[serde(default)]
    pub reports: Vec<String>,
    pub schedule: Option<String>,
    pub concurrency: Option<usize>,
    pub formats: Option<Vec<String>>,
}

/// A validated account with its secret read and the defaults merged in.
#[derive(Clone)]
pub struct Account {
    pub name: String,
    /// No trailing `/`; a trailing `/api/2` removed.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Empty: every report this client can see.
    pub reports: Vec<String>,
    pub schedule: String,
    pub concurrency: usize,
    /// Empty: every format.
    pub formats: Vec<String>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &format_args!("[redacted]"))
            .field("reports", &self.reports)
            .field("schedule", &self.schedule)
            .field("concurrency", &self.concurrency)
            .field("formats", &self.formats)
            .finish()
    }
}

/// What [`load`] / [`parse_str`] return: settings validated, secrets resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// In the order of `settings.accounts`.
    pub accounts: Vec<Account>,
    /// The file it came from; `None` for [`parse_str`].
    pub source: Option<PathBuf>,
    /// Things worth telling the operator that do not stop the daemon (secret files that
    /// others can read); logged by the CLI once logging is set up. Never holds a secret.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "config file `{}` does not exist; create it (config/example.toml lists every key) or pass --config PATH",
        path.display()
    )]
    NotFound { path: PathBuf },
    #[error("cannot read config file `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// From the `config` crate: TOML syntax, wrong types, unknown keys; names the key.
    #[error("{0}")]
    Parse(String),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// A client secret could not be read; never contains the secret itself.
    #[error("{key}: {message}")]
    Secret { key: String, message: String },
}

/// Loads `path` (default [`DEFAULT_CONFIG_PATH`]), applies `REPORT_ARCHIVER__…` env
/// overrides, validates, and reads the client secrets.
///
/// # Errors
/// [`ConfigError::NotFound`] when the file does not exist, otherwise the first problem found.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let path = path.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ConfigError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let overrides = prefixed_env_vars()?;
    let mut config = build(&text, Some(&overrides), &|name| std::env::var_os(name))?;
    let inline_secret = config
        .settings
        .accounts
        .iter()
        .any(|a| a.client_secret.is_some());
    if inline_secret && let Some(mode) = loose_mode(path, 0o004) {
        config.warnings.push(format!(
            "config file `{}` holds a client secret and every user can read it (mode {mode:04o}); chmod o-r it, or move the secret to client_secret_file / client_secret_credential",
            path.display()
        ));
    }
    Ok(Config {
        source: Some(path.to_path_buf()),
        ..config
    })
}

/// The file's permission bits when any of `bits` is set (unix only; elsewhere `None`).
fn loose_mode(path: &Path, bits: u32) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
        (mode & bits != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = (path, bits);
        None
    }
}

/// Like [`load`], from a string and without env overrides (tests, the demo).
/// `client_secret_env` still reads the process environment.
///
/// # Errors
/// The first problem found, naming its key.
pub fn parse_str(toml: &str) -> Result<Config, ConfigError> {
    build(toml, None, &|name| std::env::var_os(name))
}

type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// The process's `REPORT_ARCHIVER__*` variables (names and values; only these are read).
fn prefixed_env_vars() -> Result<HashMap<String, String>, ConfigError> {
    let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}");
    let mut vars = HashMap::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name
            .to_str()
            .filter(|n| n.to_ascii_uppercase().starts_with(&prefix))
        else {
            continue;
        };
        let value = value.into_string().map_err(|_| {
            ConfigError::Parse(format!(
                "environment variable {name} is not valid UTF-8; fix or unset it"
            ))
        })?;
        vars.insert(name.to_owned(), value);
    }
    Ok(vars)
}

fn build(
    text: &str,
    overrides: Option<&HashMap<String, String>>,
    lookup: EnvLookup<'_>,
) -> Result<Config, ConfigError> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml));
    if let Some(vars) = overrides {
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator(ENV_SEPARATOR)
                .separator(ENV_SEPARATOR)
                .try_parsing(true)
                // REPORT_ARCHIVER__DEFAULTS__FORMATS=csv,json_v2_0
                .list_separator(",")
                .with_list_parse_key("defaults.formats")
                .source(Some(vars.clone())),
        );
    }
    let settings: Settings = builder
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| ConfigError::Parse(describe_parse_error(&e, overrides)))?;
    validate(&settings)?;
    let mut warnings = Vec::new();
    let accounts = settings
        .accounts
        .iter()
        .enumerate()
        .map(|(i, raw)| resolve_account(i, raw, &settings.defaults, lookup, &mut warnings))
        .collect::<Result<_, _>>()?;
    Ok(Config {
        settings,
        accounts,
        source: None,
        warnings,
    })
}

/// Makes the `config` crate's messages say where the problem is: it drops the dot after an
/// index (`accounts[0]name`), and reports an unknown key as "… for key `section`".
fn describe_parse_error(e: &config::ConfigError, env: Option<&HashMap<String, String>>) -> String {
    let msg = dot_after_index(&e.to_string());
    if let Some(rest) = msg.strip_prefix("missing configuration field \"") {
        let key = rest.trim_end_matches('"');
        return format!("{key}: missing; this key is required (see config/example.toml)");
    }
    if msg.starts_with("enum LogFormat") {
        return format!("{msg}; use \"auto\", \"pretty\" or \"json\"");
    }
    let Some(detail) = msg.strip_prefix("unknown field ") else {
        return msg;
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
    if s.archive.max_file_size == 0 {
        return Err(invalid(
            "archive.max_file_size",
            "must be greater than 0, e.g. \"10GiB\"",
        ));
    }
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
    }
    if let Some(keep) = &s.archive.keep {
        crate::retention::Keep::parse(keep).map_err(|e| invalid("archive.keep", e.to_string()))?;
    }
    check_schedule("defaults.schedule", &s.defaults.schedule)?;
    check_concurrency("defaults.concurrency", s.defaults.concurrency)?;
    check_formats("defaults.formats", &s.defaults.formats)?;
    if s.accounts.is_empty() {
        return Err(invalid(
            "accounts",
            "no account configured; add an [[accounts]] block (see config/example.toml)",
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, a) in s.accounts.iter().enumerate() {
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

fn validate_account(i: usize, a: &AccountSettings) -> Result<(), ConfigError> {
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
    normalize_base_url(&a.base_url).map_err(|m| invalid(key("base_url"), m))?;
    if a.client_id.trim().is_empty() {
        return Err(invalid(
            key("client_id"),
            "must not be empty; set the API client's ID",
        ));
    }
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

fn resolve_account(
    i: usize,
    a: &AccountSettings,
    defaults: &AccountDefaults,
    lookup: EnvLookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<Account, ConfigError> {
    let base_url = normalize_base_url(&a.base_url)
        .map_err(|m| invalid(format!("accounts[{i}].base_url"), m))?;
    Ok(Account {
        name: a.name.clone(),
        base_url,
        client_id: a.client_id.trim().to_owned(),
        client_secret: resolve_secret(i, a, lookup, warnings)?,
        reports: a.reports.clone(),
        schedule: a
            .schedule
            .clone()
            .unwrap_or_else(|| defaults.schedule.clone()),
        concurrency: a.concurrency.unwrap_or(defaults.concurrency),
        formats: a
            .formats
            .clone()
            .unwrap_or_else(|| defaults.formats.clone()),
    })
}

/// Where `client_secret_credential = NAME` is read from: systemd's credentials directory
/// when the unit has one, else the Docker secrets folder.
fn credential_path(name: &str, lookup: EnvLookup<'_>) -> PathBuf {
    match lookup(CREDENTIALS_DIRECTORY_ENV).filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join(name),
        None => Path::new(DOCKER_SECRETS_DIR).join(name),
    }
}

/// Reads a secret file: one trailing newline dropped; a file that group or others can read
/// adds a warning (the secret is still used: refusing would break a working deployment).
fn read_secret_file(
    field: &str,
    path: &Path,
    key: &str,
    warnings: &mut Vec<String>,
) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read client secret file `{}`: {e}; create it or point {field} at the right file",
            path.display()
        )
    })?;
    if let Some(mode) = loose_mode(path, 0o044) {
        warnings.push(format!(
            "{key}: client secret file `{}` can be read by group or others (mode {mode:04o}); chmod 600 it, or pass it with systemd LoadCredential= or a Docker secret",
            path.display()
        ));
    }
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if trimmed.trim().is_empty() {
        return Err(format!(
            "client secret file `{}` is empty; write the client secret into it",
            path.display()
        ));
    }
    Ok(trimmed.to_owned())
}

fn resolve_secret(
    i: usize,
    a: &AccountSettings,
    lookup: EnvLookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<SecretString, ConfigError> {
    let secret_error = |field: &str, message: String| ConfigError::Secret {
        key: format!("accounts[{i}].{field}"),
        message,
    };
    let value: String = if let Some(secret) = &a.client_secret {
        secret.expose_secret().to_owned()
    } else if let Some(path) = &a.client_secret_file {
        let field = "client_secret_file";
        let key = format!("accounts[{i}].{field}");
        read_secret_file(field, path, &key, warnings).map_err(|m| secret_error(field, m))?
    } else if let Some(name) = &a.client_secret_credential {
        let field = "client_secret_credential";
        let key = format!("accounts[{i}].{field}");
        let path = credential_path(name, lookup);
        read_secret_file(field, &path, &key, warnings).map_err(|m| {
            secret_error(
                field,
                format!(
                    "{m} (credential {name:?}: systemd LoadCredential={name}:… sets ${CREDENTIALS_DIRECTORY_ENV}; without it {DOCKER_SECRETS_DIR}/{name} is read)"
                ),
            )
        })?
    } else if let Some(var) = &a.client_secret_env {
        let value = lookup(var)
            .and_then(|v| v.into_string().ok())
            .unwrap_or_default();
        if value.is_empty() {
            return Err(secret_error(
                "client_secret_env",
                format!(
                    "environment variable {var} is not set, empty or not UTF-8; set it to the client secret"
                ),
            ));
        }
        value
    } else {
        return Err(secret_error(
            "client_secret",
            "no client secret configured".to_owned(),
        ));
    };
    if value.trim().is_empty() {
        return Err(secret_error(
            "client_secret",
            "the client secret is empty".to_owned(),
        ));
    }
    Ok(SecretString::from(value))
}

/// An http(s) URL with a host; query strings are allowed (notification URLs may carry them).
fn is_http_url_with_query(raw: &str) -> bool {
    let without_query = raw.split(['?', '#']).next().unwrap_or_default();
    !raw.chars().any(char::is_whitespace) && normalize_base_url(without_query).is_ok()
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

fn matches_charset(s: &str, max: usize, allowed: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(allowed)
}

fn check_schedule(key: &str, schedule: &str) -> Result<(), ConfigError> {
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
            let reason = e.to_string();
            Err(invalid(
                key,
                format!(
                    "invalid cron schedule {schedule:?} ({}); {hint}",
                    reason.trim_end_matches('.')
                ),
            ))
        }
    }
}

fn check_concurrency(key: &str, value: usize) -> Result<(), ConfigError> {
    if (1..=64).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{value} is out of range; use 1 to 64 downloads at once"),
        ))
    }
}

fn check_formats(key: &str, formats: &[String]) -> Result<(), ConfigError> {
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

/// `https://host[:port][/path]` with no query, fragment or credentials; returns it without a
/// trailing `/` and without a trailing `/api/2`.
fn normalize_base_url(raw: &str) -> Result<String, String> {
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

impl Config {
    /// The effective settings as TOML (for `check-config`): defaults filled in, env overrides
    /// applied, account defaults merged, every secret shown as `"********"`.
    #[must_use]
    pub fn effective_toml(&self) -> String {
        let s = &self.settings;
        let accounts = s
            .accounts
            .iter()
            .zip(&self.accounts)
            .map(|(raw, acc)| EffectiveAccount {
                name: &acc.name,
                base_url: &acc.base_url,
                client_id: &acc.client_id,
                client_secret: raw.client_secret.as_ref().map(|_| MASK),
                client_secret_file: raw.client_secret_file.as_deref(),
                client_secret_env: raw.client_secret_env.as_deref(),
                client_secret_credential: raw.client_secret_credential.as_deref(),
                reports: &acc.reports,
                schedule: &acc.schedule,
                concurrency: acc.concurrency,
                formats: &acc.formats,
            })
            .collect();
        let effective = Effective {
            archive: &s.archive,
            ledger: &s.ledger,
            defaults: &s.defaults,
            http: &s.http,
            daemon: &s.daemon,
            log: &s.log,
            server: &s.server,
            notify: EffectiveNotify {
                webhook_url: s.notify.webhook_url.as_ref().map(|_| MASK),
                ping_url: s.notify.ping_url.as_ref().map(|_| MASK),
                timeout: s.notify.timeout,
            },
            accounts,
        };
        // `{:?}` keeps a path with odd characters on the comment line.
        let origin = match &self.source {
            Some(path) => format!("{path:?}, then {ENV_PREFIX}__* environment variables"),
            None => "the given text".to_owned(),
        };
        let body = toml::to_string(&effective)
            .unwrap_or_else(|e| format!("# cannot render the effective configuration: {e}\n"));
        format!("# effective configuration: defaults, then {origin}; secrets masked\n{body}")
    }
}

#[derive(Serialize)]
struct Effective<'a> {
    archive: &'a ArchiveSettings,
    ledger: &'a LedgerSettings,
    defaults: &'a AccountDefaults,
    http: &'a HttpSettings,
    daemon: &'a DaemonSettings,
    log: &'a LogSettings,
    server: &'a ServerSettings,
    notify: EffectiveNotify,
    accounts: Vec<EffectiveAccount<'a>>,
}

/// `[notify]` as `check-config` shows it: the URLs masked, since they carry tokens.
#[derive(Serialize)]
struct EffectiveNotify {
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_url: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ping_url: Option<&'static str>,
    #[serde(with = "humantime_serde")]
    timeout: Duration,
}

#[derive(Serialize)]
struct EffectiveAccount<'a> {
    name: &'a str,
    base_url: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_file: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_env: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_credential: Option<&'a str>,
    reports: &'a [String],
    schedule: &'a str,
    concurrency: usize,
    formats: &'a [String],
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/var/lib/report-archiver/archive"),
            keep_compressed: false,
            max_file_size: 10 * 1024 * 1024 * 1024,
            keep: None,
        }
    }
}
impl Default for LedgerSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/var/lib/report-archiver/ledger.db"),
            busy_timeout: Duration::from_secs(10),
        }
    }
}
impl Default for AccountDefaults {
    fn default() -> Self {
        Self {
            schedule: "0 0 * * * *".to_owned(),
            concurrency: 4,
            formats: Vec::new(),
        }
    }
}
impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retries: 4,
            max_backoff: Duration::from_secs(60),
            requests_per_second: 0.0,
            failure_backoff: Duration::from_secs(600),
        }
    }
}
impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            shutdown_grace: Duration::from_secs(30),
        }
    }
}
impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: None,
            staleness: Duration::from_secs(3 * 3600),
        }
    }
}
impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            webhook_url: None,
            ping_url: None,
            timeout: Duration::from_secs(10),
        }
    }
}
impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            level: "info".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../config/example.toml");
    const EXAMPLE_SECRET_PATH: &str = "/run/credentials/report-archiver.service/eu2";
    const SECRET: &str = "s3cr3t-value-that-must-not-leak";

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    /// One valid account with an inline secret; `extra` is appended inside the block.
    fn one_account(extra: &str) -> String {
        format!(
            "[[accounts]]\nname = \"eu2\"\nbase_url = \"https://eu2-cloud.acronis.com\"\nclient_id = \"id-1\"\nclient_secret = \"{SECRET}\"\n{extra}\n"
        )
    }

    fn parse_err(text: &str) -> String {
        build(text, None, &no_env).unwrap_err().to_string()
    }

    fn secret_file(dir: &tempfile::TempDir, content: &str) -> PathBuf {
        let path = dir.path().join("secret");
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn the_shipped_example_parses_with_its_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = secret_file(&dir, &format!("{SECRET}\n"));
        assert!(EXAMPLE.contains(EXAMPLE_SECRET_PATH));
        let text = EXAMPLE.replace(EXAMPLE_SECRET_PATH, &path.to_string_lossy());
        let config = parse_str(&text).unwrap();
        let s = &config.settings;
        assert_eq!(s.archive.dir, ArchiveSettings::default().dir);
        assert!(!s.archive.keep_compressed);
        assert_eq!(s.ledger.path, LedgerSettings::default().path);
        assert_eq!(s.http.timeout, Duration::from_secs(300));
        assert_eq!(s.http.connect_timeout, Duration::from_secs(10));
        assert_eq!(s.daemon.shutdown_grace, Duration::from_secs(30));
        assert_eq!(s.log.format, LogFormat::Auto);
        assert_eq!(config.accounts.len(), 1);
        let account = &config.accounts[0];
        assert_eq!(account.name, "eu2-partner");
        assert_eq!(account.client_secret.expose_secret(), SECRET);
        assert_eq!(account.schedule, "0 0 * * * *");
        assert_eq!(account.concurrency, 4);
    }

    #[test]
    fn the_example_states_the_same_defaults_as_the_code() {
        let doc: toml::Table = toml::from_str(EXAMPLE).unwrap();
        let defaults = parse_str(&one_account("")).unwrap().effective_toml();
        let defaults: toml::Table = toml::from_str(&defaults).unwrap();
        for section in [
            "archive", "ledger", "defaults", "http", "daemon", "log", "server", "notify",
        ] {
            assert_eq!(doc[section], defaults[section], "[{section}]");
        }
    }

    #[test]
    fn an_empty_file_fails_for_want_of_an_account() {
        let err = parse_err("");
        assert!(err.starts_with("accounts: no account configured"), "{err}");
    }

    #[test]
    fn a_typo_in_a_section_names_the_key_and_the_section() {
        let err = parse_err(&format!("[archive]\ndri = \"/x\"\n{}", one_account("")));
        assert!(err.contains("unknown field `dri`"), "{err}");
        assert!(err.contains("in [archive]"), "{err}");
    }

    #[test]
    fn a_typo_in_an_account_names_the_key_and_the_account() {
        let err = parse_err(&one_account("schedul = \"0 0 * * * *\""));
        assert!(err.contains("unknown field `schedul`"), "{err}");
        assert!(err.contains("in accounts[0];"), "{err}");
    }

    #[test]
    fn a_typo_in_a_section_name_is_an_error() {
        let err = parse_err(&format!("[archiv]\ndir = \"/x\"\n{}", one_account("")));
        assert!(err.contains("unknown field `archiv`"), "{err}");
        assert!(err.contains("at the top level"), "{err}");
    }

    #[test]
    fn a_missing_required_key_names_it_with_its_index() {
        let text = format!(
            "{}{}",
            one_account(""),
            one_account("").replace("client_id = \"id-1\"\n", "")
        );
        let err = parse_err(&text.replacen("\"eu2\"", "\"a\"", 1));
        assert!(err.starts_with("accounts[1].client_id: missing"), "{err}");
        let err = parse_err(&one_account("concurrency = -1"));
        assert!(err.contains("`accounts[0].concurrency`"), "{err}");
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let err = parse_err(&format!("[http]\ntimeout = \"soon\"\n{}", one_account("")));
        assert!(err.contains("http.timeout"), "{err}");
    }

    #[test]
    fn a_bad_cron_names_the_account_key() {
        let err = parse_err(&one_account("schedule = \"0 0 25 * * *\""));
        assert!(
            err.starts_with("accounts[0].schedule: invalid cron schedule"),
            "{err}"
        );
    }

    #[test]
    fn a_five_field_cron_gets_the_six_field_hint() {
        let err = parse_err(&format!(
            "[defaults]\nschedule = \"*/5 * * * *\"\n{}",
            one_account("")
        ));
        assert!(err.starts_with("defaults.schedule:"), "{err}");
        assert!(err.contains(CRON_HINT), "{err}");
    }

    #[test]
    fn a_seven_field_cron_with_a_year_is_accepted() {
        let config = parse_str(&one_account("schedule = \"0 0 12 * * * 2030\"")).unwrap();
        assert_eq!(config.accounts[0].schedule, "0 0 12 * * * 2030");
    }

    #[test]
    fn a_missing_secret_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let text = one_account("").replace(
            &format!("client_secret = \"{SECRET}\""),
            &format!("client_secret_file = {:?}", missing.to_string_lossy()),
        );
        let err = build(&text, None, &no_env).unwrap_err();
        assert!(matches!(err, ConfigError::Secret { .. }), "{err:?}");
        let err = err.to_string();
        assert!(err.starts_with("accounts[0].client_secret_file:"), "{err}");
        assert!(err.contains(&*missing.to_string_lossy()), "{err}");
    }

    #[test]
    fn a_secret_file_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = secret_file(&dir, "abc \r\n");
        let text = one_account("").replace(
            &format!("client_secret = \"{SECRET}\""),
            &format!("client_secret_file = {:?}", path.to_string_lossy()),
        );
        let config = parse_str(&text).unwrap();
        assert_eq!(config.accounts[0].client_secret.expose_secret(), "abc ");
    }

    #[test]
    fn an_empty_secret_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = secret_file(&dir, "\n");
        let text = one_account("").replace(
            &format!("client_secret = \"{SECRET}\""),
            &format!("client_secret_file = {:?}", path.to_string_lossy()),
        );
        assert!(parse_err(&text).contains("is empty"));
    }

    #[test]
    fn a_secret_from_the_environment_is_read_and_an_unset_one_is_an_error() {
        let text = one_account("").replace(
            &format!("client_secret = \"{SECRET}\""),
            "client_secret_env = \"EU2_SECRET\"",
        );
        let lookup = |name: &str| (name == "EU2_SECRET").then(|| OsString::from(SECRET));
        let config = build(&text, None, &lookup).unwrap();
        assert_eq!(config.accounts[0].client_secret.expose_secret(), SECRET);
        let err = build(&text, None, &no_env).unwrap_err().to_string();
        assert!(err.starts_with("accounts[0].client_secret_env:"), "{err}");
        assert!(err.contains("EU2_SECRET"), "{err}");
    }

    #[test]
    fn two_secret_sources_are_an_error_naming_both() {
        let err = parse_err(&one_account("client_secret_env = \"X\""));
        assert!(
            err.contains("set only one of client_secret, client_secret_env"),
            "{err}"
        );
        assert!(!err.contains(SECRET), "{err}");
    }

    #[test]
    fn no_secret_source_is_an_error() {
        let text = one_account("").replace(&format!("client_secret = \"{SECRET}\""), "");
        assert!(parse_err(&text).starts_with("accounts[0].client_secret: no client secret"));
    }

    #[test]
    fn duplicate_account_names_name_both_entries() {
        let err = parse_err(&format!("{}{}", one_account(""), one_account("")));
        assert!(err.starts_with("accounts[1].name:"), "{err}");
        assert!(err.contains("accounts[0]"), "{err}");
    }

    #[test]
    fn bad_names_formats_reports_and_concurrency_are_rejected() {
        let cases = [
            (
                one_account("").replace("\"eu2\"", "\"EU 2\""),
                "accounts[0].name:",
            ),
            (
                one_account("formats = [\"csv\", \"CSV!\"]"),
                "accounts[0].formats[1]:",
            ),
            (
                one_account("reports = [\"../etc\"]"),
                "accounts[0].reports[0]:",
            ),
            (one_account("concurrency = 0"), "accounts[0].concurrency:"),
            (
                one_account("").replace("https://", "ftp://"),
                "accounts[0].base_url:",
            ),
            (
                one_account("").replace("id-1", " "),
                "accounts[0].client_id:",
            ),
            (
                format!("[http]\ntimeout = \"0s\"\n{}", one_account("")),
                "http.timeout:",
            ),
            (
                format!("[archive]\ndir = \"\"\n{}", one_account("")),
                "archive.dir:",
            ),
        ];
        for (text, key) in cases {
            let err = parse_err(&text);
            assert!(err.starts_with(key), "want {key}, got {err}");
        }
    }

    #[test]
    fn a_trailing_api_2_and_slash_are_stripped_from_the_base_url() {
        for url in [
            "https://eu2-cloud.acronis.com/api/2",
            "https://eu2-cloud.acronis.com/api/2/",
            "https://eu2-cloud.acronis.com/",
        ] {
            assert_eq!(
                normalize_base_url(url).unwrap(),
                "https://eu2-cloud.acronis.com"
            );
        }
        assert_eq!(
            normalize_base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_base_url("https://api/2").unwrap(),
            "https://api/2"
        );
        assert!(normalize_base_url("https:///api/2").is_err());
        assert!(normalize_base_url("https://user:pw@host").is_err());
    }

    #[test]
    fn account_overrides_win_over_defaults() {
        let text = format!(
            "[defaults]\nconcurrency = 8\nformats = [\"csv\"]\n{}",
            one_account("formats = [\"json_v2_0\"]")
        );
        let account = &parse_str(&text).unwrap().accounts[0];
        assert_eq!(account.concurrency, 8);
        assert_eq!(account.formats, ["json_v2_0"]);
    }

    #[test]
    fn env_overrides_win_over_the_file() {
        let env = HashMap::from([
            (
                "REPORT_ARCHIVER__ARCHIVE__DIR".to_owned(),
                "/srv/reports".to_owned(),
            ),
            (
                "REPORT_ARCHIVER__ARCHIVE__KEEP_COMPRESSED".to_owned(),
                "true".to_owned(),
            ),
            ("REPORT_ARCHIVER__HTTP__TIMEOUT".to_owned(), "2m".to_owned()),
            (
                "REPORT_ARCHIVER__DEFAULTS__CONCURRENCY".to_owned(),
                "2".to_owned(),
            ),
            ("REPORT_ARCHIVER__LOG__FORMAT".to_owned(), "json".to_owned()),
            ("REPORT_ARCHIVER__LOG__LEVEL".to_owned(), "debug".to_owned()),
            (
                "REPORT_ARCHIVER__DEFAULTS__FORMATS".to_owned(),
                "csv,json_v2_0".to_owned(),
            ),
            (
                "REPORT_ARCHIVER_CONFIG".to_owned(),
                "/ignored.toml".to_owned(),
            ),
        ]);
        let text = format!("[archive]\ndir = \"/x\"\n{}", one_account(""));
        let config = build(&text, Some(&env), &no_env).unwrap();
        let s = &config.settings;
        assert_eq!(s.archive.dir, PathBuf::from("/srv/reports"));
        assert!(s.archive.keep_compressed);
        assert_eq!(s.http.timeout, Duration::from_secs(120));
        assert_eq!(config.accounts[0].concurrency, 2);
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.log.level, "debug");
        assert_eq!(config.accounts[0].formats, ["csv", "json_v2_0"]);
    }

    #[test]
    fn a_typo_in_an_env_override_is_an_error() {
        let env = HashMap::from([("REPORT_ARCHIVER__ARCHIVE__DRI".to_owned(), "/x".to_owned())]);
        let err = build(&one_account(""), Some(&env), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `dri`"), "{err}");
        assert!(
            err.contains("environment variable REPORT_ARCHIVER__ARCHIVE__DRI"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_config_file_is_not_found_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let err = load(Some(&path)).unwrap_err();
        assert!(matches!(err, ConfigError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains(&*path.to_string_lossy()));
    }

    #[test]
    fn effective_toml_masks_the_secret_and_parses_back() {
        let config = parse_str(&one_account("")).unwrap();
        let text = config.effective_toml();
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains(MASK), "{text}");
        let back = parse_str(&text.replace(MASK, "other")).unwrap();
        assert_eq!(back.accounts[0].base_url, config.accounts[0].base_url);
        assert_eq!(back.settings.http.timeout, config.settings.http.timeout);
    }

    fn with_source(source: &str) -> String {
        one_account("").replace(&format!("client_secret = \"{SECRET}\""), source)
    }

    #[test]
    fn a_credential_is_read_from_the_systemd_credentials_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("eu2"), format!("{SECRET}\n")).unwrap();
        let text = with_source("client_secret_credential = \"eu2\"");
        let creds = dir.path().as_os_str().to_owned();
        let lookup = move |name: &str| (name == CREDENTIALS_DIRECTORY_ENV).then(|| creds.clone());
        let config = build(&text, None, &lookup).unwrap();
        assert_eq!(config.accounts[0].client_secret.expose_secret(), SECRET);
    }

    #[test]
    fn without_systemd_a_credential_is_looked_for_in_docker_secrets() {
        let text = with_source("client_secret_credential = \"no-such-credential\"");
        let err = build(&text, None, &no_env).unwrap_err().to_string();
        assert!(
            err.starts_with("accounts[0].client_secret_credential:"),
            "{err}"
        );
        assert!(err.contains("/run/secrets/no-such-credential"), "{err}");
    }

    #[test]
    fn a_credential_name_with_a_slash_is_refused() {
        let err = parse_err(&with_source("client_secret_credential = \"../eu2\""));
        assert!(
            err.starts_with("accounts[0].client_secret_credential:"),
            "{err}"
        );
    }

    #[test]
    fn a_credential_and_a_file_together_are_two_sources() {
        let err = parse_err(&with_source(
            "client_secret_file = \"/x\"\nclient_secret_credential = \"eu2\"",
        ));
        assert!(
            err.contains("set only one of client_secret_file, client_secret_credential"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_can_read_is_a_warning_without_the_secret() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = secret_file(&dir, SECRET);
        let text = with_source(&format!(
            "client_secret_file = {:?}",
            path.to_string_lossy()
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(parse_str(&text).unwrap().warnings.is_empty());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let warnings = parse_str(&text).unwrap().warnings;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("accounts[0].client_secret_file:"),
            "{warnings:?}"
        );
        assert!(warnings[0].contains("0640"), "{warnings:?}");
        assert!(!warnings[0].contains(SECRET));
    }

    #[test]
    fn notify_urls_are_masked_and_a_bad_one_is_not_repeated() {
        let hook = "https://hooks.example.com/T0/B0/token-that-must-not-leak";
        let text = format!(
            "[notify]\nwebhook_url = {hook:?}\nping_url = \"https://hc-ping.com/u?x=1\"\n{}",
            one_account("")
        );
        let config = parse_str(&text).unwrap();
        let shown = config.effective_toml();
        assert!(!shown.contains("token-that-must-not-leak"), "{shown}");
        assert!(!format!("{config:?}").contains("token-that-must-not-leak"));
        let err = parse_err(&format!(
            "[notify]\nwebhook_url = \"ftp://x/secret-token\"\n{}",
            one_account("")
        ));
        assert!(err.starts_with("notify.webhook_url:"), "{err}");
        assert!(!err.contains("secret-token"), "{err}");
    }

    #[test]
    fn server_listen_is_optional_and_parsed_as_an_address() {
        let config = parse_str(&one_account("")).unwrap();
        assert_eq!(config.settings.server.listen, None);
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstaleness = \"5m\"\n{}",
            one_account("")
        );
        let config = parse_str(&text).unwrap();
        assert_eq!(
            config.settings.server.listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 0)))
        );
        assert_eq!(config.settings.server.staleness, Duration::from_secs(300));
        let err = parse_err(&format!("[server]\nlisten = \"nope\"\n{}", one_account("")));
        assert!(err.contains("server.listen"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let config = parse_str(&one_account("")).unwrap();
        let account = format!("{:?}", config.accounts[0]);
        assert!(account.contains("[redacted]"), "{account}");
        for shown in [account, format!("{config:?}"), format!("{config:#?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
        }
    }
}
