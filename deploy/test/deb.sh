#!/usr/bin/env bash
# The Debian package, installed the way README "Install" says on a bare Debian 12 whose PID 1
# is systemd (a container): install, no start without a config, configure and start, archive
# from the built-in fake cloud on the host's loopback, then dpkg -r, dpkg --purge and a
# reinstall, none of which may lose the archive or the ledger.
#
#   bash deploy/debian/build-deb.sh && bash deploy/test/deb.sh      (root; .ci/run runs both)
#
# Env: DEB (the package; default the newest target/debian/report-archiver_*.deb),
# REPORT_ARCHIVER_BIN (host binary serving the fake cloud; default target/release),
# REQUIRE_DEPLOY_TESTS=1 (fail instead of skipping when podman cannot run here).
set -euo pipefail
# shellcheck source=deploy/test/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

podman_ready || skip_or_fail

DEB=${DEB:-$(find target/debian -maxdepth 1 -name 'report-archiver_*.deb' -printf '%T@ %p\n' 2> /dev/null | sort -n | tail -n 1 | cut -d' ' -f2-)}
{ [ -n "$DEB" ] && [ -f "$DEB" ]; } || fail "no target/debian/report-archiver_*.deb: run deploy/debian/build-deb.sh first"
BIN=${REPORT_ARCHIVER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/report-archiver}
WORK=$(mktemp -d "$STATE/deb.XXXXXX")
on_exit rm -rf "$WORK"
NAME=report-archiver-deb-$$
printf 'package: %s, %s bytes\n' "$DEB" "$(stat -c %s "$DEB")"
dpkg-deb --info "$DEB" | sed -n 's/^ \(Package\|Version\|Depends\|Installed-Size\):/  \1:/p'
# The maintainer scripts as packed: valid sh, cargo-deb's systemd snippets in each exactly once.
dpkg-deb -e "$DEB" "$WORK/control"
for script in postinst prerm postrm; do
  sh -n "$WORK/control/$script" || fail "$script is not valid sh"
  [ "$(grep -c 'Automatically added by cargo-deb' "$WORK/control/$script")" -ge 1 ] || fail "$script has no systemd snippet"
done
[ "$(grep -c 'systemctl --system daemon-reload' "$WORK/control/postrm")" = 1 ] || fail "postrm has the daemon-reload snippet more than once"
[ "$(grep -c 'deb-systemd-helper enable' "$WORK/control/postinst")" = 1 ] || fail "postinst has the enable snippet more than once"

timed "deb: base images (debian, systemd)" bash -c "
  source '$ROOT/deploy/test/lib.sh'
  ensure_debian_image && ensure_systemd_image"
timed "deb: boot the container" start_systemd_container "$NAME"

in_c() { "${PODMAN[@]}" exec "$NAME" "$@"; }
sh_c() { "${PODMAN[@]}" exec "$NAME" bash -euo pipefail -c "$1"; }
prop() { in_c systemctl show -p "$1" --value report-archiver.service; }

start_fake_cloud "$BIN" "$WORK" --latency 20ms

# A real server's dpkg installs man pages; the slim base image tells it not to.
in_c rm -f /etc/dpkg/dpkg.cfg.d/docker
"${PODMAN[@]}" cp "$DEB" "$NAME:/root/"
deb_name=$(basename "$DEB")

# ---- install -------------------------------------------------------------------------------
install_deb() {
  sh_c "cd /root && apt-get update -q > /dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y ./$deb_name" \
    > "$WORK/install.txt" 2>&1 || { tail -n 30 "$WORK/install.txt" >&2; fail "apt-get install ./$deb_name failed"; }
}
timed "deb: apt-get install ./$deb_name" install_deb
in_c dpkg -s report-archiver | contains '^Status: install ok installed' || fail "not installed"
in_c report-archiver --version | contains '^report-archiver ' || fail "/usr/bin/report-archiver does not run"
[ "$(in_c command -v report-archiver 2> /dev/null || in_c sh -c 'command -v report-archiver')" = /usr/bin/report-archiver ] \
  || fail "the binary is not /usr/bin/report-archiver"
in_c sh -c 'zcat /usr/share/man/man1/report-archiver.1.gz | grep -q "^.TH report-archiver 1"' || fail "no man page"
in_c sh -c 'zcat /usr/share/man/man1/report-archiver-run.1.gz | grep -q "^.SH \"EXIT STATUS\""' \
  || fail "no report-archiver-run(1) page with an EXIT STATUS section"
