#!/usr/bin/env python3
"""Prints the benchmark's result table from the "key<TAB>value" lines that
bench/run collected.

Usage: report.py RESULTS_FILE

Columns: the server's value, the baseline's (nginx serving the same bytes,
or for the scale rows the same server with ~10 updates), their ratio, the
target and PASS/FAIL. Rows without a target are information.
"""
import sys

results = {}
for line in open(sys.argv[1]):
    key, _, value = line.rstrip("\n").partition("\t")
    results[key] = value


def get(key: str):
    value = results.get(key)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


ROW = "{:<44} {:>11} {:>11} {:>8}  {:<9} {}"
rows, verdicts = [], []


def fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if value == int(value) and abs(value) >= 1000:
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def row(label, server, baseline=None, *, rule=None, digits=1, ratio=True):
    """One table row. rule: (target text, check(server, ratio) -> bool)."""
    target, check = rule or (None, None)
    quotient = None
    if ratio and isinstance(server, float) and isinstance(baseline, float) and baseline:
        quotient = server / baseline
    result = ""
    if check is not None:
        if server is None or (ratio and baseline is not None and quotient is None):
            result = "FAIL (not measured)"
        else:
            result = "PASS" if check(server, quotient) else "FAIL"
        verdicts.append(result == "PASS")
    rows.append(ROW.format(label, fmt(server, digits), fmt(baseline, digits),
                           f"{quotient:.2f}x" if quotient is not None else "-", target or "", result))


def section(title, server="server", baseline="-"):
    rows.append("")
    rows.append(title)
    rows.append(ROW.format("", server, baseline, "ratio", "target", "result"))


def heading(title):
    rows.append("  " + title)


mib = lambda key: get(key) / 1024 if get(key) is not None else None
at_least = lambda limit: (f">= {limit:.2f}x", lambda _, r: r >= limit)
at_most = lambda limit: (f"<= {limit:.1f}x", lambda _, r: r <= limit)
below = lambda limit: (f"< {limit}", lambda s, _: s < limit)
no_errors = ("0", lambda e, _: e == 0)

section("START-UP AND MEMORY")
row("    ready: exec to first 200 /readyz (ms)", get("ready_ms"), rule=below(1000))
row("    idle RSS, fresh start (MiB)", mib("rss_fresh_kib"), rule=below(30))
# Information: what the allocator keeps after 256 connections, two publishes
# and the caches filled; the target is for a server at rest after start.
row("    high-water mark under the manifest load (MiB)", mib("manifest_load_hwm_kib"), rule=below(64))
row("    RSS after the load and the big publish (MiB)", mib("rss_after_kib"))

section("PUBLISH (peak = VmHWM after clear_refs)")
for name, label in (("v1", "fixture v1"), ("big", "generated export")):
    size = get(f"publish_{name}_bytes")
    seconds = get(f"publish_{name}_s")
    heading(f"{label}, {size / 2**20:.1f} MiB in {fmt(get(f'publish_{name}_files'), 0)} files" if size else label)
    row("    time (s)", seconds, digits=2)
    if size and seconds:
        row("    throughput (MiB/s)", size / 2**20 / seconds)
    row("    RSS before (MiB)", mib(f"publish_{name}_before_kib"))
    if name == "big":
        row("    peak RSS (MiB)", mib(f"publish_{name}_peak_kib"), rule=below(100))
    else:
        row("    peak RSS (MiB)", mib(f"publish_{name}_peak_kib"))

SCENARIOS = [
    ("manifest_unsigned", "manifest, unsigned", "manifest"),
    ("manifest_signed", "manifest, signed (expo-expect-signature)", "manifest"),
    ("manifest_noupdate", "v1 noUpdateAvailable (expo-current-update-id)", "manifest"),
    ("manifest_rollout", "rollout at 50%, random eas-client-id", "manifest"),
    ("asset_plain", "launch asset (bundle)", "asset"),
    ("asset_br", "launch asset, accept-encoding: br", "asset"),
]
section(f"DELIVERY UNDER LOAD vs nginx serving the same bytes (wrk -t2, {results.get('duration', '?')} s, "
        f"-c{results.get('manifest_conns', '?')} manifests, -c{results.get('asset_conns', '?')} assets)",
        "server", "nginx")
for key, label, kind in SCENARIOS:
    s, b = f"{key}.server", f"{key}.baseline"
    size = get(f"{key}.bytes")
    encoding = results.get(f"{key}.encoding")
    detail = []
    if size is not None:
        detail.append(f"{fmt(size, 0)} B/response")
    if encoding is not None:
        detail.append(f"content-encoding: {encoding}")
    heading(label + (f" ({', '.join(detail)})" if detail else ""))
    if kind == "asset":
        row("    MiB/s", get(f"{s}.mibps"), get(f"{b}.mibps"), rule=at_least(0.70))
        row("    req/s", get(f"{s}.rps"), get(f"{b}.rps"))
        row("    p50 (ms)", get(f"{s}.p50"), get(f"{b}.p50"), digits=2)
        row("    p99 (ms)", get(f"{s}.p99"), get(f"{b}.p99"), digits=2)
    else:
        row("    req/s", get(f"{s}.rps"), get(f"{b}.rps"), rule=at_least(0.75))
        row("    p50 (ms)", get(f"{s}.p50"), get(f"{b}.p50"), digits=2)
        row("    p99 (ms)", get(f"{s}.p99"), get(f"{b}.p99"), digits=2, rule=at_most(1.5))
    row("    errors (non-2xx + socket)", get(f"{s}.errors"), get(f"{b}.errors"), ratio=False, digits=0,
        rule=no_errors)

