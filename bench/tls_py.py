"""bench/tls_py.py: the TLS workloads of bench/run_tls.sh with Python's ssl
module, written the usual way (blocking sockets, create_default_context on
the client).  Same command line and output as build/bench/tls_ref:

  python3 bench/tls_py.py bulk-server DIR BYTES | bulk-client DIR PORT BYTES
                          hs-client DIR PORT N

Python cannot choose TLS 1.3 cipher suites, so run_tls.sh runs it with
OPENSSL_CONF pointing at a file that limits them to TLS_AES_128_GCM_SHA256
(the clients report what was negotiated on stderr: "tls VERSION CIPHER").
"""
import os
import socket
import ssl
import sys
import time

CHUNK = 64 * 1024
MSGSIZE = 64


def client_ctx(d):
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def server_ctx(d):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(os.path.join(d, "server.pem"), os.path.join(d, "server.key"))
    return ctx


def listener():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    print(ls.getsockname()[1], flush=True)
    return ls


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def cputime():
    return time.process_time()


def report(amount, t0, c0):
    print("%.1f %.6f" % (amount / (time.monotonic() - t0), cputime() - c0), flush=True)


def tlsinfo(s):
    print("tls", s.version(), s.cipher()[0], file=sys.stderr, flush=True)


def servercpu():
    print("cpu %.6f" % cputime(), file=sys.stderr, flush=True)


def readn(s, n):
    parts, got = [], 0
    while got < n:
        b = s.recv(n - got)
        if not b:
            sys.exit("tls_py: unexpected end of stream")
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def bulk_server(d, nbytes):
    ctx = server_ctx(d)
    ls = listener()
    c, _ = ls.accept()
    ls.close()
    s = ctx.wrap_socket(c, server_side=True)
    buf = bytearray(CHUNK)
    total = 0
    while total < nbytes:
        n = s.recv_into(buf)
        if n == 0:
            sys.exit("tls_py: bulk: short stream")
        total += n
    s.sendall(b"k")
    s.close()
    servercpu()


def bulk_client(d, port, nbytes):
    ctx = client_ctx(d)
    c0, t0 = cputime(), time.monotonic()
    s = ctx.wrap_socket(connect(port), server_hostname="127.0.0.1")
    chunk = b"x" * CHUNK
    left = nbytes
    while left >= CHUNK:
        s.sendall(chunk)
        left -= CHUNK
    if left:
        s.sendall(chunk[:left])
    readn(s, 1)
    report(nbytes, t0, c0)
    tlsinfo(s)
    s.close()


def hs_client(d, port, n):
    ctx = client_ctx(d)
    msg = b"x" * MSGSIZE
    c0, t0 = cputime(), time.monotonic()
    for i in range(n):
        s = ctx.wrap_socket(connect(port), server_hostname="127.0.0.1")
        s.sendall(msg)
        if readn(s, MSGSIZE) != msg:
            sys.exit("tls_py: hs: echo differs")
        if i == n - 1:
            tlsinfo(s)
        s.close()  # the usual way: no close_notify (unwrap() would wait for the server's)
    report(n, t0, c0)


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "bulk-server":
        bulk_server(a[1], int(a[2]))
    elif len(a) == 4 and a[0] == "bulk-client":
        bulk_client(a[1], int(a[2]), int(a[3]))
    elif len(a) == 4 and a[0] == "hs-client":
        hs_client(a[1], int(a[2]), int(a[3]))
    else:
        sys.exit("usage: tls_py.py bulk-server DIR BYTES | bulk-client DIR PORT BYTES | "
                 "hs-client DIR PORT N")


if __name__ == "__main__":
    main()
