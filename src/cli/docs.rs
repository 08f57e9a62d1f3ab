//! `completions` and `man`: the command line described for a shell or for `man`.

use std::process::ExitCode;

use anyhow::Context;

use super::failure::Failure;

/// Prints `shell`'s completion script for `cmd`.
pub fn completions(shell: clap_complete::Shell, mut cmd: clap::Command) -> ExitCode {
    clap_complete::generate(shell, &mut cmd, "report-archiver", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// Prints the man page (roff) of `cmd`.
pub fn man(cmd: clap::Command) -> Result<ExitCode, Failure> {
    clap_mangen::Man::new(cmd)
        .render(&mut std::io::stdout())
        .context("cannot write the man page")
        .map_err(Failure::runtime)?;
    Ok(ExitCode::SUCCESS)
}
