//! Named data sets for `fake-cloud --scenario` and the benchmark (`benches/compare.sh`).

use chrono::{DateTime, Utc};

use super::content::SplitMix64;
use super::{BodyShape, FakeCloud, FakeReport, FakeStored, FaultKind, FaultPlan};

/// Formats of the `many` scenario: the four the vendor recommends for automation.
const MANY_FORMATS: [&str; 4] = ["csv", "csv_v2_0", "json_v2_0", "html"];

/// One report holding one `size`-byte CSV item, served as `shape`.
pub fn big(size: usize, shape: BodyShape) -> FakeCloud {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    let mut item = FakeStored::new("csv", csv_of_size(size, 1));
    item.shape = shape;
    item.created_at = at(0);
    fake.add_stored(&report, item);
    fake
}

/// `reports` reports × the four automation formats, each body 8–64 KiB, gzip as served by
/// the cloud (with the header on half of them).
pub fn many(reports: usize, seed: u64) -> FakeCloud {
    let fake = FakeCloud::new();
    let mut rng = SplitMix64(seed);
    for r in 0..reports {
        let report = fake.add_report(FakeReport::new(&MANY_FORMATS));
        for (f, format) in MANY_FORMATS.iter().enumerate() {
            let size = 8 * 1024 + rng.below(56 * 1024) as usize;
            let mut item = FakeStored::new(format, csv_of_size(size, rng.next()));
            item.shape = if (r + f) % 2 == 0 {
                BodyShape::GzipWithHeader
            } else {
                BodyShape::GzipNoHeader
            };
            item.created_at = at((r * 4 + f) as i64);
            fake.add_stored(&report, item);
        }
    }
    fake
}

/// Reports of `fake-cloud --scenario big-tenant`.
pub const BIG_TENANT_REPORTS: usize = 2_000;
/// Formats of the `big-tenant` reports: what a billing integration orders.
const BIG_TENANT_FORMATS: [&str; 2] = ["csv_v2_0", "json_v2_0"];

/// A tenant as an integration that orders a `once` report a day and never deletes one
/// leaves it: `reports` reports, one in twenty `monthly` (three generations), the rest
/// `once` and finished (one generation, every item saved); each item 1–4 KiB of gzip.
/// One request in a hundred is a 429 without `Retry-After` (the API declares no 429, so
/// whatever throttles need not say when).
pub fn big_tenant(reports: usize, seed: u64) -> FakeCloud {
    let fake = FakeCloud::new();
    let mut rng = SplitMix64(seed);
    for r in 0..reports {
        let monthly = r.is_multiple_of(20);
        let mut config = FakeReport::new(&BIG_TENANT_FORMATS);
        config.kind = "usage_current".into();
        config.level = "accounts".into();
        if !monthly {
            config.schedule_type = "once".into();
        }
        let report = fake.add_report(config);
        let generations = if monthly { 3 } else { 1 };
        for g in 0..generations {
            for (f, format) in BIG_TENANT_FORMATS.iter().enumerate() {
                let size = 1024 + rng.below(3 * 1024) as usize;
                let mut item = FakeStored::new(format, small_csv(size, &mut rng));
                item.created_at = at((r * 8 + g * 2 + f) as i64);
                fake.add_stored(&report, item);
            }
        }
    }
    fake.set_fault_plan(Some(FaultPlan {
        kinds: vec![FaultKind::Throttled],
        ..FaultPlan::new(seed, 0.01)
    }));
    fake
}

fn at(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000 + n * 60, 0).unwrap_or_default()
}

/// A small usage-report-like CSV of about `size` bytes, made row by row: thousands of them
/// must not each cost the 1 MiB block of [`csv_of_size`].
fn small_csv(size: usize, rng: &mut SplitMix64) -> Vec<u8> {
    let mut out = String::from("tenant_id,tenant_name,metric,value,unit\n");
    while out.len() < size {
        out.push_str(&format!(
            "{:08x},Customer {},metric_{},{},bytes\n",
            rng.next() as u32,
            rng.below(100_000),
            rng.below(40),
            rng.below(1 << 40),
        ));
    }
    out.into_bytes()
}

/// Usage-report-like CSV of exactly `size` bytes: compresses about as well as the real ones.
fn csv_of_size(size: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64(seed);
    // A 1 MiB block of varied rows, repeated: cheap to make at 1 GiB, and gzip's 32 KiB
    // window never sees the repetition.
    let mut block = String::from("tenant_id,tenant_name,metric,value,unit\n");
    while block.len() < 1 << 20 {
        let n = rng.below(100_000);
        block.push_str(&format!(
            "{:08x}-{:04x},Customer {n},metric_{},{},{}\n",
            rng.next() as u32,
            rng.below(0xffff),
            rng.below(40),
            rng.below(1 << 40),
            if n.is_multiple_of(2) {
                "bytes"
            } else {
                "count"
            }
        ));
    }
    let block = block.into_bytes();
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        let take = (size - out.len()).min(block.len());
        out.extend_from_slice(&block[..take]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_have_the_promised_shape() {
        let big = big(3 << 20, BodyShape::Plain);
        let items = big.saved_items();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].1.plain.len(), 3 << 20);
        let many = many(5, 1);
        let items = many.saved_items();
        assert_eq!(items.len(), 20);
        assert!(
            items
                .iter()
                .all(|(_, v)| (8 * 1024..64 * 1024).contains(&v.plain.len()))
        );
    }

    #[test]
    fn the_big_tenant_is_mostly_finished_once_reports() {
        let fake = big_tenant(40, 1);
        assert_eq!(fake.report_ids().len(), 40);
        // 38 once reports × 2 items, 2 monthly × 3 generations × 2.
        assert_eq!(fake.saved_items().len(), 38 * 2 + 2 * 6);
        let once = fake
            .report_ids()
            .iter()
            .filter(|id| fake.schedule_type(id).as_deref() == Some("once"))
            .count();
        assert_eq!(once, 38);
    }
}
