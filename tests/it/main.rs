//! One integration binary (one link step): every behaviour against the built-in fake cloud
//! on 127.0.0.1, a real SQLite ledger and real files in a temp dir.

mod architecture;
mod big_tenant;
mod cli;
mod config;
mod crash;
mod deletions;
mod faults;
mod first_hour;
mod group_commit;
mod hostile;
mod ledger;
mod logs;
mod moto_server;
mod object_lock;
mod pass;
mod progress;
mod prometheus;
mod prune;
mod real_cloud;
mod reports;
mod run;
mod s3;
mod s3_server;
mod sd_notify;
mod secrets;
mod send_only;
mod service;
mod shell;
mod support;
mod verify;
