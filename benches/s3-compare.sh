#!/usr/bin/env bash
# The S3 target's upload against `rclone copyto`: one BIG_SIZE file (default 1 GiB) to a
# local s3s-fs 0.14.1 on 127.0.0.1, contenders alternating within each round. Ours is
# examples/s3_upload.rs: exactly the upload a pass does once a download is verified
# (create-only, multipart from PART_MIB, UPLOAD_CONCURRENCY parts in flight). Wall time
# and peak RSS from /usr/bin/time; medians go to benches/results/s3-latest.md.
#
# usage: benches/s3-compare.sh    (ROUNDS=3 BIG_SIZE=1073741824 PART_MIB=16 UPLOAD_CONCURRENCY=2, the daemon's defaults)
# Needs: rclone and /usr/bin/time (apt), s3s-fs in target/tools (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
BIG_SIZE=${BIG_SIZE:-1073741824}
PART_MIB=${PART_MIB:-16}
UPLOAD_CONCURRENCY=${UPLOAD_CONCURRENCY:-2}
PORT=${PORT:-18014}
target="${CARGO_TARGET_DIR:-$PWD/target}"
s3s="$target/tools/bin/s3s-fs"
say() { printf '== %s\n' "$*" >&2; }

[ -x "$s3s" ] || CARGO_TARGET_DIR="$target/tools/build" \
  cargo install s3s-fs --version 0.14.1 --features binary --locked --root "$target/tools"
cargo build --release --locked --example s3_upload
ours="$target/release/examples/s3_upload"

work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/s3/bench"
say "writing a $BIG_SIZE-byte file"
head -c "$BIG_SIZE" /dev/urandom > "$work/big.bin"
"$s3s" --host 127.0.0.1 --port "$PORT" --access-key AK --secret-key SK "$work/s3" >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

export AWS_ACCESS_KEY_ID=AK AWS_SECRET_ACCESS_KEY=SK AWS_REGION=us-east-1
export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
  RCLONE_CONFIG_BENCH_ENV_AUTH=false RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=AK \
  RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=SK RCLONE_CONFIG_BENCH_ENDPOINT="http://127.0.0.1:$PORT" \
  RCLONE_CONFIG_BENCH_REGION=us-east-1 RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true

results="$work/results.tsv"
for round in $(seq "$ROUNDS"); do
  say "round $round: ours"
  /usr/bin/time -f "ours\t%e\t%M" -a -o "$results" "$ours" "$work/big.bin" \
    "http://127.0.0.1:$PORT" bench "ours-$round.bin" "$PART_MIB" "$UPLOAD_CONCURRENCY" >&2
  say "round $round: rclone copyto"
  # An AWS_CA_BUNDLE in the environment makes rclone 1.60 refuse its own HTTP transport.
  /usr/bin/time -f "rclone\t%e\t%M" -a -o "$results" env -u AWS_CA_BUNDLE rclone copyto "$work/big.bin" \
    "bench:bench/rclone-$round.bin" --s3-chunk-size "${PART_MIB}M" \
    --s3-upload-concurrency "$UPLOAD_CONCURRENCY" --s3-upload-cutoff "${PART_MIB}M" \
    --s3-disable-checksum --s3-no-check-bucket >&2
  rm -f "$work/s3/bench/"*.bin
done

mkdir -p benches/results
{
  echo "# S3 upload: report-archiver vs rclone copyto ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "$BIG_SIZE bytes to s3s-fs 0.14.1 on 127.0.0.1, ${PART_MIB} MiB parts, $UPLOAD_CONCURRENCY in flight, $ROUNDS rounds, $(nproc) cores, s3s-fs on the same cores; medians of /usr/bin/time. Ours also reads and hashes the whole file first (a pass hashes while it downloads), so its time is an upper bound."
  echo
  echo "| contender | seconds | MiB/s | peak RSS MiB |"
  echo "| --- | --- | --- | --- |"
  mid=$(( (ROUNDS + 1) / 2 ))
  median() { awk -F'\t' -v who="$1" -v col="$2" '$1 == who { print $col }' "$results" | sort -n | sed -n "${mid}p"; }
  for who in ours rclone; do
    secs=$(median "$who" 2)
    rss=$(median "$who" 3)
    awk -v who="$who" -v s="$secs" -v r="$rss" -v size="$BIG_SIZE" \
      'BEGIN { printf "| %s | %.2f | %.1f | %.1f |\n", who, s, size / s / 1048576, r / 1024 }'
  done
} | tee benches/results/s3-latest.md
