"""Serves the browser client (web/) on 127.0.0.1, as a static host would, with the API's base URL
written into index.html's <meta name="api-base">: what a deployment does once, at upload time.

Usage: python scripts/serve_web.py --port 5173 --api http://localhost:3000

Only GET and HEAD of the files under web/; no directory listings. Stops on SIGTERM or Ctrl-C.
"""

import argparse
import functools
import html
import http.server
import pathlib
import signal
import sys

WEB = pathlib.Path(__file__).resolve().parent.parent / "web"
EMPTY_META = '<meta name="api-base" content="">'


class Handler(http.server.SimpleHTTPRequestHandler):
    api = ""

    def send_head(self):
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path in ("/", "/index.html"):
            page = (WEB / "index.html").read_text()
            if EMPTY_META not in page:
                self.send_error(500, "index.html has no empty api-base meta tag")
                return None
            body = page.replace(EMPTY_META, f'<meta name="api-base" content="{html.escape(self.api)}">').encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            return _Body(body)
        if path.endswith("/"):
            self.send_error(404)
            return None
        return super().send_head()

    def end_headers(self):
        # What a host of this client should send too (docs/sessions.md, "Using it from a browser app").
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy",
                         f"default-src 'self'; connect-src {self.api}; base-uri 'none'; "
                         "form-action 'self'; frame-ancestors 'none'; object-src 'none'")
        super().end_headers()

    def log_message(self, format, *args):
        sys.stderr.write("web: %s\n" % (format % args))


class _Body:
    """The file-like object send_head returns, for a page made in memory."""

    def __init__(self, data):
        self.data = data

    def read(self, *_):
        data, self.data = self.data, b""
        return data

    def close(self):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5173)
    parser.add_argument("--api", required=True, help="the API's base URL, e.g. http://localhost:3000")
    args = parser.parse_args()
    handler = functools.partial(type("Configured", (Handler,), {"api": args.api.rstrip("/")}),
                                directory=str(WEB))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"web: serving {WEB} on http://localhost:{args.port} (API {args.api})", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
