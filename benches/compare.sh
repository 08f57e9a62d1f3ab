#!/usr/bin/env bash
# Side-by-side benchmark of report-archiver against the tools an operator would otherwise
# use, all against `report-archiver fake-cloud` on 127.0.0.1. Contenders alternate within
# each round; the table shows medians and the ratio to the best peer, and goes to
# benches/results/latest.md. Peak RSS of every contender comes from /usr/bin/time.
#
# usage: benches/compare.sh            (ROUNDS=3 BIG_SIZE=1073741824 MANY_REPORTS=500
#                                        LEDGER_ROWS=1000000 IDLE_SECONDS=60)
#        SCENARIOS="big many" benches/compare.sh
#        BIN=/old/report-archiver OUT=/tmp/old.md benches/compare.sh   (another build)
#
# Scenarios: big, big-gz (1 GiB item; also ours at 10 MiB, to show memory does not grow
# with size), many (500 reports x 4 formats; against xargs -P8 curl, with and without a
# closing sync), noop (the same items, all archived; then
# again with LEDGER_ROWS more rows of history in the ledger), idle, s3 (the S3 target's
# 1 GiB upload against `rclone copyto`, by benches/s3-compare.sh into
# benches/results/s3-latest.md).
#
# Installs what the peers need from the package registries when missing:
#   apt: curl wget rclone time    pip: requests
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
BIG_SIZE=${BIG_SIZE:-1073741824}
MANY_REPORTS=${MANY_REPORTS:-500}
SCENARIOS=${SCENARIOS:-"big big-gz many noop idle s3"}
IDLE_SECONDS=${IDLE_SECONDS:-60}
LEDGER_ROWS=${LEDGER_ROWS:-1000000}
SMALL_SIZE=10485760

say() { printf '== %s\n' "$*" >&2; }

install_peers() {
  local missing=()
  for tool in curl wget rclone; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ -x /usr/bin/time ] || missing+=(time)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (apt)"
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! python3 -c 'import requests' 2>/dev/null; then
    say "installing requests (pip)"
    python3 -m pip install -q requests
  fi
}

install_peers
# BIN=/path/to/report-archiver compares another build (e.g. an older commit's) on the same
# machine; the table then goes to OUT instead of benches/results/latest.md.
if [ -z "${BIN:-}" ]; then
  say "building the release binary"
  cargo build --release --locked -q
  BIN=$PWD/target/release/report-archiver
fi
OUT=${OUT:-benches/results/latest.md}
WORK=$(mktemp -d /tmp/ra-bench.XXXXXX)
RESULTS=$WORK/results.tsv
: > "$RESULTS"
CLOUD_PID=""
S3_TABLE=""
cleanup() {
  [ -n "$CLOUD_PID" ] && kill "$CLOUD_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

start_cloud() { # scenario args...
  [ -n "$CLOUD_PID" ] && { kill "$CLOUD_PID" 2>/dev/null || true; wait "$CLOUD_PID" 2>/dev/null || true; }
  "$BIN" fake-cloud --listen 127.0.0.1:0 --secret-file "$WORK/secret" --urls-file "$WORK/urls" "$@" \
    > "$WORK/cloud.out" 2> "$WORK/cloud.err" &
  CLOUD_PID=$!
  for _ in $(seq 1 600); do
    grep -q '^fake cloud listening on ' "$WORK/cloud.out" 2>/dev/null && break
    kill -0 "$CLOUD_PID" 2>/dev/null || { cat "$WORK/cloud.err" >&2; exit 1; }
    sleep 0.2
  done
  BASE=$(sed -n 's/^fake cloud listening on //p' "$WORK/cloud.out")
  TOKEN=$(curl -sS -u "demo-client:$(cat "$WORK/secret")" -d grant_type=client_credentials \
    "$BASE/api/2/idp/token" | python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')
  sed 's|.*/reports/\([^/]*\)/stored/.*|\1|' "$WORK/urls" | sort -u > "$WORK/report_ids"
}

requests_so_far() {
  curl -sS "$BASE/_fake/stats" | python3 -c 'import sys, json; print(json.load(sys.stdin)["requests"])'
}

write_config() { # archive_dir ledger concurrency [reports_file]
  local reports="[]"
  if [ -n "${4:-}" ]; then
    reports="[$(sed 's/.*/"&"/' "$4" | paste -sd, -)]"
  fi
  cat > "$WORK/config.toml" <<EOF
[archive]
dir = "$1"
max_file_size = "4GiB"
[ledger]
path = "$2"
[http]
# The other tools do not limit their rate either; the fake cloud is local.
requests_per_second = 0
[defaults]
concurrency = $3
[log]
level = "warn"
[[accounts]]
name = "bench"
base_url = "$BASE"
client_id = "demo-client"
client_secret_file = "$WORK/secret"
reports = $reports
EOF
}

measure() { # scenario contender round bytes command...
  local scenario=$1 contender=$2 round=$3 bytes=$4
  shift 4
  sync
  local before
  before=$(requests_so_far)
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" > "$WORK/out.log" 2>&1 || {
    say "$contender failed:"; tail -20 "$WORK/out.log" >&2; exit 1;
  }
  local after secs rss
  after=$(requests_so_far)
  read -r secs rss < <(tail -1 "$WORK/time")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$contender" "$round" "$secs" "$rss" "$bytes" \
    "$((after - before))" >> "$RESULTS"
  say "$scenario $contender round $round: ${secs}s, ${rss} KiB, $((after - before)) requests"
}

# The last contender's files go to a trash folder rather than away: deleting thousands of
# inodes just before a contender slows its every file creation for half a minute on ext4
# without a journal (the allocator skips recently freed inodes one at a time; perf showed
# `recently_deleted` at a quarter of the machine), and whoever ran right after the largest
# deletion paid for it. The trash is emptied outside any measurement: after each round of
# the big scenarios (a few inodes, but gigabytes), else when the run ends.
fresh() {
  mkdir -p "$WORK/trash"
  local t
  t=$(mktemp -d "$WORK/trash/XXXXXX")
  for p in out archive ledger.db ledger.db-wal ledger.db-shm; do
    if [ -e "$WORK/$p" ]; then mv "$WORK/$p" "$t/"; fi
  done
  mkdir -p "$WORK/out"
}
empty_trash() { rm -rf "$WORK/trash"; }

# The fake cloud's many reports are finished one-time reports, which discovery lists only
# about daily once archived: the no-op scenario moves their last listing back two days
# (their schedule type stays known), so that it measures a pass that lists every report
# (as for monthly reports), not one that rests.
unrest() {
  python3 - "$WORK/ledger.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE report_listings SET listed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-2 days')")
db.commit()
PY
}

