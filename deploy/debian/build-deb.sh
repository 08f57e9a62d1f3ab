#!/usr/bin/env bash
# Builds the Debian package: target/debian/report-archiver_<version>-1_<arch>.deb
#
#   cargo install cargo-deb --locked     # once
#   bash deploy/debian/build-deb.sh
#
# cargo-deb packs files; what the binary prints (its man page and shell completions) and the
# unit with the package's binary path are made here first, into target/debian-assets/
# (Cargo.toml's [package.metadata.deb] names them). Then `cargo deb --no-build` packs the
# release binary built just before.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release --locked
bin=${CARGO_TARGET_DIR:-target}/release/report-archiver
assets=target/debian-assets
rm -rf "$assets"
mkdir -p "$assets/completions" "$assets/man"
# One page per command (report-archiver.1, report-archiver-run.1, …).
"$bin" man --dir "$assets/man" > /dev/null
gzip -9n "$assets"/man/*.1
"$bin" completions bash > "$assets/completions/report-archiver"
"$bin" completions zsh > "$assets/completions/_report-archiver"
"$bin" completions fish > "$assets/completions/report-archiver.fish"
# The same unit as a manual install, with the binary where the package puts it.
sed 's#/usr/local/bin/report-archiver#/usr/bin/report-archiver#g' \
  deploy/systemd/report-archiver.service > "$assets/report-archiver.service"
if grep -q /usr/local "$assets/report-archiver.service"; then
  echo "build-deb.sh: the packaged unit still names /usr/local" >&2
  exit 1
fi
if [ "${CARGO_TARGET_DIR:-target}" != target ]; then
  # cargo-deb finds the binary in the target dir itself; the assets above are repo-relative.
  echo "note: CARGO_TARGET_DIR=$CARGO_TARGET_DIR; the package's other assets come from ./target/debian-assets"
fi
cargo deb --no-build "$@"
