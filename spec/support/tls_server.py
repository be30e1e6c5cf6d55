"""A Python `ssl` TLS server for the interop specs (one connection at a time).

  python3 -u tls_server.py --cert C --key K [--port 0] [--mode MODE] [options]

Prints "ready PORT" once it listens (port 0: the kernel picks one), then for
each connection: "sni NAME" (or "sni -": no SNI was sent) when the ClientHello
comes, then "version V", "cipher C", "alpn P" (or "-"), "peer SUBJECT" (or
"-") after the handshake, or "handshake failed: ..." (plus "reason ..."), and
what the mode did.  Ends after --count connections ("done") or --limit seconds
("time limit", status 3).

Modes:
  echo    send back what it receives until the peer's end of stream (or until
          --close-after BYTES were echoed: then it sends close_notify itself);
          prints "echoed N eof HOW"
  sink    read until the end of stream; prints "received N sha256 HEX eof HOW"
          where HOW is "clean" (close_notify), "unclean (...)" (TCP FIN without
          close_notify) or "error (...)"
  send    send --bytes N (seeded stream) or --file, then close_notify; prints
          "sent N sha256 HEX"
  abort   like send, then a TCP shutdown without close_notify
  hello   handshake only, then close_notify
After echo, sink, send and hello it exchanges close_notify (bounded by
--timeout) and prints "close_notify exchanged" or why not.

Client certificates: --cafile CA with --verify-client optional|required.
"""
import argparse
import socket
import ssl
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import tls_common as t  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--mode", default="echo", choices=["echo", "sink", "send", "abort", "hello"])
    p.add_argument("--count", type=int, default=1, help="connections to serve (0: until --limit)")
    p.add_argument("--verify-client", default="none", choices=["none", "optional", "required"])
    p.add_argument("--close-after", type=int, default=0)
    t.add_tls_args(p)
    a = p.parse_args()
    t.limit(a.limit)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    t.configure(ctx, a)
    if a.cafile:
        ctx.load_verify_locations(a.cafile)
    ctx.verify_mode = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
                       "required": ssl.CERT_REQUIRED}[a.verify_client]

    def on_sni(_sslobj, name, _ctx):
        t.say("sni", name if name else "-")
    ctx.sni_callback = on_sni

    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(16)
    t.say("ready", ls.getsockname()[1])

    served = 0
    while a.count == 0 or served < a.count:
        raw, _ = ls.accept()
        served += 1
        raw.settimeout(a.timeout)
        try:
            s = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
        except (ssl.SSLError, OSError) as e:
            t.fail("handshake", e)
            raw.close()
            continue
        try:
            serve(s, a)
        except (ssl.SSLError, OSError) as e:
            t.fail(a.mode, e)
        s.close()
    t.say("done")


def serve(s, a):
    t.describe(s, server_side=True)
    if a.mode == "echo":
        n, how = 0, None
        while how is None:
            if a.close_after and n >= a.close_after:
                how = "- (close_after reached)"
                break
            try:
                b = s.recv(a.chunk)
            except ssl.SSLEOFError as e:
                how = "unclean (%s: %s)" % (type(e).__name__, e)
                break
            if not b:
                how = "clean"
                break
            s.sendall(b)
            n += len(b)
        t.say("echoed", n, "eof", how)
        if not how.startswith("unclean"):
            t.close_notify(s)
    elif a.mode == "sink":
        n, digest, how = t.read_all(s, a.chunk)
        t.say("received", n, "sha256", digest, "eof", how)
        if how == "clean":
            t.close_notify(s)
    elif a.mode in ("send", "abort"):
        n, digest = t.send_all(s, a)
        t.say("sent", n, "sha256", digest)
        if a.mode == "send":
            t.close_notify(s)
        else:
            s.shutdown(socket.SHUT_RDWR)  # FIN, no close_notify
            t.say("closed without close_notify")
    else:
        t.close_notify(s)


if __name__ == "__main__":
    main()
