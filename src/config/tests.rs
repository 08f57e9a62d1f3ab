use super::*;

const EXAMPLE: &str = include_str!("../../config/example.toml");
const EXAMPLE_SECRET_PATH: &str = "/run/credentials/report-archiver.service/eu2";
const SECRET: &str = "s3cr3t-value-that-must-not-leak";

fn no_env(_: &str) -> Option<OsString> {
    None
}

/// One valid account with an inline secret; `extra` is appended inside the block.
fn one_account(extra: &str) -> String {
    format!(
        "[[accounts]]\nname = \"eu2\"\nbase_url = \"https://eu2-cloud.acronis.com\"\nclient_id = \"id-1\"\nclient_secret = \"{SECRET}\"\n{extra}\n"
    )
}

fn parse_err(text: &str) -> String {
    build(text, None, &no_env).unwrap_err().to_string()
}

fn secret_file(dir: &tempfile::TempDir, content: &str) -> PathBuf {
    let path = dir.path().join("secret");
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn the_shipped_example_parses_with_its_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(&dir, &format!("{SECRET}\n"));
    assert!(EXAMPLE.contains(EXAMPLE_SECRET_PATH));
    let text = EXAMPLE.replace(EXAMPLE_SECRET_PATH, &path.to_string_lossy());
    let config = parse_str(&text).unwrap();
    let s = &config.settings;
    assert_eq!(s.archive.dir, ArchiveSettings::default().dir);
    assert!(!s.archive.keep_compressed);
    assert_eq!(s.ledger.path, LedgerSettings::default().path);
    assert_eq!(s.http.timeout, Duration::from_secs(300));
    assert_eq!(s.http.connect_timeout, Duration::from_secs(10));
    assert_eq!(s.daemon.shutdown_grace, Duration::from_secs(30));
    assert_eq!(s.log.format, LogFormat::Auto);
    assert_eq!(config.accounts.len(), 1);
    let account = &config.accounts[0];
    assert_eq!(account.name, "eu2-partner");
    assert_eq!(account.client_secret.expose_secret(), SECRET);
    assert_eq!(account.schedule, "0 0 * * * *");
    assert_eq!(account.concurrency, 4);
}

#[test]
fn the_example_states_the_same_defaults_as_the_code() {
    let doc: toml::Table = toml::from_str(EXAMPLE).unwrap();
    let defaults = parse_str(&one_account("")).unwrap().effective_toml();
    let defaults: toml::Table = toml::from_str(&defaults).unwrap();
    for section in [
        "archive", "ledger", "defaults", "http", "daemon", "log", "server", "notify",
    ] {
        assert_eq!(doc[section], defaults[section], "[{section}]");
    }
}

#[test]
fn an_empty_file_fails_for_want_of_an_account() {
    let err = parse_err("");
    assert!(err.starts_with("accounts: no account configured"), "{err}");
}

#[test]
fn a_typo_in_a_section_names_the_key_and_the_section() {
    let err = parse_err(&format!("[archive]\ndri = \"/x\"\n{}", one_account("")));
    assert!(err.contains("unknown field `dri`"), "{err}");
    assert!(err.contains("in [archive]"), "{err}");
}

#[test]
fn a_typo_in_an_account_names_the_key_and_the_account() {
    let err = parse_err(&one_account("schedul = \"0 0 * * * *\""));
    assert!(err.contains("unknown field `schedul`"), "{err}");
    assert!(err.contains("in accounts[0];"), "{err}");
}

#[test]
fn a_typo_in_a_section_name_is_an_error() {
    let err = parse_err(&format!("[archiv]\ndir = \"/x\"\n{}", one_account("")));
    assert!(err.contains("unknown field `archiv`"), "{err}");
    assert!(err.contains("at the top level"), "{err}");
}

#[test]
fn a_missing_required_key_names_it_with_its_index() {
    let text = format!(
        "{}{}",
        one_account(""),
        one_account("").replace("client_id = \"id-1\"\n", "")
    );
    let err = parse_err(&text.replacen("\"eu2\"", "\"a\"", 1));
    assert!(err.starts_with("accounts[1].client_id: missing"), "{err}");
    let err = parse_err(&one_account("concurrency = -1"));
    assert!(err.starts_with("accounts[0].concurrency: "), "{err}");
}

