//! The S3-compatible archive target (object_store 0.14, `aws`).
//!
//! - [`ObjectTarget`]: built once from `[archive.s3]`; uploads a finished, verified temp
//!   file to `<prefix>/<archive path>` create-only, so an object that is there already is
//!   never replaced ([`ObjectTarget::upload`]), and aborts the multipart uploads a crash
//!   left behind ([`ObjectTarget::abort_leftover_uploads`]).
//! - [`ObjectTarget::verify`]: `verify` for the bucket (objects streamed back, re-hashed).
//! - [`S3Error`]: what failed, on which key.
//!
//! Downloads still land in `<archive.dir>/.partial/` first: the archive pipeline checks
//! length, gzip stream and SHA-256 there, and only a file that passed is uploaded.

mod cleanup;
mod credentials;
mod lock;
mod signed;
mod upload;
mod verify;

pub use lock::Retention;
pub use verify::Unlocked;

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, Checksum};
use object_store::client::HttpClient;
use object_store::path::Path as KeyPath;
use object_store::{ClientOptions, ObjectStoreExt, RetryConfig};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::{HttpOptions, ObjectLock, S3Keys, S3Settings};
use crate::ledger::{Ledger, LedgerError, ObjectRef};

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("cannot set up the S3 target: {0}")]
    Build(#[source] object_store::Error),
    #[error(
        "refusing to overwrite `s3://{bucket}/{key}`: an object with other content is already there; nothing was replaced and the item is not recorded (move that object away if it is not an archived report)"
    )]
    Exists { bucket: String, key: String },
    #[error("S3 {action} `{key}`: {source}")]
    Store {
        action: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("S3 {action} `{key}`: {message}")]
    Request {
        action: &'static str,
        key: String,
        message: String,
    },
    #[error("read staged file `{path}` for upload: {source}", path = path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("archive.s3.object_lock: bucket `{bucket}` {reason}")]
    ObjectLock { bucket: String, reason: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl S3Error {
    /// The configuration asks for what the bucket cannot do: the operator must change one
    /// of them (exit 2), trying again does not help.
    #[must_use]
    pub fn is_config(&self) -> bool {
        matches!(self, Self::ObjectLock { .. })
    }

    /// The object (or upload) is not there.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }

    fn store<'a>(
        action: &'static str,
        key: &'a str,
    ) -> impl FnOnce(object_store::Error) -> Self + 'a {
        move |source| Self::Store {
            action,
            key: key.to_owned(),
            source,
        }
    }
}

/// Where an upload ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The full key, prefix included.
    pub key: String,
    pub object: ObjectRef,
}

/// The bucket the archive is uploaded to.
#[derive(Debug)]
pub struct ObjectTarget {
    store: Arc<AmazonS3>,
    /// Signs and sends the requests object_store has no API for.
    http: HttpClient,
    /// `<endpoint>/<bucket>`, path style, as object_store addresses it.
    bucket_url: String,
    bucket: String,
    region: String,
    prefix: String,
    part_size: u64,
    concurrency: usize,
    /// More tries of a signed request after a network error or a 5xx (`[http] retries`).
    retries: u32,
    /// Retention set on every object written; `None` without `object_lock`.
    lock: Option<ObjectLock>,
    /// Server-side encryption headers for the writes we sign ourselves.
    encryption: Vec<(&'static str, String)>,
    ledger: Ledger,
}

impl ObjectTarget {
    /// Builds the client; no request is sent yet.
    pub fn build(
        s3: &S3Settings,
        keys: Option<&S3Keys>,
        http: HttpOptions,
        ledger: Ledger,
    ) -> Result<Self, S3Error> {
        let builder = configure(s3, keys, http);
        let region = builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .map(|e| e.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let lock = s3.object_lock;
        let encryption = match &lock {
            Some(_) => lock::encryption_headers(|name| {
                let key = name.parse::<AmazonS3ConfigKey>().ok()?;
                builder.get_config_value(&key)
            })
            .map_err(|reason| S3Error::ObjectLock {
                bucket: s3.bucket.clone(),
                reason,
            })?,
            None => Vec::new(),
        };
        let store = bounded_store(builder, http)?;
        // Our own signed requests (Object Lock, create-only completion) go through this.
        let client = reqwest::Client::builder()
            .timeout(http.total)
            .connect_timeout(http.connect)
            .build()
            .map_err(|e| {
                S3Error::Build(object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(e),
                })
            })?;
        Ok(Self {
            store: Arc::new(store),
            http: HttpClient::new(client),
            bucket_url: format!("{endpoint}/{}", s3.bucket),
            bucket: s3.bucket.clone(),
            region,
            prefix: s3.key_prefix().to_owned(),
            part_size: s3.part_size,
            concurrency: s3.upload_concurrency,
            retries: http.retries,
            lock,
            encryption,
            ledger,
        })
    }

