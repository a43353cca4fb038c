#!/usr/bin/env python3
"""Polls GET /readyz on 127.0.0.1:PORT every 2 ms until it answers 200.

Usage: wait-ready.py PORT MARKER_FILE [TIMEOUT_SECONDS]

Started *before* the server, so that Python's own start-up is not counted:
it creates MARKER_FILE once it is polling, the caller then takes its start
time and execs the server. On success it prints time.time_ns() of the first
200 (wall clock, comparable with bash's $EPOCHREALTIME) and exits 0; on
timeout it exits 1.
"""
import pathlib
import socket
import sys
import time

port, marker = int(sys.argv[1]), pathlib.Path(sys.argv[2])
deadline = time.monotonic() + float(sys.argv[3] if len(sys.argv) > 3 else 30)
request = f"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()


def ready() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(request)
            head = s.recv(64)
            return head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
    except OSError:
        return False


marker.touch()
while time.monotonic() < deadline:
    if ready():
        print(time.time_ns())
        sys.exit(0)
    time.sleep(0.002)
sys.exit(1)