#[test]
fn a_wrong_type_names_the_key() {
    let err = parse_err(&format!("[http]\ntimeout = \"soon\"\n{}", one_account("")));
    assert!(err.contains("http.timeout"), "{err}");
}

#[test]
fn a_bad_cron_names_the_account_key() {
    let err = parse_err(&one_account("schedule = \"0 0 25 * * *\""));
    assert!(
        err.starts_with("accounts[0].schedule: invalid cron schedule"),
        "{err}"
    );
    assert!(err.contains("hour field: 25 is out of range 0-23"), "{err}");
}

#[test]
fn a_bad_cron_field_is_named_whatever_is_wrong_with_it() {
    for (schedule, says) in [
        ("0 0 0 1 13 *", "month field: 13 is out of range 1-12"),
        ("0 61 * * * *", "minute field: 61 is out of range 0-59"),
        ("0 0 1-24 * * *", "hour field: 24 is out of range 0-23"),
        ("0 0 0 0 * *", "day-of-month field: 0 is out of range 1-31"),
        ("0 0 x * * *", "hour field \"x\""),
    ] {
        let err = parse_err(&one_account(&format!("schedule = {schedule:?}")));
        assert!(err.contains(says), "{schedule}: {err}");
    }
    // A step is not a value: */90 seconds is the parser's to judge, not a range error.
    let fine = parse_str(&one_account("schedule = \"*/30 */5 * * * *\""));
    assert!(fine.is_ok());
}

#[test]
fn a_five_field_cron_gets_the_six_field_hint() {
    let err = parse_err(&format!(
        "[defaults]\nschedule = \"*/5 * * * *\"\n{}",
        one_account("")
    ));
    assert!(err.starts_with("defaults.schedule:"), "{err}");
    assert!(err.contains(CRON_HINT), "{err}");
}

#[test]
fn a_seven_field_cron_with_a_year_is_accepted() {
    let config = parse_str(&one_account("schedule = \"0 0 12 * * * 2030\"")).unwrap();
    assert_eq!(config.accounts[0].schedule, "0 0 12 * * * 2030");
}

#[test]
fn a_missing_secret_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let text = one_account("").replace(
        &format!("client_secret = \"{SECRET}\""),
        &format!("client_secret_file = {:?}", missing.to_string_lossy()),
    );
    let err = build(&text, None, &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::Secret { .. }), "{err:?}");
    let err = err.to_string();
    assert!(err.starts_with("accounts[0].client_secret_file:"), "{err}");
    assert!(err.contains(&*missing.to_string_lossy()), "{err}");
}

#[test]
fn a_secret_file_loses_one_trailing_newline_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(&dir, "abc \r\n");
    let text = one_account("").replace(
        &format!("client_secret = \"{SECRET}\""),
        &format!("client_secret_file = {:?}", path.to_string_lossy()),
    );
    let config = parse_str(&text).unwrap();
    assert_eq!(config.accounts[0].client_secret.expose_secret(), "abc ");
}

#[test]
fn an_empty_secret_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(&dir, "\n");
    let text = one_account("").replace(
        &format!("client_secret = \"{SECRET}\""),
        &format!("client_secret_file = {:?}", path.to_string_lossy()),
    );
    assert!(parse_err(&text).contains("is empty"));
}

#[test]
fn a_secret_from_the_environment_is_read_and_an_unset_one_is_an_error() {
    let text = one_account("").replace(
        &format!("client_secret = \"{SECRET}\""),
        "client_secret_env = \"EU2_SECRET\"",
    );
    let lookup = |name: &str| (name == "EU2_SECRET").then(|| OsString::from(SECRET));
    let config = build(&text, None, &lookup).unwrap();
    assert_eq!(config.accounts[0].client_secret.expose_secret(), SECRET);
    let err = build(&text, None, &no_env).unwrap_err().to_string();
    assert!(err.starts_with("accounts[0].client_secret_env:"), "{err}");
    assert!(err.contains("EU2_SECRET"), "{err}");
}

