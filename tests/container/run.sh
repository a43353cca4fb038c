#!/usr/bin/env bash
# Builds the container image (Containerfile) with podman and checks it for
# real: it builds, runs as a non-root user, answers /readyz, turns healthy,
# serves a CLI-published update signed with the fixture key, keeps its data
# when the container is recreated on the same volume, and imports a Go
# server's volume mounted read-only (import-go). Every check prints
# PASS or FAIL; any failure exits non-zero. Nothing is skipped.
#
#   tests/container/run.sh                (as root; CI: .ci/run)
#
# Base images: docker.io/library/rust:1.95-slim-bookworm and
# docker.io/library/debian:bookworm-slim are used when present or pullable.
# Otherwise (no registry reachable) local stand-ins are made under exactly
# those names, once: Debian from debootstrap, Rust from this machine's
# toolchain. REBUILD_STANDINS=1 makes them again.
#
# Environment: IMAGE (default expo-updates-server:test), FIXTURES_DIR
# (default tests/fixtures), CONTAINER_TEST_WORK (stand-in work dir,
# default /var/tmp/expo-updates-server-container-test), PULL_TIMEOUT (s, 60),
# READY_TIMEOUT (s, 60), HEALTHY_TIMEOUT (s, 60).
set -euo pipefail
set -o errtrace

cd "$(dirname "$0")/../.."
REPO=$PWD
IMAGE=${IMAGE:-expo-updates-server:test}
RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
RUST_TOOLCHAIN=1.95.0-x86_64-unknown-linux-gnu
STANDIN_LABEL=expo-updates-server.test.stand-in
BUILD_LABEL=expo-updates-server.test.build
WORK_ROOT=${CONTAINER_TEST_WORK:-/var/tmp/expo-updates-server-container-test}
PULL_TIMEOUT=${PULL_TIMEOUT:-60}
READY_TIMEOUT=${READY_TIMEOUT:-60}
HEALTHY_TIMEOUT=${HEALTHY_TIMEOUT:-60}
# This sandbox refuses podman's default limits and crun; docker format keeps HEALTHCHECK.
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

RUN_ID="$$-$RANDOM"
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/eus-container-test.XXXXXX")
DATA_VOLUME=eus-ct-data-$RUN_ID
CONTAINERS=()
VOLUMES=()
CURRENT_CONTAINER=
PHASES=()
PHASE_NAME=
PHASE_START=$SECONDS
TOTAL_START=$SECONDS

# ---------------------------------------------------------------- helpers

say() { printf '%s\n' "$*"; }
pass() { say "PASS: $*"; }

# The last lines of the running server's log, for any failure.
dump_logs() {
    if [ -n "$CURRENT_CONTAINER" ] && podman container exists "$CURRENT_CONTAINER" 2>/dev/null; then
        say "---- podman logs --tail 60 $CURRENT_CONTAINER" >&2
        podman logs --tail 60 "$CURRENT_CONTAINER" >&2 || true
        say "----" >&2
    fi
}

fail() {
    say "FAIL: $*" >&2
    if [ ! -e "$RUN_DIR/failed" ]; then
        touch "$RUN_DIR/failed"
        dump_logs
    fi
    exit 1
}

# A command that failed outside of a check (set -e): say which, never silently.
on_error() {
    [ -e "$RUN_DIR/failed" ] && return
    touch "$RUN_DIR/failed"
    say "FAIL: unexpected error at tests/container/run.sh line $1: $2" >&2
    dump_logs
}
trap 'on_error "$LINENO" "$BASH_COMMAND"' ERR

phase() {
    PHASE_NAME=$1
    PHASE_START=$SECONDS
    say ""
    say "== $1"
}

phase_end() {
    local took=$((SECONDS - PHASE_START))
    say "   ($PHASE_NAME took ${took}s)"
    PHASES+=("$(printf '%-34s %5ss' "$PHASE_NAME" "$took")")
    PHASE_NAME=
}

cleanup() {
    local status=$?
    set +e
    trap - ERR
    local name
    for name in "${CONTAINERS[@]}"; do
        podman rm -f -t 0 "$name" >/dev/null 2>&1
    done
    for name in "${VOLUMES[@]}"; do
        podman volume rm -f "$name" >/dev/null 2>&1
    done
    rm -rf "$RUN_DIR"
    if [ -n "$PHASE_NAME" ]; then
        PHASES+=("$(printf '%-34s %5ss (failed here)' "$PHASE_NAME" $((SECONDS - PHASE_START)))")
    fi
    say ""
    say "== timings"
    for name in "${PHASES[@]}"; do say "   $name"; done
    say "   $(printf '%-34s %5ss' total $((SECONDS - TOTAL_START)))"
    if [ "$status" -eq 0 ]; then
        say "container test: ALL CHECKS PASSED"
    else
        say "container test: FAILED (exit $status)" >&2
    fi
    exit "$status"
}
trap cleanup EXIT

# A free TCP port on 127.0.0.1 (nothing accepts a connection on it).
free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    fail "no free port found on 127.0.0.1"
}

# http METHOD PATH [curl options...]: the status code on stdout, the body in
# $RUN_DIR/http.body, the response headers in $RUN_DIR/http.headers.
http() {
    local method=$1 path=$2
    shift 2
    curl -sS -X "$method" --max-time 30 -o "$RUN_DIR/http.body" -D "$RUN_DIR/http.headers" \
        -w '%{http_code}' "$@" "$URL$path"
}

