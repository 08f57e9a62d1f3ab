//! The SQLite ledger: what was archived, what the cloud reported failed, and every pass.
//!
//! Opened once with WAL and `synchronous=FULL` and the embedded migrations applied. Rows in
//! `archived_items` are written only after the file is durable (invariant 2); the key is
//! (account, report_id, stored_id) (invariant 3).
//!
//! This file opens and closes the ledger and names its errors; the queries live with the
//! tables they touch: `items.rs` (archived items), `failures.rs` (failing downloads and
//! what the cloud reports failed), `deletions.rs` (reports the cloud deleted and items it
//! lost before they were archived), `passes.rs`, `outcomes.rs` (what the webhook was told),
//! `listings.rs` (when each report was last listed) and `objects.rs` (the S3 target's
//! objects and open multipart uploads).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

mod deletions;
mod failures;
mod items;
mod listings;
mod objects;
mod outcomes;
mod passes;

pub use deletions::{ListedFacts, NotFoundAnswer, NotFoundVerdict, VanishedRow};
pub use failures::{FREE_ATTEMPTS, ItemFailureRow};
pub use items::{ArchivedRow, ItemKey};
pub use listings::Listing;
pub use objects::{ObjectRef, OpenUpload};
pub use passes::{PassRow, PassTotals};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "cannot open the ledger `{path}`: {source}; check the path, its permissions, and that no other program holds the database locked"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot bring the ledger `{path}` up to date: {source}")]
    Migrate {
        path: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("ledger query failed ({what}): {source}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

fn query_err(what: &'static str) -> impl FnOnce(sqlx::Error) -> LedgerError {
    move |source| LedgerError::Query { what, source }
}

#[derive(Debug, Clone)]
pub struct Ledger {
    pool: SqlitePool,
}

const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Ledger {
    /// Opens (creating if missing) and migrates the ledger.
    pub async fn open(path: &Path, busy_timeout: Duration) -> Result<Self, LedgerError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| LedgerError::Open {
                path: path.to_owned(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let options = Self::options(path, busy_timeout)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = Self::pool(path, options).await?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| LedgerError::Migrate {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self { pool })
    }

    /// Opens an existing ledger without writing to it; `None` when there is none yet.
    pub async fn open_read_only(path: &Path) -> Result<Option<Self>, LedgerError> {
        if !path.exists() {
            return Ok(None);
        }
        let options = Self::options(path, DEFAULT_BUSY_TIMEOUT)?.read_only(true);
        Ok(Some(Self {
            pool: Self::pool(path, options).await?,
        }))
    }

    fn options(path: &Path, busy_timeout: Duration) -> Result<SqliteConnectOptions, LedgerError> {
        Ok(SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| LedgerError::Open {
                path: path.to_owned(),
                source,
            })?
            .filename(path)
            .busy_timeout(busy_timeout))
    }

    async fn pool(path: &Path, options: SqliteConnectOptions) -> Result<SqlitePool, LedgerError> {
        // One connection: writes are a handful of rows per pass, and a single writer
        // never meets SQLITE_BUSY from itself.
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| LedgerError::Open {
                path: path.to_owned(),
                source,
            })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
