//! Uploads one file through the S3 target exactly as a pass does after a download (create-only,
//! multipart from `part_size`), for the benchmark against `rclone copyto`.
//!
//! `cargo run --release --example s3_upload -- FILE ENDPOINT BUCKET KEY [PART_MIB] [CONCURRENCY]`
//! with the access key in `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.

use std::io::Read;
use std::time::{Duration, Instant};

use report_archiver::config::{HttpSettings, S3Settings};
use report_archiver::ledger::Ledger;
use report_archiver::s3::ObjectTarget;
use sha2::{Digest, Sha256};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, endpoint, bucket, key, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: s3_upload FILE ENDPOINT BUCKET KEY [PART_MIB] [CONCURRENCY]");
    };
    let part_mib: u64 = rest.first().map_or(Ok(16), |s| s.parse())?;
    let concurrency: usize = rest.get(1).map_or(Ok(2), |s| s.parse())?;
    let settings: S3Settings = toml::from_str(&format!(
        "bucket = {bucket:?}\nendpoint = {endpoint:?}\npart_size = {}\nupload_concurrency = {concurrency}",
        part_mib * 1024 * 1024
    ))?;
    let state = tempfile::tempdir()?;
    let ledger = Ledger::open(&state.path().join("ledger.db"), Duration::from_secs(10)).await?;
    let objects = ObjectTarget::build(&settings, None, HttpSettings::default().options(), ledger)?;
    let path = std::path::Path::new(file);
    // The pass hashes while it downloads; here that is done before the clock starts.
    let mut hasher = Sha256::new();
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let sha = hex::encode(hasher.finalize());
    let size = std::fs::metadata(path)?.len();
    let started = Instant::now();
    let stored = objects.upload(path, key, size, &sha).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{size} bytes in {secs:.2} s = {:.1} MiB/s; e_tag {:?}",
        size as f64 / secs / 1048576.0,
        stored.object.e_tag
    );
    Ok(())
}