#[test]
fn two_secret_sources_are_an_error_naming_both() {
    let err = parse_err(&one_account("client_secret_env = \"X\""));
    assert!(
        err.contains("set only one of client_secret, client_secret_env"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "{err}");
}

#[test]
fn no_secret_source_is_an_error() {
    let text = one_account("").replace(&format!("client_secret = \"{SECRET}\""), "");
    assert!(parse_err(&text).starts_with("accounts[0].client_secret: no client secret"));
}

#[test]
fn duplicate_account_names_name_both_entries() {
    let err = parse_err(&format!("{}{}", one_account(""), one_account("")));
    assert!(err.starts_with("accounts[1].name:"), "{err}");
    assert!(err.contains("accounts[0]"), "{err}");
}

#[test]
fn bad_names_formats_reports_and_concurrency_are_rejected() {
    let cases = [
        (
            one_account("").replace("\"eu2\"", "\"EU 2\""),
            "accounts[0].name:",
        ),
        (
            one_account("formats = [\"csv\", \"CSV!\"]"),
            "accounts[0].formats[1]:",
        ),
        (
            one_account("reports = [\"../etc\"]"),
            "accounts[0].reports[0]:",
        ),
        (one_account("concurrency = 0"), "accounts[0].concurrency:"),
        (
            one_account("").replace("https://", "ftp://"),
            "accounts[0].base_url:",
        ),
        (
            one_account("").replace("id-1", " "),
            "accounts[0].client_id:",
        ),
        (
            format!("[http]\ntimeout = \"0s\"\n{}", one_account("")),
            "http.timeout:",
        ),
        (
            format!("[archive]\ndir = \"\"\n{}", one_account("")),
            "archive.dir:",
        ),
    ];
    for (text, key) in cases {
        let err = parse_err(&text);
        assert!(err.starts_with(key), "want {key}, got {err}");
    }
}

#[test]
fn a_trailing_api_2_and_slash_are_stripped_from_the_base_url() {
    for url in [
        "https://eu2-cloud.acronis.com/api/2",
        "https://eu2-cloud.acronis.com/api/2/",
        "https://eu2-cloud.acronis.com/",
    ] {
        assert_eq!(
            normalize_base_url(url).unwrap(),
            "https://eu2-cloud.acronis.com"
        );
    }
    assert_eq!(
        normalize_base_url("http://127.0.0.1:8080/").unwrap(),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        normalize_base_url("https://api/2").unwrap(),
        "https://api/2"
    );
    assert!(normalize_base_url("https:///api/2").is_err());
    assert!(normalize_base_url("https://user:pw@host").is_err());
}

#[test]
fn account_overrides_win_over_defaults() {
    let text = format!(
        "[defaults]\nconcurrency = 8\nformats = [\"csv\"]\n{}",
        one_account("formats = [\"json_v2_0\"]")
    );
    let account = &parse_str(&text).unwrap().accounts[0];
    assert_eq!(account.concurrency, 8);
    assert_eq!(account.formats, ["json_v2_0"]);
}

#[test]
fn env_overrides_win_over_the_file() {
    let env = HashMap::from([
        (
            "REPORT_ARCHIVER__ARCHIVE__DIR".to_owned(),
            "/srv/reports".to_owned(),
        ),
        (
            "REPORT_ARCHIVER__ARCHIVE__KEEP_COMPRESSED".to_owned(),
            "true".to_owned(),
        ),
        ("REPORT_ARCHIVER__HTTP__TIMEOUT".to_owned(), "2m".to_owned()),
        (
            "REPORT_ARCHIVER__DEFAULTS__CONCURRENCY".to_owned(),
            "2".to_owned(),
        ),
        ("REPORT_ARCHIVER__LOG__FORMAT".to_owned(), "json".to_owned()),
        ("REPORT_ARCHIVER__LOG__LEVEL".to_owned(), "debug".to_owned()),
        (
            "REPORT_ARCHIVER__DEFAULTS__FORMATS".to_owned(),
            "csv,json_v2_0".to_owned(),
        ),
        (
            "REPORT_ARCHIVER_CONFIG".to_owned(),
            "/ignored.toml".to_owned(),
        ),
    ]);
    let text = format!("[archive]\ndir = \"/x\"\n{}", one_account(""));
    let config = build(&text, Some(&env), &no_env).unwrap();
    let s = &config.settings;
    assert_eq!(s.archive.dir, PathBuf::from("/srv/reports"));
    assert!(s.archive.keep_compressed);
    assert_eq!(s.http.timeout, Duration::from_secs(120));
    assert_eq!(config.accounts[0].concurrency, 2);
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(s.log.level, "debug");
    assert_eq!(config.accounts[0].formats, ["csv", "json_v2_0"]);
}

#[test]
fn a_typo_in_an_env_override_is_an_error() {
    let env = HashMap::from([("REPORT_ARCHIVER__ARCHIVE__DRI".to_owned(), "/x".to_owned())]);
    let err = build(&one_account(""), Some(&env), &no_env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `dri`"), "{err}");
    assert!(
        err.contains("environment variable REPORT_ARCHIVER__ARCHIVE__DRI"),
        "{err}"
    );
}

#[test]
fn a_missing_config_file_is_not_found_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let err = load(Some(&path)).unwrap_err();
    assert!(matches!(err, ConfigError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(&*path.to_string_lossy()));
}

#[test]
fn effective_toml_masks_the_secret_and_parses_back() {
    let config = parse_str(&one_account("")).unwrap();
    let text = config.effective_toml();
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains(MASK), "{text}");
    let back = parse_str(&text.replace(MASK, "other")).unwrap();
    assert_eq!(back.accounts[0].base_url, config.accounts[0].base_url);
    assert_eq!(back.settings.http.timeout, config.settings.http.timeout);
}

fn with_source(source: &str) -> String {
    one_account("").replace(&format!("client_secret = \"{SECRET}\""), source)
}

#[test]
fn a_credential_is_read_from_the_systemd_credentials_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("eu2"), format!("{SECRET}\n")).unwrap();
    let text = with_source("client_secret_credential = \"eu2\"");
    let creds = dir.path().as_os_str().to_owned();
    let lookup = move |name: &str| (name == CREDENTIALS_DIRECTORY_ENV).then(|| creds.clone());
    let config = build(&text, None, &lookup).unwrap();
    assert_eq!(config.accounts[0].client_secret.expose_secret(), SECRET);
}

