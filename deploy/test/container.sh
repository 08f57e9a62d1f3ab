#!/usr/bin/env bash
# The image, built and run: deploy/docker/Dockerfile is built unchanged with podman (its base
# images made locally, see lib.sh), then run the way README "Docker" says (uid 10001,
# read-only root, /data a volume, the client secret a file under /run/secrets) against the
# built-in fake cloud on the host's loopback, then deploy/docker/compose.yaml the same way.
#
#   bash deploy/test/container.sh        (root; .ci/run runs it)
#
# Env: REPORT_ARCHIVER_BIN (host binary serving the fake cloud; default target/debug),
# REQUIRE_DEPLOY_TESTS=1 (fail instead of skipping when podman cannot run here).
set -euo pipefail
# shellcheck source=deploy/test/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

podman_ready || skip_or_fail

BIN=${REPORT_ARCHIVER_BIN:-$ROOT/target/debug/report-archiver}
[ -x "$BIN" ] || cargo build --locked --quiet
IMAGE=report-archiver # the README's tag (localhost/report-archiver:latest)
GRACE=45              # README: `docker stop -t 45`, compose: stop_grace_period 45s
WORK=$(mktemp -d "$STATE/container.XXXXXX")
on_exit rm -rf "$WORK"

timed "container: base images (debian, rust)" bash -c "
  source '$ROOT/deploy/test/lib.sh'
  ensure_debian_image && ensure_rust_image"

# ---- build: the README's command, plus what this podman needs -----------------------------
build_image() {
  # --format docker keeps HEALTHCHECK (OCI images have none); --pull=never uses the local
  # base images; --network host reaches crates.io and Debian from inside the build.
  "${PODMAN[@]}" build --pull=never --network host --format docker "${LIMITS[@]}" \
    -f deploy/docker/Dockerfile -t "$IMAGE" . > "$STATE/image-build.log" 2>&1 \
    || { tail -n 40 "$STATE/image-build.log" >&2; fail "podman build failed (log: $STATE/image-build.log)"; }
}
timed "container: podman build (Dockerfile unchanged)" build_image
size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
printf 'image: %s, %s MB (%s bytes)\n' "$IMAGE" "$((size / 1000000))" "$size"
printf 'image size\t%s\n' "$size" >> "$STATE/times.txt"

