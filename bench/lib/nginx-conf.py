#!/usr/bin/env python3
"""Writes the baseline nginx config: one exact-match location per saved
response, serving the saved body with the same headers the server sent.

Usage: nginx-conf.py NGINX_DIR PORT WWW_DIR NAME...
For each NAME, WWW_DIR/NAME is the body and WWW_DIR/NAME.headers the
server's response headers (curl -D). nginx answers GET /NAME with that body,
the server's content-type (default_type, since the file has no extension)
and every other end-to-end header the server sent (content-encoding,
cache-control, vary, expo-*), so both sides put the same bytes on the wire.
x-request-id becomes nginx's own per-request id, as the server makes one per
request too.
"""
import pathlib
import sys

nginx_dir, port, www = pathlib.Path(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
names = sys.argv[4:]
# Headers nginx writes itself, or that describe the connection.
SKIP = {"date", "content-length", "content-type", "connection", "keep-alive",
        "transfer-encoding", "server"}


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def headers_of(path: pathlib.Path) -> list[tuple[str, str]]:
    lines = path.read_bytes().decode("latin-1").splitlines()
    # curl -D keeps every response; the last one is the answer.
    start = max(i for i, line in enumerate(lines) if line.startswith("HTTP/"))
    pairs = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        name, _, value = line.partition(":")
        pairs.append((name.strip().lower(), value.strip()))
    return pairs


locations = []
for name in names:
    headers = headers_of(www / f"{name}.headers")
    content_type = dict(headers).get("content-type", "application/octet-stream")
    lines = [f"        location = /{name} {{", f"            default_type {quote(content_type)};"]
    for header, value in headers:
        if header in SKIP:
            continue
        if header == "x-request-id":
            lines.append("            add_header x-request-id $request_id always;")
        else:
            lines.append(f"            add_header {header} {quote(value)} always;")
    lines.append("        }")
    locations.append("\n".join(lines))

temp = nginx_dir / "temp"
temp.mkdir(parents=True, exist_ok=True)
conf = f"""# Baseline for bench/run: static files, the same bytes the server sent.
daemon off;
master_process on;
worker_processes 2;
user root;
pid {nginx_dir}/nginx.pid;
error_log stderr;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    etag off;
    types {{ }}
    client_body_temp_path {temp}/client;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {www};
{chr(10).join(locations)}
    }}
}}
"""
(nginx_dir / "nginx.conf").write_text(conf)