for f in /usr/share/bash-completion/completions/report-archiver /usr/share/zsh/vendor-completions/_report-archiver \
  /usr/share/fish/vendor_completions.d/report-archiver.fish /usr/share/doc/report-archiver/README.md; do
  in_c test -s "$f" || fail "missing $f"
done
# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
in_c dpkg-query -W -f='${Conffiles}\n' report-archiver | contains '^ /etc/report-archiver/example.toml ' \
  || fail "/etc/report-archiver/example.toml is not a conffile"
in_c grep -q '^ExecStart=/usr/bin/report-archiver --config /etc/report-archiver/config.toml run$' \
  /lib/systemd/system/report-archiver.service || fail "the packaged unit does not start /usr/bin/report-archiver"
ok "installed: /usr/bin/report-archiver, unit, man page, bash/zsh/fish completions, README, example.toml as a conffile"

# No config yet: enabled, not running, skipped on a condition (not failed), and said so.
[ "$(in_c systemctl is-enabled report-archiver)" = enabled ] || fail "not enabled on install"
[ "$(prop ActiveState)" = inactive ] || fail "the service is $(prop ActiveState) without a config"
[ "$(prop ConditionResult)" = no ] || fail "the start was not skipped on ConditionPathExists (ConditionResult=$(prop ConditionResult))"
in_c systemctl status report-archiver > "$WORK/status.txt" 2>&1 || true
grep -q 'ConditionPathExists=/etc/report-archiver/config.toml was not met' "$WORK/status.txt" \
  || fail "systemctl status does not name the missing config: $(cat "$WORK/status.txt")"
grep -q 'not running: it has no configuration yet' "$WORK/install.txt" || fail "the install did not say what to do next"
ok "without a config: enabled, inactive, start skipped ('ConditionPathExists=/etc/report-archiver/config.toml was not met'), install output says what to do"

# ---- configure and start: README "Install", the .deb -------------------------------------
"${PODMAN[@]}" cp "$WORK/fake.secret" "$NAME:/root/the-client-secret"
sh_c "
cp /etc/report-archiver/example.toml /etc/report-archiver/config.toml
sed -i -e 's#^base_url = .*#base_url = \"$FAKE_URL\"#' \
  -e 's#^client_id = .*#client_id = \"$FAKE_CLIENT_ID\"#' /etc/report-archiver/config.toml
install -m 0600 /dev/null /etc/report-archiver/eu2.secret
cat /root/the-client-secret > /etc/report-archiver/eu2.secret
systemctl start report-archiver"
[ "$(prop ActiveState)/$(prop SubState)" = active/running ] \
  || { in_c journalctl -u report-archiver --no-pager | tail -n 20 >&2; fail "not running after systemctl start"; }
# shellcheck disable=SC2317 # called through wait_for
pass_done() { in_c journalctl -u report-archiver --no-pager -o cat | contains 'pass finished'; }
wait_for 60 "the first pass" pass_done
in_c journalctl -u report-archiver --no-pager -o cat | first_match 'pass finished' | contains 'fetched=[1-9]' \
  || fail "the first pass fetched nothing: $(in_c journalctl -u report-archiver --no-pager -o cat | grep 'pass finished')"
verify_archive() {
  local what=$1 rows
  in_c report-archiver ledger --ledger /var/lib/private/report-archiver/ledger.db \
    --archive /var/lib/private/report-archiver/archive export --format sha256sum > "$WORK/SHA256SUMS"
  rows=$(wc -l < "$WORK/SHA256SUMS")
  [ "$rows" -gt 0 ] || fail "$what: empty ledger"
  "${PODMAN[@]}" cp "$WORK/SHA256SUMS" "$NAME:/root/SHA256SUMS"
  sh_c 'cd /var/lib/private/report-archiver/archive && sha256sum --quiet -c /root/SHA256SUMS' || fail "$what: SHA-256 mismatch"
  ok "$what: $rows archived files, every SHA-256 matches the ledger"
}
verify_archive "running from the package (config from example.toml, secret via LoadCredential=)"
cp "$WORK/SHA256SUMS" "$WORK/SHA256SUMS.installed"

# ---- dpkg -r: the program goes, the archive, the ledger and the settings stay ---------------
in_c dpkg -r report-archiver > "$WORK/remove.txt" 2>&1 || { cat "$WORK/remove.txt" >&2; fail "dpkg -r failed"; }
cat "$WORK/remove.txt"
in_c test ! -e /usr/bin/report-archiver || fail "dpkg -r left the binary"
in_c test ! -e /lib/systemd/system/report-archiver.service || fail "dpkg -r left the unit"
# As debhelper does: a removed (not purged) package's unit is masked, so nothing starts it.
[ "$(in_c systemctl show -p LoadState --value report-archiver.service)" = masked ] \
  || fail "the unit is $(in_c systemctl show -p LoadState --value report-archiver.service) after dpkg -r, not masked"