# ---- the image's contents: no compiler, no secret, the user and health check it declares ---
check_image() {
  local user health cid
  user=$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$IMAGE")
  [ "$user" = "10001:10001" ] || fail "image user is '$user', not 10001:10001"
  health=$("${PODMAN[@]}" image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
  case "$health" in
    *report-archiver*health*) ;;
    *) fail "image has no HEALTHCHECK running 'report-archiver health': $health" ;;
  esac
  cid=$("${PODMAN[@]}" create "$IMAGE")
  "${PODMAN[@]}" export "$cid" > "$WORK/image.tar"
  # (podman logs an error about the health check's systemd timer when there is no systemd.)
  "${PODMAN[@]}" rm -v "$cid" > /dev/null 2>&1
  mkdir "$WORK/fs"
  tar -C "$WORK/fs" -xf "$WORK/image.tar" 2> /dev/null
  rm "$WORK/image.tar"
  local found
  # Toolchains and the build stage's tree; compilers, linkers and assemblers on any PATH dir.
  # (find fails on the paths that do not exist, which is the point: only its output counts.)
  found=$(cd "$WORK/fs" || exit 1; find ./usr/local/cargo ./usr/local/rustup ./usr/local/rust ./usr/lib/gcc \
    ./usr/libexec/gcc ./src ./out -maxdepth 0 2> /dev/null; true)
  found+=$(cd "$WORK/fs" || exit 1; find ./bin ./sbin ./usr/bin ./usr/sbin ./usr/local/bin ./usr/local/sbin \
    -maxdepth 1 \( -name rustc -o -name cargo -o -name rustup -o -name 'gcc*' -o -name cc \
    -o -name 'c++' -o -name 'g++*' -o -name cpp -o -name 'cpp-[0-9]*' -o -name 'clang*' -o -name ld -o -name 'ld.bfd' \
    -o -name 'ld.gold' -o -name 'ld.lld' \
    -o -name as -o -name make -o -name '*-linux-gnu-*' \) -print 2> /dev/null; true)
  [ -z "$found" ] || fail "the runtime image holds build tools: $found"
  found=$(cd "$WORK/fs" && find . \( -name '*.secret' -o -name '*secret*' -o -name '.*_history' \
    -o -name 'config.toml' -o -name 'demo.toml' -o -name '.git' -o -name 'Cargo.toml' \) -print)
  [ -z "$found" ] || fail "the runtime image holds files it should not: $found"
  [ -z "$(ls -A "$WORK/fs/run/secrets" 2> /dev/null)" ] || fail "the image has files in /run/secrets"
  # The fake cloud's client secret is compiled into the binary (it serves the fake cloud);
  # anywhere else, in a file, the environment, a label or the history, it would be a leak.
  local secret=$SECRET_VALUE
  found=$(grep -rlF --exclude=report-archiver "$secret" "$WORK/fs" || true)
  [ -z "$found" ] || fail "the fake client secret is in the image: $found"
  if "${PODMAN[@]}" image inspect "$IMAGE" | grep -iE "$secret|(SECRET|TOKEN|PASSWORD)[A-Z_]*=" \
    || "${PODMAN[@]}" history --no-trunc --format '{{.CreatedBy}}' "$IMAGE" \
    | grep -iE "$secret|(SECRET|TOKEN|PASSWORD)[A-Z_]*="; then
    fail "a secret-looking value is in the image's config or history (above)"
  fi
  [ -x "$WORK/fs/usr/local/bin/report-archiver" ] || fail "no /usr/local/bin/report-archiver in the image"
  printf 'binary in the image: %s bytes\n' "$(stat -c %s "$WORK/fs/usr/local/bin/report-archiver")"
  rm -rf "$WORK/fs"
  ok "image: runs as 10001:10001, HEALTHCHECK runs 'report-archiver health', no compiler or build tree, no secret in files, env, labels or history"
}

# 73 saved items (one more flips to saved after a few listings, one is failed in the cloud);
# 300 ms per response makes a pass last long enough to stop it mid-way.
start_fake_cloud "$BIN" "$WORK" --latency 300ms
SECRET_VALUE=$(cat "$WORK/fake.secret")
check_image

# ---- run it against the fake cloud ---------------------------------------------------------

# The config an operator writes from config.toml.example: the account's URL and client id,
# and a schedule every 5 s so the test does not wait an hour for the next pass.
make_config() {
  sed -e "s#^base_url = .*#base_url = \"$FAKE_URL\"#" \
    -e "s#^client_id = .*#client_id = \"$FAKE_CLIENT_ID\"#" \
    -e 's#^schedule = .*#schedule = "*/5 * * * * *"#' \
    "$ROOT/deploy/docker/config.toml.example" > "$1"
  grep -q "$FAKE_URL" "$1" || fail "could not point $1 at the fake cloud"
}
make_config "$WORK/config.toml"
chmod 0644 "$WORK/config.toml"
# README: the secret file readable by uid 10001 only.
printf '%s' "$SECRET_VALUE" > "$WORK/eu2.secret"
chown 10001:10001 "$WORK/eu2.secret"
chmod 0400 "$WORK/eu2.secret"

NAME=report-archiver-test-$$
VOLUME=report-archiver-test-data-$$
PORT=$(free_port)
on_exit "${PODMAN[*]}" volume rm -f "$VOLUME"
on_exit "${PODMAN[*]}" rm -f -v -t 0 "$NAME"

# README "Docker": `docker run -d --name report-archiver --read-only --tmpfs /tmp --cap-drop ALL
# --security-opt no-new-privileges -v report-archiver-data:/data -v config -v secret
# -p 127.0.0.1:9754:9754 report-archiver`. Here --network host instead of -p (the fake cloud
# is on the host's loopback), and the endpoint moved to a free loopback port.
"${PODMAN[@]}" run -d --name "$NAME" "${LIMITS[@]}" --read-only --tmpfs /tmp --cap-drop ALL \
  --security-opt no-new-privileges -v "$VOLUME:/data" \
  -v "$WORK/config.toml:/etc/report-archiver/config.toml:ro" \
  -v "$WORK/eu2.secret:/run/secrets/eu2:ro" \
  --network host -e "REPORT_ARCHIVER__SERVER__LISTEN=127.0.0.1:$PORT" \
  -e "REPORT_ARCHIVER_HEALTH_URL=http://127.0.0.1:$PORT/healthz" \
  "$IMAGE" > /dev/null
