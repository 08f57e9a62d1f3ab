//! report-archiver: keeps a complete, verified, local archive of the stored usage reports
//! of Acronis Cyber Protect Cloud.
//!
//! The crate is a library with a thin binary. `ARCHITECTURE.md` at the repository's root maps
//! the modules, the direction of their dependencies and the invariants. Integration tests
//! drive this library and the binary as a user would.

// One audited exception: `file_sink::start_writeback` (sync_file_range has no safe binding).
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod api;
pub mod app;
pub mod archive;
pub mod cli;
pub mod config;
pub mod fake_cloud;
pub mod file_sink;
pub mod health;
pub mod inspect;
pub mod instance;
pub mod ledger;
pub mod locations;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod pass;
pub mod progress;
pub mod reconcile;
pub mod redact;
pub mod reports;
pub mod retention;
pub mod runtime;
pub mod s3;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod untrusted;
pub mod verify;