#[test]
fn without_systemd_a_credential_is_looked_for_in_docker_secrets() {
    let text = with_source("client_secret_credential = \"no-such-credential\"");
    let err = build(&text, None, &no_env).unwrap_err().to_string();
    assert!(
        err.starts_with("accounts[0].client_secret_credential:"),
        "{err}"
    );
    assert!(err.contains("/run/secrets/no-such-credential"), "{err}");
}

#[test]
fn a_credential_name_with_a_slash_is_refused() {
    let err = parse_err(&with_source("client_secret_credential = \"../eu2\""));
    assert!(
        err.starts_with("accounts[0].client_secret_credential:"),
        "{err}"
    );
}

#[test]
fn a_credential_and_a_file_together_are_two_sources() {
    let err = parse_err(&with_source(
        "client_secret_file = \"/x\"\nclient_secret_credential = \"eu2\"",
    ));
    assert!(
        err.contains("set only one of client_secret_file, client_secret_credential"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn a_secret_file_others_can_read_is_a_warning_without_the_secret() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(&dir, SECRET);
    let text = with_source(&format!(
        "client_secret_file = {:?}",
        path.to_string_lossy()
    ));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(parse_str(&text).unwrap().warnings.is_empty());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let warnings = parse_str(&text).unwrap().warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("accounts[0].client_secret_file:"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("0640"), "{warnings:?}");
    assert!(!warnings[0].contains(SECRET));
}

#[test]
fn notify_urls_are_masked_and_a_bad_one_is_not_repeated() {
    let hook = "https://hooks.example.com/T0/B0/token-that-must-not-leak";
    let text = format!(
        "[notify]\nwebhook_url = {hook:?}\nping_url = \"https://hc-ping.com/u?x=1\"\n{}",
        one_account("")
    );
    let config = parse_str(&text).unwrap();
    let shown = config.effective_toml();
    assert!(!shown.contains("token-that-must-not-leak"), "{shown}");
    assert!(!format!("{config:?}").contains("token-that-must-not-leak"));
    let err = parse_err(&format!(
        "[notify]\nwebhook_url = \"ftp://x/secret-token\"\n{}",
        one_account("")
    ));
    assert!(err.starts_with("notify.webhook_url:"), "{err}");
    assert!(!err.contains("secret-token"), "{err}");
}

#[test]
fn server_listen_is_optional_and_parsed_as_an_address() {
    let config = parse_str(&one_account("")).unwrap();
    assert_eq!(config.settings.server.listen, None);
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nstaleness = \"5m\"\n{}",
        one_account("")
    );
    let config = parse_str(&text).unwrap();
    assert_eq!(
        config.settings.server.listen,
        Some(SocketAddr::from(([127, 0, 0, 1], 0)))
    );
    assert_eq!(config.settings.server.staleness, Duration::from_secs(300));
    let err = parse_err(&format!("[server]\nlisten = \"nope\"\n{}", one_account("")));
    assert!(err.contains("server.listen"), "{err}");
}

#[test]
fn debug_output_never_shows_the_secret() {
    let config = parse_str(&one_account("")).unwrap();
    let account = format!("{:?}", config.accounts[0]);
    assert!(account.contains("[redacted]"), "{account}");
    for shown in [account, format!("{config:?}"), format!("{config:#?}")] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
}

/// One account at `base_url`, with `extra` lines in its block.
fn account_at(base_url: &str, extra: &str) -> String {
    format!(
        "[[accounts]]\nname = \"eu2\"\nbase_url = {base_url:?}\nclient_id = \"id-1\"\nclient_secret = \"{SECRET}\"\n{extra}\n"
    )
}

#[test]
fn loopback_hosts_are_told_apart_from_the_rest() {
    for host in [
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "localhost",
        "LocalHost.",
        "::ffff:127.0.0.1",
    ] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in [
        "10.0.0.1",
        "example.com",
        "localhost.example.com",
        "::2",
        "0.0.0.0",
        "",
    ] {
        assert!(!is_loopback_host(host), "{host}");
    }
    assert_eq!(plain_http_host("https://example.com"), None);
    assert_eq!(plain_http_host("http://127.0.0.1:8080/x"), None);
    assert_eq!(plain_http_host("http://[::1]:8080"), None);
    assert_eq!(plain_http_host("HTTP://localhost"), None);
    assert_eq!(
        plain_http_host("http://Example.com:80/a?b"),
        Some("example.com".into())
    );
    assert_eq!(plain_http_host("http://[fe80::1]/"), Some("fe80::1".into()));
    assert_eq!(
        plain_http_host("http://u:p@10.1.2.3/"),
        Some("10.1.2.3".into())
    );
}

#[test]
fn a_plain_http_base_url_off_loopback_needs_allow_http_and_then_warns() {
    let err = parse_err(&account_at("http://eu2-cloud.example.com", ""));
    assert!(err.starts_with("accounts[0].base_url:"), "{err}");
    assert!(err.contains("allow_http = true"), "{err}");
    assert!(err.contains("eu2-cloud.example.com"), "{err}");

    let config = parse_str(&account_at(
        "http://eu2-cloud.example.com",
        "allow_http = true",
    ))
    .unwrap();
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(config.warnings[0].starts_with("accounts[0].base_url: plain http://"));
    assert!(config.effective_toml().contains("allow_http = true"));

    for url in [
        "http://127.0.0.1:9",
        "http://[::1]:9",
        "http://localhost:9",
        "https://x.example",
    ] {
        let config = parse_str(&account_at(url, "")).unwrap();
        assert!(config.warnings.is_empty(), "{url}: {:?}", config.warnings);
    }
}

#[test]
fn plain_http_notify_urls_off_loopback_need_notify_allow_http_and_are_not_repeated() {
    let hook = "http://hooks.example.com/T0/B0/token-that-must-not-leak";
    for key in ["webhook_url", "ping_url"] {
        let section = format!("[notify]\n{key} = {hook:?}\n");
        let err = parse_err(&format!("{section}{}", one_account("")));
        assert!(err.starts_with(&format!("notify.{key}:")), "{err}");
        assert!(err.contains("notify.allow_http = true"), "{err}");
        assert!(!err.contains("token-that-must-not-leak"), "{err}");

        let allowed = format!("{section}allow_http = true\n{}", one_account(""));
        let config = parse_str(&allowed).unwrap();
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(config.warnings[0].starts_with(&format!("notify.{key}: plain http://")));
        assert!(!config.warnings[0].contains("token-that-must-not-leak"));
    }
    let local = format!(
        "[notify]\nwebhook_url = \"http://127.0.0.1:9/hook\"\n{}",
        one_account("")
    );
    assert!(parse_str(&local).unwrap().warnings.is_empty());
}

#[test]
fn config_secrets_are_registered_for_scrubbing() {
    let secret = "config-test-registered-secret-77";
    let text = format!(
        "[[accounts]]\nname = \"eu2\"\nbase_url = \"https://x.example\"\nclient_id = \"cfg-id\"\nclient_secret = \"{secret}\"\n"
    );
    parse_str(&text).unwrap();
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("cfg-id:{secret}"),
    );
    let scrubbed = crate::redact::scrub(&format!("a {secret} b Basic {basic}")).into_owned();
    assert_eq!(scrubbed, "a [redacted] b Basic [redacted]");
}

