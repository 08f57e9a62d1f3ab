//! `[archive.s3]`: the S3-compatible target, checked without network, and its access keys
//! read from exactly one source each (a file, an environment variable, or neither: then the
//! standard `AWS_*` environment chain).

use super::*;

/// Parts of a multipart upload: S3 refuses parts under 5 MiB (except the last), and 5 GiB
/// is its largest part.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// `[archive.s3]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// The bucket; required.
    pub bucket: String,
    /// Folder inside the bucket that holds the archive layout, e.g. `"acronis/"`. Default:
    /// the bucket's root.
    #[serde(default)]
    pub prefix: String,
    /// Default: `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Any S3-compatible server (`https://s3.example.com`); default: AWS for the region.
    /// Requests are path style (`<endpoint>/<bucket>/<key>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Allows a plain `http://` endpoint that is not loopback: requests are signed, not
    /// encrypted, so every report crosses the network readable. Logged as a warning at
    /// every start. Default false.
    #[serde(default)]
    pub allow_http: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key_env: Option<String>,
    /// Files from this size up are uploaded in parts of this size. Default 16 MiB; 5 MiB
    /// to 5 GiB.
    #[serde(with = "byte_size", default = "default_part_size")]
    pub part_size: u64,
    /// Parts of one file in flight at once; memory is about part_size × this per upload.
    /// Default 2.
    #[serde(default = "default_upload_concurrency")]
    pub upload_concurrency: usize,
    /// Per-object Object Lock retention set on every object as it is written; the bucket
    /// must have Object Lock enabled (checked at start). Default: unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLock>,
}

/// Object Lock retention modes, as S3 spells them on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Compliance,
    Governance,
}

impl LockMode {
    #[must_use]
    pub fn as_header(self) -> &'static str {
        match self {
            Self::Compliance => "COMPLIANCE",
            Self::Governance => "GOVERNANCE",
        }
    }
}

/// Written in any case (`"compliance"`, `"Governance"`); the error lists the two modes.
impl<'de> Deserialize<'de> for LockMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.to_ascii_lowercase().as_str() {
            "compliance" => Ok(Self::Compliance),
            "governance" => Ok(Self::Governance),
            _ => Err(serde::de::Error::custom(format!(
                "{text:?} is not an Object Lock mode; use \"compliance\" or \"governance\""
            ))),
        }
    }
}

impl Serialize for LockMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_header().to_ascii_lowercase())
    }
}

/// `object_lock = { mode = "compliance", retain = "7y" }`: each object is locked from its
/// upload until upload time + `retain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectLock {
    /// `"compliance"` (no one can shorten or remove it, not even the root account) or
    /// `"governance"` (users with `s3:BypassGovernanceRetention` can).
    pub mode: LockMode,
    /// How long each object stays locked: `"7y"`, `"18months"`, `"400d"`.
    pub retain: Keep,
}

fn default_part_size() -> u64 {
    16 * 1024 * 1024
}

fn default_upload_concurrency() -> usize {
    2
}

/// Static access keys for the S3 target; `Debug` never shows them.
#[derive(Clone)]
pub struct S3Keys {
    pub access_key_id: SecretString,
    pub secret_access_key: SecretString,
}

impl fmt::Debug for S3Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("S3Keys([redacted])")
    }
}

impl S3Settings {
    /// The prefix as a key folder: no leading or trailing `/`; empty for the bucket root.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        self.prefix.trim_matches('/')
    }
}

pub(super) fn validate_s3(s: &Settings) -> Result<(), ConfigError> {
    let Some(s3) = &s.archive.s3 else {
        return Ok(());
    };
    let bucket_ok = (3..=63).contains(&s3.bucket.len())
        && s3
            .bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !s3.bucket.starts_with(['.', '-'])
        && !s3.bucket.ends_with(['.', '-']);
    if !bucket_ok {
        return Err(invalid(
            "archive.s3.bucket",
            format!(
                "{:?} is not a bucket name; use 3 to 63 of a-z, 0-9, '.' and '-'",
                s3.bucket
            ),
        ));
    }
    check_names(s3)?;
    check_endpoint(s3)?;
    check_parts(s3)?;
    check_key_sources(s3)
}

