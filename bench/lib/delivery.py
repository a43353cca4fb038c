#!/usr/bin/env python3
"""What a device one update behind downloads, measured against a running
server: the launch bundle's stored representations (identity, gzip, brotli,
zstd) and the patch (226 IM Used, waited for while the server computes it),
plus Debian's bsdiff on the same pair for comparison (size, time, peak RSS).

Usage: delivery.py PREFIX LAUNCH_URL RUNNING_ID BASE_FILE TARGET_FILE PATCH_OUT
(PATCH_OUT gets the patch, PATCH_OUT.headers its response headers.)
Prints "key<TAB>value" lines (PREFIX.raw, .gzip, .br, .zstd, .patch,
.patch_wait_s, .debian_bytes, .debian_s, .debian_rss_kib) for report.py.
"""
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

prefix, url, running, base_file, target_file, patch_out = sys.argv[1:7]
target = open(target_file, "rb").read()


def get(headers):
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        # An HTTPMessage: header names compare case-insensitively.
        return response.status, response.headers, response.read()


def out(key, value):
    print(f"{prefix}.{key}\t{value}")


status, headers, body = get({})
assert status == 200 and body == target, f"the plain download is not the bundle ({status})"
out("raw", len(body))
for name, token in (("gzip", "gzip"), ("br", "br"), ("zstd", "zstd")):
    status, headers, body = get({"Accept-Encoding": token})
    if headers.get("Content-Encoding") == token:
        out(name, len(body))

asked = {
    "A-IM": "bsdiff",
    "Expo-Current-Update-ID": running,
    "Accept-Encoding": "zstd, br, gzip",
}
started = time.monotonic()
while True:
    # urllib treats 226 as success (2xx).
    status, headers, body = get(asked)
    if status == 226:
        break
    if time.monotonic() - started > 300:
        sys.exit(f"{prefix}: no patch after 300 s")
    time.sleep(0.05)
assert headers.get("IM") == "bsdiff" and headers.get("expo-base-update-id") == running
out("patch", len(body))
out("patch_wait_s", f"{time.monotonic() - started:.2f}")
with open(patch_out, "wb") as saved:
    saved.write(body)
# As curl -D writes them, for nginx to send the same headers.
with open(patch_out + ".headers", "w", encoding="latin-1") as saved:
    saved.write("HTTP/1.1 226 IM Used\r\n")
    saved.writelines(f"{name}: {value}\r\n" for name, value in headers.items())
    saved.write("\r\n")

# Debian's bsdiff 4.3 on the same pair, and its peak memory (wait4's rusage
# of that one child).
with tempfile.TemporaryDirectory() as scratch:
    patch = os.path.join(scratch, "patch")
    begin = time.monotonic()
    child = subprocess.Popen(["bsdiff", base_file, target_file, patch])
    _, code, usage = os.wait4(child.pid, 0)
    if code == 0:
        out("debian_bytes", os.path.getsize(patch))
        out("debian_s", f"{time.monotonic() - begin:.2f}")
        out("debian_rss_kib", usage.ru_maxrss)
    # The server's patch applies with Debian's bspatch.
    rebuilt = os.path.join(scratch, "rebuilt")
    subprocess.run(["bspatch", base_file, rebuilt, patch_out], check=True)
    assert open(rebuilt, "rb").read() == target, "bspatch of the server's patch is not the bundle"
    out("bspatch_ok", 1)