#[test]
fn values_with_rules_of_their_own_are_parsed_as_the_file_is_read_and_name_their_key() {
    let config = parse_str(&format!(
        "[archive]\nkeep = \"18months\"\n{}",
        one_account("").replace("acronis.com\"", "acronis.com/api/2/\"")
    ))
    .unwrap();
    assert_eq!(
        config.settings.archive.keep,
        Some(Keep::parse("1y 6mo").unwrap())
    );
    assert_eq!(
        config.settings.accounts[0].base_url.as_str(),
        "https://eu2-cloud.acronis.com"
    );
    assert!(config.effective_toml().contains("keep = \"1y 6mo\""));
    let err = parse_err(&format!("[archive]\nkeep = \"6m\"\n{}", one_account("")));
    assert!(err.starts_with("archive.keep: "), "{err}");
    assert!(err.contains("write `mo` for months"), "{err}");
    let err = parse_err(&one_account("").replace("https://", "ftp://"));
    assert!(err.starts_with("accounts[0].base_url: "), "{err}");
    let err = parse_err(&format!(
        "[archive]\nmax_file_size = \"lots\"\n{}",
        one_account("")
    ));
    assert!(
        err.starts_with("archive.max_file_size: invalid size"),
        "{err}"
    );
}

#[test]
fn failure_backoff_moved_to_defaults_and_the_old_key_still_works_with_a_warning() {
    let config = parse_str(&one_account("")).unwrap();
    assert_eq!(config.accounts[0].failure_backoff, Duration::from_secs(600));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    let text = format!("[defaults]\nfailure_backoff = \"1h\"\n{}", one_account(""));
    let config = parse_str(&text).unwrap();
    assert_eq!(
        config.accounts[0].failure_backoff,
        Duration::from_secs(3600)
    );
    let text = format!(
        "[defaults]\nfailure_backoff = \"1h\"\n{}",
        one_account("failure_backoff = \"5m\"")
    );
    assert_eq!(
        parse_str(&text).unwrap().accounts[0].failure_backoff,
        Duration::from_secs(300)
    );

    let old = format!("[http]\nfailure_backoff = \"1s\"\n{}", one_account(""));
    let config = parse_str(&old).unwrap();
    assert_eq!(config.accounts[0].failure_backoff, Duration::from_secs(1));
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(
        config.warnings[0].contains("moved to [defaults] failure_backoff"),
        "{:?}",
        config.warnings
    );
    assert!(config.effective_toml().contains("[defaults]\nschedule"));

    let both = format!(
        "[defaults]\nfailure_backoff = \"1h\"\n[http]\nfailure_backoff = \"1s\"\n{}",
        one_account("")
    );
    let err = parse_err(&both);
    assert!(err.starts_with("http.failure_backoff: has moved"), "{err}");
}

#[test]
fn the_origin_of_each_path_is_known_env_over_file_over_default() {
    let text = format!("[archive]\ndir = \"/a\"\n{}", one_account(""));
    let env: HashMap<String, String> = [(
        "report_archiver__LEDGER__PATH".to_owned(),
        "/l.db".to_owned(),
    )]
    .into();
    let found = PathOrigins::find(&text, Some(&env));
    assert_eq!(found.archive_dir, Origin::File);
    assert_eq!(
        found.ledger_path.to_string(),
        "environment variable report_archiver__LEDGER__PATH"
    );
    let found = PathOrigins::find(&one_account(""), None);
    assert_eq!(found.archive_dir, Origin::Default);
    assert_eq!(found.ledger_path.to_string(), "built-in default");
}
