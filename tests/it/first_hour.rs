//! A new operator's first hour (issue 13): nothing is used silently, a path that cannot be
//! used stops the daemon naming its key, `check-config` tests what it can before the first
//! pass, and the commands `demo` suggests work as printed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use report_archiver::fake_cloud::FakeCloud;

use crate::support::{Options, TestApp, bin_without_config, output_text, run, spawn_app};

fn seeded(reports: usize) -> FakeCloud {
    FakeCloud::seeded(7, reports, &["csv", "json_v2_0"])
}

/// The app's config with its ledger moved to `ledger`.
fn with_ledger(app: &TestApp, ledger: &Path) -> String {
    app.config_toml(&Options::default()).replace(
        &format!("path = {:?}", app.ledger_path.display().to_string()),
        &format!("path = {:?}", ledger.display().to_string()),
    )
}

/// The binary with nothing from the test's environment that would change what it reads.
fn clean(mut cmd: Command) -> Command {
    for (name, _) in std::env::vars_os() {
        if name
            .to_str()
            .is_some_and(|n| n.starts_with("REPORT_ARCHIVER"))
        {
            cmd.env_remove(name);
        }
    }
    cmd
}

#[test]
fn the_fake_cloud_config_alone_archives_into_the_folder_once_runs_in_and_once_names_its_paths() {
    let cloud_dir = tempfile::tempdir().expect("dir");
    let work = tempfile::tempdir().expect("dir");
    let config = work.path().join("config.toml");
    let mut server = clean(bin_without_config(&[
        "fake-cloud",
        "--listen",
        "127.0.0.1:0",
        "--reports",
        "2",
        "--write-config",
    ]))
    .arg(&config)
    .current_dir(cloud_dir.path())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("fake-cloud starts");
    let stdout = server.stdout.take().expect("stdout");
    // Kept open until the server is stopped: a closed pipe would fail its next print.
    let mut reader = BufReader::new(stdout);
    let mut printed = String::new();
    // The snippet ends with the account's secret file; bounded by the snippet's length.
    for _ in 0..40 {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("utf-8") == 0 {
            break;
        }
        printed.push_str(&line);
        if line.starts_with("client_secret_file") {
            break;
        }
    }
    let written = std::fs::read_to_string(&config).expect("--write-config wrote the config");
    assert!(
        printed.contains(&written),
        "printed:\n{printed}\nwritten:\n{written}"
    );

    let mut once = clean(bin_without_config(&["--config", "config.toml", "once"]));
    let (code, stdout, text) = run(once.current_dir(work.path()));
    let _ = server.kill();
    let _ = server.wait();
    drop(reader);
    assert_eq!(code, Some(0), "{text}");
    assert!(stdout.contains("(total)"), "{text}");
    let real = std::fs::canonicalize(work.path()).expect("real path");
    let archive = real.join("fake-archive");
    let ledger = real.join("fake-ledger.db");
    assert!(ledger.is_file(), "the ledger is in the folder once ran in");
    let files = std::fs::read_dir(&archive)
        .expect("the archive is there")
        .count();
    assert!(files > 1, "archived into {}", archive.display());
    // Said before anything was opened: each path, absolute, and where it came from.
    for said in [
        format!("using config {}", real.join("config.toml").display()),
        format!("archive {} (config file)", archive.display()),
        format!("ledger {} (config file)", ledger.display()),
        format!("created the archive folder {}", archive.display()),
        format!("no ledger at {} yet", ledger.display()),
    ] {
        assert!(text.contains(&said), "missing {said:?} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_in_a_missing_folder_is_an_error_naming_it_until_create_dirs_says_to_make_it() {
    let app = spawn_app(seeded(1)).await;
    let missing = app.dir.path().join("typo");
    let ledger = missing.join("ledger.db");
    app.write_config(&with_ledger(&app, &ledger));

    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("ledger.path"), "{text}");
    assert!(text.contains(&missing.display().to_string()), "{text}");
    assert!(text.contains("--create-dirs"), "{text}");
    assert!(!missing.exists(), "nothing created");
    assert_eq!(app.fake.download_requests(), 0, "nothing fetched");

    let (code, _, text) = run(&mut app.bin(&["once", "--create-dirs"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(ledger.is_file());
    let said = format!("created the ledger's folder {}", missing.display());
    assert!(text.contains(&said), "{text}");

    // The config key does the same, for a service whose unit passes no flag.
    let other = app.dir.path().join("elsewhere").join("ledger.db");
    let toml = with_ledger(&app, &other).replace("[daemon]\n", "[daemon]\ncreate_dirs = true\n");
    app.write_config(&toml);
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(other.is_file(), "{text}");

    // A path set by the environment says so.
    let from_env = app.dir.path().join("state").join("env.db");
    let (code, _, text) = run(app
        .bin(&["once"])
        .env("REPORT_ARCHIVER__LEDGER__PATH", &from_env));
    assert_eq!(code, Some(0), "{text}");
    let said = format!(
        "ledger {} (environment variable REPORT_ARCHIVER__LEDGER__PATH)",
        from_env.display()
    );
    assert!(text.contains(&said), "{said} not in:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_exits_2_for_an_archive_under_a_file_naming_the_key() {
    let app = spawn_app(seeded(1)).await;
    let (code, stdout, text) = run(&mut app.bin(&["check-config"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(stdout.contains("# archive.dir: "), "{stdout}");
    assert!(stdout.contains("# ledger.path: "), "{stdout}");
    assert!(!app.archive_dir.exists(), "check-config creates nothing");

    let file = app.dir.path().join("a-file");
    std::fs::write(&file, "x").expect("file");
    let toml = app.config_toml(&Options {
        archive_dir: Some(file.join("x")),
        ..Options::default()
    });
    app.write_config(&toml);
    let (code, _, text) = run(&mut app.bin(&["check-config"]));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("archive.dir"), "{text}");
    assert!(text.contains("which is a file, not a folder"), "{text}");
    // `once` stops the same way, before it creates the ledger.
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("archive.dir"), "{text}");
    assert!(!app.ledger_path.exists(), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_online_counts_the_reports_and_a_wrong_secret_exits_1_with_the_cause() {
    let app = spawn_app(seeded(3)).await;
    let (code, stdout, text) = run(&mut app.bin(&["check-config", "--online"]));
    assert_eq!(code, Some(0), "{text}");
    // The seeded mix has e-mailed (`send`) reports too, which store nothing.
    let ids = app.fake.report_ids();
    let storing = ids
        .iter()
        .filter(|id| !app.fake.stored(id).is_empty())
        .count();
    assert!(storing > 0 && storing < ids.len(), "the mix has both kinds");
    let said = format!(
        "credentials accepted; sees {} report(s), {storing} of them store their results",
        ids.len()
    );
    assert!(
        stdout.contains(&said),
        "{said} not in:
{stdout}"
    );

    std::fs::write(app.dir.path().join("secret"), "not-the-secret").expect("secret");
    let (code, _, text) = run(&mut app.bin(&["check-config", "--online"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("refused the credentials"), "{text}");
    assert!(text.contains("HTTP 401"), "{text}");
    assert_eq!(app.fake.download_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_things_of_the_first_hour() {
    let app = spawn_app(seeded(1)).await;
    // prune --dry-run without keep: an answer, not an error; a real prune still refuses.
    let (code, stdout, text) = run(&mut app.bin(&["prune", "--dry-run"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        stdout.starts_with("nothing to prune: archive.keep is not set"),
        "{text}"
    );
    let (code, _, text) = run(&mut app.bin(&["prune"]));
    assert_eq!(code, Some(2), "{text}");

    // health with a URL that is none is a usage error.
    let (code, _, text) = run(&mut bin_without_config(&["health", "--url", "not-a-url"]));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("http://127.0.0.1:9754/healthz"), "{text}");

    // A cron value out of range names its field.
    let toml = app.config_toml(&Options {
        schedule: Some("0 0 25 * * *".into()),
        ..Options::default()
    });
    app.write_config(&toml);
    let (code, _, text) = run(&mut app.bin(&["check-config"]));
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("hour field: 25 is out of range 0-23"),
        "{text}"
    );
    app.write_config(&app.config_toml(&Options::default()));

    // `ledger stats --ledger X` needs no archive and no config; verify still does.
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    let ledger = app.ledger_path.display().to_string();
    let (code, stdout, text) = run(&mut bin_without_config(&[
        "ledger", "stats", "--ledger", &ledger,
    ]));
    assert_eq!(code, Some(0), "{text}");
    assert!(stdout.starts_with("files "), "{stdout}");
    let (code, _, text) = run(&mut bin_without_config(&["verify", "--ledger", &ledger]));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--archive"), "{text}");

    // The secrets `demo` and `fake-cloud` write are never committed.
    let ignore = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".gitignore"))
        .expect(".gitignore");
    for name in ["/demo.secret", "/fake-cloud.secret"] {
        assert!(
            ignore.lines().any(|l| l == name),
            "{name} not in .gitignore"
        );
    }
}

#[test]
fn demo_ends_with_three_commands_that_work_as_printed() {
    let dir = tempfile::tempdir().expect("dir");
    let mut demo = clean(bin_without_config(&["demo"]));
    let (code, stdout, text) = run(demo.current_dir(dir.path()));
    assert_eq!(code, Some(0), "{text}");
    let commands: Vec<&str> = stdout
        .split("\ntry next:\n")
        .nth(1)
        .expect("a try-next list")
        .lines()
        .map(str::trim)
        .collect();
    assert_eq!(commands.len(), 3, "{stdout}");
    let deadline = Instant::now() + Duration::from_secs(120);
    for command in commands {
        assert!(command.contains("--config ./demo.toml"), "{command}");
        let mut shell = clean(Command::new("sh"));
        shell.args(["-c", command]).current_dir(dir.path());
        let out = shell.output().expect("sh runs");
        assert!(out.status.success(), "{command}: {}", output_text(&out));
        assert!(!out.stdout.is_empty(), "{command} printed nothing");
        assert!(Instant::now() < deadline);
    }
}
