#!/usr/bin/env bash
# Peak memory of publishing a large export: the server streams every file to
# storage, so its peak RSS should stay near its idle RSS whatever the upload
# size. Builds the release binary, starts it on a scratch DATA_DIR, measures
# idle RSS (the baseline), publishes a generated export of SIZE_MB megabytes
# (a bundle plus assets, incompressible random bytes), and prints the peak RSS
# (VmHWM) as a ratio of the baseline and of the upload size.
#
# Usage: bench/publish-rss.sh [SIZE_MB]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB="${1:-200}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/expo-updates-server-target}"
# As in the Containerfile: glibc's per-thread arenas otherwise keep the
# short-lived upload buffers of many worker threads, and peak RSS creeps up
# with the upload's size. Override to compare (MALLOC_ARENA_MAX= bench/...).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX-2}"
cargo build --release --locked -q -p expo-updates-server
BIN="$CARGO_TARGET_DIR/release/expo-updates-server"

WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
S="http://127.0.0.1:$PORT"
DATA_DIR="$WORK/data" HOST=127.0.0.1 PORT=$PORT MAX_UPLOAD_BYTES=$(( (SIZE_MB + 16) * 1024 * 1024 )) \
    "$BIN" > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do PORT=$PORT "$BIN" healthcheck >/dev/null 2>&1 && break; sleep 0.1; done

rss_kib() { awk "/^$1:/ {print \$2}" "/proc/$PID/status"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

TOKEN=$(curl -fsS -X POST "$S/api/auth/register" -H 'content-type: application/json' \
    -d '{"username":"bench","email":"bench@example.com","password":"bench-password"}' | json '["token"]')
PROJECT=$(curl -fsS -X POST "$S/api/projects" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"name":"Bench","slug":"bench"}' | json '["id"]')
SECRET=$(curl -fsS -X POST "$S/api/projects/$PROJECT/keys" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -d '{}' | json '["secret"]')

# The export: one bundle of half the size, the rest in 8 assets.
EXPORT="$WORK/export"
mkdir -p "$EXPORT/_expo/static/js/ios" "$EXPORT/assets"
HALF=$(( SIZE_MB / 2 ))
head -c $(( HALF * 1024 * 1024 )) /dev/urandom > "$EXPORT/_expo/static/js/ios/index-bench.hbc"
ASSETS=()
for i in $(seq 1 8); do
    head -c $(( (SIZE_MB - HALF) * 1024 * 1024 / 8 )) /dev/urandom > "$EXPORT/assets/a$i"
    ASSETS+=("{\"path\":\"assets/a$i\",\"ext\":\"png\"}")
done
(IFS=,; echo "{\"version\":0,\"bundler\":\"metro\",\"fileMetadata\":{\"ios\":{\"bundle\":\"_expo/static/js/ios/index-bench.hbc\",\"assets\":[${ASSETS[*]}]}}}") > "$EXPORT/metadata.json"
echo '{"name":"bench","slug":"bench"}' > "$EXPORT/expoConfig.json"
UPLOAD_BYTES=$(du -sb "$EXPORT" | cut -f1)

sleep 1
# Registering hashed a password with argon2 (64 MiB); measure from here on.
echo 5 > "/proc/$PID/clear_refs"
BASELINE=$(rss_kib VmRSS)
START=$(date +%s.%N)
(cd "$EXPORT" && curl -fsS -X POST "$S/api/updates/$PROJECT/publish" -H "authorization: Bearer $SECRET" \
    -F runtimeVersion=1.0.0 -F metadata.json=@metadata.json -F expoConfig.json=@expoConfig.json \
    -F "_expo/static/js/ios/index-bench.hbc=@_expo/static/js/ios/index-bench.hbc" \
    $(for i in $(seq 1 8); do printf -- '-F assets/a%s=@assets/a%s ' "$i" "$i"; done)) > "$WORK/publish.json"
END=$(date +%s.%N)
PEAK=$(rss_kib VmHWM)
grep -q updateId "$WORK/publish.json" || { echo "publish failed: $(cat "$WORK/publish.json")"; exit 1; }

python3 - "$BASELINE" "$PEAK" "$UPLOAD_BYTES" "$START" "$END" <<'PY'
import sys
baseline, peak, upload, start, end = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
mib = lambda kib: kib / 1024
print(f"upload size            {upload / 2**20:8.1f} MiB")
print(f"idle RSS (baseline)    {mib(baseline):8.1f} MiB")
print(f"peak RSS (VmHWM)       {mib(peak):8.1f} MiB")
print(f"peak / baseline        {peak / baseline:8.2f}x")
print(f"peak / upload size     {peak * 1024 / upload:8.3f}x")
print(f"publish throughput     {upload / 2**20 / (end - start):8.1f} MiB/s")
PY
