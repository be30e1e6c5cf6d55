#!/usr/bin/env python3
"""Reference side of spec/struct_diff_spec.lua: runs CPython's struct on the
cases written by the spec and prints one canonical result line per case.

Usage: struct_diff.py CASES OUT

Each case line is TAB-separated: kind, format (hex of its bytes), then the
kind's arguments.  Values are tokens: i<int>, u<int> (an 8-byte unsigned
integer given as its signed 64-bit pattern), f<16 hex digits of the double's
big-endian bits>, b0/b1 (booleans), n (None), s<hex> (bytes).

Result lines: "ok" followed by tokens, or "err <message>".  Unpacked values
use the same tokens; integers >= 2**63 (only 8-byte unsigned codes give them)
are written as their signed 64-bit pattern, as lnet.struct returns them.
"""
import struct
import sys


def value(tok):
    t, rest = tok[0], tok[1:]
    if t == "i":
        return int(rest)
    if t == "u":
        v = int(rest)
        return v + 2**64 if v < 0 else v
    if t == "f":
        return struct.unpack(">d", bytes.fromhex(rest))[0]
    if t == "b":
        return rest == "1"
    if t == "n":
        return None
    if t == "s":
        return bytes.fromhex(rest)
    raise ValueError(tok)


def token(v):
    if isinstance(v, bool):
        return "b1" if v else "b0"
    if isinstance(v, int):
        if v >= 2**63:
            v -= 2**64
        return "i%d" % v
    if isinstance(v, float):
        return "f" + struct.pack(">d", v).hex()
    if isinstance(v, bytes):
        return "s" + v.hex()
    raise TypeError(type(v))


def run(kind, fmt, args):
    if kind == "calcsize":
        return ["i%d" % struct.calcsize(fmt)]
    if kind == "pack":
        packed = struct.pack(fmt, *[value(a) for a in args])
        out = ["s" + packed.hex()]
        # round trip, unless the format has a 0p (CPython raises SystemError)
        out += ["/"] + [token(v) for v in struct.unpack(fmt, packed)]
        return out
    if kind == "unpack":
        return [token(v) for v in struct.unpack(fmt, bytes.fromhex(args[0]))]
    if kind == "unpack_from":
        data = bytes.fromhex(args[0])
        return [token(v) for v in struct.unpack_from(fmt, data, int(args[1]))]
    if kind == "iter_unpack":
        out = []
        for rec in struct.iter_unpack(fmt, bytes.fromhex(args[0])):
            out += [token(v) for v in rec] + [";"]
        return out
    raise ValueError(kind)


def main():
    with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            kind, fmt, args = parts[0], bytes.fromhex(parts[1]), parts[2:]
            try:
                res = "ok " + " ".join(run(kind, fmt, args))
            except Exception as e:  # struct.error, OverflowError, ...
                res = "err " + str(e)
            out.write(res.rstrip() + "\n")


if __name__ == "__main__":
    main()
