"""bench/tls_asyncio_server.py: the Python side of run_tls.sh's "1000
concurrent TLS echo clients": asyncio streams with ssl, one coroutine per
client, each echoing what it receives until the client goes.

  python3 bench/tls_asyncio_server.py DIR [LIMIT_S]

DIR holds server.pem and server.key (spec/support/tls_certs.lua); binds
127.0.0.1:0, prints the port, serves until killed or LIMIT_S (300) seconds.
"""
import asyncio
import os
import ssl
import sys


async def echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def main(d, limit):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.join(d, "server.pem"), os.path.join(d, "server.key"))
    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=ctx, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        try:
            await asyncio.wait_for(server.serve_forever(), limit)
        except asyncio.TimeoutError:
            print("tls_asyncio_server: time limit", file=sys.stderr)
            sys.exit(3)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: tls_asyncio_server.py DIR [LIMIT_S]")
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 300))