/// The prefix and region as S3 names them (the bucket is checked first, above).
fn check_names(s3: &S3Settings) -> Result<(), ConfigError> {
    // Keys are sent as written (no percent-encoding to get wrong in our own signed
    // requests): the prefix keeps to the characters archive paths use.
    let prefix = s3.key_prefix();
    let prefix_ok = prefix.is_empty()
        || (prefix.len() <= 256
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
            && prefix
                .split('/')
                .all(|p| !p.is_empty() && p != "." && p != ".."));
    if !prefix_ok {
        return Err(invalid(
            "archive.s3.prefix",
            format!(
                "{:?} is not a usable prefix; use folders of A-Z, a-z, 0-9, '-', '_' and '.' separated by single '/', e.g. \"acronis/\"",
                s3.prefix
            ),
        ));
    }
    if let Some(region) = &s3.region
        && !matches_charset(region, 64, |c| {
            c.is_ascii_alphanumeric() || c == '-' || c == '_'
        })
    {
        return Err(invalid(
            "archive.s3.region",
            format!("{region:?} is not a region name; write it like \"eu-central-1\""),
        ));
    }
    Ok(())
}

/// An http(s) URL; plain http only to loopback unless allowed.
fn check_endpoint(s3: &S3Settings) -> Result<(), ConfigError> {
    if let Some(endpoint) = &s3.endpoint {
        let endpoint =
            normalize_base_url(endpoint).map_err(|m| invalid("archive.s3.endpoint", m))?;
        // The same rule as an account's base_url: https, loopback, or said out loud.
        if !s3.allow_http
            && let Some(host) = plain_http_host(&endpoint)
        {
            return Err(invalid(
                "archive.s3.endpoint",
                format!(
                    "{endpoint:?} is plain http:// to {host}, which is not loopback: S3 requests are signed but not encrypted, so every report (and a session token) would cross the network readable; use https://, or set archive.s3.allow_http = true if the link is protected otherwise"
                ),
            ));
        }
    }
    Ok(())
}

/// Multipart uploads: S3's part limits and a bounded number in flight.
fn check_parts(s3: &S3Settings) -> Result<(), ConfigError> {
    if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&s3.part_size) {
        return Err(invalid(
            "archive.s3.part_size",
            "must be between 5MiB and 5GiB (S3's limits for one part), e.g. \"16MiB\"",
        ));
    }
    if !(1..=16).contains(&s3.upload_concurrency) {
        return Err(invalid(
            "archive.s3.upload_concurrency",
            format!(
                "{} is out of range; use 1 to 16 parts at once",
                s3.upload_concurrency
            ),
        ));
    }
    Ok(())
}

/// Each access key from at most one source, and both halves of the pair or neither.
fn check_key_sources(s3: &S3Settings) -> Result<(), ConfigError> {
    for (field, file, env) in [
        (
            "access_key_id",
            s3.access_key_id_file.is_some(),
            s3.access_key_id_env.is_some(),
        ),
        (
            "secret_access_key",
            s3.secret_access_key_file.is_some(),
            s3.secret_access_key_env.is_some(),
        ),
    ] {
        if file && env {
            return Err(invalid(
                format!("archive.s3.{field}_file"),
                format!("set only one of {field}_file and {field}_env"),
            ));
        }
    }
    let has_id = s3.access_key_id_file.is_some() || s3.access_key_id_env.is_some();
    let has_secret = s3.secret_access_key_file.is_some() || s3.secret_access_key_env.is_some();
    if has_id != has_secret {
        let missing = if has_id {
            "secret_access_key"
        } else {
            "access_key_id"
        };
        return Err(invalid(
            format!("archive.s3.{missing}_file"),
            format!(
                "missing: an access key needs both its id and its secret; set {missing}_file or {missing}_env, or neither to use the AWS_* environment chain"
            ),
        ));
    }
    Ok(())
}

