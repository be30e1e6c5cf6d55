"""A Python `ssl` TLS client for the interop specs.

  python3 -u tls_client.py --port P [--host 127.0.0.1] [--servername NAME]
                           [--cafile CA | --no-verify] [--mode MODE] [options]

Verification is Python's default (create_default_context: the certificate
chain and the host name), against --cafile (else the system store);
--servername is the name checked and sent as SNI (default: --host; Python
sends no SNI for an IP literal but checks it against the IP SANs).
After the handshake it prints "version V", "cipher C", "alpn P" (or "-"),
"peer SUBJECT"; a failed handshake prints "handshake failed: ..." and the
"verify_message ..." / "reason ..." lines, and exits with status 1.

Modes:
  hello  handshake, then close_notify
  send   send --bytes N (seeded stream) or --file, then close_notify; prints
         "sent N sha256 HEX"
  echo   send --bytes N in --chunk pieces, each read back (lock-step) and
         compared with what was sent; prints "echo ok N sha256 HEX" or
         "echo MISMATCH at OFFSET" (status 1)
  sink   read until the end of stream; prints "received N sha256 HEX eof HOW"
  get    send "GET / HTTP/1.0" (for openssl s_server -www), read the reply to
         the end; prints "status LINE" and "response N bytes"
"""
import argparse
import hashlib
import socket
import ssl
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import tls_common as t  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--servername", help="name to verify and send as SNI (default: --host)")
    p.add_argument("--no-verify", action="store_true", help="CERT_NONE, no host name check")
    p.add_argument("--mode", default="hello", choices=["hello", "send", "echo", "sink", "get"])
    t.add_tls_args(p)
    a = p.parse_args()
    t.limit(a.limit)

    ctx = ssl.create_default_context(cafile=a.cafile)
    if a.no_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    t.configure(ctx, a)

    try:
        raw = socket.create_connection((a.host, a.port), timeout=a.timeout)
    except OSError as e:
        t.fail("connect", e)
        sys.exit(1)
    try:
        s = ctx.wrap_socket(raw, server_hostname=a.servername or a.host,
                            suppress_ragged_eofs=False)
    except (ssl.SSLError, OSError) as e:
        t.fail("handshake", e)
        raw.close()
        sys.exit(1)
    status = 0
    try:
        t.describe(s)
        status = run(s, a)
    except (ssl.SSLError, OSError) as e:
        t.fail(a.mode, e)
        status = 1
    s.close()
    sys.exit(status)


def run(s, a):
    if a.mode == "send":
        n, digest = t.send_all(s, a)
        t.say("sent", n, "sha256", digest)
        t.close_notify(s)
    elif a.mode == "echo":
        h = hashlib.sha256()
        n = 0
        for piece in t.stream(a):
            s.sendall(piece)
            back = bytearray()
            while len(back) < len(piece):
                b = s.recv(len(piece) - len(back))
                if not b:
                    t.say("echo: end of stream after", n + len(back), "bytes")
                    return 1
                back += b
            if back != piece:
                at = next(i for i in range(len(piece)) if piece[i] != back[i])
                t.say("echo MISMATCH at", n + at)
                return 1
            h.update(piece)
            n += len(piece)
        t.say("echo ok", n, "sha256", h.hexdigest())
        t.close_notify(s)
    elif a.mode == "sink":
        n, digest, how = t.read_all(s, a.chunk)
        t.say("received", n, "sha256", digest, "eof", how)
        if how == "clean":
            t.close_notify(s)
        return 0 if how == "clean" else 1
    elif a.mode == "get":
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = bytearray()
        while True:
            try:
                b = s.recv(65536)
            except ssl.SSLEOFError:
                break  # s_server -www closes without waiting for ours
            if not b:
                break
            data += b
        t.say("status", data.split(b"\r\n", 1)[0].decode("latin-1"))
        t.say("response", len(data), "bytes")
    else:
        t.close_notify(s)
    return 0


if __name__ == "__main__":
    main()
