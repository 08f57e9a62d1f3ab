# shellcheck shell=bash
# Shared by deploy/test/container.sh and deploy/test/systemd.sh (sourced, not run).
#
# What it gives them: the podman command line this machine kind needs, local base images
# made from Debian's archive (no container registry is reachable), a fake cloud on the host's
# loopback, bounded waits, timings, and cleanup of everything a script started.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Caches and scratch files of these tests; under target/ so `cargo clean` removes them.
STATE=${DEPLOY_TEST_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/deploy-test}
mkdir -p "$STATE"

# crun fails on this machine kind's hybrid cgroup layout ("cgroups in hybrid mode not
# supported"), and podman's default rlimits are above what the machine allows.
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1000:1000)

DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
# Bumped when ensure_debian_image's recipe changes, so a cached base made by an older one is
# made again (the builder and systemd images on top are kept: they do not depend on it).
BASE_RECIPE=2
SYSTEMD_IMAGE=localhost/report-archiver-test/systemd:bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

say() { printf '== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

# Timings: `timed NAME cmd…` runs cmd and records how long it took, printed at the end by
# print_times (and appended to $STATE/times.txt, which .ci/run prints in its summary).
declare -a TIMES=()
timed() {
  local name=$1 start end
  shift
  start=$(date +%s)
  "$@"
  end=$(date +%s)
  TIMES+=("$(printf '%-44s %4ss' "$name" "$((end - start))")")
  printf 'time: %s %ss\n' "$name" "$((end - start))"
  printf '%s\t%s\n' "$name" "$((end - start))" >> "$STATE/times.txt"
}
print_times() {
  local line
  say "timings of ${0##*/}"
  for line in "${TIMES[@]}"; do printf '  %s\n' "$line"; done
}

# Cleanup: scripts register commands with on_exit; they run in reverse order on any exit.
declare -a CLEANUP=()
on_exit() { CLEANUP+=("$*"); }
run_cleanup() {
  local rc=$? i
  set +e
  for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do
    eval "${CLEANUP[i]}" > /dev/null 2>&1
  done
  return "$rc"
}
trap run_cleanup EXIT

# Pipelines run under pipefail: `cmd | grep -q X` fails when grep exits at the first match and
# cmd gets SIGPIPE. These read all of their input first.
# `… | contains REGEX`: the input has a line matching REGEX (grep's basic syntax).
contains() {
  local all
  all=$(cat)
  grep -q -- "$1" <<< "$all"
}
# `… | first_match TEXT`: the first line holding TEXT (a plain string).
first_match() { awk -v text="$1" 'index($0, text) && !n++'; }

# `wait_for SECONDS WHAT cmd…`: polls cmd every second until it succeeds; fails after SECONDS.
wait_for() {
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit; i++)); do
    if "$@" > /dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  fail "timed out after ${limit}s waiting for: $what"
}

# A free TCP port on 127.0.0.1 (the kernel picks it; a tiny race is acceptable in a test).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Podman usable here? Sets SKIP_REASON and returns 1 when it is not. With
# REQUIRE_DEPLOY_TESTS=1 (.ci/run sets it under CI=true) a missing engine is a failure.
podman_ready() {
  SKIP_REASON=
  if [ "$(id -u)" != 0 ]; then
    SKIP_REASON="not root (podman storage, debootstrap and systemd-in-a-container need root)"
  elif ! command -v podman > /dev/null || ! command -v runc > /dev/null || ! command -v debootstrap > /dev/null; then
    SKIP_REASON="podman, runc or debootstrap missing (apt-get install podman runc debootstrap)"
  elif ! "${PODMAN[@]}" info > "$STATE/podman-info.txt" 2>&1; then
    SKIP_REASON="\`podman info\` fails: $(tail -n 1 "$STATE/podman-info.txt")"
  fi
  [ -z "$SKIP_REASON" ]
}
skip_or_fail() {
  if [ "${REQUIRE_DEPLOY_TESTS:-0}" = 1 ]; then
    fail "podman cannot run here: $SKIP_REASON (REQUIRE_DEPLOY_TESTS=1)"
  fi
  printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n'
  printf 'skipped: %s: %s\n' "${0##*/}" "$SKIP_REASON"
  printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n'
  exit 0
}

# The Dockerfile's ARG default, e.g. dockerfile_arg RUST_VERSION -> 1.95.
dockerfile_arg() {
  sed -n "s/^ARG $1=//p" "$ROOT/deploy/docker/Dockerfile" | head -n 1
}