/// Reads the S3 access keys when the config names them; `None` means the `AWS_*`
/// environment chain.
pub(super) fn resolve_s3_keys(
    s: &Settings,
    lookup: EnvLookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<S3Keys>, ConfigError> {
    let Some(s3) = &s.archive.s3 else {
        return Ok(None);
    };
    let read = |field: &str,
                file: &Option<PathBuf>,
                env: &Option<String>,
                warnings: &mut Vec<String>|
     -> Result<Option<SecretString>, ConfigError> {
        if let Some(path) = file {
            let field = format!("{field}_file");
            let key = format!("archive.s3.{field}");
            let value = read_secret_file("S3 key", &field, path, &key, warnings)
                .map_err(|message| ConfigError::Secret { key, message })?;
            return Ok(Some(SecretString::from(value)));
        }
        if let Some(var) = env {
            let value = lookup(var)
                .and_then(|v| v.into_string().ok())
                .unwrap_or_default();
            if value.trim().is_empty() {
                return Err(ConfigError::Secret {
                    key: format!("archive.s3.{field}_env"),
                    message: format!(
                        "environment variable {var} is not set, empty or not UTF-8; set it to the S3 {field}"
                    ),
                });
            }
            return Ok(Some(SecretString::from(value)));
        }
        Ok(None)
    };
    let id = read(
        "access_key_id",
        &s3.access_key_id_file,
        &s3.access_key_id_env,
        warnings,
    )?;
    let secret = read(
        "secret_access_key",
        &s3.secret_access_key_file,
        &s3.secret_access_key_env,
        warnings,
    )?;
    Ok(match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Some(S3Keys {
            access_key_id,
            secret_access_key,
        }),
        // validate() makes sure both or neither are configured.
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "[[accounts]]\nname = \"eu2\"\nbase_url = \"https://eu2-cloud.acronis.com\"\nclient_id = \"id\"\nclient_secret = \"x\"\n";

    fn with_s3(s3: &str) -> String {
        format!("[archive]\ndir = \"/tmp/stage\"\n[archive.s3]\n{s3}\n{ACCOUNT}")
    }

    fn env_keys(name: &str) -> Option<OsString> {
        match name {
            "S3_ID" => Some("AKIDEXAMPLE".into()),
            "S3_SECRET" => Some("wJalrXUtnFEMI".into()),
            _ => None,
        }
    }

    fn err(text: &str) -> String {
        build(text, None, &env_keys).unwrap_err().to_string()
    }

    #[test]
    fn a_bucket_alone_uses_the_aws_environment_chain_and_the_defaults() {
        let config = build(&with_s3("bucket = \"acme-reports\""), None, &env_keys).unwrap();
        let s3 = config.settings.archive.s3.as_ref().unwrap();
        assert_eq!(s3.key_prefix(), "");
        assert_eq!(s3.part_size, 16 * 1024 * 1024);
        assert_eq!(s3.upload_concurrency, 2);
        assert!(config.s3_keys.is_none());
    }

    #[test]
    fn keys_from_the_environment_are_read_and_never_shown() {
        let text = with_s3(
            "bucket = \"acme-reports\"\nprefix = \"/acronis/\"\naccess_key_id_env = \"S3_ID\"\nsecret_access_key_env = \"S3_SECRET\"",
        );
        let config = build(&text, None, &env_keys).unwrap();
        let keys = config.s3_keys.as_ref().unwrap();
        assert_eq!(keys.access_key_id.expose_secret(), "AKIDEXAMPLE");
        assert_eq!(
            config.settings.archive.s3.as_ref().unwrap().key_prefix(),
            "acronis"
        );
        let shown = format!("{config:?}{}", config.effective_toml());
        assert!(!shown.contains("wJalrXUtnFEMI") && !shown.contains("AKIDEXAMPLE"));
    }

    #[test]
    fn a_secret_key_file_gets_the_client_secret_checks() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let text = with_s3(&format!(
            "bucket = \"acme-reports\"\naccess_key_id_env = \"S3_ID\"\nsecret_access_key_file = {:?}",
            empty.display().to_string()
        ));
        let message = err(&text);
        assert!(
            message.starts_with("archive.s3.secret_access_key_file:"),
            "{message}"
        );
        assert!(message.contains("is empty"), "{message}");
        let missing = text.replace("empty\"", "nowhere\"");
        assert!(
            err(&missing).contains("cannot read S3 key file"),
            "{}",
            err(&missing)
        );
    }

    #[test]
    fn half_a_key_pair_or_two_sources_for_one_key_name_the_key() {
        let half = err(&with_s3(
            "bucket = \"acme-reports\"\naccess_key_id_env = \"S3_ID\"",
        ));
        assert!(
            half.starts_with("archive.s3.secret_access_key_file:"),
            "{half}"
        );
        let two = err(&with_s3(
            "bucket = \"acme-reports\"\naccess_key_id_env = \"S3_ID\"\naccess_key_id_file = \"/x\"\nsecret_access_key_env = \"S3_SECRET\"",
        ));
        assert!(two.starts_with("archive.s3.access_key_id_file:"), "{two}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (s3, key) in [
            ("bucket = \"Acme_Reports\"", "archive.s3.bucket"),
            (
                "bucket = \"acme\"\nprefix = \"a/../b\"",
                "archive.s3.prefix",
            ),
            ("bucket = \"acme\"\nprefix = \"a b\"", "archive.s3.prefix"),
            (
                "bucket = \"acme\"\nendpoint = \"s3.example.com\"",
                "archive.s3.endpoint",
            ),
            (
                "bucket = \"acme\"\npart_size = \"1MiB\"",
                "archive.s3.part_size",
            ),
            (
                "bucket = \"acme\"\nupload_concurrency = 0",
                "archive.s3.upload_concurrency",
            ),
            (
                "bucket = \"acme\"\nregion = \"eu central\"",
                "archive.s3.region",
            ),
        ] {
            let message = err(&with_s3(s3));
            assert!(message.starts_with(&format!("{key}:")), "{s3}: {message}");
        }
    }

    #[test]
    fn a_plain_http_endpoint_off_loopback_needs_allow_http_like_a_base_url() {
        let message = err(&with_s3(
            "bucket = \"acme\"\nendpoint = \"http://s3.example.com\"",
        ));
        assert!(message.starts_with("archive.s3.endpoint:"), "{message}");
        assert!(
            message.contains("archive.s3.allow_http = true"),
            "{message}"
        );
        let allowed =
            with_s3("bucket = \"acme\"\nendpoint = \"http://s3.example.com\"\nallow_http = true");
        let config = build(&allowed, None, &env_keys).unwrap();
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(config.warnings[0].starts_with("archive.s3.endpoint: plain http://"));
        let local = with_s3("bucket = \"acme\"\nendpoint = \"http://127.0.0.1:9000\"");
        assert!(build(&local, None, &env_keys).unwrap().warnings.is_empty());
    }

    #[test]
    fn object_lock_is_read_and_bad_values_name_their_field() {
        let lock = |mode: &str, retain: &str| {
            with_s3(&format!(
                "bucket = \"acme\"\nobject_lock = {{ mode = {mode:?}, retain = {retain:?} }}"
            ))
        };
        let config = build(&lock("Compliance", "7y"), None, &env_keys).expect("valid");
        let parsed = config
            .settings
            .archive
            .s3
            .as_ref()
            .unwrap()
            .object_lock
            .as_ref()
            .unwrap();
        assert_eq!(
            *parsed,
            ObjectLock {
                mode: LockMode::Compliance,
                retain: Keep {
                    months: 84,
                    days: 0,
                    hours: 0
                },
            }
        );
        let message = err(&lock("legal-hold", "7y"));
        assert!(
            message.starts_with("archive.s3.object_lock.mode:"),
            "{message}"
        );
        assert!(message.contains("\"governance\""), "{message}");
        let message = err(&lock("governance", "7 minutes"));
        assert!(
            message.starts_with("archive.s3.object_lock.retain:"),
            "{message}"
        );
        let message = err(&with_s3(
            "bucket = \"acme\"\nobject_lock = { mode = \"governance\" }",
        ));
        assert!(message.contains("retain"), "{message}");
    }

    #[test]
    fn retention_works_with_s3() {
        let text = with_s3("bucket = \"acme\"").replace("dir = ", "keep = \"7y\"\ndir = ");
        let config = build(&text, None, &env_keys).expect("keep with [archive.s3] is valid");
        assert_eq!(
            config.settings.archive.keep,
            Some(Keep::parse("7y").unwrap())
        );
    }
}
