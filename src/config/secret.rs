//! Accounts resolved: defaults merged in and the client secret read from exactly one source
//! (inline, file, environment variable, or a systemd/Docker credential).

use super::*;

pub(super) fn resolve_account(
    i: usize,
    a: &AccountSettings,
    defaults: &AccountDefaults,
    failure_backoff: Duration,
    lookup: EnvLookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<Account, ConfigError> {
    Ok(Account {
        name: a.name.clone(),
        base_url: a.base_url.clone(),
        client_id: a.client_id.trim().to_owned(),
        client_secret: resolve_secret(i, a, lookup, warnings)?,
        reports: a.reports.clone(),
        schedule: a
            .schedule
            .clone()
            .unwrap_or_else(|| defaults.schedule.clone()),
        concurrency: a.concurrency.unwrap_or(defaults.concurrency),
        formats: a
            .formats
            .clone()
            .unwrap_or_else(|| defaults.formats.clone()),
        failure_backoff: a.failure_backoff.unwrap_or(failure_backoff),
    })
}

/// Where `client_secret_credential = NAME` is read from: systemd's credentials directory
/// when the unit has one, else the Docker secrets folder.
pub(super) fn credential_path(name: &str, lookup: EnvLookup<'_>) -> PathBuf {
    match lookup(CREDENTIALS_DIRECTORY_ENV).filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join(name),
        None => Path::new(DOCKER_SECRETS_DIR).join(name),
    }
}

/// Reads a secret file: one trailing newline dropped; a file that group or others can read
/// adds a warning (the secret is still used: refusing would break a working deployment).
pub(super) fn read_secret_file(
    what: &str,
    field: &str,
    path: &Path,
    key: &str,
    warnings: &mut Vec<String>,
) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {what} file `{}`: {e}; create it or point {field} at the right file",
            path.display()
        )
    })?;
    if let Some(mode) = loose_mode(path, 0o044) {
        warnings.push(format!(
            "{key}: {what} file `{}` can be read by group or others (mode {mode:04o}); chmod 600 it, or pass it with systemd LoadCredential= or a Docker secret",
            path.display()
        ));
    }
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if trimmed.trim().is_empty() {
        return Err(format!(
            "{what} file `{}` is empty; write the {what} into it",
            path.display()
        ));
    }
    Ok(trimmed.to_owned())
}

pub(super) fn resolve_secret(
    i: usize,
    a: &AccountSettings,
    lookup: EnvLookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<SecretString, ConfigError> {
    let secret_error = |field: &str, message: String| ConfigError::Secret {
        key: format!("accounts[{i}].{field}"),
        message,
    };
    let value: String = if let Some(secret) = &a.client_secret {
        secret.expose_secret().to_owned()
    } else if let Some(path) = &a.client_secret_file {
        let field = "client_secret_file";
        let key = format!("accounts[{i}].{field}");
        read_secret_file("client secret", field, path, &key, warnings)
            .map_err(|m| secret_error(field, m))?
    } else if let Some(name) = &a.client_secret_credential {
        let field = "client_secret_credential";
        let key = format!("accounts[{i}].{field}");
        let path = credential_path(name, lookup);
        read_secret_file("client secret", field, &path, &key, warnings).map_err(|m| {
            secret_error(
                field,
                format!(
                    "{m} (credential {name:?}: systemd LoadCredential={name}:… sets ${CREDENTIALS_DIRECTORY_ENV}; without it {DOCKER_SECRETS_DIR}/{name} is read)"
                ),
            )
        })?
    } else if let Some(var) = &a.client_secret_env {
        let value = lookup(var)
            .and_then(|v| v.into_string().ok())
            .unwrap_or_default();
        if value.is_empty() {
            return Err(secret_error(
                "client_secret_env",
                format!(
                    "environment variable {var} is not set, empty or not UTF-8; set it to the client secret"
                ),
            ));
        }
        value
    } else {
        return Err(secret_error(
            "client_secret",
            "no client secret configured".to_owned(),
        ));
    };
    if value.trim().is_empty() {
        return Err(secret_error(
            "client_secret",
            "the client secret is empty".to_owned(),
        ));
    }
    Ok(SecretString::from(value))
}
