//! The cloud API: token, one method per endpoint, wire types.

pub mod auth;
pub mod client;
pub mod model;

pub use auth::TokenSource;
pub use client::{ApiError, CloudClient};
pub use model::{ReportFormat, StoredItem, StoredStatus};