# `slim_rootfs DIR`: refuses anything but a debootstrap tree under $STATE, so a mistake can
# never point it at the host's own /usr.
slim_rootfs() {
  local dir=$1
  case "$dir" in
    "$STATE"/rootfs.*) ;;
    *) fail "slim_rootfs: refusing '$dir' (not a rootfs under $STATE)" ;;
  esac
  { [ -f "$dir/etc/debian_version" ] && [ -d "$dir/etc/dpkg/dpkg.cfg.d" ]; } || fail "slim_rootfs: $dir is not a debootstrap tree"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/lintian/*' 'path-exclude /usr/share/linda/*' 'path-exclude /usr/share/locale/*' \
    > "$dir/etc/dpkg/dpkg.cfg.d/docker"
  # As in Debian's images: apt keeps no .deb files and no package caches in the layers.
  printf '%s\n' \
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
    'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' > "$dir/etc/apt/apt.conf.d/docker-clean"
  printf '%s\n' 'Acquire::Languages "none";' > "$dir/etc/apt/apt.conf.d/docker-no-languages"
  rm -f "$dir"/var/cache/apt/*.bin
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  local sub
  for sub in man groff info lintian linda locale; do
    if [ -d "$dir/usr/share/$sub" ]; then
      find "$dir/usr/share/$sub" -mindepth 1 -delete
    fi
  done
}

# docker.io/library/debian:bookworm-slim, made locally from Debian's archive once and kept
# (an existing image of that name, e.g. a real pull, is used as it is).
ensure_debian_image() {
  if "${PODMAN[@]}" image exists "$DEBIAN_IMAGE"; then
    local have
    have=$("${PODMAN[@]}" image inspect --format '{{ index .Labels "org.report-archiver.test.base" }}' "$DEBIAN_IMAGE" 2> /dev/null || true)
    if [ "$have" = "$BASE_RECIPE" ]; then
      ok "base image $DEBIAN_IMAGE present (cached)"
      return 0
    elif ! "${PODMAN[@]}" history --no-trunc --format '{{.Comment}}' "$DEBIAN_IMAGE" | grep -q 'deploy/test/lib.sh'; then
      ok "base image $DEBIAN_IMAGE present (not made here: used as it is)"
      return 0
    fi
    printf 'base image %s was made by an older recipe (%s): made again\n' "$DEBIAN_IMAGE" "${have:-none}"
  fi
  local dir
  dir=$(mktemp -d "$STATE/rootfs.XXXXXX")
  on_exit rm -rf "$dir"
  debootstrap --variant=minbase bookworm "$dir" "$DEBIAN_MIRROR" > "$STATE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$STATE/debootstrap.log" >&2; fail "debootstrap failed (log: $STATE/debootstrap.log)"; }
  # Slim it the way Debian's -slim images are: no package cache or lists, no docs, man pages
  # or translations, and dpkg told to skip those for later installs too. Then the size of
  # the image built on it is close to what the real base gives.
  slim_rootfs "$dir"
  tar -C "$dir" -c . | "${PODMAN[@]}" import --change 'CMD ["bash"]' \
    --change "LABEL org.report-archiver.test.base=$BASE_RECIPE" \
    --message "debootstrap --variant=minbase bookworm (deploy/test/lib.sh)" - "$DEBIAN_IMAGE" \
    > "$STATE/import.log" 2>&1 || { cat "$STATE/import.log" >&2; fail "podman import failed"; }
  rm -rf "$dir"
  ok "base image $DEBIAN_IMAGE made by debootstrap"
}

# docker.io/library/rust:<RUST_VERSION>-slim-<DEBIAN_RELEASE>, the Dockerfile's builder base,
# made from this machine's toolchain (rustup cannot download one here) on the image above,
# with what the official slim image has (gcc, libc6-dev, ca-certificates) and the host's CA
# bundle, which alone holds the CA of the proxy crates.io is reached through. Rebuilt when
# the host toolchain changes.
ensure_rust_image() {
  local version release name sysroot want have ctx
  version=$(dockerfile_arg RUST_VERSION)
  release=$(dockerfile_arg DEBIAN_RELEASE)
  name="docker.io/library/rust:${version}-slim-${release}"
  want=$(rustc --version)
  local rust_release
  rust_release=$(rustc --version | cut -d" " -f2)
  case "$want" in
    "rustc $version"*) ;;
    *) printf 'warning: the Dockerfile asks for Rust %s, the builder image gets this machine'"'"'s %s\n' "$version" "$want" ;;
  esac
  if "${PODMAN[@]}" image exists "$name"; then
    have=$("${PODMAN[@]}" image inspect --format '{{ index .Labels "org.report-archiver.test.toolchain" }}' "$name" 2> /dev/null || true)
    if [ "$have" = "$want" ] || [ "$have" = "<no value>" ]; then
      ok "builder image $name present (cached; ${have/<no value>/not made here})"
      return 0
    fi
  fi
  sysroot=$(rustc --print sysroot)
  ctx=$(mktemp -d "$STATE/rust-ctx.XXXXXX")
  on_exit rm -rf "$ctx"
  mkdir "$ctx/toolchain"
  # Hard links when on the same filesystem (cheap), copies otherwise; no docs, no sources.
  cp -al "$sysroot/bin" "$sysroot/lib" "$ctx/toolchain/" 2> /dev/null \
    || cp -a "$sysroot/bin" "$sysroot/lib" "$ctx/toolchain/"
  if [ -d "$sysroot/libexec" ]; then cp -a "$sysroot/libexec" "$ctx/toolchain/"; fi
  rm -rf "$ctx/toolchain/lib/rustlib/src"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca-certificates.crt"
  cat > "$ctx/Containerfile" << EOF
FROM $DEBIAN_IMAGE
RUN apt-get update \\
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
    && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
COPY host-ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    RUST_VERSION=${rust_release}
LABEL org.report-archiver.test.toolchain="$want"
EOF
  "${PODMAN[@]}" build --pull=never --network host "${LIMITS[@]}" -t "$name" -f "$ctx/Containerfile" "$ctx" \
    > "$STATE/rust-image.log" 2>&1 \
    || { tail -n 20 "$STATE/rust-image.log" >&2; fail "building $name failed (log: $STATE/rust-image.log)"; }
  rm -rf "$ctx"
  ok "builder image $name made from $want"
}

# A systemd-as-PID-1 image: the Debian image plus systemd, systemd-sysv and dbus, with the
# units masked that would reach past the container into the host when it runs --privileged
# (sysctl, kernel modules, binfmt, udev, the clock, gettys on the host's ttys, pstore).
ensure_systemd_image() {
  if "${PODMAN[@]}" image exists "$SYSTEMD_IMAGE"; then
    ok "systemd image $SYSTEMD_IMAGE present (cached)"
    return 0
  fi
  local ctx
  ctx=$(mktemp -d "$STATE/systemd-ctx.XXXXXX")
  on_exit rm -rf "$ctx"
  cat > "$ctx/Containerfile" << EOF
FROM $DEBIAN_IMAGE
RUN apt-get update \\
    && apt-get install -y --no-install-recommends systemd systemd-sysv dbus \\
    && rm -rf /var/lib/apt/lists/*
RUN systemctl mask systemd-sysctl.service systemd-modules-load.service \\
      systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \\
      systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service \\
      systemd-timesyncd.service systemd-pstore.service systemd-hwdb-update.service \\
      kmod-static-nodes.service systemd-tmpfiles-setup-dev.service systemd-remount-fs.service \\
      sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \\
      sys-fs-fuse-connections.mount getty.target console-getty.service \\
      systemd-networkd.service systemd-resolved.service systemd-firstboot.service
CMD ["/sbin/init"]
EOF
  "${PODMAN[@]}" build --pull=never --network host "${LIMITS[@]}" -t "$SYSTEMD_IMAGE" -f "$ctx/Containerfile" "$ctx" \
    > "$STATE/systemd-image.log" 2>&1 \
    || { tail -n 20 "$STATE/systemd-image.log" >&2; fail "building $SYSTEMD_IMAGE failed (log: $STATE/systemd-image.log)"; }
  rm -rf "$ctx"
  ok "systemd image $SYSTEMD_IMAGE made"
}

# `start_systemd_container NAME`: systemd as PID 1 of a fresh container from $SYSTEMD_IMAGE,
# on the host's network (the fake cloud is on its loopback), removed on exit. Waits until
# systemd has booted, then makes / a shared mount as systemd does on a host (LoadCredential=
# needs it; a container's root starts private).
start_systemd_container() {
  local name=$1 state
  on_exit "${PODMAN[*]}" rm -f -t 10 "$name"
  "${PODMAN[@]}" run -d --name "$name" --privileged --systemd=always --network host \
    "${LIMITS[@]}" "$SYSTEMD_IMAGE" > /dev/null
  # shellcheck disable=SC2317 # called through wait_for
  booted() {
    state=$("${PODMAN[@]}" exec "$name" systemctl is-system-running 2> /dev/null || true)
    [ "$state" = running ] || [ "$state" = degraded ]
  }
  wait_for 90 "systemd to boot in $name" booted
  if [ "$state" = degraded ]; then
    printf 'note: systemd in %s is degraded; failed units:\n' "$name"
    "${PODMAN[@]}" exec "$name" systemctl --failed --no-legend || true
  fi
  "${PODMAN[@]}" exec "$name" mount --make-rshared /
  ok "systemd $("${PODMAN[@]}" exec "$name" systemctl --version | awk 'NR == 1 { print $2 }') is PID 1 in $name ($state)"
}

# `start_fake_cloud BIN DIR [ARGS…]`: the built-in fake cloud on 127.0.0.1:<free port>, its
# secret in DIR/fake.secret. Sets FAKE_PORT and FAKE_URL; stopped on exit.
start_fake_cloud() {
  local bin=$1 dir=$2 pid
  shift 2
  FAKE_PORT=$(free_port)
  FAKE_URL="http://127.0.0.1:$FAKE_PORT"
  "$bin" fake-cloud --listen "127.0.0.1:$FAKE_PORT" --secret-file "$dir/fake.secret" "$@" \
    > "$dir/fake-cloud.log" 2>&1 &
  pid=$!
  on_exit kill "$pid"
  wait_for 30 "the fake cloud on $FAKE_URL" grep -q 'listening on' "$dir/fake-cloud.log"
  # shellcheck disable=SC2034 # used by the scripts that source this file
  FAKE_CLIENT_ID=$(sed -n 's/^client_id = "\(.*\)"$/\1/p' "$dir/fake-cloud.log")
}