    /// The full key of an archive path.
    #[must_use]
    pub fn key(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_owned()
        } else {
            format!("{}/{relative}", self.prefix)
        }
    }

    #[must_use]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Deletes the object of an archive path (prune). On a versioned bucket S3 keeps the
    /// version behind a delete marker, for a lifecycle rule to expire.
    pub async fn delete(&self, relative: &str) -> Result<(), S3Error> {
        let key = self.key(relative);
        let path = parse_key(&key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(S3Error::store("delete", &key)(e)),
        }
    }

    /// Streams an object back and hashes it: (bytes, SHA-256 lowercase hex).
    pub async fn hash_object(&self, key: &str) -> Result<(u64, String), S3Error> {
        let path = parse_key(key)?;
        let got = self
            .store
            .get(&path)
            .await
            .map_err(S3Error::store("get", key))?;
        let mut body = got.into_stream();
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        while let Some(chunk) = body.try_next().await.map_err(S3Error::store("get", key))? {
            len += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((len, hex::encode(hasher.finalize())))
    }
}

/// The object_store builder for `[archive.s3]`, with `[http]`'s limits.
fn configure(s3: &S3Settings, keys: Option<&S3Keys>, http: HttpOptions) -> AmazonS3Builder {
    // from_env first so AWS_* variables (region, session token, web identity …) fill
    // what the config leaves open; what the config says wins.
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&s3.bucket)
        // Our raw requests address the bucket path style; object_store must agree.
        .with_virtual_hosted_style_request(false)
        // The store checks every PUT and part against this, so bytes damaged on the way
        // are refused by the server; Object Lock buckets also require it.
        .with_checksum_algorithm(Checksum::SHA256)
        .with_client_options(
            ClientOptions::new()
                .with_timeout(http.total)
                .with_connect_timeout(http.connect),
        )
        .with_retry(RetryConfig {
            max_retries: http.retries as usize,
            ..RetryConfig::default()
        });
    if let Some(region) = &s3.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &s3.endpoint {
        builder = builder
            .with_endpoint(endpoint.trim_end_matches('/'))
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let Some(keys) = keys {
        builder = builder
            .with_access_key_id(keys.access_key_id.expose_secret())
            .with_secret_access_key(keys.secret_access_key.expose_secret());
    }
    builder
}

/// The store, with the credential chain object_store picks wrapped so that no fetch of
/// credentials waits forever.
fn bounded_store(builder: AmazonS3Builder, http: HttpOptions) -> Result<AmazonS3, S3Error> {
    let chain = builder.clone().build().map_err(S3Error::Build)?;
    let bounded = credentials::BoundedCredentials {
        inner: chain.credentials().clone(),
        wait: http.connect.saturating_mul(2),
    };
    builder
        .with_credentials(Arc::new(bounded))
        .build()
        .map_err(S3Error::Build)
}

fn parse_key(key: &str) -> Result<KeyPath, S3Error> {
    KeyPath::parse(key).map_err(|e| S3Error::Store {
        action: "name",
        key: key.to_owned(),
        source: e.into(),
    })
}
