#!/usr/bin/env bash
# What a no-op pass costs a big tenant (issue 17): `fake-cloud --scenario big-tenant` holds
# 2,000 reports, 1,900 of them finished `once` reports (as the vendor's WHMCS module leaves
# them: a new one a day, never deleted) and 100 monthly ones; 1% of requests get a 429
# without Retry-After. The release binary makes a first pass, the ledger's listing times
# are then moved an hour into the past (python3's sqlite3, on the stopped daemon's ledger),
# as if the second pass ran an hour later, and the second pass's requests (as the fake
# counts them, 429s included) and wall time are printed.
#
# The first pass runs unlimited (requests_per_second = 0) to keep the bench short; the
# second runs at the default [http] requests_per_second, as a deployed daemon would.
#
# usage: benches/big-tenant.sh                 (builds the release binary)
#        BIN=/path/to/report-archiver benches/big-tenant.sh
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*" >&2; }

if [ -z "${BIN:-}" ]; then
  say "building the release binary"
  cargo build --release --locked -q
  BIN=$PWD/target/release/report-archiver
fi
WORK=$(mktemp -d /tmp/ra-big-tenant.XXXXXX)
CLOUD_PID=""
cleanup() {
  if [ -n "$CLOUD_PID" ]; then kill "$CLOUD_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" fake-cloud --listen 127.0.0.1:0 --secret-file "$WORK/secret" --scenario big-tenant \
  > "$WORK/cloud.out" 2> "$WORK/cloud.err" &
CLOUD_PID=$!
for _ in $(seq 1 600); do
  grep -q '^fake cloud listening on ' "$WORK/cloud.out" 2>/dev/null && break
  kill -0 "$CLOUD_PID" 2>/dev/null || { cat "$WORK/cloud.err" >&2; exit 1; }
  sleep 0.2
done
BASE=$(sed -n 's/^fake cloud listening on //p' "$WORK/cloud.out")
[ -n "$BASE" ] || { say "the fake cloud did not start"; exit 1; }

write_config() { # http-lines
  cat > "$WORK/config.toml" <<TOML
[archive]
dir = "$WORK/archive"
[ledger]
path = "$WORK/ledger.db"
[http]
$1
[log]
level = "warn"
[[accounts]]
name = "bench"
base_url = "$BASE"
client_id = "demo-client"
client_secret_file = "$WORK/secret"
TOML
}

requests() {
  curl -sS "$BASE/_fake/stats" | python3 -c 'import sys, json; print(json.load(sys.stdin)["requests"])'
}

pass() { # label; prints "requests seconds"
  local before after start end
  before=$(requests)
  start=$(date +%s.%N)
  "$BIN" --config "$WORK/config.toml" once > "$WORK/$1.out" 2>&1 \
    || { cat "$WORK/$1.out" >&2; say "$1 pass failed"; exit 1; }
  end=$(date +%s.%N)
  after=$(requests)
  echo "$((after - before)) $(python3 -c "print(f'{$end - $start:.1f}')")"
}

say "first pass (unlimited rate)"
write_config "requests_per_second = 0"
out=$(pass first)
read -r first_requests first_seconds <<< "$out"

say "moving the ledger's listing times an hour back"
python3 - "$WORK/ledger.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
with db:
    db.execute("UPDATE report_listings SET listed_at = "
               "strftime('%Y-%m-%dT%H:%M:%SZ', listed_at, '-1 hours')")
print(db.execute("SELECT COUNT(*), SUM(finished) FROM report_listings").fetchone(), file=sys.stderr)
PY

say "second pass (default rate), as an hour later"
write_config ""
out=$(pass second)
read -r second_requests second_seconds <<< "$out"

archived=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM archived_items').fetchone()[0])" "$WORK/ledger.db")
printf 'big-tenant: 2,000 reports (1,900 finished once, 100 monthly), %s items archived\n' "$archived"
printf 'first pass:  %6s requests  %7ss  (requests_per_second = 0)\n' "$first_requests" "$first_seconds"
printf 'second pass: %6s requests  %7ss  (default requests_per_second), an hour later\n' "$second_requests" "$second_seconds"
