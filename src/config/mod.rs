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
mod effective;
mod http;
mod keep;
mod origin;
mod parse_error;
mod s3;
mod secret;
mod settings;
#[cfg(test)]
mod tests;
mod url;
mod validate;

pub use http::{HttpOptions, HttpSettings};
pub use keep::{Keep, KeepError};
pub use origin::{Origin, PathOrigins};
use parse_error::describe_parse_error;
pub use s3::{LockMode, MIN_PART_SIZE, ObjectLock, S3Keys, S3Settings};
use s3::{resolve_s3_keys, validate_s3};
use secrecy::{ExposeSecret, SecretString};
use secret::*;
use serde::{Deserialize, Serialize};
pub use settings::*;
pub use url::BaseUrl;
use url::*;
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
    /// Where `archive.dir` and `ledger.path` came from, for the start-up log.
    pub origins: PathOrigins,
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
    let backoff = failure_backoff(&settings, &mut warnings)?;
    let s3_keys = resolve_s3_keys(&settings, lookup, &mut warnings)?;
    let accounts: Vec<Account> = settings
        .accounts
        .iter()
        .enumerate()
        .map(|(i, raw)| resolve_account(i, raw, &settings.defaults, backoff, lookup, &mut warnings))
        .collect::<Result<_, _>>()?;
    register_secrets(&settings, &accounts, s3_keys.as_ref(), lookup);
    let origins = PathOrigins::find(text, overrides);
    Ok(Config {
        settings,
        accounts,
        source: None,
        warnings,
        s3_keys,
        origins,
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
