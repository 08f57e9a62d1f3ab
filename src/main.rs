//! The `report-archiver` binary: parse, dispatch, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use report_archiver::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread for all async work: a pass's futures, the HTTP connections and the
    // daemon's endpoints then wake no other thread for each response; the blocking pool runs
    // lower (see `runtime`).
    let runtime = match report_archiver::runtime::build() {
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
