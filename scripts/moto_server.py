"""The DynamoDB emulator for ./dev: moto's server, with each request applied atomically.

DynamoDB applies every request atomically: an `UpdateItem ... ADD` or a conditional `PutItem`
never interleaves with another request on the same item. moto's threaded server does not
promise that (concurrent `ADD`s on one item were seen losing updates), so this launcher keeps
moto's threaded connection handling but runs one request at a time through a lock. The
project's own race tests then test the project's code, not the emulator: a read-then-write in
our code still loses updates here, as it would on DynamoDB.

Usage: python scripts/moto_server.py --host 127.0.0.1 --port 8000
"""

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def serialized(app):
    lock = threading.Lock()

    def application(environ, start_response):
        with lock:
            result = app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
        return [body]

    return application


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