# new_volume NAME: a named volume that cleanup removes.
new_volume() {
    "${PODMAN[@]}" volume create "$1" >/dev/null || fail "podman volume create $1 failed"
    VOLUMES+=("$1")
}

# start_server NAME [podman run options...]: runs the image detached with the
# volume $DATA_VOLUME on /data, 127.0.0.1:$PORT published and SERVER_ENV, and
# waits until /readyz answers 200. Extra options (more volumes, env) go before
# the image. One server at a time: remove_server the current one first.
start_server() {
    local name=$1
    shift
    CONTAINERS+=("$name")
    CURRENT_CONTAINER=$name
    "${PODMAN[@]}" run -d "${LIMITS[@]}" --name "$name" \
        -p "127.0.0.1:$PORT:8080" -v "$DATA_VOLUME:/data" "${SERVER_ENV[@]}" "$@" \
        "$IMAGE" >/dev/null 2>"$RUN_DIR/podman.err" || {
        cat "$RUN_DIR/podman.err" >&2
        fail "podman run of $name failed"
    }
    without_systemd_noise <"$RUN_DIR/podman.err"
    wait_ready "$name"
}

# remove_server NAME: podman rm -f, as quiet about systemd as start_server.
remove_server() {
    podman rm -f -t 10 "$1" >/dev/null 2>"$RUN_DIR/podman.err" || {
        cat "$RUN_DIR/podman.err" >&2
        fail "podman rm -f $1 failed"
    }
    without_systemd_noise <"$RUN_DIR/podman.err"
}

# Without systemd, podman cannot schedule a HEALTHCHECK and logs errors about
# it on every run and rm of the server; check_healthcheck runs it instead.
without_systemd_noise() {
    local line
    while IFS= read -r line; do
        if [[ $line == *"unable to get systemd connection"* ]]; then
            if [ -z "${SYSTEMD_NOTED:-}" ]; then
                SYSTEMD_NOTED=1
                say "   note: no systemd, so podman cannot schedule the HEALTHCHECK (its errors saying so are hidden); the healthcheck check runs it"
            fi
        else
            printf '%s\n' "$line" >&2
        fi
    done
}

wait_ready() {
    local name=$1 deadline=$((SECONDS + READY_TIMEOUT)) code state
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/readyz" || true)
        [ "$code" = 200 ] && return 0
        state=$(podman inspect --format '{{.State.Status}}' "$name" 2>/dev/null || echo gone)
        [ "$state" = running ] || fail "container $name is $state, /readyz never answered 200"
        [ "$SECONDS" -lt "$deadline" ] ||
            fail "/readyz did not answer 200 within ${READY_TIMEOUT}s (last status: $code)"
        sleep 0.5
    done
}

# cli [podman run options...] -- ARGS...: the image's own binary as the
# command-line client, on the host network, its session kept in CLI_HOME.
cli() {
    local options=()
    while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
        options+=("$1")
        shift
    done
    shift
    "${PODMAN[@]}" run --rm "${LIMITS[@]}" --no-healthcheck --network host \
        -e EXPO_UPDATES_URL="$URL" -e XDG_CONFIG_HOME=/cli -v "$CLI_HOME:/cli:U" \
        --entrypoint /usr/local/bin/expo-updates-server "${options[@]}" "$IMAGE" "$@"
}

# base64url of the SHA-256 of a file, without padding (the manifest's `hash`).
sha256_b64url() {
    openssl dgst -sha256 -binary "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='
}

# fetch_manifest DIR: asks for the manifest as an iOS device on 1.0.0 that
# expects a signature; DIR gets status, content-type, manifest.json (the
# manifest part's exact bytes), signature (its expo-signature header),
# sig.bin (the decoded sig), keyid and parts (the part names).
fetch_manifest() {
    local dir=$1
    mkdir -p "$dir"
    curl -sS --max-time 30 -o "$dir/body" -D "$dir/headers" \
        -w '%{http_code}\n%{content_type}\n' \
        -H 'expo-platform: ios' -H 'expo-runtime-version: 1.0.0' \
        -H 'expo-protocol-version: 1' -H 'accept: multipart/mixed' \
        -H 'expo-expect-signature: sig, keyid="main", alg="rsa-v1_5-sha256"' \
        "$URL/api/updates/$PROJECT/manifest" >"$dir/curl.out" ||
        fail "manifest request failed (curl)"
    sed -n 1p "$dir/curl.out" >"$dir/status"
    sed -n 2p "$dir/curl.out" >"$dir/content-type"
    [ "$(cat "$dir/status")" = 200 ] ||
        fail "manifest: status $(cat "$dir/status"), want 200: $(head -c 300 "$dir/body")"
    grep -qi '^multipart/mixed' "$dir/content-type" ||
        fail "manifest: content-type '$(cat "$dir/content-type")', want multipart/mixed"
    python3 - "$dir" <<'PY' || fail "manifest: the multipart body could not be read (see above)"
import base64, re, sys
from pathlib import Path
d = Path(sys.argv[1])
ctype = (d / "content-type").read_text().strip()
m = re.search(r'boundary="?([^";]+)"?', ctype)
if not m:
    sys.exit(f"no boundary in {ctype!r}")
delim = b"\r\n--" + m.group(1).encode()
segments = (b"\r\n" + (d / "body").read_bytes()).split(delim)
parts, closed = {}, False
for seg in segments[1:]:
    if seg.startswith(b"--"):
        closed = True
        break
    head, sep, content = seg.split(b"\r\n", 1)[1].partition(b"\r\n\r\n")
    if not sep:
        sys.exit("a part without a blank line after its headers")
    headers = {}
    for line in head.decode().split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    name = re.search(r'name="([^"]*)"', headers.get("content-disposition", ""))
    parts[name.group(1) if name else "?"] = (headers, content)
if not closed:
    sys.exit("no closing boundary")
(d / "parts").write_text(" ".join(parts))
if "manifest" not in parts:
    sys.exit(f"no manifest part, parts: {list(parts)}")
headers, content = parts["manifest"]
(d / "manifest.json").write_bytes(content)
signature = headers.get("expo-signature", "")
(d / "signature").write_text(signature)
sig = re.search(r'(?:^|[,\s])sig=(?:"([^"]*)"|:([^:]*):)', signature)
keyid = re.search(r'(?:^|[,\s])keyid="([^"]*)"', signature)
(d / "keyid").write_text(keyid.group(1) if keyid else "")
if sig:
    (d / "sig.bin").write_bytes(base64.b64decode(sig.group(1) or sig.group(2)))
PY
}

