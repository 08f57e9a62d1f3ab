//! [`Failure`]: what a command fails with, and the exit code it maps to.

use crate::app::AppError;

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn config(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 2,
            error: error.into(),
        }
    }

    pub fn runtime(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 1,
            error: error.into(),
        }
    }

    /// The daemon could not start: a config the bucket cannot honour exits 2, like any
    /// other config error; the rest 1.
    pub fn starting(error: AppError) -> Self {
        let code = if error.is_config() { 2 } else { 1 };
        Self {
            code,
            error: anyhow::Error::new(error).context("cannot start"),
        }
    }
}
