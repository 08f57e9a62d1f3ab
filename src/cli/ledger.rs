//! `ledger list|stats|export`: what the ledger holds, read-only, as a table, JSON, CSV or
//! a checksum list. The rows come from `setup::read_ledger`; the work lives in `inspect`.

use std::path::Path;
use std::process::ExitCode;

use super::failure::Failure;
use super::output::{emit, emit_json};
use super::setup::{Location, read_ledger, resolve_ledger};
use crate::inspect::{self, ExportFormat, RowFilter};

#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// One line per archived item, oldest first within each report
    List {
        /// Only the items of this account (its `name` in the config)
        #[arg(long)]
        account: Option<String>,
        /// Only the items of this report id
        #[arg(long)]
        report: Option<String>,
        /// A report format such as csv or json_v2_0
        #[arg(long)]
        format: Option<String>,
        /// Items created on or after this day (YYYY-MM-DD, UTC) or RFC 3339 time
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Print JSON (an array of rows) instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Files and bytes in total and per account, report and format; the last fetch
    Stats {
        /// Print JSON instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Every row as CSV or JSON, or as a checksum list for `sha256sum -c` (run it in the archive dir)
    Export {
        /// csv (with a header), json, or sha256sum (`<sha256>  <path>` lines)
        #[arg(long, value_enum)]
        format: ExportFormat,
    },
}

pub async fn ledger(
    config_path: Option<&Path>,
    location: &Location,
    command: LedgerCommand,
) -> Result<ExitCode, Failure> {
    let ledger = resolve_ledger(config_path, location)?;
    let exporting = matches!(command, LedgerCommand::Export { .. });
    let (rows, objects) = read_ledger(&ledger, exporting).await?;
    match command {
        LedgerCommand::List {
            account,
            report,
            format,
            since,
            json,
        } => {
            let since = since
                .as_deref()
                .map(inspect::parse_since)
                .transpose()
                .map_err(Failure::config)?;
            let filter = RowFilter {
                account,
                report,
                format,
                since,
            };
            let rows = filter.apply(rows);
            if json {
                emit_json(&rows)?;
            } else {
                emit(&inspect::render_list(&rows))?;
            }
        }
        LedgerCommand::Stats { json } => {
            let stats = inspect::stats(&rows);
            if json {
                emit_json(&stats)?;
            } else {
                emit(&inspect::render_stats(&stats))?;
            }
        }
        LedgerCommand::Export { format } => {
            let text = inspect::export(&rows, &objects, format).map_err(Failure::runtime)?;
            emit(&text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
