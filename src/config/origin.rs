//! Where a path setting came from: the built-in default, the config file, or an
//! environment variable. `run` and `once` say it at start, so that no path is used silently.

use super::*;

/// Where one value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    /// The `REPORT_ARCHIVER__…` variable that set it.
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("built-in default"),
            Self::File => f.write_str("config file"),
            Self::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// Where `archive.dir` and `ledger.path` came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathOrigins {
    pub archive_dir: Origin,
    pub ledger_path: Origin,
}

impl PathOrigins {
    /// An env override wins over the file, which wins over the default (as the loader does).
    pub(super) fn find(text: &str, overrides: Option<&HashMap<String, String>>) -> Self {
        // The file has parsed already (or the loader reports it); unparsable here means
        // nothing is known, and the default is the honest answer for a key not seen.
        let table: toml::Table = toml::from_str(text).unwrap_or_default();
        let origin = |section: &str, key: &str| {
            let env = format!("{ENV_PREFIX}{ENV_SEPARATOR}{section}{ENV_SEPARATOR}{key}");
            let from_env = overrides
                .into_iter()
                .flat_map(|vars| vars.keys())
                .find(|name| name.eq_ignore_ascii_case(&env));
            if let Some(name) = from_env {
                return Origin::Env(name.clone());
            }
            let in_file = table
                .get(section)
                .and_then(toml::Value::as_table)
                .is_some_and(|t| t.contains_key(key));
            if in_file {
                Origin::File
            } else {
                Origin::Default
            }
        };
        Self {
            archive_dir: origin("archive", "dir"),
            ledger_path: origin("ledger", "path"),
        }
    }
}
