//! The cloud API: token, one method per endpoint, wire types, retries and rate limit.

pub mod auth;
pub mod client;
pub mod error;
pub mod manage;
pub mod model;
pub mod rate;
pub mod retry;
pub mod transport;

pub use auth::TokenSource;
pub use client::CloudClient;
pub use error::ApiError;
pub use model::{ReportFormat, StoredItem, StoredStatus};
