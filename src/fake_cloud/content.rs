//! Deterministic fake data: a tiny PRNG and plausible report bodies per format.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::FakeCloud;

/// splitmix64: tiny, deterministic, good enough for fake data and opaque tokens.
#[derive(Default)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(crate) fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from.get(self.below(from.len() as u64) as usize)
            .copied()
            .unwrap_or_default()
    }
    /// A version-4-shaped UUID string.
    pub(crate) fn uuid(&mut self) -> String {
        let a = (self.next() & 0xffff_ffff_ffff_0fff) | 0x4000;
        let b = (self.next() & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}

const NAMES: &[&str] = &[
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Soylent", "Tyrell", "Wonka",
];
const SUFFIXES: &[&str] = &["GmbH", "Ltd", "Inc", "BV", "SA", "AB", "Oy"];
const METRICS: &str = "storage_total workstations servers virtual_machines mobiles \
    m365_mailboxes dr_compute_points local_storage google_workspace_seats";

/// A small, plausible report body in `format` (csv, json or html by prefix; text otherwise).
pub(crate) fn sample_content(rng: &mut SplitMix64, format: &str, at: DateTime<Utc>) -> Vec<u8> {
    let tenants: Vec<String> = (0..6 + rng.below(6))
        .map(|i| format!("{} {} {}", rng.pick(NAMES), rng.pick(SUFFIXES), i + 1))
        .collect();
    let mut rows = Vec::new();
    for t in &tenants {
        for m in METRICS.split_whitespace() {
            let max = if m == "storage_total" { 1 << 40 } else { 500 };
            rows.push((t.as_str(), m, rng.below(max)));
        }
    }
    if format.starts_with("json") {
        let period_end = at.timestamp() - 86_400;
        let doc = json!({
            "params": {
                "kind": "usage_summary", "gen_date": at.timestamp(), "begin_date": period_end - 30 * 86_400,
                "end_date": period_end, "group_id": FakeCloud::TENANT_ID, "name": "Monthly usage",
                "report_level": 1, "report_type": 2,
            },
            "tenants": tenants.iter().map(|t| json!({
                "name": t,
                "usages": rows.iter().filter(|r| r.0 == t).map(|r| json!({"name": r.1, "value": r.2})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        return serde_json::to_vec_pretty(&doc).unwrap_or_default();
    }
    if format.starts_with("html") {
        let mut html =
            String::from("<html><head><title>Usage report</title></head><body><table>\n");
        html.push_str("<tr><th>Tenant</th><th>Metric</th><th>Value</th></tr>\n");
        for (t, m, v) in &rows {
            html.push_str(&format!("<tr><td>{t}</td><td>{m}</td><td>{v}</td></tr>\n"));
        }
        html.push_str("</table></body></html>\n");
        return html.into_bytes();
    }
    let mut csv = String::from("tenant_name,metric,value\n");
    for (t, m, v) in &rows {
        csv.push_str(&format!("{t},{m},{v}\n"));
    }
    csv.into_bytes()
}

impl SplitMix64 {
    /// A float in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