# ----------------------------------------------------------------- phases

install_tools() {
    phase "tools"
    local missing=() tool
    for tool in podman runc debootstrap curl jq openssl python3; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        [ "$(id -u)" = 0 ] || fail "missing ${missing[*]}, and installing them needs root"
        say "   installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            podman runc debootstrap curl jq openssl python3 >/dev/null
    fi
    for tool in podman runc debootstrap curl jq openssl python3; do
        command -v "$tool" >/dev/null || fail "$tool is still missing after apt-get install"
    done
    say "   $(podman --version), $(runc --version | head -n1)"
    [ "$(id -u)" = 0 ] || say "   note: not root; the stand-ins (debootstrap) and CI assume root"
    FIXTURES=$(cd "${FIXTURES_DIR:-$REPO/tests/fixtures}" 2>/dev/null && pwd) ||
        fail "fixtures not found at ${FIXTURES_DIR:-$REPO/tests/fixtures}"
    local file
    for file in code-signing/private-key.pem code-signing/public-key.pem \
        expo-sdk56-export-v1/metadata.json; do
        [ -r "$FIXTURES/$file" ] || fail "fixture missing: $FIXTURES/$file"
    done
    cmp -s .containerignore .dockerignore ||
        fail ".containerignore and .dockerignore differ (podman reads one, docker the other)"
    phase_end
}