DATA=$("${PODMAN[@]}" volume inspect --format '{{.Mountpoint}}' "$VOLUME")

logs() { "${PODMAN[@]}" logs "$NAME" 2>&1; }
echo "note: podman logs 'unable to get systemd connection to add healthchecks' here: its periodic"
echo "      health checks need systemd on the host; 'podman healthcheck run' below runs them."
archived_lines() { logs | grep -c ': archived ' || true; }
running() { [ "$("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$NAME")" = true ]; }

# The daemon itself: PID 1 of the container, uid 10001, no capabilities, no new privileges,
# root filesystem read-only.
check_process() {
  local status
  status=$("${PODMAN[@]}" exec "$NAME" cat /proc/1/status)
  grep -qE '^Uid:\s+10001\s+10001\s+10001\s+10001$' <<< "$status" || fail "PID 1 does not run as uid 10001: $(grep ^Uid <<< "$status")"
  grep -qE '^Gid:\s+10001\s' <<< "$status" || fail "PID 1 does not run as gid 10001"
  grep -qE '^CapEff:\s+0+$' <<< "$status" || fail "PID 1 has capabilities: $(grep ^Cap <<< "$status")"
  grep -qE '^NoNewPrivs:\s+1$' <<< "$status" || fail "no_new_privs is not set"
  [ "$("${PODMAN[@]}" exec "$NAME" cat /proc/1/comm)" = report-archiver ] || fail "PID 1 is not report-archiver"
  if "${PODMAN[@]}" exec "$NAME" touch /usr/local/bin/probe 2> "$WORK/ro.txt"; then
    fail "the root filesystem is writable"
  fi
  grep -q 'Read-only file system' "$WORK/ro.txt" || fail "writing to / failed, but not as read-only: $(cat "$WORK/ro.txt")"
  ok "daemon is PID 1 as uid/gid 10001, no capabilities, no_new_privs, read-only root"
}
wait_for 30 "the container to run" running
check_process

# Stop mid-pass: SIGTERM while downloads are in flight; they finish within the grace period,
# the daemon exits 0 and leaves no partial file.
stop_and_check() {
  local what=$1 start end code
  start=$(date +%s)
  "${PODMAN[@]}" stop -t "$GRACE" "$NAME" > /dev/null
  end=$(date +%s)
  code=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$NAME")
  [ "$code" = 0 ] || { logs | tail -n 20 >&2; fail "$what: exit code $code after podman stop (137 = killed)"; }
  [ $((end - start)) -lt "$GRACE" ] || fail "$what: stop took $((end - start))s, not under ${GRACE}s"
  logs | tail -n 30 | contains 'SIGTERM received' || fail "$what: the daemon did not log SIGTERM"
  local partial
  partial=$(find "$DATA/archive/.partial" -type f 2> /dev/null | awk 'NR <= 5')
  [ -z "$partial" ] || fail "$what: partial files left: $partial"
  ok "$what: podman stop -> SIGTERM -> exit 0 in $((end - start))s (grace ${GRACE}s), no .partial file"
}
# shellcheck disable=SC2317 # called through wait_for
some_archived() { [ "$(archived_lines)" -ge 1 ]; }
wait_for 60 "a first archived file" some_archived
stop_and_check "stop mid-pass (after $(archived_lines) archived file(s))"
logs | contains 'stopping: no new passes' || fail "the daemon did not drain on SIGTERM"
first_run=$(archived_lines)