# Manifests: every scenario at least 0.75x nginx, and 0.85x on average.
ratios = [get(f"{key}.server.rps") / get(f"{key}.baseline.rps") for key, _, kind in SCENARIOS
          if kind == "manifest" and get(f"{key}.server.rps") and get(f"{key}.baseline.rps")]
heading("manifests, all scenarios")
row("    mean req/s ratio to nginx", sum(ratios) / len(ratios) if ratios else None, ratio=False, digits=2,
    rule=(">= 0.85", lambda mean, _: mean >= 0.85))

section("BUNDLE DIFFING: bytes a device one update behind downloads (Accept-Encoding: zstd, br, gzip)",
        "server", "Debian")
kib = lambda key: get(key) / 1024 if get(key) is not None else None
for platform in ("android", "ios"):
    p = f"delivery.fixture_{platform}"
    heading(f"fixtures v1 -> v2, {platform} bundle")
    for name in ("raw", "gzip", "br", "zstd"):
        row(f"    {name} (KiB)", kib(f"{p}.{name}"))
    row("    patch vs Debian bsdiff 4.3 (KiB)", kib(f"{p}.patch"), kib(f"{p}.debian_bytes"),
        rule=at_most(1.0), digits=1)
    share = get(f"{p}.patch") / get(f"{p}.br") if get(f"{p}.patch") and get(f"{p}.br") else None
    row("    patch / brotli copy", share, ratio=False, digits=3, rule=("<= 0.20", lambda s, _: s <= 0.20))
    row("    Debian's bspatch rebuilds the bundle", get(f"{p}.bspatch_ok"), ratio=False, digits=0,
        rule=("1", lambda s, _: s == 1))
    row("    seconds until the patch was served", get(f"{p}.patch_wait_s"), ratio=False, digits=2)
for mb in (5, 20):
    p = f"delivery.gen{mb}"
    raw = get(f"{p}.raw")
    heading(f"generated Hermes-like {mb} MB bundle, a few functions changed")
    for name in ("raw", "zstd", "br"):
        row(f"    {name} (KiB)", kib(f"{p}.{name}"))
    row("    patch vs Debian bsdiff 4.3 (KiB)", kib(f"{p}.patch"), kib(f"{p}.debian_bytes"), digits=1)
    row("    compute time (s)", get(f"{p}.compute_s"), get(f"{p}.debian_s"), digits=2)
    peak = (get(f"{p}.peak_kib") - get(f"{p}.rss_before_kib")) / 1024 \
        if get(f"{p}.peak_kib") and get(f"{p}.rss_before_kib") else None
    row("    peak RSS over the server's before (MiB)", peak, mib(f"{p}.debian_rss_kib"))
    if peak and raw:
        row("    peak RSS / bundle size", peak * 2**20 / raw, ratio=False, digits=1)
heading("serving the patch (226) vs nginx serving the same bytes")
row("    MiB/s", get("patch_android.server.mibps"), get("patch_android.baseline.mibps"), rule=at_least(0.85))
row("    req/s", get("patch_android.server.rps"), get("patch_android.baseline.rps"))
row("    p99 (ms)", get("patch_android.server.p99"), get("patch_android.baseline.p99"), digits=2)
row("    errors (non-2xx + socket)", get("patch_android.server.errors"), get("patch_android.baseline.errors"),
    ratio=False, digits=0, rule=no_errors)

big, small = get("scale.same.updates"), get("scale.base.updates")
section(f"SCALE: manifest latency, {fmt(big, 0)} vs {fmt(small, 0)} updates in the database "
        f"(wrk -t2 -c{results.get('scale_conns', '?')}, unsigned)", f"{fmt(big, 0)} upd", f"{fmt(small, 0)} upd")
for variant, label in (("same", "all in the served stream"), ("spread", "spread over 1,000 runtime versions")):
    for cache, cache_label in (("cache", "manifest cache on"), ("nocache", "MANIFEST_CACHE_BYTES=0")):
        heading(f"{label}, {cache_label}")
        for q in ("p50", "p99"):
            row(f"    {q} (ms)", get(f"scale.{variant}.{cache}.{q}"), get(f"scale.base.{cache}.{q}"), digits=2,
                rule=at_most(1.5))
        row("    req/s", get(f"scale.{variant}.{cache}.rps"), get(f"scale.base.{cache}.rps"))
        row("    errors (non-2xx + socket)", get(f"scale.{variant}.{cache}.errors"),
            get(f"scale.base.{cache}.errors"), ratio=False, digits=0, rule=no_errors)

print("\n".join(rows[1:]))
print()
print(f"{sum(verdicts)} PASS, {len(verdicts) - sum(verdicts)} FAIL")
