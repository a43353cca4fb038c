#!/usr/bin/env python3
"""Writes two versions of a generated bundle shaped like Hermes bytecode, for
the bundle-diffing benchmark: a header, a function table (offset, length and
flags per function), the function bodies (opcodes with a skewed
distribution and small operands, so it compresses about as well as real
Hermes output) and a string table.

The second version is "a few functions changed": five bodies edited, one
function inserted in the middle (so every later function's offset in the
table moves, as in a real rebuild) and a few strings added.

Usage: hermes-like.py SIZE_MB OUT_V1 OUT_V2 [SEED]
"""
import random
import struct
import sys

size = int(float(sys.argv[1]) * 1024 * 1024)
out_v1, out_v2 = sys.argv[2], sys.argv[3]
rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 56)

OPCODES = list(range(1, 200))
# Zipf-like: a few opcodes (loads, calls, moves) dominate.
WEIGHTS = [1.0 / (rank ** 1.1) for rank in range(1, len(OPCODES) + 1)]


def snippet(length: int) -> bytes:
    ops = rng.choices(OPCODES, WEIGHTS, k=length // 2)
    operands = rng.choices(range(16), [8, 6, 5, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1], k=length // 2)
    return bytes(b for pair in zip(ops, operands) for b in pair)


# Compilers emit the same instruction sequences over and over (property
# loads, calls, returns): bodies are made of common idioms with a register
# or constant changed here and there.
IDIOMS = [snippet(rng.randint(4, 24)) for _ in range(3000)]
IDIOM_WEIGHTS = [1.0 / (rank ** 0.9) for rank in range(1, len(IDIOMS) + 1)]


def stream(length: int) -> bytes:
    """Idioms back to back, one in four followed by a literal byte."""
    count = length // 12 + 1
    pieces = rng.choices(IDIOMS, IDIOM_WEIGHTS, k=count)
    literals = rng.randbytes(count)
    joined = b"".join(piece + literals[i:i + 1] if i % 4 == 0 else piece for i, piece in enumerate(pieces))
    return joined[:length]


def body(length: int) -> bytes:
    return stream(length)


def words(count: int) -> list:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(3, 14))) for _ in range(count)]


string_share = size // 6
code = stream(size - string_share)
functions = []
total = 0
while total < len(code):
    length = rng.randint(60, 900)
    functions.append(code[total:total + length])
    total += length
strings = words(string_share // 9)


def layout(functions, strings) -> bytes:
    table = bytearray()
    offset = 0
    for index, function in enumerate(functions):
        table += struct.pack("<IIHH", offset, len(function), index % 7, (index * 31) % 256)
        offset += len(function)
    string_bytes = "\0".join(strings).encode()
    header = b"HERMESLIKE" + struct.pack("<IIII", len(functions), len(table), offset, len(string_bytes))
    header += bytes(128 - len(header))
    return header + bytes(table) + b"".join(functions) + string_bytes


with open(out_v1, "wb") as out:
    out.write(layout(functions, strings))

changed = list(functions)
for index in rng.sample(range(len(changed)), 5):
    edited = bytearray(changed[index])
    for position in rng.sample(range(len(edited)), len(edited) // 3):
        edited[position] = rng.choice(OPCODES)
    changed[index] = bytes(edited)
changed.insert(len(changed) // 2, body(500))
with open(out_v2, "wb") as out:
    out.write(layout(changed, strings + words(20)))
