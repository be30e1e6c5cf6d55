#!/usr/bin/env python3
"""CPython side of the lnet.struct benchmark (issue 3): the same operations
as bench/struct_bench.lua, printed as "key ns_per_op" lines.  Each
measurement is the best of REPS runs of N iterations (CPU time), taken in
REPS rounds over all the cases."""
import os
import struct
import time

N = int(os.environ.get("BENCH_N", "1000000"))
REPS = int(os.environ.get("BENCH_REPS", "5"))


def measure(f):
    t0 = time.process_time()
    f(N)
    return (time.process_time() - t0) * 1e9 / N


HH = struct.Struct("!HH")
RRQ = struct.Struct("!H8sb5sb")
pkt = HH.pack(4, 1)
rrq = RRQ.pack(1, b"test.jpg", 0, b"octet", 0)


def hh_pack_struct(n):
    pack = HH.pack
    for i in range(n):
        pack(4, i & 0xFFFF)


def hh_pack_module(n):
    pack = struct.pack
    for i in range(n):
        pack("!HH", 4, i & 0xFFFF)


def hh_unpack_struct(n):
    unpack = HH.unpack
    for _ in range(n):
        unpack(pkt)


def hh_unpack_module(n):
    unpack = struct.unpack
    for _ in range(n):
        unpack("!HH", pkt)


def rrq_pack_struct(n):
    pack = RRQ.pack
    for _ in range(n):
        pack(1, b"test.jpg", 0, b"octet", 0)


def rrq_pack_module(n):
    pack = struct.pack
    for _ in range(n):
        pack("!H8sb5sb", 1, b"test.jpg", 0, b"octet", 0)


def rrq_unpack_struct(n):
    unpack = RRQ.unpack
    for _ in range(n):
        unpack(rrq)


def rrq_unpack_module(n):
    unpack = struct.unpack
    for _ in range(n):
        unpack("!H8sb5sb", rrq)


CASES = (hh_pack_struct, hh_pack_module, hh_unpack_struct, hh_unpack_module,
         rrq_pack_struct, rrq_pack_module, rrq_unpack_struct, rrq_unpack_module)
# Rounds over all the cases, keeping each case's best (see struct_bench.lua).
best = {}
for _ in range(REPS):
    for f in CASES:
        t = measure(f)
        best[f] = min(best.get(f, t), t)
for f in CASES:
    print("%s_py %.1f" % (f.__name__, best[f]))
