"""bench/run_resolve.sh's Python client: N coroutines at once, each
asyncio.open_connection("localhost", PORT) (the name goes through the
loop's default executor, as asyncio does for any name), write 64 bytes,
readexactly the echo, close.  Prints the wall time from the start to the
last coroutine's end, and how many made it.

    python3 bench/resolve_asyncio.py PORT N
"""
import asyncio
import sys
import time

MSG = b"x" * 64


async def one(port):
    try:
        reader, writer = await asyncio.open_connection("localhost", port)
        writer.write(MSG)
        await writer.drain()
        got = await reader.readexactly(len(MSG))
        writer.close()
        await writer.wait_closed()
        return got == MSG or "bad echo"
    except Exception as e:  # counted, not raised: a miss is reported
        return repr(e)


async def main(port, n):
    t0 = time.monotonic()
    results = await asyncio.gather(*(one(port) for _ in range(n)))
    dt = time.monotonic() - t0
    ok = sum(1 for r in results if r is True)
    err = next((r for r in results if r is not True), None)
    print("seconds=%.4f ok=%d err=%s" % (dt, ok, err))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
