#!/usr/bin/env python3
"""Turns one wrk --latency report into result lines "PREFIX.key<TAB>value".

Usage: wrk-parse.py PREFIX WRK_OUTPUT_FILE
Keys: rps, mibps (wrk's Transfer/sec, 1024-based), p50 and p99 (ms),
requests, non2xx, socket (connect+read+write+timeout errors), errors (both).
"""
import re
import sys

prefix, text = sys.argv[1], open(sys.argv[2]).read()
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}
UNITS_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value).groups()
    return float(number) * UNITS_MS[unit]


def find(pattern: str) -> re.Match:
    match = re.search(pattern, text, re.M)
    if not match:
        sys.exit(f"wrk output {sys.argv[2]} has no line matching {pattern!r}:\n{text}")
    return match


out = {}
out["rps"] = float(find(r"^Requests/sec:\s+([\d.]+)").group(1))
number, unit = find(r"^Transfer/sec:\s+([\d.]+)([KMGT]?B)").groups()
out["mibps"] = float(number) * UNITS_BYTES[unit] / 1024**2
out["p50"] = ms(find(r"^\s+50%\s+(\S+)").group(1))
out["p99"] = ms(find(r"^\s+99%\s+(\S+)").group(1))
out["requests"] = int(find(r"^\s+(\d+) requests in").group(1))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
out["non2xx"] = int(non2xx.group(1)) if non2xx else 0
socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
out["socket"] = sum(map(int, socket.groups())) if socket else 0
out["errors"] = out["non2xx"] + out["socket"]
for key, value in out.items():
    print(f"{prefix}.{key}\t{value}")
