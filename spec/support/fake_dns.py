"""A fake DNS server for specs: answers UDP queries on 127.0.0.1:53 after a
delay, so that a name lookup is slow on purpose.  Meant to run inside a
private network namespace (spec/support/netns.lua), never on the host.

    fake_dns.py --delay 2 --watch PID --record slow.test=127.0.0.1 [--log FILE]

A names get their --record addresses (several --record for several
addresses), AAAA queries get an empty answer, other names NXDOMAIN; every
answer waits --delay seconds.  The server binds, then goes to the background
(the command returns once it listens) and exits when process PID is gone or
after --lifetime seconds (60), whichever comes first.  --log FILE gets one
line per query received: "qtype name".
"""
import argparse
import heapq
import os
import select
import socket
import struct
import sys
import time


def parse_query(data):
    """(id, flags, qname, qtype, end of question) or None."""
    if len(data) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    if qd != 1:
        return None
    labels, i = [], 12
    while i < len(data):
        n = data[i]
        i += 1
        if n == 0:
            break
        if n > 63 or i + n > len(data):
            return None
        labels.append(data[i:i + n].decode("ascii", "replace").lower())
        i += n
    if i + 4 > len(data):
        return None
    qtype, _qclass = struct.unpack("!HH", data[i:i + 4])
    return qid, flags, ".".join(labels), qtype, i + 4


def answer(data, q, records):
    qid, flags, name, qtype, qend = q
    rd = flags & 0x0100
    addrs = records.get(name)
    rcode = 0 if addrs is not None else 3  # NXDOMAIN
    rrs = []
    if addrs is not None and qtype == 1:
        for a in addrs:
            rrs.append(struct.pack("!HHHLH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(a))
    header = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1,
                         len(rrs), 0, 0)
    return header + data[12:qend] + b"".join(rrs)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=2.0)
    ap.add_argument("--watch", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=60.0)
    ap.add_argument("--record", action="append", default=[])
    ap.add_argument("--log")
    ap.add_argument("--foreground", action="store_true")
    a = ap.parse_args()
    records = {}
    for r in a.record:
        name, ip = r.split("=", 1)
        records.setdefault(name.lower().rstrip("."), []).append(ip)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 53))
    if not a.foreground and os.fork() != 0:
        os._exit(0)  # the caller goes on once we listen
    if not a.foreground:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
    log = open(a.log, "a", buffering=1) if a.log else None
    end = time.monotonic() + a.lifetime
    due = []  # (when, seq, reply, peer)
    seq = 0
    while time.monotonic() < end and (a.watch == 0 or alive(a.watch)):
        wait = 0.1 if not due else max(0.0, min(0.1, due[0][0] - time.monotonic()))
        r, _, _ = select.select([sock], [], [], wait)
        now = time.monotonic()
        if r:
            data, peer = sock.recvfrom(4096)
            q = parse_query(data)
            if q is not None:
                if log:
                    log.write("%d %s\n" % (q[3], q[2]))
                seq += 1
                heapq.heappush(due, (now + a.delay, seq, answer(data, q, records), peer))
        while due and due[0][0] <= now:
            _, _, reply, peer = heapq.heappop(due)
            sock.sendto(reply, peer)
    sys.exit(0)


if __name__ == "__main__":
    main()
