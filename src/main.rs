//! The `report-archiver` binary: parse, dispatch, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use report_archiver::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread for all async work: a pass's futures, the HTTP connections and the
    // daemon's endpoints then wake no other thread for each response. Everything that
    // blocks or burns CPU already runs elsewhere (file writes, fsyncs and inflating on the
    // blocking pool, hashing big files on its own thread, SQLite on sqlx's), so more async
    // threads only added hand-offs: on 2 cores the many-reports pass took 5 % less time,
    // a 1 GiB download 8 % less and 3 MiB less memory, an S3 upload no more.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::dispatch(cli)) {
        Ok(code) => code,
        Err(failure) => {
            // The whole context chain on one line, each cause once; it may quote a server.
            report_archiver::telemetry::print_error(&failure.message());
            ExitCode::from(failure.code)
        }
    }
}
