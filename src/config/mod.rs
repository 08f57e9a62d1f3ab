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
mod s3;
mod secret;
#[cfg(test)]
mod tests;
mod validate;

pub use s3::{LockMode, MIN_PART_SIZE, ObjectLock, ObjectLockSettings, S3Keys, S3Settings};
use s3::{resolve_s3_keys, validate_s3};
use secrecy::{ExposeSecret, SecretString};
use secret::*;
use serde::{Deserialize, Serialize};
pub use validate::validate;
use validate::*;

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
    /// Archive into an S3-compatible bucket instead of `dir`; `dir` then only stages
    /// downloads (`.partial/`) until they are verified and uploaded. Default: unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Settings>,
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
    /// Largest JSON answer read (token, discovery, a report's stored list); a bigger one is
    /// refused instead of buffered. Bytes, or a string with a unit. Default 64 MiB.
    #[serde(with = "byte_size")]
    pub max_json_size: u64,
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
    /// Allows a plain `http://` URL to a host that is not loopback (its token then crosses
    /// the network readable); logged as a warning at every start. Default false.
    pub allow_http: bool,
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
    /// Allows a plain `http://` `base_url` to a host that is not loopback: the client
    /// secret (HTTP Basic) and the bearer token then cross the network readable. Logged as
    /// a warning at every start. Default false.
    #[serde(default)]
    pub allow_http: bool,
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
    /// The `[archive.s3]` access keys when the config names them; `None` with `[archive.s3]`
    /// set means the `AWS_*` environment chain.
    pub s3_keys: Option<S3Keys>,
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
    let mut warnings = plain_http_warnings(&settings);
    let s3_keys = resolve_s3_keys(&settings, lookup, &mut warnings)?;
    let accounts: Vec<Account> = settings
        .accounts
        .iter()
        .enumerate()
        .map(|(i, raw)| resolve_account(i, raw, &settings.defaults, lookup, &mut warnings))
        .collect::<Result<_, _>>()?;
    register_secrets(&settings, &accounts, s3_keys.as_ref(), lookup);
    Ok(Config {
        settings,
        accounts,
        source: None,
        warnings,
        s3_keys,
    })
}

/// Tells [`crate::redact`] every secret of this configuration, so that a server echoing
/// one never gets it into a log line, the ledger, a table or the webhook.
fn register_secrets(
    settings: &Settings,
    accounts: &[Account],
    s3_keys: Option<&S3Keys>,
    lookup: EnvLookup<'_>,
) {
    for account in accounts {
        crate::redact::register_client(&account.client_id, account.client_secret.expose_secret());
    }
    for url in [&settings.notify.webhook_url, &settings.notify.ping_url]
        .into_iter()
        .flatten()
    {
        crate::redact::register_url(url.expose_secret());
    }
    if settings.archive.s3.is_none() {
        return;
    }
    if let Some(keys) = s3_keys {
        crate::redact::register(keys.secret_access_key.expose_secret());
    }
    // Without configured keys object_store reads these from the environment.
    for var in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Some(value) = lookup(var).and_then(|v| v.into_string().ok()) {
            crate::redact::register(&value);
        }
    }
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
                allow_http: raw.allow_http,
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
                allow_http: s.notify.allow_http,
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
    allow_http: bool,
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
    /// Shown only when set: it is the exception worth seeing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    allow_http: bool,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/var/lib/report-archiver/archive"),
            keep_compressed: false,
            max_file_size: 10 * 1024 * 1024 * 1024,
            keep: None,
            s3: None,
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
            max_json_size: 64 * 1024 * 1024,
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
            allow_http: false,
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
