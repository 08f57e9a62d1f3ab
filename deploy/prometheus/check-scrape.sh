#!/usr/bin/env bash
# `promtool check metrics` on a real scrape: the built binary's `fake-cloud` and `run` on
# free loopback ports, /metrics read once a pass has finished, then linted. Used by .ci/run
# after `cargo test` (which built the binary). Usage: check-scrape.sh [BINARY] (default
# target/debug/report-archiver).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-${CARGO_TARGET_DIR:-$PWD/target}/debug/report-archiver}
if [ ! -x "$bin" ]; then
  echo "no binary at $bin: run cargo build (or cargo test) first" >&2
  exit 1
fi
work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# GETs a URL; prints the body, fails on anything but 200 (no curl on a bare Debian).
get() {
  python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"
}

cloud_port=$(free_port)
metrics_port=$(free_port)
"$bin" fake-cloud --listen "127.0.0.1:$cloud_port" --secret-file "$work/secret" \
  > "$work/fake-cloud.log" 2>&1 &
pids+=($!)
cat > "$work/config.toml" << EOF
[archive]
dir = "$work/archive"

[ledger]
path = "$work/ledger.db"

[server]
listen = "127.0.0.1:$metrics_port"

[defaults]
schedule = "0 0 * * * *"

[[accounts]]
name = "fake"
base_url = "http://127.0.0.1:$cloud_port"
client_id = "demo-client"
client_secret_file = "$work/secret"
EOF
# The fake cloud writes the secret as it starts; `run` needs it at once.
for _ in $(seq 100); do [ -s "$work/secret" ] && break; sleep 0.1; done
"$bin" --config "$work/config.toml" run > "$work/run.log" 2>&1 &
pids+=($!)

# `run` passes once at start; its counters show once that pass has finished (60 s at most).
for _ in $(seq 120); do
  if get "http://127.0.0.1:$metrics_port/metrics" > "$work/metrics.txt" 2> /dev/null \
    && grep -q '^report_archiver_passes_total{' "$work/metrics.txt"; then
    break
  fi
  sleep 0.5
done
if ! grep -q '^report_archiver_passes_total{' "$work/metrics.txt" 2> /dev/null; then
  echo "no finished pass on /metrics within 60 s; the daemon's log:" >&2
  cat "$work/run.log" >&2
  exit 1
fi
promtool check metrics < "$work/metrics.txt"
echo "promtool check metrics: clean ($(grep -c '^report_archiver_' "$work/metrics.txt") samples)"
