//! The classic Prometheus text format (0.0.4) from prometheus-client's OpenMetrics text.

/// The content type of [`super::Metrics::render_classic`]'s output.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Rewrites the OpenMetrics text of prometheus-client into the classic text format.
pub(super) fn from_openmetrics(open: &str) -> String {
    let counters: std::collections::HashSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rest = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        match rest {
            Some((keyword, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{keyword}{name}{suffix} {tail}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_with_total_and_openmetrics_only_lines_dropped() {
        let open = "# HELP a_files Files.\n# TYPE a_files counter\na_files_total{x=\"1\"} 3\n\
                    # HELP a_seconds Time.\n# TYPE a_seconds gauge\n# UNIT a_seconds seconds\n\
                    a_seconds 2\n# EOF\n";
        let classic = "# HELP a_files_total Files.\n# TYPE a_files_total counter\n\
                       a_files_total{x=\"1\"} 3\n# HELP a_seconds Time.\n# TYPE a_seconds gauge\n\
                       a_seconds 2\n";
        assert_eq!(from_openmetrics(open), classic);
    }
}
