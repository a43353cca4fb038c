#!/usr/bin/env python3
"""Reads one part of a saved multipart/mixed manifest response.

Usage: manifest.py BODY_FILE HEADERS_FILE FIELD
FIELD: "id" (the manifest's id), "launch-url" (launchAsset.url), or "kind"
(manifest or directive, and the directive's type).
"""
import json
import re
import sys

body = open(sys.argv[1], "rb").read()
headers = open(sys.argv[2], encoding="latin-1").read()
field = sys.argv[3]
match = re.search(r"boundary=([^;\s]+)", headers, re.I)
if not match:
    sys.exit(f"no multipart boundary in {sys.argv[2]}")
parts = {}
for chunk in body.split(b"--" + match.group(1).encode())[1:]:
    if chunk.startswith(b"--"):
        break
    head, _, content = chunk.partition(b"\r\n\r\n")
    name = re.search(rb'name="([^"]+)"', head)
    if name:
        parts[name.group(1).decode()] = json.loads(content.rstrip(b"\r\n"))
if field == "kind":
    if "manifest" in parts:
        print("manifest")
    else:
        print("directive:" + parts.get("directive", {}).get("type", "?"))
elif field == "id":
    print(parts["manifest"]["id"])
elif field == "launch-url":
    print(parts["manifest"]["launchAsset"]["url"])
else:
    sys.exit(f"unknown field {field}")