# Complete: every item the cloud lists as saved is in the ledger, and the files on disk are
# exactly the ledger's, with its SHA-256s.
all_archived() {
  "${PODMAN[@]}" exec "$NAME" report-archiver reports --json > "$WORK/reports.json" 2> /dev/null || return 1
  python3 - "$WORK/reports.json" << 'EOF'
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if not r["stores_nothing"]]
saved = sum(r["saved"] for r in rows)
done = sum(r["archived"] for r in rows)
print(f"{done} of {saved} saved items archived")
sys.exit(0 if rows and saved == done and all(r["saved"] == r["archived"] for r in rows) else 1)
EOF
}
check_archive() {
  local what=$1 rows files
  "${PODMAN[@]}" exec "$NAME" report-archiver ledger export --format sha256sum > "$WORK/SHA256SUMS"
  rows=$(wc -l < "$WORK/SHA256SUMS")
  [ "$rows" -gt 0 ] || fail "$what: the ledger is empty"
  (cd "$DATA/archive" && sha256sum --quiet -c "$WORK/SHA256SUMS") || fail "$what: SHA-256 mismatch against the ledger"
  files=$(find "$DATA/archive" -path "$DATA/archive/.partial" -prune -o -type f -print | wc -l)
  [ "$files" = "$rows" ] || fail "$what: $files files on disk, $rows ledger rows"
  ok "$what: $rows files, SHA-256 of every one matches the ledger, no file outside it"
}
"${PODMAN[@]}" start "$NAME" > /dev/null
wait_for 120 "every saved item archived" all_archived
all_archived
check_archive "after restart"
total=$(wc -l < "$WORK/SHA256SUMS")
[ "$first_run" -lt "$total" ] || fail "the first stop came after the pass had finished: not a stop mid-pass"
ok "the stop came mid-pass: $first_run of $total files archived before it, the rest after the restart"

# Health: `podman healthcheck run` executes the image's HEALTHCHECK (report-archiver health).
"${PODMAN[@]}" healthcheck run "$NAME" > "$WORK/health.txt" 2>&1 || { cat "$WORK/health.txt" >&2; fail "podman healthcheck run: unhealthy"; }
status=$("${PODMAN[@]}" inspect --format '{{.State.Health.Status}}' "$NAME" 2> /dev/null \
  || "${PODMAN[@]}" inspect --format '{{.State.Healthcheck.Status}}' "$NAME")
[ "$status" = healthy ] || fail "health status is '$status'"
ok "podman healthcheck run: healthy"

stop_and_check "stop after a complete pass"
cp "$WORK/SHA256SUMS" "$WORK/SHA256SUMS.before"

# Restart: the pass at start (and the next ones, every 5 s) fetch nothing: same ledger, same
# files, and the process's counter of archived files stays 0.
passes_ok() {
  curl -fsS "http://127.0.0.1:$PORT/metrics" > "$WORK/metrics.txt" || return 1
  grep -qE '^report_archiver_passes_total\{[^}]*outcome="ok"[^}]*\} [1-9]' "$WORK/metrics.txt"
}
"${PODMAN[@]}" start "$NAME" > /dev/null
wait_for 60 "a pass after the restart" passes_ok
archived_after=$(awk '/^report_archiver_files_archived_total\{/ { n += $2 } END { print n + 0 }' "$WORK/metrics.txt")
[ "$archived_after" = 0 ] || fail "the restarted daemon archived $archived_after file(s) again"
check_archive "after a second restart"
diff -q "$WORK/SHA256SUMS.before" "$WORK/SHA256SUMS" > /dev/null || fail "the ledger changed across the restart"
ok "restart: a pass ran, archived nothing, ledger and files unchanged"
stop_and_check "final stop"
"${PODMAN[@]}" rm -v "$NAME" > /dev/null

# ---- compose -------------------------------------------------------------------------------
# podman-compose 1.6.0 (PyPI, into target/tools like moto): Debian 12's 1.0.3 has no `config`
# and ignores the top-level `name:`; Debian's docker-compose 1.29 rejects `name:`.
PC=${CARGO_TARGET_DIR:-$ROOT/target}/tools/podman-compose/bin/podman-compose
# On this machine: runc and the ulimits, and the build flags used above; compose.test.yaml puts
# the service on the host network (the fake cloud is on the host's loopback) and its endpoint
# on a free loopback port ($RA_TEST_LISTEN).
PC_ARGS=(--podman-args "--runtime runc"
  --podman-build-args "--format docker --network host --pull=never ${LIMITS[*]}"
  --podman-run-args "${LIMITS[*]}")
