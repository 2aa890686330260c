"""A TCP proxy on 127.0.0.1 that can slow down what it forwards: the load test's way to make the
DynamoDB emulator slow without touching it.

    python3 delay_proxy.py --port P --upstream-port U --delay-ms 2500

It forwards both ways, unchanged. After SIGUSR1 every chunk a client sends waits --delay-ms
before it goes upstream (so every request is at least that late); after SIGUSR2 nothing waits.
It starts in the fast state. It listens only on 127.0.0.1 and runs until it is stopped
(SIGTERM, SIGINT).
"""

import argparse
import asyncio
import signal
import sys


async def pipe(reader, writer, delay):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if delay is not None and delay[0]:
                await asyncio.sleep(delay[0])
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=int, required=True)
    args = parser.parse_args()
    delay = [0.0]  # seconds; mutable so that the signal handlers can change it

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", args.upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, up_writer, delay),
            pipe(up_reader, client_writer, None),
        )

    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def slow():
        delay[0] = args.delay_ms / 1000
        print(f"delaying every request by {args.delay_ms} ms", flush=True)

    def fast():
        delay[0] = 0.0
        print("forwarding without delay", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, slow)
    loop.add_signal_handler(signal.SIGUSR2, fast)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    server = await asyncio.start_server(handle, "127.0.0.1", args.port)
    print(f"proxy 127.0.0.1:{args.port} -> 127.0.0.1:{args.upstream_port}", flush=True)
    async with server:
        await stop
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