for scenario in $SCENARIOS; do
  case $scenario in
    big|big-gz)
      say "scenario $scenario: one $BIG_SIZE-byte item"
      start_cloud --scenario "$scenario" --big-size "$BIG_SIZE"
      url=$(head -1 "$WORK/urls")
      for round in $(seq 1 "$ROUNDS"); do
        fresh; write_config "$WORK/archive" "$WORK/ledger.db" 4
        measure "$scenario" "report-archiver once" "$round" "$BIG_SIZE" "$BIN" --config "$WORK/config.toml" once
        if [ "$scenario" = big ]; then
          fresh; measure big "curl -o" "$round" "$BIG_SIZE" curl -sS -H "Authorization: Bearer $TOKEN" -o "$WORK/out/big" "$url"
          fresh; measure big "wget -O" "$round" "$BIG_SIZE" wget -q --header "Authorization: Bearer $TOKEN" -O "$WORK/out/big" "$url"
          fresh; measure big "rclone copyurl" "$round" "$BIG_SIZE" rclone copyurl -q --header "Authorization: Bearer $TOKEN" "$url" "$WORK/out/big"
        else
          fresh; measure big-gz "curl --compressed -o" "$round" "$BIG_SIZE" curl -sS --compressed -H "Authorization: Bearer $TOKEN" -o "$WORK/out/big" "$url"
        fi
        # A few inodes, but gigabytes: not kept.
        fresh; empty_trash
      done
      if [ "$scenario" = big ]; then
        say "scenario big at 10 MiB: report-archiver's memory at a hundredth of the size"
        start_cloud --scenario big --big-size "$SMALL_SIZE"
        for round in $(seq 1 "$ROUNDS"); do
          fresh; write_config "$WORK/archive" "$WORK/ledger.db" 4
          measure big-10MiB "report-archiver once" "$round" "$SMALL_SIZE" "$BIN" --config "$WORK/config.toml" once
        done
        fresh; empty_trash
      fi
      ;;
    many|noop)
      if [ "$scenario" = many ] || [ ! -s "$WORK/report_ids" ] || ! grep -q -- '--scenario many' "$WORK/cloud.cmd" 2>/dev/null; then
        say "scenario many: $MANY_REPORTS reports x 4 formats, 8-64 KiB, 5 ms latency"
        start_cloud --scenario many --reports "$MANY_REPORTS" --latency 5ms
        echo "--scenario many" > "$WORK/cloud.cmd"
      fi
      total=$(python3 - "$WORK/urls" <<'EOF'
import sys
print(sum(1 for _ in open(sys.argv[1])))
EOF
)
      if [ "$scenario" = many ]; then
        for round in $(seq 1 "$ROUNDS"); do
          fresh; write_config "$WORK/archive" "$WORK/ledger.db" 8
          measure many "report-archiver once" "$round" 0 "$BIN" --config "$WORK/config.toml" once
          fresh; measure many "python requests (sequential)" "$round" 0 \
            python3 benches/vendor_style.py "$BASE" demo-client "$WORK/secret" "$WORK/report_ids" "$WORK/out"
          fresh; measure many "xargs -P8 curl" "$round" 0 \
            sh -c "xargs -P8 -n 32 curl -sS -H 'Authorization: Bearer $TOKEN' --output-dir '$WORK/out' --remote-name-all < '$WORK/urls'"
          # The fair peer: the same, then one `sync`, so its files are on disk as ours are
          # (ours fsyncs each file and its folder before the ledger row that names it).
          fresh; measure many "xargs -P8 curl + sync" "$round" 0 \
            sh -c "xargs -P8 -n 32 curl -sS -H 'Authorization: Bearer $TOKEN' --output-dir '$WORK/out' --remote-name-all < '$WORK/urls' && sync"
        done
        # Kept until the end: deleting these 25,000-odd files now would slow the no-op
        # scenario that follows (on a filesystem mounted with `discard`, for a while).
      else
        say "scenario noop: the same $total items, all archived"
        fresh; write_config "$WORK/archive" "$WORK/ledger.db" 8
        "$BIN" --config "$WORK/config.toml" once > /dev/null
        for round in $(seq 1 "$ROUNDS"); do
          unrest; measure noop "report-archiver once (discovery)" "$round" 0 "$BIN" --config "$WORK/config.toml" once
        done
        write_config "$WORK/archive" "$WORK/ledger.db" 8 "$WORK/report_ids"
        for round in $(seq 1 "$ROUNDS"); do
          measure noop "report-archiver once (report ids)" "$round" 0 "$BIN" --config "$WORK/config.toml" once
        done
        if [ "$LEDGER_ROWS" -gt 0 ]; then
          say "scenario noop with $LEDGER_ROWS more rows of history in the ledger"
          python3 benches/seed_ledger.py "$WORK/ledger.db" bench "$WORK/report_ids" "$LEDGER_ROWS" >&2
          for round in $(seq 1 "$ROUNDS"); do
            measure noop-big-ledger "report-archiver once (report ids)" "$round" 0 "$BIN" --config "$WORK/config.toml" once
          done
          write_config "$WORK/archive" "$WORK/ledger.db" 8
          for round in $(seq 1 "$ROUNDS"); do
            unrest; measure noop-big-ledger "report-archiver once (discovery)" "$round" 0 "$BIN" --config "$WORK/config.toml" once
          done
        fi
      fi
      ;;
    idle)
      say "scenario idle: run with an hourly schedule, ${IDLE_SECONDS}s after start"
      [ -n "${BASE:-}" ] || start_cloud --scenario many --reports "$MANY_REPORTS" --latency 5ms
      # A ledger of its own: the service reconciles the whole archive as it starts, and
      # the seeded history of the noop scenario has no files behind it.
      fresh; write_config "$WORK/archive" "$WORK/ledger.db" 8
      "$BIN" --config "$WORK/config.toml" once > /dev/null || true
      "$BIN" --config "$WORK/config.toml" run > "$WORK/run.log" 2>&1 &
      run_pid=$!
      sleep 5
      ticks0=$(awk '{print $14 + $15}' "/proc/$run_pid/stat")
      sleep "$((IDLE_SECONDS - 5))"
      ticks1=$(awk '{print $14 + $15}' "/proc/$run_pid/stat")
      rss=$(awk '/VmRSS/ {print $2}' "/proc/$run_pid/status")
      hz=$(getconf CLK_TCK)
      kill -TERM "$run_pid"; wait "$run_pid" || true
      cpu=$(python3 -c "print(f'{($ticks1 - $ticks0) / $hz:.2f}')")
      cpu_all=$(python3 -c "print(f'{$ticks1 / $hz:.2f}')")
      printf 'idle\treport-archiver run (after the start-up pass)\t1\t%s\t%s\t0\t-\n' "$cpu" "$rss" >> "$RESULTS"
      printf 'idle\treport-archiver run (whole first minute, start-up no-op pass included)\t1\t%s\t%s\t0\t-\n' "$cpu_all" "$rss" >> "$RESULTS"
      say "idle: ${cpu}s CPU over the last $((IDLE_SECONDS - 5))s (${cpu_all}s since start), RSS ${rss} KiB"
      ;;
    s3)
      say "scenario s3: a 1 GiB upload to s3s-fs against rclone copyto (benches/s3-compare.sh)"
      ROUNDS=$ROUNDS BIG_SIZE=$BIG_SIZE benches/s3-compare.sh > /dev/null
      S3_TABLE=benches/results/s3-latest.md
      ;;
    *) say "unknown scenario $scenario"; exit 2 ;;
  esac
done

machine="$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
mkdir -p benches/results
python3 benches/summarize.py "$RESULTS" "$machine" "$MANY_REPORTS" "$LEDGER_ROWS" | tee "$OUT"
echo >> "$OUT"
echo "For idle, the seconds column is CPU seconds spent while idle, not wall time." >> "$OUT"
if [ -n "${S3_TABLE:-}" ]; then
  { echo; sed 's/^# /## /' "$S3_TABLE"; } >> "$OUT"
fi
