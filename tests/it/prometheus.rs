//! A real Prometheus (Debian's `prometheus` package, 2.42, which carries `promtool`) on
//! 127.0.0.1 scrapes `report-archiver run` against the fake cloud, with the shipped alert
//! rules loaded. Every metric the rules name and every query of the Grafana dashboard (and
//! of its variables) must return series through Prometheus's HTTP API: both are read from
//! the files in `deploy/`, so a rule or panel that names a metric the daemon does not
//! export fails here. `promtool check rules`, `promtool test rules` and `promtool check
//! metrics` (on a live scrape) run too.
//!
//! The binaries are looked up as `PROMETHEUS` and `PROMTOOL`, else on `PATH`. The test does
//! not install them: that is a root `apt-get install` that may start a system service, which
//! `.ci/run` does with the care it needs. Missing, the test fails under `CI=true` (or
//! `REQUIRE_PROMETHEUS_TESTS=1`), and otherwise prints `skipped: …` and passes.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use report_archiver::fake_cloud::{FakeCloud, FakeReport, FakeStatus, FakeStored};

use crate::support::{Options, TestApp, spawn_app_with};

const WAIT: Duration = Duration::from_secs(90);

/// A child process killed when dropped (the test may fail half-way).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// (prometheus, promtool), or `None` when the test is skipped.
fn tools() -> Option<(PathBuf, PathBuf)> {
    // A variable naming no file counts as missing, so that the message below says why.
    let find = |var: &str, name: &str| match std::env::var_os(var) {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        None => on_path(name),
    };
    if let (Some(prometheus), Some(promtool)) = (
        find("PROMETHEUS", "prometheus"),
        find("PROMTOOL", "promtool"),
    ) {
        return Some((prometheus, promtool));
    }
    let required = match std::env::var("REQUIRE_PROMETHEUS_TESTS") {
        Ok(v) => v == "1",
        Err(_) => std::env::var("CI").is_ok_and(|v| v == "true"),
    };
    let why = "prometheus or promtool is not installed: `apt-get install prometheus` (Debian's \
               package carries both; .ci/run installs it), or set PROMETHEUS and PROMTOOL";
    assert!(!required, "{why} (required under CI=true)");
    eprintln!("skipped: {why}");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs promtool with `args` in `deploy/prometheus`; fails the test with its output.
fn promtool(promtool: &Path, args: &[&str], stdin: Option<&str>) {
    let mut child = Command::new(promtool)
        .args(args)
        .current_dir(deploy("prometheus"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    if let Some(text) = stdin {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}",
        crate::support::output_text(&out)
    );
}

/// Every `expr:` of a rule file (plain or a `>-` block), as one line each.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((indent, rest)) = line.split_once("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest != ">-" && rest != ">" && rest != "|" {
            exprs.push(rest.trim_matches('\'').to_owned());
            continue;
        }
        let mut block = Vec::new();
        while let Some(next) =
            lines.next_if(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent.len())
        {
            block.push(next.trim());
        }
        exprs.push(block.join(" ").trim().to_owned());
    }
    exprs
}

const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
];

/// Aggregations, which may be followed by `by (…)` before their `(`.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// The metric names a PromQL expression selects: identifiers outside `{…}`, `[…]` and
/// strings that are neither a function (followed by `(`), a keyword, an aggregation, nor a
/// label in a `by (…)`/`on (…)` list.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let (mut i, mut in_labels, mut last) = (0, false, String::new());
    let skip_to = |from: usize, end: char| {
        (from + 1..chars.len())
            .find(|&j| chars[j] == end)
            .unwrap_or(chars.len())
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let word = ident.as_str();
            if !in_labels
                && next != Some(&'(')
                && !KEYWORDS.contains(&word)
                && !AGGREGATIONS.contains(&word)
            {
                names.insert(ident.clone());
            }
            last = ident;
            continue;
        }
        match c {
            '{' => i = skip_to(i, '}'),
            '[' => i = skip_to(i, ']'),
            '"' | '\'' => i = skip_to(i, c),
            '(' => in_labels = KEYWORDS.contains(&last.as_str()),
            ')' => in_labels = false,
            // A number (`0.10`, `1e9`) is no name.
            c if c.is_ascii_digit() => {
                while i + 1 < chars.len()
                    && (chars[i + 1].is_ascii_alphanumeric() || chars[i + 1] == '.')
                {
                    i += 1;
                }
            }
            _ => {}
        }
        if !c.is_whitespace() {
            last.clear();
        }
        i += 1;
    }
    names
}

