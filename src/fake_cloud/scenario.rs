//! Named data sets for `fake-cloud --scenario` and the benchmark (`benches/compare.sh`).

use chrono::{DateTime, Utc};

use std::io::Write;

use super::content::SplitMix64;
use super::{BodyShape, FakeCloud, FakeReport, FakeStored, FaultKind, FaultPlan, ListedSize};

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

/// The `seeded` data set, but every listed `size` counts the uncompressed report instead of
/// the bytes served (a cloud that drifts from its spec): gzip bodies prove themselves by
/// their trailer and are archived with a warning (a plain body's size is its length anyway).
pub fn uncompressed_size(seed: u64, reports: usize, formats: &[&str]) -> FakeCloud {
    let fake = FakeCloud::seeded(seed, reports, formats);
    fake.relabel_sizes(|_| ListedSize::Uncompressed);
    fake
}

/// The `seeded` data set, but every gzip body was re-compressed on the way: the listing's
/// `size` is the length of another gzip stream of the same report (different bytes, same
/// content), so it differs from what is served.
pub fn recompressed(seed: u64, reports: usize, formats: &[&str]) -> FakeCloud {
    let fake = FakeCloud::seeded(seed, reports, formats);
    fake.relabel_sizes(|item| match item.shape {
        BodyShape::Plain => ListedSize::Wire,
        BodyShape::GzipWithHeader | BodyShape::GzipNoHeader => {
            ListedSize::Exactly(best_gzip_len(&item.content))
        }
    });
    fake
}

/// The `seeded` data set from a cloud whose clock is 3 hours behind: every token's
/// `expires_on` is already past when it arrives.
pub fn skewed_clock(seed: u64, reports: usize, formats: &[&str]) -> FakeCloud {
    let fake = FakeCloud::seeded(seed, reports, formats);
    fake.set_clock_skew(-3 * 3600);
    fake
}

impl FakeCloud {
    /// Sets what every stored item's listing states as its `size`.
    fn relabel_sizes(&self, size: impl Fn(&FakeStored) -> ListedSize) {
        let mut state = self.lock();
        for report in &mut state.reports {
            for item in &mut report.stored {
                item.spec.listed_size = size(&item.spec);
            }
        }
    }
}

/// The length of `plain` gzipped at the best compression: another encoder's output.
fn best_gzip_len(plain: &[u8]) -> u64 {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(plain);
    enc.finish().map_or(0, |bytes| bytes.len() as u64)
}

/// Two csv reports of two generations each; the second is deleted once its stored list has
/// been served once: the first pass archives both, later ones find that report gone
/// (`/reports/{id}` and `/stored` answer 404 while the tenant's list still names it).
pub fn deleted_report() -> FakeCloud {
    let fake = FakeCloud::new();
    let mut reports = Vec::new();
    for r in 0..2 {
        let report = fake.add_report(FakeReport::new(&["csv"]));
        for g in 0..2 {
            let mut item = FakeStored::new("csv", csv_of_size(2048, (r * 2 + g) as u64));
            item.created_at = at(r * 2 + g);
            fake.add_stored(&report, item);
        }
        reports.push(report);
    }
    if let Some(doomed) = reports.last() {
        fake.delete_report_after(doomed, 1);
    }
    fake
}

/// One csv report of three items, the newest of which the cloud lost: listed as saved, its
/// download answers 404. The first pass notes it, the second records it vanished, later
/// ones no longer ask for it.
pub fn removed_item() -> FakeCloud {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    let mut last = String::new();
    for g in 0..3 {
        let mut item = FakeStored::new("csv", csv_of_size(2048, g as u64));
        item.created_at = at(g);
        last = fake.add_stored(&report, item);
    }
    fake.remove_item(&report, &last);
    fake
}

/// A tenant whose every report is e-mailed (`result_action: send`): `reports` of them
/// (at least one), nothing stored, so an account pointed at it archives nothing.
pub fn all_send(reports: usize, formats: &[&str]) -> FakeCloud {
    let fake = FakeCloud::new();
    for _ in 0..reports.max(1) {
        let mut report = FakeReport::new(formats);
        report.result_action = "send".into();
        fake.add_report(report);
    }
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
        assert_eq!(deleted_report().report_ids().len(), 2);
        assert_eq!(removed_item().saved_items().len(), 3);
        let many = many(5, 1);
        let items = many.saved_items();
        assert_eq!(items.len(), 20);
        assert!(
            items
                .iter()
                .all(|(_, v)| (8 * 1024..64 * 1024).contains(&v.plain.len()))
        );
        let send = all_send(0, &["csv"]);
        assert_eq!(send.report_ids().len(), 1);
        assert!(send.saved_items().is_empty());
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