# shellcheck disable=SC2317 # also called from the exit trap
compose() {
  (cd "$ROOT/deploy/docker" && "$PC" "${PC_ARGS[@]}" -f compose.yaml -f "$ROOT/deploy/test/compose.test.yaml" "$@")
}
compose_test() {
  if [ ! -x "$PC" ]; then
    python3 -m venv "${PC%/bin/podman-compose}"
    "${PC%/podman-compose}/pip" install --quiet --disable-pip-version-check "podman-compose==${PODMAN_COMPOSE_VERSION:-1.6.0}"
  fi
  local port c
  port=$(free_port)
  export RA_TEST_LISTEN="127.0.0.1:$port"
  # README "With compose": config.toml and eu2.secret next to compose.yaml.
  on_exit rm -f "$ROOT/deploy/docker/config.toml" "$ROOT/deploy/docker/eu2.secret"
  make_config "$ROOT/deploy/docker/config.toml"
  printf '%s' "$SECRET_VALUE" > "$ROOT/deploy/docker/eu2.secret"
  chown 10001:10001 "$ROOT/deploy/docker/eu2.secret"
  chmod 0400 "$ROOT/deploy/docker/eu2.secret"
  on_exit compose down -v -t 5

  (cd deploy/docker && "$PC" -f compose.yaml config) > "$WORK/compose-config.yaml" \
    || fail "podman-compose config rejects compose.yaml"
  grep -q 'read_only: true' "$WORK/compose-config.yaml" || fail "compose config lost read_only"
  ok "podman-compose config: compose.yaml parses"
  compose up -d --build > "$STATE/compose-up.log" 2>&1 \
    || { tail -n 30 "$STATE/compose-up.log" >&2; fail "podman-compose up failed (log: $STATE/compose-up.log)"; }
  c=$("${PODMAN[@]}" ps -a --filter label=com.docker.compose.project=report-archiver --format '{{.Names}}')
  [ -n "$c" ] || fail "podman-compose up started no container"
  NAME=$c
  wait_for 30 "the compose container to run" running
  check_process
  "${PODMAN[@]}" inspect --format '{{json .HostConfig.Tmpfs}}' "$c" | contains '"/tmp":"size=64m,mode=1777' \
    || fail "compose: no 64m tmpfs on /tmp: $("${PODMAN[@]}" inspect --format '{{json .HostConfig.Tmpfs}}' "$c")"
  "${PODMAN[@]}" exec "$c" test -r /run/secrets/eu2 || fail "compose: the secret is not at /run/secrets/eu2"
  # stop_grace_period is applied by `podman-compose stop`/`down` as `podman stop -t 45`.
  compose --verbose --dry-run stop 2>&1 | contains "podman stop .*-t 45 $c$" \
    || fail "compose: stop does not give the 45 s grace period"
  wait_for 120 "compose: every saved item archived" all_archived
  "${PODMAN[@]}" healthcheck run "$c" > /dev/null || fail "compose: unhealthy"
  DATA=$("${PODMAN[@]}" volume inspect --format '{{.Mountpoint}}' report-archiver_archive-data)
  check_archive "compose"
  logs | contains '"message":"archived"' || fail "compose: logs are not JSON (REPORT_ARCHIVER__LOG__FORMAT=json)"
  compose stop > /dev/null 2>&1
  [ "$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$c")" = 0 ] || fail "compose stop: exit code not 0"
  ok "compose: up --build, runs read-only as 10001 with the file secret and a 64m /tmp, archives everything, healthy, JSON logs, stop (-t 45) exits 0"
  compose down -v -t 5 > /dev/null 2>&1
  [ -z "$("${PODMAN[@]}" ps -a -q --filter label=com.docker.compose.project=report-archiver)" ] || fail "compose down left a container"
  if "${PODMAN[@]}" volume exists report-archiver_archive-data; then fail "compose down -v left the volume"; fi
  ok "compose down -v: container and volume gone"
}
timed "container: compose up, checks, down" compose_test

print_times
echo "container: ok"