in_c dpkg -s report-archiver | contains '^Status: deinstall ok config-files' || fail "not in state config-files after dpkg -r"
for f in /var/lib/private/report-archiver/ledger.db /etc/report-archiver/config.toml /etc/report-archiver/eu2.secret \
  /etc/report-archiver/example.toml; do
  in_c test -e "$f" || fail "dpkg -r removed $f"
done
grep -q '/var/lib/private/report-archiver/archive' "$WORK/remove.txt" || fail "dpkg -r did not say it keeps the archive"
sh_c 'cd /var/lib/private/report-archiver/archive && sha256sum --quiet -c /root/SHA256SUMS' || fail "dpkg -r changed the archive"
ok "dpkg -r: binary and unit gone (unit masked); archive ($(wc -l < "$WORK/SHA256SUMS") files, intact), ledger, config, secret and example.toml kept"

# ---- dpkg --purge: says what it keeps, and keeps it ----------------------------------------
in_c dpkg --purge report-archiver > "$WORK/purge.txt" 2>&1 || { cat "$WORK/purge.txt" >&2; fail "dpkg --purge failed"; }
cat "$WORK/purge.txt"
for f in /var/lib/private/report-archiver/archive /var/lib/private/report-archiver/ledger.db \
  /etc/report-archiver/config.toml /etc/report-archiver/eu2.secret; do
  grep -qF "  $f" "$WORK/purge.txt" || fail "dpkg --purge did not name $f as kept"
  in_c test -e "$f" || fail "dpkg --purge removed $f"
done
in_c test ! -e /etc/report-archiver/example.toml || fail "dpkg --purge left the conffile example.toml"
[ "$(in_c systemctl show -p LoadState --value report-archiver.service)" = not-found ] \
  || fail "the unit is $(in_c systemctl show -p LoadState --value report-archiver.service) after dpkg --purge, not gone"
if in_c dpkg -s report-archiver > /dev/null 2>&1; then fail "still known to dpkg after --purge"; fi
sh_c 'cd /var/lib/private/report-archiver/archive && sha256sum --quiet -c /root/SHA256SUMS' || fail "dpkg --purge changed the archive"
ok "dpkg --purge: package gone, example.toml gone; archive, ledger, config and secret kept and named"

# ---- reinstall: the kept config starts it at once, and it picks up where it was ------------
timed "deb: apt-get install ./$deb_name (again)" install_deb
[ "$(prop ActiveState)/$(prop SubState)" = active/running ] || fail "not running after a reinstall with a config in place"
invocation_log() { in_c journalctl --no-pager -o cat "_SYSTEMD_INVOCATION_ID=$(prop InvocationID)"; }
# shellcheck disable=SC2317 # called through wait_for
reinstalled_pass() { invocation_log | contains 'pass finished'; }
wait_for 60 "a pass after the reinstall" reinstalled_pass
# Nothing the kept ledger holds is fetched again: the pass skips every one of them. (It may
# fetch what the cloud saved since, e.g. the item that was still in progress at first.)
line=$(invocation_log | first_match 'pass finished')
before=$(wc -l < "$WORK/SHA256SUMS.installed")
grep -q " skipped=$before " <<< "$line" || fail "the reinstalled service did not skip the $before archived items: $line"
fetched=$(sed -n 's/.* fetched=\([0-9]*\) .*/\1/p' <<< "$line")
in_c systemctl stop report-archiver
[ "$(prop ExecMainStatus)" = 0 ] || fail "stop: exit status $(prop ExecMainStatus)"
verify_archive "after remove, purge and reinstall"
[ "$(wc -l < "$WORK/SHA256SUMS")" = $((before + fetched)) ] || fail "ledger rows: $(wc -l < "$WORK/SHA256SUMS"), expected $before + $fetched"
[ -z "$(comm -23 <(sort "$WORK/SHA256SUMS.installed") <(sort "$WORK/SHA256SUMS"))" ] || fail "rows of the kept ledger changed"
ok "reinstall: started at once with the kept config; its pass skipped all $before kept items (fetched $fetched new), kept rows unchanged; stop exit 0"

print_times
echo "deb: ok"
