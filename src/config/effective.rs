//! `check-config`'s view: the effective settings as TOML, every secret masked.

use super::*;

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
                base_url: acc.base_url.as_str(),
                client_id: &acc.client_id,
                client_secret: raw.client_secret.as_ref().map(|_| MASK),
                client_secret_file: raw.client_secret_file.as_deref(),
                client_secret_env: raw.client_secret_env.as_deref(),
                client_secret_credential: raw.client_secret_credential.as_deref(),
                reports: &acc.reports,
                schedule: &acc.schedule,
                concurrency: acc.concurrency,
                formats: &acc.formats,
                failure_backoff: acc.failure_backoff,
                allow_http: raw.allow_http,
            })
            .collect();
        // What an account gets when it does not say, wherever that came from.
        let defaults = AccountDefaults {
            failure_backoff: Some(
                s.defaults
                    .failure_backoff
                    .or(s.http.failure_backoff)
                    .unwrap_or(DEFAULT_FAILURE_BACKOFF),
            ),
            ..s.defaults.clone()
        };
        let effective = Effective {
            archive: &s.archive,
            ledger: &s.ledger,
            defaults: &defaults,
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
    #[serde(with = "humantime_serde")]
    failure_backoff: Duration,
    /// Shown only when set: it is the exception worth seeing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    allow_http: bool,
}
