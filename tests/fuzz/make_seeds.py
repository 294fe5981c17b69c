#!/usr/bin/env python3
"""Writes the seed corpus (tests/fuzz/corpus/<target>/): a few valid inputs per target, built
the way the runtime writes them, so that the fuzzers start from the formats' shapes.
Run once by hand; the outputs are committed."""
import os
import struct

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# frame: ring slots (32 B): seq(2) info(2) tag(4) context(4) payload...
def frame(pos, nbytes, kind, large, tag, ctx, payload):
    info = nbytes | (kind << 13) | (large << 15)
    body = struct.pack("<HHiI", (pos << 1) | 1, info, tag, ctx) + payload
    slots = (12 + nbytes + 31) // 32
    return body.ljust(slots * 32, b"\0"), slots


def ring(frames):
    out, pos = b"", 0
    for nbytes, kind, large, payload in frames:
        f, n = frame(pos, nbytes, kind, large, 5, 0, payload)
        out += f
        pos += n
    return out.ljust(512, b"\0")[:512]


put("frame", "eager_raw", ring([(8, 0, 0, struct.pack("<q", 42))]))
put("frame", "eager_cereal", ring([(4 + 6, 1, 0, struct.pack("<I", 0xDEADBEEF) + b"abcdef")]))
put("frame", "large_raw", ring([(8, 0, 1, struct.pack("<Q", 1 << 20))]))
put("frame", "large_boost", ring([(12, 2, 1, struct.pack("<QI", 1 << 22, 7))]))
put("frame", "large_raw_split", ring([(16, 0, 1, struct.pack("<QQ", (1 << 20) | (1 << 61), 0x7F0000001000))]))
put("frame", "three", ring([(0, 0, 0, b""), (20, 0, 0, b"x" * 20), (52, 0, 0, b"y" * 52)]))

# payload: selector byte + cereal/Boost bytes (cereal: sizes as u64; Boost binary: no header).
def cstr(s):
    return struct.pack("<Q", len(s)) + s


put("payload", "cereal_strings", b"\0" + struct.pack("<Q", 2) + cstr(b"ab") + cstr(b"cde"))
put("payload", "cereal_map", b"\1" + struct.pack("<Q", 1) + struct.pack("<i", 3) + struct.pack("<Q", 2)
    + struct.pack("<dd", 1.5, 2.5))
put("payload", "cereal_record", b"\2" + struct.pack("<i", 7) + cstr(b"name") + struct.pack("<Q", 1)
    + struct.pack("<d", 3.0))
put("payload_boost", "boost_record", b"\0" + struct.pack("<i", 7) + cstr(b"nm") + struct.pack("<Q", 2)
    + struct.pack("<ii", 1, 2) + struct.pack("<Q", 1) + cstr(b"k") + struct.pack("<i", 9))
put("payload_boost", "boost_vector", b"\1" + struct.pack("<Q", 0))

# pool_frames: selector, items(2), then the frame.
def item(ok, payload):
    return struct.pack("<BI", 1 if ok else 0, len(payload)) + payload


put("pool_frames", "ints_dense", b"\0" + struct.pack("<H", 4) + struct.pack("<QQ", 1, 3) + b"\1"
    + struct.pack("<ii", 10, 11))
put("pool_frames", "ints_items", b"\0" + struct.pack("<H", 4) + struct.pack("<QQ", 0, 2) + b"\0"
    + item(True, struct.pack("<i", 5)) + item(False, b"failed"))
put("pool_frames", "strings", b"\2" + struct.pack("<H", 2) + struct.pack("<QQ", 0, 1) + b"\0"
    + item(True, b"hello"))
put("pool_frames", "end", b"\4" + struct.pack("<H", 0) + struct.pack("<Q", 5) + b"errorREST")

# queue_item: chunks(1) bytes(4) first(4) next[chunks](4 each)
put("queue_item", "two_chunks", struct.pack("<BII", 4, 1500, 2) + struct.pack("<IIII", 0, 0, 2, 0))
put("queue_item", "one_chunk", struct.pack("<BII", 1, 100, 0) + struct.pack("<I", 0))
put("queue_item", "full_pool", struct.pack("<BII", 2, 2048, 1) + struct.pack("<II", 0, 1))

# spawn_frames: kind(1) length(8) payload
def sframe(kind, payload):
    return kind + struct.pack("<Q", len(payload)) + payload


put("spawn_frames", "result", sframe(b"R", struct.pack("<i", 42)))
put("spawn_frames", "error", sframe(b"E", b"boom"))
put("spawn_frames", "result_then_error", sframe(b"R", b"xx") + sframe(b"E", b"late"))
put("spawn_frames", "empty_result", sframe(b"R", b""))

# contract: rank, size, job, segment fd, oversubscribed, cpus ('-' = unset)
put("contract", "valid", b"1\n4\n00000000deadbeef\n3\n0\n0-1")
put("contract", "singleton", b"-\n-\n-\n-\n-\n-")
put("contract", "partial", b"0\n-\n0123456789abcdef\n3\n1\n")
put("contract", "bad_rank", b"4\n4\n0123456789abcdef\n3\n1\n0")
