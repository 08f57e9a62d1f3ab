//! The AWS credential chain, bounded in time. Without configured keys object_store ends
//! its chain at the EC2 metadata service, which off EC2 may never answer: measured here,
//! `verify` against a metadata endpoint that accepts and stays silent still waited after
//! 5 minutes. Every credential fetch (object_store's requests and ours) now gives up
//! after twice `[http] connect_timeout`, with an error that says what to configure.

use std::sync::Arc;
use std::time::Duration;

use object_store::CredentialProvider;
use object_store::aws::{AwsCredential, AwsCredentialProvider};

use super::{ObjectTarget, S3Error};

/// What an operator can do when no credentials are found.
pub(super) const NO_CREDENTIALS: &str = "no S3 credentials: set archive.s3.access_key_id_file and secret_access_key_file (or *_env), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a web identity, container or instance role provides them";

/// object_store's own provider, with a deadline on each fetch.
#[derive(Debug)]
pub(super) struct BoundedCredentials {
    pub inner: AwsCredentialProvider,
    pub wait: Duration,
}

#[async_trait::async_trait]
impl CredentialProvider for BoundedCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        match tokio::time::timeout(self.wait, self.inner.get_credential()).await {
            Ok(Ok(credential)) => Ok(credential),
            Ok(Err(e)) => Err(generic(format!("{NO_CREDENTIALS} ({e})"))),
            Err(_) => Err(generic(format!(
                "{NO_CREDENTIALS} (none within {} s)",
                self.wait.as_secs()
            ))),
        }
    }
}

fn generic(message: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: message.into(),
    }
}

impl ObjectTarget {
    /// Fetches credentials once, so a host without any says so at start rather than at
    /// its first upload.
    pub async fn check_credentials(&self) -> Result<(), S3Error> {
        self.store
            .credentials()
            .get_credential()
            .await
            .map(drop)
            .map_err(|e| S3Error::Request {
                action: "get credentials for",
                key: self.bucket.clone(),
                message: e.to_string(),
            })
    }
}
