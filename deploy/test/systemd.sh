#!/usr/bin/env bash
# The unit, run by systemd: in a container whose PID 1 is systemd, the release binary and
# deploy/systemd/report-archiver.service are installed with README "systemd"'s commands, then
# the service archives from the built-in fake cloud on the host's loopback.
#
#   bash deploy/test/systemd.sh        (root; .ci/run runs it after `cargo build --release`)
#
# Env: REPORT_ARCHIVER_BIN (host binary serving the fake cloud; default target/release),
# REQUIRE_DEPLOY_TESTS=1 (fail instead of skipping when podman cannot run here).
set -euo pipefail
# shellcheck source=deploy/test/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

podman_ready || skip_or_fail

RELEASE=${CARGO_TARGET_DIR:-$ROOT/target}/release/report-archiver
[ -x "$RELEASE" ] || cargo build --release --locked
BIN=${REPORT_ARCHIVER_BIN:-$RELEASE}
WORK=$(mktemp -d "$STATE/systemd.XXXXXX")
on_exit rm -rf "$WORK"
NAME=report-archiver-systemd-$$

timed "systemd: base images (debian, systemd)" bash -c "
  source '$ROOT/deploy/test/lib.sh'
  ensure_debian_image && ensure_systemd_image"
timed "systemd: boot the container" start_systemd_container "$NAME"

in_c() { "${PODMAN[@]}" exec "$NAME" "$@"; }
sh_c() { "${PODMAN[@]}" exec "$NAME" bash -euo pipefail -c "$1"; }
prop() { in_c systemctl show -p "$1" --value report-archiver.service; }

start_fake_cloud "$BIN" "$WORK" --latency 100ms
PORT=$(free_port)

# ---- install: README "systemd", steps 1-5, as root (no sudo in the container) --------------
in_c mkdir -p /src/target/release /src/deploy/systemd /src/config
"${PODMAN[@]}" cp "$RELEASE" "$NAME:/src/target/release/report-archiver"
"${PODMAN[@]}" cp deploy/systemd/report-archiver.service "$NAME:/src/deploy/systemd/"
"${PODMAN[@]}" cp config/example.toml "$NAME:/src/config/"
"${PODMAN[@]}" cp "$WORK/fake.secret" "$NAME:/root/the-client-secret"
# 0. what the binary needs at run time besides glibc: the OS CA certificates (the HTTPS
#    client reads them at start, also for an http:// test cloud). The base image is bare.
sh_c 'apt-get update -q > /dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ca-certificates > /dev/null 2>&1'
sh_c '
cd /src
# 1. binary and unit
install -m 0755 target/release/report-archiver /usr/local/bin/report-archiver
install -m 0644 deploy/systemd/report-archiver.service /etc/systemd/system/
# 2. config
install -d -m 0755 /etc/report-archiver
install -m 0644 config/example.toml /etc/report-archiver/config.toml'
# sudoedit /etc/report-archiver/config.toml: this account, client_secret_credential = "eu2"
# instead of client_secret_file, [server] listen on loopback, a pass every 5 s.
sh_c "
f=/etc/report-archiver/config.toml
sed -i -e 's#^base_url = .*#base_url = \"$FAKE_URL\"#' \
  -e 's#^client_id = .*#client_id = \"$FAKE_CLIENT_ID\"#' \
  -e 's#^client_secret_file = .*#client_secret_credential = \"eu2\"#' \
  -e 's#^\\# listen = .*#listen = \"127.0.0.1:$PORT\"#' \
  -e 's#^schedule = .*#schedule = \"*/5 * * * * *\"#' \"\$f\"
grep -q '^client_secret_credential = \"eu2\"' \"\$f\" && grep -q '^listen = \"127.0.0.1:$PORT\"' \"\$f\""
sh_c '
# 3. one secret file per account, readable by root only
install -m 0600 /dev/null /etc/report-archiver/eu2.secret
cat /root/the-client-secret > /etc/report-archiver/eu2.secret && rm /root/the-client-secret
# 5. start
systemctl daemon-reload
systemctl enable --now report-archiver'
in_c grep -q 'secret' /etc/report-archiver/config.toml # the key names it…
if in_c grep -qF "$(cat "$WORK/fake.secret")" /etc/report-archiver/config.toml; then
  fail "the secret is in the config" # …the value is not there
