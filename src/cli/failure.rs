//! [`Failure`]: what a command fails with, and the exit code it maps to.

use crate::app::AppError;

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    /// The error and its causes on one line, outermost first, each once: many messages
    /// already quote their cause (`cannot lock …: Not a directory (os error 20); check …`),
    /// and a cause whose text is already on the line is not printed again after it.
    pub fn message(&self) -> String {
        let mut line = String::new();
        for cause in self.error.chain() {
            let text = cause.to_string();
            if text.is_empty() || line.contains(&text) {
                continue;
            }
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        line
    }

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

#[cfg(test)]
mod tests {
    use super::Failure;

    #[test]
    fn a_cause_the_message_already_quotes_is_printed_once() {
        let io = std::io::Error::from_raw_os_error(20);
        let quoted = format!("cannot lock `/x`: {io}; check that it is a folder");
        #[derive(Debug, thiserror::Error)]
        #[error("{0}")]
        struct Quoting(String, #[source] std::io::Error);
        let failure =
            Failure::runtime(anyhow::Error::new(Quoting(quoted, io)).context("cannot start"));
        let line = failure.message();
        assert_eq!(line.matches("os error 20").count(), 1, "{line}");
        assert!(line.starts_with("cannot start: cannot lock"), "{line}");

        let plain = Failure::runtime(anyhow::anyhow!("inner").context("outer"));
        assert_eq!(plain.message(), "outer: inner");
    }
}