is_standin() {
    [ "$(podman image inspect --format "{{index .Labels \"$STANDIN_LABEL\"}}" "$1" 2>/dev/null)" = true ]
}

# have_image IMAGE: present, or pulled within PULL_TIMEOUT.
have_image() {
    local image=$1
    if podman image exists "$image"; then
        if is_standin "$image"; then
            say "   $image: present (a local stand-in made by this script)"
        else
            say "   $image: present"
        fi
        return 0
    fi
    say "   $image: not present, pulling (at most ${PULL_TIMEOUT}s)"
    if timeout "$PULL_TIMEOUT" podman pull -q "$image" >"$RUN_DIR/pull.log" 2>&1; then
        say "   $image: pulled"
        return 0
    fi
    say "   $image: pull failed: $(tail -n 1 "$RUN_DIR/pull.log")"
    return 1
}

# The mirror this machine's apt uses for bookworm (deb822 or one-line sources).
debian_mirror() {
    local uri=
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    shopt -s nullglob
    local file
    for file in /etc/apt/sources.list.d/*.sources; do
        uri=$(awk '
            /^[[:space:]]*$/ { if (ok && u != "") { print u; exit } ok = 0; u = "" ; next }
            /^URIs:/ { u = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") ok = 1 }
            END { if (ok && u != "") print u }' "$file" | head -n 1)
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ]; then
        for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' "$file")
            [ -n "$uri" ] && break
        done
    fi
    shopt -u nullglob
    echo "${uri:-http://deb.debian.org/debian}"
}

# debian:bookworm-slim from debootstrap, trusting this machine's local CAs
# (the egress proxy re-signs TLS) and with its apt sources.
make_debian_standin() {
    [ "$(id -u)" = 0 ] || fail "making the Debian stand-in needs root (debootstrap)"
    local mirror rootfs=$WORK_ROOT/debian-rootfs
    mirror=$(debian_mirror)
    say "   making $DEBIAN_IMAGE: debootstrap --variant=minbase bookworm from $mirror"
    rm -rf "$rootfs"
    mkdir -p "$rootfs"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" \
        >"$WORK_ROOT/debootstrap.log" 2>&1 || {
        tail -n 30 "$WORK_ROOT/debootstrap.log" >&2
        fail "debootstrap failed (log: $WORK_ROOT/debootstrap.log)"
    }
    shopt -s nullglob
    local file
    for file in /usr/local/share/ca-certificates/*.crt; do
        cp "$file" "$rootfs/usr/local/share/ca-certificates/"
    done
    chroot "$rootfs" update-ca-certificates >"$WORK_ROOT/update-ca-certificates.log" 2>&1 ||
        fail "update-ca-certificates in the Debian stand-in failed (log: $WORK_ROOT/update-ca-certificates.log)"
    rm -f "$rootfs/etc/apt/sources.list"
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
        [ -e "$file" ] && cp "$file" "$rootfs$file"
    done
    # Keyrings the sources name and the rootfs lacks.
    for file in $(grep -ho 'Signed-By: *[^ ]*\|signed-by=[^] ]*' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
        2>/dev/null | sed 's/.*[:=] *//' | sort -u || true); do
        if [ -f "$file" ] && [ ! -e "$rootfs$file" ]; then
            mkdir -p "$rootfs$(dirname "$file")"
            cp "$file" "$rootfs$file"
        fi
    done
    shopt -u nullglob
    # The mirror's quirks (snapshot dates, proxies), not the host's hooks.
    apt-config dump | grep -E '^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy) ' \
        >"$rootfs/etc/apt/apt.conf.d/99host-mirror" || true
    minimize_like_official "$rootfs"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/bootstrap.log
    : >"$rootfs/etc/resolv.conf"
    tar --numeric-owner -C "$rootfs" -c . |
        podman import -q \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["bash"]' \
            --change "LABEL $STANDIN_LABEL=true" \
            - "$DEBIAN_IMAGE" >/dev/null
    rm -rf "$rootfs"
    say "   made $DEBIAN_IMAGE (stand-in)"
}

# What the official image's build (debuerreotype's minimizing-config and
# slimify) adds to a debootstrap, so that layers built on the stand-in are as
# large as on the real image: apt cleans its caches after every run, keeps
# lists compressed and fetches no translations; no docs, man pages or locales.
minimize_like_official() {
    local rootfs=$1 dir
    [ -n "$rootfs" ] && [ "$rootfs" != / ] && [ -d "$rootfs/etc/apt" ] ||
        fail "minimize_like_official: '$rootfs' is not a rootfs"
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
    echo force-unsafe-io >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
    local clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
    printf '%s\n' "DPkg::Post-Invoke { $clean };" "APT::Update::Post-Invoke { $clean };" \
        'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' \
        >"$rootfs/etc/apt/apt.conf.d/docker-clean"
    echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' \
        >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
    {
        echo '# This is the "slim" variant of the Debian base image.'
        for dir in doc groff info linda lintian/overrides locale man; do
            echo "path-exclude /usr/share/$dir/*"
        done
        echo 'path-include /usr/share/doc/*/copyright'
        echo 'path-include /usr/share/locale/locale.alias'
    } >"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
    for dir in doc groff info linda lintian/overrides locale man; do
        [ -d "$rootfs/usr/share/$dir" ] || continue
        find "$rootfs/usr/share/$dir" -depth -mindepth 1 -not -type d \
            -not -path "$rootfs/usr/share/doc/*/copyright" \
            -not -path "$rootfs/usr/share/locale/locale.alias" -delete
        find "$rootfs/usr/share/$dir" -depth -mindepth 1 -type d -empty -delete
    done
}

# rust:1.95-slim-bookworm: the Debian image plus what the official one adds
# (ca-certificates gcc libc6-dev, rustup and 1.95.0 in /usr/local) from this
# machine's toolchain.
make_rust_standin() {
    local rustup_home=${RUSTUP_HOME:-$HOME/.rustup} cargo_home=${CARGO_HOME:-$HOME/.cargo}
    local toolchain ctx=$WORK_ROOT/rust-standin tool
    toolchain=$(readlink -f "$rustup_home/toolchains/$RUST_TOOLCHAIN" 2>/dev/null || true)
    if [ ! -x "$toolchain/bin/rustc" ]; then
        toolchain=$(readlink -f "$rustup_home/toolchains/stable-x86_64-unknown-linux-gnu" 2>/dev/null || true)
    fi
    [[ -x $toolchain/bin/rustc && $("$toolchain/bin/rustc" --version) == "rustc 1.95.0 "* ]] ||
        fail "no Rust 1.95.0 toolchain under $rustup_home (rustup toolchain install 1.95.0 --profile minimal)"
    [ -x "$cargo_home/bin/rustup" ] || fail "no rustup at $cargo_home/bin/rustup"
    say "   making $RUST_IMAGE from $toolchain"
    rm -rf "$ctx"
    mkdir -p "$ctx/rustup/toolchains/$RUST_TOOLCHAIN" "$ctx/cargo/bin" "$ctx/ca"
    # The toolchain without its documentation (share/) and editor helpers (libexec/).
    tar -C "$toolchain" -c --exclude=./share --exclude=./libexec . |
        tar -C "$ctx/rustup/toolchains/$RUST_TOOLCHAIN" -x
    printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' "$RUST_TOOLCHAIN" \
        >"$ctx/rustup/settings.toml"
    cp "$cargo_home/bin/rustup" "$ctx/cargo/bin/rustup"
    for tool in "$ctx/rustup/toolchains/$RUST_TOOLCHAIN"/bin/*; do
        ln -s rustup "$ctx/cargo/bin/$(basename "$tool")"
    done
    shopt -s nullglob
    for tool in /usr/local/share/ca-certificates/*.crt; do cp "$tool" "$ctx/ca/"; done
    # As the official image (chmod -R a+w), here so that no layer copies it all again.
    chmod -R a+w "$ctx/rustup" "$ctx/cargo"
    shopt -u nullglob
    cat >"$ctx/Containerfile" <<EOF
FROM $DEBIAN_IMAGE
COPY ca/ /usr/local/share/ca-certificates/
RUN apt-get update \\
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
    && rm -rf /var/lib/apt/lists/* \\
    && update-ca-certificates
ENV RUSTUP_HOME=/usr/local/rustup \\
    CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    RUST_VERSION=1.95.0
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
RUN rustup --version && cargo --version && rustc --version
LABEL $STANDIN_LABEL=true
EOF
    "${PODMAN[@]}" build -q --format docker --pull=never "${LIMITS[@]}" \
        -t "$RUST_IMAGE" -f "$ctx/Containerfile" "$ctx" >"$WORK_ROOT/rust-standin.log" 2>&1 || {
        tail -n 30 "$WORK_ROOT/rust-standin.log" >&2
        fail "building the Rust stand-in failed (log: $WORK_ROOT/rust-standin.log)"
    }
    rm -rf "$ctx"
    say "   made $RUST_IMAGE (stand-in)"
}

base_images() {
    phase "base images"
    mkdir -p "$WORK_ROOT"
    local image
    if [ "${REBUILD_STANDINS:-0}" = 1 ]; then
        for image in "$RUST_IMAGE" "$DEBIAN_IMAGE"; do # the Rust one is built on the Debian one
            if podman image exists "$image" && is_standin "$image"; then
                say "   REBUILD_STANDINS=1: removing the stand-in $image"
                podman rmi "$image" >/dev/null
            fi
        done
    fi
    have_image "$DEBIAN_IMAGE" || make_debian_standin
    have_image "$RUST_IMAGE" || make_rust_standin
    phase_end
}

build_summary() {
    grep --line-buffered -E '^(STEP|COMMIT|Error)|Compiling expo-updates-server|Finished|^warning' || true
}

check_build() {
    phase "build"
    local old_id new_id started=$SECONDS pruned
    old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
    say "   podman build --format docker -t $IMAGE -f Containerfile ."
    # The whole log goes to build.log; the steps and cargo's summary are shown.
    # The label marks every image of the build (both stages) as this script's.
    if ! "${PODMAN[@]}" build --format docker --pull=never "${LIMITS[@]}" \
        --label "$BUILD_LABEL=true" -t "$IMAGE" -f Containerfile . 2>&1 |
        tee "$RUN_DIR/build.log" | build_summary; then
        tail -n 40 "$RUN_DIR/build.log" >&2
        fail "[build] podman build failed (the last 40 lines of its log are above)"
    fi
    new_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null) ||
        fail "[build] no image $IMAGE after the build"
    # Images stay for fast re-runs, but what a new build superseded (the old
    # image and build stage, now untagged) would pile up on a CI machine.
    if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
        pruned=$(podman image prune -f --filter "label=$BUILD_LABEL=true" \
            --filter "until=$((SECONDS - started + 1))s" | wc -l)
        say "   removed $pruned superseded untagged images of earlier runs"
    fi
    pass "[build] $IMAGE built from Containerfile"
    phase_end
}

check_image_config() {
    phase "image config"
    local user volumes ports entrypoint health
    user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
    volumes=$(podman image inspect --format '{{json .Config.Volumes}}' "$IMAGE")
    ports=$(podman image inspect --format '{{json .Config.ExposedPorts}}' "$IMAGE")
    entrypoint=$(podman image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE")
    health=$(podman image inspect --format '{{json .HealthCheck}}' "$IMAGE")
    say "   user=$user volumes=$volumes ports=$ports entrypoint=$entrypoint"
    say "   healthcheck=$health"
    [[ $volumes == *'"/data"'* ]] || fail "[image config] no VOLUME /data"
    [[ $ports == *'"8080/tcp"'* ]] || fail "[image config] port 8080 not exposed"
    [[ $entrypoint == *expo-updates-server* ]] || fail "[image config] ENTRYPOINT is not the server"
    [[ $health == *healthcheck* ]] ||
        fail "[image config] no HEALTHCHECK running 'expo-updates-server healthcheck' in the image"
    pass "[image config] VOLUME /data, EXPOSE 8080, ENTRYPOINT and HEALTHCHECK are set"
    phase_end
}

check_run() {
    phase "run"
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    PRIVATE_KEY=$(cat "$FIXTURES/code-signing/private-key.pem")
    export PRIVATE_KEY # passed by name (-e PRIVATE_KEY), so it is not on a command line
    SERVER_ENV=(-e "PUBLIC_URL=$URL" -e PRIVATE_KEY)
    new_volume "$DATA_VOLUME"
    start_server "eus-ct-server-$RUN_ID"
    pass "[run] /readyz answers 200 at $URL (volume $DATA_VOLUME on /data, code signing on)"
    phase_end
}

check_non_root() {
    phase "non-root"
    local uid pid process_uid
    uid=$("${PODMAN[@]}" run --rm "${LIMITS[@]}" --no-healthcheck --entrypoint id "$IMAGE" -u)
    [ "$uid" -ne 0 ] || fail "[non-root] the image's user is root (id -u: $uid)"
    pid=$(podman inspect --format '{{.State.Pid}}' "$CURRENT_CONTAINER")
    process_uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
    [ -n "$process_uid" ] && [ "$process_uid" -ne 0 ] ||
        fail "[non-root] the server process (pid $pid) runs as uid '$process_uid'"
    say "   podman top: $(podman top "$CURRENT_CONTAINER" user pid comm | tail -n +2 | tr -s ' ')"
    pass "[non-root] the image's user has uid $uid; the server process runs as uid $process_uid"
    phase_end
}

check_healthcheck() {
    phase "healthcheck"
    local name=$CURRENT_CONTAINER deadline=$((SECONDS + HEALTHY_TIMEOUT)) status
    # The probe must fail when no server listens, or it proves nothing.
    if "${PODMAN[@]}" run --rm "${LIMITS[@]}" --no-healthcheck \
        --entrypoint /usr/local/bin/expo-updates-server \
        "$IMAGE" healthcheck >/dev/null 2>&1; then
        fail "[healthcheck] 'expo-updates-server healthcheck' succeeds without a server"
    fi
    # No systemd here, so nothing runs the HEALTHCHECK on its schedule: run it.
    until podman healthcheck run "$name" >"$RUN_DIR/health.out" 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] ||
            fail "[healthcheck] not healthy within ${HEALTHY_TIMEOUT}s: $(cat "$RUN_DIR/health.out")"
        sleep 1
    done
    status=$(podman inspect --format '{{.State.Health.Status}}' "$name" 2>/dev/null ||
        podman inspect --format '{{.State.Healthcheck.Status}}' "$name")
    [ "$status" = healthy ] || fail "[healthcheck] podman inspect says '$status', want healthy"
    pass "[healthcheck] podman healthcheck run succeeds and the container is '$status'"
    phase_end
}

check_publish_signed() {
    phase "publish and signed manifest"
    CLI_HOME=$RUN_DIR/cli
    mkdir -p "$CLI_HOME"
    PASSWORD="container-test-$RUN_ID"
    local out update_id manifest_url
    printf '%s\n' "$PASSWORD" |
        cli -i -- register --username alice --email alice@example.com >"$RUN_DIR/register.out" 2>&1 ||
        fail "[publish] register failed: $(cat "$RUN_DIR/register.out")"
    out=$(cli -- projects create "Container Test" --json </dev/null) ||
        fail "[publish] projects create failed: $out"
    PROJECT=$(jq -r .id <<<"$out")
    [ -n "$PROJECT" ] && [ "$PROJECT" != null ] || fail "[publish] projects create gave no id: $out"
    out=$(cli -- keys create --name ci --project "$PROJECT" --json </dev/null) ||
        fail "[publish] keys create failed: $out"
    API_KEY=$(jq -r .secret <<<"$out")
    [ -n "$API_KEY" ] && [ "$API_KEY" != null ] || fail "[publish] keys create gave no secret"
    export EXPO_UPDATES_PROJECT=$PROJECT EXPO_UPDATES_API_KEY=$API_KEY
    out=$(cli -e EXPO_UPDATES_PROJECT -e EXPO_UPDATES_API_KEY \
        -v "$FIXTURES/expo-sdk56-export-v1:/export:ro" -- publish --dir /export --json </dev/null) ||
        fail "[publish] publish failed: $out"
    update_id=$(jq -r .updateId <<<"$out")
    manifest_url=$(jq -r .manifestUrl <<<"$out")
    say "   published update $update_id; manifest URL $manifest_url"
    [ "$manifest_url" = "$URL/api/updates/$PROJECT/manifest" ] ||
        fail "[publish] manifest URL '$manifest_url' does not follow PUBLIC_URL"
    pass "[publish] register, projects create, keys create and publish with the image's CLI"

    local dir=$RUN_DIR/manifest1
    fetch_manifest "$dir"
    local signature keyid id
    signature=$(cat "$dir/signature")
    keyid=$(cat "$dir/keyid")
    say "   parts: $(cat "$dir/parts"); expo-signature: ${signature:0:60}..."
    [ -n "$signature" ] || fail "[signed] the manifest part has no expo-signature header"
    [ -s "$dir/sig.bin" ] || fail "[signed] no sig= in expo-signature: $signature"
    [ "$keyid" = main ] || fail "[signed] keyid '$keyid' in expo-signature, want main"
    openssl dgst -sha256 -verify "$FIXTURES/code-signing/public-key.pem" \
        -signature "$dir/sig.bin" "$dir/manifest.json" >"$RUN_DIR/verify.out" 2>&1 ||
        fail "[signed] the signature does not verify with the fixture public key: $(cat "$RUN_DIR/verify.out")"
    # The publish answers a group id; each platform's update has its own id.
    id=$(jq -r .id "$dir/manifest.json")
    [[ $id =~ ^[0-9a-f-]{36}$ ]] || fail "[signed] manifest id '$id' is not a UUID"
    [ "$(jq -r .runtimeVersion "$dir/manifest.json")" = 1.0.0 ] ||
        fail "[signed] manifest runtimeVersion is not 1.0.0"
    pass "[signed] 200 multipart/mixed; the manifest part's expo-signature (keyid=\"main\") verifies with the fixture public key"

    local asset url hash got count=0
    while IFS=$'\t' read -r url hash; do
        [[ $url == "$URL/"* ]] || fail "[assets] asset URL $url does not start with PUBLIC_URL"
        curl -sSf --max-time 30 -o "$RUN_DIR/asset" "$url" || fail "[assets] GET $url failed"
        got=$(sha256_b64url "$RUN_DIR/asset")
        [ "$got" = "$hash" ] || fail "[assets] $url: SHA-256 $got, manifest says $hash"
        count=$((count + 1))
    done < <(jq -r '([.launchAsset] + .assets)[] | [.url, .hash] | @tsv' "$dir/manifest.json")
    [ "$count" -ge 1 ] || fail "[assets] the manifest lists no launch asset"
    asset=$(jq -r .launchAsset.url "$dir/manifest.json")
    pass "[assets] the launch asset ($asset) and $((count - 1)) other assets match their manifest hashes"
    MANIFEST_ID=$id
    phase_end
}

check_persistence() {
    phase "persistence"
    local old=$CURRENT_CONTAINER dir=$RUN_DIR/manifest2 id who
    remove_server "$old"
    start_server "eus-ct-server2-$RUN_ID"
    fetch_manifest "$dir"
    id=$(jq -r .id "$dir/manifest.json")
    [ "$id" = "$MANIFEST_ID" ] ||
        fail "[persistence] manifest id after recreating: $id, before: $MANIFEST_ID"
    openssl dgst -sha256 -verify "$FIXTURES/code-signing/public-key.pem" \
        -signature "$dir/sig.bin" "$dir/manifest.json" >/dev/null 2>&1 ||
        fail "[persistence] the manifest's signature no longer verifies"
    # The session from before (the JWT secret lives in /data) and the password.
    who=$(cli -- whoami --json </dev/null) ||
        fail "[persistence] the old session is refused after recreating: $who"
    [ "$(jq -r '.username // .user.username' <<<"$who")" = alice ] ||
        fail "[persistence] whoami with the old session: $who"
    printf '%s\n' "$PASSWORD" | cli -i -- login --username alice >"$RUN_DIR/login.out" 2>&1 ||
        fail "[persistence] login with the old password failed: $(cat "$RUN_DIR/login.out")"
    pass "[persistence] after podman rm and run on the same volume: same manifest id $id, old session and password work"
    phase_end
}

# ------------------------------------------------------------------------
# import-go: a Go server's data volume (made by tests/go-data's generator from
# the real exports, its files owned by root as the Go image, which ran as
# root, left them) is mounted read-only; the image's import-go carries it into
# a new /data volume; the server then serves the Go updates under their Go
# manifest ids, signed, and takes the old passwords and keys. The image also
# refuses to start with the Go volume as its /data.

# go_volume_digests: the SHA-256 of every file of the Go volume (-shm aside).
go_volume_digests() {
    "${PODMAN[@]}" run --rm "${LIMITS[@]}" --no-healthcheck --user 0 \
        -v "$GO_VOLUME:/go-data:ro" --entrypoint /bin/sh "$IMAGE" \
        -c 'cd /go-data && find . -type f ! -name "*-shm" -exec sha256sum {} + | sort -k 2'
}

check_import_go() {
    phase "import-go"
    local go_dir=$RUN_DIR/go-data facts=$RUN_DIR/go-facts.json report
    say "   generating a Go data dir (cargo run -p go-data-fixture)"
    (cd "$REPO" && cargo run -q --locked -p go-data-fixture --bin make-go-data-dir -- "$go_dir") \
        >"$facts" 2>"$RUN_DIR/generate.err" ||
        fail "[import-go] the generator failed: $(tail -5 "$RUN_DIR/generate.err")"
    GO_VOLUME=eus-ct-go-$RUN_ID
    new_volume "$GO_VOLUME"
    "${PODMAN[@]}" run --rm "${LIMITS[@]}" --no-healthcheck --user 0 \
        -v "$GO_VOLUME:/go-data" -v "$go_dir:/src:ro" --entrypoint /bin/cp "$IMAGE" \
        -a /src/. /go-data/ || fail "[import-go] copying the Go data dir into $GO_VOLUME failed"
    local before after
    before=$(go_volume_digests)

    # The Go volume as /data: refused with one line naming import-go.
    local out
    if out=$("${PODMAN[@]}" run --rm "${LIMITS[@]}" --no-healthcheck -v "$GO_VOLUME:/data" \
        "$IMAGE" 2>&1); then
        fail "[import-go] the server started on the Go server's volume as /data"
    fi
    grep -q "Go expo-updates-server's database" <<<"$out" && grep -q "import-go" <<<"$out" ||
        fail "[import-go] starting on the Go volume did not name import-go: $out"
    pass "[import-go] the server refuses the Go volume as /data: $(grep -o "expo-updates-server: .*" <<<"$out" | cut -c 1-110)..."

    # The import, into a new volume, from the Go volume mounted read-only.
    remove_server "$CURRENT_CONTAINER"
    DATA_VOLUME=eus-ct-import-$RUN_ID
    new_volume "$DATA_VOLUME"
    "${PODMAN[@]}" run --rm "${LIMITS[@]}" --no-healthcheck \
        -v "$GO_VOLUME:/go-data:ro" -v "$DATA_VOLUME:/data" \
        "$IMAGE" import-go --data-dir /go-data --json >"$RUN_DIR/import.json" 2>"$RUN_DIR/import.err" ||
        fail "[import-go] import-go failed: $(tail -5 "$RUN_DIR/import.err")"
    report=$(jq -c .imported "$RUN_DIR/import.json") ||
        fail "[import-go] the report is not JSON: $(head -c 300 "$RUN_DIR/import.json")"
    [ "$(jq '.imported | [.users, .projects, .members, .keys, .updates, .rollbacks] == [6, 3, 6, 4, 14, 2]' \
        "$RUN_DIR/import.json")" = true ] || fail "[import-go] imported $report, want 6 users, 3 projects, 6 members, 4 keys, 14 updates, 2 rollbacks"
    [ "$(jq '.problems | length' "$RUN_DIR/import.json")" -gt 0 ] ||
        fail "[import-go] the report names none of the Go data's problems"
    after=$(go_volume_digests)
    [ "$before" = "$after" ] || fail "[import-go] the import changed the Go volume"
    say "   imported: $report; $(jq '.problems | length' "$RUN_DIR/import.json") problems, $(jq '.warnings | length' "$RUN_DIR/import.json") warnings"
    pass "[import-go] import-go from the Go volume mounted read-only (-v $GO_VOLUME:/go-data:ro -v $DATA_VOLUME:/data); the Go volume is unchanged"

    # A rerun, as the final sync: nothing new.
    "${PODMAN[@]}" run --rm "${LIMITS[@]}" --no-healthcheck \
        -v "$GO_VOLUME:/go-data:ro" -v "$DATA_VOLUME:/data" \
        "$IMAGE" import-go --data-dir /go-data --json >"$RUN_DIR/again.json" 2>"$RUN_DIR/again.err" ||
        fail "[import-go] the second import-go failed: $(tail -5 "$RUN_DIR/again.err")"
    [ "$(jq '[.imported[]] | add' "$RUN_DIR/again.json")" = 0 ] ||
        fail "[import-go] the rerun imported $(jq -c .imported "$RUN_DIR/again.json")"
    pass "[import-go] a rerun imports nothing"

    # Served as the Go server served it, signed for keyid "main".
    start_server "eus-ct-imported-$RUN_ID"
    local app go_id dir=$RUN_DIR/manifest-go code account password secret
    app=$(jq -r '.keys[0].projectId' "$facts")
    go_id=$(jq -r --arg p "$app/1.0.0/1776200000" '.dirs[] | select(.path == $p) | .manifestId' "$facts")
    PROJECT=$app
    fetch_manifest "$dir"
    [ "$(jq -r .id "$dir/manifest.json")" = "$go_id" ] ||
        fail "[import-go] manifest id $(jq -r .id "$dir/manifest.json"), want the Go id $go_id"
    [ "$(jq -r .createdAt "$dir/manifest.json")" = 2026-04-14T20:53:20.000Z ] ||
        fail "[import-go] createdAt $(jq -r .createdAt "$dir/manifest.json"), want the Go update's second"
    [ "$(cat "$dir/keyid")" = main ] || fail "[import-go] keyid $(cat "$dir/keyid")"
    openssl dgst -sha256 -verify "$FIXTURES/code-signing/public-key.pem" \
        -signature "$dir/sig.bin" "$dir/manifest.json" >/dev/null 2>&1 ||
        fail "[import-go] the imported update's signature does not verify"
    code=$(http GET "/api/updates/$app/manifest" -H 'expo-platform: ios' -H 'expo-runtime-version: 1.0.0' \
        -H 'expo-protocol-version: 1' -H "expo-current-update-id: $go_id")
    [ "$code" = 200 ] && grep -q noUpdateAvailable "$RUN_DIR/http.body" ||
        fail "[import-go] a device running $go_id was not told noUpdateAvailable ($code)"
    pass "[import-go] the latest Go update is served with its Go id $go_id and time, signed for keyid \"main\"; a device running it gets noUpdateAvailable"

    # People and CI: the old password and the old 64-hex key.
    account=$(jq -c '.accounts[0]' "$facts")
    password=$(jq -r .password <<<"$account")
    code=$(http POST /api/auth/login -H 'content-type: application/json' \
        --data "$(jq -c '{login: .username, password: .password}' <<<"$account")")
    [ "$code" = 200 ] || fail "[import-go] login with the Go password answered $code: $(cat "$RUN_DIR/http.body")"
    [ -n "$password" ] || fail "[import-go] the generator gave no password"
    secret=$(jq -r --arg p "$app" '[.keys[] | select(.projectId == $p)][0].secret' "$facts")
    out=$(cli -e EXPO_UPDATES_PROJECT="$app" -e EXPO_UPDATES_API_KEY="$secret" \
        -v "$FIXTURES/expo-sdk56-export-rt2:/export:ro" -- publish --dir /export --json </dev/null) ||
        fail "[import-go] publishing with the Go key failed: $out"
    pass "[import-go] the Go password logs in and the Go key publishes ($(jq -r .updateId <<<"$out"))"
    phase_end
}
# ------------------------------------------------------------------------

report_size() {
    phase "image size"
    local bytes base binary note=
    bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
    base=$(podman image inspect --format '{{.Size}}' "$DEBIAN_IMAGE")
    binary=$("${PODMAN[@]}" run --rm "${LIMITS[@]}" --no-healthcheck --entrypoint stat "$IMAGE" \
        -c %s /usr/local/bin/expo-updates-server)
    is_standin "$DEBIAN_IMAGE" && note=" (the local stand-in)"
    say "   $IMAGE: $bytes bytes ($(numfmt --to=iec-i --suffix=B "$bytes"))"
    say "   of which $DEBIAN_IMAGE$note: $(numfmt --to=iec-i --suffix=B "$base"), the binary: $(numfmt --to=iec-i --suffix=B "$binary")"
    podman history --format '   {{.Size}}\t{{.CreatedBy}}' "$IMAGE" | grep -v '^   0 *B' | cut -c 1-110 || true
    pass "[size] $IMAGE is $(numfmt --to=iec-i --suffix=B "$bytes")"
    phase_end
}

install_tools
base_images
check_build
check_image_config
check_run
check_non_root
check_healthcheck
check_publish_signed
check_persistence
check_import_go
report_size