fi

# ---- started through Type=notify, hardened, secret through LoadCredential= ------------------
started_at=$(date +%s)
[ "$(prop ActiveState)/$(prop SubState)" = active/running ] \
  || { in_c journalctl -u report-archiver --no-pager | tail -n 30 >&2; fail "not active (running) after enable --now: $(prop ActiveState)/$(prop SubState) $(prop Result)"; }
[ "$(prop Type)" = notify ] || fail "Type is $(prop Type)"
# A notify service is active only once READY=1 came; its STATUS= is the daemon's own text.
[ "$(prop StatusText)" = "archiving 1 account(s)" ] || fail "StatusText is '$(prop StatusText)'"
[ "$(prop WatchdogUSec)" = 1min ] || fail "WatchdogUSec is $(prop WatchdogUSec)"
ok "systemctl enable --now: active (running) via Type=notify, STATUS='$(prop StatusText)', WatchdogSec=1min"

pid=$(prop MainPID)
status=$(in_c cat "/proc/$pid/status")
uid=$(awk '/^Uid:/ { print $2 }' <<< "$status")
{ [ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ]; } || fail "the daemon runs as uid $uid, not a DynamicUser uid"
grep -qE '^CapEff:\s+0+$' <<< "$status" || fail "the daemon has capabilities"
grep -qE '^NoNewPrivs:\s+1$' <<< "$status" || fail "no_new_privs is not set"
grep -qE '^Seccomp:\s+2$' <<< "$status" || fail "no seccomp filter on the daemon"
ok "the daemon (pid $pid) runs as dynamic uid $uid, no capabilities, no_new_privs, seccomp filter"

# The credential: systemd put it in the service's own credentials directory, and the daemon
# authenticated with it (the fake cloud refuses any other secret).
cred=$(in_c cat /run/credentials/report-archiver.service/eu2) || fail "no /run/credentials/report-archiver.service/eu2"
[ "$cred" = "$(cat "$WORK/fake.secret")" ] || fail "the credential's content differs from the secret file"
in_c find /run/credentials/report-archiver.service -maxdepth 0 -perm 0500 | contains . \
  || fail "the credentials directory is not 0500"
ok "LoadCredential=: /run/credentials/report-archiver.service/eu2 holds the secret; the config names only the credential"

security=$(in_c systemd-analyze security --no-pager report-archiver.service | tail -n 1)
exposure=$(sed -n 's/.*: \([0-9.]*\) .*/\1/p' <<< "$security")
printf '%s\n' "$security"
printf 'systemd-analyze exposure\t%s\n' "$exposure" >> "$STATE/times.txt"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }' || fail "exposure $exposure > 2.0"
ok "systemd-analyze security on the running unit: $exposure (<= 2.0)"

# ---- it archives: everything the cloud lists as saved, with the ledger's SHA-256s ----------
reports_json() {
  in_c systemd-run --quiet --wait --pipe -p LoadCredential=eu2:/etc/report-archiver/eu2.secret \
    /usr/local/bin/report-archiver --config /etc/report-archiver/config.toml reports --json
}
all_archived() {
  reports_json > "$WORK/reports.json" 2> /dev/null || return 1
  python3 - "$WORK/reports.json" << 'EOF'
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if not r["stores_nothing"]]
saved = sum(r["saved"] for r in rows)
done = sum(r["archived"] for r in rows)
print(f"{done} of {saved} saved items archived")
sys.exit(0 if rows and all(r["saved"] == r["archived"] for r in rows) else 1)
EOF
}
check_archive() {
  local what=$1 rows files
  in_c report-archiver ledger --ledger /var/lib/report-archiver/ledger.db \
    --archive /var/lib/report-archiver/archive export --format sha256sum > "$WORK/SHA256SUMS"
  rows=$(wc -l < "$WORK/SHA256SUMS")
  [ "$rows" -gt 0 ] || fail "$what: the ledger is empty"
  "${PODMAN[@]}" cp "$WORK/SHA256SUMS" "$NAME:/root/SHA256SUMS"
  sh_c 'cd /var/lib/report-archiver/archive && sha256sum --quiet -c /root/SHA256SUMS' \
    || fail "$what: SHA-256 mismatch against the ledger"
  files=$(sh_c 'find /var/lib/report-archiver/archive -path /var/lib/report-archiver/archive/.partial -prune -o -type f -print | wc -l')
  [ "$files" = "$rows" ] || fail "$what: $files files, $rows ledger rows"
  ok "$what: $rows files in /var/lib/report-archiver/archive, every SHA-256 matches the ledger"
}
wait_for 120 "every saved item archived" all_archived
all_archived
[ "$(in_c readlink /var/lib/report-archiver)" = private/report-archiver ] \
  || fail "/var/lib/report-archiver is not the DynamicUser link into /var/lib/private"
