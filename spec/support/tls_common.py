"""Shared pieces of the Python TLS peers (tls_server.py, tls_client.py).

Data streams: `stream(nbytes, seed)` yields the same bytes on every run and
on both sides (random.Random(seed), 1 MiB pieces), or a file's contents.
Every process bounds its own life with `limit(seconds)` (SIGALRM), on top of
the `timeout` the Lua helper (tls_peers.lua) runs it under.
"""
import hashlib
import os
import random
import signal
import ssl
import sys

PIECE = 1 << 20

VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def say(*words):
    print(*words, flush=True)


def limit(seconds):
    """End the process (status 3) after `seconds`, whatever it is doing."""
    def expire(_sig, _frame):
        say("time limit (%gs): exiting" % seconds)
        os._exit(3)
    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def add_tls_args(p):
    p.add_argument("--cert", help="certificate file (PEM, may hold a chain)")
    p.add_argument("--key", help="private key file")
    p.add_argument("--password", help="password of an encrypted key")
    p.add_argument("--cafile", help="CA file to verify the peer with")
    p.add_argument("--alpn", help="comma-separated ALPN protocols, in preference order")
    p.add_argument("--min-version", choices=sorted(VERSIONS))
    p.add_argument("--max-version", choices=sorted(VERSIONS))
    p.add_argument("--tls12", action="store_true", help="TLS 1.2 only (min = max = 1.2)")
    p.add_argument("--ciphers", help="TLS 1.2 cipher string (OpenSSL syntax)")
    p.add_argument("--seclevel0", action="store_true",
                   help="OpenSSL security level 0 (needed for TLS 1.0/1.1 on OpenSSL 3)")
    p.add_argument("--timeout", type=float, default=10, help="socket timeout (s)")
    p.add_argument("--limit", type=float, default=30, help="exit after this many seconds")
    p.add_argument("--bytes", type=int, default=0, help="bytes to send (send/echo modes)")
    p.add_argument("--seed", type=int, default=1, help="seed of the byte stream")
    p.add_argument("--file", help="send this file's contents instead of a seeded stream")
    p.add_argument("--chunk", type=int, default=65536, help="bytes per write/read")


def configure(ctx, a):
    if a.seclevel0:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if a.ciphers:
        ctx.set_ciphers(a.ciphers + (":@SECLEVEL=0" if a.seclevel0 else ""))
    if a.tls12:
        a.min_version = a.max_version = "1.2"
    if a.min_version:
        ctx.minimum_version = VERSIONS[a.min_version]
    if a.max_version:
        ctx.maximum_version = VERSIONS[a.max_version]
    if a.alpn:
        ctx.set_alpn_protocols(a.alpn.split(","))
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key, a.password)


def stream(a):
    """The bytes to send, as pieces of at most a.chunk bytes."""
    if a.file:
        with open(a.file, "rb") as f:
            while True:
                b = f.read(a.chunk)
                if not b:
                    return
                yield b
    rng = random.Random(a.seed)
    left = a.bytes
    while left > 0:
        piece = rng.randbytes(min(PIECE, left))
        left -= len(piece)
        for i in range(0, len(piece), a.chunk):
            yield piece[i:i + a.chunk]


def describe(s, server_side=False):
    """Print what was negotiated: version, cipher, ALPN, the peer's certificate."""
    say("version", s.version())
    say("cipher", s.cipher()[0])
    say("alpn", s.selected_alpn_protocol() or "-")
    cert = s.getpeercert()
    if cert:
        subject = ",".join("%s=%s" % kv for rdn in cert.get("subject", ()) for kv in rdn)
        say("peer", subject.replace("commonName", "CN"))
    elif server_side:
        say("peer", "-")


def read_all(s, chunk):
    """Read until the end of the stream; returns (count, sha256 hex, how it ended)."""
    h = hashlib.sha256()
    n = 0
    while True:
        try:
            b = s.recv(chunk)
        except ssl.SSLEOFError as e:  # TCP FIN without close_notify
            return n, h.hexdigest(), "unclean (%s: %s)" % (type(e).__name__, e)
        except (ssl.SSLError, OSError) as e:
            return n, h.hexdigest(), "error (%s: %s)" % (type(e).__name__, e)
        if not b:
            return n, h.hexdigest(), "clean"
        n += len(b)
        h.update(b)


def send_all(s, a):
    h = hashlib.sha256()
    n = 0
    for piece in stream(a):
        s.sendall(piece)
        h.update(piece)
        n += len(piece)
    return n, h.hexdigest()


def close_notify(s):
    """Send close_notify and wait (bounded by the socket timeout) for the peer's."""
    try:
        s.unwrap()
        say("close_notify exchanged")
    except (ssl.SSLError, OSError) as e:
        say("close_notify: %s: %s" % (type(e).__name__, e))


def fail(what, e):
    line = "%s failed: %s: %s" % (what, type(e).__name__, e)
    say(line)
    vm = getattr(e, "verify_message", None)
    if vm:
        say("verify_message", vm)
    if isinstance(e, ssl.SSLError) and e.reason:
        say("reason", e.reason)


if __name__ == "__main__":
    sys.exit("tls_common.py is a module of tls_server.py and tls_client.py")