/// Every query of the dashboard: the panels' targets and the variables' `label_values`
/// selectors, with Grafana's variables replaced by what they stand for when all is picked.
fn dashboard_queries(json: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(expr)) = map.get("expr") {
                    out.push(expr.clone());
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut queries = Vec::new();
    walk(&json["panels"], &mut queries);
    for var in json["templating"]["list"]
        .as_array()
        .expect("templating.list")
    {
        let query = var["query"]["query"].as_str().unwrap_or_default();
        if let Some(inner) = query.strip_prefix("label_values(") {
            let selector = inner.rsplit_once(',').map_or(inner, |(s, _)| s);
            queries.push(selector.to_owned());
        }
    }
    queries
        .into_iter()
        .map(|q| {
            ["$__rate_interval", "$__interval", "$__range"]
                .iter()
                .fold(q, |q, var| q.replace(var, "1m"))
                .replace("$instance", ".*")
                .replace("$account", ".*")
                .replace("$report", ".*")
        })
        .collect()
}

/// Prometheus's answer to an instant query: its result series, or why it failed.
async fn query(base: &str, expr: &str) -> Result<Vec<serde_json::Value>, String> {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/query"))
        .form(&[("query", expr)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(body.to_string());
    }
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The queries among `exprs` that return no series (or fail), with why.
async fn empty_queries(base: &str, exprs: &[String]) -> Vec<String> {
    let mut empty = Vec::new();
    for expr in exprs {
        match query(base, expr).await {
            Ok(series) if !series.is_empty() => {}
            Ok(_) => empty.push(format!("{expr}: no series")),
            Err(e) => empty.push(format!("{expr}: {e}")),
        }
    }
    empty
}

/// The loaded alert rules whose last evaluation did not succeed, or `None` before all were
/// evaluated once.
async fn unhealthy_rules(base: &str, expected: usize) -> Option<Vec<String>> {
    let body: serde_json::Value = reqwest::get(format!("{base}/api/v1/rules?type=alert"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let rules: Vec<&serde_json::Value> = body["data"]["groups"]
        .as_array()?
        .iter()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    if rules.len() != expected || rules.iter().any(|r| r["health"] == "unknown") {
        return None;
    }
    Some(
        rules
            .iter()
            .filter(|r| r["health"] != "ok")
            .map(|r| format!("{}: {}", r["name"], r["lastError"]))
            .collect(),
    )
}

fn start_prometheus(bin: &Path, dir: &Path, daemon_port: u16) -> (Running, String) {
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules:?}\n\
         scrape_configs:\n  - job_name: report-archiver\n    static_configs:\n      \
         - targets: [\"127.0.0.1:{daemon_port}\"]\n",
        rules = deploy("prometheus/alerts.yaml").display().to_string(),
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("prometheus.yml");
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
    let child = Command::new(bin)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("prometheus starts");
    (Running(child), format!("http://127.0.0.1:{port}"))
}

/// Polls `check` every 500 ms until it returns `Ok`; after [`WAIT`], fails with `what`,
/// the last `Err` and Prometheus's log.
async fn wait_for<T, F, Fut>(what: &str, log: &Path, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let why = match check().await {
            Ok(value) => return value,
            Err(why) => why,
        };
        if tokio::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("timed out waiting for {what}: {why}\nprometheus log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The metric names of the alert rules and of the dashboard's queries, then the queries
/// themselves; and how many alerts the rule file has.
fn expressions_to_check() -> (Vec<String>, usize) {
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yaml")).expect("alerts.yaml");
    let alerts = rules.matches("- alert:").count();
    let rule_metrics: BTreeSet<String> = rule_exprs(&rules)
        .iter()
        .flat_map(|e| metric_names(e))
        .collect();
    assert!(rule_metrics.len() >= 10, "{rule_metrics:?}");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy("grafana/report-archiver.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let panel_queries = dashboard_queries(&dashboard);
    assert!(panel_queries.len() >= 20, "{panel_queries:?}");
    let dashboard_metrics: BTreeSet<String> =
        panel_queries.iter().flat_map(|e| metric_names(e)).collect();
    let mut exprs: Vec<String> = rule_metrics.union(&dashboard_metrics).cloned().collect();
    exprs.extend(panel_queries);
    (exprs, alerts)
}

/// `report-archiver run` (a pass every 2 s, `/metrics` on a free port) against a fake cloud
/// with an item of each kind: archived, in progress (pending), failed in the cloud.
async fn start_daemon() -> (TestApp, Running, u16) {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    fake.add_stored(&report, FakeStored::new("csv", b"a\n1\n".to_vec()));
    let waiting = FakeStored::new("csv", b"a\n2\n".to_vec()).status(FakeStatus::InProgress);
    fake.add_stored(&report, waiting);
    let failed = FakeStored::new("csv", b"a\n3\n".to_vec()).status(FakeStatus::Failed);
    fake.add_stored(&report, failed);
    let port = free_port();
    let options = Options {
        schedule: Some("*/2 * * * * *".into()),
        extra_sections: format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"),
        ..Options::default()
    };
    let app = spawn_app_with(fake, options).await;
    let log = std::fs::File::create(app.dir.path().join("run.log")).expect("log");
    let daemon = Running(
        app.bin(&["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("run starts"),
    );
    (app, daemon, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_finds_every_metric_the_alert_rules_and_the_dashboard_use() {
    let Some((prometheus, promtool_bin)) = tools() else {
        return;
    };
    promtool(&promtool_bin, &["check", "rules", "alerts.yaml"], None);
    promtool(&promtool_bin, &["test", "rules", "alerts.test.yaml"], None);
    let (exprs, alerts) = expressions_to_check();

    let (app, _daemon, daemon_port) = start_daemon().await;
    let (_prometheus, base) = start_prometheus(&prometheus, app.dir.path(), daemon_port);
    let log = app.dir.path().join("prometheus.log");

    let scrapes = "sum_over_time(up{job=\"report-archiver\"}[5m]) >= 2";
    wait_for("two successful scrapes", &log, || async {
        match query(&base, scrapes).await? {
            series if series.is_empty() => Err("fewer so far".to_owned()),
            _ => Ok(()),
        }
    })
    .await;

    // The daemon's first pass, then a second scrape of its results: polled, not slept.
    wait_for("every metric and query to return series", &log, || async {
        let empty = empty_queries(&base, &exprs).await;
        match empty.is_empty() {
            true => Ok(()),
            false => Err(format!("these return nothing: {empty:#?}")),
        }
    })
    .await;
    let unhealthy = wait_for("every rule evaluated", &log, || async {
        unhealthy_rules(&base, alerts)
            .await
            .ok_or_else(|| format!("not all {alerts} rules loaded and evaluated"))
    })
    .await;
    assert!(
        unhealthy.is_empty(),
        "rules failing to evaluate: {unhealthy:?}"
    );
    // The check is not vacuous: a metric the daemon does not export is found empty.
    let missing = vec!["report_archiver_not_exported".to_owned()];
    assert_eq!(empty_queries(&base, &missing).await.len(), 1);

    let scrape = reqwest::get(format!("http://127.0.0.1:{daemon_port}/metrics"))
        .await
        .expect("a scrape")
        .text()
        .await
        .expect("its body");
    promtool(&promtool_bin, &["check", "metrics"], Some(&scrape));
}

#[test]
fn metric_names_are_the_selected_series_not_functions_keywords_or_labels() {
    let expr = "time() - report_archiver_last_progress_timestamp_seconds{a=\"x_y\"} \
                > on(instance, job) group_left report_archiver_staleness_seconds \
                and on(job) count by (job) (up[5m] offset 1d) > 0.10 * 32 * 86400";
    let names: Vec<String> = metric_names(expr).into_iter().collect();
    assert_eq!(
        names,
        [
            "report_archiver_last_progress_timestamp_seconds",
            "report_archiver_staleness_seconds",
            "up"
        ]
    );
    let yaml = "      - alert: A\n        expr: up == 0\n        for: 5m\n      - alert: B\n        \
                expr: >-\n          a\n          > b\n        for: 1m\n";
    assert_eq!(rule_exprs(yaml), ["up == 0", "a > b"]);
}
