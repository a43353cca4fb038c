#!/usr/bin/env python3
"""Copies a SQLite database and adds COUNT old updates to the copy, fast.

Usage: seed-updates.py SOURCE_DB TARGET_DB PROJECT_ID MODE COUNT
MODE "same":   every copy goes in the stream the benchmark asks for
               (branch main, runtime 1.0.0, ios), beneath the real updates.
MODE "spread": copies spread evenly over 1,000 other runtime versions
               ("0.<k>.0"), same branch and platform.

Run it with the server stopped. Each copy duplicates the newest real ios
update on main/1.0.0 (its `updates` row and all its `update_assets` rows)
under a new UUIDv7 id, publish id and manifest id. The ids carry timestamps
from a year before the real update, so the real update stays the newest
(the server orders by id) and what is measured is how the latest-update
lookup copes with a big table and a long stream. Columns are copied by name,
so columns added by later migrations come along unchanged.
"""
import os
import sqlite3
import sys
import uuid

source, target, project, mode, count = sys.argv[1:6]
count = int(count)
if os.path.exists(target):
    os.remove(target)
src = sqlite3.connect(source)
db = sqlite3.connect(target)
src.backup(db)  # a consistent copy, WAL included
src.close()


def uuid7(ms: int) -> str:
    """A UUIDv7 text id for millisecond timestamp ms (random tail)."""
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | rand & (2**62 - 1)
    return str(uuid.UUID(int=value))


columns = [row[1] for row in db.execute("PRAGMA table_info(updates)")]
asset_columns = [row[1] for row in db.execute("PRAGMA table_info(update_assets)")]
where = "project_id = ? AND runtime_version = '1.0.0' AND platform = 'ios'"
if "branch" in columns:
    where += " AND branch = 'main'"
row = db.execute(f"SELECT {', '.join(columns)} FROM updates WHERE {where} ORDER BY id DESC LIMIT 1",
                 (project,)).fetchone()
if row is None:
    sys.exit(f"seed-updates: no ios update on main/1.0.0 for project {project} in {source}")
template = dict(zip(columns, row))
assets = [dict(zip(asset_columns, a)) for a in db.execute(
    f"SELECT {', '.join(asset_columns)} FROM update_assets WHERE update_id = ? ORDER BY position",
    (template["id"],))]
# The real id's timestamp, minus a year, plus one millisecond per copy.
real_ms = int(template["id"].replace("-", "")[:12], 16)
base_ms = real_ms - 365 * 24 * 3600 * 1000

update_rows, asset_rows = [], []
for i in range(count):
    new = dict(template)
    new["id"] = uuid7(base_ms + i)
    new["publish_id"] = new["id"]
    new["manifest_id"] = str(uuid.uuid4())
    if mode == "spread":
        new["runtime_version"] = f"0.{i % 1000}.0"
    elif mode != "same":
        sys.exit(f"seed-updates: unknown mode {mode}")
    update_rows.append(tuple(new[c] for c in columns))
    for asset in assets:
        copy = dict(asset, update_id=new["id"])
        asset_rows.append(tuple(copy[c] for c in asset_columns))

with db:
    db.executemany(f"INSERT INTO updates ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                   update_rows)
    db.executemany(
        f"INSERT INTO update_assets ({', '.join(asset_columns)}) VALUES ({', '.join('?' * len(asset_columns))})",
        asset_rows)
# No ANALYZE: the server never runs it, so a real database has no statistics either.
total = db.execute("SELECT count(*) FROM updates").fetchone()[0]
db.close()
print(total)