check_archive "archived by the service"
in_c report-archiver health --url "http://127.0.0.1:$PORT/healthz" > /dev/null || fail "report-archiver health: unhealthy"
ok "report-archiver health: healthy"

# ---- the watchdog is fed: WatchdogTimestamp moves on with each WATCHDOG=1 (every 30 s) -----
wd1=$(prop WatchdogTimestampMonotonic)
left=$((started_at + 35 - $(date +%s)))
if [ "$left" -gt 0 ]; then sleep "$left"; fi
wd2=$(prop WatchdogTimestampMonotonic)
[ "$wd2" -gt "$wd1" ] || fail "WatchdogTimestamp did not move in 35 s ($wd1 -> $wd2): no WATCHDOG=1"
{ [ "$(prop NRestarts)" = 0 ] && [ "$(prop MainPID)" = "$pid" ]; } || fail "the service was restarted"
ok "watchdog fed: WatchdogTimestamp moved on (${wd1} -> ${wd2} us), same process, no restart"

# ---- reload: there is none (the daemon reads its config at start); restart applies it -------
if in_c systemctl reload report-archiver 2> "$WORK/reload.txt"; then
  fail "systemctl reload succeeded, the README says it is refused"
fi
grep -q 'not applicable' "$WORK/reload.txt" || fail "systemctl reload failed otherwise: $(cat "$WORK/reload.txt")"
{ [ "$(prop MainPID)" = "$pid" ] && [ "$(prop ActiveState)" = active ]; } || fail "systemctl reload disturbed the service"
ok "systemctl reload: refused ('$(tr -d '\n' < "$WORK/reload.txt")'), service untouched"

cp "$WORK/SHA256SUMS" "$WORK/SHA256SUMS.before"
invocation_log() { in_c journalctl --no-pager -o cat "_SYSTEMD_INVOCATION_ID=$(prop InvocationID)"; }
in_c systemctl restart report-archiver
pid2=$(prop MainPID)
{ [ "$pid2" != "$pid" ] && [ "$(prop ActiveState)/$(prop SubState)" = active/running ]; } \
  || fail "systemctl restart: not a new running process"
# shellcheck disable=SC2317 # called through wait_for
pass_done() { invocation_log | contains 'pass finished'; }
wait_for 60 "a pass after the restart" pass_done
invocation_log | first_match 'pass finished' | contains 'fetched=0 ' \
  || fail "the pass after the restart fetched something: $(invocation_log | first_match 'pass finished')"
check_archive "after systemctl restart"
diff -q "$WORK/SHA256SUMS.before" "$WORK/SHA256SUMS" > /dev/null || fail "the ledger changed across the restart"
ok "systemctl restart: new process (pid $pid -> $pid2), its pass fetched 0, ledger unchanged"

# ---- stop: SIGTERM, drain, exit 0 ---------------------------------------------------------
t0=$(date +%s)
in_c systemctl stop report-archiver
t1=$(date +%s)
{ [ "$(prop ExecMainStatus)" = 0 ] && [ "$(prop Result)" = success ]; } \
  || fail "systemctl stop: status $(prop ExecMainStatus), result $(prop Result)"
in_c journalctl -u report-archiver --no-pager -o cat | contains 'SIGTERM received' || fail "no 'SIGTERM received' in the journal"
[ -z "$(sh_c 'find /var/lib/private/report-archiver/archive/.partial -type f 2> /dev/null')" ] || fail "partial files left"
ok "systemctl stop: SIGTERM, exit status 0 in $((t1 - t0))s, no .partial file"
in_c journalctl -u report-archiver --no-pager > "$STATE/systemd-journal.txt" || true

print_times
echo "systemd: ok"
