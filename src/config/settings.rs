//! The settings as written: one struct per section, with its defaults. Values with rules
//! of their own deserialize straight into their types ([`Keep`], [`BaseUrl`], byte sizes,
//! durations), so what is here is already parsed; [`validate`] checks how they combine.

use super::*;

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
    pub keep: Option<Keep>,
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
    /// An item that failed three passes in a row waits this long before the next try,
    /// doubling with each further failure up to a day. Default 10 minutes (also read from
    /// its old place, `[http] failure_backoff`, with a warning).
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_backoff: Option<Duration>,
}

/// `[daemon]`: behaviour of `run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonSettings {
    /// How long in-flight downloads may finish after SIGTERM. Default 30 seconds.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Create the archive's and the ledger's missing parent folders (as `run`/`once`
    /// `--create-dirs`). Default false: a parent that does not exist is a typo until the
    /// operator says otherwise; the archive folder and the ledger file themselves are
    /// always created.
    pub create_dirs: bool,
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
    pub base_url: BaseUrl,
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
    #[serde(default, with = "humantime_serde::option")]
    pub failure_backoff: Option<Duration>,
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
    pub base_url: BaseUrl,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Empty: every report this client can see.
    pub reports: Vec<String>,
    pub schedule: String,
    pub concurrency: usize,
    /// Empty: every format.
    pub formats: Vec<String>,
    /// How long an item that keeps failing waits (the first wait; it doubles).
    pub failure_backoff: Duration,
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
            .field("failure_backoff", &self.failure_backoff)
            .finish()
    }
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
            failure_backoff: None,
        }
    }
}
impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            shutdown_grace: Duration::from_secs(30),
            create_dirs: false,
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
