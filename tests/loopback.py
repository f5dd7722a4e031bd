"""A real HTTP server on 127.0.0.1 for tests of outbound calls: a free port, a daemon thread,
and the request log kept quiet. Each test module supplies the handler that scripts the answers."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not log each request to stderr."""

    def log_message(self, *args):
        pass


class LoopbackServer:
    """Serves ``handler`` on 127.0.0.1 until ``close()`` (or the end of a ``with`` block).

    ``url`` is the server's address followed by ``path``; ``tls`` (an ``ssl.SSLContext``) wraps
    the listening socket for HTTPS."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], path: str = "", tls=None):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
